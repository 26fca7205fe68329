"""Shapes and the one home of the sliding-window output-size arithmetic.

A shape is a tuple of ints: ``(C, H, W)`` for feature maps, ``(N,)`` for vectors. Batch is never
part of a shape; it only scales bytes.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

Shape = tuple


class ShapeError(ValueError):
    """The arithmetic has no valid answer (output below 1, bad padding ...)."""


def fmt_shape(shape: Shape) -> str:
    return "x".join(str(d) for d in shape)


def parse_shape(text: str) -> Shape:
    """'3x224x224', '3,224,224' or '[3, 224, 224]' -> (3, 224, 224)."""
    cleaned = text.strip().strip("[]()").replace(",", "x").replace(" ", "")
    try:
        dims = tuple(int(part) for part in cleaned.split("x") if part)
    except ValueError:
        raise ShapeError(f"cannot read shape {text!r}: expected CxHxW, e.g. 3x224x224") from None
    if len(dims) not in (1, 3) or any(d < 1 for d in dims):
        raise ShapeError(f"cannot read shape {text!r}: expected CxHxW (or N) with positive sizes")
    return dims


def elems(shape: Shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


@dataclass(frozen=True)
class Window:
    """One axis of a sliding window: kernel k, stride s, dilation d, padding before/after."""

    k: int
    s: int = 1
    d: int = 1
    pad_lo: int = 0
    pad_hi: int = 0

    @property
    def k_eff(self) -> int:
        """The span the dilated kernel covers: d*(k-1)+1."""
        return self.d * (self.k - 1) + 1


@dataclass(frozen=True)
class AxisResult:
    size: int
    arithmetic: str
    exact: bool  # the division came out even (no rounding needed)


def _pad_text(w: Window) -> str:
    if w.pad_lo == w.pad_hi == 0:
        return ""
    if w.pad_lo == w.pad_hi:
        return f" + 2*{w.pad_lo}"
    return f" + {w.pad_lo} + {w.pad_hi}"


def _kernel_text(w: Window) -> str:
    # Parenthesised: it is subtracted whole, (n - (d*(k-1)+1))/s + 1.
    return str(w.k) if w.d == 1 else f"({w.d}*({w.k}-1)+1)"


def _num(q: Fraction) -> str:
    if q.denominator == 1:
        return str(q.numerator)
    return f"{float(q):.4f}".rstrip("0")


def window_out(n: int, w: Window, *, ceil: bool = False) -> AxisResult:
    """Output length of a window sliding over n inputs.

    out = floor_or_ceil((n + pad_lo + pad_hi - d*(k-1) - 1) / s) + 1, with PyTorch's (and
    Caffe's) ceil-mode rule that the last window must start inside the input or the left padding.
    """
    if min(w.k, w.s, w.d) < 1:
        raise ShapeError("kernel, stride and dilation must be at least 1")
    if w.pad_lo < 0 or w.pad_hi < 0:
        raise ShapeError("padding cannot be negative")
    span = n + w.pad_lo + w.pad_hi - w.k_eff
    text = f"({n}{_pad_text(w)} - {_kernel_text(w)})/{w.s} + 1"
    # Ceil mode rounds (span/s) up, so a window a little longer than the padded input still gives
    # one output (PyTorch and Caffe): only span <= -s leaves none.
    if span < 0 and not (ceil and span > -w.s):
        raise ShapeError(
            f"output size below 1: {text} = {_num(Fraction(span, w.s) + 1)} "
            f"(the window of {w.k_eff} does not fit in {n}{_pad_text(w)})"
        )
    even = span % w.s == 0
    dropped = False
    if ceil:
        size = -(-span // w.s) + 1
        if (size - 1) * w.s >= n + w.pad_lo:
            size -= 1
            dropped = True
    else:
        size = span // w.s + 1
    if even:
        arithmetic = f"{text} = {size}"
        return AxisResult(size=size, arithmetic=arithmetic, exact=True)
    exact_value = Fraction(span, w.s) + 1  # only an inexact size needs its fraction printed
    if dropped:
        arithmetic = (f"{text} = {_num(exact_value)}, rounded up (ceil mode) to {size + 1}, less the last window, "
                      f"which would start in the right padding: {size}")
    else:
        how = "rounded up (ceil mode)" if ceil else "floored"
        arithmetic = f"{text} = {_num(exact_value)}, {how} to {size}"
    return AxisResult(size=size, arithmetic=arithmetic, exact=even)


def same_padding(n: int, k: int, s: int, d: int) -> tuple[int, int]:
    """TensorFlow's SAME padding: output ceil(n/s); the odd pixel goes after (bottom/right)."""
    out = -(-n // s)
    total = max((out - 1) * s + d * (k - 1) + 1 - n, 0)
    return total // 2, total - total // 2
