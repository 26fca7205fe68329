"""`archcalc answer SPEC LAYER QUANTITY VALUE`: judge a student's answer; exit 0 right, 1 wrong, 2 bad input."""
from __future__ import annotations

import json
import sys

import click

from . import fail, shape_option
from ..units import DTYPE_BYTES


@click.command("answer")
@click.argument("spec")
@click.argument("layer")
@click.argument("quantity")
@click.argument("value", nargs=-1, required=True)
@click.option("--input", "input_shape", callback=shape_option, metavar="CxHxW", help="Override the spec's input shape.")
@click.option("--batch", default=1, show_default=True, type=click.IntRange(min=1), help="Batch size (scales bytes).")
@click.option("--dtype", default="fp32", show_default=True, type=click.Choice(list(DTYPE_BYTES)))
@click.option("--variant", metavar="NAME", help="A member of the family a spec file declares under variants:.")
@click.option("--format", "fmt", default="text", show_default=True, type=click.Choice(["text", "json"]),
              help="json: the verdict, the exact figure and the arithmetic as one JSON object (docs/teaching.md).")
def command(spec, layer, quantity, value, input_shape, batch, dtype, variant, fmt):
    """Check VALUE as the QUANTITY of LAYER in SPEC, and show the arithmetic.

    LAYER: a layer's path or name (conv1, CONV1), a block or branch (inception_3a/3x3), a range of
    rows in table order (conv1..pool2) or total. QUANTITY: a JSON key (out, params, weight_params,
    macs, flops, out_elems, out_bytes, saved_elems, saved_bytes, rf, ...) or memory, saved, shape.
    VALUE as written by hand: 55x55x96, [55, 55, 96], 34,944, 35K, 1.1e8, 0.7 GFLOP, 96MB, 784 KB.
    Exit 0 right, 1 wrong, 2 bad input.
    """
    from .. import analyze, load
    from ..spec import SpecError
    from ..teach import TeachError
    from ..teach.answer import answer_dict, check_answer

    try:
        report = analyze(load(spec, variant=variant), input_shape=input_shape, batch=batch, dtype=dtype)
    except SpecError as e:
        fail(e)
    try:
        if fmt == "json":
            data = answer_dict(report, layer, quantity, " ".join(value))
            click.echo(json.dumps(data, indent=2))
            sys.exit(0 if data["ok"] else 1)
        verdict = check_answer(report, layer, quantity, " ".join(value))
    except TeachError as e:
        fail(e)
    click.echo(verdict.text(), nl=False)
    sys.exit(0 if verdict.ok else 1)
