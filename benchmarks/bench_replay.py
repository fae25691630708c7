"""Replay sampling: a uniform batch of 256 and prioritized draws, against cpprb and Tianshou.

Uniform: a full ring buffer of 100_000 transitions (``obs``/``next_obs`` float32 ``[obs_dim]``,
``actions`` int64, ``rewards`` float32, ``terminated``/``truncated`` bool), obs_dim 4 and 17.
minirl's batch = ``uniform_indices`` (write slot excluded) + one ``take`` per field; the peer is
cpprb's ``ReplayBuffer.sample(256)`` (same fields, ``done`` for the two flags, float32).

Prioritized: a 100_000-slot tree with random priorities. ``sample`` = 256 stratified draws
(``SumTree.sample``) against Tianshou's ``SegmentTree`` with the same stratified scalars and its
own i.i.d. ones; ``update`` = 256 new priorities at random slots; ``full`` = a whole
prioritized batch (draw + PER weights + gather of every field, obs_dim 4) against cpprb's
``PrioritizedReplayBuffer.sample(256, beta)``. Peers come from ``benchmarks/peers.py``; a
``-`` means the peer is not installed (``python3 tasks.py bench --peers``).

``speedup`` = peer time / minirl time (> 1: minirl is faster); ours and the peers' are timed
in alternating rounds (medians), so each ratio sees the same background load. Targets: uniform
batch >= 2x cpprb; prioritized sample >= 2x Tianshou's segment tree.

    python -m benchmarks --only replay [--quick]
"""
from __future__ import annotations

import numpy as np

from benchmarks import peers
from benchmarks._harness import Table, emit, interleaved
from kernels.replay import SumTree, per_weights, uniform_indices

CAPACITY = 100_000
BATCH = 256
NAN = float("nan")


def _buffer(obs_dim, rng):
    return dict(
        obs=rng.standard_normal((CAPACITY, obs_dim)).astype(np.float32),
        actions=rng.integers(0, 4, CAPACITY),
        rewards=rng.standard_normal(CAPACITY).astype(np.float32),
        next_obs=rng.standard_normal((CAPACITY, obs_dim)).astype(np.float32),
        terminated=rng.random(CAPACITY) < 0.01,
        truncated=rng.random(CAPACITY) < 0.001,
    )


def _gather(buf, idx):
    return {name: arr.take(idx, axis=0) for name, arr in buf.items()}


def _speedup(peer_s, ours_s):
    return peer_s / ours_s if peer_s == peer_s else NAN


def main(quick: bool = False) -> None:
    repeats = 3 if quick else 7
    min_time = 0.02 if quick else 0.1
    rng = np.random.default_rng(0)
    pos = 12_345  # a full ring mid-way through a lap: slot pos is excluded

    uni = Table("uniform replay batch of 256 from 100_000; speedup = cpprb / minirl")
    for obs_dim in ((4,) if quick else (4, 17)):
        buf = _buffer(obs_dim, rng)

        def indices():
            return uniform_indices(rng, CAPACITY, BATCH, capacity=CAPACITY, pos=pos)

        def batch():
            return _gather(buf, indices())

        t, _ = interleaved({"idx": indices, "batch": batch,
                          "peer": peers.cpprb_uniform_sample(CAPACITY, obs_dim, BATCH)},
                         repeats, min_time)
        t_idx, t_batch, t_peer = t["idx"], t["batch"], t["peer"]
        sp = _speedup(t_peer, t_batch)
        uni.add(obs_dim=obs_dim, indices_s=t_idx, minirl_batch_s=t_batch, cpprb_s=t_peer,
                speedup=sp, target="-" if sp != sp else ("met" if sp >= 2 else "MISSED"))
    emit(uni, "replay_uniform_quick" if quick else "replay_uniform", quick)

    per = Table("prioritized replay, 100_000 slots, batch 256; speedup = peer / minirl")
    tree = SumTree(CAPACITY)
    tree.update(np.arange(CAPACITY), 1.0 - rng.random(CAPACITY))  # (0, 1], like the peer's
    upd_idx = rng.integers(0, CAPACITY, BATCH)
    upd_prio = 1.0 - rng.random(BATCH)
    buf = _buffer(4, rng)

    def sample():
        return tree.sample(BATCH, rng)

    def update():
        tree.update(upd_idx, upd_prio)

    def full():
        idx, prio = tree.sample(BATCH, rng)
        w = per_weights(prio, tree.total, CAPACITY, 0.4, min_priority=tree.min)
        return _gather(buf, idx), w

    ts_strat = peers.tianshou_segment_tree_sample(CAPACITY, BATCH, stratified=True)
    ts_iid = peers.tianshou_segment_tree_sample(CAPACITY, BATCH, stratified=False)
    cp = peers.cpprb_prioritized(CAPACITY, 4, BATCH)
    t, _ = interleaved({
        "sample": sample, "update": update, "full": full,
        "ts_sample": ts_strat and ts_strat[0], "ts_update": ts_strat and ts_strat[1],
        "ts_iid": ts_iid and ts_iid[0], "cp_full": cp and cp[0], "cp_update": cp and cp[1],
    }, repeats, min_time)
    t_sample, t_update, t_full = t["sample"], t["update"], t["full"]

    sp = _speedup(t.get("ts_sample", NAN), t_sample)
    per.add(op="sample 256 (stratified)", minirl_s=t_sample, peer="tianshou SegmentTree",
            peer_s=t.get("ts_sample", NAN), speedup=sp,
            target="-" if sp != sp else ("met" if sp >= 2 else "MISSED"))
    per.add(op="sample 256 (peer i.i.d.)", minirl_s=t_sample, peer="tianshou SegmentTree",
            peer_s=t.get("ts_iid", NAN), speedup=_speedup(t.get("ts_iid", NAN), t_sample),
            target="")
    per.add(op="update 256", minirl_s=t_update, peer="tianshou SegmentTree",
            peer_s=t.get("ts_update", NAN), speedup=_speedup(t.get("ts_update", NAN), t_update),
            target="")
    per.add(op="update 256", minirl_s=t_update, peer="cpprb PER",
            peer_s=t.get("cp_update", NAN), speedup=_speedup(t.get("cp_update", NAN), t_update),
            target="")
    per.add(op="full batch (draw+weights+gather)", minirl_s=t_full, peer="cpprb PER",
            peer_s=t.get("cp_full", NAN), speedup=_speedup(t.get("cp_full", NAN), t_full),
            target="")
    emit(per, "replay_prioritized_quick" if quick else "replay_prioritized", quick)


if __name__ == "__main__":
    main()
