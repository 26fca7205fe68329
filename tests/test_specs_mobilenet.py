"""The MobileNet families: v1 against its paper (Howard et al. 2017), v2 and v3 against torchvision.

MobileNet v1 has no torchvision counterpart. Its expected numbers are the paper's Tables 1, 2 and
4-9, read here with the rounding each table uses, and a hand count of Table 1 written out below;
the same network is also written directly in PyTorch (as TF-slim builds it, with BN and ReLU after
every conv) and counted by torch: parameters, MACs = FlopCounterMode / 2, every Conv2d/Linear output
shape in order, and what autograd keeps for backward.

mobilenet_v2, mobilenet_v3_large and mobilenet_v3_small are torchvision's: total parameters, BN
buffers, MACs, every Conv2d/Linear output shape in order, and the saved-for-backward bytes of a
training pass (in-place ReLU6 / hard-swish, SE gates, dropout as the GPU's fused kernel) must be
identical. The widths come from expressions on the family's `width` argument, so the same spec at
another width must equal torchvision's model at that width_mult too.

Default run: parameters of every torchvision member (construction only), the full cross-check of
mobilenet_v2 and mobilenet_v3_small, the v1 torch build at alpha 0.25, and one other width per
family at params and MACs. --run-slow: the full cross-check of mobilenet_v3_large, v1's torch build
at every Table 6/7 member and the other widths.
"""
from __future__ import annotations

import math

import pytest

import archcalc

try:  # imported lazily so that the core test run works without the torch extra
    import torch
    import torchvision
    from torch import nn
except ImportError:  # pragma: no cover - conftest skips (or, in CI, fails) the marked tests
    torch = None

pytestmark = [pytest.mark.torch, pytest.mark.torchvision]

TORCHVISION = ("mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small")
V1 = {  # member -> (alpha, input size); Tables 6, 7 and 9
    "mobilenet_v1": (1.0, 224),
    "mobilenet_v1_075_224": (0.75, 224),
    "mobilenet_v1_050_224": (0.5, 224),
    "mobilenet_v1_025_224": (0.25, 224),
    "mobilenet_v1_100_192": (1.0, 192),
    "mobilenet_v1_100_160": (1.0, 160),
    "mobilenet_v1_100_128": (1.0, 128),
    "mobilenet_v1_050_160": (0.5, 160),
}
# Table 1 after the first conv: (pointwise output channels, stride of the depthwise conv) of the
# thirteen separable layers. The paper prints the last depthwise conv as "s2" on a 7x7 input whose
# output is 7x7 again: a slip, stride 1 (see the spec's notes).
TABLE1 = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), *[(512, 1)] * 5, (1024, 2), (1024, 1)]


def report(name: str, **kw):
    return archcalc.analyze(archcalc.load(name), **kw)


def paper_count(spec):
    """(weights, MACs) of a spec counted as the paper counts: weights only, BN left out."""
    text = archcalc.spec.bundled_text(spec)
    edited = text.replace("\ndefaults:\n", "\ndefaults:\n  mbv1_block: {bn: false}\n", 1)
    edited = edited.replace("conv: {bias: false, bn: true, act: relu}", "conv: {bias: false, bn: false, act: relu}", 1)
    t = archcalc.analyze(archcalc.parse(edited, variant=spec)).totals
    return t.params, t.macs


# ---------------------------------------------------------------- MobileNet v1: the paper


def hand_count(alpha: float, res: int, bn: bool, separable: bool = True, n14: int = 5):
    """Table 1 counted by hand: (params, MACs). Widths are TF-slim's max(int(c * alpha), 8)."""
    d = lambda c: max(int(c * alpha), 8)
    layers = TABLE1[:6] + [(512, 1)] * n14 + TABLE1[-2:]
    c, h = d(32), res // 2
    params, macs = 27 * c + 2 * c * bn, 27 * c * h * h
    for out, s in layers:
        o, h = d(out), h // s
        if separable:
            params += 9 * c + c * o + 2 * (c + o) * bn
            macs += (9 * c + c * o) * h * h
        else:
            params += 9 * c * o + 2 * o * bn
            macs += 9 * c * o * h * h
        c = o
    return params + c * 1000 + 1000, macs + c * 1000


@pytest.mark.parametrize("name", list(V1))
def test_v1_members_are_table1_counted_by_hand(name):
    alpha, res = V1[name]
    t = report(name).totals
    assert (t.params, t.macs) == hand_count(alpha, res, bn=True)
    assert paper_count(name) == hand_count(alpha, res, bn=False)


def test_v1_table_variants_counted_by_hand():
    # Table 4's Conv MobileNet (full 3x3 convs) and Table 5's shallow net (no 5 x 14x14x512 layers).
    conv, shallow = report("mobilenet_v1_conv").totals, report("mobilenet_v1_shallow").totals
    assert (conv.params, conv.macs) == hand_count(1.0, 224, bn=True, separable=False)
    assert (shallow.params, shallow.macs) == hand_count(1.0, 224, bn=True, n14=0)
    assert paper_count("mobilenet_v1_conv") == hand_count(1.0, 224, bn=False, separable=False)
    assert paper_count("mobilenet_v1_shallow") == hand_count(1.0, 224, bn=False, n14=0)


# The papers' numbers, Mult-Adds and parameters in millions, as printed.
PAPER = {
    "mobilenet_v1": (569, 4.2),           # Tables 4, 6, 8
    "mobilenet_v1_075_224": (325, 2.6),   # Tables 5, 6
    "mobilenet_v1_050_224": (149, 1.3),   # Table 6
    "mobilenet_v1_025_224": (41, 0.5),    # Table 6
    "mobilenet_v1_100_192": (418, 4.2),   # Table 7
    "mobilenet_v1_100_160": (290, 4.2),
    "mobilenet_v1_100_128": (186, 4.2),
    "mobilenet_v1_050_160": (76, 1.32),   # Table 9
    "mobilenet_v1_shallow": (307, 2.9),   # Table 5
    "mobilenet_v1_conv": (4866, 29.3),    # Table 4
}


def printed(value: float, decimals: int) -> set[float]:
    """The numbers a table may print for an exact value: rounded or truncated to its decimals."""
    scale = 10 ** decimals
    return {round(value, decimals), math.floor(value * scale) / scale}


@pytest.mark.parametrize("name", list(PAPER))
def test_v1_paper_tables(name):
    macs_m, params_m = PAPER[name]
    params, macs = paper_count(name)
    decimals = len(str(params_m).split(".")[1])
    assert params_m in printed(params / 1e6, decimals), f"{params:,} weights for the paper's {params_m}M"
    if name == "mobilenet_v1_conv":
        # Table 4's 4866 is the convs alone (the fc's 1,024,000 left out), or 4867.3 truncated by 1.
        assert macs == 4_867_293_184 and int((macs - 1_024_000) / 1e6) == macs_m
    else:
        assert macs_m in printed(macs / 1e6, 0), f"{macs:,} MACs for the paper's {macs_m}M"
    # Where the table truncates, the notes say so: 290.7 (Table 7) and 76.5 (Table 9).
    if name in ("mobilenet_v1_100_160", "mobilenet_v1_050_160"):
        assert round(macs / 1e6) != macs_m == int(macs / 1e6)
        assert "truncat" in archcalc.load(name).notes


def test_v1_matches_the_catalogue(lecture_numbers):
    exact = lecture_numbers["mobilenet.width_multiplier"]["exact"]
    for key, name in (("a1_0", "mobilenet_v1"), ("a0_75", "mobilenet_v1_075_224"),
                      ("a0_5", "mobilenet_v1_050_224"), ("a0_25", "mobilenet_v1_025_224")):
        macs, params = exact[key]
        assert paper_count(name) == (params, macs)


def test_v1_table2_resources_per_layer_type():
    # Table 2, "Resource Per Layer Type": Conv 1x1 94.86% of the Mult-Adds and 74.59% of the
    # parameters; Conv DW 3x3 3.06%, 1.06%; Conv 3x3 (the first layer) 1.19%, 0.02%; Fully Connected
    # 0.18%, 24.33%. The parameter shares are of the weights alone (4,209,088: no BN, not even the
    # fc's 1,000 biases). The first conv's 1.19% of the Mult-Adds is a slip for 1.91% (10,838,016 of
    # 568,740,352): the printed column adds up to 99.29%, with 1.91 to 100.01.
    text = archcalc.spec.bundled_text("mobilenet_v1")
    edited = text.replace("\ndefaults:\n", "\ndefaults:\n  mbv1_block: {bn: false}\n", 1)
    edited = edited.replace("conv: {bias: false, bn: true, act: relu}", "conv: {bias: false, bn: false, act: relu}", 1)
    macs, weights = {}, {}
    for r in archcalc.analyze(archcalc.parse(edited)).rows:
        kind = {"dwconv": "dw", "fc": "fc"}.get(r.type) or ("1x1" if r.path.endswith("/pw") else
                                                            "3x3" if r.type == "conv" else None)
        if kind:
            macs[kind] = macs.get(kind, 0) + r.macs
            weights[kind] = weights.get(kind, 0) + r.weight_params
    share = lambda d: {k: round(100 * v / sum(d.values()), 2) for k, v in d.items()}
    assert sum(weights.values()) == 4_209_088
    assert share(weights) == {"3x3": 0.02, "dw": 1.06, "1x1": 74.59, "fc": 24.33}
    assert share(macs) == {"3x3": 1.91, "dw": 3.06, "1x1": 94.86, "fc": 0.18}
    assert round(94.86 + 3.06 + 1.19 + 0.18, 2) == 99.29


def test_v1_table8_and_9_comparisons():
    # Table 8 text: "nearly as accurate as VGG16 while being 32 times smaller and 27 times less
    # compute intensive"; GoogLeNet: "smaller and more than 2.5 times less computation".
    weights, macs = paper_count("mobilenet_v1")
    vgg16, googlenet = report("vgg16").totals, report("googlenet").totals
    assert int(vgg16.params / weights) == 32 and int(vgg16.macs / macs) == 27
    assert googlenet.params > weights and googlenet.macs / macs > 2.5
    # Table 9 text: 0.50 MobileNet-160 is "45x smaller and 9.4x less compute than AlexNet" (60M, 720M).
    weights, macs = paper_count("mobilenet_v1_050_160")
    assert (round(60e6 / weights), round(720e6 / macs, 1)) == (45, 9.4)
    alexnet = report("alexnet_2gpu").totals  # the paper's grouped AlexNet, counted exactly
    assert (round(alexnet.params / weights, 1), round(alexnet.macs / macs, 1)) == (46.2, 9.5)


def test_v1_width_and_resolution_scale_the_cost_quadratically():
    # Section 4.2: alpha reduces the cost "quadratically by roughly alpha^2"; section 4.3: rho by
    # rho^2. Exactly: the 1x1 convs (alpha in, alpha out) scale by alpha^2, the first conv, the
    # depthwise convs and the fc by alpha; every conv's positions by rho^2, the fc's not at all.
    from fractions import Fraction

    rows = report("mobilenet_v1").rows
    pointwise = sum(r.macs for r in rows if r.path.endswith("/pw"))
    fc = sum(r.macs for r in rows if r.type == "fc")
    other = report("mobilenet_v1").totals.macs - pointwise - fc  # first conv + depthwise convs
    assert (pointwise, other, fc) == (539_492_352, 28_224_000, 1_024_000)
    for name, (alpha, res) in V1.items():
        a, rho2 = Fraction(alpha), Fraction(res, 224) ** 2
        assert report(name).totals.macs == rho2 * (a * a * pointwise + a * other) + a * fc, name
    # "Roughly": within 16% of alpha^2 rho^2 for every member of Tables 6, 7 and 9.
    base = report("mobilenet_v1").totals.macs
    for name, (alpha, res) in V1.items():
        assert report(name).totals.macs / base == pytest.approx(alpha ** 2 * (res / 224) ** 2, rel=0.16), name


def test_v1_last_depthwise_conv_has_stride_1():
    # Table 1 prints "Conv dw / s2" for the 14th depthwise conv, on a 7x7x1024 input, and 7x7x1024
    # as the next row's input: stride 1, as the spec builds it.
    rows = archcalc.analyze(archcalc.load("mobilenet_v1")).rows
    by_path = {r.path: r for r in rows}
    assert [list(by_path[p].out) for p in ("block5_1/dw", "block5_2/dw")] == [[512, 7, 7], [1024, 7, 7]]
    assert by_path["block5_2/dw"].cost.window[0].s == 1
    # The thirteen separable layers: pointwise widths and depthwise strides as in Table 1.
    pw = [r for r in rows if r.path.endswith("/pw")]
    dw = [r for r in rows if r.path.endswith("/dw")]
    assert [(p.out[0], d.cost.window[0].s) for p, d in zip(pw, dw)] == TABLE1


# ---------------------------------------------------------------- MobileNet v1 written in PyTorch


def torch_v1(alpha: float):
    """Table 1 in PyTorch, as TF-slim builds it: conv, BN, ReLU everywhere but the fc. TF's SAME
    pads a stride-2 3x3 on an even map by 0 before and 1 after, which nn.Conv2d cannot: a port pads
    with nn.ZeroPad2d first (a copy the conv then keeps for backward); stride 1 pads 1 and 1."""
    d = lambda c: max(int(c * alpha), 8)

    def cbr(cin, cout, k, s=1, g=1):
        pad = [nn.ZeroPad2d((0, 1, 0, 1))] if s == 2 else []
        conv = nn.Conv2d(cin, cout, k, s, 0 if s == 2 else k // 2, groups=g, bias=False)
        return pad + [conv, nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

    c = d(32)
    layers = cbr(3, c, 3, 2)
    for out, s in TABLE1:
        layers += cbr(c, c, 3, s, g=c) + cbr(c, d(out), 1)
        c = d(out)
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, 1000), nn.Softmax(1))


def v1_against_torch(name: str):
    from test_torch_layers import torch_saved
    from test_torchvision import first_difference, run, stat_buffers, weighted_shapes

    alpha, _ = V1[name]
    rep = report(name)
    torch.manual_seed(0)
    model = torch_v1(alpha).eval()
    assert rep.totals.params == sum(p.numel() for p in model.parameters())
    assert rep.totals.buffer_elems == stat_buffers(model)
    flops, shapes = run(model, rep.input)
    assert rep.totals.macs == flops // 2
    ours = weighted_shapes(rep, aux=False)
    assert ours == shapes, first_difference(ours, shapes)
    t = rep.totals
    assert (t.saved_elems, t.saved_fixed_bytes + t.saved_batch_bytes) == torch_saved(model, rep.input)


def test_v1_smallest_matches_torch():
    v1_against_torch("mobilenet_v1_025_224")


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in V1 if n != "mobilenet_v1_025_224"])
def test_v1_every_member_matches_torch(name):
    v1_against_torch(name)


# ---------------------------------------------------------------- torchvision: v2 and v3


def torchvision_model(name: str, **kw):
    torch.manual_seed(0)
    return getattr(torchvision.models, name)(weights=None, **kw)


@pytest.mark.parametrize("name", TORCHVISION)
def test_params_and_buffers_match_torchvision(name):
    from test_torchvision import stat_buffers

    rep = report(name)
    model = torchvision_model(name)
    assert rep.totals.params == sum(p.numel() for p in model.parameters())
    assert rep.totals.buffer_elems == stat_buffers(model), "BN running mean + var elements"


def full_check(rep, model):
    from test_torchvision import assert_counts_match

    assert rep.warnings == [], "every floored size is declared with rounding: floor"
    # In-place ReLU6 (v2) keeps its result, the storage the next conv keeps; in-place hard-swish (v3)
    # keeps a copy of its input; the SE mul keeps both operands; dropout keeps a bool mask.
    assert_counts_match(rep, model)


@pytest.mark.parametrize("name", ["mobilenet_v2", "mobilenet_v3_small"])
def test_smallest_members_match_torchvision_in_full(name):
    full_check(report(name), torchvision_model(name))


@pytest.mark.slow
def test_mobilenet_v3_large_matches_torchvision_in_full():
    full_check(report("mobilenet_v3_large"), torchvision_model("mobilenet_v3_large"))


def at_width(name: str, width: float):
    """The bundled spec with its `width` argument changed, as a user would edit the file."""
    text = archcalc.spec.bundled_text(name)
    assert text.count("\n  width: 1.0 ") == 1
    return archcalc.analyze(archcalc.parse(text.replace("\n  width: 1.0 ", f"\n  width: {width} ", 1), variant=name))


def width_check(name: str, width: float, full: bool):
    from test_torchvision import first_difference, run, weighted_shapes

    rep = at_width(name, width)
    model = torchvision_model(name, width_mult=width)
    assert rep.totals.params == sum(p.numel() for p in model.parameters())
    if full:
        full_check(rep, model)
    else:  # every conv's width in order, and the MACs
        flops, shapes = run(model.eval(), rep.input)
        assert rep.totals.macs == flops // 2
        ours = weighted_shapes(rep, aux=False)
        assert ours == shapes, first_difference(ours, shapes)


@pytest.mark.parametrize("name, width", [("mobilenet_v2", 0.35), ("mobilenet_v3_small", 0.75)])
def test_widths_are_torchvision_s_at_another_width(name, width):
    # The widths are expressions on `width`: 0.35 is where make_divisible rounds up (16 x 0.35 = 5.6
    # -> 8, 24 x 0.35 = 8.4 -> 8) and v2's last conv stays 1280; v3's width also scales the fc.
    width_check(name, width, full=False)


@pytest.mark.slow
@pytest.mark.parametrize("name, width", [("mobilenet_v2", w) for w in (0.5, 0.75, 1.3, 1.4)]
                         + [("mobilenet_v3_large", w) for w in (0.5, 0.75, 1.25)]
                         + [("mobilenet_v3_small", w) for w in (0.5, 1.25)])
def test_every_width_matches_torchvision_in_full(name, width):
    width_check(name, width, full=True)


def test_v2_follows_table2():
    # Table 2: t, c, n, s of each bottleneck row; the hidden width of every block is t x its input.
    table2 = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]
    rows = report("mobilenet_v2").rows
    projects = [r for r in rows if r.path.endswith("/project")]
    dws = [r for r in rows if r.path.endswith("/dw")]
    expected = [(c, s if i == 0 else 1) for t, c, n, s in table2 for i in range(n)]
    assert [(p.out[0], d.cost.window[0].s) for p, d in zip(projects, dws)] == expected
    assert sum(r.type == "add" for r in rows) == sum(n - 1 for _, _, n, _ in table2 if n > 1)
    assert [r.out[0] for r in rows if r.path in ("conv1", "conv_last", "fc")] == [32, 1280, 1000]
