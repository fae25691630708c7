"""RS, CEM, ES and ARS agents: they solve known-answer envs, are deterministic on every
backend, save/load bit for bit, log the population statistics, and reject bad configs."""
import importlib.util

import gymnasium as gym
import numpy as np
import pytest

from minirl.algos import ALGOS, load
from minirl.algos.gradient_free import (ARS, CEM, ES, ARSConfig, CEMConfig, ESConfig,
                                        RandomSearch, RSConfig)
from minirl.cli import main
from minirl.logger import read_csv
from minirl.objectives.gradient_free import ars_update

HAS_RAY = importlib.util.find_spec("ray") is not None
SMALL = dict(noise_table_size=10_000)

AGENTS = {
    "rs": lambda **kw: RandomSearch(kw.pop("env", "minirl/ContinuousBandit-v0"),
                                    RSConfig(population_size=8, noise_std=0.3, **SMALL, **kw),
                                    seed=kw.get("seed_", 0)),
    "cem": lambda **kw: CEM(kw.pop("env", "minirl/ContinuousBandit-v0"),
                            CEMConfig(population_size=16, init_std=0.5, **kw)),
    "es": lambda **kw: ES(kw.pop("env", "minirl/ContinuousBandit-v0"),
                          ESConfig(population_size=16, noise_std=0.1, lr=0.05, **SMALL, **kw)),
    "es-mu-lambda": lambda **kw: ES(kw.pop("env", "minirl/ContinuousBandit-v0"),
                                    ESConfig(variant="mu_lambda", population_size=16,
                                             num_parents=4, noise_std=0.1, **SMALL, **kw)),
    "ars": lambda **kw: ARS(kw.pop("env", "minirl/ContinuousBandit-v0"),
                            ARSConfig(num_directions=8, top_directions=4, step_size=0.05,
                                      noise_std=0.1, **SMALL, **kw)),
    "ars-v1": lambda **kw: ARS(kw.pop("env", "minirl/ContinuousBandit-v0"),
                               ARSConfig(normalize_obs=False, num_directions=4, step_size=0.05,
                                         noise_std=0.1, **SMALL, **kw)),
}


def _make(name, seed=0, **kw):
    agent = AGENTS[name](**kw)
    if seed:                                   # rebuild with another seed, same config
        agent = type(agent)(agent.env_id, agent.config, seed=seed)
    return agent


@pytest.mark.parametrize("name", sorted(AGENTS))
def test_solves_the_continuous_bandit(name):
    # one-step episodes, reward 1 - (a - 0.5)^2: the policy's action must approach 0.5
    agent = _make(name).learn(2500)
    a = agent.predict(np.ones(1), deterministic=True)
    assert abs(float(a[0]) - 0.5) < 0.05, a
    assert agent.evaluate(3).min() > 0.997


@pytest.mark.parametrize("name", ["ars", "cem"])
def test_solves_the_discrete_bandit(name):
    agent = _make(name, env="minirl/Bandit-v0").learn(300)
    assert agent.predict(np.ones(1)) == 1


@pytest.mark.parametrize("name", sorted(AGENTS))
def test_same_seed_same_run_other_seed_other_run(name):
    a, b, c = _make(name).learn(200), _make(name).learn(200), _make(name, seed=5).learn(200)
    np.testing.assert_array_equal(a.params, b.params)
    assert not np.array_equal(a.params, c.params)


def test_metrics_carry_the_population_statistics(tmp_path):
    rows = []
    agent = _make("ars", eval_episodes=2)
    agent.learn(64, callback=lambda ag, m: rows.append(m))
    m = rows[0]
    assert m["iteration"] == 1 and m["steps"] == 16 == len(m["episode_returns"])
    r = np.array(m["episode_returns"])
    assert m["pop_return_best"] == r.max() and m["pop_return_mean"] == pytest.approx(r.mean())
    assert m["pop_return_std"] == pytest.approx(r.std()) and np.isfinite(m["center_return"])
    assert m["sigma_r"] > 0 and set(ARS.log_fields) <= set(m)
    stopped = _make("cem").learn(10_000, callback=lambda ag, m: False)
    assert stopped.iterations == 1 and stopped.total_steps == 16


def test_cli_trains_ars_and_writes_population_columns(tmp_path):
    out = tmp_path / "run"
    assert main(["train", "ars", "--env", "CartPole-v1", "--steps", "3000", "--quiet",
                 "--out", str(out), "--set", "num_directions=4",
                 "--set", "noise_table_size=10000", "--set", "hidden_layers="]) == 0
    cols = read_csv(out / "progress.csv")
    for key in ("pop_return_best", "pop_return_mean", "pop_return_std", "sigma_r"):
        assert np.isfinite(cols[key]).all()
    assert np.all(cols["pop_return_best"] >= cols["pop_return_mean"])
    assert load(out / "model.npz").config.num_directions == 4
    assert set(ALGOS) >= {"rs", "cem", "es", "ars"}


@pytest.mark.parametrize("name", sorted(AGENTS))
def test_save_load_predicts_and_continues_bit_for_bit(name, tmp_path):
    agent = _make(name, env="Pendulum-v1", max_episode_steps=10).learn(300)
    agent.save(tmp_path / "m.npz")
    loaded = load(tmp_path / "m.npz")
    assert type(loaded) is type(agent) and loaded.config == agent.config
    obs = np.random.default_rng(0).normal(size=(8, 3))
    np.testing.assert_array_equal(loaded.predict(obs), agent.predict(obs))
    agent.learn(300)
    loaded.learn(300)
    np.testing.assert_array_equal(loaded.params, agent.params)
    assert loaded.total_steps == agent.total_steps
    if isinstance(agent, CEM):
        np.testing.assert_array_equal(loaded.std, agent.std)
    if agent.obs_normalizer is not None:     # ARS V2: the statistics travel with the policy
        assert agent.obs_normalizer.rms.count > 0
        np.testing.assert_array_equal(loaded.obs_normalizer.rms.var, agent.obs_normalizer.rms.var)
    for key in agent.opt_states:
        np.testing.assert_array_equal(loaded.opt_states[key].v, agent.opt_states[key].v)


def test_ars_iteration_is_the_update_rule_on_its_own_episodes():
    agent = _make("ars-v1", env="Pendulum-v1", max_episode_steps=10)
    calls, evaluate = [], agent.evaluator.evaluate

    def spy(seeds, *args, **kwargs):
        calls.append((seeds, kwargs, evaluate(seeds, *args, **kwargs)))
        return calls[-1][2]

    agent.evaluator.evaluate = spy
    theta0 = agent.params.copy()
    agent.learn(1)
    (seeds, kw, res), = calls
    # each direction's + and - episodes share an env seed (common random numbers)
    np.testing.assert_array_equal(seeds[0::2], seeds[1::2])
    assert len(set(seeds[0::2].tolist())) == agent.config.num_directions
    np.testing.assert_array_equal(kw["noise_scale"], np.tile([0.1, -0.1], 4))
    deltas = agent.noise.rows(kw["noise_idx"][0::2], agent.policy.n_params)
    expected, _, _ = ars_update(theta0, deltas, res.returns[0::2], res.returns[1::2], 0.05)
    np.testing.assert_array_equal(agent.params, expected)


def test_ars_without_bias_is_the_papers_linear_policy_m():
    # Mania et al. (2018) search M [act_dim, obs_dim], a = M s, no bias. With N = b = 1 every
    # step is +-2 alpha delta, so a bias coordinate would random-walk into a constant action
    # (the Swimmer benchmark stayed far below 325 with it). Pendulum: obs_dim 3, act_dim 1.
    agent = _make("ars-v1", env="Pendulum-v1", max_episode_steps=10, policy_bias=False)
    assert agent.policy.n_params == 3 and agent.params.shape == (3,)
    calls, evaluate = [], agent.evaluator.evaluate

    def spy(seeds, *args, **kwargs):
        calls.append((seeds, kwargs, evaluate(seeds, *args, **kwargs)))
        return calls[-1][2]

    agent.evaluator.evaluate = spy
    agent.learn(1)
    (seeds, kw, res), = calls
    deltas = agent.noise.rows(kw["noise_idx"][0::2], 3)
    expected, _, _ = ars_update(np.zeros(3), deltas, res.returns[0::2], res.returns[1::2], 0.05)
    np.testing.assert_array_equal(agent.params, expected)
    assert np.abs(agent.params).max() > 0
    obs = np.array([[0.3, -0.2, 1.5], [0.0, 0.0, 0.0]])
    expected_actions = np.clip(obs @ agent.params[:, None], -2.0, 2.0).astype(np.float32)
    np.testing.assert_array_equal(agent.predict(obs, deterministic=True), expected_actions)
    # the workers run the same bias-free policy: an episode re-run by hand gives its return
    env = gym.make("Pendulum-v1")
    theta = kw["theta"] + kw["noise_scale"][0] * deltas[0]
    o, _ = env.reset(seed=int(seeds[0]))
    total = 0.0
    for _ in range(10):
        o, r, _, _, _ = env.step(np.clip(o @ theta, -2.0, 2.0).reshape(1))
        total += float(r)
    np.testing.assert_allclose(res.returns[0], total, rtol=1e-12)


def _ars_pendulum(**kw):
    cfg = ARSConfig(num_directions=4, top_directions=2, max_episode_steps=25, **SMALL, **kw)
    return ARS("Pendulum-v1", cfg, seed=7)


def test_ars_v2_bit_identical_on_serial_and_two_processes():
    ref = _ars_pendulum().learn(600)
    par = _ars_pendulum(backend="processes", num_workers=2).learn(600)
    par.close()
    np.testing.assert_array_equal(par.params, ref.params)
    np.testing.assert_array_equal(par.obs_normalizer.rms.mean, ref.obs_normalizer.rms.mean)
    np.testing.assert_array_equal(par.obs_normalizer.rms.var, ref.obs_normalizer.rms.var)


@pytest.mark.skipif(not HAS_RAY, reason="ray is not installed (extra 'ray')")
def test_ars_v2_bit_identical_on_ray_with_two_workers(ray_session):
    agent = _ars_pendulum(backend="ray", num_workers=2).learn(600)
    agent.close()
    ref = _ars_pendulum().learn(600)
    np.testing.assert_array_equal(agent.params, ref.params)
    np.testing.assert_array_equal(agent.obs_normalizer.rms.var, ref.obs_normalizer.rms.var)


@pytest.mark.parametrize("cls,kwargs,field", [
    (ARSConfig, dict(top_directions=9), "top_directions"),
    (ARSConfig, dict(step_size=0.0), "step_size"),
    (ARSConfig, dict(num_directions=0), "num_directions"),
    (ESConfig, dict(population_size=7), "population_size"),
    (ESConfig, dict(variant="cma"), "variant"),
    (ESConfig, dict(variant="mu_lambda", num_parents=40), "num_parents"),
    (CEMConfig, dict(elite_frac=0.0), "elite_frac"),
    (CEMConfig, dict(smoothing=1.0), "smoothing"),
    (RSConfig, dict(noise_std=-1.0), "noise_std"),
    (RSConfig, dict(backend="threads"), "backend"),
    (RSConfig, dict(num_workers=0), "num_workers"),
    (RSConfig, dict(hidden_layers=(0,)), "hidden_layers"),
    (RSConfig, dict(hidden_layers="64"), "hidden_layers"),
    (RSConfig, dict(activation="gelu"), "activation"),
    (ARSConfig, dict(hidden_layers=(8,), policy_bias=False), "policy_bias"),
    (ARSConfig, dict(policy_bias=0), "policy_bias"),
])
def test_config_validation_names_the_field(cls, kwargs, field):
    with pytest.raises(ValueError, match=field):
        cls(**kwargs)


def test_bad_env_and_total_steps():
    with pytest.raises(TypeError, match="action space"):
        ARS("minirl/Bandit-v0", ARSConfig(**SMALL)).policy.__class__(
            __import__("gymnasium").spaces.Box(0, 1, (1,)),
            __import__("gymnasium").spaces.MultiBinary(2))
    agent = _make("ars")
    with pytest.raises(ValueError, match="total_steps"):
        agent.learn(0)
    with pytest.raises(TypeError, match="total_steps"):
        agent.learn(1.5)


@pytest.mark.parametrize("name", ["rs", "cem", "es", "ars"])
def test_discrete_observations_are_one_hot_in_the_population_envs_too(name):
    """FrozenLake's Discrete(16) states reach the population's workers one-hot, as they reach
    every other agent (they used to raise inside learn: 'observation space must be a 1-D Box')."""
    from minirl.algos import ALGOS

    agent = ALGOS[name]("FrozenLake-v1", seed=0)
    assert agent.obs_dim == 16
    agent.learn(300)
    assert agent.total_steps >= 300
    assert agent.predict(np.int64(3)) in range(4)
    assert agent.evaluate(2).shape == (2,)


def test_env_without_time_limit_and_env_kwargs(tmp_path):
    """CliffWalking-v1 has no time limit: a deterministic policy walking into a wall kept one
    rollout (and the CLI, deaf to Ctrl-C inside it) running forever. Episodes of such an env
    are now cut at minirl.envs.EPISODE_CAP steps, in the workers and in evaluate. And
    --env-kwargs reach the workers' envs: they were built from the bare id (continuous
    LunarLander ended as 'training diverged ... got (178,)'; FrozenLake 8x8 the same way)."""
    from minirl.algos import load
    from minirl.cli import main
    from minirl.envs import EPISODE_CAP
    for algo in ("ars", "rs"):
        assert main(["train", algo, "--env", "CliffWalking-v1", "--steps", "300", "--quiet",
                     "--out", str(tmp_path / algo)]) == 0
    agent = load(tmp_path / "ars" / "model.npz")
    returns = agent.evaluate(1, seed=0)
    assert returns.shape == (1,) and -100 * EPISODE_CAP <= returns[0] <= 0
    assert main(["train", "ars", "--env", "FrozenLake-v1", "--env-kwargs", "map_name=8x8",
                 "--steps", "2000", "--quiet", "--out", str(tmp_path / "fl")]) == 0
    assert load(tmp_path / "fl" / "model.npz").obs_space.shape == (64,)   # 8x8, not 4x4
