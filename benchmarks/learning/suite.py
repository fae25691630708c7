"""``python -m benchmarks.learning.suite``: every agent on the issue's environment suite with its
preset, side by side with Stable-Baselines3 (RL-Zoo's tuned settings) and RL-Zoo's published
results.

    python -m benchmarks.learning.suite                         # every row, 3 seeds (days!)
    python -m benchmarks.learning.suite --algos ppo a2c --envs CartPole-v1 Acrobot-v1
    python -m benchmarks.learning.suite --algos ppo --envs Pendulum-v1 --peer   # + SB3
    python -m benchmarks.learning.suite --table-only            # rebuild the markdown

Rows are the (algorithm, environment) pairs of ``minirl.presets.TABLE`` on the suite's
environments (``ENVS``), for the algorithms registered in ``minirl.algos``. Each run trains
``Algo(env, Config(**preset), seed)`` for the row's budget (the source's ``n_timesteps``;
``--steps`` overrides it for smoke runs and is recorded), then reports

* ``final_return``: mean over ``--eval-episodes`` deterministic episodes on a fresh env
  (seeds 10000, 10001, ...), the score RL-Zoo's benchmark reports;
* ``train_return_100``: the mean of the last 100 training episodes;
* steps/s and CPU seconds of the training (``time.process_time`` of this process: the sync
  vector env runs in it too, and BLAS/torch are pinned to one thread).

``--peer`` also trains Stable-Baselines3 (PPO/A2C) with RL-Zoo's settings for the row (the
preset translated back, plus what minirl lacks: gSDE, ``ortho_init=False``, RMSprop for A2C,
VecNormalize for ``normalize``), evaluated the same way. The second comparison column is
RL-Zoo's published result (``minirl.presets.RL_ZOO_RESULTS``: one trained agent, often on an
older environment version, named in the table).

Results: one CSV row per (implementation, algo, env, seed) in
``benchmarks/results/learning_suite.csv`` (appended, de-duplicated by key, so separate
invocations build one table), and ``benchmarks/results/learning_suite.md``.
"""
import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import csv  # noqa: E402
import shlex  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from minirl.algos import ALGOS  # noqa: E402
from minirl.logger import TrainingLog  # noqa: E402
from minirl.presets import RL_ZOO_RESULTS, TABLE, find  # noqa: E402

RESULTS = Path(__file__).resolve().parents[1] / "results"
CSV_PATH = RESULTS / "learning_suite.csv"
MD_PATH = RESULTS / "learning_suite.md"
ENVS = ["CartPole-v1", "Acrobot-v1", "MountainCar-v0", "MountainCarContinuous-v0",
        "Pendulum-v1", "LunarLander-v3", "LunarLanderContinuous-v3", "BipedalWalker-v3",
        "InvertedPendulum-v5", "Hopper-v5", "HalfCheetah-v5"]
COLUMNS = ["impl", "algo", "env", "seed", "steps", "budget", "final_return", "final_return_std",
           "train_return_100", "wall_s", "cpu_s", "steps_per_s", "command"]
EVAL_SEED = 10_000

# What RL-Zoo's row has that the minirl preset cannot express (for the SB3 peer only), and the
# zoo's own Pendulum PPO row (minirl's preset is a documented no-gSDE alternative).
ZOO_PEER = {
    ("ppo", "Pendulum-v1"): dict(n_envs=4, n_steps=1024, gae_lambda=0.95, gamma=0.9, n_epochs=10,
                                 learning_rate=1e-3, clip_range=0.2, use_sde=True,
                                 sde_sample_freq=4, batch_size=64, normalize=False),
    ("ppo", "MountainCarContinuous-v0"): dict(use_sde=True, ortho_init=False),
    ("ppo", "Hopper-v5"): dict(ortho_init=False),
    ("ppo", "HalfCheetah-v5"): dict(ortho_init=False),
    ("a2c", "Pendulum-v1"): dict(use_sde=True, ortho_init=False),
    ("a2c", "LunarLanderContinuous-v3"): dict(use_sde=True, ortho_init=False),
    ("a2c", "MountainCarContinuous-v0"): dict(use_sde=True, sde_sample_freq=16,
                                              ortho_init=False),
    ("a2c", "BipedalWalker-v3"): dict(use_sde=True, ortho_init=False),
}


def suite_rows(algos=None, envs=None):
    """The preset rows of the suite: (algo, env) on ENVS for registered algorithms."""
    return [p for p in TABLE if p.env in ENVS and p.algo in ALGOS
            and (not algos or p.algo in algos) and (not envs or p.env in envs)]


def _evaluate_fn(predict, env_id: str, episodes: int) -> tuple[float, float]:
    import gymnasium as gym
    env = gym.make(env_id)
    returns = []
    for k in range(episodes):
        obs, _ = env.reset(seed=EVAL_SEED + k)
        done, total = False, 0.0
        while not done:
            obs, r, term, trunc, _ = env.step(predict(obs))
            total += float(r)
            done = term or trunc
        returns.append(total)
    env.close()
    return float(np.mean(returns)), float(np.std(returns))


def run_minirl(algo: str, env: str, seed: int, steps: int, episodes: int) -> dict:
    cls = ALGOS[algo]
    preset = find(algo, env)
    agent = cls(env, cls.Config(**preset.overrides), seed=seed, env_kwargs=preset.env_kwargs)
    log = TrainingLog(None, fields=cls.log_fields)
    cpu, wall = time.process_time(), time.perf_counter()
    agent.learn(steps, callback=log)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    returns = agent.evaluate(episodes, deterministic=True, seed=EVAL_SEED)
    return {"steps": agent.total_steps, "final_return": round(float(returns.mean()), 2),
            "final_return_std": round(float(returns.std()), 2),
            "train_return_100": round(log.recent_mean, 2), "wall_s": round(wall, 1),
            "cpu_s": round(cpu, 1), "steps_per_s": round(agent.total_steps / wall)}


def sb3_kwargs(algo: str, env: str) -> tuple[dict, dict]:
    """(model kwargs, run options) for Stable-Baselines3 from the preset (RL-Zoo's names)."""
    o = dict(find(algo, env).overrides)
    extra = dict(ZOO_PEER.get((algo, env), {}))
    run = {"n_envs": o.get("num_envs", 1),
           "normalize": o.get("normalize_obs", False) or o.get("normalize_reward", False)}
    kw, pk = {}, {}
    names = {"num_steps": "n_steps", "minibatch_size": "batch_size", "num_epochs": "n_epochs",
             "lam": "gae_lambda", "gamma": "gamma", "ent_coef": "ent_coef",
             "vf_coef": "vf_coef", "max_grad_norm": "max_grad_norm",
             "norm_adv": "normalize_advantage"}
    for k, v in o.items():
        if k in names:
            kw[names[k]] = v
    lr = o.get("lr", 3e-4 if algo == "ppo" else 7e-4)
    kw["learning_rate"] = (lambda f, lr=lr: f * lr) if o.get("anneal_lr") else lr
    if algo == "ppo" and "clip_eps" in o:
        c = o["clip_eps"]
        kw["clip_range"] = (lambda f, c=c: f * c) if o.get("anneal_clip") else c
    if "log_std_init" in o:
        pk["log_std_init"] = o["log_std_init"]
    if o.get("hidden_sizes"):
        pk["net_arch"] = dict(pi=list(o["hidden_sizes"]), vf=list(o["hidden_sizes"]))
    if o.get("activation") == "relu":
        import torch
        pk["activation_fn"] = torch.nn.ReLU
    for k in ("n_envs", "normalize"):
        if k in extra:
            run[k] = extra.pop(k)
    if "ortho_init" in extra:
        pk["ortho_init"] = extra.pop("ortho_init")
    kw.update(extra)
    if pk:
        kw["policy_kwargs"] = pk
    return kw, run


def run_sb3(algo: str, env: str, seed: int, steps: int, episodes: int) -> dict:
    import torch
    from stable_baselines3 import A2C as SB3A2C
    from stable_baselines3 import PPO as SB3PPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    torch.set_num_threads(1)
    kw, run = sb3_kwargs(algo, env)
    venv = make_vec_env(env, n_envs=run["n_envs"], seed=seed)
    if run["normalize"]:
        venv = VecNormalize(venv, gamma=kw.get("gamma", 0.99))
    model = {"ppo": SB3PPO, "a2c": SB3A2C}[algo]("MlpPolicy", venv, seed=seed, device="cpu",
                                                 **kw)
    returns = []
    cpu, wall = time.process_time(), time.perf_counter()
    model.learn(steps)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    for info in model.ep_info_buffer:
        returns.append(info["r"])
    if run["normalize"]:
        venv.training = False

    def predict(obs):
        x = venv.normalize_obs(obs[None]) if run["normalize"] else obs[None]
        return model.predict(x, deterministic=True)[0][0]

    mean, std = _evaluate_fn(predict, env, episodes)
    return {"steps": model.num_timesteps, "final_return": round(mean, 2),
            "final_return_std": round(std, 2),
            "train_return_100": round(float(np.mean(returns)), 2) if returns else "",
            "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
            "steps_per_s": round(model.num_timesteps / wall)}


def _read(path: Path | None = None) -> list[dict]:
    """Rows of ``path``, or of every learning_suite*.csv (separate jobs write separate files)."""
    rows = []
    for p in ([path] if path else sorted(RESULTS.glob("learning_suite*.csv"))):
        if p.exists():
            with open(p, newline="") as f:
                rows += [r for r in csv.DictReader(f) if "impl" in r]
    return rows


def _write(rows: list[dict], path: Path) -> None:
    keyed = {}
    for r in rows:
        keyed[(r["impl"], r["algo"], r["env"], str(r["seed"]), str(r["budget"]))] = r
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, COLUMNS)
        w.writeheader()
        w.writerows(keyed.values())


def write_table(notes: str = "") -> Path:
    """learning_suite.md from learning_suite.csv: one line per (algo, env, budget)."""
    rows = _read()
    groups: dict[tuple, dict[str, list]] = {}
    for r in rows:
        groups.setdefault((r["algo"], r["env"], r["budget"]), {}).setdefault(r["impl"], []).append(r)
    lines = ["# Environment suite: minirl with presets vs Stable-Baselines3 (RL-Zoo settings) "
             "and RL-Zoo's published results", "",
             "Final return: mean of 10 deterministic episodes per seed (seeds 10000+), then "
             "mean +- std over seeds. CPU s: process time of training (one thread), median over "
             "seeds; steps/s: env steps per wall-clock second (slowed by whatever else runs "
             "on the machine). "
             "RL-Zoo published: benchmark.md of rl-baselines3-zoo@22e3ff2 (one agent, env "
             "version and budget as named).", "",
             "| algo | env | budget | seeds | minirl final return | SB3 (RL-Zoo settings) | "
             "RL-Zoo published | minirl steps/s | minirl CPU s | SB3 CPU s | CPU ratio | "
             "verdict |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for (algo, env, budget), by_impl in sorted(groups.items()):
        m = by_impl.get("minirl", [])
        s = by_impl.get("sb3", [])

        def stat(rs, key="final_return"):
            v = [float(r[key]) for r in rs if r[key] != ""]
            return (np.mean(v), np.std(v), v) if v else (np.nan, np.nan, [])

        mm, ms, mv = stat(m)
        sm, ss, sv = stat(s)
        mcpu = np.median([float(r["cpu_s"]) for r in m]) if m else np.nan
        scpu = np.median([float(r["cpu_s"]) for r in s]) if s else np.nan
        sps = np.median([float(r["steps_per_s"]) for r in m]) if m else np.nan
        zoo = RL_ZOO_RESULTS.get((algo, env))
        zoo_s = f"{zoo[0]:.1f} +- {zoo[1]:.1f} ({zoo[3]}, {zoo[2]})" if zoo else "-"
        if s:
            ok_ret = mm >= min(sv) if sv else False
            ok_cpu = mcpu <= scpu / 3
            misses = (([] if ok_ret else ["mean return below the peer's worst seed"])
                      + ([] if ok_cpu else ["CPU above a third of the peer's"]))
            verdict = "; ".join(misses) if misses else "met"
            ratio = f"{mcpu / scpu:.2f}"
        else:
            verdict, ratio = "no peer run", "-"
        seeds = ",".join(r["seed"] for r in m) or ",".join(r["seed"] for r in s)
        lines.append(f"| {algo} | {env} | {budget} | {seeds} | "
                     f"{mm:.1f} +- {ms:.1f} ({', '.join(f'{v:.0f}' for v in mv)}) | "
                     + (f"{sm:.1f} +- {ss:.1f} ({', '.join(f'{v:.0f}' for v in sv)})" if s
                        else "not run") +
                     f" | {zoo_s} | {sps:.0f} | {mcpu:.1f} | "
                     + (f"{scpu:.1f}" if s else "-") + f" | {ratio} | {verdict} |")
    cmds = sorted({r["command"] for r in rows})
    lines += ["", "Produced by:", ""] + [f"    {c}" for c in cmds]
    if notes:
        lines += ["", notes]
    MD_PATH.write_text("\n".join(lines) + "\n")
    return MD_PATH


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.learning.suite", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--algos", nargs="+", default=None)
    p.add_argument("--envs", nargs="+", default=None)
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--steps", type=int, default=None, help="override every budget")
    p.add_argument("--eval-episodes", type=int, default=10)
    p.add_argument("--peer", action="store_true", help="also run Stable-Baselines3 (PPO/A2C)")
    p.add_argument("--peer-only", action="store_true", help="only the Stable-Baselines3 runs")
    p.add_argument("--table-only", action="store_true")
    p.add_argument("--notes", default=None, help="markdown file appended to the table")
    p.add_argument("--csv", default=CSV_PATH.name,
                   help="results file in benchmarks/results (one per concurrent job; the table "
                        "reads every learning_suite*.csv)")
    args = p.parse_args(argv)
    notes = Path(args.notes).read_text() if args.notes else ""
    RESULTS.mkdir(exist_ok=True)
    if args.table_only:
        print(f"wrote {write_table(notes)}")
        return 0
    command = "python -m benchmarks.learning.suite " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    impls = ([] if args.peer_only else ["minirl"]) + (["sb3"] if args.peer or args.peer_only
                                                     else [])
    for preset in suite_rows(args.algos, args.envs):
        budget = args.steps or preset.steps
        for impl in impls:
            if impl == "sb3" and preset.algo not in ("ppo", "a2c"):
                continue
            for seed in args.seeds:
                run = run_minirl if impl == "minirl" else run_sb3
                row = {"impl": impl, "algo": preset.algo, "env": preset.env, "seed": seed,
                       "budget": budget, "command": command,
                       **run(preset.algo, preset.env, seed, budget, args.eval_episodes)}
                print(", ".join(f"{k}={row[k]}" for k in COLUMNS[:-1]), flush=True)
                out = RESULTS / args.csv
                rows = _read(out)
                rows.append({k: str(v) for k, v in row.items()})
                _write(rows, out)
    print(f"wrote {write_table(notes)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
