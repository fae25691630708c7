"""kernels/optim.py: the fused Adam kernel == its NumPy reference bit for bit, hand-computed
literals, non-finite second moments, wrapper errors."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from kernels.optim import adam_update, adam_update_reference


def _arrays(dtype, n):
    # magnitudes from 1e-6 to 1e6 (the exponent range gradients take), both signs, zeros
    elems = st.one_of(st.just(0.0), st.floats(-1e6, 1e6, allow_nan=False, width=32),
                      st.floats(0.5 ** 20, 0.5 ** 10, width=32))
    return hnp.arrays(dtype, n, elements=elems)


@st.composite
def adam_problems(draw):
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    n = draw(st.integers(1, 40))
    p, g, m = (draw(_arrays(dtype, n)) for _ in range(3))
    v = np.abs(draw(_arrays(dtype, n)))                 # a second moment is >= 0
    hyper = dict(lr=draw(st.sampled_from([0.0, 1e-4, 2.3e-3, 0.1])),
                 beta1=draw(st.sampled_from([0.0, 0.9, 0.5])),
                 beta2=draw(st.sampled_from([0.0, 0.999, 0.9])),
                 eps=draw(st.sampled_from([1e-8, 1e-5, 1.0])),
                 step=draw(st.integers(1, 10_000)),
                 weight_decay=draw(st.sampled_from([0.0, 0.01, 0.5])),
                 decoupled=draw(st.booleans()))
    return p, g, m, v, hyper


@given(adam_problems())
def test_kernel_equals_reference_bit_for_bit(problem):
    p, g, m, v, hyper = problem
    with np.errstate(over="ignore", invalid="ignore"):
        ref = adam_update_reference(p, g, m, v, **hyper)
    if not np.isfinite(ref[2]).all():                  # g^2 overflowed float32: an error
        with pytest.raises(FloatingPointError, match="grad"):
            adam_update(p, g, m, v, **hyper)
        return
    p0, g0, m0, v0 = p.copy(), g.copy(), m.copy(), v.copy()
    out = adam_update(p, g, m, v, **hyper)
    for got, want in zip(out, ref):
        assert got.dtype == p.dtype and got.shape == p.shape
        np.testing.assert_array_equal(got, want)
    for before, after in ((p0, p), (g0, g), (m0, m), (v0, v)):   # inputs untouched
        np.testing.assert_array_equal(before, after)


def test_hand_computed_first_step():
    # t = 1 from m = v = 0: m' = 0.1 g, v' = 0.001 g^2, m_hat = g, v_hat = g^2,
    # p' = p - lr g / (|g| + eps) = p - lr sign(g) (eps = 0 up to rounding)
    p, g = np.array([1.0, -2.0, 0.5]), np.array([0.5, -4.0, 0.0])
    new, m, v = adam_update(p, g, np.zeros(3), np.zeros(3), 0.1, 0.9, 0.999, 1e-300, 1)
    np.testing.assert_allclose(new, [0.9, -1.9, 0.5], rtol=1e-15)
    np.testing.assert_allclose(m, [0.05, -0.4, 0.0], rtol=1e-15)
    np.testing.assert_allclose(v, [0.00025, 0.016, 0.0], rtol=1e-12)
    # decoupled weight decay 0.5 shrinks by lr * 0.5 * p_old; L2 adds 0.5 p to g
    new, _, _ = adam_update(p, g, np.zeros(3), np.zeros(3), 0.1, 0.9, 0.999, 1e-300, 1, 0.5)
    np.testing.assert_allclose(new, [0.9 - 0.05, -1.9 + 0.1, 0.5 - 0.025], rtol=1e-14)
    new, _, _ = adam_update(p, g, np.zeros(3), np.zeros(3), 0.1, 0.9, 0.999, 1e-300, 1, 0.5,
                            decoupled=False)   # g = [1, -5, 0.25]: every step is lr sign(g)
    np.testing.assert_allclose(new, [0.9, -1.9, 0.4], rtol=1e-14)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_non_finite_gradient_raises_naming_grad(bad, dtype):
    p = np.zeros(1000, dtype)
    g = np.ones(1000, dtype)
    g[737] = bad
    with pytest.raises(FloatingPointError, match="grad.*index 737"):
        adam_update(p, g, np.zeros_like(p), np.zeros_like(p), 1e-3, 0.9, 0.999, 1e-8, 1)


def test_float32_second_moment_overflow_raises():
    p = np.zeros(2, np.float32)
    with pytest.raises(FloatingPointError, match="index 0"):
        adam_update(p, np.array([1e20, 0], np.float32), p, p, 1e-3, 0.9, 0.999, 1e-8, 1)
    new, _, v = adam_update(p, np.array([1e18, 0], np.float32), p, p, 1e-3, 0.9, 0.999, 1e-8, 1)
    assert np.isfinite(v).all() and new[0] < 0


def test_grad_of_another_float_dtype_is_cast_and_shapes_are_kept():
    p = np.ones((2, 3), np.float32)
    new, m, v = adam_update(p, np.ones((2, 3)), np.zeros_like(p), np.zeros_like(p), 0.1, 0.9,
                            0.999, 1e-8, 1)
    assert new.shape == (2, 3) and new.dtype == m.dtype == v.dtype == np.float32


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(grad=np.ones(4)), ValueError, "grad"),
    (dict(m=np.zeros(3, np.float32)), ValueError, "m has dtype"),
    (dict(v=[0.0, 0.0, 0.0]), TypeError, "v must be a numpy array"),
    (dict(params=np.zeros(3, int)), TypeError, "params"),
    (dict(params=np.zeros(6)[::2]), ValueError, "params must be C-contiguous"),
    (dict(lr=-1.0), ValueError, "lr"),
    (dict(lr=float("nan")), ValueError, "lr"),
    (dict(beta1=1.0), ValueError, "beta1"),
    (dict(beta2=True), TypeError, "beta2"),
    (dict(eps=0.0), ValueError, "eps"),
    (dict(weight_decay=-0.1), ValueError, "weight_decay"),
    (dict(step=0), ValueError, "step"),
    (dict(step=1.5), ValueError, "step"),
])
def test_bad_input_raises_naming_the_argument(kwargs, error, match):
    args = dict(params=np.zeros(3), grad=np.ones(3), m=np.zeros(3), v=np.zeros(3), lr=1e-3,
                beta1=0.9, beta2=0.999, eps=1e-8, step=1)
    args.update(kwargs)
    with pytest.raises(error, match=match):
        adam_update(**args)


def test_hyperparameters_that_do_not_survive_the_dtype_are_named_errors():
    """lr=1e300 next to float32 arrays rounds the step size to inf: every parameter would
    become +-inf silently; an eps below float32's smallest subnormal rounds to 0 and a zero
    gradient's update would be 0/0 = NaN. Both are ValueErrors naming the hyperparameter;
    the same values with float64 arrays are finite and accepted."""
    import pytest as _pytest
    p32 = np.ones(4, np.float32)
    z = np.zeros(4, np.float32)
    with _pytest.raises(ValueError, match="lr=1e"):
        adam_update(p32, np.ones(4, np.float32), z, z, 1e300, 0.9, 0.999, 1e-8, 1)
    with _pytest.raises(ValueError, match="eps=1e-50"):
        adam_update(p32, z, z, z, 1e-3, 0.9, 0.999, 1e-50, 1)
    with _pytest.raises(ValueError, match="weight_decay"):
        adam_update(p32, z, z, z, 1e-3, 0.9, 0.999, 1e-8, 1, weight_decay=1e300)
    p64, z64 = np.ones(4), np.zeros(4)
    new, _, _ = adam_update(p64, np.ones(4), z64, z64, 1e300, 0.9, 0.999, 1e-8, 1)
    ref, _, _ = adam_update_reference(p64, np.ones(4), z64, z64, 1e300, 0.9, 0.999, 1e-8, 1)
    assert np.isfinite(new).all() and np.array_equal(new, ref) and new[0] < -9e299
    new, _, _ = adam_update(p64, z64, z64, z64, 1e-3, 0.9, 0.999, 1e-50, 1)
    assert np.array_equal(new, p64)     # a zero gradient moves nothing (no 0/0)
