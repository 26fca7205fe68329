"""`archcalc plot`: the pictures are drawn from the report's numbers (each bar checked against hand
arithmetic), written as PNG and SVG files that are checked on disk, and the comparison chart places
each network at its MACs and published accuracy."""
from __future__ import annotations

import struct

import pytest
from click.testing import CliRunner

from archcalc import analyze, load
from archcalc.cli import main
from conftest import require_extra

try:
    import matplotlib  # noqa: F401
except ImportError:
    require_extra("ARCHCALC_REQUIRE_PLOT", "matplotlib is not installed (pip install '.[plot]')")

from archcalc import plot  # noqa: E402

VGG16_ROWS = ["conv1_1", "conv1_2", "pool1", "conv2_1", "conv2_2", "pool2", "conv3_1", "conv3_2", "conv3_3",
              "pool3", "conv4_1", "conv4_2", "conv4_3", "pool4", "conv5_1", "conv5_2", "conv5_3", "pool5",
              "fc6", "fc7", "fc8"]


def run(*args):
    return CliRunner().invoke(main, list(args))


def png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG file"
    width, height = struct.unpack(">II", data[16:24])  # the IHDR chunk comes first
    return width, height


def bars(ax) -> list[float]:
    return [p.get_width() for p in ax.patches]


def test_layer_bars_are_the_report_numbers():
    """The lecture's point, in numbers: activation memory is largest in the first convs, parameters
    in fc6. Each bar is checked against hand arithmetic, not against archcalc's own table."""
    report = analyze(load("vgg16"))
    rows = [r for r in report.rows if not r.aux]
    fig = plot.layer_chart(report, rows)
    memory, params, macs = fig.axes[:3]
    labels = [t.get_text() for t in memory.get_yticklabels()]
    assert labels == [r.path for r in rows]
    at = {name: labels.index(name) for name in labels}
    # conv1_1 writes 64x224x224 fp32 values; conv1_2 the same.
    assert bars(memory)[at["conv1_1"]] == 64 * 224 * 224 * 4 == max(bars(memory))
    # fc6: a 4096 x (512*7*7) weight matrix and 4096 biases; the largest parameter bar by far.
    assert bars(params)[at["fc6"]] == 4096 * 512 * 7 * 7 + 4096 == max(bars(params))
    assert bars(params)[at["fc6"]] > 0.7 * sum(bars(params))
    # conv1_2: 64 outputs x 3x3x64 MACs at each of 224x224 positions.
    assert bars(macs)[at["conv1_2"]] == 224 * 224 * 64 * 3 * 3 * 64
    assert bars(macs)[at["pool1"]] == 0


def test_plot_png_and_svg_files(tmp_path):
    png, svg = tmp_path / "vgg16.png", tmp_path / "vgg16.svg"
    for out in (png, svg):
        result = run("plot", "vgg16", "--out", str(out))
        assert result.exit_code == 0, result.output
        assert f"wrote {out}" in result.output
    width, height = png_size(png)
    assert 1000 <= width <= 3000 and 500 <= height <= 2000, (width, height)
    assert 30_000 < png.stat().st_size < 1_000_000
    text = svg.read_text()
    assert text.lstrip().startswith("<?xml") and "<svg" in text
    assert 20_000 < len(text) < 2_000_000
    # Text is kept as text (svg.fonttype none): every layer is labelled, the panels are titled and the
    # largest bars say their value (fc6's 102,764,544 parameters, conv1_1's 12,845,056 bytes).
    for name in VGG16_ROWS:
        assert f">{name}</text>" in text, name
    for title in ("activation memory, MB (fp32, batch 1)", "parameters", "MACs per sample"):
        assert title in text
    assert "102.8M" in text and "12.85 MB" in text
    # The same report draws the same file (no date, stable ids): a picture can be committed to docs/.
    again = tmp_path / "again.svg"
    assert run("plot", "vgg16", "--out", str(again)).exit_code == 0
    assert again.read_text() == text


def test_plot_depth_and_log(tmp_path):
    out = tmp_path / "googlenet.svg"
    result = run("plot", "googlenet", "--depth", "1", "--log", "--out", str(out))
    assert result.exit_code == 0, result.output
    text = out.read_text()
    for name in ("inception_3a", "inception_5b", "pool4", "linear"):
        assert f">{name}</text>" in text
    assert ">inception_3a/1x1</text>" not in text  # collapsed into its block
    assert ">aux1" not in text  # training-only branches are not in the picture


def test_compare_chart_places_each_network(tmp_path):
    names = ["alexnet", "vgg16", "googlenet", "resnet50", "mobilenet_v2"]
    items = [(analyze(s), s.accuracy) for s in map(load, names)]
    fig = plot.compare_chart(items)
    ax = fig.axes[0]
    points = [c for c in ax.collections if len(c.get_offsets())]
    assert len(points) == len(names)
    vgg = points[1]
    # VGG-16: 15,470,264,320 MACs (the paper's 15.5 G; the spec's expect:) at torchvision's 71.592 %.
    assert tuple(vgg.get_offsets()[0]) == (15_470_264_320, 71.592)
    # Bubble area is proportional to the parameters: VGG-16 / MobileNetV2 = 138,357,544 / 3,504,872.
    ratio = vgg.get_sizes()[0] / points[4].get_sizes()[0]
    assert ratio == pytest.approx(138_357_544 / 3_504_872)
    assert ax.get_xscale() == "log"
    assert {t.get_text() for t in ax.texts} >= set(names)

    out = tmp_path / "chart.png"
    result = run("plot", "--compare", *names, "--out", str(out))
    assert result.exit_code == 0, result.output
    width, height = png_size(out)
    assert width >= 900 and height >= 600
    assert out.stat().st_size > 30_000
    assert "vgg16: top-1 71.592, top-5 90.382 (torchvision VGG16_Weights.IMAGENET1K_V1" in result.output


def test_compare_without_accuracy_is_one_line_exit_2(tmp_path):
    result = CliRunner().invoke(main, ["plot", "--compare", "vgg16", "lenet5", "--out",
                                          str(tmp_path / "x.png")])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "lenet5.yaml" in lines[0] and "lenet5: no accuracy: key" in lines[0]
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("args, message", [
    (["plot", "vgg16", "--out", "x.jpg"], "must end in .png or .svg"),
    (["plot", "vgg16", "alexnet", "--out", "x.png"], "one SPEC per picture"),
    (["plot", "vgg16", "--panels", "params,rf", "--out", "x.png"], "not a per-layer quantity"),
    (["plot", "no_such_net", "--out", "x.png"], "no_such_net"),
])
def test_plot_bad_input(tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
