"""Plumbing shared by the on-policy agents: the actor-critic network, predict/evaluate,
seeding, and save/load. No learning rule lives here (see ppo.py, actor_critic.py, reinforce.py).

``ActorCriticNet`` maps observations to a policy distribution and a value:

    theta = [actor MLP | log_std (Box only) | critic MLP]      (one flat vector)
    Discrete(A): logits = actor(s) [B, A]           -> Categorical(logits)
    Box(D):      mean   = actor(s) [B, D], log_std [D] (state-independent) -> DiagGaussian
    V(s)         = critic(s)[:, 0]  [B]
    shared=True: one MLP s -> [logits or mean | V] (shared hidden layers, two output heads).

Seeding: one ``numpy.random.Generator`` per agent (``seed``) draws initial weights, actions,
minibatch orders and the env reset seed at the start of every ``learn`` call; a second one
(``[seed, 1]``) serves ``predict``/``evaluate`` so that looking at an agent never changes how
it trains. ``save`` stores parameters, optimizer moments, normalizer statistics, config and
both generators' states in one ``.npz`` (no pickle), so ``load(path).learn(n)`` continues
bit for bit like the saved agent's own ``learn(n)`` would.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from minirl.distributions import Categorical, DiagGaussian
from minirl.envs import make_env, make_vector_env
from minirl.nn import MLP, AdamState, ReLU, Tanh
from minirl.normalize import ObsNormalizer, RewardScaler
from minirl.rollout import RolloutCollector

__all__ = ["ActorCriticNet", "Agent", "check_config", "load_agent_state", "read_saved"]

ACTIVATIONS = {"tanh": Tanh, "relu": ReLU}


def check_config(cfg, **ranges) -> None:
    """Validate the fields every agent config shares, plus ``ranges``: name -> (lo, hi) for
    numbers that must lie in [lo, hi] (hi None: unbounded). Raises ValueError naming the field.
    Normalizes ``hidden_sizes`` to a tuple (JSON gives back lists)."""
    object.__setattr__(cfg, "hidden_sizes", tuple(int(h) for h in cfg.hidden_sizes))
    ranges = {"num_envs": (1, None), "num_steps": (1, None), "gamma": (0.0, 1.0), **ranges}
    for name, (lo, hi) in ranges.items():
        x = getattr(cfg, name)
        if isinstance(lo, int) and not isinstance(x, int):
            raise ValueError(f"{name} must be an integer, got {x!r}")
        if isinstance(x, bool) or not isinstance(x, (int, float)) or not lo <= x <= (
                float("inf") if hi is None else hi):
            raise ValueError(f"{name} must be in [{lo}, {'inf' if hi is None else hi}], got {x!r}")
    if not cfg.hidden_sizes or min(cfg.hidden_sizes) < 1:
        raise ValueError(f"hidden_sizes must be positive layer widths, got {cfg.hidden_sizes}")
    if cfg.activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {cfg.activation!r}")
    if cfg.dtype not in ("float32", "float64"):
        raise ValueError(f"dtype must be 'float32' or 'float64', got {cfg.dtype!r}")
    if cfg.vectorization not in ("sync", "async"):
        raise ValueError(f"vectorization must be 'sync' or 'async', got {cfg.vectorization!r}")


class ActorCriticNet:
    """pi(a|s) and V(s) with every parameter in one flat vector (see module docstring)."""

    def __init__(self, obs_dim: int, action_space: spaces.Space, hidden_sizes=(64, 64),
                 activation: str = "tanh", shared: bool = False, log_std_init: float = 0.0,
                 dtype=np.float32):
        self.discrete = isinstance(action_space, spaces.Discrete)
        if not self.discrete and not (isinstance(action_space, spaces.Box)
                                      and len(action_space.shape) == 1):
            raise TypeError(f"action space must be Discrete or a 1-D Box, got {action_space}")
        self.act_dim = int(action_space.n) if self.discrete else int(action_space.shape[0])
        self.shared, self.log_std_init = bool(shared), float(log_std_init)
        act, sizes = ACTIVATIONS[activation], [int(obs_dim), *hidden_sizes]
        self.dtype = np.dtype(dtype)
        self.actor = MLP([*sizes, self.act_dim + (1 if shared else 0)], act, dtype=self.dtype)
        self.critic = None if shared else MLP([*sizes, 1], act, dtype=self.dtype)
        n_std = 0 if self.discrete else self.act_dim
        a = self.actor.n_params
        self.actor_slice, self.log_std_slice = slice(0, a), slice(a, a + n_std)
        self.pi_slice = slice(0, a + n_std)             # what the policy loss moves
        self.vf_slice = slice(a + n_std, a + n_std + (0 if shared else self.critic.n_params))
        self.n_params = self.vf_slice.stop
        self._ws = {"actor": self.actor.workspace()}
        self._last_split = (None, None, None)
        self._grad = np.zeros(self.n_params, self.dtype)   # backward's scratch, copied out
        self._grad_split = (self._grad[self.actor_slice], self._grad[self.vf_slice])
        if self.critic is not None:
            self._ws["critic"] = self.critic.workspace()

    def init(self, rng: np.random.Generator) -> np.ndarray:
        """Orthogonal init, gain sqrt(2) hidden, 0.01 policy head, 1 value head; biases 0."""
        params = np.zeros(self.n_params, self.dtype)
        params[self.actor_slice] = self.actor.init(rng, out_gain=0.01 if not self.shared else 1.0)
        if self.shared:  # one output layer, two heads: shrink only the policy columns
            w = self.actor.views(params[self.actor_slice])[f"{len(self.actor.layers) - 1}.weight"]
            w[:, :self.act_dim] *= 0.01
        else:
            params[self.vf_slice] = self.critic.init(rng, out_gain=1.0)
        params[self.log_std_slice] = self.log_std_init
        return params

    def _split(self, params: np.ndarray) -> tuple:
        """(actor, critic) views of ``params``. The last pair is kept (with ``params`` itself,
        so its id cannot be reused): the MLPs then find their memoized layer views by identity,
        ~2 us faster than by address, for the rollout's many calls with the same params."""
        if self._last_split[0] is not params:
            critic = None if self.shared else params[self.vf_slice]
            self._last_split = (params, params[self.actor_slice], critic)
        return self._last_split[1:]

    def forward(self, params: np.ndarray, obs: np.ndarray):
        """obs [B, obs_dim] -> (dist over [B] actions, values [B], cache for ``backward``)."""
        p_actor, p_critic = self._split(params)
        out, cache_a = self.actor.forward(p_actor, obs, self._ws["actor"])
        if self.shared:
            head, values, cache_v = out[:, :self.act_dim], out[:, self.act_dim], None
        else:
            v, cache_v = self.critic.forward(p_critic, obs, self._ws["critic"])
            head, values = out, v[:, 0]
        dist = (Categorical._trusted(head) if self.discrete
                else DiagGaussian(head, params[self.log_std_slice]))
        return dist, values.copy(), (cache_a, cache_v)

    def backward(self, params: np.ndarray, cache, ddist, dvalues=None) -> np.ndarray:
        """dtheta [n_params] from ddist (dlogits [B, A] or (dmean [B, D], dlog_std [D])) and
        dvalues [B] (None: the critic gets no gradient)."""
        cache_a, cache_v = cache
        p_actor, p_critic = self._split(params)
        # Written into one persistent buffer whose slices the MLPs have memoized views of
        # (a fresh vector costs two view rebuilds, ~13 us); the caller gets a copy.
        grad, (g_actor, g_critic) = self._grad, self._grad_split
        dhead = ddist if self.discrete else ddist[0]
        if not self.discrete:
            grad[self.log_std_slice] = ddist[1]
        if self.shared:
            dout = np.zeros((dhead.shape[0], self.act_dim + 1), self.dtype)
            dout[:, :self.act_dim] = dhead
            if dvalues is not None:
                dout[:, self.act_dim] = dvalues
            dhead = dout
        elif dvalues is None:
            g_critic[:] = 0.0
        else:
            self.critic.backward(p_critic, cache_v, dvalues[:, None], need_dx=False, out=g_critic)
        self.actor.backward(p_actor, cache_a, dhead, need_dx=False, out=g_actor)
        return grad.copy()

    def act(self, params: np.ndarray, obs: np.ndarray, rng: np.random.Generator):
        """Sample a ~ pi(.|s): (actions [B, ...], logp [B], values [B]) — the rollout's ``act``."""
        dist, values, _ = self.forward(params, obs)
        actions = dist.sample(rng)
        return actions, dist.log_prob(actions), values

    def value(self, params: np.ndarray, obs: np.ndarray) -> np.ndarray:
        """V(s) [B] for obs [B, obs_dim]."""
        if self.shared:
            return self.forward(params, obs)[1]
        return self.critic.forward(self._split(params)[1], obs, self._ws["critic"])[0][:, 0].copy()


class Agent:
    """Base of the on-policy agents: ``Algo(env, config, seed)``, predict, evaluate, save, load.

    Subclasses set ``name`` and ``Config`` and implement ``learn``; they keep optimizer
    states in ``self.opt_states`` (name -> AdamState) and any other scalar state they need to
    continue training in ``self.extra_state`` (JSON-able), so save/load covers them.
    """

    name = "agent"
    Config: type = None

    def __init__(self, env: str | gym.Env | gym.vector.VectorEnv, config=None, seed: int = 0):
        config = self.Config() if config is None else config
        if not isinstance(config, self.Config):
            raise TypeError(f"config must be a {self.Config.__name__}, got {type(config).__name__}")
        self.config, self.seed = config, int(seed)
        self.env_id = env if isinstance(env, str) else getattr(getattr(env, "spec", None), "id", None)
        self.envs = make_vector_env(env, config.num_envs, config.vectorization)
        if self.envs.num_envs != config.num_envs:
            raise ValueError(f"the vector env has {self.envs.num_envs} envs but config.num_envs "
                             f"is {config.num_envs}")
        obs_space = self.envs.single_observation_space
        if not (isinstance(obs_space, spaces.Box) and len(obs_space.shape) == 1):
            raise TypeError(f"observation space must be a 1-D Box, got {obs_space}")
        self.rng = np.random.default_rng(self.seed)
        self.eval_rng = np.random.default_rng([self.seed, 1])
        self.obs_normalizer = ObsNormalizer(obs_space.shape) if config.normalize_obs else None
        self.reward_scaler = (RewardScaler(config.num_envs, config.gamma)
                              if config.normalize_reward else None)
        self.collector = RolloutCollector(self.envs, config.num_steps, self.obs_normalizer,
                                          self.reward_scaler, dtype=np.dtype(config.dtype))
        self.net = ActorCriticNet(obs_space.shape[0], self.envs.single_action_space,
                                  config.hidden_sizes, config.activation,
                                  getattr(config, "shared_trunk", False), config.log_std_init,
                                  dtype=np.dtype(config.dtype))
        self.params = self.net.init(self.rng)
        self.opt_states: dict[str, AdamState] = {}
        self.extra_state: dict[str, Any] = {}
        self.total_steps = 0
        self.iterations = 0

    # ----- training helpers shared by the subclasses --------------------------------------

    def _act(self, obs, rng):
        return self.net.act(self.params, obs, rng)

    def _value(self, obs):
        return self.net.value(self.params, obs)

    def _start_learning(self) -> None:
        """Fresh episodes at the start of every ``learn`` call (seed drawn from ``self.rng``),
        so a loaded agent continues exactly as the saved one would have."""
        self.collector.reset(seed=int(self.rng.integers(2**31 - 1)))

    def _end_iteration(self, callback, **metrics) -> bool:
        """Count one iteration's N*T steps and hand ``metrics`` plus the episodes finished
        since the last call to ``callback(agent, metrics)``; False when the callback stops."""
        self.total_steps += self.config.num_envs * self.config.num_steps
        self.iterations += 1
        ep_returns, ep_lengths = self.collector.pop_episodes()
        if callback is None:
            return True
        metrics = {"steps": self.total_steps, "iteration": self.iterations,
                   "episode_returns": ep_returns, "episode_lengths": ep_lengths, **metrics}
        return callback(self, metrics) is not False

    def learn(self, total_steps: int, callback=None):
        raise NotImplementedError

    # ----- acting --------------------------------------------------------------------------

    def predict(self, obs: np.ndarray, deterministic: bool = False) -> np.ndarray:
        """Env-ready actions for obs ``[obs_dim]`` or ``[B, obs_dim]`` (Box actions clipped)."""
        obs = np.asarray(obs, dtype=np.float64)
        single = obs.ndim == len(self.envs.single_observation_space.shape)
        x = obs[None] if single else obs
        if self.obs_normalizer is not None:
            x = self.obs_normalizer(x, update=False)
        dist, _, _ = self.net.forward(self.params, x)
        actions = dist.mode() if deterministic else dist.sample(self.eval_rng)
        space = self.envs.single_action_space
        if isinstance(space, spaces.Box):
            actions = np.clip(actions, space.low, space.high)
        return actions[0] if single else actions

    def evaluate(self, n_episodes: int = 10, deterministic: bool = True,
                 render_mode: str | None = None, seed: int | None = None) -> np.ndarray:
        """Returns of ``n_episodes`` episodes on a fresh single env, ``[n_episodes]``."""
        if self.env_id is None:
            raise ValueError("evaluate needs an agent built from an env id (or an env with a spec)")
        env = make_env(self.env_id, render_mode=render_mode)
        returns = np.zeros(n_episodes)
        for k in range(n_episodes):
            obs, _ = env.reset(seed=None if seed is None else seed + k)
            done = False
            while not done:
                obs, r, terminated, truncated, _ = env.step(self.predict(obs, deterministic))
                returns[k] += r
                done = terminated or truncated
        env.close()
        return returns

    # ----- persistence ---------------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        """Write everything needed to predict and to continue training to ``path`` (.npz)."""
        arrays = {"params": self.params}
        for name, st in self.opt_states.items():
            arrays[f"opt.{name}.m"], arrays[f"opt.{name}.v"] = st.m, st.v
        for key, norm in (("obs_norm", self.obs_normalizer), ("rew_scale", self.reward_scaler)):
            if norm is not None:
                for k, v in norm.state_dict().items():
                    arrays[f"{key}.{k}"] = np.asarray(v)
        meta = {
            "algo": self.name, "config": dataclasses.asdict(self.config), "env_id": self.env_id,
            "seed": self.seed, "total_steps": self.total_steps, "iterations": self.iterations,
            "opt_steps": {n: st.step for n, st in self.opt_states.items()},
            "extra_state": self.extra_state,
            "rng": self.rng.bit_generator.state, "eval_rng": self.eval_rng.bit_generator.state,
        }
        with open(path, "wb") as f:
            np.savez(f, meta=np.array(json.dumps(meta)), **arrays)

    @classmethod
    def load(cls, path: str | Path, env=None) -> "Agent":
        """An agent restored from ``save``; ``env`` defaults to the saved env id."""
        meta, arrays = read_saved(path)
        if meta["algo"] != cls.name:
            raise ValueError(f"{path} holds a {meta['algo']!r} agent, not {cls.name!r}")
        agent = cls(env if env is not None else meta["env_id"], cls.Config(**meta["config"]),
                    seed=meta["seed"])
        load_agent_state(agent, meta, arrays)
        return agent


def read_saved(path: str | Path) -> tuple[dict, dict[str, np.ndarray]]:
    """(meta, arrays) of a file written by ``Agent.save``."""
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    return json.loads(str(arrays.pop("meta"))), arrays


def load_agent_state(agent: Agent, meta: dict, arrays: dict[str, np.ndarray]) -> None:
    """Put saved parameters, optimizer moments, normalizers, counters and RNGs into ``agent``."""
    agent.params = arrays["params"].copy()
    agent.opt_states = {n: AdamState(step=s, m=arrays[f"opt.{n}.m"], v=arrays[f"opt.{n}.v"])
                        for n, s in meta["opt_steps"].items()}
    for key, norm in (("obs_norm", agent.obs_normalizer), ("rew_scale", agent.reward_scaler)):
        if norm is not None:
            norm.load_state_dict({k.split(".", 1)[1]: v for k, v in arrays.items()
                                  if k.startswith(key + ".")})
    agent.total_steps, agent.iterations = meta["total_steps"], meta["iterations"]
    agent.extra_state = dict(meta["extra_state"])
    agent.rng.bit_generator.state = meta["rng"]
    agent.eval_rng.bit_generator.state = meta["eval_rng"]
