"""Diagonal Gaussian policies, unbounded (``DiagGaussian``) and tanh-squashed (``TanhGaussian``).

DiagGaussian, pi(a|s) = N(a; mu, diag(sigma^2)),  sigma = exp(log_std),  z = (a - mu) / sigma:

    log pi(a|s) = sum_d [ -z_d^2 / 2 - log_std_d - log(2 pi) / 2 ]
        d/dmu_d = z_d / sigma_d,          d/dlog_std_d = z_d^2 - 1
    H = D/2 log(2 pi e) + sum_d log_std_d
    KL(p || q) = sum_d [ log sq - log sp + (sp^2 + (mp - mq)^2) / (2 sq^2) - 1/2 ]
    reparameterization:  a = mu + sigma * eps,  eps ~ N(0, I)
        dL/dmu = dL/da,   dL/dlog_std = dL/da * sigma * eps

(COL778 writes the log-likelihood gradient as -1/2 Sigma^-1 (f - a) df/dtheta; the factor
1/2 is a slip in the slide: d/dmu of -1/2 ||mu - a||^2_Sigma is -Sigma^-1 (mu - a) = z / sigma.)

TanhGaussian, for a bounded box [low, high] (SAC): u ~ N(mu, sigma^2), a = offset + scale tanh(u),
scale = (high - low) / 2, offset = (high + low) / 2. Change of variables (per dimension):

    log pi(a|s) = log N(u; mu, sigma) - sum_d [ log scale_d + log(1 - tanh(u_d)^2) ]
    log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u))      (exact, finite for any u)
        d/du log(1 - tanh(u)^2) = -2 tanh(u)

Lecture: IIT Delhi COL778 "Policy Gradients" (Rohan Paul), "Policy Gradients for Policies
Parameterized as a Gaussian Likelihood"; Stanford CS224R "Off-Policy Actor-Critic Methods"
(reparameterization trick, SAC); Stanford CS234 "Lecture 6: Policy Gradient II", "What is
KL-divergence?". Papers: Kingma & Welling 2014 (reparameterization); Haarnoja et al. 2018,
"Soft Actor-Critic", Appendix C (enforcing action bounds with tanh).

Usage (SAC's actor loss L = mean(alpha * logp - Q(s, a)) over a batch of B states):

    dist = TanhGaussian(mean, log_std, low, high)    # mean, log_std [B, D] from the actor
    a, u, eps = dist.rsample(rng)                    # a in (low, high), u pre-squash
    logp = dist.log_prob_from_pre_tanh(u)            # [B]
    q, dq_da = critic_forward_and_action_grad(obs, a)            # [B], [B, D]
    dmean, dlog_std = dist.rsample_backward(eps, da=-dq_da / B, dlogp=np.full(B, alpha / B))

Unbiased: ``rsample_backward`` returns the pathwise gradient for one eps; for eps ~ N(0, I)
its expectation is d/dtheta E_{a ~ pi}[L(a, log pi(a))] (reparameterization; needs L
differentiable in a). ``-log_prob(a)`` at one sample a ~ pi is an unbiased entropy estimate.
The other backwards are exact derivatives, not estimates.

API (``[...]`` is the batch shape, ``D`` the action dimension; every backward takes the
upstream gradient of its per-sample quantity and returns gradients in the parameters' own
shapes and dtype — a ``[D]`` free log_std receives the sum over the batch):

    DiagGaussian(mean [..., D], log_std broadcastable to [..., D])
        sample(rng) -> a [..., D];  mode() -> mean
        log_prob(a) -> [...];         log_prob_backward(a, dlogp) -> (dmean, dlog_std)
        entropy() -> [...];           entropy_backward(dent) -> (dmean, dlog_std)
        kl(other) -> [...];           kl_backward(other, dkl) -> ((dmean, dlog_std) of self,
                                                                  (dmean, dlog_std) of other)
        rsample(rng) -> (a, eps);     rsample_backward(eps, da, dlogp=None) -> (dmean, dlog_std)
    TanhGaussian(mean, log_std, low=-1.0, high=1.0)
        sample(rng) -> a;  mode() -> offset + scale tanh(mean)
        rsample(rng) -> (a, u, eps)
        log_prob_from_pre_tanh(u) -> [...]      (what SAC uses: no atanh round-trip)
        log_prob_from_pre_tanh_backward(u, dlogp) -> (dmean, dlog_std, du)
        log_prob(a) -> [...]  via a clipped atanh (ATANH_CLIP_EPS)
        log_prob_backward(a, dlogp) -> (dmean, dlog_std)
        rsample_backward(eps, da, dlogp=None) -> (dmean, dlog_std)   (pathwise, SAC actor)
        kl(other), kl_backward(other, dkl)     (= the base Gaussians' KL: tanh is a bijection)
        entropy() -> NotImplementedError (use the single-sample estimate -log_prob, as SAC does)
"""
from __future__ import annotations

import math

import numpy as np

from kernels._validate import result_dtype
from minirl.distributions.categorical import (
    _as_float,
    _check_rng,
    _Frozen,
    _phi,
    _sum_last,
    _sum_to_shape,
    _upstream,
    _value,
)

_LOG_2PI = math.log(2.0 * math.pi)
_LOG_2 = math.log(2.0)

#: ``log_prob(a)`` clips ``y = (a - offset) / scale`` to ``[-1 + eps, 1 - eps]`` before atanh,
#: so an action on the box boundary (tanh saturated in float) gets a finite log-density
#: instead of +inf. ``1 - 1e-6`` is representable in float32 too; it caps |u| at ~7.25.
ATANH_CLIP_EPS = 1e-6


def _softplus(x: np.ndarray) -> np.ndarray:
    """``log(1 + exp(x))`` without overflow."""
    return np.logaddexp(0.0, x)


def log1m_tanh2(u: np.ndarray) -> np.ndarray:
    """``log(1 - tanh(u)^2) = 2 (log 2 - |u| - softplus(-2|u|))``, finite for every finite u.

    The naive form is ``log(0) = -inf`` once ``tanh(u)`` rounds to +-1 (|u| > ~19 in float64,
    ~9 in float32); this one is exact: 1 - tanh^2 = 4 e^{-2u} / (1 + e^{-2u})^2, and it is
    even in u, so writing it with |u| keeps ``-2|u|`` from overflowing (u = -1e308 gives
    -inf, the rounding of the true -4e308, instead of inf - inf = NaN).
    """
    a = np.abs(u)
    with np.errstate(over="ignore"):
        return 2.0 * (_LOG_2 - a - _softplus(-2.0 * a))


_F32 = np.dtype(np.float32)
_FLOATS = (_F32, np.dtype(np.float64))


def _standardize(x, mean, log_std, std) -> tuple[np.ndarray, np.ndarray]:
    """``(z, z / std)`` with ``z = (x - mean) / std``, both in the broadcast shape.

    Plain arithmetic when it stays finite (the common case; float32 stays float32). Otherwise
    (std under/overflowed, ``x - mean`` overflowed, or z itself is beyond the largest float)
    both come from logarithms in float64,
        z = sign(x - mean) exp(log|x - mean| - log_std),   z / std = ... - 2 log_std,
    and are exactly 0 where x == mean. So a float32 log_std of -110 (std = 0 in float32) at
    the mean gives z = 0, not 0/0 = NaN, and values beyond the largest float become +-inf,
    their correct rounding.
    """
    with np.errstate(all="ignore"):
        return _standardize_quiet(x, mean, log_std, std)


def _standardize_quiet(x, mean, log_std, std) -> tuple[np.ndarray, np.ndarray]:
    """``_standardize`` for a caller that holds ``np.errstate(all="ignore")`` already."""
    diff = x - mean
    z = diff / std
    zs = z / std
    # all of zs finite: its sum of squares is (NaN/inf entries make it NaN/inf), or, when
    # that overflowed, entry by entry
    fz = zs.ravel()
    if math.isfinite(fz.dot(fz)) or np.isfinite(zs).all():
        return z, zs
    x64, m64 = np.asarray(x, np.float64), np.asarray(mean, np.float64)
    ls = np.asarray(log_std, np.float64)
    with np.errstate(all="ignore"):
        d = x64 - m64
        half = ~np.isfinite(d)  # |x - mean| > max float: work with (x - mean) / 2
        if half.any():
            d = np.where(half, x64 / 2.0 - m64 / 2.0, d)
        log_d = np.log(np.abs(d)) + np.where(half, _LOG_2, 0.0)
        z = np.where(d == 0.0, 0.0, np.sign(d) * np.exp(log_d - ls))
        zs = np.where(d == 0.0, 0.0, np.sign(d) * np.exp(log_d - 2.0 * ls))
    return z, zs


class DiagGaussian(_Frozen):
    """N(mean, diag(exp(log_std)^2)) over ``D``-dimensional actions.

    Shapes: mean ``[..., D]``; log_std any shape that broadcasts to mean's without enlarging
    it — a free parameter ``[D]`` or a network output ``[..., D]``. Actions, samples and eps
    are ``[..., D]``; log_prob, entropy and kl are ``[...]``. float32 is kept only if both
    parameters are float32.

    Lecture: IIT Delhi COL778 "Policy Gradients", "Policy Gradients for Policies
    Parameterized as a Gaussian Likelihood".
    """

    __slots__ = ("mean", "log_std", "std", "batch_shape", "event_dim", "dtype")

    def __init__(self, mean, log_std) -> None:
        mean_in = _as_float(mean, "mean")
        log_std_in = _as_float(log_std, "log_std")
        dtype = result_dtype(mean_in, log_std_in)
        # private read-only copies in dtype (as _param makes them; both are checked finite
        # already and dtype is the wider of the two, so the cast keeps them finite)
        mean, log_std = (np.array(mean_in, dtype=dtype, copy=True, order="C"),
                         np.array(log_std_in, dtype=dtype, copy=True, order="C"))
        mean.flags.writeable = False
        log_std.flags.writeable = False
        if mean.ndim < 1 or mean.shape[-1] < 1:
            raise ValueError(f"mean must have shape [..., D] with D >= 1, got {mean.shape}")
        if log_std.shape == mean.shape or log_std.shape == mean.shape[-1:]:
            ok = True               # the network's outputs: [..., D] or a free [D]
        else:
            try:
                ok = np.broadcast_shapes(mean.shape, log_std.shape) == mean.shape
            except ValueError:
                ok = False
        if not ok:
            raise ValueError(
                f"log_std must broadcast to mean's shape {mean.shape}, got {log_std.shape}"
            )
        self._set(mean, log_std, dtype)

    @classmethod
    def _from_checked(cls, mean: np.ndarray, log_std: np.ndarray) -> "DiagGaussian":
        """Private: the law of parameters a caller has already validated as ``__init__``
        would -- read-only private arrays of one float dtype, finite, mean ``[..., D]`` with
        D >= 1, log_std broadcasting to it -- without validating them again (gSDE builds its
        implied Gaussian every rollout step)."""
        self = object.__new__(cls)
        self._set(mean, log_std, mean.dtype)
        return self

    def _set(self, mean: np.ndarray, log_std: np.ndarray, dtype: np.dtype) -> None:
        with np.errstate(over="ignore", under="ignore"):  # std = inf / 0: see _standardize
            std = np.array(np.exp(log_std))  # np.array: a 0-d log_std gives a numpy scalar
        std.flags.writeable = False
        set_ = object.__setattr__
        set_(self, "mean", mean)  # [..., D]
        set_(self, "log_std", log_std)  # broadcastable to [..., D]
        set_(self, "std", std)  # exp(log_std), log_std's shape
        set_(self, "batch_shape", mean.shape[:-1])
        set_(self, "event_dim", mean.shape[-1])
        set_(self, "dtype", dtype)

    def _init_args(self) -> tuple:
        return (self.mean, self.log_std)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(batch_shape={self.batch_shape}, D={self.event_dim}, "
            f"log_std shape={self.log_std.shape})"
        )

    def _grads(self, dmean: np.ndarray, dlog_std: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Broadcast per-sample gradients ``[..., D]`` -> the parameters' shapes and dtype."""
        with np.errstate(over="ignore"):  # a float64 value beyond float32's range -> +-inf
            return self._grads_quiet(dmean, dlog_std)

    def _grads_quiet(self, dmean, dlog_std) -> tuple[np.ndarray, np.ndarray]:
        """``_grads`` for a caller that holds ``np.errstate(over="ignore")`` (or "all")."""
        shape = self.mean.shape
        if np.shape(dmean) != shape:     # (a view of the same shape would change no bits)
            dmean = np.broadcast_to(dmean, shape)
        if np.shape(dlog_std) != shape:
            dlog_std = np.broadcast_to(dlog_std, shape)
        return (np.array(dmean, dtype=self.dtype),
                np.array(_sum_to_shape(dlog_std, self.log_std.shape), dtype=self.dtype))

    def _action(self, a) -> np.ndarray:
        """``a`` as ``_value`` checks it (an array of exactly mean's shape and this law's
        dtype, finite), for a caller that holds ``np.errstate(all="ignore")``. Such an array
        is used as it is once its sum of squares is finite (so is every entry then); anything
        else (and an entry beyond ~1e154, or ~1e19 in float32) goes through ``_value``,
        which gives the same values or its ValueError naming a."""
        if type(a) is np.ndarray and a.dtype == self.dtype and a.shape == self.mean.shape:
            fa = a.ravel()
            if math.isfinite(fa.dot(fa)):
                return a
        return _value(a, self.mean.shape, "a", self.dtype)

    # -- sampling ------------------------------------------------------------------------------

    def rsample(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Reparameterized sample ``a = mean + std * eps``; returns ``(a, eps)``, both [..., D].

        Keep ``eps`` for ``rsample_backward``. Lecture: Stanford CS224R "Off-Policy
        Actor-Critic Methods" (reparameterization trick).
        """
        eps = _check_rng(rng).standard_normal(self.mean.shape).astype(self.dtype, copy=False)
        return self.mean + self.std * eps, eps

    def rsample_backward(self, eps, da, dlogp=None) -> tuple[np.ndarray, np.ndarray]:
        """``(dmean, dlog_std)`` of a loss L(a, logp) along the path ``a = mean + std * eps``.

            dmean = da,    dlog_std = da * std * eps - dlogp
        ``da`` [..., D] is dL/da. ``dlogp`` [...] (optional) is dL/dlogp for
        ``logp = log_prob(a)`` evaluated at the same sample: on the path,
        logp = sum_d(-eps_d^2/2 - log_std_d) - D/2 log(2 pi), so only log_std moves it.
        """
        eps = _value(eps, self.mean.shape, "eps", self.dtype)
        da = _value(da, self.mean.shape, "da", self.dtype)
        dlog_std = da * self.std * eps
        if dlogp is not None:
            dlogp = _upstream(dlogp, self.batch_shape, "dlogp", "log_prob(a)")
            dlog_std = dlog_std - np.asarray(dlogp)[..., None]
        return self._grads(da, dlog_std)

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        """One action per batch element, ``[..., D]``."""
        return self.rsample(rng)[0]

    def mode(self) -> np.ndarray:
        """The most probable action: the mean, ``[..., D]`` (a copy)."""
        return self.mean.copy()

    # -- log-likelihood ------------------------------------------------------------------------

    def log_prob(self, a) -> np.ndarray:
        """``log pi(a|s) = sum_d [-z_d^2/2 - log_std_d - log(2 pi)/2]``, ``z = (a - mean)/std``.

        a: [..., D] -> [...]. Lecture: IIT Delhi COL778 "Policy Gradients", "Policy
        Gradients for Policies Parameterized as a Gaussian Likelihood".
        """
        with np.errstate(all="ignore"):  # z^2 beyond the largest float: log_prob = -inf
            z, _ = _standardize_quiet(self._action(a), self.mean, self.log_std, self.std)
            out = _sum_last(-0.5 * z * z - self.log_std - 0.5 * _LOG_2PI)
            return out.astype(self.dtype, copy=False)

    def log_prob_backward(self, a, dlogp) -> tuple[np.ndarray, np.ndarray]:
        """``dmean = dlogp * z / std``, ``dlog_std = dlogp * (z^2 - 1)`` (log_std's shape)."""
        with np.errstate(all="ignore"):
            a = self._action(a)
            g = np.asarray(_upstream(dlogp, self.batch_shape, "dlogp", "log_prob(a)"))[..., None]
            z, z_over_std = _standardize_quiet(a, self.mean, self.log_std, self.std)
            return self._grads_quiet(g * z_over_std, g * (z * z - 1.0))

    # -- entropy -------------------------------------------------------------------------------

    def entropy(self) -> np.ndarray:
        """``H = D/2 log(2 pi e) + sum_d log_std_d`` (closed form), shape ``[...]``."""
        log_std = self.log_std
        if log_std.shape != self.mean.shape:
            log_std = np.broadcast_to(log_std, self.mean.shape)
        return (0.5 * (_LOG_2PI + 1.0) * self.event_dim + _sum_last(log_std)).astype(
            self.dtype, copy=False
        )

    def entropy_backward(self, dent) -> tuple[np.ndarray, np.ndarray]:
        """``dmean = 0``, ``dlog_std = dent`` for every d (summed to log_std's shape)."""
        g = np.asarray(_upstream(dent, self.batch_shape, "dent", "entropy()"))[..., None]
        with np.errstate(over="ignore"):
            return self._grads_quiet(np.zeros(self.mean.shape),
                                     np.broadcast_to(g, self.mean.shape))

    # -- KL divergence -------------------------------------------------------------------------

    def _other(self, other) -> tuple:
        if type(other) is not DiagGaussian:
            raise TypeError(f"other must be a DiagGaussian, got {type(other).__name__}")
        if other.event_dim != self.event_dim:
            raise ValueError(f"other must have D={self.event_dim} like self, got {other.event_dim}")
        try:
            return np.broadcast_shapes(self.mean.shape, other.mean.shape)
        except ValueError:
            raise ValueError(
                f"other's mean shape {other.mean.shape} does not broadcast with self's "
                f"{self.mean.shape}"
            ) from None

    def kl(self, other: "DiagGaussian") -> np.ndarray:
        """``KL(self || other)``, shape ``[...]`` (broadcast batch shape); >= 0, 0 iff equal.

            KL = sum_d [ log sq - log sp + (sp^2 + (mp - mq)^2) / (2 sq^2) - 1/2 ]
        Lecture: Stanford CS234 "Lecture 6: Policy Gradient II", "What is KL-divergence?"
        (here in closed form for Gaussians).
        """
        self._other(other)
        x, delta, _ = self._kl_parts(other)
        with np.errstate(over="ignore", invalid="ignore"):
            # 0.5 expm1(2x) - x = phi(-2x) / 2 with phi(u) = e^-u - 1 + u: its series near
            # x = 0, where the direct form loses ~1/|x| of its digits (KL 1e-20 was 0 or 3x off)
            terms = 0.5 * _phi(-2.0 * x) + 0.5 * (delta * delta)
            terms = np.where(x > 355.0, np.inf, terms)  # e^{2x} overflowed: inf - x, not NaN
            return np.sum(terms, axis=-1).astype(np.result_type(self.dtype, other.dtype), copy=False)

    def _kl_parts(self, other: "DiagGaussian") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(x, delta, delta / sq)`` in float64: x = log sp - log sq, delta = (mp - mq) / sq.

        Each KL term is written as 0.5 expm1(2x) - x + delta^2 / 2 (= log sq - log sp +
        (sp^2 + (mp - mq)^2) / (2 sq^2) - 1/2), the first part by the series of
        ``categorical._phi`` near x = 0: no cancellation near p == q, no inf - inf when one std
        is astronomically larger than the other.
        """
        f64 = np.float64
        lsq = np.asarray(other.log_std, f64)
        with np.errstate(over="ignore", under="ignore"):  # +-inf is the rounding of the truth
            x = np.asarray(self.log_std, f64) - lsq
            sq = np.exp(lsq)
        delta, delta_over_sq = _standardize(np.asarray(self.mean, f64),
                                            np.asarray(other.mean, f64), lsq, sq)
        return x, delta, delta_over_sq

    def kl_backward(self, other: "DiagGaussian", dkl) -> tuple[tuple, tuple]:
        """``((dmean_p, dlog_std_p), (dmean_q, dlog_std_q))`` of ``KL(p=self || q=other)``.

            dKL/dmp = (mp - mq) / sq^2 = -dKL/dmq
            dKL/dlog sp = sp^2/sq^2 - 1,    dKL/dlog sq = 1 - (sp^2 + (mp - mq)^2) / sq^2
        """
        shape = self._other(other)
        g = np.asarray(_upstream(dkl, shape[:-1], "dkl", "kl(other)"))[..., None]
        x, delta, delta_over_sq = self._kl_parts(other)
        with np.errstate(over="ignore"):
            r1 = np.expm1(2.0 * x)  # sp^2 / sq^2 - 1
            dm = g * delta_over_sq
            d_ls_p = g * r1
            d_ls_q = -g * (r1 + delta * delta)
            return _reduce(self, dm, d_ls_p, shape), _reduce(other, -dm, d_ls_q, shape)


def _sample_log_prob(mean, log_std, rng: np.random.Generator) -> tuple:
    """Private, for the rollout's ``act``: ``(a [..., D], log_prob(a) [...])`` equal bit for
    bit (and in what is drawn from ``rng``) to

        d = DiagGaussian(mean, log_std);   a = d.sample(rng);   logp = d.log_prob(a)

    for the arrays an actor network has just produced (one float dtype; log_std ``[D]`` or
    mean's shape; unchanged during the call). The same NumPy operations in the same order,
    without the distribution object (its validated private copies) and with one
    ``np.errstate``. mean and log_std are checked finite (one sum of squares) before anything
    is drawn, as the constructor checks them before ``sample``; the action is finite and
    ``_standardize`` takes its plain branch when the residual over std is finite (a NaN/inf
    action, std = 0 or inf all make it NaN/inf). Where a check fails, or the arguments are
    not of that form, the public path decides, on the same draw (its named ValueError, or
    its overflow-safe branch)."""
    dtype = getattr(mean, "dtype", None)
    if not (type(mean) is np.ndarray and type(log_std) is np.ndarray and dtype in _FLOATS
            and log_std.dtype == dtype and mean.ndim >= 1 and mean.shape[-1] >= 1
            and (log_std.shape == mean.shape[-1:] or log_std.shape == mean.shape)):
        d = DiagGaussian(mean, log_std)
        a = d.sample(rng)
        return a, d.log_prob(a)
    # the public path works on C-contiguous copies: the same layout, the same bits
    if not mean.flags.c_contiguous:
        mean = np.ascontiguousarray(mean)
    if not log_std.flags.c_contiguous:
        log_std = np.ascontiguousarray(log_std)
    if mean.shape == (1, 1):            # one env, one action (PPO InvertedPendulum-v5)
        return _sample_log_prob_one(mean, log_std, rng, dtype)
    fm, fl = mean.ravel(), log_std.ravel()
    with np.errstate(all="ignore"):
        # a NaN/inf entry (or one beyond ~1e154 / ~1e19 in float32: refused needlessly)
        # makes the sum of squares NaN/inf
        finite = math.isfinite(float(fm.dot(fm)) + float(fl.dot(fl)))
        if finite:
            eps = _check_rng(rng).standard_normal(mean.shape).astype(dtype, copy=False)
            std = np.exp(log_std)
            a = mean + std * eps                                             # rsample
            z = (a - mean) / std                                             # _standardize
            fz = (z / std).ravel()
            if math.isfinite(fz.dot(fz)):    # z / std (so a too) finite: the plain branch
                logp = _sum_last(-0.5 * z * z - log_std - 0.5 * _LOG_2PI)
                return a, logp.astype(dtype, copy=False)
    if not finite:              # NaN/inf (a named error before any draw) or a huge entry
        d = DiagGaussian(mean, log_std)
        a = d.sample(rng)
    return a, DiagGaussian(mean, log_std).log_prob(a)


def _sample_log_prob_one(mean, log_std, rng, dtype) -> tuple:
    """``_sample_log_prob`` for mean ``[1, 1]`` (log_std ``[1]`` or ``[1, 1]``): the draw,
    exp and the action on the arrays as there, the rest of log_prob on NumPy scalars of the
    same dtype (IEEE float32/float64 arithmetic: the same roundings as the array loops, at
    a fifth of their per-call cost); finiteness checked entry by entry."""
    with np.errstate(all="ignore"):
        m, ls = mean[0, 0], log_std.flat[0]
        finite = math.isfinite(m) and math.isfinite(ls)
        if finite:                       # (a NaN/inf: the constructor's error, before a draw)
            eps = _check_rng(rng).standard_normal(mean.shape).astype(dtype, copy=False)
            std = np.exp(log_std)
            a = mean + std * eps                                             # rsample
            s, z = std.flat[0], a[0, 0] - m
            z = z / s                                                        # _standardize
            if math.isfinite(z / s):
                # (the constants as scalars of the dtype: NumPy 1.x computes np.float32 with a
                # Python float in float64, NumPy 2 in float32 as the array loops do)
                t = dtype.type
                x = t(-0.5) * z * z - ls - t(0.5 * _LOG_2PI)
                return a, np.array([x + t(0.0)], dtype=dtype)   # _sum_last of one entry
    if not finite:
        d = DiagGaussian(mean, log_std)
        a = d.sample(rng)
    return a, DiagGaussian(mean, log_std).log_prob(a)


def _reduce(dist: DiagGaussian, dmean, dlog_std, shape) -> tuple[np.ndarray, np.ndarray]:
    """Gradients computed on the broadcast ``shape`` -> ``dist``'s own parameter shapes."""
    dmean = _sum_to_shape(np.broadcast_to(dmean, shape), dist.mean.shape)
    dlog_std = _sum_to_shape(np.broadcast_to(dlog_std, shape), dist.log_std.shape)
    return np.array(dmean, dtype=dist.dtype), np.array(dlog_std, dtype=dist.dtype)


class TanhGaussian(_Frozen):
    """``a = offset + scale * tanh(u)``, ``u ~ N(mean, diag(exp(log_std)^2))``, a in (low, high).

    ``mean``/``log_std`` parameterize the pre-squash Gaussian ``self.base`` (a DiagGaussian;
    same shapes and broadcasting rules); ``low``/``high`` are scalars or ``[D]`` box bounds.

    Units: ``log_prob``/``log_prob_from_pre_tanh`` are the density of a in the box's own
    units, log N(u) - sum_d log(1 - tanh(u_d)^2) - sum_d log scale_d; the last term, constant,
    makes it depend on the box (a [-2, 2] box is log 2 per dimension below [-1, 1]). minirl's
    SAC therefore builds its policy on the unit box [-1, 1] and rescales actions for the env
    outside the density, as Stable-Baselines3 does, so its entropy target is unit-free.

    Entropy: there is no closed form, so ``entropy()`` raises ``NotImplementedError``; SAC
    uses the single-sample estimate ``-log_prob_from_pre_tanh(u)`` at the reparameterized
    sample, whose gradient ``rsample_backward(eps, zeros, dlogp=-dent)`` provides.

    Lecture: Stanford CS224R "Off-Policy Actor-Critic Methods" (reparameterization, SAC).
    Paper: Haarnoja
    et al. 2018, Appendix C.
    """

    __slots__ = ("base", "mean", "log_std", "std", "batch_shape", "event_dim", "dtype",
                 "low", "high", "scale", "offset", "_log_scale_sum")

    def __init__(self, mean, log_std, low=-1.0, high=1.0) -> None:
        base = DiagGaussian(mean, log_std)
        D = base.event_dim
        low = _as_float(low, "low", dtype=base.dtype)
        high = _as_float(high, "high", dtype=base.dtype)
        for name, b in (("low", low), ("high", high)):
            if b.ndim > 1 or (b.ndim == 1 and b.shape[0] not in (1, D)):
                raise ValueError(f"{name} must be a scalar or have shape [{D}], got {b.shape}")
        low, high = np.broadcast_to(low, (D,)).copy(), np.broadcast_to(high, (D,)).copy()
        if not np.all(low < high):
            raise ValueError(f"low must be < high in every dimension, got low={low}, high={high}")
        # high/2 - low/2 == (high - low)/2 bit for bit, but cannot overflow for a huge box
        scale, offset = high / 2.0 - low / 2.0, high / 2.0 + low / 2.0
        for arr in (low, high, scale, offset):
            arr.flags.writeable = False
        set_ = object.__setattr__
        set_(self, "base", base)  # the pre-squash Gaussian over u
        for name in ("mean", "log_std", "std", "batch_shape", "event_dim", "dtype"):
            set_(self, name, getattr(base, name))
        set_(self, "low", low)  # [D]
        set_(self, "high", high)  # [D]
        set_(self, "scale", scale)  # [D] (high - low) / 2
        set_(self, "offset", offset)  # [D] (high + low) / 2
        set_(self, "_log_scale_sum", float(np.sum(np.log(scale))))

    def _init_args(self) -> tuple:
        return (self.mean, self.log_std, self.low, self.high)

    def __repr__(self) -> str:
        return (
            f"TanhGaussian(batch_shape={self.batch_shape}, D={self.event_dim}, "
            f"low={self.low}, high={self.high})"
        )

    # -- sampling ------------------------------------------------------------------------------

    def rsample(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(a, u, eps)``: eps ~ N(0, I), u = mean + std * eps, a = offset + scale * tanh(u).

        All three are ``[..., D]``; keep eps for ``rsample_backward`` and u for
        ``log_prob_from_pre_tanh``.
        """
        u, eps = self.base.rsample(rng)
        return self.offset + self.scale * np.tanh(u), u, eps

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        """One action per batch element, ``[..., D]``, inside [low, high]."""
        return self.rsample(rng)[0]

    def mode(self) -> np.ndarray:
        """``offset + scale * tanh(mean)``: the squashed Gaussian mode (deterministic action).

        This is the image of u's mode, the usual evaluation action; the a-space density's own
        maximizer differs when std is large (the Jacobian term pushes mass to the bounds).
        """
        return self.offset + self.scale * np.tanh(self.mean)

    # -- log-likelihood ------------------------------------------------------------------------

    def log_prob_from_pre_tanh(self, u) -> np.ndarray:
        """``log pi(a|s)`` at ``a = offset + scale tanh(u)``, from u [..., D] -> [...].

            log pi = log N(u; mean, std) - sum_d [log scale_d + log(1 - tanh(u_d)^2)]
        The log-det is computed as 2 (log 2 - u - softplus(-2u)), so it is finite for any u.
        """
        u = _value(u, self.mean.shape, "u", self.dtype)
        # Minus the log-det: the density in a-space is the u-density divided by |da/du|.
        base, log_det = self.base.log_prob(u), np.sum(log1m_tanh2(u), axis=-1)
        with np.errstate(invalid="ignore", over="ignore"):
            out = base - (log_det + self._log_scale_sum)
        # log N(u) falls like -u^2/2 and the log-det only like -2|u|: when both overflowed
        # to -inf the density's true log is -inf, not -inf - (-inf) = NaN.
        return np.where(base == -np.inf, base, out)[()].astype(self.dtype, copy=False)

    def log_prob_from_pre_tanh_backward(self, u, dlogp) -> tuple:
        """``(dmean, dlog_std, du)`` of ``log_prob_from_pre_tanh(u)``.

        dmean and dlog_std as for the Gaussian (the log-det does not depend on them);
            du = dlogp * ( -(u - mean) / std^2 + 2 tanh(u) ).
        """
        u = _value(u, self.mean.shape, "u", self.dtype)
        dmean, dlog_std = self.base.log_prob_backward(u, dlogp)
        g = np.asarray(_upstream(dlogp, self.batch_shape, "dlogp", "log_prob(a)"))[..., None]
        _, z_over_std = _standardize(u, self.mean, self.log_std, self.std)
        with np.errstate(over="ignore"):
            du = g * (-z_over_std + 2.0 * np.tanh(u))
            return dmean, dlog_std, np.array(du, dtype=self.dtype)

    def _pre_tanh(self, a) -> np.ndarray:
        a = _value(a, self.mean.shape, "a", self.dtype)
        tol = ATANH_CLIP_EPS * self.scale
        if np.any(a < self.low - tol) or np.any(a > self.high + tol):
            raise ValueError(f"a must lie in [low, high] = [{self.low}, {self.high}]")
        y = np.clip((a - self.offset) / self.scale, -1.0 + ATANH_CLIP_EPS, 1.0 - ATANH_CLIP_EPS)
        return np.arctanh(y)

    def log_prob(self, a) -> np.ndarray:
        """``log pi(a|s)`` of an action a [..., D] in [low, high] (e.g. from a replay buffer).

        u = atanh(clip((a - offset) / scale, -1 + eps, 1 - eps)) with eps = ATANH_CLIP_EPS,
        then ``log_prob_from_pre_tanh(u)``. Prefer ``log_prob_from_pre_tanh`` when u is known:
        the atanh round-trip loses precision near the bounds. Raises ValueError for a outside
        [low, high] (by more than ATANH_CLIP_EPS * scale), where the density is 0.
        """
        return self.log_prob_from_pre_tanh(self._pre_tanh(a))

    def log_prob_backward(self, a, dlogp) -> tuple[np.ndarray, np.ndarray]:
        """``(dmean, dlog_std)`` of ``log_prob(a)`` for a fixed action (u = atanh(...) fixed)."""
        return self.base.log_prob_backward(self._pre_tanh(a), dlogp)

    def rsample_backward(self, eps, da, dlogp=None) -> tuple[np.ndarray, np.ndarray]:
        """``(dmean, dlog_std)`` of L(a, logp) along the reparameterized path (SAC's actor loss).

        With u = mean + std * eps, a = offset + scale tanh(u), logp = log_prob_from_pre_tanh(u):
            du       = da * scale * (1 - tanh(u)^2) + dlogp * 2 tanh(u)
            dmean    = du
            dlog_std = du * std * eps - dlogp
        (on the path log N(u; mean, std) = sum(-eps^2/2 - log_std) - const, so its mean
        derivative vanishes and the log-det's -d/du = 2 tanh(u) is what is left for dlogp).
        SAC: L = alpha * logp - Q(s, a) gives da = -dQ/da, dlogp = alpha (per sample / batch).
        """
        eps = _value(eps, self.mean.shape, "eps", self.dtype)
        da = _value(da, self.mean.shape, "da", self.dtype)
        u = self.mean + self.std * eps  # the same arithmetic as rsample, so the same u
        du = da * self.scale * np.exp(log1m_tanh2(u))
        dlog_std = du * self.std * eps
        if dlogp is not None:
            g = np.asarray(_upstream(dlogp, self.batch_shape, "dlogp", "log_prob(a)"))[..., None]
            du = du + g * 2.0 * np.tanh(u)
            dlog_std = du * self.std * eps - g
        return self.base._grads(du, dlog_std)

    # -- entropy and KL ------------------------------------------------------------------------

    def entropy(self):
        """No closed form for a tanh-squashed Gaussian: raises ``NotImplementedError``."""
        raise NotImplementedError(
            "TanhGaussian has no closed-form entropy; use the single-sample estimate "
            "-log_prob_from_pre_tanh(u) at a reparameterized sample (as SAC does)"
        )

    def entropy_backward(self, dent):
        """See ``entropy``: raises ``NotImplementedError``."""
        return self.entropy()

    def _other(self, other) -> None:
        if not isinstance(other, TanhGaussian):
            raise TypeError(f"other must be a TanhGaussian, got {type(other).__name__}")
        if not (np.array_equal(self.low, other.low) and np.array_equal(self.high, other.high)):
            raise ValueError("other must have the same low and high as self")

    def kl(self, other: "TanhGaussian") -> np.ndarray:
        """``KL(self || other)`` = the pre-squash Gaussians' KL (same box required), ``[...]``.

        KL is invariant under the shared bijection u -> offset + scale tanh(u).
        """
        self._other(other)
        return self.base.kl(other.base)

    def kl_backward(self, other: "TanhGaussian", dkl) -> tuple[tuple, tuple]:
        """As ``DiagGaussian.kl_backward`` on the pre-squash Gaussians."""
        self._other(other)
        return self.base.kl_backward(other.base, dkl)
