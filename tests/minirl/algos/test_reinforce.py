"""Tests for minirl/algos/reinforce.py: the weights per option, baseline refit, learning."""
import dataclasses

import numpy as np
import pytest
from gymnasium import spaces

from minirl.algos.reinforce import (REINFORCE, REINFORCEConfig, episode_score_vectors,
                                    fit_baseline, optimal_baseline_step, pg_weights)
from minirl.logger import TrainingLog
from minirl.mdp import exact_gradient, policy_evaluation, random_mdp, tabular_softmax_policy
from minirl.objectives.policy_gradient import (constant_baseline_weights, episode_ids,
                                               full_return_weights, optimal_baseline_gradient,
                                               reward_to_go_weights)
from minirl.rollout import allocate_rollout, flatten
from minirl.testing.mdp_oracle import enumerated_batch, exact_mean


def _rollout(cfg):
    agent = REINFORCE("minirl/Corridor-v0", cfg, seed=0)
    agent._start_learning()
    return agent, agent.collector.collect(agent._act, agent._value, agent.rng)


def test_pg_weights_per_option():
    base = dict(num_envs=2, num_steps=30, hidden_sizes=(8,), gamma=0.9)
    _, ro = _rollout(REINFORCEConfig(reward_to_go=False, baseline="none", **base))
    w, _ = pg_weights(ro, REINFORCEConfig(reward_to_go=False, baseline="none", **base))
    np.testing.assert_allclose(w, full_return_weights(ro.rewards, ro.terminated, ro.truncated, 0.9))
    w, _ = pg_weights(ro, REINFORCEConfig(baseline="none", **base))
    np.testing.assert_allclose(w, reward_to_go_weights(ro.rewards, ro.terminated, ro.truncated,
                                                       0.9, step_discount=False))
    w_mean, _ = pg_weights(ro, REINFORCEConfig(baseline="mean", **base))
    assert not np.allclose(w_mean, w)
    w_v, G = pg_weights(ro, REINFORCEConfig(baseline="value", **base))
    # learned baseline: w = G - V(s) where G bootstraps V only at cut episodes
    np.testing.assert_allclose(w_v, G - ro.values, rtol=1e-5, atol=1e-5)
    # full return with a baseline (CS224R Policy Gradients: R(tau) - b), constant per episode
    # for the batch mean, R(tau) - V(s_t) for the learned one
    R = full_return_weights(ro.rewards, ro.terminated, ro.truncated, 0.9)
    w_fm, _ = pg_weights(ro, REINFORCEConfig(reward_to_go=False, baseline="mean", **base))
    minus_b = w_fm - R                    # -b, the same at every step
    np.testing.assert_allclose(minus_b, np.full(R.shape, minus_b[0, 0]), rtol=1e-6)
    np.testing.assert_array_equal(w_fm, constant_baseline_weights(
        ro.rewards, ro.terminated, ro.truncated, 0.9, "mean", full_return=True))
    assert minus_b[0, 0] != 0
    R_boot = full_return_weights(ro.rewards, ro.terminated, ro.truncated, 0.9,
                                 bootstrap_values=ro.next_values)
    w_fv, _ = pg_weights(ro, REINFORCEConfig(reward_to_go=False, baseline="value", **base))
    np.testing.assert_allclose(w_fv, R_boot - ro.values, rtol=1e-5, atol=1e-5)


def test_fit_baseline_reduces_the_regression_loss():
    cfg = REINFORCEConfig(num_envs=2, num_steps=30, hidden_sizes=(8,), vf_epochs=30,
                          vf_minibatch_size=20, vf_lr=1e-2)
    agent, ro = _rollout(cfg)
    _, G = pg_weights(ro, cfg)
    obs, G = flatten(ro.obs), flatten(G)
    before = float(np.mean((agent._value(obs) - G) ** 2))
    params, _, _ = fit_baseline(agent.net, agent.params, agent.opt_states["vf"], obs, G,
                                agent.rng, cfg)
    after = float(np.mean((agent.net.value(params, obs) - G) ** 2))
    assert after < 0.5 * before
    np.testing.assert_array_equal(params[agent.net.pi_slice], agent.params[agent.net.pi_slice])


@pytest.mark.parametrize("reward_to_go, baseline", [(True, "none"), (True, "mean"),
                                                    (True, "value"), (False, "mean"),
                                                    (False, "optimal")])
def test_reinforce_learns_bandit(reward_to_go, baseline):
    cfg = REINFORCEConfig(num_envs=4, num_steps=16, hidden_sizes=(16,), baseline=baseline,
                          reward_to_go=reward_to_go, lr=1e-2)
    log = TrainingLog(None)
    REINFORCE("minirl/Bandit-v0", cfg, seed=0).learn(4096, log)
    r = np.array([row["episode_return_mean"] for row in log.rows])
    assert r[:2].mean() < 0.7 and r[-5:].mean() >= 0.85


def test_reinforce_learns_corridor():
    cfg = REINFORCEConfig(num_envs=4, num_steps=50, lr=1e-2, hidden_sizes=(16,))
    log = TrainingLog(None)
    REINFORCE("minirl/Corridor-v0", cfg, seed=0).learn(6000, log)
    r = np.array([row["episode_return_mean"] for row in log.rows])
    assert r[-3:].mean() >= -5.0 and r[-3:].mean() - r[:2].mean() >= 3.0


def test_optimal_baseline_needs_the_full_return():
    with pytest.raises(ValueError, match="reward_to_go"):
        REINFORCEConfig(baseline="optimal")


def test_episode_score_vectors_sum_to_the_batch_score_and_drive_the_optimal_step():
    cfg = REINFORCEConfig(num_envs=2, num_steps=30, hidden_sizes=(8,), gamma=0.9,
                          reward_to_go=False, baseline="optimal", dtype="float64")
    agent, ro = _rollout(cfg)
    ids, E = episode_ids(ro.terminated, ro.truncated)
    obs, actions = flatten(ro.obs), flatten(ro.actions)
    g = episode_score_vectors(agent.net, agent.params, obs, actions, flatten(ids), E)
    # the sum over episodes is one backward pass of sum_t log pi over the whole batch
    dist, _, cache = agent.net.forward(agent.params, obs)
    total = agent.net.backward(agent.params, cache,
                               dist.log_prob_backward(actions, np.ones(len(obs))))
    np.testing.assert_allclose(g.sum(axis=0), total[agent.net.pi_slice], rtol=1e-10, atol=1e-12)
    # each row is that episode's own score: a backward pass on its rows only
    rows = np.flatnonzero(flatten(ids) == 1)
    dist, _, cache = agent.net.forward(agent.params, obs[rows])
    one = agent.net.backward(agent.params, cache,
                             dist.log_prob_backward(actions[rows], np.ones(len(rows))))
    np.testing.assert_allclose(g[1], one[agent.net.pi_slice], rtol=1e-10, atol=1e-12)
    # the step moves along -clip(optimal_baseline_gradient) through Adam: check its direction
    w, _ = pg_weights(ro, cfg)
    R = np.zeros(E)
    R[flatten(ids)] = flatten(w)
    ascent, _ = optimal_baseline_gradient(g, R)
    params, _, stats = optimal_baseline_step(agent.net, agent.params, agent.opt_states["pi"], ro,
                                             w, cfg)
    step = (params - agent.params)[agent.net.pi_slice]
    assert np.all(np.sign(step[ascent != 0]) == np.sign(ascent[ascent != 0]))  # Adam's 1st step
    assert np.all(params[agent.net.vf_slice] == agent.params[agent.net.vf_slice])


def test_step_discount_counts_k_from_the_episode_start_across_rollouts():
    """An episode that straddles iterations keeps its gamma^k: rows 0.. of the second rollout
    continue the first one's episode (k = 10, 11, ...), not k = 0, 1, ... (tester 4, defect 1)."""
    cfg = REINFORCEConfig(num_envs=2, num_steps=10, gamma=0.9, baseline="none",
                          step_discount=True, norm_adv=False, hidden_sizes=(4,))
    agent = REINFORCE("minirl/ConstantReward-v0", cfg, seed=0,
                      env_kwargs={"max_episode_steps": 25})
    rollouts = []

    def keep(ag, metrics):
        b = ag.collector.buffer
        rollouts.append(dataclasses.replace(
            b, **{f.name: getattr(b, f.name).copy() for f in dataclasses.fields(b)}))

    agent.learn(80, keep)              # 4 rollouts of 10 steps x 2 envs, episodes of 25 steps
    assert [ro.start_steps.tolist() for ro in rollouts] == [[0, 0], [10, 10], [20, 20], [5, 5]]
    k_all = np.arange(40) % 25                 # step of each row within its episode
    for i, ro in enumerate(rollouts):
        w, G = pg_weights(ro, cfg)
        k = k_all[10 * i:10 * i + 10]
        np.testing.assert_allclose(w, (0.9 ** k)[:, None] * G, rtol=1e-6)
    # rollout 1: rows 0-2 are steps 10, 11, 12 of the episode begun in rollout 0
    w, G = pg_weights(rollouts[1], cfg)
    np.testing.assert_allclose((w / G)[:3, 0], [0.9 ** 10, 0.9 ** 11, 0.9 ** 12], rtol=1e-6)
    # rollout 2: the episode ends at row 4 (step 24); row 5 starts a new one (k = 0)
    w, G = pg_weights(rollouts[2], cfg)
    np.testing.assert_allclose((w / G)[4:6, 1], [0.9 ** 24, 1.0], rtol=1e-6)


@pytest.mark.parametrize("reward_to_go", [True, False])
def test_step_discount_stays_unbiased_for_an_episode_split_between_two_rollouts(reward_to_go):
    """Exact expectation on a finite MDP: every episode is collected as two rollouts (rows 0-1,
    cut and bootstrapped with the exact V_2; rows 2-3 with start_steps = 2), weighted by
    ``pg_weights`` (learned-baseline form with the exact V as baseline). The sum of both
    parts' terms is unbiased for grad J; counting k from the second rollout's row 0 is not.
    Full return: the second part's R is gamma^2 times its own return (from the episode's
    start), the first part's R bootstraps gamma^2 V_2(s_2)."""
    rng = np.random.default_rng(3)
    mdp = random_mdp(rng, 2, 2, 4, gamma=0.8)
    policy = tabular_softmax_policy(2, 2)
    theta = rng.standard_normal(policy.num_params)
    b = enumerated_batch(mdp, policy, theta)
    _, V, _ = policy_evaluation(mdp, policy.probs(theta))
    values = b.at(V)                                              # V_t(s_t) [T, K]
    next_values = np.zeros_like(values)
    next_values[:-1] = values[1:]                                 # V_{t+1}(s_{t+1}), 0 at T
    cfg = REINFORCEConfig(gamma=mdp.gamma, baseline="value", step_discount=True,
                          reward_to_go=reward_to_go)
    K, c = b.rewards.shape[1], 2

    def weights(start_steps_of_second):
        w = []
        for rows, start in ((slice(0, c), 0), (slice(c, None), start_steps_of_second)):
            ro = allocate_rollout(2, K, spaces.Box(-1, 1, (1,)), spaces.Discrete(2))
            ro.rewards[:] = b.rewards[rows]
            ro.terminated[:] = b.terminated[rows]             # rows 0-1: cut by the rollout
            ro.truncated[:] = b.truncated[rows]
            ro.values[:] = values[rows]
            ro.next_values[:] = next_values[rows]             # row 1: bootstraps V_2(s_2)
            ro.start_steps[:] = start
            w.append(pg_weights(ro, cfg)[0])
        return np.concatenate(w)

    truth = exact_gradient(mdp, policy, theta)
    split = exact_mean(b.per_episode(weights(c)), b.prob)
    np.testing.assert_allclose(split, truth, rtol=1e-10, atol=1e-12)
    restarted = exact_mean(b.per_episode(weights(0)), b.prob)    # the defect: gamma^0 at row c
    assert np.linalg.norm(restarted - truth) > 0.1 * np.linalg.norm(truth)
