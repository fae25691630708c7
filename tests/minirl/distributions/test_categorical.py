"""Tests for minirl/distributions/categorical.py: gradients, identities, sampling, errors."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from minirl.distributions import Categorical, log_softmax
from minirl.distributions.categorical import _sample_log_prob, _sum_last
from minirl.testing.gradcheck import check_gradient

batch_shapes = st.lists(st.integers(1, 3), min_size=0, max_size=2).map(tuple)
n_actions = st.integers(1, 5)
seeds = st.integers(0, 2**32 - 1)


def _logits(rng, shape, A, scale=2.0):
    return scale * rng.standard_normal(shape + (A,))


# -- gradients -----------------------------------------------------------------------------------


@given(batch_shapes, n_actions, seeds)
def test_log_prob_backward_matches_finite_differences(shape, A, seed):
    rng = np.random.default_rng(seed)
    z = _logits(rng, shape, A)
    a = rng.integers(0, A, size=shape)
    dlogp = rng.standard_normal(shape)
    analytic = Categorical(z).log_prob_backward(a, dlogp)
    check_gradient(lambda x: Categorical(x).log_prob(a), z, analytic, dlogp)


@given(batch_shapes, n_actions, seeds)
def test_entropy_backward_matches_finite_differences(shape, A, seed):
    rng = np.random.default_rng(seed)
    z = _logits(rng, shape, A)
    dent = rng.standard_normal(shape)
    analytic = Categorical(z).entropy_backward(dent)
    check_gradient(lambda x: Categorical(x).entropy(), z, analytic, dent)


@given(batch_shapes, n_actions, seeds, st.booleans())
def test_kl_backward_matches_finite_differences_on_both_sides(shape, A, seed, prior):
    rng = np.random.default_rng(seed)
    zp = _logits(rng, shape, A)
    # prior=True: other is a single [A] distribution broadcast over the batch.
    zq = _logits(rng, () if prior else shape, A)
    dkl = rng.standard_normal(shape)
    dp, dq = Categorical(zp).kl_backward(Categorical(zq), dkl)
    assert dp.shape == zp.shape and dq.shape == zq.shape
    check_gradient(lambda x: Categorical(x).kl(Categorical(zq)), zp, dp, dkl)
    check_gradient(lambda x: Categorical(zp).kl(Categorical(x)), zq, dq, dkl)


def test_log_prob_backward_is_onehot_minus_probs_literal():
    # p = softmax([0, ln 3]) = [1/4, 3/4]; action 0 with dlogp = 2 -> 2 * ([1, 0] - p).
    dist = Categorical([[0.0, np.log(3.0)]])
    np.testing.assert_allclose(dist.probs, [[0.25, 0.75]])
    np.testing.assert_allclose(dist.log_prob_backward([0], [2.0]), [[1.5, -1.5]])
    np.testing.assert_allclose(dist.log_prob([1]), [np.log(0.75)])


def test_scalar_upstream_gradient_broadcasts():
    rng = np.random.default_rng(0)
    z = _logits(rng, (4,), 3)
    a = np.array([0, 1, 2, 1])
    d = Categorical(z)
    np.testing.assert_allclose(d.log_prob_backward(a, 0.25),
                               d.log_prob_backward(a, np.full(4, 0.25)))


# -- identities ----------------------------------------------------------------------------------


@given(batch_shapes, n_actions, seeds)
def test_probs_sum_to_one_and_entropy_is_minus_sum_p_log_p(shape, A, seed):
    rng = np.random.default_rng(seed)
    d = Categorical(_logits(rng, shape, A, scale=5.0))
    np.testing.assert_allclose(d.probs.sum(-1), 1.0, rtol=1e-12)
    p = np.exp(d.logits - d.logits.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        plogp = np.where(p > 0, p * np.log(p), 0.0)
    np.testing.assert_allclose(d.entropy(), -plogp.sum(-1), rtol=1e-10, atol=1e-12)
    assert np.all(d.entropy() >= -1e-12) and np.all(d.entropy() <= np.log(A) + 1e-12)


@given(batch_shapes, n_actions, seeds)
def test_kl_is_zero_to_itself_and_nonnegative(shape, A, seed):
    rng = np.random.default_rng(seed)
    p, q = Categorical(_logits(rng, shape, A)), Categorical(_logits(rng, shape, A))
    np.testing.assert_allclose(p.kl(p), 0.0, atol=1e-12)
    assert np.all(p.kl(q) >= -1e-12)
    # definition from CS234 Policy Gradient II: sum_a p log(p / q)
    np.testing.assert_allclose(p.kl(q), np.sum(p.probs * np.log(p.probs / q.probs), -1),
                               rtol=1e-9, atol=1e-12)


def test_log_softmax_is_finite_for_huge_logits():
    z = np.array([[1e3, -1e3, 0.0], [-1e3, -1e3, -1e3], [1e3, 1e3, 1e3]])
    lp = log_softmax(z)
    assert np.all(np.isfinite(lp))
    np.testing.assert_allclose(lp[0], [0.0, -2e3, -1e3])
    np.testing.assert_allclose(lp[1:], np.log(1 / 3))
    d = Categorical(z)
    for q in (d.entropy(), d.kl(Categorical(z[::-1])), d.log_prob_backward([1, 0, 2], 1.0),
              d.entropy_backward(1.0)):
        assert np.all(np.isfinite(q))
    np.testing.assert_allclose(d.log_prob([1, 0, 2]), [-2e3, np.log(1 / 3), np.log(1 / 3)])


def test_mode_is_argmax_and_float32_is_kept():
    z = np.array([[0.1, 2.0, -1.0], [3.0, 3.0, 0.0]], dtype=np.float32)
    d = Categorical(z)
    np.testing.assert_array_equal(d.mode(), [1, 0])
    assert d.mode().dtype == np.int64
    assert d.probs.dtype == np.float32 and d.log_prob([0, 1]).dtype == np.float32
    assert d.log_prob_backward([0, 1], np.ones(2)).dtype == np.float32
    assert d.entropy_backward(np.ones(2)).dtype == np.float32


def test_distribution_is_immutable():
    z = np.zeros((2, 3))
    d = Categorical(z)
    z[0, 0] = 5.0  # the distribution holds its own copy
    np.testing.assert_allclose(d.probs, 1 / 3)
    with pytest.raises(ValueError):
        d.logits[0, 0] = 1.0
    with pytest.raises(AttributeError):
        d.logits = z


# -- sampling ------------------------------------------------------------------------------------


def test_sample_frequencies_match_probs():
    logits = np.log(np.array([0.1, 0.2, 0.3, 0.35, 0.05]))
    n = 40_000
    d = Categorical(np.broadcast_to(logits, (n, 5)))
    a = d.sample(np.random.default_rng(1234))
    assert a.dtype == np.int64 and a.shape == (n,)
    counts = np.bincount(a, minlength=5)
    p = np.exp(logits)
    se = np.sqrt(n * p * (1 - p))
    assert np.all(np.abs(counts - n * p) < 5 * se), (counts, n * p)
    assert stats.chisquare(counts, n * p).pvalue > 1e-4


def test_sample_never_picks_an_underflowed_action():
    d = Categorical(np.broadcast_to([0.0, -1e3, 0.0], (10_000, 3)))
    assert not np.any(d.sample(np.random.default_rng(0)) == 1)


# -- errors --------------------------------------------------------------------------------------


def test_bad_input_raises_named_errors():
    d = Categorical(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="logits"):
        Categorical([[0.0, np.nan]])
    with pytest.raises(ValueError, match="logits"):
        Categorical(0.0)
    with pytest.raises(TypeError, match="logits"):
        Categorical(np.array([["a", "b"]]))
    with pytest.raises(TypeError, match="^a "):
        d.log_prob(np.array([0.0, 1.0]))
    with pytest.raises(TypeError, match="^a "):
        d.log_prob(np.array([True, False]))
    with pytest.raises(ValueError, match="^a "):
        d.log_prob(np.array([0, 3]))
    with pytest.raises(ValueError, match="^a "):
        d.log_prob(np.array([-1, 0]))
    with pytest.raises(ValueError, match="^a "):
        d.log_prob(np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="dlogp"):
        d.log_prob_backward(np.array([0, 1]), np.ones(3))
    with pytest.raises(ValueError, match="dlogp"):
        d.log_prob_backward(np.array([0, 1]), np.array([np.nan, 0.0]))
    with pytest.raises(ValueError, match="dent"):
        d.entropy_backward(np.ones((2, 1)))
    with pytest.raises(ValueError, match="other"):
        d.kl(Categorical(np.zeros((2, 4))))
    with pytest.raises(ValueError, match="other"):
        d.kl(Categorical(np.zeros((3, 3))))
    with pytest.raises(TypeError, match="other"):
        d.kl(np.zeros((2, 3)))
    with pytest.raises(TypeError, match="rng"):
        d.sample(0)


def test_pickle_and_deepcopy_rebuild_an_equal_distribution():
    import copy
    import pickle

    d = Categorical(np.arange(6.0, dtype=np.float32).reshape(2, 3))
    for e in (pickle.loads(pickle.dumps(d)), copy.deepcopy(d)):
        assert e.dtype == np.float32
        np.testing.assert_array_equal(e.logits, d.logits)
        np.testing.assert_array_equal(e.probs, d.probs)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(), (7,), (3, 4)])
def test_trusted_constructor_equals_the_public_one(dtype, shape):
    # The agents' fast path must give the same distribution, bit for bit, and still fail
    # loudly on a diverged network; its logits are a private copy of the caller's buffer.
    rng = np.random.default_rng(0)
    buf = rng.normal(size=shape + (3,)).astype(dtype)
    a = rng.integers(0, 3, size=shape)
    d, t = Categorical(buf), Categorical._trusted(buf)
    for name in ("logits", "log_probs", "probs"):
        assert getattr(t, name).dtype == dtype
        np.testing.assert_array_equal(getattr(t, name), getattr(d, name))
        assert not getattr(t, name).flags.writeable
    assert (t.batch_shape, t.n_actions, t.dtype) == (d.batch_shape, d.n_actions, d.dtype)
    np.testing.assert_array_equal(t.log_prob(a), d.log_prob(a))
    buf[...] = 0.0  # the caller reuses its buffer: the distribution must not change
    np.testing.assert_array_equal(t.logits, d.logits)
    bad = np.array([[0.0, np.nan]], dtype)
    with pytest.raises(ValueError, match="logits"):
        Categorical._trusted(bad)


def test_log_prob_and_backward_literals_on_a_batch():
    # Hand-computed: p = softmax([0, log 3]) = [1/4, 3/4].
    d = Categorical(np.array([[0.0, np.log(3.0)], [0.0, np.log(3.0)]]))
    np.testing.assert_allclose(d.log_prob(np.array([0, 1])), np.log([0.25, 0.75]), rtol=1e-12)
    g = d.log_prob_backward(np.array([0, 1]), np.array([2.0, -1.0]))
    np.testing.assert_allclose(g, [[2.0 * 0.75, 2.0 * -0.75], [-1.0 * -0.25, -1.0 * 0.25]],
                               rtol=1e-12)


# -- extreme but representable logits (issue: no silent NaN) ----------------------------------

@pytest.mark.parametrize("dtype,big", [(np.float64, 1e308), (np.float32, 3e38)])
def test_logits_further_apart_than_the_largest_float_give_exact_finite_answers(dtype, big):
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # not even a RuntimeWarning on the way
        c = Categorical(np.array([big, -big], dtype=dtype))
        np.testing.assert_array_equal(c.probs, [1.0, 0.0])
        assert c.log_probs[1] == -np.inf  # the rounding of the true log p < -max float
        assert c.entropy() == 0.0 and not np.signbit(c.entropy())
        np.testing.assert_array_equal(c.entropy_backward(1.0), [0.0, 0.0])
        assert c.kl(c) == 0.0
        np.testing.assert_array_equal(c.kl_backward(c, 1.0)[0], [0.0, 0.0])
        uniform = Categorical(np.zeros(2, dtype=dtype))
        np.testing.assert_allclose(c.kl(uniform), np.log(2.0), rtol=1e-6)  # p = [1, 0]
        d_self, d_other = c.kl_backward(uniform, 1.0)
        np.testing.assert_array_equal(d_self, [0.0, 0.0])
        np.testing.assert_allclose(d_other, [-0.5, 0.5])
        if dtype is np.float64:
            assert uniform.kl(c) == np.inf  # log q_1 = -2e308 < -max float: KL beyond float64
            with pytest.raises(ValueError, match="kl_backward.*inf"):
                uniform.kl_backward(c, 1.0)
        else:  # log q_1 = -6e38 (exact in float64): KL = 3e38 - log 2 fits in float32
            assert uniform.kl(c) == pytest.approx(3e38, rel=1e-6)
            d_self, d_other = uniform.kl_backward(c, 1.0)  # p_j (log p_j - log q_j - KL)
            np.testing.assert_allclose(d_self, [-1.5e38, 1.5e38], rtol=1e-6)
            np.testing.assert_allclose(d_other, [0.5, -0.5])
        np.testing.assert_array_equal(c.log_prob_backward(np.array(1), 1.0), [-1.0, 1.0])
        assert c.sample(np.random.default_rng(0)) == 0 and c.mode() == 0


def test_entropy_near_determinism_keeps_its_leading_digits():
    """logits [40, 0]: log p_0 = -log1p(e^-40) ~ -4.2e-18 rounds to 0 in log_softmax, which
    dropped 2.4% of H; the log1p form gives H to a few ulp (reference: mpmath, 50 digits)."""
    import mpmath
    with mpmath.workdps(50):
        def exact_h(z):
            m = max(z)
            w = [mpmath.exp(mpmath.mpf(x) - m) for x in z]
            p = [x / mpmath.fsum(w) for x in w]
            return float(-mpmath.fsum(pi * mpmath.log(pi) for pi in p if pi > 0))
        for z in ([40.0, 0.0], [0.0, 40.0, 3.0], [12.0, -1.0, 0.5], [700.0, 0.0]):
            h = Categorical(np.array([z])).entropy()[0]
            assert h == pytest.approx(exact_h(z), rel=1e-14), z
            h32 = Categorical(np.array([z], np.float32)).entropy()[0]
            assert h32 == pytest.approx(exact_h([float(np.float32(x)) for x in z]), rel=1e-6)
    d = Categorical(np.array([[40.0, 0.0], [0.3, -0.2]]))
    assert d.entropy()[1] == 0.0 - np.sum(d.probs[1] * d.log_probs[1])  # usual form's bits
    for z in ([12.0, 0.0, -3.0], [9.0, 0.5], [20.0, 1.0, 2.0]):  # near-deterministic rows
        z = np.array([z])
        dent = np.array([1.0])
        check_gradient(lambda x: Categorical(x).entropy(), z,
                       Categorical(z).entropy_backward(dent), dent, eps=1e-4, rtol=1e-6)


def _exact_kl(z, w, dps=300):
    """KL(softmax(z) || softmax(w)), dKL/dz, dKL/dw at the given floats (mpmath; 300 digits
    so that the oracle itself resolves KLs of 1e-120 next to probabilities of 1)."""
    import mpmath
    with mpmath.workdps(dps):
        z = [mpmath.mpf(float(x)) for x in z]
        w = [mpmath.mpf(float(x)) for x in w]
        lz = mpmath.log(mpmath.fsum(mpmath.exp(x) for x in z))
        lw = mpmath.log(mpmath.fsum(mpmath.exp(x) for x in w))
        lp, lq = [x - lz for x in z], [x - lw for x in w]
        kl = mpmath.fsum(mpmath.exp(a) * (a - b) for a, b in zip(lp, lq))
        ds = [float(mpmath.exp(a) * (a - b - kl)) for a, b in zip(lp, lq)]
        do = [float(mpmath.exp(b) - mpmath.exp(a)) for a, b in zip(lp, lq)]
        return float(kl), np.array(ds), np.array(do)


ULP = np.finfo(np.float64).eps


def test_kl_near_determinism_is_right_to_a_few_ulp_and_never_negative():
    """Tester 4, defect 4: sum_a p_a (log p_a - log q_a) subtracted nearly equal logs, giving
    4.248e-18 (exact 1.5629e-18), 0 (exact 1.9286e-22) and a NEGATIVE -6.47e-26 (exact
    +4.6475e-26). The log1p(sum_a p_a phi(u_a)) form: a few ulp, >= 0, gradients that sum to 0."""
    cases = [([0., -40.], [0., -41.]), ([0., -60., -60.], [0., -50., -70.]),
             ([-74., -16., -48.], [-73., -16., -48.]), ([12., 0., -3.], [12.5, 0.1, -3.]),
             ([0., 0.], [0., 1e-5]), ([0.3, -0.2, 1.0], [0.3, -0.2, 1.0 + 1e-9]),
             ([0., -800.], [0., 5.]), ([1., 2., 3.], [3., 2., 1.])]
    rng = np.random.default_rng(0)      # random rows: near p == q, one logit moved, far apart
    for i in range(60):
        A, scale = rng.integers(2, 6), 10 ** rng.uniform(-1, 2.5)
        z = rng.standard_normal(A) * scale
        w = [z + rng.standard_normal(A) * 10 ** rng.uniform(-12, 0), z.copy(),
             rng.standard_normal(A) * scale][i % 3]
        if i % 3 == 1:
            w[rng.integers(A)] += 10 ** rng.uniform(-8, 1)
        cases.append((z.tolist(), w.tolist()))
    for z, w in cases:
        p, q = Categorical(np.array(z)), Categorical(np.array(w))
        kl, (ds, do) = float(p.kl(q)), p.kl_backward(q, 1.0)
        exact, eds, edo = _exact_kl(z, w)
        assert kl >= 0.0
        assert kl == pytest.approx(exact, rel=4 * ULP, abs=0.0), (z, w)
        for g, e in ((ds, eds), (do, edo)):
            assert np.abs(g - e).max() <= 4 * ULP * np.abs(e).max(), (z, w)
            assert abs(g.sum()) <= 4 * ULP * np.abs(e).max(), (z, w)   # sums to 0
    assert Categorical(np.array([-74., -16., -48.])).kl(
        Categorical(np.array([-73., -16., -48.]))) == pytest.approx(4.6475217e-26, rel=1e-7)
    d = Categorical(np.array([[0.0, 0.3, -1.0], [0.0, 0.3, -1.0]]))
    np.testing.assert_array_equal(d.kl(d), [0.0, 0.0])          # KL(p||p) = 0 exactly
    np.testing.assert_array_equal(d.kl_backward(d, 1.0)[0], np.zeros((2, 3)))


def test_kl_gradient_near_determinism_matches_finite_differences():
    for zp, zq in (([12.0, 0.0, -3.0], [11.0, 0.5, -3.0]), ([9.0, 0.5], [9.5, 0.5]),
                   ([20.0, 1.0, 2.0], [20.0, 1.5, 2.0])):
        zp, zq, dkl = np.array([zp]), np.array([zq]), np.array([1.0])
        dp, dq = Categorical(zp).kl_backward(Categorical(zq), dkl)
        check_gradient(lambda x: Categorical(x).kl(Categorical(zq)), zp, dp, dkl, eps=1e-4)
        check_gradient(lambda x: Categorical(zp).kl(Categorical(x)), zq, dq, dkl, eps=1e-4)


# -- the rollout's private fast path: bit for bit the public one ---------------------------------


def _act_outcome(f, rng):
    try:
        out = [(type(x), x.dtype, x.shape, np.ascontiguousarray(x).tobytes()) for x in f()]
    except (ValueError, TypeError) as e:
        return ("error", type(e), str(e), rng.bit_generator.state)
    return ("ok", out, rng.bit_generator.state)


def _assert_sample_log_prob_matches(logits, seed=0):
    def public(rng):
        d = Categorical._trusted(np.asarray(logits))
        a = d.sample(rng)
        return a, d.log_prob(a)
    r1, r2 = np.random.default_rng(seed), np.random.default_rng(seed)
    fast = _act_outcome(lambda: _sample_log_prob(logits, r1), r1)
    assert fast == _act_outcome(lambda: public(r2), r2)
    return fast


@given(batch_shapes, n_actions, seeds, st.sampled_from([np.float32, np.float64]),
       st.sampled_from([1.0, 30.0, 1e4, 1e30]))
def test_sample_log_prob_fast_path_is_bit_identical_to_the_public_path(shape, A, seed, dtype,
                                                                       scale):
    rng = np.random.default_rng(seed)
    _assert_sample_log_prob_matches(_logits(rng, shape, A, scale).astype(dtype), seed)


def test_sample_log_prob_fast_path_other_inputs_and_errors():
    z = np.random.default_rng(1).standard_normal((6, 3))
    for logits in (z.astype(np.float32), np.asfortranarray(z), z[:, ::-1], z[:0], z.tolist(),
                   z.astype(np.float16), np.array([1e308, -1e308])):
        _assert_sample_log_prob_matches(logits)
    for bad in (np.nan, np.inf):
        y = z.copy()
        y[2, 1] = bad
        out = _assert_sample_log_prob_matches(y)
        assert out[0] == "error" and "logits" in out[2]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1,), (5, 1), (2, 3, 1), (4, 2), (3,)])
def test_sum_last_is_the_reduction_bit_for_bit(dtype, shape):
    # including -0.0 (the reduction gives +0.0), NaN payloads, inf and subnormals
    special = np.array([-0.0, 0.0, np.nan, -np.nan, np.inf, -np.inf, 1.5, -2.25,
                        np.finfo(dtype).smallest_subnormal, np.finfo(dtype).max], dtype)
    x = np.resize(special, shape)
    got, want = _sum_last(x), np.add.reduce(x, axis=-1)
    assert type(got) is type(want) and got.dtype == want.dtype
    assert np.asarray(got).tobytes() == np.asarray(want).tobytes()


@pytest.mark.parametrize("dtype", ["int8", "uint8", "int16", ">i8", "int64", "uint64"])
@pytest.mark.parametrize("A", [3, 200])
def test_actions_out_of_range_are_named_for_every_integer_dtype(dtype, A):
    # narrow, unsigned and big-endian index arrays; an int8 -100 with A = 200 (156 < 200 if
    # read as uint8: a one-pass unsigned range check would miss it)
    d = Categorical(np.zeros((4, A)))
    info = np.iinfo(np.dtype(dtype))
    good = np.array([0, 1, A - 1 if A - 1 <= info.max else info.max, 2]).astype(dtype)
    np.testing.assert_array_equal(d.log_prob(good), d.log_probs[np.arange(4), good.astype(int)])
    bad_values = [A] if A <= info.max else []
    if info.min < 0:
        bad_values += [-1, -100, info.min]
    for v in bad_values:
        bad = good.copy()
        bad[1] = v
        with pytest.raises(ValueError, match=r"a must lie in \[0, " + str(A) + r"\)"):
            d.log_prob(bad)
        with pytest.raises(ValueError, match=r"a must lie in"):
            d.log_prob_backward(bad, 1.0)
