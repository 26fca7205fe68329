"""`expect:` blocks: the known numbers a spec must reproduce, checked by `archcalc check` and CI.

    expect:
      total:  {params: 138357544, macs: 15470264320}
      layers:
        conv1_1: {out: [64, 224, 224], params: 1792}

or a list of such cases, each optionally at another `input:`, with `defaults:` laid over the spec's
(ResNet-34 with option C shortcuts), and with a `note:`. Layer keys are full paths or unique names;
the path of a block instance, branch, group or named merge checks the sum of everything under it
(a GoogLeNet Table 1 row). Quantities are the keys of the JSON interface.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from .analysis import analyze
from .limits import LIMITS, check_nodes_message
from .report import Report, aggregate, row_dict, totals_dict
from .spec import Map, Spec, SpecError, line_of

# What one analysis costs at least against check_nodes: its fixed cost (~0.3 ms) is that of ~100 nodes.
MIN_CHARGE = 100
CASE_KEYS = ("input", "defaults", "note", "total", "layers", "aux")


@dataclass(frozen=True)
class Outcome:
    case: int
    where: str  # "total", "aux" or a layer path
    key: str
    expected: object
    actual: object
    line: int

    @property
    def ok(self) -> bool:
        return self.actual == self.expected


def _norm(key: str, value):
    """Expected values as the JSON model writes them ([h, w] receptive fields, lists for shapes)."""
    if key in ("rf", "jump") and isinstance(value, int):
        return [value, value]
    if isinstance(value, (list, tuple)):
        return list(value)
    return value


def cases(spec: Spec) -> list[dict]:
    expect = spec.expect
    if expect is None:
        return []
    items = expect if isinstance(expect, list) else [expect]
    out = []
    for case in items:
        if not isinstance(case, dict):
            raise SpecError("each expect case is a mapping with total: and/or layers:", file=spec.file,
                            line=line_of(expect, spec.lines.get("expect", 0)))
        unknown = [k for k in case if k not in CASE_KEYS]
        if unknown:
            raise SpecError(f"expect: unknown key {unknown[0]!r}; known: {', '.join(CASE_KEYS)}", file=spec.file,
                            line=line_of(case))
        _check_case_shape(spec, case)
        out.append(case)
    return out


def _check_case_shape(spec: Spec, case: dict) -> None:
    """A malformed case is bad input (exit 2), not a traceback or a silently odd analysis."""
    lines = getattr(case, "key_lines", {})

    def fail(message: str, key: str):
        return SpecError(f"expect: {message}", file=spec.file, line=lines.get(key, line_of(case)))

    if "input" in case:
        shape = case["input"]
        if (not isinstance(shape, list) or len(shape) not in (1, 3)
                or any(isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in shape)):
            raise fail("input must be [C, H, W] (or [N]) with positive integers", "input")
    for key in ("defaults", "total", "aux", "layers"):
        if case.get(key) is not None and not isinstance(case[key], dict):
            raise fail(f"{key} must be a mapping of {'layer: {quantity: value}' if key == 'layers' else 'quantity: value'}", key)
    for type_name, args in (case.get("defaults") or {}).items():
        if not isinstance(args, dict):
            raise fail(f"defaults: {type_name} must be a mapping of arguments", "defaults")
    for name, expected in (case.get("layers") or {}).items():
        if expected is not None and not isinstance(expected, dict):
            raise fail(f"layers: {name} must be a mapping of quantity: value", "layers")


def check(spec: Spec, budget: list | None = None) -> list[Outcome]:
    """The outcomes of every expect case. ``budget`` is ``[nodes left]``, shared by the members of
    one family file (`archcalc check FILE`): each case is a whole analysis, so a few lines of
    `expect: [*case, *case, ...]` or of variants would otherwise repeat a large graph without
    bound (limit check_nodes)."""
    if budget is None:
        budget = new_budget()
    outcomes: list[Outcome] = []
    todo = cases(spec)
    if not todo:
        _spend(spec, budget, spec.lines.get("layers", 0))
        analyze(spec, budget=budget)  # nothing to compare, but a spec that does not analyze is bad input
    for i, case in enumerate(todo):
        _spend(spec, budget, line_of(case, spec.lines.get("expect", 0)))
        case_spec = spec
        if case.get("defaults"):
            merged = Map({t: dict(a) for t, a in spec.defaults.items()})
            for t, a in case["defaults"].items():
                merged[t] = {**merged.get(t, {}), **a}
            # with the lines of the case's defaults, where expand reports a bad one
            merged.line = getattr(case, "key_lines", {}).get("defaults") or line_of(case)
            merged.key_lines = {**getattr(spec.defaults, "key_lines", {}), **getattr(case["defaults"], "key_lines", {})}
            case_spec = replace(spec, defaults=merged)
        report = analyze(case_spec, input_shape=tuple(case["input"]) if "input" in case else None, budget=budget)
        outcomes += _check_case(spec, i, case, report)
    return outcomes


def new_budget() -> list:
    """``[nodes left]`` for one file's check: its members share it (limit check_nodes)."""
    return [LIMITS["check_nodes"]]


def _spend(spec: Spec, budget: list, line: int) -> None:
    """Charge the fixed cost of one more analysis (its nodes are charged by expand, one by one)."""
    budget[0] -= MIN_CHARGE
    if budget[0] < 0:
        raise SpecError(check_nodes_message(), file=spec.file, line=line or None)


def _check_case(spec: Spec, i: int, case: dict, report: Report) -> list[Outcome]:
    # only the totals of the JSON model: building every layer's entry for a few expected numbers
    # was most of the time `archcalc check` spent on a long network
    data = {"totals": totals_dict(report), "aux_totals": totals_dict(report, aux=True)}
    results = []
    for section in ("total", "aux"):
        expected = case.get(section) or {}
        actual = data["totals" if section == "total" else "aux_totals"] or {}
        for key, value in expected.items():
            line = getattr(expected, "key_lines", {}).get(key, line_of(expected))
            if key not in data["totals"]:
                raise SpecError(f"expect: unknown {section} {key!r}; known: {', '.join(data['totals'])}", file=spec.file, line=line)
            results.append(Outcome(i, section, key, _norm(key, value), actual.get(key), line))
    layers = case.get("layers") or {}
    for name, expected in layers.items():
        line = getattr(layers, "key_lines", {}).get(name, line_of(layers))
        # A path with rows under it (a block, branch, group, named merge) is checked as their sum.
        row = aggregate(report, str(name)) or report.find(str(name))
        if row is None:
            raise SpecError(f"expect: no layer or block {name!r} (or the name is not unique; use its full path)",
                            file=spec.file, line=line)
        actual = row_dict(row, report)
        for key, value in (expected or {}).items():
            if key not in actual:
                raise SpecError(f"expect: unknown layer quantity {key!r}; known: {', '.join(actual)}",
                                file=spec.file, line=line)
            results.append(Outcome(i, row.path, key, _norm(key, value), actual[key], line))
    return results
