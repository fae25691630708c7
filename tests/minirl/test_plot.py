"""Tests for minirl/plot.py: one PNG from several runs; missing runs fail before drawing."""
import pytest

from minirl.logger import TrainingLog
from minirl.plot import plot_runs


def _run(tmp_path, name, scale):
    d = tmp_path / name
    d.mkdir()
    log = TrainingLog(d / "progress.csv")
    for i in range(1, 5):
        log(None, {"steps": 100 * i, "iteration": i, "episode_returns": [scale * i],
                   "episode_lengths": [i]})
    log.close()
    return d


def test_plot_runs_writes_png(tmp_path):
    runs = [_run(tmp_path, "a", 1.0), _run(tmp_path, "b", 2.0)]
    out = plot_runs(runs, tmp_path / "c.png", title="t")
    assert out.read_bytes()[:4] == b"\x89PNG"
    plot_runs([runs[0] / "progress.csv"], tmp_path / "d.png", y="episode_length_mean")


def test_missing_run_or_column(tmp_path):
    with pytest.raises(FileNotFoundError):
        plot_runs([tmp_path / "missing"], tmp_path / "x.png")
    with pytest.raises(ValueError, match="nope"):
        plot_runs([_run(tmp_path, "a", 1.0)], tmp_path / "x.png", y="nope")
    assert not (tmp_path / "x.png").exists()
