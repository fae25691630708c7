"""Factored policies over several discrete choices per step: ``MultiCategorical`` (a product of
independent categoricals, for ``gymnasium.spaces.MultiDiscrete``) and ``Bernoulli`` (a product
of independent Bernoullis, for ``gymnasium.spaces.MultiBinary``).

MultiCategorical, K groups of sizes nvec = (n_1, ..., n_K); the logits of group k are the
columns o_k .. o_k + n_k - 1 of z [..., sum(nvec)] (o_k = n_1 + ... + n_{k-1}):

    pi(a|s) = prod_k softmax(z_k)_{a_k}
    log pi(a|s) = sum_k [ z_{k, a_k} - logsumexp(z_k) ]
        d log pi / dz_k = onehot(a_k) - p_k                      (per group)
    H = sum_k H_k,  H_k = -sum_j p_kj log p_kj,   dH/dz_kj = -p_kj (log p_kj + H_k)
    KL(p || q) = sum_k KL(p_k || q_k)
        dKL/dz^p_kj = p_kj (log p_kj - log q_kj - KL_k),   dKL/dz^q_kj = q_kj - p_kj

Bernoulli, K independent bits with logits z [..., K], p = sigmoid(z):

    log pi(a|s) = sum_k [ a_k log p_k + (1 - a_k) log(1 - p_k) ] = -sum_k softplus((1 - 2 a_k) z_k)
        d log pi / dz_k = a_k - p_k
    H = sum_k [ softplus(-|z_k|) + |z_k| sigmoid(-|z_k|) ]       (= -p log p - (1-p) log(1-p))
        dH/dz_k = -z_k p_k (1 - p_k)
    KL(p || q) = sum_k [ p_k (softplus(-zq_k) - softplus(-zp_k))
                         + (1 - p_k) (softplus(zq_k) - softplus(zp_k)) ]
        dKL/dzp_k = p_k (1 - p_k) (zp_k - zq_k),   dKL/dzq_k = q_k - p_k

Every formula is written with softplus and sigmoid of finite arguments, so logits as large as
+-1e308 give the right finite values (a deterministic bit has entropy exactly 0, not NaN).
The KLs (a bit is the categorical with logits [0, z_k]) are evaluated by ``Categorical``'s
cancellation-free float64 form, ``log1p(sum_a p_a phi(u_a))`` (never negative, a few ulp
relative near determinism), falling back to the formulas above only for logits more than the
largest float apart.

Lecture: Stanford CS224R, "Learning distributions with neural networks" (the network outputs
the parameters of a distribution over actions; several discrete dimensions factorize, the
autoregressive alternative is not needed when they are independent); Stanford CS234,
"Lecture 6: Policy Gradient II", "What is KL-divergence?". The factorization is the one
Stable-Baselines3 uses for MultiDiscrete/MultiBinary action spaces.

API (``[...]`` the batch shape, K the number of groups/bits; the same methods as
``Categorical``, every backward returns dL/dlogits in the logits' shape and dtype):

    MultiCategorical(logits [..., sum(nvec)], nvec)     Bernoulli(logits [..., K])
        sample(rng) -> a [..., K] int64;  mode() -> [..., K] int64
        log_prob(a) -> [...];   log_prob_backward(a, dlogp) -> dlogits
        entropy() -> [...];     entropy_backward(dent) -> dlogits
        kl(other) -> [...];     kl_backward(other, dkl) -> (dlogits_self, dlogits_other)
"""
from __future__ import annotations

import numpy as np
from scipy.special import expit

from minirl.distributions.categorical import (
    Categorical,
    _check_rng,
    _Frozen,
    _kl_float64,
    _param,
    _sum_to_shape,
    _upstream,
)
from minirl.nn.losses import log_softmax

__all__ = ["MultiCategorical", "Bernoulli"]


def _softplus(x: np.ndarray) -> np.ndarray:
    """log(1 + exp(x)), finite for every finite x (no overflow in exp)."""
    return np.logaddexp(0.0, x)


def _int_actions(a, batch_shape: tuple, k: int, name: str = "a") -> np.ndarray:
    """Integer actions of shape ``batch_shape + (k,)`` (bool accepted for bits)."""
    a = np.asarray(a)
    if a.dtype.kind not in "iub":
        raise TypeError(f"{name} must be an integer array, got dtype {a.dtype}")
    if a.shape != batch_shape + (k,):
        raise ValueError(f"{name} must have shape {batch_shape + (k,)}, got {a.shape}")
    return a.astype(np.int64, copy=False)


def _broadcast(self_shape: tuple, other_shape: tuple) -> tuple:
    try:
        return np.broadcast_shapes(self_shape, other_shape)
    except ValueError:
        raise ValueError(f"other's batch shape {other_shape} does not broadcast with "
                         f"self's {self_shape}") from None


# ----------------------------------------------------------------------------------------------
# MultiCategorical
# ----------------------------------------------------------------------------------------------


class MultiCategorical(_Frozen):
    """pi(a|s) = prod_k softmax(z_k)_{a_k}, a_k in 0 .. n_k - 1 (see the module docstring).

    Shapes: logits [..., sum(nvec)]; a [..., K] int64; log_prob, entropy, kl [...].
    """

    __slots__ = ("logits", "log_probs", "probs", "nvec", "offsets", "batch_shape", "dtype",
                 "_group")

    def __init__(self, logits, nvec) -> None:
        logits = _param(logits, "logits")
        nvec = np.asarray(nvec)
        if nvec.ndim != 1 or nvec.size < 1 or nvec.dtype.kind not in "iu" or nvec.min() < 1:
            raise ValueError(f"nvec must be a 1-D array of positive integers, got {nvec!r}")
        if logits.ndim < 1 or logits.shape[-1] != int(nvec.sum()):
            raise ValueError(f"logits must have shape [..., {int(nvec.sum())}] (sum of nvec), "
                             f"got {logits.shape}")
        self._set(logits, nvec.astype(np.int64))

    def _set(self, logits: np.ndarray, nvec: np.ndarray) -> None:
        offsets = np.concatenate([[0], np.cumsum(nvec)[:-1]]).astype(np.int64)
        log_probs = np.empty_like(logits)
        for o, n in zip(offsets, nvec):
            log_probs[..., o:o + n] = log_softmax(logits[..., o:o + n])
        probs = np.exp(log_probs)
        for arr in (log_probs, probs, nvec, offsets):
            arr.flags.writeable = False
        set_ = object.__setattr__
        set_(self, "logits", logits)          # [..., sum(nvec)]
        set_(self, "log_probs", log_probs)    # [..., sum(nvec)] log p_kj, group by group
        set_(self, "probs", probs)            # [..., sum(nvec)] each group sums to 1
        set_(self, "nvec", nvec)              # [K]
        set_(self, "offsets", offsets)        # [K] first column of each group
        set_(self, "batch_shape", logits.shape[:-1])
        set_(self, "dtype", logits.dtype)
        set_(self, "_group", np.repeat(np.arange(nvec.size), nvec))  # column -> group

    @classmethod
    def _trusted(cls, logits: np.ndarray, nvec: np.ndarray) -> "MultiCategorical":
        """Wrap logits minirl's own network just produced (copied; NaN/inf still rejected by
        ``log_softmax``); skips the constructor's checks."""
        logits = logits.copy()
        logits.flags.writeable = False
        self = object.__new__(cls)
        self._set(logits, np.asarray(nvec, dtype=np.int64))
        return self

    def _init_args(self) -> tuple:
        return (self.logits, self.nvec)

    def __repr__(self) -> str:
        return f"MultiCategorical(batch_shape={self.batch_shape}, nvec={self.nvec.tolist()})"

    def _group_sum(self, x: np.ndarray) -> np.ndarray:
        """[..., sum(nvec)] -> [..., K]: the sum over each group's columns."""
        return np.add.reduceat(x, self.offsets, axis=-1)

    def _columns(self, a) -> np.ndarray:
        """Column index o_k + a_k of each chosen action, [..., K]."""
        a = _int_actions(a, self.batch_shape, self.nvec.size)
        if a.size and ((a < 0).any() or (a >= self.nvec).any()):
            raise ValueError(f"a must lie in [0, nvec) = [0, {self.nvec.tolist()}) per group")
        return self.offsets + a

    # -- sampling ------------------------------------------------------------------------------

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        """One index per group, [..., K] int64 (Gumbel-max in each group)."""
        g = self.logits + _check_rng(rng).gumbel(size=self.logits.shape)
        return np.stack([np.argmax(g[..., o:o + n], axis=-1)
                         for o, n in zip(self.offsets, self.nvec)], axis=-1).astype(np.int64)

    def mode(self) -> np.ndarray:
        """argmax_j z_kj per group, [..., K] int64 (first one on ties)."""
        return np.stack([np.argmax(self.logits[..., o:o + n], axis=-1)
                         for o, n in zip(self.offsets, self.nvec)], axis=-1).astype(np.int64)

    # -- log-likelihood ------------------------------------------------------------------------

    def log_prob(self, a) -> np.ndarray:
        """``sum_k log p_k(a_k)``, [...]."""
        cols = self._columns(a)
        return np.take_along_axis(self.log_probs, cols, axis=-1).sum(axis=-1)

    def log_prob_backward(self, a, dlogp) -> np.ndarray:
        """``dlogits = dlogp * (onehot(a_k) - p_k)`` in every group, [..., sum(nvec)]."""
        cols = self._columns(a)
        dlogp = _upstream(dlogp, self.batch_shape, "dlogp", "log_prob(a)")
        g = np.negative(self.probs, dtype=np.result_type(self.dtype, dlogp.dtype))
        rows = np.arange(int(np.prod(self.batch_shape, dtype=np.int64)))[:, None]
        g.reshape(-1, g.shape[-1])[rows, cols.reshape(rows.size, -1)] += 1.0
        g *= np.asarray(dlogp)[..., None]
        return g.astype(self.dtype, copy=False)

    # -- entropy -------------------------------------------------------------------------------

    def _plogp(self, x: np.ndarray) -> np.ndarray:
        """p * x with 0 where p = 0 (log p may be -inf there: the 0 * inf terms are 0)."""
        with np.errstate(invalid="ignore"):
            return np.where(self.probs > 0, self.probs * x, 0.0)

    def _group_entropy(self) -> np.ndarray:
        h = -self._group_sum(self._plogp(self.log_probs))         # [..., K]
        for k, near, cat in self._near_groups():
            h[..., k] = np.where(near, cat.entropy(), h[..., k])
        return h

    def _near_groups(self):
        """``(k, near [...], Categorical of group k)`` for each group with a row whose largest
        probability exceeds 1 - 1e-3: there ``Categorical``'s precise log1p form of H and
        log p is used (see ``Categorical.entropy``); elsewhere the usual form keeps its bits."""
        if not self.probs.size:
            return
        pmax = np.maximum.reduceat(self.probs, self.offsets, axis=-1)  # [..., K]
        for k in np.flatnonzero((pmax > Categorical._NEAR).reshape(-1, self.nvec.size)
                                .any(axis=0) & (self.nvec >= 2)):
            o, n = self.offsets[k], self.nvec[k]
            yield k, pmax[..., k] > Categorical._NEAR, Categorical._trusted(
                np.ascontiguousarray(self.logits[..., o:o + n]))

    def entropy(self) -> np.ndarray:
        """``H = sum_k H_k``, [...] (0 <= H <= sum_k log n_k)."""
        return self._group_entropy().sum(axis=-1)

    def entropy_backward(self, dent) -> np.ndarray:
        """``dlogits_kj = dent * (-p_kj (log p_kj + H_k))``, [..., sum(nvec)]."""
        dent = _upstream(dent, self.batch_shape, "dent", "entropy()")
        h = self._group_entropy()[..., self._group]                # H_k on its columns
        g = -self._plogp(self.log_probs + h)
        for k, near, cat in self._near_groups():
            o, n = self.offsets[k], self.nvec[k]
            g_k = cat.entropy_backward(np.ones(cat.batch_shape))
            g[..., o:o + n] = np.where(near[..., None], g_k, g[..., o:o + n])
        return (np.asarray(dent)[..., None] * g).astype(self.dtype, copy=False)

    # -- KL divergence -------------------------------------------------------------------------

    def _other(self, other) -> tuple:
        if not isinstance(other, MultiCategorical):
            raise TypeError(f"other must be a MultiCategorical, got {type(other).__name__}")
        if not np.array_equal(other.nvec, self.nvec):
            raise ValueError(f"other must have nvec {self.nvec.tolist()} like self, "
                             f"got {other.nvec.tolist()}")
        return _broadcast(self.batch_shape, other.batch_shape)

    def kl(self, other: "MultiCategorical") -> np.ndarray:
        """``KL(self || other) = sum_k KL(p_k || q_k)``, [...] (broadcast batch shape); each
        group's KL by ``Categorical``'s cancellation-free float64 form (never negative, a
        few ulp relative near determinism and for p close to q)."""
        self._other(other)
        return self._kl_parts(other)[0]

    def _kl_parts(self, other: "MultiCategorical"):
        """``(kl [...], d_self [..., W], d_other [..., W])`` for dkl = 1 (W = sum(nvec)), group
        by group with ``_kl_float64``; rows of a group whose logits are more than the largest
        float apart take the plain form p (log p - log q) (0 where p = 0, +inf where q = 0)."""
        shape = _broadcast(self.batch_shape, other.batch_shape)
        width = int(self.nvec.sum())
        kl = np.zeros(shape)
        d_self, d_other = np.zeros(shape + (width,)), np.zeros(shape + (width,))
        for o, n in zip(self.offsets, self.nvec):
            cols = slice(o, o + n)
            kl_k, ds, do, valid = _kl_float64(self.logits[..., cols], other.logits[..., cols])
            if not valid.all():
                lp, lq = self.log_probs[..., cols], other.log_probs[..., cols]
                p_k = self.probs[..., cols]
                with np.errstate(invalid="ignore"):   # -inf - -inf where both p and q are 0
                    plain = np.sum(np.where(p_k > 0, p_k * (lp - lq), 0.0), axis=-1)
                    ds_plain = np.where(p_k > 0, p_k * (lp - lq - plain[..., None]), 0.0)
                kl_k = np.where(valid, kl_k, plain)
                ds = np.where(valid[..., None], ds, ds_plain)
                do = np.where(valid[..., None], do,
                              other.probs[..., cols] - self.probs[..., cols])
            with np.errstate(over="ignore"):  # a sum beyond the largest float: inf
                kl = kl + kl_k
            d_self[..., cols], d_other[..., cols] = ds, do
        with np.errstate(over="ignore"):  # float32 result beyond its range: inf, the truth
            kl = kl.astype(np.result_type(self.dtype, other.dtype), copy=False)
        return kl, d_self, d_other

    def kl_backward(self, other: "MultiCategorical", dkl) -> tuple[np.ndarray, np.ndarray]:
        """``(dlogits_self, dlogits_other)``: p_kj (log p_kj - log q_kj - KL_k) and q_kj - p_kj."""
        shape = self._other(other)
        dkl = np.asarray(_upstream(dkl, shape, "dkl", "kl(other)"))[..., None]
        kl, d_self, d_other = self._kl_parts(other)
        if not np.isfinite(kl).all():
            raise ValueError("kl_backward: KL(self || other) is +inf (other gives probability 0 "
                             "to an action self gives probability > 0); no finite gradient")
        return (_sum_to_shape(dkl * d_self, self.logits.shape).astype(self.dtype),
                _sum_to_shape(dkl * d_other, other.logits.shape).astype(other.dtype))


# ----------------------------------------------------------------------------------------------
# Bernoulli
# ----------------------------------------------------------------------------------------------


class Bernoulli(_Frozen):
    """K independent bits, P(a_k = 1) = sigmoid(z_k) (see the module docstring).

    Shapes: logits [..., K]; a [..., K] integers 0/1 (bool accepted); log_prob, entropy,
    kl [...]. Batch shape ``logits.shape[:-1]``.
    """

    __slots__ = ("logits", "probs", "batch_shape", "n_bits", "dtype")

    def __init__(self, logits) -> None:
        logits = _param(logits, "logits")
        if logits.ndim < 1 or logits.shape[-1] < 1:
            raise ValueError(f"logits must have shape [..., K] with K >= 1, got {logits.shape}")
        self._set(logits)

    def _set(self, logits: np.ndarray) -> None:
        if not np.isfinite(logits).all():   # _trusted skips _param's check; keep it loud
            raise ValueError("logits must be finite (NaN/inf found)")
        probs = expit(logits)
        probs.flags.writeable = False
        set_ = object.__setattr__
        set_(self, "logits", logits)           # [..., K]
        set_(self, "probs", probs)             # [..., K] P(a_k = 1)
        set_(self, "batch_shape", logits.shape[:-1])
        set_(self, "n_bits", logits.shape[-1])
        set_(self, "dtype", logits.dtype)

    @classmethod
    def _trusted(cls, logits: np.ndarray) -> "Bernoulli":
        """Wrap logits minirl's own network just produced (copied; NaN/inf still rejected)."""
        logits = logits.copy()
        logits.flags.writeable = False
        self = object.__new__(cls)
        self._set(logits)
        return self

    def _init_args(self) -> tuple:
        return (self.logits,)

    def __repr__(self) -> str:
        return f"Bernoulli(batch_shape={self.batch_shape}, n_bits={self.n_bits})"

    def _bits(self, a) -> np.ndarray:
        a = _int_actions(a, self.batch_shape, self.n_bits)
        if a.size and ((a < 0).any() or (a > 1).any()):
            raise ValueError("a must hold only 0 and 1")
        return a

    # -- sampling ------------------------------------------------------------------------------

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        """a_k = 1 with probability p_k, [..., K] int64 (u < p, u ~ U[0, 1))."""
        return (_check_rng(rng).random(self.logits.shape) < self.probs).astype(np.int64)

    def mode(self) -> np.ndarray:
        """1 where z_k > 0 (p_k > 1/2), else 0 (0 on the tie p = 1/2), [..., K] int64."""
        return (self.logits > 0).astype(np.int64)

    # -- log-likelihood ------------------------------------------------------------------------

    def log_prob(self, a) -> np.ndarray:
        """``-sum_k softplus((1 - 2 a_k) z_k)``, [...]."""
        a = self._bits(a)
        with np.errstate(over="ignore"):  # a sum below -max float is -inf, its rounding
            return -np.sum(_softplus(np.where(a == 1, -self.logits, self.logits)), axis=-1)

    def log_prob_backward(self, a, dlogp) -> np.ndarray:
        """``dlogits = dlogp * (a - p)``, [..., K]."""
        a = self._bits(a)
        dlogp = _upstream(dlogp, self.batch_shape, "dlogp", "log_prob(a)")
        return (np.asarray(dlogp)[..., None] * (a - self.probs)).astype(self.dtype, copy=False)

    # -- entropy -------------------------------------------------------------------------------

    def entropy(self) -> np.ndarray:
        """``sum_k softplus(-|z_k|) + |z_k| sigmoid(-|z_k|)``, [...] (0 <= H <= K log 2)."""
        # float64: in float32, softplus(-100) and sigmoid(-100) are subnormal or 0 (H came out
        # 3.8e-44 for z = 100 instead of 3.76e-42); both terms >= 0, so the sum is accurate.
        az = np.abs(self.logits.astype(np.float64))
        return np.sum(_softplus(-az) + az * expit(-az), axis=-1).astype(self.dtype, copy=False)

    def entropy_backward(self, dent) -> np.ndarray:
        """``dlogits_k = dent * (-z_k p_k (1 - p_k))``, [..., K]."""
        dent = _upstream(dent, self.batch_shape, "dent", "entropy()")
        z = self.logits.astype(np.float64)                # float64: as in ``entropy``
        az = np.abs(z)
        g = -z * expit(az) * expit(-az)                  # p (1 - p) is symmetric in z
        return (np.asarray(dent)[..., None] * g).astype(self.dtype, copy=False)

    # -- KL divergence -------------------------------------------------------------------------

    def _other(self, other) -> tuple:
        if not isinstance(other, Bernoulli):
            raise TypeError(f"other must be a Bernoulli, got {type(other).__name__}")
        if other.n_bits != self.n_bits:
            raise ValueError(f"other must have {self.n_bits} bits like self, got {other.n_bits}")
        return _broadcast(self.batch_shape, other.batch_shape)

    def kl(self, other: "Bernoulli") -> np.ndarray:
        """``KL(self || other)``, [...] (broadcast batch shape); see the module docstring.

        Bit k is the two-action categorical with logits [0, z_k], so its KL comes from
        ``Categorical``'s cancellation-free float64 form (the softplus form subtracted nearly
        equal terms near determinism: zp = 40, zq = 40.001 lost its digits).
        """
        self._other(other)
        return self._kl_parts(other)[0]

    def _kl_parts(self, other: "Bernoulli"):
        """``(kl [...], dKL/dzp [..., K], dKL/dzq [..., K])`` for dkl = 1, on the broadcast
        batch; bits whose logits are more than the largest float apart (zp - zq overflows)
        take the softplus form, dKL/dzp = p (1 - p) (zp - zq) and q - p."""
        zp = self.logits.astype(np.float64)
        zq = other.logits.astype(np.float64)
        zp, zq = np.broadcast_arrays(zp, zq)
        two = lambda z: np.stack([np.zeros_like(z), z], axis=-1)   # [..., K, 2]
        kl, ds, do, valid = _kl_float64(two(zp), two(zq))
        ds, do = ds[..., 1], do[..., 1]                              # w.r.t. the logit z_k
        if not valid.all():
            p, q = expit(zp), expit(zq)
            with np.errstate(over="ignore", invalid="ignore"):      # zp - zq may overflow
                plain = (p * (_softplus(-zq) - _softplus(-zp))
                         + expit(-zp) * (_softplus(zq) - _softplus(zp)))
                var = expit(np.abs(zp)) * expit(-np.abs(zp))         # p (1 - p)
                ds_plain = np.where(var == 0.0, 0.0, var * (zp - zq))  # p (1-p) -> 0 wins
            kl = np.where(valid, kl, plain)
            ds = np.where(valid, ds, ds_plain)
            do = np.where(valid, do, q - p)
        with np.errstate(over="ignore"):  # a sum beyond the largest float: the KL is inf
            kl = np.sum(kl, axis=-1).astype(np.result_type(self.dtype, other.dtype), copy=False)
        return kl, ds, do

    def kl_backward(self, other: "Bernoulli", dkl) -> tuple[np.ndarray, np.ndarray]:
        """``(dlogits_self, dlogits_other)`` = (p (1 - p) (zp - zq), q - p) times dkl."""
        shape = self._other(other)
        dkl = np.asarray(_upstream(dkl, shape, "dkl", "kl(other)"))[..., None]
        _, ds, do = self._kl_parts(other)
        k = (self.n_bits,)
        return (_sum_to_shape(np.broadcast_to(dkl * ds, shape + k), self.logits.shape)
                .astype(self.dtype),
                _sum_to_shape(np.broadcast_to(dkl * do, shape + k), other.logits.shape)
                .astype(other.dtype))
