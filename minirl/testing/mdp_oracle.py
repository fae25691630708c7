"""Exact expectations of gradient estimators on tiny finite MDPs, and hypothesis strategies.

An estimator in ``minirl.objectives.policy_gradient`` maps a batch of trajectories to
``(1/N) sum_i g(tau_i)`` with ``g(tau) = sum_t w_t(tau) grad log pi(a_t|s_t)``. Enumerating every
trajectory ``tau_k`` of a tiny MDP with its probability ``p_k`` (under the sampling policy)
gives the estimator's exact expectation ``sum_k p_k g(tau_k)`` and variance
``sum_k p_k g(tau_k)^2 - (sum_k p_k g(tau_k))^2`` -- to be compared with the exact
``grad J`` from ``minirl.mdp``. The weights are computed by the very functions the agents
use, on a ``[T, K]`` batch holding one enumerated trajectory per column.

The strategies need ``hypothesis`` (a test dependency).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st

from minirl.mdp import (
    FiniteMDP,
    SoftmaxPolicy,
    enumerate_trajectories,
    episode_flags,
    linear_softmax_policy,
    random_mdp,
    sample_trajectories,
    tabular_softmax_policy,
)
from minirl.objectives.policy_gradient import per_episode_gradients

__all__ = [
    "TrajectoryBatch",
    "enumerated_batch",
    "sampled_batch",
    "exact_mean",
    "exact_variance",
    "finite_mdps",
    "policy_cases",
]


@dataclass(frozen=True)
class TrajectoryBatch:
    """One trajectory per column, all of length ``T`` (the MDP's horizon).

    ``states, actions [T, K]`` int; ``rewards [T, K]``; ``terminated, truncated [T, K]``;
    ``scores [T, K, P]`` = grad log pi_theta(a_t|s_t); ``logp [T, K]`` = log pi_theta(a_t|s_t);
    ``logp_old [T, K]`` = log of the sampling (behaviour) policy; ``prob [K]`` = probability
    of each trajectory under the sampling policy (``None`` for sampled batches).
    """

    states: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    scores: np.ndarray
    logp: np.ndarray
    logp_old: np.ndarray
    prob: np.ndarray | None

    def per_episode(self, weights, coordinate_baseline=None) -> np.ndarray:
        """``[K, P]``: each trajectory's ``sum_t (w_t - b) grad log pi(a_t|s_t)``."""
        return per_episode_gradients(self.scores, weights, self.terminated, self.truncated,
                                     coordinate_baseline=coordinate_baseline)

    def at(self, table: np.ndarray) -> np.ndarray:
        """Look up a ``[T, S]`` or ``[T, S, A]`` per-step table along the batch: ``[T, K]``."""
        t = np.arange(self.states.shape[0])[:, None]
        if table.ndim == 2:
            return table[t, self.states]
        return table[t, self.states, self.actions]


def _batch(mdp, policy, theta, behaviour, states, actions, rewards, prob):
    terminated, truncated = episode_flags(mdp.horizon, states.shape[1])
    return TrajectoryBatch(
        states=states, actions=actions, rewards=rewards,
        terminated=terminated, truncated=truncated,
        scores=policy.scores(theta, states, actions),
        logp=policy.logp(theta, states, actions),
        logp_old=np.log(behaviour[states, actions]),
        prob=prob,
    )


def enumerated_batch(mdp: FiniteMDP, policy: SoftmaxPolicy, theta: np.ndarray,
                     behaviour: np.ndarray | None = None) -> TrajectoryBatch:
    """Every trajectory, with its probability under ``behaviour`` (``[S, A]``; default pi_theta)."""
    behaviour = policy.probs(theta) if behaviour is None else np.asarray(behaviour, np.float64)
    states, actions, rewards, prob = enumerate_trajectories(mdp, behaviour)
    return _batch(mdp, policy, theta, behaviour, states, actions, rewards, prob)


def sampled_batch(mdp: FiniteMDP, policy: SoftmaxPolicy, theta: np.ndarray, num: int,
                  rng: np.random.Generator, behaviour: np.ndarray | None = None) -> TrajectoryBatch:
    """``num`` trajectories sampled from ``behaviour`` (default pi_theta)."""
    behaviour = policy.probs(theta) if behaviour is None else np.asarray(behaviour, np.float64)
    states, actions, rewards = sample_trajectories(mdp, behaviour, num, rng)
    return _batch(mdp, policy, theta, behaviour, states, actions, rewards, None)


def exact_mean(per_episode: np.ndarray, prob: np.ndarray) -> np.ndarray:
    """``E[g] = sum_k p_k g_k`` for ``per_episode [K, P]``, ``prob [K]``."""
    return prob @ per_episode


def exact_variance(per_episode: np.ndarray, prob: np.ndarray) -> np.ndarray:
    """Per-coordinate ``Var[g_j] = E[(g_j - E g_j)^2]``, ``[P]``."""
    mean = prob @ per_episode
    return prob @ (per_episode - mean) ** 2


# ---------------------------------------------------------------------------------------------
# Hypothesis strategies
# ---------------------------------------------------------------------------------------------


@st.composite
def finite_mdps(draw, max_states: int = 3, max_actions: int = 3, max_horizon: int = 4,
                max_trajectories: int = 6561, gammas=(1.0, 0.9, 0.5)):
    """Random dense MDPs with ``(S*A)^T <= max_trajectories`` (so they can be enumerated)."""
    S = draw(st.integers(1, max_states))
    A = draw(st.integers(2, max_actions))
    T = draw(st.integers(1, max_horizon))
    while T > 1 and (S * A) ** T > max_trajectories:
        T -= 1
    gamma = draw(st.sampled_from(gammas))
    seed = draw(st.integers(0, 2**32 - 1))
    return random_mdp(np.random.default_rng(seed), S, A, T, gamma)


@st.composite
def policy_cases(draw, max_states: int = 3, max_actions: int = 3, max_horizon: int = 4,
                 max_trajectories: int = 6561, gammas=(1.0, 0.9, 0.5), scale: float = 1.0):
    """``(mdp, policy, theta, behaviour [S, A])``: a tabular or linear-softmax policy.

    ``behaviour`` is a random full-support policy (every entry >= 0.05), independent of theta.
    """
    mdp = draw(finite_mdps(max_states, max_actions, max_horizon, max_trajectories, gammas))
    S, A = mdp.R.shape
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    if draw(st.booleans()):
        policy = tabular_softmax_policy(S, A)
    else:
        policy = linear_softmax_policy(rng.standard_normal((S, draw(st.integers(1, 2)))), A)
    theta = scale * rng.standard_normal(policy.num_params)
    behaviour = 0.05 + (1 - 0.05 * A) * rng.dirichlet(np.ones(A), size=S)
    return mdp, policy, theta, behaviour
