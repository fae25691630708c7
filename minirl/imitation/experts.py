"""Experts that need no training, an adapter for anything with ``predict``, and demonstration
collection.

An *expert* here is a callable ``expert(obs) -> actions`` on a batch ``obs [B, obs_dim]``
returning env-ready actions (``[B]`` int for Discrete, ``[B, D]`` for Box). :func:`as_expert`
turns a saved minirl agent (or anything with ``predict(obs, deterministic=...)``), a plain
function, or the name of a built-in controller into one.

Built-in analytic controllers:

* ``CartPoleExpert``: linear state feedback ``u = -K s`` on s = (x, x_dot, theta, theta_dot),
  pushing right when u > 0 (CartPole's force is bang-bang, +-10 N). K is the discrete-time LQR
  gain of CartPole-v1's equations of motion linearized about the upright state (Euler step
  tau = 0.02 s, Q = diag(1, 1, 10, 1), R = 1), computed once with ``scipy.linalg``. It
  balances for the full 500 steps from every reset (tested).
* ``PendulumExpert``: energy-based swing-up plus linear balance. Pendulum-v1 obeys
  theta_dd = (3 g / 2 l) sin(theta) + (3 / m l^2) u with g = 10, m = l = 1 (theta = 0 upright),
  so E = theta_dot^2 / (2 * 15) + cos(theta) is 1 at rest upright and dE/dt = theta_dot u / 5.
  Far from the top, u = k_E (1 - E) theta_dot pumps energy towards 1 (Astrom & Furuta 2000,
  "Swinging up a pendulum by energy control"); within 0.6 rad of the top,
  u = -k_p theta - k_d theta_dot balances. Both are clipped to the torque limit [-2, 2].

Lecture: Stanford CS224R "Imitation Learning" ("What is the goal of imitation learning?":
demonstrations sampled from some unknown policy pi_expert).
"""
from __future__ import annotations

from typing import Callable

import gymnasium as gym
import numpy as np
import scipy.linalg
from gymnasium import spaces

from minirl.imitation.dataset import Demonstrations, check_actions
from minirl.spaces import flatten_observation_wrapper, needs_flattening

__all__ = ["CartPoleExpert", "PendulumExpert", "PredictExpert", "as_expert", "check_expert",
           "collect_demonstrations", "cartpole_lqr_gain", "EXPERTS"]


def cartpole_lqr_gain(q=(1.0, 1.0, 10.0, 1.0), r: float = 1.0) -> np.ndarray:
    """Discrete LQR gain K ``[4]`` for CartPole-v1 linearized about the upright state.

    Continuous model (gymnasium's cartpole equations at theta = 0, small angles):
        theta_dd = g theta / den - u / (m_t den),   den = l (4/3 - m_p / m_t)
        x_dd     = u / m_t - m_p l theta_dd / m_t
    with g = 9.8, m_c = 1, m_p = 0.1, m_t = 1.1, l = 0.5; Euler discretization A_d = I + tau A,
    B_d = tau B (tau = 0.02, the env's step); K = (R + B'PB)^-1 B'PA from the discrete Riccati
    equation. The control is u = -K s.
    """
    g, m_c, m_p, l, tau = 9.8, 1.0, 0.1, 0.5, 0.02
    m_t = m_c + m_p
    den = l * (4.0 / 3.0 - m_p / m_t)
    a = np.zeros((4, 4))
    a[0, 1] = a[2, 3] = 1.0
    a[3, 2] = g / den
    a[1, 2] = -m_p * l * a[3, 2] / m_t
    b = np.zeros(4)
    b[3] = -1.0 / (m_t * den)
    b[1] = 1.0 / m_t - m_p * l * b[3] / m_t
    ad, bd = np.eye(4) + tau * a, (tau * b)[:, None]
    qm, rm = np.diag(np.asarray(q, dtype=np.float64)), np.array([[float(r)]])
    p = scipy.linalg.solve_discrete_are(ad, bd, qm, rm)
    return np.linalg.solve(rm + bd.T @ p @ bd, bd.T @ p @ ad)[0]


class CartPoleExpert:
    """Bang-bang LQR controller for CartPole-v1: action 1 (push right) iff -K s > 0.

    ``gain``: K ``[4]`` to use instead of the LQR gain (e.g. a less damped controller, the
    LQR gain with its theta_dot entry scaled down, for the compounding-errors benchmark).
    Raises ValueError if it is not 4 finite numbers.
    """

    def __init__(self, gain=None):
        if gain is None:
            gain = cartpole_lqr_gain()
        gain = np.array(gain, dtype=np.float64)
        if gain.shape != (4,) or not np.all(np.isfinite(gain)):
            raise ValueError(f"gain must be 4 finite numbers, got {gain!r}")
        self.gain = gain  # [4]

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        """obs [B, 4] -> actions [B] int64 in {0, 1}."""
        obs = np.asarray(obs, dtype=np.float64)
        return (obs @ -self.gain > 0.0).astype(np.int64)


class PendulumExpert:
    """Energy-based swing-up plus PD balance for Pendulum-v1 (see the module docstring)."""

    def __init__(self, k_energy: float = 15.0, k_p: float = 10.0, k_d: float = 2.0,
                 balance_angle: float = 0.6, max_torque: float = 2.0):
        self.k_energy, self.k_p, self.k_d = float(k_energy), float(k_p), float(k_d)
        self.cos_balance, self.max_torque = float(np.cos(balance_angle)), float(max_torque)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        """obs [B, 3] = (cos theta, sin theta, theta_dot) -> torques [B, 1] in [-2, 2]."""
        obs = np.asarray(obs, dtype=np.float64)
        c, s, w = obs[:, 0], obs[:, 1], obs[:, 2]
        theta = np.arctan2(s, c)
        energy = w * w / 30.0 + c                      # 1 at rest upright
        swing = self.k_energy * (1.0 - energy) * w     # dE/dt = w u / 5: pump towards E = 1
        balance = -self.k_p * theta - self.k_d * w
        u = np.where(c > self.cos_balance, balance, swing)
        return np.clip(u, -self.max_torque, self.max_torque)[:, None]


class PredictExpert:
    """Adapter: ``obj.predict(obs, deterministic=True)`` (a minirl agent, an SB3 model, ...)."""

    def __init__(self, obj, deterministic: bool = True):
        if not callable(getattr(obj, "predict", None)):
            raise TypeError(f"expert must have a predict method, got {type(obj).__name__}")
        self.obj, self.deterministic = obj, bool(deterministic)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        out = self.obj.predict(np.asarray(obs), deterministic=self.deterministic)
        if isinstance(out, tuple):      # SB3-style (actions, state)
            out = out[0]
        return np.asarray(out)


EXPERTS: dict[str, Callable[[], Callable]] = {"cartpole": CartPoleExpert,
                                              "pendulum": PendulumExpert}
_DEFAULT_FOR_ENV = {"CartPole-v1": "cartpole", "Pendulum-v1": "pendulum"}


def as_expert(expert, env_id: str | None = None) -> Callable[[np.ndarray], np.ndarray]:
    """An expert callable from: a callable; an object with ``predict``; ``"cartpole"`` /
    ``"pendulum"``; ``"auto"`` (the built-in controller for ``env_id``); or the path of a
    saved minirl agent (``.npz`` written by ``Agent.save``)."""
    if isinstance(expert, str):
        name = _DEFAULT_FOR_ENV.get(env_id) if expert == "auto" else expert
        if name in EXPERTS:
            return EXPERTS[name]()
        if expert.endswith(".npz"):
            from minirl.algos import load
            try:
                return PredictExpert(load(expert))
            except FileNotFoundError:
                raise ValueError(f"expert {expert!r}: no such file") from None
            except (OSError, ValueError, TypeError) as e:
                raise ValueError(f"expert {expert!r} is not a loadable saved agent "
                                 f"({type(e).__name__}: {e})") from None
        raise ValueError(f"expert {expert!r} is not one of {sorted(EXPERTS)}, 'auto' (for "
                         f"CartPole-v1/Pendulum-v1; env is {env_id!r}) or a saved agent .npz")
    if callable(getattr(expert, "predict", None)):
        return PredictExpert(expert)
    if callable(expert):
        return expert
    raise TypeError(f"expert must be callable or have predict, got {type(expert).__name__}")


def check_expert(expert, obs_space: spaces.Space, action_space: spaces.Space,
                 name: str = "expert") -> None:
    """ValueError naming ``name`` unless the expert callable suits an env with these
    observations (a flattened 1-D Box: a minirl agent's ``obs_space``) and actions: a
    wrapped saved agent must have the same action space; asked for the action of one
    observation (zeros clipped into the bounds), it must answer without error, with integers
    for a Discrete space, in the right shape and inside the space. Run when an agent is
    built, so a wrong expert fails before training."""
    obj = getattr(expert, "obj", None)
    theirs = getattr(obj, "action_space", None)
    if theirs is not None and str(theirs) != str(action_space):
        raise ValueError(f"{name}'s action space {theirs} differs from the env's {action_space}")
    probe = np.zeros((1, *obs_space.shape))
    if isinstance(obs_space, spaces.Box):
        probe = np.clip(probe, obs_space.low, obs_space.high)
    try:
        out = np.asarray(expert(probe))
    except Exception as e:  # noqa: BLE001 - any user callable: name it and the cause
        raise ValueError(f"{name} fails on this env's observations {obs_space} "
                         f"({type(e).__name__}: {e})") from None
    if isinstance(action_space, spaces.Discrete) and out.dtype.kind not in "iu":
        raise ValueError(f"{name} returns {out.dtype} actions; the env's action space "
                         f"{action_space} needs integers (an expert for another env?)")
    shape = (1, *(() if isinstance(action_space, spaces.Discrete) else action_space.shape))
    if out.size != int(np.prod(shape)):
        raise ValueError(f"{name} returns actions of shape {out.shape}, expected {shape} "
                         f"for the action space {action_space}")
    try:
        check_actions(out.reshape(shape), action_space, f"{name} action")
    except TypeError as e:
        raise ValueError(str(e)) from None


def collect_demonstrations(expert, env: str | gym.Env, n_episodes: int,
                           seed: int) -> Demonstrations:
    """Roll out ``expert`` for ``n_episodes`` full episodes and record them.

    expert: anything :func:`as_expert` accepts. env: an env id or a ``gymnasium.Env``.
    Episode k is reset with seed ``seed + k``, so the same (expert, env, seed) gives
    bit-identical demonstrations. Actions are checked against the action space (a ValueError
    names an expert that leaves it). Observations that are not 1-D Boxes (FrozenLake-v1's
    Discrete states, Dict, ...) are flattened exactly as the agents see them
    (``minirl.spaces.flatten_observation_wrapper``: one-hot for Discrete), the expert is asked
    on the flat float64 rows, and the env's own space is recorded as ``raw_observation_space``.
    Returns :class:`Demonstrations` with ``n_episodes`` episodes (float64 observations when
    flattened, the env's float dtype otherwise).
    """
    if isinstance(n_episodes, bool) or not isinstance(n_episodes, int) or n_episodes < 1:
        raise ValueError(f"n_episodes must be a positive integer, got {n_episodes!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an integer, got {type(seed).__name__}")
    own = isinstance(env, str)
    env_id = env if own else getattr(getattr(env, "spec", None), "id", None)
    if own:
        from minirl.envs import make_env
        env = make_env(env, flatten=False)
    raw_space = env.observation_space
    try:
        flat_env = flatten_observation_wrapper(env)     # env itself for a 1-D Box
        flat = needs_flattening(raw_space)
        policy = as_expert(expert, env_id)
        check_expert(policy, flat_env.observation_space, env.action_space,
                     f"expert {expert!r}" if isinstance(expert, str) else "expert")
    except Exception:
        if own:
            env.close()
        raise
    space = env.action_space
    episodes = []
    try:
        for k in range(n_episodes):
            obs, _ = flat_env.reset(seed=int(seed) + k)
            obs = np.asarray(obs, np.float64) if flat else obs  # one-hot rows come as ints
            ep = {"obs": [obs], "actions": [], "rewards": [], "terminated": [], "truncated": []}
            done = False
            while not done:
                action = np.asarray(policy(np.asarray(obs)[None]))[0]
                check_actions(action[None], space, "expert action")
                obs, r, term, trunc, _ = flat_env.step(action.item() if isinstance(
                    space, spaces.Discrete) else action)
                obs = np.asarray(obs, np.float64) if flat else obs
                for key, v in (("obs", obs), ("actions", action), ("rewards", r),
                               ("terminated", bool(term)), ("truncated", bool(trunc))):
                    ep[key].append(v)
                done = term or trunc
            episodes.append({k: np.asarray(v) for k, v in ep.items()})
    finally:
        if own:
            env.close()
    return Demonstrations.from_episodes(episodes, flat_env.observation_space, space, env_id,
                                        raw_space)
