"""Shared test setup.

Markers: ``torch`` / ``torchvision`` tests skip cleanly when the extra is not installed (CI installs
it); ``slow`` campaigns run only with ``--run-slow``.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"


def pytest_addoption(parser):
    parser.addoption("--run-slow", action="store_true", help="run long fuzz/benchmark campaigns")


def pytest_collection_modifyitems(config, items):
    have = {name: importlib.util.find_spec(name) is not None for name in ("torch", "torchvision")}
    for item in items:
        for name in ("torch", "torchvision"):
            if name in item.keywords and not have[name]:
                item.add_marker(pytest.mark.skip(reason=f"{name} is not installed (pip install '.[torch]')"))
        if "slow" in item.keywords and not config.getoption("--run-slow"):
            item.add_marker(pytest.mark.skip(reason="slow campaign: run with --run-slow"))


@pytest.fixture(scope="session")
def lecture_numbers():
    """The known-numbers catalogue in ../shared (skip if this checkout has no shared/ beside it)."""
    import yaml

    path = SHARED / "lecture_numbers.yaml"
    if not path.exists():
        pytest.skip("../shared/lecture_numbers.yaml is not beside this checkout")
    data = yaml.safe_load(path.read_text())
    return {e["id"]: e for e in data["entries"]}
