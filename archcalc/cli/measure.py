"""`archcalc measure SPEC --framework torch|jax --batch B`: the framework's own accounting of one
training step (or inference pass) of the built model, beside archcalc's prediction.

- torch (the torch extra): PyTorch's MemTracker under FakeTensorMode (nothing allocated) against
  archcalc/fit.py with tensor bytes only (``fit.EXACT``);
- jax (the jax extra): XLA's ``cost_analysis()`` flops and ``memory_analysis()`` figures of the
  compiled step against archcalc/fit_xla.py (the ``xla`` profile) and, for flops, the ``xla``
  counting preset (archcalc/presets.py; an inference pass at batch 1, what the preset models).

No arithmetic here: errors come from ``fit.relative_error``, bytes are printed by ``units``.
"""
from __future__ import annotations

import json

import click

from . import fail


@click.command("measure")
@click.argument("spec")
@click.option("--framework", default="torch", show_default=True, type=click.Choice(["torch", "jax"]))
@click.option("--batch", default=1, show_default=True, type=click.IntRange(min=1))
@click.option("--optimizer", default="sgd", show_default=True, type=click.Choice(["sgd", "momentum", "adam", "adamw"]))
@click.option("--inference", is_flag=True, help="Measure an inference pass instead of a training step.")
@click.option("--variant", metavar="NAME", help="A member of the family a spec file declares under variants:.")
@click.option("--format", "fmt", default="table", show_default=True, type=click.Choice(["table", "json"]))
def command(spec, framework, batch, optimizer, inference, variant, fmt):
    """Measured (the framework's own accounting) against predicted (archcalc fit)."""
    from .. import expand, load
    from ..spec import SpecError

    try:
        graph = expand(load(spec, variant=variant))
    except SpecError as e:
        fail(e)
    run = _torch if framework == "torch" else _jax
    data, title = run(graph, batch=batch, optimizer=optimizer, train=not inference)
    if fmt == "json":
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(_text(data, title))


def _pair(measured, predicted) -> dict:
    from ..fit import relative_error

    err = None if measured is None or predicted is None else relative_error(predicted, measured)
    return {"measured": measured, "predicted": predicted, "error": err}


def _torch(graph, *, batch, optimizer, train):
    from .. import cost
    from ..build import BuildError
    from ..fit import EXACT, fit

    try:
        from ..build.torch import measure_graph
    except ImportError as e:
        fail(f"measure --framework torch needs PyTorch (pip install 'archcalc[torch]'): {e}")
    report = cost(graph, batch=batch)
    try:
        m = measure_graph(graph, batch=batch, optimizer=optimizer, train=train)
    except BuildError as e:
        fail(e)
    f = fit(report, batch=batch, optimizer=optimizer, train=train, constants=EXACT)
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
    data = {"name": report.name, "framework": "torch", "batch": batch, "mode": m["mode"],
            "optimizer": m["optimizer"], "params": _pair(m["params"], report.totals.params),
            "peak_phase": {"measured": m["phase"], "predicted": f.phase},
            "peak": {k: _pair(v, pred[k]) for k, v in m["peak"].items()}}
    if "saved_bytes" in m:
        data["saved_bytes"] = _pair(m["saved_bytes"], report.saved_bytes)
    what = "inference pass" if not train else f"training step ({optimizer})"
    return data, f"{report.name}: one {what}, batch {batch}, fp32; measured with PyTorch's MemTracker under FakeTensorMode"


def _jax(graph, *, batch, optimizer, train):
    from .. import cost
    from ..build import BuildError
    from ..fit_xla import fit

    try:
        from ..build.jax import measure_graph
    except ImportError as e:
        fail(f"measure --framework jax needs JAX (pip install 'archcalc[jax]'): {e}")
    report = cost(graph, batch=batch, profile="xla")
    try:
        m = measure_graph(graph, batch=batch, optimizer=optimizer, train=train)
    except BuildError as e:
        fail(e)
    f = fit(report, batch=batch, optimizer=optimizer, train=train)
    flops = None
    if not train and batch == 1:  # the xla counting preset models XLA's count of a batch-1 forward pass
        from ..presets import count

        flops = count(report, "xla").total
    data = {"name": report.name, "framework": "jax", "batch": batch, "mode": m["mode"], "optimizer": m["optimizer"],
            "backend": m["backend"], "ynn_fusion_off": m["ynn_fusion_off"],
            "params": _pair(m["params"], report.totals.params),
            "flops": _pair(m["flops"], flops),
            "memory": {k: m[k] for k in ("argument_bytes", "output_bytes", "alias_bytes", "temp_bytes")},
            "peak_phase": {"measured": None, "predicted": f.phase},
            "peak": {"total": _pair(m["peak_bytes"], f.peak_bytes)},
            "items": [{"name": i.name, "bytes": i.bytes} for i in f.items]}
    what = "inference pass" if not train else f"training step ({optimizer})"
    return data, (f"{report.name}: one {what}, batch {batch}, fp32; XLA:{m['backend'].upper()} cost_analysis() and "
                  f"memory_analysis() of the compiled step (argument + output - alias + temp)")


def _text(d: dict, title: str) -> str:
    from ..units import fmt_bytes

    def err(pair):
        return "" if pair.get("error") is None else f"{pair['error']:+.1%}"

    lines = [title, f"  {'':<22}  {'measured':>16}  {'predicted':>16}  {'error':>7}"]
    lines.append(f"  {'params':<22}  {d['params']['measured']:>16,}  {d['params']['predicted']:>16,}  {err(d['params']):>7}")
    if "flops" in d:
        p = d["flops"]
        pred = "" if p["predicted"] is None else f"{p['predicted']:,}"
        lines.append(f"  {'flops (XLA)':<22}  {p['measured']:>16,}  {pred:>16}  {err(p):>7}")
    if "saved_bytes" in d:
        p = d["saved_bytes"]
        lines.append(f"  {'saved bytes':<22}  {p['measured']:>16,}  {p['predicted']:>16,}  {err(p):>7}")
    for k, v in d.get("memory", {}).items():
        lines.append(f"  {k:<22}  {fmt_bytes(v, 'MiB'):>16}")
    for k, p in d["peak"].items():
        lines.append(f"  {'peak ' + k:<22}  {fmt_bytes(p['measured'], 'MiB'):>16}  {fmt_bytes(p['predicted'], 'MiB'):>16}"
                     f"  {err(p):>7}")
    ph = d["peak_phase"]
    lines.append(f"  {'peak at':<22}  {ph['measured'] or '(not reported)':>16}  {ph['predicted']}")
    for item in d.get("items", ()):
        lines.append(f"    predicted {item['name']:<28}  {fmt_bytes(item['bytes'], 'MiB'):>14}")
    return "\n".join(lines)
