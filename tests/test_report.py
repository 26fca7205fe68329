"""report.py and formats/columns.py: units, the JSON model, liveness, row lookup.

The engine-level totals are in test_engine.py; this file checks the pieces the formatters and the
JSON interface are built from.
"""
from __future__ import annotations

import textwrap

import pytest

import archcalc
from archcalc.formats.columns import COLUMNS, DEFAULT_COLUMNS, mb, mib, parse_columns, rf_text, si
from archcalc.report import SCHEMA_VERSION, collapse, row_dict, to_dict


def analyze(text: str, **options):
    return archcalc.analyze(archcalc.parse(textwrap.dedent(text).lstrip("\n"), "t.yaml"), **options)


# ---------------------------------------------------------------- units


@pytest.mark.parametrize("n, digits, text", [
    (999, 1, "999"),
    (1000, 1, "1.0K"),                     # K = 10^3, not 1024
    (1234567, 1, "1.2M"),
    (138357544, 2, "138.36M"),             # vgg16.total_params: "138M"
    (15470264320, 2, "15.47G"),            # vgg16.macs
    (1_500_000_000_000, 1, "1.5T"),
    (0, 1, "0"),
])
def test_si(n, digits, text):
    assert si(n, digits) == text


def test_megabytes_are_decimal_and_mebibytes_binary():
    # vgg16.cs231n.total_memory: 15,237,608 elements x 4 B = 60,950,432 B = 60.95 MB = 58.13 MiB
    assert mb(60950432) == "61.0 MB"
    assert mib(60950432) == "58.1 MiB"
    # the slide's "24M * 4 bytes ~= 96MB": 96,000,000 B = 91.55 MiB (vgg16.notes.total_memory)
    assert mb(96_000_000) == "96.0 MB" and mib(96_000_000) == "91.6 MiB"


def test_rf_text():
    assert rf_text((212, 212)) == "212"
    assert rf_text((1, 7)) == "1x7"


def test_parse_columns():
    assert [c.key for c in parse_columns(None)] == list(DEFAULT_COLUMNS)
    assert [c.key for c in parse_columns(" name , flops ")] == ["name", "flops"]
    with pytest.raises(ValueError, match="unknown column 'x'; known: " + ", ".join(COLUMNS)):
        parse_columns("name,x")


# ---------------------------------------------------------------- rows and the JSON model

SPEC = """
    name: t
    source: hand
    input: [2, 4, 4]                  # 32
    layers:
      - conv c1: {out: 2, k: 3, p: 1, act: relu}   # 2*2*9 + 2 = 40 params; 32 outputs x 18 = 576 MACs
      - maxpool: {k: 2}                # 2x2x2 = 8 outputs, 8 int64 indices
      - aux side:
          - fc: {out: 3}               # 8*3 + 3 = 27
      - fc: {out: 5}                   # 8*5 + 5 = 45
"""


def test_row_properties():
    rep = analyze(SPEC)
    c1 = rep.find("c1")
    assert (c1.weight_params, c1.bias_params, c1.params) == (36, 2, 38)
    assert c1.macs == 576 and c1.flops == 1152
    assert c1.out_elems == 32
    assert c1.saved_elems == 64                 # its input and its in-place ReLU output
    pool = rep.find("maxpool1")
    assert pool.saved_elems == 32               # the int64 indices are not activation elements
    assert rep.find("side/fc1").depth == 2 and c1.depth == 1


def test_row_dict_and_to_dict():
    rep = analyze(SPEC)
    d = to_dict(rep)
    assert d["schema_version"] == SCHEMA_VERSION
    assert (d["name"], d["source"], d["input"], d["batch"], d["dtype"], d["bytes_per_elem"]) == (
        "t", "hand", [2, 4, 4], 1, "fp32", 4)
    assert [r["path"] for r in d["layers"]] == ["input", "c1", "maxpool1", "side/fc1", "fc1"]
    assert d["layers"][3]["aux"] is True and d["layers"][4]["aux"] is False
    c1 = row_dict(rep.find("c1"), rep)
    assert (c1["out"], c1["rf"], c1["jump"], c1["line"]) == ([2, 4, 4], [3, 3], [1, 1], 5)
    assert c1["params"] == c1["weight_params"] + c1["bias_params"] == 38
    # totals: params 38 + 45 (the aux fc's 27 are apart); MACs 576 + 40
    assert (d["totals"]["params"], d["totals"]["macs"], d["totals"]["flops"]) == (83, 616, 1232)
    assert (d["aux_totals"]["params"], d["aux_totals"]["macs"]) == (27, 24)
    # the JSON can carry collapsed rows instead of all of them
    assert [r["path"] for r in to_dict(rep, collapse(rep, 1))["layers"]] == ["input", "c1", "maxpool1", "side", "fc1"]


def test_bytes_properties():
    rep = analyze(SPEC, batch=2, dtype="fp16")
    t = rep.totals
    # allocations: input 32 + c1 32 + pool 8 + fc 5 = 77; saved: input 32, c1 out 32, pool out 8 = 72
    assert (t.out_elems, t.saved_elems, t.saved_fixed_bytes) == (77, 72, 64)
    assert rep.param_bytes == 83 * 2
    assert rep.out_bytes == 77 * 2 * 2
    assert rep.saved_bytes == (72 * 2 + 64) * 2
    # peak: the caller's input (32) is alive throughout; while the pool runs, input + c1 + pool:
    # 32 + 32 + 8 = 72 (c1 alone: 64; fc: 32 + 8 + 5), and the pool's 8 int64 indices until it returns
    assert (t.peak_elems, t.peak_fixed_bytes) == (72, 8 * 8)
    assert rep.peak_bytes == (72 * 2 + 64) * 2


def test_peak_keeps_the_network_output_and_ignores_aux_readers():
    rep = analyze("""
        name: t
        input: [100]
        layers:
          - fc a: {out: 50}
          - aux head: [fc: {out: 1000}]
          - fc b: {out: 10}
    """)
    # input 100 + a 50 = 150 while a runs; then the input (the caller holds it) + a 50 + b 10 = 160;
    # the aux head's 1,000 outputs are training-only and not in the inference peak
    assert rep.totals.peak_elems == 160
    assert rep.aux_totals.out_elems == 1000


def test_find_by_path_or_unique_name():
    rep = analyze("""
        name: t
        input: [2, 4, 4]
        layers:
          - group g1: [relu]
          - group g2: [relu]
          - conv only: {out: 2, k: 1}
    """)
    assert rep.find("g1/relu1").path == "g1/relu1"
    assert rep.find("relu1") is None            # two rows are called relu1
    assert rep.find("only").path == "only"
    assert rep.find("nothing") is None
