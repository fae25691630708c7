"""Initializers: orthogonality with gain; Xavier/LeCun moments within 5 standard errors."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minirl.nn import (lecun_normal, lecun_uniform, orthogonal, xavier_normal, xavier_uniform,
                       zeros)


@given(n_in=st.integers(1, 40), n_out=st.integers(1, 40), seed=st.integers(0, 2**32 - 1),
       gain=st.sampled_from([1.0, np.sqrt(2.0), 0.01]))
def test_orthogonal_rows_or_columns_are_orthonormal_times_gain(n_in, n_out, seed, gain):
    w = orthogonal((n_in, n_out), rng=np.random.default_rng(seed), gain=gain)
    assert w.shape == (n_in, n_out)
    if n_in >= n_out:   # orthonormal columns
        np.testing.assert_allclose(w.T @ w, gain**2 * np.eye(n_out), atol=1e-12)
    else:               # orthonormal rows
        np.testing.assert_allclose(w @ w.T, gain**2 * np.eye(n_in), atol=1e-12)


def test_orthogonal_square_is_orthogonal_and_seeded():
    a = orthogonal((16, 16), rng=np.random.default_rng(3), gain=2.0)
    b = orthogonal((16, 16), rng=np.random.default_rng(3), gain=2.0)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(a @ a.T, 4 * np.eye(16), atol=1e-12)
    np.testing.assert_allclose(a.T @ a, 4 * np.eye(16), atol=1e-12)


FAN_IN, FAN_OUT, GAIN = 300, 200, 1.7
N = FAN_IN * FAN_OUT


@pytest.mark.parametrize("init, var, uniform", [
    (xavier_uniform, GAIN**2 * 2.0 / (FAN_IN + FAN_OUT), True),
    (xavier_normal, GAIN**2 * 2.0 / (FAN_IN + FAN_OUT), False),
    (lecun_uniform, GAIN**2 / FAN_IN, True),
    (lecun_normal, GAIN**2 / FAN_IN, False),
])
def test_variance_within_five_standard_errors(init, var, uniform):
    w = init((FAN_IN, FAN_OUT), rng=np.random.default_rng(0), gain=GAIN)
    assert w.shape == (FAN_IN, FAN_OUT) and w.dtype == np.float64
    # Var of the sample second moment: E[w^4] - var^2 = (9/5 - 1) var^2 uniform, 2 var^2 normal.
    se = np.sqrt((0.8 if uniform else 2.0) * var**2 / N)
    assert abs(np.mean(w**2) - var) < 5 * se
    assert abs(np.mean(w)) < 5 * np.sqrt(var / N)
    if uniform:
        assert np.abs(w).max() <= np.sqrt(3 * var) + 1e-15   # bound a = sqrt(3 var)


@pytest.mark.parametrize("init", [orthogonal, xavier_uniform, xavier_normal, lecun_uniform,
                                  lecun_normal])
def test_dtype_and_explicit_rng(init):
    w = init((4, 3), rng=np.random.default_rng(0), dtype=np.float32)
    assert w.dtype == np.float32
    with pytest.raises(TypeError, match="Generator"):
        init((4, 3), rng=0)


def test_zeros():
    assert not zeros((3,)).any()
    with pytest.raises(ValueError, match="1-D or 2-D"):
        xavier_uniform((2, 2, 2), rng=np.random.default_rng(0))
