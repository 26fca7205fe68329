"""Shared test setup.

Markers: ``torch`` / ``torchvision`` / ``timm`` / ``pretrainedmodels`` tests skip cleanly when the extra is not installed; with
``ARCHCALC_REQUIRE_TORCH=1`` (set by .ci/run) they fail instead, so CI cannot pass by silently
skipping the cross-checks. ``slow`` campaigns run only with ``--run-slow``.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
# Each is a marker and a module of the `torch` extra: timm counts Inception-v4, and
# pretrained-models.pytorch (with six, which it imports but does not declare) BN-Inception.
OPTIONAL = ("torch", "torchvision", "timm", "pretrainedmodels")


def _require_torch() -> bool:
    return os.environ.get("ARCHCALC_REQUIRE_TORCH", "") not in ("", "0")


def _import_error(name: str) -> str | None:
    """Why ``name`` cannot be imported, or None if it can (a broken install counts as missing)."""
    if importlib.util.find_spec(name) is None:
        return f"{name} is not installed (pip install '.[torch]')"
    if _require_torch():
        try:
            importlib.import_module(name)
        except Exception as e:  # noqa: BLE001 - any import failure means the cross-check cannot run
            return f"{name} is installed but does not import: {type(e).__name__}: {e}"
    return None


_MISSING = pytest.StashKey[str]()


def pytest_addoption(parser):
    parser.addoption("--run-slow", action="store_true", help="run long fuzz/benchmark campaigns")


def pytest_collection_modifyitems(config, items):
    missing = {name: _import_error(name) for name in OPTIONAL if any(name in item.keywords for item in items)}
    for item in items:
        for name, why in missing.items():
            if why and name in item.keywords:
                if _require_torch():
                    item.stash[_MISSING] = f"ARCHCALC_REQUIRE_TORCH=1 but {why}"
                else:
                    item.add_marker(pytest.mark.skip(reason=why))
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


def pytest_runtest_setup(item):
    why = item.stash.get(_MISSING, None)
    if why:
        pytest.fail(why, pytrace=False)


def require_extra(env: str, why: str):
    """Skip the calling test for a missing optional tool, or fail it when the environment variable
    ``env`` is set (.ci/run sets ARCHCALC_REQUIRE_PLOT and ARCHCALC_REQUIRE_BROWSER), so CI cannot
    pass by skipping the pictures or the headless-browser test."""
    if os.environ.get(env, "") not in ("", "0"):
        pytest.fail(f"{env}=1 but {why}", pytrace=False)
    pytest.skip(why, allow_module_level=True)  # also called at a test module's top
