"""The catalogue of known lecture numbers (specs/catalogue/): CI runs `archcalc check`, which checks
every spec's expect: block and every catalogue entry; any drift fails."""
from __future__ import annotations

import textwrap
from fractions import Fraction

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


def test_out_size_is_the_unrounded_formula(tmp_path):
    """(224 - 11 + 2*0)/4 + 1 = 54.25 (CS231n's "not an integer"), floored to 54 in `out`;
    (10 - 3)/2 + 1 = 4.5; (5 - 3 + 2)/3 + 1 = 7/3."""
    rs = _write(tmp_path, """
        - id: a
          spec: alexnet
          input: [3, 224, 224]
          of: conv1
          printed: {out_size: {value: "54.25", rounding: exact}, out: "96x54x54"}
        - id: b
          spec_text: "{name: t, input: [1, 10, 10], layers: [conv a: {out: 1, k: 3, s: 2}]}"
          of: a
          per: {W: 10, F: 3, P: 0, S: 2}
          printed: {out_size: "(W - F + 2P)/S + 1"}
        - id: c
          spec_text: "{name: t3, input: [1, 5, 5], layers: [conv a: {out: 1, k: 3, p: 1, s: 3}]}"
          of: a
          printed: {out_size: "2.33"}
        - id: d
          spec_text: "{name: t3, input: [1, 5, 5], layers: [conv a: {out: 1, k: 3, p: 1, s: 3}]}"
          of: a
          printed: {out_size: "2.34"}
    """)
    assert [r.status for r in rs] == ["pass", "pass", "pass", "pass", "fail"]
    assert rs[0].actual == Fraction(217, 4) and rs[3].actual == Fraction(7, 3)


def test_kernel_filter_defaults_and_percent_shares(tmp_path):
    """MobileNet v1's Table 2: the 1x1 convs do 539,492,352 of 568,740,352 Mult-Adds (94.86%);
    without BN (defaults laid over the spec's, as an expect: case's) they hold 3,139,584 of the
    4,209,088 weights (74.59%): 13 pointwise convs, 32*64 + 64*128 + ... + 1024*1024."""
    pw_weights = sum(a * b for a, b in [(32, 64), (64, 128), (128, 128), (128, 256), (256, 256), (256, 512)]
                     + [(512, 512)] * 5 + [(512, 1024), (1024, 1024)])
    assert pw_weights == 3139584
    rs = _write(tmp_path, """
        - id: m
          spec: mobilenet_v1
          printed: {ratio: "94.86%"}
          a: {types: [conv], kernel: 1, quantity: macs}
          b: {quantity: macs}
        - id: p
          spec: mobilenet_v1
          defaults: {conv: {bn: false}, mbv1_block: {bn: false}}
          printed: {ratio: "74.59%"}
          a: {types: [conv], kernel: 1, quantity: weight_params}
          b: {quantity: weight_params}
        - id: w
          spec: mobilenet_v1
          defaults: {conv: {bn: false}, mbv1_block: {bn: false}}
          types: [conv]
          kernel: 1
          printed: {weight_params: "3,139,584", macs: "539,492,352"}
        - id: with_bn
          spec: mobilenet_v1
          printed: {ratio: "74.59%"}
          a: {types: [conv], kernel: 1, quantity: weight_params}
          b: {quantity: weight_params}
    """)
    assert [r.status for r in rs] == ["pass", "pass", "pass", "pass", "fail"]


def test_links_of_a_dense_block_and_a_block_output(tmp_path):
    """DenseNet-121's first dense block has 6 layers: 6*7/2 = 21 direct connections; ResNet-18's
    conv3_x_2 block ends at 128x28x28 (224/8 = 28)."""
    rs = _write(tmp_path, """
        - id: d
          spec: densenet121
          of: denseblock1
          per: {L: 6}
          printed: {links: "L(L+1)/2"}
        - id: d2
          spec: densenet121
          of: denseblock1
          printed: {links: "22"}
        - id: r
          spec: resnet18
          of: conv3_x_2
          order: hwc
          printed: {out: "28x28x128"}
    """)
    assert [r.status for r in rs] == ["pass", "fail", "pass"]
    assert rs[0].actual == 21


def test_per_reads_only_formulas(tmp_path):
    """With per: given, a printed number is still a number: EECS 498's conv1 is 64*56*56 = 200,704
    elements, x 4 B / 1,024 = 784 KB."""
    rs = _write(tmp_path, """
        - id: m
          spec: alexnet_tv
          input: [3, 227, 227]
          of: conv1
          kb: 1024
          per: {C: 64, H: 56, W: 56}
          printed: {out_elems: "C*H*W", out_bytes: {value: "784 KB", rounding: exact}, macs: "72,855,552"}
    """)
    assert [r.status for r in rs] == ["pass", "pass", "pass"]
    assert 64 * 56 * 56 * 4 == 784 * 1024 and 64 * 56 * 56 * 3 * 11 * 11 == 72855552
