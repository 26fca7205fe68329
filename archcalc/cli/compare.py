"""`archcalc compare ITEM ITEM ...`: networks or ranges of rows side by side, with ratios."""
from __future__ import annotations

import click

from . import FORMAT_CHOICE, fail, shape_option


@click.command("compare")
@click.argument("items", nargs=-1, required=True)
@click.option("--input", "input_shape", callback=shape_option, metavar="CxHxW", help="Override every spec's input shape.")
@click.option("--format", "fmt", default="table", show_default=True, type=FORMAT_CHOICE)
@click.option("--lecture", is_flag=True, help="Also print what the lectures printed for these items (the catalogue), "
              "each checked: pass or erratum with its explanation.")
def command(items, input_shape, fmt, lecture):
    """Totals side by side: params, MACs, depth, forward and saved memory, with ratios to the first.

    An ITEM is SPEC (the whole network) or SPEC:FIRST..LAST, a range of rows in table order
    (googlenet:conv1..pool2 vgg16:conv1_1..pool3: EECS 498's stem comparison).
    """
    from ..compare import figures, render
    from ..spec import SpecError

    try:
        got = [figures(i, input_shape=input_shape) for i in items]
    except (SpecError, ValueError) as e:
        fail(e)
    click.echo(render(got, fmt), nl=False)
    if lecture:
        from ..known import comparison_lines

        for line in comparison_lines(items):
            click.echo(line)
