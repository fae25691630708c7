"""kernels/importance.py: kernel == reference per mode, identities, saturation, literals, errors."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kernels.importance import MODES, importance_weights, importance_weights_reference
from minirl.testing.strategies import rollouts

modes = st.sampled_from(MODES)


def call(ro, mode, fn=importance_weights):
    # log-probabilities in [-10, 10] stand in for logp_new/logp_old: only differences matter
    return fn(ro["values"], ro["next_values"], ro["terminated"], ro["truncated"], mode)


@given(rollouts(), modes)
def test_kernel_matches_reference(ro, mode):
    w, logw = call(ro, mode)
    w_ref, logw_ref = call(ro, mode, fn=importance_weights_reference)
    assert w.shape == logw.shape == ro["shape"]
    assert w.dtype == logw.dtype == ro["values"].dtype
    if w.dtype == np.float64:
        # same additions in the same order: the logs agree to the last bit
        np.testing.assert_array_equal(logw, logw_ref)
        np.testing.assert_allclose(w, w_ref, rtol=1e-12, atol=0)
    else:
        # float32: the sum is exact in float64, rounded once; |log w| <= 20 * T
        np.testing.assert_allclose(logw, logw_ref, rtol=1e-6, atol=1e-5)
        np.testing.assert_allclose(w, w_ref.astype(np.float32), rtol=1e-4, atol=0)


@given(rollouts(min_T=1))
def test_modes_agree_when_every_episode_is_one_step(ro):
    ro = dict(ro, terminated=np.ones(ro["shape"], bool))
    results = [call(ro, mode) for mode in MODES]
    for w, logw in results[1:]:
        np.testing.assert_array_equal(w, results[0][0])
        np.testing.assert_array_equal(logw, results[0][1])


@given(rollouts(min_T=1))
def test_per_decision_at_the_episode_end_is_the_trajectory_weight(ro):
    _, traj = call(ro, "trajectory")
    _, per_decision = call(ro, "per_decision")
    end = ro["terminated"] | ro["truncated"]
    end[-1] = True
    np.testing.assert_array_equal(per_decision[end], traj[end])


@given(rollouts(), modes)
def test_same_policy_gives_unit_weights(ro, mode):
    w, logw = importance_weights(ro["values"], ro["values"], ro["terminated"], ro["truncated"],
                                 mode)
    np.testing.assert_array_equal(w, np.ones_like(w))
    np.testing.assert_array_equal(logw, np.zeros_like(logw))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("mode", MODES)
def test_huge_ratios_saturate_and_logs_stay_exact(dtype, mode):
    # 30 steps of log-ratio 40 (ratio e^40 each): e^1200 overflows both dtypes.
    lp_new, lp_old = np.full((30, 5), 40.0, dtype), np.zeros((30, 5), dtype)
    no = np.zeros((30, 5), bool)
    w, logw = importance_weights(lp_new, lp_old, no, no, mode)
    assert np.isfinite(w).all()
    expected = {"trajectory": np.full(30, 1200.0), "per_decision": 40.0 * np.arange(1, 31),
                "per_step": np.full(30, 40.0)}[mode]
    np.testing.assert_allclose(logw[:, 0], expected, rtol=1e-6)
    big = logw >= np.log(np.float64(np.finfo(dtype).max))
    assert (w[big] == np.finfo(dtype).max).all()
    # and tiny ratios underflow to 0, never to NaN
    w, _ = importance_weights(lp_old, lp_new, no, no, mode)
    assert np.isfinite(w).all() and (w >= 0).all()


def test_literals():
    # log-ratios ln2, ln3, ln0.5, ln4; the first episode ends (terminated) at t=1
    lp_new = np.log([2.0, 3.0, 0.5, 4.0])
    lp_old = np.zeros(4)
    term = np.array([False, True, False, False])
    no = np.zeros(4, dtype=bool)
    expected = {
        "trajectory": [6.0, 6.0, 2.0, 2.0],  # 2*3 = 6; 0.5*4 = 2
        "per_decision": [2.0, 6.0, 0.5, 2.0],  # 2; 2*3; 0.5; 0.5*4
        "per_step": [2.0, 3.0, 0.5, 4.0],
    }
    for mode, want in expected.items():
        for flags in ((term, no), (no, term)):  # truncation delimits episodes just the same
            w, logw = importance_weights(lp_new, lp_old, *flags, mode)
            np.testing.assert_allclose(w, want, rtol=1e-15)
            np.testing.assert_allclose(logw, np.log(want), rtol=1e-15, atol=1e-15)


def test_trajectory_over_envs_row_path():
    # N = 4; env 1 ends at t=0, the rest run through the rollout (T = 3).
    lp_new = np.array([[1.0, 1.0, 0.0, 2.0], [1.0, 2.0, 0.0, 2.0], [1.0, 3.0, 0.0, 2.0]])
    term = np.zeros((3, 4), bool)
    term[0, 1] = True
    _, logw = importance_weights(lp_new, np.zeros((3, 4)), term, np.zeros_like(term),
                                 "trajectory")
    # env 0: 1+1+1 = 3; env 1: [1] then [2+3 = 5, 5]; env 2: 0; env 3: 6
    np.testing.assert_array_equal(logw, [[3.0, 1.0, 0.0, 6.0], [3.0, 5.0, 0.0, 6.0],
                                         [3.0, 5.0, 0.0, 6.0]])


def test_dtypes_and_shapes():
    no = np.zeros(3, dtype=bool)
    f32 = np.zeros(3, np.float32)
    assert importance_weights(f32, f32, no, no, "per_step")[0].dtype == np.float32
    assert importance_weights(f32, np.zeros(3), no, no, "per_step")[1].dtype == np.float64
    assert importance_weights(np.zeros(3, int), f32, no, no, "trajectory")[0].dtype == np.float64


@pytest.mark.parametrize("shape", [(0,), (0, 2), (3, 0)])
@pytest.mark.parametrize("mode", MODES)
def test_empty(shape, mode):
    z, flags = np.zeros(shape, np.float32), np.zeros(shape, bool)
    w, logw = importance_weights(z, z, flags, flags, mode)
    assert w.shape == logw.shape == shape and w.dtype == np.float32


def test_errors_name_the_argument():
    x, no = np.zeros(3), np.zeros(3, dtype=bool)
    with pytest.raises(ValueError, match="per_decision"):  # lists the valid modes
        importance_weights(x, x, no, no, "per-decision")
    with pytest.raises(TypeError, match="mode"):
        importance_weights(x, x, no, no, 1)
    with pytest.raises(TypeError, match="logp_new"):
        importance_weights(np.array(["a"] * 3), x, no, no, "per_step")
    with pytest.raises(ValueError, match="logp_old"):
        importance_weights(x, np.array([0.0, -np.inf, 0.0]), no, no, "per_step")
    with pytest.raises(ValueError, match="logp_new"):
        importance_weights(np.array([np.nan, 0.0, 0.0]), x, no, no, "per_step")
    with pytest.raises(ValueError, match="logp_old"):
        importance_weights(x, np.zeros(4), no, no, "per_step")
    with pytest.raises(TypeError, match="terminated"):
        importance_weights(x, x, np.zeros(3, int), no, "per_step")
    with pytest.raises(TypeError, match="truncated"):
        importance_weights(x, x, no, np.ones(3), "per_step")
    with pytest.raises(ValueError, match="terminated"):
        importance_weights(x, x, np.zeros(2, bool), no, "per_step")
    with pytest.raises(ValueError, match="truncated"):
        importance_weights(x, x, no, np.zeros((3, 3), bool), "per_step")
    cube, cube_flags = np.zeros((2, 2, 2)), np.zeros((2, 2, 2), bool)
    with pytest.raises(ValueError, match="logp_new"):
        importance_weights(cube, cube, cube_flags, cube_flags, "trajectory")
