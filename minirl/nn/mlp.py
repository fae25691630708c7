"""Networks as a chain of layers whose parameters live in ONE flat vector.

A :class:`Sequential` (and its convenience subclass :class:`MLP`) holds only the architecture
(layers, dtype, the layout of the flat vector); parameters are a separate 1-D array that the
caller owns:

    net = MLP([4, 64, 64, 2], activation=Tanh)          # layers 0 Linear, 1 Tanh, 2 Linear, ...
    params = net.init(rng, out_gain=0.01)               # [net.n_params] float64
    net.views(params)["2.weight"]                       # [64, 64] view into params
    y, cache = net.forward(params, obs)                 # obs [B, 4] or [T, N, 4] -> y [..., 2]
    dparams, dobs = net.backward(params, cache, dy)     # dparams [n_params], dobs like obs

Because everything is one vector, optimizers, finite differences, Polyak averaging and
gradient-free search (CEM/ES/ARS) act on ``params`` directly, gradients come back in the same
layout, and copying or loading a network is copying that vector.

Forward/backward contract (nothing hidden in the object):

* ``forward`` may be called any number of times before one ``backward``; each cache is
  self-contained. By default every call allocates its outputs.
* Opt-in speed: pass ``workspace=net.workspace()`` to forward. Buffers are then preallocated
  per batch size and reused; everything returned (``y``, and the ``dx`` of the matching
  backward) is *borrowed* until the next forward or backward at the same batch size with that
  workspace (copy it to keep it).
  A backward whose cache has been overwritten that way raises ``RuntimeError`` instead of
  returning wrong numbers.
* The cache references the input ``x`` (for dW of the first layer): do not modify ``x`` in
  place between forward and backward.
* dtype: float64 by default; ``dtype=np.float32`` makes params, buffers and computation float32
  (inputs are cast once on entry).

Shapes: x ``[..., in_dim]`` -> y ``[..., out_dim]``; any leading shape (``[B]``, ``[T, N]``,
or none) is flattened to ``[M, in_dim]`` by one reshape and restored on the way out.
"""
from __future__ import annotations

from typing import Callable, NamedTuple, Sequence

import numpy as np

from kernels.activations import tanh_f32
from minirl.nn.init import orthogonal
from minirl.nn.layers import Linear, Tanh

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


class ValueRangeError(ValueError):
    """A finite input (an observation or a reward) beyond the agent's float dtype: bad input,
    not a diverged run (the CLI reports it as a failure naming the value)."""


def check_cast(cast: np.ndarray, source, name: str = "x") -> None:
    """ValueError naming the first entry of ``source`` that is finite but became +-inf in
    ``cast`` (``source`` cast to a narrower float dtype: a float64 observation of 1e39 is
    beyond float32's largest value 3.4e38). Unchecked, the inf would travel through a network
    and be reported later as a diverged run or a NaN Q-value.

    Costs one finiteness pass over ``cast``, and only when the cast narrowed a float dtype
    (float64 -> float32); NaN/inf already in ``source`` are left to the caller's own check.
    ``cast`` and ``source`` have the same shape; the message gives the index in it.
    """
    src_dtype = getattr(source, "dtype", None)
    if src_dtype is None or src_dtype.kind != "f" or src_dtype.itemsize <= cast.dtype.itemsize:
        return
    if np.isfinite(cast).all():                           # the common case: one pass
        return
    bad = ~np.isfinite(cast) & np.isfinite(source)
    if not bad.any():
        return
    i = np.unravel_index(int(np.flatnonzero(bad)[0]), bad.shape)
    rescale = ("the rewards (an env wrapper)" if name.startswith("reward") else
               "the observations (an env wrapper, or --set normalize_obs=true for the agents "
               "that have it)")
    raise ValueRangeError(
        f"{name}[{', '.join(str(int(k)) for k in i)}] = {float(source[i]):.6g} is beyond the "
        f"range of {cast.dtype} (largest finite {np.finfo(cast.dtype).max:.4g}), the dtype of "
        f"the agent's networks and buffers, where it would become {cast[i]}: train with "
        f"--set dtype=float64 (config dtype='float64') or rescale {rescale}")


def cast_checked(x, dtype, name: str = "x") -> np.ndarray:
    """``np.asarray(x, dtype)`` (the same values), refusing a finite value the cast turns into
    +-inf with :func:`check_cast`'s ValueError naming ``name``, the index and the value."""
    source = np.asarray(x)
    out = np.asarray(source, dtype=dtype)
    check_cast(out, source, name)
    return out


class ForwardCache(NamedTuple):
    """What ``Sequential.backward`` needs from one ``forward`` call."""

    layer_caches: list          # one cache per layer, in forward order
    lead_shape: tuple           # leading shape of x (restored on dx)
    workspace: "Workspace | None"
    batch: int                  # M = prod(lead_shape)
    generation: int             # workspace generation at forward time (0 without workspace)


class Workspace:
    """Preallocated forward/backward buffers for one network, keyed by batch size M.

    Created by ``net.workspace()`` and passed explicitly to ``net.forward``; never implicit.
    A forward with this workspace overwrites the buffers of its batch size and invalidates
    every earlier cache of that batch size made with it.
    """

    def __init__(self, net: "Sequential"):
        self.net = net
        self._buffers: dict[int, tuple[list, list]] = {}
        self._generation: dict[int, int] = {}

    def buffers(self, batch: int) -> tuple[list, list]:
        """``(forward_outs, backward_dxs)``: per-layer arrays for batch size ``batch``."""
        bufs = self._buffers.get(batch)
        if bufs is None:
            net, dt = self.net, self.net.dtype
            fwd, bwd, dim = [], [], net.in_dim
            for layer in net.layers:
                out_dim = layer.output_dim(dim)
                # Linear writes a fresh buffer; activations then work in place on it.
                fwd.append(np.empty((batch, out_dim), dt) if layer.has_params else None)
                bwd.append(np.empty((batch, dim), dt))
                dim = out_dim
            bufs = self._buffers[batch] = (fwd, bwd)
        return bufs

    def _advance(self, batch: int) -> int:
        gen = self._generation.get(batch, 0) + 1
        self._generation[batch] = gen
        return gen

    def _is_current(self, batch: int, generation: int) -> bool:
        return self._generation.get(batch, 0) == generation


class Sequential:
    """A chain of layers ``y = f_L(... f_2(f_1(x)))`` with one flat parameter vector.

    Parameter names are ``"<layer index>.<param name>"`` (``"0.weight"``, ``"0.bias"``,
    ``"2.weight"``, ...), laid out in layer order, each parameter C-contiguous in the vector.
    ``layers`` is a tuple: layers are replaced only all at once, by assigning ``layers`` (with
    the same parameter shapes), which also renews the per-call bookkeeping below (which layer
    types ``forward`` runs inline).
    """

    def __init__(self, layers: Sequence, dtype=np.float64):
        self.layers = layers      # (the setter: a tuple, and forward/backward's bookkeeping)
        if not self.layers:
            raise ValueError("Sequential needs at least one layer")
        self.dtype = np.dtype(dtype)
        if self.dtype not in _FLOATS:
            raise TypeError(f"dtype must be float32 or float64, got {self.dtype}")
        first = next((l for l in self.layers if isinstance(l, Linear)), None)
        if first is None:
            raise ValueError("Sequential needs at least one Linear layer to know its input size")
        # Layout of the flat vector: per layer, a list of (name, start, stop, shape).
        self.in_dim = first.in_features
        self._slots: list[list[tuple[str, int, int, tuple]]] = []
        self.layout: list[tuple[str, int, int, tuple]] = []
        dim, offset = self.in_dim, 0
        for i, layer in enumerate(self.layers):
            slots = []
            for name, shape in layer.param_shapes().items():
                size = int(np.prod(shape))
                slots.append((name, offset, offset + size, tuple(shape)))
                self.layout.append((f"{i}.{name}", offset, offset + size, tuple(shape)))
                offset += size
            self._slots.append(slots)
            dim = layer.output_dim(dim)
        self.out_dim = dim
        self.n_params = offset
        self._view_memo: list[tuple[np.ndarray, int, list[dict]]] = []

    @property
    def layers(self) -> tuple:
        """The layers, in order (a tuple; assign a new sequence to replace them all)."""
        return self._layers

    @layers.setter
    def layers(self, layers) -> None:
        self._layers = tuple(layers)
        # For forward/backward's per-call bookkeeping (a batch-1 forward is ~10 us of NumPy,
        # so a microsecond of Python per call matters): the first layer that has parameters
        # (no gradient flows past it without need_dx), and one None per layer (no workspace).
        self._first_param_layer = next((i for i, l in enumerate(self._layers) if l.has_params),
                                       0)
        self._no_outs = (None,) * len(self._layers)
        # Layers whose forward runs inline in ``forward`` (their own operations, without the
        # call): 1 = Linear, 2 = Tanh (exact types: a subclass may override forward), else 0.
        self._kinds = tuple(1 if type(l) is Linear else 2 if type(l) is Tanh else 0
                            for l in self._layers)

    # ----- the flat vector -----------------------------------------------------------------

    def views(self, params: np.ndarray) -> dict[str, np.ndarray]:
        """``{"<i>.<name>": view}``: writable views into ``params`` (or into a gradient)."""
        params = self._check_params(params)
        return {name: params[a:b].reshape(shape) for name, a, b, shape in self.layout}

    def _layer_params(self, flat: np.ndarray) -> list[dict[str, np.ndarray]]:
        """Per-layer ``{name: view}`` dicts into ``flat`` (params or a gradient buffer).

        Building them costs ~4 us, a third of a batch-1 forward+backward, so the last few are
        memoized by the array's identity or, failing that (a fresh slice ``big[a:b]`` of a
        larger vector is a new object each time), by its data address. This is not hidden
        state: ``flat`` is checked to be C-contiguous with the network's length and dtype, so
        the same address means the same views; holding a reference to ``flat`` keeps its memory
        (and so its address) from being reused by another array.
        """
        memo = self._view_memo
        for i, (arr, _, dicts) in enumerate(memo):
            if arr is flat:
                if i > 1:    # least recently used goes first: a training loop's fresh params
                    memo.insert(0, memo.pop(i))  # each step must not evict the gradient
                return dicts                     # buffer's views (rebuilt every 6th step)
        address = flat.__array_interface__["data"][0]
        for _, addr, dicts in memo:
            if addr == address:
                return dicts
        dicts = [{name: flat[a:b].reshape(shape) for name, a, b, shape in slots}
                 for slots in self._slots]
        self._view_memo.insert(0, (flat, address, dicts))
        del self._view_memo[6:]          # params, slices of an agent's vector, gradients, ...
        return dicts

    def _check_params(self, params: np.ndarray, name: str = "params") -> np.ndarray:
        if not isinstance(params, np.ndarray) or params.shape != (self.n_params,):
            raise ValueError(f"{name} must be a 1-D array of length {self.n_params}, got "
                             f"{getattr(params, 'shape', type(params).__name__)}")
        if params.dtype != self.dtype:
            raise TypeError(f"{name} must have the network's dtype {self.dtype}, got "
                            f"{params.dtype} (use {name}.astype(net.dtype))")
        if not params.flags.c_contiguous:    # views must alias it, not copy
            raise ValueError(f"{name} must be contiguous (a strided slice cannot hold views)")
        return params

    def zeros(self) -> np.ndarray:
        """A zero vector in the parameter layout (``[n_params]``, the network's dtype)."""
        return np.zeros(self.n_params, self.dtype)

    def init(self, rng: np.random.Generator, *, weight_init: Callable = orthogonal,
             gains: Sequence[float] | None = None, hidden_gain: float = float(np.sqrt(2.0)),
             out_gain: float = 1.0) -> np.ndarray:
        """Fresh parameters: weights from ``weight_init``, biases zero.

        ``gains`` gives one gain per Linear layer (in order); by default every Linear but the
        last gets ``hidden_gain`` (sqrt 2) and the last gets ``out_gain`` (PPO: 0.01 for a
        policy head, 1.0 for a value head). ``weight_init(shape, rng=, gain=, dtype=)`` is
        any initializer from :mod:`minirl.nn.init`. Returns ``[n_params]`` of ``self.dtype``.
        """
        linears = [i for i, l in enumerate(self.layers) if l.has_params]
        if gains is None:
            gains = [hidden_gain] * (len(linears) - 1) + [out_gain]
        gains = list(gains)
        if len(gains) != len(linears):
            raise ValueError(f"gains needs one entry per parametrized layer ({len(linears)}), "
                             f"got {len(gains)}")
        params = np.zeros(self.n_params, self.dtype)
        layer_gain = dict(zip(linears, gains))
        for i, slots in enumerate(self._slots):
            for name, a, b, shape in slots:
                if name == "weight":
                    w = weight_init(shape, rng=rng, gain=layer_gain[i], dtype=np.float64)
                    params[a:b] = w.ravel()
                # biases (and any other parameter) stay zero
        return params

    def workspace(self) -> Workspace:
        """A new opt-in buffer set for ``forward(..., workspace=...)``."""
        return Workspace(self)

    # ----- forward / backward ---------------------------------------------------------------

    def forward(self, params: np.ndarray, x, workspace: Workspace | None = None):
        """``y = f(x)`` and the cache for :meth:`backward`.

        x: ``[..., in_dim]`` (cast to the network's dtype) -> y: ``[..., out_dim]``.
        With a ``workspace``, ``y`` is a borrowed buffer (see the module docstring).
        """
        if not (type(params) is np.ndarray and params.dtype == self.dtype   # the usual case,
                and params.shape == (self.n_params,) and params.flags.c_contiguous):  # inline
            params = self._check_params(params)
        if type(x) is not np.ndarray or x.dtype != self.dtype:   # (same dtype: nothing to cast)
            x = cast_checked(x, self.dtype, "network input x")   # (1e39 -> float32: named)
        shape = x.shape
        if not shape or shape[-1] != self.in_dim:
            raise ValueError(f"x must have shape [..., {self.in_dim}], got {shape}")
        lead = shape[:-1]
        h = x if len(shape) == 2 else x.reshape(-1, self.in_dim)   # [M, in_dim], one reshape
        batch = h.shape[0]
        if workspace is not None:
            if workspace.net is not self:
                raise ValueError("workspace belongs to a different network")
            outs = workspace.buffers(batch)[0]              # None for activations
            generation = workspace._advance(batch)
        else:
            outs, generation = self._no_outs, 0
        caches, owned = [], False                           # owned: h is ours to overwrite
        for layer, p, out, kind in zip(self._layers, self._layer_params(params), outs,
                                       self._kinds):
            if kind == 1:                                   # Linear, inline: y = x W + b
                h_new = np.matmul(h, p["weight"], out=out)
                h_new += p["bias"]
                caches.append(h)                            # (its cache: the input)
                owned, h = True, h_new
                continue
            if not layer.has_params and owned:
                out = h                                     # activations work in place
                if kind == 2 and h.dtype == np.float32:     # Tanh in place, inline
                    caches.append(tanh_f32(h, h))
                    continue
            h_new, cache = layer.forward(p, h, out=out)
            caches.append(cache)
            owned = owned or h_new is not h                 # Identity passes x through
            h = h_new
        y = h if len(shape) == 2 else h.reshape(*lead, self.out_dim)
        return y, ForwardCache(caches, lead, workspace, batch, generation)

    def backward(self, params: np.ndarray, cache: ForwardCache, dy, *, need_dx: bool = True,
                 out: np.ndarray | None = None):
        """Vector-Jacobian products: ``(dparams, dx)`` from ``dy = dL/dy``.

        dy: same shape as forward's ``y``. Returns ``dparams`` ``[n_params]`` (written into
        ``out`` if given, else a new array) in the same layout as ``params``, and
        ``dx`` = dL/dx with the shape of forward's ``x`` (``None`` if ``need_dx=False``,
        which also skips that matrix product). ``dy`` is not modified.
        """
        n = self.n_params
        if not (type(params) is np.ndarray and params.dtype == self.dtype
                and params.shape == (n,) and params.flags.c_contiguous):
            params = self._check_params(params)
        ws = cache.workspace
        if ws is not None and not ws._is_current(cache.batch, cache.generation):
            raise RuntimeError(
                "this cache's workspace buffers were overwritten by a later forward with the "
                "same workspace and batch size; call backward before the next forward, or "
                "use a second workspace (or none)")
        if type(dy) is not np.ndarray or dy.dtype != self.dtype:
            dy = np.asarray(dy, dtype=self.dtype)
        if dy.shape != (*cache.lead_shape, self.out_dim):
            raise ValueError(f"dy must have shape {(*cache.lead_shape, self.out_dim)}, "
                             f"got {dy.shape}")
        g = dy if dy.ndim == 2 else dy.reshape(-1, self.out_dim)   # [M, out_dim]
        if out is None:
            out = np.empty(n, self.dtype)
        elif not (type(out) is np.ndarray and out.dtype == self.dtype and out.shape == (n,)
                  and out.flags.c_contiguous):
            self._check_params(out, "out")
        dxs = ws.buffers(cache.batch)[1] if ws is not None else self._no_outs
        grads = self._layer_params(out)
        layer_params = self._layer_params(params)
        layers, layer_caches = self._layers, cache.layer_caches
        owned = False                                        # g is ours to overwrite
        first = 0 if need_dx else self._first_param_layer   # no gradient flows past it
        for i in range(len(layers) - 1, first - 1, -1):
            layer = layers[i]
            dx_out = dxs[i]
            if dx_out is None and owned and layer.backward_in_place:
                dx_out = g                                   # ReLU/Identity: in place
            _, g_new = layer.backward(layer_params[i], layer_caches[i], g, dparams=grads[i],
                                      need_dx=need_dx or i > first, dx_out=dx_out)
            owned = owned or g_new is not g                  # Identity passes dy through
            g = g_new
        dx = g.reshape(*cache.lead_shape, self.in_dim) if need_dx else None
        return out, dx


class MLP(Sequential):
    """Multi-layer perceptron ``sizes[0] -> sizes[1] -> ... -> sizes[-1]``.

    Layers: ``Linear, activation, Linear, activation, ..., Linear[, out_activation]``, so the
    Linear layers have even indices (``"0.weight"``, ``"2.weight"``, ...). ``activation`` and
    ``out_activation`` are layer classes (``Tanh``, ``ReLU``, ``Identity``); the output is
    linear unless ``out_activation`` is given.
    """

    def __init__(self, sizes: Sequence[int], activation=Tanh, out_activation=None,
                 dtype=np.float64):
        sizes = [int(s) for s in sizes]
        if len(sizes) < 2:
            raise ValueError(f"sizes needs an input and an output size, got {sizes}")
        layers = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(Linear(a, b))
            if i < len(sizes) - 2:
                layers.append(activation())
        if out_activation is not None:
            layers.append(out_activation())
        super().__init__(layers, dtype=dtype)
        self.sizes = sizes

    def __repr__(self) -> str:
        act = type(self.layers[1]).__name__ if len(self.layers) > 1 else "-"
        return f"MLP({self.sizes}, activation={act}, dtype={self.dtype}, n_params={self.n_params})"
