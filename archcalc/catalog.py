"""The bundled specs at a glance (`archcalc list`)."""
from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass

from .analysis import analyze
from .spec import bundled_names, load


@dataclass(frozen=True)
class Summary:
    name: str
    source: str
    input: list
    params: int
    macs: int


def bundled_summaries() -> list[Summary]:
    out = []
    for name in bundled_names():
        spec = load(name)
        report = analyze(spec)
        out.append(Summary(name, spec.source, list(spec.input), report.totals.params, report.totals.macs))
    return out


def render_summaries(summaries: list[Summary], fmt: str) -> str:
    from .units import si
    from .shape import fmt_shape

    if fmt == "json":
        return json.dumps([asdict(s) for s in summaries], indent=2) + "\n"
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["name", "input", "params", "macs", "source"])
        for s in summaries:
            w.writerow([s.name, fmt_shape(s.input), s.params, s.macs, s.source])
        return buf.getvalue()
    rows = [(s.name, fmt_shape(s.input), si(s.params, 2), si(s.macs, 2), s.source) for s in summaries]
    header = ("spec", "input", "params", "MACs", "source")
    if fmt == "md":
        lines = ["| " + " | ".join(header) + " |", "|:---|:---|---:|---:|:---|"]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines) + "\n"
    from .formats.text import draw

    return draw("", list(header), [list(r) for r in rows], [h in ("params", "MACs") for h in header],
                footer=["MACs = multiply-accumulates per image (FLOPs = 2 x MACs)"], width=160)
