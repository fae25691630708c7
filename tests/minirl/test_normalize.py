"""Tests for minirl/normalize.py: running moments match the stream; reward scaler resets."""
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from minirl.normalize import ObsNormalizer, RewardScaler, RunningMeanStd


@given(st.lists(st.integers(1, 7), min_size=1, max_size=8), st.integers(0, 2**31 - 1))
def test_running_mean_std_matches_numpy_on_the_stream(sizes, seed):
    rng = np.random.default_rng(seed)
    batches = [rng.normal(3.0, 2.0, size=(b, 3)) for b in sizes]
    rms = RunningMeanStd((3,))
    for batch in batches:
        rms.update(batch)
    stream = np.concatenate(batches)
    np.testing.assert_allclose(rms.mean, stream.mean(axis=0), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(rms.var, stream.var(axis=0), rtol=1e-9, atol=1e-12)
    assert rms.count == len(stream)


def test_obs_normalizer_standardizes_and_clips():
    norm = ObsNormalizer((2,), clip=3.0)
    x = np.array([[0.0, 10.0], [2.0, 10.0], [4.0, 10.0]])
    out = norm(x, update=True)
    np.testing.assert_allclose(out[:, 0], (x[:, 0] - 2.0) / np.sqrt(8 / 3 + 1e-8))
    np.testing.assert_allclose(out[:, 1], 0.0)
    assert np.abs(norm(np.array([[1e6, 1e6]]))).max() == 3.0
    before = norm.state_dict()["count"]
    norm(x)  # update=False leaves the statistics alone
    assert norm.state_dict()["count"] == before


def test_reward_scaler_uses_discounted_return_and_resets_at_episode_ends():
    gamma = 0.5
    scaler = RewardScaler(num_envs=1, gamma=gamma)
    rewards = [1.0, 1.0, 1.0, 1.0]
    dones = [False, True, False, False]
    seen = []
    for r, d in zip(rewards, dones):
        scaled = scaler.scale(np.array([r]), np.array([d]))
        seen.append(scaler.rms.mean.copy())
    # returns: 1, 1.5 (episode ends -> reset), 1, 1.5
    rets = np.array([1.0, 1.5, 1.0, 1.5])
    np.testing.assert_allclose(scaler.rms.mean, rets.mean())
    np.testing.assert_allclose(scaler.rms.var, rets.var())
    np.testing.assert_allclose(scaled, 1.0 / np.sqrt(rets.var() + 1e-8))  # no mean subtraction
    np.testing.assert_allclose(scaler.ret, [1.5])


def test_reward_scaler_state_round_trip():
    a = RewardScaler(2, 0.9)
    a.scale(np.array([1.0, 2.0]), np.array([False, False]))
    b = RewardScaler(2, 0.9)
    b.load_state_dict(a.state_dict())
    x = np.array([0.5, -1.0]), np.array([True, False])
    np.testing.assert_array_equal(a.scale(*x), b.scale(*x))
