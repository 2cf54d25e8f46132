"""An operator and an auditor per test module (a module may define its own instead)."""
import pytest

from tests.support.people import bootstrap


@pytest.fixture(scope="module")
def operator(system):
    return bootstrap(system, "operator")


@pytest.fixture(scope="module")
def auditor(system):
    return bootstrap(system, "auditor")
