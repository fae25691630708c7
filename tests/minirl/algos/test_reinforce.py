"""Tests for minirl/algos/reinforce.py: the weights per option, baseline refit, learning."""
import numpy as np
import pytest

from minirl.algos.reinforce import (REINFORCE, REINFORCEConfig, episode_score_vectors,
                                    fit_baseline, optimal_baseline_step, pg_weights)
from minirl.logger import TrainingLog
from minirl.objectives.policy_gradient import (constant_baseline_weights, episode_ids,
                                               full_return_weights, optimal_baseline_gradient,
                                               reward_to_go_weights)
from minirl.rollout import flatten


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
