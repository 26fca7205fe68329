"""The xla profile and archcalc/fit_xla.py by hand arithmetic, and `archcalc fit --framework jax`
(no jax needed: tests/test_build_jax.py compares the same model with XLA's memory_analysis)."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import archcalc
from archcalc.cli import main
from archcalc.fit_xla import XLA, XlaConstants, constants_from_env, fit

NET = """name: t
input: [2, 4, 4]
layers:
  - conv c: {out: 4, k: 3, p: 1, act: relu}
  - maxpool p: {k: 2, s: 2}
  - fc f: {out: 3}
"""


def test_xla_profile_keeps_masks_and_no_pool_indices():
    spec = archcalc.parse(NET)
    pt, xla = archcalc.analyze(spec), archcalc.analyze(spec, profile="xla")
    # relu: + a 1-byte mask of its 4 x 4 x 4 = 64 elements; maxpool: - int64 indices of 4 x 2 x 2
    assert xla.saved_bytes - pt.saved_bytes == 64 * 1 - 16 * 8


def test_arguments_and_peak_by_hand():
    report = archcalc.analyze(archcalc.parse(NET), batch=3, profile="xla")
    f = fit(report, batch=3, optimizer="momentum")
    items = {i.name: i.bytes for i in f.items}
    params = 4 * 2 * 9 + 4 + 16 * 3 + 3  # conv weights + biases, fc weights + biases
    assert report.totals.params == params
    assert items["weights"] == 4 * params and items["optimizer state"] == 4 * params
    assert items["input"] == 3 * 2 * 4 * 4 * 4 and items["labels and key"] == 3 * 4
    # start of backward: the conv input is the caller's; kept: the relu output (read by the pool,
    # 64 floats), its mask (64 B), the pool output (fc's input, 16 floats), the logits' gradient (3)
    start = 8 * params + 3 * (2 * 16 * 4 + 4) + 3 * (64 * 4 + 64 + 16 * 4 + 3 * 4)
    assert f.peak_bytes >= start
    adam = fit(report, batch=3, optimizer="adam")
    assert adam.peak_bytes - f.peak_bytes == 4 * params + 4  # the second moment and the step count


def test_fit_needs_the_xla_profile():
    with pytest.raises(ValueError, match="profile='xla'"):
        fit(archcalc.analyze(archcalc.parse(NET)), batch=1)


def test_capacity_from_jax_environment():
    assert constants_from_env({}) == XLA
    gib = 2**30
    assert XLA.capacity(16 * gib) == 12 * gib and XLA.preallocated(16 * gib) == 12 * gib
    c = constants_from_env({"XLA_PYTHON_CLIENT_MEM_FRACTION": ".5", "XLA_PYTHON_CLIENT_PREALLOCATE": "false"})
    assert c == XlaConstants(mem_fraction=0.5, preallocate=False)
    assert c.capacity(16 * gib) == 8 * gib and c.preallocated(16 * gib) == 0
    assert constants_from_env({"XLA_CLIENT_MEM_FRACTION": "0.9"}).mem_fraction == 0.9
    platform = constants_from_env({"XLA_PYTHON_CLIENT_ALLOCATOR": "platform"})
    assert platform.capacity(16 * gib) == 16 * gib and platform.preallocated(16 * gib) == 0
    for bad in ({"XLA_PYTHON_CLIENT_MEM_FRACTION": "1.5"}, {"XLA_PYTHON_CLIENT_PREALLOCATE": "maybe"},
                {"XLA_PYTHON_CLIENT_ALLOCATOR": "cuda"}):
        with pytest.raises(ValueError):
            constants_from_env(bad)


def _fit_json(env, *args):
    r = CliRunner().invoke(main, ["fit", "resnet50_tv", "--framework", "jax", "--memory", "16GiB", *args,
                                  "--format", "json"], env=env)
    assert r.exit_code == 0, r.output
    return json.loads(r.output)


def test_cli_verdict_follows_the_fraction():
    base = _fit_json({}, "--batch", "160")
    assert base["capacity_bytes"] == 12 * 2**30 and base["xla"]["preallocated_bytes"] == 12 * 2**30
    assert base["fits"] is False  # 160 is above the largest batch at 75%
    more = _fit_json({"XLA_PYTHON_CLIENT_MEM_FRACTION": "1"}, "--batch", "160")
    assert more["capacity_bytes"] == 16 * 2**30 and more["fits"] is True
    assert more["max_batch"] > base["max_batch"] >= 1
    lazy = _fit_json({"XLA_PYTHON_CLIENT_PREALLOCATE": "false"}, "--batch", "160")
    assert lazy["capacity_bytes"] == base["capacity_bytes"] and lazy["xla"]["preallocated_bytes"] == 0


def test_cli_bad_environment_is_one_line():
    r = CliRunner().invoke(main, ["fit", "alexnet", "--framework", "jax", "--gpu", "v100-16gb"],
                           env={"XLA_PYTHON_CLIENT_MEM_FRACTION": "abc"})
    assert r.exit_code == 2 and "XLA_PYTHON_CLIENT_MEM_FRACTION" in r.output and "Traceback" not in r.output
