"""Compounding errors, measured: return against the number of expert labels for behaviour
cloning, DAgger and DAgger with expert interventions, on CartPole-v1 and Pendulum-v1 with
minirl's analytic experts; plus the ``imitation`` library as an optional peer.

    python -m benchmarks.learning.imitation [--seeds 0 1 2 3 4] [--envs CartPole-v1 ...]
    python -m benchmarks.learning.imitation --peer [--peer-python PATH]   # + imitation library
    python -m benchmarks.learning.imitation --table                        # rebuild md + plot

Protocol (per env and seed s; every number below is in ``SETTINGS``):

* Expert demonstrations: episodes of the analytic expert (CartPole: LQR state feedback;
  Pendulum: energy swing-up + PD), reset seeds 1000 s + k. CartPole demonstrations are cut to
  10-step episodes: the LQR expert keeps the pole so close to upright that BC from 50 labels
  already balances for 455-500 steps (a first run with 50-step episodes), so the interesting
  budgets are tens of labels. Pendulum episodes are whole (200 steps: the swing-up needs them).
* BC at a budget of N labels: the first N / L demonstration episodes, ``bc_updates`` Adam
  steps, no validation split.
* DAgger: D = one demonstration episode; then iterations of ``rollout`` learner steps
  (deterministic actions, beta = 0), every visited state labelled by the expert, D aggregated,
  ``updates_per_iter`` warm-started Adam steps. Evaluated after every iteration.
* Intervention (HG-DAgger style): the same, but the expert takes control when the learner's
  action differs from its own (CartPole: any disagreement; Pendulum: scaled distance > 0.2),
  keeps it for 10 steps, and only those steps are labelled.
* Return: mean over 5 deterministic evaluation episodes with reset seeds 10_000 + k (the same
  for every method). "Reaches the expert level": CartPole mean >= 475 (the env's reward
  threshold); Pendulum mean >= -200 (the analytic expert scores about -140).

Policies: CartPole categorical, Pendulum L2 regression (version 0: the expert is
deterministic), MLP 64-64 tanh, Adam 1e-3, batch 256 - the same for BC and DAgger.

Results: ``benchmarks/results/imitation_compounding.csv`` (one row per evaluation),
``imitation_compounding.png`` (mean +- std over seeds), ``imitation.md`` (tables and the
commands). The peer (``imitation`` 1.0.1: BC and SimpleDAggerTrainer, torch, one thread) needs
gymnasium 0.29 and SB3 2.2, which conflict with minirl's gymnasium >= 1.0, so it runs in its own
interpreter (``--peer-python``, a venv with torch==2.13.0+cpu and imitation) and writes
``imitation_peer.csv``. Threads are pinned to one before NumPy and torch are imported.
"""
import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import csv  # noqa: E402
import json  # noqa: E402
import shlex  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

RESULTS = Path(__file__).resolve().parents[1] / "results"
CSV = RESULTS / "imitation_compounding.csv"
PEER_CSV = RESULTS / "imitation_peer.csv"
COLUMNS = ["env", "method", "seed", "labels", "env_steps", "updates", "return_mean",
           "wall_s", "cpu_s", "command"]
EVAL_EPISODES, EVAL_SEED = 5, 10_000

SETTINGS = {
    "CartPole-v1": dict(policy="categorical", demo_len=10, bc_budgets=[10, 20, 40, 80, 160, 320],
                        rollout=10, iterations=31, threshold=475.0, gate_threshold=0.5),
    "Pendulum-v1": dict(policy="l2", demo_len=200, bc_budgets=[200, 400, 800, 1600, 3200],
                        rollout=100, iterations=30, threshold=-200.0, gate_threshold=0.2),
}
COMMON = dict(hidden_sizes=(64, 64), lr=1e-3, batch_size=256)
BC_UPDATES, UPDATES_PER_ITER, GATE_HOLD = 2000, 200, 10


# ----- minirl runs ------------------------------------------------------------------------------

def demonstrations(env_id: str, seed: int, n_episodes: int):
    import gymnasium as gym

    from minirl.imitation import collect_demonstrations
    env = gym.make(env_id, max_episode_steps=SETTINGS[env_id]["demo_len"])
    return collect_demonstrations("auto", env, n_episodes, seed=1000 * seed)


def evaluate(agent) -> float:
    return float(agent.evaluate(EVAL_EPISODES, deterministic=True, seed=EVAL_SEED).mean())


def run_bc(env_id: str, seed: int, command: str) -> list[dict]:
    from minirl.algos.bc import BC, BCConfig
    s = SETTINGS[env_id]
    demos = demonstrations(env_id, seed, max(s["bc_budgets"]) // s["demo_len"])
    rows = []
    for budget in s["bc_budgets"]:
        start = time.perf_counter()
        cfg = BCConfig(policy=s["policy"], val_fraction=0.0, eval_interval=BC_UPDATES, **COMMON)
        agent = BC(env_id, cfg, seed=seed, demos=demos.first_episodes(budget // s["demo_len"]))
        agent.learn(BC_UPDATES)
        rows.append(dict(env=env_id, method="bc", seed=seed, labels=budget, env_steps=0,
                         updates=BC_UPDATES, return_mean=evaluate(agent),
                         wall_s=time.perf_counter() - start, command=command))
    return rows


def run_dagger(env_id: str, seed: int, gate: str, command: str) -> list[dict]:
    from minirl.algos.dagger import DAgger, DAggerConfig
    s = SETTINGS[env_id]
    cfg = DAggerConfig(policy=s["policy"], steps_per_iter=s["rollout"],
                       updates_per_iter=UPDATES_PER_ITER, gate=gate,
                       gate_threshold=s["gate_threshold"], gate_hold=GATE_HOLD, **COMMON)
    agent = DAgger(env_id, cfg, seed=seed, demos=demonstrations(env_id, seed, 1))
    method = "dagger" if gate == "none" else "intervention"
    rows, start = [], time.perf_counter()

    def record(a, metrics):
        rows.append(dict(env=env_id, method=method, seed=seed, labels=metrics["labels"],
                         env_steps=metrics["steps"],
                         updates=UPDATES_PER_ITER * (metrics["iteration"] + 1),
                         return_mean=evaluate(a), wall_s=time.perf_counter() - start,
                         command=command))

    agent.learn(s["rollout"] * s["iterations"], callback=record)
    return rows


# ----- the imitation library (runs in its own interpreter) --------------------------------------

def peer_worker(args: dict) -> None:
    """BC and DAgger of the ``imitation`` library with the same expert, budget and evaluation.

    Policy: SB3's ActorCriticPolicy with a 64-64 tanh MLP (imitation's BC maximizes its
    log-likelihood: categorical for CartPole, Gaussian for Pendulum, entropy weight 1e-3),
    Adam 1e-3, batch 256, ``BC_UPDATES`` batches. DAgger: SimpleDAggerTrainer from one
    demonstration episode, beta = 0 (as minirl's run), ``UPDATES_PER_ITER`` batches per round;
    its rounds collect whole episodes of at least max(rollout, 256) steps, so its label count
    overshoots the budget (reported as is).
    """
    import tempfile

    import gymnasium as gym
    import torch
    torch.set_num_threads(1)
    from imitation.algorithms import bc as ibc
    from imitation.algorithms.dagger import SimpleDAggerTrainer
    from imitation.data import rollout
    from imitation.data.wrappers import RolloutInfoWrapper
    from stable_baselines3.common.policies import ActorCriticPolicy, BasePolicy
    from stable_baselines3.common.vec_env import DummyVecEnv

    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from minirl.imitation.experts import CartPoleExpert, PendulumExpert

    env_id, seed, budget = args["env"], args["seed"], args["labels"]
    s = SETTINGS[env_id]
    expert = {"CartPole-v1": CartPoleExpert, "Pendulum-v1": PendulumExpert}[env_id]()
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)

    def expert_fn(obs, state=None, episode_start=None):
        return expert(np.asarray(obs)), state

    class ExpertPolicy(BasePolicy):      # SimpleDAggerTrainer wants an SB3 policy
        def _predict(self, observation, deterministic=False):
            return torch.as_tensor(expert(observation.cpu().numpy()))

    def make(limit=None):
        kw = {} if limit is None else {"max_episode_steps": limit}
        venv = DummyVecEnv([lambda: RolloutInfoWrapper(gym.make(env_id, **kw))])
        venv.seed(1000 * seed)
        return venv

    def trainer(demos=None):
        venv = make()
        policy = ActorCriticPolicy(venv.observation_space, venv.action_space,
                                   lr_schedule=lambda _: COMMON["lr"], net_arch=[64, 64],
                                   activation_fn=torch.nn.Tanh)
        return ibc.BC(observation_space=venv.observation_space, action_space=venv.action_space,
                      rng=rng, policy=policy, demonstrations=demos,
                      batch_size=COMMON["batch_size"], optimizer_kwargs={"lr": COMMON["lr"]})

    def score(policy) -> float:
        env, total = gym.make(env_id), 0.0
        for k in range(EVAL_EPISODES):
            obs, _ = env.reset(seed=EVAL_SEED + k)
            done = False
            while not done:
                act = policy.predict(obs, deterministic=True)[0]
                obs, r, term, trunc, _ = env.step(act)
                total += r
                done = term or trunc
        return total / EVAL_EPISODES

    trajs = rollout.generate_trajectories(expert_fn, make(s["demo_len"]),
                                          rollout.make_sample_until(
                                              min_timesteps=None,
                                              min_episodes=budget // s["demo_len"]), rng=rng)
    trajs = trajs[:budget // s["demo_len"]]
    out = []
    start, cpu = time.perf_counter(), time.process_time()
    bc = trainer(rollout.flatten_trajectories(trajs))
    bc.train(n_batches=BC_UPDATES, progress_bar=False, log_interval=10**9)
    out.append(dict(method="imitation-bc", labels=sum(len(t.acts) for t in trajs), env_steps=0,
                    updates=BC_UPDATES, return_mean=score(bc.policy),
                    wall_s=time.perf_counter() - start, cpu_s=time.process_time() - cpu))
    start, cpu = time.perf_counter(), time.process_time()
    bc2 = trainer()
    with tempfile.TemporaryDirectory() as tmp:
        venv = make()
        dagger = SimpleDAggerTrainer(venv=venv, scratch_dir=tmp,
                                     expert_policy=ExpertPolicy(venv.observation_space,
                                                                venv.action_space),
                                     bc_trainer=bc2, rng=rng, expert_trajs=trajs[:1],
                                     beta_schedule=lambda round_num: 0.0)
        dagger.train(total_timesteps=budget - s["demo_len"], rollout_round_min_episodes=1,
                     rollout_round_min_timesteps=s["rollout"],
                     bc_train_kwargs={"n_batches": UPDATES_PER_ITER, "progress_bar": False,
                                      "log_interval": 10**9})
        n_labels = int(sum(len(t.acts) for t in dagger._all_demos))
        rounds = int(dagger.round_num)
    out.append(dict(method="imitation-dagger", labels=n_labels, env_steps=n_labels - len(
        trajs[0].acts), updates=UPDATES_PER_ITER * (rounds + 1), return_mean=score(bc2.policy),
        wall_s=time.perf_counter() - start, cpu_s=time.process_time() - cpu))
    print(json.dumps(out))


def run_minirl_at_budget(env_id: str, seed: int, labels: int, command: str) -> list[dict]:
    """minirl's BC and DAgger at one label budget, timed (wall and CPU) for the peer table."""
    from minirl.algos.bc import BC, BCConfig
    from minirl.algos.dagger import DAgger, DAggerConfig
    s = SETTINGS[env_id]
    out = []
    start, cpu = time.perf_counter(), time.process_time()
    demos = demonstrations(env_id, seed, labels // s["demo_len"])
    agent = BC(env_id, BCConfig(policy=s["policy"], val_fraction=0.0, eval_interval=BC_UPDATES,
                                **COMMON), seed=seed, demos=demos).learn(BC_UPDATES)
    out.append(dict(method="bc", labels=len(demos), env_steps=0, updates=BC_UPDATES,
                    return_mean=evaluate(agent), wall_s=time.perf_counter() - start,
                    cpu_s=time.process_time() - cpu))
    start, cpu = time.perf_counter(), time.process_time()
    cfg = DAggerConfig(policy=s["policy"], steps_per_iter=s["rollout"],
                       updates_per_iter=UPDATES_PER_ITER, **COMMON)
    agent = DAgger(env_id, cfg, seed=seed, demos=demos.first_episodes(1))
    agent.learn(labels - s["demo_len"])
    out.append(dict(method="dagger", labels=agent.extra_state["n_data"],
                    env_steps=agent.total_steps, updates=UPDATES_PER_ITER * (agent.iterations + 1),
                    return_mean=evaluate(agent), wall_s=time.perf_counter() - start,
                    cpu_s=time.process_time() - cpu))
    return [dict(env=env_id, seed=seed, command=command, **r) for r in out]


def run_peer(python: str, env_id: str, seed: int, labels: int, command: str) -> list[dict]:
    args = json.dumps({"env": env_id, "seed": seed, "labels": labels})
    proc = subprocess.run([python, "-m", "benchmarks.learning.imitation", "--peer-worker", args],
                          capture_output=True, text=True, cwd=Path(__file__).resolve().parents[2])
    if proc.returncode != 0:
        raise RuntimeError(f"imitation peer failed:\n{proc.stderr[-3000:]}")
    rows = json.loads(proc.stdout.strip().splitlines()[-1])
    return [dict(env=env_id, seed=seed, command=command, **r) for r in rows]


# ----- results ----------------------------------------------------------------------------------

def write_csv(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, COLUMNS)
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})


def read_csv(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with open(path) as f:
        return list(csv.DictReader(f))


def _curve(rows, env, method):
    """{labels: [returns over seeds]} with each seed's curve made a step function of labels
    (a seed's return at budget N is its last evaluation with at most N labels)."""
    by_seed = {}
    for r in rows:
        if r["env"] == env and r["method"] == method:
            by_seed.setdefault(r["seed"], []).append((int(r["labels"]), float(r["return_mean"])))
    return by_seed


def at_budget(by_seed: dict, budget: int) -> list[float]:
    vals = []
    for pts in by_seed.values():
        ok = [ret for lab, ret in sorted(pts) if lab <= budget]
        if ok:
            vals.append(ok[-1])
    return vals


def first_reaching(by_seed: dict, threshold: float) -> list:
    out = []
    for pts in by_seed.values():
        hit = [lab for lab, ret in sorted(pts) if ret >= threshold]
        out.append(hit[0] if hit else None)
    return out


def write_report(command: str) -> None:
    rows = read_csv(CSV)
    peer = read_csv(PEER_CSV)
    if not rows:
        return
    lines = ["# Imitation learning: compounding errors, measured", "",
             "Return (mean of 5 deterministic evaluation episodes) against the number of expert",
             "labels, mean +- std over seeds; a seed's DAgger/intervention value at a budget is its",
             "last evaluation with at most that many labels. Protocol: `benchmarks/learning/"
             "imitation.py`.", "",
             f"BC trains {BC_UPDATES} Adam steps per budget; DAgger/intervention train "
             f"{UPDATES_PER_ITER} on the first demonstration episode and {UPDATES_PER_ITER} more "
             "after every aggregation (warm start), so their first evaluations come after "
             f"{2 * UPDATES_PER_ITER} steps: their early points are limited by training, not "
             "only by labels.", "", f"Made by: `{command}`", ""]
    for env, s in SETTINGS.items():
        methods = [m for m in ("bc", "dagger", "intervention")
                   if any(r["env"] == env and r["method"] == m for r in rows)]
        if not methods:
            continue
        seeds = sorted({r["seed"] for r in rows if r["env"] == env})
        lines += [f"## {env} ({s['policy']} policy, seeds {', '.join(seeds)})", "",
                  "| labels | " + " | ".join(methods) + " |",
                  "|---:|" + "---:|" * len(methods)]
        for b in s["bc_budgets"]:
            cells = []
            for m in methods:
                v = at_budget(_curve(rows, env, m), b)
                cells.append(f"{np.mean(v):.1f} +- {np.std(v):.1f} ({len(v)})" if v else "-")
            lines.append(f"| {b} | " + " | ".join(cells) + " |")
        lines += ["", f"Labels until the return first reaches {s['threshold']:g} (per seed; - = "
                  "never within the run):", ""]
        medians = {}
        for m in methods:
            hits = first_reaching(_curve(rows, env, m), s["threshold"])
            # A seed that never reaches it counts as needing more labels than any that did.
            medians[m] = float(np.median([np.inf if h is None else h for h in hits]))
            lines.append(f"- {m}: {', '.join('-' if h is None else str(h) for h in hits)}"
                         f" (median over all seeds {medians[m]:g})")
        if "bc" in medians and "dagger" in medians:
            lines += ["", "Verdict: DAgger reached the threshold with "
                      + ("fewer" if medians["dagger"] < medians["bc"] else "NOT fewer")
                      + f" labels than BC (median {medians['dagger']:g} vs {medians['bc']:g})"
                      + (f"; the intervention variant with median {medians['intervention']:g}"
                         if "intervention" in medians else "") + "."]
        walls = {m: np.median([float(r["wall_s"]) for r in rows
                               if r["env"] == env and r["method"] == m]) for m in methods}
        lines += ["", "Median wall time of one run (s): "
                  + ", ".join(f"{m} {w:.1f}" for m, w in walls.items()), ""]
    if peer:
        lines += ["## Peer: the `imitation` library (BC, SimpleDAggerTrainer)", "",
                  "Same expert, label budget, network (64-64 tanh), batch size, learning rate, "
                  "number of BC batches and evaluation episodes; torch one thread. minirl's pair "
                  "and the library's ran back to back per seed in one command (the library in "
                  "its own venv: it needs gymnasium 0.29). The library's DAgger rounds collect "
                  "whole episodes of at least 256 steps, so its label count overshoots the "
                  "budget, and it trains fewer batches (200 per round, few rounds) than "
                  "minirl's DAgger (200 per 10- or 100-step iteration), so only the BC rows are "
                  "equal work. The library's BC maximizes the likelihood of SB3's policy "
                  "(categorical on CartPole, a Gaussian with a state-independent std on "
                  "Pendulum, evaluated at its mean), where minirl's Pendulum rows regress with "
                  "L2. CPU seconds are the fairer speed measure on this shared machine.", "",
                  "| env | seed | method | labels | return | wall s | CPU s |",
                  "|---|---:|---|---:|---:|---:|---:|"]
        for r in peer:
            lines.append(f"| {r['env']} | {r['seed']} | {r['method']} | {r['labels']} | "
                         f"{float(r['return_mean']):.1f} | {float(r['wall_s']):.1f} | "
                         f"{float(r['cpu_s']):.1f} |")
        lines += ["", f"Made by: `{peer[0]['command']}`", ""]
    (RESULTS / "imitation.md").write_text("\n".join(lines) + "\n")
    plot(rows)


def plot(rows) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(SETTINGS), figsize=(11, 4))
    for ax, (env, s) in zip(axes, SETTINGS.items()):
        for m, style in (("bc", "o-"), ("dagger", "s-"), ("intervention", "^-")):
            curve = _curve(rows, env, m)
            if not curve:
                continue
            grid = sorted({lab for pts in curve.values() for lab, _ in pts})
            grid = [g for g in grid if len(at_budget(curve, g)) == len(curve)]
            mean = np.array([np.mean(at_budget(curve, g)) for g in grid])
            std = np.array([np.std(at_budget(curve, g)) for g in grid])
            ax.plot(grid, mean, style, ms=3, label=m)
            ax.fill_between(grid, mean - std, mean + std, alpha=0.2)
        ax.axhline(s["threshold"], color="k", ls=":", lw=1, label=f"threshold {s['threshold']:g}")
        ax.set_xscale("log")
        ax.set_xlabel("expert labels")
        ax.set_ylabel("return")
        ax.set_title(env)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(RESULTS / "imitation_compounding.png", dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--envs", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    p.add_argument("--methods", nargs="+", default=["bc", "dagger", "intervention"],
                   choices=["bc", "dagger", "intervention"])
    p.add_argument("--peer", action="store_true", help="also run the imitation library")
    p.add_argument("--peer-only", action="store_true", help="only the imitation library")
    p.add_argument("--peer-python", default="/tmp/imitation-peer/bin/python",
                   help="interpreter of a venv with imitation and torch==2.13.0+cpu")
    p.add_argument("--peer-labels", type=int, nargs="+", default=None,
                   help="label budgets for the peer (default: 320 CartPole, 1600 Pendulum)")
    p.add_argument("--table", action="store_true", help="only rebuild the markdown and plot")
    p.add_argument("--peer-worker", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.peer_worker:
        peer_worker(json.loads(args.peer_worker))
        return 0
    command = "python -m benchmarks.learning.imitation " + shlex.join(
        sys.argv[1:] if argv is None else argv)
    RESULTS.mkdir(exist_ok=True)
    if args.table:
        write_report(read_csv(CSV)[0]["command"] if read_csv(CSV) else command)
        return 0
    if not args.peer_only:
        rows = []
        for env_id in args.envs:
            for seed in args.seeds:
                for m in args.methods:
                    new = (run_bc(env_id, seed, command) if m == "bc" else
                           run_dagger(env_id, seed, "none" if m == "dagger" else "intervention",
                                      command))
                    rows += new
                    last = new[-1]
                    print(f"{env_id} seed {seed} {m}: {last['labels']} labels -> "
                          f"{last['return_mean']:.1f} ({sum(r['wall_s'] for r in new[-1:]):.1f} s)",
                          flush=True)
                write_csv(CSV, rows)
    if args.peer or args.peer_only:
        budgets = dict(zip(SETTINGS, args.peer_labels or [320, 1600]))
        peer_rows = []
        for env_id in args.envs:
            for seed in args.seeds:
                # Back to back in one command: minirl's pair, then the library's.
                peer_rows += run_minirl_at_budget(env_id, seed, budgets[env_id], command)
                peer_rows += run_peer(args.peer_python, env_id, seed, budgets[env_id], command)
                print(peer_rows[-4:], flush=True)
                write_csv(PEER_CSV, peer_rows)
    write_report(read_csv(CSV)[0]["command"] if read_csv(CSV) else command)
    return 0


if __name__ == "__main__":
    sys.exit(main())
