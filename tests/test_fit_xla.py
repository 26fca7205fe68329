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


def test_xla_profile_keeps_what_xla_keeps():
    spec = archcalc.parse(NET)
    pt, xla = archcalc.analyze(spec), archcalc.analyze(spec, profile="xla")
    # PyTorch: the conv input (2 x 4 x 4), the in-place relu's output (4 x 4 x 4, the pool's input
    # too), int64 pool indices (4 x 2 x 2) and the fc input (the pool output)
    assert pt.saved_bytes == 4 * (32 + 64 + 16) + 8 * 16
    # XLA: the conv input transposed (32), the relu's pre-activation (64, not a mask), the pool's
    # input (64) and output (16, shared with the fc's input), no indices
    assert xla.saved_bytes == 4 * (32 + 64 + 64 + 16)


def test_arguments_and_peak_by_hand():
    report = archcalc.analyze(archcalc.parse(NET), batch=3, profile="xla")
    f = fit(report, batch=3, optimizer="momentum")
    items = {i.name: i.bytes for i in f.items}
    params = 4 * 2 * 9 + 4 + 16 * 3 + 3  # conv weights + biases, fc weights + biases
    assert report.totals.params == params
    assert items["weights"] == 4 * params and items["optimizer state"] == 4 * params
    assert items["input"] == 3 * 2 * 4 * 4 * 4 and items["labels and key"] == 3 * 4
    args = 8 * params + 3 * 2 * 16 * 4 + 3 * 4
    # weight copies in temp: the conv kernel (72 floats: no earlier layer's buffer can take it)
    # and the conv bias (4: the fc bias's buffer, 3 floats, is too small); the fc kernel's copy
    # goes into the conv kernel's buffer, the fc bias's into the conv bias's
    copies = 4 * (72 + 4)
    assert items["weight copies"] == copies
    # the peak is the pool's backward: the transposed conv input (32 floats per sample), the
    # pre-activation (64), the pool output (16; its input is recomputed from the pre-activation),
    # the pool output's gradient (16) and the conv output's (64); the logits' gradient is gone
    assert f.phase == "backward (p)"
    assert f.peak_bytes == args + copies + 3 * 4 * (32 + 64 + 16 + 16 + 64)
    adam = fit(report, batch=3, optimizer="adam")
    assert adam.peak_bytes - f.peak_bytes == 4 * params + 4  # the second moment and the step count


def test_weight_copies_take_free_parameter_buffers():
    """Copies go into an earlier layer's parameter buffer when it is large enough, else into temp;
    a transposed kernel may also take its own layer's buffer."""
    from archcalc.fit_xla import _weight_copies

    spec = archcalc.parse("name: t\ninput: [4, 8, 8]\nlayers:\n  - conv a: {out: 8, k: 3, p: 1, bias: false}\n"
                          "  - conv b: {out: 8, k: 3, p: 1, bias: false}\n  - conv c: {out: 4, k: 1, bias: false}\n")
    rows = [r for r in archcalc.analyze(spec, profile="xla").rows]
    a, b, c = 4 * 9 * 4 * 8, 4 * 9 * 8 * 8, 4 * 8 * 4  # kernel bytes
    # b's copy (largest): no earlier buffer as large -> temp; b's transposed kernel: its own buffer;
    # a's copy: temp; c's copy: a's buffer; c's transposed kernel: c's own (a's is taken)
    assert _weight_copies(rows, 4) == {1: a, 2: b}
    assert (a, b, c) == (1152, 2304, 128)


def test_activation_after_batch_norm_keeps_nothing():
    bn = archcalc.analyze(archcalc.parse(NET.replace("act: relu", "bn: true, act: relu")), profile="xla")
    # the conv input transposed (32) and the batch norm's input (64) and statistics (2 x 4 fp32)
    assert bn.rows[1].mem.saved and sum(s.elems * (s.itemsize or 4) for s in bn.rows[1].mem.saved) == \
        4 * (32 + 64) + 4 * 2 * 4


def test_grouped_conv_gradient_is_dense():
    from archcalc.fit_xla import _dense_kernel_bytes

    spec = archcalc.parse("name: t\ninput: [16, 8, 8]\nlayers:\n  - dwconv d: {k: 5, p: 2}\n"
                          "  - conv g: {out: 16, k: 3, p: 1, g: 4}\n  - conv p: {out: 8, k: 1}\n")
    rows = archcalc.analyze(spec, profile="xla").rows
    assert [_dense_kernel_bytes(r, 4) for r in rows[1:]] == [4 * 25 * 16 * 16, 4 * 9 * 16 * 16, 0]
    f = fit(archcalc.analyze(spec, batch=1, profile="xla"), batch=1)
    assert dict((i.name, i.bytes) for i in f.items)["grouped-conv weight gradient"] == 2 * 4 * 25 * 16 * 16


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
