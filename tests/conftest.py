"""Test-suite settings that apply everywhere.

Hypothesis is derandomized (the same examples on every run and machine) and has no
deadline: the first example of a kernel test pays Numba's compile time.
"""
import os

# One BLAS/OpenMP thread, set before NumPy is imported by any test module: minirl's networks
# are small, and a second BLAS thread on a shared 2-core machine makes them much slower.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
             "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from hypothesis import HealthCheck, settings

settings.register_profile(
    "minirl",
    derandomize=True,
    deadline=None,
    database=None,
    max_examples=int(os.environ.get("MINIRL_HYPOTHESIS_EXAMPLES", "100")),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
settings.load_profile("minirl")

# Ctrl-C tests (test_cli_interrupts, test_reliability, test_population, test_cli_resume) need
# SIGINT to behave as in a terminal. A shell starts background jobs (``cmd &`` without job
# control, e.g. a CI script or nohup) with SIGINT *ignored*, Python then installs no
# KeyboardInterrupt handler, and the ignore is inherited by every CLI subprocess: the tests
# would hang or fail for a reason outside minirl. Restore Python's own handler here; a Python
# handler (unlike SIG_IGN) is reset to the default across exec, so subprocesses start normal.
import signal as _signal

if _signal.getsignal(_signal.SIGINT) is _signal.SIG_IGN:
    _signal.signal(_signal.SIGINT, _signal.default_int_handler)
