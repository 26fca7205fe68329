"""shape.py: the sliding-window arithmetic, its text, SAME padding and shape parsing.

Every expected number is worked out by hand in the comment beside it, mostly from the catalogue
entries conv.* in ../shared/lecture_numbers.yaml (CS231n notes and EECS 498 lecture 8).
"""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from archcalc.shape import ShapeError, Window, elems, fmt_shape, parse_shape, same_padding, window_out


def size(n, k, s=1, d=1, lo=0, hi=0, ceil=False):
    return window_out(n, Window(k, s, d, lo, hi), ceil=ceil).size


# ---------------------------------------------------------------- floor (the default)


@pytest.mark.parametrize("n, k, s, p, expected", [
    (7, 3, 1, 0, 5),      # conv.notes_example_7x7: (7-3)/1+1 = 5
    (7, 3, 2, 0, 3),      # conv.notes_example_7x7: (7-3)/2+1 = 3
    (5, 3, 1, 1, 5),      # conv.notes_example_1d: (5-3+2)/1+1 = 5
    (5, 3, 2, 1, 3),      # conv.notes_example_1d: (5-3+2)/2+1 = 3
    (11, 5, 2, 0, 4),     # conv.notes_numpy_example: (11-5)/2+1 = 4
    (227, 11, 4, 0, 55),  # alexnet.cs231n.conv1.output_shape: 216/4+1 = 55
    (55, 3, 2, 0, 27),    # alexnet.cs231n.pool1.output_shape: (55-3)/2+1 = 27
    (27, 5, 1, 2, 27),    # alexnet.cs231n.layer_shapes conv2: (27-5+4)/1+1 = 27
    (13, 3, 2, 0, 6),     # alexnet.cs231n.final_conv_volume: (13-3)/2+1 = 6
    (227, 11, 4, 2, 56),  # alexnet.eecs498.conv1: (227-11+2*2)/4+1 = 56
    (224, 3, 1, 1, 224),  # conv.same_padding: F=3 -> P=1 keeps the size, (224-3+2)/1+1 = 224
    (224, 5, 1, 2, 224),  # conv.same_padding: F=5 -> P=2, (224-5+4)/1+1 = 224
    (5, 5, 1, 0, 1),      # lenet5.architecture C5: (5-5)+1 = 1
])
def test_exact_sizes(n, k, s, p, expected):
    r = window_out(n, Window(k, s, 1, p, p))
    assert r.size == expected
    assert r.exact


@pytest.mark.parametrize("n, k, s, p, exact_text, expected", [
    (10, 3, 2, 0, "4.5", 4),     # conv.notes_invalid_stride: (10-3+0)/2+1 = 4.5
    (5, 3, 3, 1, "2.3333", 2),   # conv.notes_example_1d, S=3: (5-3+2)/3+1 = 2.333 "could not be used"
    (224, 11, 4, 0, "54.25", 54),  # alexnet.pitfall.input_224: 213/4+1 = 54.25
    (54, 3, 2, 0, "26.5", 26),   # alexnet.pitfall.input_224_downstream pool1: (54-3)/2+1 = 26.5
    (56, 3, 2, 0, "27.5", 27),   # alexnet.eecs498.pool1: floor((56-3)/2+1) = floor(27.5) = 27
])
def test_non_integer_sizes_are_floored_and_flagged(n, k, s, p, exact_text, expected):
    r = window_out(n, Window(k, s, 1, p, p))
    assert r.size == expected
    assert not r.exact
    assert f"= {exact_text}, floored to {expected}" in r.arithmetic


def test_alexnet_at_224_reads_like_the_notes():
    # CS231n: "(224 - 11)/4 + 1 is quite clearly not an integer"; design.md asks for exactly this text.
    r = window_out(224, Window(11, 4))
    assert r.arithmetic == "(224 - 11)/4 + 1 = 54.25, floored to 54"


def test_exact_arithmetic_text():
    assert window_out(227, Window(11, 4)).arithmetic == "(227 - 11)/4 + 1 = 55"
    assert window_out(227, Window(11, 4, 1, 2, 2)).arithmetic == "(227 + 2*2 - 11)/4 + 1 = 56"


# ---------------------------------------------------------------- padding


def test_asymmetric_padding():
    # 224 with 2 before and 3 after, 7x7 stride 2 (TensorFlow's SAME for ResNet's stem):
    # (224 + 2 + 3 - 7)/2 + 1 = 222/2 + 1 = 112
    r = window_out(224, Window(7, 2, 1, 2, 3))
    assert r.size == 112
    assert r.arithmetic == "(224 + 2 + 3 - 7)/2 + 1 = 112"
    # only the total matters for the size: (10 + 0 + 2 - 3)/1 + 1 = 10, same as 1 and 1
    assert size(10, 3, lo=0, hi=2) == size(10, 3, lo=1, hi=1) == 10


@pytest.mark.parametrize("n, k, s, d, expected", [
    (224, 7, 2, 1, (2, 3)),  # out ceil(224/2) = 112; total (112-1)*2 + 7 - 224 = 5 -> 2 before, 3 after
    (5, 3, 1, 1, (1, 1)),    # out 5; total 4*1 + 3 - 5 = 2 -> 1, 1 (= P = (F-1)/2)
    (4, 3, 2, 1, (0, 1)),    # out 2; total 1*2 + 3 - 4 = 1: the odd pixel goes after
    (7, 1, 2, 1, (0, 0)),    # out 4; total 3*2 + 1 - 7 = 0
    (10, 3, 1, 2, (2, 2)),   # dilated: k_eff = 2*(3-1)+1 = 5; total 9 + 5 - 10 = 4
    (3, 5, 2, 1, (2, 2)),    # out ceil(3/2) = 2; total 1*2 + 5 - 3 = 4 -> 2, 2 (padding wider than the input)
])
def test_same_padding(n, k, s, d, expected):
    lo, hi = same_padding(n, k, s, d)
    assert (lo, hi) == expected
    # and SAME means output ceil(n / s)
    assert size(n, k, s, d, lo, hi) == -(-n // s)


def test_negative_padding_is_an_error():
    with pytest.raises(ShapeError, match="padding cannot be negative"):
        window_out(10, Window(3, 1, 1, -1, 0))


# ---------------------------------------------------------------- dilation


def test_dilation():
    # k=3, d=2 spans 2*(3-1)+1 = 5 inputs: (10 - 5)/1 + 1 = 6
    assert Window(3, 1, 2).k_eff == 5
    r = window_out(10, Window(3, 1, 2))
    assert r.size == 6
    # the text must be right arithmetic when read literally: the span is subtracted whole
    assert r.arithmetic == "(10 - (2*(3-1)+1))/1 + 1 = 6"
    # padding d keeps the size of a dilated 3x3: (10 + 2*2 - 5)/1 + 1 = 10
    assert size(10, 3, 1, 2, 2, 2) == 10
    # dilation 4, stride 2 on 33: k_eff 9; (33 - 9)/2 + 1 = 13
    assert size(33, 3, 2, 4) == 13


# ---------------------------------------------------------------- ceil mode (Caffe, PyTorch ceil_mode=True)


def test_ceil_rounds_up():
    # GoogLeNet's pools (Caffe rounds up): (112 - 3)/2 + 1 = 55.5 -> 56; the last window starts at
    # 55*2 = 110 < 112, inside the input, so it stays.
    r = window_out(112, Window(3, 2), ceil=True)
    assert r.size == 56
    assert r.arithmetic == "(112 - 3)/2 + 1 = 55.5, rounded up (ceil mode) to 56"
    # exact divisions are the same either way: (13 - 3)/2 + 1 = 6
    assert size(13, 3, 2, ceil=True) == size(13, 3, 2) == 6


def test_ceil_drops_a_last_window_that_starts_in_the_right_padding():
    # PyTorch's (and Caffe's) rule: n=5, k=2, s=2, p=1: (5 + 2 - 2)/2 + 1 = 3.5 -> 4 windows, but the
    # 4th would start at (4-1)*2 = 6 >= 5 + 1 (the input and the left padding): dropped -> 3.
    r = window_out(5, Window(2, 2, 1, 1, 1), ceil=True)
    assert r.size == 3
    assert "rounded up (ceil mode) to 4" in r.arithmetic and r.arithmetic.endswith(": 3")
    # without padding nothing is dropped: (5 - 2)/2 + 1 = 2.5 -> 3; 3rd window starts at 4 < 5
    assert size(5, 2, 2, ceil=True) == 3


def test_ceil_gives_one_output_for_a_window_a_little_longer_than_the_input():
    # PyTorch and Caffe: ceil((n + 2p - k)/s) + 1; n=5, k=6, s=2: ceil(-1/2) + 1 = 0 + 1 = 1
    r = window_out(5, Window(6, 2), ceil=True)
    assert r.size == 1
    assert r.arithmetic == "(5 - 6)/2 + 1 = 0.5, rounded up (ceil mode) to 1"
    # but ceil(-3/2) + 1 = -1 + 1 = 0: none (n=5, k=8, s=2)
    with pytest.raises(ShapeError, match="output size below 1"):
        window_out(5, Window(8, 2), ceil=True)
    # and floor mode never allows it: floor(-1/2) + 1 = 0
    with pytest.raises(ShapeError, match="output size below 1"):
        window_out(5, Window(6, 2))


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize("n, w, shown", [
    (3, Window(5), "(3 - 5)/1 + 1 = -1"),        # a 5-wide window in 3 inputs
    (4, Window(5, 2), "(4 - 5)/2 + 1 = 0.5"),    # output 0.5: below 1 too
    (4, Window(3, 1, 2), "(4 - (2*(3-1)+1))/1 + 1 = 0"),  # dilated span 5 > 4
])
def test_output_below_one_is_an_error_with_its_arithmetic(n, w, shown):
    with pytest.raises(ShapeError) as e:
        window_out(n, w)
    assert "output size below 1" in str(e.value)
    assert shown in str(e.value)


@pytest.mark.parametrize("w", [Window(0), Window(3, 0), Window(3, 1, 0)])
def test_kernel_stride_dilation_at_least_one(w):
    with pytest.raises(ShapeError, match="at least 1"):
        window_out(10, w)


# ---------------------------------------------------------------- against enumeration


@settings(max_examples=300, deadline=None)
@given(n=st.integers(1, 60), k=st.integers(1, 9), s=st.integers(1, 5), d=st.integers(1, 3),
       lo=st.integers(0, 4), hi=st.integers(0, 4))
def test_floor_size_counts_the_windows_that_fit(n, k, s, d, lo, hi):
    """Floor mode = how many window starts 0, s, 2s, ... leave the whole dilated window inside the
    padded input; counted one by one instead of by the closed form."""
    span = d * (k - 1) + 1
    fits = sum(1 for start in range(0, n + lo + hi, s) if start + span <= n + lo + hi)
    if fits == 0:
        with pytest.raises(ShapeError):
            window_out(n, Window(k, s, d, lo, hi))
    else:
        assert size(n, k, s, d, lo, hi) == fits


@settings(max_examples=300, deadline=None)
@given(n=st.integers(1, 60), k=st.integers(1, 7), s=st.integers(1, 5), lo=st.integers(0, 3))
def test_ceil_size_counts_windows_starting_inside(n, k, s, lo):
    """Ceil mode = the window starts that begin inside the input or its left padding, where the
    window may overhang the right end by less than a stride. Padding is
    at most half the kernel, as PyTorch and the pool rules require; then at most one window drops."""
    if 2 * lo > k:
        return
    starts = [st_ for st_ in range(0, n + 2 * lo, s) if st_ < n + lo and st_ <= n + 2 * lo - k + (s - 1)]
    if not starts:
        with pytest.raises(ShapeError):
            window_out(n, Window(k, s, 1, lo, lo), ceil=True)
    else:
        assert size(n, k, s, 1, lo, lo, ceil=True) == len(starts)


@pytest.mark.torch
@settings(max_examples=150, deadline=None)
@given(n=st.integers(1, 40), k=st.integers(1, 6), s=st.integers(1, 4), p=st.integers(0, 3),
       ceil=st.booleans())
def test_pool_sizes_match_pytorch(n, k, s, p, ceil):
    import torch

    if 2 * p > k:
        return  # PyTorch rejects pad > k/2, and so does the pool rule
    try:
        expected = torch.nn.functional.max_pool2d(torch.zeros(1, 1, n, n), k, s, p, ceil_mode=ceil).shape[-1]
    except RuntimeError:  # "Output size is too small"
        with pytest.raises(ShapeError, match="output size below 1"):
            window_out(n, Window(k, s, 1, p, p), ceil=ceil)
        return
    assert size(n, k, s, 1, p, p, ceil=ceil) == expected


# ---------------------------------------------------------------- shapes


@pytest.mark.parametrize("text", ["3x224x224", "3,224,224", "[3, 224, 224]", " 3 x 224 x 224 ", "(3,224,224)"])
def test_parse_shape(text):
    assert parse_shape(text) == (3, 224, 224)


def test_parse_vector_shape():
    assert parse_shape("4096") == (4096,)


@pytest.mark.parametrize("text", ["3x224", "0x2x2", "3x-1x2", "abc", "3x2.5x2", "", "1x2x3x4"])
def test_parse_shape_rejects(text):
    with pytest.raises(ShapeError, match="cannot read shape"):
        parse_shape(text)


def test_fmt_shape_and_elems():
    assert fmt_shape((64, 56, 56)) == "64x56x56"
    assert fmt_shape((4096,)) == "4096"
    assert elems((64, 56, 56)) == 200704  # conv.memory_formula_eecs498: 64*56*56 = 200,704
    assert elems((3, 227, 227)) == 154587  # alexnet.cs231n.input: 227*227*3 = 154,587
