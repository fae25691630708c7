"""Plumbing shared by every agent family; no learning rule lives here.

Two classes:

* ``Agent`` — what every algorithm (on-policy, off-policy, imitation, gradient-free) shares:
  construction from an env id / env / vector env, config and seed validation, the training and
  evaluation generators, optional observation normalization, ``predict``/``evaluate``, atomic
  ``save`` and validated ``load``, and the per-iteration bookkeeping (``_end_iteration``).
  A subclass sets ``name``, ``Config`` and ``log_fields`` and implements ``_build`` (networks,
  parameters, buffers), ``_policy`` (normalized observations -> actions) and ``learn``.
* ``OnPolicyAgent`` — adds the actor-critic network, reward scaling and the rollout collector
  that PPO, A2C and REINFORCE share.

``ActorCriticNet`` maps observations to a policy distribution and a value:

    theta = [actor MLP | log_std (Box only) | critic MLP]      (one flat vector)
    Discrete(A): logits = actor(s) [B, A]           -> Categorical(logits)
    MultiDiscrete(nvec): logits [B, sum(nvec)]      -> MultiCategorical (one softmax per entry)
    MultiBinary(K):      logits [B, K]              -> Bernoulli (one sigmoid per bit)
    Box(D):      mean   = actor(s) [B, D], log_std [D] (state-independent) -> DiagGaussian
    Box(D), use_sde=True: mean = actor(s), log_std [F, D] (F = last hidden width), features
                 z(s) = the actor's last hidden layer -> StateDependentNoise (gSDE; the
                 features get no gradient through the noise, Stable-Baselines3's default)
    V(s)         = critic(s)[:, 0]  [B]
    shared=True: one MLP s -> [logits or mean | V] (shared hidden layers, two output heads).

Seeding: one ``numpy.random.Generator`` per agent (``seed``) draws initial weights, actions,
minibatch orders and the env reset seed at the start of every ``learn`` call; a second one
(``[seed, 1]``) serves ``predict``/``evaluate`` so that looking at an agent never changes how
it trains. ``save`` stores every array of ``state_arrays()`` (parameters, optimizer moments,
normalizer statistics, buffers a subclass adds), the config, counters and both generators'
states in one ``.npz`` (no pickle), so ``load(path).learn(n)`` continues bit for bit like the
saved agent's own ``learn(n)`` would. ``load`` checks every saved array's name, shape and dtype
against a freshly built agent before using any of them.
"""
from __future__ import annotations

import contextvars
import dataclasses
import json
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from minirl.envs import EPISODE_CAP, check_render_mode, make_env, make_vector_env
from minirl.distributions.categorical import _sample_log_prob as _categorical_act
from minirl.distributions.gaussian import _sample_log_prob as _gaussian_act
from minirl.distributions.sde import StateDependentNoise, sample_noise
from minirl.distributions.sde import _act_with_noise as _sde_act
from minirl.io import atomic_open
from minirl.nn import ACTIVATIONS, MLP, AdamState
from minirl.nn.init import lecun_uniform
from minirl.nn.mlp import cast_checked
from minirl.normalize import ObsNormalizer, RewardScaler
from minirl.rollout import RolloutCollector
from minirl.spaces import ActionAdapter, flatten_observation, needs_flattening

__all__ = ["ActorCriticNet", "Agent", "OnPolicyAgent", "check_config", "check_seed",
           "load_agent_state", "read_saved"]



#: Config fields for which +inf is a meaningful value (no clipping / a pure quadratic loss).
INFINITE_OK = frozenset({"max_grad_norm", "huber_delta"})


def check_config(cfg, **ranges) -> None:
    """Validate an agent config; raises ValueError naming the field.

    Every field is checked against the type of its default: a bool field must hold a bool
    (``anneal_lr='no'`` is refused, not read as true), an int field an integer (not 2.5, not
    True), a float field a real number that is not NaN and, unless listed in ``INFINITE_OK``,
    not +-inf; a str field a str. Then the fields agent configs share (each only if ``cfg``
    has it) and ``ranges``: name -> (lo, hi) for numbers that must lie in [lo, hi] (hi None:
    unbounded above but finite; an int ``lo`` makes the field an integer field). Normalizes
    ``hidden_sizes`` to a tuple of ints (JSON gives back lists)."""
    _check_field_types(cfg)
    # log_std_init: exp(+-20) spans 2e-9 .. 5e8, far past any useful initial action std, and
    # keeps float32 sigma, sigma^2 and 1/sigma^2 finite (-1e308 passed before and overflowed).
    shared = {"num_envs": (1, None), "num_steps": (1, None), "gamma": (0.0, 1.0),
              "log_std_init": (-20.0, 20.0)}
    ranges = {**{k: v for k, v in shared.items() if hasattr(cfg, k)}, **ranges}
    if hasattr(cfg, "hidden_sizes"):
        sizes = cfg.hidden_sizes
        if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__iter__"):
            raise ValueError(f"hidden_sizes must be a sequence of layer widths, got {sizes!r}")
        sizes = tuple(sizes)
        if not sizes or any(isinstance(h, bool) or not isinstance(h, (int, np.integer)) or h < 1
                            for h in sizes):
            raise ValueError(f"hidden_sizes must be positive integer layer widths, got {sizes!r}")
        object.__setattr__(cfg, "hidden_sizes", tuple(int(h) for h in sizes))
    for name, (lo, hi) in ranges.items():
        x = getattr(cfg, name)
        if isinstance(lo, int) and not isinstance(x, (int, np.integer)):
            raise ValueError(f"{name} must be an integer, got {x!r}")
        if isinstance(x, bool) or not isinstance(x, (int, float, np.integer, np.floating)):
            raise ValueError(f"{name} must be a number, got {x!r}")
        upper_ok = x <= hi if hi is not None else (x < float("inf") or name in INFINITE_OK)
        if not (lo <= x and upper_ok):  # NaN fails both
            raise ValueError(f"{name} must be in [{lo}, {'inf)' if hi is None else f'{hi}]'}, "
                             f"got {x!r}")
    choices = {"activation": tuple(ACTIVATIONS), "dtype": ("float32", "float64"),
               "vectorization": ("sync", "async")}
    for name, allowed in choices.items():
        if hasattr(cfg, name) and getattr(cfg, name) not in allowed:
            raise ValueError(f"{name} must be one of {allowed}, got {getattr(cfg, name)!r}")


def _check_field_types(cfg) -> None:
    """Each field's value has the kind of its default (bool, int, finite float, str)."""
    for f in dataclasses.fields(cfg):
        default = f.default
        if default is dataclasses.MISSING or default is None:
            continue
        x = getattr(cfg, f.name)
        if isinstance(default, bool):
            if not isinstance(x, (bool, np.bool_)):
                raise ValueError(f"{f.name} must be a bool (True or False), got {x!r}")
        elif isinstance(default, int):
            if isinstance(x, (bool, np.bool_)) or not isinstance(x, (int, np.integer)):
                raise ValueError(f"{f.name} must be an integer, got {x!r}")
        elif isinstance(default, float):
            if isinstance(x, (bool, np.bool_)) or not isinstance(
                    x, (int, float, np.integer, np.floating)):
                raise ValueError(f"{f.name} must be a number, got {x!r}")
            if x != x or (abs(x) == float("inf") and f.name not in INFINITE_OK):
                raise ValueError(f"{f.name} must be finite, got {x!r}")
        elif isinstance(default, str) and not isinstance(x, str):
            raise ValueError(f"{f.name} must be a string, got {x!r}")


def _env_spec(env) -> tuple[str | None, str | None]:
    """``(spec JSON, problem)`` for what an agent was built from.

    An env id: (None, None) — it is rebuilt from the id (and env_kwargs). An env object:
    its gymnasium spec as JSON, which ``gym.make`` turns back into the same env *with its
    registered wrappers* (``FlattenObservation(FrozenLake-v1)`` stays flattened); if it has no
    spec or the spec does not serialize (a wrapper holding a lambda), (None, the reason), and
    ``evaluate``/``load`` then ask for the env instead of silently using the bare id. A vector
    env is rebuilt from its id when it has one.
    """
    if isinstance(env, str):
        return None, None
    spec = getattr(env, "spec", None)
    if isinstance(env, gym.vector.VectorEnv):
        if getattr(spec, "id", None) is not None:
            return None, None
        return None, "it was built from a vector env without a registered id"
    if spec is None:
        return None, f"it was built from an env object without a gymnasium spec ({env})"
    try:
        return spec.to_json(), None
    except (TypeError, ValueError) as e:
        return None, f"the spec of its env {env} cannot be saved ({e})"


def check_seed(seed) -> int:
    """``seed`` as an int: a non-negative integer (bool, float, str and None are refused)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be a non-negative integer, got {seed!r}")
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


class ActorCriticNet:
    """pi(a|s) and V(s) with every parameter in one flat vector (see module docstring)."""

    def __init__(self, obs_dim: int, action_space: spaces.Space | ActionAdapter,
                 hidden_sizes=(64, 64), activation: str = "tanh", shared: bool = False,
                 log_std_init: float = 0.0, dtype=np.float32, ortho_init: bool = True,
                 use_sde: bool = False):
        # The action space's policy head (minirl.spaces): which distribution, how many outputs.
        self.adapter = (action_space if isinstance(action_space, ActionAdapter)
                        else ActionAdapter(action_space, dtype=dtype))
        self.discrete = self.adapter.n_std == 0     # the head's logits are all the policy has
        self.act_dim = self.adapter.head_dim
        self.shared, self.log_std_init = bool(shared), float(log_std_init)
        self.ortho_init = bool(ortho_init)
        self.use_sde = bool(use_sde)
        if self.use_sde and self.adapter.kind != "gaussian":
            raise ValueError("use_sde (gSDE) needs a Box action space, got "
                             f"{self.adapter.space}")
        act, sizes = ACTIVATIONS[activation], [int(obs_dim), *hidden_sizes]
        self.dtype = np.dtype(dtype)
        self.actor = MLP([*sizes, self.act_dim + (1 if shared else 0)], act, dtype=self.dtype)
        self.critic = None if shared else MLP([*sizes, 1], act, dtype=self.dtype)
        # gSDE: one log-std per (feature, action) entry, the [F, D] matrix stored row-major.
        self.feature_dim = int(sizes[-1])
        n_std = self.feature_dim * self.act_dim if self.use_sde else self.adapter.n_std
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
        """Orthogonal init, gain sqrt(2) hidden, 0.01 policy head, 1 value head; biases 0.

        ``ortho_init=False`` (RL-Zoo's ``ortho_init=False`` rows): every weight and every bias
        U(-1/sqrt(fan_in), 1/sqrt(fan_in)), PyTorch's default for a Linear layer, with no head
        scaling. The biases matter for gSDE: with zero biases the tanh features z(s) are ~0
        at the normalized mean state (where MountainCarContinuous starts), and so is the
        state-dependent noise z(s)^T theta (PPO's MountainCarContinuous-v0 row: 0 of 3 seeds
        reached the flag with zero biases, benchmarks/results/
        learning_sde_mcc_zero_bias_init.csv)."""
        params = np.zeros(self.n_params, self.dtype)
        if not self.ortho_init:
            g = float(1.0 / np.sqrt(3.0))       # lecun_uniform's a = g sqrt(3 / fan_in)
            kw = dict(weight_init=lecun_uniform, hidden_gain=g, out_gain=g)
            nets = [(self.actor, self.actor_slice)]
            if not self.shared:
                nets.append((self.critic, self.vf_slice))
            for net, sl in nets:
                params[sl] = net.init(rng, **kw)
                views = net.views(params[sl])
                for name, b in views.items():
                    if name.endswith(".bias"):
                        fan_in = views[name[:-len("bias")] + "weight"].shape[0]
                        b[:] = rng.uniform(-1.0, 1.0, b.shape) / np.sqrt(fan_in)
            params[self.log_std_slice] = self.log_std_init
            return params
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

    def _outputs(self, params: np.ndarray, obs: np.ndarray) -> tuple:
        """(head [B, head_dim], values [B], actor cache, critic cache): the networks' outputs,
        borrowed workspace buffers (valid until the next call)."""
        p_actor, p_critic = self._split(params)
        out, cache_a = self.actor.forward(p_actor, obs, self._ws["actor"])
        if self.shared:
            return out[:, :self.act_dim], out[:, self.act_dim], cache_a, None
        v, cache_v = self.critic.forward(p_critic, obs, self._ws["critic"])
        return out, v[:, 0], cache_a, cache_v

    def forward(self, params: np.ndarray, obs: np.ndarray):
        """obs [B, obs_dim] -> (dist over [B] actions, values [B], cache for ``backward``)."""
        head, values, cache_a, cache_v = self._outputs(params, obs)
        if self.use_sde:  # z(s): the input of the actor's output layer (its last hidden)
            dist = StateDependentNoise(head, params[self.log_std_slice].reshape(
                self.feature_dim, self.act_dim), cache_a.layer_caches[-1])
        else:
            dist = self.adapter.distribution(head, params[self.log_std_slice])
        return dist, values.copy(), (cache_a, cache_v)

    def backward(self, params: np.ndarray, cache, ddist, dvalues=None) -> np.ndarray:
        """dtheta [n_params] from ddist (dlogits [B, A] or (dmean [B, D], dlog_std [D]); gSDE:
        (dmean, dlog_std [F, D][, dfeatures]), dfeatures ignored) and dvalues [B] (None: the
        critic gets no gradient)."""
        cache_a, cache_v = cache
        p_actor, p_critic = self._split(params)
        # Written into one persistent buffer whose slices the MLPs have memoized views of
        # (a fresh vector costs two view rebuilds, ~13 us); the caller gets a copy.
        grad, (g_actor, g_critic) = self._grad, self._grad_split
        dhead = ddist if self.discrete else ddist[0]
        if not self.discrete:
            grad[self.log_std_slice] = np.reshape(ddist[1], -1)
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

    def act(self, params: np.ndarray, obs: np.ndarray, rng: np.random.Generator,
            noise: np.ndarray | None = None):
        """Sample a ~ pi(.|s): (actions [B, ...], logp [B], values [B]) — the rollout's ``act``.

        gSDE with ``noise`` (standard-normal eps [F, D] or [B, F, D], held by the caller):
        a = mean + z(s)^T (sigma * eps), no draw from ``rng``.

        Bit for bit ``dist, values, _ = forward(params, obs)``, ``a = dist.sample(rng)`` (or
        ``dist.rsample_with_noise(noise)``), ``dist.log_prob(a)``; for gSDE with held noise,
        a Gaussian and a categorical head it skips building the distribution (the private
        fast paths ``sde._act_with_noise``, ``gaussian._sample_log_prob``,
        ``categorical._sample_log_prob``: the same operations, the public path wherever one
        of its checks fails). ValueError naming ``noise`` if it is given to a policy without
        gSDE (only gSDE holds exploration noise)."""
        if noise is not None and not self.use_sde:
            raise ValueError("noise is only for a gSDE policy (use_sde=True); this policy "
                             "samples its actions from rng")
        head, values, cache_a, _ = self._outputs(params, obs)
        log_std = params[self.log_std_slice]
        if self.use_sde:
            log_std = log_std.reshape(self.feature_dim, self.act_dim)
            if noise is not None:
                actions, logp = _sde_act(head, log_std, cache_a.layer_caches[-1], noise)
                return actions, logp, values.copy()
            dist = StateDependentNoise(head, log_std, cache_a.layer_caches[-1])
        elif self.adapter.kind == "gaussian":
            actions, logp = _gaussian_act(head, log_std, rng)
            return actions, logp, values.copy()
        elif self.adapter.kind == "categorical":
            actions, logp = _categorical_act(head, rng)
            return actions, logp, values.copy()
        else:
            dist = self.adapter.distribution(head, log_std)
        actions = dist.sample(rng)
        return actions, dist.log_prob(actions), values.copy()

    def value(self, params: np.ndarray, obs: np.ndarray) -> np.ndarray:
        """V(s) [B] for obs [B, obs_dim]."""
        if self.shared:
            return self.forward(params, obs)[1]
        return self.critic.forward(self._split(params)[1], obs, self._ws["critic"])[0][:, 0].copy()


class Agent:
    """Base of every agent: ``Algo(env, config, seed)``, predict, evaluate, save, load.

    Subclasses set ``name``, ``Config`` (a frozen dataclass with at least ``num_envs``) and
    ``log_fields`` (extra CSV columns their metrics carry), and implement:

    * ``_build()``: networks, ``self.params``, optimizer states (``self.opt_states``: name ->
      AdamState), buffers. Called at the end of ``__init__``.
    * ``_policy(obs, deterministic)``: obs [B, obs_dim] (already normalized) -> actions
      [B, ...] in the network's action space (Discrete: indices 0..n-1; Box: unclipped).
    * ``learn(total_steps, callback=None)``: starts with ``self._check_total_steps`` and ends
      every iteration with ``self._end_iteration(...)``.
    * optionally ``state_arrays`` / ``set_state_arrays`` for arrays beyond ``self.params``,
      the optimizer moments and the normalizers; any other scalar state needed to continue
      training goes in ``self.extra_state`` (JSON-able).
    """

    name = "agent"
    Config: type = None
    log_fields: tuple[str, ...] = ()

    def __init__(self, env: str | gym.Env | gym.vector.VectorEnv, config=None, seed: int = 0,
                 env_kwargs: dict | None = None):
        config = self.Config() if config is None else config
        if not isinstance(config, self.Config):
            raise TypeError(f"config must be a {self.Config.__name__}, got {type(config).__name__}")
        self.config, self.seed = config, check_seed(seed)
        self.env_id = env if isinstance(env, str) else getattr(getattr(env, "spec", None), "id", None)
        self.env_spec, self._env_problem = _env_spec(env)  # how evaluate/load rebuild the env
        self.env_kwargs = dict(env_kwargs or {})     # gymnasium.make options (env ids only)
        num_envs = getattr(config, "num_envs", 1)
        # Observations that are not 1-D Boxes (Discrete, Dict, ...) arrive flattened (one-hot
        # for Discrete): see minirl.spaces. raw_obs_space is what the env itself emits.
        self.envs = make_vector_env(env, num_envs, getattr(config, "vectorization", "sync"),
                                    env_kwargs=self.env_kwargs)
        if self.envs.num_envs != num_envs:
            raise ValueError(f"the vector env has {self.envs.num_envs} envs but config.num_envs "
                             f"is {num_envs}")
        self.obs_space = self.envs.single_observation_space
        self.raw_obs_space = getattr(self.envs, "raw_single_observation_space", self.obs_space)
        self.action_space = self.envs.single_action_space
        # Discrete/MultiDiscrete ``start`` offsets, Box clip-or-squash, unbounded Box refused.
        self.action_adapter = ActionAdapter(self.action_space,
                                            getattr(config, "action_bounds", "clip"),
                                            dtype=getattr(config, "dtype", "float64"))
        self._check_spaces()
        self.obs_dim = int(np.prod(self.obs_space.shape))
        self.rng = np.random.default_rng(self.seed)
        self.eval_rng = np.random.default_rng([self.seed, 1])
        self.obs_normalizer = (ObsNormalizer(self.obs_space.shape)
                               if getattr(config, "normalize_obs", False) else None)
        self.reward_scaler = None
        self.opt_states: dict[str, AdamState] = {}
        self.extra_state: dict[str, Any] = {}
        self.total_steps = 0
        self.iterations = 0
        # Env steps of the run that came before this learn() call and count towards its
        # schedules (lr/clip annealing, exploration, PER beta). 0: each learn() call anneals
        # over itself; `minirl train --resume` sets it to the steps already done, so a resumed
        # run continues its schedules where the interrupted one stopped.
        self.schedule_offset = 0
        # The env step at which those schedules end (None: schedule_offset + the learn()
        # call's total_steps). `minirl train --resume` sets it to the run's planned budget,
        # so a resumed run with another --steps keeps every step's lr/clip/epsilon/beta.
        self.schedule_horizon = None
        self._build()

    # ----- hooks a subclass implements ---------------------------------------------------

    def _check_spaces(self) -> None:
        """Raise TypeError for spaces the agent cannot handle (default: 1-D Box observations)."""
        if not (isinstance(self.obs_space, spaces.Box) and len(self.obs_space.shape) == 1):
            raise TypeError(f"observation space must be a 1-D Box, got {self.obs_space}")

    def _build(self) -> None:
        raise NotImplementedError

    def check_training_inputs(self) -> None:
        """Raise ValueError naming any input only ``learn`` reads that is missing or does not
        fit (e.g. BC's demonstrations file). Run at construction (not by ``load``: a loaded
        agent may only evaluate) and by ``minirl train --resume`` before it trains on."""

    def _policy(self, obs: np.ndarray, deterministic: bool) -> np.ndarray:
        raise NotImplementedError

    def learn(self, total_steps: int, callback=None):
        raise NotImplementedError

    # ----- training helpers shared by the subclasses --------------------------------------

    @staticmethod
    def _check_total_steps(total_steps) -> int:
        """The one rule for every ``learn``: ``total_steps`` is a positive integer."""
        if isinstance(total_steps, bool) or not isinstance(total_steps, (int, np.integer)):
            raise TypeError(f"total_steps must be a positive integer, got {total_steps!r}")
        if total_steps < 1:
            raise ValueError(f"total_steps must be a positive integer, got {total_steps!r}")
        return int(total_steps)

    def _schedule_span(self, total_steps: int) -> tuple[int, int]:
        """``(offset, horizon)`` of the step-based schedules of a ``learn(total_steps)`` call:
        the schedules are at env step ``offset`` now and end at env step ``horizon``
        (``schedule_horizon``, else ``offset + total_steps``); past it they stay at their
        final values. ValueError if ``schedule_horizon`` is set but not a positive integer."""
        offset, horizon = int(self.schedule_offset), self.schedule_horizon
        if horizon is None:
            return offset, offset + int(total_steps)
        if isinstance(horizon, bool) or not isinstance(horizon, (int, np.integer)) \
                or horizon < 1:
            raise ValueError(f"schedule_horizon must be a positive integer or None, got "
                             f"{horizon!r}")
        return offset, int(horizon)

    def _end_iteration(self, callback, n_steps: int, episodes=((), ()), **metrics) -> bool:
        """Count one iteration of ``n_steps`` env steps and hand ``metrics`` plus the episodes
        finished during it (``(returns, lengths)``) to ``callback(agent, metrics)``; returns
        False when the callback asks to stop (returns False)."""
        self.total_steps += int(n_steps)
        self.iterations += 1
        if callback is None:
            return True
        ep_returns, ep_lengths = episodes
        metrics = {"steps": self.total_steps, "iteration": self.iterations,
                   "episode_returns": list(ep_returns), "episode_lengths": list(ep_lengths),
                   **metrics}
        return callback(self, metrics) is not False

    # ----- acting --------------------------------------------------------------------------

    def _prepare_obs(self, obs) -> tuple[np.ndarray, bool]:
        """(x [B, obs_dim] float64, normalized if the agent normalizes; single) from one
        observation ``[*obs_shape]`` or a batch ``[B, *obs_shape]``."""
        if needs_flattening(self.raw_obs_space):   # raw Discrete/Dict/... or flat input
            x, single = flatten_observation(self.raw_obs_space, obs)
            if self.obs_normalizer is not None:
                x = self.obs_normalizer(x, update=False)
            return x, single
        obs = np.asarray(obs, dtype=np.float64)
        shape = self.obs_space.shape
        single = obs.shape == shape
        if not single and obs.shape[1:] != shape:
            raise ValueError(f"obs must have shape {shape} or [B, *{shape}], got {obs.shape}")
        x = (obs[None] if single else obs).reshape(-1, self.obs_dim)
        if self.obs_normalizer is not None:
            x = self.obs_normalizer(x, update=False)
        return x, single

    def _to_env_actions(self, actions: np.ndarray) -> np.ndarray:
        """Network actions [B, ...] -> actions the env accepts: Discrete/MultiDiscrete offset by
        ``start``, MultiBinary/Box reshaped to the space, Box clipped (or squashed) into its
        bounds (``minirl.spaces.ActionAdapter.to_env``)."""
        return self.action_adapter.to_env(actions)

    def predict(self, obs: np.ndarray, deterministic: bool = False) -> np.ndarray:
        """Env-ready actions for obs ``[*obs_shape]`` -> ``[*act_shape]`` or a batch
        ``[B, *obs_shape]`` -> ``[B, *act_shape]``. Sampling uses the evaluation generator."""
        x, single = self._prepare_obs(obs)
        if not np.all(np.isfinite(x)):  # else the network reports NaN logits, not the input
            raise ValueError("obs contains NaN or inf")
        if getattr(self.config, "dtype", None) is not None:  # finite, but inf in float32?
            cast_checked(x, self.config.dtype, "obs")
        actions = self._to_env_actions(self._policy(x, bool(deterministic)))
        return actions[0] if single else actions

    def evaluate(self, n_episodes: int = 10, deterministic: bool = True,
                 render_mode: str | None = None, seed: int | None = None,
                 env: gym.Env | None = None) -> np.ndarray:
        """Returns of ``n_episodes`` episodes on a fresh single env, ``[n_episodes]``.

        The env is rebuilt as the agent was built: from its id (and env_kwargs), or from the
        gymnasium spec of the env object it was given (its registered wrappers included). An
        env object whose spec cannot be rebuilt (e.g. a wrapper holding a lambda) raises
        ValueError; pass ``env=`` (a single env, used as is and not closed) for those.
        Episode k is reset with ``seed + k``; without ``seed``, a fresh env's seed is drawn from
        the agent's evaluation generator (a loaded agent evaluates like the saved one), and an
        ``env=`` instance keeps its own random stream."""
        if isinstance(n_episodes, bool) or not isinstance(n_episodes, (int, np.integer)) \
                or n_episodes < 1:
            raise ValueError(f"n_episodes must be a positive integer, got {n_episodes!r}")
        if seed is not None:
            seed = check_seed(seed)
        check_render_mode(None, render_mode)
        if env is not None:  # the caller's own env instance: used as is, left open
            return self._eval_episodes(env, n_episodes, deterministic, seed, close=False)
        if self._env_problem is not None:
            raise ValueError(f"evaluate: cannot rebuild the env ({self._env_problem}); pass env=")
        if seed is None:  # a fresh env: its episodes' seeds come from the evaluation generator,
            seed = int(self.eval_rng.integers(2**31))  # so one agent state, one set of returns
        if self.env_spec is not None:  # built from an env object: rebuilt with its wrappers
            kwargs = {} if render_mode is None else {"render_mode": render_mode}
            env = check_render_mode(gym.make(
                gym.envs.registration.EnvSpec.from_json(self.env_spec), **kwargs), render_mode)
            return self._eval_episodes(env, n_episodes, deterministic, seed)
        # Raw observations (flatten=False): predict flattens them as training did.
        env = make_env(self.env_id, render_mode=render_mode, env_kwargs=self.env_kwargs,
                       flatten=False)
        return self._eval_episodes(env, n_episodes, deterministic, seed)

    def _eval_episodes(self, env: gym.Env, n_episodes: int, deterministic: bool,
                       seed, close: bool = True) -> np.ndarray:
        """Returns of ``n_episodes`` episodes of ``predict`` on ``env`` (closed if ``close``);
        an env without a time limit has its episodes cut at ``EPISODE_CAP`` steps."""
        returns = np.zeros(n_episodes)
        spec = getattr(env, "spec", None)
        cap = EPISODE_CAP if getattr(spec, "max_episode_steps", None) is None else None
        try:
            for k in range(n_episodes):
                obs, _ = env.reset(seed=None if seed is None else seed + k)
                done, t = False, 0
                while not done:
                    obs, r, terminated, truncated, _ = env.step(self.predict(obs, deterministic))
                    returns[k] += r
                    t += 1     # an env without a time limit: cut at EPISODE_CAP (envs.py)
                    done = terminated or truncated or (cap is not None and t >= cap)
        finally:
            if close:
                env.close()
        return returns

    # ----- persistence ---------------------------------------------------------------------

    def state_arrays(self) -> dict[str, np.ndarray]:
        """Every array ``save`` writes: params, optimizer moments, normalizer statistics.
        Subclasses with more arrays extend the dict (and ``set_state_arrays``)."""
        arrays = {"params": self.params}
        for name, st in self.opt_states.items():
            arrays[f"opt.{name}.m"], arrays[f"opt.{name}.v"] = st.m, st.v
        for key, norm in (("obs_norm", self.obs_normalizer), ("rew_scale", self.reward_scaler)):
            if norm is not None:
                for k, v in norm.state_dict().items():
                    arrays[f"{key}.{k}"] = np.asarray(v)
        return arrays

    def set_state_arrays(self, arrays: dict[str, np.ndarray], opt_steps: dict) -> None:
        """Put validated saved arrays back (the inverse of ``state_arrays``)."""
        self.params = arrays["params"].copy()
        self.opt_states = {n: AdamState(step=s, m=arrays[f"opt.{n}.m"].copy(),
                                        v=arrays[f"opt.{n}.v"].copy())
                           for n, s in opt_steps.items()}
        for key, norm in (("obs_norm", self.obs_normalizer), ("rew_scale", self.reward_scaler)):
            if norm is not None:
                norm.load_state_dict({k.split(".", 1)[1]: v for k, v in arrays.items()
                                      if k.startswith(key + ".")})

    def save(self, path: str | Path) -> None:
        """Write everything needed to predict and to continue training to ``path`` (.npz).

        Atomic: written to a temporary file in the same directory, then renamed over ``path``,
        so a failed save (full disk, interrupt) leaves any previous file at ``path`` intact."""
        meta = {
            "algo": self.name, "config": dataclasses.asdict(self.config), "env_id": self.env_id,
            "env_kwargs": self.env_kwargs, "seed": self.seed, "total_steps": self.total_steps, "iterations": self.iterations,
            "opt_steps": {n: st.step for n, st in self.opt_states.items()},
            "extra_state": self.extra_state,
            "env_spec": self.env_spec, "env_problem": self._env_problem,
            "spaces": {"observation": _space_signature(self.raw_obs_space),
                       "action": _space_signature(self.action_space, "action")},
            "rng": self.rng.bit_generator.state, "eval_rng": self.eval_rng.bit_generator.state,
        }
        with atomic_open(path, "wb") as f:
            np.savez(f, meta=np.array(json.dumps(meta)), **self.state_arrays())

    def _prepare_load(self, meta: dict) -> None:
        """Hook run on the freshly built agent before the saved arrays are checked against
        ``state_arrays()``: an agent whose array sizes depend on saved state (e.g. a dataset
        that grew during training) resizes them here from ``meta``."""

    @classmethod
    def load(cls, path: str | Path, env=None, training: bool = True) -> "Agent":
        """An agent restored from ``save``; ``env`` defaults to the saved env id. Raises
        ValueError if the file holds another algorithm or arrays that do not fit the agent."""
        meta, arrays = read_saved(path)
        if meta.get("algo") != cls.name:
            raise ValueError(f"{path} holds a {meta.get('algo')!r} agent, not {cls.name!r}")
        _check_meta_types(meta, path)
        token = _LOADING.set(True)  # inputs only training needs are not checked (see loading)
        try:
            agent = cls(_saved_env(path, meta, env, training),
                        _saved_config(cls, meta, training), seed=meta["seed"],
                        env_kwargs=meta.get("env_kwargs"))
        finally:
            _LOADING.reset(token)
        _check_saved_spaces(agent, meta, path)
        agent._prepare_load(meta)
        load_agent_state(agent, meta, arrays, path)
        if env is None:  # rebuilt from the saved id or spec: evaluate rebuilds it the same way
            agent.env_id, agent.env_spec = meta.get("env_id"), meta.get("env_spec")
            agent._env_problem = None
        return agent


class OnPolicyAgent(Agent):
    """What PPO, A2C and REINFORCE share: the actor-critic network ``self.net`` with flat
    ``self.params``, optional reward scaling, and a ``RolloutCollector`` of ``[T, N]`` batches.

    gSDE (``config.use_sde``, Box actions): each env explores with its own standard-normal
    noise ``self.sde_noise`` [N, F, D], drawn from ``self.rng`` at the start of every rollout
    and every ``config.sde_sample_freq`` steps of it (<= 0: once per rollout), and held in
    between (Stable-Baselines3's on-policy schedule). It is not saved: every ``learn`` starts
    with a rollout, which draws it afresh. ``predict(deterministic=False)`` samples the
    marginal N(mu, var(s)) with the evaluation generator (a fresh noise matrix per call)."""

    def _build(self) -> None:
        cfg = self.config
        self.reward_scaler = (RewardScaler(cfg.num_envs, cfg.gamma)
                              if cfg.normalize_reward else None)
        self.collector = RolloutCollector(self.envs, cfg.num_steps, self.obs_normalizer,
                                          self.reward_scaler, dtype=np.dtype(cfg.dtype),
                                          action_adapter=self.action_adapter)
        self.net = ActorCriticNet(self.obs_dim, self.action_adapter, cfg.hidden_sizes,
                                  cfg.activation, getattr(cfg, "shared_trunk", False),
                                  cfg.log_std_init, dtype=np.dtype(cfg.dtype),
                                  ortho_init=getattr(cfg, "ortho_init", True),
                                  use_sde=getattr(cfg, "use_sde", False))
        self.params = self.net.init(self.rng)
        self.sde_noise = None       # gSDE exploration noise eps [N, F, D], held between draws

    def _reset_noise(self, rng: np.random.Generator) -> None:
        """Draw each env's gSDE noise eps [N, F, D] ~ N(0, I) (theta_eps = sigma * eps)."""
        log_std = self.params[self.net.log_std_slice].reshape(self.net.feature_dim, -1)
        self.sde_noise = sample_noise(log_std, rng, (self.config.num_envs,))

    def _act(self, obs, rng):
        if not self.net.use_sde:
            return self.net.act(self.params, obs, rng)
        if self.sde_noise is None or self.sde_noise.shape[0] != len(obs):
            self._reset_noise(rng)      # a caller that steps without _collect
        return self.net.act(self.params, obs, rng, noise=self.sde_noise)

    def _collect(self):
        """Step 1 of every on-policy algorithm: one ``[T, N]`` rollout with pi_theta (gSDE
        noise redrawn at its start and every ``sde_sample_freq`` steps)."""
        if not self.net.use_sde:
            return self.collector.collect(self._act, self._value, self.rng)
        return self.collector.collect(self._act, self._value, self.rng,
                                      reset_noise=self._reset_noise,
                                      reset_every=self.config.sde_sample_freq)

    def _value(self, obs):
        return self.net.value(self.params, obs)

    def _policy(self, obs, deterministic):
        dist, _, _ = self.net.forward(self.params, obs)
        return dist.mode() if deterministic else dist.sample(self.eval_rng)

    def _start_learning(self) -> None:
        """Fresh episodes at the start of every ``learn`` call (seed drawn from ``self.rng``),
        so a loaded agent continues exactly as the saved one would have."""
        self.collector.reset(seed=int(self.rng.integers(2**31 - 1)))

    def _end_iteration(self, callback, **metrics) -> bool:
        """One iteration of N*T steps with the episodes the collector finished during it."""
        cfg = self.config
        return super()._end_iteration(callback, cfg.num_envs * cfg.num_steps,
                                      self.collector.pop_episodes(), **metrics)


_LOADING = contextvars.ContextVar("minirl_loading", default=False)


def loading() -> bool:
    """True while ``Agent.load`` constructs the agent: a subclass then skips checks of inputs
    only ``learn`` reads (e.g. BC's demonstrations file, which need not exist any more)."""
    return _LOADING.get()


def _saved_config(cls, meta: dict, training: bool):
    """The saved config; for an evaluation-only load (``training=False``) with sync
    vectorization, so no worker processes are started for envs that only evaluate."""
    config = cls.Config(**meta["config"])
    if not training and getattr(config, "vectorization", "sync") != "sync":
        config = dataclasses.replace(config, vectorization="sync")
    return config


def _saved_env(path, meta: dict, env, training: bool):
    """What ``load`` builds the agent from: ``env`` if given, else the env of the saved spec
    (wrappers included), else the saved env id; ValueError asking for ``env=`` if the agent
    was built from an env minirl cannot rebuild."""
    n = meta["config"].get("num_envs", 1)
    if isinstance(env, gym.Env) and n != 1:  # (make_vec_env's own message says no more)
        raise ValueError(f"{path}: the agent runs num_envs={n} envs and one env instance makes "
                         "one; pass env= an env id, then evaluate(env=instance) to use yours")
    if env is not None:
        return env
    if meta.get("env_spec"):  # only env objects have one, and those train with num_envs=1
        try:
            return gym.make(gym.envs.registration.EnvSpec.from_json(meta["env_spec"]))
        except Exception as e:  # noqa: BLE001 - a tampered spec: JSON, KeyError, the env's own
            raise ValueError(f"{path}: field 'env_spec' does not rebuild an env "
                             f"({type(e).__name__}: {e})") from None
    if meta.get("env_id") is None or meta.get("env_problem"):
        reason = meta.get("env_problem") or "no env id was saved"
        raise ValueError(f"{path}: cannot rebuild the agent's env ({reason}); pass env= to load")
    return meta["env_id"]


def _space_signature(space, kind: str = "observation") -> str:
    """What of a space a saved agent depends on: an observation Box's class and shape (its
    bounds may be wrapped differently at evaluation); an action space in full (``str``, a
    Box's bounds included: actions are clipped or rescaled to them, so a policy for [-2, 2]
    torques must not load silently onto [-1, 1]); every other space in full."""
    if isinstance(space, spaces.Box) and kind == "observation":
        return f"Box(shape={tuple(space.shape)})"
    return str(space)


def _check_saved_spaces(agent: Agent, meta: dict, path) -> None:
    """ValueError if the env ``load`` built has other observation or action spaces than the
    saved agent's (files from before spaces were saved are not checked)."""
    saved = meta.get("spaces")
    if not saved:
        return
    for kind, space in (("observation", agent.raw_obs_space), ("action", agent.action_space)):
        mine = _space_signature(space, kind)
        if str(saved.get(kind)).startswith("Box(shape="):  # a file from before action bounds
            mine = _space_signature(space)                  # were saved: shape only
        if saved.get(kind) is not None and saved[kind] != mine:
            raise ValueError(f"{path}: the agent was trained with {kind} space {saved[kind]}, "
                             f"but the env given has {mine} "
                             f"(saved env id {meta.get('env_id')!r})")


def read_saved(path: str | Path) -> tuple[dict, dict[str, np.ndarray]]:
    """(meta, arrays) of a file written by ``Agent.save``; ValueError naming the file if it
    is not one (truncated, empty, not an .npz, no metadata)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        meta = json.loads(str(arrays.pop("meta")))
        if not isinstance(meta, dict):
            raise ValueError("metadata is not a JSON object")
    except FileNotFoundError:
        raise
    except Exception as e:  # zipfile, OSError, KeyError, JSON, pickle-refused ...
        why = f"{type(e).__name__}: {e}"
        if "pickled" in str(e):  # numpy's guess for any file that is no .npz/.npy
            why = "not an .npz archive"
        raise ValueError(f"{path} is not a minirl model file (.npz written by save): "
                         f"{why}") from None
    return meta, arrays


def load_agent_state(agent: Agent, meta: dict, arrays: dict[str, np.ndarray],
                     path: str | Path = "model") -> None:
    """Check ``arrays`` against ``agent.state_arrays()`` (same names, shapes and dtypes),
    then put them, counters and RNG states into ``agent``. ValueError naming the array."""
    expected = agent.state_arrays()
    opt_steps = meta.get("opt_steps", {})
    missing = sorted(set(expected) - set(arrays))
    extra = sorted(set(arrays) - set(expected))
    if missing or extra:
        raise ValueError(f"{path}: arrays do not match a {agent.name} agent with this config "
                         f"(missing {missing}, unexpected {extra})")
    for k, want in expected.items():
        got, shape = arrays[k], np.shape(want)
        if k.startswith("buffer.") and shape[:1] == (0,) and got.shape[1:] == shape[1:] \
                and got.ndim == len(shape):
            shape = got.shape   # a fresh agent's empty buffer; as many rows as the saved one
            #                     held (the buffer's set_state_arrays checks them)
        if got.shape != shape or got.dtype != np.asarray(want).dtype:
            raise ValueError(f"{path}: array {k!r} has shape {got.shape} and dtype {got.dtype}, "
                             f"expected {shape} and {np.asarray(want).dtype}")
        if got.dtype.kind == "f" and not np.all(np.isfinite(got)) and not k.startswith("buffer."):
            raise ValueError(f"{path}: array {k!r} holds non-finite values")
        if _non_negative(k) and np.any(got < 0):
            raise ValueError(f"{path}: array {k!r} ({_non_negative(k)}) holds negative "
                             "values")
    if not isinstance(opt_steps, dict) or set(opt_steps) != set(agent.opt_states):
        raise ValueError(f"{path}: optimizer states {sorted(opt_steps)} do not match "
                         f"{sorted(agent.opt_states)}")
    for name, step in opt_steps.items():
        _check_count(step, f"opt_steps.{name}", path)
    for field in ("total_steps", "iterations"):
        _check_count(meta.get(field), field, path)
    extra = meta.get("extra_state")
    if not isinstance(extra, dict):
        raise ValueError(f"{path}: field 'extra_state' must be a JSON object, got {extra!r}")
    _check_finite_json(extra, "extra_state", path)
    agent.set_state_arrays(arrays, opt_steps)
    agent.total_steps, agent.iterations = int(meta["total_steps"]), int(meta["iterations"])
    agent.extra_state = dict(extra)
    for field, rng in (("rng", agent.rng), ("eval_rng", agent.eval_rng)):
        try:
            rng.bit_generator.state = meta[field]
        except (KeyError, TypeError, ValueError, OverflowError) as e:
            raise ValueError(f"{path}: field {field!r} is not a valid generator state "
                             f"({type(e).__name__}: {e})") from None


_META_TYPES = {"config": (dict,), "extra_state": (dict,), "opt_steps": (dict,),
               "rng": (dict,), "eval_rng": (dict,), "spaces": (dict, type(None)),
               "env_kwargs": (dict, type(None)), "env_spec": (str, type(None)),
               "env_id": (str, type(None)), "env_problem": (str, type(None))}


def _check_meta_types(meta: dict, path) -> None:
    """ValueError naming the file and the field if a saved metadata field has the wrong JSON
    type (a tampered or foreign file), before anything is built from it."""
    for field, types in _META_TYPES.items():
        if field in meta and not isinstance(meta[field], types):
            raise ValueError(f"{path}: field {field!r} must be "
                             f"{' or '.join('null' if t is type(None) else t.__name__ for t in types)}"
                             f", got {type(meta[field]).__name__}")


def _non_negative(key: str) -> str:
    """What a saved array is, if it can never be negative (Adam's second moments, a running
    variance or count), else ""."""
    if key.startswith("opt.") and key.endswith(".v"):
        return "Adam's second moments"
    if key.startswith(("obs_norm.", "rew_scale.")) and key.endswith((".var", ".count")):
        return "a running " + key.rsplit(".", 1)[1].replace("var", "variance")
    return ""


def _check_count(value, field: str, path) -> None:
    """ValueError naming the file and ``field`` unless ``value`` is a non-negative integer."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{path}: field {field!r} must be a non-negative integer, "
                         f"got {value!r}")


def _check_finite_json(value, field: str, path) -> None:
    """ValueError naming the file and the field of any NaN/inf float in a JSON value
    (Python's json reads NaN and Infinity)."""
    if isinstance(value, float) and not np.isfinite(value):
        raise ValueError(f"{path}: field {field!r} is {value} (not finite)")
    if isinstance(value, dict):
        for k, v in value.items():
            _check_finite_json(v, f"{field}.{k}", path)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_finite_json(v, f"{field}[{i}]", path)
