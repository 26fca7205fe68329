"""Families (`variants:`), the shared block library (specs/blocks/) and `rounding: floor` across the
bundled specs.

A family file declares its first member at the top and the others under `variants:`; every member
is a bundled name of its own, with its own source, notes and expect. The ResNet blocks are written
once, in specs/blocks/resnet.yaml, and every ResNet spec calls them. Every bundled spec analyses
under --strict: a floored output size there is the framework's or the paper's intended size and is
marked `rounding: floor`.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import re

import pytest
from click.testing import CliRunner

import archcalc
from archcalc import spec as spec_mod
from archcalc.check import check
from archcalc.cli import main

from conftest import REPO

SPECS = REPO / "specs"
FILES = sorted(SPECS.glob("*.yaml"))  # the networks; specs/blocks/ holds the block library
NAMES = archcalc.bundled_names()

# The families, by file, and their members in file order (the first is the file's `name:`).
FAMILIES = {
    "resnet18": ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152"],     # Table 1, v1
    "resnet50_tv": ["resnet50_tv", "resnet101_tv", "resnet152_tv"],                  # torchvision v1.5
    "resnet20": ["resnet20", "resnet56", "resnet110", "plain20", "plain56"],         # CIFAR-10, section 4.2
    "vgg11": ["vgg11", "vgg11_lrn", "vgg13", "vgg16_c", "vgg16", "vgg19",             # Table 1 columns
              "vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn"],                       # torchvision's BN versions
    "densenet121": ["densenet121", "densenet169", "densenet201", "densenet161"],
    "squeezenet1_0": ["squeezenet1_0", "squeezenet1_1"],
    "mobilenet_v1": ["mobilenet_v1", "mobilenet_v1_075_224", "mobilenet_v1_050_224", "mobilenet_v1_025_224",
                     "mobilenet_v1_100_192", "mobilenet_v1_100_160", "mobilenet_v1_100_128",
                     "mobilenet_v1_050_160", "mobilenet_v1_shallow", "mobilenet_v1_conv"],   # Tables 4-9
    "mobilenet_v3_large": ["mobilenet_v3_large", "mobilenet_v3_small"],
    "mnasnet0_5": ["mnasnet0_5", "mnasnet0_75", "mnasnet1_0", "mnasnet1_3"],
    "efficientnet_b0": [f"efficientnet_b{i}" for i in range(8)],                      # compound scaling
    "shufflenet_v2_x0_5": ["shufflenet_v2_x0_5", "shufflenet_v2_x1_0", "shufflenet_v2_x1_5", "shufflenet_v2_x2_0"],
    "preact_resnet164": ["preact_resnet164", "preact_resnet1001", "preact_resnet200"],
    "wrn28_10": ["wrn28_10", "wrn40_4", "wrn16_8"],
    "wide_resnet50_2": ["wide_resnet50_2", "wide_resnet101_2"],
    "resnext50_32x4d": ["resnext50_32x4d", "resnext101_32x8d", "resnext101_64x4d"],
    "fractalnet20": ["fractalnet20", "fractalnet40"],
    "regnet_x_400mf": ['regnet_x_400mf', 'regnet_x_800mf', 'regnet_x_1_6gf', 'regnet_x_3_2gf', 'regnet_x_8gf', 'regnet_y_400mf', 'regnet_y_800mf', 'regnet_y_1_6gf', 'regnet_y_3_2gf', 'regnet_y_8gf'],
    "convnext_tiny": ["convnext_tiny", "convnext_small", "convnext_base", "convnext_large"],
}
MEMBERS = [m for ms in FAMILIES.values() for m in ms]
RESNETS = FAMILIES["resnet18"] + FAMILIES["resnet50_tv"] + FAMILIES["resnet20"]
RESNET_LIBRARY = "specs/blocks/resnet.yaml"

# Bundled specs that still warn about a floored output size, each with the reason (a real slip that
# its notes explain). Every other floor in the bundled specs is intended and marked `rounding: floor`.
STILL_WARNS: dict[str, str] = {}


def parsed(path):
    return spec_mod.parse(path.read_text(encoding="utf-8"), file=f"specs/{path.name}")


# ---------------------------------------------------------------- families


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_variant_names_read_from_the_text_are_the_parsed_variants(path):
    # archcalc lists members from the text (spec.variant_names) without parsing every file: it must
    # agree with the YAML parser, for every bundled file, family or not.
    text = path.read_text(encoding="utf-8")
    assert spec_mod.variant_names(text) == list(parsed(path).variants)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_a_file_is_named_after_its_first_member(path):
    # The bundled index maps a file's stem to the spec at its top: a family file named otherwise
    # would list its stem as a network and lose its first member's name.
    assert parsed(path).name == path.stem


def test_the_families_are_as_documented():
    found = {p.stem: [parsed(p).name, *parsed(p).variants] for p in FILES if parsed(p).variants}
    assert found == FAMILIES


@pytest.mark.parametrize("name", MEMBERS)
def test_every_member_loads_by_name_with_its_own_source_notes_and_expect(name):
    spec = archcalc.load(name)
    family = next(f for f, ms in FAMILIES.items() if name in ms)
    assert (spec.name, spec.file, spec.family) == (name, f"specs/{family}.yaml", family)
    if name != family:  # a variant's source, notes and expect are its own, never its family's
        own = parsed(SPECS / f"{family}.yaml").variants[name]
        assert {"source", "notes", "expect"} <= set(own), f"{name} inherits {sorted({'source', 'notes', 'expect'} - set(own))}"
    outcomes = check(spec)
    assert outcomes and all(o.ok for o in outcomes), [o for o in outcomes if not o.ok]


def test_members_are_distinct_networks():
    # No two members of a family analyse to the same (params, MACs, layer paths): a variant that
    # forgot its args would repeat its family's first member.
    for family, members in FAMILIES.items():
        seen = {}
        for name in members:
            rep = archcalc.analyze(archcalc.load(name))
            key = (rep.totals.params, rep.totals.macs, tuple(r.path for r in rep.rows))
            assert key not in seen, f"{name} is the same network as {seen.get(key)}"
            seen[key] = name


def test_archcalc_check_passes_on_every_member():
    result = CliRunner().invoke(main, ["check", *MEMBERS])
    assert result.exit_code == 0, result.output
    checked = re.findall(r"^ok   (\S+): (\d+)/\2 expected numbers$", result.output, re.M)
    assert [name for name, _ in checked] == MEMBERS


def test_archcalc_list_includes_every_member():
    result = CliRunner().invoke(main, ["list", "--format", "csv"])
    assert result.exit_code == 0, result.output
    listed = [row["name"] for row in csv.DictReader(io.StringIO(result.output))]
    assert sorted(listed) == sorted(NAMES)       # every bundled name once (grouped by family, not sorted)
    assert set(MEMBERS) <= set(listed)
    assert not set(FAMILIES) - set(MEMBERS)  # a family's file name is a member, not an extra network


# ---------------------------------------------------------------- the shared ResNet blocks


def test_the_resnet_blocks_are_defined_once_in_the_library():
    # A block definition is a key with nothing after its colon (its mapping follows on the next
    # lines); `basic: {option: A}` in defaults is a use, not a definition.
    for block in ("basic", "bottleneck", "plain"):
        definition = re.compile(rf"^\s*{block}:\s*(#.*)?$", re.M)
        where = [p.relative_to(REPO).as_posix() for p in sorted(SPECS.rglob("*.yaml"))
                 for _ in definition.finditer(p.read_text(encoding="utf-8"))]
        assert where == [RESNET_LIBRARY], f"{block} is defined in {where}"
    assert set(spec_mod.library_blocks()) >= {"basic", "bottleneck", "plain"}
    assert all(spec_mod.library_blocks()[b][1] == RESNET_LIBRARY for b in ("basic", "bottleneck", "plain"))


def test_library_blocks_ignore_the_caller_s_conv_defaults():
    # A library block is the same network whoever calls it: its own defaults pin bias, BN and ReLU,
    # and its convs spell out kernel and padding, so VGG-style conv defaults change only the stem.
    text = spec_mod.bundled_text("resnet50")
    line = "  conv: {bias: false, bn: true, act: relu}\n"
    assert text.count(line) == 1
    edited = text.replace(line, "  conv: {k: 3, p: 1, bias: true, bn: false, act: none}\n")
    ours = archcalc.analyze(archcalc.parse(edited, variant="resnet50")).rows
    bundled = archcalc.analyze(archcalc.load("resnet50")).rows
    inside = lambda rows: [(r.path, r.out, r.params, r.macs) for r in rows if "/" in r.path]
    assert inside(ours) == inside(bundled)
    assert ours[1].params != bundled[1].params  # the stem conv did take the new defaults


def test_docs_specs_md_lists_the_families():
    text = (REPO / "docs" / "specs.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `specs/(\w+)\.yaml` \| ([^|]+) \|", text, re.M)
    assert {stem: [m.strip() for m in members.split(",")] for stem, members in rows} == FAMILIES


@pytest.mark.parametrize("name", RESNETS)
def test_resnet_specs_call_the_library_blocks(name):
    spec = archcalc.load(name)
    assert not spec.blocks, f"{name} defines blocks of its own: {sorted(spec.blocks)}"
    graph = archcalc.expand(spec)
    used = set(graph.scope_types.values()) & {"basic", "bottleneck", "plain"}
    assert used == {spec.args.get("block", "bottleneck")}  # the _tv family calls bottleneck by name
    in_library = [n for n in graph.nodes if n.file == RESNET_LIBRARY]
    # Everything but the stem conv (and pool), the head's pool and fc runs inside a library block.
    assert len(in_library) == len(graph.nodes) - len([n for n in graph.nodes if "/" not in n.path])


# ---------------------------------------------------------------- rounding: floor and --strict


@pytest.mark.parametrize("name", NAMES)
def test_every_bundled_spec_analyses_under_strict(name):
    spec = archcalc.load(name)
    if name in STILL_WARNS:
        with pytest.raises(archcalc.SpecError, match="non-integer output size"):
            archcalc.analyze(spec, strict=True)
        return
    report = archcalc.analyze(spec, strict=True)
    assert not report.warnings


def test_still_warns_lists_bundled_specs_only():
    assert set(STILL_WARNS) <= set(NAMES)
    assert all(reason.strip() for reason in STILL_WARNS.values())


def _halvings(name: str) -> set[str]:
    """The layers whose output size is floored at the spec's input: the stride-2 layers on even maps."""
    if name.startswith(("resnet20", "plain")):  # CIFAR: 32 -> 16 -> 8 by the first conv of stages 2 and 3
        # (option A's shortcut subsamples every other pixel, ceil(32 / 2) = 16: nothing to floor)
        return {f"stage{i}_1/{'conv1' if name.startswith('plain') else 'main/conv1'}" for i in (2, 3)}
    # ImageNet: the stem (112.5 -> 112, 56.5 -> 56), then each downsampling block's strided conv
    # (v1: the first 1x1; v1.5: the 3x3; basic: the first 3x3) and its projection shortcut.
    strided = "main/conv2" if name.endswith("_tv") else "main/conv1"
    return {"conv1", "pool1"} | {f"conv{i}_x_1/{part}" for i in (3, 4, 5) for part in (strided, "skip/shortcut1")}


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "resnet50_tv", "resnet20", "plain20"])
def test_rounding_floor_silences_exactly_the_stride_2_halvings(name):
    # With the spec's and the library blocks' `rounding: floor` taken away, the floored sizes warn
    # again: those of the stride-2 layers on even maps (Table 1's 112.5 -> 112, 28.5 -> 28, ...,
    # CIFAR's 16.5 -> 16) and nothing else. The sizes are the same either way: rounding only says
    # whether a floor was intended.
    spec = archcalc.load(name)
    library = {b: ({**d, "rounding": "warn"}, f) for b, (d, f) in spec_mod.library_blocks().items()}
    unmarked = archcalc.cost(archcalc.expand(dataclasses.replace(spec, rounding="warn"), library=library))
    marked = archcalc.analyze(spec, strict=True)
    assert {p for p, _ in unmarked.warnings} == _halvings(name)
    assert all("floored" in w for _, w in unmarked.warnings)
    assert not marked.warnings
    assert [(r.path, r.out) for r in unmarked.rows] == [(r.path, r.out) for r in marked.rows]
