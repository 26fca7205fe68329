"""`archcalc import`: an ONNX file or a torch module written as a readable spec (docs/import.md)."""
from __future__ import annotations

import click

from . import fail, shape_option


@click.command("import")
@click.argument("target")
@click.option("--input", "input_shape", callback=shape_option, metavar="CxHxW",
              help="Input of one sample for a torch module (default 3x224x224); an ONNX file has its own.")
@click.option("--name", help="The spec's name (default: the file's stem or the model's name).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), help="Write to a file instead of stdout.")
def command(target, input_shape, name, output):
    """Write TARGET as a spec: model.onnx (extra [onnx]), torchvision:NAME or module:factory
    (extra [torch], traced with torch.fx). Repeated blocks become `blocks:` with arguments."""
    from ..importers import import_model
    from ..spec import SpecError

    try:
        text = import_model(target, input_shape=input_shape, name=name)
    except SpecError as e:
        fail(e)
    except ModuleNotFoundError as e:
        extra = "onnx" if target.endswith(".onnx") else "torch"
        fail(f"{target}: archcalc import needs {e.name} (pip install 'archcalc[{extra}]')")
    if output:
        try:
            with open(output, "w", encoding="utf-8") as f:
                f.write(text)
        except OSError as e:
            fail(f"{output}: cannot write the spec: {e.strerror}")
    else:
        click.echo(text, nl=False)
