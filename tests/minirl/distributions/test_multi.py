"""Tests for minirl/distributions/multi.py: MultiCategorical and Bernoulli products."""
import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minirl.distributions import Bernoulli, Categorical, MultiCategorical
from minirl.testing.gradcheck import check_gradient

batch_shapes = st.lists(st.integers(1, 3), min_size=0, max_size=2).map(tuple)
nvecs = st.lists(st.integers(1, 4), min_size=1, max_size=3)
n_bits = st.integers(1, 4)
seeds = st.integers(0, 2**32 - 1)
few = settings(max_examples=30)


def _mc(rng, shape, nvec, scale=2.0):
    return scale * rng.standard_normal(shape + (sum(nvec),))


def _actions(rng, shape, nvec):
    return np.stack([rng.integers(0, n, size=shape) for n in nvec], axis=-1)


# -- MultiCategorical: gradients -----------------------------------------------------------------


@few
@given(batch_shapes, nvecs, seeds)
def test_multicategorical_log_prob_backward_matches_finite_differences(shape, nvec, seed):
    rng = np.random.default_rng(seed)
    z, a, dlogp = _mc(rng, shape, nvec), _actions(rng, shape, nvec), rng.standard_normal(shape)
    analytic = MultiCategorical(z, nvec).log_prob_backward(a, dlogp)
    check_gradient(lambda x: MultiCategorical(x, nvec).log_prob(a), z, analytic, dlogp)


@few
@given(batch_shapes, nvecs, seeds)
def test_multicategorical_entropy_backward_matches_finite_differences(shape, nvec, seed):
    rng = np.random.default_rng(seed)
    z, dent = _mc(rng, shape, nvec), rng.standard_normal(shape)
    analytic = MultiCategorical(z, nvec).entropy_backward(dent)
    check_gradient(lambda x: MultiCategorical(x, nvec).entropy(), z, analytic, dent)


@few
@given(batch_shapes, nvecs, seeds, st.booleans())
def test_multicategorical_kl_backward_matches_finite_differences(shape, nvec, seed, prior):
    rng = np.random.default_rng(seed)
    zp, zq = _mc(rng, shape, nvec), _mc(rng, () if prior else shape, nvec)
    dkl = rng.standard_normal(shape)
    dp, dq = MultiCategorical(zp, nvec).kl_backward(MultiCategorical(zq, nvec), dkl)
    assert dp.shape == zp.shape and dq.shape == zq.shape
    check_gradient(lambda x: MultiCategorical(x, nvec).kl(MultiCategorical(zq, nvec)), zp, dp, dkl)
    check_gradient(lambda x: MultiCategorical(zp, nvec).kl(MultiCategorical(x, nvec)), zq, dq, dkl)


# -- MultiCategorical: identities ----------------------------------------------------------------


@few
@given(batch_shapes, nvecs, seeds)
def test_multicategorical_is_the_sum_of_its_categoricals(shape, nvec, seed):
    rng = np.random.default_rng(seed)
    zp, zq, a = _mc(rng, shape, nvec), _mc(rng, shape, nvec), _actions(rng, shape, nvec)
    p, q = MultiCategorical(zp, nvec), MultiCategorical(zq, nvec)
    cuts = np.cumsum([0] + nvec)
    parts = [(Categorical(zp[..., lo:hi]), Categorical(zq[..., lo:hi]))
             for lo, hi in zip(cuts[:-1], cuts[1:])]
    np.testing.assert_allclose(p.log_prob(a), sum(c.log_prob(a[..., k])
                                                  for k, (c, _) in enumerate(parts)), atol=1e-12)
    np.testing.assert_allclose(p.entropy(), sum(c.entropy() for c, _ in parts), atol=1e-12)
    np.testing.assert_allclose(p.kl(q), sum(c.kl(d) for c, d in parts), atol=1e-12)
    np.testing.assert_array_equal(p.mode(), np.stack([c.mode() for c, _ in parts], axis=-1))


def test_multicategorical_probabilities_sum_to_one_over_the_joint_action_space():
    rng = np.random.default_rng(0)
    nvec = [2, 3, 2]
    d = MultiCategorical(rng.standard_normal(7), nvec)
    total = sum(np.exp(d.log_prob(np.array(a))) for a in itertools.product(*map(range, nvec)))
    np.testing.assert_allclose(total, 1.0, rtol=1e-12)


def test_multicategorical_literal():
    # group 0: softmax([0, ln 3]) = [1/4, 3/4]; group 1: uniform over 3.
    d = MultiCategorical([0.0, np.log(3.0), 0.0, 0.0, 0.0], [2, 3])
    np.testing.assert_allclose(d.log_prob([1, 2]), np.log(0.75) + np.log(1 / 3))
    np.testing.assert_allclose(d.entropy(), -(0.25 * np.log(0.25) + 0.75 * np.log(0.75))
                               + np.log(3.0))
    np.testing.assert_allclose(d.log_prob_backward([1, 2], 2.0),
                               2.0 * np.array([-0.25, 0.25, -1 / 3, -1 / 3, 2 / 3]))


def test_multicategorical_sampling_frequencies():
    rng = np.random.default_rng(1)
    d = MultiCategorical(np.broadcast_to([0.0, np.log(3.0), 0.0, np.log(2.0)], (20000, 4)), [2, 2])
    a = d.sample(rng)
    assert a.shape == (20000, 2) and a.dtype == np.int64
    np.testing.assert_allclose(a.mean(0), [0.75, 2 / 3], atol=0.015)


def test_multicategorical_extreme_logits_stay_finite():
    d = MultiCategorical([[1e308, -1e308, 0.0, 1e308]], [2, 2])
    np.testing.assert_array_equal(d.entropy(), [0.0])
    np.testing.assert_array_equal(d.kl(d), [0.0])
    assert np.isfinite(d.log_prob_backward([[0, 1]], 1.0)).all()
    assert np.isfinite(d.entropy_backward(1.0)).all()
    np.testing.assert_array_equal(d.log_prob([[0, 1]]), [0.0])


def test_multicategorical_float32_kept():
    d = MultiCategorical(np.zeros((2, 5), np.float32), [2, 3])
    assert d.log_prob_backward(np.zeros((2, 2), int), 1.0).dtype == np.float32
    assert d.entropy_backward(1.0).dtype == np.float32


def test_multicategorical_errors_name_the_argument():
    with pytest.raises(ValueError, match="nvec"):
        MultiCategorical(np.zeros(3), [0, 3])
    with pytest.raises(ValueError, match="logits"):
        MultiCategorical(np.zeros(4), [2, 3])
    d = MultiCategorical(np.zeros((2, 5)), [2, 3])
    with pytest.raises(ValueError, match="a must lie"):
        d.log_prob([[0, 3], [1, 1]])
    with pytest.raises(ValueError, match="a must have shape"):
        d.log_prob([0, 1])
    with pytest.raises(TypeError, match="a must be an integer"):
        d.log_prob(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="nvec"):
        d.kl(MultiCategorical(np.zeros((2, 5)), [3, 2]))
    with pytest.raises(TypeError, match="other"):
        d.kl(Categorical(np.zeros((2, 5))))


# -- Bernoulli: gradients ------------------------------------------------------------------------


@few
@given(batch_shapes, n_bits, seeds)
def test_bernoulli_log_prob_backward_matches_finite_differences(shape, k, seed):
    rng = np.random.default_rng(seed)
    z = 2.0 * rng.standard_normal(shape + (k,))
    a, dlogp = rng.integers(0, 2, size=shape + (k,)), rng.standard_normal(shape)
    analytic = Bernoulli(z).log_prob_backward(a, dlogp)
    check_gradient(lambda x: Bernoulli(x).log_prob(a), z, analytic, dlogp)


@few
@given(batch_shapes, n_bits, seeds)
def test_bernoulli_entropy_backward_matches_finite_differences(shape, k, seed):
    rng = np.random.default_rng(seed)
    z, dent = 2.0 * rng.standard_normal(shape + (k,)), rng.standard_normal(shape)
    analytic = Bernoulli(z).entropy_backward(dent)
    check_gradient(lambda x: Bernoulli(x).entropy(), z, analytic, dent)


@few
@given(batch_shapes, n_bits, seeds, st.booleans())
def test_bernoulli_kl_backward_matches_finite_differences(shape, k, seed, prior):
    rng = np.random.default_rng(seed)
    zp = 2.0 * rng.standard_normal(shape + (k,))
    zq = 2.0 * rng.standard_normal((() if prior else shape) + (k,))
    dkl = rng.standard_normal(shape)
    dp, dq = Bernoulli(zp).kl_backward(Bernoulli(zq), dkl)
    assert dp.shape == zp.shape and dq.shape == zq.shape
    check_gradient(lambda x: Bernoulli(x).kl(Bernoulli(zq)), zp, dp, dkl)
    check_gradient(lambda x: Bernoulli(zp).kl(Bernoulli(x)), zq, dq, dkl)


# -- Bernoulli: identities -----------------------------------------------------------------------


@few
@given(batch_shapes, n_bits, seeds)
def test_bernoulli_matches_the_two_logit_categorical(shape, k, seed):
    # A bit with logit z is a categorical over {0, 1} with logits [0, z].
    rng = np.random.default_rng(seed)
    zp, zq = 3.0 * rng.standard_normal(shape + (k,)), 3.0 * rng.standard_normal(shape + (k,))
    a = rng.integers(0, 2, size=shape + (k,))
    two = lambda z: MultiCategorical(np.stack([np.zeros_like(z), z], -1).reshape(
        shape + (2 * k,)), [2] * k)
    p, q = Bernoulli(zp), Bernoulli(zq)
    np.testing.assert_allclose(p.log_prob(a), two(zp).log_prob(a), atol=1e-12)
    np.testing.assert_allclose(p.entropy(), two(zp).entropy(), atol=1e-12)
    np.testing.assert_allclose(p.kl(q), two(zp).kl(two(zq)), atol=1e-12)


def test_bernoulli_literals():
    d = Bernoulli([0.0, np.log(3.0)])            # p = [1/2, 3/4]
    np.testing.assert_allclose(d.probs, [0.5, 0.75])
    np.testing.assert_allclose(d.log_prob([1, 0]), np.log(0.5) + np.log(0.25))
    np.testing.assert_allclose(d.entropy(), np.log(2) - 0.75 * np.log(0.75) - 0.25 * np.log(0.25))
    np.testing.assert_allclose(d.log_prob_backward([1, 0], 2.0), [1.0, -1.5])
    np.testing.assert_array_equal(d.mode(), [0, 1])


def test_bernoulli_sampling_frequencies():
    d = Bernoulli(np.broadcast_to([np.log(3.0), -np.log(3.0)], (20000, 2)))
    a = d.sample(np.random.default_rng(2))
    assert a.dtype == np.int64
    np.testing.assert_allclose(a.mean(0), [0.75, 0.25], atol=0.015)


def test_bernoulli_extreme_logits_give_exact_limits():
    d = Bernoulli([[1e308, -1e308, 800.0]])
    np.testing.assert_array_equal(d.entropy(), [0.0])
    np.testing.assert_array_equal(d.log_prob([[1, 0, 1]]), [0.0])
    np.testing.assert_array_equal(d.log_prob([[0, 0, 1]]), [-1e308])
    np.testing.assert_array_equal(d.kl(d), [0.0])
    np.testing.assert_array_equal(d.entropy_backward(1.0), [[0.0, 0.0, 0.0]])
    other = Bernoulli([[-1e308, 1e308, 0.0]])
    dp, dq = d.kl_backward(other, 1.0)
    assert np.isfinite(dp).all() and np.isfinite(dq).all()
    with np.errstate(over="ignore"):   # the true KL, ~2e308 + 800 log 2, exceeds float64
        assert d.kl(other)[0] == np.inf
    np.testing.assert_allclose(Bernoulli([[1e300, 0.0]]).kl(Bernoulli([[-1e300, 0.0]])), [1e300])
    # float32 at the edge of its range
    d32 = Bernoulli(np.array([[3e38, -3e38]], np.float32))
    assert d32.entropy()[0] == 0.0 and d32.entropy().dtype == np.float32


def test_bernoulli_errors_name_the_argument():
    d = Bernoulli(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="only 0 and 1"):
        d.log_prob([[0, 1, 2], [0, 0, 0]])
    with pytest.raises(ValueError, match="a must have shape"):
        d.log_prob([0, 1, 1])
    with pytest.raises(TypeError, match="integer"):
        d.log_prob(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="logits"):
        Bernoulli(np.array([np.nan]))
    with pytest.raises(ValueError, match="bits"):
        d.kl(Bernoulli(np.zeros((2, 2))))
    np.testing.assert_array_equal(d.log_prob(np.ones((2, 3), bool)), d.log_prob(np.ones((2, 3), int)))


@pytest.mark.parametrize("dtype,big", [(np.float64, 1e308), (np.float32, 3e38)])
def test_infinite_kl_has_a_named_error_not_a_nan_gradient(dtype, big):
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = MultiCategorical(np.array([big, -big, 0, 0], dtype), [2, 2])
        u = MultiCategorical(np.zeros(4, dtype), [2, 2])
        if dtype is np.float64:
            assert u.kl(m) == np.inf  # log q = -2e308 < -max float: KL beyond float64
            with pytest.raises(ValueError, match="kl_backward.*inf"):
                u.kl_backward(m, 1.0)
        else:  # log q = -6e38 (exact in float64): KL = 3e38 - log 2 fits in float32
            assert u.kl(m) == pytest.approx(3e38, rel=1e-6)
            d_self, d_other = u.kl_backward(m, 1.0)
            np.testing.assert_allclose(d_self, [-1.5e38, 1.5e38, 0.0, 0.0], rtol=1e-6)
            np.testing.assert_allclose(d_other, [0.5, -0.5, 0.0, 0.0])
        b = Bernoulli(np.array([big, -big], dtype))
        assert b.log_prob(np.array([0, 1])) == -np.inf  # -2 * big: below -max float
        assert b.log_prob(np.array([1, 0])) == 0.0


def test_bernoulli_entropy_of_a_float32_near_deterministic_bit():
    """z = 100 in float32: H = softplus(-100) + 100 sigmoid(-100) = 3.7573e-42 (a float32
    subnormal); float32 intermediates gave 3.8e-44."""
    import mpmath
    with mpmath.workdps(50):
        p = 1 / (1 + mpmath.exp(100))
        exact = float(-p * mpmath.log(p) - (1 - p) * mpmath.log1p(-p))
    h = Bernoulli(np.array([100.0], np.float32)).entropy()
    assert h.dtype == np.float32 and float(h) == float(np.float32(exact))
    assert float(Bernoulli(np.array([100.0])).entropy()) == pytest.approx(exact, rel=1e-15)
    g = Bernoulli(np.array([100.0], np.float32)).entropy_backward(1.0)
    assert g.dtype == np.float32 and float(g[0]) == float(np.float32(-100 * p * (1 - p)))


def test_multicategorical_entropy_near_determinism_matches_categorical():
    z = np.array([[40.0, 0.0, 0.3, -0.2, 0.1], [0.0, 1.0, 12.0, 0.0, -3.0]])
    d = MultiCategorical(z, [2, 3])
    for k, (o, n) in enumerate([(0, 2), (2, 3)]):
        c = Categorical(z[:, o:o + n])
        np.testing.assert_array_equal(d._group_entropy()[:, k], c.entropy())
    assert d.entropy()[0] == pytest.approx(1.7418252446695514e-16 + Categorical(
        z[0:1, 2:5]).entropy()[0], rel=1e-15)
    dent = np.array([1.0, -0.5])
    check_gradient(lambda x: MultiCategorical(x, [2, 3]).entropy(), z,
                   d.entropy_backward(dent), dent, eps=1e-4, rtol=1e-6)


def test_near_deterministic_kls_keep_their_digits_and_sign():
    """Tester 4, defect 4 as a kind: the product distributions' KLs had the categorical's
    cancellation (MultiCategorical: p (log p - log q) per group; Bernoulli: the softplus form
    subtracted nearly equal terms). Oracle: mpmath at 300 digits."""
    import mpmath
    from tests.minirl.distributions.test_categorical import ULP, _exact_kl
    m_p = MultiCategorical(np.array([-74., -16., -48., 0., -40.]), [3, 2])
    m_q = MultiCategorical(np.array([-73., -16., -48., 0., -41.]), [3, 2])
    exact = _exact_kl([-74., -16., -48.], [-73., -16., -48.])[0] + _exact_kl([0., -40.],
                                                                              [0., -41.])[0]
    assert float(m_p.kl(m_q)) == pytest.approx(exact, rel=4 * ULP, abs=0.0)   # 1.5629e-18
    d_self, d_other = m_p.kl_backward(m_q, 1.0)
    assert abs(d_self[:3].sum()) < 1e-40 and abs(d_other[3:].sum()) < 1e-33
    for zp, zq in ((40.0, 40.001), (-40.0, -40.001), (30.0, 31.0), (0.2, 0.2 + 1e-9)):
        with mpmath.workdps(300):
            p, q = mpmath.mpf(1) / (1 + mpmath.exp(-zp)), mpmath.mpf(1) / (1 + mpmath.exp(-zq))
            kl = float(p * mpmath.log(p / q) + (1 - p) * mpmath.log((1 - p) / (1 - q)))
            dq_exact = float(q - p)
        b_p, b_q = Bernoulli(np.array([zp])), Bernoulli(np.array([zq]))
        assert float(b_p.kl(b_q)) == pytest.approx(kl, rel=4 * ULP, abs=0.0), (zp, zq)
        assert float(b_p.kl_backward(b_q, 1.0)[1][0]) == pytest.approx(dq_exact, rel=4 * ULP)
