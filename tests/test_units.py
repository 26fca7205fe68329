"""units.py: one size per unit name, formatting, and reading the numbers people write.

Every example below is a number a lecture, a paper or a student writes; the exact values are
worked out in the comments.
"""
from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from archcalc import units
from archcalc.units import (BYTE_UNITS, DTYPE_BYTES, EECS_BYTE_UNITS, Quantity, fmt_bytes, kb, matches, mb,
                            mb_number, mib, parse_bytes, parse_count, round_sig, si, si_sig)

# ---------------------------------------------------------------- tables


def test_dtype_bytes():
    assert DTYPE_BYTES == {"fp32": 4, "fp16": 2, "bf16": 2, "int8": 1}


def test_byte_units_decimal_and_binary():
    assert BYTE_UNITS == {"B": 1, "KB": 1000, "KiB": 1024, "MB": 10**6, "MiB": 1048576, "GB": 10**9,
                          "GiB": 1073741824, "TB": 10**12, "TiB": 1099511627776}
    # EECS 498's names for binary sizes: a separate table, used only when a caller says kb=1024
    assert EECS_BYTE_UNITS == {"KB": 1024, "MB": 2**20, "GB": 2**30, "TB": 2**40}


# ---------------------------------------------------------------- formatting


@pytest.mark.parametrize("n, digits, text", [
    (0, 1, "0"), (999, 1, "999"), (1234, 1, "1.2K"), (1234567, 1, "1.2M"), (28288, 2, "28.29K"),
    (1094, 2, "1.09K"), (15470264320, 2, "15.47G"), (2 * 10**12, 1, "2.0T"), (0.5, 1, "0.5"),
])
def test_si(n, digits, text):
    assert si(n, digits) == text


def test_megabytes_and_mebibytes():
    # CS231n's VGG-16: 15,237,608 elements x 4 B = 60,950,432 B = 61.0 MB = 58.1 MiB
    assert mb(60950432) == "61.0 MB"
    assert mib(60950432) == "58.1 MiB"
    assert mb_number(60950432) == "60.95"
    assert mb(5416000) == "5.4 MB" and mib(5416000) == "5.2 MiB"


def test_kb_base_is_explicit():
    # EECS 498's AlexNet conv1: 64 x 56 x 56 x 4 B = 802,816 B = 784 "KB" of 1,024 B
    assert kb(802816, base=1024) == "784.0 KB"
    assert kb(802816) == "802.8 KB"  # the default is KB = 10^3 B
    with pytest.raises(TypeError):
        kb(802816, 1024)  # the base is named, never positional
    with pytest.raises(ValueError):
        kb(802816, base=1000000)


@pytest.mark.parametrize("unit, text", [
    ("B", "60,950,432 B"), ("KB", "60,950.4 KB"), ("KiB", "59,521.9 KiB"), ("MB", "61.0 MB"),
    ("MiB", "58.1 MiB"), ("GB", "0.1 GB"), ("GiB", "0.1 GiB"),
])
def test_fmt_bytes(unit, text):
    assert fmt_bytes(60950432, unit) == text


def test_fmt_bytes_refuses_unknown_units():
    with pytest.raises(ValueError, match="unknown byte unit 'Mb'"):
        fmt_bytes(1, "Mb")


def test_columns_use_the_units_module():
    """The formatters are the units module's (one definition), re-exported where they were."""
    from archcalc.formats import columns

    assert columns.si is units.si and columns.mb is units.mb and columns.mib is units.mib


# ---------------------------------------------------------------- rounding


@pytest.mark.parametrize("x, k, rounded", [
    (34944, 1, 30000), (34944, 2, 35000), (34944, 3, 34900), (34950, 3, 35000), (34949, 3, 34900),
    (999999, 2, 1000000), (Fraction(1, 3), 2, Fraction(33, 100)), (Decimal("0.725"), 2, Fraction(73, 100)),
    (0, 3, 0), (-34950, 3, -35000),
])
def test_round_sig_half_up(x, k, rounded):
    assert round_sig(x, k) == rounded


@pytest.mark.parametrize("n, k, text", [
    (34944, 2, "35K"), (34944, 3, "34.9K"), (34944, 5, "34.944K"), (34944, 1, "3e4"), (138357544, 3, "138M"),
    (999999, 2, "1.0M"), (940, 1, "900"), (96, 1, "100"), (0, 2, "0"), (350000, 2, "3.5e5"), (100000, 3, "100K"),
    (15470264320, 3, "15.5G"),
])
def test_si_sig(n, k, text):
    assert si_sig(n, k) == text


# ---------------------------------------------------------------- parsing counts


def q(value, sig_figs, unit=None, scale=1, prefix_base=None, resolution=None):
    return dict(value=value, sig_figs=sig_figs, unit=unit, scale=scale, prefix_base=prefix_base,
                **({} if resolution is None else {"resolution": resolution}))


@pytest.mark.parametrize("text, expected", [
    ("34944", q(34944, 5, resolution=1)),
    ("34,944", q(34944, 5, resolution=1)),
    ("34 944", q(34944, 5, resolution=1)),
    ("34\u202f944", q(34944, 5)),
    ("34_944", q(34944, 5)),
    ("35K", q(35000, 2, scale=1000, prefix_base=1000, resolution=1000)),
    ("35 K", q(35000, 2, scale=1000, prefix_base=1000)),
    ("34.9k", q(34900, 3, scale=1000, prefix_base=1000, resolution=100)),
    ("30K", q(30000, 1, scale=1000, prefix_base=1000, resolution=1000)),
    ("34900", q(34900, 3, resolution=100)),
    ("35,000", q(35000, 2, resolution=1000)),
    ("1.1e8", q(110000000, 2, resolution=10**7)),
    ("1.1E8", q(110000000, 2)),
    ("3.6 x 10^9", q(3600000000, 2, resolution=10**8)),
    ("3.6\u00d710^9", q(3600000000, 2)),
    ("138M", q(138000000, 3, scale=10**6, prefix_base=1000, resolution=10**6)),
    ("15.5G", q(15500000000, 3, scale=10**9, prefix_base=1000)),
    ("0.7", q(Fraction(7, 10), 1, resolution=Fraction(1, 10))),
    ("3.80", q(Fraction(19, 5), 3, resolution=Fraction(1, 100))),
    ("0.070", q(Fraction(7, 100), 2)),
    ("500.", q(500, 3, resolution=1)),
    (".5", q(Fraction(1, 2), 1)),
    ("1e-3", q(Fraction(1, 1000), 1)),
    ("0", q(0, 1, resolution=1)),
    ("0.7 GFLOP", q(700000000, 1, "FLOP", 10**9, 1000, resolution=10**8)),
    ("1.4 GFLOPs", q(1400000000, 2, "FLOP", 10**9, 1000)),
    ("13.6 GFLOPS", q(13600000000, 3, "FLOP", 10**9, 1000)),
    ("72.9 MFLOP", q(72900000, 3, "FLOP", 10**6, 1000)),
    ("3.8 GMACs", q(3800000000, 2, "MAC", 10**9, 1000)),
    ("86,704,128 MACs", q(86704128, 8, "MAC")),
    ("138M params", q(138000000, 3, "param", 10**6, 1000)),
    ("61 MB", q(61000000, 2, "B", 10**6, 1000)),
    ("96MB", q(96000000, 2, "B", 10**6, 1000)),
    ("784 KB", q(784000, 3, "B", 1000, 1000)),
    ("784 kB", q(784000, 3, "B", 1000, 1000)),
    ("24GiB", q(24 * 2**30, 2, "B", 2**30, 1024, resolution=2**30)),
    ("512 MiB", q(512 * 2**20, 3, "B", 2**20, 1024)),
    ("1,024 bytes", q(1024, 4, "B")),
    ("~35K", q(35000, 2, scale=1000, prefix_base=1000)),
    ("\u2248 96MB", q(96000000, 2, "B", 10**6, 1000)),
    ("  35K \n", q(35000, 2, scale=1000, prefix_base=1000)),
])
def test_parse_count(text, expected):
    got = parse_count(text)
    assert isinstance(got, Quantity) and got.text == text
    for field, value in expected.items():
        assert getattr(got, field) == value, (text, field, getattr(got, field))
    # exact: an int when whole, else a Fraction, never a float
    assert type(got.value) is (int if Fraction(got.value).denominator == 1 else Fraction)


def test_quantity_is_frozen():
    got = parse_count("35K")
    with pytest.raises(AttributeError):
        got.value = 1  # type: ignore[misc]


def test_eecs_kb_only_when_asked():
    # EECS 498's AlexNet conv1 memory: 784 "KB" of 1,024 B = 802,816 B; its total "1.9 MB" of 2^20 B
    assert parse_count("784 KB").value == 784000
    eecs = parse_count("784 KB", kb=1024)
    assert (eecs.value, eecs.scale, eecs.prefix_base, eecs.unit, eecs.sig_figs) == (802816, 1024, 1024, "B", 3)
    assert parse_count("1.9 MB", kb=1024).value == Fraction(19 * 2**20, 10)
    # binary prefixes are binary either way; counts never take the byte convention
    assert parse_count("24GiB", kb=1024).value == parse_count("24GiB").value == 24 * 2**30
    assert parse_count("35K", kb=1024).value == 35000
    assert parse_count("0.7 GFLOP", kb=1024).value == 700000000


@pytest.mark.parametrize("text", [
    "3.4.5", "", "   ", "K", "MB", "-5", "+5", "3,5", "1,2345", "34,94", "34,944,1", "1 2", "35Q", "35 KK",
    "61 Mb", "3 kb", "1e31", "1e-31", "1e400", "24KiFLOP", "3 Gi", "3 m", "35K\nrm", "e5", "1.1e", "0x10",
    "nan", "inf", "\u0661\u0662",  # Arabic-Indic digits are not what people type into a quiz... refuse them
    "12" * 40,
])
def test_bad_input_raises_value_error_quoting_the_text(text):
    with pytest.raises(ValueError) as info:
        parse_count(text)
    message = str(info.value)
    assert "\n" not in message
    shown = text if len(text) <= units.MAX_TEXT else text[:units.MAX_TEXT]
    assert message.startswith(f"cannot read {shown!r}"), message


def test_bad_input_messages():
    with pytest.raises(ValueError, match=r"^cannot read '3\.4\.5' as a number$"):
        parse_count("3.4.5")
    with pytest.raises(ValueError, match="unknown unit 'Mb'"):
        parse_count("61 Mb")
    with pytest.raises(ValueError, match="group digits by three"):
        parse_count("3,5")
    with pytest.raises(ValueError, match="bytes only"):
        parse_count("3 GiFLOP")
    with pytest.raises(ValueError, match="longer than 64 characters"):
        parse_count("1" * 65)
    with pytest.raises(ValueError, match="kb must be 1000 or 1024"):
        parse_count("1 KB", kb=1023)
    with pytest.raises(TypeError):
        parse_count(35000)  # type: ignore[arg-type]


def test_longest_accepted_input_is_cheap():
    text = "9" * 60 + "e30"  # 63 characters, the largest exponent
    assert parse_count(text).value == int("9" * 60) * 10**30
    assert parse_count("1e-30").value == Fraction(1, 10**30)


# ---------------------------------------------------------------- parsing memory sizes


@pytest.mark.parametrize("text, n_bytes", [
    ("24GiB", 24 * 2**30), ("16 GB", 16 * 10**9), ("80GB", 80 * 10**9), ("3GB", 3 * 10**9),
    ("512MiB", 512 * 2**20), ("4096", 4096), ("1.5 KiB", 1536), ("1.5 KB", 1500), ("0.5 B", 1),
    ("2.4 B", 2), ("1,048,576 bytes", 2**20), ("12 GB", 12 * 10**9), ("1 TiB", 2**40),
])
def test_parse_bytes(text, n_bytes):
    got = parse_bytes(text)
    assert got == n_bytes and type(got) is int


def test_parse_bytes_eecs_convention():
    assert parse_bytes("16 GB", kb=1024) == 16 * 2**30
    assert parse_bytes("784 KB", kb=1024) == 802816
    assert parse_bytes("16 GiB", kb=1000) == 16 * 2**30


@pytest.mark.parametrize("text, why", [
    ("3 GFLOP", "not FLOP"), ("24G", "say which bytes"), ("2 params", "not param"), ("24 Gb", "unknown unit"),
])
def test_parse_bytes_refuses_what_is_not_bytes(text, why):
    with pytest.raises(ValueError, match=why) as info:
        parse_bytes(text)
    assert str(info.value).startswith(f"cannot read {text!r}")


# ---------------------------------------------------------------- matching a rounded answer


@pytest.mark.parametrize("text, exact, ok", [
    ("35K", 34944, True),           # 34,944 to the nearest thousand
    ("30K", 34944, False),          # 35K, not 30K
    ("34.9k", 34944, True),
    ("34.9K", 34960, False),        # 34,960 rounds to 35.0K: rounding, not truncation
    ("34,944", 34944, True),
    ("34,944", 34945, False),
    ("34,944", 34943, False),
    ("35,000", 34944, True),        # a plain whole number's trailing zeros are not significant
    ("34900", 34944, True),
    ("34900", 34950, False),        # half up: 34,950 -> 35,000
    ("34.9K", 34850, True),         # ... and 34,850 -> 34,900
    ("34.9K", 34849, False),
    ("138M", 138357544, True),      # VGG-16's parameters
    ("100M", 138357544, False),
    ("140M", 138357544, False),
    ("15.5G", 15470264320, True),   # VGG-16's MACs
    ("15.4G", 15470264320, False),
    ("1.1e8", 110000000, True),
    ("0.7 GFLOP", 724406816, True),  # EECS 498's AlexNet "0.7 GFLOP": 0.72 G MACs
    ("3.80", Fraction(19, 5), True),
    ("3.80", Decimal("3.805"), False),   # half up: 3.81
    ("3.80", Decimal("3.7999"), True),
    ("61 MB", 60950432, True),      # CS231n's VGG-16 activations, 4 B each
    ("96MB", 60950432, False),      # the slide's "24M * 4 bytes ~= 96MB" slip
    ("58.1 MiB", 60950432, True),
    ("0", 0, True),
    ("0", 1, False),
])
def test_matches(text, exact, ok):
    assert matches(parse_count(text), exact) is ok


def test_matches_binary_units_in_their_own_units():
    # EECS 498 conv1: 200,704 outputs x 4 B = 802,816 B = 784 "KB" exactly (kb=1024)
    assert matches(parse_count("784 KB", kb=1024), 802816)
    assert not matches(parse_count("784 KB"), 802816)   # decimal: 802.8 KB, so "803 KB"
    assert matches(parse_count("803 KB"), 802816)
    assert matches(parse_count("24GiB"), 24 * 2**30 + 2**29 - 1)
    assert not matches(parse_count("24GiB"), 24 * 2**30 + 2**29)


def test_matches_uses_exact_arithmetic():
    # 0.1 + 0.2 as floats is 0.30000000000000004; as an exact count it is 3/10
    assert matches(parse_count("0.3"), Fraction(1, 10) + Fraction(2, 10))
    assert matches(parse_count("0.30000000000000000001"), Fraction(3, 10) + Fraction(1, 10**20))
    assert not matches(parse_count("0.30000000000000000001"), Fraction(3, 10))


# ---------------------------------------------------------------- round trips


@given(st.integers(min_value=0, max_value=10**15), st.integers(min_value=1, max_value=6))
def test_si_sig_round_trip(n, k):
    """n written to k significant figures with an SI prefix reads back as a quantity matching n."""
    text = si_sig(n, k)
    got = parse_count(text)
    assert matches(got, n), (n, k, text, got)
    assert got.value == round_sig(n, k)
    assert got.sig_figs <= k


@given(st.integers(min_value=0, max_value=10**15))
def test_exact_integers_round_trip(n):
    for text in (str(n), f"{n:,}", f"{n:_}", f"{n:,}".replace(",", " ")):
        got = parse_count(text)
        assert got.value == n and matches(got, n)
        assert not matches(got, n + 1) or got.resolution > 1  # trailing zeros: '35,000' covers a range


@given(st.integers(min_value=0, max_value=2**50), st.sampled_from(sorted(BYTE_UNITS)))
def test_fmt_bytes_round_trip(n, unit):
    """What fmt_bytes prints reads back, in the same unit, as a quantity that matches n."""
    text = fmt_bytes(n, unit, digits=3)
    got = parse_count(text)
    assert got.unit == "B" and got.scale == BYTE_UNITS[unit]
    if unit == "B":
        assert got.value == n
    else:  # float formatting of n / size at 3 decimals: within half a unit of the last decimal
        # (and the float division's own error, at most a few units in 2^-52 of n)
        assert abs(Fraction(got.value) - n) <= Fraction(BYTE_UNITS[unit], 2000) + Fraction(n, 2**50)


@given(st.integers(min_value=0, max_value=2**50))
def test_parse_bytes_round_trip(n):
    assert parse_bytes(f"{n} B") == parse_bytes(str(n)) == n
    assert parse_bytes(f"{n}KiB") == n * 1024
