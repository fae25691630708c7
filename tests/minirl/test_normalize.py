"""Tests for minirl/normalize.py: running moments match the stream; reward scaler resets."""
import re

import numpy as np
import pytest
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


def test_reward_scaler_accumulates_the_return_when_no_episode_ended():
    # The rollout passes done=None on steps where no episode ended; ret[None] = 0 would have
    # zeroed every env's accumulator.
    scaler = RewardScaler(2, 0.9)
    scaler.scale(np.ones(2), np.zeros(2, bool))
    scaled = scaler.scale(np.ones(2), None)
    np.testing.assert_allclose(scaler.ret, [1.9, 1.9])
    np.testing.assert_allclose(scaler.rms.var, 0.2025)  # returns 1, 1, 1.9, 1.9
    np.testing.assert_allclose(scaled, 1.0 / np.sqrt(0.2025 + 1e-8))


def test_reward_scaler_passes_rewards_through_until_the_returns_differ():
    # The documented rule: Var[ret] == 0 says nothing about the scale, so no division yet.
    np.testing.assert_array_equal(
        RewardScaler(8, 0.98).scale(np.ones(8), np.zeros(8, bool)), np.ones(8))
    np.testing.assert_array_equal(RewardScaler(1, 0.99).scale([0.01], [False]), [0.01])
    scaler = RewardScaler(1, 0.99)
    scaler.scale([0.01], [False])
    second = scaler.scale([0.01], [False])  # returns 0.01, 0.0199: std 0.00495
    np.testing.assert_allclose(second, 0.01 / np.sqrt(0.00495**2 + 1e-8))
    assert 2.0 < second[0] < 2.03


def test_reward_scaler_rejects_bad_input_by_name():
    scaler = RewardScaler(2, 0.9)
    for bad, name in (((np.ones(2), np.array([0, 1])), "done"),
                      ((np.ones(3), None), "rewards"),
                      ((np.array([1.0, np.nan]), None), "rewards"),
                      ((np.array([1.0, np.inf]), None), "rewards")):
        try:
            scaler.scale(*bad)
        except ValueError as e:
            assert name in str(e)
        else:
            raise AssertionError(f"{bad} accepted")
    assert np.isfinite(scaler.rms.var) and np.isfinite(scaler.ret).all()
    for kwargs, name in ((dict(num_envs=0, gamma=0.9), "num_envs"),
                         (dict(num_envs=1, gamma=1.5), "gamma"),
                         (dict(num_envs=1, gamma=0.9, clip=float("nan")), "clip"),
                         (dict(num_envs=1, gamma=0.9, eps=0.0), "eps")):
        try:
            RewardScaler(**kwargs)
        except (TypeError, ValueError) as e:
            assert name in str(e)
        else:
            raise AssertionError(f"{kwargs} accepted")


def test_obs_normalizer_rejects_non_finite_and_overflowing_obs_by_name():
    norm = ObsNormalizer((1,))
    for bad in (np.array([[np.nan]]), np.array([[1e200], [-1e200]]), np.zeros((2, 3))):
        try:
            norm(bad, update=True)
        except ValueError as e:
            assert "obs" in str(e)
        else:
            raise AssertionError(f"{bad} accepted")
    assert norm.state_dict()["count"] == 0.0  # nothing half-folded in
    out = norm(np.array([[1e150], [-1e150]]), update=True)  # large but representable
    np.testing.assert_allclose(out, [[1.0], [-1.0]])


@given(st.integers(1, 40), st.sampled_from([(), (1,), (5,)]), st.sampled_from(["f4", "f8"]),
       st.booleans(), st.integers(0, 2**31 - 1))
def test_first_batch_moments_are_numpys_mean_and_var_bit_for_bit(b, shape, dtype, fortran, seed):
    # update() computes the batch moments with np.mean's and np.var's own operations (one
    # sum for both) on the float64, C-ordered batch: the same bits as calling them.
    x = np.random.default_rng(seed).normal(3.0, 50.0, size=(b, *shape)).astype(dtype)
    if fortran:
        x = np.asfortranarray(x)
    rms = RunningMeanStd(shape)
    rms.update(x)
    x64 = np.asarray(x, np.float64, order="C")     # what the validation before did
    np.testing.assert_array_equal(rms.mean, x64.mean(axis=0))
    np.testing.assert_array_equal(rms.var, x64.var(axis=0))
    assert rms.count == b


def test_fast_path_still_rejects_non_finite_batches_by_name_and_keeps_the_state():
    rms = RunningMeanStd((2,))
    rms.update(np.ones((3, 2)))
    for bad in (np.array([[1.0, np.nan]]), np.array([[np.inf, 1.0]], np.float32),
                np.array([[np.inf, 1.0], [-np.inf, 1.0]])):
        try:
            rms.update(bad, "obs")
        except ValueError as e:
            assert "obs contains NaN or inf" in str(e)
        else:
            raise AssertionError(f"{bad} accepted")
    np.testing.assert_array_equal(rms.mean, [1.0, 1.0])
    assert rms.count == 3.0


# ------------------------------------------------------------------------------------------
# The rollout's private fast paths: bit for bit the public calls, errors still named.
# ------------------------------------------------------------------------------------------


def _stats_bytes(norm):
    rms = norm.rms
    return (np.asarray(rms.mean).tobytes(), np.asarray(rms.var).tobytes(), rms.count,
            type(rms.mean), type(rms.var))


@given(st.integers(1, 14), st.integers(1, 17), st.sampled_from(["f4", "f8"]), st.booleans(),
       st.integers(1, 5), st.floats(-3, 150), st.integers(0, 2**31 - 1), st.booleans())
def test_update_normalize_is_the_public_update_call_bit_for_bit(d, b, dtype, fortran, n, mag,
                                                                 seed, python_sums):
    # d > 12 and the first batch (count 0) take the public path inside; the rest the fast one
    # (python_sums: batch moments of B * D <= 32 numbers in Python floats, where allowed)
    import minirl.normalize as normalize

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(normalize, "_SMALL_SUMS_IN_ORDER",
                   python_sums and normalize._small_sums_in_order())
        _compare_update_normalize(d, b, dtype, fortran, n, mag, seed)


def _compare_update_normalize(d, b, dtype, fortran, n, mag, seed):
    rng = np.random.default_rng(seed)
    public, fast = ObsNormalizer((d,)), ObsNormalizer((d,))
    for _ in range(n):
        x = (rng.normal(rng.normal(0, 5, d), 10.0 ** rng.uniform(-3, 3, d), (b, d))
             * 10.0 ** min(mag, 30 if dtype == "f4" else 150)).astype(dtype)
        if fortran:
            x = np.asfortranarray(x)
        try:
            want = public(x, update=True)
        except ValueError as e:        # a variance beyond float64: the same error, no update
            with pytest.raises(ValueError, match=re.escape(str(e))):
                fast._update_normalize(x)
            assert _stats_bytes(fast) == _stats_bytes(public)
            continue
        got = fast._update_normalize(x)
        assert got.dtype == want.dtype and got.shape == want.shape
        assert got.tobytes() == want.tobytes()
        assert _stats_bytes(fast) == _stats_bytes(public)


@pytest.mark.parametrize("shape,obs", [((), np.ones(3)), ((2, 2), np.ones((3, 2, 2))),
                                       ((2,), [[1.0, 2.0], [3.0, 5.0]]),
                                       ((2,), np.ones((3, 2), np.int64))])
def test_update_normalize_other_inputs_take_the_public_path(shape, obs):
    public, fast = ObsNormalizer(shape), ObsNormalizer(shape)
    for k in range(2):
        want = public(np.asarray(obs) * (k + 1), update=True)
        got = fast._update_normalize(np.asarray(obs) * (k + 1) if k else obs)
        assert got.tobytes() == want.tobytes() and _stats_bytes(fast) == _stats_bytes(public)


@pytest.mark.parametrize("b", [1, 2, 3, 5, 7])
def test_update_normalize_signed_zeros_and_huge_values_bit_for_bit(b):
    # one env (b = 1) skips the batch reductions: sum of one row = 0.0 + x (turns -0.0 into
    # 0.0, as np.add.reduce does), centred squares 0.0
    rows = np.array([[-0.0, 0.0, 1e150, -3e-310, 7.0], [-0.0, -0.0, -1e150, 5e-324, -7.0],
                     [1.0, -0.0, 1e-300, -0.0, 1e10]])
    public, fast = ObsNormalizer((5,)), ObsNormalizer((5,))
    for k in range(6):
        x = np.resize(np.roll(rows, k, axis=0), (b, 5))
        want, got = public(x, update=True), fast._update_normalize(x)
        assert got.tobytes() == want.tobytes() and _stats_bytes(fast) == _stats_bytes(public)


def test_update_normalize_rejects_bad_obs_by_name_and_keeps_the_state():
    norm = ObsNormalizer((2,))
    norm._update_normalize(np.array([[1.0, 2.0], [3.0, 5.0]]))
    norm._update_normalize(np.array([[0.0, 1.0]], np.float32))
    before = _stats_bytes(norm)
    for bad, msg in ((np.array([[1.0, np.nan]]), "obs contains NaN or inf"),
                     (np.array([[np.inf, 1.0]], np.float32), "obs contains NaN or inf"),
                     (np.array([[1e200, 0.0], [-1e200, 0.0]]), "obs: the running variance"),
                     (np.zeros((2, 3)), "obs must have shape")):
        with pytest.raises(ValueError, match=msg):
            norm._update_normalize(bad)
        assert _stats_bytes(norm) == before


def test_update_normalize_with_a_negative_loaded_variance_matches_the_public_nan():
    state = {"mean": np.zeros(2), "var": np.array([-5.0, 1.0]), "count": np.float64(1.0)}
    public, fast = ObsNormalizer((2,)), ObsNormalizer((2,))
    public.load_state_dict(state)
    fast.load_state_dict(state)
    x = np.array([[1.0, 2.0]])
    with np.errstate(invalid="ignore"):
        want, got = public(x, update=True), fast._update_normalize(x)
    assert np.isnan(want[0, 0]) and got.tobytes() == want.tobytes()
    assert _stats_bytes(fast) == _stats_bytes(public)


@given(st.integers(1, 17), st.sampled_from([0.0, 0.5, 0.99, 1.0]), st.integers(1, 40),
       st.floats(-3, 150), st.integers(0, 2**31 - 1), st.booleans())
def test_scale_step_is_scale_bit_for_bit(n, gamma, steps, mag, seed, python_sums):
    # python_sums: up to 7 envs in Python floats (where this NumPy's sums allow it: the
    # check at import), else NumPy's reductions
    import minirl.normalize as normalize

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(normalize, "_SMALL_SUMS_IN_ORDER",
                   python_sums and normalize._small_sums_in_order())
        _compare_scale_step(n, gamma, steps, mag, seed)


def _compare_scale_step(n, gamma, steps, mag, seed):
    rng = np.random.default_rng(seed)
    public, fast = RewardScaler(n, gamma), RewardScaler(n, gamma)
    for t in range(steps):
        kind = rng.integers(4)
        r = (np.full(n, 1.5) if kind == 0 else      # equal returns: variance 0 at the start
             rng.normal(rng.normal(), 1.0, n) * 10.0 ** rng.uniform(-3, min(mag, 150)))
        done = None if rng.random() < 0.6 else rng.random(n) < 0.3
        try:
            want = public.scale(r.copy(), None if done is None else done.copy())
        except ValueError as e:
            with pytest.raises(ValueError, match=re.escape(str(e))):
                fast._scale_step(r.copy(), done)
            assert _stats_bytes(fast) == _stats_bytes(public)
            continue
        got, clipped = fast._scale_step(r.copy(), done)
        assert got.dtype == want.dtype and got.tobytes() == want.tobytes()
        assert clipped == (float(public.rms.var) != 0.0)
        if clipped:
            assert np.abs(got).max() <= public.clip
        assert _stats_bytes(fast) == _stats_bytes(public)
        assert fast.ret.tobytes() == public.ret.tobytes()


@pytest.mark.parametrize("n", [1, 2])
def test_scale_step_rejects_bad_input_by_name_and_keeps_the_state(n):
    scaler = RewardScaler(n, 0.9)
    scaler._scale_step(np.array([1.0, 2.0][:n]), None)
    scaler._scale_step(np.array([3.0, 2.0][:n]), None)
    before, ret = _stats_bytes(scaler), scaler.ret.copy()
    for rewards, done, msg in ((np.array([np.nan, 1.0]), None, "rewards contains NaN or inf"),
                               (np.array([np.inf, 1.0]), None, "rewards contains NaN or inf"),
                               (np.array([1e200, -1e200]), None, "rewards: the running var"),
                               (np.ones(3), None, "rewards must have shape"),
                               (np.ones(2), np.ones(2, np.int64), "done must be None or a bool")):
        if rewards.shape == (2,):
            rewards = rewards[:n]
        if done is not None:
            done = done[:n]
        with pytest.raises(ValueError, match=msg):
            scaler._scale_step(rewards, done)
        if "done" not in msg:
            assert _stats_bytes(scaler) == before and scaler.ret.tobytes() == ret.tobytes()
    # list input takes the public path (as_float), unscaled while the variance is 0
    out, clipped = RewardScaler(1, 0.9)._scale_step([2.0], None)
    assert out.tolist() == [2.0] and not clipped


@given(st.lists(st.one_of(st.floats(allow_nan=False, allow_infinity=False, width=64),
                          st.sampled_from([0.0, -0.0])), min_size=1, max_size=16))
def test_np_sum_is_numpys_sum_bit_for_bit(values):
    """The fast paths' Python sums reproduce np.add.reduce on this NumPy (the import check
    _small_sums_in_order also says so), signed zeros and overflow to inf included."""
    from minirl.normalize import _np_sum, _small_sums_in_order

    if not _small_sums_in_order():
        pytest.skip("this NumPy sums in another order: the fast paths use its reductions")
    x = np.array(values)
    with np.errstate(over="ignore", invalid="ignore"):
        want = np.add.reduce(x, 0)
    assert np.float64(_np_sum(values)).tobytes() == want.tobytes()
