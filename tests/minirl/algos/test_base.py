"""Tests for minirl/algos/base.py: the actor-critic network's backward, predict, evaluate."""
import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

from minirl.algos.base import ActorCriticNet
from minirl.algos.ppo import PPO, PPOConfig
from minirl.testing.gradcheck import check_gradient

DISCRETE, BOX = spaces.Discrete(3), spaces.Box(-1.0, 1.0, (2,))


@pytest.mark.parametrize("space,shared", [(DISCRETE, False), (DISCRETE, True), (BOX, False),
                                          (BOX, True)])
def test_actor_critic_backward_matches_finite_differences(space, shared):
    rng = np.random.default_rng(0)
    net = ActorCriticNet(4, space, (8,), "tanh", shared=shared, log_std_init=-0.3,
                         dtype=np.float64)
    params = net.init(rng) + 0.1 * rng.standard_normal(net.n_params)
    obs = rng.standard_normal((5, 4))
    dist, _, _ = net.forward(params, obs)
    actions = dist.sample(rng)
    dlogp, dv = rng.standard_normal(5), rng.standard_normal(5)

    def f(p):
        d, v, _ = net.forward(p, obs)
        return np.sum(d.log_prob(actions) * dlogp) + np.sum(v * dv)

    dist, _, cache = net.forward(params, obs)
    grad = net.backward(params, cache, dist.log_prob_backward(actions, dlogp), dv)
    check_gradient(f, params, grad, dy=1.0, rtol=1e-6)


def test_init_gains_and_layout():
    net = ActorCriticNet(4, BOX, (16, 16), log_std_init=-0.5, dtype=np.float64)
    params = net.init(np.random.default_rng(0))
    assert params.shape == (net.n_params,)
    np.testing.assert_array_equal(params[net.log_std_slice], [-0.5, -0.5])
    w_out = net.actor.views(params[net.actor_slice])["4.weight"]
    assert np.abs(w_out).max() < 0.05  # policy head gain 0.01
    assert net.pi_slice.stop == net.vf_slice.start and net.vf_slice.stop == net.n_params


def test_rejects_unsupported_action_space():
    # MultiDiscrete/MultiBinary are supported now (tests/minirl/test_spaces.py); a Text space
    # and an unbounded Box are not.
    with pytest.raises(TypeError, match="not supported"):
        ActorCriticNet(4, spaces.Text(5))
    with pytest.raises(ValueError, match="infinite bound"):
        ActorCriticNet(4, spaces.Box(-np.inf, np.inf, (2,)))


def test_predict_shapes_clipping_and_evaluate():
    agent = PPO("minirl/ContinuousBandit-v0", PPOConfig(num_envs=2, log_std_init=2.0), seed=0)
    a = agent.predict(np.ones(1))
    assert a.shape == (1,) and -1.0 <= a[0] <= 1.0
    batch = agent.predict(np.ones((50, 1)))
    assert batch.shape == (50, 1) and np.abs(batch).max() <= 1.0  # clipped to the box
    np.testing.assert_array_equal(agent.predict(np.ones(1), True), agent.predict(np.ones(1), True))
    returns = agent.evaluate(3)
    assert returns.shape == (3,)


def test_config_type_and_env_instance():
    with pytest.raises(TypeError, match="PPOConfig"):
        PPO("CartPole-v1", config=object())
    agent = PPO(gym.make("minirl/Bandit-v0"), PPOConfig(num_envs=1))
    assert agent.env_id == "minirl/Bandit-v0"


def test_config_validation_names_the_field():
    with pytest.raises(ValueError, match="gamma"):
        PPOConfig(gamma=1.5)
    with pytest.raises(ValueError, match="num_envs"):
        PPOConfig(num_envs=0)
    with pytest.raises(ValueError, match="activation"):
        PPOConfig(activation="sigmoid")
    assert PPOConfig(hidden_sizes=[32]).hidden_sizes == (32,)


# ----- determinism, save/load, bit-identical continuation (every algorithm) ----------------

from minirl.algos import A2C, A2CConfig, REINFORCE, REINFORCEConfig, load  # noqa: E402

SMALL = dict(num_envs=2, hidden_sizes=(8,))
AGENTS = {
    "ppo": lambda s: PPO("CartPole-v1", PPOConfig(num_steps=16, num_epochs=2, minibatch_size=8,
                                                  normalize_obs=True, normalize_reward=True,
                                                  **SMALL), seed=s),
    "ppo-kl-gauss": lambda s: PPO("Pendulum-v1", PPOConfig(num_steps=16, num_epochs=2,
                                                           minibatch_size=16, loss="kl",
                                                           normalize_obs=True, **SMALL), seed=s),
    "a2c-shared": lambda s: A2C("CartPole-v1", A2CConfig(num_steps=5, shared_trunk=True,
                                                         ent_coef=0.01, **SMALL), seed=s),
    "reinforce": lambda s: REINFORCE("CartPole-v1", REINFORCEConfig(num_steps=20,
                                                                    vf_minibatch_size=16,
                                                                    **SMALL), seed=s),
}


@pytest.mark.parametrize("name", sorted(AGENTS))
def test_same_seed_same_parameters(name):
    a, b = AGENTS[name](3).learn(96), AGENTS[name](3).learn(96)
    np.testing.assert_array_equal(a.params, b.params)
    c = AGENTS[name](4).learn(96)
    assert not np.array_equal(a.params, c.params)


@pytest.mark.parametrize("name", sorted(AGENTS))
def test_save_load_predicts_and_continues_bit_for_bit(name, tmp_path):
    agent = AGENTS[name](0).learn(96)
    agent.save(tmp_path / "model.npz")
    loaded = load(tmp_path / "model.npz")
    assert type(loaded) is type(agent) and loaded.config == agent.config
    obs = np.stack([agent.envs.single_observation_space.sample() for _ in range(16)])
    np.testing.assert_array_equal(loaded.predict(obs, deterministic=True),
                                  agent.predict(obs, deterministic=True))
    np.testing.assert_array_equal(loaded.predict(obs), agent.predict(obs))  # eval rng saved too
    agent.learn(96)
    loaded.learn(96)
    np.testing.assert_array_equal(loaded.params, agent.params)
    assert loaded.total_steps == agent.total_steps
    for key in agent.opt_states:
        np.testing.assert_array_equal(loaded.opt_states[key].m, agent.opt_states[key].m)
    if agent.obs_normalizer is not None:
        np.testing.assert_array_equal(loaded.obs_normalizer.rms.mean, agent.obs_normalizer.rms.mean)


def test_load_rejects_other_algorithm(tmp_path):
    AGENTS["ppo"](0).save(tmp_path / "m.npz")
    with pytest.raises(ValueError, match="'ppo' agent"):
        A2C.load(tmp_path / "m.npz")


def test_vector_env_size_must_match_config():
    from minirl.envs import make_vector_env

    with pytest.raises(ValueError, match="num_envs"):
        PPO(make_vector_env("CartPole-v1", 2), PPOConfig(num_envs=4))


def test_async_vector_env_trains_like_sync():
    cfg = dict(num_envs=2, num_steps=16, num_epochs=1, minibatch_size=32, hidden_sizes=(8,))
    a = PPO("minirl/ConstantReward-v0", PPOConfig(vectorization="async", **cfg), seed=0)
    b = PPO("minirl/ConstantReward-v0", PPOConfig(**cfg), seed=0)
    a.learn(64)
    b.learn(64)
    a.envs.close()
    np.testing.assert_array_equal(a.params, b.params)  # same transitions, same updates


# ----- the generic Agent base: what every family (off-policy, imitation, search) inherits ---

from dataclasses import dataclass  # noqa: E402

from minirl.algos.base import Agent, check_config, check_seed  # noqa: E402
from minirl.nn import Adam  # noqa: E402


@dataclass(frozen=True)
class _LinearConfig:
    num_envs: int = 1
    gamma: float = 0.9
    normalize_obs: bool = False

    def __post_init__(self):
        check_config(self)


class _LinearAgent(Agent):
    """A minimal family: a linear greedy policy trained by nothing, stepping envs itself."""

    name, Config, log_fields = "linear", _LinearConfig, ("my_metric",)

    def _build(self):
        self.params = self.rng.standard_normal((self.obs_dim + 1) * self.action_space.n)
        self.opt_states["adam"] = Adam(lr=0.1).init(self.params)

    def _policy(self, obs, deterministic):
        w = self.params.reshape(self.obs_dim + 1, self.action_space.n)
        return np.argmax(obs @ w[:-1] + w[-1], axis=1)

    def learn(self, total_steps, callback=None):
        total_steps = self._check_total_steps(total_steps)
        obs, _ = self.envs.reset(seed=int(self.rng.integers(2**31 - 1)))
        returns = []
        for _ in range(total_steps):
            obs, r, term, trunc, _ = self.envs.step(self._policy(obs, True))
            returns += list(r[term | trunc])
        return self._end_iteration(callback, total_steps, (returns, [1] * len(returns)),
                                   my_metric=1.5)


def test_generic_agent_surface_and_metrics():
    agent = _LinearAgent("minirl/Bandit-v0", seed=5)
    seen = []
    agent.learn(3, callback=lambda a, m: seen.append(m))
    assert agent.total_steps == 3 and agent.iterations == 1
    assert seen[0]["steps"] == 3 and seen[0]["my_metric"] == 1.5
    assert len(seen[0]["episode_returns"]) == 3  # the bandit ends every step
    assert agent.predict(np.ones(1)).shape == ()
    assert agent.predict(np.ones((4, 1))).shape == (4,)
    with pytest.raises(ValueError, match="obs must have shape"):
        agent.predict(np.ones((4, 2)))
    assert agent.evaluate(2).shape == (2,)


def test_generic_agent_save_load_round_trip_and_validation(tmp_path):
    from minirl.algos.base import load_agent_state, read_saved

    agent = _LinearAgent("minirl/Bandit-v0", seed=5)
    agent.learn(2)
    agent.save(tmp_path / "m.npz")
    loaded = _LinearAgent.load(tmp_path / "m.npz")
    np.testing.assert_array_equal(loaded.params, agent.params)
    assert loaded.total_steps == 2
    meta, arrays = read_saved(tmp_path / "m.npz")
    bad = dict(arrays, params=arrays["params"][:-1])
    with pytest.raises(ValueError, match="'params' has shape"):
        load_agent_state(_LinearAgent("minirl/Bandit-v0"), meta, bad)
    bad = dict(arrays, params=arrays["params"].astype(np.float32))
    with pytest.raises(ValueError, match="dtype float32"):
        load_agent_state(_LinearAgent("minirl/Bandit-v0"), meta, bad)
    bad = dict(arrays, extra=np.zeros(2))
    with pytest.raises(ValueError, match="unexpected \\['extra'\\]"):
        load_agent_state(_LinearAgent("minirl/Bandit-v0"), meta, bad)
    (tmp_path / "junk.npz").write_bytes(b"not a zip file at all")
    with pytest.raises(ValueError, match="junk.npz is not a minirl model file"):
        _LinearAgent.load(tmp_path / "junk.npz")


def test_failed_save_leaves_the_previous_file_intact(tmp_path, monkeypatch):
    agent = _LinearAgent("minirl/Bandit-v0", seed=1)
    path = tmp_path / "m.npz"
    agent.save(path)
    before = path.read_bytes()

    def broken_savez(f, **arrays):
        f.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", broken_savez)
    agent.params = agent.params + 1.0
    with pytest.raises(OSError, match="No space"):
        agent.save(path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz"]  # no temp file left


@pytest.mark.parametrize("seed,err", [(-1, ValueError), (1.5, TypeError), ("3", TypeError),
                                      (None, TypeError), (True, TypeError)])
def test_seed_must_be_a_non_negative_integer(seed, err):
    with pytest.raises(err, match="seed"):
        check_seed(seed)
    with pytest.raises(err, match="seed"):
        _LinearAgent("minirl/Bandit-v0", seed=seed)
    assert check_seed(np.int64(3)) == 3


@pytest.mark.parametrize("name", sorted(AGENTS) + ["linear"])
@pytest.mark.parametrize("steps,err", [(0, ValueError), (-1, ValueError), (2.5, TypeError)])
def test_learn_rejects_non_positive_total_steps_before_touching_anything(name, steps, err):
    agent = _LinearAgent("minirl/Bandit-v0") if name == "linear" else AGENTS[name](0)
    state = agent.rng.bit_generator.state
    with pytest.raises(err, match="total_steps"):
        agent.learn(steps)
    assert agent.rng.bit_generator.state == state and agent.total_steps == 0


@pytest.mark.parametrize("make,key", [
    (lambda: PPO("CartPole-v1", PPOConfig(num_envs=1, num_steps=16, num_epochs=1, minibatch_size=16,
                                          hidden_sizes=(8,), anneal_lr=True, anneal_clip=True)),
     "clip_eps"),
    (lambda: A2C("CartPole-v1", A2CConfig(num_envs=1, num_steps=16, hidden_sizes=(8,),
                                          anneal_lr=True)), "lr"),
    (lambda: __import__("minirl.algos.dqn", fromlist=["DQN"]).DQN(
        "CartPole-v1", __import__("minirl.algos.dqn", fromlist=["DQNConfig"]).DQNConfig(
            num_envs=1, train_freq=16, learning_starts=10_000, hidden_sizes=(8,),
            exploration_fraction=1.0)), "epsilon"),
])
def test_schedule_offset_continues_schedules_of_an_interrupted_run(make, key):
    """What `minirl train --resume` does: after a learn() stopped early, a new learn() over the
    remaining steps with schedule_offset = steps done anneals exactly as the whole run would."""
    full = []
    make().learn(160, callback=lambda a, m: full.append(m[key]))
    parts, agent = [], make()
    agent.learn(160, callback=lambda a, m: parts.append(m[key]) or len(parts) < 4)
    agent.schedule_offset = agent.total_steps
    agent.learn(160 - agent.total_steps, callback=lambda a, m: parts.append(m[key]))
    assert len(full) == 10 and len(set(full)) == 10  # it does anneal
    np.testing.assert_array_equal(parts, full)


def test_predict_names_a_non_finite_obs_and_evaluate_is_reproducible(tmp_path):
    agent = PPO("CartPole-v1", PPOConfig(num_envs=1, num_steps=32), seed=0)
    for bad in (np.full(4, np.nan), np.array([[0.0, 0.0, np.inf, 0.0]])):
        with pytest.raises(ValueError, match="obs contains NaN or inf"):
            agent.predict(bad)
    agent.save(tmp_path / "a.npz")
    first = agent.evaluate(3, deterministic=False)
    again = PPO.load(tmp_path / "a.npz").evaluate(3, deterministic=False)
    np.testing.assert_array_equal(first, again)       # seed=None: from the evaluation rng
    assert len(set(first.tolist())) > 1 or len(set(agent.evaluate(3).tolist())) > 1


def test_load_with_an_env_instance_for_a_multi_env_agent_says_what_to_pass(tmp_path):
    # was: "a single env instance can only make a vector env of num_envs=1" (no file, no fix)
    PPO("CartPole-v1", PPOConfig(num_envs=2, num_steps=16), seed=0).save(tmp_path / "a.npz")
    with pytest.raises(ValueError, match=r"a\.npz: the agent runs num_envs=2 .* env id"):
        PPO.load(tmp_path / "a.npz", env=gym.make("CartPole-v1"), training=False)
    agent = PPO.load(tmp_path / "a.npz", env="CartPole-v1")
    assert agent.evaluate(1, env=gym.make("CartPole-v1")).shape == (1,)


def test_env_instance_with_a_multi_env_config_says_what_to_do():
    with pytest.raises(ValueError, match="num_envs=8.*pass a config with num_envs=1"):
        PPO(gym.make("CartPole-v1"))


def test_predict_and_evaluate_name_a_finite_obs_beyond_float32():
    # tester 4, defect 11: 1e39 became inf in the float32 networks (NaN actions)
    from tests.minirl.test_rollout import BigObsEnv

    agent = PPO(BigObsEnv(at=-1), PPOConfig(num_envs=1, hidden_sizes=(8,)), seed=0)
    for obs, name in ((np.array([1e39, 1.0]), r"obs\[0, 0\] = 1e\+39"),
                      (np.array([[0.5, 1.0], [0.5, -3.5e38]]), r"obs\[1, 1\] = -3\.5e\+38")):
        with pytest.raises(ValueError, match=name + " is beyond the range of float32"):
            agent.predict(obs)
    with pytest.raises(ValueError, match=r"obs\[0, 0\] = 1e\+39 is beyond"):
        agent.evaluate(1, env=BigObsEnv(at=3))
    assert agent.predict(np.array([3.4e38, 1.0]), deterministic=True) in (0, 1)  # fits float32
    wide = PPO(BigObsEnv(at=-1), PPOConfig(num_envs=1, hidden_sizes=(8,), dtype="float64"),
               seed=0)
    assert wide.evaluate(1, env=BigObsEnv(at=3)) == [5.0]          # float64: 5 steps of 1


def _act_reference(net, params, obs, rng, noise=None):
    """ActorCriticNet.act's definition: forward, then the distribution's sample + log_prob."""
    dist, values, _ = net.forward(params, obs)
    actions = dist.sample(rng) if noise is None else dist.rsample_with_noise(noise)
    return actions, dist.log_prob(actions), values


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("space,shared,sde,noise", [
    (DISCRETE, False, False, None), (DISCRETE, True, False, None),
    (BOX, False, False, None), (BOX, True, False, None),
    (BOX, False, True, "per_env"), (BOX, False, True, "shared"), (BOX, True, True, "per_env"),
    (BOX, False, True, None), (spaces.MultiDiscrete([2, 3]), False, False, None)])
def test_act_is_bit_identical_to_forward_sample_log_prob(dtype, space, shared, sde, noise):
    # act skips building the distribution (private fast paths); the actions, log-probs,
    # values and the generator's state must be those of forward + sample + log_prob.
    rng = np.random.default_rng(0)
    net = ActorCriticNet(4, space, (8, 8), "tanh", shared=shared, log_std_init=-0.5,
                         dtype=dtype, use_sde=sde)
    params = (net.init(rng) + 0.3 * rng.standard_normal(net.n_params)).astype(dtype)
    for B in (1, 5):
        obs = rng.standard_normal((B, 4)).astype(dtype)
        eps = None
        if noise is not None:
            eps = rng.standard_normal(((B,) if noise == "per_env" else ())
                                      + (net.feature_dim, net.act_dim)).astype(dtype)
        r1, r2 = np.random.default_rng(B), np.random.default_rng(B)
        got = net.act(params, obs, r1, noise=eps)
        want = _act_reference(net, params, obs, r2, noise=eps)
        for x, y in zip(got, want):
            assert x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes()
        assert r1.bit_generator.state == r2.bit_generator.state
        # values are the caller's: a later call does not overwrite them
        v = got[2].copy()
        net.act(params, obs + 1, r1, noise=eps)
        assert got[2].tobytes() == v.tobytes()


def test_act_names_a_diverged_network_output():
    net = ActorCriticNet(3, BOX, (8,), "tanh", dtype=np.float32, use_sde=True)
    params = net.init(np.random.default_rng(0))
    params[net.log_std_slice][2] = -np.inf
    eps = np.zeros((1, net.feature_dim, net.act_dim), np.float32)
    with pytest.raises(ValueError, match="log_std contains NaN or inf"):
        net.act(params, np.zeros((1, 3), np.float32), np.random.default_rng(0), noise=eps)
    net = ActorCriticNet(3, DISCRETE, (8,), "tanh", dtype=np.float32)
    params = net.init(np.random.default_rng(0))
    params[net.actor_slice][-1] = np.nan          # the last output bias
    with pytest.raises(ValueError, match="logits contains NaN or inf"):
        net.act(params, np.zeros((1, 3), np.float32), np.random.default_rng(0))


@pytest.mark.parametrize("space", [spaces.Box(-1, 1, (2,), np.float32), spaces.Discrete(3),
                                   spaces.MultiDiscrete([2, 3]), spaces.MultiBinary(2)])
def test_act_refuses_noise_without_gsde(space):
    # (tester 10) the act fast paths dropped a held noise given to a policy without gSDE and
    # sampled from rng instead; it is a named error
    net = ActorCriticNet(3, space, hidden_sizes=(4,), dtype=np.float32)
    params = net.init(np.random.default_rng(0))
    with pytest.raises(ValueError, match="noise"):
        net.act(params, np.ones((2, 3), np.float32), np.random.default_rng(0),
                noise=np.ones((4, 2), np.float32))
