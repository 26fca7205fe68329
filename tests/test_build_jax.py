"""archcalc.build(spec, framework="jax") and the xla memory model against XLA's own accounting.

- Every rule type builds (none is skipped): parameters identical to archcalc's, and the output
  shape archcalc infers, for specs that between them use every type (every bundled spec with
  ``--run-slow``).
- A training step runs (SGD, momentum, Adam) and changes the parameters.
- ``cost_analysis()`` flops of an inference pass equal the ``xla`` counting preset
  (archcalc/presets.py: multiplies on zero padding skipped).
- The training-step peak of archcalc/fit_xla.py within 10% of XLA's ``memory_analysis()``
  (argument + output - alias + temp) at two batch sizes: small networks by default, the
  representative set with ``--run-slow``.

The XLA:CPU flag that turns convolution fusion off (build/jax.py) must be set before jax creates
its CPU client: this module imports archcalc.build.jax first; if some other module imported jax
earlier in the session, the memory measurements run in a fresh interpreter instead.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import archcalc

try:
    from archcalc.build import jax as bj  # sets XLA_FLAGS before jax is imported
    import jax
    import jax.numpy as jnp
except ImportError:  # pragma: no cover - CI sets ARCHCALC_REQUIRE_JAX=1, so this fails there
    from conftest import require_extra

    require_extra("ARCHCALC_REQUIRE_JAX", "jax is not installed (pip install '.[jax]')")

pytestmark = [pytest.mark.jax, pytest.mark.filterwarnings("ignore::UserWarning")]

# Small or quick specs that between them use every rule type but the ones ALL_TYPES adds.
BUILD_FAST = ["alexnet", "resnet20", "shufflenet_v2_x0_5", "squeezenet1_0", "convnext_tiny", "fractalnet20",
              "resnet110_sd", "nin", "inception_naive", "mobilenet_v3_large", "lenet5", "lenet5_paper", "googlenet"]
REPRESENTATIVE = ["alexnet", "resnet18", "squeezenet1_0", "shufflenet_v2_x0_5", "mobilenet_v2", "googlenet_tv",
                  "efficientnet_b0", "vgg16", "resnet50_tv", "densenet121"]

ALL_TYPES = """name: all_types
input: [6, 17, 17]
layers:
  - conv: {out: 12, k: 3, s: 2, p: same, act: elu}
  - leaky_relu: {slope: 0.2}
  - concat:
      a: [split: {sizes: [4, 8], i: 0}, relu6]
      b: [slice: {start: 4, end: 10}, sigmoid]
      c: [chunk: {n: 2, i: 1}, silu]
  - maxpool: {k: 3, s: 2, p: [0, 1, 0, 1], ceil: true}
  - avgpool: {k: 2, s: 1}
  - fc: {out: 7, act: tanh}
  - softmax
"""

SMALL = """name: small
input: [3, 32, 32]
layers:
  - conv c1: {out: 16, k: 3, p: 1, act: relu}
  - conv c2: {out: 32, k: 3, p: 1, act: relu}
  - maxpool p1: {k: 2, s: 2}
  - conv c3: {out: 32, k: 3, p: 1, bn: true, act: relu}
  - avgpool gap: {global: true}
  - fc fc: {out: 10}
"""


def _check_build(spec):
    report = archcalc.analyze(spec)
    apply, variables = archcalc.build(spec, framework="jax", abstract=True)
    assert bj.count_params(variables) == report.totals.params
    x = jax.ShapeDtypeStruct((2, *report.input), jnp.float32)
    y = jax.eval_shape(lambda v, x: apply(v, x), variables, x)
    assert tuple(y.shape) == (2, *report.rows[-1].out)
    y, _ = jax.eval_shape(lambda v, x: apply(v, x, train=True, key=jax.random.key(0)), variables, x)
    assert tuple(y.shape) == (2, *report.rows[-1].out)
    return {t for n in archcalc.expand(spec).nodes for t in (n.type, *(p.type for p in n.cost.parts))}


@pytest.mark.parametrize("name", BUILD_FAST)
def test_build_matches_archcalc(name):
    _check_build(archcalc.load(name))


def test_every_rule_type_builds():
    from archcalc import rules

    seen = set()
    for name in BUILD_FAST:
        seen |= {t for n in archcalc.expand(archcalc.load(name)).nodes for t in (n.type, *(p.type for p in n.cost.parts))}
    seen |= _check_build(archcalc.parse(ALL_TYPES))
    assert sorted(set(rules.RULES) - seen - set(bj.CANNOT_BUILD)) == []


@pytest.mark.slow
@pytest.mark.parametrize("name", archcalc.bundled_names())
def test_build_every_bundled_spec(name):
    _check_build(archcalc.load(name))


def test_unmapped_type_is_named(monkeypatch):
    monkeypatch.setitem(bj.CANNOT_BUILD, "lrn", "a test says so")
    spec = archcalc.parse("name: t\ninput: [4, 8, 8]\nlayers:\n  - lrn: {size: 3}\n")
    with pytest.raises(archcalc.BuildError, match="lrn"):
        archcalc.build(spec, framework="jax")


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_training_step_runs(optimizer):
    spec = archcalc.parse(SMALL.replace("[3, 32, 32]", "[3, 8, 8]"))
    apply, variables = archcalc.build(spec, framework="jax")
    step = bj.train_step(apply, optimizer)
    params = variables["params"]
    before = jax.tree.map(lambda a: a.copy(), params)
    opt = bj.init_optimizer(optimizer, params)
    x = jax.random.normal(jax.random.key(1), (4, 3, 8, 8))
    params, state, opt, loss = step(params, variables["state"], opt, x, jnp.array([0, 1, 2, 3]), jax.random.key(2))
    assert jnp.isfinite(loss)
    moved = jax.tree.leaves(jax.tree.map(lambda a, b: bool(jnp.any(a != b)), before, params))
    assert all(moved)  # every parameter got a gradient and was updated


@pytest.mark.parametrize("pool", ["{k: 3, s: 2, ceil: true}", "{k: 3, s: 2, p: 1}", "{k: 2, s: 2}",
                                  "{k: 2, s: 2, ceil: true}", "{k: 3, s: 1, p: 1}", "{k: 2, s: 2, p: 1}"])
def test_maxpool_gradient_equals_jax_autodiff(pool):
    """The written-out max-pool backward (build/jax.py) against JAX's own gradient of reduce_window
    (select-and-scatter), on inputs without ties."""
    from jax import lax

    spec = archcalc.parse(f"name: t\ninput: [3, 13, 13]\nlayers:\n  - maxpool: {pool}\n")
    node = archcalc.expand(spec).nodes[-1]
    apply, variables = archcalc.build(spec, framework="jax")
    x = jax.random.normal(jax.random.key(0), (2, 3, 13, 13))
    w = jax.random.normal(jax.random.key(1), apply(variables, x).shape)
    wh, ww = node.cost.window
    pads = bj._pads(node.cost.window, node.cost.out[1:], (13, 13), ceil=True)

    def reference(x):
        return lax.reduce_window(x, -jnp.inf, lax.max, (1, 1, wh.k, ww.k), (1, 1, wh.s, ww.s),
                                 [(0, 0), (0, 0)] + pads)

    ours = jax.grad(lambda x: jnp.sum(apply(variables, x) * w))(x)
    theirs = jax.grad(lambda x: jnp.sum(reference(x) * w))(x)
    assert jnp.allclose(ours, theirs, atol=1e-5)


def test_inference_output_values_follow_the_graph():
    """The NCHW caller's view: a 1x1 conv with identity weights and no bias returns its input."""
    spec = archcalc.parse("name: t\ninput: [2, 3, 3]\nlayers:\n  - conv: {out: 2, k: 1, bias: false}\n")
    apply, variables = archcalc.build(spec, framework="jax")
    (path,) = variables["params"]
    variables["params"][path]["w"] = jnp.eye(2).reshape(1, 1, 2, 2)
    x = jnp.arange(18.0).reshape(1, 2, 3, 3)
    assert jnp.array_equal(apply(variables, x), x)


# ---------------------------------------------------------------- XLA's figures


def _measure(spec_text_or_name: str, *, batch: int, train: bool = True, optimizer: str = "sgd") -> dict:
    """measure_graph in this process if the XLA:CPU flag is in effect, else in a fresh one."""
    if bj.YNN_FUSION_OFF:
        spec = archcalc.parse(spec_text_or_name) if "\n" in spec_text_or_name else archcalc.load(spec_text_or_name)
        return bj.measure_graph(archcalc.expand(spec), batch=batch, train=train, optimizer=optimizer)
    code = ("import json, sys, archcalc; from archcalc.build.jax import measure_graph; t = sys.argv[1]; "
            "s = archcalc.parse(t) if '\\n' in t else archcalc.load(t); "
            f"print(json.dumps(measure_graph(archcalc.expand(s), batch={batch}, train={train}, optimizer={optimizer!r})))")
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    out = subprocess.run([sys.executable, "-c", code, spec_text_or_name], capture_output=True, text=True, check=True,
                         env=env).stdout
    return json.loads(out.splitlines()[-1])


def _spec(text_or_name):
    return archcalc.parse(text_or_name) if "\n" in text_or_name else archcalc.load(text_or_name)


@pytest.mark.parametrize("what", [SMALL, "alexnet", "squeezenet1_0"], ids=["small", "alexnet", "squeezenet1_0"])
def test_cost_analysis_flops_equal_the_padding_aware_count(what):
    presets = pytest.importorskip("archcalc.presets")
    m = _measure(what, batch=1, train=False)
    counted = presets.count(archcalc.analyze(_spec(what)), "xla").total
    assert abs(m["flops"] / counted - 1) < 1e-6, (m["flops"], counted)


@pytest.mark.slow
def test_vgg16_padding_fact_of_the_issue():
    """The issue: VGG-16 at batch 1 is 29.97 GFLOP in XLA against 2 x 15.47 G MACs."""
    presets = pytest.importorskip("archcalc.presets")
    m = _measure("vgg16", batch=1, train=False)
    c = presets.count(archcalc.analyze(archcalc.load("vgg16")), "xla")
    assert round(m["flops"] / 1e9, 2) == 29.97 and round(c.macs / 1e9, 2) == 15.47
    assert abs(m["flops"] / c.total - 1) < 1e-6


def _peak_error(what, batch, optimizer="sgd"):
    from archcalc.fit import relative_error
    from archcalc.fit_xla import fit

    m = _measure(what, batch=batch, optimizer=optimizer)
    report = archcalc.cost(archcalc.expand(_spec(what)), batch=batch, profile="xla")
    assert m["params"] == report.totals.params
    assert m["argument_bytes"] == sum(i.bytes for i in fit(report, batch=batch, optimizer=optimizer).items
                                      if i.name in ("weights", "buffers", "optimizer state", "input", "labels and key"))
    return relative_error(fit(report, batch=batch, optimizer=optimizer).peak_bytes, m["peak_bytes"])


@pytest.mark.parametrize("batch", [8, 32])
@pytest.mark.parametrize("what", [SMALL, "resnet20"], ids=["small", "resnet20"])
def test_training_peak_within_10_percent(what, batch):
    assert abs(_peak_error(what, batch)) < 0.10


def test_optimizer_state_is_an_argument():
    """Momentum adds one copy of the parameters to the arguments and nothing that scales with them
    to temp (the update is fused: no gradient waits for it)."""
    sgd, mom = _measure(SMALL, batch=4), _measure(SMALL, batch=4, optimizer="momentum")
    params = archcalc.analyze(archcalc.parse(SMALL)).totals.params
    assert mom["argument_bytes"] - sgd["argument_bytes"] == 4 * params
    assert abs(mom["temp_bytes"] / sgd["temp_bytes"] - 1) < 0.05  # 1.9% apart measured: XLA's schedule


# Measured outside the 10% bound on XLA:CPU, jax 0.10.2 (docs/xla.md): expected failures, strict,
# so that a change of model, builder or XLA that fixes one turns it into news. None today: every
# step of the representative set is within 10% (worst -6.1%, GoogLeNet at batch 32).
KNOWN_MISSES: dict = {}


def _representative():
    for name in REPRESENTATIVE:
        for batch in (8, 32):
            miss = KNOWN_MISSES.get((name, batch))
            marks = [pytest.mark.xfail(strict=True, reason=f"measured {miss}: outside the 10% bound")] if miss else []
            yield pytest.param(name, batch, marks=marks, id=f"{name}-{batch}")


@pytest.mark.slow
@pytest.mark.parametrize("name, batch", list(_representative()))
def test_training_peak_within_10_percent_representative(name, batch):
    assert abs(_peak_error(name, batch)) < 0.10


def test_measure_cli_json(tmp_path):
    from click.testing import CliRunner

    from archcalc.cli import main

    path = tmp_path / "small.yaml"
    path.write_text(SMALL)
    r = CliRunner().invoke(main, ["measure", str(path), "--framework", "jax", "--batch", "1", "--inference",
                                  "--format", "json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["params"]["measured"] == d["params"]["predicted"] == archcalc.analyze(archcalc.parse(SMALL)).totals.params
    assert abs(d["flops"]["error"]) < 1e-6  # the padding-aware count (archcalc/presets.py)
    assert set(d["memory"]) == {"argument_bytes", "output_bytes", "alias_bytes", "temp_bytes"}
    assert d["peak"]["total"]["measured"] == d["memory"]["argument_bytes"] + d["memory"]["output_bytes"] \
        - d["memory"]["alias_bytes"] + d["memory"]["temp_bytes"]
