"""benchmarks/learning/estimators.py: rows stored by (run, seed) / (trained_steps, baseline),
a rerun keeps the others (a replaced one said); smaller sizes are a smoke run in a temp dir."""
import pytest

from tests.benchmarks.conftest import no_temp_files, smoke_dirs

est = pytest.importorskip("benchmarks.learning.estimators")


def test_rerun_seed_replaces_only_its_row(sandbox, capsys):
    path = sandbox / "curves.csv"
    runs = list(est.RUNS)
    for run, seed in ((runs[1], 0), (runs[0], 1), (runs[0], 0)):
        est.store_curve_row(path, {"run": run, "seed": seed, "steps": 100, "command": "a"})
    est.store_curve_row(path, {"run": runs[0], "seed": 1, "steps": 200, "command": "b"})
    assert "seed=1 (1 row)" in capsys.readouterr().out
    assert [(r["run"], r["seed"], r["steps"]) for r in est._read_csv(path)] == [
        (runs[0], 0, 100), (runs[0], 1, 200), (runs[1], 0, 100)]     # RUNS order, then seed
    assert no_temp_files(sandbox)


def test_smaller_sizes_are_a_smoke_run_in_a_temp_dir(sandbox, monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(est, "RESULTS", sandbox)
    committed = sandbox / "learning_estimators_curves.csv"
    committed.write_text("run,seed\nx,0\n")
    est.main(["--part", "variance", "--snapshots", "0", "--batches", "2", "--episodes", "2"])
    assert "results go to" in capsys.readouterr().out
    assert committed.read_text() == "run,seed\nx,0\n"
    assert [p.name for p in sandbox.iterdir()] == [committed.name]
    (smoke,) = smoke_dirs(tmp_path)
    assert {p.name for p in smoke.iterdir()} == {"learning_estimators_variance.csv",
                                                 "learning_estimators.md"}
    assert [r["baseline"] for r in est._read_csv(smoke / "learning_estimators_variance.csv")] \
        == list(est.BASELINES)
    assert no_temp_files(tmp_path)
