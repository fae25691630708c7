"""Tests for kernels/_validate.py's scalar checks shared by kernels and objectives."""
import numpy as np
import pytest

from kernels._validate import finite_real


def test_finite_real_returns_a_float_and_names_the_argument():
    assert finite_real(np.float32(0.5), "lr") == 0.5 and type(finite_real(3, "lr")) is float
    for bad, err in ((True, TypeError), ("0.1", TypeError), (None, TypeError),
                     (float("nan"), ValueError), (-np.inf, ValueError)):
        with pytest.raises(err, match="^lr must be"):
            finite_real(bad, "lr")
