"""Sequential/MLP: flat-parameter layout, gradient checks for random architectures, leading
shapes, float32, the opt-in workspace, and a regression fit of sin on [-pi, pi]."""
import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from minirl.nn import (MLP, Adam, Identity, Linear, ReLU, Sequential, Tanh, lecun_normal,
                       mse)
from minirl.testing.gradcheck import check_gradient

seeds = st.integers(0, 2**32 - 1)


@st.composite
def architectures(draw):
    depth = draw(st.integers(1, 4))                                  # number of Linear layers
    sizes = [draw(st.integers(1, 64)) for _ in range(depth + 1)]
    # Gradient checks cost 2 * n_params forward passes: keep the example sizes moderate.
    assume(sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:])) <= 3000)
    act = draw(st.sampled_from([Tanh, ReLU, Identity]))
    out_act = draw(st.sampled_from([None, Tanh, Identity]))
    return sizes, act, out_act


def _relu_far_from_kink(net, params, x, margin=1e-4):
    """True if no pre-activation of a ReLU layer is within ``margin`` of 0."""
    h = x.reshape(-1, net.in_dim)
    for layer, p in zip(net.layers, net._layer_params(params)):
        if isinstance(layer, ReLU) and np.min(np.abs(h)) < margin:
            return False
        h, _ = layer.forward(p, h.copy())
    return True


@given(arch=architectures(), seed=seeds, batch=st.integers(1, 5))
def test_mlp_parameter_and_input_gradients(arch, seed, batch):
    sizes, act, out_act = arch
    rng = np.random.default_rng(seed)
    net = MLP(sizes, activation=act, out_activation=out_act)
    params = net.init(rng)
    params += 0.1 * rng.standard_normal(net.n_params)                # nonzero biases too
    x = rng.standard_normal((batch, sizes[0]))
    assume(_relu_far_from_kink(net, params, x))
    y, cache = net.forward(params, x)
    dy = rng.standard_normal(y.shape)
    dparams, dx = net.backward(params, cache, dy)
    check_gradient(lambda p: net.forward(p, x)[0], params, dparams, dy)
    check_gradient(lambda z: net.forward(params, z)[0], x, dx, dy)


def test_flat_layout_and_views():
    net = MLP([3, 4, 2])
    assert [name for name, *_ in net.layout] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert net.n_params == 3 * 4 + 4 + 4 * 2 + 2
    params = np.arange(net.n_params, dtype=np.float64)
    v = net.views(params)
    np.testing.assert_array_equal(v["0.weight"], np.arange(12).reshape(3, 4))  # [in, out]
    np.testing.assert_array_equal(v["2.bias"], [24, 25])
    v["0.bias"][:] = -1.0                                             # views write through
    np.testing.assert_array_equal(params[12:16], -1.0)
    x = np.ones((1, 3))
    y, _ = net.forward(params, x)
    h = np.tanh(x @ v["0.weight"] + v["0.bias"])
    np.testing.assert_allclose(y, h @ v["2.weight"] + v["2.bias"])


def test_gradient_layout_matches_views():
    rng = np.random.default_rng(0)
    net = MLP([3, 5, 2], activation=ReLU)
    params = net.init(rng)
    x = rng.standard_normal((6, 3))
    y, cache = net.forward(params, x)
    dy = rng.standard_normal(y.shape)
    grad, _ = net.backward(params, cache, dy)
    v, g = net.views(params), net.views(grad)
    h = np.maximum(x @ v["0.weight"] + v["0.bias"], 0)
    np.testing.assert_allclose(g["2.weight"], h.T @ dy)
    np.testing.assert_allclose(g["2.bias"], dy.sum(0))


def test_init_gains_and_zero_biases():
    rng = np.random.default_rng(0)
    net = MLP([8, 16, 16, 4])
    params = net.init(rng, out_gain=0.01)
    v = net.views(params)
    for name in ("0.bias", "2.bias", "4.bias"):
        assert not v[name].any()
    np.testing.assert_allclose(v["0.weight"] @ v["0.weight"].T, 2 * np.eye(8), atol=1e-12)
    np.testing.assert_allclose(v["4.weight"].T @ v["4.weight"], 1e-4 * np.eye(4), atol=1e-15)
    p2 = net.init(rng, gains=[1.0, 1.0, 1.0], weight_init=lecun_normal)
    assert p2.shape == (net.n_params,)
    with pytest.raises(ValueError, match="gains"):
        net.init(rng, gains=[1.0])


def test_same_seed_same_params():
    net = MLP([4, 8, 2])
    a = net.init(np.random.default_rng(5))
    b = net.init(np.random.default_rng(5))
    np.testing.assert_array_equal(a, b)


def test_leading_shapes_are_a_reshape():
    rng = np.random.default_rng(0)
    net = MLP([3, 7, 2])
    params = net.init(rng)
    x = rng.standard_normal((5, 4, 3))                                # [T, N, D]
    y, cache = net.forward(params, x)
    assert y.shape == (5, 4, 2)
    y_flat, cache_flat = net.forward(params, x.reshape(20, 3))
    np.testing.assert_array_equal(y.reshape(20, 2), y_flat)
    dy = rng.standard_normal(y.shape)
    g, dx = net.backward(params, cache, dy)
    g_flat, dx_flat = net.backward(params, cache_flat, dy.reshape(20, 2))
    assert dx.shape == x.shape
    np.testing.assert_array_equal(g, g_flat)
    np.testing.assert_array_equal(dx.reshape(20, 3), dx_flat)
    y1, c1 = net.forward(params, x[0, 0])                             # a single [D] input
    assert y1.shape == (2,)
    np.testing.assert_allclose(y1, y[0, 0])
    assert net.backward(params, c1, np.ones(2))[1].shape == (3,)


def test_need_dx_false_gives_same_parameter_gradient():
    rng = np.random.default_rng(1)
    net = MLP([3, 6, 6, 2])
    params = net.init(rng)
    x = rng.standard_normal((4, 3))
    y, cache = net.forward(params, x)
    dy = rng.standard_normal(y.shape)
    g1, dx1 = net.backward(params, cache, dy)
    g2, dx2 = net.backward(params, cache, dy, need_dx=False)
    assert dx2 is None and dx1 is not None
    np.testing.assert_array_equal(g1, g2)


def test_many_forwards_before_one_backward():
    """Each cache is self-contained: backward of the first forward after a second forward."""
    rng = np.random.default_rng(2)
    net = MLP([3, 8, 2])
    params = net.init(rng)
    x1, x2 = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    dy = rng.standard_normal((4, 2))
    _, c1 = net.forward(params, x1)
    ref = net.backward(params, c1, dy)
    _, c1 = net.forward(params, x1)
    _, c2 = net.forward(params, x2)
    g1, dx1 = net.backward(params, c1, dy)
    np.testing.assert_array_equal(g1, ref[0])
    np.testing.assert_array_equal(dx1, ref[1])


def test_backward_does_not_modify_inputs():
    rng = np.random.default_rng(3)
    nets = [MLP([3, 5, 2], activation=act, out_activation=act) for act in (Tanh, ReLU, Identity)]
    nets.append(Sequential([Identity(), ReLU(), Linear(3, 5), ReLU(), Linear(5, 2), ReLU(),
                            Identity()]))
    for net in nets:
        params = net.init(rng)
        x = rng.standard_normal((4, 3))
        dy = rng.standard_normal((4, 2))
        x0, dy0, p0 = x.copy(), dy.copy(), params.copy()
        y, cache = net.forward(params, x)
        net.backward(params, cache, dy)
        np.testing.assert_array_equal(x, x0)
        np.testing.assert_array_equal(dy, dy0)
        np.testing.assert_array_equal(params, p0)


@pytest.mark.parametrize("act", [Tanh, ReLU, Identity])
def test_workspace_matches_allocating_path_and_detects_overwrite(act):
    rng = np.random.default_rng(4)
    net = MLP([3, 8, 8, 2], activation=act)
    params = net.init(rng)
    x = rng.standard_normal((5, 3))
    dy = rng.standard_normal((5, 2))
    y_ref, c_ref = net.forward(params, x)
    g_ref, dx_ref = net.backward(params, c_ref, dy)
    ws = net.workspace()
    y, cache = net.forward(params, x, workspace=ws)
    np.testing.assert_array_equal(y, y_ref)
    g, dx = net.backward(params, cache, dy)
    np.testing.assert_array_equal(g, g_ref)
    np.testing.assert_array_equal(dx, dx_ref)
    # Reuse across calls and across batch sizes.
    _, c_small = net.forward(params, x[:2], workspace=ws)
    _, cache = net.forward(params, x, workspace=ws)
    np.testing.assert_array_equal(net.backward(params, cache, dy)[0], g_ref)
    np.testing.assert_array_equal(net.backward(params, c_small, dy[:2])[0],
                                  net.backward(params, net.forward(params, x[:2])[1], dy[:2])[0])
    # A second forward at the same batch size overwrites the buffers: backward must refuse.
    _, stale = net.forward(params, x, workspace=ws)
    net.forward(params, x[::-1], workspace=ws)
    with pytest.raises(RuntimeError, match="overwritten"):
        net.backward(params, stale, dy)
    with pytest.raises(ValueError, match="different network"):
        MLP([3, 2]).forward(np.zeros(8), x, workspace=ws)


def test_view_memo_follows_the_array_not_the_values():
    """Views are memoized by array identity; in-place edits and new arrays are both seen."""
    rng = np.random.default_rng(9)
    net = MLP([2, 3, 1])
    params = net.init(rng)
    x = rng.standard_normal((4, 2))
    y1, _ = net.forward(params, x)
    params[-1] += 1.0                                                 # the output bias, in place
    np.testing.assert_allclose(net.forward(params, x)[0], y1 + 1.0)
    other = params.copy()
    other[-1] += 1.0
    np.testing.assert_allclose(net.forward(other, x)[0], y1 + 2.0)
    for _ in range(6):                                                # memo eviction
        net.forward(params.copy(), x)
    np.testing.assert_allclose(net.forward(params, x)[0], y1 + 1.0)


def test_view_memo_keeps_a_reused_gradient_buffer_across_fresh_params():
    """A training loop makes new params each step and reuses one gradient buffer: the buffer's
    views stay memoized (least recently used first out), and every step's numbers are those
    of a fresh network (a new MLP object, nothing memoized)."""
    rng = np.random.default_rng(11)
    net = MLP([3, 8, 2], dtype=np.float32)
    params = net.init(rng).astype(np.float32)
    x = rng.standard_normal((5, 3)).astype(np.float32)
    dy = rng.standard_normal((5, 2)).astype(np.float32)
    out = np.empty(net.n_params, np.float32)
    views = None
    for step in range(20):
        params = params - 1e-2 * out if step else params.copy()
        y, cache = net.forward(params, x)
        got, _ = net.backward(params, cache, dy, need_dx=False, out=out)
        views = views if views is not None else net._layer_params(out)
        assert net._layer_params(out) is views
        fresh = MLP([3, 8, 2], dtype=np.float32)
        y2, cache2 = fresh.forward(params.copy(), x)
        assert y.tobytes() == y2.tobytes()
        assert got.tobytes() == fresh.backward(params.copy(), cache2, dy, need_dx=False)[0].tobytes()


def test_params_and_grads_as_slices_of_a_larger_vector():
    """Agents keep actor and critic in one vector: slices work for params and for ``out``."""
    rng = np.random.default_rng(10)
    actor, critic = MLP([3, 4, 2]), MLP([3, 5, 1])
    big = np.concatenate([actor.init(rng), critic.init(rng)])
    a, c = slice(0, actor.n_params), slice(actor.n_params, big.size)
    x = rng.standard_normal((6, 3))
    grad = np.zeros_like(big)
    for _ in range(2):                                                # second pass: memo hits
        ya, ca = actor.forward(big[a], x)
        yc, cc = critic.forward(big[c], x)
        actor.backward(big[a], ca, np.ones_like(ya), out=grad[a])
        critic.backward(big[c], cc, np.ones_like(yc), out=grad[c])
        ref_a = actor.backward(big[a].copy(), actor.forward(big[a].copy(), x)[1],
                               np.ones_like(ya))[0]
        np.testing.assert_array_equal(grad[a], ref_a)
        assert grad[c].any()
        big[a] *= 1.5                                                 # in place: seen next pass
    with pytest.raises(ValueError, match="contiguous"):
        actor.forward(np.zeros(2 * actor.n_params)[::2], x)
    with pytest.raises(ValueError, match="out must be contiguous"):
        actor.backward(big[a], ca, np.ones_like(ya), out=np.zeros(2 * actor.n_params)[::2])


def test_backward_out_argument():
    rng = np.random.default_rng(5)
    net = MLP([2, 4, 1])
    params = net.init(rng)
    y, cache = net.forward(params, rng.standard_normal((3, 2)))
    out = net.zeros()
    g, _ = net.backward(params, cache, np.ones_like(y), out=out)
    assert g is out and out.any()


@pytest.mark.parametrize("act", [Tanh, ReLU])
def test_float32_network_is_float32_and_close_to_float64(act):
    rng = np.random.default_rng(6)
    net64 = MLP([5, 32, 32, 3], activation=act)
    net32 = MLP([5, 32, 32, 3], activation=act, dtype=np.float32)
    p64 = net64.init(rng)
    p32 = p64.astype(np.float32)
    x = rng.standard_normal((2000, 5))   # large enough for the exp-based tanh path too
    dy = rng.standard_normal((2000, 3))
    y64, c64 = net64.forward(p64, x)
    y32, c32 = net32.forward(p32, x)
    g64, dx64 = net64.backward(p64, c64, dy)
    g32, dx32 = net32.backward(p32, c32, dy, out=None)
    assert y32.dtype == g32.dtype == dx32.dtype == np.float32
    np.testing.assert_allclose(y32, y64, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(g32, g64, rtol=1e-3, atol=1e-3 * np.abs(g64).max())
    np.testing.assert_allclose(dx32, dx64, rtol=1e-3, atol=1e-4)
    ws = net32.workspace()
    y_ws, c_ws = net32.forward(p32, x, workspace=ws)
    assert y_ws.dtype == np.float32
    assert net32.backward(p32, c_ws, dy)[0].dtype == np.float32


def test_validation_errors():
    net = MLP([3, 4, 2])
    params = net.zeros()
    with pytest.raises(ValueError, match="x must have shape"):
        net.forward(params, np.ones((2, 4)))
    with pytest.raises(ValueError, match="length"):
        net.forward(params[:-1], np.ones((2, 3)))
    with pytest.raises(TypeError, match="dtype"):
        net.forward(params.astype(np.float32), np.ones((2, 3)))
    _, cache = net.forward(params, np.ones((2, 3)))
    with pytest.raises(ValueError, match="dy must have shape"):
        net.backward(params, cache, np.ones((2, 3)))
    with pytest.raises(ValueError, match="sizes"):
        MLP([3])
    with pytest.raises(TypeError, match="float32 or float64"):
        MLP([3, 2], dtype=np.int64)
    with pytest.raises(ValueError, match="input features"):
        Sequential([Linear(3, 4), Linear(5, 2)])


def test_sequential_with_explicit_layers():
    rng = np.random.default_rng(7)
    net = Sequential([Linear(2, 3), ReLU(), Linear(3, 3), Tanh(), Linear(3, 1), Identity()])
    assert net.out_dim == 1
    assert "4.weight" in net.views(net.init(rng))


def test_mlp_fits_sin_regression():
    """A 1-32-32-1 tanh MLP with Adam fits sin on [-pi, pi] to MSE < 1e-3 (fixed seed).

    (Seeds 0, 1, 2 all reach ~5e-6 with these settings; the bound leaves a wide margin.)
    """
    rng = np.random.default_rng(0)
    x = np.linspace(-np.pi, np.pi, 128)[:, None]                      # [128, 1]
    target = np.sin(x)
    net = MLP([1, 32, 32, 1], activation=Tanh)
    params = net.init(rng)
    adam = Adam(lr=5e-3)
    state = adam.init(params)
    ws = net.workspace()
    for _ in range(1500):
        y, cache = net.forward(params, x, workspace=ws)
        loss, dy = mse(y, target)
        grad, _ = net.backward(params, cache, dy, need_dx=False)
        params, state = adam.step(params, grad, state)
    loss, _ = mse(net.forward(params, x)[0], target)
    assert loss < 1e-3


@pytest.mark.parametrize("act_name", ["Tanh", "ReLU"])
def test_matches_torch_autograd(act_name):
    """Optional oracle: the same weights in torch give the same outputs and gradients."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(8)
    act = {"Tanh": Tanh, "ReLU": ReLU}[act_name]
    net = MLP([5, 16, 16, 3], activation=act)
    params = net.init(rng)
    params += 0.1 * rng.standard_normal(net.n_params)
    x, dy = rng.standard_normal((7, 5)), rng.standard_normal((7, 3))
    y, cache = net.forward(params, x)
    grad, dx = net.backward(params, cache, dy)
    v = net.views(params)
    tx = torch.tensor(x, requires_grad=True)
    tv = {k: torch.tensor(a, requires_grad=True) for k, a in v.items()}
    tact = getattr(torch, act_name.lower())
    h = tact(tx @ tv["0.weight"] + tv["0.bias"])
    h = tact(h @ tv["2.weight"] + tv["2.bias"])
    ty = h @ tv["4.weight"] + tv["4.bias"]
    ty.backward(torch.tensor(dy))
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-10, atol=1e-13)
    g = net.views(grad)
    for k in tv:
        np.testing.assert_allclose(g[k], tv[k].grad.numpy(), rtol=1e-10, atol=1e-13)


def test_float32_forward_names_a_finite_input_beyond_float32():
    # tester 4, defect 11: the cast made 1e39 inf silently (then NaN outputs, "diverged")
    from minirl.nn.mlp import cast_checked

    net = MLP([3, 4, 2], dtype=np.float32)
    params = net.init(np.random.default_rng(0))
    x = np.array([[0.5, 1.0, 2.0], [0.5, 1.0, 2.0]])
    y, _ = net.forward(params, x)
    x[1, 2] = -1e39
    with pytest.raises(ValueError, match=r"network input x\[1, 2\] = -1e\+39 is beyond the "
                                         r"range of float32 .*where it would become -inf"):
        net.forward(params, x)
    wide = MLP([3, 4, 2], dtype=np.float64)
    assert np.isfinite(wide.forward(wide.init(np.random.default_rng(0)), x)[0]).all()
    # the values of np.asarray(x, dtype), also at the edge: max * (1 + 2^-25) rounds to the
    # largest float32 (finite), max * (1 + 2^-23) to inf; NaN/inf in x are not this check's
    top = float(np.finfo(np.float32).max)
    edge = np.array([top * (1 + 2.0 ** -25), -top, 1e-46, 0.1])
    np.testing.assert_array_equal(cast_checked(edge, np.float32), edge.astype(np.float32))
    assert cast_checked(edge, np.float32)[0] == np.float32(top)
    with pytest.raises(ValueError, match=r"obs\[0\] = 3\.40282e\+38 is beyond"):
        cast_checked(np.array([top * (1 + 2.0 ** -23)]), np.float32, "obs")
    for src in (np.array([np.inf, np.nan, 1.0]), np.array([1e39], np.float64)[:0]):
        np.testing.assert_array_equal(cast_checked(src, np.float32), src.astype(np.float32))
    x64 = np.array([1e300])
    assert cast_checked(x64, np.float64) is x64                   # no cast, no copy
    x[1, 2] = 2.0
    np.testing.assert_array_equal(net.forward(params, x)[0], y)   # ordinary input: as before


@given(st.sampled_from([np.float32, np.float64]), st.integers(1, 40), st.booleans(),
       st.integers(0, 2**32 - 1))
def test_forward_inline_layers_equal_the_layer_calls(dtype, batch, use_ws, seed):
    """Sequential.forward runs Linear and float32 Tanh inline; output and caches are bit for
    bit the chain of the layers' own forward calls (which a subclass still gets)."""
    rng = np.random.default_rng(seed)
    net = MLP([3, 7, 5, 2], Tanh, dtype=dtype)
    params = net.init(rng).astype(dtype)
    x = rng.standard_normal((batch, 3)).astype(dtype)
    y, cache = net.forward(params, x, net.workspace() if use_ws else None)
    h, want = x, []
    for layer, p in zip(net.layers, net._layer_params(params)):
        h, c = layer.forward(p, h)
        want.append(c)
    assert y.tobytes() == h.tobytes()
    assert all(a.tobytes() == b.tobytes() for a, b in zip(cache.layer_caches, want))

    class Shifted(Linear):          # a subclass overriding forward is called, not inlined
        def forward(self, params, x, out=None):
            y, c = super().forward(params, x, out=out)
            return y + 1.0, c

    shifted = Sequential([Shifted(3, 2)], dtype=dtype)
    p = shifted.init(rng).astype(dtype)
    assert shifted.forward(p, x)[0].tobytes() == (Linear(3, 2).forward(
        shifted._layer_params(p)[0], x)[0] + 1.0).tobytes()


def test_layers_are_replaced_all_at_once():
    # (tester 12) forward runs Linear and float32 Tanh inline by their types, known from the
    # layers: replacing one layer in place is refused (a tuple); assigning new layers renews
    # the types, so the new layers' own forward runs
    net = Sequential([Linear(2, 3), Tanh(), Linear(3, 2)], dtype=np.float32)
    params = net.init(np.random.default_rng(0))
    x = np.random.default_rng(1).standard_normal((4, 2)).astype(np.float32)
    with pytest.raises(TypeError):
        net.layers[1] = ReLU()
    net.layers = [Linear(2, 3), ReLU(), Linear(3, 2)]
    relu_net = Sequential([Linear(2, 3), ReLU(), Linear(3, 2)], dtype=np.float32)
    np.testing.assert_array_equal(net.forward(params, x)[0], relu_net.forward(params, x)[0])
