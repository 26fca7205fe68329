"""expr.py: the bounded evaluator of `$argument` expressions.

Values and operators, the whole-`$name` pass-through, every error class (raised as the caller's
exception, quoting the text), the bounds (huge numbers, power towers, long and deeply nested
texts), make_divisible against torchvision's formula, and a property: whatever the text and the
argument values, evaluate returns or raises the caller's exception, nothing else.
"""
from __future__ import annotations

import ast
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from archcalc import expr
from archcalc.expr import LIMITS, evaluate, has_dollar


class E(Exception):
    """The caller's exception: evaluate must raise this and only this."""


def fail(message: str) -> E:
    return E(message)


ENV = {"c": 8, "mid": 16, "x": 1.5, "f": 48.0, "neg": -7, "flag": True, "off": False, "act": "relu",
       "none": None, "w": [16, 24, 32], "grid": [[1, 2], [3, 4]], "names": ["relu", "gelu"],
       "cfg": {"k": 3}, "in": 3, "in_h": 224, "in_w": 112}


def ev(text: str, env=None):
    return evaluate(text, ENV if env is None else env, fail)


def quoted(text: str) -> str:
    """How a message quotes the text (cut when long)."""
    return repr(text) if len(text) <= 120 else repr(text[:100])


def error(text: str, env=None) -> str:
    with pytest.raises(E) as e:
        ev(text, env)
    message = str(e.value)
    assert "\n" not in message
    assert quoted(text) in message, message
    return message


# ---------------------------------------------------------------- values


@pytest.mark.parametrize("text, value", [
    ("$c + 1", 9), ("$c - 10", -2), ("$mid * 4", 64), ("$c / 2", 4), ("$c / 3", 8 / 3), ("7 / 2", 3.5),
    ("$c // 3", 2), ("$neg // 2", -4), ("$c % 3", 2), ("$neg % 3", 2), ("$c ** 2", 64), ("2 ** -1", 0.5),
    ("-$c", -8), ("+$c", 8), ("--$c", 8), ("($c + 4) * 2", 24), ("$c ** 2 - $c % 3", 62),
    ("$x * 2", 3), ("$f * 1", 48), ("$f / 5", 9.6), ("1.5 + 1.5", 3), ("2.0", 2), ("$c * 0.5", 4),
    ("$in * $in_h * $in_w", 3 * 224 * 112), ("$in", 3),
    ("-2 ** 2", -4), ("2 ** 3 ** 2", 512), ("10 ** 18", 10**18), ("-(10 ** 18)", -10**18),
])
def test_arithmetic(text, value):
    got = ev(text)
    assert got == value
    assert type(got) is type(value)


def test_whole_floats_become_ints_and_bools_stay_bools():
    assert type(ev("$c / 2")) is int
    assert type(ev("$f + 0")) is int
    assert ev("$c > 2") is True
    assert ev("not $flag") is False


@pytest.mark.parametrize("text, value", [
    ("$c == 8", True), ("$c != 8", False), ("$c < 9", True), ("$c <= 8", True), ("$c > 8", False),
    ("$c >= 9", False), ("0 < $c <= 8", True), ("0 < $c < 8", False), ("1 < 2 < 3 < 4", True),
    ("$c == 8.0", True), ("$x == 1.5", True),
    ("$act == 'relu'", True), ('$act == "relu"', True), ("$act != 'none'", True), ("'gelu' == $act", False),
    ("$act == 3", False), ("$none == 'none'", False), ("$none != 3", True), ("$names[1] == 'gelu'", True),
    ("$flag == True", True), ("$flag == true", True), ("$off == false", True), ("$flag != False", True),
    ("$flag and $c > 2", True), ("$off or $c > 2", True), ("$off and $c > 2", False),
    ("$off or False", False), ("not $off", True), ("not ($c > 2)", False), ("True", True), ("false", False),
    ("$act != 'none' and $c > 4 and not $off", True), ("$c > 100 or $act == 'relu'", True),
])
def test_comparisons_and_logic(text, value):
    assert ev(text) is value


def test_and_or_short_circuit_like_python():
    assert ev("$off and $c // 0 > 1") is False
    assert ev("$flag or $c // 0 > 1") is True
    assert ev("$c > 100 and $w[10] == 1") is False


@pytest.mark.parametrize("text", ["$w", " $w ", "\t$w\n", "($w)"])
def test_whole_name_is_the_value_itself(text):
    assert ev(text) is ENV["w"]


@pytest.mark.parametrize("name", ["act", "flag", "off", "none", "cfg", "grid", "f", "x", "in"])
def test_whole_name_returns_any_type(name):
    assert ev(f"${name}") is ENV[name]


def test_whole_name_float_is_not_converted():
    assert type(ev("$f")) is float  # a value passed through is the argument as given


@pytest.mark.parametrize("text, value", [
    ("$w[0]", 16), ("$w[2]", 32), ("$w[-1]", 32), ("$w[-3]", 16), ("$w[$c // 8]", 24), ("$w[4 / 2]", 32),
    ("$w[1] * 2", 48), ("$grid[1][0]", 3), ("$grid[-1][-1] + 1", 5), ("$names[0]", "relu"), ("$grid[0]", [1, 2]),
])
def test_subscripts(text, value):
    assert ev(text) == value


def test_subscript_of_a_tuple():
    assert ev("$t[1]", {"t": (5, 6)}) == 6


@pytest.mark.parametrize("text, value", [
    ("ceil($x)", 2), ("ceil(-1.5)", -1), ("ceil(7)", 7), ("ceil($c / 3)", 3),
    ("floor($x)", 1), ("floor(-1.5)", -2), ("floor(7)", 7),
    ("round(2.5)", 2), ("round(3.5)", 4), ("round(0.5)", 0), ("round(-2.5)", -2), ("round(2.6)", 3), ("round(7)", 7),
    ("int(2.7)", 2), ("int(-2.7)", -2), ("int($c / 3)", 2), ("int(5)", 5),
    ("abs(-3)", 3), ("abs($neg)", 7), ("abs(-1.5)", 1.5), ("abs(-2.0)", 2),
    ("min($c, 3, 9)", 3), ("max($c, 3, 9)", 9), ("min(4)", 4), ("max(1.5, 1)", 1.5), ("min($w[0], $w[1])", 16),
    ("max(-1, -2) * 2", -2),
])
def test_functions(text, value):
    got = ev(text)
    assert got == value
    assert type(got) is type(value)


def test_integer_functions_give_ints():
    for f in ("ceil", "floor", "round", "int"):
        assert type(ev(f"{f}($x)")) is int


# ---------------------------------------------------------------- make_divisible


def reference_make_divisible(v, divisor=8, min_value=None):
    """torchvision.models._utils._make_divisible, written from its formula."""
    if min_value is None:
        min_value = divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


@pytest.mark.parametrize("text, value", [
    ("make_divisible(32 * 0.75, 8)", 24),     # 24 + 4 = 28 -> 24
    ("make_divisible(16 * 0.5, 8)", 8),       # 8 + 4 = 12 -> 8
    ("make_divisible(96 * 0.35, 8)", 32),     # 33.6 + 4 = 37.6 -> 37 // 8 * 8 = 32 >= 30.24
    ("make_divisible(1280 * 1.0, 8)", 1280),
    ("make_divisible(16 * 0.35, 8)", 8),      # 5.6 + 4 -> 9 // 8 * 8 = 8
    ("make_divisible(24 * 0.25, 8)", 8),      # 6 + 4 = 10 -> 8
    ("make_divisible(20)", 24),               # 20 + 4 = 24 -> 24: halves round up
    ("make_divisible(19)", 24),               # 23 -> 16, but 16 < 0.9 * 19 = 17.1: + 8 -> 24
    ("make_divisible(40 * 1.1, 8)", 48),      # 44 + 4 = 48 -> 48
    ("make_divisible(3, 8)", 8),              # min_value = divisor
    ("make_divisible(3, 8, 16)", 16),
    ("make_divisible(3, divisor=4)", 4),
    ("make_divisible(10, 4)", 12),            # 10 + 2 = 12 -> 12
    ("make_divisible(37, divisor=4, min_value=8)", 36),
    ("make_divisible(3, min_value=1, divisor=2)", 4),  # 3 + 1 = 4 -> 4
    ("make_divisible($mid * 0.75)", 16),      # 12 + 4 = 16 -> 16
    ("make_divisible($c, $c, $none)", 8),     # a None argument: the default min_value
])
def test_make_divisible_values(text, value):
    got = ev(text)
    assert got == value
    assert type(got) is int


def test_make_divisible_matches_the_formula_on_widths_and_multipliers():
    for width in range(8, 1025):
        for mult in (0.25, 0.35, 0.5, 0.75, 1.0, 1.1, 1.2, 1.4, 1.6, 1.8, 2.0):
            env, v = {"c": width, "m": mult}, width * mult
            assert evaluate("make_divisible($c * $m, 8)", env, fail) == reference_make_divisible(v, 8), (width, mult)
            assert evaluate("make_divisible($c * $m)", env, fail) == reference_make_divisible(v, 8)
            assert evaluate("make_divisible($c * $m, 4, 16)", env, fail) == reference_make_divisible(v, 4, 16)


# ---------------------------------------------------------------- errors


def test_unknown_argument_lists_the_arguments():
    env = {"a": 1, "b": 2}
    message = error("$n * 2", env)
    assert message.startswith("unknown argument $n; arguments: $a, $b")
    assert error("$n", env).startswith("unknown argument $n; arguments: $a, $b")
    assert error("$n", {}).startswith("unknown argument $n; arguments: none here (only block bodies take $arguments)")
    # every argument is checked, even one that a short-circuit would never evaluate
    assert error("False and $n > 1", env).startswith("unknown argument $n")
    # and before a text that does not read
    assert error("$n *", env).startswith("unknown argument $n")


@pytest.mark.parametrize("text, message", [
    ("$c * mid", "'mid' in '$c * mid' is not an argument: write $mid"),
    ("ceil + 1", "'ceil' in 'ceil + 1' is not an argument: write $ceil"),
    ("$c *", "cannot read expression '$c *'"),
    ("$c$c", "cannot read expression '$c$c'"),
    ("x$c", "cannot read expression 'x$c'"),
    ("2$c", "cannot read expression '2$c'"),
    ("$", "cannot read expression '$'"),
    ("$$", "cannot read expression '$$'"),
    ("$1", "cannot read expression '$1'"),
    ("$c[", "cannot read expression '$c['"),
    ("$c + (", "cannot read expression"),
    ("1 +\n 2", "cannot read expression"),
    ("$c\x00", "cannot read expression"),
    ("$c.x", "attribute access is not allowed"),
    ("$c.real", "attribute access is not allowed"),
    ("$c()", "$c is not a function"),
    ("lambda: 1", "lambda is not allowed"),
    ("(y := $c)", ":= is not allowed"),
    ("[i for i in $w]", "comprehension is not allowed"),
    ("sum(i for i in $w)", "unknown function sum()"),
    ("f'{$c}'", "f-string is not allowed"),
    ("$c if $flag else 1", "if/else is not allowed"),
    ("[$c, 1]", "a list is not allowed"),
    ("$c, 1", "a tuple is not allowed"),
    ("{1: $c}", "a mapping is not allowed"),
    ("len($c)", "unknown function len()"),
    ("__import__('os')", "unknown function __import__()"),
    ("$c.__class__", "attribute access is not allowed"),
    ("(lambda: 1)()", "is not a function"),
    ("~$c", "is not allowed"),
    ("None", "is not allowed"),
    ("$c + 1j", "is not allowed"),
    ("b'x' == $act", "is not allowed"),
    ("...", "is not allowed"),
    ("$c @ $c", "uses an operator that is not allowed"),
    ("$c << 2", "uses an operator that is not allowed"),
    ("$c | 1", "uses an operator that is not allowed"),
    ("$c is 8", "only == != < <= > >= compare"),
    ("$c in $w", "only == != < <= > >= compare"),
    ("$flag * 2", "$flag is True, not a number, in '$flag * 2'"),
    ("$act + 1", "$act is 'relu', not a number, in '$act + 1'"),
    ("$w * 2", "$w is [16, 24, 32], not a number"),
    ("$none + 1", "$none is None, not a number"),
    ("$cfg - 1", "$cfg is a mapping, not a number"),
    ("True * 2", "True is true or false, not a number"),
    ("($c > 1) + 1", "$c > 1 is true or false, not a number"),
    ("$act < 'z'", "the string 'z'"),
    ("$act == 'relu' + 'x'", "can only be compared with == or !="),
    ("'relu'", "the string 'relu' in \"'relu'\" can only be compared with == or !="),
    ("-'a' == $act", "can only be compared"),
    ("$c == $w", "$w is [16, 24, 32]; == and != compare numbers, strings and true/false"),
    ("not $c", "$c is 8, not true or false"),
    ("$c and $flag", "$c is 8, not true or false"),
    ("not 3", "3 is a number, not true or false"),
    ("not 'x'", "can only be compared"),
    ("$c // 0", "division by zero in '$c // 0'"),
    ("$c / 0", "division by zero in '$c / 0'"),
    ("$c % 0", "division by zero in '$c % 0'"),
    ("$x / 0.0", "division by zero"),
    ("0 ** -1", "division by zero in '0 ** -1'"),
    ("$w[3]", "$w has no item 3: it has 3"),
    ("$w[-4]", "$w has no item -4"),
    ("$c[0]", "$c is 8, not a list"),
    ("$act[0]", "$act is 'relu', not a list"),
    ("$cfg[0]", "$cfg is a mapping, not a list"),
    ("$w[$x]", "index 1.5 of $w is not an integer"),
    ("$w[$flag]", "$flag is True, not a number"),
    ("$w[1:2]", "a list takes one integer index"),
    ("$w[0, 1]", "a list takes one integer index"),
    ("(1 + 2)[0]", "1 + 2 is not a list"),
    ("$c ** 0.5", "exponent 0.5 is not an integer"),
    ("$c ** 100", "exponent 100 is too large in '$c ** 100'"),
    ("$c ** 99999999", "exponent 99999999 is too large"),
    ("$c ** -65", "exponent -65 is too large"),
    ("ceil()", "ceil() takes one number, got 0"),
    ("ceil(1, 2)", "ceil() takes one number, got 2"),
    ("round($x, 1)", "round() takes one number, got 2"),
    ("min()", "min() takes at least one number"),
    ("max(*$w)", "max() takes no *arguments"),
    ("abs(x=1)", "abs() takes no keyword arguments"),
    ("min($w)", "$w is [16, 24, 32], not a number"),
    ("ceil($act)", "$act is 'relu', not a number"),
    ("make_divisible()", "make_divisible() needs a value"),
    ("make_divisible(divisor=8)", "make_divisible() needs a value"),
    ("make_divisible(1, 2, 3, 4)", "make_divisible() takes at most 3 arguments"),
    ("make_divisible(24, foo=8)", "takes keywords divisor= and min_value=, not foo="),
    ("make_divisible(24, v=8)", "not v="),
    ("make_divisible(24, **$cfg)", "not **"),
    ("make_divisible(24, 8, divisor=8)", "make_divisible() got divisor twice"),
    ("make_divisible(24, 0)", "the divisor of make_divisible must be a positive integer, not 0"),
    ("make_divisible(24, -8)", "must be a positive integer, not -8"),
    ("make_divisible(24, 2.5)", "must be a positive integer, not 2.5"),
    ("make_divisible(24, 8, $act)", "$act is 'relu', not a number"),
    ("make_divisible($act)", "$act is 'relu', not a number"),
    ("'$c' == $act", "a quoted string cannot hold a $argument"),
    ("$act == '$'", "cannot read expression"),
])
def test_error_messages(text, message):
    assert message in error(text)


def test_errors_are_raised_without_a_chained_context():
    for text in ("$c // 0", "$w[7]", "$c *", "$flag + 1", "9 ** 9 ** 9"):
        with pytest.raises(E) as e:
            ev(text)
        assert e.value.__context__ is None and e.value.__cause__ is None


def test_fail_is_called_per_evaluation():
    class Other(Exception):
        pass

    with pytest.raises(E):
        evaluate("$c // 0", ENV, fail)
    with pytest.raises(Other):  # the cached compiled form does not keep the first caller's fail
        evaluate("$c // 0", ENV, Other)


def test_non_text_fails_cleanly():
    for value in (None, 3, ["$c"], {"a": "$c"}):
        with pytest.raises(E, match="an expression is text"):
            evaluate(value, ENV, fail)


# ---------------------------------------------------------------- bounds


def test_limits_are_named_and_documented():
    assert set(LIMITS) == {"expr_chars", "expr_nodes", "magnitude", "exponent"}
    for name in LIMITS:
        assert name in expr.__doc__


def test_power_tower_fails_at_once():
    assert "exponent 387420489 is too large" in error("9**9**9**9")
    assert "too large" in error("9**9**9**9**9**9**9**9**9**9")
    assert "too large" in error("2 ** 64")               # 1.8e19 > 10**18, refused before computing
    assert "too large" in error("(10 ** 18) ** 64")
    assert "too large" in error("$c ** 21")               # 2**63
    assert ev("$x ** 64") == 1.5 ** 64
    assert ev("(-1) ** 63") == -1
    assert ev("1 ** 64") == 1
    assert ev("2 ** 59") == 2 ** 59
    assert "too large" in error("0.5 ** -64")             # 1.8e19
    assert "too large" in error("1e-18 ** -64")           # float overflow
    assert "too large" in error("10 ** 19")


def test_magnitude():
    assert ev("10 ** 18") == 10 ** 18
    assert ev("1000000000000000000") == 10 ** 18
    assert "too large" in error("1000000000000000001")
    assert "too large" in error("10 ** 18 + 1")
    assert "too large" in error("-10 ** 18 - 1")
    assert "too large" in error("1" + "0" * 400)          # a 10**400 literal
    assert "too large" in error("10 ** 400")
    assert "too large" in error("1e400")                   # a float literal that is inf
    assert "too large" in error("1e300 * 1e300")
    assert "too large" in error("1e18 / 1e-300")          # inf
    assert "too large" in error("$c * 10 ** 18")
    assert "10**18" in error("$c * 10 ** 18")
    big = {"b": 10 ** 400, "h": 10 ** 5000, "inf": math.inf, "nan": math.nan, "fl": 1e300}
    for text in ("$b * 1", "$b + $b", "$h - 1", "$inf + 1", "$fl * 1", "$b ** 2", "$b == 1", "$b < 1", "$w[$b]",
                 "ceil($inf)", "make_divisible($b)", "min($b, 1)"):
        message = error(text, {**ENV, **big})
        assert "too large" in message, message
    assert "nan" in error("$nan * 1", {"nan": math.nan})
    assert ev("$b", big) == 10 ** 400  # passed through untouched: only arithmetic is bounded


def test_long_and_deep_texts_fail():
    assert "too long" in error("1+" * 2999 + "1")         # a 3,000-term sum
    assert "too long" in error("(" * 500 + "$c" + ")" * 500)
    assert "cannot read" in error("(" * 400 + "$c" + ")" * 400)  # the parser's own nesting limit
    assert "too long" in error("$c" + " " * 5000)
    assert "too long" in error("$" + "a" * 5000)          # even a single $name
    assert "too complex" in error("+".join(["$c"] * 150))  # under 1,000 characters, over 200 terms
    assert "too complex" in error("-" * 300 + "$c")
    assert "too complex" in error("not " * 220 + "$flag")
    assert "(5999 characters)" in error("1+" * 2999 + "1")


def test_within_limits_is_fine():
    assert ev("+".join(["$c"] * 100)) == 800
    assert ev("(" * 150 + "$c" + ")" * 150) == 8
    assert ev("-" * 100 + "$c") == 8


def test_raised_limits_apply(monkeypatch):
    text = "+".join(["1"] * 150)
    assert "too complex" in error(text)
    assert "too long" in error(text + " " * 1000)
    monkeypatch.setitem(LIMITS, "expr_chars", 10_000)
    monkeypatch.setitem(LIMITS, "expr_nodes", 2_000)
    assert ev(text) == 150  # a failed text is not cached: raising the limits lets it through
    assert ev(text + " " * 1000) == 150
    monkeypatch.setitem(LIMITS, "magnitude", 10 ** 40)
    monkeypatch.setitem(LIMITS, "exponent", 128)
    assert ev("2 ** 100") == 2 ** 100
    assert ev("10 ** 40") == 10 ** 40
    assert "too large" in error("10 ** 41")
    assert "10**40" in error("10 ** 41")
    assert "exponent 129" in error("1 ** 129")


def test_raised_limits_do_not_let_recursion_escape(monkeypatch):
    monkeypatch.setitem(LIMITS, "expr_chars", 10 ** 6)
    monkeypatch.setitem(LIMITS, "expr_nodes", 10 ** 6)
    for text in ("1+" * 20000 + "1", "-" * 20000 + "1", "not " * 20000 + "True", "(" * 500 + "1" + ")" * 500):
        with pytest.raises(E, match="nested too deeply|cannot read"):
            ev(text)


# ---------------------------------------------------------------- cache and has_dollar


def test_cache_keeps_texts_independent_of_env():
    assert evaluate("$a * 2", {"a": 3}, fail) == 6
    assert evaluate("$a * 2", {"a": 5}, fail) == 10
    assert evaluate("$a", {"a": "x"}, fail) == "x"
    with pytest.raises(E, match="unknown argument"):
        evaluate("$a * 2", {"b": 1}, fail)
    with pytest.raises(E, match="not a number"):
        evaluate("$a * 2", {"a": "x"}, fail)


def test_cache_is_bounded():
    for i in range(5000):
        assert evaluate(f"$a + {i}", {"a": 1}, fail) == i + 1
    assert len(expr._CACHE) <= 4096


@pytest.mark.parametrize("value, found", [
    ("$c", True), ("c", False), ("", False), (3, False), (None, False), (True, False),
    ({"a": 1, "b": "x"}, False), ({"a": 1, "b": "$x"}, True), ({"$k": 1}, False),
    ([1, [2, [3, ["$d"]]]], True), ([1, [2, [3, ["d"]]]], False), ([{"a": [{"b": "$e"}]}], True),
    (("$t",), False),  # only dicts and lists are looked into
])
def test_has_dollar(value, found):
    assert has_dollar(value) is found


def test_has_dollar_deep_and_cyclic():
    deep: list = ["$x"]
    for _ in range(100_000):
        deep = [deep]
    assert has_dollar(deep) is True
    cyclic: list = [1]
    cyclic.append(cyclic)
    assert has_dollar(cyclic) is False
    cyclic.append({"k": "$y"})
    assert has_dollar(cyclic) is True


def test_module_imports_only_the_standard_library():
    tree = ast.parse(Path(expr.__file__).read_text())
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert imported <= {"__future__", "ast", "itertools", "math", "operator", "re", "typing", "warnings"}
    assert not any(isinstance(n, ast.ImportFrom) and n.level for n in ast.walk(tree))


# ---------------------------------------------------------------- properties


def check_outcome(text: str, env) -> None:
    """evaluate returns, or raises E with a one-line message quoting the text; nothing else."""
    try:
        evaluate(text, env, fail)
    except E as e:
        message = str(e)
        assert "\n" not in message
        assert quoted(text) in message, message
        assert "cannot evaluate" not in message, message  # the safety net is for odd objects only


VALUES = st.one_of(
    st.integers(), st.integers(-10, 10), st.floats(), st.booleans(), st.none(), st.text(max_size=5),
    st.lists(st.integers(-5, 5), max_size=4), st.lists(st.text(max_size=3), max_size=3),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2), st.sampled_from([10 ** 400, 2 ** 63, 1e308]),
)
ENVS = st.dictionaries(st.sampled_from(["a", "b", "w", "in", "s"]), VALUES, max_size=5)

LEAVES = st.one_of(
    st.integers(-1000, 1000).map(str), st.integers().map(str), st.floats(allow_nan=False).map(repr),
    st.sampled_from(["$a", "$b", "$w", "$in", "$s", "$zz", "True", "false", "'relu'", '"none"', "mid", "1e400",
                     "10**18", "0", "0.0", "-1"]),
)


def extend(children):
    binary = st.sampled_from(["+", "-", "*", "/", "//", "%", "**", "==", "!=", "<", "<=", ">", ">=", "and", "or"])
    unary = st.sampled_from(["-", "+", "not ", ""])
    function = st.sampled_from(["ceil", "floor", "round", "int", "abs", "min", "max", "make_divisible", "len"])
    return st.one_of(
        st.tuples(children, binary, children).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(unary, children).map(lambda t: f"{t[0]}{t[1]}"),
        st.tuples(function, st.lists(children, max_size=3)).map(lambda t: f"{t[0]}({', '.join(t[1])})"),
        st.tuples(children, children).map(lambda t: f"make_divisible({t[0]}, divisor={t[1]})"),
        children.map(lambda c: f"$w[{c}]"),
    )


EXPRESSIONS = st.recursive(LEAVES, extend, max_leaves=25)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60), ENVS)
def test_any_text_returns_or_fails_cleanly(text, env):
    check_outcome(text, env)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="$abwin_()[]+-*/%<>=!.,'0123456789 ", max_size=40), ENVS)
def test_any_expression_like_text_returns_or_fails_cleanly(text, env):
    check_outcome(text, env)


@settings(max_examples=200, deadline=None)
@given(EXPRESSIONS, ENVS)
def test_any_expression_tree_returns_or_fails_cleanly(text, env):
    check_outcome(text, env)


SMALL = st.recursive(
    st.integers(-1000, 1000).map(str),
    lambda c: st.tuples(c, st.sampled_from(["+", "-", "*", "//", "%"]), c).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(SMALL)
def test_integer_arithmetic_agrees_with_python(text):
    try:
        want = eval(text)  # noqa: S307 - digits, parentheses and + - * // % only
    except ZeroDivisionError:
        with pytest.raises(E, match="division by zero"):
            ev(text)
        return
    try:
        got = ev(text)
    except E as e:
        assert "too large" in str(e)  # an intermediate beyond 10**18 that Python's big ints allow
        return
    assert got == want and type(got) is int
