"""Activation checkpointing: which rows run under ``torch.utils.checkpoint``, and what recomputing
them costs.

A segment ``(a, b)`` is rows ``a+1 .. b`` (positions in the report's main rows, the input row at 0)
run as one ``torch.utils.checkpoint.checkpoint(fn, x, use_reentrant=False)`` on the output of row
``a``: forward keeps only that input, and backward reruns the segment's forward before its own
backward, keeping the saved tensors this time. A segment may only begin and end where exactly one
tensor crosses (a *cut*: the output of row ``a``, and of row ``b``), so that ``fn`` takes one
tensor and returns one, and the row after a cut must not write into its input in place or view
it (checkpoint's input would be modified).

- ``sqrt``: Chen et al. 2016 ("Training deep nets with sublinear memory cost", section 4.1):
  the n rows split into about sqrt(n) segments of equal length at the nearest cuts, each but the
  last checkpointed, as ``torch.utils.checkpoint.checkpoint_sequential`` does (the last segment's
  backward starts right after its forward: recomputing it would save nothing).
- ``blocks``: every top-level block instance (a ResNet bottleneck, an Inception module) is one
  segment, ``torch.utils.checkpoint`` around each block.
- ``PATH,...``: each named block or row is one segment.

Recomputation stops as soon as the segment's last saved tensor is saved again (PyTorch's early
stop, ``torch.utils.checkpoint.set_checkpoint_early_stop(True)``, the default): at the last row
that keeps anything, before that row runs if it keeps only its inputs. The MACs of the rows it
runs, per sample, are the extra forward work (``recompute_macs``).
"""
from __future__ import annotations

from math import isqrt


class CheckpointError(ValueError):
    pass


def cuts(rows) -> list[int]:
    """Positions ``i`` after which exactly one tensor (row i's output) is read by later rows and
    the next row neither runs in place on it nor views it."""
    pos = {r.node.id: i for i, r in enumerate(rows)}
    last = [i for i in range(len(rows))]
    for i, r in enumerate(rows):
        for nid in r.node.inputs:
            p = pos.get(nid)
            if p is not None:
                last[p] = max(last[p], i)
    out = []
    reach = -1  # the latest reader of any row before i
    for i in range(len(rows) - 1):
        if reach <= i and not (rows[i + 1].mem.inplace or rows[i + 1].mem.alias):
            out.append(i)
        reach = max(reach, last[i])
    return out


def segments(rows, how: str) -> tuple[tuple[int, int], ...]:
    """The checkpointed segments for ``how``: ``sqrt``, ``blocks`` or a comma-separated list of
    block or row paths. CheckpointError names what cannot be checkpointed."""
    if not how or how == "none":
        return ()
    ok = cuts(rows)
    end = len(rows) - 1
    if how == "sqrt":
        n = end
        k = max(1, round(n ** 0.5)) if n > 3 else 1
        chosen: list[int] = [0] if 0 in ok else []
        for j in range(1, k):
            target = j * n / k
            c = min(ok, key=lambda i: (abs(i - target), i))
            if c > (chosen[-1] if chosen else -1):
                chosen.append(c)
        if not chosen or chosen == [0] and k > 1:
            raise CheckpointError(f"no place to split the {n} rows into sqrt(n) = {isqrt(n)} segments: "
                                  "every cut has more than one tensor crossing it")
        segs = tuple(zip(chosen, chosen[1:]))  # the last segment runs as usual
        if not segs:
            raise CheckpointError(f"{n} rows are too few to checkpoint: sqrt(n) = {isqrt(n)} segment")
        return segs
    if how == "blocks":
        groups: dict[str, list[int]] = {}
        for i, r in enumerate(rows):
            if r.ancestors:
                groups.setdefault(r.ancestors[0][0], []).append(i)
        if not groups:
            raise CheckpointError("the network has no blocks to checkpoint; use --checkpoint sqrt or name rows")
        return tuple(_segment(rows, ok, name, idx, end) for name, idx in groups.items())
    segs = []
    for name in (p.strip() for p in how.split(",")):
        idx = [i for i, r in enumerate(rows) if r.path == name or r.path.startswith(name + "/")]
        if not idx or idx == [0]:
            raise CheckpointError(f"--checkpoint: no block or row {name!r} in the network")
        segs.append(_segment(rows, ok, name, idx, end))
    segs.sort()
    for (a1, b1), (a2, b2) in zip(segs, segs[1:]):
        if a2 < b1:
            raise CheckpointError(f"--checkpoint: {rows[a2 + 1].path} is in two segments")
    return tuple(segs)


def _segment(rows, ok, name, idx, end):
    a, b = idx[0] - 1, idx[-1]
    if idx != list(range(idx[0], b + 1)):
        raise CheckpointError(f"--checkpoint: the rows of {name!r} are not contiguous")
    if a not in ok or (b != end and b not in ok):
        raise CheckpointError(f"--checkpoint: cannot checkpoint {name!r}: more than one tensor crosses its "
                              "boundary (or its first row runs in place on its input)")
    return a, b


def last_kept(rows, a: int, b: int) -> tuple[int, bool] | None:
    """(k, runs): the last row of segment (a, b) that keeps something for backward, and whether
    recomputation runs it. Recomputation stops at the last tensor saved; autograd saves an op's
    inputs before it runs the op and its outputs after, so a last row that keeps only its inputs
    (DenseNet's closing 3x3 conv) is not run again. None if the segment keeps nothing."""
    keeping = [j for j in range(a + 1, b + 1) if rows[j].mem.saved]
    if not keeping:
        return None
    k = keeping[-1]
    return k, any(not s.of.startswith("input") for s in rows[k].mem.saved)


def recompute_rows(rows, segs) -> list[int]:
    """Positions rerun in backward: each segment's rows up to its last row that keeps something
    (PyTorch's early stop, ``last_kept``)."""
    out: list[int] = []
    for a, b in segs:
        last = last_kept(rows, a, b)
        if last:
            k, runs = last
            out.extend(range(a + 1, k + 1 if runs else k))
    return out


def recompute_macs(rows, segs) -> int:
    """MACs per sample rerun in backward (``recompute_rows``)."""
    return sum(rows[j].macs for j in recompute_rows(rows, segs))
