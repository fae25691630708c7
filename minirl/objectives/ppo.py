"""PPO surrogate losses (clipped, clipped-ratio, KL-penalized) and their diagnostics.

With samples (s_t, a_t) from the old policy pi_k, ``logp_old = log pi_k(a_t|s_t)``,
``logp = log pi_theta(a_t|s_t)`` and the ratio r_t = exp(logp - logp_old):

    surrogate      L_k(theta)      = E_t[ r_t A_t ]
    clipped ratio  L^TRICK1(theta) = E_t[ clip(r_t, 1-eps, 1+eps) A_t ]          (no min)
    clipped        L^CLIP(theta)   = E_t[ min(r_t A_t, clip(r_t, 1-eps, 1+eps) A_t) ]
    KL-penalized   L^KL(theta)     = E_t[ r_t A_t ] - beta * E_s[ KL(pi_k(.|s) || pi_theta(.|s)) ]
                                     (or the other direction, ``direction="new_old"``)

Every loss here is the *negative* objective (to be minimized), averaged over samples, and is
returned as ``(loss, dlogp)`` -- or ``(kl, dlogits)`` for the exact categorical KL -- so an
agent does ``dlogits = dist.log_prob_backward(a, dlogp)`` and backpropagates. Because
``d r / d logp = r``, at theta = theta_k (r = 1) the surrogate gradients reduce to
``dlogp = -A / M``: the on-policy advantage-weighted gradient (``policy_gradient_loss`` with
``advantage_weights``), up to the 1/M normalization.

Which advantage to pass. ``A_t`` is whatever the caller supplies. The expectation of the
gradient at theta = theta_k is grad J only if A_t carries the discount of its step:
``adv = advantage_weights(A, terminated, truncated, gamma)`` = gamma^k A^pi_t. Fed A^pi_t
itself (as the agents do, like most PPO code) the expectation is the ``step_discount=False``
field sum_t E[grad log pi(a_t|s_t) Q_t] (``minirl.mdp.exact_gradient(...,
step_discount=False)``), biased for gamma < 1. ``policy_gradient_from_dlogp(scores, dlogp,
loss_divisor=M, num_episodes=E)`` turns ``dlogp`` into an estimate of grad J.

Which KL to use (``minirl.objectives.kl`` has both directions). For a categorical policy the
exact KL per visited state, ``categorical_kl`` (= ``kl.categorical_kl_old_new``, direction
KL(pi_k || pi_theta)): zero gradient at theta = theta_k, no sampling noise. For other policies
(Gaussian) either the distribution's closed-form KL (``minirl.distributions``) or the sample
estimator inside ``kl_penalty_loss``: k3 = (r - 1) - log r for KL(pi_k || pi_theta), or
r log r - (r - 1) for KL(pi_theta || pi_k); both unbiased, >= 0 per sample, with unbiased
gradients that vanish per sample at r = 1 (Schulman 2020, "Approximating KL divergence").

Extreme ratios. r = exp(logp - logp_old) may exceed float64 (log r > 709.78) while the loss
does not: each term is then computed exactly per element (``minirl.objectives._ratio``): a
sample with A = 0 contributes exactly 0 to the loss and to ``dlogp`` (never inf * 0 = NaN),
r A is sign(A) exp(log r + log|A|), and the losses are +-inf only where the true value is.
Ordinary inputs take the direct form (same bits as before). Raises FloatingPointError (named)
only if logp - logp_old itself overflows float64 (|logp| ~ 1e308) where the result is not
determined by float64 inputs.

Lecture: Stanford CS234 "Lecture 6: Policy Gradient II", "Algorithm PPO with Adaptive KL
Penalty" (beta doubling/halving at 1.5 delta), "Clipped Objective", "What is KL-divergence?";
Stanford CS224R "Proximal Policy Optimization (PPO)" ("Trick #1: Clip the importance weights",
"Trick #2: Take minimum"). Paper: Schulman, Wolski, Dhariwal, Radford & Klimov (2017),
arXiv:1707.06347.
"""
from __future__ import annotations

import numpy as np

from kernels._validate import as_float, result_dtype, same_shape
from minirl.nn.losses import mean_f64
from minirl.objectives._ratio import mean_ratio_times, ratio_times
from minirl.objectives.kl import KL_DIRECTIONS, categorical_kl_old_new, sample_kl_terms

__all__ = [
    "ppo_clip_loss",
    "clipped_ratio_loss",
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
    if logp_old.shape != logp.shape:
        same_shape("logp", logp, logp_old=logp_old)
    arrays = [logp, logp_old]
    if adv is not None:
        adv = as_float(adv, "adv")
        if adv.shape != logp.shape:
            same_shape("logp", logp, adv=adv)
        arrays.append(adv)
    if logp.size == 0:
        raise ValueError("logp must not be empty")
    dtype = logp.dtype     # result_dtype's answer when every array has it (the usual case)
    if any(a.dtype != dtype for a in arrays):
        dtype = result_dtype(*arrays)
    with np.errstate(over="ignore"):  # r beyond float64: the losses work in log space there
        ratio = np.exp(logp.astype(np.float64) - logp_old)
    return logp, logp_old, adv, ratio, dtype


def _ordinary(r) -> bool:
    """Every ratio a normal float64 (no overflow to inf, no underflow): the direct products
    r A are then right unless they overflow, which the callers check."""
    return bool(np.isfinite(r).all() and r.min() >= _TINY)


_TINY = np.finfo(np.float64).tiny


def _log_ratio(logp, logp_old):
    with np.errstate(over="ignore"):  # +-inf: the true log-ratio is beyond float64
        return logp.astype(np.float64) - logp_old


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

    Lecture: CS234 "Policy Gradient II", "Clipped Objective" L^CLIP_{theta_k}(theta); CS224R
    "Proximal Policy Optimization (PPO)", "Trick #2: Take minimum".
    Paper: Schulman et al. (2017), arXiv:1707.06347, eq. (7).
    Unbiased: at theta = theta_k its gradient is the on-policy advantage-weighted gradient
    -(1/M) sum_i A_i grad log pi: unbiased for grad J (after ``policy_gradient_from_dlogp``)
    when ``adv`` = gamma^k A^pi (``advantage_weights``). Fed A^pi itself its expectation is
    the biased ``step_discount=False`` field (see the module docstring); for gamma = 1 the two
    agree. Away from theta_k it is a pessimistic surrogate, not an estimator of grad J.

    Shapes: ``logp, logp_old, adv`` any equal shape (``[B]`` or ``[T, N]``), M = their size.
    Returns ``(loss: float, dlogp)`` with ``dlogp`` shaped like ``logp``.
    """
    logp, logp_old, adv, r, dtype = _ratio_inputs(logp, logp_old, adv)
    eps = _check_eps(clip_eps)
    M = logp.size
    clipped = r.clip(1.0 - eps, 1.0 + eps) * adv       # (np.clip's own method, ~1 us sooner)
    if _ordinary(r):  # the direct form (fast path; these are its bits)
        unclipped = r * adv
        use_unclipped = unclipped <= clipped
        loss = -float(np.add.reduce(np.minimum(unclipped, clipped), axis=None)) / M
        if np.isfinite(unclipped).all() and np.isfinite(loss):
            return loss, np.where(use_unclipped, -unclipped / M, 0.0).astype(dtype, copy=False)
    log_r = _log_ratio(logp, logp_old)
    # r A per element, exact where r = exp(log r) over/underflows (A = 0: exactly 0, never
    # inf * 0 = NaN; A < 0 with r beyond float64: -inf, the truth's rounding).
    unclipped = ratio_times(log_r, adv, r=r)
    use_unclipped = unclipped <= clipped
    # loss = -(1/M) sum min(...): the unclipped minima as -A r (log space if need be), the
    # clipped ones as constants.
    loss = mean_ratio_times(log_r, np.where(use_unclipped, -adv, 0.0),
                            np.where(use_unclipped, 0.0, -clipped), M, r=r)
    dlogp = np.where(use_unclipped, ratio_times(log_r, -adv, M, r=r), 0.0)
    return loss, dlogp.astype(dtype, copy=False)


def clipped_ratio_loss(logp, logp_old, adv, clip_eps: float = 0.2):
    """CS224R's "Trick #1": the surrogate with clipped importance weights, without the min.

    loss  = -(1/M) sum_i clip(r_i, 1-eps, 1+eps) A_i,   r_i = exp(logp_i - logp_old_i)
    dlogp = -(1/M) r_i A_i  where 1-eps < r_i < 1+eps, else 0

    Outside the band the clipped ratio is constant, so *every* sample whose ratio left
    [1-eps, 1+eps] stops contributing gradient, whichever way A points. L^CLIP
    (``ppo_clip_loss``, "Trick #2") differs exactly on the samples that left the band in the
    worsening direction (A > 0, r < 1-eps or A < 0, r > 1+eps): there the min picks r A, whose
    gradient -(1/M) r A still pulls the ratio back. On the kinks r = 1 +- eps the gradient is
    taken as 0 (a valid one-sided derivative).

    Lecture: CS224R "Proximal Policy Optimization (PPO)", "Trick #1: Clip the importance
    weights" ("Policy no longer incentivized to deviate significantly").
    Paper: Schulman et al. (2017), arXiv:1707.06347, eq. (7) without the min.
    Unbiased: at theta = theta_k its gradient equals ``ppo_clip_loss``'s (every r = 1);
    elsewhere it is a surrogate, not an estimator of grad J.

    Shapes: ``logp, logp_old, adv`` any equal shape, M = their size.
    Returns ``(loss: float, dlogp)`` with ``dlogp`` shaped like ``logp``.
    """
    logp, _, adv, r, dtype = _ratio_inputs(logp, logp_old, adv)
    eps = _check_eps(clip_eps)
    M = logp.size
    inside = (r > 1.0 - eps) & (r < 1.0 + eps)
    loss = -mean_f64(np.clip(r, 1.0 - eps, 1.0 + eps) * adv, M)
    with np.errstate(invalid="ignore", over="ignore"):  # inf * 0 outside the band: unused
        dlogp = np.where(inside, -(r * adv) / M, 0.0)
    return loss, dlogp.astype(dtype, copy=False)


def surrogate_loss(logp, logp_old, adv):
    """The unclipped importance-weighted surrogate as a loss (beta = 0 in ``kl_penalty_loss``).

    loss = -(1/M) sum_i r_i A_i,   dlogp = -(1/M) r_i A_i

    Lecture: CS234 "Policy Gradient II", L_pi(pi') = E_{tau~pi}[sum_t gamma^t
    pi'(a_t|s_t)/pi(a_t|s_t) A^pi(s_t, a_t)]; CS224R "Policy Gradients", "Common final form".
    Paper: Schulman et al. (2015), arXiv:1502.05477 (TRPO).
    Unbiased: with ``adv`` = gamma^k A^pi its gradient at theta = theta_k is unbiased for
    grad J (as ``ppo_clip_loss``'s); elsewhere it estimates grad L_k(theta) (the per-step
    "common final form"), not grad J.

    Shapes: ``logp, logp_old, adv`` equal shapes; returns ``(loss, dlogp)``.
    """
    logp, logp_old, adv, r, dtype = _ratio_inputs(logp, logp_old, adv)
    M = logp.size
    if _ordinary(r):  # the direct form (fast path; these are its bits)
        ra = r * adv
        loss = -float(ra.sum()) / M
        if np.isfinite(ra).all() and np.isfinite(loss):
            return loss, (-ra / M).astype(dtype, copy=False)
    log_r = _log_ratio(logp, logp_old)  # r A exact per element (A = 0: 0 whatever r)
    return (mean_ratio_times(log_r, -adv, None, M, r=r),
            ratio_times(log_r, -adv, M, r=r).astype(dtype, copy=False))


def kl_penalty_loss(logp, logp_old, adv, beta: float, *, direction: str = "old_new"):
    """PPO's KL-penalized surrogate with a sample KL estimator, and ``dlogp``.

    direction "old_new" (default, CS234's PPO: KL(pi_k || pi_theta)):
        loss  = -(1/M) sum_i r_i A_i + beta (1/M) sum_i [ (r_i - 1) - log r_i ]
        dlogp = (1/M) ( -r_i A_i + beta (r_i - 1) )
    direction "new_old" (CS224R's constraint: KL(pi_theta || pi_k)):
        loss  = -(1/M) sum_i r_i A_i + beta (1/M) sum_i [ r_i log r_i - (r_i - 1) ]
        dlogp = (1/M) ( -r_i A_i + beta r_i log r_i )

    with (s_i, a_i) ~ pi_k: the penalty term estimates the state-averaged KL of its direction
    without bias, and its gradient estimates beta grad KL without bias; it vanishes sample by
    sample at theta = theta_k (see ``minirl.objectives.kl``). For categorical policies
    ``surrogate_loss`` + ``beta * kl.categorical_kl_*`` is exact per state (no sampling noise).

    Lecture: CS234 "Policy Gradient II", "Algorithm PPO with Adaptive KL Penalty":
    theta_{k+1} = argmax L_{theta_k}(theta) - beta_k D_KL(theta || theta_k),
    D_KL = E_{s~d^{pi_k}} KL(pi_k(.|s), pi_theta(.|s)); CS224R "Policy Gradients", KL
    constraint E_{s~pi_theta}[D_KL(pi_theta'(.|s) || pi_theta(.|s))] <= delta.
    Paper: Schulman et al. (2017), arXiv:1707.06347, eq. (8); Schulman (2020).
    Unbiased: the KL term and its gradient are unbiased (states and actions from pi_k); the
    total gradient at theta = theta_k is ``surrogate_loss``'s.

    Shapes: ``logp, logp_old, adv`` equal shapes (M = size); returns ``(loss, dlogp)``.
    """
    logp, logp_old, adv, r, dtype = _ratio_inputs(logp, logp_old, adv)
    beta = float(beta)
    if not (beta >= 0.0 and np.isfinite(beta)):
        raise ValueError(f"beta must be finite and >= 0, got {beta}")
    if direction not in KL_DIRECTIONS:
        raise ValueError(f"direction must be one of {KL_DIRECTIONS}, got {direction!r}")
    M = logp.size
    log_r = _log_ratio(logp, logp_old)
    terms, dterms = sample_kl_terms(log_r, direction)
    with np.errstate(over="ignore", invalid="ignore"):
        loss = (-float((r * adv).sum()) + beta * float(terms.sum())) / M
        dlogp = (-(r * adv) + beta * dterms) / M
    if not np.isfinite(loss) or not np.isfinite(dlogp).all():
        # r beyond float64 (inf * 0, inf - inf): per element the loss term is r c + b and its
        # derivative r g + h, with r factored out exactly:
        #   old_new: -r A + beta((r - 1) - d) = r (beta - A) - beta (1 + d),  grad r (beta - A) - beta
        #   new_old: -r A + beta(r d - (r - 1)) = r (beta (d - 1) - A) + beta, grad r (beta d - A)
        if not np.isfinite(log_r).all():
            raise FloatingPointError(
                "logp - logp_old overflowed float64 (|logp| ~ 1e308) and the KL-penalized loss "
                "is not finite in float64 arithmetic; rescale logp and logp_old")
        d = log_r
        if direction == "old_new":
            c, b, g, h = beta - adv, -beta * (1.0 + d), beta - adv, -beta
        else:
            c, b, g, h = beta * (d - 1.0) - adv, beta, beta * d - adv, 0.0
        if not np.isfinite(loss):
            loss = mean_ratio_times(log_r, c, b, M)
        bad = ~np.isfinite(dlogp)
        exact = ratio_times(log_r, g, M, r=r) + h / M
        dlogp = np.where(bad, exact, dlogp)
    return loss, dlogp.astype(dtype, copy=False)


def categorical_kl(logits, logits_old):
    """Exact mean KL(pi_old(.|s) || pi_theta(.|s)) over a batch of states, and ``dlogits``.

    The direction of CS234's PPO penalty ("old_new"); an alias of
    ``minirl.objectives.kl.categorical_kl_old_new`` (see it; the other direction is
    ``kl.categorical_kl_new_old``). Add ``beta * dlogits`` to the surrogate's
    ``dist.log_prob_backward(a, dlogp)``.

    Shapes: ``logits, logits_old [B, A]``; returns ``(kl: float, dlogits)``.
    """
    return categorical_kl_old_new(logits, logits_old)


def approx_kl(logp, logp_old):
    """Two sample estimates of KL(pi_old || pi_theta) from actions drawn from pi_old.

    k1 = mean(logp_old - logp)             unbiased; a term can be negative
    k3 = mean((r - 1) - log r)             unbiased; every term >= 0

    Per sample, k1's term is first order in log r and k3's second order ((log r)^2 / 2 + ...),
    which is why k3 is the one logged as the KL. Diagnostics only (CleanRL logs both as
    ``old_approx_kl`` / ``approx_kl``).
    Lecture: CS234 "Policy Gradient II", "What is KL-divergence?". Paper: Schulman (2020),
    "Approximating KL divergence".
    Unbiased: both, for samples from pi_old; direction KL(pi_old || pi_theta).

    Shapes: ``logp, logp_old`` equal shapes. Returns ``(k1, k3)`` floats.
    """
    logp, logp_old, _, _, _ = _ratio_inputs(logp, logp_old)
    log_r = _log_ratio(logp, logp_old)
    # k3's terms phi(-log r) without the cancellation of expm1(log r) - log r near r = 1;
    # +inf where r is beyond float64 (true, for that sample)
    k3 = sample_kl_terms(log_r, "old_new")[0]
    if np.isfinite(log_r).all():
        k1 = mean_f64(-log_r)
    else:  # logp - logp_old overflowed: halving is exact, so k1 = 2 mean(lo/2 - lp/2)
        k1 = 2.0 * mean_f64(logp_old / 2 - logp.astype(np.float64) / 2)
    return k1, mean_f64(k3)


def clip_fraction(logp, logp_old, clip_eps: float = 0.2) -> float:
    """Fraction of samples whose ratio lies outside [1 - eps, 1 + eps] (``|r - 1| > eps``).

    Diagnostic (CleanRL's ``clipfrac``). Lecture: CS234 "Policy Gradient II", "Clipped Objective".
    Shapes: ``logp, logp_old`` equal shapes; returns a float in [0, 1].
    """
    _, _, _, r, _ = _ratio_inputs(logp, logp_old)
    eps = _check_eps(clip_eps)
    return float(np.mean(np.abs(r - 1.0) > eps))


def adaptive_kl_beta(beta: float, kl: float, target_kl: float) -> float:
    """The adaptive-KL rule: double beta if KL >= 1.5 delta, halve it if KL <= delta / 1.5.

    Lecture: CS234 "Policy Gradient II", "Algorithm PPO with Adaptive KL Penalty".
    Paper: Schulman et al. (2017), arXiv:1707.06347, sec. 4.
    Returns the new beta (unchanged in between). Raises ValueError naming ``kl`` for a NaN,
    infinite or negative KL (which would otherwise leave beta unchanged without a word).
    """
    beta, kl, target_kl = float(beta), float(kl), float(target_kl)
    if not (0 < beta < np.inf and 0 < target_kl < np.inf):
        raise ValueError(f"beta and target_kl must be positive and finite, got {beta}, "
                         f"{target_kl}")
    if not (kl >= 0 and np.isfinite(kl)):  # NaN would silently keep beta
        raise ValueError(f"kl must be finite and >= 0, got {kl}")
    if kl >= 1.5 * target_kl:
        return 2.0 * beta
    if kl <= target_kl / 1.5:
        return beta / 2.0
    return beta
