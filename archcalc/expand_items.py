"""A layer item as written: `type`, `type: {args}` or `type name: {args}` read as its type, label
and value, and the item keys (`times`, `first`, `when`, `from`) taken out of its arguments. The
walk (expand.py) decides what the item is; this module only reads how it is written."""
from __future__ import annotations

import re

SCOPES = ("aux", "group")
ITEM_KEYS = ("times", "first", "when", "from")  # keys of a layer item that are not rule arguments
_ITEM_KEYS = frozenset(ITEM_KEYS)


def _split(raw, fail, subst):
    """(type, label, value) of a layer item: `type`, `type: {args}` or `type name: {args}`."""
    if isinstance(raw, str):
        key, value = raw, None
    elif isinstance(raw, dict) and len(raw) == 1:
        key, value = next(iter(raw.items()))
    else:
        raise fail("a layer is written `type`, `type: {args}` or `type name: {args}`")
    if not isinstance(key, str):
        raise fail(f"a layer type is a word, got {key!r}")
    parts = key.split()
    if not parts or len(parts) > 2:
        raise fail(f"cannot read layer {key!r}: write `type` or `type name`")
    type_name = parts[0]
    if type_name.startswith("$"):  # a block argument naming a layer type or block
        type_name = subst(type_name)
        if not isinstance(type_name, str) or not type_name:
            raise fail(f"{parts[0]} must name a layer type or block, got {type_name!r}")
    label = parts[1] if len(parts) == 2 else None
    if label is not None:
        if "/" in label:
            raise fail(f"layer name {label!r} cannot contain '/'")
        if label[0].isdigit():
            label = f"{type_name}_{label}"  # `inception 3a` -> inception_3a
    return type_name, label, value


def _item_keys(value, type_name: str, fail):
    """(arguments, times, first, when, from) of a layer or block call."""
    if value is None:
        return {}, 1, {}, True, None
    if not isinstance(value, dict):
        raise fail(f"arguments of {type_name} must be a mapping, got {value!r}")
    if _ITEM_KEYS.isdisjoint(value):  # the common case: rule arguments only, nothing to take out
        return value, 1, {}, True, None
    args = dict(value)
    times = args.pop("times", 1)
    first = args.pop("first", {}) or {}
    when = args.pop("when", True)
    source = args.pop("from", None)
    if isinstance(times, bool) or not isinstance(times, int) or times < 0:
        raise fail(f"times must be a whole number (0 leaves the layer out), got {times!r}")
    if not isinstance(first, dict):
        raise fail("first must be a mapping of arguments for the first repetition")
    if not isinstance(when, bool):
        raise fail(f"when must be a condition that is true or false, got {when!r}")
    return args, times, first, when, source


_INDEX = re.compile(r"\$i\b")


def _uses_index(value: dict) -> bool:
    """Whether an item's arguments (besides times/first/when/from) mention `$i`."""
    text = repr(value if _ITEM_KEYS.isdisjoint(value) else {k: v for k, v in value.items() if k not in _ITEM_KEYS})
    return "$i" in text and _INDEX.search(text) is not None
