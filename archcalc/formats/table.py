"""The per-layer table for the terminal, totals and notes underneath (see text.py for colour)."""
from __future__ import annotations

from .columns import note_lines, summary_lines, warning_lines
from .text import draw


def render(report, rows, columns, *, width: int | None = None, color: bool | None = None) -> str:
    title = report.name + (f" - {report.source}" if report.source else "")
    cells = []
    for r in rows:
        line = [c.show(c.value(r, report)) for c in columns]
        if r.aux and columns and columns[0].label:
            line[0] += " (aux)"
        cells.append(line)
    return draw(title, [c.title for c in columns], cells, [c.numeric for c in columns],
                footer=summary_lines(report) + note_lines(report) + warning_lines(report),
                dim_rows={i for i, r in enumerate(rows) if r.aux}, color=color, width=width)
