"""Columns are data: a key, a title, how to read the value from a row and how to show it."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..shape import fmt_shape

_PREFIXES = ((10**12, "T"), (10**9, "G"), (10**6, "M"), (10**3, "K"))


def si(n: int | float, digits: int = 1) -> str:
    """1234567 -> '1.2M' (decimal prefixes: K = 10^3, M = 10^6, G = 10^9)."""
    for scale, prefix in _PREFIXES:
        if abs(n) >= scale:
            return f"{n / scale:.{digits}f}{prefix}"
    return f"{n:,}" if isinstance(n, int) else f"{n:.{digits}f}"


def mb(n_bytes: int) -> str:
    """Bytes as decimal megabytes, the unit everywhere in archcalc's tables: MB = 10^6 bytes."""
    return f"{n_bytes / 1e6:,.1f} MB"


def mb_number(n_bytes: int) -> str:
    """Decimal megabytes without the unit, for a column whose title says "MB"."""
    return f"{n_bytes / 1e6:,.2f}"


def mib(n_bytes: int) -> str:
    return f"{n_bytes / 2**20:,.1f} MiB"


def rf_text(rf) -> str:
    return str(rf[0]) if rf[0] == rf[1] else f"{rf[0]}x{rf[1]}"


@dataclass(frozen=True)
class Column:
    key: str
    title: str
    value: Callable  # (row, report) -> raw value (exact, for CSV and JSON)
    show: Callable  # raw value -> short text for tables
    numeric: bool = True


def _shape(v) -> str:
    return fmt_shape(v)


COLUMNS = {c.key: c for c in (
    Column("name", "layer", lambda r, rep: r.path, str, numeric=False),
    Column("type", "type", lambda r, rep: r.type, str, numeric=False),
    Column("out", "output (CxHxW)", lambda r, rep: r.out, _shape, numeric=False),
    Column("params", "params", lambda r, rep: r.params, si),
    Column("weights", "weights", lambda r, rep: r.weight_params, si),
    Column("biases", "biases", lambda r, rep: r.bias_params, si),
    Column("macs", "MACs", lambda r, rep: r.macs, si),
    Column("flops", "FLOPs (2xMACs)", lambda r, rep: r.flops, si),
    Column("act", "activations", lambda r, rep: r.out_elems, si),
    Column("act_bytes", "act. MB", lambda r, rep: rep.row_out_bytes(r), mb_number),
    Column("saved", "saved for bwd", lambda r, rep: r.saved_elems, si),
    Column("saved_bytes", "saved MB", lambda r, rep: rep.row_saved_bytes(r), mb_number),
    Column("rf", "RF", lambda r, rep: r.rf, rf_text),
    Column("jump", "stride", lambda r, rep: r.jump, rf_text),
    Column("ops", "other ops", lambda r, rep: r.other_ops, si),
    Column("connections", "connections", lambda r, rep: r.connections, si),
)}

DEFAULT_COLUMNS = ("name", "out", "params", "macs", "act", "saved", "rf")


def parse_columns(text: str | None) -> list[Column]:
    if not text:
        return [COLUMNS[k] for k in DEFAULT_COLUMNS]
    keys = [k.strip() for k in text.split(",") if k.strip()]
    unknown = [k for k in keys if k not in COLUMNS]
    if unknown:
        raise ValueError(f"unknown column {unknown[0]!r}; known: {', '.join(COLUMNS)}")
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
        f"forward activations: {t.out_elems:,} elements per sample = {mb(report.out_bytes)} ({mib(report.out_bytes)}) at {per}",
        f"saved for backward: {t.saved_elems:,} elements per sample = {mb(report.saved_bytes)} at {per}"
        + (f" (incl. {report.saved_fixed_total_bytes:,} B of indices, masks, BN statistics)"
           if report.saved_fixed_total_bytes else ""),
        f"peak inference memory: {t.peak_elems:,} elements = {mb(report.peak_bytes)} at {per}",
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
