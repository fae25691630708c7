"""The compounding-errors benchmark's bookkeeping (``benchmarks/learning/imitation.py``): a
seed's value at a budget, labels to reach the level, the level itself, Pendulum regions and
DAgger's D handed to BC."""
import numpy as np

from benchmarks.learning import imitation as bench


def _rows():
    rows = [dict(setting="pendulum", method="expert", seed="-", labels="0", return_mean="-120"),
            dict(setting="pendulum", method="random", seed="-", labels="0", return_mean="-1120")]
    for seed, pts in (("0", [(200, -900), (400, -160), (800, -300)]),
                      ("1", [(200, -800), (230, -500), (700, -150)])):
        rows += [dict(setting="pendulum", method="dagger", seed=seed, labels=str(lab),
                      return_mean=str(ret)) for lab, ret in pts]
    return rows


def test_budget_values_and_labels_to_level():
    rows = _rows()
    expert, rand, level = bench.threshold(rows, "pendulum")
    assert (expert, rand, level) == (-120.0, -1120.0, -1120.0 + 0.95 * 1000.0)   # -170
    curve = bench._curve(rows, "pendulum", "dagger")
    # Last evaluation with at most that many labels: seed 1 has no point at 400 -> its 230 one.
    assert bench.at_budget(curve, 400) == [-160.0, -500.0]
    assert bench.at_budget(curve, 100) == []
    # First reaching -170: seed 0 at 400 (even though it drops after), seed 1 at 700.
    assert bench.first_reaching(curve, level) == [400, 700]
    assert bench.first_reaching(curve, -100.0) == [None, None]
    assert bench._median_labels([400, None, 700]) == 700.0
    assert np.isinf(bench._median_labels([None, None, 700]))
    assert bench._fmt_labels(np.inf, [200, 3200]) == "> 3200"


def test_pendulum_regions():
    obs = np.array([[1.0, 0.0, 0.0],        # upright at rest: top
                    [-1.0, 0.0, 0.0],       # hanging at rest: E = -1
                    [1.0, 0.0, 8.0],        # upright at 8 rad/s: E = 3.13, spinning
                    [0.0, 1.0, 1.0]])       # horizontal, slow: none of them
    assert bench.pendulum_regions(obs) == {"top": 0.5, "spinning": 0.25, "hanging": 0.25}


def test_dataset_of_dagger_is_its_pairs():
    from minirl.algos.dagger import DAgger, DAggerConfig
    agent = DAgger("CartPole-v1", DAggerConfig(policy="categorical", steps_per_iter=20,
                                               updates_per_iter=5, batch_size=16), seed=0)
    agent.learn(20)
    d = bench.dataset_of(agent)
    assert len(d) == agent.data_obs.shape[0] == 520
    np.testing.assert_array_equal(d.obs, agent.data_obs)
    np.testing.assert_array_equal(d.actions, agent.data_actions)


def test_a_rerun_replaces_only_the_method_and_seed_it_ran(tmp_path, monkeypatch, capsys):
    from tests.benchmarks.conftest import no_temp_files
    path = tmp_path / "imitation_compounding_pendulum.csv"

    def rows(method, seed, *rets, cmd="a"):
        return [dict(setting="pendulum", method=method, seed=seed, labels=200 * 2**i,
                     return_mean=r, command=cmd) for i, r in enumerate(rets)]

    bench.store(path, rows("expert", "-", -120.0) + rows("random", "-", -1120.0), bench.KEY)
    for seed in (0, 1):
        bench.store(path, rows("bc", seed, -900.0, -300.0), bench.KEY)
        bench.store(path, rows("dagger", seed, -800.0), bench.KEY)
    assert "replacing" not in capsys.readouterr().out
    # `--methods bc --seeds 1`: its reference rows and bc seed 1 (two rows) are replaced; bc
    # seed 0 and every dagger row stay (the old code dropped bc seed 0 too).
    bench.store(path, rows("expert", "-", -121.0, cmd="b") + rows("random", "-", -1120.0,
                                                                  cmd="b"), bench.KEY)
    bench.store(path, rows("bc", 1, -500.0, cmd="b"), bench.KEY)
    out = capsys.readouterr().out
    assert "method=bc, seed=1 (2 rows)" in out and "method=expert, seed=- (1 row)" in out
    got = [(r["method"], r["seed"], r["return_mean"], r["command"])
           for r in bench.read_csv(path)]
    assert got == [("expert", "-", "-121", "b"), ("random", "-", "-1120", "b"),
                   ("bc", "0", "-900", "a"), ("bc", "0", "-300", "a"),
                   ("dagger", "0", "-800", "a"), ("dagger", "1", "-800", "a"),
                   ("bc", "1", "-500", "b")]
    assert no_temp_files(tmp_path)
