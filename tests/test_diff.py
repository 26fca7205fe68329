"""`archcalc diff`: rows aligned by path (or by type where paths differ), differences checked by hand.

The expected numbers are worked out in comments from the layer arithmetic (conv MACs = out x
in x k x k x H' x W'; conv + BN params = weights + 2 x out), independently of archcalc; the two
ResNet-50 totals are also the specs' expect: numbers, which torchvision counted.
"""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from click.testing import CliRunner

import archcalc
from archcalc.cli import main
from archcalc.diff import KEYS, TOTAL_KEYS, align, diff

REPO = Path(__file__).resolve().parent.parent


def cli(*args, code=0):
    result = CliRunner().invoke(main, ["diff", *args])
    assert result.exit_code == code, result.output
    return result


def as_json(*args, code=0) -> dict:
    return json.loads(cli(*args, "--format", "json", code=code).stdout)


# ---------------------------------------------------------------- ResNet-50 v1 against v1.5

# v1 strides on the first 1x1 conv of conv3_1, conv4_1 and conv5_1; v1.5 (torchvision) on the 3x3.
# That 1x1 then runs on the un-strided map, 4x the positions:
#   conv3_x_1/main/conv1: 1x1, 256 -> 128: 128 x 256 x 28 x 28 = 25,690,112 -> x 56 x 56 = 102,760,448
#   conv4_x_1/main/conv1: 1x1, 512 -> 256: 256 x 512 x 14 x 14 = 25,690,112 -> x 28 x 28 = 102,760,448
#   conv5_x_1/main/conv1: 1x1, 1024 -> 512: 512 x 1024 x 7 x 7 = 25,690,112 -> x 14 x 14 = 102,760,448
# The 3x3 that now strides outputs what it output before: same MACs. No weight moves.
FIRST_1X1 = {"conv3_x_1/main/conv1": (128, 256, 28), "conv4_x_1/main/conv1": (256, 512, 14),
             "conv5_x_1/main/conv1": (512, 1024, 7)}


def test_resnet50_v1_vs_v15_macs_move_only_in_the_three_first_1x1_convs():
    d = as_json("resnet50", "resnet50_tv")
    assert d["counts"]["only_a"] == d["counts"]["only_b"] == 0       # the same paths, aligned one to one
    by_path = {e["path_a"]: e for e in d["layers"]}
    assert all(e["path_a"] == e["path_b"] for e in d["layers"])
    macs_changed = {e["path_a"]: e["delta"]["macs"] for e in d["layers"] if e["delta"]["macs"]}
    assert set(macs_changed) == set(FIRST_1X1)
    for path, (c_out, c_in, hw) in FIRST_1X1.items():
        e = by_path[path]
        assert e["a"]["macs"] == c_out * c_in * hw * hw == 25690112
        assert e["b"]["macs"] == c_out * c_in * (2 * hw) ** 2 == 102760448
        assert macs_changed[path] == 77070336                         # 102,760,448 - 25,690,112
        assert e["a"]["out"] == [c_out, hw, hw] and e["b"]["out"] == [c_out, 2 * hw, 2 * hw]
        assert e["args"] == [{"name": "s", "a": 2, "b": 1}]
        conv2 = by_path[path.replace("conv1", "conv2")]               # the 3x3 takes the stride over
        assert conv2["args"] == [{"name": "s", "a": 1, "b": 2}] and conv2["delta"]["macs"] == 0
        assert conv2["a"]["out"] == conv2["b"]["out"] == [c_out, hw, hw]
    assert all(e["delta"]["params"] == 0 for e in d["layers"])       # a stride moves no weight
    t = d["totals"]
    # the totals torchvision counted (the specs' expect:), 3 x 77,070,336 apart
    assert (t["macs"]["a"], t["macs"]["b"], t["macs"]["delta"]) == (3857973248, 4089184256, 3 * 77070336)
    assert t["macs"]["ratio"] == 4089184256 / 3857973248
    assert t["params"] == {"a": 25557032, "b": 25557032, "delta": 0, "ratio": 1.0}
    assert t["flops"]["delta"] == 2 * 231211008
    # conv + BN + ReLU rows: BN and ReLU do one op per output element, on 4x the elements in v1.5:
    # 2 x (128x(56^2 - 28^2) + 256x(28^2 - 14^2) + 512x(14^2 - 7^2)) = 2 x 526,848
    assert t["other_ops"]["delta"] == 2 * (128 * (56**2 - 28**2) + 256 * (28**2 - 14**2) + 512 * (14**2 - 7**2))
    # pool5: the paper's global average pool, torchvision's AdaptiveAvgPool2d(1): another type,
    # the same output
    pool5 = by_path["pool5"]
    assert (pool5["a"]["type"], pool5["b"]["type"]) == ("avgpool", "adaptive_avgpool")
    assert pool5["a"]["out"] == pool5["b"]["out"] == [2048, 1, 1]


def test_ignoring_rf_and_jump_leaves_the_seven_rows_that_really_change():
    d = as_json("resnet50", "resnet50_tv", "--ignore", "rf,jump")
    assert [e["path_a"] for e in d["layers"]] == [
        "conv3_x_1/main/conv1", "conv3_x_1/main/conv2", "conv4_x_1/main/conv1", "conv4_x_1/main/conv2",
        "conv5_x_1/main/conv1", "conv5_x_1/main/conv2", "pool5"]
    text = cli("resnet50", "resnet50_tv", "--ignore", "rf,jump").stdout
    assert "~  conv3_x_1/main/conv1" in text and "25.7M -> 102.8M" in text and "s: 2 -> 1" in text
    assert "+231,211,008" in text and "1.0599x" in text
    assert " RF " not in text.splitlines()[2]  # what is not compared is not shown by default
    everything = cli("resnet50", "resnet50_tv").stdout
    assert "72 of them differ only in receptive field or jump" in everything


# ---------------------------------------------------------------- VGG-16 with and without BN


def test_vgg16_vs_vgg16_bn_aligns_conv_to_conv():
    """torchvision's vgg16_bn fuses BN into each conv row: each of the 13 convs gains 2 x C params
    (gamma, beta) and 2 x C buffers (running stats); MACs do not change."""
    d = as_json("vgg16", "vgg16_bn")
    changed = [e for e in d["layers"] if e["status"] == "changed"]
    assert d["counts"]["only_a"] == d["counts"]["only_b"] == 0
    assert [e["path_a"] for e in changed] == ["conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1", "conv3_2",
                                             "conv3_3", "conv4_1", "conv4_2", "conv4_3", "conv5_1", "conv5_2",
                                             "conv5_3"]
    for e in changed:
        c = e["a"]["out"][0]
        assert e["delta"]["params"] == 2 * c and e["delta"]["buffer_elems"] == 2 * c and e["delta"]["macs"] == 0
        assert e["args"] == [{"name": "bn", "a": False, "b": True}]   # the default false against true
    t = d["totals"]
    assert t["params"]["delta"] == 2 * (64 * 2 + 128 * 2 + 256 * 3 + 512 * 6) == 8448
    assert (t["params"]["a"], t["params"]["b"]) == (138357544, 138365992)
    assert t["macs"]["delta"] == 0


def test_family_members_by_variant():
    """--variant twice: A's member, then B's, of one family file; the same as the bundled names."""
    family = str(REPO / "specs" / "vgg11.yaml")
    by_variant = as_json(family, family, "--variant", "vgg16", "--variant", "vgg16_bn")
    by_name = as_json("vgg16", "vgg16_bn")
    assert by_variant["layers"] == by_name["layers"] and by_variant["totals"] == by_name["totals"]
    assert by_variant["a"]["label"] == f"{family}:vgg16"
    once = as_json(family, "vgg16", "--variant", "vgg16")      # once: both sides (a name ignores it)
    assert once["counts"]["changed"] == once["counts"]["only_a"] == once["counts"]["only_b"] == 0


# ---------------------------------------------------------------- identical networks


def test_identical_specs_give_no_differences():
    d = as_json("googlenet", "googlenet")
    rows = len(archcalc.analyze(archcalc.load("googlenet")).rows)
    assert d["layers"] == [] and d["counts"] == {"only_a": 0, "only_b": 0, "changed": 0, "same": rows}
    assert all(t["delta"] == 0 and t["ratio"] == (1.0 if t["a"] else None) for t in d["totals"].values())
    assert d["differ"] is False
    cli("googlenet", "googlenet", "--exit-code", code=0)
    cli("vgg16", "vgg19", "--exit-code", code=1)
    cli("vgg16", "vgg19", code=0)                              # without --exit-code a diff that ran is 0
    every = as_json("googlenet", "googlenet", "--all")
    assert len(every["layers"]) == rows and {e["status"] for e in every["layers"]} == {"same"}


# ---------------------------------------------------------------- a network before and after an edit

BEFORE = """\
name: net
input: [3, 32, 32]
layers:
  - conv c1: {out: 16, k: 3, p: 1, act: relu}
  - conv c2: {out: 16, k: 3, p: 1, act: relu}
  - maxpool p1: {k: 2}
  - conv c3: {out: 32, k: 3, p: 1, act: relu}
  - fc f1: {out: 10}
"""


def _write(tmp_path, name, text) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_a_file_edit_shows_the_edited_layer(tmp_path):
    after = BEFORE.replace("conv c2: {out: 16", "conv c2: {out: 24")
    d = as_json(_write(tmp_path, "before.yaml", BEFORE), _write(tmp_path, "after.yaml", after))
    assert [(e["status"], e["path_a"]) for e in d["layers"]] == [("changed", "c2"), ("changed", "p1"), ("changed", "c3")]
    c2, p1, c3 = d["layers"]
    # c2: 3x3, 16 -> 16 | 24 channels on 32x32: weights 16x16x9 = 2,304 | 24x16x9 = 3,456, + biases
    assert (c2["a"]["params"], c2["b"]["params"]) == (2304 + 16, 3456 + 24)
    assert (c2["a"]["macs"], c2["b"]["macs"]) == (2304 * 32 * 32, 3456 * 32 * 32)
    assert c2["args"] == [{"name": "out", "a": 16, "b": 24}]
    assert p1["a"]["out"] == [16, 16, 16] and p1["b"]["out"] == [24, 16, 16] and p1["args"] == []
    # c3 reads 24 channels instead of 16: weights 32x16x9 = 4,608 -> 32x24x9 = 6,912, on 16x16
    assert c3["delta"]["params"] == 6912 - 4608 and c3["delta"]["macs"] == (6912 - 4608) * 16 * 16
    assert c3["args"] == []
    assert d["totals"]["params"]["delta"] == (3456 + 24 - 2304 - 16) + (6912 - 4608)


def test_an_inserted_layer_is_only_in_b_and_the_rest_stays_aligned(tmp_path):
    after = BEFORE.replace("  - maxpool p1", "  - conv extra: {out: 16, k: 1}\n  - maxpool p1")
    d = as_json(_write(tmp_path, "a.yaml", BEFORE), _write(tmp_path, "b.yaml", after), "--ignore", "rf,jump")
    assert [(e["status"], e["path_a"], e["path_b"]) for e in d["layers"]] == [("only_b", None, "extra")]
    assert d["layers"][0]["b"]["params"] == 16 * 16 + 16 and d["layers"][0]["a"] is None
    assert d["counts"]["same"] == 6                  # input, c1, c2, p1, c3, f1
    text = cli(_write(tmp_path, "a2.yaml", BEFORE), _write(tmp_path, "b2.yaml", after)).stdout
    assert "+  extra" in text


def test_renamed_layers_align_by_type_and_separate_bn_rows_are_additions(tmp_path):
    """Paths that differ fall back to the type sequence: B renames the convs and writes BN as rows
    of its own, so conv meets conv and each BN is only in B."""
    after = """\
name: net
input: [3, 32, 32]
layers:
  - conv first: {out: 16, k: 3, p: 1}
  - batchnorm
  - relu
  - conv second: {out: 16, k: 3, p: 1}
  - batchnorm
  - relu
  - maxpool p1: {k: 2}
  - conv c3: {out: 32, k: 3, p: 1, act: relu}
  - fc f1: {out: 10}
"""
    d = as_json(_write(tmp_path, "a.yaml", BEFORE), _write(tmp_path, "b.yaml", after), "--all")
    pairs = [(e["path_a"], e["path_b"]) for e in d["layers"]]
    assert ("c1", "first") in pairs and ("c2", "second") in pairs
    assert (None, "batchnorm1") in pairs and (None, "batchnorm2") in pairs
    assert (None, "relu1") in pairs and (None, "relu2") in pairs
    assert pairs.index(("c1", "first")) < pairs.index((None, "batchnorm1")) < pairs.index(("c2", "second"))
    first = next(e for e in d["layers"] if e["path_a"] == "c1")
    assert first["changed"][:2] == ["path", "args"]                # renamed, and act: relu -> none
    assert first["delta"]["params"] == 0                           # 16x3x9 + 16 either way
    assert ("p1", "p1") in pairs and ("f1", "f1") in pairs


def test_a_moved_layer_pairs_with_its_namesake():
    class R:
        def __init__(self, path, type_="conv"):
            self.path, self.type = path, type_

    a = [R("x"), R("m"), R("y"), R("z")]
    b = [R("x"), R("y"), R("z"), R("m")]
    pairs = align(a, b)
    assert sorted(p for p in pairs if None not in p) == [(0, 0), (1, 3), (2, 1), (3, 2)]
    assert all(None not in p for p in pairs)


def test_a_long_renamed_network_aligns_by_type_in_linear_time():
    """1,100 renamed rows a side (over TYPE_ALIGN_MAX pairs for the matcher): the type sequences are
    equal, so the rows pair position by position; unequal ones that long are left unaligned."""
    class R:
        def __init__(self, path, type_):
            self.path, self.type = path, type_

    types = ["conv", "relu"] * 550
    a = [R(f"a{i}", t) for i, t in enumerate(types)]
    b = [R(f"b{i}", t) for i, t in enumerate(types)]
    assert align(a, b) == [(i, i) for i in range(1100)]
    c = [R(f"c{i}", t) for i, t in enumerate(["conv"] + types[:-1])]
    assert all(None in p for p in align(a, c))


# ---------------------------------------------------------------- depth, formats, JSON, errors


def test_depth_compares_collapsed_blocks():
    d = as_json("resnet50", "resnet50_tv", "--depth", "1", "--ignore", "rf,jump")
    # each first block of conv3_x .. conv5_x gains the 77,070,336 MACs of its first 1x1 conv
    got = {e["path_a"]: e["delta"]["macs"] for e in d["layers"] if e["delta"]["macs"]}
    assert got == {"conv3_x_1": 77070336, "conv4_x_1": 77070336, "conv5_x_1": 77070336}


def test_json_shape():
    d = as_json("resnet50", "resnet50_tv")
    assert set(d) == {"a", "b", "ignore", "counts", "layers", "totals", "differ"}
    assert set(d["a"]) == {"label", "name", "file", "input", "batch", "dtype"}
    assert set(d["totals"]) == set(TOTAL_KEYS)
    assert all(set(t) == {"a", "b", "delta", "ratio"} for t in d["totals"].values())
    layer = d["layers"][0]
    assert set(layer) == {"status", "path_a", "path_b", "changed", "args", "a", "b", "delta"}
    assert set(layer["a"]) == set(KEYS)
    # the figures are the table's JSON under the same keys
    report = archcalc.analyze(archcalc.load("resnet50"))
    row = next(r for r in archcalc.to_dict(report)["layers"] if r["path"] == layer["path_a"])
    assert {k: row[k] for k in KEYS} == layer["a"]


def test_csv_and_markdown():
    rows = list(csv.reader(io.StringIO(cli("vgg16", "vgg16_bn", "--format", "csv", "--columns", "path,params,macs").stdout)))
    assert rows[0] == ["status", "path_a", "path_b", "changed", "params_a", "params_b", "params_delta",
                       "macs_a", "macs_b", "macs_delta"]
    conv1_1 = rows[1]
    assert conv1_1[:3] == ["changed", "conv1_1", "conv1_1"]
    assert conv1_1[4:7] == ["1792", "1920", "128"]              # 64x3x9 + 64; + 64 gamma + 64 beta
    assert rows[-1][:3] == ["TOTAL", "vgg16", "vgg16_bn"] and rows[-1][4:7] == ["138357544", "138365992", "8448"]
    md = cli("vgg16", "vgg16_bn", "--format", "md").stdout
    assert md.startswith("### vgg16 vs vgg16_bn")
    assert "| ~ | conv1_1 | conv | 64x224x224 | 1.8K -> 1.9K |" in md
    # where the short form would read 1.2M -> 1.2M the cell gives the exact counts: 512x256x9 + 512, + 2 x 512
    assert "| ~ | conv4_1 | conv | 512x28x28 | 1,180,160 -> 1,181,184 |" in md
    assert "| params | 138,357,544 | 138,365,992 | +8,448 | 1.0001x |" in md


def test_bad_spec_is_one_line_and_exit_2(tmp_path):
    bad = _write(tmp_path, "bad.yaml", BEFORE.replace("conv c3: {out: 32,", "conv c3: {out: 32, bogus: 1,"))
    r = cli("vgg16", bad, code=2)
    assert r.stdout == "" and r.stderr.count("\n") == 1
    assert r.stderr.startswith(f"archcalc: {bad}:7: c3: unknown argument bogus for conv")
    r = cli("nosuch_net", "vgg16", code=2)
    assert r.stderr.count("\n") == 1 and "no bundled spec named 'nosuch_net'" in r.stderr
    r = cli("vgg16", "vgg16", "--ignore", "colour", code=2)
    assert "cannot ignore colour" in r.stderr
    cli("vgg16", "vgg16", "--variant", "a", "--variant", "b", "--variant", "c", code=2)


def test_library_call():
    a, b = (archcalc.analyze(archcalc.load(n)) for n in ("resnet50", "resnet50_tv"))
    d = diff(a, b, ignore=("rf", "jump"))
    assert len(d.differences) == 7 and d.differ
    assert next(t for t in d.totals if t.key == "macs").delta == 231211008
