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
| ``minirl/ConstantRewardBox-v0`` | ``[1.0]``         | Box[-1, 1]  | 1 every step            | truncated after 8 steps      |
| ``minirl/Bandit-v0``            | ``[1.0]``         | Discrete(2) | 1 for action 1, else 0  | terminated after 1 step      |
| ``minirl/ContinuousBandit-v0``  | ``[1.0]``         | Box[-1, 1]  | ``1 - (a - 0.5)^2``     | terminated after 1 step      |
| ``minirl/Corridor-v0``          | one-hot position  | Discrete(2) | -1 per step             | terminated at the right end  |
|                                 | (5 cells)         | left, right |                         | truncated after 20 steps     |
| ``minirl/MultiDiscreteBandit-v0``| ``[1.0]``        | MultiDiscrete([3, 2]) | mean of [a0 == 2, a1 == 0] | terminated after 1 step |
| ``minirl/MultiBinaryBandit-v0`` | ``[1.0]``         | MultiBinary(3) | mean of a == [1, 0, 1] | terminated after 1 step      |
| ``minirl/DictObsBandit-v0``     | Dict(cue: Discrete(2), noise: Box(2)) | Discrete(2) | 1 if a == cue | terminated after 1 step |
| ``minirl/ImageObs-v0``          | Box(0, 255, (8, 8, 3), uint8) | Discrete(2) | 0 | terminated after 1 step; exists to be refused (images) |
| ``minirl/OffsetBandit-v0``      | ``[1.0]``         | Discrete(3, start=-1) | 1 for action +1, else 0; any action outside {-1, 0, 1} raises | terminated after 1 step |

``ConstantReward``: with correct time-limit bootstrapping V(s) -> 1/(1-gamma); treating the
truncation as a termination instead gives the average finite-horizon return
mean_k (1 - gamma^k)/(1 - gamma), k = 1..8 — the truncation test tells the two apart.
The last four check the spaces of ``minirl.spaces`` end to end: the best policy is known
(MultiDiscrete [2, 0], MultiBinary [1, 0, 1], the action equal to the cue, the env action +1),
so an agent that learns them shows its distribution, its action offsets and its observation
flattening are right.

Observation flattening and env options: ``make_env`` and ``make_vector_env`` pass
``env_kwargs`` to ``gymnasium.make`` (e.g. ``{"continuous": True}`` for LunarLander-v3) and,
unless the observations already are 1-D Boxes, wrap the env in gymnasium's
``FlattenObservation`` (single or vector form): Discrete observations become one-hot vectors,
Dict/Tuple/multi-dimensional Box observations are flattened, images are refused (see
``minirl.spaces``).
"""
from __future__ import annotations

import importlib
import warnings
from typing import Callable

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv

from minirl.spaces import UnsupportedSpaceError, flatten_observation_wrapper, needs_flattening

__all__ = [
    "ConstantRewardEnv",
    "ConstantRewardBoxEnv",
    "BanditEnv",
    "ContinuousBanditEnv",
    "CorridorEnv",
    "MultiDiscreteBanditEnv",
    "MultiBinaryBanditEnv",
    "DictObsBanditEnv",
    "OffsetBanditEnv",
    "ImageObsEnv",
    "parse_env_kwargs",
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


class ConstantRewardBoxEnv(ConstantRewardEnv):
    """``ConstantRewardEnv`` with one continuous action in [-1, 1] (SAC's time-limit test)."""

    action_space = spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)


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


class MultiDiscreteBanditEnv(gym.Env):
    """One step; reward = fraction of the two choices equal to the best action [2, 0]."""

    observation_space = spaces.Box(-np.inf, np.inf, shape=(1,), dtype=np.float32)
    action_space = spaces.MultiDiscrete([3, 2])
    best = np.array([2, 0])

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.ones(1, dtype=np.float32), {}

    def step(self, action):
        if not self.action_space.contains(np.asarray(action, dtype=np.int64)):
            raise ValueError(f"action {action!r} is not in {self.action_space}")
        reward = float(np.mean(np.asarray(action) == self.best))
        return np.ones(1, dtype=np.float32), reward, True, False, {}


class MultiBinaryBanditEnv(gym.Env):
    """One step; reward = fraction of the three bits equal to the best action [1, 0, 1]."""

    observation_space = spaces.Box(-np.inf, np.inf, shape=(1,), dtype=np.float32)
    action_space = spaces.MultiBinary(3)
    best = np.array([1, 0, 1])

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.ones(1, dtype=np.float32), {}

    def step(self, action):
        if not self.action_space.contains(np.asarray(action, dtype=np.int8)):
            raise ValueError(f"action {action!r} is not in {self.action_space}")
        reward = float(np.mean(np.asarray(action) == self.best))
        return np.ones(1, dtype=np.float32), reward, True, False, {}


class DictObsBanditEnv(gym.Env):
    """One step; the observation is a Dict with a random cue bit (and two noise numbers); the
    reward is 1 if the action equals the cue. Only a policy that reads the cue out of the
    flattened Dict gets more than 1/2."""

    observation_space = spaces.Dict({"cue": spaces.Discrete(2),
                                     "noise": spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)})
    action_space = spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.cue = int(self.np_random.integers(2))
        noise = self.np_random.uniform(-1, 1, size=2).astype(np.float32)
        return {"cue": self.cue, "noise": noise}, {}

    def step(self, action):
        obs = {"cue": self.cue, "noise": np.zeros(2, np.float32)}
        return obs, float(int(action) == self.cue), True, False, {}


class OffsetBanditEnv(gym.Env):
    """One step with actions Discrete(3, start=-1) = {-1, 0, 1}; action 1 pays 1. An action
    outside the space (e.g. 2, an index not offset by ``start``) raises ValueError."""

    observation_space = spaces.Box(-np.inf, np.inf, shape=(1,), dtype=np.float32)
    action_space = spaces.Discrete(3, start=-1)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.ones(1, dtype=np.float32), {}

    def step(self, action):
        if not self.action_space.contains(np.int64(action)):
            raise ValueError(f"action {action!r} is not in {self.action_space}")
        return np.ones(1, dtype=np.float32), float(int(action) == 1), True, False, {}


class ImageObsEnv(gym.Env):
    """An env with image observations, which minirl refuses by name (see minirl.spaces)."""

    observation_space = spaces.Box(0, 255, shape=(8, 8, 3), dtype=np.uint8)
    action_space = spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros((8, 8, 3), np.uint8), {}

    def step(self, action):
        return np.zeros((8, 8, 3), np.uint8), 0.0, True, False, {}


def _register() -> None:
    table = [
        ("minirl/ConstantReward-v0", "minirl.envs:ConstantRewardEnv", 8),
        ("minirl/ConstantRewardBox-v0", "minirl.envs:ConstantRewardBoxEnv", 8),
        ("minirl/Bandit-v0", "minirl.envs:BanditEnv", None),
        ("minirl/ContinuousBandit-v0", "minirl.envs:ContinuousBanditEnv", None),
        ("minirl/Corridor-v0", "minirl.envs:CorridorEnv", 20),
        ("minirl/MultiDiscreteBandit-v0", "minirl.envs:MultiDiscreteBanditEnv", None),
        ("minirl/MultiBinaryBandit-v0", "minirl.envs:MultiBinaryBanditEnv", None),
        ("minirl/DictObsBandit-v0", "minirl.envs:DictObsBanditEnv", None),
        ("minirl/OffsetBandit-v0", "minirl.envs:OffsetBanditEnv", None),
        ("minirl/ImageObs-v0", "minirl.envs:ImageObsEnv", None),
    ]
    for env_id, entry_point, limit in table:
        if env_id not in gym.envs.registry:
            gym.register(id=env_id, entry_point=entry_point, max_episode_steps=limit)


_register()


def check_env_id(env_id: str) -> str:
    """Return ``env_id`` if gymnasium knows it, else raise ``ValueError`` naming it.

    ``"module:EnvId"`` (gymnasium.make's form for custom envs) first imports ``module``, which
    is expected to register ``EnvId``, then checks ``EnvId``; a module that cannot be imported
    or registers no such id is a ValueError naming both."""
    if not isinstance(env_id, str):
        raise ValueError(f"unknown environment id {env_id!r} (not in gymnasium's registry)")
    if ":" in env_id:
        module, _, name = env_id.partition(":")
        if not module or not name or ":" in name:
            raise ValueError(f"environment id {env_id!r}: expected an id or module:EnvId")
        try:
            importlib.import_module(module)
        except Exception as e:  # noqa: BLE001 - ImportError or the module's own failure
            raise ValueError(f"environment id {env_id!r}: cannot import module {module!r} "
                             f"({type(e).__name__}: {e})") from None
        if name not in gym.envs.registry:
            raise ValueError(f"environment id {env_id!r}: module {module!r} was imported but "
                             f"registers no environment {name!r}")
        return env_id
    if env_id not in gym.envs.registry:
        raise ValueError(f"unknown environment id {env_id!r} (not in gymnasium's registry; "
                         f"a custom env: module:EnvId imports the module that registers it)")
    return env_id


def _registry_name(env_id: str) -> str:
    """The registry key of ``env_id`` ("module:EnvId" -> "EnvId")."""
    return env_id.partition(":")[2] if ":" in env_id else env_id


TRUE_WORDS = ("true", "yes", "on")
FALSE_WORDS = ("false", "no", "off")


def parse_bool_word(text: str) -> bool | None:
    """The one boolean rule of the command line (``--env-kwargs`` and ``--set``): true/yes/on
    -> True, false/no/off -> False (case-insensitive), anything else -> None (not a boolean
    word). ``--set`` on a bool config field also takes 1/0; ``--env-kwargs`` reads 1/0 as
    integers, since it cannot know the option's type."""
    low = str(text).strip().lower()
    return True if low in TRUE_WORDS else False if low in FALSE_WORDS else None


def parse_env_kwargs(pairs) -> dict:
    """``["continuous=true", "gravity=-9.8"]`` -> ``{"continuous": True, "gravity": -9.8}``.

    Values are read as booleans (true/yes/on, false/no/off, case-insensitive:
    :func:`parse_bool_word`, the rule ``--set`` uses too), then ``none``, then integers, then
    floats; anything else stays a string. Raises ValueError naming a pair without "=".
    """
    out = {}
    for pair in pairs or ():
        key, sep, text = str(pair).partition("=")
        key, text = key.strip(), text.strip()
        if not sep or not key:
            raise ValueError(f"--env-kwargs {pair!r}: expected key=value")
        low = text.lower()
        if parse_bool_word(low) is not None:
            out[key] = parse_bool_word(low)
        elif low == "none":
            out[key] = None
        else:
            for conv in (int, float, str):
                try:
                    out[key] = conv(text)
                    break
                except ValueError:
                    continue
    return out


def gym_make(env_id: str, **kwargs) -> gym.Env:
    """``gymnasium.make(env_id, **kwargs)``, with any exception the env's constructor raises
    for the user's id/kwargs (a KeyError for ``FrozenLake-v1`` ``map_name="9x9"``, an
    AssertionError, ...) turned into a ValueError (a TypeError stays a TypeError) naming the
    env, its kwargs and the original exception type."""
    try:
        return gym.make(env_id, **kwargs)
    except Exception as e:  # noqa: BLE001 - the env's own constructor: any type
        shown = {k: v for k, v in kwargs.items() if k != "disable_env_checker"}
        cls = TypeError if isinstance(e, TypeError) else ValueError
        raise cls(f"cannot make env {env_id!r} with env_kwargs {shown}: "
                  f"{type(e).__name__}: {e}") from e


def _check_env_kwargs(env_kwargs) -> dict:
    if env_kwargs is None:
        return {}
    if not isinstance(env_kwargs, dict) or not all(isinstance(k, str) for k in env_kwargs):
        raise TypeError(f"env_kwargs must be a dict with str keys, got {env_kwargs!r}")
    return dict(env_kwargs)


# Episodes of an env without a time limit are cut here when minirl itself runs them to their
# end (deterministic evaluation, gradient-free rollouts): a deterministic policy that never
# reaches a terminal state (CliffWalking-v1's walk into a wall) would otherwise never return.
EPISODE_CAP = 10_000


def make_env(env_id: str, render_mode: str | None = None, env_kwargs: dict | None = None,
             flatten: bool = True) -> gym.Env:
    """One environment by id (for evaluation and rendering), made with ``env_kwargs`` and,
    if ``flatten`` and its observations are not 1-D Boxes, wrapped in FlattenObservation."""
    check_env_id(env_id)
    kwargs = _check_env_kwargs(env_kwargs)
    if render_mode is not None:
        check_render_mode(None, render_mode)
        modes = _registered_render_modes(env_id)
        if modes is not None and render_mode not in modes:  # before an env that takes no
            raise ValueError(f"render_mode {render_mode!r} is not one of this env's render "
                             f"modes {modes}")             # render_mode fails to construct
        kwargs["render_mode"] = render_mode
    with warnings.catch_warnings():  # a render_mode the env lacks: our error, not its warning
        warnings.filterwarnings("ignore", message=".*render_mode.*")
        env = check_render_mode(gym_make(env_id, **kwargs), render_mode)
    return flatten_observation_wrapper(env) if flatten else env


def _registered_render_modes(env_id: str) -> list[str] | None:
    """The ``metadata["render_modes"]`` of the class registered under ``env_id``, or None if
    it cannot be told without making the env."""
    try:
        entry = gym.spec(_registry_name(env_id)).entry_point
        creator = gym.envs.registration.load_env_creator(entry) if isinstance(entry, str) \
            else entry
        return list(creator.metadata.get("render_modes") or [])
    except Exception:  # noqa: BLE001 - unknown: make the env and check its own metadata
        return None


def check_render_mode(env: gym.Env | None, render_mode: str | None) -> gym.Env | None:
    """``env`` (None: check the type only) if ``render_mode`` is None or one of its ``metadata["render_modes"]``; else the
    env is closed and ValueError names the modes it has (gymnasium itself only warns, and the
    run would go on without rendering). TypeError if ``render_mode`` is not a string."""
    if render_mode is None:
        return env
    if not isinstance(render_mode, str):
        if env is not None:
            env.close()
        raise TypeError(f"render_mode must be a string or None, got {render_mode!r}")
    if env is None:  # only the type was to be checked
        return env
    modes = list(env.metadata.get("render_modes") or [])
    if render_mode not in modes:
        env.close()
        raise ValueError(f"render_mode {render_mode!r} is not one of this env's render modes "
                         f"{modes}")
    return env


def _env_fn(env_id: str, env_kwargs: dict) -> Callable[[], gym.Env]:
    # The passive env checker only inspects the first call; skip its wrapper layer on the hot path.
    return lambda: gym_make(env_id, disable_env_checker=True, **env_kwargs)


def _flat_env_fn(env_id: str, env_kwargs: dict) -> Callable[[], gym.Env]:
    return lambda: flatten_observation_wrapper(_env_fn(env_id, env_kwargs)())


def make_vector_env(
    env: str | gym.Env | VectorEnv,
    num_envs: int = 1,
    vectorization: str = "sync",
    env_kwargs: dict | None = None,
    flatten: bool = True,
) -> VectorEnv:
    """A ``SAME_STEP``-autoreset vector environment from an id, an env, or a vector env.

    env: an id registered with gymnasium (``num_envs`` copies are made, ``vectorization``
        ``"sync"`` or ``"async"``); a single ``gymnasium.Env`` (wrapped as a one-env
        ``SyncVectorEnv``; ``num_envs`` must be 1); or a ``VectorEnv`` whose autoreset mode
        is already ``SAME_STEP``.
    env_kwargs: keyword arguments for ``gymnasium.make`` (env ids only).
    flatten: wrap every sub-env in ``gymnasium.wrappers.FlattenObservation`` unless its
        observations already are 1-D Boxes. The wrapper sits inside the vector env, so the
        true final observations in ``infos["final_obs"]`` come out flat too (gymnasium's
        vector-level FlattenObservation refuses SAME_STEP vector envs). A given VectorEnv
        whose observations are not 1-D Boxes is refused: its sub-envs are out of reach.
        Raises ``minirl.spaces.UnsupportedSpaceError`` (a TypeError) for images and other
        spaces that cannot be flattened.
    """
    env_kwargs = _check_env_kwargs(env_kwargs)
    raw_space = None
    if isinstance(env, VectorEnv):
        if flatten and needs_flattening(env.single_observation_space):
            raise UnsupportedSpaceError(
                f"the vector env's observation space {env.single_observation_space} is not a "
                "1-D Box; wrap each sub-env in gymnasium.wrappers.FlattenObservation, or pass "
                "an env id or a single env and minirl will")
    elif isinstance(env, gym.Env):
        raw_space = env.observation_space
        env = flatten_observation_wrapper(env) if flatten else env
    elif flatten and isinstance(env, str):
        check_env_id(env)      # imports a "module:EnvId" id's module (a fresh eval process)
        probe = gym_make(env, disable_env_checker=True, **env_kwargs)   # its raw space
        raw_space = probe.observation_space
        probe.close()
    envs = _make_vector_env(env, num_envs, vectorization, env_kwargs,
                            _flat_env_fn if flatten else _env_fn)
    # What the env itself emits (before flattening), for predict() on raw observations.
    envs.raw_single_observation_space = raw_space or envs.single_observation_space
    return envs


def true_next_obs(next_obs: np.ndarray, infos: dict, out: np.ndarray | None = None):
    """``s_{t+1}`` ``[N, obs_dim]`` as each env produced it: ``next_obs`` with the rows that
    autoreset this step replaced by ``infos["final_obs"]`` (in ``SAME_STEP`` mode
    ``next_obs`` already holds the next episode's reset observation there). What a replay
    buffer stores, so a truncated transition bootstraps from its true final state.

    Returns ``out`` when given (written), else ``next_obs`` itself when no row reset, else a
    copy with those rows replaced; ``next_obs`` is never modified.
    """
    mask = infos.get("_final_obs")
    rows = np.flatnonzero(mask) if mask is not None and mask.any() else None
    if out is None:
        if rows is None:
            return next_obs
        out = next_obs.copy()
    else:
        out[...] = next_obs
    if rows is not None:
        out[rows] = np.stack(infos["final_obs"][rows])
    return out


def _make_vector_env(env, num_envs: int, vectorization: str, env_kwargs: dict,
                     env_fn) -> VectorEnv:
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
            raise ValueError(f"a single env instance can only make a vector env of num_envs=1 "
                             f"(got num_envs={num_envs}): pass a config with num_envs=1, or "
                             f"the env id to train on {num_envs} copies")
        return gym.vector.SyncVectorEnv([lambda: env], autoreset_mode=AutoresetMode.SAME_STEP)
    check_env_id(env)
    fns = [env_fn(env, env_kwargs) for _ in range(num_envs)]
    if vectorization == "sync":
        return gym.vector.SyncVectorEnv(fns, autoreset_mode=AutoresetMode.SAME_STEP)
    if vectorization == "async":
        return gym.vector.AsyncVectorEnv(fns, autoreset_mode=AutoresetMode.SAME_STEP)
    raise ValueError(f"vectorization must be 'sync' or 'async', got {vectorization!r}")
