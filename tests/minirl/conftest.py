"""Fixtures shared by tests under tests/minirl."""
import pytest


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray (2 CPUs, no dashboard) for every Ray test of the run, shut down at the
    end; tests that use it are skipped when ray is not installed."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()
