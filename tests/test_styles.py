"""`archcalc table --style`: the lecture tables as the slides print them, cell by cell against the
lecture notes in ../shared/seeds, and the general options the styles are built from."""
from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from archcalc.cli import main
from archcalc.units import slide_round

SEEDS = Path(__file__).resolve().parent.parent.parent / "shared" / "seeds"


def cli(*args, code=0):
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == code, result.output
    return result.output


def _seed(name: str) -> str:
    files = sorted(SEEDS.glob(f"{name}_*.txt"))
    if not files:
        pytest.skip("../shared/seeds is not beside this checkout")
    return files[0].read_text(encoding="utf-8")


_CS231N_ROW = re.compile(r"^\s*([A-Z0-9-]+): \[(\S+)\] memory: (.*?) params: (.*)$")


def _cs231n_cells(line: str) -> list[str]:
    """A CS231n table line as cells: label, shape, memory (its product and value), params. The seed
    writes the arithmetic in LaTeX ($224 \\times 224 \\times 3 = 150K$); spaces do not count."""
    line = line.replace("$", "").replace(r"\times", "*")
    m = _CS231N_ROW.match(line)
    assert m, line
    return [re.sub(r"\s+", "", c) for c in m.groups()]


def test_cs231n_vgg16_table_is_the_seed_table_cell_by_cell():
    seed = [l for l in _seed("001").splitlines() if _CS231N_ROW.match(l.replace("$", "").replace(r"\times", "*"))]
    assert len(seed) == 22, "the seed's VGG-16 table has 22 rows (INPUT .. FC)"
    out = cli("table", "vgg16", "--style", "cs231n").splitlines()
    ours = [l for l in out if _CS231N_ROW.match(l)]
    assert len(ours) == 22
    for theirs, mine in zip(seed, ours):
        assert _cs231n_cells(mine) == _cs231n_cells(theirs)
    # The totals: the honest figures in the slide's form, then the slide's line with its explanation.
    text = "\n".join(out)
    assert "TOTAL memory: 15.2M * 4 bytes ~= 61MB / image (only forward! ~*2 for bwd)" in text
    assert "15,237,608 elements x 4 B = 60,950,432 B = 61.0 MB (58.1 MiB)" in text
    assert "TOTAL params: 138M parameters" in text
    seed_total = next(l for l in _seed("001").splitlines() if l.startswith("TOTAL memory"))
    assert "24M * 4 bytes" in seed_total and "96MB" in seed_total
    lecture = next(l for l in out if l.startswith("lecture: TOTAL memory: 24M * 4 bytes ~= 96MB"))
    assert "[erratum]" in lecture and "15,237,608" in lecture


def _eecs_rows(out: str) -> dict:
    rows = {}
    for line in out.splitlines():
        cells = re.split(r"\s{2,}", line.strip())
        if cells and re.fullmatch(r"(conv|pool|fc|flatten)\S*", cells[0]):
            rows[cells[0]] = line
    return rows


def _eecs_table(out: str) -> dict:
    """name -> [C, H/W, filters, kernel, stride, pad, C, H/W, memory, params, flop] by column position."""
    lines = out.splitlines()
    header = next(i for i, l in enumerate(lines) if l.startswith("layer"))
    dashes = lines[header + 1]
    spans = [(m.start(), m.end()) for m in re.finditer(r"-+", dashes)]
    table = {}
    for line in lines[header + 2:]:
        if not line.strip():
            break
        padded = line.ljust(spans[-1][1])
        cells = [padded[a:b].strip() for a, b in spans]
        table[cells[0]] = cells[1:]
    return table


# The EECS 498 lecture 8 AlexNet table at 3x227x227, column by column. conv1 as seed 002 prints it
# (output 56, 200,704 x 4 / 1024 = 784 KB, 23,296 params); pool1 and fc6 as the catalogue
# (../shared/lecture_numbers.yaml alexnet.eecs498.*) verified them; the other rows by hand with the
# lecture's conventions: memory = C x H x W x 4 / 1024 rounded, params / 1000, flop = MACs / 10^6
# (pools: C x H' x W' x 3 x 3).
EECS_ALEXNET = {
    #          C     H/W   filt    k    s    p    C      H/W   KB     k (params)  M (flop)
    "conv1":  ["3", "227", "64", "11", "4", "2", "64", "56", "784", "23", "73"],
    "pool1":  ["64", "56", "", "3", "2", "0", "64", "27", "182", "0", "0"],        # 182.25 KB; 0.42 M
    "conv2":  ["64", "27", "192", "5", "1", "2", "192", "27", "547", "307", "224"],  # 546.75; 307,392; 223.9
    "pool2":  ["192", "27", "", "3", "2", "0", "192", "13", "127", "0", "0"],      # 126.75
    "conv3":  ["192", "13", "384", "3", "1", "1", "384", "13", "254", "664", "112"],  # 253.5; 663,936; 112.1
    "conv4":  ["384", "13", "256", "3", "1", "1", "256", "13", "169", "885", "150"],  # 884,992; 149.5
    "conv5":  ["256", "13", "256", "3", "1", "1", "256", "13", "169", "590", "100"],  # 590,080; 99.7
    "pool3":  ["256", "13", "", "3", "2", "0", "256", "6", "36", "0", "0"],
    "flatten": ["256", "6", "", "", "", "", "9216", "", "36", "0", "0"],
    "fc6":    ["9216", "", "4096", "", "", "", "4096", "", "16", "37,753", "38"],
    "fc7":    ["4096", "", "4096", "", "", "", "4096", "", "16", "16,781", "17"],
    "fc8":    ["4096", "", "1000", "", "", "", "1000", "", "4", "4,097", "4"],
}


def test_eecs498_alexnet_table():
    out = cli("table", "alexnet_tv", "--input", "3x227x227", "--style", "eecs498")
    assert _eecs_table(out) == EECS_ALEXNET


def test_eecs498_alexnet_conv1_is_the_seed_worked_example():
    seed = _seed("002")
    # "(227-11+2x2)/4+1 = 56", "200704 *4 /1024 = 784", "= 23,296"
    assert re.search(r"\(227-11\+2x2\)/4\+1 = 56", seed)
    assert "200704 *4 /1024 = 784" in seed and "23,296" in seed
    conv1 = _eecs_table(cli("table", "alexnet_tv", "--input", "3x227x227", "--style", "eecs498"))["conv1"]
    assert conv1[7] == "56" and conv1[8] == "784" and conv1[9] == str(round(23296 / 1000))


def test_eecs498_alexnet_table_agrees_with_the_shared_catalogue(lecture_numbers):
    table = _eecs_table(cli("table", "alexnet_tv", "--input", "3x227x227", "--style", "eecs498"))
    for row in ("conv1", "pool1", "fc6"):
        printed = lecture_numbers[f"alexnet.eecs498.{row}"]["value"]
        assert table[row][8] == str(printed["memory_KB"])
        assert table[row][9].replace(",", "") == str(printed["params_K"])
        assert table[row][10] == str(printed["MFLOP"])


def test_eecs498_totals_lines():
    out = cli("table", "alexnet_tv", "--input", "3x227x227", "--style", "eecs498")
    assert "total, conv and fc rows: memory 1,958 KB = 1.91 MB" in out   # the lecture's 1.9 MB
    assert "flop 717M = 0.72 GFLOP" in out                               # its 0.7 GFLOP
    assert "lecture: AlexNet: memory 1.9 MB, params 61M, 0.7 GFLOP (conv and fc rows)  [pass]" in out


def test_eecs498_googlenet_stem_and_vgg():
    stem = _eecs_table(cli("table", "googlenet", "--style", "eecs498", "--rows", "conv1..pool2"))
    # 64x112x112x4/1024 = 3,136 KB; 9,472 params; 118.0 MFLOP; ... ; 192x28x28x4/1024 = 588 KB
    assert [stem[k][8:] for k in stem] == [["3,136", "9", "118"], ["784", "0", "2"], ["784", "4", "13"],
                                           ["2,352", "111", "347"], ["588", "0", "1"]]
    vgg = _eecs_table(cli("table", "vgg16", "--style", "eecs498"))
    assert vgg["conv1_1"][8:] == ["12,544", "2", "87"]        # 64x224x224x4/1024; 1,792; 86.7M
    assert vgg["flatten"][6] == "25088" and vgg["fc6"][9] == "102,765"


# ---------------------------------------------------------------- the general options


def test_fixed_unit_and_share_columns():
    rows = list(csv.reader(io.StringIO(cli("table", "alexnet_tv", "--format", "csv", "--columns", "path,params:k"))))
    assert rows[0] == ["path", "params"]          # CSV keeps exact values under the JSON key
    out = cli("table", "alexnet_tv", "--input", "3x227x227", "--columns", "path,params:k,macs:M,out_bytes:eecs,params:%")
    line = next(l for l in out.splitlines() if l.startswith("fc6"))
    assert line.split() == ["fc6", "37,753", "38", "16", "61.8%"]  # 37,752,832 / 61,100,840


def test_units_sig_order_hide_and_weights_only():
    out = cli("table", "vgg16", "--columns", "path,out,out_elems,params,out_bytes", "--units", "KiB", "--sig", "2",
              "--order", "hwc", "--hide", "dropout,input", "--weights-only")
    assert "output (HxWxC)" in out and "act. KiB" in out and "params (weights)" in out
    line = next(l for l in out.splitlines() if l.startswith("pool1"))
    assert line.split() == ["pool1", "112x112x64", "800K", "0", "3,136.0"]   # 802,816 x 4 B / 1,024
    conv = next(l for l in out.splitlines() if l.startswith("conv1_1"))
    assert conv.split()[3] == "1.7K"                                        # 1,728 weights at 2 figures
    rows = list(csv.reader(io.StringIO(cli("table", "vgg16", "--format", "csv", "--columns", "path,params",
                                           "--weights-only"))))
    assert rows[0] == ["path", "weight_params"] and rows[2] == ["conv1_1", "1728"]   # no biases
    assert "dropout1" not in out and not any(l.startswith("input") for l in out.splitlines())


def test_rows_range_and_subtotals():
    out = cli("table", "vgg16", "--rows", "conv1_1..pool2", "--subtotal", "conv,fc")
    assert "subtotal conv1_1..pool2 (6 rows): params 260,160" in out   # 1,792 + 36,928 + 73,856 + 147,584
    assert "subtotal conv (13 rows): params 14,714,688" in out
    assert "subtotal fc (3 rows): params 123,642,856" in out
    shown = [l.split()[0] for l in out.splitlines() if re.match(r"(conv|pool|fc)\d", l)]
    assert shown == ["conv1_1", "conv1_2", "pool1", "conv2_1", "conv2_2", "pool2"]


def test_depth_is_in_the_totals_and_json():
    import json

    assert "depth: 16 weight layers (conv, fc) on the longest path" in cli("table", "vgg16")
    assert json.loads(cli("table", "googlenet", "--format", "json"))["totals"]["depth"] == 22


def test_bad_options_are_bad_input():
    assert "unknown count unit" in cli("table", "vgg16", "--columns", "params:X", code=2)
    assert "no row or block" in cli("table", "vgg16", "--rows", "conv1..nope", code=2)


@pytest.mark.parametrize("n, sig, text", [(150528, 2, "150K"), (3211264, 2, "3.2M"), (802816, 2, "800K"),
                                          (25088, 2, "25K"), (15237608, 3, "15.2M"), (60950432, 2, "61M")])
def test_slide_round(n, sig, text):
    assert slide_round(n, sig) == text


def test_the_sums_under_a_table_are_the_report_layers():
    """The formatter only shows figures: subtotals and the lecture's flop come from archcalc.report.
    EECS 498's AlexNet at 227 (64-192-384-256-256 filters): pool1 3x3 on 64x56x56 -> 64x27x27,
    64*27*27*9 = 419,904 window elements (the table's "0" MFLOP); conv1 64*56*56 * 3*11*11 =
    72,855,552 MACs, 23,296 params; conv1..pool1 allocate 64*56*56 + 64*27*27 = 247,360 elements."""
    from archcalc import analyze, load
    from archcalc.formats import styles
    from archcalc.report import lecture_flop, subtotal

    report = analyze(load("alexnet_tv"), input_shape=(3, 227, 227), batch=2)
    conv1, pool1 = report.find("conv1"), report.find("pool1")
    assert lecture_flop(pool1) == 64 * 27 * 27 * 9 == 419904
    assert lecture_flop(conv1) == 64 * 56 * 56 * 3 * 11 * 11 == 72855552
    s = subtotal(report, [conv1, pool1])
    assert s["flop"] == 72855552 + 419904 and s["params"] == 23296 and s["rows"] == 2
    assert s["out_elems"] == 64 * 56 * 56 + 64 * 27 * 27 == 247360
    assert s["out_bytes"] == 247360 * 4 * 2  # fp32, batch 2
    assert styles.lecture_flop is lecture_flop and styles.subtotal is subtotal  # re-exported, not redone
