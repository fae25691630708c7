"""One CSV row per training iteration, from the metrics dict an agent passes to its callback.

    log = TrainingLog("runs/x/progress.csv")
    agent.learn(100_000, callback=log)        # log(agent, metrics) writes one row
    log.close()

Columns (empty when an algorithm does not produce a quantity):

| column               | meaning                                                          |
|----------------------|------------------------------------------------------------------|
| steps, iteration     | env steps and iterations so far                                   |
| wall_time            | seconds since the log was created                                 |
| steps_per_s          | steps / wall_time                                                 |
| episodes             | episodes finished in this iteration                               |
| episode_return_mean  | mean return of those episodes (raw rewards)                       |
| episode_length_mean  | their mean length                                                 |
| return_mean_100      | mean return of the last 100 finished episodes (the usual score)   |
| policy_loss, value_loss, entropy, approx_kl_k1, approx_kl_k3, clip_fraction,          |
| explained_variance, grad_norm, lr, clip_eps, kl_beta, updates: as the algorithm reports |
"""
from __future__ import annotations

import csv
import math
import time
from collections import deque
from pathlib import Path

import numpy as np

__all__ = ["FIELDS", "TrainingLog", "read_csv"]

FIELDS = [
    "steps", "iteration", "wall_time", "steps_per_s", "episodes", "episode_return_mean",
    "episode_length_mean", "return_mean_100", "policy_loss", "value_loss", "entropy",
    "approx_kl_k1", "approx_kl_k3", "clip_fraction", "explained_variance", "grad_norm",
    "lr", "clip_eps", "kl_beta", "updates",
]


class TrainingLog:
    """Callback that writes a CSV row per iteration and tracks the last 100 episode returns.

    ``path=None`` keeps the rows in memory only (``self.rows``). ``fields``: extra columns
    after the common ones (an agent's ``log_fields``). ``first_reached(threshold)``
    gives the first (steps, wall_time) at which ``return_mean_100`` reached ``threshold``
    (with at least ``min_episodes`` episodes in the window).
    """

    def __init__(self, path: str | Path | None = None, window: int = 100,
                 fields: tuple[str, ...] = ()):
        self.fields = FIELDS + [f for f in fields if f not in FIELDS]
        self.recent = deque(maxlen=window)
        self.rows: list[dict] = []
        self.start = time.perf_counter()
        self._file = open(path, "w", newline="") if path is not None else None
        self._writer = csv.DictWriter(self._file, self.fields) if self._file else None
        if self._writer:
            self._writer.writeheader()
            self._file.flush()

    def __call__(self, agent, metrics: dict) -> None:
        wall = time.perf_counter() - self.start
        rets, lens = metrics.get("episode_returns", []), metrics.get("episode_lengths", [])
        self.recent.extend(rets)
        row = {k: v for k, v in metrics.items() if k in self.fields}
        row.update(
            wall_time=wall, steps_per_s=metrics["steps"] / wall if wall > 0 else math.nan,
            episodes=len(rets),
            episode_return_mean=float(np.mean(rets)) if rets else math.nan,
            episode_length_mean=float(np.mean(lens)) if lens else math.nan,
            return_mean_100=self.recent_mean,
        )
        self.rows.append(row)
        if self._writer:
            self._writer.writerow({k: _fmt(row.get(k)) for k in self.fields})
            self._file.flush()

    @property
    def recent_mean(self) -> float:
        return float(np.mean(self.recent)) if self.recent else math.nan

    def first_reached(self, threshold: float, min_episodes: int = 100):
        """(steps, wall_time) of the first row with return_mean_100 >= threshold, else None."""
        seen = 0
        for row in self.rows:
            seen += row["episodes"]
            if seen >= min_episodes and row["return_mean_100"] >= threshold:
                return row["steps"], row["wall_time"]
        return None

    def close(self) -> None:
        if self._file:
            self._file.close()


def _fmt(x) -> str:
    if x is None:
        return ""
    if isinstance(x, float):
        return "" if math.isnan(x) else f"{x:.8g}"
    return str(x)


def read_csv(path: str | Path) -> dict[str, np.ndarray]:
    """Columns of a progress CSV as float arrays (empty cells become NaN)."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return {k: np.array([]) for k in FIELDS}
    return {k: np.array([float(r[k]) if r.get(k) not in (None, "") else np.nan for r in rows])
            for k in rows[0]}
