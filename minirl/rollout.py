"""Time-major ``[T, N]`` rollouts from a ``SAME_STEP``-autoreset ``gymnasium.vector`` env.

One call to ``RolloutCollector.collect`` runs T vector steps of N envs and fills
preallocated buffers (``Rollout``):

| field         | shape              | meaning                                                  |
|---------------|--------------------|----------------------------------------------------------|
| obs           | [T, N, *obs_shape] | s_t as the policy saw it (normalized if a normalizer)    |
| actions       | [T, N, *act_shape] | a_t as sampled (unclipped for Box spaces)                |
| rewards       | [T, N]             | r_t (scaled if a reward scaler)                          |
| terminated    | [T, N] bool        | s_{t+1} is terminal: stop bootstrapping                  |
| truncated     | [T, N] bool        | time limit hit at s_{t+1}: episode cut, bootstrap V      |
| logp          | [T, N]             | log pi_old(a_t | s_t)                                    |
| values        | [T, N]             | V(s_t)                                                   |
| next_values   | [T, N]             | V(true s_{t+1}); 0 where terminated                      |
| start_steps   | [N] int64          | k of row 0: steps env n's episode had run before it      |

Per step: ``act`` runs once on the batch of current observations and yields actions,
log-probs and V(s_t). V(s_{t+1}) of a row that did not end is V of next step's s_t, so it
is copied from the next step's ``act`` instead of being recomputed; only rows whose episode
was cut by a time limit get one extra forward pass, on the true final observation
``infos["final_obs"]`` — never on the reset observation that the env returns in its place.

Lecture: Stanford CS224R lectures (batch actor-critic: collect {s, a, r, s'} with the
current policy); Stanford CS234 "Lecture 6: Policy Gradient II" ("collect a set of partial trajectories").
Reference: Pardo et al., "Time Limits in Reinforcement Learning", ICML 2018.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Callable

import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv

from minirl.nn.mlp import cast_checked, check_cast
from minirl.normalize import ObsNormalizer, RewardScaler
from minirl.spaces import ActionAdapter

__all__ = ["Rollout", "allocate_rollout", "flatten", "EpisodeStats", "RolloutCollector"]

_count_nonzero = np.count_nonzero


_FLOAT_MAX = {np.dtype(t): float(np.finfo(t).max) for t in (np.float16, np.float32, np.float64)}


def _within(clip, dtype: np.dtype) -> bool:
    """Whether every value of [-|clip|, |clip|] stays finite when cast to float ``dtype``
    (a float64 value up to the largest finite float32 rounds to at most that value)."""
    return abs(clip) <= _FLOAT_MAX.get(dtype, -1.0)


def _scale_public(scaler, rewards, ended):
    """A RewardScaler subclass: its own ``scale``, and no claim that the output is clipped."""
    return scaler.scale(rewards, ended), False


# act(obs [N, *obs_shape], rng) -> (actions [N, *act_shape], logp [N], values [N])
ActFn = Callable[[np.ndarray, np.random.Generator], tuple[np.ndarray, np.ndarray, np.ndarray]]
# value(obs [B, *obs_shape]) -> values [B]
ValueFn = Callable[[np.ndarray], np.ndarray]
# reset_noise(rng): redraw the policy's held exploration noise (gSDE)
NoiseFn = Callable[[np.random.Generator], None]


@dataclass
class Rollout:
    """Preallocated time-major buffers; see the module docstring for shapes."""

    obs: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    logp: np.ndarray
    values: np.ndarray
    next_values: np.ndarray
    start_steps: np.ndarray


def allocate_rollout(
    num_steps: int, num_envs: int, observation_space: spaces.Space, action_space: spaces.Space,
    dtype=np.float64,
) -> Rollout:
    """Zeroed ``Rollout`` buffers for ``num_steps`` x ``num_envs`` transitions."""
    T, N = num_steps, num_envs
    # Stored actions have the policy's shape: [T, N] indices (Discrete), [T, N, K] indices or
    # bits (MultiDiscrete, MultiBinary), [T, N, D] floats (Box; unclipped / pre-squash).
    adapter = (action_space if isinstance(action_space, ActionAdapter)
               else ActionAdapter(action_space, dtype=dtype))
    act_dtype = adapter.dtype if adapter.kind != "gaussian" else dtype
    actions = np.zeros((T, N, *adapter.shape), dtype=act_dtype)
    return Rollout(
        obs=np.zeros((T, N, *observation_space.shape), dtype=dtype),
        actions=actions,
        rewards=np.zeros((T, N), dtype=dtype),
        terminated=np.zeros((T, N), dtype=bool),
        truncated=np.zeros((T, N), dtype=bool),
        logp=np.zeros((T, N), dtype=dtype),
        values=np.zeros((T, N), dtype=dtype),
        next_values=np.zeros((T, N), dtype=dtype),
        start_steps=np.zeros(N, dtype=np.int64),
    )


def flatten(x: np.ndarray) -> np.ndarray:
    """``[T, N, ...] -> [T*N, ...]`` (row t*N + i is env i at step t); a view when possible."""
    return x.reshape(x.shape[0] * x.shape[1], *x.shape[2:])


class EpisodeStats:
    """Returns and lengths of the episodes finished in N envs, from raw per-step rewards.

    ``track(rewards [N], ended [N] bool or None)`` after every vector step (``ended`` =
    terminated | truncated; None when no episode ended); ``pop()`` gives (returns, lengths)
    of the episodes finished since the last call. ``reset()`` forgets unfinished episodes.
    ``running_lengths()`` gives the steps each env's running episode has taken so far [N]
    (the episode step k of the env's next transition).
    """

    def __init__(self, num_envs: int):
        self._ep_return = np.zeros(num_envs)
        self._ep_length = np.zeros(num_envs, dtype=np.int64)
        self._returns: list[float] = []
        self._lengths: list[int] = []

    def reset(self) -> None:
        self._ep_return[:] = 0.0
        self._ep_length[:] = 0

    def track(self, rewards: np.ndarray, ended: np.ndarray | None) -> None:
        self._ep_return += rewards
        self._ep_length += 1
        if ended is not None and ended.any():
            rows = np.flatnonzero(ended)
            self._returns.extend(self._ep_return[rows].tolist())
            self._lengths.extend(self._ep_length[rows].tolist())
            self._ep_return[rows] = 0.0
            self._ep_length[rows] = 0

    def running_lengths(self) -> np.ndarray:
        """[N] int64 copy: steps taken so far in each env's unfinished episode."""
        return self._ep_length.copy()

    def pop(self) -> tuple[list[float], list[int]]:
        out = self._returns, self._lengths
        self._returns, self._lengths = [], []
        return out


class RolloutCollector:
    """Steps a vector env with a policy and fills one ``Rollout`` per ``collect`` call.

    Holds the current observations between calls, each env's step within its running
    episode (so ``Rollout.start_steps`` of a rollout that begins mid-episode is the episode
    step of its row 0, kept across ``collect`` calls, zeroed at episode ends and by
    ``reset``), and the returns/lengths of episodes finished since the last ``pop_episodes``
    (raw rewards, before any scaling).
    """

    def __init__(
        self,
        envs: VectorEnv,
        num_steps: int,
        obs_normalizer: ObsNormalizer | None = None,
        reward_scaler: RewardScaler | None = None,
        dtype=np.float64,
        action_adapter: ActionAdapter | None = None,
    ):
        if envs.metadata.get("autoreset_mode") != AutoresetMode.SAME_STEP:
            raise ValueError("RolloutCollector needs a vector env with AutoresetMode.SAME_STEP")
        self.envs = envs
        self.num_steps = int(num_steps)
        self.num_envs = envs.num_envs
        self.obs_normalizer = obs_normalizer
        self.reward_scaler = reward_scaler
        # How stored actions reach the env: Discrete/MultiDiscrete offset by ``start``, Box
        # clipped or squashed into its bounds (see minirl.spaces.ActionAdapter).
        self.adapter = (action_adapter if action_adapter is not None
                        else ActionAdapter(envs.single_action_space, dtype=dtype))
        self.buffer = allocate_rollout(
            self.num_steps, self.num_envs, envs.single_observation_space, self.adapter, dtype,
        )
        self.obs = None
        self.episodes = EpisodeStats(self.num_envs)

    def reset(self, seed: int | None) -> None:
        """Start fresh episodes in every env (env i seeded with ``seed + i``)."""
        self.obs, _ = self.envs.reset(seed=seed)
        self.episodes.reset()
        if self.reward_scaler is not None:
            self.reward_scaler.reset()

    def pop_episodes(self) -> tuple[list[float], list[int]]:
        """Returns and lengths of the episodes finished since the last call."""
        return self.episodes.pop()

    def _normalize(self, obs: np.ndarray, update: bool) -> np.ndarray:
        if self.obs_normalizer is None:
            return obs
        return self.obs_normalizer(obs, update=update)

    def collect(self, act: ActFn, value: ValueFn, rng: np.random.Generator,
                reset_noise: NoiseFn | None = None, reset_every: int = -1) -> Rollout:
        """Run ``num_steps`` vector steps with ``act``; return the filled buffer (reused).

        ``reset_noise(rng)`` (a policy with held exploration noise, gSDE) is called before
        step 0 and, if ``reset_every`` > 0, before every step t with t % reset_every == 0;
        ``act`` keeps the noise in between (Stable-Baselines3's ``sde_sample_freq`` schedule:
        counted from the start of each rollout, not reset at episode ends).
        """
        if self.obs is None:
            raise RuntimeError("call reset(seed) before collect()")
        if isinstance(reset_every, bool) or not isinstance(reset_every, (int, np.integer)):
            raise TypeError(f"reset_every must be an integer, got {reset_every!r}")
        b = self.buffer
        # Episode step k of row 0 (discount gamma^k of the unbiased estimators): an episode
        # that began in an earlier rollout goes on counting from where it was.
        b.start_steps[:] = self.episodes.running_lengths()
        # Per-step work outside the policy and the env costs per call on these small batches:
        # bound methods and buffers looked up once, and the normalizer's and scaler's private
        # fast paths (bit for bit their public calls, which subclasses keep using).
        step, to_env, track, end_of_episodes = (self.envs.step, self.adapter.to_env,
                                                self.episodes.track, self._end_of_episodes)
        b_obs, b_actions, b_logp, b_values, b_next, b_rewards, b_term, b_trunc = (
            b.obs, b.actions, b.logp, b.values, b.next_values, b.rewards, b.terminated,
            b.truncated)
        norm = self.obs_normalizer
        normalize = (norm._update_normalize if type(norm) is ObsNormalizer else
                     None if norm is None else partial(norm, update=True))
        scaler = self.reward_scaler
        scale = (scaler._scale_step if type(scaler) is RewardScaler else
                 None if scaler is None else partial(_scale_public, scaler))
        # Normalized observations (and scaled rewards) are clipped to [-clip, clip]: a clip
        # within the buffer dtype's range makes check_cast's error impossible for them.
        obs_bounded = type(norm) is ObsNormalizer and _within(norm.clip, b_obs.dtype)
        rew_bounded = type(scaler) is RewardScaler and _within(scaler.clip, b_rewards.dtype)
        ended = patch = None
        cut = []     # (t, ended, patch) of the steps t < T-1 at which an episode ended
        for t in range(self.num_steps):
            if reset_noise is not None and (t == 0 or (reset_every > 0 and t % reset_every == 0)):
                reset_noise(rng)
            obs = self.obs if normalize is None else normalize(self.obs)
            b_obs[t] = obs   # cast to the rollout dtype, checked before acting on it (1e39 in
            if not obs_bounded:                          # float32 would be inf, "diverged" later)
                check_cast(b_obs[t], obs, "obs")
            actions, logp, values = act(obs, rng)
            b_actions[t] = actions
            b_logp[t] = logp
            b_values[t] = values
            # Box actions are clipped (or squashed) only on their way to the env; logp is of
            # the stored sample. Discrete indices 0..n-1 become start..start+n-1 there.
            self.obs, rewards, terminated, truncated, infos = step(to_env(actions))
            if _count_nonzero(terminated) or _count_nonzero(truncated):   # (rare)
                ended, patch = end_of_episodes(terminated, truncated, infos, value)
                if t + 1 < self.num_steps:
                    cut.append((t, ended, patch))
            else:
                ended = patch = None
            track(rewards, ended)
            clipped = False
            if scale is not None:
                rewards, clipped = scale(rewards, ended)
            b_rewards[t] = rewards
            if not (clipped and rew_bounded):
                check_cast(b_rewards[t], np.asarray(rewards), "rewards")   # 1e39 -> inf: named
            b_term[t] = terminated
            b_trunc[t] = truncated
        last_obs = self._normalize(self.obs, update=False)
        if not obs_bounded:   # (a check only: value() casts as before; clipped obs pass it)
            cast_checked(last_obs, b.obs.dtype, "obs")
        last = value(last_obs)
        # V(s_{t+1}) of the rows that went on is the next row's V(s_t), copied in one go (the
        # same cast values); where an episode ended, the patch (V(true final obs) or 0)
        b_next[:-1] = b_values[1:]
        for t, ended_t, patch_t in cut:
            b_next[t] = np.where(ended_t, patch_t, b_values[t + 1])
        b_next[-1] = last if patch is None else np.where(ended, patch, last)
        return b

    def _end_of_episodes(self, terminated, truncated, infos, value):
        """(ended [N], patch [N]) with patch = V(true final obs) on truncated rows, 0 on
        terminated ones; (None, None) when no episode ended this step (the common case)."""
        if not (_count_nonzero(terminated) or _count_nonzero(truncated)):
            return None, None                       # (two counts: cheaper than | and .any())
        ended = terminated | truncated
        patch = np.zeros(self.num_envs)
        rows = np.flatnonzero(truncated & ~terminated)
        if rows.size:
            # self.obs[rows] is already the *reset* observation; bootstrap from the true s_{t+1}.
            final_obs = self._normalize(np.stack(infos["final_obs"][rows]), update=False)
            for k, env in enumerate(rows.tolist()):   # (truncations are rare: one per row)
                cast_checked(final_obs[k], self.buffer.obs.dtype, f"infos['final_obs'][{env}]")
            patch[rows] = value(final_obs)
        return ended, patch
