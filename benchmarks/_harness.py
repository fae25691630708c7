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
                warmup: int = 1) -> float:
    """Median seconds per call of ``fn()`` over ``repeats`` timed batches.

    Each batch runs ``fn`` enough times to last about ``min_time`` seconds, so that
    microsecond calls are not dominated by timer resolution.
    """
    for _ in range(warmup):
        fn()
    t0 = time.perf_counter()
    fn()
    once = max(time.perf_counter() - t0, 1e-7)
    number = max(1, int(min_time / once))
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        samples.append((time.perf_counter() - t0) / number)
    return statistics.median(samples)


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
