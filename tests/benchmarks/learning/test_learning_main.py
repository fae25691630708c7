"""``python -m benchmarks.learning``: rows stored per seed (other seeds kept, a replaced seed
said), a --steps smoke run writes nowhere near benchmarks/results."""
import importlib

from tests.benchmarks.conftest import no_temp_files, smoke_dirs

bench = importlib.import_module("benchmarks.learning.__main__")


def test_steps_smoke_run_goes_to_a_temp_dir_and_reruns_keep_other_seeds(sandbox, monkeypatch,
                                                                        tmp_path, capsys):
    monkeypatch.setattr(bench, "RESULTS", sandbox)
    committed = sandbox / "learning_ppo-cartpole.csv"
    committed.write_text("benchmark,seed\nppo-cartpole,0\n")
    args = ["--only", "ppo-cartpole", "--steps", "256", "--seeds"]
    assert bench.main(args + ["1", "0"]) == 0
    assert "results go to" in capsys.readouterr().out
    assert committed.read_text() == "benchmark,seed\nppo-cartpole,0\n"
    (smoke,) = smoke_dirs(tmp_path)
    assert bench.main(args + ["1"]) == 0                  # the same process: same smoke dir
    assert "seed=1 (1 row)" in capsys.readouterr().out
    rows = bench.read_csv_rows(smoke / committed.name)
    assert [r["seed"] for r in rows] == ["0", "1"]
    assert rows[1]["command"].endswith("--seeds 1")
    assert {p.name for p in smoke.iterdir()} == {committed.name, "learning.md"}
    assert no_temp_files(tmp_path)


def test_table_only_stays_in_results(sandbox, monkeypatch, tmp_path):
    monkeypatch.setattr(bench, "RESULTS", sandbox)
    assert bench.main(["--table-only"]) == 0
    assert [p.name for p in sandbox.iterdir()] == ["learning.md"]
    assert smoke_dirs(tmp_path) == [] and no_temp_files(sandbox)
