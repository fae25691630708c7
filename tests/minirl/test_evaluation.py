"""Tests for minirl/evaluation.py and the CLI's --eval-every / --env-kwargs / presets."""
import numpy as np
import pytest

from minirl.algos import PPO, PPOConfig
from minirl.cli import main
from minirl.evaluation import EVAL_FIELDS, Evaluator, plot_with_eval, read_evaluations
from minirl.logger import TrainingLog, read_csv

SMALL = PPOConfig(num_envs=4, num_steps=16, hidden_sizes=(8,), num_epochs=2, minibatch_size=32,
                  lr=3e-3)


def test_evaluator_runs_at_multiples_and_keeps_the_best(tmp_path):
    agent = PPO("minirl/Bandit-v0", SMALL, seed=0)
    ev = Evaluator(every=128, episodes=4, out_dir=tmp_path)
    log = TrainingLog(None, fields=EVAL_FIELDS)
    agent.learn(640, callback=ev.wrap(log))                  # 10 iterations of 64 steps
    assert [h[0] for h in ev.history] == [128, 256, 384, 512, 640]
    assert all(m in (0.0, 0.25, 0.5, 0.75, 1.0) for _, m, _ in ev.history)
    rows = [r for r in log.rows if "eval_return_mean" in r]
    assert [r["steps"] for r in rows] == [128, 256, 384, 512, 640]
    ev_csv = read_evaluations(tmp_path)
    np.testing.assert_array_equal(ev_csv["steps"], [128, 256, 384, 512, 640])
    assert ev.best == max(m for _, m, _ in ev.history)
    best = PPO.load(tmp_path / "best_model.npz")
    assert best.evaluate(4, seed=ev.seed).mean() == ev.best   # the saved best scores its best


def test_evaluation_does_not_change_training():
    a = PPO("minirl/Bandit-v0", SMALL, seed=3).learn(512)
    b = PPO("minirl/Bandit-v0", SMALL, seed=3)
    b.learn(512, callback=Evaluator(every=64, episodes=2))
    np.testing.assert_array_equal(a.params, b.params)


def test_evaluator_rejects_bad_arguments():
    with pytest.raises(ValueError, match="every"):
        Evaluator(0)
    with pytest.raises(ValueError, match="episodes"):
        Evaluator(10, episodes=0)
    with pytest.raises(ValueError, match="seed"):
        Evaluator(10, seed=-1)


def test_cli_eval_every_writes_best_model_csv_columns_and_png(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "ppo", "--env", "minirl/Bandit-v0", "--steps", "1024", "--quiet",
            "--eval-every", "256", "--eval-episodes", "2", "--out", str(out),
            "--set", "num_envs=4", "--set", "num_steps=32", "--set", "hidden_sizes=8"]
    assert main(argv) == 0
    stdout = capsys.readouterr().out
    assert stdout.splitlines()[0].startswith("preset: none for ppo on minirl/Bandit-v0")
    for name in ("best_model.npz", "model.npz", "evaluations.csv", "curve.png"):
        assert (out / name).is_file(), name
    cols = read_csv(out / "progress.csv")
    assert np.isfinite(cols["eval_return_mean"]).sum() == 4     # at 256, 512, 768, 1024
    assert (out / "curve.png").read_bytes()[:4] == b"\x89PNG"
    assert plot_with_eval(out, tmp_path / "again.png").is_file()


def test_cli_prints_the_preset_line_and_lists_presets(tmp_path, capsys):
    argv = ["train", "ppo", "--env", "CartPole-v1", "--steps", "256", "--quiet",
            "--out", str(tmp_path / "cp")]
    assert main(argv) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("preset: ppo on CartPole-v1 from RL-Baselines3-Zoo hyperparams/ppo.yml")
    assert main(["presets", "--algo", "a2c", "--env", "Acrobot-v1"]) == 0
    listing = capsys.readouterr().out
    assert "normalize_obs=True" in listing and "source: RL-Baselines3-Zoo" in listing
    assert main(["presets", "--algo", "nope"]) == 2


def test_cli_env_kwargs_reach_the_env(tmp_path, capsys):
    out = tmp_path / "fl"
    argv = ["train", "ppo", "--env", "FrozenLake-v1", "--env-kwargs", "map_name=8x8",
            "--env-kwargs", "is_slippery=false", "--steps", "128", "--quiet", "--out", str(out),
            "--set", "num_envs=2", "--set", "num_steps=64", "--set", "hidden_sizes=8"]
    assert main(argv) == 0
    agent = PPO.load(out / "model.npz")
    assert agent.env_kwargs == {"map_name": "8x8", "is_slippery": False} and agent.obs_dim == 64
    capsys.readouterr()
    assert main(["train", "ppo", "--env", "CartPole-v1", "--env-kwargs", "oops",
                 "--out", str(tmp_path / "x")]) == 2
    assert "--env-kwargs" in capsys.readouterr().err
    assert main(["train", "ppo", "--env", "CartPole-v1", "--eval-every", "0",
                 "--out", str(tmp_path / "y")]) == 2
