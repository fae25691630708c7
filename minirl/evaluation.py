"""Periodic deterministic evaluation during training, the best model kept beside the last.

    ev = Evaluator(every=10_000, episodes=5, out_dir="runs/x")
    agent.learn(100_000, callback=ev.wrap(TrainingLog(
        "runs/x/progress.csv", fields=(*agent.log_fields, *EVAL_FIELDS))))

Every ``every`` env steps (checked after each training iteration, so the actual step counts
are the first iteration ends past each multiple), the agent plays ``episodes`` episodes with
its deterministic policy (``agent.evaluate(deterministic=True)``) on a separate, freshly made
environment, seeded ``seed, seed + 1, ...`` at every evaluation so that all evaluations face
the same start states. Training is not disturbed: ``evaluate`` uses the agent's evaluation
generator only, never its training generator or its training envs, and the observation
normalizer is read, not updated. Each evaluation

* adds ``eval_return_mean`` and ``eval_return_std`` to the metrics (a TrainingLog created with
  ``fields=EVAL_FIELDS`` writes them into progress.csv; other rows leave them empty),
* appends a row to ``evaluations.csv`` (steps, mean, std, every episode's return),
* saves the agent to ``best_model.npz`` when its mean is the best so far (``model.npz``, the
  last model, is the caller's to write), and
* ``plot_with_eval`` draws the evaluation curve (mean +- std) over the training curve.

The evaluation return is the honest score of a run: the training curve's "mean of the last 100
episodes" mixes episodes of many past policies, sampled stochastically.
"""
from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np

from minirl.io import atomic_write_text

__all__ = ["EVAL_FIELDS", "Evaluator", "plot_with_eval", "read_evaluations"]

EVAL_FIELDS = ("eval_return_mean", "eval_return_std")


class Evaluator:
    """Callback that evaluates ``agent`` deterministically every ``every`` env steps.

    every: env steps between evaluations (> 0). episodes: episodes per evaluation (> 0).
    out_dir: where ``evaluations.csv`` and ``best_model.npz`` go (None: keep in memory only).
    seed: seed of the first evaluation episode (episode k uses seed + k). Raises ValueError
    naming the argument. ``history`` holds (steps, mean, std) of every evaluation;
    ``best`` the best mean so far (-inf before the first).
    """

    def __init__(self, every: int, episodes: int = 5, out_dir: str | Path | None = None,
                 seed: int = 1_000_000):
        for name, v in (("every", every), ("episodes", episodes)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        self.every, self.episodes, self.seed = int(every), int(episodes), int(seed)
        self.out_dir = None if out_dir is None else Path(out_dir)
        self.next_at = None
        self.best = -math.inf
        self.history: list[tuple[int, float, float]] = []
        self._rows: list[list] = []

    def __call__(self, agent, metrics: dict) -> None:
        """Evaluate if ``metrics["steps"]`` passed the next evaluation point; adds the
        ``EVAL_FIELDS`` to ``metrics`` (in place) when it does."""
        steps = int(metrics["steps"])
        if self.next_at is None:   # evaluation points: the multiples of ``every``
            self.next_at = self.every
        if steps < self.next_at:
            return
        self.next_at = (steps // self.every + 1) * self.every
        returns = agent.evaluate(self.episodes, deterministic=True, seed=self.seed)
        mean, std = float(np.mean(returns)), float(np.std(returns))
        metrics["eval_return_mean"], metrics["eval_return_std"] = mean, std
        self.history.append((steps, mean, std))
        self._rows.append([steps, mean, std, *returns.tolist()])
        if self.out_dir is not None:
            self._write_csv()
            if mean > self.best:
                agent.save(self.out_dir / "best_model.npz")
        self.best = max(self.best, mean)

    def resume(self, steps: int) -> None:
        """Continue a run interrupted at ``steps``: keep the rows of its ``evaluations.csv``
        up to ``steps`` (later ones belong to no saved model), their best mean (so
        ``best_model.npz`` is replaced only by a better policy) and the evaluation schedule
        (the next one at the first multiple of ``every`` past ``steps``)."""
        self.next_at = (int(steps) // self.every + 1) * self.every
        if self.out_dir is None or not (self.out_dir / "evaluations.csv").is_file():
            return
        cols = read_evaluations(self.out_dir)
        keep = cols["steps"] <= steps
        k = min(self.episodes, sum(name.startswith("return_") for name in cols))
        for i in np.flatnonzero(keep):
            row = [int(cols["steps"][i]), float(cols["eval_return_mean"][i]),
                   float(cols["eval_return_std"][i])]
            self.history.append(tuple(row))
            returns = [float(cols[f"return_{j}"][i]) for j in range(k)]
            self._rows.append(row + returns + [math.nan] * (self.episodes - k))
        if self.history:
            self.best = max(mean for _, mean, _ in self.history)

    def wrap(self, inner=None):
        """A callback that evaluates first (so ``inner``, e.g. a TrainingLog, sees the
        evaluation columns) and then returns what ``inner`` returns."""
        def callback(agent, metrics):
            self(agent, metrics)
            return None if inner is None else inner(agent, metrics)
        return callback

    def _write_csv(self) -> None:
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["steps", "eval_return_mean", "eval_return_std"]
                   + [f"return_{k}" for k in range(self.episodes)])
        w.writerows(self._rows)
        atomic_write_text(self.out_dir / "evaluations.csv", buf.getvalue())


def read_evaluations(path: str | Path) -> dict[str, np.ndarray]:
    """Columns of an ``evaluations.csv`` (a run directory or the file) as float arrays.
    ValueError naming the file (and the line) for anything else: another header, a row with
    the wrong number of cells, a cell that is not a number."""
    path = Path(path)
    path = path / "evaluations.csv" if path.is_dir() else path
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except (UnicodeDecodeError, csv.Error) as e:
        raise ValueError(f"{path} is not a minirl evaluations.csv: {e}") from None
    if not rows or rows[0][:3] != ["steps", "eval_return_mean", "eval_return_std"]:
        raise ValueError(f"{path} is not a minirl evaluations.csv")
    for line, cells in enumerate(rows[1:], start=2):
        if len(cells) != len(rows[0]):
            raise ValueError(f"{path} is not a minirl evaluations.csv: line {line} has "
                             f"{len(cells)} cells, the header {len(rows[0])}")
        for cell in cells:
            try:
                float(cell)
            except ValueError:
                raise ValueError(f"{path} is not a minirl evaluations.csv: line {line}: "
                                 f"{cell!r} is not a number") from None
    data = np.array(rows[1:], dtype=np.float64).reshape(len(rows) - 1, len(rows[0]))
    return {name: data[:, j] for j, name in enumerate(rows[0])}


def plot_with_eval(run: str | Path, out: str | Path, title: str | None = None) -> Path:
    """The training curve (mean of the last 100 episodes) of the run directory ``run`` and its
    evaluation curve (mean +- std of the deterministic evaluations, from progress.csv's
    ``EVAL_FIELDS`` columns) in one PNG at ``out``; returns the path written (atomically).
    The same figure as ``minirl.plot.plot_runs([run], out)``, which skips non-finite rows."""
    from minirl.plot import plot_runs

    return plot_runs([run], out, title=title)
