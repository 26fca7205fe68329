"""Bad input through the command line: one line on stderr, `archcalc: FILE:LINE: LAYER PATH: message`,
exit code 2, never a traceback.

Each spec below marks the line the error must point at with `# <-`; the expected line number is
read from that marker, so it is the line of the YAML as written here.
"""
from __future__ import annotations

import re
import subprocess
import sys
import textwrap

import pytest
from click.testing import CliRunner

from archcalc.cli import main

HEAD = "name: bad\ninput: [3, 8, 8]\n"

# id: (spec text, layer path or None, message regex)
CASES = {
    "malformed-yaml": (HEAD + """
layers:
  - conv: {out: 4, k: 3          # <-
""", None, r"malformed YAML: expected ',' or '}', but got '<stream end>' \(while parsing a flow mapping"),
    "malformed-indent": (HEAD + """
layers:
  - relu
 bad: 1                          # <-
""", None, r"malformed YAML: "),
    "tab": (HEAD + "layers:\n\t- relu  # <-\n", None, r"malformed YAML: found character '\\t' that cannot start any token"),
    "duplicate-key": (HEAD + """
layers:
  - conv: {out: 4, k: 3, k: 5}   # <-
""", None, r"duplicate key 'k'"),
    "unknown-type": (HEAD + """
layers:
  - conv: {out: 4, k: 3}
  - frob f: {x: 1}               # <-
""", "f", r"unknown layer type 'frob'; did you mean 'from'\? known: adaptive_avgpool, .*conv, .*relu"),
    "unknown-type-in-branch": (HEAD + """
layers:
  - concat:
      a: [relu]
      b:
        - relu
        - frob                   # <-
""", "b/frob", r"unknown layer type 'frob'"),
    "unknown-key": (HEAD + """
layers:
  - conv: {out: 4, k: 3}
  - conv: {out: 4, k: 3, zz: 1}  # <-
""", "conv2", r"unknown argument zz for conv; known: out, k, s, p, d, g, bias, bn, act, inplace, table"),
    "missing-arg": (HEAD + """
layers:
  - conv: {k: 3}                 # <-
""", "conv1", r"conv needs out; known: out, k, s, p, d, g, bias, bn, act, inplace, table"),
    "zero-kernel": (HEAD + """
layers:
  - conv: {out: 4, k: 0}         # <-
""", "conv1", r"k must be >= 1, got 0"),
    "negative-kernel": (HEAD + """
layers:
  - maxpool: {k: -2}             # <-
""", "maxpool1", r"k must be >= 1, got -2"),
    "zero-stride": (HEAD + """
layers:
  - relu
  - conv c: {out: 4, k: 3, s: 0} # <-
""", "c", r"s must be >= 1, got 0"),
    "negative-stride": (HEAD + """
layers:
  - avgpool: {k: 2, s: -1}       # <-
""", "avgpool1", r"s must be >= 1, got -1"),
    "groups": (HEAD + """
layers:
  - conv: {out: 4, k: 3, g: 2}   # <-
""", "conv1", r"channels not divisible by groups: in 3, out 4, g 2"),
    "add-mismatch": (HEAD + """
layers:
  - add res:                     # <-
      main:
        - conv: {out: 4, k: 3}
      skip: []
""", "res", r"add needs equal shapes, got main 4x6x6, skip 3x8x8"),
    "concat-mismatch": (HEAD + """
layers:
  - relu
  - concat:                      # <-
      a: [conv: {out: 4, k: 3}]
      b: [conv: {out: 4, k: 1}]
""", "concat1", r"concat needs equal spatial sizes, got a 4x6x6, b 4x8x8"),
    "below-one": (HEAD + """
layers:
  - conv: {out: 4, k: 3}
  - conv: {out: 4, k: 9}         # <-
""", "conv2", r"output size below 1: \(6 - 9\)/1 \+ 1 = -2"),
    "below-one-in-block": (HEAD + """
blocks:
  down:
    args: {k: ~}
    body:
      - maxpool: {k: $k}         # <-
layers:
  - down d1: [2]
  - down d2: [8]
""", "d2/maxpool1", r"output size below 1: \(4 - 8\)/8 \+ 1 = 0.5"),
    "unknown-top-level-key": ("""name: bad
input: [3, 8, 8]
layerz: []                       # <-
layers: [relu]
""", None, r"unknown top-level key 'layerz' \(did you mean 'layers'\?\); known: name, source, notes, accuracy, input, input_requires_grad, args, "
        r"defaults, rounding, blocks, layers, expect, variants"),
    "missing-layers": ("""name: bad                        # <-
input: [3, 8, 8]
""", None, r"missing top-level key 'layers'"),
    "bad-input": ("""name: bad
input: [3, 0, 8]                 # <-
layers: [relu]
""", None, r"input must be \[C, H, W\] \(or \[N\]\) with positive integers"),
    "block-unknown-arg": (HEAD + """
blocks:
  unit:
    args: {c: ~}
    body: [conv: {out: $c, k: 1}]
layers:
  - unit u: {c: 4, d: 2}         # <-
""", "u", r"block unit: unknown argument 'd'; its arguments: c"),
    "block-missing-arg": (HEAD + """
blocks:
  unit:
    args: {c: ~, s: 1}
    body: [conv: {out: $c, k: 1, s: $s}]
layers:
  - relu
  - unit                         # <-
""", "unit1", r"block unit needs c \(arguments: c, s\)"),
    "block-too-many-positional": (HEAD + """
blocks:
  unit:
    args: {c: ~}
    body: [conv: {out: $c, k: 1}]
layers:
  - unit: [4, 5]                 # <-
""", "unit1", r"block unit takes 1 arguments \(c\), got 2"),
    "block-unknown-dollar": (HEAD + """
blocks:
  unit:
    args: {c: ~}
    body:
      - conv: {out: $cc, k: 1}   # <-
layers:
  - unit u: [4]
""", "u", r"unknown argument \$cc; arguments: \$c"),
    "block-defaults-not-a-mapping": (HEAD + """
blocks:
  unit:
    body: [relu]
    defaults: 5                  # <-
layers: [unit]
""", None, r"defaults must be a mapping"),
    "times-negative": (HEAD + """
layers:
  - conv c: {out: 4, k: 1, times: -2}   # <-
""", "c", r"times must be a whole number \(0 leaves the layer out\), got -2"),
    "bad-act": (HEAD + """
layers:
  - conv: {out: 4, k: 3, act: bogus}   # <-
""", "conv1", r"unknown act 'bogus'; known: none, elu, gelu"),
    "huge-power": (HEAD + """
blocks:
  b:
    args: {c: ~}
    body:
      - conv: {out: $c ** 99999999, k: 1}   # <-
layers: [b: [2]]
""", "b1", r"exponent 99999999 is too large"),
}


def marked_line(text: str) -> int:
    lines = [i for i, line in enumerate(text.splitlines(), 1) if "# <-" in line]
    assert len(lines) == 1, "mark exactly one line with # <-"
    return lines[0]


def run_cli(args):
    result = CliRunner().invoke(main, args)
    return result, result.stderr


def assert_one_line_error(result, stderr, file, line, path, message):
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert isinstance(result.exception, SystemExit), f"an exception escaped: {result.exception!r}"
    assert "Traceback" not in result.output
    lines = stderr.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{stderr}"
    where = f"{re.escape(file)}:{line}: " + (f"{re.escape(path)}: " if path else "")
    assert re.match(f"archcalc: {where}{message}", lines[0]), lines[0]
    if path is None:
        # no layer path: the message follows the line number directly
        assert re.match(f"archcalc: {re.escape(file)}:{line}: [^:]+", lines[0])


@pytest.mark.parametrize("case", list(CASES))
def test_table_reports_one_line(tmp_path, case):
    text, path, message = CASES[case]
    spec = tmp_path / f"{case}.yaml"
    spec.write_text(text, encoding="utf-8")
    result, stderr = run_cli(["table", str(spec)])
    assert result.stdout == ""
    assert_one_line_error(result, stderr, str(spec), marked_line(text), path, message)


@pytest.mark.parametrize("case", ["unknown-type", "add-mismatch", "malformed-yaml", "block-unknown-dollar"])
def test_every_command_reports_the_same_way(tmp_path, case):
    text, path, message = CASES[case]
    spec = tmp_path / f"{case}.yaml"
    spec.write_text(text, encoding="utf-8")
    for fmt in ("csv", "json", "md"):
        result, stderr = run_cli(["table", str(spec), "--format", fmt])
        assert_one_line_error(result, stderr, str(spec), marked_line(text), path, message)
    result, stderr = run_cli(["check", str(spec)])
    assert_one_line_error(result, stderr, str(spec), marked_line(text), path, message)


@pytest.mark.parametrize("case", ["malformed-yaml", "groups", "block-too-many-positional"])
def test_real_process_has_no_traceback(tmp_path, case):
    text, path, message = CASES[case]
    spec = tmp_path / "bad.yaml"
    spec.write_text(text, encoding="utf-8")
    p = subprocess.run([sys.executable, "-m", "archcalc", "table", str(spec)], capture_output=True, text=True)
    assert p.returncode == 2
    assert p.stdout == ""
    lines = p.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in p.stderr, p.stderr
    assert lines[0].startswith(f"archcalc: {spec}:{marked_line(text)}: ")


def test_not_utf8(tmp_path):
    spec = tmp_path / "latin1.yaml"
    spec.write_bytes(b"name: bad\ninput: [3, 8, 8]\nlayers:\n  - relu  # caf\xe9\n")
    result, stderr = run_cli(["table", str(spec)])
    assert_one_line_error(result, stderr, str(spec), 4, None, r"not UTF-8 text: byte 0xe9")


def test_missing_file_and_unknown_spec(tmp_path):
    missing = tmp_path / "nope.yaml"
    result, stderr = run_cli(["table", str(missing)])
    assert result.exit_code == 2
    assert stderr == f"archcalc: {missing}: cannot read spec: No such file or directory\n"
    result, stderr = run_cli(["table", "no_such_network"])
    assert result.exit_code == 2
    assert stderr.startswith("archcalc: no_such_network: no bundled spec named 'no_such_network' and no such file;")
    assert len(stderr.splitlines()) == 1


def test_directory(tmp_path):
    d = tmp_path / "dir.yaml"
    d.mkdir()
    result, stderr = run_cli(["table", str(d)])
    assert result.exit_code == 2 and stderr == f"archcalc: {d}: cannot read spec: Is a directory\n"


# ---------------------------------------------------------------- expect: blocks (archcalc check)

EXPECT_CASES = {
    "unknown-total": ("""
expect:
  total: {parms: 3}              # <-
""", r"expect: unknown total 'parms'; known: params, "),
    "unknown-layer": ("""
expect:
  layers:
    nope: {params: 3}            # <-
""", r"expect: no layer or block 'nope' \(or the name is not unique; use its full path\)"),
    "unknown-quantity": ("""
expect:
  layers:
    relu1: {parms: 3}            # <-
""", r"expect: unknown layer quantity 'parms'; known: name, path, type"),
    "unknown-case-key": ("""
expect:
  totals: {params: 0}            # <-
""", r"expect: unknown key 'totals'; known: input, defaults, note, total, layers, aux"),
    "unknown-aux-key": ("""
expect:
  aux: {parms: 3}                # <-
""", r"expect: unknown aux 'parms'; known: params, "),
    "defaults-not-a-mapping": ("""
expect:
  defaults:                      # <-
    conv: 5
""", r"expect: defaults: conv must be a mapping of arguments"),
    "total-not-a-mapping": ("""
expect:
  total: 5                       # <-
""", r"expect: total must be a mapping of quantity: value"),
    "layer-not-a-mapping": ("""
expect:
  layers:                        # <-
    relu1: 5
""", r"expect: layers: relu1 must be a mapping of quantity: value"),
    "bad-case-input": ("""
expect:
  - input: [3, 8]                # <-
    total: {params: 0}
""", r"expect: input must be \[C, H, W\] \(or \[N\]\) with positive integers"),
}


@pytest.mark.parametrize("case", list(EXPECT_CASES))
def test_check_reports_bad_expect_blocks(tmp_path, case):
    tail, message = EXPECT_CASES[case]
    text = HEAD + "layers:\n  - relu\n" + textwrap.dedent(tail).lstrip("\n")
    spec = tmp_path / "expect.yaml"
    spec.write_text(text, encoding="utf-8")
    result, stderr = run_cli(["check", str(spec)])
    assert_one_line_error(result, stderr, str(spec), marked_line(text), None, message)


# ---------------------------------------------------------------- options


@pytest.mark.parametrize("args", [
    ["table", "vgg16", "--input", "3x224"],
    ["table", "vgg16", "--input", "3x0x224"],
    ["table", "vgg16", "--batch", "0"],
    ["table", "vgg16", "--dtype", "fp8"],
    ["table", "vgg16", "--format", "xml"],
    ["table", "vgg16", "--columns", "name,bogus"],
    ["table", "vgg16", "--depth", "0"],
])
def test_bad_options_exit_2_without_traceback(args):
    result, stderr = run_cli(args)
    assert result.exit_code == 2
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert stderr.splitlines()[-1].startswith("Error: ")
