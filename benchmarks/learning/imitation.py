"""Compounding errors, measured: return against the number of expert labels for behaviour
cloning, DAgger and DAgger with expert interventions, on CartPole-v1 and Pendulum-v1 with
minirl's analytic experts; plus the ``imitation`` library as an optional peer.

    python -m benchmarks.learning.imitation [--seeds 0 1 2 3 4] [--settings NAME ...]
    python -m benchmarks.learning.imitation --peer-only [--peer-python PATH] [--seeds 0 1 2]
    python -m benchmarks.learning.imitation --diagnose [--seeds 0 1 2 3 4]  # why, measured
    python -m benchmarks.learning.imitation --table                        # rebuild md + plot

Protocol (per setting and seed s; every number is in ``SETTINGS`` / the constants below):

* Labels are individual expert-labelled (s, a) pairs. The budget grid is
  n_0, 2 n_0, 4 n_0, ... (the same for every method).
* BC at a budget of N labels: the first N pairs of a stream of whole expert episodes (reset
  seeds 1000 s + k; the last episode cut after its N-th step), trained from fresh parameters
  with ``UPDATES`` minibatch Adam steps, no validation split.
* DAgger (Ross et al. 2011): D = the first n_0 pairs of the same stream (so its first point is
  BC's, bit-identical); iteration i rolls out the learner for n_0 2^i steps (deterministic
  actions, beta = 0), labels every visited state with the expert, aggregates, and retrains from
  fresh parameters with the same ``UPDATES`` Adam steps. D doubles each iteration, so DAgger is
  evaluated on BC's grid with the same learner, the same training and the same label count;
  only where the labels come from differs (the expert's states vs the learner's own).
* DAgger-online: the same start, but short warm-started iterations (``online_steps`` rollout
  steps, ``ONLINE_UPDATES`` Adam steps each), so the learner improves between short rollouts;
  at each grid budget its D is given to BC's exact recipe (fresh parameters, ``UPDATES``
  steps) and that policy is evaluated: the same learner and training as BC, only the labels
  differ.
* Intervention (HG-DAgger style): the same rollouts, but the expert takes control when the
  learner's action differs from its own (CartPole: any disagreement; Pendulum: scaled distance
  > 0.2) and keeps it for 10 steps; only those steps are labelled (the expert *watches* every
  step: those queries are not counted as labels). Its label counts fall between grid points.
* Return: mean over ``EVAL_EPISODES`` deterministic episodes with reset seeds 10_000 + k, the
  same episodes for every method, the expert and a uniformly random policy. "Reaches the
  expert's return": normalized score (R - R_random) / (R_expert - R_random) >= 0.95 on those
  episodes. A seed's DAgger/intervention value at a budget is its last evaluation with at most
  that many labels.

Settings: ``cartpole`` (LQR expert), ``cartpole-lowdamp`` (the LQR gain with its theta_dot
entry x 0.35: an expert that balances every episode but with little stability margin),
``pendulum`` (energy swing-up + PD, L2 learner 64-64) and ``pendulum-small`` (L2 learner
16-16, which cannot represent the expert's switching law exactly). Policies: CartPole
categorical, Pendulum L2 regression (version 0: the expert is deterministic), MLP tanh,
Adam 1e-3, batch 256 - the same for BC and DAgger.

Results: ``benchmarks/results/imitation_compounding_<setting>.csv`` (one row per evaluation;
``expert`` and ``random`` rows at 0 labels are the reference returns; one file per setting so
settings can run in parallel processes), ``imitation_diagnostics.csv`` (``--diagnose``: the BC
learner's error on the expert's states against its own, where Pendulum's labels lie, CartPole's
tolerance to a wrong switching law), ``imitation_compounding.png``
(mean +- std over seeds), ``imitation.md`` (tables and the commands). The peer (``imitation``
1.0.1: BC and SimpleDAggerTrainer, torch, one thread) needs gymnasium 0.29 and SB3 2.2, which
conflict with minirl's gymnasium >= 1.0, so it runs in its own interpreter
(``--peer-python``, a venv with torch==2.13.0+cpu and imitation) and writes
``imitation_peer.csv``. Threads are pinned to one before NumPy and torch are imported.

Results are never lost or overwritten silently: every file is written atomically (a temporary
file renamed over it) after each seed and method, and a run replaces only what it re-ran,
saying so on stdout: in ``imitation_compounding_<setting>.csv`` the rows of each (method,
seed) it ran and the expert/random reference rows, in ``imitation_diagnostics.csv`` each
(kind, setting, seed, labels) group, in ``imitation_peer.csv`` each (setting, seed); rows of
other seeds, methods and settings are kept.
"""
import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import shlex  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from benchmarks._harness import (atomic_path, atomic_write_text, read_csv_rows,  # noqa: E402
                                store_rows)

RESULTS = Path(__file__).resolve().parents[1] / "results"
CSV = RESULTS / "imitation_compounding_{}.csv"     # one per setting
PEER_CSV = RESULTS / "imitation_peer.csv"
COLUMNS = ["setting", "env", "method", "seed", "labels", "env_steps", "updates", "return_mean",
           "wall_s", "cpu_s", "command"]
EVAL_EPISODES, EVAL_SEED = 20, 10_000
LOWDAMP = 0.35          # theta_dot gain factor of the less damped CartPole expert
SETTINGS = {
    "cartpole": dict(env="CartPole-v1", policy="categorical", hidden=(64, 64), expert="lqr",
                     grid=[25, 50, 100, 200, 400, 800], gate_threshold=0.5, online_steps=25),
    "cartpole-lowdamp": dict(env="CartPole-v1", policy="categorical", hidden=(64, 64),
                             expert="lowdamp", grid=[25, 50, 100, 200, 400, 800],
                             gate_threshold=0.5, online_steps=25),
    "pendulum": dict(env="Pendulum-v1", policy="l2", hidden=(64, 64), expert="energy",
                     grid=[200, 400, 800, 1600, 3200], gate_threshold=0.2, online_steps=100),
    "pendulum-small": dict(env="Pendulum-v1", policy="l2", hidden=(16, 16), expert="energy",
                           grid=[200, 400, 800, 1600, 3200], gate_threshold=0.2, online_steps=100),
}
COMMON = dict(lr=1e-3, batch_size=256)
UPDATES, GATE_HOLD, LEVEL, STRICT = 2000, 10, 0.95, 0.99   # levels: fractions of the way
ONLINE_UPDATES = 200    # dagger-online: Adam steps per (warm-started) iteration


# ----- minirl runs ------------------------------------------------------------------------------

def make_expert(setting: str):
    from minirl.imitation.experts import CartPoleExpert, PendulumExpert, cartpole_lqr_gain
    kind = SETTINGS[setting]["expert"]
    if kind == "lqr":
        return CartPoleExpert()
    if kind == "lowdamp":
        return CartPoleExpert(gain=cartpole_lqr_gain() * np.array([1.0, 1.0, 1.0, LOWDAMP]))
    return PendulumExpert()


def demonstrations(setting: str, seed: int, n_labels: int):
    """The first ``n_labels`` pairs of whole expert episodes (reset seeds 1000 seed + k)."""
    from minirl.imitation import collect_demonstrations
    s = SETTINGS[setting]
    horizon = {"CartPole-v1": 500, "Pendulum-v1": 200}[s["env"]]
    demos = collect_demonstrations(make_expert(setting), s["env"], -(-n_labels // horizon),
                                   seed=1000 * seed)
    return demos.first_steps(n_labels)


def evaluate(agent) -> float:
    return float(agent.evaluate(EVAL_EPISODES, deterministic=True, seed=EVAL_SEED).mean())


def reference_returns(setting: str) -> dict:
    """Mean return of the expert and of uniformly random actions on the evaluation episodes."""
    import gymnasium as gym
    s = SETTINGS[setting]
    expert, env = make_expert(setting), gym.make(s["env"])
    env.action_space.seed(EVAL_SEED)
    out = {}
    for name in ("expert", "random"):
        total = 0.0
        for k in range(EVAL_EPISODES):
            obs, _ = env.reset(seed=EVAL_SEED + k)
            done = False
            while not done:
                act = (env.action_space.sample() if name == "random"
                       else np.asarray(expert(np.asarray(obs)[None]))[0])
                obs, r, term, trunc, _ = env.step(act.item() if s["env"] == "CartPole-v1"
                                                  else act)
                total += float(r)
                done = term or trunc
        out[name] = total / EVAL_EPISODES
    env.close()
    return out


def _row(setting, method, seed, labels, env_steps, updates, ret, start, cpu, command):
    return dict(setting=setting, env=SETTINGS[setting]["env"], method=method, seed=seed,
                labels=labels, env_steps=env_steps, updates=updates, return_mean=ret,
                wall_s=time.perf_counter() - start, cpu_s=time.process_time() - cpu,
                command=command)


def run_bc(setting: str, seed: int, command: str) -> list[dict]:
    from minirl.algos.bc import BC, BCConfig
    s = SETTINGS[setting]
    demos = demonstrations(setting, seed, max(s["grid"]))
    rows = []
    for budget in s["grid"]:
        start, cpu = time.perf_counter(), time.process_time()
        cfg = BCConfig(policy=s["policy"], hidden_sizes=s["hidden"], val_fraction=0.0,
                       eval_interval=UPDATES, **COMMON)
        agent = BC(s["env"], cfg, seed=seed, demos=demos.first_steps(budget)).learn(UPDATES)
        rows.append(_row(setting, "bc", seed, budget, 0, UPDATES, evaluate(agent), start, cpu,
                         command))
    return rows


def run_dagger(setting: str, seed: int, gate: str, command: str) -> list[dict]:
    from minirl.algos.dagger import DAgger, DAggerConfig
    s = SETTINGS[setting]
    n0 = s["grid"][0]
    cfg = DAggerConfig(policy=s["policy"], hidden_sizes=s["hidden"], steps_per_iter=n0,
                       steps_growth=2.0, warm_start=False, updates_per_iter=UPDATES, gate=gate,
                       gate_threshold=s["gate_threshold"], gate_hold=GATE_HOLD, **COMMON)
    method = "dagger" if gate == "none" else "intervention"
    start, cpu = time.perf_counter(), time.process_time()
    agent = DAgger(s["env"], cfg, seed=seed, demos=demonstrations(setting, seed, n0),
                   expert=make_expert(setting))
    rows = []

    def record(a, metrics):
        rows.append(_row(setting, method, seed, metrics["labels"], metrics["steps"],
                         UPDATES, evaluate(a), start, cpu, command))

    # Step 0 alone (BC on the first n_0 labels) is the first point; one iteration per doubling.
    agent._initial_data()
    agent._update(UPDATES)
    record(agent, {"labels": n0, "steps": 0})
    agent.learn(n0 * (2 ** (len(s["grid"]) - 1) - 1), callback=record)
    return rows


def dataset_of(agent) -> "Demonstrations":
    """DAgger's aggregated D (every (s, a*) pair so far) as one Demonstrations 'episode' (BC
    uses only states and actions; rewards are zero, the end marked truncated)."""
    from minirl.imitation import Demonstrations
    n = agent.data_obs.shape[0]
    ep = {"obs": np.concatenate([agent.data_obs, agent.data_obs[-1:]]),
          "actions": agent.data_actions, "rewards": np.zeros(n),
          "terminated": np.zeros(n, bool), "truncated": np.r_[np.zeros(n - 1, bool), True]}
    return Demonstrations.from_episodes([ep], agent.obs_space, agent.action_space, agent.env_id)


def run_dagger_online(setting: str, seed: int, command: str) -> list[dict]:
    """DAgger with small warm-started iterations (``ONLINE_STEPS`` rollout steps,
    ``ONLINE_UPDATES`` Adam steps each: the learner improves between short rollouts); at every
    grid budget its D is handed to BC's exact recipe (fresh parameters, ``UPDATES`` steps) and
    that policy is evaluated, so the comparison with BC is of the labels alone."""
    from minirl.algos.bc import BC, BCConfig
    from minirl.algos.dagger import DAgger, DAggerConfig
    s = SETTINGS[setting]
    n0, step = s["grid"][0], s["online_steps"]
    cfg = DAggerConfig(policy=s["policy"], hidden_sizes=s["hidden"], steps_per_iter=step,
                       updates_per_iter=ONLINE_UPDATES, **COMMON)
    start, cpu = time.perf_counter(), time.process_time()
    demos = demonstrations(setting, seed, n0)
    agent = DAgger(s["env"], cfg, seed=seed, demos=demos, expert=make_expert(setting))
    bc_cfg = BCConfig(policy=s["policy"], hidden_sizes=s["hidden"], val_fraction=0.0,
                      eval_interval=UPDATES, **COMMON)
    rows = []

    def record(a, metrics):
        if metrics["labels"] in s["grid"]:
            fresh = BC(s["env"], bc_cfg, seed=seed, demos=dataset_of(a)).learn(UPDATES)
            rows.append(_row(setting, "dagger-online", seed, metrics["labels"],
                             metrics["steps"], UPDATES, evaluate(fresh), start, cpu, command))

    first = BC(s["env"], bc_cfg, seed=seed, demos=demos).learn(UPDATES)   # = BC's first point
    rows.append(_row(setting, "dagger-online", seed, n0, 0, UPDATES, evaluate(first), start,
                     cpu, command))
    agent.learn(max(s["grid"]) - n0, callback=record)
    return rows


# ----- the imitation library (runs in its own interpreter) --------------------------------------

PEER_BUDGETS = {"cartpole": 400, "pendulum": 1600}   # (imitation BC needs >= 256 pairs)


def peer_worker(args: dict) -> None:
    """BC and DAgger of the ``imitation`` library with the same expert, budget and evaluation.

    Policy: SB3's ActorCriticPolicy with the setting's tanh MLP (imitation's BC maximizes its
    log-likelihood: categorical for CartPole, Gaussian with a state-independent std for
    Pendulum, entropy weight 1e-3; evaluated at its mode/mean), Adam 1e-3, batch 256. BC: the
    first ``labels`` pairs of whole expert episodes, ``UPDATES`` batches. DAgger:
    SimpleDAggerTrainer from the first labels / 4 pairs, beta = 0 (as minirl's run),
    ``UPDATES`` batches per round on its (warm-started) policy; its rounds collect whole
    episodes, so its label count overshoots the budget (reported as is).
    """
    import tempfile

    import gymnasium as gym
    import torch
    torch.set_num_threads(1)
    from imitation.algorithms import bc as ibc
    from imitation.algorithms.dagger import SimpleDAggerTrainer
    from imitation.data import rollout, types
    from imitation.data.wrappers import RolloutInfoWrapper
    from stable_baselines3.common.policies import ActorCriticPolicy, BasePolicy
    from stable_baselines3.common.vec_env import DummyVecEnv

    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    setting, seed, budget = args["setting"], args["seed"], args["labels"]
    s = SETTINGS[setting]
    env_id, expert = s["env"], make_expert(setting)
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)

    def expert_fn(obs, state=None, episode_start=None):
        return expert(np.asarray(obs)), state

    class ExpertPolicy(BasePolicy):      # SimpleDAggerTrainer wants an SB3 policy
        def _predict(self, observation, deterministic=False):
            return torch.as_tensor(expert(observation.cpu().numpy()))

    def make():
        venv = DummyVecEnv([lambda: RolloutInfoWrapper(gym.make(env_id))])
        venv.seed(1000 * seed)
        return venv

    def trainer(demos=None):
        venv = make()
        policy = ActorCriticPolicy(venv.observation_space, venv.action_space,
                                   lr_schedule=lambda _: COMMON["lr"],
                                   net_arch=list(s["hidden"]), activation_fn=torch.nn.Tanh)
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

    def first_steps(trajs, n):
        """The first n pairs of whole trajectories, the last one cut (not terminal)."""
        out = []
        for t in trajs:
            if len(t.acts) >= n:
                out.append(types.TrajectoryWithRew(
                    obs=t.obs[:n + 1], acts=t.acts[:n],
                    infos=None if t.infos is None else t.infos[:n], terminal=False,
                    rews=t.rews[:n]))
                return out
            out.append(t)
            n -= len(t.acts)
        raise ValueError("not enough expert steps")

    horizon = {"CartPole-v1": 500, "Pendulum-v1": 200}[env_id]
    trajs = rollout.generate_trajectories(expert_fn, make(), rollout.make_sample_until(
        min_timesteps=None, min_episodes=-(-budget // horizon)), rng=rng)
    out = []
    start, cpu = time.perf_counter(), time.process_time()
    demos = first_steps(trajs, budget)
    bc = trainer(rollout.flatten_trajectories(demos))
    bc.train(n_batches=UPDATES, progress_bar=False, log_interval=10**9)
    out.append(dict(method="imitation-bc", labels=sum(len(t.acts) for t in demos), env_steps=0,
                    updates=UPDATES, return_mean=score(bc.policy),
                    wall_s=time.perf_counter() - start, cpu_s=time.process_time() - cpu))
    start, cpu = time.perf_counter(), time.process_time()
    bc2 = trainer()
    with tempfile.TemporaryDirectory() as tmp:
        venv = make()
        dagger = SimpleDAggerTrainer(venv=venv, scratch_dir=tmp,
                                     expert_policy=ExpertPolicy(venv.observation_space,
                                                                venv.action_space),
                                     bc_trainer=bc2, rng=rng,
                                     expert_trajs=first_steps(trajs, budget // 4),
                                     beta_schedule=lambda round_num: 0.0)
        dagger.train(total_timesteps=budget - budget // 4, rollout_round_min_episodes=1,
                     rollout_round_min_timesteps=budget // 4,
                     bc_train_kwargs={"n_batches": UPDATES, "progress_bar": False,
                                      "log_interval": 10**9})
        n_labels = int(sum(len(t.acts) for t in dagger._all_demos))
        rounds = int(dagger.round_num)
    out.append(dict(method="imitation-dagger", labels=n_labels,
                    env_steps=n_labels - budget // 4, updates=UPDATES * (rounds + 1),
                    return_mean=score(bc2.policy), wall_s=time.perf_counter() - start,
                    cpu_s=time.process_time() - cpu))
    print(json.dumps(out))


def run_minirl_at_budget(setting: str, seed: int, labels: int, command: str) -> list[dict]:
    """minirl's BC and DAgger at one label budget, timed (wall and CPU) for the peer table:
    BC on the first ``labels`` expert pairs; DAgger from the first labels / 4, two doublings
    (the benchmark's protocol, cold-started ``UPDATES`` steps per iteration)."""
    from minirl.algos.bc import BC, BCConfig
    from minirl.algos.dagger import DAgger, DAggerConfig
    s = SETTINGS[setting]
    out = []
    start, cpu = time.perf_counter(), time.process_time()
    demos = demonstrations(setting, seed, labels)
    agent = BC(s["env"], BCConfig(policy=s["policy"], hidden_sizes=s["hidden"],
                                  val_fraction=0.0, eval_interval=UPDATES, **COMMON),
               seed=seed, demos=demos).learn(UPDATES)
    out.append(dict(method="bc", labels=len(demos), env_steps=0, updates=UPDATES,
                    return_mean=evaluate(agent), wall_s=time.perf_counter() - start,
                    cpu_s=time.process_time() - cpu))
    start, cpu = time.perf_counter(), time.process_time()
    cfg = DAggerConfig(policy=s["policy"], hidden_sizes=s["hidden"], steps_per_iter=labels // 4,
                       steps_growth=2.0, warm_start=False, updates_per_iter=UPDATES, **COMMON)
    agent = DAgger(s["env"], cfg, seed=seed, demos=demos.first_steps(labels // 4),
                   expert=make_expert(setting))
    agent.learn(labels - labels // 4)
    out.append(dict(method="dagger", labels=agent.extra_state["n_data"],
                    env_steps=agent.total_steps, updates=UPDATES * (agent.iterations + 1),
                    return_mean=evaluate(agent), wall_s=time.perf_counter() - start,
                    cpu_s=time.process_time() - cpu))
    return [dict(setting=setting, env=s["env"], seed=seed, command=command, **r) for r in out]


def run_peer(python: str, setting: str, seed: int, labels: int, command: str) -> list[dict]:
    args = json.dumps({"setting": setting, "seed": seed, "labels": labels})
    proc = subprocess.run([python, "-m", "benchmarks.learning.imitation", "--peer-worker", args],
                          capture_output=True, text=True, cwd=Path(__file__).resolve().parents[2])
    if proc.returncode != 0:
        raise RuntimeError(f"imitation peer failed:\n{proc.stderr[-3000:]}")
    rows = json.loads(proc.stdout.strip().splitlines()[-1])
    return [dict(setting=setting, env=SETTINGS[setting]["env"], seed=seed, command=command, **r)
            for r in rows]


# ----- results ----------------------------------------------------------------------------------

def _cell(v):
    return f"{v:.6g}" if isinstance(v, float) else v


def _by_seed(r) -> int:
    return -1 if str(r["seed"]) == "-" else int(r["seed"])


#: The key a run replaces its old rows by, per file (see the module docstring).
KEY, DIAG_KEY, PEER_KEY = ("method", "seed"), ("kind", "setting", "seed", "labels"), \
    ("setting", "seed")


def store(path: Path, rows: list[dict], key, columns=COLUMNS) -> None:
    """Merge ``rows`` into ``path`` (atomically): old rows with one of their ``key`` values
    are replaced (said on stdout), all others kept; rows ordered by seed (stable)."""
    store_rows(path, rows, key, columns, sort_key=_by_seed, fmt=_cell)


def csv_path(setting: str) -> Path:
    return Path(str(CSV).format(setting))


def read_rows() -> list[dict]:
    """Every setting's rows (from its own CSV)."""
    return [r for setting in SETTINGS for r in read_csv(csv_path(setting))]


def read_csv(path: Path) -> list[dict]:
    return read_csv_rows(path)


def _curve(rows, setting, method):
    """{seed: [(labels, return)]} of one setting and method."""
    by_seed = {}
    for r in rows:
        if r["setting"] == setting and r["method"] == method:
            by_seed.setdefault(r["seed"], []).append((int(r["labels"]), float(r["return_mean"])))
    return by_seed


def at_budget(by_seed: dict, budget: int) -> list[float]:
    """Each seed's return at a budget: its last evaluation with at most ``budget`` labels."""
    vals = []
    for pts in by_seed.values():
        ok = [ret for lab, ret in sorted(pts) if lab <= budget]
        if ok:
            vals.append(ok[-1])
    return vals


def first_reaching(by_seed: dict, level: float) -> list:
    """Per seed, the fewest labels at which the return reached ``level`` (None: never)."""
    out = []
    for pts in by_seed.values():
        hit = [lab for lab, ret in sorted(pts) if ret >= level]
        out.append(hit[0] if hit else None)
    return out


def threshold(rows, setting, frac: float = LEVEL) -> tuple[float, float, float]:
    """(R_expert, R_random, R_random + frac (R_expert - R_random)) from the reference rows."""
    ref = {r["method"]: float(r["return_mean"]) for r in rows
           if r["setting"] == setting and r["method"] in ("expert", "random")}
    return ref["expert"], ref["random"], ref["random"] + frac * (ref["expert"] - ref["random"])


# ----- diagnostics: why (and where) the learner's states differ from the expert's ---------------

DIAG_CSV = RESULTS / "imitation_diagnostics.csv"
DIAG_COLUMNS = ["kind", "setting", "seed", "labels", "name", "value", "command"]
DIAG_BUDGETS = {"cartpole": [25, 100], "cartpole-lowdamp": [25, 100], "pendulum": [400, 1600],
                "pendulum-small": [400, 1600]}
DIAG_EPISODES = 5


def _error(setting: str, learner, expert) -> float:
    """Per-step imitation error: CartPole the 0/1 disagreement, Pendulum |a - a*| / 2."""
    if SETTINGS[setting]["env"] == "CartPole-v1":
        return float(np.mean(np.asarray(learner) != np.asarray(expert)))
    return float(np.mean(np.abs(np.asarray(learner) - np.asarray(expert)))) / 2.0


def covariate_shift(setting: str, seed: int, command: str) -> list[dict]:
    """Ross et al.'s quantities for the BC learner: its error on the expert's states
    (``DIAG_EPISODES`` held-out expert episodes, reset seeds 20_000 + k) and on its own states
    (its own episodes from the evaluation resets). Compounding errors = the second much larger."""
    import gymnasium as gym

    from minirl.algos.bc import BC, BCConfig
    from minirl.imitation import collect_demonstrations
    s = SETTINGS[setting]
    expert = make_expert(setting)
    held_out = collect_demonstrations(expert, s["env"], DIAG_EPISODES, seed=20_000)
    demos = demonstrations(setting, seed, max(DIAG_BUDGETS[setting]))
    rows = []
    for budget in DIAG_BUDGETS[setting]:
        cfg = BCConfig(policy=s["policy"], hidden_sizes=s["hidden"], val_fraction=0.0,
                       eval_interval=UPDATES, **COMMON)
        agent = BC(s["env"], cfg, seed=seed, demos=demos.first_steps(budget)).learn(UPDATES)
        on_expert = _error(setting, agent.predict(held_out.obs, deterministic=True),
                           held_out.actions)
        env, own_obs, own_act, lengths = gym.make(s["env"]), [], [], []
        for k in range(DIAG_EPISODES):
            obs, _ = env.reset(seed=EVAL_SEED + k)
            done, t = False, 0
            while not done:
                act = agent.predict(np.asarray(obs)[None], deterministic=True)[0]
                own_obs.append(np.asarray(obs, np.float64))
                own_act.append(act)
                obs, _, term, trunc, _ = env.step(act.item() if s["env"] == "CartPole-v1"
                                                  else act)
                done, t = term or trunc, t + 1
            lengths.append(t)
        env.close()
        own_obs = np.array(own_obs)
        on_own = _error(setting, np.array(own_act), np.asarray(expert(own_obs)).reshape(
            np.array(own_act).shape))
        for name, v in (("error_on_expert_states", on_expert), ("error_on_own_states", on_own),
                        ("mean_episode_length", float(np.mean(lengths)))):
            rows.append(dict(kind="shift", setting=setting, seed=seed, labels=budget, name=name,
                             value=v, command=command))
    return rows


def pendulum_regions(obs: np.ndarray) -> dict:
    """Fractions of Pendulum states: ``top`` (within 0.6 rad of upright: the expert's balance
    region), ``spinning`` (energy E = w^2/30 + cos(theta) > 1.3: over the top and round again),
    ``hanging`` (E < 0: far below the swing-up energy)."""
    c, w = obs[:, 0], obs[:, 2]
    energy = w * w / 30.0 + c
    return {"top": float(np.mean(c > np.cos(0.6))), "spinning": float(np.mean(energy > 1.3)),
            "hanging": float(np.mean(energy < 0.0))}


def label_regions(seed: int, command: str) -> list[dict]:
    """Where Pendulum's labels lie: the expert's first 800 pairs (BC's data at 800) against the
    labels DAgger and the intervention variant collected in their first two iterations (from
    200 expert pairs, rollouts of 200 + 400 steps: DAgger's D reaches 800)."""
    from minirl.algos.dagger import DAgger, DAggerConfig
    s = SETTINGS["pendulum"]
    demos = demonstrations("pendulum", seed, 800)
    out = {"bc (expert states)": pendulum_regions(demos.obs)}
    for gate in ("none", "intervention"):
        cfg = DAggerConfig(policy=s["policy"], hidden_sizes=s["hidden"], steps_per_iter=200,
                           steps_growth=2.0, warm_start=False, updates_per_iter=UPDATES,
                           gate=gate, gate_threshold=s["gate_threshold"], gate_hold=GATE_HOLD,
                           **COMMON)
        agent = DAgger(s["env"], cfg, seed=seed, demos=demos.first_steps(200),
                       expert=make_expert("pendulum")).learn(600)
        name = "dagger" if gate == "none" else "intervention"
        out[f"{name} (its {agent.data_obs.shape[0] - 200} collected labels)"] = \
            pendulum_regions(agent.data_obs[200:])
    return [dict(kind="regions", setting="pendulum", seed=seed, labels=800, name=f"{k}: {r}",
                 value=v, command=command) for k, fr in out.items() for r, v in fr.items()]


def expert_robustness(command: str) -> list[dict]:
    """CartPole: mean return over the evaluation episodes of the LQR switching law with one
    gain entry scaled; a wide band of laws balances for 500 steps, so a learner's error in the
    switching surface rarely compounds into a fall."""
    import gymnasium as gym

    from minirl.imitation.experts import cartpole_lqr_gain
    k0, env, rows = cartpole_lqr_gain(), gym.make("CartPole-v1"), []
    names = ["x", "x_dot", "theta", "theta_dot"]
    for idx, factors in ((0, (-0.3, 0.0, 0.3, 3.0)), (1, (-0.3, 0.0, 0.3, 3.0)),
                         (2, (0.5, 2.0)), (3, (0.2, 0.25, 0.3, 0.35, 3.0))):
        for f in factors:
            gain = k0.copy()
            gain[idx] *= f
            total = 0.0
            for k in range(EVAL_EPISODES):
                obs, _ = env.reset(seed=EVAL_SEED + k)
                done = False
                while not done:
                    obs, r, term, trunc, _ = env.step(int(obs @ -gain > 0.0))
                    total += r
                    done = term or trunc
            rows.append(dict(kind="robustness", setting="cartpole", seed="-", labels=0,
                             name=f"K[{names[idx]}] x {f:g}", value=total / EVAL_EPISODES,
                             command=command))
    env.close()
    return rows


def diagnose(seeds, command: str) -> None:
    store(DIAG_CSV, expert_robustness(command), DIAG_KEY, DIAG_COLUMNS)
    for seed in seeds:
        rows = label_regions(seed, command)
        for setting in DIAG_BUDGETS:
            rows += covariate_shift(setting, seed, command)
        print(f"diagnostics seed {seed} done", flush=True)
        store(DIAG_CSV, rows, DIAG_KEY, DIAG_COLUMNS)


def diagnostics_lines() -> list[str]:
    """The ``--diagnose`` tables (means over seeds) for imitation.md."""
    rows = read_csv(DIAG_CSV)
    if not rows:
        return []
    lines = ["## Diagnostics: where the labels and the errors are", ""]
    shift = [r for r in rows if r["kind"] == "shift"]
    if shift:
        lines += ["Covariate shift of the BC learner (Ross et al.'s quantities): its per-step "
                  "error on held-out expert states (5 expert episodes, resets 20000-20004) and "
                  "on the states it visits itself (5 of its own episodes, the first 5 evaluation "
                  "resets). Error: CartPole the fraction of steps its action differs from the "
                  "expert's; Pendulum |a - a*| / 2 (a fraction of the torque range). Mean over "
                  "seeds " + ", ".join(sorted({r['seed'] for r in shift}, key=int)) + ".", "",
                  "| setting | labels | error on expert states | error on own states | "
                  "own episode length |", "|---|---:|---:|---:|---:|"]
        for setting, budgets in DIAG_BUDGETS.items():
            for b in budgets:
                vals = {n: np.mean([float(r["value"]) for r in shift if r["setting"] == setting
                                    and int(r["labels"]) == b and r["name"] == n])
                        for n in ("error_on_expert_states", "error_on_own_states",
                                  "mean_episode_length")}
                if not np.isnan(vals["error_on_expert_states"]):
                    lines.append(f"| {setting} | {b} | {vals['error_on_expert_states']:.3f} | "
                                 f"{vals['error_on_own_states']:.3f} | "
                                 f"{vals['mean_episode_length']:.0f} |")
        lines.append("")
    regions = [r for r in rows if r["kind"] == "regions"]
    if regions:
        sources = list(dict.fromkeys(r["name"].split(": ")[0].split(" (its")[0]
                                     for r in regions))
        lines += ["Where Pendulum's labels lie (setting `pendulum`): BC's first 800 expert "
                  "pairs against the labels DAgger and the intervention variant collected in "
                  "their first two iterations (200 expert pairs, then rollouts of 200 + 400 "
                  "steps). top: within 0.6 rad of upright (the expert's balance region); "
                  "spinning: energy > 1.3 (over the top and round again); hanging: energy < 0. "
                  "Fractions, mean over seeds.", "",
                  "| labels from | top | spinning | hanging | labels collected |",
                  "|---|---:|---:|---:|---:|"]
        for src in sources:
            mine = [r for r in regions if r["name"].startswith(src)]
            frac = {reg: np.mean([float(r["value"]) for r in mine if r["name"].endswith(reg)])
                    for reg in ("top", "spinning", "hanging")}
            counts = sorted({r["name"].split("(its ")[1].split(" ")[0] for r in mine
                             if "(its " in r["name"]}, key=int)
            lines.append(f"| {src} | {frac['top']:.2f} | {frac['spinning']:.2f} | "
                         f"{frac['hanging']:.2f} | {', '.join(counts) if counts else '800'} |")
        lines.append("")
    robust = [r for r in rows if r["kind"] == "robustness"]
    if robust:
        lines += ["CartPole's tolerance: mean return on the 20 evaluation episodes of the LQR "
                  "switching law (push right iff -K s > 0) with one entry of K scaled:", "",
                  "| K changed | return |", "|---|---:|"]
        lines += [f"| {r['name']} | {float(r['value']):.1f} |" for r in robust]
        lines.append("")
    lines += ["Made by: " + "; ".join(f"`{c}`" for c in sorted({r["command"] for r in rows})),
              ""]
    return lines


EXPERT_TEXT = {"lqr": "LQR expert",
               "lowdamp": f"less damped LQR expert (theta_dot gain x {LOWDAMP})",
               "energy": "energy swing-up + PD expert"}
METHODS = ("bc", "dagger", "dagger-online", "intervention")


def _median_labels(hits) -> float:
    """Median over all seeds; a seed that never reached the level counts as infinitely many."""
    return float(np.median([np.inf if h is None else h for h in hits]))


def _fmt_labels(x: float, grid) -> str:
    return f"> {max(grid)}" if np.isinf(x) else f"{x:g}"


def write_report() -> None:
    rows, peer = read_rows(), [r for r in read_csv(PEER_CSV) if r.get("setting") in SETTINGS]
    if not rows:
        return
    settings = [k for k in SETTINGS if any(r["setting"] == k for r in rows)]
    body, summary = [], []
    for setting in settings:
        s = SETTINGS[setting]
        srows = [r for r in rows if r["setting"] == setting]
        r_exp, r_rand, level = threshold(rows, setting)
        methods = [m for m in METHODS if any(r["method"] == m for r in srows)]
        seeds = sorted({r["seed"] for r in srows if r["method"] in methods}, key=int)
        body += [f"## {setting}: {s['env']}, {EXPERT_TEXT[s['expert']]}, {s['policy']} learner "
                 f"{'-'.join(map(str, s['hidden']))} tanh", "",
                 f"Reference on the {EVAL_EPISODES} evaluation episodes: expert {r_exp:.1f}, "
                 f"uniformly random {r_rand:.1f}; {LEVEL:.0%} of the way is a return of "
                 f"{level:.1f}, {STRICT:.0%} of "
                 f"{threshold(rows, setting, STRICT)[2]:.1f}. Seeds {', '.join(seeds)}. Return "
                 "at each label budget, mean +- std over seeds (number of seeds with a point at "
                 "or below that budget):", "",
                 "| labels | " + " | ".join(methods) + " |",
                 "|---:|" + "---:|" * len(methods)]
        for b in s["grid"]:
            cells = []
            for m in methods:
                v = at_budget(_curve(rows, setting, m), b)
                cells.append(f"{np.mean(v):.1f} +- {np.std(v):.1f} ({len(v)})" if v else "-")
            body.append(f"| {b} | " + " | ".join(cells) + " |")
        for frac in (LEVEL, STRICT):
            lvl = threshold(rows, setting, frac)[2]
            body += ["", f"Labels until the return first reaches {lvl:.1f} ({frac:.0%}; per "
                     "seed; - = never within the grid):", ""]
            med = {}
            for m in methods:
                hits = first_reaching(_curve(rows, setting, m), lvl)
                med[m] = _median_labels(hits)
                body.append(f"- {m}: {', '.join('-' if h is None else str(h) for h in hits)} "
                            f"(median {_fmt_labels(med[m], s['grid'])})")
            def cmp(m):
                a, b = med.get(m, np.nan), med.get("bc", np.nan)
                return ("-" if np.isnan(a) else "fewer" if a < b else "same" if a == b
                        else "MORE")
            summary.append(f"| {setting} | {frac:.0%} | " + " | ".join(
                _fmt_labels(med[m], s["grid"]) if m in med else "-" for m in METHODS)
                + f" | {cmp('dagger')} / {cmp('dagger-online')} / {cmp('intervention')} |")
        cpu = {m: np.median([float(r["cpu_s"]) for r in srows if r["method"] == m])
               for m in methods}
        cmds = sorted({r["command"] for r in srows})
        body += ["", "Median CPU seconds per evaluated point (BC: one training; the others: "
                 "the run so far): " + ", ".join(f"{m} {c:.1f}" for m, c in cpu.items()),
                 "", "Made by: " + "; ".join(f"`{c}`" for c in cmds), ""]
    lines = ["# Imitation learning: compounding errors, measured", "",
             "Expert labels needed to reach the expert's return: behaviour cloning (BC) against "
             "DAgger and DAgger with expert interventions (HG-DAgger style), on CartPole-v1 and "
             "Pendulum-v1 with minirl's analytic experts, 5 seeds. Protocol in full: the "
             "docstring of `benchmarks/learning/imitation.py`; in short:", "",
             "- A label is one expert-labelled (s, a) pair. BC at N labels gets the first N "
             "pairs of whole expert episodes. DAgger starts from the first n_0 of those pairs "
             "(its first point *is* BC's, bit-identical: a test), then each iteration rolls the "
             "learner out for as many steps as D holds, labels every visited state, and "
             "retrains from fresh parameters; so D doubles and DAgger lands on BC's label grid "
             f"n_0, 2 n_0, 4 n_0, ... Both train the same learner with the same {UPDATES} Adam "
             "steps (lr 1e-3, batch 256) at every grid point; only where the labels come from "
             "differs.",
             "- dagger-online: the same start, then short warm-started iterations (CartPole 25, "
             f"Pendulum 100 rollout steps, {ONLINE_UPDATES} Adam steps each) so the learner "
             "improves between short rollouts; at each grid budget its D is handed to BC's "
             "exact recipe (fresh parameters, the same Adam steps) and that policy is "
             "evaluated: the labels are the only difference from BC.",
             "- Intervention: the same rollouts, the expert takes over for 10 steps whenever "
             "the learner's action differs from its own (Pendulum: scaled distance > 0.2), and "
             "only those steps are labelled. The expert *watches* every step to decide; those "
             "queries are not counted as labels (as a human supervisor's watching is not).",
             f"- Return: mean of {EVAL_EPISODES} deterministic episodes (reset seeds 10000-"
             f"{10000 + EVAL_EPISODES - 1}, the same for every method, the expert and a random "
             f"policy). The level is {LEVEL:.0%} of the way from the random policy's return to "
             "the expert's.",
             "- Each setting's section names the commands that made its rows. The pendulum "
             "rows of bc, dagger and intervention come from a run over all four settings that "
             "was stopped once pendulum was done (the other settings ran in parallel "
             "processes, one CSV each); the runs are seeded and deterministic.", "",
             f"## Summary: median labels (over 5 seeds) to reach {LEVEL:.0%} (and {STRICT:.0%}) "
             "of the expert's return", "",
             "A seed that never reaches the level within the grid counts as needing more labels "
             "than any that did ('> max'). Last column: dagger / dagger-online / intervention "
             "against BC (fewer, same or MORE labels).", "",
             "| setting | level | " + " | ".join(METHODS) + " | vs BC |",
             "|---|---:|" + "---:|" * len(METHODS) + "---|",
             *summary, "", FINDINGS, "",
             "![return against expert labels](imitation_compounding.png)", "",
             "The plot (mean +- std over seeds, log label axis) is made from "
             "the `imitation_compounding_<setting>.csv` files (cartpole, cartpole-lowdamp, "
             "pendulum, pendulum-small) by the same command, or by "
             "`python -m benchmarks.learning.imitation --table` from them.", "", *body,
             *diagnostics_lines()]
    if peer:
        lines += ["## Peer: the `imitation` library (BC, SimpleDAggerTrainer)", "",
                  "`imitation` 1.0.1 needs gymnasium 0.29 and stable-baselines3 2.2, which "
                  "conflict with minirl's gymnasium >= 1.0, so it cannot share minirl's venv. It "
                  "runs in its own venv, made against the CPU torch the peers pin (no GPU build "
                  "pulled): `python -m venv /tmp/imitation-peer && /tmp/imitation-peer/bin/pip "
                  "install torch==2.13.0+cpu --index-url https://download.pytorch.org/whl/cpu "
                  "&& /tmp/imitation-peer/bin/pip install imitation==1.0.1` (resolved: "
                  "gymnasium 0.29.1, stable-baselines3 2.2.1, numpy 2.4.6).", "",
                  "Same expert, label budget, network, batch size, learning rate, number of BC "
                  f"batches ({UPDATES}) and evaluation episodes; torch one thread. minirl's pair "
                  "and the library's ran back to back per seed in one command. The library's "
                  "BC maximizes the likelihood of SB3's policy (categorical on CartPole, a "
                  "Gaussian with a state-independent std on Pendulum, evaluated at its mean), "
                  "where minirl's Pendulum rows regress with L2. Its DAgger starts from the "
                  "first quarter of the budget like minirl's, but its rounds collect whole "
                  "episodes (on CartPole about 870 labels for a budget of 400) and it warm-starts one policy "
                  f"with {UPDATES} batches per round, where minirl's retrains from scratch per "
                  "doubling; so only the BC rows are equal work. CPU seconds are the fairer "
                  "speed measure on this shared machine.", "",
                  "| setting | seed | method | labels | return | wall s | CPU s |",
                  "|---|---:|---|---:|---:|---:|---:|"]
        for r in peer:
            lines.append(f"| {r['setting']} | {r['seed']} | {r['method']} | {r['labels']} | "
                         f"{float(r['return_mean']):.1f} | {float(r['wall_s']):.1f} | "
                         f"{float(r['cpu_s']):.1f} |")
        cpu = {}
        for r in peer:
            cpu.setdefault((r["setting"], r["method"]), []).append(float(r["cpu_s"]))
        ratios = [f"{st} {np.median(cpu[(st, 'bc')]) / np.median(cpu[(st, 'imitation-bc')]):.2f}"
                  for st in PEER_BUDGETS if (st, "bc") in cpu and (st, "imitation-bc") in cpu]
        lines += ["", "minirl BC CPU time / the library's BC CPU time (medians over seeds): "
                  + ", ".join(ratios) + ".", "",
                  "Made by: " + "; ".join(f"`{c}`" for c in sorted({r["command"] for r in peer})),
                  ""]
    atomic_write_text(RESULTS / "imitation.md", "\n".join(lines) + "\n")
    plot(rows)


def plot(rows) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker
    settings = [k for k in SETTINGS if any(r["setting"] == k for r in rows)]
    ncol = 2
    nrow = -(-len(settings) // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(11, 4 * nrow), squeeze=False)
    for ax, setting in zip(axes.ravel(), settings):
        s = SETTINGS[setting]
        for m, style, color in zip(METHODS, ("o-", "s-", "d--", "^-"), ("C0", "C1", "C2", "C3")):
            curve = _curve(rows, setting, m)
            if not curve:
                continue
            grid = sorted({lab for pts in curve.values() for lab, _ in pts})
            grid = [g for g in grid if len(at_budget(curve, g)) == len(curve)]
            mean = np.array([np.mean(at_budget(curve, g)) for g in grid])
            std = np.array([np.std(at_budget(curve, g)) for g in grid])
            ax.plot(grid, mean, style, ms=3, label=m, color=color)
            ax.fill_between(grid, mean - std, mean + std, alpha=0.15, color=color)
        r_exp, _, level = threshold(rows, setting)
        ax.axhline(r_exp, color="k", lw=1, label=f"expert {r_exp:.0f}")
        ax.axhline(level, color="k", ls=":", lw=1, label=f"{LEVEL:.0%} level {level:.0f}")
        ax.set_xscale("log")
        ax.set_xticks(s["grid"], [str(g) for g in s["grid"]])
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel("expert labels ((s, a) pairs)")
        ax.set_ylabel(f"return (mean of {EVAL_EPISODES} episodes)")
        ax.set_title(f"{setting} ({s['env']}, {'-'.join(map(str, s['hidden']))} learner)")
        ax.legend(fontsize=8)
    for ax in axes.ravel()[len(settings):]:
        ax.axis("off")
    fig.tight_layout()
    with atomic_path(RESULTS / "imitation_compounding.png") as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


FINDINGS = """## Findings

**Short answer.** Compounding errors are real here and measured (diagnostics below: the BC
learner's error on the states it visits itself is up to 5x its error on the expert's states),
and DAgger-style data does fix them, but *which* DAgger matters and the analytic experts make
the effect small:

- **Pendulum, 16-16 learner** (cannot represent the expert's switching law exactly; Ross et
  al.'s non-realizable case): dagger-online reaches 95% of the expert's return with a median of
  800 labels against BC's 1600, and at 1600 / 3200 labels it sits at -125 / -123 (+- 3) while
  BC is at -239 +- 213 / -393 +- 279: BC's small network spends its capacity on the expert's
  states and falls apart on some of its own; DAgger's D teaches it the states it actually visits.
  At 99% both medians are 1600, but dagger-online gets there on 5 of 5 seeds, BC on 3 of 5.
  This is the lecture's claim in the setting where the theory says it should hold.
- **Pendulum, 64-64 learner**: BC and dagger-online both reach 95% at 800 labels (tie), but
  only dagger-online then *matches* the expert: -124 +- 6 at 800 labels; the 99% level on 5 of
  5 seeds (median 800 labels) against BC's 3 of 5 (median 3200). BC stays 8-34 below the
  expert's -122 (-149 / -156 / -130 at 800 / 1600 / 3200 labels).
- **Plain DAgger with doubling rollouts** (Ross et al.'s retrain-on-D each iteration, beta = 0,
  only log2(budget) iterations) needs *more* labels than BC on Pendulum (3200 vs 800). The
  label-region table says why: its first learners fail (return -873 at 200 labels), so its next
  labels land where failures go - 37% spinning over the top, 41% hanging low, 12% near upright
  - against 88% near upright in the expert's own data. The labels are correct, but they are
  about states a good policy never visits, and with few iterations they dominate D. This is the
  failure mode Kelly et al. 2019 (HG-DAgger) name for learner-controlled rollouts. Short
  warm-started iterations (dagger-online) let the learner improve before most labels are
  collected, which removes it.
- **Interventions** need the fewest labels on Pendulum (median 480 against BC's 800) and almost
  never label spinning states; but the expert must *watch* every step to decide when to take over
  (not counted as labels). Its label axis stops early (500-800 labels) because its rollouts
  total the same 3000 env steps as DAgger's and most steps are unlabelled.
- **The `imitation` library agrees** (peer table): its DAgger, warm-started over 400-step
  rounds, matches the expert at 1600 Pendulum labels on 3 of 3 seeds (-122.5, -121.8, -121.7),
  where minirl's doubling DAgger gets -397, -688, -122 on the same seeds.
- **CartPole**: no method needs more than a few dozen labels; at 95% every method's median is
  25 labels (the smallest budget) and at 99% BC needs 100 against 50 / 50 / 35 - differences
  of one grid step, inside the seed-to-seed spread. The tolerance table says why compounding
  cannot bite: the LQR switching law still balances for 500 steps with its cart gains zeroed or
  sign-flipped, its angle gain halved or doubled, its angular-velocity gain cut to 0.3x. A BC
  learner that disagrees with the expert on 20% of the states it visits (100 labels) still
  lasts 472 of 500 steps on average: errors do not compound into failures when almost every
  nearby policy is stable. The less damped expert (theta_dot gain x 0.35, just above the
  0.25-0.3 edge) makes the shift larger (error 0.13 on expert states vs 0.34 on its own at 100
  labels), yet BC reaches 95% at a median of 50 labels, as DAgger does.

**Fairness of the comparison.** Same learner, same 2000 Adam steps from fresh parameters at
every grid point (dagger-online: its D is handed to exactly BC's recipe), same label grid,
same evaluation episodes, the first point shared (bit-identical). BC's labels are whole expert
episodes - the natural demonstration format - cut at the budget. Not done, on purpose:
narrow expert starts with the usual starts at evaluation (for Pendulum it removes every swing-up
from BC's data: a different task, not compounding), horizons longer than the envs' defaults,
crippling BC's training. Said plainly: dagger-online was added after plain DAgger lost on
Pendulum (it is the warm-started form of DAgger the previous benchmark used; both are
reported), and the 99% level was added to the brief's 95% after seeing that BC and
dagger-online tie at 95% on Pendulum while only one of them matches the expert.

**Against the issue's claim** ("DAgger reaches the expert's return with fewer labels than
BC"): holds for dagger-online with the 16-16 learner on Pendulum (95%: 800 vs 1600 labels)
and with the 64-64 learner at the 99% level (800 vs 3200); does not hold for plain DAgger
with doubling rollouts (Pendulum: 3200 vs 800), nor measurably on CartPole, where every method
is at the expert's return within 25-100 labels and the differences are one grid step.
"""


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    p.add_argument("--peer", action="store_true", help="also run the imitation library")
    p.add_argument("--peer-only", action="store_true", help="only the imitation library")
    p.add_argument("--peer-python", default="/tmp/imitation-peer/bin/python",
                   help="interpreter of a venv with imitation and torch==2.13.0+cpu")
    p.add_argument("--table", action="store_true", help="only rebuild the markdown and plot")
    p.add_argument("--diagnose", action="store_true",
                   help="only the diagnostics (covariate shift, label regions, robustness)")
    p.add_argument("--peer-worker", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.peer_worker:
        peer_worker(json.loads(args.peer_worker))
        return 0
    command = "python -m benchmarks.learning.imitation " + shlex.join(
        sys.argv[1:] if argv is None else argv)
    RESULTS.mkdir(exist_ok=True)
    if args.diagnose:
        diagnose(args.seeds, command)
    elif not args.table and not args.peer_only:
        for setting in args.settings:     # one CSV per setting (several may run at once)
            # Only the (method, seed) rows re-run now are replaced, when each is done (and the
            # reference rows now); every other row is kept (each row names its command).
            start, cpu = time.perf_counter(), time.process_time()
            store(csv_path(setting), [_row(setting, name, "-", 0, 0, 0, ret, start, cpu, command)
                                      for name, ret in reference_returns(setting).items()], KEY)
            for seed in args.seeds:
                for m in args.methods:
                    new = (run_bc(setting, seed, command) if m == "bc" else
                           run_dagger_online(setting, seed, command) if m == "dagger-online"
                           else run_dagger(setting, seed,
                                           "none" if m == "dagger" else "intervention", command))
                    print(f"{setting} seed {seed} {m}: " + ", ".join(
                        f"{r['labels']}:{r['return_mean']:.0f}" for r in new)
                        + f" ({new[-1]['cpu_s']:.1f} CPU s)", flush=True)
                    store(csv_path(setting), new, KEY)
    if args.peer or args.peer_only:
        for setting, labels in PEER_BUDGETS.items():
            for seed in args.seeds:
                # Back to back in one command: minirl's pair, then the library's.
                peer_rows = run_minirl_at_budget(setting, seed, labels, command)
                peer_rows += run_peer(args.peer_python, setting, seed, labels, command)
                print(peer_rows[-4:], flush=True)
                store(PEER_CSV, peer_rows, PEER_KEY)
    write_report()
    return 0


if __name__ == "__main__":
    sys.exit(main())
