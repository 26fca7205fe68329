"""check.py: expect cases at another input, with defaults laid over the spec's, and block sums."""
from __future__ import annotations

import textwrap

import archcalc
from archcalc.check import check

SPEC = textwrap.dedent("""
    name: t
    input: [2, 5, 5]
    defaults:
      conv: {bias: false}
    blocks:
      pair:
        args: {c: ~}
        body:
          - conv: {out: $c, k: 1}           # 2*c weights
          - conv: {out: $c, k: 3, p: 1}     # 9*c*c weights
    layers:
      - pair p: [4]                         # 8 + 144 = 152 weights; 5*5 positions: 25*152 = 3,800 MACs
    expect:
      - layers:
          p: {params: 152, macs: 3800, out: [4, 5, 5]}
      - defaults: {conv: {bias: true}}      # one bias per output channel: 152 + 4 + 4
        total: {params: 160}
      - input: [2, 3, 3]                    # 9 positions: 9*152 = 1,368 MACs
        total: {macs: 1368}
""").lstrip()


def test_block_sums_defaults_and_inputs_are_checked():
    outcomes = check(archcalc.parse(SPEC, "t.yaml"))
    assert [(o.case, o.where, o.key) for o in outcomes] == [
        (0, "p", "params"), (0, "p", "macs"), (0, "p", "out"), (1, "total", "params"), (2, "total", "macs")]
    assert all(o.ok for o in outcomes), [o for o in outcomes if not o.ok]


def test_a_wrong_block_sum_fails():
    outcomes = check(archcalc.parse(SPEC.replace("params: 152", "params: 153"), "t.yaml"))
    bad = [o for o in outcomes if not o.ok]
    assert [(o.where, o.expected, o.actual) for o in bad] == [("p", 153, 152)]


def test_a_named_merge_path_checks_the_merge_with_its_branches():
    spec = archcalc.parse(textwrap.dedent("""
        name: t
        input: [2, 5, 5]
        layers:
          - concat mix:
              a: [conv: {out: 4, k: 1}]          # 2*4 + 4 = 12 params
              b: [conv: {out: 4, k: 3, p: 1}]    # 2*9*4 + 4 = 76 params
        expect: {layers: {mix: {params: 88, out: [8, 5, 5]}}}
    """).lstrip(), "t.yaml")
    assert all(o.ok for o in check(spec))
