"""`archcalc table SPEC --format html`: one self-contained page. Checked as text (escaping, no
external resource, the report's numbers in the cells, blocks folded into <details>), parsed as HTML,
and opened in a real headless Chromium (the system's package): the DOM it builds, a screenshot that
is not blank, and no console error."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from html.parser import HTMLParser

import pytest
from click.testing import CliRunner

from archcalc import analyze, load, parse
from archcalc.cli import main
from archcalc.formats import render
from archcalc.formats.columns import parse_columns
from conftest import require_extra

try:
    import matplotlib  # noqa: F401

    HAS_MATPLOTLIB = True
except ImportError:
    HAS_MATPLOTLIB = False
VOID = {"meta", "col", "br", "img", "hr", "input", "link", "wbr"}


def page(name: str, **options) -> str:
    report = analyze(load(name))
    return render("html", report, list(report.rows), parse_columns(None), **options)


class Tags(HTMLParser):
    """Checks that every element is closed in order (the page is well formed) and collects text."""

    def __init__(self):
        super().__init__()
        self.stack: list[str] = []
        self.count: dict[str, int] = {}
        self.cells: list[str] = []
        self._in_td = False

    def handle_starttag(self, tag, attrs):
        self.count[tag] = self.count.get(tag, 0) + 1
        if tag not in VOID and not self.stack[-1:] == ["svg"] or tag == "svg":
            self.stack.append(tag)
        self._in_td = tag == "td"
        if tag == "td":
            self.cells.append("")

    def handle_startendtag(self, tag, attrs):
        self.count[tag] = self.count.get(tag, 0) + 1

    def handle_endtag(self, tag):
        if self.stack and self.stack[-1] == "svg" and tag != "svg":
            return  # inside the SVG only the <svg> element itself is tracked
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes <{self.stack[-1] if self.stack else None}>"
        self.stack.pop()
        self._in_td = False

    def handle_data(self, data):
        if self._in_td:
            self.cells[-1] += data


def parsed(text: str) -> Tags:
    tags = Tags()
    tags.feed(text)
    tags.close()
    assert tags.stack == [], tags.stack
    return tags


def test_page_is_self_contained_and_well_formed():
    text = page("vgg16")
    assert text.startswith("<!DOCTYPE html>\n<html lang=\"en\">")
    tags = parsed(text)
    assert tags.count["table"] >= 2 and tags.count["tr"] == 1 + len(analyze(load("vgg16")).rows)
    # No script and nothing fetched: no src=, no <link>, no @import, and url(...) and href only to ids
    # within the page (the SVG's clip paths and glyphs).
    for needle in ("<script", "<link", " src=", "@import", "<iframe", "<object", "<embed"):
        assert needle not in text, needle
    assert re.findall(r"url\((?!#)", text) == []
    hrefs = re.findall(r'href="([^"]*)"', text)
    assert all(h.startswith("#") for h in hrefs), hrefs


def test_cells_are_the_report_numbers():
    tags = parsed(page("vgg16", plots=False))
    cells = tags.cells
    at = cells.index("fc6")
    # fc6: 4096 outputs, 4096 x 25,088 + 4,096 = 102,764,544 parameters (the table's 102.8M), as many MACs.
    assert cells[at:at + 4] == ["fc6", "4096", "102.8M", "102.8M"]
    text = page("vgg16", plots=False)
    assert "params: 138,357,544 (138.36M)" in text and "MACs: 15,470,264,320 (15.47G)" in text


def test_blocks_fold_into_details():
    text = page("googlenet", plots=False)
    tags = parsed(text)
    summaries = re.findall(r'<details class="block"><summary><b>([^<]+)</b>', text)
    assert summaries[:3] == ["conv2", "inception_3a", "inception_3b"]
    assert {"inception_4e", "inception_5b", "aux1", "aux2"} <= set(summaries)
    # A block's summary sums its rows: inception_3a has 163,696 parameters (GoogLeNet Table 1's 159K of
    # weights plus 256 biases; tests/test_specs_inception.py counts it against torchvision).
    assert "<b>inception_3a</b> <span class=\"sums\">inception, 8 rows · params 163.7K" in text
    assert tags.count["details"] == len(summaries) + 1  # and the notes


def test_text_is_escaped():
    spec = parse("name: n\nsource: 'a <b>bold</b> & <script>alert(1)</script> source'\n"
                 "notes: 'a note with </div><script>x()</script>'\n"
                 "input: [3, 8, 8]\nlayers:\n  - conv c: {out: 4, k: 3}\n", file="n.yaml")
    report = analyze(spec)
    text = render("html", report, list(report.rows), parse_columns(None), plots=False)
    assert "<script" not in text and "<b>bold" not in text
    assert "a &lt;b&gt;bold&lt;/b&gt; &amp; &lt;script&gt;alert(1)&lt;/script&gt; source" in text
    assert "&lt;/div&gt;&lt;script&gt;x()&lt;/script&gt;" in text
    parsed(text)


def test_cli_writes_html_and_other_commands_do_not_take_it():
    result = CliRunner().invoke(main, ["table", "alexnet", "--format", "html", "--columns", "path,out,params:k"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("<!DOCTYPE html>") and "<th class=\"num\">params (k)</th>" in result.output
    assert CliRunner().invoke(main, ["compare", "alexnet", "vgg16", "--format", "html"]).exit_code == 2


def test_chart_inline_when_matplotlib_is_installed():
    text = page("vgg16")
    if not HAS_MATPLOTLIB:
        assert "No chart: plots need matplotlib" in text
        require_extra("ARCHCALC_REQUIRE_PLOT", "matplotlib is not installed (pip install '.[plot]')")
    assert text.count("<svg") == 1 and "<?xml" not in text and "<!DOCTYPE svg" not in text
    svg = text[text.index("<svg"):text.index("</svg>")]
    for name in ("conv1_1", "pool5", "fc6", "fc8"):
        assert f">{name}</text>" in svg
    # A deep network's chart has one bar per top-level block.
    text = page("resnet50")
    assert "One bar per top-level block" in text and ">conv3_x_1</text>" in text


# ---------------------------------------------------------------------------------- the browser

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--enable-logging=stderr", "--v=0"]


@pytest.fixture(scope="module")
def chromium():
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        require_extra("ARCHCALC_REQUIRE_BROWSER", "chromium is not installed (apt-get install chromium)")
    return path


def browse(chromium, tmp_path, url: str, *args) -> subprocess.CompletedProcess:
    profile = tmp_path / f"profile{len(list(tmp_path.iterdir()))}"
    return subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args, url],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "LANG": "C.UTF-8"})


def console_errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


def test_console_check_sees_errors(chromium, tmp_path):
    """The check below can fail: a page with a broken script does show an error."""
    bad = tmp_path / "bad.html"
    bad.write_text("<!DOCTYPE html><html><body><p>x</p><script>undefined_function()</script></body></html>")
    run = browse(chromium, tmp_path, bad.as_uri(), "--dump-dom")
    assert any("Uncaught ReferenceError" in line for line in console_errors(run.stderr)), run.stderr[-2000:]


def test_page_in_headless_chromium(chromium, tmp_path):
    html = tmp_path / "googlenet.html"
    html.write_text(page("googlenet"), encoding="utf-8")
    dom = browse(chromium, tmp_path, html.as_uri(), "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert console_errors(dom.stderr) == []
    # The DOM Chromium built: the table cells, the folded blocks, and the chart as an SVG element.
    assert "<td>inception_4e/pool/proj</td>" in dom.stdout
    assert dom.stdout.count('<details class="block">') >= 11
    assert ("<svg" in dom.stdout) == HAS_MATPLOTLIB

    shot = tmp_path / "page.png"
    run = browse(chromium, tmp_path, html.as_uri(), f"--screenshot={shot}", "--window-size=1200,900")
    assert run.returncode == 0 and shot.exists(), run.stderr[-2000:]
    assert console_errors(run.stderr) == []
    # Not blank: a white page of the same size compresses to a few kB; text and rules do not.
    blank = tmp_path / "blank.html"
    blank.write_text("<!DOCTYPE html><html><body></body></html>")
    blank_shot = tmp_path / "blank.png"
    browse(chromium, tmp_path, blank.as_uri(), f"--screenshot={blank_shot}", "--window-size=1200,900")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 5 * blank_shot.stat().st_size, (shot.stat().st_size, blank_shot.stat().st_size)


@pytest.mark.slow
def test_every_bundled_spec_renders_a_page_with_its_chart():
    """The exhaustive version of the checks above (--run-slow): every bundled spec and family member."""
    from archcalc import bundled_names

    for name in bundled_names():
        text = page(name, plots=HAS_MATPLOTLIB)
        parsed(text)
        assert "No chart" not in text, name
