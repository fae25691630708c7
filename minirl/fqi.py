"""Fitted Q iteration (FQI) on finite MDPs, checked against exact Q-value iteration.

FQI repeats a regression onto bootstrapped targets computed from a FIXED dataset of
transitions ``(s_i, a_i, r_i, s'_i, terminated_i)`` with sample weights ``w_i``::

    y_i      = r_i + gamma * (1 - terminated_i) * max_a' Q_k(s'_i, a')
    Q_{k+1}  = argmin_Q sum_i w_i (Q(s_i, a_i) - y_i)^2

With a tabular Q (one-hot features) the least-squares fit is the weighted mean of the targets
of each visited pair: ``Q_{k+1}(s, a) = sum_{i: (s_i,a_i)=(s,a)} w_i y_i / sum_i w_i``
(unvisited pairs keep ``Q_k``; with the default ``Q_0 = 0`` they stay 0). That is Q-value
iteration on the dataset's empirical MDP ``p_hat(s'|s, a)``, ``r_hat(s, a)``, a gamma-contraction,
so FQI converges to that MDP's Q*; with the exact dataset (every s' weighted by p(s'|s, a)) it is
the lecture's update

    Q_{k+1}(s, a) = sum_s' p(s'|s, a) ( r(s, a) + gamma max_a' Q_k(s', a') )

and converges to ``minirl.mdp.q_value_iteration``'s Q*.

``grid_mdp`` builds the tutorial's kind of example: a small grid, gamma = 0.9, a +1 goal and a
-1 pit that end the episode (through an absorbing state), slippery moves; ``fqi_example`` returns
Q*, V*, the greedy policy and the optimal advantages ``A*(s, a) = Q*(s, a) - V*(s) <= 0``.

Lecture: Stanford CS224R Q-learning tutorial, "Tabular Learning - Fitted Q Iteration",
"Fitted Q Iteration with the MDP" (discount 0.9), "Optimal Value, Q-Value, Policy",
"Advantage (Optimal Policy)". Paper: Ernst, Geurts & Wehenkel (2005), "Tree-Based Batch Mode
Reinforcement Learning", JMLR 6 (fitted Q iteration); Riedmiller (2005), "Neural Fitted Q
Iteration".
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from minirl.mdp import FiniteMDP

__all__ = ["TransitionData", "grid_mdp", "exact_dataset", "sample_dataset", "empirical_mdp",
           "fitted_q_iteration", "optimal_advantages", "fqi_example", "GRID_ACTIONS"]

GRID_ACTIONS = ("up", "right", "down", "left")
_MOVES = ((-1, 0), (0, 1), (1, 0), (0, -1))


class TransitionData(NamedTuple):
    """A fixed dataset of M transitions on a finite MDP (integer states and actions)."""

    states: np.ndarray        # [M] int64
    actions: np.ndarray       # [M] int64
    rewards: np.ndarray       # [M] float64
    next_states: np.ndarray   # [M] int64
    terminated: np.ndarray    # [M] bool: no bootstrap from s'
    weights: np.ndarray       # [M] float64 > 0 (sample weights; 1 for sampled data)


def grid_mdp(rows: int = 3, cols: int = 4, goal=(0, 3), pit=(1, 3), walls=((1, 1),),
             slip: float = 0.2, gamma: float = 0.9, start=(2, 0)) -> tuple[FiniteMDP, dict]:
    """A slippery grid world as a ``FiniteMDP`` plus ``info`` (cell <-> state maps).

    States: the free cells (row-major, walls excluded) and one absorbing state ``S - 1``.
    Actions: up, right, down, left; the intended move happens with probability ``1 - slip``,
    each perpendicular move with ``slip / 2``; moving into a wall or off the grid stays put.
    In the goal (pit) cell every action earns +1 (-1) and leads to the absorbing state, which
    earns 0 forever: an episode ends there (``info["terminal"]`` lists the absorbing state).
    """
    if not 0.0 <= slip <= 1.0:
        raise ValueError(f"slip must be in [0, 1], got {slip}")
    walls = {tuple(w) for w in walls}
    cells = [(r, c) for r in range(rows) for c in range(cols) if (r, c) not in walls]
    index = {cell: i for i, cell in enumerate(cells)}
    for name, cell in (("goal", goal), ("pit", pit), ("start", start)):
        if tuple(cell) not in index:
            raise ValueError(f"{name} {cell} is not a free cell of the {rows}x{cols} grid")
    S, A = len(cells) + 1, 4
    absorbing = S - 1
    P = np.zeros((S, A, S))
    R = np.zeros((S, A))
    for (r, c), s in index.items():
        if (r, c) in (tuple(goal), tuple(pit)):
            R[s, :] = 1.0 if (r, c) == tuple(goal) else -1.0
            P[s, :, absorbing] = 1.0
            continue
        for a in range(A):
            for move, p in ((a, 1.0 - slip), ((a + 1) % 4, slip / 2), ((a + 3) % 4, slip / 2)):
                dr, dc = _MOVES[move]
                nxt = (r + dr, c + dc)
                P[s, a, index.get(nxt, s)] += p
    P[absorbing, :, absorbing] = 1.0
    p0 = np.zeros(S)
    p0[index[tuple(start)]] = 1.0
    info = {"cells": cells, "index": index, "terminal": [absorbing], "shape": (rows, cols)}
    return FiniteMDP(p0=p0, P=P, R=R, horizon=1, gamma=gamma), info


def exact_dataset(mdp: FiniteMDP, terminal=()) -> TransitionData:
    """Every ``(s, a, s')`` with ``p(s'|s, a) > 0`` once, weighted by ``p(s'|s, a)``; transitions
    into a ``terminal`` state are marked terminated (its value is 0 anyway)."""
    s, a, s2 = np.nonzero(mdp.P)
    return TransitionData(s.astype(np.int64), a.astype(np.int64), mdp.R[s, a], s2.astype(np.int64),
                          np.isin(s2, list(terminal)), mdp.P[s, a, s2])


def sample_dataset(mdp: FiniteMDP, per_pair: int, rng: np.random.Generator,
                   terminal=()) -> TransitionData:
    """``per_pair`` sampled transitions ``s' ~ p(.|s, a)`` for every pair (s, a), weights 1."""
    if isinstance(per_pair, bool) or not isinstance(per_pair, (int, np.integer)) or per_pair < 1:
        raise ValueError(f"per_pair must be a positive integer, got {per_pair!r}")
    S, A = mdp.R.shape
    s = np.repeat(np.arange(S), A * per_pair)
    a = np.tile(np.repeat(np.arange(A), per_pair), S)
    cdf = np.cumsum(mdp.P[s, a], axis=1)
    u = rng.random(s.size)[:, None]
    s2 = np.minimum((cdf <= u * cdf[:, -1:]).sum(axis=1), S - 1)
    return TransitionData(s, a, mdp.R[s, a], s2, np.isin(s2, list(terminal)), np.ones(s.size))


def empirical_mdp(data: TransitionData, num_states: int, num_actions: int, gamma: float,
                  absorb_terminated: bool = True) -> FiniteMDP:
    """The MDP the dataset defines: ``p_hat(s'|s,a)``, ``r_hat(s,a)`` as weighted frequencies.

    Every pair must be visited. A terminated transition leads to an extra absorbing state of
    value 0 (the MDP then has ``num_states + 1`` states), which is what "no bootstrap" means.
    """
    S, A = num_states, num_actions
    S_all = S + 1 if absorb_terminated else S
    sa = data.states * A + data.actions
    w = data.weights
    total = np.bincount(sa, weights=w, minlength=S * A)
    if (total <= 0).any():
        raise ValueError("every (s, a) pair must appear in the dataset")
    nxt = np.where(data.terminated, S, data.next_states) if absorb_terminated else data.next_states
    P = np.zeros((S_all * A, S_all))
    np.add.at(P, (sa, nxt), w)
    P[:S * A] /= total[:, None]
    R = np.zeros((S_all, A))
    R[:S] = (np.bincount(sa, weights=w * data.rewards, minlength=S * A) / total).reshape(S, A)
    P = P.reshape(S_all, A, S_all)
    if absorb_terminated:
        P[S, :, S] = 1.0
    p0 = np.full(S_all, 1.0 / S_all)
    return FiniteMDP(p0=p0, P=P, R=R, horizon=1, gamma=gamma)


def fitted_q_iteration(data: TransitionData, num_states: int, num_actions: int, gamma: float,
                       num_iters: int = 1000, tol: float = 1e-12, Q0=None):
    """Tabular fitted Q iteration on a fixed dataset (see the module docstring).

    Each iteration is one regression: targets ``y_i = r_i + gamma (1 - term_i) max_a' Q_k(s'_i,
    a')`` for the whole dataset, then ``Q_{k+1}(s, a)`` = the weighted mean of the targets of
    pair (s, a) (its least-squares fit). Stops when ``max |Q_{k+1} - Q_k| <= tol (1 - gamma)``
    (then ``|Q_k - Q_hat*| <= tol``) or after ``num_iters``.

    Shapes: the dataset's arrays ``[M]``; returns ``(Q [S, A], V [S], greedy [S], iterations)``.
    Raises ValueError for out-of-range states/actions, non-positive weights, gamma outside
    [0, 1), NaN rewards.
    """
    S, A = int(num_states), int(num_actions)
    if not 0.0 <= gamma < 1.0:
        raise ValueError(f"gamma must be in [0, 1), got {gamma}")
    s, a, s2 = (np.asarray(x, dtype=np.int64) for x in (data.states, data.actions,
                                                          data.next_states))
    r = np.asarray(data.rewards, dtype=np.float64)
    w = np.asarray(data.weights, dtype=np.float64)
    term = np.asarray(data.terminated, dtype=bool)
    if not (s.shape == a.shape == s2.shape == r.shape == w.shape == term.shape) or s.ndim != 1:
        raise ValueError("the dataset's arrays must all have the same shape [M]")
    if s.size and (s.min() < 0 or s.max() >= S or s2.min() < 0 or s2.max() >= S):
        raise ValueError(f"states must be in [0, {S})")
    if a.size and (a.min() < 0 or a.max() >= A):
        raise ValueError(f"actions must be in [0, {A})")
    if not np.isfinite(r).all():
        raise ValueError("rewards contain NaN or inf")
    if (w <= 0).any() or not np.isfinite(w).all():
        raise ValueError("weights must be finite and > 0")
    sa = s * A + a
    total = np.bincount(sa, weights=w, minlength=S * A)
    visited = total > 0
    Q = np.zeros(S * A) if Q0 is None else np.array(Q0, dtype=np.float64).reshape(S * A)
    k = 0
    for k in range(1, int(num_iters) + 1):
        y = r + gamma * ~term * Q.reshape(S, A).max(axis=1)[s2]           # targets [M]
        fit = np.bincount(sa, weights=w * y, minlength=S * A)             # regression
        Q_new = np.where(visited, fit / np.where(visited, total, 1.0), Q)
        done = np.abs(Q_new - Q).max() <= tol * (1.0 - gamma)
        Q = Q_new
        if done:
            break
    Q = Q.reshape(S, A)
    return Q, Q.max(axis=1), Q.argmax(axis=1), k


def optimal_advantages(Q: np.ndarray) -> np.ndarray:
    """``A*(s, a) = Q*(s, a) - V*(s)`` with ``V* = max_a Q*``: <= 0, and 0 at the greedy action.

    Lecture: CS224R Q-learning tutorial, "Advantage (Optimal Policy)". Shapes ``[S, A]``.
    """
    Q = np.asarray(Q, dtype=np.float64)
    return Q - Q.max(axis=1, keepdims=True)


def fqi_example(slip: float = 0.2, gamma: float = 0.9) -> dict:
    """The tutorial's example: FQI on the exact dataset of ``grid_mdp``; everything as grids.

    Returns ``{"Q": [S, A], "V": [S], "policy": [S], "advantages": [S, A], "iterations",
    "V_grid": [rows, cols] (NaN at walls), "policy_grid": [rows][cols] of action names or
    "#"/"goal"/"pit", "mdp", "info"}``.
    """
    mdp, info = grid_mdp(slip=slip, gamma=gamma)
    S, A = mdp.R.shape
    Q, V, policy, iters = fitted_q_iteration(exact_dataset(mdp, info["terminal"]), S, A, gamma)
    rows, cols = info["shape"]
    V_grid = np.full((rows, cols), np.nan)
    policy_grid = [["#"] * cols for _ in range(rows)]
    for (r, c), s in info["index"].items():
        V_grid[r, c] = V[s]
        policy_grid[r][c] = GRID_ACTIONS[policy[s]]
    for name in ("goal", "pit"):
        r, c = {"goal": (0, 3), "pit": (1, 3)}[name]
        policy_grid[r][c] = name
    return {"Q": Q, "V": V, "policy": policy, "advantages": optimal_advantages(Q),
            "iterations": iters, "V_grid": V_grid, "policy_grid": policy_grid, "mdp": mdp,
            "info": info}
