"""minirl micro-benchmarks: ``python3 tasks.py bench`` (or ``python -m benchmarks``).

Threads are pinned here, before NumPy or Numba are imported anywhere in the process, so that
every figure is a single-threaded one and ratios compare like with like.
"""
import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
             "NUMEXPR_NUM_THREADS", "NUMBA_NUM_THREADS", "VECLIB_MAXIMUM_THREADS"):
    os.environ.setdefault(_var, "1")
