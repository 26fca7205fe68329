"""Predicted (archcalc fit) vs measured (MemTracker under FakeTensorMode) for activation
checkpointing and for each device of a model-parallel split: the two tables of docs/fit.md.

    python benchmarks/fit_checkpoint_parallel.py            # both tables (a few minutes on a CPU)

Needs the torch extra. The measurements are tests/test_fit.py's own (the built model under
torch.utils.checkpoint with archcalc's segments; each device's rows alone, its input received and
its output sent), so the tests and this table cannot drift apart; the tests assert the bounds
(1 % for checkpointing, 3 % per device), this script prints every case.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import archcalc  # noqa: E402
from archcalc.checkpoint import segments  # noqa: E402
from archcalc.fit import EXACT, fit, plan  # noqa: E402
from archcalc.parallel import fit_parallel  # noqa: E402
from test_fit import _measure, _measure_part, _rows  # noqa: E402

CHECKPOINT = [("resnet18", 4, "sqrt"), ("resnet18", 4, "blocks"), ("resnet50_tv", 4, "sqrt"),
              ("resnet50_tv", 4, "blocks"), ("vgg16", 2, "sqrt"), ("alexnet", 8, "sqrt"), ("mobilenet_v2", 4, "sqrt"),
              ("mobilenet_v2", 4, "blocks"), ("densenet121", 2, "sqrt"), ("densenet121", 2, "blocks"),
              ("googlenet_tv", 2, "sqrt"), ("googlenet_tv", 2, "blocks")]
MODEL_PARALLEL = [("alexnet", 2, 32), ("resnet18", 2, 8), ("vgg16", 3, 4)]
MiB = 2**20


def checkpoint_table() -> None:
    print("| spec | batch | checkpoint | segments | measured peak | predicted | error | recompute (G MACs) |")
    print("|:---|---:|:---|---:|---:|---:|---:|---:|")
    worst = 0.0
    for name, batch, how in CHECKPOINT:
        rep = archcalc.analyze(archcalc.load(name), batch=batch)
        segs = segments(_rows(rep), how)
        measured, _ = _measure(name, batch, segs)
        f = fit(rep, batch=batch, optimizer="momentum", constants=EXACT, checkpoint=how)
        err = f.peak_bytes / measured - 1
        worst = max(worst, abs(err))
        print(f"| {name} | {batch} | {how} | {len(segs)} | {measured / MiB:,.2f} | {f.peak_bytes / MiB:,.2f} | "
              f"{100 * err:+.2f}% | {f.recompute_macs / 1e9:.2f} |", flush=True)
    print(f"\nworst {100 * worst:.2f}%\n")


def model_parallel_table() -> None:
    print("| spec | devices | batch | device: rows | measured MiB | predicted MiB | error |")
    print("|:---|---:|---:|:---|---:|---:|---:|")
    for name, n, batch in MODEL_PARALLEL:
        graph = archcalc.expand(archcalc.load(name))
        rep = archcalc.cost(graph, batch=batch)
        pf = fit_parallel(rep, gpus=n, parallel="model", batch=batch, optimizer="momentum", constants=EXACT)
        pos = {r.path: i for i, r in enumerate(plan(rep).rows)}
        end = len(pos) - 1
        for k, (device, (first, last)) in enumerate(zip(pf.devices, pf.ranges)):
            measured = _measure_part(graph, batch, pos[first], pos[last], pos[last] == end)
            print(f"| {name} | {n} | {batch} | {k}: {first} .. {last} | {measured / MiB:,.2f} | "
                  f"{device.peak_bytes / MiB:,.2f} | {100 * (device.peak_bytes / measured - 1):+.2f}% |", flush=True)


if __name__ == "__main__":
    checkpoint_table()
    model_parallel_table()
