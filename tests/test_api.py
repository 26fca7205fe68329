"""The Python API (archcalc/api.py, docs/api.md): the documented functions, the objects' .to_dict()
and .to_dataframe(), type hints and py.typed, and the generated reference page.

The figures are those of small networks counted by hand in the comments, or the same figures the
command line prints (the API and the CLI must agree: one computation behind both).
"""
from __future__ import annotations

import importlib
import inspect
import json
import os
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import archcalc
from archcalc import api
from archcalc.cli import main
from archcalc.spec import SpecError

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tools"))
import gen_docs  # noqa: E402

PUBLIC = ("load", "analyze", "check", "answer", "fit", "build")

NET = """\
name: tiny
source: counted by hand
input: [3, 8, 8]
layers:
  - conv c1: {out: 4, k: 3, act: relu}   # 4 x 3 x 3 x 3 + 4 = 112 params; 6 x 6 x 4 outputs x 27 = 3,888 MACs
  - fc f1: {out: 10}                     # 144 x 10 + 10 = 1,450 params; 1,440 MACs
expect:
  total: {params: 1562, macs: 5328}
  layers:
    c1: {out: [4, 6, 6], params: 112}
    f1: {params: 1451}                   # wrong on purpose: 1,450
"""


@pytest.fixture
def net(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(NET, encoding="utf-8")
    return path


def _pandas():
    # CI (.ci/run sets ARCHCALC_REQUIRE_TORCH) installs the test extra, which has pandas: fail there
    if os.environ.get("ARCHCALC_REQUIRE_TORCH", "") not in ("", "0"):
        return importlib.import_module("pandas")
    return pytest.importorskip("pandas")


# ---------------------------------------------------------------- the functions


@pytest.mark.parametrize("name", PUBLIC)
def test_each_public_function_is_exported_documented_and_typed(name):
    fn = getattr(archcalc, name)
    assert fn is getattr(api, name) and name in archcalc.__all__
    assert inspect.getdoc(fn) and len(inspect.getdoc(fn)) > 80
    sig = inspect.signature(fn)
    assert sig.return_annotation is not sig.empty, f"{name} has no return type"
    for p in sig.parameters.values():
        assert p.annotation is not p.empty, f"{name}: {p.name} has no type hint"


def test_the_functions_stay_functions_when_their_modules_are_imported():
    # archcalc/check.py and archcalc/fit.py are modules of the same names as the functions
    for module in ("archcalc.check", "archcalc.fit", "archcalc.build", "archcalc.cli.check", "archcalc.cli.fit"):
        importlib.import_module(module)
    assert archcalc.check is api.check and archcalc.fit is api.fit and archcalc.build is api.build
    from archcalc import check, fit

    assert check is api.check and fit is api.fit
    assert callable(sys.modules["archcalc.check"].cases) and sys.modules["archcalc.fit"].Fit is not None


def test_py_typed_is_shipped():
    assert (REPO / "archcalc" / "py.typed").is_file()
    assert (Path(archcalc.__file__).parent / "py.typed").is_file()  # in the installed package too (CI: pip install .)
    pyproject = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    assert '"py.typed"' in pyproject and '"spec.schema.json"' in pyproject


def test_analyze_takes_a_name_a_path_or_a_spec(net):
    by_path = archcalc.analyze(net)
    assert (by_path.totals.params, by_path.totals.macs) == (1562, 5328)  # 112 + 1,450; 3,888 + 1,440
    assert archcalc.analyze(str(net)).totals == archcalc.analyze(archcalc.load(net)).totals == by_path.totals
    assert archcalc.analyze("vgg16").totals.params == 138357544  # the paper's 138M, exactly (test_specs_vgg)
    at = archcalc.analyze(net, input_shape=[3, 10, 10], batch=4, dtype="fp16")
    assert at.find("c1").out == (4, 8, 8) and at.batch == 4 and at.itemsize == 2
    with pytest.raises(SpecError):
        archcalc.analyze("no_such_network")
    with pytest.raises(TypeError):
        archcalc.analyze(42)


def test_report_to_dict_is_the_json_the_cli_prints(net):
    report = archcalc.analyze(net)
    assert report.to_dict() == archcalc.to_dict(report)
    printed = CliRunner().invoke(main, ["table", str(net), "--format", "json"])
    assert printed.exit_code == 0
    assert json.loads(printed.output) == json.loads(json.dumps(report.to_dict()))


def test_report_to_dataframe(net):
    _pandas()
    report = archcalc.analyze(net)
    df = report.to_dataframe()
    assert list(df.columns) == list(report.to_dict()["layers"][0])  # named as the JSON layer keys
    assert list(df["path"]) == ["input", "c1", "f1"]  # the ReLU is part of c1's row
    rows = df.set_index("path")
    assert rows.loc["c1", "params"] == 112 and rows.loc["c1", "macs"] == 3888
    assert rows.loc["f1", "params"] == 1450 and rows.loc["f1", "macs"] == 1440
    assert df["params"].sum() == report.totals.params


def test_to_dataframe_without_pandas_says_how_to_get_it(net, monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)  # `import pandas` now raises ImportError
    report = archcalc.analyze(net)
    with pytest.raises(ImportError, match=r"pip install 'archcalc\[pandas\]'"):
        report.to_dataframe()
    with pytest.raises(ImportError, match="needs pandas"):
        archcalc.check(net).to_dataframe()


def test_check_compares_every_expected_number(net):
    checked = archcalc.check(net)
    assert not checked.ok
    assert [(o.where, o.key, o.expected, o.actual) for o in checked.failures] == [("f1", "params", 1451, 1450)]
    assert len(checked.outcomes) == 5  # 2 totals, 2 of c1, 1 of f1
    data = checked.to_dict()
    assert data["ok"] is False and data["name"] == "tiny" and len(data["outcomes"]) == 5
    assert archcalc.check("vgg16").ok  # the paper's numbers (test_expect checks every bundled spec)
    fixed = net.parent / "fixed.yaml"
    fixed.write_text(NET.replace("1451", "1450"), encoding="utf-8")
    assert archcalc.check(fixed).ok
    # the CLI's verdict is the same
    assert CliRunner().invoke(main, ["check", str(net)]).exit_code == 1
    assert CliRunner().invoke(main, ["check", str(fixed)]).exit_code == 0


def test_check_to_dataframe(net):
    _pandas()
    df = archcalc.check(net).to_dataframe()
    assert list(df.columns) == ["case", "where", "key", "expected", "actual", "ok", "line"]
    assert len(df) == 5 and list(df[~df["ok"]]["where"]) == ["f1"]


def test_answer_judges_like_the_cli():
    # AlexNet conv1: 96 filters 11 x 11 x 3 + 96 biases = 34,944 (CS231n lecture 9: "35K")
    report = archcalc.analyze("alexnet")
    right = archcalc.answer(report, "conv1", "params", "35K")
    assert right.ok and right.key == "params" and right.reply[0].startswith("right")
    wrong = archcalc.answer("alexnet", "conv1", "params", "30K")
    assert not wrong.ok and "34,944" in wrong.correct
    data = wrong.to_dict()
    assert data["ok"] is False and data["key"] == "params" and isinstance(data["reply"], list)
    cli = CliRunner().invoke(main, ["answer", "alexnet", "conv1", "params", "30K"])
    assert cli.exit_code == 1 and cli.output == wrong.text()
    from archcalc.teach import TeachError

    with pytest.raises(TeachError):
        archcalc.answer(report, "conv99", "params", "1")


def test_fit_is_what_archcalc_fit_prints():
    f = archcalc.fit("vgg16", batch=8, memory="24GiB")
    printed = CliRunner().invoke(main, ["fit", "vgg16", "--batch", "8", "--memory", "24GiB", "--format", "json"])
    assert printed.exit_code == 0
    cli = json.loads(printed.output)
    cli.pop("gpu")
    assert f.to_dict() == cli
    assert f.capacity_bytes == 24 * 2**30 and f.fits and f.max_batch >= 8
    assert sum(i.bytes for i in f.items) == f.peak_bytes  # the items add up to the peak
    assert archcalc.fit("vgg16", batch=8, memory=24 * 2**30).to_dict() == f.to_dict()
    exact = archcalc.fit("vgg16", batch=8, cuda=False, train=False)
    assert exact.capacity_bytes is None and exact.mode == "inference" and exact.peak_bytes < f.peak_bytes
    with pytest.raises(ValueError, match="not both"):
        archcalc.fit("vgg16", gpu="a100-40gb", memory="24GiB")
    with pytest.raises(ValueError, match="unknown GPU"):
        archcalc.fit("vgg16", gpu="no-such-card")


def test_fit_to_dataframe():
    _pandas()
    f = archcalc.fit("vgg16", batch=8)
    df = f.to_dataframe()
    assert list(df.columns) == ["name", "bytes", "share"]
    assert df["bytes"].sum() == f.peak_bytes and list(df["name"]) == [i.name for i in f.items]


@pytest.mark.torch
def test_build_makes_the_model_archcalc_counts():
    model = archcalc.build("lenet5")
    assert sum(p.numel() for p in model.parameters()) == archcalc.analyze("lenet5").totals.params


def test_the_examples_in_the_api_docstring_run():
    import doctest

    result = doctest.testmod(api)
    assert result.attempted >= 5 and result.failed == 0


# ---------------------------------------------------------------- docs/api.md


def test_docs_api_md_is_generated_from_the_docstrings():
    assert gen_docs.API_DOC.read_text(encoding="utf-8") == gen_docs.render_api(), (
        "docs/api.md is stale: run `python tools/gen_docs.py`")


def test_docs_api_md_documents_every_public_function():
    text = gen_docs.API_DOC.read_text(encoding="utf-8")
    for name in PUBLIC:
        assert f"## `archcalc.{name}`" in text
    for method in ("to_dict", "to_dataframe"):
        assert text.count(f"`{method}(self") >= 3  # Report, Checked, Fit
