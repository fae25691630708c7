"""Weight initializers. Randomness comes only from the ``rng`` (a ``numpy.random.Generator``).

Every initializer has the signature ``init(shape, *, rng, gain=1.0, dtype=np.float64)`` and
returns a new array of ``shape``. Weights in minirl are stored ``[in, out]``, so for a 2-D
shape ``fan_in = shape[0]`` and ``fan_out = shape[1]`` (the transpose of PyTorch's layout).
Biases are initialized to zero (:func:`zeros`).

| initializer       | distribution                                                    |
|-------------------|-----------------------------------------------------------------|
| ``orthogonal``    | W = gain * Q, Q with orthonormal columns (in >= out) or rows    |
| ``xavier_uniform``| U(-a, a), a = gain * sqrt(6 / (fan_in + fan_out))               |
| ``xavier_normal`` | N(0, s^2), s = gain * sqrt(2 / (fan_in + fan_out))              |
| ``lecun_uniform`` | U(-a, a), a = gain * sqrt(3 / fan_in)                           |
| ``lecun_normal``  | N(0, s^2), s = gain * sqrt(1 / fan_in)                          |

Orthogonal with gain sqrt(2) on hidden layers, 0.01 on a policy head and 1 on a value head is
the usual PPO choice (Saxe et al. 2014, "Exact solutions to the nonlinear dynamics of
learning in deep linear networks"; Andrychowicz et al. 2021, "What matters in on-policy RL").
Xavier: Glorot & Bengio 2010. LeCun: LeCun et al. 1998, "Efficient BackProp".
"""
from __future__ import annotations

import numpy as np


def _fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a ``[in, out]`` weight (a 1-D shape counts as ``[in, 1]``)."""
    shape = tuple(int(s) for s in shape)
    if len(shape) == 1:
        return shape[0], 1
    if len(shape) != 2:
        raise ValueError(f"weight initializers expect a 1-D or 2-D shape, got {shape}")
    return shape[0], shape[1]


def _check_rng(rng) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"rng must be a numpy.random.Generator (np.random.default_rng(seed)), "
            f"got {type(rng).__name__}")
    return rng


def orthogonal(shape, *, rng: np.random.Generator, gain: float = 1.0,
               dtype=np.float64) -> np.ndarray:
    """Scaled (semi-)orthogonal matrix: ``W^T W = gain^2 I`` if in >= out, else ``W W^T``.

    Drawn as the Q factor of the QR decomposition of a standard normal matrix, with the signs
    of diag(R) folded into Q so that Q is Haar-distributed (Mezzadri 2007).
    shape: ``(in, out)``; returns ``[in, out]`` of ``dtype``.
    """
    rng = _check_rng(rng)
    rows, cols = _fans(shape)
    tall = rows >= cols
    a = rng.standard_normal((rows, cols) if tall else (cols, rows))   # [big, small]
    q, r = np.linalg.qr(a)                                            # q: [big, small]
    q *= np.where(np.diag(r) < 0, -1.0, 1.0)                          # sign fix (Haar)
    w = q if tall else q.T
    return (gain * w).reshape(shape).astype(dtype, copy=False)


def xavier_uniform(shape, *, rng: np.random.Generator, gain: float = 1.0,
                   dtype=np.float64) -> np.ndarray:
    """``U(-a, a)``, ``a = gain * sqrt(6 / (fan_in + fan_out))`` (variance gain^2 * 2/(in+out))."""
    fan_in, fan_out = _fans(shape)
    a = gain * np.sqrt(6.0 / (fan_in + fan_out))
    return _check_rng(rng).uniform(-a, a, size=shape).astype(dtype, copy=False)


def xavier_normal(shape, *, rng: np.random.Generator, gain: float = 1.0,
                  dtype=np.float64) -> np.ndarray:
    """``N(0, s^2)``, ``s = gain * sqrt(2 / (fan_in + fan_out))``."""
    fan_in, fan_out = _fans(shape)
    s = gain * np.sqrt(2.0 / (fan_in + fan_out))
    return (s * _check_rng(rng).standard_normal(shape)).astype(dtype, copy=False)


def lecun_uniform(shape, *, rng: np.random.Generator, gain: float = 1.0,
                  dtype=np.float64) -> np.ndarray:
    """``U(-a, a)``, ``a = gain * sqrt(3 / fan_in)`` (variance gain^2 / fan_in)."""
    fan_in, _ = _fans(shape)
    a = gain * np.sqrt(3.0 / fan_in)
    return _check_rng(rng).uniform(-a, a, size=shape).astype(dtype, copy=False)


def lecun_normal(shape, *, rng: np.random.Generator, gain: float = 1.0,
                 dtype=np.float64) -> np.ndarray:
    """``N(0, s^2)``, ``s = gain * sqrt(1 / fan_in)``."""
    fan_in, _ = _fans(shape)
    s = gain * np.sqrt(1.0 / fan_in)
    return (s * _check_rng(rng).standard_normal(shape)).astype(dtype, copy=False)


def zeros(shape, *, rng: np.random.Generator | None = None, gain: float = 1.0,
          dtype=np.float64) -> np.ndarray:
    """All zeros (biases). Takes the common signature; ``rng`` and ``gain`` are unused."""
    return np.zeros(shape, dtype=dtype)
