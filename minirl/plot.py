"""Learning curves as PNG (matplotlib, Agg backend: no display needed).

    plot_runs(["runs/ppo-CartPole-v1-0", "runs/ppo-CartPole-v1-1"], "curves.png")

Each run is a directory holding ``progress.csv`` (or the CSV path itself); one line per run:
the mean return of the last 100 episodes against env steps. The PNG is written atomically
(``minirl.io.save_figure``): an existing file is replaced only by a complete new one. A path
without a suffix gets ``.png``, and ``plot_runs`` returns the path it actually wrote.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (backend must be chosen first)
import numpy as np  # noqa: E402

from minirl.io import save_figure  # noqa: E402
from minirl.logger import read_csv  # noqa: E402

__all__ = ["progress_csv", "plot_runs"]


def progress_csv(run: str | Path) -> Path:
    """The progress CSV of a run directory (or the path itself if it is a file)."""
    run = Path(run)
    path = run / "progress.csv" if run.is_dir() else run
    if not path.is_file():
        raise FileNotFoundError(f"no progress.csv in {run}")
    return path


def plot_runs(runs, out: str | Path, y: str = "return_mean_100", labels=None,
              title: str | None = None) -> Path:
    """Draw ``y`` against env steps for every run into one image at ``out``; returns the path
    written (``out``, plus ``.png`` if it had no suffix). Raises FileNotFoundError for a run
    without a CSV, ValueError naming the file for a malformed CSV or an unknown image format,
    OSError if ``out`` cannot be written (nothing is left behind then)."""
    paths = [progress_csv(r) for r in runs]  # fail before drawing anything
    labels = labels or [p.parent.name if p.name == "progress.csv" else p.stem for p in paths]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for path, label in zip(paths, labels):
        cols = read_csv(path)
        if y not in cols:
            raise ValueError(f"{path} has no column {y!r}")
        ok = ~np.isnan(cols[y])
        ax.plot(cols["steps"][ok], cols[y][ok], label=label)
    return finish_figure(fig, ax, out, title,
                         "mean return (last 100 episodes)" if y == "return_mean_100" else y)


def finish_figure(fig, ax, out: str | Path, title: str | None, ylabel: str) -> Path:
    """Label, grid and legend a learning-curve figure, write it atomically to ``out`` (a PNG)
    and close it; returns the path written."""
    ax.set_xlabel("env steps")
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    try:
        return save_figure(fig, out, dpi=100)
    finally:
        plt.close(fig)
