"""Rich terminal table; plain text (no colour codes) when piped or NO_COLOR is set."""
from __future__ import annotations

import io
import os
import sys

from .columns import note_lines, summary_lines, warning_lines


def render(report, rows, columns, *, width: int | None = None, color: bool | None = None) -> str:
    from rich.console import Console
    from rich.table import Table
    from rich import box

    if color is None:
        color = sys.stdout.isatty() and "NO_COLOR" not in os.environ
    title = report.name + (f" - {report.source}" if report.source else "")
    table = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left", pad_edge=False)
    for c in columns:
        table.add_column(c.title, justify="right" if c.numeric else "left", no_wrap=True)
    for r in rows:
        cells = []
        for c in columns:
            text = c.show(c.value(r))
            if c.key == "name" and r.aux:
                text += " (aux)"
            cells.append(text)
        table.add_row(*cells, style="dim" if r.aux else None)
    buf = io.StringIO()
    console = Console(file=buf, width=width or max(100, _terminal_width()), force_terminal=color,
                      no_color=not color, highlight=False)
    console.print(table)
    for line in summary_lines(report) + note_lines(report) + warning_lines(report):
        console.print(line, soft_wrap=True)
    return buf.getvalue()


def _terminal_width() -> int:
    try:
        return os.get_terminal_size().columns
    except OSError:
        return 160
