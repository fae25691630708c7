"""Losses: values against literals/definitions and gradients against central differences."""
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from minirl.nn import huber, log_softmax, mse, softmax_cross_entropy, weighted_nll
from minirl.testing.gradcheck import check_gradient

seeds = st.integers(0, 2**32 - 1)
shapes = st.sampled_from([(1,), (7,), (4, 3), (2, 3, 2)])


def _value(loss, *args, **kw):
    return lambda z: np.array(loss(z, *args, **kw)[0])


@given(seed=seeds, shape=shapes, weighted=st.booleans())
def test_mse_gradient(seed, shape, weighted):
    rng = np.random.default_rng(seed)
    pred, target = rng.standard_normal(shape), rng.standard_normal(shape)
    w = rng.uniform(0, 2, shape) if weighted else None
    value, dpred = mse(pred, target, weights=w)
    check_gradient(_value(mse, target, weights=w), pred, dpred, dy=1.0)
    ww = 1.0 if w is None else w
    assert value == pytest.approx(np.mean(ww * (pred - target) ** 2), rel=1e-12)


def test_mse_literal():
    value, d = mse(np.array([1.0, 2.0]), np.array([0.0, 4.0]), weights=np.array([1.0, 0.5]))
    # mean(1*1^2, 0.5*(-2)^2) = (1 + 2) / 2 ; d = 2 w r / n = [1, -1]
    assert value == 1.5
    np.testing.assert_allclose(d, [1.0, -1.0])


@given(seed=seeds, shape=shapes, delta=st.sampled_from([0.3, 1.0, 2.5]),
       weighted=st.booleans())
def test_huber_gradient_away_from_kink(seed, shape, delta, weighted):
    rng = np.random.default_rng(seed)
    pred, target = 2 * rng.standard_normal(shape), rng.standard_normal(shape)
    assume(np.min(np.abs(np.abs(pred - target) - delta)) > 1e-3)
    w = rng.uniform(0, 2, shape) if weighted else None
    value, dpred = huber(pred, target, delta=delta, weights=w)
    check_gradient(_value(huber, target, delta=delta, weights=w), pred, dpred, dy=1.0)


def test_huber_literal():
    # r = [0.5, -3], delta = 1: h = [0.125, 1 * (3 - 0.5)] = [0.125, 2.5]; mean = 1.3125
    value, d = huber(np.array([0.5, -3.0]), np.zeros(2), delta=1.0)
    assert value == 1.3125
    np.testing.assert_allclose(d, [0.25, -0.5])        # clip(r, -1, 1) / 2


@given(seed=seeds, batch=st.integers(1, 6), k=st.integers(1, 6), weighted=st.booleans(),
       scale=st.sampled_from([1.0, 30.0]))
def test_softmax_cross_entropy_gradient(seed, batch, k, weighted, scale):
    rng = np.random.default_rng(seed)
    logits = scale * rng.standard_normal((batch, k))
    labels = rng.integers(0, k, batch)
    w = rng.uniform(-1, 2, batch) if weighted else None
    value, dlogits = softmax_cross_entropy(logits, labels, weights=w)
    check_gradient(_value(softmax_cross_entropy, labels, weights=w), logits, dlogits, dy=1.0)
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    onehot = np.eye(k)[labels]
    ww = np.ones(batch) if w is None else w
    np.testing.assert_allclose(dlogits, ww[:, None] * (p - onehot) / batch, atol=1e-15)


def test_softmax_cross_entropy_literal_and_stability():
    # Uniform logits over 4 classes: loss = log 4, grad = (1/4 - onehot) / 1.
    value, d = softmax_cross_entropy(np.zeros((1, 4)), np.array([2]))
    assert value == pytest.approx(np.log(4), rel=1e-15)
    np.testing.assert_allclose(d, [[0.25, 0.25, -0.75, 0.25]])
    value, d = softmax_cross_entropy(np.array([[1000.0, 0.0], [-1000.0, 0.0]]), np.array([0, 0]))
    assert np.isfinite(value) and np.isfinite(d).all()
    assert value == pytest.approx(500.0)                # (0 + 1000) / 2
    lp = log_softmax(np.array([[1000.0, 1000.0]]))
    np.testing.assert_allclose(lp, np.log([[0.5, 0.5]]))


def test_softmax_cross_entropy_leading_shape():
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((3, 4, 5))             # [T, N, K]
    labels = rng.integers(0, 5, (3, 4))
    v1, d1 = softmax_cross_entropy(logits, labels)
    v2, d2 = softmax_cross_entropy(logits.reshape(12, 5), labels.reshape(12))
    assert v1 == pytest.approx(v2, rel=1e-14)
    np.testing.assert_allclose(d1.reshape(12, 5), d2, rtol=1e-14)


@given(seed=seeds, shape=shapes, weighted=st.booleans())
def test_weighted_nll_gradient(seed, shape, weighted):
    rng = np.random.default_rng(seed)
    logp = -rng.exponential(size=shape)
    w = rng.standard_normal(shape) if weighted else None
    value, dlogp = weighted_nll(logp, weights=w)
    check_gradient(_value(weighted_nll, weights=w), logp, dlogp, dy=1.0)


def test_weighted_nll_literal():
    value, d = weighted_nll(np.array([-1.0, -2.0]), weights=np.array([2.0, -1.0]))
    assert value == pytest.approx(-(2 * -1 + -1 * -2) / 2)   # = 0
    np.testing.assert_allclose(d, [-1.0, 0.5])


def test_loss_errors():
    with pytest.raises(ValueError, match="same shape"):
        mse(np.ones(3), np.ones(2))
    with pytest.raises(ValueError, match="delta"):
        huber(np.ones(3), np.ones(3), delta=0.0)
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\)"):
        softmax_cross_entropy(np.ones((2, 3)), np.array([0, 3]))
    with pytest.raises(TypeError, match="integers"):
        softmax_cross_entropy(np.ones((2, 3)), np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="broadcast"):
        weighted_nll(np.ones(3), weights=np.ones(2))


def test_matches_torch_losses():
    """Optional oracle: torch's MSELoss, HuberLoss and cross_entropy (mean reduction)."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    pred, target = 2 * rng.standard_normal((6, 2)), rng.standard_normal((6, 2))
    logits, labels = rng.standard_normal((6, 4)), rng.integers(0, 4, 6)
    for ours, theirs in [
        (lambda p: mse(p, target), lambda p: torch.nn.functional.mse_loss(p, torch.tensor(target))),
        (lambda p: huber(p, target, delta=0.7),
         lambda p: torch.nn.functional.huber_loss(p, torch.tensor(target), delta=0.7)),
    ]:
        tp = torch.tensor(pred, requires_grad=True)
        tl = theirs(tp)
        tl.backward()
        value, d = ours(pred)
        assert value == pytest.approx(tl.item(), rel=1e-12)
        np.testing.assert_allclose(d, tp.grad.numpy(), rtol=1e-12, atol=1e-15)
    tz = torch.tensor(logits, requires_grad=True)
    tl = torch.nn.functional.cross_entropy(tz, torch.tensor(labels))
    tl.backward()
    value, d = softmax_cross_entropy(logits, labels)
    assert value == pytest.approx(tl.item(), rel=1e-12)
    np.testing.assert_allclose(d, tz.grad.numpy(), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("shape", [(5,), (256, 2), (4, 7), (4, 8), (2, 3, 5), (6, 40)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_log_softmax_short_axis_path_gives_numpys_bits(shape, dtype):
    # log_softmax reduces short last axes column by column; it must equal the plain NumPy form.
    z = (np.random.default_rng(3).normal(size=shape) * 5).astype(dtype)
    for axis in {-1, 0}:
        shifted = z - np.max(z, axis=axis, keepdims=True)
        ref = shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))
        out = log_softmax(z, axis=axis)
        assert out.dtype == dtype
        np.testing.assert_array_equal(out, ref)


# -- extreme but representable inputs (issue: no silent NaN) ----------------------------------

def test_regression_losses_when_pred_minus_target_overflows():
    import warnings
    pred, target = np.array([1e308, 0.0, 0.0, 0.0]), np.array([-1e308, 0.0, 0.0, 0.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value, grad = mse(pred, target)
        assert value == np.inf  # (2e308)^2 / 4 is beyond the largest float
        np.testing.assert_allclose(grad, [1e308, 0, 0, 0])  # 2 * 2e308 / 4: finite
        value, grad = mse(pred, target, weights=np.array([0.0, 1, 1, 1]))
        assert value == 0.0 and not grad.any()  # a zero weight removes even an inf term
        value, grad = huber(pred, target, delta=0.1)
        np.testing.assert_allclose(value, (0.1 * 2e307 * 10 - 0.005) / 4)  # 0.1 (2e308) / 4
        np.testing.assert_allclose(grad, [0.025, 0, 0, 0])


@pytest.mark.parametrize("dtype,big", [(np.float64, 1e308), (np.float32, 3e38)])
def test_cross_entropy_with_logits_further_apart_than_the_largest_float(dtype, big):
    import warnings
    z = np.array([[big, -big], [0.0, 0.0]], dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value, grad = softmax_cross_entropy(z, np.array([1, 0]))
        if dtype == np.float64:  # -log p(1) > max float: +inf is the true value's rounding
            assert value == np.inf
        else:  # the value is a float64: -log p(1) = 2 big (+ e^(-2 big)) is finite there
            assert value == (2 * float(z[0, 0]) + np.log(2.0)) / 2
        np.testing.assert_allclose(grad, [[0.5, -0.5], [-0.25, 0.25]])
        value, grad = softmax_cross_entropy(z, np.array([1, 0]), weights=np.array([0.0, 1.0]))
        np.testing.assert_allclose(value, np.log(2.0) / 2, rtol=1e-6)  # 0 * inf = 0 here
        np.testing.assert_allclose(grad, [[0, 0], [-0.25, 0.25]])
        np.testing.assert_array_equal(log_softmax(z)[0], [0.0, -np.inf])


# ----- float32 values accumulate in float64 (mean_f64) ----------------------------------------

def _exact_mean(terms) -> float:
    """Exact rational mean of the given exact rational terms, rounded once to float64."""
    terms = [Fraction(t) for t in terms]
    return float(sum(terms) / len(terms))


def test_mean_f64_sums_in_float64_and_rescales_an_overflowing_sum():
    from minirl.nn.losses import mean_f64
    x = np.full(64, 1e37, np.float32)
    assert mean_f64(x) == _exact_mean([float(v) for v in x])     # float32 sum overflows
    assert mean_f64(np.array([1e308, 1e308])) == 1e308           # float64 sum overflows
    exact = _exact_mean([1.7e308, 1.7e308, -1e308])               # rescaled: a few roundings
    assert mean_f64(np.array([1.7e308, 1.7e308, -1e308]), 3) == pytest.approx(exact, rel=4e-16)
    assert mean_f64(np.full(3, 1.7e308), 0.5) == np.inf          # the true mean exceeds float64
    x = np.random.default_rng(0).normal(size=100)                 # normal range: same bits
    assert mean_f64(x, 7) == float(np.sum(x) / 7)


def test_float32_loss_values_are_finite_when_the_true_value_is():
    f = np.float32
    big = np.full(64, 1e37, f)
    value, grad = huber(np.zeros(64, f), big)
    assert value == _exact_mean([float(v) - 0.5 for v in big])     # |r| - delta/2, delta = 1
    assert grad.dtype == f and np.all(grad == f(-1 / 64))
    pred, tgt = np.array([3e38, 0.0], f), np.array([-3e38, 0.0], f)  # r overflows float32
    value, grad = huber(pred, tgt, delta=2.0)
    assert value == _exact_mean([2 * (2 * float(pred[0]) - 1.0), 0])
    np.testing.assert_array_equal(grad, np.array([1.0, 0.0], f))
    value, grad = weighted_nll(np.full(64, -1e37, f))
    assert value == _exact_mean([-float(f(-1e37))] * 64)
    assert grad.dtype == f
    value, _ = weighted_nll(np.full(4, -1e37, f), weights=np.full(4, 1e30, f))
    assert value == _exact_mean([float(f(1e30)) * -float(f(-1e37))] * 4)
    value, grad = mse(np.array([1e154, 1e154]), np.zeros(2))     # float64 sum of squares overflows
    assert value == _exact_mean([Fraction(1e154) ** 2] * 2)
    np.testing.assert_array_equal(grad, [1e154, 1e154])
    z = np.array([[3e38, -3e38]] * 4, f)                           # log p(1) = -6e38 in float64
    value, _ = softmax_cross_entropy(z, np.array([1, 1, 1, 1]), weights=np.full(4, 0.5, f))
    assert value == _exact_mean([0.5 * (float(z[0, 0]) - float(z[0, 1]))] * 4)


# ----- float32 residuals beyond float32 (pred - target of +-4e38) -----------------------------

def _exact(x) -> Fraction:
    return Fraction(float(x))


def test_mse_when_the_float32_residual_overflows_but_the_loss_fits_float64():
    import warnings
    f = np.float32
    pred, target = np.array([2e38, -2e38, 1.5, 0.0], f), np.array([-2e38, 2e38, 0.0, 0.0], f)
    r = [_exact(p) - _exact(t) for p, t in zip(pred, target)]      # 4e38: beyond float32
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value, grad = mse(pred, target)
        assert value == pytest.approx(float(sum(x * x for x in r) / 4), rel=1e-15)
        assert grad.dtype == f    # 2 r / 4 = +-2e38 fits float32: right, not inf
        np.testing.assert_array_equal(grad, np.array([float(2 * x / 4) for x in r], f))
        # the true gradient 2 * 4e38 / 1 is beyond float32: +inf (documented), value finite
        value, grad = mse(pred[:1], target[:1])
        assert value == float(r[0] * r[0]) and grad.dtype == f and grad[0] == np.inf
        # w * r overflows float32 (3e38 * 2 = 6e38) though 2 w r / n = 3e38 fits
        w = np.array([0.5, 0.0, 4.0, 1.0], f)
        pred2 = np.array([1e38, 3e38, 3e38, 0.0], f)
        target2 = np.array([-1e38, -3e38, 2.5e38, 0.0], f)
        r2 = [_exact(p) - _exact(t) for p, t in zip(pred2, target2)]
        value, grad = mse(pred2, target2, weights=w)
        assert value == pytest.approx(
            float(sum(_exact(wi) * x * x for wi, x in zip(w, r2)) / 4), rel=1e-15)
        np.testing.assert_array_equal(
            grad, np.array([float(2 * _exact(wi) * x / 4) for wi, x in zip(w, r2)], f))


def test_huber_weighted_gradient_when_w_times_delta_overflows_float32():
    f = np.float32
    pred, target = np.array([10.0, 0.0, 0.0, 0.0], f), np.zeros(4, f)
    w = np.array([3e38, 1.0, 1.0, 1.0], f)
    value, grad = huber(pred, target, delta=2.0, weights=w)
    assert value == pytest.approx(float(_exact(w[0]) * (2 * 10 - 2) / 4), rel=1e-15)
    assert grad.dtype == f      # 3e38 * 2 / 4 = 1.5e38 fits float32 (w * 2 does not)
    np.testing.assert_array_equal(grad, np.array([float(_exact(w[0]) * 2 / 4), 0, 0, 0], f))


@given(st.sampled_from([np.float32, np.float64]),
       st.lists(st.tuples(st.floats(width=32, allow_nan=False, allow_infinity=False),
                          st.floats(width=32, allow_nan=False, allow_infinity=False)),
                min_size=1, max_size=64))
def test_mse_inline_path_is_the_general_formula_bit_for_bit(dtype, pairs):
    """mse's inline branch (finite residuals, finite value and gradient) gives the bits of
    squared_error's general formula: mean_product_f64 for the value, product_as for dL/dpred."""
    from minirl.nn.losses import mean_product_f64, product_as
    pred = np.asarray([p for p, _ in pairs], dtype)
    target = np.asarray([t for _, t in pairs], dtype)
    n = pred.size
    with np.errstate(over="ignore", invalid="ignore"):
        r = pred - target
        grad = (2.0 / n) * r
    assume(np.isfinite(r).all())
    r64 = r.astype(np.float64)
    value, dpred = mse(pred, target)
    assert value == mean_product_f64(n, r64, r64)
    want = product_as(pred.dtype, grad, 2.0 / n, r64)
    assert dpred.dtype == dtype and dpred.tobytes() == want.tobytes()
