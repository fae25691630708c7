"""A sandbox for benchmark runs in tests: a fake ``benchmarks/results`` holding a "committed"
file, and temporary directories (smoke runs) made under the test's own tmp_path."""
import tempfile

import pytest

from benchmarks import _harness


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """``(results_dir, sentinel_text)``. Patch the benchmark module's ``RESULTS`` to
    ``results_dir`` yourself; smoke directories land in ``tmp_path / "tmp"``."""
    results = tmp_path / "results"
    results.mkdir()
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    monkeypatch.setattr(_harness, "_SMOKE_DIR", None)
    monkeypatch.setattr(_harness, "RESULTS", _harness.RESULTS)
    return results


def smoke_dirs(tmp_path):
    """The smoke directories made during the test (under the sandbox's tmp)."""
    return sorted(p for p in (tmp_path / "tmp").iterdir() if p.name.startswith("minirl_bench"))


def no_temp_files(root) -> bool:
    return not [p for p in root.rglob("*") if p.name.endswith(".tmp")]
