"""What the expansion's walk carries from item to item: the tensor flowing (`Flow`), the scope an
item is read in (`Scope`: its path, defaults, `$arguments`, automatic names), a layer list passed as
a block argument (`Layers`), and the substitution of `$expressions` into an item's values in a
scope's arguments (`subst`, `bind`; the expressions themselves are expr.py's)."""
from __future__ import annotations

from dataclasses import dataclass, field

from .expr import evaluate, has_dollar
from .shape import Shape
from .spec import Map, Seq, line_of


@dataclass(frozen=True, slots=True)
class Flow:
    """The tensor flowing between layers: the node that produced it and its shape."""

    node: int
    shape: Shape


@dataclass
class Scope:
    path: str
    defaults: dict
    env: dict
    file: str
    floor_ok: bool = False  # `rounding: floor`: floored sizes are intended, so they do not warn
    aux: bool = False
    ancestors: tuple = ()  # ((path, kind), ...) of enclosing blocks, branches, groups
    counters: dict = field(default_factory=dict)
    depth: int = 0  # block calls deep

    def child(self, name: str, kind: str, **changes) -> "Scope":
        path = f"{self.path}/{name}" if self.path else name
        base = dict(path=path, defaults=self.defaults, env=self.env, file=self.file, floor_ok=self.floor_ok,
                    aux=self.aux, ancestors=self.ancestors + ((path, kind),), depth=self.depth)
        base.update(changes)
        return Scope(**base)

    def join(self, name: str) -> str:
        return f"{self.path}/{name}" if self.path else name

    def auto_name(self, type_name: str, taken: set, floors: dict | None = None) -> str:
        """The next `typeN` of this scope; numbers a label already took are skipped. ``floors``
        keeps, per scope path and type, a number up to which every name is taken, so a scope
        entered again (a block label used twice) starts there, not at 1: 2,000 calls of
        `widen w` scanned 2 million names."""
        n = self.counters.get(type_name, 0)
        fresh = n == 0 and floors is not None
        if fresh:
            n = floors.get((self.path, type_name), 0)
        while True:
            n += 1
            name = f"{type_name}{n}"
            if self.join(name) not in taken:
                break
        self.counters[type_name] = n
        if fresh:
            floors[(self.path, type_name)] = n - 1
        return name


class Layers(Seq):
    """A layer list passed as a block argument, with the arguments of the scope that wrote it."""

    def __init__(self, items, env: dict):
        super().__init__(items)
        self.env = env
        self.line = line_of(items)
        self.item_lines = getattr(items, "item_lines", [self.line] * len(items))


def subst(value, env: dict, fail):
    """``value`` with every `$expression` evaluated in ``env``; a value without any `$` is returned
    itself (no copy, which would only equal it)."""
    if isinstance(value, str):
        return evaluate(value, env, fail) if "$" in value else value
    if value.__class__ in _ATOMS:  # a number, true/false or ~: most values of a mapping substituted below
        return value
    if value.__class__ is Map:
        for v in value.values():
            if v.__class__ in _NESTED or (v.__class__ is str and "$" in v):
                break
        else:
            return value  # the common case, a mapping of plain words and numbers
    if not has_dollar(value):
        return value
    if isinstance(value, dict):
        out = Map((k, subst(v, env, fail)) for k, v in value.items())
        out.line, out.key_lines = line_of(value), getattr(value, "key_lines", {})
        return out
    if isinstance(value, list):
        out = Seq(subst(v, env, fail) for v in value)
        out.line, out.item_lines = line_of(value), getattr(value, "item_lines", [0] * len(value))
        return out
    return value


def bind(value, env: dict, fail):
    """A block call's arguments, evaluated in the caller's ``env``; a layer list is kept as written,
    with the caller's arguments, and evaluated where the block splices it in (so its `$in` is the
    input at that point, not the caller's)."""
    def one(v):
        if isinstance(v, list) and not isinstance(v, Layers) and any(isinstance(x, dict) for x in v):
            return Layers(v, env)
        return subst(v, env, fail)

    if isinstance(value, dict):
        out = Map((k, bind(v, env, fail) if k == "first" else one(v)) for k, v in value.items())
        out.line, out.key_lines = line_of(value), getattr(value, "key_lines", {})
        return out
    if isinstance(value, list):
        out = Seq(one(v) for v in value)
        out.line, out.item_lines = line_of(value), getattr(value, "item_lines", [0] * len(value))
        return out
    return subst(value, env, fail)


def _input_vars(shape: Shape) -> dict:
    """$in (channels, or the length of a vector), $in_h and $in_w of a block's input."""
    if len(shape) == 3:
        return {"in": shape[0], "in_h": shape[1], "in_w": shape[2]}
    return {"in": shape[0]}


_ATOMS = frozenset((str, int, float, bool, type(None)))
_NESTED = frozenset((Map, Seq, dict, list))
