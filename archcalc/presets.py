"""Counting presets: the total each FLOP-counting tool prints for a network, from archcalc's rows.

Every tool counts conv and fc multiply-accumulates the way archcalc does; they disagree about
everything around them (biases, batch norm, activations, pooling, zero padding) and about the unit
(fvcore's "flops" and ptflops' and thop's "MACs" are the same kind of number; XLA's and
FlopCounterMode's FLOPs are two per MAC). ``count(report, preset)`` gives a preset's total and the
items that take archcalc's MACs to it, so ``total == report.totals.macs + sum of the items``.

What each tool counts was read from its source (docs/counting.md names the files and versions) and
is checked against the tool itself in tests/test_presets.py. The tools hook torch calls, not
layers, so a row is first mapped to the torch call torchvision makes for it (``torch_call``): the
nn.Module its type names, except where torchvision calls a function or a tensor method instead
(``TORCHVISION_CALLS``), which the hook-based tools see differently.

No torch here: the presets model the tools, they do not run them.
"""
from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Callable

from .shape import Window, elems
from .units import si


@dataclass(frozen=True)
class Counted:
    """A preset's total, in the tool's own unit, and what takes archcalc's MACs to it."""

    preset: str
    total: int
    unit: str
    items: tuple[tuple[str, int], ...]  # (what, amount): total = macs + the amounts
    macs: int  # archcalc's MACs (report.totals.macs)


@dataclass(frozen=True)
class Op:
    """One torch call as a counting tool sees it."""

    call: str  # "nn.Conv2d", "F.relu", "Tensor.mean" ...
    type: str  # the part's rule type: what archcalc's JAX builder compiles for XLA
    x: tuple  # input shape (the first operand's for a merge)
    out: tuple
    macs: int = 0
    bias: bool = False  # a conv or fc with a bias
    affine: bool = True  # a norm layer with a scale and shift
    window: tuple | None = None  # a conv's or pool's (Window, Window)
    operands: int = 1  # of a merge
    size: int = 0  # lrn's channel window


# ---------------------------------------------------------------- rows -> torch calls

# The nn.Module torchvision builds for a part type; other types (views, concat, flatten) are no
# counted call for any tool.
MODULES = {
    "conv": "nn.Conv2d", "fc": "nn.Linear", "batchnorm": "nn.BatchNorm2d", "layernorm": "nn.LayerNorm",
    "relu": "nn.ReLU", "relu6": "nn.ReLU6", "leaky_relu": "nn.LeakyReLU", "elu": "nn.ELU", "gelu": "nn.GELU",
    "silu": "nn.SiLU", "sigmoid": "nn.Sigmoid", "tanh": "nn.Tanh", "hardswish": "nn.Hardswish",
    "hardsigmoid": "nn.Hardsigmoid", "softmax": "nn.Softmax", "lrn": "nn.LocalResponseNorm",
    "maxpool": "nn.MaxPool2d", "avgpool": "nn.AvgPool2d", "adaptive_avgpool": "nn.AdaptiveAvgPool2d",
    "dropout": "nn.Dropout", "add": "Tensor.__add__", "mul": "Tensor.__mul__",
}

# Where torchvision does not call the module a row's type names: (spec name, row path, part type,
# the call), globs. Read from torchvision 0.29's model sources; the specs' comments say the same.
TORCHVISION_CALLS = (
    ("densenet[12][0-9][0-9]", "relu5", "relu", "F.relu"),  # DenseNet.forward: F.relu(features, inplace=True)
    ("densenet[12][0-9][0-9]", "pool5", "adaptive_avgpool", "F.adaptive_avg_pool2d"),
    ("mobilenet_v2", "pool", "adaptive_avgpool", "F.adaptive_avg_pool2d"),
    ("googlenet_tv", "*", "relu", "F.relu"),  # BasicConv2d.forward
    ("inception_v3", "*", "relu", "F.relu"),
    ("inception_v3", "Mixed_*", "maxpool", "F.max_pool2d"),
    ("inception_v3", "Mixed_*", "avgpool", "F.avg_pool2d"),
    ("shufflenet_v2_*", "pool", "adaptive_avgpool", "Tensor.mean"),  # x.mean([2, 3])
    ("mnasnet*", "head/pool", "avgpool", "Tensor.mean"),
    # ConvNeXt: LayerNorm2d (a subclass of nn.LayerNorm that hook tables matching types exactly
    # miss) in the stem, the downsampling layers and the head; nn.Linear on a channels-last view for
    # the blocks' pointwise layers (1x1 convs in the spec).
    ("convnext_*", "stem/norm", "layernorm", "LayerNorm2d"),
    ("convnext_*", "down*/norm", "layernorm", "LayerNorm2d"),
    ("convnext_*", "head/norm", "layernorm", "LayerNorm2d"),
    ("convnext_*", "*/main/pw*", "conv", "nn.Linear (channels last)"),
)


def torch_call(spec: str, path: str, part) -> str:
    for spec_glob, path_glob, kind, call in TORCHVISION_CALLS:
        if part.type == kind and fnmatchcase(spec, spec_glob) and fnmatchcase(path, path_glob):
            return call
    if part.type == "avgpool" and part.arg("global"):
        return "nn.AdaptiveAvgPool2d"  # torchvision pools globally with an adaptive pool
    return MODULES.get(part.type, part.type)


def row_ops(report) -> list[tuple]:
    """(row, [Op per part]) for the report's main rows (aux heads do not run at inference), in order."""
    out = []
    for row in report.rows:
        if row.aux or row.type == "input":
            continue
        cost = row.cost
        # A fused BN is affine; a batchnorm row says so in its arguments. A row's bias_params are
        # its conv's or fc's biases plus its BN's betas.
        affine = bool(row.args.get("affine", True)) if row.type in ("batchnorm", "layernorm") else True
        bn_betas = sum(p.x[0] for p in cost.parts if p.type == "batchnorm") if affine else 0
        ops = []
        for part in cost.parts:
            merge = bool(part.x) and isinstance(part.x[0], tuple)
            weighted = part.type in ("conv", "fc", "subsample", "rbf")
            ops.append(Op(
                call=torch_call(report.name, row.path, part), type=part.type,
                x=tuple(part.x[0] if merge else part.x), out=tuple(part.out),
                macs=cost.macs if weighted else 0,
                bias=weighted and cost.bias_params > bn_betas,
                affine=affine,
                window=cost.window if part.type in ("conv", "maxpool", "avgpool", "subsample") else None,
                operands=len(part.x) if merge else 1, size=part.arg("size", 0) or 0,
            ))
        out.append((row, ops))
    return out


def torch_ops(report) -> list[Op]:
    """The torch calls of the report's main rows, in order."""
    return [op for _, ops in row_ops(report) for op in ops]


# ---------------------------------------------------------------- what each tool counts per call

Rule = Callable[[Op], list]  # Op -> [(what, amount), ...]; "MACs" names the conv/fc products


def _n(op: Op) -> int:
    return elems(op.x)


def _bias(op: Op, what: str) -> list:
    return [(what, elems(op.out))] if op.bias else []


def _adaptive_kernel_thop(op: Op) -> int:
    # thop divides input by output size per axis in float64 and adds one division per output.
    k = 1.0
    for n_in, n_out in zip(op.x[1:], op.out[1:]):
        k *= n_in / n_out
    return int((k + 1) * elems(op.out))


def _twice(what: str, inner: str) -> Rule:
    """A module whose hook ptflops counts and whose forward calls a functional ptflops patches."""
    return lambda op: [(what, _n(op)), (f"{what} again: {inner} inside the module", _n(op))]


_MACS: Rule = lambda op: [("MACs", op.macs)]

FVCORE: dict[str, Rule] = {
    "nn.Conv2d": _MACS, "nn.Linear": _MACS, "nn.Linear (channels last)": _MACS,
    "nn.BatchNorm2d": lambda op: [("batchnorm", _n(op) * (2 if op.affine else 1))],
    "nn.AdaptiveAvgPool2d": lambda op: [("adaptive avg pool", _n(op))],
    "F.adaptive_avg_pool2d": lambda op: [("adaptive avg pool", _n(op))],
    "nn.LayerNorm": lambda op: [("layernorm", _n(op) * (5 if op.affine else 4))],
    "LayerNorm2d": lambda op: [("layernorm", _n(op) * (5 if op.affine else 4))],  # traces to aten::layer_norm
}

PTFLOPS: dict[str, Rule] = {
    "nn.Conv2d": lambda op: _MACS(op) + _bias(op, "conv/fc bias"),
    "nn.Linear": lambda op: _MACS(op) + _bias(op, "conv/fc bias"),
    "nn.Linear (channels last)": lambda op: _MACS(op) + _bias(op, "conv/fc bias"),  # a bias per position
    "nn.BatchNorm2d": lambda op: [("batchnorm", _n(op) * (2 if op.affine else 1))],
    "nn.LayerNorm": lambda op: [("layernorm", _n(op))],  # no `affine` attribute: counted once
    "nn.ReLU": _twice("relu", "F.relu"), "nn.ELU": _twice("elu", "F.elu"), "nn.GELU": _twice("gelu", "F.gelu"),
    "nn.ReLU6": lambda op: [("relu6", _n(op))],  # its forward is F.hardtanh, which is not patched
    "nn.LeakyReLU": lambda op: [("leaky_relu", _n(op))],
    "nn.SiLU": lambda op: [("silu (F.silu)", _n(op))],  # no module hook, the functional only
    "F.relu": lambda op: [("relu (F.relu)", _n(op))],
    "nn.MaxPool2d": _twice("max pool", "F.max_pool2d"), "nn.AvgPool2d": _twice("avg pool", "F.avg_pool2d"),
    "nn.AdaptiveAvgPool2d": _twice("adaptive avg pool", "F.adaptive_avg_pool2d"),
    "F.max_pool2d": lambda op: [("max pool (functional)", _n(op))],
    "F.avg_pool2d": lambda op: [("avg pool (functional)", _n(op))],
    "F.adaptive_avg_pool2d": lambda op: [("adaptive avg pool (functional)", _n(op))],
    "nn.Softmax": lambda op: [("softmax (F.softmax)", _n(op))],
}

THOP: dict[str, Rule] = {
    "nn.Conv2d": _MACS, "nn.Linear": _MACS, "nn.Linear (channels last)": _MACS,
    "nn.BatchNorm2d": lambda op: [("batchnorm", _n(op) * (4 if op.affine else 2))],
    "nn.LayerNorm": lambda op: [("layernorm", _n(op) * (4 if op.affine else 2))],
    "nn.AvgPool2d": lambda op: [("avg pool", elems(op.out))],
    "nn.AdaptiveAvgPool2d": lambda op: [("adaptive avg pool", _adaptive_kernel_thop(op))],
}

TORCHINFO: dict[str, Rule] = {
    "nn.Conv2d": lambda op: _MACS(op) + _bias(op, "conv/fc bias"),
    "nn.Linear": lambda op: _MACS(op) + _bias(op, "conv/fc bias"),
    # A module that is not a conv adds its parameters once per sample: BN's gamma and beta.
    "nn.BatchNorm2d": lambda op: [("batchnorm parameters", 2 * op.x[0] if op.affine else 0)],
    "nn.LayerNorm": lambda op: [("layernorm parameters", 2 * op.x[0] if op.affine else 0)],
    "LayerNorm2d": lambda op: [("layernorm parameters", 2 * op.x[0] if op.affine else 0)],
    # The batch size is the output's first axis: over N x H x W x C, N, so the parameters once.
    "nn.Linear (channels last)": lambda op: [("MACs", op.macs // elems(op.out[1:]))]
    + ([("conv/fc bias", op.out[0])] if op.bias else []),
}

FLOP_COUNTER: dict[str, Rule] = {
    "nn.Conv2d": lambda op: _MACS(op) + [("x 2: FLOPs", op.macs)],
    "nn.Linear": lambda op: _MACS(op) + [("x 2: FLOPs", op.macs)],
    "nn.Linear (channels last)": lambda op: _MACS(op) + [("x 2: FLOPs", op.macs)],
}


def in_bounds_taps(n: int, out: int, w: Window) -> int:
    """Over the ``out`` positions of one axis, the kernel taps that land on the input (0..n-1)
    rather than on its zero padding: for tap t, the outputs o with 0 <= o*s - pad_lo + t*d < n."""
    total = 0
    for t in range(w.k):
        off = t * w.d - w.pad_lo
        first = max(0, -(-(-off) // w.s))  # smallest o with o*s + off >= 0
        last = min(out - 1, (n - 1 - off) // w.s)  # largest o with o*s + off <= n - 1
        total += max(0, last - first + 1)
    return total


def _xla_conv(op: Op) -> list:
    wh, ww = op.window
    _, h, w = op.out
    full = wh.k * ww.k * h * w
    valid = op.macs * in_bounds_taps(op.x[1], h, wh) * in_bounds_taps(op.x[2], w, ww) // full
    return _MACS(op) + [("x 2: FLOPs", op.macs), ("multiplies on zero padding, skipped", -2 * (op.macs - valid))] \
        + _bias(op, "bias adds")


def _kk(op: Op) -> int:
    return op.window[0].k * op.window[1].k


def _positions(op: Op) -> int:
    return elems(op.x) // op.x[0]  # a norm or softmax over the channels, at each position


def _adaptive_xla(op: Op) -> int:
    """Each output averages its bin: the bins' sizes summed, n + o - gcd(n, o) per axis (rules.py)."""
    c, h_in, w_in = op.x
    _, h, w = op.out
    return c * (h_in + h - math.gcd(h_in, h)) * (w_in + w - math.gcd(w_in, w))


def _per_elem(what: str, k: int) -> Rule:
    return lambda op: [(what, k * _n(op))]


# What XLA's cost analysis counts for the lax operations archcalc/build/jax.py emits per rule type
# (one flop per elementwise op, a window's reduction per output, exp/tanh/rsqrt as transcendentals,
# not flops); each measured on a one-layer network and checked on whole networks in the tests.
XLA: dict[str, Rule] = {
    "conv": _xla_conv,
    "fc": lambda op: _MACS(op) + [("x 2: FLOPs", op.macs)] + _bias(op, "bias adds"),
    # (x - mean) * rsqrt(var + eps) [* gamma + beta]: 2 (4) per element, var + eps per channel
    "batchnorm": lambda op: [("batchnorm", (4 if op.affine else 2) * _n(op) + op.x[0])],
    "layernorm": lambda op: [("layernorm", (8 if op.affine else 6) * _n(op) + 2 * _positions(op))],
    "relu": _per_elem("activations", 1), "relu6": _per_elem("activations", 1),
    "leaky_relu": _per_elem("activations", 3), "elu": _per_elem("activations", 3),
    "sigmoid": _per_elem("activations", 3), "hardsigmoid": _per_elem("activations", 3),
    "silu": _per_elem("activations", 4), "hardswish": _per_elem("activations", 4),
    "gelu": _per_elem("activations", 64),  # erf as XLA's polynomial
    "softmax": lambda op: [("softmax", 4 * _n(op) - _positions(op))],
    "lrn": lambda op: [("lrn", (op.size + 3) * _n(op))],
    "maxpool": lambda op: [("max pool compares", (_kk(op) - 1) * elems(op.out))],
    "avgpool": lambda op: [("avg pool adds and divisions", _kk(op) * elems(op.out))],
    "adaptive_avgpool": lambda op: [("avg pool adds and divisions", _adaptive_xla(op))],
    "add": lambda op: [("merges", (op.operands - 1) * elems(op.out))],
    "mul": lambda op: [("merges", (op.operands - 1) * elems(op.out))],
    "mean": lambda op: [("merges", op.operands * elems(op.out))],
    "layer_scale": _per_elem("layer scale", 1),
    "subsample": lambda op: _MACS(op) + [("subsample sums and biases", (_kk(op) + 1) * elems(op.out) - op.macs)],
    "rbf": lambda op: _MACS(op) + [("rbf: a subtraction, a square and a sum each", 2 * op.macs - elems(op.out))],
}


# XLA fuses elementwise ops into the fusion of the op that reads them, and materialises a tensor
# only where a non-elementwise op (a convolution, a dot, a window or a reduction) or the program's
# output reads it. A tensor made by elementwise ops and read by two fusions (a residual block's
# output: by the next conv and by the next add) is computed in each, and counted in each.
XLA_HEADS = {"conv", "fc", "maxpool", "avgpool", "adaptive_avgpool", "subsample", "rbf", "lrn", "softmax", "layernorm"}
# Ops XLA does not duplicate into a second consumer (exp, divide: "expensive"): a tensor made with
# one is materialised once, like a head's.
XLA_EXPENSIVE = {"sigmoid", "silu", "hardswish", "hardsigmoid", "gelu", "elu", "tanh"}


def _xla_amount(op: Op) -> int:
    rule = XLA.get(op.type)
    return sum(n for _, n in rule(op)) if rule else 0


def _xla_recomputed(report) -> int:
    """The elementwise FLOPs XLA counts more than once: over every materialised tensor, the
    elementwise ops back to the nearest materialised tensors, less each op counted once."""
    rows = [r for r in report.rows if not r.aux]
    by_path = {r.path: r for r in rows}
    tail = {r.path: 0 for r in rows}  # a row's elementwise FLOPs (after its head, if it has one)
    head = {r.path for r in rows if r.type == "input"}  # rows whose output a non-elementwise op makes
    expensive = set()
    for row, ops in row_ops(report):
        if ops[0].type in XLA_HEADS:
            head.add(row.path)
            tail[row.path] = elems(ops[0].out) if ops[0].bias else 0  # the bias add after a conv or dot
            ops = ops[1:]
        for op in ops:
            # BN's var + eps is per channel, computed once outside the fusions
            tail[row.path] += _xla_amount(op) - (op.x[0] if op.type == "batchnorm" else 0)
            if op.type in XLA_EXPENSIVE:
                expensive.add(row.path)
    roots = {rows[-1].path} | expensive
    for r in rows:
        if r.path in head and r.type != "input":
            roots.update(p for p in r.inputs if p in by_path)
    total = 0
    for root in roots:
        seen, stack = {root}, [root]
        while stack:
            path = stack.pop()
            total += tail[path]
            if path not in head:
                for p in by_path[path].inputs:
                    if p in by_path and p not in seen and p not in expensive:
                        seen.add(p)
                        stack.append(p)
    return total - sum(tail.values())


@dataclass(frozen=True)
class Preset:
    name: str
    unit: str
    tool: str  # the call whose total the preset reproduces
    tested: str  # the version tests/test_presets.py checks it against
    rules: dict  # torch call -> Rule; calls not listed count nothing


PRESETS = {p.name: p for p in (
    Preset("archcalc", "MACs", "archcalc table SPEC (totals.macs)", "", {}),
    Preset("flop_counter", "FLOPs", "torch.utils.flop_counter.FlopCounterMode().get_total_flops()", "torch 2.14.1",
           FLOP_COUNTER),
    Preset("fvcore", "flops (MACs)", "fvcore.nn.FlopCountAnalysis(model, x).total()", "fvcore 0.1.5.post20221221",
           FVCORE),
    Preset("ptflops", "MACs", "ptflops.get_model_complexity_info(model, shape, as_strings=False)[0]", "ptflops 0.7.5",
           PTFLOPS),
    Preset("thop", "MACs", "thop.profile(model, (x,))[0]", "thop 0.1.1.post2209072238", THOP),
    Preset("torchinfo", "mult-adds", "torchinfo.summary(model, input_size).total_mult_adds", "torchinfo 1.8.0",
           TORCHINFO),
    Preset("xla", "FLOPs", 'jax.jit(f).lower(...).compile().cost_analysis()["flops"]', "jax 0.10.2", XLA),
)}


def count(report, preset: str) -> Counted:
    """What ``preset``'s tool prints for ``report``'s network (batch 1), with the items that take
    archcalc's MACs to it."""
    if preset not in PRESETS:
        raise ValueError(f"unknown counting preset {preset!r}; known: {', '.join(PRESETS)}")
    p = PRESETS[preset]
    macs = report.totals.macs
    if preset == "archcalc":
        return Counted(preset, macs, p.unit, (), macs)
    amounts: dict[str, int] = {}
    for op in torch_ops(report):
        rule = p.rules.get(op.call) or p.rules.get(op.type)
        for what, amount in rule(op) if rule else ():
            amounts[what] = amounts.get(what, 0) + amount
    counted_macs = amounts.pop("MACs", 0)
    items = [(what, n) for what, n in amounts.items() if n]
    if counted_macs != macs:  # products of calls the tool does not count (LeNet's rbf, ...)
        items.insert(0, ("MACs the tool does not see", counted_macs - macs))
    if preset == "xla":
        again = _xla_recomputed(report)
        if again:
            items.append(("elementwise ops recomputed in a second fusion", again))
    return Counted(preset, macs + sum(n for _, n in items), p.unit, tuple(items), macs)


# ---------------------------------------------------------------- rendering


def to_dict(counted: list[Counted]) -> dict:
    return {"presets": [{"preset": c.preset, "total": c.total, "unit": c.unit, "macs": c.macs,
                         "items": [{"what": w, "amount": n} for w, n in c.items]} for c in counted]}


def lines(c: Counted) -> list[str]:
    """A preset's total and its items, one line each, as `archcalc table --count` prints them."""
    p = PRESETS[c.preset]
    head = f"{c.preset}: {c.total:,} {c.unit} ({si(c.total, 3)})"
    if c.preset == "archcalc":
        return [head]
    out = [head + f" = archcalc's {c.macs:,} MACs" + (" plus:" if c.items else "")]
    out += [f"  {n:+,} {w}" for w, n in c.items]
    return out + [f"  as printed by {p.tool} ({p.tested})"]


def render(counted: list[Counted], fmt: str = "table") -> str:
    """Presets side by side (`archcalc count`): total, unit, ratio to archcalc's MACs, then each
    preset's items."""
    if fmt == "json":
        return json.dumps(to_dict(counted), indent=2) + "\n"
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["preset", "unit", "total", "macs", "items"])
        for c in counted:
            w.writerow([c.preset, c.unit, c.total, c.macs, "; ".join(f"{what}={n}" for what, n in c.items)])
        return buf.getvalue()
    headers = ["preset", "unit", "total", "", "/ MACs"]
    rows = [[c.preset, c.unit, f"{c.total:,}", si(c.total, 3), f"{c.total / c.macs:.4f}" if c.macs else "-"]
            for c in counted]
    notes = [f"{c.preset}: " + ", ".join(f"{n:+,} {w}" for w, n in c.items) for c in counted if c.items]
    if fmt == "md":
        table = ["| " + " | ".join(headers) + " |", "|:---|:---|---:|---:|---:|"]
        table += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(table + ["", "Added to archcalc's MACs:", ""] + [f"- {n}" for n in notes]) + "\n"
    from .formats.text import draw

    return draw("", headers, rows, [False, False, True, True, True], footer=["added to archcalc's MACs:", *notes],
                color=False)
