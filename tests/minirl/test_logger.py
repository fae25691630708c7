"""Tests for minirl/logger.py: rows, the 100-episode window, first threshold crossing."""
import math

import numpy as np

from minirl.logger import FIELDS, TrainingLog, read_csv


def test_rows_window_and_first_reached(tmp_path):
    log = TrainingLog(tmp_path / "p.csv", window=3)
    log(None, {"steps": 10, "iteration": 1, "episode_returns": [1.0, 2.0],
               "episode_lengths": [5, 6], "policy_loss": 0.5, "episode_returns_extra": "x"})
    log(None, {"steps": 20, "iteration": 2, "episode_returns": [], "episode_lengths": []})
    log(None, {"steps": 30, "iteration": 3, "episode_returns": [9.0, 9.0],
               "episode_lengths": [1, 1]})
    log.close()
    cols = read_csv(tmp_path / "p.csv")
    assert list(cols) == FIELDS
    np.testing.assert_array_equal(cols["steps"], [10, 20, 30])
    assert cols["episode_return_mean"][0] == 1.5 and math.isnan(cols["episode_return_mean"][1])
    np.testing.assert_allclose(cols["return_mean_100"], [1.5, 1.5, (2 + 9 + 9) / 3], rtol=1e-6)
    assert cols["policy_loss"][0] == 0.5 and math.isnan(cols["policy_loss"][2])
    assert log.rows == []  # with a path nothing is kept in memory; rows are read back
    assert log.first_reached(6.0, min_episodes=3) == (30, cols["wall_time"][2])
    assert log.first_reached(100.0) is None
