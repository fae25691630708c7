"""Deep Q-Network (DQN) with its fixes as config flags: target networks (hard or Polyak),
double DQN, n-step targets, Huber loss, gradient clipping, prioritized replay, epsilon-greedy
or Boltzmann exploration, and an ensemble of K Q-heads with min/mean reduction.

    Input: replay buffer D, Q-network Q_theta (K heads), target network theta' <- theta,
           discount gamma, batch size B, target update interval C, exploration schedule
    for iteration = 1, 2, ... (train_freq vector steps each, i.e. train_freq * N env steps):
      1. for each env step t: a_t = random w.p. eps_t, else argmax_a Q_theta(s_t, a) (or
         a_t ~ softmax(Q_theta(s_t, .) / T_t)); uniform random before ``learning_starts``;
         execute a_t, store (s_t, a_t, r_t, s_{t+1}, terminated, truncated) in D with the TRUE
         s_{t+1} (the final observation at an autoreset);
         every max(C // N, 1) vector steps: theta' <- tau theta + (1 - tau) theta'
         (tau = 1: hard copy)
      2. once t > learning_starts (t: env steps so far), ``gradient_steps`` times:
         a. sample a batch from D (uniform or prioritized; 1-step or n-step windows)
         b. targets y_i = G_i + d_i Q_theta'(s'_i, argmax_a' Q_(theta' or theta)(s'_i, a'))
            (G = r, d = gamma (1 - terminated) for 1 step; n-step: the buffer's G and gamma^m)
         c. theta <- Adam step on clip(grad_theta 1/B sum_i w_i h(Q_theta(s_i, a_i) - y_i))
            (h: squared error or Huber; w: PER importance weights, else 1)
         d. prioritized replay: p_i <- (|delta_i| + eps)^alpha

Lecture: Stanford CS224R, "Q-Learning: DQN pseudocode (Algorithm 1)", "How to make Q-learning
stable?" (target networks), "Double Q-learning in practice", "N-step returns", "Practical
Implementation Details" (semi-gradient and target network, hard/soft updates; Huber loss and
gradient clipping; replay buffers), "Critic Ensembling", "What are good choices for data
collection?" (epsilon-greedy, Boltzmann). Papers: Mnih et al. (2015), Nature 518; van Hasselt
et al. (2016), arXiv:1509.06461; Schaul et al. (2016), arXiv:1511.05952.
Defaults: RL-Zoo's CartPole-v1 DQN (Stable-Baselines3 semantics: train_freq counts vector
steps, one per ``envs.step`` call, like minirl's SAC, with ``gradient_steps`` per iteration;
C counts env steps, applied every max(C // N, 1) vector steps; learning_starts counts env steps
(training once more than that many were taken); the target update uses tau, gradient norm
clipped at 10, Huber loss with delta 1), and
SB3's starting point, PyTorch's default U(+-1/sqrt(fan_in)) weights and biases: with orthogonal
weights and zero biases the same settings learned CartPole markedly worse (mean of the last 100
training episodes 53-133 against 167-282 over the same seeds; benchmarks/results/learning_dqn.md).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from gymnasium import spaces

from kernels.qstep import q_values
from kernels.unique import argmax_first
from minirl.algos.base import Agent, check_config
from minirl.envs import true_next_obs
from minirl.algos.dqn_update import dqn_gradient_step, dqn_gradient_steps, dqn_targets
from minirl.nn import Adam, hard_update, polyak_update
from minirl.nn.mlp import cast_checked
from minirl.nn.optim import reusable
from minirl.nn.qnet import QNet
from minirl.objectives.q_learning import (ENSEMBLE_REDUCTIONS, boltzmann, ensemble_mean,
                                          epsilon_greedy, linear_schedule)
from minirl.replay import PrioritizedReplayBuffer, ReplayBuffer
from minirl.rollout import EpisodeStats

__all__ = ["DQNConfig", "DQN", "QNet", "dqn_targets", "dqn_gradient_step",
           "dqn_gradient_steps"]


@dataclass(frozen=True)
class DQNConfig:
    num_envs: int = 1                  # N parallel envs
    gamma: float = 0.99                # discount
    lr: float = 2.3e-3                 # Adam learning rate
    adam_eps: float = 1e-8             # Adam epsilon
    batch_size: int = 64               # B transitions per gradient step
    buffer_size: int = 100_000         # replay capacity (transitions, all envs)
    learning_starts: int = 1000        # env steps of uniform random actions before training
    train_freq: int = 256              # vector steps (train_freq * num_envs env steps) per
    #                                    iteration, SB3's unit (num_envs=1: env steps)
    gradient_steps: int = 128          # gradient steps per iteration (after learning_starts)
    target_update_interval: int = 10   # C: env steps between target updates (every
    #                                    max(C // num_envs, 1) vector steps, as SB3)
    tau: float = 1.0                   # target update theta' <- tau theta + (1-tau) theta'
    loss: str = "huber"                # "huber" or "mse" (the lecture's squared error)
    huber_delta: float = 1.0           # delta of the Huber loss
    max_grad_norm: float = 10.0        # global-norm gradient clipping
    exploration: str = "epsilon"       # "epsilon" (epsilon-greedy) or "boltzmann"
    exploration_fraction: float = 0.16  # fraction of a learn() call to anneal over
    exploration_initial_eps: float = 1.0   # epsilon at the start
    exploration_final_eps: float = 0.04    # epsilon after the annealing
    temperature_initial: float = 1.0   # Boltzmann temperature at the start
    temperature_final: float = 0.01    # Boltzmann temperature after the annealing
    double: bool = False               # double DQN: the online net picks a', the target evaluates
    n_step: int = 1                    # n of the n-step targets (1 = the TD target)
    prioritized: bool = False          # prioritized replay
    per_alpha: float = 0.6             # priority exponent alpha
    per_beta0: float = 0.4             # initial importance exponent beta (annealed to 1)
    per_eps: float = 1e-6              # priority offset eps in (|delta| + eps)^alpha
    n_critics: int = 1                 # K independent Q-heads (ensemble)
    ensemble_reduction: str = "min"    # "min" or "mean" over the K target heads
    hidden_sizes: tuple = (256, 256)   # hidden layer widths of the Q-network
    init: str = "uniform"              # "uniform" (PyTorch's Linear default) or "orthogonal"
    activation: str = "relu"           # "relu" or "tanh"
    save_buffer: bool = True           # save the replay buffer with the agent
    vectorization: str = "sync"        # "sync" or "async" vector env
    dtype: str = "float32"             # float type of the networks and the buffer
    fused: bool = True                 # steps 2b-2c in Numba (kernels.qstep) when the Q-net
    #                                    is one ReLU MLP, an iteration's gradient_steps in one
    #                                    call (per update with PER): bit for bit the layer
    #                                    path with one BLAS thread (last bits with several)

    def __post_init__(self):
        check_config(self, lr=(0.0, None), adam_eps=(1e-12, None), batch_size=(1, None),
                     buffer_size=(2, None), learning_starts=(0, None), train_freq=(1, None),
                     gradient_steps=(0, None), target_update_interval=(1, None),
                     tau=(0.0, 1.0), huber_delta=(1e-9, None), max_grad_norm=(1e-9, None),
                     exploration_fraction=(0.0, 1.0), exploration_initial_eps=(0.0, 1.0),
                     exploration_final_eps=(0.0, 1.0), temperature_initial=(1e-9, None),
                     temperature_final=(1e-9, None), n_step=(1, None), per_alpha=(0.0, None),
                     per_beta0=(0.0, 1.0), per_eps=(1e-12, None), n_critics=(1, None))
        # The buffer keeps buffer_size // num_envs slots per env and (uniform sampling) never
        # samples the slot being written: a larger batch is never drawn, no update ever runs.
        per_env = self.buffer_size // self.num_envs
        if per_env < 2:
            raise ValueError(f"buffer_size={self.buffer_size} must hold at least 2 transitions "
                             f"per env (num_envs={self.num_envs})")
        usable = (per_env - (0 if self.prioritized else 1)) * self.num_envs
        if self.batch_size > usable:
            raise ValueError(f"batch_size={self.batch_size} is more than buffer_size="
                             f"{self.buffer_size} can ever sample ({usable} transitions with "
                             f"num_envs={self.num_envs}): the run would train nothing")
        for name, allowed in (("loss", ("huber", "mse")),
                              ("exploration", ("epsilon", "boltzmann")),
                              ("ensemble_reduction", ENSEMBLE_REDUCTIONS),
                              ("init", ("orthogonal", "uniform"))):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")


class DQN(Agent):
    """DQN agent: ``DQN(env, DQNConfig(...), seed).learn(total_steps)``."""

    name = "dqn"
    Config = DQNConfig
    log_fields = ("q_loss", "q_mean", "grad_norm", "epsilon", "temperature", "gradient_steps",
                  "buffer_size")

    def _check_spaces(self) -> None:
        super()._check_spaces()
        if not isinstance(self.action_space, spaces.Discrete):
            raise TypeError(f"DQN needs a Discrete action space, got {self.action_space}")

    def _build(self) -> None:
        cfg = self.config
        dt = np.dtype(cfg.dtype)
        self.qnet = QNet(self.obs_dim, int(self.action_space.n), cfg.hidden_sizes,
                         cfg.activation, cfg.n_critics, dt)
        self.params = self.qnet.init(self.rng, cfg.init)
        self.target_params = self.params.copy()
        self.adam = Adam(lr=cfg.lr, eps=cfg.adam_eps)
        self.opt_states["adam"] = self.adam.init(self.params)
        buf_args = (cfg.buffer_size, self.obs_space.shape, (), np.int64, cfg.num_envs, dt)
        self.buffer = (PrioritizedReplayBuffer(*buf_args, alpha=cfg.per_alpha,
                                               beta0=cfg.per_beta0, eps=cfg.per_eps)
                       if cfg.prioritized else ReplayBuffer(*buf_args))
        self.episodes = EpisodeStats(cfg.num_envs)
        self.extra_state["vector_steps"] = 0           # for the every-C-steps target update
        self._grad = np.zeros(self.qnet.n_params, dt)
        # updates per fused call: their batches' observations (obs and next obs) in ~8 MB
        self._chunk = max(1, min(cfg.gradient_steps, (8 << 20) // (
            2 * cfg.batch_size * max(self.obs_dim, 1) * dt.itemsize)))

    # ----- acting -----------------------------------------------------------------------
    def _q(self, obs: np.ndarray) -> np.ndarray:
        """Q(s, .) [B, A] for action selection (the mean over heads for an ensemble)."""
        if self.config.fused and self.qnet.fusable:   # one call, the same numbers
            return q_values(self.params, self.qnet.sizes,
                            cast_checked(obs, self.qnet.dtype, "obs"))   # named overflow
        q = self.qnet.forward(self.params, obs, "act")[0]
        return q[0] if self.qnet.K == 1 else ensemble_mean(q)   # no float32 overflow

    def _schedule_ends(self) -> tuple[float, float]:
        """(start, end) of the behaviour policy's schedule: epsilon or temperature."""
        cfg = self.config
        if cfg.exploration == "epsilon":
            return cfg.exploration_initial_eps, cfg.exploration_final_eps
        return cfg.temperature_initial, cfg.temperature_final

    def _explore(self, obs: np.ndarray, value: float, rng: np.random.Generator) -> np.ndarray:
        """Step 1's behaviour policy: epsilon-greedy or Boltzmann at the scheduled ``value``
        (epsilon or temperature)."""
        if self.config.exploration == "epsilon":
            return epsilon_greedy(self._q(obs), value, rng)
        return boltzmann(self._q(obs), value, rng)

    def _schedule_values(self, first: int, n: int, stride: int, total: int) -> np.ndarray:
        """epsilon (or temperature) at env steps ``first + stride * i``, i < n, of a schedule
        over ``total`` steps: ``linear_schedule``'s values (its arguments validated by one
        call), the same float64 arithmetic done once as an array instead of per env step."""
        cfg = self.config
        start, end = self._schedule_ends()
        linear_schedule(first, start, end, cfg.exploration_fraction, total)
        horizon = cfg.exploration_fraction * total
        steps = first + stride * np.arange(n)
        if horizon <= 0.0:
            return np.full(n, end)
        return np.where(steps >= horizon, end, start + (end - start) * (steps / horizon))

    def _policy(self, obs, deterministic):
        if deterministic:  # a function of obs: ties (measure zero once trained) -> lowest a
            return argmax_first(self._q(obs), axis=1)
        return self._explore(obs, self._schedule_ends()[1], self.eval_rng)  # the final value

    # ----- learning ---------------------------------------------------------------------
    def _update_target(self) -> None:
        if self.config.tau == 1.0:
            hard_update(self.target_params, self.params, out=self.target_params)
        else:
            polyak_update(self.target_params, self.params, self.config.tau,
                          out=self.target_params)

    def _collect(self, n_vec: int, start_steps: int, total: int) -> None:
        """Step 1 for ``n_vec`` vector steps (``start_steps``: env steps done in this call).

        Transitions are gathered in time-major blocks and stored with one ``buffer.add`` per
        block (the same contents as one add per step: nothing samples the buffer while
        acting, and the prioritized buffer's new-transition priority does not change)."""
        cfg, envs, N, buf = self.config, self.envs, self.config.num_envs, self.buffer
        every = max(cfg.target_update_interval // N, 1)
        T = min(n_vec, buf.slots)
        values = self._schedule_values(start_steps, n_vec, N, total).tolist()
        obs, block, j = self._obs, None, 0
        for i in range(n_vec):
            done_steps = self.total_steps + i * N
            if done_steps < cfg.learning_starts:
                actions = self.rng.integers(0, self.action_space.n, N)
            else:
                actions = self._explore(obs, values[i], self.rng)
            # indices 0..n-1 -> the env's start..start+n-1 (Discrete(n, start))
            next_obs, rewards, terminated, truncated, infos = envs.step(
                self._to_env_actions(actions))
            ended = terminated | truncated
            step = (obs, actions, rewards, next_obs, terminated, truncated)
            if block is None:   # [T, N, ...] in the arrays' own dtypes (add validates, casts)
                block = [np.empty((T, *np.shape(x)), np.asarray(x).dtype) for x in step]
            for k in (0, 1, 2, 4, 5):
                block[k][j] = step[k]
            true_next_obs(next_obs, infos, out=block[3][j])   # final_obs at an autoreset
            j += 1
            if j == T:
                buf.add(*block)
                j = 0
            self.episodes.track(rewards, ended)
            self.extra_state["vector_steps"] += 1
            if self.extra_state["vector_steps"] % every == 0:
                self._update_target()
            obs = next_obs
        if j:
            buf.add(*(x[:j] for x in block))
        self._obs = obs

    def _sample(self, **kw):
        """Step 2a: a batch of 1-step or n-step transitions (``batches=K``: K at once)."""
        cfg = self.config
        if cfg.n_step == 1:
            return self.buffer.sample(cfg.batch_size, self.rng, **kw)
        return self.buffer.sample_nstep(cfg.batch_size, self.rng, cfg.n_step, cfg.gamma, **kw)

    def _train(self, start_steps: int, total: int) -> dict:
        """Step 2: ``gradient_steps`` updates; returns the mean loss, Q and gradient norm."""
        cfg, sums, buf = self.config, np.zeros(3), self.buffer
        beta = linear_schedule(start_steps, cfg.per_beta0, 1.0, 1.0, total)
        # a fusable Q-net without PER runs a chunk of updates in one call (kernels.q_steps)
        chunked = cfg.fused and self.qnet.fusable and not cfg.prioritized
        spare = None     # last update's obsolete vectors, when nobody else holds them
        done = 0
        while done < cfg.gradient_steps:
            # a. batches of 1-step or n-step transitions: a chunk's at once (the same draws
            # as one per update: the updates neither change the buffer nor draw from
            # self.rng), one per update otherwise (prioritized: drawn per update)
            n = min(self._chunk, cfg.gradient_steps - done) if chunked else 1
            batches = self._sample(batches=n) if chunked else (
                self._sample(beta=beta) if cfg.prioritized else self._sample())
            if chunked:   # b-c for the chunk; an error at update j leaves updates < j done
                run = dqn_gradient_steps(self.qnet, self.params, self.target_params,
                                         self.opt_states["adam"], self.adam, batches, cfg,
                                         self._grad, progress=self._keep)
                if run is not None:
                    self.params, self.opt_states["adam"], stats = run
                    for row in stats.tolist():      # summed in update order, as below
                        sums += row
                    done += n
                    continue
            for batch in ([type(batches)(*(f[i] for f in batches)) for i in range(n)]
                          if chunked else [batches]):
                # b-c. targets from the target net, loss, clipped gradient, Adam step
                old = (self.params, self.opt_states["adam"].m, self.opt_states["adam"].v)
                self.params, self.opt_states["adam"], stats, td = dqn_gradient_step(
                    self.qnet, self.params, self.target_params, self.opt_states["adam"],
                    self.adam, batch, cfg, self._grad, out=spare)
                spare = None                 # (our own reference would make them look held)
                spare = reusable(old)
                # d. new priorities |delta| for the sampled transitions
                if cfg.prioritized:
                    buf.update_priorities(batch.indices, td)
                sums += stats
                done += 1
        return dict(zip(("q_loss", "q_mean", "grad_norm"),
                        (sums / max(cfg.gradient_steps, 1)).tolist()))

    def _keep(self, params, opt_state) -> None:
        """The state after the updates a fused chunk has done so far (what an error in the
        next update leaves, as after that many single updates)."""
        self.params, self.opt_states["adam"] = params, opt_state

    def learn(self, total_steps: int, callback=None) -> "DQN":
        """Train for ``total_steps`` env steps (rounded up to whole iterations of
        ``train_freq`` vector steps, ``train_freq * num_envs`` env steps each).

        ``callback(agent, metrics)`` runs after every iteration; returning False stops.
        """
        cfg = self.config
        total_steps = self._check_total_steps(total_steps)
        n_vec = cfg.train_freq                    # vector steps per iteration (SB3's unit)
        n_iters = math.ceil(total_steps / (n_vec * cfg.num_envs))
        self.buffer.end_episodes()    # the running episodes are cut here: n-step windows
        self._obs, _ = self.envs.reset(seed=int(self.rng.integers(2**31 - 1)))   # stop there
        self.episodes.reset()
        done = 0                                                  # env steps in this call
        off, horizon = self._schedule_span(total_steps)   # resumed runs: the run's budget
        for _ in range(n_iters):
            # 1. act with the exploration policy, store true transitions, update the target
            self._collect(n_vec, off + done, horizon)
            done += n_vec * cfg.num_envs
            # 2. gradient steps once learning has started
            stats = {"q_loss": math.nan, "q_mean": math.nan, "grad_norm": math.nan}
            steps = 0
            if self.total_steps + n_vec * cfg.num_envs > cfg.learning_starts \
                    and cfg.gradient_steps > 0 and self.buffer.sampleable >= cfg.batch_size:
                stats = self._train(off + done, horizon)
                steps = cfg.gradient_steps
            sched = dict(epsilon=linear_schedule(
                off + done, cfg.exploration_initial_eps, cfg.exploration_final_eps,
                cfg.exploration_fraction, horizon), temperature=linear_schedule(
                off + done, cfg.temperature_initial, cfg.temperature_final,
                cfg.exploration_fraction, horizon))
            if not self._end_iteration(callback, n_vec * cfg.num_envs, self.episodes.pop(),
                                       **stats, **sched, gradient_steps=steps,
                                       buffer_size=len(self.buffer)):
                break
        return self

    # ----- persistence ------------------------------------------------------------------
    def state_arrays(self) -> dict[str, np.ndarray]:
        arrays = super().state_arrays()
        arrays["target_params"] = self.target_params
        if self.config.save_buffer:
            arrays.update({f"buffer.{k}": v for k, v in self.buffer.state_arrays().items()})
        return arrays

    def set_state_arrays(self, arrays, opt_steps) -> None:
        super().set_state_arrays(arrays, opt_steps)
        self.target_params = arrays["target_params"].copy()
        if self.config.save_buffer:
            self.buffer.set_state_arrays({k[len("buffer."):]: v for k, v in arrays.items()
                                          if k.startswith("buffer.")})
