"""The JSON Schema of spec files, generated from what archcalc itself reads: the top-level keys of
spec.py, each layer type's annotated signature in the registry (rules.py), the item keys and scope
words of the expansion, the case keys of `expect:` and the JSON keys a report has. So the schema
cannot drift from the language: a new layer type, argument or top-level key is in it the next
time it is generated, and tests/test_schema.py checks that the file shipped in the package
(`spec.schema.json`) is what this module generates today.

The schema says which keys exist and what type of value each takes, which is what an editor needs
to complete and flag a spec as it is typed (docs/schema.md). It does not replace archcalc's own
checks: shapes, divisibility, references and `$expression` values are known only when the spec is
expanded.
"""
from __future__ import annotations

import inspect
import json
import os
import re
import types
import typing

from . import rules
from .analysis import analyze
from .check import CASE_KEYS, _norm
from .expand import ITEM_KEYS, SCOPES
from .report import row_dict, totals_dict
from .spec import BLOCK_KEYS, ROUNDINGS, TOP_KEYS, VARIANT_KEYS, parse

SHIPPED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "spec.schema.json")
DRAFT = "http://json-schema.org/draft-07/schema#"  # the draft yaml-language-server supports fully
REQUIRED = ("name", "input", "layers")  # spec.parse refuses a spec without them

# Any value holding a `$` is an expression, evaluated when the item is expanded (expand.subst):
# `$mid * 4`, and also `make_divisible(32 * $width)`, which does not start with one.
EXPR = {"type": "string", "pattern": r"\$", "description": "an expression: $argument, arithmetic, functions"}
_REF = "#/definitions/"


def _ref(name: str) -> dict:
    return {"$ref": _REF + name}


def _one(options: list[dict]) -> dict:
    return options[0] if len(options) == 1 else {"anyOf": options}


def _alternatives(annotation, expr: bool) -> list[dict]:
    """JSON Schema alternatives for a Python annotation (Union flattened)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return [alt for a in typing.get_args(annotation) for alt in _alternatives(a, expr)]
    if origin is typing.Literal:
        return [{"enum": list(typing.get_args(annotation))}]
    if origin is list:
        (item,) = typing.get_args(annotation)
        return [{"type": "array", "items": _value(item, expr)}]
    simple = {int: "integer", float: "number", bool: "boolean", str: "string", type(None): "null"}
    if annotation in simple:
        return [{"type": simple[annotation]}]
    raise TypeError(f"no JSON type for the annotation {annotation!r}")


def _value(annotation, expr: bool) -> dict:
    """The schema of one value of this type; with ``expr``, an expression is accepted in its place
    (and in place of each list item)."""
    options = _alternatives(annotation, expr)
    if expr and {"type": "string"} not in options:
        options.append(_ref("expression"))
    merged: list[dict] = []  # {"enum": [...]} alternatives as one enum, for a readable schema
    for o in options:
        if "enum" in o and merged and "enum" in merged[-1]:
            merged[-1] = {"enum": merged[-1]["enum"] + o["enum"]}
        else:
            merged.append(o)
    return _one(merged)


def rule_arguments(r: rules.Rule, *, expr: bool) -> dict:
    """Argument name -> schema, read from the rule's keyword-only signature and its annotations."""
    hints = typing.get_type_hints(r.fn)
    out = {}
    for p in inspect.signature(r.fn).parameters.values():
        if p.kind is not inspect.Parameter.KEYWORD_ONLY:
            continue
        key = rules._PARAM_TO_KEY.get(p.name, p.name)
        if p.name not in hints:
            raise TypeError(f"rule {r.name!r}: argument {key!r} has no type annotation (the schema needs one)")
        s = _value(hints[p.name], expr)
        if key in r.defaults:
            s = {**s, "default": r.defaults[key]}
        out[key] = s
    return out


def _type_pattern(names) -> str:
    """A layer item's key: `type` or `type label` (a label has no `/`)."""
    return r"^\s*(" + "|".join(re.escape(n) for n in names) + r")(\s+[^\s/]+)?\s*$"


def _names(r: rules.Rule) -> list[str]:
    return [r.name] + sorted(a for a, target in rules.ALIASES.items() if target == r.name)


def _quantity(value, shorthand: bool) -> dict:
    kinds = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array"}
    s = {"type": kinds[type(value)]} if type(value) in kinds else {}  # {}: any value (None in the probe)
    return {"anyOf": [s, {"type": "integer"}]} if shorthand else s


_PROBE = "name: probe\ninput: [3, 8, 8]\nlayers:\n  - conv: {out: 4, k: 3}\n"


def _expect_quantities() -> tuple[dict, dict]:
    """The keys `expect:` may name, read from a report's JSON model (check.py compares with it):
    (totals and aux, layers), each key -> the type of its value."""
    report = analyze(parse(_PROBE, "<schema probe>"))
    totals = {k: _quantity(v, False) for k, v in totals_dict(report).items()}
    row = row_dict(report.rows[-1], report)
    # an integer where check.py's _norm turns one into the list the JSON has (`rf: 3` for [3, 3])
    layer = {k: _quantity(v, isinstance(v, list) and _norm(k, 1) != 1) for k, v in row.items()}
    return totals, layer


def _definitions() -> dict:
    # Where a value may be of several types, one schema lists them all ("type": [...]) with each
    # type's keywords (items apply to lists only, pattern to strings only, properties to mappings
    # only) rather than anyOf, so that a validator reports a misspelt key deep inside as such.
    d: dict = {"expression": EXPR}
    d["layers"] = {"type": "array", "minItems": 1, "items": _ref("item"), "description": "layer items, in order"}
    d["branch"] = {"type": ["array", "null", "string"], "items": _ref("item"), "pattern": EXPR["pattern"],
                   "description": "a list of layers; [] (or nothing) is the identity"}
    d["condition"] = {"type": ["boolean", "string"], "pattern": EXPR["pattern"],
                      "description": "when false, the item is left out"}
    d["times"] = {"type": ["integer", "string"], "minimum": 0, "pattern": EXPR["pattern"],
                  "description": "repetitions (0 leaves it out)"}
    d["from"] = {"type": "string", "minLength": 1, "description": "the path of an earlier layer, block or branch"}
    item_keys = {"times": _ref("times"), "when": _ref("condition"), "from": _ref("from")}
    assert set(item_keys) | {"first"} == set(ITEM_KEYS), "expand.ITEM_KEYS changed: give each key its schema here"

    patterns: dict = {}
    types: dict = {}  # each type's bare name as a property too: what an editor offers after `- `
    reserved = list(SCOPES) + ["from"]
    for r in rules.RULES.values():
        names = _names(r)
        if r.name == "input":  # set by `input:` at the top, never a layer
            patterns[_type_pattern(names)] = False
            reserved += names
            continue
        if r.merge:
            d[f"layer.{r.name}"] = {
                "description": f"{r.doc} Named branches, each a list of layers; arguments through defaults: only.",
                "type": "object", "properties": {"when": _ref("condition")}, "additionalProperties": _ref("branch")}
            reserved += names
        else:
            args = rule_arguments(r, expr=True)
            d[f"layer.{r.name}"] = {
                "description": r.doc, "type": ["object", "null"],
                "properties": {**args, **item_keys, "first": {
                    "type": ["object", "null", "string"], "properties": args, "additionalProperties": False,
                    "pattern": EXPR["pattern"], "description": "arguments for the first repetition only"}},
                "additionalProperties": False}
        patterns[_type_pattern(names)] = _ref(f"layer.{r.name}")
        types.update(dict.fromkeys(names, _ref(f"layer.{r.name}")))
    for scope in SCOPES:
        patterns[_type_pattern([scope])] = types[scope] = {**_ref("layers"), "description": f"`{scope} NAME: [layers]`"}
    patterns[r"^\s*from\s*$"] = types["from"] = _ref("from")
    d["call"] = {
        "description": "a block call (the spec's own blocks, the shared library's, or a $argument): "
                       "its arguments by name, or a list of them in the order of the block's args",
        "type": ["null", "array", "object"], "properties": {
            **item_keys, "first": {"type": ["object", "null", "string"], "pattern": EXPR["pattern"]}}}
    # One schema for both forms (string keywords apply to strings only, object keywords to mappings),
    # not anyOf: a validator then names the misspelt argument instead of "no alternative matched".
    d["item"] = {
        "description": "`type`, `type label`, `type: {arguments}`, `type label: {arguments}`, or a $argument",
        "type": ["string", "object"], "pattern": r"^\s*\S+(\s+[^\s/]+)?\s*$",
        "not": {"type": "string", "pattern": r"^\s*(" + "|".join(map(re.escape, reserved)) + r")(\s|$)"},
        "minProperties": 1, "maxProperties": 1, "propertyNames": {"pattern": r"^\s*\S+(\s+[^\s/]+)?\s*$"},
        "properties": types, "patternProperties": patterns, "additionalProperties": _ref("call")}

    # Default values are literal: `$` is not evaluated in defaults:, so no expressions here.
    for r in rules.RULES.values():
        d[f"defaults.{r.name}"] = {"type": "object", "properties": rule_arguments(r, expr=False),
                                   "additionalProperties": False}
    d["defaults"] = {
        "type": ["object", "null"], "description": "per layer type (or block), arguments used when a layer does not give them",
        "properties": {n: _ref(f"defaults.{r.name}") for r in rules.RULES.values() for n in _names(r)},
        "additionalProperties": {"type": ["object", "null"], "description": "a block's arguments"}}
    d["input"] = {"type": "array", "items": {"type": "integer", "minimum": 1},
                  "anyOf": [{"minItems": 1, "maxItems": 1}, {"minItems": 3, "maxItems": 3}],
                  "description": "[C, H, W] of one sample, or [N] for a vector"}
    d["text"] = {"type": ["string", "null"]}
    d["rounding"] = {"enum": list(ROUNDINGS), "description": "floor: floored output sizes are intended and do not warn"}
    block_keys = {"args": {"type": ["object", "null"], "description": "name: default (~ = required)"},
                  "body": _ref("layers"), "defaults": _ref("defaults"), "notes": _ref("text"), "rounding": _ref("rounding")}
    d["block"] = {"type": "object", "required": ["body"], "additionalProperties": False,
                  "properties": {k: block_keys.get(k, {}) for k in BLOCK_KEYS}}
    d["blocks"] = {"type": ["object", "null"], "additionalProperties": _ref("block"),
                   "propertyNames": {"not": {"enum": sorted(set(rules.known_types()) | set(reserved))}}}

    totals, layer = _expect_quantities()
    quantities = {"type": ["object", "null"], "properties": totals, "additionalProperties": False}
    case_keys = {"input": _ref("input"), "defaults": _ref("defaults"), "note": _ref("text"), "total": quantities,
                 "aux": quantities, "layers": {
                     "type": ["object", "null"], "description": "a layer's path or unique name, or a block's path",
                     "additionalProperties": {"type": ["object", "null"], "properties": layer,
                                              "additionalProperties": False}}}
    d["case"] = {"type": "object", "additionalProperties": False, "properties": {k: case_keys.get(k, {}) for k in CASE_KEYS}}
    d["expect"] = {**d["case"], "type": ["object", "array", "null"], "items": _ref("case"),
                   "description": "one case, or a list of cases"}

    top = {"name": {"type": "string", "minLength": 1}, "source": _ref("text"), "notes": _ref("text"),
           "input": _ref("input"),
           "input_requires_grad": {"type": "boolean", "description": "the input is an activation inside a larger "
                                   "network (a module), so layers on it keep what backward needs and its gradient "
                                   "is computed; default false: the caller's data, as model(x)"},
           "args": {"type": ["object", "null"], "description": "the spec's own $arguments"},
           "defaults": _ref("defaults"), "rounding": _ref("rounding"), "blocks": _ref("blocks"),
           "layers": _ref("layers"), "expect": _ref("expect")}
    # A key spec.py knows and this module does not yet is accepted with any value.
    d["variant"] = {"type": "object", "additionalProperties": False,
                    "properties": {k: top.get(k, {}) for k in VARIANT_KEYS}}
    top["variants"] = {"type": ["object", "null"], "additionalProperties": _ref("variant")}
    d["spec"] = {"title": "archcalc spec", "type": "object", "required": list(REQUIRED), "additionalProperties": False,
                 "properties": {k: top.get(k, {}) for k in TOP_KEYS}}
    d["library"] = {"title": "archcalc block library (specs/blocks/)", "type": "object", "required": ["blocks"],
                    "additionalProperties": False, "properties": {"notes": _ref("text"), "blocks": _ref("blocks")}}
    return d


def schema() -> dict:
    """The JSON Schema (draft-07) of a spec file or a block library file."""
    return {"$schema": DRAFT, "title": "archcalc spec",
            "description": "A network spec for archcalc (docs/spec-language.md), or a file of the shared block library",
            # a library file is one with blocks: and none of a spec's required keys; then and else
            # rather than anyOf, so that a misspelt key is reported as such, not as "no alternative"
            "if": {"anyOf": [{"not": {"required": ["blocks"]}}] + [{"required": [k]} for k in REQUIRED]},
            "then": _ref("spec"), "else": _ref("library"), "definitions": _definitions()}


def text() -> str:
    """The schema as the shipped file holds it."""
    return json.dumps(schema(), indent=2, ensure_ascii=False) + "\n"
