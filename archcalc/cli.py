"""The command line: parse options, call the library, render, choose the exit code. No arithmetic.

Exit codes: 0 success, 1 a check failed, 2 bad input (spec, option or file).
"""
from __future__ import annotations

import atexit
import gc
import sys

import click

from .units import DTYPE_BYTES

FORMAT_CHOICE = click.Choice(["table", "md", "csv", "json"])

# At exit the interpreter runs one more full garbage collection over everything the imports made
# (click, rich, yaml, the spec and report) before it tears the modules down. Freezing those objects
# first skips that pass: ~15 ms of a ~120 ms `archcalc table vgg16`. Output is flushed as usual;
# what is skipped is only the collection of reference cycles, which the OS reclaims with the process.
atexit.register(gc.freeze)


def _fail(err) -> None:
    click.echo(f"archcalc: {err}", err=True)
    sys.exit(2)


def _shape(ctx, param, value):
    if value is None:
        return None
    from .shape import ShapeError, parse_shape

    try:
        return parse_shape(value)
    except ShapeError as e:
        raise click.BadParameter(str(e)) from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="archcalc")
@click.option("--limit", "limits", multiple=True, metavar="NAME=VALUE", envvar="ARCHCALC_LIMITS",
              help="Raise a bound on what a spec may cost (docs/limits.md); repeatable. "
                   "Env: ARCHCALC_LIMITS (space-separated).")
def main(limits) -> None:
    """Static CNN-architecture analyzer: shapes, parameters, MACs, memory, receptive fields.

    SPEC is a bundled network name (see `archcalc list`) or a path to a YAML spec.
    """
    if limits:
        from .limits import set_limits

        try:
            set_limits(limits)
        except ValueError as e:
            raise click.BadParameter(str(e), param_hint="--limit") from None


@main.command()
@click.argument("spec")
@click.option("--input", "input_shape", callback=_shape, metavar="CxHxW", help="Override the spec's input shape.")
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
def table(spec, input_shape, batch, dtype, depth, fmt, columns, strict, width, variant):
    """Per-layer table of SPEC with totals."""
    from . import analyze, load
    from .formats import render
    from .formats.columns import parse_columns
    from .report import collapse
    from .spec import SpecError

    try:
        cols = parse_columns(columns)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--columns") from None
    try:
        report = analyze(load(spec, variant=variant), input_shape=input_shape, batch=batch, dtype=dtype, strict=strict)
    except SpecError as e:
        _fail(e)
    rows = collapse(report, depth) if depth else list(report.rows)
    click.echo(render(fmt, report, rows, cols, width=width), nl=False)


@main.command("list")
@click.option("--format", "fmt", default="table", show_default=True, type=FORMAT_CHOICE)
def list_(fmt):
    """The bundled specs: name, source, params, MACs."""
    from .catalog import bundled_summaries, render_summaries
    from .spec import SpecError

    try:
        click.echo(render_summaries(bundled_summaries(), fmt), nl=False)
    except SpecError as e:
        _fail(e)


@main.command()
@click.argument("specs", nargs=-1)
@click.option("-v", "--verbose", is_flag=True, help="Show every checked number, not only failures.")
def check(specs, verbose):
    """Verify the `expect:` numbers of SPECS (default: every bundled spec).

    A spec that is bad input is reported on one line of stderr and the others are still checked
    (a folder of submissions). Exit code: 2 if any spec was bad input, else 1 if any expected
    number was not reproduced, else 0.
    """
    from .check import check as run_check
    from .spec import SpecError, bundled_names, load

    failed = 0
    total = 0
    bad_input = 0
    for name, variant in _members(specs) if specs else [(n, None) for n in bundled_names()]:
        try:
            spec = load(name, variant=variant)
            outcomes = run_check(spec)
        except SpecError as e:
            click.echo(f"archcalc: {e}", err=True)
            bad_input += 1
            continue
        bad = [o for o in outcomes if not o.ok]
        total += len(outcomes)
        failed += len(bad)
        status = "ok  " if not bad else "FAIL"
        click.echo(f"{status} {spec.name}: {len(outcomes) - len(bad)}/{len(outcomes)} expected numbers")
        for o in outcomes if verbose else bad:
            mark = "   " if o.ok else "  x"
            click.echo(f"{mark} {spec.file}:{o.line}: {o.where}: {o.key} expected {o.expected!r}, got {o.actual!r}")
    click.echo(f"{total - failed} of {total} expected numbers reproduced"
               + (f"; {bad_input} spec(s) could not be read" if bad_input else ""))
    sys.exit(2 if bad_input else 1 if failed else 0)


def _members(specs):
    """(name or path, variant) to check: every member of a family file, the first one included; a
    file that cannot be read is passed on as it is, to be reported with the others."""
    from .spec import SpecError, bundled_names, load

    bundled = set(bundled_names())
    for name in specs:
        if name in bundled:  # a bundled member is checked by its own name
            yield name, None
            continue
        try:
            family = load(name)
        except SpecError:
            yield name, None
            continue
        yield name, None
        for member in family.variants:
            yield name, member
