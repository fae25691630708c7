"""Per-gradient-step overhead of minirl.nn: this tree's layers/Adam against a git revision's.

    python -m benchmarks.nn_step_overhead --base fe23b0c [--repeats 300]

Times (median CPU time of one thread, ``time.thread_time_ns``, over ``--repeats`` calls, the
two versions interleaved call by call in the same process):
  * ReLU forward and backward alone on a [256, 256] float32 array;
  * forward + backward of a 4-256-256-1 ReLU MLP (a SAC critic: one-output Q head) and of a
    4-256-256-2 one (a DQN Q-net) at batch 256, float32, with a workspace, as the agents run;
  * a 256->1 Linear backward (the one-output head) alone;
  * one Adam step on 67,586 float32 parameters (the DQN Q-net's size), and for scale the cost
    of allocating one such vector.
The base revision's ``minirl/nn/layers.py`` and ``optim.py`` are loaded from ``git show``.
Prints a markdown table: base µs, this tree's µs, ratio base / this tree.
"""
from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import time

import numpy as np

from minirl.nn import layers as new_layers, optim as new_optim
from minirl.nn.mlp import Sequential


def _load(rev: str, path: str, name: str):
    src = subprocess.run(["git", "show", f"{rev}:{path}"], check=True, capture_output=True,
                         text=True).stdout
    spec = importlib.util.spec_from_loader(name, loader=None)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    exec(compile(src, f"{rev}:{path}", "exec"), mod.__dict__)
    return mod


def _median_pair(f_old, f_new, repeats: int) -> tuple[float, float]:
    t_old, t_new = [], []
    for _ in range(repeats):
        for f, ts in ((f_old, t_old), (f_new, t_new)):
            a = time.thread_time_ns()
            f()
            ts.append(time.thread_time_ns() - a)
    return float(np.median(t_old)) / 1e3, float(np.median(t_new)) / 1e3


def _layers(lay, sizes):
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(lay.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(lay.ReLU())
    return layers


def _net(lay, sizes):
    """A float32 Sequential whose layers are ``lay``'s classes (Sequential's isinstance check
    needs this tree's Linear, so the base's layers are swapped in after construction)."""
    net = Sequential(_layers(new_layers, sizes), dtype=np.float32)
    net.layers = _layers(lay, sizes)
    return net


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True, help="git revision to compare against")
    ap.add_argument("--repeats", type=int, default=300)
    args = ap.parse_args(argv)
    old_layers = _load(args.base, "minirl/nn/layers.py", "_base_layers")
    old_optim = _load(args.base, "minirl/nn/optim.py", "_base_optim")
    rng = np.random.default_rng(0)
    rows = []

    x = rng.standard_normal((256, 256)).astype(np.float32)
    buf = np.empty_like(x)
    y = np.maximum(x, 0)
    dy = rng.standard_normal((256, 256)).astype(np.float32)
    ro, rn = old_layers.ReLU(), new_layers.ReLU()
    rows.append(("ReLU forward [256,256] f32 (out=)",
                 *_median_pair(lambda: ro.forward({}, x, out=buf),
                               lambda: rn.forward({}, x, out=buf), args.repeats)))
    rows.append(("ReLU backward [256,256] f32 (dx_out=)",
                 *_median_pair(lambda: ro.backward({}, y, dy, dx_out=buf),
                               lambda: rn.backward({}, y, dy, dx_out=buf), args.repeats)))

    lo, ln = old_layers.Linear(256, 1), new_layers.Linear(256, 1)
    ph = {"weight": rng.standard_normal((256, 1)).astype(np.float32),
          "bias": np.zeros(1, np.float32)}
    dyh = rng.standard_normal((256, 1)).astype(np.float32)
    dph = {"weight": np.empty((256, 1), np.float32), "bias": np.empty(1, np.float32)}
    rows.append(("Linear 256->1 backward (dW, db, dx), batch 256 f32",
                 *_median_pair(lambda: lo.backward(ph, y, dyh, dparams=dph, dx_out=buf),
                               lambda: ln.backward(ph, y, dyh, dparams=dph, dx_out=buf),
                               args.repeats)))

    for sizes, label in (((4, 256, 256, 1), "SAC critic 4-256-256-1"),
                         ((4, 256, 256, 2), "DQN Q-net 4-256-256-2")):
        nets = [_net(old_layers, sizes), _net(new_layers, sizes)]
        params = nets[1].init(np.random.default_rng(1))
        xb = rng.standard_normal((256, sizes[0])).astype(np.float32)
        gb = rng.standard_normal((256, sizes[-1])).astype(np.float32)
        grads = [n.zeros() for n in nets]
        wss = [n.workspace() for n in nets]
        outs = []

        def step(k):
            yy, cache = nets[k].forward(params, xb, workspace=wss[k])
            _, dx = nets[k].backward(params, cache, gb, out=grads[k])
            return yy.copy(), dx.copy()

        for k in (0, 1):
            outs.append(step(k))
        assert all(np.array_equal(a.view(np.uint8), b.view(np.uint8))
                   for a, b in zip(outs[0], outs[1])), label
        assert np.array_equal(grads[0].view(np.uint8), grads[1].view(np.uint8)), label
        rows.append((f"{label} forward+backward, batch 256 f32",
                     *_median_pair(lambda: step(0), lambda: step(1), args.repeats)))

    n = 67586
    p = (rng.standard_normal(n) * 0.1).astype(np.float32)
    g = (rng.standard_normal(n) * 0.01).astype(np.float32)
    ao, an = old_optim.Adam(lr=1e-3), new_optim.Adam(lr=1e-3)
    states = {"old": ao.init(p), "new": an.init(p)}

    def adam_old():
        _, states["old"] = ao.step(p, g, states["old"])

    def adam_new():
        _, states["new"] = an.step(p, g, states["new"])

    rows.append((f"Adam step, {n} f32 params", *_median_pair(adam_old, adam_new, args.repeats)))
    assert np.array_equal(states["old"].m, states["new"].m)
    assert np.array_equal(states["old"].v, states["new"].v)

    v = states["new"].v
    alloc = _median_pair(lambda: np.empty(n, np.float32), lambda: np.isfinite(v).all(),
                         args.repeats)
    print(f"base {args.base} vs this tree; median thread CPU µs over {args.repeats} "
          f"interleaved calls; numpy {np.__version__}\n")
    print("| operation | base µs | this tree µs | base / this tree |")
    print("|---|---|---|---|")
    for name, a, b in rows:
        print(f"| {name} | {a:.1f} | {b:.1f} | {a / b:.2f} |")
    print(f"\nFor scale (this tree): np.empty({n}, float32) {alloc[0]:.1f} µs, "
          f"np.isfinite(v).all() on it {alloc[1]:.1f} µs.")


if __name__ == "__main__":
    main()
