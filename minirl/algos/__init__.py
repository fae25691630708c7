"""On-policy agents, one file each, and the name -> class registry used by the CLI.

| name        | class       | file              | lecture                                          |
|-------------|-------------|-------------------|--------------------------------------------------|
| ``ppo``     | PPO         | ppo.py            | 004 PPO (clipped / adaptive KL), 001 GAE         |
| ``a2c``     | A2C         | actor_critic.py   | 001 batch actor-critic, 004 n-step estimators    |
| ``reinforce``| REINFORCE  | reinforce.py      | 000/002 REINFORCE, 004 vanilla PG with baseline  |

``PRESETS[(algo, env_id)]`` holds config overrides that make an algorithm's defaults (tuned for
CartPole-v1) work on another environment; the CLI applies them before ``--set``.
"""
from __future__ import annotations

from minirl.algos.actor_critic import A2C, A2CConfig
from minirl.algos.base import Agent, read_saved
from minirl.algos.ppo import PPO, PPOConfig
from minirl.algos.reinforce import REINFORCE, REINFORCEConfig

__all__ = ["ALGOS", "PRESETS", "Agent", "PPO", "PPOConfig", "A2C", "A2CConfig", "REINFORCE",
           "REINFORCEConfig", "load"]

ALGOS: dict[str, type[Agent]] = {"ppo": PPO, "a2c": A2C, "reinforce": REINFORCE}

PRESETS: dict[tuple[str, str], dict] = {
    # Pendulum without gSDE: a short horizon (gamma 0.95) and a low GAE lambda (0.1), as in
    # RLlib's tuned Pendulum PPO, with RL-Zoo-style 10 epochs of 64-sample minibatches and
    # normalized observations and rewards. Passes -250 after 110-160k steps and settles near
    # -170 (lr 1e-3 got there sooner but two of five seeds fell back to about -330).
    ("ppo", "Pendulum-v1"): dict(
        num_envs=4, num_steps=512, gamma=0.95, lam=0.1, num_epochs=10, minibatch_size=64,
        lr=3e-4, anneal_lr=False, clip_eps=0.2, anneal_clip=False, normalize_obs=True,
        normalize_reward=True,
    ),
}


def load(path, env=None) -> Agent:
    """Load any saved agent; the algorithm is read from the file."""
    meta, _ = read_saved(path)
    if meta["algo"] not in ALGOS:
        raise ValueError(f"{path} holds an unknown algorithm {meta['algo']!r}")
    return ALGOS[meta["algo"]].load(path, env)
