"""Tests for kernels/replay.py: ring-buffer indices, SumTree, PER weights."""
import numpy as np
import pytest
import scipy.stats
from hypothesis import given
from hypothesis import strategies as st

from kernels.replay import (SumTree, per_weights, per_weights_reference,
                            prefix_sum_search_reference, uniform_indices,
                            uniform_indices_reference, valid_starts_reference)


# ----------------------------------------------------------------------------- uniform
def test_valid_starts_docstring_example():
    # capacity 8, full, pos 3, n_step 2: slot 3 is being written, slot 2 is the newest
    np.testing.assert_array_equal(valid_starts_reference(8, 8, 3, 2), [4, 5, 6, 7, 0, 1])
    # not yet full: slots 0..4 hold data, slot 5 is next; windows of 3 start at 0, 1, 2
    np.testing.assert_array_equal(valid_starts_reference(5, 8, None, 3), [0, 1, 2])
    # flat buffer: 0 .. size - n_step
    np.testing.assert_array_equal(valid_starts_reference(4, None, None, 2), [0, 1, 2])


@st.composite
def ring(draw):
    capacity = draw(st.integers(1, 40))
    size = draw(st.integers(0, capacity))
    pos = draw(st.one_of(st.none(), st.integers(0, capacity - 1)))
    n_step = draw(st.integers(1, 6))
    return capacity, size, pos, n_step


@given(ring(), st.integers(0, 2**32 - 1))
def test_uniform_indices_only_valid_starts_and_equal_reference(case, seed):
    capacity, size, pos, n_step = case
    starts = valid_starts_reference(size, capacity, pos, n_step)
    kw = dict(capacity=capacity, pos=pos, n_step=n_step)
    if starts.size == 0:
        with pytest.raises(ValueError, match="no valid start"):
            uniform_indices(seed, size, 8, **kw)
        return
    got = uniform_indices(seed, size, 64, **kw)
    assert got.dtype == np.int64 and got.shape == (64,)
    assert np.isin(got, starts).all()
    write = (size % capacity) if pos is None else pos
    if size == capacity:
        assert not (got == write).any()  # the slot about to be overwritten
    np.testing.assert_array_equal(got, uniform_indices_reference(seed, size, 64, **kw))


def test_uniform_indices_frequencies_are_uniform_over_valid_starts():
    kw = dict(capacity=10, pos=3, n_step=3)
    starts = valid_starts_reference(10, **kw)  # 9 usable (slot 3 excluded), 7 valid starts
    assert len(starts) == 7
    got = uniform_indices(np.random.default_rng(123), 10, 70_000, **kw)
    counts = np.bincount(got, minlength=10)
    assert counts[np.setdiff1d(np.arange(10), starts)].sum() == 0
    assert scipy.stats.chisquare(counts[starts]).pvalue > 1e-3


def test_uniform_indices_flat_and_empty_batch():
    got = uniform_indices(0, 5, 1000, n_step=2)
    assert got.min() == 0 and got.max() == 3
    assert uniform_indices(0, 5, 0).shape == (0,)


def test_uniform_indices_bad_input():
    with pytest.raises(TypeError, match="rng_or_seed"):
        uniform_indices(0.5, 10, 4)
    with pytest.raises(TypeError, match="size"):
        uniform_indices(0, 10.0, 4)
    with pytest.raises(ValueError, match="size"):
        uniform_indices(0, -1, 4)
    with pytest.raises(ValueError, match="size"):
        uniform_indices(0, 11, 4, capacity=10)
    with pytest.raises(ValueError, match="batch_size"):
        uniform_indices(0, 10, -1)
    with pytest.raises(TypeError, match="batch_size"):
        uniform_indices(0, 10, None)
    with pytest.raises(ValueError, match="capacity"):
        uniform_indices(0, 0, 4, capacity=0)
    with pytest.raises(ValueError, match="pos"):
        uniform_indices(0, 10, 4, capacity=10, pos=10)
    with pytest.raises(ValueError, match="pos"):
        uniform_indices(0, 10, 4, pos=3)  # pos without capacity
    with pytest.raises(ValueError, match="n_step"):
        uniform_indices(0, 10, 4, n_step=0)
    with pytest.raises(ValueError, match="no valid start"):
        uniform_indices(0, 3, 4, n_step=4)
    with pytest.raises(ValueError, match="no valid start"):
        uniform_indices(0, 1, 4, capacity=1)  # the only slot is the one being written
    with pytest.raises(ValueError, match="no valid start"):
        uniform_indices(0, 0, 4)


# ----------------------------------------------------------------------------- sum tree
def _exact_priorities(draw, n):
    # multiples of 1/8 up to 64: every sum is exact, so tree and flat loop agree bit for bit
    return [draw(st.integers(0, 512)) / 8 for _ in range(n)]


@st.composite
def tree_history(draw):
    capacity = draw(st.integers(1, 37))
    batches = []
    for _ in range(draw(st.integers(1, 4))):
        b = draw(st.integers(0, 2 * capacity))
        idx = [draw(st.integers(0, capacity - 1)) for _ in range(b)]
        batches.append((idx, _exact_priorities(draw, b)))
    return capacity, batches


def _flat_replay(capacity, batches):
    p = np.zeros(capacity)
    for idx, prio in batches:
        for i, v in zip(idx, prio):  # in order: the last write wins
            p[i] = v
    return p


@given(tree_history(), st.lists(st.floats(0, 1, exclude_max=True), min_size=1, max_size=20))
def test_sum_tree_equals_flat_prefix_sum_search(case, fractions):
    capacity, batches = case
    tree = SumTree(capacity)
    for idx, prio in batches:
        tree.update(np.array(idx, dtype=np.int64), np.array(prio))
    p = _flat_replay(capacity, batches)
    np.testing.assert_array_equal(tree.priorities, p)
    assert tree.total == p.sum()
    assert len(tree) == capacity
    positive = p[p > 0]
    assert tree.min == (positive.min() if positive.size else np.inf)
    if tree.total == 0:
        with pytest.raises(ValueError, match="total"):
            tree.sample(3, 0)
        return
    u = np.array(fractions) * tree.total
    idx, prio = tree.find(u)
    np.testing.assert_array_equal(idx, prefix_sum_search_reference(p, u))
    np.testing.assert_array_equal(prio, p[idx])
    assert (prio > 0).all()


@given(st.integers(1, 300), st.integers(0, 2**32 - 1))
def test_sum_tree_total_tracks_sum_for_arbitrary_floats(capacity, seed):
    rng = np.random.default_rng(seed)
    tree = SumTree(capacity)
    p = np.zeros(capacity)
    for _ in range(5):
        idx = rng.integers(0, capacity, rng.integers(1, 2 * capacity + 1))
        prio = rng.exponential(size=idx.size) * rng.choice([1e-3, 1.0, 1e3])
        tree.update(idx, prio)
        for i, v in zip(idx, prio):
            p[i] = v
        assert tree.total == pytest.approx(p.sum(), rel=1e-13, abs=0)
    # a stratified sample is the search of its own u's: one draw in each equal segment
    B = 16
    got_idx, got_prio = tree.sample(B, np.random.default_rng(seed))
    u = (np.arange(B) + np.random.default_rng(seed).random(B)) * (tree.total / B)
    u = np.minimum(u, np.nextafter(tree.total, 0))
    cum = np.cumsum(p)
    tol = 1e-12 * tree.total  # tree and flat cumsum round differently only at boundaries
    for j in range(B):
        i = got_idx[j]
        lo = cum[i - 1] if i > 0 else 0.0
        assert lo - tol <= u[j] < cum[i] + tol and got_prio[j] == p[i] > 0


def test_sum_tree_literals_duplicates_and_capacity_one():
    tree = SumTree(5)
    tree.update([0, 1, 2, 3, 4], [1.0, 2.0, 0.0, 3.0, 4.0])
    assert tree.total == 10.0 and tree.min == 1.0
    idx, prio = tree.find([0.0, 0.999, 1.0, 2.999, 3.0, 6.0, 9.999])
    np.testing.assert_array_equal(idx, [0, 0, 1, 1, 3, 4, 4])  # slot 2 (p = 0) never
    tree.update(np.array([2, 2, 2]), np.array([1.0, 5.0, 0.5]))  # last write wins
    assert tree.priorities[2] == 0.5 and tree.total == 10.5 and tree.min == 0.5
    tree.update(np.array([0, 2]), 0.0)  # scalar broadcast; zeros leave the min
    assert tree.min == 2.0 and tree.total == 9.0
    one = SumTree(1)
    assert one.total == 0.0 and one.min == np.inf
    one.update([0], [0.25])
    np.testing.assert_array_equal(one.sample(4, 0)[0], [0, 0, 0, 0])
    assert one.sample(0, 0)[0].shape == (0,)


def test_sum_tree_sampling_frequencies_match_priorities():
    p = np.array([1.0, 2.0, 3.0, 4.0, 0.0, 5.0, 1.0, 0.5, 7.0])  # 9: not a power of two
    tree = SumTree(p.size)
    tree.update(np.arange(p.size), p)
    rng = np.random.default_rng(2024)
    draws = np.concatenate([tree.sample(64, rng)[0] for _ in range(1500)])
    counts = np.bincount(draws, minlength=p.size)
    assert counts[4] == 0
    nz = p > 0
    expected = p[nz] / p.sum() * draws.size
    assert scipy.stats.chisquare(counts[nz], expected).pvalue > 1e-3


def test_sum_tree_bad_input():
    with pytest.raises(ValueError, match="capacity"):
        SumTree(0)
    with pytest.raises(TypeError, match="capacity"):
        SumTree(4.0)
    tree = SumTree(4)
    with pytest.raises(TypeError, match="indices"):
        tree.update(np.array([0.0]), [1.0])
    with pytest.raises(ValueError, match="indices"):
        tree.update([4], [1.0])
    with pytest.raises(ValueError, match="indices"):
        tree.update([-1], [1.0])
    with pytest.raises(ValueError, match="priorities"):
        tree.update([0], [-1.0])
    with pytest.raises(ValueError, match="priorities"):
        tree.update([0], [np.nan])
    with pytest.raises(ValueError, match="priorities"):
        tree.update([0, 1], [1.0, 2.0, 3.0])
    with pytest.raises(TypeError, match="priorities"):
        tree.update([0], ["a"])
    with pytest.raises(ValueError, match="total"):
        tree.sample(2, 0)  # nothing written yet
    tree.update([1], [2.0])
    with pytest.raises(TypeError, match="rng"):
        tree.sample(2, "seed")
    with pytest.raises(ValueError, match="batch_size"):
        tree.sample(-1, 0)
    with pytest.raises(ValueError, match="u"):
        tree.find([2.0])  # u must be < total
    with pytest.raises(ValueError, match="u"):
        tree.find([-0.5])
    with np.errstate(over="ignore"):  # (warns only under NUMBA_DISABLE_JIT=1)
        tree.update([0, 3], [1e308, 1e308])  # finite priorities whose sum overflows
    with pytest.raises(ValueError, match="overflowed"):
        tree.sample(2, 0)


# ----------------------------------------------------------------------------- PER weights
def test_per_weights_literals():
    # (p_i / p_min)^(-beta): 1, 2^-0.5, 4^-0.5
    np.testing.assert_allclose(per_weights([1.0, 2.0, 4.0], 10.0, 5, 0.5, min_priority=1.0),
                               [1.0, 2 ** -0.5, 0.5], rtol=1e-15)
    # the paper's global normalization vs the batch's: batch max is at p = 2
    np.testing.assert_allclose(per_weights([2.0, 4.0], 10.0, 5, 1.0, min_priority=1.0),
                               [0.5, 0.25], rtol=1e-15)
    np.testing.assert_allclose(per_weights([2.0, 4.0], 10.0, 5, 1.0, min_priority=None),
                               [1.0, 0.5], rtol=1e-15)
    np.testing.assert_array_equal(per_weights([3.0, 9.0], 12.0, 4, 0.0, min_priority=1.0), 1.0)
    assert per_weights([], 1.0, 1, 0.4, min_priority=None).shape == (0,)


def test_per_weights_log_space_survives_extreme_probabilities():
    # size * P(i) = 1e6 * 1e-300 / 1: the direct power underflows or overflows
    w = per_weights([1e-300, 1e-299], 1.0, 10**6, 0.9, min_priority=1e-300)
    np.testing.assert_allclose(w, [1.0, 10 ** -0.9], rtol=1e-12)


@given(st.lists(st.floats(1e-3, 1e3), min_size=1, max_size=30), st.floats(0, 1),
       st.integers(1, 10**6), st.booleans())
def test_per_weights_equal_reference(p, beta, size, global_norm):
    p = np.array(p)
    total = p.sum() * 3.0
    mp = p.min() / 2 if global_norm else None
    np.testing.assert_allclose(per_weights(p, total, size, beta, min_priority=mp),
                               per_weights_reference(p, total, size, beta, min_priority=mp),
                               rtol=1e-12)


def test_per_weights_bad_input():
    ok = dict(total=10.0, size=5, beta=0.5, min_priority=1.0)
    with pytest.raises(ValueError, match="priorities"):
        per_weights([0.0, 1.0], **ok)
    with pytest.raises(ValueError, match="priorities"):
        per_weights([np.inf], **ok)
    with pytest.raises(TypeError, match="priorities"):
        per_weights(["a"], **ok)
    with pytest.raises(ValueError, match="total"):
        per_weights([1.0], **{**ok, "total": 0.0})
    with pytest.raises(TypeError, match="total"):
        per_weights([1.0], **{**ok, "total": "10"})
    with pytest.raises(ValueError, match="size"):
        per_weights([1.0], **{**ok, "size": 0})
    with pytest.raises(TypeError, match="size"):
        per_weights([1.0], **{**ok, "size": 5.0})
    with pytest.raises(ValueError, match="beta"):
        per_weights([1.0], **{**ok, "beta": -0.1})
    with pytest.raises(ValueError, match="beta"):
        per_weights([1.0], **{**ok, "beta": np.nan})
    with pytest.raises(ValueError, match="min_priority"):
        per_weights([1.0], **{**ok, "min_priority": 0.0})
    with pytest.raises(ValueError, match="min_priority"):
        per_weights([1.0], **{**ok, "min_priority": 2.0})  # larger than a sampled priority
    with pytest.raises(TypeError, match="min_priority"):
        per_weights([1.0], 10.0, 5, 0.5)  # the normalization must be chosen
