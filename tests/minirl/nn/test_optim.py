"""Optimizers, clipping, schedules and target updates against hand-computed literals."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minirl.nn import (SGD, Adam, ConstantSchedule, LinearSchedule, clip_grad_norm,
                       hard_update, polyak_update)

GRADS = [np.array([2.0]), np.array([-1.0]), np.array([0.5])]   # g1, g2, g3 (fixed, not f(p))


def _run(opt, p0, grads):
    params, state = np.array(p0, dtype=np.float64), opt.init(np.array(p0, dtype=np.float64))
    out = []
    for g in grads:
        params, state = opt.step(params, g, state)
        out.append(params.copy())
    return out, state


def test_adam_three_hand_computed_steps():
    # lr = 0.1, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, p0 = 1, grads 2, -1, 0.5.
    # t=1: m = 0.1*2 = 0.2          v = 0.001*4 = 0.004
    #      m_hat = 0.2/0.1 = 2      v_hat = 0.004/0.001 = 4      p1 = 1 - 0.1*2/(2 + 1e-8)
    # t=2: m = 0.9*0.2 - 0.1 = 0.08 v = 0.999*0.004 + 0.001*1 = 0.004996
    #      m_hat = 0.08/(1 - 0.81) = 0.08/0.19   v_hat = 0.004996/(1 - 0.998001) = 0.004996/0.001999
    # t=3: m = 0.9*0.08 + 0.1*0.5 = 0.122      v = 0.999*0.004996 + 0.001*0.25 = 0.005241004
    #      m_hat = 0.122/(1 - 0.729) = 0.122/0.271
    #      v_hat = 0.005241004/(1 - 0.997002999) = 0.005241004/0.002997001
    p1 = 1 - 0.1 * 2 / (2 + 1e-8)
    p2 = p1 - 0.1 * (0.08 / 0.19) / (np.sqrt(0.004996 / 0.001999) + 1e-8)
    p3 = p2 - 0.1 * (0.122 / 0.271) / (np.sqrt(0.005241004 / 0.002997001) + 1e-8)
    (q1, q2, q3), state = _run(Adam(lr=0.1), [1.0], GRADS)
    np.testing.assert_allclose([q1[0], q2[0], q3[0]], [p1, p2, p3], rtol=1e-13)
    assert state.step == 3
    np.testing.assert_allclose(state.m, [0.122], rtol=1e-14)
    np.testing.assert_allclose(state.v, [0.005241004], rtol=1e-13)


def test_adam_weight_decay_decoupled_and_l2():
    # Zero gradient: decoupled decay only shrinks, p1 = p0 * (1 - lr * wd) = 2 * (1 - 0.1*0.2).
    (p1,), _ = _run(Adam(lr=0.1, weight_decay=0.2), [2.0], [np.array([0.0])])
    assert p1[0] == pytest.approx(1.96, rel=1e-15)
    # L2: g = 0 + wd * p0 = 0.4, and Adam's first step is lr * g/|g| (up to eps): p1 = 1.9.
    (p1,), _ = _run(Adam(lr=0.1, weight_decay=0.2, decoupled=False), [2.0], [np.array([0.0])])
    assert p1[0] == pytest.approx(2 - 0.1 * 0.4 / (0.4 + 1e-8), rel=1e-15)


def test_sgd_plain_momentum_and_nesterov_hand_computed():
    # plain: p = 1 - 0.1*2 = 0.8, 0.8 + 0.1 = 0.9, 0.9 - 0.05 = 0.85
    out, _ = _run(SGD(lr=0.1), [1.0], GRADS)
    np.testing.assert_allclose(np.concatenate(out), [0.8, 0.9, 0.85], rtol=1e-15)
    # momentum 0.9: b = 2, 0.9*2 - 1 = 0.8, 0.9*0.8 + 0.5 = 1.22; p = 0.8, 0.72, 0.598
    out, state = _run(SGD(lr=0.1, momentum=0.9), [1.0], GRADS)
    np.testing.assert_allclose(np.concatenate(out), [0.8, 0.72, 0.598], rtol=1e-14)
    np.testing.assert_allclose(state.velocity, [1.22], rtol=1e-15)
    # Nesterov: d = g + 0.9 b = 3.8, -1 + 0.72 = -0.28, 0.5 + 1.098 = 1.598
    #           p = 1 - 0.38 = 0.62, 0.62 + 0.028 = 0.648, 0.648 - 0.1598 = 0.4882
    out, _ = _run(SGD(lr=0.1, momentum=0.9, nesterov=True), [1.0], GRADS)
    np.testing.assert_allclose(np.concatenate(out), [0.62, 0.648, 0.4882], rtol=1e-14)


def test_step_does_not_mutate_inputs():
    params, grad = np.array([1.0, 2.0]), np.array([0.5, -0.5])
    for opt in (Adam(lr=0.1, weight_decay=0.1), SGD(lr=0.1, momentum=0.9, weight_decay=0.1)):
        state = opt.init(params)
        p0, g0 = params.copy(), grad.copy()
        new, new_state = opt.step(params, grad, state)
        np.testing.assert_array_equal(params, p0)
        np.testing.assert_array_equal(grad, g0)
        assert new is not params and state.step == 0 and new_state.step == 1


def test_adam_takes_strided_and_0d_params_like_contiguous_ones():
    # the fused kernel wants C-contiguous vectors; Adam.step passes copies of strided ones
    adam = Adam(lr=0.1)
    base = np.array([1.0, 9.0, -2.0, 9.0, 0.5, 9.0])
    new, state = adam.step(base[::2], np.array([2.0, -1.0, 0.0]), adam.init(base[::2]))
    ref, ref_state = adam.step(base[::2].copy(), np.array([2.0, -1.0, 0.0]),
                               adam.init(base[::2].copy()))
    np.testing.assert_array_equal(new, ref)
    np.testing.assert_array_equal(state.v, ref_state.v)
    np.testing.assert_allclose(new, [0.9, -1.9, 0.5], rtol=1e-7)   # lr sign(g) on step 1
    new, state = adam.step(np.array(0.5), np.array(2.0), adam.init(np.array(0.5)))
    assert new.shape == state.m.shape == () and new == pytest.approx(0.4, rel=1e-8)


def test_float32_params_stay_float32():
    params = np.ones(3, np.float32)
    for opt in (Adam(lr=1e-3), SGD(lr=1e-3, momentum=0.9)):
        new, state = opt.step(params, np.full(3, 0.5, np.float32), opt.init(params))
        assert new.dtype == np.float32


def test_linear_schedule_literals():
    s = LinearSchedule(1.0, 0.0, 4)
    assert [s(t) for t in (0, 1, 2, 3, 4, 10)] == [1.0, 0.75, 0.5, 0.25, 0.0, 0.0]
    assert LinearSchedule(3e-4, 1e-5, 100)(50) == pytest.approx(1.55e-4, rel=1e-14)
    assert ConstantSchedule(0.3)(1000) == 0.3
    with pytest.raises(ValueError, match="n_updates"):
        LinearSchedule(1.0, 0.0, 0)


def test_schedule_drives_the_optimizer_step():
    # lr(t) = 1, 0.5, 0 for t = 0, 1, 2 and g = 1: p = -1, -1.5, -1.5
    out, _ = _run(SGD(lr=LinearSchedule(1.0, 0.0, 2)), [0.0], [np.array([1.0])] * 3)
    np.testing.assert_allclose(np.concatenate(out), [-1.0, -1.5, -1.5])


def test_clip_grad_norm_literals():
    g = np.array([3.0, 4.0])                               # norm 5
    clipped, norm = clip_grad_norm(g, 1.0)
    assert norm == 5.0
    np.testing.assert_allclose(clipped, [0.6, 0.8], rtol=1e-15)
    np.testing.assert_array_equal(g, [3.0, 4.0])           # input untouched
    small = np.array([0.3, 0.4])
    same, norm = clip_grad_norm(small, 1.0)
    assert same is small and norm == pytest.approx(0.5)
    with pytest.raises(ValueError, match="max_norm"):
        clip_grad_norm(g, 0.0)


@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 50),
       max_norm=st.floats(1e-3, 1e3), scale=st.floats(1e-3, 1e3))
def test_clip_grad_norm_caps_norm_keeps_direction(seed, n, max_norm, scale):
    g = scale * np.random.default_rng(seed).standard_normal(n)
    clipped, norm = clip_grad_norm(g, max_norm)
    assert norm == pytest.approx(np.linalg.norm(g), rel=1e-12)
    new_norm = np.linalg.norm(clipped)
    assert new_norm <= max_norm * (1 + 1e-12)
    if norm <= max_norm:
        assert clipped is g
    else:
        assert new_norm == pytest.approx(max_norm, rel=1e-12)
        np.testing.assert_allclose(clipped / new_norm, g / norm, rtol=1e-12, atol=1e-15)


def test_polyak_and_hard_update_literals():
    target, online = np.array([0.0, 10.0]), np.array([1.0, 20.0])
    # 0.1 * [1, 20] + 0.9 * [0, 10] = [0.1, 11]
    np.testing.assert_allclose(polyak_update(target, online, 0.1), [0.1, 11.0], rtol=1e-15)
    np.testing.assert_array_equal(target, [0.0, 10.0])     # functional by default
    np.testing.assert_array_equal(polyak_update(target, online, 1.0), online)
    np.testing.assert_array_equal(polyak_update(target, online, 0.0), target)
    res = polyak_update(target, online, 0.5, out=target)   # in place when asked
    assert res is target
    np.testing.assert_array_equal(target, [0.5, 15.0])
    copy = hard_update(target, online)
    assert copy is not online
    np.testing.assert_array_equal(copy, online)
    hard_update(target, online, out=target)
    np.testing.assert_array_equal(target, online)
    with pytest.raises(ValueError, match="tau"):
        polyak_update(target, online, 1.5)


def test_hyperparameter_validation():
    with pytest.raises(ValueError, match="nesterov"):
        SGD(lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="beta1"):
        Adam(lr=0.1, beta1=1.0)
    with pytest.raises(ValueError, match="grad shape"):
        Adam(lr=0.1).step(np.ones(2), np.ones(3), Adam(lr=0.1).init(np.ones(2)))


# ----- optional oracle: PyTorch's optimizers (skipped when torch is not installed) ----------

@pytest.mark.parametrize("make, make_torch", [
    (lambda: Adam(lr=0.01), lambda t, p: t.optim.Adam(p, lr=0.01)),
    (lambda: Adam(lr=0.01, weight_decay=0.1, decoupled=False),
     lambda t, p: t.optim.Adam(p, lr=0.01, weight_decay=0.1)),
    (lambda: Adam(lr=0.01, weight_decay=0.1),
     lambda t, p: t.optim.AdamW(p, lr=0.01, weight_decay=0.1)),
    (lambda: SGD(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
     lambda t, p: t.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)),
])
def test_matches_torch_optimizers(make, make_torch):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    params = rng.standard_normal(6)
    tp = torch.nn.Parameter(torch.tensor(params.copy()))
    topt = make_torch(torch, [tp])
    opt = make()
    state = opt.init(params)
    for _ in range(5):
        g = rng.standard_normal(6)
        params, state = opt.step(params, g, state)
        tp.grad = torch.tensor(g)
        topt.step()
    np.testing.assert_allclose(params, tp.detach().numpy(), rtol=1e-12, atol=1e-14)


# -- overflow-free norms, non-finite gradients, argument validation (reliability issue) -------

def test_clip_grad_norm_does_not_overflow_in_float32():
    # rewards x1e20: the float32 sum of squares overflows; the old code returned 0 * grad
    g = np.array([3e20, -4e20], dtype=np.float32)
    clipped, norm = clip_grad_norm(g, 0.5)
    np.testing.assert_allclose(norm, 5e20, rtol=1e-6)
    np.testing.assert_allclose(clipped, [0.3, -0.4], rtol=1e-6)
    assert clipped.dtype == np.float32
    tiny = np.array([3e-30, 4e-30], dtype=np.float32)  # sum of squares underflows
    same, norm = clip_grad_norm(tiny, 0.5)
    assert same is tiny
    np.testing.assert_allclose(norm, 5e-30, rtol=1e-6)
    huge = np.array([1.5e308, 1.5e308])  # true norm 2.1e308 > max float: reported inf
    clipped, norm = clip_grad_norm(huge, 1.0)
    assert norm == np.inf
    np.testing.assert_allclose(clipped, [2**-0.5, 2**-0.5])
    assert clip_grad_norm(np.zeros(3), 1.0)[1] == 0.0


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_gradients_raise_a_named_error(bad):
    from minirl.nn import NonFiniteGradientError
    g = np.array([1.0, bad])
    with pytest.raises(NonFiniteGradientError, match="clip_grad_norm: grad has 1 NaN/inf"):
        clip_grad_norm(g, 1.0)
    p = np.zeros(2)
    for opt, who in ((Adam(lr=1e-3), "Adam.step"), (SGD(lr=1e-3), "SGD.step")):
        with pytest.raises(NonFiniteGradientError, match=who):
            opt.step(p, g, opt.init(p))


@pytest.mark.filterwarnings("ignore:overflow encountered in multiply")
def test_adam_second_moment_overflow_in_float32_is_an_error_not_a_zero_step():
    from minirl.nn import NonFiniteGradientError
    p = np.zeros(2, np.float32)
    adam = Adam(lr=1e-3)
    with pytest.raises(NonFiniteGradientError, match="second moment"):
        adam.step(p, np.array([1e20, 0.0], np.float32), adam.init(p))
    new, _ = adam.step(p, np.array([1e18, 0.0], np.float32), adam.init(p))
    np.testing.assert_allclose(new, [-1e-3, 0.0], rtol=1e-5)  # Adam's first step: -lr sign(g)


@pytest.mark.parametrize("make,name", [
    (lambda: Adam(lr=float("nan")), "lr"), (lambda: Adam(lr=-0.1), "lr"),
    (lambda: Adam(lr=float("inf")), "lr"), (lambda: SGD(lr=-0.1), "lr"),
    (lambda: Adam(lr=1e-3, weight_decay=-0.01), "weight_decay"),
    (lambda: SGD(lr=1e-3, weight_decay=-0.01), "weight_decay"),
    (lambda: Adam(lr=1e-3, weight_decay=float("inf")), "weight_decay"),
    (lambda: Adam(lr=1e-3, eps=0.0), "eps"), (lambda: Adam(lr=1e-3, eps=float("nan")), "eps"),
    (lambda: Adam(lr=1e-3, beta1=float("nan")), "beta1"), (lambda: Adam(lr=1e-3, beta2=1.0), "beta2"),
    (lambda: Adam(lr=1e-3, decoupled="no"), "decoupled"), (lambda: Adam(lr="0.1"), "lr"),
    (lambda: SGD(lr=1e-3, momentum=float("nan")), "momentum"),
    (lambda: SGD(lr=1e-3, momentum=0.9, nesterov=1), "nesterov"), (lambda: Adam(lr=True), "lr"),
    (lambda: LinearSchedule(float("nan"), 0.0, 10), "lr0"),
    (lambda: LinearSchedule(1e-3, -1.0, 10), "lr_end"),
    (lambda: LinearSchedule(1e-3, 0.0, 2.5), "n_updates"),
    (lambda: ConstantSchedule(float("inf")), "lr"),
    (lambda: clip_grad_norm(np.ones(2), float("nan")), "max_norm"),
    (lambda: polyak_update(np.ones(2), np.ones(2), float("nan")), "tau"),
])
def test_optimizer_arguments_are_validated_by_name(make, name):
    with pytest.raises((TypeError, ValueError), match=name):
        make()


def test_a_schedule_that_goes_negative_is_caught_at_the_step():
    p = np.zeros(1)
    adam = Adam(lr=lambda t: -1.0)
    with pytest.raises(ValueError, match=r"lr\(0\) = -1.0"):
        adam.step(p, np.ones(1), adam.init(p))
    assert Adam(lr=0.0).lr == 0.0 and clip_grad_norm(np.ones(1), float("inf"))[1] == 1.0


def test_sgd_lr_beyond_float32_is_a_named_error_not_inf_params():
    """lr=1e300 with float32 parameters: NumPy rounds lr to inf, so SGD would return +-inf
    (and NaN where the gradient is 0). A ValueError names lr; float64 is exact."""
    import pytest as _pytest
    from minirl.nn.optim import SGD
    opt = SGD(lr=1e300)
    p = np.ones(3, np.float32)
    with _pytest.raises(ValueError, match="lr=1e"):
        opt.step(p, np.zeros(3, np.float32), opt.init(p))
    p64 = np.ones(3)
    new, _ = opt.step(p64, np.ones(3), opt.init(p64))
    assert np.array_equal(new, 1.0 - 1e300 * np.ones(3))


def test_agent_with_an_lr_beyond_its_dtype_fails_with_the_field_named():
    """Through the public path: DQN (float32 networks) with lr=1e300 raises a ValueError naming
    lr at its first update instead of training on +-inf parameters."""
    import pytest as _pytest
    from minirl.algos.dqn import DQN, DQNConfig
    agent = DQN("CartPole-v1", DQNConfig(lr=1e300, learning_starts=64, batch_size=32,
                                         train_freq=64, gradient_steps=1, buffer_size=500),
                seed=0)
    with _pytest.raises(ValueError, match="lr=1e"):
        agent.learn(128)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adam_coefficients_are_the_ones_step_uses(dtype):
    from kernels.optim import adam_update_reference
    rng = np.random.default_rng(0)
    adam = Adam(lr=LinearSchedule(1e-2, 1e-3, 100), weight_decay=0.01, decoupled=False)
    p = rng.standard_normal(50).astype(dtype)
    state = adam.init(p)
    for _ in range(3):
        g = rng.standard_normal(50).astype(dtype)
        b1, c1, b2, c2, bc2, e, step_size, l2, shrink = adam.coefficients(state, np.dtype(dtype))
        gg = g + l2 * p
        m = state.m * b1 + gg * c1
        v = state.v * b2 + (gg * gg) * c2
        manual = p - (m / (np.sqrt(v / bc2) + e)) * step_size
        p, state = adam.step(p, g, state)
        np.testing.assert_array_equal(manual, p)
    ref = adam_update_reference(p, g, state.m, state.v, 0.1, 0.9, 0.999, 1e-8, 4)
    assert ref[0].dtype == dtype
    with pytest.raises(ValueError, match="lr"):
        Adam(lr=1e300).coefficients(state, np.dtype(np.float32))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adam_coefficient_rows_are_the_next_updates_coefficients(dtype):
    from minirl.nn.optim import AdamState
    adam = Adam(lr=LinearSchedule(1e-2, 1e-3, 100), weight_decay=0.01, decoupled=False)
    state = AdamState(7, np.zeros(3, dtype), np.zeros(3, dtype))
    rows = adam.coefficient_rows(state, np.dtype(dtype), 5)
    assert rows.shape == (5, 9) and rows.dtype == dtype
    for k in range(5):
        one = adam.coefficients(AdamState(7 + k, state.m, state.v), np.dtype(dtype))
        assert [np.asarray(c, dtype).tobytes() for c in one] == [c.tobytes() for c in rows[k]]
    # the same error as coefficients(), naming the first update whose step size overflows
    sched = Adam(lr=lambda t: 1e-3 if t < 9 else 1e300)
    with pytest.raises(ValueError, match=r"lr=1e\+300: .* at t=10 overflows float32"):
        sched.coefficient_rows(state, np.dtype(np.float32), 5)


def test_reusable_only_when_nothing_else_holds_the_arrays():
    from minirl.nn.optim import reusable
    a, b = np.zeros(3), np.ones(3)
    assert reusable((np.zeros(2), np.ones(2))) is not None     # only the tuple holds them
    assert reusable((a, np.ones(2))) is None                   # `a` is also held here
    held = [b]
    assert reusable((np.zeros(2), held[0])) is None


def test_reusable_never_returns_views_or_memory_maps(tmp_path):
    from minirl.nn.optim import reusable
    store = np.zeros(10)
    assert reusable((store[:5],)) is None                    # a view of a user's buffer
    np.save(tmp_path / "p.npy", np.zeros(4))
    mm = np.load(tmp_path / "p.npy", mmap_mode="r+")
    assert reusable((mm,)) is None
    assert reusable((np.zeros(3),)) is not None


# ----- the per-update fast paths (Adam.step's inline checks, clip_grad_norm) -----------------

_finite = st.floats(-1e3, 1e3, allow_nan=False, width=32)


@given(st.sampled_from([np.float32, np.float64]), st.lists(_finite, min_size=1, max_size=64),
       st.integers(0, 50), st.sampled_from([0.0, 1e-2]), st.booleans())
def test_adam_step_fast_path_is_bit_for_bit_adam_update(dtype, values, step, wd, decoupled):
    """Adam.step on flat contiguous vectors skips adam_update's second round of checks
    (kernels.optim._adam_apply); the same bits as the public, validating adam_update."""
    from kernels.optim import adam_update
    from minirl.nn.optim import AdamState
    g = np.asarray(values, dtype)
    p, m, v = g[::-1].copy() * 0.5, g * 0.1, g * g * 0.01
    adam = Adam(lr=3e-4, eps=1e-5, weight_decay=wd, decoupled=decoupled)
    new, state = adam.step(p, g, AdamState(step, m, v))
    ref = adam_update(p, g, m, v, 3e-4, 0.9, 0.999, 1e-5, step + 1, wd, decoupled)
    for got, want in zip((new, state.m, state.v), ref):
        assert got.dtype == want.dtype and got.tobytes() == want.tobytes()
    # strided inputs take the old path (copies), with the same numbers
    p2 = np.repeat(p, 2)[::2]
    assert not p2.flags.c_contiguous or p2.size == 1
    new2, _ = adam.step(p2, g, AdamState(step, m, v))
    assert new2.tobytes() == new.tobytes()


def test_adam_step_fast_path_keeps_the_errors():
    from minirl.nn import NonFiniteGradientError
    from minirl.nn.optim import AdamState
    p = np.zeros(3, np.float32)
    with pytest.raises(NonFiniteGradientError):
        Adam(lr=1e-3).step(p, np.array([0.0, np.nan, 1.0], np.float32), Adam(lr=1e-3).init(p))
    with pytest.raises(NonFiniteGradientError, match="overflowed float32"):
        Adam(lr=1e-3).step(p, np.full(3, 3e38, np.float32), Adam(lr=1e-3).init(p))
    with pytest.raises(ValueError, match="step size"):
        Adam(lr=1e300).step(p, np.ones(3, np.float32), Adam(lr=1e-3).init(p))
    with pytest.raises(ValueError, match="step must be an integer"):      # adam_update's check
        Adam(lr=1e-3).step(p, np.ones(3, np.float32), AdamState(-5, p, p))


@given(st.sampled_from([np.float32, np.float64]), st.lists(_finite, min_size=1, max_size=64),
       st.floats(1e-3, 1e3))
def test_clip_grad_norm_is_the_formula_bit_for_bit(dtype, values, max_norm):
    g = np.asarray(values, dtype)
    sq = float(np.dot(g, g))
    clipped, norm = clip_grad_norm(g, max_norm)
    if 0.0 < sq:
        assert norm == float(np.sqrt(sq))
        want = g * (max_norm / norm) if norm > max_norm else g
        assert clipped.dtype == dtype and clipped.tobytes() == want.tobytes()
    # an int bound (the isinstance path) and a 2-D or strided grad give the same bits
    assert clip_grad_norm(g.reshape(-1, 1), max_norm)[0].tobytes() == clipped.tobytes()
    assert clip_grad_norm(np.repeat(g, 2)[::2], max_norm)[0].tobytes() == clipped.tobytes()
    if float(max_norm).is_integer():
        assert clip_grad_norm(g, int(max_norm))[0].tobytes() == clipped.tobytes()
