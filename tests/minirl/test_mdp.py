"""The finite-MDP oracle: exact DP against enumeration, the performance difference lemma,
the surrogate's first-order agreement with J, and value/Q/policy iteration."""
import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minirl.mdp import (
    FiniteMDP,
    backward_induction,
    bellman_optimality_residual,
    clipped_surrogate_objective,
    deterministic_policies,
    enumerate_trajectories,
    exact_gradient,
    exact_objective,
    finite_difference_gradient,
    infinite_horizon_objective,
    infinite_horizon_values,
    linear_softmax_policy,
    log_state_ratios,
    mean_state_kl,
    performance_difference,
    policy_evaluation,
    policy_iteration,
    q_value_iteration,
    random_mdp,
    sample_trajectories,
    state_distributions,
    surrogate_objective,
    tabular_softmax_policy,
    value_iteration,
)
from minirl.testing.gradcheck import relative_error
from minirl.testing.mdp_oracle import finite_mdps, policy_cases



def _discounted_sum(mdp, rewards):
    return (mdp.gamma ** np.arange(mdp.horizon))[:, None] * rewards


# --- the oracle agrees with itself ------------------------------------------------------------


@given(policy_cases())
def test_enumeration_is_a_distribution_whose_mean_return_is_J(case):
    mdp, policy, theta, _ = case
    pi = policy.probs(theta)
    states, actions, rewards, prob = enumerate_trajectories(mdp, pi)
    assert states.shape == (mdp.horizon, (mdp.num_states * mdp.num_actions) ** mdp.horizon)
    assert abs(prob.sum() - 1.0) < 1e-12
    J_enum = prob @ _discounted_sum(mdp, rewards).sum(axis=0)
    assert abs(J_enum - exact_objective(mdp, pi)) < 1e-12 * (1 + abs(J_enum))
    # state marginals by enumeration == forward recursion
    d = state_distributions(mdp, pi)
    for t in range(mdp.horizon):
        np.testing.assert_allclose(np.bincount(states[t], prob, mdp.num_states), d[t], atol=1e-12)


@given(policy_cases())
def test_policy_evaluation_satisfies_bellman_equations(case):
    mdp, policy, theta, _ = case
    pi = policy.probs(theta)
    Q, V, A = policy_evaluation(mdp, pi)
    np.testing.assert_allclose((pi * A).sum(axis=2), 0.0, atol=1e-12)  # E_{a~pi}[A] = 0
    np.testing.assert_allclose(Q[-1], mdp.R, atol=0)  # last step: no future
    for t in range(mdp.horizon - 1):
        np.testing.assert_allclose(Q[t], mdp.R + mdp.gamma * mdp.P @ (pi * Q[t + 1]).sum(1),
                                   rtol=1e-12, atol=1e-12)


@given(policy_cases())
def test_policy_gradient_theorem_matches_finite_differences_of_exact_J(case):
    mdp, policy, theta, _ = case
    fd = finite_difference_gradient(lambda x: exact_objective(mdp, policy.probs(x)), theta)
    assert relative_error(exact_gradient(mdp, policy, theta), fd) < 1e-8


@given(st.integers(1, 3), st.integers(2, 3), st.integers(1, 2), st.integers(0, 10**6))
def test_softmax_score_table_is_the_gradient_of_log_pi(S, A, F, seed):
    rng = np.random.default_rng(seed)
    for policy in (tabular_softmax_policy(S, A), linear_softmax_policy(rng.standard_normal((S, F)), A)):
        theta = rng.standard_normal(policy.num_params)
        table = policy.score_table(theta)
        for s, a in itertools.product(range(S), range(A)):
            fd = finite_difference_gradient(lambda x: policy.log_probs(x)[s, a], theta)
            np.testing.assert_allclose(table[s, a], fd, atol=1e-9)


def test_linear_softmax_parameter_layout():
    phi = np.array([[1.0, 2.0], [0.0, -1.0]])
    policy = linear_softmax_policy(phi, 3)
    W = np.arange(6.0).reshape(3, 2)
    np.testing.assert_allclose(policy.logits(W.ravel()), phi @ W.T)


# --- performance difference lemma and the surrogate ------------------------------------------


@given(policy_cases())
def test_performance_difference_lemma_holds_exactly(case):
    mdp, policy, theta, behaviour = case
    pi_new, pi_old = policy.probs(theta), behaviour
    lhs = exact_objective(mdp, pi_new) - exact_objective(mdp, pi_old)
    rhs = performance_difference(mdp, pi_new, pi_old)
    assert abs(lhs - rhs) < 1e-12 * (1 + abs(lhs))
    # ... and the same right side by enumerating trajectories of pi'
    _, _, A = policy_evaluation(mdp, pi_old)
    states, actions, _, prob = enumerate_trajectories(mdp, pi_new)
    t = np.arange(mdp.horizon)[:, None]
    rhs_enum = prob @ _discounted_sum(mdp, A[t, states, actions]).sum(axis=0)
    assert abs(lhs - rhs_enum) < 1e-12 * (1 + abs(lhs))


@given(policy_cases())
def test_surrogate_is_zero_at_pi_and_its_gradient_there_is_grad_J(case):
    mdp, policy, theta, _ = case
    pi = policy.probs(theta)
    assert abs(surrogate_objective(mdp, pi, pi)) < 1e-12
    grad_L = finite_difference_gradient(lambda x: surrogate_objective(mdp, policy.probs(x), pi), theta)
    grad_J = finite_difference_gradient(lambda x: exact_objective(mdp, policy.probs(x)), theta)
    assert relative_error(grad_L, grad_J) < 1e-8


def test_surrogate_differs_from_J_away_from_pi():
    """Only first-order agreement: L_pi(pi') != J(pi') - J(pi) in general."""
    rng = np.random.default_rng(3)
    mdp = random_mdp(rng, 3, 2, 4, gamma=0.9)
    policy = tabular_softmax_policy(3, 2)
    pi_old = policy.probs(np.zeros(6))
    pi_new = policy.probs(2 * rng.standard_normal(6))
    diff = exact_objective(mdp, pi_new) - exact_objective(mdp, pi_old)
    assert abs(surrogate_objective(mdp, pi_new, pi_old) - diff) > 1e-3


def test_sampled_returns_average_to_J():
    rng = np.random.default_rng(0)
    mdp = random_mdp(rng, 3, 3, 4, gamma=0.9)
    pi = tabular_softmax_policy(3, 3).probs(rng.standard_normal(9))
    _, _, rewards = sample_trajectories(mdp, pi, 20_000, rng)
    ret = _discounted_sum(mdp, rewards).sum(axis=0)
    se = ret.std() / np.sqrt(ret.size)
    assert abs(ret.mean() - exact_objective(mdp, pi)) < 5 * se


# --- control -----------------------------------------------------------------------------------


@given(finite_mdps(gammas=(0.9, 0.5, 0.0)))
def test_value_iteration_reaches_the_bellman_optimality_fixed_point(mdp):
    Q, V, greedy, _ = q_value_iteration(mdp)
    assert bellman_optimality_residual(mdp, Q) < 1e-10
    Qv, Vv, greedy_v, _ = value_iteration(mdp)
    Qp, Vp, greedy_p, _ = policy_iteration(mdp)
    np.testing.assert_allclose(Qv, Q, atol=1e-10)
    np.testing.assert_allclose(Qp, Q, atol=1e-10)
    # the greedy policy's exact J is the best over all A^S deterministic stationary policies
    S, A = mdp.R.shape
    best = max(infinite_horizon_objective(mdp, d) for d in deterministic_policies(S, A))
    J_greedy = infinite_horizon_objective(mdp, np.eye(A)[greedy])
    assert abs(J_greedy - best) < 1e-10 * (1 + abs(best))
    assert abs(infinite_horizon_objective(mdp, np.eye(A)[greedy_p]) - best) < 1e-10 * (1 + abs(best))
    # and V* is the value of that policy, state by state
    np.testing.assert_allclose(infinite_horizon_values(mdp, np.eye(A)[greedy])[1], V, atol=1e-10)


@given(policy_cases(gammas=(1.0, 0.9)))
def test_backward_induction_is_finite_horizon_q_iteration_and_dominates_every_policy(case):
    mdp, policy, theta, behaviour = case
    Q, V, greedy = backward_induction(mdp)
    # T steps of Q-value iteration from Q = 0 give the optimal T-step Q
    Qk = np.zeros_like(mdp.R)
    for _ in range(mdp.horizon):
        Qk = mdp.R + mdp.gamma * mdp.P @ Qk.max(axis=1)
    np.testing.assert_allclose(Qk, Q[0], atol=1e-12)
    J_star = mdp.p0 @ V[0]
    for pi in (policy.probs(theta), behaviour):
        assert exact_objective(mdp, pi) <= J_star + 1e-12


def test_backward_induction_is_the_best_deterministic_markov_policy():
    rng = np.random.default_rng(1)
    mdp = random_mdp(rng, 2, 2, 3, gamma=1.0)
    _, V, greedy = backward_induction(mdp)
    best = -np.inf
    for choice in itertools.product(range(2), repeat=2 * 3):  # a_t(s) for every t, s
        acts = np.array(choice).reshape(3, 2)
        v = np.zeros(2)
        for t in range(2, -1, -1):
            v = mdp.R[np.arange(2), acts[t]] + mdp.gamma * mdp.P[np.arange(2), acts[t]] @ v
        best = max(best, mdp.p0 @ v)
    assert abs(mdp.p0 @ V[0] - best) < 1e-12


def test_q_value_iteration_on_a_hand_solved_mdp():
    """One state, two actions with rewards 1 and 2: Q*(a) = r(a) + gamma * 2 / (1 - gamma)."""
    mdp = FiniteMDP(p0=[1.0], P=np.ones((1, 2, 1)), R=[[1.0, 2.0]], horizon=1, gamma=0.9)
    Q, V, greedy, _ = q_value_iteration(mdp)
    np.testing.assert_allclose(Q, [[1.0 + 18.0, 2.0 + 18.0]], atol=1e-10)
    assert greedy.tolist() == [1] and abs(V[0] - 20.0) < 1e-10


# --- validation -------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs, match", [
    (dict(p0=[0.5, 0.6], P=np.full((2, 1, 2), 0.5), R=np.zeros((2, 1)), horizon=2, gamma=1.0), "p0"),
    (dict(p0=[1.0, 0.0], P=np.full((2, 1, 2), 0.6), R=np.zeros((2, 1)), horizon=2, gamma=1.0), "P"),
    (dict(p0=[1.0, 0.0], P=np.full((2, 1, 2), 0.5), R=np.zeros((3, 1)), horizon=2, gamma=1.0), "shape"),
    (dict(p0=[1.0, 0.0], P=np.full((2, 1, 2), 0.5), R=np.zeros((2, 1)), horizon=0, gamma=1.0), "horizon"),
    (dict(p0=[1.0, 0.0], P=np.full((2, 1, 2), 0.5), R=np.zeros((2, 1)), horizon=1, gamma=1.5), "gamma"),
])
def test_finite_mdp_rejects_invalid_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        FiniteMDP(**kwargs)


def test_infinite_horizon_solvers_need_a_discount():
    mdp = random_mdp(np.random.default_rng(0), 2, 2, 2, gamma=1.0)
    with pytest.raises(ValueError, match="gamma < 1"):
        q_value_iteration(mdp)


@pytest.mark.parametrize("table", [[[0.9, 0.9], [0.5, 0.5]], [[1.2, -0.2], [0.5, 0.5]],
                                   [[np.nan, 1.0], [0.5, 0.5]], [[1.0, 0.0]]])
def test_every_oracle_rejects_a_policy_table_that_is_not_a_distribution(table):
    mdp = random_mdp(np.random.default_rng(0), 2, 2, 2, gamma=0.9)
    good = np.full((2, 2), 0.5)
    for fn in (exact_objective, policy_evaluation, enumerate_trajectories, state_distributions,
               infinite_horizon_values):
        with pytest.raises(ValueError, match="pi"):
            fn(mdp, table)
    for fn in (performance_difference, surrogate_objective, log_state_ratios):
        with pytest.raises(ValueError, match="pi_new"):
            fn(mdp, table, good)
        with pytest.raises(ValueError, match="pi_old"):
            fn(mdp, good, table)
    with pytest.raises(ValueError, match="pi_new"):
        mean_state_kl(mdp, table, good, "old_new")
    with pytest.raises(ValueError, match="pi_old"):
        clipped_surrogate_objective(mdp, good, table, 0.2)


def test_log_state_ratios_and_mean_state_kl_by_hand():
    """One absorbing state reached only by action 1: d_t and the KL by hand."""
    P = np.zeros((2, 2, 2))
    P[0, 0, 0] = P[0, 1, 1] = P[1, :, 1] = 1.0
    mdp = FiniteMDP(p0=[1.0, 0.0], P=P, R=np.zeros((2, 2)), horizon=2, gamma=1.0)
    old, new = np.array([[0.5, 0.5], [0.5, 0.5]]), np.array([[0.75, 0.25], [0.5, 0.5]])
    lr = log_state_ratios(mdp, new, old)
    np.testing.assert_allclose(lr, [[0.0, 0.0], [np.log(0.75 / 0.5), np.log(0.25 / 0.5)]])
    kl0 = 0.5 * np.log(0.5 / 0.75) + 0.5 * np.log(0.5 / 0.25)   # KL(old || new) at state 0
    # d^old: step 0 at state 0; step 1 half/half; state 1's policies agree
    assert abs(mean_state_kl(mdp, new, old, "old_new") - (kl0 + 0.5 * kl0) / 2) < 1e-15
    kl0r = 0.75 * np.log(0.75 / 0.5) + 0.25 * np.log(0.25 / 0.5)
    assert abs(mean_state_kl(mdp, new, old, "new_old") - (kl0r + 0.5 * kl0r) / 2) < 1e-15


def test_gamma_has_no_default():
    with pytest.raises(TypeError):
        random_mdp(np.random.default_rng(0), 2, 2, 2)


def test_finite_mdp_rejects_nan_and_fractional_horizons():
    ok = dict(p0=[1.0, 0.0], P=np.full((2, 1, 2), 0.5), R=np.zeros((2, 1)), horizon=2, gamma=1.0)
    for key, bad in (("p0", [np.nan, 1.0]), ("R", [[np.nan], [0.0]]),
                     ("P", np.full((2, 1, 2), np.nan))):
        with pytest.raises(ValueError, match=key):
            FiniteMDP(**{**ok, key: bad})
    with pytest.raises(ValueError, match="horizon"):
        FiniteMDP(**{**ok, "horizon": 2.5})
    with pytest.raises(ValueError, match="eps"):
        finite_difference_gradient(lambda x: x.sum(), np.zeros(2), eps=0.0)
