"""Adversarial inputs for the rollout's private fast paths (ObsNormalizer._update_normalize,
RewardScaler._scale_step, ActionAdapter.to_env's float32 clip): each must give the bits, the
statistics, and the named error of the public call it replaces."""
import copy

import numpy as np
import pytest
from gymnasium import spaces

from minirl.normalize import ObsNormalizer, RewardScaler
from minirl.spaces import ActionAdapter


def _same(a, b):
    assert type(a) is type(b)
    if isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
    else:
        assert np.float64(a).tobytes() == np.float64(b).tobytes()


def _outcome(fn):
    try:
        return "ok", fn()
    except (ValueError, ZeroDivisionError) as e:
        return type(e).__name__, str(e)


def _obs_batches(rng, b, d):
    yield rng.normal(0.0, 1.0, (b, d))
    yield np.where(rng.random((b, d)) < 0.5, -0.0, 0.0)                   # signed zeros
    yield rng.integers(-3, 4, (b, d)) * 5e-324                           # subnormals
    yield rng.choice([-1.0, 1.0], (b, d)) * 10.0 ** rng.uniform(153, 155, (b, d))
    yield np.full((b, d), 1.5e308)
    yield 1.0 + rng.integers(-2, 3, (b, d)) * 2.0 ** -52                  # last-bit spread
    x = rng.normal(0.0, 1.0, (b, d))
    x[rng.integers(b), rng.integers(d)] = np.nan
    yield x


STATES = ["warm", "count_1e300", "count_max", "count_inf", "neg_zero_mean", "count_minus_b"]
CLIPS = [10.0, -1.0, np.inf, 1e-300]


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("clip", CLIPS)
def test_update_normalize_matches_the_public_call_on_extreme_states(state, clip):
    rng = np.random.default_rng([STATES.index(state), CLIPS.index(clip)])
    for b, d in [(1, 3), (2, 1), (3, 2), (7, 1), (8, 1), (8, 3), (9, 3), (16, 2), (5, 12), (17, 4)]:
        for x in _obs_batches(rng, b, d):
            for layout in ("C", "F", "f32"):
                with np.errstate(over="ignore"):   # (1.5e308 -> inf in float32)
                    obs = (np.asfortranarray(x) if layout == "F" else
                           x.astype(np.float32) if layout == "f32" else x)
                norm = ObsNormalizer((d,), clip=clip)
                mean, var = rng.normal(0.0, 1.0, d), rng.uniform(0.0, 2.0, d)
                count = {"warm": 100.0, "count_1e300": 1e300, "count_max": 1.7e308,
                         "count_inf": np.inf, "neg_zero_mean": 3.0, "count_minus_b": -b}[state]
                if state == "neg_zero_mean":
                    mean = np.full(d, -0.0)
                norm.rms.load_state_dict({"mean": mean, "var": var, "count": count})
                twin = copy.deepcopy(norm)
                with np.errstate(all="ignore"):
                    got = _outcome(lambda: norm._update_normalize(obs))
                    want = _outcome(lambda: twin(obs, update=True))
                assert got[0] == want[0], (b, d, layout)
                if got[0] == "ok":
                    _same(got[1], want[1])
                else:
                    assert got[1] == want[1]
                for f in ("mean", "var", "count"):
                    _same(getattr(norm.rms, f), getattr(twin.rms, f))


@pytest.mark.parametrize("n", [1, 2, 7, 8, 9, 16, 17])
def test_scale_step_matches_scale_with_extreme_rewards_and_clips(n):
    rng = np.random.default_rng(n)
    kinds = [lambda: rng.normal(0.0, 1.0, n), lambda: rng.choice([-1.0, 1.0], n) * 1e300,
             lambda: np.full(n, 1e300), lambda: np.where(rng.random(n) < 0.5, -0.0, 0.0),
             lambda: rng.integers(-5, 6, n) * 5e-324, lambda: np.full(n, -1.0),
             lambda: rng.normal(0.0, 1.0, n) * 10.0 ** rng.uniform(-300, 300, n)]
    for trial in range(30):
        sc = RewardScaler(n, float(rng.choice([0.0, 0.5, 0.99, 1.0])),
                          eps=float(rng.choice([1e-8, 1e-300])))
        sc.clip = float(rng.choice([10.0, 0.0, np.inf, 1e-300, -2.0, 1e39]))   # set after init
        if trial % 3 == 0:
            sc.rms.load_state_dict({"mean": np.float64(0.5), "var": np.float64(5e-324),
                                    "count": 1e6})
        twin = copy.deepcopy(sc)
        for step in range(4):
            rewards = kinds[rng.integers(len(kinds))]()
            if rng.random() < 0.1:
                rewards[rng.integers(n)] = rng.choice([np.nan, np.inf])
            done = None if rng.random() < 0.5 else rng.random(n) < 0.3
            with np.errstate(all="ignore"):
                got = _outcome(lambda: sc._scale_step(rewards, done))
                want = _outcome(lambda: twin.scale(rewards, done))
            assert got[0] == want[0]
            if got[0] == "ok":
                _same(got[1][0], want[1])
                assert got[1][1] == (float(twin.rms.var) != 0.0)
            else:
                assert got[1] == want[1]
            for a, b in ((sc.ret, twin.ret), (sc.rms.mean, twin.rms.mean),
                         (sc.rms.var, twin.rms.var), (sc.rms.count, twin.rms.count)):
                _same(a, b)


@pytest.mark.parametrize("low, high", [(0.0, 2.0), (-3.0, -0.0), (-1.0, 1.0), (-3.4e38, 3.4e38)])
def test_float32_box_to_env_equals_the_float64_clip_on_c_ordered_actions(low, high):
    rng = np.random.default_rng(0)
    space = spaces.Box(low, high, (3,), dtype=np.float32)
    adapter = ActionAdapter(space, dtype=np.float32)
    values = np.array([0.0, -0.0, low, high, np.nan, np.inf, -np.inf, 1e-45, -1e-45, 3.4e38],
                      dtype=np.float32)
    lo64, hi64 = (np.asarray(b, dtype=np.float64) for b in (space.low, space.high))
    for b in range(1, 12):
        actions = rng.choice(values, (b, 3))
        want = np.clip(actions, lo64, hi64).astype(np.float32)
        got = adapter.to_env(actions)
        assert got.dtype == np.float32 and got.tobytes() == want.tobytes()
