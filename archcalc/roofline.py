"""A roofline lower bound on the time of one step, per layer and in total (Williams, Waterman &
Patterson 2009, "Roofline: an insightful visual performance model").

A layer cannot take less than ``max(FLOPs / peak FLOP/s, bytes moved / DRAM bandwidth)``:

- FLOPs = 2 x MACs x batch (the rule's MACs; non-MAC work such as pooling, BN and activations is
  left out, so layers without MACs are bound by their memory traffic);
- bytes moved = what the layer must read and write at least once: its inputs and its output
  (activation dtype, x batch) and its weights (parameter dtype); a view (flatten, a channel slice)
  moves nothing. Caches, re-reads by tiled kernels and cuDNN's workspace traffic only add to it;
- peak FLOP/s: the card's figure for the dtype (gpus.yaml). In fp32 a convolution uses the TF32
  tensor-core figure where the card has one, as PyTorch runs cuDNN convolutions in TF32 by default
  (``torch.backends.cudnn.allow_tf32 = True``) while matrix multiplies stay fp32
  (``torch.backends.cuda.matmul.allow_tf32 = False``): a lower bound must assume the faster one;
- training: backward costs 2x the forward layer's FLOPs and bytes (the gradient with respect to
  the input and to the weights, each about one forward's work: an assumption, exact for conv and fc
  MACs), checkpointed rows their forward once more, and the optimizer step reads the weights,
  gradients and state and writes the weights and state once (memory bound). Communication between
  devices is not counted.
"""
from __future__ import annotations

from dataclasses import dataclass

from .checkpoint import recompute_rows
from .fit import DTYPES, OPTIMIZERS
from .shape import elems

PEAK_DTYPE = {"fp32": "fp32", "fp16": "fp16", "bf16": "bf16", "mixed": "fp16"}


@dataclass(frozen=True)
class LayerTime:
    path: str
    flops: int
    bytes: int
    time_s: float
    bound: str  # compute, memory, or none (a view)


@dataclass(frozen=True)
class Roofline:
    gpu: str
    layers: tuple[LayerTime, ...]
    forward_s: float
    backward_s: float
    recompute_s: float
    optimizer_s: float

    @property
    def step_time_s(self) -> float:
        return self.forward_s + self.backward_s + self.recompute_s + self.optimizer_s


def peak_flops(gpu, dtype: str, layer_type: str) -> float | None:
    key = PEAK_DTYPE[dtype]
    if key == "fp32" and layer_type != "fc" and "tf32" in gpu.tflops:
        key = "tf32"
    t = gpu.tflops.get(key)
    return None if t is None else t * 1e12


def missing(gpu, dtype: str) -> str | None:
    """Why there is no roofline for this card and dtype, or None."""
    if not gpu.bandwidth:
        return f"{gpu.name} has no bandwidth figure"
    if PEAK_DTYPE[dtype] not in gpu.tflops:
        return f"{gpu.name} has no {PEAK_DTYPE[dtype]} peak throughput in the catalogue"
    return None


def roofline(fitplan, gpu, *, batch: int) -> Roofline:
    """The lower bound for the plan's rows (archcalc/fit.py ``Plan``) at ``batch`` on ``gpu``."""
    rows = fitplan.rows
    act, pbytes = DTYPES[fitplan.dtype]
    bw = gpu.bandwidth * 1e9
    pos = {r.node.id: i for i, r in enumerate(rows)}
    layers = []
    for r in rows[1:]:
        flops = 2 * r.macs * batch
        view = r.mem.alias and not r.mem.inplace and not (fitplan.train and r.mem.train_copy)
        ins = sum(elems(rows[pos[n]].out) for n in r.node.inputs if n in pos)
        nbytes = 0 if view else (ins + elems(r.out)) * act * batch + r.params * pbytes
        peak = peak_flops(gpu, fitplan.dtype, r.type)
        tc, tm = flops / peak, nbytes / bw
        bound = "none" if tc == tm == 0 else "compute" if tc >= tm else "memory"
        layers.append(LayerTime(r.path, flops, nbytes, max(tc, tm), bound))
    forward = sum(t.time_s for t in layers)
    if not fitplan.train:
        return Roofline(gpu.name, tuple(layers), forward, 0.0, 0.0, 0.0)
    again = sum(layers[j - 1].time_s for j in recompute_rows(rows, fitplan.segments))
    params = sum(r.params for r in rows[1:])
    state = OPTIMIZERS[fitplan.optimizer] * (4 if fitplan.dtype == "mixed" else pbytes)
    step = params * (3 * pbytes + 2 * state) / bw if fitplan.optimizer != "none" else 0.0
    return Roofline(gpu.name, tuple(layers), forward, 2 * forward, again, step)


def to_dict(r: Roofline) -> dict:
    return {"gpu": r.gpu, "step_time_s": r.step_time_s, "forward_s": r.forward_s, "backward_s": r.backward_s,
            "recompute_s": r.recompute_s, "optimizer_s": r.optimizer_s,
            "layers": [{"path": t.path, "flops": t.flops, "bytes": t.bytes, "time_s": t.time_s, "bound": t.bound}
                       for t in r.layers]}
