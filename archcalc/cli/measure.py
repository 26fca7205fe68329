"""`archcalc measure SPEC --framework torch|jax --batch B`: the framework's own accounting of one
training step (or inference pass) of the built model, beside archcalc's prediction.

- torch (the torch extra): PyTorch's MemTracker under FakeTensorMode (nothing allocated) against
  archcalc/fit.py with tensor bytes only (``fit.EXACT``);
- jax (the jax extra): XLA's ``cost_analysis()`` flops and ``memory_analysis()`` figures of the
  compiled step against archcalc/fit_xla.py (the ``xla`` profile) and, for flops, the ``xla``
  counting preset (archcalc/presets.py; an inference pass at batch 1, what the preset models).
- torch with ``--device cuda`` (a CUDA device): one real step (archcalc/build/cuda.py), its
  ``torch.cuda.max_memory_allocated`` against ``fit`` with the CUDA constants but no context and no
  segments (tensor bytes, 512 B rounding, the cuDNN workspace constant), and
  ``max_memory_reserved`` against the same with the 2 MiB rounding of large segments.

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
@click.option("--device", default="cpu", show_default=True, type=click.Choice(["cpu", "cuda"]),
              help="cpu: MemTracker under FakeTensorMode (nothing allocated); cuda: a real step on the GPU "
                   "(torch.cuda.max_memory_allocated / max_memory_reserved). torch only.")
@click.option("--workspace", metavar="SIZE",
              help="With --device cuda: the cuDNN workspace the prediction assumes (default 256MiB, docs/fit.md).")
@click.option("--format", "fmt", default="table", show_default=True, type=click.Choice(["table", "json"]))
def command(spec, framework, batch, optimizer, inference, variant, device, workspace, fmt):
    """Measured (the framework's own accounting) against predicted (archcalc fit)."""
    from .. import expand, load
    from ..spec import SpecError
    from ..units import parse_bytes

    if device == "cuda" and framework != "torch":
        fail("--device cuda measures PyTorch's CUDA allocator: use it with --framework torch")
    if workspace and device != "cuda":
        fail("--workspace applies to --device cuda only (the CPU path counts tensor bytes)")
    try:
        space = parse_bytes(workspace) if workspace else None
    except ValueError as e:
        fail(f"--workspace: {e}")
    try:
        graph = expand(load(spec, variant=variant))
    except SpecError as e:
        fail(e)
    if device == "cuda":
        data, title = _cuda(graph, batch=batch, optimizer=optimizer, train=not inference, workspace=space)
    else:
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


def _cuda(graph, *, batch, optimizer, train, workspace):
    from .. import cost
    from ..build import BuildError
    from ..fit import cuda_statistics_constants, fit

    try:
        from ..build.cuda import OutOfMemoryError, available, measure_cuda
    except ImportError as e:
        fail(f"measure --device cuda needs PyTorch (pip install 'archcalc[torch]'): {e}")
    if not available():
        fail("measure --device cuda needs a CUDA device, and torch.cuda.is_available() is False here")
    report = cost(graph, batch=batch)
    try:
        m = measure_cuda(graph, batch=batch, optimizer=optimizer, train=train)
    except BuildError as e:
        fail(e)
    except OutOfMemoryError:
        fail(f"{report.name}: batch {batch} does not fit on the CUDA device (CUDA out of memory)")
    allocated, reserved = cuda_statistics_constants(workspace)
    fa = fit(report, batch=batch, optimizer=optimizer, train=train, constants=allocated)
    fr = fit(report, batch=batch, optimizer=optimizer, train=train, constants=reserved)
    data = {"name": report.name, "framework": "torch", "device": "cuda", "gpu": m["device"], "batch": batch,
            "mode": m["mode"], "optimizer": m["optimizer"], "params": _pair(m["params"], report.totals.params),
            "memory": {"baseline_bytes": m["baseline_bytes"]},
            "peak_phase": {"measured": None, "predicted": fa.phase},
            "peak": {"allocated": _pair(m["max_memory_allocated"], fa.peak_bytes),
                     "reserved": _pair(m["max_memory_reserved"], fr.peak_bytes)},
            "constants": {k: getattr(reserved, k) for k in reserved.__dataclass_fields__},
            "items": [{"name": i.name, "bytes": i.bytes} for i in fa.items]}
    what = "inference pass" if not train else f"training step ({optimizer})"
    return data, (f"{report.name}: one {what}, batch {batch}, fp32, on {m['device']}; torch.cuda.max_memory_allocated "
                  f"and max_memory_reserved against fit without the CUDA context")


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
