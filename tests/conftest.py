import os

import pytest
import torch
from hypothesis import HealthCheck, settings

import impl
from minimod.workbook.catalogue import LESSONS
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
    """Against solutions/ or exercises/ only the lessons' tests run: tests of minimod's own
    behaviour (reference_only, e.g. error messages) and of code no lesson teaches are left out."""
    if config.getoption("--impl") == "minimod":
        return
    lesson_tests = {test for lesson in LESSONS for test in lesson.tests}

    def in_a_lesson(item) -> bool:
        path = item.nodeid.split("::")[0]
        return path in lesson_tests and "reference_only" not in item.keywords

    config.hook.pytest_deselected(items=[i for i in items if not in_a_lesson(i)])
    items[:] = [item for item in items if in_a_lesson(item)]


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
