"""benchmarks/learning/invpend_diagnosis.py: the instrumented run, the noise-only updates and
the update cross-check against Stable-Baselines3 (skipped without it)."""
import math

import numpy as np
import pytest

from benchmarks.learning import invpend_diagnosis as diag

pytest.importorskip("mujoco")


def test_minirl_run_records_one_row_per_iteration_and_summarizes(tmp_path):
    rows = []
    final = diag.run_minirl(0, 640, 320, {}, rows)
    assert len(rows) == 20 and all(len(r) == len(diag.COLS) for r in rows)
    d = dict(zip(diag.COLS, np.array(rows, dtype=float).T))
    assert np.array_equal(d["steps"], np.arange(32, 641, 32))
    assert np.all(d["kl_k3"] >= 0) and np.all((0 <= d["clip_frac"]) & (d["clip_frac"] <= 1))
    assert np.isfinite(d["eval"]).sum() == 2 and final.shape == (10,)
    # the run is the suite's: the same seed gives the same numbers
    again = []
    diag.run_minirl(0, 640, 10**9, {}, again)
    assert np.array_equal(np.array(again)[:, :9], np.array(rows)[:, :9], equal_nan=True)


def test_noise_only_updates_report_log_std_and_kl():
    rows = diag.noise_drift(640, {"log_std_init": -3.0}, every=320)
    assert [r[0] for r in rows] == [320, 640]
    assert all(math.isfinite(x) for r in rows for x in r)
    assert abs(rows[-1][1] + 3.0) < 0.1


def test_update_equals_sb3_train_with_the_sample_std():
    pytest.importorskip("stable_baselines3")
    import minirl.algos.ppo as ppo_mod
    before = ppo_mod.normalize_advantages
    rows = diag.crosscheck(3, ddof1=True)
    assert ppo_mod.normalize_advantages is before  # the module is left as it was
    for k, step, diff, ls_m, ls_s in rows:
        assert diff < 1e-5 * step and abs(ls_m - ls_s) < 1e-6
    # minirl's population std (documented) is a visible but small difference
    rows = diag.crosscheck(3)
    assert all(1e-5 * r[1] < r[2] < 0.05 * r[1] for r in rows)
