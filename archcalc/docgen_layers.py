"""docs/layers.md, the layer reference, generated: per registered layer type what it is (its rule's
docstring), the formulas of its output size, parameters, buffers, MACs and other ops, what the
``pytorch`` profile says autograd keeps for backward, the torch module it matches, and a worked
example whose numbers archcalc computes from a tiny spec.

The formulas are Python expressions over the input's sizes and the layer's arguments. ``render``
evaluates each on its example and refuses to write a page whose formula disagrees with archcalc's
figure, so the page cannot state a formula the code does not follow (tests/test_docs.py checks that
the committed page is the generated one; ``python3 tests/test_docs.py --write`` regenerates it).
"""
from __future__ import annotations

import ast
import math
import re
from dataclasses import dataclass

from .analysis import analyze
from .profiles import get_profile
from .rules import ACTIVATIONS, ALIASES, INPLACE_BY_DEFAULT, RULES
from .shape import fmt_shape
from .spec import parse

SAME_SIZE = ("C", "H", "W")  # the output formula of a layer that keeps its input's shape
WINDOW = "(H + 2*p - d*(k - 1) - 1)//s + 1", "(W + 2*p - d*(k - 1) - 1)//s + 1"


@dataclass(frozen=True)
class Example:
    """One layer type's page section: its formulas and the tiny spec that works them out."""

    type: str
    input: str  # the spec's input: line, e.g. "[3, 9, 9]"
    layers: str  # the spec's layers: items, one per line
    torch: str  # the framework behaviour the rule and profile match
    out: tuple[str, ...] = SAME_SIZE  # one formula per output axis (Co, Ho, Wo; or No for a vector)
    params: str = "0"
    buffers: str = "0"
    macs: str = "0"
    other_ops: str = "0"
    computes: str = ""  # what the layer computes, where the docstring does not say
    notes: tuple[str, ...] = ()
    defaults: str = ""  # the spec's defaults: lines, if any
    alt: tuple[str, str, str] | None = None  # (label, layers, defaults): the other in-place setting
    row: str | None = None  # the documented row's path (default: the last row)


def _act(kind: str, computes: str, torch: str, layer: str = "") -> Example:
    inplace = kind in INPLACE_BY_DEFAULT
    layer = layer or f"- {kind}"
    args = layer.partition(": ")[2].strip("{}")
    alt_layer = f"- {kind}: {{{args + ', ' if args else ''}inplace: {'false' if inplace else 'true'}}}"
    return Example(kind, "[8, 4, 4]", layer, torch, other_ops="C*H*W", computes=computes,
                   alt=(f"inplace: {'false' if inplace else 'true'}", alt_layer, ""))


EXAMPLES = {e.type: e for e in (
    Example("input", "[3, 8, 8]", "- identity", "the tensor passed to the model's forward", row="input",
            notes=("Its elements count as activation memory: the forward pass holds the input.",)),
    Example("conv", "[3, 9, 9]", "- conv: {out: 8, k: 3, s: 2, p: 1}",
            "`nn.Conv2d(C, out, k, stride=s, padding=p, dilation=d, groups=g, bias=bias)`; with `bn: true` then "
            "`nn.BatchNorm2d(out)`, with `act:` then the activation's module",
            out=("out",) + WINDOW, params="out*(C//g)*k*k + out*bias", macs="out*Ho*Wo*(C//g)*k*k",
            notes=("`k`, `s`, `p`, `d` may be `[h, w]` pairs; `p` may also be `[top, bottom, left, right]`, `same` "
                   "(TensorFlow's) or `valid`. A division that is not exact warns, unless the spec says "
                   "`rounding: floor` ([spec-language.md](spec-language.md#rounding-floor)).",
                   "`bn: true` and `act:` put batch norm and an activation into the same row: the row adds the "
                   "[`batchnorm`](#batchnorm) and activation rules' figures (2 x out params, 2 x out buffers, one "
                   "other op per output element each), and the profile composes their memory.",
                   "`table:` (LeNet-5's C3) gives each output map its own list of input maps instead of `g`. "
                   "Only the connected kernels are parameters; the torch builder's `TableConv2d` stacks the full "
                   "out x C x k x k kernel from them each forward, and autograd keeps that kernel once per batch "
                   "(fp32) besides the input.")),
    Example("dwconv", "[8, 8, 8]", "- dwconv: {k: 3, p: 1}",
            "`nn.Conv2d(C, C*mult, k, stride=s, padding=p, dilation=d, groups=C, bias=bias)`",
            out=("C*mult",) + WINDOW, params="C*mult*k*k + C*mult*bias", macs="C*mult*Ho*Wo*k*k",
            notes=("A `conv` with `g` = C: the same arguments otherwise, `bn:` and `act:` included.",)),
    Example("maxpool", "[4, 9, 9]", "- maxpool: {k: 3, s: 2, p: 1}",
            "`nn.MaxPool2d(k, stride=s, padding=p, dilation=d, ceil_mode=ceil)`",
            out=("C",) + WINDOW, other_ops="C*Ho*Wo*k*k",
            notes=("`s` defaults to `k`; `global: true` pools the whole map (k = H x W); `ceil: true` rounds the "
                   "output size up, as Caffe does (GoogLeNet).",
                   "Other ops: one comparison per window element of each output (EECS 498's count).")),
    Example("avgpool", "[4, 8, 8]", "- avgpool: {k: 2, s: 2}",
            "`nn.AvgPool2d(k, stride=s, padding=p, ceil_mode=ceil)`; `global: true` as "
            "`nn.AdaptiveAvgPool2d(1)` computes it",
            out=("C", "(H + 2*p - k)//s + 1", "(W + 2*p - k)//s + 1"), other_ops="C*Ho*Wo*k*k",
            notes=("`s` defaults to `k`; `global: true` averages the whole map (ResNet's pool5).",)),
    Example("adaptive_avgpool", "[4, 7, 7]", "- adaptive_avgpool: {out: 3}", "`nn.AdaptiveAvgPool2d(out)`",
            out=("C", "out", "out"), other_ops="C*(H + out - gcd(H, out))*(W + out - gcd(W, out))",
            notes=("PyTorch's bins: bin i spans floor(i*H/out) .. ceil((i+1)*H/out), so bins overlap when out does "
                   "not divide H; their widths add up to H + out - gcd(H, out) per axis, and each output adds its "
                   "bin.",
                   "To 1x1 it runs as a mean over H and W, whose backward needs only the input's size: nothing is "
                   "kept.")),
    Example("lrn", "[8, 4, 4]", "- lrn: {size: 5, alpha: 1.0e-4, beta: 0.75, k: 2}",
            "`nn.LocalResponseNorm(size, alpha, beta, k)`", other_ops="C*H*W*size",
            computes="x / (k + alpha/size * sum of x^2 over `size` neighbouring channels)^beta",
            notes=("Composed of ops in PyTorch, so backward keeps more than the input: the zero-padded squares, the "
                   "pow base and the divisor.",)),
    Example("batchnorm", "[8, 4, 4]", "- batchnorm", "`nn.BatchNorm2d(C, affine=affine)` (`nn.BatchNorm1d` on a vector)",
            params="2*C*affine", buffers="2*C", other_ops="C*H*W",
            computes="(x - mean) / sqrt(var + eps) x gamma + beta, per channel",
            notes=("gamma counts as a weight and beta as a bias; the running mean and variance are buffers, not "
                   "parameters (torchvision's int64 `num_batches_tracked` is not counted).",
                   "The batch mean and inverse std that backward keeps are fp32 and kept once per batch.")),
    _act("elu", "x if x > 0 else exp(x) - 1", "`nn.ELU(inplace=inplace)`"),
    _act("gelu", "x * Phi(x) (Phi: the standard normal CDF)", "`nn.GELU()`"),
    _act("hardsigmoid", "relu6(x + 3) / 6", "`nn.Hardsigmoid(inplace=inplace)`"),
    _act("hardswish", "x * relu6(x + 3) / 6", "`nn.Hardswish(inplace=inplace)`"),
    _act("leaky_relu", "x if x > 0 else slope * x", "`nn.LeakyReLU(slope, inplace=inplace)`",
         "- leaky_relu: {slope: 0.2}"),
    _act("relu", "max(0, x)", "`nn.ReLU(inplace=inplace)`"),
    _act("relu6", "min(max(0, x), 6)", "`nn.ReLU6(inplace=inplace)`"),
    _act("sigmoid", "1 / (1 + exp(-x))", "`nn.Sigmoid()`"),
    _act("silu", "x * sigmoid(x) (swish)", "`nn.SiLU(inplace=inplace)`"),
    _act("tanh", "tanh(x)", "`nn.Tanh()`"),
    Example("softmax", "[10]", "- softmax", "`nn.Softmax(dim=1)`", out=("N",), other_ops="N",
            computes="exp(x_i) / sum_j exp(x_j) over the classes"),
    Example("dropout", "[8, 4, 4]", "- dropout: {p: 0.5}",
            "`nn.Dropout(p)` (archcalc's bool mask is CUDA's fused kernel; CPU's `nn.Dropout` keeps a float noise "
            "tensor)", other_ops="C*H*W",
            notes=("At inference the identity (the inference peak counts no new tensor); in training a new tensor, "
                   "which the next layer keeps.",)),
    Example("flatten", "[8, 2, 2]", "- flatten", "`nn.Flatten()` (a view)", out=("C*H*W",)),
    Example("identity", "[8, 4, 4]", "- identity", "`nn.Identity()`"),
    Example("fc", "[8, 2, 2]", "- fc: {out: 10}",
            "`nn.Linear(C*H*W, out, bias=bias)` after `nn.Flatten()`; `bn:` and `act:` as for `conv`",
            out=("out",), params="C*H*W*out + out*bias", macs="C*H*W*out",
            notes=("On a vector input of N elements the same with C*H*W = N.",)),
    Example("subsample", "[6, 28, 28]", "- subsample: {k: 2}",
            "no torch.nn layer (LeNet-5's S2 and S4); the torch builder's `Subsample`, a depthwise `F.conv2d` whose "
            "kernel is the per-map coefficient expanded over the window (a view of the parameter)",
            out=("C", "(H - k)//k + 1", "(W - k)//k + 1"), params="2*C", macs="C*Ho*Wo", other_ops="C*Ho*Wo*(k*k - 1)",
            notes=("`s` defaults to `k` (the formulas assume it). Other ops: the k*k - 1 adds of each window.",)),
    Example("rbf", "[84]", "- rbf: {out: 10}", "no torch.nn layer (LeNet-5's output layer); the torch builder's `RBF`, "
            "|x|^2 - 2 x.w^T + |w|^2 with the prototypes w a buffer",
            out=("out",), buffers="N*out", macs="N*out",
            computes="the squared Euclidean distance of the input to each of `out` fixed prototypes",
            notes=("The prototypes are fixed, so they are buffers, not parameters.",)),
    Example("shortcut", "[64, 7, 7]", "- shortcut: {out: 128, s: 2}",
            "torchvision's `downsample`: `nn.Sequential(nn.Conv2d(C, out, 1, stride=s, bias=False), "
            "nn.BatchNorm2d(out))`; `nn.Identity()` when the shape is kept",
            out=("out", "(H - 1)//s + 1", "(W - 1)//s + 1"), params="out*C + 2*out*bn", buffers="2*out*bn",
            macs="out*Ho*Wo*C", other_ops="out*Ho*Wo*bn",
            notes=("The formulas are the projection's (option B where the shape changes, option C always); with "
                   "`bn: false` the 1x1 conv has a bias instead.",
                   "Identity (options A and B when out = C and s = 1): no parameters, no ops, nothing kept. Option A "
                   "where the shape changes: subsample by s and zero-pad the new channels, no parameters.")),
    Example("concat", "[3, 8, 8]", "- concat:\n    a: [conv: {out: 4, k: 1}]\n    b: [conv: {out: 6, k: 1}]",
            "`torch.cat([a, b], dim=1)`", out=("C1 + C2", "H1", "W1"),
            notes=("Variables C1, H1, W1, C2 ...: the branches' output shapes.",)),
    Example("add", "[4, 8, 8]", "- add:\n    a: [conv: {out: 4, k: 1}]\n    b: []",
            "`a + b`; `inplace: true` is torchvision's `out += identity`", out=("C1", "H1", "W1"),
            other_ops="C1*H1*W1*(n_branches - 1)",
            notes=("`b: []` is the identity branch: the merge reads the block's input.",),
            alt=("inplace: true", "- add:\n    a: [conv: {out: 4, k: 1}]\n    b: []", "  add: {inplace: true}")),
    Example("mul", "[8, 4, 4]",
            "- mul:\n    x: []\n    gate: [avgpool: {global: true}, conv: {out: 8, k: 1, act: sigmoid}]",
            "`x * gate` (broadcast), squeeze-and-excitation's scaling", out=("max(C1, C2)", "max(H1, H2)", "max(W1, W2)"),
            other_ops="Co*Ho*Wo*(n_branches - 1)"),
    Example("chunk", "[8, 4, 4]", "- chunk: {n: 2, i: 1}", "`x.chunk(n, dim=1)[i]` (a view)", out=("C//n", "H", "W")),
    Example("split", "[8, 4, 4]", "- split: {sizes: [2, 6], i: 1}", "`x.split(sizes, dim=1)[i]` (a view)",
            out=("sizes[i]", "H", "W")),
    Example("slice", "[8, 4, 4]", "- slice: {start: 2, end: 6}", "`x[:, start:end]` (a view)",
            out=("end - start", "H", "W")),
    Example("channel_shuffle", "[8, 4, 4]", "- channel_shuffle: {g: 2}",
            "torchvision's `channel_shuffle`: `x.view(N, g, C//g, H, W).transpose(1, 2).contiguous()` (one copy)"),
    Example("layernorm", "[8, 4, 4]", "- layernorm",
            "torchvision's `LayerNorm2d` (permute, `nn.LayerNorm(C)`, permute back); `nn.LayerNorm(N)` on a vector",
            params="2*C*affine", other_ops="C*H*W",
            computes="(x - mean) / sqrt(var + eps) x gamma + beta, the statistics over the C channels of each position"),
    Example("layer_scale", "[8, 4, 4]", "- layer_scale", "ConvNeXt's `layer_scale`: an `nn.Parameter` of C x 1 x 1 "
            "times the input", params="C", other_ops="C*H*W"),
    Example("drop_path", "[8, 4, 4]", "- drop_path: {p: 0.1}", "`torchvision.ops.StochasticDepth(p, \"row\")`",
            other_ops="C*H*W",
            notes=("At inference, and with p = 0 in training, the identity; otherwise a new tensor scaled by "
                   "1/(1 - p), or zeros for a dropped sample.",)),
    Example("mean", "[4, 8, 8]", "- mean:\n    a: [conv: {out: 4, k: 3, p: 1}]\n    b: [conv: {out: 4, k: 1}]",
            "`torch.stack([a, b]).mean(0)` (FractalNet's join)", out=("C1", "H1", "W1"),
            other_ops="C1*H1*W1*n_branches",
            notes=("Other ops: n_branches - 1 adds and one division per element.",)),
)}

_FUNCTIONS = {"gcd": math.gcd, "max": max, "min": min}


def _spec_text(e: Example, layers: str | None = None, defaults: str | None = None) -> str:
    defaults = e.defaults if defaults is None else defaults
    lines = [f"name: {e.type}_example", f"input: {e.input}"]
    if defaults:
        lines += ["defaults:", defaults]
    lines.append("layers:")
    lines += ["  " + line for line in (e.layers if layers is None else layers).splitlines()]
    return "\n".join(lines) + "\n"


def _row(e: Example, text: str):
    report = analyze(parse(text, file=f"{e.type}_example.yaml"))
    rows = {r.path: r for r in report.rows}
    row = rows[e.row] if e.row else report.rows[-1]
    if row.type != e.type:
        raise ValueError(f"{e.type}: the example's documented row {row.path} is a {row.type}")
    if report.warnings:  # a reference example is one the spec language accepts without a second thought
        raise ValueError(f"{e.type}: the example warns: {report.warnings}")
    return report, row


def variables(e: Example, report, row) -> dict:
    """The names a formula may use, in the order the page lists them: the input's sizes (C, H, W or
    N; C1, H1, ... of a merge's branches), the row's arguments with their defaults, in the rule's
    signature order, and the output's sizes (Co, Ho, Wo or No)."""
    r = RULES[e.type]
    shapes = {x.node.id: x.out for x in report.rows}
    inputs = [shapes[i] for i in row.node.inputs] or [row.out]
    env: dict = {}
    if r.merge:
        for n, shape in enumerate(inputs, start=1):
            env.update({f"{a}{n}": v for a, v in zip(("C", "H", "W") if len(shape) == 3 else ("N",), shape)})
        env["n_branches"] = len(inputs)
    else:
        env.update(zip(("C", "H", "W") if len(inputs[0]) == 3 else ("N",), inputs[0]))
    for key in r.known:
        if key.isidentifier() and key != "global":
            env[key] = row.args.get(key, r.defaults.get(key))
    env.update(zip(("Co", "Ho", "Wo") if len(row.out) == 3 else ("No",), row.out))
    return env


def _eval(formula: str, env: dict):
    return eval(compile(formula, "<formula>", "eval"), {"__builtins__": {}, **_FUNCTIONS}, dict(env))  # noqa: S307


def check(e: Example) -> list[str]:
    """Every formula of the example evaluated on it, against archcalc's figure: the mismatches."""
    report, row = _row(e, _spec_text(e))
    env = variables(e, report, row)
    bad = []
    out = tuple(_eval(f, env) for f in e.out)
    if out != tuple(row.out):
        bad.append(f"{e.type}: output formula gives {out}, archcalc {tuple(row.out)}")
    for key, formula, got in (("params", e.params, row.params), ("buffers", e.buffers, row.buffer_elems),
                              ("MACs", e.macs, row.macs), ("other ops", e.other_ops, row.other_ops)):
        value = _eval(formula, env)
        if value != got:
            bad.append(f"{e.type}: {key} formula {formula!r} gives {value}, archcalc {got}")
    return bad


# ---------------------------------------------------------------- the page

def _saved_text(s, parts, i: int) -> str:
    """One tensor part ``i`` of a row keeps, and whose storage it is."""
    if s.itemsize:
        size = f"{s.elems:,} x {s.itemsize} B" + (", once per batch" if s.per_batch else "")
    else:
        size = f"{s.elems:,} element{'s' if s.elems != 1 else ''}"
    if s.of == "input":
        where = "the row's input" if i == 0 else f"the {parts[i - 1].type}'s output inside the row"
    elif s.of == "output":
        where = "the row's output" if i == len(parts) - 1 else f"the {parts[i].type}'s output inside the row"
    else:  # an operand of a merge (its `what` says which), or the part's own intermediate
        where = ""
    return f"{s.what} ({size}{', ' + where if where else ''})"


def memory_text(row) -> tuple[str, str]:
    """(forward, backward): what the profile says this row allocates, and what each of its parts
    (a conv + BN + ReLU row has three) keeps for backward."""
    m = row.mem
    if m.alias and m.inplace:
        forward = "runs in place: writes into its input's storage, allocates nothing"
    elif m.alias and m.train_copy:
        forward = "the identity at inference; in training a new tensor"
    elif m.alias:
        forward = "a view of its input (or its input itself): allocates nothing"
    else:
        forward = f"a new tensor of {row.out_elems:,} elements"
    if m.temp_elems:
        forward += f", and {m.temp_elems:,} elements of intermediates while it runs"
    profile = get_profile("pytorch")
    parts = row.cost.parts
    kept = []
    for i, part in enumerate(parts):
        for s in profile.part(part).saved:
            kept.append((f"{part.type}: " if len(parts) > 1 else "") + _saved_text(s, parts, i))
    return forward, "; ".join(kept) or "nothing"


def _names(formulas) -> set[str]:
    return {node.id for f in formulas for node in ast.walk(ast.parse(f, mode="eval")) if isinstance(node, ast.Name)}


def _value(v) -> str:
    if v is True or v is False:
        return f"{str(v).lower()} ({int(v)})"
    return str(v)


def _formula_rows(e: Example) -> list[str]:
    dims = ("Co", "Ho", "Wo") if len(e.out) == 3 else ("No",)
    out = ("Co x Ho x Wo: " if len(dims) == 3 else "a vector, ") + ", ".join(f"{d} = `{f}`" for d, f in zip(dims, e.out))
    rows = [f"| output | {out} |"]
    for key, formula in (("params", e.params), ("buffers", e.buffers), ("MACs", e.macs), ("other ops", e.other_ops)):
        if formula != "0" or key in ("params", "MACs"):
            rows.append(f"| {key} | `{formula}` |")
    return rows


def section(e: Example) -> str:
    r = RULES[e.type]
    text = _spec_text(e)
    report, row = _row(e, text)
    bad = check(e)
    if bad:
        raise ValueError("docs/layers.md would state a wrong formula: " + "; ".join(bad))
    env = variables(e, report, row)
    aliases = ", ".join(f"`{a}`" for a, t in sorted(ALIASES.items()) if t == e.type)
    lines = [f"## `{e.type}`", "", r.doc, ""]
    if e.computes:
        lines += [f"Computes: {e.computes}.", ""]
    facts = [f"Aliases: {aliases}." if aliases else "",
             "A merge: its mapping names the branches." if r.merge else "",
             f"PyTorch: {e.torch}."]
    lines += [" ".join(f for f in facts if f), ""]
    lines += ["| | formula |", "|:---|:---|", *_formula_rows(e), ""]
    lines += [f"- {n}" for n in e.notes]
    if e.notes:
        lines.append("")
    forward, backward = memory_text(row)
    lines += ["**Worked example.**", "", "```yaml", text.rstrip("\n"), "```", ""]
    used = _names((*e.out, e.params, e.buffers, e.macs, e.other_ops))
    given = ", ".join(f"{n} = {_value(v)}" for n, v in env.items() if n in used)
    lines += [f"Row `{row.path}`{', with ' + given if given else ''}:", ""]
    lines += ["| | archcalc |", "|:---|:---|",
              f"| output | {fmt_shape(row.out)} |",
              f"| params | {row.params:,}"
              + (f" (weights {row.weight_params:,}, biases {row.bias_params:,})" if row.params else "") + " |",
              f"| buffers | {row.buffer_elems:,} |",
              f"| MACs | {row.macs:,} |",
              f"| other ops | {row.other_ops:,} |",
              f"| forward (pytorch profile) | {forward} |",
              f"| backward keeps | {backward} |"]
    if e.alt:
        label, layers, defaults = e.alt
        _, alt_row = _row(e, _spec_text(e, layers, defaults))
        alt_forward, alt_backward = memory_text(alt_row)
        lines += [f"| with `{label}`: forward | {alt_forward} |", f"| with `{label}`: backward keeps | {alt_backward} |"]
    lines.append("")
    if row.steps:
        lines += ["archcalc's arithmetic for the row (`archcalc explain`):", "", "```text", *row.steps, "```", ""]
    return "\n".join(lines)


HEADER = """\
# Layer reference

<!-- generated by tests/test_docs.py --write from archcalc/rules.py, archcalc/profiles/pytorch.py and
     the examples in archcalc/docgen_layers.py: edit those, not this page -->

Every layer type of the registry (`archcalc/rules.py`), in registry order: what it is, how its
output size, parameters, buffers, MACs and other ops are counted, what PyTorch's autograd keeps for
backward (the `pytorch` profile, `archcalc/profiles/pytorch.py`), the torch module it matches, and
a worked example. The arguments and their defaults are in the [layer-type table of
spec-language.md](spec-language.md#layer-types); the conventions behind the counts (MACs against
FLOPs, what "other ops" are, bytes and batch) in [conventions.md](conventions.md).

How to read the formulas:

- They are Python expressions: `*` multiplies, `//` divides and floors, `gcd`, `max`, `min` as in
  Python; `bias`, `bn` and `affine` count 1 when true and 0 when false.
- `C`, `H`, `W` are the input's channels, height and width (one sample); `N` a vector input's
  length; `Co`, `Ho`, `Wo` (or `No`) the output's. A merge's branches are `C1`, `H1`, `W1`, `C2`,
  ... and `n_branches`. Every other name is the layer's argument of that name, at its default when
  the spec leaves it out; `k`, `s`, `p`, `d` are written for a square window.
- MACs count multiply-accumulates of weighted products (conv, fc) only; pooling, normalisation,
  activations and merges are "other ops". Counts are per sample.
- Each formula is evaluated on its worked example and compared with archcalc's figure whenever this
  page is generated: a formula that disagrees with the code stops the generation.
- The worked example's numbers are archcalc's output for the spec shown (`archcalc table` and
  `archcalc explain` on it print the same); "forward" and "backward keeps" are the `pytorch`
  profile's, in elements of the activation dtype unless bytes are given.

"""


def render() -> str:
    missing = [t for t in RULES if t not in EXAMPLES]
    extra = [t for t in EXAMPLES if t not in RULES]
    if missing or extra:
        raise ValueError(f"docgen_layers.EXAMPLES: no example for {missing}; examples of unknown types {extra}")
    index = ", ".join(f"[`{t}`](#{re.sub(r'[^a-z0-9_-]', '', t)})" for t in RULES)
    activations = ", ".join(f"`{a}`" for a in sorted(ACTIVATIONS))
    parts = [HEADER, f"Types: {index}.", "",
             f"Activations ({activations}) are also the `act:` of a `conv`, `dwconv`, `fc` or `subsample` row.", ""]
    parts += [section(EXAMPLES[t]) for t in RULES]
    return "\n".join(parts).rstrip("\n") + "\n"
