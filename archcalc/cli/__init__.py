"""The command line: the `archcalc` group, and what its commands share. One module per command
(table.py, list_.py, check.py ...): each parses its options, calls the library, renders and
chooses the exit code. No arithmetic.

Exit codes: 0 success, 1 a check failed or an answer was wrong, 2 bad input (spec, option or file).
"""
from __future__ import annotations

import atexit
import gc
import sys
from importlib import import_module

import click


FORMAT_CHOICE = click.Choice(["table", "md", "csv", "json"])
# `table` alone also writes a web page (formats/html.py); the other commands have no HTML renderer.
TABLE_FORMAT_CHOICE = click.Choice([*FORMAT_CHOICE.choices, "html"])

# At exit the interpreter runs one more full garbage collection over everything the imports made
# (click, rich, yaml, the spec and report) before it tears the modules down. Freezing those objects
# first skips that pass: ~15 ms of a ~120 ms `archcalc table vgg16`. Output is flushed as usual;
# what is skipped is only the collection of reference cycles, which the OS reclaims with the process.
atexit.register(gc.freeze)


def fail(err) -> None:
    click.echo(f"archcalc: {err}", err=True)
    sys.exit(2)


def shape_option(ctx, param, value):
    if value is None:
        return None
    from ..shape import ShapeError, parse_shape

    try:
        return parse_shape(value)
    except ShapeError as e:
        raise click.BadParameter(str(e)) from None


# Each command is a module of this package, imported only when it runs (`archcalc table` does not
# pay for importing the others).
COMMANDS = {
    "table": "table", "list": "list_", "check": "check", "compare": "compare",  # analysis
    "diff": "diff",
    "import": "import_",  # an ONNX file or a torch module as a spec (importers/)
    "count": "count",  # what FLOP-counting tools print, side by side (presets.py)
    "answer": "answer", "explain": "explain", "quiz": "quiz",  # the lecture companion
    "fit": "fit", "measure": "measure", "gpus": "gpus",  # GPU memory
    "plot": "plot",  # pictures (the plot extra)
    "schema": "schema",  # the JSON Schema of spec files, for editors
}


class _Commands(click.Group):
    def list_commands(self, ctx):
        return sorted(COMMANDS)

    def get_command(self, ctx, name):
        module = COMMANDS.get(name)
        if module is None:
            return None
        return getattr(import_module(f".{module}", __name__), "command")


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="archcalc", prog_name="archcalc")
@click.option("--limit", "limits", multiple=True, metavar="NAME=VALUE", envvar="ARCHCALC_LIMITS",
              help="Raise a bound on what a spec may cost (docs/limits.md); repeatable. "
                   "Env: ARCHCALC_LIMITS (space-separated).")
def main(limits) -> None:
    """Static CNN-architecture analyzer: shapes, parameters, MACs, memory, receptive fields.

    SPEC is a bundled network name (see `archcalc list`) or a path to a YAML spec.
    """
    if limits:
        from ..limits import set_limits

        try:
            set_limits(limits)
        except ValueError as e:
            raise click.BadParameter(str(e), param_hint="--limit") from None
