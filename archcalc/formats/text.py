"""Drawing a table for the terminal: rich on a colour terminal, plain aligned text otherwise.

Piped output and NO_COLOR get the plain form, which never imports rich (most of a piped
`archcalc table`'s start-up would otherwise be rich's console and layout code).
"""
from __future__ import annotations

import io
import os
import sys


# rich lays a table out at ~0.4 ms a row: a longer table is drawn plain even on a terminal (a 40-byte
# spec of 10,000 rows took 4 s in rich, 0.1 s plain).
RICH_MAX_ROWS = 1_000


def use_color(color: bool | None) -> bool:
    if color is not None:
        return color
    return sys.stdout.isatty() and "NO_COLOR" not in os.environ


def draw(title: str, headers: list[str], rows: list[list[str]], numeric: list[bool], *,
         footer: list[str] = (), dim_rows: set[int] = frozenset(), color: bool | None = None,
         width: int | None = None) -> str:
    if use_color(color) and len(rows) <= RICH_MAX_ROWS:
        return _rich(title, headers, rows, numeric, footer, dim_rows, width)
    return _plain(title, headers, rows, numeric, footer)


def _plain(title, headers, rows, numeric, footer) -> str:
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]

    def line(cells):
        return "  ".join(c.rjust(w) if num else c.ljust(w) for c, w, num in zip(cells, widths, numeric)).rstrip()

    out = [title, ""] if title else []
    out += [line(headers), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in rows]
    if footer:
        out += [""] + list(footer)
    return "\n".join(out) + "\n"


def _rich(title, headers, rows, numeric, footer, dim_rows, width) -> str:
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    # Cells and notes are data, never markup: "[conv1]" or ":smile:" in a note prints as written.
    table = Table(title=Text(title) if title else None, box=box.SIMPLE_HEAD, title_justify="left", pad_edge=False)
    for h, num in zip(headers, numeric):
        table.add_column(Text(h), justify="right" if num else "left", no_wrap=True)
    for i, r in enumerate(rows):
        table.add_row(*(Text(c) for c in r), style="dim" if i in dim_rows else None)
    buf = io.StringIO()
    console = Console(file=buf, width=width or max(100, _terminal_width()), force_terminal=True,
                      highlight=False, markup=False, emoji=False)
    console.print(table)
    for text in footer:
        console.print(Text(text), soft_wrap=True)
    return buf.getvalue()


def _terminal_width() -> int:
    try:
        return os.get_terminal_size().columns
    except OSError:
        return 160
