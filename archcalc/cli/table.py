"""`archcalc table SPEC`: the per-layer table (or md, csv, json) with totals."""
from __future__ import annotations

import click

from . import FORMAT_CHOICE, fail, shape_option
from ..units import DTYPE_BYTES


@click.command("table")
@click.argument("spec")
@click.option("--input", "input_shape", callback=shape_option, metavar="CxHxW", help="Override the spec's input shape.")
@click.option("--batch", default=1, show_default=True, type=click.IntRange(min=1), help="Batch size (scales activation bytes).")
@click.option("--dtype", default="fp32", show_default=True, type=click.Choice(list(DTYPE_BYTES)))
@click.option("--depth", type=click.IntRange(min=1), help="Collapse blocks deeper than this into their totals.")
@click.option("--format", "fmt", default="table", show_default=True, type=FORMAT_CHOICE)
@click.option("--columns", metavar="A,B,...",
              help="Comma-separated columns, named as the JSON keys: path, name, type, out, params, weight_params, "
                   "bias_params, buffer_elems, macs, flops, other_ops, connections, out_elems, out_bytes, "
                   "saved_elems, saved_bytes, rf, jump. Default: path, out, params, macs, out_elems, saved_elems, rf.")
@click.option("--strict", is_flag=True, help="Make a non-integer output size an error instead of a warning.")
@click.option("--width", type=int, help="Table width in characters (default: the terminal's).")
@click.option("--variant", metavar="NAME", help="A member of the family a spec file declares under variants:.")
def command(spec, input_shape, batch, dtype, depth, fmt, columns, strict, width, variant):
    """Per-layer table of SPEC with totals."""
    from .. import analyze, load
    from ..formats import render
    from ..formats.columns import parse_columns
    from ..report import collapse
    from ..spec import SpecError

    try:
        cols = parse_columns(columns)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--columns") from None
    try:
        report = analyze(load(spec, variant=variant), input_shape=input_shape, batch=batch, dtype=dtype, strict=strict)
    except SpecError as e:
        fail(e)
    rows = collapse(report, depth) if depth else list(report.rows)
    click.echo(render(fmt, report, rows, cols, width=width), nl=False)
