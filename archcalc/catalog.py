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
    family: str  # the first member of the file that defines it (the spec's own name when alone)
    source: str
    input: list
    params: int
    macs: int


def bundled_summaries() -> list[Summary]:
    """Every bundled spec, a family's members together in the order its file lists them."""
    out = []
    for name in bundled_names():
        spec = load(name)
        report = analyze(spec)
        out.append(Summary(name, spec.family, spec.source, list(spec.input), report.totals.params, report.totals.macs))
    order = {}
    for s in out:  # bundled_names() is sorted; a member's rank is its place in its family file
        order.setdefault(s.family, [])
    ranks = {}
    for family in order:
        members = [family, *load(family).variants]
        ranks.update({m: i for i, m in enumerate(members)})
    return sorted(out, key=lambda s: (s.family, ranks.get(s.name, 0), s.name))


def render_summaries(summaries: list[Summary], fmt: str) -> str:
    from .units import si
    from .shape import fmt_shape

    if fmt == "json":
        return json.dumps([asdict(s) for s in summaries], indent=2) + "\n"
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["name", "family", "input", "params", "macs", "source"])
        for s in summaries:
            w.writerow([s.name, s.family, fmt_shape(s.input), s.params, s.macs, s.source])
        return buf.getvalue()
    # A member of a family is indented under the family's first member.
    rows = [(s.name if s.name == s.family else f"  {s.name}", fmt_shape(s.input), si(s.params, 2), si(s.macs, 2), s.source)
            for s in summaries]
    header = ("spec", "input", "params", "MACs", "source")
    if fmt == "md":
        rows = [(f"`{s.name}`" if s.name == s.family else f"↳ `{s.name}`",) + r[1:] for s, r in zip(summaries, rows)]
        lines = ["| " + " | ".join(header) + " |", "|:---|:---|---:|---:|:---|"]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines) + "\n"
    from .formats.text import draw

    return draw("", list(header), [list(r) for r in rows], [h in ("params", "MACs") for h in header],
                footer=["MACs = multiply-accumulates per image (FLOPs = 2 x MACs)"], width=160)
