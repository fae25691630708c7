"""Batch actor-critic (A2C-style): one synchronous update per batch of T x N transitions.

    for iteration = 1, 2, ...:
      1. Collect T steps from each of N envs with pi_theta                -> rollout [T, N]
      2. Value targets y_t by the chosen estimator (Monte Carlo, TD(0), n-step or GAE(lam)):
             mc:    y_t = sum_k gamma^k r_{t+k} to the episode end (V bootstrapped only where
                    a time limit or the rollout cut the episode)
             td0:   y_t = r_t + gamma V(s_{t+1})
             nstep: y_t = sum_{k<n} gamma^k r_{t+k} + gamma^n V(s_{t+n})
             gae:   y_t = A_t^GAE + V(s_t)
      3. Advantages A_t = y_t - V(s_t) (for gae: A_t^GAE)
      4. grad J ~= mean_t grad log pi(a_t|s_t) A_t  (+ c_e grad H[pi(.|s_t)])
      5. One Adam step on L = -mean(A_t log pi(a_t|s_t)) + c_v mean((V(s_t) - y_t)^2) - c_e mean(H),
         which fits V to y (step "fit V-hat to sampled reward sums") and moves theta along grad J,
         with global-norm gradient clipping. Actor and critic: separate MLPs or a shared trunk.

Targets and advantages use the critic *before* this step's update (as in the lecture, V is
fitted to targets computed from the data just collected). The score is not multiplied by
gamma^k (``step_discount=False`` in ``advantage_weights``): the usual, slightly biased choice.

Lecture: Stanford CS224R lectures, "A Full Algorithm Walkthrough" (batch actor-critic) and
"Estimating V^pi: Monte Carlo vs. Bootstrap", "N-step returns", "GAE";
Stanford CS234 "Lecture 6: Policy Gradient II",
"Actor-critic", "N-step estimators". Paper: Mnih et al. (2016), A3C (the synchronous A2C
variant); defaults follow Stable-Baselines3's A2C (with Adam in place of RMSprop).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from minirl.algos.base import ActorCriticNet, OnPolicyAgent, check_config
from minirl.nn import Adam, LinearSchedule, clip_grad_norm
from minirl.objectives.policy_gradient import advantage_weights, policy_gradient_loss
from minirl.objectives.value import (VALUE_TARGETS, advantages_and_targets, explained_variance,
                                     value_loss)
from minirl.rollout import Rollout, flatten

__all__ = ["A2CConfig", "A2C", "a2c_loss_and_grad"]


@dataclass(frozen=True)
class A2CConfig:
    num_envs: int = 8                  # N parallel envs
    num_steps: int = 5                 # T steps per env per update (batch N*T = 40)
    gamma: float = 0.99                # discount
    value_target: str = "gae"          # "mc", "td0", "nstep" or "gae"
    lam: float = 1.0                   # GAE lambda ("gae" only; 1.0 = returns cut at T)
    n_step: int = 5                    # n of the n-step target ("nstep" only)
    lr: float = 7e-4                   # Adam learning rate
    adam_eps: float = 1e-5             # Adam epsilon
    anneal_lr: bool = False            # anneal lr linearly to 0 over a learn() call
    max_grad_norm: float = 0.5         # global-norm gradient clipping
    vf_coef: float = 0.5               # c_v, weight of the value loss
    ent_coef: float = 0.0              # c_e, entropy bonus weight
    norm_adv: bool = False             # normalize advantages over the batch (population std,
                                       # ddof=0; SB3: ddof=1, sqrt(B/(B-1)) smaller)
    hidden_sizes: tuple = (64, 64)     # hidden layer widths
    activation: str = "tanh"           # "tanh" or "relu"
    shared_trunk: bool = False         # one network with a policy head and a value head
    log_std_init: float = 0.0          # initial log std of Gaussian policies (gSDE: every entry)
    use_sde: bool = False              # Box actions: gSDE, noise z(s)^T theta held for a while
    sde_sample_freq: int = -1          # gSDE: redraw the noise every k steps; -1/0: per rollout
    action_bounds: str = "clip"        # Box actions: "clip" or "squash" (tanh; minirl.spaces)
    ortho_init: bool = True            # orthogonal init (False: PyTorch's default uniform)
    normalize_obs: bool = False        # running mean/std observation normalization
    normalize_reward: bool = False     # scale rewards by the std of the discounted return
    vectorization: str = "sync"        # "sync" or "async" vector env
    dtype: str = "float32"             # float type of networks and rollout buffers

    def __post_init__(self):
        check_config(self, lam=(0.0, 1.0), n_step=(1, None), lr=(0.0, None),
                     adam_eps=(1e-12, None), max_grad_norm=(1e-9, None), vf_coef=(0.0, None),
                     ent_coef=(0.0, None), sde_sample_freq=(-1, None))
        if self.action_bounds not in ("clip", "squash"):
            raise ValueError(f"action_bounds must be 'clip' or 'squash', got {self.action_bounds!r}")
        if self.value_target not in VALUE_TARGETS:
            raise ValueError(f"value_target must be one of {VALUE_TARGETS}, "
                             f"got {self.value_target!r}")


def a2c_loss_and_grad(net: ActorCriticNet, params: np.ndarray, ro: Rollout, adv: np.ndarray,
                      targets: np.ndarray, cfg: A2CConfig):
    """Steps 4-5's loss L = -mean(A log pi) + c_v mean((V - y)^2) - c_e mean(H) and dL/dtheta.

    With ``cfg.norm_adv`` the B = T*N advantages are normalized as (A - mean A) / (std A +
    1e-8) with the population std (numpy's default ddof=0, 1/B inside the root).
    Stable-Baselines3's A2C (``normalize_advantage=True``) divides by torch's sample std
    (ddof=1), so minirl's normalized advantages are sqrt(B/(B-1)) times SB3's: +0.8% at
    B = 64, +0.4% at B = 128. Kept on purpose: every committed A2C benchmark row was produced
    with it.

    Shapes: rollout fields, adv, targets [T, N]. Returns (loss, grad [n_params], stats).
    """
    dist, values, cache = net.forward(params, flatten(ro.obs))
    actions = flatten(ro.actions)
    logp = dist.log_prob(actions)
    w = advantage_weights(adv, ro.terminated, ro.truncated, cfg.gamma, step_discount=False)
    if cfg.norm_adv and w.size > 1:
        w = (w - w.mean()) / (w.std() + 1e-8)
    pi_loss, dlogp = policy_gradient_loss(logp, flatten(w), num_episodes=w.size)
    v_loss, dvalues = value_loss(values, flatten(targets))
    entropy = dist.entropy()
    ddist = dist.log_prob_backward(actions, dlogp)
    if cfg.ent_coef > 0.0:
        dent = dist.entropy_backward(np.full(entropy.shape, -cfg.ent_coef / entropy.size))
        ddist = ddist + dent if net.discrete else tuple(x + y for x, y in zip(ddist, dent))
    grad = net.backward(params, cache, ddist, cfg.vf_coef * dvalues)
    mean_entropy = float(entropy.mean())
    loss = pi_loss + cfg.vf_coef * v_loss - cfg.ent_coef * mean_entropy
    return loss, grad, {"policy_loss": pi_loss, "value_loss": v_loss, "entropy": mean_entropy}


class A2C(OnPolicyAgent):
    """Batch actor-critic agent: ``A2C(env, A2CConfig(...), seed).learn(total_steps)``."""

    name = "a2c"
    Config = A2CConfig
    log_fields = ("policy_loss", "value_loss", "entropy", "explained_variance", "grad_norm",
                  "lr")

    def __init__(self, env, config: A2CConfig | None = None, seed: int = 0, **kwargs):
        super().__init__(env, config, seed, **kwargs)   # kwargs: env_kwargs
        self.opt_states["adam"] = Adam(lr=self.config.lr).init(self.params)

    def learn(self, total_steps: int, callback=None) -> "A2C":
        """Train for ``total_steps`` env steps (rounded up to whole batches of N*T).

        ``callback(agent, metrics)`` runs after every update; returning False stops.
        """
        cfg = self.config
        total_steps = self._check_total_steps(total_steps)
        batch = cfg.num_envs * cfg.num_steps
        n_iters = math.ceil(total_steps / batch)
        offset, horizon = self._schedule_span(total_steps)  # resumed runs: the run's budget
        done_iters = offset // batch
        anneal = LinearSchedule(1.0, 0.0, max(math.ceil(horizon / batch), 1))
        self._start_learning()
        for k in range(n_iters):
            adam = Adam(lr=cfg.lr * (anneal(done_iters + k) if cfg.anneal_lr else 1.0), eps=cfg.adam_eps)
            # 1. Collect T steps from each of N envs with pi_theta.
            ro = self._collect()
            # 2-3. Value targets y_t by the chosen estimator; advantages A_t.
            adv, targets = advantages_and_targets(
                cfg.value_target, ro.rewards, ro.values, ro.next_values, ro.terminated,
                ro.truncated, cfg.gamma, cfg.lam, cfg.n_step)
            # 4. Policy-gradient (+ value regression, - entropy) loss and its gradient.
            _, grad, stats = a2c_loss_and_grad(self.net, self.params, ro, adv, targets, cfg)
            # 5. theta <- theta - lr * Adam(clipped grad).
            grad, stats["grad_norm"] = clip_grad_norm(grad, cfg.max_grad_norm)
            self.params, self.opt_states["adam"] = adam.step(self.params, grad,
                                                             self.opt_states["adam"])
            if not self._end_iteration(callback, lr=adam.lr, **stats,
                                       explained_variance=explained_variance(ro.values, targets)):
                break
        return self
