"""kernels/nstep.py: kernel == reference, the TD and Monte Carlo ends, literals, errors."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kernels.nstep import nstep_targets, nstep_targets_reference
from kernels.returns import discounted_returns
from minirl.testing.strategies import discounts, rollouts


def assert_matches(actual, expected, dtype):
    """float64: tight; float32: one rounding per step (|values| <= ~100 here)."""
    rtol, atol = (1e-10, 1e-10) if dtype == np.float64 else (1e-4, 1e-3)
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


def call(ro, gamma, n, fn=nstep_targets):
    return fn(ro["rewards"], ro["next_values"], ro["terminated"], ro["truncated"], gamma, n)


@given(rollouts(), discounts(), st.integers(1, 12))
def test_kernel_matches_reference(ro, gamma, n):
    out = call(ro, gamma, n)
    assert out.shape == ro["shape"] and out.dtype == ro["rewards"].dtype
    assert_matches(out, call(ro, gamma, n, fn=nstep_targets_reference), out.dtype)


@given(rollouts(), discounts())
def test_n_one_is_td_target(ro, gamma):
    r, nv = ro["rewards"].astype(np.float64), ro["next_values"].astype(np.float64)
    assert_matches(call(ro, gamma, 1), r + gamma * ~ro["terminated"] * nv, ro["rewards"].dtype)


@given(rollouts(), discounts(), st.integers(0, 3))
def test_n_at_least_T_is_bootstrapped_discounted_return(ro, gamma, extra):
    n = max(ro["shape"][0], 1) + extra
    mc = discounted_returns(ro["rewards"], ro["terminated"], ro["truncated"], gamma,
                            bootstrap_values=ro["next_values"])
    assert_matches(call(ro, gamma, n), mc, ro["rewards"].dtype)


def test_huge_n_is_fine():
    no = np.zeros(3, dtype=bool)
    np.testing.assert_array_equal(nstep_targets(np.ones(3), np.zeros(3), no, no, 1.0, 10**12),
                                  [3.0, 2.0, 1.0])


def test_literals():
    r, nv = np.array([1.0, 2.0, 3.0, 4.0]), np.array([10.0, 20.0, 30.0, 40.0])
    no = np.zeros(4, dtype=bool)
    # n = 2, gamma = 0.5: y0 = 1 + 0.5*2 + 0.25*20 = 7; y1 = 2 + 0.5*3 + 0.25*30 = 11
    # y2 = 3 + 0.5*4 + 0.25*40 = 15; y3 = 4 + 0.5*40 = 24 (one step left in the rollout)
    np.testing.assert_array_equal(nstep_targets(r, nv, no, no, 0.5, 2), [7.0, 11.0, 15.0, 24.0])
    at1 = np.array([False, True, False, False])
    # terminated at 1: y0 = 1 + 0.5*2 = 2 (no bootstrap); y1 = 2
    np.testing.assert_array_equal(nstep_targets(r, nv, at1, no, 0.5, 2), [2.0, 2.0, 15.0, 24.0])
    # truncated at 1: y0 = 1 + 0.5*2 + 0.25*20 = 7; y1 = 2 + 0.5*20 = 12
    np.testing.assert_array_equal(nstep_targets(r, nv, no, at1, 0.5, 2), [7.0, 12.0, 15.0, 24.0])
    # both flags at 1: termination wins
    np.testing.assert_array_equal(nstep_targets(r, nv, at1, at1, 0.5, 2), [2.0, 2.0, 15.0, 24.0])


def test_literals_row_path():
    # N = 4 takes the row-by-row path; n = 3, gamma = 1, reward 1 per step, next value 100.
    # env 0 never ends: y0 = 1+1+1 + 100 = 103, y1 = 103 (3 steps to the end), y2 = 1+1 + 100,
    # y3 = 1 + 100. env 1 is terminated at t=1: y0 = 2, y1 = 1. Others: truncated at t=0.
    T, N = 4, 4
    r, nv = np.ones((T, N)), np.full((T, N), 100.0)
    term, trunc = np.zeros((T, N), bool), np.zeros((T, N), bool)
    term[1, 1] = True
    trunc[0, 2:] = True
    out = nstep_targets(r, nv, term, trunc, 1.0, 3)
    np.testing.assert_array_equal(out[:, 0], [103.0, 103.0, 102.0, 101.0])
    np.testing.assert_array_equal(out[:2, 1], [2.0, 1.0])
    np.testing.assert_array_equal(out[0, 2:], [101.0, 101.0])


def test_dtypes_and_shapes():
    no = np.zeros(3, dtype=bool)
    f32 = np.ones(3, np.float32)
    assert nstep_targets(f32, f32, no, no, 0.9, 2).dtype == np.float32
    assert nstep_targets(f32, np.ones(3), no, no, 0.9, 2).dtype == np.float64
    assert nstep_targets(np.arange(3), f32, no, no, 0.9, 2).dtype == np.float64
    assert nstep_targets(np.ones((3, 5)), np.ones((3, 5)), np.zeros((3, 5), bool),
                         np.zeros((3, 5), bool), 0.9, np.int64(2)).shape == (3, 5)


@pytest.mark.parametrize("shape", [(0,), (0, 4), (4, 0)])
def test_empty(shape):
    z, flags = np.zeros(shape), np.zeros(shape, bool)
    out = nstep_targets(z, z, flags, flags, 0.9, 3)
    assert out.shape == shape and out.dtype == np.float64


def test_errors_name_the_argument():
    x, no = np.ones(3), np.zeros(3, dtype=bool)
    with pytest.raises(TypeError, match="rewards"):
        nstep_targets(np.array(["a"] * 3), x, no, no, 0.9, 2)
    with pytest.raises(TypeError, match="next_values"):
        nstep_targets(x, np.array([None] * 3), no, no, 0.9, 2)
    with pytest.raises(ValueError, match="rewards"):
        nstep_targets(np.array([np.nan, 1, 1]), x, no, no, 0.9, 2)
    with pytest.raises(ValueError, match="next_values"):
        nstep_targets(x, np.array([1, 1, np.inf]), no, no, 0.9, 2)
    with pytest.raises(ValueError, match="next_values"):
        nstep_targets(x, np.ones(4), no, no, 0.9, 2)
    with pytest.raises(TypeError, match="terminated"):
        nstep_targets(x, x, np.zeros(3), no, 0.9, 2)
    with pytest.raises(TypeError, match="truncated"):
        nstep_targets(x, x, no, np.zeros(3, int), 0.9, 2)
    with pytest.raises(ValueError, match="terminated"):
        nstep_targets(x, x, np.zeros((3, 1), bool), no, 0.9, 2)
    with pytest.raises(ValueError, match="truncated"):
        nstep_targets(x, x, no, np.zeros(2, bool), 0.9, 2)
    cube, cube_flags = np.ones((2, 2, 2)), np.zeros((2, 2, 2), bool)
    with pytest.raises(ValueError, match="rewards"):
        nstep_targets(cube, cube, cube_flags, cube_flags, 0.9, 2)
    for bad in (-1e-9, 1.0 + 1e-9):
        with pytest.raises(ValueError, match="gamma"):
            nstep_targets(x, x, no, no, bad, 2)
    with pytest.raises(TypeError, match="gamma"):
        nstep_targets(x, x, no, no, "0.9", 2)
    for bad in (0, -3):
        with pytest.raises(ValueError, match="n"):
            nstep_targets(x, x, no, no, 0.9, bad)
    for bad in (True, 2.0, "2", None):
        with pytest.raises(TypeError, match="n must"):
            nstep_targets(x, x, no, no, 0.9, bad)


@pytest.mark.parametrize("fn", [nstep_targets, nstep_targets_reference])
def test_targets_that_overflow_float32_are_reported(fn):
    """Finite float32 rewards and values near the maximum: the 3-step targets overflow
    float32 (was: inf, or NaN where the overflowed target met a flag of 0, returned
    silently); a named FloatingPointError. In float64 they are finite."""
    f = np.float32
    big = np.full(4, 3e38, f)
    no = np.zeros(4, bool)
    term = np.array([False, True, False, False])
    for terminated in (no, term):
        with pytest.raises(FloatingPointError, match="^n-step targets overflowed float32"):
            fn(big, big, terminated, no, 1.0, 3)
    out = fn(big.astype(np.float64), big.astype(np.float64), no, no, 1.0, 3)
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out[0], 4 * float(big[0]), rtol=1e-15)
