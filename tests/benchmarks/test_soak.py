"""benchmarks/soak.py: a smoke run (--steps/--every other than the documented 1M/20k) leaves
benchmarks/results alone."""
from benchmarks import soak
from tests.benchmarks.conftest import no_temp_files, smoke_dirs


def test_smoke_soak_goes_to_a_temp_dir(sandbox, monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(soak, "RESULTS", sandbox)
    committed = sandbox / "soak_a2c.csv"
    committed.write_text("steps,rows,rss_mb,wall_s\n")
    assert soak.main(["--steps", "400", "--every", "200"]) == 0
    assert "results go to" in capsys.readouterr().out
    assert committed.read_text() == "steps,rows,rss_mb,wall_s\n"
    (smoke,) = smoke_dirs(tmp_path)
    assert [p.name for p in smoke.iterdir()] == ["soak_a2c.csv"]
    assert no_temp_files(tmp_path)
