"""Distinct-value checks and argmax along an axis.

``at_most_k_unique`` answers, for every slice of an array along one axis, whether the slice holds
at most ``k`` distinct values::

    out[idx] = ( |{ values[idx with axis position i] : i = 0..n-1 }| <= k )

i.e. ``len(np.unique(slice)) <= k`` for every slice (``k = 2``: "is this feature binary?").

Lecture: Stanford CS224R "Policy Gradients", worked example at the end ("at most two
unique values along an axis": first element, mismatch mask, argmax, take_along_axis, then the
generalization to any axis); Stanford CS224R lectures, the slow
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
* ``at_most_k_unique`` - the Numba kernels, which stop a slice as soon as a (k+1)-th distinct
  value appears (early exit). ``k <= 2`` (the "binary?" check) has branch-free fast paths with
  plain ``!=`` against the slice's two values, valid while neither is NaN; a NaN value hands the
  slice (or chunk) to an exact path with the float policy below, as does ``k > 2``.
  Along the last axis (contiguous): ``a`` = first element, ``b`` = first one that differs,
  then misses are counted in constant-length blocks (packed compares, one test per block).
  Along any other axis: a chunk of up to 2048 neighbouring slices is walked in lockstep down
  contiguous rows with per-slice state arrays (no transposed copy); four rows at a time are
  checked against each slice's values, blocks that meet a new value are replayed with
  selects, and the chunk stops once every slice has k + 1 values (rows in order, so
  early-exit data reads rows 0-3 only). Short rows along the last axis (n <= 12) are
  transposed, 128 at a time, into a tile that goes through the same lockstep passes (all
  n(n-1)/2 pairs compared instead for ``k > 2``).
  Ratios against NumPy and the memory floor, and the targets: benchmarks/bench_unique.py.

Float policy (identical to ``np.unique`` in NumPy >= 1.24, whose ``equal_nan=True`` default
collapses NaNs): ``-0.0`` and ``0.0`` are the same value; every NaN (any payload, any sign) is one
and the same value, distinct from all numbers; ``inf`` and ``-inf`` are ordinary values. Slices of
length 0 hold 0 distinct values, so they are True.

``argmax_first`` returns the first index of the maximum (equal to ``np.argmax``);
``argmax_random_tiebreak`` picks uniformly among all indices attaining the maximum, for greedy
action selection ``a = argmax_a Q(s, a)`` without a bias towards low action indices
(Lecture: Stanford CS224R lectures, Q-learning, epsilon-greedy / greedy policy). Both reject NaN
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

    Lecture: Stanford CS224R lectures, the ``np.apply_along_axis`` + ``np.unique`` form.
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

    Lecture: Stanford CS224R "Policy Gradients", worked example (argmax of a mismatch mask +
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
def _row_k2(row, k):
    """One contiguous slice, ``k <= 2``: 1 if it has at most k distinct values, 0 if not, -1 if
    a NaN is among its first two distinct values (the caller then uses ``_row_any_k``).

    ``a = row[0]``, ``b`` = the first element that differs (a short scalar scan); with neither
    NaN, an element that is neither ``a`` nor ``b`` under plain ``!=`` is a third distinct value
    (a NaN too), so the rest is one branch-free count per ``block`` elements: a loop of
    constant length that LLVM unrolls into packed compares against ``a``, ``b`` held in
    registers, with no remainder loop (the last block overlaps checked elements instead;
    re-checking them is harmless). The test between blocks is the early exit.
    """
    n = row.shape[0]
    block = 64
    a = row[0]
    i = 1
    while i < n and row[i] == a:
        i += 1
    if i == n:
        return 1
    b = row[i]
    if (a != a) | (b != b):
        return -1
    if k == 1:
        return 0
    i += 1
    if n >= block:
        # a short first probe: early-exit rows (a third value near the start) stop here
        # instead of after a full block (measured on 64x64x256: 0.43x instead of 0.67x the
        # memory floor on early-exit data; no change on worst-case data)
        blk = row[min(i, n - 8):][:8]
        miss = 0
        for e in range(8):
            miss += (blk[e] != a) & (blk[e] != b)
        if miss:
            return 0
    if n < block:  # too short for a full block: one counted loop of the rest
        rest = row[i:]
        miss = 0
        for e in range(rest.shape[0]):
            miss += (rest[e] != a) & (rest[e] != b)
        return np.int64(miss == 0)
    while i < n:
        blk = row[min(i, n - block):][:block]
        miss = 0
        for e in range(block):
            miss += (blk[e] != a) & (blk[e] != b)
        if miss:
            return 0
        i += block
    return 1


@numba.njit(cache=True, inline="always")
def _row_any_k(row, k, seen):
    """One contiguous slice, any ``k``, exact float policy: at most k distinct values?

    ``seen [k]`` is scratch for the distinct values met so far. The first ``head`` elements
    are scanned one by one (rows with k + 1 values early stop there), then blocks of 64 are
    counted branch-free, and a block with a miss is scanned to its first new value, after
    which counting resumes.
    """
    n = row.shape[0]
    block = 64  # elements counted branch-free between two "any new value?" tests
    short = 16  # below this, a scalar scan beats setting up a counted loop
    head = 8
    seen[0] = row[0]
    m = 1
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
            return False
        seen[m] = row[e]
        m += 1
        i = e + 1
    return True


@numba.njit(cache=True, inline="always")
def _add2(v, a, b, mc):
    """One more element ``v`` of a slice whose distinct values so far are ``a``, ``b`` (``b = a``
    while ``mc = 1``), ``mc`` of them: returns the new ``(b, mc)``.

    Plain ``!=``, exact while neither ``a`` nor ``b`` is NaN (callers check); selects instead of
    branches, so a loop of these across slices compiles to packed compares and blends.
    """
    new = (v != a) & (v != b)
    return (v if new & (mc == 1) else b), mc + new


@numba.njit(cache=True, inline="always")
def _k2_start(r0, r1, r2, r3, a, b, m, k):
    """Rows 0-3 of a chunk in one pass: slot ``a`` from row 0, then three ``_add2`` steps.

    Returns ``(slices still <= k, slices with a NaN slot)``. Fusing the start into one loop
    matters for early-exit data, where these rows are all that is read; four rows (not three)
    so that n = 8 is the start plus one block of four, with no repeated tail rows.
    """
    n_alive = 0
    n_nan = 0
    for c in range(r0.shape[0]):
        ac = r0[c]
        bc, mc = _add2(r1[c], ac, ac, 1)
        bc, mc = _add2(r2[c], ac, bc, mc)
        bc, mc = _add2(r3[c], ac, bc, mc)
        a[c] = ac
        b[c] = bc
        m[c] = mc
        n_alive += mc <= k
        n_nan += (ac != ac) | (bc != bc)
    return n_alive, n_nan


@numba.njit(cache=True, inline="always")
def _k2_check4(r0, r1, r2, r3, a, b):
    """How many slices meet a value other than their ``a``, ``b`` in four rows (no update).

    The worst-case inner loop: per slice two loads of state shared by four rows (a row at a
    time would reload them per row: measured 1.8x vs 1.3x the memory floor), two packed
    compares per element, one count per slice; no branch.
    """
    n_miss = 0
    for c in range(r0.shape[0]):
        ac = a[c]
        bc = b[c]
        v0 = r0[c]
        v1 = r1[c]
        v2 = r2[c]
        v3 = r3[c]
        n_miss += ((((v0 != ac) & (v0 != bc)) | ((v1 != ac) & (v1 != bc)))
                   | (((v2 != ac) & (v2 != bc)) | ((v3 != ac) & (v3 != bc))))
    return n_miss


@numba.njit(cache=True, inline="always")
def _k2_update4(r0, r1, r2, r3, a, b, m, k):
    """Four rows of ``_add2`` steps, state held in registers across the rows.

    Returns ``(slices still <= k, of those the ones that gained a value, slices with a NaN
    slot)``.
    """
    n_alive = 0
    n_new = 0
    n_nan = 0
    for c in range(r0.shape[0]):
        ac = a[c]
        m0 = m[c]
        bc, mc = _add2(r0[c], ac, b[c], m0)
        bc, mc = _add2(r1[c], ac, bc, mc)
        bc, mc = _add2(r2[c], ac, bc, mc)
        bc, mc = _add2(r3[c], ac, bc, mc)
        b[c] = bc
        m[c] = mc
        alive = mc <= k
        n_alive += alive
        n_new += alive & (mc != m0)
        n_nan += bc != bc
    return n_alive, n_new, n_nan


@numba.njit(cache=True, inline="always")
def _lockstep_k2(x, l, c0, k, a, b, m):
    """Slices ``x[l, :, c0:c0+w]`` (``w = len(m)``), ``k <= 2``: ``m`` = distinct values so far.

    Returns False if a slot became NaN (plain ``!=`` is then wrong): the caller redoes the
    chunk with ``_lockstep_exact``. Rows go in blocks of four (``_k2_check4``); a block that
    meets a new value in a live slice is replayed with updates (``_k2_update4``), and after
    such a block the next one is updated directly (misses cluster in the first rows). Short
    tails repeat the last row, which cannot change a distinct count. Rows are visited in order
    and the chunk stops once every slice has k + 1 values, so early-exit data reads rows 0-3.
    """
    n = x.shape[1]
    last = n - 1
    c1 = c0 + m.shape[0]
    n_alive, n_nan = _k2_start(x[l, 0, c0:c1], x[l, min(1, last), c0:c1],
                               x[l, min(2, last), c0:c1], x[l, min(3, last), c0:c1], a, b, m, k)
    missed = True
    e = 4
    while e < n and n_alive > 0 and n_nan == 0:
        r0 = x[l, e, c0:c1]
        r1 = x[l, min(e + 1, last), c0:c1]
        r2 = x[l, min(e + 2, last), c0:c1]
        r3 = x[l, min(e + 3, last), c0:c1]
        e += 4
        if not missed and _k2_check4(r0, r1, r2, r3, a, b) == 0:
            continue
        n_alive, n_new, n_nan = _k2_update4(r0, r1, r2, r3, a, b, m, k)
        missed = n_new > 0
    return n_nan == 0


@numba.njit(cache=True, inline="always")
def _lockstep_exact(x, l, c0, k, slots, m, hit):
    """Any ``k``, exact float policy: one row at a time, branch-free across slices.

    ``slots [k, w]`` holds each slice's distinct values, unused slots padded with slot 0 (a
    repeated slot cannot make a miss a hit), so a new value goes to slot ``m`` by a select.
    While no slot is NaN, plain ``==`` is exact (a NaN element is then a new value) and is
    used instead of ``_same``; rows without a new value in a live slice skip the update.
    """
    n = x.shape[1]
    w = m.shape[0]
    first = x[l, 0, c0:c0 + w]
    n_nan = 0
    for c in range(w):
        n_nan += first[c] != first[c]
    for j in range(k):
        sj = slots[j]
        for c in range(w):
            sj[c] = first[c]
    for c in range(w):
        m[c] = 1
    n_alive = w
    s0 = slots[0]
    for e in range(1, n):
        if n_alive == 0:
            break
        row = x[l, e, c0:c0 + w]
        if n_nan == 0:
            for c in range(w):
                hit[c] = row[c] == s0[c]
            for j in range(1, k):
                sj = slots[j]
                for c in range(w):
                    hit[c] |= row[c] == sj[c]
        else:
            for c in range(w):
                hit[c] = _same(row[c], s0[c])
            for j in range(1, k):
                sj = slots[j]
                for c in range(w):
                    hit[c] |= _same(row[c], sj[c])
        n_new = 0
        for c in range(w):
            n_new += (not hit[c]) & (m[c] <= k)
        if n_new == 0:
            continue
        for j in range(1, k):
            sj = slots[j]
            for c in range(w):
                sj[c] = row[c] if (not hit[c]) & (m[c] == j) else sj[c]
        n_alive = 0
        for c in range(w):
            new = not hit[c]
            mc = m[c] + new
            m[c] = mc
            n_alive += mc <= k
            n_nan += new & (row[c] != row[c])


@numba.njit(cache=True, inline="always")
def _all_pairs(x, l, c0, k, count, dup):
    """Short slices ``x[l, :, c0:c0+w]`` (``w = len(count)``): ``count`` = distinct values.

    ``count = 1 + #{e >= 1 : x[l, e] differs from every x[l, q], q < e}`` (``_same``), all
    n(n-1)/2 pairs, each loop running across the w slices without a branch; the slices stop
    together once all have k + 1 values. Used for short rows with ``k > 2``, where
    ``_lockstep_exact`` updates its slots on nearly every row (measured on 1000x1000x8, k = 3:
    5.8x against 10.6x the memory floor).
    """
    n = x.shape[1]
    w = count.shape[0]
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


@numba.njit(cache=True)
def _at_most_k_unique_rows_kernel(x, k, out):
    """Contiguous slices: ``x [R, n]`` -> ``out [R]``; ``1 <= k < n``.

    ``k <= 2``: ``_row_k2``; other ``k`` and rows whose first two values include a NaN:
    ``_row_any_k``. Short rows (n <= 12) are transposed in tiles and go through the
    lockstep kernel's ``_lockstep_k2`` (``_lockstep_exact`` after a NaN) or, for ``k > 2``,
    ``_all_pairs`` instead.
    """
    R, n = x.shape
    if n <= 12:
        # short rows: a per-row scan costs more in bookkeeping and mispredicted branches than
        # the row itself, so transpose 256 rows into a tile [n, 256] (one scalar copy) and run
        # the lockstep kernel's branch-free passes across them (measured on 1000x1000x8:
        # 2.45x the memory floor, against 5.7x for comparing all n(n-1)/2 pairs in the tile,
        # and 1.6x for the transpose alone; tiles of 64-128 rows best, 512 1.2x slower)
        chunk = 128
        tile = np.empty((1, n, chunk), dtype=x.dtype)
        a = np.empty(chunk, dtype=x.dtype)
        b = np.empty(chunk, dtype=x.dtype)
        m = np.empty(chunk, dtype=np.int64)
        slots = np.empty((k, chunk), dtype=x.dtype)
        hit = np.empty(chunk, dtype=np.bool_)
        for r0 in range(0, R, chunk):
            w = min(chunk, R - r0)
            for c in range(w):  # row by row: contiguous loads (column by column: 1.2x slower)
                row = x[r0 + c]
                for e in range(n):
                    tile[0, e, c] = row[e]
            if k > 2:
                _all_pairs(tile, 0, 0, k, m[:w], hit[:w])
            elif not _lockstep_k2(tile, 0, 0, k, a[:w], b[:w], m[:w]):
                _lockstep_exact(tile, 0, 0, k, slots[:, :w], m[:w], hit[:w])
            for c in range(w):
                out[r0 + c] = m[c] <= k
        return
    seen = np.empty(k, dtype=x.dtype)
    for r in range(R):
        v = _row_k2(x[r], k) if k <= 2 else -1
        out[r] = _row_any_k(x[r], k, seen) if v < 0 else v == 1


@numba.njit(cache=True)
def _at_most_k_unique_lockstep_kernel(x, k, out):
    """Strided slices: ``x [L, n, M]`` -> ``out [L, M]``, slices ``x[l, :, c]``; ``1 <= k < n``.

    No transposed copy: a chunk of ``w <= 2048`` neighbouring slices is walked down the rows
    ``x[l, e, c0:c0+w]`` (contiguous), with per-slice state arrays, every inner loop running
    across the chunk without a branch. ``k <= 2`` (the "binary?" check) takes the fast path
    ``_lockstep_k2``; other ``k``, and chunks where a NaN became a slot, ``_lockstep_exact``.
    Chunk width measured (64x64x256, 1000x1000x8, 8x8x100000 along axis 0): 2048-4096 best,
    512 up to 1.2x slower (more chunk starts), whole rows up to 1.4x slower (state spills L1).
    """
    L, n, M = x.shape
    # 2048 slices, fewer for a large k so that ``slots [k, chunk]`` stays within ~8 MB
    chunk = min(M, 2048, max(1, (1 << 20) // k))
    a = np.empty(chunk, dtype=x.dtype)
    b = np.empty(chunk, dtype=x.dtype)
    m = np.empty(chunk, dtype=np.int64)  # distinct values so far in each slice of the chunk
    slots = np.empty((k, chunk), dtype=x.dtype)
    hit = np.empty(chunk, dtype=np.bool_)
    for l in range(L):
        for c0 in range(0, M, chunk):
            w = min(chunk, M - c0)
            if not (k <= 2 and _lockstep_k2(x, l, c0, k, a[:w], b[:w], m[:w])):
                _lockstep_exact(x, l, c0, k, slots[:, :w], m[:w], hit[:w])
            for c in range(w):
                out[l, c0 + c] = m[c] <= k


def at_most_k_unique(values, k: int = 2, axis: int = -1) -> np.ndarray:
    """True where the slice along ``axis`` has at most ``k`` distinct values.

    ``out[idx] = len(np.unique(values[idx along axis])) <= k``, with ``np.unique``'s float
    policy (``-0.0 == 0.0``; all NaNs are one value). Slices stop early once ``k + 1`` distinct
    values have been seen.

    Lecture: Stanford CS224R "Policy Gradients" (worked example at the end) and Stanford CS224R lectures
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
    if out.size == 0 or k >= n:  # n values cannot hold more than n distinct ones
        return out.reshape(out_shape)
    if M == 1:
        _at_most_k_unique_rows_kernel(x.reshape(L, n), k, out.reshape(L))
    else:
        _at_most_k_unique_lockstep_kernel(x, k, out)
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


def greedy_with_ties_reference(q):
    """``(first argmax per row [B] int64, number of rows whose maximum is attained more than
    once)`` of a finite ``q [B, A]``, by a plain loop (the definition)."""
    q = np.asarray(q)
    out = np.zeros(q.shape[0], dtype=np.int64)
    tied = 0
    for b, row in enumerate(q.tolist()):
        best = max(row)
        hits = [i for i, v in enumerate(row) if v == best]
        out[b] = hits[0]
        tied += len(hits) > 1
    return out, tied


@numba.njit(cache=True)
def _greedy_with_ties_kernel(q, out):
    """``q [B, A]`` -> ``out [B]`` first argmax; returns the number of rows with tied maxima,
    or -1 if an entry is NaN or +-inf (checked before anything is counted)."""
    B, A = q.shape
    for b in range(B):
        for a in range(A):
            if not np.isfinite(q[b, a]):
                return -1
    tied = 0
    for b in range(B):
        k = 0
        hits = 1
        for a in range(1, A):
            v = q[b, a]
            if v > q[b, k]:
                k = a
                hits = 1
            elif v == q[b, k]:
                hits += 1
        out[b] = k
        tied += hits > 1
    return tied


def greedy_with_ties(q) -> tuple[np.ndarray, int]:
    """The greedy actions of ``q [B, A]`` and whether any row ties, in one pass.

    Returns ``(argmax_first(q, axis=1), number of rows whose maximum is attained more than
    once)``: epsilon-greedy's greedy branch, which needs the random tie-break
    (:func:`argmax_random_tiebreak`) only when the count is positive. ``-0.0`` ties with 0.0.

    Raises ValueError if ``q`` is not a 2-D float array with A >= 1, or contains NaN or inf
    (named ``q``).
    """
    q = np.asarray(q)
    if q.dtype.kind != "f" or q.ndim != 2 or q.shape[1] < 1:
        raise ValueError(f"q must be a float array of shape [B, A] with A >= 1, got "
                         f"{q.dtype}{q.shape}")
    out = np.empty(q.shape[0], dtype=np.int64)
    tied = _greedy_with_ties_kernel(np.ascontiguousarray(q), out)
    if tied < 0:
        raise ValueError("q contains NaN or inf")
    return out, int(tied)


def argmax_random_tiebreak(values, axis: int = -1, *, rng) -> np.ndarray:
    """Index of the maximum along ``axis``, uniform among all tied maxima.

    ``out[idx] ~ Uniform{ i : values[idx, i] = max_j values[idx, j] }``; the greedy action
    ``argmax_a Q(s, a)`` of Q-learning without np.argmax's bias towards the lowest index when
    Q-values tie (as they do at initialization). One uniform draw per slice is taken from
    ``rng`` in this wrapper; the kernel is deterministic given the draws.

    Lecture: Stanford CS224R lectures, Q-learning (greedy policy, epsilon-greedy).

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
    "greedy_with_ties", "greedy_with_ties_reference",
]
