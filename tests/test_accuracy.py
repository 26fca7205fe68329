"""The specs' `accuracy:` metadata (published ImageNet accuracy with its source): validated where it is
read, a family member's own (never inherited), and every figure taken from torchvision's documented
weights equal to what torchvision itself ships."""
from __future__ import annotations

import re

import pytest

from archcalc import bundled_names, load
from archcalc.spec import SpecError, parse

# The networks `archcalc plot --compare` is shown with in the docs and the issue.
CHART = ["alexnet", "vgg16", "vgg19", "googlenet", "resnet18", "resnet50", "resnet152", "inception_v3", "densenet121",
         "mobilenet_v2", "squeezenet1_0", "efficientnet_b0"]
TORCHVISION_SOURCE = re.compile(r"^torchvision (\w+_Weights)\.(\w+) ")


def with_accuracy():
    return [(n, load(n).accuracy) for n in bundled_names() if load(n).accuracy]


def test_chart_networks_have_sourced_accuracy():
    for name in CHART:
        acc = load(name).accuracy
        assert acc, name
        assert 50 < acc["top1"] < acc["top5"] < 100, name
        assert len(acc["source"]) > 30, name


def test_family_members_do_not_inherit_accuracy():
    # vgg11 has torchvision's 69.02 %; vgg11_lrn (no trained model published by torchvision) has none.
    assert load("vgg11").accuracy["top1"] == 69.02
    assert load("vgg11_lrn").accuracy is None
    assert load("resnet18").accuracy["top1"] != load("resnet50").accuracy["top1"]


BASE = "name: n\ninput: [3, 8, 8]\nlayers:\n  - conv c: {out: 4, k: 3}\n"


@pytest.mark.parametrize("text, message, line", [
    ("accuracy: 70\n", "accuracy must be a mapping", 5),
    ("accuracy: {top1: 70}\n", "missing 'source'", 5),
    ("accuracy: {top5: 90, source: x}\n", "missing 'top1'", 5),
    ("accuracy:\n  top1: 170\n  source: x\n", "top1 must be a percentage between 0 and 100, got 170", 6),
    ("accuracy:\n  top1: 70\n  source: x\n  top_5: 90\n", "unknown key 'top_5'", 8),
    ("accuracy: {top1: '70', source: x}\n", "top1 must be a percentage", 5),
    ("accuracy: {top1: 70, source: ''}\n", "source must be non-empty text", 5),
])
def test_bad_accuracy_is_located(text, message, line):
    with pytest.raises(SpecError) as e:
        parse(BASE + text, file="net.yaml")
    assert message in e.value.message
    assert e.value.line == line and e.value.file == "net.yaml"


def test_accuracy_in_a_variant_is_checked():
    text = BASE + "variants:\n  m:\n    accuracy: {top1: 101, source: x}\n"
    with pytest.raises(SpecError, match="top1 must be a percentage"):
        parse(text, file="net.yaml", variant="m")
    ok = parse(BASE + "accuracy: {top1: 70.5, top5: 90, source: paper}\n" + "variants:\n  m: {}\n", variant="m")
    assert ok.accuracy is None


@pytest.mark.torchvision
def test_torchvision_accuracies_match_torchvision_weights():
    """Every accuracy quoted from torchvision's documented weights is the figure torchvision ships in
    the weights' metadata (the numbers its model pages print)."""
    from torchvision import models

    checked = []
    for name, acc in with_accuracy():
        m = TORCHVISION_SOURCE.match(acc["source"])
        if not m:
            continue
        weights = getattr(models, m.group(1))[m.group(2)]
        metrics = weights.meta["_metrics"]["ImageNet-1K"]
        assert (acc["top1"], acc["top5"]) == (metrics["acc@1"], metrics["acc@5"]), name
        checked.append(name)
    assert len(checked) >= 20, checked
