"""Reading a torch module, traced with torch.fx, into ``Layer`` records.

``torchvision:NAME`` builds ``torchvision.models.get_model(NAME)`` (random weights: only shapes
matter); ``module:factory`` imports ``module`` and calls ``factory()`` (or takes it as it is when it
is already a module). The trace's shapes come from ``ShapeProp`` on one sample. torchvision's
``StochasticDepth`` is kept as one call (``drop_path``) instead of being traced through.
"""
from __future__ import annotations

import operator
from importlib import import_module

from . import Layer, UnsupportedOp
from .fx_ops import FUNCTIONS, METHODS, module_layer

DEFAULT_INPUT = (3, 224, 224)


def _model(target: str):
    import torch

    where, _, what = target.partition(":")
    if where == "torchvision":
        import torchvision

        try:
            return torchvision.models.get_model(what, weights=None), what
        except ValueError as e:
            raise UnsupportedOp(f"torchvision has no model {what!r}: {e}", file=target) from None
    try:
        factory = getattr(import_module(where), what)
    except (ImportError, AttributeError) as e:
        raise UnsupportedOp(f"cannot import it: {type(e).__name__}: {e}", file=target) from None
    try:
        model = factory if isinstance(factory, torch.nn.Module) else factory()
    except Exception as e:  # noqa: BLE001 - whatever the user's factory raises is a bad target
        raise UnsupportedOp(f"{what}() failed: {type(e).__name__}: {e}", file=target) from None
    if not isinstance(model, torch.nn.Module):
        raise UnsupportedOp(f"gave a {type(model).__name__}, not a torch.nn.Module", file=target)
    return model, what


def _trace(model):
    import torch.fx as fx

    leaves = ()
    try:
        from torchvision.ops import StochasticDepth

        leaves = (StochasticDepth,)
    except ImportError:
        pass

    class Tracer(fx.Tracer):
        def is_leaf_module(self, m, qualname):
            return isinstance(m, leaves) or super().is_leaf_module(m, qualname)

    graph = Tracer().trace(model)
    return fx.GraphModule(model, graph)


class _Meta:
    def __init__(self, shape):
        self.shape = shape


def _Shapes(gm):
    """An interpreter that runs the traced graph once and notes each tensor's shape on its node
    (torch's ShapeProp prints a traceback of its own when the model fails)."""
    import torch
    import torch.fx as fx

    class Shapes(fx.Interpreter):
        def run_node(self, n):
            result = super().run_node(n)
            if isinstance(result, torch.Tensor):
                n.meta["tensor_meta"] = _Meta(tuple(result.shape))
            return result

    return Shapes(gm)


def read_module(target: str, *, input_shape: tuple | None = None) -> tuple[list[Layer], str]:
    import torch

    model, name = _model(target)
    model.eval()
    try:
        gm = _trace(model)
    except Exception as e:  # noqa: BLE001 - torch.fx refuses data-dependent control flow in many ways
        raise UnsupportedOp(f"torch.fx cannot trace it: {type(e).__name__}: {str(e).splitlines()[0]}", file=target) from None
    shape = tuple(input_shape or DEFAULT_INPUT)
    try:
        with torch.no_grad():
            _Shapes(gm).run(torch.zeros((1, *shape)))
    except Exception as e:  # noqa: BLE001 - e.g. an input of the wrong size for the model
        msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise UnsupportedOp(f"the model does not run on a {'x'.join(map(str, shape))} input: {type(e).__name__}: {msg}",
                            file=target) from None
    return _Reader(gm, target).read(shape), name


class _Reader:
    def __init__(self, gm, target: str):
        self.gm = gm
        self.target = target
        self.layers: list[Layer] = []
        self.of: dict = {}  # fx node -> layer id
        self.value: dict = {}  # fx node -> a non-tensor value (a tuple of chunks, a size, a pattern)

    def add(self, type_: str, args: dict, inputs: list, node) -> None:
        meta = node.meta.get("tensor_meta")
        shape = tuple(meta.shape)[1:] if meta is not None and hasattr(meta, "shape") else ()
        lid = len(self.layers)
        self.layers.append(Layer(lid, type_, args, [self.of[i] for i in inputs], shape, node.name))
        self.of[node] = lid

    def fail(self, node, what: str) -> None:
        raise UnsupportedOp(f"unsupported torch op {what} at node {node.name!r}; "
                            "archcalc's spec language has no layer for it", file=self.target)

    def read(self, shape: tuple) -> list[Layer]:
        for node in self.gm.graph.nodes:
            if node.op == "placeholder":
                if self.layers:
                    self.fail(node, "(a second input)")
                self.layers.append(Layer(0, "input", {}, [], shape, node.name))
                self.of[node] = 0
            elif node.op == "call_module":
                mod = self.gm.get_submodule(node.target)
                got = module_layer(mod, node)
                if got is None:
                    self.fail(node, type(mod).__name__)
                self.add(got[0], got[1], [node.args[0]], node)
            elif node.op in ("call_function", "call_method"):
                self.call(node)
            elif node.op == "output":
                out = node.args[0]
                if isinstance(out, (tuple, list)):
                    out = out[0]
                if out not in self.of:
                    self.fail(node, "(an output that is not a tensor of the graph)")
                if self.of[out] != len(self.layers) - 1:
                    self.layers.append(Layer(len(self.layers), "identity", {}, [self.of[out]], self.layers[self.of[out]].out, "output"))
            elif node.op == "get_attr":
                self.value[node] = node  # a parameter read directly (a layer scale's gamma)
        return self.layers

    def call(self, node) -> None:
        table = FUNCTIONS if node.op == "call_function" else METHODS
        name = node.target if node.op == "call_method" else getattr(node.target, "__name__", str(node.target))
        first = node.args[0] if node.args else None
        if isinstance(self.value.get(first), tuple):
            self.pattern(node, name, self.value[first])
            return
        tensors = [a for a in _flat(node.args) if a in self.of]
        if not tensors:  # arithmetic on sizes and other non-tensors
            self.value[node] = node
            return
        handler = table.get(name)
        if handler is None:
            self.fail(node, f"{node.op} {name}")
        got = handler(node, tensors)
        if got is None:
            self.fail(node, f"{node.op} {name} with these arguments")
        if got[0] == "value":
            self.value[node] = got[1]
        elif got[0] == "alias":
            self.of[node] = self.of[got[1]]
        else:
            self.add(got[0], got[1], got[2], node)

    def pattern(self, node, name: str, src: tuple) -> None:
        """The second step of an op torch spells in several: a chunk's getitem, a shuffle's transpose."""
        kind = src[0]
        meta = node.meta.get("tensor_meta")
        rank = len(meta.shape) if meta is not None and hasattr(meta, "shape") else 0
        if kind in ("chunk", "split") and node.target is operator.getitem:
            self.add(kind, src[2] | {"i": node.args[1]}, [src[1]], node)
        elif kind == "shuffle1" and name == "transpose" and sorted(node.args[1:3]) == [1, 2]:
            self.value[node] = ("shuffle2",) + src[1:]
        elif kind == "shuffle2" and name == "contiguous":
            self.value[node] = src
        elif kind == "shuffle2" and name in ("view", "reshape") and rank == 4:
            self.add("channel_shuffle", {"g": src[2]}, [src[1]], node)
        else:
            self.fail(node, f"{node.op} {name} (after {kind})")


def _flat(args):
    for a in args:
        if isinstance(a, (list, tuple)):
            yield from _flat(a)
        else:
            yield a
