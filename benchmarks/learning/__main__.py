"""``python -m benchmarks.learning [--only NAME ...] [--seeds S ...] [--steps N]``

See ``benchmarks/learning/__init__.py`` for the benchmark table. Threads are pinned to one
before NumPy (and torch, for the SB3 reference) are imported.

Results are never lost or overwritten silently: each benchmark's CSV is written atomically
after every seed, a run replaces only the seeds it ran (saying so on stdout) and keeps the
others; ``--steps`` (a smoke run) writes to a temporary directory (printed), not to
benchmarks/results.
"""
import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import math  # noqa: E402
import shlex  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from benchmarks._harness import (atomic_write_text, read_csv_rows, smoke_results,  # noqa: E402
                                store_rows)
from minirl.algos import ALGOS, PRESETS  # noqa: E402
from minirl.logger import TrainingLog  # noqa: E402

RESULTS = Path(__file__).resolve().parents[1] / "results"
COLUMNS = ["benchmark", "seed", "env", "steps", "threshold", "reached", "first_step",
           "first_wall_s", "final_return_mean_100", "wall_s", "cpu_s", "steps_per_s", "command"]


@dataclass(frozen=True)
class Spec:
    algo: str
    env: str
    steps: int
    threshold: float
    needed: int
    overrides: dict = field(default_factory=dict)


SPECS = {
    "ppo-cartpole": Spec("ppo", "CartPole-v1", 100_000, 475.0, 4),
    "ppo-kl-cartpole": Spec("ppo", "CartPole-v1", 200_000, 475.0, 4, {"loss": "kl"}),
    "a2c-cartpole": Spec("a2c", "CartPole-v1", 500_000, 475.0, 3),
    "reinforce-cartpole": Spec("reinforce", "CartPole-v1", 500_000, 450.0, 3),
    "ppo-pendulum": Spec("ppo", "Pendulum-v1", 500_000, -250.0, 3),
    "sb3-ppo-cartpole": Spec("sb3-ppo", "CartPole-v1", 100_000, 475.0, 0),
}


def run_minirl(spec: Spec, seed: int, steps: int) -> dict:
    algo = ALGOS[spec.algo]
    config = algo.Config(**{**PRESETS.get((spec.algo, spec.env), {}), **spec.overrides})
    agent = algo(spec.env, config, seed=seed)
    log = TrainingLog(None)
    cpu, wall = time.process_time(), time.perf_counter()
    agent.learn(steps, callback=log)
    return _row(log, time.perf_counter() - wall, time.process_time() - cpu, agent.total_steps,
                spec.threshold)


def run_sb3(spec: Spec, seed: int, steps: int) -> dict:
    """Stable-Baselines3 PPO with the RL-Zoo CartPole settings, torch on one thread."""
    import torch
    from stable_baselines3 import PPO as SB3PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env

    torch.set_num_threads(1)
    env = make_vec_env(spec.env, n_envs=8, seed=seed)
    log = TrainingLog(None)

    class Rows(BaseCallback):  # one log row per rollout, like minirl's callback
        def _on_step(self):
            done = [i["episode"] for i in self.locals["infos"] if "episode" in i]
            self._returns.extend(d["r"] for d in done)
            self._lengths.extend(d["l"] for d in done)
            return True

        def _on_rollout_start(self):
            self._returns, self._lengths = [], []

        def _on_rollout_end(self):
            log(None, {"steps": self.num_timesteps, "iteration": 0,
                       "episode_returns": self._returns, "episode_lengths": self._lengths})

    model = SB3PPO("MlpPolicy", env, n_steps=32, batch_size=256, gae_lambda=0.8, gamma=0.98,
                   n_epochs=20, ent_coef=0.0, learning_rate=lambda f: f * 1e-3,
                   clip_range=lambda f: f * 0.2, seed=seed, device="cpu")
    cpu, wall = time.process_time(), time.perf_counter()
    log.start = time.perf_counter()
    model.learn(steps, callback=Rows())
    return _row(log, time.perf_counter() - wall, time.process_time() - cpu, model.num_timesteps,
                spec.threshold)


def _row(log: TrainingLog, wall: float, cpu: float, steps: int, threshold: float) -> dict:
    first = log.first_reached(threshold)
    return {"reached": first is not None, "first_step": first[0] if first else "",
            "first_wall_s": round(first[1], 2) if first else "",
            "final_return_mean_100": round(log.recent_mean, 1), "wall_s": round(wall, 2),
            "cpu_s": round(cpu, 2), "steps_per_s": round(steps / wall), "steps": steps}


def write_table(command: str) -> Path:
    """Combine every learning_*.csv into benchmarks/results/learning.md."""
    commands = []
    lines = ["# minirl learning benchmarks", "",
             "Single-threaded (BLAS and torch pinned to one thread). 'first step / first wall s': "
             "when the mean return of the last 100 episodes first reached the threshold.", "",
             "| benchmark | env | budget | threshold | seeds reaching it | needed | first step "
             "reaching it (per seed) | first wall s reaching it | final mean return (last 100) | "
             "wall s | CPU s | steps/s |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, spec in SPECS.items():
        rows = read_csv_rows(RESULTS / f"learning_{name}.csv")
        if not rows:
            continue
        ok = sum(r["reached"] == "True" for r in rows)
        cmd = rows[0].get("command") or f"python -m benchmarks.learning --only {name}"
        commands += [] if cmd in commands else [cmd]
        firsts = ", ".join(r["first_step"] or "-" for r in rows)
        finals = ", ".join(r["final_return_mean_100"] for r in rows)
        first_walls = ", ".join(r["first_wall_s"] or "-" for r in rows)
        walls = [float(r["wall_s"]) for r in rows]
        cpus = [float(r["cpu_s"]) for r in rows]
        sps = [float(r["steps_per_s"]) for r in rows]
        verdict = "" if spec.needed == 0 else (" (met)" if ok >= spec.needed else " (MISSED)")
        lines.append(f"| {name} | {spec.env} | {rows[0]['steps']} | {spec.threshold:g} | "
                     f"{ok}/{len(rows)}{verdict} | {spec.needed or '-'} | {firsts} | {first_walls} | "
                     f"{finals} | median {np.median(walls):.1f} | median {np.median(cpus):.1f} | "
                     f"median {np.median(sps):.0f} |")
    lines += ["", "Produced by:", ""] + [f"    {c}" for c in commands]
    ratio = _sb3_ratio()
    if ratio:
        lines += ["", ratio]
    out = RESULTS / "learning.md"
    atomic_write_text(out, "\n".join(lines) + "\n")
    return out


def _sb3_ratio() -> str:
    """One line comparing minirl's PPO with SB3's on CartPole (medians over seeds)."""
    paths = [RESULTS / f"learning_{n}.csv" for n in ("ppo-cartpole", "sb3-ppo-cartpole")]
    if not all(p.exists() for p in paths):
        return ""
    med = []
    for p in paths:
        rows = read_csv_rows(p)
        firsts = [float(r["first_wall_s"]) for r in rows if r["first_wall_s"]]
        med.append((np.median([float(r["wall_s"]) for r in rows]),
                    np.median(firsts) if firsts else math.nan,
                    np.median([float(r["cpu_s"]) for r in rows])))
    (w_m, f_m, c_m), (w_s, f_s, c_s) = med
    return (f"minirl PPO / SB3 PPO on CartPole-v1, same settings, one thread, same machine and "
            f"run: CPU time for 100k steps {c_m:.1f} s / {c_s:.1f} s = {c_m / c_s:.2f}; wall "
            f"time {w_m:.1f} s / {w_s:.1f} s = {w_m / w_s:.2f}; wall time until the last-100 "
            f"mean first reached 475: {f_m:.1f} s / {f_s:.1f} s = {f_m / f_s:.2f} (medians over "
            f"seeds; target: at most 0.33; on a loaded shared machine CPU time is the fair "
            f"figure, wall time also counts waiting for a core).")


def main(argv=None) -> int:
    global RESULTS
    p = argparse.ArgumentParser(prog="python -m benchmarks.learning", description=__doc__)
    p.add_argument("--only", nargs="+", choices=list(SPECS), metavar="NAME",
                   help=f"run only these ({', '.join(SPECS)})")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    p.add_argument("--steps", type=int, default=None, help="override every budget (smoke runs)")
    p.add_argument("--table-only", action="store_true",
                   help="only rebuild learning.md from the CSVs already in benchmarks/results")
    args = p.parse_args(argv)
    command = "python -m benchmarks.learning " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    if args.steps is not None and not args.table_only:   # smoke runs never touch the results
        RESULTS = smoke_results(f"--steps {args.steps}")
    RESULTS.mkdir(exist_ok=True)
    if args.table_only:
        print(f"wrote {write_table(command)}")
        return 0
    for name in args.only or [n for n in SPECS if n != "sb3-ppo-cartpole"]:
        spec = SPECS[name]
        steps = args.steps or spec.steps
        run = run_sb3 if spec.algo == "sb3-ppo" else run_minirl
        rows = []
        for seed in args.seeds:
            row = {"benchmark": name, "seed": seed, "env": spec.env, "threshold": spec.threshold,
                   "command": command, **run(spec, seed, steps)}
            rows.append(row)
            print(", ".join(f"{k}={row[k]}" for k in COLUMNS[:-1]), flush=True)
            store_rows(RESULTS / f"learning_{name}.csv", [row], ("seed",), COLUMNS,
                       sort_key=lambda r: int(r["seed"]))    # after every seed
        ok = sum(r["reached"] for r in rows)
        print(f"# {name}: {ok}/{len(rows)} seeds reached {spec.threshold:g} within {steps} steps "
              f"(needed {spec.needed})", flush=True)
    print(f"wrote {write_table(command)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
