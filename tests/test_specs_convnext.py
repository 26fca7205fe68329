"""ConvNeXt (specs/convnext_tiny.yaml, blocks/convnext.yaml) against torchvision.

- Parameters for every member (the model built on the meta device), and the stochastic-depth probability
  of every block, in order, against torchvision's StochasticDepth modules.
- MACs = FlopCounterMode / 2, the output shape of every Conv2d and Linear in execution order, and
  the elements and bytes autograd keeps for backward (train mode, so stochastic depth draws its
  per-sample noise) for convnext_tiny in the default run; small, base and large (34 GMACs at 224)
  with --run-slow.

torchvision's pointwise layers are ``nn.Linear(dim, 4 dim)`` and ``nn.Linear(4 dim, dim)`` on a
channels-last view (``Permute([0, 2, 3, 1])``); the spec writes them as 1x1 convs, with the same
weights, biases and MACs. Their outputs are (N, H, W, C) in torchvision and C x H x W in archcalc,
so the shape comparison reads a 4-D Linear output (H, W, C) as (C, H, W) (``run_channels_first``);
the classifier's Linear, on a vector, is compared as it is. The saved-for-backward comparison
needs no mapping: the permutes are views, a Linear keeps its input as a 1x1 conv does (the
LayerNorm's output, whatever its layout), LayerNorm keeps its input plus a mean and 1/std per
position, GELU its input, the layer scale its input, stochastic depth one noise value per sample.
"""
from __future__ import annotations

import pytest

import archcalc

try:  # imported lazily so that the core test run works without the torch extra
    import torch
    import torchvision
    from torch.utils.flop_counter import FlopCounterMode
except ImportError:  # pragma: no cover - conftest skips (or, in CI, fails) the marked tests
    torch = None

from test_torchvision import first_difference, stat_buffers, weighted_shapes, with_fused_dropout  # noqa: E402
from test_torch_layers import torch_saved  # noqa: E402

pytestmark = [pytest.mark.torch, pytest.mark.torchvision]

MEMBERS = ["convnext_tiny", "convnext_small", "convnext_base", "convnext_large"]
# torchvision's CNBlockConfig widths and depths, and its default stochastic_depth_prob.
TORCHVISION_CONFIG = {
    "convnext_tiny": ((96, 192, 384, 768), (3, 3, 9, 3), 0.1),
    "convnext_small": ((96, 192, 384, 768), (3, 3, 27, 3), 0.4),
    "convnext_base": ((128, 256, 512, 1024), (3, 3, 27, 3), 0.5),
    "convnext_large": ((192, 384, 768, 1536), (3, 3, 27, 3), 0.5),
}


def full(names):
    """The default run checks convnext_tiny; the others are marked slow."""
    return [n if n == "convnext_tiny" else pytest.param(n, marks=pytest.mark.slow) for n in names]


def build(name, device=None):
    """The torchvision model; on the meta device (shapes without data) when only its parameters
    and modules are counted, which skips initialising 200M weights for convnext_large."""
    torch.manual_seed(0)
    with torch.device(device or "cpu"):
        return getattr(torchvision.models, name)(weights=None)


def run_channels_first(model, input_shape):
    """One forward pass at batch 1: (FLOPs, [Conv2d/Linear output shapes in execution order]), a
    Linear's channels-last (H, W, C) output given as (C, H, W), the order archcalc's 1x1 convs use."""
    shapes = []

    def hook(module, inputs, out):
        shape = tuple(out.shape[1:])
        if isinstance(module, torch.nn.Linear) and len(shape) == 3:
            shape = (shape[2], shape[0], shape[1])
        shapes.append(shape)

    hooks = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(torch.zeros((1, *input_shape)))
    finally:
        for h in hooks:
            h.remove()
    return counter.get_total_flops(), shapes


def block_probabilities(report):
    """The p of every block's drop_path row, in network order."""
    return [r.args["p"] for r in report.rows if r.type == "drop_path"]


def test_the_family_is_the_four_members():
    assert archcalc.spec.variant_names(archcalc.spec.bundled_text("convnext_tiny")) == MEMBERS[1:]


@pytest.mark.parametrize("name", MEMBERS)
def test_stages_are_torchvisions_configuration(name):
    widths, depths, _ = TORCHVISION_CONFIG[name]
    report = archcalc.analyze(archcalc.load(name))
    blocks = {}
    for r in report.rows:
        parts = r.path.split("/")
        if r.type == "dwconv":
            blocks.setdefault(parts[0], []).append(r.out[0])
    assert [len(blocks[f"stage{i}"]) for i in range(1, 5)] == list(depths)
    assert [set(blocks[f"stage{i}"]) for i in range(1, 5)] == [{w} for w in widths]


@pytest.mark.parametrize("name", MEMBERS)
def test_params_and_stochastic_depth_match_torchvision(name):
    report = archcalc.analyze(archcalc.load(name))
    model = build(name, device="meta")
    params = sum(p.numel() for p in model.parameters())
    assert report.totals.params == params, f"params: archcalc {report.totals.params:,}, torchvision {params:,}"
    assert report.totals.buffer_elems == stat_buffers(model) == 0
    # stochastic_depth_prob * block_id / (total_blocks - 1.0), block by block over the network
    theirs = [m.p for m in model.modules() if isinstance(m, torchvision.ops.StochasticDepth)]
    assert block_probabilities(report) == theirs
    assert theirs[0] == 0.0 and theirs[-1] == TORCHVISION_CONFIG[name][2]


@pytest.mark.parametrize("name", full(MEMBERS))
def test_macs_and_conv_shapes_match_torchvision(name):
    report = archcalc.analyze(archcalc.load(name))
    flops, shapes = run_channels_first(build(name).eval(), report.input)
    assert flops % 2 == 0
    assert report.totals.macs == flops // 2, f"MACs: archcalc {report.totals.macs:,}, torchvision {flops // 2:,}"
    ours = weighted_shapes(report, aux=False)
    assert ours == shapes, first_difference(ours, shapes)


@pytest.mark.parametrize("name", full(MEMBERS))
def test_saved_for_backward_matches_autograd(name):
    report = archcalc.analyze(archcalc.load(name))
    theirs = torch_saved(with_fused_dropout(build(name)), report.input)
    t = report.totals
    ours = (t.saved_elems, t.saved_fixed_bytes + t.saved_batch_bytes)  # batch 1
    assert ours == theirs, "saved for backward (activation elements, fixed bytes): archcalc vs autograd"
