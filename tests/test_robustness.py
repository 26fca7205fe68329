"""Hostile specs (issue 10): every bad file is one line on stderr, `archcalc: FILE:LINE: ...`, exit 2,
no traceback, and fast; resource bombs are refused by the named limits of archcalc/limits.py.

Each file in tests/bad_specs/ starts with `# line: N` (the line the error names) and
`# expect: TEXT` (a part of the message).
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archcalc import analyze
from archcalc.cli import main
from archcalc.limits import LIMITS
from archcalc.spec import SpecError, bundled_text, parse

BAD = Path(__file__).parent / "bad_specs"
FILES = sorted(BAD.glob("*.yaml"))


def _header(path: Path) -> tuple[int, str]:
    head = path.read_bytes()[:400].decode("utf-8", "replace").splitlines()
    line = int(re.fullmatch(r"# line: (\d+)", head[0]).group(1))
    expect = re.fullmatch(r"# expect: (.*)", head[1]).group(1)
    return line, expect


def _run(*args: str):
    return CliRunner().invoke(main, list(args))


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_bad_spec_is_one_line(path):
    line, expect = _header(path)
    result = _run("table", str(path))
    assert result.exit_code == 2, result.output
    err = result.stderr
    assert "Traceback" not in err
    assert err.count("\n") == 1, err
    assert err.startswith(f"archcalc: {path}:{line}: "), err
    assert expect in err, err


def test_bad_specs_cover_the_classes():
    assert len(FILES) >= 25


def test_check_goes_on_after_a_bad_file(tmp_path):
    good = tmp_path / "lenet5.yaml"
    good.write_text(bundled_text("lenet5"), encoding="utf-8")
    result = _run("check", str(BAD / "tag_int.yaml"), str(good), str(BAD / "char_nul.yaml"))
    assert result.exit_code == 2
    assert "ok   lenet5" in result.stdout
    assert len(result.stderr.splitlines()) == 2 and "Traceback" not in result.stderr


def test_huge_file_refused_before_reading(tmp_path):
    big = tmp_path / "big.yaml"
    layer = "  - conv: {out: 4, k: 1}\n"
    with open(big, "w") as f:
        f.write("name: big\ninput: [3, 8, 8]\nlayers:\n")
        f.write(layer * (LIMITS["file_bytes"] // len(layer) + 1000))
    result = _run("table", str(big))
    assert result.exit_code == 2
    assert "limit file_bytes" in result.stderr and result.stderr.startswith(f"archcalc: {big}:")


def test_node_budget_is_incremental():
    # Many layers, each a separate node (no times:), stop at graph_nodes, not at the end of the list.
    text = "name: many\ninput: [3, 8, 8]\nlayers:\n" + "  - relu\n" * 2000
    old = LIMITS["graph_nodes"]
    LIMITS["graph_nodes"] = 500
    try:
        with pytest.raises(SpecError, match="limit graph_nodes") as e:
            analyze(parse(text, file="many.yaml"))
        assert e.value.line == 4 + 499  # the 500th relu (the input is node 1)
    finally:
        LIMITS["graph_nodes"] = old


def test_limit_option_raises_a_limit():
    old = dict(LIMITS)
    try:
        result = _run("--limit", "yaml_depth=400", "table", str(BAD / "deep_flow.yaml"))
        assert "limit yaml_depth" not in result.stderr
        result = _run("--limit", "nonsense=3", "table", "lenet5")
        assert result.exit_code == 2 and "--limit" in result.output
    finally:
        LIMITS.clear()
        LIMITS.update(old)


# ---------------------------------------------------------------- mutated bundled specs

_BASE = bundled_text("resnet20")
_TAGS = ["!!int ", "!!bool ", "!!timestamp ", "!!pairs ", "!!set ", "!!omap ", "!!binary ", "!!float ", "!!null ",
         "!!str ", "!!map ", "!!seq ", "&a ", "*a ", "!foo ", "[", "{", "- ", ": ", "$", "\x00", "\\ud800", '"']


@st.composite
def _mutated(draw):
    text = _BASE
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(text)))
        kind = draw(st.sampled_from(["insert", "delete", "replace", "tag"]))
        if kind == "delete":
            text = text[:i] + text[i + draw(st.integers(1, 20)):]
        elif kind == "tag":
            text = text[:i] + draw(st.sampled_from(_TAGS)) + text[i:]
        else:
            c = draw(st.characters(codec="utf-8") | st.sampled_from(list("[]{}:,-&*!|>'\"#\n 0123456789$")))
            text = text[:i] + c + text[i + (kind == "replace"):]
    return text


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_mutated())
def test_mutated_spec_analyzes_or_fails_cleanly(text):
    try:
        analyze(parse(text, file="mutant.yaml"))
    except SpecError as e:
        assert "\n" not in str(e)
