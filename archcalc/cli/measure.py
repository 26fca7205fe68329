"""`archcalc measure SPEC --framework torch --batch B`: one training step of the built model under
PyTorch's FakeTensorMode and MemTracker, beside archcalc's prediction. Needs the torch extra."""
from __future__ import annotations

import json

import click

from . import fail


@click.command("measure")
@click.argument("spec")
@click.option("--framework", default="torch", show_default=True, type=click.Choice(["torch"]))
@click.option("--batch", default=1, show_default=True, type=click.IntRange(min=1))
@click.option("--optimizer", default="sgd", show_default=True, type=click.Choice(["sgd", "momentum", "adam", "adamw"]))
@click.option("--inference", is_flag=True, help="Measure an inference pass under torch.no_grad() instead.")
@click.option("--variant", metavar="NAME", help="A member of the family a spec file declares under variants:.")
@click.option("--format", "fmt", default="table", show_default=True, type=click.Choice(["table", "json"]))
def command(spec, framework, batch, optimizer, inference, variant, fmt):
    """Measured (PyTorch's MemTracker, allocating nothing) against predicted (archcalc fit)."""
    from .. import cost, expand, load
    from ..build import BuildError
    from ..fit import EXACT, fit
    from ..spec import SpecError

    try:
        graph = expand(load(spec, variant=variant))
        report = cost(graph, batch=batch)
    except SpecError as e:
        fail(e)
    try:
        from ..build.torch import measure_graph
    except ImportError as e:
        fail(f"measure needs PyTorch (pip install 'archcalc[torch]'): {e}")
    try:
        m = measure_graph(graph, batch=batch, optimizer=optimizer, train=not inference)
    except BuildError as e:
        fail(e)
    f = fit(report, batch=batch, optimizer=optimizer, train=not inference, constants=EXACT)
    predicted = {i.name: i.bytes for i in f.items}
    # archcalc's items as MemTracker's categories (Adam's step temporaries are "Optstate" there)
    pred = {
        "params": predicted.get("weights", 0), "buffers": predicted.get("buffers", 0),
        "grads": predicted.get("gradients", 0),
        "optimizer": predicted.get("optimizer state", 0) + predicted.get("optimizer temporaries", 0),
        "activations": predicted.get("saved activations", 0) + predicted.get("activations", 0),
        "temps": predicted.get("activation gradients", 0), "input": predicted.get("input", 0),
        "total": f.peak_bytes,
    }
    data = {"name": report.name, "framework": framework, "batch": batch, "mode": m["mode"],
            "optimizer": m["optimizer"], "params": {"measured": m["params"], "predicted": report.totals.params},
            "peak_phase": {"measured": m["phase"], "predicted": f.phase},
            "peak": {k: {"measured": v, "predicted": pred[k]} for k, v in m["peak"].items()}}
    if "saved_bytes" in m:
        data["saved_bytes"] = {"measured": m["saved_bytes"], "predicted": report.saved_bytes}
    if fmt == "json":
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(f"{report.name}: one {'inference pass' if inference else 'training step (' + optimizer + ')'}, "
               f"batch {batch}, fp32; measured with PyTorch's MemTracker under FakeTensorMode")
    click.echo(f"  params        {m['params']:>16,}  {report.totals.params:>16,}")
    if "saved_bytes" in m:
        click.echo(f"  saved bytes   {m['saved_bytes']:>16,}  {report.saved_bytes:>16,}")
    click.echo(f"  {'peak item':<12}  {'measured MiB':>16}  {'predicted MiB':>16}  {'error':>7}")
    for k, v in data["peak"].items():
        p = v["predicted"]
        err = f"{100 * (p / v['measured'] - 1):+.1f}%" if v["measured"] else ""
        click.echo(f"  {k:<12}  {v['measured'] / 2**20:>16,.1f}  {p / 2**20:>16,.1f}  {err:>7}")
    click.echo(f"  peak at       {m['phase']:>16}  {f.phase}")
