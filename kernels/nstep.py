"""n-step bootstrapped targets over a time-major rollout.

Equation (per environment column, t = 0 .. T-1)::

    y_t = sum_{k=0}^{m-1} gamma^k r_{t+k} + gamma^m * (1 - terminated_{t+m-1}) * next_values_{t+m-1}

where m <= n is the number of steps actually taken: the sum stops early at the end of t's
episode (the first step t+k with terminated or truncated, which is included) or at the last
row of the rollout. ``next_values[t] = V(true s_{t+1})`` (for a target network, max_a Q or the
policy's expected Q at the next state), so a truncated step still bootstraps and only
``terminated`` zeroes the tail. Special cases: n = 1 is the TD target
``r_t + gamma * (1 - terminated_t) * next_values_t``; n >= T is the discounted return
bootstrapped from ``next_values`` (see kernels/returns.py).

The kernel uses the equivalent recursion over the horizon k (y^(k) = the k-step target)::

    y^(1)_t = r_t + gamma * (1 - terminated_t) * next_values_t
    y^(k)_t = r_t + gamma * (cont_t * y^(k-1)_{t+1}
                             + (1 - terminated_t) * (1 - cont_t) * next_values_t)

with ``cont_t = 1 - (terminated_t | truncated_t)``, and 0 on the rollout's last row.

Lecture: Stanford CS224R lectures, "Estimating V^pi: Monte Carlo vs. Bootstrap" (N-step
returns), Q-learning "N-step returns" (N-step target) and "TD, MC, N-Step Return" (bias vs
variance); Stanford CS234 "Lecture 6: Policy Gradient II", n-step estimators between TD and MC.
Paper: Sutton & Barto (2018), Reinforcement Learning, ch. 7 (n-step bootstrapping);
Hessel et al. (2018), "Rainbow" (multi-step targets in DQN).
"""
from __future__ import annotations

import numba
import numpy as np

from kernels._validate import (as_bool, as_float, positive_int, result_dtype, same_shape,
                               time_major, unit_interval)


def nstep_targets_reference(rewards, next_values, terminated, truncated, gamma, n):
    """Slow reference: the explicit n-step sum from the definition (O(T n), float64).

    Like :func:`nstep_targets`, finite inputs whose targets lie beyond the result dtype
    (float32 if both float inputs are float32, else float64) raise FloatingPointError."""
    f32 = all(np.asarray(x).dtype == np.float32 for x in (rewards, next_values))
    dtype = np.dtype(np.float32 if f32 else np.float64)
    r = np.asarray(rewards, dtype=np.float64)
    one_d = r.ndim == 1
    r = r[:, None] if one_d else r
    nv = np.asarray(next_values, dtype=np.float64).reshape(r.shape)
    term = np.asarray(terminated, dtype=bool).reshape(r.shape)
    trunc = np.asarray(truncated, dtype=bool).reshape(r.shape)
    T, N = r.shape
    out = np.zeros((T, N))
    for j in range(N):
        for t in range(T):
            m = 1  # steps taken: up to n, stopping at the episode end or the rollout end
            while m < n and t + m - 1 < T - 1 and not (term[t + m - 1, j] or trunc[t + m - 1, j]):
                m += 1
            y = sum(gamma ** k * r[t + k, j] for k in range(m))
            last = t + m - 1
            if not term[last, j]:
                y += gamma ** m * nv[last, j]
            out[t, j] = y
    if np.isfinite(r).all() and np.isfinite(nv).all() and not (
            np.abs(out) <= np.finfo(dtype).max).all():
        raise FloatingPointError(f"n-step targets overflowed {dtype}")
    return out[:, 0] if one_d else out


@numba.njit(cache=True)
def _nstep_targets_kernel(rewards, next_values, terminated, truncated, gamma, n, scratch, out):
    """y^(k)_t = r_t + gamma*(cont_t*y^(k-1)_{t+1} + (1-term_t)*(1-cont_t)*nv_t), k = n..1.

    Backwards in t, keeping the k-step targets of row t+1 for k = 1..n-1 in ``scratch[k]``
    (``[n, N]``, result dtype, row 0 unused): each row costs n passes over N values that stay in
    cache, and memory is streamed once. Updating k from n down to 1 reads ``scratch[k-1]`` (row t+1)
    before it is overwritten with row t. Few environments: the same, one column at a time.
    """
    T, N = rewards.shape
    if N < 4:
        for j in range(N):
            for t in range(T - 1, -1, -1):
                not_last = 1.0 if t < T - 1 else 0.0  # the rollout's last row never continues
                cont = (1.0 - (terminated[t, j] | truncated[t, j])) * not_last
                r = rewards[t, j]
                tail = (1.0 - terminated[t, j]) * (1.0 - cont) * next_values[t, j]
                for k in range(n, 1, -1):
                    y = r + gamma * (cont * scratch[k - 1, j] + tail)
                    if k == n:
                        out[t, j] = y
                    else:
                        scratch[k, j] = y
                y1 = r + gamma * (1.0 - terminated[t, j]) * next_values[t, j]
                if n == 1:
                    out[t, j] = y1
                else:
                    scratch[1, j] = y1
        return
    for t in range(T - 1, -1, -1):
        not_last = 1.0 if t < T - 1 else 0.0  # the rollout's last row never continues
        r, nv, term, trunc = rewards[t], next_values[t], terminated[t], truncated[t]
        for k in range(n, 0, -1):
            dst = out[t] if k == n else scratch[k]
            if k == 1:
                for j in range(N):
                    dst[j] = r[j] + gamma * (1.0 - term[j]) * nv[j]
            else:
                prev = scratch[k - 1]  # the (k-1)-step targets of row t+1
                for j in range(N):
                    cont = (1.0 - (term[j] | trunc[j])) * not_last
                    dst[j] = r[j] + gamma * (cont * prev[j]
                                             + (1.0 - term[j]) * (1.0 - cont) * nv[j])


def nstep_targets(rewards, next_values, terminated, truncated, gamma: float,
                  n: int) -> np.ndarray:
    """n-step targets ``y_t = sum_{k<m} gamma^k r_{t+k} + gamma^m (1-term_{t+m-1}) nv_{t+m-1}``.

    m <= n stops at the end of t's episode (terminated or truncated, inclusive) or the rollout.

    Lecture: Stanford CS224R lectures "Monte Carlo vs. Bootstrap" (N-step returns) and the
    Q-learning "N-step returns" slides. Paper: Sutton & Barto (2018) ch. 7.
    Unbiased: for V^pi / Q^pi only on-policy and with an exact ``next_values`` (the lecture's
    "only actually correct when learning on-policy"); n >= episode length without truncation is
    the unbiased Monte Carlo return.

    Args:
        rewards: ``[T, N]`` or ``[T]`` float32/float64 (ints become float64); finite.
        next_values: same shape; ``next_values[t] = V(true s_{t+1})`` (before any reset).
        terminated: bool, same shape; true terminal state: no bootstrap, sum stops.
        truncated: bool, same shape; time limit: bootstrap kept, sum stops.
        gamma: discount in [0, 1].
        n: horizon, an integer >= 1 (bools rejected).

    Returns:
        ``targets``, the shape of ``rewards``; float64 if any float input is float64, else
        float32.

    Raises:
        TypeError: non-numeric values, non-bool flags, non-real gamma, non-integer n.
        ValueError: shape mismatch, not 1-D/2-D, NaN/inf, gamma outside [0, 1], n < 1.
        FloatingPointError: finite inputs whose targets overflow the result dtype (never a
            silent inf or NaN).
    """
    rewards = as_float(rewards, "rewards")
    next_values = as_float(next_values, "next_values")
    dtype = result_dtype(rewards, next_values)
    rewards = as_float(rewards, "rewards", dtype=dtype, finite=False)  # no copy if already right
    next_values = as_float(next_values, "next_values", dtype=dtype, finite=False)
    terminated = as_bool(terminated, "terminated")
    truncated = as_bool(truncated, "truncated")
    same_shape("rewards", rewards, next_values=next_values, terminated=terminated,
               truncated=truncated)
    gamma = unit_interval(gamma, "gamma")
    n = positive_int(n, "n")
    r2 = time_major(rewards, "rewards")  # [T, N] view
    T, N = r2.shape
    out = np.empty((T, N), dtype=dtype)
    if out.size == 0:
        return out.reshape(rewards.shape)
    n = min(n, T)  # a horizon past the rollout end changes nothing
    scratch = np.zeros((n, N), dtype=dtype)  # zeros: read (times 0) on the last row
    _nstep_targets_kernel(r2, time_major(next_values, "next_values"),
                          time_major(terminated, "terminated"), time_major(truncated, "truncated"),
                          gamma, n, scratch, out)
    # Finite inputs (checked above) can still overflow the dtype (float32 rewards near its
    # maximum): inf, or NaN where an overflowed target meets a 0 flag; one cheap pass.
    with np.errstate(over="ignore", invalid="ignore"):
        total = np.add.reduce(out, axis=None)
    if not np.isfinite(total) and not np.isfinite(out).all():
        advice = ("rescale the rewards and values" if dtype == np.float64
                  else "use float64 inputs or rescale the rewards and values")
        raise FloatingPointError(f"n-step targets overflowed {dtype}; {advice}")
    return out.reshape(rewards.shape)
