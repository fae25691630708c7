"""The suite table's verdict and its CSV superseding rule (``benchmarks/learning/suite.py``)."""
from benchmarks.learning import suite


def test_verdict_needs_peer_and_zoo_and_cpu():
    # PPO MountainCarContinuous-v0: minirl 0 in 3/3 seeds, SB3 (74, 94, 0), RL-Zoo 88.3 +- 2.6.
    # The old rule (mean >= the peer's worst seed) called this met.
    ok, lines = suite.verdict([0.0, 0.0, 0.0], [74.26, 93.98, -0.04], (88.343, 2.572), 0.24)
    assert not ok
    assert lines[0].startswith("peer MISSED: 0.0 < 56.1 - 40.5 = 15.6")
    assert lines[1].startswith("RL-Zoo MISSED: 0.0 < 88.3 - 2.6 = 85.8")
    assert lines[2].startswith("CPU met: 0.24")


def test_verdict_met_and_each_failure_named():
    ok, lines = suite.verdict([-128.2, -145.4, -129.0], [-133.2, -134.0, -135.3],
                              (-172.2, 104.2), 0.31)
    assert ok and all(" met" in x for x in lines)
    ok, lines = suite.verdict([-128.2, -145.4, -129.0], [-133.2, -134.0, -135.3],
                              (-172.2, 104.2), 0.47)
    assert not ok and lines[2].startswith("CPU MISSED: 0.47")
    ok, lines = suite.verdict([-74.7] * 3, [], (-73.5, 18.2), None)   # peer not run
    assert not ok and lines == ["peer not run", "RL-Zoo met: -74.7 >= -73.5 - 18.2 = -91.7"]
    ok, lines = suite.verdict([1.0] * 3, [1.0] * 3, None, 0.1)     # no published row
    assert not ok and lines[1] == "no RL-Zoo result"
    # A peer still running (1 of 3 seeds) is not compared, whatever its value.
    ok, lines = suite.verdict([-74.7] * 3, [-83.1], (-73.5, 18.2), 0.33)
    assert not ok and lines[0] == "peer partial: 1 of 3 seeds, not compared"
    assert len(lines) == 2                                            # no CPU verdict either


def test_newer_csv_supersedes_same_impl_algo_env_only():
    def row(f, impl, env, seed, ret):
        return {"_file": f, "impl": impl, "algo": "ppo", "env": env, "seed": str(seed),
                "budget": "20000", "final_return": str(ret)}
    rows = ([row("learning_suite.csv", "minirl", "MCC", s, 0.0) for s in range(3)]
            + [row("learning_suite.csv", "minirl", "Pendulum", 0, -130)]
            + [row("learning_suite_sb3.csv", "sb3", "MCC", s, 80) for s in range(3)]
            + [row("learning_suite_sde.csv", "minirl", "MCC", s, 90) for s in range(3)])
    times = {"learning_suite.csv": 1.0, "learning_suite_sb3.csv": 2.0,
             "learning_suite_sde.csv": 3.0}
    kept, old = suite.supersede(rows, times.get)
    assert sorted((r["_file"], r["impl"], r["env"]) for r in kept) == sorted(
        [("learning_suite.csv", "minirl", "Pendulum")]
        + [("learning_suite_sb3.csv", "sb3", "MCC")] * 3
        + [("learning_suite_sde.csv", "minirl", "MCC")] * 3)
    assert [(r["_file"], r["_by"]) for r in old] == [
        ("learning_suite.csv", "learning_suite_sde.csv")] * 3
    # An older sde file would not override the newer one.
    times["learning_suite_sde.csv"] = 0.5
    kept, old = suite.supersede(rows, times.get)
    assert {r["_file"] for r in old} == {"learning_suite_sde.csv"}


def test_every_peer_override_is_a_dict_of_sb3_settings_and_every_reason_a_string():
    # Two reasons once landed in ZOO_PEER, where the peer run unpacks settings with **.
    from benchmarks.learning.suite import REASONS, ZOO_PEER

    assert all(isinstance(v, dict) for v in ZOO_PEER.values())
    assert all(isinstance(v, str) for v in REASONS.values())


def test_cpu_compare_interleaves_two_revisions_and_reports_the_median_ratio(monkeypatch):
    # Each timed run is a fresh process importing minirl from a tree; here the runner is
    # replaced by a table of times per tree (warm-up runs have steps == 1, not counted).
    calls = []

    def fake(root, algo, env, steps, seed=0):
        calls.append((root.name, steps))
        return 4.0 if root == suite.RESULTS.parents[1] else 5.0
    monkeypatch.setattr(suite, "_train_cpu", fake)
    text = suite.cpu_compare("a2c", "CartPole-v1", 1000, 3, "HEAD")
    assert [s for _, s in calls] == [1, 1] + [1000] * 6
    assert calls[2][0] != calls[3][0] and calls[2][0] == calls[4][0]    # interleaved
    assert "| this tree | 4.00 (4.00, 4.00, 4.00) |" in text
    assert "this tree / baseline" in text and "0.800 (20.0% less CPU)" in text


def test_write_keeps_other_rows_announces_a_replaced_one_and_leaves_no_temp(tmp_path, capsys):
    path = tmp_path / "learning_suite_x.csv"
    row = {c: "" for c in suite.COLUMNS}
    a = {**row, "impl": "minirl", "algo": "ppo", "env": "E", "seed": "0", "budget": "10",
         "final_return": "1.0"}
    b = {**a, "seed": "1", "final_return": "2.0"}
    suite._write([a, b], path)
    assert "replacing" not in capsys.readouterr().out
    suite._write(suite._read(path) + [{**a, "final_return": "3.0"}], path)
    assert "replacing the minirl ppo E seed 0 row" in capsys.readouterr().out
    got = {(r["seed"], r["final_return"]) for r in suite._read(path)}
    assert got == {("0", "3.0"), ("1", "2.0")}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["learning_suite_x.csv"]


def test_steps_smoke_run_goes_to_a_temp_dir_and_every_table_has_its_notes(sandbox, monkeypatch,
                                                                         tmp_path, capsys):
    from tests.benchmarks.conftest import no_temp_files, smoke_dirs

    monkeypatch.setattr(suite, "RESULTS", sandbox)
    committed = {"learning_suite.csv": ",".join(suite.COLUMNS) + "\n",
                 "learning_suite.md": "# the committed table\n"}
    for name, text in committed.items():
        (sandbox / name).write_text(text)
    notes = suite.NOTES_PATH.read_text()        # the default --notes: the committed notes
    assert suite.main(["--algos", "ppo", "--envs", "CartPole-v1", "--steps", "256",
                       "--seeds", "0", "--eval-episodes", "1"]) == 0
    out = capsys.readouterr().out
    assert "--steps given: results go to" in out
    assert {p.name: p.read_text() for p in sandbox.iterdir()} == committed   # untouched
    (smoke,) = smoke_dirs(tmp_path)
    assert {p.name for p in smoke.iterdir()} == {"learning_suite.csv", "learning_suite.md"}
    (row,) = suite._read(smoke / "learning_suite.csv")
    assert (row["impl"], row["algo"], row["env"], row["budget"]) == ("minirl", "ppo",
                                                                     "CartPole-v1", "256")
    table = (smoke / "learning_suite.md").read_text()
    assert "| ppo | CartPole-v1 | 256 | 0 |" in table and table.endswith(notes + "\n")
    # --table-only (no --steps) rebuilds the results' own table, with the notes by default
    monkeypatch.setattr(suite, "RESULTS", sandbox)
    assert suite.main(["--table-only"]) == 0
    assert (sandbox / "learning_suite.md").read_text().endswith(notes + "\n")
    assert (sandbox / "learning_suite.csv").read_text() == committed["learning_suite.csv"]
    assert no_temp_files(tmp_path)
