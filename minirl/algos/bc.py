"""Behaviour cloning: supervised learning of the expert's actions from demonstrations.

    0. Given demonstrations D = {(s_1, a_1, ..., s_T)} collected by an expert: hold out whole
       episodes (``val_fraction``) for validation; fit the observation normalizer to D's states
    for iteration = 1, 2, ...:
      1. ``eval_interval`` minibatch Adam steps on the policy class's BC loss
            version 0 (``policy="l2"``):  min_theta 1/|D| sum ||a - pi_theta(s)||^2
            version 1 (every other class): min_theta -E_{(s,a)~D}[log pi_theta(a|s)]
            (``diffusion``: the DDPM eps-MSE, a bound on -log pi_theta)
      2. Held-out validation loss; keep the best parameters; stop early after ``patience``
         iterations without improvement (0: never)
      3. Deploy the learned policy (``predict`` uses the best parameters)

BC is offline: it never steps an environment to learn. ``learn(total_steps)`` therefore counts
*gradient steps* (the progress bar's and CSV's "steps"); ``eval_episodes > 0`` additionally runs
that many evaluation episodes at the end of every iteration so the CSV has a learning curve.

The demonstrations come from ``config.demos`` (a ``.npz`` written by
``Demonstrations.save_npz`` or a Minari dataset directory) or from ``BC(..., demos=D)``
(a :class:`minirl.imitation.Demonstrations`). Envs whose observations are not 1-D Boxes
(FrozenLake-v1, Taxi-v4, Dict, ...) work as for the RL agents: D holds the flattened float
observations (one-hot for Discrete, ``minirl.spaces``) and the env's raw space, both checked
against the env; ``predict`` takes raw observations. Policy classes: see
:mod:`minirl.imitation.policies`.

Lecture: Stanford CS224R "Imitation Learning": "Imitation learning - version 0", "Imitation
learning - version 1", "Generative models for policies". Paper: Pomerleau 1989 (ALVINN).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from gymnasium import spaces

from minirl.algos.base import Agent, check_config, loading
from minirl.imitation.dataset import Demonstrations, space_to_json
from minirl.imitation.policies import POLICIES, make_policy
from minirl.nn import Adam, AdamState, clip_grad_norm

__all__ = ["BCConfig", "BC", "split_episodes", "bc_step", "validation_loss", "default_policy"]


@dataclass(frozen=True)
class BCConfig:
    demos: str = ""                    # .npz or Minari dataset directory ("" : pass demos=)
    policy: str = "auto"               # l2, categorical, gaussian, mog, autoregressive,
    #                                    diffusion; auto = categorical (Discrete) / gaussian (Box)
    hidden_sizes: tuple = (64, 64)     # hidden layer widths
    activation: str = "tanh"           # "tanh" or "relu"
    lr: float = 1e-3                   # Adam learning rate
    batch_size: int = 256              # (s, a) pairs per gradient step
    max_grad_norm: float = 10.0        # global-norm clipping of each gradient
    eval_interval: int = 200           # gradient steps per iteration (then validate)
    val_fraction: float = 0.1          # fraction of episodes held out (at least 1 if >= 2)
    patience: int = 10                 # iterations without a better val loss before stopping
    eval_episodes: int = 0             # env episodes run after each iteration (0: none)
    n_components: int = 5              # K of the mixture of Gaussians
    n_bins: int = 21                   # bins per action dimension (autoregressive)
    diffusion_steps: int = 20          # K denoising steps of the diffusion policy
    normalize_obs: bool = True         # standardize observations with D's mean and std
    num_envs: int = 1                  # envs for evaluation episodes
    dtype: str = "float64"             # float type of the network

    def __post_init__(self):
        check_config(self, lr=(0.0, None), batch_size=(1, None), max_grad_norm=(1e-9, None),
                     eval_interval=(1, None), val_fraction=(0.0, 0.9), patience=(0, None),
                     eval_episodes=(0, None), n_components=(1, None), n_bins=(2, None),
                     diffusion_steps=(1, None))
        if self.policy != "auto" and self.policy not in POLICIES:
            raise ValueError(f"policy must be 'auto' or one of {sorted(POLICIES)}, "
                             f"got {self.policy!r}")
        if not isinstance(self.demos, str):
            raise ValueError(f"demos must be a path string, got {self.demos!r}")


def default_policy(kind: str, action_space: spaces.Space) -> str:
    """``auto`` -> ``categorical`` for Discrete, ``gaussian`` for Box; other names unchanged."""
    if kind != "auto":
        return kind
    return "categorical" if isinstance(action_space, spaces.Discrete) else "gaussian"


def split_episodes(lengths: np.ndarray, val_fraction: float,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Step 0: ``(train_idx, val_idx)`` step indices, holding out whole episodes.

    round(val_fraction * E) episodes (at least 1 when val_fraction > 0 and E >= 2, never all)
    are drawn without replacement from ``rng``; splitting by episode keeps the correlated
    steps of one episode on one side. lengths ``[E]`` -> two sorted int64 index arrays.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    e = lengths.size
    n_val = 0 if val_fraction <= 0 or e < 2 else min(max(1, round(val_fraction * e)), e - 1)
    val_eps = np.zeros(e, bool)
    val_eps[rng.choice(e, n_val, replace=False)] = True
    per_step = np.repeat(val_eps, lengths)
    return np.flatnonzero(~per_step), np.flatnonzero(per_step)


def bc_step(policy, params: np.ndarray, adam: Adam, state: AdamState, obs: np.ndarray,
            actions: np.ndarray, rng: np.random.Generator, max_grad_norm: float):
    """Step 1 (one of them): ``(params, state, loss)`` after one clipped Adam step on the
    policy's BC loss over the minibatch (obs ``[B, obs_dim]`` normalized, actions ``[B, ...]``)."""
    loss, grad = policy.loss(params, obs, actions, rng)
    grad, _ = clip_grad_norm(grad, max_grad_norm)
    params, state = adam.step(params, grad, state)
    return params, state, loss


def validation_loss(policy, params: np.ndarray, obs: np.ndarray, actions: np.ndarray,
                    seed: int, batch_size: int = 4096) -> float:
    """Step 2: the BC loss over held-out pairs, averaged over batches of ``batch_size``.

    A fresh generator ``default_rng(seed)`` serves the diffusion loss's (t, eps) draws, so
    the same parameters always get the same validation loss (comparable across iterations).
    """
    rng = np.random.default_rng(seed)
    total, n = 0.0, obs.shape[0]
    for start in range(0, n, batch_size):
        sl = slice(start, start + batch_size)
        total += policy.loss(params, obs[sl], actions[sl], rng)[0] * obs[sl].shape[0]
    return total / n


class BC(Agent):
    """Behaviour cloning with any policy class of :mod:`minirl.imitation.policies`."""

    name = "bc"
    Config = BCConfig
    log_fields = ("loss", "val_loss", "best_val_loss")

    def __init__(self, env, config=None, seed: int = 0, demos: Demonstrations | None = None,
                 **kwargs):
        if demos is not None and not isinstance(demos, Demonstrations):
            raise TypeError(f"demos must be a Demonstrations, got {type(demos).__name__}")
        self._demos = demos
        super().__init__(env, config, seed, **kwargs)
        if not loading():  # (a loaded agent's demos file need not exist any more)
            self.check_training_inputs()

    def check_training_inputs(self) -> None:
        """At construction, so bad input fails before training writes anything: the
        demonstrations exist, load and match the env's spaces (ValueError naming demos)."""
        self.demonstrations()

    def _build(self) -> None:
        cfg = self.config
        self.policy_kind = default_policy(cfg.policy, self.action_space)
        self.policy = make_policy(self.policy_kind, self.obs_dim, self.action_space,
                                  cfg.hidden_sizes, cfg.activation, np.dtype(cfg.dtype),
                                  cfg.n_components, cfg.n_bins, cfg.diffusion_steps)
        self.params = self.policy.init(self.rng)
        self.best_params = self.params.copy()
        self.adam = Adam(lr=cfg.lr)
        self.opt_states = {"policy": self.adam.init(self.params)}
        self.extra_state = {"best_val_loss": None, "bad_iterations": 0, "stopped": False,
                            "normalizer_fitted": False}

    # ----- data ----------------------------------------------------------------------------

    def demonstrations(self) -> Demonstrations:
        """The demonstrations: ``demos=`` if given, else loaded from ``config.demos``."""
        if self._demos is None:
            if not self.config.demos:
                raise ValueError("BC needs demonstrations: set config.demos to a .npz or Minari "
                                 "dataset path, or pass demos=Demonstrations(...)")
            try:
                self._demos = Demonstrations.load(self.config.demos)
            except ValueError as e:
                raise ValueError(e if "demos" in str(e) else
                                 f"demos {self.config.demos!r}: {e}") from None
            except Exception as e:  # noqa: BLE001 - unreadable file: name it and the cause
                raise ValueError(f"demos {self.config.demos!r} is not a readable "
                                 f"demonstrations file ({type(e).__name__}: {e})") from None
        d = self._demos
        # The flat space the network sees and the env's own (Discrete(16) and a Tuple of
        # Discrete(4) and Discrete(12) both flatten to 16 one-hot floats).
        for name, mine, theirs in (("observation", self.obs_space, d.observation_space),
                                   ("raw observation", self.raw_obs_space,
                                    d.raw_observation_space),
                                   ("action", self.action_space, d.action_space)):
            if space_to_json(mine) != space_to_json(theirs):
                raise ValueError(f"demos' {name} space {theirs} differs from the env's {mine}")
        return d

    def policy_actions(self, actions: np.ndarray) -> np.ndarray:
        """Env actions -> the policy's (Discrete: index 0..n-1, i.e. minus ``space.start``)."""
        if isinstance(self.action_space, spaces.Discrete):
            return np.asarray(actions, np.int64) - int(self.action_space.start)
        return np.asarray(actions)

    def _normalize(self, obs: np.ndarray) -> np.ndarray:
        obs = np.asarray(obs, np.float64)
        return obs if self.obs_normalizer is None else self.obs_normalizer(obs, update=False)

    def _fit_normalizer(self, obs: np.ndarray) -> None:
        """Step 0: the normalizer's statistics from the demonstrations' states (once)."""
        if self.obs_normalizer is not None and not self.extra_state["normalizer_fitted"]:
            self.obs_normalizer(np.asarray(obs, np.float64), update=True)
        self.extra_state["normalizer_fitted"] = True

    # ----- acting ----------------------------------------------------------------------------

    def _policy(self, obs: np.ndarray, deterministic: bool) -> np.ndarray:
        return self.policy.act(self.best_params, obs, self.eval_rng, deterministic)

    def state_arrays(self) -> dict[str, np.ndarray]:
        return {**super().state_arrays(), "best_params": self.best_params}

    def set_state_arrays(self, arrays, opt_steps) -> None:
        super().set_state_arrays(arrays, opt_steps)
        self.best_params = arrays["best_params"].copy()

    # ----- training --------------------------------------------------------------------------

    def learn(self, total_steps: int, callback=None) -> "BC":
        """Run ``total_steps`` gradient steps (fewer if early stopping triggers)."""
        total_steps = self._check_total_steps(total_steps)
        cfg, st = self.config, self.extra_state
        demos = self.demonstrations()
        # 0. Split whole episodes into train / validation; normalizer from D's states.
        train_idx, val_idx = split_episodes(demos.episode_lengths, cfg.val_fraction,
                                            np.random.default_rng([self.seed, 3]))
        self._fit_normalizer(demos.obs[train_idx])
        obs = self._normalize(demos.obs)
        actions = self.policy_actions(demos.actions)
        train_obs, train_act = obs[train_idx], actions[train_idx]
        val_obs, val_act = obs[val_idx], actions[val_idx]
        done = 0
        while done < total_steps and not st["stopped"]:
            n = min(cfg.eval_interval, total_steps - done)
            # 1. Minibatch Adam steps on the BC loss.
            losses = []
            for _ in range(n):
                idx = self.rng.integers(0, train_idx.size, size=min(cfg.batch_size, train_idx.size))
                self.params, self.opt_states["policy"], loss = bc_step(
                    self.policy, self.params, self.adam, self.opt_states["policy"],
                    train_obs[idx], train_act[idx], self.rng, cfg.max_grad_norm)
                losses.append(loss)
            done += n
            # 2. Validation loss, best parameters, early stopping.
            val = (validation_loss(self.policy, self.params, val_obs, val_act, self.seed)
                   if val_idx.size else float(np.mean(losses)))
            if st["best_val_loss"] is None or val < st["best_val_loss"]:
                st["best_val_loss"], st["bad_iterations"] = val, 0
                self.best_params = self.params.copy()
            else:
                st["bad_iterations"] += 1
                st["stopped"] = bool(val_idx.size and cfg.patience
                                     and st["bad_iterations"] >= cfg.patience)
            # 3. Deploy: evaluation episodes with the best parameters (optional).
            returns = (self.evaluate(cfg.eval_episodes, seed=int(self.rng.integers(2**31 - 1)))
                       if cfg.eval_episodes else np.zeros(0))
            if not self._end_iteration(callback, n, episodes=(returns, []),
                                       loss=float(np.mean(losses)), val_loss=val,
                                       best_val_loss=st["best_val_loss"]):
                break
        return self
