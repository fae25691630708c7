"""Importance weights for off-policy policy gradients, computed in log space.

With ``rho_t = pi_new(a_t|s_t) / pi_old(a_t|s_t)``, i.e.
``log rho_t = logp_new_t - logp_old_t``, and s(t) the first step of t's episode, e(t) its last
(episodes are delimited by ``terminated | truncated`` and by the rollout's edges)::

    "trajectory":    w_t = prod_{k=s(t)}^{e(t)} rho_k    log w_t = sum_{k=s(t)}^{e(t)} log rho_k
    "per_decision":  w_t = prod_{k=s(t)}^{t}    rho_k    log w_t = sum_{k=s(t)}^{t}    log rho_k
    "per_step":      w_t = rho_t                         log w_t = log rho_t

"trajectory" is the lecture's p_theta'(tau) / p_theta(tau) (the dynamics cancel), the same
weight for every step of an episode; "per_decision" weights step t by the ratio of the
trajectory up to t only (future actions cannot affect past rewards); "per_step" is the
lectures' "common final form", which drops the state-distribution ratio and keeps only the
current action's ratio (as PPO's surrogate does).

Overflow policy: ``log_weights`` are the exact sums (accumulated in float64, rounded once to the
result dtype). ``weights = exp(log_weights)``, except that a weight too large to represent
(``log_weights >= log(finfo(dtype).max)``) saturates at ``finfo(dtype).max`` instead of becoming
inf; a weight too small underflows to 0. Use ``log_weights`` when the exact value matters (for
instance, to normalize weights by their maximum before exponentiating).

Lecture: Stanford CS224R "Policy Gradients", "Off-policy version of policy gradient? Importance sampling"
(trajectory ratio, "can become very small or very large, for larger T") and "Common final form";
Stanford CS234 "Lecture 6: Policy Gradient II", "Importance Sampling for Policy Gradients" (prod_{t'=0}^{t} ratio,
"exploding or vanishing importance sampling weights").
Paper: Precup, Sutton & Singh (2000), "Eligibility Traces for Off-Policy Policy Evaluation"
(per-decision importance sampling).
"""
from __future__ import annotations

import numba
import numpy as np

from kernels._validate import as_bool, as_float, result_dtype, same_shape, time_major

MODES = ("trajectory", "per_decision", "per_step")


def importance_weights_reference(logp_new, logp_old, terminated, truncated, mode):
    """Slow reference: explicit sums of log-ratios over each episode segment (float64).

    Returns ``(weights, log_weights)`` with ``weights = exp(log_weights)`` unclipped.
    """
    lp_new = np.asarray(logp_new, dtype=np.float64)
    one_d = lp_new.ndim == 1
    lp_new = lp_new[:, None] if one_d else lp_new
    lp_old = np.asarray(logp_old, dtype=np.float64).reshape(lp_new.shape)
    done = np.asarray(terminated, dtype=bool) | np.asarray(truncated, dtype=bool)
    done = done.reshape(lp_new.shape)
    T, N = lp_new.shape
    logw = np.zeros((T, N))
    for j in range(N):
        for t in range(T):
            s = t  # first step of t's episode
            while s > 0 and not done[s - 1, j]:
                s -= 1
            e = t  # last step of t's episode
            while e < T - 1 and not done[e, j]:
                e += 1
            lo, hi = {"trajectory": (s, e), "per_decision": (s, t), "per_step": (t, t)}[mode]
            logw[t, j] = sum(lp_new[k, j] - lp_old[k, j] for k in range(lo, hi + 1))
    w = np.exp(logw)
    return (w[:, 0], logw[:, 0]) if one_d else (w, logw)


@numba.njit(cache=True)
def _importance_weights_kernel(logp_new, logp_old, terminated, truncated, mode, log_max,
                               w_max, weights, log_weights):
    """Log-ratio sums per mode (0 trajectory, 1 per_decision, 2 per_step), then saturating exp.

    Forward in t: ``S_t = (1 - done_{t-1}) * S_{t-1} + log rho_t`` in float64 (the
    per-decision sum, S_{-1} = 0); for "trajectory" a backward pass then spreads each episode's
    last S over the episode. ``weights = exp(log_weights)``, or ``w_max`` from ``log_max`` on.
    """
    T, N = logp_new.shape
    run = np.zeros(N)  # S_{t-1}, float64 for float32 inputs too
    keep = np.zeros(N)  # 1 - done_{t-1}: 0 before the first row and after an episode end
    for t in range(T):
        for j in range(N):
            d = np.float64(logp_new[t, j]) - np.float64(logp_old[t, j])
            if mode == 2:
                s = d
            else:
                s = keep[j] * run[j] + d
            run[j] = s
            keep[j] = 1.0 - (terminated[t, j] | truncated[t, j])
            log_weights[t, j] = s
    if mode == 0:
        for t in range(T - 2, -1, -1):  # the last row already holds its episode's total
            lw, nxt = log_weights[t], log_weights[t + 1]
            term, trunc = terminated[t], truncated[t]
            for j in range(N):
                end = 1.0 * (term[j] | trunc[j])
                lw[j] = end * lw[j] + (1.0 - end) * nxt[j]  # exact: x*1 + 0 or 0 + y*1
    for t in range(T):
        lw, w = log_weights[t], weights[t]
        for j in range(N):
            x = np.float64(lw[j])
            w[j] = np.exp(x) if x < log_max else w_max


def importance_weights(logp_new, logp_old, terminated, truncated,
                       mode: str) -> tuple[np.ndarray, np.ndarray]:
    """Importance weights ``(weights, log_weights)`` of new vs old policy along a rollout.

    ``log w_t = sum_{k in K(t)} (logp_new_k - logp_old_k)`` with K(t) the whole episode
    ("trajectory"), the episode up to t ("per_decision") or {t} ("per_step");
    ``weights = exp(log_weights)``, saturating at ``finfo(dtype).max`` instead of inf.

    Lecture: Stanford CS224R "Policy Gradients" "Off-policy version of policy gradient? Importance
    sampling" and "Common final form"; Stanford CS234 "Lecture 6: Policy Gradient II" "Importance Sampling for Policy
    Gradients". Paper: Precup, Sutton & Singh (2000).
    Unbiased: "trajectory" and "per_decision" give unbiased off-policy gradient estimates when
    pi_old > 0 wherever pi_new > 0 (and no weight saturates); "per_step" is biased (it ignores
    the change in state distribution), with far lower variance.

    Args:
        logp_new: ``[T, N]`` or ``[T]`` float32/float64 (ints become float64), finite:
            ``log pi_new(a_t|s_t)``.
        logp_old: same shape: ``log pi_old(a_t|s_t)`` of the policy that collected the data.
        terminated: bool, same shape.
        truncated: bool, same shape (both end an episode here; only the union matters).
        mode: "trajectory", "per_decision" or "per_step".

    Returns:
        ``(weights, log_weights)``, each the shape of ``logp_new``; float64 if any float input
        is float64, else float32.

    Raises:
        TypeError: non-numeric log-probabilities, non-bool flags, non-string mode.
        ValueError: shape mismatch, not 1-D/2-D, NaN/inf, unknown mode.
    """
    if not isinstance(mode, str):
        raise TypeError(f"mode must be a string, one of {MODES}, got {type(mode).__name__}")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    logp_new = as_float(logp_new, "logp_new")
    logp_old = as_float(logp_old, "logp_old")
    dtype = result_dtype(logp_new, logp_old)
    logp_new = as_float(logp_new, "logp_new", dtype=dtype, finite=False)  # no copy if right
    logp_old = as_float(logp_old, "logp_old", dtype=dtype, finite=False)
    terminated = as_bool(terminated, "terminated")
    truncated = as_bool(truncated, "truncated")
    same_shape("logp_new", logp_new, logp_old=logp_old, terminated=terminated,
               truncated=truncated)
    lp2 = time_major(logp_new, "logp_new")  # [T, N] view
    weights = np.empty(lp2.shape, dtype=dtype)
    log_weights = np.empty(lp2.shape, dtype=dtype)
    if weights.size:
        # The bound in float64 (log(float32 max) rounded to float32 rounds *up*): below it,
        # exp rounded to dtype is finite; from it on, the weight saturates (tested).
        w_max = float(np.finfo(dtype).max)
        log_max = float(np.log(w_max))
        _importance_weights_kernel(lp2, time_major(logp_old, "logp_old"),
                                   time_major(terminated, "terminated"),
                                   time_major(truncated, "truncated"),
                                   MODES.index(mode), log_max, w_max, weights, log_weights)
    return weights.reshape(logp_new.shape), log_weights.reshape(logp_new.shape)
