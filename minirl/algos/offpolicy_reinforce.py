"""Off-policy REINFORCE: whole episodes in a replay buffer, trajectory importance weights.

    (1/N) sum_{tau ~ P_pi} R(tau) grad log P_pi(tau)
        ~= (1/N) sum_{tau ~ Q} P_pi(tau)/Q(tau) (R(tau) - b) grad log P_pi(tau),
    P_pi(tau)/Q(tau) = prod_t pi_theta(a_t|s_t) / Q(a_t|s_t)   (the dynamics cancel)

    for iteration = 1, 2, ...:
      1. For some number of episodes: run the current policy and store every finished episode
         in the replay buffer with its behaviour log-probs log Q(a_t|s_t) (the policy that
         acted, recorded as it acted); the oldest episodes leave a full buffer
      2. Update the baseline: b = mean return R(tau) of the buffer's episodes ("none": b = 0)
      3. For some number of batches:
         a. sample episodes from the replay buffer (uniformly, without replacement)
         b. weights w_t = rho(tau) (R(tau) - b) with rho(tau) = P_pi(tau)/Q(tau) computed as
            exp(sum_t log pi_theta(a_t|s_t) - log Q(a_t|s_t)) in log space
            (``self_normalize``: rho divided by its mean over the batch's episodes)
         c. one Adam step on the pseudo-loss -(1/B) sum_t w_t log pi_theta(a_t|s_t)

Step 3b is ``minirl.objectives.policy_gradient.trajectory_is_weights(..., full_return=True)``
(unbiased for grad J when Q > 0 wherever pi_theta > 0 and b is a constant; proven exactly on
finite MDPs). Two choices here make the agent's steps differ from that exact statement, and
are said so: b is the buffer's mean return, computed from episodes the batch may contain (a
bias of order 1/buffer size, as with on-policy REINFORCE's batch-mean baseline); and
``self_normalize=True`` (default) is weighted importance sampling, biased for a finite batch
but consistent, with weights bounded by the batch size -- the plain ratio
(``self_normalize=False``, the lecture's form) can be exponentially large in the episode
length. An episode still running when ``learn`` returns is dropped; one cut by a time limit
is stored with its observed return (no bootstrap: there is no critic). Episodes that straddle
an update are still exact: Q is the product of the probabilities of the policies that
actually acted, step by step.

The replay buffer (every stored episode with its behaviour log-probs) is part of ``save``
(``save_buffer=True``, the default): the off-policy correction needs log Q of the episodes it
replays, so a loaded agent (and ``minirl train --resume``) continues with the saved agent's
buffer, bit for bit. ``save_buffer=False`` keeps model files small (long episodes) at the
price of a loaded agent restarting with an empty buffer.

Lecture: "Policy Gradients and Gradient-Free Optimization", slides "Off-Policy Algorithms"
(the loop above) and "Baselines"; Stanford CS224R "Policy Gradients", "Off-policy version of
policy gradient? Importance sampling". Paper: Williams (1992); Precup, Sutton & Singh (2000);
weighted importance sampling: Mahmood, van Hasselt & Sutton (2014).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from kernels.importance import importance_weights
from minirl.algos.base import ActorCriticNet, Agent, check_config
from minirl.nn import Adam, clip_grad_norm
from minirl.nn.mlp import check_cast
from minirl.objectives.policy_gradient import (full_return_weights, policy_gradient_loss,
                                               trajectory_is_weights)
from minirl.rollout import EpisodeStats

__all__ = ["OffPolicyREINFORCEConfig", "OffPolicyREINFORCE", "EpisodeReplay", "EpisodeBatch",
           "buffer_baseline", "offpolicy_weights"]

BASELINES = ("none", "mean")


@dataclass(frozen=True)
class OffPolicyREINFORCEConfig:
    num_envs: int = 4                  # N parallel envs collecting episodes
    episodes_per_iter: int = 8         # episodes added to the buffer per iteration (step 1)
    buffer_episodes: int = 32          # replay capacity in episodes (oldest leave first)
    num_batches: int = 4               # gradient steps per iteration (step 3)
    batch_episodes: int = 8            # episodes per gradient step
    gamma: float = 0.99                # discount of R(tau)
    baseline: str = "mean"             # "mean" (buffer mean return) or "none"
    self_normalize: bool = True        # divide rho by its batch mean (weighted IS)
    lr: float = 3e-3                   # Adam learning rate
    max_grad_norm: float = 0.5         # global-norm clipping of each gradient
    hidden_sizes: tuple = (64, 64)     # hidden layer widths of the policy
    activation: str = "tanh"           # "tanh" or "relu"
    log_std_init: float = 0.0          # initial log std of Gaussian policies
    save_buffer: bool = True           # save the episode buffer with the agent (False: a
    #                                    loaded agent restarts with an empty buffer)
    vectorization: str = "sync"        # "sync" or "async" vector env
    dtype: str = "float32"             # float type of the network

    def __post_init__(self):
        check_config(self, episodes_per_iter=(1, None), buffer_episodes=(1, None),
                     num_batches=(1, None), batch_episodes=(1, None), lr=(0.0, None),
                     max_grad_norm=(1e-9, None))
        if self.baseline not in BASELINES:
            raise ValueError(f"baseline must be one of {BASELINES}, got {self.baseline!r}")
        if self.batch_episodes > self.buffer_episodes:
            raise ValueError(f"batch_episodes ({self.batch_episodes}) must be <= "
                             f"buffer_episodes ({self.buffer_episodes})")


@dataclass(frozen=True)
class EpisodeBatch:
    """Sampled episodes laid end to end as one 1-D rollout of L steps: ``obs [L, obs_dim]``,
    ``actions [L, ...]``, ``rewards, logp_behaviour [L]``, ``terminated [L]`` (True on each
    episode's last step, so the estimators see the episode ends), ``truncated [L]`` (False)."""

    obs: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    logp_behaviour: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    num_episodes: int


class EpisodeReplay:
    """FIFO buffer of whole episodes ``(obs [L, d], actions [L, ...], rewards [L],
    logp_behaviour [L])``; ``sample(k, rng)`` draws k distinct episodes uniformly."""

    def __init__(self, capacity: int):
        if isinstance(capacity, bool) or not isinstance(capacity, (int, np.integer)) \
                or capacity < 1:
            raise ValueError(f"capacity must be a positive integer, got {capacity!r}")
        self.capacity = int(capacity)
        self.episodes: list[tuple[np.ndarray, ...]] = []

    def __len__(self) -> int:
        return len(self.episodes)

    def add(self, obs, actions, rewards, logp_behaviour) -> None:
        L = len(rewards)
        if L < 1 or not (len(obs) == len(actions) == len(logp_behaviour) == L):
            raise ValueError("an episode needs L >= 1 steps and equal lengths for obs, actions, "
                             "rewards and logp_behaviour")
        if not np.all(np.isfinite(logp_behaviour)):
            raise ValueError("logp_behaviour must be finite (the behaviour took these actions)")
        self.episodes.append(tuple(np.asarray(x) for x in (obs, actions, rewards,
                                                            logp_behaviour)))
        if len(self.episodes) > self.capacity:
            self.episodes.pop(0)

    def returns(self, gamma: float) -> np.ndarray:
        """``[E]`` discounted return R(tau) of every stored episode."""
        return np.array([float(np.sum(ep[2] * gamma ** np.arange(len(ep[2]))))
                         for ep in self.episodes])

    def sample(self, k: int, rng: np.random.Generator) -> EpisodeBatch:
        if not 1 <= k <= len(self.episodes):
            raise ValueError(f"cannot sample {k} episodes from a buffer of {len(self.episodes)}")
        idx = rng.choice(len(self.episodes), size=k, replace=False)
        eps = [self.episodes[i] for i in idx]
        ends = np.zeros(sum(len(ep[2]) for ep in eps), dtype=bool)
        ends[np.cumsum([len(ep[2]) for ep in eps]) - 1] = True
        cat = [np.concatenate([ep[j] for ep in eps]) for j in range(4)]
        return EpisodeBatch(cat[0], cat[1], cat[2].astype(np.float64),
                            cat[3].astype(np.float64), ends, np.zeros_like(ends), k)


def buffer_baseline(buffer: EpisodeReplay, gamma: float, kind: str) -> float:
    """Step 2: b = mean over the buffer's episodes of R(tau) (``"mean"``), or 0 (``"none"``)."""
    if kind == "none" or len(buffer) == 0:
        return 0.0
    return float(buffer.returns(gamma).mean())


def offpolicy_weights(batch: EpisodeBatch, logp: np.ndarray, gamma: float, baseline: float,
                      self_normalize: bool) -> tuple[np.ndarray, float]:
    """Step 3b: per-step weights ``w [L]`` = rho(tau) (R(tau) - b) and the batch's effective
    sample size fraction ESS/E = (sum rho)^2 / (E sum rho^2) in (0, 1].

    rho(tau) = exp(sum_{t in tau} logp_t - logp_behaviour_t) (log space; ``logp`` [L] from the
    current policy). ``self_normalize``: rho_i / mean_j rho_j, formed from the log weights
    (exp(l_i - logsumexp(l)) * E), so it never overflows.
    """
    logp = np.asarray(logp, dtype=np.float64)
    flags = (batch.terminated, batch.truncated)
    if not self_normalize:
        w = trajectory_is_weights(batch.rewards, *flags, logp, batch.logp_behaviour,
                                  np.full(logp.shape, baseline), gamma, full_return=True)
    _, log_rho = importance_weights(logp, batch.logp_behaviour, *flags, "trajectory")
    log_ep = log_rho[np.flatnonzero(batch.terminated)]                    # [E]
    shifted = log_ep - log_ep.max()
    ess = float(np.exp(shifted).sum() ** 2 / np.exp(2 * shifted).sum()) / batch.num_episodes
    if self_normalize:
        norm = np.exp(log_rho - log_rho.max()) / np.exp(shifted).mean()   # rho / mean rho
        R = full_return_weights(batch.rewards, *flags, gamma)
        w = norm * (R - baseline)
    return w, ess


class OffPolicyREINFORCE(Agent):
    """``OffPolicyREINFORCE(env, OffPolicyREINFORCEConfig(...), seed).learn(n)``."""

    name = "reinforce-offpolicy"
    Config = OffPolicyREINFORCEConfig
    log_fields = ("lr", "buffer_episodes", "weight_ess")

    def _build(self) -> None:
        cfg = self.config
        self.net = ActorCriticNet(self.obs_dim, self.action_space, cfg.hidden_sizes,
                                  cfg.activation, False, cfg.log_std_init,
                                  dtype=np.dtype(cfg.dtype))
        self.params = self.net.init(self.rng)
        self.opt_states["pi"] = Adam(lr=cfg.lr).init(self.params[self.net.pi_slice])
        self.buffer = EpisodeReplay(cfg.buffer_episodes)
        self._obs = None
        self._note_buffer()

    def _note_buffer(self) -> None:
        """Record the buffer's size in ``extra_state`` (``load`` sizes the fresh buffer from
        it before checking the saved arrays)."""
        self.extra_state.update(buffer_count=len(self.buffer),
                                buffer_steps=sum(len(ep[2]) for ep in self.buffer.episodes))

    def _episode_rows(self) -> tuple[tuple, np.dtype, tuple, np.dtype]:
        """(obs row shape, obs dtype, action shape, action dtype) of stored episodes: what
        ``collect_episodes`` stores (actions as the policy samples them)."""
        dist, _, _ = self.net.forward(self.params, np.zeros((1, self.obs_dim), self.net.dtype))
        a = np.asarray(dist.sample(np.random.default_rng(0)))   # (a throwaway generator)
        return (self.obs_dim,), self.net.dtype, a.shape[1:], a.dtype

    def state_arrays(self) -> dict[str, np.ndarray]:
        """The base arrays plus the buffer's episodes laid end to end (``buffer.obs [L, d]``,
        ``buffer.actions [L, ...]``, ``buffer.rewards``, ``buffer.logp_behaviour [L]``) and
        their lengths ``buffer.lengths [E]``."""
        arrays = super().state_arrays()
        if not self.config.save_buffer:
            return arrays
        obs_shape, obs_dtype, act_shape, act_dtype = self._episode_rows()
        eps = self.buffer.episodes
        templates = ((obs_shape, obs_dtype), (act_shape, act_dtype), ((), np.float64),
                     ((), np.float64))
        for j, (key, (shape, dtype)) in enumerate(zip(
                ("obs", "actions", "rewards", "logp_behaviour"), templates)):
            arrays[f"buffer.{key}"] = (np.concatenate([ep[j] for ep in eps]) if eps
                                       else np.zeros((0, *shape), dtype))
        arrays["buffer.lengths"] = np.array([len(ep[2]) for ep in eps], np.int64)
        return arrays

    def set_state_arrays(self, arrays, opt_steps) -> None:
        super().set_state_arrays(arrays, opt_steps)
        if not self.config.save_buffer:
            self._note_buffer()
            return
        lengths = arrays["buffer.lengths"]
        if np.any(lengths < 1) or int(lengths.sum()) != len(arrays["buffer.rewards"]):
            raise ValueError("saved array 'buffer.lengths' must hold positive episode lengths "
                             f"summing to {len(arrays['buffer.rewards'])}, got {lengths}")
        self.buffer = EpisodeReplay(self.config.buffer_episodes)
        starts = np.concatenate([[0], np.cumsum(lengths)])
        for i in range(len(lengths)):
            self.buffer.add(*(arrays[f"buffer.{k}"][starts[i]:starts[i + 1]].copy()
                              for k in ("obs", "actions", "rewards", "logp_behaviour")))
        self._note_buffer()

    def _prepare_load(self, meta: dict) -> None:
        """Fill the fresh buffer with placeholder episodes of the saved count and total
        length, so ``load`` can check the saved buffer arrays' shapes (then replaces them)."""
        if not self.config.save_buffer:
            return
        extra = meta.get("extra_state", {})
        count, steps = extra.get("buffer_count", 0), extra.get("buffer_steps", 0)
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (count, steps)) \
                or not 0 <= count <= self.config.buffer_episodes \
                or not (count <= steps if count else steps == 0):
            raise ValueError(f"extra_state buffer_count={count!r}, buffer_steps={steps!r} do "
                             f"not describe a buffer of at most {self.config.buffer_episodes} "
                             "episodes")
        obs_shape, obs_dtype, act_shape, act_dtype = self._episode_rows()
        for i in range(count):
            L = steps - (count - 1) if i == 0 else 1
            self.buffer.add(np.zeros((L, *obs_shape), obs_dtype),
                            np.zeros((L, *act_shape), act_dtype), np.zeros(L), np.zeros(L))

    def _policy(self, obs, deterministic):
        dist, _, _ = self.net.forward(self.params, obs.astype(self.net.dtype))
        return dist.mode() if deterministic else dist.sample(self.eval_rng)

    def _start_learning(self) -> None:
        """Fresh episodes at the start of every ``learn`` call (seed drawn from ``self.rng``)."""
        self._obs, _ = self.envs.reset(seed=int(self.rng.integers(2**31 - 1)))
        self._running = [[] for _ in range(self.envs.num_envs)]
        self._stats = EpisodeStats(self.envs.num_envs)

    def collect_episodes(self, n: int, max_steps: int | None = None) -> int:
        """Step 1: step the envs until ``n`` episodes finished, or ``max_steps`` env steps were
        taken (the rest of the budget: an env without a time limit must not run past
        ``learn``'s ``total_steps``); store each finished episode with its behaviour log-probs
        (unfinished ones go on in the next call). Returns the number of env steps taken."""
        finished, steps = 0, 0
        while finished < n and (max_steps is None or steps < max_steps):
            obs = self._obs.astype(self.net.dtype)
            check_cast(obs, self._obs, "obs")   # a finite 1e39 is inf in float32: named here
            actions, logp, _ = self.net.act(self.params, obs, self.rng)
            self._obs, rewards, terminated, truncated, _ = self.envs.step(
                self._to_env_actions(actions))
            steps += self.envs.num_envs
            ended = terminated | truncated
            self._stats.track(rewards, ended)
            for i in range(self.envs.num_envs):
                self._running[i].append((obs[i], actions[i], float(rewards[i]), float(logp[i])))
                if ended[i]:  # the true final obs is not needed: no bootstrap
                    o, a, r, lp = (np.array(x) for x in zip(*self._running[i]))
                    self.buffer.add(o, a, r, lp)
                    self._running[i] = []
                    finished += 1
        self._note_buffer()
        return steps

    def gradient_step(self, batch: EpisodeBatch, baseline: float) -> float:
        """Steps 3b-3c on one sampled batch; returns its ESS fraction."""
        cfg, net = self.config, self.net
        dist, _, cache = net.forward(self.params, batch.obs.astype(net.dtype))
        logp = dist.log_prob(batch.actions)
        w, ess = offpolicy_weights(batch, logp, cfg.gamma, baseline, cfg.self_normalize)
        _, dlogp = policy_gradient_loss(logp, w.astype(logp.dtype),
                                        num_episodes=batch.num_episodes)
        grad = net.backward(self.params, cache, dist.log_prob_backward(batch.actions, dlogp))
        grad, _ = clip_grad_norm(grad[net.pi_slice], cfg.max_grad_norm)
        new_pi, self.opt_states["pi"] = Adam(lr=cfg.lr).step(self.params[net.pi_slice], grad,
                                                             self.opt_states["pi"])
        self.params = self.params.copy()
        self.params[net.pi_slice] = new_pi
        return ess

    def learn(self, total_steps: int, callback=None) -> "OffPolicyREINFORCE":
        """Train for ``total_steps`` env steps (rounded up to whole vector steps); the last
        iteration collects only what is left of the budget.

        ``callback(agent, metrics)`` runs after every iteration; returning False stops.
        """
        cfg = self.config
        total_steps = self._check_total_steps(total_steps)
        self._start_learning()
        done = 0
        while done < total_steps:
            # 1. Run the current policy; store finished episodes with log Q(a_t|s_t).
            n_steps = self.collect_episodes(cfg.episodes_per_iter, total_steps - done)
            ess = [math.nan]
            if len(self.buffer):  # (an env without a time limit may not have ended one yet)
                # 2. Update the baseline.
                b = buffer_baseline(self.buffer, cfg.gamma, cfg.baseline)
                # 3. Gradient steps on episodes sampled from the buffer, weighted by P_pi/Q.
                k = min(cfg.batch_episodes, len(self.buffer))
                ess = [self.gradient_step(self.buffer.sample(k, self.rng), b)
                       for _ in range(cfg.num_batches)]
            done += n_steps
            if not self._end_iteration(callback, n_steps, self._stats.pop(), lr=cfg.lr,
                                       buffer_episodes=len(self.buffer),
                                       weight_ess=float(np.mean(ess))):
                break
        return self
