"""benchmarks/learning/ars_independent.py: the committed independent ARS cross-check runs and is
seeded (the notes quote its output)."""
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[3] / "benchmarks" / "learning" / "ars_independent.py"


def test_independent_ars_runs_and_is_seeded():
    pytest.importorskip("mujoco")
    runs = [subprocess.run([sys.executable, str(SCRIPT), "0", "2", "clip"], capture_output=True,
                           text=True, check=True).stdout for _ in range(2)]
    assert runs[0] == runs[1] and runs[0].startswith("seed 0 first None final ")
