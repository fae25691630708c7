"""Q-learning: exploration policies, TD targets (DQN, double DQN, n-step, ensembles), the TD
loss with its gradient at the Q-values, and the overestimation bias of max-based targets.

| function              | equation                                                               |
|-----------------------|------------------------------------------------------------------------|
| ``linear_schedule``   | v(t) = start + (end - start) * min(1, t / (fraction * total))          |
| ``epsilon_greedy``    | a = random action w.p. eps, else argmax_a Q(s, a) (ties at random)     |
| ``boltzmann``         | pi(a|s) = exp(Q(s, a) / T) / sum_b exp(Q(s, b) / T)                    |
| ``ensemble_reduce``   | Q(s, a) = min_k Q_k(s, a)  or  mean_k Q_k(s, a)  (K heads)             |
| ``q_targets``         | y = G + d * Q'(s', argmax_a' Q'(s', a'))        (DQN)                  |
|                       | y = G + d * Q'(s', argmax_a' Q(s', a'))         (double DQN)           |
|                       | G = sum_{k<m} gamma^k r_{t+k}, d = gamma^m (1 - terminated)  (n-step)  |
| ``td_loss``           | L = sum_k 1/B sum_i w_i h(Q_k(s_i, a_i) - y_i), h = squared or Huber   |
| ``overestimation_bias``| E[max_a Qhat(s, a)] - max_a Q(s, a), and the double estimator's        |

Losses return ``(value, dL/dq, td_errors)``: the gradient is at the network's output ``q
[B, A]`` (or ``[K, B, A]`` for an ensemble), nonzero only at the taken actions; the target
gets no gradient (the lecture's semi-gradient with a stop-gradient on the target network).

Lecture: Stanford CS224R, Q-learning tutorial: "What are good choices for data collection?"
(epsilon-greedy, Boltzmann exploration), "How to make Q-learning stable?" (target networks),
"Double Q-learning" / "Double Q-learning in practice", "N-step returns", "Practical
Implementation Details: Dealing with TD Gradients" (Huber loss, gradient clipping),
"Q-Learning Overestimation", "Critic Ensembling", "Q-Learning: DQN pseudocode (Algorithm 1)".
Papers: Mnih et al. (2015), Nature 518 (DQN); van Hasselt, Guez & Silver (2016), "Deep
Reinforcement Learning with Double Q-learning", arXiv:1509.06461; van Hasselt (2010), "Double
Q-learning", NeurIPS; Chen et al. (2021), "Randomized Ensembled Double Q-Learning" (REDQ),
arXiv:2101.05982; An et al. (2021), "Uncertainty-Based Offline RL with Diversified Q-Ensemble"
(SAC-N, EDAC), arXiv:2110.01548.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from kernels._validate import finite_real
from kernels.unique import argmax_first, argmax_random_tiebreak, greedy_with_ties
from minirl.nn.losses import huber, mse

__all__ = ["linear_schedule", "epsilon_greedy", "epsilon_greedy_probs", "boltzmann",
           "boltzmann_probs", "ensemble_mean", "ensemble_reduce", "ensemble_reduce_backward",
           "q_targets", "td_loss", "overestimation_bias", "overestimation_bias_mc",
           "ENSEMBLE_REDUCTIONS"]

ENSEMBLE_REDUCTIONS = ("min", "mean")


def _q_values(q, name: str = "q") -> np.ndarray:
    q = np.asarray(q)
    if q.dtype.kind != "f":
        q = q.astype(np.float64)
    if q.ndim != 2 or q.shape[1] < 1:
        raise ValueError(f"{name} must have shape [B, A] with A >= 1, got {q.shape}")
    if not np.isfinite(q).all():
        raise ValueError(f"{name} contains NaN or inf")
    return q


# ----------------------------------------------------------------------------- schedules
def linear_schedule(step: int, start: float, end: float, fraction: float,
                    total_steps: int) -> float:
    """``v(t) = start + (end - start) * min(1, t / (fraction * total_steps))``.

    The exploration rate of DQN (epsilon from 1 to 0.05 over the first 10% of training), a
    Boltzmann temperature, or the PER exponent beta (beta0 -> 1 over all of training). With
    ``fraction = 0`` the value is ``end`` from step 0.
    Lecture: CS224R "What are good choices for data collection?" ("often start with larger
    epsilon, decrease over training").

    Args: step >= 0 (env steps so far), start, end finite, fraction in [0, 1], total_steps >= 1.
    Raises: ValueError / TypeError naming the argument.
    """
    if isinstance(step, bool) or not isinstance(step, numbers.Integral) or step < 0:
        raise ValueError(f"step must be a non-negative integer, got {step!r}")
    if isinstance(total_steps, bool) or not isinstance(total_steps, numbers.Integral) \
            or total_steps < 1:
        raise ValueError(f"total_steps must be a positive integer, got {total_steps!r}")
    start, end, fraction = finite_real(start, "start"), finite_real(end, "end"), finite_real(fraction, "fraction")
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be in [0, 1], got {fraction}")
    horizon = fraction * total_steps
    if horizon <= 0.0 or step >= horizon:
        return end                       # exactly: start + (end - start) * 1 can round
    return start + (end - start) * (step / horizon)


# ----------------------------------------------------------------------------- exploration
def epsilon_greedy_probs(q, epsilon: float) -> np.ndarray:
    """Action probabilities of :func:`epsilon_greedy`: ``eps / A + (1 - eps) * 1[a in G] / |G|``
    with G the tied maxima of ``q[b]``; ``q [B, A]`` -> ``[B, A]`` float64 (for tests and
    exact expectations)."""
    q = _q_values(q)
    epsilon = finite_real(epsilon, "epsilon")
    if not 0.0 <= epsilon <= 1.0:
        raise ValueError(f"epsilon must be in [0, 1], got {epsilon}")
    greedy = q == q.max(axis=1, keepdims=True)
    return epsilon / q.shape[1] + (1.0 - epsilon) * greedy / greedy.sum(axis=1, keepdims=True)


def epsilon_greedy(q, epsilon: float, rng: np.random.Generator) -> np.ndarray:
    """``a_b`` = a uniform random action with probability ``epsilon``, else the greedy action
    ``argmax_a q[b, a]`` with ties broken uniformly at random (``kernels.unique``).

    The random branch draws from all A actions (the DQN pseudocode's "random action"), so the
    greedy action has probability ``1 - eps + eps / A``; the lecture's alternative form gives
    the others ``eps / (A - 1)``. Lecture: CS224R "What are good choices for data collection?",
    "Q-Learning: DQN pseudocode (Algorithm 1)".

    Shapes: q ``[B, A]`` -> int64 ``[B]``. Draws ``B`` uniforms for the coin and ``B`` random
    actions from ``rng`` always, and ``B`` tie-break uniforms only when some row of ``q`` has
    tied maxima.
    """
    q = np.asarray(q)
    if q.dtype.kind != "f":
        q = q.astype(np.float64)
    if q.ndim != 2 or q.shape[1] < 1:
        raise ValueError(f"q must have shape [B, A] with A >= 1, got {q.shape}")
    greedy, tied = greedy_with_ties(q)          # one pass; ValueError on NaN/inf
    epsilon = finite_real(epsilon, "epsilon")
    if not 0.0 <= epsilon <= 1.0:
        raise ValueError(f"epsilon must be in [0, 1], got {epsilon}")
    B, A = q.shape
    if B == 1:   # one env: scalar draws, the same stream and values as the calls below
        explore, random_actions = rng.random() < epsilon, rng.integers(A)   # (~4x cheaper)
    else:
        explore = rng.random(B) < epsilon
        random_actions = rng.integers(0, A, B)
    # ties (all-equal Q at initialization, constant observations): uniform among the maxima;
    # the kernel (and its draws) only when a row has one, which a trained net rarely has.
    if tied:
        greedy = argmax_random_tiebreak(q, axis=1, rng=rng)
    if B == 1:
        if explore:
            greedy[0] = random_actions
        return greedy
    return np.where(explore, random_actions, greedy)


def boltzmann_probs(q, temperature: float) -> np.ndarray:
    """``pi(a|s) = exp(q_a / T) / sum_b exp(q_b / T)`` (stable: max subtracted), ``[B, A]``.

    ``T -> 0`` approaches the greedy policy, ``T -> inf`` the uniform one. Lecture: CS224R
    "What are good choices for data collection?" ("Boltzmann exploration", pi ~ exp(Q)).
    Raises ValueError for ``temperature <= 0``.
    """
    q = _q_values(q)
    temperature = finite_real(temperature, "temperature")
    if not temperature > 0.0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    z = (q - q.max(axis=1, keepdims=True)) / temperature
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    return p


def boltzmann(q, temperature: float, rng: np.random.Generator) -> np.ndarray:
    """Sample ``a_b ~ boltzmann_probs(q, T)[b]`` by inverting the CDF with one uniform per row.

    Shapes: q ``[B, A]`` -> int64 ``[B]``.
    """
    p = boltzmann_probs(q, temperature)
    cdf = np.cumsum(p, axis=1)
    u = rng.random((p.shape[0], 1)) * cdf[:, -1:]
    return np.minimum((cdf <= u).sum(axis=1), p.shape[1] - 1).astype(np.int64)


# ----------------------------------------------------------------------------- ensembles
def ensemble_mean(q, axis: int = 0) -> np.ndarray:
    """``mean_k q[k]`` over the heads' ``axis``, in ``q``'s dtype, without overflow.

    NumPy's float32 mean sums in float32: K heads near float32's maximum (3e38 + 3e38) give
    inf though the mean is 3e38. Where that happens (finite input, non-finite mean) the mean
    is recomputed in float64 (float32 input: exact sums) or, for float64 input, from the
    heads divided by K first, then cast back (one rounding: a mean that fits the dtype is
    finite). Ordinary input: ``q.mean(axis)``, bit for bit. The mean over DQN ensemble heads,
    the online heads of double DQN, REDQ's actor and the ensemble TD errors.
    Shapes: q ``[K, ...]`` -> ``[...]``. Lecture: CS224R "Critic Ensembling".
    """
    q = np.asarray(q)
    with np.errstate(over="ignore", invalid="ignore"):
        out = q.mean(axis=axis)
    if np.isfinite(out).all() or not np.isfinite(q).all():
        return out
    dtype = out.dtype
    if q.dtype != np.float64:
        exact = q.astype(np.float64).mean(axis=axis)
    else:
        exact = (q / q.shape[axis]).sum(axis=axis)
    with np.errstate(over="ignore"):   # (float32: cannot overflow, the mean is < max |q|)
        return np.asarray(exact).astype(dtype)


def ensemble_reduce(q, reduction: str = "min"):
    """Reduce K heads: ``min_k q[k]`` or ``mean_k q[k]``; q ``[K, ...]`` -> ``(out [...], cache)``.

    The "min" reduction is the lecture's answer to overestimation with an ensemble (different
    initializations make different errors; SAC's twin critics are K = 2).
    Lecture: CS224R "Critic Ensembling". Papers: Chen et al. 2021 (REDQ); An et al. 2021.
    """
    q = np.asarray(q)
    if q.ndim < 1 or q.shape[0] < 1:
        raise ValueError(f"q must have shape [K, ...] with K >= 1, got {q.shape}")
    if reduction == "min":
        k = q.argmin(axis=0)                    # first minimum: a subgradient at ties
        out = np.take_along_axis(q, k[None], axis=0)[0]
        return out, (reduction, q.shape, k)
    if reduction == "mean":
        return ensemble_mean(q), (reduction, q.shape, None)   # (no float32 overflow)
    raise ValueError(f"reduction must be one of {ENSEMBLE_REDUCTIONS}, got {reduction!r}")


def ensemble_reduce_backward(cache, dout) -> np.ndarray:
    """``dq [K, ...]`` from ``dout [...]``: to the minimizing head (min), or ``dout / K`` (mean)."""
    reduction, shape, k = cache
    dout = np.asarray(dout)
    if dout.shape != shape[1:]:
        raise ValueError(f"dout must have shape {shape[1:]}, got {dout.shape}")
    if reduction == "mean":
        return np.broadcast_to(dout / shape[0], shape).copy()
    dq = np.zeros(shape, dtype=dout.dtype)
    np.put_along_axis(dq, k[None], dout[None], axis=0)
    return dq


# ----------------------------------------------------------------------------- targets
def q_targets(returns, discounts, next_q_target, next_q_online=None,
              reduction: str = "min") -> np.ndarray:
    """TD targets ``y_i = G_i + d_i * Q'(s'_i, a*_i)`` (no gradient flows through them).

    a*_i = argmax_a Q'(s'_i, a)      (DQN: the target net picks and evaluates; ``next_q_online``
                                      is None)
    a*_i = argmax_a Q(s'_i, a)       (double DQN: the online net picks, the target net
                                      evaluates; pass ``next_q_online``)
    For 1-step transitions ``G = r``, ``d = gamma * (1 - terminated)``; for n-step ones the
    replay buffer's ``returns`` and ``discounts`` (``gamma^m`` or 0). A truncated transition
    keeps ``d > 0``: it bootstraps from the true final observation.
    Ensembles (``[K, B, A]`` arrays): the target heads are reduced per action with
    ``reduction`` (min or mean), the online heads by their mean, before the argmax.

    Lecture: CS224R "Double Q-learning in practice" (standard vs double target), "N-step
    returns", "Critic Ensembling", "Q-Learning: DQN pseudocode (Algorithm 1)" (y_i).
    Unbiased: no - max over noisy estimates overestimates (see :func:`overestimation_bias`);
    double DQN removes the bias when the two estimates' errors are independent.

    Shapes: returns, discounts ``[B]``; next_q_target (and next_q_online) ``[B, A]`` or
    ``[K, B, A]`` -> ``[B]`` in the dtype of ``next_q_target``.
    """
    next_q_target = np.asarray(next_q_target)
    if next_q_target.ndim == 3:
        next_q_target = ensemble_reduce(next_q_target, reduction)[0]
    q_next = _q_values(next_q_target, "next_q_target")
    B = q_next.shape[0]
    returns = np.asarray(returns)
    discounts = np.asarray(discounts)
    if returns.shape != (B,) or discounts.shape != (B,):
        raise ValueError(f"returns {returns.shape} and discounts {discounts.shape} must have "
                         f"shape [B={B}]")
    if not (np.isfinite(returns).all() and np.isfinite(discounts).all()):
        raise ValueError("returns or discounts contain NaN or inf")
    if next_q_online is None:
        best = q_next.max(axis=1)
    else:
        online = np.asarray(next_q_online)
        if online.ndim == 3:
            online = ensemble_mean(online)
        online = _q_values(online, "next_q_online")
        if online.shape != q_next.shape:
            raise ValueError(f"next_q_online {online.shape} must match next_q_target "
                             f"{q_next.shape}")
        a_star = argmax_first(online, axis=1)
        best = q_next[np.arange(B), a_star]
    return (returns + discounts * best).astype(q_next.dtype, copy=False)


# ----------------------------------------------------------------------------- loss
def td_loss(q, actions, targets, loss: str = "huber", delta: float = 1.0, weights=None):
    """TD regression of the taken actions' Q-values onto fixed targets.

        L = sum_k (1/B) sum_i w_i h(Q_k(s_i, a_i) - y_i)
        h(x) = x^2 (``"mse"``, the lecture's Algorithm 1)  or  Huber_delta(x) (``"huber"``)
        dL/dQ_k(s_i, a) = 1[a = a_i] (1/B) w_i h'(Q_k(s_i, a_i) - y_i),  0 for other actions

    With K heads (``q [K, B, A]``) each head is regressed onto the same targets, so the sum
    over heads gives every head the gradient it would get alone. ``weights`` are PER importance
    weights (default 1). The target is a constant (semi-gradient).

    Lecture: CS224R "Q-Learning: DQN pseudocode (Algorithm 1)" (``1/N sum [Q(s_i, a_i) -
    y_i]^2``), "Practical Implementation Details: Dealing with TD Gradients" (Huber loss).

    Shapes: q ``[B, A]`` or ``[K, B, A]``; actions int ``[B]`` in [0, A); targets ``[B]``;
    weights ``[B]`` or None.
    Returns: ``(loss float, dq like q, td_errors [B])`` with ``td_errors = Q(s_i, a_i) - y_i``
    (the mean over heads for an ensemble: the PER priority signal).
    Raises: ValueError naming the argument (shapes, action range, loss name, NaN).
    """
    q = np.asarray(q)
    if q.ndim not in (2, 3):
        raise ValueError(f"q must have shape [B, A] or [K, B, A], got {q.shape}")
    K = 1 if q.ndim == 2 else q.shape[0]
    B, A = q.shape[-2:]
    actions = np.asarray(actions)
    if actions.shape != (B,) or actions.dtype.kind not in "iu":
        raise ValueError(f"actions must be integers of shape [B={B}], got {actions.dtype}"
                         f"{actions.shape}")
    if B and (actions.min() < 0 or actions.max() >= A):
        raise ValueError(f"actions must be in [0, {A})")
    targets = np.asarray(targets)
    if targets.shape != (B,):
        raise ValueError(f"targets must have shape [B={B}], got {targets.shape}")
    rows = np.arange(B)
    pred = q[..., rows, actions]                                   # [B] or [K, B]
    tgt = targets.astype(q.dtype, copy=False)
    w = None if weights is None else np.asarray(weights, q.dtype)
    if q.ndim == 3:
        tgt = np.broadcast_to(tgt, (K, B))
        w = None if w is None else np.broadcast_to(w, (K, B))
    if loss == "huber":
        value, dpred = huber(pred, tgt, delta=delta, weights=w)   # mean over K*B
    elif loss == "mse":
        value, dpred = mse(pred, tgt, weights=w)
    else:
        raise ValueError(f"loss must be 'mse' or 'huber', got {loss!r}")
    dq = np.zeros_like(q)
    dq[..., rows, actions] = dpred * K if K > 1 else dpred         # sum over heads
    with np.errstate(over="ignore"):   # |Q - y| beyond the dtype's largest float: +-inf
        td_errors = pred - tgt if q.ndim == 2 else ensemble_mean(pred - tgt)
    return value * K, dq, td_errors


# ----------------------------------------------------------------------------- overestimation
def overestimation_bias(num_actions: int, sigma: float = 1.0, noise: str = "normal"):
    """Exact bias of the max-based target and of the double estimator, one state, equal values.

    All ``A = num_actions`` actions have the same true value Q (so max_a Q = Q); the estimates
    are ``Qhat_a = Q + Y_a`` with i.i.d. zero-mean noise ``Y_a``. Then (``Z_s`` in the lecture,
    per unit of gamma)::

        max bias    = E[max_a Qhat_a] - max_a Q = E[max_a Y_a]
                    = sigma * integral x A phi(x) Phi(x)^(A-1) dx         (normal noise)
                    = eps (A - 1) / (A + 1)                               (uniform on [-eps, eps],
                                                                           sigma = eps)
        double bias = E[Qhat^B_{argmax_a Qhat^A_a}] - Q = 0                (A, B independent)

    ``Qhat^A``, ``Qhat^B`` are two independent estimates (double Q-learning's two networks); the
    argmax of one is independent of the other's noise, whose mean is 0.
    Lecture: CS224R "Q-Learning Overestimation" (E[Y] = 0 but E[Z_s] > 0), "Q-Learning vs
    Double Q-Learning" (10 actions). Paper: van Hasselt et al. 2016, arXiv:1509.06461, Thm 1.

    Returns ``(max_bias, double_bias)`` as floats. Raises ValueError for num_actions < 1,
    sigma < 0 or an unknown noise.
    """
    if isinstance(num_actions, bool) or not isinstance(num_actions, numbers.Integral) \
            or num_actions < 1:
        raise ValueError(f"num_actions must be a positive integer, got {num_actions!r}")
    sigma = finite_real(sigma, "sigma")
    if sigma < 0:
        raise ValueError(f"sigma must be >= 0, got {sigma}")
    A = int(num_actions)
    if noise == "uniform":
        return sigma * (A - 1) / (A + 1), 0.0
    if noise != "normal":
        raise ValueError(f"noise must be 'normal' or 'uniform', got {noise!r}")
    from scipy import integrate, stats   # only this exact oracle needs them

    def density(x):
        return x * A * stats.norm.pdf(x) * stats.norm.cdf(x) ** (A - 1)

    e_max, _ = integrate.quad(density, -np.inf, np.inf, epsabs=1e-13, epsrel=1e-12)
    return sigma * e_max, 0.0


def overestimation_bias_mc(num_actions: int, sigma: float, num_samples: int,
                           rng: np.random.Generator) -> dict:
    """Monte Carlo version of :func:`overestimation_bias` with normal noise, with standard
    errors: draws ``num_samples`` pairs of independent estimate vectors ``Qhat^A, Qhat^B``
    (true values 0) and averages ``max_a Qhat^A_a`` (max target) and
    ``Qhat^B_{argmax_a Qhat^A_a}`` (double estimator).

    Returns ``{"max": mean, "max_se": se, "double": mean, "double_se": se}`` with
    ``se = std / sqrt(num_samples)``.
    """
    if isinstance(num_samples, bool) or not isinstance(num_samples, numbers.Integral) \
            or num_samples < 2:
        raise ValueError(f"num_samples must be an integer >= 2, got {num_samples!r}")
    overestimation_bias(num_actions, sigma, "uniform")   # validates the arguments
    qa = sigma * rng.standard_normal((num_samples, num_actions))
    qb = sigma * rng.standard_normal((num_samples, num_actions))
    m = qa.max(axis=1)
    d = qb[np.arange(num_samples), argmax_random_tiebreak(qa, axis=1, rng=rng)]
    n = math.sqrt(num_samples)
    return {"max": float(m.mean()), "max_se": float(m.std(ddof=1) / n),
            "double": float(d.mean()), "double_se": float(d.std(ddof=1) / n)}
