"""Every bundled spec that has a torchvision counterpart, counted by torchvision itself.

For each pair the test builds the torchvision model (``weights=None``, eval mode) at the spec's
input and runs one forward pass at batch 1, then compares with archcalc:

- total parameters: ``sum(p.numel() for p in model.parameters())`` (BN running statistics are
  buffers, not parameters; they are compared apart with the spec's ``buffer_elems``, leaving out
  torch's one-element ``num_batches_tracked`` counters, which archcalc does not model),
- MACs: ``torch.utils.flop_counter.FlopCounterMode`` total FLOPs / 2,
- the output shape of every ``Conv2d`` and ``Linear``, in execution order (forward hooks), against
  the archcalc rows that hold a conv or an fc (conv, dwconv, fc, and projection shortcuts), in
  spec order; so a spec whose branches are listed in another order than torchvision runs them
  fails here too.

Backward memory: the elements and bytes autograd keeps in a training-mode pass (seen through
``saved_tensors_hooks``) against archcalc's ``saved_elems``, ``saved_fixed_bytes`` and
``saved_batch_bytes``: equal for every network.

GoogLeNet and Inception-v3 are also built with ``aux_logits=True`` and their auxiliary classifiers
compared with the spec's ``aux_totals`` (params, MACs counted in a training-mode pass minus the
eval-mode pass, and the aux convs' and linears' output shapes).

The list is fixed: a spec missing from specs/ fails (it does not skip), so the cross-check cannot
silently shrink.
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

pytestmark = [pytest.mark.torch, pytest.mark.torchvision]

# spec name -> (torchvision builder, keyword arguments besides weights=None)
COUNTERPARTS = {
    "alexnet_tv": ("alexnet", {}),
    "vgg11": ("vgg11", {}),
    "vgg13": ("vgg13", {}),
    "vgg16": ("vgg16", {}),
    "vgg19": ("vgg19", {}),
    "vgg11_bn": ("vgg11_bn", {}),
    "vgg13_bn": ("vgg13_bn", {}),
    "vgg16_bn": ("vgg16_bn", {}),
    "vgg19_bn": ("vgg19_bn", {}),
    "googlenet_tv": ("googlenet", {"aux_logits": False, "init_weights": False}),
    "inception_v3": ("inception_v3", {"aux_logits": False, "init_weights": False}),
    "resnet18": ("resnet18", {}),
    "resnet34": ("resnet34", {}),
    "resnet50_tv": ("resnet50", {}),
    "resnet101_tv": ("resnet101", {}),
    "resnet152_tv": ("resnet152", {}),
}
# The auxiliary classifiers: spec name -> names of the aux modules in the torchvision model.
AUX_MODULES = {"googlenet_tv": ("aux1", "aux2"), "inception_v3": ("AuxLogits",)}

WEIGHTED_ROWS = ("conv", "dwconv", "fc")


def weighted_shapes(report, aux: bool) -> list[tuple]:
    """Output shapes of the rows that run a Conv2d or Linear, in spec order."""
    return [
        tuple(r.out) for r in report.rows
        if r.aux == aux and (r.type in WEIGHTED_ROWS or (r.type == "shortcut" and r.macs > 0))
    ]


def run(model, input_shape, batch=1, modules=None):
    """One forward pass: (FLOPs, [Conv2d/Linear output shapes in execution order, batch dropped])."""
    shapes = []
    hooks = [
        m.register_forward_hook(lambda mod, inp, out: shapes.append(tuple(out.shape[1:])))
        for m in (modules if modules is not None else model.modules())
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))
    ]
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(torch.zeros((batch, *input_shape)))
    finally:
        for h in hooks:
            h.remove()
    return counter.get_total_flops(), shapes


def build(name, **overrides):
    builder, kwargs = COUNTERPARTS[name]
    torch.manual_seed(0)
    return getattr(torchvision.models, builder)(weights=None, **{**kwargs, **overrides})


def stat_buffers(model) -> int:
    return sum(b.numel() for n, b in model.named_buffers() if not n.endswith("num_batches_tracked"))


def first_difference(ours, theirs) -> str:
    for i, (a, b) in enumerate(zip(ours, theirs)):
        if a != b:
            return f"first difference at conv/fc #{i}: archcalc {a}, torchvision {b}"
    return f"archcalc has {len(ours)} conv/fc rows, torchvision ran {len(theirs)} Conv2d/Linear"


@pytest.mark.parametrize("name", list(COUNTERPARTS))
def test_matches_torchvision(name):
    report = archcalc.analyze(archcalc.load(name))  # a missing spec fails here, on purpose
    model = build(name).eval()
    flops, shapes = run(model, report.input)

    params = sum(p.numel() for p in model.parameters())
    assert report.totals.params == params, f"params: archcalc {report.totals.params:,}, torchvision {params:,}"
    assert flops % 2 == 0
    assert report.totals.macs == flops // 2, f"MACs: archcalc {report.totals.macs:,}, torchvision {flops // 2:,}"
    ours = weighted_shapes(report, aux=False)
    assert ours == shapes, first_difference(ours, shapes)
    assert report.totals.buffer_elems == stat_buffers(model), "BN running mean + var elements"


@pytest.mark.parametrize("name", list(AUX_MODULES))
def test_aux_classifiers_match_torchvision(name):
    report = archcalc.analyze(archcalc.load(name))
    assert report.aux_totals is not None, f"{name} has no aux branches"
    model = build(name, aux_logits=True)
    aux = [getattr(model, m) for m in AUX_MODULES[name]]

    aux_params = sum(p.numel() for m in aux for p in m.parameters())
    assert report.aux_totals.params == aux_params
    assert report.aux_totals.buffer_elems == sum(stat_buffers(m) for m in aux)

    # The aux heads run only in training mode. Batch 2: Inception-v3's aux head batch-normalises a
    # 1x1 map, which needs more than one value per channel in training.
    batch = 2
    eval_flops, _ = run(model.eval(), report.input, batch)
    train_flops, aux_shapes = run(model.train(), report.input, batch,
                                  modules=[m for head in aux for m in head.modules()])
    aux_macs = (train_flops - eval_flops) // 2 // batch
    assert report.aux_totals.macs == aux_macs, f"aux MACs: archcalc {report.aux_totals.macs:,}, torchvision {aux_macs:,}"
    ours = weighted_shapes(report, aux=True)
    assert ours == aux_shapes, first_difference(ours, aux_shapes)


# ---------------------------------------------------------------- saved for backward, whole networks

# Autograd's count and the GPU's dropout, as the layer-level checks define them.
from test_torch_layers import NativeDropout, torch_saved  # noqa: E402


def with_fused_dropout(module):
    for name, child in module.named_children():
        if isinstance(child, torch.nn.Dropout):
            setattr(module, name, NativeDropout(child.p))
        else:
            with_fused_dropout(child)
    return module


@pytest.mark.parametrize("name", list(COUNTERPARTS))
def test_saved_for_backward_matches_autograd(name):
    report = archcalc.analyze(archcalc.load(name))
    torch.manual_seed(0)
    model = with_fused_dropout(build(name))
    if name.startswith("vgg"):
        # The VGG specs are the paper's Table 1, without torchvision's AdaptiveAvgPool2d((7, 7)):
        # an identity at 224 for every count, but in training it writes a 512x7x7 copy fc6 keeps.
        model.avgpool = torch.nn.Identity()
    theirs = torch_saved(model, report.input)
    t = report.totals
    ours = (t.saved_elems, t.saved_fixed_bytes + t.saved_batch_bytes)  # batch 1
    assert ours == theirs, "saved for backward (activation elements, fixed bytes): archcalc vs autograd"


def assert_counts_match(report, model):
    """The whole-network cross-check every spec family's tests share: MACs = FlopCounterMode / 2,
    every Conv2d/Linear output shape in order, and what autograd keeps for backward in a
    training pass (dropout as CUDA's fused kernel) equal to archcalc's saved totals."""
    flops, shapes = run(model.eval(), report.input)
    assert flops % 2 == 0
    assert report.totals.macs == flops // 2, f"MACs: archcalc {report.totals.macs:,}, torch {flops // 2:,}"
    ours = weighted_shapes(report, aux=False)
    assert ours == shapes, first_difference(ours, shapes)
    t = report.totals
    theirs = torch_saved(with_fused_dropout(model), report.input)
    assert (t.saved_elems, t.saved_fixed_bytes + t.saved_batch_bytes) == theirs, \
        "saved for backward (activation elements, fixed bytes): archcalc vs autograd"
