"""benchmarks/learning/dqn.py: the "within N steps" score and how results are stored."""
import numpy as np
import pytest

dqn_bench = pytest.importorskip("benchmarks.learning.dqn")


def test_best_mean_100_is_the_best_window_of_100_consecutive_episodes():
    r = np.full(250, -200.0)
    r[120:220] = -100.0                      # one window of exactly 100 episodes at -100
    assert dqn_bench.best_mean_100(r) == -100.0
    r[219] = -200.0                          # now no window is all -100: best is -101
    assert dqn_bench.best_mean_100(r) == pytest.approx(-101.0)
    assert np.isnan(dqn_bench.best_mean_100(np.zeros(99)))   # fewer than 100 episodes


def test_store_row_keeps_other_seeds_and_says_when_it_replaces(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(dqn_bench, "RESULTS", tmp_path)
    row = {c: "" for c in dqn_bench.COLUMNS}
    dqn_bench.store_row("dqn-cartpole", {**row, "seed": 0, "eval_return_mean": 1.0})
    dqn_bench.store_row("dqn-cartpole", {**row, "seed": 1, "eval_return_mean": 2.0})
    assert "replacing" not in capsys.readouterr().out
    dqn_bench.store_row("dqn-cartpole", {**row, "seed": 0, "eval_return_mean": 3.0})
    assert "seed=0 (1 row)" in capsys.readouterr().out      # the replacement is announced
    rows = dqn_bench._read("dqn-cartpole")
    assert [(r["seed"], r["eval_return_mean"]) for r in rows] == [("0", "3.0"), ("1", "2.0")]
    assert not list(tmp_path.glob("*.tmp"))   # written through a renamed temporary file
