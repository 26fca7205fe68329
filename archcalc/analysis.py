"""Graph -> Report: cost a resolved graph under a framework profile.

The graph says what each layer is; the profile says what its framework keeps for backward, runs in
place and allocates. This pass gives every tensor its storage (an in-place op or a view writes into
its input's), composes receptive fields and jumps along the edges, and hands the rows to the
report, which adds them up.
"""
from __future__ import annotations

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
    readers: dict = {}  # storage -> the nodes that read it, so far
    mems: dict = {}  # id(cost) -> (cost, memory): nodes of a repeated layer share one Cost
    for node in nodes:
        c = node.cost
        hit = mems.get(id(c))
        mem = hit[1] if hit is not None and hit[0] is c else None
        if mem is None:
            mem = memory(c)
            mems[id(c)] = (c, mem)
        ins = node.inputs
        if ins:
            if len(ins) == 1:
                r, j = rf[ins[0]], jump[ins[0]]
            else:  # a merge: the largest field over its inputs
                r = (max(rf[i][0] for i in ins), max(rf[i][1] for i in ins))
                j = (max(jump[i][0] for i in ins), max(jump[i][1] for i in ins))
            if c.window is not None:
                wh, ww = c.window
                r = (r[0] + (wh.k_eff - 1) * j[0], r[1] + (ww.k_eff - 1) * j[1])
                j = (j[0] * wh.s, j[1] * ww.s)
            rf[node.id], jump[node.id] = r, j
        if mem.alias and ins and not mem.train_copy:
            target = storage[ins[0]]
            if len(ins) > 1 and any(r != node.id for r in readers.get(target, ())):
                # autograd would find a saved tensor modified, and later readers would see the sum
                raise SpecError(
                    f"an in-place {node.type} writes into its first input {nodes[ins[0]].path!r}, which "
                    f"{nodes[readers[target][0]].path!r} also reads: list a branch with layers first",
                    file=node.file, line=node.line or None, path=node.path)
            storage[node.id] = target
        else:
            # A training copy (dropout) gets its own storage: in training the next layer keeps that one.
            storage[node.id] = len(storage_elems)
            storage_elems.append(elems(c.out))
        if not (mem.alias and len(ins) == 1):  # a view or in-place op passes its input on, it does not consume it
            for i in ins:
                readers.setdefault(storage[i], []).append(node.id)
        rows.append(Row(
            name=node.name, path=node.path, type=node.type, line=node.line, out=c.out, cost=c, mem=mem,
            rf=rf[node.id], jump=jump[node.id], aux=node.aux, ancestors=node.ancestors, args=node.args,
            tensor_in=tuple(storage[i] for i in ins), tensor_out=storage[node.id],
            inputs=tuple(nodes[i].path for i in ins),
        ))
    return rows, storage_elems


def analyze(spec, *, input_shape=None, batch: int = 1, dtype: str = "fp32", strict: bool = False,
            profile: str = "pytorch") -> Report:
    """Expand ``spec`` into its graph and cost it: the whole pipeline up to the report."""
    from .expand import expand

    if dtype not in DTYPE_BYTES:  # checked before the expansion, which may be long
        raise SpecError(f"unknown dtype {dtype!r}; known: {', '.join(DTYPE_BYTES)}", file=spec.file)
    return cost(expand(spec, input_shape=input_shape, strict=strict), batch=batch, dtype=dtype, profile=profile)
