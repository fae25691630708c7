"""Tests for minirl/algos/actor_critic.py: learning, every value target, and time limits."""
import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

from minirl.algos.actor_critic import A2C, A2CConfig, a2c_loss_and_grad
from minirl.envs import ConstantRewardEnv
from minirl.logger import TrainingLog
from minirl.testing.gradcheck import check_gradient


def test_a2c_loss_gradient_matches_finite_differences():
    agent = A2C("CartPole-v1", A2CConfig(num_envs=2, num_steps=4, hidden_sizes=(8,),
                                         ent_coef=0.05, dtype="float64", shared_trunk=True))
    agent._start_learning()
    ro = agent.collector.collect(agent._act, agent._value, agent.rng)
    rng = np.random.default_rng(0)
    adv, targets = rng.standard_normal((4, 2)), rng.standard_normal((4, 2))
    _, grad, _ = a2c_loss_and_grad(agent.net, agent.params, ro, adv, targets, agent.config)
    f = lambda p: a2c_loss_and_grad(agent.net, p, ro, adv, targets, agent.config)[0]
    check_gradient(f, agent.params, grad, dy=1.0, rtol=1e-5)


@pytest.mark.parametrize("target", ["mc", "td0", "nstep", "gae"])
def test_a2c_learns_corridor_with_every_value_target(target):
    cfg = A2CConfig(num_envs=4, num_steps=8, lr=3e-3, hidden_sizes=(16,), value_target=target,
                    lam=0.9, n_step=3)
    log = TrainingLog(None)
    A2C("minirl/Corridor-v0", cfg, seed=0).learn(4000, log)
    r = np.array([row["episode_return_mean"] for row in log.rows])
    assert np.nanmean(r[-5:]) >= -5.0 and np.nanmean(r[-5:]) - np.nanmean(r[:3]) >= 2.0


class TimeLimitAsTermination(gym.Wrapper):
    """The classic mistake: report a time-limit cut as a terminal state."""

    def step(self, action):
        obs, r, terminated, truncated, info = self.env.step(action)
        return obs, r, terminated or truncated, False, info


def _fit_constant_reward_value(wrong: bool) -> float:
    def make():
        env = gym.wrappers.TimeLimit(ConstantRewardEnv(), 8)
        return TimeLimitAsTermination(env) if wrong else env
    envs = gym.vector.SyncVectorEnv([make] * 4, autoreset_mode=AutoresetMode.SAME_STEP)
    cfg = A2CConfig(num_envs=4, num_steps=8, gamma=0.9, value_target="td0", lr=1e-2,
                    vf_coef=1.0, max_grad_norm=10.0, hidden_sizes=(8,), dtype="float64")
    agent = A2C(envs, cfg, seed=0).learn(16_000)
    return float(agent._value(np.ones((1, 1)))[0])


def test_truncation_bootstraps_value_to_infinite_horizon():
    # Reward 1 forever, episodes cut by a time limit of 8: V(s) = 1 / (1 - gamma) = 10.
    v = _fit_constant_reward_value(wrong=False)
    assert abs(v - 10.0) < 0.5, v
    # Treating the cut as termination: one TD target in 8 is 1 instead of 1 + gamma V, so
    # the (single-state) fixed point is V = 1 / (1 - gamma * 7/8) = 4.71: visibly different.
    v_wrong = _fit_constant_reward_value(wrong=True)
    assert abs(v_wrong - 1.0 / (1.0 - 0.9 * 7 / 8)) < 0.3, v_wrong


def test_config_rejects_unknown_value_target():
    with pytest.raises(ValueError, match="value_target"):
        A2CConfig(value_target="lambda")


# ----- gSDE (use_sde) -----------------------------------------------------------------------


def test_a2c_sde_loss_gradient_matches_finite_differences():
    """With the noise's features held (SB3's learn_features=False), the analytic gradient is
    the finite-difference gradient of the loss with z(s) fixed at its current value."""
    from minirl.distributions import StateDependentNoise
    cfg = A2CConfig(num_envs=2, num_steps=4, hidden_sizes=(8,), ent_coef=0.05, dtype="float64",
                    use_sde=True, sde_sample_freq=2, log_std_init=-0.5)
    agent = A2C("Pendulum-v1", cfg)
    agent.params[agent.net.log_std_slice] += np.random.default_rng(3).normal(0, 0.3, 8)
    agent._start_learning()
    ro = agent._collect()
    rng = np.random.default_rng(0)
    adv, targets = rng.standard_normal((4, 2)), rng.standard_normal((4, 2))
    _, grad, _ = a2c_loss_and_grad(agent.net, agent.params, ro, adv, targets, cfg)
    z0 = agent.net.forward(agent.params, ro.obs.reshape(8, -1))[0].features.copy()
    frozen = A2C("Pendulum-v1", cfg).net
    forward = frozen.forward
    frozen.forward = lambda p, x: (lambda d, v, c: (StateDependentNoise(d.mean, d.log_std, z0),
                                                    v, c))(*forward(p, x))
    f = lambda p: a2c_loss_and_grad(frozen, p, ro, adv, targets, cfg)[0]
    check_gradient(f, agent.params, grad, dy=1.0, rtol=1e-5)


def test_a2c_sde_noise_schedule_determinism_and_save_load(tmp_path):
    from minirl.algos import load
    cfg = A2CConfig(num_envs=2, num_steps=10, hidden_sizes=(8,), use_sde=True,
                    sde_sample_freq=4, normalize_obs=True)
    redraws = []
    agent = A2C("MountainCarContinuous-v0", cfg, seed=1)
    reset = agent._reset_noise
    agent._reset_noise = lambda rng: (redraws.append(agent.collector.episodes._ep_length[0]),
                                      reset(rng))
    agent.learn(40)                          # 2 rollouts of 10 steps: draws at t = 0, 4, 8
    assert redraws == [0, 4, 8, 10, 14, 18]
    other = A2C("MountainCarContinuous-v0", cfg, seed=1).learn(40)
    np.testing.assert_array_equal(agent.params, other.params)
    agent.save(tmp_path / "m.npz")
    loaded = load(tmp_path / "m.npz")
    other.learn(40)
    loaded.learn(40)
    np.testing.assert_array_equal(loaded.params, other.params)
    with pytest.raises(ValueError, match="sde_sample_freq"):
        A2CConfig(sde_sample_freq=-3)
