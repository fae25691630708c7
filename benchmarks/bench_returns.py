"""Rollout kernels: discounted returns, GAE, n-step targets, importance weights (float64).

Data for each shape ``[T, N]`` (seeded): standard-normal rewards and values, ``next_values[t] =
values[t+1]`` inside episodes (what one critic produces, so every peer computes the same
numbers), 1% of steps terminated and 0.5% truncated (a few steps carry both flags).

Rows per kernel and shape (``time_s`` is the median seconds per call):

* ``minirl numba`` - the public wrapper (validation, allocation, kernel), float64; the
  ``float32`` row is the same call on float32 copies of the data;
* ``minirl reference`` - the plain-Python definition (O(T x episode length)); only at the
  smallest shape, the others would take minutes;
* ``numpy ...`` - a vectorized NumPy form, labelled with what it computes:
  ``scipy.signal.lfilter`` along axis 0 handles *no episode ends* (a lower bound on what a
  filter-based form costs; its answer differs when episodes end inside the rollout);
  the n-step and importance NumPy forms are exact;
* ``sb3`` / ``tianshou ...`` - peers from ``benchmarks/peers.py`` (absent if not installed):
  SB3's ``RolloutBuffer.compute_returns_and_advantage``, Tianshou's Numba kernels alone
  (``_gae`` / ``_nstep_return``) and Tianshou's public ``compute_episodic_return``. Discounted
  returns are compared with the peers' GAE at ``lam = 1, V = 0``, which is how they compute
  Monte Carlo returns. SB3 (a Python loop over T) and Tianshou's public path (its buffer is
  filled one step at a time) are skipped at T = 10^6;
* ``memory floor`` - ``np.copyto`` of half the bytes the kernel reads plus writes (so one copy
  streams the same number of bytes).

``time_s`` = wall-clock median (``_harness.median_time``); ``cpu_s`` = median thread CPU time
of the same call, which other processes on a shared machine do not inflate. The ratios use
``cpu_s`` (wall time for the one-shot reference rows): ``x_floor`` = cpu / floor cpu;
``x_numba`` = cpu / (minirl numba, float64) cpu, above 1 means slower than minirl.
``max_abs_diff`` compares each row's answer with minirl's (float32 peers round).

    python -m benchmarks --only returns [--quick]
"""
from __future__ import annotations

import time

import numpy as np
from scipy.signal import lfilter

from benchmarks import peers
from benchmarks._harness import Table, emit, interleaved, median_time, memory_floor
from kernels.gae import gae, gae_reference
from kernels.importance import importance_weights, importance_weights_reference
from kernels.nstep import nstep_targets, nstep_targets_reference
from kernels.returns import discounted_returns, discounted_returns_reference

SHAPES = ((2048, 8), (2048, 64), (1_000_000, 1))
GAMMA, LAM, N_STEP = 0.99, 0.95, 5
REFERENCE_MAX_SIZE = 20_000  # T*N above which the Python reference is not run (minutes)
PEER_MAX_T = 100_000  # SB3's Python loop and Tianshou's step-by-step buffer fill above this


def rollout(T: int, N: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    values = rng.standard_normal((T, N))
    terminated = rng.random((T, N)) < 0.01
    truncated = rng.random((T, N)) < 0.005
    next_values = rng.standard_normal((T, N))
    inside = ~(terminated[:-1] | truncated[:-1])
    next_values[:-1] = np.where(inside, values[1:], next_values[:-1])
    return {"rewards": rng.standard_normal((T, N)), "values": values,
            "next_values": next_values, "terminated": terminated, "truncated": truncated,
            "logp_new": -rng.random((T, N)), "logp_old": -rng.random((T, N))}


def nbytes(*arrays) -> int:
    return sum(a.nbytes for a in arrays)


# ---------------------------------------------------------------------------------------------
# vectorized NumPy forms (baselines)

def returns_lfilter(rewards, gamma):
    """G_t = r_t + gamma G_{t+1} along axis 0 with *no* episode ends (IIR filter, reversed)."""
    return lfilter([1.0], [1.0, -gamma], rewards[::-1], axis=0)[::-1]


def gae_lfilter(rewards, values, next_values, terminated, gamma, lam):
    """GAE with *no* episode ends: delta in NumPy, then one IIR filter with gamma*lam."""
    delta = rewards + gamma * ~terminated * next_values - values
    return lfilter([1.0], [1.0, -gamma * lam], delta[::-1], axis=0)[::-1]


def nstep_numpy(rewards, next_values, terminated, truncated, gamma, n):
    """Exact n-step targets in n vectorized passes over shifted rows."""
    T = rewards.shape[0]
    done = terminated | truncated
    out = np.zeros_like(rewards)
    alive = np.ones(rewards.shape, dtype=bool)
    for k in range(min(n, T)):
        end = done[k:].copy()
        end[-1] = True  # the rollout's last row
        if k == n - 1:
            end[:] = True
        a = alive[:T - k]
        tail = gamma * (end & ~terminated[k:]) * next_values[k:]
        out[:T - k] += a * gamma ** k * (rewards[k:] + tail)
        a &= ~end
    return out


def per_decision_numpy(logp_new, logp_old, terminated, truncated):
    """Per-decision log-weights: cumulative sum minus its value before each episode start."""
    T = logp_new.shape[0]
    c = np.cumsum(logp_new - logp_old, axis=0)
    start = np.zeros(logp_new.shape, dtype=bool)
    start[0] = True
    start[1:] = terminated[:-1] | truncated[:-1]
    first = np.maximum.accumulate(np.where(start, np.arange(T)[:, None], 0), axis=0)
    before = np.where(first > 0, np.take_along_axis(c, np.maximum(first - 1, 0), axis=0), 0.0)
    logw = c - before
    return np.exp(logw), logw


# ---------------------------------------------------------------------------------------------

def _diff(result, expected):
    if result is None:
        return float("nan")
    a = np.asarray(result[0] if isinstance(result, tuple) else result, dtype=np.float64)
    return float(np.max(np.abs(a.reshape(expected.shape) - expected))) if a.size else 0.0


def _measure(table, kernel, shape, impls, floor_bytes, quick):
    """impls: list of (name, callable or None, answer-getter or None, slow?, note).

    The fast candidates and the memory floor are timed in alternating rounds
    (``_harness.interleaved``), once on the wall clock and once on the thread-CPU clock, so
    every ratio sees the same background load. Slow rows (the Python reference) run once.
    """
    repeats, min_time = (3, 0.02) if quick else (7, 0.1)
    floor = "memory floor (np.copyto)"
    fast = {name: fn for name, fn, _, slow, _ in impls if fn is not None and not slow}
    fast[floor] = memory_floor(floor_bytes)
    wall, _ = interleaved(fast, repeats, min_time)
    cpu, _ = interleaved(fast, repeats, min_time, clock=time.thread_time)
    nan = float("nan")
    for name, fn, _, slow, _ in impls:
        if fn is not None and slow:
            wall[name], cpu[name] = median_time(fn, repeats=1, min_time=0.0, warmup=0), nan
    expected = np.asarray(next(a for n, _, a, _, _ in impls if n == "minirl numba")(),
                          dtype=np.float64)
    rows = [(name, answer, note or ("skipped" if fn is None else ""))
            for name, fn, answer, _, note in impls]
    rows.append((floor, None, f"{floor_bytes / 1e6:.3g} MB streamed"))
    for name, answer, note in rows:
        t, c = wall.get(name, nan), cpu.get(name, nan)
        c_or_wall = c if c == c else t  # slow rows: wall
        table.add(kernel=kernel, shape=f"{shape[0]}x{shape[1]}", impl=name, time_s=t, cpu_s=c,
                  x_floor=c_or_wall / cpu[floor], x_numba=c_or_wall / cpu["minirl numba"],
                  max_abs_diff=_diff(answer(), expected) if answer is not None and name in wall
                  else nan,
                  note=note)


def _peer_fns(maker, *args):
    """A peer adapter's callable(s) as [(label, fn)], [] if the peer is missing."""
    out = maker(*args)
    if out is None:
        return []
    if isinstance(out, dict):
        return list(out.items())
    labels = {"sb3_gae": "sb3", "tianshou_gae_kernel": "tianshou kernel",
              "tianshou_nstep": "tianshou kernel"}
    return [(labels.get(maker.__name__, maker.__name__), out)]


def _peer_impls(label_suffix, makers, args, big):
    """Peer rows; at T = 10^6 only Tianshou's kernels (the rest would take minutes)."""
    impls = []
    for maker in makers:
        if big and maker is peers.sb3_gae:
            impls.append(("sb3" + label_suffix, None, None, False,
                          "skipped at T=10^6 (Python loop over T)"))
            continue
        if big and maker is peers.tianshou_gae:
            impls.append(("tianshou public" + label_suffix, None, None, False,
                          "skipped at T=10^6 (its buffer is filled step by step)"))
            maker = peers.tianshou_gae_kernel  # building the public path would fill it
        fns = _peer_fns(maker, *args)
        if not fns:
            impls.append((maker.__name__ + label_suffix, None, None, False, "not installed"))
        for label, fn in fns:
            impls.append((label + label_suffix, fn, fn.as_minirl, False, ""))
    return impls


def bench_shape(tables, shape, quick):
    T, N = shape
    d = rollout(T, N)
    r, v, nv, te, tr = (d[k] for k in ("rewards", "values", "next_values", "terminated",
                                         "truncated"))
    f32 = {k: x.astype(np.float32) if x.dtype == np.float64 else x for k, x in d.items()}
    small = T * N <= REFERENCE_MAX_SIZE
    big = T > PEER_MAX_T
    ref_note = "" if small else "skipped: plain Python, minutes at this size"
    flag_bytes = nbytes(te, tr)

    # discounted returns, bootstrapped from next_values at truncation and the rollout end.
    # For the peers' GAE at lam = 1 and V = 0 to compute the same return, the bootstrap values
    # must be 0 inside episodes (minirl reads them only where an episode is cut).
    zeros = np.zeros_like(r)
    cut = te | tr
    cut[-1] = True
    nv = np.where(cut, nv, 0.0)
    impls = [
        ("minirl numba", lambda: discounted_returns(r, te, tr, GAMMA, nv),
         lambda: discounted_returns(r, te, tr, GAMMA, nv), False, ""),
        ("minirl numba float32",
         lambda: discounted_returns(f32["rewards"], te, tr, GAMMA, f32["next_values"]),
         lambda: discounted_returns(f32["rewards"], te, tr, GAMMA, f32["next_values"]),
         False, ""),
        ("minirl reference", (lambda: discounted_returns_reference(r, te, tr, GAMMA, nv))
         if small else None, lambda: discounted_returns_reference(r, te, tr, GAMMA, nv), True,
         ref_note),
        ("numpy lfilter (no episode ends)", lambda: returns_lfilter(r, GAMMA), None, False,
         "different answer: ignores episode ends"),
    ]
    impls += _peer_impls(" (GAE lam=1, V=0)", [peers.sb3_gae, peers.tianshou_gae],
                         (r, zeros, nv, te, tr, GAMMA, 1.0), big)
    _measure(tables["returns"], "discounted_returns", shape, impls,
             nbytes(r, nv, r) + flag_bytes, quick)

    # GAE
    nv = d["next_values"]
    impls = [
        ("minirl numba", lambda: gae(r, v, nv, te, tr, GAMMA, LAM),
         lambda: gae(r, v, nv, te, tr, GAMMA, LAM)[0], False, ""),
        ("minirl numba float32",
         lambda: gae(f32["rewards"], f32["values"], f32["next_values"], te, tr, GAMMA, LAM),
         lambda: gae(f32["rewards"], f32["values"], f32["next_values"], te, tr, GAMMA, LAM)[0],
         False, ""),
        ("minirl reference", (lambda: gae_reference(r, v, nv, te, tr, GAMMA, LAM))
         if small else None, lambda: gae_reference(r, v, nv, te, tr, GAMMA, LAM)[0], True,
         ref_note),
        ("numpy lfilter (no episode ends)", lambda: gae_lfilter(r, v, nv, te, GAMMA, LAM),
         None, False, "different answer: ignores episode ends"),
    ]
    impls += _peer_impls("", [peers.sb3_gae, peers.tianshou_gae],
                         (r, v, nv, te, tr, GAMMA, LAM), big)
    _measure(tables["gae"], "gae", shape, impls, nbytes(r, v, nv, r, r) + flag_bytes, quick)

    # n-step targets
    impls = [
        ("minirl numba", lambda: nstep_targets(r, nv, te, tr, GAMMA, N_STEP),
         lambda: nstep_targets(r, nv, te, tr, GAMMA, N_STEP), False, ""),
        ("minirl reference", (lambda: nstep_targets_reference(r, nv, te, tr, GAMMA, N_STEP))
         if small else None, lambda: nstep_targets_reference(r, nv, te, tr, GAMMA, N_STEP),
         True, ref_note),
        ("numpy (n shifted passes)", lambda: nstep_numpy(r, nv, te, tr, GAMMA, N_STEP),
         lambda: nstep_numpy(r, nv, te, tr, GAMMA, N_STEP), False, "exact"),
    ]
    fn = peers.tianshou_nstep(r, nv, te, tr, GAMMA, N_STEP)
    impls.append(("tianshou kernel", fn, fn.as_minirl if fn else None, False,
                  "" if fn else "not installed"))
    _measure(tables["nstep"], f"nstep_targets n={N_STEP}", shape, impls,
             nbytes(r, nv, r) + flag_bytes, quick)

    # importance weights, per-decision (the mode with a running product)
    lpn, lpo = d["logp_new"], d["logp_old"]
    impls = [
        ("minirl numba", lambda: importance_weights(lpn, lpo, te, tr, "per_decision"),
         lambda: importance_weights(lpn, lpo, te, tr, "per_decision")[1], False, ""),
        ("minirl reference",
         (lambda: importance_weights_reference(lpn, lpo, te, tr, "per_decision"))
         if small else None,
         lambda: importance_weights_reference(lpn, lpo, te, tr, "per_decision")[1], True,
         ref_note),
        ("numpy (cumsum, segment offsets)", lambda: per_decision_numpy(lpn, lpo, te, tr),
         lambda: per_decision_numpy(lpn, lpo, te, tr)[1], False, "exact"),
    ]
    _measure(tables["importance"], "importance_weights per_decision", shape, impls,
             nbytes(lpn, lpo, lpn, lpn) + flag_bytes, quick)


def main(quick: bool = False) -> None:
    names = ("returns", "gae", "nstep", "importance")
    tables = {k: Table(f"{k} (float64 unless noted); ratios of thread CPU time: "
                       f"x_floor = cpu/floor, x_numba = cpu/minirl numba") for k in names}
    for shape in SHAPES[:1] if quick else SHAPES:
        bench_shape(tables, shape, quick)
    for k in names:
        emit(tables[k], f"returns_{k}_quick" if quick else f"returns_{k}", quick)


if __name__ == "__main__":
    main()
