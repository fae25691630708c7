"""Generalized state-dependent exploration (gSDE): noise that is a function of the state.

The policy's action is its mean plus a noise that is *linear in the policy's last hidden
features* z(s) [F], with a random matrix theta_eps [F, D] that is held fixed for several steps:

    a = mu(s) + eps(s),      eps(s) = z(s)^T theta_eps,      theta_eps_jk ~ N(0, sigma_jk^2)
    sigma = exp(log_std),    log_std [F, D] a free parameter (one std per entry, "full std")

For a fixed state the noise is a sum of independent Gaussians, so the action's marginal law is
a diagonal Gaussian whose variance depends on the state:

    a | s ~ N(mu(s), diag(var(s))),      var_k(s) = sum_j z_j(s)^2 sigma_jk^2 + epsilon

``epsilon`` (``SDE_EPSILON`` = 1e-6, Stable-Baselines3's value) keeps the variance positive
where every feature is 0 (z = 0 would give var = 0: log_prob = +-inf, no gradient); it caps
the smallest std at 1e-3. It is part of the density (log_prob, entropy, kl) only: the
held-noise action ``rsample_with_noise`` is exactly mu + z^T theta_eps (the two variances
differ by at most epsilon). Everything this class computes goes through that diagonal
Gaussian with log std

    ls_k(s) = 1/2 log var_k(s)                                        (float64, see below)

and the chain rule back to (log_std, z):

    d ls_k / d log_std_jk = z_j^2 sigma_jk^2 / var_k          (the share of feature j)
    d ls_k / d z_j        = z_j sigma_jk^2 / var_k

so every quantity has exact gradients with respect to ``mean``, ``log_std`` AND ``features``.
Stable-Baselines3's default (``learn_features=False``) treats z as a constant for the noise:
minirl's actor-critic network does the same and drops ``dfeatures`` (the mean still gets its
gradient through the last layer); the distribution itself returns them so they are tested.

var_k is computed as (z^2) @ sigma^2 + epsilon when that is finite; when sigma^2 or z^2
overflow, as exp(logsumexp_j(2 log|z_j| + 2 log_std_jk) (+) log epsilon), so any finite
input gives a finite (or +inf, the true rounding) log std instead of NaN.

Held noise: the agent draws the standard-normal ``eps`` [F, D] (one per env: [N, F, D]) with
``sample_noise`` at the start of every rollout and again every ``sde_sample_freq`` steps, and
acts with a = mu + z^T (sigma * eps) for all the steps in between: the exploration is smooth
in time (the same state gives the same action while eps is held) and still state dependent.
The held-noise action and its backward are the direct products (exp(log_std) * eps, then a
matmul) whenever those give a finite result (checked by one dot product of the result with
itself); only the entries that come out non-finite (sigma, a product z_j sigma_jk eps_jk or a
partial sum overflowed; the inputs are finite) are redone by ``_product_sum``: each sum's
factors are scaled exactly (z, eps, da by powers of 2, sigma by exp(log_std - its largest
log_std)), summed with every |term| < 1 and rescaled with ldexp, so they are the right finite
value (a few ulps, like the direct product) or the right-signed inf, not NaN; where the largest
terms cancel (or all scaled terms underflow) the sum is redone in log space, and exactly in
rationals where terms cancel (a term or the mean that underflowed in the scaled space survives;
0 where all cancel). A finite direct result is kept as is, also where an intermediate
underflowed (the backward forms z * da before multiplying by sigma * eps).

Paper: Raffin, Kober & Stulp (2021), "Smooth Exploration for Robotic Reinforcement Learning",
CoRL, arXiv:2005.05719 (Section 3, gSDE). Lecture: IIT Delhi COL778, "Policy Gradients"
("Policy Gradients for Policies Parameterized as a Gaussian Likelihood"), whose log-likelihood
gradient this is, with a state-dependent covariance.

API (``[...]`` is the batch shape, ``D`` the action dimension, ``F`` the feature dimension;
every backward returns ``(dmean [..., D], dlog_std [F, D], dfeatures [..., F])`` in the
parameters' dtype):

    StateDependentNoise(mean [..., D], log_std [F, D], features [..., F], epsilon=SDE_EPSILON)
        gaussian            the implied DiagGaussian(mean, ls) (read-only)
        sample(rng) -> [..., D]           from the marginal N(mu, var) (a fresh theta per row)
        mode() -> mean
        rsample_with_noise(eps) -> [..., D]       a = mu + z^T (sigma * eps); eps [F, D] (one
                                          matrix for the batch) or [..., F, D] (one per row)
        rsample_with_noise_backward(eps, da) -> (dmean, dlog_std, dfeatures)
        log_prob(a) -> [...];     log_prob_backward(a, dlogp)
        entropy() -> [...];       entropy_backward(dent)
        kl(other) -> [...];       kl_backward(other, dkl) -> (grads of self, grads of other)
    sample_noise(log_std [F, D], rng, batch_shape=()) -> eps [*batch_shape, F, D] ~ N(0, I)
"""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from kernels._validate import result_dtype
from minirl.distributions.categorical import (
    _as_float,
    _check_rng,
    _Frozen,
    _param,
    _sum_last,
    _sum_to_shape,
    _value,
)
from minirl.distributions.gaussian import _LOG_2PI, DiagGaussian

__all__ = ["SDE_EPSILON", "StateDependentNoise", "sample_noise"]

#: Added to the state-dependent variance (Stable-Baselines3's ``epsilon``): std >= 1e-3.
SDE_EPSILON = 1e-6

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
_sum = np.add.reduce


def sample_noise(log_std, rng: np.random.Generator, batch_shape=()) -> np.ndarray:
    """Standard-normal noise ``eps`` [*batch_shape, F, D] for ``rsample_with_noise``.

    The exploration matrix is theta_eps = exp(log_std) * eps ~ N(0, sigma^2) per entry; it is
    formed when acting, so the held eps follows log_std if that changes. dtype: log_std's.
    """
    log_std = _as_float(log_std, "log_std")
    if log_std.ndim != 2:
        raise ValueError(f"log_std must have shape [F, D], got {log_std.shape}")
    shape = (*tuple(batch_shape), *log_std.shape)
    return _check_rng(rng).standard_normal(shape).astype(log_std.dtype, copy=False)


def _params(mean, log_std, features) -> tuple:
    """``(mean, log_std, features, dtype)``: private read-only copies in the common float dtype
    (float32 only if all three are), NaN/inf rejected naming the argument.

    Three ndarrays of one float dtype (the actor network's outputs, every rollout step) are
    copied as they are once the sum of their sums of squares is finite (so is every entry
    then: a NaN or inf entry makes it NaN or inf); anything else, and a sum that is not
    finite (NaN/inf, or finite entries beyond ~1e154, ~1e19 in float32, whose squares
    overflow), takes the validation argument by argument."""
    if (type(mean) is np.ndarray and type(log_std) is np.ndarray
            and type(features) is np.ndarray and mean.dtype == log_std.dtype == features.dtype
            and mean.dtype in _FLOATS):
        fm, fl, fz = mean.ravel(), log_std.ravel(), features.ravel()
        with np.errstate(over="ignore", invalid="ignore", under="ignore"):  # (tiny entries'
            finite = math.isfinite(float(fm.dot(fm)) + float(fl.dot(fl))   # squares underflow
                                   + float(fz.dot(fz)))                  # harmlessly to 0)
    else:
        finite = False
    if finite:
        out = []
        for x in (mean, log_std, features):
            x = np.array(x, copy=True, order="C")
            x.flags.writeable = False
            out.append(x)
        return (*out, mean.dtype)
    mean_in = _as_float(mean, "mean")
    log_std_in = _as_float(log_std, "log_std")
    feat_in = _as_float(features, "features")
    dtype = result_dtype(mean_in, log_std_in, feat_in)
    return (_param(mean_in, "mean", dtype), _param(log_std_in, "log_std", dtype),
            _param(feat_in, "features", dtype), dtype)


def _implied_log_std(log_std: np.ndarray, z: np.ndarray, epsilon: float) -> tuple:
    """``(ls [..., D], ratio, plain)`` in float64: ls = 1/2 log(z^2 @ sigma^2 + epsilon).

    ``ratio`` is a callable ``g [..., D] -> (dlog_std [F, D], dz [..., F])`` applying the
    chain rule d ls / d(log_std, z) to an upstream gradient g of ls. ``plain``: sigma^2 and
    var are finite (the direct form; ls is finite then, var being in [epsilon, max float]).
    """
    L, z = np.asarray(log_std, np.float64), np.asarray(z, np.float64)
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        s2 = np.exp(2.0 * L)                     # sigma^2 [F, D]
        zz = z * z
        var = zz @ s2 + epsilon                   # [..., D]
        # all finite (a NaN/inf entry makes a sum of squares NaN/inf; if that overflows,
        # entry by entry)
        fs, fv = s2.ravel(), var.ravel()
        finite = math.isfinite(fs.dot(fs) + fv.dot(fv)) or (
            np.isfinite(s2).all() and np.isfinite(var).all())
    if finite:
        ls = 0.5 * np.log(var)

        def chain(g):
            h = g / var                                          # [..., D]
            z2 = zz.reshape(-1, z.shape[-1])
            dL = s2 * (z2.T @ h.reshape(-1, h.shape[-1]))        # [F, D]
            dz = z * (h @ s2.T)                                  # [..., F]
            return dL, dz
        return ls, chain, True
    # Overflow somewhere: everything in log space. t_jk = 2 log|z_j| + 2 L_jk, [..., F, D].
    with np.errstate(divide="ignore"):
        log_z2 = 2.0 * np.log(np.abs(z))                         # -inf where z == 0
    t = log_z2[..., :, None] + 2.0 * L                           # [..., F, D]
    m = np.maximum(np.max(t, axis=-2), math.log(epsilon))        # [..., D], finite
    with np.errstate(under="ignore", over="ignore"):
        total = np.sum(np.exp(t - m[..., None, :]), axis=-2) + np.exp(math.log(epsilon) - m)
        log_var = m + np.log(total)
    ls = 0.5 * log_var

    def chain(g):
        with np.errstate(under="ignore", over="ignore", invalid="ignore"):
            r = np.exp(2.0 * L - log_var[..., None, :])          # sigma^2 / var, [..., F, D]
            w = np.exp(t - log_var[..., None, :])                # z^2 sigma^2 / var (<= 1)
            dL = np.sum(w * g[..., None, :], axis=tuple(range(w.ndim - 2)))
            dz = np.sum(r * g[..., None, :], axis=-1) * z
        return dL, dz
    return ls, chain, False


def _act_with_noise(mean, log_std, features, eps, epsilon: float = SDE_EPSILON) -> tuple:
    """Private, for the rollout's ``act``: ``(a [..., D], log_prob(a) [...])`` equal bit for
    bit to

        d = StateDependentNoise(mean, log_std, features, epsilon)
        a = d.rsample_with_noise(eps);   logp = d.log_prob(a)

    for arrays an actor network has just produced (one float dtype, shapes as the constructor
    requires, unchanged during the call). It runs the same NumPy operations in the same order
    on the same values (the implied log std, std = exp of it, theta = exp(log_std) * eps,
    the action, its standardized residual) but builds no distribution: no private copies, no
    backward closure, no implied Gaussian, one ``np.errstate`` instead of five, and its
    checks as one sum of squares at the end.

    Those checks cover every branch the public path chooses (sigma^2 and the implied
    variance finite, the action finite, the residual over std finite), and log_std (-inf,
    the one NaN/inf input the others would not reveal: sigma = 0, all else finite). Where
    one fails, or the arguments are not arrays of that form, the public path itself runs on
    the same arguments (its named ValueError, or its overflow-safe branches): the result is
    the public one in every case. (No random draw is involved: eps is the held noise.)
    """
    dtype = getattr(mean, "dtype", None)
    if (type(mean) is np.ndarray and type(log_std) is np.ndarray
            and type(features) is np.ndarray and type(eps) is np.ndarray
            and dtype in _FLOATS and log_std.dtype == dtype and features.dtype == dtype
            and eps.dtype == dtype and type(epsilon) is float and 0.0 < epsilon < math.inf
            and mean.ndim >= 1 and mean.size and log_std.ndim == 2 and log_std.size
            and log_std.shape[1] == mean.shape[-1]
            and features.shape == (*mean.shape[:-1], log_std.shape[0])
            and (eps.shape == log_std.shape or eps.shape == (*mean.shape[:-1], *log_std.shape))):
        # the public path works on C-contiguous copies: the same layout, the same bits
        if not mean.flags.c_contiguous:
            mean = np.ascontiguousarray(mean)
        if not log_std.flags.c_contiguous:
            log_std = np.ascontiguousarray(log_std)
        if not features.flags.c_contiguous:
            features = np.ascontiguousarray(features)
        with np.errstate(all="ignore"):
            # _implied_log_std (finite branch), then StateDependentNoise/DiagGaussian._set
            L, z = np.asarray(log_std, np.float64), np.asarray(features, np.float64)
            s2 = np.exp(2.0 * L)
            var = (z * z) @ s2 + epsilon
            ls = (0.5 * np.log(var)).astype(dtype)
            std = np.exp(ls)
            # rsample_with_noise
            theta = np.exp(log_std) * eps
            if eps.ndim == 2:
                noise = features @ theta
            else:
                noise = np.einsum("...f,...fd->...d", features, theta)
            a = (mean + noise).astype(dtype, copy=False)
            # DiagGaussian.log_prob: _standardize's residual r and r / std
            r = (a - mean) / std
            zs = r / std
            # The checks, as one finite sum of squares (a NaN/inf entry, or one beyond
            # ~1e154 (float64) / ~1e19 (float32), makes it NaN/inf; the latter is refused
            # needlessly, the public path then decides): log_std (-inf would give sigma 0,
            # all else finite), sigma^2 and var (_implied_log_std's finite branch; then ls
            # is finite, var being in [epsilon, max]), a (rsample_with_noise's check; also
            # log_prob's check of a) and r / std (_standardize's plain branch).
            fL, fs2, fv, fa, fz = L.ravel(), s2.ravel(), var.ravel(), a.ravel(), zs.ravel()
            if math.isfinite(fL.dot(fL) + fs2.dot(fs2) + fv.dot(fv) + float(fa.dot(fa))
                             + float(fz.dot(fz))):
                logp = _sum_last(-0.5 * r * r - ls - 0.5 * _LOG_2PI)
                return a, logp.astype(dtype, copy=False)
    d = StateDependentNoise(mean, log_std, features, epsilon)
    a = d.rsample_with_noise(eps)
    return a, d.log_prob(a)


def _log_abs(x) -> tuple[np.ndarray, np.ndarray]:
    """``(log|x|, sign(x))`` in float64 (-inf, 0 where x == 0)."""
    x = np.asarray(x, np.float64)
    with np.errstate(divide="ignore"):
        return np.log(np.abs(x)), np.sign(x)


def _signed_sum(logmag, sign, axis) -> np.ndarray:
    """``sum over axis of sign * exp(logmag)`` in float64, right where a term or a partial
    sum overflows: the terms are scaled by their group's largest before summing (each
    |term| <= 1, no overflow) and the sum rescaled in log space after, so the result is the
    finite value (to a relative error of about |logmag| * 2^-52) or the right-signed inf,
    and 0 where the terms cancel exactly. ``axis`` is an int or a tuple of ints. Used by
    ``_product_sum`` for the groups whose largest terms cancel."""
    with np.errstate(invalid="ignore", over="ignore", under="ignore", divide="ignore"):
        m = np.max(logmag, axis=axis, keepdims=True)
        m = np.where(np.isfinite(m), m, 0.0)                  # every term 0: the sum is 0
        total = np.sum(sign * np.exp(logmag - m), axis=axis, keepdims=True)
        out = np.sign(total) * np.exp(m + np.log(np.abs(total)))   # total == 0 -> 0
    # The largest terms cancelled (|total| < 2^-40): terms that underflowed in the scaled space
    # may be the whole answer. Redo those few groups exactly with rationals (binary fractions).
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    axes = tuple(a % logmag.ndim for a in axes)
    bad = (np.abs(total) < 2.0 ** -40) & np.any(sign != 0, axis=axis, keepdims=True)
    if bad.any():
        keep = [a for a in range(logmag.ndim) if a not in axes]
        order = keep + list(axes)
        lg = np.transpose(logmag, order).reshape(*[logmag.shape[a] for a in keep], -1)
        sg = np.transpose(sign, order).reshape(lg.shape)
        mk, res = np.squeeze(m, axis=axes), np.squeeze(out, axis=axes).copy()
        for idx in zip(*np.nonzero(np.squeeze(bad, axis=axes))):
            res[idx] = _exact_signed_sum(lg[idx], sg[idx], float(mk[idx]))
        return res
    return np.squeeze(out, axis=axes)


_LN2_HI, _LN2_LO = 6.93147180369123816490e-01, 1.90821492927058770002e-10   # fdlibm split


def _product_sum(factors, log_std, axis, extra=None) -> np.ndarray:
    """``extra + sum over axis of prod(factors) * exp(log_std)`` in float64 (all finite
    inputs, broadcastable to one terms shape) without overflow in any product or partial sum.

    Each group (the entries summed together) is scaled exactly: every factor by a power of 2
    that brings the group's largest |factor| into [1/2, 1) and exp(log_std) by exp(c), c the
    group's largest log_std. The scaled terms (|term| < 1) are summed and the sum rescaled by
    ldexp(exp(r), n + sum of exponents), c = n ln 2 + r: a rounding error of a few ulps per
    term, like the direct product, and +-inf exactly when the true sum is beyond the float
    range. Where the largest scaled terms cancel (|sum| < 2^-40 |largest|), smaller terms
    that underflowed in the scaled space may be the answer, and every scaled term may be
    below 2^-960 (each factor's largest sits in another term): those groups are redone by
    ``_signed_sum`` (log space; exact rational summation of cancelling terms).
    """
    L = np.asarray(log_std, np.float64)
    fs = [np.asarray(f, np.float64) for f in factors]
    shape = np.broadcast_shapes(L.shape, *[f.shape for f in fs])
    nd = len(shape)
    axes = tuple(a % nd for a in ((axis,) if isinstance(axis, int) else axis))
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        Lb = np.broadcast_to(L, shape)
        c = np.max(Lb, axis=axes, keepdims=True)                      # group's largest log std
        term = np.exp(Lb - c)                                         # in (0, 1]
        E = np.zeros(c.shape, np.int64)
        nonzero = np.ones(shape, bool)                                # every factor != 0
        for f in fs:
            fb = np.broadcast_to(f, shape)
            nonzero = nonzero & (fb != 0)
            _, e = np.frexp(np.max(np.abs(fb), axis=axes, keepdims=True))   # max in [2^(e-1), 2^e)
            term = term * np.ldexp(fb, -e)                            # exact scaling, |.| < 1
            E = E + e
        big = np.max(np.abs(term), axis=axes, keepdims=True)
        S = np.sum(term, axis=axes, keepdims=True)
        cc = np.clip(c, -1e4, 1e4)        # beyond: +-inf or 0 whatever the scaled sum is
        n = np.rint(cc / _LN2_HI)
        er = np.exp((cc - n * _LN2_HI) - n * _LN2_LO)                # exp(c) = er * 2^n
        K = np.clip(E + n.astype(np.int64), -30000, 30000).astype(np.int32)
        if extra is not None:
            ex = np.broadcast_to(np.expand_dims(np.asarray(extra, np.float64), axes), S.shape)
            xs = np.ldexp(ex / er, -K)                                # extra in the scaled space
            big = np.maximum(big, np.abs(xs))
            S = S + xs
        out = np.ldexp(S * er, K)
        if extra is not None:
            out = np.where(np.isinf(xs), ex, out)                     # the noise is negligible
        nonzero = np.any(nonzero, axis=axes, keepdims=True)
        if extra is not None:
            nonzero = nonzero | (ex != 0)
        # cancelled, or every scaled term (near-)underflowed: not accurate in the scaled space
        cancelled = nonzero & ((np.abs(S) < 2.0 ** -40 * big) | (big < 2.0 ** -960))
    if cancelled.any():
        logs, signs = zip(*[_log_abs(f) for f in fs])
        lt = np.broadcast_to(sum(logs) + L, shape)
        st = np.broadcast_to(np.prod(np.broadcast_arrays(*signs), axis=0), shape)
        if extra is not None:                                         # extra as one more term
            lx, sx = _log_abs(ex)
            lt, st = np.concatenate([lt, lx], axis=axes[0]), np.concatenate([st, sx], axis=axes[0])
        exact = np.expand_dims(_signed_sum(lt, st, axes), axes)
        out = np.where(cancelled, exact, out)
    return np.squeeze(out, axis=axes)


def _exact_signed_sum(logmag, sign, m: float) -> float:
    """``sum_i sign_i exp(logmag_i)`` for one group with max(logmag) = m, summed exactly as
    rationals (each term exp(d) = mant * 2^e, d = logmag - m, mant in [1, 2)) and rescaled
    by exp(m) in log space. Terms below exp(m - 10^4) are dropped."""
    total = Fraction(0)
    for d, s in zip(np.asarray(logmag, np.float64) - m, np.asarray(sign)):
        if s == 0 or not d >= -1e4:
            continue
        e = math.floor(d / math.log(2.0))
        total += (1 if s > 0 else -1) * Fraction(math.exp(d - e * math.log(2.0))) * Fraction(2) ** e
    if total == 0:
        return 0.0
    log_abs = math.log(abs(total.numerator)) - math.log(total.denominator)
    with np.errstate(over="ignore"):
        return float(math.copysign(1.0, total) * np.exp(m + log_abs))


class StateDependentNoise(_Frozen):
    """gSDE policy: a | s ~ N(mean, diag(z^2 @ exp(2 log_std) + epsilon)) (module docstring).

    Shapes: mean ``[..., D]``; log_std ``[F, D]``; features ``[..., F]`` with the batch shape
    of mean. float32 is kept only if all three are float32. Raises ValueError naming the
    argument for a wrong shape, NaN/inf, or an epsilon that is not a positive finite number.
    """

    __slots__ = ("mean", "log_std", "features", "epsilon", "gaussian", "batch_shape",
                 "event_dim", "feature_dim", "dtype", "_chain")

    def __init__(self, mean, log_std, features, epsilon: float = SDE_EPSILON) -> None:
        mean, log_std, z, dtype = _params(mean, log_std, features)
        if mean.ndim < 1 or mean.shape[-1] < 1:
            raise ValueError(f"mean must have shape [..., D] with D >= 1, got {mean.shape}")
        D = mean.shape[-1]
        if log_std.ndim != 2 or log_std.shape[1] != D or log_std.shape[0] < 1:
            raise ValueError(f"log_std must have shape [F, {D}] (F features), got {log_std.shape}")
        F = log_std.shape[0]
        if z.shape != (*mean.shape[:-1], F):
            raise ValueError(f"features must have shape {(*mean.shape[:-1], F)} (mean's batch "
                             f"shape and F={F}), got {z.shape}")
        if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float, np.floating)) \
                or not (0.0 < epsilon < math.inf):
            raise ValueError(f"epsilon must be a positive finite number, got {epsilon!r}")
        ls, chain, plain = _implied_log_std(log_std, z, float(epsilon))
        set_ = object.__setattr__
        set_(self, "mean", mean)            # [..., D]
        set_(self, "log_std", log_std)      # [F, D]
        set_(self, "features", z)           # [..., F]
        set_(self, "epsilon", float(epsilon))
        ls = ls.astype(dtype)
        if plain or (math.isfinite(_sum(ls, None, np.float64)) if ls.dtype == _FLOATS[1]
                     else np.isfinite(ls).all()):  # float32: no overflow; always, but near
            # the float limit (plain: ls in [log(epsilon) / 2, 355], finite in float32 too)
            ls.flags.writeable = False
            set_(self, "gaussian", DiagGaussian._from_checked(mean, ls))   # the marginal law
        else:                                # DiagGaussian's own error naming log_std
            set_(self, "gaussian", DiagGaussian(mean, ls))
        set_(self, "batch_shape", mean.shape[:-1])
        set_(self, "event_dim", D)
        set_(self, "feature_dim", F)
        set_(self, "dtype", dtype)
        set_(self, "_chain", chain)

    def _init_args(self) -> tuple:
        return (self.mean, self.log_std, self.features, self.epsilon)

    def __repr__(self) -> str:
        return (f"StateDependentNoise(batch_shape={self.batch_shape}, D={self.event_dim}, "
                f"F={self.feature_dim}, epsilon={self.epsilon})")

    def _grads(self, dmean, dls) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(dmean, d implied log std) of the Gaussian -> (dmean, dlog_std, dfeatures)."""
        dL, dz = self._chain(np.asarray(dls, np.float64))
        if type(dmean) is not np.ndarray or dmean.shape != self.mean.shape:
            dmean = np.broadcast_to(dmean, self.mean.shape)
        # dmean (the Gaussian's fresh gradient when it has this shape), dL and dz are new
        # arrays of this call: cast without a second copy (astype(copy=False) and np.array
        # give the same values)
        with np.errstate(over="ignore"):
            return (np.array(dmean, dtype=self.dtype) if not dmean.flags.writeable
                    else dmean.astype(self.dtype, copy=False),
                    dL.astype(self.dtype, copy=False), dz.astype(self.dtype, copy=False))

    # -- sampling ------------------------------------------------------------------------------

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        """One action per batch element from the marginal N(mean, var), ``[..., D]``.

        Equivalent to a fresh exploration matrix for every row (plus the epsilon variance);
        the agents explore with ``rsample_with_noise`` and a held eps instead."""
        return self.gaussian.sample(rng)

    def mode(self) -> np.ndarray:
        """The deterministic action: the mean, ``[..., D]`` (a copy)."""
        return self.mean.copy()

    def _noise(self, eps, check_finite: bool = True) -> np.ndarray:
        """eps as a ``[F, D]`` or ``[..., F, D]`` array of this law's dtype; ValueError naming
        eps for another shape or (``check_finite``) NaN/inf."""
        F, D = self.feature_dim, self.event_dim
        if (not check_finite and type(eps) is np.ndarray and eps.dtype == self.dtype
                and (eps.shape == (F, D) or eps.shape == (*self.batch_shape, F, D))):
            return eps
        eps = _as_float(eps, "eps", dtype=self.dtype)
        if eps.shape != (F, D) and eps.shape != (*self.batch_shape, F, D):
            raise ValueError(f"eps must have shape {(F, D)} or {(*self.batch_shape, F, D)}, "
                             f"got {eps.shape}")
        return eps

    def rsample_with_noise(self, eps) -> np.ndarray:
        """``a = mean + z^T (exp(log_std) * eps)`` [..., D] for a held standard-normal eps.

        eps: ``[F, D]`` (one exploration matrix for every row) or ``[..., F, D]`` (one per
        row, e.g. per env). Deterministic given eps: the same state gives the same action.
        """
        # Finiteness of eps is checked only if the action is not finite (every entry of eps
        # enters some action, so a NaN/inf one always makes it so) or there is no action.
        eps = self._noise(eps, check_finite=self.mean.size == 0)
        with np.errstate(over="ignore", invalid="ignore"):
            theta = np.exp(self.log_std) * eps                   # [(...,) F, D]
            if eps.ndim == 2:
                noise = self.features @ theta
            else:
                noise = np.einsum("...f,...fd->...d", self.features, theta)
            a = (self.mean + noise).astype(self.dtype, copy=False)
            flat = a.ravel()
            suspect = not math.isfinite(flat.dot(flat))   # NaN/inf in a (or |a| > ~1e154)
        if suspect:
            eps = self._noise(eps)                   # NaN/inf eps: the named error
            # sigma, z_j theta_jk or a partial sum overflowed (the inputs are finite): redo the
            # non-finite entries as one scaled signed sum of [z_j sigma_jk eps_jk]_j and mean_k.
            exact = _product_sum([self.features[..., :, None], eps], self.log_std, -2,
                                 extra=self.mean)
            with np.errstate(over="ignore"):
                a = np.where(np.isfinite(a), a, exact.astype(self.dtype))
        return a

    def rsample_with_noise_backward(self, eps, da) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Pathwise gradients of L(a) for a = mean + z^T (sigma * eps):

            dmean = da,   dlog_std_jk = sum_rows z_j sigma_jk eps_jk da_k,
            dfeatures_j = sum_k sigma_jk eps_jk da_k
        """
        eps = self._noise(eps).astype(np.float64)
        da = _value(da, self.mean.shape, "da", self.dtype).astype(np.float64)
        z = self.features.astype(np.float64)
        with np.errstate(over="ignore", invalid="ignore"):
            theta = np.exp(self.log_std.astype(np.float64)) * eps
            if eps.ndim == 2:
                z2, da2 = z.reshape(-1, z.shape[-1]), da.reshape(-1, da.shape[-1])
                dL = theta * (z2.T @ da2)
                dz = da @ theta.T
            else:
                outer = z[..., :, None] * da[..., None, :]           # [..., F, D]
                dL = _sum_to_shape(theta * outer, self.log_std.shape)
                dz = np.einsum("...fd,...d->...f", theta, da)
            fL, fz = dL.ravel(), dz.ravel()
            suspect = not math.isfinite(fL.dot(fL) + fz.dot(fz))   # NaN/inf (or |.| > ~1e154)
        if suspect:
            # sigma or a product overflowed: the non-finite entries as scaled signed sums.
            rows = tuple(range(z.ndim - 1))                            # batch axes
            dL = np.where(np.isfinite(dL), dL, _product_sum(
                [z[..., :, None], eps, da[..., None, :]], self.log_std, rows))
            dz = np.where(np.isfinite(dz), dz, _product_sum(
                [eps, da[..., None, :]], self.log_std, -1))
        with np.errstate(over="ignore"):
            return (np.array(da, dtype=self.dtype), np.array(dL, dtype=self.dtype),
                    np.array(dz, dtype=self.dtype))

    # -- log-likelihood, entropy, KL: the implied Gaussian's, chained to (log_std, z) ----------

    def log_prob(self, a) -> np.ndarray:
        """``log N(a; mean, var) = sum_k [-(a_k - mu_k)^2 / (2 var_k) - ls_k - log(2 pi)/2]``."""
        return self.gaussian.log_prob(a)

    def log_prob_backward(self, a, dlogp) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(dmean, dlog_std [F, D], dfeatures)`` of ``log_prob(a)``."""
        dmean, dls = self.gaussian.log_prob_backward(a, dlogp)
        return self._grads(dmean, dls)

    def entropy(self) -> np.ndarray:
        """``H = D/2 log(2 pi e) + sum_k ls_k(s)``, ``[...]`` (depends on the state via z)."""
        return self.gaussian.entropy()

    def entropy_backward(self, dent) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(0, dlog_std, dfeatures)`` of ``entropy()``: dH/d ls_k = 1."""
        dmean, dls = self.gaussian.entropy_backward(dent)
        return self._grads(dmean, dls)

    def _other(self, other) -> None:
        if not isinstance(other, StateDependentNoise):
            raise TypeError(f"other must be a StateDependentNoise, got {type(other).__name__}")
        if other.mean.shape != self.mean.shape:
            raise ValueError(f"other must have mean shape {self.mean.shape} like self, got "
                             f"{other.mean.shape}")

    def kl(self, other: "StateDependentNoise") -> np.ndarray:
        """``KL(self || other)`` per state, ``[...]``: the implied diagonal Gaussians' KL."""
        self._other(other)
        return self.gaussian.kl(other.gaussian)

    def kl_backward(self, other: "StateDependentNoise", dkl) -> tuple[tuple, tuple]:
        """``((dmean, dlog_std, dfeatures) of self, (dmean, dlog_std, dfeatures) of other)``."""
        self._other(other)
        (dmp, dlp), (dmq, dlq) = self.gaussian.kl_backward(other.gaussian, dkl)
        return self._grads(dmp, dlp), other._grads(dmq, dlq)
