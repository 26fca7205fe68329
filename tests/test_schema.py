"""The JSON Schema of spec files (archcalc/schema.py, shipped as archcalc/spec.schema.json).

It must accept every spec archcalc ships (and every whole spec of the docs), reject the typos an
editor should flag (an unknown argument, a misspelt top-level key, a word that is no activation),
and be what the registry gives today: regenerate with `archcalc schema > archcalc/spec.schema.json`.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import archcalc
from archcalc import rules, schema
from archcalc.spec import TOP_KEYS, SpecError, parse

# The test extra has jsonschema; CI (.ci/run sets ARCHCALC_REQUIRE_TORCH) installs it, so fail there, never skip.
if os.environ.get("ARCHCALC_REQUIRE_TORCH", "") not in ("", "0"):
    import jsonschema
else:
    jsonschema = pytest.importorskip("jsonschema")

REPO = Path(__file__).resolve().parent.parent
BUNDLED = sorted((REPO / "specs").glob("*.yaml")) + sorted((REPO / "specs" / "blocks").glob("*.yaml"))


@pytest.fixture(scope="module")
def validator():
    s = schema.schema()
    jsonschema.Draft7Validator.check_schema(s)
    return jsonschema.Draft7Validator(s)


def errors(validator, text: str) -> list[str]:
    return [e.message for e in validator.iter_errors(yaml.safe_load(text))]


def test_the_shipped_file_is_what_the_registry_generates():
    assert schema.SHIPPED == str(Path(archcalc.__file__).parent / "spec.schema.json")
    assert Path(schema.SHIPPED).read_text(encoding="utf-8") == schema.text(), (
        "archcalc/spec.schema.json is stale: run `python tools/gen_docs.py` "
        "(or `archcalc schema > archcalc/spec.schema.json`)")


@pytest.mark.parametrize("path", BUNDLED, ids=[str(p.relative_to(REPO)) for p in BUNDLED])
def test_every_bundled_spec_and_block_library_validates(validator, path):
    text = path.read_text(encoding="utf-8")
    assert errors(validator, text) == []


def _first_rule_item(items):
    """The first layer item (depth first) that is a layer type with arguments: (its mapping, the key)."""
    for item in items or []:
        if isinstance(item, dict) and len(item) == 1:
            (key, value), = item.items()
            kind = str(key).split()[0]
            r = rules.lookup(kind)
            if r is not None and not r.merge and isinstance(value, dict) and set(value) & set(r.known):
                return value, next(k for k in value if k in r.known)
            nested = value.values() if isinstance(value, dict) else [value]
            for v in nested:
                if isinstance(v, list):
                    found = _first_rule_item(v)
                    if found:
                        return found
    return None


@pytest.mark.parametrize("path", [p for p in BUNDLED if p.parent.name != "blocks"], ids=lambda p: p.name)
def test_a_misspelt_argument_or_top_level_key_in_each_bundled_spec_is_rejected(validator, path):
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    args, key = _first_rule_item(data["layers"])
    args[key + "x"] = args.pop(key)  # k -> kx, out -> outx
    assert any(f"'{key}x' was unexpected" in m for m in errors_of(validator, data)), path.name
    args[key] = args.pop(key + "x")
    assert errors_of(validator, data) == []
    data["layer"] = data.pop("layers")
    assert errors_of(validator, data)


def errors_of(validator, data) -> list[str]:
    return [e.message for e in validator.iter_errors(data)]


def test_the_bundled_files_are_all_there():
    # a glob that found nothing would make the test above vacuous
    assert len(BUNDLED) >= 40 and any(p.parent.name == "blocks" for p in BUNDLED)
    assert any("variants:" in p.read_text(encoding="utf-8") for p in BUNDLED)  # family files included


def test_every_whole_spec_in_the_docs_validates(validator):
    from test_docs import _doc_files, fenced_blocks, is_whole_spec

    n = 0
    for path in _doc_files():
        for lang, line, text in fenced_blocks(path):
            if lang == "yaml" and is_whole_spec(text):
                assert errors(validator, text) == [], f"{path.name}:{line}"
                n += 1
    assert n >= 20


BASE = """\
name: t
input: [3, 32, 32]
layers:
  - conv c1: {out: 8, k: 3, p: 1, act: relu}
  - maxpool: {k: 2}
"""


@pytest.mark.parametrize("old, new, unexpected", [
    ("k: 3, p: 1", "kernal: 3, p: 1", "kernal"),                       # a misspelt argument of conv
    ("maxpool: {k: 2}", "maxpool: {k: 2, stide: 2}", "stide"),
    ("name: t", "name: t\nlayer: []", "layer"),                        # an unknown top-level key
    ("layers:", "defaults: {conv: {kernal: 3}}\nlayers:", "kernal"),   # in defaults: too
])
def test_a_misspelt_key_is_rejected_by_the_schema_and_by_archcalc(validator, old, new, unexpected):
    text = BASE.replace(old, new)
    assert text != BASE
    assert any(f"'{unexpected}' was unexpected" in m for m in errors(validator, text)), errors(validator, text)
    with pytest.raises(SpecError):  # the schema agrees with archcalc itself
        archcalc.analyze(parse(text, "t.yaml"))


@pytest.mark.parametrize("old, new", [
    ("act: relu", "act: rleu"),                            # not an activation
    ("out: 8", "out: eight"),                              # a word where an integer goes
    ("k: 2", "k: 2, ceil: 1"),                             # a number where true/false goes
    ("[3, 32, 32]", "[3, 32]"),                            # input is [C, H, W] or [N]
    ("  - maxpool: {k: 2}", "  - maxpool: {k: 2, times: -1}"),
    ("  - maxpool: {k: 2}", "  - add: {a: [relu], b: [], times: 2}"),   # a merge's keys are branches
    ("  - maxpool: {k: 2}", "  - input"),                  # the input is not a layer
    ("  - maxpool: {k: 2}", "  - conv: {out: 3, k: 1, times: 2, first: {stide: 2}}"),
    ("  - maxpool: {k: 2}", "  - concat: {a: [conv: {out: 3, k: 1, stide: 1}], b: []}"),
    ("layers:", "defaults: {conv: {s: $x}}\nlayers:"),     # defaults are literal: no expressions
    ("layers:", "blocks: {conv: {body: [relu]}}\nlayers:"),  # a block named like a layer type
    ("layers:", "expect: {total: {parmas: 1}}\nlayers:"),
    ("layers:", "expect: {layers: {c1: {shape: [8, 32, 32]}}}\nlayers:"),
    ("layers:", "variants: {t2: {layers: []}}\nlayers:"),  # a variant cannot change layers
])
def test_wrong_values_are_rejected_by_the_schema_and_by_archcalc(validator, old, new):
    text = BASE.replace(old, new)
    assert text != BASE
    assert errors(validator, text), text
    with pytest.raises(SpecError):
        from archcalc.check import check

        check(parse(text, "t.yaml"))


ALL = """\
name: all
input: [16, 32, 32]
args: {w: 2, act: relu}
rounding: floor
defaults: {conv: {k: 3, p: same}, add: {inplace: true}, unit: {c: 4}}
blocks:
  unit:
    args: {c: ~, f: [relu], a: relu}
    rounding: warn
    notes: a block
    body:
      - conv: {out: "$c * 2", k: [1, "$c // 8"], p: [0, 0, 0, 0], act: $a, bn: $c == 4}
      - $f
      - add:
          when: $c > 2
          main: [conv: {out: $c * 2}]
          skip:
layers:
  - unit u1: {c: 8, times: $w, first: {a: $act}}
  - unit: [8]
  - group g: [relu, identity]
  - aux side: [avgpool: {global: true}, fc: {out: 3}]
  - from: u1_1
  - conv c5: {out: 8, k: 5, p: 2}
  - concat: {x: [maxpool: {k: 1, s: 1}], y: [from: c5]}
expect:
  - note: at 32 x 32
    layers:
      c5: {out: [8, 32, 32], params: 3208, inputs: [u1_1/add1]}   # 16 x 25 x 8 + 8; from: u1_1 is its output
      u1_1/conv1: {out: [16, 32, 32], rf: 1, aux: false}       # a 1x1 kernel: 8 // 8 = 1
      side/fc1: {out: [3], aux: true}
  - input: [16, 16, 16]
    defaults: {conv: {bias: false}}
    layers:
      c5: {out: [8, 16, 16], params: 3200}
variants:
  all3:
    args: {w: 3}
    source: a member
    expect: {layers: {u1_3/conv1: {out: [16, 32, 32]}}}
"""


def test_every_construct_of_the_language_validates_and_is_real(validator):
    from archcalc.check import check

    assert errors(validator, ALL) == []
    for member in ("all", "all3"):
        outcomes = check(parse(ALL, "all.yaml", variant=member))
        assert outcomes and all(o.ok for o in outcomes), [o for o in outcomes if not o.ok]
    # a layer key is `type` or `type label`: one label
    three = ALL.replace("conv c5:", "conv c5 x:")
    assert errors(validator, three)
    with pytest.raises(SpecError, match="cannot read layer"):
        archcalc.analyze(parse(three, "all.yaml"))


def test_every_top_level_key_of_spec_py_is_in_the_schema():
    props = schema.schema()["definitions"]["spec"]["properties"]
    assert list(props) == list(TOP_KEYS)


def test_every_rule_argument_has_a_json_type():
    defs = schema.schema()["definitions"]
    for name, r in rules.RULES.items():
        if r.merge or name == "input":
            continue
        props = defs[f"layer.{name}"]["properties"]
        for arg in r.known:
            assert props[arg].get("type") or props[arg].get("anyOf") or props[arg].get("enum"), (name, arg)
        for arg, default in r.defaults.items():
            assert props[arg]["default"] == default


def test_a_rule_argument_without_an_annotation_is_refused():
    @rules.rule("schema_probe_rule")
    def probe(x, *, width=3):  # deliberately unannotated
        """A probe."""

    try:
        with pytest.raises(TypeError, match="'width' has no type annotation"):
            schema.schema()
    finally:
        del rules.RULES["schema_probe_rule"]


def test_expressions_are_accepted_wherever_a_value_is(validator):
    text = BASE.replace("k: 3, p: 1", 'k: [$a, "make_divisible(3 * $b)"], p: $p, s: "$s // 2"')
    assert errors(validator, text) == []


def test_archcalc_schema_prints_it():
    out = subprocess.run([sys.executable, "-m", "archcalc", "schema"], capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == schema.schema()
    path = subprocess.run([sys.executable, "-m", "archcalc", "schema", "--path"], capture_output=True, text=True,
                          check=True).stdout.strip()
    assert Path(path) == Path(schema.SHIPPED) and Path(path).is_file()
