"""Learning curves as PNG (matplotlib, Agg backend: no display needed).

    plot_runs(["runs/ppo-CartPole-v1-0", "runs/ppo-CartPole-v1-1"], "curves.png")

Each run is a directory holding ``progress.csv`` (or the CSV path itself); one line per run:
the mean return of the last 100 episodes against env steps, and, where the run evaluated
(``minirl train --eval-every``: the CSV's ``eval_return_mean``/``eval_return_std`` columns),
its deterministic evaluation curve (mean +- std) in the same colour, dashed, with markers.

Rows whose value is empty, NaN or +-inf are skipped and the line is drawn through the finite
points: ``return_mean_100`` is empty until the first episode ends (and in every row of a run
that has not finished one), the eval columns are empty between evaluations, and a diverged
run may have logged inf. A run with no finite value at all gets no line but a note written
on the axes (and returned by :func:`draw_runs`, which the CLI prints), so an empty plot is
never silent; a run with exactly one finite point is drawn as a marker (a one-point line
would be invisible).

The PNG is written atomically (``minirl.io.save_figure``): an existing file is replaced only
by a complete new one. A path without a suffix gets ``.png``, an existing directory gets
``curves.png`` inside it, and ``plot_runs`` returns the path it actually wrote.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (backend must be chosen first)
import numpy as np  # noqa: E402

from minirl.io import save_figure  # noqa: E402
from minirl.logger import read_csv  # noqa: E402

__all__ = ["progress_csv", "draw_runs", "plot_runs", "finish_figure", "DEFAULT_NAME",
           "figure_path"]

#: The file name a plot gets when its output is an existing directory (``minirl plot``'s
#: default ``--out``).
DEFAULT_NAME = "curves.png"

EVAL_MEAN, EVAL_STD = "eval_return_mean", "eval_return_std"


def progress_csv(run: str | Path) -> Path:
    """The progress CSV of a run directory (or the path itself if it is a file)."""
    run = Path(run)
    path = run / "progress.csv" if run.is_dir() else run
    if not path.is_file():
        raise FileNotFoundError(f"no progress.csv in {run}")
    return path


def draw_runs(runs, y: str = "return_mean_100", labels=None, evaluations: bool = True):
    """Draw ``y`` against env steps for every run into a new figure, skipping non-finite
    rows; returns ``(fig, ax, notes)``: ``notes`` is a list of one-line strings about runs
    that could not be drawn as asked (no finite ``y`` at all; rows with +-inf skipped), also
    written on the axes. ``evaluations`` (only for ``y="return_mean_100"``): also draw each
    run's evaluation curve from its ``eval_return_mean``/``eval_return_std`` columns.

    Raises FileNotFoundError for a run without a CSV and ValueError naming the file for a
    malformed CSV or one without the column ``y`` — all before anything is drawn."""
    paths = [progress_csv(r) for r in runs]  # fail before drawing anything
    labels = list(labels or [p.parent.name if p.name == "progress.csv" else p.stem
                             for p in paths])
    if len(labels) != len(paths):
        raise ValueError(f"labels has {len(labels)} entries for {len(paths)} runs")
    tables = []
    for path in paths:
        cols = read_csv(path)
        if y not in cols:
            raise ValueError(f"{path} has no column {y!r}")
        tables.append(cols)
    with_eval = evaluations and y == "return_mean_100"
    fig, ax = plt.subplots(figsize=(7, 4.5))
    notes: list[str] = []
    for path, label, cols in zip(paths, labels, tables):
        steps, values = cols["steps"], cols[y]
        ok = np.isfinite(steps) & np.isfinite(values)
        n_inf = int(np.sum(np.isinf(values)))
        if n_inf:
            notes.append(f"{label}: {n_inf} row(s) with an infinite {y} skipped "
                         f"(the run diverged?)")
        color = None
        if ok.any():
            (line,) = ax.plot(steps[ok], values[ok], marker="o" if ok.sum() == 1 else None,
                              label=label)
            color = line.get_color()
        else:
            why = ("no episode finished" if y in ("return_mean_100", "episode_return_mean",
                                                  "episode_length_mean")
                   else "every row empty or non-finite")
            notes.append(f"{label}: nothing to plot, no finite {y} in {path} ({why})")
        if with_eval and EVAL_MEAN in cols:
            _draw_evaluations(ax, cols, label, color)
    ax.set_ylabel(_ylabel(ax, y))
    if notes:  # in the middle of empty axes, else under the x axis (off the curves)
        drawn = bool(ax.get_lines())
        ax.text(0.0 if drawn else 0.5, -0.14 if drawn else 0.5, "\n".join(notes),
                transform=ax.transAxes, fontsize="small", color="darkred",
                ha="left" if drawn else "center", va="top" if drawn else "center")
    return fig, ax, notes


def _draw_evaluations(ax, cols: dict, label: str, color) -> None:
    """The deterministic evaluation curve (mean, and the +- std band where the std is
    known) of one run, at the rows where it evaluated; nothing if it never did."""
    mean = cols[EVAL_MEAN]
    std = cols.get(EVAL_STD, np.full_like(mean, np.nan))
    ok = np.isfinite(cols["steps"]) & np.isfinite(mean)
    if not ok.any():
        return
    steps, mean, std = cols["steps"][ok], mean[ok], std[ok]
    (line,) = ax.plot(steps, mean, "o--", color=color, markersize=4,
                      label=f"{label}: deterministic evaluation")
    band = np.isfinite(std)
    if band.any():  # the band in its line's colour
        ax.fill_between(steps[band], (mean - std)[band], (mean + std)[band], alpha=0.2,
                        color=line.get_color())


def figure_path(out: str | Path) -> Path:
    """Where a figure for ``out`` goes: ``out/curves.png`` (:data:`DEFAULT_NAME`) if ``out`` is
    an existing directory (not ``out.png`` beside it), else ``out`` itself (``.png`` appended
    if it has no suffix). FileNotFoundError naming the directory if the parent of the file to
    write does not exist (checked before anything is drawn)."""
    path = Path(out)
    if str(out) and path.is_dir():
        path = path / DEFAULT_NAME
    elif not path.suffix:
        path = path.with_name(path.name + ".png")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"{out}: the directory {path.parent} does not exist")
    return path


def plot_runs(runs, out: str | Path, y: str = "return_mean_100", labels=None,
              title: str | None = None, evaluations: bool = True) -> Path:
    """Draw ``y`` against env steps for every run (:func:`draw_runs`) into one image at
    ``out``; returns the path written (``out``, plus ``.png`` if it had no suffix, or
    ``out/curves.png`` if ``out`` is an existing directory: :func:`figure_path`). Raises
    FileNotFoundError for a run without a CSV or an ``out`` whose directory does not exist,
    ValueError naming the file for a malformed CSV or an unknown image format, OSError if
    ``out`` cannot be written (nothing is left behind then)."""
    figure_path(out)   # (before drawing: a missing directory is named at once)
    fig, ax, _ = draw_runs(runs, y, labels, evaluations)
    return finish_figure(fig, ax, out, title)


def _ylabel(ax, y: str) -> str:
    if y != "return_mean_100":
        return y
    if any(line.get_label().endswith("deterministic evaluation") for line in ax.get_lines()):
        return "return (training: mean of the last 100 episodes)"
    return "mean return (last 100 episodes)"


def finish_figure(fig, ax, out: str | Path, title: str | None = None,
                  ylabel: str | None = None) -> Path:
    """Label (``ylabel`` None: keep the axes' own), grid and legend a learning-curve figure,
    write it atomically to ``out`` (a PNG; an existing directory gets ``curves.png`` inside
    it, :func:`figure_path`) and close it; returns the path written."""
    ax.set_xlabel("env steps")
    if ylabel is not None:
        ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:  # (no lines: no empty legend box, no warning)
        ax.legend(fontsize="small")
    fig.tight_layout()
    try:
        return save_figure(fig, figure_path(out), dpi=100)
    finally:
        plt.close(fig)
