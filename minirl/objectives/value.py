"""Value targets y_t for fitting V(s_t), and the advantages A_t = y_t - V(s_t), chosen by name.

Each estimator is one call into ``kernels`` (time-major ``[T, N]``, terminated and truncated
kept apart; ``next_values[t] = V(true s_{t+1})``):

| method   | y_t                                                                | kernel              |
|----------|--------------------------------------------------------------------|---------------------|
| ``mc``   | sum_{k>=t} gamma^{k-t} r_k to the episode end (bootstrap V only    | discounted_returns  |
|          | where a time limit or the rollout cut the episode)                 |                     |
| ``td0``  | r_t + gamma (1 - terminated_t) V(s_{t+1})                          | nstep_targets, n=1  |
| ``nstep``| sum_{k=0}^{n-1} gamma^k r_{t+k} + gamma^n V(s_{t+n}) (cut at ends) | nstep_targets       |
| ``gae``  | A_t^{GAE(gamma, lam)} + V(s_t)                                     | gae                 |

Bias/variance: ``mc`` is unbiased for V^pi with high variance; ``td0`` has the lowest
variance and is biased by the current V; ``nstep`` and ``gae`` (lam in [0, 1]) interpolate
(GAE lam=0 is TD(0), lam=1 is Monte Carlo with the same bootstraps).

Lecture: Stanford CS224R actor-critic lectures, "Estimating V^pi: Monte Carlo vs. Bootstrap",
"N-step returns", "Generalized advantage estimation"; Stanford CS234 "Lecture 6: Policy
Gradient II", the n-step advantage estimators A^(1) ... A^(inf) (bias/variance). Papers: Sutton & Barto (2018) ch. 7;
Schulman et al., "High-Dimensional Continuous Control Using GAE", ICLR 2016.
"""
from __future__ import annotations

import numpy as np

from kernels._validate import as_float
from kernels.gae import gae
from kernels.nstep import nstep_targets
from kernels.returns import discounted_returns
from minirl.nn.losses import diff_f64, mean_product_f64, mse, product_as

__all__ = ["VALUE_TARGETS", "advantages_and_targets", "value_loss", "explained_variance"]

VALUE_TARGETS = ("mc", "td0", "nstep", "gae")


def advantages_and_targets(method: str, rewards, values, next_values, terminated, truncated,
                           gamma: float, lam: float = 0.95, n: int = 5):
    """``(adv, targets)``, both ``[T, N]``: targets y_t by ``method``, adv = y_t - V(s_t)
    (for ``gae`` the GAE advantage itself, whose targets are adv + V(s_t)).

    Shapes: ``rewards, values, next_values, terminated, truncated`` all ``[T, N]``.
    ``lam`` is used by ``gae`` only, ``n`` by ``nstep`` only.
    Unbiased: ``mc`` yes (complete episodes); the others only when V = V^pi.
    Raises ValueError naming ``values`` if it holds NaN/inf or is not shaped like ``rewards``
    (the kernels check the other arrays); FloatingPointError if finite inputs give targets or
    advantages beyond the dtype (float32 near its maximum), never a silent inf or NaN.
    """
    values = as_float(values, "values")
    if values.shape != np.shape(rewards):
        raise ValueError(f"values must have the shape of rewards {np.shape(rewards)}, "
                         f"got {values.shape}")
    if method == "gae":
        return gae(rewards, values, next_values, terminated, truncated, gamma, lam)
    if method == "mc":
        targets = discounted_returns(rewards, terminated, truncated, gamma,
                                     bootstrap_values=next_values)
    elif method == "td0":
        targets = nstep_targets(rewards, next_values, terminated, truncated, gamma, 1)
    elif method == "nstep":
        targets = nstep_targets(rewards, next_values, terminated, truncated, gamma, n)
    else:
        raise ValueError(f"value target method must be one of {VALUE_TARGETS}, got {method!r}")
    with np.errstate(over="ignore"):   # finite y and V whose difference overflows the dtype
        adv = targets - np.asarray(values, dtype=targets.dtype)
        total = np.add.reduce(adv, axis=None)
    if not np.isfinite(total) and not np.isfinite(adv).all():
        raise FloatingPointError(f"advantages (targets - values) overflowed {adv.dtype}; use "
                                 f"float64 inputs or rescale the rewards and values")
    return adv, targets


def value_loss(values, targets, values_old=None, clip: float = 0.0):
    """Squared-error value loss and its gradient w.r.t. ``values``; optionally PPO-clipped.

    clip = 0:  L = mean((V - y)^2),                        dV = 2 (V - y) / B
    clip > 0:  V_c = V_old + clip(V - V_old, -clip, clip)
               L = mean(max((V - y)^2, (V_c - y)^2))       dV = 2 (V - y) / B where the first
               term is the max, 2 (V_c - y) / B where the second is and V_c is inside the
               clip range, else 0.

    Value clipping (Schulman et al.'s PPO2 code, not the PPO paper) is off by default in
    minirl: Andrychowicz et al. 2021 ("What matters in on-policy RL?") and Engstrom et al.
    2020 found it does not help and can hurt. Lecture: CS224R "Estimating V^pi" (Step 2:
    supervised learning, L(phi) = 1/2 sum_i ||V_phi(s_i) - y_i||^2 onto targets y_t).
    Shapes: ``values, targets, values_old`` [B]; returns ``(loss: float, dvalues [B])``.
    Extremes: the loss is finite whenever the true value fits float64 (float32 V and y of
    +-2e38, whose difference overflows float32, included); an element of dvalues whose true
    value is beyond the largest float of its dtype is +-inf (IEEE rounding; the optimizer
    then raises ``NonFiniteGradientError``), the others are right.
    """
    if not clip >= 0.0:  # NaN too
        raise ValueError(f"clip must be >= 0, got {clip}")
    if clip == 0.0:
        return mse(values, targets)
    if values_old is None:  # values - None would be a bare TypeError deep inside
        raise ValueError("values_old is required when clip > 0 (the clip is around V_old)")
    B = max(values.size, 1)
    with np.errstate(over="ignore"):   # (overflow: recomputed in float64 below)
        delta = np.clip(values - values_old, -clip, clip)
        v_clipped = values_old + delta
        err, err_c = values - targets, v_clipped - targets
    if np.isfinite(err).all() and np.isfinite(err_c).all() and np.isfinite(delta).all():
        e64, ec64, c = np.asarray(err, np.float64), np.asarray(err_c, np.float64), 1.0
    else:   # a difference beyond the dtype's largest float (float32 V and y of +-2e38):
        # every difference in float64 (halved where float64 itself overflows, c = 2)
        d64, cd = diff_f64(values, values_old)
        with np.errstate(over="ignore"):
            vc64 = np.asarray(values_old, np.float64) + np.clip(cd * d64, -clip, clip)
        e64, c = diff_f64(values, targets)
        ec64, cc = diff_f64(vc64, targets)
        if cc != c:
            e64, ec64, c = e64 * c / 2, ec64 * cc / 2, 2.0
    # Squares in float64: a float32 square of 1e20 overflows (and inf >= inf would pick the
    # wrong branch: where a float64 square overflows, the magnitudes decide).
    with np.errstate(over="ignore"):
        sq, sq_c = e64 * e64, ec64 * ec64
        use_first = np.where(np.isinf(sq) & np.isinf(sq_c), np.abs(e64) >= np.abs(ec64),
                             sq >= sq_c)
        inside = np.abs(values - values_old) < clip
        dvalues = np.where(use_first, 2.0 * err, np.where(inside, 2.0 * err_c, 0.0)) / B
    if not np.isfinite(dvalues).all():   # 2 (V - y) / B right wherever it fits the dtype
        picked = np.where(use_first, e64, np.where(inside, ec64, 0.0))
        dvalues = product_as(np.result_type(dvalues), dvalues, 2.0 * c / B, picked)
    m = np.where(use_first, e64, ec64)   # the larger error: its square is the max
    cs = () if c == 1.0 else (c, c)
    return mean_product_f64(B, *cs, m, m), dvalues


def explained_variance(values, targets) -> float:
    """1 - Var[y - V] / Var[y]: 1 is a perfect fit, 0 no better than a constant, NaN if
    Var[y] = 0. Diagnostic of the critic. Shapes: any equal shapes."""
    y = np.asarray(targets, np.float64)  # float64: float32 squares overflow past ~1e19
    var_y = _var(y)
    return float("nan") if var_y == 0.0 else 1.0 - _var(y - values) / var_y


def _var(a: np.ndarray) -> float:
    """``float(np.var(a))``, bit for bit, for a float64 array: NumPy's own ``_var`` steps
    (sum with keepdims, divide by the count, subtract, square, sum, divide) without its
    generality (~5 us a call, the per-update metric's cost on 64-sample A2C batches)."""
    n = a.size
    if n == 0 or type(a) is not np.ndarray or a.dtype != np.float64 or a.ndim == 0:
        return float(np.var(a))   # (the empty-slice warning, subclasses, other dtypes, 0-d)
    mean = np.add.reduce(a, axis=None, keepdims=True)
    np.true_divide(mean, n, out=mean)
    x = np.subtract(a, mean)
    np.square(x, out=x)
    return float(np.add.reduce(x, axis=None)) / n
