"""One finite-difference harness for every backward in minirl.

For a function ``f: x -> y`` and an upstream gradient ``dy`` (same shape as ``y``), the
analytic vector-Jacobian product ``dx = J^T dy`` is compared with the central difference

    dx_i ~= ( sum(f(x + eps e_i) * dy) - sum(f(x - eps e_i) * dy) ) / (2 eps)

in float64. A random ``dy`` checks every output direction at once, so one call covers the
whole Jacobian with high probability.
"""
from __future__ import annotations

from typing import Callable

import numpy as np


def numerical_gradient(
    f: Callable[[np.ndarray], np.ndarray], x: np.ndarray, dy, eps: float = 1e-6
) -> np.ndarray:
    """Central-difference gradient of ``sum(f(x) * dy)`` with respect to ``x`` (float64).

    ``x`` is not modified; ``f`` is called ``2 * x.size`` times on perturbed copies.
    """
    x = np.array(x, dtype=np.float64, copy=True)
    dy = np.asarray(dy, dtype=np.float64)
    grad = np.empty_like(x)
    flat, gflat = x.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        plus = float(np.sum(np.asarray(f(x), dtype=np.float64) * dy))
        flat[i] = old - eps
        minus = float(np.sum(np.asarray(f(x), dtype=np.float64) * dy))
        flat[i] = old
        gflat[i] = (plus - minus) / (2.0 * eps)
    return grad


def relative_error(analytic, numeric, floor: float = 1e-12) -> float:
    """``||a - n|| / max(||a|| + ||n||, floor)``: 0 when equal, 1 when unrelated.

    The norm-based form does not blow up on individual coordinates that are ~0 in both.
    """
    a = np.asarray(analytic, dtype=np.float64).ravel()
    n = np.asarray(numeric, dtype=np.float64).ravel()
    if a.shape != n.shape:
        raise ValueError(f"analytic has shape {a.shape} but numeric has shape {n.shape}")
    return float(np.linalg.norm(a - n) / max(np.linalg.norm(a) + np.linalg.norm(n), floor))


def check_gradient(
    f: Callable[[np.ndarray], np.ndarray],
    x: np.ndarray,
    analytic: np.ndarray,
    dy=None,
    *,
    eps: float = 1e-6,
    rtol: float = 1e-6,
    rng: np.random.Generator | None = None,
) -> float:
    """Assert that ``analytic`` is the gradient of ``sum(f(x) * dy)``; return the relative error.

    If ``dy`` is None it is drawn from ``rng`` (standard normal, shape of ``f(x)``);
    ``analytic`` must then have been computed with the same ``dy``, so pass ``dy``
    explicitly whenever the analytic side needs it.
    """
    if dy is None:
        if rng is None:
            raise ValueError("dy is None: pass dy or an rng to draw it from")
        dy = rng.standard_normal(np.shape(f(x)))
    numeric = numerical_gradient(f, x, dy, eps=eps)
    analytic = np.asarray(analytic, dtype=np.float64)
    if analytic.shape != numeric.shape:
        raise AssertionError(
            f"analytic gradient has shape {analytic.shape}, expected {numeric.shape}"
        )
    err = relative_error(analytic, numeric)
    if not err < rtol:
        worst = int(np.argmax(np.abs(analytic - numeric)))
        raise AssertionError(
            f"gradient check failed: relative error {err:.3e} >= {rtol:.0e}; worst entry "
            f"{np.unravel_index(worst, numeric.shape)}: analytic "
            f"{analytic.ravel()[worst]:.9g} vs numeric {numeric.ravel()[worst]:.9g}"
        )
    return err
