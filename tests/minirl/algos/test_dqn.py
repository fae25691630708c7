"""Tests for minirl/algos/dqn.py: known-answer environments, every flag, determinism,
save/load, true final observations, CLI."""
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest

from minirl.algos.dqn import DQN, DQNConfig, QNet, dqn_gradient_step
from minirl.logger import TrainingLog
from minirl.nn import Adam
from minirl.objectives.q_learning import td_loss
from minirl.replay import ReplayBuffer
from minirl.testing.gradcheck import check_gradient

SMALL = dict(hidden_sizes=(16,), batch_size=16, buffer_size=2000, learning_starts=50,
             train_freq=16, gradient_steps=8, lr=1e-2, exploration_fraction=0.3)


def _q_all(agent, obs):
    return agent._q(np.asarray(obs, np.float64)[None])[0]


@pytest.mark.parametrize("flags", [
    dict(), dict(double=True), dict(n_step=3), dict(prioritized=True), dict(loss="mse"),
    dict(n_critics=3, ensemble_reduction="min"), dict(n_critics=2, ensemble_reduction="mean"),
    dict(exploration="boltzmann", temperature_final=0.05), dict(tau=0.2),
    dict(num_envs=2), dict(dtype="float64"),
], ids=lambda f: ",".join(f"{k}={v}" for k, v in f.items()) or "default")
def test_one_step_bandit_q_converges_to_the_rewards(flags):
    # minirl/Bandit-v0: reward 1 for action 1, 0 for action 0, then terminated: Q(s, .) = r
    agent = DQN("minirl/Bandit-v0", DQNConfig(**{**SMALL, **flags}), seed=0)
    agent.learn(1500)
    np.testing.assert_allclose(_q_all(agent, [1.0]), [0.0, 1.0], atol=0.1)
    assert agent.predict(np.ones(1, np.float32), deterministic=True) == 1


class _TruncationAsTermination(ReplayBuffer):
    """The classic bug: a time-limit end stored as a terminal state."""

    def add(self, obs, actions, rewards, next_obs, terminated, truncated):
        super().add(obs, actions, rewards, next_obs, terminated | truncated, truncated)


def test_constant_reward_time_limit_bootstraps_only_when_truncation_is_kept_apart():
    # reward 1 per step, constant obs, truncated after 8 steps: Q -> 1/(1-gamma) = 5 with the
    # truncation bootstrapped; as a termination the fixed point is 1/(1 - gamma 7/8) = 3.33
    # (squared error: the fixed point is the mean target; Huber's would lie nearer the median)
    cfg = DQNConfig(**{**SMALL, "gamma": 0.8, "lr": 5e-3, "gradient_steps": 16, "loss": "mse"})
    agent = DQN("minirl/ConstantReward-v0", cfg, seed=0)
    agent.learn(3000)
    np.testing.assert_allclose(_q_all(agent, [1.0]), 5.0, atol=0.25)
    wrong = DQN("minirl/ConstantReward-v0", cfg, seed=0)
    wrong.buffer = _TruncationAsTermination(cfg.buffer_size, (1,), (), np.int64)
    wrong.learn(3000)
    np.testing.assert_allclose(_q_all(wrong, [1.0]), 1 / (1 - 0.8 * 7 / 8), atol=0.25)


def test_buffer_stores_the_true_final_observation():
    # Corridor: one-hot position; at the right end the episode terminates and the env resets
    # to the left end, but the stored next_obs must be the terminal cell
    cfg = DQNConfig(**{**SMALL, "learning_starts": 10_000})      # random actions only
    agent = DQN("minirl/Corridor-v0", cfg, seed=0)
    agent.learn(1000)
    b = agent.buffer
    n = b.size
    term = b.terminated[:n]
    assert term.any() and b.truncated[:n].any()
    np.testing.assert_array_equal(b.next_obs[:n][term].argmax(axis=1), 4)   # the right end
    trunc = b.truncated[:n] & ~term
    assert not np.array_equal(b.next_obs[:n][trunc], np.eye(5)[np.zeros(trunc.sum(), int)])


def test_gradient_step_matches_finite_differences_through_the_network():
    rng = np.random.default_rng(0)
    cfg = DQNConfig(hidden_sizes=(8,), double=True, dtype="float64", max_grad_norm=1e9)
    qnet = QNet(3, 2, (8,), "tanh", 2, np.float64)
    params, target = qnet.init(rng), qnet.init(rng)
    buf = ReplayBuffer(40, (3,), (), np.int64, dtype=np.float64)
    for _ in range(30):
        buf.add(rng.standard_normal((1, 3)), rng.integers(0, 2, 1), rng.standard_normal(1),
                rng.standard_normal((1, 3)), rng.random(1) < 0.2, np.zeros(1, bool))
    batch = buf.sample(10, rng)
    adam = Adam(lr=0.0)                                     # lr 0: params unchanged
    grad_buf = np.zeros(qnet.n_params)
    new, _, (loss, _, _), _ = dqn_gradient_step(qnet, params, target, adam.init(params), adam,
                                                batch, cfg, grad_buf)
    np.testing.assert_array_equal(new, params)
    from minirl.algos.dqn import dqn_targets
    y = dqn_targets(qnet, params, target, batch.next_obs, batch.rewards,
                    0.99 * ~batch.terminated, cfg)

    def f(p):
        return np.array(td_loss(qnet.forward(p, batch.obs, "train")[0], batch.actions, y,
                                "huber", 1.0)[0])

    check_gradient(f, params, grad_buf, dy=np.array(1.0))
    assert f(params) == pytest.approx(loss)


def test_polyak_target_update_and_hard_copy_every_c_steps():
    agent = DQN("minirl/Bandit-v0", DQNConfig(**{**SMALL, "tau": 0.25}), seed=0)
    agent.target_params = np.zeros_like(agent.params)
    agent._update_target()
    np.testing.assert_allclose(agent.target_params, 0.25 * agent.params, rtol=1e-6)
    hard = DQN("minirl/Bandit-v0", DQNConfig(**{**SMALL, "target_update_interval": 5}), seed=0)
    hard._obs, _ = hard.envs.reset(seed=0)
    hard.target_params = np.zeros_like(hard.params)
    hard._collect(4, 0, 100)
    assert not hard.target_params.any()                     # 4 steps: no update yet
    hard._collect(1, 4, 100)
    np.testing.assert_array_equal(hard.target_params, hard.params)


def test_determinism_and_save_load_round_trip(tmp_path):
    cfg = DQNConfig(**{**SMALL, "prioritized": True, "n_step": 2})
    a = DQN("CartPole-v1", cfg, seed=3).learn(400)
    b = DQN("CartPole-v1", cfg, seed=3).learn(400)
    np.testing.assert_array_equal(a.params, b.params)
    a.save(tmp_path / "m.npz")
    c = DQN.load(tmp_path / "m.npz")
    obs = np.random.default_rng(0).standard_normal((32, 4)).astype(np.float32)
    np.testing.assert_array_equal(a.predict(obs, deterministic=True),
                                  c.predict(obs, deterministic=True))
    np.testing.assert_array_equal(a.predict(obs), c.predict(obs))    # eval rng restored
    a.learn(300)
    c.learn(300)                                            # continues bit for bit
    np.testing.assert_array_equal(a.params, c.params)
    np.testing.assert_array_equal(a.target_params, c.target_params)


def test_log_fields_reach_the_callback():
    log = TrainingLog(None, fields=DQN.log_fields)
    DQN("minirl/Bandit-v0", DQNConfig(**SMALL), seed=0).learn(200, log)
    last = log.rows[-1]
    assert last["gradient_steps"] == 8 and np.isfinite(last["q_loss"])
    assert 0.04 <= last["epsilon"] <= 1.0


def test_config_and_space_errors():
    with pytest.raises(ValueError, match="n_step"):
        DQNConfig(n_step=0)
    with pytest.raises(ValueError, match="exploration"):
        DQNConfig(exploration="greedy")
    with pytest.raises(ValueError, match="tau"):
        DQNConfig(tau=1.5)
    with pytest.raises(TypeError, match="Discrete"):
        DQN("minirl/ContinuousBandit-v0", DQNConfig(**SMALL))


def test_cli_smoke_and_bad_input(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "minirl.cli", "train", "dqn", "--env", "CartPole-v1",
           "--steps", "300", "--out", str(out), "--quiet",
           "--set", "learning_starts=100", "--set", "train_freq=50", "--set", "gradient_steps=2",
           "--set", "hidden_sizes=16", "--set", "double=true"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert (out / "model.npz").exists() and (out / "progress.csv").exists()
    header = (out / "progress.csv").read_text().splitlines()[0]
    assert "q_loss" in header and "epsilon" in header
    bad = subprocess.run(cmd[:-2] + ["--set", "n_step=0"], capture_output=True, text=True,
                         timeout=300)
    assert bad.returncode == 2 and "n_step" in bad.stderr


def test_uniform_init_is_pytorchs_linear_default():
    agent = DQN("CartPole-v1", DQNConfig(hidden_sizes=(16, 8), init="uniform"), seed=0)
    views = agent.qnet.mlp.views(agent.params)
    for name, fan_in in (("0", 4), ("2", 16), ("4", 8)):
        for part in ("weight", "bias"):
            x = views[f"{name}.{part}"]
            bound = 1 / np.sqrt(fan_in)
            assert np.abs(x).max() <= bound and np.abs(x).max() > 0.5 * bound
    with pytest.raises(ValueError, match="init"):
        DQNConfig(init="xavier")


def test_a_buffer_smaller_than_one_batch_is_refused_before_training(tmp_path, capsys):
    # Such a run trained nothing and exited 0 (the buffer never held batch_size transitions).
    from minirl.cli import main

    out = tmp_path / "never"
    assert main(["train", "dqn", "--env", "CartPole-v1", "--set", "buffer_size=16", "--quiet",
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "is more than buffer_size=16" in err and "batch_size=" in err and not out.exists()


_SCHEDULE_CFG = dict(num_envs=4, train_freq=8, gradient_steps=3, learning_starts=50,
                     target_update_interval=10, batch_size=8, buffer_size=400,
                     hidden_sizes=(8,))


def _dqn_schedule(total):
    """(env steps, gradient steps) after every iteration and the vector steps at which the
    target was updated, for a minirl DQN with ``_SCHEDULE_CFG``."""
    agent = DQN("CartPole-v1", DQNConfig(**_SCHEDULE_CFG), seed=0)
    rows, targets = [], []
    update = agent._update_target
    agent._update_target = lambda: (targets.append(agent.extra_state["vector_steps"]),
                                    update())
    agent.learn(total, callback=lambda a, m: rows.append((a.total_steps, m["gradient_steps"])))
    return rows, targets


def test_train_freq_counts_vector_steps_as_stable_baselines3():
    """SB3's schedule for num_envs=4, train_freq=8 (vector steps), gradient_steps=3,
    learning_starts=50, target_update_interval=10: a train call after every 8 env.step calls
    (32 env steps) once num_timesteps > 50, i.e. at 64, 96, 128, 160; the target every
    max(10 // 4, 1) = 2 vector steps. minirl counted train_freq in env steps (a train call
    every 8 env steps: 4x the gradient steps)."""
    rows, targets = _dqn_schedule(160)
    assert rows == [(32, 0), (64, 3), (96, 3), (128, 3), (160, 3)]
    assert targets == list(range(2, 41, 2))


def test_train_freq_schedule_matches_stable_baselines3_itself():
    sb3 = pytest.importorskip("stable_baselines3")
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.dqn import dqn as sb3_dqn

    c = _SCHEDULE_CFG
    model = sb3.DQN("MlpPolicy", make_vec_env("CartPole-v1", n_envs=c["num_envs"], seed=0),
                    train_freq=c["train_freq"], gradient_steps=c["gradient_steps"],
                    learning_starts=c["learning_starts"],
                    target_update_interval=c["target_update_interval"],
                    batch_size=c["batch_size"], buffer_size=c["buffer_size"],
                    policy_kwargs=dict(net_arch=list(c["hidden_sizes"])), seed=0)
    trains, targets = [], []
    train = model.train
    model.train = lambda gradient_steps, batch_size: (
        trains.append((model.num_timesteps, gradient_steps)), train(gradient_steps, batch_size))
    polyak = sb3_dqn.polyak_update

    def counting(params, target_params, tau):
        if tau != 1.0 or not targets or targets[-1] != model._n_calls:
            targets.append(model._n_calls)
        return polyak(params, target_params, tau)

    mp = pytest.MonkeyPatch()
    mp.setattr(sb3_dqn, "polyak_update", counting)
    try:
        model.learn(160)
    finally:
        mp.undo()
    rows, ours = _dqn_schedule(160)
    assert [r for r in rows if r[1]] == trains
    assert ours == targets


@pytest.mark.parametrize("flags", [dict(), dict(double=True, prioritized=True),
                                   dict(loss="mse", n_step=3, num_envs=2),
                                   dict(dtype="float64", exploration="boltzmann")])
def test_fused_step_is_bit_for_bit_the_layer_path(flags):
    """fused=True (kernels.qstep: one Numba call per gradient step and per action) trains the
    same parameters, optimizer state and logged numbers as the NumPy layer path."""
    runs = []
    for fused in (True, False):
        agent = DQN("CartPole-v1", DQNConfig(**{**SMALL, "hidden_sizes": (16, 16)}, **flags,
                                             fused=fused), seed=5)
        assert agent.qnet.fusable
        log = TrainingLog(None, fields=DQN.log_fields)
        agent.learn(1500, callback=log)
        runs.append((agent.params, agent.opt_states["adam"].m, agent.opt_states["adam"].v,
                     [(r["q_loss"], r["q_mean"], r["grad_norm"]) for r in log.rows]))
    for a, b in zip(*runs):
        np.testing.assert_array_equal(np.asarray(a, float), np.asarray(b, float))


def test_fused_flag_through_the_cli_gives_the_same_run(tmp_path):
    from minirl.cli import main
    for fused in ("true", "false"):
        assert main(["train", "dqn", "--env", "CartPole-v1", "--steps", "600", "--quiet",
                     "--out", str(tmp_path / fused), "--set", "learning_starts=100",
                     "--set", "train_freq=50", "--set", "gradient_steps=4",
                     "--set", "hidden_sizes=16,16", "--set", f"fused={fused}"]) == 0
    a, b = (np.load(tmp_path / f / "model.npz") for f in ("true", "false"))
    np.testing.assert_array_equal(a["params"], b["params"])
    ra, rb = ((tmp_path / f / "progress.csv").read_text().splitlines() for f in ("true", "false"))
    cols = ra[0].split(",")
    drop = {i for i, c in enumerate(cols) if c in ("wall_time", "steps_per_s")}
    strip = [[",".join(v for i, v in enumerate(line.split(",")) if i not in drop) for line in r]
             for r in (ra, rb)]
    assert strip[0] == strip[1]


def test_recycled_update_buffers_never_overwrite_a_snapshot_someone_holds():
    """The fused step writes new vectors into the obsolete ones only when nobody else holds
    them: a callback that keeps agent.params (no copy) still has its numbers afterwards."""
    kept = []

    def keep(agent, metrics):
        kept.append((agent.params, agent.params.copy()))
        return True
    agent = DQN("CartPole-v1", DQNConfig(**{**SMALL, "hidden_sizes": (16, 16)}), seed=2)
    agent.learn(1200, callback=keep)
    for held, copy in kept:
        np.testing.assert_array_equal(held, copy)


def test_parameters_living_in_a_users_buffer_or_a_read_only_array_are_never_overwritten():
    """Tester 5: params that are a view of a user's store were recycled as a later update's
    destination (the store changed); read-only params crashed the fused step."""
    cfg = DQNConfig(**{**SMALL, "hidden_sizes": (8, 8)})
    for fused in (True, False):
        agent = DQN("CartPole-v1", DQNConfig(**{**cfg.__dict__, "fused": fused}), seed=0)
        store = np.zeros(2 * agent.params.size, agent.params.dtype)
        store[:agent.params.size] = agent.params
        snap = store.copy()
        agent.params = store[:agent.params.size]
        agent.learn(400)
        np.testing.assert_array_equal(store, snap)
        ro = agent.params.copy()
        ro.flags.writeable = False
        agent.params = ro
        agent.learn(200)                                   # trains (through the layer path)
        assert not np.array_equal(agent.params, ro)


class _CounterEnv(gym.Env):
    """obs = [episode, step]; reward = 100 * episode + step; never ends by itself."""

    observation_space = gym.spaces.Box(-1e6, 1e6, (2,), np.float64)
    action_space = gym.spaces.Discrete(2)

    def __init__(self):
        self.episode, self.k = -1, 0

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.episode, self.k = self.episode + 1, 0
        return np.array([self.episode, 0.0]), {}

    def step(self, action):
        reward = 100.0 * self.episode + self.k
        self.k += 1
        return np.array([self.episode, self.k], float), reward, False, False, {}


@pytest.mark.parametrize("prioritized", [False, True])
def test_nstep_windows_never_run_across_the_reset_of_a_new_learn_call(prioritized):
    # Each learn() call resets the envs: the episode in progress is cut there (found by a
    # tester; the same kind as tianshou #135 / FastTD3 #6, windows across episodes).
    cfg = DQNConfig(num_envs=1, train_freq=5, gradient_steps=0, learning_starts=10_000,
                    buffer_size=1000, batch_size=2, n_step=3, gamma=0.5, hidden_sizes=(8,),
                    prioritized=prioritized)
    agent = DQN(_CounterEnv(), cfg, seed=0)
    agent.learn(5)                 # episode 0: rewards 0..4, cut
    agent.learn(5)                 # episode 1: rewards 100..104
    rng = np.random.default_rng(0)
    kw = {"beta": 1.0} if prioritized else {}
    starts = set()
    for _ in range(300):
        b = agent.buffer.sample_nstep(2, rng, 3, 0.5, **kw)
        for i in range(2):
            ep, k = b.obs[i]
            starts.add((ep, k))
            m = min(3, 5 - int(k))                       # stops at the episode's end
            G = sum(0.5 ** j * (100 * ep + k + j) for j in range(m))
            assert b.next_obs[i].tolist() == [ep, k + m]  # the true s_{t+m}, same episode
            assert b.steps[i] == m and b.returns[i] == pytest.approx(G)
            assert b.discounts[i] == pytest.approx(0.5 ** m)
    assert (0, 3) in starts and (0, 4) in starts


def test_k_updates_in_one_call_that_hand_steps_back_equal_the_layer_path(monkeypatch):
    """DQN runs an iteration's gradient_steps updates in one fused call (kernels.q_steps);
    a step the kernel hands back (here forced: every third one) runs through the layer path
    with the right Adam step count, and its logged statistics are the layer path's."""
    import kernels.qstep as qstep

    real = qstep._q_steps_kernel

    def every_third_back(*args):
        first, K = args[18], args[5].shape[0]            # the kernel's `first`, len(obs)
        stop = next((k for k in range(first, K) if k % 3 == 2), K)
        short = list(args)                               # run only the steps before `stop`
        for i in (5, 6, 7, 8, 9, 17):                    # (obs .. next_obs, coefs)
            short[i] = args[i][:stop]
        return real(*short)       # == stop: step `stop` is handed to the careful path
    runs = []
    for fused in (True, False):
        if fused:
            monkeypatch.setattr(qstep, "_q_steps_kernel", every_third_back)
        else:
            monkeypatch.setattr(qstep, "_q_steps_kernel", real)
        agent = DQN("CartPole-v1", DQNConfig(**{**SMALL, "hidden_sizes": (16, 16)},
                                             fused=fused), seed=3)
        log = TrainingLog(None, fields=DQN.log_fields)
        agent.learn(1500, callback=log)
        runs.append((agent.params, agent.opt_states["adam"].m, agent.opt_states["adam"].v,
                     agent.opt_states["adam"].step,
                     [(r["q_loss"], r["q_mean"], r["grad_norm"]) for r in log.rows]))
    for a, b in zip(*runs):
        np.testing.assert_array_equal(np.asarray(a, float), np.asarray(b, float))


class _RareHugeRewardEnv(gym.Env):
    """Gaussian observations and rewards, 1 in 20 rewards 10^10..10^25 (float32 gradients then
    overflow in Adam's second moment: a named error mid-iteration)."""

    observation_space = gym.spaces.Box(-10, 10, (4,), np.float32)
    action_space = gym.spaces.Discrete(3)

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self.np_random.normal(size=4).astype(np.float32), {}

    def step(self, action):
        self.t += 1
        r = float(self.np_random.normal()) + float(action)
        if self.np_random.random() < 0.05:
            r = 10.0 ** float(self.np_random.integers(10, 26))
        return (self.np_random.normal(size=4).astype(np.float32), r,
                bool(self.np_random.random() < 0.05), self.t >= 17, {})


@pytest.mark.parametrize("case", ["overflowing gradient", "lr schedule overflows"])
def test_an_error_mid_iteration_leaves_the_same_agent_fused_or_not(case):
    """An update that raises leaves the iteration's earlier updates applied, whether the
    updates run in one fused call or one by one (found by a tester: the fused call dropped
    them)."""
    from minirl.nn import Adam
    state = {}
    for fused in (True, False):
        if case == "overflowing gradient":
            cfg = DQNConfig(hidden_sizes=(16, 16), train_freq=16, gradient_steps=8,
                            learning_starts=50, batch_size=4, buffer_size=1000, loss="mse",
                            max_grad_norm=1e30, fused=fused)
            agent, steps, error = DQN(_RareHugeRewardEnv(), cfg, seed=7), 400, "overflowed"
        else:
            cfg = DQNConfig(hidden_sizes=(8,), train_freq=16, gradient_steps=8,
                            learning_starts=15, batch_size=8, buffer_size=500, fused=fused)
            agent, steps, error = DQN("CartPole-v1", cfg, seed=0), 64, "lr=1e\\+39"
            agent.adam = Adam(lr=lambda t: 1e-3 if t < 5 else 1e39)
        with pytest.raises((ValueError, FloatingPointError), match=error):
            agent.learn(steps)
        st = agent.opt_states["adam"]
        state[fused] = (st.step, agent.params, st.m, st.v)
    assert state[True][0] == state[False][0] and state[True][0] % 8 != 0   # mid-iteration
    for a, b in zip(state[True][1:], state[False][1:]):
        np.testing.assert_array_equal(a, b)


def test_k_update_statistics_are_silent_where_one_by_one_is():
    """float64 loss terms of ~1.4e308 each: their sum overflows; the logged mean is rescaled
    (minirl.nn.losses.mean_f64) without a floating-point warning or error, in both paths."""
    from minirl.algos.dqn import dqn_gradient_step, dqn_gradient_steps
    from minirl.replay import Transitions
    cfg = DQNConfig(hidden_sizes=(8,), loss="mse", dtype="float64", batch_size=4)
    qnet = QNet(3, 2, (8,), "relu", 1, np.float64)
    rng = np.random.default_rng(0)
    params = qnet.init(rng, "uniform")
    adam = Adam(lr=1e-3)
    K, B = 3, 4
    obs = rng.normal(size=(K, B, 3))
    batches = Transitions(obs, rng.integers(0, 2, (K, B)), np.full((K, B), 1.2e154), obs + 1,
                          np.zeros((K, B), bool), np.zeros((K, B), bool),
                          np.zeros((K, B), np.int64), np.ones((K, B)))
    with np.errstate(all="raise"):
        _, _, stats = dqn_gradient_steps(qnet, params, params.copy(), adam.init(params), adam,
                                         batches, cfg, np.zeros(qnet.n_params))
        p, st = params, adam.init(params)
        for k in range(K):
            one = Transitions(*(f[k] for f in batches))
            p, st, row, _ = dqn_gradient_step(qnet, p, params.copy(), st, adam, one, cfg,
                                              np.zeros(qnet.n_params))
            assert stats[k].tolist() == list(row)
    assert np.isfinite(stats).all() and stats[0, 0] == pytest.approx(1.44e308, rel=1e-6)
