"""Tests for minirl/imitation/policies.py: every policy's BC loss gradient through its network
(float64 finite differences), log-densities that integrate to 1, action ranges, errors."""
import numpy as np
import pytest
from gymnasium import spaces

from minirl.imitation.policies import POLICIES, make_policy, squash_log_std
from minirl.testing.gradcheck import check_gradient

BOX = spaces.Box(np.array([-2.0, 0.0], np.float32), np.array([2.0, 1.0], np.float32))
DISC = spaces.Discrete(3)


@pytest.mark.parametrize("kind,space", [("l2", BOX), ("l2", DISC), ("categorical", DISC),
                                        ("gaussian", BOX), ("mog", BOX),
                                        ("autoregressive", BOX), ("diffusion", BOX)])
def test_bc_loss_gradient_through_the_network(kind, space):
    rng = np.random.default_rng(0)
    pol = make_policy(kind, 3, space, (8,), n_components=3, n_bins=5, diffusion_steps=7)
    params = pol.init(np.random.default_rng(1)) + 0.3 * rng.standard_normal(pol.n_params)
    obs = rng.standard_normal((6, 3))
    if isinstance(space, spaces.Discrete):
        actions = rng.integers(0, 3, 6)
    else:
        actions = rng.uniform(space.low, space.high, (6, 2))
    # The diffusion loss draws (t, eps) from rng: the same seed on both sides fixes the draw.
    value, grad = pol.loss(params, obs, actions, np.random.default_rng(5))
    assert np.isfinite(value) and grad.shape == (pol.n_params,)
    check_gradient(lambda p: np.array(pol.loss(p, obs, actions, np.random.default_rng(5))[0]),
                   params, grad, dy=1.0, rtol=1e-6)


def test_squash_log_std_range_and_derivative():
    h = np.linspace(-40, 40, 9)
    ls, d = squash_log_std(h)
    assert ls.min() >= -5.0 and ls.max() <= 0.0
    check_gradient(lambda x: squash_log_std(x)[0], h[2:7], d[2:7], dy=np.ones(5))


@pytest.mark.parametrize("kind", ["autoregressive", "mog", "gaussian"])
def test_policy_density_integrates_to_one_over_the_box(kind):
    space = spaces.Box(np.array([-2.0, 0.0], np.float32), np.array([2.0, 1.0], np.float32))
    pol = make_policy(kind, 3, space, (8,), n_components=3, n_bins=5)
    rng = np.random.default_rng(2)
    params = pol.init(rng) + 0.5 * rng.standard_normal(pol.n_params)
    obs = rng.standard_normal((1, 3))
    # Midpoint rule on a fine grid over a box wide enough to hold (almost) all the mass.
    lo, hi = (space.low, space.high) if kind == "autoregressive" else (np.array([-14.0, -7.0]),
                                                                       np.array([14.0, 8.0]))
    n = 400
    g0 = lo[0] + (np.arange(n) + 0.5) * (hi[0] - lo[0]) / n
    g1 = lo[1] + (np.arange(n) + 0.5) * (hi[1] - lo[1]) / n
    a = np.stack(np.meshgrid(g0, g1, indexing="ij"), -1).reshape(-1, 2)
    if kind == "autoregressive":
        logp = pol.log_prob(params, np.repeat(obs, len(a), 0), a)
    else:   # beyond the env's box: the density of the unbounded distribution
        pol.low, pol.high = space.low.astype(np.float64), space.high.astype(np.float64)
        logp = pol.log_prob(params, np.repeat(obs, len(a), 0), a)
    cell = np.prod((hi - lo) / n)
    assert np.exp(logp).sum() * cell == pytest.approx(1.0, abs=2e-3)


def test_autoregressive_sampling_is_dimension_by_dimension_and_deterministic_mode():
    pol = make_policy("autoregressive", 2, BOX, (16,), n_bins=4)
    params = pol.init(np.random.default_rng(0))
    params += np.random.default_rng(1).normal(0, 1, pol.n_params)
    obs = np.random.default_rng(2).standard_normal((500, 2))
    a = pol.act(params, obs, np.random.default_rng(3), deterministic=False)
    centres_0 = -2.0 + (np.arange(4) + 0.5) * 1.0
    assert np.isin(a[:, 0], centres_0).all() and np.isin(a[:, 1], (np.arange(4) + 0.5) / 4).all()
    np.testing.assert_array_equal(pol.act(params, obs), pol.act(params, obs))


@pytest.mark.parametrize("kind", sorted(set(POLICIES) - {"categorical"}))
def test_actions_stay_in_the_box(kind):
    pol = make_policy(kind, 2, BOX, (8,), diffusion_steps=5)
    params = pol.init(np.random.default_rng(0))
    a = pol.act(params, np.random.default_rng(1).standard_normal((50, 2)),
                np.random.default_rng(2), deterministic=kind in ("l2", "diffusion"))
    assert a.shape == (50, 2)
    if kind in ("autoregressive", "diffusion"):
        assert (a >= BOX.low).all() and (a <= BOX.high).all()


def test_policy_errors():
    with pytest.raises(ValueError, match="policy must be one of"):
        make_policy("transformer", 2, BOX)
    with pytest.raises(TypeError, match="needs a Box"):
        make_policy("mog", 2, DISC)
    with pytest.raises(TypeError, match="needs a Discrete"):
        make_policy("categorical", 2, BOX)
    with pytest.raises(TypeError, match="bounded"):
        make_policy("gaussian", 2, spaces.Box(-np.inf, np.inf, (1,)))


@pytest.mark.parametrize("kind", ["gaussian", "mog", "autoregressive", "l2"])
def test_a_huge_finite_box_gives_finite_actions_and_densities(kind):
    # high - low = 2e308 overflowed: scale() sent every action to -1, unscale() to inf/NaN
    # and the log-densities' Jacobian log((high - low)/2) was inf
    space = spaces.Box(-1e308, 1e308, (2,), np.float64)
    pol = make_policy(kind, 2, space, (8,), n_components=3, n_bins=5)
    small = make_policy(kind, 2, spaces.Box(-1.0, 1.0, (2,), np.float64), (8,),
                        n_components=3, n_bins=5)
    params = pol.init(np.random.default_rng(0))
    obs = np.random.default_rng(1).standard_normal((20, 2))
    a = pol.act(params, obs, np.random.default_rng(2), deterministic=True)
    # low + (x + 1) (high - low)/2 = 1e308 x up to the rounding of the sum (~ulp(1e308))
    np.testing.assert_allclose(a, 1e308 * small.act(params, obs, deterministic=True),
                               rtol=0, atol=1e293)
    if kind != "l2":   # the density in env units: the unit box's minus sum_d log 1e308
        np.testing.assert_allclose(pol.log_prob(params, obs, a),
                                   small.log_prob(params, obs, a / 1e308) - 2 * np.log(1e308),
                                   rtol=1e-12)
