"""The observation and action spaces users bring, mapped to what minirl's MLP policies use.

Observations: every network sees a flat float vector ``[obs_dim]``. gymnasium's own
``FlattenObservation`` wrapper does the flattening (around each sub-env of a vector env, see
``minirl.envs.make_vector_env``), with these rules (``gymnasium.spaces.flatten``):

| observation space                 | what the network sees                               |
|-----------------------------------|-----------------------------------------------------|
| Box, 1-D                          | as is                                               |
| Box, any other shape (not images) | flattened, row-major                                |
| Discrete(n, start)                | one-hot of length n (``x - start`` set to 1)        |
| MultiDiscrete(nvec)               | one one-hot per entry, concatenated (sum(nvec))     |
| MultiBinary(n)                    | the n bits as floats                                |
| Dict / Tuple of the above         | each part flattened, concatenated (Dict: key order) |

One-hot encoding is what makes the finite MDPs of the lectures (FrozenLake-v1, Taxi-v4,
CliffWalking-v1: ``Discrete`` states) usable by every agent: a linear layer on a one-hot input
is a table lookup, so the network can represent any tabular value function. Image
observations and the structured spaces gymnasium cannot flatten to a fixed size (Text, Graph,
Sequence) are rejected with ``UnsupportedSpaceError`` naming what is supported: minirl has no
convolutional layers. A Box is an image when it is one by Stable-Baselines3's rule
(``is_image_space``: dtype uint8 with every low 0 and every high 255) and of rank 2
(grayscale H x W), 3 (H x W x C or C x H x W) or 4 (a stack of such frames, e.g. gymnasium's
``FrameStackObservation``); any other Box -- float, other bounds, any rank -- is flattened.

Actions (``ActionAdapter``): the policy's distribution family, the shape of the actions the
rollout stores, and the map from a stored action to the env's action:

| action space               | distribution               | stored action | to the env            |
|----------------------------|----------------------------|---------------|-----------------------|
| Discrete(n, start)         | Categorical (n logits)     | int64 []      | a + start             |
| MultiDiscrete(nvec, start) | MultiCategorical           | int64 [K]     | a + start, reshaped   |
| MultiBinary(n)             | Bernoulli (n logits)       | int64 [n]     | int8, reshaped        |
| Box, finite bounds         | DiagGaussian (D means, log-std) | float [D] | clip or squash (below) |
| Box, an infinite bound     | refused: ``UnboundedActionSpaceError``                             |

Clip vs squash for a bounded Box: with ``"clip"`` (the default, as in Stable-Baselines3's
PPO/A2C) the Gaussian sample is stored unclipped and its log-probability is the Gaussian's;
only the env sees the clipped action, so all mass beyond a bound acts like the bound itself.
With ``"squash"`` the stored action is the pre-squash sample u and the env receives
``offset + scale * tanh(u)`` (exactly ``TanhGaussian``'s map): every action is inside the box
and the policy can put its mass near a bound without wasting it beyond. For ratio-based
losses this needs no new gradient: log pi(a|s) = log N(u; mu, sigma) - sum_d log|da_d/du_d|,
and the Jacobian term does not depend on the policy parameters, so ratios and score
gradients of the squashed policy equal the Gaussian's on u. The entropy bonus is then the
Gaussian's entropy of u (the squashed entropy has no closed form). Deterministic actions are
``TanhGaussian``'s mode, ``offset + scale * tanh(mean)``.

Lecture: Stanford CS224R, "Learning distributions with neural networks" (the network outputs a
distribution over the action space: categorical for discrete, Gaussian for continuous);
Haarnoja et al. (2018), "Soft Actor-Critic", arXiv:1801.01290, Appendix C (tanh squashing).
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from kernels._validate import clip_ufunc
from minirl.distributions import Bernoulli, Categorical, DiagGaussian, MultiCategorical

__all__ = [
    "UnsupportedSpaceError",
    "UnboundedActionSpaceError",
    "ACTION_BOUNDS",
    "check_observation_space",
    "needs_flattening",
    "flat_observation_space",
    "observation_dim",
    "flatten_observation_wrapper",
    "flatten_observation",
    "ActionAdapter",
]

ACTION_BOUNDS = ("clip", "squash")

# The ufunc np.clip(a, lo, hi) ends in for an array ``a`` (the same call, without the ~3 us of
# Python dispatch around it: ``to_env`` runs on every vector step).
_clip = clip_ufunc   # (kernels._validate: NumPy 1.x and 2.x)

SUPPORTED_OBS = ("Box of any shape except images (uint8 in [0, 255] of rank 2-4; the rest is "
                 "flattened), Discrete (one-hot), MultiDiscrete (one-hot per entry), "
                 "MultiBinary, and Dict/Tuple of these (flattened)")
SUPPORTED_ACTIONS = ("Discrete, MultiDiscrete, MultiBinary, and Box with finite bounds")


class UnsupportedSpaceError(TypeError):
    """An observation or action space minirl's MLP policies cannot handle (message says why)."""


class UnboundedActionSpaceError(UnsupportedSpaceError, ValueError):
    """An action Box with an infinite bound: neither clipping nor squashing has a target."""


# ----------------------------------------------------------------------------------------------
# Observations
# ----------------------------------------------------------------------------------------------


def _is_image(space: spaces.Box) -> bool:
    """Stable-Baselines3's ``is_image_space`` test (uint8, bounds exactly [0, 255]; channels
    not checked: frame stacks have any number), for ranks 2-4 (grayscale, H x W x C or
    C x H x W, stacked frames)."""
    return (2 <= len(space.shape) <= 4 and space.dtype == np.uint8
            and bool(np.all(space.low == 0)) and bool(np.all(space.high == 255)))


def check_observation_space(space: spaces.Space, name: str = "observation space") -> spaces.Space:
    """Return ``space`` if minirl can flatten it, else raise ``UnsupportedSpaceError``.

    Raises for images (a uint8 Box in [0, 255] of rank 2, 3 or 4: see the module docstring),
    for Text/Graph/Sequence/OneOf, and
    for any part of a Dict/Tuple that is one of those; the message names the offending
    (sub)space and lists what is supported.
    """
    if isinstance(space, spaces.Box):
        if _is_image(space):
            raise UnsupportedSpaceError(
                f"{name} {space} looks like an image (shape {space.shape}, {space.dtype}); "
                f"minirl's networks are MLPs without convolutions. Supported: {SUPPORTED_OBS}. "
                "Wrap the env to give a feature vector (e.g. a Box of rank 1).")
        return space
    if isinstance(space, (spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary)):
        return space
    if isinstance(space, spaces.Dict):
        for key, sub in space.spaces.items():
            check_observation_space(sub, f"{name}[{key!r}]")
        return space
    if isinstance(space, spaces.Tuple):
        for i, sub in enumerate(space.spaces):
            check_observation_space(sub, f"{name}[{i}]")
        return space
    raise UnsupportedSpaceError(f"{name} {space} is not supported. Supported: {SUPPORTED_OBS}.")


def needs_flattening(space: spaces.Space) -> bool:
    """True unless ``space`` is already a 1-D Box (checked first; raises if unsupported)."""
    check_observation_space(space)
    return not (isinstance(space, spaces.Box) and len(space.shape) == 1)


def flat_observation_space(space: spaces.Space) -> spaces.Box:
    """The 1-D Box the network sees for ``space`` (``gymnasium.spaces.flatten_space``)."""
    if not needs_flattening(space):
        return space
    return spaces.flatten_space(space)


def observation_dim(space: spaces.Space) -> int:
    """Length of the flat observation vector for ``space`` (e.g. Discrete(16) -> 16)."""
    return int(flat_observation_space(space).shape[0])


def flatten_observation_wrapper(env: gym.Env) -> gym.Env:
    """``env`` itself if its observations are 1-D Boxes, else gymnasium's FlattenObservation."""
    if not needs_flattening(env.observation_space):
        return env
    return gym.wrappers.FlattenObservation(env)


def flatten_observation(space: spaces.Space, obs) -> tuple[np.ndarray, bool]:
    """``(x [B, obs_dim] float64, single)`` for observations of ``space`` as users pass them.

    Accepted, tried in this order (``single`` says whether one observation was given):
      - for Dict/Tuple spaces, a dict (tuple) that is one raw observation, or a batch in
        gymnasium's vector-env format: every leaf with a leading dimension B (``{'a': [B, 2],
        'b': [B]}``); all leaves must agree (ValueError naming the leaf, e.g. ``obs['b']``);
      - one raw observation of ``space`` (an int for Discrete, an array of ``space.shape``
        otherwise);
      - a list of raw observations, or an array ``[B, *space.shape]`` (integers for Discrete);
      - already-flat input ``[obs_dim]`` or ``[B, obs_dim]`` (what the network sees); for a
        Discrete space it must be float, since an integer array means a batch of states.
    Raises ValueError naming ``obs`` when it fits none of these.
    """
    flat_dim = observation_dim(space)
    if isinstance(space, (spaces.Dict, spaces.Tuple)) and isinstance(obs, (dict, tuple)):
        B = _batch_size(space, obs, "obs")
        if B is None:
            return np.asarray(spaces.flatten(space, obs), dtype=np.float64)[None], True
        rows = [spaces.flatten(space, _row(space, obs, i)) for i in range(B)]
        return (np.stack(rows).astype(np.float64) if rows else np.zeros((0, flat_dim))), False
    if isinstance(obs, list):
        rows = [flatten_observation(space, o)[0] for o in obs]
        return (np.concatenate(rows) if rows else np.zeros((0, flat_dim))), False
    arr = np.asarray(obs)
    raw_ok = isinstance(space, (spaces.Box, spaces.MultiDiscrete, spaces.MultiBinary)) or (
        isinstance(space, spaces.Discrete) and arr.dtype.kind in "iu")
    if raw_ok and arr.shape == space.shape:
        _check_states(space, arr, "obs")
        return np.asarray(spaces.flatten(space, arr), dtype=np.float64)[None], True
    if raw_ok and arr.ndim == len(space.shape) + 1 and arr.shape[1:] == space.shape:
        _check_states(space, arr, "obs")
        if not needs_flattening(space):
            return arr.astype(np.float64), False
        return np.stack([spaces.flatten(space, o) for o in arr]).astype(np.float64), False
    if arr.ndim in (1, 2) and arr.shape[-1] == flat_dim and arr.dtype.kind in "fiub":
        return (arr[None] if arr.ndim == 1 else arr).astype(np.float64), arr.ndim == 1
    raise ValueError(f"obs must be an observation of {space}, a batch of them, or flat vectors "
                     f"of length {flat_dim}; got shape {arr.shape} ({arr.dtype})")


def _batch_size(space: spaces.Space, obs, name: str) -> int | None:
    """None if ``obs`` is one raw observation of ``space``, B if it is a batch of B in
    gymnasium's vector format (a leading dimension B on every leaf); ValueError naming the
    offending part of ``name`` (e.g. ``obs['pos']``) otherwise."""
    if isinstance(space, (spaces.Dict, spaces.Tuple)):
        if isinstance(space, spaces.Dict):
            if not isinstance(obs, dict) or set(obs) != set(space.spaces):
                got = sorted(map(str, obs)) if isinstance(obs, dict) else type(obs).__name__
                raise ValueError(f"{name} must be a dict with keys {sorted(space.spaces)} "
                                 f"(for {space}), got {got}")
            parts = [(f"{name}[{k!r}]", sub, obs[k]) for k, sub in space.spaces.items()]
        else:
            if not isinstance(obs, tuple) or len(obs) != len(space.spaces):
                got = (f"a tuple of {len(obs)}" if isinstance(obs, tuple)
                       else type(obs).__name__)
                raise ValueError(f"{name} must be a tuple of {len(space.spaces)} parts (for "
                                 f"{space}), got {got}")
            parts = [(f"{name}[{i}]", sub, o) for i, (sub, o) in enumerate(zip(space.spaces,
                                                                               obs))]
        sizes = [(n, _batch_size(sub, o, n)) for n, sub, o in parts]
        if len({b for _, b in sizes}) > 1:
            said = ", ".join(f"{n} {'one observation' if b is None else f'a batch of {b}'}"
                             for n, b in sizes)
            raise ValueError(f"{name}: every part must be one observation, or all batches of "
                             f"the same size B (leading dimension); got {said}")
        return sizes[0][1] if sizes else None
    arr = np.asarray(obs)
    if isinstance(space, spaces.Discrete):
        if arr.dtype.kind not in "iu" or arr.ndim > 1:
            raise ValueError(f"{name} must be an integer state of {space} or a [B] array of "
                             f"them, got shape {arr.shape} ({arr.dtype})")
        _check_states(space, arr, name)
        return None if arr.ndim == 0 else arr.shape[0]
    if arr.shape == space.shape:
        _check_states(space, arr, name)
        return None
    if arr.ndim == len(space.shape) + 1 and arr.shape[1:] == space.shape:
        _check_states(space, arr, name)
        return arr.shape[0]
    raise ValueError(f"{name} must have shape {space.shape} (one observation of {space}) or "
                     f"[B, *{space.shape}] (a batch), got shape {arr.shape}")


def _check_states(space: spaces.Space, arr: np.ndarray, name: str) -> None:
    """ValueError naming ``name`` unless the raw Discrete/MultiDiscrete observations ``arr``
    (one or a batch) are integers in [start, start + n): the one-hot index x - start must not
    wrap around (x = -1 would silently read as the last state)."""
    if not isinstance(space, (spaces.Discrete, spaces.MultiDiscrete)) or arr.size == 0:
        return
    if isinstance(space, spaces.Discrete):
        lo, n = np.int64(space.start), np.int64(space.n)
    else:
        lo, n = np.asarray(space.start, np.int64), np.asarray(space.nvec, np.int64)
    if arr.dtype.kind not in "iu":
        raise ValueError(f"{name} must hold integer states of {space}, got dtype {arr.dtype}")
    bad = (arr < lo) | (arr >= lo + n)
    if np.any(bad):
        raise ValueError(f"{name} must hold states in [start, start + n) of {space}, got "
                         f"{arr[bad].ravel()[:5].tolist()} outside")


def _row(space: spaces.Space, obs, i: int):
    """Observation ``i`` of a batch in gymnasium's vector format (see ``_batch_size``)."""
    if isinstance(space, spaces.Dict):
        return {k: _row(sub, obs[k], i) for k, sub in space.spaces.items()}
    if isinstance(space, spaces.Tuple):
        return tuple(_row(sub, o, i) for sub, o in zip(space.spaces, obs))
    return np.asarray(obs)[i]


# ----------------------------------------------------------------------------------------------
# Actions
# ----------------------------------------------------------------------------------------------


class ActionAdapter:
    """The policy head for an env's action ``space`` and the way back to the env.

    Attributes:
        kind        "categorical", "multi_categorical", "bernoulli" or "gaussian"
        head_dim    columns the network emits (logits or means)
        n_std       free log-std parameters (Box: D, else 0)
        shape       shape of one stored action ([] or [K] or [D])
        dtype       int64 for discrete kinds, the float dtype for Box
        bounds      "clip" or "squash" (Box only; see the module docstring)

    Methods: ``distribution(head, log_std)`` -> the policy distribution over stored actions;
    ``to_env(actions [B, *shape])`` -> env actions ``[B, *space.shape]`` (offset by ``start``,
    reshaped, clipped or squashed); ``deterministic(dist)`` -> the mode in stored-action form.
    """

    def __init__(self, space: spaces.Space, bounds: str = "clip", dtype=np.float32):
        if bounds not in ACTION_BOUNDS:
            raise ValueError(f"bounds must be one of {ACTION_BOUNDS}, got {bounds!r}")
        self.space, self.bounds = space, bounds
        self.float_dtype = np.dtype(dtype)
        self.n_std, self.shape, self.dtype = 0, (), np.dtype(np.int64)
        if isinstance(space, spaces.Discrete):
            self.kind, self.head_dim = "categorical", int(space.n)
            self.start = int(space.start)
        elif isinstance(space, spaces.MultiDiscrete):
            self.kind = "multi_categorical"
            self.nvec = np.asarray(space.nvec, dtype=np.int64).reshape(-1)
            self.start = np.asarray(space.start, dtype=np.int64).reshape(-1)
            self.head_dim, self.shape = int(self.nvec.sum()), (self.nvec.size,)
        elif isinstance(space, spaces.MultiBinary):
            self.kind = "bernoulli"
            k = int(np.prod(space.shape))
            self.head_dim, self.shape = k, (k,)
        elif isinstance(space, spaces.Box):
            low, high = (np.asarray(b, dtype=np.float64).reshape(-1)
                         for b in (space.low, space.high))
            if not (np.isfinite(low).all() and np.isfinite(high).all()):
                raise UnboundedActionSpaceError(
                    f"action space {space} has an infinite bound; minirl clips or squashes "
                    "Gaussian actions into the box, so it needs finite low and high (wrap the "
                    "env with gymnasium.wrappers.RescaleAction or ClipAction to a finite box)")
            self.kind = "gaussian"
            self.head_dim = self.n_std = low.size
            self.shape, self.dtype = (low.size,), self.float_dtype
            self.low, self.high = low, high
            # high/2 -+ low/2 == (high -+ low)/2 bit for bit, but finite for any finite box
            # (Box(-1e308, 1e308): high - low overflows to inf and squashed actions to NaN)
            self.scale, self.offset = high / 2.0 - low / 2.0, high / 2.0 + low / 2.0
            # The bounds in the env's float dtype when they are exactly its values (always for
            # a float32 Box): clipping actions of that dtype in it picks the same element (x,
            # low or high) as clipping in float64 and casting back, without the casts.
            env_dtype = np.dtype(space.dtype)
            self._bounds_as_env = None
            if env_dtype == np.float32:   # (float16's clip loop keeps the action's zero at a
                # +-0 bound where the float64 clip gives the bound's: only float32 is exact)
                lo, hi = low.astype(env_dtype), high.astype(env_dtype)
                if np.array_equal(lo, low) and np.array_equal(hi, high):
                    self._bounds_as_env = env_dtype, lo, hi
        else:
            raise UnsupportedSpaceError(f"action space {space} is not supported. "
                                        f"Supported: {SUPPORTED_ACTIONS}.")

    def __repr__(self) -> str:
        extra = f", bounds={self.bounds!r}" if self.kind == "gaussian" else ""
        return f"ActionAdapter({self.space}, kind={self.kind!r}{extra})"

    def distribution(self, head: np.ndarray, log_std: np.ndarray | None = None, trusted=True):
        """The policy distribution for network outputs ``head`` [B, head_dim] (and log_std)."""
        if self.kind == "categorical":
            return Categorical._trusted(head) if trusted else Categorical(head)
        if self.kind == "multi_categorical":
            return (MultiCategorical._trusted(head, self.nvec) if trusted
                    else MultiCategorical(head, self.nvec))
        if self.kind == "bernoulli":
            return Bernoulli._trusted(head) if trusted else Bernoulli(head)
        return DiagGaussian(head, log_std)

    def to_env(self, actions: np.ndarray) -> np.ndarray:
        """Stored actions ``[B, *shape]`` -> what ``env.step`` takes, ``[B, *space.shape]``."""
        actions = np.asarray(actions)
        kind, space, B = self.kind, self.space, actions.shape[0]
        if kind == "gaussian":
            if self.bounds == "squash":   # TanhGaussian's map u -> offset + scale tanh(u)
                a = self.offset + self.scale * np.tanh(actions)
                a = _clip(a, self.low, self.high)    # tanh rounding to +-1 in float32
            elif (self._bounds_as_env is not None and actions.dtype == self._bounds_as_env[0]
                  and actions.flags.c_contiguous):   # (a strided float32 clip may keep -0.0)
                a = _clip(actions, self._bounds_as_env[1], self._bounds_as_env[2])
            else:
                a = _clip(actions, self.low, self.high)
            a = a.astype(space.dtype, copy=False)
            # (a reshape to the shape a has already is a no-op: skipped)
            return a if a.shape[1:] == space.shape else a.reshape((B, *space.shape))
        if kind == "categorical":
            return actions + self.start if self.start else actions
        if kind == "multi_categorical":
            return (actions + self.start).reshape((B, *space.shape))
        return actions.astype(space.dtype).reshape((B, *space.shape))    # bernoulli

    def from_env(self, env_actions) -> np.ndarray:
        """Env actions ``[B, *space.shape]`` -> stored actions (inverse of ``to_env`` where it
        exists; for a squashed Box, atanh of the rescaled action, clipped 1e-6 inside the box).
        For imitation data and tests."""
        a = np.asarray(env_actions)
        B = a.shape[0]
        if self.kind == "categorical":
            return a.astype(np.int64) - self.start
        if self.kind == "multi_categorical":
            return a.reshape(B, -1).astype(np.int64) - self.start
        if self.kind == "bernoulli":
            return a.reshape(B, -1).astype(np.int64)
        a = a.reshape(B, -1).astype(np.float64)
        if self.bounds == "squash":
            y = np.clip((a - self.offset) / self.scale, -1 + 1e-6, 1 - 1e-6)
            a = np.arctanh(y)
        return a.astype(self.float_dtype)

    def mode(self, dist) -> np.ndarray:
        """The deterministic stored action of ``dist`` (its mode; for "squash" the mean of u,
        which ``to_env`` maps to TanhGaussian's mode offset + scale tanh(mean))."""
        return dist.mode()
