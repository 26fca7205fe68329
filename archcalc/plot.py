"""Pictures of reports (matplotlib, the `plot` extra, imported only when a picture is drawn).

Two charts: per-layer bars of a report's rows (activation memory, parameters, MACs: the lecture's
point that memory sits in the early convs and parameters in the fc layers), and the Canziani-style
chart of several networks (top-1 accuracy against MACs, bubble area = parameters). Every number
comes from a report's rows or totals, read through the table's columns, or from a spec's published
`accuracy:`; this module only chooses scales, colours and labels.
"""
from __future__ import annotations

import io

from .formats.columns import COLUMNS

LAYER_PANELS = ("out_bytes", "params", "macs")
# Panel titles that say the unit and what is counted; a column's table title is terse.
PANEL_TITLES = {
    "out_bytes": "activation memory, MB ({dtype}, batch {batch})",
    "saved_bytes": "saved for backward, MB ({dtype}, batch {batch})",
    "out_elems": "activations (elements per sample)",
    "saved_elems": "saved for backward (elements per sample)",
    "params": "parameters",
    "macs": "MACs per sample",
    "flops": "FLOPs per sample (2 x MACs)",
}
# Bars coloured by kind of layer; a block collapsed by --depth (its rows summed) is a kind of its own.
KINDS = {"conv": "conv", "dwconv": "conv", "fc": "fc", "maxpool": "pool", "avgpool": "pool", "adaptive_avgpool": "pool"}
KIND_COLOURS = {"conv": "#3b6fb6", "fc": "#e07b39", "pool": "#8c8c8c", "block": "#8a63b8", "other": "#6aa56a"}
# One million parameters is this many square points of bubble, whatever the networks: charts drawn
# separately stay comparable.
POINTS2_PER_MPARAM = 14.0


class PlotError(ValueError):
    """A chart cannot be drawn (matplotlib missing, nothing to draw, an unknown output format)."""


def _figure(width: float, height: float):
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise PlotError("plots need matplotlib: pip install 'archcalc[plot]'") from None
    return Figure(figsize=(width, height), layout="constrained")


def _writing():
    """Settings for writing a file, without touching the caller's matplotlib defaults: text stays
    text in SVG (searchable, selectable, small), and the SVG's ids do not change from run to run."""
    import matplotlib

    return matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "archcalc"})


def image_format(path: str) -> str:
    fmt = path.rsplit(".", 1)[-1].lower() if "." in path else ""
    if fmt not in ("png", "svg"):
        raise PlotError(f"{path}: the output must end in .png or .svg")
    return fmt


def save(fig, path: str) -> None:
    with _writing():
        fig.savefig(path, format=image_format(path), dpi=120, metadata=_metadata(image_format(path)))


def svg_text(fig) -> str:
    """The figure as an SVG document, for inlining into a page."""
    buf = io.StringIO()
    with _writing():
        fig.savefig(buf, format="svg", metadata=_metadata("svg"))
    return buf.getvalue()


def _metadata(fmt: str) -> dict:
    # No creation date: the same report draws the same file.
    return {"Date": None} if fmt == "svg" else {}


def layer_chart(report, rows, panels=LAYER_PANELS, *, log: bool = False):
    """Horizontal bars, one row per layer (top to bottom as in the table), one panel per column."""
    rows = [r for r in rows if not r.aux]
    if not rows:
        raise PlotError(f"{report.name}: no rows to plot")
    columns = [COLUMNS[k] for k in panels]
    labels = [r.path for r in rows]
    height = 1.3 + 0.24 * len(rows)
    width = 3.4 * len(columns) + 0.075 * max(len(s) for s in labels)
    fig = _figure(width, height)
    axes = fig.subplots(1, len(columns), sharey=True)
    axes = axes if len(columns) > 1 else [axes]
    kinds = [_kind(report, r) for r in rows]
    colours = [KIND_COLOURS[k] for k in kinds]
    positions = range(len(rows))
    for ax, col in zip(axes, columns):
        values = [col.value(r, report) for r in rows]
        ax.barh(positions, values, color=colours, height=0.75)
        title = PANEL_TITLES.get(col.key, col.title).format(dtype=report.dtype, batch=report.batch)
        if col.total is not None:
            title += f"\ntotal {_shown(col, col.total(report))}"
        ax.set_title(title, fontsize=10)
        if log and any(values):
            ax.set_xscale("log")
        ax.xaxis.set_major_formatter(_tick_formatter(col))
        ax.grid(axis="x", color="#dddddd", linewidth=0.6)
        ax.set_axisbelow(True)
        ax.tick_params(axis="x", labelsize=8)
        top = max(range(len(values)), key=lambda i: values[i])
        if values[top]:
            # The largest bar says its value: the figure the lecture's point is about.
            ax.annotate(f" {_shown(col, values[top])}", (values[top], top), va="center", fontsize=8)
            ax.set_xlim(right=values[top] * (6.0 if log else 1.3))  # room for that label
    axes[0].set_yticks(list(positions), labels, fontsize=8)
    axes[0].set_ylim(len(rows) - 0.5, -0.5)  # the first row on top, as in the table
    _kind_legend(fig, kinds)
    fig.suptitle(report.name + (f": {report.source}" if report.source else ""), fontsize=11)
    return fig


def _shown(col, value) -> str:
    return col.show(value) + (" MB" if col.key.endswith("_bytes") else "")


def _kind(report, row) -> str:
    if row.path in report.scope_types and row.type not in KINDS:
        return "block"
    return KINDS.get(row.type, "other")


def _kind_legend(fig, kinds) -> None:
    from matplotlib.patches import Patch

    shown = [k for k in KIND_COLOURS if k in kinds]
    fig.legend([Patch(color=KIND_COLOURS[k]) for k in shown], shown, loc="outside lower center", ncols=len(shown),
               fontsize=8, frameon=False)


def _tick_formatter(col):
    """Tick labels in the panel's unit: MB for byte columns (as the table's), 20M, 1.5G for counts."""
    from matplotlib.ticker import FuncFormatter

    if col.key.endswith("_bytes"):
        return FuncFormatter(lambda v, _: f"{v / 1e6:g}")

    def count(v, _):
        for scale, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
            if abs(v) >= scale:
                return f"{v / scale:g}{prefix}"
        return f"{v:g}"
    return FuncFormatter(count)


def compare_chart(items):
    """Top-1 accuracy against MACs, bubble area = parameters; ``items`` is (report, accuracy) pairs,
    accuracy the spec's ``accuracy:`` mapping."""
    if not items:
        raise PlotError("nothing to compare")
    fig = _figure(9.0, 6.0)
    ax = fig.subplots()
    colours = _palette(len(items))
    for (report, acc), colour in zip(items, colours):
        t = report.totals
        ax.scatter([t.macs], [acc["top1"]], s=t.params / 1e6 * POINTS2_PER_MPARAM, color=colour, alpha=0.55,
                   edgecolors="black", linewidths=0.6, zorder=3)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(_tick_formatter(COLUMNS["macs"]))
    ax.set_xlabel("MACs per sample (log scale)")
    ax.set_ylabel("top-1 accuracy on ImageNet (%)")
    ax.grid(color="#dddddd", linewidth=0.6, which="both")
    ax.set_axisbelow(True)
    accs = [acc["top1"] for _, acc in items]
    ax.set_ylim(min(accs) - 4, max(accs) + 4)
    macs = [r.totals.macs for r, _ in items]
    ax.set_xlim(min(macs) / 2.2, max(macs) * 2.2)
    _label_bubbles(ax, items, fig.get_size_inches())
    _bubble_legend(ax, [r.totals.params for r, _ in items])
    ax.set_title("Top-1 accuracy vs MACs (bubble area = parameters)", fontsize=11)
    fig.supxlabel("top-1: published figures, each with its source in the spec's accuracy: key", fontsize=7,
                  color="#555555")
    return fig


def _label_bubbles(ax, items, size_inches) -> None:
    """Each name beside its bubble, on the side (right, left, above, below) that covers the fewest
    other bubbles and labels: layout in approximate points, before matplotlib lays the figure out."""
    import math

    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    width, height = size_inches[0] * 72 * 0.85, size_inches[1] * 72 * 0.8  # the axes' share of the figure

    def at(x, y):
        return ((math.log(x) - math.log(x0)) / (math.log(x1) - math.log(x0)) * width, (y - y0) / (y1 - y0) * height)

    bubbles = []
    for report, acc in items:
        cx, cy = at(report.totals.macs, acc["top1"])
        bubbles.append((cx, cy, math.sqrt(report.totals.params / 1e6 * POINTS2_PER_MPARAM / math.pi)))
    boxes = [(cx - r, cy - r, cx + r, cy + r) for cx, cy, r in bubbles]
    placed: list = []
    for (report, acc), (cx, cy, r) in zip(items, bubbles):
        w, h = 5.4 * len(report.name), 11.0
        sides = {  # offset of the text anchor in points, alignment, the label's box
            "right": ((r + 3, 0), "left", "center", (cx + r + 3, cy - h / 2, cx + r + 3 + w, cy + h / 2)),
            "left": ((-r - 3, 0), "right", "center", (cx - r - 3 - w, cy - h / 2, cx - r - 3, cy + h / 2)),
            "above": ((0, r + 2), "center", "bottom", (cx - w / 2, cy + r + 2, cx + w / 2, cy + r + 2 + h)),
            "below": ((0, -r - 2), "center", "top", (cx - w / 2, cy - r - 2 - h, cx + w / 2, cy - r - 2)),
        }

        def cost(side):
            box = sides[side][3]
            outside = box[0] < 0 or box[2] > width or box[1] < 0 or box[3] > height
            return sum(_overlap(box, b) for b in boxes + placed) + (1e6 if outside else 0)
        best = min(sides, key=cost)
        offset, ha, va, box = sides[best]
        placed.append(box)
        ax.annotate(report.name, (report.totals.macs, acc["top1"]), textcoords="offset points", xytext=offset, ha=ha,
                    va=va, fontsize=9, zorder=4)


def _overlap(a, b) -> float:
    return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))


def _palette(n: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def _bubble_legend(ax, params) -> None:
    reference = [p for p in (1e6, 5e6, 25e6, 100e6) if p <= max(params) * 1.5] or [max(params)]
    handles = [ax.scatter([], [], s=p / 1e6 * POINTS2_PER_MPARAM, color="#bbbbbb", edgecolors="black",
                          linewidths=0.6) for p in reference]
    ax.legend(handles, [f"{_tick_formatter(COLUMNS['params'])(p, None)} params" for p in reference], loc="lower right",
              labelspacing=2.2, borderpad=1.4, handletextpad=1.5, fontsize=8, title="bubble area", title_fontsize=8,
              framealpha=0.9)
