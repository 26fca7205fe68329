"""Judging a student's answer against the exact figure.

What students write is read as it is meant:

- shapes: ``55x55x96``, ``96x55x55``, ``55 x 55 x 96``, ``[55, 55, 96]``, ``(55, 55, 96)``,
  ``55*55*96``; HxWxC and CxHxW are both right (the reply says which order matched);
- counts: ``34944``, ``34,944``, ``35K``, ``34.9k``, ``1.1e8``, ``0.7 GFLOP``, ``138M params``
  (``units.parse_count``); sizes: ``96MB``, ``784 KB``, ``1.1 MiB``;
- a rounded answer is right when the exact figure rounds to it at its last written digit
  (``units.matches``): ``35K`` and ``34.9k`` for 34,944, not ``30K``;
- ``params`` is right with or without the biases (the lectures use both), the reply saying which;
  ``weight_params`` only without;
- ``flops`` is 2 x MACs; the MAC count given for FLOPs is wrong, and said to be the MAC count; a
  MAC count labelled FLOP for ``macs`` is right (torchvision's "0.7 GFLOPs" for AlexNet are MACs);
- memory in bytes: ``KB``, ``MB``, ``GB`` are read both as 10^3, 10^6, 10^9 B and as EECS 498's
  2^10, 2^20, 2^30 B, the reply saying which matched; ``KiB``, ``MiB`` ... are binary only. A bare
  number for ``memory`` is elements (the CS231n slides' "memory: 224*224*64=3.2M"), or bytes.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from fractions import Fraction

from ..report import Report
from ..shape import elems, fmt_shape
from ..units import Quantity, matches, parse_count, si
from . import TeachError
from .explain import bytes_words, derivation
from .target import BY_UNIT, WORDS, Target, exact_value, quantity_key, resolve, target_dict


@dataclass(frozen=True)
class Verdict:
    """``ok``: right or wrong. ``key``: the quantity judged (a JSON key). ``correct``: the exact
    figure in words. ``reply``: the judgement, first line "right: ..." or "wrong: ...", then notes.
    ``arithmetic``: how the figure is derived."""

    ok: bool
    key: str
    correct: str
    reply: tuple[str, ...]
    arithmetic: tuple[str, ...] = field(default=())

    def text(self) -> str:
        return "\n".join([*self.reply, *([""] + list(self.arithmetic) if self.arithmetic else [])]) + "\n"

    def to_dict(self) -> dict:
        """``{"ok", "key", "correct", "reply", "arithmetic"}``, the lists as lists."""
        return {"ok": self.ok, "key": self.key, "correct": self.correct, "reply": list(self.reply),
                "arithmetic": list(self.arithmetic)}


def check_answer(report: Report, layer: str, quantity: str, answer: str) -> Verdict:
    """``archcalc answer``: resolve LAYER and QUANTITY, judge ANSWER. TeachError on bad input."""
    target = resolve(report, layer)
    key = quantity_key(quantity, whole=target.whole)
    return judge(report, target, key, answer)


def answer_dict(report: Report, layer: str, quantity: str, answer: str) -> dict:
    """``archcalc answer --format json``: the target (``target_dict``), the answer, the quantity
    judged, its exact figure (``exact``) and the verdict (``Verdict.to_dict``)."""
    target = resolve(report, layer)
    verdict = judge(report, target, quantity_key(quantity, whole=target.whole), answer)
    return {**target_dict(report, target), "answer": answer, "exact": exact_value(target, verdict.key),
            **verdict.to_dict()}


def judge(report: Report, target: Target, key: str, answer: str) -> Verdict:
    text = answer.strip()
    if not text:
        raise TeachError("the answer is empty")
    if key == "out":
        return _judge_shape(report, target, text)
    if key in ("rf", "jump"):
        return _judge_pair(report, target, key, text)
    return _judge_count(report, target, key, text)


# ---------------------------------------------------------------- shapes and pairs

_SHAPE_TEXT = re.compile(r"^[\[(]?\s*\d+(?:\s*(?:[x\u00d7*,]|by|\s)\s*\d+)*\s*[\])]?$", re.IGNORECASE)


def read_dims(text: str) -> tuple[int, ...]:
    """'55x55x96', '[55, 55, 96]', '55 x 55 x 96', '55*55*96' -> (55, 55, 96); '4,096' -> (4096,)."""
    t = text.strip()
    if t.lower().endswith(("pixels", "px")):
        t = t[: -6 if t.lower().endswith("pixels") else -2].strip()
    try:
        q = parse_count(t)
        if q.unit is None and q.scale == 1 and isinstance(q.value, int) and "e" not in t.lower():
            return (q.value,)
    except ValueError:
        pass
    if not _SHAPE_TEXT.match(t):
        raise TeachError(f"cannot read {text!r} as a shape: write it as 55x55x96 (HxWxC) or 96x55x55 (CxHxW)")
    return tuple(int(d) for d in re.findall(r"\d+", t))


def _judge_shape(report: Report, target: Target, text: str) -> Verdict:
    out = tuple(target.values["out"])
    dims = read_dims(text)
    where = _where(target)
    correct = _shape_correct(out)
    arithmetic = tuple(derivation(report, target, "out"))
    c_hw = h_wc = None
    if len(out) == 3:
        c_hw, h_wc = fmt_shape(out), f"{out[1]}x{out[2]}x{out[0]}"
    said = None
    if len(out) == 3 and dims == out:
        said = f"{c_hw} as CxHxW ({h_wc} as HxWxC)" if c_hw != h_wc else c_hw
    elif len(out) == 3 and dims == (out[1], out[2], out[0]):
        said = f"{h_wc} as HxWxC, the CS231n order ({c_hw} as CxHxW)"
    elif dims == out:
        said = fmt_shape(out)
    elif len(out) == 1 and dims in ((1, 1, out[0]), (out[0], 1, 1)):
        said = f"{fmt_shape(out)} (your {fmt_shape(dims)}: as a 1x1 map)"
    if said is not None:
        return Verdict(True, "out", correct, (f"right: the output of {where} is {said}",), arithmetic)
    why = ""
    if len(dims) == 1 and len(out) > 1 and dims[0] == elems(out):
        why = f"{dims[0]:,} is the number of elements (out_elems); the question asks for the shape"
    elif sorted(dims) == sorted(out):
        why = "the right sizes, in an order that is neither CxHxW nor HxWxC"
    elif len(out) == 3 and len(dims) == 3 and ((dims[1:] == out[1:]) or (dims[:2] == out[1:])):
        why = f"the spatial size {out[1]}x{out[2]} is right, the channels are not: {out[0]}"
    elif len(out) == 3 and len(dims) == 3 and (dims[0] == out[0] or dims[2] == out[0]):
        why = f"the channels ({out[0]}) are right, the spatial size is not: {out[1]}x{out[2]}"
    reply = [f"wrong: {text}; the output of {where} is {correct}"]
    if why:
        reply.append(f"  {why}")
    return Verdict(False, "out", correct, tuple(reply), arithmetic)


def _shape_correct(out) -> str:
    if len(out) == 3:
        c, h, w = out
        return f"{h}x{w}x{c} (HxWxC) = {fmt_shape(out)} (CxHxW)"
    return fmt_shape(out)


def _judge_pair(report: Report, target: Target, key: str, text: str) -> Verdict:
    value = tuple(target.values[key])
    dims = read_dims(text)
    if len(dims) == 1:
        dims = (dims[0], dims[0])
    if len(dims) != 2:
        raise TeachError(f"cannot read {text!r} as a {WORDS[key]}: write 11 or 11x11")
    where = _where(target)
    correct = correct_text(report, target, key)
    arithmetic = tuple(derivation(report, target, key))
    if dims == value:
        return Verdict(True, key, correct, (f"right: the {WORDS[key]} of {where} is {correct}",), arithmetic)
    reply = [f"wrong: {text}; the {WORDS[key]} of {where} is {correct}"]
    if target.kind in ("range", "block") and key == "rf":
        net = target.rows[-1].rf
        if dims == tuple(net):
            reply.append(f"  {text} is the field of {target.rows[-1].path} on the network input; "
                         f"the question asks for the field on the input of {target.rows[0].path}")
    return Verdict(False, key, correct, tuple(reply), arithmetic)


def _where(target: Target) -> str:
    return target.describe()


# ---------------------------------------------------------------- counts and sizes

_NUMBER_PART = re.compile(r"^\s*[~\u2248]?\s*(?:\d[\d,_ \u00a0\u2009\u202f]*)?(?:\.\d*)?(?:[eE][+-]?\d+)?")


@dataclass(frozen=True)
class _Reading:
    q: Quantity
    how: str  # how the unit was read ("MB = 10^6 B"), or ""


@dataclass(frozen=True)
class _Candidate:
    value: int
    label: str  # "with biases", "weights only", ...
    right: bool
    note: str = ""  # said when this candidate matched
    key: str = ""  # the quantity it is, when not the one judged (bytes for a bare "memory" answer)


def _parse(text: str, **kw) -> Quantity:
    try:
        return parse_count(text, **kw)
    except ValueError as e:
        raise TeachError(str(e)) from None


def _byte_readings(text: str, q: Quantity) -> list[_Reading]:
    """A size with KB, MB, GB: decimal, and EECS 498's binary reading; KiB ...: binary; B: exact."""
    suffix = _suffix(text)
    if q.prefix_base == 1000:
        binary = _parse(text, kb=1024)
        e10 = len(str(q.scale)) - 1
        e2 = binary.scale.bit_length() - 1
        return [_Reading(q, f"{suffix} = 10^{e10} B"), _Reading(binary, f"{suffix} as 2^{e2} B, EECS 498's convention")]
    if q.prefix_base == 1024:
        return [_Reading(q, f"{suffix} = 2^{q.scale.bit_length() - 1} B")]
    return [_Reading(q, "")]


def _suffix(text: str) -> str:
    m = _NUMBER_PART.match(text)
    return text[m.end():].strip() if m else ""


def _judge_count(report: Report, target: Target, key: str, text: str) -> Verdict:
    q = _parse(text)
    v = target.values
    unit = q.unit
    where = _where(target)
    dtype = f"{report.dtype}" + (f", batch {report.batch}" if report.batch > 1 else "")

    # Memory: elements or bytes, by the unit written.
    if key in BY_UNIT or key in ("out_elems", "out_bytes", "saved_elems", "saved_bytes", "peak_elems", "peak_bytes"):
        base = key if key in BY_UNIT else ("saved" if key.startswith("saved") else "peak" if key.startswith("peak") else "memory")
        elems_key, bytes_key = BY_UNIT.get(base, (f"{base}_elems", f"{base}_bytes"))
        if unit not in (None, "B"):
            return _wrong_unit(report, target, key, text, unit)
        in_bytes = unit == "B" or (key == bytes_key)
        if in_bytes:
            readings = _byte_readings(text, q)
            judged = bytes_key
            cands = [_Candidate(v[bytes_key], f"bytes at {dtype}", True)]
            if unit is None:
                cands.append(_Candidate(v[elems_key], "elements", False,
                                        f"that is the element count; at {report.dtype} each element takes "
                                        f"{report.itemsize} B", key=elems_key))
        else:
            readings = [_Reading(q, "")]
            judged = elems_key
            cands = [_Candidate(v[elems_key], "", True)]
            cands.append(_Candidate(v[bytes_key], f"bytes at {dtype}", key in BY_UNIT,
                                    "" if key in BY_UNIT else f"that is the size in bytes at {dtype}; "
                                                             f"the question asks for elements", key=bytes_key))
        return _decide(report, target, judged, text, readings, cands, where)

    # Counts.
    readings = [_Reading(q, "")]
    if unit == "B" and key not in ("param_bytes", "buffer_bytes"):
        return _wrong_unit(report, target, key, text, unit)
    if key in ("param_bytes", "buffer_bytes"):
        if unit not in (None, "B"):
            return _wrong_unit(report, target, key, text, unit)
        return _decide(report, target, key, text, _byte_readings(text, q),
                       [_Candidate(v[key], f"bytes at {report.dtype}", True)], where)
    if unit == "param" and key not in ("params", "weight_params", "bias_params", "buffer_elems"):
        return _wrong_unit(report, target, key, text, unit)
    if unit in ("MAC", "FLOP") and key not in ("macs", "flops", "other_ops", "connections"):
        return _wrong_unit(report, target, key, text, unit)

    cands: list[_Candidate]
    if key == "params":
        if v["bias_params"]:
            cands = [_Candidate(v["params"], "with biases", True),
                     _Candidate(v["weight_params"], "weights only, without the biases", True)]
        else:
            cands = [_Candidate(v["params"], "", True)]
    elif key == "weight_params":
        cands = [_Candidate(v["weight_params"], "weights only", True)]
        if v["bias_params"]:
            cands.append(_Candidate(v["params"], "with biases", False,
                                    f"that counts the biases too; weights only: {v['weight_params']:,}"))
    elif key == "bias_params":
        cands = [_Candidate(v["bias_params"], "", True),
                 _Candidate(v["params"], "", False, "that is all the parameters, not the biases alone")]
    elif key == "macs":
        note = ("labelled FLOP, but it is the MAC count (torchvision and many papers say FLOPs for "
                f"multiply-adds); FLOPs = 2 x MACs = {v['flops']:,}") if unit == "FLOP" else ""
        cands = [_Candidate(v["macs"], "", True, note),
                 _Candidate(v["flops"], "", False, f"that is the FLOP count, 2 x MACs; MACs = {v['macs']:,}")]
    elif key == "flops":
        cands = [_Candidate(v["flops"], "", True,
                            "labelled MAC, but it is the FLOP count (2 x MACs)" if unit == "MAC" else ""),
                 _Candidate(v["macs"], "", False, f"that is the MAC count; FLOPs = 2 x MACs = {v['flops']:,}")]
    else:
        cands = [_Candidate(v[key], "", True)]
    return _decide(report, target, key, text, readings, cands, where)


def _wrong_unit(report: Report, target: Target, key: str, text: str, unit: str) -> Verdict:
    names = {"B": "bytes", "param": "parameters", "MAC": "MACs", "FLOP": "FLOPs"}
    correct = correct_text(report, target, key)
    return Verdict(False, key, correct, (f"wrong: {text} is in {names.get(unit, unit)}; the question asks for the "
                                         f"{WORDS.get(key, key)} of {_where(target)}: {correct}",),
                   tuple(derivation(report, target, key)))


def _decide(report: Report, target: Target, key: str, text: str, readings: list[_Reading],
            cands: list[_Candidate], where: str) -> Verdict:
    hits = [(c, r) for c in cands for r in readings if matches(r.q, c.value)]
    right = [(c, r) for c, r in hits if c.right]
    correct = correct_text(report, target, key)
    arithmetic = tuple(derivation(report, target, key))
    if right:
        c, r = right[0]
        what = f"{c.value:,}" + (f" ({c.label})" if c.label else "")
        reply = [f"right: {text} is {_precision(r.q, c.value, text)}; {WORDS.get(c.key or key, key)} of {where} = {what}"]
        others = [oc for oc, _ in right if oc is not c]
        if others:
            reply.append("  " + "; ".join(f"{o.label or 'also'} ({o.value:,}) matches as well" for o in others)
                         + " at this precision")
        elif key == "params" and len([x for x in cands if x.right]) > 1:
            other = next(x for x in cands if x.right and x is not c)
            reply.append(f"  (matched {c.label}; {other.label}: {other.value:,})")
        if r.how and len(readings) > 1:
            both = {rr.how for cc, rr in right if cc is c}
            reply.append("  (" + (" and ".join(sorted(both)) + ": either reading matches" if len(both) > 1 else r.how)
                         + ")")
        if c.note:
            reply.append(f"  {c.note}")
        return Verdict(True, key, correct, tuple(reply), arithmetic)
    reply = [f"wrong: {text}; the {WORDS.get(key, key)} of {where}: {correct}"]
    hint = next(((c, r) for c, r in hits if not c.right), None)
    if hint is not None:
        reply.append(f"  {hint[0].note}")
    else:
        main = next(c for c in cands if c.right)
        q = readings[0].q
        if Fraction(q.resolution) != 1 or q.scale != 1:
            reply.append(f"  {main.value:,} rounded to your precision is {_rounded(q, main.value, text)}, not {text}")
    return Verdict(False, key, correct, tuple(reply), arithmetic)


def _rounded(q: Quantity, exact: int, text: str) -> str:
    """The exact figure rounded at the answer's last digit, written in the answer's unit."""
    res = Fraction(q.resolution)
    rounded = math.floor(Fraction(exact) / res + Fraction(1, 2)) * res
    x = rounded / q.scale
    step = res / q.scale
    decimals = 0
    while step.denominator != 1 and decimals < 12:
        step *= 10
        decimals += 1
    return _in_units(rounded, q, text, decimals)


def _in_units(value, q: Quantity, text: str, decimals: int | None = None) -> str:
    """A value in bytes or units, written in the answer's unit: 0.1 MB, 35K, 784 KB."""
    x = Fraction(value) / q.scale
    if decimals is None:
        decimals = 0
        step = x
        while step.denominator != 1 and decimals < 12:
            step *= 10
            decimals += 1
    number = f"{float(x):,.{decimals}f}" if decimals else f"{int(x):,}"
    suffix = _suffix(text)
    if not suffix:
        return number
    return f"{number}{'' if len(suffix) == 1 else ' '}{suffix}"


def _precision(q: Quantity, exact: int, text: str) -> str:
    if q.value == exact:
        return "exact"
    res = Fraction(q.resolution)
    if res.denominator == 1 and q.prefix_base != 1024:
        res_text = f"{int(res):,}"
    else:  # in the answer's unit: 0.1 MB (of 2^20 B), 1 KiB
        res_text = _in_units(res, q, text)
    return f"{exact:,} rounded to the nearest {res_text}"


def correct_text(report: Report, target: Target, key: str) -> str:
    """The exact figure in words: '34,944 (34.9K) with biases; weights only 34,848'."""
    v = target.values
    if key == "out":
        return _shape_correct(tuple(v["out"]))
    if key in ("rf", "jump"):
        a, b = v[key]
        return f"{a}" if a == b else f"{a}x{b} (HxW)"
    if key in BY_UNIT:
        key = BY_UNIT[key][0]
    if key in ("params", "weight_params", "bias_params"):
        n = v[key]
        text = _with_si(n)
        if key == "params" and v["bias_params"]:
            text += f" with biases; weights only {v['weight_params']:,}"
        return text
    if key == "macs":
        return f"{_with_si(v['macs'])} MACs; FLOPs = 2 x MACs = {v['flops']:,}"
    if key == "flops":
        return f"{_with_si(v['flops'])} FLOPs = 2 x {v['macs']:,} MACs"
    if key.endswith("_bytes"):
        return bytes_words(v[key])
    if key.endswith("_elems"):
        bkey = key[: -len("_elems")] + "_bytes"
        extra = f" = {v[bkey]:,} B at {report.dtype}" if bkey in v else ""
        return f"{_with_si(v[key])} elements{extra}"
    return f"{v[key]:,}"


def _with_si(n: int) -> str:
    """34,944 (34.9K); 96 stays 96."""
    return f"{n:,} ({si(n)})" if abs(n) >= 1000 else f"{n:,}"
