"""`archcalc compare`: networks and ranges side by side, with ratios; the lectures' comparisons."""
from __future__ import annotations

import csv
import io
import json

from click.testing import CliRunner

from archcalc.cli import main


def cli(*args, code=0):
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == code, result.output
    return result.output


def test_networks_side_by_side_with_ratios():
    data = json.loads(cli("compare", "vgg16", "googlenet", "resnet50", "--format", "json"))["items"]
    assert [d["label"] for d in data] == ["vgg16", "googlenet", "resnet50"]
    assert [d["params"] for d in data] == [138357544, 6998552, 25557032]
    assert [d["depth"] for d in data] == [16, 22, 50]
    assert [d["macs"] for d in data] == [15470264320, 1582671872, 3857973248]
    assert data[0]["out_bytes"] == 60950432                      # the CS231n table's 15,237,608 x 4 B
    assert data[1]["ratio"]["params"] == 6998552 / 138357544
    assert data[0]["ratio"]["depth"] == 1.0


def test_formats():
    rows = list(csv.reader(io.StringIO(cli("compare", "alexnet", "vgg16", "--format", "csv"))))
    assert rows[0][:4] == ["item", "params", "weight_params", "macs"]
    assert rows[2][0] == "vgg16" and rows[2][1] == "138357544"
    md = cli("compare", "alexnet", "vgg16", "--format", "md")
    assert md.startswith("| figure | alexnet | vgg16 |") and "| depth | 8 | 16 (2.00x) |" in md
    table = cli("compare", "alexnet", "vgg16")
    assert "ratios against alexnet" in table


def test_eecs498_stem_vs_vgg16_from_224_to_28():
    """EECS 498: GoogLeNet's stem (conv1 .. pool2) against VGG-16 from 224 to 28 (conv1_1 .. pool3)."""
    out = cli("compare", "googlenet:conv1..pool2", "vgg16:conv1_1..pool3", "--format", "json")
    stem, vgg = json.loads(out)["items"]
    assert stem["params"] == 124416              # 9,472 + 4,160 + 110,784: the slide's 124K
    assert stem["flop"] == 480836608             # the slide's rows add to 481 MFLOP; it prints 418
    assert vgg["params"] == 1735488              # with conv3_3; the slide's 1.1M is without it
    assert vgg["flop"] == 9340764160
    assert vgg["ratio"]["params"] == 1735488 / 124416
    # --lecture prints the slide's numbers from the catalogue, each a pass or an explained erratum
    lecture = cli("compare", "googlenet:conv1..pool2", "vgg16:conv1_1..pool3", "--lecture")
    assert "lecture [pass] googlenet.eecs498.stem: params printed '124K'" in lecture
    assert "lecture [erratum] googlenet.eecs498.stem: flop printed '418M'" in lecture
    assert "lecture [erratum] googlenet.eecs498.stem_vs_vgg16: params printed '1.1M'" in lecture
    assert "without conv3_3" in lecture
    assert "lecture [erratum] googlenet.eecs498.stem_params_ratio: ratio printed '8.9x'" in lecture


def test_naive_vs_reduced_inception():
    naive, reduced = json.loads(cli("compare", "inception_naive", "inception_reduced", "--format", "json"))["items"]
    assert (naive["macs"], reduced["macs"]) == (854196224, 271351808)   # the slide: 854M vs "358M" (a slip)
    lecture = cli("compare", "inception_reduced", "inception_naive", "--lecture")
    assert "lecture [erratum] inception.naive_vs_reduced: ratio printed '0.42'" in lecture


def test_basic_vs_bottleneck_block():
    """EECS 498: a basic block does 18HWC^2, a bottleneck (4C -> C -> C -> 4C) 17HWC^2; C = 64 at 56x56."""
    basic, bottleneck = json.loads(cli("compare", "resnet34:conv2_x_2", "resnet50:conv2_x_2", "--format", "json"))["items"]
    assert basic["macs"] == 18 * 56 * 56 * 64**2
    assert bottleneck["macs"] == 17 * 56 * 56 * 64**2
    assert (basic["depth"], bottleneck["depth"]) == (2, 3)


def test_bad_items_are_bad_input():
    assert "no row or block" in cli("compare", "vgg16:conv1..nope", code=2)
    assert "archcalc:" in cli("compare", "no_such_net", code=2)
