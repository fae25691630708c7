"""PPO surrogate losses (clipped and KL-penalized) and their diagnostics.

With samples (s_t, a_t) from the old policy pi_k, ``logp_old = log pi_k(a_t|s_t)``,
``logp = log pi_theta(a_t|s_t)`` and the ratio r_t = exp(logp - logp_old):

    surrogate      L_k(theta)      = E_t[ r_t A_t ]
    clipped        L^CLIP(theta)   = E_t[ min(r_t A_t, clip(r_t, 1-eps, 1+eps) A_t) ]
    KL-penalized   L^KL(theta)     = E_t[ r_t A_t ] - beta * E_s[ KL(pi_k(.|s) || pi_theta(.|s)) ]

Every loss here is the *negative* objective (to be minimized), averaged over samples, and is
returned as ``(loss, dlogp)`` -- or ``(kl, dlogits)`` for the exact categorical KL -- so an
agent does ``dlogits = dist.log_prob_backward(a, dlogp)`` and backpropagates. Because
``d r / d logp = r``, at theta = theta_k (r = 1) the surrogate gradients reduce to
``dlogp = -A / M``: the on-policy advantage-weighted gradient (``policy_gradient_loss`` with
``advantage_weights``), up to the 1/M normalization.

Which KL to use. For a categorical policy use ``categorical_kl(logits, logits_old)``: the exact
KL per visited state, zero gradient at theta = theta_k, no sampling noise. For other policies
(Gaussian) either the distribution's closed-form KL (``minirl.distributions``) or the sample
estimator inside ``kl_penalty_loss``: k3 = (r - 1) - log r, which is unbiased for
KL(pi_k || pi_theta) (E_{a~pi_k}[r] = 1), always >= 0, and whose gradient (r - 1) grad log pi
is unbiased for grad KL(pi_k || pi_theta) and vanishes per sample at r = 1 (Schulman 2020,
"Approximating KL divergence").

Lecture: 004_233fd61d3e4def9e.txt "Proximal Policy Optimization" (adaptive KL penalty with
beta doubling/halving at 1.5 delta; clipped objective), "What is KL-divergence?";
001 "PPO clipping", "KL penalty". Paper: Schulman, Wolski, Dhariwal, Radford & Klimov (2017).
"""
from __future__ import annotations

import numpy as np

from kernels._validate import as_float, result_dtype, same_shape
from minirl.distributions import Categorical

__all__ = [
    "ppo_clip_loss",
    "surrogate_loss",
    "kl_penalty_loss",
    "categorical_kl",
    "approx_kl",
    "clip_fraction",
    "adaptive_kl_beta",
]


def _ratio_inputs(logp, logp_old, adv=None):
    logp = as_float(logp, "logp")
    logp_old = as_float(logp_old, "logp_old")
    same_shape("logp", logp, logp_old=logp_old)
    arrays = [logp, logp_old]
    if adv is not None:
        adv = as_float(adv, "adv")
        same_shape("logp", logp, adv=adv)
        arrays.append(adv)
    if logp.size == 0:
        raise ValueError("logp must not be empty")
    dtype = result_dtype(*arrays)
    ratio = np.exp(logp.astype(np.float64) - logp_old)
    return logp, logp_old, adv, ratio, dtype


def _check_eps(clip_eps):
    clip_eps = float(clip_eps)
    if not 0.0 < clip_eps < 1.0:
        raise ValueError(f"clip_eps must be in (0, 1), got {clip_eps}")
    return clip_eps


def ppo_clip_loss(logp, logp_old, adv, clip_eps: float = 0.2):
    """PPO's clipped surrogate as a loss, and its gradient w.r.t. ``logp``.

    loss  = -(1/M) sum_i min( r_i A_i, clip(r_i, 1-eps, 1+eps) A_i ),  r_i = exp(logp_i - logp_old_i)
    dlogp = -(1/M) r_i A_i  where the unclipped term is the minimum, else 0

    The clipped term is constant in theta, so a sample whose ratio has left [1-eps, 1+eps]
    in the improving direction (A > 0 and r > 1+eps, or A < 0 and r < 1-eps) contributes no
    gradient; in the worsening direction the unclipped term is the minimum and still pulls back.
    On the kinks r = 1 +- eps the unclipped branch is taken (a valid subgradient).

    Lecture: 004 "Clipped Objective" L^CLIP_{theta_k}(theta); 001 "PPO clipping".
    Paper: Schulman et al. (2017), eq. (7).
    Unbiased: at theta = theta_k its gradient is exactly the on-policy advantage-weighted
    gradient (unbiased for grad J when A is the true advantage); elsewhere it is a pessimistic
    surrogate, not an estimator of grad J.

    Shapes: ``logp, logp_old, adv`` any equal shape (``[B]`` or ``[T, N]``), M = their size.
    Returns ``(loss: float, dlogp)`` with ``dlogp`` shaped like ``logp``.
    """
    logp, _, adv, r, dtype = _ratio_inputs(logp, logp_old, adv)
    eps = _check_eps(clip_eps)
    unclipped = r * adv
    clipped = np.clip(r, 1.0 - eps, 1.0 + eps) * adv
    use_unclipped = unclipped <= clipped
    M = logp.size
    loss = -float(np.minimum(unclipped, clipped).sum()) / M
    dlogp = np.where(use_unclipped, -unclipped / M, 0.0)
    return loss, dlogp.astype(dtype, copy=False)


def surrogate_loss(logp, logp_old, adv):
    """The unclipped importance-weighted surrogate as a loss (beta = 0 in ``kl_penalty_loss``).

    loss = -(1/M) sum_i r_i A_i,   dlogp = -(1/M) r_i A_i

    Lecture: 004 L_pi(pi') = E_{tau~pi}[sum_t gamma^t pi'(a_t|s_t)/pi(a_t|s_t) A^pi(s_t, a_t)];
    000 "Common final form". Paper: Schulman et al. (2015), TRPO.
    Unbiased: its gradient at theta = theta_k is the on-policy advantage-weighted gradient;
    elsewhere it estimates grad L_k(theta) (the per-step "common final form"), not grad J.

    Shapes: ``logp, logp_old, adv`` equal shapes; returns ``(loss, dlogp)``.
    """
    logp, _, adv, r, dtype = _ratio_inputs(logp, logp_old, adv)
    M = logp.size
    return -float((r * adv).sum()) / M, (-(r * adv) / M).astype(dtype, copy=False)


def kl_penalty_loss(logp, logp_old, adv, beta: float):
    """PPO's KL-penalized surrogate with the sample KL estimator k3, and ``dlogp``.

    loss  = -(1/M) sum_i r_i A_i + beta (1/M) sum_i [ (r_i - 1) - log r_i ]
    dlogp = (1/M) ( -r_i A_i + beta (r_i - 1) )

    with (s_i, a_i) ~ pi_k: the penalty term estimates E_s[KL(pi_k(.|s) || pi_theta(.|s))]
    without bias, and its gradient beta (r - 1) grad log pi estimates beta grad KL without
    bias; it vanishes sample by sample at theta = theta_k. For categorical policies prefer
    ``surrogate_loss`` + ``beta * categorical_kl`` (exact KL per state, no sampling noise).

    Lecture: 004 "PPO with adaptive KL penalty": theta_{k+1} = argmax L_{theta_k}(theta)
    - beta_k D_KL(theta || theta_k), D_KL = E_{s~d^{pi_k}} KL(pi_k(.|s), pi_theta(.|s)).
    Paper: Schulman et al. (2017), eq. (8); Schulman (2020), "Approximating KL divergence".
    Unbiased: the KL term and its gradient are unbiased (states from pi_k); the total gradient
    at theta = theta_k is the on-policy advantage-weighted gradient.

    Shapes: ``logp, logp_old, adv`` equal shapes (M = size); returns ``(loss, dlogp)``.
    """
    logp, logp_old, adv, r, dtype = _ratio_inputs(logp, logp_old, adv)
    beta = float(beta)
    if not beta >= 0.0:
        raise ValueError(f"beta must be >= 0, got {beta}")
    M = logp.size
    log_r = logp.astype(np.float64) - logp_old
    k3 = np.expm1(log_r) - log_r  # (r - 1) - log r, accurate near r = 1
    loss = (-float((r * adv).sum()) + beta * float(k3.sum())) / M
    dlogp = (-(r * adv) + beta * np.expm1(log_r)) / M
    return loss, dlogp.astype(dtype, copy=False)


def categorical_kl(logits, logits_old):
    """Exact mean KL(pi_old(.|s) || pi_theta(.|s)) over a batch of states, and ``dlogits``.

    kl      = (1/B) sum_b sum_a p_old[b, a] (log p_old[b, a] - log p[b, a])
    dlogits = (1/B) (p[b] - p_old[b])        (gradient w.r.t. the *new* logits only)

    which is exactly zero at logits = logits_old. Add ``beta * dlogits`` to the surrogate's
    ``dist.log_prob_backward(a, dlogp)``. The divergence itself is computed by
    ``minirl.distributions.Categorical.kl`` / ``kl_backward``.

    Lecture: 004 "What is KL-divergence?", D_KL(pi'||pi)[s] = sum_a pi'(a|s) log(pi'/pi), and
    the PPO penalty's D_KL(theta || theta_k) = E_{s~d^{pi_k}} KL(pi_k(.|s), pi_theta(.|s)).
    Unbiased: for E_{s~d^{pi_k}}[KL] when the states are sampled from pi_k (exact per state).

    Shapes: ``logits, logits_old [B, A]`` (or ``[..., A]``; the mean is over all batch
    elements); returns ``(kl: float, dlogits)`` with ``dlogits`` shaped like ``logits``.
    """
    new = Categorical(logits)
    old = Categorical(logits_old)
    if new.logits.shape != old.logits.shape:
        raise ValueError(
            f"logits_old must have the shape of logits {new.logits.shape}, got {old.logits.shape}")
    B = int(np.prod(new.batch_shape))
    kl = old.kl(new)
    _, dlogits = old.kl_backward(new, np.full(kl.shape, 1.0 / B))
    return float(kl.sum()) / B, dlogits


def approx_kl(logp, logp_old):
    """Two sample estimates of KL(pi_old || pi_theta) from actions drawn from pi_old.

    k1 = mean(logp_old - logp)             unbiased, can be negative, high variance
    k3 = mean((r - 1) - log r)             unbiased, always >= 0, low variance near r = 1

    Diagnostics only (CleanRL logs both as ``old_approx_kl`` / ``approx_kl``).
    Lecture: 004 "What is KL-divergence?". Paper: Schulman (2020), "Approximating KL divergence".
    Unbiased: both, for samples from pi_old.

    Shapes: ``logp, logp_old`` equal shapes. Returns ``(k1, k3)`` floats.
    """
    logp, logp_old, _, _, _ = _ratio_inputs(logp, logp_old)
    log_r = logp.astype(np.float64) - logp_old
    return float(np.mean(-log_r)), float(np.mean(np.expm1(log_r) - log_r))


def clip_fraction(logp, logp_old, clip_eps: float = 0.2) -> float:
    """Fraction of samples whose ratio lies outside [1 - eps, 1 + eps] (``|r - 1| > eps``).

    Diagnostic (CleanRL's ``clipfrac``). Lecture: 004 "Clipped Objective".
    Shapes: ``logp, logp_old`` equal shapes; returns a float in [0, 1].
    """
    _, _, _, r, _ = _ratio_inputs(logp, logp_old)
    eps = _check_eps(clip_eps)
    return float(np.mean(np.abs(r - 1.0) > eps))


def adaptive_kl_beta(beta: float, kl: float, target_kl: float) -> float:
    """The adaptive-KL rule: double beta if KL >= 1.5 delta, halve it if KL <= delta / 1.5.

    Lecture: 004 "Algorithm PPO with Adaptive KL Penalty". Paper: Schulman et al. (2017), sec. 4.
    Returns the new beta (unchanged in between).
    """
    beta, kl, target_kl = float(beta), float(kl), float(target_kl)
    if not (beta > 0 and target_kl > 0):
        raise ValueError(f"beta and target_kl must be positive, got {beta}, {target_kl}")
    if kl >= 1.5 * target_kl:
        return 2.0 * beta
    if kl <= target_kl / 1.5:
        return beta / 2.0
    return beta
