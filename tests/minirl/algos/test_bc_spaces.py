"""BC and DAgger on observation spaces other than 1-D Boxes, through the public path: demos
recorded from a saved PPO expert on FrozenLake-v1 (Discrete states, one-hot for the network),
a Tuple env (Blackjack-v1), a Dict env, raw observations for predict, save/load, the space
checks, and an .npz demos file in the format from before raw spaces were recorded."""
import json

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

from minirl.algos import load
from minirl.algos.bc import BC, BCConfig
from minirl.algos.dagger import DAgger, DAggerConfig
from minirl.algos.ppo import PPO
from minirl.imitation import Demonstrations, collect_demonstrations

STATES = np.arange(16)


@pytest.fixture(scope="module")
def frozenlake(tmp_path_factory):
    """(path of a PPO expert trained for a few steps, its demos saved as .npz, demos)."""
    d = tmp_path_factory.mktemp("frozenlake")
    ppo = PPO("FrozenLake-v1", seed=0)
    ppo.learn(256)
    ppo.save(d / "ppo.npz")
    demos = collect_demonstrations(str(d / "ppo.npz"), "FrozenLake-v1", 5, seed=0)
    demos.save_npz(d / "demos.npz")
    return d / "ppo.npz", d / "demos.npz", demos


def test_demos_hold_one_hot_floats_and_the_raw_space(frozenlake):
    expert_path, demos_path, demos = frozenlake
    assert str(demos.raw_observation_space) == "Discrete(16)"
    assert demos.observation_space.shape == (16,) and demos.obs.dtype == np.float64
    np.testing.assert_array_equal(demos.obs.sum(1), 1.0)              # one-hot rows
    np.testing.assert_array_equal(demos.obs[0], np.eye(16)[0])         # FrozenLake starts in 0
    expert = load(expert_path)
    states = demos.obs.argmax(1)                     # the expert's deterministic labels
    np.testing.assert_array_equal(demos.actions, expert.predict(states, deterministic=True))
    back = Demonstrations.load(demos_path)
    assert back.equals(demos) and str(back.raw_observation_space) == "Discrete(16)"
    assert demos.first_steps(3).raw_observation_space is demos.raw_observation_space


def test_bc_clones_the_expert_on_raw_states_and_round_trips(frozenlake, tmp_path):
    expert_path, demos_path, demos = frozenlake
    bc = BC("FrozenLake-v1", BCConfig(demos=str(demos_path), lr=1e-2, eval_interval=100,
                                      val_fraction=0.0), seed=0)
    bc.learn(300)
    seen = np.unique(demos.obs.argmax(1))
    expert = load(expert_path)
    np.testing.assert_array_equal(bc.predict(seen, deterministic=True),
                                  expert.predict(seen, deterministic=True))
    assert bc.predict(int(seen[0]), deterministic=True).shape == ()        # one raw state
    bc.save(tmp_path / "bc.npz")
    back = load(tmp_path / "bc.npz")
    np.testing.assert_array_equal(back.predict(STATES, deterministic=True),
                                  bc.predict(STATES, deterministic=True))
    with pytest.raises(ValueError, match="obs"):
        bc.predict(16)                                                   # not a state


def test_dagger_with_a_saved_ppo_expert(frozenlake, tmp_path):
    expert_path, _, _ = frozenlake
    cfg = DAggerConfig(expert=str(expert_path), steps_per_iter=50, updates_per_iter=50,
                       lr=1e-2)
    a = DAgger("FrozenLake-v1", cfg, seed=0)
    a.learn(200)
    assert a.extra_state["dagger_iteration"] == 4 and a.data_obs.shape[1] == 16
    np.testing.assert_array_equal(a.data_obs.sum(1), 1.0)
    expert = load(expert_path)
    labels = expert.predict(a.data_obs.argmax(1), deterministic=True)
    np.testing.assert_array_equal(a.data_actions, labels)            # every label the expert's
    b = DAgger("FrozenLake-v1", cfg, seed=0).learn(200)                  # deterministic
    np.testing.assert_array_equal(a.params, b.params)
    a.save(tmp_path / "dagger.npz")
    back = load(tmp_path / "dagger.npz")
    np.testing.assert_array_equal(back.predict(STATES, deterministic=True),
                                  a.predict(STATES, deterministic=True))
    np.testing.assert_array_equal(back.data_obs, a.data_obs)


def test_dagger_on_a_tuple_env_with_a_callable_expert():
    # Blackjack-v1: Tuple(Discrete(32), Discrete(11), Discrete(2)) -> 45 one-hot floats.
    def stick_at_17(obs):                      # flat rows [B, 45]: player's sum one-hot first
        return (np.asarray(obs)[:, :32].argmax(1) < 17).astype(np.int64)

    a = DAgger("Blackjack-v1", DAggerConfig(steps_per_iter=50, updates_per_iter=100, lr=1e-2,
                                            init_episodes=20), seed=0, expert=stick_at_17)
    a.learn(100)
    raw = (np.array([12, 20]), np.array([5, 5]), np.array([0, 0]))   # vector format
    np.testing.assert_array_equal(a.predict(raw, deterministic=True), [1, 0])
    assert a.predict((20, 5, 0), deterministic=True) == 0


def test_space_mismatch_names_the_raw_space(frozenlake):
    _, _, demos = frozenlake
    # Same 16 one-hot floats, another env's space: a Tuple of Discrete(4) and Discrete(12).
    other = Demonstrations(demos.obs, demos.actions, demos.rewards, demos.terminated,
                           demos.truncated, demos.final_obs, demos.episode_lengths,
                           demos.observation_space, demos.action_space, "FrozenLake-v1",
                           spaces.Tuple([spaces.Discrete(4), spaces.Discrete(12)]))
    with pytest.raises(ValueError, match="raw observation space"):
        BC("FrozenLake-v1", demos=other)
    with pytest.raises(ValueError, match="observation space"):
        BC("CliffWalking-v1", demos=demos)
    with pytest.raises(ValueError, match="flattens to"):
        Demonstrations(demos.obs, demos.actions, demos.rewards, demos.terminated,
                       demos.truncated, demos.final_obs, demos.episode_lengths,
                       demos.observation_space, demos.action_space, None, spaces.Discrete(15))
    with pytest.raises(TypeError, match="1-D Box"):
        Demonstrations(demos.obs, demos.actions, demos.rewards, demos.terminated,
                       demos.truncated, demos.final_obs, demos.episode_lengths,
                       spaces.Discrete(16), demos.action_space)


def test_box_demos_file_without_a_raw_space_still_loads(tmp_path):
    d = collect_demonstrations("cartpole", "CartPole-v1", 2, seed=0)
    meta = {"format": "minirl.Demonstrations", "version": 1, "env_id": "CartPole-v1",
            "observation_space": {"type": "Box", "shape": [4], "dtype": "float32",
                                  "low": [repr(float(x)) for x in d.observation_space.low],
                                  "high": [repr(float(x)) for x in d.observation_space.high]},
            "action_space": {"type": "Discrete", "n": 2, "start": 0}}    # the old meta
    np.savez(tmp_path / "old.npz", meta=np.array(json.dumps(meta)), obs=d.obs,
             actions=d.actions, rewards=d.rewards, terminated=d.terminated,
             truncated=d.truncated, final_obs=d.final_obs, episode_lengths=d.episode_lengths)
    old = Demonstrations.load(tmp_path / "old.npz")
    assert old.equals(d) and old.raw_observation_space is old.observation_space
    d.save_npz(tmp_path / "new.npz")                 # the new meta names the raw space too
    new = Demonstrations.load(tmp_path / "new.npz")
    assert new.equals(old) and new.raw_observation_space is new.observation_space
    bc = BC("CartPole-v1", BCConfig(demos=str(tmp_path / "old.npz"), eval_interval=20), seed=0)
    bc.learn(20)
    assert bc.predict(d.obs[:3]).shape == (3,)


def test_minari_round_trip_writes_raw_states(frozenlake, tmp_path):
    pytest.importorskip("minari")
    _, _, demos = frozenlake
    ds = demos.to_minari("minirl/frozenlake-expert-v0", tmp_path)
    assert str(ds.observation_space) == "Discrete(16)"
    ep = next(iter(ds.iterate_episodes()))
    np.testing.assert_array_equal(ep.observations, demos.episode(0)["obs"].argmax(1))
    assert Demonstrations.load(tmp_path / "minirl" / "frozenlake-expert-v0").equals(demos)



class DictEnv(gym.Env):
    """Dict observations {'pos': Discrete(5), 'vel': Box(2)}, random each step; 6 steps."""

    observation_space = spaces.Dict({"pos": spaces.Discrete(5),
                                     "vel": spaces.Box(-1.0, 1.0, (2,), np.float64)})
    action_space = spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._obs(), {}

    def _obs(self):
        return {"pos": int(self.np_random.integers(5)), "vel": self.np_random.uniform(-1, 1, 2)}

    def step(self, action):
        self.t += 1
        return self._obs(), 1.0, False, self.t >= 6, {}


def _pos_expert(obs):
    """Flat rows [B, 7] (pos one-hot, then vel) -> 1 iff pos < 2."""
    return (np.asarray(obs)[:, :5].argmax(1) < 2).astype(np.int64)


@pytest.fixture(scope="module")
def dict_demos():
    return collect_demonstrations(_pos_expert, DictEnv(), 30, seed=0)


def test_dict_env_demos_bc_and_raw_predict(dict_demos, tmp_path):
    demos = dict_demos
    assert demos.observation_space.shape == (7,) and len(demos) == 180
    assert isinstance(demos.raw_observation_space, spaces.Dict)
    np.testing.assert_array_equal(demos.actions, _pos_expert(demos.obs))
    demos.save_npz(tmp_path / "d.npz")
    assert Demonstrations.load(tmp_path / "d.npz").equals(demos)
    bc = BC(DictEnv(), BCConfig(demos=str(tmp_path / "d.npz"), lr=1e-2, eval_interval=200,
                                val_fraction=0.0), seed=0)
    bc.learn(400)
    raw = {"pos": np.arange(5), "vel": np.zeros((5, 2))}                  # vector format
    np.testing.assert_array_equal(bc.predict(raw, deterministic=True), [1, 1, 0, 0, 0])


def test_dict_env_minari_round_trip_writes_raw_parts(dict_demos, tmp_path):
    pytest.importorskip("minari")
    ds = dict_demos.to_minari("minirl/dict-expert-v0", tmp_path)
    ep = next(iter(ds.iterate_episodes()))
    np.testing.assert_array_equal(ep.observations["pos"],
                                  dict_demos.episode(0)["obs"][:, :5].argmax(1))
    assert Demonstrations.load(tmp_path / "minirl" / "dict-expert-v0").equals(dict_demos)


def test_dagger_initial_episodes_come_from_the_agents_own_env(dict_demos):
    def always_right(obs):
        return np.full(len(obs), 2, np.int64)

    # env_kwargs reach step 0's expert episodes: not slippery, right from 0 reaches 3 and stays.
    a = DAgger("FrozenLake-v1", DAggerConfig(steps_per_iter=10, updates_per_iter=10), seed=0,
               expert=always_right, env_kwargs={"is_slippery": False})
    a.learn(10)
    states = a.demonstrations().obs.argmax(1)
    np.testing.assert_array_equal(states[:5], [0, 1, 2, 3, 3])
    assert len(states) == 100                                # to FrozenLake's time limit
    # An env object with a registered spec is rebuilt for them; one without asks for demos.
    b = DAgger(gym.make("FrozenLake-v1", is_slippery=False), DAggerConfig(
        steps_per_iter=10, updates_per_iter=10), seed=0, expert=always_right)
    b.learn(10)
    np.testing.assert_array_equal(b.demonstrations().obs, a.demonstrations().obs)
    with pytest.raises(ValueError, match="initial expert episodes"):
        DAgger(DictEnv(), expert=_pos_expert)
    c = DAgger(DictEnv(), DAggerConfig(steps_per_iter=12, updates_per_iter=10), seed=0,
               expert=_pos_expert, demos=dict_demos)
    c.learn(12)
    assert c.extra_state["n_data"] == len(dict_demos) + 12


def test_the_expert_is_asked_on_flat_float_rows():
    seen = []

    def expert(obs):
        seen.append(np.asarray(obs))
        return np.zeros(len(obs), np.int64)

    collect_demonstrations(expert, "FrozenLake-v1", 1, seed=0)
    rows = [x for x in seen if x.shape[0] == 1]
    assert rows and all(x.dtype == np.float64 and x.shape == (1, 16) for x in rows)
