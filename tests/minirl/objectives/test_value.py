"""Tests for minirl/objectives/value.py: each target is its kernel; value loss gradients."""
import numpy as np
import pytest

from kernels.gae import gae
from kernels.returns import discounted_returns
from minirl.objectives.value import advantages_and_targets, explained_variance, value_loss
from minirl.testing.gradcheck import check_gradient


def _rollout(seed=0, T=7, N=3):
    rng = np.random.default_rng(seed)
    r, v, nv = (rng.standard_normal((T, N)) for _ in range(3))
    term, trunc = rng.random((T, N)) < 0.15, rng.random((T, N)) < 0.15
    # as a rollout produces them: V(s_{t+1}) of a row that went on is the next row's V(s_t)
    went_on = ~(term | trunc)[:-1]
    nv[:-1][went_on] = v[1:][went_on]
    return r, v, nv, term, trunc


def test_td0_is_one_step_bootstrap():
    r, v, nv, term, trunc = _rollout()
    adv, y = advantages_and_targets("td0", r, v, nv, term, trunc, 0.9)
    np.testing.assert_allclose(y, r + 0.9 * (1 - term) * nv)
    np.testing.assert_allclose(adv, y - v)


def test_mc_gae_and_identities():
    r, v, nv, term, trunc = _rollout(1)
    _, y_mc = advantages_and_targets("mc", r, v, nv, term, trunc, 0.9)
    np.testing.assert_allclose(y_mc, discounted_returns(r, term, trunc, 0.9, bootstrap_values=nv))
    adv, y = advantages_and_targets("gae", r, v, nv, term, trunc, 0.9, lam=0.7)
    np.testing.assert_allclose(adv, gae(r, v, nv, term, trunc, 0.9, 0.7)[0])
    np.testing.assert_allclose(y, adv + v)
    # GAE(lam=1) targets are the Monte-Carlo targets; lam=0 the TD(0) targets;
    # n-step with n >= T is Monte Carlo.
    np.testing.assert_allclose(advantages_and_targets("gae", r, v, nv, term, trunc, 0.9, 1.0)[1], y_mc)
    np.testing.assert_allclose(advantages_and_targets("gae", r, v, nv, term, trunc, 0.9, 0.0)[1],
                               advantages_and_targets("td0", r, v, nv, term, trunc, 0.9)[1])
    np.testing.assert_allclose(advantages_and_targets("nstep", r, v, nv, term, trunc, 0.9, n=50)[1],
                               y_mc)


def test_unknown_method():
    with pytest.raises(ValueError, match="mc"):
        advantages_and_targets("lambda", *_rollout(), 0.9)


@pytest.mark.parametrize("clip", [0.0, 0.2])
def test_value_loss_gradient(clip):
    rng = np.random.default_rng(2)
    v, y, v_old = rng.standard_normal(20), rng.standard_normal(20), rng.standard_normal(20)
    v = v_old + rng.uniform(-0.5, 0.5, 20)  # some inside the clip range, some outside
    v[np.abs(np.abs(v - v_old) - clip) < 0.02] += 0.05  # away from the kinks
    loss, dv = value_loss(v, y, v_old, clip)
    check_gradient(lambda x: value_loss(x, y, v_old, clip)[0], v, dv, dy=1.0, rtol=1e-6)
    if clip == 0.0:
        assert loss == pytest.approx(np.mean((v - y) ** 2))


def test_explained_variance():
    y = np.array([1.0, 2.0, 3.0])
    assert explained_variance(y, y) == 1.0
    assert explained_variance(np.full(3, 2.0), y) == 0.0
    assert np.isnan(explained_variance(y, np.ones(3)))


def test_advantages_and_targets_name_bad_values():
    r = np.ones((4, 2))
    f = np.zeros((4, 2), bool)
    for method in ("mc", "td0", "nstep", "gae"):
        with pytest.raises(ValueError, match="values"):
            advantages_and_targets(method, r, np.full((4, 2), np.nan), r, f, f, 0.9)
        with pytest.raises(ValueError, match="values"):
            advantages_and_targets(method, r, np.zeros((4, 1)), r, f, f, 0.9)
        with pytest.raises(ValueError, match="values"):
            advantages_and_targets(method, r, np.zeros((3, 2)), r, f, f, 0.9)


def test_clipped_value_loss_in_float32_is_finite_when_the_true_value_is():
    from fractions import Fraction
    f = np.float32
    v, y, v_old = np.full(4, 1e20, f), np.zeros(4, f), np.full(4, 1e20, f)
    value, dv = value_loss(v, y, v_old, clip=0.2)   # both squares 1e40 > float32 max
    v_c = float(f(1e20) + f(0.2))                   # V_old + 0 (inside the clip range)
    assert value == float(Fraction(max(float(v[0]), v_c)) ** 2)
    assert dv.dtype == f and np.all(np.isfinite(dv))
    # |V - y| vs |V_c - y| decided exactly (float32 squares would both be inf -> first branch)
    v, v_old = np.full(4, -2e19, f), np.full(4, -3e19, f)   # V_c = V_old + 0.2 = -3e19
    value, dv = value_loss(v, y, v_old, clip=0.2)            # max is the clipped term, whose
    assert value == float(Fraction(float(v_old[0])) ** 2)    # V_c is outside: gradient 0
    np.testing.assert_array_equal(dv, np.zeros(4, f))


@pytest.mark.parametrize("clip", [0.0, 0.2])
def test_value_loss_when_v_minus_target_overflows_float32(clip):
    """float32 V = +-2e38 against targets -+2e38: V - y = 4e38 is beyond float32; the loss
    fits float64 and 2 (V - y) / B fits float32 for B = 4 (clipped or not: V_old = V)."""
    from fractions import Fraction
    f = np.float32
    v = np.array([2e38, -2e38, 1.0, 0.0], f)
    y = np.array([-2e38, 2e38, 0.0, 0.0], f)
    r = [Fraction(float(a)) - Fraction(float(b)) for a, b in zip(v, y)]
    value, dv = value_loss(v, y, values_old=v.copy(), clip=clip)
    assert value == pytest.approx(float(sum(x * x for x in r) / 4), rel=1e-15)
    assert dv.dtype == f
    np.testing.assert_array_equal(dv, np.array([float(2 * x / 4) for x in r], f))
    # V_old far away: the clipped V_c = V_old + 0.2 is the larger error for the last two
    if clip:
        v_old = np.array([2e38, -2e38, 100.0, -50.0], f)
        value, dv = value_loss(v, y, values_old=v_old, clip=clip)
        vc = [Fraction(float(v[0])), Fraction(float(v[1])), Fraction(float(f(100.0 - 0.2))),
              Fraction(float(f(-50.0 + 0.2)))]
        err = [max(x, c - Fraction(float(t)), key=abs) for x, c, t in zip(r, vc, y)]
        assert value == pytest.approx(float(sum(x * x for x in err) / 4), rel=1e-7)
        np.testing.assert_array_equal(dv[:2], np.array([float(2 * x / 4) for x in r[:2]], f))
        np.testing.assert_array_equal(dv[2:], [0.0, 0.0])   # clipped side: no gradient


@pytest.mark.parametrize("method", ["mc", "td0", "nstep", "gae"])
def test_advantages_and_targets_that_overflow_float32_are_a_named_error(method):
    """Finite float32 rewards/values near the maximum whose targets, returns or advantages
    (targets - values) lie beyond float32: FloatingPointError for every method (was: inf
    advantages from td0/nstep/mc, inf returns from gae, returned silently)."""
    f = np.float32
    T = 3
    r, v = np.full((T, 1), 2e38, f), np.full((T, 1), -2e38, f)
    no, yes = np.zeros((T, 1), bool), np.ones((T, 1), bool)
    with pytest.raises(FloatingPointError, match="overflowed float32"):
        advantages_and_targets(method, r, v, np.zeros((T, 1), f), yes, no, 0.99, 0.95, 2)
    adv, y = advantages_and_targets(method, r.astype(np.float64), v.astype(np.float64),
                                    np.zeros((T, 1)), yes, no, 0.99, 0.95, 2)
    np.testing.assert_array_equal(y, np.full((T, 1), float(r[0, 0])))   # terminated: y = r
    np.testing.assert_array_equal(adv, np.full((T, 1), float(r[0, 0]) - float(v[0, 0])))


from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False, width=32), min_size=0, max_size=80),
       st.sampled_from([(-1,), (-1, 1), (1, -1)]))
def test_var_fast_path_is_numpys_var_bit_for_bit(values, shape):
    """explained_variance's private ``_var`` repeats np.var's operations: the same float."""
    from minirl.objectives.value import _var
    a = np.asarray(values, np.float64).reshape(shape) if values else np.zeros(0)
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning) if not values else _nullctx():
        want = float(np.var(a))
        got = _var(a)
    assert np.float64(got).tobytes() == np.float64(want).tobytes()


class _nullctx:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@given(st.lists(st.floats(-1e4, 1e4, allow_nan=False, width=32), min_size=2, max_size=80))
def test_explained_variance_is_the_np_var_formula(values):
    y = np.asarray(values, np.float64)
    v = (y[::-1] * 0.5).astype(np.float32)
    var_y = float(np.var(y))
    want = float("nan") if var_y == 0.0 else 1.0 - float(np.var(y - v)) / var_y
    got = explained_variance(v, y)
    assert np.float64(got).tobytes() == np.float64(want).tobytes()


def test_explained_variance_of_scalars_is_nan_like_np_var():
    # (tester 12) the fast variance's out= broke on 0-d input (TypeError); a 0-d pair has
    # Var[y] = 0, so the explained variance is undefined: NaN, as np.var gives
    with np.errstate(invalid="ignore", divide="ignore"):
        assert np.isnan(explained_variance(np.array(1.0), np.array(2.0)))
        assert np.isnan(explained_variance(np.array([1.0, 2.0, 4.0]), 3.0))
