"""torch modules, functions and methods as archcalc layers (for fx.py).

A module gives ``(type, args)``; a function or method handler gives ``(type, args, inputs)``, or
``("value", v)`` for a non-tensor result (a tuple of chunks, the first step of a channel
shuffle), or ``("alias", node)`` for a pass-through (``contiguous``), or None when the call
has a form archcalc cannot express.
"""
from __future__ import annotations

from ..rules import INPLACE_BY_DEFAULT


def _one(v):
    if isinstance(v, (tuple, list)):
        v = [int(x) for x in v]
        return v[0] if len(set(v)) == 1 else v
    return int(v) if not isinstance(v, str) else v


def _act(kind: str, inplace: bool | None = None) -> tuple[str, dict]:
    default = kind in INPLACE_BY_DEFAULT
    return kind, ({} if inplace is None or bool(inplace) == default else {"inplace": bool(inplace)})


def _conv(m) -> tuple[str, dict] | None:
    if m.padding_mode != "zeros" or len(m.kernel_size) != 2 or m.transposed:
        return None
    p = m.padding if isinstance(m.padding, str) else _one(m.padding)
    args = {"k": _one(m.kernel_size), "s": _one(m.stride), "p": p}
    if _one(m.dilation) != 1:
        args["d"] = _one(m.dilation)
    if m.groups == m.in_channels and m.groups > 1:
        if m.out_channels // m.in_channels != 1:
            args["mult"] = m.out_channels // m.in_channels
        return "dwconv", args | {"bias": m.bias is not None}
    if m.groups != 1:
        args["g"] = m.groups
    return "conv", {"out": m.out_channels} | args | {"bias": m.bias is not None}


def _pool(kind: str, m) -> tuple[str, dict]:
    args = {"k": _one(m.kernel_size), "s": _one(m.stride if m.stride is not None else m.kernel_size), "p": _one(m.padding)}
    if m.ceil_mode:
        args["ceil"] = True
    if kind == "maxpool" and _one(m.dilation) != 1:
        args["d"] = _one(m.dilation)
    return kind, args


def module_layer(m, node) -> tuple[str, dict] | None:
    from torch import nn

    name = type(m).__name__
    acts = {nn.ReLU: "relu", nn.ReLU6: "relu6", nn.ELU: "elu", nn.SiLU: "silu", nn.Hardswish: "hardswish",
            nn.Hardsigmoid: "hardsigmoid", nn.LeakyReLU: "leaky_relu"}
    for cls, kind in acts.items():
        if type(m) is cls:
            kind, args = _act(kind, getattr(m, "inplace", None))
            if kind == "leaky_relu" and abs(m.negative_slope - 0.01) > 1e-9:
                args["slope"] = m.negative_slope
            return kind, args
    simple = {nn.Sigmoid: "sigmoid", nn.Tanh: "tanh", nn.Identity: "identity", nn.Flatten: "flatten"}
    if type(m) in simple:
        return simple[type(m)], {}
    if type(m) is nn.GELU:
        return ("gelu", {}) if m.approximate == "none" else None
    if isinstance(m, nn.Conv2d):
        return _conv(m)
    if isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
        return "batchnorm", ({} if m.affine else {"affine": False})
    if isinstance(m, nn.MaxPool2d):
        return _pool("maxpool", m)
    if isinstance(m, nn.AvgPool2d):
        return _pool("avgpool", m)
    if isinstance(m, nn.AdaptiveAvgPool2d):
        return "adaptive_avgpool", {"out": _one(m.output_size)}
    if isinstance(m, nn.Linear):
        return "fc", {"out": m.out_features, "bias": m.bias is not None}
    if isinstance(m, nn.Dropout):
        return "dropout", {"p": m.p}
    if isinstance(m, nn.LocalResponseNorm):
        return "lrn", {"size": m.size, "alpha": m.alpha, "beta": m.beta, "k": m.k}
    if isinstance(m, nn.Softmax):
        return "softmax", {}
    if name == "StochasticDepth" and m.mode == "row":
        return "drop_path", {"p": m.p}
    if isinstance(m, nn.LayerNorm) and len(m.normalized_shape) == 1:
        return "layernorm", ({} if m.elementwise_affine else {"affine": False})
    return None


def _kw(node, key: str, pos: int, default=None):
    if key in node.kwargs:
        return node.kwargs[key]
    return node.args[pos] if len(node.args) > pos else default


def _merge(kind: str):
    def handler(node, tensors):
        if len(tensors) < 2:
            return None
        return kind, {}, tensors

    return handler


def _mul(node, tensors):
    if len(tensors) == 2:
        return "mul", {}, tensors
    other = next((a for a in node.args if a not in tensors), None)
    if getattr(other, "op", None) == "get_attr":
        return "layer_scale", {}, tensors
    return None


def _cat(node, tensors):
    dim = _kw(node, "dim", 1, 0)
    return ("concat", {}, tensors) if dim in (1, -3) else None


def _flatten(node, tensors):
    return ("flatten", {}, tensors) if _kw(node, "start_dim", 1, 0) == 1 else None


def _view(node, tensors):
    meta = node.meta.get("tensor_meta")
    rank = len(meta.shape) if meta is not None else 0
    if rank == 2:
        return "flatten", {}, tensors[:1]
    if rank == 5:  # a channel shuffle's x.view(n, g, c // g, h, w)
        return "value", ("shuffle1", tensors[0], int(meta.shape[1]))
    return None


def _chunk(node, tensors):
    n, dim = _kw(node, "chunks", 1), _kw(node, "dim", 2, 0)
    return ("value", ("chunk", tensors[0], {"n": n})) if dim == 1 else None


def _mean(node, tensors):
    dims = _kw(node, "dim", 1)
    if sorted(d % 4 for d in dims) == [2, 3]:  # a global average (without keepdim, the fc after it flattens anyway)
        return "adaptive_avgpool", {"out": 1}, tensors
    return None


def _f_act(kind: str):
    def handler(node, tensors):
        return (*_act(kind, _kw(node, "inplace", 1, False)), tensors)

    return handler


def _adaptive(node, tensors):
    return "adaptive_avgpool", {"out": _one(_kw(node, "output_size", 1))}, tensors


def _dropout(node, tensors):
    return "dropout", {"p": _kw(node, "p", 1, 0.5)}, tensors


FUNCTIONS = {
    "add": _merge("add"), "iadd": _merge("add"), "mul": _mul, "cat": _cat, "concat": _cat, "flatten": _flatten,
    "relu": _f_act("relu"), "relu6": _f_act("relu6"), "silu": _f_act("silu"), "hardswish": _f_act("hardswish"),
    "sigmoid": lambda node, t: ("sigmoid", {}, t), "tanh": lambda node, t: ("tanh", {}, t),
    "adaptive_avg_pool2d": _adaptive, "dropout": _dropout, "transpose": lambda node, t: None,
}
METHODS = {
    "add": _merge("add"), "mul": _mul, "flatten": _flatten, "view": _view, "reshape": _view, "chunk": _chunk,
    "mean": _mean, "relu": _f_act("relu"), "sigmoid": lambda node, t: ("sigmoid", {}, t),
    "contiguous": lambda node, t: ("alias", t[0]),
    "size": lambda node, t: ("value", node), "dim": lambda node, t: ("value", node),
}
