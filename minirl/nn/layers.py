"""Layers as pure forward/backward pairs with an explicit cache (no autodiff).

Every layer has the same two methods, written next to each other:

    y, cache        = layer.forward(params, x, out=None)
    dparams, dx     = layer.backward(params, cache, dy, dparams=None, need_dx=True, dx_out=None)

* ``params`` is a dict ``{name: array}`` of the layer's parameters (views into the network's
  one flat parameter vector, see :class:`minirl.nn.mlp.Sequential`); ``{}`` for activations.
* ``cache`` holds exactly what backward needs and nothing is kept in the layer object, so
  forward may be called any number of times before one backward.
* ``dy`` is dL/dy, ``dx`` is dL/dx, ``dparams[name]`` is dL/dparams[name] (same shapes).
* ``out``, ``dparams`` and ``dx_out`` are optional preallocated destinations (used by the
  network's workspace for speed); without them fresh arrays are returned.
* ``has_params``: whether the layer owns a slice of the flat vector; ``backward_in_place``:
  whether ``dx_out`` may be ``dy`` itself.
* ``need_dx=False`` skips the input gradient (the first layer of a network whose input is
  data, not a function of parameters).

Shapes: inputs are 2-D ``[B, D]``; networks reshape ``[T, N, D]`` rollouts to ``[T*N, D]``
before calling layers. Weights are stored ``[in, out]`` (transposed w.r.t. PyTorch's
``[out, in]``) so that ``x @ W`` reads as the math and needs no transpose.

Lecture: CS231n-style affine/activation layers (``affine_forward`` / ``affine_backward``).
"""
from __future__ import annotations

import functools
from typing import Mapping

import numpy as np

from kernels.activations import tanh_f32

Params = Mapping[str, np.ndarray]


class Linear:
    """Affine map ``y = x @ W + b``.

    Parameters: ``weight`` W ``[in_features, out_features]``, ``bias`` b ``[out_features]``.

    Forward:  y[B, out] = x[B, in] @ W + b
    Backward: dW = x^T @ dy          [in, out]
              db = sum_B dy          [out]
              dx = dy @ W^T          [B, in]
    """

    has_params = True
    backward_in_place = False    # dx has another shape than dy

    def __init__(self, in_features: int, out_features: int):
        if in_features < 1 or out_features < 1:
            raise ValueError(
                f"Linear needs in_features >= 1 and out_features >= 1, got "
                f"{in_features} and {out_features}")
        self.in_features = int(in_features)
        self.out_features = int(out_features)

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        """Parameter names and shapes, in their order in the flat vector."""
        return {"weight": (self.in_features, self.out_features), "bias": (self.out_features,)}

    def output_dim(self, in_dim: int) -> int:
        if in_dim != self.in_features:
            raise ValueError(f"Linear expects {self.in_features} input features, got {in_dim}")
        return self.out_features

    def forward(self, params: Params, x: np.ndarray, out: np.ndarray | None = None):
        """``y = x @ W + b``; cache is ``x`` (the input, needed for dW)."""
        y = np.matmul(x, params["weight"], out=out)   # [B, out]
        y += params["bias"]                             # bias added in place, no temporary
        return y, x

    def backward(self, params: Params, cache: np.ndarray, dy: np.ndarray, dparams=None,
                 need_dx: bool = True, dx_out: np.ndarray | None = None):
        """``dW = x^T dy``, ``db = sum_B dy``, ``dx = dy W^T`` (``None`` if not ``need_dx``)."""
        x = cache
        if dparams is None:
            dparams = {"weight": np.empty_like(params["weight"]),
                       "bias": np.empty_like(params["bias"])}
        if x.shape[0] == 1:      # an outer product: NumPy's matmul takes a slow path for k=1
            np.multiply(x.T, dy, out=dparams["weight"])  # [in, 1] * [1, out], same numbers
        else:
            np.matmul(x.T, dy, out=dparams["weight"])    # [in, B] @ [B, out]
        if dy.shape[0] >= 128:   # a BLAS gemv 1^T dy beats NumPy's axis-0 reduction (5x at 2048)
            np.matmul(_ones(dy.shape[0], dy.dtype), dy, out=dparams["bias"])
        else:
            np.add.reduce(dy, axis=0, out=dparams["bias"])
        if not need_dx:
            dx = None
        elif dy.shape[1] == 1:   # one output (a Q or V head): matmul's k=1 path is ~3x slower
            dx = np.multiply(dy, params["weight"].T, out=dx_out)   # [B, 1] * [1, in]
            dx += 0.0            # matmul sums onto +0, turning -0.0 products into +0.0: same bits
        else:
            dx = np.matmul(dy, params["weight"].T, out=dx_out)     # [B, out] @ [out, in]
        return dparams, dx


@functools.lru_cache(maxsize=16)
def _ones(n: int, dtype: np.dtype) -> np.ndarray:
    """A read-only vector of n ones (Linear's bias gradient 1^T dy), made once per (n, dtype):
    allocating it costs ~4 us, a tenth of a batch-256 Linear backward."""
    ones = np.ones(n, dtype)
    ones.flags.writeable = False
    return ones


@functools.lru_cache(maxsize=16)
def _zeros(n: int, dtype: np.dtype) -> np.ndarray:
    """A read-only vector of n zeros (ReLU's second operand), made once per (n, dtype)."""
    zeros = np.zeros(n, dtype)
    zeros.flags.writeable = False
    return zeros


def _tanh_via_exp(x: np.ndarray, out: np.ndarray | None) -> np.ndarray:
    """``tanh(x) = 2 / (1 + exp(-2x)) - 1`` in six in-place passes, for float64 arrays of 1024
    elements and more: NumPy's float64 tanh is not vectorized and costs ~2.5x an exp (AVX2).

    Agrees with ``np.tanh`` to within 2 ulp of 1 in absolute terms (not relative: for |x| << 1
    the result is x plus an absolute error ~1e-16, harmless next to matmul rounding).
    x is clipped at -20 first so exp(-2x) cannot overflow; tanh(-20) is -1 in float32 and float64.
    """
    y = np.maximum(x, -20.0, out=out)
    y *= -2.0
    np.exp(y, out=y)
    y += 1.0
    np.divide(2.0, y, out=y)
    y -= 1.0
    return y


class Tanh:
    """``y = tanh(x)``, element-wise.

    Backward uses the cached *output*: ``dx = dy * (1 - y^2)`` (no second tanh).
    """

    has_params = False
    backward_in_place = False   # dx_out must not be dy (dy is read after dx is written)

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        return {}

    def output_dim(self, in_dim: int) -> int:
        return in_dim

    def forward(self, params: Params, x: np.ndarray, out: np.ndarray | None = None):
        """``y = tanh(x)``; ``out=x`` is allowed (in place); cache is ``y``.

        float32: ``kernels.activations.tanh_f32`` (within 0.63 ulp of the exact tanh for
        every float32 input, ~2x faster than NumPy's float32 tanh here); float64: ``np.tanh``,
        or for 1024 elements and more the exp form above."""
        if x.dtype == np.float32:
            y = tanh_f32(x, out)
        elif x.dtype == np.float64 and x.size >= 1024:
            y = _tanh_via_exp(x, out)
        else:
            y = np.tanh(x, out=out)
        return y, y

    def backward(self, params: Params, cache: np.ndarray, dy: np.ndarray, dparams=None,
                 need_dx: bool = True, dx_out: np.ndarray | None = None):
        """``dx = dy - (dy * y) * y`` = ``dy * (1 - y^2)``; ``dx_out`` must not be ``dy``."""
        y = cache
        dx = np.multiply(dy, y, out=dx_out)   # three passes, no temporary when dx_out is given
        dx *= y
        np.subtract(dy, dx, out=dx)
        return {}, dx


class ReLU:
    """``y = max(x, 0)``, element-wise; the derivative at the kink x = 0 is taken as 0.

    Backward uses the cached output: ``dx = dy * (y > 0)``.
    """

    has_params = False
    backward_in_place = True    # dx_out=dy is allowed

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        return {}

    def output_dim(self, in_dim: int) -> int:
        return in_dim

    def forward(self, params: Params, x: np.ndarray, out: np.ndarray | None = None):
        """``y = max(x, 0)``; ``out=x`` is allowed (in place); cache is ``y``.

        From 1024 elements on, the 0 is a cached array of zeros of x's shape: NumPy 2's SIMD
        loop for ``maximum`` needs two contiguous arrays (a scalar 0 takes a ~3x slower
        loop at 256x256 float32); the result is the same bits (also for -0.0 and NaN)."""
        if x.size >= 1024 and x.flags.c_contiguous:
            zero = _zeros(x.size, x.dtype).reshape(x.shape)
        else:
            zero = 0
        y = np.maximum(x, zero, out=out)
        return y, y

    def backward(self, params: Params, cache: np.ndarray, dy: np.ndarray, dparams=None,
                 need_dx: bool = True, dx_out: np.ndarray | None = None):
        """``dx = dy * (y > 0)``; ``dx_out=dy`` is allowed."""
        y = cache
        dx = np.multiply(dy, y > 0, out=dx_out)
        return {}, dx


class Identity:
    """``y = x``; ``dx = dy``. Useful as an explicit linear output activation."""

    has_params = False
    backward_in_place = True    # dx_out=dy is allowed

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        return {}

    def output_dim(self, in_dim: int) -> int:
        return in_dim

    def forward(self, params: Params, x: np.ndarray, out: np.ndarray | None = None):
        """``y = x`` (a copy only if ``out`` is given and is not ``x``); no cache."""
        if out is not None and out is not x:
            np.copyto(out, x)
            return out, None
        return x, None

    def backward(self, params: Params, cache, dy: np.ndarray, dparams=None,
                 need_dx: bool = True, dx_out: np.ndarray | None = None):
        """``dx = dy``."""
        if dx_out is not None and dx_out is not dy:
            np.copyto(dx_out, dy)
            return {}, dx_out
        return {}, dy


#: Hidden-layer activations by config name (every agent's ``activation`` field).
ACTIVATIONS = {"tanh": Tanh, "relu": ReLU}
