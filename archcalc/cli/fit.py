"""`archcalc fit SPEC --gpu NAME | --memory SIZE`: will a training step (or inference) fit, and the
largest batch that does. The arithmetic is archcalc/fit.py's; this module parses and prints."""
from __future__ import annotations

import json

import click

from ..units import fmt_bytes

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
@click.option("--framework", default="torch", show_default=True, type=click.Choice(["torch", "jax"]),
              help="The framework whose memory model applies: PyTorch/CUDA, or JAX/XLA (docs/xla.md; the "
                   "XLA_PYTHON_CLIENT_MEM_FRACTION, _PREALLOCATE and _ALLOCATOR variables JAX reads set its capacity).")
@click.option("--workspace", metavar="SIZE", help="cuDNN workspace (default 256MiB, see docs/fit.md).")
@click.option("--context", metavar="SIZE", help="CUDA context outside the allocator (default 500MiB).")
@click.option("--no-cuda", "no_cuda", is_flag=True,
              help="Tensor bytes only: no context, workspace or allocator rounding (what MemTracker counts on a CPU).")
@click.option("--checkpoint", metavar="sqrt|blocks|PATH,...",
              help="Activation checkpointing (torch.utils.checkpoint): sqrt(n) segments (Chen et al. 2016), "
                   "every top-level block, or the named blocks/rows.")
@click.option("--gpus", "n_gpus", default=1, show_default=True, type=click.IntRange(min=1), help="Devices.")
@click.option("--parallel", type=click.Choice(["data", "model"]),
              help="data: DDP, the batch split (default with --gpus > 1); model: the layers split in order.")
@click.option("--zero", type=click.IntRange(0, 3), default=0, show_default=True,
              help="ZeRO stage over the data-parallel devices: 1 shards optimizer state, 2 + gradients, 3 + parameters.")
@click.option("--roofline", is_flag=True, help="Print the roofline lower bound on step time per layer (needs --gpu).")
@click.option("--input", "input_shape", metavar="CxHxW", help="Override the spec's input shape.")
@click.option("--variant", metavar="NAME", help="A member of the family a spec file declares under variants:.")
@click.option("--format", "fmt", default="table", show_default=True, type=FORMAT_CHOICE)
def command(spec, gpu, memory, batch, max_batch, optimizer, inference, dtype, framework, workspace, context, no_cuda,
            checkpoint, n_gpus, parallel, zero, roofline, input_shape, variant, fmt):
    """Itemised memory of one training step of SPEC on a GPU, the verdict and the largest batch."""
    from .. import analyze, load
    from ..fit import ACTIVATION_DTYPE, CUDA, EXACT, with_constants
    from ..gpus import find
    from ..shape import ShapeError, parse_shape
    from ..spec import SpecError
    from ..units import parse_bytes

    if gpu and memory:
        fail("give --gpu or --memory, not both")
    if framework == "jax" and (checkpoint or n_gpus > 1 or parallel or zero or roofline):
        fail("--checkpoint, --gpus, --parallel, --zero and --roofline are modelled for --framework torch only")
    if n_gpus == 1 and (parallel or zero):
        fail(f"--{'zero' if zero else 'parallel'} splits work over several devices: give --gpus N with N > 1")
    if roofline and not gpu:
        fail("--roofline needs --gpu (the card's bandwidth and peak throughput)")
    if checkpoint is not None and not checkpoint.strip():
        fail("--checkpoint needs sqrt, blocks or block paths (PATH,...)")
    if no_cuda and (workspace or context):
        fail("--no-cuda counts tensor bytes only: no --workspace or --context with it")
    capacity = None
    title = card = None
    try:
        if gpu:
            card = find(gpu)
            capacity, title = card.memory, card.title
        elif memory:
            capacity = parse_bytes(memory)
            if capacity <= 0:
                fail(f"--memory must be a positive size, got {memory!r}")
        constants = with_constants(EXACT if no_cuda else CUDA,
                                   cudnn_workspace=parse_bytes(workspace) if workspace else None,
                                   cuda_context=parse_bytes(context) if context else None)
        shape = parse_shape(input_shape) if input_shape else None
    except (ValueError, ShapeError) as e:
        fail(e)
    if batch is None:
        batch = 1 if max_batch else 32
    try:
        report = analyze(load(spec, variant=variant), input_shape=shape, batch=batch, dtype=ACTIVATION_DTYPE[dtype],
                         profile="xla" if framework == "jax" else "pytorch")
    except SpecError as e:
        fail(e)
    if framework == "jax":
        data = _fit_jax(report, batch=batch, capacity=capacity, optimizer=optimizer, dtype=dtype, train=not inference)
    else:
        data = _fit_torch(report, card, batch=batch, capacity=capacity, optimizer=optimizer, dtype=dtype,
                          train=not inference, constants=constants, checkpoint=checkpoint, gpus=n_gpus,
                          parallel=parallel, zero=zero)
    data["gpu"] = title
    if fmt == "json":
        click.echo(json.dumps(data, indent=2))
        return
    if fmt == "csv" and "devices" in data:
        click.echo("device,item,bytes,share")
        for d in data["devices"]:
            for i in d["items"]:
                click.echo(f"{d['device']},{i['name']},{i['bytes']},{i['share']:.4f}")
            click.echo(f"{d['device']},peak,{d['peak_bytes']},1")
        click.echo(f"all,max_batch,{data['max_batch']},")
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
    if "devices" in data:
        click.echo(_parallel_text(data, md=fmt == "md"))
    else:
        click.echo(_text(data, md=fmt == "md", show_max=max_batch or capacity is not None))
    click.echo(_extras(data, layers=roofline))


def _gib(n: int) -> str:
    return fmt_bytes(n, "GiB", digits=2)


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
        if "xla" in d:
            x = d["xla"]
            lines.append(f"(XLA may use {x['mem_fraction']:.0%} of {_gib(x['device_bytes'])}, allocator {x['allocator']}; "
                         f"preallocated at start-up: {_gib(x['preallocated_bytes'])})")
    if show_max and d["max_batch"] is not None:
        lines.append(f"largest batch that fits: {d['max_batch']}")
    if "xla" in d:  # what the model was checked against, and what that means on a GPU
        lines.append(f"note: {d['xla']['buffer_plan']}'s buffer plan, the one measured (docs/xla.md: within 10% of memory_analysis on "
                     "the representative set); a GPU build plans its own: the grouped-conv weight gradient and the "
                     "transposed copies are XLA:CPU's, cuDNN scratch is not counted")
    return "\n".join(lines)


def _fit_jax(report, *, batch, capacity, optimizer, dtype, train) -> dict:
    """archcalc/fit_xla.py's verdict, with the capacity JAX would take from this process's environment."""
    import os

    from ..fit_xla import constants_from_env, fit, to_dict

    try:
        constants = constants_from_env(os.environ)
        return to_dict(fit(report, batch=batch, capacity=capacity, optimizer=optimizer, dtype=dtype, train=train,
                           constants=constants), constants, capacity)
    except ValueError as e:
        fail(e)


def _fit_torch(report, card, *, batch, capacity, optimizer, dtype, train, constants, checkpoint, gpus, parallel,
               zero) -> dict:
    """archcalc/fit.py's (or, on several devices, archcalc/parallel.py's) fit, with the roofline of
    archcalc/roofline.py when the card has the figures."""
    from ..fit import fit, plan, to_dict
    from ..parallel import fit_parallel, parallel_to_dict
    from ..roofline import missing, roofline
    from ..roofline import to_dict as roofline_dict

    try:
        if gpus > 1 or parallel or zero:
            data = parallel_to_dict(fit_parallel(report, gpus=gpus, parallel=parallel or "data", zero=zero, batch=batch,
                                                 capacity=capacity, optimizer=optimizer, dtype=dtype, train=train,
                                                 constants=constants, checkpoint=checkpoint))
        else:
            data = to_dict(fit(report, batch=batch, capacity=capacity, optimizer=optimizer, dtype=dtype, train=train,
                               constants=constants, checkpoint=checkpoint))
        if card is not None:
            why = missing(card, dtype)
            if why:
                data["step_time_s"], data["roofline"] = None, {"gpu": card.name, "missing": why}
            else:
                per_device = data.get("batch_per_device", batch) if data.get("parallel") == "data" else batch
                rf = roofline(plan(report, optimizer=optimizer, dtype=dtype, train=train, checkpoint=checkpoint), card,
                              batch=per_device)
                data["step_time_s"], data["roofline"] = rf.step_time_s, roofline_dict(rf)
    except ValueError as e:
        fail(e)
    return data


def _parallel_text(d: dict, *, md: bool) -> str:
    how = "data parallel" + (f", ZeRO stage {d['zero']}" if d["zero"] else "") if d["parallel"] == "data" \
        else "model parallel (layers split in order)"
    lines = [f"{d['name']}: {d['gpus']} GPUs, {how}; global batch {d['batch']}"
             + (f", {d['batch_per_device']} per device" if d["parallel"] == "data" else ""), ""]
    devices = d["devices"][:1] if d["parallel"] == "data" else d["devices"]
    for dev in devices:
        dev = {**dev, "gpu": d["gpu"]}
        label = "each device" if d["parallel"] == "data" else f"device {dev['device']}: {dev['rows']['first']} .. {dev['rows']['last']}"
        lines += [f"{label}:", _text(dev, md=md, show_max=False), ""]
    if d["max_batch"] is not None:
        lines.append(f"{'fits' if d['fits'] else 'does not fit'}; largest global batch that fits: {d['max_batch']}")
    return "\n".join(lines)


def _extras(d: dict, *, layers: bool) -> str:
    lines = []
    if d.get("devices"):
        d0 = d["devices"][0]
        ckpt, segs, rec, fwd = d0["checkpoint"], d0["checkpoint_segments"], d0["recompute_macs"], d0["forward_macs"]
    else:
        ckpt, segs, rec, fwd = d.get("checkpoint"), d.get("checkpoint_segments"), d.get("recompute_macs"), d.get("forward_macs")
    if ckpt:
        share = f" (+{100 * rec / fwd:.0f}% of the forward pass)" if fwd else ""
        lines.append(f"checkpointing ({ckpt}): {segs} segments; recomputation {rec / 1e9:,.2f} G extra forward MACs{share}")
    rf = d.get("roofline")
    if rf and "missing" in rf:
        lines.append(f"no roofline: {rf['missing']}")
    elif rf:
        if layers:
            lines += ["", f"  {'layer':<40} {'GFLOP':>10} {'MB moved':>10} {'ms (min)':>10}  bound"]
            lines += [f"  {t['path']:<40} {t['flops'] / 1e9:>10,.2f} {t['bytes'] / 1e6:>10,.1f} "
                      f"{1e3 * t['time_s']:>10,.3f}  {t['bound']}" for t in rf["layers"]]
            lines.append("")
        lines.append(f"roofline lower bound on step time: {1e3 * rf['step_time_s']:,.1f} ms (forward "
                     f"{1e3 * rf['forward_s']:,.1f}, backward {1e3 * rf['backward_s']:,.1f}, recompute "
                     f"{1e3 * rf['recompute_s']:,.1f}, optimizer {1e3 * rf['optimizer_s']:,.1f}; docs/fit.md)")
    return "\n".join(lines)
