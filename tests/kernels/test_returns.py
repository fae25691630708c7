"""kernels/returns.py: kernel == reference, hand-computed literals, edge cases, wrapper errors."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kernels.returns import discounted_returns, discounted_returns_reference
from minirl.testing.strategies import discounts, rollouts


def assert_matches(actual, expected, dtype):
    """float64: tight; float32: the recursion rounds once per step (|values| <= ~100 here)."""
    rtol, atol = (1e-10, 1e-10) if dtype == np.float64 else (1e-4, 1e-3)
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


@given(rollouts(), discounts(), st.booleans())
def test_kernel_matches_reference(ro, gamma, use_bootstrap):
    boot = ro["next_values"] if use_bootstrap else None
    out = discounted_returns(ro["rewards"], ro["terminated"], ro["truncated"], gamma, boot)
    ref = discounted_returns_reference(ro["rewards"], ro["terminated"], ro["truncated"], gamma,
                                       boot)
    assert out.shape == ro["shape"] and out.dtype == ro["rewards"].dtype
    assert_matches(out, ref, out.dtype)


@given(rollouts(min_T=1, min_N=1), discounts(), st.data())
def test_nan_or_inf_anywhere_is_reported_by_name(ro, gamma, data):
    # The wrapper finds bad inputs through row 0 of the result: check every position reaches it.
    name = data.draw(st.sampled_from(["rewards", "bootstrap_values"]))
    arrays = {"rewards": ro["rewards"].copy(), "bootstrap_values": ro["next_values"].copy()}
    idx = tuple(data.draw(st.integers(0, s - 1)) for s in ro["shape"])
    arrays[name][idx] = data.draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    with pytest.raises(ValueError, match=name):
        discounted_returns(arrays["rewards"], ro["terminated"], ro["truncated"], gamma,
                           arrays["bootstrap_values"])


def test_literals():
    r = np.array([1.0, 2.0, 3.0])
    no = np.zeros(3, dtype=bool)
    b = np.array([10.0, 20.0, 30.0])
    # G2 = 3; G1 = 2 + 0.5*3 = 3.5; G0 = 1 + 0.5*3.5 = 2.75
    np.testing.assert_array_equal(discounted_returns(r, no, no, 0.5), [2.75, 3.5, 3.0])
    # last row bootstraps: G2 = 3 + 0.5*30 = 18; G1 = 2 + 0.5*18 = 11; G0 = 1 + 0.5*11 = 6.5
    np.testing.assert_array_equal(discounted_returns(r, no, no, 0.5, b), [6.5, 11.0, 18.0])
    trunc = np.array([False, True, False])
    # truncated at 1: G1 = 2 + 0.5*20 = 12; G0 = 1 + 0.5*12 = 7; G2 = 3 + 0.5*30 = 18
    np.testing.assert_array_equal(discounted_returns(r, no, trunc, 0.5, b), [7.0, 12.0, 18.0])
    # terminated wins over truncated: G1 = 2; G0 = 1 + 0.5*2 = 2; G2 = 18
    np.testing.assert_array_equal(discounted_returns(r, trunc, trunc, 0.5, b), [2.0, 2.0, 18.0])
    # terminated on the last row: no bootstrap there. G2 = 3; G1 = 3.5; G0 = 2.75
    last = np.array([False, False, True])
    np.testing.assert_array_equal(discounted_returns(r, last, no, 0.5, b), [2.75, 3.5, 3.0])
    # without bootstrap values a truncation just cuts: G1 = 2; G0 = 1 + 0.5*2 = 2
    np.testing.assert_array_equal(discounted_returns(r, no, trunc, 0.5), [2.0, 2.0, 3.0])


def test_literals_two_envs_row_path():
    # N = 5 takes the row-by-row path. env 0 ends (terminated) at t=0; the others never end.
    r = np.ones((2, 5))
    term = np.zeros((2, 5), dtype=bool)
    term[0, 0] = True
    out = discounted_returns(r, term, np.zeros_like(term), 0.9)
    # env 0: G0 = 1 (terminated), G1 = 1; others: G1 = 1, G0 = 1 + 0.9*1 = 1.9
    np.testing.assert_allclose(out, [[1.0, 1.9, 1.9, 1.9, 1.9], [1.0] * 5], rtol=0, atol=1e-15)


@given(rollouts(min_T=1), st.booleans())
def test_gamma_zero_is_reward_plus_nothing(ro, use_bootstrap):
    boot = ro["next_values"] if use_bootstrap else None
    out = discounted_returns(ro["rewards"], ro["terminated"], ro["truncated"], 0.0, boot)
    np.testing.assert_array_equal(out, ro["rewards"])


@given(rollouts(min_T=1))
def test_all_done_is_one_step_target(ro):
    done = np.ones(ro["shape"], dtype=bool)
    r, nv, term = ro["rewards"], ro["next_values"], ro["terminated"]
    out = discounted_returns(r, term, done, 0.9, nv)
    assert_matches(out, r + 0.9 * ~term * nv.astype(np.float64), r.dtype)


def test_dtypes_and_shapes():
    no = np.zeros(4, dtype=bool)
    f32 = np.ones(4, dtype=np.float32)
    assert discounted_returns(f32, no, no, 0.9).dtype == np.float32
    assert discounted_returns(f32, no, no, 0.9, f32).dtype == np.float32
    assert discounted_returns(f32, no, no, 0.9, f32.astype(np.float64)).dtype == np.float64
    assert discounted_returns(np.arange(4), no, no, 0.9).dtype == np.float64  # ints -> float64
    assert discounted_returns(np.ones((4, 3)), np.zeros((4, 3), bool),
                              np.zeros((4, 3), bool), 0.9).shape == (4, 3)
    # non-contiguous input is accepted
    r = np.ones((4, 6))[:, ::2]
    flags = np.zeros((4, 3), bool)
    np.testing.assert_allclose(discounted_returns(r, flags, flags, 1.0), [[4.0] * 3, [3.0] * 3,
                                                                          [2.0] * 3, [1.0] * 3])


@pytest.mark.parametrize("shape", [(0,), (0, 3), (5, 0)])
def test_empty(shape):
    flags = np.zeros(shape, dtype=bool)
    out = discounted_returns(np.zeros(shape, np.float32), flags, flags, 0.9, np.zeros(shape))
    assert out.shape == shape and out.dtype == np.float64


def test_overflow_of_finite_inputs_is_reported():
    r = np.full(3, 1e308)
    no = np.zeros(3, dtype=bool)
    with pytest.raises(FloatingPointError, match="overflowed float64; rescale the rewards$"):
        discounted_returns(r, no, no, 1.0)
    with pytest.raises(FloatingPointError, match="float32; use float64 inputs or rescale"):
        discounted_returns(np.full(3, 3e38, np.float32), no, no, 1.0)


def test_errors_name_the_argument():
    r, no, b = np.ones(3), np.zeros(3, dtype=bool), np.ones(3)
    call = discounted_returns
    with pytest.raises(TypeError, match="rewards"):
        call(np.array(["a", "b", "c"]), no, no, 0.9)
    with pytest.raises(TypeError, match="terminated"):
        call(r, np.zeros(3, dtype=int), no, 0.9)
    with pytest.raises(TypeError, match="truncated"):
        call(r, no, np.zeros(3), 0.9)
    with pytest.raises(TypeError, match="bootstrap_values"):
        call(r, no, no, 0.9, np.array(["x"] * 3))
    with pytest.raises(ValueError, match="terminated"):
        call(r, np.zeros(4, dtype=bool), no, 0.9)
    with pytest.raises(ValueError, match="truncated"):
        call(r, no, np.zeros((3, 1), dtype=bool), 0.9)
    with pytest.raises(ValueError, match="bootstrap_values"):
        call(r, no, no, 0.9, np.ones(2))
    with pytest.raises(ValueError, match="rewards"):
        call(np.ones((3, 1, 1)), np.zeros((3, 1, 1), bool), np.zeros((3, 1, 1), bool), 0.9)
    with pytest.raises(ValueError, match="rewards"):
        call(np.array([1.0, np.nan, 1.0]), no, no, 0.9)
    with pytest.raises(ValueError, match="bootstrap_values"):
        call(r, no, no, 0.9, np.array([1.0, 1.0, np.inf]))
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="gamma"):
            call(r, no, no, bad)
    for bad in ("0.9", True, None):
        with pytest.raises(TypeError, match="gamma"):
            call(r, no, no, bad)


@given(rollouts(max_T=40, dtypes=(np.float64,), allow_1d=False), st.booleans())
def test_each_column_on_its_own(ro, use_bootstrap):
    # The kernel has three code paths (one contiguous column, a few strided columns, row by
    # row over many); in float64 they must give the same numbers as one column at a time.
    boot = ro["next_values"] if use_bootstrap else None
    out = discounted_returns(ro["rewards"], ro["terminated"], ro["truncated"], 0.9, boot)
    for j in range(ro["shape"][1]):
        out_j = discounted_returns(ro["rewards"][:, j], ro["terminated"][:, j],
                                   ro["truncated"][:, j], 0.9,
                                   None if boot is None else boot[:, j])
        np.testing.assert_array_equal(out[:, j], out_j)
