"""Soak test: resident memory of a long training run with its CSV log (issue: memory flat).

    nice -n 5 python -m benchmarks.soak [--steps 1000000] [--algo a2c] [--keep-rows]

Trains ``--algo`` on CartPole-v1 for ``--steps`` env steps with a ``TrainingLog`` writing
``progress.csv`` (as ``minirl train`` does) and samples the process's resident set size
(``VmRSS`` from ``/proc/self/status``) every ``--every`` steps. A2C (8 envs x 5 steps = 40 steps
per iteration) is the default because it logs the most rows per step: 25,000 rows per 1M steps,
~21 MB if every row were kept in memory as a dict (~840 bytes each, the logger before this
benchmark existed; ``--keep-rows`` reproduces that for comparison).

Writes ``benchmarks/results/soak_<algo>[_keep_rows].csv`` (steps, rows, rss_mb, wall_s) and
prints the growth of RSS between 10% of the run (allocator and caches warmed up) and the end.
The CSV is one run's time series: a rerun replaces it as a whole (atomically, with a line
saying so). A smoke run (``--steps`` or ``--every`` other than the defaults) writes to a
temporary directory instead, never to benchmarks/results.
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from benchmarks._harness import announce_replace, atomic_write_csv, smoke_results  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
STEPS, EVERY = 1_000_000, 20_000        # the documented run


def rss_mb() -> float:
    """Resident set size of this process in MiB (Linux ``/proc``)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError("VmRSS not found in /proc/self/status")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=STEPS)
    p.add_argument("--algo", default="a2c")
    p.add_argument("--every", type=int, default=EVERY, help="sample RSS every this many steps")
    p.add_argument("--keep-rows", action="store_true", help="keep every row in memory (old logger)")
    args = p.parse_args(argv)
    out_dir = RESULTS
    if (args.steps, args.every) != (STEPS, EVERY):     # smoke runs never touch the results
        out_dir = smoke_results(f"--steps {args.steps} --every {args.every} (not the "
                                f"documented {STEPS} / {EVERY})")

    from minirl.algos import ALGOS
    from minirl.logger import TrainingLog

    agent = ALGOS[args.algo]("CartPole-v1", seed=0)
    samples = []
    next_sample = 0
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        log = TrainingLog(Path(tmp) / "progress.csv", fields=agent.log_fields,
                          keep_rows=args.keep_rows)

        def callback(agent, metrics):
            nonlocal next_sample
            log(agent, metrics)
            if metrics["steps"] >= next_sample:
                samples.append({"steps": metrics["steps"], "rows": log.n_rows,
                                "rss_mb": round(rss_mb(), 2),
                                "wall_s": round(time.perf_counter() - start, 1)})
                next_sample += args.every

        agent.learn(args.steps, callback=callback)
        log.close()
        samples.append({"steps": agent.total_steps, "rows": log.n_rows,
                        "rss_mb": round(rss_mb(), 2),
                        "wall_s": round(time.perf_counter() - start, 1)})
    name = f"soak_{args.algo}{'_keep_rows' if args.keep_rows else ''}.csv"
    out_dir.mkdir(exist_ok=True)
    announce_replace(out_dir / name, " (the CSV of an earlier run)")
    path = atomic_write_csv(out_dir / name, samples)
    warm = next(s for s in samples if s["steps"] >= args.steps // 10)
    last = samples[-1]
    print(f"{args.algo} CartPole-v1 {last['steps']} steps, {last['rows']} CSV rows, "
          f"{last['wall_s']} s: RSS {warm['rss_mb']:.1f} MiB at {warm['steps']} steps -> "
          f"{last['rss_mb']:.1f} MiB at the end ({last['rss_mb'] - warm['rss_mb']:+.1f} MiB); "
          f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
