"""Proximal Policy Optimization: clipped surrogate or adaptive KL penalty, with GAE.

    Input: policy/value parameters theta_0, clip eps (or KL penalty beta_0 and target delta)
    for k = 0, 1, 2, ...:
      1. Collect T steps from each of N envs with pi_k = pi(theta_k)       -> rollout [T, N]
      2. Estimate advantages A_t by GAE(gamma, lam); value targets R_t = A_t + V(s_t)
      3. theta_{k+1}: K epochs of shuffled minibatch Adam steps on
             L = L^CLIP (or L^KL with beta_k) + c_v (V(s_t) - R_t)^2 - c_e H[pi(.|s_t)]
         advantages normalized per minibatch, global-norm gradient clipping,
         lr and eps annealed linearly to 0 over the ``learn`` call (optional),
         optional early stop: before each minibatch step, if its KL estimate
         k3 = mean((r - 1) - log r) > 1.5 * target_kl, the remaining epochs are skipped
      4. KL variant: beta_{k+1} = 2 beta_k if KL(pi_k || pi_{k+1}) >= 1.5 delta,
                                  beta_k / 2 if <= delta / 1.5   (KL: k3 on the whole batch)

Both KL estimates of pi_k -> pi_{k+1} are reported after step 3 on the whole batch:
``approx_kl_k1 = mean(logp_old - logp)`` and ``approx_kl_k3 = mean((r - 1) - log r)``.
Value clipping is available (``vf_clip``) but off by default (see objectives/value.py).

Lecture: Stanford CS234 "Lecture 6: Policy Gradient II", "Algorithm PPO with Adaptive KL
Penalty" and
"Algorithm PPO with Clipped Objective"; Stanford CS224R lectures, "PPO clipping", "GAE".
Paper: Schulman et al. (2017), arXiv:1707.06347. Defaults: the paper's / Stable-Baselines3's
general settings (gamma 0.99, lambda 0.95, 10 epochs of 64-sample minibatches over a 2048-step
batch, here 8 envs x 256 steps, lr 3e-4 and clip 0.2 held constant); tuned settings per
environment (e.g. RL-Zoo's CartPole-v1 row) are in minirl.presets.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from minirl.algos.base import ActorCriticNet, OnPolicyAgent, check_config
from minirl.nn import Adam, LinearSchedule, clip_grad_norm
from minirl.objectives.ppo import (adaptive_kl_beta, approx_kl, clip_fraction,
                                   kl_penalty_loss, ppo_clip_loss)
from minirl.objectives.value import advantages_and_targets, explained_variance, value_loss
from minirl.rollout import Rollout, flatten

__all__ = ["PPOConfig", "PPO", "Batch", "make_batch", "minibatches", "normalize_advantages",
           "ppo_loss_and_grad", "ppo_update"]


@dataclass(frozen=True)
class PPOConfig:
    num_envs: int = 8                  # N parallel envs
    num_steps: int = 256               # T steps per env per iteration (batch N*T = 2048)
    gamma: float = 0.99                # discount
    lam: float = 0.95                  # GAE lambda
    loss: str = "clip"                 # "clip" (L^CLIP) or "kl" (adaptive KL penalty)
    clip_eps: float = 0.2              # clip range eps of L^CLIP
    anneal_clip: bool = False          # anneal eps linearly to 0 over a learn() call
    kl_target: float = 0.01            # delta of the adaptive KL rule ("kl" loss)
    kl_beta: float = 1.0               # initial penalty beta_0 ("kl" loss)
    num_epochs: int = 10               # K passes over each batch
    minibatch_size: int = 64           # samples per Adam step
    lr: float = 3e-4                   # Adam learning rate
    adam_eps: float = 1e-5             # Adam epsilon (SB3's PPO value)
    anneal_lr: bool = False            # anneal lr linearly to 0 over a learn() call
    max_grad_norm: float = 0.5         # global-norm gradient clipping
    vf_coef: float = 0.5               # c_v, weight of the value loss
    vf_clip: float = 0.0               # PPO2-style value clipping range; 0 = off
    ent_coef: float = 0.0              # c_e, entropy bonus weight
    target_kl: float = 0.0             # early-stop threshold on k3 (x1.5); 0 = off
    norm_adv: bool = True              # normalize advantages per minibatch (population std,
                                       # ddof=0; SB3/CleanRL: ddof=1, sqrt(B/(B-1)) smaller)
    hidden_sizes: tuple = (64, 64)     # hidden layer widths of actor and critic
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
        check_config(self, lam=(0.0, 1.0), clip_eps=(1e-6, 0.999), kl_target=(1e-9, None),
                     kl_beta=(1e-9, None), num_epochs=(1, None), minibatch_size=(1, None),
                     lr=(0.0, None), adam_eps=(1e-12, None), max_grad_norm=(1e-9, None), vf_coef=(0.0, None),
                     vf_clip=(0.0, None), ent_coef=(0.0, None), target_kl=(0.0, None),
                     sde_sample_freq=(-1, None))
        if self.action_bounds not in ("clip", "squash"):
            raise ValueError(f"action_bounds must be 'clip' or 'squash', got {self.action_bounds!r}")
        if self.loss not in ("clip", "kl"):
            raise ValueError(f"loss must be 'clip' or 'kl', got {self.loss!r}")


class Batch(NamedTuple):
    """A flat batch ``[B, ...]`` for the PPO update (rows t*N + i of the rollout)."""

    obs: np.ndarray
    actions: np.ndarray
    logp: np.ndarray        # log pi_k(a|s), fixed during the update
    values: np.ndarray      # V_k(s) at collection time (value clipping, explained variance)
    adv: np.ndarray
    returns: np.ndarray     # value targets R_t = A_t + V(s_t)


def make_batch(ro: Rollout, adv: np.ndarray, returns: np.ndarray) -> Batch:
    """Flatten a rollout ``[T, N]`` and its advantages/targets into a ``Batch``."""
    return Batch(*(flatten(x) for x in (ro.obs, ro.actions, ro.logp, ro.values, adv, returns)))


def minibatches(rng: np.random.Generator, batch_size: int, minibatch_size: int):
    """Index arrays of one shuffled pass over ``batch_size`` rows (the last one may be short)."""
    perm = rng.permutation(batch_size)
    return [perm[i:i + minibatch_size] for i in range(0, batch_size, minibatch_size)]


def normalize_advantages(adv: np.ndarray) -> np.ndarray:
    """(A - mean A) / (std A + 1e-8); a single advantage is returned unchanged (std = 0).

    std is the population standard deviation (ddof=0): sqrt((1/B) sum_i (A_i - mean A)^2)
    over the B advantages given (a minibatch). Stable-Baselines3's and CleanRL's PPO divide
    by torch's ``std()``, the sample std (ddof=1, 1/(B-1) inside the root), so minirl's
    normalized advantages are sqrt(B/(B-1)) times theirs: +0.8% at B = 64, +1.6% at B = 32,
    +15% at B = 4 (the same step direction, a slightly larger policy-loss scale). Kept on
    purpose: every committed PPO benchmark row was produced with it.
    """
    if adv.size < 2:
        return adv
    centered = adv - _mean(adv)
    with np.errstate(over="ignore"):
        std = np.sqrt(_mean(centered * centered))  # = adv.std(), without a second mean
    if not np.isfinite(std):  # float32 squares overflow past |A| ~ 1e19: redo in float64
        c64 = adv.astype(np.float64) - adv.astype(np.float64).mean()
        return (c64 / (np.sqrt(np.mean(c64 * c64)) + 1e-8)).astype(adv.dtype)
    return centered / (std + 1e-8)


def _mean(x: np.ndarray):
    """``np.mean(x)`` of a float32/float64 array, bit for bit: NumPy's ``_mean`` steps (the sum,
    divided by the count as an ``intp``, rounded to x's dtype) without its ~2 us of generality
    (per minibatch, twice, in ``normalize_advantages``)."""
    if type(x) is not np.ndarray or x.dtype.kind != "f" or x.dtype.itemsize < 4:
        return np.mean(x)
    s = np.add.reduce(x, axis=None)
    return s.dtype.type(s / np.intp(x.size))


def ppo_loss_and_grad(net: ActorCriticNet, params: np.ndarray, mb: Batch, cfg: PPOConfig,
                      clip_eps: float, beta: float):
    """L = L_pi + c_v L_V - c_e mean(H) on one minibatch, and dL/dtheta ``[n_params]``.

    L_pi is ``ppo_clip_loss`` (cfg.loss "clip") or ``kl_penalty_loss`` with ``beta``.
    Returns ``(loss, grad, stats)``; stats holds the parts of L and, when early stopping
    is on (cfg.target_kl > 0), the minibatch's KL estimate k3 before the step.
    """
    dist, values, cache = net.forward(params, mb.obs)
    logp = dist.log_prob(mb.actions)
    adv = normalize_advantages(mb.adv) if cfg.norm_adv else mb.adv
    if cfg.loss == "clip":
        pi_loss, dlogp = ppo_clip_loss(logp, mb.logp, adv, clip_eps)
    else:
        pi_loss, dlogp = kl_penalty_loss(logp, mb.logp, adv, beta)
    v_loss, dvalues = value_loss(values, mb.returns, mb.values, cfg.vf_clip)
    ddist = dist.log_prob_backward(mb.actions, dlogp)
    loss, stats = pi_loss + cfg.vf_coef * v_loss, {"policy_loss": pi_loss, "value_loss": v_loss}
    if cfg.ent_coef > 0.0:  # d(-c_e mean H)/dH = -c_e / B
        entropy = dist.entropy()
        dent = dist.entropy_backward(np.full(entropy.shape, -cfg.ent_coef / entropy.size))
        ddist = ddist + dent if net.discrete else tuple(x + y for x, y in zip(ddist, dent))
        loss -= cfg.ent_coef * float(entropy.mean())
    grad = net.backward(params, cache, ddist, cfg.vf_coef * dvalues)
    if cfg.target_kl > 0.0:  # only early stopping needs the minibatch's KL
        stats["kl_k3"] = approx_kl(logp, mb.logp)[1]
    return loss, grad, stats


def ppo_update(net: ActorCriticNet, params: np.ndarray, opt_state, batch: Batch,
               rng: np.random.Generator, cfg: PPOConfig, lr: float, clip_eps: float,
               beta: float):
    """Step 3: K epochs of shuffled minibatch Adam steps. Returns (params, opt_state, stats).

    Early stopping (cfg.target_kl > 0) is checked on every minibatch *before* its step.
    stats: loss parts averaged over the steps taken; on the whole batch after the update,
    both KL estimates of pi_k -> pi_{k+1} (``approx_kl_k1``, ``approx_kl_k3``), the
    fraction of ratios outside [1 - eps, 1 + eps] and the entropy; the number of steps.
    """
    adam = Adam(lr=lr, eps=cfg.adam_eps)
    sums, n_steps = {}, 0
    for _ in range(cfg.num_epochs):
        for idx in minibatches(rng, len(batch.adv), cfg.minibatch_size):
            mb = Batch(*(x[idx] for x in batch))
            _, grad, stats = ppo_loss_and_grad(net, params, mb, cfg, clip_eps, beta)
            if cfg.target_kl > 0.0 and stats["kl_k3"] > 1.5 * cfg.target_kl:
                break
            grad, stats["grad_norm"] = clip_grad_norm(grad, cfg.max_grad_norm)
            params, opt_state = adam.step(params, grad, opt_state)
            for k, v in stats.items():
                sums[k] = sums.get(k, 0.0) + v
            n_steps += 1
        else:
            continue
        break  # early stop: leave the epoch loop too
    out = {k: v / max(n_steps, 1) for k, v in sums.items()}
    # Diagnostics of pi_k -> pi_{k+1} on the whole batch, once per iteration.
    dist, _, _ = net.forward(params, batch.obs)
    logp = dist.log_prob(batch.actions)
    out["approx_kl_k1"], out["approx_kl_k3"] = approx_kl(logp, batch.logp)
    out["clip_fraction"] = clip_fraction(logp, batch.logp, clip_eps)
    out["entropy"] = float(dist.entropy().mean())
    out["updates"] = n_steps
    return params, opt_state, out


class PPO(OnPolicyAgent):
    """PPO agent: ``PPO(env, PPOConfig(...), seed).learn(total_steps)``."""

    name = "ppo"
    Config = PPOConfig
    log_fields = ("policy_loss", "value_loss", "entropy", "approx_kl_k1", "approx_kl_k3",
                  "clip_fraction", "explained_variance", "grad_norm", "lr", "clip_eps",
                  "kl_beta", "updates")

    def __init__(self, env, config: PPOConfig | None = None, seed: int = 0, **kwargs):
        super().__init__(env, config, seed, **kwargs)   # kwargs: env_kwargs
        self.opt_states["adam"] = Adam(lr=self.config.lr).init(self.params)
        self.extra_state["kl_beta"] = self.config.kl_beta

    def learn(self, total_steps: int, callback=None) -> "PPO":
        """Train for ``total_steps`` env steps (rounded up to whole iterations of N*T).

        ``callback(agent, metrics)`` runs after every iteration; returning False stops.
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
            frac_left = anneal(done_iters + k)
            lr = cfg.lr * (frac_left if cfg.anneal_lr else 1.0)
            clip_eps = cfg.clip_eps * (frac_left if cfg.anneal_clip else 1.0)
            beta = self.extra_state["kl_beta"]
            # 1. Collect T steps from each of N envs with pi_k.
            ro = self._collect()
            # 2. Advantages by GAE(gamma, lam); value targets R_t = A_t + V(s_t).
            adv, returns = advantages_and_targets("gae", ro.rewards, ro.values, ro.next_values,
                                                  ro.terminated, ro.truncated, cfg.gamma, cfg.lam)
            batch = make_batch(ro, adv, returns)
            # 3. K epochs of shuffled minibatch Adam steps on L^CLIP (or L^KL) + value - entropy.
            self.params, self.opt_states["adam"], stats = ppo_update(
                self.net, self.params, self.opt_states["adam"], batch, self.rng, cfg,
                lr, max(clip_eps, 1e-6), beta)
            # 4. Adaptive KL penalty: double beta above 1.5 delta, halve below delta / 1.5.
            if cfg.loss == "kl":
                self.extra_state["kl_beta"] = adaptive_kl_beta(beta, stats["approx_kl_k3"],
                                                               cfg.kl_target)
            if not self._end_iteration(
                    callback, lr=lr, clip_eps=clip_eps, kl_beta=beta, **stats,
                    explained_variance=explained_variance(batch.values, batch.returns)):
                break
        return self
