"""XLA (a ``jax.value_and_grad`` training step compiled with ``jax.jit``): what each layer type
keeps for backward, as the pytorch profile's entries with the differences JAX's autodiff and XLA's
buffer assignment make (measured with ``memory_analysis()`` and XLA's buffer-assignment dumps on
XLA:CPU, jax 0.10.2, for the networks ``archcalc.build(spec, framework="jax")`` builds; see
docs/xla.md):

- a piecewise-linear activation (relu, relu6, leaky_relu, hardsigmoid) keeps its comparison as a
  1-byte ``pred`` mask (JAX's jvp is ``select(x > 0, g, 0)``), beside the tensor the next layer
  keeps: PyTorch's in-place ReLU shares that one tensor, XLA keeps both (and for relu6 as much
  as PyTorch's copy of the input besides: dropping it takes MobileNet-v2 from +4% to -25%);
- max pooling keeps its input only: the builder's backward recomputes the window's maximum from
  it (archcalc/build/jax.py, ``_maxpool``): no int64 indices;
- everything else as PyTorch keeps it (a conv its input, batch norm its input and its batch
  statistics, smooth activations their input or output).

XLA reuses a dead operand's buffer for an elementwise result, which is what PyTorch's in-place
flags model, so ``alias`` is kept as the pytorch profile says.
"""
from __future__ import annotations

from dataclasses import replace

from ..rules import Part, Saved
from ..shape import elems
from . import Memory, Profile
from .pytorch import PARTS as PYTORCH_PARTS

MASKED = ("relu", "relu6", "leaky_relu", "hardsigmoid")  # jvp = select(comparison, g, 0)


def _masked(part: Part) -> Memory:
    base = PYTORCH_PARTS[part.type](part)
    n_tmp = sum(1 for s in base.saved if s.of.startswith("tmp"))
    mask = Saved("mask (pred)", elems(part.x), f"tmp{n_tmp}", itemsize=1)
    return replace(base, saved=base.saved + (mask,))


def _maxpool(part: Part) -> Memory:
    return Memory(saved=(Saved("input", elems(part.x), "input"),))


PARTS = {**PYTORCH_PARTS, "maxpool": _maxpool, **{kind: _masked for kind in MASKED}}


PROFILE = Profile("xla", "JAX/XLA: a jax.value_and_grad step under jax.jit (1-byte activation masks, no pool "
                  "indices)", PARTS)
