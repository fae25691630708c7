"""Tests for kernels/unique.py: three at_most_k_unique forms against np.unique, argmax."""
import numpy as np
import pytest
import scipy.stats
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from kernels.unique import (argmax_first, argmax_first_reference, argmax_random_tiebreak,
                            argmax_random_tiebreak_reference, at_most_k_unique,
                            at_most_k_unique_numpy, at_most_k_unique_reference)

FORMS = [at_most_k_unique_reference, at_most_k_unique_numpy, at_most_k_unique]

# few distinct values so slices repeat them; the float pool holds the policy's corner cases
FLOAT_POOL = [0.0, -0.0, 1.0, -1.0, 2.5, np.nan, -np.nan, np.inf, -np.inf]
DTYPES = [np.dtype(t) for t in (np.float64, np.float32, np.int64, np.bool_)]  # few: each compiles


def _elements(dtype):
    if dtype.kind == "f":
        return st.sampled_from(FLOAT_POOL)
    if dtype.kind == "b":
        return st.booleans()
    return st.integers(0, 3)


@st.composite
def arrays_axis_k(draw, max_side=6, max_dims=4):
    dtype = draw(st.sampled_from(DTYPES))
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=max_dims, min_side=0, max_side=max_side))
    values = draw(hnp.arrays(dtype, shape, elements=_elements(dtype)))
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    k = draw(st.integers(1, 4))
    return values, axis, k


def definition(values, k, axis):
    """``len(np.unique(slice)) <= k`` by an explicit loop over slices."""
    x = np.moveaxis(values, axis, -1)
    out = np.zeros(x.shape[:-1], dtype=bool)
    for idx in np.ndindex(*x.shape[:-1]):
        out[idx] = len(np.unique(x[idx])) <= k
    return out


# ----------------------------------------------------------------------------- at_most_k_unique
@given(arrays_axis_k())
def test_all_forms_equal_np_unique_definition(case):
    values, axis, k = case
    expected = definition(values, k, axis)
    for form in FORMS:
        got = form(values, k=k, axis=axis)
        assert got.dtype == bool and got.shape == expected.shape, form.__name__
        np.testing.assert_array_equal(got, expected, err_msg=form.__name__)


@given(st.data())
def test_long_slices_cross_block_boundaries(data):
    """A (k+1)-th value (or none) at any position of slices longer than the 64-element blocks,
    along the last axis (rows kernel) and the first axis (lockstep kernel)."""
    n = data.draw(st.integers(1, 200))
    k = data.draw(st.integers(1, 3))
    dtype = data.draw(st.sampled_from([np.float64, np.float32, np.int64]))
    pool = np.array([3.0, -0.0, 7.0, np.nan][:k] if dtype != np.int64 else [3, 0, 7][:k],
                    dtype=dtype)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    base = pool[rng.integers(0, k, (5, n))]
    extra = data.draw(st.lists(st.integers(0, n - 1), max_size=3))
    for row, pos in enumerate(extra):  # rows 0..2 may get an extra value, others stay <= k
        base[row, pos] = 11
    if dtype != np.int64 and n > 1:
        base[4, -1] = 0.0  # +0.0 where -0.0 may already be: the same value
    expected = definition(base, k, -1)
    np.testing.assert_array_equal(at_most_k_unique(base, k), expected)
    np.testing.assert_array_equal(at_most_k_unique_numpy(base, k), expected)
    # the same slices along axis 0, next to 300 other slices (several lockstep chunks)
    wide = np.concatenate([base.T, np.repeat(base[:1].T, 300, axis=1)], axis=1)
    np.testing.assert_array_equal(at_most_k_unique(wide, k, axis=0), definition(wide, k, 0))


@given(st.data())
def test_nan_and_signed_zero_entering_at_any_position(data):
    """Slices of two values where NaN, -0.0 or a third value replaces entries at random, along
    axis 0 (2400 slices: two chunks of the lockstep kernel, whose k <= 2 path must notice a
    NaN becoming a slot, e.g. mid-way through a block of rows) and along the last axis (whose
    k <= 2 path must hand rows starting with a NaN to the exact scan)."""
    n = data.draw(st.integers(1, 130))  # past 64: the last-axis kernel's counted blocks
    k = data.draw(st.integers(1, 3))
    dtype = data.draw(st.sampled_from([np.float64, np.float32]))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    pool = np.array([0.0, 1.0, -0.0, np.nan, -np.nan, 2.0], dtype=dtype)
    base = pool[rng.integers(0, 2, (n, 40)) * (np.arange(40) % 2)]  # even slices: one value
    mask = rng.random((n, 40)) < data.draw(st.sampled_from([0.02, 0.1, 0.4]))
    base[mask] = pool[rng.integers(0, pool.size, int(mask.sum()))]
    expected = definition(base, k, 0)
    wide = np.tile(base, (1, 60))
    np.testing.assert_array_equal(at_most_k_unique(wide, k, axis=0), np.tile(expected, 60))
    np.testing.assert_array_equal(at_most_k_unique(np.ascontiguousarray(base.T), k), expected)


def test_literals_and_float_policy():
    x = np.array([[0, 1, 0, 1], [0, 1, 2, 0], [5, 5, 5, 5]])
    for form in FORMS:
        np.testing.assert_array_equal(form(x), [True, False, True])
        np.testing.assert_array_equal(form(x, k=1), [False, False, True])
        np.testing.assert_array_equal(form(x, k=3), [True, True, True])
        np.testing.assert_array_equal(form(x, axis=0), [True, True, False, False])
        # -0.0 and 0.0 are one value; all NaNs are one value (np.unique's equal_nan=True)
        f = np.array([[-0.0, 0.0, 1.0], [np.nan, -np.nan, 1.0], [np.nan, 1.0, 2.0],
                      [np.inf, -np.inf, np.inf]])
        np.testing.assert_array_equal(form(f), [True, True, False, True])
        np.testing.assert_array_equal(form(np.array([True, False, True]), k=1), False)


def test_empty_inputs_give_empty_or_true_outputs():
    for form in FORMS:
        assert form(np.zeros((0, 5))).shape == (0,)
        np.testing.assert_array_equal(form(np.zeros((3, 0))), [True, True, True])
        assert form(np.zeros((2, 0, 4)), axis=0).shape == (0, 4)
        np.testing.assert_array_equal(form(np.zeros(1)), True)


def test_non_contiguous_and_float16_input():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 3, (6, 90)).astype(np.float64)[:, ::3]
    np.testing.assert_array_equal(at_most_k_unique(x, 2), definition(x, 2, -1))
    h = x.astype(np.float16)
    np.testing.assert_array_equal(at_most_k_unique(h, 2, axis=0), definition(h, 2, 0))


@pytest.mark.parametrize("form", FORMS)
def test_at_most_k_unique_bad_input(form):
    with pytest.raises(TypeError, match="values"):
        form(np.array(["a", "b"]))
    with pytest.raises(TypeError, match="values"):
        form(np.array([1 + 2j]))
    with pytest.raises(ValueError, match="values"):
        form(np.float64(3.0))
    with pytest.raises(ValueError, match="k"):
        form(np.zeros(3), k=0)
    with pytest.raises(TypeError, match="k"):
        form(np.zeros(3), k=2.0)
    with pytest.raises(TypeError, match="k"):
        form(np.zeros(3), k=True)
    with pytest.raises(ValueError, match="axis"):
        form(np.zeros((2, 3)), axis=2)
    with pytest.raises(TypeError, match="axis"):
        form(np.zeros((2, 3)), axis=0.5)


# ----------------------------------------------------------------------------- argmax
@st.composite
def nan_free(draw):
    dtype = draw(st.sampled_from(DTYPES))
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=6))
    elements = (st.sampled_from([0.0, -0.0, 1.0, -1.0, np.inf, -np.inf]) if dtype.kind == "f"
                else _elements(dtype))
    values = draw(hnp.arrays(dtype, shape, elements=elements))
    return values, draw(st.integers(-len(shape), len(shape) - 1))


@given(nan_free())
def test_argmax_first_equals_np_argmax(case):
    values, axis = case
    expected = np.argmax(values, axis=axis)
    np.testing.assert_array_equal(argmax_first(values, axis), expected)
    np.testing.assert_array_equal(argmax_first_reference(values, axis), expected)


@given(nan_free(), st.integers(0, 2**32 - 1))
def test_argmax_random_tiebreak_picks_a_maximum_and_matches_reference(case, seed):
    values, axis = case
    got = argmax_random_tiebreak(values, axis, rng=seed)
    x = np.moveaxis(values, axis, -1)
    picked = np.take_along_axis(x, got[..., None], axis=-1)[..., 0]
    np.testing.assert_array_equal(picked, x.max(axis=-1))
    u = np.random.default_rng(seed).random(got.size).reshape(got.shape)
    np.testing.assert_array_equal(got, argmax_random_tiebreak_reference(values, u, axis))


def test_argmax_random_tiebreak_uniform_over_ties():
    q = np.array([1.0, 3.0, 3.0, 0.0, 3.0, -0.0, 3.0])  # ties at 1, 2, 4, 6
    picks = argmax_random_tiebreak(np.tile(q, (40_000, 1)), rng=np.random.default_rng(7))
    counts = np.bincount(picks, minlength=q.size)
    assert counts[[0, 3, 5]].sum() == 0
    assert scipy.stats.chisquare(counts[[1, 2, 4, 6]]).pvalue > 1e-3
    # along axis 0 (lockstep layout) too
    picks0 = argmax_random_tiebreak(np.tile(q[:, None], (1, 40_000)), axis=0, rng=8)
    assert scipy.stats.chisquare(np.bincount(picks0, minlength=q.size)[[1, 2, 4, 6]]).pvalue > 1e-3


def test_argmax_literals_and_empty():
    x = np.array([[1, 5, 5], [2, 2, 0]])
    np.testing.assert_array_equal(argmax_first(x), [1, 0])
    np.testing.assert_array_equal(argmax_first(x, axis=0), [1, 0, 0])
    np.testing.assert_array_equal(argmax_first(np.array([-0.0, 0.0])), 0)
    assert argmax_first(np.zeros((0, 3))).shape == (0,)
    assert argmax_random_tiebreak(np.zeros((0, 3)), rng=0).shape == (0,)


@pytest.mark.parametrize("fn", [argmax_first,
                                lambda v, axis=-1: argmax_random_tiebreak(v, axis, rng=0)])
def test_argmax_bad_input(fn):
    with pytest.raises(ValueError, match="NaN"):
        fn(np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match="length 0"):
        fn(np.zeros((3, 0)))
    with pytest.raises(TypeError, match="values"):
        fn(np.array(["x"]))
    with pytest.raises(ValueError, match="axis"):
        fn(np.zeros((2, 2)), axis=-3)


def test_argmax_random_tiebreak_needs_a_generator():
    with pytest.raises(TypeError, match="rng"):
        argmax_random_tiebreak(np.zeros(3), rng="seed")
    with pytest.raises(TypeError, match="rng"):
        argmax_random_tiebreak(np.zeros(3), rng=None)
    with pytest.raises(TypeError):
        argmax_random_tiebreak(np.zeros(3))  # rng is required


@given(hnp.arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(1, 5)),
                  elements=st.sampled_from([-1.0, -0.0, 0.0, 0.5, 2.0, 1e300])))
def test_greedy_with_ties_equals_reference(q):
    from kernels.unique import greedy_with_ties, greedy_with_ties_reference
    got, tied = greedy_with_ties(q)
    ref, ref_tied = greedy_with_ties_reference(q)
    np.testing.assert_array_equal(got, ref)
    np.testing.assert_array_equal(got, argmax_first(q, axis=1))
    assert tied == ref_tied
    assert tied == int(((q == q.max(axis=1, keepdims=True)).sum(axis=1) > 1).sum())


def test_greedy_with_ties_refuses_nan_and_bad_shapes():
    from kernels.unique import greedy_with_ties
    greedy, tied = greedy_with_ties(np.array([[1.0, 3.0, 3.0], [2.0, 1.0, 0.0]], np.float32))
    assert greedy.tolist() == [1, 0] and tied == 1
    with pytest.raises(ValueError, match="q contains NaN or inf"):
        greedy_with_ties(np.array([[1.0, np.nan]]))
    with pytest.raises(ValueError, match="q must"):
        greedy_with_ties(np.ones(3))
