"""Population evaluators: identical bits on every backend, known answers, failures, bad input."""
import functools
import importlib.util
import time

import gymnasium as gym
import numpy as np
import pytest

from minirl.normalize import ObsNormalizer, RunningMeanStd
from minirl.population import (DeterministicPolicy, EvalResult, NoiseTable, PolicySpec,
                               ProcessEvaluator, SerialEvaluator, WorkerError, make_evaluator,
                               merge_obs_stats, run_episode)

HAS_RAY = importlib.util.find_spec("ray") is not None
needs_ray = pytest.mark.skipif(not HAS_RAY, reason="ray is not installed (extra 'ray')")

CARTPOLE = PolicySpec("CartPole-v1")
PENDULUM = PolicySpec("Pendulum-v1", hidden_sizes=(8,), max_episode_steps=50)
# Corridor of length 1: stepping right (action 1) indexes past the one-cell observation and
# raises IndexError inside the env -- a worker error on demand, from a picklable callable.
BROKEN = PolicySpec(functools.partial(gym.make, "minirl/Corridor-v0", length=1))
# An episode that never ends: ConstantReward never terminates and this limit is never reached.
ENDLESS = PolicySpec(functools.partial(gym.make, "minirl/ConstantReward-v0",
                                       max_episode_steps=10**12))
TABLE = NoiseTable(size=4096, seed=3)


def _batches(spec, k=12, seed=0):
    """A params batch and a noise batch with seeds, both drawn from one generator."""
    with SerialEvaluator(spec) as ev:
        p = ev.n_params
    rng = np.random.default_rng(seed)
    seeds = rng.integers(0, 2**31 - 1, size=k)
    params = rng.standard_normal((k, p))
    theta = 0.3 * rng.standard_normal(p)
    idx = TABLE.sample_index(rng, p, k // 2).repeat(2)
    scale = np.tile([0.5, -0.5], k // 2)
    return seeds, params, dict(theta=theta, noise_idx=idx, noise_scale=scale)


def _norm(dim, seed=0):
    norm = ObsNormalizer((dim,))
    norm.rms.update(np.random.default_rng(seed).normal(0.5, 2.0, size=(20, dim)))
    return norm


def _all_results(ev, spec):
    seeds, params, noisy = _batches(spec)
    norm = _norm(ev.obs_dim)
    return [ev.evaluate(seeds, params, collect_obs=True),
            ev.evaluate(seeds, **noisy, obs_norm=norm, collect_obs=True),
            ev.evaluate(seeds[:1], params[:1])]


def _assert_identical(a: list, b: list):
    for ra, rb in zip(a, b):
        for x, y in zip(ra, rb):
            assert x.dtype == y.dtype
            np.testing.assert_array_equal(x, y)


@pytest.fixture(scope="module")
def serial_reference():
    out = {}
    for name, spec in (("cartpole", CARTPOLE), ("pendulum", PENDULUM)):
        with SerialEvaluator(spec, TABLE) as ev:
            out[name] = _all_results(ev, spec)
    return out


# ----- known answers and determinism ---------------------------------------------------------

def test_run_episode_known_answer_and_cut():
    env = gym.make("minirl/ConstantReward-v0")
    policy = DeterministicPolicy(env.observation_space, env.action_space)
    ret, n, stats = run_episode(env, policy, policy.init(None, zero=True), seed=0,
                                collect_obs=True)
    assert (ret, n) == (8.0, 8) and stats[0] == 8.0
    np.testing.assert_array_equal(stats[1], [1.0]) and np.testing.assert_array_equal(stats[2], [0])
    assert run_episode(env, policy, policy.init(None, zero=True), 0, max_steps=3)[:2] == (3.0, 3)


def test_deterministic_policy_actions():
    env = gym.make("Pendulum-v1")
    policy = DeterministicPolicy(env.observation_space, env.action_space)
    params = policy.net.zeros()
    params[-1] = 5.0                               # bias of the single output: a = 5 -> clip 2
    x = np.zeros((2, 3))
    np.testing.assert_array_equal(policy.raw_actions(params, x), [[5.0], [5.0]])
    np.testing.assert_array_equal(policy.env_actions(params, x), [[2.0], [2.0]])
    env = gym.make("CartPole-v1")
    policy = DeterministicPolicy(env.observation_space, env.action_space)
    np.testing.assert_array_equal(policy.env_actions(policy.net.zeros(), np.ones((1, 4))), [0])


def test_linear_policy_without_bias_is_w_s_and_the_evaluator_runs_it():
    env = gym.make("Pendulum-v1")
    policy = DeterministicPolicy(env.observation_space, env.action_space, bias=False)
    with_bias = DeterministicPolicy(env.observation_space, env.action_space)
    assert policy.n_params == 3 and with_bias.n_params == 4
    np.testing.assert_array_equal(policy.init(np.random.default_rng(0), zero=True), np.zeros(3))
    w = np.array([0.5, -1.0, 2.0])
    x = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    np.testing.assert_array_equal(policy.raw_actions(w, x), [[4.5], [0.0]])
    # the same actions as the biased layout with a zero bias, so the same episode return
    spec = PolicySpec("Pendulum-v1", max_episode_steps=20, bias=False)
    with SerialEvaluator(spec) as ev:
        assert ev.n_params == 3
        got = ev.evaluate([3], w[None]).returns[0]
    assert got == run_episode(gym.make("Pendulum-v1"), with_bias, np.append(w, 0.0), 3,
                              max_steps=20)[0]
    with pytest.raises(ValueError, match="bias"):
        PolicySpec("Pendulum-v1", hidden_sizes=(4,), bias=False)
    with pytest.raises(ValueError, match="bias"):
        DeterministicPolicy(env.observation_space, env.action_space, (4,), bias=False)


def test_linear_fast_path_and_episode_normalization_match_the_generic_code():
    env = gym.make("Pendulum-v1", max_episode_steps=40)
    policy = DeterministicPolicy(env.observation_space, env.action_space)
    params = np.random.default_rng(0).standard_normal(policy.n_params)
    x = np.random.default_rng(1).normal(size=(6, 3))
    np.testing.assert_array_equal(policy.raw_actions(params, x), policy.net.forward(params, x)[0])
    norm = _norm(3)
    obs, _ = env.reset(seed=5)
    total, done = 0.0, False
    while not done:   # what Agent.predict does: ObsNormalizer, then the policy
        a = policy.env_actions(params, norm(obs[None].astype(np.float64)))[0]
        obs, r, term, trunc, _ = env.step(a)
        total, done = total + float(r), term or trunc
    assert run_episode(env, policy, params, 5, norm)[0] == total


def test_serial_is_deterministic_and_seeds_matter(serial_reference):
    with SerialEvaluator(CARTPOLE, TABLE) as ev:
        _assert_identical(_all_results(ev, CARTPOLE), serial_reference["cartpole"])
        seeds, params, _ = _batches(CARTPOLE)
        other = ev.evaluate(seeds + 1, params)
    assert not np.array_equal(other.returns, serial_reference["cartpole"][0].returns)


def test_noise_mode_equals_explicit_params():
    seeds, _, noisy = _batches(PENDULUM)
    p = SerialEvaluator(PENDULUM).n_params
    explicit = noisy["theta"] + noisy["noise_scale"][:, None] * TABLE.rows(noisy["noise_idx"], p)
    with SerialEvaluator(PENDULUM, TABLE) as ev:
        _assert_identical([ev.evaluate(seeds, **noisy)], [ev.evaluate(seeds, explicit)])


def test_merged_obs_stats_equal_the_moments_of_all_observations():
    env = gym.make("Pendulum-v1", max_episode_steps=30)
    policy = DeterministicPolicy(env.observation_space, env.action_space)
    params = policy.init(np.random.default_rng(0))
    seen, parts = [], []
    for s in range(4):  # the same episodes, once recording every observation by hand
        obs, _ = env.reset(seed=s)
        for _ in range(30):
            seen.append(obs.astype(np.float64))
            obs, *_ = env.step(policy.env_actions(params, obs[None].astype(np.float64))[0])
        parts.append(run_episode(env, policy, params, s, collect_obs=True)[2])
    res = EvalResult(np.zeros(4), np.zeros(4, np.int64), *map(np.array, zip(*parts)))
    rms = RunningMeanStd((3,))
    merge_obs_stats(rms, res)
    assert rms.count == 120.0
    np.testing.assert_allclose(rms.mean, np.mean(seen, axis=0), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(rms.var, np.var(seen, axis=0), rtol=1e-12)


# ----- backend equivalence -------------------------------------------------------------------

@pytest.mark.parametrize("name,num_workers,chunks", [("cartpole", 1, 4), ("pendulum", 2, 1),
                                                     ("pendulum", 2, 4)])
def test_processes_bit_identical_to_serial(serial_reference, name, num_workers, chunks):
    spec = {"cartpole": CARTPOLE, "pendulum": PENDULUM}[name]
    with ProcessEvaluator(spec, TABLE, num_workers=num_workers, chunks_per_worker=chunks) as ev:
        _assert_identical(_all_results(ev, spec), serial_reference[name])


@needs_ray
def test_ray_two_workers_bit_identical_to_serial(serial_reference, ray_session):
    with make_evaluator(PENDULUM, "ray", num_workers=2, noise=TABLE) as ev:
        _assert_identical(_all_results(ev, PENDULUM), serial_reference["pendulum"])


# ----- failures are reported, never hung on ----------------------------------------------------

def _right_params(ev):
    """Params whose action is 1 (right) on the Corridor: logit-1 bias 1, everything else 0."""
    params = np.zeros((3, ev.n_params))
    params[1, -1] = 1.0            # only task 1 steps right
    return params


def test_worker_error_is_raised_with_its_cause_serial_and_processes():
    for ev in (SerialEvaluator(BROKEN), ProcessEvaluator(BROKEN, num_workers=2)):
        with ev:
            ok = ev.evaluate(np.arange(3), np.zeros((3, ev.n_params)))
            np.testing.assert_array_equal(ok.lengths, [1, 1, 1])   # left: terminated at once
            with pytest.raises(WorkerError, match="IndexError") as info:
                ev.evaluate(np.arange(3), _right_params(ev))
            assert "tasks 1..1" in str(info.value) or "tasks 0..2" in str(info.value)
            assert info.value.__cause__ is not None


def test_dead_process_and_timeout_raise_worker_error():
    ev = ProcessEvaluator(CARTPOLE, num_workers=2)
    seeds, params, _ = _batches(CARTPOLE)
    ev.evaluate(seeds, params)
    import os
    import signal
    pid = ev.worker_pids()[0]
    os.kill(pid, signal.SIGKILL)
    proc = ev._pool._processes[pid]
    for _ in range(500):          # the kill is asynchronous: wait until it is visible
        if not proc.is_alive():
            break
        time.sleep(0.01)
    with pytest.raises(WorkerError, match="died"):
        ev.evaluate(seeds, params)
    assert ev.closed
    ev = ProcessEvaluator(ENDLESS, num_workers=1, timeout=1.0)
    with pytest.raises(WorkerError, match="within 1.0 s"):
        ev.evaluate(np.arange(2), np.zeros((2, ev.n_params)))
    assert ev.closed


@needs_ray
def test_ray_worker_error_and_dead_actor(ray_session):
    with make_evaluator(BROKEN, "ray", num_workers=2) as ev:
        with pytest.raises(WorkerError, match="IndexError"):
            ev.evaluate(np.arange(3), _right_params(ev))
        ev.kill_worker(0)
        with pytest.raises(WorkerError, match="died"):
            ev.evaluate(np.arange(8), np.zeros((8, ev.n_params)))


# ----- bad input -------------------------------------------------------------------------------

def test_bad_input_names_the_argument():
    with SerialEvaluator(CARTPOLE, TABLE) as ev:
        p = ev.n_params
        with pytest.raises(ValueError, match="seeds"):
            ev.evaluate([-1, 2], np.zeros((2, p)))
        with pytest.raises(ValueError, match="seeds"):
            ev.evaluate([0.5], np.zeros((1, p)))
        with pytest.raises(ValueError, match="params"):
            ev.evaluate([1, 2], np.zeros((2, p + 1)))
        with pytest.raises(ValueError, match="params"):
            ev.evaluate([1], np.full((1, p), np.nan))
        with pytest.raises(ValueError, match="not both"):
            ev.evaluate([1], np.zeros((1, p)), theta=np.zeros(p))
        with pytest.raises(ValueError, match="noise_idx"):
            ev.evaluate([1], theta=np.zeros(p), noise_idx=[4096], noise_scale=[0.1])
        with pytest.raises(ValueError, match="noise_scale"):
            ev.evaluate([1], theta=np.zeros(p), noise_idx=[0], noise_scale=[0.1, 0.2])
        with pytest.raises(ValueError, match="theta"):
            ev.evaluate([1], theta=np.zeros(p + 1), noise_idx=[0], noise_scale=[0.1])
    with pytest.raises(RuntimeError, match="closed"):
        ev.evaluate([1], np.zeros((1, p)))
    with SerialEvaluator(CARTPOLE) as ev:
        with pytest.raises(ValueError, match="noise table"):
            ev.evaluate([1], theta=np.zeros(p), noise_idx=[0], noise_scale=[0.1])
    with pytest.raises(ValueError, match="backend"):
        make_evaluator(CARTPOLE, "threads")
    with pytest.raises(ValueError, match="num_workers"):
        ProcessEvaluator(CARTPOLE, num_workers=0)
    with pytest.raises(ValueError, match="timeout"):
        ProcessEvaluator(CARTPOLE, timeout=-1)
    with pytest.raises(ValueError, match="hidden_sizes"):
        PolicySpec("CartPole-v1", hidden_sizes=(0,))
    with pytest.raises(ValueError, match="activation"):
        PolicySpec("CartPole-v1", activation="gelu")
    with pytest.raises(TypeError, match="env"):
        PolicySpec(3)
    with pytest.raises(ValueError, match="size"):
        NoiseTable(size=0)
    with pytest.raises(ValueError, match="dim"):
        NoiseTable(size=4).sample_index(np.random.default_rng(0), 5, 1)


def test_process_workers_ignore_ctrl_c_and_an_interrupt_here_stops_them():
    import os
    import signal
    import threading
    ev = ProcessEvaluator(CARTPOLE, num_workers=1)
    seeds, params, _ = _batches(CARTPOLE, k=2)
    first = ev.evaluate(seeds, params)
    pid = ev.worker_pids()[0]
    os.kill(pid, signal.SIGINT)        # a terminal's Ctrl-C reaches the whole process group
    _assert_identical([ev.evaluate(seeds, params)], [first])
    assert ev.worker_pids() == [pid]   # the worker neither died nor failed its tasks
    ev.close()
    # a KeyboardInterrupt in this process while workers run: they are terminated, not left
    # running a batch nobody collects, and the evaluator starts fresh ones on the next call
    ev = ProcessEvaluator(ENDLESS, num_workers=1)
    timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        ev.evaluate(np.arange(2), np.zeros((2, ev.n_params)))
    assert not ev.closed and ev.worker_pids() == []
    ev.close()
