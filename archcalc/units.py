"""Units, dtypes and number parsing: the one home of every unit archcalc prints or reads.

One name per quantity, one size per unit name:

- counts (parameters, MACs, FLOPs, elements) take the decimal SI prefixes K (or k) = 10^3,
  M = 10^6, G = 10^9, T = 10^12;
- bytes: KB, MB, GB, TB are decimal (10^3, 10^6, 10^9, 10^12 B) and KiB, MiB, GiB, TiB binary
  (2^10, 2^20, 2^30, 2^40 B), as in ``BYTE_UNITS``. archcalc's tables print MB = 10^6 B.
- EECS 498 lecture 8 writes "KB" for 1,024 B (conv1: 200,704 outputs x 4 B / 1,024 = 784 "KB").
  That convention is never a default: a caller asks for it explicitly, ``kb(n, base=1024)`` to
  print and ``parse_count(text, kb=1024)`` / ``parse_bytes(text, kb=1024)`` to read, and then
  KB, MB, GB, TB written by a person mean 2^10, 2^20, 2^30, 2^40 B (``EECS_BYTE_UNITS``).

Parsing reads what people write (``34,944``, ``35K``, ``1.1e8``, ``0.7 GFLOP``, ``96MB``,
``24GiB``) into an exact value with the significant figures as written, so that a rounded answer
can be checked against an exact count (``matches``). Standard library only; nothing of archcalc.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction

# ---------------------------------------------------------------- dtypes

DTYPE_BYTES = {"fp32": 4, "fp16": 2, "bf16": 2, "int8": 1}

# ---------------------------------------------------------------- unit sizes

# Bytes in one of each unit, the one table every formatter and parser reads.
BYTE_UNITS = {
    "B": 1,
    "KB": 10**3, "KiB": 2**10,
    "MB": 10**6, "MiB": 2**20,
    "GB": 10**9, "GiB": 2**30,
    "TB": 10**12, "TiB": 2**40,
}
# EECS 498's "KB", "MB", ... (binary sizes under decimal names), only when a caller passes kb=1024.
EECS_BYTE_UNITS = {"KB": 2**10, "MB": 2**20, "GB": 2**30, "TB": 2**40}

# Decimal prefixes of counts (and of KB, MB, ... at kb=1000).
SI_PREFIXES = {"K": 10**3, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
# Binary prefixes: only before B (KiB, MiB, ...), never on a count.
BINARY_PREFIXES = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}

_PREFIXES = ((10**12, "T"), (10**9, "G"), (10**6, "M"), (10**3, "K"))

# ---------------------------------------------------------------- formatting


def si(n: int | float, digits: int = 1) -> str:
    """1234567 -> '1.2M': decimal prefixes K = 10^3, M = 10^6, G = 10^9, T = 10^12, and ``digits``
    decimals; below 1,000 an int is printed whole."""
    for scale, prefix in _PREFIXES:
        if abs(n) >= scale:
            return f"{n / scale:.{digits}f}{prefix}"
    return f"{n:,}" if isinstance(n, int) else f"{n:.{digits}f}"


def fmt_bytes(n_bytes: int, unit: str, digits: int = 1) -> str:
    """Bytes in one unit of ``BYTE_UNITS``: ``fmt_bytes(60950432, "MB")`` -> '61.0 MB',
    ``fmt_bytes(60950432, "MiB")`` -> '58.1 MiB'; ``"B"`` prints the exact integer ('1,024 B')."""
    if unit not in BYTE_UNITS:
        raise ValueError(f"unknown byte unit {unit!r}; known: {', '.join(BYTE_UNITS)}")
    if unit == "B":
        return f"{n_bytes:,} B"
    return f"{n_bytes / BYTE_UNITS[unit]:,.{digits}f} {unit}"


def mb(n_bytes: int) -> str:
    """Bytes as decimal megabytes, the unit everywhere in archcalc's tables: MB = 10^6 bytes."""
    return fmt_bytes(n_bytes, "MB")


def mb_number(n_bytes: int) -> str:
    """Decimal megabytes without the unit, for a column whose title says "MB"."""
    return f"{n_bytes / BYTE_UNITS['MB']:,.2f}"


def mib(n_bytes: int) -> str:
    """Bytes as binary mebibytes: MiB = 2^20 bytes."""
    return fmt_bytes(n_bytes, "MiB")


def kb(n_bytes: int, *, base: int = 1000, digits: int = 1) -> str:
    """Bytes as kilobytes labelled "KB": ``base=1000`` (the default, KB = 10^3 B, as archcalc
    reads and prints KB everywhere) or ``base=1024``, EECS 498's "KB" (its AlexNet table: 802,816 B
    -> '784.0 KB'). The 1,024 convention is only ever chosen by the caller, by name."""
    if base not in (1000, 1024):
        raise ValueError(f"KB is 1000 or 1024 bytes, not {base!r}")
    return f"{n_bytes / base:,.{digits}f} KB"


def round_sig(x, sig_figs: int) -> Fraction:
    """``x`` (an int, Fraction, Decimal or decimal string) rounded to ``sig_figs`` significant
    figures, half away from zero, exactly: ``round_sig(34944, 2)`` -> 35000, ``round_sig(34950, 3)``
    -> 35000, ``round_sig(34949, 3)`` -> 34900."""
    if sig_figs < 1:
        raise ValueError(f"significant figures must be at least 1, not {sig_figs!r}")
    x = Fraction(x)
    if x == 0:
        return Fraction(0)
    mag = abs(x)
    e = _decade(mag)
    quantum = Fraction(10) ** (e - sig_figs + 1)
    rounded = math.floor(mag / quantum + Fraction(1, 2)) * quantum
    return rounded if x > 0 else -rounded


def si_sig(n, sig_figs: int) -> str:
    """``n`` rounded to ``sig_figs`` significant figures with a decimal SI prefix (K, M, G, T), the
    way a person writes a rounded count: ``si_sig(34944, 2)`` -> '35K', ``si_sig(34944, 3)`` ->
    '34.9K', ``si_sig(138357544, 3)`` -> '138M', ``si_sig(999999, 2)`` -> '1.0M', ``si_sig(940, 1)``
    -> '900'. Every digit of a mantissa before a prefix counts when it is read back ('30K' claims
    the thousands), so where the rounded mantissa would end in zeros that are not significant, the
    number is written with an exponent instead: ``si_sig(34944, 1)`` -> '3e4', ``si_sig(350000, 2)``
    -> '3.5e5'. What it prints reads back with ``parse_count`` to a quantity that ``matches`` n."""
    r = round_sig(n, sig_figs)
    sign = "-" if r < 0 else ""
    mag = abs(r)
    if mag == 0:
        return "0"
    scale, prefix = _prefix_of(mag)
    m = mag / scale
    int_digits = _decade(m) + 1
    if prefix and int_digits > sig_figs:  # '30K' would claim two figures: write 3e4
        e = _decade(mag)
        return f"{sign}{_fixed(mag / Fraction(10) ** e, sig_figs - 1)}e{e}"
    return f"{sign}{_fixed(m, max(0, sig_figs - int_digits))}{prefix}"


def _prefix_of(mag) -> tuple[int, str]:
    """The largest decimal prefix (scale, letter) not above ``mag``; (1, "") below a thousand."""
    for s, p in _PREFIXES:
        if mag >= s:
            return s, p
    return 1, ""


def slide_round(n, sig_figs: int = 2) -> str:
    """``n`` rounded to ``sig_figs`` significant figures and written as lecture slides write it, with
    a decimal prefix and no trailing zeros: ``slide_round(802816)`` -> '800K', ``slide_round(3211264)``
    -> '3.2M', ``slide_round(150528)`` -> '150K', ``slide_round(15237608, 3)`` -> '15.2M'. Unlike
    ``si_sig`` it does not guard what the text claims when read back ('800K' reads as three figures):
    it is for showing a table as a slide printed it, not for writing an answer."""
    r = round_sig(n, sig_figs)
    sign = "-" if r < 0 else ""
    mag = abs(r)
    scale, prefix = _prefix_of(mag)
    m = mag / scale
    decimals = max(0, sig_figs - (_decade(m) + 1)) if m else 0
    text = _fixed(m, decimals) if (m * 10**decimals).denominator == 1 else f"{float(m):.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return f"{sign}{text}{prefix}"


def _fixed(x: Fraction, decimals: int) -> str:
    """A non-negative Fraction that is exact at ``decimals`` decimals, printed with them."""
    q = x * 10**decimals
    assert q.denominator == 1, (x, decimals)
    digits = str(q.numerator).rjust(decimals + 1, "0")
    return digits if decimals == 0 else f"{digits[:-decimals]}.{digits[-decimals:]}"


def _decade(mag: Fraction) -> int:
    """e with 10^e <= mag < 10^(e + 1), for mag > 0, exactly."""
    e = len(str(mag.numerator)) - len(str(mag.denominator))
    if mag < Fraction(10) ** e:
        e -= 1
    elif mag >= Fraction(10) ** (e + 1):
        e += 1
    return e


# ---------------------------------------------------------------- parsing

MAX_TEXT = 64  # characters: a written number is short; longer input is refused before any work
MAX_EXPONENT = 30  # |e| in 1.1e8 or 3.6 x 10^9

_SPACE = " \u00a0\u2009\u202f"  # space, no-break space, thin space, narrow no-break space
_NUMBER = re.compile(
    r"""
    (?P<int>\d{1,3}(?:(?P<sep>[,_ \u00a0\u2009\u202f])\d{3})(?:(?P=sep)\d{3})*  # 34,944 / 34 944
       |\d+)?                                                                  # or plain digits
    (?:(?P<point>\.)(?P<frac>\d*))?
    (?:
        [eE](?P<exp>[+-]?\d{1,3})                                # 1.1e8
      | [ \u00a0]*[x\u00d7*\u00b7][ \u00a0]*10\^(?P<exp10>[+-]?\d{1,3})   # 3.6 x 10^9
    )?
    """,
    re.VERBOSE | re.ASCII,  # ASCII digits only: int() would also read other scripts' digits
)

# Unit words, case-insensitive, to their normal name. "B" (bytes) is matched case-sensitively
# ("b" is a bit), and so are the prefixes: M is mega, m would be milli.
_UNIT_WORDS = {
    "flop": "FLOP", "flops": "FLOP",
    "mac": "MAC", "macs": "MAC",
    "param": "param", "params": "param", "parameter": "param", "parameters": "param",
    "byte": "B", "bytes": "B",
}


@dataclass(frozen=True)
class Quantity:
    """A number as a person wrote it.

    - ``value``: the number with its prefix applied, exactly (an int when whole, else a
      ``Fraction``): '35K' -> 35000, '0.7 GFLOP' -> 700000000, '24GiB' -> 25769803776; bytes in B.
    - ``sig_figs``: significant figures as written, by the textbook rule. Leading zeros never
      count; trailing zeros count after a decimal point ('3.80' -> 3) and not in a whole number
      written without one ('30K' -> 1, '34900' -> 3, '34,944' -> 5). The exponent and the prefix
      do not count ('1.1e8' -> 2). A zero has one.
    - ``resolution``: the place value of the last digit the writer vouches for, in the value's
      units: what ``matches`` rounds to. It is the place of the last significant figure, except
      that a whole mantissa written before a prefix or an exponent is taken at its last digit:
      '30K' -> 1000 (thirty thousand to the nearest thousand, though the textbook gives it one
      significant figure), '35K' -> 1000, '34.9k' -> 100, '34900' -> 100, '34,944' -> 1,
      '0.7 GFLOP' -> 10^8, '784 KB' with kb=1024 -> 1024.
    - ``unit``: None for a bare count, else "FLOP", "MAC", "param" or "B" (bytes).
    - ``scale``: the prefix's factor (1000 for K, 2^30 for Gi, 1 without a prefix).
    - ``prefix_base``: 1000 for a decimal prefix, 1024 for a binary one (KiB, ..., or KB, ... read
      with ``kb=1024``), None without a prefix.
    - ``text``: the text as given.
    """

    value: int | Fraction
    sig_figs: int
    unit: str | None
    scale: int
    prefix_base: int | None
    text: str
    resolution: int | Fraction


def _fail(text: str, why: str = "") -> ValueError:
    shown = repr(text) if len(text) <= MAX_TEXT else repr(text[:MAX_TEXT]) + "..."
    return ValueError(f"cannot read {shown} as a number" + (f": {why}" if why else ""))


def _split_suffix(text: str, suffix: str, kb: int) -> tuple[int, int | None, str | None]:
    """'GFLOPs' -> (10^9, 1000, 'FLOP'); 'MiB' -> (2^20, 1024, 'B'); '' -> (1, None, None)."""

    def unit_of(word: str) -> str | None | bool:  # False: not a unit
        if word == "":
            return None
        if word == "B":
            return "B"
        return _UNIT_WORDS.get(word.lower(), False)

    unit = unit_of(suffix)
    if unit is not False:
        return 1, None, unit
    for prefix, scale in (*BINARY_PREFIXES.items(), *SI_PREFIXES.items()):
        if not suffix.startswith(prefix):
            continue
        unit = unit_of(suffix[len(prefix):].lstrip(_SPACE))
        if unit is False:
            continue
        if prefix in BINARY_PREFIXES:
            if unit != "B":
                raise _fail(text, f"binary prefix {prefix!r} is for bytes only ({prefix}B)")
            return scale, 1024, unit
        if unit == "B" and kb == 1024:
            return EECS_BYTE_UNITS[prefix.upper() + "B"], 1024, unit
        return scale, 1000, unit
    raise _fail(text, f"unknown unit {suffix!r}")


def _check_kb(kb) -> None:
    if kb not in (1000, 1024):
        raise ValueError(f"kb must be 1000 or 1024, not {kb!r}")


def parse_count(text: str, *, kb: int = 1000) -> Quantity:
    """What a person writes for a count or a size, read exactly: '34944', '34,944', '34 944',
    '35K', '34.9k', '1.1e8', '3.6 x 10^9', '138M', '15.5G', '0.7 GFLOP', '1.4 GFLOPs', '3.8 GMACs',
    '61 MB', '96MB', '784 KB', '24GiB', '138M params'. A leading '~' or '≈' (about) is allowed.

    Prefixes: K (or k) = 10^3, M = 10^6, G = 10^9, T = 10^12 on counts and bytes; Ki, Mi, Gi, Ti
    (2^10 ... 2^40) on bytes only. KB, MB, GB, TB are decimal unless ``kb=1024`` (EECS 498's "KB"
    = 1,024 B, "MB" = 2^20 B), which the caller chooses explicitly; KiB, MiB, GiB are binary always.
    Units: FLOP(s), MAC(s), param(s)/parameter(s) (any case), B or byte(s) for bytes ('b' is
    refused: it is a bit). Thousands separators (',', '_', a space) must group by three, so a
    decimal comma ('3,5') is an error, not 35.

    Raises ValueError with a one-line message quoting the text ("cannot read '3.4.5' as a
    number"). Input is bounded: at most 64 characters, exponents at most 10^±30.
    """
    if not isinstance(text, str):
        raise TypeError(f"parse_count reads text, not {type(text).__name__}")
    _check_kb(kb)
    if len(text) > MAX_TEXT:
        raise _fail(text, f"longer than {MAX_TEXT} characters")
    s = text.strip()
    if s[:1] in ("~", "\u2248"):
        s = s[1:].lstrip()
    m = _NUMBER.match(s)
    int_part = m.group("int") if m else None
    frac = m.group("frac") if m else None
    if not m or not (int_part or frac):
        raise _fail(text)
    int_digits = re.sub(f"[,_{_SPACE}]", "", int_part or "")
    frac = frac or ""
    exp_text = m.group("exp") or m.group("exp10")
    exp = int(exp_text) if exp_text else 0
    if abs(exp) > MAX_EXPONENT:
        raise _fail(text, f"exponent beyond 10^\u00b1{MAX_EXPONENT}")
    suffix = s[m.end():].strip()
    if suffix and not suffix[0].isalpha():  # '3.4.5', '3,5' (a decimal comma?), '1,2345'
        raise _fail(text, "thousands separators group digits by three" if suffix[0] in ",_" else "")
    scale, prefix_base, unit = _split_suffix(text, suffix, kb)

    digits = int_digits + frac
    significant = digits.lstrip("0")
    whole = int_digits.strip("0") != "" and not m.group("point")
    trailing = len(int_digits) - len(int_digits.rstrip("0")) if whole else 0
    if whole:
        significant = significant.rstrip("0")
    sig_figs = max(1, len(significant))
    # The last digit vouched for: the last written one, except a plain whole number's trailing
    # zeros ('35,000' is 35K rounded); before a prefix or exponent every written digit counts.
    if whole and scale == 1 and not exp_text:
        place = Fraction(10) ** trailing
    else:
        place = Fraction(1, 10 ** len(frac))

    value = Fraction(int(digits), 10 ** len(frac)) * Fraction(10) ** exp * scale
    resolution = place * Fraction(10) ** exp * scale
    return Quantity(value=_exact(value), sig_figs=sig_figs, unit=unit, scale=scale,
                    prefix_base=prefix_base, text=text, resolution=_exact(resolution))


def _exact(x: Fraction) -> int | Fraction:
    return x.numerator if x.denominator == 1 else x


def parse_bytes(text: str, *, kb: int = 1000) -> int:
    """A memory size in bytes, rounded to a whole byte (half up): '24GiB' -> 25769803776,
    '16 GB' -> 16000000000, '512MiB' -> 536870912, '1.5 KiB' -> 1536, '4096' (a bare number) ->
    4096 bytes. KB, MB, GB are decimal unless ``kb=1024`` (EECS 498's convention). A count unit
    ('3 GFLOP') or a bare prefix ('24G': GB or GiB?) is refused with ValueError."""
    q = parse_count(text, kb=kb)
    if q.unit not in (None, "B"):
        raise _fail(text, f"a memory size is in bytes, not {q.unit}")
    if q.unit is None and q.scale != 1:
        raise _fail(text, "say which bytes: B, KB, MB, GB, KiB, MiB or GiB")
    return math.floor(Fraction(q.value) + Fraction(1, 2))


def matches(q: Quantity, exact) -> bool:
    """True when ``exact`` (an int, Fraction or Decimal) rounded at ``q``'s last significant
    digit is ``q``'s value: '35K' matches 34,944 (35,000); '30K' does not (34,944 to the nearest
    thousand is 35K); '34.9k' matches 34,944; '34,944' matches only 34,944; '35,000' and '34,900'
    match 34,944 (a plain whole number's trailing zeros are not significant).

    The rounding is at ``q.resolution`` (see ``Quantity``), half up, in exact arithmetic: ``exact``
    matches when it lies in [value - resolution/2, value + resolution/2). That is the textbook
    "rounded to q's significant figures", with one difference: a whole mantissa before a prefix or
    exponent ('30K', '100M', '10e8') is held to its last written digit, so '30K' is not accepted for
    34,944 nor '100M' for 138,357,544. Rounding in the written units makes binary sizes work too:
    '784 KB' read with kb=1024 matches 802,816 B. Rounding only, never truncation: '34.9K' does
    not match 34,960 (which rounds to 35.0K). Units are not compared here; the caller checks ``q.unit``.
    """
    res = Fraction(q.resolution)
    rounded = math.floor(Fraction(exact) / res + Fraction(1, 2)) * res
    return rounded == q.value
