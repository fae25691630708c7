"""Tests for minirl/objectives/q_learning.py: gradients (float64 central differences),
targets, exploration, schedules and the overestimation bias."""
import numpy as np
import pytest

from kernels.unique import argmax_random_tiebreak
from minirl.nn import MLP, ReLU
from minirl.objectives.q_learning import (boltzmann, boltzmann_probs, ensemble_reduce,
                                          ensemble_reduce_backward, epsilon_greedy,
                                          epsilon_greedy_probs, linear_schedule,
                                          overestimation_bias, overestimation_bias_mc, q_targets,
                                          td_loss)
from minirl.testing.gradcheck import check_gradient


def _away_from_kink(q, actions, targets, delta):
    """Move targets so that no |Q(s,a) - y| is within 0.05 of the Huber kink delta."""
    r = q[..., np.arange(len(actions)), actions] - targets
    bad = np.abs(np.abs(r) - delta) < 0.05
    while bad.any():
        targets = targets + 0.11 * bad.reshape(-1, len(actions)).any(axis=0)
        r = q[..., np.arange(len(actions)), actions] - targets
        bad = np.abs(np.abs(r) - delta) < 0.05
    return targets


@pytest.mark.parametrize("loss", ["mse", "huber"])
@pytest.mark.parametrize("K", [None, 3])
@pytest.mark.parametrize("weighted", [False, True])
def test_td_loss_gradient_matches_finite_differences(loss, K, weighted):
    rng = np.random.default_rng(0)
    B, A = 7, 3
    shape = (B, A) if K is None else (K, B, A)
    q = rng.standard_normal(shape) * 2
    actions = rng.integers(0, A, B)
    targets = _away_from_kink(q, actions, rng.standard_normal(B) * 2, 1.0)
    w = rng.random(B) + 0.5 if weighted else None
    value, dq, td = td_loss(q, actions, targets, loss=loss, delta=1.0, weights=w)
    check_gradient(lambda x: np.array(td_loss(x, actions, targets, loss, 1.0, w)[0]), q, dq,
                   dy=np.array(1.0))
    assert np.count_nonzero(dq) <= (K or 1) * B           # only the taken actions
    pred = q[..., np.arange(B), actions]
    np.testing.assert_allclose(td, (pred - targets).reshape(-1, B).mean(axis=0))


def test_td_loss_literal_values():
    q = np.array([[1.0, 2.0], [0.0, -1.0]])
    v, dq, td = td_loss(q, np.array([1, 0]), np.array([0.0, 3.0]), loss="mse")
    assert v == pytest.approx((4.0 + 9.0) / 2)
    np.testing.assert_allclose(dq, [[0.0, 2.0], [-3.0, 0.0]])
    np.testing.assert_allclose(td, [2.0, -3.0])
    v, dq, _ = td_loss(q, np.array([1, 0]), np.array([0.0, 3.0]), loss="huber", delta=1.0)
    assert v == pytest.approx(((2 - 0.5) + (3 - 0.5)) / 2)
    np.testing.assert_allclose(dq, [[0.0, 0.5], [-0.5, 0.0]])


@pytest.mark.parametrize("double", [False, True])
def test_td_loss_gradient_through_the_network(double):
    rng = np.random.default_rng(1)
    net = MLP([3, 8, 8, 4], activation=ReLU, dtype=np.float64)
    params = net.init(rng)
    target_params = net.init(rng)
    obs, next_obs = rng.standard_normal((6, 3)), rng.standard_normal((6, 3))
    actions = rng.integers(0, 4, 6)
    online_next = net.forward(params, next_obs)[0] if double else None
    y = q_targets(rng.standard_normal(6), np.full(6, 0.9), net.forward(target_params,
                                                                        next_obs)[0],
                  online_next)

    def f(p):
        return np.array(td_loss(net.forward(p, obs)[0], actions, y, "huber", 1.0)[0])

    q, cache = net.forward(params, obs)
    _, dq, _ = td_loss(q, actions, y, "huber", 1.0)
    grad, _ = net.backward(params, cache, dq, need_dx=False)
    check_gradient(f, params, grad, dy=np.array(1.0))


@pytest.mark.parametrize("reduction", ["min", "mean"])
def test_ensemble_reduce_backward(reduction):
    rng = np.random.default_rng(2)
    q = rng.standard_normal((3, 5, 4))                    # continuous: no ties
    out, cache = ensemble_reduce(q, reduction)
    np.testing.assert_allclose(out, q.min(0) if reduction == "min" else q.mean(0))
    dout = rng.standard_normal((5, 4))
    check_gradient(lambda x: ensemble_reduce(x, reduction)[0], q,
                   ensemble_reduce_backward(cache, dout), dy=dout)


def test_q_targets_standard_double_and_ensemble_literals():
    nq_target = np.array([[1.0, 5.0, 2.0], [0.0, 0.0, 3.0]])
    nq_online = np.array([[9.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    r, d = np.array([1.0, 2.0]), np.array([0.5, 0.0])      # second: terminated
    np.testing.assert_allclose(q_targets(r, d, nq_target), [1 + 0.5 * 5, 2.0])
    np.testing.assert_allclose(q_targets(r, d, nq_target, nq_online), [1 + 0.5 * 1, 2.0])
    ens = np.stack([nq_target, nq_target + np.array([[0.0, -4.0, 0.0], [0, 0, 0]])])
    np.testing.assert_allclose(q_targets(r, d, ens, reduction="min"), [1 + 0.5 * 2, 2.0])
    np.testing.assert_allclose(q_targets(r, d, ens, reduction="mean"), [1 + 0.5 * 3, 2.0])
    with pytest.raises(ValueError, match="discounts"):
        q_targets(r, d[:1], nq_target)


def test_linear_schedule():
    assert linear_schedule(0, 1.0, 0.05, 0.1, 1000) == 1.0
    assert linear_schedule(50, 1.0, 0.05, 0.1, 1000) == pytest.approx(0.525)
    assert linear_schedule(100, 1.0, 0.05, 0.1, 1000) == pytest.approx(0.05)
    assert linear_schedule(900, 1.0, 0.05, 0.1, 1000) == pytest.approx(0.05)
    assert linear_schedule(0, 1.0, 0.05, 0.0, 1000) == 0.05
    assert linear_schedule(500, 0.4, 1.0, 1.0, 1000) == pytest.approx(0.7)   # PER beta
    with pytest.raises(ValueError, match="fraction"):
        linear_schedule(0, 1.0, 0.0, 1.5, 10)
    with pytest.raises(ValueError, match="step"):
        linear_schedule(-1, 1.0, 0.0, 0.5, 10)


def test_epsilon_greedy_frequencies_and_random_tie_break():
    q = np.array([[0.0, 1.0, 1.0, -2.0]])                  # two tied maxima
    for eps in (0.0, 0.3, 1.0):
        probs = epsilon_greedy_probs(q, eps)[0]
        rng = np.random.default_rng(3)
        acts = np.concatenate([epsilon_greedy(np.repeat(q, 1000, 0), eps, rng)
                               for _ in range(20)])
        freq = np.bincount(acts, minlength=4) / acts.size
        np.testing.assert_allclose(freq, probs, atol=4 * np.sqrt(0.25 / acts.size))
    np.testing.assert_allclose(epsilon_greedy_probs(q, 0.3)[0],
                               [0.075, 0.075 + 0.35, 0.075 + 0.35, 0.075])
    with pytest.raises(ValueError, match="epsilon"):
        epsilon_greedy(q, 1.5, np.random.default_rng(0))


def test_epsilon_greedy_one_row_draws_as_the_batched_form():
    # One env (B = 1) takes scalar draws; actions and the generator's stream must be those of
    # the batched form rng.random(B) < eps, rng.integers(0, A, B), then the tie-break draws.
    for A, eps in ((2, 0.3), (5, 0.9), (3, 0.0), (7, 1.0)):
        rng, ref = np.random.default_rng(A), np.random.default_rng(A)
        values = np.random.default_rng(10 + A).normal(size=(500, 1, A))
        values[::7] = 0.0                                   # rows of tied maxima too
        for q in values:
            explore = ref.random(1) < eps
            random_actions = ref.integers(0, A, 1)
            greedy = (argmax_random_tiebreak(q, axis=1, rng=ref) if (q == q.max()).sum() > 1
                      else q.argmax(axis=1))
            got = epsilon_greedy(q, eps, rng)
            assert got.dtype == np.int64 and got.shape == (1,)
            assert got[0] == np.where(explore, random_actions, greedy)[0]
        assert rng.bit_generator.state == ref.bit_generator.state


def test_boltzmann_probabilities_and_sampling():
    q = np.array([[1.0, 2.0, 0.0]])
    p = boltzmann_probs(q, 0.5)[0]
    e = np.exp(np.array([1.0, 2.0, 0.0]) / 0.5)
    np.testing.assert_allclose(p, e / e.sum())
    rng = np.random.default_rng(4)
    acts = boltzmann(np.repeat(q, 20000, 0), 0.5, rng)
    np.testing.assert_allclose(np.bincount(acts, minlength=3) / 20000, p, atol=0.012)
    assert boltzmann_probs(np.array([[1e4, 0.0]]), 1e-3)[0, 0] == 1.0    # no overflow
    np.testing.assert_allclose(boltzmann_probs(q, 1e6)[0], 1 / 3, rtol=1e-5)
    with pytest.raises(ValueError, match="temperature"):
        boltzmann_probs(q, 0.0)


def test_overestimation_max_is_biased_up_double_is_not():
    # The lecture's setting: one state, 10 actions of equal true value, zero-mean noise.
    max_bias, double_bias = overestimation_bias(10, sigma=1.0)
    assert max_bias == pytest.approx(1.5387527, abs=1e-6)  # E[max of 10 std normals]
    assert double_bias == 0.0
    assert overestimation_bias(10, 0.5, "uniform")[0] == pytest.approx(0.5 * 9 / 11)
    assert overestimation_bias(1, 1.0)[0] == pytest.approx(0.0, abs=1e-10)
    mc = overestimation_bias_mc(10, 1.0, 40_000, np.random.default_rng(5))
    assert abs(mc["max"] - max_bias) < 4 * mc["max_se"]
    assert mc["max"] > 0.5 and mc["max"] - 4 * mc["max_se"] > 0
    assert abs(mc["double"]) < 4 * mc["double_se"]


def test_dqn_gradient_step_float32_loss_with_huge_rewards_is_finite():
    """Through DQN's public update (``minirl.algos.dqn.dqn_gradient_step``), float32: 64
    rewards of 1e37 give Huber terms ~1e37 each; their float32 sum (6.4e38) overflowed, the
    logged loss was inf. Now it is the float64 mean, ~1e37; the gradient is unchanged
    (elementwise, clip(r, -1, 1) / 64)."""
    from minirl.algos.dqn import DQNConfig, QNet, dqn_gradient_step, dqn_targets
    from minirl.nn import Adam
    from minirl.replay import ReplayBuffer
    rng = np.random.default_rng(0)
    cfg = DQNConfig(hidden_sizes=(8,), double=False, dtype="float32", max_grad_norm=1e9)
    qnet = QNet(3, 2, (8,), "tanh", 1, np.float32)
    params, target = qnet.init(rng), qnet.init(rng)
    buf = ReplayBuffer(80, (3,), (), np.int64, dtype=np.float32)
    for _ in range(70):
        buf.add(rng.standard_normal((1, 3)), rng.integers(0, 2, 1), np.full(1, 1e37),
                rng.standard_normal((1, 3)), np.ones(1, bool), np.zeros(1, bool))
    batch = buf.sample(64, rng)
    adam = Adam(lr=0.0)
    _, _, (loss, q_mean, _), td = dqn_gradient_step(qnet, params, target, adam.init(params),
                                                    adam, batch, cfg,
                                                    np.zeros(qnet.n_params, np.float32))
    y = dqn_targets(qnet, params, target, batch.next_obs, batch.rewards,
                    0.99 * ~batch.terminated, cfg)          # terminated: y = r = 1e37
    q = qnet.forward(params, batch.obs, "train")[0][0]
    pred = q[np.arange(64), batch.actions].astype(np.float64)
    exact = np.mean(np.abs(pred - y.astype(np.float64)) - 0.5)  # |r| >> 1: linear branch
    assert np.isfinite(loss) and loss == pytest.approx(exact, rel=1e-15)
    # the logged mean Q(s_i, a_i) (= td + y, ~1e37 each: a float32 sum of 64 overflowed)
    assert np.isfinite(q_mean) and q_mean == pytest.approx(
        np.mean(td.astype(np.float64) + y.astype(np.float64)), rel=1e-15)


def test_td_loss_mse_when_q_minus_target_overflows_float32():
    """float32 Q = 2e38 against a target of -2e38: the TD error 4e38 is beyond float32; the
    loss fits float64 and 2 (Q - y) / B = 2e38 fits float32 for B = 4 (one head and two)."""
    from fractions import Fraction
    f = np.float32
    q = np.array([[2e38, 0.0], [0.0, 1.0], [0.0, 0.0], [-2e38, 5.0]], f)
    actions = np.array([0, 1, 0, 0])
    y = np.array([-2e38, 0.0, 0.0, 2e38], f)
    r = [Fraction(float(q[i, a])) - Fraction(float(y[i])) for i, a in enumerate(actions)]
    value, dq, _ = td_loss(q, actions, y, loss="mse")
    assert value == pytest.approx(float(sum(x * x for x in r) / 4), rel=1e-15)
    expected = np.zeros((4, 2), f)
    expected[np.arange(4), actions] = [float(2 * x / 4) for x in r]
    assert dq.dtype == f
    np.testing.assert_array_equal(dq, expected)
    value, dq, _ = td_loss(np.stack([q, q]), actions, y, loss="mse")   # K = 2: sum over heads
    assert value == pytest.approx(2 * float(sum(x * x for x in r) / 4), rel=1e-15)
    np.testing.assert_array_equal(dq, np.stack([expected, expected]))


def test_ensemble_mean_of_float32_heads_near_the_maximum_does_not_overflow():
    """K float32 heads near float32's maximum: NumPy's float32 mean overflows to inf; the
    true mean is finite and the ensemble reduction, the double-DQN online mean, the ensemble
    TD errors and REDQ's actor loss give it (rounded once to float32)."""
    from fractions import Fraction
    from minirl.objectives.q_learning import ensemble_mean
    from minirl.objectives.sac import actor_loss
    f = np.float32
    big = np.finfo(f).max
    q = np.array([[[big, 1.0]], [[big, 2.0]], [[f(3e38), -1.0]]], f)     # [K=3, B=1, A=2]
    exact = [float(sum(Fraction(float(x)) for x in q[:, 0, a]) / 3) for a in range(2)]
    with np.errstate(over="ignore"):
        assert np.isinf(q.mean(axis=0)).any()        # the defect: float32 sum overflows
    out, cache = ensemble_reduce(q, "mean")
    assert out.dtype == f
    np.testing.assert_array_equal(out, np.array([exact], f))
    np.testing.assert_array_equal(ensemble_mean(q), out)
    np.testing.assert_array_equal(ensemble_reduce_backward(cache, np.ones((1, 2), f)),
                                  np.full((3, 1, 2), 1 / 3, f))
    # double DQN with an ensemble: the online heads' mean picks action 0 (not inf vs inf)
    y = q_targets(np.zeros(1, f), np.ones(1, f), np.zeros((3, 1, 2), f), next_q_online=q)
    np.testing.assert_array_equal(y, [0.0])
    # ensemble TD errors (the PER priorities): mean over heads of Q_k - y
    _, _, td = td_loss(q, np.array([0]), np.zeros(1, f), loss="huber")
    np.testing.assert_array_equal(td, np.array([exact[0]], f))
    # REDQ's actor (mean over critics): loss = -mean Q, finite
    loss, _, _ = actor_loss(np.zeros(1, f), q[:, :, 0], alpha=0.0, reduction="mean")
    assert loss == -float(f(exact[0]))
    # float64 heads whose sum overflows float64
    q64 = np.full((3, 2), 1.5e308)
    np.testing.assert_allclose(ensemble_mean(q64), [1.5e308, 1.5e308], rtol=1e-15)
