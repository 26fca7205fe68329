"""The VGG family against the paper (Simonyan & Zisserman 2014, Tables 1 and 2), the CS231n lecture 9
table (via ../shared/lecture_numbers.yaml) and the EECS 498 lecture 8 totals.

Every expected number here comes from outside archcalc: the paper's tables written out below, the
catalogue, or hand arithmetic in a comment. The torchvision totals are in the specs' expect: blocks
and tests/test_torchvision.py.
"""
from __future__ import annotations

import dataclasses
import re

import pytest

import archcalc

# Paper Table 1, one list per column, read top to bottom: a number is a conv3-<n>, "1x1-<n>" a
# conv1-<n> (column C), "LRN" the local response normalisation of A-LRN, "M" a maxpool. The three
# FC layers (4096, 4096, 1000) end every column.
TABLE1 = {
    "A":     [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "A-LRN": [64, "LRN", "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "B":     [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "C":     [64, 64, "M", 128, 128, "M", 256, 256, "1x1-256", "M", 512, 512, "1x1-512", "M",
              512, 512, "1x1-512", "M"],
    "D":     [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "E":     [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
              512, 512, 512, 512, "M"],
}
FC = [4096, 4096, 1000]
COLUMN = {"vgg11": "A", "vgg11_lrn": "A-LRN", "vgg13": "B", "vgg16_c": "C", "vgg16": "D", "vgg19": "E",
          "vgg11_bn": "A", "vgg13_bn": "B", "vgg16_bn": "D", "vgg19_bn": "E"}
PAPER = [n for n in COLUMN if not n.endswith("_bn")]
BN_PAIRS = [(n, n + "_bn") for n in ("vgg11", "vgg13", "vgg16", "vgg19")]

# Paper Table 2, "Number of parameters (in millions)".
TABLE2_MILLIONS = {"A": 133, "A-LRN": 133, "B": 133, "C": 134, "D": 138, "E": 144}
# Paper Table 1 header: "11 weight layers" ... "19 weight layers".
WEIGHT_LAYERS = {"A": 11, "A-LRN": 11, "B": 13, "C": 16, "D": 16, "E": 19}


def report(name: str):
    return archcalc.analyze(archcalc.load(name))


def conv_channels(column: str) -> list[int]:
    return [int(str(v).split("-")[-1]) for v in TABLE1[column] if v not in ("M", "LRN")]


# ---------------------------------------------------------------- the paper: Tables 1 and 2


@pytest.mark.parametrize("name", list(COLUMN))
def test_layers_follow_table1(name):
    """Each spec's weighted layers and pools, in order, are its Table 1 column."""
    rows = [r for r in report(name).rows if r.type in ("conv", "maxpool", "lrn", "fc")]
    got = []
    for r in rows:
        if r.type in ("fc", "lrn"):
            got.append(("fc", r.out[0]) if r.type == "fc" else "LRN")
            continue
        win = r.cost.window[0]
        assert r.cost.window[1] == win, r.path  # square windows only
        if r.type == "maxpool":
            assert (win.k, win.s, win.pad_lo, win.pad_hi) == (2, 2, 0, 0), r.path  # "2x2 pixel window, stride 2"
            got.append("M")
        else:  # "stride 1 ... padding 1 pixel for 3x3 conv layers"; a 1x1 conv takes none
            assert (win.s, win.d, win.pad_lo, win.pad_hi) == (1, 1, win.k // 2, win.k // 2), r.path
            got.append(r.out[0] if win.k == 3 else f"{win.k}x{win.k}-{r.out[0]}")
    assert got == TABLE1[COLUMN[name]] + [("fc", n) for n in FC]


@pytest.mark.parametrize("name", list(COLUMN))
def test_weight_layer_count(name):
    rows = report(name).rows
    assert sum(r.type in ("conv", "fc") for r in rows) == WEIGHT_LAYERS[COLUMN[name]]


@pytest.mark.parametrize("name", PAPER)
def test_table2_params_in_millions(name):
    assert round(report(name).totals.params / 1e6) == TABLE2_MILLIONS[COLUMN[name]]


@pytest.mark.parametrize("base, bn", BN_PAIRS)
def test_bn_adds_gamma_beta_and_buffers_only(base, bn):
    """torchvision's _bn: per conv channel one gamma and one beta (params), a running mean and a
    running variance (buffers, not params); the multiply-adds of conv and FC are unchanged."""
    plain, normed = report(base), report(bn)
    channels = sum(conv_channels(COLUMN[base]))  # e.g. D: 64x2 + 128x2 + 256x3 + 512x6 = 4,224
    assert normed.totals.params - plain.totals.params == 2 * channels
    assert normed.totals.buffer_elems == 2 * channels and plain.totals.buffer_elems == 0
    assert normed.totals.macs == plain.totals.macs
    assert [r.out for r in normed.rows] == [r.out for r in plain.rows]


def test_fc6_fan_in_follows_the_input_without_adaptive_pool():
    """The specs leave out torchvision's AdaptiveAvgPool2d((7, 7)) (see the comment before fc6 in
    specs/vgg11.yaml, the VGG family's file). At 256 the pool5 map is 256 / 32 = 8 x 8, so fc6 grows
    by (64 - 49) x 512 x 4096 = 31,457,280 weights over 138,357,544: this pins that documented
    choice (torchvision would keep 138,357,544 there)."""
    rep = archcalc.analyze(archcalc.load("vgg16"), input_shape=(3, 256, 256))
    assert rep.find("pool5").out == (512, 8, 8)
    assert rep.totals.params == 138_357_544 + (64 - 49) * 512 * 4096


# ---------------------------------------------------------------- CS231n lecture 9 (catalogue)

CS231N_ROWS = ["input", "conv1_1", "conv1_2", "pool1", "conv2_1", "conv2_2", "pool2", "conv3_1", "conv3_2",
               "conv3_3", "pool3", "conv4_1", "conv4_2", "conv4_3", "pool4", "conv5_1", "conv5_2", "conv5_3",
               "pool5", "fc6", "fc7", "fc8"]


def _slide_shape(text: str) -> tuple:
    """'[224x224x64]' (H x W x C on the slide) -> (64, 224, 224); '[1x1x4096]' -> (4096,)."""
    h, w, c = (int(v) for v in re.fullmatch(r"\[(\d+)x(\d+)x(\d+)\]", text).groups())
    return (c,) if (h, w) == (1, 1) else (c, h, w)


@pytest.mark.parametrize("row", CS231N_ROWS)
def test_vgg16_matches_cs231n_table_row(row, lecture_numbers):
    entry = lecture_numbers[f"vgg16.cs231n.{row}"]
    exact = entry["exact"]
    r = report("vgg16").find(row)
    assert r.out == _slide_shape(entry["value"]["shape"])
    assert r.out_elems == exact["memory_elements"]
    assert r.weight_params == exact.get("params", 0)  # the table's params leave biases out
    if "params_with_bias" in exact:
        assert r.params == exact["params_with_bias"]
    if "macs" in exact:
        assert r.macs == exact["macs"]


def test_vgg16_totals_match_catalogue(lecture_numbers):
    t = report("vgg16").totals
    memory = lecture_numbers["vgg16.cs231n.total_memory"]["exact"]
    assert t.out_elems == memory["elements_exact_sum_of_rows"] == 15_237_608
    assert t.out_elems * 4 == memory["bytes"]
    params = lecture_numbers["vgg16.total_params"]["exact"]
    assert (t.params, t.weight_params) == (params["with_biases"], params["weights_only"])
    assert t.macs == lecture_numbers["vgg16.macs"]["exact"]["total"]


def test_vgg16_receptive_fields_match_catalogue(lecture_numbers):
    rep = report("vgg16")
    for name, rf in lecture_numbers["vgg16.receptive_field"]["exact"].items():
        assert rep.find(name).rf == (rf, rf), name


def test_vgg16_notes_name_the_cs231n_slips():
    """The slide's '24M * 4 bytes ~= 96MB' and the notes' '~= 93MB' are not what the rows add up to
    (15,237,608 elements): the spec's notes must say so, next to the honest number."""
    notes = archcalc.load("vgg16").notes
    for needle in ("24M", "96MB", "93MB", "15,237,608", "13.6 GFLOP", "conv3_3"):
        assert needle in notes, needle
    assert round(report("vgg16").totals.out_elems / 1e6, 1) == 15.2  # not 24


# ---------------------------------------------------------------- EECS 498 lecture 8

# EECS 498's "AlexNet vs VGG-16" totals (catalogue vgg16.eecs498.totals): 13.6 GFLOP (= MACs),
# 138M params, 48.6 MB of conv + FC outputs at 4 bytes (their MB = 1024 x 1024 bytes). Exact values
# by hand for VGG-16 without conv3_3 (a 256 -> 256 3x3 conv at 56 x 56):
#   MACs   15,470,264,320 - 56 x 56 x 256 x 2,304 (1,849,688,064) = 13,620,576,256
#   params 138,357,544 - (589,824 + 256)                          = 137,767,464
#   conv + FC outputs 13,556,712 - 56 x 56 x 256 (802,816)        = 12,753,896 -> x 4 / 2^20 = 48.65
EECS498_MACS = 13_620_576_256
EECS498_PARAMS = 137_767_464
EECS498_CONV_FC_ELEMS = 12_753_896


def _vgg16_with_one_conv_less(stage: int):
    """The bundled VGG-16 with one conv removed from `stage`: its stage depth argument (n1 .. n5 of
    the Table 1 family in specs/vgg11.yaml) lowered by one."""
    spec = archcalc.load("vgg16")
    depths = [spec.args[f"n{i}"] for i in range(1, 6)]
    assert depths == [2, 2, 3, 3, 3], "vgg16 no longer gives its stage depths as args n1 .. n5"
    spec = dataclasses.replace(spec, name=f"vgg16 minus one conv in stage {stage}",
                               args={**spec.args, f"n{stage}": depths[stage - 1] - 1},
                               expect=None)  # the CS231n numbers belong to the full network
    return archcalc.analyze(spec)


def _conv_fc_elems(rep) -> int:
    return sum(r.out_elems for r in rep.rows if r.type in ("conv", "fc"))


def test_eecs498_totals_reproduce_only_without_conv3_3():
    rep = _vgg16_with_one_conv_less(3)
    assert [r.name for r in rep.rows if r.name.startswith("conv3")] == ["conv3_1", "conv3_2"]
    assert rep.totals.macs == EECS498_MACS
    assert rep.totals.params == EECS498_PARAMS
    assert _conv_fc_elems(rep) == EECS498_CONV_FC_ELEMS
    # The slide's rounded figures: 13.6 GFLOP, 138M, and 48.6 MB (48.65 MiB with the digit cut off).
    assert round(rep.totals.macs / 1e9, 1) == 13.6
    assert round(rep.totals.params / 1e6) == 138
    assert 48.6 <= _conv_fc_elems(rep) * 4 / 2**20 < 48.7
    # The real VGG-16 is not what the slide shows: 15.47 GMAC, 13,556,712 elements = 51.7 MiB.
    full = report("vgg16")
    assert round(full.totals.macs / 1e9, 2) == 15.47
    assert round(_conv_fc_elems(full) * 4 / 2**20, 1) == 51.7


@pytest.mark.parametrize("stage", [1, 2, 4, 5])
def test_eecs498_totals_need_stage3_in_particular(stage):
    """Dropping a conv from any other stage misses at least one of the three slide totals: the
    slide's stage list (stage 3 = conv-conv-pool) is the cause, not some other slip."""
    rep = _vgg16_with_one_conv_less(stage)
    got = (rep.totals.macs, rep.totals.params, _conv_fc_elems(rep))
    assert got != (EECS498_MACS, EECS498_PARAMS, EECS498_CONV_FC_ELEMS)


def test_eecs498_catalogue_agrees(lecture_numbers):
    exact = lecture_numbers["vgg16.eecs498.totals"]["exact"]["without_conv3_3"]
    assert (exact["flop"], exact["params"]) == (EECS498_MACS, EECS498_PARAMS)
    assert round(EECS498_CONV_FC_ELEMS * 4 / 2**20, 2) == exact["memory_MB"]


# ---------------------------------------------------------------- PyTorch builds of Table 1


@pytest.mark.torch
@pytest.mark.parametrize("name", PAPER)
def test_pytorch_build_of_table1_counts_the_same(name):
    """Build each Table 1 column in plain PyTorch (no torchvision; A-LRN and C have no torchvision
    model) and count it: parameters, FlopCounterMode MACs, and every layer's output shape."""
    import torch
    from torch import nn
    from torch.utils.flop_counter import FlopCounterMode

    layers, c = [], 3
    for v in TABLE1[COLUMN[name]]:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        elif v == "LRN":
            layers.append(nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0))
        else:
            k = 1 if str(v).startswith("1x1") else 3
            out = int(str(v).split("-")[-1])
            layers += [nn.Conv2d(c, out, k, padding=k // 2), nn.ReLU(inplace=True)]
            c = out
    layers.append(nn.Flatten())
    n_in = c * 7 * 7
    for i, out in enumerate(FC):
        layers.append(nn.Linear(n_in, out))
        if i < 2:
            layers += [nn.ReLU(inplace=True), nn.Dropout(0.5)]
        n_in = out
    model = nn.Sequential(*layers).to("meta").eval()
    shapes = []
    for m in model:
        if isinstance(m, (nn.Conv2d, nn.Linear, nn.MaxPool2d, nn.LocalResponseNorm)):
            m.register_forward_hook(lambda mod, inp, out: shapes.append(tuple(out.shape[1:])))
    with FlopCounterMode(display=False) as counter:
        model(torch.empty(1, 3, 224, 224, device="meta"))

    rep = report(name)
    assert rep.totals.params == sum(p.numel() for p in model.parameters())
    assert rep.totals.macs * 2 == counter.get_total_flops()
    assert [r.out for r in rep.rows if r.type in ("conv", "fc", "maxpool", "lrn")] == shapes
