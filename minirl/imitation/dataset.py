"""Demonstrations: expert episodes for imitation learning, saved as ``.npz`` or Minari datasets.

A :class:`Demonstrations` holds E episodes of total length M = sum_e T_e, concatenated
step-major (episode 0's steps, then episode 1's, ...):

| field             | shape                          | meaning                                        |
|-------------------|--------------------------------|------------------------------------------------|
| ``obs``           | ``[M, obs_dim]`` float         | s_t, the observation the action was taken in   |
| ``actions``       | ``[M]`` int64 or ``[M, D]``    | a_t (Discrete index or Box vector)             |
| ``rewards``       | ``[M]`` float64                | r_t                                            |
| ``terminated``    | ``[M]`` bool                   | the episode ended at a terminal state after t  |
| ``truncated``     | ``[M]`` bool                   | the episode was cut by a time limit after t    |
| ``final_obs``     | ``[E, obs_dim]``               | s_{T_e}, each episode's last observation       |
| ``episode_lengths``| ``[E]`` int64                 | T_e (episode boundaries)                       |

Observations are what the agents' networks see: ``observation_space`` is a 1-D Box. For an
env whose observations are not 1-D Boxes (FrozenLake-v1's Discrete states, Dict, Tuple, ...)
they are flattened by ``minirl.spaces`` (one-hot for Discrete, concatenated parts for
Dict/Tuple), ``observation_space`` is the flattened Box and ``raw_observation_space`` the env's
own space (checked to flatten to it; for a 1-D Box env the two are the same). BC and DAgger
compare both with the env's, since different spaces can flatten alike (Discrete(16) and a
Tuple of Discrete(4) and Discrete(12)).

An episode's last step is terminated or truncated and no earlier step is (the boundaries are
checked). ``final_obs`` makes the episodes complete trajectories (s_1, a_1, ..., s_T): the
lecture's demonstrations D = {(s_1, a_1, ..., s_T)} and Minari's T+1 observations per episode.

Lecture: Stanford CS224R "Imitation Learning": "What is the goal of imitation learning?"
(demonstrations sampled from an unknown expert policy).

Storage:
* ``save_npz(path)`` / ``load_npz(path)``: one ``.npz`` with the arrays above plus a JSON
  string of the spaces and the env id; no pickle on either side (``allow_pickle=False``).
  Files from before the raw space was saved load with raw = ``observation_space``.
* ``to_minari(dataset_id, path)`` / ``from_minari(dataset)``: the gymnasium ecosystem's
  offline-data format (Farama Foundation's ``minari``, optional extra ``minirl[minari]``),
  with observations in the env's raw space (unflattened on export, flattened on import).
  Datasets are created and read locally (a directory), never downloaded.
"""
from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from gymnasium import spaces

from minirl.io import atomic_open
from minirl.spaces import (UnsupportedSpaceError, flat_observation_space, flatten_observation,
                           needs_flattening)

__all__ = ["Demonstrations", "space_to_json", "space_from_json", "check_actions"]


def space_to_json(space: spaces.Space) -> dict:
    """A JSON-able description of a Discrete, Box, MultiDiscrete, MultiBinary, Dict or Tuple
    space (exact: floats as repr strings). TypeError for any other space."""
    if isinstance(space, spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, spaces.Box):
        return {"type": "Box", "shape": list(space.shape), "dtype": str(space.dtype),
                "low": [repr(float(x)) for x in space.low.ravel()],
                "high": [repr(float(x)) for x in space.high.ravel()]}
    if isinstance(space, spaces.MultiDiscrete):
        return {"type": "MultiDiscrete", "nvec": space.nvec.tolist(),
                "start": space.start.tolist(), "dtype": str(space.dtype)}
    if isinstance(space, spaces.MultiBinary):
        return {"type": "MultiBinary", "n": np.asarray(space.n).tolist()}
    if isinstance(space, spaces.Dict):
        return {"type": "Dict", "spaces": [[k, space_to_json(v)] for k, v in space.items()]}
    if isinstance(space, spaces.Tuple):
        return {"type": "Tuple", "spaces": [space_to_json(v) for v in space.spaces]}
    raise TypeError(f"space must be Discrete, Box, MultiDiscrete, MultiBinary, Dict or Tuple, "
                    f"got {type(space).__name__}")


def space_from_json(d: dict) -> spaces.Space:
    """Inverse of :func:`space_to_json`."""
    if d["type"] == "Discrete":
        return spaces.Discrete(d["n"], start=d.get("start", 0))
    if d["type"] == "Box":
        shape = tuple(d["shape"])
        dtype = np.dtype(d["dtype"])
        low = np.array([float(x) for x in d["low"]], dtype=dtype).reshape(shape)
        high = np.array([float(x) for x in d["high"]], dtype=dtype).reshape(shape)
        return spaces.Box(low, high, shape=shape, dtype=dtype)
    if d["type"] == "MultiDiscrete":
        return spaces.MultiDiscrete(np.array(d["nvec"]), dtype=np.dtype(d["dtype"]),
                                    start=np.array(d["start"]))
    if d["type"] == "MultiBinary":
        return spaces.MultiBinary(d["n"])
    if d["type"] == "Dict":
        return spaces.Dict({k: space_from_json(v) for k, v in d["spaces"]})
    if d["type"] == "Tuple":
        return spaces.Tuple([space_from_json(v) for v in d["spaces"]])
    raise ValueError(f"unknown space type {d['type']!r}")


def check_actions(actions: np.ndarray, space: spaces.Space, name: str = "actions") -> np.ndarray:
    """``actions`` ``[M]`` (Discrete) or ``[M, D]`` (Box) checked against ``space``.

    Raises ValueError naming ``name`` on a wrong shape, NaN/inf, a non-integer Discrete
    action, or any action outside the space (Box bounds inclusive).
    """
    actions = np.asarray(actions)
    if isinstance(space, spaces.Discrete):
        if actions.ndim != 1:
            raise ValueError(f"{name} for a Discrete space must have shape [M], "
                             f"got {actions.shape}")
        if actions.dtype.kind == "f":
            if not np.isfinite(actions).all():
                raise ValueError(f"{name} contains NaN or inf")
            if np.any(actions != np.round(actions)):
                raise ValueError(f"{name} for a Discrete space must be integers")
        elif actions.dtype.kind not in "iu":
            raise TypeError(f"{name} must be integer actions, got dtype {actions.dtype}")
        actions = actions.astype(np.int64)
        lo, hi = int(space.start), int(space.start + space.n - 1)
        if actions.size and (actions.min() < lo or actions.max() > hi):
            raise ValueError(f"{name} outside the action space {space}: values in "
                             f"[{actions.min()}, {actions.max()}]")
        return actions
    if isinstance(space, spaces.Box):
        if actions.dtype.kind not in "biuf":
            raise TypeError(f"{name} must be numeric, got dtype {actions.dtype}")
        actions = np.asarray(actions, dtype=np.float64 if actions.dtype.kind != "f"
                             else actions.dtype)
        if actions.ndim != 1 + len(space.shape) or actions.shape[1:] != space.shape:
            raise ValueError(f"{name} must have shape [M, {', '.join(map(str, space.shape))}], "
                             f"got {actions.shape}")
        if not np.isfinite(actions).all():
            raise ValueError(f"{name} contains NaN or inf")
        if np.any(actions < space.low) or np.any(actions > space.high):
            raise ValueError(f"{name} outside the action space {space}")
        return actions
    raise TypeError(f"action space must be Discrete or Box, got {type(space).__name__}")


def _ends(terminated: np.ndarray, truncated: np.ndarray, lengths: np.ndarray) -> None:
    """Check that each episode's last step, and only it, is terminated or truncated."""
    done = terminated | truncated
    last = np.cumsum(lengths) - 1
    expected = np.zeros_like(done)
    expected[last] = True
    if not np.array_equal(done, expected):
        bad = int(np.flatnonzero(done != expected)[0])
        raise ValueError(
            f"episode boundaries: step {bad} is {'done' if done[bad] else 'not done'} but "
            f"episode_lengths says it {'ends' if expected[bad] else 'does not end'} an episode "
            "(terminated | truncated must be True exactly at each episode's last step)")


@dataclass(frozen=True, eq=False)
class Demonstrations:
    """Expert episodes (see the module docstring for the fields' shapes).

    Build with :meth:`from_episodes` (a list of per-episode dicts) or directly from the
    concatenated arrays; either way every field is validated and errors name the field.
    """

    obs: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    final_obs: np.ndarray
    episode_lengths: np.ndarray
    observation_space: spaces.Box
    action_space: spaces.Space
    env_id: str | None = None
    raw_observation_space: spaces.Space | None = None

    def __post_init__(self):
        set_ = object.__setattr__
        if not (isinstance(self.observation_space, spaces.Box)
                and len(self.observation_space.shape) == 1):
            raise TypeError(f"observation_space must be a 1-D Box (the flattened observations "
                            f"the network sees), got {self.observation_space}; for a "
                            "Discrete/Dict/... env pass it as raw_observation_space")
        raw = self.observation_space if self.raw_observation_space is None \
            else self.raw_observation_space
        try:
            flat = flat_observation_space(raw)
        except UnsupportedSpaceError as e:
            raise TypeError(f"raw_observation_space: {e}") from None
        if space_to_json(flat) != space_to_json(self.observation_space):
            raise ValueError(f"raw_observation_space {raw} flattens to {flat}, not to "
                             f"observation_space {self.observation_space}")
        if not needs_flattening(raw):       # a 1-D Box env: one space, one object
            raw = self.observation_space
        set_(self, "raw_observation_space", raw)
        lengths = np.asarray(self.episode_lengths)
        if lengths.ndim != 1 or lengths.size == 0 or lengths.dtype.kind not in "iu":
            raise ValueError(f"episode_lengths must be a non-empty 1-D integer array, got "
                             f"{lengths.shape} {lengths.dtype}")
        if lengths.min() < 1:
            raise ValueError("episode_lengths must be >= 1 (an episode has at least one step)")
        lengths = lengths.astype(np.int64)
        m, e, obs_dim = int(lengths.sum()), lengths.size, self.observation_space.shape[0]
        for name, shape in (("obs", (m, obs_dim)), ("final_obs", (e, obs_dim))):
            arr = np.asarray(getattr(self, name))
            if arr.dtype.kind != "f":
                raise TypeError(f"{name} must be a float array, got dtype {arr.dtype}")
            if arr.shape != shape:
                raise ValueError(f"{name} must have shape {shape} (episode_lengths sum to {m}, "
                                 f"{e} episodes), got {arr.shape}")
            if not np.isfinite(arr).all():
                raise ValueError(f"{name} contains NaN or inf")
            set_(self, name, arr)
        actions = check_actions(self.actions, self.action_space)
        if actions.shape[0] != m:
            raise ValueError(f"actions must have {m} rows (sum of episode_lengths), "
                             f"got {actions.shape[0]}")
        rewards = np.asarray(self.rewards, dtype=np.float64)
        if rewards.shape != (m,):
            raise ValueError(f"rewards must have shape ({m},), got {rewards.shape}")
        if not np.isfinite(rewards).all():
            raise ValueError("rewards contains NaN or inf")
        flags = []
        for name in ("terminated", "truncated"):
            arr = np.asarray(getattr(self, name))
            if arr.dtype != np.bool_ or arr.shape != (m,):
                raise ValueError(f"{name} must be a bool array of shape ({m},), got "
                                 f"{arr.shape} {arr.dtype}")
            flags.append(arr)
        _ends(flags[0], flags[1], lengths)
        set_(self, "actions", actions)
        set_(self, "rewards", rewards)
        set_(self, "terminated", flags[0])
        set_(self, "truncated", flags[1])
        set_(self, "episode_lengths", lengths)

    # ----- construction -------------------------------------------------------------------

    @classmethod
    def from_episodes(cls, episodes: list[dict], observation_space, action_space,
                      env_id: str | None = None,
                      raw_observation_space: spaces.Space | None = None) -> "Demonstrations":
        """Concatenate per-episode dicts with keys ``obs [T+1, obs_dim]`` (s_1..s_{T+1}, the
        last one final; flattened float observations), ``actions [T, ...]``, ``rewards [T]``,
        ``terminated [T]``, ``truncated [T]``. Raises ValueError naming the episode and field
        of a ragged episode.
        """
        if not episodes:
            raise ValueError("episodes must not be empty")
        parts = {k: [] for k in ("obs", "actions", "rewards", "terminated", "truncated")}
        finals, lengths = [], []
        for i, ep in enumerate(episodes):
            obs = np.asarray(ep["obs"])
            t = len(ep["actions"])
            if obs.ndim != 2 or obs.shape[0] != t + 1:
                raise ValueError(f"episodes[{i}]['obs'] must have T+1 = {t + 1} rows (T = "
                                 f"len(actions)), got shape {obs.shape}")
            for key in ("rewards", "terminated", "truncated"):
                if len(ep[key]) != t:
                    raise ValueError(f"episodes[{i}][{key!r}] has length {len(ep[key])}, "
                                     f"but actions has {t} (ragged episode)")
            parts["obs"].append(obs[:-1])
            finals.append(obs[-1])
            for key in ("actions", "rewards", "terminated", "truncated"):
                parts[key].append(np.asarray(ep[key]))
            lengths.append(t)
        cat = {k: np.concatenate(v) for k, v in parts.items()}
        return cls(cat["obs"], cat["actions"], cat["rewards"], cat["terminated"],
                   cat["truncated"], np.stack(finals), np.asarray(lengths, np.int64),
                   observation_space, action_space, env_id, raw_observation_space)

    # ----- views --------------------------------------------------------------------------

    @property
    def n_episodes(self) -> int:
        return int(self.episode_lengths.size)

    def __len__(self) -> int:
        """M, the number of (s, a) pairs."""
        return int(self.episode_lengths.sum())

    def episode_returns(self) -> np.ndarray:
        """sum_t r_t per episode, ``[E]``."""
        starts = np.concatenate([[0], np.cumsum(self.episode_lengths)[:-1]])
        return np.add.reduceat(self.rewards, starts)

    def episode(self, i: int) -> dict:
        """Episode ``i`` as a dict in :meth:`from_episodes`' format (obs with T+1 rows)."""
        if not 0 <= i < self.n_episodes:
            raise IndexError(f"episode index {i} out of range [0, {self.n_episodes})")
        start = int(self.episode_lengths[:i].sum())
        sl = slice(start, start + int(self.episode_lengths[i]))
        return {"obs": np.concatenate([self.obs[sl], self.final_obs[i:i + 1]]),
                "actions": self.actions[sl], "rewards": self.rewards[sl],
                "terminated": self.terminated[sl], "truncated": self.truncated[sl]}

    def first_episodes(self, n: int) -> "Demonstrations":
        """The first ``n`` episodes (for label-budget sweeps)."""
        if not 1 <= n <= self.n_episodes:
            raise ValueError(f"n must be in [1, {self.n_episodes}], got {n}")
        return Demonstrations.from_episodes([self.episode(i) for i in range(n)],
                                            self.observation_space, self.action_space,
                                            self.env_id, self.raw_observation_space)

    def first_steps(self, n: int) -> "Demonstrations":
        """The first ``n`` (s, a) pairs in episode order: whole episodes, the last one cut
        after its ``n``-th step and marked truncated there (unless it terminated). A label
        budget of ``n`` pairs taken from a stream of whole expert trajectories."""
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= len(self):
            raise ValueError(f"n must be an integer in [1, {len(self)}], got {n!r}")
        episodes, left = [], int(n)
        for i in range(self.n_episodes):
            ep = self.episode(i)
            t = len(ep["actions"])
            if t >= left:
                ep = {"obs": ep["obs"][:left + 1], "actions": ep["actions"][:left],
                      "rewards": ep["rewards"][:left],
                      "terminated": ep["terminated"][:left].copy(),
                      "truncated": ep["truncated"][:left].copy()}
                ep["truncated"][-1] = not ep["terminated"][-1]
                episodes.append(ep)
                break
            episodes.append(ep)
            left -= t
        return Demonstrations.from_episodes(episodes, self.observation_space,
                                            self.action_space, self.env_id,
                                            self.raw_observation_space)

    def equals(self, other: "Demonstrations") -> bool:
        """Bit-identical arrays (and dtypes), spaces (raw ones too) and env id."""
        names = ("obs", "actions", "rewards", "terminated", "truncated", "final_obs",
                 "episode_lengths")
        return (all(getattr(self, n).dtype == getattr(other, n).dtype
                    and np.array_equal(getattr(self, n), getattr(other, n)) for n in names)
                and space_to_json(self.observation_space) == space_to_json(other.observation_space)
                and space_to_json(self.action_space) == space_to_json(other.action_space)
                and space_to_json(self.raw_observation_space)
                == space_to_json(other.raw_observation_space)
                and self.env_id == other.env_id)

    # ----- .npz ---------------------------------------------------------------------------

    def save_npz(self, path: str | Path) -> None:
        """Write every array plus a JSON ``meta`` string to ``path`` (no pickle), atomically:
        a failed write leaves a previous file at ``path`` intact (``minirl.io``)."""
        meta = {"format": "minirl.Demonstrations", "version": 1, "env_id": self.env_id,
                "observation_space": space_to_json(self.observation_space),
                "action_space": space_to_json(self.action_space),
                "raw_observation_space": space_to_json(self.raw_observation_space)}
        with atomic_open(path, "wb") as f:
            np.savez(f, meta=np.array(json.dumps(meta)), obs=self.obs, actions=self.actions,
                     rewards=self.rewards, terminated=self.terminated, truncated=self.truncated,
                     final_obs=self.final_obs, episode_lengths=self.episode_lengths)

    @classmethod
    def load_npz(cls, path: str | Path) -> "Demonstrations":
        """Read a file written by :meth:`save_npz` (``allow_pickle=False``). Files from before
        raw observation spaces were saved (1-D Box envs only) load with raw = observation_space."""
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        except FileNotFoundError:
            raise
        except Exception as e:  # noqa: BLE001 - zipfile, OSError, numpy's pickle guess ...
            why = ("not an .npz archive" if "pickled" in str(e)
                   else f"{type(e).__name__}: {e}")
            raise ValueError(f"{path} is not a minirl demonstrations file (.npz written by "
                             f"save_npz): {why}") from None
        if "meta" not in arrays:
            raise ValueError(f"{path} is not a minirl demonstrations file (no 'meta' entry)")
        meta = json.loads(str(arrays.pop("meta")))
        if meta.get("format") != "minirl.Demonstrations":
            raise ValueError(f"{path} is not a minirl demonstrations file")
        return cls(**arrays, observation_space=space_from_json(meta["observation_space"]),
                   action_space=space_from_json(meta["action_space"]), env_id=meta["env_id"],
                   raw_observation_space=(space_from_json(meta["raw_observation_space"])
                                          if meta.get("raw_observation_space") else None))

    # ----- Minari -------------------------------------------------------------------------

    def to_minari(self, dataset_id: str, path: str | Path):
        """Write a Minari dataset under the directory ``path`` and return it (local only).

        ``dataset_id`` follows Minari's ``[namespace/]name-v<version>`` syntax; the data lands
        in ``path/<dataset_id>``. Observations are written in the env's own (raw) space, as
        Minari's DataCollector records them: one-hot rows back to Discrete states, flat rows
        back to Dict/Tuple parts (``gymnasium.spaces.unflatten``). Needs
        ``pip install minirl-numeric-reference[minari]``.
        """
        minari = _import_minari()
        from minari.data_collector import EpisodeBuffer

        raw = self.raw_observation_space
        buffers = []
        for i in range(self.n_episodes):
            ep = self.episode(i)
            obs = _unflatten_rows(raw, ep["obs"]) if needs_flattening(raw) else ep["obs"]
            buffers.append(EpisodeBuffer(
                id=i, observations=obs, actions=ep["actions"],
                rewards=list(ep["rewards"]), terminations=list(ep["terminated"]),
                truncations=list(ep["truncated"]), infos={}))
        with _minari_root(path), warnings.catch_warnings():
            # Minari asks for author/e-mail/permalink metadata a local dataset does not have.
            warnings.filterwarnings("ignore", category=UserWarning, module="minari")
            return minari.create_dataset_from_buffers(
                dataset_id, buffers, env=self.env_id, algorithm_name="minirl expert",
                author="minirl", description="expert demonstrations written by minirl",
                action_space=self.action_space, observation_space=raw,
                data_format="hdf5")

    @classmethod
    def from_minari(cls, dataset) -> "Demonstrations":
        """From a ``minari.MinariDataset`` or the path of a local Minari dataset directory.
        Observations of a space other than a 1-D Box (Discrete, Dict, ...) are flattened as
        the agents see them (``minirl.spaces.flatten_observation``) and the space is kept as
        ``raw_observation_space``."""
        minari = _import_minari()
        if isinstance(dataset, (str, os.PathLike)):
            p = Path(dataset)
            data_dir = p / "data" if (p / "data").is_dir() else p
            dataset = minari.MinariDataset(data_dir)
        raw = dataset.observation_space
        flat = flat_observation_space(raw)
        episodes = [{"obs": (flatten_observation(raw, ep.observations)[0] if flat is not raw
                             else ep.observations),
                     "actions": ep.actions, "rewards": ep.rewards,
                     "terminated": ep.terminations, "truncated": ep.truncations}
                    for ep in dataset.iterate_episodes()]
        env_id = dataset.spec.env_spec.id if dataset.spec.env_spec is not None else None
        return cls.from_episodes(episodes, flat, dataset.action_space, env_id, raw)

    @classmethod
    def load(cls, path: str | Path) -> "Demonstrations":
        """A ``.npz`` file (:meth:`load_npz`) or a Minari dataset directory
        (:meth:`from_minari`)."""
        p = Path(path)
        if p.is_dir():
            return cls.from_minari(p)
        if not p.exists():
            raise ValueError(f"demos path {str(path)!r} does not exist")
        return cls.load_npz(p)


def _unflatten_rows(space: spaces.Space, rows: np.ndarray):
    """Flat rows ``[N, obs_dim]`` -> the N raw observations of ``space`` in gymnasium's
    vector format (Discrete: ``[N]`` ints; Dict: a dict of ``[N, ...]`` arrays; ...)."""
    from gymnasium.vector.utils import concatenate, create_empty_array
    items = [spaces.unflatten(space, r) for r in rows]
    return concatenate(space, items, create_empty_array(space, len(items)))


def _import_minari():
    try:
        import minari
    except ImportError as e:  # pragma: no cover - exercised only without the extra
        raise ImportError("Minari support needs the optional extra: "
                          "pip install 'minirl-numeric-reference[minari]'") from e
    return minari


class _minari_root:
    """Point ``MINARI_DATASETS_PATH`` at ``path`` for one call (Minari reads it per call)."""

    def __init__(self, path):
        self.path = str(path)

    def __enter__(self):
        self.old = os.environ.get("MINARI_DATASETS_PATH")
        os.environ["MINARI_DATASETS_PATH"] = self.path

    def __exit__(self, *exc):
        if self.old is None:
            os.environ.pop("MINARI_DATASETS_PATH", None)
        else:
            os.environ["MINARI_DATASETS_PATH"] = self.old
