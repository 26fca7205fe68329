"""Importers: a trained-framework model (an ONNX file, a torch module) as a readable archcalc spec.

Each reader (``onnx.py``, ``fx.py``) turns its graph into a list of ``Layer`` records: one per
operation, in execution order, with archcalc's layer type, the arguments archcalc needs (the same
names as the spec language, so a record is a spec row waiting to be written) and the ids of the
records it reads. What follows is the same for every reader:

1. ``fuse.fuse``: conv (or fc) + batch norm + activation become one row, as the bundled specs
   and the papers draw them;
2. ``structure.structure``: the graph becomes nested sequences and merges (``add``, ``concat``,
   ``mul``, ``mean`` with named branches), or, where the graph is not series-parallel, one flat
   list with ``from:`` references;
3. ``blocks.recover``: merges that repeat with one structure and different numbers become a
   ``blocks:`` definition with arguments, called with ``times:``/``first:`` or per call;
4. ``emit.emit``: YAML text written the way the bundled specs are (flow mappings, defaults).

An operation a reader cannot express in the spec language raises ``UnsupportedOp`` naming the
op and the node: it is never dropped, since a missing layer would change every number after it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..spec import SpecError


class UnsupportedOp(SpecError):
    """The model has an operation archcalc's spec language cannot express."""


@dataclass
class Layer:
    """One operation of an imported graph: an archcalc layer type and its spec arguments."""

    id: int
    type: str  # archcalc layer type (``input`` for the graph input)
    args: dict = field(default_factory=dict)
    inputs: list[int] = field(default_factory=list)
    out: tuple = ()  # output shape of one sample (C, H, W) or (N,)
    source: str = ""  # the node's name in the source graph, for messages


MERGES = ("concat", "add", "mul", "mean")


def to_spec(layers: list[Layer], *, name: str, source: str) -> str:
    """The readable spec text of an imported graph (``layers[0]`` is its input)."""
    from .blocks import recover
    from .emit import emit
    from .fuse import fuse, prune
    from .structure import structure

    layers = fuse(prune(layers))
    items = structure(layers)
    items, blocks = recover(items)
    return emit(name=name, source=source, input_shape=layers[0].out, items=items, blocks=blocks)


def import_model(target: str, *, input_shape: tuple | None = None, name: str | None = None) -> str:
    """The spec text for ``target``: a ``.onnx`` file, ``torchvision:NAME`` or ``module:factory``."""
    if target.endswith(".onnx"):
        import os

        if not os.path.isfile(target):  # said before asking for the onnx extra
            raise SpecError("no such file", file=target)
        from .onnx import read_onnx

        layers, default_name = read_onnx(target)
        src = f"imported from {target.rsplit('/', 1)[-1]} by archcalc import"
    elif ":" in target:
        from .fx import read_module

        layers, default_name = read_module(target, input_shape=input_shape)
        src = f"imported from {target} by archcalc import (torch.fx)"
    else:
        raise SpecError("cannot import this: give a .onnx file, torchvision:NAME or module:factory", file=target)
    return to_spec(layers, name=name or default_name, source=src)


__all__ = ["Layer", "UnsupportedOp", "MERGES", "to_spec", "import_model"]
