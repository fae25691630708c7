"""Timing, tables and CSV output shared by every ``bench_*.py`` module.

Rules the harness enforces: warm-up before timing (Numba compile cost is measured apart, in
``bench_startup``), the median of several repeats, and every figure reported next to a
baseline measured in the same run, as a ratio.
"""
from __future__ import annotations

import csv
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

RESULTS = Path(__file__).resolve().parent / "results"


def median_time(fn: Callable[[], object], repeats: int = 7, min_time: float = 0.05,
                warmup: int = 1, clock: Callable[[], float] = time.perf_counter) -> float:
    """Median seconds per call of ``fn()`` over ``repeats`` timed batches.

    Each batch runs ``fn`` enough times to last about ``min_time`` seconds, so that
    microsecond calls are not dominated by timer resolution. ``clock=time.thread_time``
    measures CPU time instead of wall time: on a shared machine the wall clock also counts
    the time other processes hold the core (CPU time still sees cache and bandwidth
    contention).
    """
    for _ in range(warmup):
        fn()
    t0 = clock()
    fn()
    once = max(clock() - t0, 1e-7)
    number = max(1, int(min_time / once))
    samples = []
    for _ in range(repeats):
        t0 = clock()
        for _ in range(number):
            fn()
        samples.append((clock() - t0) / number)
    return statistics.median(samples)


def interleaved(fns: dict, repeats: int = 7, min_time: float = 0.05,
                clock: Callable[[], float] = time.perf_counter) -> tuple[dict, dict]:
    """Time several candidates in alternating rounds; return ``(medians, per_round_samples)``.

    The machine is shared and its load drifts: timing the candidates round by round (instead
    of one after the other) lets every ratio see the same background load. A candidate that
    is ``None`` (a peer that is not installed) gets NaN. Use :func:`paired_ratio` on the
    samples for a ratio that is robust to one busy round.
    """
    live = {name: fn for name, fn in fns.items() if fn is not None}
    for fn in live.values():
        median_time(fn, repeats=1, min_time=0.0, warmup=2, clock=clock)
    samples = {name: [] for name in live}
    for _ in range(repeats):
        for name, fn in live.items():
            samples[name].append(median_time(fn, repeats=1, min_time=min_time, warmup=0,
                                             clock=clock))
    medians = {name: statistics.median(samples[name]) if name in live else float("nan")
               for name in fns}
    return medians, samples


def paired_ratio(samples: dict, a: str, b: str) -> float:
    """Median over rounds of ``time[a] / time[b]`` (samples from :func:`interleaved`)."""
    if a not in samples or b not in samples:
        return float("nan")
    return statistics.median(x / y for x, y in zip(samples[a], samples[b]))


def memory_floor(nbytes: int) -> Callable[[], None]:
    """A callable whose run time is the memory floor for a kernel that moves ``nbytes``.

    ``nbytes`` is what the kernel must at least read plus write. The floor is ``np.copyto``
    of ``nbytes / 2`` (one read stream plus one write stream: ``nbytes`` in all), the same
    definition in every benchmark so that "x times the floor" compares across kernels.
    Source and destination are cut from one buffer with addresses 2 kB apart modulo 4 kB:
    two separately allocated equal-sized arrays often sit a whole number of pages apart, and
    that 4K aliasing made the copy up to 12x slower here, which would flatter every ratio.
    """
    import numpy as np

    k = max(int(nbytes) // 16, 1)
    buf = np.ones(2 * k + 1024)
    src = buf[:k]
    shift = ((2048 - (src.ctypes.data + 8 * k) % 4096) % 4096) // 8
    dst = buf[k + shift:2 * k + shift]
    return lambda: np.copyto(dst, src)


def fmt_time(seconds: float) -> str:
    if seconds != seconds:  # NaN: not measured
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


@dataclass
class Table:
    """Rows of ``{column: value}``; times are seconds, shown with units; ratios as ``x.xx×``."""

    title: str
    rows: list[dict] = field(default_factory=list)

    def add(self, **row) -> None:
        self.rows.append(row)

    def render(self) -> str:
        if not self.rows:
            return f"## {self.title}\n(no rows)\n"
        cols = list(dict.fromkeys(k for r in self.rows for k in r))

        def cell(k, v):
            if isinstance(v, float) and (k.endswith("_s") or k == "time"):
                return fmt_time(v)
            if isinstance(v, float):
                return f"{v:.3g}"
            return str(v)

        body = [[cell(k, r.get(k, "")) for k in cols] for r in self.rows]
        widths = [max(len(c), *(len(b[i]) for b in body)) for i, c in enumerate(cols)]
        line = lambda vals: "| " + " | ".join(v.ljust(w) for v, w in zip(vals, widths)) + " |"
        out = [f"## {self.title}", line(cols), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
        out += [line(b) for b in body]
        return "\n".join(out) + "\n"

    def write_csv(self, name: str) -> Path:
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / f"{name}.csv"
        cols = list(dict.fromkeys(k for r in self.rows for k in r))
        with path.open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=cols)
            w.writeheader()
            w.writerows(self.rows)
        return path


def emit(table: Table, name: str) -> None:
    """Print the table and write it to ``benchmarks/results/<name>.csv``."""
    print(table.render(), flush=True)
    path = table.write_csv(name)
    print(f"(written to {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path})\n",
          file=sys.stderr, flush=True)


def optional_import(module: str):
    """Import a benchmark peer if installed, else return None (peers are never required)."""
    try:
        return __import__(module, fromlist=["_"])
    except Exception:  # noqa: BLE001 - any import failure means the peer is unavailable
        return None
