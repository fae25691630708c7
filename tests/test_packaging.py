"""The installed `kernels` and `minirl` must be this checkout's, not same-named PyPI projects."""
import re
from pathlib import Path

import kernels
import minirl

ROOT = Path(__file__).resolve().parents[1]


def test_kernels_imports_from_this_checkout():
    assert Path(kernels.__file__).resolve().parent == ROOT / "kernels"


def test_minirl_imports_from_this_checkout():
    assert Path(minirl.__file__).resolve().parent == ROOT / "minirl"


def test_distribution_name_is_not_a_pypi_homonym():
    from importlib.metadata import distribution, packages_distributions

    def canonical(name):  # PEP 503: runs of -, _ and . are equivalent
        return re.sub(r"[-_.]+", "-", name).lower()

    owners = packages_distributions()
    assert {canonical(d) for d in owners.get("kernels", [])} == {"minirl-numeric-reference"}
    assert {canonical(d) for d in owners.get("minirl", [])} == {"minirl-numeric-reference"}
    assert distribution("minirl-numeric-reference").version == minirl.__version__
