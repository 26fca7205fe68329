"""The documentation is tested like code.

- Every ```yaml block in docs/*.md whose first line (after comments) is `name:` is a whole spec: it
  must parse and analyze, and if it has an `expect:` block every expected number must hold (in a
  family, every member's).
  Fragments use another fence (```yaml-fragment) and are not run.
- Every ```yaml-error block must fail with exactly the message in the ```text block after it.
- The layer-type reference in docs/spec-language.md is generated from archcalc.rules.RULES and
  must equal what the registry gives today (regenerate: `python3 tests/test_docs.py --write`).
- So must docs/layers.md, the layer reference archcalc/docgen_layers.py writes (one section per
  registered type, each formula checked against archcalc on its worked example); `--write` too.
- The key tables of docs/json.md equal the keys report.to_dict produces, with the documented
  types, and the documented batch scaling holds.
- The module map of docs/architecture.md lists every module and every import it may make.
"""
from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
SPEC_LANGUAGE = DOCS / "spec-language.md"
JSON_DOC = DOCS / "json.md"
ARCHITECTURE = DOCS / "architecture.md"
LAYERS_DOC = DOCS / "layers.md"

sys.path.insert(0, str(REPO))  # so `python3 tests/test_docs.py --write` finds the checkout's archcalc

import archcalc  # noqa: E402
from archcalc import rules  # noqa: E402
from archcalc.check import check  # noqa: E402
from archcalc.report import to_dict  # noqa: E402
from archcalc.spec import SpecError  # noqa: E402

_FENCE = re.compile(r"^```(\S*)\s*$")


# ---------------------------------------------------------------- fenced blocks


def fenced_blocks(path: Path) -> list[tuple[str, int, str]]:
    """(info string, line of the opening fence, text) of every fenced block in a Markdown file."""
    blocks = []
    lang, start, body = None, 0, []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        m = _FENCE.match(line)
        if lang is None and m:
            lang, start, body = m.group(1), number, []
        elif lang is not None and line.strip() == "```":
            blocks.append((lang, start, "\n".join(body) + "\n"))
            lang = None
        elif lang is not None:
            body.append(line)
    assert lang is None, f"{path.name}:{start}: unclosed ``` fence"
    return blocks


def is_whole_spec(text: str) -> bool:
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        return line.startswith("name:")
    return False


def _doc_files() -> list[Path]:
    return sorted(DOCS.glob("*.md"))


def _spec_examples():
    out = []
    for path in _doc_files():
        for lang, line, text in fenced_blocks(path):
            if lang == "yaml" and is_whole_spec(text):
                out.append(pytest.param(path, line, text, id=f"{path.name}:{line}"))
    return out


def _error_examples():
    out = []
    for path in _doc_files():
        blocks = fenced_blocks(path)
        for i, (lang, line, text) in enumerate(blocks):
            if lang == "yaml-error":
                shown = blocks[i + 1] if i + 1 < len(blocks) else None
                out.append(pytest.param(path, line, text, shown, id=f"{path.name}:{line}"))
    return out


@pytest.mark.parametrize("path, line, text", _spec_examples())
def test_yaml_example_runs(path, line, text):
    spec = archcalc.parse(text, file=f"{path.name}:{line}")
    # A family runs every member: each variant's expect: is its own.
    for member in [spec.name, *spec.variants]:
        member_spec = archcalc.parse(text, file=f"{path.name}:{line}", variant=member)
        report = archcalc.analyze(member_spec)
        assert report.rows, "an example must produce rows"
        bad = [f"{o.where}: {o.key} expected {o.expected!r}, got {o.actual!r}"
               for o in check(member_spec) if not o.ok]
        assert not bad, (f"{path.name}:{line}: {member}: the example's expect: block does not hold:\n"
                         + "\n".join(bad))


@pytest.mark.parametrize("path, line, text, shown", _error_examples())
def test_error_example_prints_documented_message(path, line, text, shown):
    assert shown is not None and shown[0] == "text", (
        f"{path.name}:{line}: a ```yaml-error block must be followed by a ```text block with the message")
    with pytest.raises(SpecError) as info:
        spec = archcalc.parse(text, file="net.yaml")
        archcalc.analyze(spec)
        check(spec)
    assert f"archcalc: {info.value}" == shown[2].strip()


def test_docs_have_runnable_examples():
    """Guards the runner above: the examples exist, so a broken fence cannot skip them silently."""
    per_file = {}
    for p in _spec_examples():
        per_file[p.values[0].name] = per_file.get(p.values[0].name, 0) + 1
    assert per_file.get("spec-language.md", 0) >= 10, per_file
    assert per_file.get("conventions.md", 0) >= 3, per_file
    examples_with_expect = [p for p in _spec_examples() if "\nexpect:" in p.values[2]]
    assert len(examples_with_expect) >= 6
    assert len(_error_examples()) >= 5


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _prose(path: Path) -> str:
    """A Markdown file without its fenced blocks."""
    out, inside = [], False
    for line in path.read_text(encoding="utf-8").splitlines():
        if (not inside and _FENCE.match(line)) or (inside and line.strip() == "```"):
            inside = not inside
        elif not inside:
            out.append(line)
    return "\n".join(out)


@pytest.mark.parametrize("name", sorted(p.name for p in DOCS.glob("*.md")) + ["../README.md"])
def test_links_resolve(name):
    here = (DOCS / name).parent
    for target in re.findall(r"\]\(([^)\s]+)\)", _prose(DOCS / name)):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        file_part, _, anchor = target.partition("#")
        linked = (here / file_part) if file_part else DOCS / name
        assert linked.exists(), f"{name}: link to missing file {file_part}"
        if anchor:
            headings = re.findall(r"^#+ (.+)$", _prose(linked), flags=re.M)
            assert anchor in {_slug(h) for h in headings}, f"{name}: no heading #{anchor} in {linked.name}"


def test_yaml_fences_in_spec_language_are_all_whole_specs_or_marked():
    """In the spec-language reference every ```yaml block runs; fragments must say so in their fence."""
    for lang, line, text in fenced_blocks(SPEC_LANGUAGE):
        if lang == "yaml":
            assert is_whole_spec(text), f"spec-language.md:{line}: use ```yaml-fragment for a partial spec"


# ---------------------------------------------------------------- the layer-type reference

BEGIN, END = "<!-- rules:begin (generated by tests/test_docs.py --write) -->", "<!-- rules:end -->"


def _yaml_value(v) -> str:
    if v is True:
        return "true"
    if v is False:
        return "false"
    if v is None:
        return "~"
    return str(v)


def render_rule_reference() -> str:
    """The reference table of every layer type, straight from the registry (signature = schema)."""
    lines = [
        "| type | aliases | arguments (**bold** = required; `name: default`) | what it is |",
        "|:---|:---|:---|:---|",
    ]
    for name, r in rules.RULES.items():
        aliases = ", ".join(f"`{a}`" for a, target in sorted(rules.ALIASES.items()) if target == name) or ""
        parts = [f"**`{a}`**" for a in r.required] + [f"`{a}: {_yaml_value(d)}`" for a, d in r.defaults.items()]
        if r.merge:
            # A merge item's mapping holds its branches, so its own arguments come from defaults: only.
            args = "named branches: `- " + name + ": {a: [...], b: [...]}`"
            if parts:
                args += "; through `defaults:` only: " + ", ".join(parts)
        else:
            args = ", ".join(parts) or "none"
        lines.append(f"| `{name}` | {aliases} | {args} | {r.doc} |")
    return "\n".join(lines) + "\n"


def _generated_section(text: str) -> str:
    assert BEGIN in text and END in text, "spec-language.md lost its generated rules section markers"
    return text.split(BEGIN, 1)[1].split(END, 1)[0].strip("\n") + "\n"


def test_rule_reference_is_current():
    text = SPEC_LANGUAGE.read_text(encoding="utf-8")
    assert _generated_section(text) == render_rule_reference(), (
        "the layer-type table in docs/spec-language.md differs from the registry; "
        "run `python3 tests/test_docs.py --write`")


def test_every_rule_type_is_documented():
    text = SPEC_LANGUAGE.read_text(encoding="utf-8")
    table = _generated_section(text)
    for name, r in rules.RULES.items():
        row = next((line for line in table.splitlines() if line.startswith(f"| `{name}` |")), None)
        assert row is not None, f"layer type {name!r} is missing from docs/spec-language.md"
        for arg in r.known:
            assert f"`{arg}" in row, f"{name}: argument {arg!r} is not documented"
    for alias, target in rules.ALIASES.items():
        assert f"`{alias}`" in table, f"alias {alias!r} of {target!r} is not documented"
    # Beyond the table, every type is explained in prose (a heading or a sentence naming it).
    prose = text.replace(table, "")
    for name in rules.RULES:
        assert f"`{name}`" in prose, f"layer type {name!r} has a table row but no explanation in the prose"


# ---------------------------------------------------------------- the layer reference (docs/layers.md)


def test_layer_reference_is_current():
    """docs/layers.md is archcalc/docgen_layers.render(): the registry's docstrings, the formulas (each
    evaluated on its worked example against archcalc's figure while rendering), the pytorch profile
    and the examples' numbers as archcalc computes them today."""
    from archcalc import docgen_layers

    assert LAYERS_DOC.read_text(encoding="utf-8") == docgen_layers.render(), (
        "docs/layers.md differs from what the registry, the profile and archcalc/docgen_layers.py give; "
        "run `python3 tests/test_docs.py --write`")


def test_every_rule_type_has_a_layer_reference_entry():
    from archcalc import docgen_layers

    text = LAYERS_DOC.read_text(encoding="utf-8")
    headings = re.findall(r"^## `(\w+)`$", text, flags=re.M)
    assert headings == list(rules.RULES), "docs/layers.md: one section per registered type, in registry order"
    assert set(docgen_layers.EXAMPLES) == set(rules.RULES)
    for name in rules.RULES:
        body = text.split(f"## `{name}`\n", 1)[1].split("\n## ", 1)[0]
        for what in ("| output |", "| params |", "| MACs |", "PyTorch:", "**Worked example.**", "```yaml",
                     "| backward keeps |"):
            assert what in body, f"docs/layers.md: {name} has no {what!r}"


def test_layer_reference_formulas_hold_and_a_wrong_one_is_refused():
    """The guard behind the page: every formula equals archcalc's figure on its example, and a
    formula that does not (the 1x1 shortcut's BN left out) stops the generation."""
    from dataclasses import replace

    from archcalc import docgen_layers

    for example in docgen_layers.EXAMPLES.values():
        assert docgen_layers.check(example) == [], example.type
    wrong = replace(docgen_layers.EXAMPLES["shortcut"], params="out*C")
    assert docgen_layers.check(wrong) == ["shortcut: params formula 'out*C' gives 8192, archcalc 8448"]
    with pytest.raises(ValueError, match="would state a wrong formula"):
        docgen_layers.section(wrong)


# ---------------------------------------------------------------- the JSON interface

# A spec that makes every part of the JSON non-empty: an aux branch and a warning.
_JSON_PROBE = """
name: probe
source: a probe for the JSON key tables
input: [3, 35, 35]
layers:
  - conv: {out: 8, k: 3, s: 2, bn: true, act: relu}
  - aux side: [avgpool: {global: true}, fc: {out: 4}]
  - maxpool: {k: 2}
  - fc: {out: 10}
"""

_TYPES = {
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "[integer]": lambda v: isinstance(v, list) and all(isinstance(x, int) and not isinstance(x, bool) for x in v),
    "[string]": lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
    "[layer]": lambda v: isinstance(v, list) and all(isinstance(x, dict) for x in v),
    "[warning]": lambda v: isinstance(v, list) and all(isinstance(x, dict) for x in v),
    "totals": lambda v: isinstance(v, dict),
    "totals or null": lambda v: v is None or isinstance(v, dict),
}


def json_key_table(marker: str) -> dict[str, dict[str, str]]:
    """The Markdown table after `<!-- keys: marker -->` in docs/json.md: key -> {column: cell}."""
    lines = JSON_DOC.read_text(encoding="utf-8").splitlines()
    tag = f"<!-- keys: {marker} -->"
    assert tag in lines, f"docs/json.md has no {tag} table"
    i = lines.index(tag) + 1
    while not lines[i].startswith("|"):
        i += 1
    header = [c.strip() for c in lines[i].strip("|").split("|")]
    rows = {}
    for line in lines[i + 2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        key = cells[0].strip("`")
        assert key not in rows, f"docs/json.md: key {key!r} documented twice in the {marker} table"
        rows[key] = dict(zip(header, cells))
    return rows


def _probe(**options) -> dict:
    return to_dict(archcalc.analyze(archcalc.parse(_JSON_PROBE, "probe.yaml"), **options))


def _assert_documented(data: dict, marker: str) -> dict:
    table = json_key_table(marker)
    assert set(table) == set(data), (
        f"docs/json.md {marker} table: undocumented {sorted(set(data) - set(table))}, "
        f"documented but absent {sorted(set(table) - set(data))}")
    for key, cells in table.items():
        kind = cells["type"].strip("`")
        assert kind in _TYPES, f"docs/json.md {marker}.{key}: unknown type word {kind!r}"
        assert _TYPES[kind](data[key]), f"{marker}.{key} is documented as {kind}, got {data[key]!r}"
    return table


def test_json_top_level_keys_are_documented():
    data = _probe()
    assert data["aux_totals"] is not None and data["warnings"], "the probe must exercise aux and warnings"
    _assert_documented(data, "top")


def test_json_layer_keys_are_documented():
    data = _probe()
    for layer in data["layers"]:
        _assert_documented(layer, "layers")


def test_json_totals_keys_are_documented_and_aux_totals_has_the_same_keys():
    data = _probe()
    _assert_documented(data["totals"], "totals")
    assert set(data["aux_totals"]) == set(data["totals"])


def test_json_warning_keys_are_documented():
    for w in _probe()["warnings"]:
        _assert_documented(w, "warnings")


def test_json_schema_version_is_the_documented_one():
    text = JSON_DOC.read_text(encoding="utf-8")
    m = re.search(r"current `schema_version` is (\d+)", text)
    assert m, "docs/json.md must state the current schema_version"
    assert int(m.group(1)) == _probe()["schema_version"]


def test_json_batch_scaling_is_as_documented():
    """`per` column: network, sample and step figures do not move with the batch; batch figures
    scale; `batch + step` figures are a batch-scaled part plus the step figures."""
    one, two, three = _probe(batch=1), _probe(batch=2), _probe(batch=3)
    table = json_key_table("totals")
    step_keys = [key for key, cells in table.items() if cells["per"] == "step"]
    assert step_keys, "the probe's batch norm keeps per-step statistics; some totals key must say so"
    for section in ("totals", "aux_totals"):
        per_step = sum(one[section][key] for key in step_keys)
        for key, cells in table.items():
            per = cells["per"]
            a, b, c = one[section][key], two[section][key], three[section][key]
            if per == "batch":
                assert c == 3 * a and a > 0, f"{section}.{key} is documented as batch-scaled"
            elif per == "batch + step":
                slope = b - a
                assert slope > 0 and c == a + 2 * slope, f"{section}.{key} is documented as batch-scaled plus a constant"
                assert a - slope == per_step, f"{section}.{key}: its constant part is not the per-step figures"
            else:
                assert per in ("sample", "network", "step"), (
                    f"totals.{key}: per must be network, sample, step, batch or batch + step")
                assert a == c, f"{section}.{key} is documented as per {per}, but changes with the batch"
    assert one["totals"]["saved_batch_bytes"] > 0, "the probe must exercise the per-step part"
    layer_table = json_key_table("layers")
    per_batch_keys = {key for key, cells in layer_table.items() if cells["unit"].endswith("per batch")}
    assert per_batch_keys == {"out_bytes", "saved_bytes"}
    for r1, r2, r3 in zip(one["layers"], two["layers"], three["layers"]):
        assert {k: v for k, v in r1.items() if k not in per_batch_keys} == \
               {k: v for k, v in r3.items() if k not in per_batch_keys}, "layer figures are documented as per sample"
        assert r3["out_bytes"] == 3 * r1["out_bytes"], r1["path"]
        # per-sample saves scale with the batch; BN's statistics are a constant on top
        assert r3["saved_bytes"] - r2["saved_bytes"] == r2["saved_bytes"] - r1["saved_bytes"] >= 0, r1["path"]


def test_json_example_is_real_output():
    """docs/json.md's example: its conv1_1 entry and top-level values are the real output of the
    VGG-16 spec at the top of spec-language.md (whose numbers that spec's expect: block checks)."""
    import json

    example = next(text for lang, _, text in fenced_blocks(JSON_DOC) if lang == "json")
    vgg = next(text for lang, _, text in fenced_blocks(SPEC_LANGUAGE) if lang == "yaml" and "name: vgg16_doc" in text)
    data = to_dict(archcalc.analyze(archcalc.parse(vgg, "vgg16_doc.yaml")))
    start = example.index('{\n      "name": "conv1_1"')
    end = example.index("}", start) + 1
    assert json.loads(example[start:end]) == next(r for r in data["layers"] if r["path"] == "conv1_1")
    for key, value in re.findall(r'^  "(\w+)": (.+?),?$', example, flags=re.M):
        if value not in ("[", "{"):
            assert json.loads(value) == data[key], f"docs/json.md example: {key} is {data[key]!r}"
    for key, value in re.findall(r'"(\w+)": (\d+)', example[example.index('"totals"'):]):
        assert int(value) == data["totals"][key], f"docs/json.md example: totals.{key} is {data['totals'][key]}"


def test_json_bytes_follow_the_dtype_as_documented():
    """Keys whose unit is bytes change with --dtype; fixed bytes and the other units do not."""
    fp32, fp16 = _probe(dtype="fp32"), _probe(dtype="fp16")
    for key, cells in json_key_table("totals").items():
        a, b = fp32["totals"][key], fp16["totals"][key]
        if key.endswith("_bytes"):
            assert cells["unit"] in ("bytes", "fixed bytes", "fixed bytes at the peak"), f"totals.{key}: a *_bytes key is in bytes"
        if cells["unit"] == "bytes":
            assert b < a, f"totals.{key} is in bytes and should shrink at fp16"
        elif cells["unit"].endswith("at the peak"):  # the largest moment may move with the dtype
            assert a >= 0 and b >= 0
        else:
            assert a == b and a > 0, f"totals.{key} ({cells['unit']}) should not depend on the dtype"
    assert fp16["totals"]["param_bytes"] == 2 * fp16["totals"]["params"]


# ---------------------------------------------------------------- the module map


def module_map() -> dict[str, set[str]]:
    """docs/architecture.md's module table: module -> the archcalc modules it may import."""
    lines = ARCHITECTURE.read_text(encoding="utf-8").splitlines()
    tag = "<!-- modules -->"
    assert tag in lines, "docs/architecture.md lost its <!-- modules --> table"
    i = lines.index(tag) + 1
    while not lines[i].startswith("|"):
        i += 1
    header = [c.strip() for c in lines[i].strip("|").split("|")]
    out = {}
    for line in lines[i + 2:]:
        if not line.startswith("|"):
            break
        cells = dict(zip(header, (c.strip() for c in line.strip().strip("|").split("|"))))
        module = cells["module"].strip("`")
        out[module] = set(re.findall(r"`([\w./]+)`", cells["may import"]))
    return out


def _actual_imports(path: Path) -> set[str]:
    """archcalc modules a file imports (lazy imports inside functions included), as repo paths."""
    root = REPO / "archcalc"

    def module_file(target: Path) -> Path | None:
        if target.with_suffix(".py").exists():
            return target.with_suffix(".py")
        if (target / "__init__.py").exists():
            return target / "__init__.py"
        return None

    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            assert not any(a.name.split(".")[0] == "archcalc" for a in node.names), (
                f"{path}: use relative imports inside the package")
        if not (isinstance(node, ast.ImportFrom) and node.level):
            continue
        base = path.parent
        for _ in range(node.level - 1):
            base = base.parent
        if node.module:  # from .a.b import x: the module a/b.py (or the package a/b/)
            targets = [module_file(base / node.module.replace(".", "/"))]
        else:  # from . import x: the submodule x.py, or a name from the package's __init__.py
            targets = [module_file(base / a.name) or base / "__init__.py" for a in node.names]
        for t in targets:
            assert t is not None, f"{path}: cannot resolve `from {'.' * node.level}{node.module or ''} import ...`"
            found.add(str(t.relative_to(root)))
    return found


def test_every_module_is_in_the_module_map():
    documented = module_map()
    modules = sorted(str(p.relative_to(REPO / "archcalc")) for p in (REPO / "archcalc").rglob("*.py"))
    missing = [m for m in modules if m not in documented]
    assert not missing, f"docs/architecture.md's module map does not list {missing}"
    gone = [m for m in documented if m not in modules]
    assert not gone, f"docs/architecture.md lists modules that do not exist: {gone}"


def test_imports_follow_the_documented_arrows():
    documented = module_map()
    for module, allowed in documented.items():
        path = REPO / "archcalc" / module
        if not path.exists():
            continue
        extra = _actual_imports(path) - allowed - {module}
        assert not extra, f"archcalc/{module} imports {sorted(extra)}, which docs/architecture.md does not allow"


def test_add_a_layer_type_example_works():
    """The rule and the profile entry in architecture.md's how-to are real code against today's
    rules.py and profiles API: the rule says what the layer is, the profile what PyTorch keeps."""
    from archcalc.profiles import pytorch

    blocks = [text for lang, _, text in fenced_blocks(ARCHITECTURE) if lang == "python"]
    code = next(text for text in blocks if "@rule(" in text)
    profile_code = next(text for text in blocks if "PARTS[" in text)
    before_rules, before_aliases, before_parts = dict(rules.RULES), dict(rules.ALIASES), dict(pytorch.PARTS)
    try:
        exec(compile(code, "architecture.md", "exec"), dict(vars(rules)))
        (name,) = set(rules.RULES) - set(before_rules)
        cost = rules.apply(rules.lookup(name), (8, 5, 7), {"scale": 3})
        assert cost.out == (8, 15, 21) and cost.params == 0 and cost.other_ops == 8 * 15 * 21
        spec = archcalc.parse(f"name: up\ninput: [8, 5, 7]\nlayers:\n  - {name}: {{scale: 2}}\n", "up.yaml")
        with pytest.raises(SpecError, match=f"the pytorch profile does not model {name!r} layers"):
            archcalc.analyze(spec)  # a rule without a profile entry is an error, never a silent zero
        exec(compile(profile_code, "architecture.md", "exec"), dict(vars(pytorch)))
        assert set(pytorch.PARTS) - set(before_parts) == {name}
        row = archcalc.analyze(spec).rows[-1]
        assert row.out == (8, 10, 14)
        assert row.mem.saved == () and not row.mem.alias and row.saved_elems == 0  # a new tensor, nothing kept
    finally:
        rules.RULES.clear()
        rules.RULES.update(before_rules)
        rules.ALIASES.clear()
        rules.ALIASES.update(before_aliases)
        pytorch.PARTS.clear()
        pytorch.PARTS.update(before_parts)


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        text = SPEC_LANGUAGE.read_text(encoding="utf-8")
        _generated_section(text)  # the markers are there
        head, rest = text.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
        SPEC_LANGUAGE.write_text(head + BEGIN + "\n" + render_rule_reference() + END + tail, encoding="utf-8")
        print("docs/spec-language.md: layer-type table regenerated")
        from archcalc import docgen_layers

        LAYERS_DOC.write_text(docgen_layers.render(), encoding="utf-8")
        print("docs/layers.md: layer reference regenerated")
    else:
        print(render_rule_reference(), end="")
