"""The command line's conventions (docs/cli.md): the generated command reference is current,
`--version`, shell completion, and the exit codes (0 ok, 1 a check or answer wrong, 2 usage or
spec error)."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import archcalc
from archcalc.cli import COMMANDS, main

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tools"))
import gen_docs  # noqa: E402


def _archcalc(*args, env=None):
    """The installed `archcalc` script (completion and --version go by the program's name)."""
    script = shutil.which("archcalc", path=str(Path(sys.executable).parent)) or shutil.which("archcalc")
    assert script, "the archcalc script is not installed (pip install .)"
    return subprocess.run([script, *args], capture_output=True, text=True, env={**os.environ, **(env or {})},
                          timeout=120)


def test_docs_cli_md_is_generated_from_the_commands():
    assert gen_docs.CLI_DOC.read_text(encoding="utf-8") == gen_docs.expected()[gen_docs.CLI_DOC], (
        "docs/cli.md is stale: run `python tools/gen_docs.py`")


def test_docs_cli_md_has_every_command_and_option():
    text = gen_docs.CLI_DOC.read_text(encoding="utf-8")
    ctx = main.make_context("archcalc", [], resilient_parsing=True)
    for name in COMMANDS:
        assert f"## `archcalc {name}`" in text, name
        for param in main.get_command(ctx, name).params:
            for opt in param.opts:
                if opt.startswith("-"):
                    assert opt in text, f"{name} {opt}"
    for documented in ("## Exit codes", "## Shell completion", "--version"):
        assert documented in text


def test_version():
    from importlib.metadata import version

    assert version("archcalc") == archcalc.__version__  # --version reads the installed package's
    result = CliRunner().invoke(main, ["--version"], prog_name="archcalc")
    assert result.exit_code == 0 and result.output == f"archcalc, version {archcalc.__version__}\n"
    run = _archcalc("--version")
    assert run.returncode == 0 and run.stdout.strip() == f"archcalc, version {archcalc.__version__}"


@pytest.mark.parametrize("shell, marker", [("bash", "complete -o nosort -F _archcalc_completion archcalc"),
                                           ("zsh", "#compdef archcalc"), ("fish", "complete --no-files --command archcalc")])
def test_shell_completion_script_is_produced(shell, marker):
    run = _archcalc(env={"_ARCHCALC_COMPLETE": f"{shell}_source"})
    assert run.returncode == 0 and marker in run.stdout, run.stdout[:500]


def test_completion_completes_commands_and_options():
    run = _archcalc(env={"_ARCHCALC_COMPLETE": "bash_complete", "COMP_WORDS": "archcalc ta", "COMP_CWORD": "1"})
    assert run.returncode == 0 and "plain,table" in run.stdout.splitlines()
    run = _archcalc(env={"_ARCHCALC_COMPLETE": "bash_complete", "COMP_WORDS": "archcalc table vgg16 --dt",
                         "COMP_CWORD": "3"})
    assert "plain,--dtype" in run.stdout.splitlines()


@pytest.mark.parametrize("args", [
    ["table", "vgg16", "--no-such-option"],      # an unknown option
    ["no-such-command"],                         # an unknown command
    ["table"],                                   # a missing argument
    ["table", "vgg16", "--format", "xml"],       # not one of the choices
    ["table", "vgg16", "--batch", "0"],          # out of range
    ["answer", "alexnet", "conv1", "params"],    # VALUE missing
])
def test_usage_errors_exit_2(args):
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert "Usage:" in result.output or "Error" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)  # no traceback


def test_a_usage_error_exits_2_in_a_real_process_without_a_traceback():
    run = _archcalc("table", "vgg16", "--no-such-option")
    assert run.returncode == 2 and "Traceback" not in run.stderr and "No such option" in run.stderr


def test_a_spec_error_exits_2_with_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\ninput: [3, 8, 8]\nlayers:\n  - conv: {out: 4, kernal: 3}\n", encoding="utf-8")
    run = _archcalc("table", str(bad))
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert re.fullmatch(rf"archcalc: {re.escape(str(bad))}:4: conv1: unknown argument kernal.*\n", run.stderr)


def test_a_wrong_answer_or_check_exits_1_and_a_right_one_0(tmp_path):
    # AlexNet conv1: 11 x 11 x 3 x 96 + 96 = 34,944 parameters
    assert CliRunner().invoke(main, ["answer", "alexnet", "conv1", "params", "35K"]).exit_code == 0
    assert CliRunner().invoke(main, ["answer", "alexnet", "conv1", "params", "30K"]).exit_code == 1
    spec = tmp_path / "one.yaml"
    text = "name: one\ninput: [3, 8, 8]\nlayers:\n  - conv: {out: 4, k: 3}\nexpect: {total: {params: 112}}\n"
    spec.write_text(text, encoding="utf-8")  # 4 x 27 + 4 = 112
    assert CliRunner().invoke(main, ["check", str(spec)]).exit_code == 0
    spec.write_text(text.replace("112", "111"), encoding="utf-8")
    assert CliRunner().invoke(main, ["check", str(spec)]).exit_code == 1
