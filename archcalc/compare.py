"""Networks, or ranges of their rows, side by side: the lectures' comparisons.

An item is ``SPEC`` (the whole network) or ``SPEC:FIRST..LAST`` (a range of rows in table order,
or ``SPEC:BLOCK`` a block's rows). Its figures: params, MACs, depth (weight layers on the longest
path), forward activations (the elements and bytes the forward pass allocates) and what backward
keeps (each tensor once); for a range the same over its rows. Every figure of every item is also
given as a ratio to the first item's.
"""
from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from fractions import Fraction

from .analysis import analyze
from .formats.styles import lecture_flop, select
from .report import _storage, weighted_depth
from .spec import SpecError, load

FIGURES = ("params", "weight_params", "macs", "flop", "depth", "out_elems", "out_bytes", "saved_elems", "saved_bytes")
TITLES = {"params": "params", "weight_params": "weights", "macs": "MACs", "flop": "lecture flop",
          "depth": "depth", "out_elems": "forward elems", "out_bytes": "forward bytes",
          "saved_elems": "saved elems", "saved_bytes": "saved bytes"}


@dataclass(frozen=True)
class Item:
    label: str
    spec: str
    rows: str | None
    figures: dict


def parse_item(text: str) -> tuple[str, str | None]:
    spec, sep, rows = text.partition(":")
    if sep and not rows.strip():
        raise SpecError(f"{text!r} names no rows after the colon: give FIRST..LAST (or leave out the colon)")
    return spec, rows if sep else None


def figures(text: str, *, input_shape=None, dtype: str = "fp32") -> Item:
    spec, rows_text = parse_item(text)
    report = analyze(load(spec), input_shape=input_shape, dtype=dtype)
    main = [r for r in report.rows if not r.aux]
    if rows_text is None:
        t = report.totals
        f = {"params": t.params, "weight_params": t.weight_params, "macs": t.macs,
             "flop": sum(lecture_flop(r) for r in main), "depth": t.depth,
             "out_elems": t.out_elems, "out_bytes": report.out_bytes,
             "saved_elems": t.saved_elems, "saved_bytes": report.saved_bytes}
        return Item(text, spec, None, f)
    rows = select(report, main, rows_text)
    out_elems = sum(r.out_elems + r.mem.temp_elems for r in rows if not r.mem.alias)
    saved = {}
    saved_fixed = 0
    for r in rows:
        for s in r.mem.saved:
            if s.itemsize:
                saved_fixed += s.elems * s.itemsize
            else:
                saved[_storage(r, s)] = s.elems
    saved_elems = sum(saved.values())
    f = {"params": sum(r.params for r in rows), "weight_params": sum(r.weight_params for r in rows),
         "macs": sum(r.macs for r in rows), "flop": sum(lecture_flop(r) for r in rows),
         "depth": weighted_depth(rows), "out_elems": out_elems, "out_bytes": out_elems * report.itemsize,
         "saved_elems": saved_elems, "saved_bytes": saved_elems * report.itemsize + saved_fixed}
    return Item(f"{spec}:{rows[0].path}..{rows[-1].path}", spec, rows_text, f)


def ratios(items: list[Item]) -> list[dict]:
    base = items[0].figures
    return [{k: (Fraction(it.figures[k], base[k]) if base[k] else None) for k in FIGURES} for it in items]


def to_dict(items: list[Item]) -> dict:
    rs = ratios(items)
    return {"items": [{"label": it.label, "spec": it.spec, "rows": it.rows, **it.figures,
                       "ratio": {k: (float(r[k]) if r[k] is not None else None) for k in FIGURES}}
                      for it, r in zip(items, rs)]}


def _ratio(r) -> str:
    return "-" if r is None else f"{float(r):.2f}x"


def render(items: list[Item], fmt: str = "table") -> str:
    if fmt == "json":
        return json.dumps(to_dict(items), indent=2) + "\n"
    rs = ratios(items)
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["item", *FIGURES, *(f"{k}_ratio" for k in FIGURES)])
        for it, r in zip(items, rs):
            w.writerow([it.label, *(it.figures[k] for k in FIGURES),
                        *("" if r[k] is None else f"{float(r[k]):.4f}" for k in FIGURES)])
        return buf.getvalue()
    headers = ["figure"] + [it.label for it in items]
    body = []
    for k in FIGURES:
        cells = [f"{it.figures[k]:,}" + ("" if i == 0 else f" ({_ratio(r[k])})")
                 for i, (it, r) in enumerate(zip(items, rs))]
        body.append([TITLES[k]] + cells)
    note = (f"ratios against {items[0].label}; forward bytes and saved bytes at fp32, one sample; "
            "lecture flop = MACs, plus one op per window element of a pool (EECS 498)")
    if fmt == "md":
        lines = ["| " + " | ".join(headers) + " |", "|:---|" + "---:|" * len(items)]
        lines += ["| " + " | ".join(row) + " |" for row in body]
        return "\n".join(lines) + f"\n\n{note}\n"
    from .formats.text import draw

    return draw("", headers, body, [False] + [True] * len(items), footer=[note], color=False)
