"""archcalc.build(spec, framework="torch") and the fit model against PyTorch's own accounting.

- Every bundled spec that builds: parameters identical, and the bytes autograd keeps for backward
  (saved_tensors_hooks, one storage counted once; tests/test_torch_layers.py's ``torch_saved``)
  equal to archcalc's ``saved_elems``/``saved_fixed_bytes``/``saved_batch_bytes``. A
  representative set runs by default; every spec with ``--run-slow``. LeNet's subsample, rbf and
  connection-table conv build too (their outputs checked against the layers' definitions, computed
  directly, and against the JAX builder's); a type without a mapping must raise BuildError naming it.
- The training-step peak of archcalc/fit.py (tensor bytes only, ``fit.EXACT``) within 5% of
  PyTorch's MemTracker under FakeTensorMode, at two batch sizes and two optimizers.
"""
from __future__ import annotations

import pytest

import archcalc

try:
    import torch
except ImportError:  # pragma: no cover - conftest skips (or, in CI, fails) the marked tests
    torch = None

pytestmark = [pytest.mark.torch, pytest.mark.filterwarnings("ignore::UserWarning")]

REPRESENTATIVE = ["alexnet", "vgg16", "resnet50_tv", "googlenet_tv", "mobilenet_v2", "densenet121"]
# Small or quick specs that between them use every rule type the builder maps.
BUILD_FAST = ["alexnet", "resnet20", "shufflenet_v2_x0_5", "squeezenet1_0", "convnext_tiny", "fractalnet20",
              "resnet110_sd", "nin", "inception_naive", "mobilenet_v3_large", "lenet5", "lenet1", "lenet5_paper"]
CANNOT_BUILD: set = set()  # bundled specs the builder cannot build (archcalc/build/torch.py's CANNOT_BUILD is empty)


def _saved_check(name):
    from test_torch_layers import torch_saved

    spec = archcalc.load(name)
    try:
        model = archcalc.build(spec, framework="torch")
    except archcalc.BuildError as e:
        assert name in CANNOT_BUILD, f"{name}: {e}"
        return
    report = archcalc.analyze(spec)
    assert sum(p.numel() for p in model.parameters()) == report.totals.params
    torch.manual_seed(0)
    t = report.totals
    assert torch_saved(model, report.input) == (t.saved_elems, t.saved_fixed_bytes + t.saved_batch_bytes)


@pytest.mark.parametrize("name", BUILD_FAST)
def test_build_matches_archcalc(name):
    _saved_check(name)


def _saved_check_fake(name):
    """_saved_check under FakeTensorMode: the same hooks and storages, nothing allocated (real
    tensors for the whole library held EfficientNet-B7's 4 GB of activations and, with the heap
    glibc keeps, ran this 24 GiB machine out of memory beside other jobs)."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    from archcalc.build.torch import _saved_bytes, build_graph

    graph = archcalc.expand(archcalc.load(name))
    report = archcalc.cost(graph)
    with FakeTensorMode():
        try:
            model = build_graph(graph)
        except archcalc.BuildError as e:
            assert name in CANNOT_BUILD, f"{name}: {e}"
            return
        model.train()
        assert sum(p.numel() for p in model.parameters()) == report.totals.params
        act, other = _saved_bytes(model, torch.randn((1, *graph.input), requires_grad=True))
    t = report.totals
    assert (act, other) == (4 * t.saved_elems, t.saved_fixed_bytes + t.saved_batch_bytes)


@pytest.mark.parametrize("name", ["inception_v3", "densenet121", "mobilenet_v3_large"])
def test_saved_fake_equals_real(name):
    """The fake-tensor check counts what the real one counts."""
    _saved_check(name)
    _saved_check_fake(name)


@pytest.mark.slow
@pytest.mark.parametrize("name", archcalc.bundled_names())
def test_build_every_bundled_spec(name):
    _saved_check_fake(name)


def test_lenet_types_build():
    """LeNet's layer types are in the fast set (lenet1, lenet5_paper) and nothing is refused."""
    from archcalc.build import torch as bt

    seen = set()
    for name in BUILD_FAST:
        for n in archcalc.expand(archcalc.load(name)).nodes:
            seen |= {n.type, *(p.type for p in n.cost.parts)} | ({"table"} if n.args.get("table") else set())
    assert bt.CANNOT_BUILD == {}
    assert {"subsample", "rbf", "table"} <= seen


def test_unmapped_type_is_named(monkeypatch):
    from archcalc.build import torch as bt

    monkeypatch.setitem(bt.CANNOT_BUILD, "subsample", "a test says so")
    text = "name: t\ninput: [1, 32, 32]\nlayers:\n  - conv: {out: 6, k: 5}\n  - subsample: {k: 2}\n"
    with pytest.raises(archcalc.BuildError, match="subsample"):
        archcalc.build(archcalc.parse(text))


LENET_LAYERS = """name: t
input: [3, 9, 9]
layers:
  - conv c: {out: 4, k: 3, act: tanh, table: [[0], [1, 2], [0, 2], [0, 1, 2]]}
  - subsample s: {k: 2, act: tanh}
  - fc f: {out: 5}
  - rbf r: {out: 3}
"""


def _lenet_reference(x, W, b, coef, sbias, fw, fb, proto, table):
    """The layers' definitions as loops (float64): conv over the table's links only, a 2x2 sum
    times a coefficient plus a bias per map, a linear layer, squared distances to prototypes."""
    import numpy as np

    n, _, h, w = x.shape
    links = [(o, i) for o, row in enumerate(table) for i in row]
    y = np.zeros((n, len(table), h - 2, w - 2))
    for (o, i), k in zip(links, W):
        for u in range(h - 2):
            for v in range(w - 2):
                y[:, o, u, v] += (x[:, i, u:u + 3, v:v + 3] * k).sum((1, 2))
    y = np.tanh(y + b[None, :, None, None])
    z = np.zeros((n, y.shape[1], y.shape[2] // 2, y.shape[3] // 2))
    for u in range(z.shape[2]):
        for v in range(z.shape[3]):
            z[:, :, u, v] = y[:, :, 2 * u:2 * u + 2, 2 * v:2 * v + 2].sum((2, 3))
    z = np.tanh(z * coef[None, :, None, None] + sbias[None, :, None, None])
    f = z.reshape(n, -1) @ fw.T + fb
    return ((f[:, None, :] - proto[None]) ** 2).sum(-1)


def test_lenet_layers_compute_their_definition():
    """subsample, rbf and a table conv: the torch module's output (float64, random weights) equals
    the definitions computed directly; only the connected kernels are parameters, the prototypes a
    buffer."""
    import numpy as np

    spec = archcalc.parse(LENET_LAYERS)
    model = archcalc.build(spec).double().eval()
    layers = dict(model.layers.items())
    assert sum(p.numel() for p in model.parameters()) == archcalc.analyze(spec).totals.params == (8 * 9 + 4) + 8 + 5 * 37 + 0
    assert [tuple(b.shape) for b in model.buffers()] == [(3, 5)]
    torch.manual_seed(0)
    with torch.no_grad():
        for p in (*model.parameters(), *model.buffers()):
            p.copy_(torch.randn_like(p))
    conv, sub, fc, rbf = layers["c"][0], layers["s"][0], layers["f"][1], layers["r"]  # [1]: after the Flatten
    x = torch.randn(2, 3, 9, 9, dtype=torch.float64)
    with torch.no_grad():
        y = model(x).numpy()
    ref = _lenet_reference(x.numpy(), conv.weight.detach().numpy(), conv.bias.detach().numpy(),
                           sub.weight.detach().numpy(), sub.bias.detach().numpy(), fc.weight.detach().numpy(),
                           fc.bias.detach().numpy(), rbf.prototypes.numpy(), [[0], [1, 2], [0, 2], [0, 1, 2]])
    assert np.allclose(y, ref, rtol=1e-10, atol=1e-10)


def test_lenet_layers_equal_the_jax_builder():
    """The same weights in both builders give the same outputs (JAX in float32)."""
    jax = pytest.importorskip("jax")
    import numpy as np

    spec = archcalc.parse(LENET_LAYERS)
    model = archcalc.build(spec).eval()
    apply, variables = archcalc.build(spec, framework="jax")
    layers = dict(model.layers.items())
    conv, sub, fc, rbf = layers["c"][0], layers["s"][0], layers["f"][1], layers["r"]  # [1]: after the Flatten
    torch.manual_seed(1)
    with torch.no_grad():
        for p in (*model.parameters(), *model.buffers()):
            p.copy_(torch.randn_like(p))
    t = lambda v: jax.numpy.asarray(v.detach().numpy())  # noqa: E731
    # JAX's layouts: the table conv's links last (kh, kw, links), fc's (in, out) (it flattens in torch's order)
    variables = {"params": {"c": {"w": t(conv.weight.permute(1, 2, 0)), "b": t(conv.bias)},
                            "s": {"w": t(sub.weight), "b": t(sub.bias)},
                            "f": {"w": t(fc.weight.t()), "b": t(fc.bias)}},
                 "state": {"r": {"prototypes": t(rbf.prototypes)}}}
    x = torch.randn(2, 3, 9, 9)
    with torch.no_grad():
        ours = model(x).numpy()
    theirs = np.asarray(apply(variables, jax.numpy.asarray(x.numpy())))
    assert np.allclose(ours, theirs, rtol=1e-4, atol=1e-3)


def test_padding_forms_and_pools():
    text = """name: t
input: [4, 15, 15]
layers:
  - conv: {out: 8, k: 3, s: 2, p: same, bn: true, act: leaky_relu}
  - conv: {out: 8, k: 3, p: [0, 1, 1, 2], g: 2}
  - dwconv: {k: 3, p: 1, act: relu6}
  - maxpool: {k: 3, s: 2, ceil: true}
  - avgpool: {global: true}
  - fc: {out: 5}
"""
    spec = archcalc.parse(text)
    report = archcalc.analyze(spec)
    model = archcalc.build(spec).eval()
    with torch.no_grad():
        y = model(torch.zeros(2, 4, 15, 15))
    assert tuple(y.shape) == (2, 5)
    shapes = []
    hooks = [m.register_forward_hook(lambda mod, i, o: shapes.append(tuple(o.shape[1:])))
             for m in model.layers.values()]
    with torch.no_grad():
        model(torch.zeros(1, 4, 15, 15))
    for h in hooks:
        h.remove()
    assert shapes == [tuple(r.out) for r in report.rows[1:]]
    assert sum(p.numel() for p in model.parameters()) == report.totals.params


# ---------------------------------------------------------------- the fit model against MemTracker


def _peak_error(name, batch, optimizer):
    from archcalc.build.torch import measure_graph
    from archcalc.fit import EXACT, fit

    graph = archcalc.expand(archcalc.load(name))
    measured = measure_graph(graph, batch=batch, optimizer=optimizer)
    report = archcalc.cost(graph, batch=batch)
    assert measured["params"] == report.totals.params
    assert measured["saved_bytes"] == report.saved_bytes
    predicted = fit(report, batch=batch, optimizer=optimizer, constants=EXACT).peak_bytes
    return predicted / measured["peak"]["total"] - 1


@pytest.mark.parametrize("optimizer", ["momentum", "adam"])
@pytest.mark.parametrize("batch", [1, 8])
@pytest.mark.parametrize("name", ["alexnet", "resnet20", "mobilenet_v3_large"])
def test_training_peak_within_5_percent(name, batch, optimizer):
    assert abs(_peak_error(name, batch, optimizer)) < 0.05


def _graph_error(graph, batch, optimizer="sgd"):
    from archcalc.build.torch import measure_graph
    from archcalc.fit import EXACT, fit

    measured = measure_graph(graph, batch=batch, optimizer=optimizer)
    predicted = fit(archcalc.cost(graph, batch=batch), batch=batch, optimizer=optimizer, constants=EXACT).peak_bytes
    return predicted / measured["peak"]["total"] - 1


@pytest.mark.parametrize("c,h,size", [(16, 32, 5), (64, 16, 9)])
def test_lrn_backward_temporaries(c, h, size):
    """A net whose peak is in LRN's backward: there the division's backward holds three
    input-sized temporaries beside the incoming gradient and the input's, while everything LRN keeps
    is alive (VGG-11 with LRN was -10.3 % without them)."""
    graph = archcalc.expand(archcalc.parse(f"""name: t
input: [3, {h}, {h}]
layers:
  - conv: {{out: {c}, k: 3, p: 1, act: relu}}
  - lrn: {{size: {size}}}
  - conv: {{out: 1, k: 1}}
"""))
    assert abs(_graph_error(graph, 4)) < 1e-5


@pytest.mark.parametrize("name,bound", [("inception_reduced", 1e-5), ("inception_naive", 0.05)])
def test_module_spec_inside_a_network(name, bound):
    """A lecture module (input_requires_grad: true) measured with an input that requires grad and a
    real gradient at its output, as inside GoogLeNet: its pool branch keeps its input and indices."""
    graph = archcalc.expand(archcalc.load(name))
    assert graph.input_requires_grad
    assert abs(_graph_error(graph, 2)) < bound


def test_layers_on_the_callers_data_keep_nothing():
    """Autograd's rule: a parameter-free layer whose input requires no grad records nothing. The
    same module without input_requires_grad: its pool branch keeps no indices, and the step still
    matches MemTracker."""
    text = "name: m\ninput: [8, 16, 16]\nlayers:\n  - concat:\n      a: [conv: {out: 4, k: 1}]\n" \
           "      b: [maxpool: {k: 3, s: 1, p: 1}]\n"
    rows = {r.path: r for r in archcalc.analyze(archcalc.parse(text)).rows}
    assert not rows["b/maxpool1"].requires_grad and rows["b/maxpool1"].mem.saved == ()
    assert rows["a/conv1"].requires_grad and rows["concat1"].requires_grad
    inside = {r.path: r for r in archcalc.analyze(archcalc.parse(text.replace("layers:", "input_requires_grad: true\nlayers:"))).rows}
    assert [s.what for s in inside["b/maxpool1"].mem.saved] == ["input", "argmax indices (int64)"]
    assert abs(_graph_error(archcalc.expand(archcalc.parse(text)), 4)) < 1e-5


@pytest.mark.slow
@pytest.mark.parametrize("optimizer", ["momentum", "adam"])
@pytest.mark.parametrize("batch", [2, 32])
@pytest.mark.parametrize("name", REPRESENTATIVE)
def test_training_peak_within_5_percent_representative(name, batch, optimizer):
    assert abs(_peak_error(name, batch, optimizer)) < 0.05


@pytest.mark.slow
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("batch", [2, 32])
@pytest.mark.parametrize("name", [n for n in archcalc.bundled_names() if n not in CANNOT_BUILD | {"preact_resnet1001"}])
def test_training_peak_within_5_percent_every_spec(name, batch, optimizer):
    """The issue's bar on the whole library (docs/fit-accuracy.md prints the same steps);
    preact_resnet1001 takes over 12 minutes a step under MemTracker."""
    assert abs(_peak_error(name, batch, optimizer)) < 0.05


def test_resnet50_facts_of_the_issue():
    """The issue's MemTracker facts (ResNet-50, SGD momentum): at batch 32 the peak is in backward
    with 2,603 MiB of activations and 7.8 MiB of gradients; archcalc places it there too."""
    from archcalc.fit import EXACT, fit

    report = archcalc.analyze(archcalc.load("resnet50_tv"), batch=32)
    f = fit(report, batch=32, optimizer="momentum", constants=EXACT)
    items = {i.name: i.bytes / 2**20 for i in f.items}
    assert f.phase.startswith("backward")
    assert round(items["saved activations"], 1) == 2603.3 and round(items["gradients"], 1) == 7.8


# ---------------------------------------------------------------- the inference peak against MemTracker


def _inference_peak_check(name, batch=2):
    """`table`'s peak_bytes is what MemTracker's activations plus the caller's input reach under
    torch.no_grad(): the input alive for the whole pass, max-pool's int64 indices for the length of
    the pool (PyTorch runs max_pool2d_with_indices even without grad), and nothing else."""
    from archcalc.build.torch import measure_graph

    graph = archcalc.expand(archcalc.load(name))
    try:
        measured = measure_graph(graph, batch=batch, train=False)["peak"]
    except archcalc.BuildError:
        assert name in CANNOT_BUILD
        return
    report = archcalc.cost(graph, batch=batch)
    assert report.peak_bytes == measured["activations"] + measured["input"]


# the issue's cases: ResNet-18 and GoogLeNet (the input was freed inside a fused stem), AlexNet
# (pool indices, and LRN's intermediates), SqueezeNet (pools between fire modules)
@pytest.mark.parametrize("name", ["alexnet", "alexnet_tv", "resnet18", "googlenet_tv", "squeezenet1_0", "vgg16",
                                  "inception_v3", "resnet50_tv"])
def test_inference_peak_equals_memtracker(name):
    _inference_peak_check(name)


@pytest.mark.slow
@pytest.mark.parametrize("name", archcalc.bundled_names())
def test_inference_peak_equals_memtracker_every_spec(name):
    _inference_peak_check(name)
