"""Formatters: each takes a report (and the rows and columns to show) and returns text.

One module per format, chosen by name; the CLI only picks one. ``table`` imports rich lazily so
the other formats never pay for it.
"""
from __future__ import annotations

from importlib import import_module

FORMATS = {"table": "table", "md": "markdown", "csv": "csv_", "json": "json_", "html": "html"}


def render(fmt: str, report, rows, columns, **options) -> str:
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; known: {', '.join(FORMATS)}")
    return import_module(f".{FORMATS[fmt]}", __name__).render(report, rows, columns, **options)
