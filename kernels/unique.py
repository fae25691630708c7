"""Distinct-value checks and argmax along an axis.

``at_most_k_unique`` answers, for every slice of an array along one axis, whether the slice holds
at most ``k`` distinct values::

    out[idx] = ( |{ values[idx with axis position i] : i = 0..n-1 }| <= k )

i.e. ``len(np.unique(slice)) <= k`` for every slice (``k = 2``: "is this feature binary?").

Lecture: shared/lectures/000_372fbf7095d3a5aa.txt, worked example at the end ("at most two
unique values along an axis": first element, mismatch mask, argmax, take_along_axis, then the
generalization to any axis); shared/lectures/001_140c9f6ea3140175.txt, the slow
``np.apply_along_axis`` + ``np.unique`` check and its vectorized replacement. The lecture's
snippets reduce with ``np.all`` over the whole array and ignore ``n``; here the reduction is per
slice and the idea is generalized to any ``k`` by peeling off one distinct value per round:

    covered_0 = all False
    round r = 1..k:  c_r = first element of the slice not yet covered (any element if none)
                     covered_r = covered_{r-1} | (slice == c_r)
    at most k distinct  <=>  covered_k is all True

Three implementations, which must agree on every input:

* ``at_most_k_unique_reference`` - ``np.apply_along_axis`` + ``np.unique`` (the definition; slow).
* ``at_most_k_unique_numpy`` - the vectorized rounds above, O(k * size) memory traffic.
* ``at_most_k_unique`` - the Numba kernels. Slices along the last axis (contiguous) keep the
  <= k values seen so far and stop as soon as a (k+1)-th distinct value appears (early exit):
  the first 8 elements are scanned one by one, then blocks of 64 are checked without branches
  (count matches against each seen value; the block is clean iff the count equals its length,
  since seen values are distinct), and only a block with a new value is scanned again. When
  ``axis`` is not the last axis, a chunk of neighbouring slices is walked in lockstep along
  contiguous rows (first 8 rows through a small transposed tile, then branch-free checks of
  each row against every slice's k slots), so no transposed copy of the array is made. Short
  slices (n <= 12) skip all that: all n(n-1)/2 pairs are compared branch-free, 256 slices at
  a time. Measured worst cases, ratios and targets: benchmarks/bench_unique.py.

Float policy (identical to ``np.unique`` in NumPy >= 1.24, whose ``equal_nan=True`` default
collapses NaNs): ``-0.0`` and ``0.0`` are the same value; every NaN (any payload, any sign) is one
and the same value, distinct from all numbers; ``inf`` and ``-inf`` are ordinary values. Slices of
length 0 hold 0 distinct values, so they are True.

``argmax_first`` returns the first index of the maximum (equal to ``np.argmax``);
``argmax_random_tiebreak`` picks uniformly among all indices attaining the maximum, for greedy
action selection ``a = argmax_a Q(s, a)`` without a bias towards low action indices
(Lecture: 001_140c9f6ea3140175.txt, Q-learning, epsilon-greedy / greedy policy). Both reject NaN
(there is no maximum of a set containing NaN under IEEE comparison), with ``ValueError``.

Shapes: ``values`` is ``[..., n, ...]`` with the reduced axis of length ``n``; every result has
the shape of ``values`` with that axis removed.
"""
from __future__ import annotations

import numba
import numpy as np

from kernels._validate import as_generator, normalize_axis, positive_int



# ----------------------------------------------------------------------------- validation
def _as_values(values, name: str = "values", allow_nan: bool = True) -> np.ndarray:
    """``values`` as a C-contiguous bool/int/float32/float64 array with at least one axis."""
    arr = np.asarray(values)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a bool, integer or float array, got dtype {arr.dtype}")
    if arr.ndim == 0:
        raise ValueError(f"{name} must have at least one axis, got a 0-d array")
    if arr.dtype.kind == "f" and arr.dtype not in (np.float32, np.float64):
        # float16 widens to float32 exactly; longdouble is not supported by Numba
        arr = arr.astype(np.float32 if arr.dtype.itemsize < 4 else np.float64)
    if not allow_nan and arr.dtype.kind == "f" and np.isnan(arr).any():
        raise ValueError(f"{name} contains NaN; the maximum is undefined")
    return np.ascontiguousarray(arr)


def _three_axes(arr: np.ndarray, axis: int) -> np.ndarray:
    """View a C-contiguous array as ``[L, n, M]``: before, along and after ``axis``."""
    lead = int(np.prod(arr.shape[:axis], dtype=np.int64))
    trail = int(np.prod(arr.shape[axis + 1:], dtype=np.int64))
    return arr.reshape(lead, arr.shape[axis], trail)


def _out_shape(arr: np.ndarray, axis: int) -> tuple:
    return arr.shape[:axis] + arr.shape[axis + 1:]


# ----------------------------------------------------------------------------- at_most_k_unique
def at_most_k_unique_reference(values, k: int = 2, axis: int = -1) -> np.ndarray:
    """``len(np.unique(slice)) <= k`` for every slice along ``axis`` (the definition; slow).

    Lecture: 001_140c9f6ea3140175.txt, the ``np.apply_along_axis`` + ``np.unique`` form.
    Shapes: ``values [..., n, ...]`` -> ``bool [...]`` (``axis`` removed).
    """
    arr = _as_values(values)
    k = positive_int(k, "k")
    axis = normalize_axis(axis, arr.ndim)
    out_shape = _out_shape(arr, axis)
    if int(np.prod(out_shape, dtype=np.int64)) == 0:  # apply_along_axis cannot iterate over 0
        return np.zeros(out_shape, dtype=bool)
    if arr.shape[axis] == 0:
        return np.ones(out_shape, dtype=bool)
    return np.apply_along_axis(lambda s: len(np.unique(s)) <= k, axis, arr).astype(bool)


def _same_numpy(x: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Elementwise "same value" for the float policy: ``==`` plus NaN equals NaN."""
    eq = x == c
    if x.dtype.kind == "f":
        eq |= np.isnan(x) & np.isnan(c)
    return eq


def at_most_k_unique_numpy(values, k: int = 2, axis: int = -1) -> np.ndarray:
    """Vectorized form: k rounds of (first uncovered element, mismatch mask, argmax).

    Lecture: 000_372fbf7095d3a5aa.txt, worked example (argmax of a mismatch mask +
    ``take_along_axis``), generalized to any ``k`` and any axis; see the module docstring.
    Shapes: ``values [..., n, ...]`` -> ``bool [...]`` (``axis`` removed).
    """
    arr = _as_values(values)
    k = positive_int(k, "k")
    axis = normalize_axis(axis, arr.ndim)
    x = np.moveaxis(arr, axis, -1)  # a view; slices along the last axis
    if x.shape[-1] == 0:
        return np.ones(x.shape[:-1], dtype=bool)
    covered = np.zeros(x.shape, dtype=bool)
    for _ in range(k):
        # argmax of "not covered yet" = first new value; 0 if none (then c is already covered)
        idx = np.argmax(~covered, axis=-1)
        c = np.take_along_axis(x, idx[..., None], axis=-1)
        covered |= _same_numpy(x, c)
    return covered.all(axis=-1)


@numba.njit(cache=True)
def _same(a, b):
    """Same value under the float policy (NaN is NaN, -0.0 is 0.0); exact for ints/bools."""
    return (a == b) | ((a != a) & (b != b))


@numba.njit(cache=True, inline="always")
def _scan_block(blk, k, seen, m):
    """Add the new values of ``blk`` to ``seen[:m]``; return the new ``m``, or -1 at k + 1.

    Count, without branches, how many elements equal one of the ``m`` seen values (they are
    distinct, so each element matches at most one). A full count means no new value;
    otherwise scan to the first new value, add it and count the rest of the block again.
    Short remainders are only scanned (setting up a counted loop would cost more). The
    "new value" branch is taken at most k + 1 times per slice, so it is well predicted.
    """
    short = 16
    nb = blk.shape[0]
    i = 0
    while i < nb:
        sub = blk[i:]  # a 0-based view: loops over range(len) vectorize, range(i, nb) did not
        ns = sub.shape[0]
        if ns >= short:
            hits = 0
            for j in range(m):
                s = seen[j]
                if s != s:  # a NaN seen value: count NaNs (x == NaN is always False)
                    for e in range(ns):
                        hits += sub[e] != sub[e]
                else:
                    for e in range(ns):
                        hits += sub[e] == s
            if hits == ns:
                return m
        e = 0
        found = True
        while e < ns:
            v = sub[e]
            found = False
            for j in range(m):
                found |= _same(v, seen[j])
            if not found:
                break
            e += 1
        if found:
            return m
        if m == k:
            return -1
        seen[m] = sub[e]
        m += 1
        i += e + 1
    return m


@numba.njit(cache=True, inline="always")
def _at_most_k_unique_columns(x, l, c0, w, k, dup, count, out):
    """Short slices ``x[l, :, c0:c0+w]`` of ``x [L, n, M]``: count distinct values over all pairs.

    ``count = 1 + #{e >= 1 : x[l, e] differs from every x[l, q], q < e}``, n(n-1)/2
    comparisons per slice, each loop running across the w slices on a contiguous row and
    without a branch. For n <= 12 this beats a per-slice early exit (whose one mispredicted
    branch costs more than the slice); the w slices stop together once all have k + 1
    values. ``out [w]`` receives ``count <= k``.
    """
    n = x.shape[1]
    for c in range(w):
        count[c] = 1
    for e in range(1, n):
        x_e = x[l, e, c0:c0 + w]
        for c in range(w):
            dup[c] = False
        for q in range(e):
            x_q = x[l, q, c0:c0 + w]
            for c in range(w):
                dup[c] |= _same(x_e[c], x_q[c])
        n_over = 0
        for c in range(w):
            count[c] += 1 - np.int64(dup[c])
            n_over += count[c] > k
        if n_over == w:  # every slice already has k + 1 values: the other rows cannot help
            break
    for c in range(w):
        out[c] = count[c] <= k


@numba.njit(cache=True)
def _at_most_k_unique_rows_kernel(x, k, out):
    """Contiguous slices: ``x [R, n]`` -> ``out [R]``; ``n >= 1``.

    The logic of ``_scan_block`` written out inline over whole rows (measured ~2x faster than
    calling it per block): the first ``head`` elements are scanned one by one (rows with
    k + 1 values early stop there), then blocks of 64 are counted branch-free, and a block
    with a miss is scanned to its first new value, after which counting resumes.
    """
    R, n = x.shape
    chunk = 256
    if n <= 12:  # short rows: transpose 256 of them into a tile, compare all pairs
        tile = np.empty((1, n, chunk), dtype=x.dtype)
        dup = np.empty(chunk, dtype=np.bool_)
        count = np.empty(chunk, dtype=np.int64)
        for r0 in range(0, R, chunk):
            w = min(chunk, R - r0)
            for c in range(w):
                row = x[r0 + c]
                for e in range(n):
                    tile[0, e, c] = row[e]
            _at_most_k_unique_columns(tile, 0, 0, w, k, dup, count, out[r0:r0 + w])
        return
    block = 64  # elements counted branch-free between two "any new value?" tests
    short = 16  # below this, a scalar scan beats setting up a counted loop
    head = 8
    seen = np.empty(k, dtype=x.dtype)  # the distinct values met so far in the current row
    for r in range(R):
        row = x[r]
        seen[0] = row[0]
        m = 1
        ok = True
        i = 1
        while i < n:
            stop = min(i + block, n)
            if i >= head and stop - i >= short:
                # a 0-based view: loops over range(len) vectorize, range(i, stop) did not
                blk = row[i:stop]
                hits = 0
                for j in range(m):
                    s = seen[j]
                    if s != s:  # a NaN seen value: count NaNs (x == NaN is always False)
                        for e in range(blk.shape[0]):
                            hits += blk[e] != blk[e]
                    else:
                        for e in range(blk.shape[0]):
                            hits += blk[e] == s
                if hits == stop - i:
                    i = stop
                    continue
            else:
                stop = min(max(head, i + 1), n)
            # scan for the first new value; the branch is taken at most k + 1 times per row
            e = i
            found = True
            while e < stop:
                v = row[e]
                found = False
                for j in range(m):
                    found |= _same(v, seen[j])
                if not found:
                    break
                e += 1
            if found:
                i = stop
                continue
            if m == k:
                ok = False
                break
            seen[m] = row[e]
            m += 1
            i = e + 1
        out[r] = ok


@numba.njit(cache=True)
def _at_most_k_unique_lockstep_kernel(x, k, out, tile):
    """Strided slices: ``x [L, n, M]`` -> ``out [L, M]``, slices ``x[l, :, c]``; ``n >= 1``.

    Works on a chunk of ``w`` neighbouring slices at a time, reading rows ``x[l, e, c0:c0+w]``
    (contiguous), every inner loop running across the chunk without a branch: the first 8
    rows are peeled for each slice's distinct values, then every further row is checked
    against them. Only a slice that meets a new value later is re-read, through
    ``tile [w, rows]`` (scratch preallocated by the wrapper), and scanned with
    ``_scan_block``. A chunk stops early once every slice in it has k + 1 values.
    """
    L, n, M = x.shape
    chunk, rows = tile.shape
    if n <= 12:  # short slices: compare all pairs, rows of the slab are already contiguous
        wide = 256
        dup = np.empty(wide, dtype=np.bool_)
        count = np.empty(wide, dtype=np.int64)
        for l in range(L):
            for c0 in range(0, M, wide):
                w = min(wide, M - c0)
                _at_most_k_unique_columns(x, l, c0, w, k, dup, count, out[l, c0:c0 + w])
        return
    seen = np.empty((chunk, k), dtype=x.dtype)  # per slice: its distinct values so far
    seen_t = np.empty((k, chunk), dtype=x.dtype)  # the same, slot-major; spare slots = slot 0
    cand = np.empty(chunk, dtype=x.dtype)
    m = np.empty(chunk, dtype=np.int64)  # distinct values so far; -1 once a slice has k + 1
    hit = np.empty(chunk, dtype=np.int32)
    found = np.empty(chunk, dtype=np.int32)
    missed = np.empty(chunk, dtype=np.int64)
    for l in range(L):
        for c0 in range(0, M, chunk):
            w = min(chunk, M - c0)
            # 1. rows 0..7, peeled: round j finds each slice's first value not among its j
            #    known ones (walking backwards with a select, so the last write is the first
            #    such row); k rounds fill the slots, round k + 1 retires slices with k + 1
            #    values. Early-exit slices end here; the others usually have all their values.
            head = min(8, n)
            first = x[l, 0, c0:c0 + w]
            for c in range(w):
                seen_t[0, c] = first[c]
                m[c] = 1
            for j in range(1, k + 1):
                for c in range(w):
                    found[c] = 0
                    cand[c] = first[c]
                for e in range(head - 1, 0, -1):
                    row = x[l, e, c0:c0 + w]
                    for c in range(w):
                        hit[c] = _same(row[c], first[c])
                    for q in range(1, j):
                        slot = seen_t[q]
                        for c in range(w):
                            hit[c] |= _same(row[c], slot[c])
                    for c in range(w):
                        new = hit[c] == 0
                        cand[c] = row[c] if new else cand[c]
                        found[c] |= new
                if j < k:
                    for c in range(w):
                        seen_t[j, c] = cand[c] if found[c] else first[c]
                        m[c] += found[c]
                else:
                    for c in range(w):
                        m[c] = -1 if found[c] else m[c]
            n_alive = 0
            for c in range(w):
                n_alive += m[c] > 0
                for j in range(k):
                    seen[c, j] = seen_t[j, c]
            # 2. the remaining rows in lockstep, branch-free across the chunk: does each
            #    element equal one of its slice's k slots? Only a slice that missed in a
            #    block is re-scanned (through the tile) and gets its new value.
            i = head
            while i < n and n_alive > 0:
                stop = min(i + rows, n)
                for c in range(w):
                    missed[c] = 0
                for e in range(i, stop):
                    row = x[l, e, c0:c0 + w]
                    s0 = seen_t[0]
                    if k <= 2:  # the common "binary?" check: one fused loop, no hit array
                        s1 = seen_t[k - 1]
                        for c in range(w):
                            missed[c] += 1 - np.int64(_same(row[c], s0[c])
                                                      | _same(row[c], s1[c]))
                        continue
                    for c in range(w):
                        hit[c] = _same(row[c], s0[c])
                    for j in range(1, k):
                        slot = seen_t[j]
                        for c in range(w):
                            hit[c] |= _same(row[c], slot[c])
                    for c in range(w):
                        missed[c] += hit[c] == 0
                for c in range(w):
                    if missed[c] == 0 or m[c] < 0:
                        continue
                    for e in range(i, stop):
                        tile[c, e - i] = x[l, e, c0 + c]
                    m[c] = _scan_block(tile[c, :stop - i], k, seen[c], m[c])
                    if m[c] < 0:
                        n_alive -= 1
                    for j in range(k):
                        seen_t[j, c] = seen[c, j] if j < m[c] else seen[c, 0]
                i = stop
            for c in range(w):
                out[l, c0 + c] = m[c] > 0


def at_most_k_unique(values, k: int = 2, axis: int = -1) -> np.ndarray:
    """True where the slice along ``axis`` has at most ``k`` distinct values.

    ``out[idx] = len(np.unique(values[idx along axis])) <= k``, with ``np.unique``'s float
    policy (``-0.0 == 0.0``; all NaNs are one value). Slices stop early once ``k + 1`` distinct
    values have been seen.

    Lecture: 000_372fbf7095d3a5aa.txt (worked example at the end) and 001_140c9f6ea3140175.txt
    ("at most 2 unique values in a dimension of an array").

    Args:
        values: bool, integer or float array ``[..., n, ...]`` (float16 is widened to float32).
        k: the largest allowed number of distinct values, an integer >= 1.
        axis: the axis the slices run along.

    Returns:
        bool array with the shape of ``values`` without ``axis``.
    """
    arr = _as_values(values)
    k = positive_int(k, "k")
    axis = normalize_axis(axis, arr.ndim)
    out_shape = _out_shape(arr, axis)
    x = _three_axes(arr, axis)
    L, n, M = x.shape
    out = np.ones((L, M), dtype=bool)
    if out.size == 0 or n == 0:
        return out.reshape(out_shape)
    if M == 1:
        _at_most_k_unique_rows_kernel(x.reshape(L, n), k, out.reshape(L))
    else:
        # scratch for the kernel's transposed tiles: 64 slices x 64 rows (32 KiB of float64)
        tile = np.empty((256, 64), dtype=x.dtype)
        _at_most_k_unique_lockstep_kernel(x, k, out, tile)
    return out.reshape(out_shape)


# ----------------------------------------------------------------------------- argmax
def argmax_first_reference(values, axis: int = -1) -> np.ndarray:
    """First index attaining the maximum of each slice, by a plain loop (the definition)."""
    arr = _as_values(values, allow_nan=False)
    axis = normalize_axis(axis, arr.ndim)
    x = np.moveaxis(arr, axis, -1)
    out = np.zeros(x.shape[:-1], dtype=np.int64)
    for idx in np.ndindex(*x.shape[:-1]):
        s = x[idx]
        best = max(s.tolist())
        out[idx] = next(i for i, v in enumerate(s.tolist()) if v == best)
    return out


def argmax_random_tiebreak_reference(values, u, axis: int = -1) -> np.ndarray:
    """Uniform pick among tied maxima: ``ties[floor(u * len(ties))]`` with ``u ~ U[0, 1)``.

    ``ties`` are the indices attaining the slice's maximum, in increasing order; ``u`` has the
    output's shape and holds the caller's uniform draws.
    """
    arr = _as_values(values, allow_nan=False)
    axis = normalize_axis(axis, arr.ndim)
    x = np.moveaxis(arr, axis, -1)
    u = np.asarray(u, dtype=np.float64)
    out = np.zeros(x.shape[:-1], dtype=np.int64)
    for idx in np.ndindex(*x.shape[:-1]):
        s = x[idx].tolist()
        best = max(s)
        ties = [i for i, v in enumerate(s) if v == best]
        out[idx] = ties[min(int(u[idx] * len(ties)), len(ties) - 1)]
    return out


@numba.njit(cache=True)
def _argmax_first_kernel(x, out):
    """``x [L, n, M]`` -> ``out [L, M]``; strict ``>`` keeps the first maximum; ``n >= 1``."""
    L, n, M = x.shape
    best = np.empty(M, dtype=x.dtype)
    for l in range(L):
        for c in range(M):
            best[c] = x[l, 0, c]
            out[l, c] = 0
        for i in range(1, n):  # rows of the slab are contiguous: walk slices in lockstep
            for c in range(M):
                v = x[l, i, c]
                if v > best[c]:
                    best[c] = v
                    out[l, c] = i


@numba.njit(cache=True)
def _argmax_random_tiebreak_kernel(x, u, out):
    """``x [L, n, M]``, ``u [L, M]`` in [0, 1) -> ``out [L, M]``; ``n >= 1``.

    Pass 1 finds the maximum and the number of ties; pass 2 returns the
    ``floor(u * ties)``-th tied index.
    """
    L, n, M = x.shape
    best = np.empty(M, dtype=x.dtype)
    ties = np.empty(M, dtype=np.int64)
    for l in range(L):
        for c in range(M):
            best[c] = x[l, 0, c]
            ties[c] = 1
        for i in range(1, n):
            for c in range(M):
                v = x[l, i, c]
                if v > best[c]:
                    best[c] = v
                    ties[c] = 1
                elif v == best[c]:
                    ties[c] += 1
        for c in range(M):
            # u < 1 so pick < ties; min() guards the float product rounding up to ties
            ties[c] = min(np.int64(u[l, c] * ties[c]), ties[c] - 1)  # now: ties to skip
        for i in range(n):
            for c in range(M):
                if ties[c] >= 0 and x[l, i, c] == best[c]:
                    if ties[c] == 0:
                        out[l, c] = i
                    ties[c] -= 1


def _argmax_prepare(values, axis):
    arr = _as_values(values, allow_nan=False)
    axis = normalize_axis(axis, arr.ndim)
    out_shape = _out_shape(arr, axis)
    x = _three_axes(arr, axis)
    if x.shape[1] == 0 and x.shape[0] * x.shape[2] > 0:
        raise ValueError(f"values has length 0 along axis {axis}; the maximum is undefined")
    return x, out_shape


def argmax_first(values, axis: int = -1) -> np.ndarray:
    """First index of the maximum along ``axis`` (equals ``np.argmax`` on NaN-free input).

    ``out[idx] = min{ i : values[idx, i] = max_j values[idx, j] }``; ``-0.0`` ties with ``0.0``.

    Args:
        values: bool, integer or float array ``[..., n, ...]``; NaN raises ``ValueError``
            (``np.argmax`` would return the first NaN; we refuse to guess).
        axis: the axis to reduce; ``n = 0`` raises unless the result is empty anyway.

    Returns:
        int64 array with the shape of ``values`` without ``axis``.
    """
    x, out_shape = _argmax_prepare(values, axis)
    out = np.zeros((x.shape[0], x.shape[2]), dtype=np.int64)
    if out.size:
        _argmax_first_kernel(x, out)
    return out.reshape(out_shape)


def argmax_random_tiebreak(values, axis: int = -1, *, rng) -> np.ndarray:
    """Index of the maximum along ``axis``, uniform among all tied maxima.

    ``out[idx] ~ Uniform{ i : values[idx, i] = max_j values[idx, j] }``; the greedy action
    ``argmax_a Q(s, a)`` of Q-learning without np.argmax's bias towards the lowest index when
    Q-values tie (as they do at initialization). One uniform draw per slice is taken from
    ``rng`` in this wrapper; the kernel is deterministic given the draws.

    Lecture: 001_140c9f6ea3140175.txt, Q-learning (greedy policy, epsilon-greedy).

    Args:
        values: bool, integer or float array ``[..., n, ...]``, NaN-free.
        axis: the axis to reduce.
        rng: a ``numpy.random.Generator`` or an integer seed (required).

    Returns:
        int64 array with the shape of ``values`` without ``axis``.
    """
    gen = as_generator(rng, "rng")
    x, out_shape = _argmax_prepare(values, axis)
    out = np.zeros((x.shape[0], x.shape[2]), dtype=np.int64)
    if out.size:
        u = gen.random((x.shape[0], x.shape[2]))
        _argmax_random_tiebreak_kernel(x, u, out)
    return out.reshape(out_shape)


__all__ = [
    "at_most_k_unique", "at_most_k_unique_numpy", "at_most_k_unique_reference",
    "argmax_first", "argmax_first_reference",
    "argmax_random_tiebreak", "argmax_random_tiebreak_reference",
]
