"""`archcalc gpus`: the GPU catalogue (archcalc/gpus.yaml)."""
from __future__ import annotations

import json

import click

from . import FORMAT_CHOICE


@click.command("gpus")
@click.option("--format", "fmt", default="table", show_default=True, type=FORMAT_CHOICE)
def command(fmt):
    """The GPUs `archcalc fit --gpu` knows: memory, bandwidth and peak throughput per dtype."""
    from ..gpus import catalogue

    gpus = list(catalogue().values())
    dtypes = ["fp32", "tf32", "fp16", "bf16", "fp64"]
    if fmt == "json":
        click.echo(json.dumps([{"name": g.name, "title": g.title, "memory_bytes": g.memory,
                                "bandwidth_gbs": g.bandwidth, "tflops": g.tflops, "source": g.source}
                               for g in gpus], indent=2))
        return
    head = ["name", "memory GiB", "GB/s"] + [f"{d} TFLOP/s" for d in dtypes] + ["card"]
    rows = [[g.name, f"{g.memory / 2**30:g}", f"{g.bandwidth:g}"]
            + [f"{g.tflops[d]:g}" if d in g.tflops else "" for d in dtypes] + [g.title] for g in gpus]
    if fmt == "csv":
        click.echo("\n".join(",".join(f'"{c}"' if "," in c else c for c in r) for r in [head] + rows))
    elif fmt == "md":
        click.echo("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
        click.echo("\n".join("| " + " | ".join(r) + " |" for r in rows))
    else:
        widths = [max(len(r[i]) for r in [head] + rows) for i in range(len(head))]
        for r in [head] + rows:
            click.echo("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
