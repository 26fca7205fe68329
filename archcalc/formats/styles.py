"""How a table is shown: the general options of `archcalc table`, and the lecture styles built from them.

The general options change only what is shown, never a number of the report:

- ``KEY:UNIT`` columns (``params:k``, ``macs:M``, ``out_bytes:KiB``, ``out_bytes:eecs``): the exact
  value as a whole number in one fixed unit, rounded half up (EECS 498's "params (k)", "flop (M)",
  "memory (KB)"); ``KEY:%`` is the row's share of the network's total;
- ``units`` (``--units``): the unit of every byte column, ``B``, ``KB``/``MB``/``GB`` (10^3),
  ``KiB``/``MiB``/``GiB`` (2^10) or ``eecs`` (EECS 498's "KB" = 1,024 B);
- ``sig`` (``--sig N``): count columns rounded to N significant figures, written as the slides
  write them (``3.2M``, ``800K``: see ``units.slide_round``);
- ``order`` (``--order hwc``): shapes as HxWxC, the CS231n slides' order;
- ``hide`` (``--hide dropout,lrn``): rows of these types left out of the table (not of the totals);
- ``weights_only`` (``--weights-only``): the params column counts weights, not biases;
- ``rows`` (``--rows conv1..pool2``): a range of rows in table order (or a block's rows), with its
  subtotal under the table;
- ``subtotals`` (``--subtotal conv,fc``): subtotals of the rows of these types.

The sums under a table (a range's subtotal, the rows of some types, the lecture's flop: window
elements for a pool) are the report layer's (``report.subtotal``, ``report.lecture_flop``); this
module only chooses rows and shows figures.

A *style* (``STYLES``) is a set of these options plus a layout: ``cs231n`` prints the CS231n
lecture 9 VGG-16 slide's lines, ``eecs498`` the EECS 498 lecture 8 tables (AlexNet, VGG,
GoogLeNet's stem). What a slide printed that archcalc does not reproduce (a slip) comes from the
known-numbers catalogue (``known.py``) as ``lecture`` lines, each with its explanation.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from fractions import Fraction

from ..report import POOL_TYPES, lecture_flop, subtotal
from ..shape import elems, fmt_shape
from ..units import BYTE_UNITS, slide_round
from .columns import COLUMNS, Column, note_lines, parse_columns, summary_lines, warning_lines
from .text import draw

# Fixed units of count columns, and of byte columns ("eecs": EECS 498's KB = 1,024 B).
COUNT_UNITS = {"k": 10**3, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
BYTE_COLUMN_UNITS = {**BYTE_UNITS, "eecs": 2**10}
BYTE_LABELS = {"eecs": "KB"}
BYTE_KEYS = ("out_bytes", "saved_bytes")
COUNT_KEYS = ("params", "weight_params", "bias_params", "buffer_elems", "macs", "flops", "other_ops", "connections",
              "out_elems", "saved_elems")


@dataclass(frozen=True)
class View:
    """The general display options (see the module doc)."""

    units: str | None = None
    sig: int | None = None
    order: str = "chw"
    hide: tuple[str, ...] = ()
    weights_only: bool = False
    rows: str | None = None
    subtotals: tuple[str, ...] = ()


def half_up(x) -> int:
    """A non-negative exact number rounded to a whole number, half up (253.5 -> 254)."""
    x = Fraction(x)
    return (x.numerator * 2 + x.denominator) // (x.denominator * 2)


def fixed(n, size: int) -> str:
    """``n`` in units of ``size``, a whole number half up, with thousands separators: the EECS 498
    table's "params (k)" 37,752,832 -> '37,753'."""
    return f"{half_up(Fraction(n) / size):,}"


def byte_unit(unit: str) -> tuple[int, str]:
    if unit not in BYTE_COLUMN_UNITS:
        raise ValueError(f"unknown byte unit {unit!r}; known: {', '.join(BYTE_COLUMN_UNITS)}")
    return BYTE_COLUMN_UNITS[unit], BYTE_LABELS.get(unit, unit)


# ---------------------------------------------------------------- columns


def parse(text: str | None, view: View = View()) -> list[Column]:
    """``--columns`` with ``KEY:UNIT`` and ``KEY:%`` items, then the view's changes."""
    items = [k.strip() for k in (text or "").split(",") if k.strip()]
    if view.units:
        byte_unit(view.units)  # refused even when no byte column is shown: a typo is not ignored
    if not items:
        return apply_view(parse_columns(text), view)
    out = []
    for item in items:
        key, _, unit = item.partition(":")
        column = parse_columns(key)[0]
        if view.weights_only and key == "params":
            column = _weights_as_params(column)
        if unit:
            column = fixed_column(column, unit.strip())
        elif view.units and key in BYTE_KEYS:
            column = bytes_column(column, view.units)
        elif view.sig and key in COUNT_KEYS:
            column = sig_column(column, view.sig)
        elif key == "out" and view.order == "hwc":
            column = hwc_column(column)
        out.append(column)
    return out


def apply_view(columns: list[Column], view: View) -> list[Column]:
    return parse(",".join(c.key for c in columns), view)


def _weights_as_params(column: Column) -> Column:
    w = COLUMNS["weight_params"]
    return replace(w, title="params (weights)")


def fixed_column(column: Column, unit: str) -> Column:
    if unit == "%":
        if column.total is None:
            raise ValueError(f"column {column.key!r} has no total to take a share of")
        return replace(column, title=f"{column.title} %", total=lambda rep: 100,
                       value=lambda r, rep, c=column: _share(c.value(r, rep), c.total(rep)),
                       show=lambda v: f"{float(v):.1f}%")
    if column.key in BYTE_KEYS:
        size, label = byte_unit(unit)
        return replace(column, title=f"{column.title.split()[0]} ({label})", show=lambda v, s=size: fixed(v, s))
    if column.key not in COUNT_KEYS:
        raise ValueError(f"column {column.key!r} has no unit; KEY:UNIT is for counts and bytes")
    if unit not in COUNT_UNITS:
        raise ValueError(f"unknown count unit {unit!r}; known: {', '.join(COUNT_UNITS)}, %")
    return replace(column, title=f"{column.title} ({unit})", show=lambda v, s=COUNT_UNITS[unit]: fixed(v, s))


def _share(value, total):
    return Fraction(100 * value, total) if total else Fraction(0)


def bytes_column(column: Column, unit: str) -> Column:
    size, label = byte_unit(unit)
    title = column.title.replace("MB", label)
    return replace(column, title=title, show=lambda v, s=size: f"{v / s:,.1f}" if s > 1 else f"{v:,}")


def sig_column(column: Column, sig: int) -> Column:
    return replace(column, show=lambda v, n=sig: slide_round(v, n))


def hwc(shape) -> str:
    shape = tuple(shape)
    return "x".join(str(d) for d in (shape[1:] + shape[:1])) if len(shape) == 3 else fmt_shape(shape)


def hwc_column(column: Column) -> Column:
    return replace(column, title="output (HxWxC)", show=hwc)


# ---------------------------------------------------------------- rows


def select(report, rows, text: str) -> list:
    """The rows from FIRST to LAST (``conv1..pool2``, in table order; an end may be a block's path,
    then all its rows), or a block's rows."""
    rows = list(rows)
    first_text, sep, last_text = text.partition("..")
    first = _span(rows, first_text.strip(), report)[0]
    last = _span(rows, (last_text if sep else first_text).strip(), report)[1]
    i, j = rows.index(first), rows.index(last)
    if i > j:
        raise ValueError(f"rows {text!r}: {last.path} comes before {first.path} in the table")
    return rows[i:j + 1]


def _span(rows, key: str, report) -> tuple:
    exact = [r for r in rows if r.path == key] or [r for r in rows if r.name == key]
    if len(exact) == 1:
        return exact[0], exact[0]
    inside = [r for r in rows if r.path.startswith(key + "/")]
    if inside:
        return inside[0], inside[-1]
    shown = ", ".join(r.path for r in rows[:10]) + (", ..." if len(rows) > 10 else "")
    raise ValueError(f"no row or block {key!r} in {report.name} (rows: {shown})")


def hide(rows, types) -> list:
    return [r for r in rows if r.type not in types]


def row_types(names) -> tuple[str, ...]:
    """``--hide``/``--subtotal`` names as the rows' types (``linear`` is ``fc``); an unknown name is
    a ValueError, not an empty subtotal or nothing hidden."""
    from ..rules import known_types, lookup

    unknown = [n for n in names if lookup(n) is None]
    if unknown:
        raise ValueError(f"unknown layer type {unknown[0]!r}; known: {', '.join(known_types())}")
    return tuple(lookup(n).name for n in names)


def _typed(view: View) -> View:
    return replace(view, hide=row_types(view.hide), subtotals=row_types(view.subtotals))


def subtotal_line(report, label: str, rows, view: View) -> str:
    s = subtotal(report, rows)
    params = (f"weights {s['weight_params']:,}" if view.weights_only
              else f"params {s['params']:,} (weights {s['weight_params']:,})")
    return (f"subtotal {label} ({s['rows']} rows): {params}, MACs {s['macs']:,}, other ops {s['other_ops']:,}, "
            f"outputs {s['out_elems']:,} elements = {s['out_bytes']:,} B")


def footer_lines(report, shown, view: View) -> list[str]:
    lines = []
    if view.rows:
        lines.append(subtotal_line(report, view.rows, shown, view))
    for t in view.subtotals:
        lines.append(subtotal_line(report, t, [r for r in report.rows if r.type == t and not r.aux], view))
    return lines


def table_rows(report, rows, view: View) -> list:
    if view.rows:
        rows = select(report, rows, view.rows)
    return hide(rows, view.hide) if view.hide else list(rows)


# ---------------------------------------------------------------- styles


@dataclass(frozen=True)
class Style:
    name: str
    what: str
    view: View
    render: object = field(repr=False, default=None)  # (report, rows, lecture lines) -> text


def _label(r) -> str:
    if r.type == "input":
        return "INPUT"
    if r.type == "conv" and r.cost.window:
        return f"CONV{r.cost.window[0].k}-{r.out[0]}"
    if r.type in POOL_TYPES and r.cost.window:
        return f"POOL{r.cost.window[0].k}"
    return "FC" if r.type == "fc" else r.type.upper()


def _input_of(report, r):
    if not r.inputs:
        return r.out
    row = report.find(r.inputs[0])
    return row.out if row is not None else r.out


def _cs231n_params(report, r) -> str:
    if r.type == "input":
        return "0 (not counting biases)"
    w = r.weight_params
    if not w:
        return "0"
    x = _input_of(report, r)
    if r.type == "conv" and r.cost.window and len(x) == 3:
        k = r.cost.window[0].k
        return f"({k}*{k}*{x[0]})*{r.out[0]} = {w:,}"
    if r.type == "fc":
        fan_in = "*".join(str(d) for d in (x[1:] + x[:1])) if len(x) == 3 else str(x[0])
        return f"{fan_in}*{r.out[0]} = {w:,}"
    return f"{w:,}"


def _cs231n_line(report, r, sig: int) -> str:
    shape = r.out if len(r.out) == 3 else (r.out[0], 1, 1)
    n = r.out_elems
    memory = f"{'*'.join(str(d) for d in shape[1:] + shape[:1])}={slide_round(n, sig)}" if len(r.out) == 3 else str(n)
    return f"{_label(r)}: [{hwc(shape)}] memory: {memory} params: {_cs231n_params(report, r)}"


def render_cs231n(report, rows, lecture=(), view: View | None = None) -> str:
    """The CS231n lecture 9 VGG-16 slide: one line per layer, HxWxC, memory in elements rounded
    to two significant figures, params without biases; then the totals, the honest ones first."""
    sig = (view.sig if view and view.sig else 2)
    t = report.totals
    lines = [f"{report.name} as the CS231n lecture 9 slide prints it (memory: output elements; params: weights only)", ""]
    lines += [_cs231n_line(report, r, sig) for r in rows]
    b = report.out_bytes
    lines += [
        "",
        f"TOTAL memory: {slide_round(t.out_elems, 3)} * {report.itemsize} bytes ~= {slide_round(b, 2)}B / image "
        f"(only forward! ~*2 for bwd)",
        f"  = {t.out_elems:,} elements x {report.itemsize} B = {b:,} B = {b / 10**6:.1f} MB ({b / 2**20:.1f} MiB)",
        f"TOTAL params: {slide_round(t.weight_params, 3)} parameters",
        f"  = {t.weight_params:,} weights (+ {t.bias_params:,} biases = {t.params:,})",
    ]
    lines += _lecture_lines(lecture)
    return "\n".join(lines) + "\n"


EECS_HEADERS = ["layer", "C", "H/W", "filters", "kernel", "stride", "pad", "C", "H/W",
                "memory (KB)", "params (k)", "flop (M)"]
EECS_KB = 2**10


@dataclass(frozen=True)
class _Flatten:
    """The EECS 498 table's flatten row, between the last spatial row and the first fc."""

    path: str
    out: tuple
    inp: tuple
    type: str = "flatten"
    macs: int = 0
    other_ops: int = 0
    params: int = 0
    weight_params: int = 0
    bias_params: int = 0
    cost: object = None

    @property
    def out_elems(self) -> int:
        return elems(self.out)


def eecs_rows(report, rows) -> list:
    """The rows as the EECS 498 table lists them: a flatten row before the first fc that reads a
    feature map, unless the spec has one."""
    out = []
    for r in rows:
        if r.type == "fc":
            x = _input_of(report, r)
            if len(x) == 3 and not any(o.type == "flatten" for o in out):
                out.append(_Flatten("flatten", (elems(x),), x))
        out.append(r)
    return out


def _hw(shape) -> str:
    return "" if len(shape) != 3 else (str(shape[1]) if shape[1] == shape[2] else f"{shape[1]}x{shape[2]}")


def eecs_cells(report, r) -> list[str]:
    x = r.inp if isinstance(r, _Flatten) else _input_of(report, r)
    if r.type == "fc" and len(x) == 3:  # after the table's flatten row
        x = (elems(x),)
    window = r.cost.window if r.cost is not None and r.type != "fc" else None
    filters = str(r.out[0]) if r.type in ("conv", "fc") else ""
    k = s = p = ""
    if window:
        k, s, p = str(window[0].k), str(window[0].s), str(window[0].pad_lo)
    memory = Fraction(r.out_elems * report.itemsize, EECS_KB)
    return [r.path, str(x[0]), _hw(x), filters, k, s, p, str(r.out[0]), _hw(r.out),
            f"{half_up(memory):,}", fixed(r.params, 1000), fixed(lecture_flop(r), 10**6)]


def eecs_totals(report, rows) -> list[str]:
    """The table's sums (``report.subtotal``) in the lecture's units: over every row, and over conv
    and fc rows only (the lecture's AlexNet "1.9 MB" total leaves pool and flatten outputs out)."""
    lines = []
    for label, chosen in (("all rows", rows), ("conv and fc rows", [r for r in rows if r.type in ("conv", "fc")])):
        s = subtotal(report, chosen)
        kb = Fraction(s["out_elems"] * report.itemsize, EECS_KB)  # per image: the lecture's KB
        flop, params = s["flop"], s["params"]
        lines.append(f"total, {label}: memory {half_up(kb):,} KB = {float(kb / 1024):.2f} MB (KB = 1,024 B, MB = 1,024 KB); "
                     f"params {fixed(params, 1000)}k = {params / 1e6:.1f}M; flop {fixed(flop, 10**6)}M = "
                     f"{flop / 1e9:.2f} GFLOP (flop = multiply-adds; pools: one per window element)")
    return lines


def render_eecs498(report, rows, lecture=(), view: View | None = None) -> str:
    shown = eecs_rows(report, rows)
    cells = [eecs_cells(report, r) for r in shown]
    title = f"{report.name} as the EECS 498 lecture 8 tables print it (input {fmt_shape(report.input)})"
    footer = eecs_totals(report, shown) + _lecture_lines(lecture)
    return draw(title, EECS_HEADERS, cells, [False] + [True] * 11, footer=footer, color=False)


def _lecture_lines(lecture) -> list[str]:
    out = []
    for printed, status, explanation in lecture:
        out.append(f"lecture: {printed}" + (f"  [{status}] {explanation}" if explanation else f"  [{status}]"))
    return out


# Rows a lecture table does not list: activations, dropout, LRN, adaptive pools (a no-op at the
# lecture's input size), softmax.
_NOT_LISTED = ("relu", "relu6", "dropout", "lrn", "adaptive_avgpool", "adaptive_maxpool", "softmax", "flatten")

STYLES = {
    "cs231n": Style("cs231n", "CS231n lecture 9's VGG-16 slide: HxWxC, memory in elements to 2 significant "
                    "figures, params without biases",
                    View(sig=2, order="hwc", weights_only=True, hide=_NOT_LISTED), render_cs231n),
    "eecs498": Style("eecs498", "EECS 498 lecture 8's tables: C, H/W, filters, kernel, stride, pad, memory (KB = "
                     "1,024 B), params (k), flop (M = 10^6 multiply-adds; pools count window elements)",
                     View(units="eecs", hide=_NOT_LISTED + ("input",)), render_eecs498),
}


def style_view(style: Style, view: View) -> View:
    """The style's options with the user's own laid over them."""
    return replace(style.view, rows=view.rows or style.view.rows,
                   hide=tuple(dict.fromkeys(style.view.hide + view.hide)),
                   subtotals=view.subtotals or style.view.subtotals,
                   sig=view.sig or style.view.sig)


def render_style(name: str, report, rows, view: View = View(), lecture=()) -> str:
    if name not in STYLES:
        raise ValueError(f"unknown style {name!r}; known: {', '.join(STYLES)}")
    style = STYLES[name]
    v = style_view(style, _typed(view))
    shown = table_rows(report, rows, v)
    text = style.render(report, shown, lecture, v)
    extra = footer_lines(report, shown, v)
    return text + ("\n".join(extra) + "\n" if extra else "")


def render_view(fmt: str, report, rows, columns, view: View, render, **options) -> str:
    """A plain table with the general options: rows chosen and hidden, subtotals under it."""
    view = _typed(view)
    shown = table_rows(report, rows, view)
    text = render(fmt, report, shown, columns, **options)
    extra = footer_lines(report, shown, view) if fmt in ("table", "md") else []
    if not extra:
        return text
    return text + "\n".join(("- " if fmt == "md" else "") + line for line in extra) + "\n"


__all__ = ["View", "STYLES", "parse", "select", "hide", "subtotal", "lecture_flop", "render_style", "render_view",
           "note_lines", "summary_lines", "warning_lines"]
