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
    log = TrainingLog(None, fields=PPO.log_fields)
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


# ----- gSDE (use_sde) -----------------------------------------------------------------------

from minirl.distributions import StateDependentNoise  # noqa: E402

SDE_BOX = spaces.Box(-1, 1, (2,))


def frozen_feature_net(net, params, obs):
    """A second net whose gSDE features are held at their value for ``params`` and ``obs``:
    the function whose gradient minirl computes (SB3's learn_features=False: the noise's
    features get no gradient; the mean still does, through every layer)."""
    z0 = net.forward(params, obs)[0].features.copy()
    frozen = ActorCriticNet(3, SDE_BOX, (8,), dtype=np.float64, use_sde=True)
    plain_forward = frozen.forward

    def forward(p, x):
        dist, values, cache = plain_forward(p, x)
        return StateDependentNoise(dist.mean, dist.log_std, z0), values, cache
    frozen.forward = forward
    return frozen


@pytest.mark.parametrize("loss", ["clip", "kl"])
def test_ppo_sde_loss_gradient_matches_finite_differences(loss):
    rng = np.random.default_rng(1)
    net = ActorCriticNet(3, SDE_BOX, (8,), dtype=np.float64, use_sde=True, log_std_init=-0.5)
    params = net.init(np.random.default_rng(2))
    params[net.log_std_slice] += 0.3 * rng.standard_normal(net.log_std_slice.stop
                                                           - net.log_std_slice.start)
    mb = _batch(rng, net, params=params, noise=0.1)
    cfg = PPOConfig(loss=loss, ent_coef=0.05, dtype="float64", use_sde=True)
    _, grad, _ = ppo_loss_and_grad(net, params, mb, cfg, clip_eps=0.2, beta=0.7)
    assert np.any(grad[net.log_std_slice])
    frozen = frozen_feature_net(net, params, mb.obs)
    f = lambda p: ppo_loss_and_grad(frozen, p, mb, cfg, 0.2, 0.7)[0]
    check_gradient(f, params, grad, dy=1.0, rtol=1e-5)


def test_sde_net_layout_and_init():
    net = ActorCriticNet(3, SDE_BOX, (16, 8), dtype=np.float64, use_sde=True,
                         log_std_init=-3.29, ortho_init=False)
    params = net.init(np.random.default_rng(0))
    assert net.feature_dim == 8 and net.log_std_slice.stop - net.log_std_slice.start == 16
    np.testing.assert_array_equal(params[net.log_std_slice], -3.29)
    dist = net.forward(params, np.ones((5, 3)))[0]
    assert isinstance(dist, StateDependentNoise) and dist.log_std.shape == (8, 2)
    assert dist.features.shape == (5, 8) and np.all(np.abs(dist.features) < 1)  # tanh layer
    with pytest.raises(ValueError, match="use_sde"):
        ActorCriticNet(3, spaces.Discrete(2), (8,), use_sde=True)


def test_sde_config_is_validated():
    with pytest.raises(ValueError, match="sde_sample_freq"):
        PPOConfig(sde_sample_freq=-2)
    with pytest.raises(ValueError, match="sde_sample_freq"):
        PPOConfig(sde_sample_freq=1.5)
    with pytest.raises(ValueError, match="use_sde"):
        PPOConfig(use_sde="yes")
    with pytest.raises(ValueError, match="use_sde"):
        PPO("CartPole-v1", PPOConfig(use_sde=True))
    PPOConfig(use_sde=True, sde_sample_freq=0)   # 0 and -1: once per rollout, as in SB3


def _spy_noise(agent):
    calls, act = [], agent.net.act

    def spy(params, obs, rng, noise=None):
        calls.append(noise.copy())
        return act(params, obs, rng, noise)
    agent.net.act = spy
    return calls


@pytest.mark.parametrize("freq", [4, -1])
def test_sde_noise_held_for_sample_freq_steps_then_redrawn(freq):
    agent = PPO("Pendulum-v1", PPOConfig(num_envs=2, num_steps=12, hidden_sizes=(8,),
                                         use_sde=True, sde_sample_freq=freq), seed=0)
    calls = _spy_noise(agent)
    agent._start_learning()
    ro = agent._collect()
    obs, actions = ro.obs.copy(), ro.actions.copy()   # the buffer is reused by the next call
    agent._collect()
    assert len(calls) == 24 and calls[0].shape == (2, 8, 1)
    assert not np.array_equal(calls[0][0], calls[0][1])           # one noise per env
    period = freq if freq > 0 else 12
    for t in range(12):
        np.testing.assert_array_equal(calls[t], calls[period * (t // period)])   # held
    for t in range(period, 12, period):
        assert not np.array_equal(calls[t], calls[t - 1])         # redrawn every freq steps
    assert not np.array_equal(calls[12], calls[11])               # and at the next rollout
    for t in (0, 5, 11):   # the stored action is mu + z^T (sigma * eps) with the held eps
        dist = agent.net.forward(agent.params, obs[t])[0]
        np.testing.assert_allclose(dist.rsample_with_noise(calls[t]), actions[t],
                                   rtol=1e-6, atol=1e-7)


def _sde_agent(seed=0):
    return PPO("Pendulum-v1", PPOConfig(num_envs=2, num_steps=16, num_epochs=2,
                                        minibatch_size=16, hidden_sizes=(8,), use_sde=True,
                                        sde_sample_freq=4, log_std_init=-1.0, ent_coef=0.01,
                                        normalize_obs=True), seed=seed)


def test_sde_same_seed_same_parameters_and_deterministic_predict_is_the_mean():
    a, b = _sde_agent().learn(64), _sde_agent().learn(64)
    np.testing.assert_array_equal(a.params, b.params)
    assert not np.array_equal(a.params, _sde_agent(1).learn(64).params)
    obs = np.stack([a.envs.single_observation_space.sample() for _ in range(8)])
    mean = a.net.forward(a.params, a._prepare_obs(obs)[0])[0].mean
    np.testing.assert_array_equal(a.predict(obs, deterministic=True), np.clip(mean, -2, 2))
    assert not np.array_equal(a.predict(obs), a.predict(obs, deterministic=True))


def test_sde_save_load_round_trip_continues_bit_for_bit(tmp_path):
    from minirl.algos import load
    agent = _sde_agent().learn(64)
    agent.save(tmp_path / "m.npz")
    loaded = load(tmp_path / "m.npz")
    assert loaded.config.use_sde and loaded.config.sde_sample_freq == 4
    np.testing.assert_array_equal(loaded.params[loaded.net.log_std_slice],
                                  agent.params[agent.net.log_std_slice])   # the [F, D] matrix
    obs = np.stack([agent.envs.single_observation_space.sample() for _ in range(4)])
    np.testing.assert_array_equal(loaded.predict(obs, deterministic=True),
                                  agent.predict(obs, deterministic=True))
    np.testing.assert_array_equal(loaded.predict(obs), agent.predict(obs))
    agent.learn(64)
    loaded.learn(64)
    np.testing.assert_array_equal(loaded.params, agent.params)
    np.testing.assert_array_equal(loaded.sde_noise, agent.sde_noise)


def test_ppo_sde_learns_continuous_bandit():
    cfg = PPOConfig(num_steps=32, lr=3e-3, anneal_lr=False, use_sde=True, log_std_init=-0.5,
                    **SMALL)
    r, _ = returns_per_iteration(PPO("minirl/ContinuousBandit-v0", cfg), 4096)
    assert r[-3:].mean() - r[:2].mean() >= 0.3 and r[-3:].mean() >= 0.85


def test_ortho_init_false_draws_biases_like_pytorch_so_sde_noise_is_not_zero_at_the_origin():
    """PyTorch's default Linear init draws the biases from U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    too; with zero biases the gSDE features (and so the noise) vanish at obs = 0."""
    net = ActorCriticNet(2, spaces.Box(-1, 1, (1,)), (64, 64), dtype=np.float64, use_sde=True,
                         ortho_init=False)
    params = net.init(np.random.default_rng(0))
    for mlp, sl in ((net.actor, net.actor_slice), (net.critic, net.vf_slice)):
        views = mlp.views(params[sl])
        for name in ("0.bias", "2.bias", "4.bias"):
            b, bound = views[name], 1 / np.sqrt(views[name.replace("bias", "weight")].shape[0])
            assert np.all(np.abs(b) <= bound) and np.all(b != 0)
            assert b.size == 1 or np.abs(b).max() > 0.5 * bound
    z = net.forward(params, np.zeros((1, 2)))[0].features
    assert np.sqrt(np.sum(z ** 2)) > 0.5


def test_normalize_advantages_uses_the_population_std_as_documented():
    """Tester 4, defect 3 (documented, not changed): ddof=0, so the result is sqrt(B/(B-1))
    times Stable-Baselines3's / CleanRL's (torch's unbiased std): 15% at B = 4, 0.8% at 64."""
    a = np.array([1.0, 2.0, 3.0, 4.0])
    np.testing.assert_allclose(normalize_advantages(a), [-1.3416408, -0.4472136, 0.4472136,
                                                         1.3416408], rtol=1e-6)
    sb3 = (a - a.mean()) / (a.std(ddof=1) + 1e-8)      # [-1.1619, -0.3873, 0.3873, 1.1619]
    np.testing.assert_allclose(normalize_advantages(a) / sb3, np.sqrt(4 / 3), rtol=1e-7)
    b = np.random.default_rng(0).standard_normal(64)
    ratio = normalize_advantages(b) / ((b - b.mean()) / (b.std(ddof=1) + 1e-8))
    np.testing.assert_allclose(ratio, np.sqrt(64 / 63), rtol=1e-7)   # 1.0079


from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@given(st.sampled_from([np.float32, np.float64]),
       st.lists(st.floats(-1e6, 1e6, allow_nan=False, width=32), min_size=1, max_size=80))
def test_private_mean_is_np_mean_bit_for_bit(dtype, values):
    """normalize_advantages' ``_mean`` (np.mean's steps without its overhead): same scalar."""
    from minirl.algos.ppo import _mean
    x = np.asarray(values, dtype)
    for a in (x, x.reshape(-1, 1)):
        want, got = np.mean(a), _mean(a)
        assert type(got) is type(want) and got.tobytes() == want.tobytes()
    assert _mean([1, 2]) == 1.5                          # anything else: np.mean itself
