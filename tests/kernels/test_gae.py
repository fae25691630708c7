"""kernels/gae.py: kernel == reference, identities between estimators, literals, errors."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kernels.gae import gae, gae_reference
from kernels.nstep import nstep_targets_reference
from kernels.returns import discounted_returns
from minirl.testing.strategies import consistent_next_values, discounts, rollouts


def assert_matches(actual, expected, dtype):
    """float64: tight; float32: the recursion rounds once per step (|values| <= ~300 here)."""
    rtol, atol = (1e-10, 1e-10) if dtype == np.float64 else (1e-4, 2e-3)
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


def call(ro, gamma, lam, next_values=None, fn=gae):
    nv = ro["next_values"] if next_values is None else next_values
    return fn(ro["rewards"], ro["values"], nv, ro["terminated"], ro["truncated"], gamma, lam)


@given(rollouts(), discounts(), discounts())
def test_kernel_matches_reference(ro, gamma, lam):
    adv, ret = call(ro, gamma, lam)
    adv_ref, ret_ref = call(ro, gamma, lam, fn=gae_reference)
    assert adv.shape == ret.shape == ro["shape"]
    assert adv.dtype == ret.dtype == ro["rewards"].dtype
    assert_matches(adv, adv_ref, adv.dtype)
    assert_matches(ret, ret_ref, adv.dtype)


@given(rollouts(dtypes=(np.float64,)), discounts(), discounts())
def test_returns_are_advantages_plus_values(ro, gamma, lam):
    adv, ret = call(ro, gamma, lam)
    np.testing.assert_array_equal(ret, adv + ro["values"])


@given(rollouts(dtypes=(np.float64,)), discounts())
def test_lambda_one_is_bootstrapped_return_minus_values(ro, gamma):
    nv = consistent_next_values(ro["values"], ro["next_values"], ro["terminated"],
                                ro["truncated"])
    adv, _ = call(ro, gamma, 1.0, next_values=nv)
    mc = discounted_returns(ro["rewards"], ro["terminated"], ro["truncated"], gamma,
                            bootstrap_values=nv)
    assert_matches(adv, mc - ro["values"], np.float64)


@given(rollouts(), discounts())
def test_lambda_zero_is_td_residual(ro, gamma):
    adv, _ = call(ro, gamma, 0.0)
    r, v, nv = (ro[k].astype(np.float64) for k in ("rewards", "values", "next_values"))
    delta = r + gamma * ~ro["terminated"] * nv - v
    assert_matches(adv, delta, ro["rewards"].dtype)


@given(rollouts(min_T=1, dtypes=(np.float64,)), discounts(), discounts())
def test_lecture_form_lambda_weighted_nstep_advantages(ro, gamma, lam):
    # CS224R, "Trick #3": A_GAE = sum_n w_n A^(n) with w_n = (1-lam) lam^(n-1); the n-step
    # advantage stops at the episode end, so for n >= T all A^(n) are equal and the tail of
    # the weights, lam^(T-1), goes to A^(T). Needs next_values[t] == values[t+1] in episodes.
    nv = consistent_next_values(ro["values"], ro["next_values"], ro["terminated"],
                                ro["truncated"])
    T = ro["shape"][0]
    a_n = [nstep_targets_reference(ro["rewards"], nv, ro["terminated"], ro["truncated"], gamma, n)
           - ro["values"] for n in range(1, T + 1)]
    expected = sum((1 - lam) * lam ** (n - 1) * a_n[n - 1] for n in range(1, T))
    expected = expected + lam ** (T - 1) * a_n[T - 1]
    adv, _ = call(ro, gamma, lam, next_values=nv)
    assert_matches(adv, expected, np.float64)


@given(rollouts(min_T=1, min_N=1), discounts(), discounts(), st.data())
def test_nan_or_inf_anywhere_is_reported_by_name(ro, gamma, lam, data):
    # The wrapper finds bad inputs through row 0 of the advantages: check every position.
    name = data.draw(st.sampled_from(["rewards", "values", "next_values"]))
    ro = dict(ro, **{name: ro[name].copy()})
    idx = tuple(data.draw(st.integers(0, s - 1)) for s in ro["shape"])
    ro[name][idx] = data.draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    with pytest.raises(ValueError, match=name):
        call(ro, gamma, lam)


def test_literals():
    r, v, nv = np.array([1.0, 2.0]), np.array([0.5, 1.0]), np.array([1.0, 3.0])
    no = np.zeros(2, dtype=bool)
    # delta1 = 2 + 0.5*3 - 1 = 2.5; delta0 = 1 + 0.5*1 - 0.5 = 1.0
    # A1 = 2.5; A0 = 1.0 + 0.5*0.5*2.5 = 1.625; returns = A + v = [2.125, 3.5]
    adv, ret = gae(r, v, nv, no, no, 0.5, 0.5)
    np.testing.assert_array_equal(adv, [1.625, 2.5])
    np.testing.assert_array_equal(ret, [2.125, 3.5])
    first = np.array([True, False])
    # terminated at 0: delta0 = 1 - 0.5 = 0.5, no recursion: A0 = 0.5
    np.testing.assert_array_equal(gae(r, v, nv, first, no, 0.5, 0.5)[0], [0.5, 2.5])
    # truncated at 0: delta0 keeps the bootstrap (1.0), no recursion: A0 = 1.0
    np.testing.assert_array_equal(gae(r, v, nv, no, first, 0.5, 0.5)[0], [1.0, 2.5])
    # both flags: termination wins (A0 = 0.5)
    np.testing.assert_array_equal(gae(r, v, nv, first, first, 0.5, 0.5)[0], [0.5, 2.5])


def test_known_answer_reward_at_the_end_constant_value():
    # Reward 1 only on the terminal step, V = c everywhere, gamma = lam = 1:
    # A_t = (sum of rewards to go) - V(s_t) = 1 - c for every t; returns = 1.
    T, N, c = 6, 5, 0.25
    r = np.zeros((T, N))
    r[-1] = 1.0
    term = np.zeros((T, N), dtype=bool)
    term[-1] = True
    v = np.full((T, N), c)
    adv, ret = gae(r, v, v, term, np.zeros_like(term), 1.0, 1.0)
    np.testing.assert_allclose(adv, 1.0 - c, rtol=0, atol=1e-15)
    np.testing.assert_allclose(ret, 1.0, rtol=0, atol=1e-15)


def test_dtypes_and_shapes():
    no = np.zeros(3, dtype=bool)
    f32, f64 = np.ones(3, np.float32), np.ones(3)
    assert gae(f32, f32, f32, no, no, 0.9, 0.9)[0].dtype == np.float32
    assert gae(f32, f64, f32, no, no, 0.9, 0.9)[1].dtype == np.float64
    assert gae(np.arange(3), f32, f32, no, no, 0.9, 0.9)[0].dtype == np.float64  # ints
    adv, ret = gae(np.ones((3, 4)), np.ones((3, 4)), np.ones((3, 4)), np.zeros((3, 4), bool),
                   np.zeros((3, 4), bool), 0.9, 0.9)
    assert adv.shape == ret.shape == (3, 4)


@pytest.mark.parametrize("shape", [(0,), (0, 4), (4, 0)])
def test_empty(shape):
    z, flags = np.zeros(shape, np.float32), np.zeros(shape, bool)
    adv, ret = gae(z, z, z, flags, flags, 0.9, 0.95)
    assert adv.shape == ret.shape == shape and adv.dtype == np.float32


def test_overflow_of_finite_inputs_is_reported():
    big, no = np.full(3, 1e308), np.zeros(3, dtype=bool)
    with pytest.raises(FloatingPointError, match="float64; rescale the rewards and values$"):
        gae(big, -big, big, no, no, 1.0, 1.0)
    b32 = np.full(3, np.finfo(np.float32).max)
    with pytest.raises(FloatingPointError, match="float32; use float64 inputs or rescale"):
        gae(b32, -b32, b32, no, no, 1.0, 1.0)


def test_errors_name_the_argument():
    x, no = np.ones(3), np.zeros(3, dtype=bool)
    strs = np.array(["a"] * 3)
    for i, name in enumerate(["rewards", "values", "next_values"]):
        args = [x, x, x]
        args[i] = strs
        with pytest.raises(TypeError, match=name):
            gae(*args, no, no, 0.9, 0.9)
        args[i] = np.ones(4)
        with pytest.raises(ValueError, match=name if i else "values"):
            gae(*args, no, no, 0.9, 0.9)
        args[i] = np.array([1.0, np.nan, 1.0])
        with pytest.raises(ValueError, match=name):
            gae(*args, no, no, 0.9, 0.9)
    with pytest.raises(TypeError, match="terminated"):
        gae(x, x, x, np.zeros(3, np.uint8), no, 0.9, 0.9)
    with pytest.raises(TypeError, match="truncated"):
        gae(x, x, x, no, [0, 0, 0], 0.9, 0.9)
    with pytest.raises(ValueError, match="terminated"):
        gae(x, x, x, np.zeros(2, bool), no, 0.9, 0.9)
    with pytest.raises(ValueError, match="truncated"):
        gae(x, x, x, no, np.zeros((3, 2), bool), 0.9, 0.9)
    cube, cube_flags = np.ones((2, 2, 2)), np.zeros((2, 2, 2), bool)
    with pytest.raises(ValueError, match="rewards"):
        gae(cube, cube, cube, cube_flags, cube_flags, 0.9, 0.9)
    for name, bad in (("gamma", -0.5), ("gamma", 1.01), ("lam", 2.0), ("lam", float("nan"))):
        kw = {"gamma": 0.9, "lam": 0.9, name: bad}
        with pytest.raises(ValueError, match=name):
            gae(x, x, x, no, no, **kw)
    for name, bad in (("gamma", "0.9"), ("lam", True), ("lam", None)):
        kw = {"gamma": 0.9, "lam": 0.9, name: bad}
        with pytest.raises(TypeError, match=name):
            gae(x, x, x, no, no, **kw)


@given(rollouts(max_T=40, dtypes=(np.float64,), allow_1d=False), discounts(), discounts())
def test_each_column_on_its_own(ro, gamma, lam):
    # The kernel has three code paths (one contiguous column, a few strided columns, row by
    # row over many); in float64 they must give the same numbers as one column at a time.
    adv, ret = call(ro, gamma, lam)
    for j in range(ro["shape"][1]):
        col = {k: ro[k][:, j] for k in ("rewards", "values", "next_values", "terminated",
                                        "truncated")}
        adv_j, ret_j = call(col, gamma, lam)
        np.testing.assert_array_equal(adv[:, j], adv_j)
        np.testing.assert_array_equal(ret[:, j], ret_j)


@pytest.mark.parametrize("fn", [gae, gae_reference])
def test_returns_that_overflow_with_finite_advantages_are_reported(fn):
    """A = 3e38 + 1.9e38 - 2e38 = 2.9e38 fits float32, returns = A + V = 4.9e38 does not:
    a named FloatingPointError from the wrapper and the reference alike (was: the wrapper
    returned inf silently); the same inputs in float64 give the exact finite returns."""
    f = np.float32
    r, v, nv = np.full(3, 3e38, f), np.full(3, 2e38, f), np.full(3, 1.9e38, f)
    no, yes = np.zeros(3, bool), np.ones(3, bool)
    with pytest.raises(FloatingPointError,
                       match=r"^returns \(advantages \+ values\) overflowed float32; use float64"):
        fn(r, v, nv, no, yes, 1.0, 1.0)
    adv, ret = fn(r.astype(np.float64), v.astype(np.float64), nv.astype(np.float64), no, yes,
                  1.0, 1.0)
    exact = [float(x) for x in (r[0], v[0], nv[0])]
    np.testing.assert_array_equal(ret, np.full(3, (exact[0] + exact[2] - exact[1]) + exact[1]))
    # float64: A_0 = (1.5e308 - 1e308) + 1e308 fits, returns_0 = A_0 + 1e308 does not
    with pytest.raises(FloatingPointError, match=r"^returns .* overflowed float64; rescale"):
        fn(np.array([1.5e308, 1e308]), np.array([1e308, 0.0]), np.zeros(2), no[:2], no[:2],
           1.0, 1.0)
    with pytest.raises(FloatingPointError, match="^advantages overflowed float32"):
        fn(np.full(3, 3e38, f), -v, nv, no, yes, 1.0, 1.0)
