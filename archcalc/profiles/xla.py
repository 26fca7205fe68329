"""XLA (a ``jax.value_and_grad`` training step compiled with ``jax.jit``): what each layer type
keeps for backward, as the pytorch profile's entries with the differences JAX's autodiff and XLA's
buffer assignment make (read in XLA:CPU's buffer-assignment dumps, jax 0.10.2, for the networks
``archcalc.build(spec, framework="jax")`` builds; docs/xla.md, "What XLA keeps"):

- a piecewise-linear activation (relu, relu6, leaky_relu, hardsigmoid) is not in place and keeps
  its 4-byte input, the pre-activation: JAX's jvp is ``select(x > 0, g, 0)`` and XLA fuses the
  comparison into the backward, so it keeps ``x``, not a 1-byte mask. After a batch norm in the
  same row it keeps nothing: XLA recomputes the normalised value from the batch norm's kept input
  and statistics (after a batch-norm row or a residual add, the same: fit_xla drops it there);
- a convolution keeps its input transposed to C x H x W x N for the weight gradient (XLA:CPU's
  layout for it), a copy beside the input, which others may keep too; convolutions reading the
  same input share one copy (fit_xla keys it by the input);
- max pooling keeps its output (the builder's backward compares the input with it) and its
  input (fit_xla drops the input when the layer before recomputes it from a kept pre-activation);
- everything else as PyTorch keeps it (batch norm its input and its batch statistics, smooth
  activations their input or output).
"""
from __future__ import annotations

from ..rules import Cost, Part, Saved
from ..shape import elems
from . import Memory, Profile
from .pytorch import PARTS as PYTORCH_PARTS

MASKED = ("relu", "relu6", "leaky_relu", "hardsigmoid")  # jvp = select(comparison, g, 0)
PREACTIVATION = "input (the pre-activation)"


def _masked(part: Part) -> Memory:
    return Memory(saved=(Saved(PREACTIVATION, elems(part.x), "input"),))


def _maxpool(part: Part) -> Memory:
    return Memory(saved=(Saved("output", elems(part.out), "output"), Saved("input", elems(part.x), "input")))


TRANSPOSED_INPUT = "input, C x H x W x N (weight gradient)"


def _conv_input_copy(part: Part) -> Memory:
    return Memory(saved=(Saved(TRANSPOSED_INPUT, elems(part.x), "tmp0"),))


def _recomputed(prev: Part | None, part: Part) -> bool:
    """A masked activation right after a batch norm keeps nothing: XLA recomputes its input."""
    return part.type in MASKED and prev is not None and prev.type == "batchnorm"


def keeps_preactivation(cost: Cost) -> bool:
    """Whether a row ends in a masked activation that keeps its own input (so a reader of its
    output, max pooling, need not keep that output: XLA recomputes it from the kept input)."""
    parts = cost.parts or ()
    return bool(parts) and parts[-1].type in MASKED and not _recomputed(parts[-2] if len(parts) > 1 else None,
                                                                       parts[-1])


class _XlaProfile(Profile):
    """The one rule a part's entry cannot see: what it keeps depends on the operation before it."""

    def part_after(self, prev: Part | None, part: Part) -> Memory:
        return Memory() if _recomputed(prev, part) else self.part(part)


PARTS = {**PYTORCH_PARTS, "conv": _conv_input_copy, "maxpool": _maxpool, **{kind: _masked for kind in MASKED}}


PROFILE = _XlaProfile("xla", "JAX/XLA: a jax.value_and_grad step under jax.jit (pre-activations, transposed "
                      "conv inputs, pooled outputs)", PARTS)
