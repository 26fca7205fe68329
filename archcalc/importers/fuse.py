"""Cleaning an imported graph and fusing conv + BN + activation into one row."""
from __future__ import annotations

from ..rules import ACTIVATIONS
from . import MERGES, Layer

WEIGHTED = ("conv", "dwconv", "fc")


def consumers(layers: list[Layer]) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {n.id: [] for n in layers}
    for n in layers:
        for i in n.inputs:
            out[i].append(n.id)
    return out


def _drop(layers: list[Layer], gone: dict[int, int]) -> list[Layer]:
    """Layers without those in ``gone`` (id -> the id that replaces it for its readers)."""

    def final(i: int) -> int:
        while i in gone:
            i = gone[i]
        return i

    kept = [n for n in layers if n.id not in gone]
    for n in kept:
        n.inputs = [final(i) for i in n.inputs]
    return kept


def prune(layers: list[Layer]) -> list[Layer]:
    """Only what the output depends on; pass-throughs (``identity``, a concat of one tensor) dropped, and a ``flatten``
    read only by fc layers dropped (archcalc's fc flattens its input itself)."""
    need = {layers[-1].id}
    for n in reversed(layers):
        if n.id in need:
            need.update(n.inputs)
    layers = [n for n in layers if n.id in need]
    readers = consumers(layers)
    by_id = {n.id: n for n in layers}
    gone = {}
    for n in layers[1:]:
        if n.type == "identity" or (n.type in MERGES and len(n.inputs) == 1) or (n.type == "flatten" and readers[n.id]
                                    and all(by_id[r].type == "fc" for r in readers[n.id])):
            gone[n.id] = n.inputs[0]
    return _drop(layers, gone)


def fuse(layers: list[Layer]) -> list[Layer]:
    """A conv, dwconv or fc whose only reader is a batch norm (and/or then an activation that is
    the only reader) takes them into its row: ``bn: true``, ``act: relu``."""
    readers = consumers(layers)
    by_id = {n.id: n for n in layers}
    gone: dict[int, int] = {}

    def sole_reader(n: Layer) -> Layer | None:
        r = readers[n.id]
        return by_id[r[0]] if len(r) == 1 and len(by_id[r[0]].inputs) == 1 else None

    for n in layers:
        if n.type not in WEIGHTED or n.id in gone:
            continue
        n.args.setdefault("bn", False)
        n.args.setdefault("act", "none")
        last = n
        nxt = sole_reader(n)
        if nxt is not None and nxt.type == "batchnorm" and nxt.args.get("affine", True) and not n.args.get("bn"):
            n.args["bn"] = True
            gone[nxt.id] = n.id
            last, nxt = nxt, sole_reader(nxt)
        if nxt is not None and nxt.type in ACTIVATIONS and "slope" not in nxt.args:
            n.args["act"] = nxt.type
            if "inplace" in nxt.args:
                n.args["inplace"] = nxt.args["inplace"]
            gone[nxt.id] = n.id
            last = nxt
        n.out = last.out
    return _drop(layers, gone)
