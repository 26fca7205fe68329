"""The catalogue of known lecture numbers (specs/catalogue/): CI runs `archcalc check`, which checks
every spec's expect: block and every catalogue entry; any drift fails."""
from __future__ import annotations

import textwrap

import pytest
import yaml
from click.testing import CliRunner

from archcalc import known
from archcalc.cli import main


@pytest.fixture(scope="module")
def results():
    return known.evaluate()


def test_archcalc_check_passes_with_the_catalogue():
    result = CliRunner().invoke(main, ["check"])
    assert result.exit_code == 0, result.output[-3000:]
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("catalogue: ") and last.endswith(" 0 fail"), last


def test_every_entry_passes_or_is_an_explained_erratum(results):
    bad = [f"{r.id} {r.quantity}: {r.detail}" for r in results if r.status == "fail"]
    assert not bad, "\n".join(bad)
    assert len(results) >= 150
    assert all(r.detail for r in results if r.status == "erratum")


def test_the_known_slips_are_errata(results):
    errata = {(r.id, r.quantity) for r in results if r.status == "erratum"}
    assert {("vgg16.cs231n.totals", "out_elems"), ("vgg16.cs231n.totals", "out_bytes"),
            ("vgg16.eecs498.totals", "flop"), ("vgg16.eecs498.totals", "out_bytes"),
            ("inception.bottleneck.ops_total", "macs"), ("googlenet.eecs498.stem", "flop"),
            ("googlenet.params_stated", "params")} <= errata


def test_ids_point_at_the_shared_catalogue(lecture_numbers):
    """Entries ported from ../shared/lecture_numbers.yaml name their id there in `source:`."""
    for e in known.load_catalogue():
        for word in e.get("source", "").replace(";", " ").replace(",", " ").replace(")", " ").split():
            if "." in word and word.split(".")[0] in ("vgg16", "alexnet", "googlenet", "inception", "resnet",
                                                        "vgg", "lenet5", "squeezenet", "mobilenet"):
                if word.endswith("*") or word.startswith("vgg16.cs231n."):
                    continue
                assert word in lecture_numbers, f"{e['id']}: {word} is not an id of lecture_numbers.yaml"


def _write(tmp_path, entries: str):
    path = tmp_path / "c.yaml"
    path.write_text("entries:\n" + textwrap.indent(textwrap.dedent(entries), "  "))
    return known.evaluate(known.load_catalogue([str(path)]))


def test_drift_fails(tmp_path):
    (r,) = _write(tmp_path, """
        - id: t
          spec: vgg16
          printed: {params: "139M"}
    """)
    assert r.status == "fail" and "138,357,544" in r.detail


def test_an_erratum_that_is_no_longer_one_fails(tmp_path):
    (r,) = _write(tmp_path, """
        - id: t
          spec: vgg16
          printed: {params: {value: 138M, why: "a slip"}}
    """)
    assert r.status == "fail" and "drop the erratum" in r.detail


def test_an_erratum_must_be_reproduced_by_its_setting(tmp_path):
    ok, wrong = _write(tmp_path, """
        - id: t
          spec: vgg16
          printed: {macs: {value: 13.6 GFLOP, exact: 15470264320, why: no conv3_3, as_printed: {args: {n3: 2}}}}
        - id: u
          spec: vgg16
          printed: {macs: {value: 13.6 GFLOP, exact: 15470264320, why: no conv5_3, as_printed: {args: {n5: 2}}}}
    """)
    assert ok.status == "erratum" and wrong.status == "fail" and "no longer reproduces" in wrong.detail


def test_exact_pins_and_rounding(tmp_path):
    rs = _write(tmp_path, """
        - id: t
          spec: vgg16
          of: pool1
          order: hwc
          printed:
            out: "[112x112x64]"
            out_elems: {value: 800K, rounding: sig2}
            rf: "6"
        - id: u
          spec: vgg16
          printed: {params: {value: 138M, exact: 138357545}}
    """)
    assert [r.status for r in rs] == ["pass", "pass", "pass", "fail"]


def test_check_exits_1_on_drift(tmp_path, monkeypatch):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"entries": [{"id": "t", "spec": "vgg16", "printed": {"params": "139M"}}]}))
    monkeypatch.setattr(known, "catalogue_files", lambda: [str(path)])
    result = CliRunner().invoke(main, ["check", "vgg16", "--catalogue"])
    assert result.exit_code == 1
    assert "x FAIL   t: params printed '139M'" in result.output
