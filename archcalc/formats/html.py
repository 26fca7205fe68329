"""One self-contained HTML page: the table, totals, notes and (with matplotlib) the per-layer chart
as inline SVG. No script, no external resource (a teacher can put the file online as it is), and
every text from a spec escaped. The rows of each top-level block fold into a <details>."""
from __future__ import annotations

from html import escape

from .columns import summary_lines, warning_lines

# Summed per block in a block's <summary> line (what a reader scanning folded blocks wants).
BLOCK_SUMS = ("params", "weight_params", "bias_params", "macs", "flops")
CHART_ROWS = 60  # more rows than this: the page's chart has one bar per top-level block

STYLE = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 1200px;
       padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; margin-bottom: .2em; } h2 { font-size: 1.2em; margin-top: 1.6em; }
.source { color: #555; margin-top: 0; }
table { border-collapse: collapse; width: 100%; table-layout: fixed; font-variant-numeric: tabular-nums; }
th, td { padding: 2px 8px; border-bottom: 1px solid #e4e4e4; overflow-wrap: anywhere; }
th { text-align: left; background: #f3f3f3; font-weight: 600; }
td.num, th.num { text-align: right; }
tr.aux td { color: #888; font-style: italic; }
details.block > summary { cursor: pointer; padding: 3px 8px; background: #eef3fb; border-bottom: 1px solid #dde6f3; }
details.block > summary .sums { color: #555; }
details.block td:first-child { padding-left: 1.6em; }  /* indent, not a border: the columns stay aligned */
ul.totals li { margin: .15em 0; }
ul.warnings li { color: #8a4b00; }
div.notes { white-space: pre-line; background: #fafafa; border-left: 3px solid #ddd; padding: .5em 1em; }
h2.inline { display: inline; }
figure { margin: 1em 0; } figure svg { max-width: 100%; height: auto; }
.muted { color: #777; }
code { font-family: ui-monospace, monospace; font-size: .92em; }
"""


def render(report, rows, columns, *, plots: bool = True, **_) -> str:
    title = escape(report.name)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{title}: archcalc</title>",
        f"<style>{STYLE}</style>",
        "</head>",
        "<body>",
        f"<h1>{title}</h1>",
    ]
    if report.source:
        parts.append(f'<p class="source">{escape(report.source)}</p>')
    parts.append("<h2>Totals</h2>")
    parts.append(_list("totals", summary_lines(report)))
    warnings = warning_lines(report)
    if report.notes.strip() or warnings:
        # The notes keep the spec author's line breaks: some lines are separate notes, others wrap prose.
        parts.append('<details open><summary><h2 class="inline">Notes</h2></summary>')
        if report.notes.strip():
            parts.append(f'<div class="notes">{escape(report.notes.strip())}</div>')
        if warnings:
            parts.append(_list("warnings", warnings))
        parts.append("</details>")
    parts.append("<h2>Layers</h2>")
    parts.append(_tables(report, rows, columns))
    if plots:
        parts.append(_chart(report, rows))
    parts.append(f'<p class="muted">Made by archcalc. Counts are per sample; bytes at {escape(report.dtype)}, '
                 f"batch {report.batch}.</p>")
    parts += ["</body>", "</html>"]
    return "\n".join(parts) + "\n"


def _list(cls: str, lines) -> str:
    items = [f"<li>{escape(line)}</li>" for line in lines]
    return f'<ul class="{cls}">\n' + "\n".join(items) + "\n</ul>"


def _colgroup(columns) -> str:
    # Every segment is its own table (a <details> cannot sit inside one), so all share fixed widths:
    # the label column wide, shapes medium, numbers narrow.
    weights = [3.2 if c.label else 1.6 if not c.numeric else 1.0 for c in columns]
    total = sum(weights)
    return "<colgroup>" + "".join(f'<col style="width:{100 * w / total:.2f}%">' for w in weights) + "</colgroup>"


def _tables(report, rows, columns) -> str:
    colgroup = _colgroup(columns)
    head = "".join(f'<th class="{"num" if c.numeric else ""}">{escape(c.title)}</th>' for c in columns)
    out = [f"<table>{colgroup}<thead><tr>{head}</tr></thead></table>"]
    for block, members in _segments(rows):
        body = "\n".join(_row(r, report, columns) for r in members)
        table = f"<table>{colgroup}<tbody>\n{body}\n</tbody></table>"
        if block is None:
            out.append(table)
        else:
            out.append(f'<details class="block"><summary>{_block_summary(report, block, members, columns)}</summary>'
                       f"\n{table}\n</details>")
    return "\n".join(out)


def _segments(rows):
    """Consecutive rows under one top-level block, and runs of top-level rows between them."""
    segments: list = []
    for r in rows:
        block = r.path.split("/", 1)[0] if "/" in r.path else None
        if block is None and segments and segments[-1][0] == r.path:
            block = r.path  # a named merge's own row closes the block its branches opened
        if segments and segments[-1][0] == block:
            segments[-1][1].append(r)
        else:
            segments.append((block, [r]))
    return segments


def _block_summary(report, block, members, columns) -> str:
    from ..report import aggregate

    kind = report.scope_types.get(block, "block")
    sums = []
    agg = aggregate(report, block)
    if agg is not None:
        sums = [f"{escape(c.title)} {escape(c.show(c.value(agg, report)))}" for c in columns if c.key in BLOCK_SUMS]
    text = f"<b>{escape(block)}</b> <span class=\"sums\">{escape(kind)}, {len(members)} rows"
    return text + "".join(f" · {s}" for s in sums) + "</span>"


def _row(r, report, columns) -> str:
    cells = []
    for c in columns:
        text = c.show(c.value(r, report))
        if c.label and r.aux:
            text += " (aux)"
        cells.append(f'<td class="num">{escape(text)}</td>' if c.numeric else f"<td>{escape(text)}</td>")
    return f'<tr class="aux">{"".join(cells)}</tr>' if r.aux else f"<tr>{''.join(cells)}</tr>"


def _chart(report, rows) -> str:
    try:
        from ..plot import PlotError, layer_chart, svg_text
    except ImportError:  # pragma: no cover - plot.py itself imports nothing heavy
        return ""
    caption = ""
    if len(rows) > CHART_ROWS:
        # A bar per layer of a deep network is a picture nobody reads: one bar per top-level block.
        from ..report import collapse

        collapsed = collapse(report, 1)
        if len(collapsed) < len(rows):
            rows = collapsed
            caption = "<figcaption>One bar per top-level block (each block's rows summed).</figcaption>"
    try:
        svg = svg_text(layer_chart(report, rows))
    except PlotError as e:
        return f'<p class="muted">No chart: {escape(str(e))}.</p>'
    svg = svg[svg.index("<svg"):]  # inline: no XML declaration or doctype inside HTML
    return ('<details open><summary><h2 class="inline">Per-layer chart</h2></summary>\n'
            f'<figure role="img" aria-label="{escape(report.name)}: activation memory, parameters and MACs per layer">'
            f"\n{caption}{svg}\n</figure>\n</details>")
