"""kernels/activations.py: the float32 tanh kernel against the exact tanh for every float32
input in [2^-14, 9.5], against its NumPy twin bit for bit, special values, the wrapper."""
import numba
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from kernels.activations import (TANH_CLIP, fit_tanh_rational, tanh_f32, tanh_rational_reference,
                                 tanh_reference)

MAX_ULP = 0.63   # 0.5 (the final rounding) + the fit's 7.5e-9 relative error, in float32 ulps


def ulp_error(y32, x32):
    """|y - tanh(x)| in float32 ulps of the exact value: 2^(e - 23) for tanh(x) in [2^e, 2^(e+1))
    (normal range; tanh(x) is taken in float64, whose error is 2^-29 of these units)."""
    exact = np.tanh(x32.astype(np.float64))
    ulp = np.ldexp(1.0, np.frexp(exact)[1] - 24)
    return np.abs(y32.astype(np.float64) - exact) / ulp


def _float32_range(lo, hi, step=1):
    """Every ``step``-th float32 in [lo, hi] (positive), by their bit patterns."""
    a, b = np.float32(lo).view(np.int32), np.float32(hi).view(np.int32)
    return np.arange(a, b + 1, step, dtype=np.int32).view(np.float32)


def test_every_float32_in_the_approximated_range_is_within_0_63_ulp():
    """Exhaustive over [2^-14, 9.5] (144M inputs; below 2^-14 tanh(x) rounds to x, see the next
    test). Under NUMBA_DISABLE_JIT=1 the same check runs on every 997th input."""
    step = 997 if numba.config.DISABLE_JIT else 1
    xs_all = _float32_range(2.0 ** -14, 9.5, step)
    worst = 0.0
    for i in range(0, xs_all.size, 1 << 23):
        xs = xs_all[i:i + (1 << 23)]
        ys = tanh_f32(xs)
        worst = max(worst, float(ulp_error(ys, xs).max()))
        np.testing.assert_array_equal(tanh_f32(-xs), -ys)          # odd, exactly
    assert worst <= MAX_ULP
    # And NumPy's own float32 tanh, for scale: up to 1.37 ulp over this range.
    sample = xs_all[::1009]
    assert ulp_error(np.tanh(sample), sample).max() < 1.5


def test_tiny_and_subnormal_inputs_return_themselves():
    tiny = np.concatenate([_float32_range(1e-45, 2.0 ** -14, 4099), [np.float32(2.0 ** -14)]])
    tiny = tiny.astype(np.float32)
    np.testing.assert_array_equal(tanh_f32(tiny), tiny)
    np.testing.assert_array_equal(tanh_f32(-tiny), -tiny)
    np.testing.assert_array_equal(tanh_reference(tiny), tiny)


def test_special_values():
    x = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, TANH_CLIP, -TANH_CLIP, 9.02, 100.0,
                  np.finfo(np.float32).max, -np.finfo(np.float32).max], np.float32)
    y = tanh_f32(x)
    assert y[0] == 0 and not np.signbit(y[0]) and y[1] == 0 and np.signbit(y[1])
    np.testing.assert_array_equal(y[2:4], [1.0, -1.0])
    assert np.isnan(y[4])
    np.testing.assert_array_equal(y[5:], [1, -1, 1, 1, 1, -1])
    # tanh(9.0) rounds to 1 - 2^-24 exactly; the kernel may be off by the 0.63-ulp bound only
    assert ulp_error(tanh_f32(np.array([9.0], np.float32)), np.array([9.0], np.float32)) <= MAX_ULP


@given(hnp.arrays(np.float32, hnp.array_shapes(min_dims=0, max_dims=3, max_side=7),
                  elements=st.floats(-30, 30, width=32)))
def test_kernel_equals_its_numpy_twin_bit_for_bit_any_shape(x):
    y = tanh_f32(x)
    assert y.shape == x.shape and y.dtype == np.float32
    np.testing.assert_array_equal(y, tanh_rational_reference(x))
    assert np.all(ulp_error(np.atleast_1d(y), np.atleast_1d(x)) <= MAX_ULP)


def test_out_in_place_and_non_contiguous_input():
    x = np.linspace(-5, 5, 24, dtype=np.float32).reshape(4, 6)
    expected = tanh_rational_reference(x)
    np.testing.assert_array_equal(tanh_f32(x[:, ::2]), expected[:, ::2])   # copied first
    buf = x.copy()
    assert tanh_f32(buf, out=buf) is buf                                   # the in-place kernel
    np.testing.assert_array_equal(buf, expected)
    buf = x.copy()
    assert tanh_f32(buf, out=buf.reshape(4, 6)) is not buf                 # same memory, other view
    np.testing.assert_array_equal(buf, expected)
    flat = np.linspace(-5, 5, 30, dtype=np.float32)
    shifted = tanh_rational_reference(flat[:24])
    tanh_f32(flat[:24], out=flat[6:])                                      # overlapping ranges
    np.testing.assert_array_equal(flat[6:], shifted)
    assert tanh_f32(np.empty((0, 3), np.float32)).shape == (0, 3)
    empty = np.empty((0, 3), np.float32)
    assert tanh_f32(empty, out=empty) is empty                             # in place, empty
    strided = x.copy()[:, ::2]
    with pytest.raises(ValueError, match="C-contiguous"):                  # in place, strided
        tanh_f32(strided, out=strided)


def test_wrapper_rejects_bad_input():
    with pytest.raises(TypeError, match="x must be a float32"):
        tanh_f32(np.zeros(3))
    with pytest.raises(TypeError, match="x must be a float32"):
        tanh_f32([0.0, 1.0])
    x = np.zeros((2, 3), np.float32)
    strided = np.zeros((2, 6), np.float32)[:, ::2]
    for bad in (np.zeros((3, 2), np.float32), np.zeros((2, 3)), strided):
        with pytest.raises(ValueError, match="out must be"):
            tanh_f32(x, out=bad)


def test_refit_reproduces_the_stored_accuracy():
    """The fitting routine that produced the coefficients, on a coarser grid (fast)."""
    p, q, err = fit_tanh_rational(num_points=20_001, iterations=30, lawson=40)
    assert q[0] == 1.0 and p.shape == (7,) and q.shape == (4,)
    assert err < 1e-8


def test_tanh_f32_in_place_on_read_only_arrays():
    # (tester 12) an empty read-only array in place is returned as it is; a non-empty one is
    # a named ValueError (was Numba's TypingError)
    empty = np.zeros(0, np.float32)
    empty.flags.writeable = False
    assert tanh_f32(empty, empty) is empty
    x = np.ones(3, np.float32)
    x.flags.writeable = False
    with pytest.raises(ValueError, match="out must be a writable"):
        tanh_f32(x, x)
