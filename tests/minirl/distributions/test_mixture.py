"""Tests for minirl/distributions/mixture.py: MixtureOfGaussians."""
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import integrate, stats

from minirl.distributions import DiagGaussian, MixtureOfGaussians
from minirl.testing.gradcheck import check_gradient

batch_shapes = st.lists(st.integers(1, 3), min_size=0, max_size=2).map(tuple)
components = st.integers(1, 3)
dims = st.integers(1, 3)
seeds = st.integers(0, 2**32 - 1)
# free parameters shared across the batch, or full network outputs
kinds = st.sampled_from(["free", "full"])


def _params(rng, shape, K, D, logit_kind="full", std_kind="full"):
    logits = rng.standard_normal((K,) if logit_kind == "free" else shape + (K,))
    means = 1.5 * rng.standard_normal(shape + (K, D))
    log_stds = rng.uniform(-1.0, 0.5, size=(K, D) if std_kind == "free" else shape + (K, D))
    return logits, means, log_stds


@given(batch_shapes, components, dims, seeds, kinds, kinds)
def test_log_prob_backward_matches_finite_differences(shape, K, D, seed, logit_kind, std_kind):
    rng = np.random.default_rng(seed)
    logits, means, log_stds = _params(rng, shape, K, D, logit_kind, std_kind)
    # actions near the mixture so several components carry responsibility
    a = means[..., 0, :] + rng.standard_normal(shape + (D,))
    dlogp = rng.standard_normal(shape)
    dlogits, dmeans, dlog_stds = MixtureOfGaussians(logits, means, log_stds).log_prob_backward(
        a, dlogp)
    assert (dlogits.shape, dmeans.shape, dlog_stds.shape) == (
        logits.shape, means.shape, log_stds.shape)
    check_gradient(lambda x: MixtureOfGaussians(x, means, log_stds).log_prob(a), logits,
                   dlogits, dlogp)
    check_gradient(lambda x: MixtureOfGaussians(logits, x, log_stds).log_prob(a), means,
                   dmeans, dlogp)
    check_gradient(lambda x: MixtureOfGaussians(logits, means, x).log_prob(a), log_stds,
                   dlog_stds, dlogp)


@given(batch_shapes, components, dims, seeds)
def test_log_prob_matches_naive_sum_and_weights_sum_to_one(shape, K, D, seed):
    rng = np.random.default_rng(seed)
    logits, means, log_stds = _params(rng, shape, K, D)
    a = rng.standard_normal(shape + (D,))
    mog = MixtureOfGaussians(logits, means, log_stds)
    w = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    dens = np.prod(stats.norm.pdf(a[..., None, :], means, np.exp(log_stds)), axis=-1)
    np.testing.assert_allclose(mog.log_prob(a), np.log(np.sum(w * dens, -1)), rtol=1e-10)
    np.testing.assert_allclose(mog.weights.sum(-1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(mog.responsibilities(a).sum(-1), 1.0, rtol=1e-12)


@given(batch_shapes, dims, seeds)
def test_one_component_is_a_diag_gaussian(shape, D, seed):
    rng = np.random.default_rng(seed)
    logits, means, log_stds = _params(rng, shape, 1, D)
    a = rng.standard_normal(shape + (D,))
    mog, gauss = MixtureOfGaussians(logits, means, log_stds), DiagGaussian(means[..., 0, :],
                                                                          log_stds[..., 0, :])
    np.testing.assert_allclose(mog.log_prob(a), gauss.log_prob(a), rtol=1e-12)
    dlogp = rng.standard_normal(shape)
    dlogits, dmeans, dlog_stds = mog.log_prob_backward(a, dlogp)
    gm, gs = gauss.log_prob_backward(a, dlogp)
    np.testing.assert_allclose(dlogits, 0.0, atol=1e-12)
    np.testing.assert_allclose(dmeans[..., 0, :], gm, rtol=1e-12)
    np.testing.assert_allclose(dlog_stds[..., 0, :], gs, rtol=1e-12)


def test_log_prob_is_finite_far_from_every_component():
    mog = MixtureOfGaussians([0.0, 0.0], [[-1.0], [1.0]], [[-2.0], [-2.0]])
    far = np.array([1e3])
    with np.errstate(divide="ignore"):
        naive = np.log(np.sum(0.5 * stats.norm.pdf(1e3, [-1.0, 1.0], math.exp(-2.0))))
    assert naive == -np.inf
    logp = mog.log_prob(far)
    # the nearest component (mu = 1) dominates: log(1/2) + log N(1e3; 1, e^-2)
    np.testing.assert_allclose(logp, math.log(0.5) + stats.norm.logpdf(1e3, 1.0, math.exp(-2.0)))
    assert all(np.all(np.isfinite(g)) for g in mog.log_prob_backward(far, 1.0))


@pytest.mark.parametrize("logits, means, log_stds", [
    ([0.0, 0.0], [[-2.0], [2.0]], [[0.0], [-1.0]]),
    ([1.0, -0.5, 0.3], [[0.0], [0.5], [4.0]], [[-0.5], [0.3], [-1.5]]),
])
def test_density_integrates_to_one(logits, means, log_stds):
    mog = MixtureOfGaussians(logits, means, log_stds)
    total, _ = integrate.quad(lambda x: math.exp(mog.log_prob([x])), -np.inf, np.inf,
                              epsabs=1e-10, epsrel=1e-10, limit=200)
    assert abs(total - 1.0) < 1e-6


def test_sample_moments():
    n = 30_000
    logits = np.log([0.2, 0.5, 0.3])
    mus, stds = np.array([-3.0, 0.0, 2.0]), np.array([0.5, 1.0, 0.3])
    mog = MixtureOfGaussians(logits, np.broadcast_to(mus[:, None], (n, 3, 1)),
                             np.log(stds)[:, None])
    a = mog.sample(np.random.default_rng(21))[:, 0]
    w = np.exp(logits)
    mean = np.sum(w * mus)
    var = np.sum(w * (stds**2 + mus**2)) - mean**2
    assert abs(a.mean() - mean) < 5 * math.sqrt(var / n)
    fourth = np.mean((a - mean) ** 4)
    assert abs(a.var(ddof=1) - var) < 5 * math.sqrt((fourth - var**2) / n)


def test_component_frequencies_match_weights():
    # components 100 standard deviations apart: the sample's bin identifies its component
    n, w = 30_000, np.array([0.2, 0.5, 0.3])
    mog = MixtureOfGaussians(np.log(w), np.broadcast_to([[-100.0], [0.0], [100.0]], (n, 3, 1)),
                             np.zeros((3, 1)))
    a = mog.sample(np.random.default_rng(22))[:, 0]
    counts = np.array([np.sum(a < -50), np.sum(np.abs(a) < 50), np.sum(a > 50)])
    assert counts.sum() == n
    assert np.all(np.abs(counts - n * w) < 5 * np.sqrt(n * w * (1 - w))), (counts, n * w)


def test_mode_is_mean_of_most_probable_component_and_float32_is_kept():
    f = np.float32
    logits = np.array([[0.0, 2.0], [1.0, -1.0]], f)
    means = np.array([[[1.0, 1.0], [5.0, 6.0]], [[-1.0, -2.0], [0.0, 0.0]]], f)
    mog = MixtureOfGaussians(logits, means, np.zeros((2, 2), f))
    np.testing.assert_array_equal(mog.mode(), [[5.0, 6.0], [-1.0, -2.0]])
    a = mog.sample(np.random.default_rng(0))
    assert a.dtype == mog.mode().dtype == mog.log_prob(a).dtype == f
    assert all(g.dtype == f for g in mog.log_prob_backward(a, np.ones(2)))


def test_entropy_and_kl_are_not_available_in_closed_form():
    mog = MixtureOfGaussians([0.0], [[0.0]], [[0.0]])
    with pytest.raises(NotImplementedError, match="sample"):
        mog.entropy()
    with pytest.raises(NotImplementedError, match="sample"):
        mog.kl(mog)


def test_bad_input_raises_named_errors():
    with pytest.raises(ValueError, match="means"):
        MixtureOfGaussians([0.0], [0.0], [0.0])
    with pytest.raises(ValueError, match="logits"):
        MixtureOfGaussians(np.zeros(3), np.zeros((2, 1)), 0.0 * np.ones((2, 1)))
    with pytest.raises(ValueError, match="logits"):
        MixtureOfGaussians(np.zeros((4, 2)), np.zeros((2, 1)), np.zeros((2, 1)))
    with pytest.raises(ValueError, match="log_stds"):
        MixtureOfGaussians(np.zeros(2), np.zeros((2, 1)), np.zeros((3, 1)))
    with pytest.raises(ValueError, match="means"):
        MixtureOfGaussians(np.zeros(2), np.array([[np.nan], [0.0]]), np.zeros((2, 1)))
    mog = MixtureOfGaussians(np.zeros((3, 2)), np.zeros((3, 2, 4)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="^a "):
        mog.log_prob(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="dlogp"):
        mog.log_prob_backward(np.zeros((3, 4)), np.zeros(4))
    with pytest.raises(TypeError, match="rng"):
        mog.sample(np.random.RandomState(0))


def test_pickle_rebuilds_an_equal_distribution():
    import pickle

    d = MixtureOfGaussians(np.zeros(2), np.ones((3, 2, 1)), np.zeros((2, 1)))
    e = pickle.loads(pickle.dumps(d))
    for name in ("logits", "means", "log_stds", "weights"):
        np.testing.assert_array_equal(getattr(e, name), getattr(d, name))


# -- extreme but representable inputs (issue: no silent NaN) ----------------------------------

def test_mixture_extreme_weights_stds_and_far_actions():
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = MixtureOfGaussians(np.array([1e308, -1e308]), np.array([[0.0], [1.0]]),
                               np.zeros((2, 1)))
        np.testing.assert_allclose(m.log_prob(np.array([1.0])), -0.5 - 0.5 * math.log(2 * math.pi))
        dlogits, dmeans, dlog_stds = m.log_prob_backward(np.array([1.0]), 1.0)
        np.testing.assert_array_equal(dlogits, [0.0, 0.0])
        np.testing.assert_array_equal(dmeans, [[1.0], [0.0]])
        np.testing.assert_array_equal(dlog_stds, [[0.0], [0.0]])
        # float32 std underflow at log_std -110: the density at the mean is finite
        f = MixtureOfGaussians(np.zeros(2, np.float32), np.zeros((2, 1), np.float32),
                               np.full((2, 1), -110.0, np.float32))
        np.testing.assert_allclose(f.log_prob(np.zeros(1, np.float32)),
                                   110.0 - 0.5 * math.log(2 * math.pi), rtol=1e-6)
        # one component unreachably far: it gets responsibility 0, the other carries the rest
        far = MixtureOfGaussians(np.zeros(2), np.array([[0.0], [1e300]]), np.zeros((2, 1)))
        np.testing.assert_array_equal(far.responsibilities(np.array([0.0])), [1.0, 0.0])
        np.testing.assert_allclose(far.log_prob(np.array([0.0])),
                                   math.log(0.5) - 0.5 * math.log(2 * math.pi))
        # every component unreachably far: log_prob -inf, the posterior is a named error
        assert far.log_prob(np.array([-1e300])) == -np.inf
        with pytest.raises(ValueError, match="a is so far"):
            far.log_prob_backward(np.array([-1e300]), 1.0)
