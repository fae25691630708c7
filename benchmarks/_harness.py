"""Timing, tables and result files shared by every benchmark script.

Rules the harness enforces: warm-up before timing (Numba compile cost is measured apart, in
``bench_startup``), the median of several repeats, and every figure reported next to a
baseline measured in the same run, as a ratio.

Result files (every benchmark, micro and learning): no run loses or mixes results.

* :func:`atomic_write_text` / :func:`atomic_write_csv` / :func:`atomic_path` write a temporary
  file next to the target and ``os.replace`` it over the target, so an interrupted run never
  leaves a half-written file and readers see either the old or the new file.
* :func:`store_rows` merges a run's rows into a CSV by the script's natural key (seed,
  benchmark, ...): rows of other keys are kept, a replaced key is announced on stdout, and
  concurrent processes storing into the same file are serialized by a lock.
* :func:`smoke_results` gives smoke runs (reduced sizes) a temporary directory, announced,
  instead of ``benchmarks/results``.
"""
from __future__ import annotations

import contextlib
import csv
import fcntl
import hashlib
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

RESULTS = Path(__file__).resolve().parent / "results"
_SMOKE_DIR: Path | None = None


# ----- result files ----------------------------------------------------------------------------

def _show(path: Path) -> str:
    path = Path(path)
    cwd = Path.cwd()
    return str(path.relative_to(cwd)) if path.is_absolute() and path.is_relative_to(cwd) \
        else str(path)


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path next to ``path``; on a normal exit it replaces ``path``
    (``os.replace``, atomic on one file system), on an exception it is removed and ``path``
    is left as it was. For writers that take a file name (``savefig``, ``np.savez``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
        os.chmod(tmp, mode)                 # mkstemp makes 0600; keep the usual mode
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def atomic_write_text(path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file renamed over it (fsynced first)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
    return path


def atomic_write_csv(path, rows: list[dict], columns=None, fmt=None) -> Path:
    """Write ``rows`` (dicts) as a CSV with header ``columns`` (default: every key, in order of
    appearance) atomically. ``fmt(value) -> value`` formats each cell (e.g. floats)."""
    path = Path(path)
    if columns is None:
        columns = list(dict.fromkeys(k for r in rows for k in r))
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(columns))
            w.writeheader()
            for r in rows:
                w.writerow(r if fmt is None else {k: fmt(v) for k, v in r.items()})
            f.flush()
            os.fsync(f.fileno())
    return path


def read_csv_rows(path) -> list[dict]:
    """The rows of a CSV as dicts of strings; [] if the file does not exist."""
    path = Path(path)
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@contextlib.contextmanager
def file_lock(path):
    """An exclusive lock for read-modify-write of ``path`` by several processes (the lock file
    lives in the system temp directory, never next to the results)."""
    digest = hashlib.sha1(str(Path(path).resolve()).encode()).hexdigest()[:16]
    with open(Path(tempfile.gettempdir()) / f"minirl_results_{digest}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def store_rows(path, rows: list[dict], key, columns=None, sort_key=None, fmt=None,
               replace_keys=()) -> list[dict]:
    """Merge ``rows`` into the CSV at ``path`` and write it atomically; return all its rows.

    ``key``: column names (or a function of a row) naming a result, e.g. ``("seed",)``. Old
    rows whose key is among the new rows' keys, or in ``replace_keys``, are replaced, and that
    is said on stdout (the key and how many old rows); rows of other keys are kept. Keys are
    compared as strings, so rows read back from the CSV match the ones just produced.
    ``columns``: the header (default: the old header, then any new keys). ``sort_key``: sort
    the merged rows. Several processes may store into one file: the read-merge-write is
    serialized by :func:`file_lock`.
    """
    path = Path(path)
    keyf = key if callable(key) else (lambda r, _k=tuple(key): tuple(str(r.get(c, "")) for c in _k))
    with file_lock(path):
        old = read_csv_rows(path)
        new_keys = list(dict.fromkeys([keyf(r) for r in rows] + list(replace_keys)))
        gone = {k: 0 for k in new_keys}
        kept = []
        for r in old:
            k = keyf(r)
            if k in gone:
                gone[k] += 1
            else:
                kept.append(r)
        replaced = {k: n for k, n in gone.items() if n}
        if replaced:
            names = "; ".join(f"{_key_text(key, k)} ({n} row{'s' * (n != 1)})"
                              for k, n in replaced.items())
            print(f"replacing in {_show(path)}: {names}", flush=True)
        merged = kept + list(rows)
        if sort_key is not None:
            merged.sort(key=sort_key)
        if columns is None:
            header = list(dict.fromkeys([*(old[0].keys() if old else []),
                                         *(k for r in rows for k in r)]))
        else:
            header = list(columns)
        atomic_write_csv(path, merged, header, fmt=fmt)
    return merged


def _key_text(key, k) -> str:
    if callable(key):
        return str(k)
    return ", ".join(f"{c}={v}" for c, v in zip(key, k))


def announce_replace(path, what: str = "") -> None:
    """Say on stdout that an existing result file is about to be replaced as a whole."""
    path = Path(path)
    if path.exists():
        print(f"replacing {_show(path)}{what}", flush=True)


def smoke_results(reason: str) -> Path:
    """A temporary directory for this process's smoke-run results (made once, announced):
    reduced sizes never write into ``benchmarks/results``. Also redirects :func:`emit`."""
    global _SMOKE_DIR, RESULTS
    if _SMOKE_DIR is None:
        _SMOKE_DIR = Path(tempfile.mkdtemp(prefix="minirl_bench_smoke_"))
        print(f"{reason}: results go to {_SMOKE_DIR}, not benchmarks/results", flush=True)
    RESULTS = _SMOKE_DIR
    return _SMOKE_DIR


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
        """Write ``RESULTS/<name>.csv`` atomically. A table is one run's measurement (its
        ratios share that run's machine load), so it replaces an older file as a whole,
        which is announced; rows are never mixed across runs."""
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / f"{name}.csv"
        old = read_csv_rows(path)
        if path.exists():
            print(f"replacing {_show(path)} ({len(old)} rows of an earlier run)", flush=True)
        cols = list(dict.fromkeys(k for r in self.rows for k in r))
        return atomic_write_csv(path, self.rows, cols)


def emit(table: Table, name: str, quick: bool = False) -> None:
    """Print the table and write it to ``benchmarks/results/<name>.csv`` (atomically; an
    existing file is replaced with a line saying so). ``quick=True`` (a smoke run) writes to
    a temporary directory instead (:func:`smoke_results`)."""
    if quick:
        smoke_results("--quick")
    print(table.render(), flush=True)
    path = table.write_csv(name)
    print(f"(written to {_show(path)})\n", file=sys.stderr, flush=True)


def optional_import(module: str):
    """Import a benchmark peer if installed, else return None (peers are never required)."""
    try:
        return __import__(module, fromlist=["_"])
    except Exception:  # noqa: BLE001 - any import failure means the peer is unavailable
        return None
