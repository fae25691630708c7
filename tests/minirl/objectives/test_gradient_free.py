"""Gradient-free update rules: identities on a quadratic, hand-computed values, bad input."""
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minirl.objectives.gradient_free import (ars_update, cem_num_elites, cem_refit,
                                             centered_ranks, es_gradient,
                                             es_gradient_one_sided, es_recombine,
                                             random_search_step, recombination_weights)

# f(theta) = -1/2 (theta - theta*)^T A (theta - theta*), grad f = -A (theta - theta*)
A = np.array([[2.0, 0.5, 0.0], [0.5, 1.0, 0.3], [0.0, 0.3, 0.5]])
THETA_STAR = np.array([1.0, -2.0, 0.5])


def quadratic(theta):
    """f at theta [..., 3] -> [...]."""
    d = theta - THETA_STAR
    return -0.5 * np.einsum("...i,ij,...j->...", d, A, d)


def grad_quadratic(theta):
    return -A @ (theta - THETA_STAR)


# ----- centered ranks ----------------------------------------------------------------------

def test_centered_ranks_literals():
    np.testing.assert_array_equal(centered_ranks([3.0, -1.0, 10.0]), [0.0, -0.5, 0.5])
    np.testing.assert_array_equal(centered_ranks([5.0, 5.0, 1.0, 9.0, 2.0]),
                                  [0.125, 0.125, -0.5, 0.5, -0.25])   # ties share rank 3.5
    np.testing.assert_array_equal(centered_ranks([7.0]), [0.0])
    assert centered_ranks([[1.0, 4.0], [2.0, 3.0]]).shape == (2, 2)


MONOTONE = [lambda x: 2.0 * x + 5.0, lambda x: x ** 3, lambda x: np.exp(x / 100.0),
            lambda x: np.arctan(x / 1000.0), lambda x: 1e6 * x - 1e9]


@given(st.lists(st.integers(-1000, 1000), min_size=1, max_size=40),
       st.sampled_from(range(len(MONOTONE))))
def test_centered_ranks_invariant_to_monotone_transforms(values, which):
    x = np.array(values, dtype=np.float64)
    u = centered_ranks(x)
    np.testing.assert_array_equal(centered_ranks(MONOTONE[which](x)), u)
    assert abs(u.sum()) < 1e-12 and u.min() >= -0.5 and u.max() <= 0.5


def test_centered_ranks_bad_input():
    with pytest.raises(ValueError, match="returns"):
        centered_ranks([])
    with pytest.raises(ValueError, match="returns"):
        centered_ranks([1.0, np.nan])


# ----- ES gradient estimators on a quadratic -----------------------------------------------

def _estimates(n_rep, n, sigma, theta, seed):
    """n_rep independent antithetic and one-sided estimates from n directions each."""
    rng = np.random.default_rng(seed)
    eps = rng.standard_normal((n_rep, n, 3))
    f_pos, f_neg = quadratic(theta + sigma * eps), quadratic(theta - sigma * eps)
    anti = np.stack([es_gradient(eps[k], f_pos[k], f_neg[k], sigma) for k in range(n_rep)])
    # the one-sided estimator with the same 2n function evaluations (2n directions)
    eps2 = rng.standard_normal((n_rep, 2 * n, 3))
    f2 = quadratic(theta + sigma * eps2)
    one = np.stack([es_gradient_one_sided(eps2[k], f2[k], sigma) for k in range(n_rep)])
    return anti, one


def test_es_antithetic_difference_is_exactly_linear_on_a_quadratic():
    # F(theta + s e) - F(theta - s e) = 2 s grad f(theta) . e: the even part cancels.
    rng = np.random.default_rng(0)
    theta, sigma = np.array([0.3, 0.1, -0.7]), 0.2
    eps = rng.standard_normal((50, 3))
    diff = quadratic(theta + sigma * eps) - quadratic(theta - sigma * eps)
    np.testing.assert_allclose(diff, 2 * sigma * eps @ grad_quadratic(theta), rtol=1e-12,
                               atol=1e-12)


def test_es_estimators_are_unbiased_and_antithetic_has_lower_variance():
    theta, sigma, n, n_rep = np.array([0.3, 0.1, -0.7]), 0.5, 4, 20000
    anti, one = _estimates(n_rep, n, sigma, theta, seed=1)
    grad = grad_quadratic(theta)
    for est in (anti, one):
        # Monte Carlo: the mean of n_rep i.i.d. estimates has standard error std/sqrt(n_rep);
        # a coordinate further than 4 standard errors from grad f fails (p ~ 6e-5 each).
        se = est.std(axis=0, ddof=1) / math.sqrt(n_rep)
        assert np.all(np.abs(est.mean(axis=0) - grad) < 4 * se), (est.mean(axis=0), grad, se)
    # Antithetic: g = (1/n) sum eps eps^T grad, so Var[g_j] = (|grad|^2 + grad_j^2) / n exactly.
    np.testing.assert_allclose(anti.var(axis=0), (grad @ grad + grad ** 2) / n, rtol=0.05)
    # Same budget of 2n evaluations: the one-sided estimator's variance is several times larger.
    assert np.all(one.var(axis=0) > 3 * anti.var(axis=0))


def test_es_gradient_literal():
    noise = np.array([[1.0, 0.0], [0.0, 2.0]])
    g = es_gradient(noise, [3.0, 1.0], [1.0, 2.0], sigma=0.5)
    # 1/(2*2*0.5) * ((3-1)*[1,0] + (1-2)*[0,2]) = [2, -2] / 2
    np.testing.assert_array_equal(g, [1.0, -1.0])
    np.testing.assert_array_equal(es_gradient_one_sided(noise, [3.0, 1.0], 0.5), [3.0, 2.0])


def test_es_gradient_bad_input():
    noise = np.ones((2, 3))
    with pytest.raises(ValueError, match="sigma"):
        es_gradient(noise, [1.0, 2.0], [1.0, 2.0], sigma=0.0)
    with pytest.raises(ValueError, match="returns_neg"):
        es_gradient(noise, [1.0, 2.0], [1.0], sigma=0.1)
    with pytest.raises(ValueError, match="noise"):
        es_gradient(np.ones(3), [1.0], [1.0], sigma=0.1)
    with pytest.raises(ValueError, match="returns"):
        es_gradient_one_sided(noise, [1.0, np.inf], 0.1)


# ----- ARS ---------------------------------------------------------------------------------

def test_ars_update_equals_its_formula_on_hand_made_returns():
    theta = np.array([0.5, -1.0])
    deltas = np.array([[1.0, 2.0], [-1.0, 0.5], [3.0, -2.0]])
    rp, rn = np.array([1.0, 4.0, 2.0]), np.array([3.0, 0.0, 2.0])
    # top b = 2 by max(r+, r-) = [3, 4, 2]: directions 1 and 0; returns {4, 0, 1, 3}:
    # mean 2, var (4 + 4 + 1 + 1)/4 = 2.5
    new, sigma_r, top = ars_update(theta, deltas, rp, rn, step_size=0.1, top_b=2)
    assert list(top) == [1, 0] and sigma_r == pytest.approx(math.sqrt(2.5), rel=1e-15)
    expected = theta + 0.1 / (2 * math.sqrt(2.5)) * (4.0 * deltas[1] + (-2.0) * deltas[0])
    np.testing.assert_allclose(new, expected, rtol=1e-15)
    # all directions (the slide's update): sigma_R over all 6 returns
    new, sigma_r, _ = ars_update(theta, deltas, rp, rn, step_size=0.1)
    all_r = np.concatenate([rp, rn])
    assert sigma_r == pytest.approx(all_r.std(), rel=1e-15)
    expected = theta + 0.1 / (3 * all_r.std()) * ((rp - rn)[:, None] * deltas).sum(axis=0)
    np.testing.assert_allclose(new, expected, rtol=1e-15)


def test_ars_update_zero_spread_is_a_zero_step():
    theta = np.array([1.0, 2.0])
    new, sigma_r, _ = ars_update(theta, np.ones((2, 2)), [5.0, 5.0], [5.0, 5.0], 0.1)
    np.testing.assert_array_equal(new, theta)
    assert sigma_r == 0.0 and new is not theta


def test_ars_ascends_a_quadratic():
    rng, theta, nu = np.random.default_rng(0), np.zeros(3), 0.05
    for _ in range(300):
        d = rng.standard_normal((8, 3))
        theta, _, _ = ars_update(theta, d, quadratic(theta + nu * d), quadratic(theta - nu * d),
                                 step_size=0.02, top_b=4)
    assert np.abs(theta - THETA_STAR).max() < 0.1


def test_ars_update_bad_input():
    theta, d = np.zeros(2), np.ones((3, 2))
    with pytest.raises(ValueError, match="top_b"):
        ars_update(theta, d, [1, 2, 3], [1, 2, 3], 0.1, top_b=4)
    with pytest.raises(ValueError, match="top_b"):
        ars_update(theta, d, [1, 2, 3], [1, 2, 3], 0.1, top_b=0)
    with pytest.raises(ValueError, match="step_size"):
        ars_update(theta, d, [1, 2, 3], [1, 2, 3], -0.1)
    with pytest.raises(ValueError, match="deltas"):
        ars_update(np.zeros(3), d, [1, 2, 3], [1, 2, 3], 0.1)
    with pytest.raises(ValueError, match="returns_pos"):
        ars_update(theta, d, [1, np.nan, 3], [1, 2, 3], 0.1)


# ----- CEM ---------------------------------------------------------------------------------

def test_cem_refit_literals():
    samples = np.array([[0.0, 0.0], [1.0, 2.0], [3.0, 4.0], [10.0, 10.0]])
    returns = np.array([1.0, 5.0, 4.0, -3.0])
    mean, std = cem_refit(samples, returns, elite_frac=0.5)     # elites rows 1 and 2
    np.testing.assert_array_equal(mean, [2.0, 3.0])
    np.testing.assert_array_equal(std, [1.0, 1.0])
    mean, std = cem_refit(samples, returns, 0.5, mean_old=[0.0, 1.0], std_old=[3.0, 1.0],
                          smoothing=0.25, extra_noise=0.5)
    np.testing.assert_allclose(mean, [1.5, 2.5])
    np.testing.assert_allclose(std, np.sqrt([0.25 * 9 + 0.75 + 0.5, 0.25 + 0.75 + 0.5]))
    assert [cem_num_elites(n, 0.2) for n in (1, 5, 10, 11, 50)] == [1, 1, 2, 3, 10]


def _cem_run(seed, smoothing=0.0, extra_noise=0.0, iters=100):
    rng = np.random.default_rng(seed)
    mean, std = np.zeros(3), np.full(3, 2.0)
    for _ in range(iters):
        samples = mean + std * rng.standard_normal((50, 3))
        mean, std = cem_refit(samples, quadratic(samples), 0.2, mean, std, smoothing=smoothing,
                              extra_noise=extra_noise)
    return mean, std


def test_cem_mean_converges_to_the_optimum_of_a_quadratic():
    for seed in range(5):
        # smoothing 0.5: sigma shrinks slowly enough for mu to reach theta* to rounding
        mean, std = _cem_run(seed, smoothing=0.5)
        np.testing.assert_allclose(mean, THETA_STAR, atol=1e-8)
        assert std.max() < 1e-8
        # extra noise Z = 1e-4 keeps sigma >= 1e-2, so mu keeps moving but jitters
        mean, std = _cem_run(seed, extra_noise=1e-4)
        np.testing.assert_allclose(mean, THETA_STAR, atol=2e-2)
        assert std.min() >= 1e-2
    # why both options exist: the plain refit (50 samples, 10 elites) collapses sigma to
    # ~0 before mu reaches theta* on this ill-conditioned quadratic for some seeds
    runs = [_cem_run(seed) for seed in range(5)]
    assert max(np.abs(m - THETA_STAR).max() for m, _ in runs) > 0.05
    assert max(s.max() for _, s in runs) < 1e-8


def test_cem_refit_bad_input():
    s, r = np.zeros((4, 2)), np.zeros(4)
    with pytest.raises(ValueError, match="elite_frac"):
        cem_refit(s, r, 0.0)
    with pytest.raises(ValueError, match="smoothing"):
        cem_refit(s, r, 0.5, smoothing=1.0)
    with pytest.raises(ValueError, match="mean_old"):
        cem_refit(s, r, 0.5, smoothing=0.5)
    with pytest.raises(ValueError, match="extra_noise"):
        cem_refit(s, r, 0.5, extra_noise=-1.0)
    with pytest.raises(ValueError, match="returns"):
        cem_refit(s, np.zeros(3), 0.5)


# ----- (mu, lambda)-ES and random search ------------------------------------------------------

def test_recombination_weights():
    w = recombination_weights(2)
    a, b = math.log(2.5), math.log(2.5) - math.log(2.0)
    np.testing.assert_allclose(w, [a / (a + b), b / (a + b)], rtol=1e-15)
    w = recombination_weights(7)
    assert w.sum() == pytest.approx(1.0) and np.all(np.diff(w) < 0) and w[-1] > 0
    with pytest.raises(ValueError, match="mu"):
        recombination_weights(0)


def test_es_recombine_literal_and_convergence():
    off = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, -2.0], [4.0, 4.0]])
    w = recombination_weights(2)
    np.testing.assert_allclose(es_recombine(off, [1.0, 3.0, -1.0, 2.0], 2),
                               w[0] * off[1] + w[1] * off[3])
    np.testing.assert_array_equal(es_recombine(off, [1.0, 3.0, -1.0, 2.0], 1), off[1])
    rng, m = np.random.default_rng(0), np.zeros(3)
    for t in range(150):
        x = m + 0.3 * 0.97 ** t * rng.standard_normal((20, 3))
        m = es_recombine(x, quadratic(x), mu=5)
    np.testing.assert_allclose(m, THETA_STAR, atol=1e-2)
    with pytest.raises(ValueError, match="mu"):
        es_recombine(off, [1.0, 3.0, -1.0, 2.0], 5)


def test_random_search_step():
    theta = np.array([0.0, 0.0])
    cands = np.array([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]])
    new, r = random_search_step(theta, 1.0, cands, [0.5, 2.0, 2.0])
    np.testing.assert_array_equal(new, [2.0, 2.0])           # ties: the first candidate
    assert r == 2.0 and not np.shares_memory(new, cands)
    new, r = random_search_step(theta, 2.0, cands, [0.5, 2.0, 2.0])   # ties keep theta
    np.testing.assert_array_equal(new, theta)
    assert r == 2.0
    with pytest.raises(ValueError, match="candidates"):
        random_search_step(theta, 1.0, np.ones((2, 3)), [1.0, 2.0])
    with pytest.raises(ValueError, match="theta_return"):
        random_search_step(theta, np.nan, cands, [1.0, 2.0, 3.0])


# ----- spreads of returns/samples beyond (or below) float64's square range: scaled ---------

def test_ars_step_and_sigma_for_returns_whose_squares_leave_float64():
    d = np.eye(2, 3)
    for big in (1e200, 1e308, 1e-200):
        # returns {big, 0, -big, 0}: sigma_R = big / sqrt(2); step = alpha / (2 sigma_R) * 2 big
        # along delta_0 = alpha sqrt(2), whatever big is.
        theta, sigma_r, _ = ars_update(np.zeros(3), d, [big, 0.0], [-big, 0.0], 0.02)
        assert sigma_r == pytest.approx(big / math.sqrt(2), rel=2e-16)
        np.testing.assert_allclose(theta, [0.02 * math.sqrt(2), 0, 0], rtol=1e-15, atol=0)
    theta, sigma_r, _ = ars_update(np.zeros(3), d, [5.0, 5.0], [5.0, 5.0], 0.02)
    assert sigma_r == 0.0 and theta.tolist() == [0, 0, 0]        # equal returns: no step


def test_cem_refit_and_es_gradients_scale_huge_and_tiny_values():
    from minirl.objectives.gradient_free import es_gradient, es_gradient_one_sided
    # elites {-1e308, 1e308}: mean 0, std 1e308 (the squares overflow float64)
    mean, std = cem_refit([[0.0], [1e308], [-1e308], [2.0]], [1, 2, 3, 0], 0.5)
    assert mean.tolist() == [0.0] and std.tolist() == [1e308]
    mean, std = cem_refit([[0.0], [1e-200], [-1e-200], [2.0]], [1, 2, 3, 0], 0.5)
    assert mean.tolist() == [0.0] and std.tolist() == [1e-200]  # squares underflow to 0
    # smoothing with a huge old std, and a column in the normal range left as it was
    mean, std = cem_refit([[0, 1], [1e308, 1], [-1e308, 1], [2, 1]], [1, 2, 3, 0], 0.5,
                          [1e308, 0.0], [1e308, 1.0], 0.5, 1e300)
    assert mean.tolist() == [5e307, 0.5]
    assert std[0] == 1e308 and std[1] == math.sqrt(0.5 + 1e300)
    g = es_gradient(np.eye(2, 3), [1e308, 0.0], [-1e308, 0.0], 1e10)  # F+ - F- = 2e308
    assert g.tolist() == [1e308 / (2 * 1e10), 0.0, 0.0]                # 2e308 / (2 n sigma)
    g = es_gradient_one_sided(np.ones((2, 3)), [1e308, 1e308], 10.0)  # sum 2e308
    assert g.tolist() == [1e307] * 3
