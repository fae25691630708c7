"""KL divergence between the new policy pi_theta and the old (sampling) policy pi_old, both ways.

The lectures constrain or penalize the policy change with a state-averaged KL, states from
the old policy, in two directions:

    "old_new":  E_{s ~ d^old}[ KL(pi_old(.|s) || pi_theta(.|s)) ]
                Stanford CS234 "Lecture 6: Policy Gradient II", "Algorithm PPO with Adaptive KL
                Penalty": D_KL(theta || theta_k) = E_{s~d^{pi_k}} D_KL(pi_k(.|s), pi_theta(.|s));
                also CS224R's "Off-policy policy gradient" slide in the lecture series
                ("Common choice: E_{s~pi_theta}[D_KL(pi_theta(.|s) || pi_theta'(.|s))]").
    "new_old":  E_{s ~ d^old}[ KL(pi_theta(.|s) || pi_old(.|s)) ]
                Stanford CS224R "Policy Gradients", "Off-policy policy gradient" ("One common
                choice: E_{s~pi_theta}[D_KL(pi_theta'(.|s) || pi_theta(.|s))] <= delta") and
                "Off-Policy Actor-Critic Methods", "Idea 1: Use KL constraint on policy"; CS234's
                relative policy performance bound E_{s~d^pi}[D_KL(pi'||pi)[s]].

(theta' in CS224R is the new policy, theta the sampler.) Two ways to compute each:

* exact per visited state, for categorical policies: ``categorical_kl_old_new`` /
  ``categorical_kl_new_old(logits, logits_old) -> (kl, dlogits)``, mean over the batch of
  states (which are samples from d^old), gradient w.r.t. the *new* logits only;
* from sampled actions a ~ pi_old(.|s) with r = exp(logp - logp_old), for any policy:
  ``sample_kl_old_new`` / ``sample_kl_new_old(logp, logp_old) -> (kl, dlogp)``:

      old_new:  k3 = (r - 1) - log r,        dk3/dlogp = r - 1
      new_old:  k  = r log r - (r - 1),      dk/dlogp  = r log r

  Both are >= 0 sample by sample (a convex function minus its tangent at r = 1) and unbiased
  for the KL, because E_{a~pi_old}[r] = 1; their gradients are unbiased for the KL's
  gradient, because E_{a~pi_old}[r grad log pi_theta] = grad sum_a pi_theta(a|s) = 0.

Every function returns ``(value, gradient)`` and divides by the number of samples/states,
like the PPO losses (so ``policy_gradient_from_dlogp(..., loss_divisor=M)`` applies).
Paper: Schulman (2020), "Approximating KL divergence" (k3); Schulman et al. (2017),
arXiv:1707.06347 (PPO, eq. 8).
"""
from __future__ import annotations

import numpy as np

from kernels._validate import as_float, result_dtype, same_shape
from minirl.distributions import Categorical
from minirl.distributions.categorical import _phi
from minirl.nn.losses import mean_f64

__all__ = [
    "categorical_kl_old_new",
    "categorical_kl_new_old",
    "sample_kl_old_new",
    "sample_kl_new_old",
]

KL_DIRECTIONS = ("old_new", "new_old")


def _two_categoricals(logits, logits_old):
    new = Categorical(logits)
    old = Categorical(logits_old)
    if new.logits.shape != old.logits.shape:
        raise ValueError(
            f"logits_old must have the shape of logits {new.logits.shape}, got {old.logits.shape}")
    return new, old, int(np.prod(new.batch_shape))


def categorical_kl_old_new(logits, logits_old):
    """Exact mean KL(pi_old(.|s) || pi_theta(.|s)) over a batch of states, and ``dlogits``.

    kl      = (1/B) sum_b sum_a p_old[b, a] (log p_old[b, a] - log p[b, a])
    dlogits = (1/B) (p[b] - p_old[b])        (gradient w.r.t. the *new* logits only)

    Direction "old_new": CS234 "Policy Gradient II", PPO's adaptive KL penalty
    D_KL(theta || theta_k) = E_{s~d^{pi_k}} KL(pi_k(.|s), pi_theta(.|s)).
    Unbiased: for E_{s~d^old}[KL(pi_old||pi_theta)] when the states are sampled from pi_old
    (exact per state); zero value and zero gradient at logits = logits_old.

    Shapes: ``logits, logits_old [B, A]`` (or ``[..., A]``; the mean is over all batch
    elements); returns ``(kl: float, dlogits)`` with ``dlogits`` shaped like ``logits``.
    """
    new, old, B = _two_categoricals(logits, logits_old)
    kl = old.kl(new)
    _, dlogits = old.kl_backward(new, np.full(kl.shape, 1.0 / B))
    return mean_f64(kl, B), dlogits


def categorical_kl_new_old(logits, logits_old):
    """Exact mean KL(pi_theta(.|s) || pi_old(.|s)) over a batch of states, and ``dlogits``.

    kl      = (1/B) sum_b sum_a p[b, a] (log p[b, a] - log p_old[b, a])
    dlogits = (1/B) p[b] * (log p[b] - log p_old[b] - KL_b)   (w.r.t. the *new* logits)

    Direction "new_old": CS224R "Policy Gradients", E_{s~pi_theta}[D_KL(pi_theta'(.|s) ||
    pi_theta(.|s))] <= delta with theta' the new policy.
    Unbiased: for E_{s~d^old}[KL(pi_theta||pi_old)] when the states are sampled from pi_old
    (exact per state); zero value and zero gradient at logits = logits_old.

    Shapes: as ``categorical_kl_old_new``.
    """
    new, old, B = _two_categoricals(logits, logits_old)
    kl = new.kl(old)
    dlogits, _ = new.kl_backward(old, np.full(kl.shape, 1.0 / B))
    return mean_f64(kl, B), dlogits


def _log_ratio(logp, logp_old):
    logp = as_float(logp, "logp")
    logp_old = as_float(logp_old, "logp_old")
    same_shape("logp", logp, logp_old=logp_old)
    if logp.size == 0:
        raise ValueError("logp must not be empty")
    with np.errstate(over="ignore"):  # +-inf: the true log-ratio is beyond float64
        d = logp.astype(np.float64) - logp_old
    return d, logp.size, result_dtype(logp, logp_old)


def sample_kl_old_new(logp, logp_old):
    """Sample estimate of KL(pi_old || pi_theta) from actions a ~ pi_old, and ``dlogp``.

    kl    = (1/M) sum_i (r_i - 1) - log r_i,   r_i = exp(logp_i - logp_old_i)    ("k3")
    dlogp = (1/M) (r_i - 1)

    Direction "old_new" (CS234's PPO penalty). Every term is >= 0.
    Unbiased: yes, value and gradient, for actions sampled from pi_old (the mean over states
    then estimates E_{s~d^old}[KL(pi_old||pi_theta)] when the states come from pi_old).
    Paper: Schulman (2020), "Approximating KL divergence".

    Shapes: ``logp, logp_old`` equal shapes (M = size); returns ``(kl: float, dlogp)``.
    """
    d, M, dtype = _log_ratio(logp, logp_old)
    terms, dterms = sample_kl_terms(d, "old_new")
    return mean_f64(terms, M), (dterms / M).astype(dtype, copy=False)


def sample_kl_new_old(logp, logp_old):
    """Sample estimate of KL(pi_theta || pi_old) from actions a ~ pi_old, and ``dlogp``.

    kl    = (1/M) sum_i r_i log r_i - (r_i - 1),   r_i = exp(logp_i - logp_old_i)
    dlogp = (1/M) r_i log r_i

    (KL(pi_theta||pi_old) = E_{a~pi_old}[r log r]; subtracting r - 1, whose mean is 0, makes
    every term >= 0.) Direction "new_old" (CS224R "Policy Gradients" KL constraint).
    Unbiased: yes, value and gradient, for actions sampled from pi_old.

    Shapes: ``logp, logp_old`` equal shapes (M = size); returns ``(kl: float, dlogp)``.
    A ratio too large for float64 gives +inf (the true value overflows), never NaN.
    """
    d, M, dtype = _log_ratio(logp, logp_old)
    terms, dterms = sample_kl_terms(d, "new_old")
    return mean_f64(terms, M), (dterms / M).astype(dtype, copy=False)


def sample_kl_terms(log_r, direction: str):
    """Per-sample KL terms and their derivatives w.r.t. logp, unnormalized (float64).

    old_new: ((r - 1) - log r, r - 1);  new_old: (r log r - (r - 1), r log r);  r = exp(log_r).
    ``log_r`` finite, or +-inf where logp - logp_old overflowed float64 (the true log-ratio
    beyond +-1.8e308): then the terms are their limits (old_new: +inf and +inf / -1;
    new_old: +inf and +inf / 1 and 0). Shared with ``kl_penalty_loss`` and
    ``ppo.approx_kl``.

    Both terms are O(log_r^2) near r = 1, where (r - 1) - log r = expm1(d) - d cancels (a
    relative error ~ 2 eps / |d|: 1e-13 at d = 1e-3). For |d| <= 1 they are formed as
    phi(-d) and e^d phi(d), phi(u) = e^-u - 1 + u from its Taylor series (non-negative,
    a few ulp; ``minirl.distributions.categorical._phi``); beyond, the plain forms lose at
    most a factor ~4 of cancellation.
    """
    d = np.asarray(log_r, dtype=np.float64)
    small = np.abs(d) <= 1.0
    # over: r overflows to inf (the true value is then too); invalid: the unused np.where
    # branch may compute inf - inf, which is never selected.
    with np.errstate(over="ignore", invalid="ignore"):
        rm1 = np.expm1(d)  # r - 1, accurate near r = 1
        if direction == "old_new":
            return np.where(small, _phi(-d), np.where(d == np.inf, np.inf, rm1 - d)), rm1
        r = np.exp(d)
        # r log r - (r - 1) = e^d phi(d) for |d| <= 1; for d > 1 the equal form
        # r (d - 1) + 1 (both parts >= 0) avoids inf - inf once r overflows; for d < -1,
        # d (r - 1) - ((r - 1) - d), no cancellation there. For d = -inf (r = 0 exactly in
        # float64; the true r log r is below the smallest float) the term is 1 and its
        # derivative 0.
        terms = np.where(small, r * _phi(d),
                         np.where(d > 1.0, r * (d - 1.0) + 1.0,
                                  np.where(d == -np.inf, 1.0, d * rm1 - (rm1 - d))))
        return terms, np.where(d == -np.inf, 0.0, r * d)
