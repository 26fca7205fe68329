"""`archcalc list` and docs/specs.md, the table of bundled specs the README points to."""
from __future__ import annotations

from archcalc.catalog import bundled_summaries, render_summaries

from conftest import REPO


def test_docs_specs_table_is_current():
    text = (REPO / "docs" / "specs.md").read_text()
    table = text.split("<!-- begin list -->\n", 1)[1].split("<!-- end list -->", 1)[0]
    assert table == render_summaries(bundled_summaries(), "md"), (
        "docs/specs.md is out of date: regenerate the table with `archcalc list --format md`")


def test_every_issue_spec_is_bundled():
    # The specs the spec-library issue asks for (lenet1 was optional and is there too).
    wanted = """lenet5 lenet5_paper lenet1 alexnet alexnet_2gpu alexnet_tv zfnet overfeat vgg11 vgg11_lrn
        vgg13 vgg16_c vgg16 vgg19 vgg11_bn vgg13_bn vgg16_bn vgg19_bn nin googlenet googlenet_tv
        inception_naive inception_reduced bn_inception inception_v3 inception_v4 resnet18 resnet34
        resnet50 resnet101 resnet152 resnet50_tv resnet101_tv resnet152_tv plain20 plain56 resnet20
        resnet56 resnet110""".split()
    names = {s.name for s in bundled_summaries()}
    assert not set(wanted) - names
