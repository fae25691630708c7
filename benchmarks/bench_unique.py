"""``at_most_k_unique`` (k = 2, float64): np.unique per slice vs vectorized NumPy vs Numba.

Data, for each shape and axis:

* ``worst`` - exactly k = 2 distinct values (0.0 / 1.0 at random) spread through every slice,
  so no slice can stop early and every element must be compared;
* ``early`` - the same with 0, 1, 2 at the first three positions of every slice, so a
  short-circuiting check can stop each slice after three elements.

Columns: ``unique_s`` = ``np.apply_along_axis`` + ``np.unique`` (the lecture's slow form; not run
when the extrapolated time exceeds ~5 s), ``vectorized_s`` = ``at_most_k_unique_numpy`` (the
lecture's mask/argmax/take_along_axis rounds), ``numba_s`` = ``at_most_k_unique``,
``floor_s`` = ``_harness.memory_floor(x.nbytes)``: a copy that moves as many bytes as the kernel
must read (the array once), the definition every benchmark shares.
``lines_s`` = the max of a strided view holding one float64 per 64-byte cache line: touching
every line of the array with next to no work. When a slice fits in one line (1000x1000x8 along
the last axis) every kernel must touch every line, so ``lines_s`` bounds it from below, early
exit or not; ``x_lines`` = lines / floor shows whether "faster than the floor" is possible.
``x_vectorized`` = vectorized / numba (speed-up), ``x_floor`` = numba / floor (time ratio).
The four are timed in alternating rounds (medians) on the CPU-time clock
(``time.thread_time``): the machine is shared, and the wall clock would also count the time
other processes hold the core, so each ratio sees the same background load and none of the
time slices lost to it. ``numba_wall_s`` is the Numba form's median wall time (3 repeats,
for reference; not used in any ratio).
Targets: worst data - ``x_vectorized >= 2`` and ``x_floor <= 2.5``; early data -
``x_floor < 1`` (faster than streaming the array once).

    python -m benchmarks --only unique [--quick]
"""
from __future__ import annotations

import time

import numpy as np

from benchmarks._harness import Table, emit, interleaved, median_time, memory_floor
from kernels.unique import at_most_k_unique, at_most_k_unique_numpy, at_most_k_unique_reference

SHAPES = ((64, 64, 256), (1000, 1000, 8), (8, 8, 100_000))
BUDGET_S = 5.0  # do not run the np.unique form when its extrapolated time exceeds this


def _data(shape, axis, kind, rng):
    x = (rng.random(shape) < 0.5).astype(np.float64)
    if kind == "early":
        x = np.moveaxis(x, axis, -1)  # a view: write the first three positions of each slice
        x[..., :3] = (0.0, 1.0, 2.0)
        x = np.moveaxis(x, -1, axis)
    return np.ascontiguousarray(x)


def _unique_estimate(x, axis, k):
    """Seconds for the np.unique form, extrapolated from 16 slices."""
    sub = np.moveaxis(x, axis, -1).reshape(-1, x.shape[axis])[:16]
    t0 = time.perf_counter()
    at_most_k_unique_reference(sub, k, -1)
    per_slice = (time.perf_counter() - t0) / sub.shape[0]
    return per_slice * (x.size // x.shape[axis])


def main(quick: bool = False) -> None:
    repeats = 3 if quick else 7
    min_time = 0.02 if quick else 0.1
    shapes = SHAPES[:1] if quick else SHAPES
    k = 2
    rng = np.random.default_rng(0)
    table = Table("at_most_k_unique, k=2, float64, CPU time; x_vectorized = vectorized/numba, "
                  "x_floor = numba/copy")
    for shape in shapes:
        for axis in (-1, 0):
            for kind in ("worst", "early"):
                x = _data(shape, axis, kind, rng)
                expected = at_most_k_unique_numpy(x, k, axis)
                assert (at_most_k_unique(x, k, axis) == expected).all()
                est = _unique_estimate(x, axis, k)
                t_unique = (median_time(lambda: at_most_k_unique_reference(x, k, axis),
                                        repeats=1 if est > 0.5 else repeats, min_time=0.0)
                            if est <= BUDGET_S else float("nan"))
                flat = x.reshape(-1)  # float64: 8 per 64-byte line
                t, _ = interleaved({"vec": lambda: at_most_k_unique_numpy(x, k, axis),
                                    "nb": lambda: at_most_k_unique(x, k, axis),
                                    "floor": memory_floor(x.nbytes),
                                    "lines": lambda: flat[::8].max()}, repeats, min_time,
                                   clock=time.thread_time)
                t_vec, t_nb, t_floor = t["vec"], t["nb"], t["floor"]
                t_wall = median_time(lambda: at_most_k_unique(x, k, axis), repeats=3,
                                     min_time=min_time)
                x_vec, x_floor = t_vec / t_nb, t_nb / t_floor
                if kind == "worst":
                    met = x_vec >= 2.0 and x_floor <= 2.5
                else:
                    met = x_floor < 1.0
                table.add(shape="x".join(map(str, shape)), axis=axis, data=kind,
                          unique_s=t_unique, vectorized_s=t_vec, numba_s=t_nb, floor_s=t_floor,
                          numba_wall_s=t_wall, lines_s=t["lines"],
                          x_vectorized=x_vec, x_floor=x_floor, x_lines=t["lines"] / t_floor,
                          target="met" if met else "MISSED",
                          note="" if est <= BUDGET_S else f"np.unique skipped (~{est:.0f} s)")
    emit(table, "unique_quick" if quick else "unique", quick)


if __name__ == "__main__":
    main()
