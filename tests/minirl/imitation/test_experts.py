"""Tests for minirl/imitation/experts.py: the analytic controllers reach expert returns,
collection is deterministic, adapters and errors."""
import gymnasium as gym
import numpy as np
import pytest

from minirl.imitation import (CartPoleExpert, PendulumExpert, PredictExpert, as_expert,
                              collect_demonstrations)
from minirl.imitation.experts import cartpole_lqr_gain


def test_cartpole_lqr_expert_balances_for_500_steps():
    d = collect_demonstrations("cartpole", "CartPole-v1", 10, seed=0)
    np.testing.assert_array_equal(d.episode_returns(), np.full(10, 500.0))
    assert d.truncated.sum() == 10 and not d.terminated.any()


def test_cartpole_gain_stabilizes_the_linearized_closed_loop():
    k = cartpole_lqr_gain()
    assert k.shape == (4,)
    # Signs: push right (u > 0) when the pole leans right (theta > 0).
    assert -k[2] > 0 and -k[3] > 0
    assert CartPoleExpert()(np.array([[0.0, 0.0, 0.05, 0.0], [0.0, 0.0, -0.05, 0.0]])).tolist() \
        == [1, 0]


def test_cartpole_expert_with_a_given_gain():
    k = cartpole_lqr_gain() * np.array([1.0, 1.0, 1.0, 0.35])   # less damped (benchmark's)
    expert = CartPoleExpert(gain=k)
    np.testing.assert_array_equal(expert.gain, k)
    s = np.array([[0.0, 0.0, 0.01, -0.06]])      # leaning right, falling back left fast
    assert CartPoleExpert()(s).tolist() == [0] and expert(s).tolist() == [1]
    d = collect_demonstrations(expert, "CartPole-v1", 3, seed=0)
    np.testing.assert_array_equal(d.episode_returns(), np.full(3, 500.0))
    for bad in ([1.0, 2.0], [0.0, 0.0, np.nan, 0.0]):
        with pytest.raises(ValueError, match="gain"):
            CartPoleExpert(gain=bad)


def test_pendulum_expert_swings_up_and_balances():
    d = collect_demonstrations("pendulum", "Pendulum-v1", 10, seed=0)
    returns = d.episode_returns()
    assert returns.mean() > -200 and returns.min() > -400     # a trained SAC gets about -150
    assert np.abs(d.actions).max() <= 2.0
    # Balancing at the top: the last 50 steps of every episode are near upright.
    cos = d.obs[:, 0].reshape(10, 200)[:, -50:]
    assert cos.min() > 0.99


def test_pendulum_torque_law():
    ex = PendulumExpert()
    # Near the top: PD on the angle. theta = 0.1 rad, at rest -> u = -10 * 0.1.
    u = ex(np.array([[np.cos(0.1), np.sin(0.1), 0.0]]))
    assert u.shape == (1, 1) and u[0, 0] == pytest.approx(-1.0)
    # At the bottom moving with w > 0 (energy < 1): pump in the direction of motion, clipped.
    assert ex(np.array([[-1.0, 0.0, 1.0]]))[0, 0] == 2.0


def test_collection_is_deterministic_and_seeded():
    a = collect_demonstrations("pendulum", "Pendulum-v1", 2, seed=5)
    b = collect_demonstrations("pendulum", "Pendulum-v1", 2, seed=5)
    c = collect_demonstrations("pendulum", "Pendulum-v1", 2, seed=6)
    assert a.equals(b) and not np.array_equal(a.obs, c.obs)


def test_adapters_and_errors():
    class Model:
        def predict(self, obs, deterministic=True):
            return np.ones(len(obs), np.int64), None          # SB3-style (actions, state)

    assert isinstance(as_expert(Model()), PredictExpert)
    np.testing.assert_array_equal(as_expert(Model())(np.zeros((3, 4))), [1, 1, 1])
    assert isinstance(as_expert("auto", "CartPole-v1"), CartPoleExpert)
    d = collect_demonstrations(lambda obs: np.zeros(len(obs), np.int64), gym.make("CartPole-v1"),
                               1, seed=0)
    assert d.env_id == "CartPole-v1" and (d.actions == 0).all()
    with pytest.raises(ValueError, match="expert 'nope'"):
        as_expert("nope")
    with pytest.raises(ValueError, match="expert action outside"):
        collect_demonstrations(lambda obs: np.full(len(obs), 3), "CartPole-v1", 1, seed=0)
    with pytest.raises(ValueError, match="n_episodes"):
        collect_demonstrations("cartpole", "CartPole-v1", 0, seed=0)


def test_a_saved_minirl_agent_is_an_expert(tmp_path):
    from minirl.algos.bc import BC, BCConfig
    demos = collect_demonstrations("cartpole", "CartPole-v1", 2, seed=0)
    agent = BC("CartPole-v1", BCConfig(eval_interval=50), seed=0, demos=demos).learn(50)
    agent.save(tmp_path / "model.npz")
    d = collect_demonstrations(str(tmp_path / "model.npz"), "CartPole-v1", 1, seed=7)
    np.testing.assert_array_equal(d.actions, agent.predict(d.obs, deterministic=True))


@pytest.mark.parametrize("expert,env,needle", [
    ("pendulum", "CartPole-v1", "expert 'pendulum' returns float64 actions"),  # was an
    ("cartpole", "Pendulum-v1", "expert 'cartpole' fails on this env's observations"),  # assert
    ("/nonexistent.npz", "CartPole-v1", "expert '/nonexistent.npz': no such file"),
])
def test_an_expert_for_another_env_is_named_before_any_episode(expert, env, needle):
    from minirl.imitation import collect_demonstrations

    with pytest.raises(ValueError, match=needle):
        collect_demonstrations(expert, env, 1, seed=0)
