"""benchmarks/learning/sac.py: a rerun keeps the other seeds' rows (a replaced seed said), a
smoke run (--steps below the issue's 20000) writes nowhere near benchmarks/results."""
import pytest

from tests.benchmarks.conftest import no_temp_files, smoke_dirs

sac = pytest.importorskip("benchmarks.learning.sac")


def test_store_row_keeps_other_seeds_and_says_when_it_replaces(sandbox, monkeypatch, capsys):
    monkeypatch.setattr(sac, "RESULTS", sandbox)
    path = sandbox / "learning_sac-pendulum.csv"
    row = {c: "" for c in sac.COLUMNS}
    for seed, ret in ((1, -110.0), (0, -108.0)):
        sac.store_row(path, {**row, "library": "minirl", "seed": seed, "eval_return_mean": ret})
    assert "replacing" not in capsys.readouterr().out
    sac.store_row(path, {**row, "library": "minirl", "seed": 1, "eval_return_mean": -900.0})
    assert "seed=1 (1 row)" in capsys.readouterr().out
    rows = sac._read("learning_sac-pendulum*.csv")
    assert [(r["seed"], r["eval_return_mean"]) for r in rows] == [("0", "-108.0"),
                                                                   ("1", "-900.0")]
    assert no_temp_files(sandbox)


def test_smoke_run_goes_to_a_temp_dir(sandbox, monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(sac, "RESULTS", sandbox)
    committed = sandbox / "learning_sac-pendulum.csv"
    committed.write_text("library,seed\nminirl,0\n")
    assert sac.main(["--seeds", "0", "--steps", "300", "--no-peer",
                     "--profile-updates", "0"]) == 0
    assert "results go to" in capsys.readouterr().out
    assert committed.read_text() == "library,seed\nminirl,0\n"
    assert sorted(p.name for p in sandbox.iterdir()) == ["learning_sac-pendulum.csv"]
    (smoke,) = smoke_dirs(tmp_path)
    assert {p.name for p in smoke.iterdir()} == {"learning_sac-pendulum.csv", "learning_sac.md"}
    assert no_temp_files(tmp_path)
