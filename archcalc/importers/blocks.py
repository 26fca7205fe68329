"""Block recovery: runs of rows that repeat with one structure and different numbers become a block.

A pattern is a run of up to ``MAX_LEN`` items of one layer list (the top level or any branch)
that holds a merge or a block call and starts with a merge or a weighted layer (ResNet's
``add`` then ``relu``; an Inception ``concat``; EfficientNet's ``dwconv``, SE gate, ``conv``).
Patterns are compared by signature (types, branch names, every non-numeric argument) across all
lists at once, the innermost (fewest nested merges) first and the most frequent first, so a
squeeze-and-excitation gate becomes one block that the blocks around it call. Each number that
differs between the occurrences becomes a block argument, one per distinct column of values,
written as a multiple of another where it always is one (a bottleneck's ``$out * 4``); numbers
equal everywhere stay literal. Calls in a row become ``times:``, with ``first:`` when only the
first call differs in a few arguments.
"""
from __future__ import annotations

import copy
from collections import Counter

from . import Layer
from .structure import Item

STRUCTURAL = ("k", "s", "p", "d")  # arguments that get the most common value as their default
MAX_LEN = 6
STARTS = ("conv", "dwconv", "fc")


def _param(v) -> bool:
    if isinstance(v, bool):
        return False
    if isinstance(v, (int, float)):
        return True
    return isinstance(v, (list, tuple)) and all(isinstance(x, int) and not isinstance(x, bool) for x in v)


def signature(items: list[Item]) -> tuple:
    out = []
    for it in items:
        if it.layer is None:
            out.append(("from", it.ref))
            continue
        args = tuple(sorted((k, "#" if _param(v) else repr(v)) for k, v in it.layer.args.items()))
        branches = tuple((name, signature(b)) for name, b in it.branches.items())
        out.append((it.layer.type, args, branches))
    return tuple(out)


def _slots(items: list[Item], found: list) -> list:
    """(layer args dict, key) of every numeric argument, in a fixed order."""
    for it in items:
        if it.layer is None:
            continue
        for k, v in it.layer.args.items():
            if _param(v):
                found.append((it.layer.args, k))
        for b in it.branches.values():
            _slots(b, found)
    return found


def _arguments(columns: list[tuple[str, list]]) -> tuple[list, dict]:
    """For each slot its body value ($name, an expression or the literal), and the block's args."""
    names: dict[str, list] = {}
    body = []
    for key, col in columns:
        if all(v == col[0] for v in col):
            body.append(col[0])
            continue
        same = next((n for n, c in names.items() if c == col), None)
        if same is not None:
            body.append(f"${same}")
            continue
        mult = None
        if all(isinstance(v, int) for v in col):
            for n, c in names.items():
                if all(isinstance(u, int) and u > 0 for u in c) and all(v % u == 0 for v, u in zip(col, c)):
                    ratios = {v // u for v, u in zip(col, c)}
                    if len(ratios) == 1 and ratios != {1}:
                        mult = f"${n} * {ratios.pop()}"
                        break
        if mult is not None:
            body.append(mult)
            continue
        name = key if key not in names else next(f"{key}{i}" for i in range(2, 1000) if f"{key}{i}" not in names)
        names[name] = col
        body.append(f"${name}")
    args = {}
    for n, col in names.items():
        top, count = Counter(map(repr, col)).most_common(1)[0]
        key = n.rstrip("0123456789")
        args[n] = next(v for v in col if repr(v) == top) if key in STRUCTURAL and count * 2 >= len(col) else None
    return body, args | {"__columns__": names}


def _is_call(it: Item) -> bool:
    return it.layer is not None and it.layer.id == -2


def _depth(items: list[Item]) -> int:
    return max((1 + max((_depth(b) for b in it.branches.values()), default=0) for it in items if it.is_merge), default=0)


def _lists(items: list[Item], out: list) -> list[list[Item]]:
    out.append(items)
    for it in items:
        for b in it.branches.values():
            _lists(b, out)
    return out


def _ok(window: list[Item]) -> bool:
    first = window[0]  # a pattern starting with a call only wraps another block: not worth a name
    if first.layer is None or not (first.is_merge or first.layer.type in STARTS):
        return False
    if len(window) == 1:
        return first.is_merge
    return any(it.is_merge or _is_call(it) for it in window)


def _splits_run(items: list[Item], i: int, n: int) -> bool:
    """Would the window items[i:i + n] cut a run of calls of one block (which ``times:`` says better)?"""
    window = items[i:i + n]
    if any(_is_call(a) and _is_call(b) and a.layer.type == b.layer.type for a, b in zip(window, window[1:])):
        return True
    last, after = window[-1], items[i + n] if i + n < len(items) else None
    return after is not None and _is_call(last) and _is_call(after) and after.layer.type == last.layer.type


def _occurrences(lists: list[list[Item]], n: int, key: tuple) -> list[tuple[int, int]]:
    occ = []
    for li, items in enumerate(lists):
        i = 0
        while i + n <= len(items):
            if signature(items[i:i + n]) == key and not _splits_run(items, i, n):
                occ.append((li, i))
                i += n
            else:
                i += 1
    return occ


def _best(lists: list[list[Item]]) -> tuple | None:
    """(length, signature, occurrences) of the pattern to make a block of next, or None."""
    found = {}
    for items in lists:
        for n in range(1, MAX_LEN + 1):
            for i in range(len(items) - n + 1):
                window = items[i:i + n]
                if _ok(window) and not _splits_run(items, i, n):
                    found.setdefault((_depth(window), n, signature(window)), window)
    best, best_rank = None, None
    for depth, n, key in found:
        occ = _occurrences(lists, n, key)
        if len(occ) < 2:
            continue
        rank = (-depth, len(occ), n)
        if best_rank is None or rank > best_rank:
            best, best_rank = (n, key, occ), rank
    return best


def _make_block(name: str, lists: list[list[Item]], n: int, occ: list[tuple[int, int]]) -> dict:
    per = [_slots(lists[li][i:i + n], []) for li, i in occ]
    columns = [(per[0][s][1], [p[s][0][p[s][1]] for p in per]) for s in range(len(per[0]))]
    values, args = _arguments(columns)
    li0, i0 = occ[0]
    body = copy.deepcopy(lists[li0][i0:i0 + n])
    for (d, k), v in zip(_slots(body, []), values):
        d[k] = v
    cols = args.pop("__columns__")
    for pos, (li, i) in sorted(enumerate(occ), key=lambda t: (t[1][0], -t[1][1])):
        call = Item(Layer(-2, name, {a: cols[a][pos] for a in cols}))
        lists[li][i:i + n] = [call]
    return {"args": args, "body": body}


def _compress(items: list[Item], blocks: dict) -> None:
    """Adjacent calls of one block: ``times:`` for equal arguments, ``first:`` when only the
    first call differs in a few arguments, a positional list for a single call with four to six
    (a paper's table row: GoogLeNet's Inception columns); more are clearer by name."""
    out: list[Item] = []
    i = 0
    while i < len(items):
        it = items[i]
        if not _is_call(it):
            for b in it.branches.values():
                _compress(b, blocks)
            out.append(it)
            i += 1
            continue
        name, full = it.layer.type, it.layer.args
        defaults = blocks[name]["args"]
        j = i + 1
        while j < len(items) and _is_call(items[j]) and items[j].layer.type == name and items[j].layer.args == full:
            j += 1
        args = {a: v for a, v in full.items() if defaults[a] is None or v != defaults[a]}
        if j == i + 1 and j < len(items) and _is_call(items[j]) and items[j].layer.type == name:
            nxt = items[j].layer.args
            k = j
            while k < len(items) and _is_call(items[k]) and items[k].layer.type == name and items[k].layer.args == nxt:
                k += 1
            first = {a: v for a, v in full.items() if v != nxt[a]}
            if len(first) <= 2:
                args = {a: v for a, v in nxt.items() if defaults[a] is None or v != defaults[a]}
                args |= {"times": k - i, "first": first}
                j = k
        elif j - i > 1:
            args["times"] = j - i
        if "times" not in args and 3 < len(full) <= 6:
            args = list(full.values())  # positional, in the order of the block's args
        out.append(Item(Layer(-2, name, args)))
        i = j
    items[:] = out


def recover(items: list[Item]) -> tuple[list[Item], dict]:
    """Items with repeated patterns replaced by block calls, and the block definitions."""
    blocks: dict[str, dict] = {}
    while True:
        lists = _lists(items, [])
        best = _best(lists)
        if best is None:
            break
        n, key, occ = best
        li, i = occ[0]
        first = lists[li][i]
        base = ("block" if first.layer.id == -2 else first.layer.type) + "_block"
        base = base.replace("_block_block", "_block")
        name = base if base not in blocks else next(f"{base}{k}" for k in range(2, 1000) if f"{base}{k}" not in blocks)
        blocks[name] = _make_block(name, lists, n, occ)
    _compress(items, blocks)
    for b in blocks.values():
        _compress(b["body"], blocks)
    return items, blocks
