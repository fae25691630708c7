"""Optimizers, gradient clipping, learning-rate schedules and target-network updates.

Functional design: an optimizer is a frozen dataclass of hyperparameters; its state is an
explicit value; a step returns *new* parameters and a *new* state and mutates nothing:

    adam = Adam(lr=3e-4)                       # or Adam(lr=LinearSchedule(3e-4, 0.0, n_updates))
    state = adam.init(params)
    params, state = adam.step(params, grad, state)

``params`` and ``grad`` are the network's flat vectors (``[n_params]``), so one optimizer
serves any network. Minimization: steps go *against* the gradient (for gradient ascent on an
objective J, pass ``-dJ``). ``lr`` may be a number or a schedule ``lr(t)`` evaluated at the
number of updates already taken, ``t = state.step`` (0 for the first update).

Lecture: Stanford CS224R, Q-learning, "Practical Implementation Details" (gradient clipping)
and "Semi-Gradient and Target Network" (hard target update ``w' <- w every N steps``, soft
(Polyak) update ``w' <- tau w + (1 - tau) w'``); Stanford CS234 "Lecture 6: Policy
Gradient II" (Emma Brunskill), vanilla policy gradient loop: "plug g into SGD or Adam". Adam: Kingma & Ba 2015; decoupled weight decay
(AdamW): Loshchilov & Hutter 2019.

Failure is loud: every hyperparameter is checked when the optimizer is built (a NaN, negative
or infinite learning rate, a negative weight decay, a non-bool flag raise ValueError/TypeError
naming it), and a step on a NaN/inf gradient, or one whose float32 second moment overflows,
raises ``NonFiniteGradientError`` instead of silently writing NaN or taking a zero step.
"""
from __future__ import annotations

import math
import numbers
import sys
from dataclasses import dataclass
from typing import Callable, Union

import numpy as np

from kernels.optim import (_adam_apply, adam_update, checked_coefficient_rows,
                           checked_coefficients)

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))

Schedule = Callable[[int], float]
LearningRate = Union[float, Schedule]


class NonFiniteGradientError(FloatingPointError):
    """A gradient (or an optimizer statistic computed from it) is NaN or infinite.

    Raised by ``clip_grad_norm`` and the optimizers' ``step`` instead of propagating NaN into
    the parameters or, worse, silently taking a zero step; the message says which quantity.
    Training has diverged (learning rate too large, rewards too large for the dtype, ...).
    """


def _real(x, name: str, lo: float = 0.0, hi: float = np.inf, *, lo_open: bool = False,
          hi_open: bool = True) -> float:
    """A real number (not a bool) in the interval from ``lo`` to ``hi``; NaN is never inside.
    By default ``[lo, inf)``, so +inf is rejected too."""
    if type(x) is float:        # fast path (an optimizer is built per update): no ABC check
        v = x
    else:
        if isinstance(x, (bool, np.bool_)) or not isinstance(x, numbers.Real):
            raise TypeError(f"{name} must be a real number, got {type(x).__name__} {x!r}")
        v = float(x)
    ok_lo = v > lo if lo_open else v >= lo
    ok_hi = v < hi if hi_open else v <= hi
    if not (ok_lo and ok_hi):
        interval = f"{'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"
        raise ValueError(f"{name} must be in {interval}, got {x!r}")
    return v


def _flag(x, name: str) -> None:
    if not isinstance(x, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {type(x).__name__} {x!r}")


def _check_lr(lr, name: str = "lr") -> None:
    """A number: finite and >= 0. A schedule: callable (its values are checked per step)."""
    if not callable(lr):
        _real(lr, name)


# ----- learning-rate schedules -------------------------------------------------------------

@dataclass(frozen=True)
class ConstantSchedule:
    """``lr(t) = lr`` for every update t."""

    lr: float

    def __post_init__(self):
        _real(self.lr, "lr")

    def __call__(self, t: int) -> float:
        return float(self.lr)


@dataclass(frozen=True)
class LinearSchedule:
    """Linear anneal ``lr(t) = lr0 + (lr_end - lr0) * min(t / n_updates, 1)``.

    t counts updates already taken: ``lr(0) = lr0``, ``lr(n_updates) = lr_end`` and it stays
    at ``lr_end`` afterwards. (PPO's usual anneal to 0 over training: ``lr_end = 0``.)
    """

    lr0: float
    lr_end: float
    n_updates: int

    def __post_init__(self):
        _real(self.lr0, "lr0")
        _real(self.lr_end, "lr_end")
        if isinstance(self.n_updates, (bool, np.bool_)) or not isinstance(
                self.n_updates, numbers.Integral):
            raise TypeError(f"n_updates must be an integer, got {self.n_updates!r}")
        if self.n_updates < 1:
            raise ValueError(f"n_updates must be >= 1, got {self.n_updates}")

    def __call__(self, t: int) -> float:
        frac = min(max(t, 0) / self.n_updates, 1.0)
        return float(self.lr0 + (self.lr_end - self.lr0) * frac)


def _lr_at(lr: LearningRate, t: int) -> float:
    if not callable(lr):
        return float(lr)
    value = float(lr(t))
    if not 0.0 <= value < np.inf:
        raise ValueError(f"lr schedule gave lr({t}) = {value}; it must be finite and >= 0")
    return value


def _check(params: np.ndarray, grad: np.ndarray) -> None:
    if not isinstance(params, np.ndarray) or not isinstance(grad, np.ndarray):
        raise TypeError("params and grad must be numpy arrays")
    if params.shape != grad.shape:
        raise ValueError(f"grad shape {grad.shape} differs from params shape {params.shape}")


def _non_finite(grad: np.ndarray, who: str) -> NonFiniteGradientError:
    bad = int(np.count_nonzero(~np.isfinite(grad)))
    return NonFiniteGradientError(
        f"{who}: grad has {bad} NaN/inf entries of {grad.size}; training diverged "
        f"(lower the learning rate, clip gradients, or scale the rewards)")


# ----- SGD ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class SGDState:
    step: int                 # updates taken so far
    velocity: np.ndarray      # momentum buffer b (zeros if momentum == 0)


@dataclass(frozen=True)
class SGD:
    """Stochastic gradient descent with optional (Nesterov) momentum, PyTorch's convention.

        g = grad + weight_decay * params                    (L2 penalty, off by default)
        b = momentum * b + g                                (b = 0 before the first step)
        d = g + momentum * b   if nesterov   else   b
        params <- params - lr(t) * d
    With momentum = 0 this is plain ``params - lr * grad``.
    """

    lr: LearningRate
    momentum: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0

    def __post_init__(self):
        _check_lr(self.lr)
        _real(self.momentum, "momentum", 0.0, 1.0)
        _flag(self.nesterov, "nesterov")
        _real(self.weight_decay, "weight_decay")
        if self.nesterov and self.momentum == 0.0:
            raise ValueError("nesterov=True needs momentum > 0")

    def init(self, params: np.ndarray) -> SGDState:
        return SGDState(step=0, velocity=np.zeros_like(params))

    def step(self, params: np.ndarray, grad: np.ndarray,
             state: SGDState) -> tuple[np.ndarray, SGDState]:
        """One update; returns ``(new_params, new_state)``; inputs are not modified."""
        _check(params, grad)
        if not np.isfinite(grad).all():
            raise _non_finite(grad, "SGD.step")
        lr = _lr_at(self.lr, state.step)
        _fits_dtype(params.dtype, "SGD.step", lr=lr, weight_decay=self.weight_decay,
                    momentum=self.momentum)
        g = grad + self.weight_decay * params if self.weight_decay else grad
        b = self.momentum * state.velocity + g
        d = g + self.momentum * b if self.nesterov else b
        return params - lr * d, SGDState(step=state.step + 1, velocity=b)


def _fits_dtype(dtype, where: str, **hyper: float) -> None:
    """Each hyperparameter must stay finite when NumPy rounds it to the parameters' dtype
    (a Python float next to a float32 array is cast to float32): lr=1e300 would otherwise
    turn every float32 parameter into +-inf, or NaN where the gradient is 0."""
    info = np.finfo(dtype)
    for name, value in hyper.items():
        if abs(value) > float(info.max):
            raise ValueError(f"{where}: {name}={value!r} overflows {np.dtype(dtype).name} "
                             f"(max {float(info.max):.4g}); use a smaller {name} or float64 "
                             "parameters")


# ----- Adam --------------------------------------------------------------------------------

@dataclass(frozen=True)
class AdamState:
    step: int                 # updates taken so far (t - 1 in the paper's 1-based count)
    m: np.ndarray             # first-moment estimate (biased)
    v: np.ndarray             # second-moment estimate (biased)


@dataclass(frozen=True)
class Adam:
    """Adam with bias correction (Kingma & Ba 2015), PyTorch's placement of ``eps``.

    For update number t = state.step + 1 (1-based):
        g     = grad (+ weight_decay * params  if weight_decay and not decoupled: L2)
        m     = beta1 * m + (1 - beta1) * g
        v     = beta2 * v + (1 - beta2) * g^2
        m_hat = m / (1 - beta1^t),   v_hat = v / (1 - beta2^t)
        params <- params - lr * m_hat / (sqrt(v_hat) + eps)
                         (- lr * weight_decay * params_old  if decoupled: AdamW)
    Weight decay is off by default (0.0). With ``decoupled=True`` (the default form when it is
    on) it is AdamW's shrink, applied to the old parameters and not scaled by the adaptive
    denominator; ``decoupled=False`` adds the L2 gradient ``weight_decay * params`` to ``g``.
    """

    lr: LearningRate
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    weight_decay: float = 0.0
    decoupled: bool = True

    def __post_init__(self):
        _check_lr(self.lr)
        for name in ("beta1", "beta2"):
            _real(getattr(self, name), name, 0.0, 1.0)
        _real(self.eps, "eps", lo_open=True)
        _real(self.weight_decay, "weight_decay")
        _flag(self.decoupled, "decoupled")

    def init(self, params: np.ndarray) -> AdamState:
        return AdamState(step=0, m=np.zeros_like(params), v=np.zeros_like(params))

    def step(self, params: np.ndarray, grad: np.ndarray,
             state: AdamState) -> tuple[np.ndarray, AdamState]:
        """One update; returns ``(new_params, new_state)``; inputs are not modified."""
        _check(params, grad)
        lr = _lr_at(self.lr, state.step)
        t = state.step + 1
        # One fused Numba pass (kernels/optim.py), bit for bit the docstring's arithmetic in
        # the params' dtype (the NumPy version made ~ten passes and four temporaries).
        try:
            m, v = state.m, state.v
            dt = params.dtype
            if (type(t) is int and t >= 1                                    # the usual case:
                    and type(params) is np.ndarray and type(grad) is np.ndarray
                    and type(m) is np.ndarray and type(v) is np.ndarray      # what adam_update
                    and dt in _FLOATS and grad.dtype == dt and m.dtype == dt  # would check,
                    and v.dtype == dt and m.shape == params.shape            # inline (the
                    and v.shape == params.shape and params.flags.c_contiguous  # hyperparameters
                    and grad.flags.c_contiguous and m.flags.c_contiguous     # were checked by
                    and v.flags.c_contiguous):                               # __post_init__)
                coef = checked_coefficients(dt, lr, float(self.beta1), float(self.beta2),
                                            float(self.eps), t, float(self.weight_decay),
                                            bool(self.decoupled))
                new, m, v = _adam_apply(params, grad, m, v, coef)
            else:
                # C-contiguous copies only of strided inputs (the usual flat vectors pass as is)
                p, g, m, v = (np.asarray(x, order="C") for x in (params, grad, m, v))
                new, m, v = adam_update(p, g, m, v, lr, self.beta1, self.beta2, self.eps, t,
                                        self.weight_decay, self.decoupled)
        except FloatingPointError:  # v = E[g^2] not finite: NaN/inf in g, or g^2 > float max
            if not np.isfinite(grad).all():
                raise _non_finite(grad, "Adam.step") from None
            raise NonFiniteGradientError(
                f"Adam.step: the second moment v = E[g^2] overflowed {params.dtype} (|grad| up "
                f"to {np.abs(grad).max():.3g}); the step would silently be 0. Clip gradients "
                f"or use float64") from None
        return new, AdamState(step=t, m=m, v=v)

    def coefficients(self, state: AdamState, dtype) -> tuple:
        """The nine scalar coefficients of the next update (number ``state.step + 1``), each
        rounded to ``dtype`` and checked as :meth:`step` checks them (a ValueError naming
        ``lr``/``eps``/``weight_decay`` that overflow or vanish in ``dtype``): for fused kernels
        that run Adam inside a larger step (``kernels.qstep``), bit for bit :meth:`step`."""
        return checked_coefficients(dtype, _lr_at(self.lr, state.step), self.beta1,
                                    self.beta2, self.eps, state.step + 1, self.weight_decay,
                                    self.decoupled)

    def coefficient_rows(self, state: AdamState, dtype, n: int) -> np.ndarray:
        """``[n, 9]``: row k is :meth:`coefficients` of the update k after ``state`` (update
        number ``state.step + 1 + k``, the lr schedule's value at ``state.step + k``), for
        kernels that run n updates in one call (``kernels.qstep.q_steps``)."""
        lrs = [_lr_at(self.lr, state.step + k) for k in range(n)]
        return checked_coefficient_rows(dtype, lrs, self.beta1, self.beta2, self.eps,
                                        state.step + 1, self.weight_decay, self.decoupled)


def reusable(arrays: tuple) -> tuple | None:
    """``arrays`` if nothing but this tuple refers to any of them, else None.

    For loops that replace their parameter and moment vectors each update (``params, state =
    opt.step(...)``): the vectors an update made obsolete may be overwritten as the next
    update's destinations (``kernels.qstep.q_step(out=...)``) only if nobody else holds them,
    e.g. a callback's snapshot of ``agent.params``, and only if each owns its memory (never a
    view of a user's buffer or a memory-mapped file); this says so by reference count (measured
    the same way on a fresh probe array, so the interpreter's own counting cancels). Reusing
    them saves allocating and first touching ~1 MB per update (page faults that cost about
    as much as the update's Adam pass). Overwriting an array this returns is unobservable.
    """
    # Only arrays that own their memory: a view (of a user's buffer, a memory-mapped file, a
    # shared store) is never overwritten, whatever its own reference count says.
    if not all(a.flags.owndata and a.flags.writeable and a.base is None for a in arrays):
        return None
    base = _refcounts((np.empty(0),))[0]
    return arrays if all(r == base for r in _refcounts(arrays)) else None


def _refcounts(arrays: tuple) -> list[int]:
    return [sys.getrefcount(a) for a in arrays]


# ----- gradient clipping ---------------------------------------------------------------------

def clip_grad_norm(grad: np.ndarray, max_norm: float) -> tuple[np.ndarray, float]:
    """Scale ``grad`` so its global L2 norm is at most ``max_norm``; returns ``(grad, norm)``.

        norm = ||grad||_2 (over the whole flat vector: "global" norm)
        grad <- grad * max_norm / norm   if norm > max_norm   (direction unchanged)
    ``norm`` is the pre-clip norm (log it: a diagnostic of exploding TD gradients). A grad
    already within the bound is returned as is (the same object); otherwise a new array.
    Shapes: grad ``[n_params]`` (any shape; the norm is over all elements).
    Lecture: Stanford CS224R, Q-learning, "Dealing with TD Gradients": gradient clipping.
    """
    if type(max_norm) is not float:     # (a float: the agents' configs; no ABC check)
        if isinstance(max_norm, (bool, np.bool_)) or not isinstance(max_norm, numbers.Real):
            raise TypeError(f"max_norm must be a real number, got {max_norm!r}")
    if not max_norm > 0:
        raise ValueError(f"max_norm must be > 0, got {max_norm}")
    if type(grad) is not np.ndarray:
        grad = np.asarray(grad)
    flat = grad if grad.ndim == 1 and grad.flags.c_contiguous else grad.ravel()
    with np.errstate(over="ignore", invalid="ignore"):  # overflow goes to _clip_scaled
        sq = float(np.dot(flat, flat))
    if 0.0 < sq < math.inf:  # the common case: no overflow, underflow or non-finite entry
        norm = math.sqrt(sq)    # (correctly rounded, as np.sqrt)
        if norm > max_norm:
            return grad * (max_norm / norm), norm
        return grad, norm
    return _clip_scaled(grad, float(max_norm))


def _clip_scaled(grad: np.ndarray, max_norm: float) -> tuple[np.ndarray, float]:
    """``clip_grad_norm`` when ``sum(g^2)`` over/underflowed (or is 0, or NaN/inf).

    norm = s * ||g / s||  with  s = max|g|  (in float64; 1 <= ||g / s|| <= sqrt(n)), so a
    float32 gradient of 1e20 has norm 1e20, not inf, and clips to the right direction instead
    of to zero. A NaN/inf entry raises ``NonFiniteGradientError``.
    """
    if not np.isfinite(grad).all():
        raise _non_finite(grad, "clip_grad_norm")
    s = float(np.max(np.abs(grad), initial=0.0))
    if s == 0.0:
        return grad, 0.0
    unit = grad.astype(np.float64) / s
    r = float(np.sqrt(np.dot(unit.ravel(), unit.ravel())))
    norm = s * r  # may round to inf only if the true norm exceeds the largest float
    if norm > max_norm:
        return (unit * (max_norm / r)).astype(grad.dtype, copy=False), norm
    return grad, norm


# ----- target networks -----------------------------------------------------------------------

def polyak_update(target: np.ndarray, online: np.ndarray, tau: float,
                  *, out: np.ndarray | None = None) -> np.ndarray:
    """Soft target update ``target <- tau * online + (1 - tau) * target``; returns it.

    tau in [0, 1]: 1 is a hard copy, 0 leaves the target unchanged (SAC: tau = 0.005).
    A new array unless ``out`` is given (``out=target`` updates the target in place).
    Shapes: target, online ``[n_params]`` (any equal shapes).
    Lecture: Stanford CS224R, Q-learning, "Semi-Gradient and Target Network": soft target
    update (Polyak),
    and the SAC pseudocode's ``theta'_j <- tau theta_j + (1 - tau) theta'_j``.
    """
    tau = _real(tau, "tau", 0.0, 1.0, hi_open=False)
    if target.shape != online.shape:
        raise ValueError(f"target {target.shape} and online {online.shape} differ in shape")
    res = np.multiply(target, 1.0 - tau, out=out)
    res += tau * online
    return res


def hard_update(target: np.ndarray, online: np.ndarray,
                *, out: np.ndarray | None = None) -> np.ndarray:
    """Hard target update ``target <- online`` (DQN: every C steps); returns a copy of online.

    ``out=target`` copies in place. ``target`` is only used for the shape check.
    Lecture: Stanford CS224R, Q-learning, "Semi-Gradient and Target Network":
    ``w' <- w when mod(n, N) = 0``.
    """
    if target.shape != online.shape:
        raise ValueError(f"target {target.shape} and online {online.shape} differ in shape")
    if out is None:
        return online.copy()
    np.copyto(out, online)
    return out
