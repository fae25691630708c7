"""kernels/qstep.py: the fused DQN step == its NumPy reference bit for bit (targets, TD loss,
backward, clipping, Adam), the careful-path fallbacks, acting's Q-values, wrapper errors."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kernels.optim import _coefficients, adam_update_reference
from kernels.qstep import (fusable_sizes, q_step, q_step_reference, q_steps,
                           q_steps_reference, q_values, q_values_reference)


def _n(sizes):
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))


def _problem(seed, dtype, sizes, B, double=False, huber=True, weighted=False,
             max_norm=0.5, step=5, scale=0.3):
    rng = np.random.default_rng(seed)
    n = _n(sizes)
    p = (rng.standard_normal(n) * scale).astype(dtype)
    t = (p + rng.standard_normal(n) * 0.05).astype(dtype)
    m = (rng.standard_normal(n) * 1e-3).astype(dtype)
    v = (rng.random(n) * 1e-4).astype(dtype)
    obs = rng.standard_normal((B, sizes[0])).astype(dtype)
    nxt = rng.standard_normal((B, sizes[0])).astype(dtype)
    act = rng.integers(0, sizes[-1], B)
    ret = rng.standard_normal(B).astype(dtype)
    disc = 0.99 * (rng.random(B) > 0.2)              # float64, as DQN's 1-step discounts
    w = rng.random(B).astype(dtype) if weighted else None
    coef = _coefficients(np.dtype(dtype), 1e-3, 0.9, 0.999, 1e-8, step, 0.0, True)
    return (p, t, m, v, np.array(sizes), obs, act, ret, disc, nxt, w, double, huber, 1.0,
            max_norm, coef)


def _same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@given(seed=st.integers(0, 2**32 - 1), dtype=st.sampled_from([np.float32, np.float64]),
       sizes=st.sampled_from([[3, 5, 4], [4, 16, 16, 2], [6, 8, 8, 8, 3], [2, 2]]),
       B=st.sampled_from([1, 2, 7, 33, 130]), double=st.booleans(), huber=st.booleans(),
       weighted=st.booleans(), max_norm=st.sampled_from([1e-3, 0.5, 1e6]))
def test_kernel_equals_reference_bit_for_bit(seed, dtype, sizes, B, double, huber, weighted,
                                             max_norm):
    args = _problem(seed, dtype, sizes, B, double, huber, weighted, max_norm)
    got, ref = q_step(*args), q_step_reference(*args)
    assert got is not None and ref is not None
    _same(got, ref)


def test_hand_computed_one_layer_step():
    # Q(s, .) = s W + b, one transition; every number by hand in float64
    W = np.array([[1.0, 2.0], [0.5, -1.0]])
    b = np.array([0.1, -0.2])
    p = np.concatenate([W.ravel(), b])
    tgt = np.zeros(6)
    tgt[4] = 3.0                                  # Q'(s', .) = (3, 0) for any s' = 0 row
    obs, nxt = np.array([[1.0, 2.0]]), np.zeros((1, 2))
    coef = _coefficients(np.dtype(np.float64), 0.1, 0.9, 0.999, 1e-8, 1, 0.0, True)
    out = q_step(p, tgt, np.zeros(6), np.zeros(6), [2, 2], obs, np.array([0]),
                 np.array([1.0]), np.array([0.5]), nxt, None, False, False, 1.0, 100.0, coef)
    new_p, new_m, new_v, norm, y, td, per = out
    assert y[0] == 1.0 + 0.5 * 3.0               # y = r + d max_a Q'(s', a)
    q0 = 1.0 * 1.0 + 2.0 * 0.5 + 0.1             # Q(s, 0) = 2.1
    assert td[0] == pytest.approx(q0 - 2.5)
    assert per[0] == pytest.approx((q0 - 2.5) ** 2)
    dq = 2.0 * (q0 - 2.5)                         # MSE gradient, B = 1
    grad = np.array([1.0 * dq, 0.0, 2.0 * dq, 0.0, dq, 0.0])
    assert norm == pytest.approx(np.linalg.norm(grad))
    ref_p, ref_m, ref_v = adam_update_reference(p, grad, np.zeros(6), np.zeros(6), 0.1, 0.9,
                                                0.999, 1e-8, 1)
    np.testing.assert_allclose(new_p, ref_p, rtol=1e-15)
    np.testing.assert_allclose(new_m, ref_m, rtol=1e-15)


def test_double_dqn_evaluates_the_online_argmax_with_the_target_net():
    # online Q(s', .) = (0, 1) picks a' = 1; the target net says (5, -5): y = r + d * (-5)
    p = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 1.0])
    tgt = np.array([0.0, 0.0, 0.0, 0.0, 5.0, -5.0])
    coef = _coefficients(np.dtype(np.float64), 1e-3, 0.9, 0.999, 1e-8, 1, 0.0, True)
    args = (p, tgt, np.zeros(6), np.zeros(6), [2, 2], np.ones((1, 2)), np.array([0]),
            np.array([1.0]), np.array([1.0]), np.zeros((1, 2)), None)
    assert q_step(*args, True, True, 1.0, 10.0, coef)[4][0] == 1.0 - 5.0
    assert q_step(*args, False, True, 1.0, 10.0, coef)[4][0] == 1.0 + 5.0


def test_corner_cases_return_none_and_modify_nothing():
    base = _problem(1, np.float32, [3, 5, 4], 8)
    keep = [a.copy() if isinstance(a, np.ndarray) else a for a in base]

    def variant(i, value):
        args = list(base)
        args[i] = value
        return args
    nan_ret = base[7].copy()
    nan_ret[2] = np.nan
    huge = np.full_like(base[0], 3e38)                # the net's outputs overflow float32
    cases = [variant(7, nan_ret),                     # a NaN return (G)
             variant(1, huge),                        # target Q overflows
             variant(10, np.zeros(8, np.float32)),    # PER weights 0: gradient 0, norm 0
             variant(0, huge)]                        # online Q overflows
    for args in cases:
        assert q_step(*args) is None
        assert q_step_reference(*args) is None
    for a, b in zip(base, keep):
        if isinstance(a, np.ndarray):
            np.testing.assert_array_equal(a, b)


def test_non_finite_second_moment_falls_back():
    # with ||g||^2 finite, v' <= max(v, ||g||^2) cannot overflow; an inf already in v can
    args = list(_problem(2, np.float32, [3, 5, 4], 8))
    args[3] = args[3].copy()
    args[3][7] = np.inf
    assert q_step(*args) is None
    assert q_step_reference(*args) is None


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("B", [1, 3, 64])
def test_q_values_equal_the_network_layer(dtype, B):
    from minirl.nn import MLP, ReLU
    rng = np.random.default_rng(B)
    net = MLP([4, 32, 16, 3], ReLU, dtype=dtype)
    params = net.init(rng).astype(dtype)
    params += rng.standard_normal(params.size).astype(dtype) * dtype(0.1)
    x = rng.standard_normal((B, 4))
    got = q_values(params, net.sizes, x)
    np.testing.assert_array_equal(got, net.forward(params, x)[0])
    np.testing.assert_array_equal(got, q_values_reference(params, net.sizes,
                                                          x.astype(dtype)))


def test_wrapper_errors_name_the_argument():
    args = list(_problem(0, np.float32, [3, 5, 4], 4))
    with pytest.raises(ValueError, match="target_params"):
        q_step(args[0], args[1][:-1], *args[2:])
    bad = list(args)
    bad[5] = args[5].astype(np.float64)
    with pytest.raises(ValueError, match="obs"):
        q_step(*bad)
    bad = list(args)
    bad[6] = np.array([0, 1, 2, 4])
    with pytest.raises(ValueError, match="actions"):
        q_step(*bad)
    bad = list(args)
    bad[10] = np.ones(4)                              # float64 weights for float32 params
    with pytest.raises(ValueError, match="weights"):
        q_step(*bad)
    with pytest.raises(ValueError, match="sizes"):
        q_step(*args[:4], np.array([3, 1, 4]), *args[5:])
    with pytest.raises(ValueError, match="x must"):
        q_values(args[0], [3, 5, 4], np.ones((2, 4)))
    with pytest.raises(ValueError, match="params"):
        q_values(args[0][:-1], [3, 5, 4], np.ones((2, 3)))


def test_fusable_sizes():
    assert fusable_sizes([4, 256, 256, 2])
    assert not fusable_sizes([4, 256, 1])             # one action: NumPy sums pairwise
    assert not fusable_sizes([4])


@pytest.mark.parametrize("huber,double,weighted", [(True, False, False), (False, True, True),
                                                   (True, True, True)])
def test_gradient_matches_central_finite_differences(huber, double, weighted):
    """The kernel's gradient of L(theta) = 1/B sum_i w_i h(Q_theta(s_i, a_i) - y_i), y fixed
    (computed at theta: the double-DQN argmax and the target do not move), in float64."""
    from minirl.testing.gradcheck import check_gradient
    args = list(_problem(3, np.float64, [3, 6, 5, 2], 9, double, huber, weighted, 1e12))
    grad = np.empty_like(args[0])
    y = q_step(*args, grad_out=grad)[4]
    obs, act, w = args[5], args[6], args[10]

    def loss(p):
        q = q_values_reference(p, args[4], obs)[np.arange(9), act]
        r = q - y
        h = np.where(np.abs(r) <= 1.0, 0.5 * r * r, np.abs(r) - 0.5) if huber else r * r
        return np.array(np.mean(h if w is None else w * h))

    check_gradient(loss, args[0].copy(), grad, dy=np.array(1.0))


def test_destinations_that_overlap_an_input_are_refused():
    args = list(_problem(4, np.float32, [3, 5, 4], 6))
    p = args[0]
    fresh = (np.empty_like(p), np.empty_like(p))
    with pytest.raises(ValueError, match=r"out\[2\].*sharing no memory"):
        q_step(*args, out=(*fresh, args[3]))          # new v written over the old v
    got = q_step(*args, out=(*fresh, np.empty_like(p)))
    _same(got, q_step_reference(*args))


def test_argument_corners_of_the_wrapper():
    args = list(_problem(5, np.float32, [3, 5, 4], 6))
    p = args[0]
    o = np.empty_like(p)
    with pytest.raises(ValueError, match=r"out\[1\].*other destinations"):
        q_step(*args, out=(o, o, np.empty_like(p)))           # one array for two outputs
    for delta, max_norm in ((0.0, 1.0), (-1.0, 1.0), (np.nan, 1.0), (1.0, 0.0),
                            (1.0, np.nan)):
        bad = list(args)
        bad[13], bad[14] = delta, max_norm
        with pytest.raises(ValueError, match="delta and max_norm"):
            q_step(*bad)
    empty = list(args)
    empty[5], empty[9] = args[5][:0], args[9][:0]
    empty[6], empty[7], empty[8] = args[6][:0], args[7][:0], args[8][:0]
    with pytest.raises(ValueError, match="at least one transition"):
        q_step(*empty)
    assert q_values(p, [3, 5, 4], np.ones((0, 3))).shape == (0, 4)


def test_read_only_inputs_take_the_careful_path():
    args = list(_problem(6, np.float32, [3, 5, 4], 6))
    ro = args[0].copy()
    ro.flags.writeable = False
    args[0] = ro
    assert q_step(*args) is None                            # no Numba typing error
    x = np.ones((2, 3), np.float32)
    x.flags.writeable = False
    np.testing.assert_array_equal(q_values(ro, [3, 5, 4], x),
                                  q_values_reference(ro, [3, 5, 4], x))


# ----------------------------------------------------------------------------- K steps
def _batches(seed, dtype, sizes, K, B, double=False, huber=True, max_norm=0.5):
    """K batches (fields [K, B, ...]) for q_steps, the start vectors, and the coefficient rows
    of updates 5 .. 5 + K - 1."""
    rng = np.random.default_rng(seed)
    probs = [_problem(seed + k, dtype, sizes, B, double, huber, False, max_norm)
             for k in range(K)]
    p, t, m, v = probs[0][:4]
    stack = [np.stack([pr[i] for pr in probs]) for i in (5, 6, 7, 8, 9)]
    coefs = np.array([_coefficients(np.dtype(dtype), 1e-3 * (1 + rng.random()), 0.9, 0.999,
                                    1e-8, 5 + k, 0.0, True) for k in range(K)], dtype)
    return (p, t, m, v, np.array(sizes), *stack, double, huber, 1.0, max_norm, coefs)


def _one_by_one(args, careful):
    """K q_step calls in a row; ``careful`` where q_step hands the step back."""
    return q_steps_reference(*args, careful, step=q_step)


def _rows(got, careful_steps):
    """The per-step rows of a q_steps result that hold values (kernel steps)."""
    keep = [k for k in range(len(got[3])) if k not in careful_steps]
    return [got[0], got[1], got[2]] + [np.asarray(x)[keep] for x in got[3:7]] + [got[7]]


def _never(*_):
    raise AssertionError("careful path not expected")


@given(seed=st.integers(0, 2**32 - 1), dtype=st.sampled_from([np.float32, np.float64]),
       sizes=st.sampled_from([[3, 5, 4], [4, 16, 16, 2], [2, 2]]),
       K=st.sampled_from([1, 2, 5]), B=st.sampled_from([1, 7, 64]), double=st.booleans(),
       huber=st.booleans(), max_norm=st.sampled_from([1e-3, 0.5, 1e6]))
def test_k_steps_equal_k_single_steps_and_the_reference(seed, dtype, sizes, K, B, double,
                                                        huber, max_norm):
    args = _batches(seed, dtype, sizes, K, B, double, huber, max_norm)
    inputs = [a.copy() for a in args[:4]]
    got = q_steps(*args, _never)
    _same(got, _one_by_one(args, _never))
    _same(got, q_steps_reference(*args, _never))
    _same(args[:4], inputs)                                  # inputs untouched
    assert not any(np.shares_memory(a, b) for a in got[:3] for b in args[:4])


@pytest.mark.parametrize("bad", [[0], [2], [4], [1, 3], [0, 1, 2, 3, 4]])
def test_k_steps_hand_a_step_to_the_careful_path_and_go_on_from_its_result(bad):
    args = list(_batches(7, np.float32, [4, 16, 16, 2], 5, 8))
    args[7] = args[7].copy()
    args[7][bad, 0] = np.inf                                 # those targets are not finite
    calls = []

    def careful(k, p, m, v):                                 # a stand-in update: p + k
        calls.append((k, p.copy(), m.copy(), v.copy()))
        return p + np.float32(k), m * 0.5, v + np.float32(1e-6)
    got = q_steps(*args, careful)
    ref_calls = []
    ref = _one_by_one(args, lambda k, p, m, v: (ref_calls.append(k), careful(k, p, m, v))[1])
    assert got[7] == bad and ref[7] == bad and ref_calls == bad
    _same(_rows(got, bad), _rows(ref, bad))
    for (k, p, m, v), (k2, p2, m2, v2) in zip(calls[:len(bad)], calls[len(bad):]):
        assert k == k2
        _same((p, m, v), (p2, m2, v2))                       # called with the same vectors


def test_k_steps_refuse_mismatched_batches_naming_the_argument():
    args = _batches(3, np.float32, [3, 5, 4], 3, 4)
    with pytest.raises(ValueError, match="coefs"):
        q_steps(*args[:14], args[14][:2], _never)
    with pytest.raises(ValueError, match="coefs"):
        q_steps(*args[:14], args[14].astype(np.float64), _never)
    bad = list(args)
    bad[6] = args[6].copy()
    bad[6][2, 1] = 4                                         # an action out of range, batch 2
    with pytest.raises(ValueError, match=r"actions must be in \[0, 4\)"):
        q_steps(*bad, _never)
    bad = list(args)
    bad[7] = args[7][:, :3]                                  # returns of another batch size
    with pytest.raises(ValueError, match="returns"):
        q_steps(*bad, _never)
    bad = list(args)
    bad[5] = args[5][:2]                                     # 2 obs batches for 3
    with pytest.raises(ValueError, match="K=2"):
        q_steps(*bad, _never)
    ro = [a.copy() for a in args[:4]]
    ro[0].flags.writeable = False
    assert q_steps(*ro, *args[4:], _never) is None           # read-only: one step at a time


def test_non_arrays_and_float16_targets_are_named_errors():
    args = list(_problem(0, np.float32, [3, 5, 4], 4))
    bad = list(args)
    bad[7] = args[7].astype(np.float16)
    with pytest.raises(ValueError, match="returns must be float32 or float64"):
        q_step(*bad)
    bad = list(args)
    bad[5] = args[5].tolist()
    with pytest.raises(TypeError, match="obs must be a numpy array, got list"):
        q_step(*bad)
    kargs = list(_batches(0, np.float32, [3, 5, 4], 2, 4))
    bad = list(kargs)
    bad[8] = kargs[8].astype(np.float16)
    with pytest.raises(ValueError, match="discounts must be float32 or float64"):
        q_steps(*bad, _never)
    bad = list(kargs)
    bad[9] = kargs[9].tolist()
    with pytest.raises(TypeError, match="next_obs must be a numpy array, got list"):
        q_steps(*bad, _never)
