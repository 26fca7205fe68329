"""`archcalc explain SPEC LAYER`: the derivation of a layer's (block's, range's) figures, numbers plugged in."""
from __future__ import annotations

import json

import click

from . import fail, shape_option
from ..units import DTYPE_BYTES


@click.command("explain")
@click.argument("spec")
@click.argument("layer")
@click.option("--input", "input_shape", callback=shape_option, metavar="CxHxW", help="Override the spec's input shape.")
@click.option("--batch", default=1, show_default=True, type=click.IntRange(min=1), help="Batch size (scales bytes).")
@click.option("--dtype", default="fp32", show_default=True, type=click.Choice(list(DTYPE_BYTES)))
@click.option("--variant", metavar="NAME", help="A member of the family a spec file declares under variants:.")
@click.option("--format", "fmt", default="text", show_default=True, type=click.Choice(["text", "json"]),
              help="json: the target, its exact figures and the derivation's lines by section (docs/teaching.md).")
def command(spec, layer, input_shape, batch, dtype, variant, fmt):
    """How LAYER's output size, parameters, MACs, memory, saved tensors and receptive field come about.

    LAYER: a layer's path or name, a block or branch, a range FIRST..LAST in table order, or total.
    """
    from .. import analyze, load
    from ..spec import SpecError
    from ..teach import TeachError
    from ..teach.explain import explain, explain_dict
    from ..teach.target import resolve

    try:
        report = analyze(load(spec, variant=variant), input_shape=input_shape, batch=batch, dtype=dtype)
    except SpecError as e:
        fail(e)
    try:
        target = resolve(report, layer)
    except TeachError as e:
        fail(e)
    if fmt == "json":
        click.echo(json.dumps(explain_dict(report, target), indent=2))
        return
    click.echo(explain(report, target), nl=False)
