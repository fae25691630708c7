"""What the check for observations beyond float32 costs (tester 4, defect 11).

``minirl.nn.mlp.check_cast`` runs wherever observations are cast to an agent's float dtype
(rollout collector, replay buffer, predict, ``MLP.forward``): when the cast narrows
(float64 -> float32) it makes one finiteness pass over the cast array. Timed here end to end,
CPU seconds (``time.process_time``) of ``learn`` on the preset settings, with the check as
shipped against the check replaced by a no-op, alternating in rounds in one process (each round
a fresh agent of the same seed, after a warm-up run; the learned parameters are asserted
equal, since the check changes no number). CartPole-v1's observations are float32 (the check
returns at its dtype test; PPO and DQN); PPO Pendulum-v1 normalizes observations in float64,
so every step makes the finiteness pass (rollout and the policy's forward).

    python -m benchmarks --only obs_check [--quick]
"""
from __future__ import annotations

import statistics
import time

import numpy as np

from benchmarks._harness import Table, emit

CASES = (("ppo", "CartPole-v1", 50_000), ("ppo", "Pendulum-v1", 20_000),
         ("dqn", "CartPole-v1", 20_000))


def _run(algo: str, env: str, steps: int) -> tuple[float, np.ndarray]:
    from minirl.algos import ALGOS
    from minirl.presets import find

    cls, preset = ALGOS[algo], find(algo, env)
    agent = cls(env, cls.Config(**preset.overrides), seed=0, env_kwargs=preset.env_kwargs)
    t = time.process_time()
    agent.learn(steps)
    return time.process_time() - t, agent.params.copy()


def main(quick: bool = False) -> None:
    import minirl.algos.offpolicy_reinforce as opr
    import minirl.nn.mlp as mlp
    import minirl.replay as replay
    import minirl.rollout as rollout

    modules = (mlp, rollout, replay, opr)
    real = mlp.check_cast
    rounds = 2 if quick else 5
    table = Table("learn() CPU seconds with the observation cast check vs without it "
                  "(no-op); ratio = with / without, median of per-round ratios")
    for algo, env, steps in CASES:
        steps = steps // 10 if quick else steps
        _run(algo, env, 2048)                                  # warm-up (Numba, caches)
        times = {"with": [], "without": []}
        for _ in range(rounds):
            params = {}
            for variant in ("with", "without"):
                for m in modules:
                    m.check_cast = real if variant == "with" else (lambda *a, **k: None)
                try:
                    t, params[variant] = _run(algo, env, steps)
                finally:
                    for m in modules:
                        m.check_cast = real
                times[variant].append(t)
            np.testing.assert_array_equal(params["with"], params["without"])
        ratio = statistics.median(a / b for a, b in zip(times["with"], times["without"]))
        table.add(algo=algo, env=env, steps=steps, with_s=statistics.median(times["with"]),
                  without_s=statistics.median(times["without"]), ratio=ratio)
    emit(table, "obs_check", quick)


if __name__ == "__main__":
    main()
