"""DQN learning benchmarks and the Stable-Baselines3 DQN speed comparison.

    python -m benchmarks.learning.dqn [--only NAME ...] [--seeds S ...] [--steps N] [--profile]
    python -m benchmarks.learning.dqn --table      # only rebuild the markdown

| name                 | what                                             | criterion (per seed)          |
|----------------------|--------------------------------------------------|-------------------------------|
| dqn-cartpole         | minirl DQN, RL-Zoo CartPole-v1 settings, 50k     | deterministic eval >= 475     |
| sb3-dqn-cartpole     | SB3 DQN, the same settings (torch, one thread)   | the same (reference)          |
| double-dqn-cartpole  | dqn-cartpole with double=True                    | the same                      |
| nstep-dqn-cartpole   | dqn-cartpole with n_step=3                       | the same                      |
| dqn-acrobot          | RL-Zoo Acrobot-v1 settings, 100k                 | 100-episode mean >= -100 (*)  |
| dqn-mountaincar      | RL-Zoo MountainCar-v0 settings, 120k             | 100-episode mean >= -120 (*)  |
| sb3-dqn-acrobot      | SB3 DQN, the Acrobot-v1 settings                 | the same (reference)          |
| sb3-dqn-mountaincar  | SB3 DQN, the MountainCar-v0 settings             | the same (reference)          |

(*) "within N steps" (the issue's wording, Gym's "solved" score): the mean of 100 consecutive
training episodes reaches the threshold at some point within the budget (``best_mean_100``);
the mean of the last 100 at the end is reported beside it. Both are computed from every
finished training episode, the same way for minirl and SB3 (``best_mean_100``).

Seeds run in the outer loop and the selected benchmarks in the inner one, so minirl and SB3
runs of one seed are back to back (the same machine load). Each benchmark's rows go to
``benchmarks/results/learning_<name with _>.csv`` (rewritten after every seed), and every CSV
present is summarized in ``benchmarks/results/learning_dqn.md`` with the commands that made
them. ``--profile`` runs one minirl CartPole seed under cProfile and writes where the time goes
(``learning_dqn_profile.txt`` and a table in the markdown). Threads are pinned to one before
NumPy and torch are imported.
"""
import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import csv  # noqa: E402
import shlex  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from benchmarks._harness import (atomic_write_csv, atomic_write_text,  # noqa: E402
                                 smoke_results, store_rows)
from minirl.algos.dqn import DQN, DQNConfig  # noqa: E402
from minirl.envs import make_env  # noqa: E402
from minirl.evaluation import Evaluator  # noqa: E402
from minirl.logger import TrainingLog  # noqa: E402

RESULTS = Path(__file__).resolve().parents[1] / "results"
COLUMNS = ["benchmark", "seed", "env", "steps", "criterion", "threshold", "reached",
           "eval_return_mean", "final_return_mean_100", "wall_s", "cpu_s", "gradient_steps",
           "gradient_steps_per_s", "steps_per_s", "best_eval_return_mean", "best_at_steps",
           "eval_overhead_s", "best_mean_100", "command"]
EVAL_EPISODES = 10
CARTPOLE = {}  # DQNConfig's defaults are RL-Zoo's CartPole-v1 settings (init: 'uniform')
# Periodic deterministic evaluation during CartPole runs (RL-Zoo/SB3 EvalCallback practice):
# every BEST_EVERY env steps, BEST_EPISODES episodes (seeds 1000000 + k); the best mean's
# parameters are kept and scored after training with the same 10-episode evaluation as the
# final model. Reported beside the final model's score, never instead of it; its time is
# subtracted from the run's wall/CPU time (SB3 runs do no evaluation during training).
BEST_EVERY, BEST_EPISODES = 5_000, 5
ACROBOT = dict(lr=6.3e-4, batch_size=128, buffer_size=50_000, learning_starts=0, gamma=0.99,
               target_update_interval=250, train_freq=4, gradient_steps=4,
               exploration_fraction=0.12, exploration_final_eps=0.1)
MOUNTAINCAR = dict(lr=4e-3, batch_size=128, buffer_size=10_000, learning_starts=1000,
                   gamma=0.98, target_update_interval=600, train_freq=16, gradient_steps=8,
                   exploration_fraction=0.2, exploration_final_eps=0.07)


# Facts about the runs that the CSVs do not hold (kept next to the code that wrote them).
NOTES = [
    "Machine: 2 cores. The dqn-cartpole and sb3-dqn-cartpole rows of seeds 0-9 were re-run "
    "by two commands, `python -m benchmarks.learning.dqn --only dqn-cartpole sb3-dqn-cartpole "
    "--seeds 0 1 2 3 4` and the same with `--seeds 5 6 7 8 9`, on a quiet machine (every "
    "other benchmark process paused with SIGSTOP for the duration, not niced; load average "
    "1.0-1.8), with the fused gradient steps of kernels/qstep.py (an iteration's 128 updates "
    "in one call, q_steps): minirl 14.5-15.1 s against SB3's 44.7-48.6 s of wall (= CPU) "
    "time, a ratio of 14.8 / 45.9 = 0.323 of the medians over seeds 0-4 (the issue's "
    "protocol; 0.310-0.327 per seed) and 0.318 over seeds 0-9 (every seed <= 0.327). The "
    "same command on a quiet machine gave 0.47 with the layer path and 0.37 with one fused "
    "call per update. minirl's and SB3's returns are bit for bit their earlier rows'. Under "
    "a load average of ~4 an earlier version gave 0.29: SB3 slows more under load than "
    "minirl does, so the quiet ratio is the one to quote. Every other row ran while the load "
    "average was 5-32 (nice -n 5, up to 11 runs at once: seeds ran in parallel processes "
    "with --append), so their wall times are several times an idle machine's. Both sides of "
    "the minirl/SB3 ratio ran back to back in one process.",
    "",
    "Every row comes from the default config (init='uniform', PyTorch's Linear default, "
    "SB3's starting point) and the code of this commit's DQN (fused gradient step and "
    "acting forward, bit for bit the layer path, so rows made before them are unchanged; "
    "block buffer adds). The earlier rows made with orthogonal init (CartPole 0/5, double 3/5, "
    "n-step 2/5; commit fe23b0c) are superseded and were removed.",
    "",
    "'best-model eval': RL-Zoo/SB3 practice (EvalCallback), reported beside the final "
    f"model's score and never instead of it: every {BEST_EVERY} env steps "
    f"{BEST_EPISODES} deterministic episodes (seeds 1000000..), the parameters of the best "
    "mean kept, then scored with the same 10 episodes as the final model. Its time is "
    "subtracted from the minirl wall/CPU times (SB3 ran without it).",
    "",
    "Profile below (python -m benchmarks.learning.dqn --profile --steps 20000, wall-clock "
    "cProfile under a load average of ~2-3): the fused steps (kernels.qstep.q_steps, an "
    "iteration's updates per call) are 68% of learn(), sampling the batches 1%, acting and "
    "storing 29% (gymnasium's env.step 13%, action selection 11%, of which the Q-values "
    "kernel 8%); the layer path's rows are 0 because learn() no longer runs it (fused=true, "
    "the default).",
    "",
    "Acrobot seeds 0-1 come from the command listed with --seeds 0 1 2 3 4, stopped after "
    "seed 0 (seed 1 then ran alone with --seeds 1 --append) to make room; seeds 2-4 ran at the "
    "same time with --seeds 2 3 4 in a copy of the same commit's tree (git archive; the DQN "
    "code and its results are bit for bit those of this tree), and their rows were copied "
    "into the CSV. These rows predate the 'within' criterion's best_mean_100 column (shown "
    "'-'); their end-of-run last-100 means already reach -100 in 5/5 seeds, and the end value "
    "is one of the windows the 'within' criterion takes the best of. The MountainCar rows, "
    "minirl and SB3, were re-run seed by seed back to back by the one command listed "
    "(1-minute load average 2.5-7, nice -n 5); minirl's rows are bit for bit those of the "
    "earlier run. SB3's MountainCar and CartPole rows use the same RL-Zoo settings as "
    "minirl's: with them SB3 reaches the issue's MountainCar criterion in 1/5 seeds (minirl "
    "2/5) and the CartPole final-model criterion in 3/5 (7/10 over seeds 0-9; minirl 3/5, "
    "6/10), so neither criterion is met by the reference implementation with these settings "
    "either. This file is rebuilt from the CSVs by python -m benchmarks.learning.dqn --table.",
]


@dataclass(frozen=True)
class Spec:
    impl: str                  # "minirl" or "sb3"
    env: str
    steps: int
    criterion: str             # "eval" (deterministic evaluation of the final model) or
                               # "within": the mean of 100 consecutive training episodes
                               # reaches the threshold at some point within the budget
    threshold: float
    needed: int                # seeds (of 5) that must reach it; 0 = reference only
    overrides: dict = field(default_factory=dict)


SPECS = {
    "dqn-cartpole": Spec("minirl", "CartPole-v1", 50_000, "eval", 475.0, 4, CARTPOLE),
    "sb3-dqn-cartpole": Spec("sb3", "CartPole-v1", 50_000, "eval", 475.0, 0, CARTPOLE),
    "double-dqn-cartpole": Spec("minirl", "CartPole-v1", 50_000, "eval", 475.0, 4,
                                {"double": True}),
    "nstep-dqn-cartpole": Spec("minirl", "CartPole-v1", 50_000, "eval", 475.0, 4,
                               {"n_step": 3}),
    "dqn-acrobot": Spec("minirl", "Acrobot-v1", 100_000, "within", -100.0, 3,
                        ACROBOT),
    "dqn-mountaincar": Spec("minirl", "MountainCar-v0", 120_000, "within", -120.0, 3,
                            MOUNTAINCAR),
    "sb3-dqn-acrobot": Spec("sb3", "Acrobot-v1", 100_000, "within", -100.0, 0, ACROBOT),
    "sb3-dqn-mountaincar": Spec("sb3", "MountainCar-v0", 120_000, "within", -120.0, 0,
                                MOUNTAINCAR),
}


def evaluate(act, env_id: str, episodes: int = EVAL_EPISODES) -> float:
    """Mean return of ``episodes`` deterministic episodes (env seeds 10000 + k) for both
    implementations, so their evaluations are the same episodes' starts."""
    env = make_env(env_id)
    total = 0.0
    for k in range(episodes):
        obs, _ = env.reset(seed=10_000 + k)
        done = False
        while not done:
            obs, r, terminated, truncated, _ = env.step(act(obs))
            total += r
            done = terminated or truncated
    env.close()
    return total / episodes


class BestModel:
    """Training callback: the Evaluator's periodic deterministic evaluation, plus a copy of the
    parameters at the best mean so far, and the time spent evaluating (to subtract)."""

    def __init__(self, inner):
        self.evaluator = Evaluator(BEST_EVERY, BEST_EPISODES)
        self.inner, self.params, self.at = inner, None, None
        self.wall = self.cpu = 0.0

    def __call__(self, agent, metrics):
        cpu, wall = time.process_time(), time.perf_counter()
        best = self.evaluator.best
        self.evaluator(agent, metrics)
        if self.evaluator.best > best:
            self.params, self.at = agent.params.copy(), int(metrics["steps"])
        self.wall += time.perf_counter() - wall
        self.cpu += time.process_time() - cpu
        return self.inner(agent, metrics)


def run_minirl(spec: Spec, seed: int, steps: int) -> dict:
    agent = DQN(spec.env, DQNConfig(**spec.overrides), seed=seed)
    log = TrainingLog(None, fields=DQN.log_fields)
    returns: list[float] = []

    def record(agent, metrics):
        returns.extend(metrics["episode_returns"])
        return log(agent, metrics)

    callback = BestModel(record) if spec.criterion == "eval" else record
    cpu, wall = time.process_time(), time.perf_counter()
    agent.learn(steps, callback=callback)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    extra = {}
    if callback is not record and callback.params is not None:
        wall, cpu = wall - callback.wall, cpu - callback.cpu
        final = agent.params
        agent.params = callback.params
        extra = {"best_eval_return_mean": round(evaluate(
            lambda o: int(agent.predict(o, deterministic=True)), spec.env), 1),
            "best_at_steps": callback.at, "eval_overhead_s": round(callback.wall, 2)}
        agent.params = final
    grad_steps = int(sum(r.get("gradient_steps", 0) or 0 for r in log.rows))
    ev = evaluate(lambda o: int(agent.predict(o, deterministic=True)), spec.env)
    return {**_row(spec, log.recent_mean, ev, wall, cpu, agent.total_steps, grad_steps, returns),
            **extra}


def run_sb3(spec: Spec, seed: int, steps: int) -> dict:
    """Stable-Baselines3 DQN with the same (RL-Zoo) settings, torch on one thread."""
    import torch
    from stable_baselines3 import DQN as SB3DQN
    from stable_baselines3.common.monitor import Monitor

    torch.set_num_threads(1)
    cfg = DQNConfig(**spec.overrides)
    env = Monitor(make_env(spec.env))
    model = SB3DQN("MlpPolicy", env, learning_rate=cfg.lr, batch_size=cfg.batch_size,
                   buffer_size=cfg.buffer_size, learning_starts=cfg.learning_starts,
                   gamma=cfg.gamma, target_update_interval=cfg.target_update_interval,
                   train_freq=cfg.train_freq, gradient_steps=cfg.gradient_steps,
                   exploration_fraction=cfg.exploration_fraction,
                   exploration_final_eps=cfg.exploration_final_eps,
                   max_grad_norm=cfg.max_grad_norm,
                   policy_kwargs=dict(net_arch=list(cfg.hidden_sizes)), seed=seed, device="cpu")
    cpu, wall = time.process_time(), time.perf_counter()
    model.learn(steps)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    returns = env.get_episode_rewards()
    last100 = float(np.mean(returns[-100:])) if returns else float("nan")
    ev = evaluate(lambda o: int(model.predict(o, deterministic=True)[0]), spec.env)
    return _row(spec, last100, ev, wall, cpu, model.num_timesteps, int(model._n_updates),
                returns)


def best_mean_100(returns) -> float:
    """The best mean of 100 consecutive training episodes (NaN before 100 have ended): the
    classic "solved within N steps" score, computed per episode for both implementations."""
    r = np.asarray(returns, dtype=np.float64)
    if r.size < 100:
        return float("nan")
    c = np.concatenate([[0.0], np.cumsum(r)])
    return float(((c[100:] - c[:-100]) / 100.0).max())


def _row(spec, last100, ev, wall, cpu, steps, grad_steps, returns) -> dict:
    best = best_mean_100(returns)
    value = ev if spec.criterion == "eval" else best
    return {"env": spec.env, "steps": steps, "criterion": spec.criterion,
            "threshold": spec.threshold, "reached": bool(value >= spec.threshold),
            "best_mean_100": round(best, 1),
            "eval_return_mean": round(ev, 1), "final_return_mean_100": round(last100, 1),
            "wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "gradient_steps": grad_steps,
            "gradient_steps_per_s": round(grad_steps / wall), "steps_per_s": round(steps / wall)}


def _csv_path(name: str) -> Path:
    return RESULTS / f"learning_{name.replace('-', '_')}.csv"


def write_csv(name: str, rows: list[dict]) -> None:
    atomic_write_csv(_csv_path(name), rows, COLUMNS)


def store_row(name: str, row: dict) -> None:
    """Put one seed's row into the benchmark's CSV (replacing that seed's old row, which is
    said on stdout), the other seeds' rows kept; safe for runs of other seeds in parallel
    processes (``benchmarks._harness.store_rows``)."""
    store_rows(_csv_path(name), [row], key=("seed",), columns=COLUMNS,
               sort_key=lambda r: int(r["seed"]))


def _read(name: str) -> list[dict]:
    path = _csv_path(name)
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def write_markdown(profile_table: list[str] | None = None) -> Path:
    """Summarize every DQN result CSV present into learning_dqn.md."""
    lines = ["# minirl DQN learning benchmarks", "",
             "One thread (BLAS and torch pinned). 'eval' = mean return of 10 deterministic "
             "episodes (env seeds 10000..10009) after training; 'last 100' = mean return of the "
             "last 100 training episodes. minirl and SB3 runs of a seed ran back to back.", "",
             "| benchmark | config (beyond RL-Zoo's settings) | env | steps | criterion | seeds "
             "reaching it | needed | eval return, final model (per seed) | best-model eval "
             "(per seed; >= 475) | last-100 mean at the end (per seed) | best mean of 100 "
             "consecutive training episodes (per seed) | wall s | CPU s "
             "| gradient steps per wall s |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    commands, missing = [], []
    for name, spec in SPECS.items():
        rows = _read(name)
        if not rows:
            missing.append(name)
            continue
        # The protocol is seeds 0-4; further seeds only add the rate over all seeds.
        proto = [r for r in rows if int(r["seed"]) < 5]
        ok = sum(r["reached"] == "True" for r in proto)
        if spec.needed == 0:
            verdict = ""
        elif ok >= spec.needed:
            verdict = " (met)"
        elif ok + 5 - len(proto) < spec.needed:
            verdict = " (MISSED)"
        else:
            verdict = f" (undecided: {len(proto)} of seeds 0-4 run)"
        if len(rows) > len(proto):
            verdict += (f"; {sum(r['reached'] == 'True' for r in rows)}/{len(rows)} over all "
                        "seeds")
        seeds = ", ".join(r["seed"] for r in rows)
        walls = [float(r["wall_s"]) for r in rows]
        cpus = [float(r["cpu_s"]) for r in rows]
        gps = [float(r["gradient_steps_per_s"]) for r in rows]
        best = [r.get("best_eval_return_mean") or "" for r in rows]
        best_col = "-" if not any(best) else (
            f"{', '.join(b or '-' for b in best)} "
            f"({sum(float(b) >= spec.threshold for b in best if b)}/{len(rows)})")
        lines.append(
            f"| {name} (seeds {seeds}) | {_overrides(spec)} | {spec.env} | {rows[0]['steps']} | "
            f"{spec.criterion} >= "
            f"{spec.threshold:g} | {ok}/{len(proto)}{verdict} | {spec.needed or '-'} of 5 | "
            f"{', '.join(r['eval_return_mean'] for r in rows)} | {best_col} | "
            f"{', '.join(r['final_return_mean_100'] for r in rows)} | "
            f"{', '.join(r.get('best_mean_100') or '-' for r in rows)} | "
            f"median {np.median(walls):.1f} | median {np.median(cpus):.1f} | "
            f"median {np.median(gps):.0f} |")
        for r in rows:
            if r["command"] not in commands:
                commands.append(r["command"])
    lines += ["", "Produced by:", ""] + [f"    {c}" for c in commands]
    lines += [""] + NOTES
    ratio = _sb3_ratio()
    if ratio:
        lines += ["", ratio]
    if missing:
        lines += ["", "Not run (no result file): " + ", ".join(missing) + "."]
    brk = RESULTS / "learning_dqn_breakdown.md"
    if brk.exists():
        lines += ["", brk.read_text().rstrip()]
    prof = RESULTS / "learning_dqn_profile.md"
    if profile_table is not None:
        atomic_write_text(prof, "\n".join(profile_table) + "\n")
    if prof.exists():
        lines += ["", prof.read_text().rstrip()]
    out = RESULTS / "learning_dqn.md"
    atomic_write_text(out, "\n".join(lines) + "\n")
    return out


def _overrides(spec: Spec) -> str:
    """The config fields a spec sets beyond the env's RL-Zoo settings, e.g. ``init=uniform``."""
    zoo = {**ACROBOT, **MOUNTAINCAR}
    extra = {k: v for k, v in spec.overrides.items() if k not in zoo}
    if spec.impl == "sb3":
        return "SB3 (torch init)"
    return ", ".join(f"{k}={v}" for k, v in extra.items()) or "-"


def _sb3_ratio() -> str:
    mine, sb3 = _read("dqn-cartpole"), _read("sb3-dqn-cartpole")
    every = sorted({r["seed"] for r in mine} & {r["seed"] for r in sb3}, key=int)
    both = [x for x in every if int(x) < 5]   # the speed figure: seeds 0-4 (a quiet machine)
    if not both:
        return ""

    def col(rows, key):
        by_seed = {r["seed"]: float(r[key]) for r in rows}
        return np.array([by_seed[s] for s in both])

    m, s = col(mine, "wall_s"), col(sb3, "wall_s")
    mc, sc = col(mine, "cpu_s"), col(sb3, "cpu_s")
    mg, sg = col(mine, "gradient_steps"), col(sb3, "gradient_steps")
    me, se = col(mine, "eval_return_mean"), col(sb3, "eval_return_mean")

    def reached(rows):
        return sum(float(r["eval_return_mean"]) >= 475 for r in rows if r["seed"] in every)
    return (f"minirl DQN / SB3 DQN on CartPole-v1, same settings, seeds {', '.join(both)}, one "
            f"thread, back to back in one process per seed: wall time {np.median(m):.1f} s / "
            f"{np.median(s):.1f} s = {np.median(m) / np.median(s):.2f} (medians; per seed "
            f"{', '.join(f'{x:.2f}' for x in m / s)}; target <= 0.33); CPU time "
            f"{np.median(mc):.1f} s / {np.median(sc):.1f} s = {np.median(mc) / np.median(sc):.2f}"
            f" (per seed {', '.join(f'{x:.2f}' for x in mc / sc)}). Gradient steps per CPU "
            f"second: minirl {np.median(mg / mc):.0f}, SB3 {np.median(sg / sc):.0f} (medians; "
            f"per wall second {np.median(mg / m):.0f} and {np.median(sg / s):.0f}). "
            f"Deterministic eval of the final model >= 475: minirl "
            f"{int((me >= 475).sum())}/{len(both)}, SB3 {int((se >= 475).sum())}/{len(both)}"
            + ("." if len(every) == len(both) else
               f"; over seeds {', '.join(every)}: minirl {reached(mine)}/{len(every)}, SB3 "
               f"{reached(sb3)}/{len(every)} (seeds 5 and up ran later, under other load: "
               "their times are not in the ratio)."))


def profile(steps: int, command: str) -> list[str]:
    """cProfile one minirl CartPole run; return a markdown table of where the time goes."""
    import cProfile
    import io
    import pstats

    agent = DQN("CartPole-v1", DQNConfig(), seed=0)
    prof = cProfile.Profile()
    prof.enable()
    agent.learn(steps)
    prof.disable()
    listing = io.StringIO()
    stats = pstats.Stats(prof, stream=listing)
    listing.write(f"# {command}\n")
    stats.sort_stats("cumulative").print_stats(40)
    atomic_write_text(RESULTS / "learning_dqn_profile.txt", listing.getvalue())
    total = stats.total_tt
    parts = [("dqn.py", "learn", "whole learn() call"),
             ("dqn_update.py", "dqn_gradient_steps",
              "gradient steps (2b-2c, an iteration's updates per call)"),
             ("qstep.py", "q_steps", "  the fused steps (kernels.qstep: K updates in one call)"),
             ("dqn_update.py", "dqn_gradient_step", "per-update path (PER; the layer path)"),
             ("dqn_update.py", "dqn_targets",
              "  layer path only: targets (target-net forward, max)"),
             ("mlp.py", "backward", "  layer path only: network backward"),
             ("optim.py", "step", "  layer path only: Adam"),
             ("q_learning.py", "td_loss", "  layer path only: TD loss (Huber) and dL/dq"),
             ("replay.py", "sample", "sampling the batch (2a)"),
             ("dqn.py", "_collect", "acting and storing (step 1)"),
             ("sync_vector_env.py", "step", "  env.step (gymnasium SyncVectorEnv)"),
             ("dqn.py", "_explore", "  action selection (forward + epsilon-greedy)"),
             ("qstep.py", "q_values", "    Q-values for acting (kernels.qstep)"),
             ("replay.py", "add", "  buffer.add"),
             ("mlp.py", "forward", "layer-path network forward (all calls)")]
    out = ["## Where minirl's DQN time goes (cProfile, CartPole-v1, seed 0, "
           f"{steps} steps; profiler overhead inflates small calls)", "",
           "| part | cumulative s | share |", "|---|---|---|"]
    for file, func, label in parts:
        cum = sum(v[3] for k, v in stats.stats.items()
                  if k[0].endswith(file) and k[2] == func)
        out.append(f"| {label} | {cum:.1f} | {100 * cum / total:.0f}% |")
    out += ["", "Full listing: benchmarks/results/learning_dqn_profile.txt."]
    return out


def breakdown(n: int = 2000) -> list[str]:
    """Per-part thread-CPU time of minirl's DQN gradient step on CartPole-v1 (default config,
    batch 64, 4-256-256-2 float32 Q-net), parts run in sequence as in ``learn``, next to what
    the arithmetic alone costs: the four 64x256x256 float32 products every step needs (online
    forward, target forward, dW and dx of the 256x256 layer) and the fused Adam kernel.

    Returns markdown lines (the median over ``n`` steps per part, in microseconds)."""
    from minirl.algos.dqn import dqn_targets
    from minirl.nn.optim import clip_grad_norm
    from minirl.objectives.q_learning import td_loss

    agent = DQN("CartPole-v1", DQNConfig(), seed=0)
    agent.learn(3000)                                   # fills the buffer, warms every kernel
    cfg, q, buf, rng = agent.config, agent.qnet, agent.buffer, np.random.default_rng(0)
    P, TP, st, g = agent.params.copy(), agent.target_params, agent.opt_states["adam"], agent._grad
    names = ["sample the batch", "targets (target-net forward, max)", "online forward",
             "TD loss (Huber) and dL/dQ", "backward", "clip the gradient norm", "Adam step",
             "the rest (mean Q statistic)"]
    samples = np.zeros((n, len(names)))
    clock = time.thread_time_ns
    for i in range(n):
        t = [clock()]
        batch = buf.sample(cfg.batch_size, rng)
        t.append(clock())
        y = dqn_targets(q, P, TP, batch.next_obs, batch.rewards,
                        cfg.gamma * (~batch.terminated), cfg)
        t.append(clock())
        qv, caches = q.forward(P, batch.obs, "train")
        t.append(clock())
        _, dq, td = td_loss(qv[0], batch.actions, y, cfg.loss, cfg.huber_delta, None)
        t.append(clock())
        grad = q.backward(P, caches, dq[None], g)
        t.append(clock())
        grad, _ = clip_grad_norm(grad, cfg.max_grad_norm)
        t.append(clock())
        P, st = agent.adam.step(P, grad, st)
        t.append(clock())
        float((td + y).mean())
        t.append(clock())
        samples[i] = np.diff(t) / 1e3
    med = np.median(samples, axis=0)
    # what learn() runs (fused=True, no PER): an iteration's gradient_steps batches drawn
    # at once, then one kernels.qstep.q_steps call for all of them, with their statistics
    from minirl.algos.dqn_update import dqn_gradient_steps
    K = cfg.gradient_steps
    P2, st2, fused = agent.params.copy(), agent.opt_states["adam"], []
    for i in range(max(n // K, 5)):
        a = clock()
        batches = buf.sample(cfg.batch_size, rng, batches=K)
        P2, st2, _ = dqn_gradient_steps(q, P2, TP, st2, agent.adam, batches, cfg, g)
        fused.append((clock() - a) / 1e3 / K)
    fused_med = float(np.median(fused))
    dt = np.float32
    r = np.random.default_rng(1)
    h, W = r.standard_normal((64, 256)).astype(dt), r.standard_normal((256, 256)).astype(dt)
    out, dW = np.empty((64, 256), dt), np.empty((256, 256), dt)
    prods = {"forward h @ W": lambda: np.matmul(h, W, out=out),
             "dW = h^T @ dy": lambda: np.matmul(h.T, out, out=dW),
             "dx = dy @ W^T": lambda: np.matmul(out, W.T, out=h)}
    m = agent.adam.init(P)
    floor = {}
    for name, f in {**prods, "Adam kernel alone (67,586 params)":
                    lambda: agent.adam.step(P, g, m)}.items():
        ts = []
        for _ in range(n):
            a = clock()
            f()
            ts.append((clock() - a) / 1e3)
        floor[name] = float(np.median(ts))
    product_floor = 2 * floor["forward h @ W"] + floor["dW = h^T @ dy"] + floor["dx = dy @ W^T"]
    lines = ["## DQN gradient step (thread CPU time, median of "
             f"{n} steps in sequence; CartPole-v1 default config)", "",
             "| part | us per gradient step |", "|---|---|",
             "| **fused steps, what learn runs (an iteration's batches + one "
             "kernels.qstep.q_steps call + statistics), per update** | "
             f"**{fused_med:.1f}** |",
             "| *the layer path (fused=false), part by part:* | |"]
    lines += [f"| {k} | {v:.1f} |" for k, v in zip(names, med)]
    lines += [f"| **layer path sum** | **{med.sum():.1f}** |", "",
              "| arithmetic alone (isolated, warm caches) | us |", "|---|---|"]
    lines += [f"| {k} | {v:.1f} |" for k, v in floor.items()]
    lines += [f"| the four products of a step (2 forwards, dW, dx) | {product_floor:.1f} |",
              f"| products + Adam kernel | "
              f"{product_floor + floor['Adam kernel alone (67,586 params)']:.1f} |"]
    return lines


def _floor_arithmetic(lines: list[str]) -> str:
    """What the speed target (1/3 of SB3's CPU time) leaves per gradient step, from the
    CartPole CSVs (medians over seeds 0-4, the issue's protocol) and a breakdown table."""
    mine = [r for r in _read("dqn-cartpole") if int(r["seed"]) < 5]
    peer = [r for r in _read("sb3-dqn-cartpole") if int(r["seed"]) < 5]
    if not mine or not peer:
        return "(no dqn-cartpole / sb3-dqn-cartpole rows: run them for the arithmetic)"
    cpu = float(np.median([float(r["cpu_s"]) for r in mine]))
    peer_cpu = float(np.median([float(r["cpu_s"]) for r in peer]))
    steps = float(np.median([float(r["gradient_steps"]) for r in mine]))
    val = {ln.split("|")[1].strip(" *"): float(ln.split("|")[2].strip(" *"))
           for ln in lines if ln.count("|") == 3 and ln.split("|")[2].strip(" *")
           .replace(".", "", 1).isdigit()}
    per_step = val["fused steps, what learn runs (an iteration's batches + one "
                   "kernels.qstep.q_steps call + statistics), per update"]
    floor = val["products + Adam kernel"]
    acting = cpu - steps * per_step / 1e6
    allowed = (peer_cpu / 3 - acting) / steps * 1e6
    return (f"Arithmetic: SB3 used {peer_cpu:.1f} CPU s (median, seeds 0-4), so the target is "
            f"{peer_cpu / 3:.1f} s. minirl used {cpu:.1f} s for {steps:.0f} gradient steps; at "
            f"{per_step:.0f} us per step these take {steps * per_step / 1e6:.1f} s, leaving "
            f"{acting:.1f} s for acting and storing. Keeping that, the target allows "
            f"{allowed:.0f} us per gradient step, against {floor:.0f} us for the step's four "
            f"products and the Adam kernel alone with warm caches "
            f"({allowed / floor:.2f}x that floor; the whole step runs at "
            f"{per_step / floor:.2f}x it now).")


def main(argv=None) -> int:
    global RESULTS
    p = argparse.ArgumentParser(prog="python -m benchmarks.learning.dqn")
    p.add_argument("--only", nargs="+", choices=list(SPECS), default=None)
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    p.add_argument("--steps", type=int, default=None, help="override every budget (smoke runs)")
    p.add_argument("--profile", action="store_true", help="also profile one minirl run")
    p.add_argument("--append", action="store_true",
                   help="(the default now; kept so recorded commands still run) keep the other "
                        "seeds' rows already in the result files; a rerun seed's row replaces "
                        "its old one, with a line saying so")
    p.add_argument("--fresh", action="store_true",
                   help="discard the selected benchmarks' existing rows first (said per file)")
    p.add_argument("--breakdown", action="store_true",
                   help="time each part of the gradient step against the arithmetic floor "
                        "and write learning_dqn_breakdown.md")
    p.add_argument("--table", action="store_true",
                   help="only rewrite learning_dqn.md from the result files present")
    args = p.parse_args(argv)
    if args.table:
        print(write_markdown().read_text())
        return 0
    if args.breakdown:
        lines = breakdown()
        lines += ["", _floor_arithmetic(lines)]
        load = os.getloadavg()[0]
        lines += ["", f"Command: `python -m benchmarks.learning.dqn --breakdown` (1-minute load "
                  f"average at the end: {load:.2f})."]
        atomic_write_text(RESULTS / "learning_dqn_breakdown.md", "\n".join(lines) + "\n")
        print("\n".join(lines))
        return 0
    command = "python -m benchmarks.learning.dqn " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    names = args.only or ([] if args.profile else list(SPECS))
    todo = []
    for name in names:
        if SPECS[name].impl == "sb3":
            try:
                import stable_baselines3  # noqa: F401
                import torch  # noqa: F401
            except ImportError:
                print(f"skipping {name}: stable-baselines3/torch not installed")
                continue
        todo.append(name)
    if args.steps is not None and todo:   # smoke runs never touch the committed results
        # (--profile alone with --steps is the documented profile command and writes them)
        RESULTS = smoke_results("--steps given")
    if args.fresh:
        for name in todo:
            old = _read(name)
            if old:
                print(f"--fresh: discarding {len(old)} rows of {_csv_path(name)}")
                _csv_path(name).unlink()
    for seed in args.seeds:
        for name in todo:
            spec = SPECS[name]
            steps = args.steps or spec.steps
            run = run_sb3 if spec.impl == "sb3" else run_minirl
            row = {"benchmark": name, "seed": seed, **run(spec, seed, steps), "command": command}
            store_row(name, row)
            print(f"{name} seed {seed}: eval {row['eval_return_mean']} last100 "
                  f"{row['final_return_mean_100']} wall {row['wall_s']} s", flush=True)
    table = profile(args.steps or SPECS["dqn-cartpole"].steps, command) if args.profile else None
    print(write_markdown(table).read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
