"""SAC objectives: hand-computed values, and every gradient by central finite differences."""
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minirl.distributions import TanhGaussian
from minirl.nn import MLP, ReLU, Tanh
from minirl.objectives.sac import (
    LOG_STD_MAX,
    EnsembleWorkspace,
    actor_gradient,
    actor_loss,
    critic_gradient,
    critic_loss,
    colored_noise,
    critic_subset,
    ensemble_backward,
    ensemble_forward,
    input_gradient,
    policy_head,
    q_values,
    soft_q_targets,
    target_values,
    temperature_loss,
)
from minirl.testing.gradcheck import check_gradient

OBS_DIM, D, B = 3, 2, 5
LOW, HIGH = np.array([-2.0, 0.0]), np.array([2.0, 3.0])


def _nets(seed, K=2, dtype=np.float64):
    """A small tanh actor [obs -> 2D] and K critics [obs + D -> 1], float64 by default."""
    rng = np.random.default_rng(seed)
    actor = MLP([OBS_DIM, 8, 2 * D], Tanh, dtype=dtype)
    critic = MLP([OBS_DIM + D, 8, 8, 1], Tanh, dtype=dtype)
    phi = actor.init(rng, out_gain=0.5)
    theta = np.stack([critic.init(rng) for _ in range(K)])
    obs = rng.standard_normal((B, OBS_DIM))
    return actor, critic, phi, theta, obs, rng


# --- pure losses: literals ------------------------------------------------------------------


def test_soft_q_targets_by_hand():
    r = np.array([1.0, 0.5, -1.0])
    term = np.array([False, True, False])
    next_q = np.array([[2.0, 9.0, -1.0], [3.0, 8.0, -3.0]])
    logp = np.array([0.5, 0.1, -1.0])
    y = soft_q_targets(r, term, next_q, logp, gamma=0.9, alpha=0.2)
    # min_j = [2, 8, -3]; soft value = min - 0.2 logp = [1.9, -, -2.8]
    np.testing.assert_allclose(y, [1.0 + 0.9 * 1.9, 0.5, -1.0 + 0.9 * -2.8])
    # alpha = 0: the lecture's "no entropy term" target r + gamma min_j Q'_j
    y0 = soft_q_targets(r, term, next_q, logp, gamma=0.9, alpha=0.0)
    np.testing.assert_allclose(y0, [1.0 + 1.8, 0.5, -1.0 - 2.7])


def test_soft_q_targets_keep_dtype_and_reject_bad_input():
    r32 = np.ones(2, np.float32)
    y = soft_q_targets(r32, np.zeros(2, bool), np.ones((2, 2), np.float32),
                       np.zeros(2, np.float32), 0.99, 0.1)
    assert y.dtype == np.float32
    with pytest.raises(TypeError, match="terminated"):
        soft_q_targets(r32, np.zeros(2), np.ones((2, 2)), np.zeros(2), 0.99, 0.1)
    with pytest.raises(ValueError, match="next_q"):
        soft_q_targets(r32, np.zeros(2, bool), np.ones((2, 3)), np.zeros(2), 0.99, 0.1)
    with pytest.raises(ValueError, match="gamma"):
        soft_q_targets(r32, np.zeros(2, bool), np.ones((2, 2)), np.zeros(2), 1.5, 0.1)
    with pytest.raises(ValueError, match="alpha"):
        soft_q_targets(r32, np.zeros(2, bool), np.ones((2, 2)), np.zeros(2), 0.9, -0.1)
    with pytest.raises(ValueError, match="next_logp"):
        soft_q_targets(r32, np.zeros(2, bool), np.ones((2, 2)), np.zeros(3), 0.9, 0.1)


def test_critic_loss_by_hand():
    q = np.array([[1.0, 2.0], [0.0, 4.0]])
    y = np.array([1.5, 3.0])
    loss, dq = critic_loss(q, y)
    assert loss == pytest.approx((0.25 + 1.0 + 2.25 + 1.0) / 2)
    np.testing.assert_allclose(dq, [[-0.5, -1.0], [-1.5, 1.0]])
    loss_w, dq_w = critic_loss(q, y, weights=np.array([2.0, 0.0]))
    assert loss_w == pytest.approx((2 * 0.25 + 2 * 2.25) / 2)
    np.testing.assert_allclose(dq_w, [[-1.0, 0.0], [-3.0, 0.0]])
    with pytest.raises(ValueError, match="targets"):
        critic_loss(q, np.ones(3))


def test_actor_loss_by_hand_min_and_mean():
    logp = np.array([-1.0, 0.5])
    q = np.array([[3.0, 1.0], [2.0, 4.0]])
    loss, dlogp, dq = actor_loss(logp, q, alpha=0.5)
    assert loss == pytest.approx(((-0.5 - 2.0) + (0.25 - 1.0)) / 2)
    np.testing.assert_allclose(dlogp, [0.25, 0.25])
    np.testing.assert_allclose(dq, [[0.0, -0.5], [-0.5, 0.0]])
    loss_m, _, dq_m = actor_loss(logp, q, alpha=0.5, reduction="mean")
    assert loss_m == pytest.approx(((-0.5 - 2.5) + (0.25 - 2.5)) / 2)
    np.testing.assert_allclose(dq_m, np.full((2, 2), -0.25))
    with pytest.raises(ValueError, match="reduction"):
        actor_loss(logp, q, 0.5, reduction="max")
    with pytest.raises(ValueError, match="alpha"):
        actor_loss(logp, q, -1.0)


def test_temperature_loss_sign():
    # entropy estimate -mean(logp) = -1 below the target 0: the gradient step raises log alpha
    loss, dla = temperature_loss(0.3, np.array([1.0, 1.0]), target_entropy=0.0)
    assert loss == pytest.approx(-0.3) and dla == pytest.approx(-1.0)
    _, dla = temperature_loss(0.3, np.array([-3.0, -1.0]), target_entropy=-1.0)
    assert dla == pytest.approx(3.0)                      # entropy 2 > -1: lower alpha
    with pytest.raises(ValueError, match="logp"):
        temperature_loss(0.0, np.zeros((2, 2)), -1.0)


def test_critic_subset():
    rng = np.random.default_rng(0)
    np.testing.assert_array_equal(critic_subset(2, 2, rng), [0, 1])
    s = critic_subset(10, 2, rng)
    assert len(set(s)) == 2 and np.all(np.diff(s) > 0) and s.max() < 10
    with pytest.raises(ValueError, match="subset_size"):
        critic_subset(2, 3, rng)


# --- pure losses: gradients -----------------------------------------------------------------


@given(st.integers(0, 10**6))
def test_pure_loss_gradients(seed):
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((3, 6))
    y, w = rng.standard_normal(6), rng.uniform(0, 2, 6)
    _, dq = critic_loss(q, y, w)
    check_gradient(lambda x: critic_loss(x, y, w)[0], q, dq, dy=1.0)
    logp = rng.standard_normal(6)
    for red in ("min", "mean"):
        _, dlogp, dq = actor_loss(logp, q, 0.3, red)
        check_gradient(lambda x: actor_loss(x, q, 0.3, red)[0], logp, dlogp, dy=1.0)
        check_gradient(lambda x: actor_loss(logp, x, 0.3, red)[0], q, dq, dy=1.0)
    _, dla = temperature_loss(0.7, logp, -2.0)
    check_gradient(lambda x: np.array(temperature_loss(float(x[0]), logp, -2.0)[0]),
                   np.array([0.7]), np.array([dla]), dy=1.0)


# --- through the networks: (a) critics, (b) actor, float64 central differences --------------


@pytest.mark.parametrize("K", [1, 2, 3])
def test_critic_gradient_wrt_each_critic(K):
    actor, critic, phi, theta, obs, rng = _nets(1, K)
    actions = rng.uniform(LOW, HIGH, (B, D))
    y = rng.standard_normal(B)
    w = rng.uniform(0.5, 1.5, B)
    loss, grad = critic_gradient(critic, theta, obs, actions, y, weights=w)
    q, _ = q_values(critic, theta, obs, actions)
    assert loss == pytest.approx(critic_loss(q, y, w)[0])
    for j in range(K):
        def f(p, j=j):
            th = theta.copy()
            th[j] = p
            return critic_gradient(critic, th, obs, actions, y, weights=w)[0]
        check_gradient(f, theta[j], grad[j], dy=1.0, rtol=1e-6)


@pytest.mark.parametrize("K,reduction,alpha", [(2, "min", 0.2), (2, "min", 0.0),
                                               (3, "mean", 0.5), (1, "min", 1.3)])
def test_actor_gradient_through_sample_and_critic_inputs(K, reduction, alpha):
    actor, critic, phi, theta, obs, _ = _nets(2, K)

    def f(p):
        return actor_gradient(actor, p, critic, theta, obs, alpha, LOW, HIGH,
                              np.random.default_rng(5), reduction)[0]

    loss, dphi, logp = actor_gradient(actor, phi, critic, theta, obs, alpha, LOW, HIGH,
                                      np.random.default_rng(5), reduction)
    assert np.isfinite(loss) and logp.shape == (B,)
    assert np.abs(dphi).max() > 1e-3                       # a real gradient, not zeros
    check_gradient(f, phi, dphi, dy=1.0, rtol=1e-6)


def test_actor_gradient_zero_through_clamped_log_std():
    actor, critic, phi, theta, obs, _ = _nets(3)
    views = actor.views(phi)
    views["2.bias"][D:] = 50.0                             # log_std far above LOG_STD_MAX
    out, _ = actor.forward(phi, obs)
    assert np.all(policy_head(out, LOW, HIGH).log_std == LOG_STD_MAX)
    _, dphi, _ = actor_gradient(actor, phi, critic, theta, obs, 0.2, LOW, HIGH,
                                np.random.default_rng(0))
    assert np.all(actor.views(dphi)["2.bias"][D:] == 0.0)
    f = lambda p: actor_gradient(actor, p, critic, theta, obs, 0.2, LOW, HIGH,  # noqa: E731
                                 np.random.default_rng(0))[0]
    check_gradient(f, phi, dphi, dy=1.0, rtol=1e-6)


@pytest.mark.parametrize("act,out_dim", [(Tanh, 1), (ReLU, 1), (Tanh, 3)])
def test_input_gradient_equals_the_networks_dx(act, out_dim):
    rng = np.random.default_rng(6)
    net = MLP([4, 16, 16, out_dim], act)
    p = np.stack([net.init(rng), net.init(rng)])
    x, dy = rng.standard_normal((7, 4)), rng.standard_normal((7, out_dim))
    y, cache = ensemble_forward(net, p, x, EnsembleWorkspace(net))
    rows = np.array([5, 0, 3])
    for j in range(2):
        y_ref, cache_ref = net.forward(p[j], x)
        np.testing.assert_allclose(y[j], y_ref, rtol=1e-12, atol=1e-14)
        _, dx_ref = net.backward(p[j], cache_ref, dy)
        np.testing.assert_allclose(input_gradient(net, p, cache, j, dy), dx_ref,
                                   rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(input_gradient(net, p, cache, j, dy[rows], rows),
                                   dx_ref[rows], rtol=1e-12, atol=1e-14)
    ensemble_forward(net, p, x, cache.workspace)           # overwrites the cache's buffers
    with pytest.raises(RuntimeError, match="overwritten"):
        input_gradient(net, p, cache, 0, dy)
    with pytest.raises(RuntimeError, match="overwritten"):
        ensemble_backward(net, p, cache, np.ones((2, 7, out_dim)))


@pytest.mark.parametrize("act,K,B", [(Tanh, 3, 7), (ReLU, 2, 130), (ReLU, 1, 1)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_ensemble_forward_backward_equal_each_networks_own(act, K, B, dtype):
    """The stacked products give each network's forward and parameter gradient (bit for bit
    in float64 here; float32 to rounding), with and without a workspace."""
    rng = np.random.default_rng(7)
    net = MLP([5, 16, 16, 1], act, dtype=dtype)
    p = np.stack([net.init(rng) for _ in range(K)])
    x = rng.standard_normal((B, 5))
    dy = rng.standard_normal((K, B, 1)).astype(dtype)
    tol = dict(rtol=1e-12, atol=1e-14) if dtype == np.float64 else dict(rtol=1e-5, atol=1e-6)
    for ws in (None, EnsembleWorkspace(net)):
        y, cache = ensemble_forward(net, p, x, ws)
        grad = ensemble_backward(net, p, cache, dy)
        assert y.shape == (K, B, 1) and grad.shape == p.shape and grad.dtype == dtype
        for j in range(K):
            y_ref, c = net.forward(p[j], x)
            np.testing.assert_allclose(y[j], y_ref, **tol)
            g_ref, _ = net.backward(p[j], c, dy[j], need_dx=False)
            np.testing.assert_allclose(grad[j], g_ref, **tol)
    with pytest.raises(ValueError, match="params"):
        ensemble_forward(net, p.astype(np.float16), x)
    with pytest.raises(ValueError, match="x must"):
        ensemble_forward(net, p, x[:, :3])


def test_target_values_match_their_definition():
    actor, critic, phi, theta, obs, rng = _nets(4, K=3)
    batch = SimpleNamespace(next_obs=obs, rewards=rng.standard_normal(B),
                            terminated=np.array([False, True, False, False, True]))
    y = target_values(actor, phi, critic, theta, batch, 0.9, 0.3, LOW, HIGH,
                      np.random.default_rng(1), subset=np.array([0, 2]))
    out, _ = actor.forward(phi, obs)
    dist = policy_head(out, LOW, HIGH)
    a, u, _ = dist.rsample(np.random.default_rng(1))
    logp = dist.log_prob_from_pre_tanh(u)
    q, _ = q_values(critic, theta, obs, a)
    expect = batch.rewards + 0.9 * (1 - batch.terminated) * (np.minimum(q[0], q[2]) - 0.3 * logp)
    np.testing.assert_allclose(y, expect, rtol=1e-12)
    assert np.all((a > LOW) & (a < HIGH))


def test_float32_networks_give_float32_gradients():
    actor, critic, phi, theta, obs, rng = _nets(5, dtype=np.float32)
    loss, dphi, logp = actor_gradient(actor, phi, critic, theta, obs, 0.2, LOW, HIGH, rng,
                                      workspaces=(actor.workspace(), EnsembleWorkspace(critic)))
    assert dphi.dtype == np.float32 and logp.dtype == np.float32
    loss_q, grad = critic_gradient(critic, theta, obs, rng.uniform(LOW, HIGH, (B, D)),
                                   np.zeros(B, np.float32))
    assert grad.dtype == np.float32 and grad.shape == theta.shape


# --- the squashed, rescaled density integrates to 1 over the box -----------------------------


def test_tanh_gaussian_with_bounds_integrates_to_one_1d():
    n = 200_000                                            # midpoint rule over [low, high]
    edges = np.linspace(-2.0, 3.0, n + 1)
    a = 0.5 * (edges[1:] + edges[:-1])
    dists = TanhGaussian(np.full((n, 1), 0.4), np.full((n, 1), -0.3), low=-2.0, high=3.0)
    p = np.exp(dists.log_prob(a[:, None]))
    assert np.sum(p) * (edges[1] - edges[0]) == pytest.approx(1.0, abs=1e-4)


def test_tanh_gaussian_with_bounds_integrates_to_one_2d():
    n = 800
    lo, hi = np.array([-1.0, 0.0]), np.array([1.0, 4.0])
    g0 = lo[0] + (np.arange(n) + 0.5) * (hi[0] - lo[0]) / n
    g1 = lo[1] + (np.arange(n) + 0.5) * (hi[1] - lo[1]) / n
    a = np.stack(np.meshgrid(g0, g1, indexing="ij"), axis=-1).reshape(-1, 2)
    m = np.broadcast_to([0.3, -0.5], a.shape)
    s = np.broadcast_to([-0.6, 0.2], a.shape)
    p = np.exp(TanhGaussian(m, s, lo, hi).log_prob(a))
    cell = np.prod((hi - lo) / n)
    assert np.sum(p) * cell == pytest.approx(1.0, abs=2e-3)


# --- colored exploration noise (Eberhard et al. 2023) -----------------------------------------


@pytest.mark.parametrize("beta", [0.0, 1.0, 2.0])
@pytest.mark.parametrize("T", [64, 65])
def test_colored_noise_has_unit_variance_and_its_spectrum_autocorrelation(beta, T):
    n = 4000
    x = colored_noise(beta, (n, T), np.random.default_rng(0))
    assert x.shape == (n, T) and x.dtype == np.float64
    # every time step is N(0, 1) across sequences (stationary, exactly unit variance)
    np.testing.assert_allclose(x.var(axis=0).mean(), 1.0, atol=0.02)
    np.testing.assert_allclose(x.mean(), 0.0, atol=0.02)
    # lag-1 autocorrelation = sum_k S(f_k) cos(2 pi f_k) / sum_k S(f_k), S = f^-beta
    f = np.fft.rfftfreq(T)
    f[0] = 1.0 / T
    w2 = f ** -beta
    c = np.full(len(f), 2.0)             # weights: DC and (even T) Nyquist count once
    c[0] = 1.0
    if T % 2 == 0:
        c[-1] = 1.0
    rho = np.sum(c * w2 * np.cos(2 * np.pi * np.fft.rfftfreq(T))) / np.sum(c * w2)
    emp = np.mean(x[:, 1:] * x[:, :-1])
    assert emp == pytest.approx(rho, abs=0.02)
    if beta == 0.0:
        assert abs(emp) < 0.02
    else:
        assert emp > 0.5                 # pink and red noise are correlated in time


def test_colored_noise_is_deterministic_and_rejects_bad_input():
    a = colored_noise(1.0, (2, 3, 100), np.random.default_rng(3))
    np.testing.assert_array_equal(a, colored_noise(1.0, (2, 3, 100), np.random.default_rng(3)))
    assert not np.array_equal(a, colored_noise(1.0, (2, 3, 100), np.random.default_rng(4)))
    for beta, shape in [(-1.0, (5,)), (float("nan"), (5,)), ("1", (5,)), (1.0, (1,)),
                        (1.0, ()), (1.0, (0, 5))]:
        with pytest.raises(ValueError, match="beta|shape"):
            colored_noise(beta, shape, np.random.default_rng(0))


def test_float32_loss_values_accumulate_in_float64():
    from fractions import Fraction
    f = np.float32
    y = np.full(64, 1e19, f)                     # squares 1e38 fit float32; their sum does not
    value, dq = critic_loss(np.zeros((1, 64), f), y)
    assert value == float(Fraction(float(y[0])) ** 2)  # sum of 64 equal terms / 64
    assert dq.dtype == f and np.all(dq == f(-2 * float(y[0]) / 64))
    value, _ = critic_loss(np.zeros((1, 64), f), y, weights=np.full(64, 2.0, f))
    assert value == float(2 * Fraction(float(y[0])) ** 2)
    logp = np.full(64, -1e37, f)                 # alpha logp - Q summed over 64: 6.4e38
    value, dlogp, dq = actor_loss(logp, np.zeros((1, 64), f), 1.0)
    assert value == float(f(-1e37)) and dlogp.dtype == f
    value, _, _ = actor_loss(logp, np.full((2, 64), -3e38, f), 1.0)
    assert value == float(Fraction(float(f(-1e37))) - Fraction(float(f(-3e38))))


def test_critic_loss_when_q_minus_y_overflows_float32():
    """Twin float32 critics at +-2e38 against targets of -+2e38: q - y = 4e38 is beyond
    float32, the loss (4e38)^2 fits float64, and 2 (q - y) / B fits float32 for B = 4."""
    from fractions import Fraction
    from minirl.objectives.sac import critic_loss
    f = np.float32
    q = np.array([[2e38, 0.0, 1.0, -2e38], [2e38, 3.0, 0.0, 0.0]], f)
    y = np.array([-2e38, 0.0, 0.0, 2e38], f)
    w = np.array([1.0, 1.0, 2.0, 0.5], f)
    for weights in (None, w):
        ws = np.ones(4) if weights is None else weights
        r = [[Fraction(float(q[k, i])) - Fraction(float(y[i])) for i in range(4)]
             for k in range(2)]
        value, dq = critic_loss(q, y, weights=weights)
        exact = sum(Fraction(float(ws[i])) * r[k][i] ** 2 for k in range(2) for i in range(4)) / 4
        assert value == pytest.approx(float(exact), rel=1e-15)
        assert dq.dtype == f
        np.testing.assert_array_equal(dq, np.array(
            [[float(2 * Fraction(float(ws[i])) * r[k][i] / 4) for i in range(4)]
             for k in range(2)], f))
    _, dq = critic_loss(q[:, :1], y[:1])   # 2 * 4e38 / 1 beyond float32: +inf (documented)
    np.testing.assert_array_equal(dq, np.full((2, 1), np.inf, f))
