"""A known multimodal environment for imitation learning, and its two-mode expert.

``minirl/TwoPaths-v0`` (registered on import): an obstacle straight ahead can be passed on the
left or on the right. The agent starts at lateral position y = 0 and takes 4 steps;
obs = (y, steps left / 4), action a in [-1, 1] (Box(1,)), y <- y + 0.25 a. After the 4th step
the episode terminates with reward 1 if |y| >= 0.5 (the obstacle, |y| < 0.5, was avoided)
and 0 otherwise (a crash). Going straight (a = 0) crashes; a policy that commits to either
side succeeds.

``TwoPathsExpert`` demonstrates both paths: at y = 0 it picks a = -1 or a = +1 with
probability 1/2 each (from its own seeded generator), and afterwards keeps going the way it
went (a = sign(y)). The demonstrations then split 50/50 between two actions in the same start
state, and their conditional mean there is a = 0 — exactly the action that crashes. This is
the lecture's multimodal-demonstrations example (drivers passing a tree on either side):
L2 regression and a single Gaussian average the modes; a mixture, an autoregressive or a
diffusion policy keeps both.

Lecture: Stanford CS224R "Imitation Learning": "What could go wrong?" (multimodal data from
several demonstrators; "what might policy trained with l2-regression do?").
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces

__all__ = ["TwoPathsEnv", "TwoPathsExpert"]


class TwoPathsEnv(gym.Env):
    """Pass an obstacle on either side (see the module docstring)."""

    n_steps, step_size, clearance = 4, 0.25, 0.5
    observation_space = spaces.Box(np.array([-1.0, 0.0], np.float32),
                                   np.array([1.0, 1.0], np.float32), dtype=np.float32)
    action_space = spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)

    def __init__(self, render_mode=None):
        self.render_mode = render_mode
        self.y, self.t = 0.0, 0

    def _obs(self):
        return np.array([self.y, (self.n_steps - self.t) / self.n_steps], dtype=np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.y, self.t = 0.0, 0
        return self._obs(), {}

    def step(self, action):
        a = float(np.clip(np.asarray(action, dtype=np.float64).reshape(-1)[0], -1.0, 1.0))
        self.y += self.step_size * a
        self.t += 1
        done = self.t >= self.n_steps
        reward = float(done and abs(self.y) >= self.clearance - 1e-9)
        return self._obs(), reward, done, False, {}


class TwoPathsExpert:
    """Both modes: at y = 0 a = +-1 with probability 1/2 (seeded), then a = sign(y)."""

    def __init__(self, seed: int = 0):
        self.rng = np.random.default_rng(seed)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        """obs [B, 2] -> actions [B, 1] in {-1, +1}."""
        y = np.asarray(obs, dtype=np.float64)[:, 0]
        coin = np.where(self.rng.random(y.shape) < 0.5, -1.0, 1.0)
        return np.where(np.abs(y) < 1e-6, coin, np.sign(y))[:, None]


if "minirl/TwoPaths-v0" not in gym.envs.registry:
    gym.register(id="minirl/TwoPaths-v0", entry_point="minirl.imitation.envs:TwoPathsEnv")
