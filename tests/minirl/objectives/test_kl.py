"""KL in both directions: gradients by finite differences, exact expectations on finite MDPs."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minirl.mdp import finite_difference_gradient, mean_state_kl, state_distributions
from minirl.objectives.kl import (categorical_kl_new_old, categorical_kl_old_new,
                                  sample_kl_new_old, sample_kl_old_new)
from minirl.objectives.ppo import categorical_kl, kl_penalty_loss
from minirl.testing.gradcheck import check_gradient, relative_error
from minirl.testing.mdp_oracle import enumerated_batch, policy_cases

SAMPLE = {"old_new": sample_kl_old_new, "new_old": sample_kl_new_old}
EXACT = {"old_new": categorical_kl_old_new, "new_old": categorical_kl_new_old}


@given(st.integers(0, 10**6), st.integers(1, 4), st.integers(2, 4))
def test_categorical_kl_gradients_in_both_directions(seed, B, A):
    rng = np.random.default_rng(seed)
    z, z_old = rng.standard_normal((B, A)), rng.standard_normal((B, A))
    p, q = np.exp(z - np.log(np.exp(z).sum(1, keepdims=True))), None
    q = np.exp(z_old - np.log(np.exp(z_old).sum(1, keepdims=True)))
    literal = {"old_new": np.mean(np.sum(q * np.log(q / p), axis=1)),
               "new_old": np.mean(np.sum(p * np.log(p / q), axis=1))}
    for direction, fn in EXACT.items():
        kl, dz = fn(z, z_old)
        assert abs(kl - literal[direction]) < 1e-12
        check_gradient(lambda x: fn(x, z_old)[0], z, dz, dy=1.0)
        kl0, dz0 = fn(z_old, z_old)  # zero value and zero gradient at the old policy
        assert abs(kl0) < 1e-15 and np.abs(dz0).max() < 1e-15
    assert categorical_kl(z, z_old)[0] == categorical_kl_old_new(z, z_old)[0]


@given(st.integers(0, 10**6))
def test_sample_kl_gradients_and_signs(seed):
    rng = np.random.default_rng(seed)
    logp_old = rng.standard_normal(6)
    logp = logp_old + rng.standard_normal(6)
    for fn in SAMPLE.values():
        kl, dlogp = fn(logp, logp_old)
        check_gradient(lambda x: fn(x, logp_old)[0], logp, dlogp, dy=1.0)
        assert kl >= 0.0
        assert fn(logp_old, logp_old) == (0.0, pytest.approx(np.zeros(6), abs=0))


@given(policy_cases(scale=0.7))
def test_both_directions_are_exact_in_expectation_on_a_finite_mdp(case):
    """States and actions from pi_old: the mean of each sample estimator, its gradient and the
    exact per-state categorical KL all equal the oracle E_{s~d^old}[KL] and its gradient."""
    mdp, policy, theta, behaviour = case
    T = mdp.horizon
    b = enumerated_batch(mdp, policy, theta, behaviour=behaviour)  # pi_old = behaviour
    K = b.prob.size
    logits_old = np.log(behaviour)
    d = state_distributions(mdp, behaviour).sum(axis=0) / T  # time-averaged state weights
    for direction in ("old_new", "new_old"):
        def oracle(x):
            return mean_state_kl(mdp, policy.probs(x), behaviour, direction)
        truth, grad_truth = oracle(theta), finite_difference_gradient(oracle, theta)
        # sample estimator: one column (trajectory) at a time is a batch of M = T samples
        vals = np.array([SAMPLE[direction](b.logp[:, k], b.logp_old[:, k])[0] for k in range(K)])
        assert abs(b.prob @ vals - truth) < 1e-10 * (1 + truth)
        _, dlogp = SAMPLE[direction](b.logp, b.logp_old)  # M = T*K; per column: times K
        grads = np.einsum("tk,tkp->kp", dlogp * K, b.scores)
        expected = b.prob @ grads
        if np.linalg.norm(grad_truth) > 1e-9:
            assert relative_error(expected, grad_truth) < 1e-6
        # exact per-state KL averaged over the visited states
        kl_s = np.array([EXACT[direction](policy.logits(theta)[[s]], logits_old[[s]])[0]
                         for s in range(mdp.num_states)])
        assert abs(d @ kl_s - truth) < 1e-12 * (1 + truth)
        # and kl_penalty_loss carries the same penalty term
        _, dl = kl_penalty_loss(b.logp, b.logp_old, np.zeros_like(b.logp), 1.0,
                                direction=direction)
        np.testing.assert_allclose(dl, dlogp, rtol=1e-14, atol=1e-18)


def test_the_two_directions_differ():
    z, z_old = np.array([[2.0, 0.0, -1.0]]), np.array([[0.0, 0.0, 0.0]])
    assert abs(categorical_kl_old_new(z, z_old)[0] - categorical_kl_new_old(z, z_old)[0]) > 0.1


def test_sample_kl_extremes_are_finite_or_inf_never_nan():
    lp_old = np.zeros(2)
    kl, d = sample_kl_new_old(np.array([1000.0, 0.0]), lp_old)
    assert kl == np.inf and d[0] == np.inf and not np.isnan(d).any()
    kl, d = sample_kl_new_old(np.array([-1000.0, 0.0]), lp_old)
    assert abs(kl - 0.5) < 1e-15 and np.all(np.isfinite(d))   # r -> 0: r log r - r + 1 -> 1
    kl, _ = sample_kl_old_new(np.array([-1000.0, 0.0]), lp_old)
    assert abs(kl - 999.0 / 2) < 1e-9                          # (r - 1) - log r = -1 + 1000
    with pytest.raises(ValueError, match="logp"):
        sample_kl_new_old(np.array([np.nan]), np.zeros(1))
    with pytest.raises(ValueError, match="logits_old"):
        categorical_kl_new_old(np.zeros((2, 3)), np.zeros((1, 3)))
    with pytest.raises(ValueError, match="direction"):
        kl_penalty_loss(lp_old, lp_old, lp_old, 1.0, direction="forward")
    with pytest.raises(ValueError, match="direction"):
        mean_state_kl(None, None, None, "both")


def test_sample_kl_with_a_log_ratio_beyond_float64_is_inf_not_nan():
    import warnings
    from minirl.objectives.kl import sample_kl_new_old, sample_kl_old_new
    lp, lo = np.array([1e308, -1e308, 0.0]), np.array([-1e308, 1e308, 0.0])  # d = +-2e308
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        kl, g = sample_kl_old_new(lp, lo)          # (r - 1) - d: +inf for both signs of d
        assert kl == np.inf and g.tolist() == [np.inf, -1 / 3, 0.0]
        kl, g = sample_kl_new_old(lp, lo)          # r log r - (r - 1): +inf and 0 + 1
        assert kl == np.inf and g.tolist() == [np.inf, 0.0, 0.0]
        kl, g = sample_kl_new_old(np.array([-1e308, 0.0]), np.array([1e308, 0.0]))
        assert kl == 0.5 and g.tolist() == [0.0, 0.0]   # term 1 (r = 0 exactly) and 0
        # k3 at d = 1000 (r = e^1000 overflows): +inf; sum of two 1e308-size terms: finite mean
        kl, _ = sample_kl_old_new(np.array([709.0, 709.0]), np.zeros(2))
        assert kl == float(__import__("mpmath").exp(709) - 1 - 709)


def test_categorical_kl_float32_mean_accumulates_in_float64():
    from fractions import Fraction
    # per state KL(old||new) ~ 2e37 (logits 2e37 apart); 64 states sum past float32's max
    z_new = np.tile(np.array([[0.0, 2e37]], np.float32), (64, 1))
    z_old = np.tile(np.array([[2e37, 0.0]], np.float32), (64, 1))
    kl, dlogits = categorical_kl_old_new(z_new, z_old)
    per_state = Fraction(float(np.float32(2e37)))     # p_old = (1, 0): log p_old - log p_new
    assert kl == float(per_state) and dlogits.dtype == np.float32
    kl, _ = categorical_kl_new_old(z_new, z_old)
    assert kl == float(per_state)


def test_exact_categorical_kl_near_determinism_is_positive_with_a_zero_sum_gradient():
    """Tester 4, defect 4: categorical_kl_old_new gave (-6.47e-26, dlogits [[1.11e-25, 0, 0]])
    -- a negative KL and a gradient that does not sum to 0; exact KL +4.6475e-26."""
    kl, dlogits = categorical_kl_old_new(np.array([[-73., -16., -48.]]),
                                         np.array([[-74., -16., -48.]]))
    assert kl == pytest.approx(4.64745217295213e-26, rel=1e-14)
    np.testing.assert_allclose(dlogits, [[1.1117687e-25, -1.1117687e-25, -1.4079623e-39]],
                               rtol=1e-7)
    kl2, d2 = categorical_kl_new_old(np.array([[-74., -16., -48.]]),
                                     np.array([[-73., -16., -48.]]))
    assert kl2 == kl and abs(d2.sum()) <= 1e-40


def test_sample_kl_terms_near_r_equal_one_keep_their_digits():
    """(r - 1) - log r = expm1(d) - d and r log r - (r - 1) cancel near d = log r = 0 (relative
    error ~2 eps/|d|: 2e-11 at d = 1e-5); now a few ulp (mpmath oracle)."""
    import mpmath
    d = np.array([1e-8, -1e-5, 1e-3, -0.3, 0.9, -1.0, 1.0, 2.0, -2.0, 50.0, -50.0])
    for direction, fn in (("old_new", sample_kl_old_new), ("new_old", sample_kl_new_old)):
        with mpmath.workdps(60):
            exact = []
            for x in map(mpmath.mpf, d.tolist()):
                r = mpmath.exp(x)
                exact.append(float(r - 1 - x if direction == "old_new" else r * x - (r - 1)))
        one = [fn(d[i:i + 1], np.zeros(1))[0] for i in range(d.size)]   # per-sample terms
        np.testing.assert_allclose(one, exact, rtol=4 * np.finfo(float).eps, atol=0)
        assert np.all(np.asarray(one) > 0)
        assert fn(d, np.zeros_like(d))[0] == pytest.approx(np.mean(exact), rel=1e-14)
