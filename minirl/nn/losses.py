"""Losses that return ``(value, gradient w.r.t. what the network emitted)``.

Each function returns a Python float ``value`` and an array ``d<input>`` of the input's
shape, ready to be passed as ``dy`` to a network's backward. Reduction: the **mean over all
elements** of the per-element loss (over the batch for per-sample losses), optionally
multiplied by per-element ``weights`` *before* the mean (``mean(w * l)``, not divided by
``sum(w)``: importance weights from prioritized replay and advantages in a weighted
likelihood are used this way).

| loss                          | per-element l                                 | d l / d input         |
|-------------------------------|-----------------------------------------------|-----------------------|
| ``mse(pred, target)``         | (pred - target)^2                             | 2 (pred - target)     |
| ``huber(pred, target, delta)``| r^2/2 if abs(r) <= delta else delta(abs(r) - delta/2), r = pred - target | clip(r, -delta, delta) |
| ``softmax_cross_entropy``     | logsumexp(z) - z[y]                           | softmax(z) - onehot(y)|
| ``weighted_nll(logp)``        | -logp                                         | -1                    |

and every gradient is then multiplied by ``weights / n`` (n = number of elements averaged).

Lecture: Stanford CS224R, Q-learning, "Practical Implementation Details": the DQN/SAC critic
regression ``1/N sum_i (Q(s_i, a_i) - y_i)^2`` (MSE, no 1/2), Huber loss for TD errors;
Stanford CS224R "Policy Gradients", "How to implement policy gradients?" ("surrogate
objective" = weighted maximum likelihood): cross-entropy for discrete actions,
``-1/N sum_i A_i log pi(a_i|s_i)`` in general (``weighted_nll``).
"""
from __future__ import annotations

import math

import numpy as np

from kernels._validate import as_float as _as_float


def mean_f64(terms, n=None) -> float:
    """``sum(terms) / n`` accumulated in float64, as a Python float (n defaults to the size).

    The one reduction every loss in minirl uses for its *value*: float32 per-element terms are
    summed in float64, so 64 terms of 1e37 give 6.4e37 / n instead of a float32 overflow to
    inf (gradients stay elementwise in the input's dtype). If the float64 sum itself
    overflows while every term is finite (e.g. two terms of 1e308), the mean is recomputed
    scaled by the largest |term|, so a representable mean comes out finite; a true mean
    beyond float64 is +-inf (true). Callers whose terms could overflow *elementwise* in
    float32 (a product or square) compute them in float64 first. For finite float64 terms
    whose sum does not overflow the result is bit-identical to ``float(np.sum(terms) / n)``.
    """
    t = np.asarray(terms, dtype=np.float64)
    n = max(t.size, 1) if n is None else n
    with np.errstate(over="ignore", invalid="ignore"):
        value = float(t.sum()) / n
        if not math.isfinite(value) and t.size and np.isfinite(t).all():
            scale = np.max(np.abs(t))
            value = float((np.sum(t / scale) / n) * scale)  # beyond float64: +-inf, the truth
    return value


def _frexp_product(*factors):
    """``(m, e)`` with ``prod(factors) = m * 2**e`` elementwise (float64 mantissas, int
    exponents): each factor's mantissa lies in [1/2, 1), so ``m`` can neither overflow nor
    underflow however large or small the product is. Factors must be finite."""
    m, e = np.float64(1.0), 0
    for f in factors:
        mf, ef = np.frexp(np.asarray(f, dtype=np.float64))
        m, e = m * mf, e + ef
    return m, e


def mean_product_f64(n, *factors) -> float:
    """``sum(prod(factors)) / n`` (elementwise product, broadcast) as a Python float, with no
    intermediate overflow: the terms are multiplied in float64 (for float32 factors that is
    exact up to one rounding per product); if a term overflows float64 while every factor is
    finite (e.g. ``w * r * r`` with r = 1e200), the mean is recomputed from mantissas and
    exponents (:func:`_frexp_product`) scaled by the largest exponent, so a mean that fits
    float64 comes out finite; a true mean beyond float64 is +-inf (true). For terms that do
    not overflow the value is ``mean_f64(f0 * f1 * ..., n)``, bit for bit.
    """
    fs = [np.asarray(f, dtype=np.float64) for f in factors]
    with np.errstate(over="ignore", invalid="ignore"):
        terms = fs[0]
        for f in fs[1:]:
            terms = terms * f
        value = mean_f64(terms, n)
    if math.isfinite(value) or not all(np.isfinite(f).all() for f in fs):
        return value
    m, e = _frexp_product(*fs)
    m, e = np.broadcast_arrays(m, e)
    top = int(e[m != 0].max()) if np.any(m != 0) else 0
    with np.errstate(under="ignore"):   # terms 2^-1074 below the largest: negligible
        scaled = np.ldexp(m, e - top)
    with np.errstate(over="ignore"):
        return float(np.ldexp(mean_f64(scaled, n), top))


def product_as(dtype, grad, c: float, *factors) -> np.ndarray:
    """``grad`` if it is all finite, else ``c * prod(factors)`` recomputed without
    intermediate overflow and rounded once to ``dtype``.

    ``grad`` is the caller's fast computation of ``c * prod(factors)`` in ``dtype`` (e.g.
    ``(2 / n) * (w * r)`` in float32); it is wrong where an intermediate (``r = pred -
    target``, ``w * r``) overflowed though the product fits. The recomputation is exact up to
    one rounding in float64 (mantissas and exponents, :func:`_frexp_product`) and one to
    ``dtype``: an element whose true value lies beyond the largest float of ``dtype`` is
    +-inf, IEEE's rounding of it (a gradient that overflows float32 is not representable in
    the parameters' dtype; the optimizers and ``clip_grad_norm`` then raise
    ``NonFiniteGradientError`` before any parameter changes). Factors must be finite.
    """
    if np.isfinite(grad).all():
        return grad
    m, e = _frexp_product(c, *factors)
    with np.errstate(over="ignore"):
        return np.ldexp(m, e).astype(dtype)


def diff_f64(a, b):
    """``(d, c)`` with ``a - b = c * d`` elementwise in float64, c = 1 or 2: ``d = a - b``
    unless that overflows float64 (a = 1e308, b = -1e308), then ``d = (a - b) / 2`` from the
    halves. Float32 inputs never overflow here (their difference is exact up to one
    rounding in float64)."""
    a64, b64 = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    with np.errstate(over="ignore"):
        d = a64 - b64
    if np.isfinite(d).all() or not (np.isfinite(a64).all() and np.isfinite(b64).all()):
        return d, 1.0
    return np.where(np.isfinite(d), d / 2, a64 / 2 - b64 / 2), 2.0


def squared_error(pred, target, n: int, weights=None) -> tuple[float, np.ndarray]:
    """``(L, dL/dpred)`` of ``L = sum(w * (pred - target)^2) / n`` for validated arrays of one
    shape and dtype (``weights`` broadcast to it, or None): the value in float64 without
    overflow (``mean_product_f64``: float32 residuals of 4e38 give a finite loss), the
    gradient ``2 w (pred - target) / n`` in ``pred``'s dtype, right wherever it fits that
    dtype even when ``pred - target`` or ``w * (pred - target)`` overflows there; an element
    whose true gradient is beyond the dtype's largest float is +-inf (``product_as``). The one
    computation behind ``mse``, ``critic_loss``, ``l2_loss`` and ``diffusion_eps_loss``; for
    residuals that do not overflow the value and gradient keep their old bits.
    """
    with np.errstate(over="ignore", invalid="ignore"):  # 0 * inf: set to 0 below
        r = pred - target
        wr = r if weights is None else weights * r
        grad = (2.0 / n) * wr
        if weights is None and np.isfinite(r).all():     # the usual case, inline: the
            r64 = r.astype(np.float64, copy=False)        # value and gradient of the lines
            value = float(np.add.reduce(r64 * r64, axis=None)) / n  # below, same operations
            if math.isfinite(value) and np.isfinite(grad).all():
                return value, grad
    ws = () if weights is None else (weights,)
    if np.isfinite(r).all():
        r64, c = r.astype(np.float64, copy=False), 1.0
    else:       # a residual beyond the dtype's largest float: exact in float64 (or halved)
        r64, c = diff_f64(pred, target)
    cs = () if c == 1.0 else (c, c)
    value = mean_product_f64(n, *ws, r64, *cs, r64) if ws else mean_product_f64(n, *cs, r64, r64)
    # (recomputed where non-finite: a zero weight gives 0 there, even for an overflowed r)
    return value, product_as(pred.dtype, grad, 2.0 * c / n, *ws, r64)


def _weights(weights, shape: tuple, dtype, name: str = "weights"):
    """``weights`` broadcast to ``shape`` (or None)."""
    if weights is None:
        return None
    w = _as_float(weights, name).astype(dtype, copy=False)
    try:
        return np.broadcast_to(w, shape)
    except ValueError:
        raise ValueError(f"{name} with shape {w.shape} does not broadcast to {shape}") from None


def _residual(pred, target):
    """Validated ``(pred, r = pred - target, n = max(pred.size, 1), r_half, target)`` of a regression
    loss. ``r_half`` is None unless ``pred - target`` overflowed (|r| > the largest float, e.g.
    pred = 1e308, target = -1e308); then it is the finite ``pred/2 - target/2`` (exact scaling
    by 2), from which the losses compute the right finite gradient instead of inf."""
    pred = _as_float(pred, "pred")
    target = _as_float(target, "target").astype(pred.dtype, copy=False)
    if pred.shape != target.shape:
        raise ValueError(f"pred {pred.shape} and target {target.shape} must have the same shape")
    with np.errstate(over="ignore"):
        r = pred - target
    r_half = None if np.isfinite(r).all() else pred / 2 - target / 2
    return pred, r, max(pred.size, 1), r_half, target


def _times(w, x):
    """``w * x`` with 0 * inf = 0 (a zero weight removes its element, however large)."""
    if w is None:
        return x
    with np.errstate(invalid="ignore", over="ignore"):
        return np.where(w == 0, 0.0, w * x).astype(x.dtype, copy=False)


def mse(pred, target, weights=None) -> tuple[float, np.ndarray]:
    """Mean squared error ``L = mean(w * (pred - target)^2)``; returns ``(L, dL/dpred)``.

    dL/dpred = 2 w (pred - target) / n,  n = pred.size (mean over every element).
    pred, target: same shape ``[B]`` / ``[B, K]`` / ``[T, N]``; weights: broadcastable to it.
    ``target`` gets no gradient (a stop-gradient, e.g. a TD target).
    Extremes: the value is finite whenever the true mean fits float64 (float32 inputs of
    +-2e38, whose residual overflows float32, included); a gradient element whose true value
    is beyond the largest float of ``pred``'s dtype is +-inf (IEEE rounding; the optimizers
    then raise ``NonFiniteGradientError``), every other element is right (``squared_error``).
    Lecture: Stanford CS224R, "Q-Learning: DQN pseudocode (Algorithm 1)" and the SAC
    pseudocode: critic update ``1/N sum_i [Q(s_i, a_i) - y_i]^2``.
    """
    pred = _as_float(pred, "pred")   # (_residual's checks; squared_error forms pred - target)
    target = _as_float(target, "target").astype(pred.dtype, copy=False)
    if pred.shape != target.shape:
        raise ValueError(f"pred {pred.shape} and target {target.shape} must have the same shape")
    n = max(pred.size, 1)
    w = _weights(weights, pred.shape, pred.dtype)
    # The value is a Python float summed in float64 (a float32 residual of 1e20 gives 1e40,
    # one of 4e38 -- pred - target overflowing float32 -- is exact there); the gradient stays
    # in the input's dtype, right wherever it fits it (+-inf beyond, see ``product_as``).
    return squared_error(pred, target, n, w)


def huber(pred, target, delta: float = 1.0, weights=None) -> tuple[float, np.ndarray]:
    """Huber loss ``L = mean(w * h(pred - target))``; returns ``(L, dL/dpred)``.

    h(r) = r^2 / 2                    if |r| <= delta
         = delta * (|r| - delta / 2)  otherwise         (quadratic near 0, linear tails)
    dL/dpred = w * clip(r, -delta, delta) / n,  n = pred.size.
    Equals ``torch.nn.HuberLoss(delta=delta)``; for delta = 1 also ``SmoothL1Loss``. Used
    for DQN TD errors (the gradient per sample is bounded by delta, like gradient clipping).
    Shapes as in :func:`mse`. Lecture: Stanford CS224R, Q-learning, "Dealing with TD
    Gradients": Huber loss.
    """
    if not delta > 0:
        raise ValueError(f"delta must be > 0, got {delta}")
    pred, r, n, r_half, target = _residual(pred, target)
    # The value in float64 (``mean_f64``): float32 residuals of 1e37 give a finite loss, and a
    # float32 residual beyond the float32 maximum is exact in float64.
    r64 = r if pred.dtype == np.float64 else pred.astype(np.float64) - target
    a = np.abs(r64)
    with np.errstate(over="ignore"):
        per = np.where(a <= delta, 0.5 * r64 * r64, delta * (a - 0.5 * delta))
        if r_half is not None and pred.dtype == np.float64:
            # |r| > max float: delta |r| = 2 delta |r/2| may be finite
            per = np.where(np.isfinite(r), per,
                           (2.0 * delta) * np.abs(r_half) - 0.5 * delta * delta)
    grad = np.clip(r, -delta, delta)
    w = _weights(weights, pred.shape, pred.dtype)
    if w is None:
        return mean_f64(per, n), grad / n
    per = _times(w.astype(np.float64, copy=False), per)
    with np.errstate(over="ignore"):   # w * clip(r) beyond the dtype's largest float
        dpred = (w * grad) / n         # (a weight of 3e38, delta = 2): recomputed below
    return mean_f64(per, n), product_as(pred.dtype, dpred, 1.0 / n, w, grad)


def log_softmax(logits, axis: int = -1) -> np.ndarray:
    """``z - logsumexp(z)`` along ``axis``, stable for any finite logits (e.g. +-1e3).

    The maximum is subtracted before exponentiating, so ``exp`` never overflows and the
    largest entry contributes ``exp(0) = 1`` to the sum (no ``log(0)``). An entry more than
    the largest float below the maximum (e.g. [1e308, -1e308]) gets -inf: its true
    log-probability is below -1.8e308, and its probability ``exp(-inf) = 0`` is exact.
    """
    z = _as_float(logits, "logits")
    with np.errstate(over="ignore"):  # z - max overflows to -inf only below -max_float
        shifted = z - _reduce_keepdims(np.maximum, z, axis)
    return shifted - np.log(_reduce_keepdims(np.add, np.exp(shifted), axis))


def _reduce_keepdims(ufunc, x: np.ndarray, axis: int) -> np.ndarray:
    """``ufunc.reduce(x, axis, keepdims=True)``, column by column when the axis is short.

    NumPy's reduction along a short last axis costs ~10 us on a [256, 2] policy batch, ten
    times the elementwise ops it amounts to. Below 8 entries NumPy sums sequentially too, so
    the column loop gives the same bits.
    """
    n = x.shape[axis] if x.ndim else 0
    if not 1 <= n < 8 or axis not in (-1, x.ndim - 1):
        return ufunc.reduce(x, axis=axis, keepdims=True)
    out = x[..., 0:1].copy()
    for j in range(1, n):
        ufunc(out, x[..., j:j + 1], out=out)
    return out


def softmax_cross_entropy(logits, labels, weights=None) -> tuple[float, np.ndarray]:
    """Cross-entropy of integer ``labels`` under ``softmax(logits)``; returns ``(L, dL/dlogits)``.

    L = mean_b w_b * (logsumexp(z_b) - z_b[y_b])      (stable: max subtracted)
    dL/dz_b = w_b * (softmax(z_b) - onehot(y_b)) / n,  n = number of samples b.
    logits: ``[..., K]``; labels: integer ``[...]`` in ``[0, K)``; weights: ``[...]``
    (e.g. advantages for the weighted-likelihood policy-gradient surrogate).
    Lecture: Stanford CS224R "Policy Gradients", "How to implement policy gradients?"
    (surrogate objective: weighted maximum likelihood, cross-entropy for discrete actions).
    """
    z = _as_float(logits, "logits")
    if z.ndim < 1 or z.shape[-1] < 1:
        raise ValueError(f"logits must have shape [..., K] with K >= 1, got {z.shape}")
    y = np.asarray(labels)
    if y.dtype.kind not in "iu":
        raise TypeError(f"labels must be integers, got dtype {y.dtype}")
    if y.shape != z.shape[:-1]:
        raise ValueError(f"labels must have shape {z.shape[:-1]}, got {y.shape}")
    k = z.shape[-1]
    if y.size and (y.min() < 0 or y.max() >= k):
        raise ValueError(f"labels must be in [0, {k}), got range [{y.min()}, {y.max()}]")
    n = max(y.size, 1)
    logp = log_softmax(z)                                            # [..., K]
    picked = np.take_along_axis(logp, y[..., None], axis=-1)[..., 0]  # log p(y)  [...]
    if z.dtype != np.float64 and not np.isfinite(picked).all():
        # log p(y) below -max float32 (logits > 3.4e38 apart) is finite in float64: the value
        picked = np.take_along_axis(log_softmax(z.astype(np.float64)), y[..., None], axis=-1)[..., 0]
    grad = np.exp(logp)                                              # softmax    [..., K]
    np.put_along_axis(grad, y[..., None],
                      np.take_along_axis(grad, y[..., None], axis=-1) - 1.0, axis=-1)
    w = _weights(weights, y.shape, z.dtype)
    if w is not None:
        picked = _times(w.astype(np.float64, copy=False), picked.astype(np.float64))
        grad *= w[..., None]  # (_times: log p(y) = -inf, logits > max float apart, with w = 0)
    return -mean_f64(picked, n), grad / n


def weighted_nll(logp, weights=None) -> tuple[float, np.ndarray]:
    """Weighted negative log-likelihood ``L = -mean(w * logp)``; returns ``(L, dL/dlogp)``.

    dL/dlogp = -w / n,  n = logp.size. ``logp`` is whatever a distribution's ``log_prob``
    returned (``[B]`` or ``[T, N]``); chain ``dlogp`` through the distribution's backward to
    its parameters (logits, mean/log-std), then through the network. With ``w`` = advantages
    this is the policy-gradient surrogate ``-1/N sum_i A_i log pi(a_i|s_i)``; with ``w = 1``
    it is behaviour cloning by maximum likelihood.
    """
    lp = _as_float(logp, "logp")
    n = max(lp.size, 1)
    w = _weights(weights, lp.shape, lp.dtype)
    lp64 = lp.astype(np.float64, copy=False)  # the value in float64 (``mean_f64``)
    if w is None:
        return -mean_f64(lp64, n), np.full(lp.shape, -1.0 / n, lp.dtype)
    with np.errstate(over="ignore"):  # |w logp| beyond float64: +-inf, the truth
        value = -mean_f64(w.astype(np.float64, copy=False) * lp64, n)
    return value, (-1.0 / n) * np.array(w, dtype=lp.dtype)
