"""Named bounds on what one spec may cost to read and expand (docs/limits.md).

Specs are user-written: a folder of submissions must not take `archcalc check` down with one
hostile file, so every resource a spec can ask for is bounded here and refused as a SpecError
(one line, file:line) before it is spent. The defaults are far above any real network; a caller
raises one by assigning to the dict (`LIMITS["graph_nodes"] = 5_000_000`) or, on the command line,
with `--limit NAME=VALUE` / ARCHCALC_LIMITS="NAME=VALUE,...". Expression bounds are
archcalc.expr.LIMITS.
"""
from __future__ import annotations

LIMITS: dict = {
    "file_bytes": 10_000_000,  # size of a spec file (characters of its text)
    "yaml_depth": 100,  # lists and mappings nested in one another, aliases followed
    "yaml_nodes": 100_000,  # lists, mappings and scalars of the file with every alias expanded
    "int_max": 10**15,  # largest absolute integer written in a spec
    "arg_max": 10**6,  # largest integer argument of a layer, after `$` evaluation
    "block_depth": 64,  # block calls nested in one another
    "graph_nodes": 10_000,  # nodes of the expanded graph (times: and block calls included)
    "tensor_elements": 10**12,  # elements of one layer's output
    "variants": 100,  # members a family file declares under variants: (each is analysed by `archcalc check FILE`)
    "check_nodes": 20_000,  # graph nodes `archcalc check` expands for one file, every variant and expect case
}


def check_nodes_message() -> str:
    return (f"checking the file's variants and expect cases expands more than {LIMITS['check_nodes']:,} graph nodes "
            "in all (limit check_nodes)")


def set_limits(assignments) -> None:
    """Apply ``NAME=VALUE`` texts (the --limit option and ARCHCALC_LIMITS); ValueError if bad."""
    from . import expr

    for text in assignments:
        name, sep, value = text.partition("=")
        name = name.strip()
        table = LIMITS if name in LIMITS else expr.LIMITS if name in expr.LIMITS else None
        if not sep or table is None:
            known = ", ".join([*LIMITS, *expr.LIMITS])
            raise ValueError(f"--limit takes NAME=VALUE with NAME one of {known}, got {text!r}")
        try:
            number = int(value.replace("_", "").strip())
        except ValueError:
            raise ValueError(f"--limit {name}: {value.strip()!r} is not a whole number") from None
        if number < 1:
            raise ValueError(f"--limit {name}: must be at least 1, got {number}")
        table[name] = number
