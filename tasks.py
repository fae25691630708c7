#!/usr/bin/env python3
"""The only entry point a newcomer needs: it creates ``.venv``, installs minirl into it, runs a job.

    python3 tasks.py train   # the main job (see README)
    python3 tasks.py test    # the whole test suite
    python3 tasks.py bench   # the micro-benchmarks (optional peers: `python3 tasks.py bench --peers`)

Only the standard library is used here, so a machine with nothing but python3 can run it.
The virtual environment is (re)installed whenever setup.cfg or pyproject.toml change.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / ("python.exe" if os.name == "nt" else "python")
STAMP = VENV / ".minirl-install-stamp"

# Benchmark peers: optional, never dependencies of minirl. torch is installed first, pinned,
# from PyTorch's CPU-only index (PyPI's Linux wheel is the multi-GB CUDA build; an installed
# 2.13.0, e.g. 2.13.0+cpu, already satisfies the pin and nothing is downloaded); the others
# are pinned to the versions the adapters in benchmarks/peers.py were checked against (they
# call private Tianshou kernels whose names changed between releases).
TORCH = "torch==2.13.0"
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
PEERS = ["stable-baselines3==2.9.2", "tianshou==2.0.1", "cpprb==11.0.0"]


def _run(cmd: list[str], **kw) -> int:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    return subprocess.call([str(c) for c in cmd], cwd=ROOT, **kw)


def _fingerprint() -> str:
    h = hashlib.sha256()
    for name in ("setup.cfg", "pyproject.toml"):
        h.update((ROOT / name).read_bytes())
    return h.hexdigest()


# What each job installs. The test run covers the optional integrations too (Ray population
# evaluation, Minari datasets), so it installs those extras: a newcomer's `tasks.py test`
# exercises everything CI does. Training needs only minirl itself.
EXTRAS = {"train": "", "bench": "test", "test": "test,ray,minari"}


def ensure_venv(extras: str = "test") -> None:
    """Create .venv and install this checkout (editable, with ``extras``) if needed."""
    if not PY.exists():
        if _run([sys.executable, "-m", "venv", VENV]) != 0:
            sys.exit("tasks.py: could not create the virtual environment in .venv")
    have = STAMP.read_text().splitlines() if STAMP.exists() else []
    fingerprint = _fingerprint()
    installed = set(have[1].split(",")) - {""} if len(have) > 1 and have[0] == fingerprint else None
    wanted = set(extras.split(",")) - {""}
    if installed is not None and wanted <= installed:
        return
    extras = ",".join(sorted(wanted | (installed or set())))
    spec = f".[{extras}]" if extras else "."
    steps = [
        [PY, "-m", "pip", "install", "--quiet", "--upgrade", "pip"],
        [PY, "-m", "pip", "install", "--quiet", "-e", spec],
    ]
    for cmd in steps:
        if _run(cmd) != 0:
            sys.exit("tasks.py: installing minirl into .venv failed (see pip's output above)")
    STAMP.write_text(f"{fingerprint}\n{extras}\n")


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"train", "test", "bench"}:
        print(__doc__)
        return 2
    job, rest = argv[0], argv[1:]
    ensure_venv(EXTRAS[job])
    env = dict(os.environ)
    if job == "test":
        return _run([PY, "-m", "pytest", *rest], env=env)
    if job == "bench":
        if "--peers" in rest:
            rest = [a for a in rest if a != "--peers"]
            pip = [PY, "-m", "pip", "install", "--quiet"]
            if (_run([*pip, TORCH, "--index-url", TORCH_CPU_INDEX]) != 0
                    or _run([*pip, *PEERS]) != 0):
                return 1
        return _run([PY, "-m", "benchmarks", *rest], env=env)
    # train: the README's main job.
    return _run([BIN / "minirl", "train", "ppo", "--env", "CartPole-v1", *rest], env=env)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
