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
- What a framework keeps for backward, runs in place or allocates is not a rule's business: a rule
  lists its ``parts`` (the operations a row is made of) and a profile (archcalc/profiles/) says
  what each part's framework does.
"""
from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, replace
from typing import Callable, Literal

from .shape import AxisResult, Shape, ShapeError, Window, elems, fmt_shape, same_padding, window_out

# What YAML value each argument takes is its annotation: archcalc/schema.py turns a rule's signature
# into the JSON Schema of spec files, and refuses an argument without one.
Pair = int | list[int]  # one integer for both axes, or [h, w]
Padding = int | list[int] | Literal["same", "valid"]  # a list: [h, w] or [top, bottom, left, right]


class RuleError(ValueError):
    """A layer's arguments are invalid for its input."""


@dataclass(frozen=True)
class Saved:
    """One tensor kept for backward (profiles say which). ``of`` names the storage: 'input',
    'inputN' (operand N of a merge), 'output' or 'tmpN' (an intermediate of the row)."""

    what: str
    elems: int
    of: str
    itemsize: int = 0  # 0: the activation dtype; else fixed bytes (int64 indices, bool masks ...)
    per_batch: bool = False  # kept once per batch, not per sample (BN's batch statistics)


@dataclass(frozen=True)
class Part:
    """One framework operation of a row (a conv + BN + ReLU row has three): what a profile needs
    to say what the framework keeps and allocates for it."""

    type: str  # a rule name
    x: object  # the input shape (a tuple of shapes for a merge)
    out: Shape
    args: tuple = ()  # (key, value) pairs a profile may read: inplace, size ...

    def arg(self, key: str, default=None):
        for k, v in self.args:
            if k == key:
                return v
        return default


@dataclass(frozen=True)
class Cost:
    """What a layer is, whatever framework runs it."""

    out: Shape
    weight_params: int = 0
    bias_params: int = 0
    buffer_elems: int = 0  # non-trainable state: BN running stats, fixed RBF prototypes
    macs: int = 0
    other_ops: int = 0
    connections: int = 0  # LeCun's count: input-to-output links incl. bias, one per MAC + bias add
    window: tuple[Window, Window] | None = None  # for the receptive field; None = pointwise
    steps: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    parts: tuple[Part, ...] = ()  # the framework operations, in order; empty: the rule itself

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
        cost = r.fn(x, **kwargs)
    except ShapeError as e:
        raise RuleError(str(e)) from None
    if not cost.parts:  # one operation: the rule itself
        xs = tuple(x.values()) if r.merge else x
        part_args = tuple(_part_args(r, args)) + uneven_padding(cost.window)
        cost = replace(cost, parts=(Part(r.name, xs, cost.out, part_args),))
    return cost


def uneven_padding(window) -> tuple:
    """``(("pad", (top, bottom, left, right)),)`` when a window's padding differs from side to side
    (TensorFlow's `same` at stride 2, `[t, b, l, r]`), else ``()``: a framework that pads only
    evenly must copy the input padded first, and a profile may need to say so."""
    if window is None:
        return ()
    wh, ww = window
    if wh.pad_lo == wh.pad_hi and ww.pad_lo == ww.pad_hi:
        return ()
    return (("pad", (wh.pad_lo, wh.pad_hi, ww.pad_lo, ww.pad_hi)),)


def _part_args(r: Rule, args: dict):
    """The row's arguments with the rule's defaults, as (key, value) pairs a profile can read."""
    for key, default in r.defaults.items():
        yield key, args.get(key, default)


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
    return Cost(
        out=b.out,
        weight_params=a.weight_params + b.weight_params,
        bias_params=a.bias_params + b.bias_params,
        buffer_elems=a.buffer_elems + b.buffer_elems,
        macs=a.macs + b.macs,
        other_ops=a.other_ops + b.other_ops,
        connections=a.connections + b.connections,
        window=a.window,
        steps=a.steps + b.steps,
        warnings=a.warnings + b.warnings,
        parts=a.parts + b.parts,
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
def conv(x: Shape, *, out: int, k: Pair, s: Pair = 1, p: Padding = 0, d: Pair = 1, g: int = 1, bias: bool = True,
         bn: bool = False, act: Activation | None = "none", inplace: bool | None = None,
         table: list[list[int]] | None = None) -> Cost:
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
        window=wins,
        steps=tuple(steps),
        warnings=tuple(warnings),
        # a kernel sparser than out x in x kh x kw (groups, a connection table) may be built or
        # differentiated dense by a framework: its profile reads which, and the dense size
        parts=(Part("conv", x, (out, h, w), uneven_padding(wins)
                    + ((("table", c_in * out * kk),) if table is not None else ())
                    + ((("g", g),) if g > 1 else ())),),
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
def dwconv(x: Shape, *, k: Pair, s: Pair = 1, p: Padding = 0, d: Pair = 1, mult: int = 1, bias: bool = True,
           bn: bool = False, act: Activation | None = "none", inplace: bool | None = None) -> Cost:
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
    steps.append(f"no parameters; {'compares' if kind == 'maxpool' else 'adds'}: {n_out:,} outputs x {kk} = {n_out * kk:,} (not MACs)")
    return Cost(out=out, other_ops=n_out * kk, window=wins, steps=tuple(steps), warnings=tuple(warnings))


@rule("maxpool", "pool")
def maxpool(x: Shape, *, k: Pair | None = None, s: Pair | None = None, p: Padding = 0, d: Pair = 1, ceil: bool = False,
            global_: bool = False) -> Cost:
    """Max pooling (stride defaults to the kernel; ceil: true rounds up like Caffe)."""
    return _pool("maxpool", x, k, s, p, d, ceil, global_)


@rule("avgpool")
def avgpool(x: Shape, *, k: Pair | None = None, s: Pair | None = None, p: Padding = 0, ceil: bool = False,
            global_: bool = False) -> Cost:
    """Average pooling (global: true averages the whole map)."""
    return _pool("avgpool", x, k, s, p, 1, ceil, global_)


def _bins(n: int, o: int) -> tuple[int, int]:
    """(widest, sum of widths) of PyTorch's adaptive bins: bin i spans floor(i*n/o) .. ceil((i+1)*n/o),
    so its width is ceil((r + n) / o) with r = i*n mod o, which takes every multiple of g = gcd(n, o)
    from 0 to o - g; the widths add up to n + o - g. Closed forms: a loop over the bins cost
    ~0.1 s per layer at out = 10**6 (tests/test_fuzz_campaign.py checks them against the loop)."""
    g = math.gcd(n, o)
    return -(-(n - g) // o) + 1, n + o - g


@rule("adaptive_avgpool", "adaptive_pool")
def adaptive_avgpool(x: Shape, *, out: Pair) -> Cost:
    """Adaptive average pooling to a fixed output size (torchvision's AdaptiveAvgPool2d)."""
    c, h_in, w_in = _spatial(x, "adaptive_avgpool")
    h, w = _pair("out", out)
    (widest_h, sum_h), (widest_w, sum_w) = _bins(h_in, h), _bins(w_in, w)
    # The widest bin bounds the receptive field; bins start floor(n/o) apart.
    wins = (Window(widest_h, max(h_in // h, 1)), Window(widest_w, max(w_in // w, 1)))
    ops = c * sum_h * sum_w  # every output adds its bin: sum over (i, j) of bin_h[i] x bin_w[j]
    steps = (f"{h_in}x{w_in} -> {h}x{w} in adaptive bins (up to {wins[0].k}x{wins[1].k} inputs each)",
             f"no parameters; adds: {ops:,} (not MACs)")
    return Cost(out=(c, h, w), other_ops=ops, window=wins, steps=steps)


@rule("lrn")
def lrn(x: Shape, *, size: int = 5, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0) -> Cost:
    """Local response normalisation across channels (AlexNet, GoogLeNet): no parameters."""
    c, h, w = _spatial(x, "lrn")
    size = _int("size", size)
    n = elems(x)
    return Cost(
        out=x, other_ops=n * size,
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
        steps=tuple(steps),
        parts=(Part("batchnorm", x, x),),
    )


ACTIVATIONS = {"relu", "relu6", "leaky_relu", "sigmoid", "tanh", "gelu", "silu", "hardswish", "hardsigmoid", "elu"}
# How torchvision builds them: torch.nn offers inplace=True for these and torchvision uses it; nn.Tanh,
# nn.Sigmoid and nn.GELU have no in-place form, and torchvision's squeeze-excitation gate builds
# nn.Hardsigmoid without it. A profile decides what running in place means for memory.
INPLACE_BY_DEFAULT = {"relu", "relu6", "leaky_relu", "elu", "hardswish", "silu"}
Activation = Literal[("none", *sorted(ACTIVATIONS))]  # the `act:` of a conv or fc row


def _activation(kind: str, x: Shape, *, inplace: bool | None, slope: float | None = None) -> Cost:
    inplace = kind in INPLACE_BY_DEFAULT if inplace is None else _bool("inplace", inplace)
    n = elems(x)
    how = f" (slope {slope})" if slope is not None else ""
    return Cost(
        out=x, other_ops=n, parts=(Part(kind, x, x, (("inplace", inplace),)),),
        steps=(f"{kind}{how}{' (in place)' if inplace else ''}: {n:,} elementwise ops",),
    )


def _register_activation(kind: str) -> None:
    if kind in INPLACE_BY_DEFAULT:
        default = "true, as torchvision builds it"
    elif kind in ("tanh", "sigmoid", "gelu"):
        default = "false: torch.nn has no in-place form"
    else:
        default = "false, as torchvision builds it"
    if kind == "leaky_relu":
        def act_rule(x: Shape, *, slope: float = 0.01, inplace: bool | None = None) -> Cost:
            if isinstance(slope, bool) or not isinstance(slope, (int, float)):
                raise RuleError(f"slope must be a number, got {slope!r}")
            return _activation(kind, x, inplace=inplace, slope=slope)
    else:
        def act_rule(x: Shape, *, inplace: bool | None = None) -> Cost:
            return _activation(kind, x, inplace=inplace)

    act_rule.__doc__ = f"{kind} activation (inplace: {default})."
    rule(kind, *(("swish",) if kind == "silu" else ()))(act_rule)


for _kind in sorted(ACTIVATIONS):
    _register_activation(_kind)


@rule("softmax")
def softmax(x: Shape) -> Cost:
    """Softmax over classes: no parameters; backward keeps its output."""
    n = elems(x)
    return Cost(out=x, other_ops=n, steps=(f"{n:,} exponentials and a normalisation",))


@rule("dropout")
def dropout(x: Shape, *, p: float = 0.5) -> Cost:
    """Dropout: identity at inference; training keeps a bool mask."""
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p < 1:
        raise RuleError(f"p must be a probability in [0, 1), got {p!r}")
    n = elems(x)
    return Cost(out=x, other_ops=n,
                steps=(f"p = {p}; identity at inference, a {n:,}-element mask in training",))


@rule("flatten")
def flatten(x: Shape) -> Cost:
    """Flatten CxHxW to a vector (a view: no memory, no parameters)."""
    n = elems(x)
    # The vector as a whole covers the whole map, so a following fc sees the field it would see
    # without the flatten.
    wins = (Window(x[1]), Window(x[2])) if len(x) == 3 else None
    return Cost(out=(n,), window=wins, steps=(f"{fmt_shape(x)} = {n:,}",))


@rule("identity")
def identity(x: Shape) -> Cost:
    """Pass the input through unchanged."""
    return Cost(out=x)


@rule("fc", "linear")
def fc(x: Shape, *, out: int, bias: bool = True, bn: bool = False, act: Activation | None = "none",
       inplace: bool | None = None) -> Cost:
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
                connections=weights + biases, window=wins, steps=tuple(steps), parts=(Part("fc", x, (out,)),))
    return _post(core, bn=bn, act=act, inplace=inplace)


@rule("subsample")
def subsample(x: Shape, *, k: Pair = 2, s: Pair | None = None, act: Activation | None = "none",
              inplace: bool | None = None) -> Cost:
    """LeNet-5's trainable subsampling: a k x k sum times a trainable coefficient plus a bias, per map."""
    c = _spatial(x, "subsample")[0]
    wins = _windows(x, k, k if s is None else s, 0, 1)
    (h, w), steps, warnings = _slide(x, wins)
    kk = wins[0].k * wins[1].k
    n_out = c * h * w
    steps += [f"weights: {c} coefficients, biases: {c} (one each per map)",
              f"connections: {n_out:,} outputs x ({kk} inputs + bias) = {n_out * (kk + 1):,}"]
    core = Cost(out=(c, h, w), weight_params=c, bias_params=c, macs=n_out, other_ops=n_out * (kk - 1),
                connections=n_out * (kk + 1), window=wins, parts=(Part("subsample", x, (c, h, w)),),
                steps=tuple(steps), warnings=tuple(warnings))
    return _post(core, bn=False, act=act, inplace=inplace)


@rule("rbf")
def rbf(x: Shape, *, out: int) -> Cost:
    """LeNet-5's Euclidean RBF output: fixed (non-trainable) prototypes, squared distances."""
    out = _int("out", out)
    n_in = elems(x)
    links = n_in * out
    return Cost(out=(out,), buffer_elems=links, macs=links, connections=links,
                steps=(f"{out} fixed prototypes of {n_in} (buffers, not trainable): {links:,}",
                       f"MACs (squared differences): {n_in} x {out} = {links:,}"))


@rule("shortcut")
def shortcut(x: Shape, *, out: int, s: Pair = 1, option: Literal["A", "B", "C"] = "B", bn: bool = True) -> Cost:
    """ResNet shortcut: identity when the shape is kept, else option A (zero-pad), B or C (1x1 projection)."""
    c_in, h_in, w_in = _spatial(x, "shortcut")
    out = _int("out", out)
    sh, sw = _pair("s", s)
    if option not in ("A", "B", "C"):
        raise RuleError(f"option must be A, B or C, got {option!r}")
    same = out == c_in and (sh, sw) == (1, 1)
    if same and option in ("A", "B"):
        return Cost(out=x, steps=("identity shortcut: shape kept, no parameters",), parts=(Part("identity", x, x),))
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
    _bool("inplace", inplace)
    return Cost(out=shapes[0], other_ops=n * (len(shapes) - 1),
                steps=(f"{len(shapes)} x {fmt_shape(shapes[0])} summed{' into the first branch' if inplace else ''}",))


@rule("mul", merge=True)
def mul(xs: dict) -> Cost:
    """Elementwise product of branches, size-1 axes broadcast (a squeeze-and-excitation gate).

    A C x 1 x 1 gate times a C x H x W map gives C x H x W: one product per output element."""
    shapes = list(xs.values())
    if any(len(sh) != len(shapes[0]) for sh in shapes):
        raise RuleError("mul needs shapes of one rank, got " + ", ".join(f"{b} {fmt_shape(sh)}" for b, sh in xs.items()))
    out = []
    for dims in zip(*shapes):
        sizes = {d for d in dims if d != 1}
        if len(sizes) > 1:
            raise RuleError("mul needs equal sizes or 1 on each axis, got "
                            + ", ".join(f"{b} {fmt_shape(sh)}" for b, sh in xs.items()))
        out.append(sizes.pop() if sizes else 1)
    out = tuple(out)
    n = elems(out)
    return Cost(out=out, other_ops=n * (len(shapes) - 1),
                steps=(" x ".join(fmt_shape(sh) for sh in shapes) + f" -> {fmt_shape(out)}: {n * (len(shapes) - 1):,} products"
                       " (elementwise, not MACs)",))


def _channel_part(x: Shape, what: str, start: int, stop: int, how: str) -> Cost:
    out = (stop - start,) + tuple(x[1:])
    return Cost(out=out, steps=(f"channels {start}..{stop - 1} of {x[0]} ({how}): a view, {fmt_shape(out)}",))


@rule("chunk")
def chunk(x: Shape, *, n: int, i: int) -> Cost:
    """Part i of n equal channel chunks (torch.chunk): a view of the input."""
    n, i = _int("n", n), _int("i", i, low=0)
    c = x[0]
    if c % n:
        raise RuleError(f"{c} channels do not split into {n} equal chunks")
    if i >= n:
        raise RuleError(f"i must be below n: chunk {i} of {n}")
    size = c // n
    return _channel_part(x, "chunk", i * size, (i + 1) * size, f"chunk {i} of {n}")


@rule("split")
def split(x: Shape, *, sizes: list[int], i: int) -> Cost:
    """Part i of a channel split into the given sizes (torch.split): a view of the input."""
    if not isinstance(sizes, list) or not sizes:
        raise RuleError(f"sizes must be a list of channel counts, got {sizes!r}")
    sizes = [_int("sizes", v) for v in sizes]
    i = _int("i", i, low=0)
    if sum(sizes) != x[0]:
        raise RuleError(f"sizes {'+'.join(map(str, sizes))} = {sum(sizes)} must add up to the {x[0]} input channels")
    if i >= len(sizes):
        raise RuleError(f"i must be below the number of parts: part {i} of {len(sizes)}")
    start = sum(sizes[:i])
    return _channel_part(x, "split", start, start + sizes[i], f"part {i} of {'+'.join(map(str, sizes))}")


@rule("slice")
def slice_(x: Shape, *, start: int = 0, end: int | None = None) -> Cost:
    """Channels start..end-1 of the input (x[:, start:end]): a view."""
    start = _int("start", start, low=0)
    end = x[0] if end is None else _int("end", end)
    if not start < end <= x[0]:
        raise RuleError(f"slice {start}:{end} is not a non-empty range of the {x[0]} input channels")
    return _channel_part(x, "slice", start, end, f"[{start}:{end}]")


@rule("channel_shuffle")
def channel_shuffle(x: Shape, *, g: int) -> Cost:
    """ShuffleNet's channel shuffle: channels regrouped across g groups (a copy, no parameters)."""
    g = _int("g", g)
    if x[0] % g:
        raise RuleError(f"{x[0]} channels do not divide into {g} groups")
    return Cost(out=x, steps=(f"{x[0]} channels as {g} x {x[0] // g}, transposed: a copy, no arithmetic",))


@rule("layernorm", "ln")
def layernorm(x: Shape, *, affine: bool = True) -> Cost:
    """Layer normalisation over the C channels of each position (ConvNeXt's LayerNorm2d; LayerNorm on a vector).

    gamma and beta per channel; the mean and variance are the sample's own, so there are no buffers."""
    c = x[0]
    n = elems(x)
    affine = _bool("affine", affine)
    positions = n // c
    return Cost(out=x, weight_params=c if affine else 0, bias_params=c if affine else 0, other_ops=n,
                steps=(f"{positions:,} positions, each normalised over its {c} channels",
                       f"weights (gamma): {c}, biases (beta): {c}" if affine else "no trainable parameters (affine: false)"))


@rule("layer_scale")
def layer_scale(x: Shape) -> Cost:
    """A learnable per-channel scale (ConvNeXt's and CaiT's layer scale): C weights, one product per element."""
    c = x[0]
    n = elems(x)
    return Cost(out=x, weight_params=c, other_ops=n,
                steps=(f"weights: {c} (one scale per channel); {n:,} products (not MACs)",))


@rule("drop_path")
def drop_path(x: Shape, *, p: float = 0.0) -> Cost:
    """Stochastic depth (torchvision's StochasticDepth, "row"): a sample's residual branch dropped with probability p.

    The identity at inference; in training a kept branch is scaled by 1/(1 - p)."""
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p < 1:
        raise RuleError(f"p must be a probability in [0, 1), got {p!r}")
    n = elems(x)
    return Cost(out=x, other_ops=n, steps=(f"p = {p}: identity at inference; in training each sample's branch is "
                                           f"kept with probability {1 - p:g} and scaled by 1/{1 - p:g}",))


@rule("mean", merge=True)
def mean(xs: dict) -> Cost:
    """Elementwise mean of branches (FractalNet's join); shapes must agree."""
    shapes = list(xs.values())
    if any(sh != shapes[0] for sh in shapes):
        raise RuleError("mean needs equal shapes, got " + ", ".join(f"{b} {fmt_shape(sh)}" for b, sh in xs.items()))
    n = elems(shapes[0])
    return Cost(out=shapes[0], other_ops=n * len(shapes),
                steps=(f"{len(shapes)} x {fmt_shape(shapes[0])}: {n * (len(shapes) - 1):,} adds and {n:,} divisions",))
