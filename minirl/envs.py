"""Environment construction, and tiny known-answer environments for end-to-end tests.

Every algorithm collects experience from a ``gymnasium.vector`` environment in the
``SAME_STEP`` autoreset mode (gymnasium >= 1.0):

    next_obs, rewards, terminated, truncated, infos = envs.step(actions)
    # row i ended an episode  ->  next_obs[i] is already the reset observation of the
    #                             next episode; the true last observation s_{t+1} is in
    #                             infos["final_obs"][i] (mask infos["_final_obs"]).

In this mode every step applies the action it was given. The default ``NEXT_STEP`` mode
instead spends one extra step per episode whose action is ignored (the reset transition);
such a transition must never enter a training batch, and ``SAME_STEP`` makes that
impossible by construction. ``make_vector_env`` refuses vector envs in any other mode.

Known-answer environments (registered on import of this module):

| id                              | obs               | actions     | reward                  | ends                         |
|---------------------------------|-------------------|-------------|-------------------------|------------------------------|
| ``minirl/ConstantReward-v0``    | ``[1.0]``         | Discrete(2) | 1 every step            | truncated after 8 steps      |
| ``minirl/Bandit-v0``            | ``[1.0]``         | Discrete(2) | 1 for action 1, else 0  | terminated after 1 step      |
| ``minirl/ContinuousBandit-v0``  | ``[1.0]``         | Box[-1, 1]  | ``1 - (a - 0.5)^2``     | terminated after 1 step      |
| ``minirl/Corridor-v0``          | one-hot position  | Discrete(2) | -1 per step             | terminated at the right end  |
|                                 | (5 cells)         | left, right |                         | truncated after 20 steps     |

``ConstantReward``: with correct time-limit bootstrapping V(s) -> 1/(1-gamma); treating the
truncation as a termination instead gives the average finite-horizon return
mean_k (1 - gamma^k)/(1 - gamma), k = 1..8 — the truncation test tells the two apart.
"""
from __future__ import annotations

from typing import Callable

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv

__all__ = [
    "ConstantRewardEnv",
    "BanditEnv",
    "ContinuousBanditEnv",
    "CorridorEnv",
    "check_env_id",
    "make_env",
    "make_vector_env",
]


class ConstantRewardEnv(gym.Env):
    """Reward 1 every step, a constant observation; only the time limit ends an episode."""

    observation_space = spaces.Box(-np.inf, np.inf, shape=(1,), dtype=np.float32)
    action_space = spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.ones(1, dtype=np.float32), {}

    def step(self, action):
        return np.ones(1, dtype=np.float32), 1.0, False, False, {}


class BanditEnv(gym.Env):
    """One-step two-armed bandit: arm 1 pays 1, arm 0 pays 0."""

    observation_space = spaces.Box(-np.inf, np.inf, shape=(1,), dtype=np.float32)
    action_space = spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.ones(1, dtype=np.float32), {}

    def step(self, action):
        return np.ones(1, dtype=np.float32), float(int(action) == 1), True, False, {}


class ContinuousBanditEnv(gym.Env):
    """One-step continuous bandit: reward 1 - (a - 0.5)^2, best action 0.5."""

    observation_space = spaces.Box(-np.inf, np.inf, shape=(1,), dtype=np.float32)
    action_space = spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.ones(1, dtype=np.float32), {}

    def step(self, action):
        a = float(np.asarray(action).reshape(-1)[0])
        return np.ones(1, dtype=np.float32), 1.0 - (a - 0.5) ** 2, True, False, {}


class CorridorEnv(gym.Env):
    """Walk right along ``length`` cells from cell 0; -1 per step until the last cell."""

    action_space = spaces.Discrete(2)  # 0: left, 1: right

    def __init__(self, length: int = 5, render_mode=None):
        self.render_mode = render_mode
        self.length = int(length)
        self.observation_space = spaces.Box(0.0, 1.0, shape=(self.length,), dtype=np.float32)
        self.pos = 0

    def _obs(self):
        obs = np.zeros(self.length, dtype=np.float32)
        obs[self.pos] = 1.0
        return obs

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.pos = 0
        return self._obs(), {}

    def step(self, action):
        self.pos = max(0, self.pos + (1 if int(action) == 1 else -1))
        terminated = self.pos == self.length - 1
        return self._obs(), -1.0, terminated, False, {}


def _register() -> None:
    table = [
        ("minirl/ConstantReward-v0", "minirl.envs:ConstantRewardEnv", 8),
        ("minirl/Bandit-v0", "minirl.envs:BanditEnv", None),
        ("minirl/ContinuousBandit-v0", "minirl.envs:ContinuousBanditEnv", None),
        ("minirl/Corridor-v0", "minirl.envs:CorridorEnv", 20),
    ]
    for env_id, entry_point, limit in table:
        if env_id not in gym.envs.registry:
            gym.register(id=env_id, entry_point=entry_point, max_episode_steps=limit)


_register()


def check_env_id(env_id: str) -> str:
    """Return ``env_id`` if gymnasium knows it, else raise ``ValueError`` naming it."""
    if not isinstance(env_id, str) or env_id not in gym.envs.registry:
        raise ValueError(f"unknown environment id {env_id!r} (not in gymnasium's registry)")
    return env_id


def make_env(env_id: str, render_mode: str | None = None) -> gym.Env:
    """One environment by id (for evaluation and rendering)."""
    check_env_id(env_id)
    if render_mode is None:
        return gym.make(env_id)
    return gym.make(env_id, render_mode=render_mode)


def _env_fn(env_id: str) -> Callable[[], gym.Env]:
    # The passive env checker only inspects the first call; skip its wrapper layer on the hot path.
    return lambda: gym.make(env_id, disable_env_checker=True)


def make_vector_env(
    env: str | gym.Env | VectorEnv,
    num_envs: int = 1,
    vectorization: str = "sync",
) -> VectorEnv:
    """A ``SAME_STEP``-autoreset vector environment from an id, an env, or a vector env.

    env: an id registered with gymnasium (``num_envs`` copies are made, ``vectorization``
        ``"sync"`` or ``"async"``); a single ``gymnasium.Env`` (wrapped as a one-env
        ``SyncVectorEnv``; ``num_envs`` must be 1); or a ``VectorEnv`` whose autoreset mode
        is already ``SAME_STEP`` (returned as is).
    """
    if isinstance(env, VectorEnv):
        mode = env.metadata.get("autoreset_mode")
        if mode != AutoresetMode.SAME_STEP:
            raise ValueError(
                "vector env must use autoreset_mode=AutoresetMode.SAME_STEP "
                f"(got {mode}); NEXT_STEP would put reset transitions in the batch"
            )
        return env
    if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs < 1:
        raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
    if isinstance(env, gym.Env):
        if num_envs != 1:
            raise ValueError("a single env instance can only make a vector env of num_envs=1")
        return gym.vector.SyncVectorEnv([lambda: env], autoreset_mode=AutoresetMode.SAME_STEP)
    check_env_id(env)
    fns = [_env_fn(env) for _ in range(num_envs)]
    if vectorization == "sync":
        return gym.vector.SyncVectorEnv(fns, autoreset_mode=AutoresetMode.SAME_STEP)
    if vectorization == "async":
        return gym.vector.AsyncVectorEnv(fns, autoreset_mode=AutoresetMode.SAME_STEP)
    raise ValueError(f"vectorization must be 'sync' or 'async', got {vectorization!r}")
