"""Mixture of diagonal Gaussians: an expressive (multimodal) policy for imitation learning.

    pi(a|s) = sum_k w_k N(a; mu_k, diag(sigma_k^2)),   w = softmax(logits),  sigma = exp(log_std)
    log pi(a|s) = logsumexp_k [ log w_k + log N(a; mu_k, sigma_k) ]
                  log N(a; mu_k, sigma_k) = sum_d [-z_kd^2/2 - log_std_kd - log(2 pi)/2],
                  z_kd = (a_d - mu_kd) / sigma_kd
    responsibilities r_k = softmax_k(log w_k + log N(a; mu_k, sigma_k))     (posterior of k given a)
        d log pi / d logits_k  = r_k - w_k
        d log pi / d mu_kd     = r_k z_kd / sigma_kd
        d log pi / d log_std_kd = r_k (z_kd^2 - 1)

The log-sum-exp keeps log_prob finite when every component density underflows (an action far
from all means), where the naive log(sum_k w_k N_k) would be log(0) = -inf. Only when every
component's log-density itself is below the largest negative float (z^2 beyond ~1e308) is
log_prob -inf (the rounding of the true value); ``responsibilities`` and
``log_prob_backward`` then raise ValueError naming ``a`` (the posterior is not computable).

Lecture: Stanford CS224R, imitation learning, "Generative models for policies": Mixture of
Gaussians, the net
outputs mu_1, sigma_1, w_1, mu_2, sigma_2, w_2, ...; trained by maximum likelihood on expert
actions (behaviour cloning: loss = -mean log_prob). Reference: Bishop 1994, "Mixture Density
Networks".

API (``[...]`` batch shape, ``K`` components, ``D`` action dimension):

    MixtureOfGaussians(logits [..., K], means [..., K, D], log_stds broadcastable to [..., K, D])
        (logits may also be a free [K] parameter and log_stds a free [K, D] or [D] parameter:
         each gradient is summed back to its parameter's own shape)
        weights [..., K], log_weights [..., K]   (softmax / log-softmax of the logits)
        sample(rng) -> a [..., D]       (pick k ~ w by Gumbel-max, then a ~ N(mu_k, sigma_k))
        mode() -> [..., D]              the mean of the most probable component (see mode)
        log_prob(a) -> [...];           log_prob_backward(a, dlogp) -> (dlogits, dmeans, dlog_stds)
        responsibilities(a) -> [..., K]
        entropy(), kl(other) -> NotImplementedError: no closed form. A Monte-Carlo entropy
        estimate is -log_prob(sample(rng)) averaged over draws; it is not provided as a method
        because the component choice is not reparameterizable (no pathwise gradient).
"""
from __future__ import annotations

import math

import numpy as np

from kernels._validate import result_dtype
from minirl.distributions.categorical import (
    _as_float,
    _check_rng,
    _Frozen,
    _param,
    _sum_to_shape,
    _upstream,
    _value,
    log_softmax,
)
from minirl.distributions.gaussian import _standardize

_LOG_2PI = math.log(2.0 * math.pi)


def _logsumexp(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """``log sum exp(x)`` along ``axis``; -inf (not NaN) where every entry is -inf."""
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(m == -np.inf, 0.0, m).astype(x.dtype, copy=False)  # all -inf: exp(-inf) = 0
    with np.errstate(divide="ignore"):
        return (m + np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True))).squeeze(axis)


class MixtureOfGaussians(_Frozen):
    """sum_k softmax(logits)_k N(mu_k, diag(exp(log_std_k)^2)) over ``D``-dimensional actions.

    Shapes: logits ``[..., K]`` (or broadcastable to it, e.g. ``[K]``); means ``[..., K, D]``;
    log_stds broadcastable to ``[..., K, D]``. float32 is kept only if all three are float32.

    Lecture: Stanford CS224R, imitation learning, "Generative models for policies" (mixture
    of Gaussians for imitation).
    """

    __slots__ = ("logits", "means", "log_stds", "stds", "log_weights", "weights",
                 "batch_shape", "n_components", "event_dim", "dtype")

    def __init__(self, logits, means, log_stds) -> None:
        raw = [_as_float(x, n) for x, n in ((logits, "logits"), (means, "means"),
                                            (log_stds, "log_stds"))]
        dtype = result_dtype(*raw)
        logits, means, log_stds = (_param(x, n, dtype) for x, n in
                                   zip(raw, ("logits", "means", "log_stds")))
        if means.ndim < 2 or 0 in means.shape[-2:]:
            raise ValueError(f"means must have shape [..., K, D] with K, D >= 1, got {means.shape}")
        for name, arr, target in (("logits", logits, means.shape[:-1]),
                                  ("log_stds", log_stds, means.shape)):
            try:
                ok = arr.ndim >= 1 and np.broadcast_shapes(arr.shape, target) == target
            except ValueError:
                ok = False
            if not ok:
                raise ValueError(f"{name} must broadcast to {target} (from means {means.shape}), "
                                 f"got {arr.shape}")
        with np.errstate(over="ignore", under="ignore"):  # 0 / inf handled by _standardize
            stds = np.array(np.exp(log_stds))
        log_weights = log_softmax(logits)
        weights = np.exp(log_weights)
        for arr in (stds, log_weights, weights):
            arr.flags.writeable = False
        set_ = object.__setattr__
        set_(self, "logits", logits)  # broadcastable to [..., K]
        set_(self, "means", means)  # [..., K, D]
        set_(self, "log_stds", log_stds)  # broadcastable to [..., K, D]
        set_(self, "stds", stds)  # exp(log_stds)
        set_(self, "log_weights", log_weights)  # log w_k, logits' shape
        set_(self, "weights", weights)  # w_k, logits' shape; sums to 1 over K
        set_(self, "batch_shape", means.shape[:-2])
        set_(self, "n_components", means.shape[-2])
        set_(self, "event_dim", means.shape[-1])
        set_(self, "dtype", dtype)

    def _init_args(self) -> tuple:
        return (self.logits, self.means, self.log_stds)

    def __repr__(self) -> str:
        return (f"MixtureOfGaussians(batch_shape={self.batch_shape}, K={self.n_components}, "
                f"D={self.event_dim})")

    def _joint(self, a) -> tuple[np.ndarray, np.ndarray]:
        """``(log w_k + log N(a; mu_k, sigma_k)  [..., K],  z  [..., K, D])`` for a [..., D]."""
        a = _value(a, self.batch_shape + (self.event_dim,), "a", self.dtype)
        z, z_over_std = _standardize(a[..., None, :], self.means, self.log_stds, self.stds)
        with np.errstate(over="ignore"):  # z^2 beyond the largest float: log N = -inf
            log_n = np.sum(-0.5 * z * z - self.log_stds - 0.5 * _LOG_2PI, axis=-1)
            log_n = log_n.astype(self.dtype, copy=False)
        return self.log_weights + log_n, z, z_over_std

    def _posterior(self, joint: np.ndarray) -> np.ndarray:
        """``r = softmax_k(joint)`` [..., K]; ValueError if a row is all -inf (no posterior)."""
        if (joint == -np.inf).all(axis=-1).any():
            raise ValueError("a is so far from every component that every log-density is -inf; "
                             "the responsibilities (and log_prob's gradient) are not computable")
        if np.isfinite(joint).all():
            return np.exp(log_softmax(joint))
        e = np.exp(joint - np.max(joint, axis=-1, keepdims=True))  # exp(-inf) = 0: r_k = 0
        return e / np.sum(e, axis=-1, keepdims=True)

    # -- sampling ------------------------------------------------------------------------------

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        """One action per batch element, ``[..., D]``: k ~ Categorical(w), then N(mu_k, sigma_k).

        The component is drawn by Gumbel-max on the logits (exact, like Categorical.sample).
        """
        rng = _check_rng(rng)
        logits = np.broadcast_to(self.logits, self.means.shape[:-1])
        k = np.argmax(logits + rng.gumbel(size=logits.shape), axis=-1)  # [...]
        eps = rng.standard_normal(self.batch_shape + (self.event_dim,)).astype(self.dtype)
        idx = k[..., None, None]
        mu = np.take_along_axis(self.means, idx, axis=-2)[..., 0, :]
        std = np.take_along_axis(np.broadcast_to(self.stds, self.means.shape), idx, axis=-2)
        return mu + std[..., 0, :] * eps

    def mode(self) -> np.ndarray:
        """The mean of the most probable component, ``mu_{argmax_k w_k}``, ``[..., D]``.

        A mixture's true mode has no closed form (it needs a numerical search and need not be
        at any mean); this is the standard deterministic action for mixture-density policies.
        """
        logits = np.broadcast_to(self.logits, self.means.shape[:-1])
        k = np.argmax(logits, axis=-1)[..., None, None]
        return np.take_along_axis(self.means, k, axis=-2)[..., 0, :]

    # -- log-likelihood ------------------------------------------------------------------------

    def log_prob(self, a) -> np.ndarray:
        """``log pi(a|s) = logsumexp_k [log w_k + log N(a; mu_k, sigma_k)]``; a [..., D] -> [...].

        Lecture: Stanford CS224R, imitation learning, "Generative models for policies"
        (behaviour cloning maximizes this).
        """
        joint, _, _ = self._joint(a)
        return _logsumexp(joint, axis=-1)

    def responsibilities(self, a) -> np.ndarray:
        """``r_k = p(k | a)``, the posterior over components given the action, ``[..., K]``."""
        joint, _, _ = self._joint(a)
        return self._posterior(joint)

    def log_prob_backward(self, a, dlogp) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(dlogits, dmeans, dlog_stds)`` of ``log_prob(a)``, each in its parameter's shape.

            dlogits_k = dlogp (r_k - w_k),  dmeans_kd = dlogp r_k z_kd / sigma_kd,
            dlog_stds_kd = dlogp r_k (z_kd^2 - 1)
        """
        joint, z, z_over_std = self._joint(a)
        g = np.asarray(_upstream(dlogp, self.batch_shape, "dlogp", "log_prob(a)"))[..., None]
        r = self._posterior(joint)  # [..., K]
        kshape = self.means.shape[:-1]
        dlogits = _sum_to_shape(np.broadcast_to(g * (r - self.weights), kshape), self.logits.shape)
        gr = (g * r)[..., None]  # [..., K, 1]
        with np.errstate(over="ignore", invalid="ignore"):
            # r_k = 0 for a component whose z^2 overflowed: it contributes 0, not 0 * inf
            dmeans = np.where(gr == 0.0, 0.0, gr * z_over_std)
            dlog_stds = _sum_to_shape(np.where(gr == 0.0, 0.0, gr * (z * z - 1.0)),
                                      self.log_stds.shape)
            return (np.array(dlogits, dtype=self.dtype), np.array(dmeans, dtype=self.dtype),
                    np.array(dlog_stds, dtype=self.dtype))

    # -- no closed forms -----------------------------------------------------------------------

    def entropy(self):
        """No closed form for a Gaussian mixture: raises ``NotImplementedError``."""
        raise NotImplementedError(
            "MixtureOfGaussians has no closed-form entropy; estimate it as "
            "-log_prob(sample(rng)) averaged over draws"
        )

    def kl(self, other):
        """No closed form between Gaussian mixtures: raises ``NotImplementedError``."""
        raise NotImplementedError(
            "MixtureOfGaussians has no closed-form KL; estimate it as "
            "log_prob(a) - other.log_prob(a) averaged over a = self.sample(rng)"
        )
