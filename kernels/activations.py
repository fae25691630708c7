"""tanh of float32 arrays: a rational approximation evaluated in float64, vectorized by Numba.

Why a kernel for tanh: every hidden layer of the agents' tanh networks calls it, and on CPUs
without a vector math library (NumPy's float32 ``np.tanh`` runs element by element here,
~2.6 ns per element, and Numba has no SVML on this machine) it was the largest single cost
of a PPO minibatch step. A rational function needs only multiply, add and one divide, which
LLVM vectorizes.

Equation::

    tanh(x) = sign(x)                              for |x| >= c = 9.1
            ~ x * P(u) / Q(u),  u = (x / c)^2      for |x| <  c

    P(u) = p_0 + p_1 u + ... + p_6 u^6,   Q(u) = 1 + q_1 u + q_2 u^2 + q_3 u^3

In float32, tanh(x) rounds to exactly +-1 for |x| > 9.011 (1 - tanh(x) = 2 / (exp(2x) + 1)
falls below half an ulp of 1), so returning +-1 beyond c loses nothing. The coefficients below
were fitted by :func:`fit_tanh_rational` (a linearized least-squares fit of x P(u) / Q(u) to
tanh, refined by Lawson reweighting towards the minimax relative error) to a relative error of
7.5e-9 in exact arithmetic on [0, c]. The kernel evaluates in float64 and rounds once to
float32, so the result is within 0.5 ulp + 7.5e-9 relative of the exact tanh: checked for every
float32 input by ``tests/kernels/test_activations.py`` (NumPy's own float32 tanh is within
1.37 ulp over the same range). The form is odd in x, so tanh(-x) = -tanh(x) exactly, -0.0
stays -0.0 and NaN propagates.

float64 keeps ``np.tanh`` (the reference dtype; a float64-accurate rational would need far
higher degrees): see ``minirl.nn.layers.Tanh``.

Reference twins: ``tanh_reference`` (``np.tanh`` in float64, rounded: the definition) and
``tanh_rational_reference`` (the same rational form in plain NumPy float64, bit-identical to
the kernel, which uses no fast-math).

Lecture: the tanh hidden layers of the policy and value networks (CS234 Policy Gradient II's PPO, and the
``4 -> 64 -> 64 -> 2`` networks of the benchmarks). Approximation method: Sanathanan &
Koerner (1963), Lawson (1961).
"""
from __future__ import annotations

import numba
import numpy as np

__all__ = ["tanh_f32", "tanh_reference", "tanh_rational_reference", "fit_tanh_rational"]

TANH_CLIP = 9.1
# x P(u) / Q(u) with u = (x / TANH_CLIP)^2; from fit_tanh_rational() (see the module docstring).
_P = (0.9999999925562144, 10.831332349999919, 21.252610238128774, 6.305681271937905,
      -0.9414395986370999, 0.20164120621459708, -0.026537670041833668)
_Q = (38.434659921953966, 167.84527215920957, 144.19199820629032)   # q_1..q_3; q_0 = 1

_P0, _P1, _P2, _P3, _P4, _P5, _P6 = _P
_Q1, _Q2, _Q3 = _Q
_INV_CLIP2 = 1.0 / (TANH_CLIP * TANH_CLIP)


def tanh_reference(x) -> np.ndarray:
    """The definition: ``np.tanh`` in float64, rounded once to float32."""
    return np.tanh(np.asarray(x, dtype=np.float64)).astype(np.float32)


def tanh_rational_reference(x) -> np.ndarray:
    """The kernel's formula in plain NumPy float64 (clamp, Horner, divide), rounded to float32."""
    v = np.asarray(x, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):    # |x| large or inf: replaced below
        u = v * v * _INV_CLIP2
        p = _P0 + u * (_P1 + u * (_P2 + u * (_P3 + u * (_P4 + u * (_P5 + u * _P6)))))
        q = 1.0 + u * (_Q1 + u * (_Q2 + u * _Q3))
        y = v * p / q
    y = np.where(v >= TANH_CLIP, 1.0, np.where(v <= -TANH_CLIP, -1.0, y))
    return y.astype(np.float32)


@numba.njit(cache=True, error_model="numpy", inline="always")
def _tanh_rational(v):
    # error_model="numpy": no ZeroDivisionError check on the divide (Q >= 1 anyway), which is
    # what lets LLVM vectorize the loops below.
    u = v * v * _INV_CLIP2
    p = _P0 + u * (_P1 + u * (_P2 + u * (_P3 + u * (_P4 + u * (_P5 + u * _P6)))))
    q = 1.0 + u * (_Q1 + u * (_Q2 + u * _Q3))
    y = v * p / q
    if v >= TANH_CLIP:          # selects, not branches, after vectorization;
        y = 1.0                 # NaN fails both tests and stays NaN
    elif v <= -TANH_CLIP:
        y = -1.0
    return y


@numba.njit(cache=True, error_model="numpy")
def _tanh_f32_kernel(x, out):
    for i in range(x.size):
        out[i] = np.float32(_tanh_rational(np.float64(x[i])))


@numba.njit(cache=True, error_model="numpy")
def _tanh_f32_inplace_kernel(a):
    # One array read and written at the same index: vectorizes without the overlap check that
    # makes LLVM fall back to a scalar loop when x and out of the kernel above are one buffer.
    for i in range(a.size):
        a[i] = np.float32(_tanh_rational(np.float64(a[i])))


def tanh_f32(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``tanh(x)`` for a float32 array of any shape; ``out`` (float32, same shape, C-contiguous)
    may be ``x`` itself. Non-contiguous ``x`` is copied first."""
    if (out is x and type(x) is np.ndarray and x.dtype == np.float32 and x.flags.c_contiguous
            and x.flags.writeable and x.size):
        _tanh_f32_inplace_kernel(x.reshape(-1))     # the hidden layers' case, checks inline
        return x
    if not isinstance(x, np.ndarray) or x.dtype != np.float32:
        raise TypeError(f"x must be a float32 ndarray, got "
                        f"{getattr(x, 'dtype', type(x).__name__)}")
    if out is None:
        out = np.empty(x.shape, np.float32)
    elif (not isinstance(out, np.ndarray) or out.dtype != np.float32 or out.shape != x.shape
          or not out.flags.c_contiguous or not (out.flags.writeable or x.size == 0)):
        raise ValueError(f"out must be a writable C-contiguous float32 array of shape {x.shape}")
    if x.size == 0:
        return out
    if out is x:                                    # in place
        _tanh_f32_inplace_kernel(out.reshape(-1))
        return out
    x = np.ascontiguousarray(x)
    if np.may_share_memory(x, out):                 # overlapping views: read from a copy
        _tanh_f32_kernel(x.reshape(-1).copy(), out.reshape(-1))
    else:
        _tanh_f32_kernel(x.reshape(-1), out.reshape(-1))
    return out


def fit_tanh_rational(num_points: int = 100_001, iterations: int = 60, lawson: int = 80):
    """Fit ``x P(u) / Q(u)`` (P of degree 6, Q of degree 3 in u = (x/c)^2) to tanh on (0, c].

    Sanathanan-Koerner iterations (a least-squares fit of the linearized residual
    x P(u) - tanh(x) Q(u), divided by the previous Q and by tanh(x) so that the error is
    relative), then Lawson reweighting (w <- w * |error|) towards the minimax solution.
    Returns ``(p [7], q [4] with q[0] = 1, max relative error on the grid)``.
    """
    x = np.linspace(1e-4, TANH_CLIP, num_points)
    y = np.tanh(x)
    u = (x / TANH_CLIP) ** 2
    A_p = x[:, None] * u[:, None] ** np.arange(7)
    A_q = -y[:, None] * u[:, None] ** np.arange(1, 4)
    A = np.hstack([A_p, A_q])
    w, q_prev, best = np.ones_like(x), np.ones_like(x), None
    for it in range(iterations + lawson):
        s = np.sqrt(w) / (y * q_prev)
        c = np.linalg.lstsq(A * s[:, None], y * s, rcond=None)[0]
        p, q = c[:7], np.concatenate([[1.0], c[7:]])
        q_prev = np.polynomial.polynomial.polyval(u, q)
        err = np.abs(x * np.polynomial.polynomial.polyval(u, p) / q_prev - y) / y
        if best is None or err.max() < best[2]:
            best = (p.copy(), q.copy(), float(err.max()))
        if it >= iterations:
            w = w * err
            w /= w.mean()
    return best
