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

Lecture: 001 (CS224R) "Practical implementation details": gradient clipping, hard target
update ``w' <- w every N steps``, soft (Polyak) update ``w' <- tau w + (1 - tau) w'``;
004 (CS234) "plug g into SGD or Adam". Adam: Kingma & Ba 2015; decoupled weight decay
(AdamW): Loshchilov & Hutter 2019.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Union

import numpy as np

Schedule = Callable[[int], float]
LearningRate = Union[float, Schedule]


# ----- learning-rate schedules -------------------------------------------------------------

@dataclass(frozen=True)
class ConstantSchedule:
    """``lr(t) = lr`` for every update t."""

    lr: float

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
        if int(self.n_updates) < 1:
            raise ValueError(f"n_updates must be >= 1, got {self.n_updates}")

    def __call__(self, t: int) -> float:
        frac = min(max(t, 0) / self.n_updates, 1.0)
        return float(self.lr0 + (self.lr_end - self.lr0) * frac)


def _lr_at(lr: LearningRate, t: int) -> float:
    return float(lr(t)) if callable(lr) else float(lr)


def _check(params: np.ndarray, grad: np.ndarray) -> None:
    if not isinstance(params, np.ndarray) or not isinstance(grad, np.ndarray):
        raise TypeError("params and grad must be numpy arrays")
    if params.shape != grad.shape:
        raise ValueError(f"grad shape {grad.shape} differs from params shape {params.shape}")


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
        if not 0.0 <= self.momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum}")
        if self.nesterov and self.momentum == 0.0:
            raise ValueError("nesterov=True needs momentum > 0")

    def init(self, params: np.ndarray) -> SGDState:
        return SGDState(step=0, velocity=np.zeros_like(params))

    def step(self, params: np.ndarray, grad: np.ndarray,
             state: SGDState) -> tuple[np.ndarray, SGDState]:
        """One update; returns ``(new_params, new_state)``; inputs are not modified."""
        _check(params, grad)
        lr = _lr_at(self.lr, state.step)
        g = grad + self.weight_decay * params if self.weight_decay else grad
        b = self.momentum * state.velocity + g
        d = g + self.momentum * b if self.nesterov else b
        return params - lr * d, SGDState(step=state.step + 1, velocity=b)


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
        for name in ("beta1", "beta2"):
            b = getattr(self, name)
            if not 0.0 <= b < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {b}")
        if not self.eps > 0:
            raise ValueError(f"eps must be > 0, got {self.eps}")

    def init(self, params: np.ndarray) -> AdamState:
        return AdamState(step=0, m=np.zeros_like(params), v=np.zeros_like(params))

    def step(self, params: np.ndarray, grad: np.ndarray,
             state: AdamState) -> tuple[np.ndarray, AdamState]:
        """One update; returns ``(new_params, new_state)``; inputs are not modified."""
        _check(params, grad)
        lr = _lr_at(self.lr, state.step)
        t = state.step + 1
        g = grad
        if self.weight_decay and not self.decoupled:
            g = grad + self.weight_decay * params
        # The same arithmetic as the docstring, in place on fresh arrays: one scratch vector
        # instead of a temporary per operator (~half the time of a PPO-sized step).
        scratch = np.multiply(g, 1.0 - self.beta1)
        m = np.multiply(state.m, self.beta1)
        m += scratch                                       # beta1 m + (1 - beta1) g
        np.multiply(g, g, out=scratch)
        scratch *= 1.0 - self.beta2
        v = np.multiply(state.v, self.beta2)
        v += scratch                                       # beta2 v + (1 - beta2) g^2
        # Fold both bias corrections into one scalar step size and the denominator.
        step_size = lr / (1.0 - self.beta1 ** t)
        denom = np.divide(v, 1.0 - self.beta2 ** t, out=scratch)
        np.sqrt(denom, out=denom)
        denom += self.eps
        update = np.divide(m, denom, out=denom)
        update *= step_size
        new = params - update
        if self.weight_decay and self.decoupled:
            new -= (lr * self.weight_decay) * params
        return new, AdamState(step=t, m=m, v=v)


# ----- gradient clipping ---------------------------------------------------------------------

def clip_grad_norm(grad: np.ndarray, max_norm: float) -> tuple[np.ndarray, float]:
    """Scale ``grad`` so its global L2 norm is at most ``max_norm``; returns ``(grad, norm)``.

        norm = ||grad||_2 (over the whole flat vector: "global" norm)
        grad <- grad * max_norm / norm   if norm > max_norm   (direction unchanged)
    ``norm`` is the pre-clip norm (log it: a diagnostic of exploding TD gradients). A grad
    already within the bound is returned as is (the same object); otherwise a new array.
    Shapes: grad ``[n_params]`` (any shape; the norm is over all elements).
    Lecture: 001 (CS224R) "Dealing with TD gradients": gradient clipping.
    """
    if not max_norm > 0:
        raise ValueError(f"max_norm must be > 0, got {max_norm}")
    grad = np.asarray(grad)
    norm = float(np.sqrt(np.dot(grad.ravel(), grad.ravel())))
    if norm > max_norm:
        return grad * (max_norm / norm), norm
    return grad, norm


# ----- target networks -----------------------------------------------------------------------

def polyak_update(target: np.ndarray, online: np.ndarray, tau: float,
                  *, out: np.ndarray | None = None) -> np.ndarray:
    """Soft target update ``target <- tau * online + (1 - tau) * target``; returns it.

    tau in [0, 1]: 1 is a hard copy, 0 leaves the target unchanged (SAC: tau = 0.005).
    A new array unless ``out`` is given (``out=target`` updates the target in place).
    Shapes: target, online ``[n_params]`` (any equal shapes).
    Lecture: 001 (CS224R) "Semi-gradient and target network": soft target update (Polyak),
    and the SAC pseudocode's ``theta'_j <- tau theta_j + (1 - tau) theta'_j``.
    """
    if not 0.0 <= tau <= 1.0:
        raise ValueError(f"tau must be in [0, 1], got {tau}")
    if target.shape != online.shape:
        raise ValueError(f"target {target.shape} and online {online.shape} differ in shape")
    res = np.multiply(target, 1.0 - tau, out=out)
    res += tau * online
    return res


def hard_update(target: np.ndarray, online: np.ndarray,
                *, out: np.ndarray | None = None) -> np.ndarray:
    """Hard target update ``target <- online`` (DQN: every C steps); returns a copy of online.

    ``out=target`` copies in place. ``target`` is only used for the shape check.
    Lecture: 001 (CS224R) "Semi-gradient and target network": ``w' <- w when mod(n, N) = 0``.
    """
    if target.shape != online.shape:
        raise ValueError(f"target {target.shape} and online {online.shape} differ in shape")
    if out is None:
        return online.copy()
    np.copyto(out, online)
    return out
