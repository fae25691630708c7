"""Per-call CPU of the functions an A2C/PPO update calls: this tree against a git revision.

    python -m benchmarks.update_path_overhead --base ef020c4 [--rounds 300] [--processes 3]

The base revision is extracted (``git archive``) to a temporary directory; each tree is timed
in its own fresh interpreter (``PYTHONPATH`` = that tree), alternating base / this tree
``--processes`` times. In a process every function is called on the same seeded float32
inputs shaped like the agents' (an A2C Pendulum-v1 update: 64 samples, 3 -> 64 -> 64 -> 1
tanh networks; a PPO InvertedPendulum-v5 minibatch: 32 samples), and timed as the median
over ``--rounds`` rounds of the mean CPU time (``time.process_time``) of 5 calls; the table
gives the median over processes. CPU time, not wall time: the machine is shared.

Only functions owned by minirl.nn, minirl.objectives, kernels and the PPO helpers are timed
(the distributions' methods changed in the same session, by others). Writes
``benchmarks/results/update_path_overhead.md`` (markdown: base us, this tree us, ratio).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, os, sys, time
for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[v] = "1"
import numpy as np
from minirl.nn import MLP, Adam, clip_grad_norm
from minirl.nn.layers import Tanh
from minirl.objectives.value import advantages_and_targets, explained_variance, value_loss
from minirl.objectives.policy_gradient import advantage_weights, policy_gradient_loss
from minirl.objectives.ppo import approx_kl, ppo_clip_loss
from minirl.algos.ppo import normalize_advantages

rounds = int(sys.argv[1])
rng = np.random.default_rng(0)
f32 = np.float32
T, N = 8, 8                                     # A2C Pendulum-v1 preset batch
rew, val, nval = (rng.standard_normal((T, N)).astype(f32) for _ in range(3))
term, trunc = rng.random((T, N)) < 0.05, rng.random((T, N)) < 0.02
adv, targets = advantages_and_targets("gae", rew, val, nval, term, trunc, 0.9, 0.9)
logp = rng.standard_normal(T * N).astype(f32)
B = 32                                           # PPO InvertedPendulum-v5 minibatch
lp, lp_old = rng.standard_normal(B).astype(f32), rng.standard_normal(B).astype(f32)
lp = (lp_old + 0.05 * lp).astype(f32)
a32 = rng.standard_normal(B).astype(f32)
net = MLP([3, 64, 64, 1], Tanh, dtype=f32)
params = net.init(rng).astype(f32)
ws = net.workspace()
grad_out = np.empty(net.n_params, f32)
x = {b: rng.standard_normal((b, 3)).astype(f32) for b in (1, 8, 32, 64)}
dy = {b: rng.standard_normal((b, 1)).astype(f32) for b in (1, 8, 32, 64)}
big = np.concatenate([params, params])           # actor + critic: one agent's vector
g = (rng.standard_normal(big.size) * 0.1).astype(f32)
adam = Adam(lr=7e-4, eps=1e-5)
state = adam.init(big)


def fwd_bwd(b):
    y, cache = net.forward(params, x[b], ws)
    net.backward(params, cache, dy[b], need_dx=False, out=grad_out)


CALLS = {
    "advantages_and_targets gae [8, 8]": lambda: advantages_and_targets(
        "gae", rew, val, nval, term, trunc, 0.9, 0.9),
    "advantage_weights [8, 8]": lambda: advantage_weights(adv, term, trunc, 0.9,
                                                          step_discount=False),
    "policy_gradient_loss [64]": lambda: policy_gradient_loss(logp, adv.reshape(-1),
                                                              num_episodes=64),
    "value_loss [64]": lambda: value_loss(val.reshape(-1), targets.reshape(-1)),
    "explained_variance [8, 8]": lambda: explained_variance(val, targets),
    "normalize_advantages [32]": lambda: normalize_advantages(a32),
    "ppo_clip_loss [32]": lambda: ppo_clip_loss(lp, lp_old, a32, 0.2),
    "approx_kl [32]": lambda: approx_kl(lp, lp_old),
    "clip_grad_norm [8834]": lambda: clip_grad_norm(g, 0.5),
    "Adam(lr=, eps=)": lambda: Adam(lr=7e-4, eps=1e-5),
    "Adam.step [8834]": lambda: adam.step(big, g, state),
    "MLP forward B=1": lambda: net.forward(params, x[1], ws),
    "MLP forward B=8": lambda: net.forward(params, x[8], ws),
    "MLP forward B=64": lambda: net.forward(params, x[64], ws),
    "MLP forward+backward B=32": lambda: fwd_bwd(32),
    "MLP forward+backward B=64": lambda: fwd_bwd(64),
}
for f in CALLS.values():
    f()
times = {k: [] for k in CALLS}
clock = time.process_time
for _ in range(rounds):
    for k, f in CALLS.items():
        t0 = clock()
        for _ in range(5):
            f()
        times[k].append((clock() - t0) / 5 * 1e6)
print(json.dumps({k: float(np.median(v)) for k, v in times.items()}))
"""


def _run(tree: Path, rounds: int) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(rounds)], cwd=tree,
                         env={**os.environ, "PYTHONPATH": str(tree)}, capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.update_path_overhead",
                                description=__doc__.split("\n")[0])
    p.add_argument("--base", required=True, help="git revision to compare against")
    p.add_argument("--rounds", type=int, default=300)
    p.add_argument("--processes", type=int, default=3)
    p.add_argument("--out", default="update_path_overhead.md")
    args = p.parse_args(argv)
    rev = subprocess.run(["git", "rev-parse", "--short", args.base], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout.strip()
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(["git", "archive", rev], cwd=ROOT, capture_output=True,
                                 check=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        runs = {"base": [], "this": []}
        for _ in range(args.processes):
            runs["base"].append(_run(Path(tmp), args.rounds))
            runs["this"].append(_run(ROOT, args.rounds))
    import numpy as np
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, check=True,
                          capture_output=True, text=True).stdout.strip()
    lines = [f"| call (float32) | {rev} us | this tree ({head}) us | this / base |",
             "|---|---|---|---|"]
    for k in runs["base"][0]:
        b = float(np.median([r[k] for r in runs["base"]]))
        t = float(np.median([r[k] for r in runs["this"]]))
        lines.append(f"| {k} | {b:.1f} | {t:.1f} | {t / b:.2f} |")
    cmd = ("python -m benchmarks.update_path_overhead --base " + args.base
           + f" --rounds {args.rounds} --processes {args.processes}")
    text = ("\n".join(lines) + f"\n\nMedian over {args.processes} processes per tree of the "
            f"median over {args.rounds} rounds of 5 calls, CPU time. Produced by `{cmd}`.\n")
    print(text)
    path = ROOT / "benchmarks" / "results" / args.out
    tmp_path = path.with_suffix(".tmp")
    tmp_path.write_text(text)
    os.replace(tmp_path, path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
