"""The Engine II spec constructs, each proved exact against the PyTorch module it describes.

Each case is a spec written as a user would write it (the new constructs: `mul`, `chunk`,
`channel_shuffle`, `from:`, `$in` expressions, `when:`, spec-level `args:` and `variants:`,
layer-list and type-name block arguments, and the shared blocks of specs/blocks/mobile.yaml),
with no width worked out by hand, and the equivalent torch module: torchvision's own building
block where it has one (``SqueezeExcitation``, MobileNetV2's and MobileNetV3's
``InvertedResidual``, ShuffleNetV2's ``InvertedResidual``, ResNet's ``BasicBlock``), else a small
module written here with the same wiring. At the spec's input, at batch 1 and 2, archcalc and torch
must agree on

- the output shape, the parameters (``sum(p.numel())``) and the BN running statistics (buffers,
  without torch's ``num_batches_tracked`` counters),
- the MACs: ``FlopCounterMode`` total / 2 (archcalc's per-sample count times the batch),
- the output shape of every ``Conv2d`` and ``Linear`` in execution order (forward hooks) against
  the report's conv/dwconv/fc rows in spec order,
- what autograd keeps for backward in a training-mode pass (``torch_saved`` of
  tests/test_torch_layers.py: storages counted once, a view counted at its storage's full size)
  against ``(saved_elems * batch, saved_fixed_bytes * batch + saved_batch_bytes)``.

The specs are also analysed without a warning: torchvision's stride-2 convs floor on even sizes,
which the blocks and specs declare with `rounding: floor`.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Callable

import pytest

import archcalc
from archcalc.spec import variant_names

try:  # imported lazily so that the core test run works without the torch extra
    import torch
    import torchvision  # noqa: F401 - the marker's module; the building blocks below come from it
    from torch import nn
    from torch.utils.flop_counter import FlopCounterMode
    from torchvision.models._utils import _make_divisible
    from torchvision.models.mobilenetv2 import InvertedResidual as MobileNetV2Block
    from torchvision.models.mobilenetv3 import InvertedResidual as MobileNetV3Block
    from torchvision.models.mobilenetv3 import InvertedResidualConfig
    from torchvision.models.resnet import BasicBlock
    from torchvision.models.shufflenetv2 import InvertedResidual as ShuffleUnit
    from torchvision.ops import SqueezeExcitation
except ImportError:  # pragma: no cover - conftest skips (or, in CI, fails) the marked tests
    torch = None

    class nn:  # noqa: N801 - lets the module-level nn.Module subclasses below be defined
        Module = object

pytestmark = [pytest.mark.torch, pytest.mark.torchvision]

# Autograd's count of saved tensors, conv + BN + ReLU layer lists, and the whole-network comparisons.
from test_torch_layers import cbr, torch_saved  # noqa: E402
from test_torchvision import first_difference, stat_buffers, weighted_shapes  # noqa: E402

BATCHES = (1, 2)


@dataclass(frozen=True)
class Case:
    text: str  # the spec
    build: Callable  # () -> the torch module
    variant: str | None = None  # a member of the spec's family

    def spec(self):
        return archcalc.parse(self.text, variant=self.variant)


def spec(input_shape, layers: str, *, blocks: str = "", top: str = "") -> str:
    """A spec from its layer list (and blocks, and other top-level keys), each an indented YAML text."""
    text = f"name: probe\ninput: {list(input_shape)}\n{top}"
    if blocks:
        text += f"blocks:\n{blocks}"
    return text + f"layers:\n{layers}"


# ---------------------------------------------------------------- 1. squeeze-excitation: mul

# The gate written out with `mul`: the first branch the input itself, the second the gate; the
# squeeze width from the block's input. torchvision's SqueezeExcitation builds nn.ReLU() and the
# scale activation out of place, and its 1x1 convs with biases.
SE_BLOCK = """\
  gated:
    args: {gate: sigmoid}
    body:
      - mul:
          x: []
          gate:
            - adaptive_avgpool: {out: 1}
            - conv fc1: {out: "make_divisible($in // 4, 8)", k: 1, act: relu, inplace: false}
            - conv fc2: {out: $in, k: 1}
            - $gate
"""


def se_module(c, scale=None):
    kwargs = {"scale_activation": scale} if scale else {}
    return SqueezeExcitation(input_channels=c, squeeze_channels=_make_divisible(c // 4, 8), **kwargs)


CASES: dict[str, Case] = {
    "se-sigmoid": Case(spec((40, 14, 14), "  - gated\n", blocks=SE_BLOCK), lambda: se_module(40)),
    # 72 // 4 = 18 -> 16 is below 0.9 x 18, so make_divisible gives 24.
    "se-hardsigmoid": Case(spec((72, 14, 14), "  - gated: {gate: hardsigmoid}\n", blocks=SE_BLOCK),
                           lambda: se_module(72, nn.Hardsigmoid)),
    # The shared library's block (MobileNetV3's gate), called by name.
    "se-library": Case(spec((120, 7, 7), "  - se: {gate: hardsigmoid}\n"), lambda: se_module(120, nn.Hardsigmoid)),
}


# ---------------------------------------------------------------- 2. ShuffleNet v2 units

CASES |= {
    # Stride 2: both branches read the whole input.
    "shuffle-s2": Case(spec((24, 16, 16), "  - shuffle_unit: {out: 48, s: 2}\n"), lambda: ShuffleUnit(24, 48, 2)),
    # Stride 1: chunk views of the input; branch2's conv keeps its half, so the whole input storage.
    "shuffle-s1": Case(spec((48, 8, 8), "  - shuffle_unit: {out: 48}\n"), lambda: ShuffleUnit(48, 48, 1)),
    # A stage as ShuffleNetV2 builds it: one stride-2 unit, then stride-1 units on the shuffled maps.
    "shuffle-stage": Case(spec((24, 16, 16), "  - shuffle_unit stage2: {out: 48, times: 3, first: {s: 2}}\n"),
                          lambda: nn.Sequential(ShuffleUnit(24, 48, 2), ShuffleUnit(48, 48, 1), ShuffleUnit(48, 48, 1))),
}


# ---------------------------------------------------------------- 3. cross-depth merges: from:

CROSS_DEPTH = spec((3, 16, 16), top="rounding: floor\n", blocks="""\
  stage:
    args: {out: ~, s: 1}
    body:
      - conv a: {out: $out, k: 3, s: $s, p: 1, bias: false, bn: true, act: relu}
      - conv b: {out: $out, k: 3, p: 1, bias: false, bn: true, act: relu}
""", layers="""\
  - conv stem: {out: 8, k: 3, p: 1, bias: false, bn: true, act: relu}
  - stage s1: {out: 16}
  - stage s2: {out: 32, s: 2}
  - add fuse:                       # s2's output, projected, plus a layer inside s2
      main: [conv: {out: 32, k: 1, bias: false, bn: true}]
      skip: [from: s2/a]
  - relu
  - concat agg:                     # three depths pooled to one size
      deep: []
      mid: [maxpool: {k: 2, from: s1}]          # a block instance's output
      shallow: [from: stem, avgpool: {k: 2}]    # a layer's output
  - conv head: {out: 16, k: 1, bias: false, bn: true, act: relu}
  - add:
      here: []
      there: [from: agg/mid]        # a branch's output
  - adaptive_avgpool: {out: 1}
  - fc: {out: 10}
""")


class CrossDepth(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(*cbr(3, 8))
        self.s1a, self.s1b = nn.Sequential(*cbr(8, 16)), nn.Sequential(*cbr(16, 16))
        self.s2a, self.s2b = nn.Sequential(*cbr(16, 32, s=2)), nn.Sequential(*cbr(32, 32))
        self.fuse = nn.Sequential(*cbr(32, 32, k=1, p=0, act=False))
        self.relu = nn.ReLU(inplace=True)
        self.mid, self.shallow = nn.MaxPool2d(2), nn.AvgPool2d(2)
        self.head = nn.Sequential(*cbr(32 + 16 + 8, 16, k=1, p=0))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        stem = self.stem(x)
        s1 = self.s1b(self.s1a(stem))
        s2a = self.s2a(s1)
        s2 = self.s2b(s2a)
        fused = self.relu(self.fuse(s2) + s2a)
        mid = self.mid(s1)
        agg = torch.cat([fused, mid, self.shallow(stem)], 1)
        out = self.head(agg) + mid
        return self.fc(torch.flatten(self.pool(out), 1))


CASES["cross-depth"] = Case(CROSS_DEPTH, CrossDepth)


# ---------------------------------------------------------------- 4. MobileNetV2: $in and when:

# mbv2_block (specs/blocks/mobile.yaml): the expand conv `when: $t != 1`, the add
# `when: $s == 1 and $in == $out`, the hidden width round($in * $t).
CASES |= {
    "mbv2-t1": Case(spec((32, 14, 14), "  - mbv2_block: {out: 16, t: 1}\n"), lambda: MobileNetV2Block(32, 16, 1, 1)),
    "mbv2-t6-residual": Case(spec((24, 14, 14), "  - mbv2_block: {out: 24}\n"), lambda: MobileNetV2Block(24, 24, 1, 6)),
    "mbv2-t6-s2": Case(spec((16, 16, 16), "  - mbv2_block: {out: 24, s: 2}\n"), lambda: MobileNetV2Block(16, 24, 2, 6)),
    # A MobileNetV2 stage: the first block strided, the rest residual.
    "mbv2-stage": Case(spec((16, 16, 16), "  - mbv2_block: {out: 24, times: 3, first: {s: 2}}\n"),
                       lambda: nn.Sequential(MobileNetV2Block(16, 24, 2, 6), MobileNetV2Block(24, 24, 1, 6),
                                             MobileNetV2Block(24, 24, 1, 6))),
}


# ---------------------------------------------------------------- 5. MobileNetV3: SE and hardswish

V3_NORM = partial(nn.BatchNorm2d, eps=0.001, momentum=0.01) if torch else None


def mbv3(input_channels, kernel, expanded, out, use_se, activation, stride, dilation):
    cnf = InvertedResidualConfig(input_channels, kernel, expanded, out, use_se, activation, stride, dilation, 1.0)
    return MobileNetV3Block(cnf, norm_layer=V3_NORM)


def mbv3_case(input_shape, cfg):
    _, kernel, expanded, out, use_se, activation, stride, dilation = cfg
    args = (f"{{k: {kernel}, exp: {expanded}, out: {out}, se: {str(use_se).lower()}, "
            f"act: {'hardswish' if activation == 'HS' else 'relu'}, s: {stride}, d: {dilation}}}")
    return Case(spec(input_shape, f"  - mbv3_block: {args}\n"), lambda: mbv3(*cfg))


CASES |= {
    # MobileNetV3-large's first bneck: no expand conv (exp = in), residual.
    "mbv3-no-expand": mbv3_case((16, 16, 16), (16, 3, 16, 16, False, "RE", 1, 1)),
    # SE + hardswish, residual (`result += input` in place).
    "mbv3-se-hs": mbv3_case((40, 14, 14), (40, 5, 120, 40, True, "HS", 1, 1)),
    # SE with ReLU, stride 2 (floored), no residual.
    "mbv3-se-s2": mbv3_case((24, 16, 16), (24, 5, 72, 40, True, "RE", 2, 1)),
    # The dilated tail of MobileNetV3 (dilated=True): stride 2 in the config, stride 1 and
    # dilation 2 in the depthwise conv, no residual.
    "mbv3-dilated": mbv3_case((40, 8, 8), (40, 5, 96, 48, True, "HS", 2, 2)),
}


# ---------------------------------------------------------------- 6. a family: args and variants

FAMILY = """\
name: tiny_resnet_a
input: [3, 16, 16]
rounding: floor
args: {n1: 1, n2: 1, w: 8}
defaults:
  add: {inplace: true}     # BasicBlock's `out += identity`
blocks:
  basic:
    args: {out: ~, s: 1}
    body:
      - add:
          main:
            - conv: {out: $out, k: 3, s: $s, p: 1, bias: false, bn: true, act: relu}
            - conv: {out: $out, k: 3, p: 1, bias: false, bn: true}
          skip: [shortcut: {out: $out, s: $s}]
      - relu
layers:
  - conv stem: {out: $w, k: 3, p: 1, bias: false, bn: true, act: relu}
  - basic stage1: {out: $w, times: $n1}
  - basic stage2: {out: 2 * $w, times: $n2, first: {s: 2}}
  - adaptive_avgpool: {out: 1}
  - fc: {out: 10}
variants:
  tiny_resnet_b: {args: {n1: 2, n2: 3}}
  tiny_resnet_c: {args: {n1: 0, n2: 2, w: 16}, input: [3, 20, 20]}
"""
FAMILY_ARGS = {"tiny_resnet_a": (1, 1, 8), "tiny_resnet_b": (2, 3, 8), "tiny_resnet_c": (0, 2, 16)}


def tiny_resnet(n1, n2, w):
    layers = cbr(3, w)
    inplanes = w
    for planes, n, stride in ((w, n1, 1), (2 * w, n2, 2)):
        for i in range(n):
            s = stride if i == 0 else 1
            down = None
            if s != 1 or inplanes != planes:
                down = nn.Sequential(nn.Conv2d(inplanes, planes, 1, s, bias=False), nn.BatchNorm2d(planes))
            layers.append(BasicBlock(inplanes, planes, s, down))
            inplanes = planes
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(inplanes, 10))


CASES |= {name: Case(FAMILY, partial(tiny_resnet, *args), variant=name) for name, args in FAMILY_ARGS.items()}


# ---------------------------------------------------------------- 7. layer-list and type-name arguments

HIGHER_ORDER = spec((16, 12, 12), top="args: {w: 16}\n", blocks="""\
  residual:
    args: {body: ~, post: relu}
    body:
      - add:
          main: [$body]
          skip: []
      - $post
  conv_then:
    args: {out: ~, kind: relu, kind_args: {}}
    body:
      - conv: {out: $out, k: 3, p: 1, bias: false, bn: true}
      - $kind: $kind_args
""", layers="""\
  - residual basic:
      body:
        - conv: {out: $w, k: 3, p: 1, bias: false, bn: true, act: relu}
        - conv: {out: $w, k: 3, p: 1, bias: false, bn: true}
  - residual bottleneck:
      post: hardswish
      body:
        - conv: {out: $w // 4, k: 1, bias: false, bn: true, act: relu}
        - conv: {out: $w // 4, k: 3, p: 1, bias: false, bn: true, act: relu}
        - se: {gate: sigmoid}
        - conv: {out: $w, k: 1, bias: false, bn: true}
  - conv_then: {out: 24, kind: leaky_relu, kind_args: {slope: 0.2}}
  - conv_then: {out: 24, kind: se, kind_args: {gate: hardsigmoid}}
""")


class Residual(nn.Module):
    def __init__(self, body, post):
        super().__init__()
        self.body, self.post = body, post

    def forward(self, x):
        return self.post(self.body(x) + x)


def higher_order():
    w = 16
    basic = nn.Sequential(*cbr(w, w), *cbr(w, w, act=False))
    bottleneck = nn.Sequential(*cbr(w, w // 4, k=1, p=0), *cbr(w // 4, w // 4), se_module(w // 4),
                               *cbr(w // 4, w, k=1, p=0, act=False))
    return nn.Sequential(
        Residual(basic, nn.ReLU(inplace=True)),
        Residual(bottleneck, nn.Hardswish(inplace=True)),
        *cbr(w, 24, act=False), nn.LeakyReLU(0.2, inplace=True),
        *cbr(24, 24, act=False), se_module(24, nn.Hardsigmoid))


CASES["higher-order"] = Case(HIGHER_ORDER, higher_order)


# ---------------------------------------------------------------- the comparisons


def build(case: Case):
    torch.manual_seed(0)
    return case.build()


def torch_forward(module, input_shape, batch):
    """(output shape, FLOPs, [Conv2d/Linear output shapes in execution order]) of an eval-mode pass."""
    module.eval()
    shapes = []
    hooks = [m.register_forward_hook(lambda mod, inp, out: shapes.append(tuple(out.shape[1:])))
             for m in module.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            y = module(torch.zeros((batch, *input_shape)))
    finally:
        for h in hooks:
            h.remove()
    return tuple(y.shape[1:]), counter.get_total_flops(), shapes


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("name", list(CASES))
def test_counts_match_torch(name, batch):
    case = CASES[name]
    report = archcalc.analyze(case.spec(), batch=batch)
    assert report.warnings == [], "every floored size is declared with rounding: floor"
    module = build(case)
    out, flops, shapes = torch_forward(module, report.input, batch)

    main = [r for r in report.rows if not r.aux]
    assert tuple(main[-1].out) == out, f"output: archcalc {main[-1].out}, torch {out}"
    params = sum(p.numel() for p in module.parameters())
    assert report.totals.params == params, f"params: archcalc {report.totals.params:,}, torch {params:,}"
    assert report.totals.buffer_elems == stat_buffers(module), "BN running mean + var elements"
    assert flops % 2 == 0
    macs = report.totals.macs * batch
    assert macs == flops // 2, f"MACs at batch {batch}: archcalc {macs:,}, torch {flops // 2:,}"
    ours = weighted_shapes(report, aux=False)
    assert ours == shapes, first_difference(ours, shapes)


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("name", list(CASES))
def test_saved_for_backward_matches_autograd(name, batch):
    case = CASES[name]
    report = archcalc.analyze(case.spec(), batch=batch)
    t = report.totals
    ours = (t.saved_elems * batch, t.saved_fixed_bytes * batch + t.saved_batch_bytes)
    theirs = torch_saved(build(case), report.input, batch)
    assert ours == theirs, "saved for backward (activation elements, fixed bytes): archcalc vs autograd"


# ---------------------------------------------------------------- what the constructs resolve to


@pytest.mark.parametrize("c", [16, 24, 40, 72, 96, 120, 240, 480, 576, 672, 960])
def test_se_squeeze_width_is_torchvisions(c):
    report = archcalc.analyze(archcalc.parse(spec((c, 7, 7), "  - se: {gate: hardsigmoid}\n")))
    squeeze = report.find("se1/gate/conv1").out[0]
    assert squeeze == _make_divisible(c // 4, 8) == se_module(c).fc1.out_channels


def test_conditions_leave_out_what_torchvision_leaves_out():
    def types(text):
        return [r.type for r in archcalc.analyze(archcalc.parse(text)).rows[1:]]

    # t = 1: no expand conv; in != out: no add. t = 6, in == out, s = 1: expand conv and add.
    assert types(CASES["mbv2-t1"].text) == ["dwconv", "conv"]
    assert types(CASES["mbv2-t6-residual"].text) == ["conv", "dwconv", "conv", "add"]
    assert types(CASES["mbv2-t6-s2"].text) == ["conv", "dwconv", "conv"]
    assert len(MobileNetV2Block(32, 16, 1, 1).conv) == 3 and not MobileNetV2Block(16, 24, 2, 6).use_res_connect
    # ShuffleNet stride 1: a chunk per branch, branch1 nothing else.
    assert types(CASES["shuffle-s1"].text) == ["chunk", "chunk", "conv", "dwconv", "conv", "concat", "channel_shuffle"]


def test_family_members():
    assert variant_names(FAMILY) == ["tiny_resnet_b", "tiny_resnet_c"]
    blocks = {}
    for name, (n1, n2, w) in FAMILY_ARGS.items():
        report = archcalc.analyze(archcalc.parse(FAMILY, variant=name))
        assert report.name == name
        blocks[name] = sorted({r.path.split("/")[0] for r in report.rows if "/" in r.path})
        assert blocks[name] == sorted([f"stage1_{i}" if n1 > 1 else "stage1" for i in range(1, n1 + 1)]
                                      + [f"stage2_{i}" if n2 > 1 else "stage2" for i in range(1, n2 + 1)])
    assert archcalc.parse(FAMILY, variant="tiny_resnet_c").input == (3, 20, 20)


def test_from_references_resolve_to_the_named_tensors():
    report = archcalc.analyze(archcalc.parse(CROSS_DEPTH))
    assert report.find("fuse").inputs == ("fuse/main/conv1", "s2/a")
    assert report.find("agg/mid/maxpool1").inputs == ("s1/b",)
    assert report.find("agg/shallow/avgpool1").inputs == ("stem",)
    assert report.find("add1").inputs == ("head", "agg/mid/maxpool1")
