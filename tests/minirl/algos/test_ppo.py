"""Tests for minirl/algos/ppo.py: the update's pieces, and learning trivially learnable envs."""
import numpy as np
import pytest
from gymnasium import spaces

from minirl.algos.base import ActorCriticNet
from minirl.algos.ppo import (PPO, Batch, PPOConfig, minibatches, normalize_advantages,
                              ppo_loss_and_grad, ppo_update)
from minirl.logger import TrainingLog
from minirl.nn import Adam
from minirl.testing.gradcheck import check_gradient

SMALL = dict(num_envs=4, hidden_sizes=(16,), num_epochs=4, minibatch_size=32)
# The pre-issue-11 defaults (RL-Zoo's CartPole row) the bandit tests were sized for.
FAST = dict(lr=1e-3, anneal_lr=True, anneal_clip=True, gamma=0.98, lam=0.8)


def returns_per_iteration(agent, steps):
    log = TrainingLog(None)
    agent.learn(steps, log)
    return np.array([row["episode_return_mean"] for row in log.rows]), log


def test_normalize_advantages_guards_single_element():
    np.testing.assert_array_equal(normalize_advantages(np.array([3.0])), [3.0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [2, 7, 256, 1000])
def test_normalize_advantages_is_the_mean_std_formula(dtype, n):
    adv = (np.random.default_rng(n).normal(size=n) * 30.0 + 5.0).astype(dtype)
    out = normalize_advantages(adv)
    assert out.dtype == dtype
    np.testing.assert_array_equal(out, (adv - adv.mean()) / (adv.std() + 1e-8))
    out = normalize_advantages(np.array([1.0, 2.0, 3.0, 6.0]))
    assert abs(out.mean()) < 1e-12 and abs(out.std() - 1.0) < 1e-6


def test_minibatches_partition_the_batch():
    parts = minibatches(np.random.default_rng(0), 10, 4)
    assert [len(p) for p in parts] == [4, 4, 2]
    np.testing.assert_array_equal(np.sort(np.concatenate(parts)), np.arange(10))


def _batch(rng, net, B=12, noise=0.05, params=None):
    obs = rng.standard_normal((B, 3))
    dist, values, _ = net.forward(net.init(rng) if params is None else params, obs)
    actions = dist.sample(rng)
    return Batch(obs, actions, dist.log_prob(actions) + noise * rng.standard_normal(B),
                 values, rng.standard_normal(B), rng.standard_normal(B))


@pytest.mark.parametrize("loss,space,vf_clip", [("clip", spaces.Discrete(3), 0.0),
                                                ("kl", spaces.Discrete(3), 0.0),
                                                ("clip", spaces.Box(-1, 1, (2,)), 0.3)])
def test_ppo_loss_gradient_matches_finite_differences(loss, space, vf_clip):
    rng = np.random.default_rng(1)
    net = ActorCriticNet(3, space, (8,), dtype=np.float64)
    mb = _batch(rng, net)
    params = net.init(np.random.default_rng(2))
    cfg = PPOConfig(loss=loss, ent_coef=0.01, vf_clip=vf_clip, dtype="float64")
    _, grad, stats = ppo_loss_and_grad(net, params, mb, cfg, clip_eps=0.2, beta=0.7)
    f = lambda p: ppo_loss_and_grad(net, p, mb, cfg, 0.2, 0.7)[0]
    check_gradient(f, params, grad, dy=1.0, rtol=1e-5)
    assert set(stats) == {"policy_loss", "value_loss"}


def test_update_reports_both_kl_estimates_and_early_stops():
    rng = np.random.default_rng(0)
    net = ActorCriticNet(3, spaces.Discrete(3), (8,), dtype=np.float64)
    params = net.init(np.random.default_rng(2))
    mb = _batch(rng, net, B=64, noise=0.0, params=params)  # collected by these params
    state = Adam(lr=1e-2).init(params)
    cfg = PPOConfig(num_epochs=10, minibatch_size=16, dtype="float64")
    _, _, stats = ppo_update(net, params, state, mb, rng, cfg, 1e-2, 0.2, 1.0)
    assert stats["updates"] == 40
    assert {"approx_kl_k1", "approx_kl_k3", "clip_fraction", "entropy"} <= set(stats)
    stop = PPOConfig(num_epochs=10, minibatch_size=16, target_kl=1e-4, dtype="float64")
    _, _, stats = ppo_update(net, params, state, mb, rng, stop, 1e-2, 0.2, 1.0)
    assert 1 <= stats["updates"] < 40  # KL is 0 at the first step, then grows past 1.5e-4


def test_ppo_clip_learns_two_armed_bandit():
    r, _ = returns_per_iteration(PPO("minirl/Bandit-v0", PPOConfig(num_steps=16, **SMALL, **FAST)),
                                  2048)
    assert r[:2].mean() < 0.7 and r[-3:].mean() >= 0.9  # from ~0.5 (random) to >= 0.9


def test_ppo_adaptive_kl_learns_bandit_and_adapts_beta():
    agent = PPO("minirl/Bandit-v0", PPOConfig(loss="kl", num_steps=16, **SMALL, **FAST))
    r, log = returns_per_iteration(agent, 2048)
    assert r[-3:].mean() >= 0.9
    assert len({row["kl_beta"] for row in log.rows}) > 1  # beta was doubled/halved


def test_ppo_gaussian_learns_continuous_bandit():
    cfg = PPOConfig(num_steps=32, lr=3e-3, anneal_lr=False, **SMALL)
    r, _ = returns_per_iteration(PPO("minirl/ContinuousBandit-v0", cfg), 4096)
    assert r[-3:].mean() - r[:2].mean() >= 0.4 and r[-3:].mean() >= 0.85


def test_ppo_learns_corridor():
    cfg = PPOConfig(num_steps=32, **SMALL)
    r, _ = returns_per_iteration(PPO("minirl/Corridor-v0", cfg), 4000)
    assert r[-3:].mean() >= -5.0 and r[-3:].mean() - r[:2].mean() >= 3.0  # optimum is -4
