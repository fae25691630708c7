"""benchmarks/learning/gradient_free.py: a rerun keeps the other (implementation, seed) rows (a
replaced one said), a --budget smoke run writes nowhere near benchmarks/results."""
import pytest

from tests.benchmarks.conftest import no_temp_files, smoke_dirs

gf = pytest.importorskip("benchmarks.learning.gradient_free")


def _rows(path):
    return [(r["impl"], r["seed"], r["final_return"]) for r in gf.read_csv_rows(path)]


def test_store_row_keeps_other_rows_and_says_when_it_replaces(sandbox, capsys):
    path = sandbox / "learning_gradient_free_ars-cartpole.csv"
    row = {c: "" for c in gf.LEARN_COLUMNS}
    for impl, seed, ret in (("minirl", 1, 500.0), ("sb3-contrib", 1, 400.0),
                            ("minirl", 0, 480.0)):
        gf.store_row(path, {**row, "impl": impl, "seed": seed, "final_return": ret})
    assert "replacing" not in capsys.readouterr().out
    gf.store_row(path, {**row, "impl": "minirl", "seed": 1, "final_return": 9.0})
    assert "impl=minirl, seed=1 (1 row)" in capsys.readouterr().out
    assert _rows(path) == [("minirl", "0", "480.0"), ("sb3-contrib", "1", "400.0"),
                           ("minirl", "1", "9.0")]
    assert no_temp_files(sandbox)


def test_budget_smoke_run_goes_to_a_temp_dir(sandbox, monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(gf, "RESULTS", sandbox)
    committed = sandbox / "learning_gradient_free_ars-cartpole.csv"
    committed.write_text("impl,seed\nminirl,0\n")
    assert gf.main(["--only", "learning", "--bench", "ars-cartpole", "--seeds", "0",
                    "--budget", "500"]) == 0
    assert "results go to" in capsys.readouterr().out
    assert committed.read_text() == "impl,seed\nminirl,0\n"
    assert [p.name for p in sandbox.iterdir()] == [committed.name]
    (smoke,) = smoke_dirs(tmp_path)
    assert {p.name for p in smoke.iterdir()} == {committed.name, "learning_gradient_free.md"}
    assert [r["seed"] for r in gf.read_csv_rows(smoke / committed.name)] == ["0"]
    assert no_temp_files(tmp_path)
