"""Policy-gradient estimators proven exactly on finite MDPs.

Every test computes estimator weights with the public functions the agents use, on batches
of *enumerated* trajectories, and compares the exact expectation with the finite-difference
gradient of the exact J(theta) from ``minirl.mdp``.
"""
import itertools

import numpy as np
import pytest
from hypothesis import given, settings

from minirl.mdp import (
    exact_gradient,
    exact_objective,
    finite_difference_gradient,
    linear_softmax_policy,
    log_state_ratios,
    policy_evaluation,
    random_mdp,
    state_distributions,
    surrogate_objective,
    tabular_softmax_policy,
)
from minirl.objectives.policy_gradient import (
    advantage_weights,
    constant_baseline_weights,
    episode_ids,
    episode_steps,
    full_return_weights,
    marginal_is_weights,
    optimal_baseline_gradient,
    per_decision_is_weights,
    per_episode_gradients,
    per_step_is_weights,
    policy_gradient,
    policy_gradient_from_dlogp,
    policy_gradient_loss,
    prefix_is_advantage_weights,
    reward_to_go_weights,
    state_baseline_weights,
    trajectory_is_weights,
    variance_optimal_baseline,
)
from minirl.testing.gradcheck import check_gradient, relative_error
from minirl.testing.mdp_oracle import (
    enumerated_batch,
    exact_mean,
    exact_variance,
    policy_cases,
    sampled_batch,
)

RTOL = 1e-6  # the bar; the observed errors are ~1e-11 (finite differences of J)


def grad_J(mdp, policy, theta):
    return finite_difference_gradient(lambda x: exact_objective(mdp, policy.probs(x)), theta)


def _assert_unbiased(expected, truth):
    # Both sides can be ~0 together (e.g. T = 1 with constant rewards); the norm-based
    # relative error then compares rounding noise, so require closeness in absolute terms too.
    if np.linalg.norm(truth) < 1e-9:
        assert np.linalg.norm(expected - truth) < 1e-9
    else:
        assert relative_error(expected, truth) < RTOL


ON_POLICY = ["full_return", "reward_to_go", "constant_baseline", "state_baseline", "advantage",
             "full_return_constant_baseline", "full_return_state_baseline"]


def _weights(name, mdp, policy, theta, b, seed=0):
    g = mdp.gamma
    if name == "full_return":
        return full_return_weights(b.rewards, b.terminated, b.truncated, g)
    if name == "reward_to_go":
        return reward_to_go_weights(b.rewards, b.terminated, b.truncated, g)
    if name == "constant_baseline":  # a fixed constant: unbiased
        return constant_baseline_weights(b.rewards, b.terminated, b.truncated, g, baseline=0.7)
    if name == "state_baseline":  # any b(s_t, t): here random, not V
        table = np.random.default_rng(seed).standard_normal((mdp.horizon, mdp.num_states))
        return state_baseline_weights(b.rewards, b.terminated, b.truncated, b.at(table), g)
    if name == "full_return_constant_baseline":  # CS224R: grad log p(tau) (R(tau) - b)
        return constant_baseline_weights(b.rewards, b.terminated, b.truncated, g, baseline=0.7,
                                         full_return=True)
    if name == "full_return_state_baseline":  # R(tau) - b(s_t, t)
        table = np.random.default_rng(seed).standard_normal((mdp.horizon, mdp.num_states))
        return state_baseline_weights(b.rewards, b.terminated, b.truncated, b.at(table), g,
                                      full_return=True)
    if name == "advantage":
        _, _, A = policy_evaluation(mdp, policy.probs(theta))
        return advantage_weights(b.at(A), b.terminated, b.truncated, g)
    raise KeyError(name)


# --- 1-6: on-policy estimators are unbiased ---------------------------------------------------


@given(policy_cases())
def test_on_policy_estimators_are_unbiased(case):
    mdp, policy, theta, _ = case
    truth = grad_J(mdp, policy, theta)
    b = enumerated_batch(mdp, policy, theta)
    for name in ON_POLICY:
        expected = exact_mean(b.per_episode(_weights(name, mdp, policy, theta, b)), b.prob)
        _assert_unbiased(expected, truth)


@given(policy_cases())
def test_variance_optimal_baseline_is_unbiased_and_has_least_variance(case):
    mdp, policy, theta, _ = case
    b = enumerated_batch(mdp, policy, theta)
    w = full_return_weights(b.rewards, b.terminated, b.truncated, mdp.gamma)
    b_opt = variance_optimal_baseline(b.scores, b.rewards, b.terminated, b.truncated,
                                      mdp.gamma, sample_weight=b.prob)  # the exact E[g^2 R]/E[g^2]
    opt = b.per_episode(w, coordinate_baseline=b_opt)
    _assert_unbiased(exact_mean(opt, b.prob), grad_J(mdp, policy, theta))
    J = exact_objective(mdp, policy.probs(theta))  # = E[R(tau)], the mean-return baseline
    var_opt = exact_variance(opt, b.prob)
    for other in (b.per_episode(w), b.per_episode(w - J)):
        var_other = exact_variance(other, b.prob)
        assert np.all(var_opt <= var_other * (1 + 1e-10) + 1e-12)


def test_variance_optimal_baseline_beats_the_mean_strictly_somewhere():
    rng = np.random.default_rng(0)
    mdp = random_mdp(rng, 3, 3, 3, gamma=1.0)
    policy = tabular_softmax_policy(3, 3)
    theta = rng.standard_normal(9)
    b = enumerated_batch(mdp, policy, theta)
    w = full_return_weights(b.rewards, b.terminated, b.truncated, 1.0)
    b_opt = variance_optimal_baseline(b.scores, b.rewards, b.terminated, b.truncated, 1.0,
                                      sample_weight=b.prob)
    J = exact_objective(mdp, policy.probs(theta))
    var_opt = exact_variance(b.per_episode(w, coordinate_baseline=b_opt), b.prob)
    var_mean = exact_variance(b.per_episode(w - J), b.prob)
    var_none = exact_variance(b.per_episode(w), b.prob)
    assert np.all(var_opt <= var_mean + 1e-12) and np.any(var_opt < 0.99 * var_mean)
    assert var_opt.sum() < var_mean.sum() < var_none.sum()


@given(policy_cases())
def test_baseline_terms_have_exactly_zero_expectation(case):
    mdp, policy, theta, _ = case
    b = enumerated_batch(mdp, policy, theta)
    scale = 1.0 + np.abs(b.scores).max()
    # E[grad log p(tau) * b] = 0 for a constant b
    const = exact_mean(b.per_episode(np.full(b.rewards.shape, 3.0)), b.prob)
    assert np.abs(const).max() < 1e-12 * scale * mdp.horizon * 3
    # E[grad log pi(a_t|s_t) b(s_t)] = 0 for every t and any b(s)
    table = np.random.default_rng(1).standard_normal((mdp.horizon, mdp.num_states))
    for t in range(mdp.horizon):
        w = np.zeros(b.rewards.shape)
        w[t] = b.at(table)[t]
        assert np.abs(exact_mean(b.per_episode(w), b.prob)).max() < 1e-12 * scale * 3


def test_batch_mean_baseline_is_biased_by_one_minus_one_over_n_and_leave_one_out_is_not():
    """Exact expectation over all pairs of trajectories (N = 2) of the batch estimators."""
    rng = np.random.default_rng(4)
    mdp = random_mdp(rng, 2, 2, 2, gamma=1.0)  # the (1 - 1/N) factor is exact for gamma = 1
    policy = tabular_softmax_policy(2, 2)
    theta = rng.standard_normal(4)
    b = enumerated_batch(mdp, policy, theta)
    K = b.prob.size
    for full_return in (False, True):
        mean_est, loo_est = np.zeros(4), np.zeros(4)
        for i, j in itertools.product(range(K), repeat=2):
            cols = [i, j]
            args = (b.rewards[:, cols], b.terminated[:, cols], b.truncated[:, cols], mdp.gamma)
            kw = dict(full_return=full_return)
            p = b.prob[i] * b.prob[j]
            mean_est += p * policy_gradient(b.scores[:, cols],
                                            constant_baseline_weights(*args, "mean", **kw))
            loo_est += p * policy_gradient(
                b.scores[:, cols], constant_baseline_weights(*args, "leave_one_out", **kw))
        truth = grad_J(mdp, policy, theta)
        assert relative_error(mean_est, 0.5 * truth) < RTOL
        assert relative_error(loo_est, truth) < RTOL


def test_dropping_the_step_discount_is_biased_when_gamma_below_one():
    rng = np.random.default_rng(2)
    mdp = random_mdp(rng, 2, 2, 4, gamma=0.5)
    policy = tabular_softmax_policy(2, 2)
    theta = rng.standard_normal(4)
    b = enumerated_batch(mdp, policy, theta)
    w = reward_to_go_weights(b.rewards, b.terminated, b.truncated, mdp.gamma, step_discount=False)
    assert relative_error(exact_mean(b.per_episode(w), b.prob), grad_J(mdp, policy, theta)) > 1e-3


# --- 7-9: off-policy --------------------------------------------------------------------------


@given(policy_cases())
def test_trajectory_and_per_decision_importance_sampling_are_unbiased(case):
    mdp, policy, theta, behaviour = case
    truth = grad_J(mdp, policy, theta)
    b = enumerated_batch(mdp, policy, theta, behaviour=behaviour)  # trajectories ~ behaviour
    _, V, _ = policy_evaluation(mdp, behaviour)
    for fn in (trajectory_is_weights, per_decision_is_weights):
        for values in (None, b.at(V)):
            w = fn(b.rewards, b.terminated, b.truncated, b.logp, b.logp_old, values, mdp.gamma)
            _assert_unbiased(exact_mean(b.per_episode(w), b.prob), truth)


@given(policy_cases())
def test_per_step_form_converges_to_the_gradient_of_the_behaviour_surrogate(case):
    """E_b[sum_t rho_t gamma^t grad log pi (G_t - b(s_t))] = grad_theta L_b(pi_theta)."""
    mdp, policy, theta, behaviour = case
    b = enumerated_batch(mdp, policy, theta, behaviour=behaviour)
    truth = finite_difference_gradient(
        lambda x: surrogate_objective(mdp, policy.probs(x), behaviour), theta)
    _, V, _ = policy_evaluation(mdp, behaviour)
    for values in (None, b.at(V)):
        w = per_step_is_weights(b.rewards, b.terminated, b.truncated, b.logp, b.logp_old,
                                values, mdp.gamma)
        _assert_unbiased(exact_mean(b.per_episode(w), b.prob), truth)


@given(policy_cases())
def test_off_policy_forms_equal_on_policy_when_behaviour_is_the_current_policy(case):
    mdp, policy, theta, _ = case
    b = enumerated_batch(mdp, policy, theta)  # behaviour = pi_theta: every ratio is 1
    args = (b.rewards, b.terminated, b.truncated, b.logp, b.logp_old, None, mdp.gamma)
    on = reward_to_go_weights(b.rewards, b.terminated, b.truncated, mdp.gamma)
    for fn in (trajectory_is_weights, per_decision_is_weights, per_step_is_weights):
        np.testing.assert_allclose(fn(*args), on, rtol=1e-12, atol=1e-12)
    _assert_unbiased(exact_mean(b.per_episode(per_step_is_weights(*args)), b.prob),
                     grad_J(mdp, policy, theta))


def test_per_step_form_is_biased_off_policy():
    rng = np.random.default_rng(5)
    mdp = random_mdp(rng, 3, 2, 4, gamma=1.0)
    policy = tabular_softmax_policy(3, 2)
    theta = 2 * rng.standard_normal(6)
    behaviour = policy.probs(np.zeros(6))
    b = enumerated_batch(mdp, policy, theta, behaviour=behaviour)
    w = per_step_is_weights(b.rewards, b.terminated, b.truncated, b.logp, b.logp_old, None, 1.0)
    assert relative_error(exact_mean(b.per_episode(w), b.prob), grad_J(mdp, policy, theta)) > 1e-2


# --- Monte Carlo: sampled estimates land within 5 standard errors ----------------------------


def _mc_check(per_episode, expected, sigmas=5.0):
    mean = per_episode.mean(axis=0)
    se = per_episode.std(axis=0, ddof=1) / np.sqrt(per_episode.shape[0])
    assert np.all(np.abs(mean - expected) <= sigmas * se + 1e-12), (mean, expected, se)


@pytest.mark.parametrize("make_policy", ["tabular", "linear"])
def test_monte_carlo_estimates_land_within_five_standard_errors(make_policy):
    rng = np.random.default_rng(12345)
    mdp = random_mdp(rng, 3, 3, 4, gamma=0.9)
    policy = (tabular_softmax_policy(3, 3) if make_policy == "tabular"
              else linear_softmax_policy(rng.standard_normal((3, 2)), 3))
    theta = rng.standard_normal(policy.num_params)
    behaviour = 0.1 + 0.7 * rng.dirichlet(np.ones(3), size=3)
    truth = grad_J(mdp, policy, theta)
    _, V, _ = policy_evaluation(mdp, policy.probs(theta))

    b = sampled_batch(mdp, policy, theta, 4000, rng)
    for name in ON_POLICY:
        _mc_check(b.per_episode(_weights(name, mdp, policy, theta, b)), truth)
    batch_mean = constant_baseline_weights(b.rewards, b.terminated, b.truncated, mdp.gamma, "mean")
    _mc_check(b.per_episode(batch_mean), truth)
    w = full_return_weights(b.rewards, b.terminated, b.truncated, mdp.gamma)
    b_opt = variance_optimal_baseline(b.scores, b.rewards, b.terminated, b.truncated, mdp.gamma)
    _mc_check(b.per_episode(w, coordinate_baseline=b_opt), truth)

    off = sampled_batch(mdp, policy, theta, 4000, rng, behaviour=behaviour)
    args = (off.rewards, off.terminated, off.truncated, off.logp, off.logp_old, None, mdp.gamma)
    _mc_check(off.per_episode(trajectory_is_weights(*args)), truth)
    _mc_check(off.per_episode(per_decision_is_weights(*args)), truth)
    surrogate_grad = finite_difference_gradient(
        lambda x: surrogate_objective(mdp, policy.probs(x), behaviour), theta)
    _mc_check(off.per_episode(per_step_is_weights(*args)), surrogate_grad)


# --- assembly, the pseudo-loss, literals ------------------------------------------------------


@settings(max_examples=20)
@given(policy_cases(max_horizon=3))
def test_pseudo_loss_gradient_through_scores_is_the_policy_gradient(case):
    mdp, policy, theta, _ = case
    rng = np.random.default_rng(0)
    b = sampled_batch(mdp, policy, theta, 5, rng)
    w = reward_to_go_weights(b.rewards, b.terminated, b.truncated, mdp.gamma)
    loss, dlogp = policy_gradient_loss(b.logp, w)
    np.testing.assert_allclose(-np.einsum("tn,tnp->p", dlogp, b.scores),
                               policy_gradient(b.scores, w), rtol=1e-12, atol=1e-14)
    # and d loss / d theta by finite differences (weights held fixed)
    def loss_of(x):
        return policy_gradient_loss(policy.logp(x, b.states, b.actions), w)[0]
    check_gradient(loss_of, theta, np.einsum("tn,tnp->p", dlogp, b.scores), dy=1.0)
    check_gradient(lambda lp: policy_gradient_loss(lp, w)[0], b.logp, dlogp, dy=1.0)


def test_policy_gradient_normalization_and_coordinate_baseline():
    scores = np.arange(2 * 3 * 2, dtype=float).reshape(2, 3, 2)
    w = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    total = np.einsum("tn,tnp->p", w, scores)
    np.testing.assert_allclose(policy_gradient(scores, w), total / 3)
    np.testing.assert_allclose(policy_gradient(scores, w, num_episodes=6), total / 6)
    bcoord = np.array([1.0, -1.0])
    np.testing.assert_allclose(policy_gradient(scores, w, coordinate_baseline=bcoord),
                               (total - bcoord * scores.sum((0, 1))) / 3)
    term = np.zeros((2, 3), bool)
    term[-1] = True
    rows = per_episode_gradients(scores, w, term, np.zeros_like(term))
    np.testing.assert_allclose(rows.mean(axis=0), policy_gradient(scores, w))


def test_hand_computed_weights_with_two_episodes_in_one_column():
    r = np.array([1.0, 2.0, 3.0, 4.0])
    term = np.array([False, True, False, True])
    trunc = np.zeros(4, bool)
    np.testing.assert_allclose(full_return_weights(r, term, trunc, 0.5), [2, 2, 5, 5])
    np.testing.assert_allclose(reward_to_go_weights(r, term, trunc, 0.5), [2, 1, 5, 2])
    np.testing.assert_allclose(
        reward_to_go_weights(r, term, trunc, 0.5, step_discount=False), [2, 2, 5, 4])
    np.testing.assert_allclose(constant_baseline_weights(r, term, trunc, 0.5, "mean"),
                               [-1.5, -0.75, 1.5, 0.25])
    np.testing.assert_allclose(constant_baseline_weights(r, term, trunc, 0.5, "leave_one_out"),
                               [-3, -1.5, 3, 1])
    np.testing.assert_allclose(state_baseline_weights(r, term, trunc, [1, 1, 1, 1], 0.5),
                               [1, 0.5, 4, 1.5])
    # full return R(tau) = [2, 2, 5, 5] minus the baseline
    np.testing.assert_allclose(constant_baseline_weights(r, term, trunc, 0.5, "mean", full_return=True),
                               [-1.5, -1.5, 1.5, 1.5])
    np.testing.assert_allclose(
        constant_baseline_weights(r, term, trunc, 0.5, "leave_one_out", full_return=True),
        [-3, -3, 3, 3])
    np.testing.assert_allclose(
        state_baseline_weights(r, term, trunc, [1, 2, 3, 4], 0.5, full_return=True),
        [1, 0, 2, 1])
    np.testing.assert_allclose(advantage_weights(r, term, trunc, 0.5), [1, 1, 3, 2])
    assert episode_steps(term, trunc).tolist() == [0, 1, 0, 1]
    assert episode_steps(term[:, None], trunc[:, None], start_steps=[3])[:, 0].tolist() == [3, 4, 0, 1]
    ids, n = episode_ids(np.stack([term, term], 1), np.stack([trunc, trunc], 1))
    assert n == 4 and ids.tolist() == [[0, 2], [0, 2], [1, 3], [1, 3]]


def test_truncation_ends_an_episode_for_the_weights():
    r = np.array([1.0, 1.0, 1.0])
    term = np.zeros(3, bool)
    trunc = np.array([True, False, False])
    np.testing.assert_allclose(full_return_weights(r, term, trunc, 1.0), [1, 2, 2])
    # a truncated episode bootstraps from V(s_{t+1}) when bootstrap values are given
    np.testing.assert_allclose(full_return_weights(r, term, trunc, 1.0, bootstrap_values=[10.0, 0, 0]), [11, 2, 2])


def test_weight_functions_reject_bad_input():
    r = np.zeros((3, 2))
    term = np.zeros((3, 2), bool)
    with pytest.raises(ValueError, match="terminated"):
        reward_to_go_weights(r, term[:2], term[:2], 0.9)
    with pytest.raises(TypeError, match="terminated"):
        reward_to_go_weights(r, term.astype(int), term, 0.9)
    with pytest.raises(ValueError, match="gamma"):
        reward_to_go_weights(r, term, term, 1.5)
    with pytest.raises(ValueError, match="values"):
        state_baseline_weights(r, term, term, np.zeros((3, 1)), 0.9)
    with pytest.raises(ValueError, match="baseline"):
        constant_baseline_weights(r, term, term, 0.9, "median")
    with pytest.raises(ValueError, match="scores"):
        policy_gradient(np.zeros((3, 2)), r)
    with pytest.raises(ValueError, match="coordinate_baseline"):
        policy_gradient(np.zeros((3, 2, 4)), r, coordinate_baseline=np.zeros(3))


@given(policy_cases(max_trajectories=600))
def test_causality_past_rewards_have_zero_expected_contribution(case):
    """E[grad log pi(a_t|s_t) r_{t'}] = 0 for every t' < t: why reward-to-go is unbiased."""
    mdp, policy, theta, _ = case
    b = enumerated_batch(mdp, policy, theta)
    for t in range(mdp.horizon):
        for t_past in range(t):
            w = np.zeros(b.rewards.shape)
            w[t] = b.rewards[t_past]
            assert np.abs(exact_mean(b.per_episode(w), b.prob)).max() < 1e-12 * (
                1 + np.abs(b.scores).max() * np.abs(b.rewards).max())


@given(policy_cases(max_trajectories=600))
def test_weights_reset_at_episode_boundaries_inside_a_column(case):
    """Two episodes stacked in one column give the same per-episode estimates as two columns."""
    mdp, policy, theta, behaviour = case
    b = enumerated_batch(mdp, policy, theta, behaviour=behaviour)
    K = b.prob.size
    perm = np.random.default_rng(0).permutation(K)

    def stack(x):  # column k: trajectory k, then trajectory perm[k]
        return np.concatenate([x, x[:, perm]], axis=0)

    r, term, trunc = stack(b.rewards), stack(b.terminated), stack(b.truncated)
    lp, lo, scores = stack(b.logp), stack(b.logp_old), stack(b.scores)
    g = mdp.gamma
    pairs = [
        (full_return_weights(b.rewards, b.terminated, b.truncated, g),
         full_return_weights(r, term, trunc, g)),
        (reward_to_go_weights(b.rewards, b.terminated, b.truncated, g),
         reward_to_go_weights(r, term, trunc, g)),
        (constant_baseline_weights(b.rewards, b.terminated, b.truncated, g, 0.3),
         constant_baseline_weights(r, term, trunc, g, 0.3)),
    ]
    for fn in (trajectory_is_weights, per_decision_is_weights, per_step_is_weights):
        pairs.append((fn(b.rewards, b.terminated, b.truncated, b.logp, b.logp_old, None, g),
                      fn(r, term, trunc, lp, lo, None, g)))
    for single, stacked in pairs:
        rows = per_episode_gradients(scores, stacked, term, trunc)  # [2K, P], column-major ids
        single_rows = b.per_episode(single)
        np.testing.assert_allclose(rows[0::2], single_rows, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(rows[1::2], single_rows[perm], rtol=1e-10, atol=1e-12)


# --- claims about bias and variance, each checked exactly --------------------------------------


def _jacobian(f, theta):
    return np.stack([finite_difference_gradient(lambda x: f(x)[i], theta)
                     for i in range(theta.size)])


@given(policy_cases())
def test_dropping_the_step_discount_gives_the_undiscounted_state_field(case):
    """E[sum_t grad log pi(a_t|s_t) G_t] = sum_t E[grad log pi Q_t] (no gamma^t), exactly."""
    mdp, policy, theta, _ = case
    b = enumerated_batch(mdp, policy, theta)
    w = reward_to_go_weights(b.rewards, b.terminated, b.truncated, mdp.gamma, step_discount=False)
    _assert_unbiased(exact_mean(b.per_episode(w), b.prob),
                     exact_gradient(mdp, policy, theta, step_discount=False))


def test_the_undiscounted_state_field_is_the_gradient_of_no_objective():
    """Nota & Thomas (2020): its Jacobian is asymmetric, so no J~ has it as gradient; the
    discounted estimator's Jacobian is the Hessian of J (symmetric)."""
    rng = np.random.default_rng(0)
    mdp = random_mdp(rng, 2, 2, 3, gamma=0.5)
    policy = tabular_softmax_policy(2, 2)
    theta = rng.standard_normal(4)
    Jac = _jacobian(lambda x: exact_gradient(mdp, policy, x, step_discount=False), theta)
    asym = np.linalg.norm(Jac - Jac.T) / np.linalg.norm(Jac)
    assert abs(asym - 0.4751) < 1e-3
    H = _jacobian(lambda x: exact_gradient(mdp, policy, x), theta)
    assert np.linalg.norm(H - H.T) / np.linalg.norm(H) < 1e-8


def test_batch_mean_baseline_bias_for_a_discount_below_one():
    """gamma = 0.5, E = 2 episodes: full return gives exactly (1 - 1/E) grad J; reward-to-go
    gives grad J - (1/E) E[sum_t gamma^k grad log pi(a_t|s_t) R(tau)], not proportional."""
    rng = np.random.default_rng(4)
    mdp = random_mdp(rng, 2, 2, 2, gamma=0.5)
    policy = tabular_softmax_policy(2, 2)
    theta = rng.standard_normal(4)
    b = enumerated_batch(mdp, policy, theta)
    K = b.prob.size
    est = {True: np.zeros(4), False: np.zeros(4)}
    for i, j in itertools.product(range(K), repeat=2):
        cols = [i, j]
        args = (b.rewards[:, cols], b.terminated[:, cols], b.truncated[:, cols], mdp.gamma)
        for full in (True, False):
            w = constant_baseline_weights(*args, "mean", full_return=full)
            est[full] += b.prob[i] * b.prob[j] * policy_gradient(b.scores[:, cols], w)
    truth = grad_J(mdp, policy, theta)
    assert relative_error(est[True], 0.5 * truth) < RTOL
    R = full_return_weights(b.rewards, b.terminated, b.truncated, mdp.gamma)
    gk = mdp.gamma ** episode_steps(b.terminated, b.truncated)
    c = exact_mean(b.per_episode(gk * R), b.prob)
    assert relative_error(est[False], truth - 0.5 * c) < RTOL
    assert relative_error(est[False], 0.5 * truth) > 1e-2


def test_per_decision_is_not_always_lower_variance_than_the_trajectory_product():
    rng = np.random.default_rng(25)
    mdp = random_mdp(rng, 2, 2, 2, 1.0)
    policy = tabular_softmax_policy(2, 2)
    theta = rng.standard_normal(4)
    b = enumerated_batch(mdp, policy, theta, behaviour=np.full((2, 2), 0.5))
    var = {fn: exact_variance(b.per_episode(fn(b.rewards, b.terminated, b.truncated, b.logp,
                                                b.logp_old, None, 1.0)), b.prob).sum()
           for fn in (trajectory_is_weights, per_decision_is_weights)}
    assert abs(var[trajectory_is_weights] - 0.24185) < 1e-4
    assert abs(var[per_decision_is_weights] - 0.28737) < 1e-4


@given(policy_cases(max_trajectories=600))
def test_per_decision_equals_the_trajectory_product_when_only_the_last_reward_is_nonzero(case):
    mdp, policy, theta, behaviour = case
    b = enumerated_batch(mdp, policy, theta, behaviour=behaviour)
    r = np.zeros_like(b.rewards)
    r[-1] = b.rewards[-1]
    args = (r, b.terminated, b.truncated, b.logp, b.logp_old, None, mdp.gamma)
    np.testing.assert_allclose(per_decision_is_weights(*args), trajectory_is_weights(*args),
                               rtol=1e-12, atol=1e-14)


def test_full_return_can_have_less_variance_than_reward_to_go():
    """No ordering theorem: here (S = 1, T = 2, gamma = 1, b(s_t) = V^pi_t) the full return
    R(tau) - V(s_t) has less variance than G_t - V(s_t)."""
    rng = np.random.default_rng(30)
    S, T = int(rng.integers(1, 3)), int(rng.integers(2, 4))
    mdp = random_mdp(rng, S, 2, T, 1.0)
    policy = tabular_softmax_policy(S, 2)
    theta = rng.standard_normal(S * 2)
    b = enumerated_batch(mdp, policy, theta)
    _, V, _ = policy_evaluation(mdp, policy.probs(theta))
    var = {full: exact_variance(b.per_episode(state_baseline_weights(
        b.rewards, b.terminated, b.truncated, b.at(V), 1.0, full_return=full)), b.prob).sum()
        for full in (False, True)}
    assert (S, T) == (1, 2) and var[True] < 0.75 * var[False]


@given(policy_cases())
def test_trajectory_weight_second_moment_lies_between_the_chi_square_powers(case):
    """E_b[rho_{0:T-1}^2] in [(1 + min_s chi2_s)^T, (1 + max_s chi2_s)^T] (a theorem)."""
    mdp, policy, theta, behaviour = case
    b = enumerated_batch(mdp, policy, theta, behaviour=behaviour)
    rho = np.exp((b.logp - b.logp_old).sum(axis=0))
    second = b.prob @ rho**2
    chi2 = (policy.probs(theta) ** 2 / behaviour).sum(axis=1) - 1.0
    T = mdp.horizon
    assert (1 + chi2.min()) ** T * (1 - 1e-10) <= second <= (1 + chi2.max()) ** T * (1 + 1e-10)


# --- the missing lecture forms -------------------------------------------------------------


@given(policy_cases())
def test_prefix_products_with_the_target_advantage_are_unbiased(case):
    """CS234: E_b[sum_t rho_{0:t} gamma^t grad log pi(a_t|s_t) A^theta_t] = grad J(theta)."""
    mdp, policy, theta, behaviour = case
    b = enumerated_batch(mdp, policy, theta, behaviour=behaviour)
    _, _, A = policy_evaluation(mdp, policy.probs(theta))
    w = prefix_is_advantage_weights(b.at(A), b.terminated, b.truncated, b.logp, b.logp_old,
                                    mdp.gamma)
    _assert_unbiased(exact_mean(b.per_episode(w), b.prob), grad_J(mdp, policy, theta))


@given(policy_cases())
def test_full_return_trajectory_is_is_unbiased(case):
    """Off-policy REINFORCE: E_Q[P(tau)/Q(tau) (R(tau) - b(s_t)) grad log P(tau)] = grad J."""
    mdp, policy, theta, behaviour = case
    b = enumerated_batch(mdp, policy, theta, behaviour=behaviour)
    table = np.random.default_rng(3).standard_normal((mdp.horizon, mdp.num_states))
    for values in (None, b.at(table)):
        w = trajectory_is_weights(b.rewards, b.terminated, b.truncated, b.logp, b.logp_old,
                                  values, mdp.gamma, full_return=True)
        _assert_unbiased(exact_mean(b.per_episode(w), b.prob), grad_J(mdp, policy, theta))


def _marginal_case(mdp, policy, theta, behaviour):
    b = enumerated_batch(mdp, policy, theta, behaviour=behaviour)
    log_state = b.at(log_state_ratios(mdp, policy.probs(theta), behaviour))
    return b, log_state


@given(policy_cases())
def test_marginal_ratio_with_per_decision_future_is_unbiased(case):
    mdp, policy, theta, behaviour = case
    b, log_state = _marginal_case(mdp, policy, theta, behaviour)
    table = np.random.default_rng(5).standard_normal((mdp.horizon, mdp.num_states))
    for values in (None, b.at(table)):
        w = marginal_is_weights(b.rewards, b.terminated, b.truncated, b.logp, b.logp_old,
                                log_state, values, mdp.gamma, future="per_decision")
        _assert_unbiased(exact_mean(b.per_episode(w), b.prob), grad_J(mdp, policy, theta))


@given(policy_cases())
def test_marginal_ratio_with_behaviour_returns_has_the_stated_expectation(case):
    """E = sum_t gamma^t E_{s~d'_t, a~pi'}[grad log pi'(a|s) Q^b_t(s, a)]; the state ratio set
    to 1 gives the common final form exactly."""
    mdp, policy, theta, behaviour = case
    b, log_state = _marginal_case(mdp, policy, theta, behaviour)
    pi = policy.probs(theta)
    Qb, _, _ = policy_evaluation(mdp, behaviour)
    d_new = state_distributions(mdp, pi)
    disc = mdp.gamma ** np.arange(mdp.horizon)
    stated = np.einsum("t,ts,sa,sap,tsa->p", disc, d_new, pi, policy.score_table(theta), Qb)
    w = marginal_is_weights(b.rewards, b.terminated, b.truncated, b.logp, b.logp_old,
                            log_state, None, mdp.gamma)
    _assert_unbiased(exact_mean(b.per_episode(w), b.prob), stated)
    args = (b.rewards, b.terminated, b.truncated, b.logp, b.logp_old)
    np.testing.assert_allclose(
        marginal_is_weights(*args, np.zeros_like(log_state), None, mdp.gamma),
        per_step_is_weights(*args, None, mdp.gamma), rtol=1e-13, atol=1e-15)


def test_bias_of_the_per_time_step_forms_measured():
    """The lecture's per-time-step forms on one MDP (the numbers quoted in docs/lectures.md):
    exact marginal ratio with behaviour returns, and the common final form (state ratio 1)."""
    rng = np.random.default_rng(5)
    mdp = random_mdp(rng, 3, 2, 4, gamma=1.0)
    policy = tabular_softmax_policy(3, 2)
    theta = 2 * rng.standard_normal(6)
    behaviour = policy.probs(np.zeros(6))
    b, log_state = _marginal_case(mdp, policy, theta, behaviour)
    truth = grad_J(mdp, policy, theta)
    args = (b.rewards, b.terminated, b.truncated, b.logp, b.logp_old)
    err = {}
    for name, w in (("marginal", marginal_is_weights(*args, log_state, None, 1.0)),
                    ("per_step", per_step_is_weights(*args, None, 1.0)),
                    ("unbiased", marginal_is_weights(*args, log_state, None, 1.0,
                                                     future="per_decision"))):
        mean = exact_mean(b.per_episode(w), b.prob)
        err[name] = np.linalg.norm(mean - truth) / np.linalg.norm(truth)
    assert err["unbiased"] < RTOL
    assert abs(err["marginal"] - 0.1555) < 1e-3 and abs(err["per_step"] - 0.2123) < 1e-3


# --- helper that turns any loss into an estimate of grad J -------------------------------------


def test_policy_gradient_from_dlogp_undoes_each_loss_normalization():
    rng = np.random.default_rng(0)
    scores = rng.standard_normal((5, 3, 4))
    w = rng.standard_normal((5, 3))
    logp = rng.standard_normal((5, 3))
    for n in (3, 15, 2.5):
        _, dlogp = policy_gradient_loss(logp, w, num_episodes=n)
        np.testing.assert_allclose(
            policy_gradient_from_dlogp(scores, dlogp, loss_divisor=n, num_episodes=3),
            policy_gradient(scores, w), rtol=1e-13)


# --- inputs that must not pass silently ---------------------------------------------------------


def test_every_estimator_input_is_checked_by_name():
    r = np.ones((3, 2))
    f = np.zeros((3, 2), bool)
    lp = np.zeros((3, 2))
    for bad in (np.nan, np.inf, -np.inf):
        with pytest.raises(ValueError, match="baseline"):
            constant_baseline_weights(r, f, f, 0.9, bad)
    with pytest.raises(TypeError, match="baseline"):
        constant_baseline_weights(r, f, f, 0.9, None)
    with pytest.raises(ValueError, match="start_steps"):
        reward_to_go_weights(r, f, f, 0.5, start_steps=[-3, -3])
    with pytest.raises(TypeError, match="start_steps"):
        reward_to_go_weights(r, f, f, 0.5, start_steps=[1.5, 0.0])
    with pytest.raises(ValueError, match="start_steps"):
        constant_baseline_weights(r, f, f, 0.5, 1.0, start_steps=[-1, 0])
    with pytest.raises(TypeError):
        reward_to_go_weights(r, f, f)  # gamma has no default
    scores = np.zeros((3, 2, 4))
    for sw in ([-1.0, 1.0], [0.0, 0.0], [np.nan, 1.0]):
        with pytest.raises(ValueError, match="sample_weight"):
            variance_optimal_baseline(scores, r, f, f, 1.0, sample_weight=sw)
    for fn in (trajectory_is_weights, per_decision_is_weights):
        with pytest.raises(ValueError, match="start_steps"):
            fn(r, f, f, lp, lp, None, 0.9, start_steps=[2, 0])
    with pytest.raises(ValueError, match="start_steps"):
        prefix_is_advantage_weights(r, f, f, lp, lp, 0.9, start_steps=[0, 1])
    with pytest.raises(ValueError, match="log_state_ratio"):
        marginal_is_weights(r, f, f, lp, lp, np.full((3, 2), np.nan), None, 0.9)
    with pytest.raises(ValueError, match="log_state_ratio"):
        marginal_is_weights(r, f, f, lp, lp, np.zeros((2, 2)), None, 0.9)
    with pytest.raises(ValueError, match="future"):
        marginal_is_weights(r, f, f, lp, lp, lp, None, 0.9, future="target")
    with pytest.raises(ValueError, match="values"):
        state_baseline_weights(r, f, f, np.full((3, 2), np.nan), 0.9)
    with pytest.raises(ValueError, match="num_episodes"):
        policy_gradient_loss(lp, r, num_episodes=0)
    # a target that never reaches a state (log ratio -inf) is weight 0, not NaN
    w = marginal_is_weights(r, f, f, lp, lp, np.full((3, 2), -np.inf), None, 0.9)
    assert np.all(w == 0.0)


def test_leave_one_out_optimal_baseline_gradient_is_unbiased_and_matches_its_formula():
    """Exact expectation over every pair and triple of trajectories (E = 2, 3)."""
    rng = np.random.default_rng(8)
    mdp = random_mdp(rng, 2, 2, 2, gamma=0.9)
    policy = tabular_softmax_policy(2, 2)
    theta = rng.standard_normal(4)
    b = enumerated_batch(mdp, policy, theta)
    g = b.per_episode(np.ones_like(b.rewards))                          # [K, P] scores
    R = full_return_weights(b.rewards, b.terminated, b.truncated, mdp.gamma)[0]
    truth = grad_J(mdp, policy, theta)
    K = b.prob.size
    for E in (2, 3):
        expected = np.zeros(4)
        for idx in itertools.product(range(K), repeat=E):
            est, _ = optimal_baseline_gradient(g[list(idx)], R[list(idx)])
            expected += np.prod(b.prob[list(idx)]) * est
        assert relative_error(expected, truth) < RTOL
    # by hand: two episodes, one coordinate with a zero score in episode 1
    est, bl = optimal_baseline_gradient([[1.0, 0.0], [2.0, 3.0]], [5.0, 1.0])
    np.testing.assert_allclose(bl, [[1.0, 1.0], [5.0, 0.0]])
    np.testing.assert_allclose(est, [(1 * (5 - 1) + 2 * (1 - 5)) / 2, (0 + 3 * 1) / 2])
    with pytest.raises(ValueError, match="two episodes"):
        optimal_baseline_gradient([[1.0]], [1.0])


def test_batch_mean_full_return_weights_are_one_minus_one_over_e_times_leave_one_out():
    """R_i - mean_j R_j = (1 - 1/E)(R_i - mean_{j != i} R_j): the batch-mean estimator is the
    unbiased leave-one-out one shrunk by (1 - 1/E), exactly."""
    rng = np.random.default_rng(0)
    r = rng.standard_normal((4, 5))
    term = np.zeros((4, 5), bool)
    term[-1] = True
    args = (r, term, np.zeros_like(term), 0.9)
    np.testing.assert_allclose(
        constant_baseline_weights(*args, "mean", full_return=True),
        (1 - 1 / 5) * constant_baseline_weights(*args, "leave_one_out", full_return=True),
        rtol=1e-13, atol=1e-14)


def test_variance_optimal_baseline_from_the_same_batch_is_biased():
    """The docstring's "biased in general" when b is estimated on the batch it is used on:
    exact expectation over every pair of trajectories (E = 2)."""
    rng = np.random.default_rng(4)
    mdp = random_mdp(rng, 2, 2, 2, gamma=1.0)
    policy = tabular_softmax_policy(2, 2)
    theta = rng.standard_normal(4)
    b = enumerated_batch(mdp, policy, theta)
    K = b.prob.size
    expected = np.zeros(4)
    for i, j in itertools.product(range(K), repeat=2):
        cols = [i, j]
        args = (b.rewards[:, cols], b.terminated[:, cols], b.truncated[:, cols], 1.0)
        bl = variance_optimal_baseline(b.scores[:, cols], *args)
        expected += b.prob[i] * b.prob[j] * policy_gradient(
            b.scores[:, cols], full_return_weights(*args), coordinate_baseline=bl)
    assert relative_error(expected, grad_J(mdp, policy, theta)) > 1e-3


def test_policy_gradient_loss_float32_value_accumulates_in_float64():
    from fractions import Fraction
    f = np.float32
    w = np.full(64, 1e37, f)                         # 64 terms of 1e37: 6.4e38 > float32 max
    loss, dlogp = policy_gradient_loss(np.full(64, -1.0, f), w)
    assert loss == float(64 * Fraction(float(w[0])))  # 1-D: num_episodes = 1
    assert dlogp.dtype == f and np.all(dlogp == -w)
    loss, _ = policy_gradient_loss(np.full((2, 2), -1e300), np.full((2, 2), 1e10))
    assert loss == np.inf                            # 2e310 / 2 exceeds float64: +inf, true


def test_importance_weights_beyond_float64_are_exact_per_element():
    """rho = exp(1000) used to saturate at the largest float (then max * 0.5 is a wrong finite
    weight) or become inf * 0 = NaN; each weight is now exp(log rho) * factor in log space."""
    import warnings

    import mpmath
    te, tr = np.array([[False], [False], [True]]), np.zeros((3, 1), bool)
    lo = np.zeros((3, 1))
    rew = np.ones((3, 1))
    with warnings.catch_warnings(), mpmath.workdps(600):
        warnings.simplefilter("error")
        # trajectory ratio e^710 (> max float); baseline = return on 2 steps: weight 0 there
        lp = np.array([[710.0], [0.0], [0.0]])
        w = trajectory_is_weights(rew, te, tr, lp, lo, np.array([[3.0], [1.5], [1.0]]), 1.0)
        ulp2 = 4.5e-16                         # exp(x/2)^2 y: a few roundings, not |x| ulp
        assert w[1, 0] == pytest.approx(float(mpmath.exp(710) / 2), rel=ulp2)
        assert w[0, 0] == 0.0
        assert w[2, 0] == 0.0
        # per-step: r = e^1000 with G - b = 0 -> 0 (not NaN); e^-1000 * 1 -> 0 exactly rounded
        w = per_step_is_weights(rew, te, tr, np.array([[1000.0], [-1000.0], [0.0]]), lo,
                                np.array([[3.0], [1.0], [1.0]]), 1.0)
        assert w.tolist() == [[0.0], [0.0], [0.0]]
        w = prefix_is_advantage_weights(np.array([[0.0], [1e-300], [1.0]]), te, tr,
                                        np.array([[1000.0], [-300.0], [-700.0]]), lo, 1.0)
        assert w[0, 0] == 0.0 and w[2, 0] == 1.0
        assert w[1, 0] == pytest.approx(float(mpmath.exp(700) * mpmath.mpf(1e-300)), rel=ulp2)
        # per-decision: rho_{0:2} r_2 = e^700 * 1e-300 is finite although rho_{0:0} = e^1000
        w = per_decision_is_weights(np.array([[0.0], [0.0], [1e-300]]), te, tr,
                                    np.array([[1000.0], [-1000.0], [700.0]]), lo, None, 1.0)
        np.testing.assert_allclose(w[:, 0], float(mpmath.exp(700) * mpmath.mpf(1e-300)),
                                   rtol=ulp2)
        with pytest.raises(FloatingPointError, match="rescale the rewards$"):
            per_decision_is_weights(rew, te, tr, np.array([[1000.0], [0.0], [0.0]]), lo, None,
                                    1.0)
        # marginal, per-decision future: rho e^1000 multiplying a future of 0 is 0, not NaN
        w = marginal_is_weights(np.zeros((3, 1)), te, tr, np.array([[0.0], [1000.0], [0.0]]),
                                lo, np.zeros((3, 1)), None, 1.0, future="per_decision")
        assert w.tolist() == [[0.0], [0.0], [0.0]]


from hypothesis import strategies as st  # noqa: E402


@given(st.integers(1, 6), st.integers(1, 5), st.floats(0.0, 1.0), st.integers(0, 2**32 - 1))
def test_advantage_weights_without_discount_is_ones_times_adv(T, N, gamma, seed):
    """The undiscounted weights (step_discount=False, or gamma = 1) are returned as a copy of
    ``adv``: the bits of ``ones * adv``, a new array."""
    rng = np.random.default_rng(seed)
    adv = rng.standard_normal((T, N)).astype(np.float32)
    adv[0, 0] = -0.0
    term, trunc = rng.random((T, N)) < 0.2, rng.random((T, N)) < 0.2
    for w in (advantage_weights(adv, term, trunc, gamma, step_discount=False),
              advantage_weights(adv, term, trunc, 1.0)):
        assert w is not adv and w.dtype == adv.dtype
        assert w.tobytes() == (np.ones(adv.shape, adv.dtype) * adv).tobytes()


def test_advantage_weights_of_a_scalar_keep_numpys_type():
    # (tester 12) the undiscounted shortcut returned a 0-d array where ones * adv gives a
    # NumPy scalar; the same value and type as before
    w = advantage_weights(np.array(2.0), np.array(False), np.array(False), 0.99,
                          step_discount=False)
    assert type(w) is np.float64 and w == 2.0
