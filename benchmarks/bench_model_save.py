"""Saving an off-policy agent: file size and time of ``np.savez`` (what ``Agent.save`` writes)
against ``np.savez_compressed``, for a SAC Pendulum-v1 agent (default 256x256 networks and
1,000,000-transition buffer) whose buffer holds n transitions.

Since tester 4's defect 10, ``model.npz`` holds only the filled slots of the replay buffer, so
its size grows with the transitions stored instead of being ~34 MB from the first step. The
question left: would compression pay for itself? Buffer contents are Pendulum-like
observations ``[cos th, sin th, thdot]`` of uniformly drawn angles and velocities, uniform
actions in [-1, 1], rewards ``-(th^2 + 0.1 thdot^2 + 0.001 a^2)``, flags as a 200-step time
limit cuts episodes (float32 trig values have full-entropy mantissas, as a real run's do).
Each candidate writes the same arrays to a file in a temporary directory; medians of
alternating rounds (``interleaved``), wall clock (the file write is part of a save).

    python -m benchmarks --only model_save [--quick]
"""
from __future__ import annotations

import json
import os
import tempfile

import numpy as np

from benchmarks._harness import Table, emit, interleaved


def _agent_with_buffer(n: int):
    from minirl.algos.sac import SAC, SACConfig

    agent = SAC("Pendulum-v1", SACConfig(), seed=0)
    rng, buf, left = np.random.default_rng(0), agent.buffer, n
    while left:
        T = min(left, 50_000)
        th = rng.uniform(-np.pi, np.pi, (T, 1))
        thdot = rng.uniform(-8.0, 8.0, (T, 1))
        obs = np.stack([np.cos(th), np.sin(th), thdot], axis=-1).astype(np.float32)
        a = rng.uniform(-1.0, 1.0, (T, 1, 1)).astype(np.float32)
        r = -(th ** 2 + 0.1 * thdot ** 2 + 0.001 * a[..., 0] ** 2)
        trunc = (np.arange(n - left, n - left + T) % 200 == 199)[:, None]
        buf.add(obs, a, r.astype(np.float32), obs, np.zeros((T, 1), bool), trunc)
        left -= T
    return agent


def main(quick: bool = False) -> None:
    sizes = (3_000,) if quick else (3_000, 100_000, 1_000_000)
    table = Table("model.npz of SAC Pendulum-v1 (256x256, buffer_size 1M): np.savez vs "
                  "np.savez_compressed; ratio = compressed / savez")
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            agent = _agent_with_buffer(n)
            arrays = {"meta": np.array(json.dumps({"algo": "sac"})), **agent.state_arrays()}
            paths = {w: os.path.join(tmp, f"{w}.npz") for w in ("savez", "compressed")}
            fns = {"savez": lambda: np.savez(paths["savez"], **arrays),
                   "compressed": lambda: np.savez_compressed(paths["compressed"], **arrays)}
            med, _ = interleaved(fns, repeats=3 if quick else 5, min_time=0.0)
            size = {w: os.path.getsize(p) for w, p in paths.items()}
            table.add(transitions=n, savez_MB=round(size["savez"] / 1e6, 3),
                      compressed_MB=round(size["compressed"] / 1e6, 3),
                      size_ratio=size["compressed"] / size["savez"],
                      savez_s=med["savez"], compressed_s=med["compressed"],
                      time_ratio=med["compressed"] / med["savez"])
    emit(table, "model_save", quick)


if __name__ == "__main__":
    main()
