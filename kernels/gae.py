"""Generalized advantage estimation (GAE) over a time-major rollout.

Equations (per environment column, t = 0 .. T-1, done_t = terminated_t | truncated_t)::

    delta_t = r_t + gamma * (1 - terminated_t) * next_values_t - values_t
    A_t     = delta_t + gamma * lam * (1 - done_t) * A_{t+1}        (A_T = 0: the recursion
                                                                     also stops at the last row)
    returns_t = A_t + values_t                                       (the critic's lambda-return)

Written from the definition (GAE paper, eq. 16), with e the last step of t's episode inside the
rollout (the first k >= t with done_k, else T-1)::

    A_t = sum_{k=t}^{e} (gamma * lam)^(k-t) * delta_k

``next_values[t]`` is V of the true next state: at a truncated step, of the final observation
before the reset, so a time limit still bootstraps (``terminated`` zeroes it, ``truncated`` only
stops the sum). The lecture's form, a lambda-weighted average of the n-step advantages
``A^(n)_t = sum_{k<n} gamma^k r_{t+k} + gamma^n V(s_{t+n}) - V(s_t)`` with weights
``(1 - lam) lam^(n-1)``, is the same number whenever ``next_values[t] == values[t+1]`` inside an
episode (the tests check it). Special cases: lam = 1 gives the discounted return bootstrapped
from ``next_values`` minus ``values`` (Monte Carlo advantage); lam = 0 gives the TD residual.

Lecture: Stanford CS224R lectures, "Trick #3: Generalized advantage estimation" and the PPO
pseudocode step 3 ("Evaluate A_GAE"); Stanford CS234 "Lecture 6: Policy Gradient II", n-step advantage estimators
(blend of TD and MC, bias/variance).
Paper: Schulman, Moritz, Levine, Jordan & Abbeel (2016), "High-Dimensional Continuous Control
Using Generalized Advantage Estimation", eqs. 11-16.
"""
from __future__ import annotations

import numba
import numpy as np

from kernels._validate import as_bool, as_float, same_shape, time_major, unit_interval


def gae_reference(rewards, values, next_values, terminated, truncated, gamma, lam):
    """Slow reference: ``A_t = sum_{k=t}^{e} (gamma*lam)^(k-t) delta_k`` (O(T^2), float64).

    Returns ``(advantages, returns)``. No validation beyond ``np.asarray``; for tests only.
    Like :func:`gae`, finite inputs whose advantages or returns (advantages + values) lie
    beyond the result dtype (float32 if every float input is float32, else float64) raise
    FloatingPointError naming which.
    """
    dtype = _result_dtype(rewards, values, next_values)
    r = np.asarray(rewards, dtype=np.float64)
    one_d = r.ndim == 1
    r = r[:, None] if one_d else r
    v = np.asarray(values, dtype=np.float64).reshape(r.shape)
    nv = np.asarray(next_values, dtype=np.float64).reshape(r.shape)
    term = np.asarray(terminated, dtype=bool).reshape(r.shape)
    trunc = np.asarray(truncated, dtype=bool).reshape(r.shape)
    T, N = r.shape
    delta = np.zeros((T, N))
    for j in range(N):
        for t in range(T):
            bootstrap = 0.0 if term[t, j] else gamma * nv[t, j]
            delta[t, j] = r[t, j] + bootstrap - v[t, j]
    adv = np.zeros((T, N))
    for j in range(N):
        for t in range(T):
            e = t  # last step of t's episode inside the rollout
            while e < T - 1 and not (term[e, j] or trunc[e, j]):
                e += 1
            adv[t, j] = sum((gamma * lam) ** (k - t) * delta[k, j] for k in range(t, e + 1))
    with np.errstate(over="ignore", invalid="ignore"):
        ret = adv + v
    inputs_finite = all(np.isfinite(x).all() for x in (r, v, nv))
    big = np.finfo(dtype).max
    for name, out in (("advantages", adv), ("returns (advantages + values)", ret)):
        if inputs_finite and not (np.abs(out) <= big).all():
            raise FloatingPointError(f"{name} overflowed {dtype}; {_advice(dtype)}")
    return (adv[:, 0], ret[:, 0]) if one_d else (adv, ret)


def _result_dtype(*arrays) -> np.dtype:
    """float32 if every array is float32, else float64 (the wrapper's rule)."""
    f32 = all(np.asarray(a).dtype == np.float32 for a in arrays)
    return np.dtype(np.float32 if f32 else np.float64)


def _advice(dtype) -> str:
    return ("rescale the rewards and values" if dtype == np.float64
            else "use float64 inputs or rescale the rewards and values")


@numba.njit(cache=True)
def _gae_column(rewards, values, next_values, terminated, truncated, gamma, gl, adv, ret):
    """One environment's column ``[T]``: the recursion as a scalar loop, backwards in t.

    Its speed limit is the carried multiply and add (about 6 cycles a step): the rest of the
    step is off the dependency chain. Called on 1-D views, so that the single-environment case
    indexes a contiguous array (2-D ``[t, j]`` indexing measured 1.8x slower at T = 10^6).
    """
    a = 0.0  # A_{t+1}; 0 past the rollout's last row
    for t in range(rewards.shape[0] - 1, -1, -1):
        term = terminated[t]
        delta = rewards[t] + gamma * (1.0 - term) * next_values[t] - values[t]
        a = delta + (gl * (1.0 - (term | truncated[t]))) * a
        adv[t] = a
        ret[t] = a + values[t]


@numba.njit(cache=True)
def _gae_kernel(rewards, values, next_values, terminated, truncated, gamma, lam, adv, ret):
    """A_t = r_t + gamma*(1-term_t)*nv_t - v_t + gamma*lam*(1-done_t)*A_{t+1}, backwards in t.

    The flags enter as 0/1 multipliers, never as branches: the loops are branch-free and a NaN
    or inf anywhere in column j reaches ``adv[0, j]`` (0 * inf = NaN), which the wrapper checks
    instead of scanning every input. Few environments: one column at a time, a tight scalar
    loop (``_gae_column``; a 4-way unrolled form with a shorter carried multiply-add, and
    independent chains over blocks with a bit-exact fix-up, both measured no faster: memory
    traffic, not the chain, then sets the pace). Many environments: row by row with the inner
    loop over the contiguous N axis, each inner loop storing to one array only (that is what
    lets LLVM vectorize it).
    """
    T, N = rewards.shape
    gl = gamma * lam
    if N == 1:  # reshape, not [:, 0]: Numba types the column slice as strided
        _gae_column(rewards.reshape(T), values.reshape(T), next_values.reshape(T),
                    terminated.reshape(T), truncated.reshape(T), gamma, gl, adv.reshape(T),
                    ret.reshape(T))
        return
    if N < 4:
        for j in range(N):
            _gae_column(rewards[:, j], values[:, j], next_values[:, j], terminated[:, j],
                        truncated[:, j], gamma, gl, adv[:, j], ret[:, j])
        return
    r, v, nv = rewards[T - 1], values[T - 1], next_values[T - 1]
    term, a = terminated[T - 1], adv[T - 1]
    for j in range(N):  # the recursion stops at the rollout's last row: A = delta
        a[j] = r[j] + gamma * (1.0 - term[j]) * nv[j] - v[j]
    for t in range(T - 2, -1, -1):
        r, v, nv, term, trunc = rewards[t], values[t], next_values[t], terminated[t], truncated[t]
        a, nxt = adv[t], adv[t + 1]  # A_{t+1} is read back from the output
        for j in range(N):
            keep = gl * (1.0 - (term[j] | trunc[j]))
            a[j] = r[j] + gamma * (1.0 - term[j]) * nv[j] - v[j] + keep * nxt[j]
    for t in range(T):  # a separate pass: loops that store to two arrays do not vectorize
        a, v, rt = adv[t], values[t], ret[t]
        for j in range(N):
            rt[j] = a[j] + v[j]


def gae(rewards, values, next_values, terminated, truncated, gamma: float,
        lam: float) -> tuple[np.ndarray, np.ndarray]:
    """Generalized advantage estimates and lambda-returns: ``(advantages, returns)``.

    ``delta_t = r_t + gamma*(1-terminated_t)*next_values_t - values_t``,
    ``A_t = delta_t + gamma*lam*(1-done_t)*A_{t+1}`` (done = terminated | truncated; the sum also
    stops at the last row), ``returns = advantages + values``.

    Lecture: Stanford CS224R lectures "Trick #3: Generalized advantage estimation" (PPO).
    Paper: Schulman et al. (2016), "High-Dimensional Continuous Control Using GAE", eq. 16.
    Unbiased: for A^pi only when lam = 1 (then bias only from bootstrapping at truncation and
    the rollout end), or for any lam when V = V^pi exactly; lam < 1 trades bias for variance.

    Args:
        rewards: ``[T, N]`` or ``[T]`` float32/float64 (ints become float64); finite.
        values: same shape; ``values[t] = V(s_t)``.
        next_values: same shape; ``next_values[t] = V(true s_{t+1})`` (before any reset).
        terminated: bool, same shape; true terminal state: no bootstrap, recursion stops.
        truncated: bool, same shape; time limit: bootstrap kept, recursion stops.
        gamma: discount in [0, 1].
        lam: GAE lambda in [0, 1].

    Returns:
        ``(advantages, returns)``, each the shape of ``rewards``; float64 if any float input is
        float64, else float32.

    Raises:
        TypeError: non-numeric values, non-bool flags, non-real gamma/lam.
        ValueError: shape mismatch, not 1-D/2-D, NaN/inf, gamma or lam outside [0, 1].
        FloatingPointError: finite inputs whose advantages, or returns (advantages + values),
            overflow the result dtype (never a silent inf or NaN).
    """
    rewards = as_float(rewards, "rewards", finite=False)
    values = as_float(values, "values", finite=False)
    next_values = as_float(next_values, "next_values", finite=False)
    dtype = rewards.dtype  # each is float32 or float64 and C-contiguous now
    if not rewards.dtype == values.dtype == next_values.dtype:  # float64 if any is (result_dtype's
        dtype = np.dtype(np.float64)                            # rule, ~2 us cheaper here)
        rewards = rewards.astype(dtype, copy=False)
        values = values.astype(dtype, copy=False)
        next_values = next_values.astype(dtype, copy=False)
    terminated = as_bool(terminated, "terminated")
    truncated = as_bool(truncated, "truncated")
    same_shape("rewards", rewards, values=values, next_values=next_values,
               terminated=terminated, truncated=truncated)
    gamma = unit_interval(gamma, "gamma")
    lam = unit_interval(lam, "lam")
    r2 = time_major(rewards, "rewards")  # [T, N] view
    adv = np.empty(r2.shape, dtype=dtype)
    ret = np.empty(r2.shape, dtype=dtype)
    if adv.size == 0:
        return adv.reshape(rewards.shape), ret.reshape(rewards.shape)
    _gae_kernel(r2, time_major(values, "values"), time_major(next_values, "next_values"),
                time_major(terminated, "terminated"), time_major(truncated, "truncated"),
                gamma, lam, adv, ret)
    if not np.isfinite(adv[0]).all():  # a NaN/inf input anywhere reaches row 0 (see kernel)
        as_float(rewards, "rewards")
        as_float(values, "values")
        as_float(next_values, "next_values")
        raise FloatingPointError(f"advantages overflowed {dtype}; {_advice(dtype)}")
    # returns = advantages + values can overflow with finite advantages (A = V = 2e38 in
    # float32): the sum of all returns is finite unless one is not (or, rarely, the sum
    # itself overflows: then every entry is checked) -- one cheap pass, no temporary.
    with np.errstate(over="ignore", invalid="ignore"):
        total = np.add.reduce(ret, axis=None)
    if not np.isfinite(total) and not np.isfinite(ret).all():
        raise FloatingPointError(f"returns (advantages + values) overflowed {dtype}; "
                                 f"{_advice(dtype)}")
    return adv.reshape(rewards.shape), ret.reshape(rewards.shape)
