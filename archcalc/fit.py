"""Will it fit? The PyTorch/CUDA memory of one training step (or an inference pass), from a Report.

Pure arithmetic over a report (archcalc/report.py): the rows say what each layer keeps for
backward (the pytorch profile), which storage each tensor lives in and who reads it, so one step
can be replayed as PyTorch runs it and the bytes alive counted at every moment (the replay is
archcalc/step.py; checkpointed segments archcalc/checkpoint.py; several devices
archcalc/parallel.py):

- the model: weights and buffers (and, in mixed precision, the half-precision weight copies
  autocast makes and convolutions keep for backward), optimizer state (SGD 0, momentum 1x,
  Adam/AdamW 2x the parameters, fp32), the caller's input (alive for the whole step);
- forward: every tensor from the row that writes it to its last reader, or to the backward pass
  when a layer keeps it (``saved``), and a row's intermediates while it runs;
- backward, rows in reverse: the gradient of each activation from its first consumer's backward to
  its producer's, parameter gradients as they are produced, saved tensors freed after the last
  layer that keeps them has run its backward;
- the optimizer step: weights, gradients, state and the step's temporaries (``torch.optim.Adam``
  with ``foreach``, CUDA's default, holds one fp32 copy of the parameters: the sqrt of the second
  moments).

The peak is the largest moment, wherever it is (the end of forward, the start of backward, an
optimizer step): at a small batch it is the step (weights, gradients and state), at a large batch
the start of backward (saved activations). Every moment is affine in the batch (a + b x batch), so
the largest batch that fits is ``min over moments of floor((capacity - a) / b)``: a closed form.

On a CUDA device three more things take memory, each a named, overridable constant (sources in
docs/fit.md): the CUDA context (outside the caching allocator), the cuDNN workspace, and the
caching allocator's rounding (every block a multiple of 512 B; requests of at least 10 MiB rounded
to 2 MiB, smaller ones carved from 2 MiB and 20 MiB segments).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from .report import Report
from .step import DTYPES, OPTIMIZERS, Plan, _Ledger, _replay

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30


@dataclass(frozen=True)
class Constants:
    """Every constant of the CUDA side of the model, named and overridable (docs/fit.md)."""

    cuda_context: int = 500 * MiB  # CUDA context + kernels (CUDA_MODULE_LOADING=LAZY), outside the allocator
    cudnn_workspace: int = 256 * MiB  # an assumption: cuDNN's workspace depends on the algorithms chosen
    block: int = 512  # kMinBlockSize: every allocation a multiple of 512 B
    small_size: int = 1 * MiB  # kSmallSize: the largest "small" request
    small_segment: int = 2 * MiB  # kSmallBuffer: small requests share 2 MiB segments
    large_segment: int = 20 * MiB  # kLargeBuffer: requests of 1-10 MiB share 20 MiB segments
    min_large_alloc: int = 10 * MiB  # kMinLargeAlloc
    round_large: int = 2 * MiB  # kRoundLarge: requests of 10 MiB or more rounded up to 2 MiB


CUDA = Constants()
# What MemTracker counts under FakeTensorMode on a CPU: tensor bytes, nothing else.
EXACT = Constants(cuda_context=0, cudnn_workspace=0, block=1, small_size=0, small_segment=0, large_segment=0,
                  min_large_alloc=0, round_large=1)

# the dtype of the report a fit reads (its activations): half for mixed precision
ACTIVATION_DTYPE = {"fp32": "fp32", "fp16": "fp16", "bf16": "bf16", "mixed": "fp16"}

ITEMS = ("weights", "buffers", "half weight copies", "gradients", "gradient buckets", "optimizer state", "input",
         "saved activations", "recomputed activations", "activations", "activation gradients",
         "gathered parameters", "gradients being reduced", "optimizer temporaries",
         "allocator rounding", "allocator segments", "cudnn workspace", "cuda context")


@dataclass(frozen=True)
class Item:
    name: str
    bytes: int


@dataclass(frozen=True)
class Fit:
    """The memory of one step (``archcalc.fit``): ``peak_bytes`` and where the peak is (``phase``),
    the ``items`` it is made of, and with a device ``fits``, ``headroom_bytes`` and ``max_batch``."""

    name: str
    mode: str  # "train" or "inference"
    optimizer: str
    dtype: str
    batch: int
    capacity_bytes: int | None
    peak_bytes: int
    phase: str  # where the peak happens
    items: tuple[Item, ...]
    max_batch: int | None  # the largest batch that fits (None without a capacity)
    constants: Constants = field(default_factory=Constants)
    checkpoint: str | None = None  # sqrt, blocks or the paths given (archcalc/checkpoint.py)
    segments: int = 0  # checkpointed segments
    recompute_macs: int = 0  # forward MACs rerun in backward by checkpointing, for the batch
    forward_macs: int = 0  # the forward pass's MACs, for the batch

    @property
    def fits(self) -> bool | None:
        return None if self.capacity_bytes is None else self.peak_bytes <= self.capacity_bytes

    @property
    def headroom_bytes(self) -> int | None:
        return None if self.capacity_bytes is None else self.capacity_bytes - self.peak_bytes

    def to_dict(self) -> dict:
        """The JSON model of `archcalc fit --format json` (docs/fit.md)."""
        return to_dict(self)

    def to_dataframe(self):
        """The itemised peak as a ``pandas.DataFrame``: ``name``, ``bytes``, ``share``. Needs pandas."""
        from .frame import dataframe

        return dataframe(to_dict(self)["items"], ["name", "bytes", "share"])


def plan(report: Report, *, optimizer: str = "sgd", dtype: str = "fp32", train: bool = True,
         checkpoint: str | None = None, **kw) -> Plan:
    """The step of ``report``'s main rows (aux heads left out) as one device runs it."""
    from .checkpoint import segments

    if optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}; known: {', '.join(OPTIMIZERS)}")
    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; known: {', '.join(DTYPES)}")
    rows = tuple(r for r in report.rows if not r.aux)
    segs = segments(rows, checkpoint) if checkpoint and train else ()
    return Plan(rows, optimizer, dtype, train, segs, **kw)


def fit(report: Report, *, batch: int, capacity: int | None = None, optimizer: str = "sgd", dtype: str = "fp32",
        train: bool = True, constants: Constants = CUDA, checkpoint: str | None = None, step: Plan | None = None) -> Fit:
    """The memory of one step of ``report``'s network at ``batch`` on a device of ``capacity`` bytes.

    ``report`` is archcalc's report at the activation dtype (fp16 for ``mixed``), any batch: only its
    per-sample figures are read. ``checkpoint``: ``sqrt``, ``blocks`` or block paths
    (archcalc/checkpoint.py). ``step``: a prepared plan (one device of archcalc/parallel.py)."""
    from .checkpoint import recompute_macs

    if batch < 1:
        raise ValueError(f"batch must be a positive integer, got {batch}")
    p = step or plan(report, optimizer=optimizer, dtype=dtype, train=train, checkpoint=checkpoint)
    ledger = _Ledger(batch, constants)
    _replay(p, ledger)
    fixed = {"cudnn workspace": constants.cudnn_workspace, "cuda context": constants.cuda_context}
    peak_items = {**ledger.peak_items, **fixed}
    peak = ledger.peak + sum(fixed.values())
    items = tuple(Item(name, peak_items.get(name, 0)) for name in ITEMS if peak_items.get(name, 0))
    max_batch = None
    if capacity is not None:
        max_batch = _max_batch(p, ledger.moments, capacity - sum(fixed.values()), constants)
    return Fit(name=report.name, mode="train" if p.train else "inference",
               optimizer=p.optimizer if p.train else "none", dtype=p.dtype, batch=batch, capacity_bytes=capacity,
               peak_bytes=peak, phase=ledger.peak_phase, items=items, max_batch=max_batch, constants=constants,
               checkpoint=(checkpoint or "custom") if p.segments else None, segments=len(p.segments),
               recompute_macs=recompute_macs(p.rows, p.segments) * batch,
               forward_macs=sum(r.macs for r in p.rows[1:]) * batch)


def _max_batch(p: Plan, moments, budget: int, c: Constants) -> int:
    """The largest batch whose peak fits ``budget``. Memory at every moment of the step is
    a + b x batch, so the answer is min over moments of floor((budget - a) / b); the allocator's
    rounding (a few hundred bytes per tensor, 2 MiB per large one) is not affine, so the closed form
    is checked against the exact replay and lowered while it does not fit (a step or two)."""
    best = None
    for a, b, _, _ in moments:
        if b == 0:
            if a > budget:
                return 0
            continue
        m = (budget - a) // b
        best = m if best is None else min(best, m)
    if best is None:  # nothing scales with the batch
        return 0
    best = max(best, 0)

    def fits(batch):
        led = _Ledger(batch, c)
        _replay(p, led)
        return led.peak <= budget

    while best > 0 and not fits(best):
        best -= 1
    return best


def with_constants(base: Constants = CUDA, **overrides) -> Constants:
    return replace(base, **{k: v for k, v in overrides.items() if v is not None})


def cuda_statistics_constants(workspace: int | None = None) -> tuple[Constants, Constants]:
    """The constants comparable with torch.cuda's own statistics: (``max_memory_allocated``'s: live
    blocks, so no context and no segment rounding; ``max_memory_reserved``'s: segments too, still
    no context). ``workspace`` overrides the cuDNN workspace."""
    reserved = with_constants(CUDA, cuda_context=0, cudnn_workspace=workspace)
    return with_constants(reserved, round_large=1), reserved


def relative_error(predicted: int, measured: int) -> float | None:
    """predicted / measured - 1, the error `archcalc measure` and benchmarks/fit_accuracy.py print
    (None when nothing was measured)."""
    return predicted / measured - 1 if measured else None


def to_dict(f: Fit) -> dict:
    """The JSON model of a fit (docs/fit.md): fits, max_batch, peak_bytes, capacity_bytes, items."""
    return {
        "name": f.name, "mode": f.mode, "optimizer": f.optimizer, "dtype": f.dtype, "batch": f.batch,
        "fits": f.fits, "max_batch": f.max_batch, "peak_bytes": f.peak_bytes, "capacity_bytes": f.capacity_bytes,
        "headroom_bytes": f.headroom_bytes, "peak_phase": f.phase,
        "items": [{"name": i.name, "bytes": i.bytes, "share": i.bytes / f.peak_bytes if f.peak_bytes else 0.0}
                  for i in f.items],
        "checkpoint": f.checkpoint, "checkpoint_segments": f.segments, "recompute_macs": f.recompute_macs,
        "forward_macs": f.forward_macs,
        "constants": {k: getattr(f.constants, k) for k in f.constants.__dataclass_fields__},
        "input_counted": True,
    }
