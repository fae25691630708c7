"""Tests for minirl/distributions/gaussian.py: DiagGaussian and TanhGaussian."""
import math
from unittest import mock

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import integrate

from minirl.distributions import ATANH_CLIP_EPS, DiagGaussian, TanhGaussian
from minirl.distributions.gaussian import _sample_log_prob, log1m_tanh2
from minirl.testing.gradcheck import check_gradient

batch_shapes = st.lists(st.integers(1, 3), min_size=0, max_size=2).map(tuple)
dims = st.integers(1, 3)
seeds = st.integers(0, 2**32 - 1)
# log_std as a free [D] parameter, a scalar, or a full network output [..., D]
log_std_kinds = st.sampled_from(["vector", "scalar", "full"])


def _params(rng, shape, D, kind, mean_scale=1.0):
    mean = mean_scale * rng.standard_normal(shape + (D,))
    ls_shape = {"vector": (D,), "scalar": (), "full": shape + (D,)}[kind]
    log_std = rng.uniform(-1.0, 0.5, size=ls_shape)
    return mean, log_std


def _check_pair(f_mean, f_log_std, mean, log_std, grads, dy):
    """Gradient-check a (dmean, dlog_std) pair, each with the other parameter held fixed."""
    dmean, dlog_std = grads
    assert dmean.shape == mean.shape and dlog_std.shape == np.shape(log_std)
    check_gradient(f_mean, mean, dmean, dy)
    check_gradient(f_log_std, log_std, dlog_std, dy)


# ==============================================================================================
# DiagGaussian
# ==============================================================================================


@given(batch_shapes, dims, seeds, log_std_kinds)
def test_diag_log_prob_backward(shape, D, seed, kind):
    rng = np.random.default_rng(seed)
    mean, log_std = _params(rng, shape, D, kind)
    a = rng.standard_normal(shape + (D,))
    dlogp = rng.standard_normal(shape)
    grads = DiagGaussian(mean, log_std).log_prob_backward(a, dlogp)
    _check_pair(lambda m: DiagGaussian(m, log_std).log_prob(a),
                lambda s: DiagGaussian(mean, s).log_prob(a), mean, log_std, grads, dlogp)


@given(batch_shapes, dims, seeds, log_std_kinds)
def test_diag_entropy_backward(shape, D, seed, kind):
    rng = np.random.default_rng(seed)
    mean, log_std = _params(rng, shape, D, kind)
    dent = rng.standard_normal(shape)
    dmean, dlog_std = DiagGaussian(mean, log_std).entropy_backward(dent)
    assert dmean.shape == mean.shape and not np.any(dmean)
    check_gradient(lambda s: DiagGaussian(mean, s).entropy(), log_std, dlog_std, dent)


@given(batch_shapes, dims, seeds, log_std_kinds, log_std_kinds)
def test_diag_kl_backward_both_sides(shape, D, seed, kind_p, kind_q):
    rng = np.random.default_rng(seed)
    mp, sp = _params(rng, shape, D, kind_p)
    mq, sq = _params(rng, shape, D, kind_q)
    dkl = rng.standard_normal(shape)
    gp, gq = DiagGaussian(mp, sp).kl_backward(DiagGaussian(mq, sq), dkl)
    q = DiagGaussian(mq, sq)
    _check_pair(lambda m: DiagGaussian(m, sp).kl(q), lambda s: DiagGaussian(mp, s).kl(q),
                mp, sp, gp, dkl)
    p = DiagGaussian(mp, sp)
    _check_pair(lambda m: p.kl(DiagGaussian(m, sq)), lambda s: p.kl(DiagGaussian(mq, s)),
                mq, sq, gq, dkl)


@given(batch_shapes, dims, seeds, log_std_kinds, st.booleans())
def test_diag_rsample_backward(shape, D, seed, kind, with_logp):
    """Pathwise gradient of sum(da * a) + sum(dlogp * log_prob(a)) with eps held fixed."""
    rng = np.random.default_rng(seed)
    mean, log_std = _params(rng, shape, D, kind)
    _, eps = DiagGaussian(mean, log_std).rsample(rng)
    da = rng.standard_normal(shape + (D,))
    dlogp = rng.standard_normal(shape) if with_logp else None

    def path(m, s):
        d = DiagGaussian(m, s)
        a = d.mean + d.std * eps
        out = [a.ravel()] + ([np.ravel(d.log_prob(a))] if with_logp else [])
        return np.concatenate(out)

    dy = np.concatenate([da.ravel()] + ([np.ravel(dlogp)] if with_logp else []))
    grads = DiagGaussian(mean, log_std).rsample_backward(eps, da, dlogp)
    _check_pair(lambda m: path(m, log_std), lambda s: path(mean, s), mean, log_std, grads, dy)


def test_diag_rsample_returns_mean_plus_std_eps():
    d = DiagGaussian(np.array([[1.0, -2.0]]), np.log([0.5, 3.0]))
    a, eps = d.rsample(np.random.default_rng(3))
    np.testing.assert_allclose(a, d.mean + np.array([0.5, 3.0]) * eps)


@given(batch_shapes, dims, seeds, log_std_kinds)
def test_diag_entropy_closed_form_and_kl_identities(shape, D, seed, kind):
    rng = np.random.default_rng(seed)
    mean, log_std = _params(rng, shape, D, kind)
    p = DiagGaussian(mean, log_std)
    expected = 0.5 * D * math.log(2 * math.pi * math.e) + np.sum(
        np.broadcast_to(log_std, mean.shape), axis=-1)
    np.testing.assert_allclose(p.entropy(), expected, rtol=1e-12)
    np.testing.assert_allclose(p.kl(p), 0.0, atol=1e-12)
    q = DiagGaussian(*_params(rng, shape, D, kind))
    assert np.all(p.kl(q) >= -1e-12)


def test_diag_log_prob_literal_and_kl_literal():
    # 1-D N(1, 2^2) at a = 3: z = 1 -> -1/2 - log 2 - log(2 pi)/2.
    d = DiagGaussian([1.0], [math.log(2.0)])
    np.testing.assert_allclose(d.log_prob([3.0]), -0.5 - math.log(2) - 0.5 * math.log(2 * math.pi))
    # KL(N(0,1) || N(1, 2^2)) = log 2 + (1 + 1) / 8 - 1/2
    np.testing.assert_allclose(DiagGaussian([0.0], [0.0]).kl(d), math.log(2) + 0.25 - 0.5)


@pytest.mark.parametrize("mu, log_std", [(0.0, 0.0), (1.5, -1.0), (-3.0, 1.0)])
def test_diag_density_integrates_to_one(mu, log_std):
    d = DiagGaussian([mu], [log_std])
    total, _ = integrate.quad(lambda x: math.exp(d.log_prob([x])), -np.inf, np.inf,
                              epsabs=1e-10, epsrel=1e-10)
    assert abs(total - 1.0) < 1e-6


def test_diag_sample_moments():
    n = 20_000
    mu, std = np.array([0.5, -2.0, 0.0]), np.array([1.0, 0.3, 2.5])
    d = DiagGaussian(np.broadcast_to(mu, (n, 3)), np.log(std))
    a = d.sample(np.random.default_rng(7))
    assert np.all(np.abs(a.mean(0) - mu) < 5 * std / math.sqrt(n))
    var_se = std**2 * math.sqrt(2.0 / (n - 1))
    assert np.all(np.abs(a.var(0, ddof=1) - std**2) < 5 * var_se)
    np.testing.assert_array_equal(d.mode(), d.mean)


def test_diag_float32_is_kept():
    f = np.float32
    d = DiagGaussian(np.zeros((2, 3), f), np.zeros(3, f))
    a, eps = d.rsample(np.random.default_rng(0))
    assert a.dtype == eps.dtype == f
    assert d.log_prob(a).dtype == d.entropy().dtype == d.kl(d).dtype == f
    for g in (*d.log_prob_backward(a, np.ones(2)), *d.rsample_backward(eps, np.ones((2, 3)), 1.0)):
        assert g.dtype == f
    assert DiagGaussian(np.zeros(3, f), np.zeros(3)).dtype == np.float64


def test_diag_bad_input_raises_named_errors():
    d = DiagGaussian(np.zeros((2, 3)), np.zeros(3))
    with pytest.raises(ValueError, match="mean"):
        DiagGaussian([np.nan], [0.0])
    with pytest.raises(ValueError, match="log_std"):
        DiagGaussian([0.0], [np.inf])
    with pytest.raises(ValueError, match="log_std"):
        DiagGaussian(np.zeros((2, 3)), np.zeros(2))
    with pytest.raises(ValueError, match="log_std"):
        DiagGaussian(np.zeros(3), np.zeros((2, 3)))  # would enlarge the batch
    with pytest.raises(ValueError, match="mean"):
        DiagGaussian(0.0, 0.0)
    with pytest.raises(ValueError, match="^a "):
        d.log_prob(np.zeros(3))
    with pytest.raises(ValueError, match="^a "):
        d.log_prob(np.full((2, 3), np.nan))
    with pytest.raises(ValueError, match="dlogp"):
        d.log_prob_backward(np.zeros((2, 3)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="eps"):
        d.rsample_backward(np.zeros((3, 2)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="da"):
        d.rsample_backward(np.zeros((2, 3)), np.zeros(3))
    with pytest.raises(ValueError, match="other"):
        d.kl(DiagGaussian(np.zeros((2, 2)), 0.0))
    with pytest.raises(TypeError, match="other"):
        d.kl(TanhGaussian(np.zeros((2, 3)), 0.0))
    with pytest.raises(TypeError, match="rng"):
        d.sample(None)


# ==============================================================================================
# TanhGaussian
# ==============================================================================================


def _box(rng, D):
    low = -rng.uniform(0.5, 2.0, size=D)
    return low, low + rng.uniform(0.5, 3.0, size=D)


def _moderate_eps(rng, shape):
    # |eps| <= 2 keeps |u| <~ 5, where tanh's finite differences are still well conditioned.
    return np.clip(rng.standard_normal(shape), -2.0, 2.0)


@given(batch_shapes, dims, seeds, log_std_kinds)
def test_tanh_log_prob_from_pre_tanh_backward(shape, D, seed, kind):
    rng = np.random.default_rng(seed)
    mean, log_std = _params(rng, shape, D, kind)
    low, high = _box(rng, D)
    u = mean + np.exp(log_std) * _moderate_eps(rng, shape + (D,))
    dlogp = rng.standard_normal(shape)
    dist = TanhGaussian(mean, log_std, low, high)
    dmean, dlog_std, du = dist.log_prob_from_pre_tanh_backward(u, dlogp)
    _check_pair(lambda m: TanhGaussian(m, log_std, low, high).log_prob_from_pre_tanh(u),
                lambda s: TanhGaussian(mean, s, low, high).log_prob_from_pre_tanh(u),
                mean, log_std, (dmean, dlog_std), dlogp)
    check_gradient(dist.log_prob_from_pre_tanh, u, du, dlogp)


@given(batch_shapes, dims, seeds, log_std_kinds)
def test_tanh_log_prob_backward_for_a_fixed_action(shape, D, seed, kind):
    rng = np.random.default_rng(seed)
    mean, log_std = _params(rng, shape, D, kind)
    low, high = _box(rng, D)
    a, _, _ = TanhGaussian(mean, log_std, low, high).rsample(rng)
    dlogp = rng.standard_normal(shape)
    grads = TanhGaussian(mean, log_std, low, high).log_prob_backward(a, dlogp)
    _check_pair(lambda m: TanhGaussian(m, log_std, low, high).log_prob(a),
                lambda s: TanhGaussian(mean, s, low, high).log_prob(a),
                mean, log_std, grads, dlogp)


@given(batch_shapes, dims, seeds, log_std_kinds, st.sampled_from(["both", "da", "dlogp"]))
def test_tanh_rsample_backward_pushes_da_and_dlogp(shape, D, seed, kind, which):
    """SAC's actor loss alpha * logp(a) - Q(s, a): both terms move through the same eps."""
    rng = np.random.default_rng(seed)
    mean, log_std = _params(rng, shape, D, kind)
    low, high = _box(rng, D)
    eps = _moderate_eps(rng, shape + (D,))
    da = rng.standard_normal(shape + (D,)) if which != "dlogp" else np.zeros(shape + (D,))
    dlogp = rng.standard_normal(shape) if which != "da" else None

    def path(m, s):
        d = TanhGaussian(m, s, low, high)
        u = d.mean + d.std * eps
        a = d.offset + d.scale * np.tanh(u)
        logp = d.log_prob_from_pre_tanh(u)
        return np.concatenate([a.ravel(), np.ravel(logp)])

    dy = np.concatenate([da.ravel(), np.ravel(np.zeros(shape) if dlogp is None else dlogp)])
    grads = TanhGaussian(mean, log_std, low, high).rsample_backward(eps, da, dlogp)
    _check_pair(lambda m: path(m, log_std), lambda s: path(mean, s), mean, log_std, grads, dy)


@given(batch_shapes, dims, seeds)
def test_tanh_rsample_is_consistent_with_log_prob(shape, D, seed):
    rng = np.random.default_rng(seed)
    mean, log_std = _params(rng, shape, D, "full")
    low, high = _box(rng, D)
    dist = TanhGaussian(mean, log_std, low, high)
    a, u, eps = dist.rsample(rng)
    np.testing.assert_allclose(u, mean + np.exp(log_std) * eps)
    np.testing.assert_allclose(a, (high + low) / 2 + (high - low) / 2 * np.tanh(u))
    assert np.all((a >= low) & (a <= high))
    if np.all(np.abs(u) < 4):  # away from saturation the atanh round-trip is accurate
        np.testing.assert_allclose(dist.log_prob(a), dist.log_prob_from_pre_tanh(u), rtol=1e-8)


@given(batch_shapes, dims, seeds, log_std_kinds, log_std_kinds)
def test_tanh_kl_is_the_base_gaussian_kl(shape, D, seed, kind_p, kind_q):
    rng = np.random.default_rng(seed)
    (mp, sp), (mq, sq) = _params(rng, shape, D, kind_p), _params(rng, shape, D, kind_q)
    low, high = _box(rng, D)
    p, q = TanhGaussian(mp, sp, low, high), TanhGaussian(mq, sq, low, high)
    np.testing.assert_allclose(p.kl(q), DiagGaussian(mp, sp).kl(DiagGaussian(mq, sq)))
    np.testing.assert_allclose(p.kl(p), 0.0, atol=1e-12)
    dkl = rng.standard_normal(shape)
    (dmp, dsp), (dmq, dsq) = p.kl_backward(q, dkl)
    check_gradient(lambda m: TanhGaussian(m, sp, low, high).kl(q), mp, dmp, dkl)
    check_gradient(lambda s: p.kl(TanhGaussian(mq, s, low, high)), sq, dsq, dkl)


def test_tanh_log_prob_matches_naive_change_of_variables():
    rng = np.random.default_rng(5)
    mean, log_std = rng.standard_normal((50, 2)), rng.uniform(-1, 0.5, (50, 2))
    low, high = np.array([-1.0, 0.0]), np.array([1.0, 4.0])
    u = rng.uniform(-3, 3, (50, 2))
    std, scale = np.exp(log_std), (high - low) / 2
    log_normal = -0.5 * ((u - mean) / std) ** 2 - np.log(std) - 0.5 * math.log(2 * math.pi)
    naive = np.sum(log_normal - np.log(scale * (1 - np.tanh(u) ** 2)), axis=-1)
    dist = TanhGaussian(mean, log_std, low, high)
    np.testing.assert_allclose(dist.log_prob_from_pre_tanh(u), naive, rtol=1e-10)
    np.testing.assert_allclose(log1m_tanh2(u), np.log(1 - np.tanh(u) ** 2), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_tanh_log_prob_is_finite_for_saturated_u(dtype):
    u = np.array([[-20.0], [-12.0], [0.0], [12.0], [20.0]], dtype=dtype)
    dist = TanhGaussian(np.zeros((5, 1), dtype), np.full((5, 1), 3.0, dtype))
    logp = dist.log_prob_from_pre_tanh(u)
    assert logp.dtype == dtype and np.all(np.isfinite(logp))
    # exact asymptote: log(1 - tanh^2 u) = log 4 - 2|u| - 2 log(1 + e^{-2|u|})
    np.testing.assert_allclose(log1m_tanh2(np.array([20.0, -20.0])), math.log(4) - 40, rtol=1e-14)
    for g in dist.log_prob_from_pre_tanh_backward(u, np.ones(5)):
        assert np.all(np.isfinite(g))
    grads = dist.rsample_backward(u / np.exp(dtype(3.0)), np.ones((5, 1), dtype), np.ones(5))
    assert all(np.all(np.isfinite(g)) for g in grads)
    # an action on the bound: atanh is clipped at 1 - ATANH_CLIP_EPS, so the density is finite
    on_bound = np.array([[-1.0], [1.0], [0.0], [1.0], [-1.0]], dtype)
    u_clip = np.arctanh(np.clip(on_bound, -1 + ATANH_CLIP_EPS, 1 - ATANH_CLIP_EPS))
    np.testing.assert_allclose(dist.log_prob(on_bound), dist.log_prob_from_pre_tanh(u_clip))
    assert np.all(np.isfinite(dist.log_prob(on_bound)))


@pytest.mark.parametrize("mu, log_std, low, high",
                         [(0.0, 0.0, -1.0, 1.0), (0.5, -0.5, -2.0, 3.0), (-1.0, -0.2, 0.0, 10.0)])
def test_tanh_density_integrates_to_one_in_action_space(mu, log_std, low, high):
    d = TanhGaussian([mu], [log_std], low, high)
    total, _ = integrate.quad(lambda x: math.exp(d.log_prob([x])), low, high,
                              epsabs=1e-10, epsrel=1e-10, limit=200)
    assert abs(total - 1.0) < 1e-6


def test_tanh_sample_moments_match_quadrature():
    n, mu, log_std, low, high = 20_000, 0.4, -0.3, -2.0, 3.0
    d = TanhGaussian(np.full((n, 1), mu), [log_std], low, high)
    a = d.sample(np.random.default_rng(11))[:, 0]
    assert np.all((a >= low) & (a <= high))
    std, scale, offset = math.exp(log_std), (high - low) / 2, (high + low) / 2
    pdf = lambda u: math.exp(-0.5 * ((u - mu) / std) ** 2) / (std * math.sqrt(2 * math.pi))  # noqa
    m1 = integrate.quad(lambda u: (offset + scale * math.tanh(u)) * pdf(u), -np.inf, np.inf)[0]
    m2 = integrate.quad(lambda u: (offset + scale * math.tanh(u)) ** 2 * pdf(u), -np.inf, np.inf)[0]
    var = m2 - m1**2
    assert abs(a.mean() - m1) < 5 * math.sqrt(var / n)
    fourth = np.mean((a - m1) ** 4)  # SE of the sample variance ~ sqrt((mu4 - var^2) / n)
    assert abs(a.var(ddof=1) - var) < 5 * math.sqrt((fourth - var**2) / n)
    np.testing.assert_allclose(TanhGaussian([[mu]], [log_std], low, high).mode(),
                               [[offset + scale * math.tanh(mu)]])


def test_tanh_entropy_is_not_available_in_closed_form():
    d = TanhGaussian(np.zeros((2, 1)), 0.0)
    with pytest.raises(NotImplementedError, match="log_prob_from_pre_tanh"):
        d.entropy()
    with pytest.raises(NotImplementedError):
        d.entropy_backward(np.ones(2))


def test_tanh_float32_is_kept():
    f = np.float32
    d = TanhGaussian(np.zeros((2, 3), f), np.zeros(3, f), -2.0, 2.0)
    a, u, eps = d.rsample(np.random.default_rng(0))
    assert a.dtype == u.dtype == eps.dtype == d.mode().dtype == f
    assert d.log_prob(a).dtype == d.log_prob_from_pre_tanh(u).dtype == f
    for g in (*d.rsample_backward(eps, np.ones((2, 3)), np.ones(2)),
              *d.log_prob_from_pre_tanh_backward(u, np.ones(2))):
        assert g.dtype == f


def test_tanh_bad_input_raises_named_errors():
    d = TanhGaussian(np.zeros((2, 2)), 0.0, -1.0, [1.0, 2.0])
    with pytest.raises(ValueError, match="low"):
        TanhGaussian(np.zeros(2), 0.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="low"):
        TanhGaussian(np.zeros(2), 0.0, np.zeros(3), 1.0)
    with pytest.raises(ValueError, match="high"):
        TanhGaussian(np.zeros(2), 0.0, -1.0, np.nan)
    with pytest.raises(ValueError, match="^a "):
        d.log_prob(np.array([[0.0, 2.5], [0.0, 0.0]]))
    with pytest.raises(ValueError, match="^a "):
        d.log_prob(np.zeros(2))
    with pytest.raises(ValueError, match="^u "):
        d.log_prob_from_pre_tanh(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="dlogp"):
        d.rsample_backward(np.zeros((2, 2)), np.zeros((2, 2)), np.zeros(3))
    with pytest.raises(ValueError, match="low and high"):
        d.kl(TanhGaussian(np.zeros((2, 2)), 0.0))
    with pytest.raises(TypeError, match="other"):
        d.kl(DiagGaussian(np.zeros((2, 2)), 0.0))


def test_pickle_rebuilds_an_equal_distribution():
    import pickle

    for d in (DiagGaussian(np.ones((2, 3)), [0.1, 0.2, 0.3]),
              TanhGaussian(np.ones((2, 3)), 0.5, [-1.0, -2.0, 0.0], 3.0)):
        e = pickle.loads(pickle.dumps(d))
        assert type(e) is type(d)
        for name in ("mean", "log_std", "std"):
            np.testing.assert_array_equal(getattr(e, name), getattr(d, name))
    np.testing.assert_array_equal(e.low, d.low)
    np.testing.assert_array_equal(e.high, d.high)


# -- extreme but representable parameters (issue: no silent NaN) ------------------------------

def _no_warnings():
    import warnings
    cm = warnings.catch_warnings()
    cm.__enter__()
    warnings.simplefilter("error")
    return cm


@pytest.mark.parametrize("dtype,log_std", [(np.float32, -110.0), (np.float64, -800.0)])
def test_log_prob_where_std_underflows_to_zero_is_the_finite_density(dtype, log_std):
    cm = _no_warnings()
    try:
        d = DiagGaussian(np.zeros(2, dtype), np.full(2, log_std, dtype))
        assert d.std[0] == 0.0  # exp(log_std) underflowed in this dtype
        expected = 2 * (-log_std - 0.5 * math.log(2 * math.pi))  # 218.16 for float32 at -110
        np.testing.assert_allclose(d.log_prob(np.zeros(2, dtype)), expected, rtol=1e-6)
        assert d.log_prob(np.zeros(2, dtype)).dtype == dtype
        dmean, dlog_std = d.log_prob_backward(np.zeros(2, dtype), 1.0)
        np.testing.assert_array_equal(dmean, [0.0, 0.0])
        np.testing.assert_array_equal(dlog_std, [-1.0, -1.0])
        assert d.log_prob(np.ones(2, dtype)) == -np.inf  # z^2 beyond the largest float
        # a tiny offset is still a finite z in float64 (1e-300 * e^800 = 2.7e47)
        if dtype == np.float64:
            z = math.exp(math.log(1e-300) + 800.0)
            np.testing.assert_allclose(d.log_prob(np.array([1e-300, 0.0])),
                                       expected - 0.5 * z * z, rtol=1e-12)
    finally:
        cm.__exit__(None, None, None)
    np.testing.assert_allclose(
        DiagGaussian(np.zeros(2, np.float32), np.full(2, -110, np.float32)).log_prob(
            np.zeros(2, np.float32)), 218.16, atol=0.01)


def test_far_apart_means_and_huge_stds_give_the_right_finite_values():
    cm = _no_warnings()
    try:
        d = DiagGaussian(np.array([1e308]), np.array([709.0]))
        z = -2.0 * (1e308 / math.exp(709.0))  # a - mean overflows, z does not
        np.testing.assert_allclose(d.log_prob(np.array([-1e308])),
                                   -0.5 * z * z - 709.0 - 0.5 * math.log(2 * math.pi))
        dmean, dlog_std = d.log_prob_backward(np.array([-1e308]), 1.0)
        np.testing.assert_allclose(dmean, [z / math.exp(709.0)])
        np.testing.assert_allclose(dlog_std, [z * z - 1.0])
        # KL with stds e^{+-400} apart: x = log sp - log sq = -800 gives 0.5 expm1(-1600) + 800
        p, q = DiagGaussian(np.zeros(1), np.array([400.0])), DiagGaussian(np.zeros(1),
                                                                          np.array([-400.0]))
        assert p.kl(q) == np.inf
        assert q.kl(p) == 799.5
        (dm_q, dls_q), (dm_p, dls_p) = q.kl_backward(p, 1.0)
        np.testing.assert_array_equal(dls_q, [-1.0])
        np.testing.assert_array_equal(dls_p, [1.0])
        big, small = (DiagGaussian(np.zeros(1), np.array([s * 1e308])) for s in (1, -1))
        assert big.kl(small) == np.inf and small.kl(big) == np.inf
        assert small.log_prob(np.zeros(1)) == 1e308 - 0.5 * math.log(2 * math.pi)
        # KL near p == q keeps its precision (no 0.5 * (1 + 2x) - 0.5 - x cancellation)
        a, b = DiagGaussian(np.zeros(1), np.array([1e-9])), DiagGaussian(np.zeros(1), np.zeros(1))
        np.testing.assert_allclose(a.kl(b), 1e-18, rtol=1e-6)  # = x^2 + O(x^3)
    finally:
        cm.__exit__(None, None, None)


@pytest.mark.parametrize("dtype,u", [(np.float64, -1e308), (np.float32, -3e38)])
def test_tanh_gaussian_far_pre_tanh_values_and_huge_boxes(dtype, u):
    cm = _no_warnings()
    try:
        t = TanhGaussian(np.zeros(1, dtype), np.zeros(1, dtype))
        assert t.log_prob_from_pre_tanh(np.array([u], dtype)) == -np.inf  # not -inf - -inf
        assert log1m_tanh2(np.array([u], dtype))[0] == -np.inf
        np.testing.assert_allclose(t.log_prob_from_pre_tanh(np.array([-30.0], dtype)),
                                   -450.0 - 0.5 * math.log(2 * math.pi)
                                   - 2 * (math.log(2) - 30.0), rtol=1e-6)
        big = np.finfo(dtype).max / 2
        box = TanhGaussian(np.zeros(1, dtype), np.zeros(1, dtype), -big * 1.5, big * 1.5)
        np.testing.assert_allclose(box.scale, [big * 1.5], rtol=1e-6)  # high - low overflows
        assert box.offset[0] == 0.0
        assert np.isfinite(box.log_prob(np.array([big], dtype)))
    finally:
        cm.__exit__(None, None, None)


def test_float32_log_prob_fast_path_checks_the_action_and_matches_the_validating_path():
    # A float32 ndarray action of the right shape skips the per-argument validation (its
    # finiteness is read off its float64 sum): same bits as the validating path (a list),
    # and NaN/inf still the named error.
    rng = np.random.default_rng(3)
    d = DiagGaussian(rng.normal(size=(6, 3)).astype(np.float32),
                     rng.normal(size=3).astype(np.float32))
    a = (rng.normal(size=(6, 3)) * 1e3).astype(np.float32)
    a[0, 0] = np.float32(3e38)          # finite; the float32 sum would overflow
    fast, slow = d.log_prob(a), d.log_prob(a.tolist())
    assert fast.dtype == slow.dtype == np.float32 and fast.tobytes() == slow.tobytes()
    for bad in (np.nan, np.inf, -np.inf):
        b = a.copy()
        b[2, 1] = bad
        with pytest.raises(ValueError, match="a contains NaN or inf"):
            d.log_prob(b)


def test_diag_gaussian_kl_keeps_its_digits_near_equality():
    """0.5 expm1(2x) - x cancelled for small x = log sp - log sq (KL 1e-24 came out with ~1e-4
    relative error or 0): now a few ulp against 80-digit mpmath, never negative."""
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 80
    rng = np.random.default_rng(0)
    for _ in range(400):
        lp = rng.uniform(-3, 3)
        lq = lp + 10 ** rng.uniform(-17, 0) * rng.choice([-1, 1])
        m1 = rng.uniform(-1, 1)
        m2 = m1 + (10 ** rng.uniform(-17, 0) if rng.random() < 0.5 else 0.0)
        got = float(DiagGaussian(np.array([m1]), np.array([lp])).kl(
            DiagGaussian(np.array([m2]), np.array([lq]))))
        x = mpmath.mpf(lp) - mpmath.mpf(lq)
        d = (mpmath.mpf(m1) - mpmath.mpf(m2)) / mpmath.e ** mpmath.mpf(lq)
        exact = float(mpmath.e ** (2 * x) / 2 - mpmath.mpf(1) / 2 - x + d * d / 2)
        assert got >= 0.0
        assert got == pytest.approx(exact, rel=1e-14)


# ----- the rollout's private fast path: bit for bit the public one ----------------------------


def _outcome(f, rng):
    """``("ok", results' (dtype, shape, bytes), rng state)`` or ``("error", type, message,
    rng state)``."""
    try:
        out = [(type(x), x.dtype, x.shape, np.ascontiguousarray(x).tobytes()) for x in f()]
    except (ValueError, TypeError) as e:
        return ("error", type(e), str(e), rng.bit_generator.state)
    return ("ok", out, rng.bit_generator.state)


def _assert_sample_log_prob_matches(mean, log_std, seed=0):
    def public(rng):
        d = DiagGaussian(mean, log_std)
        a = d.sample(rng)
        return a, d.log_prob(a)
    r1, r2 = np.random.default_rng(seed), np.random.default_rng(seed)
    fast = _outcome(lambda: _sample_log_prob(mean, log_std, r1), r1)
    assert fast == _outcome(lambda: public(r2), r2)
    return fast


@given(batch_shapes, dims, seeds, st.sampled_from(["vector", "full"]),
       st.sampled_from([np.float32, np.float64]),
       st.sampled_from([0.0, -3.0, 2.0, -60.0, 60.0, -120.0, 100.0, -800.0, 800.0]),
       st.sampled_from([1.0, 1e-30, 1e18, 1e30, 1e300]))
def test_sample_log_prob_fast_path_is_bit_identical_to_the_public_path(shape, D, seed, kind,
                                                                       dtype, shift, scale):
    # mean [..., D] with log_std [D] or [..., D], float32 and float64, ordinary and extreme
    # (std under/overflowing, a huge mean, x - mean or z / std overflowing): the same action,
    # log-probability, error and generator state as DiagGaussian(...).sample + log_prob.
    rng = np.random.default_rng(seed)
    mean, log_std = _params(rng, shape, D, kind, mean_scale=scale)
    with np.errstate(over="ignore"):
        mean, log_std = mean.astype(dtype), (log_std + shift).astype(dtype)
    _assert_sample_log_prob_matches(mean, log_std, seed)


def test_sample_log_prob_fast_path_on_network_outputs_and_other_inputs():
    rng = np.random.default_rng(2)
    mean, log_std = rng.standard_normal((8, 2)).astype(np.float32), np.zeros(2, np.float32)
    with mock.patch("minirl.distributions.gaussian.DiagGaussian",
                    side_effect=AssertionError("public path used")):
        a, logp = _sample_log_prob(mean, log_std, np.random.default_rng(0))
        a1, logp1 = _sample_log_prob(mean[:1, :1], log_std[:1], np.random.default_rng(0))
    assert a.shape == (8, 2) and logp.shape == (8,) and logp.dtype == np.float32
    assert a1.shape == (1, 1) and logp1.shape == (1,) and logp1.dtype == np.float32
    _assert_sample_log_prob_matches(mean[:1, :1], log_std[:1])
    _assert_sample_log_prob_matches(mean, log_std)
    for m, s in [(np.asfortranarray(mean), log_std), (mean.T.copy().T, log_std[::-1]),
                 (mean, log_std.astype(np.float64)), (mean.tolist(), log_std),
                 (mean, np.zeros(3, np.float32)), (mean, np.float32(0.0)), (mean[:0], log_std),
                 (mean[:, :1], log_std[:1])]:
        _assert_sample_log_prob_matches(m, s)
    for arg in ("mean", "log_std"):
        for bad in (np.nan, np.inf, -np.inf):
            m, s = mean.copy(), log_std.copy()
            (m if arg == "mean" else s).flat[1] = bad
            out = _assert_sample_log_prob_matches(m, s)
            assert out[0] == "error" and arg in out[2]
    with pytest.raises(TypeError, match="rng"):
        _sample_log_prob(mean, log_std, 0)


@given(seeds, st.sampled_from([np.float32, np.float64]), st.booleans(),
       st.sampled_from([0.0, -3.0, 2.0, -60.0, 60.0, -120.0, 100.0, -800.0, 800.0]),
       st.sampled_from([1.0, 1e-30, 1e18, 1e30, 1e300]))
def test_sample_log_prob_one_entry_scalar_path_is_bit_identical(seed, dtype, full, shift, scale):
    # mean [1, 1] (one env, one action): log_prob on NumPy scalars, the same bits
    rng = np.random.default_rng(seed)
    with np.errstate(over="ignore"):
        mean = (scale * rng.standard_normal((1, 1))).astype(dtype)
        log_std = (rng.uniform(-1.0, 0.5, (1, 1) if full else (1,)) + shift).astype(dtype)
    _assert_sample_log_prob_matches(mean, log_std, seed)
    for special in (0.0, -0.0, np.nan, np.inf):
        _assert_sample_log_prob_matches(np.full((1, 1), special, dtype), log_std, seed)
        _assert_sample_log_prob_matches(mean, np.full(log_std.shape, special, dtype), seed)
