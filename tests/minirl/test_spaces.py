"""Tests for minirl/spaces.py: observation flattening, action adapters, and the spaces through
the public path (agents on known-answer envs with each space)."""
import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

from minirl.algos import A2C, PPO, REINFORCE, A2CConfig, PPOConfig, REINFORCEConfig
from minirl.distributions import Bernoulli, Categorical, DiagGaussian, MultiCategorical
from minirl.envs import make_env, make_vector_env
from minirl.spaces import (ActionAdapter, UnboundedActionSpaceError, UnsupportedSpaceError,
                           check_observation_space, flat_observation_space, flatten_observation,
                           observation_dim)

# -- observations --------------------------------------------------------------------------------


def test_flat_observation_spaces_and_dims():
    assert observation_dim(spaces.Box(-1, 1, (3,))) == 3
    assert observation_dim(spaces.Box(-1, 1, (2, 3))) == 6
    assert observation_dim(spaces.Discrete(16)) == 16
    assert observation_dim(spaces.MultiDiscrete([3, 2])) == 5
    assert observation_dim(spaces.MultiBinary(4)) == 4
    d = spaces.Dict({"cue": spaces.Discrete(2), "pos": spaces.Box(-1, 1, (2,))})
    assert observation_dim(d) == 4
    assert observation_dim(spaces.Tuple((spaces.Discrete(3), spaces.Box(0, 1, (1,))))) == 4
    assert isinstance(flat_observation_space(d), spaces.Box)


def test_discrete_observation_is_one_hot_of_x_minus_start():
    x, single = flatten_observation(spaces.Discrete(4, start=1), 2)
    assert single
    np.testing.assert_array_equal(x, [[0, 1, 0, 0]])
    x, single = flatten_observation(spaces.Discrete(3), np.array([0, 2]))
    assert not single
    np.testing.assert_array_equal(x, [[1, 0, 0], [0, 0, 1]])
    # already-flat one-hot input passes through
    x, single = flatten_observation(spaces.Discrete(3), np.array([0.0, 1.0, 0.0]))
    assert single and x.tolist() == [[0, 1, 0]]


def test_dict_tuple_and_box_observations_flatten():
    d = spaces.Dict({"cue": spaces.Discrete(2), "pos": spaces.Box(-1, 1, (2,))})
    x, single = flatten_observation(d, {"cue": 1, "pos": np.array([0.5, -0.25])})
    assert single
    np.testing.assert_array_equal(x, [[0, 1, 0.5, -0.25]])  # Dict keys in sorted order
    x, single = flatten_observation(d, [{"cue": 0, "pos": np.zeros(2)}] * 3)
    assert x.shape == (3, 4) and not single
    x, single = flatten_observation(spaces.Box(-1, 1, (2, 3)), np.arange(6.0).reshape(2, 3))
    assert single and x.tolist() == [[0, 1, 2, 3, 4, 5]]
    x, single = flatten_observation(spaces.Box(-1, 1, (2, 3)), np.zeros((5, 2, 3)))
    assert x.shape == (5, 6) and not single
    with pytest.raises(ValueError, match="obs must be"):
        flatten_observation(spaces.Box(-1, 1, (2, 3)), np.zeros(4))


def test_images_and_unflattenable_spaces_are_refused_by_name():
    with pytest.raises(UnsupportedSpaceError, match="image.*Supported: Box"):
        check_observation_space(spaces.Box(0, 255, (64, 64, 3), np.uint8))
    with pytest.raises(UnsupportedSpaceError, match=r"observation space\['img'\]"):
        check_observation_space(spaces.Dict({"img": spaces.Box(0, 255, (8, 8), np.uint8)}))
    with pytest.raises(UnsupportedSpaceError, match="Text"):
        check_observation_space(spaces.Text(5))
    assert issubclass(UnsupportedSpaceError, TypeError)
    with pytest.raises(TypeError, match="image"):
        PPO("minirl/ImageObs-v0")


def test_predict_accepts_gymnasiums_batched_dict_and_tuple_observations():
    """A vector env's Dict observation {'cue': [B], 'noise': [B, 2]} was taken for one
    observation and failed inside the network ("x must have shape [..., 4], got (1, 9)")."""
    agent = PPO("minirl/DictObsBandit-v0", PPOConfig(num_envs=1, num_steps=8), seed=0)
    venv = gym.make_vec("minirl/DictObsBandit-v0", 3, vectorization_mode="sync")
    batch, _ = venv.reset(seed=0)
    assert batch["cue"].shape == (3,) and batch["noise"].shape == (3, 2)
    rows = [{"cue": int(batch["cue"][i]), "noise": batch["noise"][i]} for i in range(3)]
    a = agent.predict(batch, deterministic=True)
    assert a.shape == (3,)
    np.testing.assert_array_equal(a, agent.predict(rows, deterministic=True))
    assert agent.predict(rows[1], deterministic=True) == a[1]      # one observation: a scalar
    x, single = flatten_observation(agent.raw_obs_space, batch)
    assert not single and x.shape == (3, 4)
    np.testing.assert_array_equal(x[:, 2:], batch["noise"])
    np.testing.assert_array_equal(x[:, :2], np.eye(2)[batch["cue"]])
    # Tuple, nested in a Dict, and an empty batch
    t = spaces.Dict({"t": spaces.Tuple((spaces.Discrete(3, start=1), spaces.Box(0, 1, (2,))))})
    x, single = flatten_observation(t, {"t": (np.array([1, 3]), np.array([[0.5, 0], [0, 1]]))})
    assert not single and x.tolist() == [[1, 0, 0, 0.5, 0], [0, 0, 1, 0, 1]]
    x, single = flatten_observation(t, {"t": (2, np.array([0.25, 0.75]))})
    assert single and x.tolist() == [[0, 1, 0, 0.25, 0.75]]
    assert flatten_observation(t, {"t": (np.zeros(0, int), np.zeros((0, 2)))})[0].shape == (0, 5)


def test_batched_dict_observation_errors_name_obs_and_the_part():
    space = spaces.Dict({"cue": spaces.Discrete(2), "noise": spaces.Box(-1, 1, (2,))})
    with pytest.raises(ValueError, match=r"obs\['noise'\] must have shape \(2,\)"):
        flatten_observation(space, {"cue": np.array([0, 1]), "noise": np.zeros((2, 3))})
    with pytest.raises(ValueError, match=r"obs: every part.*obs\['cue'\] a batch of 3.*"
                                         r"obs\['noise'\] a batch of 2"):
        flatten_observation(space, {"cue": np.array([0, 1, 1]), "noise": np.zeros((2, 2))})
    with pytest.raises(ValueError, match=r"obs: every part.*one observation"):
        flatten_observation(space, {"cue": 1, "noise": np.zeros((2, 2))})
    with pytest.raises(ValueError, match=r"obs must be a dict with keys \['cue', 'noise'\]"):
        flatten_observation(space, {"cue": 1})
    with pytest.raises(ValueError, match=r"obs\['cue'\] must hold states in .* \[2\] outside"):
        flatten_observation(space, {"cue": np.array([0, 2]), "noise": np.zeros((2, 2))})
    with pytest.raises(ValueError, match=r"obs\['cue'\] must be an integer state"):
        flatten_observation(space, {"cue": 0.5, "noise": np.zeros(2)})
    agent = PPO("minirl/DictObsBandit-v0", PPOConfig(num_envs=1, num_steps=8), seed=0)
    with pytest.raises(ValueError, match=r"obs\['noise'\]"):
        agent.predict({"cue": np.array([0, 1]), "noise": np.zeros((2, 5))})


def test_out_of_range_discrete_states_are_refused_by_name():
    """-1 used to wrap around to the last state's one-hot (16 raised a bare IndexError)."""
    for obs in (-1, 16, np.array([1, 16]), np.array([-1, 0])):
        with pytest.raises(ValueError, match="obs must hold states in"):
            flatten_observation(spaces.Discrete(16), obs)
    x, _ = flatten_observation(spaces.Discrete(3, start=-1), np.array([-1, 1]))
    assert x.tolist() == [[1, 0, 0], [0, 0, 1]]
    md = spaces.MultiDiscrete([3, 2], start=[1, 0])
    assert flatten_observation(md, np.array([3, 1]))[0].tolist() == [[0, 0, 1, 0, 1]]
    with pytest.raises(ValueError, match=r"obs must hold states.*\[0\] outside"):
        flatten_observation(md, np.array([[0, 1]]))
    agent = PPO("FrozenLake-v1", PPOConfig(num_envs=1, num_steps=8), seed=0)
    with pytest.raises(ValueError, match="obs must hold states"):
        agent.predict(-1)


class _BoxObsEnv(gym.Env):
    """One step, observation ``space`` (zeros), actions Discrete(2), reward = action."""

    action_space = spaces.Discrete(2)

    def __init__(self, space):
        self.observation_space = space

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(self.observation_space.shape, self.observation_space.dtype), {}

    def step(self, action):
        obs = np.zeros(self.observation_space.shape, self.observation_space.dtype)
        return obs, float(action), True, False, {}


def test_the_image_rule_is_stable_baselines3s_and_every_other_box_is_flattened():
    """A float (2, 2, 2) Box in [-1, 1] was refused as "looks like an image" (every rank-3
    Box was), while a uint8 (2, 8, 8, 3) frame stack was silently flattened. The rule is now
    SB3's is_image_space (uint8, bounds [0, 255]) for ranks 2-4."""
    cube = spaces.Box(-1.0, 1.0, (2, 2, 2), np.float32)
    assert check_observation_space(cube) is cube and observation_dim(cube) == 8
    agent = PPO(gym.wrappers.TimeLimit(_BoxObsEnv(cube), 5), PPOConfig(num_envs=1, num_steps=8))
    agent.learn(16)
    assert agent.obs_dim == 8 and agent.predict(np.zeros((2, 2, 2)), True).shape == ()
    assert agent.predict(np.zeros((3, 2, 2, 2)), True).shape == (3,)
    for image in (spaces.Box(0, 255, (2, 8, 8, 3), np.uint8),    # a stack of 2 RGB frames
                  spaces.Box(0, 255, (4, 84, 84), np.uint8),     # channels first
                  spaces.Box(0, 255, (8, 8), np.uint8)):         # grayscale
        with pytest.raises(UnsupportedSpaceError, match="looks like an image"):
            check_observation_space(image)
    with pytest.raises(TypeError, match="image"):
        PPO(gym.wrappers.TimeLimit(_BoxObsEnv(spaces.Box(0, 255, (2, 8, 8, 3), np.uint8)), 5))
    # not images by that rule: other bounds or dtypes, or rank 1 / 5
    for box in (spaces.Box(0, 1, (8, 8, 3), np.uint8), spaces.Box(0, 255, (8, 8, 3), np.float32),
                spaces.Box(0, 255, (3,), np.uint8), spaces.Box(0, 255, (1, 2, 2, 2, 1), np.uint8)):
        assert check_observation_space(box) is box


def test_vector_env_final_obs_is_flattened_too():
    envs = make_vector_env("minirl/DictObsBandit-v0", 2)
    obs, _ = envs.reset(seed=0)
    assert obs.shape == (2, 4) and envs.raw_single_observation_space["cue"].n == 2
    _, _, terminated, _, infos = envs.step(np.array([0, 1]))
    assert terminated.all() and all(f.shape == (4,) for f in infos["final_obs"])
    with pytest.raises(UnsupportedSpaceError, match="FlattenObservation"):
        make_vector_env(gym.make_vec("FrozenLake-v1", 2, vectorization_mode="sync",
                                     vector_kwargs={"autoreset_mode":
                                                    gym.vector.AutoresetMode.SAME_STEP}))


def test_env_kwargs_reach_gymnasium_make():
    env = make_env("FrozenLake-v1", env_kwargs={"map_name": "8x8"})
    assert env.observation_space.shape == (64,)   # one-hot of 8x8 states
    envs = make_vector_env("FrozenLake-v1", 2, env_kwargs={"map_name": "8x8"})
    assert envs.single_observation_space.shape == (64,)


# -- actions -------------------------------------------------------------------------------------


def test_discrete_start_offsets_the_env_action():
    ad = ActionAdapter(spaces.Discrete(3, start=-1))
    assert ad.kind == "categorical" and ad.head_dim == 3
    np.testing.assert_array_equal(ad.to_env(np.array([0, 1, 2])), [-1, 0, 1])
    np.testing.assert_array_equal(ad.from_env(np.array([-1, 0, 1])), [0, 1, 2])
    assert isinstance(ad.distribution(np.zeros((2, 3))), Categorical)


def test_multidiscrete_and_multibinary_adapters():
    md = ActionAdapter(spaces.MultiDiscrete([[3, 2], [2, 2]], start=[[1, 0], [0, -1]]))
    assert md.head_dim == 9 and md.shape == (4,)
    env_a = md.to_env(np.array([[2, 1, 0, 1]]))
    assert env_a.shape == (1, 2, 2)
    np.testing.assert_array_equal(env_a, [[[3, 1], [0, 0]]])
    assert md.space.contains(env_a[0])
    assert isinstance(md.distribution(np.zeros((1, 9))), MultiCategorical)
    mb = ActionAdapter(spaces.MultiBinary((2, 2)))
    env_b = mb.to_env(np.array([[1, 0, 0, 1]]))
    assert env_b.shape == (1, 2, 2) and env_b.dtype == np.int8 and mb.space.contains(env_b[0])
    assert isinstance(mb.distribution(np.zeros((1, 4))), Bernoulli)


def test_box_clip_and_squash():
    space = spaces.Box(np.array([-2, 0], np.float32), np.array([2, 10], np.float32))
    clip, squash = ActionAdapter(space, "clip"), ActionAdapter(space, "squash")
    u = np.array([[-5.0, 5.0], [0.0, 0.0]])
    np.testing.assert_allclose(clip.to_env(u), [[-2, 5], [0, 0]])
    # squash: low + (tanh(u) + 1) (high - low) / 2, TanhGaussian's map
    np.testing.assert_allclose(squash.to_env(u), [[2 * np.tanh(-5.0), 5 + 5 * np.tanh(5.0)],
                                                  [0, 5]], rtol=1e-6)
    assert squash.to_env(np.array([[1e3, -1e3]])).tolist() == [[2.0, 0.0]]  # inside the box
    np.testing.assert_allclose(squash.from_env(squash.to_env(u[1:])), u[1:], atol=1e-6)
    assert isinstance(clip.distribution(np.zeros((1, 2)), np.zeros(2)), DiagGaussian)
    with pytest.raises(ValueError, match="bounds"):
        ActionAdapter(space, "tanh")


@pytest.mark.parametrize("shape", [(1,), (3,), (2, 2)])
@pytest.mark.parametrize("space_dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bounds", ["clip", "squash"])
def test_box_to_env_is_np_clip_astype_reshape_bit_for_bit(shape, space_dtype, bounds):
    """to_env calls np.clip's ufunc directly: the same bits as np.clip, also for NaN and the
    signed zeros at a bound of 0 (where np.maximum/np.minimum would differ)."""
    rng = np.random.default_rng(0)
    low = rng.choice([-2.0, 0.0, -0.0, -1e-3], shape).astype(space_dtype)
    space = spaces.Box(low, low + rng.choice([0.0, 1.0, 3.0], shape).astype(space_dtype),
                       dtype=space_dtype)
    adapter = ActionAdapter(space, bounds)
    for dtype in (np.float32, np.float64):
        u = rng.normal(0.0, 2.0, (5, int(np.prod(shape)))).astype(dtype)
        u[rng.random(u.shape) < 0.3] = rng.choice([0.0, -0.0, np.nan, np.inf, -np.inf])
        a = adapter.offset + adapter.scale * np.tanh(u) if bounds == "squash" else u
        want = np.clip(a, adapter.low, adapter.high).astype(space_dtype).reshape((5, *shape))
        got = adapter.to_env(u)
        assert got.shape == want.shape and got.dtype == want.dtype
        assert got.tobytes() == want.tobytes()


def test_unbounded_box_is_refused_with_a_named_error():
    with pytest.raises(UnboundedActionSpaceError, match="infinite bound"):
        ActionAdapter(spaces.Box(-np.inf, np.inf, (2,)))
    assert issubclass(UnboundedActionSpaceError, ValueError)


# -- through the agents --------------------------------------------------------------------------

SMALL = dict(num_envs=8, num_steps=8, hidden_sizes=(16,), num_epochs=4, minibatch_size=32,
             lr=3e-3)


def test_offset_discrete_actions_reach_env_and_predict():
    # Discrete(3, start=-1): the env raises on an action outside {-1, 0, 1}; action +1 pays 1.
    agent = PPO("minirl/OffsetBandit-v0", PPOConfig(**SMALL), seed=0).learn(2048)
    a = agent.predict(np.ones((16, 1)))
    assert set(a.tolist()) <= {-1, 0, 1}
    assert agent.predict(np.ones(1), deterministic=True) == 1
    np.testing.assert_array_equal(agent.evaluate(3), [1.0, 1.0, 1.0])


@pytest.mark.parametrize("env_id,best", [("minirl/MultiDiscreteBandit-v0", [2, 0]),
                                         ("minirl/MultiBinaryBandit-v0", [1, 0, 1])])
def test_ppo_learns_multidiscrete_and_multibinary_bandits(env_id, best):
    agent = PPO(env_id, PPOConfig(**SMALL), seed=0).learn(3072)
    np.testing.assert_array_equal(agent.predict(np.ones(1), deterministic=True), best)
    assert agent.evaluate(2).tolist() == [1.0, 1.0]


def test_a2c_learns_multidiscrete_bandit():
    cfg = A2CConfig(num_envs=8, num_steps=4, hidden_sizes=(16,), lr=1e-2)
    agent = A2C("minirl/MultiDiscreteBandit-v0", cfg, seed=0).learn(4000)
    np.testing.assert_array_equal(agent.predict(np.ones(1), deterministic=True), [2, 0])


def test_ppo_reads_the_cue_of_a_dict_observation():
    agent = PPO("minirl/DictObsBandit-v0", PPOConfig(**SMALL), seed=0).learn(4096)
    for cue in (0, 1):   # raw Dict observations go through predict
        obs = {"cue": cue, "noise": np.zeros(2, np.float32)}
        assert agent.predict(obs, deterministic=True) == cue
    assert agent.evaluate(10, seed=0).mean() == 1.0


def test_ppo_squash_learns_continuous_bandit_inside_the_box():
    cfg = PPOConfig(num_envs=8, num_steps=8, hidden_sizes=(16,), num_epochs=4,
                    minibatch_size=32, lr=3e-3, action_bounds="squash")
    agent = PPO("minirl/ContinuousBandit-v0", cfg, seed=0).learn(4096)
    a = agent.predict(np.ones(1), deterministic=True)
    assert abs(a[0] - 0.5) < 0.1                              # the best action
    assert np.abs(agent.predict(np.ones((64, 1)))).max() < 1.0    # strictly inside (tanh)


@pytest.mark.parametrize("algo,cfg", [
    (PPO, PPOConfig(num_envs=2, num_steps=32, hidden_sizes=(8,))),
    (A2C, A2CConfig(num_envs=2, hidden_sizes=(8,))),
    (REINFORCE, REINFORCEConfig(num_envs=2, num_steps=32, hidden_sizes=(8,),
                                vf_minibatch_size=32)),
])
@pytest.mark.parametrize("env_id,n", [("FrozenLake-v1", 16), ("Taxi-v4", 500),
                                      ("CliffWalking-v1", 48)])
def test_every_on_policy_agent_trains_on_discrete_observations(algo, cfg, env_id, n):
    agent = algo(env_id, cfg, seed=0)
    assert agent.obs_dim == n                                 # one-hot states
    agent.learn(64)
    a = agent.predict(0)                                      # a raw state index works
    assert agent.action_space.contains(a)
    assert agent.predict(np.array([0, 1, 2])).shape == (3,)


def test_env_kwargs_are_saved_and_restored(tmp_path):
    agent = PPO("FrozenLake-v1", PPOConfig(num_envs=2, num_steps=16, hidden_sizes=(8,)),
                env_kwargs={"map_name": "8x8"})
    assert agent.obs_dim == 64
    agent.save(tmp_path / "m.npz")
    back = PPO.load(tmp_path / "m.npz")
    assert back.env_kwargs == {"map_name": "8x8"} and back.obs_dim == 64
    assert back.evaluate(1).shape == (1,)


def test_dqn_and_ars_offset_discrete_actions():
    # OffsetBanditEnv raises on an action outside Discrete(3, start=-1) = {-1, 0, 1}.
    from minirl.algos import ALGOS

    dqn = ALGOS["dqn"]("minirl/OffsetBandit-v0", ALGOS["dqn"].Config(
        learning_starts=64, train_freq=16, gradient_steps=8, batch_size=32, hidden_sizes=(16,),
        target_update_interval=16, exploration_fraction=0.5), seed=0).learn(1024)
    assert dqn.predict(np.ones(1), deterministic=True) == 1
    ars = ALGOS["ars"]("minirl/OffsetBandit-v0", ALGOS["ars"].Config(num_directions=2), seed=0)
    ars.learn(200)
    assert ars.action_space.contains(ars.predict(np.ones(1), deterministic=True))


class _RecordingBoxEnv(gym.Env):
    """Constant observation and reward, one action in ``Box(low, high)``; records every action
    the env receives (class-level list: the vector env's sub-env is this object)."""

    observation_space = spaces.Box(-np.inf, np.inf, shape=(1,), dtype=np.float32)
    seen: list = []

    def __init__(self, low, high):
        self.action_space = spaces.Box(low, high, shape=(1,), dtype=np.float64)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.ones(1, dtype=np.float32), {}

    def step(self, action):
        self.seen.append(np.array(action, dtype=np.float64))
        return np.ones(1, dtype=np.float32), 1.0, False, len(self.seen) % 8 == 0, {}


def test_squashed_actions_of_a_huge_finite_box_are_finite_and_inside_it():
    # tester 4, defect 5: scale = (high - low)/2 overflowed to inf for Box(-1e308, 1e308), and
    # the squashed action offset + scale tanh(u) became NaN (inf * 0 - inf) at the env.
    adapter = ActionAdapter(spaces.Box(-1e308, 1.5e308, (1,), np.float64), "squash")
    assert adapter.scale.tolist() == [1.25e308] and adapter.offset.tolist() == [0.25e308]
    cfg = PPOConfig(num_envs=1, num_steps=16, hidden_sizes=(8,), action_bounds="squash")
    huge = PPO(_RecordingBoxEnv(-1e308, 1e308), cfg, seed=0)
    unit = PPO(_RecordingBoxEnv(-1.0, 1.0), cfg, seed=0)
    obs = np.linspace(-1.0, 1.0, 5)[:, None]
    a = huge.predict(obs, deterministic=True)          # offset 0 + 1e308 tanh(mean)
    np.testing.assert_array_equal(a, 1e308 * unit.predict(obs, deterministic=True))
    assert np.all(np.isfinite(a)) and np.any(a != 0.0)
    _RecordingBoxEnv.seen.clear()
    huge.learn(32)
    seen = np.concatenate(_RecordingBoxEnv.seen)
    assert seen.size == 32 and np.all(np.isfinite(seen)) and np.all(np.abs(seen) <= 1e308)
    assert np.all(np.isfinite(huge.evaluate(2, env=_RecordingBoxEnv(-1e308, 1e308))))


@pytest.mark.parametrize("dtype,order", [(np.float16, "C"), (np.float32, "F")])
def test_to_env_gives_the_bounds_zero_at_a_zero_bound(dtype, order):
    # (tester 11) the clip in the space's own dtype kept the action's -0.0 at a +0 bound for
    # float16 and for strided float32 actions; the float64 clip gives the bound's +0.0
    adapter = ActionAdapter(spaces.Box(0, 2, (2,), dtype))
    actions = np.array([[-0.0, 1.0], [-0.0, 1.0]], dtype=dtype, order=order)
    out = adapter.to_env(actions)
    assert not np.signbit(out[:, 0]).any()
    np.testing.assert_array_equal(out, np.clip(actions.astype(np.float64), 0, 2).astype(dtype))
