"""Bit-identity check of on-policy training between this tree and a git revision.

    python -m benchmarks.bitcheck [REV=HEAD] [--quick]

For a change meant to alter no result (a speed-up): run it against the revision before the
change. For each case (algo, env, steps, config overrides on top of the preset), trains seed 0 in a
fresh interpreter from each tree and compares a SHA-256 of every state array, the agent's
rng state, the collector's current obs, and the per-iteration metrics (logged losses).
Prints one line per case, exit 1 on any difference.
"""
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CASES = [
    ("a2c", "Pendulum-v1", 4000, {}),
    ("a2c", "MountainCarContinuous-v0", 4000, {}),
    ("a2c", "Acrobot-v1", 4000, {}),
    ("a2c", "MountainCar-v0", 4000, {}),
    ("a2c", "CartPole-v1", 4000, {}),
    ("a2c", "LunarLanderContinuous-v3", 3000, {}),
    ("a2c", "Pendulum-v1", 2000, {"dtype": "float64"}),
    ("a2c", "Pendulum-v1", 2000, {"use_sde": False}),
    ("a2c", "CartPole-v1", 2000, {"ent_coef": 0.01, "shared_trunk": True}),
    ("a2c", "Acrobot-v1", 2000, {"norm_adv": True}),
    ("a2c", "MountainCarContinuous-v0", 2000, {"dtype": "float64"}),
    ("ppo", "CartPole-v1", 2000, {"dtype": "float64"}),
    ("ppo", "InvertedPendulum-v5", 3000, {}),
    ("ppo", "Pendulum-v1", 4096, {}),
    ("ppo", "MountainCarContinuous-v0", 2000, {}),
    ("ppo", "CartPole-v1", 3000, {}),
    ("ppo", "Acrobot-v1", 8192, {}),
    ("ppo", "Pendulum-v1", 4096, {"dtype": "float64", "ent_coef": 0.01}),
    ("ppo", "Pendulum-v1", 4096, {"action_bounds": "squash"}),
    ("ppo", "Hopper-v5", 1024, {}),
    ("reinforce", "CartPole-v1", 3000, {}),
]

CHILD = r"""
import hashlib, json, os, sys
for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[v] = "1"
import numpy as np
from minirl.algos import ALGOS
from minirl.presets import find
cases = json.loads(sys.argv[1])
for algo, env, steps, over in cases:
    cls = ALGOS[algo]
    preset = find(algo, env)
    kw = dict(preset.overrides) if preset else {}
    kw.update(over)
    env_kwargs = preset.env_kwargs if preset else None
    agent = cls(env, cls.Config(**kw), seed=0, env_kwargs=env_kwargs)
    h = hashlib.sha256()
    def cb(a, m):
        h.update(json.dumps({k: (float(v) if isinstance(v, (int, float, np.floating, np.integer)) else str(v))
                             for k, v in sorted(m.items())}, sort_keys=True).encode())
        return True
    agent.learn(steps, callback=cb)
    for k, v in sorted(agent.state_arrays().items()):
        h.update(k.encode()); h.update(np.ascontiguousarray(v).tobytes())
    h.update(json.dumps(agent.rng.bit_generator.state, sort_keys=True, default=str).encode())
    col = getattr(agent, "collector", None)
    if col is not None and col.obs is not None:
        h.update(np.ascontiguousarray(col.obs).tobytes())
    ev = agent.evaluate(2, deterministic=True, seed=123)
    h.update(np.asarray(ev).tobytes())
    print(json.dumps([algo, env, over, h.hexdigest()]), flush=True)
"""


def run(tree: Path, cases) -> list:
    out = subprocess.run([sys.executable, "-c", CHILD, json.dumps(cases)], cwd=tree,
                         env={**os.environ, "PYTHONPATH": str(tree)}, capture_output=True,
                         text=True)
    if out.returncode:
        print(out.stderr[-3000:]); sys.exit(2)
    return [json.loads(l)[3] for l in out.stdout.splitlines() if l.startswith("[")]


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    rev = args[0] if args else "HEAD"
    cases = CASES[:6] if "--quick" in sys.argv else CASES
    with tempfile.TemporaryDirectory(prefix="bitcheck-") as tmp:
        archive = subprocess.run(["git", "archive", rev], cwd=ROOT, capture_output=True,
                                 check=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        base = run(Path(tmp), cases)
    mine = run(ROOT, cases)
    bad = 0
    for c, a, b in zip(cases, base, mine):
        same = a == b
        bad += not same
        print(("same " if same else "DIFF ") + f"{c[0]} {c[1]} {c[2]} {c[3]}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
