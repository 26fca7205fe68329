"""The layer registry: one rule per layer type.

A rule is a function ``(x, *, args...) -> Cost``. Its keyword signature *is* the YAML schema of the
layer: the engine rejects unknown keys and reports missing required ones from the signature, so a
rule cannot silently ignore an argument. Everything archcalc knows about a layer type (output
shape, parameters, MACs, what autograd keeps for backward, the arithmetic in words) lives in its
rule and nowhere else.

Conventions (docs/conventions.md has the long form):
- ``macs`` counts multiply-accumulates of conv, fc and other weighted products only, as the
  papers and ``torch.utils.flop_counter`` do. Pooling, normalisation, activations and adds are
  counted apart in ``other_ops`` (one per output element, or the window size per output for
  pooling, the EECS 498 convention).
- ``saved`` lists the tensors autograd keeps for backward, by whose storage they are (the layer's
  input, its output, or an intermediate of a fused layer), so the engine can count a tensor that
  two layers keep only once.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, replace
from typing import Callable

from .shape import AxisResult, Shape, ShapeError, Window, elems, fmt_shape, same_padding, window_out


class RuleError(ValueError):
    """A layer's arguments are invalid for its input."""


@dataclass(frozen=True)
class Saved:
    """One tensor kept for backward. ``of`` names the storage: 'input', 'output' or 'tmpN'."""

    what: str
    elems: int
    of: str
    itemsize: int = 0  # 0: the activation dtype; else fixed bytes (int64 indices, bool masks ...)
    per_batch: bool = False  # kept once per batch, not per sample (BN's batch statistics)


@dataclass(frozen=True)
class Cost:
    out: Shape
    weight_params: int = 0
    bias_params: int = 0
    buffer_elems: int = 0  # non-trainable state: BN running stats, fixed RBF prototypes
    macs: int = 0
    other_ops: int = 0
    connections: int = 0  # LeCun's count: input-to-output links incl. bias, one per MAC + bias add
    saved: tuple[Saved, ...] = ()
    temp_elems: int = 0  # intermediates of a fused layer, alive only while it runs (inference)
    alias: bool = False  # the output reuses the input's storage (in-place op, view, identity)
    train_copy: bool = False  # an alias at inference that allocates a new output in training (dropout)
    window: tuple[Window, Window] | None = None  # for the receptive field; None = pointwise
    steps: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def params(self) -> int:
        return self.weight_params + self.bias_params


@dataclass(frozen=True)
class Rule:
    name: str
    fn: Callable
    merge: bool
    required: tuple[str, ...]
    defaults: dict
    doc: str

    @property
    def known(self) -> tuple[str, ...]:
        return self.required + tuple(self.defaults)


RULES: dict[str, Rule] = {}
ALIASES: dict[str, str] = {}
# YAML keys that are Python keywords.
_KEY_TO_PARAM = {"global": "global_"}
_PARAM_TO_KEY = {v: k for k, v in _KEY_TO_PARAM.items()}


def rule(name: str, *aliases: str, merge: bool = False):
    def register(fn: Callable) -> Callable:
        sig = inspect.signature(fn)
        kw = [p for p in sig.parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY]
        required = tuple(_PARAM_TO_KEY.get(p.name, p.name) for p in kw if p.default is inspect.Parameter.empty)
        defaults = {_PARAM_TO_KEY.get(p.name, p.name): p.default for p in kw if p.default is not inspect.Parameter.empty}
        doc = (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else ""
        RULES[name] = Rule(name, fn, merge, required, defaults, doc)
        for alias in aliases:
            ALIASES[alias] = name
        return fn

    return register


def lookup(type_name: str) -> Rule | None:
    return RULES.get(ALIASES.get(type_name, type_name))


def known_types() -> list[str]:
    return sorted(set(RULES) | set(ALIASES))


def check_args(r: Rule, args: dict) -> None:
    unknown = sorted(set(args) - set(r.known))
    if unknown:
        raise RuleError(
            f"unknown argument{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} for {r.name}; "
            f"known: {', '.join(r.known) or '(none)'}"
        )
    missing = [a for a in r.required if a not in args]
    if missing:
        raise RuleError(f"{r.name} needs {', '.join(missing)}; known: {', '.join(r.known)}")


def apply(r: Rule, x, args: dict) -> Cost:
    """Run rule r on input x (a shape, or for merges a dict branch -> shape)."""
    check_args(r, args)
    kwargs = {_KEY_TO_PARAM.get(k, k): v for k, v in args.items()}
    try:
        return r.fn(x, **kwargs)
    except ShapeError as e:
        raise RuleError(str(e)) from None


# ---------------------------------------------------------------- argument readers


def _int(name: str, v, *, low: int = 1) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise RuleError(f"{name} must be an integer, got {v!r}")
    if v < low:
        raise RuleError(f"{name} must be >= {low}, got {v}")
    return v


def _pair(name: str, v, *, low: int = 1) -> tuple[int, int]:
    if isinstance(v, (list, tuple)):
        if len(v) != 2:
            raise RuleError(f"{name} must be one integer or [h, w], got {v!r}")
        return _int(name, v[0], low=low), _int(name, v[1], low=low)
    n = _int(name, v, low=low)
    return n, n


def _bool(name: str, v) -> bool:
    if not isinstance(v, bool):
        raise RuleError(f"{name} must be true or false, got {v!r}")
    return v


def _spatial(x: Shape, what: str) -> tuple[int, int, int]:
    if len(x) != 3:
        raise RuleError(f"{what} needs a CxHxW input, got {fmt_shape(x)}")
    return x


def _padding(p, x_hw: tuple[int, int], k, s, d) -> tuple[tuple[int, int], tuple[int, int]]:
    """Padding as ((top, bottom), (left, right)) from int, [h, w], [t, b, l, r], 'same' or 'valid'."""
    if p == "valid":
        return (0, 0), (0, 0)
    if p == "same":
        return tuple(same_padding(n, kk, ss, dd) for n, kk, ss, dd in zip(x_hw, k, s, d))
    if isinstance(p, (list, tuple)) and len(p) == 4:
        t, b, l, r = (_int("p", v, low=0) for v in p)
        return (t, b), (l, r)
    if isinstance(p, str):
        raise RuleError(f"p must be an integer, [h, w], [top, bottom, left, right], 'same' or 'valid', got {p!r}")
    ph, pw = _pair("p", p, low=0)
    return (ph, ph), (pw, pw)


def _windows(x: Shape, k, s, p, d) -> tuple[Window, Window]:
    kh, kw = _pair("k", k)
    sh, sw = _pair("s", s)
    dh, dw = _pair("d", d)
    (pt, pb), (pl, pr) = _padding(p, x[1:], (kh, kw), (sh, sw), (dh, dw))
    return Window(kh, sh, dh, pt, pb), Window(kw, sw, dw, pl, pr)


def _slide(x: Shape, wins: tuple[Window, Window], ceil: bool = False) -> tuple[tuple[int, int], list[str], list[str]]:
    rh = window_out(x[1], wins[0], ceil=ceil)
    rw = window_out(x[2], wins[1], ceil=ceil)
    steps, warnings = _axis_steps(rh, rw)
    if ceil:
        warnings = []  # rounding up is the spec's stated intent; the arithmetic still shows it
    return (rh.size, rw.size), steps, warnings


def _axis_steps(rh: AxisResult, rw: AxisResult) -> tuple[list[str], list[str]]:
    if rh.arithmetic == rw.arithmetic:
        steps = [f"H, W: {rh.arithmetic}"]
    else:
        steps = [f"H: {rh.arithmetic}", f"W: {rw.arithmetic}"]
    warnings = []
    for axis, r in (("H", rh), ("W", rw)):
        if not r.exact and not (axis == "W" and rh.arithmetic == rw.arithmetic):
            warnings.append(f"non-integer output size: {'H, W' if rh.arithmetic == rw.arithmetic else axis}: {r.arithmetic}")
    return steps, warnings


def _kernel_words(wins: tuple[Window, Window]) -> str:
    return f"{wins[0].k}x{wins[1].k}"


# ---------------------------------------------------------------- composition of fused layers


def _then(a: Cost, b: Cost) -> Cost:
    """Layer a followed by pointwise layer b, reported as one row (conv + BN + ReLU)."""
    # a's tmps keep their numbers; a's output (when b does not overwrite it) and b's tmps go after them.
    n_tmp = max((int(s.of[3:]) + 1 for s in a.saved if s.of.startswith("tmp")), default=0)
    mid = "output" if b.alias else f"tmp{n_tmp}"  # storage of a's output inside the row

    def moved(s: Saved, of: str) -> Saved:
        return Saved(s.what, s.elems, of, s.itemsize, s.per_batch)

    def remap_a(s: Saved) -> Saved:
        return moved(s, mid) if s.of == "output" else s

    def remap_b(s: Saved) -> Saved:
        if s.of == "input":
            return moved(s, mid)
        if s.of.startswith("tmp"):
            return moved(s, f"tmp{n_tmp + 1 + int(s.of[3:])}")
        return s

    return Cost(
        out=b.out,
        weight_params=a.weight_params + b.weight_params,
        bias_params=a.bias_params + b.bias_params,
        buffer_elems=a.buffer_elems + b.buffer_elems,
        macs=a.macs + b.macs,
        other_ops=a.other_ops + b.other_ops,
        connections=a.connections + b.connections,
        saved=tuple(remap_a(s) for s in a.saved) + tuple(remap_b(s) for s in b.saved),
        temp_elems=max(a.temp_elems, b.temp_elems) + (0 if b.alias else elems(a.out)),
        alias=a.alias and b.alias,
        window=a.window,
        steps=a.steps + b.steps,
        warnings=a.warnings + b.warnings,
    )


def _post(core: Cost, *, bn: bool, act: str, inplace: bool | None) -> Cost:
    cost = core
    if _bool("bn", bn):
        cost = _then(cost, batchnorm(cost.out))
    if act not in (None, "none"):
        if act not in ACTIVATIONS:
            raise RuleError(f"unknown act {act!r}; known: none, {', '.join(sorted(ACTIVATIONS))}")
        cost = _then(cost, _activation(act, cost.out, inplace=inplace))
    return cost


# ---------------------------------------------------------------- rules


@rule("input")
def input_(x: Shape) -> Cost:
    """The network input: no parameters, its elements count as activation memory."""
    return Cost(out=x, steps=(f"input {fmt_shape(x)} = {elems(x):,} elements",))


@rule("conv", "conv2d")
def conv(x: Shape, *, out: int, k, s=1, p=0, d=1, g: int = 1, bias: bool = True, bn: bool = False,
         act: str = "none", inplace: bool | None = None, table=None) -> Cost:
    """2-D convolution, optionally followed by batch norm and an activation in the same row."""
    c_in, _, _ = _spatial(x, "conv")
    out = _int("out", out)
    g = _int("g", g)
    wins = _windows(x, k, s, p, d)
    (h, w), steps, warnings = _slide(x, wins)
    kk = wins[0].k * wins[1].k
    positions = h * w
    if table is not None:
        if g != 1:
            raise RuleError("table and g cannot be combined")
        fan_ins = _connection_table(table, c_in, out)
        weights = sum(fan_ins) * kk
        macs = positions * weights
        steps += [
            f"connection table: each of {out} maps sees {'/'.join(str(n) for n in fan_ins)} input maps",
            f"weights: {sum(fan_ins)} map links x {_kernel_words(wins)} = {weights:,}",
        ]
    else:
        if c_in % g or out % g:
            raise RuleError(f"channels not divisible by groups: in {c_in}, out {out}, g {g}")
        per_out = (c_in // g) * kk
        weights = out * per_out
        macs = out * positions * per_out
        grp = f"/{g}" if g > 1 else ""
        steps += [
            f"weights: {out} x {c_in}{grp} x {_kernel_words(wins)} = {weights:,} (out x in{'/g' if g > 1 else ''} x kh x kw)",
        ]
    biases = out if _bool("bias", bias) else 0
    if biases:
        steps.append(f"biases: {biases:,} (one per output channel)")
    if table is None:
        steps.append(f"MACs: {out}x{h}x{w} outputs x {per_out:,} = {macs:,}")
    else:
        steps.append(f"MACs: {h}x{w} positions x {weights:,} weights = {macs:,}")
    core = Cost(
        out=(out, h, w),
        weight_params=weights,
        bias_params=biases,
        macs=macs,
        connections=macs + (out * positions if biases else 0),
        saved=(Saved("input", elems(x), "input"),),
        window=wins,
        steps=tuple(steps),
        warnings=tuple(warnings),
    )
    return _post(core, bn=bn, act=act, inplace=inplace)


def _connection_table(table, c_in: int, out: int) -> list[int]:
    if not isinstance(table, list) or len(table) != out:
        raise RuleError(f"table must list the input maps of each of the {out} output maps")
    fan_ins = []
    for i, row in enumerate(table):
        if not isinstance(row, list) or not row:
            raise RuleError(f"table row {i} must be a non-empty list of input map indices")
        for j in row:
            if isinstance(j, bool) or not isinstance(j, int) or not 0 <= j < c_in:
                raise RuleError(f"table row {i}: input map {j!r} is not in 0..{c_in - 1}")
        if len(set(row)) != len(row):
            raise RuleError(f"table row {i} repeats an input map")
        fan_ins.append(len(row))
    return fan_ins


@rule("dwconv", "depthwise")
def dwconv(x: Shape, *, k, s=1, p=0, d=1, mult: int = 1, bias: bool = True, bn: bool = False,
           act: str = "none", inplace: bool | None = None) -> Cost:
    """Depthwise convolution: one k x k filter per input channel (groups = channels)."""
    c_in = _spatial(x, "dwconv")[0]
    return conv(x, out=c_in * _int("mult", mult), k=k, s=s, p=p, d=d, g=c_in, bias=bias, bn=bn, act=act, inplace=inplace)


def _pool(kind: str, x: Shape, k, s, p, d, ceil, global_) -> Cost:
    c = _spatial(x, kind)[0]
    if _bool("global", global_):
        k, s, p, d = [x[1], x[2]], 1, 0, 1
    elif k is None:
        raise RuleError(f"{kind} needs k (or global: true)")
    wins = _windows(x, k, k if s is None else s, p, d)
    for win in wins:
        if max(win.pad_lo, win.pad_hi) * 2 > win.k and p != "same":
            raise RuleError(f"padding {max(win.pad_lo, win.pad_hi)} is more than half the kernel {win.k}")
    (h, w), steps, warnings = _slide(x, wins, ceil=_bool("ceil", ceil))
    kk = wins[0].k * wins[1].k
    out = (c, h, w)
    n_out = elems(out)
    saved = [Saved("input", elems(x), "input")]
    if kind == "maxpool":
        saved.append(Saved("argmax indices (int64)", n_out, "tmp0", itemsize=8))
    steps.append(f"no parameters; {'compares' if kind == 'maxpool' else 'adds'}: {n_out:,} outputs x {kk} = {n_out * kk:,} (not MACs)")
    return Cost(out=out, other_ops=n_out * kk, saved=tuple(saved), window=wins, steps=tuple(steps), warnings=tuple(warnings))


@rule("maxpool", "pool")
def maxpool(x: Shape, *, k=None, s=None, p=0, d=1, ceil: bool = False, global_: bool = False) -> Cost:
    """Max pooling (stride defaults to the kernel; ceil: true rounds up like Caffe)."""
    return _pool("maxpool", x, k, s, p, d, ceil, global_)


@rule("avgpool")
def avgpool(x: Shape, *, k=None, s=None, p=0, ceil: bool = False, global_: bool = False) -> Cost:
    """Average pooling (global: true averages the whole map)."""
    return _pool("avgpool", x, k, s, p, 1, ceil, global_)


def _bin_widths(n: int, o: int) -> list[int]:
    """PyTorch's adaptive bins: bin i spans floor(i*n/o) .. ceil((i+1)*n/o)."""
    return [-(-((i + 1) * n) // o) - (i * n) // o for i in range(o)]


@rule("adaptive_avgpool", "adaptive_pool")
def adaptive_avgpool(x: Shape, *, out) -> Cost:
    """Adaptive average pooling to a fixed output size (torchvision's AdaptiveAvgPool2d)."""
    c, h_in, w_in = _spatial(x, "adaptive_avgpool")
    h, w = _pair("out", out)
    bins_h, bins_w = _bin_widths(h_in, h), _bin_widths(w_in, w)
    # The widest bin bounds the receptive field; bins start floor(n/o) apart.
    wins = (Window(max(bins_h), max(h_in // h, 1)), Window(max(bins_w), max(w_in // w, 1)))
    ops = c * sum(bins_h) * sum(bins_w)  # every output adds its bin: sum over (i, j) of bin_h[i] x bin_w[j]
    steps = (f"{h_in}x{w_in} -> {h}x{w} in adaptive bins (up to {wins[0].k}x{wins[1].k} inputs each)",
             f"no parameters; adds: {ops:,} (not MACs)")
    # PyTorch runs a 1x1 output as a mean over H and W, whose backward needs only the input's size.
    saved = () if (h, w) == (1, 1) else (Saved("input", elems(x), "input"),)
    return Cost(out=(c, h, w), other_ops=ops, saved=saved, window=wins, steps=steps)


@rule("lrn")
def lrn(x: Shape, *, size: int = 5, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0) -> Cost:
    """Local response normalisation across channels (AlexNet, GoogLeNet): no parameters."""
    c, h, w = _spatial(x, "lrn")
    size = _int("size", size)
    n = elems(x)
    # PyTorch's LocalResponseNorm is composed of ops; autograd keeps the input (for x*x and x/div), the
    # squares zero-padded by size-1 channels (avg_pool3d's input), the pow base k + alpha*avg, and div.
    padded = (c + size - 1) * h * w
    return Cost(
        out=x, other_ops=n * size,
        saved=(Saved("input", n, "input"), Saved("padded squares", padded, "tmp0"),
               Saved("pow base", n, "tmp1"), Saved("divisor", n, "tmp2")),
        steps=(f"no parameters; each output sums {size} squared neighbours: {n:,} x {size} = {n * size:,} ops (not MACs)",),
    )


@rule("batchnorm", "bn")
def batchnorm(x: Shape, *, affine: bool = True) -> Cost:
    """Batch normalisation: scale and shift per channel (trainable), running mean and variance (buffers)."""
    c = x[0]
    affine = _bool("affine", affine)
    n = elems(x)
    steps = [f"weights (gamma): {c}, biases (beta): {c}" if affine else "no trainable parameters (affine: false)",
             f"buffers (running mean, var): 2 x {c} = {2 * c}"]
    return Cost(
        out=x, weight_params=c if affine else 0, bias_params=c if affine else 0, buffer_elems=2 * c,
        other_ops=n,
        saved=(Saved("input", n, "input"), Saved("batch mean, inv std (fp32)", 2 * c, "tmp0", itemsize=4, per_batch=True)),
        steps=tuple(steps),
    )


# What autograd keeps for an activation (PyTorch 2.x, read with torch.autograd.graph.saved_tensors_hooks):
# relu, sigmoid and tanh keep their output either way; elu and leaky_relu keep their input, or in place
# their output; relu6, gelu, silu and hardswish keep their input, and in place a copy of the input made
# before it is overwritten, so in place saves no backward memory for them.
_SAVES_OUTPUT = {"relu", "sigmoid", "tanh"}
_INPLACE_SAVES_OUTPUT = _SAVES_OUTPUT | {"elu", "leaky_relu"}
ACTIVATIONS = {"relu", "relu6", "leaky_relu", "sigmoid", "tanh", "gelu", "silu", "hardswish", "elu"}
# torch.nn offers inplace=True for these, and torchvision builds them so; nn.Tanh, nn.Sigmoid and
# nn.GELU have no in-place form, so by default they allocate their output.
INPLACE_BY_DEFAULT = {"relu", "relu6", "leaky_relu", "elu", "hardswish", "silu"}


def _activation(kind: str, x: Shape, *, inplace: bool | None) -> Cost:
    inplace = kind in INPLACE_BY_DEFAULT if inplace is None else _bool("inplace", inplace)
    n = elems(x)
    if kind in (_INPLACE_SAVES_OUTPUT if inplace else _SAVES_OUTPUT):
        saved = Saved("output", n, "output")
    elif inplace:
        saved = Saved("copy of the input (in-place op)", n, "tmp0")
    else:
        saved = Saved("input", n, "input")
    return Cost(
        out=x, other_ops=n, alias=inplace, saved=(saved,),
        steps=(f"{kind}{' (in place)' if inplace else ''}: {n:,} elementwise ops",),
    )


def _register_activation(kind: str) -> None:
    def act_rule(x: Shape, *, inplace: bool | None = None) -> Cost:
        return _activation(kind, x, inplace=inplace)

    default = "true, as torchvision builds it" if kind in INPLACE_BY_DEFAULT else "false: torch.nn has no in-place form"
    act_rule.__doc__ = f"{kind} activation (inplace: {default})."
    rule(kind, *(("swish",) if kind == "silu" else ()))(act_rule)


for _kind in sorted(ACTIVATIONS):
    _register_activation(_kind)


@rule("softmax")
def softmax(x: Shape) -> Cost:
    """Softmax over classes: no parameters; backward keeps its output."""
    n = elems(x)
    return Cost(out=x, other_ops=n, saved=(Saved("output", n, "output"),), steps=(f"{n:,} exponentials and a normalisation",))


@rule("dropout")
def dropout(x: Shape, *, p: float = 0.5) -> Cost:
    """Dropout: identity at inference; training keeps a bool mask."""
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p < 1:
        raise RuleError(f"p must be a probability in [0, 1), got {p!r}")
    n = elems(x)
    return Cost(out=x, other_ops=n, alias=True, train_copy=True, saved=(Saved("mask (bool)", n, "tmp0", itemsize=1),),
                steps=(f"p = {p}; identity at inference, a {n:,}-element mask in training",))


@rule("flatten")
def flatten(x: Shape) -> Cost:
    """Flatten CxHxW to a vector (a view: no memory, no parameters)."""
    n = elems(x)
    # The vector as a whole covers the whole map, so a following fc sees the field it would see
    # without the flatten.
    wins = (Window(x[1]), Window(x[2])) if len(x) == 3 else None
    return Cost(out=(n,), alias=True, window=wins, steps=(f"{fmt_shape(x)} = {n:,}",))


@rule("identity")
def identity(x: Shape) -> Cost:
    """Pass the input through unchanged."""
    return Cost(out=x, alias=True)


@rule("fc", "linear")
def fc(x: Shape, *, out: int, bias: bool = True, bn: bool = False, act: str = "none", inplace: bool | None = None) -> Cost:
    """Fully connected layer; a CxHxW input is flattened first (its size is inferred)."""
    out = _int("out", out)
    n_in = elems(x)
    weights = n_in * out
    biases = out if _bool("bias", bias) else 0
    flat = f"{fmt_shape(x)} = {n_in:,} inputs; " if len(x) == 3 else ""
    steps = [f"{flat}weights: {n_in:,} x {out:,} = {weights:,}"]
    if biases:
        steps.append(f"biases: {biases:,}")
    steps.append(f"MACs: {n_in:,} x {out:,} = {weights:,}")
    # A spatial input is seen whole: as a receptive field the layer is a kernel of the map's size.
    wins = (Window(x[1]), Window(x[2])) if len(x) == 3 else None
    core = Cost(out=(out,), weight_params=weights, bias_params=biases, macs=weights,
                connections=weights + biases, saved=(Saved("input", n_in, "input"),), window=wins, steps=tuple(steps))
    return _post(core, bn=bn, act=act, inplace=inplace)


@rule("subsample")
def subsample(x: Shape, *, k=2, s=None, act: str = "none", inplace: bool | None = None) -> Cost:
    """LeNet-5's trainable subsampling: a k x k sum times a trainable coefficient plus a bias, per map."""
    c = _spatial(x, "subsample")[0]
    wins = _windows(x, k, k if s is None else s, 0, 1)
    (h, w), steps, warnings = _slide(x, wins)
    kk = wins[0].k * wins[1].k
    n_out = c * h * w
    steps += [f"weights: {c} coefficients, biases: {c} (one each per map)",
              f"connections: {n_out:,} outputs x ({kk} inputs + bias) = {n_out * (kk + 1):,}"]
    core = Cost(out=(c, h, w), weight_params=c, bias_params=c, macs=n_out, other_ops=n_out * (kk - 1),
                connections=n_out * (kk + 1), saved=(Saved("input", elems(x), "input"),), window=wins,
                steps=tuple(steps), warnings=tuple(warnings))
    return _post(core, bn=False, act=act, inplace=inplace)


@rule("rbf")
def rbf(x: Shape, *, out: int) -> Cost:
    """LeNet-5's Euclidean RBF output: fixed (non-trainable) prototypes, squared distances."""
    out = _int("out", out)
    n_in = elems(x)
    links = n_in * out
    return Cost(out=(out,), buffer_elems=links, macs=links, connections=links,
                saved=(Saved("input", n_in, "input"),),
                steps=(f"{out} fixed prototypes of {n_in} (buffers, not trainable): {links:,}",
                       f"MACs (squared differences): {n_in} x {out} = {links:,}"))


@rule("shortcut")
def shortcut(x: Shape, *, out: int, s=1, option: str = "B", bn: bool = True) -> Cost:
    """ResNet shortcut: identity when the shape is kept, else option A (zero-pad), B or C (1x1 projection)."""
    c_in, h_in, w_in = _spatial(x, "shortcut")
    out = _int("out", out)
    sh, sw = _pair("s", s)
    if option not in ("A", "B", "C"):
        raise RuleError(f"option must be A, B or C, got {option!r}")
    same = out == c_in and (sh, sw) == (1, 1)
    if same and option in ("A", "B"):
        return Cost(out=x, alias=True, steps=("identity shortcut: shape kept, no parameters",))
    if option == "A":
        if out < c_in:
            raise RuleError(f"option A cannot shrink channels ({c_in} -> {out})")
        h, w = -(-h_in // sh), -(-w_in // sw)
        return Cost(out=(out, h, w), window=(Window(1, sh), Window(1, sw)),
                    steps=(f"option A: subsample by {sh} ({h_in} -> {h}), zero-pad channels {c_in} -> {out}; no parameters",))
    cost = conv(x, out=out, k=1, s=[sh, sw], bias=not bn, bn=bn)
    return replace(cost, steps=(f"option {option}: 1x1 projection {c_in} -> {out}, stride {sh}",) + cost.steps)


@rule("concat", merge=True)
def concat(xs: dict) -> Cost:
    """Concatenate branches along the channel axis (spatial sizes must agree)."""
    shapes = list(xs.values())
    if any(len(sh) != len(shapes[0]) for sh in shapes) or any(sh[1:] != shapes[0][1:] for sh in shapes):
        raise RuleError("concat needs equal spatial sizes, got " + ", ".join(f"{b} {fmt_shape(sh)}" for b, sh in xs.items()))
    out = (sum(sh[0] for sh in shapes),) + tuple(shapes[0][1:])
    return Cost(out=out, steps=(" + ".join(str(sh[0]) for sh in shapes) + f" = {out[0]} channels",))


@rule("add", merge=True)
def add(xs: dict, *, inplace: bool = False) -> Cost:
    """Elementwise sum of branches (shapes must agree); inplace: true sums into the first branch (`out += x`)."""
    shapes = list(xs.values())
    if any(sh != shapes[0] for sh in shapes):
        raise RuleError("add needs equal shapes, got " + ", ".join(f"{b} {fmt_shape(sh)}" for b, sh in xs.items()))
    n = elems(shapes[0])
    return Cost(out=shapes[0], other_ops=n * (len(shapes) - 1), alias=_bool("inplace", inplace),
                steps=(f"{len(shapes)} x {fmt_shape(shapes[0])} summed{' into the first branch' if inplace else ''}",))
