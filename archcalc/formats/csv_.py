"""CSV with exact integers (no K/M/G), one row per layer and a final TOTAL row."""
from __future__ import annotations

import csv
import io

from ..shape import fmt_shape


def _cell(v):
    if isinstance(v, tuple):
        return fmt_shape(v)
    return v


def render(report, rows, columns, **_) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([c.key for c in columns])
    for r in rows:
        w.writerow([_cell(c.value(r, report)) for c in columns])
    # TOTAL row: each column's total (JSON's totals under the same key); the word in the first label column.
    label = next((c for c in columns if c.label), None)
    w.writerow(["TOTAL" if c is label else c.total(report) if c.total else "" for c in columns])
    return buf.getvalue()
