"""Adapters that time the same operation in a peer library (SB3, Tianshou, cpprb).

Every adapter takes plain NumPy input in minirl's convention and returns a zero-argument
callable that runs the peer's operation on data prepared once, or ``None`` when the peer is not
installed (peers are optional: ``python3 tasks.py bench --peers`` installs them).

minirl's convention (STYLE.md, principle 2)::

    rewards, values, next_values, terminated, truncated : [T, N]   (time-major)
    values[t]      = V(s_t)
    next_values[t] = V(true s_{t+1})       (the pre-reset observation when the episode ended)
    terminated     stops bootstrapping;  terminated | truncated  stops the recursion

What counts as the timed part: whatever a user of the peer library has to do *on every call*
(converting the peer's inputs, building its masks, copying into its layout) is inside the
callable; what happens once per run or is part of collecting the data (allocating and filling
a buffer) is done here, outside the callable. Each adapter's docstring says which is which, and
how minirl's ``terminated``/``truncated`` map onto the peer's flags, so that a timing compares
the same arithmetic.

Each GAE / n-step callable also carries ``fn.as_minirl()``: it runs the callable once and
returns the peer's result in minirl's layout (``[T, N]`` float64), for cross-checks. It is never
part of a timing.

Threads: ``benchmarks/__init__`` pins ``OMP_NUM_THREADS`` etc. to 1 before anything is
imported, which torch honours at import; every adapter that imports torch also calls
``torch.set_num_threads(1)`` (see ``pin_torch_threads``), because torch's intra-op pool is
sized at first use and a process that imported torch before the benchmarks package would
otherwise use every core. Importing this module is cheap: the peers are imported lazily, inside
the adapters.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from benchmarks._harness import optional_import

Fn = Callable[[], object]


# ----------------------------------------------------------------------------------------------
# helpers

def torch_available() -> bool:
    """True if torch imports (SB3 needs it; Tianshou imports it too)."""
    return optional_import("torch") is not None


def pin_torch_threads() -> None:
    """``torch.set_num_threads(1)`` if torch is installed: every timing here is single-threaded."""
    torch = optional_import("torch")
    if torch is not None and torch.get_num_threads() != 1:
        torch.set_num_threads(1)


def _peer(module: str):
    """Import a peer (pinning torch's threads first, since the peers import torch)."""
    pin_torch_threads()
    return optional_import(module)


def _rollout(rewards, values, next_values, terminated, truncated):
    """Check minirl's ``[T]``/``[T, N]`` rollout convention; return ``[T, N]`` float64/bool
    copies."""
    out = []
    for name, x, dt in (("rewards", rewards, np.float64), ("values", values, np.float64),
                        ("next_values", next_values, np.float64),
                        ("terminated", terminated, np.bool_), ("truncated", truncated, np.bool_)):
        x = np.array(x, dtype=dt)
        x = x[:, None] if x.ndim == 1 else x
        if x.ndim != 2 or (out and x.shape != out[0].shape):
            raise ValueError(f"{name} must have the shape of rewards, [T, N]; got {x.shape}")
        out.append(x)
    return out


def _env_major(x: np.ndarray) -> np.ndarray:
    """``[T, N]`` -> ``[N*T]`` with each env's steps contiguous (Tianshou's buffer layout)."""
    return np.ascontiguousarray(x.T).ravel()


def _time_major(flat: np.ndarray, T: int, N: int) -> np.ndarray:
    """Inverse of ``_env_major``: ``[N*T]`` -> ``[T, N]`` float64."""
    return np.asarray(flat, dtype=np.float64).reshape(N, T).T.copy()


# ----------------------------------------------------------------------------------------------
# GAE

def sb3_gae(rewards, values, next_values, terminated, truncated, gamma: float,
            lam: float) -> Fn | None:
    """Stable-Baselines3 ``RolloutBuffer.compute_returns_and_advantage`` on a ``[T, N]`` rollout.

    Peer code: ``stable_baselines3.common.buffers.RolloutBuffer`` (buffer_size=T, n_envs=N,
    float32 storage, a Python loop over T with NumPy ops over N).

    Mapping of minirl's flags onto SB3's (the peer's semantics differ, so the data is adapted
    the way SB3's own ``collect_rollouts`` adapts it, once, at fill time):

    * ``episode_starts[t+1] = terminated[t] | truncated[t]`` (SB3 stores "this obs starts an
      episode", i.e. the previous step ended; ``episode_starts[0]`` is never read by the GAE).
    * SB3 takes the bootstrap value from ``values[t+1]`` (the *next row*), not from a
      ``next_values`` array; on an episode-free stretch these are the same number, after an
      episode end SB3 masks it with ``1 - episode_starts[t+1]``.
    * ``last_values = next_values[T-1]`` (a torch tensor, as SB3's policy returns it) and
      ``dones = terminated[T-1] | truncated[T-1]``.
    * Truncation: SB3's recursion bootstraps nothing after any ``done``. SB3 itself patches the
      reward of a truncated step in ``collect_rollouts`` (``rewards += gamma * V(terminal_obs)``);
      we do the same once here (``rewards + gamma * (truncated & ~terminated) * next_values``,
      as SB3 patches only steps that were truncated and not terminated), which makes
      ``delta_t = r_t + gamma * V(s_{t+1}) - V(s_t)`` at truncation, exactly minirl's.
      With that patch the result equals minirl's GAE up to float32 rounding.

    Timed: the call ``rb.compute_returns_and_advantage(last_values, dones)`` (it includes SB3's
    per-call ``last_values.clone().cpu().numpy()``). One-off: building and filling the buffer,
    the reward patch. The call is idempotent (it overwrites ``rb.advantages``/``rb.returns``).
    """
    sb3_buffers = _peer("stable_baselines3.common.buffers")
    if sb3_buffers is None:
        return None
    import torch
    from gymnasium import spaces

    rewards, values, next_values, terminated, truncated = _rollout(
        rewards, values, next_values, terminated, truncated)
    T, N = rewards.shape
    done = terminated | truncated
    rb = sb3_buffers.RolloutBuffer(
        T, spaces.Box(-1.0, 1.0, (1,), np.float32), spaces.Discrete(2),
        device="cpu", gae_lambda=lam, gamma=gamma, n_envs=N)
    # Filling is data collection, not part of the GAE call: write SB3's arrays directly
    # (what N calls of rb.add would leave behind).
    # SB3's truncation patch (collect_rollouts: done and TimeLimit.truncated, which SB3's
    # VecEnv sets only when the step was not also terminated).
    rb.rewards[:] = rewards + gamma * (truncated & ~terminated) * next_values
    rb.values[:] = values
    rb.episode_starts[0] = 0.0
    rb.episode_starts[1:] = done[:-1]
    rb.pos, rb.full = T, True
    last_values = torch.as_tensor(next_values[-1], dtype=torch.float32)
    dones = done[-1].copy()

    def fn():
        rb.compute_returns_and_advantage(last_values, dones)

    def as_minirl():
        fn()
        return rb.advantages.astype(np.float64)

    fn.as_minirl = as_minirl
    return fn


def _tianshou_gae_kernel_fn():
    """Tianshou's Numba GAE kernel, wherever the installed version keeps it.

    Tianshou >= 2.0: ``tianshou.algorithm.algorithm_base._gae``; 0.5 - 1.x:
    ``tianshou.policy.base._gae_return``; older: ``tianshou.policy.base._episodic_return``.
    All take ``(v_s, v_s_, rew, end_flag, gamma, gae_lambda)`` and return the advantages.
    """
    for module, name in (("tianshou.algorithm.algorithm_base", "_gae"),
                         ("tianshou.policy.base", "_gae_return")):
        mod = _peer(module)
        if mod is not None and hasattr(mod, name):
            return getattr(mod, name), f"{module}.{name}"
    return None, None


def tianshou_gae_kernel(rewards, values, next_values, terminated, truncated, gamma: float,
                        lam: float) -> Fn | None:
    """Tianshou's Numba GAE kernel alone (``_gae`` in 2.x, ``_gae_return`` in 0.5-1.x).

    Signature ``kernel(v_s, v_s_, rew, end_flag, gamma, gae_lambda)`` on 1-D arrays over the
    whole buffer: ``delta = rew + gamma * v_s_ - v_s``, ``A_i = delta_i + gamma*lam*(1 -
    end_flag_i) * A_{i+1}``.

    Mapping (this is what Tianshou's own ``compute_episodic_return`` does, here done once):

    * layout: Tianshou's ``VectorReplayBuffer`` keeps each env's steps contiguous, so the
      ``[T, N]`` arrays are flattened env-major (``x.T.ravel()``) -- one rollout of T*N steps;
    * ``v_s = values``, ``v_s_ = next_values * ~terminated`` (Tianshou's ``value_mask``: the
      bootstrap is kept at truncation, dropped at termination);
    * ``end_flag = terminated | truncated``, plus True at the last step of every env (Tianshou's
      ``unfinished_index``), so the recursion stops at env boundaries and bootstraps from
      ``next_values[T-1]`` there -- exactly minirl's semantics, no difference.

    Timed: the kernel call only (it allocates its output and the ``delta``/``discount`` temps).
    One-off: flattening, masking, end flags (see ``tianshou_gae_public`` for the per-call path).
    """
    kernel, _ = _tianshou_gae_kernel_fn()
    if kernel is None:
        return None
    rewards, values, next_values, terminated, truncated = _rollout(
        rewards, values, next_values, terminated, truncated)
    T, N = rewards.shape
    end = terminated | truncated
    end[-1, :] = True  # unfinished episodes at the end of the rollout
    v_s = _env_major(values)
    v_s_ = _env_major(next_values * ~terminated)
    rew, end_flag = _env_major(rewards), _env_major(end)

    def fn():
        return kernel(v_s, v_s_, rew, end_flag, gamma, lam)

    fn.as_minirl = lambda: _time_major(fn(), T, N)
    return fn


def tianshou_gae_public(rewards, values, next_values, terminated, truncated, gamma: float,
                        lam: float) -> Fn | None:
    """Tianshou's public GAE path: ``Algorithm.compute_episodic_return(batch, buffer, ...)``.

    (Tianshou 2.x; ``BasePolicy.compute_episodic_return`` in 0.5-1.x, same arguments.)
    This is what Tianshou's A2C/PPO call once per update, after the critic has produced
    ``v_s`` and ``v_s_`` as NumPy arrays.

    Mapping: a ``VectorReplayBuffer(T*N, N)`` is filled step by step with ``rew``,
    ``terminated``, ``truncated`` (Tianshou 2.x keeps them apart, like minirl);
    ``batch, indices = buffer.sample(0)`` gives the whole buffer env-major; ``v_s = values`` and
    ``v_s_ = next_values`` flattened the same way. Tianshou then masks ``v_s_`` with
    ``~terminated`` and sets ``end_flag = terminated | truncated | unfinished`` itself -- the same
    semantics as minirl's ``terminated``/``truncated``.

    Timed: ``compute_episodic_return`` (per call it flattens ``v_s``/``v_s_``, builds the value
    mask, ``end_flag``, ``np.isin(indices, buffer.unfinished_index())``, runs the kernel and adds
    ``v_s`` for the returns). One-off: filling the buffer, ``buffer.sample(0)``, flattening the
    critic outputs (in Tianshou they come out of the critic already flat).
    """
    data = _peer("tianshou.data")
    if data is None:
        return None
    algo = None
    for module, cls in (("tianshou.algorithm.algorithm_base", "Algorithm"),
                        ("tianshou.policy.base", "BasePolicy")):
        mod = optional_import(module)
        if mod is not None and hasattr(getattr(mod, cls, None), "compute_episodic_return"):
            algo = getattr(mod, cls)
            break
    if algo is None:
        return None
    rewards, values, next_values, terminated, truncated = _rollout(
        rewards, values, next_values, terminated, truncated)
    T, N = rewards.shape
    buf = data.VectorReplayBuffer(T * N, N)
    zeros_obs, zeros_act, ids = np.zeros((N, 1)), np.zeros(N, dtype=np.int64), np.arange(N)
    for t in range(T):
        buf.add(data.Batch(obs=zeros_obs, act=zeros_act, rew=rewards[t],
                           terminated=terminated[t], truncated=truncated[t],
                           obs_next=zeros_obs, info=data.Batch()), buffer_ids=ids)
    batch, indices = buf.sample(0)
    v_s, v_s_ = _env_major(values), _env_major(next_values)

    def fn():
        return algo.compute_episodic_return(batch, buf, indices, v_s_=v_s_, v_s=v_s,
                                            gamma=gamma, gae_lambda=lam)

    def as_minirl():
        _, adv = fn()
        flat = np.empty(T * N)
        flat[indices] = adv
        return _time_major(flat, T, N)

    fn.as_minirl = as_minirl
    return fn


def tianshou_gae(rewards, values, next_values, terminated, truncated, gamma: float,
                 lam: float) -> dict[str, Fn] | None:
    """Both Tianshou GAE variants, labelled: ``{"tianshou kernel": ..., "tianshou public": ...}``.

    See ``tianshou_gae_kernel`` (the Numba kernel alone) and ``tianshou_gae_public``
    (``compute_episodic_return`` with its per-call preparation). None if Tianshou is missing.
    """
    args = (rewards, values, next_values, terminated, truncated, gamma, lam)
    out = {"tianshou kernel": tianshou_gae_kernel(*args),
           "tianshou public": tianshou_gae_public(*args)}
    out = {k: v for k, v in out.items() if v is not None}
    return out or None


# ----------------------------------------------------------------------------------------------
# n-step returns

def tianshou_nstep(rewards, next_values, terminated, truncated, gamma: float,
                   n: int) -> Fn | None:
    """Tianshou's Numba n-step kernel ``_nstep_return`` for every step of a ``[T, N]`` rollout.

    Computes, for each start t (k = steps up to and including the first episode end, at most n,
    never past the rollout end)::

        G_t = sum_{i<k} gamma^i r_{t+i} + gamma^k * (1 - terminated_{t+k-1}) * next_values_{t+k-1}

    which is minirl's n-step return with ``terminated`` (no bootstrap) and ``truncated`` (stop
    the sum, bootstrap from the pre-reset value) kept apart.

    Tianshou 2.x signature: ``_nstep_return(rew_B, end_flag_B, target_q_IA, stacked_indices_NI,
    gamma, n_step)`` (0.5-1.x had ``(rew, end_flag, target_q, indices, gamma, n_step)`` with the
    same meaning). Mapping, as ``Algorithm.compute_nstep_return`` prepares it:

    * buffer = the rollout flattened env-major (I = B = T*N, every step is a start);
    * ``end_flag_B = terminated | truncated``, True at each env's last step (``unfinished_index``);
    * ``stacked_indices_NI[j] = next^j(i)`` with ``next(i) = i`` at an end flag, else ``i + 1``
      (``buffer.next``);
    * ``target_q_IA = (next_values * ~terminated)[stacked_indices_NI[-1]]`` as ``[I, 1]`` (the
      target network's value of ``obs_next`` at the last index, times ``value_mask``).

    Timed: the kernel call only. One-off: everything above, which in Tianshou's
    ``compute_nstep_return`` also runs per call (n-1 ``buffer.next`` calls, the target network,
    ``value_mask``) -- so this is a kernel-to-kernel comparison.
    """
    mod = _peer("tianshou.algorithm.algorithm_base") or _peer("tianshou.policy.base")
    kernel = getattr(mod, "_nstep_return", None) if mod is not None else None
    if kernel is None:
        return None
    rewards, _, next_values, terminated, truncated = _rollout(
        rewards, rewards, next_values, terminated, truncated)
    T, N = rewards.shape
    end = terminated | truncated
    end[-1, :] = True
    rew_B, end_B = _env_major(rewards), _env_major(end)
    idx = np.arange(T * N)
    stacked = [idx]
    for _ in range(n - 1):
        cur = stacked[-1]
        stacked.append(np.where(end_B[cur], cur, cur + 1))
    stacked_NI = np.stack(stacked)
    target_q_IA = _env_major(next_values * ~terminated)[stacked_NI[-1]].reshape(-1, 1)

    def fn():
        return kernel(rew_B, end_B, target_q_IA, stacked_NI, gamma, n)

    fn.as_minirl = lambda: _time_major(fn().ravel(), T, N)
    return fn


# ----------------------------------------------------------------------------------------------
# replay buffers and segment trees

def _cpprb_env_dict(obs_dim: int) -> dict:
    return {"obs": {"shape": obs_dim}, "act": {"shape": 1, "dtype": np.int64}, "rew": {},
            "next_obs": {"shape": obs_dim}, "done": {}}


def _cpprb_fill(rb, buffer_size: int, obs_dim: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    rb.add(obs=rng.standard_normal((buffer_size, obs_dim)),
           act=rng.integers(0, 4, (buffer_size, 1)),
           rew=rng.standard_normal(buffer_size),
           next_obs=rng.standard_normal((buffer_size, obs_dim)),
           done=rng.random(buffer_size) < 0.01)


def cpprb_uniform_sample(buffer_size: int = 100_000, obs_dim: int = 4, batch_size: int = 256,
                         seed: int = 0) -> Fn | None:
    """cpprb ``ReplayBuffer.sample(batch_size)`` on a full buffer of ``buffer_size`` transitions.

    Fields ``obs [obs_dim], act [1] int64, rew, next_obs [obs_dim], done`` (cpprb stores
    float32 by default). Filled once, in one vectorized ``add``.

    Timed: ``rb.sample(batch_size)`` -- cpprb draws the indices with NumPy's global generator
    and gathers every field into a dict of fresh arrays. One-off: allocation and filling.
    """
    cpprb = optional_import("cpprb")
    if cpprb is None:
        return None
    rb = cpprb.ReplayBuffer(buffer_size, _cpprb_env_dict(obs_dim))
    _cpprb_fill(rb, buffer_size, obs_dim, seed)
    return lambda: rb.sample(batch_size)


def cpprb_prioritized(buffer_size: int = 100_000, obs_dim: int = 4, batch_size: int = 256,
                      alpha: float = 0.6, beta: float = 0.4,
                      seed: int = 0) -> tuple[Fn, Fn] | None:
    """cpprb ``PrioritizedReplayBuffer``: ``(sample, update)`` callables (C++ segment tree).

    ``sample()`` = ``rb.sample(batch_size, beta)``: a prioritized draw from cpprb's sum tree,
    importance weights ``(p_i / p_min)^-beta`` normalized, and the gather of every field -- a
    full buffer sample, so compare it with a full sample, not with a bare tree draw.
    ``update()`` = ``rb.update_priorities(indexes, priorities)`` for ``batch_size`` fresh
    priorities (cpprb raises them to ``alpha`` inside).

    One-off: filling ``buffer_size`` transitions with random priorities, drawing the indices and
    priorities used by ``update``.
    """
    cpprb = optional_import("cpprb")
    if cpprb is None:
        return None
    rng = np.random.default_rng(seed)
    rb = cpprb.PrioritizedReplayBuffer(buffer_size, _cpprb_env_dict(obs_dim), alpha=alpha)
    _cpprb_fill(rb, buffer_size, obs_dim, seed)
    rb.update_priorities(np.arange(buffer_size), rng.random(buffer_size) + 1e-3)
    upd_idx = rng.integers(0, buffer_size, batch_size)
    upd_prio = rng.random(batch_size) + 1e-3
    return (lambda: rb.sample(batch_size, beta),
            lambda: rb.update_priorities(upd_idx, upd_prio))


def tianshou_segment_tree_sample(capacity: int, batch_size: int, seed: int = 0,
                                 stratified: bool = False) -> tuple[Fn, Fn] | None:
    """Tianshou's ``SegmentTree`` (NumPy storage, Numba loops): ``(sample, update)`` callables.

    Built with ``capacity`` leaves holding random priorities in (0, 1].

    ``sample()`` draws ``batch_size`` indices the way ``PrioritizedReplayBuffer.sample_indices``
    does: ``u = rng.random(batch_size) * tree.reduce()`` then ``tree.get_prefix_sum_idx(u)``.
    Note that Tianshou draws the scalars i.i.d. over the whole total -- *not* stratified into
    ``batch_size`` equal segments as in Schaul et al. (2016) and cpprb/SB3-contrib style trees.
    ``stratified=True`` uses ``u_j = (j + U_j) / batch_size * total`` instead; the tree descent
    costs the same either way, so the timing only differs by the cost of the scalars.
    The randomness comes from a ``numpy.random.Generator`` (Tianshou uses ``np.random.rand``;
    same cost).

    ``update()`` writes ``batch_size`` new priorities at random indices: ``tree[idx] = prio``,
    which is the tree part of ``PrioritizedReplayBuffer.update_weight`` (that method also does
    ``(abs(td) + eps) ** alpha`` and running max/min element-wise; those are excluded, as they
    are not tree work). Tianshou's ``_setitem`` propagates all leaves level by level, so
    duplicate indices are handled by NumPy fancy-assignment (the last write wins).

    Both callables carry ``.tree`` (the ``SegmentTree``) for cross-checks.

    One-off: building the tree (which triggers Tianshou's own ``_compile`` warm-up), the random
    priorities, and the indices/priorities used by ``update``.
    """
    segtree = _peer("tianshou.data.utils.segtree")
    if segtree is None:
        return None
    rng = np.random.default_rng(seed)
    tree = segtree.SegmentTree(capacity)
    tree[np.arange(capacity)] = 1.0 - rng.random(capacity)  # (0, 1]
    upd_idx = rng.integers(0, capacity, batch_size)
    upd_prio = 1.0 - rng.random(batch_size)
    offsets = np.arange(batch_size)

    if stratified:
        def sample():
            total = tree.reduce()
            u = (offsets + rng.random(batch_size)) * (total / batch_size)
            return tree.get_prefix_sum_idx(np.minimum(u, np.nextafter(total, 0.0)))
    else:
        def sample():
            return tree.get_prefix_sum_idx(rng.random(batch_size) * tree.reduce())

    def update():
        tree[upd_idx] = upd_prio

    sample.tree = update.tree = tree  # for checks, never timed
    return sample, update
