"""Columns are data: a key, a title, how to read the value from a row and how to show it.

A column's key is the quantity's one name: the JSON key of a layer (``report.row_dict``), the
``expect:`` key and the Row (or Totals) attribute; ``out_bytes`` and ``saved_bytes``, which depend
on the batch and dtype, are ``Report.row_out_bytes``/``row_saved_bytes`` for a row. Units and their
formatting (SI prefixes, MB, MiB) live in ``units.py``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..shape import fmt_shape
from ..units import mb, mb_number, mib, si


def rf_text(rf) -> str:
    return str(rf[0]) if rf[0] == rf[1] else f"{rf[0]}x{rf[1]}"


@dataclass(frozen=True)
class Column:
    key: str  # the JSON key of the same quantity (report.row_dict), and the CSV header
    title: str
    value: Callable  # (row, report) -> raw value (exact, for CSV and JSON)
    show: Callable  # raw value -> short text for tables
    numeric: bool = True
    total: Callable | None = None  # report -> the network's total (CSV's TOTAL row), None: no total
    label: bool = False  # names the row: the table marks aux rows in it, CSV's TOTAL row says TOTAL there


def _shape(v) -> str:
    return fmt_shape(v)


def _totals(key: str) -> Callable:
    return lambda rep: getattr(rep.totals, key)


COLUMNS = {c.key: c for c in (
    Column("path", "layer", lambda r, rep: r.path, str, numeric=False, label=True),
    Column("name", "name", lambda r, rep: r.name, str, numeric=False, label=True),
    Column("type", "type", lambda r, rep: r.type, str, numeric=False),
    Column("out", "output (CxHxW)", lambda r, rep: r.out, _shape, numeric=False),
    Column("params", "params", lambda r, rep: r.params, si, total=_totals("params")),
    Column("weight_params", "weights", lambda r, rep: r.weight_params, si, total=_totals("weight_params")),
    Column("bias_params", "biases", lambda r, rep: r.bias_params, si, total=_totals("bias_params")),
    Column("buffer_elems", "buffers", lambda r, rep: r.buffer_elems, si, total=_totals("buffer_elems")),
    Column("macs", "MACs", lambda r, rep: r.macs, si, total=_totals("macs")),
    Column("flops", "FLOPs (2xMACs)", lambda r, rep: r.flops, si, total=_totals("flops")),
    Column("other_ops", "other ops", lambda r, rep: r.other_ops, si, total=_totals("other_ops")),
    Column("connections", "connections", lambda r, rep: r.connections, si, total=_totals("connections")),
    Column("out_elems", "activations", lambda r, rep: r.out_elems, si, total=_totals("out_elems")),
    Column("out_bytes", "act. MB", lambda r, rep: rep.row_out_bytes(r), mb_number, total=lambda rep: rep.out_bytes),
    Column("saved_elems", "saved for bwd", lambda r, rep: r.saved_elems, si, total=_totals("saved_elems")),
    Column("saved_bytes", "saved MB", lambda r, rep: rep.row_saved_bytes(r), mb_number,
           total=lambda rep: rep.saved_bytes),
    Column("rf", "RF", lambda r, rep: r.rf, rf_text),
    Column("jump", "jump", lambda r, rep: r.jump, rf_text),
    Column("links", "links", lambda r, rep: r.links, si),
)}

DEFAULT_COLUMNS = ("path", "out", "params", "macs", "out_elems", "saved_elems", "rf")

# The column keys before they became the JSON keys, kept only to say what they are called now.
RENAMED = {"act": "out_elems", "act_bytes": "out_bytes", "saved": "saved_elems", "ops": "other_ops",
           "weights": "weight_params", "biases": "bias_params"}


def parse_columns(text: str | None) -> list[Column]:
    if not text:
        return [COLUMNS[k] for k in DEFAULT_COLUMNS]
    keys = [k.strip() for k in text.split(",") if k.strip()]
    if not keys:
        raise ValueError(f"no column named in {text!r}; known: {', '.join(COLUMNS)}")
    for k in keys:
        if k in RENAMED:
            raise ValueError(f"column {k!r} is now called {RENAMED[k]!r}")
        if k not in COLUMNS:
            raise ValueError(f"unknown column {k!r}; known: {', '.join(COLUMNS)}")
    return [COLUMNS[k] for k in keys]


def summary_lines(report) -> list[str]:
    """The totals under a table, with units spelled out."""
    t = report.totals
    b = report.batch
    per = f"{report.dtype}, batch {b}"
    lines = [
        f"params: {t.params:,} ({si(t.params, 2)}) = weights {t.weight_params:,} + biases {t.bias_params:,}"
        f"; {mb(report.param_bytes)} at {report.dtype}"
        + (f"; buffers {t.buffer_elems:,}" if t.buffer_elems else ""),
        f"MACs: {t.macs:,} ({si(t.macs, 2)}) per sample; FLOPs = 2 x MACs = {si(t.flops, 2)}",
        f"depth: {t.depth} weight layers (conv, fc) on the longest path",
        *([f"stochastic depth (drop_path), a training pass skipping dropped branches, expected per sample: "
           f"MACs {t.expected_macs:,} "
           f"({t.expected_macs / t.macs:.1%} of {t.macs:,}), depth {t.expected_depth:g} weight layers"]
          if t.expected_macs != t.macs or t.expected_depth != t.depth else []),
        f"forward activations: {t.out_elems:,} elements per sample = {mb(report.out_bytes)} ({mib(report.out_bytes)}) at {per}",
        f"saved for backward: {t.saved_elems:,} elements per sample = {mb(report.saved_bytes)} at {per}"
        + (f" (incl. {report.saved_fixed_total_bytes:,} B of indices, masks, BN statistics)"
           if report.saved_fixed_total_bytes else ""),
        f"peak inference memory: {t.peak_elems:,} elements = {mb(report.peak_bytes)} at {per}"
        + (f" (incl. {t.peak_fixed_bytes * report.batch:,} B of max-pool indices)" if t.peak_fixed_bytes else ""),
    ]
    if report.aux_totals:
        a = report.aux_totals
        lines.append(f"training-only aux branches (not in the totals above): params {a.params:,}, MACs {a.macs:,}")
    return lines


def note_lines(report) -> list[str]:
    """The spec's notes: where a lecture's number differs from the honest one, and why."""
    return [f"note: {line}" for line in report.notes.splitlines() if line.strip()]


def warning_lines(report) -> list[str]:
    return [f"warning: {path}: {msg}" for path, msg in report.warnings]
