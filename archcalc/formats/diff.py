"""`archcalc diff` rendered: the differing rows (table, md, csv) and the totals side by side.

A row is marked ``-`` (only in A), ``+`` (only in B), ``~`` (in both, different) or blank (the
same, with ``--all``); a cell that differs reads ``A -> B``. Cells use the columns of
formats/columns.py (titles and short numbers as in `archcalc table`); CSV and JSON are exact.
"""
from __future__ import annotations

import csv
import io
import json

from ..shape import fmt_shape
from .columns import Column
from .text import draw

MARKS = {"only_a": "-", "only_b": "+", "changed": "~", "same": ""}


def _args_text(entry) -> str:
    from ..diff import MISSING

    def show(v):
        if v is MISSING:
            return "-"
        return v if isinstance(v, str) and v else json.dumps(v)

    return "; ".join(f"{k}: {show(va)} -> {show(vb)}" for k, va, vb in entry.args)


def _cell(d, entry, column: Column) -> str:
    ra, rb = entry.a, entry.b
    if rb is None:
        return column.show(column.value(ra, d.report_a))
    if ra is None:
        return column.show(column.value(rb, d.report_b))
    va, vb = column.value(ra, d.report_a), column.value(rb, d.report_b)
    if va == vb:
        return column.show(va)
    ta, tb = column.show(va), column.show(vb)
    if ta == tb and isinstance(va, int):  # 2.4M -> 2.4M says nothing: the exact counts do
        ta, tb = f"{va:,}", f"{vb:,}"
    return f"{ta} -> {tb}"


def _entries(d, all_rows: bool):
    return list(d.entries if all_rows else d.differences)


def _summary(d) -> list[str]:
    counts = {s: d.count(s) for s in MARKS}
    n = counts["only_a"] + counts["only_b"] + counts["changed"]
    a, b = d.report_a, d.report_b
    def named(label, report):
        return label if label == report.file else f"{label} ({report.file})"

    lines = [f"A = {named(d.label_a, a)}, B = {named(d.label_b, b)}",
             f"{n} row{'s' if n != 1 else ''} differ: {counts['only_a']} only in A (-), {counts['only_b']} only in B (+), "
             f"{counts['changed']} in both with different figures (~); {counts['same']} the same"]
    if d.ignore:
        lines.append(f"not compared: {', '.join(d.ignore)}")
    field_only = d.count_only(("rf", "jump"))
    if field_only:
        lines.append(f"{field_only} of them differ only in receptive field or jump (--ignore rf,jump leaves them out)")
    if (a.dtype, a.batch) == (b.dtype, b.batch):
        lines.append(f"bytes at {a.dtype}, batch {a.batch}; counts per sample")
    return lines


def _total_cells(t) -> list[str]:
    ratio = "-" if t.ratio is None else f"{float(t.ratio):.4f}x"
    return [t.key, f"{t.a:,}", f"{t.b:,}", f"{t.delta:+,}", ratio]


def render(d, columns: list[Column], fmt: str = "table", *, all_rows: bool = False, width: int | None = None,
           color: bool | None = None) -> str:
    if fmt == "json":
        from ..diff import to_dict

        return json.dumps(to_dict(d, all_rows=all_rows), indent=2) + "\n"
    if fmt == "csv":
        return _csv(d, columns, all_rows)
    entries = _entries(d, all_rows)
    headers = [""] + [c.title for c in columns] + ["arguments"]
    body = [[MARKS[e.status]] + [_cell(d, e, c) for c in columns] + [_args_text(e)] for e in entries]
    total_headers = ["figure", d.label_a, d.label_b, "B - A", "B / A"]
    totals = [_total_cells(t) for t in d.totals]
    if fmt == "md":
        lines = [f"### {d.label_a} vs {d.label_b}", ""]
        if body:
            lines.append("| " + " | ".join(headers) + " |")
            lines.append("|:---|" + "|".join("---:" if c.numeric else ":---" for c in columns) + "|:---|")
            lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in body]
            lines.append("")
        lines += ["| " + " | ".join(total_headers) + " |", "|:---|---:|---:|---:|---:|"]
        lines += ["| " + " | ".join(row) + " |" for row in totals]
        lines.append("")
        lines += [f"- {s}" for s in _summary(d)]
        return "\n".join(lines) + "\n"
    if fmt != "table":
        raise ValueError(f"unknown format {fmt!r}; known: table, md, csv, json")
    title = f"{d.label_a} vs {d.label_b}"
    out = ""
    if body:
        out = draw(title, headers, body, [False] + [c.numeric for c in columns] + [False], color=color, width=width)
        out += "\n"
    out += draw("" if body else title, total_headers, totals, [False, True, True, True, True], footer=_summary(d),
                color=color, width=width)
    return out


def _csv_value(v):
    return fmt_shape(v) if isinstance(v, tuple) else v


def _csv(d, columns: list[Column], all_rows: bool) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    cols = [c for c in columns if not c.label]
    header = ["status", "path_a", "path_b", "changed"]
    for c in cols:
        header += [f"{c.key}_a", f"{c.key}_b"] + ([f"{c.key}_delta"] if c.total else [])
    w.writerow(header)
    for e in _entries(d, all_rows):
        line = [e.status, e.a.path if e.a is not None else "", e.b.path if e.b is not None else "", " ".join(e.changed)]
        for c in cols:
            va = c.value(e.a, d.report_a) if e.a is not None else None
            vb = c.value(e.b, d.report_b) if e.b is not None else None
            line += ["" if va is None else _csv_value(va), "" if vb is None else _csv_value(vb)]
            if c.total:
                line.append((vb or 0) - (va or 0))
        w.writerow(line)
    # TOTAL row: each column's network total on either side (JSON's totals under the same key).
    line = ["TOTAL", d.label_a, d.label_b, ""]
    for c in cols:
        if c.total:
            ta, tb = c.total(d.report_a), c.total(d.report_b)
            line += [ta, tb, tb - ta]
        else:
            line += ["", ""]
    w.writerow(line)
    return buf.getvalue()
