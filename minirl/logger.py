"""One CSV row per training iteration, from the metrics dict an agent passes to its callback.

    log = TrainingLog("runs/x/progress.csv", fields=agent.log_fields)
    agent.learn(100_000, callback=log)        # log(agent, metrics) writes one row
    log.close()

Memory stays flat over any run length: with a path, rows are streamed to disk and not kept
(only the last ``window`` episode returns and a few counters are); ``first_reached`` reads
the rows back from the file. Without a path the rows are kept in ``self.rows`` (tests, short
benchmark runs). ``benchmarks/soak.py`` records the resident set size over 1M steps.

Files: rows go to a live file ``.progress.csv.live`` next to ``path`` as they come (flushed
each row, so ``tail -f`` works); ``checkpoint()`` and ``close()`` copy it atomically to
``path`` (``minirl.io``), together with ``.progress.csv.state.json`` (the episode window and
the wall-clock offset). So ``path`` is always complete and matches the model saved at the same
checkpoint, and ``TrainingLog(path, resume=True)`` continues it exactly where it stopped.

Columns: the common ones (``FIELDS``), then the agent's own ``log_fields`` (pass them as
``fields``; ``minirl train`` does), e.g. PPO's ``policy_loss, value_loss, entropy,
approx_kl_k1, approx_kl_k3, clip_fraction, explained_variance, grad_norm, lr, clip_eps,
kl_beta, updates`` or SAC's ``critic_loss, actor_loss, alpha, entropy, q_mean``. A cell is
empty when the agent did not report the quantity in that iteration.

| column               | meaning                                                          |
|----------------------|------------------------------------------------------------------|
| steps, iteration     | env steps and iterations so far                                   |
| wall_time            | seconds since the log was created                                 |
| steps_per_s          | steps / wall_time                                                 |
| episodes             | episodes finished in this iteration                               |
| episode_return_mean  | mean return of those episodes (raw rewards)                       |
| episode_length_mean  | their mean length                                                 |
| return_mean_100      | mean return of the last 100 finished episodes (the usual score)   |

A log written before this split (every agent's file had PPO's columns too, empty for the
others) is still read, plotted and resumed as it is: resuming keeps the file's columns.
"""
from __future__ import annotations

import csv
import json
import math
import os
import time
from collections import deque
from pathlib import Path

import numpy as np

from minirl.io import atomic_copy, atomic_write_text

__all__ = ["FIELDS", "TrainingLog", "read_csv", "check_steps"]

# the columns every agent's log has; an agent's ``log_fields`` follow them
FIELDS = [
    "steps", "iteration", "wall_time", "steps_per_s", "episodes", "episode_return_mean",
    "episode_length_mean", "return_mean_100",
]


class TrainingLog:
    """Callback that writes a CSV row per iteration and tracks the last ``window`` returns.

    ``path=None`` keeps the rows in memory only (``self.rows``); with a path nothing grows
    with the run (``self.rows`` is empty unless ``keep_rows=True``). ``fields``: extra
    columns after the common ones (an agent's ``log_fields``). ``resume=True`` continues the
    snapshot at ``path`` (rows, episode window, wall clock) instead of starting afresh.
    ``first_reached(threshold)`` gives the first (steps, wall_time) at which
    ``return_mean_100`` reached ``threshold`` (with at least ``min_episodes`` episodes seen).
    """

    def __init__(self, path: str | Path | None = None, window: int = 100,
                 fields: tuple[str, ...] = (), resume: bool = False,
                 keep_rows: bool | None = None):
        self.fields = FIELDS + [f for f in fields if f not in FIELDS]
        self.recent = deque(maxlen=window)
        self.keep_rows = path is None if keep_rows is None else bool(keep_rows)
        self.rows: list[dict] = []
        self.path = None if path is None else Path(path)
        self.n_rows = 0
        self._wall_offset = 0.0
        self._file = self._writer = None
        if self.path is None:
            if resume:
                raise ValueError("resume=True needs the path of the log to continue")
        else:
            self._live = self.path.with_name(f".{self.path.name}.live")
            self._state = self.path.with_name(f".{self.path.name}.state.json")
            if resume:
                self._resume()
            else:
                self._file = open(self._live, "w", newline="")
                self._writer = csv.DictWriter(self._file, self.fields)
                self._writer.writeheader()
                self._file.flush()
        self.start = time.perf_counter()

    def _resume(self) -> None:
        """Start the live file from the snapshot at ``path`` and restore the window/clock.
        ValueError naming the file (and line) if it is not a complete progress CSV: a
        malformed row is refused here, not carried into the resumed run."""
        with open(self.path, newline="") as f:
            header = next(csv.reader(f), None)
        if header is None or header[:len(FIELDS)] != FIELDS:
            raise ValueError(f"{self.path} is not a minirl progress CSV (cannot resume it)")
        # every row: the right number of cells, numbers only, steps finite and increasing
        check_steps(read_csv(self.path)["steps"], self.path)
        self.fields = header + [f for f in self.fields if f not in header]
        state = {}
        if self._state.is_file():
            state = json.loads(self._state.read_text())
        self.recent.extend(state.get("recent", []))
        self._wall_offset = float(state.get("wall_time", 0.0))
        self.n_rows = int(state.get("rows", 0))
        if len(self.fields) == len(header):
            atomic_copy(self.path, self._live)
        else:  # new columns (e.g. evaluations from now on): the old rows leave them empty
            with open(self.path, newline="") as src, open(self._live, "w", newline="") as dst:
                writer = csv.DictWriter(dst, self.fields, restval="")
                writer.writeheader()
                writer.writerows(csv.DictReader(src))
        self._file = open(self._live, "a", newline="")
        self._writer = csv.DictWriter(self._file, self.fields)

    def __call__(self, agent, metrics: dict) -> None:
        wall = time.perf_counter() - self.start + self._wall_offset
        rets, lens = metrics.get("episode_returns", []), metrics.get("episode_lengths", [])
        self.recent.extend(rets)
        row = {k: v for k, v in metrics.items() if k in self.fields}
        row.update(
            wall_time=wall, steps_per_s=metrics["steps"] / wall if wall > 0 else math.nan,
            episodes=len(rets),
            episode_return_mean=float(np.mean(rets)) if len(rets) else math.nan,
            episode_length_mean=float(np.mean(lens)) if len(lens) else math.nan,
            return_mean_100=self.recent_mean,
        )
        self.n_rows += 1
        self.last_row = row
        if self.keep_rows:
            self.rows.append(row)
        if self._writer:
            self._writer.writerow({k: _fmt(row.get(k)) for k in self.fields})
            self._file.flush()

    @property
    def recent_mean(self) -> float:
        """Mean of the last ``window`` episode returns (NaN before the first episode ends)."""
        return float(np.mean(self.recent)) if self.recent else math.nan

    def first_reached(self, threshold: float, min_episodes: int = 100):
        """(steps, wall_time) of the first row with return_mean_100 >= threshold, else None."""
        seen = 0
        for row in self._iter_rows():
            seen += row["episodes"]
            if seen >= min_episodes and row["return_mean_100"] >= threshold:
                return row["steps"], row["wall_time"]
        return None

    def _iter_rows(self):
        """Every row so far, from memory or streamed back from the live file (O(1) memory)."""
        if self.keep_rows or self.path is None:
            yield from self.rows
            return
        if self._file is not None:
            self._file.flush()
        with open(self._live if self._file is not None else self.path, newline="") as f:
            for r in csv.DictReader(f):
                yield {k: _parse(r.get(k)) for k in ("steps", "episodes", "return_mean_100",
                                                    "wall_time")}

    def checkpoint(self) -> None:
        """Atomically copy the rows so far to ``path`` (with the window and clock state)."""
        if self.path is None or self._file is None:
            return
        self._file.flush()
        os.fsync(self._file.fileno())
        atomic_copy(self._live, self.path)
        last_wall = getattr(self, "last_row", {}).get("wall_time", self._wall_offset)
        atomic_write_text(self._state, json.dumps(
            {"recent": list(self.recent), "wall_time": last_wall, "rows": self.n_rows}))

    def close(self, keep_state: bool = False) -> None:
        """Final ``checkpoint()``; then the live file is removed, and the state file too unless
        ``keep_state`` (a run that may be resumed: interrupted, diverged). Safe to call twice.
        Resuming a log without its state file starts a fresh episode window."""
        if self._file is None:
            return
        self.checkpoint()
        self._file.close()
        self._file = self._writer = None
        os.unlink(self._live)
        if not keep_state:
            self._state.unlink(missing_ok=True)


def _parse(x) -> float:
    return math.nan if x in (None, "") else float(x)


def _fmt(x) -> str:
    if x is None:
        return ""
    if isinstance(x, float):
        return "" if math.isnan(x) else f"{x:.8g}"
    return str(x)


def read_csv(path: str | Path) -> dict[str, np.ndarray]:
    """Columns of a progress CSV as float arrays (empty cells become NaN).

    Raises FileNotFoundError for a missing file and ValueError naming the file (and the line)
    for anything that is not a progress CSV: binary junk, no ``steps`` column, a non-numeric
    cell, a row with the wrong number of cells.
    """
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if not header or "steps" not in header:
                raise ValueError("no header with a 'steps' column")
            cols: dict[str, list[float]] = {k: [] for k in header}
            for line, cells in enumerate(reader, start=2):
                if len(cells) != len(header):
                    raise ValueError(f"line {line} has {len(cells)} cells, the header "
                                     f"{len(header)}")
                for k, cell in zip(header, cells):
                    try:
                        cols[k].append(_parse(cell))
                    except ValueError:
                        raise ValueError(f"line {line}, column {k!r}: {cell!r} is not a "
                                         f"number") from None
    except FileNotFoundError:
        raise
    except (ValueError, UnicodeDecodeError, csv.Error, OSError) as e:
        raise ValueError(f"{path} is not a readable progress CSV: {e}") from None
    return {k: np.array(v, dtype=np.float64) for k, v in cols.items()}


def check_steps(steps, path, first_line: int = 2, what: str = "progress CSV") -> None:
    """ValueError naming ``path`` and the line unless every ``steps`` value (one per row,
    the first on line ``first_line``) is a finite number >= 0 and larger than the row
    before's: the rows of a run count env steps, so a NaN/inf cell or a row that does not
    move forward means the file is not one run's log (resuming would append to a log whose
    curve goes back in time)."""
    steps = np.asarray(steps, dtype=np.float64)
    bad = ~np.isfinite(steps) | (steps < 0)
    back = np.zeros(steps.shape, bool)
    back[1:] = ~(steps[1:] > steps[:-1])
    for i in np.flatnonzero(bad | back)[:1]:
        line = first_line + int(i)
        if bad[i]:
            raise ValueError(f"{path} is not a resumable {what}: line {line}: steps is "
                             f"{_cell(steps[i])}, not a finite number >= 0")
        raise ValueError(f"{path} is not a resumable {what}: line {line}: steps "
                         f"{_cell(steps[i])} does not exceed the previous row's "
                         f"{_cell(steps[i - 1])} (steps must increase from row to row)")


def _cell(x: float) -> str:
    return "empty" if math.isnan(x) else f"{x:g}"
