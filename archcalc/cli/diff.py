"""`archcalc diff SPEC_A SPEC_B`: layer by layer and in total, what differs between two networks."""
from __future__ import annotations

import click

from . import FORMAT_CHOICE, fail, shape_option
from ..units import DTYPE_BYTES

DEFAULT_COLUMNS = "path,type,out,params,macs,out_elems,saved_elems,rf"


@click.command("diff")
@click.argument("spec_a")
@click.argument("spec_b")
@click.option("--variant", "variants", multiple=True, metavar="NAME",
              help="A member of a family file (variants:): once for both specs, or twice (A's, then B's).")
@click.option("--input", "input_shape", callback=shape_option, metavar="CxHxW", help="Override both specs' input shape.")
@click.option("--batch", default=1, show_default=True, type=click.IntRange(min=1), help="Batch size (scales activation bytes).")
@click.option("--dtype", default="fp32", show_default=True, type=click.Choice(list(DTYPE_BYTES)))
@click.option("--depth", type=click.IntRange(min=1), help="Collapse blocks deeper than this into their totals, then compare.")
@click.option("--format", "fmt", default="table", show_default=True, type=FORMAT_CHOICE)
@click.option("--columns", metavar="A,B,...", help=f"Columns of the rows shown, named as the JSON keys (as in `archcalc table`). "
              f"Default: {DEFAULT_COLUMNS.replace(',', ', ')}.")
@click.option("--ignore", metavar="KEY,...", default="",
              help="Figures not compared: any of path, args, type, out, params, weight_params, bias_params, buffer_elems, "
                   "macs, other_ops, out_elems, saved_elems, rf, jump (e.g. rf,jump).")
@click.option("--all", "all_rows", is_flag=True, help="Also show the rows that are the same.")
@click.option("--exit-code", is_flag=True, help="Exit 1 when the networks differ, 0 when they do not (as git diff).")
@click.option("--width", type=int, help="Table width in characters (default: the terminal's).")
def command(spec_a, spec_b, variants, input_shape, batch, dtype, depth, fmt, columns, ignore, all_rows, exit_code, width):
    """Per-layer and total differences of SPEC_A and SPEC_B, rows aligned by path.

    Rows are marked - (only in A), + (only in B) or ~ (in both, with different figures or
    arguments); a differing cell reads A -> B. Where paths differ (a renamed layer) rows are aligned
    by layer type in sequence. Totals follow, with B - A and B / A. Exit 0 when the diff ran
    (with --exit-code: 1 when the networks differ), 2 on bad input.

    resnet50 resnet50_tv: v1 against v1.5 (the stride moved from the 1x1 to the 3x3);
    vgg16 vgg16_bn; old.yaml new.yaml: a network before and after an edit.
    """
    from .. import analyze, load
    from ..diff import diff
    from ..formats.columns import parse_columns
    from ..formats.diff import render
    from ..report import collapse
    from ..spec import SpecError

    if len(variants) > 2:
        raise click.BadParameter("give --variant once (both specs) or twice (A's, then B's)", param_hint="--variant")
    variant_a, variant_b = (variants * 2)[:2] if variants else (None, None)
    ignored = [k.strip() for k in ignore.split(",") if k.strip()]
    if not columns:  # the default columns leave out what is not compared
        columns = ",".join(c for c in DEFAULT_COLUMNS.split(",") if c not in ignored)
    try:
        cols = parse_columns(columns)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--columns") from None
    reports = []
    try:
        for spec, variant in ((spec_a, variant_a), (spec_b, variant_b)):
            reports.append(analyze(load(spec, variant=variant), input_shape=input_shape, batch=batch, dtype=dtype))
    except SpecError as e:
        fail(e)
    a, b = reports
    label_a, label_b = _label(spec_a, variant_a), _label(spec_b, variant_b)
    if label_a == label_b:
        label_a, label_b = f"{label_a} (A)", f"{label_b} (B)"
    try:
        d = diff(a, b, rows_a=collapse(a, depth) if depth else None, rows_b=collapse(b, depth) if depth else None,
                 label_a=label_a, label_b=label_b, ignore=ignored)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--ignore") from None
    click.echo(render(d, cols, fmt, all_rows=all_rows, width=width), nl=False)
    if exit_code and d.differ:
        raise SystemExit(1)


def _label(spec: str, variant: str | None) -> str:
    return f"{spec}:{variant}" if variant else spec
