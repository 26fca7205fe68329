"""engine.py (and the totals of report.py): walking a spec.

Sequences and naming, times/first, blocks and $arguments, concat/add, aux side branches, groups,
defaults, receptive fields, memory totals (saved once per tensor, peak by liveness), input
override, batch and dtype, depth collapse, strict mode. Every expected number is derived by hand
in the comment beside it, or comes from ../shared/lecture_numbers.yaml (entry ids given).
"""
from __future__ import annotations

import textwrap

import pytest

import archcalc
from archcalc import SpecError, collapse


def analyze(text: str, **options):
    return archcalc.analyze(archcalc.parse(textwrap.dedent(text).lstrip("\n"), "t.yaml"), **options)


def paths(report):
    return [r.path for r in report.rows]


def row(report, key):
    r = report.find(key)
    assert r is not None, f"no row {key!r} in {paths(report)}"
    return r


# ---------------------------------------------------------------- sequences and names


def test_sequence_and_auto_names():
    rep = analyze("""
        name: t
        input: [3, 8, 8]
        layers:
          - conv: {out: 4, k: 3, p: 1}
          - relu
          - conv: {out: 4, k: 3, p: 1}
          - maxpool: {k: 2}
          - maxpool: {k: 2}
    """)
    # the input is a row of its own; unnamed layers are numbered per type in their scope
    assert paths(rep) == ["input", "conv1", "relu1", "conv2", "maxpool1", "maxpool2"]
    assert [r.out for r in rep.rows] == [(3, 8, 8), (4, 8, 8), (4, 8, 8), (4, 8, 8), (4, 4, 4), (4, 2, 2)]
    assert [r.line for r in rep.rows[1:]] == [4, 5, 6, 7, 8]   # the line each layer is written on


def test_explicit_names_times_and_digit_labels():
    rep = analyze("""
        name: t
        input: [3, 8, 8]
        layers:
          - conv conv1: {out: 4, k: 1, times: 2}
          - conv: {out: 4, k: 1, times: 2}
          - conv 3a: {out: 4, k: 1}
          - relu act
    """)
    # a named layer with times gets _1, _2 ...; unnamed repeats keep counting; `conv 3a` -> conv_3a
    assert paths(rep) == ["input", "conv1_1", "conv1_2", "conv1", "conv2", "conv_3a", "act"]


def test_times_first_applies_to_the_first_repetition_only():
    rep = analyze("""
        name: t
        input: [4, 16, 16]
        layers:
          - conv c: {out: 4, k: 3, p: 1, times: 3, first: {s: 2, out: 8}}
    """)
    # c_1: 4 -> 8, stride 2: (16 + 2 - 3)/2 + 1 = 8.5 -> 8; c_2, c_3: 8 -> 4, stride 1 on 8x8
    assert [r.out for r in rep.rows[1:]] == [(8, 8, 8), (4, 8, 8), (4, 8, 8)]
    assert row(rep, "c_1").params == 8 * 4 * 9 + 8      # 296
    assert row(rep, "c_2").params == 4 * 8 * 9 + 4      # 292
    assert row(rep, "c_3").params == 4 * 4 * 9 + 4      # 148


def test_duplicate_path_is_an_error():
    with pytest.raises(SpecError, match="t.yaml:5: a: duplicate layer path 'a'"):
        analyze("""
            name: t
            input: [3, 8, 8]
            layers:
              - conv a: {out: 4, k: 1}
              - relu a
        """)


# ---------------------------------------------------------------- blocks

BLOCK_SPEC = """
    name: t
    input: [3, 16, 16]
    blocks:
      unit:
        args: {c: ~, s: 1, mult: 2}
        defaults: {conv: {bias: false}}
        body:
          - conv: {out: $c, k: 3, s: $s, p: 1}
          - conv: {out: $c * $mult, k: 1}
    layers:
      - unit u1: {c: 8}
      - unit: [4, 2]
      - unit u3: {c: 2, times: 2, first: {s: 2}}
      - conv: {out: 2, k: 1}
"""


def test_block_calls_named_positional_defaults_and_times():
    rep = analyze(BLOCK_SPEC)
    assert paths(rep) == ["input", "u1/conv1", "u1/conv2", "unit1/conv1", "unit1/conv2",
                          "u3_1/conv1", "u3_1/conv2", "u3_2/conv1", "u3_2/conv2", "conv1"]
    got = {r.path: (r.out, r.params) for r in rep.rows[1:]}
    # u1: c=8, s=1 (default), mult=2 (default); the block's defaults drop the conv bias
    assert got["u1/conv1"] == ((8, 16, 16), 8 * 3 * 9)            # 216
    assert got["u1/conv2"] == ((16, 16, 16), 16 * 8)               # $c * $mult = 16 maps: 128
    # positional [4, 2]: c=4, s=2: (16 + 2 - 3)/2 + 1 = 8.5 -> 8
    assert got["unit1/conv1"] == ((4, 8, 8), 4 * 16 * 9)           # 576
    assert got["unit1/conv2"] == ((8, 8, 8), 8 * 4)                # 32
    # u3_1 with first: {s: 2}: (8 + 2 - 3)/2 + 1 = 4.5 -> 4; u3_2 at s=1
    assert got["u3_1/conv1"] == ((2, 4, 4), 2 * 8 * 9)             # 144
    assert got["u3_2/conv1"] == ((2, 4, 4), 2 * 4 * 9)             # 72
    # the block's defaults stop at the block: this conv has its bias again, 2*4 + 2
    assert got["conv1"] == ((2, 4, 4), 10)
    assert rep.scope_types["u1"] == "unit"


def test_block_argument_defaults_from_the_top_level_defaults():
    rep = analyze(BLOCK_SPEC.replace("    layers:", "    defaults: {unit: {mult: 3}}\n    layers:"))
    assert row(rep, "u1/conv2").out == (24, 16, 16)                # 8 * 3


@pytest.mark.parametrize("call, message", [
    ("- unit", "t.yaml:11: unit1: block unit needs c (arguments: c, s, mult)"),
    ("- unit: [1, 2, 3, 4]", "t.yaml:11: unit1: block unit takes 3 arguments (c, s, mult), got 4"),
    ("- unit: {c: 2, d: 3}", "t.yaml:11: unit1: block unit: unknown argument 'd'; its arguments: c, s, mult"),
    ("- unit: {c: 2, times: -1}", "t.yaml:11: unit: times must be a whole number (0 leaves the layer out), got -1"),
])
def test_block_argument_errors(call, message):
    text = BLOCK_SPEC.split("    layers:")[0] + f"    layers:\n      {call}\n"
    with pytest.raises(SpecError) as e:
        analyze(text)
    assert str(e.value) == message


def test_dollar_arithmetic():
    rep = analyze("""
        name: t
        input: [8, 4, 4]
        blocks:
          b:
            args: {c: ~}
            body:
              - conv: {out: $c // 2, k: 1}
              - conv: {out: ($c + 4) * 2, k: 1}
              - conv: {out: $c ** 2 - $c % 3, k: 1}
        layers:
          - b: [8]
    """)
    # 8 // 2 = 4; (8 + 4) * 2 = 24; 8 ** 2 - 8 % 3 = 64 - 2 = 62
    assert [r.out[0] for r in rep.rows[1:]] == [4, 24, 62]


@pytest.mark.parametrize("expr, message", [
    ("$c / 3", "out must be an integer, got 2.6666666666666665"),
    ("$d", "unknown argument $d; arguments: $c"),
    ("$c *", "cannot read expression '$c *'"),
    ("$c // 0", "division by zero in '$c // 0'"),
    ("len($c)", "unknown function len() in 'len($c)'"),
    ("$c ** 100", "exponent 100 is too large"),
])
def test_dollar_errors(expr, message):
    with pytest.raises(SpecError, match=message.replace("$", r"\$").replace("(", r"\(").replace(")", r"\)")
                       .replace("*", r"\*").replace("+", r"\+")):
        analyze(f"""
            name: t
            input: [8, 4, 4]
            blocks:
              b:
                args: {{c: ~}}
                body:
                  - conv: {{out: {expr}, k: 1}}
            layers:
              - b: [8]
        """)


def test_dollar_outside_a_block():
    # at the top level only the network input's $in, $in_h, $in_w (and the spec's own args:) are known
    with pytest.raises(SpecError, match=r"unknown argument \$x; arguments: \$in, \$in_h, \$in_w"):
        analyze("""
            name: t
            input: [3, 8, 8]
            layers:
              - conv: {out: $x, k: 1}
        """)


# ---------------------------------------------------------------- concat and add

GOOGLENET_3A = """
    name: t
    input: [192, 28, 28]
    defaults: {conv: {act: relu}}
    layers:
      - concat 3a:
          1x1:  [conv: {out: 64, k: 1}]
          3x3:  [conv: {out: 96, k: 1}, conv: {out: 128, k: 3, p: 1}]
          5x5:  [conv: {out: 16, k: 1}, conv: {out: 32, k: 5, p: 2}]
          pool: [maxpool: {k: 3, s: 1, p: 1}, conv: {out: 32, k: 1}]
"""


def test_concat_inception_3a():
    rep = analyze(GOOGLENET_3A)
    # named merge: its branches live under its name; the merge row is the name itself
    assert paths(rep) == ["input", "concat_3a/1x1/conv1", "concat_3a/3x3/conv1", "concat_3a/3x3/conv2",
                          "concat_3a/5x5/conv1", "concat_3a/5x5/conv2", "concat_3a/pool/maxpool1",
                          "concat_3a/pool/conv1", "concat_3a"]
    assert row(rep, "concat_3a").out == (256, 28, 28)   # 64 + 128 + 32 + 32 (GoogLeNet Table 1)
    # weights 192*64 + 192*96 + 96*9*128 + 192*16 + 16*25*32 + 192*32 = 163,328 (+ 368 biases);
    # MACs 28*28 * 163,328 = 128,049,152: Table 1's "128M ops" for inception (3a)
    assert rep.totals.weight_params == 163328
    assert rep.totals.params == 163328 + 64 + 96 + 128 + 16 + 32 + 32
    assert rep.totals.macs == 128049152
    assert rep.scope_types["concat_3a"] == "concat" and rep.scope_types["concat_3a/3x3"] == "branch"


def test_unnamed_merge_and_identity_branch():
    rep = analyze("""
        name: t
        input: [4, 8, 8]
        layers:
          - concat:
              a: [conv: {out: 2, k: 1}]
              b: []
          - add:
              main: [conv: {out: 6, k: 3, p: 1}]
              skip: []
    """)
    # unnamed merges put their branches in the enclosing scope and are numbered per kind
    assert paths(rep) == ["input", "a/conv1", "concat1", "main/conv1", "add1"]
    assert row(rep, "concat1").out == (6, 8, 8)          # 2 + the 4 input maps passed through
    assert row(rep, "add1").out == (6, 8, 8)
    assert row(rep, "add1").other_ops == 6 * 8 * 8      # one add per element


def test_add_mismatch_error_names_branches_shapes_and_line():
    with pytest.raises(SpecError) as e:
        analyze("""
            name: t
            input: [3, 8, 8]
            layers:
              - relu
              - add res:
                  main: [conv: {out: 4, k: 3}]
                  skip: []
        """)
    assert str(e.value) == "t.yaml:5: res: add needs equal shapes, got main 4x6x6, skip 3x8x8"


def test_merge_needs_two_branches():
    with pytest.raises(SpecError, match="t.yaml:4: add1: add needs at least two named branches"):
        analyze("""
            name: t
            input: [3, 8, 8]
            layers:
              - add: {main: [relu]}
        """)


# ---------------------------------------------------------------- aux branches and groups

AUX_SPEC = """
    name: t
    input: [3, 8, 8]
    layers:
      - conv: {out: 8, k: 3, p: 1}
      - aux head:
          - avgpool: {global: true}
          - fc: {out: 10}
      - conv: {out: 4, k: 1}
"""


def test_aux_branch_is_a_side_exit_outside_the_totals():
    rep = analyze(AUX_SPEC)
    assert paths(rep) == ["input", "conv1", "head/avgpool1", "head/fc1", "conv2"]
    assert [r.aux for r in rep.rows] == [False, False, True, True, False]
    # conv2 reads conv1's output, not the aux head's: 8 -> 4 maps of 8x8
    assert row(rep, "conv2").out == (4, 8, 8)
    assert rep.totals.params == (8 * 27 + 8) + (4 * 8 + 4)   # 224 + 36 = 260
    assert rep.totals.macs == 64 * 8 * 27 + 64 * 4 * 8       # 13,824 + 2,048 = 15,872
    assert rep.aux_totals.params == 8 * 10 + 10              # 90
    assert rep.aux_totals.macs == 80
    # the aux rows are not in the main memory figures: input 192 + conv1 512 + conv2 256
    assert rep.totals.out_elems == 192 + 512 + 256


def test_no_aux_totals_without_aux():
    assert analyze(GOOGLENET_3A).aux_totals is None


def test_group_is_a_scope_in_the_flow():
    rep = analyze("""
        name: t
        input: [3, 8, 8]
        layers:
          - group stage1:
              - conv: {out: 4, k: 3, p: 1}
              - conv: {out: 4, k: 3, p: 1}
          - conv: {out: 2, k: 1}
    """)
    assert paths(rep) == ["input", "stage1/conv1", "stage1/conv2", "conv1"]
    assert row(rep, "conv1").params == 2 * 4 + 2             # it reads the group's output (4 maps)
    assert rep.scope_types["stage1"] == "group"


# ---------------------------------------------------------------- defaults


def test_defaults_per_type_alias_and_explicit_override():
    rep = analyze("""
        name: t
        input: [3, 8, 8]
        defaults:
          conv: {k: 3, p: 1, bias: false}
          bn: {affine: false}
        layers:
          - conv: {out: 4}
          - conv: {out: 4, k: 1, p: 0, bias: true}
          - batchnorm
    """)
    assert row(rep, "conv1").params == 4 * 3 * 9            # 108: k, p and bias from the defaults
    assert row(rep, "conv2").params == 4 * 4 + 4            # 20: the layer's own arguments win
    assert row(rep, "batchnorm1").params == 0               # `bn:` defaults reach `batchnorm` layers


def test_defaults_errors():
    with pytest.raises(SpecError, match="t.yaml:4: defaults for conv: unknown argument 'kk'"):
        analyze("""
            name: t
            input: [3, 8, 8]
            defaults:
              conv: {kk: 3}
            layers: [relu]
        """)
    with pytest.raises(SpecError, match="t.yaml:4: defaults for unknown layer type 'frob'"):
        analyze("""
            name: t
            input: [3, 8, 8]
            defaults:
              frob: {k: 3}
            layers: [relu]
        """)


# ---------------------------------------------------------------- receptive fields

VGG16 = """
    name: vgg16
    input: [3, 224, 224]
    defaults:
      conv: {k: 3, p: 1, act: relu}
      maxpool: {k: 2, s: 2}
    layers:
      - conv conv1: {out: 64, times: 2}
      - maxpool pool1
      - conv conv2: {out: 128, times: 2}
      - maxpool pool2
      - conv conv3: {out: 256, times: 3}
      - maxpool pool3
      - conv conv4: {out: 512, times: 3}
      - maxpool pool4
      - conv conv5: {out: 512, times: 3}
      - maxpool pool5
      - fc fc6: {out: 4096, act: relu}
      - fc fc7: {out: 4096, act: relu}
      - fc fc8: {out: 1000}
"""


def test_vgg16_receptive_fields(lecture_numbers):
    rep = analyze(VGG16)
    # vgg16.receptive_field: RF += (K-1)*jump: 3,5,6,10,14,16,24,32,40,44,60,76,92,100,132,164,196,212
    expected = {"conv1_1": 3, "conv1_2": 5, "pool1": 6, "conv2_1": 10, "conv2_2": 14, "pool2": 16,
                "conv3_1": 24, "conv3_2": 32, "conv3_3": 40, "pool3": 44, "conv4_1": 60, "conv4_2": 76,
                "conv4_3": 92, "pool4": 100, "conv5_1": 132, "conv5_2": 164, "conv5_3": 196, "pool5": 212}
    catalogue = lecture_numbers["vgg16.receptive_field"]["exact"]
    assert all(expected[k] == v for k, v in catalogue.items())
    assert {k: row(rep, k).rf for k in expected} == {k: (v, v) for k, v in expected.items()}
    # the effective stride: five 2x2 pools, 2^5 = 32 (vgg16.notes.fc_to_conv: "reduction by 32")
    assert row(rep, "pool5").jump == (32, 32)
    # fc6 sees the whole 7x7 map: 212 + (7-1)*32 = 404
    assert row(rep, "fc6").rf == (404, 404)


ALEXNET = """
    name: alexnet
    input: [3, 227, 227]
    defaults: {conv: {act: relu}, maxpool: {k: 3, s: 2}}
    layers:
      - conv conv1: {out: 96, k: 11, s: 4}
      - maxpool pool1
      - lrn norm1
      - conv conv2: {out: 256, k: 5, p: 2}
      - maxpool pool2
      - lrn norm2
      - conv conv3: {out: 384, k: 3, p: 1}
      - conv conv4: {out: 384, k: 3, p: 1}
      - conv conv5: {out: 256, k: 3, p: 1}
      - maxpool pool5
      - fc fc6: {out: 4096, act: relu}
      - fc fc7: {out: 4096, act: relu}
      - fc fc8: {out: 1000}
"""


def test_alexnet_receptive_fields_shapes_and_params(lecture_numbers):
    rep = analyze(ALEXNET)
    # alexnet.receptive_fields: 11; 11+2*4=19; 19+4*8=51; 51+2*8=67; 67+2*16=99; 131; 163; 163+2*16=195
    rf = {"conv1": 11, "pool1": 19, "conv2": 51, "pool2": 67, "conv3": 99, "conv4": 131, "conv5": 163,
          "pool5": 195}
    assert rf == lecture_numbers["alexnet.receptive_fields"]["exact"]
    assert {k: row(rep, k).rf[0] for k in rf} == rf
    # alexnet.cs231n.layer_shapes
    assert [row(rep, k).out for k in ("conv1", "pool1", "norm1", "conv2", "pool2", "conv3", "conv5", "pool5")] == [
        (96, 55, 55), (96, 27, 27), (96, 27, 27), (256, 27, 27), (256, 13, 13), (384, 13, 13),
        (256, 13, 13), (256, 6, 6)]
    # alexnet.cs231n.total_params_ungrouped: 34,944 + 614,656 + 885,120 + 1,327,488 + 884,992
    #   + 37,752,832 + 16,781,312 + 4,097,000 = 62,378,344
    assert rep.totals.params == 62378344
    # alexnet.cs231n.macs_ungrouped: total 1,135,256,096
    assert rep.totals.macs == 1135256096
    assert rep.warnings == []


def test_receptive_field_of_a_merge_is_the_largest_branch():
    rep = analyze("""
        name: t
        input: [4, 32, 32]
        layers:
          - concat:
              a: [conv: {out: 2, k: 1}]
              b: [conv: {out: 2, k: 3, p: 1}, conv: {out: 2, k: 3, p: 1}]
              c: [maxpool: {k: 3, s: 1, p: 1}, conv: {out: 2, k: 5, p: 2}]
          - conv: {out: 2, k: 3, s: 2, p: 1}
    """)
    # a: 1; b: 1+2+2 = 5; c: 1+2 = 3, then +4 = 7 -> the concat sees 7
    assert [row(rep, p).rf[0] for p in ("a/conv1", "b/conv2", "c/conv1", "concat1")] == [1, 5, 7, 7]
    assert row(rep, "conv1").rf == (9, 9) and row(rep, "conv1").jump == (2, 2)   # 7 + 2*1; stride 2


def test_rectangular_receptive_field():
    rep = analyze("""
        name: t
        input: [1, 17, 17]
        layers:
          - conv: {out: 1, k: [1, 7], p: [0, 3]}
          - conv: {out: 1, k: [7, 1], p: [3, 0], s: [2, 1]}
    """)
    assert row(rep, "conv1").rf == (1, 7)
    assert row(rep, "conv2").rf == (7, 7) and row(rep, "conv2").jump == (2, 1)


# ---------------------------------------------------------------- memory: saved once, peak by liveness

RESIDUAL = """
    name: res
    input: [4, 8, 8]                                  # 256 elements
    layers:
      - conv stem: {out: 4, k: 3, p: 1, act: relu}    # t1, 256 (the ReLU writes in place)
      - add:
          main:
            - conv a: {out: 4, k: 3, p: 1, act: relu} # t2, 256
            - conv b: {out: 4, k: 3, p: 1}            # t3, 256
          skip: []                                    # t1 again
      - relu                                          # in place on the sum t4, 256
      - maxpool: {k: 2}                               # t5, 4x4x4 = 64
      - fc: {out: 10}                                 # t6, 10
"""


def test_residual_memory_by_hand():
    rep = analyze(RESIDUAL)
    t = rep.totals
    # allocated: input 256 + stem 256 + a 256 + b 256 + sum 256 + pool 64 + fc 10 (the ReLUs write in place)
    assert t.out_elems == 1354
    # kept for backward, each tensor once: t0 (stem's input), t1 (stem's ReLU output = a's input),
    # t2 (a's ReLU output = b's input), t4 (the ReLU's output = the pool's input), t5 (fc's input);
    # not t3 (only the add reads it, and add keeps nothing) nor t6: 4*256 + 64
    assert t.saved_elems == 1088
    assert t.saved_fixed_bytes == 64 * 8                     # the pool's int64 indices
    # alive at once: the caller's input t0 (held for the whole pass) and, while b runs, t1 (held for
    # the skip), t2 and t3: 4*256. A plain chain would hold the input and two 256-element tensors.
    assert t.peak_elems == 1024
    # the row figures: a keeps its input and its ReLU output; the add keeps nothing
    assert row(rep, "main/a").saved_elems == 512 and row(rep, "add1").saved_elems == 0
    # params: three convs of 4*4*9 + 4 = 148, fc 64*10 + 10 = 650; MACs 3 * 256*36 + 640
    assert t.params == 3 * 148 + 650 and t.macs == 3 * 9216 + 640
    # receptive field: 3, 5, 7 in the main branch; the add takes the larger of 7 and 3; pool 7 + 1;
    # the fc sees the 4x4 map at jump 2: 8 + 3*2 = 14
    assert [row(rep, p).rf[0] for p in ("stem", "main/b", "add1", "maxpool1", "fc1")] == [3, 7, 7, 8, 14]


def test_without_the_skip_the_peak_is_two_tensors():
    plain = RESIDUAL.replace("          skip: []                                    # t1 again\n", "").replace(
        "      - add:\n          main:\n", "      - group main:\n").replace("            - conv", "          - conv")
    rep = analyze(plain)
    assert paths(rep)[:4] == ["input", "stem", "main/a", "main/b"]
    assert rep.totals.peak_elems == 768                       # input + 2 * 256: nothing holds the stem's output


def test_fused_conv_bn_relu_memory():
    # docs/conventions.md's hand-counted example, counted again here
    rep = analyze("""
        name: t
        input: [3, 8, 8]                                   # 192
        layers:
          - conv: {out: 4, k: 3, p: 1, bn: true, act: relu} # conv output 256, BN output 256
          - maxpool: {k: 2}                                # 64
          - flatten
          - dropout
          - fc: {out: 10}
    """)
    t = rep.totals
    assert t.out_elems == 192 + 256 + 256 + 64 + 10
    assert t.saved_elems == 192 + 256 + 256 + 64
    # BN's batch mean and inverse std 2*4 x 4 B, pool indices 64 x 8 B, dropout mask 64 x 1 B
    assert t.saved_fixed_bytes == 512 + 64
    assert t.saved_batch_bytes == 32  # kept once per batch, not per sample
    assert t.peak_elems == 192 + 256 + 256                 # input, conv intermediate, BN/ReLU output


# ---------------------------------------------------------------- input override, batch, dtype


def test_input_override_alexnet_at_224(lecture_numbers):
    rep = analyze(ALEXNET, input_shape=(3, 224, 224))
    d = lecture_numbers["alexnet.pitfall.input_224_downstream"]["exact"]
    # floor(54.25) = 54; floor(26.5) = 26; conv2 26; floor(12.5) = 12; floor(5.5) = 5
    assert row(rep, "conv1").out == (96, 54, 54) and d["conv1"].startswith("54x54x96")
    assert row(rep, "pool1").out == (96, 26, 26) and d["pool1"].startswith("26x26x96")
    assert row(rep, "pool2").out == (256, 12, 12) and d["pool2"].startswith("12x12x256")
    assert row(rep, "pool5").out == (256, 5, 5)
    assert row(rep, "fc6").params == 6400 * 4096 + 4096      # fan-in 5*5*256 = 6,400
    assert rep.totals.params == d["total_params"] == 50844008
    assert [p for p, _ in rep.warnings] == ["conv1", "pool1", "pool2", "pool5"]
    assert rep.input == (3, 224, 224)


def test_input_override_vgg16_at_384():
    # vgg16.notes.fc_to_conv: 384/32 = 12 -> [12x12x512] after pool5
    rep = analyze(VGG16, input_shape=(3, 384, 384))
    assert row(rep, "pool5").out == (512, 12, 12)


def test_batch_scales_bytes_only():
    one = analyze(RESIDUAL)
    four = analyze(RESIDUAL, batch=4)
    assert four.totals == one.totals                          # element counts are per sample
    assert [r.out for r in four.rows] == [r.out for r in one.rows]
    assert four.param_bytes == one.param_bytes == 1094 * 4    # a batch shares its weights
    assert four.out_bytes == 1354 * 4 * 4                     # elements x 4 B x batch 4 = 21,664
    assert four.saved_bytes == (1088 * 4 + 512) * 4           # 19,456
    assert four.peak_bytes == 1024 * 4 * 4                    # 16,384


@pytest.mark.parametrize("dtype, itemsize", [("fp32", 4), ("fp16", 2), ("bf16", 2), ("int8", 1)])
def test_dtype_bytes(dtype, itemsize):
    rep = analyze(RESIDUAL, dtype=dtype)
    assert rep.itemsize == itemsize
    assert rep.param_bytes == 1094 * itemsize
    assert rep.out_bytes == 1354 * itemsize
    # int64 indices stay 8 B whatever the activation dtype
    assert rep.saved_bytes == 1088 * itemsize + 512


def test_bad_batch_and_dtype():
    with pytest.raises(SpecError, match="unknown dtype 'fp8'; known: fp32, fp16, bf16, int8"):
        analyze(RESIDUAL, dtype="fp8")
    for batch in (0, -1, 1.5, True):
        with pytest.raises(SpecError, match="batch must be a positive integer"):
            analyze(RESIDUAL, batch=batch)


# ---------------------------------------------------------------- depth collapse


def test_collapse_sums_blocks_into_one_row():
    rep = analyze(BLOCK_SPEC)
    top = collapse(rep, 1)
    assert [r.path for r in top] == ["input", "u1", "unit1", "u3_1", "u3_2", "conv1"]
    u1 = top[1]
    assert u1.type == "unit"
    assert u1.params == 216 + 128 and u1.out == (16, 16, 16)   # summed; the block's output
    assert u1.macs == 16 * 16 * (8 * 27 + 16 * 8)              # 256 * (216 + 128) = 88,064
    assert sum(r.params for r in top) == rep.totals.params
    assert sum(r.macs for r in top) == rep.totals.macs
    assert collapse(rep, 2) == list(rep.rows)                  # nothing is deeper than 2
    with pytest.raises(ValueError):
        collapse(rep, 0)


def test_collapsed_saved_counts_a_shared_tensor_once():
    rep = analyze("""
        name: t
        input: [2, 4, 4]                          # 32
        blocks:
          pair:
            body:
              - conv: {out: 2, k: 3, p: 1, act: relu}
              - conv: {out: 2, k: 3, p: 1}
        layers:
          - pair p
    """)
    # conv1 keeps its input (32) and its ReLU output (32), which conv2 keeps again as its input:
    # the block keeps 64 elements, not 96
    assert [r.saved_elems for r in rep.rows[1:]] == [64, 32]
    assert collapse(rep, 1)[1].saved_elems == 64
    assert rep.totals.saved_elems == 64


def test_collapse_nested_branches():
    rep = analyze(GOOGLENET_3A)
    rows = collapse(rep, 2)
    assert [r.path for r in rows] == ["input", "concat_3a/1x1", "concat_3a/3x3", "concat_3a/5x5",
                                      "concat_3a/pool", "concat_3a"]
    assert rows[2].type == "branch" and rows[2].out == (128, 28, 28)
    assert rows[2].params == (192 * 96 + 96) + (96 * 9 * 128 + 128)   # 18,528 + 110,720


# ---------------------------------------------------------------- strict mode


def test_strict_makes_a_non_integer_size_an_error():
    text = ALEXNET.replace("[3, 227, 227]", "[3, 224, 224]")
    assert len(analyze(text).warnings) == 4
    with pytest.raises(SpecError) as e:
        analyze(text, strict=True)
    assert str(e.value) == ("t.yaml:5: conv1: non-integer output size: H, W: (224 - 11)/4 + 1 = 54.25, "
                            "floored to 54 (--strict)")


def test_strict_accepts_exact_sizes_and_ceil_mode():
    analyze(VGG16, strict=True)
    analyze("""
        name: t
        input: [3, 112, 112]
        layers:
          - maxpool: {k: 3, s: 2, ceil: true}
    """, strict=True)


def test_report_find():
    rep = analyze(GOOGLENET_3A)
    assert rep.find("concat_3a/3x3/conv2").out == (128, 28, 28)
    assert rep.find("conv2") is None            # ambiguous: the 3x3 and the 5x5 branch both have one
    assert rep.find("maxpool1").path == "concat_3a/pool/maxpool1"   # unique name


# ---------------------------------------------------------------- in-place add, training copies, naming


def test_inplace_add_allocates_nothing_and_shortens_the_peak():
    text = """
        name: t
        input: [4, 8, 8]                                   # 256
        {defaults}
        layers:
          - add: {{main: [conv: {{out: 4, k: 1}}], skip: []}}   # conv output 256
    """
    fresh = analyze(text.format(defaults=""))
    inplace = analyze(text.format(defaults="defaults: {add: {inplace: true}}"))
    # y = x + conv(x) allocates a third 256-element tensor; `out += x` writes into conv's output.
    assert fresh.totals.out_elems == 256 * 3 and inplace.totals.out_elems == 256 * 2
    # While the add runs: the input (its skip operand), the conv output, and a new sum unless in place.
    assert fresh.totals.peak_elems == 768 and inplace.totals.peak_elems == 512
    assert row(inplace, "add1").mem.alias and not row(fresh, "add1").mem.alias


def test_dropout_output_is_a_new_tensor_in_training_only():
    rep = analyze("""
        name: t
        input: [10]
        layers:
          - fc: {out: 20, act: relu}    # keeps its input (10); the in-place ReLU keeps its output (20)
          - dropout                     # keeps a 20-byte bool mask
          - fc: {out: 5}                # keeps its input: the dropout's output, a tensor of its own (20)
    """)
    t = rep.totals
    assert t.saved_elems == 10 + 20 + 20
    assert t.saved_fixed_bytes == 20
    # At inference dropout is the identity: the input, fc1's 20 and fc2's 5 are all it allocates,
    # and all three are alive while fc2 runs (the caller holds the input throughout).
    assert t.out_elems == 10 + 20 + 5
    assert t.peak_elems == 10 + 20 + 5


def test_bn_statistics_are_kept_once_per_batch():
    text = """
        name: t
        input: [2, 4, 4]
        layers:
          - batchnorm     # keeps its input (32 elements per sample) and 2 x 2 fp32 statistics per batch
    """
    one, three = analyze(text), analyze(text, batch=3)
    assert one.totals.saved_batch_bytes == 16 and three.totals.saved_batch_bytes == 16
    assert one.saved_bytes == 32 * 4 + 16
    assert three.saved_bytes == 3 * 32 * 4 + 16
    assert three.saved_fixed_total_bytes == 16  # no indices or masks: the statistics alone
    bn = three.find("batchnorm1")
    assert three.row_saved_bytes(bn) == 3 * 32 * 4 + 16 and three.row_out_bytes(bn) == 3 * 32 * 4


def test_auto_names_skip_a_name_a_label_took():
    rep = analyze("""
        name: t
        input: [3, 8, 8]
        layers:
          - conv conv1: {out: 4, k: 1}
          - conv: {out: 4, k: 1}
    """)
    assert paths(rep) == ["input", "conv1", "conv2"]


def test_input_is_not_a_layer():
    with pytest.raises(SpecError, match=r"input is set by `input: \[C, H, W\]` at the top"):
        analyze("""
            name: t
            input: [3, 8, 8]
            layers:
              - input
        """)


def test_bare_word_in_an_expression_is_an_error():
    with pytest.raises(SpecError, match=r"'x' in '\$m \* x' is not an argument: write \$x"):
        analyze("""
            name: t
            input: [3, 8, 8]
            blocks:
              b:
                args: {m: 2}
                body: [conv: {out: $m * x, k: 1}]
            layers: [b]
        """)


def test_unknown_block_argument_in_defaults_is_an_error():
    with pytest.raises(SpecError, match=r"defaults for block b: unknown argument 'bogus'; its arguments: m") as e:
        analyze("""
            name: t
            input: [3, 8, 8]
            defaults:
              b: {bogus: 1}
            blocks:
              b:
                args: {m: 2}
                body: [conv: {out: $m, k: 1}]
            layers: [b]
        """)
    assert e.value.line == 4  # the `b:` line under defaults


def test_collapse_keeps_a_named_merge_with_its_branches():
    rep = analyze("""
        name: t
        input: [2, 5, 5]
        layers:
          - concat mix:
              a: [conv: {out: 4, k: 1}]          # 2*4 + 4 = 12 params
              b: [conv: {out: 4, k: 3, p: 1}]    # 2*9*4 + 4 = 76 params
    """)
    rows = collapse(rep, 1)
    assert [r.path for r in rows] == ["input", "mix"]
    assert rows[1].params == 12 + 76 and rows[1].out == (8, 5, 5)


def test_flatten_then_fc_sees_the_whole_map_like_fc_alone():
    text = """
        name: t
        input: [1, 8, 8]
        layers:
          - conv: {out: 4, k: 3, p: 1}    # rf 3, stride 1
          FLATTEN
          - fc: {out: 2}                  # the whole 8x8 map: 3 + (8 - 1) x 1 = 10
    """
    for variant in ("- flatten", ""):
        rep = analyze(text.replace("FLATTEN", variant))
        assert rep.rows[-1].type == "fc" and rep.rows[-1].rf == (10, 10)


def test_inplace_add_into_an_identity_first_branch_is_an_error():
    with pytest.raises(SpecError, match=r"an in-place add overwrites 'input', which 'main/conv1' keeps for backward"):
        analyze("""
            name: t
            input: [4, 8, 8]
            defaults: {add: {inplace: true}}
            layers:
              - add: {skip: [], main: [conv: {out: 4, k: 1}]}
        """)


def test_receptive_field_after_a_broadcast_gate():
    # A squeeze-excitation gate pools the whole 56x56 map: its rows see all of it (rf 3 + 55 = 58)
    # with a jump of 56, but the gated map still steps one pixel at a time, so the convs after it
    # grow the field by 2 each (60, 62), not by 2 x 56.
    rep = analyze("""
        name: t
        input: [16, 56, 56]
        layers:
          - conv c1: {out: 16, k: 3, p: 1}
          - mul gate:
              x: []
              g: [adaptive_avgpool: {out: 1}, conv: {out: 16, k: 1, act: sigmoid}]
          - conv c2: {out: 16, k: 3, p: 1}
          - conv c3: {out: 16, k: 3, p: 1}
    """)
    assert row(rep, "gate/g/adaptive_avgpool1").rf == (58, 58) and row(rep, "gate/g/adaptive_avgpool1").jump == (56, 56)
    assert row(rep, "gate").rf == (58, 58) and row(rep, "gate").jump == (1, 1)
    assert [row(rep, p).rf[0] for p in ("c2", "c3")] == [60, 62]


def test_repetition_index():
    # `$i` is the repetition's index: widths 8, 12, 16 -> params 8*8 + 8, 8*12 + 12, 12*16 + 16
    rep = analyze("""
        name: t
        input: [8, 8, 8]
        blocks:
          unit:
            args: {c: ~}
            body: [conv: {out: $c, k: 1}]
        layers:
          - conv c: {out: "8 + 4 * $i", k: 1, times: 3}
          - unit u: {c: "16 * ($i + 1)", times: 2, first: {c: 20}}
    """)
    assert [row(rep, f"c_{n}").params for n in (1, 2, 3)] == [72, 108, 208]
    # first: overrides the first repetition; the second gets 16 * (1 + 1) = 32 (20*16 + 20 = 340, 32*20 + 32 = 672)
    assert [row(rep, f"u_{n}/conv1").out[0] for n in (1, 2)] == [20, 32]
    assert [row(rep, f"u_{n}/conv1").params for n in (1, 2)] == [340, 672]
