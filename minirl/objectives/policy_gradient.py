"""Score-function (REINFORCE) policy-gradient estimators, in two layers.

Every estimator in Lectures 000/002/004 has the form

    grad J(theta) ~= (1/N) sum_{i=1}^N sum_t w_{i,t} grad_theta log pi_theta(a_{i,t}|s_{i,t})

and differs only in the per-step *weight* ``w_{i,t}`` multiplying the score. So:

(a) **weight functions** take time-major ``[T, N]`` rollout arrays (``rewards, terminated,
    truncated, logp, logp_old, values, adv, gamma``) and return ``w [T, N]``;
(b) **assembly**: ``policy_gradient(scores, w)`` forms the sum above from per-step score
    vectors ``scores [T, N, P]`` (used with the exact tabular scores of ``minirl.mdp``), and
    ``policy_gradient_loss(logp, w)`` returns the lecture's pseudo-loss
    ``L = -(1/N) sum w * logp`` with ``dlogp = -w/N`` -- what an agent backpropagates through
    ``dist.log_prob_backward(a, dlogp)`` and its network. Both give the same gradient:
    ``-sum_{t,n} dlogp[t, n] * scores[t, n] == policy_gradient(scores, w)``.

| # | weight function                | w_t (k = step index within the episode)                     |
|---|--------------------------------|-------------------------------------------------------------|
| 1 | ``full_return_weights``        | R(tau) = sum_{t'} gamma^{t'} r_{t'}                          |
| 2 | ``reward_to_go_weights``       | gamma^k G_t,  G_t = sum_{t'>=t} gamma^{t'-t} r_{t'}          |
| 3 | ``constant_baseline_weights``  | gamma^k (G_t - b), b = mean episode return (or given);       |
|   |                                | ``full_return=True``: R(tau) - b                             |
| 4 | ``variance_optimal_baseline``  | b_j = E[g_j^2 R]/E[g_j^2], used as ``coordinate_baseline``   |
| 5 | ``state_baseline_weights``     | gamma^k (G_t - b(s_t)); ``full_return=True``: R(tau) - b(s_t) |
| 6 | ``advantage_weights``          | gamma^k A_t                                                  |
| 7 | ``trajectory_is_weights``      | rho_{0:end} gamma^k (G_t - b(s_t))                           |
| 8 | ``per_decision_is_weights``    | sum_{t'>=t} gamma^{t'} rho_{0:t'} r_{t'} - gamma^k rho_{0:t} b(s_t) |
| 9 | ``per_step_is_weights``        | rho_t gamma^k (G_t - b(s_t))     ("common final form")       |

(10 and 11, the PPO surrogates, are in ``minirl.objectives.ppo`` and return ``dlogp``.)

**Discounting.** ``J = E[sum_t gamma^t r_t]``. The unbiased discounted estimators carry the
factor ``gamma^k`` (``k`` = steps since the episode started; Lecture 004's
``g = E[sum_t gamma^t grad log pi(a_t|s_t) A(s_t, a_t)]``). ``step_discount=False`` drops it,
as almost every deep-RL agent does: the result is then *biased* for ``gamma < 1`` (it is the
gradient of an objective that weights late states as much as early ones; Thomas 2014,
"Bias in natural actor-critic algorithms"). With ``gamma = 1`` both agree. ``k`` counts from
the first row of the rollout unless the column starts a new episode there; for rollouts that
begin mid-episode pass ``start_steps [N]`` (the episode step of row 0).

**Normalization.** ``policy_gradient`` divides by ``num_episodes`` (default ``N``: one
trajectory per column, as in the lectures' ``1/N sum_i``). An agent whose rollout ``[T, N]``
holds many episodes and that wants the common "mean over steps" loss passes
``num_episodes = T*N``; this only rescales the step size.

All weight functions return the same shape as ``rewards`` (``[T, N]`` or ``[T]``), float64
unless every float input is float32. Reward-to-go and importance ratios come from
``kernels.returns.discounted_returns`` and ``kernels.importance.importance_weights``; nothing
here re-implements them.
"""
from __future__ import annotations

import numpy as np

from kernels._validate import as_bool, as_float, result_dtype, same_shape, unit_interval
from kernels.importance import importance_weights
from kernels.returns import discounted_returns

__all__ = [
    "episode_steps",
    "episode_ids",
    "full_return_weights",
    "reward_to_go_weights",
    "constant_baseline_weights",
    "variance_optimal_baseline",
    "state_baseline_weights",
    "advantage_weights",
    "trajectory_is_weights",
    "per_decision_is_weights",
    "per_step_is_weights",
    "policy_gradient",
    "per_episode_gradients",
    "policy_gradient_loss",
]


# ---------------------------------------------------------------------------------------------
# Episode bookkeeping on [T, N] rollouts
# ---------------------------------------------------------------------------------------------


def _flags(terminated, truncated, shape):
    terminated = as_bool(terminated, "terminated")
    truncated = as_bool(truncated, "truncated")
    if terminated.shape != tuple(shape):
        raise ValueError(f"terminated must have shape {tuple(shape)}, got {terminated.shape}")
    same_shape("terminated", terminated, truncated=truncated)
    return terminated, truncated


def _as2d(x):
    return x[:, None] if x.ndim == 1 else x


def _episode_starts(terminated, truncated) -> np.ndarray:
    """``[T, N]`` bool: step t begins an episode (t = 0, or step t-1 ended one)."""
    done = _as2d(terminated | truncated)
    starts = np.empty(done.shape, dtype=bool)
    starts[0] = True
    starts[1:] = done[:-1]
    return starts


def _start_index(terminated, truncated) -> np.ndarray:
    """``[T, N]`` int: the row where step t's episode starts inside the rollout."""
    starts = _episode_starts(terminated, truncated)
    rows = np.arange(starts.shape[0])[:, None]
    return np.maximum.accumulate(np.where(starts, rows, 0), axis=0)


def episode_steps(terminated, truncated, start_steps=None) -> np.ndarray:
    """Step index ``k`` of every step within its episode, ``[T, N]`` int (``[T]`` for 1-D input).

    k_t = 0 at an episode's first step (after a terminated/truncated step), k_t = k_{t-1} + 1
    otherwise, and k_0 = ``start_steps[n]`` (default 0): row 0 continues whatever episode was
    running when the rollout began, so ``start_steps`` shifts only that first segment.

    Shapes: ``terminated, truncated [T, N]`` (or ``[T]``), ``start_steps [N]``.
    """
    terminated = as_bool(terminated, "terminated")
    truncated = as_bool(truncated, "truncated")
    same_shape("terminated", terminated, truncated=truncated)
    start = _start_index(terminated, truncated)
    rows = np.arange(start.shape[0])[:, None]
    k = rows - start
    if start_steps is not None:
        s0 = np.asarray(start_steps, dtype=np.int64).reshape(-1)
        if s0.shape != (k.shape[1],):
            raise ValueError(f"start_steps must have shape ({k.shape[1]},), got {s0.shape}")
        k = k + np.where(start == 0, s0[None, :], 0)
    return k.reshape(terminated.shape)


def episode_ids(terminated, truncated):
    """Number every episode segment of the rollout: ``(ids [T, N] int, num_episodes)``.

    Episodes are numbered column by column (all of column 0's first), so with one episode per
    column ``ids[:, n] == n``. A segment cut by the end of the rollout counts as an episode.
    """
    terminated = as_bool(terminated, "terminated")
    truncated = as_bool(truncated, "truncated")
    same_shape("terminated", terminated, truncated=truncated)
    starts = _episode_starts(terminated, truncated)
    per_col = np.cumsum(starts, axis=0)  # 1-based count within each column
    offsets = np.concatenate([[0], np.cumsum(per_col[-1])[:-1]])
    ids = per_col - 1 + offsets[None, :]
    return ids.reshape(terminated.shape), int(per_col[-1].sum())


def _discount_factor(gamma, terminated, truncated, start_steps, step_discount, dtype):
    if not step_discount or gamma == 1.0:
        return np.ones(terminated.shape, dtype=dtype)
    return (gamma ** episode_steps(terminated, truncated, start_steps)).astype(dtype)


def _returns_and_flags(rewards, terminated, truncated, gamma, bootstrap_values, *extra):
    rewards = as_float(rewards, "rewards")
    floats = [rewards] + [as_float(e, name) for name, e in extra if e is not None]
    dtype = result_dtype(*floats)
    if rewards.ndim not in (1, 2):
        raise ValueError(f"rewards must have shape [T] or [T, N], got {rewards.shape}")
    terminated, truncated = _flags(terminated, truncated, rewards.shape)
    gamma = unit_interval(gamma, "gamma")
    G = discounted_returns(rewards, terminated, truncated, gamma, bootstrap_values)
    return rewards, terminated, truncated, gamma, G.astype(dtype, copy=False), dtype


def _optional_values(values, name, shape, dtype):
    if values is None:
        return np.zeros(shape, dtype=dtype)
    values = as_float(values, name, dtype=dtype)
    if values.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {values.shape}")
    return values


def _episode_returns(G, terminated, truncated):
    """Broadcast each episode's full discounted return ``G_{start}`` to all its steps."""
    G2 = _as2d(G)
    start = _start_index(terminated, truncated)
    return np.take_along_axis(G2, start, axis=0).reshape(G.shape)


# ---------------------------------------------------------------------------------------------
# (a) Weight functions
# ---------------------------------------------------------------------------------------------


def full_return_weights(rewards, terminated, truncated, gamma: float = 1.0,
                        bootstrap_values=None) -> np.ndarray:
    """REINFORCE with the full return: every step of an episode is weighted by R(tau).

    grad J ~= (1/N) sum_i ( sum_t grad log pi(a_{i,t}|s_{i,t}) ) R(tau_i),
    R(tau) = sum_{t=0}^{T-1} gamma^t r(s_t, a_t)    (gamma^t counted from the episode start)

    Lecture: 000 "Can we get the gradient of the RL objective?" / "Estimating the gradient"
    (REINFORCE); 002 "Direct policy differentiation". Paper: Williams (1992).
    Unbiased: yes, for complete episodes sampled from pi_theta (an episode cut by the end of
    the rollout contributes only its observed part, plus ``bootstrap_values`` if given).

    Shapes: ``rewards, terminated, truncated [T, N]`` (or ``[T]``); returns ``w [T, N]``.
    """
    _, terminated, truncated, _, G, _ = _returns_and_flags(
        rewards, terminated, truncated, gamma, bootstrap_values)
    return _episode_returns(G, terminated, truncated)


def reward_to_go_weights(rewards, terminated, truncated, gamma: float = 1.0, *,
                         step_discount: bool = True, start_steps=None,
                         bootstrap_values=None) -> np.ndarray:
    """Reward-to-go (causality): the score at t is weighted by future rewards only.

    grad J ~= (1/N) sum_i sum_t grad log pi(a_{i,t}|s_{i,t}) gamma^k G_{i,t},
    G_t = sum_{t'=t}^{end} gamma^{t'-t} r_{t'}     (k = step index within the episode)

    Lecture: 000 "Improving the gradient - Using causality" (sum of future rewards);
    002 "reward to go" Q-hat_{i,t}. Paper: Williams (1992); Sutton et al. (2000).
    Unbiased: yes with ``step_discount=True`` (or gamma = 1), for complete on-policy episodes:
    E[grad log pi(a_t|s_t) r_{t'}] = 0 for t' < t. ``step_discount=False``: biased if gamma < 1.

    Shapes: ``rewards, terminated, truncated [T, N]``; ``start_steps [N]``; returns ``[T, N]``.
    """
    _, terminated, truncated, gamma, G, dtype = _returns_and_flags(
        rewards, terminated, truncated, gamma, bootstrap_values)
    return _discount_factor(gamma, terminated, truncated, start_steps, step_discount, dtype) * G


def constant_baseline_weights(rewards, terminated, truncated, gamma: float = 1.0,
                              baseline: float | None = None, *, leave_one_out: bool = False,
                              step_discount: bool = True, start_steps=None,
                              full_return: bool = False) -> np.ndarray:
    """Reward-to-go (or the full return) minus a constant baseline ``b``.

    grad J ~= (1/N) sum_i sum_t grad log pi(a_{i,t}|s_{i,t}) gamma^k (G_{i,t} - b),
    b = (1/N) sum_i R(tau_i)   (the batch mean return) unless ``baseline`` is given.

    ``full_return=True`` is lecture 000's first form, grad log p(tau) (R(tau) - b): every step
    of episode i is weighted by R(tau_i) - b (no gamma^k factor: R(tau) is already discounted
    from the episode start, as in ``full_return_weights``).

    Lecture: 000 "Improving the gradient - Introducing baselines" and "How to implement policy
    gradients?"; 002 "Reducing variance by subtracting baseline".
    Unbiased: yes for any *fixed* ``baseline`` (E[grad log p(tau) b] = 0). The batch mean is
    computed from the same E episodes, each of which then correlates with its own baseline:
    the expectation becomes grad J - (1/E) E[sum_t gamma^k grad log pi(a_t|s_t) R(tau)], i.e.
    (1 - 1/E) grad J for gamma = 1. ``leave_one_out=True`` uses, for episode i, the mean
    return of the *other* episodes and is unbiased again (needs E >= 2).

    Shapes: ``rewards, terminated, truncated [T, N]``; returns ``[T, N]``.
    """
    _, terminated, truncated, gamma, G, dtype = _returns_and_flags(
        rewards, terminated, truncated, gamma, None)
    R = _episode_returns(G, terminated, truncated)
    if baseline is None:
        starts = _episode_starts(terminated, truncated).reshape(R.shape)
        ep_returns = R[starts]
        n = ep_returns.size
        if leave_one_out:
            if n < 2:
                raise ValueError("leave_one_out needs at least two episodes")
            b = (ep_returns.sum() - R) / (n - 1)
        else:
            b = ep_returns.mean()
    else:
        if leave_one_out:
            raise ValueError("leave_one_out applies to the batch-mean baseline, not a given one")
        b = float(baseline)
    if full_return:
        return (R - b).astype(dtype, copy=False)
    return _discount_factor(gamma, terminated, truncated, start_steps, step_discount, dtype) * (G - b)


def variance_optimal_baseline(scores, rewards, terminated, truncated, gamma: float = 1.0,
                              sample_weight=None) -> np.ndarray:
    """Per-coordinate variance-optimal constant baseline for the full-return estimator.

    b_j = E[ g_j(tau)^2 R(tau) ] / E[ g_j(tau)^2 ],   g(tau) = sum_t grad log pi(a_t|s_t)

    (the minimizer of Var[g_j (R - b_j)] over constants b_j). Use it as
    ``policy_gradient(scores, full_return_weights(...), coordinate_baseline=b)``, which forms
    ``(1/N) sum_i g_j(tau_i) (R(tau_i) - b_j)``.

    Lecture: 002 "Analyzing variance" (dVar/db = 0  =>  b = E[g^2 r]/E[g^2]).
    Paper: Greensmith, Bartlett & Baxter (2004); Peters & Schaal (2008).
    Unbiased: the estimator is unbiased when ``b`` is a constant independent of the batch it
    is used on (e.g. the exact expectation, computed with ``sample_weight`` = trajectory
    probabilities, or an estimate from another batch). Estimated from the same batch it is
    consistent but slightly biased, like the batch-mean baseline.

    Shapes: ``scores [T, N, P]``; ``rewards, terminated, truncated [T, N]``;
    ``sample_weight [E]`` per episode (``E`` as numbered by ``episode_ids``) or None (equal).
    Returns ``b [P]`` (0 where ``E[g_j^2] = 0``).
    """
    scores = as_float(scores, "scores")
    _, terminated, truncated, _, G, _ = _returns_and_flags(
        rewards, terminated, truncated, gamma, None)
    g = per_episode_gradients(scores, np.ones(G.shape), terminated, truncated)  # [E, P]
    ids, E = episode_ids(terminated, truncated)
    starts = _episode_starts(terminated, truncated).reshape(G.shape)
    R = np.zeros(E)
    R[ids[starts]] = G[starts]
    p = np.full(E, 1.0 / E) if sample_weight is None else as_float(sample_weight, "sample_weight")
    if p.shape != (E,):
        raise ValueError(f"sample_weight must have shape ({E},), got {p.shape}")
    num = np.einsum("e,ep,e->p", p, g**2, R)
    den = np.einsum("e,ep->p", p, g**2)
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def state_baseline_weights(rewards, terminated, truncated, values, gamma: float = 1.0, *,
                           step_discount: bool = True, start_steps=None,
                           bootstrap_values=None, full_return: bool = False) -> np.ndarray:
    """Reward-to-go (or the full return) minus a state-dependent baseline ``b(s_t) = values[t]``.

    grad J ~= (1/N) sum_i sum_t grad log pi(a_{i,t}|s_{i,t}) gamma^k (G_{i,t} - b(s_{i,t}))

    ``full_return=True`` weights step t by R(tau_i) - b(s_{i,t}) instead (no gamma^k factor):
    still unbiased, since the baseline term has zero expectation whatever multiplies it, but
    with the variance of the full return that causality removes.

    Lecture: 004 "Baseline b(s)" (E[grad log pi(a_t|s_t) b(s_t)] = 0) and "vanilla policy
    gradient" with a refit value baseline. Paper: Williams (1992); Greensmith et al. (2004).
    Unbiased: yes for any b that depends on s_t (and t) but not on a_t or later steps
    (``step_discount=True`` or gamma = 1, complete on-policy episodes).

    Shapes: ``rewards, terminated, truncated, values [T, N]``; returns ``[T, N]``.
    """
    _, terminated, truncated, gamma, G, dtype = _returns_and_flags(
        rewards, terminated, truncated, gamma, bootstrap_values, ("values", values))
    values = _optional_values(values, "values", G.shape, dtype)
    if full_return:
        return _episode_returns(G, terminated, truncated) - values
    return _discount_factor(gamma, terminated, truncated, start_steps, step_discount, dtype) * (G - values)


def advantage_weights(adv, terminated, truncated, gamma: float = 1.0, *,
                      step_discount: bool = True, start_steps=None) -> np.ndarray:
    """Advantage-weighted policy gradient: the score at t is weighted by an advantage ``A_t``.

    grad J = E_{tau ~ pi}[ sum_t gamma^t grad log pi(a_t|s_t) A^pi(s_t, a_t) ]

    Lecture: 004 "Actor-critic" and the importance-sampling slide
    ``g = E[sum_t gamma^t grad log pi(a_t|s_t) A^theta(s_t, a_t)]``; 001 "Batch actor-critic".
    Paper: Sutton, McAllester, Singh & Mansour (2000), policy gradient theorem.
    Unbiased: yes when ``adv`` is the true A^pi_t(s_t, a_t) (or Q^pi_t, or Q^pi_t - b(s_t)),
    with ``step_discount=True`` or gamma = 1; estimated advantages (GAE, n-step) carry their
    own bias.

    Shapes: ``adv, terminated, truncated [T, N]``; returns ``[T, N]``.
    """
    adv = as_float(adv, "adv")
    terminated, truncated = _flags(terminated, truncated, adv.shape)
    gamma = unit_interval(gamma, "gamma")
    return _discount_factor(gamma, terminated, truncated, start_steps, step_discount, adv.dtype) * adv


def _ratios(logp, logp_old, terminated, truncated, mode, dtype):
    logp = as_float(logp, "logp")
    logp_old = as_float(logp_old, "logp_old")
    same_shape("logp", logp, logp_old=logp_old)
    rho, _ = importance_weights(logp, logp_old, terminated, truncated, mode)
    return np.asarray(rho).astype(dtype, copy=False)


def trajectory_is_weights(rewards, terminated, truncated, logp, logp_old, gamma: float = 1.0,
                          values=None, *, step_discount: bool = True,
                          start_steps=None) -> np.ndarray:
    """Off-policy reward-to-go with the trajectory-product importance weight.

    grad J(theta') ~= (1/N) sum_i [ prod_{t=0}^{end} pi_theta'(a_t|s_t)/pi_b(a_t|s_t) ]
                       sum_t grad log pi_theta'(a_{i,t}|s_{i,t}) gamma^k (G_{i,t} - b(s_{i,t}))

    with episodes sampled from the behaviour policy pi_b (``logp_old = log pi_b(a_t|s_t)``,
    ``logp = log pi_theta'(a_t|s_t)``).

    Lecture: 000 "Off-policy version of policy gradient? Importance sampling" (the product
    p_theta'(tau)/p_theta(tau) = prod_t pi_theta'/pi_theta); 004 "Importance sampling".
    Paper: Precup, Sutton & Singh (2000); Levine & Koltun (2013), guided policy search.
    Unbiased: yes, whenever pi_b has full support where pi_theta' is positive (complete
    episodes; ``step_discount=True`` or gamma = 1); its variance grows exponentially in T.

    Shapes: ``rewards, terminated, truncated, logp, logp_old, values [T, N]``; returns ``[T, N]``.
    """
    _, terminated, truncated, gamma, G, dtype = _returns_and_flags(
        rewards, terminated, truncated, gamma, None, ("values", values))
    values = _optional_values(values, "values", G.shape, dtype)
    rho = _ratios(logp, logp_old, terminated, truncated, "trajectory", dtype)
    disc = _discount_factor(gamma, terminated, truncated, start_steps, step_discount, dtype)
    return rho * disc * (G - values)


def per_decision_is_weights(rewards, terminated, truncated, logp, logp_old, gamma: float = 1.0,
                            values=None, *, step_discount: bool = True,
                            start_steps=None) -> np.ndarray:
    """Off-policy policy gradient with per-decision importance weights.

    w_t = sum_{t'=t}^{end} gamma^{k_t'} rho_{0:t'} r_{t'}  -  gamma^{k_t} rho_{0:t} b(s_t),
    rho_{0:t} = prod_{u=0}^{t} pi_theta'(a_u|s_u) / pi_b(a_u|s_u)

    i.e. ``gamma^k * (reward-to-go of the weighted rewards rho_{0:t'} r_{t'} - rho_{0:t} b)``:
    each reward is corrected only for the decisions taken before it, because
    E_b[rho_{0:t'} grad log pi(a_t|s_t) r_{t'}] = E_pi[grad log pi(a_t|s_t) r_{t'}] for t <= t'.

    Lecture: 000 "Off-policy version of policy gradient?" (trajectory weights -> per time
    step); 004 "Importance sampling for policy gradients" (P(tau_t|theta)/P(tau_t|theta') =
    prod_{t'<=t} ratio). Paper: Precup, Sutton & Singh (2000), per-decision importance sampling.
    Unbiased: yes, whenever pi_b has full support (complete episodes, ``step_discount=True``
    or gamma = 1); lower variance than the trajectory product.

    Shapes: ``rewards, terminated, truncated, logp, logp_old, values [T, N]``; returns ``[T, N]``.
    """
    rewards, terminated, truncated, gamma, _, dtype = _returns_and_flags(
        rewards, terminated, truncated, gamma, None, ("values", values))
    values = _optional_values(values, "values", rewards.shape, dtype)
    rho = _ratios(logp, logp_old, terminated, truncated, "per_decision", dtype)
    G_rho = discounted_returns(rho * rewards, terminated, truncated, gamma).astype(dtype, copy=False)
    disc = _discount_factor(gamma, terminated, truncated, start_steps, step_discount, dtype)
    return disc * (G_rho - rho * values)


def per_step_is_weights(rewards, terminated, truncated, logp, logp_old, gamma: float = 1.0,
                        values=None, *, step_discount: bool = True,
                        start_steps=None) -> np.ndarray:
    """The "common final form": importance ratio at step t only, state ratio taken as 1.

    grad J(theta') ~= (1/N) sum_i sum_t pi_theta'(a_t|s_t)/pi_b(a_t|s_t)
                         grad log pi_theta'(a_{i,t}|s_{i,t}) gamma^k (G_{i,t} - b(s_{i,t}))

    Lecture: 000 "Off-policy policy gradient - Common final form" (the state ratio
    pi_theta'(s_t)/pi_theta(s_t) "often approximated as 1"); 004 surrogate L_pi(pi').
    Paper: Degris, White & Sutton (2012), "Off-Policy Actor-Critic"; Schulman et al. (2015).
    Unbiased: **no** in general. Its expectation is

        sum_t gamma^t E_{s_t ~ d^b_t} sum_a pi_theta'(a|s_t) grad log pi_theta'(a|s_t) Q^b_t(s_t, a)
        = grad_theta' L_b(pi_theta'),   L_b(pi') = sum_t gamma^t E_{s~d^b_t, a~pi'}[A^b_t(s, a)],

    the gradient of the surrogate of Lecture 004 built on the behaviour policy (states and
    returns come from pi_b). It equals grad J(theta') exactly when pi_b = pi_theta' (then
    rho = 1), and is close to it when the two policies are close.

    Shapes: ``rewards, terminated, truncated, logp, logp_old, values [T, N]``; returns ``[T, N]``.
    """
    _, terminated, truncated, gamma, G, dtype = _returns_and_flags(
        rewards, terminated, truncated, gamma, None, ("values", values))
    values = _optional_values(values, "values", G.shape, dtype)
    rho = _ratios(logp, logp_old, terminated, truncated, "per_step", dtype)
    disc = _discount_factor(gamma, terminated, truncated, start_steps, step_discount, dtype)
    return rho * disc * (G - values)


# ---------------------------------------------------------------------------------------------
# (b) Assembly
# ---------------------------------------------------------------------------------------------


def _scores_and_weights(scores, weights):
    scores = as_float(scores, "scores")
    weights = as_float(weights, "weights")
    if weights.ndim == 1:
        weights = weights[:, None]
        scores = scores[:, None, :] if scores.ndim == 2 else scores
    if weights.ndim != 2 or scores.ndim != 3 or scores.shape[:2] != weights.shape:
        raise ValueError(
            f"scores must be [T, N, P] and weights [T, N]; got {scores.shape} and {weights.shape}")
    return scores, weights


def _coordinate_baseline(coordinate_baseline, P):
    if coordinate_baseline is None:
        return None
    b = as_float(coordinate_baseline, "coordinate_baseline").reshape(-1)
    if b.shape != (P,):
        raise ValueError(f"coordinate_baseline must have shape ({P},), got {b.shape}")
    return b


def policy_gradient(scores, weights, *, num_episodes: float | None = None,
                    coordinate_baseline=None) -> np.ndarray:
    """Assemble a score-function gradient estimate from per-step weights.

    g_j = (1/num_episodes) sum_{t,n} (w[t, n] - b_j) scores[t, n, j],
    scores[t, n] = grad_theta log pi_theta(a_{t,n}|s_{t,n})

    ``b_j = coordinate_baseline[j]`` (default 0): a constant per-coordinate baseline such as
    ``variance_optimal_baseline``; with full-return weights this is exactly
    (1/N) sum_i g_j(tau_i) (R(tau_i) - b_j).

    Lecture: 000 "Estimating the gradient" (the 1/N sum over sampled trajectories).
    Unbiased: as unbiased as the weights (the assembly is linear).

    Shapes: ``scores [T, N, P]`` (or ``[T, P]``), ``weights [T, N]`` (or ``[T]``),
    ``coordinate_baseline [P]``; ``num_episodes`` defaults to ``N``. Returns ``[P]``.
    """
    scores, weights = _scores_and_weights(scores, weights)
    n = weights.shape[1] if num_episodes is None else float(num_episodes)
    if not n > 0:
        raise ValueError(f"num_episodes must be positive, got {num_episodes}")
    g = np.einsum("tn,tnp->p", weights, scores)
    b = _coordinate_baseline(coordinate_baseline, scores.shape[2])
    if b is not None:
        g = g - b * scores.sum(axis=(0, 1))
    return g / n


def per_episode_gradients(scores, weights, terminated, truncated, *,
                          coordinate_baseline=None) -> np.ndarray:
    """Each episode's own estimate ``sum_{t in episode} (w_t - b) scores_t`` (no averaging).

    ``policy_gradient`` is the mean of these rows when each column holds one episode; the rows
    are what exact expectations (``prob @ rows``) and Monte-Carlo standard errors need.

    Shapes: ``scores [T, N, P]``, ``weights, terminated, truncated [T, N]``; returns ``[E, P]``
    with episodes numbered as in ``episode_ids``.
    """
    scores, weights = _scores_and_weights(scores, weights)
    terminated, truncated = _flags(_as2d(np.asarray(terminated)), _as2d(np.asarray(truncated)),
                                   weights.shape)
    ids, E = episode_ids(terminated, truncated)
    b = _coordinate_baseline(coordinate_baseline, scores.shape[2])
    contrib = weights[:, :, None] * scores
    if b is not None:
        contrib = contrib - b * scores
    out = np.zeros((E, scores.shape[2]), dtype=np.result_type(contrib, np.float32))
    np.add.at(out, ids.reshape(-1), contrib.reshape(-1, scores.shape[2]))
    return out


def policy_gradient_loss(logp, weights, *, num_episodes: float | None = None):
    """The pseudo-loss whose gradient is the policy gradient, and its gradient w.r.t. ``logp``.

    L(theta) = -(1/num_episodes) sum_{t,n} w[t, n] log pi_theta(a_{t,n}|s_{t,n}),
    dlogp = dL/dlogp = -w / num_episodes    (``weights`` are constants: no gradient)

    so that ``-sum_{t,n} dlogp[t, n] grad log pi = policy_gradient(scores, w)``. Agents pass
    ``dlogp`` to their distribution's ``log_prob_backward`` and then through the network, and
    descend on L.

    Lecture: 000 "How to implement policy gradients?" (surrogate objective J-tilde, weighted
    maximum likelihood); 002 "Policy gradient with automatic differentiation".
    Unbiased: its gradient is exactly ``-policy_gradient(scores, w)``, as unbiased as ``w``.

    Shapes: ``logp, weights [T, N]`` (or any equal shapes; ``num_episodes`` defaults to the
    size of the second axis, or 1 for 1-D input). Returns ``(loss: float, dlogp)`` with
    ``dlogp`` shaped like ``logp``.
    """
    logp = as_float(logp, "logp")
    weights = as_float(weights, "weights")
    same_shape("logp", logp, weights=weights)
    if num_episodes is None:
        num_episodes = logp.shape[1] if logp.ndim >= 2 else 1
    n = float(num_episodes)
    if not n > 0:
        raise ValueError(f"num_episodes must be positive, got {num_episodes}")
    loss = -float(np.sum(weights * logp)) / n
    return loss, (-weights / n).astype(result_dtype(logp, weights), copy=False)
