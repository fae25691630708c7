"""The acting fast paths (``gaussian._sample_log_prob``, ``sde._act_with_noise``,
``categorical._sample_log_prob``, used by ``ActorCriticNet.act``) against the public path
(build the distribution, sample / ``rsample_with_noise``, ``log_prob``) on adversarial input:
values at the thresholds of their sum-of-squares checks (~1.3e154 in float64, ~1.8e19 in
float32), std overflowing or underflowing float32 only, subnormals, -0.0, NaN/inf in one
argument, and arrays whose layout the fast paths do not normalize themselves (Fortran order,
strided, misaligned, read-only, byte-swapped). Equal means the same bits, types and generator
state, or the same exception type and message.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minirl.distributions import Categorical, DiagGaussian, StateDependentNoise
from minirl.distributions.categorical import _sample_log_prob as cat_fast
from minirl.distributions.gaussian import _sample_log_prob as gauss_fast
from minirl.distributions.sde import _act_with_noise as sde_fast

F32, F64 = np.float32, np.float64

# special values per dtype: the checks' thresholds, overflow / underflow of std and squares
SPECIAL = {
    F32: [0.0, -0.0, 1e-45, -1e-45, 1e-38, 1.0, -3.0, 1.8e19, 1.9e19, -1.9e19, 1e38,
          3.4028235e38, -3.4028235e38],
    F64: [0.0, -0.0, 5e-324, -5e-324, 2.2e-308, 1.0, -3.0, 1.3e154, 1.4e154, -1.4e154,
          1e300, 1.7976931348623157e308, -1.7976931348623157e308],
}
LOG_STD = {   # exp overflows / underflows float32 (not float64) from ~88 / ~-104
    F32: [0.0, -0.0, -20.0, 20.0, 44.0, 45.0, 88.0, 89.0, -87.0, -104.0, -110.0, -1e19,
          1.9e19],
    F64: [0.0, -0.0, -20.0, 20.0, 88.0, 89.0, -110.0, 354.0, 355.0, 710.0, -745.0, -800.0,
          1.4e154],
}
BAD = [np.nan, np.inf, -np.inf]
LAYOUTS = ["c", "fortran", "strided", "misaligned", "readonly", "byteswapped"]


def _layout(x: np.ndarray, kind: str) -> np.ndarray:
    if kind == "fortran":
        return np.asfortranarray(x)
    if kind == "strided":
        return np.repeat(x, 2, axis=-1)[..., ::2]
    if kind == "misaligned":
        buf = bytearray(x.nbytes + 1)
        y = np.frombuffer(buf, dtype=x.dtype, count=x.size, offset=1).reshape(x.shape)
        y[...] = x
        return y
    if kind == "readonly":
        y = x.copy()
        y.flags.writeable = False
        return y
    if kind == "byteswapped":
        return x.astype(x.dtype.newbyteorder())
    return x


def _bits(x):
    if isinstance(x, tuple):
        return tuple(_bits(y) for y in x)
    if isinstance(x, np.ndarray):
        return ("array", x.dtype.str, x.shape, x.tobytes())
    return (type(x).__name__, np.asarray(x).dtype.str, np.asarray(x).tobytes())


def _outcome(f, rng=None):
    with np.errstate(all="ignore"):
        try:
            out = ("ok", _bits(f()))
        except (ValueError, TypeError) as e:
            out = ("error", type(e).__name__, str(e))
    return out, (None if rng is None else rng.bit_generator.state["state"])


@st.composite
def _array(draw, shape, dtype, values, p_special):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.standard_normal(shape)
    mask = rng.random(shape) < p_special
    x = np.where(mask, rng.choice(np.array(values, F64), size=shape), x)
    if draw(st.integers(0, 3)) == 0 and x.size:    # at most one NaN/inf entry
        x.flat[draw(st.integers(0, x.size - 1))] = draw(st.sampled_from(BAD))
    with np.errstate(all="ignore"):
        return x.astype(dtype)


@given(data=st.data(), dtype=st.sampled_from([F32, F64]),
       shape=st.sampled_from([(1, 1), (2, 1), (3, 2), (1, 3), (0, 1), (1,), (2, 3, 2), (9, 1)]),
       full=st.booleans(), p=st.sampled_from([0.0, 0.3, 1.0]),
       layouts=st.tuples(st.sampled_from(LAYOUTS), st.sampled_from(LAYOUTS)),
       seed=st.integers(0, 2**32 - 1))
@settings(max_examples=300)
def test_gaussian_fast_path_equals_public_on_adversarial_input(data, dtype, shape, full, p,
                                                               layouts, seed):
    mean = data.draw(_array(shape, dtype, SPECIAL[dtype], p))
    log_std = data.draw(_array(shape if full else shape[-1:], dtype, LOG_STD[dtype], p))
    mean, log_std = _layout(mean, layouts[0]), _layout(log_std, layouts[1])

    def public():
        d = DiagGaussian(mean, log_std)
        a = d.sample(r_pub)
        return a, d.log_prob(a)

    r_pub, r_fast = np.random.default_rng(seed), np.random.default_rng(seed)
    assert _outcome(lambda: gauss_fast(mean, log_std, r_fast), r_fast) == \
        _outcome(public, r_pub)


@given(data=st.data(), dtype=st.sampled_from([F32, F64]),
       batch=st.sampled_from([(1,), (2,), (8,), (), (2, 3)]), D=st.integers(1, 3),
       F=st.sampled_from([1, 3, 64]), per_row=st.booleans(), relu=st.booleans(),
       p=st.sampled_from([0.0, 0.1, 1.0]),
       layouts=st.tuples(*[st.sampled_from(LAYOUTS)] * 4))
@settings(max_examples=300)
def test_sde_fast_path_equals_public_on_adversarial_input(data, dtype, batch, D, F, per_row,
                                                          relu, p, layouts):
    mean = data.draw(_array(batch + (D,), dtype, SPECIAL[dtype], p))
    log_std = data.draw(_array((F, D), dtype, LOG_STD[dtype], p))
    features = data.draw(_array(batch + (F,), dtype, SPECIAL[dtype], p))
    if relu:          # exact zeros (a ReLU trunk): NaN/inf noise entries meet 0 features
        features = np.where(features > 0, features, dtype(0))
    eps = data.draw(_array(batch + (F, D) if per_row else (F, D), dtype, SPECIAL[dtype], p / 4))
    args = [_layout(x, k) for x, k in zip((mean, log_std, features, eps), layouts)]

    def public():
        d = StateDependentNoise(*args[:3])
        a = d.rsample_with_noise(args[3])
        return a, d.log_prob(a)

    assert _outcome(lambda: sde_fast(*args)) == _outcome(public)


@pytest.mark.parametrize("dtype", [F32, F64])
@pytest.mark.parametrize("per_row", [False, True])
@pytest.mark.parametrize("bad", BAD)
def test_sde_fast_path_names_bad_noise_even_where_every_feature_is_zero(dtype, per_row, bad):
    # 0 * NaN = NaN in the matrix product: the action shows the bad noise, and both paths
    # raise the public error naming eps (no action computed from a skipped product)
    B, F, D = 4, 64, 2
    eps = np.random.default_rng(0).standard_normal((B, F, D) if per_row else (F, D))
    eps = eps.astype(dtype)
    eps[(0,) * eps.ndim] = bad
    args = (np.zeros((B, D), dtype), np.zeros((F, D), dtype), np.zeros((B, F), dtype), eps)
    with pytest.raises(ValueError, match="eps contains NaN or inf"):
        sde_fast(*args)
    with pytest.raises(ValueError, match="eps contains NaN or inf"):
        StateDependentNoise(*args[:3]).rsample_with_noise(eps)


@given(data=st.data(), dtype=st.sampled_from([F32, F64]),
       shape=st.sampled_from([(1, 3), (16, 3), (2, 3, 7), (5,), (4, 1), (0, 2)]),
       p=st.sampled_from([0.0, 0.3, 1.0]), layout=st.sampled_from(LAYOUTS),
       seed=st.integers(0, 2**32 - 1))
@settings(max_examples=200)
def test_categorical_fast_path_equals_public_on_adversarial_input(data, dtype, shape, p,
                                                                  layout, seed):
    logits = _layout(data.draw(_array(shape, dtype, SPECIAL[dtype], p)), layout)

    def public():
        d = Categorical._trusted(np.asarray(logits))
        a = d.sample(r_pub)
        return a, d.log_prob(a)

    r_pub, r_fast = np.random.default_rng(seed), np.random.default_rng(seed)
    assert _outcome(lambda: cat_fast(logits, r_fast), r_fast) == _outcome(public, r_pub)
