"""Predicted (archcalc/fit.py) vs measured (PyTorch's MemTracker under FakeTensorMode) training-step
peaks for every bundled spec that builds: relative error per spec and per item, mean and worst.

    python benchmarks/fit_accuracy.py                       # every bundled spec, batch 2 and 32, sgd and adam
    python benchmarks/fit_accuracy.py --specs alexnet,vgg16 --batch 2,32 --optimizer momentum,adam

Needs the torch extra. Nothing is allocated (fake tensors), so it runs on a CPU; the largest
networks take tens of seconds per step. Specs that cannot be built are listed, not skipped silently.
"""
from __future__ import annotations

import argparse
import time

import archcalc
from archcalc.build.torch import measure_graph
from archcalc.fit import EXACT, fit

ITEMS = {  # MemTracker's category -> archcalc's items
    "params": ("weights",), "grads": ("gradients",), "optimizer": ("optimizer state", "optimizer temporaries"),
    "activations": ("saved activations", "activations"), "temps": ("activation gradients",), "input": ("input",),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--specs", default="", help="comma-separated spec names (default: every bundled spec)")
    ap.add_argument("--batch", default="2,32")
    ap.add_argument("--optimizer", default="sgd,adam")
    args = ap.parse_args()
    names = [n for n in args.specs.split(",") if n] or archcalc.bundled_names()
    batches = [int(b) for b in args.batch.split(",")]
    optimizers = args.optimizer.split(",")
    errors, cannot = [], []
    print(f"| spec | batch | optimizer | measured MiB | predicted MiB | error | measured peak at | "
          f"worst item (error) |")
    print("|:---|---:|:---|---:|---:|---:|:---|:---|")
    for name in names:
        graph = archcalc.expand(archcalc.load(name))
        for batch in batches:
            report = archcalc.cost(graph, batch=batch)
            for opt in optimizers:
                t = time.time()
                try:
                    m = measure_graph(graph, batch=batch, optimizer=opt)
                except archcalc.BuildError as e:
                    cannot.append(f"{name}: {e}")
                    break
                f = fit(report, batch=batch, optimizer=opt, constants=EXACT)
                got = {i.name: i.bytes for i in f.items}
                worst = ("", 0.0)
                for k, ours in ITEMS.items():
                    theirs = m["peak"][k]
                    mine = sum(got.get(x, 0) for x in ours)
                    if theirs > m["peak"]["total"] * 0.01:  # items of at least 1% of the peak
                        e = mine / theirs - 1
                        if abs(e) > abs(worst[1]):
                            worst = (k, e)
                err = f.peak_bytes / m["peak"]["total"] - 1
                errors.append(abs(err))
                print(f"| {name} | {batch} | {opt} | {m['peak']['total'] / 2**20:,.1f} | {f.peak_bytes / 2**20:,.1f} | "
                      f"{100 * err:+.2f}% | {m['phase']} | {worst[0]} ({100 * worst[1]:+.1f}%) | "
                      f"<!-- {time.time() - t:.1f}s -->", flush=True)
            else:
                continue
            break
    if errors:
        print(f"\n{len(errors)} steps: mean |error| {100 * sum(errors) / len(errors):.2f}%, "
              f"worst {100 * max(errors):.2f}%")
    for line in cannot:
        print(f"cannot build: {line}")


if __name__ == "__main__":
    main()
