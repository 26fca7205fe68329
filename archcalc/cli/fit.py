"""`archcalc fit SPEC --gpu NAME | --memory SIZE`: will a training step (or inference) fit, and the
largest batch that does. The arithmetic is archcalc/fit.py's; this module parses and prints."""
from __future__ import annotations

import json

import click

from . import FORMAT_CHOICE, fail


@click.command("fit")
@click.argument("spec")
@click.option("--gpu", metavar="NAME", help="A card of the catalogue (archcalc gpus).")
@click.option("--memory", metavar="SIZE", help="Device memory instead of a catalogue card: 24GiB, 16GB, ...")
@click.option("--batch", type=click.IntRange(min=1), help="Batch size to check (default 1 with --max-batch, else 32).")
@click.option("--max-batch", "max_batch", is_flag=True, help="Report the largest batch that fits (always in JSON).")
@click.option("--optimizer", default="sgd", show_default=True,
              type=click.Choice(["sgd", "momentum", "adam", "adamw"]))
@click.option("--inference", is_flag=True, help="An inference pass (no gradients, no optimizer) instead of a training step.")
@click.option("--dtype", default="fp32", show_default=True, type=click.Choice(["fp32", "fp16", "bf16", "mixed"]))
@click.option("--framework", default="torch", show_default=True, type=click.Choice(["torch"]),
              help="The framework whose memory model applies (PyTorch/CUDA).")
@click.option("--workspace", metavar="SIZE", help="cuDNN workspace (default 256MiB, see docs/fit.md).")
@click.option("--context", metavar="SIZE", help="CUDA context outside the allocator (default 500MiB).")
@click.option("--no-cuda", "no_cuda", is_flag=True,
              help="Tensor bytes only: no context, workspace or allocator rounding (what MemTracker counts on a CPU).")
@click.option("--input", "input_shape", metavar="CxHxW", help="Override the spec's input shape.")
@click.option("--variant", metavar="NAME", help="A member of the family a spec file declares under variants:.")
@click.option("--format", "fmt", default="table", show_default=True, type=FORMAT_CHOICE)
def command(spec, gpu, memory, batch, max_batch, optimizer, inference, dtype, framework, workspace, context, no_cuda,
            input_shape, variant, fmt):
    """Itemised memory of one training step of SPEC on a GPU, the verdict and the largest batch."""
    from .. import analyze, load
    from ..fit import ACTIVATION_DTYPE, CUDA, EXACT, fit, to_dict, with_constants
    from ..gpus import find
    from ..shape import ShapeError, parse_shape
    from ..spec import SpecError
    from ..units import parse_bytes

    if gpu and memory:
        fail("give --gpu or --memory, not both")
    capacity = None
    title = None
    try:
        if gpu:
            card = find(gpu)
            capacity, title = card.memory, card.title
        elif memory:
            capacity = parse_bytes(memory)
        constants = with_constants(EXACT if no_cuda else CUDA,
                                   cudnn_workspace=parse_bytes(workspace) if workspace else None,
                                   cuda_context=parse_bytes(context) if context else None)
        shape = parse_shape(input_shape) if input_shape else None
    except (ValueError, ShapeError) as e:
        fail(e)
    if batch is None:
        batch = 1 if max_batch else 32
    try:
        report = analyze(load(spec, variant=variant), input_shape=shape, batch=batch, dtype=ACTIVATION_DTYPE[dtype])
    except SpecError as e:
        fail(e)
    result = fit(report, batch=batch, capacity=capacity, optimizer=optimizer, dtype=dtype, train=not inference,
                 constants=constants)
    data = to_dict(result)
    data["gpu"] = title
    if fmt == "json":
        click.echo(json.dumps(data, indent=2))
        return
    if fmt == "csv":
        click.echo("item,bytes,share")
        for i in data["items"]:
            click.echo(f"{i['name']},{i['bytes']},{i['share']:.4f}")
        click.echo(f"peak,{data['peak_bytes']},1")
        if capacity is not None:
            click.echo(f"capacity,{capacity},")
            click.echo(f"max_batch,{data['max_batch']},")
        return
    click.echo(_text(data, md=fmt == "md", show_max=max_batch or capacity is not None))


def _gib(n: int) -> str:
    return f"{n / 2**30:,.2f} GiB"


def _text(d: dict, *, md: bool, show_max: bool) -> str:
    what = "inference pass" if d["mode"] == "inference" else f"training step ({d['optimizer']})"
    head = f"{d['name']}: one {what}, batch {d['batch']}, {d['dtype']}" + (f", on {d['gpu']}" if d["gpu"] else "")
    rows = [(i["name"], _gib(i["bytes"]), f"{100 * i['share']:.1f}%") for i in d["items"]]
    rows.append(("peak (" + d["peak_phase"] + ")", _gib(d["peak_bytes"]), "100.0%"))
    if md:
        lines = [f"**{head}**", "", "| item | bytes | share |", "|:---|---:|---:|"]
        lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    else:
        w = max(len(r[0]) for r in rows)
        lines = [head, ""] + [f"  {a:<{w}}  {b:>14}  {c:>6}" for a, b, c in rows]
    lines.append("")
    if d["capacity_bytes"] is not None:
        verdict = "fits" if d["fits"] else "does not fit"
        lines.append(f"{verdict} in {_gib(d['capacity_bytes'])}: headroom {_gib(d['headroom_bytes'])}")
    if show_max and d["max_batch"] is not None:
        lines.append(f"largest batch that fits: {d['max_batch']}")
    return "\n".join(lines)
