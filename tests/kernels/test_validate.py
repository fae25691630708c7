"""Tests for kernels/_validate.py's scalar checks shared by kernels and objectives."""
import numpy as np
import pytest

from kernels._validate import as_float, finite_real, result_dtype


def test_finite_real_returns_a_float_and_names_the_argument():
    assert finite_real(np.float32(0.5), "lr") == 0.5 and type(finite_real(3, "lr")) is float
    for bad, err in ((True, TypeError), ("0.1", TypeError), (None, TypeError),
                     (float("nan"), ValueError), (-np.inf, ValueError)):
        with pytest.raises(err, match="^lr must be"):
            finite_real(bad, "lr")


def test_as_float_returns_clean_arrays_themselves_and_converts_the_rest():
    """The fast path (a C-contiguous native float32/64 ndarray) returns the array itself, as
    the two np.asarray calls it skips would; everything else is converted as before."""
    for dt in (np.float32, np.float64):
        x = np.arange(6, dtype=dt).reshape(2, 3)
        assert as_float(x, "x") is x and as_float(x, "x", dtype=dt) is x
        assert as_float(x[:, ::2], "x").flags.c_contiguous              # strided: a copy
        y = as_float(x, "x", dtype=np.float64)
        assert y.dtype == np.float64 and (y is x) == (dt is np.float64)
    big_endian = np.arange(3, dtype=">f8")
    out = as_float(big_endian, "x")
    assert out.dtype == np.float64 and np.array_equal(out, [0.0, 1.0, 2.0])
    assert as_float(np.arange(3), "x").dtype == np.float64
    with pytest.raises(ValueError, match="x contains NaN or inf"):
        as_float(np.array([1.0, np.nan], np.float32), "x")


def test_result_dtype_of_two_equal_float_dtypes():
    f32, f64 = np.zeros(2, np.float32), np.zeros(2)
    assert result_dtype(f32, f32) == np.float32 and result_dtype(f64, f64) == np.float64
    assert result_dtype(f32, f64) == np.float64 and result_dtype(f32, np.zeros(2, int)) == np.float32
    assert result_dtype(np.zeros(2, ">f4"), np.zeros(2, ">f4")) == np.float32
