"""Graph -> Report: cost a resolved graph under a framework profile.

The graph says what each layer is; the profile says what its framework keeps for backward, runs in
place and allocates. This pass gives every tensor its storage (an in-place op or a view writes into
its input's), composes receptive fields and jumps along the edges, and hands the rows to the
report, which adds them up.
"""
from __future__ import annotations

from dataclasses import replace

from .gcpause import gc_paused
from .graph import Graph
from .report import Report, Row, build_report
from .shape import elems
from .spec import SpecError
from .units import DTYPE_BYTES


def cost(graph: Graph, *, batch: int = 1, dtype: str = "fp32", profile: str = "pytorch") -> Report:
    """The report of ``graph`` at a batch size and dtype, under a framework profile."""
    if dtype not in DTYPE_BYTES:
        raise SpecError(f"unknown dtype {dtype!r}; known: {', '.join(DTYPE_BYTES)}", file=graph.file)
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise SpecError(f"batch must be a positive integer, got {batch!r}", file=graph.file)
    from .profiles import get_profile

    memory = get_profile(profile, graph.file).memory
    with gc_paused():
        rows, storage_elems = _rows(graph, memory)
        return build_report(graph, rows, storage_elems, batch=batch, dtype=dtype, itemsize=DTYPE_BYTES[dtype],
                            profile=profile)


def _rows(graph: Graph, memory) -> tuple[list[Row], list[int]]:
    nodes = graph.nodes
    storage = [0] * len(nodes)  # node id -> the storage its output lives in
    storage_elems: list[int] = []  # storage id -> elements
    rf = [(1, 1)] * len(nodes)
    jump = [(1, 1)] * len(nodes)
    rows: list[Row] = []
    kept: dict = {}  # storage -> the first node that keeps it for backward
    # Autograd records a layer only if its output depends on a parameter or on an input that
    # requires grad: a parameter-free layer on the caller's data (a lecture module's pool branch)
    # keeps nothing and gets no gradient.
    grad = [False] * len(nodes)
    mems: dict = {}  # id(cost) -> (cost, memory): nodes of a repeated layer share one Cost
    append = rows.append
    for node in nodes:
        c = node.cost
        hit = mems.get(id(c))
        if hit is not None and hit[0] is c:
            mem = hit[1]
        else:
            mem = memory(c)
            mems[id(c)] = (c, mem)
        ins = node.inputs
        nid = node.id
        grad[nid] = c.params > 0 or any(grad[i] for i in ins) if ins else graph.input_requires_grad
        if not grad[nid] and mem.saved:
            mem = replace(mem, saved=())
        if len(ins) == 1:
            i = ins[0]
            r, j = rf[i], jump[i]
            tensor_in = (storage[i],)
            inputs = (nodes[i].path,)
        elif ins:  # a merge: the largest field over its inputs
            r = (max(rf[i][0] for i in ins), max(rf[i][1] for i in ins))
            # the step between outputs is that of the full-size inputs: a broadcast gate (C x 1 x 1,
            # pooled over the whole map) has a jump of the map's size but steps nowhere
            full = [i for i in ins if nodes[i].cost.out == c.out] or ins
            j = (max(jump[i][0] for i in full), max(jump[i][1] for i in full))
            tensor_in = tuple([storage[i] for i in ins])
            inputs = tuple([nodes[i].path for i in ins])
        else:
            r = j = (1, 1)
            tensor_in = inputs = ()
        window = c.window
        if window is not None:
            wh, ww = window
            r = (r[0] + (wh.k_eff - 1) * j[0], r[1] + (ww.k_eff - 1) * j[1])
            j = (j[0] * wh.s, j[1] * ww.s)
        rf[nid] = r
        jump[nid] = j
        if mem.alias and ins and not mem.train_copy:
            out = tensor_in[0]
            if mem.inplace and out in kept:
                # PyTorch refuses this in backward: a tensor saved for it was modified in place
                raise SpecError(
                    f"an in-place {node.type} overwrites {nodes[ins[0]].path!r}, which {nodes[kept[out]].path!r} "
                    "keeps for backward (autograd would fail); "
                    + ("list a branch with layers first" if len(ins) > 1 else "set inplace: false"),
                    file=node.file, line=node.line or None, path=node.path)
        else:
            # A training copy (dropout) gets its own storage: in training the next layer keeps that one.
            out = len(storage_elems)
            storage_elems.append(elems(c.out))
        storage[nid] = out
        for s in mem.saved:
            if s.of.startswith("input"):
                t = tensor_in[int(s.of[5:] or 0)]
                if t not in kept:
                    kept[t] = nid
        append(Row(node, mem, r, j, tensor_in, out, inputs, requires_grad=grad[nid]))
    return rows, storage_elems


def analyze(spec, *, input_shape=None, batch: int = 1, dtype: str = "fp32", strict: bool = False,
            profile: str = "pytorch", budget: list | None = None) -> Report:
    """Expand ``spec`` into its graph and cost it: the whole pipeline up to the report (``budget``:
    see expand)."""
    from .expand import expand

    if dtype not in DTYPE_BYTES:  # checked before the expansion, which may be long
        raise SpecError(f"unknown dtype {dtype!r}; known: {', '.join(DTYPE_BYTES)}", file=spec.file)
    return cost(expand(spec, input_shape=input_shape, strict=strict, budget=budget), batch=batch, dtype=dtype,
                profile=profile)
