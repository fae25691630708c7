"""REINFORCE / vanilla policy gradient, with an optional baseline refit every iteration.

    Initialize policy parameters theta, baseline b
    for iteration = 1, 2, ...:
      1. Collect T steps from each of N envs with pi_theta (episodes cut by the end of the
         batch are completed with V(s_T) when a value baseline exists, else just cut)
      2. At each step compute the return (reward-to-go G_t, or with ``reward_to_go=False``
         the full return R(tau) in place of G_t below) and the weight
             w_t = G_t                    (no baseline)
             w_t = G_t - mean_i R(tau_i)  (batch-mean baseline)
             w_t = G_t - b(s_t)           (learned baseline, the value net before its refit)
         ``baseline="optimal"`` (full return only) has no per-step weight: each episode's
         score vector g_i = sum_t grad log pi(a_t|s_t) (one backward pass per episode) and
         g = (1/E) sum_i g_i (R(tau_i) - b_i), b_ij = sum_{l!=i} g_lj^2 R_l / sum_{l!=i} g_lj^2
         (COL778's variance-optimal baseline per coordinate, leave-one-out: unbiased for
         complete episodes; the batch's cut first/last segments count as episodes, as above)
      3. Re-fit the baseline: minimize sum_t |b(s_t) - G_t|^2 (``vf_epochs`` passes of
         minibatch Adam steps on the value net)
      4. Update the policy with one Adam step along g = mean_t grad log pi(a_t|s_t) w_t

The weights of step 2 are the estimators of ``minirl.objectives.policy_gradient``; with
``step_discount=True`` they carry the gamma^k factor that makes the discounted estimator
unbiased, off by default (the common, biased choice; see that module); k counts from the
episode's start, also for an episode that began in an earlier iteration's rollout (the
collector's ``Rollout.start_steps``). With the full return (``reward_to_go=False``) and
``step_discount`` a segment that continues an episode from step k_0 has
R = gamma^{k_0} sum_j gamma^j r_j (discounted from the episode's real start); without
``step_discount`` every segment's R counts from its own first row.

Lecture: Stanford CS234 "Lecture 6: Policy Gradient II", '"Vanilla" Policy Gradient Algorithm'
(refit baseline); Stanford CS224R "Policy Gradients", REINFORCE, "Using causality",
"Introducing baselines"; IIT Delhi COL778 "Policy Gradients", reward to go and "Analyzing
variance" (the optimal baseline). Paper: Williams (1992); Greensmith et al. (2004).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from minirl.algos.base import ActorCriticNet, OnPolicyAgent, check_config
from minirl.nn import Adam, clip_grad_norm
from minirl.objectives.policy_gradient import (constant_baseline_weights, episode_ids,
                                               full_return_weights, optimal_baseline_gradient,
                                               policy_gradient_loss, reward_to_go_weights,
                                               state_baseline_weights)
from minirl.objectives.value import advantages_and_targets, explained_variance, value_loss
from minirl.rollout import Rollout, flatten

__all__ = ["REINFORCEConfig", "REINFORCE", "pg_weights", "fit_baseline", "policy_step",
           "episode_score_vectors", "optimal_baseline_step"]

BASELINES = ("none", "mean", "value", "optimal")


@dataclass(frozen=True)
class REINFORCEConfig:
    num_envs: int = 8                  # N parallel envs
    num_steps: int = 250               # T steps per env per iteration (batch N*T = 2000)
    gamma: float = 0.99                # discount
    reward_to_go: bool = True          # G_t (causality) instead of the full return R(tau)
    baseline: str = "value"            # "none", "mean" (batch mean), "value" (learned), "optimal"
    step_discount: bool = False        # weight step k of an episode by gamma^k (unbiased;
                                       # k from the episode's start, across rollouts)
    norm_adv: bool = True              # normalize the weights w_t over the batch
                                       # (population std, ddof=0, like PPO's and A2C's)
    lr: float = 3e-3                   # policy Adam learning rate
    vf_lr: float = 1e-3                # baseline Adam learning rate
    vf_epochs: int = 5                 # passes over the batch when refitting the baseline
    vf_minibatch_size: int = 250       # samples per baseline Adam step
    max_grad_norm: float = 0.5         # global-norm clipping of each gradient
    hidden_sizes: tuple = (64, 64)     # hidden layer widths of policy and baseline
    activation: str = "tanh"           # "tanh" or "relu"
    log_std_init: float = 0.0          # initial log std of Gaussian policies
    normalize_obs: bool = False        # running mean/std observation normalization
    normalize_reward: bool = False     # scale rewards by the std of the discounted return
    vectorization: str = "sync"        # "sync" or "async" vector env
    dtype: str = "float32"             # float type of networks and rollout buffers

    def __post_init__(self):
        check_config(self, lr=(0.0, None), vf_lr=(0.0, None), vf_epochs=(1, None),
                     vf_minibatch_size=(1, None), max_grad_norm=(1e-9, None))
        if self.baseline not in BASELINES:
            raise ValueError(f"baseline must be one of {BASELINES}, got {self.baseline!r}")
        if self.baseline == "optimal" and self.reward_to_go:
            raise ValueError("baseline='optimal' is the full-return estimator's baseline: "
                             "set reward_to_go=False")
        if self.baseline == "optimal" and self.num_envs < 2:
            # (each env's stretch of a batch is at least one episode, whole or cut)
            raise ValueError(f"baseline='optimal' (leave-one-out over the batch's episodes) "
                             f"needs num_envs >= 2 so that every batch holds two episodes, "
                             f"got num_envs={self.num_envs}")


def pg_weights(ro: Rollout, cfg: REINFORCEConfig):
    """Step 2: ``(w, G)``, both [T, N]: the per-step policy-gradient weights and the
    Monte-Carlo returns G_t that the baseline is refit to (bootstrapped by V where an
    episode was cut, when the baseline is learned). With ``step_discount`` the factor
    gamma^k counts k from each episode's start: ``ro.start_steps`` [N] is the episode step of
    row 0 (non-zero where an episode began in an earlier rollout); the full return R of such
    a segment is discounted from that start too (gamma^{k_0} R)."""
    boot = ro.next_values if cfg.baseline == "value" else None
    args = (ro.rewards, ro.terminated, ro.truncated, cfg.gamma)
    disc = dict(step_discount=cfg.step_discount, start_steps=ro.start_steps)
    full = dict(full_return=not cfg.reward_to_go)
    if cfg.baseline in ("none", "optimal"):  # "optimal": the plain returns, b applied later
        w = (reward_to_go_weights(*args, **disc) if cfg.reward_to_go
             else full_return_weights(*args, start_steps=ro.start_steps if cfg.step_discount
                                      else None))
    elif cfg.baseline == "mean":
        w = constant_baseline_weights(*args, "mean", **disc, **full)
    else:
        w = state_baseline_weights(ro.rewards, ro.terminated, ro.truncated, ro.values,
                                   cfg.gamma, bootstrap_values=boot, **disc, **full)
    G = advantages_and_targets("mc", ro.rewards, ro.values,
                               ro.next_values if boot is not None else np.zeros_like(ro.values),
                               ro.terminated, ro.truncated, cfg.gamma)[1]
    return w, G


def fit_baseline(net: ActorCriticNet, params: np.ndarray, opt_state, obs: np.ndarray,
                 G: np.ndarray, rng: np.random.Generator, cfg: REINFORCEConfig):
    """Step 3: minimize mean_t (b(s_t) - G_t)^2 over the value-net slice of ``params``.

    obs [B, obs_dim], G [B]. Returns (params, opt_state, mean loss)."""
    adam, vf, losses = Adam(lr=cfg.vf_lr), net.vf_slice, []
    for _ in range(cfg.vf_epochs):
        perm = rng.permutation(len(G))
        for i in range(0, len(G), cfg.vf_minibatch_size):
            idx = perm[i:i + cfg.vf_minibatch_size]
            values, cache = net.critic.forward(params[vf], obs[idx])
            loss, dvalues = value_loss(values[:, 0], G[idx])
            grad, _ = net.critic.backward(params[vf], cache, dvalues[:, None], need_dx=False)
            grad, _ = clip_grad_norm(grad, cfg.max_grad_norm)
            new_vf, opt_state = adam.step(params[vf], grad, opt_state)
            params = params.copy()
            params[vf] = new_vf
            losses.append(loss)
    return params, opt_state, float(np.mean(losses))


def policy_step(net: ActorCriticNet, params: np.ndarray, opt_state, ro: Rollout,
                w: np.ndarray, cfg: REINFORCEConfig):
    """Step 4: one Adam step on L = -mean_t(w_t log pi(a_t|s_t)) over the policy slice.

    Returns (params, opt_state, stats)."""
    if cfg.norm_adv and w.size > 1:
        w = (w - w.mean()) / (w.std() + 1e-8)
    dist, _, cache = net.forward(params, flatten(ro.obs))
    actions = flatten(ro.actions)
    logp = dist.log_prob(actions)
    loss, dlogp = policy_gradient_loss(logp, flatten(w), num_episodes=w.size)
    grad = net.backward(params, cache, dist.log_prob_backward(actions, dlogp))[net.pi_slice]
    grad, grad_norm = clip_grad_norm(grad, cfg.max_grad_norm)
    new_pi, opt_state = Adam(lr=cfg.lr).step(params[net.pi_slice], grad, opt_state)
    params = params.copy()
    params[net.pi_slice] = new_pi
    return params, opt_state, {"policy_loss": loss, "entropy": float(dist.entropy().mean()),
                               "grad_norm": grad_norm}


def episode_score_vectors(net: ActorCriticNet, params: np.ndarray, obs: np.ndarray,
                          actions: np.ndarray, ids: np.ndarray, num_episodes: int) -> np.ndarray:
    """g_i = sum_{t in episode i} grad_theta log pi(a_t|s_t) over the policy slice, ``[E, P_pi]``.

    obs [B, obs_dim], actions [B, ...], ids [B] (episode of each row, 0..E-1): one forward
    and one backward pass per episode (dlogp = 1 on its rows).
    """
    out = np.zeros((num_episodes, net.pi_slice.stop), dtype=np.float64)
    order = np.argsort(ids, kind="stable")
    bounds = np.searchsorted(ids[order], np.arange(num_episodes + 1))
    for e in range(num_episodes):
        rows = order[bounds[e]:bounds[e + 1]]
        dist, _, cache = net.forward(params, obs[rows])
        ddist = dist.log_prob_backward(actions[rows], np.ones(len(rows), dist.dtype))
        out[e] = net.backward(params, cache, ddist)[net.pi_slice]
    return out


def optimal_baseline_step(net: ActorCriticNet, params: np.ndarray, opt_state, ro: Rollout,
                          R: np.ndarray, cfg: REINFORCEConfig):
    """Steps 2 and 4 for ``baseline="optimal"``: one Adam step along
    g = (1/E) sum_i g_i (R(tau_i) - b_i) (``optimal_baseline_gradient``); ``R`` [T, N] is each
    step's episode return. ``norm_adv`` does not apply (there are no per-step weights).
    Returns (params, opt_state, stats)."""
    ids, E = episode_ids(ro.terminated, ro.truncated)
    ids = flatten(ids)
    R_ep = np.zeros(E)
    R_ep[ids] = flatten(R)  # every step of an episode carries the same R(tau)
    g = episode_score_vectors(net, params, flatten(ro.obs), flatten(ro.actions), ids, E)
    ascent, _ = optimal_baseline_gradient(g, R_ep)
    grad, grad_norm = clip_grad_norm(-ascent.astype(params.dtype), cfg.max_grad_norm)
    new_pi, opt_state = Adam(lr=cfg.lr).step(params[net.pi_slice], grad, opt_state)
    params = params.copy()
    params[net.pi_slice] = new_pi
    return params, opt_state, {"grad_norm": grad_norm}


class REINFORCE(OnPolicyAgent):
    """Vanilla policy gradient agent: ``REINFORCE(env, REINFORCEConfig(...), seed).learn(n)``."""

    name = "reinforce"
    Config = REINFORCEConfig
    log_fields = ("policy_loss", "value_loss", "entropy", "explained_variance", "grad_norm",
                  "lr")   # (value_loss: with baseline="value")

    def __init__(self, env, config: REINFORCEConfig | None = None, seed: int = 0, **kwargs):
        super().__init__(env, config, seed, **kwargs)   # kwargs: env_kwargs
        self.opt_states["pi"] = Adam(lr=self.config.lr).init(self.params[self.net.pi_slice])
        self.opt_states["vf"] = Adam(lr=self.config.vf_lr).init(self.params[self.net.vf_slice])

    def learn(self, total_steps: int, callback=None) -> "REINFORCE":
        """Train for ``total_steps`` env steps (rounded up to whole batches of N*T).

        ``callback(agent, metrics)`` runs after every iteration; returning False stops.
        """
        cfg = self.config
        total_steps = self._check_total_steps(total_steps)
        n_iters = math.ceil(total_steps / (cfg.num_envs * cfg.num_steps))
        self._start_learning()
        for _ in range(n_iters):
            # 1. Collect T steps from each of N envs with pi_theta.
            ro = self.collector.collect(self._act, self._value, self.rng)
            # 2. Returns G_t and policy-gradient weights w_t (with the old baseline).
            w, G = pg_weights(ro, cfg)
            stats = {"explained_variance": explained_variance(ro.values, G)}
            # 3. Re-fit the baseline b(s) to the returns.
            if cfg.baseline == "value":
                self.params, self.opt_states["vf"], stats["value_loss"] = fit_baseline(
                    self.net, self.params, self.opt_states["vf"], flatten(ro.obs), flatten(G),
                    self.rng, cfg)
            # 4. One policy-gradient step along mean_t grad log pi(a_t|s_t) w_t (or, for the
            #    optimal baseline, along the per-episode estimate of step 2).
            step = optimal_baseline_step if cfg.baseline == "optimal" else policy_step
            self.params, self.opt_states["pi"], pi_stats = step(
                self.net, self.params, self.opt_states["pi"], ro, w, cfg)
            if not self._end_iteration(callback, lr=cfg.lr, **stats, **pi_stats):
                break
        return self
