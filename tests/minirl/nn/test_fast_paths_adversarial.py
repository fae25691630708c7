"""Adversarial pins of the per-update fast paths (Sequential.forward/backward's inline Linear
and Tanh and its view memo, Adam.step's direct kernel call, clip_grad_norm, the inline
variance/mean of explained_variance and normalize_advantages): each fast path must give the
bits of the general path it short-cuts, and subclasses must keep their own behaviour."""
import numpy as np
import pytest

from kernels.optim import adam_update
from minirl.algos.ppo import normalize_advantages
from minirl.nn import Adam, AdamState, Linear, ReLU, Sequential, Tanh
from minirl.nn.optim import NonFiniteGradientError, clip_grad_norm
from minirl.objectives.value import _var, explained_variance


class DoubledLinear(Linear):
    def forward(self, params, x, out=None):
        y, cache = super().forward(params, x, out=out)
        y *= 2
        return y, cache


class ShiftedTanh(Tanh):
    def forward(self, params, x, out=None):
        y = np.tanh(x) + 0.5
        return y, y


def _ref_forward(net, params, x):
    """The chain computed layer by layer through each layer's own ``forward``."""
    h = np.asarray(x, net.dtype).reshape(-1, net.in_dim)
    for layer, p in zip(net.layers, net._layer_params(params)):
        h, _ = layer.forward(p, h.copy())
    return h.reshape(*np.shape(x)[:-1], net.out_dim)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_subclassed_linear_and_tanh_keep_their_own_forward(dtype):
    x = np.random.default_rng(0).normal(size=(4, 5)).astype(dtype)
    for layers in ([DoubledLinear(5, 7), Tanh(), Linear(7, 3)],
                   [Linear(5, 7), ShiftedTanh(), Linear(7, 3)]):
        net = Sequential(layers, dtype)
        p = net.init(np.random.default_rng(1))
        y, _ = net.forward(p, x)
        plain = Sequential([Linear(5, 7), Tanh(), Linear(7, 3)], dtype)
        assert np.array_equal(y, _ref_forward(net, p, x))
        assert not np.array_equal(y, plain.forward(p, x)[0])     # the override ran


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("act", [Tanh, ReLU])
def test_forward_and_backward_bits_do_not_depend_on_the_leading_shape(dtype, act):
    net = Sequential([Linear(5, 9), act(), Linear(9, 9), act(), Linear(9, 3)], dtype)
    p = net.init(np.random.default_rng(2))
    x2 = np.random.default_rng(3).normal(size=(6, 5)).astype(dtype)
    y2, c2 = net.forward(p, x2)
    dy2 = np.cos(np.arange(18.0)).reshape(6, 3).astype(dtype)
    dy_before = dy2.copy()
    g2, dx2 = net.backward(p, c2, dy2)
    assert np.array_equal(dy2, dy_before)                        # dy is not modified
    assert np.array_equal(y2, _ref_forward(net, p, x2))
    y3, c3 = net.forward(p, x2.reshape(2, 3, 5))
    g3, dx3 = net.backward(p, c3, dy2.reshape(2, 3, 3))
    assert np.array_equal(y3.reshape(6, 3), y2) and np.array_equal(g3, g2)
    assert np.array_equal(dx3.reshape(6, 5), dx2)
    g4, dx4 = net.backward(p, net.forward(p, x2)[1], dy2, need_dx=False)
    assert dx4 is None and np.array_equal(g4, g2)
    yf, _ = net.forward(p, np.asfortranarray(x2))               # strided 2-D input
    assert np.array_equal(yf, y2)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_view_memo_never_serves_stale_parameters(dtype):
    """Many parameter arrays (more than the memo holds), in-place mutation after a forward,
    fresh arrays freed every call, slices of one big vector and ``out=`` buffers: every
    forward/backward equals one from a fresh network that has no memo."""
    net = Sequential([Linear(4, 8), Tanh(), Linear(8, 2)], dtype)
    rng = np.random.default_rng(4)
    x = rng.normal(size=(3, 4)).astype(dtype)
    dy = np.ones((3, 2), dtype)
    n = net.n_params
    arrs = [rng.normal(size=n).astype(dtype) for _ in range(9)]
    big = rng.normal(size=10 * n).astype(dtype)
    grad_buf = np.empty(n, dtype)
    for it in range(200):
        k = it % 5
        if k == 0:
            p = arrs[rng.integers(0, 9)]
        elif k == 1:
            j = rng.integers(0, 10)
            big[j * n:(j + 1) * n] = rng.normal(size=n)
            p = big[j * n:(j + 1) * n]                           # a new slice object each time
        elif k == 2:
            p = rng.normal(size=n).astype(dtype)                 # freed after this iteration
        else:
            p = arrs[rng.integers(0, 9)]
            p[:] = rng.normal(size=n)                            # mutated in place
        y, c = net.forward(p, x)
        g, dx = net.backward(p, c, dy, out=grad_buf if it % 2 else None)
        fresh = Sequential([Linear(4, 8), Tanh(), Linear(8, 2)], dtype)
        yr, cr = fresh.forward(p.copy(), x)
        gr, dxr = fresh.backward(p.copy(), cr, dy)
        assert np.array_equal(y, yr) and np.array_equal(g, gr) and np.array_equal(dx, dxr)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(7,), (3, 4), (1,)])
def test_adam_step_is_adam_update_bit_for_bit(dtype, shape):
    rng = np.random.default_rng(5)
    opt = Adam(lr=0.05, eps=1e-6, weight_decay=0.01)
    p = rng.normal(size=shape).astype(dtype)
    st = opt.init(p)
    m, v = st.m, st.v
    for t in range(1, 6):
        g = rng.normal(size=shape).astype(dtype)
        new, st = opt.step(p, g, st)
        ref, m, v = adam_update(p, g, m, v, 0.05, 0.9, 0.999, 1e-6, t, 0.01, True)
        assert np.array_equal(new, ref) and np.array_equal(st.m, m) and np.array_equal(st.v, v)
        p = new
    # a strided view takes the general path: the same bits as its contiguous copy
    wide = np.repeat(p, 2, axis=-1)
    strided = wide[..., ::2]
    a, _ = opt.step(strided, np.ones(shape, dtype), AdamState(step=3, m=m, v=v))
    b, _ = opt.step(np.ascontiguousarray(strided), np.ones(shape, dtype),
                    AdamState(step=3, m=m, v=v))
    assert np.array_equal(a, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adam_step_names_non_finite_gradients(dtype):
    opt = Adam(lr=0.1)
    p = np.arange(6, dtype=dtype)
    for bad in (np.nan, np.inf, -np.inf):
        g = np.ones(6, dtype)
        g[2] = bad
        with pytest.raises(NonFiniteGradientError, match="NaN/inf"):
            opt.step(p, g, opt.init(p))
    with pytest.raises(NonFiniteGradientError, match="overflowed"):
        opt.step(p, np.full(6, np.finfo(dtype).max / 2, dtype), opt.init(p))


def test_clip_grad_norm_fast_path_matches_the_general_one():
    g = np.random.default_rng(6).normal(size=10) * 1e3
    for max_norm in (1.0, np.float64(1.0), 1, 1e300, float("inf"), 5e-324):
        a, na = clip_grad_norm(g, max_norm)
        b, nb = clip_grad_norm(g.reshape(2, 5), max_norm)
        assert na == nb and np.array_equal(a, b.reshape(-1))
    same, _ = clip_grad_norm(g, float("inf"))
    assert same is g                                             # nothing to scale: no copy
    with pytest.raises(TypeError, match="max_norm"):
        clip_grad_norm(g, True)
    with pytest.raises(ValueError, match="max_norm"):
        clip_grad_norm(g, float("nan"))


def test_inline_var_and_mean_are_numpys_bits():
    rng = np.random.default_rng(7)
    for size in (1, 2, 3, 64, 1001):
        for scale in (1e-310, 1e-30, 1.0, 1e150):
            a = rng.normal(size=size) * scale
            assert _var(a) == float(np.var(a))
            assert _var(a[::2]) == float(np.var(a[::2]))
            for dt in (np.float32, np.float64):
                with np.errstate(all="ignore"):     # (float32 squares of 1e15: reference inf)
                    adv = (a * min(scale, 1e15)).astype(dt)
                    c = adv - adv.mean()
                    std = np.sqrt(np.mean(c * c))
                if size >= 2 and np.isfinite(std):
                    assert np.array_equal(normalize_advantages(adv), c / (std + 1e-8))
    assert np.isnan(explained_variance(np.arange(4.0), np.full(4, 2.5)))     # Var[y] = 0
    assert explained_variance(np.arange(4.0), np.arange(4.0)) == 1.0
