"""Tests for minirl/logger.py: rows, the 100-episode window, first threshold crossing; each
agent's columns (the common ones + its log_fields), old logs with PPO's columns in every file."""
import csv
import math
import signal

import numpy as np
import pytest

import minirl.logger
from minirl.algos import ALGOS
from minirl.cli import main
from minirl.logger import FIELDS, TrainingLog, read_csv


def test_rows_window_and_first_reached(tmp_path):
    log = TrainingLog(tmp_path / "p.csv", window=3, fields=("policy_loss",))
    log(None, {"steps": 10, "iteration": 1, "episode_returns": [1.0, 2.0],
               "episode_lengths": [5, 6], "policy_loss": 0.5, "episode_returns_extra": "x"})
    log(None, {"steps": 20, "iteration": 2, "episode_returns": [], "episode_lengths": []})
    log(None, {"steps": 30, "iteration": 3, "episode_returns": [9.0, 9.0],
               "episode_lengths": [1, 1]})
    log.close()
    cols = read_csv(tmp_path / "p.csv")
    assert list(cols) == FIELDS + ["policy_loss"]   # a metric not in the fields is not a column
    np.testing.assert_array_equal(cols["steps"], [10, 20, 30])
    assert cols["episode_return_mean"][0] == 1.5 and math.isnan(cols["episode_return_mean"][1])
    np.testing.assert_allclose(cols["return_mean_100"], [1.5, 1.5, (2 + 9 + 9) / 3], rtol=1e-6)
    assert cols["policy_loss"][0] == 0.5 and math.isnan(cols["policy_loss"][2])
    assert log.rows == []  # with a path nothing is kept in memory; rows are read back
    assert log.first_reached(6.0, min_episodes=3) == (30, cols["wall_time"][2])
    assert log.first_reached(100.0) is None


COMMON = ["steps", "iteration", "wall_time", "steps_per_s", "episodes", "episode_return_mean",
          "episode_length_mean", "return_mean_100"]
PPO_COLUMNS = ["policy_loss", "value_loss", "entropy", "approx_kl_k1", "approx_kl_k3",
               "clip_fraction", "explained_variance", "grad_norm", "lr", "clip_eps", "kl_beta",
               "updates"]
# algorithm -> (env, --set options for a short run in which every log field gets a value,
# steps, the exact columns after the common ones)
RUNS = {
    "ppo": ("CartPole-v1", ["num_envs=1", "num_steps=32", "minibatch_size=32", "num_epochs=1",
                            "hidden_sizes=8"], 64, PPO_COLUMNS),
    "a2c": ("CartPole-v1", ["num_envs=1", "num_steps=32", "hidden_sizes=8"], 64,
            ["policy_loss", "value_loss", "entropy", "explained_variance", "grad_norm", "lr"]),
    "reinforce": ("CartPole-v1", ["num_envs=1", "num_steps=32", "hidden_sizes=8"], 64,
                  ["policy_loss", "value_loss", "entropy", "explained_variance", "grad_norm",
                   "lr"]),
    "reinforce-offpolicy": ("CartPole-v1", ["hidden_sizes=8"], 300,
                            ["lr", "buffer_episodes", "weight_ess"]),
    "dqn": ("CartPole-v1", ["learning_starts=16", "batch_size=8", "hidden_sizes=8"], 64,
            ["q_loss", "q_mean", "grad_norm", "epsilon", "temperature", "gradient_steps",
             "buffer_size"]),
    "sac": ("Pendulum-v1", ["learning_starts=16", "batch_size=8", "hidden_sizes=8"], 64,
            ["critic_loss", "actor_loss", "alpha", "entropy", "q_mean"]),
    "ars": ("CartPole-v1", ["hidden_layers=8", "num_directions=2", "top_directions=2",
                            "eval_episodes=1"], 200,
            ["pop_return_best", "pop_return_mean", "pop_return_std", "center_return",
             "sigma_r"]),
    "dagger": ("CartPole-v1", ["expert=cartpole", "hidden_sizes=8"], 200,
               ["loss", "labels", "beta", "expert_control"]),
}


def test_the_common_columns():
    assert FIELDS == COMMON


@pytest.mark.parametrize("algo", sorted(RUNS))
def test_each_agents_csv_has_the_common_columns_and_exactly_its_log_fields(algo, tmp_path):
    env, sets, steps, columns = RUNS[algo]
    argv = ["train", algo, "--env", env, "--steps", str(steps), "--quiet",
            "--out", str(tmp_path / "run")]
    for opt in sets:
        argv += ["--set", opt]
    assert main(argv) == 0
    with open(tmp_path / "run" / "progress.csv", newline="") as f:
        header = next(csv.reader(f))
    assert header == COMMON + columns == COMMON + list(ALGOS[algo].log_fields)
    cols = read_csv(tmp_path / "run" / "progress.csv")
    for k in columns:   # no column that stays empty (PPO's used to, in every agent's file)
        assert np.isfinite(cols[k]).any(), k


def _dqn(out, steps=160, *extra):
    argv = ["train", "dqn", "--env", "CartPole-v1", "--steps", str(steps), "--quiet",
            "--out", str(out), "--set", "train_freq=32", "--set", "learning_starts=32",
            "--set", "batch_size=8", "--set", "hidden_sizes=8", "--set", "num_envs=1"]
    return main(argv + list(extra))


def _to_old_format(path):
    """Rewrite a progress CSV as minirl wrote it before each agent got its own columns: PPO's
    twelve columns after the common ones (empty but for the agent's own, e.g. DQN's
    grad_norm), then the agent's other columns."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    header = COMMON + PPO_COLUMNS + [k for k in rows[0] if k not in COMMON + PPO_COLUMNS]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, header, restval="")
        writer.writeheader()
        writer.writerows(rows)


def test_old_csvs_with_ppos_empty_columns_still_resume_and_plot(tmp_path, capsys, monkeypatch):
    assert _dqn(tmp_path / "whole") == 0                       # 5 iterations, uninterrupted
    whole = read_csv(tmp_path / "whole" / "progress.csv")
    assert len(whole["steps"]) == 5 and "policy_loss" not in whole
    logged = {}
    for fmt in ("old", "new"):
        run = tmp_path / fmt
        real = minirl.logger.TrainingLog.__call__

        def call(self, agent, metrics):   # a real Ctrl-C after the second iteration
            real(self, agent, metrics)
            if metrics["steps"] == 64:
                signal.raise_signal(signal.SIGINT)

        with monkeypatch.context() as m:
            m.setattr(minirl.logger.TrainingLog, "__call__", call)
            assert _dqn(run) == 130
        if fmt == "old":
            _to_old_format(run / "progress.csv")
        assert main(["train", "--resume", str(run), "--quiet"]) == 0
        with open(run / "progress.csv", newline="") as f:
            header = next(csv.reader(f))
        dqn_fields = list(ALGOS["dqn"].log_fields)
        assert header == (COMMON + PPO_COLUMNS + [k for k in dqn_fields if k not in PPO_COLUMNS]
                          if fmt == "old" else COMMON + dqn_fields)   # the file keeps its own
        logged[fmt] = cols = read_csv(run / "progress.csv")
        for k in ("steps", "epsilon", "buffer_size", "gradient_steps"):   # the schedule's
            np.testing.assert_array_equal(cols[k], whole[k], err_msg=f"{fmt}: {k}")
        assert np.isfinite(cols["q_loss"][1:]).all()           # (no update before step 32)
        assert all(np.isnan(cols[k]).all() for k in PPO_COLUMNS
                   if k in cols and k not in dqn_fields)
    # the same numbers land in the same named columns of either file (the resumed rows restart
    # their episodes, so losses and returns differ from the uninterrupted run's)
    for k in COMMON + list(ALGOS["dqn"].log_fields):
        if k not in ("wall_time", "steps_per_s"):
            np.testing.assert_array_equal(logged["old"][k], logged["new"][k], err_msg=k)
    capsys.readouterr()
    png = tmp_path / "all.png"
    assert main(["plot", str(tmp_path / "old"), str(tmp_path / "new"), str(tmp_path / "whole"),
                 "--out", str(png)]) == 0
    assert png.read_bytes()[:4] == b"\x89PNG" and capsys.readouterr().err == ""
