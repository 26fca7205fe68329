"""Real memory of the built model on a CUDA device: PyTorch's own caching-allocator statistics.

``measure_cuda`` runs one steady-state training step (or an inference pass) of the model
archcalc/build/torch.py builds, on a real device, and reads ``torch.cuda.max_memory_allocated``
(the bytes of live blocks at the peak: tensors rounded to the allocator's 512 B blocks, cuDNN and
cuBLAS workspaces included) and ``torch.cuda.max_memory_reserved`` (the segments the allocator holds
from the driver). The CUDA context is in neither. The step follows ``measure_graph`` (the
MemTracker path, and its loss, whose gradient is a tensor of the output's size): one untracked
warm-up step so the optimizer's state exists, then the peak statistics are reset and forward,
backward, ``step()`` and ``zero_grad()`` run once more.

``largest_batch`` finds the real largest batch that trains without ``torch.cuda.OutOfMemoryError``:
doubling up from batch 1, then bisecting between the last batch that fitted and the first that did
not (``bisect_largest``), the allocator's cache emptied between tries so that one try's segments
do not decide the next. It assumes what archcalc's model says: memory grows with the batch.

No CUDA device was available where this was written: nothing here has been run on a GPU yet.
"""
from __future__ import annotations

import gc
from typing import Callable

import torch

from ..graph import Graph
from .torch import _loss, _optimizer, build_graph


def bisect_largest(fits: Callable[[int], bool], lo: int, hi: int) -> int:
    """The largest n in [lo, hi] with ``fits(n)``, for a predicate true up to a boundary and false
    beyond it; ``lo - 1`` when nothing in the range fits. Each n is tried at most once."""
    good, bad = lo - 1, hi + 1  # fits(good) holds or good is below the range; fits(bad) fails or is above it
    while bad - good > 1:
        mid = (good + bad) // 2
        if fits(mid):
            good = mid
        else:
            bad = mid
    return good


def search_largest(fits: Callable[[int], bool], hi: int) -> int:
    """The largest n in [1, hi] with ``fits(n)`` (0 if not even 1 fits): doubling from 1 to the first
    n that does not fit (or hi), then ``bisect_largest`` between the last two tries."""
    if hi < 1 or not fits(1):
        return 0
    good = 1
    while good < hi:
        nxt = min(2 * good, hi)
        if not fits(nxt):
            return bisect_largest(fits, good + 1, nxt - 1)
        good = nxt
    return good


OutOfMemoryError = torch.cuda.OutOfMemoryError  # for callers that do not import torch (the CLI)


def available() -> bool:
    """Whether PyTorch sees a CUDA device here."""
    return torch.cuda.is_available()


def _device(device: str) -> torch.device:
    dev = torch.device(device)
    if dev.type != "cuda":
        raise ValueError(f"measure_cuda needs a CUDA device, got {device!r}")
    return dev


def measure_cuda(graph: Graph, *, batch: int, optimizer: str = "sgd", train: bool = True,
                 device: str = "cuda") -> dict:
    """One steady-state step (or an inference pass under ``torch.no_grad()``) of the built model on
    ``device``: ``max_memory_allocated`` and ``max_memory_reserved`` of that step, and
    ``baseline_bytes``, what was allocated when it began (weights, buffers, optimizer state, input).
    Raises ``torch.cuda.OutOfMemoryError`` when the step does not fit."""
    dev = _device(device)
    model = build_graph(graph).to(dev)
    # a module spec's input is an activation of the network around it (as in measure_graph)
    x = torch.randn((batch, *graph.input), device=dev, requires_grad=train and graph.input_requires_grad)
    result = {"name": graph.name, "batch": batch, "params": sum(p.numel() for p in model.parameters()),
              "mode": "train" if train else "inference", "optimizer": optimizer if train else "none",
              "device": torch.cuda.get_device_name(dev)}
    if train:
        model.train()
        opt = _optimizer(optimizer, model.parameters(), foreach=True)
        _loss(model(x)).backward()  # the warm-up step: the optimizer's state now exists
        opt.step()
        opt.zero_grad(set_to_none=True)
        x.grad = None
    else:
        model.eval()
    torch.cuda.synchronize(dev)
    result["baseline_bytes"] = torch.cuda.memory_allocated(dev)
    torch.cuda.reset_peak_memory_stats(dev)
    if train:
        loss = _loss(model(x))
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        del loss
    else:
        with torch.no_grad():
            model(x)
    torch.cuda.synchronize(dev)
    result["max_memory_allocated"] = torch.cuda.max_memory_allocated(dev)
    result["max_memory_reserved"] = torch.cuda.max_memory_reserved(dev)
    return result


def _release() -> None:
    """Drop a try's tensors and hand the cached segments back, so that the next try starts empty."""
    gc.collect()
    torch.cuda.empty_cache()


def largest_batch(graph: Graph, *, optimizer: str = "sgd", train: bool = True, hi: int = 4096,
                  device: str = "cuda") -> dict:
    """The real largest batch in [1, hi] whose step runs on ``device`` without
    ``torch.cuda.OutOfMemoryError`` (``search_largest``), and the batches tried."""
    _device(device)
    tried: dict[int, bool] = {}

    def fits(b: int) -> bool:
        _release()
        try:
            measure_cuda(graph, batch=b, optimizer=optimizer, train=train, device=device)
            ok = True
        except OutOfMemoryError:
            ok = False  # the exception (and the frames holding the try's tensors) is cleared here
        _release()
        tried[b] = ok
        return ok

    best = search_largest(fits, hi)
    return {"name": graph.name, "max_batch": best, "hi": hi, "tried": tried,
            "mode": "train" if train else "inference", "optimizer": optimizer if train else "none"}
