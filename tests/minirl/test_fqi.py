"""Tests for minirl/fqi.py: fitted Q iteration against exact Q-value iteration."""
import numpy as np
import pytest

from minirl.fqi import (TransitionData, empirical_mdp, exact_dataset, fitted_q_iteration,
                        fqi_example, grid_mdp, optimal_advantages, sample_dataset)
from minirl.mdp import bellman_optimality_residual, q_value_iteration, random_mdp


@pytest.mark.parametrize("seed", range(5))
def test_fqi_on_the_exact_dataset_is_q_value_iteration(seed):
    mdp = random_mdp(np.random.default_rng(seed), 4, 3, horizon=1, gamma=0.9)
    Q_star, V_star, pi_star, _ = q_value_iteration(mdp)
    Q, V, pi, iters = fitted_q_iteration(exact_dataset(mdp), 4, 3, 0.9)
    np.testing.assert_allclose(Q, Q_star, atol=1e-10)
    np.testing.assert_allclose(V, V_star, atol=1e-10)
    np.testing.assert_array_equal(pi, pi_star)
    # the same iterates: k steps of FQI from 0 = k steps of Q-value iteration from 0
    Q3 = fitted_q_iteration(exact_dataset(mdp), 4, 3, 0.9, num_iters=3)[0]
    Q_vi = np.zeros((4, 3))
    for _ in range(3):
        Q_vi = mdp.R + 0.9 * mdp.P @ Q_vi.max(axis=1)
    np.testing.assert_allclose(Q3, Q_vi, atol=1e-12)


def test_fqi_on_sampled_data_converges_to_the_empirical_mdps_q_star_and_near_q_star():
    mdp, info = grid_mdp(gamma=0.9)
    S, A = mdp.R.shape
    Q_star = q_value_iteration(mdp)[0]
    errors = []
    for per_pair in (20, 500):
        data = sample_dataset(mdp, per_pair, np.random.default_rng(0), info["terminal"])
        Q, _, _, _ = fitted_q_iteration(data, S, A, 0.9)
        Q_hat = q_value_iteration(empirical_mdp(data, S, A, 0.9))[0][:S]
        np.testing.assert_allclose(Q, Q_hat, atol=1e-9)       # exactly its own fixed point
        errors.append(np.abs(Q - Q_star).max())
    assert errors[1] < 0.05 and errors[1] < errors[0]         # more data -> closer to Q*


def test_tutorial_grid_example_values_policy_and_advantages():
    ex = fqi_example()                    # 3x4 grid, gamma 0.9, +1 goal, -1 pit, one wall
    mdp, info = ex["mdp"], ex["info"]
    Q_star, V_star, pi_star, _ = q_value_iteration(mdp)
    np.testing.assert_allclose(ex["Q"], Q_star, atol=1e-10)
    assert bellman_optimality_residual(mdp, ex["Q"]) < 1e-10
    idx = info["index"]
    assert ex["V"][idx[(0, 3)]] == pytest.approx(1.0)        # goal: +1, then the episode ends
    assert ex["V"][idx[(1, 3)]] == pytest.approx(-1.0)
    assert ex["V"][info["terminal"][0]] == 0.0
    # the greedy policy walks along the top row to the goal and goes around the pit
    assert ex["policy_grid"][0][:3] == ["right", "right", "right"]
    assert ex["policy_grid"][1][0] == "up" and ex["policy_grid"][2][0] == "up"
    assert ex["policy_grid"][1][1] == "#" and np.isnan(ex["V_grid"][1, 1])
    # values fall with the distance to the goal along the optimal path
    path = [ex["V_grid"][r, c] for r, c in ((2, 0), (1, 0), (0, 0), (0, 1), (0, 2))]
    assert all(a < b for a, b in zip(path, path[1:]))
    adv = ex["advantages"]
    assert adv.max() <= 0.0 and np.all(adv[np.arange(len(adv)), ex["policy"]] == 0.0)
    np.testing.assert_allclose(adv, ex["Q"] - ex["V"][:, None])
    np.testing.assert_allclose(optimal_advantages(np.array([[1.0, 3.0]])), [[-2.0, 0.0]])


def test_deterministic_grid_known_values():
    # no slip: V*(s) = gamma^(d - 1) at distance d >= 1 moves from the goal cell (reward on exit)
    mdp, info = grid_mdp(slip=0.0, gamma=0.9)
    S, A = mdp.R.shape
    _, V, _, _ = fitted_q_iteration(exact_dataset(mdp, info["terminal"]), S, A, 0.9)
    idx = info["index"]
    assert V[idx[(0, 2)]] == pytest.approx(0.9)
    assert V[idx[(0, 0)]] == pytest.approx(0.9 ** 3)
    assert V[idx[(2, 0)]] == pytest.approx(0.9 ** 5)


def test_unvisited_pairs_keep_their_value_and_bad_input_errors():
    data = TransitionData(np.array([0]), np.array([1]), np.array([2.0]), np.array([0]),
                          np.array([True]), np.array([1.0]))
    Q, _, _, _ = fitted_q_iteration(data, 2, 2, 0.5)
    np.testing.assert_allclose(Q, [[0.0, 2.0], [0.0, 0.0]])
    with pytest.raises(ValueError, match="states"):
        fitted_q_iteration(data._replace(next_states=np.array([5])), 2, 2, 0.5)
    with pytest.raises(ValueError, match="actions"):
        fitted_q_iteration(data._replace(actions=np.array([2])), 2, 2, 0.5)
    with pytest.raises(ValueError, match="weights"):
        fitted_q_iteration(data._replace(weights=np.array([0.0])), 2, 2, 0.5)
    with pytest.raises(ValueError, match="rewards"):
        fitted_q_iteration(data._replace(rewards=np.array([np.nan])), 2, 2, 0.5)
    with pytest.raises(ValueError, match="gamma"):
        fitted_q_iteration(data, 2, 2, 1.0)
    with pytest.raises(ValueError, match="goal"):
        grid_mdp(goal=(1, 1))
