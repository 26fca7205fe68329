"""MnasNet (Tan et al. 2019) as torchvision builds it: mnasnet0_5, mnasnet0_75, mnasnet1_0, mnasnet1_3.

torchvision's MNASNet(alpha) is MnasNet-B1 (no squeeze-excitation), the depth multiplier alpha its
one argument, which is the family's argument here: every depth is make_divisible(depth x alpha, 8),
an expression in the spec, never a number worked out by hand. Against torchvision: total parameters,
BN buffers, MACs = FlopCounterMode / 2, every Conv2d/Linear output shape in order, and the bytes
autograd keeps for backward in a training pass (in-place ReLUs, out-of-place residual adds, the
classifier's dropout as the GPU's fused kernel) must be identical.

Default run: parameters of every member (construction only) and the full cross-check of the smallest,
mnasnet0_5; the others in full with --run-slow.
"""
from __future__ import annotations

import pytest

import archcalc

try:  # imported lazily so that the core test run works without the torch extra
    import torch
    import torchvision
    from torchvision.models.mnasnet import _get_depths
except ImportError:  # pragma: no cover - conftest skips (or, in CI, fails) the marked tests
    torch = None

pytestmark = [pytest.mark.torch, pytest.mark.torchvision]

ALPHA = {"mnasnet0_5": 0.5, "mnasnet0_75": 0.75, "mnasnet1_0": 1.0, "mnasnet1_3": 1.3}
# torchvision's _stack(in, out, kernel, stride, expansion, repeats), layers[8:14]
STACKS = [(3, 2, 3, 3), (5, 2, 3, 3), (5, 2, 6, 3), (3, 1, 6, 2), (5, 2, 6, 4), (3, 1, 6, 1)]


def report(name: str):
    return archcalc.analyze(archcalc.load(name))


def torchvision_model(name: str):
    torch.manual_seed(0)
    return getattr(torchvision.models, name)(weights=None)


@pytest.mark.parametrize("name", list(ALPHA))
def test_params_and_buffers_match_torchvision(name):
    from test_torchvision import stat_buffers

    rep = report(name)
    model = torchvision_model(name)
    assert rep.totals.params == sum(p.numel() for p in model.parameters())
    assert rep.totals.buffer_elems == stat_buffers(model), "BN running mean + var elements"


def full_check(name: str):
    from test_torchvision import assert_counts_match

    rep = report(name)
    assert rep.warnings == [], "every floored size is declared with rounding: floor"
    model = torchvision_model(name)
    assert_counts_match(rep, model)


def test_smallest_member_matches_torchvision_in_full():
    full_check("mnasnet0_5")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mnasnet0_75", "mnasnet1_0", "mnasnet1_3"])
def test_every_member_matches_torchvision_in_full(name):
    full_check(name)


@pytest.mark.parametrize("name", list(ALPHA))
def test_depths_are_torchvision_s_rounding(name):
    # The eight depths of each member, read off the spec's rows: the stem conv, the separable
    # conv's 1x1, the last block of each of the six stacks. torchvision's _round_to_multiple_of.
    assert archcalc.load(name).args["alpha"] == ALPHA[name]
    rows = {r.path: r for r in report(name).rows}
    stacks = [f"stack{i}" if n == 1 else f"stack{i}_{n}" for i, (_, _, _, n) in enumerate(STACKS, 1)]
    depths = [rows["conv1"].out[0], rows["sepconv/pw"].out[0]] + [rows[f"{s}/main/project"].out[0] for s in stacks]
    assert depths == _get_depths(ALPHA[name])


@pytest.mark.parametrize("name", list(ALPHA))
def test_blocks_follow_torchvision_s_stacks(name):
    # Kernel, stride and expansion of every MBConv; a residual add exactly where in == out, stride 1.
    rows = report(name).rows
    of = lambda suffix: [r for r in rows if r.path.startswith("stack") and r.path.endswith(suffix)]
    expands, dws, projects = of("/expand"), of("/dw"), of("/project")
    expected = [(k, s if i == 0 else 1) for k, s, _, n in STACKS for i in range(n)]
    assert [(d.cost.window[0].k, d.cost.window[0].s) for d in dws] == expected
    # The expansion is t x the block's input: the separable conv's output, then each block's.
    inputs = [next(r for r in rows if r.path == "sepconv/pw").out[0]] + [p.out[0] for p in projects[:-1]]
    ts = [t for _, _, t, n in STACKS for _ in range(n)]
    assert [e.out[0] for e in expands] == [t * c for t, c in zip(ts, inputs)]
    adds = [r.path.split("/")[0] for r in rows if r.type == "add"]
    assert adds == [f"stack{i}_{j}" for i, (*_, n) in enumerate(STACKS, 1) for j in range(2, n + 1)]
