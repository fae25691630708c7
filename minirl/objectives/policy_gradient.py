"""Score-function (REINFORCE) policy-gradient estimators, in two layers.

Most estimators of the lectures have the form

    grad J(theta) ~= (1/N) sum_{i=1}^N sum_t w_{i,t} grad_theta log pi_theta(a_{i,t}|s_{i,t})

with a scalar per-step *weight* ``w_{i,t}`` multiplying the score. So:

(a) **weight functions** take time-major ``[T, N]`` rollout arrays and return ``w [T, N]``;
(b) **assembly**: ``policy_gradient(scores, w)`` forms the sum above from per-step score
    vectors ``scores [T, N, P]`` (used with the exact tabular scores of ``minirl.mdp``), and
    ``policy_gradient_loss(logp, w)`` returns the lecture's pseudo-loss
    ``L = -(1/N) sum w * logp`` with ``dlogp = -w/N`` -- what an agent backpropagates through
    ``dist.log_prob_backward(a, dlogp)`` and its network.

One estimator is *not* a per-step weight: the per-coordinate variance-optimal baseline
(``variance_optimal_baseline``) subtracts a different constant ``b_j`` for every parameter
coordinate ``j``, so it enters in the assembly (``coordinate_baseline=b``), not in ``w``.

| #  | weight function                 | w_t (k = step index within the episode)                |
|----|---------------------------------|--------------------------------------------------------|
| 1  | ``full_return_weights``         | R(tau) = sum_{t'} gamma^{t'} r_{t'}                     |
| 2  | ``reward_to_go_weights``        | gamma^k G_t,  G_t = sum_{t'>=t} gamma^{t'-t} r_{t'}     |
| 3  | ``constant_baseline_weights``   | gamma^k (G_t - b), b a number, "mean" or               |
|    |                                 | "leave_one_out"; ``full_return=True``: R(tau) - b       |
| 4  | ``variance_optimal_baseline``   | b_j = E[g_j^2 R]/E[g_j^2] (``coordinate_baseline``)     |
| 5  | ``state_baseline_weights``      | gamma^k (G_t - b(s_t)); ``full_return=True``:           |
|    |                                 | R(tau) - b(s_t)                                         |
| 6  | ``advantage_weights``           | gamma^k A_t                                             |
| 7  | ``trajectory_is_weights``       | rho_{0:end} gamma^k (G_t - b(s_t));                     |
|    |                                 | ``full_return=True``: rho_{0:end} (R(tau) - b(s_t))     |
| 8  | ``per_decision_is_weights``     | sum_{t'>=t} gamma^{k'} rho_{0:t'} r_{t'}                |
|    |                                 |   - gamma^k rho_{0:t} b(s_t)                            |
| 9  | ``per_step_is_weights``         | rho_t gamma^k (G_t - b(s_t))   ("common final form")    |
| 10 | ``prefix_is_advantage_weights`` | rho_{0:t} gamma^k A_t                                   |
| 11 | ``marginal_is_weights``         | (d'_t(s_t)/d_t(s_t)) rho_t gamma^k (G_t - b(s_t))       |

(The PPO surrogates and the KL terms are in ``minirl.objectives.ppo`` / ``.kl``; they return
``dlogp`` of a loss.)

**Conventions (one place).**

* Argument order: the data arrays first (``rewards, terminated, truncated``, then
  ``logp, logp_old``, ``log_state_ratio``, then ``values``), then ``gamma`` -- always
  required: there is no default discount, so forgetting it is an error, never a silent
  undiscounted estimate -- then keyword-only options.
* Sign and scale: the weights are *ascent* weights and ``policy_gradient`` averages over
  episodes (the lectures' ``(1/N) sum_i``), so it estimates ``+grad J``. The losses
  (``policy_gradient_loss`` and the PPO losses) return the gradient of a loss to *descend*,
  divided by a count of their choice (``num_episodes`` here, the sample count ``M`` for PPO).
  ``policy_gradient_from_dlogp(scores, dlogp, loss_divisor, num_episodes)`` turns any of them
  back into an estimate of ``grad J``: ``-(loss_divisor/num_episodes) sum dlogp * scores``.
  The PPO losses contain no ``gamma^k``: pass them ``advantage_weights(...)`` (``gamma^k A``)
  when the result should estimate ``grad J`` of the discounted objective.
* Importance ratios are formed in log space (``kernels.importance``) and exponentiated once.

**Discounting.** ``J = E[sum_t gamma^t r_t]``. The unbiased discounted estimators carry the
factor ``gamma^k`` (``k`` = steps since the episode started; Stanford CS234 "Policy Gradient
II": ``g = E[sum_t gamma^t grad log pi(a_t|s_t) A(s_t, a_t)]``). ``step_discount=False`` drops
it, as most deep-RL agents do. Its expectation is then

    g~ = sum_t E_{s_t ~ d_t, a_t ~ pi}[ grad log pi(a_t|s_t) Q_t(s_t, a_t) ]

(``minirl.mdp.exact_gradient(..., step_discount=False)``): every visited state's term counted
with weight 1 instead of gamma^t. For gamma < 1 this is biased, and in general it is the
gradient of *no* objective: its Jacobian with respect to theta is not symmetric (Nota &
Thomas 2020, "Is the Policy Gradient a Gradient?", arXiv:1906.07073; Thomas 2014, "Bias in
natural actor-critic algorithms"). With gamma = 1 both agree. ``k`` counts from the first row
of the rollout unless the column starts a new episode there; for rollouts that begin
mid-episode pass ``start_steps [N]`` (the episode step of row 0). The importance *products*
(``trajectory_is_weights``, ``per_decision_is_weights``, ``prefix_is_advantage_weights``)
need the decisions since the episode start, which a mid-episode rollout does not hold: they
refuse ``start_steps`` other than 0.

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

import numbers

import numpy as np

from kernels._validate import as_bool, as_float, result_dtype, same_shape, unit_interval
from kernels.importance import importance_weights
from kernels.returns import discounted_returns
from minirl.nn.losses import mean_f64
from minirl.objectives._ratio import ratio_times

__all__ = [
    "episode_steps",
    "episode_ids",
    "full_return_weights",
    "reward_to_go_weights",
    "constant_baseline_weights",
    "variance_optimal_baseline",
    "optimal_baseline_gradient",
    "state_baseline_weights",
    "advantage_weights",
    "trajectory_is_weights",
    "per_decision_is_weights",
    "per_step_is_weights",
    "prefix_is_advantage_weights",
    "marginal_is_weights",
    "policy_gradient",
    "per_episode_gradients",
    "policy_gradient_loss",
    "policy_gradient_from_dlogp",
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


def _start_steps(start_steps, n):
    """``start_steps [N]``: non-negative integers (a float or a negative step is an error)."""
    s0 = np.asarray(start_steps)
    if s0.dtype.kind not in "iu":
        raise TypeError(f"start_steps must be an integer array, got dtype {s0.dtype}")
    s0 = s0.astype(np.int64).reshape(-1)
    if s0.shape != (n,):
        raise ValueError(f"start_steps must have shape ({n},), got {s0.shape}")
    if (s0 < 0).any():
        raise ValueError(f"start_steps must be >= 0, got {s0.min()}")
    return s0


def episode_steps(terminated, truncated, start_steps=None) -> np.ndarray:
    """Step index ``k`` of every step within its episode, ``[T, N]`` int (``[T]`` for 1-D input).

    k_t = 0 at an episode's first step (after a terminated/truncated step), k_t = k_{t-1} + 1
    otherwise, and k_0 = ``start_steps[n]`` (default 0): row 0 continues whatever episode was
    running when the rollout began, so ``start_steps`` shifts only that first segment.

    Shapes: ``terminated, truncated [T, N]`` (or ``[T]``), ``start_steps [N]`` non-negative
    integers. Raises TypeError/ValueError naming ``start_steps``.
    """
    terminated = as_bool(terminated, "terminated")
    truncated = as_bool(truncated, "truncated")
    same_shape("terminated", terminated, truncated=truncated)
    start = _start_index(terminated, truncated)
    rows = np.arange(start.shape[0])[:, None]
    k = rows - start
    if start_steps is not None:
        s0 = _start_steps(start_steps, k.shape[1])
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
    if start_steps is not None:  # validated even when unused
        _start_steps(start_steps, _as2d(terminated).shape[1])
    if not step_discount or gamma == 1.0:
        return np.ones(terminated.shape, dtype=dtype)
    return (gamma ** episode_steps(terminated, truncated, start_steps)).astype(dtype)


def _start_discount(gamma, terminated, truncated, start_steps, dtype):
    """``[T, N]``: gamma^{k_0} on the rows of each column's first segment (the episode that had
    run ``start_steps[n]`` steps before row 0), 1 elsewhere: the discount from the episode's
    start of a full return R that the rollout only sees from row 0 on."""
    ones = np.ones(terminated.shape, dtype=dtype)
    if start_steps is None:
        return ones
    s0 = _start_steps(start_steps, _as2d(terminated).shape[1])
    if gamma == 1.0 or not s0.any():
        return ones
    first = _start_index(terminated, truncated) == 0
    return np.where(first, gamma ** s0[None, :].astype(np.float64), 1.0).reshape(
        terminated.shape).astype(dtype)


def _no_mid_episode_start(start_steps, name):
    if start_steps is not None and np.any(np.asarray(start_steps) != 0):
        raise ValueError(
            f"start_steps must be 0 for {name}: its importance product needs every decision "
            "since the episode start, and a rollout that begins mid-episode does not hold them")


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
# (a) Weight functions: on-policy
# ---------------------------------------------------------------------------------------------


def full_return_weights(rewards, terminated, truncated, gamma: float, *,
                        bootstrap_values=None, start_steps=None) -> np.ndarray:
    """REINFORCE with the full return: every step of an episode is weighted by R(tau).

    grad J ~= (1/N) sum_i ( sum_t grad log pi(a_{i,t}|s_{i,t}) ) R(tau_i),
    R(tau) = sum_{t=0}^{T-1} gamma^t r(s_t, a_t)    (gamma^t counted from the episode start)

    ``start_steps [N]``: a column whose row 0 is step k_0 of an episode begun before the
    rollout sees only the rest of that episode; its R is then gamma^{k_0} sum_j gamma^j r_j
    (the observed rewards discounted from the episode's real start; the rewards before row 0
    multiply no score of this rollout). Default None: each segment counts from its first row.

    Lecture: Stanford CS224R "Policy Gradients", slides "Can we get the gradient of the RL
    objective?" / "Estimating the gradient" (REINFORCE); IIT Delhi COL778 "Policy Gradients",
    "Direct Policy Differentiation". Paper: Williams (1992).
    Unbiased: yes, for complete episodes sampled from pi_theta (an episode cut by the end of
    the rollout contributes only its observed part, plus ``bootstrap_values`` if given).

    Shapes: ``rewards, terminated, truncated [T, N]`` (or ``[T]``); returns ``w [T, N]``.
    """
    _, terminated, truncated, gamma, G, dtype = _returns_and_flags(
        rewards, terminated, truncated, gamma, bootstrap_values)
    R = _episode_returns(G, terminated, truncated)
    if start_steps is None:
        return R
    return _start_discount(gamma, terminated, truncated, start_steps, dtype) * R


def reward_to_go_weights(rewards, terminated, truncated, gamma: float, *,
                         step_discount: bool = True, start_steps=None,
                         bootstrap_values=None) -> np.ndarray:
    """Reward-to-go (causality): the score at t is weighted by future rewards only.

    grad J ~= (1/N) sum_i sum_t grad log pi(a_{i,t}|s_{i,t}) gamma^k G_{i,t},
    G_t = sum_{t'=t}^{end} gamma^{t'-t} r_{t'}     (k = step index within the episode)

    Lecture: CS224R "Policy Gradients", "Improving the gradient - Using causality" (sum of
    future rewards); COL778 "Policy Gradients", "reward to go" Q-hat_{i,t}.
    Paper: Williams (1992); Sutton et al. (2000).
    Unbiased: yes with ``step_discount=True`` (or gamma = 1), for complete on-policy episodes:
    E[grad log pi(a_t|s_t) r_{t'}] = 0 for t' < t. ``step_discount=False`` has the expectation
    sum_t E[grad log pi(a_t|s_t) Q_t(s_t, a_t)] (``minirl.mdp.exact_gradient(...,
    step_discount=False)``), biased for gamma < 1 and in general the gradient of no function
    of theta (its Jacobian is asymmetric; Nota & Thomas 2020) -- see the module docstring.

    Shapes: ``rewards, terminated, truncated [T, N]``; ``start_steps [N]``; returns ``[T, N]``.
    """
    _, terminated, truncated, gamma, G, dtype = _returns_and_flags(
        rewards, terminated, truncated, gamma, bootstrap_values)
    return _discount_factor(gamma, terminated, truncated, start_steps, step_discount, dtype) * G


BATCH_BASELINES = ("mean", "leave_one_out")


def constant_baseline_weights(rewards, terminated, truncated, gamma: float, baseline, *,
                              step_discount: bool = True, start_steps=None,
                              full_return: bool = False) -> np.ndarray:
    """Reward-to-go (or the full return) minus a constant baseline ``b``.

    grad J ~= (1/N) sum_i sum_t grad log pi(a_{i,t}|s_{i,t}) gamma^k (G_{i,t} - b)

    ``baseline`` must be chosen explicitly:
      * a finite number: a fixed b;
      * ``"mean"``: the batch mean return b = (1/E) sum_j R(tau_j) over the E episodes of the
        batch (lecture's b = (1/N) sum_i r(tau));
      * ``"leave_one_out"``: for episode i, the mean return of the *other* E - 1 episodes.

    ``full_return=True`` is CS224R's first form, grad log p(tau) (R(tau) - b): every step of
    episode i is weighted by R(tau_i) - b (no gamma^k factor: R(tau) is already discounted
    from the episode start, as in ``full_return_weights``; with ``step_discount`` and
    ``start_steps`` a segment that continues an episode has R = gamma^{k_0} sum_j gamma^j r_j).

    Lecture: CS224R "Policy Gradients", "Improving the gradient - Introducing baselines" and
    "How to implement policy gradients?"; COL778 "Policy Gradients", "Reducing Variance by
    Subtracting Baseline".
    Unbiased: yes for a fixed number (E[grad log p(tau) b] = 0) and for ``"leave_one_out"``
    (needs E >= 2). ``"mean"`` is biased: with E i.i.d. complete episodes, one per column, each
    episode correlates with its own share of b, and the expectation is

        grad J - (1/E) E[ sum_t c_t grad log pi(a_t|s_t) R(tau) ],   c_t = gamma^k or 1,

        = (1 - 1/E) grad J    when ``full_return=True`` (any gamma) or gamma = 1;

    for reward-to-go with gamma < 1 the correction term is not proportional to grad J.

    Shapes: ``rewards, terminated, truncated [T, N]``; returns ``[T, N]``. Raises ValueError
    naming ``baseline`` for NaN/inf or an unknown string.
    """
    _, terminated, truncated, gamma, G, dtype = _returns_and_flags(
        rewards, terminated, truncated, gamma, None)
    R = _episode_returns(G, terminated, truncated)
    if full_return and step_discount:  # R from the episode's start (see full_return_weights)
        R = _start_discount(gamma, terminated, truncated, start_steps, dtype) * R
    if isinstance(baseline, str):
        if baseline not in BATCH_BASELINES:
            raise ValueError(f"baseline must be a number or one of {BATCH_BASELINES}, "
                             f"got {baseline!r}")
        starts = _episode_starts(terminated, truncated).reshape(R.shape)
        ep_returns = R[starts]
        n = ep_returns.size
        if baseline == "leave_one_out":
            if n < 2:
                raise ValueError("baseline='leave_one_out' needs at least two episodes")
            b = (ep_returns.sum() - R) / (n - 1)
        else:
            b = ep_returns.mean()
    else:
        if isinstance(baseline, (bool, np.bool_)) or not isinstance(baseline, numbers.Real):
            raise TypeError(f"baseline must be a real number or one of {BATCH_BASELINES}, "
                            f"got {type(baseline).__name__}")
        b = float(baseline)
        if not np.isfinite(b):
            raise ValueError(f"baseline must be finite, got {b}")
    if full_return:
        return (R - b).astype(dtype, copy=False)
    return _discount_factor(gamma, terminated, truncated, start_steps, step_discount, dtype) * (G - b)


def variance_optimal_baseline(scores, rewards, terminated, truncated, gamma: float, *,
                              sample_weight=None) -> np.ndarray:
    """Per-coordinate variance-optimal constant baseline for the full-return estimator.

    b_j = E[ g_j(tau)^2 R(tau) ] / E[ g_j(tau)^2 ],   g(tau) = sum_t grad log pi(a_t|s_t)

    This is the minimizer over constants b_j of Var[g_j (R - b_j)] (a theorem: the mean of
    g_j (R - b_j) does not depend on b_j, so the variance is the quadratic
    E[g_j^2 R^2] - 2 b_j E[g_j^2 R] + b_j^2 E[g_j^2] minus a constant). Use it as
    ``policy_gradient(scores, full_return_weights(...), coordinate_baseline=b)``, which forms
    ``(1/N) sum_i g_j(tau_i) (R(tau_i) - b_j)``: a different constant per coordinate, so this
    estimator is not a per-step weight.

    Lecture: COL778 "Policy Gradients", "Analyzing variance" (dVar/db = 0 => b = E[g^2 r]/E[g^2]).
    Paper: Greensmith, Bartlett & Baxter (2004); Peters & Schaal (2008).
    Unbiased: the estimator is unbiased when ``b`` is a constant independent of the batch it
    is used on (the exact expectation, computed with ``sample_weight`` = trajectory
    probabilities, or an estimate from another batch). Estimated from the same batch it is
    consistent but biased in general, like the batch-mean baseline.

    Shapes: ``scores [T, N, P]``; ``rewards, terminated, truncated [T, N]``;
    ``sample_weight [E]`` per episode (``E`` as numbered by ``episode_ids``; finite, >= 0, not
    all 0; only their ratios matter) or None (equal). Returns ``b [P]`` (0 where E[g_j^2] = 0).
    """
    scores = as_float(scores, "scores")
    _, terminated, truncated, _, G, _ = _returns_and_flags(
        rewards, terminated, truncated, gamma, None)
    g = per_episode_gradients(scores, np.ones(G.shape), terminated, truncated)  # [E, P]
    ids, E = episode_ids(terminated, truncated)
    starts = _episode_starts(terminated, truncated).reshape(G.shape)
    R = np.zeros(E)
    R[ids[starts]] = G[starts]
    if sample_weight is None:
        p = np.full(E, 1.0 / E)
    else:
        p = as_float(sample_weight, "sample_weight", dtype=np.float64)
        if p.shape != (E,):
            raise ValueError(f"sample_weight must have shape ({E},), got {p.shape}")
        if (p < 0).any() or not p.sum() > 0:
            raise ValueError("sample_weight must be >= 0 with a positive sum")
    num = np.einsum("e,ep,e->p", p, g**2, R)
    den = np.einsum("e,ep->p", p, g**2)
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def optimal_baseline_gradient(episode_scores, episode_returns) -> tuple[np.ndarray, np.ndarray]:
    """Full-return gradient with the per-coordinate variance-optimal baseline, leave-one-out.

    g~_j = (1/E) sum_i g_ij (R_i - b_ij),
    b_ij = sum_{l != i} g_lj^2 R_l / sum_{l != i} g_lj^2      (0 where that sum is 0)

    with ``episode_scores[i] = g(tau_i) = sum_t grad log pi(a_t|s_t)`` of episode i (an agent
    gets it from one backward pass per episode) and ``episode_returns[i] = R(tau_i)``. Each
    episode's b_i is the sample version of COL778's b = E[g^2 r]/E[g^2] computed from the
    *other* episodes, so it is independent of episode i.

    Lecture: COL778 "Policy Gradients", "Analyzing variance". Paper: Greensmith, Bartlett &
    Baxter (2004).
    Unbiased: yes for E >= 2 i.i.d. complete on-policy episodes (E[g_i b_i] = E[g_i] E[b_i]
    = 0 because b_i does not depend on episode i).

    Shapes: ``episode_scores [E, P]``, ``episode_returns [E]``; returns ``(g~ [P], b [E, P])``.
    """
    g = as_float(episode_scores, "episode_scores", dtype=np.float64)
    R = as_float(episode_returns, "episode_returns", dtype=np.float64)
    if g.ndim != 2 or R.shape != (g.shape[0],):
        raise ValueError(f"episode_scores must be [E, P] and episode_returns [E]; got "
                         f"{g.shape} and {R.shape}")
    if g.shape[0] < 2:
        raise ValueError("episode_scores needs at least two episodes (leave-one-out)")
    g2 = g * g
    num = (g2 * R[:, None]).sum(axis=0) - g2 * R[:, None]   # [E, P]: sums over l != i
    den = g2.sum(axis=0) - g2
    b = np.divide(num, den, out=np.zeros_like(num), where=den > 0)
    return (g * (R[:, None] - b)).mean(axis=0), b


def state_baseline_weights(rewards, terminated, truncated, values, gamma: float, *,
                           step_discount: bool = True, start_steps=None,
                           bootstrap_values=None, full_return: bool = False) -> np.ndarray:
    """Reward-to-go (or the full return) minus a state-dependent baseline ``b(s_t) = values[t]``.

    grad J ~= (1/N) sum_i sum_t grad log pi(a_{i,t}|s_{i,t}) gamma^k (G_{i,t} - b(s_{i,t}))

    ``full_return=True`` weights step t by R(tau_i) - b(s_{i,t}) instead (no gamma^k factor;
    CS224R's grad log p(tau) (R(tau) - b) with b allowed to depend on s_t; with
    ``step_discount`` and ``start_steps`` a segment that continues an episode has
    R = gamma^{k_0} (sum_j gamma^j r_j + bootstrap), as in ``full_return_weights``). Whether it has
    more or less variance than the reward-to-go form depends on the MDP: neither ordering is
    a theorem (``tests/minirl/objectives/test_policy_gradient.py`` shows an MDP where the full
    return has less).

    Lecture: Stanford CS234 "Lecture 6: Policy Gradient II", "Baseline b(s) Does Not Introduce
    Bias" (E[grad log pi(a_t|s_t) b(s_t)] = 0) and '"Vanilla" Policy Gradient Algorithm' with a
    refit baseline. Paper: Williams (1992); Greensmith et al. (2004).
    Unbiased: yes for any b that depends on s_t (and t) but not on a_t or later steps
    (``step_discount=True`` or gamma = 1, complete on-policy episodes).

    Shapes: ``rewards, terminated, truncated, values [T, N]``; returns ``[T, N]``.
    """
    _, terminated, truncated, gamma, G, dtype = _returns_and_flags(
        rewards, terminated, truncated, gamma, bootstrap_values, ("values", values))
    values = _optional_values(values, "values", G.shape, dtype)
    if full_return:
        R = _episode_returns(G, terminated, truncated)
        if step_discount:  # R from the episode's start (see full_return_weights)
            R = _start_discount(gamma, terminated, truncated, start_steps, dtype) * R
        return R - values
    return _discount_factor(gamma, terminated, truncated, start_steps, step_discount, dtype) * (G - values)


def advantage_weights(adv, terminated, truncated, gamma: float, *,
                      step_discount: bool = True, start_steps=None) -> np.ndarray:
    """Advantage-weighted policy gradient: the score at t is weighted by ``gamma^k A_t``.

    grad J = E_{tau ~ pi}[ sum_t gamma^t grad log pi(a_t|s_t) A^pi(s_t, a_t) ]

    Lecture: CS234 "Policy Gradient II", "The Problems with Policy Gradients" (g = E[sum_t
    gamma^t grad log pi(a_t|s_t) A^{pi_theta}(s_t, a_t)]) and the actor-critic slides;
    CS224R "Improving policy gradients" (the advantage form) and "A Full Algorithm
    Walkthrough" (step 4).
    Paper: Sutton, McAllester, Singh & Mansour (2000), policy gradient theorem.
    Unbiased: yes when ``adv`` is the true A^pi_t(s_t, a_t) (or Q^pi_t, or Q^pi_t - b(s_t)),
    with ``step_discount=True`` or gamma = 1; estimated advantages (GAE, n-step) carry their
    own bias.

    Shapes: ``adv, terminated, truncated [T, N]``; returns ``[T, N]``.
    """
    adv = as_float(adv, "adv")
    terminated, truncated = _flags(terminated, truncated, adv.shape)
    gamma = unit_interval(gamma, "gamma")
    if start_steps is None and (not step_discount or gamma == 1.0) and adv.ndim:
        return adv.copy()    # = ones * adv, bit for bit (1 * a = a, finite a), one pass fewer
    return _discount_factor(gamma, terminated, truncated, start_steps, step_discount, adv.dtype) * adv


# ---------------------------------------------------------------------------------------------
# (a) Weight functions: off-policy (episodes sampled from a behaviour policy pi_b)
# ---------------------------------------------------------------------------------------------


def _log_ratios(logp, logp_old, terminated, truncated, mode, dtype):
    """``log rho`` products of ``mode`` (kernels.importance), float64."""
    logp = as_float(logp, "logp")
    logp_old = as_float(logp_old, "logp_old")
    same_shape("logp", logp, logp_old=logp_old)
    _, log_rho = importance_weights(logp.astype(np.float64), logp_old.astype(np.float64),
                                    terminated, truncated, mode)
    return log_rho


def _ratios(logp, logp_old, terminated, truncated, mode, dtype):
    """``(rho, log_rho)``: the kernel's weights (saturating at the largest float, which is
    wrong as a factor) and their float64 logs, from which ``_rho_times`` is exact."""
    logp = as_float(logp, "logp")
    logp_old = as_float(logp_old, "logp_old")
    same_shape("logp", logp, logp_old=logp_old)
    rho, log_rho = importance_weights(logp, logp_old, terminated, truncated, mode)
    return np.asarray(rho).astype(dtype, copy=False), np.asarray(log_rho, np.float64)


def _rho_times(rho, log_rho, *factors, dtype):
    """``rho * f1 * f2 ...`` in ``dtype`` (that order, as the estimators always computed it),
    exact per element where rho saturated, overflowed or underflowed: there ``exp(log_rho) *
    prod(f)`` in log space (``objectives._ratio.ratio_times``): 0 where a factor is 0 (never
    max_float * 0 = wrong or inf * 0 = NaN), +-inf only where the true weight exceeds
    ``dtype``'s range."""
    with np.errstate(over="ignore", invalid="ignore"):
        out = rho
        for f in factors:
            out = out * f
        out = np.asarray(out, dtype)
        log_max = np.log(np.finfo(rho.dtype).max)
        bad = (log_rho >= log_max) | ~np.isfinite(out) | ((rho < np.finfo(rho.dtype).tiny)
                                                          & (out == 0))
        if bad.any():
            c = np.ones(out.shape)
            for f in factors:
                c = c * np.broadcast_to(np.asarray(f, np.float64), out.shape)
            out = out.copy()
            out[bad] = ratio_times(log_rho[bad], c[bad])
    return out


def trajectory_is_weights(rewards, terminated, truncated, logp, logp_old, values,
                          gamma: float, *, step_discount: bool = True, start_steps=None,
                          full_return: bool = False) -> np.ndarray:
    """Off-policy policy gradient with the trajectory-product importance weight.

    grad J(theta') ~= (1/N) sum_i [ prod_{t=0}^{end} pi_theta'(a_t|s_t)/pi_b(a_t|s_t) ]
                       sum_t grad log pi_theta'(a_{i,t}|s_{i,t}) gamma^k (G_{i,t} - b(s_{i,t}))

    with episodes sampled from the behaviour policy pi_b (``logp_old = log pi_b(a_t|s_t)``,
    ``logp = log pi_theta'(a_t|s_t)``); ``values`` = b(s_t) or None (no baseline).
    ``full_return=True`` weights every step by rho_{0:end} (R(tau) - b(s_t)) instead: the
    off-policy REINFORCE of "Policy Gradients and Gradient-Free Optimization", slide
    "Off-Policy Algorithms": (1/N) sum_{tau~Q} P_pi(tau)/Q(tau) R(tau) grad log P_pi(tau).

    Lecture: CS224R "Policy Gradients", "Off-policy version of policy gradient? Importance
    sampling" (p_theta'(tau)/p_theta(tau) = prod_t pi_theta'/pi_theta, and the reward-to-go
    form above); "Policy Gradients and Gradient-Free Optimization", "Off-Policy Algorithms".
    Paper: Precup, Sutton & Singh (2000); Levine & Koltun (2013), guided policy search.
    Unbiased: yes, whenever pi_b > 0 wherever pi_theta' > 0 (complete episodes;
    ``step_discount=True`` or gamma = 1, or ``full_return=True``).
    Weight size (a theorem): with T steps, E_b[rho_{0:T-1}^2] lies between
    (1 + min_s chi2_s)^T and (1 + max_s chi2_s)^T, chi2_s = sum_a pi'(a|s)^2/pi_b(a|s) - 1,
    so the weight's second moment grows geometrically in T once the policies differ in every
    state (CS224R: "can become very small or very large, for larger T").

    Shapes: ``rewards, terminated, truncated, logp, logp_old, values [T, N]``; returns
    ``[T, N]``. ``start_steps`` must be None or 0 (the product needs the whole episode).
    """
    _no_mid_episode_start(start_steps, "trajectory_is_weights")
    _, terminated, truncated, gamma, G, dtype = _returns_and_flags(
        rewards, terminated, truncated, gamma, None, ("values", values))
    values = _optional_values(values, "values", G.shape, dtype)
    rho, log_rho = _ratios(logp, logp_old, terminated, truncated, "trajectory", dtype)
    if full_return:
        return _rho_times(rho, log_rho, _episode_returns(G, terminated, truncated) - values,
                          dtype=dtype)
    disc = _discount_factor(gamma, terminated, truncated, start_steps, step_discount, dtype)
    return _rho_times(rho, log_rho, disc, G - values, dtype=dtype)


def per_decision_is_weights(rewards, terminated, truncated, logp, logp_old, values,
                            gamma: float, *, step_discount: bool = True,
                            start_steps=None) -> np.ndarray:
    """Off-policy policy gradient with per-decision importance weights.

    w_t = sum_{t'=t}^{end} gamma^{k_t'} rho_{0:t'} r_{t'}  -  gamma^{k_t} rho_{0:t} b(s_t),
    rho_{0:t} = prod_{u=0}^{t} pi_theta'(a_u|s_u) / pi_b(a_u|s_u)

    i.e. ``gamma^k * (reward-to-go of the weighted rewards rho_{0:t'} r_{t'} - rho_{0:t} b)``:
    each reward is corrected only for the decisions taken before it, because
    E_b[rho_{0:t'} grad log pi(a_t|s_t) r_{t'}] = E_pi[grad log pi(a_t|s_t) r_{t'}] for t <= t'.

    Lecture: CS224R "Policy Gradients", "Off-policy version of policy gradient? Importance
    sampling" (the trajectory ratio, restricted here to the decisions before each reward);
    CS234 "Policy Gradient II", "Importance Sampling for Policy Gradients" (the prefix ratio
    P(tau_t|theta)/P(tau_t|theta') = prod_{t'<=t} pi_theta/pi_theta').
    Paper: Precup, Sutton & Singh (2000), per-decision importance sampling.
    Unbiased: yes, whenever pi_b has full support (complete episodes, ``step_discount=True``
    or gamma = 1). Variance: *no* general ordering against ``trajectory_is_weights`` (the
    tests show an MDP where it is higher). One identity holds: when every reward but the last
    step's is 0 and there is no baseline, the two weights are equal.

    Shapes: ``rewards, terminated, truncated, logp, logp_old, values [T, N]``; returns
    ``[T, N]``. ``start_steps`` must be None or 0.
    """
    _no_mid_episode_start(start_steps, "per_decision_is_weights")
    rewards, terminated, truncated, gamma, _, dtype = _returns_and_flags(
        rewards, terminated, truncated, gamma, None, ("values", values))
    values = _optional_values(values, "values", rewards.shape, dtype)
    rho, log_rho = _ratios(logp, logp_old, terminated, truncated, "per_decision", dtype)
    rho_r = _rho_times(rho, log_rho, rewards, dtype=dtype)  # exact, or inf beyond dtype
    if not np.isfinite(rho_r).all():
        raise FloatingPointError(
            f"a weighted reward rho_0:t r_t exceeds {np.dtype(dtype)} (log rho up to "
            f"{float(np.max(log_rho)):.4g}): the per-decision weights are not representable; "
            + ("rescale the rewards" if dtype == np.float64
               else "use float64 inputs or rescale the rewards"))
    G_rho = discounted_returns(rho_r, terminated, truncated, gamma).astype(dtype, copy=False)
    disc = _discount_factor(gamma, terminated, truncated, start_steps, step_discount, dtype)
    return disc * (G_rho - _rho_times(rho, log_rho, values, dtype=dtype))


def per_step_is_weights(rewards, terminated, truncated, logp, logp_old, values,
                        gamma: float, *, step_discount: bool = True,
                        start_steps=None) -> np.ndarray:
    """The "common final form": importance ratio at step t only, state ratio taken as 1.

    grad J(theta') ~= (1/N) sum_i sum_t pi_theta'(a_t|s_t)/pi_b(a_t|s_t)
                         grad log pi_theta'(a_{i,t}|s_{i,t}) gamma^k (G_{i,t} - b(s_{i,t}))

    It is exactly ``marginal_is_weights`` with ``log_state_ratio = 0``.

    Lecture: CS224R "Policy Gradients", "Off-policy policy gradient - Common final form" (the
    state ratio pi_theta'(s_t)/pi_theta(s_t) "often approximated as 1"); CS234 "Policy
    Gradient II", the surrogate L_pi(pi').
    Paper: Degris, White & Sutton (2012), "Off-Policy Actor-Critic"; Schulman et al. (2015).
    Unbiased: **no** in general. Its expectation is

        sum_t gamma^t E_{s_t ~ d^b_t} sum_a pi_theta'(a|s_t) grad log pi_theta'(a|s_t) Q^b_t(s_t, a)
        = grad_theta' L_b(pi_theta'),   L_b(pi') = sum_t gamma^t E_{s~d^b_t, a~pi'}[A^b_t(s, a)],

    the gradient of the surrogate built on the behaviour policy (states and returns come
    from pi_b). It equals grad J(theta') exactly when pi_b = pi_theta' (then rho = 1).

    Shapes: ``rewards, terminated, truncated, logp, logp_old, values [T, N]``; returns ``[T, N]``.
    """
    _, terminated, truncated, gamma, G, dtype = _returns_and_flags(
        rewards, terminated, truncated, gamma, None, ("values", values))
    values = _optional_values(values, "values", G.shape, dtype)
    rho, log_rho = _ratios(logp, logp_old, terminated, truncated, "per_step", dtype)
    disc = _discount_factor(gamma, terminated, truncated, start_steps, step_discount, dtype)
    return _rho_times(rho, log_rho, disc, G - values, dtype=dtype)


def prefix_is_advantage_weights(adv, terminated, truncated, logp, logp_old, gamma: float, *,
                                step_discount: bool = True, start_steps=None) -> np.ndarray:
    """Off-policy advantage-weighted gradient with prefix importance products.

    g = E_{tau ~ pi_b}[ sum_t rho_{0:t} gamma^t grad log pi_theta(a_t|s_t) A^theta(s_t, a_t) ],
    rho_{0:t} = P(tau_t|theta)/P(tau_t|b) = prod_{t'=0}^{t} pi_theta(a_t'|s_t')/pi_b(a_t'|s_t')

    ``adv`` is the *target* policy's advantage A^theta_t(s_t, a_t) (not the behaviour's).

    Lecture: CS234 "Lecture 6: Policy Gradient II", "Importance Sampling for Policy Gradients"
    (the prefix ratio of tau_t = (s_0, a_0, ..., s_t, a_t) and "exploding or vanishing
    importance sampling weights"). Paper: Precup, Sutton & Singh (2000).
    Unbiased: yes when ``adv`` is the exact A^theta_t of the target policy, pi_b has full
    support, and ``step_discount=True`` or gamma = 1 (the expectation of each step's term
    under pi_b is its expectation under pi_theta: the states up to s_t and the actions up to
    a_t are reweighted, and A^theta already averages the future under pi_theta).

    Shapes: ``adv, terminated, truncated, logp, logp_old [T, N]``; returns ``[T, N]``.
    ``start_steps`` must be None or 0.
    """
    _no_mid_episode_start(start_steps, "prefix_is_advantage_weights")
    adv = as_float(adv, "adv")
    terminated, truncated = _flags(terminated, truncated, adv.shape)
    gamma = unit_interval(gamma, "gamma")
    dtype = adv.dtype
    rho, log_rho = _ratios(logp, logp_old, terminated, truncated, "per_decision", dtype)
    disc = _discount_factor(gamma, terminated, truncated, start_steps, step_discount, dtype)
    return _rho_times(rho, log_rho, disc, adv, dtype=dtype)


MARGINAL_FUTURES = ("behaviour", "per_decision")


def marginal_is_weights(rewards, terminated, truncated, logp, logp_old, log_state_ratio, values,
                        gamma: float, *, future: str = "behaviour", step_discount: bool = True,
                        start_steps=None) -> np.ndarray:
    """Per-time-step importance sampling with the exact state-action marginal ratio.

    w_t = [p_theta'(s_t, a_t) / p_b(s_t, a_t)] gamma^k (F_t - b(s_t)),
    p_theta'(s_t, a_t)/p_b(s_t, a_t) = [d'_t(s_t)/d^b_t(s_t)] * [pi_theta'(a_t|s_t)/pi_b(a_t|s_t)]

    ``log_state_ratio[t] = log d'_t(s_t) - log d^b_t(s_t)`` (the state-marginal ratio at step
    t of the episode; ``minirl.mdp.log_state_ratios`` computes it exactly on a finite MDP) and
    the future term ``F_t``:
      * ``future="behaviour"``: F_t = G_t, the reward-to-go as sampled (the lecture's form);
      * ``future="per_decision"``: F_t = sum_{t'>=t} gamma^{t'-t} rho_{t+1:t'} r_{t'}, the
        reward-to-go with every later decision reweighted (rho_{t+1:t} = 1).
    Setting ``log_state_ratio = 0`` with ``future="behaviour"`` gives exactly the "common
    final form" (``per_step_is_weights``).

    Lecture: CS224R "Policy Gradients", "Off-policy version of policy gradient? Importance
    sampling": "What if we consider the expectation over timesteps instead of trajectories?"
    with the ratio pi_theta'(s_t, a_t)/pi_theta(s_t, a_t), "hard to measure" -- exact here.
    Unbiased: with ``future="per_decision"``, yes (full support, ``step_discount=True`` or
    gamma = 1): the step-t term's expectation under pi_b is
    gamma^t E_{(s_t, a_t) ~ p_theta'}[grad log pi_theta'(a_t|s_t) (Q^{theta'}_t - b(s_t))].
    With ``future="behaviour"`` (the lecture's form) **no**: its expectation is

        sum_t gamma^t E_{s ~ d'_t, a ~ pi_theta'}[ grad log pi_theta'(a|s) (Q^b_t(s, a) - b(s)) ]

    -- the right state-action distribution, but the returns after t still follow pi_b.

    Shapes: ``rewards, terminated, truncated, logp, logp_old, log_state_ratio, values [T, N]``;
    returns ``[T, N]``. ``log_state_ratio`` may hold -inf (a state the target never reaches:
    weight 0) but not +inf or NaN.
    """
    if future not in MARGINAL_FUTURES:
        raise ValueError(f"future must be one of {MARGINAL_FUTURES}, got {future!r}")
    rewards, terminated, truncated, gamma, G, dtype = _returns_and_flags(
        rewards, terminated, truncated, gamma, None, ("values", values))
    values = _optional_values(values, "values", G.shape, dtype)
    log_state = as_float(log_state_ratio, "log_state_ratio", dtype=np.float64, finite=False)
    if log_state.shape != rewards.shape:
        raise ValueError(f"log_state_ratio must have shape {rewards.shape}, got {log_state.shape}")
    if np.isnan(log_state).any() or np.isposinf(log_state).any():
        raise ValueError("log_state_ratio must not hold NaN or +inf")
    log_rho = _log_ratios(logp, logp_old, terminated, truncated, "per_step", dtype)
    if future == "per_decision":
        # F_t = r_t + gamma rho_{t+1} F_{t+1} inside an episode, 0 after its last step.
        lr2 = _as2d(log_rho)
        with np.errstate(over="ignore"):  # beyond float64: _rho_times works in log space
            rho = np.exp(lr2)
        done = _as2d(terminated | truncated)
        r2 = _as2d(rewards).astype(np.float64)
        F = np.zeros(r2.shape)
        nxt = np.zeros(r2.shape[1])
        for t in range(r2.shape[0] - 1, -1, -1):
            carry = 0.0 if t + 1 == r2.shape[0] else _rho_times(rho[t + 1], lr2[t + 1], gamma,
                                                                 nxt, dtype=np.float64)
            F[t] = r2[t] + np.where(done[t], 0.0, carry)
            nxt = F[t]
        G = F.reshape(rewards.shape)
    disc = _discount_factor(gamma, terminated, truncated, start_steps, step_discount, dtype)
    log_w = log_state + log_rho
    with np.errstate(over="ignore"):  # beyond float64: _rho_times works in log space
        w = _rho_times(np.exp(log_w), log_w, disc, G - values, dtype=np.float64)
    return w.astype(dtype, copy=False)


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


def _positive_count(x, name):
    if type(x) is int and x > 0:   # the agents' counts (a batch size): fast path
        return float(x)
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, numbers.Real):
        raise TypeError(f"{name} must be a positive number, got {type(x).__name__}")
    x = float(x)
    if not (x > 0 and np.isfinite(x)):
        raise ValueError(f"{name} must be positive and finite, got {x}")
    return x


def policy_gradient(scores, weights, *, num_episodes: float | None = None,
                    coordinate_baseline=None) -> np.ndarray:
    """Assemble a score-function gradient estimate from per-step weights.

    g_j = (1/num_episodes) sum_{t,n} (w[t, n] - b_j) scores[t, n, j],
    scores[t, n] = grad_theta log pi_theta(a_{t,n}|s_{t,n})

    ``b_j = coordinate_baseline[j]`` (default 0): a constant per-coordinate baseline such as
    ``variance_optimal_baseline``; with full-return weights this is exactly
    (1/N) sum_i g_j(tau_i) (R(tau_i) - b_j).

    Lecture: CS224R "Policy Gradients", "Estimating the gradient" (the 1/N sum over sampled
    trajectories).
    Unbiased: as unbiased as the weights (the assembly is linear).

    Shapes: ``scores [T, N, P]`` (or ``[T, P]``), ``weights [T, N]`` (or ``[T]``),
    ``coordinate_baseline [P]``; ``num_episodes`` defaults to ``N``. Returns ``[P]``.
    """
    scores, weights = _scores_and_weights(scores, weights)
    n = weights.shape[1] if num_episodes is None else _positive_count(num_episodes,
                                                                      "num_episodes")
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

    Lecture: CS224R "Policy Gradients", "How to implement policy gradients?" (surrogate
    objective J-tilde, weighted maximum likelihood); COL778 "Policy Gradients", "Policy
    Gradient with Automatic Differentiation" (the pseudo-loss).
    Unbiased: its gradient is exactly ``-policy_gradient(scores, w)``, as unbiased as ``w``.

    Shapes: ``logp, weights [T, N]`` (or any equal shapes; ``num_episodes`` defaults to the
    size of the second axis, or 1 for 1-D input). Returns ``(loss: float, dlogp)`` with
    ``dlogp`` shaped like ``logp``.
    """
    logp = as_float(logp, "logp")
    weights = as_float(weights, "weights")
    if logp.shape != weights.shape:
        same_shape("logp", logp, weights=weights)
    if num_episodes is None:
        num_episodes = logp.shape[1] if logp.ndim >= 2 else 1
    n = _positive_count(num_episodes, "num_episodes")
    with np.errstate(over="ignore"):  # |w logp| beyond float64: +-inf, the truth
        loss = -mean_f64(weights.astype(np.float64) * logp, n)  # float64 sum: finite for f32
    dtype = logp.dtype if logp.dtype == weights.dtype else result_dtype(logp, weights)
    return loss, (-weights / n).astype(dtype, copy=False)


def policy_gradient_from_dlogp(scores, dlogp, *, loss_divisor: float,
                               num_episodes: float) -> np.ndarray:
    """Turn any loss's ``dlogp`` into an estimate of grad J averaged over episodes.

    g = -(loss_divisor / num_episodes) sum_{t,n} dlogp[t, n] scores[t, n]

    ``loss_divisor`` is the count the loss divided by: ``num_episodes`` given to
    ``policy_gradient_loss`` (then g == ``policy_gradient(scores, w, num_episodes=...)``), or
    ``M = logp.size`` for every loss in ``minirl.objectives.ppo`` and ``.kl``. For the PPO
    losses to estimate grad J of the discounted objective, their ``adv`` must carry gamma^k
    (``advantage_weights``).

    Shapes: ``scores [T, N, P]`` (or ``[B, P]``), ``dlogp [T, N]`` (or ``[B]``); returns ``[P]``.
    """
    scores, dlogp = _scores_and_weights(scores, dlogp)
    c = _positive_count(loss_divisor, "loss_divisor") / _positive_count(num_episodes,
                                                                        "num_episodes")
    return -c * np.einsum("tn,tnp->p", dlogp, scores)
