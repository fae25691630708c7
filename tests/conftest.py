"""Test-suite settings that apply everywhere.

Hypothesis is derandomized (the same examples on every run and machine) and has no
deadline: the first example of a kernel test pays Numba's compile time.
"""
import os

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
