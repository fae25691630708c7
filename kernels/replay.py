"""Replay-buffer index sampling: uniform over a ring buffer, and prioritized (sum tree).

**Uniform sampling from a ring buffer.** A buffer of ``capacity`` slots is written in order,
slot ``pos`` next, wrapping around; it holds ``size`` transitions. Slot ``pos`` is never
sampled: before the buffer is full it is empty, and once it is full it holds the oldest
transition, which is the one about to be overwritten. So the sampleable data are the
``usable = min(size, capacity - 1)`` slots written most recently, oldest first::

    oldest = (pos - usable) mod capacity
    slot of age-rank o (o = 0 oldest .. usable - 1 newest) = (oldest + o) mod capacity

A start index ``i`` is valid for ``n_step`` iff its whole window ``i, i+1, ..., i+n_step-1
(mod capacity)`` lies in the data, in time order, i.e. never steps from the newest transition
onto slot ``pos`` (the seam between newest and oldest). With ``o`` the age-rank of ``i``::

    valid(i)  <=>  0 <= o <= usable - n_step          (there are usable - n_step + 1 of them)

Example, capacity 8, full (size 8), pos 3, n_step 2 (``N`` newest, ``O`` oldest usable, ``W``
slot being written, ``x`` a start whose window would cross ``W``)::

    slot :  0  1  2  3  4  5  6  7
    data :  .  .  N  W  O  .  .  .      usable = 7, oldest = 4
    start:  v  v  x  x  v  v  v  v      valid: 4 5 6 7 0 1 (o = 0..5); 2 is the newest (its
                                         window 2, 3 crosses W); 3 is W itself

Indices are drawn uniformly over the valid starts, with replacement: ``o ~ U{0 .. usable -
n_step}`` (as ``floor(u * n_valid)``, ``u ~ U[0, 1)``) and ``i = (oldest + o) mod capacity``.
``capacity=None`` means a flat buffer of ``size`` transitions in slots ``0 .. size-1`` (no
wrap-around, nothing being written).

**Prioritized replay** (Schaul et al., 2016, "Prioritized Experience Replay", ICLR) samples
transition ``i`` with probability and corrects the bias with importance weights::

    P(i) = p_i / sum_k p_k                     (p_i = priority, typically (|delta_i| + eps)^alpha)
    w_i  = (size * P(i))^(-beta) / max_j w_j

``SumTree`` stores the ``p_i`` at the leaves of a binary tree whose internal nodes hold the sum
of their children, so ``total = sum_k p_k`` is the root, an update is O(log capacity), and the
leaf with ``prefix_{i-1} <= u < prefix_i`` (``prefix_i = p_0 + ... + p_i``) is found by one
descent. Sampling is stratified: the total is split into ``batch_size`` equal segments and one
``u`` is drawn uniformly in each, ``u_j = (j + U_j) * total / batch_size``.

Unbiased: uniform sampling yes (each valid start has probability 1/(usable - n_step + 1)).
Prioritized sampling is biased towards high priority by design; the weights with ``beta = 1``
undo it exactly (before the max normalization, which only rescales the step size).

Lecture: Stanford CS224R lectures, "Off-Policy Actor-Critic Methods, Version 2:
Replay buffers" (sample a batch from the buffer), Q-learning "N-step returns" (the N-step target
needs transitions t .. t+N-1 of one stream) and "Practical Implementation Details: Replay
Buffers". Prioritized replay is not in the lectures; the paper above is the spec.
"""
from __future__ import annotations

import math
import numbers

import numba
import numpy as np

from kernels._validate import as_float, as_generator, positive_int


# ----------------------------------------------------------------------------- uniform
def _ring_layout(size, capacity, pos, n_step):
    """Validate the buffer description; return ``(capacity, oldest, n_valid)``."""
    size = positive_int(size, "size", minimum=0)
    n_step = positive_int(n_step, "n_step")
    if capacity is None:
        if pos is not None:
            raise ValueError("pos needs capacity: without capacity the buffer is flat")
        capacity, pos = size + 1, size  # a flat buffer = a ring that never wrapped
    else:
        capacity = positive_int(capacity, "capacity")
        if size > capacity:
            raise ValueError(f"size must be <= capacity={capacity}, got {size}")
        pos = size % capacity if pos is None else positive_int(pos, "pos", minimum=0)
        if pos >= capacity:
            raise ValueError(f"pos must be in [0, capacity={capacity}), got {pos}")
    usable = min(size, capacity - 1)  # slot pos is never sampled
    n_valid = usable - n_step + 1
    if n_valid < 1:
        raise ValueError(
            f"no valid start index: {usable} sampleable transitions (size={size}, "
            f"capacity={capacity}; slot pos={pos} is excluded) but n_step={n_step}")
    oldest = (pos - usable) % capacity
    return capacity, oldest, n_valid


def valid_starts_reference(size, capacity=None, pos=None, n_step=1) -> np.ndarray:
    """Every valid start index, oldest first, checked slot by slot from the definition.

    A slot ``s`` has age ``a = (pos - 1 - s) mod capacity`` (0 = newest); it holds sampleable
    data iff ``a < min(size, capacity - 1)``; its window ``s .. s+n_step-1`` stays in the data
    and in time order iff every slot ``s + t`` is data with age ``a - t``.
    """
    if capacity is None:
        capacity, pos = size + 1, size
    elif pos is None:
        pos = size % capacity
    usable = min(size, capacity - 1)
    starts = []
    for s in range(capacity):
        a = (pos - 1 - s) % capacity
        ok = True
        for t in range(n_step):
            slot = (s + t) % capacity
            age = (pos - 1 - slot) % capacity
            if not (age < usable and age == a - t):
                ok = False
        if ok:
            starts.append((a, s))
    starts.sort(reverse=True)  # oldest (largest age) first
    return np.array([s for _, s in starts], dtype=np.int64)


def uniform_indices_reference(rng_or_seed, size, batch_size, *, capacity=None, pos=None,
                              n_step=1) -> np.ndarray:
    """``valid_starts_reference(...)[o]`` with ``o = floor(u * n_valid)``, ``u = rng.random()``."""
    rng = as_generator(rng_or_seed, "rng_or_seed")
    starts = valid_starts_reference(size, capacity, pos, n_step)
    u = rng.random(batch_size)
    return np.array([starts[min(int(v * len(starts)), len(starts) - 1)] for v in u],
                    dtype=np.int64)


@numba.njit(cache=True)
def _ring_indices_kernel(u, n_valid, oldest, capacity, out):
    """``out[b] = (oldest + floor(u[b] * n_valid)) mod capacity``; ``0 <= u < 1``."""
    for b in range(u.shape[0]):
        o = min(np.int64(u[b] * n_valid), n_valid - 1)  # min: guards rounding up to n_valid
        i = oldest + o
        out[b] = i - capacity if i >= capacity else i


def uniform_indices(rng_or_seed, size: int, batch_size: int, *, capacity: int | None = None,
                    pos: int | None = None, n_step: int = 1) -> np.ndarray:
    """Uniform start indices into a ring buffer, never touching the slot being written.

    Draws ``batch_size`` indices with replacement, uniformly over the valid starts defined in
    the module docstring: ``o = floor(u * n_valid)`` with ``u ~ U[0, 1)`` (uniform on
    ``{0 .. usable - n_step}`` within 2^-53), ``i = (oldest + o) mod capacity``,
    with ``usable = min(size, capacity - 1)`` and ``oldest = (pos - usable) mod capacity``.

    Lecture: Stanford CS224R lectures, replay buffers; N-step targets.

    Args:
        rng_or_seed: a ``numpy.random.Generator`` or an integer seed.
        size: number of transitions stored (<= capacity).
        batch_size: number of indices to draw (0 gives an empty array).
        capacity: number of slots of the ring; None for a flat buffer of ``size`` slots.
        pos: the next slot to be written; default ``size % capacity`` (filled from slot 0).
        n_step: length of the window ``i .. i+n_step-1`` that must lie in the data.

    Returns:
        int64 ``[batch_size]``.

    Raises:
        ValueError if no valid start exists (``min(size, capacity - 1) < n_step``).
    """
    rng = as_generator(rng_or_seed, "rng_or_seed")
    batch_size = positive_int(batch_size, "batch_size", minimum=0)
    capacity, oldest, n_valid = _ring_layout(size, capacity, pos, n_step)
    # floor(u * n_valid) with u ~ U[0, 1) on the 2^-53 grid: each start's probability is
    # 1/n_valid within 2^-53 (relative error <= n_valid * 2^-53), and rng.random is ~3x
    # cheaper than rng.integers for a batch of a few hundred
    u = rng.random(batch_size)
    out = np.empty(batch_size, dtype=np.int64)
    _ring_indices_kernel(u, n_valid, oldest, capacity, out)
    return out


# ----------------------------------------------------------------------------- sum tree
def prefix_sum_search_reference(priorities, u) -> np.ndarray:
    """For each target ``u_j``: the smallest ``i`` with ``p_0 + ... + p_i > u_j``.

    A plain loop over the flat priority array (the definition the tree must reproduce); zero
    priorities never satisfy the strict inequality first, so they are never returned.
    ``u_j`` must lie in ``[0, sum p)``.
    """
    p = [float(v) for v in np.asarray(priorities, dtype=np.float64)]
    out = []
    for target in np.asarray(u, dtype=np.float64).tolist():
        acc = 0.0
        found = -1
        for i, pi in enumerate(p):
            acc += pi
            if acc > target and pi > 0.0:
                found = i
                break
        if found < 0:  # rounding put u at the very end: the last positive priority
            found = max(i for i, pi in enumerate(p) if pi > 0.0)
        out.append(found)
    return np.array(out, dtype=np.int64)


@numba.njit(cache=True)
def _sum_tree_update_kernel(sums, mins, n_leaves, indices, priorities, nodes):
    """Set leaves in order (a repeated index keeps its last priority), then refresh ancestors.

    ``sums``/``mins`` are ``[2 * n_leaves]`` heaps (root at 1, children of k at 2k, 2k+1,
    leaf i at n_leaves + i). Ancestors are refreshed one level at a time for the whole batch
    (``nodes [B]`` is scratch): a parent depends only on its two children, finished at the
    level below, so the order within a level is free and the B loads per level are
    independent (the CPU overlaps their cache misses). Parents are recomputed from both
    children, never adjusted by a difference, so the sums cannot drift from the leaves.
    """
    B = indices.shape[0]
    for b in range(B):
        p = priorities[b]
        node = n_leaves + indices[b]
        sums[node] = p
        mins[node] = p if p > 0.0 else np.inf  # zero = never sampled: not part of the min
        nodes[b] = node
    level = n_leaves
    while level > 1:
        for b in range(B):
            node = nodes[b] // 2
            left = 2 * node
            sums[node] = sums[left] + sums[left + 1]
            mins[node] = min(mins[left], mins[left + 1])
            nodes[b] = node
        level //= 2


@numba.njit(cache=True, inline="always")
def _descend(sums, n_leaves, out_idx, out_prio):
    """Descend from the root for each target ``out_prio[b]`` in ``[0, total)``, in place.

    Go left if ``u < sum(left)``, else subtract it and go right. If rounding points into a
    subtree of sum 0 (possible only at a boundary), the other child is taken, so a leaf of
    priority 0 is never returned. All B descents advance one level at a time (``out_idx``
    holds the current node, ``out_prio`` the remaining target), so the loads of one level are
    independent and their cache misses overlap. The last three levels are replaced by a scan
    of the node's 8 leaves, which share one cache line (three misses become one). Directions
    are computed as arithmetic selects, not branches (measured 2x faster: a random target's
    path is unpredictable). On return: leaf indices and priorities.
    """
    B = out_idx.shape[0]
    group = min(8, n_leaves)  # leaves scanned at the bottom
    for b in range(B):
        out_idx[b] = 1
    level = n_leaves
    while level > group:
        for b in range(B):
            left = 2 * out_idx[b]
            target = out_prio[b]
            s_left = sums[left]
            # a select, not a branch: the direction is a coin flip the CPU cannot predict
            go_right = (target >= s_left) & (sums[left + 1] > 0.0)
            out_idx[b] = left + go_right
            out_prio[b] = target - s_left * go_right  # sums are finite: the wrapper checks
        level //= 2
    for b in range(B):
        leaf = out_idx[b] * group  # heap index of the node's first leaf
        target = out_prio[b]
        for _ in range(group - 1):  # without a branch, as above; once it stops it stays
            step = target >= sums[leaf]
            target -= sums[leaf] * step
            leaf += step
        while sums[leaf] <= 0.0:  # rounding ran past the last positive leaf of the node
            leaf -= 1
        out_prio[b] = sums[leaf]
        out_idx[b] = leaf - n_leaves


@numba.njit(cache=True)
def _sum_tree_find_kernel(sums, n_leaves, u, out_idx, out_prio):
    """Leaves for the prefix-sum targets ``u [B]`` (each in ``[0, total)``)."""
    for b in range(u.shape[0]):
        out_prio[b] = u[b]
    _descend(sums, n_leaves, out_idx, out_prio)


@numba.njit(cache=True)
def _sum_tree_sample_kernel(sums, n_leaves, uniforms, out_idx, out_prio):
    """Stratified targets ``u_b = (b + U_b) * total / B`` from ``uniforms [B]``, then descend."""
    B = uniforms.shape[0]
    total = sums[1]
    below_total = np.nextafter(total, 0.0)  # (B-1 + U) * total / B can round up to total
    for b in range(B):
        out_prio[b] = min((b + uniforms[b]) * (total / B), below_total)
    _descend(sums, n_leaves, out_idx, out_prio)


class SumTree:
    """Binary sum tree over ``capacity`` non-negative priorities, for prioritized replay.

    Storage: two heap-ordered float64 arrays of ``2 * n_leaves`` entries, ``n_leaves`` the
    smallest power of two >= capacity (leaves beyond ``capacity`` stay 0): ``sums`` (a node is
    the sum of its children; the root ``sums[1]`` is ``total``) and ``mins`` (the minimum over
    positive priorities; +inf where there are none). The tree operations are the Numba
    kernels ``_sum_tree_update_kernel`` and ``_sum_tree_find_kernel``.

    Paper: Schaul et al. (2016), "Prioritized Experience Replay", appendix B.2.1 (sum tree,
    stratified sampling over ``batch_size`` equal segments).

    Shapes: ``update(indices [B], priorities [B] or scalar)``; ``sample(B, rng)`` ->
    ``(indices [B] int64, priorities [B] float64)``.
    """

    def __init__(self, capacity: int):
        self.capacity = positive_int(capacity, "capacity")
        self.n_leaves = 1 << (self.capacity - 1).bit_length()
        self._sums = np.zeros(2 * self.n_leaves, dtype=np.float64)
        self._mins = np.full(2 * self.n_leaves, np.inf, dtype=np.float64)

    def __len__(self) -> int:
        return self.capacity

    def __repr__(self) -> str:
        return f"SumTree(capacity={self.capacity}, total={self.total!r})"

    @property
    def total(self) -> float:
        """``sum_i p_i`` (the root)."""
        return float(self._sums[1])

    @property
    def min(self) -> float:
        """The smallest *positive* priority; ``inf`` when no priority is positive.

        Slots never written and slots set to 0 are excluded: they can never be sampled, so
        they must not set the importance-weight normalizer ``max_j w_j = (size * p_min /
        total)^(-beta)``.
        """
        return float(self._mins[1])

    @property
    def priorities(self) -> np.ndarray:
        """A copy of the ``capacity`` leaf priorities."""
        return self._sums[self.n_leaves:self.n_leaves + self.capacity].copy()

    def update(self, indices, priorities) -> None:
        """Set ``p[indices[b]] = priorities[b]`` for b = 0..B-1, in order.

        A repeated index keeps the *last* priority given for it (writes are applied in
        order). ``priorities`` must be finite and >= 0 (0 = never sampled); a scalar is
        broadcast to every index.
        """
        idx = np.asarray(indices)
        if idx.dtype.kind not in "iu":
            raise TypeError(f"indices must be an integer array, got dtype {idx.dtype}")
        prio = as_float(priorities, "priorities", dtype=np.float64)
        if prio.ndim == 0:
            prio = np.full(idx.shape, float(prio))
        elif prio.shape != idx.shape:
            raise ValueError(f"priorities must have the shape of indices {idx.shape} "
                             f"or be a scalar, got {prio.shape}")
        idx = np.ascontiguousarray(idx.reshape(-1), dtype=np.int64)
        prio = np.ascontiguousarray(prio.reshape(-1))
        if idx.size and (idx.min() < 0 or idx.max() >= self.capacity):
            raise ValueError(f"indices must be in [0, capacity={self.capacity})")
        if prio.size and prio.min() < 0.0:
            raise ValueError("priorities must be >= 0")
        _sum_tree_update_kernel(self._sums, self._mins, self.n_leaves, idx, prio,
                                np.empty_like(idx))

    def find(self, u) -> tuple[np.ndarray, np.ndarray]:
        """Leaves for prefix-sum targets: the smallest ``i`` with ``p_0 + .. + p_i > u``.

        ``u`` in ``[0, total)``; returns ``(indices int64, priorities float64)`` of its shape.
        """
        target = as_float(u, "u", dtype=np.float64)
        total = self.total
        if target.size and not (0.0 < total < math.inf):
            raise ValueError(f"the tree's total priority is {total}: nothing to find (0) "
                             "or the sum overflowed (inf)")
        if target.size and (target.min() < 0.0 or target.max() >= total):
            raise ValueError(f"u must be in [0, total={total})")
        flat = np.ascontiguousarray(target.reshape(-1))
        out_idx = np.empty(flat.shape, dtype=np.int64)
        out_prio = np.empty(flat.shape, dtype=np.float64)
        _sum_tree_find_kernel(self._sums, self.n_leaves, flat, out_idx, out_prio)
        return out_idx.reshape(target.shape), out_prio.reshape(target.shape)

    def sample(self, batch_size: int, rng) -> tuple[np.ndarray, np.ndarray]:
        """Stratified prioritized draw: ``u_j = (j + U_j) * total / batch_size``, U_j ~ U[0, 1).

        ``P(i) = p_i / total`` per draw (each segment is sampled exactly once, which lowers
        the variance of a batch against i.i.d. draws). The uniforms come from ``rng`` (a
        Generator or a seed) here; the descent is deterministic.

        Returns ``(indices [batch_size] int64, priorities [batch_size] float64)``.
        """
        gen = as_generator(rng, "rng")
        batch_size = positive_int(batch_size, "batch_size", minimum=0)
        total = self._sums[1]
        if batch_size and not (0.0 < total < math.inf):
            raise ValueError(f"the tree's total priority is {total}: nothing to sample "
                             "(0) or the sum overflowed (inf)")
        uniforms = gen.random(batch_size)  # the only randomness; the kernel is deterministic
        out_idx = np.empty(batch_size, dtype=np.int64)
        out_prio = np.empty(batch_size, dtype=np.float64)
        _sum_tree_sample_kernel(self._sums, self.n_leaves, uniforms, out_idx, out_prio)
        return out_idx, out_prio


# ----------------------------------------------------------------------------- PER weights
def _real(x, name: str) -> float:
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(x).__name__}")
    return float(x)


def per_weights_reference(priorities, total, size, beta, *, min_priority) -> np.ndarray:
    """``w_i = (size * p_i / total)^(-beta) / max_w`` straight from the definition (float64)."""
    p = np.asarray(priorities, dtype=np.float64)
    w = (size * p / total) ** (-beta)
    w_max = (size * min_priority / total) ** (-beta) if min_priority is not None else w.max()
    return w / w_max


def per_weights(priorities, total: float, size: int, beta: float, *,
                min_priority: float | None) -> np.ndarray:
    """Importance-sampling weights of prioritized replay, normalized so the largest is 1.

    ``w_i = (size * P(i))^(-beta) / max_j w_j``, ``P(i) = p_i / total`` (Schaul et al. 2016,
    eq. 1 and section 3.4), computed in log space,
    ``log w_i = -beta * (log size + log p_i - log total)``, so tiny probabilities with large
    ``size`` neither underflow nor overflow before the normalization. After normalization
    ``size`` and ``total`` cancel: ``w_i = (p_i / p_ref)^(-beta)``.

    Normalization (keyword required, so the choice is visible at the call site):

    * ``min_priority=tree.min`` - the paper's: ``max_j`` over the *whole buffer*, reached at
      the smallest priority, ``p_ref = min_priority``. Weights are comparable across batches.
    * ``min_priority=None`` - ``max_j`` over the *batch* (``p_ref`` = the batch's smallest
      priority), a common shortcut; the scale then changes from batch to batch.

    Unbiased: with ``beta = 1`` the weighted update is unbiased for the uniform one up to the
    constant normalizer; ``beta < 1`` (annealed to 1) trades bias for variance.

    Args:
        priorities: ``[B]`` priorities of the sampled transitions, finite and > 0.
        total: the tree's total priority, > 0.
        size: number of transitions in the buffer, >= 1.
        beta: exponent in [0, inf); 0 gives all ones.
        min_priority: the buffer's smallest positive priority (> 0, <= every sampled
            priority), or None for batch normalization.

    Returns:
        float64 ``[B]`` in (0, 1].
    """
    p = as_float(priorities, "priorities", dtype=np.float64)
    total = _real(total, "total")
    size = positive_int(size, "size")
    beta = _real(beta, "beta")
    if not (math.isfinite(total) and total > 0.0):
        raise ValueError(f"total must be finite and > 0, got {total}")
    if not (math.isfinite(beta) and beta >= 0.0):
        raise ValueError(f"beta must be finite and >= 0, got {beta}")
    if p.size and p.min() <= 0.0:
        raise ValueError("priorities must be > 0 (a transition of priority 0 is never sampled)")
    if min_priority is not None:
        min_priority = _real(min_priority, "min_priority")
        if not (math.isfinite(min_priority) and min_priority > 0.0):
            raise ValueError(f"min_priority must be finite and > 0, got {min_priority}")
        if p.size and p.min() < min_priority:
            raise ValueError(f"min_priority={min_priority} is larger than a sampled priority "
                             f"({p.min()}); pass the buffer's minimum (SumTree.min)")
    if p.size == 0:
        return np.zeros(p.shape, dtype=np.float64)
    log_w = -beta * (math.log(size) + np.log(p) - math.log(total))
    ref = min_priority if min_priority is not None else float(p.min())
    log_w_max = -beta * (math.log(size) + math.log(ref) - math.log(total))
    return np.exp(log_w - log_w_max)


__all__ = ["uniform_indices", "uniform_indices_reference", "valid_starts_reference",
           "SumTree", "prefix_sum_search_reference", "per_weights", "per_weights_reference"]
