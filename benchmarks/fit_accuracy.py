"""Predicted (archcalc/fit.py) vs measured (PyTorch's MemTracker under FakeTensorMode) training-step
peaks for every bundled spec that builds: relative error per spec and per item, mean and worst.

    python benchmarks/fit_accuracy.py                       # every bundled spec, batch 2 and 32, sgd and adam
    python benchmarks/fit_accuracy.py --specs alexnet,vgg16 --batch 2,32 --optimizer momentum,adam

Needs the torch extra. Nothing is allocated (fake tensors), so it runs on a CPU; the largest
networks take tens of seconds per step. Specs that cannot be built are listed, not skipped silently.

    python benchmarks/fit_accuracy.py --device cuda --gpu rtx3090   # on a CUDA machine

With ``--device cuda`` (the torch extra and a CUDA device; default a representative set, batch 2
and 32, sgd and adam): real steps (archcalc/build/cuda.py), ``torch.cuda.max_memory_allocated``
against fit with the CUDA constants but no context and no segments, ``max_memory_reserved``
against the same with segments, and per spec and optimizer the real largest batch (doubling, then
bisection, up to ``--hi``) against fit's closed form for the card (``--gpu``, ``--memory``, or the
device's own total memory), with the CUDA context counted. Not yet run in this project.

    python benchmarks/fit_accuracy.py --framework jax      # the representative set, batch 8 and 32, sgd

With ``--framework jax`` (the jax extra): archcalc/fit_xla.py's peak against XLA's own
``memory_analysis()`` of the compiled training step (argument + output - alias + temp), on the
default backend (XLA:CPU here), nothing allocated (abstract inputs; each step is compiled, which
takes seconds to a minute per network). The flag that turns XLA:CPU's convolution fusion off is
set by importing archcalc.build.jax before jax (docs/xla.md).
"""
from __future__ import annotations

import argparse
import time

import archcalc
from archcalc.fit import EXACT, fit, relative_error

JAX_SPECS = "alexnet,resnet18,squeezenet1_0,shufflenet_v2_x0_5,mobilenet_v2,googlenet_tv,efficientnet_b0,vgg16,resnet50_tv,densenet121"

ITEMS = {  # MemTracker's category -> archcalc's items
    "params": ("weights",), "grads": ("gradients",), "optimizer": ("optimizer state", "optimizer temporaries"),
    "activations": ("saved activations", "activations"), "temps": ("activation gradients",), "input": ("input",),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--framework", default="torch", choices=["torch", "jax"])
    ap.add_argument("--specs", default="", help="comma-separated spec names (default: every bundled spec; "
                    "jax: a representative set)")
    ap.add_argument("--batch", default=None, help="comma-separated (default 2,32; jax: 8,32)")
    ap.add_argument("--optimizer", default=None, help="comma-separated (default sgd,adam; jax: sgd)")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"],
                    help="torch: cpu = MemTracker under FakeTensorMode; cuda = real steps and the real largest batch")
    ap.add_argument("--gpu", default=None, help="--device cuda: the catalogue card fit's largest batch is for")
    ap.add_argument("--memory", default=None, help="--device cuda: a capacity instead (24GiB, ...)")
    ap.add_argument("--hi", type=int, default=2048, help="--device cuda: the largest batch tried")
    args = ap.parse_args()
    if args.framework == "jax":
        return xla_table(args.specs or JAX_SPECS, args.batch or "8,32", args.optimizer or "sgd")
    if args.device == "cuda":
        return cuda_table(args.specs or CUDA_SPECS, args.batch or "2,32", args.optimizer or "sgd,adam",
                          gpu=args.gpu, memory=args.memory, hi=args.hi)
    from archcalc.build.torch import measure_graph

    args.batch, args.optimizer = args.batch or "2,32", args.optimizer or "sgd,adam"
    names = [n for n in args.specs.split(",") if n] or archcalc.bundled_names()
    batches = [int(b) for b in args.batch.split(",")]
    optimizers = args.optimizer.split(",")
    errors, cannot = [], []
    print("| spec | batch | optimizer | measured MiB | predicted MiB | error | measured peak at | "
          "worst item (error) |")
    print("|:---|---:|:---|---:|---:|---:|:---|:---|")
    for name, batch, opt, report, m, seconds in steps(names, batches, optimizers, measure_graph, cannot):
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
        err = relative_error(f.peak_bytes, m["peak"]["total"])
        errors.append((batch, opt, name, abs(err)))
        print(f"| {name} | {batch} | {opt} | {m['peak']['total'] / 2**20:,.1f} | {f.peak_bytes / 2**20:,.1f} | "
              f"{100 * err:+.2f}% | {m['phase']} | {worst[0]} ({100 * worst[1]:+.1f}%) | "
              f"<!-- {seconds:.1f}s -->", flush=True)
    summary(errors)
    for line in cannot:
        print(f"cannot build: {line}")


def steps(names, batches, optimizers, measure, cannot: list, profile: str = "pytorch"):
    """(name, batch, optimizer, report, measured, seconds) for every step; a spec the framework
    cannot build is named in ``cannot`` once and skipped."""
    for name in names:
        try:
            graph = archcalc.expand(archcalc.load(name))
        except archcalc.SpecError as e:
            raise SystemExit(f"fit_accuracy: {e}") from None
        try:
            for batch in batches:
                report = archcalc.cost(graph, batch=batch, profile=profile)
                for opt in optimizers:
                    t = time.time()
                    m = measure(graph, batch=batch, optimizer=opt)
                    yield name, batch, opt, report, m, time.time() - t
        except archcalc.BuildError as e:
            cannot.append(f"{name}: {e}")


def summary(errors: list) -> None:
    """Per batch and optimizer, then over all steps: mean and worst |error|, steps within 1 % and 5 %."""
    if not errors:
        return
    groups = {(b, o): [e for b2, o2, _, e in errors if (b2, o2) == (b, o)] for b, o, _, _ in errors}
    print("\n| batch | optimizer | steps | mean abs error | worst (spec) | within 1% | within 5% |")
    print("|---:|:---|---:|---:|:---|---:|---:|")
    for (b, o), errs in [*groups.items(), (("all", ""), [e for *_, e in errors])]:
        worst = max((e, n) for b2, o2, n, e in errors if b == "all" or (b2, o2) == (b, o))
        print(f"| {b} | {o} | {len(errs)} | {100 * sum(errs) / len(errs):.2f}% | {100 * worst[0]:.2f}% ({worst[1]}) | "
              f"{sum(e < 0.01 for e in errs)} | {sum(e < 0.05 for e in errs)} |")


def xla_table(specs: str, batch: str, optimizer: str) -> None:
    """Predicted (fit_xla) against XLA's memory_analysis of the compiled training step, per spec."""
    from archcalc.build.jax import YNN_FUSION_OFF, measure_graph  # before jax: sets XLA_FLAGS
    from archcalc.fit_xla import fit as fit_xla

    print(f"XLA:CPU convolution fusion off: {YNN_FUSION_OFF}")
    print("| spec | batch | optimizer | XLA argument MiB | XLA temp MiB | XLA peak MiB | predicted MiB | error | "
          "predicted peak at |")
    print("|:---|---:|:---|---:|---:|---:|---:|---:|:---|")
    errors, cannot = [], []
    batches, optimizers = [int(v) for v in batch.split(",")], optimizer.split(",")
    for name, b, opt, report, m, seconds in steps(specs.split(","), batches, optimizers, measure_graph, cannot,
                                                  profile="xla"):
        f = fit_xla(report, batch=b, optimizer=opt)
        err = relative_error(f.peak_bytes, m["peak_bytes"])
        errors.append(abs(err))
        print(f"| {name} | {b} | {opt} | {m['argument_bytes'] / 2**20:,.1f} | {m['temp_bytes'] / 2**20:,.1f} | "
              f"{m['peak_bytes'] / 2**20:,.1f} | {f.peak_bytes / 2**20:,.1f} | {100 * err:+.1f}% | {f.phase} | "
              f"<!-- {seconds:.0f}s -->", flush=True)
    if errors:
        print(f"\n{len(errors)} steps: mean |error| {100 * sum(errors) / len(errors):.1f}%, worst {100 * max(errors):.1f}%, "
              f"within 10%: {sum(e < 0.10 for e in errors)} of {len(errors)}")
    for line in cannot:
        print(f"cannot build: {line}")


CUDA_SPECS = "alexnet,resnet18,resnet50_tv,vgg16,mobilenet_v2,googlenet_tv,densenet121"


def cuda_table(specs: str, batch: str, optimizer: str, *, gpu: str | None, memory: str | None, hi: int) -> None:
    """Real CUDA peaks and largest batches (archcalc/build/cuda.py) against fit, per spec."""
    import torch

    from archcalc.build.cuda import OutOfMemoryError, largest_batch, measure_cuda
    from archcalc.fit import CUDA, cuda_statistics_constants
    from archcalc.gpus import find
    from archcalc.units import parse_bytes

    if not torch.cuda.is_available():
        raise SystemExit("--device cuda needs a CUDA device: torch.cuda.is_available() is False")
    capacity = (find(gpu).memory if gpu else parse_bytes(memory) if memory
                else torch.cuda.get_device_properties(0).total_memory)
    allocated, reserved = cuda_statistics_constants()
    print(f"device: {torch.cuda.get_device_name()}; capacity for fit's largest batch: {capacity:,} B; "
          f"constants: workspace {CUDA.cudnn_workspace:,} B, context {CUDA.cuda_context:,} B")
    print("| spec | batch | optimizer | allocated MiB | predicted MiB | error | reserved MiB | predicted MiB | error |")
    print("|:---|---:|:---|---:|---:|---:|---:|---:|---:|")
    errors, largest, cannot = [], [], []
    for name in specs.split(","):
        graph = archcalc.expand(archcalc.load(name))
        for b in (int(v) for v in batch.split(",")):
            report = archcalc.cost(graph, batch=b)
            for opt in optimizer.split(","):
                try:
                    m = measure_cuda(graph, batch=b, optimizer=opt)
                except archcalc.BuildError as e:
                    cannot.append(f"{name}: {e}")
                    break
                except OutOfMemoryError:
                    print(f"| {name} | {b} | {opt} | out of memory | | | | | |", flush=True)
                    continue
                fa = fit(report, batch=b, optimizer=opt, constants=allocated)
                fr = fit(report, batch=b, optimizer=opt, constants=reserved)
                ea = relative_error(fa.peak_bytes, m["max_memory_allocated"])
                er = relative_error(fr.peak_bytes, m["max_memory_reserved"])
                errors.append((abs(ea), abs(er)))
                print(f"| {name} | {b} | {opt} | {m['max_memory_allocated'] / 2**20:,.1f} | "
                      f"{fa.peak_bytes / 2**20:,.1f} | {100 * ea:+.2f}% | {m['max_memory_reserved'] / 2**20:,.1f} | "
                      f"{fr.peak_bytes / 2**20:,.1f} | {100 * er:+.2f}% |", flush=True)
            else:
                continue
            break
        else:
            report = archcalc.cost(graph, batch=1)
            for opt in optimizer.split(","):
                real = largest_batch(graph, optimizer=opt, hi=hi)
                predicted = fit(report, batch=1, optimizer=opt, capacity=capacity, constants=CUDA).max_batch
                largest.append((name, opt, real["max_batch"], predicted, len(real["tried"])))
    if errors:
        print(f"\n{len(errors)} steps: allocated mean |error| {100 * sum(e for e, _ in errors) / len(errors):.2f}%, "
              f"worst {100 * max(e for e, _ in errors):.2f}%; reserved mean |error| "
              f"{100 * sum(e for _, e in errors) / len(errors):.2f}%, worst {100 * max(e for _, e in errors):.2f}%")
    if largest:
        print(f"\n| spec | optimizer | real largest batch (<= {hi}) | fit's max_batch | tries |")
        print("|:---|:---|---:|---:|---:|")
        for name, opt, real, predicted, tries in largest:
            print(f"| {name} | {opt} | {real}{'+' if real == hi else ''} | {predicted} | {tries} |")
    for line in cannot:
        print(f"cannot build: {line}")


if __name__ == "__main__":
    main()
