"""Gradient-free policy search: random search, cross-entropy method, evolution strategies, ARS.

Each agent searches the flat parameter vector theta of a deterministic policy (a linear policy
a = W s + b with ``hidden_layers=()``, a = W s without the bias as in the ARS paper with
``policy_bias=False``, an MLP otherwise) using episode returns only. One
iteration (``_step``), with the update rules of ``minirl.objectives.gradient_free``:

  RS   1. sample K candidates theta + sigma eps_k around the incumbent theta, eps_k ~ N(0, I)
       2. score the incumbent and every candidate (one episode each, fresh env seeds)
       3. keep the best                                               (random_search_step)
  CEM  1. sample K parameter vectors theta_k ~ N(mu, diag sigma^2)
       2. score each
       3. refit mu, sigma to the top p% (optional smoothing, extra noise)      (cem_refit)
  ES   "mu_lambda" (the slide's loop):
       1. mutate: K offspring x_k = m + sigma eps_k
       2. evaluate
       3. recombine the mu best with log-rank weights                      (es_recombine)
       "gradient" (Salimans et al. 2017):
       1. sample n = K/2 directions eps_i; 2. evaluate theta +- sigma eps_i (same env seed)
       3. centered ranks of all 2n returns; g = es_gradient(...)    (centered_ranks)
       4. Adam step on -g with L2 coefficient l2_coef
  ARS  1. sample N directions delta_i ~ N(0, I)
       2. evaluate theta +- nu delta_i (V2: observations normalized with frozen statistics;
          both episodes of a direction start from the same env seed)
       3. theta <- theta + alpha/(b sigma_R) sum_{top b} (r_i^+ - r_i^-) delta_i (ars_update)
       4. V2: fold every state visited this iteration into the running mean and variance

ARS variants (Mania et al. 2018): V1 = ``normalize_obs=False``, V2 = ``normalize_obs=True``
(the statistics are saved with the policy and used by ``predict``); top-b ("V1-t", "V2-t")
with ``top_directions=b`` (0: all N, the slide's update).

Episodes run on a population evaluator (``minirl.population``): ``backend`` "serial",
"processes" or "ray" (``num_workers``; ``ray_address`` joins a cluster). The env seeds are
drawn from the agent's generator, so a seed gives bit-identical training on every backend and
worker count. Perturbations of RS/ES/ARS are slices of a shared noise table (seeded from the
agent seed), so workers receive indices, not vectors.

Every iteration reports best/mean/std of the population's returns; with ``eval_episodes`` > 0
also the mean return of the unperturbed policy (``center_return``; those episodes are not
counted as training steps, as in the ARS paper). ``total_steps`` counts env steps of the
population episodes; an iteration is never cut, so ``learn(n)`` may run a little past n.

Lecture: "Policy Gradients and Gradient-Free Optimization", slides "Random Search", "Cross
Entropy Method", "Evolutionary Strategies", "Augmented Random Search". Papers: Salimans et al.
(2017), arXiv:1703.03864; Mania, Guy & Recht (2018), arXiv:1803.07055.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import gymnasium as gym
import numpy as np

from minirl.algos.base import Agent, check_config
from minirl.envs import EPISODE_CAP, gym_make
from minirl.nn import Adam
from minirl.objectives.gradient_free import (ars_update, cem_refit, centered_ranks,
                                             es_gradient, es_recombine, random_search_step)
from minirl.population import (BACKENDS, DeterministicPolicy, NoiseTable, PolicySpec,
                               make_evaluator, merge_obs_stats)

__all__ = ["SearchConfig", "RSConfig", "CEMConfig", "ESConfig", "ARSConfig", "PolicySearchAgent",
           "RandomSearch", "CEM", "ES", "ARS"]


@dataclass(frozen=True)
class SearchConfig:
    hidden_layers: tuple = ()          # hidden widths of the policy MLP; () = linear policy
    activation: str = "tanh"           # "tanh" or "relu" (MLP only)
    policy_bias: bool = True           # False: linear policy a = W s, no bias (the ARS paper's)
    normalize_obs: bool = False        # running observation normalization (ARS V2)
    max_episode_steps: int = 0         # cut episodes after this many steps; 0 = the env's
                                       # limit (minirl.envs.EPISODE_CAP if it has none)
    eval_episodes: int = 0             # episodes of the unperturbed policy per iteration
    backend: str = "serial"            # population evaluator: "serial", "processes", "ray"
    num_workers: int = 1               # worker processes / Ray actors
    ray_address: str = ""              # "" = local Ray; else ray.init(address=...)
    noise_table_size: int = 2**22      # float32 numbers in the shared noise table

    def __post_init__(self):
        check_config(self, max_episode_steps=(0, None), eval_episodes=(0, None),
                     num_workers=(1, None), noise_table_size=(1, None))
        layers = self.hidden_layers
        if isinstance(layers, (str, bytes)) or not hasattr(layers, "__iter__") or any(
                isinstance(h, bool) or not isinstance(h, (int, np.integer)) or h < 1
                for h in layers):
            raise ValueError(f"hidden_layers must be positive integer widths, got {layers!r}")
        object.__setattr__(self, "hidden_layers", tuple(int(h) for h in layers))
        if not isinstance(self.policy_bias, bool) or (not self.policy_bias and layers):
            raise ValueError(f"policy_bias must be a bool, False only with hidden_layers=(), "
                             f"got {self.policy_bias!r}")
        if self.activation not in ("tanh", "relu"):
            raise ValueError(f"activation must be 'tanh' or 'relu', got {self.activation!r}")
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {self.backend!r}")


@dataclass(frozen=True)
class RSConfig(SearchConfig):
    population_size: int = 16          # K candidates per iteration
    noise_std: float = 0.1             # sigma of the candidates around the incumbent

    def __post_init__(self):
        super().__post_init__()
        check_config(self, population_size=(1, None), noise_std=(1e-12, None))


@dataclass(frozen=True)
class CEMConfig(SearchConfig):
    population_size: int = 32          # K samples per iteration
    elite_frac: float = 0.2            # top p of the samples refit the distribution
    init_std: float = 0.5              # initial sigma (every coordinate)
    smoothing: float = 0.0             # weight of the old mu, sigma^2 in the refit; 0 = off
    extra_noise: float = 0.0           # variance added to sigma^2 after each refit; 0 = off

    def __post_init__(self):
        super().__post_init__()
        check_config(self, population_size=(2, None), elite_frac=(1e-9, 1.0),
                     init_std=(1e-12, None), smoothing=(0.0, 0.999), extra_noise=(0.0, None))


@dataclass(frozen=True)
class ESConfig(SearchConfig):
    variant: str = "gradient"          # "gradient" (antithetic + ranks + Adam) or "mu_lambda"
    population_size: int = 32          # lambda episodes per iteration (even for "gradient")
    num_parents: int = 8               # mu, recombined parents ("mu_lambda")
    noise_std: float = 0.05            # sigma of the mutations
    lr: float = 0.02                   # Adam learning rate ("gradient")
    l2_coef: float = 0.005             # L2 coefficient added to -g ("gradient")

    def __post_init__(self):
        super().__post_init__()
        check_config(self, population_size=(2, None), num_parents=(1, None),
                     noise_std=(1e-12, None), lr=(0.0, None), l2_coef=(0.0, None))
        if self.variant not in ("gradient", "mu_lambda"):
            raise ValueError(f"variant must be 'gradient' or 'mu_lambda', got {self.variant!r}")
        if self.variant == "gradient" and self.population_size % 2:
            raise ValueError(f"population_size must be even for antithetic pairs, "
                             f"got {self.population_size}")
        if self.variant == "mu_lambda" and self.num_parents > self.population_size:
            raise ValueError(f"num_parents must be <= population_size, got {self.num_parents}")


@dataclass(frozen=True)
class ARSConfig(SearchConfig):
    normalize_obs: bool = True         # V2 (True) or V1 (False)
    num_directions: int = 8            # N directions, 2N episodes per iteration
    top_directions: int = 0            # b best directions in the update; 0 = all N
    step_size: float = 0.02            # alpha
    noise_std: float = 0.03            # nu, exploration noise of the perturbations

    def __post_init__(self):
        super().__post_init__()
        check_config(self, num_directions=(1, None), top_directions=(0, None),
                     step_size=(1e-12, None), noise_std=(1e-12, None))
        if self.top_directions > self.num_directions:
            raise ValueError(f"top_directions must be <= num_directions, "
                             f"got {self.top_directions}")


class PolicySearchAgent(Agent):
    """What the four searches share: the deterministic policy, the noise table, the population
    evaluator and the learn loop; a subclass implements ``_step`` (one iteration)."""

    log_fields = ("pop_return_best", "pop_return_mean", "pop_return_std", "center_return")
    uses_noise = True

    def _build(self) -> None:
        cfg = self.config
        self.policy = DeterministicPolicy(self.obs_space, self.action_space, cfg.hidden_layers,
                                          cfg.activation, cfg.policy_bias)
        linear = not cfg.hidden_layers
        self.params = self.policy.init(self.rng, zero=linear)
        if self.uses_noise and cfg.noise_table_size < self.policy.n_params:
            # (a direction is a slice of the table: known only once the env fixes the size)
            raise ValueError(f"noise_table_size={cfg.noise_table_size} is smaller than the "
                             f"policy's {self.policy.n_params} parameters on this env; use "
                             f"noise_table_size >= {self.policy.n_params}")
        self.noise = NoiseTable(cfg.noise_table_size, seed=[self.seed, 2]) \
            if self.uses_noise else None

        self._evaluator = None

    def _policy(self, obs, deterministic):
        return self.policy.raw_actions(self.params, obs)

    def _env_time_limit(self) -> int | None:
        """The env's own episode limit (gymnasium's registry or ``env_kwargs``), None if it
        has none; an id the registry cannot resolve is taken to have one (not checked)."""
        if "max_episode_steps" in self.env_kwargs:
            return self.env_kwargs["max_episode_steps"]
        try:
            return gym.spec(self.env_id).max_episode_steps
        except Exception:   # not resolvable here (e.g. an env object without an id)
            return 1

    # ----- population evaluation -----------------------------------------------------------

    @property
    def evaluator(self):
        """The population evaluator (built on first use; ``close()`` releases its workers)."""
        if self._evaluator is None:
            if self.env_id is None:
                raise ValueError("gradient-free agents need an env id (workers build their envs)")
            cfg = self.config
            # env_kwargs reach the workers' envs (they were built from the bare id: another
            # env, e.g. LunarLander's discrete actions for continuous=true). An env without a
            # time limit gets EPISODE_CAP: a deterministic policy that never reaches a
            # terminal state (CliffWalking-v1 into a wall) would never end an episode.
            env = (self.env_id if not self.env_kwargs
                   else functools.partial(gym_make, self.env_id, **self.env_kwargs))
            limit = cfg.max_episode_steps or (None if self._env_time_limit() else EPISODE_CAP)
            spec = PolicySpec(env, cfg.hidden_layers, cfg.activation, limit, cfg.policy_bias)
            self._evaluator = make_evaluator(spec, cfg.backend, cfg.num_workers, self.noise,
                                             address=cfg.ray_address or None)
        return self._evaluator

    def close(self) -> None:
        if self._evaluator is not None:
            self._evaluator.close()
            self._evaluator = None

    def _run(self, k: int, pairs: bool = False, **batch):
        """K episodes with env seeds from the run's generator (normalizer frozen). ``pairs``:
        tasks 2i and 2i+1 (theta + and - one direction) share a seed -- common random
        numbers, so r+ - r- measures the perturbation and not two different start states."""
        seeds = self.rng.integers(0, 2**31 - 1, size=k // 2 if pairs else k)
        seeds = seeds.repeat(2) if pairs else seeds
        res = self.evaluator.evaluate(seeds, obs_norm=self.obs_normalizer,
                                      collect_obs=self.obs_normalizer is not None, **batch)
        self._episodes.append(res)
        return res

    def _directions(self, n: int):
        """n noise-table start indices and their directions [n, P] (float64)."""
        idx = self.noise.sample_index(self.rng, self.policy.n_params, n)
        return idx, self.noise.rows(idx, self.policy.n_params)

    # ----- the loop --------------------------------------------------------------------------

    def _step(self) -> tuple[np.ndarray, dict]:
        """One iteration: (population returns [K], extra metrics). Subclasses implement it."""
        raise NotImplementedError

    def learn(self, total_steps: int, callback=None):
        """Iterate until ``total_steps`` more env steps have run (or ``callback`` returns
        False). Parameters change only at the end of an iteration, so stopping (or an
        interrupt) between iterations leaves a consistent agent to ``save``."""
        target = self.total_steps + self._check_total_steps(total_steps)
        while self.total_steps < target:
            self._episodes = []
            pop_returns, metrics = self._step()
            returns = np.concatenate([r.returns for r in self._episodes])
            lengths = np.concatenate([r.lengths for r in self._episodes])
            if self.obs_normalizer is not None:   # ARS V2 step 4 (all agents with it on)
                for res in self._episodes:
                    merge_obs_stats(self.obs_normalizer.rms, res)
            center = np.nan
            if self.config.eval_episodes:
                seeds = self.rng.integers(0, 2**31 - 1, size=self.config.eval_episodes)
                center = float(self.evaluator.evaluate(
                    seeds, np.tile(self.params, (len(seeds), 1)),
                    obs_norm=self.obs_normalizer).returns.mean())
            if not self._end_iteration(
                    callback, int(lengths.sum()), (returns.tolist(), lengths.tolist()),
                    pop_return_best=float(pop_returns.max()),
                    pop_return_mean=float(pop_returns.mean()),
                    pop_return_std=float(pop_returns.std()), center_return=center, **metrics):
                break
        return self


class RandomSearch(PolicySearchAgent):
    """Random search: (1 + K) selection around the incumbent (module docstring, RS)."""

    name, Config = "rs", RSConfig

    def _step(self):
        cfg = self.config
        k = cfg.population_size
        # 1. sample K candidates theta + sigma eps_k (eps_k from the noise table)
        idx, eps = self._directions(k)
        candidates = self.params + cfg.noise_std * eps
        # 2. score the incumbent (re-measured: scale 0) and every candidate
        res = self._run(k + 1, theta=self.params, noise_idx=np.concatenate([[0], idx]),
                        noise_scale=np.concatenate([[0.0], np.full(k, cfg.noise_std)]))
        # 3. keep the best
        self.params, _ = random_search_step(self.params, res.returns[0], candidates,
                                            res.returns[1:])
        return res.returns[1:], {}


class CEM(PolicySearchAgent):
    """Cross-entropy method over N(mu, diag sigma^2); ``params`` is mu (module docstring)."""

    name, Config, uses_noise = "cem", CEMConfig, False
    log_fields = PolicySearchAgent.log_fields + ("std_mean",)

    def _build(self) -> None:
        super()._build()
        self.std = np.full(self.policy.n_params, self.config.init_std)

    def state_arrays(self):
        return {**super().state_arrays(), "cem_std": self.std}

    def set_state_arrays(self, arrays, opt_steps):
        super().set_state_arrays(arrays, opt_steps)
        self.std = arrays["cem_std"].copy()

    def _step(self):
        cfg = self.config
        # 1. sample theta_k ~ N(mu, diag sigma^2)
        samples = self.params + self.std * self.rng.standard_normal(
            (cfg.population_size, self.policy.n_params))
        # 2. score each
        res = self._run(cfg.population_size, params=samples)
        # 3. refit mu, sigma to the elites
        self.params, self.std = cem_refit(samples, res.returns, cfg.elite_frac, self.params,
                                          self.std, cfg.smoothing, cfg.extra_noise)
        return res.returns, {"std_mean": float(self.std.mean())}


class ES(PolicySearchAgent):
    """Evolution strategies, (mu, lambda) recombination or the antithetic gradient form."""

    name, Config = "es", ESConfig
    log_fields = PolicySearchAgent.log_fields + ("grad_norm",)

    def _build(self) -> None:
        super()._build()
        self.adam = Adam(lr=self.config.lr, weight_decay=self.config.l2_coef, decoupled=False)
        if self.config.variant == "gradient":
            self.opt_states["policy"] = self.adam.init(self.params)

    def _step(self):
        cfg = self.config
        if cfg.variant == "mu_lambda":
            # 1. mutate: x_k = m + sigma eps_k
            idx, eps = self._directions(cfg.population_size)
            res = self._run(cfg.population_size, theta=self.params, noise_idx=idx,
                            noise_scale=np.full(cfg.population_size, cfg.noise_std))
            # 2.-3. evaluate, recombine the mu best offspring
            self.params = es_recombine(self.params + cfg.noise_std * eps, res.returns,
                                       cfg.num_parents)
            return res.returns, {}
        n = cfg.population_size // 2
        # 1. n directions eps_i;  2. evaluate theta + sigma eps_i and theta - sigma eps_i
        idx, eps = self._directions(n)
        res = self._run(2 * n, pairs=True, theta=self.params, noise_idx=idx.repeat(2),
                        noise_scale=np.tile([cfg.noise_std, -cfg.noise_std], n))
        # 3. centered ranks of all 2n returns, antithetic gradient estimate
        ranks = centered_ranks(res.returns)
        g = es_gradient(eps, ranks[0::2], ranks[1::2], cfg.noise_std)
        # 4. Adam ascent step (minimizes -J; the L2 term shrinks theta)
        self.params, self.opt_states["policy"] = self.adam.step(self.params, -g,
                                                                self.opt_states["policy"])
        return res.returns, {"grad_norm": float(np.linalg.norm(g))}


class ARS(PolicySearchAgent):
    """Augmented random search V1/V2, optionally top-b (module docstring, ARS)."""

    name, Config = "ars", ARSConfig
    log_fields = PolicySearchAgent.log_fields + ("sigma_r",)

    def _step(self):
        cfg = self.config
        n = cfg.num_directions
        # 1. N directions delta_i ~ N(0, I) (noise-table slices)
        idx, deltas = self._directions(n)
        # 2. evaluate theta + nu delta_i and theta - nu delta_i (2N episodes)
        res = self._run(2 * n, pairs=True, theta=self.params, noise_idx=idx.repeat(2),
                        noise_scale=np.tile([cfg.noise_std, -cfg.noise_std], n))
        # 3. theta += alpha / (b sigma_R) sum_{top b} (r+ - r-) delta
        self.params, sigma_r, _ = ars_update(self.params, deltas, res.returns[0::2],
                                             res.returns[1::2], cfg.step_size,
                                             cfg.top_directions or None)
        # 4. (V2) the states visited are folded into the normalizer by ``learn``
        return res.returns, {"sigma_r": sigma_r}
