import os

import pytest
import torch
from hypothesis import HealthCheck, settings

import impl
from minimod.workbook.implementations import IMPLEMENTATIONS

# `ci`: derandomized and modest, so CI is fast and repeatable. `dev`: many more examples.
# Choose with HYPOTHESIS_PROFILE=dev (or `make test PROFILE=dev`).
settings.register_profile(
    "ci",
    max_examples=20,
    derandomize=True,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "dev",
    max_examples=200,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_addoption(parser):
    parser.addoption(
        "--impl",
        choices=IMPLEMENTATIONS,
        default="minimod",
        help="which code the tests check: minimod (default), the generated solutions/, "
        "or your own exercises/",
    )


def pytest_configure(config):
    impl.select(config.getoption("--impl"))
    torch.set_num_threads(min(2, torch.get_num_threads()))


def pytest_report_header(config):
    return f"minimod implementation under test: {config.getoption('--impl')}"


def pytest_collection_modifyitems(config, items):
    """Tests of minimod's own behaviour (e.g. error messages) don't belong to a lesson."""
    if config.getoption("--impl") == "minimod":
        return
    kept = [item for item in items if "reference_only" not in item.keywords]
    config.hook.pytest_deselected(items=[i for i in items if "reference_only" in i.keywords])
    items[:] = kept


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
