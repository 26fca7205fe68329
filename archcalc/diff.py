"""Two analyzed networks compared layer by layer: rows aligned, what differs, the totals side by side.

Pure data over reports (never the YAML): ``diff(report_a, report_b)`` aligns the two row lists and
returns a ``Diff``; formats/diff.py renders it.

Alignment, in three steps:

1. by path, in order: the longest matching runs of the two path sequences (difflib's
   SequenceMatcher), so an inserted or deleted layer leaves the rest aligned;
2. a path that both networks have but that step 1 left unpaired (a moved layer) is paired with its
   namesake;
3. between two aligned runs, rows whose paths exist on one side only are aligned by layer type
   (the same matcher over the type sequences; a run of replaced types of equal length pairs
   position by position), so a renamed conv still meets its counterpart. Rows left over are only
   in A or only in B.

Two aligned rows differ when their path, type, resolved arguments or any figure of ``KEYS``
differs; ``ignore`` drops keys from the comparison (``rf`` and ``jump`` change downstream of any
stride that moves).
"""
from __future__ import annotations

from dataclasses import dataclass
from difflib import SequenceMatcher
from fractions import Fraction

from .rules import lookup

# Per-row figures compared, each the Row attribute of the same name (= the JSON key and column).
KEYS = ("type", "out", "params", "weight_params", "bias_params", "buffer_elems", "macs", "other_ops",
        "out_elems", "saved_elems", "rf", "jump")
NUMERIC = ("params", "weight_params", "bias_params", "buffer_elems", "macs", "other_ops", "out_elems", "saved_elems")
# The totals compared: keys of the JSON model's totals (report.totals_dict).
TOTAL_KEYS = ("params", "weight_params", "bias_params", "buffer_elems", "macs", "flops", "other_ops", "out_elems",
              "saved_elems", "peak_elems", "depth", "param_bytes", "out_bytes", "saved_bytes", "peak_bytes")
# Above this many row pairs in one unaligned stretch the type alignment is skipped (the matcher is
# quadratic in the worst case) unless the two type sequences are equal; the rows are then reported
# as only in A and only in B.
TYPE_ALIGN_MAX = 1_000_000

ONLY_A, ONLY_B, CHANGED, SAME = "only_a", "only_b", "changed", "same"


@dataclass(frozen=True)
class Entry:
    """One aligned pair of rows (or a row of one side alone)."""

    status: str  # only_a, only_b, changed, same
    a: object  # report.Row or None
    b: object
    changed: tuple[str, ...] = ()  # "path", "args" and the KEYS that differ
    # (argument, value in A, value in B) where they differ; MISSING where a side has no such argument
    args: tuple[tuple[str, object, object], ...] = ()

    @property
    def path(self) -> str:
        return (self.a or self.b).path

    def figures(self, side: str) -> dict | None:
        row = self.a if side == "a" else self.b
        return None if row is None else figures(row)

    def delta(self) -> dict:
        """B - A for the numeric figures (a missing side counts as 0)."""
        fa, fb = self.figures("a") or {}, self.figures("b") or {}
        return {k: fb.get(k, 0) - fa.get(k, 0) for k in NUMERIC}


@dataclass(frozen=True)
class Total:
    key: str
    a: int
    b: int

    @property
    def delta(self) -> int:
        return self.b - self.a

    @property
    def ratio(self) -> Fraction | None:
        return Fraction(self.b, self.a) if self.a else None


@dataclass(frozen=True)
class Diff:
    label_a: str
    label_b: str
    report_a: object
    report_b: object
    entries: tuple[Entry, ...]  # every aligned pair, in table order (same rows included)
    totals: tuple[Total, ...]
    ignore: tuple[str, ...] = ()

    @property
    def differences(self) -> list[Entry]:
        return [e for e in self.entries if e.status != SAME]

    def count(self, status: str) -> int:
        return sum(1 for e in self.entries if e.status == status)

    def count_only(self, keys) -> int:
        """Rows in both that differ in ``keys`` alone (``rf``, ``jump``: downstream of a moved stride)."""
        return sum(1 for e in self.entries if e.status == CHANGED and set(e.changed) <= set(keys))

    @property
    def differ(self) -> bool:
        return bool(self.differences) or any(t.a != t.b for t in self.totals)


def figures(row) -> dict:
    """A row's compared figures under their JSON keys (shapes as lists, as in JSON)."""
    out = {}
    for k in KEYS:
        v = getattr(row, k)
        out[k] = list(v) if isinstance(v, tuple) else v
    return out


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING = _Missing()  # an argument one side does not have at all (the rows are of different types)


def _args(row, resolved: bool) -> dict:
    """A row's arguments; ``resolved``: with the rule's defaults for those the spec left out, so
    ``bn: false`` by default and ``bn: false`` written out compare equal."""
    rule = lookup(row.type) if resolved else None
    return {**rule.defaults, **row.args} if rule is not None else dict(row.args)


def _arg_changes(a, b) -> tuple:
    same_type = a.type == b.type
    args_a, args_b = _args(a, same_type), _args(b, same_type)
    keys = list(args_a) + [k for k in args_b if k not in args_a]
    changes = []
    for k in keys:
        va, vb = args_a.get(k, MISSING), args_b.get(k, MISSING)
        if va != vb:
            changes.append((k, va, vb))
    return tuple(changes)


def compare_rows(a, b, ignore=()) -> Entry:
    changed = []
    if a.path != b.path and "path" not in ignore:
        changed.append("path")
    args = () if "args" in ignore else _arg_changes(a, b)
    if args:
        changed.append("args")
    fa, fb = figures(a), figures(b)
    changed += [k for k in KEYS if k not in ignore and fa[k] != fb[k]]
    return Entry(CHANGED if changed else SAME, a, b, tuple(changed), args)


def align(rows_a, rows_b) -> list[tuple[int | None, int | None]]:
    """Index pairs (i in A, j in B), None for a side without the row, in table order."""
    paths_a = [r.path for r in rows_a]
    paths_b = [r.path for r in rows_b]
    ops = SequenceMatcher(None, paths_a, paths_b, autojunk=False).get_opcodes()
    # Step 2: a path on both sides that the runs did not pair (a moved layer) pairs with its namesake.
    loose_b = {}
    for tag, _, _, j1, j2 in ops:
        if tag != "equal":
            loose_b.update((paths_b[j], j) for j in range(j1, j2))
    moved = {}
    for tag, i1, i2, _, _ in ops:
        if tag != "equal":
            moved.update((i, loose_b[paths_a[i]]) for i in range(i1, i2) if paths_a[i] in loose_b)
    moved_b = set(moved.values())
    out: list[tuple[int | None, int | None]] = []
    for tag, i1, i2, j1, j2 in ops:
        if tag == "equal":
            out += zip(range(i1, i2), range(j1, j2))
            continue
        ia = [i for i in range(i1, i2) if i not in moved]
        jb = [j for j in range(j1, j2) if j not in moved_b]
        items = _by_type(rows_a, rows_b, ia, jb) + [(i, moved[i]) for i in range(i1, i2) if i in moved]
        out += _in_a_order(items, i1)
    return out


def _by_type(rows_a, rows_b, ia: list[int], jb: list[int]) -> list[tuple[int | None, int | None]]:
    """Step 3: rows of one side each, aligned by layer type."""
    types_a = [rows_a[i].type for i in ia]
    types_b = [rows_b[j].type for j in jb]
    if types_a == types_b:  # renamed, same sequence (the common case, and linear however long)
        return list(zip(ia, jb))
    if not ia or not jb or len(ia) * len(jb) > TYPE_ALIGN_MAX:
        return [(i, None) for i in ia] + [(None, j) for j in jb]
    out = []
    for tag, i1, i2, j1, j2 in SequenceMatcher(None, types_a, types_b, autojunk=False).get_opcodes():
        if tag == "equal" or (tag == "replace" and i2 - i1 == j2 - j1):
            out += zip(ia[i1:i2], jb[j1:j2])
        else:
            out += [(i, None) for i in ia[i1:i2]] + [(None, j) for j in jb[j1:j2]]
    return out


def _in_a_order(items, start: int) -> list:
    """Pairs sorted by their A index; a row only in B stays right after the A row it followed."""
    keyed = []
    last = start - 1
    for n, (i, j) in enumerate(items):
        if i is not None:
            last = i
            keyed.append(((i, 0, n), (i, j)))
        else:
            keyed.append(((last, 1, n), (i, j)))
    return [pair for _, pair in sorted(keyed)]


def diff(report_a, report_b, *, rows_a=None, rows_b=None, label_a: str | None = None, label_b: str | None = None,
         ignore=()) -> Diff:
    """Compare two reports (``rows_*``: the rows to align, e.g. ``report.collapse``'s; default all)."""
    ignore = tuple(ignore)
    unknown = [k for k in ignore if k not in KEYS + ("path", "args")]
    if unknown:
        raise ValueError(f"cannot ignore {', '.join(unknown)}; known: path, args, {', '.join(KEYS)}")
    rows_a = list(report_a.rows if rows_a is None else rows_a)
    rows_b = list(report_b.rows if rows_b is None else rows_b)
    entries = []
    for i, j in align(rows_a, rows_b):
        if j is None:
            entries.append(Entry(ONLY_A, rows_a[i], None))
        elif i is None:
            entries.append(Entry(ONLY_B, None, rows_b[j]))
        else:
            entries.append(compare_rows(rows_a[i], rows_b[j], ignore))
    from .report import totals_dict

    ta, tb = totals_dict(report_a), totals_dict(report_b)
    return Diff(label_a or report_a.name, label_b or report_b.name, report_a, report_b, tuple(entries),
                tuple(Total(k, ta[k], tb[k]) for k in TOTAL_KEYS), ignore)


def to_dict(d: Diff, *, all_rows: bool = False) -> dict:
    """The JSON model of a diff: ``a`` and ``b`` (label, name, file, input, batch, dtype), ``ignore``,
    ``counts`` per status, ``layers`` (the differing pairs, or with ``all_rows`` every pair: status,
    path_a, path_b, changed, args, the figures ``a`` and ``b`` under the JSON keys of KEYS or null,
    and ``delta`` = B - A of the numeric ones), ``totals`` (per key of TOTAL_KEYS: a, b, delta,
    ratio = b / a or null) and ``differ``."""

    def side(label, report):
        return {"label": label, "name": report.name, "file": report.file, "input": list(report.input),
                "batch": report.batch, "dtype": report.dtype}

    layers = []
    for e in (d.entries if all_rows else d.differences):
        layers.append({
            "status": e.status,
            "path_a": e.a.path if e.a is not None else None,
            "path_b": e.b.path if e.b is not None else None,
            "changed": list(e.changed),
            "args": [{"name": k, **({"a": va} if va is not MISSING else {}), **({"b": vb} if vb is not MISSING else {})}
                     for k, va, vb in e.args],
            "a": e.figures("a"), "b": e.figures("b"), "delta": e.delta(),
        })
    return {
        "a": side(d.label_a, d.report_a), "b": side(d.label_b, d.report_b),
        "ignore": list(d.ignore),
        "counts": {s: d.count(s) for s in (ONLY_A, ONLY_B, CHANGED, SAME)},
        "layers": layers,
        "totals": {t.key: {"a": t.a, "b": t.b, "delta": t.delta,
                           "ratio": float(t.ratio) if t.ratio is not None else None} for t in d.totals},
        "differ": d.differ,
    }
