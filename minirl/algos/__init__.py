"""Agents, one file per algorithm, and the name -> class registry used by the CLI.

| name        | class       | file              | lecture                                          |
|-------------|-------------|-------------------|--------------------------------------------------|
| ``ppo``     | PPO         | ppo.py            | CS234 "Policy Gradient II" (PPO), CS224R GAE     |
| ``a2c``     | A2C         | actor_critic.py   | CS224R batch actor-critic, CS234 n-step          |
| ``reinforce``| REINFORCE  | reinforce.py      | CS224R/COL778 REINFORCE, CS234 vanilla PG        |
| ``rs``, ``cem``, ``es``, ``ars`` | RandomSearch, CEM, ES, ARS | gradient_free.py | "Policy Gradients and Gradient-Free Optimization" |
| ``reinforce-offpolicy`` | OffPolicyREINFORCE | offpolicy_reinforce.py | CS224R off-policy PG (importance weights); "Policy Gradients and Gradient-Free Optimization" (off-policy with a replay buffer) |
| ``dqn``     | DQN         | dqn.py            | CS224R Q-learning "DQN pseudocode (Algorithm 1)" |
| ``sac``     | SAC         | sac.py            | CS224R off-policy actor-critic: SAC (reparameterization, twin critics) |
| ``bc``      | BC          | bc.py             | CS224R imitation learning: behaviour cloning, expressive policies |
| ``dagger``  | DAgger      | dagger.py         | CS224R imitation learning: compounding errors, DAgger |

Every agent subclasses ``minirl.algos.base.Agent`` (on-policy ones ``OnPolicyAgent``). The
registry maps a CLI name to ``"module:Class"`` and imports a module only when its agent is
asked for, so one family's import cost (or a missing optional package) never touches another.

``PRESETS[(algo, env_id)]`` holds tuned config overrides for one environment (the table and
the source of every row: ``minirl.presets``); the CLI applies them before ``--set``.
"""
from __future__ import annotations

import importlib
from collections.abc import Mapping

from minirl.algos.actor_critic import A2C, A2CConfig
from minirl.algos.base import Agent, OnPolicyAgent, read_saved
from minirl.algos.ppo import PPO, PPOConfig
from minirl.algos.reinforce import REINFORCE, REINFORCEConfig

__all__ = ["ALGOS", "PRESETS", "Agent", "OnPolicyAgent", "PPO", "PPOConfig", "A2C", "A2CConfig",
           "REINFORCE", "REINFORCEConfig", "load"]

# One line per algorithm: CLI name -> "module:Class".
_REGISTRY: dict[str, str] = {
    "ppo": "minirl.algos.ppo:PPO",
    "a2c": "minirl.algos.actor_critic:A2C",
    "reinforce": "minirl.algos.reinforce:REINFORCE",
    "reinforce-offpolicy": "minirl.algos.offpolicy_reinforce:OffPolicyREINFORCE",
    "dqn": "minirl.algos.dqn:DQN",
    "sac": "minirl.algos.sac:SAC",
    "rs": "minirl.algos.gradient_free:RandomSearch",
    "cem": "minirl.algos.gradient_free:CEM",
    "es": "minirl.algos.gradient_free:ES",
    "ars": "minirl.algos.gradient_free:ARS",
    "bc": "minirl.algos.bc:BC", "dagger": "minirl.algos.dagger:DAgger",
}


class _Registry(Mapping):
    """Read-only name -> agent class mapping that imports each module on first access."""

    def __init__(self, table: dict[str, str]):
        self._table = table

    def __getitem__(self, name: str) -> type[Agent]:
        module, _, cls = self._table[name].partition(":")
        return getattr(importlib.import_module(module), cls)

    def __iter__(self):
        return iter(self._table)

    def __len__(self) -> int:
        return len(self._table)


ALGOS: Mapping[str, type[Agent]] = _Registry(_REGISTRY)

# Tuned settings per (algorithm, env id), each with its source: minirl/presets.py.
from minirl.presets import PRESETS  # noqa: E402


def load(path, env=None, training: bool = True) -> Agent:
    """Load any saved agent; the algorithm is read from the file. ``training=False`` (for
    evaluation only) builds its envs in-process, starting no vector-env worker processes."""
    meta, _ = read_saved(path)
    if "algo" not in meta:  # e.g. a demonstrations .npz: an npz, but no saved agent
        raise ValueError(f"{path} is not a saved minirl agent (it records no algorithm)")
    if meta.get("algo") not in ALGOS:
        raise ValueError(f"{path} holds an unknown algorithm {meta.get('algo')!r}")
    # (only passed when False: an agent class may override load without the argument)
    return ALGOS[meta["algo"]].load(path, env, **({} if training else {"training": False}))
