"""`archcalc list`: the bundled specs, a family's members together."""
from __future__ import annotations

import click

from . import FORMAT_CHOICE, fail


@click.command("list")
@click.option("--format", "fmt", default="table", show_default=True, type=FORMAT_CHOICE)
def command(fmt):
    """The bundled specs: name, source, params, MACs."""
    from ..catalog import bundled_summaries, render_summaries
    from ..spec import SpecError

    try:
        click.echo(render_summaries(bundled_summaries(), fmt), nl=False)
    except SpecError as e:
        fail(e)
