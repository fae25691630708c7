"""Tests for minirl/objectives/imitation.py: every BC loss's gradient against finite
differences (float64), hand-computed values, the autoregressive factorization, and the
diffusion forward process (closed form q(x_t|x_0) against iterating the chain)."""
import itertools

import numpy as np
import pytest

from minirl.objectives.imitation import (alpha_bars, autoregressive_inputs, autoregressive_nll,
                                         bin_centers, categorical_nll, cosine_beta_schedule,
                                         ddpm_reverse_step, diffusion_eps_loss, discretize,
                                         gaussian_nll, l2_loss, linear_beta_schedule,
                                         mixture_nll, q_sample, q_step, timestep_embedding)
from minirl.testing.gradcheck import check_gradient

RNG = np.random.default_rng(0)


def test_l2_loss_value_and_gradient():
    pred = np.array([[1.0, 2.0], [0.0, -1.0]])
    act = np.array([[0.0, 2.0], [1.0, 1.0]])
    value, d = l2_loss(pred, act)
    assert value == pytest.approx((1.0 + 0.0 + 1.0 + 4.0) / 2)      # sum over D, mean over B
    np.testing.assert_allclose(d, 2 * (pred - act) / 2)
    x = RNG.standard_normal((4, 3))
    a = RNG.standard_normal((4, 3))
    check_gradient(lambda p: np.array(l2_loss(p, a)[0]), x, l2_loss(x, a)[1], dy=1.0)


def test_categorical_nll_value_and_gradient():
    logits = np.log(np.array([[0.5, 0.25, 0.25], [0.1, 0.1, 0.8]]))
    value, d = categorical_nll(logits, np.array([0, 2]))
    assert value == pytest.approx(-(np.log(0.5) + np.log(0.8)) / 2)
    np.testing.assert_allclose(d, (np.exp(logits) - np.eye(3)[[0, 2]]) / 2)
    z = RNG.standard_normal((5, 4))
    a = RNG.integers(0, 4, 5)
    check_gradient(lambda p: np.array(categorical_nll(p, a)[0]), z, categorical_nll(z, a)[1],
                   dy=1.0)


def test_gaussian_nll_value_and_gradient():
    value, _ = gaussian_nll(np.zeros((1, 1)), np.zeros((1, 1)), np.ones((1, 1)))
    assert value == pytest.approx(0.5 + 0.5 * np.log(2 * np.pi))
    mean, log_std, a = (RNG.standard_normal((4, 2)) for _ in range(3))
    _, (dmean, dlog_std) = gaussian_nll(mean, log_std, a)
    check_gradient(lambda m: np.array(gaussian_nll(m, log_std, a)[0]), mean, dmean, dy=1.0)
    check_gradient(lambda s: np.array(gaussian_nll(mean, s, a)[0]), log_std, dlog_std, dy=1.0)


def test_mixture_nll_gradient_and_far_action_is_finite():
    b, k, d = 4, 3, 2
    logits, means, log_stds = (RNG.standard_normal((b, k)), RNG.standard_normal((b, k, d)),
                               0.3 * RNG.standard_normal((b, k, d)))
    a = RNG.standard_normal((b, d))
    _, (dl, dm, ds) = mixture_nll(logits, means, log_stds, a)
    check_gradient(lambda x: np.array(mixture_nll(x, means, log_stds, a)[0]), logits, dl, dy=1.0)
    check_gradient(lambda x: np.array(mixture_nll(logits, x, log_stds, a)[0]), means, dm, dy=1.0)
    check_gradient(lambda x: np.array(mixture_nll(logits, means, x, a)[0]), log_stds, ds, dy=1.0)
    # One component: the mixture NLL is the Gaussian NLL.
    v1, _ = mixture_nll(np.zeros((b, 1)), means[:, :1], log_stds[:, :1], a)
    v2, _ = gaussian_nll(means[:, 0], log_stds[:, 0], a)
    assert v1 == pytest.approx(v2, rel=1e-12)
    # 1e3 standard deviations from every mean: every density underflows, the NLL does not.
    far, g = mixture_nll(logits, means, np.zeros((b, k, d)), np.full((b, d), 1e3))
    assert np.isfinite(far) and far > 1e5 and np.all(np.isfinite(g[1]))


def test_mixture_density_integrates_to_one_on_a_grid():
    from minirl.distributions import MixtureOfGaussians
    grid = np.linspace(-12, 12, 24001)
    n = grid.size
    dist = MixtureOfGaussians(np.tile([0.3, -0.2], (n, 1)), np.tile([[-1.0], [1.5]], (n, 1, 1)),
                              np.array([[-0.5], [0.2]]))
    dens = np.exp(dist.log_prob(grid[:, None].copy()))
    assert np.trapezoid(dens, grid) == pytest.approx(1.0, abs=1e-8)


def test_discretize_and_bin_centers():
    low, high = np.array([-1.0, 0.0]), np.array([1.0, 4.0])
    a = np.array([[-1.0, 0.0], [1.0, 4.0], [0.01, 1.99]])
    b = discretize(a, low, high, 4)
    np.testing.assert_array_equal(b, [[0, 0], [3, 3], [2, 1]])     # top edge -> last bin
    np.testing.assert_allclose(bin_centers(b, low, high, 4), [[-0.75, 0.5], [0.75, 3.5],
                                                               [0.25, 1.5]])
    with pytest.raises(ValueError, match="actions"):
        discretize(np.array([[1.5, 0.0]]), low, high, 4)
    with pytest.raises(ValueError, match="n_bins"):
        discretize(a, low, high, 1)


def test_autoregressive_inputs_teacher_forcing_structure():
    obs = np.array([[7.0, 8.0]])
    bins = np.array([[2, 0, 1]])
    x = autoregressive_inputs(obs, bins, 3)          # [1, 3, 2 + 9 + 3]
    assert x.shape == (1, 3, 14)
    np.testing.assert_array_equal(x[0, :, :2], [[7, 8]] * 3)
    onehots = x[0, :, 2:11]
    np.testing.assert_array_equal(onehots[0], np.zeros(9))                 # p(b_1 | s)
    np.testing.assert_array_equal(onehots[1], [0, 0, 1] + [0] * 6)         # sees b_1 = 2
    np.testing.assert_array_equal(onehots[2], [0, 0, 1, 1, 0, 0, 0, 0, 0])  # b_1, b_2 = 0
    np.testing.assert_array_equal(x[0, :, 11:], np.eye(3))                 # position d


def test_autoregressive_nll_is_the_chain_rule_and_normalizes():
    """A tiny fixed 'network' logits = W x; sum over all n^D bin tuples of p(b|s) is 1."""
    n_bins, d, obs_dim = 3, 3, 2
    w = RNG.standard_normal((obs_dim + d * n_bins + d, n_bins))
    obs = RNG.standard_normal((1, obs_dim))
    total = 0.0
    for combo in itertools.product(range(n_bins), repeat=d):
        bins = np.array([combo])
        logits = autoregressive_inputs(obs, bins, n_bins) @ w
        value, _ = autoregressive_nll(logits, bins)
        total += np.exp(-value)
    assert total == pytest.approx(1.0, abs=1e-12)
    bins = RNG.integers(0, n_bins, (4, d))
    logits = RNG.standard_normal((4, d, n_bins))
    value, dlogits = autoregressive_nll(logits, bins)
    check_gradient(lambda z: np.array(autoregressive_nll(z, bins)[0]), logits, dlogits, dy=1.0)
    assert value == pytest.approx(sum(categorical_nll(logits[:, j], bins[:, j])[0]
                                      for j in range(d)))


def test_autoregressive_gradient_through_teacher_forced_inputs():
    """With teacher forcing the inputs are data, so the NLL of logits = x W is smooth in W."""
    n_bins, d = 4, 2
    obs, bins = RNG.standard_normal((5, 3)), RNG.integers(0, n_bins, (5, d))
    x = autoregressive_inputs(obs, bins, n_bins)
    w = RNG.standard_normal((x.shape[-1], n_bins))
    _, dlogits = autoregressive_nll(x @ w, bins)
    dw = np.einsum("bdi,bdj->ij", x, dlogits)
    check_gradient(lambda p: np.array(autoregressive_nll(x @ p, bins)[0]), w, dw, dy=1.0)


def test_beta_schedules():
    betas = cosine_beta_schedule(50)
    abar = alpha_bars(betas)
    assert betas.shape == (50,) and np.all((betas > 0) & (betas <= 0.999))
    assert np.all(np.diff(abar) < 0) and abar[-1] < 1e-3 and abar[0] > 0.99
    f = np.cos((np.arange(51) / 50 + 0.008) / 1.008 * np.pi / 2) ** 2   # Nichol & Dhariwal
    np.testing.assert_allclose(abar[:-1], (f / f[0])[1:-1], rtol=1e-12)
    lin = linear_beta_schedule(1000)
    assert lin[0] == 1e-4 and lin[-1] == 0.02
    with pytest.raises(ValueError, match="n_steps"):
        cosine_beta_schedule(0)
    with pytest.raises(ValueError, match="betas"):
        alpha_bars(np.array([0.5, 1.0]))


def test_closed_form_q_matches_iterating_the_chain():
    betas = cosine_beta_schedule(10)
    x0 = np.array([[0.7, -0.3]])
    # Exact: iterate the Gaussian chain's mean and variance, x_t = sqrt(1-b) x_{t-1} + sqrt(b) z.
    mean, var = x0.copy(), 0.0
    for t in range(1, 11):
        mean, var = np.sqrt(1 - betas[t - 1]) * mean, (1 - betas[t - 1]) * var + betas[t - 1]
        a = alpha_bars(betas)[t - 1]
        np.testing.assert_allclose(mean, np.sqrt(a) * x0, rtol=1e-12)
        assert var == pytest.approx(1 - a, rel=1e-12)
    # Monte Carlo: the chain sampled step by step has the closed form's moments at t = 4.
    rng = np.random.default_rng(1)
    n, t = 200_000, 4
    x = np.repeat(x0, n, axis=0)
    for s in range(1, t + 1):
        x = q_step(x, np.full(n, s), rng.standard_normal(x.shape), betas)
    closed = q_sample(np.repeat(x0, n, axis=0), np.full(n, t), rng.standard_normal((n, 2)), betas)
    a = alpha_bars(betas)[t - 1]
    se = np.sqrt((1 - a) / n)
    np.testing.assert_allclose(x.mean(0), np.sqrt(a) * x0[0], atol=5 * se)
    np.testing.assert_allclose(closed.mean(0), np.sqrt(a) * x0[0], atol=5 * se)
    np.testing.assert_allclose(x.var(0), 1 - a, rtol=0.02)
    np.testing.assert_allclose(closed.var(0), 1 - a, rtol=0.02)


def test_diffusion_eps_loss_value_and_gradient():
    e_hat, e = RNG.standard_normal((6, 2)), RNG.standard_normal((6, 2))
    value, d = diffusion_eps_loss(e_hat, e)
    assert value == pytest.approx(np.sum((e_hat - e) ** 2) / 6)
    check_gradient(lambda p: np.array(diffusion_eps_loss(p, e)[0]), e_hat, d, dy=1.0)


def test_reverse_step_with_the_true_noise_recovers_x0_at_t1_and_matches_eps_form():
    betas = cosine_beta_schedule(10)
    x0 = np.array([[0.4, -0.6]])
    eps = np.array([[0.3, 1.1]])
    x1 = q_sample(x0, np.array([1]), eps, betas)
    np.testing.assert_allclose(ddpm_reverse_step(x1, 1, eps, np.zeros_like(x0), betas), x0,
                               atol=1e-12)
    # Unclipped posterior mean == (x_t - beta_t / sqrt(1 - abar_t) eps) / sqrt(alpha_t).
    t, abar = 5, alpha_bars(betas)
    xt = RNG.standard_normal((3, 2))
    e = RNG.standard_normal((3, 2))
    got = ddpm_reverse_step(xt, t, e, np.zeros_like(xt), betas, clip=None)
    want = (xt - betas[t - 1] / np.sqrt(1 - abar[t - 1]) * e) / np.sqrt(1 - betas[t - 1])
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_timestep_embedding_distinct_per_step():
    emb = timestep_embedding(np.arange(1, 21), 20, 16)
    assert emb.shape == (20, 16)
    dists = np.linalg.norm(emb[:, None] - emb[None], axis=-1) + np.eye(20)
    assert dists.min() > 0.1


def test_bad_input_named_errors():
    with pytest.raises(ValueError, match="pred"):
        l2_loss(np.array([[np.nan]]), np.zeros((1, 1)))
    with pytest.raises(ValueError, match="actions"):
        l2_loss(np.zeros((2, 1)), np.zeros((3, 1)))
    with pytest.raises(ValueError, match="bins"):
        autoregressive_nll(np.zeros((2, 3, 4)), np.zeros((2, 2), np.int64))
    with pytest.raises(ValueError, match="t must"):
        q_sample(np.zeros((1, 1)), np.array([0]), np.zeros((1, 1)), cosine_beta_schedule(5))
    with pytest.raises(ValueError, match="logits"):
        mixture_nll(np.zeros((2, 2)), np.zeros((2, 3, 1)), np.zeros((2, 3, 1)), np.zeros((2, 1)))


def test_float32_squared_errors_accumulate_in_float64():
    from fractions import Fraction
    f = np.float32
    a = np.full((64, 2), 1e19, f)                # squares 1e38; the sum over 128 overflows f32
    for loss in (l2_loss, diffusion_eps_loss):
        value, grad = loss(np.zeros((64, 2), f), a)
        assert value == float(2 * Fraction(float(a[0, 0])) ** 2)   # sum over D, mean over B
        assert grad.dtype == f and np.all(grad == f(-2 * float(a[0, 0]) / 64))
    value, grad = l2_loss(np.array([[1e154]]), np.array([[-1e154]]))  # float64: 4e308 = inf
    assert value == np.inf and grad[0, 0] == 4e154


@pytest.mark.parametrize("loss", [l2_loss, diffusion_eps_loss])
def test_squared_error_losses_when_the_float32_difference_overflows(loss):
    """a_hat - a = +-4e38 is beyond float32: the value (sum over D, mean over B) fits
    float64, the gradient 2 (a_hat - a) / B = +-2e38 fits float32 for B = 4; with B = 1
    the true gradient 8e38 is beyond float32: +inf (documented)."""
    from fractions import Fraction
    f = np.float32
    pred = np.array([[2e38, 1.0], [-2e38, 0.0], [0.0, 0.0], [3.0, 0.0]], f)
    act = np.array([[-2e38, 0.0], [2e38, 0.0], [0.0, 0.0], [0.0, 0.0]], f)
    r = [[Fraction(float(p)) - Fraction(float(a)) for p, a in zip(pr, ar)]
         for pr, ar in zip(pred, act)]
    value, grad = loss(pred, act)
    assert value == pytest.approx(float(sum(x * x for row in r for x in row) / 4), rel=1e-15)
    assert grad.dtype == f
    np.testing.assert_array_equal(grad, np.array([[float(x / 2) for x in row] for row in r], f))
    value, grad = loss(pred[:1], act[:1])
    assert value == float(r[0][0] ** 2 + 1) and grad[0, 0] == np.inf and grad[0, 1] == 2.0


def test_nll_losses_when_the_float32_log_prob_is_beyond_float32():
    """Float32 parameters whose per-sample log-probability lies beyond float32 (logits 6e38
    apart; a Gaussian z^2 of 1.4e57): the loss is the true finite value (computed in
    float64), not inf, and the gradient is the float64 one rounded to float32 (+-inf only
    where that is beyond float32)."""
    import warnings
    from fractions import Fraction
    import mpmath
    f = np.float32
    z = np.array([[3e38, -3e38], [0.0, 0.0]], f)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value, dz = categorical_nll(z, np.array([1, 0]))
        gap = Fraction(float(z[0, 0])) - Fraction(float(z[0, 1]))   # -log p = gap + e^-gap
        assert value == float((gap + Fraction(float(np.log(2.0)))) / 2)
        np.testing.assert_array_equal(dz, np.array([[0.5, -0.5], [-0.25, 0.25]], f))
        value, dl = autoregressive_nll(z[:, None, :], np.array([[1], [0]]))
        assert value == float((gap + Fraction(float(np.log(2.0)))) / 2)
        np.testing.assert_array_equal(dl[:, 0, :], dz)
        # Gaussian: mean 0, log_std -20, a = 1e20: log p = -z^2/2 + 20 - log(2 pi)/2
        mpmath.mp.dps = 40
        mean, log_std = np.zeros((2, 1), f), np.full((2, 1), -20.0, f)
        a = np.array([[1e20], [0.0]], f)
        zz = mpmath.mpf(float(a[0, 0])) / mpmath.exp(mpmath.mpf(float(log_std[0, 0])))
        half_log_2pi = mpmath.log(2 * mpmath.pi) / 2
        exact = ((zz ** 2 / 2 - 20 + half_log_2pi) + (-20 + half_log_2pi)) / 2
        value, (dmean, dlog_std) = gaussian_nll(mean, log_std, a)
        assert value == pytest.approx(float(exact), rel=1e-13)
        assert dmean.dtype == f and dlog_std.dtype == f
        np.testing.assert_allclose(dmean[0, 0], float(-zz / mpmath.exp(-20) / 2), rtol=1e-6)
        assert dlog_std[0, 0] == -np.inf    # (1 - z^2) / 2 = -7e56: beyond float32
        assert dlog_std[1, 0] == f(0.5)
        # a two-component mixture with both components there: log p = log N (w = 1/2 each)
        value, (dlogits, dmeans, dlog_stds) = mixture_nll(
            np.zeros((2, 2), f), np.zeros((2, 2, 1), f), np.full((2, 2, 1), -20.0, f), a)
        assert value == pytest.approx(float(exact), rel=1e-13)
        np.testing.assert_array_equal(dlogits, np.zeros((2, 2), f))
        np.testing.assert_allclose(dmeans[0, :, 0], float(-zz / mpmath.exp(-20) / 4),
                                   rtol=1e-6)


def test_discretize_and_bin_centers_of_a_huge_finite_box():
    # high - low = 2.5e308 overflows: bins were all 0 (width inf) and centres inf/NaN
    low, high = np.array([-1e308, -1e308]), np.array([1e308, 1.5e308])
    a = np.array([[-1e308, 1.5e308], [0.0, 0.0], [9e307, -2e307]])
    assert discretize(a, low, high, 10).tolist() == [[0, 9], [5, 4], [9, 3]]
    c = bin_centers(np.array([[0, 9], [5, 4]]), low, high, 10)
    np.testing.assert_allclose(c, [[-9e307, 1.375e308], [1e307, 1.25e307]], rtol=1e-15)
