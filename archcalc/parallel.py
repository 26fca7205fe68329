"""Several GPUs: one fit (archcalc/fit.py) per device.

- ``data`` (``torch.nn.parallel.DistributedDataParallel``): every device holds the whole model,
  its gradients and optimizer state, and DDP's gradient buckets (a flat copy of the gradients,
  ``gradient_as_bucket_view=False`` by default); the batch is split, ``ceil(batch / N)`` per
  device. The global largest batch is N x the per-device one.
- ``zero`` 1, 2, 3 on top of data parallelism (Rajbhandari et al. 2020, ZeRO, section 5): the
  optimizer state, then also the gradients, then also the parameters sharded over the N devices
  (1/N each, rounded up); a stage-2 layer's whole gradient exists until it is reduce-scattered, a
  stage-3 layer's whole parameters while it runs (forward and backward). DeepSpeed's own buffers
  (bucket sizes, prefetch) are not modelled.
- ``model``: the rows split in order into N contiguous parts at single-tensor cuts
  (archcalc/checkpoint.py's ``cuts``), each device running its part on the whole batch and sending
  its output to the next (naive model parallelism, no micro-batches); the cuts chosen to make the
  largest device peak smallest. The largest batch is the smallest over the devices.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from .checkpoint import cuts
from .fit import CUDA, Constants, Fit, fit, plan, to_dict

MAX_CANDIDATES = 48  # cuts considered when balancing --parallel model (evenly spaced when more)


@dataclass(frozen=True)
class ParallelFit:
    parallel: str  # data or model
    gpus: int
    zero: int
    batch: int  # the global batch
    devices: tuple[Fit, ...]  # one per device (data parallel: all alike, device 0 stands for each)
    ranges: tuple[tuple[str, str], ...] = ()  # model parallel: first and last row path per device

    @property
    def peak_bytes(self) -> int:
        return max(d.peak_bytes for d in self.devices)

    @property
    def fits(self):
        f = [d.fits for d in self.devices]
        return None if None in f else all(f)

    @property
    def max_batch(self):
        m = [d.max_batch for d in self.devices]
        if None in m:
            return None
        return self.gpus * m[0] if self.parallel == "data" else min(m)


def fit_parallel(report, *, gpus: int, parallel: str = "data", zero: int = 0, batch: int,
                 capacity: int | None = None, optimizer: str = "sgd", dtype: str = "fp32", train: bool = True,
                 constants: Constants = CUDA, checkpoint: str | None = None) -> ParallelFit:
    if gpus < 1:
        raise ValueError(f"--gpus must be a positive integer, got {gpus}")
    if parallel not in ("data", "model"):
        raise ValueError(f"--parallel must be data or model, got {parallel!r}")
    if zero not in (0, 1, 2, 3):
        raise ValueError(f"--zero must be 1, 2 or 3, got {zero}")
    if zero and parallel != "data":
        raise ValueError("--zero shards over data-parallel devices: use it with --parallel data")
    if zero and not train:
        raise ValueError("--zero shards training state: it does not apply to --inference")
    kw = dict(optimizer=optimizer, dtype=dtype, train=train)
    if parallel == "data":
        shard = (gpus if zero >= 1 else 1, gpus if zero >= 2 else 1, gpus if zero >= 3 else 1)
        p = plan(report, checkpoint=checkpoint, shard=shard, buckets=train and gpus > 1 and not zero, **kw)
        per = -(-batch // gpus)
        f = fit(report, batch=per, capacity=capacity, constants=constants, checkpoint=checkpoint, step=p)
        return ParallelFit("data", gpus, zero, batch, (f,))
    base = plan(report, checkpoint=None, **kw)
    if checkpoint:
        raise ValueError("--checkpoint with --parallel model is not modelled")
    rows = base.rows
    bounds = _balance(report, rows, gpus, base, batch, constants)
    devices, ranges = [], []
    for k, (a, b) in enumerate(zip(bounds, bounds[1:])):
        sub = replace(base, rows=rows[a:b + 1], caller_input=k == 0)
        devices.append(fit(report, batch=batch, capacity=capacity, constants=constants, step=sub))
        ranges.append((rows[a + 1].path, rows[b].path))
    return ParallelFit("model", gpus, 0, batch, tuple(devices), tuple(ranges))


def _balance(report, rows, n: int, base, batch: int, c: Constants) -> list[int]:
    """Boundaries [0, c1, ..., len-1]: device k runs rows bounds[k]+1 .. bounds[k+1]; the cuts
    minimising the largest device peak (dynamic programming over candidate cuts)."""
    end = len(rows) - 1
    cand = [i for i in cuts(rows) if i > 0]
    if len(cand) < n - 1:
        raise ValueError(f"{len(cand) + 1} places to split the network; cannot use {n} devices")
    if len(cand) > MAX_CANDIDATES:
        step = len(cand) / MAX_CANDIDATES
        cand = sorted({cand[int(j * step)] for j in range(MAX_CANDIDATES)})
    points = [0] + cand + [end]
    cache: dict = {}

    def cost(i, j):  # peak of the device running rows points[i]+1 .. points[j]
        if (i, j) not in cache:
            sub = replace(base, rows=rows[points[i]:points[j] + 1], caller_input=i == 0)
            cache[i, j] = fit(report, batch=batch, constants=c, step=sub).peak_bytes
        return cache[i, j]

    last = len(points) - 1
    best = {(1, j): (cost(0, j), [0, j]) for j in range(1, last + 1)}
    for d in range(2, n + 1):
        for j in range(d, last + 1):
            options = []
            for i in range(d - 1, j):
                prev, path = best[d - 1, i]
                options.append((max(prev, cost(i, j)), path + [j]))
            best[d, j] = min(options, key=lambda o: o[0])
    return [points[i] for i in best[n, last][1]]


def parallel_to_dict(pf: ParallelFit) -> dict:
    """JSON: the global verdict and largest batch, and each device's own fit (fit.to_dict)."""
    devices = []
    for k, f in enumerate(pf.devices):
        d = to_dict(f)
        d["device"] = k
        if pf.ranges:
            d["rows"] = {"first": pf.ranges[k][0], "last": pf.ranges[k][1]}
        devices.append(d)
    first = devices[0]
    return {
        "name": first["name"], "mode": first["mode"], "optimizer": first["optimizer"], "dtype": first["dtype"],
        "gpus": pf.gpus, "parallel": pf.parallel, "zero": pf.zero, "batch": pf.batch,
        "batch_per_device": pf.devices[0].batch, "fits": pf.fits, "max_batch": pf.max_batch,
        "peak_bytes": pf.peak_bytes, "capacity_bytes": first["capacity_bytes"],
        "items": max(devices, key=lambda d: d["peak_bytes"])["items"],  # the fullest device's
        "devices": devices,
    }
