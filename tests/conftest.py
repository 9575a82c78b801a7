"""Shared pytest options and fixtures for hyperflux's tests."""
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Two cores here: one torch thread per test process keeps notebook tests from fighting each other.
os.environ.setdefault("OMP_NUM_THREADS", "1")


def pytest_addoption(parser):
    parser.addoption("--nb-flags", default="", help="space-separated nbdev test flags to run (e.g. 'slow')")
    parser.addoption("--run-slow", action="store_true", help="also run tests marked slow")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--run-slow"): return
    skip = pytest.mark.skip(reason="slow: run with `make test-slow`")
    for item in items:
        if "slow" in item.keywords: item.add_marker(skip)


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def venv_bin() -> Path:
    """The bin folder of the environment running the tests (the project's .venv under `make test`)."""
    import sys
    return Path(sys.executable).parent


def numbers(out: Path) -> tuple:
    """final.json and metrics.csv of a run folder without the wall-clock fields."""
    import json
    import pandas as pd
    final = json.loads((out / "final.json").read_text())
    final.pop("seconds")
    return final, pd.read_csv(out / "metrics.csv").drop(columns="seconds")


def metric_rows(out: Path) -> int:
    """How many epochs a run folder's metrics.csv holds so far (0 before the first)."""
    try: return max(0, len((out / "metrics.csv").read_text().splitlines()) - 1)
    except FileNotFoundError: return 0
