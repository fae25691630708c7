"""Per-vector-step cost of the rollout's calls outside the policy and the env.

``RolloutCollector.collect`` calls, on every vector step of N envs, the observation
normalizer (update + normalize), the reward scaler and ``ActionAdapter.to_env``. On the
suite's small batches (1-16 envs, 2-11 observation coordinates) these cost per call, not per
element. Timed here: each public call against the private fast path the collector uses
(``ObsNormalizer._update_normalize``, ``RewardScaler._scale_step``: bit for bit the same
results, see tests/minirl/test_normalize.py), and ``to_env`` against the code it replaced
(``np.clip`` + ``astype`` + ``reshape``). CPU time (``time.thread_time``), candidates timed in
alternating rounds, median; ratio = fast / public, median of per-round ratios.

    python -m benchmarks --only rollout_step [--quick]
"""
from __future__ import annotations

import time

import numpy as np

from benchmarks._harness import Table, emit, interleaved, paired_ratio

# (what, batch B = envs, coordinates D, obs dtype): the suite rows that miss the CPU target
OBS_CASES = (("a2c Pendulum-v1", 8, 3, np.float32), ("ppo InvertedPendulum-v5", 1, 4, np.float64),
             ("a2c MountainCarContinuous-v0", 4, 2, np.float32),
             ("a2c MountainCar-v0", 16, 2, np.float32), ("a2c Acrobot-v1", 16, 6, np.float32),
             ("ppo Hopper-v5", 1, 11, np.float64))
REWARD_ENVS = (1, 4, 8, 16)


def _obs_pair(b: int, d: int, dtype):
    from minirl.normalize import ObsNormalizer

    rng = np.random.default_rng(0)
    obs = [rng.normal(0.0, 3.0, (b, d)).astype(dtype) for _ in range(64)]
    public, fast = ObsNormalizer((d,)), ObsNormalizer((d,))
    public(obs[0], update=True)
    fast(obs[0], update=True)
    k = [0, 0]

    def run_public():
        k[0] = (k[0] + 1) % 64
        return public(obs[k[0]], update=True)

    def run_fast():
        k[1] = (k[1] + 1) % 64
        return fast._update_normalize(obs[k[1]])
    return run_public, run_fast


def _reward_pair(n: int):
    from minirl.normalize import RewardScaler

    rng = np.random.default_rng(0)
    rewards = [rng.normal(-1.0, 2.0, n) for _ in range(64)]
    public, fast = RewardScaler(n, 0.99), RewardScaler(n, 0.99)
    for s in (public, fast):
        s.scale(rewards[0], None)
        s.scale(rewards[1], None)
    k = [0, 0]

    def run_public():
        k[0] = (k[0] + 1) % 64
        return public.scale(rewards[k[0]], None)

    def run_fast():
        k[1] = (k[1] + 1) % 64
        return fast._scale_step(rewards[k[1]], None)
    return run_public, run_fast


def _to_env_pair(b: int):
    from gymnasium import spaces

    from minirl.spaces import ActionAdapter

    space = spaces.Box(-2.0, 2.0, (1,), np.float32)
    adapter = ActionAdapter(space)
    actions = np.random.default_rng(0).normal(0.0, 3.0, (b, 1)).astype(np.float32)

    def before():   # ActionAdapter.to_env's Box "clip" branch before this change
        a = np.asarray(actions)
        return np.clip(a, adapter.low, adapter.high).astype(space.dtype, copy=False).reshape(
            (a.shape[0], *space.shape))
    return before, lambda: adapter.to_env(actions)


def main(quick: bool = False) -> None:
    repeats, min_time = (3, 0.01) if quick else (9, 0.05)
    table = Table("Per-call CPU time of the rollout's per-step calls: public (before) vs the "
                  "collector's path; ratio = fast / public (median of per-round ratios)")
    cases = [(f"ObsNormalizer update+normalize, {what} ({b}x{d} {np.dtype(dt).name})",
              _obs_pair(b, d, dt)) for what, b, d, dt in OBS_CASES]
    cases += [(f"RewardScaler.scale, {n} envs", _reward_pair(n)) for n in REWARD_ENVS]
    cases += [(f"ActionAdapter.to_env Box(-2, 2, (1,)) float32, {b} envs", _to_env_pair(b))
              for b in (1, 8)]
    for name, (public, fast) in cases:
        med, samples = interleaved({"public": public, "fast": fast}, repeats=repeats,
                                   min_time=min_time, clock=time.thread_time)
        table.add(call=name, public_s=med["public"], fast_s=med["fast"],
                  ratio=paired_ratio(samples, "fast", "public"))
    emit(table, "rollout_step", quick)


if __name__ == "__main__":
    main()
