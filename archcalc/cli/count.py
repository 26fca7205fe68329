"""`archcalc count SPEC`: the totals FLOP-counting tools print for SPEC, side by side (presets.py)."""
from __future__ import annotations

import click

from . import FORMAT_CHOICE, fail, shape_option


@click.command("count")
@click.argument("spec")
@click.option("--preset", "names", metavar="NAME,...", default="all", show_default=True,
              help="Presets to show: archcalc, flop_counter, fvcore, ptflops, thop, torchinfo, xla, or all.")
@click.option("--input", "input_shape", callback=shape_option, metavar="CxHxW", help="Override the spec's input shape.")
@click.option("--variant", metavar="NAME", help="A member of the family a spec file declares under variants:.")
@click.option("--format", "fmt", default="table", show_default=True, type=FORMAT_CHOICE)
def command(spec, names, input_shape, variant, fmt):
    """What each FLOP-counting tool prints for SPEC at batch 1, and why it differs from archcalc's MACs.

    fvcore's "flops", ptflops' and thop's "MACs" and torchinfo's "mult-adds" are MAC counts with
    different extras (batch norm, biases, activations, pooling); flop_counter (PyTorch's
    FlopCounterMode) and xla count two FLOPs per MAC, XLA without the multiplies on zero padding.
    docs/counting.md explains each; tests/test_presets.py checks them against the tools.
    """
    from .. import analyze, load
    from ..presets import PRESETS, count, render
    from ..spec import SpecError

    wanted = list(PRESETS) if names == "all" else [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in wanted if n not in PRESETS] or ([] if wanted else [repr(names)])
    if unknown:
        raise click.BadParameter(f"unknown preset {', '.join(unknown)}; known: {', '.join(PRESETS)}, all",
                                 param_hint="--preset")
    try:
        report = analyze(load(spec, variant=variant), input_shape=input_shape)
    except SpecError as e:
        fail(e)
    click.echo(render([count(report, n) for n in wanted], fmt), nl=False)
