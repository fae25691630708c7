"""Fused Adam update: one pass over the flat parameter vector instead of ~ten NumPy passes.

For update number t (1-based), elementwise over the flat vectors (``[n_params]``)::

    g      = grad (+ weight_decay * params   if weight_decay and not decoupled: L2)
    m'     = beta1 * m + (1 - beta1) * g
    v'     = beta2 * v + (1 - beta2) * g^2
    params'= params - step_size * m' / (sqrt(v' / (1 - beta2^t)) + eps)
                    (- lr * weight_decay * params   if decoupled: AdamW)
    step_size = lr / (1 - beta1^t)

Every scalar coefficient is rounded once to the arrays' dtype and the operations run in the
order written above, which is the order of the NumPy code they replace (``minirl.nn.optim``'s
Adam before this kernel), so float32 and float64 results are bit for bit those of
``adam_update_reference``: each elementwise IEEE operation is correctly rounded and neither
NumPy nor the kernel (no fastmath) contracts them into fused multiply-adds.

Three implementations:

* ``adam_update_reference`` - plain NumPy, the equations above (the definition).
* ``_adam_kernel`` - the Numba loop: reads params, grad, m, v once and writes the three
  results in the same pass (~4x fewer bytes moved than the NumPy version's temporaries).
* ``adam_update`` - the validating wrapper: shapes, dtypes, contiguity, hyperparameters; it
  returns new arrays (the inputs are never modified), and a non-finite second moment (a
  NaN/inf gradient, or g^2 beyond the dtype's range) raises ``FloatingPointError`` naming
  ``grad`` (checked on the new v by an integer scan of the exponent bits).

Papers: Kingma & Ba (2015), "Adam: A Method for Stochastic Optimization", arXiv:1412.6980,
Algorithm 1 (PyTorch's placement of eps: outside the square root of the corrected v);
Loshchilov & Hutter (2019), "Decoupled Weight Decay Regularization", arXiv:1711.05101 (AdamW).
Lecture: Stanford CS234, "Lecture 6: Policy Gradient II" ("plug g into SGD or Adam").
"""
from __future__ import annotations

import math
import numbers

import numba
import numpy as np

from kernels._validate import FLOAT_DTYPES, finite_real

__all__ = ["adam_update", "adam_update_reference", "adam_reference_step",
           "checked_coefficients", "checked_coefficient_rows"]


def _coefficients(dtype, lr, beta1, beta2, eps, step, weight_decay, decoupled):
    """The scalar coefficients, each rounded once to ``dtype`` (what NumPy does with a Python
    float next to a float32 array)."""
    f = np.dtype(dtype).type
    step_size = lr / (1.0 - beta1 ** step)
    l2 = weight_decay if (weight_decay and not decoupled) else 0.0
    shrink = lr * weight_decay if (weight_decay and decoupled) else 0.0
    return (f(beta1), f(1.0 - beta1), f(beta2), f(1.0 - beta2), f(1.0 - beta2 ** step),
            f(eps), f(step_size), f(l2), f(shrink))


def adam_update_reference(params, grad, m, v, lr: float, beta1: float, beta2: float,
                          eps: float, step: int, weight_decay: float = 0.0,
                          decoupled: bool = True):
    """Plain NumPy: ``(new_params, new_m, new_v)`` as new arrays; no validation, no finiteness
    check (for tests and benchmarks)."""
    return adam_reference_step(params, grad, m, v, _coefficients(
        params.dtype, lr, beta1, beta2, eps, step, weight_decay, decoupled))


def adam_reference_step(params, grad, m, v, coef):
    """``adam_update_reference`` given the nine coefficients of :func:`checked_coefficients`
    (also the Adam part of fused kernels' reference twins, e.g. ``kernels.qstep``)."""
    b1, c1, b2, c2, bc2, e, step_size, l2, shrink = coef
    g = grad + l2 * params if l2 else grad
    new_m = m * b1 + g * c1
    new_v = v * b2 + (g * g) * c2
    new_p = params - (new_m / (np.sqrt(new_v / bc2) + e)) * step_size
    if shrink:
        new_p = new_p - shrink * params
    return new_p, new_m, new_v


@numba.njit(cache=True, error_model="numpy")
def _adam_kernel(params, grad, m, v, b1, c1, b2, c2, bc2, e, step_size, l2, shrink,
                 out_p, out_m, out_v):
    """One fused pass writing the three results; the operations and their order are
    ``adam_update_reference``'s. ``l2`` and ``shrink`` are 0 when unused: they are branches,
    not ``+ 0 * p`` (that would turn an inf parameter's update into NaN), and LLVM hoists them
    out of the loop. ``error_model="numpy"``: a division by zero gives inf/NaN like NumPy
    instead of a Python exception check, which is what lets the loop vectorize (SIMD).
    """
    for i in range(params.shape[0]):
        p = params[i]
        g = grad[i]
        if l2 != 0:
            g = g + l2 * p
        mi = m[i] * b1 + g * c1
        vi = v[i] * b2 + (g * g) * c2
        new = p - (mi / (np.sqrt(vi / bc2) + e)) * step_size
        if shrink != 0:
            new = new - shrink * p
        out_m[i] = mi
        out_v[i] = vi
        out_p[i] = new


@numba.njit(cache=True, error_model="numpy")
def _count_non_finite(bits, exponent):
    """How many floats (viewed as same-width integers ``bits``) have every exponent bit set
    (inf or NaN). An integer sum of comparisons vectorizes; a float test with an early exit
    does not (~8x slower)."""
    count = 0
    for i in range(bits.shape[0]):
        count += (bits[i] & exponent) == exponent
    return count


_EXPONENT = {np.dtype(np.float32): (np.int32, np.int32(0x7F800000)),
             np.dtype(np.float64): (np.int64, np.int64(0x7FF0000000000000))}


def _check_coefficients(coef, dt, lr, eps, weight_decay, step) -> None:
    """The coefficients rounded to the arrays' dtype must stay usable: a step size beyond the
    dtype's range would turn every parameter into +-inf, and an eps that rounds to 0 makes a
    zero gradient's update 0/0 = NaN. Either is a ValueError naming the hyperparameter."""
    eps_c, step_size, l2, shrink = coef[5], coef[6], coef[7], coef[8]
    if not math.isfinite(step_size):     # (math: per-step callers; np.dtype.name is slow)
        raise ValueError(f"lr={lr!r}: the step size lr / (1 - beta1^t) at t={step} overflows "
                         f"{np.dtype(dt).name}; use a smaller lr (or float64 parameters)")
    if not (math.isfinite(l2) and math.isfinite(shrink)):
        raise ValueError(f"weight_decay={weight_decay!r} (with lr={lr!r}) overflows "
                         f"{np.dtype(dt).name}")
    if not eps_c > 0:
        raise ValueError(f"eps={eps!r} rounds to 0 in {np.dtype(dt).name} (a zero gradient's "
                         f"update would be 0/0 = NaN); use eps >= "
                         f"{np.finfo(dt).smallest_subnormal!r}")


def checked_coefficients(dtype, lr, beta1, beta2, eps, step, weight_decay, decoupled):
    """The nine coefficients of update ``step`` rounded to ``dtype`` (``_coefficients``), with
    the ValueError of ``_check_coefficients`` for any that overflows or vanishes there; what
    :func:`adam_update` runs with, and what fused kernels pass to ``_adam_kernel``."""
    with np.errstate(over="ignore", under="ignore"):
        coef = _coefficients(dtype, lr, beta1, beta2, eps, step, weight_decay, decoupled)
    _check_coefficients(coef, dtype, lr, eps, weight_decay, step)
    return coef


def checked_coefficient_rows(dtype, lrs, beta1, beta2, eps, first_step, weight_decay,
                             decoupled) -> np.ndarray:
    """``[K, 9]`` array of ``dtype``: row k the coefficients of :func:`checked_coefficients`
    for update ``first_step + k`` with learning rate ``lrs[k]`` (the same rounded values and
    the same ValueError, naming the first update whose coefficients do not survive), for
    fused kernels that run K updates in one call (``kernels.qstep.q_steps``)."""
    steps = range(first_step, first_step + len(lrs))
    with np.errstate(over="ignore", under="ignore"):
        rows = [_coefficients(dtype, lr, beta1, beta2, eps, t, weight_decay, decoupled)
                for lr, t in zip(lrs, steps)]
    for row, lr, t in zip(rows, lrs, steps):
        _check_coefficients(row, dtype, lr, eps, weight_decay, t)
    return np.array(rows, dtype=dtype).reshape(len(rows), 9)


def adam_update(params, grad, m, v, lr: float, beta1: float, beta2: float, eps: float,
                step: int, weight_decay: float = 0.0, decoupled: bool = True):
    """One Adam update (update number ``step``, 1-based): ``(new_params, new_m, new_v)``.

    Args:
        params, m, v: C-contiguous float32 or float64 arrays of one shape and dtype (any
            shape; the update is elementwise).
        grad: same shape; cast to ``params``' dtype if it has another float dtype.
        lr >= 0, 0 <= beta1, beta2 < 1, eps > 0, weight_decay >= 0: finite reals.
        step: the update's number t >= 1 (bias corrections 1 - beta^t).
        decoupled: AdamW's shrink (True) or the L2 gradient (False) when weight_decay > 0.

    Returns:
        ``(new_params, new_m, new_v)``: new arrays; the inputs are not modified.

    Raises:
        TypeError: non-array or non-float arrays, non-real hyperparameters.
        ValueError: shape/dtype mismatch naming the array, non-contiguous arrays,
            hyperparameters out of range naming them, and hyperparameters that do not survive
            rounding to the arrays' dtype (a step size lr / (1 - beta1^t) or weight decay
            beyond its range: every parameter would become +-inf; an eps that rounds to 0).
        FloatingPointError: a new second moment v' is NaN or inf (a NaN/inf in ``grad``, or
            ``g^2`` beyond the dtype's range).
    """
    if not isinstance(params, np.ndarray) or params.dtype not in FLOAT_DTYPES:
        raise TypeError(f"params must be a float32 or float64 array, got "
                        f"{getattr(params, 'dtype', type(params).__name__)}")
    dt = params.dtype
    if not params.flags.c_contiguous:
        raise ValueError("params must be C-contiguous")
    arrays = {"grad": grad, "m": m, "v": v}
    for name, arr in arrays.items():
        if not isinstance(arr, np.ndarray):
            raise TypeError(f"{name} must be a numpy array, got {type(arr).__name__}")
        if arr.shape != params.shape:
            raise ValueError(f"{name} has shape {arr.shape}, params {params.shape}")
        if name != "grad" and arr.dtype != dt:
            raise ValueError(f"{name} has dtype {arr.dtype}, params {dt}")
        if not arr.flags.c_contiguous:
            raise ValueError(f"{name} must be C-contiguous")
    if grad.dtype != dt:
        if grad.dtype.kind not in "biuf":
            raise TypeError(f"grad must be a real array, got dtype {grad.dtype}")
        grad = grad.astype(dt)
    lr, beta1, beta2 = finite_real(lr, "lr"), finite_real(beta1, "beta1"), finite_real(beta2, "beta2")
    eps, weight_decay = finite_real(eps, "eps"), finite_real(weight_decay, "weight_decay")
    if lr < 0 or weight_decay < 0:
        raise ValueError(f"lr and weight_decay must be >= 0, got {lr}, {weight_decay}")
    if not (0.0 <= beta1 < 1.0 and 0.0 <= beta2 < 1.0):
        raise ValueError(f"beta1 and beta2 must be in [0, 1), got {beta1}, {beta2}")
    if not eps > 0:
        raise ValueError(f"eps must be > 0, got {eps}")
    if isinstance(step, (bool, np.bool_)) or not isinstance(step, numbers.Integral) or step < 1:
        raise ValueError(f"step must be an integer >= 1, got {step!r}")
    coef = checked_coefficients(dt, lr, beta1, beta2, eps, int(step), weight_decay,
                                bool(decoupled))
    return _adam_apply(params, grad, m, v, coef)


def _adam_apply(params, grad, m, v, coef):
    """:func:`adam_update` after its checks: ``params, grad, m, v`` C-contiguous arrays of one
    shape and float dtype, ``coef`` from :func:`checked_coefficients` for that dtype. Also
    called directly by ``minirl.nn.optim.Adam.step``, which has validated the same things
    (its hyperparameters when built, the arrays' types per step) and skips the second pass
    of checks (~6 us of a ~17 us step on a 9k-parameter network); bit for bit the same."""
    out = (np.empty_like(params), np.empty_like(params), np.empty_like(params))
    if params.ndim == 1:    # flat vectors (every optimizer's case): no reshapes
        _adam_kernel(params, grad, m, v, *coef, *out)
        new_v = out[2]
    else:
        flat = [a.reshape(-1) for a in (params, grad, m, v, *out)]
        _adam_kernel(*flat[:4], *coef, *flat[4:])
        new_v = flat[6]
    int_type, exponent = _EXPONENT[params.dtype]
    if _count_non_finite(new_v.view(int_type), exponent):
        bad = int(np.flatnonzero(~np.isfinite(new_v))[0])
        raise FloatingPointError(
            f"grad: the second moment v' = beta2 v + (1 - beta2) g^2 is not finite at index "
            f"{bad} (grad there = {grad.reshape(-1)[bad]!r}, dtype {params.dtype})")
    return out
