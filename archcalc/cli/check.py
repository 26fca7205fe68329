"""`archcalc check [SPEC ...]`: the expect: numbers of specs (default every bundled one)."""
from __future__ import annotations

import sys

import click


@click.command("check")
@click.argument("specs", nargs=-1)
@click.option("-v", "--verbose", is_flag=True, help="Show every checked number, not only failures.")
@click.option("--catalogue/--no-catalogue", default=None,
              help="Also check the catalogue of lecture numbers (default: when no SPECS are given).")
def command(specs, verbose, catalogue):
    """Verify the `expect:` numbers of SPECS (default: every bundled spec).

    A spec that is bad input is reported on one line of stderr and the others are still checked
    (a folder of submissions). Exit code: 2 if any spec was bad input, else 1 if any expected
    number was not reproduced, else 0.
    """
    from ..check import check as run_check, new_budget
    from ..spec import SpecError, bundled_names, load

    failed = 0
    total = 0
    bad_input = 0
    budgets: dict = {}  # the members of one file share one check_nodes budget
    for name, variant in _members(specs) if specs else [(n, None) for n in bundled_names()]:
        try:
            spec = load(name, variant=variant)
            outcomes = run_check(spec, budget=budgets.setdefault(spec.file, new_budget()))
        except SpecError as e:
            click.echo(f"archcalc: {e}", err=True)
            bad_input += 1
            continue
        bad = [o for o in outcomes if not o.ok]
        total += len(outcomes)
        failed += len(bad)
        status = "ok  " if not bad else "FAIL"
        click.echo(f"{status} {spec.name}: {len(outcomes) - len(bad)}/{len(outcomes)} expected numbers")
        for o in outcomes if verbose else bad:
            mark = "   " if o.ok else "  x"
            click.echo(f"{mark} {spec.file}:{o.line}: {o.where}: {o.key} expected {o.expected!r}, got {o.actual!r}")
    click.echo(f"{total - failed} of {total} expected numbers reproduced"
               + (f"; {bad_input} spec(s) could not be read" if bad_input else ""))
    if catalogue if catalogue is not None else not specs:
        from ..known import catalogue_report

        lines, drift = catalogue_report(verbose)
        for line in lines:
            click.echo(line)
        failed += drift
    sys.exit(2 if bad_input else 1 if failed else 0)


def _members(specs):
    """(name or path, variant) to check: every member of a family file, the first one included; a
    file that cannot be read is passed on as it is, to be reported with the others."""
    from ..spec import SpecError, bundled_names, load

    bundled = set(bundled_names())
    for name in specs:
        if name in bundled:  # a bundled member is checked by its own name
            yield name, None
            continue
        try:
            family = load(name)
        except SpecError:
            yield name, None
            continue
        yield name, None
        for member in family.variants:
            yield name, member
