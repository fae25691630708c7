"""Finite MDPs with exact oracles: the ground truth every estimator in minirl is tested against.

A finite-horizon MDP has ``S`` states, ``A`` actions, horizon ``T``, initial distribution
``p0[s]``, transitions ``P[s, a, s'] = p(s'|s, a)``, rewards ``R[s, a] = r(s, a)`` and a discount
``gamma`` (1 for the undiscounted objective of Stanford CS224R "Policy Gradients"; there is
no default: every MDP states its discount). Trajectories are
``tau = (s_0, a_0, ..., s_{T-1}, a_{T-1})`` with

    p_theta(tau) = p0(s_0) prod_t pi_theta(a_t|s_t) p(s_{t+1}|s_t, a_t)
    J(theta)     = E_{tau ~ p_theta}[ sum_{t=0}^{T-1} gamma^t r(s_t, a_t) ]

Exact quantities (Stanford CS224R, "Revisiting some useful objects"; Stanford CS234 "Lecture 6:
Policy Gradient II", "Performance difference lemma"), all by backward/forward dynamic
programming over ``t = 0..T-1``:

    Q_t(s, a) = r(s, a) + gamma sum_s' p(s'|s, a) V_{t+1}(s'),   V_T = 0
    V_t(s)    = sum_a pi(a|s) Q_t(s, a),   A_t(s, a) = Q_t(s, a) - V_t(s)
    d_0 = p0,  d_{t+1}(s') = sum_{s,a} d_t(s) pi(a|s) p(s'|s, a)
    J = sum_s p0(s) V_0(s)

The tabular control algorithms (value iteration, Q-value iteration as in the "fitted Q
iteration with the MDP" example of CS224R's Q-learning tutorial, policy iteration) solve the *infinite-horizon*
discounted problem (``gamma < 1``, the horizon is ignored); ``backward_induction`` solves the
finite-horizon one.

Policies are time-independent softmax policies linear in their parameters,
``logits[s, a] = features[s, a, :] @ theta``: the tabular softmax has one-hot features, the
linear softmax over state features has ``features[s, a] = onehot(a) (x) phi(s)``.
Their score is ``grad log pi(a|s) = features[s, a] - sum_b pi(b|s) features[s, b]``.

Everything here is float64 NumPy: it is an oracle, not a fast path.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

__all__ = [
    "FiniteMDP",
    "random_mdp",
    "SoftmaxPolicy",
    "tabular_softmax_policy",
    "linear_softmax_policy",
    "policy_evaluation",
    "state_distributions",
    "exact_objective",
    "exact_gradient",
    "finite_difference_gradient",
    "performance_difference",
    "surrogate_objective",
    "clipped_surrogate_objective",
    "mean_state_kl",
    "log_state_ratios",
    "enumerate_trajectories",
    "sample_trajectories",
    "episode_flags",
    "backward_induction",
    "bellman_optimality_residual",
    "q_value_iteration",
    "value_iteration",
    "policy_iteration",
    "infinite_horizon_values",
    "infinite_horizon_objective",
    "deterministic_policies",
]


# ---------------------------------------------------------------------------------------------
# The MDP
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FiniteMDP:
    """A finite MDP ``(p0, P, R, T, gamma)``; arrays are float64 and validated.

    Shapes: ``p0 [S]``, ``P [S, A, S]`` (``P[s, a, s'] = p(s'|s, a)``), ``R [S, A]``.
    ``horizon`` is ``T`` for the finite-horizon quantities; ``gamma`` in [0, 1].
    """

    p0: np.ndarray
    P: np.ndarray
    R: np.ndarray
    horizon: int
    gamma: float

    def __post_init__(self):
        p0 = np.asarray(self.p0, dtype=np.float64)
        P = np.asarray(self.P, dtype=np.float64)
        R = np.asarray(self.R, dtype=np.float64)
        if p0.ndim != 1 or P.ndim != 3 or R.ndim != 2:
            raise ValueError("p0 must be [S], P [S, A, S] and R [S, A]")
        S, A = R.shape
        if p0.shape != (S,) or P.shape != (S, A, S):
            raise ValueError(f"inconsistent shapes p0 {p0.shape}, P {P.shape}, R {R.shape}")
        for name, x in (("p0", p0), ("P", P), ("R", R)):
            if not np.isfinite(x).all():
                raise ValueError(f"{name} contains NaN or inf")
        if (p0 < 0).any() or abs(p0.sum() - 1.0) > 1e-12:
            raise ValueError("p0 must be a probability vector")
        if (P < 0).any() or np.abs(P.sum(-1) - 1.0).max() > 1e-12:
            raise ValueError("P[s, a, :] must be probability vectors")
        if isinstance(self.horizon, bool) or not isinstance(self.horizon, (int, np.integer)) \
                or self.horizon < 1:
            raise ValueError(f"horizon must be an integer >= 1, got {self.horizon!r}")
        if not 0.0 <= float(self.gamma) <= 1.0:
            raise ValueError(f"gamma must be in [0, 1], got {self.gamma}")
        object.__setattr__(self, "p0", p0)
        object.__setattr__(self, "P", P)
        object.__setattr__(self, "R", R)
        object.__setattr__(self, "horizon", int(self.horizon))
        object.__setattr__(self, "gamma", float(self.gamma))

    @property
    def num_states(self) -> int:
        return self.R.shape[0]

    @property
    def num_actions(self) -> int:
        return self.R.shape[1]


def random_mdp(
    rng: np.random.Generator,
    num_states: int,
    num_actions: int,
    horizon: int,
    gamma: float,
    *,
    concentration: float = 1.0,
) -> FiniteMDP:
    """A random dense MDP: ``p0`` and every ``P[s, a]`` ~ Dirichlet(concentration), ``R ~ N(0, 1)``.

    Dense transitions give every trajectory positive probability, which the
    importance-sampling tests need (full support).
    """
    S, A = int(num_states), int(num_actions)
    p0 = rng.dirichlet(np.full(S, concentration))
    P = rng.dirichlet(np.full(S, concentration), size=(S, A))
    R = rng.standard_normal((S, A))
    return FiniteMDP(p0=p0, P=P, R=R, horizon=horizon, gamma=gamma)


# ---------------------------------------------------------------------------------------------
# Policies
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SoftmaxPolicy:
    """Time-independent softmax policy ``pi_theta(a|s) = softmax_a(features[s, a] @ theta)``.

    ``features [S, A, P]``; ``theta [P]``. ``probs``/``log_probs`` are ``[S, A]``;
    ``score_table`` is ``[S, A, P]`` with ``score_table[s, a] = grad_theta log pi(a|s)``.
    """

    features: np.ndarray

    def __post_init__(self):
        f = np.asarray(self.features, dtype=np.float64)
        if f.ndim != 3:
            raise ValueError(f"features must be [S, A, P], got shape {f.shape}")
        object.__setattr__(self, "features", f)

    @property
    def num_params(self) -> int:
        return self.features.shape[2]

    def logits(self, theta: np.ndarray) -> np.ndarray:
        """``[S, A]`` logits ``features @ theta``."""
        theta = np.asarray(theta, dtype=np.float64)
        if theta.shape != (self.num_params,):
            raise ValueError(f"theta must have shape ({self.num_params},), got {theta.shape}")
        return self.features @ theta

    def log_probs(self, theta: np.ndarray) -> np.ndarray:
        """``[S, A]`` log pi(a|s) (a stable log-softmax)."""
        z = self.logits(theta)
        z = z - z.max(axis=1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=1, keepdims=True))

    def probs(self, theta: np.ndarray) -> np.ndarray:
        """``[S, A]`` pi(a|s)."""
        return np.exp(self.log_probs(theta))

    def score_table(self, theta: np.ndarray) -> np.ndarray:
        """``[S, A, P]``: ``grad log pi(a|s) = features[s, a] - sum_b pi(b|s) features[s, b]``."""
        pi = self.probs(theta)
        mean_f = np.einsum("sb,sbp->sp", pi, self.features)
        return self.features - mean_f[:, None, :]

    def scores(self, theta, states, actions) -> np.ndarray:
        """Per-step score vectors ``[T, N, P]`` for integer ``states``/``actions`` ``[T, N]``."""
        return self.score_table(theta)[states, actions]

    def logp(self, theta, states, actions) -> np.ndarray:
        """``[T, N]`` log pi(a_t|s_t)."""
        return self.log_probs(theta)[states, actions]


def tabular_softmax_policy(num_states: int, num_actions: int) -> SoftmaxPolicy:
    """Tabular softmax: ``theta`` is the flattened ``[S, A]`` logit table (``P = S*A``)."""
    S, A = int(num_states), int(num_actions)
    return SoftmaxPolicy(np.eye(S * A).reshape(S, A, S * A))


def linear_softmax_policy(state_features: np.ndarray, num_actions: int) -> SoftmaxPolicy:
    """Linear softmax over state features: ``logits[s, a] = W[a] @ phi(s)``, ``theta = W.ravel()``.

    ``state_features [S, F]`` (``phi``); ``theta [A*F]`` is ``W [A, F]`` flattened row-major.
    """
    phi = np.asarray(state_features, dtype=np.float64)
    if phi.ndim != 2:
        raise ValueError(f"state_features must be [S, F], got shape {phi.shape}")
    A = int(num_actions)
    S, F = phi.shape
    feats = np.einsum("ab,sf->sabf", np.eye(A), phi).reshape(S, A, A * F)
    return SoftmaxPolicy(feats)


# ---------------------------------------------------------------------------------------------
# Exact finite-horizon evaluation
# ---------------------------------------------------------------------------------------------


def _check_probs(mdp: FiniteMDP, pi: np.ndarray, name: str = "pi") -> np.ndarray:
    """A policy table ``[S, A]`` whose rows are probability vectors, else ValueError naming it."""
    pi = np.asarray(pi, dtype=np.float64)
    if pi.shape != (mdp.num_states, mdp.num_actions):
        raise ValueError(f"{name} must be an [S, A] = {mdp.R.shape} table, got {pi.shape}")
    if not np.isfinite(pi).all() or (pi < 0).any():
        raise ValueError(f"{name} must hold finite probabilities >= 0")
    dev = np.abs(pi.sum(axis=1) - 1.0).max()
    if dev > 1e-9:
        raise ValueError(f"every row of {name} must sum to 1 (off by up to {dev:.3g})")
    return pi


def policy_evaluation(mdp: FiniteMDP, pi: np.ndarray):
    """Exact finite-horizon ``Q^pi, V^pi, A^pi`` for every step by backward induction.

    Q_t(s, a) = r(s, a) + gamma sum_s' p(s'|s, a) V_{t+1}(s'),  V_T = 0,
    V_t(s) = sum_a pi(a|s) Q_t(s, a),  A_t = Q_t - V_t.

    Lecture: Stanford CS224R ("Revisiting some useful objects": V, Q, A). ``pi [S, A]``.
    Returns ``Q [T, S, A]``, ``V [T, S]``, ``A [T, S, A]``.
    """
    pi = _check_probs(mdp, pi)
    T, (S, A) = mdp.horizon, mdp.R.shape
    Q = np.empty((T, S, A))
    V = np.empty((T, S))
    v_next = np.zeros(S)
    for t in range(T - 1, -1, -1):
        Q[t] = mdp.R + mdp.gamma * mdp.P @ v_next
        V[t] = (pi * Q[t]).sum(axis=1)
        v_next = V[t]
    return Q, V, Q - V[:, :, None]


def state_distributions(mdp: FiniteMDP, pi: np.ndarray) -> np.ndarray:
    """``d [T, S]`` with ``d_t(s) = P(s_t = s)`` under ``pi`` (forward recursion from ``p0``)."""
    pi = _check_probs(mdp, pi)
    d = np.empty((mdp.horizon, mdp.num_states))
    d[0] = mdp.p0
    for t in range(1, mdp.horizon):
        d[t] = np.einsum("s,sa,sax->x", d[t - 1], pi, mdp.P)
    return d


def exact_objective(mdp: FiniteMDP, pi: np.ndarray) -> float:
    """``J(pi) = E[sum_{t<T} gamma^t r(s_t, a_t)] = sum_s p0(s) V_0(s)``. Lecture: CS224R "Policy Gradients", "Evaluating the RL objective"."""
    _, V, _ = policy_evaluation(mdp, pi)
    return float(mdp.p0 @ V[0])


def exact_gradient(mdp: FiniteMDP, policy: SoftmaxPolicy, theta: np.ndarray, *,
                   step_discount: bool = True) -> np.ndarray:
    """Analytic ``grad J`` by the policy-gradient theorem (used as a cross-check of the FD one).

    grad J = sum_t gamma^t sum_s d_t(s) sum_a pi(a|s) grad log pi(a|s) Q_t(s, a).

    ``step_discount=False`` drops the gamma^t factor: the exact expectation of the estimators
    that omit it (``reward_to_go_weights(..., step_discount=False)``, or the PPO losses fed
    A^pi without gamma^t). For gamma < 1 that vector field is biased and in general not the
    gradient of any function of theta (Nota & Thomas 2020, arXiv:1906.07073).

    Lecture: Stanford CS234 "Policy Gradient II" (g = E[sum_t gamma^t grad log pi A]).
    Returns ``[P]``.
    """
    pi = policy.probs(theta)
    Q, _, _ = policy_evaluation(mdp, pi)
    d = state_distributions(mdp, pi)
    disc = mdp.gamma ** np.arange(mdp.horizon) if step_discount else np.ones(mdp.horizon)
    return np.einsum("t,ts,sa,sap,tsa->p", disc, d, pi, policy.score_table(theta), Q)


def finite_difference_gradient(f, theta: np.ndarray, eps: float = 1e-4) -> np.ndarray:
    """Fourth-order central differences of a scalar ``f`` at ``theta`` (float64).

    g_i = (-f(x+2h) + 8 f(x+h) - 8 f(x-h) + f(x-2h)) / (12 h); truncation error O(h^4),
    so with ``h = 1e-4`` the smooth oracles here agree with analytic gradients to ~1e-12.
    """
    if not (np.isfinite(eps) and eps > 0):
        raise ValueError(f"eps must be positive and finite, got {eps}")
    theta = np.array(theta, dtype=np.float64, copy=True)
    g = np.empty_like(theta)
    for i in range(theta.size):
        vals = []
        for k in (2, 1, -1, -2):
            x = theta.copy()
            x[i] += k * eps
            vals.append(float(f(x)))
        g[i] = (-vals[0] + 8 * vals[1] - 8 * vals[2] + vals[3]) / (12 * eps)
    return g


def performance_difference(mdp: FiniteMDP, pi_new: np.ndarray, pi_old: np.ndarray) -> float:
    """Right side of the performance difference lemma, exactly.

    J(pi') - J(pi) = E_{tau ~ pi'}[ sum_t gamma^t A^pi_t(s_t, a_t) ]
                   = sum_t gamma^t sum_s d^{pi'}_t(s) sum_a pi'(a|s) A^pi_t(s, a).

    Lecture: CS234 "Policy Gradient II", "Performance difference lemma"; Kakade & Langford (2002).
    ``pi_new``/``pi_old`` are ``[S, A]`` tables.
    """
    pi_new = _check_probs(mdp, pi_new, "pi_new")
    _, _, A = policy_evaluation(mdp, _check_probs(mdp, pi_old, "pi_old"))
    d = state_distributions(mdp, pi_new)
    disc = mdp.gamma ** np.arange(mdp.horizon)
    return float(np.einsum("t,ts,sa,tsa->", disc, d, pi_new, A))


def surrogate_objective(mdp: FiniteMDP, pi_new: np.ndarray, pi_old: np.ndarray) -> float:
    """The local surrogate ``L_pi(pi')`` with the *old* state distribution, exactly.

    L_pi(pi') = E_{tau ~ pi}[ sum_t gamma^t pi'(a_t|s_t)/pi(a_t|s_t) A^pi_t(s_t, a_t) ]
              = sum_t gamma^t sum_s d^pi_t(s) sum_a pi'(a|s) A^pi_t(s, a).

    Lecture: CS234 "Policy Gradient II", "What did we gain from making that approximation?";
    Schulman et al. (2015), arXiv:1502.05477.
    It agrees with ``J(pi') - J(pi)`` to first order: ``grad L_pi(pi')|_{pi'=pi} = grad J``.
    It is also the limit of the per-step ("common final form") off-policy estimator with
    behaviour policy ``pi``.
    """
    pi_new = _check_probs(mdp, pi_new, "pi_new")
    _, _, A = policy_evaluation(mdp, _check_probs(mdp, pi_old, "pi_old"))
    d = state_distributions(mdp, pi_old)
    disc = mdp.gamma ** np.arange(mdp.horizon)
    return float(np.einsum("t,ts,sa,tsa->", disc, d, pi_new, A))


def clipped_surrogate_objective(mdp: FiniteMDP, pi_new: np.ndarray, pi_old: np.ndarray,
                                clip_eps: float, *, pessimistic: bool = True) -> float:
    """The expectation of PPO's clipped surrogate (or CS224R's "Trick #1") exactly.

    L(pi') = sum_t gamma^t sum_s d^old_t(s) sum_a pi_old(a|s) f(r(s, a), A^old_t(s, a)),
    r = pi'(a|s)/pi_old(a|s),
    f = min(r A, clip(r, 1-eps, 1+eps) A)   (``pessimistic=True``, L^CLIP)
    f = clip(r, 1-eps, 1+eps) A             (``pessimistic=False``, "Trick #1")

    the exact mean of the sampled objective whose per-sample advantage is gamma^t A^old_t.
    Lecture: CS234 "Policy Gradient II", "Clipped Objective"; CS224R "Proximal Policy
    Optimization (PPO)", "Trick #1: Clip the importance weights" and "Trick #2: Take minimum".
    """
    pi_new = _check_probs(mdp, pi_new, "pi_new")
    pi_old = _check_probs(mdp, pi_old, "pi_old")
    eps = float(clip_eps)
    if not 0.0 < eps < 1.0:
        raise ValueError(f"clip_eps must be in (0, 1), got {clip_eps}")
    _, _, A = policy_evaluation(mdp, pi_old)
    d = state_distributions(mdp, pi_old)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(pi_old > 0, pi_new / pi_old, 1.0)
    rA = r[None] * A
    f = np.clip(r, 1.0 - eps, 1.0 + eps)[None] * A
    if pessimistic:
        f = np.minimum(rA, f)
    disc = mdp.gamma ** np.arange(mdp.horizon)
    return float(np.einsum("t,ts,sa,tsa->", disc, d, pi_old, f))


KL_DIRECTIONS = ("old_new", "new_old")


def mean_state_kl(mdp: FiniteMDP, pi_new: np.ndarray, pi_old: np.ndarray,
                  direction: str) -> float:
    """The state-averaged KL between two policies, states from the *old* policy, exactly.

    D = (1/T) sum_{t<T} sum_s d^old_t(s) KL_s,  with
    KL_s = KL(pi_old(.|s) || pi_new(.|s))   (``direction="old_new"``; CS234's PPO penalty
                                            D_KL(theta || theta_k) = E_{s~d^{pi_k}} KL(pi_k, pi_theta))
    KL_s = KL(pi_new(.|s) || pi_old(.|s))   (``direction="new_old"``; CS224R "Policy Gradients"
                                            E_{s~pi_theta}[D_KL(pi_theta'(.|s) || pi_theta(.|s))])

    ``d^old_t`` is the state distribution of ``pi_old`` at step t (the 1/T average is over the
    steps a length-T rollout visits). Returns +inf where the support condition fails.
    """
    if direction not in KL_DIRECTIONS:
        raise ValueError(f"direction must be one of {KL_DIRECTIONS}, got {direction!r}")
    pi_new = _check_probs(mdp, pi_new, "pi_new")
    pi_old = _check_probs(mdp, pi_old, "pi_old")
    p, q = (pi_old, pi_new) if direction == "old_new" else (pi_new, pi_old)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * (np.log(p) - np.log(q)), 0.0)
    kl_s = terms.sum(axis=1)
    d = state_distributions(mdp, pi_old)
    return float(d.sum(axis=0) @ kl_s) / mdp.horizon


def log_state_ratios(mdp: FiniteMDP, pi_new: np.ndarray, pi_old: np.ndarray) -> np.ndarray:
    """``[T, S]``: log d^new_t(s) - log d^old_t(s), the exact log state-marginal ratio.

    -inf where only the new policy cannot reach s at step t; +inf where only the old one
    cannot (importance sampling is then impossible); 0 where neither can (never looked up).
    With ``pi_new``'s action ratio it gives the state-action marginal ratio
    p_new(s_t, a_t)/p_old(s_t, a_t) of CS224R "Policy Gradients" (per-time-step importance
    sampling before the "common final form" sets the state part to 1).
    """
    d_new = state_distributions(mdp, _check_probs(mdp, pi_new, "pi_new"))
    d_old = state_distributions(mdp, _check_probs(mdp, pi_old, "pi_old"))
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.log(d_new) - np.log(d_old)
    return np.where((d_new == 0) & (d_old == 0), 0.0, out)


# ---------------------------------------------------------------------------------------------
# Trajectories: exact enumeration and sampling
# ---------------------------------------------------------------------------------------------


def enumerate_trajectories(mdp: FiniteMDP, pi: np.ndarray):
    """Every trajectory of length ``T`` with its probability under ``pi``.

    p(tau) = p0(s_0) prod_{t<T} pi(a_t|s_t) prod_{t<T-1} p(s_{t+1}|s_t, a_t)

    There are ``K = (S*A)^T`` of them (keep ``S, A <= 3, T <= 4``: K <= 6561). Returns
    ``states [T, K]`` (int), ``actions [T, K]`` (int), ``rewards [T, K]`` and ``prob [K]``
    (sums to 1). The column order does not depend on ``pi``, so two calls with different
    policies enumerate the same trajectories in the same order.
    """
    pi = _check_probs(mdp, pi)
    T, (S, A) = mdp.horizon, mdp.R.shape
    K = (S * A) ** T
    if K > 200_000:
        raise ValueError(f"(S*A)^T = {K} trajectories is too many to enumerate")
    sa = np.array(list(itertools.product(range(S * A), repeat=T)), dtype=np.int64).T  # [T, K]
    states, actions = sa // A, sa % A
    logp = np.log(mdp.p0[states[0]])
    with np.errstate(divide="ignore"):
        logp = logp + np.log(pi[states, actions]).sum(axis=0)
        logp = logp + np.log(mdp.P[states[:-1], actions[:-1], states[1:]]).sum(axis=0)
    return states, actions, mdp.R[states, actions], np.exp(logp)


def sample_trajectories(mdp: FiniteMDP, pi: np.ndarray, num: int, rng: np.random.Generator):
    """Sample ``num`` independent trajectories of length ``T`` under ``pi`` (inverse-CDF draws).

    Returns ``states [T, N]``, ``actions [T, N]``, ``rewards [T, N]``.
    """
    pi = _check_probs(mdp, pi)
    T, N = mdp.horizon, int(num)
    states = np.empty((T, N), dtype=np.int64)
    actions = np.empty((T, N), dtype=np.int64)

    def draw(p):  # p [N, K] rows of probabilities -> [N] indices
        u = rng.random(p.shape[0])[:, None]
        idx = (np.cumsum(p, axis=1) < u).sum(axis=1)
        return np.minimum(idx, p.shape[1] - 1)

    s = draw(np.broadcast_to(mdp.p0, (N, mdp.num_states)))
    for t in range(T):
        a = draw(pi[s])
        states[t], actions[t] = s, a
        if t + 1 < T:
            s = draw(mdp.P[s, a])
    return states, actions, mdp.R[states, actions]


def episode_flags(horizon: int, num: int):
    """``terminated, truncated`` ``[T, N]`` for fixed-horizon episodes: the last step terminates.

    The horizon is the end of the finite-horizon problem (there is no value after it), so it is
    a termination, not a truncation.
    """
    terminated = np.zeros((horizon, num), dtype=bool)
    terminated[-1] = True
    return terminated, np.zeros((horizon, num), dtype=bool)


# ---------------------------------------------------------------------------------------------
# Control: optimal values and policies
# ---------------------------------------------------------------------------------------------


def backward_induction(mdp: FiniteMDP):
    """Finite-horizon optimal ``Q*_t, V*_t`` and the greedy (time-dependent) ``pi*_t``.

    Q*_t(s, a) = r(s, a) + gamma sum_s' p(s'|s, a) max_a' Q*_{t+1}(s', a'),  Q*_T = 0.

    Lecture: CS224R Q-learning tutorial ("Bellman optimality equation"). Returns ``Q [T, S, A]``, ``V [T, S]``,
    ``greedy [T, S]`` (action indices).
    """
    T, (S, A) = mdp.horizon, mdp.R.shape
    Q = np.empty((T, S, A))
    v_next = np.zeros(S)
    for t in range(T - 1, -1, -1):
        Q[t] = mdp.R + mdp.gamma * mdp.P @ v_next
        v_next = Q[t].max(axis=1)
    return Q, Q.max(axis=2), Q.argmax(axis=2)


def bellman_optimality_residual(mdp: FiniteMDP, Q: np.ndarray) -> float:
    """``max |B Q - Q|`` with ``(B Q)(s, a) = r(s, a) + gamma sum_s' p(s'|s, a) max_a' Q(s', a')``."""
    return float(np.abs(mdp.R + mdp.gamma * mdp.P @ Q.max(axis=1) - Q).max())


def _require_discount(mdp: FiniteMDP) -> None:
    if not mdp.gamma < 1.0:
        raise ValueError("the infinite-horizon solvers need gamma < 1 (they ignore the horizon)")


def q_value_iteration(mdp: FiniteMDP, tol: float = 1e-12, max_iter: int = 100_000, Q0=None):
    """Tabular Q-value iteration for the infinite-horizon discounted MDP.

    Q_{k+1}(s, a) = sum_s' p(s'|s, a) ( r(s, a) + gamma max_a' Q_k(s', a') )

    Lecture: CS224R Q-learning tutorial ("Tabular learning - fitted Q iteration", "Q-value
    iteration"); the update is a gamma-contraction in max-norm, so it stops when ``max|Q_{k+1} - Q_k| <= tol (1 - gamma)``,
    which bounds ``|Q_k - Q*| <= tol``. Returns ``Q* [S, A]``, ``V* [S]``, greedy ``pi* [S]``
    and the number of iterations.
    """
    _require_discount(mdp)
    Q = np.zeros_like(mdp.R) if Q0 is None else np.array(Q0, dtype=np.float64)
    for k in range(1, max_iter + 1):
        Q_new = mdp.R + mdp.gamma * mdp.P @ Q.max(axis=1)
        done = np.abs(Q_new - Q).max() <= tol * (1.0 - mdp.gamma)
        Q = Q_new
        if done:
            break
    return Q, Q.max(axis=1), Q.argmax(axis=1), k


def value_iteration(mdp: FiniteMDP, tol: float = 1e-12, max_iter: int = 100_000):
    """State-value iteration ``V_{k+1}(s) = max_a [r(s, a) + gamma sum_s' p(s'|s, a) V_k(s')]``.

    Lecture: CS224R Q-learning tutorial ("Bellman optimality equation"). Returns ``Q* [S, A]``, ``V* [S]``,
    greedy ``pi* [S]``, iterations.
    """
    _require_discount(mdp)
    V = np.zeros(mdp.num_states)
    for k in range(1, max_iter + 1):
        V_new = (mdp.R + mdp.gamma * mdp.P @ V).max(axis=1)
        done = np.abs(V_new - V).max() <= tol * (1.0 - mdp.gamma)
        V = V_new
        if done:
            break
    Q = mdp.R + mdp.gamma * mdp.P @ V
    return Q, Q.max(axis=1), Q.argmax(axis=1), k


def infinite_horizon_values(mdp: FiniteMDP, pi: np.ndarray):
    """Exact infinite-horizon ``Q^pi [S, A]`` and ``V^pi [S]``: ``V = (I - gamma P_pi)^{-1} r_pi``."""
    _require_discount(mdp)
    pi = _check_probs(mdp, pi)
    P_pi = np.einsum("sa,sax->sx", pi, mdp.P)
    r_pi = (pi * mdp.R).sum(axis=1)
    V = np.linalg.solve(np.eye(mdp.num_states) - mdp.gamma * P_pi, r_pi)
    return mdp.R + mdp.gamma * mdp.P @ V, V


def infinite_horizon_objective(mdp: FiniteMDP, pi: np.ndarray) -> float:
    """``J(pi) = sum_s p0(s) V^pi(s)`` for the infinite-horizon discounted problem."""
    return float(mdp.p0 @ infinite_horizon_values(mdp, pi)[1])


def policy_iteration(mdp: FiniteMDP, max_iter: int = 1_000):
    """Exact policy iteration: evaluate ``Q^pi`` by a linear solve, act greedily, repeat.

    Lecture: CS224R Q-learning tutorial ("Policy iteration": policy evaluation <-> policy improvement
    ``pi'(s) = argmax_a Q^pi(s, a)``). Stops when the greedy policy is stable (finitely many
    deterministic policies, so it terminates). Returns ``Q* [S, A]``, ``V* [S]``, ``pi* [S]``,
    iterations.
    """
    _require_discount(mdp)
    S, A = mdp.R.shape
    greedy = np.zeros(S, dtype=np.int64)
    for k in range(1, max_iter + 1):
        Q, V = infinite_horizon_values(mdp, np.eye(A)[greedy])
        # Keep the current action on ties so the loop cannot cycle between equal-valued actions.
        best = Q.max(axis=1)
        improved = np.where(Q[np.arange(S), greedy] >= best - 1e-12, greedy, Q.argmax(axis=1))
        if np.array_equal(improved, greedy):
            return Q, V, greedy, k
        greedy = improved
    raise RuntimeError("policy iteration did not converge")


def deterministic_policies(num_states: int, num_actions: int):
    """All ``A^S`` deterministic stationary policies as ``[S, A]`` one-hot tables."""
    eye = np.eye(num_actions)
    for choice in itertools.product(range(num_actions), repeat=num_states):
        yield eye[list(choice)]
