"""Rows and totals: pure data, and the pure functions that add them up.

All counts are per single sample. Only the ``*_bytes`` figures of the totals are scaled by the
batch (and parameter bytes are not, since a batch shares its weights).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from .gcpause import gc_paused
from .graph import Node
from .rules import Cost
from .shape import Shape, elems

SCHEMA_VERSION = 1


# Not frozen, for the same reason as graph.Node: one is built per layer, and a frozen dataclass's
# __init__ is several times slower; rows are not changed after the cost pass.
@dataclass(slots=True, eq=False)
class Row:
    """One node of the graph as costed under a profile: the node (what the layer is), its memory
    under the profile, and what the cost pass worked out along the edges."""

    node: Node
    mem: object  # profiles.Memory: what the framework keeps and allocates for this row
    rf: tuple[int, int]
    jump: tuple[int, int]
    tensor_in: tuple[int, ...]  # storages read
    tensor_out: int  # the storage written (an in-place op or a view writes its input's)
    inputs: tuple[str, ...] = ()  # paths of the rows whose outputs this one reads
    links: int = 0  # a summed row's direct connections between its parts (see _links); 0 for one layer
    requires_grad: bool = True  # its output depends on a parameter or on an input that requires grad

    name = property(lambda self: self.node.name)
    path = property(lambda self: self.node.path)
    type = property(lambda self: self.node.type)
    line = property(lambda self: self.node.line)
    cost = property(lambda self: self.node.cost)
    out = property(lambda self: self.node.cost.out)
    aux = property(lambda self: self.node.aux)  # on a training-only side branch (GoogLeNet's aux classifiers)
    ancestors = property(lambda self: self.node.ancestors)  # ((path, kind), ...) of enclosing scopes
    args = property(lambda self: self.node.args)
    weight_params = property(lambda self: self.cost.weight_params)
    bias_params = property(lambda self: self.cost.bias_params)
    params = property(lambda self: self.cost.params)
    buffer_elems = property(lambda self: self.cost.buffer_elems)
    macs = property(lambda self: self.cost.macs)
    flops = property(lambda self: 2 * self.cost.macs)
    other_ops = property(lambda self: self.cost.other_ops)
    connections = property(lambda self: self.cost.connections)
    warnings = property(lambda self: self.cost.warnings)
    steps = property(lambda self: self.cost.steps)

    @property
    def out_elems(self) -> int:
        return elems(self.out)

    @property
    def saved_elems(self) -> int:
        """Activation-dtype elements this layer keeps for backward (may share a tensor with a neighbour)."""
        return sum(s.elems for s in self.mem.saved if s.itemsize == 0)

    @property
    def depth(self) -> int:
        return self.path.count("/") + 1


@dataclass(frozen=True)
class Totals:
    params: int
    weight_params: int
    bias_params: int
    buffer_elems: int
    macs: int
    other_ops: int
    connections: int
    out_elems: int  # every tensor the forward pass allocates (views and in-place ops allocate none)
    saved_elems: int  # activation-dtype elements autograd keeps, each tensor counted once
    saved_fixed_bytes: int  # int64 indices and bool masks kept for backward, per sample
    saved_batch_bytes: int  # kept once per batch whatever its size: BN's fp32 batch mean and inv std
    peak_elems: int  # activation elements alive at the largest moment of an inference pass, input included
    peak_fixed_bytes: int = 0  # max-pool indices alive with them at that moment, per sample
    depth: int = 0  # weight layers (conv, fc: a row with weights and MACs) on the longest path through the rows
    # Training under stochastic depth (drop_path), per sample, each row weighted by its survival
    # probability; the full network's macs and depth where nothing is dropped.
    expected_macs: int = 0
    expected_depth: float = 0.0

    @property
    def flops(self) -> int:
        return 2 * self.macs


@dataclass(frozen=True)
class Report:
    """The analysis of a network (``archcalc.analyze``): its ``rows`` (one per layer, in execution
    order), ``totals`` (``aux_totals`` for training-only aux branches, else None), at ``batch`` and
    ``dtype``; what `archcalc table` prints."""

    name: str
    source: str
    notes: str
    file: str
    input: Shape
    batch: int
    dtype: str
    itemsize: int
    rows: tuple[Row, ...]
    totals: Totals
    aux_totals: Totals | None
    scope_types: dict = field(default_factory=dict)
    profile: str = "pytorch"

    def to_dict(self, rows: list[Row] | None = None) -> dict:
        """The JSON model (docs/json.md), what `archcalc table --format json` prints; ``rows`` in
        place of every row (``collapse(report, depth)`` for ``--depth``)."""
        return to_dict(self, rows)

    def to_dataframe(self):
        """The layers as a ``pandas.DataFrame``, one row per layer, the columns named as the JSON
        layer keys (``path``, ``out``, ``params``, ``macs`` ...). Needs pandas."""
        from .frame import dataframe

        return dataframe(_to_dict(self, None)["layers"])

    # Batch-scaled bytes: the figures a memory budget needs.
    @property
    def param_bytes(self) -> int:
        return self.totals.params * self.itemsize

    @property
    def buffer_bytes(self) -> int:
        return self.totals.buffer_elems * self.itemsize

    @property
    def out_bytes(self) -> int:
        return self.totals.out_elems * self.itemsize * self.batch

    @property
    def saved_bytes(self) -> int:
        t = self.totals
        return (t.saved_elems * self.itemsize + t.saved_fixed_bytes) * self.batch + t.saved_batch_bytes

    @property
    def saved_fixed_total_bytes(self) -> int:
        """The part of saved_bytes that is not activations: indices and masks, BN statistics."""
        return self.totals.saved_fixed_bytes * self.batch + self.totals.saved_batch_bytes

    @property
    def peak_bytes(self) -> int:
        return (self.totals.peak_elems * self.itemsize + self.totals.peak_fixed_bytes) * self.batch

    # The same figures for one row (what that layer writes, and what it keeps for backward).
    def row_out_bytes(self, r: Row) -> int:
        return r.out_elems * self.itemsize * self.batch

    def row_saved_bytes(self, r: Row) -> int:
        per_sample = sum(s.elems * (s.itemsize or self.itemsize) for s in r.mem.saved if not s.per_batch)
        return per_sample * self.batch + sum(s.elems * s.itemsize for s in r.mem.saved if s.per_batch)

    @property
    def warnings(self) -> list[tuple[str, str]]:
        return [(r.path, w) for r in self.rows for w in r.warnings]

    def find(self, key: str) -> Row | None:
        """A row by full path, or by name when that name is unique."""
        index = self.__dict__.get("_find_index")
        if index is None:
            # Built on the first call and kept: `check` looks up every expected layer, which was
            # a scan of all rows each time (quadratic for a long network with many expectations).
            by_path: dict = {}
            by_name: dict = {}
            for r in self.rows:
                by_path.setdefault(r.path, r)
                by_name[r.name] = None if r.name in by_name else r  # None: the name is not unique
            index = (by_path, by_name)
            object.__setattr__(self, "_find_index", index)  # a cache, not a field: eq/repr/hash ignore it
        by_path, by_name = index
        try:
            row = by_path.get(key)
            return row if row is not None else by_name.get(key)
        except TypeError:  # an unhashable key matches no row
            return None


def _storage(r: Row, s) -> tuple:
    """Which storage a saved tensor is, so that two rows keeping the same tensor count it once."""
    if s.of == "input":
        return ("t", r.tensor_in[0])
    if s.of.startswith("input"):  # operand N of a merge
        return ("t", r.tensor_in[int(s.of[5:])])
    if s.of == "output":
        return ("t", r.tensor_out)
    return ("tmp", r.path, s.of)  # an intermediate of this row alone


def survival(rows) -> dict[int, float]:
    """Node id -> the probability that the row runs in a training step, for the rows stochastic
    depth can skip (the others run always): the product of 1 - p over the `drop_path` rows gating
    it. A drop_path gates the innermost branch of a merge that holds it (the residual branch it
    ends), every row of that branch included; outside any branch it gates nothing."""
    gates: dict[str, float] = {}
    for r in rows:
        if r.node.type == "drop_path" and r.node.args.get("p"):
            branch = next((path for path, kind in reversed(r.node.ancestors) if kind == "branch"), None)
            if branch is not None:
                gates[branch] = gates.get(branch, 1.0) * (1 - r.node.args["p"])
    if not gates:
        return {}
    keep: dict[int, float] = {}
    for r in rows:
        s = 1.0
        for path, _ in r.node.ancestors:
            s *= gates.get(path, 1.0)
        if s != 1.0:
            keep[r.node.id] = s
    return keep


def _depth_totals(rows, macs: int) -> dict:
    """`depth`, and under stochastic depth the expected MACs and depth of a training pass (the
    paper's implementation: a dropped branch computes nothing): each row's MACs times its survival
    probability, and the longest path with each weight layer counted at its survival probability.
    The MACs are rounded to the nearest MAC, the depth to 6 decimals (the sums are of floats)."""
    depth = weighted_depth(rows)
    keep = survival(rows)
    if not keep:
        return {"depth": depth, "expected_macs": macs, "expected_depth": float(depth)}
    expected = sum(r.node.cost.macs * keep.get(r.node.id, 1.0) for r in rows)
    return {"depth": depth, "expected_macs": round(expected),
            "expected_depth": round(weighted_depth(rows, keep), 6)}


def _sum_rows(rows: list[Row], tensor_elems: list[int], final_tensor: int | None, itemsize: int) -> Totals:
    """Totals of rows; a saved tensor is counted once per storage, at the storage's size (a view
    such as a chunk keeps its whole storage alive)."""
    saved_act: dict = {}
    saved_fixed: dict = {}
    saved_batch: dict = {}
    # One pass over the rows (ten generator passes through Row properties cost more than the sums).
    params = weight_params = bias_params = buffer_elems = macs = other_ops = connections = out_elems = 0
    for r in rows:
        c = r.cost
        m = r.mem
        params += c.weight_params + c.bias_params
        weight_params += c.weight_params
        bias_params += c.bias_params
        buffer_elems += c.buffer_elems
        macs += c.macs
        other_ops += c.other_ops
        connections += c.connections
        if not m.alias:
            out_elems += elems(r.out) + m.temp_elems
        for s in m.saved:
            key = _storage(r, s)
            if s.per_batch:
                saved_batch[key] = s.elems * s.itemsize
            elif s.itemsize:
                saved_fixed[key] = s.elems * s.itemsize
            else:
                saved_act[key] = tensor_elems[key[1]] if key[0] == "t" else s.elems
    peak_elems, peak_fixed_bytes = _peak(rows, tensor_elems, final_tensor, itemsize)
    return Totals(
        params=params,
        weight_params=weight_params,
        bias_params=bias_params,
        buffer_elems=buffer_elems,
        macs=macs,
        other_ops=other_ops,
        connections=connections,
        out_elems=out_elems,
        saved_elems=sum(saved_act.values()),
        saved_fixed_bytes=sum(saved_fixed.values()),
        saved_batch_bytes=sum(saved_batch.values()),
        peak_elems=peak_elems,
        peak_fixed_bytes=peak_fixed_bytes,
        **_depth_totals(rows, macs),
    )


def is_weight_layer(r: Row) -> bool:
    """A row that counts as a layer of a network's depth ("VGG-16", GoogLeNet's "22 layers"): one
    with weights that it multiplies with (conv, fc, a fused conv + BN); not BN, pools or merges."""
    return r.cost.weight_params > 0 and r.cost.macs > 0


POOL_TYPES = ("maxpool", "avgpool")


def lecture_flop(row) -> int:
    """EECS 498's "flop": multiply-adds for conv and fc rows, one per window element for a pool
    (C x H' x W' x K x K), nothing else (no ReLU ops on conv rows)."""
    if row.macs:
        return row.macs
    return row.other_ops if row.type in POOL_TYPES else 0


def subtotal(report: Report, rows) -> dict:
    """The sums of some rows (a range of the table, the rows of some types): counts added,
    ``out_elems`` the outputs of the rows (each row's output once, as a table's column adds up),
    ``out_bytes`` those at the report's dtype and batch, ``flop`` the lecture's (``lecture_flop``)."""
    rows = list(rows)
    out = {k: sum(getattr(r, k) for r in rows) for k in
           ("params", "weight_params", "bias_params", "macs", "other_ops", "out_elems")}
    out["out_bytes"] = out["out_elems"] * report.itemsize * report.batch
    out["flop"] = sum(lecture_flop(r) for r in rows)
    out["rows"] = len(rows)
    return out


def weighted_depth(rows, keep: dict | None = None) -> int | float:
    """The longest path through ``rows`` along their edges, counting weight layers only: VGG-16 16,
    ResNet-50 50 (the shortcut projection is beside the main path), GoogLeNet 22 (3 in the stem, 2 per
    Inception module, the classifier), aux branches left out by the caller."""
    longest: dict[int, int] = {}
    best = 0
    for r in rows:
        node = r.node
        # keep: a weight layer counts its survival probability (expected depth; see survival)
        w = (keep.get(node.id, 1.0) if keep else 1) if is_weight_layer(r) else 0
        d = max((longest.get(i, 0) for i in node.inputs), default=0) + w
        longest[node.id] = d
        best = max(best, d)
    return best


def _peak(rows: list[Row], tensor_elems: list[int], final_tensor: int | None, itemsize: int) -> tuple[int, int]:
    """Run the rows in order, free each tensor after its last reader, track the largest live set:
    its activation elements and the fixed-size temporaries (max-pool indices) alive with them, per
    sample. Which moment is largest depends on the dtype, hence ``itemsize``.

    The network's input is never freed: the caller holds it for the whole of ``model(x)`` (and so
    does PyTorch's MemTracker, which tracks it as an external tensor). Counting it only until its
    last reader made the peak depend on whether that reader was a fused row (docs/conventions.md)."""
    # At inference a training copy (dropout) is its input's storage: map its tensor back to it.
    storage: dict[int, int] = {}
    for r in rows:
        if r.mem.alias and r.tensor_in and r.tensor_out != r.tensor_in[0]:
            storage[r.tensor_out] = storage.get(r.tensor_in[0], r.tensor_in[0])
    # The rows' tensor ids as the inference pass sees them (no Row copies: replace() per row cost
    # more than the whole walk below).
    if storage:
        ins = [tuple(storage.get(t, t) for t in r.tensor_in) for r in rows]
        outs = [storage.get(r.tensor_out, r.tensor_out) for r in rows]
        final_tensor = storage.get(final_tensor, final_tensor)
    else:
        ins = [r.tensor_in for r in rows]
        outs = [r.tensor_out for r in rows]
    last_read: dict[int, int] = {}
    for i, tensor_in in enumerate(ins):
        for t in tensor_in:
            last_read[t] = i
    held = {final_tensor}
    if rows and rows[0].node.type == "input":
        held.add(outs[0])
    live: set[int] = set()
    live_elems = 0
    peak = peak_elems = peak_fixed = 0
    for i, r in enumerate(rows):
        tensor_out = outs[i]
        if tensor_out not in live:
            live.add(tensor_out)
            live_elems += tensor_elems[tensor_out]
        m = r.mem
        moment = (live_elems + m.temp_elems + m.scratch_elems) * itemsize + m.scratch_fixed_bytes
        if moment > peak:
            peak, peak_elems, peak_fixed = moment, live_elems + m.temp_elems + m.scratch_elems, m.scratch_fixed_bytes
        for t in set(ins[i]):
            if last_read.get(t) == i and t not in held and t != tensor_out and t in live:
                live.discard(t)
                live_elems -= tensor_elems[t]
    return peak_elems, peak_fixed


def build_report(graph, rows: list[Row], tensor_elems: list[int], *, batch: int, dtype: str, itemsize: int,
                 profile: str) -> Report:
    main = [r for r in rows if not r.aux]
    aux = [r for r in rows if r.aux]
    final = main[-1].tensor_out if main else None
    return Report(
        name=graph.name, source=graph.source, notes=graph.notes, file=graph.file, input=tuple(graph.input),
        batch=batch, dtype=dtype, itemsize=itemsize, rows=tuple(rows),
        totals=_sum_rows(main, tensor_elems, final, itemsize),
        aux_totals=_sum_rows(aux, tensor_elems, None, itemsize) if aux else None,
        scope_types=dict(graph.scope_types), profile=profile,
    )


def collapse(report: Report, depth: int) -> list[Row]:
    """Rows at most ``depth`` levels deep; deeper rows are summed into their ancestor at that depth."""
    if depth < 1:
        raise ValueError("depth must be at least 1")
    with gc_paused():
        return _collapse(report, depth)


def _collapse(report: Report, depth: int) -> list[Row]:
    out: list[Row] = []
    groups: dict[str, list[Row]] = {}
    order: list[str] = []
    for r in report.rows:
        if r.depth <= depth:
            if r.path in groups:  # a named merge closes the group its own branches opened
                groups[r.path].append(r)
                continue
            order.append(r.path)
            groups[r.path] = [r]
            continue
        top = "/".join(r.path.split("/")[:depth])
        if top not in groups:
            order.append(top)
            groups[top] = []
        groups[top].append(r)
    for key in order:
        members = groups[key]
        if len(members) == 1 and members[0].path == key:
            out.append(members[0])
            continue
        out.append(_aggregate(key, members, report.scope_types.get(key, "block")))
    return out


def aggregate(report: Report, path: str) -> Row | None:
    """One row summing everything under ``path`` (a block instance, branch, group or named merge)."""
    index = report.__dict__.get("_under_index")
    if index is None:
        # Built on the first call and kept, as find's: `check` sums under every expected layer, and a
        # scan of all rows each time made 9,000 expectations on 10,000 rows take 15 s. A row is under
        # each of its enclosing scopes (its node's ancestors) and under its own path.
        index = {}
        for r in report.rows:
            for scope_path, _ in r.node.ancestors:
                index.setdefault(scope_path, []).append(r)
            if not r.node.ancestors or r.node.ancestors[-1][0] != r.path:
                index.setdefault(r.path, []).append(r)
        object.__setattr__(report, "_under_index", index)  # a cache, not a field
    try:
        members = index.get(path) or []
    except TypeError:  # an unhashable key matches no row
        members = []
    if not members:
        return None
    if len(members) == 1 and members[0].path == path:
        return members[0]
    return _aggregate(path, members, report.scope_types.get(path, "block"))


def aggregate_rows(label: str, members: list[Row]) -> Row:
    """One row summing any rows (a range of the table, ``conv1..pool2``) under the name ``label``,
    as ``aggregate`` sums a block: counts added, each saved tensor once, the last row's output."""
    if not members:
        raise ValueError("aggregate_rows needs at least one row")
    return _aggregate(label, list(members), "range")


def _unique_saved(members: list[Row]) -> tuple:
    """What a collapsed block keeps: each tensor once, as in the totals (a ReLU's output is also
    the next conv's saved input; summing the rows would count it twice)."""
    unique: dict = {}
    for m in members:
        for s in m.mem.saved:
            unique[_storage(m, s)] = s
    return tuple(replace(s, of=f"tmp{i}") for i, s in enumerate(unique.values()))


def _aggregate(path: str, members: list[Row], type_name: str) -> Row:
    last = members[-1]
    cost = Cost(
        out=last.out,
        weight_params=sum(m.weight_params for m in members),
        bias_params=sum(m.bias_params for m in members),
        buffer_elems=sum(m.buffer_elems for m in members),
        macs=sum(m.macs for m in members),
        other_ops=sum(m.other_ops for m in members),
        connections=sum(m.connections for m in members),
        warnings=tuple(w for m in members for w in m.warnings),
    )
    node = Node(id=-1, name=path.rsplit("/", 1)[-1], path=path, type=type_name, args={}, inputs=(), file="",
                line=members[0].line, aux=all(m.aux for m in members), ancestors=members[0].ancestors[: path.count("/")],
                cost=cost)
    return Row(
        node=node, mem=type(last.mem)(saved=_unique_saved(members)),
        rf=tuple(max(m.rf[i] for m in members) for i in range(2)),
        jump=tuple(max(m.jump[i] for m in members) for i in range(2)),
        tensor_in=members[0].tensor_in, tensor_out=last.tensor_out, inputs=members[0].inputs,
        links=_links(path, members), requires_grad=any(m.requires_grad for m in members),
    )


def _links(path: str, members: list[Row]) -> int:
    """Direct connections between the parts of a summed row: the pairs (source, part) where a row
    of one part (a child block, layer or branch of ``path``; for a range, each row) reads a tensor
    that the other part produced, or that came from outside (the input, "layer 0"), looking
    through `concat` rows to the tensors they join. A dense block of L layers has L(L+1)/2: layer
    l reads the block input and the new features of layers 1 .. l - 1, one concatenation."""
    depth = path.count("/") + 1
    prefix = path + "/"
    by_path = {m.path: m for m in members}

    def part(p: str) -> str:
        return "/".join(p.split("/")[:depth + 1]) if p.startswith(prefix) else p

    origins: dict[str, frozenset] = {}

    def sources(p: str) -> frozenset:
        r = by_path.get(p)
        if r is None:
            return frozenset(("",))  # produced outside: the input, layer 0
        if r.type != "concat":
            return frozenset((part(p),))
        if p not in origins:
            origins[p] = frozenset().union(*(sources(i) for i in r.inputs))
        return origins[p]

    pairs = {(s, part(m.path)) for m in members if m.type != "concat" for i in m.inputs for s in sources(i)}
    return sum(1 for s, t in pairs if s != t)


# ---------------------------------------------------------------- the stable JSON model


def _totals_dict(t: Totals, report: Report) -> dict:
    return {
        "params": t.params, "weight_params": t.weight_params, "bias_params": t.bias_params,
        "buffer_elems": t.buffer_elems, "macs": t.macs, "flops": t.flops, "other_ops": t.other_ops,
        "connections": t.connections, "out_elems": t.out_elems, "saved_elems": t.saved_elems,
        "saved_fixed_bytes": t.saved_fixed_bytes, "saved_batch_bytes": t.saved_batch_bytes,
        "peak_elems": t.peak_elems, "peak_fixed_bytes": t.peak_fixed_bytes, "depth": t.depth,
        "expected_macs": t.expected_macs, "expected_depth": t.expected_depth,
        "param_bytes": t.params * report.itemsize,
        "buffer_bytes": t.buffer_elems * report.itemsize,
        "out_bytes": t.out_elems * report.itemsize * report.batch,
        "saved_bytes": (t.saved_elems * report.itemsize + t.saved_fixed_bytes) * report.batch + t.saved_batch_bytes,
        "peak_bytes": (t.peak_elems * report.itemsize + t.peak_fixed_bytes) * report.batch,
    }


def row_dict(r: Row, report: Report) -> dict:
    return {
        "name": r.name, "path": r.path, "type": r.type, "line": r.line, "out": list(r.out),
        "params": r.params, "weight_params": r.weight_params, "bias_params": r.bias_params,
        "buffer_elems": r.buffer_elems, "macs": r.macs, "flops": r.flops, "other_ops": r.other_ops,
        "connections": r.connections, "out_elems": r.out_elems, "saved_elems": r.saved_elems,
        "out_bytes": report.row_out_bytes(r), "saved_bytes": report.row_saved_bytes(r),
        "rf": list(r.rf), "jump": list(r.jump), "aux": r.aux, "inputs": list(r.inputs), "warnings": list(r.warnings),
        "links": r.links,
        "arithmetic": list(r.steps),
    }


def totals_dict(report: Report, aux: bool = False) -> dict | None:
    """The JSON model's `totals` (or `aux_totals`) alone, without building every layer's entry."""
    t = report.aux_totals if aux else report.totals
    return _totals_dict(t, report) if t is not None else None


def to_dict(report: Report, rows: list[Row] | None = None) -> dict:
    with gc_paused():
        return _to_dict(report, rows)


def _to_dict(report: Report, rows: list[Row] | None) -> dict:
    return {
        "schema_version": SCHEMA_VERSION,
        "name": report.name, "source": report.source, "notes": report.notes, "input": list(report.input),
        "batch": report.batch, "dtype": report.dtype, "bytes_per_elem": report.itemsize, "profile": report.profile,
        "layers": [row_dict(r, report) for r in (report.rows if rows is None else rows)],
        "totals": _totals_dict(report.totals, report),
        "aux_totals": _totals_dict(report.aux_totals, report) if report.aux_totals else None,
        "warnings": [{"path": p, "message": w} for p, w in report.warnings],
    }
