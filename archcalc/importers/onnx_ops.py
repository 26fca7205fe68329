"""ONNX attributes as archcalc arguments: windows (conv, pools), activations, constant arithmetic."""
from __future__ import annotations

import math

import numpy as np


def attrs(node) -> dict:
    from onnx import helper, numpy_helper

    out = {}
    for at in node.attribute:
        v = helper.get_attribute_value(at)
        if hasattr(v, "dims"):  # a TensorProto
            v = numpy_helper.to_array(v)
        elif isinstance(v, bytes):
            v = v.decode()
        elif isinstance(v, list):
            v = [int(x) if isinstance(x, int) else x for x in v]
        out[at.name] = v
    return out


def _one(v):
    """[a, a] -> a: the spec's short form for equal height and width."""
    v = [int(x) for x in v]
    return v[0] if len(set(v)) == 1 else v


def _pads(a: dict, extra) -> int | list:
    """ONNX's [top, left, bottom, right] (plus a Pad node's (t, b, l, r)) as the spec's p."""
    if a.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
        raise ValueError(f"auto_pad {a['auto_pad']}")
    t, left, b, r = a.get("pads", [0, 0, 0, 0])
    if extra:
        t, b, left, r = t + extra[0], b + extra[1], left + extra[2], r + extra[3]
    if t == b and left == r:
        return _one([t, left])
    return [t, b, left, r]


def conv_args(a: dict, w: tuple, c_in: int, bias: bool, extra) -> tuple[str, dict]:
    k = _one(a.get("kernel_shape", w[2:]))
    s = _one(a.get("strides", [1, 1]))
    d = _one(a.get("dilations", [1, 1]))
    g = int(a.get("group", 1))
    out = int(w[0])
    args = {"k": k, "s": s, "p": _pads(a, extra)}
    if d != 1:
        args["d"] = d
    if g == c_in and g > 1:
        if out // c_in != 1:
            args["mult"] = out // c_in
        return "dwconv", args | {"bias": bias}
    if g != 1:
        args["g"] = g
    return "conv", {"out": out} | args | {"bias": bias}


def pool_args(a: dict, extra) -> dict:
    k = _one(a["kernel_shape"])
    args = {"k": k, "s": _one(a.get("strides", [1, 1])), "p": _pads(a, extra)}
    if a.get("ceil_mode", 0):
        args["ceil"] = True
    d = _one(a.get("dilations", [1, 1]))
    if d != 1:
        args["d"] = d
    return args


def _clip(a, consts):
    lo = consts[0] if len(consts) > 0 and consts[0] is not None else a.get("min", -math.inf)
    hi = consts[1] if len(consts) > 1 and consts[1] is not None else a.get("max", math.inf)
    if float(lo) == 0 and float(hi) == 6:
        return "relu6", {}
    if float(lo) == 0 and math.isinf(float(hi)):
        return "relu", {}
    return None


def _leaky(a, consts):
    slope = float(a.get("alpha", 0.01))
    return "leaky_relu", ({} if abs(slope - 0.01) < 1e-9 else {"slope": round(slope, 6)})


def _hardsigmoid(a, consts):
    # torch's hardsigmoid is ONNX's HardSigmoid with alpha 1/6 (ONNX's own default is 0.2)
    return ("hardsigmoid", {}) if abs(a.get("alpha", 0.2) - 1 / 6) < 1e-6 and a.get("beta", 0.5) == 0.5 else None


ACT_OPS = {
    "Relu": lambda a, c: ("relu", {}),
    "Clip": _clip,
    "LeakyRelu": _leaky,
    "Elu": lambda a, c: ("elu", {}) if a.get("alpha", 1.0) == 1.0 else None,
    "Sigmoid": lambda a, c: ("sigmoid", {}),
    "Tanh": lambda a, c: ("tanh", {}),
    "HardSwish": lambda a, c: ("hardswish", {}),
    "HardSigmoid": _hardsigmoid,
    "Gelu": lambda a, c: ("gelu", {}) if a.get("approximate", "none") == "none" else None,
}


def _unsqueeze(a, xs):
    axes = a.get("axes") if "axes" in a else xs[1].tolist()
    out = xs[0]
    for ax in sorted(axes):
        out = np.expand_dims(out, ax)
    return out


def _slice(a, xs):
    x = xs[0]
    starts, ends = xs[1].tolist(), xs[2].tolist()
    axes = xs[3].tolist() if len(xs) > 3 else list(range(len(starts)))
    steps = xs[4].tolist() if len(xs) > 4 else [1] * len(starts)
    index = [slice(None)] * x.ndim
    for ax, b, e, st in zip(axes, starts, ends, steps):
        index[ax] = slice(b, e, st)
    return x[tuple(index)]


def _constant_of_shape(a, xs):
    value = a.get("value")
    fill = value.reshape(-1)[0] if value is not None else np.float32(0)
    return np.full([int(v) for v in xs[0]], fill)


# Arithmetic exporters emit on constants (shapes, scalars), evaluated so that their results can be read.
CONST_OPS = {
    "Unsqueeze": _unsqueeze,
    "Squeeze": lambda a, xs: np.squeeze(xs[0], axis=tuple(a["axes"]) if "axes" in a else (tuple(xs[1].tolist()) if len(xs) > 1 else None)),
    "Concat": lambda a, xs: np.concatenate([np.atleast_1d(x) for x in xs], axis=a.get("axis", 0)),
    "Add": lambda a, xs: xs[0] + xs[1],
    "Sub": lambda a, xs: xs[0] - xs[1],
    "Mul": lambda a, xs: xs[0] * xs[1],
    "Div": lambda a, xs: xs[0] / xs[1] if xs[0].dtype.kind == "f" else xs[0] // xs[1],
    "Cast": lambda a, xs: xs[0],
    "Gather": lambda a, xs: np.take(xs[0], xs[1], axis=a.get("axis", 0)),
    "Reshape": lambda a, xs: xs[0].reshape([int(v) for v in xs[1]]),
    "Identity": lambda a, xs: xs[0],
    "Floor": lambda a, xs: np.floor(xs[0]),
    "Neg": lambda a, xs: -xs[0],
    "Slice": _slice,
    "ConstantOfShape": _constant_of_shape,
    "Transpose": lambda a, xs: np.transpose(xs[0], a.get("perm")),
}
