"""The classic networks (LeNet-1, LeNet-5, AlexNet and its variants, ZFNet, OverFeat, NiN): what their
expect: blocks cannot say on their own.

Every expected number comes from outside archcalc: a paper's text, the catalogue in
../shared/lecture_numbers.yaml, hand arithmetic in a comment, or PyTorch counting a network written
out here by hand from the paper (the torch tests), or torchvision's own AlexNet.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

import archcalc

SPECS = Path(__file__).resolve().parent.parent / "specs"
CLASSIC = ["lenet1", "lenet5", "lenet5_paper", "alexnet", "alexnet_2gpu", "alexnet_tv", "zfnet", "overfeat", "nin"]


def report(name: str, input_shape=None):
    return archcalc.analyze(archcalc.load(name), input_shape=input_shape)


def row(rep, name: str):
    found = rep.find(name)
    assert found is not None, name
    return found


def numbers_in(text: str) -> set[int]:
    return {int(m.replace(",", "")) for m in re.findall(r"\d[\d,]*\d|\d", text)}


@pytest.mark.parametrize("name", CLASSIC)
def test_bundled_with_notes(name):
    """Each classic spec is bundled, says where it comes from and explains itself under the table."""
    assert name in archcalc.bundled_names()
    spec = archcalc.load(name)
    assert spec.source and spec.notes


# ---------------------------------------------------------------- LeNet


def test_lenet5_modern_vs_paper_difference_is_explained():
    """61,706 (modern) - 60,000 (1998) = 1,706: dense C3 (+900), FC output instead of fixed RBF
    prototypes (+850), no trainable subsampling (-44, the paper's S2 12 + S4 32)."""
    modern, paper = report("lenet5"), report("lenet5_paper")
    assert (modern.totals.params, paper.totals.params) == (61706, 60000)  # catalogue lenet5.modern_variant; paper text
    c3 = row(modern, "c3").params - row(paper, "c3").params
    out = row(modern, "output").params - row(paper, "output").params
    pooling = row(paper, "s2").params + row(paper, "s4").params
    assert (c3, out, pooling) == (2416 - 1516, 850 - 0, 12 + 32)
    assert modern.totals.params - paper.totals.params == c3 + out - pooling == 1706
    # and the notes of both specs name both totals
    for name in ("lenet5", "lenet5_paper"):
        assert {61706, 60000} <= numbers_in(archcalc.load(name).notes), name


def test_lenet5_paper_rbf_prototypes_are_buffers_not_parameters():
    out = row(report("lenet5_paper"), "output")
    assert out.params == 0 and out.buffer_elems == 84 * 10


def test_lenet5_paper_c3_table_matches_the_paper_groups():
    """Table I: maps 0-5 see 3 contiguous S2 maps, 6-11 four contiguous, 12-14 four non-contiguous,
    15 all six (LeCun et al. 1998, Sec. II-B)."""
    c3 = row(report("lenet5_paper"), "c3")
    table = c3.args["table"]
    contiguous = lambda maps: any(sorted(maps) == sorted((s + i) % 6 for i in range(len(maps))) for s in range(6))
    assert [len(m) for m in table] == [3] * 6 + [4] * 6 + [4] * 3 + [6]
    assert all(contiguous(m) for m in table[:12])
    assert not any(contiguous(m) for m in table[12:15])


def test_lenet1_units_and_multiply_adds():
    """NIPS 1989: 4,635 units; LeCun et al. 1998: "about 100,000 multiply/add steps"."""
    rep = report("lenet1")
    units = sum(r.out_elems for r in rep.rows)  # input 784 + 2,304 + 576 + 768 + 192 + 10
    # One short of the paper's 4,635: the count presumably includes the constant unit that feeds biases.
    assert units == 4635 - 1
    assert 90_000 <= rep.totals.macs <= 110_000


def test_lenet1_dense_h3_gives_the_reimplementation_count():
    """The notes' 3,246 for a dense H3 with plain average pooling: 104 + 12*(4*25+1) + 1,930 = 3,246."""
    text = (SPECS / "lenet1.yaml").read_text()
    text = re.sub(r"      table: \[\[0\].*?\]\]\n", "", text, flags=re.S)
    text = text.replace("subsample h2", "avgpool h2").replace("subsample h4", "avgpool h4")
    text = text.replace("subsample: {k: 2, act: tanh}", "avgpool: {k: 2}")
    text = text[: text.index("expect:")]
    dense = archcalc.analyze(archcalc.parse(text, file="lenet1_dense.yaml"))
    assert dense.totals.params == 3246
    assert 3246 in numbers_in(archcalc.load("lenet1").notes)


# ---------------------------------------------------------------- AlexNet


def test_alexnet_224_pitfall_warns_with_the_arithmetic():
    """CS231n notes: (224 - 11)/4 + 1 is "quite clearly not an integer" (catalogue alexnet.pitfall.input_224)."""
    at_224 = report("alexnet", (3, 224, 224))
    conv1 = row(at_224, "conv1")
    assert any("54.25" in w and "224 - 11" in w for w in conv1.warnings), conv1.warnings
    assert [p for p, _ in at_224.warnings] == ["conv1", "pool1", "pool2", "pool3"]  # 54.25, 26.5, 12.5, 5.5
    assert report("alexnet").warnings == []  # 227 works out everywhere


def test_alexnet_notes_explain_the_60M(lecture_numbers):
    """The lecture's "60M" is the grouped two-GPU network; the notes say so with the exact counts."""
    notes = archcalc.load("alexnet").notes
    assert "60M" in notes
    grouped = lecture_numbers["alexnet.paper.total_params_grouped"]["exact"]["total"]
    ungrouped = lecture_numbers["alexnet.cs231n.total_params_ungrouped"]["exact"]
    assert {grouped, ungrouped} <= numbers_in(notes)
    assert report("alexnet_2gpu").totals.params == grouped
    assert report("alexnet").totals.params == ungrouped


def test_alexnet_grouping_halves_conv2_conv4_conv5():
    """Grouping by 2 halves the weights and MACs of exactly conv2, conv4 and conv5 (biases stay)."""
    one, two = report("alexnet"), report("alexnet_2gpu")
    for name in ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8"):
        a, b = row(one, name), row(two, name)
        halved = name in ("conv2", "conv4", "conv5")
        assert b.weight_params * (2 if halved else 1) == a.weight_params, name
        assert b.macs * (2 if halved else 1) == a.macs, name
        assert b.bias_params == a.bias_params and b.out == a.out, name


def test_alexnet_tv_eecs498_flop_is_conv_and_fc_only(lecture_numbers):
    """EECS 498's table summed over conv+fc rows is 716,767,232; with its pool rows 717,562,112.
    archcalc's MACs are the former, and its pool other_ops make up exactly the difference."""
    totals = lecture_numbers["alexnet.eecs498.totals"]["exact"]
    rep = report("alexnet_tv", (3, 227, 227))
    assert rep.totals.macs == totals["flop_conv_fc_only"] != totals["flop_all_rows"]
    pools = sum(r.other_ops for r in rep.rows if r.type == "maxpool")
    assert rep.totals.macs + pools == totals["flop_all_rows"]
    notes = archcalc.load("alexnet_tv").notes
    assert {totals["flop_conv_fc_only"], totals["flop_all_rows"]} <= numbers_in(notes)


# ---------------------------------------------------------------- NiN, OverFeat


def test_nin_size_matches_the_model_zoo_snapshot():
    """Model zoo: "a snapshot of size 29MB" (fp32 weights; MiB, as file sizes were shown)."""
    rep = report("nin")
    assert round(rep.param_bytes / 2**20) == 29


def test_overfeat_fast_is_about_145M():
    assert round(report("overfeat").totals.params / 1e6) == 146  # 145.92M; the paper's "145M" truncates


# ---------------------------------------------------------------- PyTorch counts the same networks


def torch_model(name: str):
    """The network written out by hand from its paper (not from the spec), as torch modules."""
    nn = pytest.importorskip("torch.nn")
    relu = lambda: nn.ReLU(inplace=True)
    lrn = lambda: nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)
    if name in ("alexnet", "alexnet_2gpu"):
        g = 2 if name == "alexnet_2gpu" else 1
        return nn.Sequential(
            nn.Conv2d(3, 96, 11, 4), relu(), *((nn.MaxPool2d(3, 2), lrn()) if g == 1 else (lrn(), nn.MaxPool2d(3, 2))),
            nn.Conv2d(96, 256, 5, padding=2, groups=g), relu(),
            *((nn.MaxPool2d(3, 2), lrn()) if g == 1 else (lrn(), nn.MaxPool2d(3, 2))),
            nn.Conv2d(256, 384, 3, padding=1), relu(),
            nn.Conv2d(384, 384, 3, padding=1, groups=g), relu(),
            nn.Conv2d(384, 256, 3, padding=1, groups=g), relu(), nn.MaxPool2d(3, 2), nn.Flatten(),
            nn.Linear(9216, 4096), relu(), nn.Dropout(), nn.Linear(4096, 4096), relu(), nn.Dropout(),
            nn.Linear(4096, 1000))
    if name == "zfnet":
        return nn.Sequential(
            nn.Conv2d(3, 96, 7, 2, padding=1), relu(), nn.MaxPool2d(3, 2, ceil_mode=True), lrn(),
            nn.Conv2d(96, 256, 5, 2), relu(), nn.MaxPool2d(3, 2, ceil_mode=True), lrn(),
            nn.Conv2d(256, 512, 3, padding=1), relu(), nn.Conv2d(512, 1024, 3, padding=1), relu(),
            nn.Conv2d(1024, 512, 3, padding=1), relu(), nn.MaxPool2d(3, 2, ceil_mode=True), nn.Flatten(),
            nn.Linear(6 * 6 * 512, 4096), relu(), nn.Dropout(), nn.Linear(4096, 4096), relu(), nn.Dropout(),
            nn.Linear(4096, 1000))
    if name == "overfeat":
        return nn.Sequential(
            nn.Conv2d(3, 96, 11, 4), relu(), nn.MaxPool2d(2), nn.Conv2d(96, 256, 5), relu(), nn.MaxPool2d(2),
            nn.Conv2d(256, 512, 3, padding=1), relu(), nn.Conv2d(512, 1024, 3, padding=1), relu(),
            nn.Conv2d(1024, 1024, 3, padding=1), relu(), nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(6 * 6 * 1024, 3072), relu(), nn.Dropout(), nn.Linear(3072, 4096), relu(), nn.Dropout(),
            nn.Linear(4096, 1000))
    if name == "nin":
        def mlpconv(c_in, c, k, s=1, p=0, last=None):
            return [nn.Conv2d(c_in, c, k, s, p), relu(), nn.Conv2d(c, c, 1), relu(), nn.Conv2d(c, last or c, 1), relu()]
        return nn.Sequential(
            *mlpconv(3, 96, 11, 4), nn.MaxPool2d(3, 2, ceil_mode=True),
            *mlpconv(96, 256, 5, p=2), nn.MaxPool2d(3, 2, ceil_mode=True),
            *mlpconv(256, 384, 3, p=1), nn.MaxPool2d(3, 2, ceil_mode=True), nn.Dropout(),
            *mlpconv(384, 1024, 3, p=1, last=1000), nn.AvgPool2d(6, 1))
    if name == "lenet5":
        return nn.Sequential(
            nn.Conv2d(1, 6, 5), nn.Tanh(), nn.AvgPool2d(2), nn.Conv2d(6, 16, 5), nn.Tanh(), nn.AvgPool2d(2),
            nn.Flatten(), nn.Linear(400, 120), nn.Tanh(), nn.Linear(120, 84), nn.Tanh(), nn.Linear(84, 10))
    raise KeyError(name)


def torch_counts(model, input_shape):
    """Parameters, MACs (FlopCounterMode / 2) and the output shapes of conv, linear and pool modules."""
    torch = pytest.importorskip("torch")
    from torch.utils.flop_counter import FlopCounterMode

    kinds = ("Conv2d", "Linear", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d")
    shapes = []
    hooks = [m.register_forward_hook(lambda m, i, o: shapes.append(tuple(o.shape[1:])))
             for m in model.modules() if type(m).__name__ in kinds]
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model.eval()(torch.zeros(1, *input_shape))
    for h in hooks:
        h.remove()
    return sum(p.numel() for p in model.parameters()), counter.get_total_flops() // 2, shapes


def archcalc_counts(rep):
    kinds = ("conv", "fc", "maxpool", "avgpool", "adaptive_avgpool")
    return rep.totals.params, rep.totals.macs, [tuple(r.out) for r in rep.rows if r.type in kinds]


@pytest.mark.torch
@pytest.mark.parametrize("name, input_shape", [
    ("alexnet", (3, 227, 227)), ("alexnet", (3, 224, 224)), ("alexnet_2gpu", (3, 227, 227)),
    ("zfnet", (3, 224, 224)), ("overfeat", (3, 231, 231)), ("nin", (3, 224, 224)), ("lenet5", (1, 32, 32)),
])
def test_torch_counts_the_same_network(name, input_shape):
    model = torch_model(name)
    if name == "alexnet" and input_shape[1] == 224:  # the floor-rounded 224 network reads 5x5x256 into fc6
        model[-7] = pytest.importorskip("torch.nn").Linear(6400, 4096)
    got = archcalc_counts(report(name, input_shape))
    expected = torch_counts(model, input_shape)
    assert got[0] == expected[0], "params"
    assert got[1] == expected[1], "MACs"
    assert got[2] == expected[2], "output shapes of conv, fc and pool layers"


@pytest.mark.torchvision
@pytest.mark.parametrize("input_shape", [(3, 224, 224), (3, 227, 227)])
def test_alexnet_tv_is_torchvision_alexnet(input_shape):
    torchvision = pytest.importorskip("torchvision")
    expected = torch_counts(torchvision.models.alexnet(weights=None), input_shape)
    assert archcalc_counts(report("alexnet_tv", input_shape)) == expected
