"""Bounded evaluation of the `$argument` expressions in block bodies (`out: $mid * 4`).

A text that is exactly one `$name` (surrounding blanks allowed) is the argument's value itself,
whatever its type: a list, a mapping, a string, a bool, a number.

Anything else is an expression over numbers:

- int and float literals, `$arguments`, `+ - * / // % **`, unary `-` and `+`, parentheses;
- comparisons `== != < <= > >=`, chains included (`0 < $k <= 7`), giving True or False;
  `==` and `!=` also compare strings ('relu' or "relu"), bools and None arguments, so
  `$act != 'none'` works; a string literal may appear nowhere else;
- `and`, `or`, `not` on True/False only (short-circuit, as in Python); `True False true false`;
- `$widths[2]`: one integer index, negative allowed, into a list argument (its item as it is);
- functions `ceil(x) floor(x) round(x) int(x) abs(x) min(a, ...) max(a, ...)`, all giving
  numbers; `ceil`, `floor`, `round` and `int` give an int (an int argument is returned as it
  is); `round` is Python's: halves go to the even neighbour (`round(2.5) == 2`,
  `round(3.5) == 4`); `int` truncates toward zero (`int(-2.7) == -2`);
- `make_divisible(v, divisor=8, min_value=None)`, torchvision's `_make_divisible` (MobileNet,
  EfficientNet widths): the multiple of `divisor` nearest to `v` (halves up), at least
  `min_value` (default: `divisor`), plus one more `divisor` when that rounding lost more than
  10% of `v`. `divisor=` and `min_value=` may be given by keyword; no other function takes one.

Every arithmetic result that is a whole float becomes an int (`$c / 2` with c = 96 is 48); a
bool is never a number (`$flag * 2` is an error). Every problem with the text, the arguments
or the arithmetic is reported as `raise fail(message)`, the message one line quoting the
text: nothing else escapes, whatever the text and the argument values.

Bounds, in `LIMITS` (a caller may raise them by assigning to the dict):

- ``expr_chars`` (1000): longest text; checked before anything else, so a huge text costs
  nothing to reject.
- ``expr_nodes`` (200): most expression nodes (literals, names, operations, calls, keyword
  arguments) after parsing. With the text length it bounds the parser's and the
  interpreter's recursion and the work of one evaluation. Texts over this limit, and texts
  the parser refuses as too deep, fail as "too complex" or "nested too deeply".
- ``magnitude`` (10**18): largest absolute value of any literal, any number argument used in
  arithmetic and any intermediate or final result, int or float. Int operands therefore have
  at most ~60 bits and every operation costs a constant.
- ``exponent`` (64): largest absolute exponent of `**`, which must be an int. The size of a
  power is estimated from the logarithm before it is computed, so `9**9**9**9` fails at once.

Texts are parsed once: each distinct text is cached (up to 4096 of them; the cache restarts
when full) as the argument name for a `$name` text, or as a tree of closures compiled from the
validated syntax tree. Limits on the text itself apply when it is first compiled.
"""
from __future__ import annotations

import ast
import itertools
import math
import operator
import re
import warnings
from typing import Callable, Mapping

__all__ = ["LIMITS", "evaluate", "has_dollar"]

LIMITS: dict = {
    "expr_chars": 1000,
    "expr_nodes": 200,
    "magnitude": 10**18,
    "exponent": 64,
}

_VAR = re.compile(r"\$([A-Za-z_]\w*)")
# A `$` that starts no name (`$`, `$1`, `$$`), or one glued to a word before it (`$c$c`, `x$c`):
# substitution would fuse such a text into one identifier that means something else.
_STRAY_DOLLAR = re.compile(r"\$(?![A-Za-z_])|[\w$]\$")

_ARITH = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
          ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod}
_COMPARE = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
            ast.Gt: operator.gt, ast.GtE: operator.ge}
_ONE_ARG = {"abs": abs, "ceil": math.ceil, "floor": math.floor, "int": int, "round": round}
_FUNCTIONS = "abs, ceil, floor, int, make_divisible, max, min, round"
_ALLOWED = f"numbers, $arguments, + - * / // % **, comparisons, and/or/not, $list[i] and {_FUNCTIONS}"
_CONSTRUCTS = {ast.Attribute: "attribute access", ast.Lambda: "lambda", ast.NamedExpr: ":=", ast.IfExp: "if/else",
               ast.JoinedStr: "an f-string", ast.ListComp: "a comprehension", ast.SetComp: "a comprehension",
               ast.DictComp: "a comprehension", ast.GeneratorExp: "a comprehension", ast.List: "a list",
               ast.Tuple: "a tuple", ast.Dict: "a mapping", ast.Set: "a set", ast.Starred: "*"}

# What a compiled node gives, known before any argument is seen. An argument or a list item
# (_ANY) is checked when it is used; the others are checked once, when the text is compiled.
_NUM, _BOOL, _STR, _ANY = "number", "true or false", "string", "any"

_CACHE_SIZE = 4096
_CACHE: dict = {}  # text -> the argument name of a `$name` text, or (names, run) of an expression


class _Fail(Exception):
    """A problem with the user's text found while compiling or running it; becomes fail(message)."""


def evaluate(text: str, env: Mapping[str, object], fail: Callable[[str], Exception]) -> object:
    """'$c' -> the argument's value (any type); '$mid * 4' -> the value of the expression.

    Raises fail(message) for every problem with the text or the arguments it uses.
    """
    entry = _CACHE.get(text) if isinstance(text, str) else None
    if entry is None:
        if not isinstance(text, str):
            raise fail(f"an expression is text, not {_show(text)}")
        entry = _prepare(text)
    if entry.__class__ is str:  # the common `$c`
        if entry in env:
            return env[entry]
        raise fail(_unknown(entry, env, text))
    names, run = entry
    for name in names:  # every argument is checked, even one a short-circuit would skip
        if name not in env:
            raise fail(_unknown(name, env, text))
    if isinstance(run, str):  # the text does not compile: the message
        raise fail(run)
    try:
        return run(env)
    except _Fail as e:
        message = e.args[0]
    except RecursionError:  # only when a caller raised the limits far beyond the defaults
        message = f"expression {_quote(text)} is nested too deeply"
    except Exception as e:  # noqa: BLE001 - a safety net for odd argument objects; plain values never get here
        message = f"cannot evaluate {_quote(text)} ({type(e).__name__})"
    raise fail(message)  # outside the handler: the user's error is not "during handling" of ours


def has_dollar(value) -> bool:
    """True if `value` is a str with a `$`, or a dict or list holding one at any depth."""
    if isinstance(value, str):
        return "$" in value
    if not isinstance(value, (dict, list)):
        return False
    # A loop rather than recursion: YAML nests arbitrarily deep, and aliases can make cycles.
    stack, seen = [value], {id(value)}
    while stack:
        v = stack.pop()
        for x in (v.values() if isinstance(v, dict) else v):
            if isinstance(x, str):
                if "$" in x:
                    return True
            elif isinstance(x, (dict, list)) and id(x) not in seen:
                seen.add(id(x))
                stack.append(x)
    return False


# ---------------------------------------------------------------- compiling a text


def _prepare(text: str):
    """The cache entry for `text`: a name, (names, closure), or (names, error message) uncached."""
    if len(text) > LIMITS["expr_chars"]:
        return (), f"expression {_quote(text)} is too long: {len(text)} characters (limit {LIMITS['expr_chars']})"
    whole = _VAR.fullmatch(text.strip())
    entry = whole.group(1) if whole else _compile_text(text)
    if isinstance(entry, tuple) and isinstance(entry[1], str):
        return entry  # errors are not cached: a caller may raise the limits and try again
    if len(_CACHE) >= _CACHE_SIZE:
        _CACHE.clear()  # cheaper than LRU bookkeeping on every hit; the hot texts come back at once
    _CACHE[text] = entry
    return entry


def _compile_text(text: str):
    q = _quote(text)
    found = _VAR.findall(text)
    names = tuple(dict.fromkeys(found))
    if _STRAY_DOLLAR.search(text):
        return names, (f"cannot read expression {q}: each $ must start an argument name (like $c), "
                       "apart from the word before it")
    # `$name` becomes a Python identifier (`$in` is not a valid one: `in` is a keyword). The
    # prefix occurs nowhere in the text, so every identifier carrying it is a substituted $name.
    prefix = "_arg_"
    while prefix in text:
        prefix = "_" + prefix
    source = _VAR.sub(lambda m: prefix + m.group(1), text).strip()
    try:
        with warnings.catch_warnings():  # e.g. invalid escapes in strings: not our user's concern
            warnings.simplefilter("ignore")
            tree = ast.parse(source, mode="eval")
    except (RecursionError, MemoryError):
        return names, f"expression {q} is nested too deeply"
    except (SyntaxError, ValueError, OverflowError):
        return names, f"cannot read expression {q}"
    # ast.walk is a loop, not a recursion: safe on any tree the parser returned.
    count = substituted = 0
    for node in ast.walk(tree):
        if isinstance(node, (ast.expr, ast.keyword)):
            count += 1
            if count > LIMITS["expr_nodes"]:
                return names, f"expression {q} is too complex (more than {LIMITS['expr_nodes']} terms)"
        if isinstance(node, ast.Name) and node.id.startswith(prefix):
            substituted += 1
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and prefix in node.value:
            return names, f"a quoted string cannot hold a $argument, in {q}"
    if substituted != len(found):  # a $name swallowed by a comment, or fused by identifier normalization
        return names, f"cannot read expression {q}"
    try:
        run, kind = _Compiler(q, source, prefix).compile(tree.body)
        if kind is _STR:
            raise _Fail(f"the string {ast.get_source_segment(source, tree.body)} in {q} "
                        "can only be compared with == or !=")
    except _Fail as e:
        return names, e.args[0]
    except RecursionError:
        return names, f"expression {q} is nested too deeply"
    return names, run


# ---------------------------------------------------------------- a syntax tree to closures
# _Compiler.compile dispatches on the node's type; the operators and the functions are compiled by
# the classes it is made of, each taking its operands as _Operands compiles them.


class _Operands:
    """A node compiled (by _Compiler.compile) as the operand an operation takes: a number, true or
    false, or a scalar for == and !=; what no argument value could make valid is refused here, at
    compile time. And the node as the user wrote it, for messages."""

    def __init__(self, q: str, source: str, prefix: str):
        self.q, self.source, self.prefix = q, source, prefix
        # ast.get_source_segment splits the whole source on each call; a one-line text (nearly
        # all) is sliced directly, by the parser's UTF-8 byte offsets.
        self.line = source.encode() if "\n" not in source and "\r" not in source else None

    def desc(self, node) -> str:
        """The node as the user wrote it, for messages."""
        if self.line is not None:
            seg = self.line[node.col_offset:node.end_col_offset].decode(errors="replace")
        else:
            seg = ast.get_source_segment(self.source, node)
        return seg.replace(self.prefix, "$") if seg else "a value"

    def not_allowed(self, node):
        what = _CONSTRUCTS.get(type(node)) or repr(self.desc(node))
        return _raise(f"{what} is not allowed in {self.q}; expressions take {_ALLOWED}")

    def number(self, node):
        fn, kind = self.compile(node)
        if kind is _NUM:
            return fn
        desc, q = self.desc(node), self.q
        if kind is _ANY:
            return lambda env: _number(fn(env), desc, q)
        if kind is _STR:
            return _raise(f"the string {desc} in {q} can only be compared with == or !=")
        return _raise(f"{desc} is true or false, not a number, in {q}")

    def truth(self, node):
        fn, kind = self.compile(node)
        if kind is _BOOL:
            return fn
        desc, q = self.desc(node), self.q
        if kind is _ANY:
            return lambda env: _truth(fn(env), desc, q)
        if kind is _STR:
            return _raise(f"the string {desc} in {q} can only be compared with == or !=")
        return _raise(f"{desc} is a number, not true or false, in {q}")

    def scalar(self, node):
        fn, kind = self.compile(node)
        if kind is not _ANY:
            return fn
        desc, q = self.desc(node), self.q
        return lambda env: _scalar(fn(env), desc, q)


class _Operators(_Operands):
    """Arithmetic, `**`, `and`/`or`, comparisons and `$list[i]`, each compiled to a closure."""

    def binop(self, node):
        q, desc = self.q, self.desc(node)
        if isinstance(node.op, ast.Pow):
            return self.power(node)
        op = _ARITH.get(type(node.op))
        if op is None:
            return _raise(f"{desc!r} uses an operator that is not allowed, in {q}; operators: + - * / // % **")
        left, right = self.number(node.left), self.number(node.right)

        def arith(env):
            a, b = left(env), right(env)
            try:
                v = op(a, b)
            except ZeroDivisionError:
                raise _Fail(f"division by zero in {q}") from None
            except OverflowError:  # int / int beyond a float: the magnitude limit was raised
                raise _Fail(_too_large(desc, q)) from None
            return _checked(v, desc, q)
        return arith

    def power(self, node):
        q, desc = self.q, self.desc(node)
        left, right = self.number(node.left), self.number(node.right)

        def power(env):
            a, b = left(env), right(env)
            if b.__class__ is not int:
                raise _Fail(f"exponent {_show(b)} is not an integer in {q}")
            if abs(b) > LIMITS["exponent"]:
                raise _Fail(f"exponent {_show(b)} is too large in {q}")
            # Size from logarithms before computing: |a|**b has about b*log2|a| bits. Within
            # one bit of the limit, the exact check after computing decides.
            if b > 1 and abs(a) > 1 and b * math.log2(abs(a)) > math.log2(max(LIMITS["magnitude"], 1)) + 1:
                raise _Fail(_too_large(desc, q))
            try:
                v = a ** b
            except ZeroDivisionError:  # 0 ** -1
                raise _Fail(f"division by zero in {q}") from None
            except OverflowError:
                raise _Fail(_too_large(desc, q)) from None
            return _checked(v, desc, q)
        return power

    def boolop(self, node):
        parts = [self.truth(v) for v in node.values]
        if isinstance(node.op, ast.And):
            def both(env):
                for part in parts:
                    if not part(env):
                        return False
                return True
            return both

        def either(env):
            for part in parts:
                if part(env):
                    return True
            return False
        return either

    def compare(self, node):
        ops = [_COMPARE.get(type(op)) for op in node.ops]
        if None in ops:
            return _raise(f"only == != < <= > >= compare, in {self.q}")
        # Strings, bools and None compare only for (in)equality; ordering is for numbers.
        equality = all(isinstance(op, (ast.Eq, ast.NotEq)) for op in node.ops)
        operand = self.scalar if equality else self.number
        first, *others = [operand(n) for n in (node.left, *node.comparators)]
        pairs = list(zip(ops, others))

        def compare(env):
            a = first(env)
            for op, fn in pairs:
                b = fn(env)
                if not op(a, b):
                    return False
                a = b
            return True
        return compare

    def subscript(self, node):
        q, what = self.q, self.desc(node.value)
        if isinstance(node.slice, (ast.Slice, ast.Tuple)):
            return _raise(f"{self.desc(node)} in {q}: a list takes one integer index, like $widths[0]")
        base, kind = self.compile(node.value)
        if kind is not _ANY:
            return _raise(f"{what} is not a list, in {q}")
        index = self.number(node.slice)

        def item(env):
            seq = base(env)
            if not isinstance(seq, (list, tuple)):
                raise _Fail(f"{what} is {_show(seq)}, not a list, in {q}")
            i = index(env)
            if i.__class__ is not int:
                raise _Fail(f"index {_show(i)} of {what} is not an integer, in {q}")
            n = len(seq)
            if -n <= i < n:
                return seq[i]
            raise _Fail(f"{what} has no item {i}: it has {n}, in {q}")
        return item


class _Calls(_Operands):
    """The functions: ceil, floor, round, int and abs of one number, min and max of several, and
    make_divisible with its keywords."""

    def call(self, node):
        q, desc = self.q, self.desc(node)
        func = node.func
        name = func.id if isinstance(func, ast.Name) else None
        if name is None or name.startswith(self.prefix):
            return _raise(f"{self.desc(func)} is not a function, in {q}; functions: {_FUNCTIONS}")
        if name not in _ONE_ARG and name not in ("min", "max", "make_divisible"):
            return _raise(f"unknown function {name}() in {q}; functions: {_FUNCTIONS}")
        if any(isinstance(a, ast.Starred) for a in node.args):
            return _raise(f"{name}() takes no *arguments, in {q}")
        if name == "make_divisible":
            return self.make_divisible(node)
        if node.keywords:
            return _raise(f"{name}() takes no keyword arguments, in {q}")
        args = [self.number(a) for a in node.args]
        if name in _ONE_ARG:
            if len(args) != 1:
                return _raise(f"{name}() takes one number, got {len(args)}, in {q}")
            f, (arg,) = _ONE_ARG[name], args
            return lambda env: _checked(f(arg(env)), desc, q)
        if not args:
            return _raise(f"{name}() takes at least one number, in {q}")
        pick = min if name == "min" else max
        return lambda env: pick([a(env) for a in args])

    def make_divisible(self, node):
        q, desc = self.q, self.desc(node)
        params = ("v", "divisor", "min_value")
        if len(node.args) > len(params):
            return _raise(f"make_divisible() takes at most 3 arguments (v, divisor, min_value), in {q}")
        given = dict(zip(params, node.args))
        for kw in node.keywords:
            if kw.arg not in params[1:]:
                shown = "**" if kw.arg is None else kw.arg + "="
                return _raise(f"make_divisible() takes keywords divisor= and min_value=, not {shown}, in {q}")
            if kw.arg in given:
                return _raise(f"make_divisible() got {kw.arg} twice, in {q}")
            given[kw.arg] = kw.value
        if "v" not in given:
            return _raise(f"make_divisible() needs a value to round, in {q}")
        value = self.number(given["v"])
        divisor = self.number(given["divisor"]) if "divisor" in given else _const(8)
        minimum = self.optional_number(given["min_value"]) if "min_value" in given else _const(None)

        def make_divisible(env):
            v, d, m = value(env), divisor(env), minimum(env)
            if d.__class__ is not int or d <= 0:
                raise _Fail(f"the divisor of make_divisible must be a positive integer, not {_show(d)}, in {q}")
            return _checked(_make_divisible(v, d, m), desc, q)
        return make_divisible

    def optional_number(self, node):
        """min_value: a number, or an argument that is None (`args: {min: ~}`) for the default."""
        fn, kind = self.compile(node)
        if kind is not _ANY:
            return self.number(node)
        desc, q = self.desc(node), self.q

        def optional(env):
            v = fn(env)
            return None if v is None else _number(v, desc, q)
        return optional


def _make_divisible(v, divisor: int, min_value=None):
    """torchvision.models._utils._make_divisible."""
    if min_value is None:
        min_value = divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:  # rounding down must not lose more than 10%
        new_v += divisor
    return new_v


class _Compiler(_Operators, _Calls):
    """Turns a validated syntax tree into closures env -> value, checking what it can up front.

    Closures, rather than walking the tree on each call, because a block repeated many times
    evaluates the same few texts thousands of times.
    """

    def compile(self, node):
        """(closure, kind) for `node`; raises _Fail for what no argument value could make valid."""
        q = self.q
        if isinstance(node, ast.Constant):
            v = node.value
            if v is True or v is False:
                return _const(v), _BOOL
            if v.__class__ in (int, float):
                return _const(_checked(v, self.desc(node), q)), _NUM
            if v.__class__ is str:
                return _const(v), _STR
            return self.not_allowed(node)
        if isinstance(node, ast.Name):
            if node.id.startswith(self.prefix):
                return _argument(node.id[len(self.prefix):]), _ANY
            if node.id in ("true", "false"):
                return _const(node.id == "true"), _BOOL
            return _raise(f"{node.id!r} in {q} is not an argument: write ${node.id}")
        if isinstance(node, ast.BinOp):
            return self.binop(node), _NUM
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.Not):
                operand = self.truth(node.operand)
                return (lambda env: not operand(env)), _BOOL
            if isinstance(node.op, (ast.USub, ast.UAdd)):
                operand = self.number(node.operand)
                if isinstance(node.op, ast.UAdd):
                    return operand, _NUM
                return (lambda env: -operand(env)), _NUM  # a checked number negated stays in bounds
        if isinstance(node, ast.BoolOp):
            return self.boolop(node), _BOOL
        if isinstance(node, ast.Compare):
            return self.compare(node), _BOOL
        if isinstance(node, ast.Subscript):
            return self.subscript(node), _ANY
        if isinstance(node, ast.Call):
            return self.call(node), _NUM
        return self.not_allowed(node)


# ---------------------------------------------------------------- values


def _const(v):
    return lambda env: v


def _argument(name: str):
    return lambda env: env[name]  # evaluate() checked every name of the text first


def _raise(message: str):
    raise _Fail(message)


def _checked(v, desc: str, q: str):
    """v (an int or float) within the magnitude limit, a whole float as an int."""
    limit = LIMITS["magnitude"]
    if v.__class__ is int:
        if -limit <= v <= limit:
            return v
    elif -limit <= v <= limit:  # a float; False for nan and the infinities
        return int(v) if v.is_integer() else v
    elif v != v:
        raise _Fail(f"{desc} is not a number (nan) in {q}")
    raise _Fail(_too_large(desc, q))


def _number(v, desc: str, q: str):
    """An argument or list item used as a number: checked, and made a plain int or float."""
    cls = v.__class__
    if cls is int or cls is float:
        return _checked(v, desc, q)
    if cls is not bool and cls is not str:
        # Subclasses, and foreign numbers such as numpy's (int64 has __index__, float64 is a float).
        if isinstance(v, float):
            return _checked(float(v), desc, q)
        if isinstance(v, int) or hasattr(cls, "__index__"):
            try:
                return _checked(operator.index(v), desc, q)
            except Exception:  # noqa: BLE001 - whatever a foreign __index__ raises, it is not a number
                pass
    raise _Fail(f"{desc} is {_show(v)}, not a number, in {q}")


def _truth(v, desc: str, q: str):
    if v is True or v is False:
        return v
    raise _Fail(f"{desc} is {_show(v)}, not true or false, in {q}")


def _scalar(v, desc: str, q: str):
    """An operand of == or !=: a string, bool, None, or number; nothing whose == could surprise."""
    cls = v.__class__
    if v is None or cls is str or cls is bool:
        return v
    if isinstance(v, str):
        return str.__str__(v)  # a plain copy: a subclass's own __eq__ is not ours to run
    if isinstance(v, (list, tuple, dict)):
        raise _Fail(f"{desc} is {_show(v)}; == and != compare numbers, strings and true/false, in {q}")
    return _number(v, desc, q)


def _too_large(desc: str, q: str) -> str:
    limit = LIMITS["magnitude"]
    digits = str(limit) if isinstance(limit, int) and 0 < limit.bit_length() <= 4000 else ""
    shown = f"10**{len(digits) - 1}" if digits.rstrip("0") == "1" else _show(limit)
    return f"{desc} is too large in {q} (numbers are limited to {shown})"


def _show(v, depth: int = 0) -> str:
    """A short rendering of any value for a message, bounded in length and cost."""
    cls = v.__class__
    if v is None or cls is bool or cls is float:
        return repr(v)
    if cls is int:  # str() of a huge int is slow, and refused beyond 4300 digits
        return repr(v) if v.bit_length() <= 128 else f"a {int(v.bit_length() * 0.30103) + 1}-digit number"
    if cls is str:
        return repr(v) if len(v) <= 40 else repr(v[:40]) + "..."
    if isinstance(v, (list, tuple)):
        if depth >= 2:
            return "[...]"
        items = [_show(x, depth + 1) for x in itertools.islice(v, 6)]
        return f"[{', '.join(items)}{', ...' if len(v) > 6 else ''}]"
    if isinstance(v, dict):
        return "a mapping"
    return f"a value of type {cls.__name__}"


def _quote(text: str) -> str:
    """The user's text for a message: one line (repr escapes newlines), cut when long."""
    if len(text) <= 120:
        return repr(text)
    return f"{text[:100]!r}... ({len(text)} characters)"


def _unknown(name: str, env: Mapping, text: str) -> str:
    known = ", ".join(f"${a}" for a in env) or "none here (only block bodies take $arguments)"
    return f"unknown argument ${name}; arguments: {known}; in {_quote(text)}"
