"""Soft Actor-Critic: twin (or ensemble) critics, a reparameterized tanh-Gaussian actor,
Polyak-averaged target critics and a learned temperature alpha.

    Input: replay buffer D, critics Q_theta_1..K, target critics theta'_j <- theta_j, actor
    pi_phi (tanh-squashed Gaussian on [-1, 1]^D), log alpha, discount gamma, smoothing tau,
    batch size B
    for each vector env step t = 1, 2, ...:
      1. Sample a_t ~ pi_phi(.|s_t) in [-1, 1]^D (uniform there before ``learning_starts``;
         with ``noise_beta`` > 0 the sample's eps is colored noise over time), step the envs
         with offset + scale a_t (the action box's affine map), store
         (s_t, a_t, r_t, s_{t+1}, terminated_t, truncated_t) in D, with s_{t+1} the TRUE
         final observation where an episode was reset
      every ``train_freq``-th t, repeat ``gradient_steps`` times (once more than
      ``learning_starts`` env steps were taken, as Stable-Baselines3, and a batch is stored):
      2. Sample a minibatch {(s_i, a_i, r_i, s'_i, terminated_i)}_{i=1..B} ~ D
      3. Targets: a'_i ~ pi_phi(.|s'_i),
             y_i = r_i + gamma (1 - terminated_i)
                       * (min_{j in S} Q_theta'_j(s'_i, a'_i) - alpha log pi(a'_i|s'_i))
         (S = all critics, or a random subset of ``target_subset`` critics; truncation bootstraps)
      4. Critics: theta_j <- Adam step on (1/B) sum_i (Q_theta_j(s_i, a_i) - y_i)^2, j = 1..K
      5. Actor: phi <- Adam step on
             (1/B) sum_i [alpha log pi(a~_i|s_i) - min_j Q_theta_j(s_i, a~_i)],
             a~_i = tanh(mu_phi(s_i) + sigma_phi(s_i) eps_i): the gradient flows through a~
             into the critics' input gradient dQ/da (reparameterization)
      6. Temperature (``auto_alpha``): log alpha <- Adam step on
             -(1/B) sum_i log alpha (log pi(a~_i|s_i) + H_target),  H_target = -dim(A)
         (descent raises alpha while the entropy estimate -mean(log pi) is below H_target)
      7. Targets: theta'_j <- tau theta_j + (1 - tau) theta'_j

Units (as Stable-Baselines3): the actor, the replay buffer and the critics work with the
squashed action a in [-1, 1]^D; only the env receives offset + scale a, with
scale = (high - low)/2 and offset = (high + low)/2 of its action box. So log pi is the density
of a in [-1, 1] (``TanhGaussian`` on the unit box: the Gaussian's and the tanh's log-dets, not
the box rescaling's constant -sum_d log scale_d), and the target entropy -dim(A) means the
same whatever the env's action units: SAC on Pendulum-v1 (box [-2, 2]) learns exactly what it
learns with the env wrapped in ``gymnasium.wrappers.RescaleAction(env, -1, 1)``. (The density
in env units, which ``TanhGaussian(mean, log_std, low, high).log_prob`` gives, is lower by
sum_d log scale_d: compared with -dim(A) it would ask a [-2, 2] box for an entropy of
-(1 + log 2) per dimension in the unit box, a less exploratory policy than SB3's default.)

alpha = 0 with ``auto_alpha=False`` is the lecture's "Soft Actor-Critic (no entropy term)".
Every step is one call to a function of ``minirl.objectives.sac`` (tested by finite
differences there) or of ``minirl.nn``.

Lecture: Stanford CS224R "Off-Policy Actor-Critic Methods" (version 2: replay buffers, Q(s, a)
with next actions from the current policy, reparameterization trick, SAC); "Critic Ensembling";
"Actor Critic: SAC, Algorithm 1: Soft Actor-Critic (no entropy term)".
Papers: Haarnoja et al. 2018 (arXiv:1801.01290, arXiv:1812.05905); colored exploration
noise: Eberhard et al. 2023, "Pink Noise Is All You Need" (ICLR 2023). Defaults: RL-Zoo's
Pendulum-v1 SAC (Stable-Baselines3 defaults with lr 1e-3).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from gymnasium import spaces

from minirl.algos.base import ACTIVATIONS, Agent, check_config
from minirl.envs import true_next_obs
from minirl.nn import MLP, Adam, AdamState, polyak_update
from minirl.nn.losses import mean_f64
from minirl.objectives.sac import (ACTOR_Q_REDUCTIONS, EnsembleWorkspace, actor_gradient,
                                   colored_noise, critic_gradient, critic_subset, policy_head,
                                   target_values, temperature_loss)
from minirl.replay import ReplayBuffer
from minirl.rollout import EpisodeStats

__all__ = ["SACConfig", "SAC"]


@dataclass(frozen=True)
class SACConfig:
    num_envs: int = 1                  # N parallel envs (one vector step = N transitions)
    buffer_size: int = 1_000_000       # replay capacity (transitions)
    batch_size: int = 256              # B, transitions per gradient step
    learning_starts: int = 100         # env steps of uniform random actions; updates start
                                       # once more than this many env steps were taken (SB3:
                                       # num_timesteps > learning_starts) and batch_size
                                       # transitions are stored
    gradient_steps: int = 1            # gradient steps per update round (update-to-data ratio
                                       # gradient_steps / train_freq per vector env step)
    train_freq: int = 1                # vector env steps between update rounds
    gamma: float = 0.99                # discount
    tau: float = 0.005                 # Polyak coefficient of the target critics
    lr: float = 1e-3                   # Adam learning rate (actor, critics, temperature)
    hidden_sizes: tuple = (256, 256)   # hidden widths of the actor and of every critic
    activation: str = "relu"           # "relu" or "tanh"
    n_critics: int = 2                 # K critics (2: twin critics / clipped double Q)
    target_subset: int = 0             # M critics in the target's min (0: all K; REDQ: 2)
    actor_q: str = "min"               # actor's Q: "min" over the K critics, or "mean" (REDQ)
    auto_alpha: bool = True            # learn alpha against the target entropy
    alpha: float = 1.0                 # fixed alpha, or the initial alpha if auto_alpha
    target_entropy_per_dim: float = -1.0   # H_target = this * dim(A): entropy per dimension
                                           # of the squashed action in [-1, 1] (as SB3's
                                           # -dim(A)), the same for any action box
    noise_beta: float = 0.0            # exploration: the eps of a ~ pi is colored noise with
                                       # spectrum 1/f^beta over time (0: white, SAC's own
                                       # i.i.d. sampling; 1: pink, Eberhard et al. 2023)
    noise_seq_len: int = 1000          # colored noise: sequence length (~ episode length);
                                       # a new sequence per env at every episode start
    steps_per_iteration: int = 1000    # env steps per iteration (one callback / CSV row)
    save_buffer: bool = True           # include the replay buffer in save() (exact resume)
    vectorization: str = "sync"        # "sync" or "async" vector env
    dtype: str = "float32"             # float type of networks and the replay buffer

    def __post_init__(self):
        check_config(self, buffer_size=(2, None), batch_size=(1, None),
                     learning_starts=(0, None), gradient_steps=(0, None), train_freq=(1, None),
                     noise_beta=(0.0, 10.0), noise_seq_len=(2, None), tau=(0.0, 1.0),
                     lr=(0.0, None), n_critics=(1, None), target_subset=(0, None),
                     alpha=(0.0, None), target_entropy_per_dim=(-1e6, 1e6),
                     steps_per_iteration=(1, None))
        # The buffer keeps buffer_size // num_envs slots per env and (uniform sampling) never
        # samples the slot being written: a larger batch is never drawn, no update ever runs.
        per_env = self.buffer_size // self.num_envs
        if per_env < 2:
            raise ValueError(f"buffer_size={self.buffer_size} must hold at least 2 transitions "
                             f"per env (num_envs={self.num_envs})")
        usable = (per_env - 1) * self.num_envs
        if self.batch_size > usable:
            raise ValueError(f"batch_size={self.batch_size} is more than buffer_size="
                             f"{self.buffer_size} can ever sample ({usable} transitions with "
                             f"num_envs={self.num_envs}): the run would train nothing")
        if self.target_subset > self.n_critics:
            raise ValueError(f"target_subset must be <= n_critics={self.n_critics}, got "
                             f"{self.target_subset}")
        if self.actor_q not in ACTOR_Q_REDUCTIONS:
            raise ValueError(f"actor_q must be one of {ACTOR_Q_REDUCTIONS}, got {self.actor_q!r}")
        if self.auto_alpha and self.alpha <= 0.0:
            raise ValueError(f"alpha (the initial alpha) must be > 0 with auto_alpha, got "
                             f"{self.alpha}")


class SAC(Agent):
    """Soft Actor-Critic for bounded Box action spaces (see the module docstring)."""

    name, Config = "sac", SACConfig
    log_fields = ("critic_loss", "actor_loss", "alpha", "entropy", "q_mean")

    # ----- construction ----------------------------------------------------------------

    def _check_spaces(self) -> None:
        super()._check_spaces()
        space = self.action_space
        if not (isinstance(space, spaces.Box) and len(space.shape) == 1):
            raise TypeError(f"SAC needs a 1-D Box action space, got {space}")
        if not (np.all(np.isfinite(space.low)) and np.all(np.isfinite(space.high))):
            raise ValueError(f"SAC needs a bounded action space (the tanh squashes into "
                             f"[low, high]); got low={space.low}, high={space.high}")

    def _build(self) -> None:
        cfg, dt = self.config, np.dtype(self.config.dtype)
        D = self.act_dim = int(self.action_space.shape[0])
        # The actor's box is [-1, 1]^D (log pi and H_target unit-free, as SB3); the env gets
        # offset + scale a, the box's affine map as the base's action adapter holds it.
        self.low, self.high = -np.ones(D), np.ones(D)
        self.scale, self.offset = self.action_adapter.scale, self.action_adapter.offset
        # Saved with the agent: files written before SAC moved to the unit box lack it.
        self.extra_state["action_units"] = "unit box"
        act = ACTIVATIONS[cfg.activation]
        self.actor = MLP([self.obs_dim, *cfg.hidden_sizes, 2 * D], act, dtype=dt)
        self.critic = MLP([self.obs_dim + D, *cfg.hidden_sizes, 1], act, dtype=dt)
        self.params = self.actor.init(self.rng, out_gain=0.01)           # phi
        self.q_params = np.stack([self.critic.init(self.rng)             # [K, n] theta_j
                                  for _ in range(cfg.n_critics)])
        self.target_params = self.q_params.copy()                        # theta'_j
        # log alpha is learned with auto_alpha; a fixed alpha (0 allowed) is read from cfg.
        self.log_alpha = np.array([np.log(cfg.alpha) if cfg.auto_alpha else 0.0])
        self.target_entropy = cfg.target_entropy_per_dim * D
        self.adam = Adam(lr=cfg.lr)
        self.opt_states = {"actor": self.adam.init(self.params),
                           "critic": self.adam.init(self.q_params)}
        if cfg.auto_alpha:
            self.opt_states["alpha"] = self.adam.init(self.log_alpha)
        self.buffer = ReplayBuffer(cfg.buffer_size, self.obs_space.shape, (D,), dt,
                                   num_envs=cfg.num_envs, dtype=dt)
        self.episodes = EpisodeStats(cfg.num_envs)
        # Opt-in MLP workspaces (speed only): one per cache that must outlive another forward.
        self._ws_pi = (self.actor.workspace(), EnsembleWorkspace(self.critic))
        self._ws_target = (self.actor.workspace(), self._ws_pi[1])
        self._ws_act = self.actor.workspace()
        # Colored exploration noise (noise_beta > 0): eps [N, D, L] per env, read at _noise_pos.
        self._noise = np.zeros((cfg.num_envs, D, cfg.noise_seq_len))
        self._noise_pos = np.full(cfg.num_envs, cfg.noise_seq_len)

    # ----- acting ----------------------------------------------------------------------

    def _policy(self, obs: np.ndarray, deterministic: bool) -> np.ndarray:
        """Env actions: offset + scale tanh(mean) if deterministic, else offset + scale a with
        a ~ pi (the base clips them into the box: offset + scale * 1 may round past high)."""
        return self.offset + self.scale * self._act(obs, deterministic, self.eval_rng)

    def _act(self, obs, deterministic: bool, rng: np.random.Generator) -> np.ndarray:
        """The actor's actions in [-1, 1]^D: tanh(mean) or a sample."""
        out, _ = self.actor.forward(self.params, obs, self._ws_act)
        dist = policy_head(out, self.low, self.high)
        return dist.mode() if deterministic else dist.sample(rng)

    # ----- one gradient step (steps 2-7) ----------------------------------------------

    def _update(self) -> dict:
        cfg = self.config
        alpha = float(np.exp(self.log_alpha[0])) if cfg.auto_alpha else cfg.alpha
        # 2. Minibatch from the replay buffer.
        batch = self.buffer.sample(cfg.batch_size, self.rng)
        # 3. Soft targets from the target critics and the CURRENT policy's next actions.
        subset = critic_subset(cfg.n_critics, cfg.target_subset or cfg.n_critics, self.rng)
        y = target_values(self.actor, self.params, self.critic, self.target_params, batch,
                          cfg.gamma, alpha, self.low, self.high, self.rng, subset,
                          self._ws_target)
        # 4. Critic regression onto y (every critic on the same targets).
        loss_q, grad_q = critic_gradient(self.critic, self.q_params, batch.obs, batch.actions,
                                         y, workspace=self._ws_pi[1])
        self.q_params, self.opt_states["critic"] = self.adam.step(
            self.q_params, grad_q, self.opt_states["critic"])
        # 5. Actor through the reparameterized sample and the updated critics' input gradients.
        loss_pi, grad_pi, logp = actor_gradient(self.actor, self.params, self.critic,
                                                self.q_params, batch.obs, alpha, self.low,
                                                self.high, self.rng, cfg.actor_q, self._ws_pi)
        self.params, self.opt_states["actor"] = self.adam.step(
            self.params, grad_pi, self.opt_states["actor"])
        # 6. Temperature towards the target entropy (alpha of this step was fixed above).
        if cfg.auto_alpha:
            _, dla = temperature_loss(self.log_alpha[0], logp, self.target_entropy)
            self.log_alpha, self.opt_states["alpha"] = self.adam.step(
                self.log_alpha, np.array([dla]), self.opt_states["alpha"])
        # 7. Polyak averaging of the target critics, in place.
        polyak_update(self.target_params, self.q_params, cfg.tau, out=self.target_params)
        return {"critic_loss": loss_q, "actor_loss": loss_pi, "alpha": alpha,
                "entropy": -mean_f64(logp), "q_mean": mean_f64(y)}   # (float64 sums)

    # ----- the loop (step 1 and the schedule of updates) -------------------------------

    def _env_step(self, obs: np.ndarray, uniform: bool) -> np.ndarray:
        """Step 1: act in [-1, 1]^D (uniformly if ``uniform``, else a ~ pi), step the envs with
        offset + scale a (clipped into the box, in its dtype), store the transition with a and
        the true next obs; returns the obs to act on next."""
        cfg = self.config
        if uniform:   # uniform in the env's box too (an affine map); no high - low overflow
            actions = self.rng.uniform(-1.0, 1.0, (cfg.num_envs, self.act_dim))
        elif cfg.noise_beta > 0.0:
            actions = self._act_colored(obs)
        else:
            actions = self._act(obs, False, self.rng)
        env_actions = self._to_env_actions(self.offset + self.scale * actions)
        next_obs, rewards, terminated, truncated, infos = self.envs.step(env_actions)
        # SAME_STEP autoreset: next_obs holds the reset obs there; store the final one.
        self.buffer.add(obs, actions, rewards, true_next_obs(next_obs, infos), terminated,
                        truncated)
        self.episodes.track(rewards, terminated | truncated)
        self._noise_pos[terminated | truncated] = cfg.noise_seq_len     # fresh noise next episode
        return next_obs

    def _act_colored(self, obs) -> np.ndarray:
        """a = tanh(mean + std eps) in [-1, 1]^D with eps the next step of each env's
        colored-noise sequence (``colored_noise``; a new one when used up or at an episode
        start)."""
        cfg = self.config
        for i in np.flatnonzero(self._noise_pos >= cfg.noise_seq_len):
            self._noise[i] = colored_noise(cfg.noise_beta, self._noise.shape[1:], self.rng)
            self._noise_pos[i] = 0
        eps = self._noise[np.arange(cfg.num_envs), :, self._noise_pos]             # [N, D]
        self._noise_pos += 1
        out, _ = self.actor.forward(self.params, obs, self._ws_act)
        dist = policy_head(out, self.low, self.high)
        return np.tanh(dist.mean + dist.std * eps.astype(dist.dtype))

    def learn(self, total_steps: int, callback=None) -> "SAC":
        """Train for ``total_steps`` env steps (rounded up to whole vector steps)."""
        total_steps = self._check_total_steps(total_steps)
        cfg, N = self.config, self.config.num_envs
        if self.extra_state.get("action_units") != "unit box" \
                and not (np.all(self.scale == 1.0) and np.all(self.offset == 0.0)):
            raise ValueError(
                "this SAC agent was saved before SAC worked in the unit action box: its replay "
                "buffer and critics hold actions in the env's units, so training on would mix "
                "two action scales; its actor is unchanged (predict/evaluate are right), "
                "train a new agent to continue")
        # Fresh episodes every call (seed from self.rng): a loaded agent continues exactly.
        # The buffer records that the running episodes were cut (ReplayBuffer.end_episodes).
        self.buffer.end_episodes()
        obs, _ = self.envs.reset(seed=int(self.rng.integers(2**31 - 1)))
        self.episodes.reset()
        self._noise_pos[:] = cfg.noise_seq_len
        done = 0
        while done < total_steps:
            n, metrics = 0, {}           # env steps of this iteration; its last update's metrics
            n_iter = min(cfg.steps_per_iteration, total_steps - done)
            while n < n_iter:
                seen = self.total_steps + n                                # env steps so far
                obs = self._env_step(obs, uniform=seen < cfg.learning_starts)   # 1.
                n += N
                round_due = (seen // N + 1) % cfg.train_freq == 0     # every train_freq-th
                if (round_due and seen + N > cfg.learning_starts           # SB3's rule
                        and self.buffer.size >= cfg.batch_size):
                    for _ in range(cfg.gradient_steps):                    # 2.-7.
                        metrics = self._update()
            done += n
            if not self._end_iteration(callback, n, self.episodes.pop(), **metrics):
                break
        return self

    # ----- persistence ---------------------------------------------------------------------

    def state_arrays(self) -> dict[str, np.ndarray]:
        arrays = {**super().state_arrays(), "q_params": self.q_params,
                  "target_params": self.target_params, "log_alpha": self.log_alpha}
        if self.config.save_buffer:
            arrays.update({f"buffer.{k}": v for k, v in self.buffer.state_arrays().items()})
        return arrays

    def set_state_arrays(self, arrays: dict[str, np.ndarray], opt_steps: dict) -> None:
        super().set_state_arrays(arrays, opt_steps)
        self.q_params = arrays["q_params"].copy()
        self.target_params = arrays["target_params"].copy()
        self.log_alpha = arrays["log_alpha"].copy()
        if self.config.save_buffer:
            self.buffer.set_state_arrays({k.split(".", 1)[1]: v for k, v in arrays.items()
                                          if k.startswith("buffer.")})
