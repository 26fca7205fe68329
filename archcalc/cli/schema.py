"""`archcalc schema`: the JSON Schema of spec files, for editors (docs/schema.md)."""
from __future__ import annotations

import click


@click.command("schema")
@click.option("--path", "show_path", is_flag=True,
              help="Print where the installed package keeps its copy (spec.schema.json) instead of the schema.")
def command(show_path):
    """Print the JSON Schema of spec files, generated from the layer registry.

    Point yaml-language-server at it (a `# yaml-language-server: $schema=PATH` line at the top of
    a spec, or VS Code's yaml.schemas setting) to complete and check specs as you type:
    `archcalc schema > spec.schema.json`. See docs/schema.md.
    """
    from ..schema import SHIPPED, text

    click.echo(SHIPPED if show_path else text(), nl=show_path)
