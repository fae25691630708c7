"""Tests for minirl/distributions/sde.py: the gSDE distribution (StateDependentNoise)."""
import math
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate

from minirl.distributions import SDE_EPSILON, DiagGaussian, StateDependentNoise, sample_noise
from minirl.distributions.sde import _act_with_noise
from minirl.testing.gradcheck import check_gradient

batch_shapes = st.lists(st.integers(1, 3), min_size=0, max_size=2).map(tuple)
dims = st.integers(1, 3)
feats = st.integers(1, 4)
seeds = st.integers(0, 2**32 - 1)
# Few examples: every one runs (batch + F + F*D) * 2 forward passes per check.
SETTINGS = settings(max_examples=30)


def _params(rng, shape, F, D, ls_shift=0.0):
    mean = rng.standard_normal(shape + (D,))
    log_std = rng.uniform(-1.0, 0.5, size=(F, D)) + ls_shift
    z = rng.standard_normal(shape + (F,))
    return mean, log_std, z


def _check_triple(q, mean, log_std, z, grads, dy):
    """Gradient-check (dmean, dlog_std, dfeatures) of q(mean, log_std, z), one at a time."""
    dmean, dlog_std, dz = grads
    assert dmean.shape == mean.shape and dlog_std.shape == log_std.shape and dz.shape == z.shape
    check_gradient(lambda m: q(m, log_std, z), mean, dmean, dy)
    check_gradient(lambda s: q(mean, s, z), log_std, dlog_std, dy)
    check_gradient(lambda f: q(mean, log_std, f), z, dz, dy)


def _implied(mean, log_std, z, eps=SDE_EPSILON):
    """The diagonal Gaussian of the implied variance, written out independently."""
    var = (np.asarray(z) ** 2) @ np.exp(2.0 * np.asarray(log_std)) + eps
    return DiagGaussian(mean, 0.5 * np.log(var))


# ----- gradients by central finite differences (float64) ------------------------------------


@SETTINGS
@given(batch_shapes, dims, feats, seeds)
def test_log_prob_backward(shape, D, F, seed):
    rng = np.random.default_rng(seed)
    mean, log_std, z = _params(rng, shape, F, D)
    a = mean + rng.standard_normal(shape + (D,))
    dlogp = rng.standard_normal(shape)
    grads = StateDependentNoise(mean, log_std, z).log_prob_backward(a, dlogp)
    _check_triple(lambda m, s, f: StateDependentNoise(m, s, f).log_prob(a),
                  mean, log_std, z, grads, dlogp)


@SETTINGS
@given(batch_shapes, dims, feats, seeds)
def test_entropy_backward(shape, D, F, seed):
    rng = np.random.default_rng(seed)
    mean, log_std, z = _params(rng, shape, F, D)
    dent = rng.standard_normal(shape)
    grads = StateDependentNoise(mean, log_std, z).entropy_backward(dent)
    assert not np.any(grads[0])
    _check_triple(lambda m, s, f: StateDependentNoise(m, s, f).entropy(),
                  mean, log_std, z, grads, dent)


@SETTINGS
@given(batch_shapes, dims, feats, seeds)
def test_kl_backward_both_sides(shape, D, F, seed):
    rng = np.random.default_rng(seed)
    p_args, q_args = _params(rng, shape, F, D), _params(rng, shape, F, D)
    dkl = rng.standard_normal(shape)
    gp, gq = StateDependentNoise(*p_args).kl_backward(StateDependentNoise(*q_args), dkl)
    _check_triple(lambda m, s, f: StateDependentNoise(m, s, f).kl(StateDependentNoise(*q_args)),
                  *p_args, gp, dkl)
    _check_triple(lambda m, s, f: StateDependentNoise(*p_args).kl(StateDependentNoise(m, s, f)),
                  *q_args, gq, dkl)


@SETTINGS
@given(batch_shapes, dims, feats, seeds, st.booleans())
def test_rsample_with_noise_backward(shape, D, F, seed, per_row):
    rng = np.random.default_rng(seed)
    mean, log_std, z = _params(rng, shape, F, D)
    eps = rng.standard_normal((shape if per_row else ()) + (F, D))
    da = rng.standard_normal(shape + (D,))
    grads = StateDependentNoise(mean, log_std, z).rsample_with_noise_backward(eps, da)
    _check_triple(lambda m, s, f: StateDependentNoise(m, s, f).rsample_with_noise(eps),
                  mean, log_std, z, grads, da)


def test_gradients_in_the_overflow_path():
    """log_std ~ 360: sigma^2 = e^720 overflows float64, so the log-space path runs; its
    gradients are checked the same way (the values are ~720, finite differences still hold)."""
    rng = np.random.default_rng(3)
    mean, log_std, z = _params(rng, (4,), 3, 2, ls_shift=360.0)
    z[0, 1] = 0.0                                           # a zero feature on that path too
    d = StateDependentNoise(mean, log_std, z)
    assert np.all(np.isfinite(d.gaussian.log_std)) and np.all(d.gaussian.log_std > 359)
    dent = rng.standard_normal(4)
    _check_triple(lambda m, s, f: StateDependentNoise(m, s, f).entropy(), mean, log_std, z,
                  d.entropy_backward(dent), dent)
    a = mean + np.exp(360.0) * rng.standard_normal((4, 2))
    dlogp = rng.standard_normal(4)
    _check_triple(lambda m, s, f: StateDependentNoise(m, s, f).log_prob(a), mean, log_std, z,
                  d.log_prob_backward(a, dlogp), dlogp)


# ----- the law of the action ----------------------------------------------------------------


def test_log_prob_is_the_implied_diagonal_gaussian():
    rng = np.random.default_rng(0)
    mean, log_std, z = _params(rng, (5,), 4, 3)
    a = rng.standard_normal((5, 3))
    d, ref = StateDependentNoise(mean, log_std, z), _implied(mean, log_std, z)
    np.testing.assert_allclose(d.log_prob(a), ref.log_prob(a), rtol=1e-12)
    np.testing.assert_allclose(d.entropy(), ref.entropy(), rtol=1e-12)
    q = StateDependentNoise(*_params(rng, (5,), 4, 3))
    np.testing.assert_allclose(d.kl(q), ref.kl(_implied(q.mean, q.log_std, q.features)),
                               rtol=1e-12)
    assert np.all(d.kl(q) > 0) and np.allclose(d.kl(d), 0.0)


@pytest.mark.parametrize("z", [[0.7, -1.3, 0.2], [0.0, 0.0, 0.0], [1e-4, 0.0, 0.0]])
def test_density_integrates_to_one(z):
    """D = 1: the integral of exp(log_prob) over the real line is 1 (also when var = eps)."""
    log_std = np.array([[-0.5], [0.3], [-2.0]])
    d = StateDependentNoise(np.array([0.4]), log_std, np.array(z))
    sd = float(np.exp(d.gaussian.log_std[0]))
    total, _ = integrate.quad(lambda x: math.exp(d.log_prob([x])), 0.4 - 40 * sd,
                              0.4 + 40 * sd, points=[0.4], limit=200)
    assert total == pytest.approx(1.0, abs=1e-8)


def test_held_noise_has_the_implied_variance():
    """Over many noise draws, a = mu + z^T (sigma * eps) has mean mu and variance
    z^2 @ sigma^2 per dimension (the epsilon is in the density only)."""
    rng = np.random.default_rng(0)
    mean, log_std, z = _params(rng, (2,), 4, 3)
    d = StateDependentNoise(mean, log_std, z)
    eps = sample_noise(log_std, rng, (20000, 2))                   # [M, 2, F, D]
    a = mean + np.einsum("bf,mbfd->mbd", z, np.exp(log_std) * eps)     # [M, 2, D]
    np.testing.assert_array_equal(d.rsample_with_noise(eps[7]), a[7])
    var = (z ** 2) @ np.exp(2 * log_std)
    np.testing.assert_allclose(a.mean(0), mean, atol=4 * np.sqrt(var.max() / 20000))
    np.testing.assert_allclose(a.var(0), var, rtol=0.05)
    np.testing.assert_allclose(d.sample(rng).shape, (2, 3))


def test_one_noise_matrix_for_the_batch_is_linear_in_the_features():
    """The same eps for every row: the noise is z(s)^T theta, so equal features give equal
    noise and doubling the features doubles it (state-dependent and smooth in z)."""
    rng = np.random.default_rng(1)
    log_std = rng.uniform(-1, 0, (3, 2))
    eps = sample_noise(log_std, rng)
    z = rng.standard_normal(3)
    d = StateDependentNoise(np.zeros((3, 2)), log_std, np.stack([z, z, 2 * z]))
    a = d.rsample_with_noise(eps)
    np.testing.assert_array_equal(a[0], a[1])
    np.testing.assert_allclose(a[2], 2 * a[0], rtol=1e-14)
    np.testing.assert_allclose(a[0], z @ (np.exp(log_std) * eps), rtol=1e-14)


# ----- extremes, validation, dtype, determinism ---------------------------------------------


def test_zero_features_give_the_epsilon_variance_not_nan():
    d = StateDependentNoise(np.zeros((2, 1)), np.zeros((3, 1)), np.zeros((2, 3)))
    np.testing.assert_allclose(d.gaussian.log_std, 0.5 * np.log(SDE_EPSILON))   # std 1e-3
    assert np.all(np.isfinite(d.log_prob(np.array([[0.0], [0.5]]))))
    for g in d.log_prob_backward(np.array([[0.0], [0.5]]), 1.0) + d.entropy_backward(1.0):
        assert np.all(np.isfinite(g))
    np.testing.assert_array_equal(d.rsample_with_noise(np.ones((3, 1))), np.zeros((2, 1)))


def test_huge_and_tiny_inputs_stay_finite_or_exact():
    # features 1e200: z^2 overflows; log std = log|z| + log sigma exactly
    d = StateDependentNoise(np.zeros(1), np.zeros((1, 1)), np.array([1e200]))
    np.testing.assert_allclose(d.gaussian.log_std, [200 * math.log(10)], rtol=1e-15)
    assert np.isfinite(d.log_prob([1e200])) and np.isfinite(d.entropy())
    # float32 with log_std 40: sigma^2 = e^80 overflows float32, not float64
    d32 = StateDependentNoise(np.zeros((1, 1), np.float32), np.full((2, 1), 40.0, np.float32),
                              np.ones((1, 2), np.float32))
    assert d32.dtype == np.float32 and np.isfinite(d32.log_prob(np.zeros((1, 1), np.float32)))


def test_held_noise_overflow_gives_the_right_signed_inf_not_nan():
    # sigma = e^800 overflows; the exact a_k = e^800 * sum_j z_j eps_jk: 1 - 1 + 1 > 0, 3 > 0
    d = StateDependentNoise(np.zeros((2, 1)), np.full((3, 1), 800.0),
                            np.array([[1.0, -1.0, 1.0], [1.0, 1.0, 1.0]]))
    np.testing.assert_array_equal(d.rsample_with_noise(np.ones((3, 1))), [[np.inf], [np.inf]])
    eps = np.array([[1.0], [1.0], [-3.0]])                      # 1 - 1 - 3 < 0, 1 + 1 - 3 < 0
    np.testing.assert_array_equal(d.rsample_with_noise(eps), [[-np.inf], [-np.inf]])
    per_row = np.stack([np.ones((3, 1)), eps])                  # [2, F, D]: one eps per row
    np.testing.assert_array_equal(d.rsample_with_noise(per_row), [[np.inf], [-np.inf]])
    # exact cancellation: e^800 * (1 - 1 + 0) = 0, and the mean survives
    d0 = StateDependentNoise(np.zeros(1), np.full((3, 1), 800.0), np.array([1.0, -1.0, 0.0]))
    np.testing.assert_array_equal(d0.rsample_with_noise(np.ones((3, 1))), [0.0])
    d0 = StateDependentNoise(np.array([0.25]), np.full((3, 1), 800.0), np.array([1.0, -1.0, 0.0]))
    np.testing.assert_allclose(d0.rsample_with_noise(np.ones((3, 1))), [0.25], rtol=1e-12)
    # the big terms cancel, a small one is the answer: e^800 (1 - 1) + e^-800 * 1e300 * 1
    d0 = StateDependentNoise(np.zeros(1), np.array([[800.0], [800.0], [-800.0]]),
                             np.array([1.0, -1.0, 1e300]))
    np.testing.assert_allclose(d0.rsample_with_noise(np.ones((3, 1))),
                               [math.exp(math.log(1e300) - 800)],
                               rtol=1e-12)
    # z_j sigma_jk overflows (1e308 * e^10): the direct sum gave -inf, the truth is +inf; and a
    # zero row stays exactly the mean
    d1 = StateDependentNoise(np.array([[0.0], [0.5]]), np.full((3, 1), 10.0),
                             np.array([[1e308, -1e308, 1e308], [0.0, 0.0, 0.0]]))
    np.testing.assert_array_equal(d1.rsample_with_noise(np.ones((3, 1))), [[np.inf], [0.5]])
    # a partial sum overflows but the total is finite: 1e308 + 1e308 - 1e308 = 1e308, and a
    # mean that cancels an overflowing noise: -1e308 + (1e308 + 0.5e308) = 0.5e308
    d2 = StateDependentNoise(np.zeros(1), np.zeros((3, 1)), np.array([1e308, 1e308, -1e308]))
    np.testing.assert_allclose(d2.rsample_with_noise(np.ones((3, 1))), [1e308], rtol=1e-13)
    d3 = StateDependentNoise(np.array([-1e308]), np.zeros((2, 1)), np.array([1e308, 0.5e308]))
    np.testing.assert_allclose(d3.rsample_with_noise(np.ones((2, 1))), [0.5e308], rtol=1e-13)
    # float32: sigma = e^100 overflows float32; the exact value e^100 * 1 is +inf in float32
    # too; with e^40 and z = 1e21 the partial sum 2 * 2.35e38 overflows, the total does not
    d32 = StateDependentNoise(np.zeros((1, 1), np.float32), np.full((3, 1), 100.0, np.float32),
                              np.array([[1.0, -1.0, 1.0]], np.float32))
    a32 = d32.rsample_with_noise(np.ones((3, 1), np.float32))
    assert a32.dtype == np.float32 and a32[0, 0] == np.inf
    d32 = StateDependentNoise(np.zeros((1, 1), np.float32), np.full((3, 1), 40.0, np.float32),
                              np.array([[1e21, 1e21, -1e21]], np.float32))
    a32 = d32.rsample_with_noise(np.ones((3, 1), np.float32))
    assert a32.dtype == np.float32
    np.testing.assert_allclose(a32, [[float(np.float32(1e21)) * math.exp(40.0)]], rtol=1e-6)
    # the normal path is unchanged: a finite direct result is returned bit for bit
    rng = np.random.default_rng(0)
    mean, log_std, z = _params(rng, (4,), 3, 2)
    eps = rng.standard_normal((3, 2))
    np.testing.assert_array_equal(StateDependentNoise(mean, log_std, z).rsample_with_noise(eps),
                                  mean + z @ (np.exp(log_std) * eps))
    # finite but |a| > 1e154 (the check's dot product overflows): still the direct result
    big = StateDependentNoise(mean * 1e300, log_std, z)
    np.testing.assert_array_equal(big.rsample_with_noise(eps),
                                  mean * 1e300 + z @ (np.exp(log_std) * eps))
    da = rng.standard_normal(mean.shape) * 1e300
    theta = np.exp(log_std) * eps
    _, dL, dz = big.rsample_with_noise_backward(eps, da)
    np.testing.assert_array_equal(dL, theta * (z.T @ da))
    np.testing.assert_array_equal(dz, da @ theta.T)


def test_held_noise_backward_overflow_gives_the_right_signed_inf_not_nan():
    # dlog_std_jk = sum_rows z_j sigma_jk eps_jk da_k, dfeatures_j = sum_k sigma_jk eps_jk da_k
    d = StateDependentNoise(np.zeros((2, 1)), np.full((3, 1), 10.0),
                            np.array([[1e308, -1e308, 1e308], [0.0, 0.0, 0.0]]))
    for eps in (np.ones((3, 1)), np.ones((2, 3, 1))):
        dmean, dL, dz = d.rsample_with_noise_backward(eps, np.ones((2, 1)))
        np.testing.assert_array_equal(dmean, np.ones((2, 1)))
        np.testing.assert_array_equal(dL, [[np.inf], [-np.inf], [np.inf]])
        np.testing.assert_allclose(dz, np.full((2, 3), math.exp(10.0)), rtol=1e-15)
    # sigma = e^800: z = 0 gives exactly 0 (not 0 * inf = NaN); two columns of opposite sign
    d0 = StateDependentNoise(np.zeros(2), np.full((3, 2), 800.0), np.array([1.0, -1.0, 0.0]))
    dmean, dL, dz = d0.rsample_with_noise_backward(np.ones((3, 2)), np.array([1.0, -2.0]))
    np.testing.assert_array_equal(dL, [[np.inf, -np.inf], [-np.inf, np.inf], [0.0, 0.0]])
    np.testing.assert_array_equal(dz, [-np.inf, -np.inf, -np.inf])    # e^800 * (1 - 2) < 0
    # each factor's largest sits in another row, so every scaled term is 2^-1200 (underflows):
    # dlog_std = 3 e^800 2^-1200 = 3 e^(800 - 1200 ln 2), finite
    t = 2.0 ** -600
    d3 = StateDependentNoise(np.zeros((3, 1)), np.full((1, 1), 800.0), np.array([[1.0], [t], [t]]))
    eps = np.array([[[t]], [[1.0]], [[t]]])
    dmean, dL, dz = d3.rsample_with_noise_backward(eps, np.array([[t], [t], [1.0]]))
    np.testing.assert_allclose(dL, [[3 * math.exp(800 - 1200 * math.log(2))]], rtol=1e-12)
    # the two columns cancel exactly: e^800 * (1 - 1) = 0; rows cancel in dlog_std: 0
    d1 = StateDependentNoise(np.zeros((2, 2)), np.full((1, 2), 800.0), np.array([[1.0], [-1.0]]))
    dmean, dL, dz = d1.rsample_with_noise_backward(np.ones((1, 2)), np.array([[1.0, -1.0]] * 2))
    np.testing.assert_array_equal(dL, [[0.0, 0.0]])
    np.testing.assert_array_equal(dz, [[0.0], [0.0]])


def _exact_float(x) -> float:
    """A Fraction (or mpmath number) rounded to float64, +-inf beyond the float range."""
    try:
        return float(x)
    except OverflowError:
        return math.inf if x > 0 else -math.inf


def _assert_close_or_inf(actual, expected, rtol):
    actual, expected = np.asarray(actual, np.float64).ravel(), np.ravel(expected)
    for x, r in zip(actual, expected):
        assert x == r or abs(x - r) <= rtol * abs(r), (x, r)


@pytest.mark.parametrize("seed", range(6))
def test_held_noise_overflow_matches_exact_rational_sums(seed):
    # log_std = 0 (sigma = 1 exactly) and z, eps, mean spanning the float range: every
    # a_k = mean_k + sum_j z_j eps_jk, dlog_std and dfeatures summed exactly as rationals
    from fractions import Fraction as Q
    rng = np.random.default_rng(seed)
    B, F, D = 3, 4, 2
    # magnitudes >= 1e-100: no product of two of them underflows (the direct backward
    # multiplies z * da before theta, and a finite direct result is kept as it is)
    mag = lambda *s: rng.choice([-1.0, 1.0], s) * 10.0 ** rng.uniform(-100, 308, s)
    z, eps, mean, da = mag(B, F), mag(B, F, D), mag(B, D), mag(B, D)
    eps[0, :2, 0] = [1e308, -1e308]                             # an exact cancellation
    z[0, :2] = 1.0
    d = StateDependentNoise(mean, np.zeros((F, D)), z)
    for e in (eps, eps[0]):
        E = np.broadcast_to(e, (B, F, D))
        a = d.rsample_with_noise(e)
        _, dL, dz = d.rsample_with_noise_backward(e, da)
        ref_a = [[_exact_float(Q(mean[b, k]) + sum(Q(z[b, j]) * Q(E[b, j, k]) for j in range(F)))
                  for k in range(D)] for b in range(B)]
        ref_dL = [[_exact_float(sum(Q(z[b, j]) * Q(E[b, j, k]) * Q(da[b, k]) for b in range(B)))
                   for k in range(D)] for j in range(F)]
        ref_dz = [[_exact_float(sum(Q(E[b, j, k]) * Q(da[b, k]) for k in range(D)))
                   for j in range(F)] for b in range(B)]
        _assert_close_or_inf(a, ref_a, 1e-14)
        _assert_close_or_inf(dL, ref_dL, 1e-14)
        _assert_close_or_inf(dz, ref_dz, 1e-14)


def test_held_noise_overflow_matches_high_precision_sums():
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 60
    rng = np.random.default_rng(1)
    B, F, D = 4, 3, 2
    for _ in range(20):                       # sigma up to e^715: the sums overflow or cancel
        L, z = 700.0 + rng.uniform(0, 15, (F, D)), rng.standard_normal((B, F))
        mean, da = rng.standard_normal((B, D)), rng.standard_normal((B, D))
        eps = rng.standard_normal((F, D))
        d = StateDependentNoise(mean, L, z)
        a = d.rsample_with_noise(eps)
        _, dL, dz = d.rsample_with_noise_backward(eps, da)
        sig = [[mpmath.exp(mpmath.mpf(L[j, k])) for k in range(D)] for j in range(F)]
        mp = mpmath.mpf
        ref_a = [[_exact_float(mp(mean[b, k]) + sum(mp(z[b, j]) * sig[j][k] * mp(eps[j, k])
                                                    for j in range(F)))
                  for k in range(D)] for b in range(B)]
        ref_dL = [[_exact_float(sum(mp(z[b, j]) * sig[j][k] * mp(eps[j, k]) * mp(da[b, k])
                                    for b in range(B))) for k in range(D)] for j in range(F)]
        ref_dz = [[_exact_float(sum(sig[j][k] * mp(eps[j, k]) * mp(da[b, k]) for k in range(D)))
                   for j in range(F)] for b in range(B)]
        _assert_close_or_inf(a, ref_a, 1e-12)
        _assert_close_or_inf(dL, ref_dL, 1e-12)
        _assert_close_or_inf(dz, ref_dz, 1e-12)


def test_float32_kept_and_float64_wins():
    f32 = [np.zeros((2, 1), np.float32), np.zeros((3, 1), np.float32), np.ones((2, 3), np.float32)]
    d = StateDependentNoise(*f32)
    assert d.dtype == np.float32 and d.log_prob(np.zeros((2, 1), np.float32)).dtype == np.float32
    assert all(g.dtype == np.float32 for g in d.log_prob_backward(np.zeros((2, 1)), 1.0))
    assert StateDependentNoise(f32[0], f32[1], f32[2].astype(np.float64)).dtype == np.float64


@pytest.mark.parametrize("kwargs,name", [
    (dict(mean=np.zeros((2, 1)), log_std=np.zeros(3), features=np.zeros((2, 3))), "log_std"),
    (dict(mean=np.zeros((2, 1)), log_std=np.zeros((3, 2)), features=np.zeros((2, 3))), "log_std"),
    (dict(mean=np.zeros((2, 1)), log_std=np.zeros((3, 1)), features=np.zeros((2, 4))), "features"),
    (dict(mean=np.zeros((2, 1)), log_std=np.zeros((3, 1)), features=np.zeros((3, 3))), "features"),
    (dict(mean=np.zeros((2, 1)), log_std=np.zeros((3, 1)), features=np.full((2, 3), np.nan)),
     "features"),
    (dict(mean=np.zeros((2, 1)), log_std=np.zeros((3, 1)), features=np.zeros((2, 3)),
          epsilon=0.0), "epsilon"),
    (dict(mean=np.zeros((2, 1)), log_std=np.zeros((3, 1)), features=np.zeros((2, 3)),
          epsilon=float("inf")), "epsilon"),
])
def test_invalid_arguments_are_named(kwargs, name):
    with pytest.raises(ValueError, match=name):
        StateDependentNoise(**kwargs)


def test_noise_shape_and_type_errors():
    d = StateDependentNoise(np.zeros((2, 1)), np.zeros((3, 1)), np.ones((2, 3)))
    with pytest.raises(ValueError, match="eps"):
        d.rsample_with_noise(np.zeros((4, 3, 1)))
    for bad in (np.nan, np.inf, -np.inf):     # held noise of the right shape and dtype too
        for shape in ((3, 1), (2, 3, 1)):
            eps = np.zeros(shape)
            eps[(0,) * len(shape)] = bad
            with pytest.raises(ValueError, match="eps contains NaN or inf"):
                d.rsample_with_noise(eps)
    empty = StateDependentNoise(np.zeros((0, 1)), np.zeros((3, 1)), np.ones((0, 3)))
    with pytest.raises(ValueError, match="eps contains NaN or inf"):
        empty.rsample_with_noise(np.full((3, 1), np.nan))
    with pytest.raises(TypeError, match="rng"):
        sample_noise(np.zeros((3, 1)), 0)
    with pytest.raises(ValueError, match="log_std"):
        sample_noise(np.zeros(3), np.random.default_rng(0))
    with pytest.raises(TypeError, match="StateDependentNoise"):
        d.kl(DiagGaussian(np.zeros((2, 1)), np.zeros(1)))


def test_same_seed_same_noise_and_samples():
    log_std = np.full((4, 2), -1.0)
    a, b = (sample_noise(log_std, np.random.default_rng(5), (3,)) for _ in range(2))
    np.testing.assert_array_equal(a, b)
    assert a.shape == (3, 4, 2)
    d = StateDependentNoise(np.zeros((3, 2)), log_std, np.ones((3, 4)))
    np.testing.assert_array_equal(d.sample(np.random.default_rng(9)),
                                  d.sample(np.random.default_rng(9)))


class _Sub(np.ndarray):
    """An ndarray subclass: StateDependentNoise takes its argument-by-argument validation."""


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_network_output_fast_path_is_bit_identical_to_the_validating_path(dtype):
    # Three plain ndarrays of one dtype (the actor's outputs every rollout step) skip the
    # per-argument validation and DiagGaussian's second one; every field must be the same bits.
    rng = np.random.default_rng(7)
    m, L, z = (rng.normal(size=s).astype(dtype) for s in ((5, 2), (8, 2), (5, 8)))
    fast = StateDependentNoise(m, L, z)
    slow = StateDependentNoise(m.view(_Sub), L.view(_Sub), z.view(_Sub))
    eps = sample_noise(L, rng, (5,))
    a = fast.rsample_with_noise(eps)
    pairs = [(fast.mean, slow.mean), (fast.log_std, slow.log_std),
             (fast.features, slow.features), (fast.gaussian.mean, slow.gaussian.mean),
             (fast.gaussian.log_std, slow.gaussian.log_std),
             (fast.gaussian.std, slow.gaussian.std), (a, slow.rsample_with_noise(eps)),
             (fast.log_prob(a), slow.log_prob(a)), (fast.entropy(), slow.entropy()),
             *zip(fast.log_prob_backward(a, np.ones(5)), slow.log_prob_backward(a, np.ones(5)))]
    for x, y in pairs:
        assert type(x) is np.ndarray and x.dtype == y.dtype == dtype
        assert x.shape == y.shape and x.tobytes() == y.tobytes()
    for arr in (fast.mean, fast.log_std, fast.features, fast.gaussian.log_std, fast.gaussian.std):
        assert not arr.flags.writeable
    m2 = m.copy()
    m2[1, 0] = np.nan
    with pytest.raises(ValueError, match="mean contains NaN or inf"):
        StateDependentNoise(m2, L, z)


# ----- the rollout's private fast path: bit for bit the public one ----------------------------


def _outcome(f):
    """``("ok", [(dtype, shape, bytes) of each result])`` or ``("error", type, message)``."""
    try:
        out = f()
    except (ValueError, TypeError) as e:
        return ("error", type(e), str(e))
    return ("ok", [(type(x), x.dtype, x.shape, np.ascontiguousarray(x).tobytes()) for x in out])


def _public_act(mean, log_std, z, eps):
    d = StateDependentNoise(mean, log_std, z)
    a = d.rsample_with_noise(eps)
    return a, d.log_prob(a)


def _assert_act_matches(mean, log_std, z, eps):
    fast = _outcome(lambda: _act_with_noise(mean, log_std, z, eps))
    assert fast == _outcome(lambda: _public_act(mean, log_std, z, eps))
    return fast


@given(batch_shapes, dims, st.integers(1, 8), seeds, st.booleans(),
       st.sampled_from([np.float32, np.float64]),
       st.sampled_from([0.0, -2.0, 3.0, -30.0, 40.0, -400.0, 400.0]),
       st.sampled_from([1.0, 0.0, 1e-30, 1e15, 1e30]))
def test_act_fast_path_is_bit_identical_to_the_public_path(shape, D, F, seed, per_row, dtype,
                                                           ls_shift, scale):
    # mean, log_std [F, D], features and the held eps (shared [F, D] or per row [..., F, D])
    # as an actor network emits them, float32 and float64, ordinary and extreme (sigma or a
    # product overflowing, var or std underflowing, huge features): the same action and
    # log-probability bits as StateDependentNoise(...).rsample_with_noise + log_prob.
    rng = np.random.default_rng(seed)
    mean, log_std, z = _params(rng, shape, F, D, ls_shift)
    mean, log_std, z = mean.astype(dtype), log_std.astype(dtype), (scale * z).astype(dtype)
    eps = sample_noise(log_std, rng, shape if per_row else ())
    _assert_act_matches(mean, log_std, z, eps)


def test_act_fast_path_takes_the_plain_path_on_network_outputs():
    # the rollout case (8 envs, 64 features, float32): answered by the fast path itself
    rng = np.random.default_rng(3)
    mean = rng.standard_normal((8, 1)).astype(np.float32)
    log_std = np.full((64, 1), -2.0, np.float32)
    z = np.tanh(rng.standard_normal((8, 64))).astype(np.float32)
    eps = sample_noise(log_std, rng, (8,))
    with mock.patch("minirl.distributions.sde.StateDependentNoise",
                    side_effect=AssertionError("public path used")):
        a, logp = _act_with_noise(mean, log_std, z, eps)
    assert a.shape == (8, 1) and logp.shape == (8,) and logp.dtype == np.float32
    _assert_act_matches(mean, log_std, z, eps)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("arg", ["mean", "log_std", "features", "eps"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_act_fast_path_raises_the_public_error_for_nan_and_inf(dtype, arg, bad):
    rng = np.random.default_rng(0)
    args = dict(zip(("mean", "log_std", "features"), _params(rng, (4,), 3, 2)))
    args = {k: v.astype(dtype) for k, v in args.items()}
    args["eps"] = sample_noise(args["log_std"], rng, (4,))
    args[arg] = args[arg].copy()
    args[arg].flat[1] = bad               # log_std = -inf: sigma 0, every other value finite
    out = _assert_act_matches(args["mean"], args["log_std"], args["features"], args["eps"])
    assert out[0] == "error" and arg in out[2]


def test_act_fast_path_other_inputs_go_the_public_way():
    rng = np.random.default_rng(1)
    mean, log_std, z = _params(rng, (3,), 4, 2)
    eps = sample_noise(log_std, rng, (3,))
    # non-contiguous views, mixed dtypes, lists, a wrong shape, an empty batch, epsilon types
    _assert_act_matches(np.asfortranarray(mean), log_std.T.copy().T, z[:, ::1], eps[:, ::-1])
    _assert_act_matches(np.repeat(mean, 2, axis=0)[::2], log_std, z, eps)
    _assert_act_matches(mean.astype(np.float32), log_std, z, eps)
    _assert_act_matches(mean.tolist(), log_std, z, eps)
    _assert_act_matches(mean, log_std, z, eps.astype(np.float32))
    out = _assert_act_matches(mean, log_std[:, :1], z, eps)
    assert out[0] == "error"
    _assert_act_matches(mean[:0], log_std, z[:0], eps[:0])
    for epsilon in (1e-3, 1, np.float64(1e-6)):
        assert (_outcome(lambda: _act_with_noise(mean, log_std, z, eps, epsilon))
                == _outcome(lambda: (lambda d: (d.rsample_with_noise(eps),
                                                d.log_prob(d.rsample_with_noise(eps))))(
                    StateDependentNoise(mean, log_std, z, epsilon))))


@pytest.mark.parametrize("dtype,tiny", [(np.float32, 1e-30), (np.float64, 1e-200)])
def test_constructor_under_errstate_all_raise(dtype, tiny):
    # (tester 10) the finiteness check's sum of squares underflows for tiny features: that is
    # harmless and must not raise FloatingPointError under np.errstate(all="raise")
    with np.errstate(all="raise"):
        d = StateDependentNoise(np.zeros((1, 1), dtype), np.zeros((2, 1), dtype),
                                np.array([[tiny, 0.5]], dtype))
    assert d.dtype == dtype
    assert np.array_equal(d.features, np.array([[tiny, 0.5]], dtype))
