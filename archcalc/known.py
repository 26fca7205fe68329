"""The catalogue of known numbers: what the lectures printed, checked against archcalc's exact counts.

The catalogue (``specs/catalogue/*.yaml``, shipped with the bundled specs; docs/lecture.md) is a list
of entries. Each names its ``source``, a query (``spec`` or ``spec_text``, optional
``input``/``args``/``defaults``, ``of``: a row, a block, ``FIRST..LAST`` or ``total``; ``types`` to
sum only rows of some types, ``kernel`` only rows with a KxK window: MobileNet's "Conv 1x1") and, under
``printed``, what the lecture printed for each quantity, as it printed it (``35K``, ``~96MB``,
``13.6 GFLOP``, ``[55x55x96]``, ``27C^2``). A printed value is a string, or a mapping with
``value`` and any of:

- ``rounding``: ``round`` (the default: right to the printed figures, half up), ``truncate``
  (digits cut off: EECS 498's "48.6 MB" for 48.65) or ``exact``;
- ``exact``: the exact value, pinned (a regression check of its own);
- ``why``: the printed value is a slip, explained; ``exact`` is then the honest value, and
  ``as_printed`` (optional) is the setting that reproduces the slip (``args: {n3: 2}``: VGG-16
  without conv3_3), which must reproduce it.

``evaluate`` gives one ``Result`` per printed value: ``pass`` (archcalc agrees with the print),
``erratum`` (a slip, explained, its honest value and its reproduction holding) or ``fail`` (drift:
a number changed, or an erratum no longer is one). Quantities are the JSON keys (``params``,
``weight_params``, ``macs``, ``out_elems``, ``out_bytes``, ``out``, ``rf``, ``depth`` ...), and
``flop``, the lecture's (``report.lecture_flop``: MACs, and window elements for pools), ``links``
(a block's connections between its parts, DenseNet's L(L+1)/2) and ``out_size`` (a row's output
height before rounding, (N - K + 2P)/S + 1: 54.25 for AlexNet's conv1 on 224); ``ratio`` divides
the query ``a`` by the query ``b`` (printed as ``8x``, ``0.42`` or a percentage, ``94.86%``).
"""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, replace
from fractions import Fraction

from .analysis import analyze
from .formats.styles import select
from .report import aggregate, aggregate_rows, lecture_flop
from .spec import SpecError, _bundled_folder, load, parse
from .units import matches, parse_count, round_sig

CATALOGUE_FOLDER = "catalogue"
QUERY_KEYS = ("spec", "spec_text", "input", "args", "defaults", "of", "types", "kernel", "quantity", "value", "dtype")
ENTRY_KEYS = ("id", "source", "text", "style", "printed", "order", "kb", "per", "a", "b", "note", "rounding",
              *QUERY_KEYS)
VALUE_KEYS = ("value", "rounding", "exact", "why", "as_printed")


@dataclass(frozen=True)
class Result:
    id: str
    quantity: str
    printed: str
    status: str  # pass | erratum | fail
    actual: object  # archcalc's exact value
    detail: str  # why it failed, or the erratum's explanation
    source: str = ""
    file: str = ""

    @property
    def ok(self) -> bool:
        return self.status != "fail"


def catalogue_files() -> list[str]:
    folder = _bundled_folder()
    if folder is None:
        return []
    path = os.path.join(folder, CATALOGUE_FOLDER)
    if not os.path.isdir(path):
        return []
    return sorted(os.path.join(path, f) for f in os.listdir(path) if f.endswith(".yaml"))


def load_catalogue(files=None) -> list[dict]:
    import yaml

    entries = []
    seen = set()
    for file in files or catalogue_files():
        with open(file, encoding="utf-8") as f:
            data = yaml.safe_load(f) or {}
        for e in data.get("entries", []):
            unknown = [k for k in e if k not in ENTRY_KEYS]
            if unknown or "id" not in e or "printed" not in e:
                raise SpecError(f"catalogue entry {e.get('id', '?')!r}: needs id and printed"
                                + (f"; unknown keys {unknown}" if unknown else ""), file=file)
            if e["id"] in seen:
                raise SpecError(f"catalogue entry {e['id']!r} is listed twice", file=file)
            seen.add(e["id"])
            entries.append({**e, "_file": os.path.basename(file)})
    return entries


# ---------------------------------------------------------------- evaluating a query


class _Reports:
    """Reports by (spec, input, args, dtype), each analysed once per catalogue run."""

    def __init__(self):
        self.cache = {}

    def get(self, q: dict):
        key = (q.get("spec"), q.get("spec_text"), tuple(q.get("input") or ()), repr(sorted((q.get("args") or {}).items())),
               repr(sorted((q.get("defaults") or {}).items())), q.get("dtype", "fp32"))
        if key not in self.cache:
            if q.get("spec_text"):
                spec = parse(q["spec_text"], file=f"catalogue:{q.get('id', '')}")
            else:
                spec = load(q["spec"])
            spec = replace(spec, expect=None)
            if q.get("args"):
                spec = replace(spec, args={**spec.args, **q["args"]})
            if q.get("defaults"):  # laid over the spec's, as an expect: case's are
                merged = {t: dict(a) for t, a in spec.defaults.items()}
                for t, a in q["defaults"].items():
                    merged[t] = {**merged.get(t, {}), **a}
                spec = replace(spec, defaults=merged)
            self.cache[key] = analyze(spec, input_shape=tuple(q["input"]) if q.get("input") else None,
                                      dtype=q.get("dtype", "fp32"))
        return self.cache[key]


def value_of(q: dict, quantity: str, reports: _Reports):
    """The exact value of ``quantity`` for the query ``q``."""
    if "value" in q:
        return Fraction(str(q["value"]))
    if quantity == "ratio":
        a = value_of({**q, **q["a"]}, q["a"].get("quantity", q.get("quantity")), reports)
        b = value_of({**q, **q["b"]}, q["b"].get("quantity", q.get("quantity")), reports)
        return Fraction(a) / Fraction(b)
    report = reports.get(q)
    of = str(q.get("of", "total"))
    types = q.get("types")
    kernel = q.get("kernel")
    main = [r for r in report.rows if not r.aux]
    if of == "total" and not types and kernel is None:
        return _total(report, quantity, main)
    rows = main if of == "total" else select(report, report.rows, of)
    if types:
        rows = [r for r in rows if r.type in types]
    if kernel is not None:  # MobileNet's "Conv 1x1" share: the rows with a KxK window
        rows = [r for r in rows if r.cost.window and all(w.k == kernel for w in r.cost.window)]
    if quantity == "links":
        return _links(report, of, rows)
    if quantity == "out" and rows:  # a block's output: its last row's, as the collapsed row has it
        return tuple(rows[-1].out)
    if quantity in ("rf", "jump", "out_size"):
        if len(rows) != 1:
            raise SpecError(f"catalogue entry {q.get('id')!r}: {quantity} is a quantity of one row, not {of!r}")
        return out_size(report, rows[0]) if quantity == "out_size" else tuple(getattr(rows[0], quantity))
    return _sum(report, quantity, rows)


def _links(report, of: str, rows):
    """A block's (or range's) direct connections between its parts, as `table --depth` gives them
    on the collapsed row (DenseNet's L(L+1)/2)."""
    row = aggregate(report, of) if ".." not in of else None
    return (row if row is not None and row.path == of else aggregate_rows(of, rows)).links


def out_size(report, row) -> Fraction:
    """The output height before any rounding, (N - K + 2P)/S + 1 with the dilated kernel: 54.25 for
    AlexNet's conv1 on 224, where the row's ``out`` is floored to 54 (CS231n: "not an integer")."""
    if not row.cost.window or not row.inputs:
        raise SpecError(f"{row.path} slides no window: it has no output size formula")
    w = row.cost.window[0]
    n = report.find(row.inputs[0]).out[1]
    return Fraction(n + w.pad_lo + w.pad_hi - w.k_eff, w.s) + 1


def _total(report, quantity, main):
    t = report.totals
    if quantity in ("out", "rf", "jump"):
        return tuple(getattr(main[-1], quantity))
    if quantity == "out_size":
        return out_size(report, main[-1])
    if quantity == "flop":
        return sum(lecture_flop(r) for r in main)
    if hasattr(t, quantity):
        return getattr(t, quantity)
    if hasattr(report, quantity):
        return getattr(report, quantity)
    raise SpecError(f"unknown quantity {quantity!r}")


def _sum(report, quantity, rows):
    if quantity == "flop":
        return sum(lecture_flop(r) for r in rows)
    if quantity == "out_bytes":
        return sum(r.out_elems for r in rows) * report.itemsize * report.batch
    if quantity == "depth":
        from .report import weighted_depth

        return weighted_depth(rows)
    return sum(getattr(r, quantity) for r in rows)


# ---------------------------------------------------------------- comparing with what was printed

_SHAPE = re.compile(r"^\[?\s*(\d+(?:\s*[x×,*]\s*\d+)*)\s*\]?$")


def _dims(text: str) -> tuple:
    m = _SHAPE.match(text.strip())
    if not m:
        raise ValueError(f"cannot read {text!r} as a shape")
    return tuple(int(d) for d in re.split(r"\s*[x×,*]\s*", m.group(1)))


def _same_shape(text: str, exact: tuple, order: str) -> bool:
    """A printed shape in the lecture's order against archcalc's CxHxW (or N); the CS231n slide
    writes a vector as [1x1x4096]."""
    dims = _dims(text)
    if order == "hwc" and len(dims) == 3:
        dims = (dims[2], dims[0], dims[1])
    if len(exact) == 1 and len(dims) == 3:
        return dims[1:] == (1, 1) and dims[0] == exact[0]
    return dims == tuple(exact)


def _formula(text: str, per: dict):
    """'18HWC^2' with H, W, C given -> its value (a lecture's cost formula)."""
    expr = text.replace("^", "**").replace(" ", "")
    expr = re.sub(r"(?<=[0-9A-Za-z)])(?=[A-Za-z(])", "*", expr)
    if not re.fullmatch(r"[0-9A-Za-z*+\-/().]+", expr):
        raise ValueError(f"cannot read {text!r} as a formula")
    names = set(re.findall(r"[A-Za-z]+", expr))
    if not names <= set(per):
        raise ValueError(f"formula {text!r} uses {sorted(names - set(per))}, not given under per:")
    values = {k: Fraction(str(v)) for k, v in per.items()}  # exact: 1/N + 1/K^2 is a Fraction, not a float
    return eval(expr, {"__builtins__": {}}, values)  # noqa: S307 - digits, operators and the per: names only


def agrees(printed: str, exact, *, quantity: str, rounding: str = "round", order: str = "chw", kb: int = 1000,
           per: dict | None = None) -> bool:
    """Is ``printed`` what a lecture would print for ``exact``, at its rounding?"""
    text = str(printed).strip()
    if quantity == "out":
        return _same_shape(text, tuple(exact), order)
    if quantity in ("rf", "jump"):
        dims = _dims(text)
        return all(d == e for d, e in zip(dims * 2 if len(dims) == 1 else dims, exact))
    if per and set(re.findall(r"[A-Za-z]", text)) <= set("".join(per)) and re.search(r"[A-Za-z]", text):
        return _formula(text, per) == exact  # a formula in the per: names (27C^2, 18HWC^2); "784 KB" is a number
    if text.endswith("x") and quantity == "ratio":
        text = text[:-1]
    if text.endswith("%") and quantity == "ratio":  # a share printed as a percentage: 94.86%
        text, exact = text[:-1], Fraction(exact) * 100
    q = parse_count(text, kb=kb)
    if rounding == "exact":
        return Fraction(q.value) == Fraction(exact)
    if rounding.startswith("sig"):  # the slide's N significant figures: 802,816 -> 800K at sig2
        return round_sig(exact, int(rounding[3:])) == q.value
    if rounding == "truncate":
        res = Fraction(q.resolution)
        return math.floor(Fraction(exact) / res) * res == q.value
    return matches(q, exact)


def evaluate(entries=None) -> list[Result]:
    reports = _Reports()
    results = []
    for e in entries if entries is not None else load_catalogue():
        for quantity, spec in e["printed"].items():
            results.append(_check(e, quantity, spec if isinstance(spec, dict) else {"value": spec}, reports))
    return results


def _check(e: dict, quantity: str, p: dict, reports: _Reports) -> Result:
    printed = str(p["value"])
    q = {k: e[k] for k in QUERY_KEYS if k in e and k != "value"}
    q["id"] = e["id"]
    if quantity == "ratio":
        q["a"], q["b"] = e["a"], e["b"]
    opts = dict(quantity=quantity, rounding=p.get("rounding", e.get("rounding", "round")), order=e.get("order", "chw"),
                kb=e.get("kb", 1000), per=e.get("per"))

    def result(status, actual, detail=""):
        return Result(e["id"], quantity, printed, status, actual, detail, e.get("source", ""), e.get("_file", ""))

    try:
        actual = value_of(q, quantity, reports)
        ok = agrees(printed, actual, **opts)
    except (SpecError, ValueError, KeyError, ZeroDivisionError) as err:
        return result("fail", None, f"cannot evaluate: {err}")
    if "exact" in p and not _same(p["exact"], actual):
        return result("fail", actual, f"the catalogue's exact value is {p['exact']!r}, archcalc gives {_show(actual)}")
    if "why" not in p:
        return result("pass", actual) if ok else result(
            "fail", actual, f"archcalc gives {_show(actual)}, which the lecture would not print as {printed!r}")
    if ok:
        return result("fail", actual, f"marked as a slip, but {printed!r} is right for {_show(actual)}: drop the erratum")
    if "as_printed" in p:
        setting = p["as_printed"]
        slipped = {**q, **setting}
        if quantity == "ratio":
            slipped["a"] = {**q["a"], **setting.get("a", {})}
            slipped["b"] = {**q["b"], **setting.get("b", {})}
        try:
            reproduced = value_of(slipped, setting.get("quantity", quantity), reports)
        except (SpecError, ValueError, KeyError) as err:
            return result("fail", actual, f"the slip's reproduction does not evaluate: {err}")
        if not agrees(printed, reproduced, **{**opts, "rounding": setting.get("rounding", opts["rounding"])}):
            return result("fail", actual, f"the slip's explanation no longer reproduces {printed!r} "
                                          f"(it gives {_show(reproduced)})")
    return result("erratum", actual, str(p["why"]).strip())


def _same(expected, actual) -> bool:
    if isinstance(actual, tuple):
        return list(actual) == list(expected if isinstance(expected, (list, tuple)) else [expected])
    return Fraction(str(expected)) == Fraction(actual)


def _show(v) -> str:
    if isinstance(v, tuple):
        return "x".join(str(d) for d in v)
    if isinstance(v, Fraction) and v.denominator != 1:
        return f"{float(v):,.4g}"
    return f"{int(v):,}"


def lecture_lines(report, style: str) -> list[tuple[str, str, str]]:
    """(what the lecture printed, status, explanation) for the catalogue entries shown under
    ``archcalc table SPEC --style STYLE``: those naming this spec (at this input) and style."""
    chosen = [e for e in load_catalogue() if e.get("style") == style and e.get("spec") == report.name
              and (not e.get("input") or tuple(e["input"]) == tuple(report.input)) and not e.get("args")]
    lines = []
    for e in chosen:
        results = evaluate([e])
        worst = "fail" if any(r.status == "fail" for r in results) else (
            "erratum" if any(r.status == "erratum" for r in results) else "pass")
        why = "; ".join(r.detail for r in results if r.detail)
        lines.append((e.get("text") or ", ".join(r.printed for r in results), worst, why))
    return lines


def summary(results) -> dict:
    out = {"pass": 0, "erratum": 0, "fail": 0}
    for r in results:
        out[r.status] += 1
    return out


def catalogue_report(verbose: bool = False) -> tuple[list[str], int]:
    """The lines `archcalc check` prints for the catalogue, and the number of failures (drift).
    Every failure and every explained erratum is listed; passes only with ``verbose``."""
    results = evaluate()
    counts = summary(results)
    lines = []
    for r in results:
        if r.status == "pass" and not verbose:
            continue
        mark = {"pass": "   pass   ", "erratum": "   erratum", "fail": "  x FAIL  "}[r.status]
        lines.append(f"{mark} {r.id}: {r.quantity} printed {r.printed!r}, archcalc {_show(r.actual) if r.actual is not None else '-'}"
                     + (f": {r.detail}" if r.detail else ""))
    lines.append(f"catalogue: {len(results)} lecture numbers: {counts['pass']} pass, {counts['erratum']} erratum-explained, "
                 f"{counts['fail']} fail")
    return lines, counts["fail"]


def comparison_lines(items) -> list[str]:
    """The catalogue's entries about these compare items (``SPEC`` or ``SPEC:FIRST..LAST``): what
    the lecture printed, with pass or the erratum's explanation."""
    wanted = set()
    for item in items:
        spec, _, rows = item.partition(":")
        wanted.add((spec, rows or "total"))
    lines = []
    for e in load_catalogue():
        sides = [e] if "a" not in e else [{**e, **e["a"]}, {**e, **e["b"]}]
        if all((s.get("spec"), str(s.get("of", "total"))) in wanted for s in sides):
            for r in evaluate([e]):
                lines.append(f"lecture [{r.status}] {r.id}: {r.quantity} printed {r.printed!r}, archcalc "
                             f"{_show(r.actual) if r.actual is not None else '-'}" + (f": {r.detail}" if r.detail else ""))
    return lines
