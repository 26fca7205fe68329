"""What a question is about, and its exact figures.

A target is one layer (``conv1``), a block, branch or group (``inception_3a/3x3``), a range of rows
in table order (``conv1..pool2``) or the whole network (``total``). Its figures are the quantities
of the JSON interface under the same keys, for one row exactly as ``archcalc table --format json``
gives them. For several rows:

- counts (params, weights, biases, buffers, MACs, FLOPs, other ops, connections) are summed;
- ``out`` is the last row's output;
- ``out_elems``/``out_bytes`` are what the rows allocate together (the activations column summed,
  in-place ops and views allocating nothing), as in the totals, not the last output's size;
- ``saved_elems``/``saved_bytes`` count each tensor kept for backward once;
- ``rf``/``jump`` are the field and stride of the last output on the input of the first row (three
  stacked 3x3 convs: 7), the network's own being the last row's ``rf``.
For ``total`` they are the report's totals (aux branches left out, as in the totals).
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass

from ..report import Report, Row, aggregate_rows, row_dict
from ..shape import elems
from . import TeachError

# The quantities a question can ask, named as the JSON keys.
QUANTITIES = ("out", "params", "weight_params", "bias_params", "buffer_elems", "macs", "flops", "other_ops",
              "connections", "out_elems", "out_bytes", "saved_elems", "saved_bytes", "rf", "jump")
# Only the whole network has these (JSON totals keys).
TOTAL_QUANTITIES = ("param_bytes", "buffer_bytes", "peak_elems", "peak_bytes", "depth")
# Friendly names. "memory" and "saved" are elements or bytes, by the unit of the answer.
ALIASES = {
    "shape": "out", "output": "out", "volume": "out", "output_volume": "out", "output_shape": "out",
    "out_shape": "out", "size": "out",
    "parameters": "params", "param": "params", "weights": "weight_params", "biases": "bias_params",
    "mac": "macs", "multiply_adds": "macs", "mult_adds": "macs", "madds": "macs", "multiply_accumulates": "macs",
    "flop": "flops",
    "memory": "memory", "activations": "memory", "activation_memory": "memory", "mem": "memory",
    "saved": "saved", "saved_memory": "saved", "backward_memory": "saved",
    "receptive_field": "rf", "stride": "jump", "effective_stride": "jump",
}
# The two quantities each ambiguous alias stands for: (elements, bytes).
BY_UNIT = {"memory": ("out_elems", "out_bytes"), "saved": ("saved_elems", "saved_bytes")}

WHOLE_NETWORK = ("total", "totals", "network", "all", "whole")

# How each quantity is said in a sentence.
WORDS = {
    "out": "output shape", "params": "parameters", "weight_params": "weights (parameters without biases)",
    "bias_params": "biases", "buffer_elems": "buffer elements", "macs": "MACs (multiply-accumulates)",
    "flops": "FLOPs (2 x MACs)", "other_ops": "other ops (not MACs)", "connections": "connections",
    "out_elems": "output elements", "out_bytes": "output bytes", "saved_elems": "elements kept for backward",
    "saved_bytes": "bytes kept for backward", "rf": "receptive field", "jump": "effective stride",
    "param_bytes": "parameter bytes", "buffer_bytes": "buffer bytes", "peak_elems": "peak inference elements",
    "peak_bytes": "peak inference bytes", "depth": "depth (weight layers on the longest path)", "memory": "memory (output elements or bytes)",
    "saved": "memory kept for backward (elements or bytes)",
}


def quantity_key(name: str, *, whole: bool = False) -> str:
    """A quantity as a user names it -> its JSON key, or "memory"/"saved" (decided by the answer's
    unit). Raises TeachError naming the known ones."""
    key = name.strip().lower().replace("-", "_").replace(" ", "_")
    key = ALIASES.get(key, key)
    known = QUANTITIES + (TOTAL_QUANTITIES if whole else ())
    key = {"layers": "depth", "number_of_layers": "depth"}.get(key, key)
    if key in known or key in BY_UNIT:
        return key
    if key in TOTAL_QUANTITIES:
        raise TeachError(f"{key} is a figure of the whole network: ask it of LAYER total")
    hint = difflib.get_close_matches(key, [*known, *ALIASES], n=1)
    raise TeachError(f"unknown quantity {name!r}" + (f" (did you mean {hint[0]}?)" if hint else "")
                     + f"; known: {', '.join(known)}, memory, saved, shape")


@dataclass(frozen=True)
class Target:
    """What a question is about. ``kind``: "layer", "block", "range" or "total". ``rows``: the rows
    it covers (one for a layer); ``row``: that row, or one row summing them; ``values``: the exact
    figures under the JSON keys (see the module doc for several rows)."""

    label: str
    kind: str
    rows: tuple[Row, ...]
    row: Row
    values: dict

    @property
    def whole(self) -> bool:
        return self.kind == "total"

    def describe(self) -> str:
        if self.kind == "total":
            return "the whole network"
        if self.kind == "range":
            return f"{self.rows[0].path}..{self.rows[-1].path} ({len(self.rows)} rows)"
        if self.kind == "block":
            return f"{self.label} ({len(self.rows)} rows)"
        return self.label


def resolve(report: Report, layer: str) -> Target:
    """LAYER as a user writes it: a path or unique name (any case), a block's path, ``a..b`` or
    ``total``."""
    text = layer.strip()
    if text.lower() in WHOLE_NETWORK:
        rows = tuple(r for r in report.rows if not r.aux)
        return Target("total", "total", rows, rows[-1], _total_values(report, rows))
    if ".." in text:
        first_text, _, last_text = text.partition("..")
        first, _ = _span(report, first_text.strip())
        _, last = _span(report, last_text.strip())
        i, j = report.rows.index(first), report.rows.index(last)
        if i > j:
            raise TeachError(f"range {text!r}: {last.path} comes before {first.path} in the table")
        rows = tuple(r for r in report.rows[i:j + 1] if r.aux == first.aux or r.aux == last.aux)
        if len(rows) == 1:
            return Target(rows[0].path, "layer", rows, rows[0], _row_values(report, rows[0]))
        return _several(report, f"{first.path}..{last.path}", "range", rows)
    row = _find(report, text)
    if row is not None:
        return Target(row.path, "layer", (row,), row, _row_values(report, row))
    path = _block_path(report, text)
    if path is not None:
        rows = tuple(r for r in report.rows if r.path.startswith(path + "/"))
        return _several(report, path, "block", rows)
    raise TeachError(_unknown(report, text))


def _find(report: Report, text: str) -> Row | None:
    row = report.find(text)
    if row is not None:
        return row
    low = text.lower()  # the lecture writes CONV1, POOL1
    by_path = [r for r in report.rows if r.path.lower() == low]
    if len(by_path) == 1:
        return by_path[0]
    by_name = [r for r in report.rows if r.name.lower() == low]
    return by_name[0] if len(by_name) == 1 else None


def _block_path(report: Report, text: str) -> str | None:
    for path in (text, text.lower()):
        if any(r.path.startswith(path + "/") for r in report.rows):
            return path
    low = text.lower()
    paths = {p for r in report.rows for p in _prefixes(r.path) if p.lower() == low}
    return paths.pop() if len(paths) == 1 else None


def _prefixes(path: str) -> list[str]:
    parts = path.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]


def _span(report: Report, text: str) -> tuple[Row, Row]:
    """The first and last row of an endpoint of a range (a layer, or a block's rows)."""
    if not text:
        raise TeachError("a range is FIRST..LAST, two layer paths in table order (conv1..pool2)")
    row = _find(report, text)
    if row is not None:
        return row, row
    path = _block_path(report, text)
    if path is not None:
        rows = [r for r in report.rows if r.path.startswith(path + "/")]
        return rows[0], rows[-1]
    raise TeachError(_unknown(report, text))


def _unknown(report: Report, text: str) -> str:
    names = [r.path for r in report.rows] + sorted({p for r in report.rows for p in _prefixes(r.path)})
    close = difflib.get_close_matches(text, names, n=3)
    shown = ", ".join(r.path for r in report.rows[:12]) + (", ..." if len(report.rows) > 12 else "")
    return (f"no layer or block {text!r} in {report.name}"
            + (f" (did you mean {' or '.join(close)}?)" if close else f"; layers: {shown}")
            + "; a range is FIRST..LAST, the whole network total")


_NOT_QUANTITIES = ("name", "path", "type", "line", "aux", "inputs", "warnings", "arithmetic")


def _row_values(report: Report, row: Row) -> dict:
    d = row_dict(row, report)
    values = {k: v for k, v in d.items() if k not in _NOT_QUANTITIES}
    values["out"] = tuple(row.out)
    values["rf"], values["jump"] = tuple(row.rf), tuple(row.jump)
    return values


def allocated_elems(rows) -> int:
    """What the rows allocate in the forward pass, as the totals count it (in-place ops and views
    write into their input's storage)."""
    return sum(elems(r.out) + r.mem.temp_elems for r in rows if not r.mem.alias)


def local_field(rows) -> tuple[tuple[int, int], tuple[int, int]]:
    """Receptive field and jump of the last row's output on the input of the rows, composed along
    the edges inside them (a row whose input is outside starts at 1 pixel, stride 1)."""
    inside: dict[str, tuple] = {}
    for r in rows:
        ins = [inside[p] for p in r.inputs if p in inside]
        if ins:
            rf = (max(i[0][0] for i in ins), max(i[0][1] for i in ins))
            jump = (max(i[1][0] for i in ins), max(i[1][1] for i in ins))
        else:
            rf, jump = (1, 1), (1, 1)
        window = r.cost.window
        if window is not None:
            wh, ww = window
            rf = (rf[0] + (wh.k_eff - 1) * jump[0], rf[1] + (ww.k_eff - 1) * jump[1])
            jump = (jump[0] * wh.s, jump[1] * ww.s)
        inside[r.path] = (rf, jump)
    return inside[rows[-1].path]


def _several(report: Report, label: str, kind: str, rows: tuple[Row, ...]) -> Target:
    row = aggregate_rows(label, list(rows))
    values = _row_values(report, row)
    n = allocated_elems(rows)
    values["out_elems"] = n
    values["out_bytes"] = n * report.itemsize * report.batch
    values["rf"], values["jump"] = local_field(rows)
    return Target(label, kind, rows, row, values)


def _total_values(report: Report, rows) -> dict:
    t = report.totals
    last = rows[-1]
    depth = getattr(t, "depth", None)  # the totals' longest weighted path, where the report has it
    return ({"depth": depth} if depth is not None else {}) | {
        "out": tuple(last.out), "params": t.params, "weight_params": t.weight_params, "bias_params": t.bias_params,
        "buffer_elems": t.buffer_elems, "macs": t.macs, "flops": t.flops, "other_ops": t.other_ops,
        "connections": t.connections, "out_elems": t.out_elems, "out_bytes": report.out_bytes,
        "saved_elems": t.saved_elems, "saved_bytes": report.saved_bytes, "rf": tuple(last.rf),
        "jump": tuple(last.jump), "param_bytes": report.param_bytes, "buffer_bytes": report.buffer_bytes,
        "peak_elems": t.peak_elems, "peak_bytes": report.peak_bytes,
    }


def exact_value(target: Target, key: str):
    """The exact figure of ``key`` as JSON gives it (a shape or a field as a list); "memory" and
    "saved" are their element counts."""
    v = target.values[BY_UNIT[key][0] if key in BY_UNIT else key]
    return list(v) if isinstance(v, tuple) else v


def target_dict(report: Report, target: Target) -> dict:
    """What a question is about, for JSON: the spec, the target as resolved, its rows' paths and its
    exact figures under the JSON keys."""
    return {"spec": report.name, "layer": target.label, "kind": target.kind, "rows": [r.path for r in target.rows],
            "dtype": report.dtype, "batch": report.batch,
            "values": {k: (list(v) if isinstance(v, tuple) else v) for k, v in target.values.items()}}
