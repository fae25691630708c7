"""Hypothesis strategies for time-major rollouts ``[T, N]`` (and ``[T]``).

Shapes include the edges (T = 0, T = 1, N = 1, N = 0); episode flags come in patterns that a
uniform draw rarely hits (never done, always done, done only on the last row, both flags on
one step) as well as at random. Values are bounded so that float32 sums stay well inside
range and a tolerance can be stated.

    from minirl.testing.strategies import rollouts, discounts
    @given(rollouts(), discounts(), discounts())
    def test_gae(ro, gamma, lam): ...
"""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

FLAG_PATTERNS = ("random", "never", "always", "last_row", "both")


def rollout_shapes(max_T: int = 10, max_N: int = 6, min_T: int = 0,
                   min_N: int = 0) -> st.SearchStrategy[tuple[int, int]]:
    """``(T, N)`` with ``min_T <= T <= max_T`` and ``min_N <= N <= max_N``."""
    return st.tuples(st.integers(min_T, max_T), st.integers(min_N, max_N))


def discounts() -> st.SearchStrategy[float]:
    """A gamma or lambda in [0, 1], the endpoints and common values drawn often."""
    return st.one_of(st.sampled_from([0.0, 1.0, 0.5, 0.9, 0.99]),
                     st.floats(0.0, 1.0, allow_nan=False))


def float_arrays(shape, dtype=np.float64, bound: float = 10.0) -> st.SearchStrategy[np.ndarray]:
    """Finite arrays of ``dtype`` with entries in ``[-bound, bound]``."""
    dtype = np.dtype(dtype)
    return hnp.arrays(dtype, shape, elements=st.floats(-bound, bound, allow_nan=False,
                                                       allow_infinity=False,
                                                       width=8 * dtype.itemsize))


@st.composite
def flags(draw, shape, pattern: str | None = None) -> np.ndarray:
    """A bool array of ``shape`` in one of the patterns (random unless ``pattern`` is given)."""
    pattern = pattern or draw(st.sampled_from(("random", "never", "always", "last_row")))
    if pattern == "never":
        return np.zeros(shape, dtype=bool)
    if pattern == "always":
        return np.ones(shape, dtype=bool)
    if pattern == "last_row":
        out = np.zeros(shape, dtype=bool)
        if len(shape) and shape[0]:
            out[-1] = True
        return out
    return draw(hnp.arrays(np.bool_, shape))


@st.composite
def episode_flags(draw, shape) -> tuple[np.ndarray, np.ndarray]:
    """``(terminated, truncated)``; pattern "both" sets both flags on the same random steps."""
    pattern = draw(st.sampled_from(FLAG_PATTERNS))
    if pattern == "both":
        both = draw(flags(shape, "random"))
        return both, both.copy()
    return draw(flags(shape)), draw(flags(shape))


@st.composite
def rollouts(draw, max_T: int = 10, max_N: int = 6, min_T: int = 0, min_N: int = 0,
             dtypes=(np.float64, np.float32), allow_1d: bool = True) -> dict:
    """A rollout dict: ``rewards, values, next_values, terminated, truncated`` (+ ``shape``).

    All arrays share one shape, ``[T, N]`` or (if ``allow_1d``) ``[T]``; the float arrays share
    one dtype drawn from ``dtypes``. ``next_values`` is independent of ``values`` (the general
    case); use ``consistent_next_values`` for the ``next_values[t] == values[t+1]`` case.
    """
    T, N = draw(rollout_shapes(max_T, max_N, min_T, min_N))
    shape = (T,) if allow_1d and N == 1 and draw(st.booleans()) else (T, N)
    dtype = draw(st.sampled_from(dtypes))
    terminated, truncated = draw(episode_flags(shape))
    return {
        "shape": shape,
        "rewards": draw(float_arrays(shape, dtype)),
        "values": draw(float_arrays(shape, dtype)),
        "next_values": draw(float_arrays(shape, dtype)),
        "terminated": terminated,
        "truncated": truncated,
    }


def consistent_next_values(values: np.ndarray, next_values: np.ndarray,
                           terminated: np.ndarray, truncated: np.ndarray) -> np.ndarray:
    """``next_values`` with ``next_values[t] = values[t+1]`` wherever step t did not end.

    What a rollout collected from one critic looks like: inside an episode the next state is
    the next row's state. At episode ends and on the last row ``next_values`` is kept.
    """
    out = np.array(next_values, copy=True)
    if out.shape[0] > 1:
        inside = ~(terminated[:-1] | truncated[:-1])
        out[:-1] = np.where(inside, values[1:], out[:-1])
    return out
