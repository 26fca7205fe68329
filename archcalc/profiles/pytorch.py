"""PyTorch (autograd, eager mode, training): what each layer type keeps for backward.

Every entry was read from PyTorch 2.x with ``torch.autograd.graph.saved_tensors_hooks`` (storages
counted once, parameters and buffers left out); tests/test_torch_layers.py and
tests/test_torchvision.py measure the same networks and compare.

- conv, linear and LeNet's trainable layers keep their input (a flatten before a linear is a view
  of the same storage); a conv with a connection table also keeps its full kernel, once per batch.
- max pooling keeps its input and int64 argmax indices; average pooling its input; adaptive
  average pooling to 1x1 runs as a mean over H and W, whose backward needs only the input's size.
- batch norm keeps its input and, in fp32 and once per batch, the batch mean and inverse std.
- relu, sigmoid and tanh keep their output either way; elu and leaky_relu keep their input, or in
  place their output; relu6, gelu, silu, hardswish and hardsigmoid keep their input, and in place
  a copy of the input made before it is overwritten.
- LocalResponseNorm is composed of ops: its input, the squares zero-padded by size-1 channels
  (avg_pool3d's input), the pow base and the divisor; its backward's division makes three
  input-sized temporaries at once.
- dropout keeps its mask (bool, as CUDA's fused kernel; CPU's nn.Dropout keeps a float noise
  tensor) and in training writes a new tensor, while at inference it is the identity.
- layer norm keeps its input and, per position, its mean and inverse std (float tensors with the
  batch axis); a layer scale keeps its input; stochastic depth keeps one noise value per sample and
  in training writes a new tensor (the identity at inference).
- softmax keeps its output; add, concat and mean keep nothing; mul keeps both operands; views (flatten,
  chunk, split, slice) and identities allocate nothing and keep nothing.
"""
from __future__ import annotations

from ..rules import ACTIVATIONS, INPLACE_BY_DEFAULT, Part, Saved
from ..shape import elems
from . import Memory, Profile

NOTHING = Memory()
VIEW = Memory(alias=True)


def _keeps_input(part: Part) -> Memory:
    padded = _padded(part)
    if padded:  # F.pad's copy is what the window op reads and keeps; F.pad itself keeps nothing
        return Memory(saved=(Saved("padded input (F.pad)", padded, "tmp0"),), temp_elems=padded)
    return Memory(saved=(Saved("input", elems(part.x), "input"),))


def _padded(part: Part) -> int:
    """Elements of the copy F.pad makes before a window op padded unevenly (nn.Conv2d and the pools
    pad the same on both sides; TensorFlow's `same` at stride 2 does not), or 0."""
    pad = part.arg("pad")
    if pad is None:
        return 0
    c, h, w = part.x
    t, b, left, right = pad
    return c * (h + t + b) * (w + left + right)


def _maxpool(part: Part) -> Memory:
    # nn.MaxPool2d runs max_pool2d_with_indices even under no_grad (the profiler shows it, and
    # MemTracker counts the int64 indices at inference): training keeps them, inference frees them.
    kept = _keeps_input(part)
    indices = Saved("argmax indices (int64)", elems(part.out), "tmp1" if kept.temp_elems else "tmp0", itemsize=8)
    return Memory(saved=kept.saved + (indices,), temp_elems=kept.temp_elems, scratch_fixed_bytes=8 * elems(part.out))


def _conv(part: Part) -> Memory:
    kept = _keeps_input(part)
    full_kernel = part.arg("table")
    if not full_kernel:
        return kept
    # A connection table's conv (LeNet-5's C3) has only the connected kernels as parameters; the
    # builder stacks the full out x in x kh x kw kernel from them (zeros elsewhere) each forward, and
    # F.conv2d keeps that kernel, a non-parameter tensor the size of the weights, once per batch like
    # BN's statistics. fp32: the dtype weights are measured in (a per-batch Saved has fixed bytes).
    kernel = Saved("full kernel (stacked from the table's links)", full_kernel, "tmp1" if kept.temp_elems else "tmp0",
                   itemsize=4, per_batch=True)
    return Memory(saved=kept.saved + (kernel,), temp_elems=kept.temp_elems)


def _adaptive_avgpool(part: Part) -> Memory:
    return NOTHING if part.out[1:] == (1, 1) else _keeps_input(part)


def _lrn(part: Part) -> Memory:
    c, h, w = part.x
    n = elems(part.x)
    padded = (c + part.arg("size") - 1) * h * w
    # F.local_response_norm at inference: x*x, padded (padded), pooled, then the chained
    # pooled.mul(alpha).add(k).pow(beta) holds pooled and two n-sized results at once, and
    # input / div the divisor and the output: beside the output, max(padded, 2n) at its largest.
    # Backward starts with the division's: grad / div, then -grad * ((x / div) / div), three
    # n-sized temporaries beside that first result, while everything kept is still alive.
    return Memory(saved=(Saved("input", n, "input"), Saved("padded squares", padded, "tmp0"),
                         Saved("pow base", n, "tmp1"), Saved("divisor", n, "tmp2")),
                  scratch_elems=max(padded, 2 * n), backward_temp_elems=3 * n)


def _batchnorm(part: Part) -> Memory:
    n = elems(part.x)
    c = part.x[0]
    return Memory(saved=(Saved("input", n, "input"),
                         Saved("batch mean, inv std (fp32)", 2 * c, "tmp0", itemsize=4, per_batch=True)))


_SAVES_OUTPUT = {"relu", "sigmoid", "tanh"}
_INPLACE_SAVES_OUTPUT = _SAVES_OUTPUT | {"elu", "leaky_relu"}


def _activation(part: Part) -> Memory:
    kind = part.type
    inplace = part.arg("inplace")
    inplace = kind in INPLACE_BY_DEFAULT if inplace is None else inplace
    n = elems(part.x)
    if kind in (_INPLACE_SAVES_OUTPUT if inplace else _SAVES_OUTPUT):
        saved = Saved("output", n, "output")
    elif inplace:
        saved = Saved("copy of the input (in-place op)", n, "tmp0")
    else:
        saved = Saved("input", n, "input")
    return Memory(saved=(saved,), alias=inplace, inplace=inplace)


def _softmax(part: Part) -> Memory:
    return Memory(saved=(Saved("output", elems(part.out), "output"),))


def _dropout(part: Part) -> Memory:
    return Memory(saved=(Saved("mask (bool)", elems(part.x), "tmp0", itemsize=1),), alias=True, train_copy=True)


def _add(part: Part) -> Memory:
    inplace = bool(part.arg("inplace"))
    return Memory(alias=inplace, inplace=inplace)


def _mul(part: Part) -> Memory:
    return Memory(saved=tuple(Saved(f"operand {i}", elems(x), f"input{i}") for i, x in enumerate(part.x)))


def _layernorm(part: Part) -> Memory:
    # the input (a channels-last view of it), and the mean and 1/std of every position
    positions = elems(part.x) // part.x[0]
    return Memory(saved=(Saved("input", elems(part.x), "input"), Saved("mean", positions, "tmp0"),
                         Saved("inv std", positions, "tmp1")))


def _drop_path(part: Part) -> Memory:
    # input * noise, the noise one value per sample (N x 1 x 1 x 1); at inference, or with p = 0
    # (torchvision's StochasticDepth returns its input then), the identity
    if not part.arg("p"):
        return VIEW
    return Memory(saved=(Saved("noise", 1, "tmp0"),), alias=True, train_copy=True)


PARTS = {
    "input": lambda part: NOTHING,
    "conv": _conv, "dwconv": _keeps_input, "fc": _keeps_input, "subsample": _keeps_input, "rbf": _keeps_input,
    "maxpool": _maxpool, "avgpool": _keeps_input, "adaptive_avgpool": _adaptive_avgpool,
    "lrn": _lrn, "batchnorm": _batchnorm, "softmax": _softmax, "dropout": _dropout,
    "flatten": lambda part: VIEW, "identity": lambda part: VIEW,
    "chunk": lambda part: VIEW, "split": lambda part: VIEW, "slice": lambda part: VIEW,
    # option A's strided slice and zero padding: a new tensor whose backward needs only shapes
    "shortcut": lambda part: NOTHING,
    # view, transpose, contiguous: one copy, nothing kept
    "channel_shuffle": lambda part: NOTHING,
    "concat": lambda part: NOTHING, "add": _add, "mul": _mul,
    # FractalNet's join as stack + mean: the mean's backward needs only the shapes
    # FractalNet's join as its implementations write it, torch.stack(columns).mean(0): the stacked
    # copy of the k columns lives while the mean runs (autograd keeps neither)
    "mean": lambda part: Memory(scratch_elems=sum(elems(x) for x in part.x)),
    "layernorm": _layernorm, "layer_scale": _keeps_input, "drop_path": _drop_path,
    **{kind: _activation for kind in ACTIVATIONS},
}

PROFILE = Profile("pytorch", "PyTorch autograd, eager mode, training (CUDA's bool dropout mask)", PARTS)
