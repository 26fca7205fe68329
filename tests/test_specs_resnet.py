"""The ResNet family: shortcut options A/B/C, the paper's v1 against torchvision's v1.5, the CIFAR nets.

Every expected number is hand arithmetic written out here, a table of He et al. 2015 (Deep Residual
Learning), the catalogue (../shared/lecture_numbers.yaml) or PyTorch counting the same network.
"""
from __future__ import annotations

import math
import re

import pytest

import archcalc

# (blocks per stage) for the ImageNet nets, paper Table 1.
STAGES = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}
WIDTHS = (64, 128, 256, 512)  # basic-block width = bottleneck inner width, conv2_x .. conv5_x
CIFAR_N = {20: 3, 56: 9, 110: 18}


def bundled_text(name: str) -> str:
    """The text of the family file that defines ``name`` (resnet34 is a member of resnet18.yaml)."""
    return archcalc.spec.bundled_text(name)


def with_defaults(name: str, line: str):
    """The bundled spec with one more `defaults:` entry, parsed as a user's edited file would be.
    The entry goes into the family's top-level defaults, which every member's defaults lie over."""
    text = bundled_text(name)
    assert "\ndefaults:\n" in text
    return archcalc.parse(text.replace("\ndefaults:\n", f"\ndefaults:\n  {line}\n", 1), file=f"{name}+{line}",
                          variant=name)


def totals(spec):
    t = archcalc.analyze(spec).totals
    return t.params, t.macs


def shortcut_rows(spec):
    return [r for r in archcalc.analyze(spec).rows if r.type == "shortcut"]


def projection(c_in: int, c_out: int, positions: int) -> tuple[int, int]:
    """A 1x1 conv + BN shortcut: (params, MACs)."""
    return c_in * c_out + 2 * c_out, c_in * c_out * positions


# ------------------------------------------------------------------ shortcut options on ResNet-34


def test_resnet34_option_c_adds_a_projection_to_every_identity_block():
    # Option C (paper section 3.3, Table 3) puts a 1x1 conv + BN on the 13 blocks B leaves as identity:
    # conv2_x 3 blocks at 64, conv3_x 3 at 128, conv4_x 5 at 256, conv5_x 2 at 512 (the first block
    # of stages 3-5 already projects). A C -> C projection is C^2 weights + 2C BN, on 56/28/14/7 maps.
    identity_blocks = [(3, 64, 56), (3, 128, 28), (5, 256, 14), (2, 512, 7)]
    extra_params = sum(n * (c * c + 2 * c) for n, c, _ in identity_blocks)
    extra_macs = sum(n * c * c * hw * hw for n, c, hw in identity_blocks)
    # 3*4,224 + 3*16,640 + 5*66,048 + 2*263,168; each projection costs 12,845,056 MACs (C^2 HW is
    # constant across stages: the width doubles as the map halves).
    assert (extra_params, extra_macs) == (919_168, 13 * 12_845_056)

    base_params, base_macs = totals(archcalc.load("resnet34"))
    c_spec = with_defaults("resnet34", "basic: {option: C}")
    c_params, c_macs = totals(c_spec)
    assert c_params - base_params == extra_params
    assert c_macs - base_macs == extra_macs
    assert c_params == 21_797_672 + 919_168 == 22_716_840  # torchvision's count + the projections
    assert sum(1 for r in shortcut_rows(c_spec) if r.params) == 16  # every block projects


def test_resnet34_option_a_drops_the_projection_parameters():
    # Option B's three projections (stride 2, C -> 2C): 64->128 on 28x28, 128->256 on 14x14,
    # 256->512 on 7x7: 8,448 + 33,280 + 132,096 = 173,824 params, 3 x 6,422,528 MACs.
    projections = [projection(64, 128, 28 * 28), projection(128, 256, 14 * 14), projection(256, 512, 7 * 7)]
    proj_params = sum(p for p, _ in projections)
    proj_macs = sum(m for _, m in projections)
    assert (proj_params, proj_macs) == (173_824, 19_267_584)

    base_params, base_macs = totals(archcalc.load("resnet34"))
    a_spec = with_defaults("resnet34", "basic: {option: A}")
    a_params, a_macs = totals(a_spec)
    assert base_params - a_params == proj_params
    assert base_macs - a_macs == proj_macs
    assert a_params == 21_797_672 - 173_824 == 21_623_848
    rows = shortcut_rows(a_spec)
    assert all(r.params == 0 and r.macs == 0 for r in rows)
    # Zero-padding keeps the shapes: the striding shortcuts still hand the add a [2C, H/2, W/2] map.
    assert [list(r.out) for r in rows if r.path.endswith("_1/skip/shortcut1")] == [
        [64, 56, 56], [128, 28, 28], [256, 14, 14], [512, 7, 7]]


def test_option_set_on_one_stage_by_a_spec_edit():
    # The block argument also switches one call: C on conv2_x only adds its 3 identity projections.
    text = bundled_text("resnet34")
    call = "$block conv2_x: {planes: 64, times: $n2}"
    assert text.count(call) == 1
    edited = text.replace(call, "$block conv2_x: {planes: 64, times: $n2, option: C}")
    params, macs = totals(archcalc.parse(edited, variant="resnet34"))
    base_params, base_macs = totals(archcalc.load("resnet34"))
    assert params - base_params == 3 * (64 * 64 + 2 * 64)
    assert macs - base_macs == 3 * 64 * 64 * 56 * 56


def test_resnet50_option_c_via_bottleneck_defaults():
    # The example: `defaults: {bottleneck: {option: C}}`. Identity bottlenecks are 4C -> 4C:
    # conv2_x 2 at 256, conv3_x 3 at 512, conv4_x 5 at 1024, conv5_x 2 at 2048 (each 16C^2 + 8C).
    identity_blocks = [(2, 256), (3, 512), (5, 1024), (2, 2048)]
    extra = sum(n * (c * c + 2 * c) for n, c in identity_blocks)
    assert extra == 2 * 66_048 + 3 * 263_168 + 5 * 1_050_624 + 2 * 4_198_400 == 14_571_520
    params, _ = totals(with_defaults("resnet50", "bottleneck: {option: C}"))
    assert params == 25_557_032 + extra


def test_option_a_on_a_bottleneck_net_zero_pads_even_at_stride_1():
    # ResNet-50's first block widens 64 -> 256 at stride 1: under A it is padded, not projected, so
    # A removes all four projections: 16,896 + 132,096 + 526,336 + 2,101,248 params.
    projections = [projection(64, 256, 56 * 56), projection(256, 512, 28 * 28),
                   projection(512, 1024, 14 * 14), projection(1024, 2048, 7 * 7)]
    base_params, base_macs = totals(archcalc.load("resnet50"))
    params, macs = totals(with_defaults("resnet50", "bottleneck: {option: A}"))
    assert base_params - params == sum(p for p, _ in projections) == 2_776_576
    assert base_macs - macs == sum(m for _, m in projections) == 359_661_568


def test_an_unknown_option_is_an_error_naming_the_layer():
    with pytest.raises(archcalc.SpecError, match=r"conv2_x_1/skip/shortcut1: option must be A, B or C"):
        archcalc.analyze(with_defaults("resnet34", "basic: {option: D}"))


# ------------------------------------------------------------------ the ImageNet nets and their sources


@pytest.mark.parametrize("depth, table1", [(18, 1.8), (34, 3.6), (50, 3.8), (101, 7.6), (152, 11.3)])
def test_table1_flops_are_macs_to_the_paper_s_one_decimal(depth, table1):
    # Table 1 prints multiply-adds to one decimal, truncating 3.66 and 3.86 but rounding 7.57 and 11.28
    # (catalogue resnet.flops_table): the exact count must be one of the two readings.
    _, macs = totals(archcalc.load(f"resnet{depth}"))
    g = macs / 1e9
    assert table1 in (round(g, 1), math.floor(g * 10) / 10)


@pytest.mark.parametrize("depth", [18, 34, 50, 101, 152])
def test_catalogue_macs_include_the_projection_shortcuts(depth, lecture_numbers):
    # The catalogue's exact Table 1 values count the option-B projections: under option A (no
    # projections) the spec must miss them by exactly the projections' MACs.
    exact = lecture_numbers["resnet.flops_table"]["exact"]
    expected = exact[f"resnet{depth}" if depth < 50 else f"resnet{depth}_v1"]
    block = "basic" if depth < 50 else "bottleneck"
    _, b_macs = totals(archcalc.load(f"resnet{depth}"))
    _, a_macs = totals(with_defaults(f"resnet{depth}", f"{block}: {{option: A}}"))
    projection_macs = 19_267_584 if depth < 50 else 359_661_568  # 3 x 6,422,528; see above
    assert b_macs == expected
    assert b_macs - a_macs == projection_macs


@pytest.mark.parametrize("depth", [18, 34, 50, 101, 152])
def test_depth_counts_weight_layers(depth, lecture_numbers):
    # catalogue resnet.depth_counts: stem conv + 2 or 3 convs per block + fc; projections not counted.
    rows = archcalc.analyze(archcalc.load(f"resnet{depth}")).rows
    assert sum(1 for r in rows if r.type in ("conv", "fc")) == lecture_numbers["resnet.depth_counts"]["exact"][f"resnet{depth}"]
    per_block = 2 if depth < 50 else 3
    assert 1 + per_block * sum(STAGES[depth]) + 1 == depth


@pytest.mark.parametrize("depth", [18, 34, 50, 101, 152])
def test_family_members_differ_in_table1_s_blocks_per_stage(depth):
    # One family file holds Table 1's five columns; a member's `args:` say which block and how many
    # per stage (n2 .. n5 for conv2_x .. conv5_x), and the expanded network has that many.
    spec = archcalc.load(f"resnet{depth}")
    assert tuple(spec.args[f"n{i}"] for i in range(2, 6)) == STAGES[depth]
    assert spec.args["block"] == ("basic" if depth < 50 else "bottleneck")
    rows = archcalc.analyze(spec).rows
    blocks = [sum(1 for r in rows if re.fullmatch(rf"conv{i}_x_\d+/add1", r.path)) for i in range(2, 6)]
    assert tuple(blocks) == STAGES[depth]
    if depth >= 50:  # torchvision's v1.5 family: the same depths
        tv = archcalc.load(f"resnet{depth}_tv")
        assert tuple(tv.args[f"n{i}"] for i in range(2, 6)) == STAGES[depth]


@pytest.mark.parametrize("depth", [50, 101, 152])
def test_v1_and_v1_5_differ_only_in_the_first_1x1_of_three_blocks(depth):
    # v1.5 strides on the 3x3, so the 1x1 before it runs at 4x the positions in conv3_1, conv4_1, conv5_1:
    # 256*128*56*56 = 102,760,448 instead of 256*128*28*28 = 25,690,112 (and the same at 512/1024 in).
    v1 = archcalc.analyze(archcalc.load(f"resnet{depth}"))
    v15 = archcalc.analyze(archcalc.load(f"resnet{depth}_tv"))
    assert v15.totals.params == v1.totals.params
    assert v15.totals.macs - v1.totals.macs == 3 * (102_760_448 - 25_690_112) == 231_211_008
    assert [r.path for r in v1.rows] == [r.path for r in v15.rows]
    changed = sorted(r.path for r, s in zip(v1.rows, v15.rows) if r.macs != s.macs)
    assert changed == ["conv3_x_1/main/conv1", "conv4_x_1/main/conv1", "conv5_x_1/main/conv1"]


@pytest.mark.parametrize("depth", [50, 101, 152])
def test_tv_specs_match_torchvision_s_published_counts(depth):
    # torchvision's weights table (meta num_params, _ops in "GFLOPS" = GMACs to 3 decimals), as
    # printed in its documentation: 25,557,032 / 4.089, 44,549,160 / 7.801, 60,192,808 / 11.514.
    published = {50: (25_557_032, 4.089), 101: (44_549_160, 7.801), 152: (60_192_808, 11.514)}[depth]
    params, macs = totals(archcalc.load(f"resnet{depth}_tv"))
    assert (params, round(macs / 1e9, 3)) == published


# ------------------------------------------------------------------ CIFAR-10 (paper section 4.2)


@pytest.mark.parametrize("depth, table6", [(20, "0.27M"), (56, "0.85M"), (110, "1.7M")])
def test_cifar_resnets_match_table6_params(depth, table6):
    params, _ = totals(archcalc.load(f"resnet{depth}"))
    digits = len(table6) - table6.index(".") - 2  # decimals printed in Table 6
    assert f"{params / 1e6:.{digits}f}M" == table6


@pytest.mark.parametrize("depth", [20, 56, 110])
def test_cifar_resnet_hand_count(depth):
    # 6n + 2 layers; 16/32/64 filters; BN 2 per channel; no conv biases; option A shortcuts (no params).
    n = CIFAR_N[depth]
    assert archcalc.load(f"resnet{depth}").args["n"] == n  # the family member's one argument

    def conv(c_in, c_out):
        return 9 * c_in * c_out + 2 * c_out

    params = (conv(3, 16) + 2 * n * conv(16, 16) + conv(16, 32) + (2 * n - 1) * conv(32, 32)
              + conv(32, 64) + (2 * n - 1) * conv(64, 64) + 64 * 10 + 10)
    macs = (16 * 32 * 32 * 27 + 2 * n * 16 * 32 * 32 * 144 + 32 * 16 * 16 * (144 + (2 * n - 1) * 288)
            + 64 * 8 * 8 * (288 + (2 * n - 1) * 576) + 640)
    spec = archcalc.load(f"resnet{depth}")
    assert totals(spec) == (params, macs)
    rows = archcalc.analyze(spec).rows
    assert sum(1 for r in rows if r.type in ("conv", "fc")) == 6 * n + 2 == depth
    assert all(r.params == 0 for r in rows if r.type == "shortcut")


@pytest.mark.parametrize("depth", [20, 56])
def test_plain_nets_have_the_weights_and_macs_of_their_resnets(depth):
    # Paper section 4.2: option-A ResNets have "exactly the same depth, width, and number of
    # parameters as the plain counterparts"; the identity adds cost no MACs either.
    plain = archcalc.analyze(archcalc.load(f"plain{depth}"))
    res = archcalc.analyze(archcalc.load(f"resnet{depth}"))
    assert (plain.totals.params, plain.totals.macs) == (res.totals.params, res.totals.macs)
    weighted = lambda rep: [(list(r.out), r.params, r.macs) for r in rep.rows if r.type in ("conv", "fc")]
    assert weighted(plain) == weighted(res)
    assert not any(r.type in ("add", "shortcut") for r in plain.rows)


# ------------------------------------------------------------------ PyTorch counts the same networks


def _torch_count(model, shape):
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    layers = []

    def hook(mod, _inp, out):
        positions = out.shape[2] * out.shape[3] if out.dim() == 4 else 1
        layers.append((tuple(mod.weight.shape), tuple(out.shape[1:]), mod.weight.numel() * positions))

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, *shape))
    for h in handles:
        h.remove()
    return sum(p.numel() for p in model.parameters()), counter.get_total_flops() // 2, layers


def _spec_layers(spec, shape):
    """(weight shape, output shape, MACs) of every conv, projection shortcut and fc, in order."""
    rep = archcalc.analyze(spec, input_shape=shape)
    shapes = {r.tensor_out: r.out for r in rep.rows}
    out = []
    for r in rep.rows:
        if r.type not in ("conv", "shortcut", "fc") or not r.macs:
            continue
        x = shapes[r.tensor_in[0]]
        if r.type == "fc":
            weight = (r.out[0], math.prod(x))
        else:
            k = r.args.get("k", 1) if r.type == "conv" else 1
            weight = (r.out[0], x[0] // r.args.get("g", 1)) + ((k, k) if isinstance(k, int) else tuple(k))
        out.append((weight, tuple(r.out), r.macs))
    return rep.totals.params, rep.totals.macs, out


def _cifar_torch(n: int, residual: bool):
    """The section 4.2 CIFAR net written directly in PyTorch (option A: subsample + zero channels)."""
    import torch
    from torch import nn

    class Pair(nn.Module):
        def __init__(self, c_in, c_out, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(c_out)
            self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(c_out)
            self.stride, self.pad = stride, c_out - c_in

        def forward(self, x):
            y = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
            if residual:
                skip = x[:, :, ::self.stride, ::self.stride]
                y = y + nn.functional.pad(skip, (0, 0, 0, 0, 0, self.pad))
            return torch.relu(y)

    layers = [nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU()]
    c = 16
    for width, stride in ((16, 1), (32, 2), (64, 2)):
        for i in range(n):
            layers.append(Pair(c, width, stride if i == 0 else 1))
            c = width
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10)]
    return nn.Sequential(*layers)


@pytest.mark.torch
@pytest.mark.parametrize("name", ["resnet20", "resnet56", "resnet110", "plain20", "plain56"])
def test_cifar_specs_match_pytorch(name):
    depth = int(re.sub(r"\D", "", name))
    model = _cifar_torch(CIFAR_N[depth], residual=name.startswith("resnet"))
    params, macs, layers = _torch_count(model, (3, 32, 32))
    assert _spec_layers(archcalc.load(name), (3, 32, 32)) == (params, macs, layers)


def _torchvision_v1(depth: int):
    """torchvision's bottleneck net with its stride moved back to the first 1x1: the paper's v1."""
    import torchvision
    from torchvision.models.resnet import Bottleneck

    model = getattr(torchvision.models, f"resnet{depth}")()
    for m in model.modules():
        if isinstance(m, Bottleneck) and m.conv2.stride != (1, 1):
            m.conv1.stride, m.conv2.stride = m.conv2.stride, (1, 1)
    return model


@pytest.mark.torchvision
@pytest.mark.parametrize("depth", [50, 101, 152])
@pytest.mark.parametrize("shape", [(3, 224, 224), (3, 160, 192)])
def test_v1_specs_match_torchvision_with_the_stride_moved(depth, shape):
    params, macs, layers = _torch_count(_torchvision_v1(depth), shape)
    assert _spec_layers(archcalc.load(f"resnet{depth}"), shape) == (params, macs, layers)
