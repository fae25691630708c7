"""Input validation shared by every public kernel wrapper.

The wrappers validate and normalize (dtype, contiguity, shape); the private ``_*_kernel``
functions they call assume clean input. Every error names the offending argument.
Nothing here is jitted: validation runs once per call, in NumPy, before the kernel.
"""
from __future__ import annotations

import numbers

import numpy as np

try:   # the ufunc np.clip(a, lo, hi) calls for an array ``a``, without np.clip's ~3 us of
    from numpy._core.umath import clip as clip_ufunc   # Python dispatch (per-step callers);
except ImportError:                                     # NumPy 1.x keeps it in numpy.core
    from numpy.core.umath import clip as clip_ufunc    # noqa: F401

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_F32, _F64 = FLOAT_DTYPES     # NumPy's native float dtypes are singletons (``is`` compares)


def as_float(x, name: str, dtype=None, finite: bool = True) -> np.ndarray:
    """Return ``x`` as a C-contiguous float32/float64 array (0-d input stays 0-d).

    Integer and bool input is promoted to float64; other float widths to float64.
    ``dtype`` forces the result type. Raises ``TypeError`` for non-numeric input and
    ``ValueError`` naming ``name`` if ``finite`` and the array holds NaN or inf.
    """
    if (type(x) is np.ndarray and (x.dtype is _F32 or x.dtype is _F64)   # already clean
            and (dtype is None or x.dtype == dtype) and x.flags.c_contiguous):  # (per-step
        arr = x                  # callers): what the two asarray calls below would return
    else:
        arr = np.asarray(x)
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"{name} must be a real numeric array, got dtype {arr.dtype}")
        if dtype is None:
            dtype = arr.dtype if arr.dtype in FLOAT_DTYPES else np.dtype(np.float64)
        # np.asarray(order="C"), not np.ascontiguousarray: the latter turns a scalar into [1].
        arr = np.asarray(arr, dtype=dtype, order="C")
    if finite and arr.size and not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or inf")
    return arr


def as_bool(x, name: str) -> np.ndarray:
    """Return ``x`` as a C-contiguous bool array; flags must already be booleans."""
    arr = np.asarray(x)
    if arr.dtype != np.bool_:
        raise TypeError(f"{name} must be a bool array, got dtype {arr.dtype}")
    return np.asarray(arr, order="C")


def result_dtype(*arrays: np.ndarray) -> np.dtype:
    """float64 if any float input is float64, else float32 (the speed option)."""
    if len(arrays) == 2 and arrays[0].dtype is arrays[1].dtype and (
            arrays[0].dtype is _F32 or arrays[0].dtype is _F64):
        return arrays[0].dtype   # np.result_type of one native float dtype is that dtype
    return np.result_type(*[a.dtype for a in arrays if a.dtype.kind == "f"] or [np.float64])


def time_major(arr: np.ndarray, name: str) -> np.ndarray:
    """Check a rollout array is ``[T]`` or ``[T, N]``; return it as ``[T, N]`` (a view)."""
    if arr.ndim == 1:
        return arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"{name} must have shape [T] or [T, N], got shape {arr.shape}")
    return arr


def same_shape(ref_name: str, ref: np.ndarray, **others: np.ndarray) -> None:
    """Raise ``ValueError`` naming the first array whose shape differs from ``ref``'s."""
    for name, arr in others.items():
        if arr.shape != ref.shape:
            raise ValueError(
                f"{name} must have the same shape as {ref_name} {ref.shape}, got {arr.shape}"
            )


def finite_real(x, name: str) -> float:
    """A finite real scalar as a float: TypeError naming ``name`` for bools and non-numbers,
    ValueError for NaN or +-inf."""
    if type(x) is float and x - x == 0.0:   # fast path (per-step callers): finite float
        return x
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(x).__name__} {x!r}")
    value = float(x)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {x!r}")
    return value


def unit_interval(x, name: str) -> float:
    """A real scalar in [0, 1] (discounts gamma and lam)."""
    if type(x) is float and 0.0 <= x <= 1.0:   # fast path: a float in range
        return x
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(x).__name__}")
    x = float(x)
    if not 0.0 <= x <= 1.0:  # also rejects NaN
        raise ValueError(f"{name} must be in [0, 1], got {x}")
    return x


def positive_int(n, name: str, minimum: int = 1) -> int:
    """An integer >= ``minimum`` (bools are rejected: ``True`` is not a count)."""
    if type(n) is int and n >= minimum:  # fast path: wrappers on per-step hot paths call this
        return n
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(n).__name__}")
    n = int(n)
    if n < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {n}")
    return n


def as_generator(rng_or_seed, name: str = "rng") -> np.random.Generator:
    """A ``numpy.random.Generator`` from a Generator or an integer seed; never global state."""
    if isinstance(rng_or_seed, np.random.Generator):
        return rng_or_seed
    if isinstance(rng_or_seed, (bool, np.bool_)) or not isinstance(rng_or_seed, numbers.Integral):
        raise TypeError(
            f"{name} must be a numpy.random.Generator or an integer seed, "
            f"got {type(rng_or_seed).__name__}"
        )
    return np.random.default_rng(int(rng_or_seed))


def normalize_axis(axis, ndim: int, name: str = "axis") -> int:
    """An axis index in ``[-ndim, ndim)`` mapped to ``[0, ndim)``."""
    if isinstance(axis, (bool, np.bool_)) or not isinstance(axis, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(axis).__name__}")
    if not -ndim <= axis < ndim:
        raise ValueError(f"{name}={axis} is out of range for an array with {ndim} dimensions")
    return int(axis) % ndim
