"""Products ``r * c`` of an importance ratio r = exp(log_r) with a coefficient c, exact per
element when float64 r overflows or underflows (shared by the PPO, KL and off-policy
policy-gradient objectives).

The true value of ``r * c`` is a real number whatever float64 makes of r: with c = 0 it is
exactly 0 (an advantage of 0 contributes no term and no gradient, however large r), and
otherwise it is sign(c) exp(log_r + log|c|) -- finite when log_r + log|c| is below
log(max float), +-inf (the truth's rounding) above. Computing ``np.exp(log_r) * c`` directly
gives inf * 0 = NaN and inf - inf = NaN instead. Both functions below compute the direct
product first and fall back to log space only where it is not finite (or r underflowed), so
ordinary inputs keep their bits.
"""
from __future__ import annotations

import numpy as np

from minirl.nn.losses import mean_f64

_TINY = np.finfo(np.float64).tiny
_SPLIT = 1400.0  # |x| <= 1400: exp(x) = exp(x/2)^2 with each half inside float64's exp range


def _exp_times(x, y):
    """``exp(x) * y`` for float64 arrays, y >= 0, without overflowing the intermediate: as
    (exp(x/2) * y) * exp(x/2) (x/2 exact: a few ulp of relative error, where exp(x + log y)
    would carry |x| ulp) for |x| <= 1400, else exp(x + log y) (then inf, 0 or near them)."""
    with np.errstate(over="ignore", under="ignore", divide="ignore"):
        h = x / 2
        e = np.exp(h)
        near = np.abs(x) <= _SPLIT
        far = np.exp(x + np.log(np.where(near, 1.0, y)))
        return np.where(near, (e * y) * e, far)


def ratio_times(log_r, c, divisor: float = 1.0, r=None) -> np.ndarray:
    """Elementwise ``exp(log_r) * c / divisor`` in float64, exact where r over/underflows.

    ``log_r`` float64 (may hold +-inf from an overflowing difference of log-probs), ``c``
    finite and broadcastable to it, ``divisor`` > 0; ``r = exp(log_r)`` if already computed.
    Result: 0 where c = 0; sign(c) exp(log_r + log|c| - log divisor) where the direct
    ``(r * c) / divisor`` is not finite or r is subnormal or 0; else the direct value.
    """
    log_r = np.asarray(log_r, np.float64)
    c = np.broadcast_to(np.asarray(c, np.float64), log_r.shape)
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        if r is None:
            r = np.exp(log_r)
        out = (r * c) / divisor
        bad = ~np.isfinite(out) | ((r < _TINY) & (c != 0))
        if bad.any():
            cb, lb = c[bad], log_r[bad]
            mag = _exp_times(lb, np.abs(cb) / divisor)
            out[bad] = np.where(cb == 0, 0.0, np.sign(cb) * mag)
    return out


def mean_ratio_times(log_r, c, b=None, n: float | None = None, r=None) -> float:
    """``(1/n) sum_i (exp(log_r_i) c_i + b_i)`` as a Python float, without spurious NaN/inf.

    ``c`` and ``b`` (default 0) finite, broadcastable to ``log_r``; n defaults to the size;
    ``r = exp(log_r)`` if already computed.
    Direct float64 first (bit-identical to ``mean_f64(r * c + b, n)`` for ordinary input);
    if that is not finite, the r-part is a signed log-sum-exp: with l_i = log_r_i + log|c_i|
    (terms with c_i = 0 dropped), m = max log_r_i and C = max |c_i|, sum_i r_i c_i =
    exp(m) C sum_i exp(log_r_i - m) (c_i / C), so ratios beyond float64 cancel or dominate as the real numbers do, and the
    mean is +-inf only when the true mean is beyond float64. Raises FloatingPointError if
    log_r itself is +inf (an overflowing log-ratio) for terms of both signs (the real
    value is then not determined by the float64 inputs).
    """
    log_r = np.asarray(log_r, np.float64)
    c = np.broadcast_to(np.asarray(c, np.float64), log_r.shape)
    b = np.zeros(log_r.shape) if b is None else np.broadcast_to(np.asarray(b, np.float64),
                                                                log_r.shape)
    n = max(log_r.size, 1) if n is None else n
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        direct = mean_f64(np.where(c == 0, 0.0, (np.exp(log_r) if r is None else r) * c) + b, n)
        if np.isfinite(direct):
            return direct
        keep = c != 0
        if not keep.any():
            return mean_f64(b, n)
        lk, ck = log_r[keep], c[keep]
        m = np.max(lk)
        if m == np.inf:
            s = np.sign(ck[lk == np.inf])
            if (s != s[0]).any():
                raise FloatingPointError(
                    "logp - logp_old overflowed float64 (+inf) on samples whose coefficients "
                    "(advantages) have opposite signs: the loss is undetermined; rescale logp")
            return float(s[0] * np.inf)
        # sum_i r_i c_i = exp(m) cmax sum_i exp(l_i - m) (c_i / cmax): every factor <= 1
        cmax = np.max(np.abs(ck))
        total = np.sum(np.exp(lk - m) * (ck / cmax))
        part = 0.0 if total == 0 else float(np.sign(total) * _exp_times(
            np.float64(m), np.abs(total) * cmax / n))
        return part + mean_f64(b, n)
