"""benchmarks/_harness.py: atomic result files, rows merged by key, smoke runs kept out of
benchmarks/results."""
import csv

import pytest

from benchmarks import _harness


def _read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_atomic_writers_leave_no_temporary_file_and_keep_the_mode(tmp_path):
    out = tmp_path / "a.md"
    _harness.atomic_write_text(out, "one\n")
    out.chmod(0o640)
    _harness.atomic_write_text(out, "two\n")
    assert out.read_text() == "two\n"
    assert out.stat().st_mode & 0o777 == 0o640
    path = _harness.atomic_write_csv(tmp_path / "b.csv", [{"x": 1, "y": 0.5}, {"x": 2}])
    assert _read(path) == [{"x": "1", "y": "0.5"}, {"x": "2", "y": ""}]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.md", "b.csv"]


def test_an_interrupted_write_leaves_the_old_file(tmp_path):
    out = tmp_path / "r.png"
    out.write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt):
        with _harness.atomic_path(out) as tmp:
            tmp.write_bytes(b"half")
            raise KeyboardInterrupt
    assert out.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["r.png"]


def test_store_rows_keeps_other_keys_and_says_what_it_replaces(tmp_path, capsys):
    path = tmp_path / "r.csv"
    key = ("impl", "seed")
    _harness.store_rows(path, [{"impl": "a", "seed": 0, "v": 1}, {"impl": "b", "seed": 0,
                                                                  "v": 2}], key)
    _harness.store_rows(path, [{"impl": "a", "seed": 1, "v": 3}], key)
    assert "replacing" not in capsys.readouterr().out
    # A rerun of (a, 0) replaces that row only: (b, 0) and (a, 1) stay, and it is said.
    rows = _harness.store_rows(path, [{"impl": "a", "seed": 0, "v": 9}], key,
                               sort_key=lambda r: (int(r["seed"]), r["impl"]))
    assert "replacing in" in (out := capsys.readouterr().out) and "impl=a, seed=0 (1 row)" in out
    assert [(r["impl"], str(r["seed"]), str(r["v"])) for r in _read(path)] == [
        ("a", "0", "9"), ("b", "0", "2"), ("a", "1", "3")]
    assert len(rows) == 3
    # A key with several rows (one per evaluation) is replaced as a group.
    _harness.store_rows(path, [{"impl": "c", "seed": 0, "v": v} for v in (1, 2)], key)
    _harness.store_rows(path, [{"impl": "c", "seed": 0, "v": 5}], key)
    assert "impl=c, seed=0 (2 rows)" in capsys.readouterr().out
    assert [r["v"] for r in _read(path) if r["impl"] == "c"] == ["5"]
    assert [p.name for p in tmp_path.iterdir()] == ["r.csv"]


def test_emit_replaces_a_table_with_a_line_and_quick_goes_to_a_temp_dir(tmp_path, monkeypatch,
                                                                         capsys):
    monkeypatch.setattr(_harness, "RESULTS", tmp_path)
    monkeypatch.setattr(_harness, "_SMOKE_DIR", None)
    t = _harness.Table("t")
    t.add(name="x", time=1.0)
    _harness.emit(t, "t")
    assert "replacing" not in capsys.readouterr().out
    _harness.emit(t, "t")
    assert "replacing" in capsys.readouterr().out
    assert [p.name for p in tmp_path.iterdir()] == ["t.csv"]
    _harness.emit(t, "t_quick", quick=True)
    out = capsys.readouterr().out
    smoke = _harness._SMOKE_DIR
    assert f"results go to {smoke}" in out and smoke != tmp_path
    assert (smoke / "t_quick.csv").exists() and not (tmp_path / "t_quick.csv").exists()
    (smoke / "t_quick.csv").unlink()
    smoke.rmdir()
