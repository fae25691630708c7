"""Replay buffers for off-policy agents: uniform, prioritized, and n-step transitions.

A preallocated ring buffer fed from a ``gymnasium.vector`` env: one ``add`` call stores one
vector step (N transitions, one per env). Storage is ``[L, N, ...]`` with ``L = capacity //
num_envs`` slots per env, flattened to ``[L * N, ...]`` with flat index ``i = t * N + env``:
each env's transitions form their own stream ``t = 0 .. L-1`` (ring), so an n-step window
follows one env's stream and never mixes two envs. All envs share one write cursor ``pos``.

What is stored per transition (the lecture's ``(s, a, r, s', done)`` with done split in two)::

    obs[t, j], actions[t, j], rewards[t, j], next_obs[t, j], terminated[t, j], truncated[t, j]

``next_obs`` is the TRUE next observation: at an autoreset step (SAME_STEP mode) the caller
passes ``infos["final_obs"]``, never the reset observation; so a truncated transition can
bootstrap from ``Q(s_{t+1})``.

Sampling (indices from ``kernels.replay``; slot ``pos`` is never sampled uniformly, see there):

* uniform 1-step: ``t ~ kernels.replay.uniform_indices``, ``env ~ U{0..N-1}``.
* n-step (``sample_nstep``): from a start ``(t, j)`` the window ``t, t+1, ..`` of stream j
  stops at the first of: n steps, the first step with ``terminated | truncated`` (included),
  or the newest stored transition (the window never crosses the write cursor; stopping there
  is the rollout-end case of ``kernels.nstep``: bootstrap from its true next obs). An agent
  that resets its envs with episodes unfinished (each ``learn`` call) first calls
  ``end_episodes``, which flags each stream's newest transition truncated, so no window runs
  from a cut episode into the next one. With m the steps taken::

      returns   = sum_{k<m} gamma^k r_{t+k}              (kernels.nstep.nstep_targets, V = 0)
      discounts = gamma^m * (1 - terminated_{t+m-1})     (0: the window ended in a terminal)
      next_obs  = next_obs_{t+m-1}
      target    = returns + discounts * max_a Q'(next_obs, a)

* prioritized (``PrioritizedReplayBuffer``): ``P(i) = p_i / sum_k p_k`` with ``p_i =
  (|delta_i| + eps)^alpha``, new transitions at the running max priority, importance weights
  ``w_i = (size * P(i))^(-beta) / max_j w_j`` (``kernels.replay.SumTree``, ``per_weights``).

Lecture: Stanford CS224R, "Off-Policy Actor-Critic Methods, Version 2: Replay buffers";
Q-learning tutorial "N-step returns" and "Practical Implementation Details: Replay Buffers".
Paper: Mnih et al. (2015), "Human-level control through deep RL" (experience replay); Schaul
et al. (2016), "Prioritized Experience Replay", arXiv:1511.05952; Hessel et al. (2018),
"Rainbow", arXiv:1710.02298 (n-step replay).
"""
from __future__ import annotations

import math
import numbers
from typing import NamedTuple

import numpy as np

from kernels.nstep import nstep_targets
from kernels.replay import SumTree, per_weights, uniform_indices
from minirl.nn.mlp import check_cast

__all__ = ["Transitions", "NStepTransitions", "ReplayBuffer", "PrioritizedReplayBuffer"]


class Transitions(NamedTuple):
    """A batch of 1-step transitions (B = batch size)."""

    obs: np.ndarray           # [B, *obs_shape]
    actions: np.ndarray       # [B, *action_shape]
    rewards: np.ndarray       # [B]
    next_obs: np.ndarray      # [B, *obs_shape], the true s_{t+1}
    terminated: np.ndarray    # [B] bool: no bootstrap
    truncated: np.ndarray     # [B] bool: bootstrap from next_obs
    indices: np.ndarray       # [B] int64 flat slots t * num_envs + env (for update_priorities)
    weights: np.ndarray       # [B] importance weights (all 1 for uniform sampling)


class NStepTransitions(NamedTuple):
    """A batch of n-step transitions; ``target = returns + discounts * V(next_obs)``."""

    obs: np.ndarray           # [B, *obs_shape], s_t
    actions: np.ndarray       # [B, *action_shape], a_t
    returns: np.ndarray       # [B] sum_{k<m} gamma^k r_{t+k}
    next_obs: np.ndarray      # [B, *obs_shape], the true s_{t+m}
    discounts: np.ndarray     # [B] gamma^m, or 0 if the window ended by termination
    terminated: np.ndarray    # [B] bool, the flag of the window's last step
    truncated: np.ndarray     # [B] bool, the flag of the window's last step
    steps: np.ndarray         # [B] int64, m in 1..n
    indices: np.ndarray       # [B] int64 flat start slots
    weights: np.ndarray       # [B] importance weights (all 1 for uniform sampling)


def _count(x, name: str, minimum: int = 1) -> int:
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(x).__name__}")
    if int(x) < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {x}")
    return int(x)


def _real(x, name: str, lo: float, hi: float = math.inf) -> float:
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(x).__name__}")
    x = float(x)
    if not lo <= x <= hi:
        raise ValueError(f"{name} must be in [{lo}, {hi}], got {x}")
    return x


class ReplayBuffer:
    """Uniform replay over per-env ring streams (see the module docstring).

    Args:
        capacity: total number of transitions kept (``capacity // num_envs`` per env, >= 2).
        obs_shape: shape of one observation, e.g. ``(4,)``.
        action_shape: shape of one action, ``()`` for Discrete.
        action_dtype: e.g. ``np.int64`` (Discrete) or ``np.float32`` (Box).
        num_envs: N, the number of envs of each ``add`` call.
        dtype: float dtype of stored observations and rewards.

    Raises:
        ValueError/TypeError naming the argument for invalid arguments.
    """

    def __init__(self, capacity: int, obs_shape: tuple, action_shape: tuple, action_dtype,
                 num_envs: int = 1, dtype=np.float32):
        capacity = _count(capacity, "capacity")
        self.num_envs = _count(num_envs, "num_envs")
        self.slots = capacity // self.num_envs            # L, per env
        if self.slots < 2:
            raise ValueError(f"capacity={capacity} must hold >= 2 transitions per env "
                             f"(num_envs={self.num_envs})")
        self.capacity = self.slots * self.num_envs
        self.obs_shape = tuple(int(d) for d in obs_shape)
        self.action_shape = tuple(int(d) for d in action_shape)
        self.action_dtype = np.dtype(action_dtype)
        self.dtype = np.dtype(dtype)
        if self.dtype.kind != "f":
            raise TypeError(f"dtype must be a float dtype, got {self.dtype}")
        if self.action_dtype.kind not in "iuf":
            raise TypeError(f"action_dtype must be an integer or float dtype, got "
                            f"{self.action_dtype}")
        n = self.capacity
        self.obs = np.zeros((n, *self.obs_shape), self.dtype)
        self.next_obs = np.zeros((n, *self.obs_shape), self.dtype)
        self.actions = np.zeros((n, *self.action_shape), self.action_dtype)
        self.rewards = np.zeros(n, self.dtype)
        self.terminated = np.zeros(n, bool)
        self.truncated = np.zeros(n, bool)
        self.pos = 0            # next time slot to write (shared by all envs)
        self.steps = 0          # time slots filled, <= slots
        self._ones = {}

    # ----------------------------------------------------------------------- bookkeeping
    @property
    def size(self) -> int:
        """Transitions stored (all envs)."""
        return self.steps * self.num_envs

    def __len__(self) -> int:
        return self.size

    @property
    def sampleable(self) -> int:
        """Transitions ``sample`` may return (uniform sampling skips slot ``pos``)."""
        return min(self.steps, self.slots - 1) * self.num_envs

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(capacity={self.capacity}, size={self.size}, "
                f"num_envs={self.num_envs}, obs_shape={self.obs_shape})")

    # ----------------------------------------------------------------------- writing
    @staticmethod
    def _check(x, name: str, shape: tuple, kind: str) -> np.ndarray:
        arr = np.asarray(x)
        if arr.shape != shape:
            raise ValueError(f"{name} must have shape {shape}, got {arr.shape}")
        if arr.dtype.kind not in kind:
            raise ValueError(f"{name} has dtype {arr.dtype}; expected kind {kind!r}")
        return arr

    def add(self, obs, actions, rewards, next_obs, terminated, truncated) -> None:
        """Store one vector step: ``obs [N, *obs_shape]``, ``actions [N, *action_shape]``,
        ``rewards [N]``, ``next_obs [N, *obs_shape]`` (the TRUE next obs, final_obs at an
        autoreset), ``terminated [N]`` and ``truncated [N]`` bool. Observations may be bool,
        integer or float; they are stored in the buffer's float ``dtype``.

        A block of T steps may be added at once with time-major ``[T, N, ...]`` arrays (T <=
        slots per env), e.g. a dataset. Raises ValueError naming the argument for a wrong
        shape or dtype, or NaN/inf in rewards or observations.
        """
        N = self.num_envs
        lead = np.shape(rewards)
        if len(lead) == 1:
            T, block = 1, False
        elif len(lead) == 2:
            T, block = lead[0], True
        else:
            raise ValueError(f"rewards must have shape [N={N}] or [T, N={N}], got {lead}")
        lead = (T, N) if block else (N,)
        fl = "iuf" if self.action_dtype.kind == "f" else "iu"
        # bool/integer observations (a Box of dtype bool or int) are stored as the float dtype
        # the agents feed their networks (True -> 1.0), as the on-policy rollouts do
        obs = self._check(obs, "obs", (*lead, *self.obs_shape), "biuf")
        next_obs = self._check(next_obs, "next_obs", (*lead, *self.obs_shape), "biuf")
        actions = self._check(actions, "actions", (*lead, *self.action_shape), fl)
        rewards = self._check(rewards, "rewards", lead, "iuf")
        terminated = self._check(terminated, "terminated", lead, "b")
        truncated = self._check(truncated, "truncated", lead, "b")
        if not np.isfinite(rewards).all():
            raise ValueError("rewards contain NaN or inf")
        check_cast(rewards.astype(self.rewards.dtype, copy=False), rewards, "rewards")
        # one finiteness pass, over the observations as stored (the buffer's dtype): NaN/inf,
        # or a finite value beyond that dtype (1e39 -> inf in float32), named by check_cast
        stored = obs.astype(self.dtype, copy=False), next_obs.astype(self.dtype, copy=False)
        if not (np.isfinite(stored[0]).all() and np.isfinite(stored[1]).all()):
            if not (np.isfinite(obs).all() and np.isfinite(next_obs).all()):
                raise ValueError("obs or next_obs contain NaN or inf")
            check_cast(stored[0], obs, "obs")
            check_cast(stored[1], next_obs, "next_obs")
        obs, next_obs = stored
        if T > self.slots:
            raise ValueError(f"a block of T={T} steps exceeds the {self.slots} slots per env")
        if T == 0:
            return
        start = self.pos * N
        if not block:                                   # the hot path: one vector step
            sl = slice(start, start + N)
            self.obs[sl] = obs
            self.next_obs[sl] = next_obs
            self.actions[sl] = actions
            self.rewards[sl] = rewards
            self.terminated[sl] = terminated
            self.truncated[sl] = truncated
            flat = None
        else:
            flat = (((self.pos + np.arange(T)) % self.slots)[:, None] * N
                    + np.arange(N)).reshape(-1)
            self.obs[flat] = obs.reshape(T * N, *self.obs_shape)
            self.next_obs[flat] = next_obs.reshape(T * N, *self.obs_shape)
            self.actions[flat] = actions.reshape(T * N, *self.action_shape)
            self.rewards[flat] = rewards.reshape(-1)
            self.terminated[flat] = terminated.reshape(-1)
            self.truncated[flat] = truncated.reshape(-1)
        self._written(start, T, flat)
        self.pos = (self.pos + T) % self.slots
        self.steps = min(self.steps + T, self.slots)

    def end_episodes(self) -> None:
        """End every env's running episode at its newest stored transition: flag it
        ``truncated`` (unless it is terminated).

        For callers that reset the envs with episodes unfinished (an agent's next ``learn``
        call, a resumed run): the next ``add`` starts a new episode in each stream, and without
        the flag an n-step window starting in the last n - 1 steps of the cut episode would
        run on into it (adding its rewards, bootstrapping from its states). The flag is the
        truth: the episode was cut there, and that transition's stored ``next_obs`` is the
        true s_{t+1}, so a window stopping at it bootstraps from the right state. 1-step
        targets do not read ``truncated`` (they bootstrap either way): unchanged. No-op on an
        empty buffer.
        """
        if self.steps == 0:
            return
        newest = ((self.pos - 1) % self.slots) * self.num_envs + np.arange(self.num_envs)
        self.truncated[newest] |= ~self.terminated[newest]

    def _written(self, start: int, T: int, flat) -> None:
        """Hook for subclasses: slots just written (``flat`` or ``start .. start + N``)."""

    # ----------------------------------------------------------------------- sampling
    def _check_batch(self, batch_size) -> int:
        batch_size = _count(batch_size, "batch_size")
        if self.steps == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        usable = self.sampleable
        if batch_size > usable:
            raise ValueError(f"batch_size={batch_size} is more than the {usable} sampleable "
                             f"transitions stored")
        return batch_size

    def _uniform(self, batch_size: int, rng) -> np.ndarray:
        """Flat indices ``t * N + env``, uniform over the sampleable transitions."""
        t = uniform_indices(rng, self.steps, batch_size, capacity=self.slots, pos=self.pos)
        if self.num_envs == 1:
            return t
        return t * self.num_envs + rng.integers(0, self.num_envs, batch_size)

    def _ones_like(self, batch_size: int) -> np.ndarray:
        w = self._ones.get(batch_size)
        if w is None:
            w = self._ones[batch_size] = np.ones(batch_size, self.dtype)
            w.flags.writeable = False
        return w

    def sample(self, batch_size: int, rng: np.random.Generator,
               batches: int | None = None) -> Transitions:
        """``batch_size`` transitions drawn uniformly with replacement; weights all 1.

        ``batches=K``: K batches at once, every field ``[K, batch_size, ...]``: the same
        draws and rows as K calls in a row (for a learner that changes neither the buffer nor
        draws from ``rng`` between its K updates).

        Raises ValueError if the buffer is empty or holds fewer sampleable transitions than
        ``batch_size``.
        """
        batch_size = self._check_batch(batch_size)
        if batches is not None:
            idx = self._uniform_batches(batch_size, rng, batches)
            return self._gather(idx, np.ones(idx.shape, self.dtype))
        idx = self._uniform(batch_size, rng)
        return self._gather(idx, self._ones_like(batch_size))

    def _uniform_batches(self, batch_size: int, rng, batches) -> np.ndarray:
        """``[K, batch_size]`` flat indices: K ``_uniform`` draws in a row."""
        return np.stack([self._uniform(batch_size, rng)
                         for _ in range(_count(batches, "batches"))])

    def _gather(self, idx: np.ndarray, weights: np.ndarray) -> Transitions:
        return Transitions(self.obs.take(idx, axis=0), self.actions.take(idx, axis=0),
                           self.rewards.take(idx), self.next_obs.take(idx, axis=0),
                           self.terminated.take(idx), self.truncated.take(idx), idx, weights)

    def sample_nstep(self, batch_size: int, rng: np.random.Generator, n: int,
                     gamma: float, batches: int | None = None) -> NStepTransitions:
        """n-step transitions (see the module docstring); ``n = 1`` equals :meth:`sample`'s
        transitions with ``discounts = gamma * (1 - terminated)``. ``batches=K``: K batches
        at once, fields ``[K, batch_size, ...]``, as :meth:`sample`.

        Returns ``NStepTransitions``; raises ValueError as :meth:`sample`, and for ``n < 1``
        or ``gamma`` outside [0, 1].
        """
        batch_size = self._check_batch(batch_size)
        if batches is not None:      # the K batches' windows computed together, then split
            idx = self._uniform_batches(batch_size, rng, batches)
            flat = self._nstep(idx.reshape(-1), n, gamma, np.ones(idx.size, self.dtype))
            return NStepTransitions(*(f.reshape(*idx.shape, *f.shape[1:]) for f in flat))
        return self._nstep(self._uniform(batch_size, rng), n, gamma,
                           self._ones_like(batch_size))

    def _nstep(self, idx: np.ndarray, n, gamma, weights) -> NStepTransitions:
        n = _count(n, "n")
        gamma = _real(gamma, "gamma", 0.0, 1.0)
        N, L = self.num_envs, self.slots
        t0, env = np.divmod(idx, N)
        # steps available before the window would pass the newest transition (slot pos - 1)
        avail = (self.pos - 1 - t0) % L + 1                              # [B]
        k = np.arange(n)
        win = ((t0[:, None] + k) % L) * N + env[:, None]                 # [B, n] flat slots
        term = self.terminated[win]
        trunc = self.truncated[win]
        clip = k == (np.minimum(avail, n) - 1)[:, None]                  # newest in reach
        stop = term | trunc | clip
        m = stop.argmax(axis=1) + 1                                      # first stop, 1-based
        # The kernel on the window as a time-major rollout [n, B]: with next_values = 0 it
        # returns sum_{k<m} gamma^k r_{t+k}; the clip acts as a truncation (stop, bootstrap).
        rew = np.ascontiguousarray(self.rewards[win].T)
        returns = nstep_targets(rew, np.zeros_like(rew), np.ascontiguousarray(term.T),
                                np.ascontiguousarray((trunc | clip).T), gamma, n)[0]
        last = win[np.arange(len(idx)), m - 1]
        term_last = self.terminated[last]
        discounts = np.where(term_last, 0.0, gamma ** m.astype(np.float64)).astype(self.dtype)
        return NStepTransitions(self.obs.take(idx, axis=0), self.actions.take(idx, axis=0),
                                returns.astype(self.dtype, copy=False),
                                self.next_obs.take(last, axis=0), discounts, term_last,
                                self.truncated[last], m.astype(np.int64), idx, weights)

    # ----------------------------------------------------------------------- save / load
    _STORAGE = ("obs", "next_obs", "actions", "rewards", "terminated", "truncated")

    def state_arrays(self) -> dict[str, np.ndarray]:
        """Every array needed to restore the buffer: the filled slots of the storage
        (``obs [size, *obs_shape]``, ...) and ``cursor`` = [pos, steps]. The filled slots are
        the first ``size`` flat slots (the ring is written from slot 0 on and wraps only once
        full), so a checkpoint holds what was stored, not the preallocated capacity (views,
        no copies)."""
        n = self.size
        out = {name: getattr(self, name)[:n] for name in self._STORAGE}
        out["cursor"] = np.array([self.pos, self.steps], dtype=np.int64)
        return out

    def set_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        """Restore from :meth:`state_arrays`: the filled slots, or the whole storage
        ``[capacity, ...]`` as files saved it before only the filled slots were saved.
        ValueError naming a missing/mismatched array or a cursor out of range."""
        for name in (*self._STORAGE, "cursor"):
            if name not in arrays:
                raise ValueError(f"replay state is missing the array {name!r}")
        cursor = np.asarray(arrays["cursor"])
        if cursor.shape != (2,) or cursor.dtype != np.int64:
            raise ValueError(f"replay array 'cursor' must be int64(2,), got "
                             f"{cursor.dtype}{cursor.shape}")
        pos, steps = (int(v) for v in cursor)
        # (until the ring is full, the next slot to write is the number filled)
        if not (0 <= pos < self.slots and 0 <= steps <= self.slots) \
                or (steps < self.slots and pos != steps):
            raise ValueError(f"replay cursor {pos, steps} is out of range")
        n = steps * self.num_envs
        for name in self._STORAGE:
            a, ref = np.asarray(arrays[name]), getattr(self, name)
            if a.dtype != ref.dtype or a.shape not in ((n, *ref.shape[1:]), ref.shape):
                raise ValueError(f"replay array {name!r} must be {ref.dtype}"
                                 f"{(n, *ref.shape[1:])} (the {n} filled slots), got "
                                 f"{a.dtype}{a.shape}")
        held = self.size                                  # slots this buffer has filled
        for name in self._STORAGE:
            a, dst = np.asarray(arrays[name]), getattr(self, name)
            if a.shape == dst.shape:                      # the whole storage (an older file)
                np.copyto(dst, a)
            else:
                dst[:n] = a
                dst[n:held] = 0                           # (zeros as in a fresh buffer)
        self.pos, self.steps = pos, steps


class PrioritizedReplayBuffer(ReplayBuffer):
    """Prioritized replay (Schaul et al. 2016, arXiv:1511.05952) over the same storage.

    ``P(i) = p_i / sum_k p_k``, ``p_i = (|delta_i| + eps)^alpha``; a new transition gets the
    largest priority seen so far (1 at the start), so it is replayed at least once soon.
    ``sample(batch_size, rng, beta)`` returns importance weights ``w_i = (size * P(i))^-beta /
    max_j w_j`` (max over the whole buffer, ``SumTree.min``); anneal beta from ``beta0`` to 1
    (:func:`minirl.objectives.q_learning.linear_schedule`). Stratified sampling: one draw in
    each of ``batch_size`` equal segments of the total priority.

    Unbiased: with beta = 1 (up to the max normalization); biased towards large |delta| else.
    """

    def __init__(self, capacity: int, obs_shape: tuple, action_shape: tuple, action_dtype,
                 num_envs: int = 1, dtype=np.float32, alpha: float = 0.6, beta0: float = 0.4,
                 eps: float = 1e-6):
        super().__init__(capacity, obs_shape, action_shape, action_dtype, num_envs, dtype)
        self.alpha = _real(alpha, "alpha", 0.0)
        self.beta0 = _real(beta0, "beta0", 0.0, 1.0)
        self.eps = _real(eps, "eps", 0.0)
        if not self.eps > 0:
            raise ValueError(f"eps must be > 0, got {eps}")
        self.tree = SumTree(self.capacity)
        self.max_priority = 1.0

    @property
    def sampleable(self) -> int:
        return self.size

    def _written(self, start: int, T: int, flat) -> None:
        idx = np.arange(start, start + self.num_envs) if flat is None else flat
        self.tree.update(idx, self.max_priority)

    def _check_batch(self, batch_size) -> int:
        batch_size = _count(batch_size, "batch_size")
        if self.steps == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        if batch_size > self.size:
            raise ValueError(f"batch_size={batch_size} is more than the {self.size} "
                             f"transitions stored")
        return batch_size

    def _prioritized(self, batch_size: int, rng, beta) -> tuple[np.ndarray, np.ndarray]:
        beta = self.beta0 if beta is None else _real(beta, "beta", 0.0)
        idx, prio = self.tree.sample(batch_size, rng)
        w = per_weights(prio, self.tree.total, self.size, beta, min_priority=self.tree.min)
        return idx, w.astype(self.dtype)

    def sample(self, batch_size: int, rng: np.random.Generator,
               beta: float | None = None) -> Transitions:
        """Prioritized draw with importance weights (``beta`` default ``beta0``)."""
        batch_size = self._check_batch(batch_size)
        return self._gather(*self._prioritized(batch_size, rng, beta))

    def sample_nstep(self, batch_size: int, rng: np.random.Generator, n: int, gamma: float,
                     beta: float | None = None) -> NStepTransitions:
        """Prioritized n-step draw: start slots by priority, windows as in the base class."""
        batch_size = self._check_batch(batch_size)
        idx, w = self._prioritized(batch_size, rng, beta)
        return self._nstep(idx, n, gamma, w)

    def update_priorities(self, indices, td_errors) -> None:
        """``p_i <- (|delta_i| + eps)^alpha`` for the sampled ``indices`` (flat slots)."""
        idx = np.asarray(indices)
        delta = np.asarray(td_errors, dtype=np.float64)
        if idx.shape != delta.shape or idx.ndim != 1:
            raise ValueError(f"indices {idx.shape} and td_errors {delta.shape} must be equal "
                             "1-D shapes")
        if idx.dtype.kind not in "iu":
            raise ValueError(f"indices must be integers, got dtype {idx.dtype}")
        if not np.isfinite(delta).all():
            raise ValueError("td_errors contain NaN or inf")
        if idx.size and (idx.min() < 0 or idx.max() >= self.capacity):
            raise ValueError(f"indices must be in [0, capacity={self.capacity})")
        p = (np.abs(delta) + self.eps) ** self.alpha
        self.tree.update(idx, p)
        if p.size:
            self.max_priority = max(self.max_priority, float(p.max()))

    def state_arrays(self) -> dict[str, np.ndarray]:
        out = super().state_arrays()
        out["priorities"] = self.tree.priorities[:self.size]   # (0 in every slot not filled)
        out["max_priority"] = np.array([self.max_priority])
        return out

    def set_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        super().set_state_arrays({k: v for k, v in arrays.items()
                                  if k not in ("priorities", "max_priority")})
        for name, shapes in (("priorities", ((self.size,), (self.capacity,))),
                             ("max_priority", ((1,),))):
            if name not in arrays or np.shape(arrays[name]) not in shapes:
                raise ValueError(f"replay state needs {name!r} of shape {shapes[0]}")
        p = np.zeros(self.capacity)
        p[:len(arrays["priorities"])] = arrays["priorities"]
        self.tree = SumTree(self.capacity)
        self.tree.update(np.arange(self.capacity), p)
        self.max_priority = float(arrays["max_priority"][0])
