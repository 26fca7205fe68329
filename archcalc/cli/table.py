"""`archcalc table SPEC`: the per-layer table (or md, csv, json) with totals."""
from __future__ import annotations

import click

from . import TABLE_FORMAT_CHOICE, fail, shape_option
from ..units import DTYPE_BYTES


@click.command("table")
@click.argument("spec")
@click.option("--input", "input_shape", callback=shape_option, metavar="CxHxW", help="Override the spec's input shape.")
@click.option("--batch", default=1, show_default=True, type=click.IntRange(min=1), help="Batch size (scales activation bytes).")
@click.option("--dtype", default="fp32", show_default=True, type=click.Choice(list(DTYPE_BYTES)))
@click.option("--depth", type=click.IntRange(min=1), help="Collapse blocks deeper than this into their totals.")
@click.option("--format", "fmt", default="table", show_default=True, type=TABLE_FORMAT_CHOICE,
              help="html: one self-contained page (table, totals, notes, the per-layer chart with matplotlib).")
@click.option("--columns", metavar="A,B,...",
              help="Comma-separated columns, named as the JSON keys: path, name, type, out, params, weight_params, "
                   "bias_params, buffer_elems, macs, flops, other_ops, connections, out_elems, out_bytes, "
                   "saved_elems, saved_bytes, rf, jump, links. Default: path, out, params, macs, out_elems, saved_elems, "
                   "rf.")
@click.option("--strict", is_flag=True, help="Make a non-integer output size an error instead of a warning.")
@click.option("--width", type=int, help="Table width in characters (default: the terminal's).")
@click.option("--variant", metavar="NAME", help="A member of the family a spec file declares under variants:.")
@click.option("--style", type=click.Choice(["cs231n", "eecs498"]),
              help="Print the table as a lecture does: cs231n (lecture 9's VGG-16 slide) or eecs498 (lecture 8's tables).")
@click.option("--units", metavar="UNIT", help="Unit of the byte columns: B, KB, MB, GB (10^3), KiB, MiB, GiB (2^10), "
              "or eecs (EECS 498's KB = 1,024 B).")
@click.option("--sig", type=click.IntRange(min=1), help="Round count columns to N significant figures (3.2M, 800K).")
@click.option("--order", type=click.Choice(["chw", "hwc"]), default="chw", show_default=True, help="Shape order.")
@click.option("--hide", metavar="TYPE,...", default="", help="Leave rows of these types out of the table (dropout,lrn,...); totals keep them.")
@click.option("--weights-only", is_flag=True, help="Params without biases (the CS231n slides' count).")
@click.option("--rows", "row_range", metavar="FIRST..LAST", help="Only these rows (in table order, or a block), with their subtotal.")
@click.option("--subtotal", metavar="TYPE,...", default="", help="Subtotals of the rows of these types (conv,fc).")
@click.option("--count", "preset", metavar="PRESET",
              help="After the table, the total a FLOP counter prints and why it differs from the MACs: fvcore, ptflops, "
                   "thop, torchinfo, flop_counter, xla (docs/counting.md; `archcalc count` shows them side by side).")
def command(spec, input_shape, batch, dtype, depth, fmt, columns, strict, width, variant, style, units, sig, order, hide,
            weights_only, row_range, subtotal, preset):
    """Per-layer table of SPEC with totals.

    Columns may carry a fixed unit, KEY:UNIT (params:k, macs:M, out_bytes:eecs), or be a share of
    the total, KEY:% (params:%).
    """
    from .. import analyze, load
    from ..formats import render
    from ..report import collapse
    from ..spec import SpecError

    # The lecture options need the style module; a plain table (the common `archcalc table vgg16`)
    # does not import it.
    plain = not (style or units or sig or order != "chw" or hide or weights_only or row_range or subtotal
                 or (columns and ":" in columns))
    if plain:
        from ..formats.columns import parse_columns as parse

        view = None
    else:
        from ..formats.styles import View, parse as parse_view

        view = View(units=units, sig=sig, order=order, hide=_names(hide), weights_only=weights_only, rows=row_range,
                    subtotals=_names(subtotal))

        def parse(text):
            return parse_view(text, view)
    if style and fmt != "table":
        raise click.BadParameter(f"a lecture style is printed as text; not with --format {fmt}", param_hint="--style")
    if preset:
        from ..presets import PRESETS

        if preset not in PRESETS:
            raise click.BadParameter(f"unknown preset {preset!r}; known: {', '.join(PRESETS)}", param_hint="--count")
        if fmt in ("json", "html", "csv"):
            raise click.BadParameter(f"--count adds lines of text after the table; not with --format {fmt}", param_hint="--count")
    try:
        cols = parse(columns)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--columns/--units") from None
    try:
        report = analyze(load(spec, variant=variant), input_shape=input_shape, batch=batch, dtype=dtype, strict=strict)
    except SpecError as e:
        fail(e)
    rows = collapse(report, depth) if depth else list(report.rows)
    try:
        if plain:
            click.echo(render(fmt, report, rows, cols, width=width), nl=False)
        elif style:
            from ..formats.styles import render_style
            from ..known import lecture_lines

            click.echo(render_style(style, report, rows, view, lecture_lines(report, style)), nl=False)
        else:
            from ..formats.styles import render_view

            click.echo(render_view(fmt, report, rows, cols, view, render, width=width), nl=False)
    except ValueError as e:
        fail(e)
    if preset:
        from ..presets import count, lines

        click.echo("\n".join(lines(count(report, preset))))


def _names(text: str) -> tuple[str, ...]:
    return tuple(t.strip() for t in text.split(",") if t.strip())
