"""The DenseNet family: torchvision's densenet121/169/201/161 and the paper's CIFAR DenseNet-BC (L=100, k=12).

Exactness against torchvision (and, for the CIFAR net, against torchvision's DenseNet class with the
CIFAR stem): total parameters, BN buffers, MACs = FlopCounterMode / 2, every Conv2d/Linear output
shape in order, and the bytes autograd keeps for backward in a training-mode pass. DenseNet is where
the last one matters: torchvision concatenates all earlier features anew in every dense layer, and
each concatenation is kept by the BN that reads it.

Default run: parameters of every member (model construction only) and the full cross-check of the
two smallest (densenet121, densenet_bc_100_12); the full cross-check of the others is slow
(--run-slow). The connection count L(L+1)/2 (archcalc's `links` of each dense block, against the
formula and this file's own fan-in count through the concat rows), the depth in each name and the
paper's Table 2 parameter counts are checked from archcalc's own rows, against hand arithmetic here.
"""
from __future__ import annotations

import re

import pytest

import archcalc

try:  # imported lazily so that the core test run works without the torch extra
    import torch
    import torchvision
    from torch import nn
except ImportError:  # pragma: no cover - conftest skips (or, in CI, fails) the marked tests
    torch = None

pytestmark = [pytest.mark.torch, pytest.mark.torchvision]

# torchvision builder -> (growth rate, layers per dense block), Huang et al. 2017 Table 1
IMAGENET = {
    "densenet121": (32, (6, 12, 24, 16)),
    "densenet169": (32, (6, 12, 32, 32)),
    "densenet201": (32, (6, 12, 48, 32)),
    "densenet161": (48, (6, 12, 36, 24)),
}
CIFAR = "densenet_bc_100_12"


def report(name: str, **kw):
    return archcalc.analyze(archcalc.load(name), **kw)


def torchvision_model(name: str):
    torch.manual_seed(0)
    if name == CIFAR:
        return cifar_densenet_bc(12, 16)
    return getattr(torchvision.models, name)(weights=None)


def cifar_densenet_bc(k: int, n: int, classes: int = 10):
    """The paper's CIFAR DenseNet-BC (liuzhuang13/DenseNet models/densenet.lua) out of torchvision's
    own DenseNet class: three blocks of n bottleneck layers, 2k stem maps, compression 0.5, and the
    ImageNet stem (7x7/2 conv, BN, ReLU, 3x3/2 max pool) replaced by one 3x3 conv without bias."""
    from torchvision.models.densenet import DenseNet

    model = DenseNet(growth_rate=k, block_config=(n, n, n), num_init_features=2 * k, num_classes=classes)
    model.features.conv0 = nn.Conv2d(3, 2 * k, kernel_size=3, stride=1, padding=1, bias=False)
    for name in ("norm0", "relu0", "pool0"):
        setattr(model.features, name, nn.Identity())
    return model


# ---------------------------------------------------------------- torchvision counts the same networks


@pytest.mark.parametrize("name", [*IMAGENET, CIFAR])
def test_params_and_buffers_match_torchvision(name):
    from test_torchvision import stat_buffers

    rep = report(name)
    model = torchvision_model(name)
    assert rep.totals.params == sum(p.numel() for p in model.parameters())
    assert rep.totals.buffer_elems == stat_buffers(model), "BN running mean + var elements"


def full_check(name: str):
    from test_torchvision import assert_counts_match

    rep = report(name)
    model = torchvision_model(name)
    # Saved for backward: every concatenation torchvision builds and keeps (norm1 of each dense
    # layer, the transitions' and norm5's BN), as one storage each.
    assert_counts_match(rep, model)


@pytest.mark.parametrize("name", ["densenet121", CIFAR])
def test_smallest_members_match_torch_in_full(name):
    full_check(name)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["densenet169", "densenet201", "densenet161"])
def test_every_member_matches_torchvision_in_full(name):
    full_check(name)


@pytest.mark.parametrize("k, n, classes, table2", [(12, 16, 10, "0.8M"), (12, 16, 100, "0.8M")])
def test_cifar_net_built_in_torch_has_table2_s_params(k, n, classes, table2):
    # The torch build of the CIFAR net (above) against the paper's Table 2, CIFAR-10 and CIFAR-100.
    params = sum(p.numel() for p in cifar_densenet_bc(k, n, classes).parameters())
    assert params == {10: 769_162, 100: 800_032}[classes]
    assert f"{params / 1e6:.1f}M" == table2


# ---------------------------------------------------------------- the lecture's L(L+1)/2 connections


def feature_sources(rep):
    """For a row path, the tensors its first input is a concatenation of, seen through `concat`
    rows (JSON `inputs`): the block input and the new features of every earlier layer."""
    rows = {r.path: r for r in rep.rows}

    def sources(path):
        r = rows[path]
        if r.type == "concat":
            return [s for i in r.inputs for s in sources(i)]
        return [path]

    return lambda path: sources(rows[path].inputs[0])


def dense_layer_fan_in(rep, block: str) -> list[int]:
    """How many feature-map tensors each layer of a dense block reads, in order."""
    sources = feature_sources(rep)
    paths = sorted((r.path for r in rep.rows if re.fullmatch(rf"{block}/denselayer_\d+/new/norm1", r.path)),
                   key=lambda p: int(re.search(r"denselayer_(\d+)", p)[1]))
    return [len(sources(p)) for p in paths]


def test_a_6_layer_dense_block_has_21_connections():
    # Huang et al. section 3 / CS231n lecture 9: "L(L+1)/2 direct connections". Dense block (1) of
    # densenet121 has L = 6 layers; layer l reads x0 and the l - 1 earlier layers' new features:
    # 1 + 2 + 3 + 4 + 5 + 6 = 6 x 7 / 2 = 21.
    rep = report("densenet121")
    fan_in = dense_layer_fan_in(rep, "denseblock1")
    assert fan_in == [1, 2, 3, 4, 5, 6]
    assert sum(fan_in) == 6 * 7 // 2 == 21
    # ... and exactly those tensors: the block input (pool0) and each earlier layer's conv2 output.
    sources = feature_sources(rep)
    assert sources("denseblock1/denselayer_4/new/norm1") == [
        "pool0", *(f"denseblock1/denselayer_{i}/new/conv2" for i in (1, 2, 3))]
    # The transition after the block reads all seven: 28 = 7 x 8 / 2 with it.
    assert len(sources("transition1/norm")) == 7


@pytest.mark.parametrize("name", [*IMAGENET, CIFAR])
def test_every_dense_block_has_l_l_plus_1_over_2_connections(name):
    spec = archcalc.load(name)
    blocks = ([spec.args[f"n{i}"] for i in range(1, 5)] if name in IMAGENET else [spec.args["n"]] * 3)
    rep = archcalc.analyze(spec)
    for i, n in enumerate(blocks, start=1):
        fan_in = dense_layer_fan_in(rep, f"denseblock{i}")
        assert fan_in == list(range(1, n + 1))
        assert sum(fan_in) == n * (n + 1) // 2   # 21, 78, 300, 136 for densenet121


def test_figure1_s_5_layer_dense_block_has_15_connections():
    # The paper's Fig. 1 (catalogue densenet.connections): x0, four composite layers H1..H4 of growth
    # rate k = 4 and the transition that reads them all, "5 layers": 5 x 6 / 2 = 15 connections;
    # the transition reads k0 + 4k maps (catalogue densenet.growth_rate_example).
    text = """
name: fig1
input: [8, 16, 16]
layers:
  - densenet_block block: {n: 4, k: 4}
  - densenet_transition transition
"""
    rep = archcalc.analyze(archcalc.parse(text))
    sources = feature_sources(rep)
    fan_in = dense_layer_fan_in(rep, "block") + [len(sources("transition/norm"))]
    assert fan_in == [1, 2, 3, 4, 5]
    assert sum(fan_in) == 15
    assert rep.find("transition/norm").out[0] == 8 + 4 * 4
    assert [rep.find(f"block/denselayer_{i}/new/norm1").out[0] for i in (1, 2, 3, 4)] == [8, 12, 16, 20]


def block_links(rep, block: str) -> int:
    from archcalc.report import aggregate

    return aggregate(rep, block).links


@pytest.mark.parametrize("name", [*IMAGENET, CIFAR])
def test_every_dense_block_s_links_are_l_l_plus_1_over_2(name):
    # archcalc's graph-derived `links` of each dense block against two independent sources: the
    # lecture's formula L(L+1)/2 with L from the paper's Table 1 / 2 (IMAGENET above; 16 per block
    # for L = 100), and this file's own count of each layer's fan-in through the concat rows.
    layers = IMAGENET[name][1] if name in IMAGENET else (16, 16, 16)
    rep = report(name)
    for i, n in enumerate(layers, start=1):
        links = block_links(rep, f"denseblock{i}")
        assert links == n * (n + 1) // 2 == sum(dense_layer_fan_in(rep, f"denseblock{i}"))


def test_densenet121_links_in_the_depth_1_table_and_json():
    # `archcalc table densenet121 --depth 1` and its JSON: 21, 78, 300, 136 (6 x 7 / 2, 12 x 13 / 2,
    # 24 x 25 / 2, 16 x 17 / 2); a transition is a chain of four rows (one link each), a single
    # layer has none.
    rep = report("densenet121")
    rows = archcalc.collapse(rep, 1)
    links = {r.path: r.links for r in rows}
    assert [links[f"denseblock{i}"] for i in (1, 2, 3, 4)] == [21, 78, 300, 136]
    assert links["transition1"] == 4 and links["conv0"] == 0
    data = archcalc.to_dict(rep, rows)
    assert {e["path"]: e["links"] for e in data["layers"]}["denseblock3"] == 300
    from archcalc.formats.columns import COLUMNS

    assert COLUMNS["links"].value(rows[3], rep) == rows[3].links


@pytest.mark.parametrize("n", [1, 2, 5])
def test_a_lone_dense_block_of_n_layers_has_n_n_plus_1_over_2_links(n):
    # Fig. 1 of the paper counts its transition as the 5th layer: a block of 5 has 15 = 5 x 6 / 2.
    rep = archcalc.analyze(archcalc.parse(f"name: b\ninput: [8, 16, 16]\nlayers:\n  - densenet_block block: {{n: {n}, k: 4}}\n"))
    assert block_links(rep, "block") == n * (n + 1) // 2 == {1: 1, 2: 3, 5: 15}[n]


# ---------------------------------------------------------------- what the concatenations cost


def test_each_dense_layer_keeps_its_own_concatenation():
    # densenet121 dense block (1) at 56 x 56: layer l's norm1 keeps a tensor of 64 + 32(l - 1)
    # channels, a storage of its own: 64 + 96 + ... + 224 = 864 channels, 2,709,504 elements.
    rep = report("densenet121")
    norm1 = [r for r in rep.rows if re.fullmatch(r"denseblock1/denselayer_\d/new/norm1", r.path)]
    assert [r.out[0] for r in norm1] == [64, 96, 128, 160, 192, 224]
    assert sum(r.saved_elems for r in norm1) == 864 * 56 * 56 == 2_709_504
    assert len({r.tensor_in for r in norm1}) == 6
    # The block's output, 256 channels, is a seventh storage, kept by transition1's BN.
    assert rep.find("transition1/norm").saved_elems == 256 * 56 * 56


# ---------------------------------------------------------------- the paper's numbers


@pytest.mark.parametrize("name", [*IMAGENET, CIFAR])
def test_the_depth_in_the_name_counts_conv_and_fc_layers(name):
    # 1 stem conv + 2 convs per bottleneck layer + 1 conv per transition + the classifier.
    depth = {CIFAR: 100}.get(name) or int(name.removeprefix("densenet"))
    rows = report(name).rows
    assert sum(r.type in ("conv", "fc") for r in rows) == depth
    if name in IMAGENET:
        k, blocks = IMAGENET[name]
        spec = archcalc.load(name)
        assert (spec.args["k"], tuple(spec.args[f"n{i}"] for i in range(1, 5))) == (k, blocks)
        assert 1 + 2 * sum(blocks) + 3 + 1 == depth


@pytest.mark.parametrize("name", list(IMAGENET))
def test_channels_grow_by_k_per_layer_and_halve_at_transitions(name):
    k, blocks = IMAGENET[name]
    rep = report(name)
    c = 2 * k  # the stem's 2k maps
    for i, n in enumerate(blocks, start=1):
        c += n * k
        assert rep.find(f"denseblock{i}/denselayer_{n}/concat1").out[0] == c  # the block's output
        if i < 4:
            c //= 2
            assert rep.find(f"transition{i}/pool").out[0] == c
    assert rep.find("classifier").params == c * 1000 + 1000


@pytest.mark.parametrize("depth, k, table2", [(100, 12, "0.8M"), (250, 24, "15.3M"), (190, 40, "25.6M")])
def test_table2_densenet_bc_params(depth, k, table2):
    # Table 2's three DenseNet-BC rows, with (L - 4) / 6 bottleneck layers per block: the bundled
    # spec with its two arguments edited, against the torch build and the paper's rounded count.
    text = archcalc.spec.bundled_text(CIFAR)
    args = "  k: 12             # growth rate\n  n: 16 "
    assert text.count(args) == 1
    n = (depth - 4) // 6
    spec = archcalc.parse(text.replace(args, f"  k: {k}             # growth rate\n  n: {n} "), file=f"bc{depth}")
    params = archcalc.analyze(spec).totals.params
    assert sum(r.type in ("conv", "fc") for r in archcalc.analyze(spec).rows) == depth
    assert f"{params / 1e6:.1f}M" == table2
    if torch is not None:
        assert params == sum(p.numel() for p in cifar_densenet_bc(k, n).parameters())
