"""Tests for minirl/imitation/dataset.py: validation (ragged episodes, boundaries, actions
outside the space, NaN), bit-identical .npz and Minari round trips, episode views."""
import numpy as np
import pytest
from gymnasium import spaces

from minirl.imitation import Demonstrations, collect_demonstrations

OBS = spaces.Box(-np.inf, np.inf, (2,), np.float32)
BOX = spaces.Box(-1.0, 1.0, (1,), np.float32)


def _episode(t, rng, terminated=True):
    return {"obs": rng.standard_normal((t + 1, 2)).astype(np.float32),
            "actions": rng.uniform(-1, 1, (t, 1)), "rewards": rng.standard_normal(t),
            "terminated": np.r_[np.zeros(t - 1, bool), terminated],
            "truncated": np.r_[np.zeros(t - 1, bool), not terminated]}


def _demos(seed=0):
    rng = np.random.default_rng(seed)
    return Demonstrations.from_episodes([_episode(3, rng), _episode(5, rng, False)], OBS, BOX,
                                        "minirl/TwoPaths-v0")


def test_from_episodes_layout_and_views():
    d = _demos()
    assert len(d) == 8 and d.n_episodes == 2
    np.testing.assert_array_equal(d.episode_lengths, [3, 5])
    assert d.obs.shape == (8, 2) and d.final_obs.shape == (2, 2) and d.actions.shape == (8, 1)
    ep = d.episode(1)
    assert ep["obs"].shape == (6, 2) and ep["truncated"][-1] and not ep["terminated"][-1]
    np.testing.assert_array_equal(d.episode_returns(), [d.rewards[:3].sum(), d.rewards[3:].sum()])
    assert d.first_episodes(1).equals(Demonstrations.from_episodes([d.episode(0)], OBS, BOX,
                                                                   d.env_id))


def test_first_steps_cuts_the_stream_of_episodes():
    d = _demos()
    assert d.first_steps(3).equals(d.first_episodes(1))
    assert d.first_steps(8).equals(d)
    cut = d.first_steps(5)               # episode 0 whole, episode 1's first 2 steps
    np.testing.assert_array_equal(cut.episode_lengths, [3, 2])
    np.testing.assert_array_equal(cut.obs, d.obs[:5])
    np.testing.assert_array_equal(cut.actions, d.actions[:5])
    np.testing.assert_array_equal(cut.final_obs[1], d.obs[5])    # s_3 of episode 1
    assert cut.terminated.tolist() == [False, False, True, False, False]   # ep 0 terminated
    assert cut.truncated.tolist() == [False, False, False, False, True]    # ep 1 cut
    for bad in (0, 9, 2.0, True):
        with pytest.raises(ValueError, match="n must"):
            d.first_steps(bad)


def test_npz_round_trip_is_bit_identical_and_pickle_free(tmp_path):
    d = _demos()
    d.save_npz(tmp_path / "d.npz")
    with np.load(tmp_path / "d.npz", allow_pickle=False) as f:      # no object arrays inside
        assert all(f[k].dtype != object for k in f.files)
    back = Demonstrations.load_npz(tmp_path / "d.npz")
    assert back.equals(d) and back.obs.dtype == np.float32
    assert Demonstrations.load(tmp_path / "d.npz").equals(d)


def test_minari_round_trip_is_bit_identical(tmp_path):
    pytest.importorskip("minari")
    d = collect_demonstrations("cartpole", "CartPole-v1", 2, seed=3)
    ds = d.to_minari("minirl/cartpole-expert-v0", tmp_path)
    assert ds.total_episodes == 2 and ds.total_steps == len(d)
    assert Demonstrations.from_minari(ds).equals(d)
    back = Demonstrations.load(tmp_path / "minirl" / "cartpole-expert-v0")   # by directory
    assert back.equals(d) and back.env_id == "CartPole-v1"
    p = collect_demonstrations("pendulum", "Pendulum-v1", 1, seed=0)
    p.to_minari("minirl/pendulum-expert-v0", tmp_path)
    assert Demonstrations.load(tmp_path / "minirl" / "pendulum-expert-v0").equals(p)


def test_ragged_episode_is_refused_by_name():
    rng = np.random.default_rng(0)
    ep = _episode(3, rng)
    ep["rewards"] = ep["rewards"][:2]
    with pytest.raises(ValueError, match=r"episodes\[0\]\['rewards'\].*ragged"):
        Demonstrations.from_episodes([ep], OBS, BOX)
    ep = _episode(3, rng)
    ep["obs"] = ep["obs"][:3]
    with pytest.raises(ValueError, match=r"episodes\[0\]\['obs'\]"):
        Demonstrations.from_episodes([ep], OBS, BOX)


def test_episode_boundaries_checked():
    d = _demos()
    term = d.terminated.copy()
    term[1] = True                                 # ends an episode mid-way
    with pytest.raises(ValueError, match="episode boundaries: step 1"):
        Demonstrations(d.obs, d.actions, d.rewards, term, d.truncated, d.final_obs,
                       d.episode_lengths, OBS, BOX)
    with pytest.raises(ValueError, match="obs must have shape"):
        Demonstrations(d.obs, d.actions, d.rewards, d.terminated, d.truncated, d.final_obs,
                       np.array([3, 4]), OBS, BOX)


def test_actions_outside_the_space_and_nan_are_refused():
    rng = np.random.default_rng(0)
    ep = _episode(3, rng)
    ep["actions"][1, 0] = 1.5
    with pytest.raises(ValueError, match="actions outside the action space"):
        Demonstrations.from_episodes([ep], OBS, BOX)
    ep = _episode(3, rng)
    ep["actions"][0, 0] = np.nan
    with pytest.raises(ValueError, match="actions contains NaN"):
        Demonstrations.from_episodes([ep], OBS, BOX)
    ep = _episode(3, rng)
    ep["obs"][2, 1] = np.inf
    with pytest.raises(ValueError, match="obs contains NaN"):
        Demonstrations.from_episodes([ep], OBS, BOX)
    ep = _episode(2, rng)
    ep["actions"] = np.array([0, 2])
    with pytest.raises(ValueError, match="actions outside"):
        Demonstrations.from_episodes([ep], OBS, spaces.Discrete(2))


def test_load_refuses_other_files(tmp_path):
    np.savez(tmp_path / "x.npz", a=np.zeros(2))
    with pytest.raises(ValueError, match="not a minirl demonstrations file"):
        Demonstrations.load(tmp_path / "x.npz")
    with pytest.raises(ValueError, match="does not exist"):
        Demonstrations.load(tmp_path / "missing.npz")


def test_space_json_round_trip_for_raw_observation_spaces():
    from minirl.imitation.dataset import space_from_json, space_to_json
    for space in (spaces.Discrete(5, start=2), spaces.MultiDiscrete([3, 4], start=[1, 0]),
                  spaces.MultiBinary(3), spaces.MultiBinary([2, 2]),
                  spaces.Dict({"b": spaces.Discrete(3), "a": spaces.Box(0, 1, (2,))}),
                  spaces.Tuple([spaces.Discrete(2), spaces.Box(-1, 1, (2, 3))])):
        back = space_from_json(space_to_json(space))
        assert back == space and space_to_json(back) == space_to_json(space)
    with pytest.raises(TypeError, match="space must be"):
        space_to_json(spaces.Text(5))
