"""Every bundled spec's `expect:` block, one test per spec: adding a spec with expect adds a test."""
from __future__ import annotations

import pytest

import archcalc
from archcalc.check import cases, check

NAMES = archcalc.bundled_names()


@pytest.mark.parametrize("name", NAMES)
def test_expect_block(name):
    spec = archcalc.load(name)
    outcomes = check(spec)
    assert cases(spec), f"{name} has no expect: block; every bundled spec must say which numbers it reproduces"
    bad = [f"{o.where}: {o.key} expected {o.expected!r}, got {o.actual!r} (line {o.line})" for o in outcomes if not o.ok]
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("name", NAMES)
def test_bundled_spec_has_source(name):
    spec = archcalc.load(name)
    assert spec.source and "\n" not in spec.source, "a bundled spec starts with a one-line source:"
