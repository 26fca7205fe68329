"""The fuzz campaign of issue 10 (benchmarks/fuzz.py), run small: a fixed seed's 200 cases must give
no traceback, no unlocated or multi-line error, nothing over the time and memory limits and no
difference between two runs. The long campaign's figures are in docs/limits.md ("Fuzz campaign").

Also the fixes the campaign led to, each on the input that found it.
"""
from __future__ import annotations

import random
import re
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from archcalc import analyze, parse
from archcalc.cli import main
from archcalc.formats import render
from archcalc.formats.columns import parse_columns
from archcalc.formats.text import RICH_MAX_ROWS
from archcalc.limits import LIMITS
from archcalc.rules import _bins
from archcalc.spec import SpecError

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))  # the workers (spawned) import it by the same path

import fuzz  # noqa: E402


def test_smoke_campaign(capsys):
    result = fuzz.main(["--cases", "200", "--seed", "11", "--workers", "1", "--no-cli-bombs", "--progress", "0",
                        "--det-every", "10", "--det-cross", "20"])
    out = capsys.readouterr().out
    assert result["cases"] == 200, out
    assert result["failures"] == {k: 0 for k in result["failures"]}, out
    assert "RESULT: PASS" in out


@pytest.mark.parametrize("name", sorted(fuzz.bombs()))
def test_bomb_is_refused_or_analysed_within_limits(name, tmp_path, monkeypatch):
    # Generous CPU here (a shared CI machine); the campaign holds every bomb to 1 s in a CLI subprocess.
    monkeypatch.chdir(tmp_path)
    out = fuzz.run_case(fuzz.bomb_bytes(name), random.Random(0), 5.0, 200.0, tmp_path / fuzz.FILE)
    assert out.status in ("ok", "located"), (out.status, out.detail, out.message)


def test_replay_writes_the_case(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    fuzz.main(["--replay", "5", "--seed", "11"])
    assert (tmp_path / "fuzz-case-5.yaml").read_bytes() == fuzz.make_case(11, 5)[2]
    assert "outcome:" in capsys.readouterr().out


def test_every_limit_is_documented():
    from archcalc import expr

    doc = (REPO / "docs" / "limits.md").read_text(encoding="utf-8")
    for name in [*LIMITS, *expr.LIMITS]:
        assert f"`{name}`" in doc, name


# ---------------------------------------------------------------- the fixes


def test_adaptive_bins_closed_form():
    # adaptive_avgpool summed its bins in a loop: out = 10**6 cost ~0.1 s a layer, 20 layers 1.7 s.
    for n in range(1, 70):
        for o in range(1, 70):
            widths = [-(-((i + 1) * n) // o) - (i * n) // o for i in range(o)]
            assert _bins(n, o) == (max(widths), sum(widths)), (n, o)
    t = time.process_time()
    analyze(parse("name: a\ninput: [3, 8, 8]\nlayers:\n  - adaptive_avgpool: {out: [999999, 1]}\n", file="a.yaml"))
    assert time.process_time() - t < 0.05


def _check(tmp_path, text):
    path = tmp_path / "f.yaml"
    path.write_text(text)
    result = CliRunner().invoke(main, ["check", str(path)])
    return result, path


def test_check_nodes_bounds_repeated_expect_cases(tmp_path):
    # `expect: [*c, *c, ...]` re-analysed a graph of up to graph_nodes once per case.
    under = LIMITS["graph_nodes"] - 10
    text = (f"name: f\ninput: [3, 8, 8]\nlayers:\n  - relu: {{times: {under}}}\nexpect:\n"
            "  - &c {total: {params: 0}}\n" + "  - *c\n" * 50)
    t = time.process_time()
    result, path = _check(tmp_path, text)
    assert time.process_time() - t < 5
    assert result.exit_code == 2
    assert re.fullmatch(rf"archcalc: {re.escape(str(path))}:\d+: .*\(limit check_nodes\)\n", result.stderr)


def test_check_nodes_is_shared_by_a_familys_members(tmp_path):
    under = LIMITS["graph_nodes"] - 10
    text = (f"name: f\ninput: [3, 8, 8]\nargs: {{n: 1}}\nlayers:\n  - relu: {{times: {under}}}\nvariants:\n"
            + "".join(f"  v{k}: {{args: {{n: {k}}}}}\n" for k in range(5)))
    result, _ = _check(tmp_path, text)
    assert result.exit_code == 2 and "limit check_nodes" in result.stderr
    assert "ok   f:" in result.stdout  # the first members were checked


def test_variant_over_defaults_that_are_not_a_mapping(tmp_path):
    # _variant merged the family's defaults before expand had checked them: a ValueError traceback.
    text = ("name: f\ninput: [3, 8, 8]\ndefaults:\n  conv: [1]\nlayers:\n  - conv: {out: 4, k: 1}\n"
            "variants:\n  v1: {defaults: {conv: {k: 3}}}\n")
    result, path = _check(tmp_path, text)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert f"archcalc: {path}:4: defaults for 'conv' must be a mapping of arguments\n" in result.stderr
    result = CliRunner().invoke(main, ["table", str(path), "--variant", "v1"])
    assert result.exit_code == 2 and result.stderr.startswith(f"archcalc: {path}:4: ")


def test_long_table_is_drawn_plain_on_a_terminal():
    # rich took ~0.4 ms a row: a 40-byte spec of 10,000 rows took 4 s on a terminal.
    report = analyze(parse(f"name: t\ninput: [3, 8, 8]\nlayers:\n  - relu: {{times: {RICH_MAX_ROWS + 1}}}\n",
                           file="t.yaml"))
    t = time.process_time()
    text = render("table", report, list(report.rows), parse_columns(None), width=120, color=True)
    assert time.process_time() - t < 1
    assert "\x1b[" not in text and "relu1001" in text


def test_node_count_comes_before_composing():
    # 10 MB of `1,` was composed whole (16 s, 1.5 GB) before yaml_nodes was checked.
    text = "name: n\ninput: [3, 8, 8]\nlayers: [relu]\nexpect: [" + "1," * (LIMITS["yaml_nodes"] * 3) + "]\n"
    t = time.process_time()
    with pytest.raises(SpecError, match="limit yaml_nodes") as e:
        parse(text, file="n.yaml")
    assert time.process_time() - t < 2 and e.value.line == 4


def test_expect_case_defaults_are_located(tmp_path):
    # An expect case's defaults: were laid over the spec's as a plain dict, so a bad one had no line.
    text = ("name: f\ninput: [3, 8, 8]\nlayers:\n  - conv: {out: 4, k: 1}\nexpect:\n  - defaults:\n"
            "      stem: {k: 3}\n    total: {params: 16}\n")
    result, path = _check(tmp_path, text)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"archcalc: {path}:7: defaults for unknown layer type 'stem'")
