"""An imported graph as nested sequences and merges, the way specs are written.

A merge (``add``, ``concat``, ``mul``, ``mean``) reads several tensors; its branches are the
chains from the merge's immediate dominator (the last tensor every path to it goes through) to
each of its inputs, built the same way recursively. That reproduces ResNet's ``add: {main, skip}``,
Inception's four-branch ``concat``, squeeze-and-excitation's ``mul`` and DenseNet's growing
``concat``. It is checked afterwards: the nested form must read every edge of the graph exactly
once. When it does not (a tensor read across branches, as in U-Net), the whole graph is written
flat instead, every row labelled and ``from:`` wherever a row does not read the row above it.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from . import MERGES, Layer


@dataclass
class Item:
    """One entry of a layer list: a row, a merge with its branches, or a ``from:`` reference."""

    layer: Layer | None = None
    branches: dict[str, list["Item"]] = field(default_factory=dict)
    ref: str | None = None  # the flat form's from: (a label)
    label: str | None = None

    @property
    def is_merge(self) -> bool:
        return self.layer is not None and self.layer.type in MERGES


class NotNested(Exception):
    pass


def _idoms(layers: list[Layer]) -> dict[int, int]:
    """Immediate dominators of a DAG whose first layer is the only source (ids in topological order)."""
    idom = {layers[0].id: layers[0].id}
    depth = {layers[0].id: 0}

    def meet(a: int, b: int) -> int:
        while a != b:
            if depth[a] < depth[b]:
                a, b = b, a
            a = idom[a]
        return a

    for n in layers[1:]:
        d = n.inputs[0]
        for i in n.inputs[1:]:
            d = meet(d, i)
        idom[n.id] = d
        depth[n.id] = depth[d] + 1
    return idom


def _names(kind: str, branches: list[list[Item]]) -> list[str]:
    empty = [not b or b[0].layer is not None and b[0].layer.type == "shortcut" for b in branches]
    if len(branches) == 2 and sum(empty) == 1 and kind in ("add", "mul"):
        main, skip = ("main", "skip") if kind == "add" else ("gate", "x")
        return [skip if e else main for e in empty]
    return [f"branch{i + 1}" for i in range(len(branches))]


def _shortcut(branch: list[Item], fork: Layer, out: tuple) -> list[Item]:
    """An add's skip branch in ResNet's words: ``shortcut`` (the identity, or a 1x1 projection
    with BN where the shape changes), so that blocks with and without a projection are one block."""
    if not branch:
        return [Item(Layer(-1, "shortcut", {"out": out[0], "s": 1}, [fork.id], out))]
    if len(branch) != 1 or branch[0].layer is None or branch[0].layer.type != "conv" or len(out) != 3:
        return branch
    n = branch[0].layer
    a = n.args
    s = a.get("s", 1)
    proj = (a.get("k") == 1 and a.get("p", 0) == 0 and a.get("d", 1) == 1 and a.get("g", 1) == 1
            and a.get("act", "none") == "none" and a.get("bn", False) != a.get("bias", True))
    if not proj or (tuple(fork.out) == tuple(out) and s in (1, [1, 1])):
        return branch  # a projection where the shape is kept is not option B's shortcut
    args = {"out": out[0], "s": s}
    if not a.get("bn", False):
        args["bn"] = False
    return [Item(Layer(n.id, "shortcut", args, n.inputs, n.out, n.source))]


def _nested(layers: list[Layer]) -> list[Item]:
    by_id = {n.id: n for n in layers}
    idom = _idoms(layers)
    budget = [2 * len(layers)]  # a layer reached twice means shared branches: not nested (and no blow-up)

    def seq(start: int, end: int) -> list[Item]:
        items: list[Item] = []
        cur = end
        while cur != start:
            budget[0] -= 1
            if budget[0] < 0:
                raise NotNested
            n = by_id[cur]
            if n.type not in MERGES:
                if len(n.inputs) != 1:
                    raise NotNested
                items.append(Item(n))
                cur = n.inputs[0]
                continue
            d = idom[cur]
            branches = [seq(d, i) for i in n.inputs] if n.type != "concat" else concat_branches(n, d)
            if n.type == "add" and len(branches) == 2 and any(not b or len(b) == 1 for b in branches):
                k = 1 if len(branches[1]) <= len(branches[0]) else 0
                branches[k] = _shortcut(branches[k], by_id[d], n.out)
            items.append(Item(n, dict(zip(_names(n.type, branches), branches))))
            cur = d
        return items[::-1]

    def root(d: int, i: int) -> int:
        """The child of ``d`` in the dominator tree that ``i`` hangs under (``i`` itself or an ancestor)."""
        while i != d and idom[i] != d:
            i = idom[i]
        return i

    def meet(ids: list[int]) -> int:
        """The deepest tensor that dominates all of ``ids``."""
        chain = [ids[0]]
        while chain[-1] != idom[chain[-1]]:
            chain.append(idom[chain[-1]])
        best = 0
        for i in ids[1:]:
            while i not in chain:
                i = idom[i]
            best = max(best, chain.index(i))
        return chain[best]

    def concat_branches(n: Layer, d: int) -> list[list[Item]]:
        """Adjacent inputs that share a tensor below ``d`` are one branch ending in a concat of
        their own: torch's exporter flattens cat(a, cat(b, c)) into one Concat (Inception-v3's
        E modules), which is the same channels in the same order."""
        groups: list[list[int]] = []
        for i in n.inputs:
            if groups and i != d and groups[-1][-1] != d and root(d, i) == root(d, groups[-1][-1]):
                groups[-1].append(i)
            else:
                groups.append([i])
        out = []
        for g in groups:
            if len(g) == 1:
                out.append(seq(d, g[0]))
                continue
            r = meet(g)
            sub = Layer(-3, "concat", {}, g, (sum(by_id[i].out[0] for i in g),) + tuple(n.out[1:]))
            inner = [seq(r, i) for i in g]
            out.append(seq(d, r) + [Item(sub, dict(zip(_names("concat", inner), inner)))])
        return out

    items = seq(layers[0].id, layers[-1].id)
    _check(layers, items)
    _option_a(items)
    return items


def _option_a(items: list[Item]) -> None:
    """With option A projections (zero-padding) in the graph, the identity shortcuts say option A
    too (the same identity), so that the blocks with and without a projection are one block."""
    shortcuts = []

    def walk(items):
        for it in items:
            if it.layer is not None and it.layer.type == "shortcut":
                shortcuts.append(it.layer)
            for b in it.branches.values():
                walk(b)

    walk(items)
    if any(s.args.get("option") == "A" for s in shortcuts):
        for s in shortcuts:
            if s.id == -1:
                s.args["option"] = "A"


def _check(layers: list[Layer], items: list[Item]) -> None:
    """The nested form reads exactly the graph's edges, each once."""
    got: Counter = Counter()

    def walk(items: list[Item], src: list[int]) -> list[int]:
        for it in items:
            n = it.layer
            if it.is_merge:
                outs = [o for b in it.branches.values() for o in walk(b, src)]
                if n.id == -3:  # a concat the exporter had flattened into the one after it
                    src = outs
                    continue
                got.update((o, n.id) for o in outs)
            elif n.id >= 0:
                got.update((s, n.id) for s in src)
            else:
                continue  # an identity shortcut: reads and returns src
            src = [n.id]
        return src

    walk(items, [layers[0].id])
    want = Counter((i, n.id) for n in layers for i in n.inputs)
    if got != want:
        raise NotNested


def _flat(layers: list[Layer]) -> list[Item]:
    labels: dict[int, str] = {}
    count: Counter = Counter()
    items: list[Item] = []
    prev = layers[0].id
    for n in layers[1:]:
        count[n.type] += 1
        labels[n.id] = f"{n.type}{count[n.type]}"
        if n.type in MERGES:
            br = {f"in{k + 1}": [Item(ref=labels.get(i, "input"))] for k, i in enumerate(n.inputs)}
            items.append(Item(n, br, label=labels[n.id]))
        else:
            if n.inputs[0] != prev:
                items.append(Item(ref=labels.get(n.inputs[0], "input")))
            items.append(Item(n, label=labels[n.id]))
        prev = n.id
    return items


def structure(layers: list[Layer]) -> list[Item]:
    """Nested items for a series-parallel graph, else the flat form with ``from:`` references."""
    try:
        return _nested(layers)
    except NotNested:
        return _flat(layers)
