"""Tests for minirl/distributions/gaussian.py: DiagGaussian and TanhGaussian."""
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import integrate

from minirl.distributions import ATANH_CLIP_EPS, DiagGaussian, TanhGaussian
from minirl.distributions.gaussian import log1m_tanh2
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
