"""RegNet X and Y (specs/regnet_x_400mf.yaml, blocks/regnet.yaml) against torchvision.

Two kinds of checks:

- The design-space rule. The spec computes its stages from (d, w0, wa, wm, g) itself (which
  blocks share a rounded exponent, by a comparison of integer powers; the widths by rounding and
  make_divisible). For every member the test runs torchvision's own rule
  (``BlockParams.from_init_params``) on the spec's args and compares its stage widths, depths and
  group widths with the archcalc rows; an independent float64 evaluation of the paper's equations
  (with a logarithm) must agree too.
- The network. Parameters and BN buffers for every member (model construction only); MACs =
  FlopCounterMode / 2, the output shape of every Conv2d/Linear in execution order, and the
  elements and bytes autograd keeps for backward (train mode) for regnet_x_400mf and
  regnet_y_400mf in the default run, for every member with --run-slow.
"""
from __future__ import annotations

import math

import pytest

import archcalc

try:  # imported lazily so that the core test run works without the torch extra
    import torch
    import torchvision
    from torchvision.models.regnet import BlockParams
except ImportError:  # pragma: no cover - conftest skips (or, in CI, fails) the marked tests
    torch = None

from test_torchvision import first_difference, run, stat_buffers, weighted_shapes, with_fused_dropout  # noqa: E402
from test_torch_layers import torch_saved  # noqa: E402

pytestmark = [pytest.mark.torch, pytest.mark.torchvision]

X = ["regnet_x_400mf", "regnet_x_800mf", "regnet_x_1_6gf", "regnet_x_3_2gf", "regnet_x_8gf"]
Y = ["regnet_y_400mf", "regnet_y_800mf", "regnet_y_1_6gf", "regnet_y_3_2gf", "regnet_y_8gf"]
MEMBERS = X + Y
SMALLEST = ("regnet_x_400mf", "regnet_y_400mf")  # full checks in the default run

# The design-space points as torchvision writes them (regnet.py: depth, w_0, w_a, w_m, group_width,
# se_ratio): an independent source for the spec's args.
TORCHVISION_POINTS = {
    "regnet_x_400mf": (22, 24, 24.48, 2.54, 16, None),
    "regnet_x_800mf": (16, 56, 35.73, 2.28, 16, None),
    "regnet_x_1_6gf": (18, 80, 34.01, 2.25, 24, None),
    "regnet_x_3_2gf": (25, 88, 26.31, 2.25, 48, None),
    "regnet_x_8gf": (23, 80, 49.56, 2.88, 120, None),
    "regnet_y_400mf": (16, 48, 27.89, 2.09, 8, 0.25),
    "regnet_y_800mf": (14, 56, 38.84, 2.4, 16, 0.25),
    "regnet_y_1_6gf": (27, 48, 20.71, 2.65, 24, 0.25),
    "regnet_y_3_2gf": (21, 80, 42.63, 2.66, 24, 0.25),
    "regnet_y_8gf": (17, 192, 76.82, 2.19, 56, 0.25),
}


def full(names):
    """The default run checks SMALLEST; every other member is marked slow."""
    return [n if n in SMALLEST else pytest.param(n, marks=pytest.mark.slow) for n in names]


def build(name):
    torch.manual_seed(0)
    return getattr(torchvision.models, name)(weights=None)


def stages(report):
    """Per stage (stage1 .. stage4): (width, blocks, group width of its 3x3 convs), from the rows."""
    found = {}
    for r in report.rows:
        parts = r.path.split("/")
        if r.type == "conv" and parts[0].startswith("stage") and parts[-1] == "b" and parts[-2] == "f":
            width, groups = r.out[0], r.args["g"]
            entry = found.setdefault(parts[0], [width, 0, width // groups])
            assert entry[0] == width and entry[2] == width // groups, r.path
            entry[1] += 1
    return [tuple(found[s]) for s in sorted(found)]


# ---------------------------------------------------------------- the design-space rule


def test_the_family_is_the_ten_members_and_its_args_are_torchvisions_points():
    assert archcalc.spec.variant_names(archcalc.spec.bundled_text("regnet_x_400mf")) == MEMBERS[1:]
    for name, (d, w0, wa, wm, g, se) in TORCHVISION_POINTS.items():
        args = archcalc.load(name).args
        assert (args["depth"], args["w0"], args["wa"], args["wm"], args["g"]) == (d, w0, wa, wm, g), name
        assert args["se"] == (se or 0), name


@pytest.mark.parametrize("name", MEMBERS)
def test_stages_are_torchvisions_rule_applied_to_the_spec_args(name):
    spec = archcalc.load(name)
    a = spec.args
    rule = BlockParams.from_init_params(depth=a["depth"], w_0=a["w0"], w_a=a["wa"], w_m=a["wm"],
                                        group_width=a["g"], se_ratio=a["se"] or None)
    assert stages(archcalc.analyze(spec)) == list(zip(rule.widths, rule.depths, rule.group_widths))


def paper_rule(d, w0, wa, wm, g):
    """Radosavovic et al. 2020, eqs. 2-4 in float64, then torchvision's compatibility step (b = 1)."""
    u = [w0 + wa * j for j in range(d)]
    k = [round(math.log(x / w0) / math.log(wm)) for x in u]
    widths = [round(w0 * wm ** kj / 8) * 8 for kj in k]
    out = []
    for w in widths:  # consecutive equal widths form a stage
        if out and out[-1][0] == w:
            out[-1][1] += 1
        else:
            out.append([w, 1])
    result = []
    for w, n in out:
        gw = min(g, w)
        q = max(gw, int(w + gw / 2) // gw * gw)  # torchvision's _make_divisible
        if q < 0.9 * w:
            q += gw
        result.append((q, n, gw))
    return result


@pytest.mark.parametrize("name", MEMBERS)
def test_stages_are_the_papers_equations(name):
    a = archcalc.load(name).args
    ours = stages(archcalc.analyze(archcalc.load(name)))
    assert paper_rule(a["depth"], a["w0"], a["wa"], a["wm"], a["g"]) == ours
    assert len(ours) == 4  # four stages, at rounded exponents 0, 1, 2, 3 (the spec's k)


def test_blocks_are_numbered_over_the_network():
    # stageN/block_{j+1}/unit is block j of the paper's rule: regnet_x_400mf's d = 22 blocks
    # are 1 + 2 + 7 + 12 (its comment's hand derivation), numbered 1 .. 22 across the stages
    report = archcalc.analyze(archcalc.load("regnet_x_400mf"))
    units = [r.path.split("/")[:2] for r in report.rows if r.path.endswith("/unit/f/a")]
    assert [int(b[len("block_"):]) for _, b in units] == list(range(1, 23))
    assert [s for s, _ in units] == ["stage1"] + ["stage2"] * 2 + ["stage3"] * 7 + ["stage4"] * 12


@pytest.mark.parametrize("name", Y)
def test_the_y_squeeze_is_a_quarter_of_the_block_input(name):
    # torchvision: SqueezeExcitation(w_b, int(round(0.25 * width_in))), width_in the block's input:
    # the previous stage's width (the stem's 32) for a stage's first block, else the stage's own
    report = archcalc.analyze(archcalc.load(name))
    rows = {r.path: r for r in report.rows}
    width_in = 32  # the stem's; then each block's input is the previous block's output
    checked = 0
    for r in report.rows:
        if r.path.endswith("/unit/f/se/scale/fc1"):
            unit = r.path[: -len("/f/se/scale/fc1")]
            width = rows[unit + "/f/c"].out[0]
            assert r.out[0] == round(0.25 * width_in), r.path
            assert rows[unit + "/f/se/scale/fc2"].out[0] == width
            width_in = width
            checked += 1
    assert checked == archcalc.load(name).args["depth"]


# ---------------------------------------------------------------- against the torchvision model


@pytest.mark.parametrize("name", MEMBERS)
def test_params_and_buffers_match_torchvision(name):
    report = archcalc.analyze(archcalc.load(name))
    model = build(name)
    params = sum(p.numel() for p in model.parameters())
    assert report.totals.params == params, f"params: archcalc {report.totals.params:,}, torchvision {params:,}"
    assert report.totals.buffer_elems == stat_buffers(model), "BN running mean + var elements"


@pytest.mark.parametrize("name", full(MEMBERS))
def test_macs_and_conv_shapes_match_torchvision(name):
    report = archcalc.analyze(archcalc.load(name))
    flops, shapes = run(build(name).eval(), report.input)
    assert flops % 2 == 0
    assert report.totals.macs == flops // 2, f"MACs: archcalc {report.totals.macs:,}, torchvision {flops // 2:,}"
    ours = weighted_shapes(report, aux=False)  # proj before f.a: torchvision's `proj(x) + f(x)`
    assert ours == shapes, first_difference(ours, shapes)


@pytest.mark.parametrize("name", full(MEMBERS))
def test_saved_for_backward_matches_autograd(name):
    report = archcalc.analyze(archcalc.load(name))
    theirs = torch_saved(with_fused_dropout(build(name)), report.input)
    t = report.totals
    ours = (t.saved_elems, t.saved_fixed_bytes + t.saved_batch_bytes)  # batch 1
    assert ours == theirs, "saved for backward (activation elements, fixed bytes): archcalc vs autograd"
