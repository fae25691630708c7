"""Categorical policy over ``A`` discrete actions, parameterized by unnormalized logits.

    pi(a|s) = softmax(z)_a = exp(z_a - logsumexp(z)),          z = logits  [..., A]
    log pi(a|s) = z_a - logsumexp(z)                         (stable: max subtracted first)
    d log pi(a|s) / dz = onehot(a) - p                          (the fused softmax-CE gradient)
    H(p) = -sum_a p_a log p_a,          dH/dz_j = -p_j (log p_j + H)
    KL(p || q) = sum_a p_a (log p_a - log q_a) = log1p(sum_a p_a phi(u_a))   (>= 0, no
        cancellation; phi(u) = e^-u - 1 + u, u_a = log p_a - log q_a - KL; see _kl_float64)
        dKL/dz^p_j = p_j (log p_j - log q_j - KL),     dKL/dz^q_j = q_j - p_j

Extreme logits: every finite logit is accepted. When two logits differ by more than the
largest float (e.g. [1e308, -1e308]) the smaller one's log-probability overflows to -inf and
its probability is exactly 0; such an action contributes 0 to the entropy, to KL(p||q) when
p_a = 0, and to every gradient (0 * log 0 = 0), so results stay finite. KL(p||q) is +inf when
q_a = 0 < p_a (the true value), and ``kl_backward`` then raises ValueError (no finite gradient).

Lecture: Stanford CS224R, imitation learning, "Learning distributions with neural networks"
(1D discrete actions: the net outputs a categorical distribution); Stanford CS224R "Policy
Gradients", "How to implement policy gradients?" and IIT Delhi COL778 "Policy Gradients"
(Rohan Paul), the "surrogate objective" / "pseudo-loss" as a weighted maximum likelihood
(cross-entropy for a discrete policy); Stanford CS234 "Lecture 6: Policy Gradient II"
(Emma Brunskill), "What is KL-divergence?" (KL >= 0, KL(P||P) = 0).

Usage (PPO's policy loss; every step exact, no estimator involved):

    dist = Categorical(logits)                       # logits [B, A] from the policy net
    logp = dist.log_prob(actions)                    # [B]
    loss, dlogp = ppo_clip_loss(logp, logp_old, adv, clip_eps)   # minirl.objectives
    dlogits = dist.log_prob_backward(actions, dlogp)             # [B, A]
    ent = dist.entropy(); dlogits += dist.entropy_backward(-ent_coef / B)  # entropy bonus

This module also holds the few private helpers that every distribution in
``minirl.distributions`` shares (parameter freezing, upstream-gradient checks, reduction of a
broadcast gradient to a parameter's own shape).
"""
from __future__ import annotations

import math

import numpy as np

from kernels._validate import as_float as _as_float
from minirl.nn.losses import log_softmax

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))

# ----------------------------------------------------------------------------------------------
# Shared private helpers (used by gaussian.py and mixture.py too).
# ----------------------------------------------------------------------------------------------


def _param(x, name: str, dtype=None) -> np.ndarray:
    """A private, read-only float copy of a distribution parameter (NaN/inf rejected by name)."""
    arr = np.array(_as_float(x, name, dtype=dtype), copy=True, order="C")
    arr.flags.writeable = False
    return arr


def _upstream(d, shape: tuple, name: str, quantity: str) -> np.ndarray:
    """An upstream gradient: a scalar or an array with exactly the quantity's ``shape``."""
    arr = _as_float(d, name)
    if arr.ndim != 0 and arr.shape != shape:
        raise ValueError(
            f"{name} must be a scalar or have the shape of {quantity} {shape}, got {arr.shape}"
        )
    return arr


def _value(x, shape: tuple, name: str, dtype) -> np.ndarray:
    """A float argument (an action, a noise draw) that must have exactly ``shape``."""
    arr = _as_float(x, name, dtype=dtype)
    if arr.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {arr.shape}")
    return arr


def _sum_to_shape(grad: np.ndarray, shape: tuple) -> np.ndarray:
    """Sum a broadcast gradient back to the parameter's own ``shape`` (reverse of broadcasting).

    A parameter of shape ``[D]`` used in a ``[B, D]`` computation receives the sum over ``B``.
    """
    lead = grad.ndim - len(shape)
    if lead > 0:
        grad = grad.sum(axis=tuple(range(lead)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    return grad


def _sum_last(x: np.ndarray):
    """``np.add.reduce(x, axis=-1)`` of a float array ``x`` with at least one dimension, the
    same bits and type, without the reduction's ~1.5 us when the last axis has one entry
    (D = 1, every preset's Box action but one): there the reduction is 0 + x (so -0.0 becomes
    +0.0; NaN payloads kept), as here. (Integer or bool input would come back as float64,
    where the reduction keeps int64: the callers pass float log-densities only.)"""
    if x.shape[-1] != 1:
        return np.add.reduce(x, axis=-1)
    return (x[..., 0] if x.ndim > 1 else x[0]) + x.dtype.type(0.0)   # (NumPy 1.x: a Python
    # 0.0 would make a float32 scalar float64)


def _check_rng(rng) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    return rng


class _Frozen:
    """Attributes are set once in ``__init__`` (via ``object.__setattr__``) and never again."""

    __slots__ = ()

    def __setattr__(self, name, value):
        raise AttributeError(f"{type(self).__name__} is immutable; build a new one instead")

    def __reduce__(self):
        # pickle/copy rebuild from the constructor's arguments (slot-by-slot setattr would raise)
        return type(self), self._init_args()


# ----------------------------------------------------------------------------------------------
# Categorical
# ----------------------------------------------------------------------------------------------


class Categorical(_Frozen):
    """pi(a|s) = softmax(logits)_a over actions ``0 .. A-1``; batch shape ``logits.shape[:-1]``.

    Shapes (``[...]`` is the batch shape, e.g. ``[B]`` or ``[T, N]``):
        logits, probs, log_probs   [..., A]   float32 or float64 (float32 kept if given)
        a (actions)                [...]      int64, 0 <= a < A
        log_prob, entropy, kl      [...]
        every backward             returns gradients in the logits' shape and dtype

    Action masking: use a large negative finite logit (e.g. -1e9) rather than -inf; inf and
    NaN are rejected so that a corrupted network output fails loudly.

    Lecture: Stanford CS224R, imitation learning, "Learning distributions with neural
    networks" (1D discrete actions).
    """

    __slots__ = ("logits", "log_probs", "probs", "batch_shape", "n_actions", "dtype")

    def __init__(self, logits) -> None:
        logits = _param(logits, "logits")
        if logits.ndim < 1 or logits.shape[-1] < 1:
            raise ValueError(f"logits must have shape [..., A] with A >= 1, got {logits.shape}")
        self._set_logits(logits)

    def _set_logits(self, logits: np.ndarray) -> None:
        """Fill the frozen fields from validated, read-only logits ``[..., A]``."""
        log_probs = log_softmax(logits)
        log_probs.flags.writeable = False
        probs = np.exp(log_probs)
        probs.flags.writeable = False
        set_ = object.__setattr__
        set_(self, "logits", logits)  # [..., A]
        set_(self, "log_probs", log_probs)  # [..., A] log pi(a|s) for every a
        set_(self, "probs", probs)  # [..., A] sums to 1 over the last axis
        set_(self, "batch_shape", logits.shape[:-1])
        set_(self, "n_actions", logits.shape[-1])
        set_(self, "dtype", logits.dtype)

    @classmethod
    def _trusted(cls, logits: np.ndarray) -> "Categorical":
        """Wrap logits that minirl's own network just produced: a C-contiguous float32/64
        ``[..., A]`` array, A >= 1. Skips the constructor's dtype normalization and shape checks
        (~15 us per call, which PPO pays ~20k times per 100k steps); NaN/inf are still rejected
        (by ``log_softmax``) so a diverged network fails loudly. The logits are copied because
        the caller's array may be a reused network buffer.
        """
        logits = logits.copy()
        logits.flags.writeable = False
        self = object.__new__(cls)
        self._set_logits(logits)
        return self

    def _init_args(self) -> tuple:
        return (self.logits,)

    def __repr__(self) -> str:
        return f"Categorical(batch_shape={self.batch_shape}, n_actions={self.n_actions})"

    def _actions(self, a) -> np.ndarray:
        a = np.asarray(a)
        if a.dtype.kind not in "iu":  # bool and float actions are bugs, not actions
            raise TypeError(f"a must be an integer array of action indices, got dtype {a.dtype}")
        if a.shape != self.batch_shape:
            raise ValueError(f"a must have the batch shape {self.batch_shape}, got {a.shape}")
        if a.size and (a.min() < 0 or a.max() >= self.n_actions):
            raise ValueError(
                f"a must lie in [0, {self.n_actions}), got values in [{a.min()}, {a.max()}]"
            )
        return a.astype(np.int64, copy=False)

    def _indices(self, a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(row, action) index pairs into ``[prod(batch_shape), A]``: the flat form of ``a``
        (fancy indexing, not take_along_axis: ~4x less overhead on a PPO minibatch)."""
        cols = a.reshape(-1)
        return np.arange(cols.size), cols

    # -- sampling ------------------------------------------------------------------------------

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        """One action per batch element, ``[...]`` int64, by the Gumbel-max trick.

        ``argmax(z + G)`` with ``G ~ Gumbel(0, 1)`` i.i.d. is exactly softmax(z)-distributed
        and never picks an action whose probability underflowed to 0 (unlike an inverse CDF,
        whose rounded last bin can).
        """
        g = _check_rng(rng).gumbel(size=self.logits.shape)
        return np.argmax(self.logits + g, axis=-1).astype(np.int64)

    def mode(self) -> np.ndarray:
        """The most probable action ``argmax_a z_a``, ``[...]`` int64 (first one on ties)."""
        return np.argmax(self.logits, axis=-1).astype(np.int64)

    # -- log-likelihood ------------------------------------------------------------------------

    def log_prob(self, a) -> np.ndarray:
        """``log pi(a|s) = z_a - logsumexp(z)``, shape ``[...]``.

        Lecture: Stanford CS224R "Policy Gradients", "How to implement policy gradients?"
        ("surrogate objective"); IIT Delhi COL778 "Policy Gradients" ("pseudo-loss"):
        cross-entropy = -log_prob for discrete actions.
        """
        rows, cols = self._indices(self._actions(a))
        return self.log_probs.reshape(-1, self.n_actions)[rows, cols].reshape(self.batch_shape)

    def log_prob_backward(self, a, dlogp) -> np.ndarray:
        """``dlogits = dlogp * (onehot(a) - p)``, shape ``[..., A]``.

        ``dlogp`` ([...] or scalar) is dL/dlog_prob(a); the result is dL/dlogits.
        """
        rows, cols = self._indices(self._actions(a))
        dlogp = _upstream(dlogp, self.batch_shape, "dlogp", "log_prob(a)")
        g = np.negative(self.probs, dtype=np.result_type(self.dtype, dlogp.dtype))   # -p
        g.reshape(-1, self.n_actions)[rows, cols] += 1.0                           # onehot(a) - p
        g *= np.asarray(dlogp)[..., None]
        return g.astype(self.dtype, copy=False)

    # -- entropy -------------------------------------------------------------------------------

    def entropy(self) -> np.ndarray:
        """``H = -sum_a p_a log p_a``, shape ``[...]`` (0 <= H <= log A).

        Terms with p_a = 0 contribute 0, also when log p_a overflowed to -inf (logits more
        than the largest float apart, e.g. [1e308, -1e308]: H = 0, not NaN).
        """
        h = 0.0 - np.sum(self._p_times(self.log_probs), axis=-1)  # 0 - x: H = +0, not -0
        near = self._near_deterministic()
        if near is None:
            return h
        _, h_near = self._precise_parts(near)
        return np.where(near, h_near, h).astype(h.dtype, copy=False)

    # Where the largest probability exceeds 1 - 1e-3, log p_max = -log1p(sum of the others)
    # ~ -(1 - p_max) is rounded (log_softmax's log(1 + tiny) is log(1) = 0 below ~1e-16), and
    # with it H ~ (1 - p_max)(1 + |log p_other|) loses its leading digits: e.g. logits [40, 0]
    # gave H = 1.6993e-16 instead of 1.7418e-16. There H and log p are recomputed in float64:
    #   log p_a = s_a - log1p(R),  H = log1p(R) - sum_a p_a s_a,
    # s_a = z_a - max z <= 0 and R = sum of exp(s_a) over all but one maximal entry: two
    # non-negative terms, no cancellation. Elsewhere the usual form is exact to rounding (and
    # keeps its bits).
    _NEAR = 1.0 - 1e-3

    def _near_deterministic(self):
        """Boolean ``[...]`` rows whose largest probability exceeds 1 - 1e-3, or None."""
        above = self.probs > self._NEAR
        if self.n_actions < 2 or not above.any():  # the common case: one cheap pass
            return None
        return above.any(axis=-1)

    def _precise_parts(self, near):
        """``(log_probs, H)`` in float64 by the log1p form above (valid on every row; the
        callers use it where ``near``)."""
        z = self.logits.astype(np.float64)
        with np.errstate(over="ignore", invalid="ignore"):  # z - max below -max float: -inf
            s = z - z.max(axis=-1, keepdims=True)
            e = np.exp(s)
            first = np.argmax(z, axis=-1)[..., None]
            others = e.copy()
            np.put_along_axis(others, first, 0.0, axis=-1)
            lse = np.log1p(others.sum(axis=-1, keepdims=True))       # log sum_a exp(s_a)
            p = e / (1.0 + others.sum(axis=-1, keepdims=True))
            ps = np.where(e > 0.0, p * s, 0.0)
        h = lse[..., 0] - np.sum(ps, axis=-1)
        return s - lse, h

    def _p_times(self, x: np.ndarray) -> np.ndarray:
        """``p * x`` with the convention 0 * (+-inf) = 0 (p_a = 0 terms contribute nothing)."""
        if np.isfinite(self.log_probs).all():  # the common case: no -inf log-probability
            return self.probs * x
        with np.errstate(invalid="ignore"):
            px = self.probs * x
        return np.where(self.probs == 0.0, 0.0, px).astype(px.dtype, copy=False)

    def entropy_backward(self, dent) -> np.ndarray:
        """``dlogits_j = dent * (-p_j (log p_j + H))``, shape ``[..., A]``."""
        dent = _upstream(dent, self.batch_shape, "dent", "entropy()")
        h = self.entropy()[..., None]
        g = -self._p_times(self.log_probs + h)
        near = self._near_deterministic()
        if near is not None:  # log p_max + H there: both from the precise float64 form
            logp, h64 = self._precise_parts(near)
            with np.errstate(invalid="ignore"):
                g_near = -np.where(self.probs > 0, self.probs * (logp + h64[..., None]), 0.0)
            g = np.where(near[..., None], g_near, g)
        return (np.asarray(dent)[..., None] * g).astype(self.dtype, copy=False)

    # -- KL divergence -------------------------------------------------------------------------

    def _other(self, other) -> tuple:
        if not isinstance(other, Categorical):
            raise TypeError(f"other must be a Categorical, got {type(other).__name__}")
        if other.n_actions != self.n_actions:
            raise ValueError(
                f"other must have {self.n_actions} actions like self, got {other.n_actions}"
            )
        try:
            shape = np.broadcast_shapes(self.batch_shape, other.batch_shape)
        except ValueError:
            raise ValueError(
                f"other's batch shape {other.batch_shape} does not broadcast with "
                f"self's {self.batch_shape}"
            ) from None
        return shape

    def kl(self, other: "Categorical") -> np.ndarray:
        """``KL(self || other)`` per batch element, shape ``[...]`` (the broadcast batch shape).

        ``KL(p||q) = sum_a p_a (log p_a - log q_a) >= 0``, zero iff p == q. Batch shapes
        broadcast (e.g. other = a fixed ``[A]`` prior). Computed in float64 as
        ``log1p(sum_a p_a phi(u_a))`` (see ``_kl_float64``): a sum of non-negative terms,
        right to a few ulp relative also near determinism and for p close to q, and never
        negative. Lecture: Stanford CS234 "Lecture 6: Policy Gradient II", "What is
        KL-divergence?".
        """
        self._other(other)
        return self._kl_parts(other)[0]

    def _kl_parts(self, other: "Categorical"):
        """``(kl [...], d_self [..., A], d_other [..., A])`` for dkl = 1 in the result dtype,
        on the broadcast batch. Rows whose logits are more than the largest float apart (log
        p or log q is -inf, or z - w overflows) take the plain form
        ``sum_a p_a (log p_a - log q_a)`` (0 where p_a = 0, +inf where q_a = 0 < p_a)."""
        dtype = np.result_type(self.dtype, other.dtype)
        kl, d_self, d_other, valid = _kl_float64(self.logits, other.logits)
        if not valid.all():
            with np.errstate(invalid="ignore"):  # -inf - (-inf) where both are 0; masked
                diff = self.log_probs - other.log_probs
                terms = self._p_times(diff)
                kl_plain = np.sum(terms, axis=-1)
                ds_plain = self._p_times(diff - kl_plain[..., None])
            kl = np.where(valid, kl, kl_plain)
            d_self = np.where(valid[..., None], d_self, ds_plain)
            d_other = np.where(valid[..., None], d_other, other.probs - self.probs)
        with np.errstate(over="ignore"):  # float32 result beyond its range: inf, the truth
            return kl.astype(dtype, copy=False), d_self, d_other

    def kl_backward(self, other: "Categorical", dkl) -> tuple[np.ndarray, np.ndarray]:
        """``(dlogits_self, dlogits_other)`` of ``KL(self || other)``, each in its own shape.

            dKL/dz^p_j = p_j (log p_j - log q_j - KL) = p_j u_j    (sums to 0 over j)
            dKL/dz^q_j = q_j - p_j = p_j expm1(log q_j - log p_j)
        """
        shape = self._other(other)
        dkl = np.asarray(_upstream(dkl, shape, "dkl", "kl(other)"))[..., None]
        kl, d_self, d_other = self._kl_parts(other)
        if not np.isfinite(kl).all():
            raise ValueError("kl_backward: KL(self || other) is +inf (other gives probability 0 "
                             "to an action self gives probability > 0); no finite gradient")
        d_self = np.broadcast_to(dkl * d_self, shape + (self.n_actions,))
        d_other = np.broadcast_to(dkl * d_other, shape + (self.n_actions,))
        return (
            _sum_to_shape(d_self, self.logits.shape).astype(self.dtype),
            _sum_to_shape(d_other, other.logits.shape).astype(other.dtype),
        )


def _sample_log_prob(logits, rng: np.random.Generator) -> tuple:
    """Private, for the rollout's ``act``: ``(a [...] int64, log_prob(a) [...])`` equal bit
    for bit (and in what is drawn from ``rng``) to

        d = Categorical._trusted(logits);   a = d.sample(rng);   logp = d.log_prob(a)

    for logits ``[..., A]`` (float32/64, A >= 1) a policy network has just produced,
    unchanged during the call: the same ``log_softmax`` (which rejects NaN/inf before
    anything is drawn, as ``_trusted`` does), Gumbel draw, argmax and gather, without the
    copy, the probabilities ``exp(log_probs)`` and the validation of actions that are in
    range by construction (argmax over A entries). Anything else goes the public way."""
    if not (type(logits) is np.ndarray and logits.dtype in _FLOATS and logits.ndim >= 1
            and logits.shape[-1] >= 1):
        d = Categorical._trusted(np.asarray(logits))
        a = d.sample(rng)
        return a, d.log_prob(a)
    if not logits.flags.c_contiguous:        # _trusted's copy is C-contiguous
        logits = np.ascontiguousarray(logits)
    log_probs = log_softmax(logits)
    g = _check_rng(rng).gumbel(size=logits.shape)
    a = np.argmax(logits + g, axis=-1).astype(np.int64)
    cols = a.reshape(-1)
    logp = log_probs.reshape(-1, logits.shape[-1])[np.arange(cols.size), cols]
    return a, logp.reshape(logits.shape[:-1])


# ----------------------------------------------------------------------------------------------
# KL divergence without cancellation
# ----------------------------------------------------------------------------------------------

# 1/k! for k = 2..20: phi(u) = e^-u - 1 + u = sum_{k>=2} (-u)^k / k! for |u| <= 1 (the next
# term is below 1e-18 of the sum there).
_PHI_COEFS = tuple(1.0 / math.factorial(k) for k in range(2, 21))


def _phi(u: np.ndarray) -> np.ndarray:
    """``e^-u - 1 + u >= 0`` for ``u >= -1`` to a few ulp: the Taylor series for |u| <= 1
    (where expm1(-u) + u cancels), ``expm1(-u) + u`` above (cancellation factor < 4.4)."""
    v = -np.clip(u, -1.0, 1.0)
    acc = np.full(v.shape, _PHI_COEFS[-1])
    for c in _PHI_COEFS[-2::-1]:
        acc = acc * v + c
    with np.errstate(over="ignore"):
        return np.where(np.abs(u) <= 1.0, v * v * acc, np.expm1(-u) + u)


def _kl_float64(z, w):
    """KL(softmax(z) || softmax(w)) and its gradients in float64, without cancellation.

    With m = argmax z (so p_m >= 1/A), s = z - z_m, t = w - w_m, delta = s - t (formed as
    (z - w) - (z_m - w_m) from the exact differences z - w, see ``_two_diff``, and carried
    with its rounding error, as is u),
    mu = sum_a p_a delta_a and u = delta - mu (so sum_a p_a u_a = 0):

        log p_a - log q_a = delta_a + log sum_b p_b e^{-delta_b}
        KL = mu + log sum_a p_a e^{-delta_a} = log sum_a p_a e^{-u_a}
           = log1p( sum_a p_a phi(u_a) ),          phi(u) = e^-u - 1 + u >= 0,

    a sum of non-negative terms (the plain form sum_a p_a (log p_a - log q_a) subtracts
    nearly equal logs near determinism: KL([-74,-16,-48] || [-73,-16,-48]) came out
    -6.5e-26 instead of +4.6e-26). log p_a = s_a - log1p(sum_{b != m} e^{s_b}) keeps the
    small probabilities' digits; a term with u_a < -1 is p_a e^{-u_a} + p_a (u_a - 1) (its
    first part in log space only where p_a is subnormal or e^{-u_a} overflows); if the sum
    still overflows, KL = logsumexp_a(log p_a - u_a). Gradients: dKL/dz_j = p_j u_j (sums
    to 0), dKL/dw_j = q_j - p_j = p_j expm1(r_j) with r_j = log q_j - log p_j = -(u_j + KL)
    where q_j is close to p_j (or -q_j expm1(-r_j) when q_j > p_j; q_j by the same log1p
    form), the plain difference elsewhere.

    ``z, w`` [..., A] broadcastable. Returns ``(kl [...], d_self [..., A], d_other [..., A],
    valid [...])``; rows with valid False (logits more than the largest float apart, so
    some log-probability or difference is infinite) hold garbage for the caller to replace.
    """
    z, w = np.broadcast_arrays(np.asarray(z, np.float64), np.asarray(w, np.float64))
    m = np.argmax(z, axis=-1)[..., None]
    with np.errstate(over="ignore", invalid="ignore"):
        logp, p = _log1p_softmax(z)  # s - log1p(sum_{b != m} e^{s_b}), e^s / (1 + sum)
        logq, q = _log1p_softmax(w)
        # delta and u as unevaluated sums hi + lo (z - w exactly, then the differences'
        # roundings kept): e^{-u} of a |u| ~ 400 would otherwise carry 1e-13 of rounding
        d_hi, d_lo = _two_diff(z, w)
        delta, lo = _two_diff(d_hi, np.take_along_axis(d_hi, m, axis=-1))
        lo = lo + (d_lo - np.take_along_axis(d_lo, m, axis=-1))
        valid = (np.isfinite(delta).all(axis=-1) & np.isfinite(logp).all(axis=-1)
                 & np.isfinite(logq).all(axis=-1))
        mu = np.sum(p * (delta + lo), axis=-1, keepdims=True)
        u, u_lo = _two_diff(delta, mu)
        u, u_lo = _two_diff(u, -(u_lo + lo))   # renormalized: |u_lo| <= ulp(u) / 2
        # u < -1: p e^{-u} as a product where both factors are normal floats (exp(log p - u)
        # would carry the rounding of log p ~ -400, 1e-13 relative), else in log space;
        # first-order corrections for u_lo: d phi/du = 1 - e^{-u}, d e^{-u}/du = -e^{-u}
        big = np.where((p > 1e-300) & (u > -700.0), p * np.exp(-u), np.exp(logp - u))
        terms = np.where(u >= -1.0, p * (_phi(u) - u_lo * np.expm1(-u)),
                         big * (1.0 - u_lo) + p * ((u - 1.0) + u_lo))
        F = terms.sum(axis=-1)
        kl = np.log1p(F)
        if not np.isfinite(F[valid]).all():  # sum_a p_a e^{-u_a} beyond the largest float
            a = logp - u
            amax = a.max(axis=-1, keepdims=True)
            lse = amax[..., 0] + np.log(np.exp(a - amax).sum(axis=-1))
            kl = np.where(np.isfinite(F), kl, lse)
        # q - p: from r = log q_a - log p_a by expm1 where r is known to an absolute error
        # below ~2 ulp (from -(u_a + KL) or log q_a - log p_a, whichever rounds less: the
        # error is eps times |u_a| + KL or |log q_a| + |log p_a|), else as the difference of
        # the accurate q and p (relative error ~2 eps / |r|, the same)
        err_u = np.abs(u) + kl[..., None]
        err_l = np.abs(logq) + np.abs(logp)
        r = np.where(err_u <= err_l, -(u + kl[..., None]), logq - logp)
        near = np.minimum(err_u, err_l) < 2.0
        d_self = p * u
        d_other = np.where(near, np.where(r <= 0.0, p * np.expm1(r), -q * np.expm1(-r)), q - p)
    return kl, d_self, d_other, valid


def _two_diff(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(hi, lo)`` with hi = fl(a - b) and hi + lo = a - b exactly (Knuth's TwoSum); lo = 0
    where hi is infinite."""
    hi = a - b
    bv = hi - a
    lo = (a - (hi - bv)) - (b + bv)
    return hi, np.where(np.isfinite(hi), lo, 0.0)


def _log1p_softmax(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(log softmax(x), softmax(x))`` along the last axis, with s = x - x_k (k the largest
    entry; kept exactly as hi + lo) and R = sum_{b != k} e^{s_b}: log p = s - log1p(R),
    p = e^s / (1 + R), so the small probabilities keep their digits near determinism (p from
    e^s, not from exp(log p): log p ~ -58 carries an absolute rounding of 7e-15)."""
    k = np.argmax(x, axis=-1)[..., None]
    hi, lo = _two_diff(x, np.take_along_axis(x, k, axis=-1))
    e = np.exp(hi) * (1.0 + lo)            # e^{hi + lo} to first order (|lo| <= ulp(hi)/2)
    np.put_along_axis(e, k, 0.0, axis=-1)
    rest = e.sum(axis=-1, keepdims=True)
    np.put_along_axis(e, k, 1.0, axis=-1)
    return (hi - np.log1p(rest)) + lo, e / (1.0 + rest)
