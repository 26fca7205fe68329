"""The command line: `table` in every format, options, colour, `list`, `check`, `python -m archcalc`.

The specs here are small enough to count by hand; the numbers are worked out in comments.
"""
from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
import textwrap

import pytest
from click.testing import CliRunner

from archcalc.cli import main

RESIDUAL = """\
name: res
source: a residual toy, counted by hand
input: [4, 8, 8]                                  # 256 elements
layers:
  - conv stem: {out: 4, k: 3, p: 1, act: relu}    # 4*4*9 + 4 = 148 params; 8*8*4 * 36 = 9,216 MACs
  - add:
      main:
        - conv a: {out: 4, k: 3, p: 1, act: relu} # 148, 9,216
        - conv b: {out: 4, k: 3, p: 1}            # 148, 9,216
      skip: []
  - relu
  - maxpool: {k: 2}                               # 4x4x4 = 64
  - fc: {out: 10}                                 # 64*10 + 10 = 650 params, 640 MACs
"""
# totals: params 3*148 + 650 = 1,094; MACs 3*9,216 + 640 = 28,288
# forward allocations: input 256 + stem 256 + a 256 + b 256 + sum 256 + pool 64 + fc 10 = 1,354
# saved, each tensor once: input, stem out, a out, sum (ReLU in place), pool out = 4*256 + 64 = 1,088,
#   plus the pool's int64 indices 64*8 = 512 B
# peak: the caller's input (alive for the whole pass) and, while b runs, stem's output (held for the
#   skip), a's and b's: 4*256 = 1,024
PARAMS, MACS, OUT, SAVED, SAVED_FIXED_BYTES, PEAK = 1094, 28288, 1354, 1088, 512, 1024

BLOCKS = """\
name: blocks
input: [3, 16, 16]
blocks:
  unit:
    args: {c: ~}
    body:
      - conv: {out: $c, k: 3, p: 1}
      - conv: {out: $c, k: 1}
layers:
  - unit u1: [8]     # 8*27+8 = 224 and 8*8+8 = 72 params
  - unit u2: [4]     # 4*72+4 = 292 and 4*4+4 = 20
"""


@pytest.fixture
def spec_file(tmp_path):
    def write(text, name="spec.yaml"):
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return str(path)
    return write


def cli(*args, env=None):
    result = CliRunner().invoke(main, list(args), env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result


# ---------------------------------------------------------------- table: csv


def test_csv_exact_integers_and_total_row(spec_file):
    r = cli("table", spec_file(RESIDUAL), "--format", "csv")
    assert r.exit_code == 0
    rows = list(csv.reader(io.StringIO(r.stdout)))
    assert rows[0] == ["path", "out", "params", "macs", "out_elems", "saved_elems", "rf"]
    assert rows[1] == ["input", "4x8x8", "0", "0", "256", "0", "1x1"]
    # stem keeps its input and its in-place ReLU output: 2*256; RF 3
    assert rows[2] == ["stem", "4x8x8", "148", "9216", "256", "512", "3x3"]
    assert [row[0] for row in rows[1:-1]] == ["input", "stem", "main/a", "main/b", "add1", "relu1", "maxpool1", "fc1"]
    # the fc sees the whole 4x4 map behind the 2x2 pool: 8 + 3*2 = 14
    assert rows[-2] == ["fc1", "10", "650", "640", "10", "64", "14x14"]
    assert rows[-1] == ["TOTAL", "", str(PARAMS), str(MACS), str(OUT), str(SAVED), ""]


def test_csv_columns_option(spec_file):
    r = cli("table", spec_file(RESIDUAL), "--format", "csv", "--columns",
            "path,type,weight_params,bias_params,flops,other_ops,jump")
    rows = list(csv.reader(io.StringIO(r.stdout)))
    assert rows[0] == ["path", "type", "weight_params", "bias_params", "flops", "other_ops", "jump"]
    # stem: weights 4*4*9 = 144, biases 4, FLOPs 2 x 9,216, other ops one ReLU per output: 256
    assert rows[2] == ["stem", "conv", "144", "4", "18432", "256", "1x1"]
    assert rows[7] == ["maxpool1", "maxpool", "0", "0", "0", str(64 * 4), "2x2"]   # 64 outputs x 2x2 compares
    # total: weights 3*144 + 640 = 1,072, biases 3*4 + 10 = 22, FLOPs 2 x 28,288
    assert rows[-1][:5] == ["TOTAL", "", "1072", "22", str(2 * MACS)]


def test_unknown_column(spec_file):
    r = cli("table", spec_file(RESIDUAL), "--columns", "path,bogus")
    assert r.exit_code == 2
    assert "unknown column 'bogus'; known: path, name, type, out" in r.stderr


@pytest.mark.parametrize("old, new", [("act", "out_elems"), ("act_bytes", "out_bytes"), ("saved", "saved_elems"),
                                      ("ops", "other_ops"), ("weights", "weight_params"), ("biases", "bias_params")])
def test_renamed_column_names_its_new_key(spec_file, old, new):
    r = cli("table", spec_file(RESIDUAL), "--columns", f"path,{old}")
    assert r.exit_code == 2 and r.stdout == ""
    last = r.stderr.splitlines()[-1]  # click quotes the option name in some versions, not in others
    assert last.startswith("Error: Invalid value for") and "--columns" in last
    assert last.endswith(f": column '{old}' is now called '{new}'")


def test_column_keys_are_the_json_keys_with_the_json_values(spec_file):
    """One name per quantity: every column is the JSON row key of the same name, with the same
    value (CSV's cells are the JSON values, shapes as CxHxW), and its total is JSON's total."""
    import archcalc
    from archcalc.formats.columns import COLUMNS, DEFAULT_COLUMNS
    from archcalc.report import row_dict, to_dict

    report = archcalc.analyze(archcalc.parse(_AUX, "aux.yaml"), batch=3, dtype="fp16")
    assert set(DEFAULT_COLUMNS) <= set(COLUMNS)
    for r in report.rows:
        data = row_dict(r, report)
        for key, c in COLUMNS.items():
            assert key in data, f"column {key!r} is not a key of the JSON row model"
            value = c.value(r, report)
            assert (list(value) if isinstance(value, tuple) else value) == data[key], (r.path, key)
    totals = to_dict(report)["totals"]
    for key, c in COLUMNS.items():
        if c.total is not None:
            assert c.total(report) == totals[key], key
    assert {k for k, c in COLUMNS.items() if c.total is None} == {"path", "name", "type", "out", "rf", "jump", "links"}
    # the CSV: header = keys, TOTAL row = JSON totals
    rows = list(csv.reader(io.StringIO(cli("table", spec_file(_AUX), "--format", "csv", "--batch", "3", "--dtype",
                                           "fp16", "--columns", ",".join(COLUMNS)).stdout)))
    assert rows[0] == list(COLUMNS)
    total = dict(zip(rows[0], rows[-1]))
    assert total["path"] == "TOTAL" and total["name"] == ""
    assert all(total[k] == str(totals[k]) for k, c in COLUMNS.items() if c.total is not None)


_AUX = """\
name: aux
input: [3, 16, 16]
layers:
  - conv: {out: 4, k: 3, p: 1, bn: true, act: relu}
  - aux side: [avgpool: {global: true}, fc: {out: 2}]
  - maxpool: {k: 2}
  - fc: {out: 10}
"""


def test_name_column_is_the_last_path_segment_and_aux_rows_are_marked(spec_file):
    out = cli("table", spec_file(_AUX), "--columns", "path,name,params").stdout
    assert "side/fc1 (aux)" in out and "side/fc1 " not in out.replace("side/fc1 (aux)", "")
    rows = list(csv.reader(io.StringIO(cli("table", spec_file(_AUX), "--format", "csv",
                                           "--columns", "name,path").stdout)))
    assert ["fc1", "side/fc1"] in rows
    assert rows[-1] == ["TOTAL", ""]
    named_first = cli("table", spec_file(_AUX), "--columns", "name,params").stdout
    assert "fc1 (aux)" in named_first


def test_help_and_docs_name_every_column():
    from pathlib import Path

    from archcalc.formats.columns import COLUMNS

    help_text = " ".join(cli("table", "--help").stdout.split())
    for key in COLUMNS:
        assert f" {key}," in help_text or f" {key}." in help_text, key
    readme = " ".join((Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8").split())
    columns_paragraph = readme[readme.index("Columns (`--columns`)"):]
    columns_paragraph = columns_paragraph[:columns_paragraph.index("The default is")]
    for key in COLUMNS:
        assert re.search(rf" {key}[ ,.]", columns_paragraph), key
    # docs/json.md's "one name per quantity" table lists exactly the column keys, in order
    doc = (Path(__file__).parent.parent / "docs" / "json.md").read_text(encoding="utf-8")
    section = doc[doc.index("## One name per quantity"):]
    section = section[:section.index("\n## ", 1)]
    names = [line.split("|")[1].strip().strip("`") for line in section.splitlines() if line.startswith("| `")]
    assert names == list(COLUMNS)
    titles = [line.split("|")[3].strip() for line in section.splitlines() if line.startswith("| `")]
    assert titles == [c.title for c in COLUMNS.values()]


def test_dtype_choices_are_the_units_table():
    from archcalc.units import DTYPE_BYTES

    help_text = cli("table", "--help").stdout
    assert "[" + "|".join(DTYPE_BYTES) + "]" in help_text


# ---------------------------------------------------------------- table: json


def test_json_has_the_keys_the_interface_promises(spec_file):
    data = json.loads(cli("table", spec_file(RESIDUAL), "--format", "json").stdout)
    for key in ("name", "input", "batch", "dtype", "layers", "totals"):
        assert key in data
    assert (data["name"], data["input"], data["batch"], data["dtype"]) == ("res", [4, 8, 8], 1, "fp32")
    for layer in data["layers"]:
        assert {"name", "path", "type", "out", "params", "macs", "out_elems", "saved_elems", "rf"} <= set(layer)
    stem = data["layers"][1]
    assert (stem["name"], stem["path"], stem["type"], stem["out"]) == ("stem", "stem", "conv", [4, 8, 8])
    assert (stem["params"], stem["macs"], stem["out_elems"], stem["saved_elems"], stem["rf"]) == (148, 9216, 256, 512, [3, 3])
    t = data["totals"]
    assert {"params", "macs", "flops", "out_elems", "saved_elems", "peak_elems", "param_bytes"} <= set(t)
    assert (t["params"], t["macs"], t["flops"]) == (PARAMS, MACS, 2 * MACS)
    assert (t["out_elems"], t["saved_elems"], t["peak_elems"]) == (OUT, SAVED, PEAK)
    assert t["param_bytes"] == PARAMS * 4
    assert data["aux_totals"] is None


def test_json_batch_and_dtype_scale_bytes_only(spec_file):
    path = spec_file(RESIDUAL)
    data = json.loads(cli("table", path, "--format", "json", "--batch", "8", "--dtype", "fp16").stdout)
    assert (data["batch"], data["dtype"], data["bytes_per_elem"]) == (8, "fp16", 2)
    t = data["totals"]
    assert (t["params"], t["out_elems"], t["saved_elems"], t["peak_elems"]) == (PARAMS, OUT, SAVED, PEAK)
    assert t["param_bytes"] == PARAMS * 2                      # weights are shared by the batch
    assert t["out_bytes"] == OUT * 2 * 8                       # 21,664
    assert t["peak_bytes"] == PEAK * 2 * 8                     # 16,384
    assert t["saved_bytes"] == (SAVED * 2 + SAVED_FIXED_BYTES) * 8   # int64 indices stay 8 B: 21,504
    one = json.loads(cli("table", path, "--format", "json").stdout)
    per_sample = lambda rows: [{k: v for k, v in r.items() if not k.endswith("_bytes")} for r in rows]  # noqa: E731
    assert per_sample(one["layers"]) == per_sample(data["layers"])  # per-sample rows do not move
    # a row's bytes are its elements at 2 B for the whole batch of 8
    assert [r["out_bytes"] for r in data["layers"]] == [r["out_elems"] * 2 * 8 for r in one["layers"]]


def test_json_input_override_and_warnings(spec_file):
    alexnet = textwrap.dedent("""\
        name: alexnet
        input: [3, 227, 227]
        layers:
          - conv conv1: {out: 96, k: 11, s: 4}
          - maxpool pool1: {k: 3, s: 2}
        """)
    path = spec_file(alexnet)
    assert json.loads(cli("table", path, "--format", "json").stdout)["warnings"] == []
    data = json.loads(cli("table", path, "--format", "json", "--input", "3x224x224").stdout)
    assert data["input"] == [3, 224, 224]
    # alexnet.pitfall.input_224: (224-11)/4+1 = 54.25 -> 54; (54-3)/2+1 = 26.5 -> 26
    assert [layer["out"] for layer in data["layers"]] == [[3, 224, 224], [96, 54, 54], [96, 26, 26]]
    assert data["warnings"] == [
        {"path": "conv1", "message": "non-integer output size: H, W: (224 - 11)/4 + 1 = 54.25, floored to 54"},
        {"path": "pool1", "message": "non-integer output size: H, W: (54 - 3)/2 + 1 = 26.5, floored to 26"},
    ]
    table = cli("table", path, "--input", "3x224x224").stdout
    assert "warning: conv1: non-integer output size: H, W: (224 - 11)/4 + 1 = 54.25, floored to 54" in table
    strict = cli("table", path, "--input", "3x224x224", "--strict")
    assert strict.exit_code == 2 and strict.stdout == ""
    assert strict.stderr.count("\n") == 1 and "conv1: non-integer output size" in strict.stderr


# ---------------------------------------------------------------- table: markdown and rich


def test_markdown(spec_file):
    out = cli("table", spec_file(RESIDUAL), "--format", "md").stdout
    lines = out.splitlines()
    assert lines[0] == "### res"
    assert "Source: a residual toy, counted by hand" in lines
    header = lines.index("| layer | output (CxHxW) | params | MACs | activations | saved for bwd | RF |")
    assert lines[header + 1] == "|:---|:---|---:|---:|---:|---:|---:|"
    assert lines[header + 3] == "| stem | 4x8x8 | 148 | 9.2K | 256 | 512 | 3 |"
    assert "- params: 1,094 (1.09K) = weights 1,072 + biases 22; 0.0 MB at fp32" in lines
    assert "- MACs: 28,288 (28.29K) per sample; FLOPs = 2 x MACs = 56.58K" in lines


def test_rich_table_summary_lines(spec_file):
    out = cli("table", spec_file(RESIDUAL), "--batch", "1000").stdout
    assert "main/a" in out and "maxpool1" in out
    # MB = 10^6 B: forward 1,354 x 4 B x 1000 = 5,416,000 B = 5.4 MB = 5.165 MiB
    assert "forward activations: 1,354 elements per sample = 5.4 MB (5.2 MiB) at fp32, batch 1000" in out
    # saved: (1,088 x 4 + 512) x 1000 = 4,864,000 B; the indices alone 512,000 B
    assert "saved for backward: 1,088 elements per sample = 4.9 MB at fp32, batch 1000 (incl. 512,000 B" in out
    assert "peak inference memory: 1,024 elements = 4.1 MB at fp32, batch 1000" in out   # 4,096,000 B
    assert "params: 1,094 (1.09K) = weights 1,072 + biases 22; 0.0 MB at fp32" in out  # not x 1000


def test_notes_are_shown(spec_file):
    text = RESIDUAL.replace("source: a residual toy, counted by hand\n",
                            "source: toy\nnotes: |\n  The slide says 30K; it forgot the biases.\n")
    out = cli("table", spec_file(text)).stdout
    assert "note: The slide says 30K; it forgot the biases." in out


def test_depth_collapses_blocks(spec_file):
    path = spec_file(BLOCKS)
    full = list(csv.reader(io.StringIO(cli("table", path, "--format", "csv", "--columns", "path,params").stdout)))
    assert [r[0] for r in full] == ["path", "input", "u1/conv1", "u1/conv2", "u2/conv1", "u2/conv2", "TOTAL"]
    top = list(csv.reader(io.StringIO(cli("table", path, "--format", "csv", "--columns", "path,type,params",
                                          "--depth", "1").stdout)))
    assert top == [["path", "type", "params"], ["input", "input", "0"], ["u1", "unit", "296"],   # 224 + 72
                   ["u2", "unit", "312"], ["TOTAL", "", "608"]]                                   # 292 + 20


# ---------------------------------------------------------------- colour


def test_piped_output_has_no_escape_codes(spec_file):
    path = spec_file(RESIDUAL)
    for args in (["table", path], ["table", path, "--format", "md"], ["list"]):
        p = subprocess.run([sys.executable, "-m", "archcalc", *args], capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
        assert "\x1b[" not in p.stdout


def _run_on_a_terminal(args, no_color: bool) -> bytes:
    pty = pytest.importorskip("pty")
    master, slave = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "TERM")}
    env["TERM"] = "xterm-256color"
    if no_color:
        env["NO_COLOR"] = "1"
    p = subprocess.Popen([sys.executable, "-m", "archcalc", *args], stdout=slave, stderr=slave, env=env)
    os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    p.wait()
    os.close(master)
    assert p.returncode == 0, out
    return out


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_no_color_on_a_terminal(spec_file):
    path = spec_file(RESIDUAL)
    # the control: on a terminal without NO_COLOR the table is styled (so the next check can fail)
    assert b"\x1b[" in _run_on_a_terminal(["table", path], no_color=False)
    assert b"\x1b[" not in _run_on_a_terminal(["table", path], no_color=True)
    assert b"\x1b[" not in _run_on_a_terminal(["list"], no_color=True)


# ---------------------------------------------------------------- list


def test_list_json(lecture_numbers):
    r = cli("list", "--format", "json")
    assert r.exit_code == 0
    specs = {s["name"]: s for s in json.loads(r.stdout)}
    assert {"name", "source", "input", "params", "macs"} <= set(specs["vgg16"])
    assert specs["vgg16"]["input"] == [3, 224, 224]
    # vgg16.total_params (with biases) and vgg16.macs (conv + fc multiply-adds)
    assert specs["vgg16"]["params"] == lecture_numbers["vgg16.total_params"]["exact"]["with_biases"] == 138357544
    assert specs["vgg16"]["macs"] == lecture_numbers["vgg16.macs"]["exact"]["total"] == 15470264320


def test_list_table_and_csv():
    from archcalc import bundled_names

    table = cli("list").stdout
    assert "MACs = multiply-accumulates per image (FLOPs = 2 x MACs)" in table
    rows = list(csv.reader(io.StringIO(cli("list", "--format", "csv").stdout)))
    assert rows[0] == ["name", "family", "input", "params", "macs", "source"]
    assert sorted(r[0] for r in rows[1:]) == bundled_names()
    vgg = next(r for r in rows if r[0] == "vgg16")
    assert vgg[1:5] == ["vgg11", "3x224x224", "138357544", "15470264320"]
    # a family's members follow its first member, in the order its file lists them
    families = [r[1] for r in rows[1:]]
    assert all(families.index(f) == i or families[i - 1] == f for i, f in enumerate(families))
    assert [r[0] for r in rows[1:] if r[1] == "resnet18"] == ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152"]


# ---------------------------------------------------------------- check


def test_check_exit_codes(spec_file):
    good = spec_file(RESIDUAL + textwrap.dedent("""\
        expect:
          total: {params: 1094, macs: 28288, out_elems: 1354, saved_elems: 1088, peak_elems: 1024}
          layers:
            stem: {out: [4, 8, 8], params: 148, rf: 3}
            fc1: {rf: 14}
        """), "good.yaml")
    r = cli("check", good)
    assert r.exit_code == 0, r.output
    # 5 totals + 3 for stem + 1 for fc1
    assert r.stdout.splitlines() == ["ok   res: 9/9 expected numbers", "9 of 9 expected numbers reproduced"]

    bad = spec_file(RESIDUAL + textwrap.dedent("""\
        expect:
          total: {params: 1094, macs: 28000}
          layers:
            main/b: {params: 148}
        """), "bad.yaml")
    r = cli("check", bad)
    assert r.exit_code == 1
    lines = r.stdout.splitlines()
    assert lines[0] == "FAIL res: 2/3 expected numbers"
    # the failing number, on its line of the spec (RESIDUAL has 13 lines, `expect:` is 14, `total:` 15)
    assert len(RESIDUAL.splitlines()) == 13
    assert lines[1] == f"  x {bad}:15: total: macs expected 28000, got 28288"
    assert lines[-1] == "2 of 3 expected numbers reproduced"

    verbose = cli("check", bad, "-v").stdout.splitlines()
    assert f"    {bad}:15: total: params expected 1094, got 1094" in verbose
    assert f"    {bad}:17: main/b: params expected 148, got 148" in verbose

    both = cli("check", good, bad)
    assert both.exit_code == 1 and both.stdout.splitlines()[-1] == "11 of 12 expected numbers reproduced"


def test_check_input_cases(spec_file):
    path = spec_file(textwrap.dedent("""\
        name: alexnet
        input: [3, 227, 227]
        layers:
          - conv conv1: {out: 96, k: 11, s: 4}
        expect:
          - layers: {conv1: {out: [96, 55, 55]}}      # (227-11)/4+1 = 55
          - input: [3, 224, 224]
            note: the paper's 224, floored
            layers: {conv1: {out: [96, 54, 54]}}      # floor(54.25)
        """))
    r = cli("check", path)
    assert r.exit_code == 0 and r.stdout.startswith("ok   alexnet: 2/2 expected numbers")


# ---------------------------------------------------------------- the module entry point


def test_python_m_archcalc_help():
    p = subprocess.run([sys.executable, "-m", "archcalc", "--help"], capture_output=True, text=True)
    assert p.returncode == 0 and p.stderr == ""
    assert "Static CNN-architecture analyzer" in p.stdout
    for command in ("table", "list", "check"):
        assert command in p.stdout
    p = subprocess.run([sys.executable, "-m", "archcalc", "table", "-h"], capture_output=True, text=True)
    assert p.returncode == 0 and "--format" in p.stdout and "--columns" in p.stdout


def test_version():
    r = cli("--version")
    assert r.exit_code == 0 and "0.1.0" in r.stdout


def test_cells_and_notes_are_text_not_markup():
    import archcalc
    from archcalc.formats import render
    from archcalc.formats.columns import parse_columns

    spec = archcalc.parse(
        "name: t\ninput: [3, 8, 8]\nnotes: 'see [bold]this[/bold] and [conv1] and :smile:'\n"
        "layers:\n  - conv: {out: 4, k: 1}\n", "t.yaml")
    report = archcalc.analyze(spec)
    for color in (True, False):
        out = render("table", report, list(report.rows), parse_columns(None), color=color)
        assert "note: see [bold]this[/bold] and [conv1] and :smile:" in out
        assert ("\x1b[" in out) == color  # the colour form really is rich's, the plain one has no escapes


FAMILY = """\
name: fam_a
input: [3, 8, 8]
args: {n: 1}
layers:
  - conv: {out: 4, k: 3, p: 1, times: $n}
expect:
  total: {params: 112}        # 4*3*9 + 4
variants:
  fam_b:
    args: {n: 2}
    expect:
      total: {params: 260}    # 112 + 4*4*9 + 4 = 112 + 148
"""


def test_table_variant_of_a_family_file(spec_file):
    path = spec_file(FAMILY)
    first = cli("table", path, "--format", "csv", "--columns", "path,params")
    member = cli("table", path, "--variant", "fam_b", "--format", "csv", "--columns", "path,params")
    assert first.exit_code == 0 and member.exit_code == 0
    assert first.stdout.splitlines()[-1] == "TOTAL,112" and member.stdout.splitlines()[-1] == "TOTAL,260"
    bad = cli("table", path, "--variant", "fam_c")
    assert bad.exit_code == 2 and "fam_a has no variant 'fam_c'; its members: fam_a, fam_b" in bad.stderr


def test_check_of_a_family_file_checks_every_member(spec_file):
    r = cli("check", spec_file(FAMILY))
    assert r.exit_code == 0
    assert "ok   fam_a: 1/1 expected numbers" in r.stdout and "ok   fam_b: 1/1 expected numbers" in r.stdout
    wrong = cli("check", spec_file(FAMILY.replace("params: 260", "params: 261")))
    assert wrong.exit_code == 1 and "FAIL fam_b" in wrong.stdout
