"""SAC agent: known-answer environments, Polyak targets, determinism, save/load, bad input."""
import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

from minirl.algos.sac import SAC, SACConfig
from minirl.envs import ConstantRewardBoxEnv

SMALL = dict(hidden_sizes=(32, 32), batch_size=32, learning_starts=64, buffer_size=5000,
             steps_per_iteration=100)


def _constant_reward_env():
    return gym.wrappers.TimeLimit(ConstantRewardBoxEnv(), max_episode_steps=8)


def test_continuous_bandit_mode_moves_to_the_optimum():
    # reward 1 - (a - 0.5)^2, one step: Q(s, a) = r, the actor's mode must approach 0.5
    cfg = SACConfig(gamma=0.0, lr=3e-3, **SMALL)
    agent = SAC("minirl/ContinuousBandit-v0", cfg, seed=0)
    before = float(agent.predict(np.ones(1), deterministic=True)[0])
    agent.learn(1500)
    after = float(agent.predict(np.ones(1), deterministic=True)[0])
    assert abs(before) < 0.1                      # init: tanh(mean ~ 0)
    assert abs(after - 0.5) < 0.1, after
    assert agent.evaluate(3).mean() > 0.99


def test_constant_reward_time_limit_q_reaches_one_over_one_minus_gamma():
    # Only truncation ends episodes: with bootstrapping from the true final obs Q -> 1/(1-gamma)
    # = 5; treating truncation as termination would give 1/(1 - gamma * 7/8) = 2.91 instead.
    cfg = SACConfig(gamma=0.8, tau=0.05, lr=3e-3, auto_alpha=False, alpha=0.0, **SMALL)
    agent = SAC(_constant_reward_env(), cfg, seed=1)
    agent.learn(1500)
    x = np.concatenate([np.ones((5, 1)), np.linspace(-0.9, 0.9, 5)[:, None]], axis=1)
    q = [agent.critic.forward(agent.q_params[j], x)[0][:, 0] for j in range(2)]
    np.testing.assert_allclose(np.array(q), 5.0, rtol=0.05)
    # the buffer holds truncated transitions whose next obs is the true final obs
    buf = agent.buffer
    assert buf.truncated[:buf.size].any() and not buf.terminated[:buf.size].any()


def test_one_update_moves_targets_by_polyak_and_alpha_towards_target_entropy():
    agent = SAC("Pendulum-v1", SACConfig(**SMALL), seed=3)
    agent.learn(100)                                # 64 random steps, then updates
    old_target, old_q = agent.target_params.copy(), agent.q_params.copy()
    metrics = agent._update()
    tau = agent.config.tau
    assert not np.array_equal(agent.q_params, old_q)
    np.testing.assert_allclose(agent.target_params, tau * agent.q_params + (1 - tau) * old_target,
                               rtol=1e-6, atol=1e-7)
    assert set(metrics) == set(SAC.log_fields)
    # log alpha moved against the sign of (entropy - target)
    ent = metrics["entropy"]
    log_alpha_before = np.log(metrics["alpha"])
    assert np.sign(agent.log_alpha[0] - log_alpha_before) == np.sign(agent.target_entropy - ent)


def test_no_entropy_variant_keeps_alpha_zero():
    agent = SAC("Pendulum-v1", SACConfig(auto_alpha=False, alpha=0.0, **SMALL), seed=0)
    seen = []
    agent.learn(200, callback=lambda a, m: seen.append(m))
    assert seen[-1]["alpha"] == 0.0 and "alpha" not in agent.opt_states


def test_determinism_and_metrics():
    runs = []
    for _ in range(2):
        agent = SAC("Pendulum-v1", SACConfig(**SMALL), seed=7)
        seen = []
        agent.learn(300, callback=lambda a, m: seen.append(m))
        runs.append((agent, seen))
    (a, sa), (b, sb) = runs
    np.testing.assert_array_equal(a.params, b.params)
    np.testing.assert_array_equal(a.q_params, b.q_params)
    assert [m["critic_loss"] for m in sa] == [m["critic_loss"] for m in sb]
    assert [m["steps"] for m in sa] == [100, 200, 300]
    assert a.total_steps == 300 and a.iterations == 3
    c = SAC("Pendulum-v1", SACConfig(**SMALL), seed=8).learn(300)
    assert not np.array_equal(a.params, c.params)


def test_save_load_round_trip_continues_bit_for_bit(tmp_path):
    agent = SAC("Pendulum-v1", SACConfig(**SMALL), seed=2).learn(200)
    agent.save(tmp_path / "sac.npz")
    loaded = SAC.load(tmp_path / "sac.npz")
    obs = np.random.default_rng(0).standard_normal((4, 3))
    np.testing.assert_array_equal(loaded.predict(obs, True), agent.predict(obs, True))
    agent.learn(150)
    loaded.learn(150)
    for name in ("params", "q_params", "target_params", "log_alpha"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(agent, name), err_msg=name)
    from minirl.algos import load
    assert isinstance(load(tmp_path / "sac.npz"), SAC)


def test_vector_envs_and_ensemble_with_subset():
    cfg = SACConfig(num_envs=2, n_critics=4, target_subset=2, actor_q="mean", **SMALL)
    agent = SAC("Pendulum-v1", cfg, seed=0).learn(200)
    assert agent.q_params.shape[0] == 4 and agent.buffer.size == 200
    a = agent.predict(np.zeros((5, 3)))
    assert a.shape == (5, 1) and np.all(np.abs(a) <= 2.0)


def test_actions_respect_arbitrary_bounds():
    env = gym.wrappers.TimeLimit(ConstantRewardBoxEnv(), 8)
    env.action_space = spaces.Box(np.array([3.0], np.float32), np.array([7.0], np.float32))
    agent = SAC(env, SACConfig(**SMALL), seed=0).learn(100)
    a = agent.predict(np.ones((200, 1)))
    assert np.all((a >= 3.0) & (a <= 7.0)) and a.std() > 0.1
    # the buffer holds the actor's actions in [-1, 1] (as SB3); the env got 5 + 2 a in [3, 7]
    stored = agent.buffer.actions[:100]
    assert np.all((stored >= -1.0) & (stored <= 1.0)) and stored.std() > 0.3
    np.testing.assert_array_equal(agent.scale, [2.0])
    np.testing.assert_array_equal(agent.offset, [5.0])


def test_bad_input():
    with pytest.raises(TypeError, match="Box action space"):
        SAC("CartPole-v1")
    env = gym.wrappers.TimeLimit(ConstantRewardBoxEnv(), 8)
    env.action_space = spaces.Box(-np.inf, np.inf, shape=(1,), dtype=np.float32)
    with pytest.raises(ValueError, match="bound"):   # the base or SAC names the bound
        SAC(env)
    for bad, field in [(dict(tau=1.5), "tau"), (dict(n_critics=0), "n_critics"),
                       (dict(target_subset=3), "target_subset"), (dict(actor_q="max"), "actor_q"),
                       (dict(batch_size=0), "batch_size"), (dict(alpha=0.0), "alpha"),
                       (dict(gamma=2.0), "gamma"), (dict(activation="gelu"), "activation"),
                       (dict(train_freq=0), "train_freq"), (dict(noise_beta=-1.0), "noise_beta"),
                       (dict(noise_seq_len=1), "noise_seq_len")]:
        with pytest.raises(ValueError, match=field):
            SACConfig(**bad)
    with pytest.raises(TypeError, match="SACConfig"):
        SAC("Pendulum-v1", config=object())
    with pytest.raises(ValueError, match="total_steps"):
        SAC("Pendulum-v1", SACConfig(**SMALL)).learn(0)


def test_train_freq_schedules_rounds_of_gradient_steps():
    # 150 vector steps, 2 envs: updates once more than learning_starts = 64 env steps were
    # taken (SB3's num_timesteps > learning_starts): from vector step 33 (66 env steps) on;
    # rounds at vector steps 36, 40, ..., 148 (a multiple of 4) = 29 rounds.
    cfg = SACConfig(num_envs=2, train_freq=4, gradient_steps=3, **SMALL)
    agent = SAC("Pendulum-v1", cfg, seed=0).learn(300)
    assert agent.opt_states["critic"].step == 29 * 3
    one = SAC("Pendulum-v1", SACConfig(num_envs=2, **SMALL), seed=0).learn(300)
    assert one.opt_states["critic"].step == 150 - 32


def _sac_105(**kw):
    return {**dict(learning_starts=100, batch_size=32, buffer_size=1000, train_freq=1,
                   gradient_steps=1), **kw}


def test_learning_starts_is_stable_baselines3s_rule():
    """After 105 env steps with learning_starts=100, SB3's SAC (and minirl's DQN) has done
    5 gradient steps (num_timesteps 101..105 > 100); minirl's SAC did 6 (it trained at 100)."""
    agent = SAC("Pendulum-v1", SACConfig(hidden_sizes=(8,), **_sac_105()), seed=0).learn(105)
    assert agent.opt_states["critic"].step == agent.opt_states["actor"].step == 5
    zero = SAC("Pendulum-v1", SACConfig(hidden_sizes=(8,), **_sac_105(learning_starts=0,
                                                                        batch_size=1)), seed=0)
    assert zero.learn(5).opt_states["critic"].step == 5        # from the first step on


def test_learning_starts_count_matches_stable_baselines3_itself():
    sb3 = pytest.importorskip("stable_baselines3")
    model = sb3.SAC("MlpPolicy", "Pendulum-v1", policy_kwargs=dict(net_arch=[8]), seed=0,
                    **_sac_105())
    model.learn(105)
    agent = SAC("Pendulum-v1", SACConfig(hidden_sizes=(8,), **_sac_105()), seed=0).learn(105)
    assert agent.opt_states["critic"].step == model._n_updates == 5


def test_colored_exploration_noise_is_deterministic_and_correlated():
    cfg = SACConfig(noise_beta=2.0, noise_seq_len=50, **SMALL)
    a = SAC(_constant_reward_env(), cfg, seed=4)
    b = SAC(_constant_reward_env(), cfg, seed=4)
    a.learn(200)
    b.learn(200)
    np.testing.assert_array_equal(a.params, b.params)
    np.testing.assert_array_equal(a.buffer.actions, b.buffer.actions)
    # after learning_starts (64 uniform steps) the policy's eps is red noise: consecutive
    # actions of an episode move together (white eps: lag-1 correlation ~0 at this init)
    white = SAC(_constant_reward_env(), SACConfig(**SMALL), seed=4).learn(200)

    def lag1(agent):
        x = agent.buffer.actions[64:200, 0]
        x = x - x.mean()
        return float(np.sum(x[1:] * x[:-1]) / np.sum(x * x))
    assert lag1(a) > 0.5 and abs(lag1(white)) < 0.3, (lag1(a), lag1(white))


def test_a_buffer_smaller_than_one_batch_is_refused_before_training(tmp_path, capsys):
    # Such a run trained nothing and exited 0 (the buffer never held batch_size transitions).
    from minirl.cli import main

    out = tmp_path / "never"
    assert main(["train", "sac", "--env", "Pendulum-v1", "--set", "buffer_size=16", "--quiet",
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "is more than buffer_size=16" in err and "batch_size=" in err and not out.exists()


def _pendulum_rescaled():
    return gym.wrappers.RescaleAction(gym.make("Pendulum-v1"), np.float32(-1), np.float32(1))


def test_the_action_box_units_do_not_change_what_sac_learns():
    # tester 4, defect 2: log pi included the box rescaling's -sum_d log scale_d (-log 2 on
    # Pendulum-v1's [-2, 2]) and was compared with the target -dim(A): the temperature, the
    # soft targets and the critics' inputs all depended on the action units. As SB3, SAC
    # now works in [-1, 1]: Pendulum-v1 and Pendulum-v1 rescaled to [-1, 1] learn the same.
    runs = []
    for env in ("Pendulum-v1", _pendulum_rescaled()):
        agent, seen = SAC(env, SACConfig(**SMALL), seed=5), []
        agent.learn(300, callback=lambda a, m: seen.append(m))
        runs.append((agent, seen))
    (a, sa), (b, sb) = runs
    assert b.action_space.high[0] == 1.0 and a.action_space.high[0] == 2.0
    for name in ("params", "q_params", "target_params", "log_alpha"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    np.testing.assert_array_equal(a.buffer.actions, b.buffer.actions)
    np.testing.assert_array_equal(a.buffer.next_obs, b.buffer.next_obs)
    assert sa == sb and sa[-1]["alpha"] != 1.0           # alpha and entropy logged identically
    obs = np.random.default_rng(0).uniform(-1.0, 1.0, (16, 3))
    np.testing.assert_array_equal(a.predict(obs, deterministic=True),
                                  2.0 * b.predict(obs, deterministic=True))


def test_temperature_gradient_equals_stable_baselines3s_on_a_scaled_box():
    # Oracle: SB3's dL/dlog_alpha = -(mean(log pi of the squashed action in [-1, 1]) - dim(A))
    # from the same actor outputs and noise (before: off by log 2 = 0.69 on Pendulum-v1).
    torch = pytest.importorskip("torch")
    sb3_dist = pytest.importorskip("stable_baselines3.common.distributions")
    from minirl.objectives.sac import sample_actions, temperature_loss

    agent = SAC("Pendulum-v1", SACConfig(dtype="float64", **SMALL), seed=0).learn(100)
    obs = agent.buffer.obs[:64]
    _, logp, dist, eps, _, _ = sample_actions(agent.actor, agent.params, obs, agent.low,
                                              agent.high, np.random.default_rng(1))
    u = torch.tensor(dist.mean + dist.std * eps)
    sb = sb3_dist.SquashedDiagGaussianDistribution(1)
    sb.proba_distribution(torch.tensor(dist.mean), torch.tensor(dist.log_std))
    logp_sb3 = sb.log_prob(torch.tanh(u), u).numpy()
    _, dla = temperature_loss(agent.log_alpha[0], logp, agent.target_entropy)
    target_sb3 = -float(np.prod(agent.action_space.shape))            # SB3's "auto"
    # (SB3 adds 1e-6 inside log(1 - tanh^2): agreement to ~1e-5 here, not to rounding)
    np.testing.assert_allclose(dla, -(logp_sb3.mean() + target_sb3), atol=1e-4)
    np.testing.assert_allclose(logp, logp_sb3, atol=1e-4)


def test_a_huge_finite_action_box_trains_with_actions_inside_it():
    # tester 4, defect 5: the uniform warm-up rng.uniform(low, high) raised a bare
    # OverflowError for Box(-1e308, 1e308) (high - low is not representable)
    env = gym.wrappers.TimeLimit(ConstantRewardBoxEnv(), 8)
    env.action_space = spaces.Box(-1e308, 1e308, shape=(1,), dtype=np.float64)
    agent = SAC(env, SACConfig(**SMALL), seed=0).learn(100)     # 64 uniform steps, updates
    np.testing.assert_array_equal(agent.scale, [1e308])
    np.testing.assert_array_equal(agent.offset, [0.0])
    stored = agent.buffer.actions[:100]                          # the actor's [-1, 1] actions
    assert np.all(np.abs(stored) <= 1.0) and stored[:64].std() > 0.4
    a = agent.predict(np.ones((200, 1)))
    assert np.all(np.isfinite(a)) and np.all(np.abs(a) <= 1e308) and (a / 1e308).std() > 0.1
    d = agent.predict(np.ones(1), deterministic=True)
    mean = agent.actor.forward(agent.params, np.ones((1, 1)))[0][0, :1]     # float32
    np.testing.assert_array_equal(d, 1e308 * np.tanh(mean).astype(np.float64))


def test_a_model_saved_before_the_unit_action_box_refuses_to_train_on(tmp_path):
    """Files from before SAC acted in [-1, 1] hold env-unit actions in their buffer and
    critics: on a box other than [-1, 1] learn() refuses them (predict still works); a
    [-1, 1] box is the same either way and trains on."""
    import json
    for env, refused in (("Pendulum-v1", True), ("MountainCarContinuous-v0", False)):
        agent = SAC(env, SACConfig(hidden_sizes=(8,), batch_size=8, learning_starts=10,
                                   buffer_size=200), seed=0)
        agent.learn(20)
        path, old = tmp_path / f"{env}.npz", tmp_path / f"{env}-old.npz"
        agent.save(path)
        with np.load(path) as z:                  # the same file as an old minirl wrote it
            arrays = {k: z[k] for k in z.files}
        meta = json.loads(str(arrays.pop("meta")))
        assert meta["extra_state"].pop("action_units") == "unit box"
        np.savez(old, meta=np.array(json.dumps(meta)), **arrays)
        SAC.load(path).learn(10)                  # a current file trains on
        loaded = SAC.load(old)
        obs = np.zeros((1, loaded.obs_dim))
        np.testing.assert_array_equal(loaded.predict(obs, deterministic=True),
                                      agent.predict(obs, deterministic=True))
        if refused:
            with pytest.raises(ValueError, match="before SAC worked in the unit action box"):
                loaded.learn(10)
        else:
            loaded.learn(10)
