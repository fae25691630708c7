"""Gradient-free search benchmarks: ``python -m benchmarks.learning.gradient_free``.

Three parts (``--only learning peer scaling``; default all):

* learning: minirl ARS with a linear policy, 5 seeds, fixed budgets of env steps. Every
  ``eval_every`` iterations the unperturbed policy is scored on 5 fixed-seed episodes (time
  excluded from the wall time); a seed "reaches" the threshold at the first such score >= it.
  The final score is the mean of 10 fixed-seed episodes.
* peer: sb3-contrib's ARS (optional, torch on one thread) with the same hyperparameters, linear
  policy with bias, run back to back with minirl on the same seeds; compared on wall time per
  iteration (an iteration = 2N episodes on both sides) at its final return.
* scaling: wall time per ARS iteration with the serial evaluator, 1 and 2 local worker
  processes, and 2 Ray actors (efficiency = T_serial / (W T_W)); the per-episode cost and the
  per-task round-trip overhead of each backend are measured and used to project the time per
  iteration on 64 cores with

      T(W) = d + ceil(K / W) * c + ceil(C / W) * o,   C = min(K, 4 W) chunks

  d: driver time per iteration (sampling, update), c: one episode, o: one task's round trip,
  K = 2N episodes. The same formula's prediction for W = 2 is printed next to the measurement.

Results: ``benchmarks/results/learning_gradient_free_<benchmark>.csv`` (learning and peer rows,
one per seed and implementation), ``benchmarks/results/learning_gradient_free_scaling.csv`` and
the table
``benchmarks/results/learning_gradient_free.md`` with the command that made them.

Results are never lost or overwritten silently: files are written atomically (a temporary file
renamed over it) after every seed; a run replaces only the (implementation, seed) rows it ran
(the scaling CSV: the (backend, workers) rows) and says so on stdout, keeping all other rows
(``--append`` is that default, kept so recorded commands run unchanged; ``--fresh`` discards
the selected benchmarks' rows first, said per file). A ``--budget`` other than a selected
benchmark's documented one is a smoke run: everything goes to a temporary directory (printed),
not to benchmarks/results.
"""
import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import math  # noqa: E402
import shlex  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks._harness import (atomic_write_text, read_csv_rows, smoke_results,  # noqa: E402
                                store_rows)
from minirl.algos.gradient_free import ARS, ARSConfig  # noqa: E402
from minirl.population import PolicySpec, make_evaluator  # noqa: E402

RESULTS = Path(__file__).resolve().parents[1] / "results"
LEARN_COLUMNS = ["benchmark", "impl", "seed", "env", "budget", "steps", "iterations",
                 "threshold", "reached", "first_step", "final_return", "wall_s",
                 "wall_per_iter_ms", "cpu_s", "cpu_per_iter_ms", "command"]
SCALE_COLUMNS = ["backend", "workers", "env", "episodes_per_iter", "median_iter_s", "efficiency",
                 "predicted_iter_s", "same_params_as_serial", "episode_s", "driver_s",
                 "episode_cpu_s", "driver_cpu_s", "task_overhead_s", "command"]
EVAL_SEEDS = 10_000          # fixed evaluation seeds 10000, 10001, ...


@dataclass(frozen=True)
class Spec:
    env: str
    budget: int                # env steps of training episodes
    threshold: float
    needed: int                # seeds of 5 that must reach it
    config: dict = field(default_factory=dict)
    eval_every: int = 5


SPECS = {
    # V2-t with a small step, the settings of sb3-contrib's ARS defaults but N = 8, b = 4
    "ars-cartpole": Spec("CartPole-v1", 100_000, 475.0, 4,
                         dict(num_directions=8, top_directions=4, step_size=0.02, noise_std=0.03)),
    # A linear policy cannot swing the pendulum up and then hold it (pumping energy needs
    # torque along the velocity, balancing against it), so the bar is far below -250: above
    # the zero policy's -1071.7 on the 10 evaluation seeds.
    # Both episodes of a direction start from the same seed: without that, Pendulum's random
    # start angle swamps r+ - r- and a linear policy hardly moves from the zero policy.
    "ars-pendulum": Spec("Pendulum-v1", 150_000, -1000.0, 3,
                         dict(num_directions=16, top_directions=8, step_size=0.05,
                              noise_std=0.3)),
    # The ARS paper's Swimmer settings (V1, N = b = 1, alpha 0.02, nu 0.01) and its bar 325,
    # with the paper's linear policy a = M s WITHOUT a bias: with N = b = 1 every step is
    # +-2 alpha delta, and a bias coordinate random-walks into a constant torque that bends
    # the swimmer (with the bias, 1M steps gave 107, 51, 63, 236, 41).
    "ars-swimmer": Spec("Swimmer-v5", 500_000, 325.0, 3,
                        dict(normalize_obs=False, num_directions=1, top_directions=1,
                             step_size=0.02, noise_std=0.01, policy_bias=False),
                        eval_every=25),
    # The paper's HalfCheetah settings (V2 with top-b: N = 32, b = 4, alpha 0.02, nu 0.03,
    # linear policy without bias) and its bar 3000; 3M steps = 3000 episodes.
    "ars-halfcheetah": Spec("HalfCheetah-v5", 3_000_000, 3000.0, 3,
                            dict(normalize_obs=True, num_directions=32, top_directions=4,
                                 step_size=0.02, noise_std=0.03, policy_bias=False),
                            eval_every=2),
}
MUJOCO = ("ars-swimmer", "ars-halfcheetah")


def _score(act, env_id: str, n: int) -> float:
    """Mean return of n episodes with seeds EVAL_SEEDS + k; act(obs [obs_dim]) -> action."""
    env = gym.make(env_id)
    total = 0.0
    for k in range(n):
        obs, _ = env.reset(seed=EVAL_SEEDS + k)
        done = False
        while not done:
            obs, r, term, trunc, _ = env.step(act(obs))
            total += float(r)
            done = term or trunc
    env.close()
    return total / n


def run_minirl(name: str, spec: Spec, seed: int, budget: int) -> dict:
    agent = ARS(spec.env, ARSConfig(**spec.config), seed=seed)
    state = {"first": None, "eval_s": 0.0, "eval_cpu": 0.0}

    def callback(ag, m):
        if m["iteration"] % spec.eval_every == 0 and state["first"] is None:
            t, c = time.perf_counter(), time.process_time()
            if _score(lambda o: ag.predict(o, deterministic=True), spec.env, 5) >= spec.threshold:
                state["first"] = m["steps"]
            state["eval_s"] += time.perf_counter() - t
            state["eval_cpu"] += time.process_time() - c

    wall, cpu = time.perf_counter(), time.process_time()
    agent.learn(budget, callback=callback)
    wall = time.perf_counter() - wall - state["eval_s"]
    cpu = time.process_time() - cpu - state["eval_cpu"]
    final = _score(lambda o: agent.predict(o, deterministic=True), spec.env, 10)
    return _row(name, "minirl", spec, seed, budget, agent.total_steps, agent.iterations,
                state["first"], final, wall, cpu)


def run_sb3(name: str, spec: Spec, seed: int, budget: int) -> dict:
    """sb3-contrib ARS, linear policy with bias (clipped Box actions), one torch thread."""
    import torch
    from sb3_contrib import ARS as SB3ARS
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    torch.set_num_threads(1)
    cfg = {**ARSConfig().__dict__, **spec.config}
    env = make_vec_env(spec.env, n_envs=1, seed=seed)
    if cfg["normalize_obs"]:
        env = VecNormalize(env, norm_obs=True, norm_reward=False)
    model = SB3ARS("LinearPolicy", env, n_delta=cfg["num_directions"],
                   n_top=cfg["top_directions"] or None, learning_rate=cfg["step_size"],
                   delta_std=cfg["noise_std"], policy_kwargs=dict(with_bias=True), seed=seed,
                   device="cpu")

    def act(obs):
        norm = model.get_vec_normalize_env()
        x = norm.normalize_obs(obs) if norm is not None else obs
        return model.predict(x, deterministic=True)[0]

    state = {"first": None, "eval_s": 0.0, "eval_cpu": 0.0}

    class Evaluate(BaseCallback):
        def _on_step(self):
            return True

        def _on_rollout_start(self):   # once per iteration, before its candidates
            it = self.model._n_updates
            if it and it % spec.eval_every == 0 and state["first"] is None:
                t, c = time.perf_counter(), time.process_time()
                if _score(act, spec.env, 5) >= spec.threshold:
                    state["first"] = self.model.num_timesteps
                state["eval_s"] += time.perf_counter() - t
                state["eval_cpu"] += time.process_time() - c

    wall, cpu = time.perf_counter(), time.process_time()
    model.learn(budget, callback=Evaluate())
    wall = time.perf_counter() - wall - state["eval_s"]
    cpu = time.process_time() - cpu - state["eval_cpu"]
    final = _score(act, spec.env, 10)
    return _row(name, "sb3-contrib", spec, seed, budget, model.num_timesteps, model._n_updates,
                state["first"], final, wall, cpu)


def _row(name, impl, spec, seed, budget, steps, iters, first, final, wall, cpu) -> dict:
    return {"benchmark": name, "impl": impl, "seed": seed, "env": spec.env, "budget": budget,
            "steps": steps, "iterations": iters, "threshold": spec.threshold,
            "reached": first is not None, "first_step": first if first is not None else "",
            "final_return": round(final, 1), "wall_s": round(wall, 2),
            "wall_per_iter_ms": round(1000 * wall / max(iters, 1), 2), "cpu_s": round(cpu, 2),
            "cpu_per_iter_ms": round(1000 * cpu / max(iters, 1), 2)}


# ----- scaling -----------------------------------------------------------------------------

def _timed_iterations(backend: str, workers: int, env: str, n_dir: int, iters: int):
    """(median seconds per iteration, median evaluate seconds, final params, median CPU
    seconds per iteration, median evaluate CPU seconds) of ARS (CPU: this process only)."""
    agent = ARS(env, ARSConfig(num_directions=n_dir, top_directions=n_dir // 2,
                               noise_std=0.3, backend=backend, num_workers=workers), seed=0)
    ev = agent.evaluator
    eval_times, eval_cpu, stamps, cpus = [], [], [], []
    evaluate = ev.evaluate

    def timed(*a, **kw):
        t, c = time.perf_counter(), time.process_time()
        out = evaluate(*a, **kw)
        eval_times.append(time.perf_counter() - t)
        eval_cpu.append(time.process_time() - c)
        return out

    ev.evaluate = timed
    agent.learn(1, callback=lambda ag, m: stamps.append(time.perf_counter()))  # warm-up
    stamps, cpus = [time.perf_counter()], [time.process_time()]
    eval_times.clear()
    eval_cpu.clear()
    while len(stamps) <= iters:
        agent.learn(1, callback=lambda ag, m: (stamps.append(time.perf_counter()),
                                               cpus.append(time.process_time())))
    agent.close()
    return (float(np.median(np.diff(stamps))), float(np.median(eval_times)), agent.params,
            float(np.median(np.diff(cpus))), float(np.median(eval_cpu)))


def _task_overhead(backend: str, workers: int, reps: int = 20) -> float:
    """Seconds of one task's round trip: 4W one-step episodes (one per chunk) per call."""
    spec = PolicySpec("minirl/Bandit-v0")
    ev = make_evaluator(spec, backend, workers)
    k = 4 * workers
    params = np.zeros((k, ev.n_params))
    ev.evaluate(np.arange(k), params)
    times = []
    for r in range(reps):
        t = time.perf_counter()
        ev.evaluate(np.arange(k) + r, params)
        times.append(time.perf_counter() - t)
    ev.close()
    serial = make_evaluator(spec, "serial")
    t = time.perf_counter()
    for r in range(reps):
        serial.evaluate(np.arange(k) + r, params)
    c = (time.perf_counter() - t) / (reps * k)
    serial.close()
    return max(float(np.median(times)) * workers / k - c, 0.0)   # k/W tasks per worker


def _predict(d, c, o, k, w):
    chunks = min(k, 4 * w)
    return d + math.ceil(k / w) * c + math.ceil(chunks / w) * o


def run_scaling(command: str, env: str = "Pendulum-v1", n_dir: int = 16, iters: int = 8):
    backends = [("serial", 1), ("processes", 1), ("processes", 2)]
    if importlib.util.find_spec("ray") is not None:
        backends.append(("ray", 2))
    k, rows, meas = 2 * n_dir, [], {}
    for backend, w in backends:
        meas[(backend, w)] = _timed_iterations(backend, w, env, n_dir, iters)
        t_iter = meas[(backend, w)][0]
        print(f"# scaling {backend} x{w}: {t_iter:.3f} s/iteration", flush=True)
    t1, e1, p1, t1_cpu, e1_cpu = meas[("serial", 1)]
    c, d = e1 / k, t1 - e1                      # wall, under this machine's load
    c_cpu, d_cpu = e1_cpu / k, t1_cpu - e1_cpu  # CPU: what a dedicated core would take
    over = {b: _task_overhead(b, 2) for b in {b for b, _ in backends if b != "serial"}}
    for (backend, w), (t_iter, _, params, _, _) in meas.items():
        pred = t1 if backend == "serial" else _predict(d, c, over[backend], k, w)
        rows.append({"backend": backend, "workers": w, "env": env, "episodes_per_iter": k,
                     "median_iter_s": round(t_iter, 4), "efficiency": round(t1 / (w * t_iter), 3),
                     "predicted_iter_s": round(pred, 4),
                     "same_params_as_serial": bool(np.array_equal(params, p1)),
                     "episode_s": f"{c:.6g}", "driver_s": f"{d:.6g}",
                     "episode_cpu_s": f"{c_cpu:.6g}", "driver_cpu_s": f"{d_cpu:.6g}",
                     "task_overhead_s": f"{over.get(backend, 0.0):.6g}", "command": command})
    order = ["serial", "processes", "ray"]                  # serial first: the report's base
    store_rows(RESULTS / "learning_gradient_free_scaling.csv", rows, ("backend", "workers"),
               SCALE_COLUMNS, sort_key=lambda r: (order.index(r["backend"]) if r["backend"]
                                                  in order else len(order), int(r["workers"])))
    return rows


HALFCHEETAH_NOTE = (
    "ars-halfcheetah: the paper's V2-t settings (N = 32, b = 4, alpha 0.02, nu 0.03, states "
    "normalized, no bias), 64 episodes = 64k steps per iteration, scored every 2 iterations; "
    "the paper's bar is 3000. Only the seeds listed were run (machine time), fewer than the 5 "
    "the verdict needs, so no verdict is given.")

# ----- report --------------------------------------------------------------------------------

def write_report() -> Path:
    paths = [RESULTS / f"learning_gradient_free_{n}{suffix}.csv" for n in SPECS
             for suffix in ("", "_peer")]
    rows = [r for path in paths for r in read_csv_rows(path)]
    srows = read_csv_rows(RESULTS / "learning_gradient_free_scaling.csv")
    commands = []
    for r in rows + srows:
        if r["command"] not in commands:
            commands.append(r["command"])
    lines = ["# Gradient-free search benchmarks (ARS, linear policy)", "",
             "Produced by (each command wrote the rows that name it in the CSVs):", ""]
    lines += [f"    {c}" for c in commands] + ["",
             "One BLAS/torch thread per process, on a 2-core machine shared with other jobs "
             "(load average up to ~20 during these runs), so wall times are inflated and noisy; "
             "CPU time per iteration (process time, evaluation excluded) is the comparison the "
             "load does not move. A run with both implementations ran each seed's pair back to "
             "back; a '--only peer' run ran the peer alone, after the minirl rows. "
             "'first step': env steps when the unperturbed policy's mean over 5 fixed-seed "
             "episodes (checked every few iterations) first reached the threshold; 'final': "
             "mean over 10 fixed-seed episodes after the budget.", ""]
    if rows:
        lines += ["| benchmark | impl | env | budget | threshold | seeds reaching it | needed | "
                  "first step (per seed) | final return (per seed) | median wall s | "
                  "median wall ms / iteration | median CPU ms / iteration |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        groups = {}
        for r in rows:
            groups.setdefault((r["benchmark"], r["impl"]), []).append(r)

        def med(rs, key):
            vals = [float(r[key]) for r in rs if r.get(key) not in (None, "")]
            return float(np.median(vals)) if vals else math.nan

        for (name, impl), rs in groups.items():
            spec = SPECS[name]
            ok = sum(r["reached"] == "True" for r in rs)
            verdict = f" ({'met' if ok >= spec.needed else 'MISSED'})" if impl == "minirl" else ""
            if impl == "minirl" and len(rs) < 5 and ok < spec.needed:
                verdict = f" ({len(rs)} of 5 seeds run)"
            lines.append(
                f"| {name} | {impl} | {spec.env} | {rs[0]['budget']} | {spec.threshold:g} | "
                f"{ok}/{len(rs)}{verdict} | {spec.needed if impl == 'minirl' else '-'} | "
                f"{', '.join(r['first_step'] or '-' for r in rs)} | "
                f"{', '.join(r['final_return'] for r in rs)} | {med(rs, 'wall_s'):.1f} | "
                f"{med(rs, 'wall_per_iter_ms'):.2f} | {med(rs, 'cpu_per_iter_ms'):.2f} |")
        for name in SPECS:
            if (name, "minirl") in groups and (name, "sb3-contrib") in groups:
                m, p = groups[(name, "minirl")], groups[(name, "sb3-contrib")]
                by_seed = {r["seed"]: r for r in m}
                pairs = [(by_seed[b["seed"]], b) for b in p if b["seed"] in by_seed]
                ratios = [float(b["wall_per_iter_ms"]) / float(a["wall_per_iter_ms"])
                          for a, b in pairs]
                cpu = [float(b["cpu_per_iter_ms"]) / float(a["cpu_per_iter_ms"])
                       for a, b in pairs]
                lines += ["", f"{name}: sb3-contrib / minirl time per iteration, per seed "
                          f"{', '.join(b['seed'] for _, b in pairs)}: wall {', '.join(f'{x:.1f}x' for x in ratios)} "
                          f"(median {np.median(ratios):.1f}x), CPU "
                          f"{', '.join(f'{x:.1f}x' for x in cpu)} (median {np.median(cpu):.1f}x); "
                          f"target >= 3x. Median final return: minirl "
                          f"{med(m, 'final_return'):.1f}, sb3-contrib {med(p, 'final_return'):.1f}."]
    names = {r["benchmark"] for r in rows}
    if "ars-halfcheetah" in names:
        lines += ["", HALFCHEETAH_NOTE]
    notes = RESULTS / "learning_gradient_free_notes.md"   # hand-written findings, kept as is
    if notes.exists():
        lines += ["", notes.read_text().rstrip("\n")]
    if srows:
        lines += ["", "## Scaling (ARS, Pendulum-v1, N = 16: 32 episodes of 200 steps per "
                  "iteration; median of 8 iterations)", "",
                  "| backend | workers | median s / iteration | efficiency vs ideal | predicted "
                  "by T(W) | params bit-identical to serial |", "|---|---|---|---|---|---|"]
        for r in srows:
            lines.append(f"| {r['backend']} | {r['workers']} | {r['median_iter_s']} | "
                         f"{r['efficiency']} | {r['predicted_iter_s']} | "
                         f"{r['same_params_as_serial']} |")
        if srows:
            c, d = float(srows[0]["episode_cpu_s"]), float(srows[0]["driver_cpu_s"])
            over = {r["backend"]: float(r["task_overhead_s"]) for r in srows
                    if r["backend"] != "serial"}
            lines += ["", "Efficiency = T_serial / (W T_W); 'predicted by T(W)' uses the wall-time "
                      "c, d and o measured in the same run. Two workers on a 2-core machine that "
                      "other jobs share cannot reach 1.0; the measured load is part of the "
                      "number.", "",
                      "### Projection to 64 cores", "",
                      "T(W) = d + ceil(K/W) c + ceil(C/W) o with C = min(K, 4W) chunks (each "
                      "worker takes chunks in turn and pays one round trip per chunk). For a "
                      "dedicated core, c and d are this run's CPU times (serial evaluator): "
                      f"d = {1000 * d:.2f} ms driver time per iteration, c = {1000 * c:.3f} ms "
                      f"per {srows[0]['env']} episode (200 steps); the per-task round trip o is "
                      "wall time measured under this machine's load (pessimistic): "
                      + ", ".join(f"{b} {1000 * o:.2f} ms" for b, o in over.items()) + ".", "",
                      "| directions N | episodes K | serial T(1) s | Ray 64 workers T(64) s | "
                      "speed-up | efficiency |", "|---|---|---|---|---|---|"]
            o = over.get("ray", over.get("processes", 0.0))
            for n in (16, 64, 256, 1024):
                kk = 2 * n
                t1 = d + kk * c
                t64 = _predict(d, c, o, kk, 64)
                lines.append(f"| {n} | {kk} | {t1:.3f} | {t64:.4f} | {t1 / t64:.1f} | "
                             f"{t1 / (64 * t64):.2f} |")
            lines += ["", "Assumptions: one episode costs the same on every core (no "
                      "straggler), the driver stays serial (d does not shrink), the round trip o "
                      "measured between two local actors holds on the cluster (a network hop adds "
                      "to it), and d grows with N only through sampling and the update, ignored "
                      "here. Small populations are overhead-bound: with K < 64 most cores idle."]
    out = RESULTS / "learning_gradient_free.md"
    atomic_write_text(out, "\n".join(lines) + "\n")
    return out


def store_row(path: Path, row: dict) -> None:
    """Store one (implementation, seed) row in ``path`` atomically: the other rows are kept,
    an old row of the same implementation and seed is replaced with a line saying so."""
    store_rows(path, [row], ("impl", "seed"), LEARN_COLUMNS, sort_key=lambda r: int(r["seed"]))


def main(argv=None) -> int:
    global RESULTS
    p = argparse.ArgumentParser(prog="python -m benchmarks.learning.gradient_free",
                                description=__doc__.splitlines()[0])
    p.add_argument("--only", nargs="+", choices=["learning", "peer", "scaling"],
                   default=["learning", "peer", "scaling"])
    p.add_argument("--bench", nargs="+", choices=list(SPECS), default=None,
                   help="learning benchmarks to run (default: all whose env is available)")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    p.add_argument("--budget", type=int, default=None, help="override every budget (smoke runs)")
    p.add_argument("--append", action="store_true",
                   help="(the default now; kept so recorded commands still run) keep the CSV "
                        "rows of seeds not run now; a rerun seed's row replaces its old one, "
                        "with a line saying so")
    p.add_argument("--fresh", action="store_true",
                   help="discard the selected benchmarks' existing rows first (said per file)")
    p.add_argument("--report-only", action="store_true",
                   help="only rebuild the markdown table from the CSVs in benchmarks/results")
    args = p.parse_args(argv)
    if args.report_only:
        print(f"wrote {write_report()}")
        return 0
    command = ("python -m benchmarks.learning.gradient_free "
               + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv)))
    names = args.bench or [n for n in SPECS if n not in MUJOCO
                           or importlib.util.find_spec("mujoco") is not None]
    peer = "peer" in args.only and importlib.util.find_spec("sb3_contrib") is not None
    learn = "learning" in args.only or peer
    if learn and args.budget is not None and any(args.budget != SPECS[n].budget for n in names):
        RESULTS = smoke_results(f"--budget {args.budget} (not the documented budget)")
    RESULTS.mkdir(exist_ok=True)
    if learn:
        for name in names:
            spec = SPECS[name]
            budget = args.budget or spec.budget
            suffix = "" if "learning" in args.only else "_peer"    # a peer-only run
            path = RESULTS / f"learning_gradient_free_{name}{suffix}.csv"
            if args.fresh and path.exists():
                print(f"--fresh: discarding {len(read_csv_rows(path))} rows of {path}")
                path.unlink()
            for seed in args.seeds:
                runs = ([run_minirl] if "learning" in args.only else []) + (
                    [run_sb3] if peer and name not in MUJOCO else [])
                for run in runs:
                    row = {**run(name, spec, seed, budget), "command": command}
                    print(", ".join(f"{k}={row[k]}" for k in LEARN_COLUMNS[:-1]), flush=True)
                    store_row(path, row)      # after every seed: a stopped run keeps them
    if "scaling" in args.only:
        run_scaling(command)
    print(f"wrote {write_report()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
