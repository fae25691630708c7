"""Tests for minirl/rollout.py on known-answer clock environments.

A clock env's observation is the number of steps taken in the current episode, so every
buffer entry tells which step it came from: a reset transition (a step whose action the
env ignores, as in gymnasium's NEXT_STEP mode) would show up as an observation equal to
the episode length, and V(reset obs) instead of V(final obs) as a 0 instead of the length.
"""
import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.vector import AutoresetMode

from minirl.normalize import ObsNormalizer, RewardScaler
from minirl.rollout import RolloutCollector, allocate_rollout, flatten


class ClockEnv(gym.Env):
    observation_space = spaces.Box(0.0, np.inf, shape=(1,), dtype=np.float32)
    action_space = spaces.Discrete(2)

    def __init__(self, terminate_at=None):
        self.terminate_at = terminate_at
        self.t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.array([0.0], dtype=np.float32), {}

    def step(self, action):
        self.t += 1
        return np.array([self.t], np.float32), 1.0, self.t == self.terminate_at, False, {}


def clock_envs():
    """env 0: truncated every 3 steps; env 1: terminated every 5 steps; env 2: never ends."""
    fns = [
        lambda: gym.wrappers.TimeLimit(ClockEnv(), 3),
        lambda: gym.wrappers.TimeLimit(ClockEnv(terminate_at=5), 100),
        lambda: gym.wrappers.TimeLimit(ClockEnv(), 100),
    ]
    return gym.vector.SyncVectorEnv(fns, autoreset_mode=AutoresetMode.SAME_STEP)


class ClockPolicy:
    """V(s) = clock reading; counts how many observations V was evaluated on."""

    def __init__(self):
        self.value_rows = 0

    def act(self, obs, rng):
        n = len(obs)
        return np.zeros(n, dtype=np.int64), np.full(n, -0.5), obs[:, 0].astype(np.float64)

    def value(self, obs):
        self.value_rows += len(obs)
        return obs[:, 0].astype(np.float64)


def collect(T=12, **kw):
    collector = RolloutCollector(clock_envs(), T, **kw)
    collector.reset(seed=0)
    policy = ClockPolicy()
    return collector, policy, collector.collect(policy.act, policy.value, np.random.default_rng(0))


def test_shapes_and_dtypes():
    _, _, b = collect()
    for name in ("rewards", "terminated", "truncated", "logp", "values", "next_values"):
        assert getattr(b, name).shape == (12, 3), name
    assert b.obs.shape == (12, 3, 1) and b.actions.shape == (12, 3)
    assert b.terminated.dtype == bool and b.actions.dtype == np.int64
    assert flatten(b.obs).shape == (36, 1)
    np.testing.assert_array_equal(flatten(b.values)[3:6], b.values[1])  # row t*N + i


def test_box_actions_buffer_shape():
    b = allocate_rollout(4, 2, spaces.Box(-1, 1, (3,)), spaces.Box(-1, 1, (2,)))
    assert b.actions.shape == (4, 2, 2) and b.actions.dtype == np.float64


def test_no_reset_transition_and_obs_after_reset_starts_next_step():
    _, _, b = collect()
    t = np.arange(12)
    # every stored step applied its action: rewards are all 1, and the observation after an
    # episode end is the reset observation 0 (never the final clock reading 3 or 5).
    assert np.all(b.rewards == 1.0)
    np.testing.assert_array_equal(b.obs[:, 0, 0], t % 3)
    np.testing.assert_array_equal(b.obs[:, 1, 0], t % 5)
    np.testing.assert_array_equal(b.obs[:, 2, 0], t)
    np.testing.assert_array_equal(b.truncated[:, 0], t % 3 == 2)
    np.testing.assert_array_equal(b.terminated[:, 1], t % 5 == 4)
    assert not b.terminated[:, 0].any() and not b.truncated[:, 1].any()


def test_next_values_patched_at_truncation_zero_at_termination():
    collector, policy, b = collect()
    t = np.arange(12)
    # truncated rows: V(true final obs) = 3, not V(reset obs) = 0
    np.testing.assert_array_equal(b.next_values[:, 0], t % 3 + 1)
    # terminated rows: the terminal state's value is 0
    np.testing.assert_array_equal(b.next_values[:, 1], np.where(t % 5 == 4, 0, t % 5 + 1))
    np.testing.assert_array_equal(b.next_values[:, 2], t + 1)
    # V was evaluated once per truncation (4 times) plus once for the bootstrap at T
    assert policy.value_rows == 4 + 3


def test_collect_continues_across_calls():
    collector, policy, b = collect(T=4)
    first_last_next = b.next_values[-1].copy()
    b = collector.collect(policy.act, policy.value, np.random.default_rng(1))
    np.testing.assert_array_equal(b.obs[0, :, 0], [1, 4, 4])  # steps 4.. continue each episode
    np.testing.assert_array_equal(first_last_next, [1, 4, 4])  # V(s_4) of each env
    returns, lengths = collector.pop_episodes()
    assert sorted(lengths) == [3, 3, 5] and sorted(returns) == [3.0, 3.0, 5.0]
    assert collector.pop_episodes() == ([], [])


def test_normalizer_and_reward_scaler_are_applied():
    norm, scaler = ObsNormalizer((1,)), RewardScaler(3, 0.9)
    _, _, b = collect(obs_normalizer=norm, reward_scaler=scaler)
    assert norm.rms.count == 12 * 3
    assert np.all(np.abs(b.obs) <= 10) and not np.all(b.rewards == 1.0)
    assert np.all(b.rewards > 0)  # scaled, not shifted


def test_requires_same_step_vector_env_and_reset():
    envs = gym.vector.SyncVectorEnv([lambda: ClockEnv()])
    with pytest.raises(ValueError, match="SAME_STEP"):
        RolloutCollector(envs, 4)
    collector = RolloutCollector(clock_envs(), 4)
    with pytest.raises(RuntimeError, match="reset"):
        collector.collect(ClockPolicy().act, ClockPolicy().value, np.random.default_rng(0))


def test_box_actions_clipped_only_on_the_way_to_the_env():
    from minirl.envs import make_vector_env

    collector = RolloutCollector(make_vector_env("minirl/ContinuousBandit-v0", 2), 3)
    collector.reset(seed=0)

    def act(obs, rng):
        return np.full((len(obs), 1), 5.0), np.full(len(obs), -1.0), np.zeros(len(obs))

    b = collector.collect(act, lambda obs: np.zeros(len(obs)), np.random.default_rng(0))
    assert np.all(b.actions == 5.0)  # the sample as drawn, whose log-prob was computed
    np.testing.assert_allclose(b.rewards, 1.0 - (1.0 - 0.5) ** 2)  # the env saw a = 1.0


@pytest.mark.parametrize("every,expected", [(4, [0, 4, 8]), (5, [0, 5, 10]), (-1, [0]),
                                            (0, [0]), (1, list(range(12)))])
def test_reset_noise_at_rollout_start_and_every_k_steps(every, expected):
    """gSDE's schedule: a redraw before step 0 of every collect and before each step t with
    t % every == 0 (every > 0), counted within the rollout, not reset at episode ends."""
    collector = RolloutCollector(clock_envs(), 12)
    collector.reset(seed=0)
    policy, seen, draws = ClockPolicy(), [], []
    reset_noise = lambda rng: draws.append(len(seen))

    def act(obs, rng):
        seen.append(obs[2, 0])           # env 2 never ends: its clock is the global step
        return policy.act(obs, rng)
    collector.collect(act, policy.value, np.random.default_rng(0), reset_noise, every)
    assert draws == expected
    collector.collect(act, policy.value, np.random.default_rng(0), reset_noise, every)
    assert draws == expected + [12 + t for t in expected]
    with pytest.raises(TypeError, match="reset_every"):
        collector.collect(act, policy.value, np.random.default_rng(0), reset_noise, 2.0)


# tester 4, defect 11: a finite float64 observation beyond float32's range (1e39) became inf
# in the default float32 rollout/networks and was reported as "training diverged".
class BigObsEnv(gym.Env):
    """float64 observations [0.5, 1]; env ``env_index`` of a vector env shows ``value`` at
    element ``element`` of its ``at``-th observation (a reset counts as the first);
    episodes of ``length`` steps cut by truncation."""

    observation_space = spaces.Box(-np.inf, np.inf, (2,), np.float64)

    def __init__(self, at=8, value=1e39, element=0, length=5, box_actions=False):
        self.action_space = (spaces.Box(-1.0, 1.0, (1,), np.float32) if box_actions
                             else spaces.Discrete(2))
        self.at, self.value, self.element, self.length = at, value, element, length
        self.n = 0

    def _obs(self):
        self.n += 1
        obs = np.array([0.5, 1.0])
        if self.n == self.at:
            obs[self.element] = self.value
        return obs

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._obs(), {}

    def step(self, action):
        self.t += 1
        return self._obs(), 1.0, False, self.t >= self.length, {}


def _big_obs_ppo(dtype="float32", **env_kwargs):
    from minirl.algos.ppo import PPO, PPOConfig

    return PPO(BigObsEnv(**env_kwargs), PPOConfig(num_envs=1, num_steps=16, minibatch_size=16,
                                                  hidden_sizes=(8,), dtype=dtype), seed=0)


@pytest.mark.parametrize("at,element,value,name", [
    (3, 1, 1e39, r"obs\[0, 1\] = 1e\+39"),              # mid-episode: the obs PPO acts on
    (6, 0, -4e38, r"infos\['final_obs'\]\[0\]\[0\] = -4e\+38"),   # a truncated episode's
    (17, 0, 1e39, r"obs\[0, 0\] = 1e\+39"),             # V(last obs) at the rollout's end
])
def test_a_finite_obs_beyond_float32_is_named_before_acting(at, element, value, name):
    agent = _big_obs_ppo(at=at, element=element, value=value)
    with pytest.raises(ValueError, match=name + r" is beyond the range of float32 .*"
                                         r"--set dtype=float64.*normalize_obs") as e:
        agent.learn(32)
    assert "diverged" not in str(e.value)
    # float64 networks take it (and train to finite parameters)
    agent = _big_obs_ppo("float64", at=at, element=element, value=value).learn(32)
    assert np.isfinite(agent.params).all() and agent.collector.buffer.obs.dtype == np.float64


class BigRewardEnv(BigObsEnv):
    """BigObsEnv's ordinary observations and reward 1, except a finite reward of 1e39 (beyond
    float32) at step ``at``."""

    def __init__(self, at=4, **kw):
        super().__init__(at=10**9, **kw)
        self.reward_at, self.steps = at, 0

    def step(self, action):
        obs, _, term, trunc, info = super().step(action)
        self.steps += 1
        return obs, (1e39 if self.steps == self.reward_at else 1.0), term, trunc, info


def test_a_finite_reward_beyond_float32_is_named_not_called_divergence(tmp_path, capsys):
    """Tester 5: a reward of 1e39 in a float32 agent became inf in storage and surfaced as
    'returns or discounts contain NaN or inf' (DQN) or a diverged run; now a ValueRangeError
    naming rewards, and the CLI says 'training failed', not 'diverged'."""
    import gymnasium as gym
    from minirl.algos.dqn import DQN, DQNConfig
    from minirl.algos.ppo import PPO, PPOConfig
    from minirl.cli import main
    from minirl.nn.mlp import ValueRangeError

    with pytest.raises(ValueRangeError, match=r"rewards\[0\] = 1e\+39 is beyond the range of "
                                              r"float32.*rescale the rewards"):
        PPO(BigRewardEnv(), PPOConfig(num_envs=1, num_steps=16, minibatch_size=16,
                                      hidden_sizes=(8,)), seed=0).learn(32)
    with pytest.raises(ValueRangeError, match=r"rewards\[.*\] = 1e\+39 is beyond the range"):
        DQN(BigRewardEnv(), DQNConfig(hidden_sizes=(8,), batch_size=4, learning_starts=4,
                                      train_freq=4), seed=0).learn(40)
    gym.register("minirl-test/BigReward-v0", entry_point=BigRewardEnv)
    try:
        code = main(["train", "ppo", "--env", "minirl-test/BigReward-v0", "--steps", "64",
                     "--quiet", "--out", str(tmp_path / "r"), "--set", "num_envs=1",
                     "--set", "num_steps=16", "--set", "minibatch_size=16",
                     "--set", "hidden_sizes=8"])
    finally:
        gym.registry.pop("minirl-test/BigReward-v0")
    err = capsys.readouterr().err
    assert code != 0 and "training failed" in err and "diverged" not in err, err
    assert "rewards[0] = 1e+39 is beyond the range of float32" in err


class _PublicNorm(ObsNormalizer):
    """Not exactly ObsNormalizer: the collector calls it through __call__(update=True)."""


class _PublicScaler(RewardScaler):
    """Not exactly RewardScaler: the collector calls its public scale."""


@pytest.mark.parametrize("dtype,n_envs", [(np.float32, 4), (np.float64, 4), (np.float32, 1)])
def test_collect_with_the_fast_paths_is_the_public_path_bit_for_bit(dtype, n_envs):
    """Pendulum-v1 (200-step time limit: truncations bootstrap from final_obs) with a
    normalizer and a reward scaler: the collector's private fast paths fill the same bits as
    the public calls a subclass gets."""
    from minirl.envs import make_vector_env
    from minirl.spaces import ActionAdapter

    def run(norm_cls, scaler_cls):
        envs = make_vector_env("Pendulum-v1", n_envs)
        collector = RolloutCollector(envs, 70, norm_cls((3,)), scaler_cls(n_envs, 0.9),
                                     dtype=dtype, action_adapter=ActionAdapter(
                                         envs.single_action_space, dtype=dtype))
        collector.reset(seed=3)
        rng = np.random.default_rng(1)

        def act(obs, rng):
            a = rng.normal(0.0, 1.5, (len(obs), 1)).astype(dtype)
            return a, -0.5 * a[:, 0].astype(np.float64) ** 2, obs.sum(1)

        value = lambda obs: obs.sum(1) * 2.0
        out, truncations = [], 0
        for _ in range(4):     # 280 steps: every env truncated once, at step 200
            b = collector.collect(act, value, rng)
            out.append([np.array(getattr(b, f)).tobytes() for f in b.__dataclass_fields__])
            truncations += b.truncated.sum()
        assert truncations == n_envs
        return (out, collector.obs.tobytes(), collector.obs_normalizer.rms.mean.tobytes(),
                collector.obs_normalizer.rms.var.tobytes(), collector.reward_scaler.ret.tobytes(),
                collector.pop_episodes())

    assert run(ObsNormalizer, RewardScaler) == run(_PublicNorm, _PublicScaler)


def test_collect_names_a_big_reward_while_the_scaler_passes_rewards_through():
    """A reward scaler returns rewards unscaled while the returns have no spread (one env,
    first step): a finite reward beyond float32 is still named, not stored as inf."""
    from minirl.nn.mlp import ValueRangeError

    envs = gym.vector.SyncVectorEnv([lambda: BigRewardEnv(at=1)],
                                    autoreset_mode=AutoresetMode.SAME_STEP)
    collector = RolloutCollector(envs, 4, ObsNormalizer((2,)), RewardScaler(1, 0.9),
                                 dtype=np.float32)
    collector.reset(seed=0)
    with pytest.raises(ValueRangeError, match=r"rewards\[0\] = 1e\+39 is beyond the range"):
        collector.collect(ClockPolicy().act, ClockPolicy().value, np.random.default_rng(0))
