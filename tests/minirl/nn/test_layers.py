"""Each layer's backward against central differences (float64, relative error < 1e-6)."""
import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from minirl.nn import Identity, Linear, ReLU, Tanh
from minirl.testing.gradcheck import check_gradient

seeds = st.integers(0, 2**32 - 1)


def _linear_params(rng, n_in, n_out):
    return {"weight": rng.standard_normal((n_in, n_out)), "bias": rng.standard_normal(n_out)}


@given(seed=seeds, batch=st.integers(1, 8), n_in=st.integers(1, 12), n_out=st.integers(1, 12))
def test_linear_gradients(seed, batch, n_in, n_out):
    rng = np.random.default_rng(seed)
    layer = Linear(n_in, n_out)
    p = _linear_params(rng, n_in, n_out)
    x = rng.standard_normal((batch, n_in))
    y, cache = layer.forward(p, x)
    np.testing.assert_allclose(y, x @ p["weight"] + p["bias"], rtol=1e-12, atol=1e-12)
    dy = rng.standard_normal(y.shape)
    dp, dx = layer.backward(p, cache, dy)
    check_gradient(lambda z: layer.forward(p, z)[0], x, dx, dy)
    for name in ("weight", "bias"):
        def f(v, name=name):
            return layer.forward({**p, name: v}, x)[0]
        check_gradient(f, p[name], dp[name], dy)


def test_linear_need_dx_false_and_preallocated_outputs():
    rng = np.random.default_rng(0)
    layer = Linear(3, 2)
    p = _linear_params(rng, 3, 2)
    x = rng.standard_normal((4, 3))
    out = np.empty((4, 2))
    y, cache = layer.forward(p, x, out=out)
    assert y is out
    dy = rng.standard_normal((4, 2))
    dparams = {"weight": np.empty((3, 2)), "bias": np.empty(2)}
    dp, dx = layer.backward(p, cache, dy, dparams=dparams, need_dx=False)
    assert dx is None and dp["weight"] is dparams["weight"]
    np.testing.assert_allclose(dp["weight"], x.T @ dy)
    np.testing.assert_allclose(dp["bias"], dy.sum(0))


@given(seed=seeds, batch=st.integers(1, 8), dim=st.integers(1, 16),
       act=st.sampled_from([Tanh, ReLU, Identity]))
def test_activation_gradients(seed, batch, dim, act):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, dim)) * 2
    if act is ReLU:  # check away from the kink: finite differences straddle 0 otherwise
        assume(np.min(np.abs(x)) > 1e-3)
    layer = act()
    y, cache = layer.forward({}, x.copy())
    dy = rng.standard_normal(y.shape)
    _, dx = layer.backward({}, cache, dy)
    check_gradient(lambda z: layer.forward({}, z.copy())[0], x, dx, dy)


def test_activation_values():
    x = np.array([[-2.0, -0.5, 0.0, 0.5, 3.0]])
    np.testing.assert_allclose(Tanh().forward({}, x)[0], np.tanh(x), rtol=0, atol=4e-16)
    np.testing.assert_array_equal(ReLU().forward({}, x)[0], [[0, 0, 0, 0.5, 3.0]])
    np.testing.assert_array_equal(Identity().forward({}, x)[0], x)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tanh_large_arrays_match_numpy(dtype):
    """Large inputs take the exp-based path; it agrees with np.tanh to a few ulp of 1."""
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((300, 70)) * 5).astype(dtype)
    x.flat[:4] = [-1e4, 1e4, 0.0, -0.0]   # overflow guard and signed zero
    y, _ = Tanh().forward({}, x.copy())
    assert y.dtype == dtype
    tol = 4 * np.finfo(dtype).eps
    np.testing.assert_allclose(y, np.tanh(x), rtol=0, atol=tol)
    assert y.flat[0] == -1 and y.flat[1] == 1


def test_linear_rejects_bad_sizes():
    with pytest.raises(ValueError, match="in_features"):
        Linear(0, 3)


@pytest.mark.parametrize("batch", [1, 127, 128, 300])
def test_linear_gradients_across_batch_size_code_paths(batch):
    """Batch 1 (outer product) and >= 128 (gemv bias gradient) take their own code paths."""
    rng = np.random.default_rng(batch)
    layer = Linear(3, 2)
    p = _linear_params(rng, 3, 2)
    x = rng.standard_normal((batch, 3))
    y, cache = layer.forward(p, x)
    dy = rng.standard_normal(y.shape)
    dp, dx = layer.backward(p, cache, dy)
    np.testing.assert_allclose(dp["weight"], x.T @ dy, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dp["bias"], dy.sum(0), rtol=1e-12, atol=1e-12)
    check_gradient(lambda b: layer.forward({**p, "bias": b}, x)[0], p["bias"], dp["bias"], dy)
    check_gradient(lambda w: layer.forward({**p, "weight": w}, x)[0], p["weight"],
                   dp["weight"], dy)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(3, 5), (64, 40), (300, 70)])
def test_relu_forward_same_bits_as_scalar_maximum(dtype, shape):
    """Arrays of 1024+ elements compare against a cached zero array (a faster NumPy loop);
    the bits must equal np.maximum(x, 0)'s, also for -0.0, NaN and +-inf, in place or not,
    and for a non-contiguous input (which keeps the scalar 0)."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal(shape).astype(dtype)
    x.flat[:6] = [-0.0, 0.0, np.nan, -np.inf, np.inf, -np.nan]
    ref = np.maximum(x, 0)
    y, cache = ReLU().forward({}, x)
    assert y.dtype == dtype and cache is y
    assert np.array_equal(y.view(np.uint8), ref.view(np.uint8))
    xc = x.copy()
    y_in, _ = ReLU().forward({}, xc, out=xc)
    assert y_in is xc and np.array_equal(y_in.view(np.uint8), ref.view(np.uint8))
    xt = x.T                                              # not C-contiguous
    assert ReLU().forward({}, xt)[0].tobytes() == np.maximum(xt, 0).tobytes()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_linear_one_output_dx_same_bits_as_matmul(dtype):
    """A one-output layer forms dx = dy W^T as a broadcast product; the bits must equal
    matmul's, whose sum onto +0 turns a -0.0 product into +0.0."""
    rng = np.random.default_rng(3)
    layer = Linear(40, 1)
    p = {"weight": rng.standard_normal((40, 1)).astype(dtype),
         "bias": rng.standard_normal(1).astype(dtype)}
    p["weight"][:3, 0] = [0.0, -0.0, 1e-30]
    x = rng.standard_normal((300, 40)).astype(dtype)
    _, cache = layer.forward(p, x)
    dy = rng.standard_normal((300, 1)).astype(dtype)
    dy[:3, 0] = [0.0, -0.0, -1e-30]
    ref = np.matmul(dy, p["weight"].T)
    _, dx = layer.backward(p, cache, dy)
    assert dx.dtype == dtype and np.array_equal(dx.view(np.uint8), ref.view(np.uint8))
    assert np.signbit(dx).sum() == np.signbit(ref).sum() > 0   # negative values kept
    buf = np.empty((300, 40), dtype)
    _, dx2 = layer.backward(p, cache, dy, dx_out=buf)
    assert dx2 is buf and np.array_equal(dx2.view(np.uint8), ref.view(np.uint8))
