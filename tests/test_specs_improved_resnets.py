"""The "Improving ResNets" networks (CS231n 2017 lecture 9, EECS 498 lecture 8), counted by PyTorch.

- ResNeXt (resnext50_32x4d, resnext101_32x8d, resnext101_64x4d) and Wide ResNet-50/101-2
  (wide_resnet50_2, wide_resnet101_2) have torchvision counterparts: built by torchvision itself.
- The pre-activation ResNets (preact_resnet164, preact_resnet1001 on CIFAR-10, preact_resnet200 on
  ImageNet), the CIFAR Wide ResNets (wrn28_10, wrn40_4, wrn16_8), stochastic depth (resnet110_sd)
  and FractalNet (fractalnet20, fractalnet40) have none: each is written here in PyTorch after the
  authors' code (KaimingHe/resnet-1k-layers, fb.resnet.torch preresnet.lua,
  szagoruyko/wide-residual-networks, yueatsprograms/Stochastic_Depth, gustavla/fractalnet), with
  no width worked out from the spec.

For each, archcalc and PyTorch agree on: total parameters, BN running statistics (buffers, without
``num_batches_tracked``), MACs = FlopCounterMode total / 2, the output shape of every Conv2d/Linear
in execution order, and what autograd keeps for backward in a training-mode pass (storages counted
once; dropout as the GPU's fused kernel). The default run counts the parameters of EVERY member
(on the meta device: no weights are initialised) and runs the full comparison on the smallest
member of each family; ``--run-slow`` runs it on every member.

The papers' own numbers (Identity Mappings Table 3, WRN Table 4, the stochastic-depth paper's
expected depth and ~25% saving, FractalNet's Table 1 and the cardinality claim) are checked below
them.
"""
from __future__ import annotations

from fractions import Fraction

import pytest

import archcalc

try:  # imported lazily so that the core test run works without the torch extra
    import torch
    import torchvision
    from torch import nn
    from torchvision.ops import StochasticDepth
except ImportError:  # pragma: no cover - conftest skips (or, in CI, fails) the marked tests
    torch = None

    class nn:  # noqa: N801 - lets the module-level nn.Module subclasses below be defined
        Module = object

pytestmark = [pytest.mark.torch, pytest.mark.torchvision]

from test_torch_layers import torch_saved  # noqa: E402
from test_torchvision import first_difference, run, stat_buffers, weighted_shapes, with_fused_dropout  # noqa: E402


# ---------------------------------------------------------------- reference models written in PyTorch


def conv(c_in, c_out, k, s=1, bias=False):
    return nn.Conv2d(c_in, c_out, k, s, k // 2, bias=bias)


class PreactUnit(nn.Module):
    """The full pre-activation unit (Identity Mappings Fig. 1(b)), bottleneck or basic, as the
    authors' Lua code builds it: a unit that projects pre-activates once, before the split, and its
    1x1 projection (no BN) reads the pre-activated tensor; a unit that keeps its shape pre-activates
    inside its residual branch and adds the raw x. `preact=False` is fb's 'no_preact' first unit."""

    def __init__(self, c_in, planes, *, bottleneck, s1=1, s3=1, preact=True, drop=0.0, inplace_add=True):
        super().__init__()
        out = planes * 4 if bottleneck else planes
        self.project = c_in != out or s1 * s3 != 1
        self.preact, self.inplace_add = preact, inplace_add
        if preact:
            self.bn0, self.relu0 = nn.BatchNorm2d(c_in), nn.ReLU(inplace=True)
        if bottleneck:
            layers = [conv(c_in, planes, 1, s1), nn.BatchNorm2d(planes), nn.ReLU(inplace=True),
                      conv(planes, planes, 3, s3), nn.BatchNorm2d(planes), nn.ReLU(inplace=True),
                      conv(planes, out, 1)]
        else:
            layers = [conv(c_in, planes, 3, s1), nn.BatchNorm2d(planes), nn.ReLU(inplace=True),
                      *([nn.Dropout(drop)] if drop else []), conv(planes, planes, 3)]
        self.branch = nn.Sequential(*layers)
        if self.project:
            self.proj = conv(c_in, out, 1, s1 * s3)

    def forward(self, x):
        if self.preact and self.project:
            x = self.relu0(self.bn0(x))
            r = x
        elif self.preact:
            r = self.relu0(self.bn0(x))
        else:
            r = x
        y = self.branch(r)
        skip = self.proj(x) if self.project else x
        if self.inplace_add:
            y += skip
            return y
        return y + skip


def head(c, classes):
    return [nn.BatchNorm2d(c), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, classes)]


def preact_cifar(n):
    """KaimingHe/resnet-1k-layers resnet-pre-act.lua: ResNet-(9n+2), nStages {16, 64, 128, 256},
    the stride on the first 1x1."""
    layers, c = [conv(3, 16, 3)], 16
    for planes, s in ((16, 1), (32, 2), (64, 2)):
        for i in range(n):
            layers.append(PreactUnit(c, planes, bottleneck=True, s1=s if i == 0 else 1))
            c = planes * 4
    return nn.Sequential(*layers, *head(c, 10))


def preact_imagenet(counts):
    """fb.resnet.torch models/preresnet.lua (bottleneck): stem conv + BN + ReLU + max pool, the
    first unit 'no_preact', the stride on the 3x3, final BN + ReLU."""
    layers = [conv(3, 64, 7, 2), nn.BatchNorm2d(64), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1)]
    c = 64
    for stage, (planes, n) in enumerate(zip((64, 128, 256, 512), counts)):
        for i in range(n):
            first = i == 0
            layers.append(PreactUnit(c, planes, bottleneck=True, s3=2 if first and stage else 1,
                                     preact=not (first and stage == 0)))
            c = planes * 4
    return nn.Sequential(*layers, *head(c, 1000))


def wrn_cifar(depth, k, drop=0.0):
    """szagoruyko/wide-residual-networks (PyTorch, functional): WRN-depth-k, (depth - 4)/6 units per
    group, widths 16k, 32k, 64k, adds out of place."""
    n = (depth - 4) // 6
    layers, c = [conv(3, 16, 3)], 16
    for width, s in ((16 * k, 1), (32 * k, 2), (64 * k, 2)):
        for i in range(n):
            layers.append(PreactUnit(c, width, bottleneck=False, s1=s if i == 0 else 1, drop=drop, inplace_add=False))
            c = width
    return nn.Sequential(*layers, *head(c, 10))


class SDBlock(nn.Module):
    """He et al.'s CIFAR basic block (option A shortcut) with the residual branch dropped per sample
    with probability p (torchvision's StochasticDepth, mode "row"), as the drop_path rule counts."""

    def __init__(self, c_in, c_out, stride, p):
        super().__init__()
        self.branch = nn.Sequential(conv(c_in, c_out, 3, stride), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
                                    conv(c_out, c_out, 3), nn.BatchNorm2d(c_out), StochasticDepth(p, "row"))
        self.stride, self.pad = stride, c_out - c_in

    def forward(self, x):
        skip = x[:, :, ::self.stride, ::self.stride]
        if self.pad:
            skip = nn.functional.pad(skip, (0, 0, 0, 0, 0, self.pad))
        return torch.relu(self.branch(x) + skip)


def resnet110_sd(p_last=0.5):
    """Huang et al. 2016: CIFAR ResNet-110 (n = 18), block l of L = 54 dropped with probability
    l / L x (1 - p_L)."""
    layers, c, blocks = [conv(3, 16, 3), nn.BatchNorm2d(16), nn.ReLU(inplace=True)], 16, 54
    for width, s in ((16, 1), (32, 2), (64, 2)):
        for i in range(18):
            index = len(layers) - 2  # 1 .. 54
            layers.append(SDBlock(c, width, s if i == 0 else 1, index / blocks * (1 - p_last)))
            c = width
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10))


class Fractal(nn.Module):
    """f_1(z) = conv(z) (3x3 conv with bias, BN without affine as Caffe's BatchNorm, ReLU);
    f_{C+1}(z) = join(f_C(f_C(z)), f_1(z)), join = elementwise mean."""

    def __init__(self, columns, c_in, c):
        super().__init__()
        self.columns = columns
        if columns == 1:
            self.body = nn.Sequential(conv(c_in, c, 3, bias=True), nn.BatchNorm2d(c, affine=False), nn.ReLU(inplace=True))
        else:
            self.deep = nn.Sequential(Fractal(columns - 1, c_in, c), Fractal(columns - 1, c, c))
            self.col = Fractal(1, c_in, c)

    def forward(self, x):
        if self.columns == 1:
            return self.body(x)
        return (self.deep(x) + self.col(x)) / 2


def fractalnet(columns, widths=(64, 128, 256, 512, 512)):
    layers, c = [], 3
    for w in widths:
        layers += [Fractal(columns, c, w), nn.MaxPool2d(2)]
        c = w
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(c, 10))


# spec name -> a builder of the same network in PyTorch
TORCHVISION = ("resnext50_32x4d", "resnext101_32x8d", "resnext101_64x4d", "wide_resnet50_2", "wide_resnet101_2")
REFERENCE = {
    **{name: (lambda name=name: getattr(torchvision.models, name)(weights=None)) for name in TORCHVISION},
    "preact_resnet164": lambda: preact_cifar(18),
    "preact_resnet1001": lambda: preact_cifar(111),
    "preact_resnet200": lambda: preact_imagenet((3, 24, 36, 3)),
    "wrn28_10": lambda: wrn_cifar(28, 10),
    "wrn40_4": lambda: wrn_cifar(40, 4),
    "wrn16_8": lambda: wrn_cifar(16, 8),
    "resnet110_sd": resnet110_sd,
    "fractalnet20": lambda: fractalnet(3),
    "fractalnet40": lambda: fractalnet(4),
}
# The smallest member of each family: fully compared in the default run (the rest with --run-slow).
SMALLEST = ("resnext50_32x4d", "wide_resnet50_2", "preact_resnet164", "wrn16_8", "resnet110_sd", "fractalnet20")
FAMILIES = {
    "preact_resnet164": ["preact_resnet164", "preact_resnet1001", "preact_resnet200"],
    "wrn28_10": ["wrn28_10", "wrn40_4", "wrn16_8"],
    "wide_resnet50_2": ["wide_resnet50_2", "wide_resnet101_2"],
    "resnext50_32x4d": ["resnext50_32x4d", "resnext101_32x8d", "resnext101_64x4d"],
    "resnet110_sd": ["resnet110_sd"],
    "fractalnet20": ["fractalnet20", "fractalnet40"],
}
MEMBERS = [m for ms in FAMILIES.values() for m in ms]


def report(name):
    return archcalc.analyze(archcalc.load(name))


def build(name):
    torch.manual_seed(0)
    return REFERENCE[name]()


# ---------------------------------------------------------------- PyTorch counts every member


def test_every_member_has_a_reference():
    assert sorted(REFERENCE) == sorted(MEMBERS)
    assert set(SMALLEST) <= set(MEMBERS)


@pytest.mark.parametrize("name", MEMBERS)
def test_params_and_buffers(name):
    # On the meta device the model is built without initialising (or allocating) its weights.
    with torch.device("meta"):
        model = REFERENCE[name]()
    rep = report(name)
    params = sum(p.numel() for p in model.parameters())
    assert rep.totals.params == params, f"params: archcalc {rep.totals.params:,}, torch {params:,}"
    assert rep.totals.buffer_elems == stat_buffers(model), "BN running mean + var elements"


def full_comparison(name):
    rep = report(name)
    model = build(name).eval()
    flops, shapes = run(model, rep.input)
    assert flops % 2 == 0
    assert rep.totals.macs == flops // 2, f"MACs: archcalc {rep.totals.macs:,}, torch {flops // 2:,}"
    ours = weighted_shapes(rep, aux=False)
    assert ours == shapes, first_difference(ours, shapes)
    theirs = torch_saved(with_fused_dropout(model), rep.input)
    t = rep.totals
    assert (t.saved_elems, t.saved_fixed_bytes + t.saved_batch_bytes) == theirs, "saved for backward vs autograd"


@pytest.mark.parametrize("name", SMALLEST)
def test_macs_shapes_and_saved_match_pytorch(name):
    full_comparison(name)


@pytest.mark.slow
@pytest.mark.parametrize("name", [m for m in MEMBERS if m not in SMALLEST])
def test_macs_shapes_and_saved_match_pytorch_every_member(name):
    full_comparison(name)


# ---------------------------------------------------------------- the families


def test_family_files_hold_their_members():
    for family, members in FAMILIES.items():
        text = archcalc.spec.bundled_text(family)
        assert [archcalc.parse(text).name, *archcalc.spec.variant_names(text)] == members


# ---------------------------------------------------------------- the papers' and lectures' numbers


def conv_fc_weights(name, classes):
    """Parameters without BN (every BN here is affine: its 2 params per channel equal its 2 running
    statistics) and without the fc biases: the count Identity Mappings prints."""
    t = report(name).totals
    return t.params - t.buffer_elems - classes


@pytest.mark.parametrize("name, table, with_bn", [("preact_resnet164", "1.7M", "1.7M"),
                                                   ("preact_resnet1001", "10.2M", "10.3M")])
def test_identity_mappings_tables_3_4_count_conv_and_fc_weights(name, table, with_bn):
    # 1,703,258 -> 1,679,024 and 10,327,706 -> 10,178,480: the paper's 10.2M is the count without
    # BN; with BN's 2 per channel it would print 10.3M.
    assert f"{conv_fc_weights(name, 10) / 1e6:.1f}M" == table
    assert f"{report(name).totals.params / 1e6:.1f}M" == with_bn


def test_preact_units_cost_17_hwc2_in_every_stage():
    # A shape-keeping bottleneck of width C on an HxW map: 17 H W C^2 MACs (EECS 498), the same in
    # every stage as the width doubles where the map halves: 17 x 16^2 x 32^2 = 4,456,448 on CIFAR,
    # 17 x 64^2 x 56^2 = 218,365,952 on ImageNet.
    for name, stages, unit in (("preact_resnet164", (1, 2, 3), 17 * 16**2 * 32**2),
                               ("preact_resnet200", (1, 2, 3, 4), 17 * 64**2 * 56**2)):
        rep = report(name)
        blocks = {r.path.split("/")[0] for r in rep.rows if r.path.startswith("stage")}
        assert {b.split("_")[0] for b in blocks} == {f"stage{s}" for s in stages}
        macs = {b: sum(r.macs for r in rep.rows if r.path.startswith(b + "/")) for b in blocks}
        assert {m for b, m in macs.items() if not b.endswith("_1")} == {unit}


@pytest.mark.parametrize("name, table", [("wrn28_10", "36.5M"), ("wrn40_4", "8.9M"), ("wrn16_8", "11.0M")])
def test_wrn_table_4_params(name, table):
    assert f"{report(name).totals.params / 1e6:.1f}M" == table


@pytest.mark.parametrize("name, depth, k", [("wrn28_10", 28, 10), ("wrn40_4", 40, 4), ("wrn16_8", 16, 8)])
def test_wrn_depth_and_width(name, depth, k):
    # WRN-d-k: d = 6n + 4 (n units of two 3x3 convs per group, conv1, and the counting of the paper),
    # widths 16k, 32k, 64k.
    spec = archcalc.load(name)
    assert (6 * spec.args["n"] + 4, spec.args["k"]) == (depth, k)
    rep = report(name)
    outs = [rep.find(f"group{g}_1/add1").out[0] for g in (1, 2, 3)]
    assert outs == [16 * k, 32 * k, 64 * k]


def test_cardinality_keeps_macs_level():
    # CS231n lecture 9 / EECS 498 lecture 8: ResNeXt-50 (32x4d) costs what ResNet-50 costs.
    x, r = report("resnext50_32x4d"), report("resnet50_tv")
    assert (x.totals.macs, r.totals.macs) == (4_230_479_872, 4_089_184_256)
    assert 1.03 < x.totals.macs / r.totals.macs < 1.04          # +3.5%
    assert x.totals.params < r.totals.params                     # 25,028,904 < 25,557,032
    # One 256-d block at 56x56: (8Cc + 9c^2) G per position with C = 64, c = 4, G = 32 (EECS 498)
    # against 17 C^2 for ResNet's bottleneck; the catalogue's 70,144 and 69,632 weights (CS231n).
    C, c, G, hw = 64, 4, 32, 56 * 56
    assert (8 * C * c + 9 * c * c) * G == 70_144 and 17 * C * C == 69_632

    def block(rep):
        rows = [r for r in rep.rows if r.path.startswith("conv2_x_2/")]
        return sum(r.macs for r in rows), sum(r.params for r in rows)

    (xm, xp), (rm, rp) = block(x), block(r)
    assert (xm, rm) == (70_144 * hw, 69_632 * hw)
    assert (xp - 2 * (128 + 128 + 256), rp - 2 * (64 + 64 + 256)) == (70_144, 69_632)  # BN out
    assert 1 < xm / rm < 1.01


def test_resnext_block_with_one_group_of_64_is_resnet50_tv():
    # torchvision's Bottleneck at groups 1, base_width 64 is ResNet-50's: the shared block's width
    # formula gives back resnet50_tv exactly, row for row.
    text = archcalc.spec.bundled_text("resnext50_32x4d")
    line = "  groups: 32        # cardinality"
    assert line in text
    text = text.replace(line, "  groups: 1         #").replace("  base_width: 4 ", "  base_width: 64 ")
    spec = archcalc.parse(text.split("\nexpect:")[0])
    ours, tv = archcalc.analyze(spec), report("resnet50_tv")
    assert (ours.totals.params, ours.totals.macs) == (tv.totals.params, tv.totals.macs)
    assert [(r.path, r.macs) for r in ours.rows] == [(r.path, r.macs) for r in tv.rows]


def test_wide_resnet50_2_against_resnet152():
    # CS231n lecture 9: "50-layer wide ResNet outperforms 152-layer original ResNet" at about the
    # same cost: 68.9M params and 11.40 G MACs vs 60.2M and 11.51 G (catalogue wrn.wrn50_2).
    w, r = report("wide_resnet50_2"), report("resnet152_tv")
    assert (w.totals.params, r.totals.params) == (68_883_240, 60_192_808)
    assert 0.98 < w.totals.macs / r.totals.macs < 1.0


# ---------------------------------------------------------------- stochastic depth: the expectation


def survival(rep):
    """Block -> survival probability, read from the p of its drop_path row (p drops; 1 - p keeps):
    the spec writes the rule with `$i`, `keep: 1 - ($i + 1) / $L * (1 - $p_L)` per stage."""
    return {r.path.split("/")[0]: 1 - Fraction(r.args["p"]).limit_denominator(10_000)
            for r in rep.rows if r.type == "drop_path"}


def test_stochastic_depth_schedule_is_linear_to_one_half():
    keep = survival(report("resnet110_sd"))
    blocks = [f"stage{s}_{i}" for s in (1, 2, 3) for i in range(1, 19)]
    assert list(keep) == blocks                           # 54 gated blocks, in order
    assert [keep[b] for b in blocks] == [1 - Fraction(l, 108) for l in range(1, 55)]
    assert keep["stage3_18"] == Fraction(1, 2)            # p_L = 0.5


def test_stochastic_depth_test_time_numbers_are_resnet110s():
    sd, base = report("resnet110_sd"), report("resnet110")
    assert (sd.totals.params, sd.totals.macs) == (base.totals.params, base.totals.macs)
    assert weighted_shapes(sd, aux=False) == weighted_shapes(base, aux=False)
    conv_rows = lambda rep: [(r.path, r.params, r.macs) for r in rep.rows if r.type in ("conv", "fc", "shortcut")]
    assert conv_rows(sd) == conv_rows(base)


def test_stochastic_depth_expected_depth_and_macs():
    # Huang et al. section 3: with the linear decay and p_L = 0.5, E[blocks] = (3L - 1)/4 ~ 40, and
    # training takes ~25% less time. The expectation by hand, with exact fractions, from the
    # paper's rule (p_l = 1 - l/108) and resnet110's block costs (not from archcalc's rows):
    # conv1 442,368 and fc 640 MACs always run; a block is 2 x 2,359,296 MACs, the two striding
    # ones (l = 19, 37) 1,179,648 + 2,359,296.
    p = {l: 1 - Fraction(l, 108) for l in range(1, 55)}
    block_macs = {l: 3_538_944 if l in (19, 37) else 4_718_592 for l in p}
    expected_blocks = sum(p.values())
    assert expected_blocks == 54 - Fraction(54 * 55, 2 * 108) == Fraction(3 * 54 - 1, 4)   # 40.25
    expected_depth = 2 + 2 * expected_blocks                                               # 82.5
    expected_macs = 442_368 + 640 + sum(p[l] * block_macs[l] for l in p)
    assert expected_macs == Fraction(565_856_128, 3)                                       # 188,618,709 1/3
    full = 442_368 + 640 + sum(block_macs.values())
    assert full == 252_887_680
    # archcalc's totals: the same, the MACs rounded to the nearest MAC
    t = report("resnet110_sd").totals
    assert (t.macs, t.depth) == (full, 110)
    assert t.expected_depth == float(expected_depth) == 82.5
    assert t.expected_macs == round(expected_macs) == 188_618_709
    saving = 1 - Fraction(t.expected_macs, t.macs)
    assert round(float(saving), 3) == 0.254                                                # "about 25%"


def test_expected_totals_are_one_name_everywhere():
    # JSON key = expect: key = Totals attribute (the spec's expect: checks both keys).
    rep = report("resnet110_sd")
    data = archcalc.to_dict(rep)["totals"]
    assert (data["expected_macs"], data["expected_depth"]) == (rep.totals.expected_macs, rep.totals.expected_depth)
    expect = archcalc.load("resnet110_sd").expect["total"]
    assert (expect["expected_macs"], expect["expected_depth"]) == (188_618_709, 82.5)


def test_without_drop_path_expected_is_the_full_network():
    t = report("resnet110").totals
    assert (t.expected_macs, t.expected_depth) == (t.macs, t.depth) == (252_887_680, 110)


SD_PROBE = """
name: sd_probe
input: [4, 8, 8]
layers:
  - add outer:
      main:
        - conv c1: {out: 4, k: 1, bias: false}        # 64 x 16 = 1,024 MACs
        - add inner:
            main:
              - conv c2: {out: 4, k: 1, bias: false}  # 1,024
              - drop_path: {p: 0.5}                   # gates inner/main: c2 keeps 0.75 x 0.5
            skip: []
        - drop_path: {p: 0.25}                        # gates outer/main: c1 and all of inner
      skip:
        - conv proj: {out: 4, k: 1, bias: false}      # 1,024: beside the gated branch, always runs
  - drop_path: {p: 0.5}                               # in no branch: gates nothing
  - fc: {out: 10}                                     # 256 x 10 = 2,560
"""


def test_survival_multiplies_through_nested_branches():
    t = archcalc.analyze(archcalc.parse(SD_PROBE, "sd_probe.yaml")).totals
    assert t.macs == 3 * 1024 + 2560
    # by hand: c1 x 3/4 + c2 x 3/4 x 1/2 + proj + fc
    assert t.expected_macs == 768 + 384 + 1024 + 2560 == 4736
    # longest expected path: c1 3/4 + c2 3/8 (1.125, longer than proj's 1) + fc 1; full depth c1, c2, fc
    assert (t.depth, t.expected_depth) == (3, 2.125)


def test_drop_path_with_p_zero_changes_nothing():
    t = archcalc.analyze(archcalc.parse(SD_PROBE.replace("p: 0.25", "p: 0").replace("p: 0.5", "p: 0"),
                                        "sd_probe.yaml")).totals
    assert (t.expected_macs, t.expected_depth) == (t.macs, t.depth)


# ---------------------------------------------------------------- FractalNet


@pytest.mark.parametrize("name, columns, depth", [("fractalnet20", 3, 20), ("fractalnet40", 4, 40)])
def test_fractal_depth_is_b_times_2_to_the_c_minus_1(name, columns, depth):
    rep = report(name)
    convs = [r for r in rep.rows if r.type == "conv"]
    assert len(convs) == 5 * (2 ** columns - 1)            # 2^C - 1 convs per block
    # The deepest path of block 1, read from its receptive field: each 3x3 conv adds 2.
    rf = max(r.rf[0] for r in rep.rows if r.path.startswith("block1/"))
    assert (rf - 1) // 2 == 2 ** (columns - 1)
    assert 5 * (rf - 1) // 2 == depth
    assert all(r.type == "mean" for r in rep.rows if r.path.endswith("join"))


def test_fractalnet20_is_not_table_1s_38_6m():
    # Section 4's network (and the authors' generator) has 33.7M parameters; Table 1 prints 38.6M.
    params = report("fractalnet20").totals.params
    assert f"{params / 1e6:.1f}M" == "33.7M"
    assert "38.6M" in archcalc.load("fractalnet20").notes
