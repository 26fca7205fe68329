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
    t = report.totals
    totals = {"name": "TOTAL", "params": t.params, "weights": t.weight_params, "biases": t.bias_params,
              "macs": t.macs, "flops": t.flops, "act": t.out_elems, "saved": t.saved_elems, "ops": t.other_ops,
              "connections": t.connections, "act_bytes": report.out_bytes, "saved_bytes": report.saved_bytes}
    w.writerow([totals.get(c.key, "") for c in columns])
    return buf.getvalue()
