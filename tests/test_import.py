"""archcalc import: ONNX and torch.fx graphs back to readable specs, proven by round trips.

The independent side of every comparison is not the importer: for ONNX, the bundled spec itself
(built in torch by archcalc.build, exported by torch's own ONNX exporter, imported back); for
torch.fx, torchvision's parameter count and FlopCounterMode's FLOPs / 2. The bundled specs'
numbers are in turn checked against papers and torchvision by their own ``expect:`` blocks.

Without the onnx package (the ``onnx`` extra) the ONNX tests skip, or fail when
ARCHCALC_REQUIRE_ONNX=1 (set by .ci/run), so CI cannot pass by skipping the round trips.
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

import archcalc

sys.path.insert(0, str(Path(__file__).parent))
from conftest import require_extra  # noqa: E402
from roundtrip import differences, round_trip  # noqa: E402

REPO = Path(__file__).resolve().parent.parent

# One of each kind of graph the importer has to recover: plain chains (with LRN, dropout, ceil
# pooling), residual adds with projections, Inception concats, inverted residuals, DenseNet's
# growing concat, ShuffleNet's chunk and channel shuffle, EfficientNet's SE gate and stochastic depth.
REPRESENTATIVE = ["alexnet", "vgg16", "resnet18", "resnet50_tv", "googlenet", "mobilenet_v2", "densenet121",
                  "shufflenet_v2_x0_5", "efficientnet_b0"]
# Bundled specs whose ONNX export the importer cannot read back: LeNet's trainable subsample is
# exported with its coefficient expanded over the window (Equal/Where on constant shapes, ops the
# spec language has no layer for); test_not_importable_is_current keeps the list honest.
NOT_IMPORTABLE = {"lenet1": "subsample's expanded kernel exports as 'Equal' on constants",
                  "lenet5_paper": "subsample's expanded kernel exports as 'Equal' on constants"}


def _require_onnx():
    """Skip without the onnx extra, or fail when .ci/run set ARCHCALC_REQUIRE_ONNX=1."""
    if importlib.util.find_spec("onnx") is None:
        require_extra("ARCHCALC_REQUIRE_ONNX", "onnx is not installed (pip install '.[onnx]')")


def _check_round_trip(name: str, tmp_path: Path) -> str:
    _require_onnx()
    a, b, text = round_trip(name, tmp_path)
    assert not differences(a, b), f"{name}: " + "; ".join(differences(a, b))
    assert a["params"] > 0 and sum(a["weighted_rows"].values()) > 0  # a comparison that can fail
    return text


@pytest.mark.torch
@pytest.mark.parametrize("name", REPRESENTATIVE)
def test_onnx_round_trip(name, tmp_path):
    _check_round_trip(name, tmp_path)


def _all_buildable():
    return [n for n in archcalc.bundled_names() if n not in set(NOT_IMPORTABLE) | set(REPRESENTATIVE)]


@pytest.mark.slow
@pytest.mark.torch
@pytest.mark.parametrize("name", _all_buildable())
def test_onnx_round_trip_every_bundled_spec(name, tmp_path):
    _check_round_trip(name, tmp_path)


@pytest.mark.torch
@pytest.mark.parametrize("name", sorted(NOT_IMPORTABLE))
def test_not_importable_is_current(name, tmp_path):
    from archcalc.importers import UnsupportedOp

    _require_onnx()
    with pytest.raises(UnsupportedOp, match="Equal"):
        round_trip(name, tmp_path)


@pytest.mark.torch
def test_round_trip_keeps_blocks_readable(tmp_path):
    """ResNet-50 (torchvision's) comes back as one bottleneck block called once per stage."""
    text = _check_round_trip("resnet50_tv", tmp_path)
    assert len(text.splitlines()) < 40, text
    assert "blocks:" in text and "times: 6, first: {s: 2}" in text, text


@pytest.mark.torchvision
def test_torchvision_resnet50(tmp_path):
    """torchvision:resnet50 traced with torch.fx: torchvision's parameters and FlopCounterMode's
    MACs, in a spec well under 80 lines that uses a block."""
    import torch
    import torchvision
    from torch.utils.flop_counter import FlopCounterMode

    from click.testing import CliRunner

    from archcalc.cli import main

    out = tmp_path / "resnet50.yaml"
    r = CliRunner().invoke(main, ["import", "torchvision:resnet50", "-o", str(out)])
    assert r.exit_code == 0, r.output
    text = out.read_text()
    report = archcalc.analyze(archcalc.load(str(out)))
    model = torchvision.models.resnet50(weights=None).eval()
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.zeros(1, 3, 224, 224))
    assert report.totals.params == sum(p.numel() for p in model.parameters()) == 25557032
    assert report.totals.macs == counter.get_total_flops() // 2 == 4089184256
    assert len(text.splitlines()) < 80 and "blocks:" in text and "times: 3" in text, text
    # the same numbers as the bundled spec written by hand from the paper and torchvision
    bundled = archcalc.analyze(archcalc.load("resnet50_tv"))
    assert (report.totals.params, report.totals.macs) == (bundled.totals.params, bundled.totals.macs)
    assert report.rows[-1].out == (1000,)


@pytest.mark.torchvision
@pytest.mark.parametrize("name,kwargs", [
    ("googlenet", {"aux_logits": False}),  # the aux heads are not in the traced eval graph
    ("mobilenet_v3_large", {}),            # hardswish, SE with hardsigmoid
    ("shufflenet_v2_x1_0", {}),            # chunk, channel shuffle via view/transpose
    ("efficientnet_b0", {}),               # SiLU, SE, StochasticDepth
])
def test_torchvision_models(name, kwargs):
    import torch
    import torchvision
    from torch.utils.flop_counter import FlopCounterMode

    from archcalc.importers import import_model

    text = import_model(f"torchvision:{name}")
    report = archcalc.analyze(archcalc.parse(text, f"{name}.yaml"))
    model = torchvision.models.get_model(name, weights=None, **kwargs).eval()
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.zeros(1, 3, 224, 224))
    assert report.totals.params == sum(p.numel() for p in model.parameters())
    assert report.totals.macs == counter.get_total_flops() // 2
    assert "blocks:" in text


@pytest.mark.torch
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the TorchScript exporter's own deprecation notice
def test_unsupported_onnx_op_is_one_line_exit_2(tmp_path):
    """An op the spec language has no layer for: one line naming the op and the node, exit 2."""
    _require_onnx()
    import torch

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 8, 3)

        def forward(self, x):
            return torch.sin(self.conv(x))

    path = tmp_path / "sin.onnx"
    torch.onnx.export(Net(), (torch.zeros(1, 3, 16, 16),), str(path), dynamo=False)
    r = subprocess.run([sys.executable, "-m", "archcalc", "import", str(path)], capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "unsupported ONNX op 'Sin'" in lines[0] and "sin.onnx" in lines[0] and "Sin" in lines[0], lines[0]


@pytest.mark.torch
def test_unsupported_torch_op_is_one_line_exit_2(tmp_path):
    pkg = tmp_path / "oddnet.py"
    pkg.write_text("import torch\n\nclass Odd(torch.nn.Module):\n    def __init__(self):\n        super().__init__()\n"
                   "        self.conv = torch.nn.Conv2d(3, 8, 3)\n\n    def forward(self, x):\n"
                   "        return torch.sin(self.conv(x))\n\ndef make():\n    return Odd()\n")
    env = dict(os.environ, PYTHONPATH=f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    r = subprocess.run([sys.executable, "-m", "archcalc", "import", "oddnet:make", "--input", "3x16x16"],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "unsupported torch op call_function sin at node 'sin'" in lines[0], r.stderr


def test_missing_file_and_bad_target_exit_2(tmp_path):
    for target in (str(tmp_path / "nope.onnx"), "model.h5"):
        r = subprocess.run([sys.executable, "-m", "archcalc", "import", target], capture_output=True, text=True)
        if "needs onnx" in r.stderr:
            pytest.skip("onnx is not installed")
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_block_recovery_on_a_hand_made_graph():
    """The common part alone (no framework): a residual block repeated with a stride change is
    one block called with times/first, and its numbers equal the same network written by hand."""
    from archcalc.importers import Layer, to_spec

    layers = [Layer(0, "input", {}, [], (16, 32, 32))]

    def add(type_, args, inputs, out):
        layers.append(Layer(len(layers), type_, args, inputs, out))
        return len(layers) - 1

    x = 0
    c, hw = 16, 32
    for i, s in enumerate([1, 1, 2, 1]):
        if s == 2:
            c, hw = c * 2, hw // 2
        a = add("conv", {"out": c, "k": 3, "s": s, "p": 1, "bias": False}, [x], (c, hw, hw))
        a = add("batchnorm", {}, [a], (c, hw, hw))
        a = add("relu", {}, [a], (c, hw, hw))
        b = add("conv", {"out": c, "k": 3, "s": 1, "p": 1, "bias": False}, [a], (c, hw, hw))
        b = add("batchnorm", {}, [b], (c, hw, hw))
        skip = x
        if s == 2:
            skip = add("conv", {"out": c, "k": 1, "s": 2, "p": 0, "bias": False}, [x], (c, hw, hw))
            skip = add("batchnorm", {}, [skip], (c, hw, hw))
        m = add("add", {}, [b, skip], (c, hw, hw))
        x = add("relu", {}, [m], (c, hw, hw))
    text = to_spec(layers, name="tiny", source="test")
    assert "times: 2" in text and "first: {s: 2}" in text, text
    imported = archcalc.analyze(archcalc.parse(text, "tiny.yaml"))
    by_hand = archcalc.analyze(archcalc.parse(
        "name: tiny\ninput: [16, 32, 32]\nlayers:\n  - basic: {planes: 16, times: 2}\n"
        "  - basic: {planes: 32, times: 2, first: {s: 2}}\n", "hand.yaml"))
    assert imported.totals.params == by_hand.totals.params
    assert imported.totals.macs == by_hand.totals.macs
    # 2 x (2 x 16*16*9 + BN 2*2*16) + 32*16*9 + 32*32*9 + 2 BN of 2*32 + 1x1 16*32 + BN 2*32 + 32*32*9 x 2 + 2 BN
    assert imported.totals.params == 2 * (2 * 2304 + 64) + (4608 + 9216 + 128) + (512 + 64) + (2 * 9216 + 128)
