"""Discounted reward-to-go over a time-major rollout, reset at every episode end.

Equations (per environment column, t = 0 .. T-1)::

    G_t = r_t + gamma * tail_t

    tail_t = G_{t+1}                    if step t did not end the episode and t < T-1
           = 0                          if terminated_t            (true terminal state)
           = V(s_{t+1}) = b_t           if truncated_t, or t = T-1 (time limit / rollout cut)

    where b = bootstrap_values; b = None means V = 0 everywhere.

Written from the definition, with e the last step of t's episode inside the rollout (the first
k >= t with terminated_k or truncated_k, else T-1)::

    G_t = sum_{k=t}^{e} gamma^(k-t) r_k  +  gamma^(e-t+1) * (1 - terminated_e) * b_e

Terminated and truncated are kept apart on purpose: a time limit is not a terminal state, so
its tail is the value of the state the agent was cut off in (Pardo et al. 2018). A step that is
both terminated and truncated is treated as terminated (no bootstrap).

With ``bootstrap_values=None`` the tail is 0 everywhere: the plain Monte-Carlo reward-to-go of
what was observed, which is the lectures' estimator when every episode runs to termination.

Lecture: Stanford CS224R "Policy Gradients", "Improving the gradient - Using causality" (sum of future
rewards); Stanford CS224R lectures, "Improving policy gradients - Estimating reward to go" and
"Estimating V^pi: Monte Carlo vs. Bootstrap" / "Aside: discount factors";
"Policy Gradients and Gradient-Free Optimization" slides, discounted return R(tau).
Paper: Sutton & Barto (2018), Reinforcement Learning, sec. 3.3 (discounted return);
Pardo, Tavakoli, Levdik & Kormushev (2018), "Time Limits in Reinforcement Learning".
"""
from __future__ import annotations

import numba
import numpy as np

from kernels._validate import as_bool, as_float, same_shape, time_major, unit_interval


def discounted_returns_reference(rewards, terminated, truncated, gamma, bootstrap_values=None):
    """Slow reference: the explicit sum from the definition (O(T^2) per column, float64).

    No validation beyond ``np.asarray``; for tests and benchmarks only.
    """
    r = np.asarray(rewards, dtype=np.float64)
    one_d = r.ndim == 1
    r = r[:, None] if one_d else r
    term = np.asarray(terminated, dtype=bool).reshape(r.shape)
    trunc = np.asarray(truncated, dtype=bool).reshape(r.shape)
    boot = None
    if bootstrap_values is not None:
        boot = np.asarray(bootstrap_values, dtype=np.float64).reshape(r.shape)
    T, N = r.shape
    out = np.zeros((T, N))
    for j in range(N):
        for t in range(T):
            e = t  # last step of t's episode inside the rollout
            while e < T - 1 and not (term[e, j] or trunc[e, j]):
                e += 1
            g = sum(gamma ** (k - t) * r[k, j] for k in range(t, e + 1))
            if boot is not None and not term[e, j]:
                g += gamma ** (e - t + 1) * boot[e, j]
            out[t, j] = g
    return out[:, 0] if one_d else out


@numba.njit(cache=True)
def _returns_column(rewards, terminated, truncated, gamma, bootstrap_values, boot_scale, out):
    """One environment's column ``[T]``: the recursion as a scalar loop, backwards in t.

    Its speed limit is the carried multiply and add; the rest of the step is off the dependency
    chain. Called on 1-D views, so that the single-environment case indexes a contiguous array
    (2-D ``[t, j]`` indexing measured about 1.7x slower at T = 10^6). Splitting the column into
    independent chains with a bit-exact fix-up measured slower (see ``kernels/gae.py``).
    """
    T = rewards.shape[0]
    g = 0.0  # G_{t+1}, float64 even for float32 output
    for t in range(T - 1, -1, -1):
        not_last = 1.0 if t < T - 1 else 0.0
        cont = (1.0 - (terminated[t] | truncated[t])) * not_last
        # Off the dependency chain: what step t adds, and how much of G_{t+1} it keeps.
        d = rewards[t] + gamma * (1.0 - terminated[t]) * (1.0 - cont) * (
            boot_scale * bootstrap_values[t])
        g = d + (gamma * cont) * g
        out[t] = g


@numba.njit(cache=True)
def _discounted_returns_kernel(rewards, terminated, truncated, gamma, bootstrap_values,
                               boot_scale, out):
    """G_t = r_t + gamma*(cont_t*G_{t+1} + (1-term_t)*(1-cont_t)*boot_scale*b_t), backwards in t.

    ``cont_t = 1 - (terminated_t | truncated_t)``, and 0 on the last row. The flags enter as 0/1
    multipliers, never as branches: the loops are branch-free and a NaN or inf anywhere in
    column j reaches ``out[0, j]`` (0 * inf = NaN), which the wrapper checks instead of scanning
    every input. Few environments: one column at a time, a scalar recursion
    (``_returns_column``); otherwise row by row, the inner loop over the contiguous N axis
    (vectorized).
    """
    T, N = rewards.shape
    if N == 1:  # reshape, not [:, 0]: Numba types the column slice as strided
        _returns_column(rewards.reshape(T), terminated.reshape(T), truncated.reshape(T), gamma,
                        bootstrap_values.reshape(T), boot_scale, out.reshape(T))
        return
    if N < 4:
        for j in range(N):
            _returns_column(rewards[:, j], terminated[:, j], truncated[:, j], gamma,
                            bootstrap_values[:, j], boot_scale, out[:, j])
        return
    r, term, boot, o = rewards[T - 1], terminated[T - 1], bootstrap_values[T - 1], out[T - 1]
    for j in range(N):  # last row: bootstrap unless terminated
        o[j] = r[j] + gamma * (1.0 - term[j]) * (boot_scale * boot[j])
    for t in range(T - 2, -1, -1):
        r, term, trunc, boot = rewards[t], terminated[t], truncated[t], bootstrap_values[t]
        o, nxt = out[t], out[t + 1]  # G_{t+1} is read back from the output: one store per element
        for j in range(N):
            cont = 1.0 - (term[j] | trunc[j])
            o[j] = r[j] + gamma * (cont * nxt[j] + (1.0 - term[j]) * (1.0 - cont) * (
                boot_scale * boot[j]))


def discounted_returns(rewards, terminated, truncated, gamma: float,
                       bootstrap_values=None) -> np.ndarray:
    """Discounted reward-to-go ``G_t = r_t + gamma * G_{t+1}``, reset at every episode end.

    ``G_t = sum_{k=t}^{e} gamma^(k-t) r_k + gamma^(e-t+1) (1 - terminated_e) b_e`` with e the
    last step of t's episode in the rollout; see the module docstring for the tail rule.

    Lecture: Stanford CS224R "Policy Gradients" "Using causality"; Stanford CS224R lectures "Estimating
    reward to go", "Monte Carlo vs. Bootstrap". Paper: Sutton & Barto (2018) sec. 3.3;
    Pardo et al. (2018) for bootstrapping at time limits.
    Unbiased: yes, for Q^pi(s_t, a_t) (the lectures' reward-to-go), when ``bootstrap_values``
    is None and every episode ends by termination inside the rollout; a bootstrapped tail is
    biased unless V = V^pi.

    Args:
        rewards: ``[T, N]`` or ``[T]`` float32/float64 (ints become float64); finite.
        terminated: bool, same shape; true terminal state, tail 0.
        truncated: bool, same shape; episode cut by a time limit, tail ``gamma * b_t``.
        gamma: discount in [0, 1].
        bootstrap_values: None, or same shape as ``rewards``: ``b_t = V(true s_{t+1})``; read
            only on truncated steps and on the last row (unless terminated there).

    Returns:
        ``returns``: same shape as ``rewards``; float64 if any float input is float64, else
        float32.

    Raises:
        TypeError: non-numeric values, non-bool flags, non-real gamma.
        ValueError: shape mismatch, not 1-D/2-D, NaN/inf, gamma outside [0, 1].
        FloatingPointError: finite inputs whose returns overflow the result dtype.
    """
    rewards = as_float(rewards, "rewards", finite=False)  # float32 or float64, C-contiguous
    dtype = rewards.dtype
    if bootstrap_values is not None:
        bootstrap_values = as_float(bootstrap_values, "bootstrap_values", finite=False)
        if bootstrap_values.dtype != dtype:  # float64 if either is (result_dtype's rule, ~2 us
            dtype = np.dtype(np.float64)     # cheaper spelled out here)
            rewards = rewards.astype(dtype, copy=False)
            bootstrap_values = bootstrap_values.astype(dtype, copy=False)
    terminated = as_bool(terminated, "terminated")
    truncated = as_bool(truncated, "truncated")
    same_shape("rewards", rewards, terminated=terminated, truncated=truncated)
    if bootstrap_values is not None:
        same_shape("rewards", rewards, bootstrap_values=bootstrap_values)
    gamma = unit_interval(gamma, "gamma")
    r2 = time_major(rewards, "rewards")  # [T, N] view
    out = np.empty(r2.shape, dtype=dtype)
    if out.size == 0:
        return out.reshape(rewards.shape)
    # Without bootstrap values the kernel reads `rewards` in their place and scales them by 0:
    # same cache lines, no extra memory traffic, no branch in the inner loop.
    b2 = r2 if bootstrap_values is None else time_major(bootstrap_values, "bootstrap_values")
    _discounted_returns_kernel(r2, time_major(terminated, "terminated"),
                               time_major(truncated, "truncated"), gamma, b2,
                               0.0 if bootstrap_values is None else 1.0, out)
    if not np.isfinite(out[0]).all():  # a NaN/inf input anywhere reaches row 0 (see kernel)
        as_float(rewards, "rewards")
        if bootstrap_values is not None:
            as_float(bootstrap_values, "bootstrap_values")
        advice = ("rescale the rewards" if dtype == np.float64
                  else "use float64 inputs or rescale the rewards")
        raise FloatingPointError(f"discounted returns overflowed {dtype}; {advice}")
    return out.reshape(rewards.shape)
