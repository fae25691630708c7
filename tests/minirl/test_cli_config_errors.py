"""Config errors are refused when the config (or the agent) is built, never "training diverged".

Found by a fresh-user tester: settings that were only caught inside ``learn`` (or not at all:
a run that trained nothing and exited 0) surfaced in the CLI as "training diverged" after the
run directory was written. Each is now a ValueError naming the field at construction, which
``minirl train`` prints as one line with exit status 2, writing nothing; "diverged" is kept for
genuine non-finite losses, gradients, outputs or parameters.
"""
import numpy as np
import pytest

from minirl.cli import main


def _refused(argv, tmp_path, capsys, *needles):
    out = tmp_path / "never"
    assert main([*argv, "--steps", "500", "--quiet", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("minirl: error:") and "\n" not in err, err
    for needle in needles:
        assert needle in err, err
    assert "diverged" not in err and not out.exists()


@pytest.mark.parametrize("argv,needles", [
    # the uniform buffer never samples the slot being written: 64 slots hold 63 samples, so
    # DQN trained nothing and exited 0, and SAC raised at its first update ("diverged")
    (["dqn", "--env", "CartPole-v1", "--set", "buffer_size=64", "--set", "batch_size=64"],
     ["batch_size=64", "buffer_size=64", "63 transitions"]),
    (["dqn", "--env", "CartPole-v1", "--set", "buffer_size=64", "--set", "batch_size=61",
      "--set", "num_envs=4"], ["batch_size=61", "buffer_size=64", "60 transitions"]),
    (["sac", "--env", "Pendulum-v1", "--set", "buffer_size=256", "--set", "batch_size=256"],
     ["batch_size=256", "buffer_size=256", "255 transitions"]),
    # was "capacity=6 must hold >= 2 transitions per env" (no config field named)
    (["dqn", "--env", "CartPole-v1", "--set", "buffer_size=6", "--set", "batch_size=2",
      "--set", "num_envs=4"], ["buffer_size=6", "num_envs=4", "at least 2 transitions"]),
    # the noise table must hold a direction of the policy's size (10 on CartPole): was
    # "training diverged ...: noise table of size 5 is smaller than dim=10"
    (["rs", "--env", "CartPole-v1", "--set", "noise_table_size=5"],
     ["noise_table_size=5", "10 parameters"]),
    (["ars", "--env", "CartPole-v1", "--set", "noise_table_size=9"],
     ["noise_table_size=9", "noise_table_size >= 10"]),
    (["es", "--env", "Pendulum-v1", "--set", "noise_table_size=3"], ["noise_table_size=3"]),
])
def test_settings_that_failed_only_in_training_exit_2_naming_the_field(argv, needles,
                                                                       tmp_path, capsys):
    _refused(["train", *argv], tmp_path, capsys, *needles)


def test_the_same_settings_fail_when_the_config_is_built():
    from minirl.algos.dqn import DQNConfig
    from minirl.algos.sac import SACConfig

    with pytest.raises(ValueError, match="batch_size=64 is more than buffer_size=64"):
        DQNConfig(buffer_size=64, batch_size=64)
    with pytest.raises(ValueError, match="batch_size=64 is more than buffer_size=64"):
        SACConfig(buffer_size=64, batch_size=64)
    DQNConfig(buffer_size=64, batch_size=64, prioritized=True)   # samples every slot
    DQNConfig(buffer_size=65, batch_size=64)
    with pytest.raises(ValueError, match="buffer_size=6 must hold at least 2"):
        DQNConfig(buffer_size=6, batch_size=2, num_envs=4)


def test_a_dqn_buffer_of_batch_size_plus_one_trains():
    from minirl.algos.dqn import DQN, DQNConfig

    steps = []
    DQN("CartPole-v1", DQNConfig(buffer_size=65, batch_size=64, learning_starts=0,
                                 train_freq=64, gradient_steps=1, hidden_sizes=(8,))).learn(
        256, callback=lambda a, m: steps.append(m["gradient_steps"]))
    assert steps == [1, 1, 1, 1]   # once full, 65 slots still offer 64 to sample


def _worker_error(cause):
    from minirl.population import WorkerError

    error = WorkerError(f"population worker failed on tasks 0..3: {cause!r}")
    error.__cause__ = cause
    return error


def test_only_non_finite_numbers_are_called_divergence(tmp_path, capsys, monkeypatch):
    """A ValueError from training that is not about NaN/inf says "training failed" with its
    type; a non-finite gradient still says "diverged" (exit 1 both, the model kept)."""
    from minirl.algos import PPO
    from minirl.nn import NonFiniteGradientError

    real = PPO.learn

    def failing(error):
        def learn(self, total_steps, callback=None):
            def stop_after_one(agent, metrics):
                callback(agent, metrics)
                raise error
            return real(self, total_steps, callback=stop_after_one)
        return learn

    argv = ["train", "ppo", "--env", "CartPole-v1", "--steps", "128", "--quiet",
            "--set", "num_envs=1", "--set", "num_steps=64", "--set", "hidden_sizes=8"]
    for name, error, words in (
            ("a", ValueError("index 7 is out of range"),
             "training failed in iteration 2 (after step 64): ValueError: index 7"),
            ("b", NonFiniteGradientError("clip_grad_norm: grad has 3 NaN/inf entries"),
             "training diverged in iteration 2 (after step 64): clip_grad_norm"),
            ("c", ValueError("logits contains NaN or inf"),
             "training diverged in iteration 2 (after step 64): logits contains NaN"),
            # a gradient-free population worker's error: judged by the worker's own error
            ("d", _worker_error(KeyError("obs")),
             "training failed in iteration 2 (after step 64): WorkerError: population"),
            ("e", _worker_error(FloatingPointError("overflow in exp")),
             "training diverged in iteration 2 (after step 64): population")):
        monkeypatch.setattr(PPO, "learn", failing(error))
        assert main([*argv, "--out", str(tmp_path / name)]) == 1
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"minirl: error: {words}") and "\n" not in err, err
        assert PPO.load(tmp_path / name / "model.npz").total_steps == 64
        assert np.isfinite(PPO.load(tmp_path / name / "model.npz").params).all()


def test_reinforce_optimal_baseline_needs_two_envs(tmp_path, capsys):
    # With one env a batch of Pendulum (200-step episodes) holds one cut episode: the
    # leave-one-out baseline raised at the first update, which the CLI called "diverged".
    _refused(["train", "reinforce", "--env", "Pendulum-v1", "--set", "baseline=optimal",
              "--set", "reward_to_go=false", "--set", "num_envs=1", "--set", "num_steps=32"],
             tmp_path, capsys, "baseline='optimal'", "num_envs >= 2", "num_envs=1")
    from minirl.algos import REINFORCEConfig
    REINFORCEConfig(baseline="optimal", reward_to_go=False, num_envs=2)
