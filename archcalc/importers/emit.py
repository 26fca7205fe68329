"""Writing imported items as spec YAML, laid out like the bundled specs: one flow mapping per row,
the arguments most rows share stated once under ``defaults:``, identical rows in a row as ``times:``."""
from __future__ import annotations

from collections import Counter

from ..rules import lookup
from .structure import Item

DEFAULTABLE = {"conv": ("bias", "bn", "act"), "dwconv": ("bias", "bn", "act"), "fc": ("bias", "act")}


def _scalar(v) -> str:
    if v is None:
        return "~"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):  # 7 significant digits: float32 attributes and sums read as written
        s = repr(float(f"{v:.7g}"))
        mant, _, exp = s.partition("e")
        return s if not exp or "." in mant else f"{mant}.0e{exp}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_scalar(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {_scalar(x)}" for k, x in v.items()) + "}"
    return str(v)


def _text(s: str) -> str:
    """A string as a plain YAML scalar when it reads back as itself, else double-quoted."""
    import json

    import yaml

    try:
        if yaml.safe_load(f"k: {s}") == {"k": s}:
            return s
    except yaml.YAMLError:
        pass
    return json.dumps(s)


def _walk(items: list[Item]):
    for it in items:
        if it.layer is not None:
            yield it.layer
        for b in it.branches.values():
            yield from _walk(b)


def choose_defaults(lists: list[list[Item]]) -> dict[str, dict]:
    """Per type, the value of bias/bn/act (and add's inplace) that most rows have, when it is not the rule's."""
    seen: dict[tuple, Counter] = {}
    for items in lists:
        for n in _walk(items):
            for key in DEFAULTABLE.get(n.type, ("inplace",) if n.type == "add" else ()):
                rule_default = lookup(n.type).defaults[key]
                seen.setdefault((n.type, key), Counter())[repr(n.args.get(key, rule_default))] += 1
    out: dict[str, dict] = {}
    for (t, key), counts in seen.items():
        (value, c), total = counts.most_common(1)[0], sum(counts.values())
        rule_default = lookup(t).defaults[key]
        if value != repr(rule_default) and (c * 2 > total or t == "add"):
            out.setdefault(t, {})[key] = {"True": True, "False": False}.get(value, value.strip("'"))
    return out


class Writer:
    def __init__(self, defaults: dict[str, dict]):
        self.defaults = defaults
        self.lines: list[str] = []

    def shown(self, t: str, args: dict) -> dict:
        r = lookup(t)
        if r is None:  # a block call
            return args
        base = r.defaults | self.defaults.get(t, {})
        return {k: v for k, v in args.items() if k not in base or v != base[k] or isinstance(v, str) and v.startswith("$")}

    def items(self, items: list[Item], ind: int) -> None:
        pad = " " * ind
        i = 0
        while i < len(items):
            it = items[i]
            if it.layer is None:
                self.lines.append(f"{pad}- from: {it.ref}")
                i += 1
                continue
            n = it.layer
            key = n.type + (f" {it.label}" if it.label else "")
            if it.is_merge:
                self.lines.append(f"{pad}- {key}:")
                for name, b in it.branches.items():
                    if not b:
                        self.lines.append(f"{pad}    {name}: []")
                    elif len(b) == 1 and not b[0].is_merge and b[0].layer is not None and not b[0].label:
                        args = self.shown(b[0].layer.type, b[0].layer.args)
                        row = f"{b[0].layer.type}: {_scalar(args)}" if args else b[0].layer.type
                        self.lines.append(f"{pad}    {name}: [{row}]")
                    else:
                        self.lines.append(f"{pad}    {name}:")
                        self.items(b, ind + 6)
                i += 1
                continue
            args = self.shown(n.type, n.args)
            j = i + 1
            while (j < len(items) and not it.label and items[j].layer is not None and not items[j].is_merge
                   and not items[j].label and items[j].layer.type == n.type and items[j].layer.args == n.args
                   and lookup(n.type) is not None and "times" not in args):
                j += 1
            if j - i > 1:
                args = args | {"times": j - i}
            if isinstance(args, list):
                self.lines.append(f"{pad}- {key}: {_scalar(args)}")
            else:
                self.lines.append(f"{pad}- {key}: {_scalar(args)}" if args else f"{pad}- {key}")
            i = j


def emit(*, name: str, source: str, input_shape: tuple, items: list[Item], blocks: dict) -> str:
    defaults = choose_defaults([items] + [b["body"] for b in blocks.values()])
    w = Writer(defaults)
    w.lines += [f"name: {_text(name)}", f"source: {_text(source)}", f"input: {_scalar(list(input_shape))}",
                "rounding: floor   # the framework floors output sizes"]
    if defaults:
        w.lines.append("defaults:")
        w.lines += [f"  {t}: {_scalar(d)}" for t, d in defaults.items()]
    if blocks:
        w.lines.append("blocks:")
        for bname, b in blocks.items():
            w.lines += [f"  {bname}:", f"    args: {_scalar(b['args'])}", "    body:"]
            w.items(b["body"], 6)
    w.lines.append("layers:")
    w.items(items, 2)
    return "\n".join(w.lines) + "\n"
