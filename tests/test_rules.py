"""rules.py: every layer type in the registry against hand-computed values.

Numbers come from the catalogue ../shared/lecture_numbers.yaml (entry ids in the comments), the
papers' tables, or arithmetic written out beside them. What a rule says autograd keeps for backward
follows design.md ("conv keeps its input, in-place ReLU its output, max-pool its input and
indices, BN its input and statistics, dropout its mask, add/concat nothing"); for the other
activations and LRN it is what PyTorch 2.x keeps, read with torch.autograd.graph.saved_tensors_hooks
(tests/test_torch_layers.py measures the same against torch).
"""
from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path

import pytest

from archcalc import rules
from archcalc.profiles import get_profile
from archcalc.rules import RuleError

PYTORCH = get_profile("pytorch")


def run(type_name: str, x, /, **args) -> rules.Cost:
    """Apply the rule registered for type_name (or its alias) to input x with YAML-style args."""
    return rules.apply(rules.lookup(type_name), x, args)


def mem(cost: rules.Cost):
    """What the pytorch profile says the row keeps and allocates (the rule itself says neither)."""
    return PYTORCH.memory(cost)


def saved(cost: rules.Cost) -> list[tuple[str, int, int]]:
    """(storage, elements, itemsize) of what the layer keeps; itemsize 0 = the activation dtype."""
    return [(s.of if not s.of.startswith("tmp") else "tmp", s.elems, s.itemsize) for s in mem(cost).saved]


def act_saved_elems(cost: rules.Cost) -> int:
    return sum(s.elems for s in mem(cost).saved if s.itemsize == 0)


# ---------------------------------------------------------------- conv


def test_conv_alexnet_conv1_cs231n():
    # alexnet.cs231n.conv1.*: 96 filters 11x11 stride 4 on 3x227x227
    c = run("conv", (3, 227, 227), out=96, k=11, s=4)
    assert c.out == (96, 55, 55)                  # (227-11)/4+1 = 55
    assert c.weight_params == 34848               # 11*11*3*96 = 34,848 (the slide's "35K")
    assert c.bias_params == 96
    assert c.params == 34944                      # 34,848 + 96
    assert c.macs == 105415200                    # 55*55*96 * 363 = 290,400 * 363
    # LeCun's connections = one per MAC plus one bias add per output: 290,400 * 364, the catalogue's
    # "105,705,600 parameters without sharing" (alexnet.cs231n.conv1.neurons_and_unshared_params)
    assert c.connections == 105705600
    assert saved(c) == [("input", 154587, 0)]     # conv keeps its input: 227*227*3 = 154,587
    assert not c.warnings and not mem(c).alias


def test_conv_alexnet_conv1_eecs498():
    # alexnet.eecs498.conv1: 64 filters 11x11 stride 4 pad 2 on 3x227x227
    c = run("conv", (3, 227, 227), out=64, k=11, s=4, p=2)
    assert c.out == (64, 56, 56)                  # (227-11+2*2)/4+1 = 56
    assert c.params == 23296                      # 64*3*11*11 + 64 = 23,296
    assert c.macs == 72855552                     # (64*56*56) * (3*11*11) = 200,704 * 363


def test_conv_at_224_warns_with_the_arithmetic():
    # alexnet.pitfall.input_224
    c = run("conv", (3, 224, 224), out=96, k=11, s=4)
    assert c.out == (96, 54, 54)
    assert c.warnings == ("non-integer output size: H, W: (224 - 11)/4 + 1 = 54.25, floored to 54",)


@pytest.mark.parametrize("c_in, hw, out, weights, macs", [
    # vgg16.cs231n.conv*: 3x3 pad 1; weights (3*3*Cin)*Cout; MACs = outputs x 9*Cin
    (3, 224, 64, 1728, 86704128),         # 27*64; 3,211,264 * 27
    (64, 224, 64, 36864, 1849688064),     # 576*64; 3,211,264 * 576
    (64, 112, 128, 73728, 924844032),     # 576*128; 1,605,632 * 576
    (128, 56, 256, 294912, 924844032),    # 1152*256; 802,816 * 1152
    (256, 28, 512, 1179648, 924844032),   # 2304*512; 401,408 * 2304
    (512, 14, 512, 2359296, 462422016),   # 4608*512; 100,352 * 4608
])
def test_conv_vgg16_rows(c_in, hw, out, weights, macs):
    c = run("conv", (c_in, hw, hw), out=out, k=3, p=1)
    assert c.out == (out, hw, hw)
    assert c.weight_params == weights and c.bias_params == out
    assert c.macs == macs


@pytest.mark.parametrize("c_in, hw, out, k, p, params_ungrouped, params_grouped, macs_grouped", [
    # alexnet.paper.total_params_grouped / macs_grouped: the 2-GPU convs see half the input maps
    (96, 27, 256, 5, 2, 614656, 307456, 223948800),    # 5*5*48*256+256; 27*27*256*1200
    (384, 13, 384, 3, 1, 1327488, 663936, 112140288),  # 3*3*192*384+384; 13*13*384*1728
    (384, 13, 256, 3, 1, 884992, 442624, 74760192),    # 3*3*192*256+256; 13*13*256*1728
])
def test_grouped_conv_alexnet_two_gpus(c_in, hw, out, k, p, params_ungrouped, params_grouped, macs_grouped):
    assert run("conv", (c_in, hw, hw), out=out, k=k, p=p).params == params_ungrouped
    c = run("conv", (c_in, hw, hw), out=out, k=k, p=p, g=2)
    assert c.out == (out, hw, hw)
    assert c.params == params_grouped
    assert c.macs == macs_grouped


def test_grouped_conv_needs_divisible_channels():
    with pytest.raises(RuleError, match="not divisible by groups: in 3, out 4, g 2"):
        run("conv", (3, 8, 8), out=4, k=3, g=2)
    with pytest.raises(RuleError, match="not divisible by groups"):
        run("conv", (4, 8, 8), out=3, k=3, g=2)


def test_conv_dilation_keeps_macs_and_grows_the_window():
    # 3x3 dilation 2 pad 2 on 64x56x56: (56 + 4 - 5)/1 + 1 = 56, MACs as a plain 3x3: 56*56*64 * 576
    c = run("conv", (64, 56, 56), out=64, k=3, d=2, p=2)
    assert c.out == (64, 56, 56)
    assert c.macs == 115605504
    assert [w.k_eff for w in c.window] == [5, 5]


def test_conv_rectangular_kernel_and_padding():
    # Inception-v3's 1x7 / 7x1: k [1, 7] pad [0, 3] on 128x17x17 keeps 17x17;
    # weights 128*128*7 = 114,688; MACs 17*17*128 * 896 = 33,144,832
    c = run("conv", (128, 17, 17), out=128, k=[1, 7], p=[0, 3], bias=False)
    assert c.out == (128, 17, 17)
    assert c.params == 114688
    assert c.macs == 33144832


def test_conv_padding_forms():
    # [top, bottom, left, right]: H (8 + 1 + 0 - 3) + 1 = 7, W (8 + 0 + 2 - 3) + 1 = 8
    assert run("conv", (1, 8, 8), out=1, k=3, p=[1, 0, 0, 2]).out == (1, 7, 8)
    # same at stride 2: ceil(8/2) = 4; valid = 0: (8-3)/2+1 = 3.5 -> 3
    assert run("conv", (1, 8, 8), out=1, k=3, s=2, p="same").out == (1, 4, 4)
    assert run("conv", (1, 8, 8), out=1, k=3, s=2, p="valid").out == (1, 3, 3)


def test_conv_without_bias():
    c = run("conv", (3, 224, 224), out=64, k=3, p=1, bias=False)
    assert c.params == 1728 and c.bias_params == 0          # vgg16.cs231n.conv1_1 (the slide's count)
    assert c.connections == c.macs                           # no bias adds


def test_conv_bn_relu_is_one_row():
    # 64 -> 64, 3x3 pad 1, no bias, BN, in-place ReLU on 64x56x56 (a ResNet basic-block conv)
    c = run("conv", (64, 56, 56), out=64, k=3, p=1, bias=False, bn=True, act="relu")
    n = 64 * 56 * 56  # 200,704
    assert c.weight_params == 36864 + 64          # 3*3*64*64 conv weights + BN's gamma (its weight)
    assert c.bias_params == 64                    # BN's beta; the conv has no bias
    assert c.params == 36864 + 2 * 64                         # + gamma and beta
    assert c.buffer_elems == 128                              # running mean and var
    assert c.macs == 56 * 56 * 64 * 576                       # BN and ReLU are not MACs
    assert c.other_ops == 2 * n                               # one BN op and one ReLU op per output
    # conv keeps its input; BN keeps its input (the conv output) and 2C fp32 statistics; the
    # in-place ReLU keeps its output
    assert saved(c) == [("input", n, 0), ("tmp", n, 0), ("tmp", 128, 4), ("output", n, 0)]
    assert mem(c).temp_elems == n                                  # the conv output, alive inside the row
    assert not mem(c).alias


def test_fused_row_gives_each_intermediate_its_own_storage():
    # conv + BN + an activation that keeps its input: three different tensors inside one row
    c = run("conv", (4, 6, 6), out=4, k=1, bn=True, act="gelu", inplace=False)
    storages = [s.of for s in mem(c).saved]
    assert len(storages) == len(set(storages)), storages
    # conv input, conv output (BN input), BN stats, BN output (GELU input), 4*6*6 = 144 each
    assert saved(c) == [("input", 144, 0), ("tmp", 144, 0), ("tmp", 8, 4), ("tmp", 144, 0)]


def test_conv_unknown_act():
    with pytest.raises(RuleError, match="unknown act 'bogus'; known: none, elu, gelu"):
        run("conv", (3, 8, 8), out=4, k=3, act="bogus")


@pytest.mark.parametrize("args, message", [
    ({"out": 4, "k": 0}, "k must be >= 1, got 0"),
    ({"out": 4, "k": 3, "s": -1}, "s must be >= 1, got -1"),
    ({"out": 4, "k": 3, "s": 0}, "s must be >= 1, got 0"),
    ({"out": 0, "k": 3}, "out must be >= 1, got 0"),
    ({"out": 4, "k": 3, "p": -1}, "p must be >= 0, got -1"),
    ({"out": 4, "k": 3, "d": 0}, "d must be >= 1, got 0"),
    ({"out": 4, "k": 3, "g": 0}, "g must be >= 1, got 0"),
    ({"out": 4.5, "k": 3}, "out must be an integer, got 4.5"),
    ({"out": 4, "k": "3"}, "k must be an integer, got '3'"),
    ({"out": 4, "k": [3, 3, 3]}, r"k must be one integer or \[h, w\]"),
    ({"out": 4, "k": 3, "p": "foo"}, "p must be an integer, \\[h, w\\], \\[top, bottom, left, right\\], 'same' or 'valid'"),
    ({"out": 4, "k": 3, "bias": 1}, "bias must be true or false, got 1"),
    ({"out": 4, "k": 9}, "output size below 1: \\(8 - 9\\)/1 \\+ 1 = 0"),
])
def test_conv_bad_arguments(args, message):
    with pytest.raises(RuleError, match=message):
        run("conv", (3, 8, 8), **args)


def test_conv_needs_a_feature_map():
    with pytest.raises(RuleError, match="conv needs a CxHxW input, got 4096"):
        run("conv", (4096,), out=4, k=1)


# ---------------------------------------------------------------- connection table (LeNet-5 C3)

# LeCun et al. 1998, Table I, as the catalogue entry lenet5.c3.seed_table_garbled gives it: for
# each S2 map (row), the C3 maps it feeds.
LECUN_TABLE_I = {
    0: {0, 4, 5, 6, 9, 10, 11, 12, 14, 15},
    1: {0, 1, 5, 6, 7, 10, 11, 12, 13, 15},
    2: {0, 1, 2, 6, 7, 8, 11, 13, 14, 15},
    3: {1, 2, 3, 6, 7, 8, 9, 12, 14, 15},
    4: {2, 3, 4, 7, 8, 9, 10, 12, 13, 15},
    5: {3, 4, 5, 8, 9, 10, 11, 13, 14, 15},
}
C3_TABLE = [sorted(i for i, outs in LECUN_TABLE_I.items() if j in outs) for j in range(16)]


def test_lenet_c3_connection_table():
    # the paper's table: maps 0-5 see 3 S2 maps, 6-14 see 4, 15 sees all 6 (18 + 36 + 6 = 60 links)
    assert [len(r) for r in C3_TABLE] == [3] * 6 + [4] * 9 + [6]
    c = run("conv", (6, 14, 14), out=16, k=5, table=C3_TABLE)
    assert c.out == (16, 10, 10)                  # lenet5.c3.shape: (14-5)/1+1 = 10
    assert c.weight_params == 1500                # 60 links * 25
    assert c.params == 1516                       # lenet5.c3.params: 1,500 + 16 biases
    assert c.connections == 151600                # lenet5.c3.connections: 1,516 * 10*10
    assert c.macs == 150000                       # 1,500 * 100
    # the dense C3 of modern re-implementations: 16*(150+1) = 2,416 (lenet5.modern_variant)
    assert run("conv", (6, 14, 14), out=16, k=5).params == 2416


@pytest.mark.parametrize("table, message", [
    ([[0]] * 3, "table must list the input maps of each of the 4 output maps"),
    ([[0], [1], [2], [3]], "table row 3: input map 3 is not in 0..2"),
    ([[0], [1], [0, 0], [2]], "table row 2 repeats an input map"),
    ([[0], [], [1], [2]], "table row 1 must be a non-empty list"),
])
def test_connection_table_errors(table, message):
    with pytest.raises(RuleError, match=re.escape(message)):
        run("conv", (3, 8, 8), out=4, k=3, table=table)


def test_connection_table_excludes_groups():
    with pytest.raises(RuleError, match="table and g cannot be combined"):
        run("conv", (2, 8, 8), out=2, k=3, g=2, table=[[0], [1]])


# ---------------------------------------------------------------- depthwise (MobileNet)


def test_depthwise_separable_mobilenet_arithmetic():
    # mobilenet.cost_ratio: DK=3, M=32, N=64, DF=112 (MobileNet v1's first separable layer)
    dw = run("dwconv", (32, 112, 112), k=3, p=1, bias=False)
    pw = run("conv", (32, 112, 112), out=64, k=1, bias=False)
    std = run("conv", (32, 112, 112), out=64, k=3, p=1, bias=False)
    assert dw.out == (32, 112, 112)
    assert dw.params == 288                       # DK*DK*M = 9*32
    assert dw.macs == 3612672                     # DK*DK*M*DF*DF = 9*32*112*112
    assert pw.macs == 25690112                    # M*N*DF*DF = 32*64*12,544
    assert std.macs == 231211008                  # DK*DK*M*N*DF*DF
    # the paper's ratio, exactly: 1/N + 1/DK^2
    assert Fraction(dw.macs + pw.macs, std.macs) == Fraction(1, 64) + Fraction(1, 9)


def test_depthwise_stride_multiplier_and_alias():
    # stride 2 pad 1 on 112: (112 + 2 - 3)/2 + 1 = 56.5 -> 56
    assert run("depthwise", (32, 112, 112), k=3, s=2, p=1).out == (32, 56, 56)
    # channel multiplier 2: 64 filters of 3x3x1 plus 64 biases = 640
    c = run("dwconv", (32, 8, 8), k=3, p=1, mult=2)
    assert c.out == (64, 8, 8) and c.params == 64 * 9 + 64


# ---------------------------------------------------------------- pooling


def test_maxpool_eecs498_pool1():
    # alexnet.eecs498.pool1: 3x3 stride 2 on 64x56x56; floor(27.5) = 27; (64*27*27)*(3*3) = 419,904
    c = run("maxpool", (64, 56, 56), k=3, s=2)
    assert c.out == (64, 27, 27)
    assert c.params == 0 and c.macs == 0
    assert c.other_ops == 419904
    assert c.warnings == ("non-integer output size: H, W: (56 - 3)/2 + 1 = 27.5, floored to 27",)
    # keeps its input (64*56*56 = 200,704) and one int64 argmax per output (64*27*27 = 46,656)
    assert saved(c) == [("input", 200704, 0), ("tmp", 46656, 8)]


def test_maxpool_cs231n_pool1_and_vgg_pool():
    assert run("maxpool", (96, 55, 55), k=3, s=2).out == (96, 27, 27)   # (55-3)/2+1 = 27
    c = run("pool", (64, 224, 224), k=2)                                 # stride defaults to k
    assert c.out == (64, 112, 112)                                       # vgg16.cs231n.pool1
    assert c.other_ops == 802816 * 4                                     # 112*112*64 outputs x 4


def test_maxpool_padding_and_ceil():
    # ResNet stem: 3x3 stride 2 pad 1 on 112: (112 + 2 - 3)/2 + 1 = 56.5 -> 56
    assert run("maxpool", (64, 112, 112), k=3, s=2, p=1).out == (64, 56, 56)
    # GoogLeNet (Caffe ceil): (112 - 3)/2 + 1 = 55.5 -> 56, and no warning: rounding up was asked for
    c = run("maxpool", (64, 112, 112), k=3, s=2, ceil=True)
    assert c.out == (64, 56, 56) and c.warnings == ()
    with pytest.raises(RuleError, match="padding 2 is more than half the kernel 3"):
        run("maxpool", (3, 8, 8), k=3, p=2)
    with pytest.raises(RuleError, match=r"maxpool needs k \(or global: true\)"):
        run("maxpool", (3, 8, 8))


def test_avgpool_and_global():
    c = run("avgpool", (16, 10, 10), k=2)
    assert c.out == (16, 5, 5)
    assert c.other_ops == 400 * 4
    assert saved(c) == [("input", 1600, 0)]                 # no indices for an average
    g = run("avgpool", (512, 7, 7), **{"global": True})
    assert g.out == (512, 1, 1)
    assert g.other_ops == 512 * 49                          # every input added once: 25,088
    assert [w.k for w in g.window] == [7, 7]


def test_adaptive_avgpool():
    # 13 -> 6 bins: [floor(i*13/6), ceil((i+1)*13/6)) = [0,3) [2,5) [4,7) [6,9) [8,11) [10,13): all 3 wide
    c = run("adaptive_avgpool", (256, 13, 13), out=6)
    assert c.out == (256, 6, 6)
    assert c.other_ops == 256 * 36 * 9                      # 82,944
    assert saved(c) == [("input", 256 * 169, 0)]
    # 5 -> 3 bins: [0,2) [1,4) [3,5): widths 2, 3, 2; per channel (2+3+2)^2 = 49 adds
    u = run("adaptive_pool", (1, 5, 5), out=[3, 3])
    assert u.out == (1, 3, 3) and u.other_ops == 49
    assert [w.k for w in u.window] == [3, 3]                # the widest bin bounds the field
    # to 1x1 = a global average: 2048 * 7*7 = 100,352 adds; PyTorch computes it as a mean, whose
    # backward needs only the input's size, so nothing is kept
    g = run("adaptive_avgpool", (2048, 7, 7), out=1)
    assert g.other_ops == 100352 and mem(g).saved == ()


# ---------------------------------------------------------------- fully connected


def test_fc_alexnet_fc6_flattens_its_input():
    # conv.fc_params_formula / alexnet.eecs498.fc6: 6*6*256 = 9216 -> 4096
    c = run("fc", (256, 6, 6), out=4096)
    assert c.out == (4096,)
    assert c.params == 37752832                   # 9216*4096 + 4096 (T_AI604's 37,725,832 is a slip)
    assert c.macs == 37748736                     # 9216*4096
    assert saved(c) == [("input", 9216, 0)]


@pytest.mark.parametrize("n_in, out, weights", [
    (25088, 4096, 102760448),   # vgg16.cs231n.fc6: 7*7*512*4096
    (4096, 4096, 16777216),     # vgg16.cs231n.fc7: 4096^2
    (4096, 1000, 4096000),      # vgg16.cs231n.fc8
    (120, 84, 10080),           # lenet5.s4_c5_f6 F6: 84*(120+1) = 10,164 with biases
])
def test_fc_rows(n_in, out, weights):
    c = run("linear", (n_in,), out=out)
    assert c.weight_params == weights and c.bias_params == out
    assert c.connections == weights + out


def test_fc_with_bn_and_act():
    # BN1d on 10 features: 2*10 params, 2*10 buffers
    c = run("fc", (20,), out=10, bias=False, bn=True, act="relu")
    assert c.params == 200 + 20 and c.buffer_elems == 20


# ---------------------------------------------------------------- batch norm


def test_batchnorm():
    c = run("batchnorm", (64, 56, 56))
    assert c.weight_params == 64 and c.bias_params == 64    # gamma, beta: 2C params
    assert c.buffer_elems == 128                            # running mean, var: 2C buffers
    assert c.out == (64, 56, 56) and c.macs == 0
    # its input and the batch mean and inverse std, fp32 whatever the activation dtype
    assert saved(c) == [("input", 200704, 0), ("tmp", 128, 4)]
    plain = run("bn", (64, 56, 56), affine=False)
    assert plain.params == 0 and plain.buffer_elems == 128


# ---------------------------------------------------------------- ResNet shortcut


def test_shortcut_identity_when_the_shape_is_kept():
    for option in ("A", "B"):
        c = run("shortcut", (64, 56, 56), out=64, option=option)
        assert c.out == (64, 56, 56) and c.params == 0 and mem(c).alias and mem(c).saved == ()


def test_shortcut_option_a_zero_pads():
    # CIFAR ResNet (option A): 16x32x32 -> 32 channels, stride 2: x[:, :, ::2, ::2] and zero maps
    c = run("shortcut", (16, 32, 32), out=32, s=2, option="A")
    assert c.out == (32, 16, 16) and c.params == 0 and c.macs == 0
    # an odd size keeps the last row: ceil(7/2) = 4, as slicing ::2 does
    assert run("shortcut", (16, 7, 7), out=32, s=2, option="A").out == (32, 4, 4)
    with pytest.raises(RuleError, match=r"option A cannot shrink channels \(64 -> 32\)"):
        run("shortcut", (64, 8, 8), out=32, option="A")


def test_shortcut_option_b_projects():
    # ResNet-50 conv2_x, first block: 1x1 conv 64 -> 256 + BN, stride 1, on 56x56
    c = run("shortcut", (64, 56, 56), out=256)
    assert c.out == (256, 56, 56)
    assert c.params == 64 * 256 + 2 * 256                   # 16,384 + BN 512 = 16,896 (no conv bias)
    assert c.buffer_elems == 512
    assert c.macs == 56 * 56 * 256 * 64                     # 51,380,224
    # conv3_x: 256 -> 512, stride 2 on 56: (56-1)/2+1 = 28.5 -> 28; 28*28*512*256 = 102,760,448
    d = run("shortcut", (256, 56, 56), out=512, s=2, option="B")
    assert d.out == (512, 28, 28) and d.macs == 102760448
    assert d.params == 131072 + 1024


def test_shortcut_option_c_projects_everywhere():
    c = run("shortcut", (64, 56, 56), out=64, option="C")
    assert c.params == 64 * 64 + 128 and not mem(c).alias        # 4,096 + BN 128
    nb = run("shortcut", (64, 56, 56), out=256, bn=False)
    assert nb.params == 64 * 256 + 256                      # a biased 1x1 instead of conv + BN


def test_shortcut_bad_option():
    with pytest.raises(RuleError, match="option must be A, B or C, got 'D'"):
        run("shortcut", (64, 8, 8), out=64, option="D")


# ---------------------------------------------------------------- merges


def test_concat_googlenet_3a():
    # GoogLeNet inception (3a), Table 1: 64 + 128 + 32 + 32 = 256 maps of 28x28
    c = run("concat", {"1x1": (64, 28, 28), "3x3": (128, 28, 28), "5x5": (32, 28, 28), "pool": (32, 28, 28)})
    assert c.out == (256, 28, 28)
    assert c.params == 0 and c.macs == 0 and c.other_ops == 0 and mem(c).saved == ()


def test_concat_needs_equal_spatial_sizes():
    with pytest.raises(RuleError, match="concat needs equal spatial sizes, got a 4x6x6, b 4x8x8"):
        run("concat", {"a": (4, 6, 6), "b": (4, 8, 8)})


def test_add():
    c = run("add", {"main": (256, 56, 56), "skip": (256, 56, 56)})
    assert c.out == (256, 56, 56)
    assert c.other_ops == 802816                  # one add per element: 256*56*56
    assert c.params == 0 and mem(c).saved == ()        # add keeps nothing: its gradient is a copy
    three = run("add", {"a": (2, 2, 2), "b": (2, 2, 2), "c": (2, 2, 2)})
    assert three.other_ops == 16                  # 8 elements x 2 adds


def test_add_mismatch_names_both_branches_and_shapes():
    with pytest.raises(RuleError, match="add needs equal shapes, got main 4x6x6, skip 3x8x8"):
        run("add", {"main": (4, 6, 6), "skip": (3, 8, 8)})


# ---------------------------------------------------------------- LeNet-5 specials


def test_subsample_lenet_s2_and_s4():
    # lenet5.s2: 6@28x28 -> 6@14x14; a coefficient and a bias per map: 12; 6*14*14*(4+1) = 5,880
    s2 = run("subsample", (6, 28, 28))
    assert s2.out == (6, 14, 14)
    assert s2.params == 12 and s2.weight_params == 6
    assert s2.connections == 5880
    # lenet5.s4_c5_f6: 16 maps, 32 params, 16*5*5*(4+1) = 2,000 connections
    s4 = run("subsample", (16, 10, 10), act="sigmoid")
    assert s4.out == (16, 5, 5) and s4.params == 32 and s4.connections == 2000


def test_rbf_lenet_output():
    # 10 fixed prototypes of 84 values: 840 buffers, not trainable; 840 squared differences
    c = run("rbf", (84,), out=10)
    assert c.out == (10,)
    assert c.params == 0 and c.buffer_elems == 840 and c.macs == 840
    assert saved(c) == [("input", 84, 0)]


# ---------------------------------------------------------------- LRN, dropout, views


def test_lrn():
    # AlexNet norm1 on 96x27x27 (n = 69,984), size 5: 5 squared neighbours per output, no params
    c = run("lrn", (96, 27, 27), size=5)
    n = 69984
    assert c.out == (96, 27, 27) and c.params == 0 and c.macs == 0
    assert c.other_ops == 5 * n
    # PyTorch's local_response_norm keeps: x (for x*x and x/div), the squares zero-padded by
    # size-1 = 4 channels ((96+4)*27*27 = 72,900, avg_pool3d's input), the pow base, and div
    assert saved(c) == [("input", n, 0), ("tmp", 72900, 0), ("tmp", n, 0), ("tmp", n, 0)]


def test_dropout():
    c = run("dropout", (4096,), p=0.5)
    assert c.out == (4096,) and mem(c).alias             # the identity at inference: no new tensor
    assert saved(c) == [("tmp", 4096, 1)]           # a bool mask, 1 byte per element
    for p in (1, -0.1, 1.5, True):
        with pytest.raises(RuleError, match="p must be a probability in"):
            run("dropout", (10,), p=p)


def test_flatten_and_identity_are_views():
    f = run("flatten", (256, 6, 6))
    assert f.out == (9216,) and mem(f).alias and mem(f).saved == ()    # 6*6*256 = 9,216 (alexnet.cs231n.final_conv_volume)
    i = run("identity", (3, 4, 5))
    assert i.out == (3, 4, 5) and mem(i).alias and mem(i).saved == ()


def test_input_rule():
    c = run("input", (3, 224, 224))
    assert c.out == (3, 224, 224) and c.params == 0 and mem(c).saved == ()


def test_softmax_keeps_its_output():
    c = run("softmax", (1000,))
    assert c.out == (1000,) and saved(c) == [("output", 1000, 0)] and not mem(c).alias


# ---------------------------------------------------------------- activations

# (kind, what the out-of-place op keeps, what the in-place op keeps), as PyTorch 2.x keeps it
ACTIVATION_SAVES = [
    ("relu", "output", "output"),
    ("sigmoid", "output", "output"),
    ("tanh", "output", "output"),
    ("elu", "input", "output"),          # elu_ recomputes its gradient from its result
    ("leaky_relu", "input", "output"),   # so does leaky_relu_
    ("relu6", "input", "tmp"),           # hardtanh_, silu_, hardswish_, gelu_: a copy of the input,
    ("silu", "input", "tmp"),            # taken before the in-place write
    ("hardswish", "input", "tmp"),
    ("gelu", "input", "tmp"),
    ("hardsigmoid", "input", "tmp"),     # hardsigmoid_ too (torchvision builds it out of place)
]


@pytest.mark.parametrize("kind, out_of_place, in_place", ACTIVATION_SAVES)
def test_activation(kind, out_of_place, in_place):
    x = (8, 5, 5)  # 200 elements
    a = run(kind, x, inplace=False)
    assert a.out == x and a.params == 0 and a.macs == 0 and a.other_ops == 200
    assert not mem(a).alias and saved(a) == [(out_of_place, 200, 0)]
    b = run(kind, x, inplace=True)
    assert mem(b).alias and saved(b) == [(in_place, 200, 0)]
    # Unset, inplace follows torch.nn: ReLU(inplace=True) exists, Tanh/Sigmoid/GELU have no such form.
    default = run(kind, x)
    assert mem(default).alias == (kind not in ("sigmoid", "tanh", "gelu", "hardsigmoid"))


def test_every_activation_has_its_saved_rule():
    assert sorted(k for k, _, _ in ACTIVATION_SAVES) == sorted(rules.ACTIVATIONS)


def test_swish_is_silu():
    assert rules.lookup("swish") is rules.lookup("silu")


# ---------------------------------------------------------------- the registry and its schema


@pytest.mark.parametrize("alias, name", [
    ("conv2d", "conv"), ("linear", "fc"), ("bn", "batchnorm"), ("pool", "maxpool"),
    ("depthwise", "dwconv"), ("swish", "silu"), ("adaptive_pool", "adaptive_avgpool"),
])
def test_aliases(alias, name):
    assert rules.lookup(alias).name == name


def test_schema_is_the_keyword_signature():
    conv = rules.RULES["conv"]
    assert conv.required == ("out", "k")
    assert conv.defaults["s"] == 1 and conv.defaults["p"] == 0 and conv.defaults["bias"] is True
    assert "global" in rules.RULES["maxpool"].known          # the YAML key, not global_
    assert rules.lookup("nosuchtype") is None


def test_unknown_argument_lists_the_known_ones():
    with pytest.raises(RuleError) as e:
        run("conv", (3, 8, 8), out=4, k=3, zz=1)
    assert str(e.value) == ("unknown argument zz for conv; known: out, k, s, p, d, g, bias, bn, act, "
                            "inplace, table")
    with pytest.raises(RuleError, match="unknown arguments a, b for relu; known: inplace"):
        run("relu", (3, 8, 8), a=1, b=2)
    with pytest.raises(RuleError, match=r"unknown argument x for flatten; known: \(none\)"):
        run("flatten", (3, 8, 8), x=1)


def test_missing_argument_lists_the_known_ones():
    with pytest.raises(RuleError) as e:
        run("conv", (3, 8, 8), k=3)
    assert str(e.value) == "conv needs out; known: out, k, s, p, d, g, bias, bn, act, inplace, table"
    with pytest.raises(RuleError, match="fc needs out; known: out, bias, bn, act, inplace"):
        run("fc", (10,))


def test_every_rule_in_the_registry_is_exercised_here():
    """A new layer type must come with a test in this file (a run("type", ...) call)."""
    source = Path(__file__).read_text(encoding="utf-8")
    called = set(re.findall(r'run\("(\w+)"', source))
    called |= {k for k, _, _ in ACTIVATION_SAVES}  # run(kind, ...) in test_activation
    missing = sorted(name for name in rules.RULES if name not in called and not any(
        rules.lookup(c) is not None and rules.lookup(c).name == name for c in called))
    assert not missing, f"rules without a test in test_rules.py: {missing}"


# ---------------------------------------------------------------- tensor operations (Engine II)


def test_mul_broadcasts_a_channel_gate():
    # squeeze-and-excitation: a 64x1x1 gate times a 64x56x56 map; one product per output element
    c = run("mul", {"x": (64, 56, 56), "gate": (64, 1, 1)})
    assert c.out == (64, 56, 56) and c.params == 0 and c.macs == 0
    assert c.other_ops == 64 * 56 * 56                      # 200,704 products, not MACs
    # autograd keeps both operands (each is the other's gradient factor), a new tensor out
    assert saved(c) == [("input0", 200704, 0), ("input1", 64, 0)] and not mem(c).alias
    with pytest.raises(RuleError, match="equal sizes or 1"):
        run("mul", {"x": (64, 56, 56), "gate": (32, 1, 1)})
    with pytest.raises(RuleError, match="one rank"):
        run("mul", {"x": (64, 56, 56), "gate": (64,)})


def test_chunk_split_and_slice_are_views():
    c = run("chunk", (116, 28, 28), n=2, i=1)               # ShuffleNet v2 x1.0 stage 2: 116 = 58 + 58
    assert c.out == (58, 28, 28) and c.params == 0 and c.other_ops == 0
    assert mem(c).alias and mem(c).saved == ()               # a view: the storage stays the input's
    s = run("split", (96, 8, 8), sizes=[32, 64], i=1)
    assert s.out == (64, 8, 8) and mem(s).alias
    sl = run("slice", (96, 8, 8), start=16, end=48)
    assert sl.out == (32, 8, 8) and mem(sl).alias
    assert run("slice", (96, 8, 8), start=90).out == (6, 8, 8)   # end defaults to all channels
    with pytest.raises(RuleError, match="equal chunks"):
        run("chunk", (5, 8, 8), n=2, i=0)
    with pytest.raises(RuleError, match="i must be below n"):
        run("chunk", (4, 8, 8), n=2, i=2)
    with pytest.raises(RuleError, match="add up to the 96"):
        run("split", (96, 8, 8), sizes=[32, 32], i=0)
    with pytest.raises(RuleError, match="non-empty range"):
        run("slice", (96, 8, 8), start=48, end=48)


def test_channel_shuffle_is_a_copy():
    c = run("channel_shuffle", (116, 28, 28), g=2)
    assert c.out == (116, 28, 28) and c.params == 0 and c.macs == 0
    assert not mem(c).alias and mem(c).saved == ()           # .contiguous() copies; backward needs no tensor
    with pytest.raises(RuleError, match="divide into 3 groups"):
        run("channel_shuffle", (116, 28, 28), g=3)


def test_leaky_relu_slope_is_an_argument():
    c = run("leaky_relu", (8, 4, 4), slope=0.2)
    assert c.other_ops == 128 and "slope 0.2" in c.steps[0]
    with pytest.raises(RuleError, match="slope must be a number"):
        run("leaky_relu", (8, 4, 4), slope="steep")


def test_every_rule_has_a_memory_entry_in_every_profile():
    from archcalc.profiles import PROFILES

    for profile in PROFILES:
        parts = get_profile(profile).parts
        assert sorted(set(rules.RULES) - set(parts)) == [], profile


def test_layernorm_layer_scale_and_drop_path():
    # ConvNeXt-T stage 1: LayerNorm over 96 channels at each of 56x56 positions
    ln = run("layernorm", (96, 56, 56))
    assert ln.out == (96, 56, 56) and ln.weight_params == 96 and ln.bias_params == 96
    assert saved(ln) == [("input", 301056, 0), ("tmp", 3136, 0), ("tmp", 3136, 0)]   # input; mean, 1/std per position
    assert run("ln", (96, 56, 56), affine=False).params == 0
    ls = run("layer_scale", (96, 56, 56))
    assert ls.weight_params == 96 and ls.bias_params == 0 and ls.macs == 0 and ls.other_ops == 301056
    assert saved(ls) == [("input", 301056, 0)] and not mem(ls).alias
    dp = run("drop_path", (96, 56, 56), p=0.1)
    assert dp.out == (96, 56, 56) and dp.params == 0
    assert mem(dp).alias and mem(dp).train_copy and saved(dp) == [("tmp", 1, 0)]   # one noise value per sample
    with pytest.raises(RuleError, match="probability"):
        run("drop_path", (8, 4, 4), p=1.0)


def test_mean_join():
    c = run("mean", {"a": (64, 32, 32), "b": (64, 32, 32), "c": (64, 32, 32)})
    assert c.out == (64, 32, 32) and c.params == 0
    assert c.other_ops == 3 * 65536 and saved(c) == []            # 2 adds and 1 division per element
    with pytest.raises(RuleError, match="mean needs equal shapes"):
        run("mean", {"a": (64, 32, 32), "b": (32, 32, 32)})


def test_drop_path_with_p_zero_is_the_identity():
    # torchvision's StochasticDepth returns its input when p is 0: no copy, nothing kept
    c = run("drop_path", (96, 56, 56), p=0)
    assert mem(c).alias and not mem(c).train_copy and saved(c) == []
