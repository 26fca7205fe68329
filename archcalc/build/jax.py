"""The JAX builder: a graph (archcalc/graph.py) as a jitted function and its variables, and what
XLA says one step of it costs (``measure_graph``).

``apply, variables = archcalc.build(spec, framework="jax")``: ``variables`` is
``{"params": {path: {name: array}}, "state": {path: {name: array}}}`` (trainable parameters, and
non-trainable buffers: batch norm's running statistics, LeNet's RBF prototypes), ``apply`` is
``jax.jit``-ed: ``apply(variables, x)`` is an inference pass (N x C x H x W in, logits out);
``apply(variables, x, train=True, key=k)`` returns ``(outputs, new_state)`` with batch norm on
batch statistics (running statistics updated as torch.nn does, momentum 0.1, unbiased variance)
and dropout / stochastic depth drawn from ``key``. Only ``jax.lax``, ``jax.numpy`` and
``jax.random`` are used: a layer here is a few lines of lax, and flax's module system would add a
dependency and a second naming of parameters without changing what XLA compiles.

Each node is built from its resolved arguments and the windows its rule worked out (padding as
``(lo, hi)`` pairs, so ``same`` and ``[t, b, l, r]`` mean what they mean in archcalc's table;
``ceil`` pooling gets the extra high padding that gives the rule's output size). The caller's
N x C x H x W input is transposed once and every layer runs channels last (XLA:CPU runs
convolutions in NHWC and would otherwise copy around each one); a map output is transposed back,
and ``fc`` flattens in PyTorch's C, H, W order. Max pooling's backward is written out
(``_maxpool``: why, there). Values are not the point (shapes, parameters, FLOPs and memory are):
average pooling divides by the full window, as ``count_include_pad=True`` does.

As in the torch builder, LeNet-5's ``subsample`` (a k x k sum times one coefficient per map, plus
a bias), its ``rbf`` output (squared distances to fixed prototypes, a buffer) and a conv with a
connection ``table`` (only the connected kernels are parameters, scattered into the full kernel)
are a few lines of lax and build. ``CANNOT_BUILD`` is empty; a rule type without a mapping below
raises ``BuildError`` naming it (tests/test_build_jax.py checks every type of rules.py is mapped).

``measure_graph`` compiles an inference pass or a training step (``jax.value_and_grad`` of a
softmax cross-entropy, then an SGD / momentum / Adam / AdamW update, parameters and optimizer
state donated as a training loop does) for abstract inputs (``jax.ShapeDtypeStruct``: nothing is
allocated, nothing runs) and reads XLA's ``cost_analysis()`` and ``memory_analysis()``.

XLA:CPU fuses convolutions with their neighbours (YNNPACK fusions) and then hides the
intermediates between them; ``XLA_FLAGS=--xla_cpu_experimental_ynn_fusion_type=`` turns that off so
the buffers are the ones a GPU build keeps. The flag is read when JAX creates its CPU client:
importing this module adds it to ``XLA_FLAGS`` unless jax was imported before (then
``measure_graph`` reports ``"ynn_fusion_off": False``; ``archcalc measure`` imports this module
before jax, and a script can call ``ensure_xla_flags()`` before its first ``import jax``).
"""
from __future__ import annotations

import os
import sys

NO_YNN_FUSION = "--xla_cpu_experimental_ynn_fusion_type="


def ensure_xla_flags() -> bool:
    """Add NO_YNN_FUSION to XLA_FLAGS if jax has not been imported yet; whether the flag is in effect."""
    flags = os.environ.get("XLA_FLAGS", "")
    if NO_YNN_FUSION in flags.split():
        return True
    if "jax" in sys.modules:
        return False
    os.environ["XLA_FLAGS"] = (flags + " " + NO_YNN_FUSION).strip()
    return True


YNN_FUSION_OFF = ensure_xla_flags()

import math  # noqa: E402 - the flag above must be set before jax is imported
from functools import partial  # noqa: E402
from typing import NamedTuple  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from jax import lax  # noqa: E402

from ..graph import Graph, Node  # noqa: E402
from ..rules import ACTIVATIONS  # noqa: E402
from . import BuildError  # noqa: E402

CANNOT_BUILD: dict[str, str] = {}  # every rule type builds (see the module docstring)
BN_EPS, LN_EPS, BN_MOMENTUM = 1e-5, 1e-6, 0.1
OPTIMIZER_NAMES = ("sgd", "momentum", "adam", "adamw")


class Built(NamedTuple):
    """``apply, variables = archcalc.build(spec, framework="jax")``."""

    apply: object  # jitted: apply(variables, x, train=False, key=None)
    variables: dict  # {"params": ..., "state": ...}; jax.ShapeDtypeStruct leaves when abstract=True


# ---------------------------------------------------------------- one node: (init, apply)


def _activation(kind: str, x, slope: float = 0.01):
    if kind == "relu":
        return jax.nn.relu(x)
    if kind == "relu6":  # jax.nn's, with its custom jvp: jnp.clip's would keep two tie factors per element
        return jax.nn.relu6(x)
    if kind == "leaky_relu":
        return jax.nn.leaky_relu(x, slope)
    if kind == "sigmoid":
        return jax.nn.sigmoid(x)
    if kind == "tanh":
        return jnp.tanh(x)
    if kind == "gelu":
        return jax.nn.gelu(x, approximate=False)  # nn.GELU's default: the exact erf form
    if kind == "silu":
        return jax.nn.silu(x)
    if kind == "hardswish":
        return jax.nn.hard_swish(x)
    if kind == "hardsigmoid":
        return jax.nn.hard_sigmoid(x)
    if kind == "elu":
        return jax.nn.elu(x)
    raise BuildError(f"the jax builder cannot build {kind!r} activations")


def _channel_axes(x):
    """The axes batch norm reduces over: all but channels (the last axis)."""
    return tuple(range(x.ndim - 1))


def _bcast(v, x):
    """A per-channel vector against N x (H x W x) C: channels last, it broadcasts as it is."""
    return v


def _batchnorm(x, p, s, train: bool):
    if train:
        axes = _channel_axes(x)
        mean = jnp.mean(x, axes)
        var = jnp.var(x, axes)
        n = x.size // x.shape[-1]
        new = {"mean": (1 - BN_MOMENTUM) * s["mean"] + BN_MOMENTUM * mean,
               "var": (1 - BN_MOMENTUM) * s["var"] + BN_MOMENTUM * var * n / max(n - 1, 1)}
    else:
        mean, var, new = s["mean"], s["var"], s
    y = (x - _bcast(mean, x)) * _bcast(lax.rsqrt(var + BN_EPS), x)
    if p:
        y = y * _bcast(p["gamma"], x) + _bcast(p["beta"], x)
    return y, new


def _pads(window, out_hw, in_hw, ceil: bool = False):
    """(lo, hi) per axis; ceil mode adds the high padding that gives the rule's output size."""
    pads = []
    for w, o, n in zip(window, out_hw, in_hw):
        hi = w.pad_hi
        if ceil:
            hi = max(hi, (o - 1) * w.s + w.k_eff - n - w.pad_lo)
        pads.append((w.pad_lo, hi))
    return pads


class _Layer:
    """One node: its parameter and state shapes, and its forward function."""

    def __init__(self, node: Node):
        self.node = node
        self.params: dict = {}  # name -> (shape, fan_in or init kind)
        self.state: dict = {}
        self.fn = None  # fn(p, s, inputs, train, key) -> (y, new_state)


def _init(shape, how, key):
    if how == "zeros":
        return jnp.zeros(shape, jnp.float32)
    if how == "ones":
        return jnp.ones(shape, jnp.float32)
    return jax.random.normal(key, shape, jnp.float32) * math.sqrt(2.0 / max(how, 1))


def _layer(node: Node) -> _Layer:
    t, a, cost = node.type, node.args, node.cost
    parts = cost.parts
    if t in CANNOT_BUILD:
        raise BuildError(f"the jax builder cannot build {t!r} layers: {CANNOT_BUILD[t]}")
    L = _Layer(node)
    if t == "input":
        L.fn = lambda p, s, xs, train, key: (xs[0], s)
        return L
    if parts and parts[0].type in ("conv", "fc", "subsample"):
        _weighted(L)
        return L
    if t == "rbf":
        L.state = {"prototypes": ((cost.out[0], cost.buffer_elems // cost.out[0]), "ones")}

        def rbf(p, s, xs, train, key):
            x = _flatten(xs[0])
            proto = s["prototypes"]
            return jnp.sum((x[:, None, :] - proto[None]) ** 2, -1), s
        L.fn = rbf
        return L
    if t == "shortcut":
        if parts and parts[0].type == "identity":
            L.fn = _pure(lambda x: x)
            return L
        s = a.get("s", 1)
        sh, sw = (s, s) if isinstance(s, int) else tuple(s)
        extra = cost.out[0] - _in_channels(node)
        lo = extra // 2
        L.fn = _pure(lambda x: jnp.pad(x[:, ::sh, ::sw, :], ((0, 0), (0, 0), (0, 0), (lo, extra - lo))))
        return L
    if t in ("maxpool", "avgpool"):
        _pool(L)
        return L
    if t == "adaptive_avgpool":
        L.fn = _pure(lambda x: _adaptive_avg(x, tuple(cost.out[1:])))
        return L
    if t == "lrn":
        size, alpha, beta, k = a.get("size", 5), a.get("alpha", 1e-4), a.get("beta", 0.75), a.get("k", 1.0)

        def lrn(x):  # torch.nn.LocalResponseNorm: the mean of squares over `size` channels
            sq = jnp.pad(x * x, ((0, 0), (0, 0), (0, 0), (size // 2, (size - 1) // 2)))
            win = lax.reduce_window(sq, 0.0, lax.add, (1, 1, 1, size), (1, 1, 1, 1), "VALID")
            return x / (k + alpha / size * win) ** beta
        L.fn = _pure(lrn)
        return L
    if t == "batchnorm":
        c = cost.out[0]
        if a.get("affine", True):
            L.params = {"gamma": ((c,), "ones"), "beta": ((c,), "zeros")}
        L.state = {"mean": ((c,), "zeros"), "var": ((c,), "ones")}
        L.fn = lambda p, s, xs, train, key: _batchnorm(xs[0], p, s, train)
        return L
    if t in ACTIVATIONS:
        slope = a.get("slope", 0.01)
        L.fn = _pure(lambda x: _activation(t, x, slope))
        return L
    if t == "softmax":
        L.fn = _pure(lambda x: jax.nn.softmax(x, axis=-1))
        return L
    if t in ("dropout", "drop_path"):
        _noise(L, a.get("p", 0.5 if t == "dropout" else 0.0), per_sample=t == "drop_path")
        return L
    if t == "flatten":
        L.fn = _pure(_flatten)
        return L
    if t == "identity":
        L.fn = _pure(lambda x: x)
        return L
    if t in ("chunk", "split", "slice"):
        c = cost.out[0]
        if t == "chunk":
            start = a["i"] * c
        elif t == "split":
            start = sum(a["sizes"][: a["i"]])
        else:
            start = a.get("start", 0)
        L.fn = _pure(lambda x: x[..., start:start + c])
        return L
    if t == "channel_shuffle":
        g = a["g"]

        def shuffle(x):
            n, h, w, c = x.shape
            return x.reshape(n, h, w, g, c // g).transpose(0, 1, 2, 4, 3).reshape(n, h, w, c)
        L.fn = _pure(shuffle)
        return L
    if t == "layernorm":
        c = cost.out[0]
        if a.get("affine", True):
            L.params = {"gamma": ((c,), "ones"), "beta": ((c,), "zeros")}

        def ln(p, s, xs, train, key):
            x = xs[0]
            mean = jnp.mean(x, -1, keepdims=True)
            var = jnp.var(x, -1, keepdims=True)
            y = (x - mean) * lax.rsqrt(var + LN_EPS)
            if p:
                y = y * _bcast(p["gamma"], x) + _bcast(p["beta"], x)
            return y, s
        L.fn = ln
        return L
    if t == "layer_scale":
        L.params = {"gamma": ((cost.out[0],), "ones")}
        L.fn = lambda p, s, xs, train, key: (xs[0] * _bcast(p["gamma"], xs[0]), s)
        return L
    if t == "concat":
        L.fn = lambda p, s, xs, train, key: (jnp.concatenate(xs, -1), s)
        return L
    if t == "add":
        L.fn = lambda p, s, xs, train, key: (sum(xs[1:], xs[0]), s)
        return L
    if t == "mul":
        L.fn = lambda p, s, xs, train, key: (math.prod(xs[1:], start=xs[0]), s)
        return L
    if t == "mean":
        L.fn = lambda p, s, xs, train, key: (sum(xs[1:], xs[0]) / len(xs), s)
        return L
    raise BuildError(f"the jax builder cannot build {t!r} layers (no mapping for this type)")


def _flatten(x):
    """N x H x W x C to N x (C x H x W), in torch's order (a transpose, then a reshape)."""
    return (x.transpose(0, 3, 1, 2) if x.ndim == 4 else x).reshape(x.shape[0], -1)


def _in_channels(node: Node) -> int:
    return node.cost.parts[0].x[0] if node.cost.parts else node.cost.out[0]


def _pure(f):
    return lambda p, s, xs, train, key: (f(xs[0]), s)


def _noise(L: _Layer, rate: float, per_sample: bool) -> None:
    def fn(p, s, xs, train, key):
        x = xs[0]
        if not train or rate == 0:
            return x, s
        if key is None:
            raise BuildError(f"{L.node.path}: training with dropout needs key=")
        shape = (x.shape[0],) + (1,) * (x.ndim - 1) if per_sample else x.shape
        keep = jax.random.bernoulli(key, 1.0 - rate, shape)
        return jnp.where(keep, x / (1.0 - rate), 0.0), s
    L.fn = fn


def _adaptive_avg(x, out_hw):
    """torch's adaptive bins: bin i spans floor(i*n/o) .. ceil((i+1)*n/o)."""
    n, h_in, w_in, c = x.shape
    oh, ow = out_hw
    if h_in % oh == 0 and w_in % ow == 0:
        return x.reshape(n, oh, h_in // oh, ow, w_in // ow, c).mean((2, 4))
    rows = [jnp.stack([x[:, (i * h_in) // oh:-(-((i + 1) * h_in) // oh), (j * w_in) // ow:-(-((j + 1) * w_in) // ow)]
                       .mean((1, 2)) for j in range(ow)], 1) for i in range(oh)]
    return jnp.stack(rows, 1)


def _pool(L: _Layer) -> None:
    node = L.node
    cost = node.cost
    wh, ww = cost.window
    # the rule's windows hold the resolved kernel (global pooling too); its output the ceil rounding

    def fn(p, s, xs, train, key):
        x = xs[0]
        pads = _pads(cost.window, cost.out[1:], x.shape[1:3], ceil=True)
        if node.type == "maxpool":
            return _maxpool(x, tuple(cost.window), tuple(pads), tuple(cost.out[1:])), s
        full = [(0, 0)] + pads + [(0, 0)]
        y = lax.reduce_window(x, 0.0, lax.add, (1, wh.k, ww.k, 1), (1, wh.s, ww.s, 1), full) / (wh.k * ww.k)
        return y, s
    L.fn = fn


@partial(jax.custom_vjp, nondiff_argnums=(1, 2, 3))
def _maxpool(x, window, pads, out_hw):
    """Max pooling whose backward keeps only its input and output (PyTorch keeps input and int64
    indices).

    The forward is ``lax.reduce_window``. Its own gradient (select-and-scatter) XLA:CPU expands into
    a scatter with four int32 iotas of the input's size per pool, which no GPU build does; the
    gradient of a maximum of k x k strided slices divides by the count of ties, masks that need
    only x and y, which XLA computes in the forward pass and keeps, k x k output-sized tensors per
    pool. So the backward is written out (``_maxpool_bwd``): for each of the window's k x k offsets,
    ``where(x == y, g, 0)`` at the inputs that offset reads, summed, every term depending on g, so
    it runs in backward, fused; its only buffer is the gradient (and, for overlapping windows, y and
    g spread to the stride). An input tied for the maximum gets the whole gradient, as each of the
    tied inputs does (after a ReLU the common tie is at 0, where the ReLU's backward zeroes it)."""
    wh, ww = window
    return lax.reduce_window(x, -jnp.inf, lax.max, (1, wh.k, ww.k, 1), (1, wh.s, ww.s, 1),
                             ((0, 0),) + pads + ((0, 0),), window_dilation=(1, wh.d, ww.d, 1))


def _maxpool_fwd(x, window, pads, out_hw):
    y = _maxpool(x, window, pads, out_hw)
    return y, (x, y)


def _maxpool_bwd(window, pads, out_hw, res, g):
    x, y = res
    (wh, ww), (oh, ow) = window, out_hw
    n, h, w, c = x.shape
    (lo_h, _), (lo_w, _) = pads
    if wh.k == wh.s and ww.k == ww.s and wh.d == ww.d == 1:  # disjoint windows: y and g repeated
        def up(v):
            v = jnp.broadcast_to(v[:, :, None, :, None, :], (n, oh, wh.s, ow, ww.s, c))
            return v.reshape(n, oh * wh.s, ow * ww.s, c)
        hp, wp = max(h + lo_h, oh * wh.s), max(w + lo_w, ow * ww.s)
        xp = jnp.pad(x, ((0, 0), (lo_h, hp - h - lo_h), (lo_w, wp - w - lo_w), (0, 0)), constant_values=-jnp.inf)
        dxp = jnp.where(xp[:, :oh * wh.s, :ow * ww.s] == up(y), up(g), 0.0)
        dxp = jnp.pad(dxp, ((0, 0), (0, hp - oh * wh.s), (0, wp - ow * ww.s), (0, 0)))
        return (dxp[:, lo_h:lo_h + h, lo_w:lo_w + w, :],)
    xp = jnp.pad(x, ((0, 0),) + pads + ((0, 0),), constant_values=-jnp.inf)
    hp, wp = xp.shape[1:3]
    # overlapping windows: y and g spread to the stride once (window o at A + s x o, A the last
    # offset), so the term of offset a is a plain slice and the k x k terms and their sum one
    # fusion however many readers the gradient has (padding each term into place instead, XLA
    # keeps all k x k padded terms alive when the sum has two readers, as a concat's backward
    # does). y and g together: y alone XLA would spread in forward and keep, k x k times y's size
    ah, aw = (wh.k - 1) * wh.d, (ww.k - 1) * ww.d
    yg = lax.pad(jnp.stack([y, g], -1), jnp.array(jnp.nan, y.dtype),
                 ((0, 0, 0), (ah, hp - (oh - 1) * wh.s - 1, wh.s - 1), (aw, wp - (ow - 1) * ww.s - 1, ww.s - 1),
                  (0, 0, 0), (0, 0, 0)))
    dxp = None
    for i in range(wh.k):
        for j in range(ww.k):
            a, b = ah - i * wh.d, aw - j * ww.d
            win = yg[:, a:a + hp, b:b + wp]
            term = jnp.where(xp == win[..., 0], win[..., 1], 0.0)
            dxp = term if dxp is None else dxp + term
    return (dxp[:, lo_h:lo_h + h, lo_w:lo_w + w, :],)


_maxpool.defvjp(_maxpool_fwd, _maxpool_bwd)


def _weighted(L: _Layer) -> None:
    """conv, dwconv, a projection shortcut, fc or LeNet's subsample, with BN and activation fused."""
    node = L.node
    a, cost = node.args, node.cost
    first, rest = cost.parts[0], cost.parts[1:]
    if first.type == "conv":
        c_in, c_out = first.x[0], first.out[0]
        g = c_in if node.type == "dwconv" else 1 if node.type == "shortcut" else a.get("g", 1)
        bias = (not a.get("bn", True)) if node.type == "shortcut" else a.get("bias", True)
        wh, ww = cost.window
        table = a.get("table")
        if table is not None:  # LeNet-5's C3: only the connected kernels are parameters
            links = [(o, i) for o, row in enumerate(table) for i in row]
            L.params["w"] = ((wh.k, ww.k, len(links)), c_in * wh.k * ww.k)
            rows_, cols_ = jnp.array([o for o, _ in links]), jnp.array([i for _, i in links])
        else:
            L.params["w"] = ((wh.k, ww.k, c_in // g, c_out), c_in // g * wh.k * ww.k)
        if bias:
            L.params["b"] = ((c_out,), "zeros")
        pads = [(wh.pad_lo, wh.pad_hi), (ww.pad_lo, ww.pad_hi)]

        def core(p, x):
            w = p["w"]
            if table is not None:
                w = jnp.zeros((wh.k, ww.k, c_in, c_out), w.dtype).at[:, :, cols_, rows_].set(w)
            y = lax.conv_general_dilated(x, w, (wh.s, ww.s), pads, rhs_dilation=(wh.d, ww.d),
                                         dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=g)
            return y + _bcast(p["b"], y) if "b" in p else y
    elif first.type == "fc":
        n_in, n_out = math.prod(first.x), first.out[0]
        L.params["w"] = ((n_in, n_out), n_in)
        if a.get("bias", True):
            L.params["b"] = ((n_out,), "zeros")

        def core(p, x):
            y = _flatten(x) @ p["w"]
            return y + p["b"] if "b" in p else y
    else:  # subsample: a k x k sum times a coefficient per map, plus a bias per map
        c = first.x[0]
        wh, ww = cost.window
        L.params = {"w": ((c,), "ones"), "b": ((c,), "zeros")}

        def core(p, x):
            y = lax.reduce_window(x, 0.0, lax.add, (1, wh.k, ww.k, 1), (1, wh.s, ww.s, 1), "VALID")
            return y * _bcast(p["w"], y) + _bcast(p["b"], y)
    bn_c = next((part.x[0] for part in rest if part.type == "batchnorm"), None)
    if bn_c is not None:
        L.params.update({"bn_gamma": ((bn_c,), "ones"), "bn_beta": ((bn_c,), "zeros")})
        L.state = {"mean": ((bn_c,), "zeros"), "var": ((bn_c,), "ones")}
    slope = a.get("slope", 0.01)

    def fn(p, s, xs, train, key):
        y = core(p, xs[0])
        for part in rest:
            if part.type == "batchnorm":
                y, s = _batchnorm(y, {"gamma": p["bn_gamma"], "beta": p["bn_beta"]}, s, train)
            else:
                y = _activation(part.type, y, slope)
        return y, s
    L.fn = fn


# ---------------------------------------------------------------- the graph


def build_graph(graph: Graph, *, aux: bool = False, seed: int = 0, abstract: bool = False) -> Built:
    """The graph as ``Built(apply, variables)``; ``aux`` builds training-only side branches too
    (in training ``apply`` then returns ``(main, *aux_outputs)``); ``abstract`` gives
    ``jax.ShapeDtypeStruct`` variables (nothing allocated), for ``jit(...).lower``."""
    nodes = [n for n in graph.nodes if aux or not n.aux]
    layers = []
    for n in nodes:
        try:
            layers.append(_layer(n))
        except BuildError as e:
            if e.path is None:
                raise BuildError(e.message, file=n.file, line=n.line or None, path=n.path) from None
            raise
    position = {n.id: i for i, n in enumerate(nodes)}
    inputs = [tuple(position[j] for j in n.inputs) for n in nodes]
    main = [n for n in nodes if not n.aux]
    read = {j for n in nodes for j in n.inputs}
    outputs = [position[main[-1].id]] + [position[n.id] for n in nodes if n.aux and n.id not in read]
    keys = [n.path for n in nodes]

    def init(key):
        params, state = {}, {}
        for i, L in enumerate(layers):
            if L.params:
                ks = jax.random.split(jax.random.fold_in(key, i), len(L.params))
                params[keys[i]] = {k: _init(shape, how, kk) for kk, (k, (shape, how)) in zip(ks, L.params.items())}
            if L.state:
                state[keys[i]] = {k: _init(shape, how, None) for k, (shape, how) in L.state.items()}
        return {"params": params, "state": state}

    def apply(variables, x, train=False, key=None):
        params, state = variables["params"], variables["state"]
        values = [None] * len(layers)
        new_state = dict(state)
        for i, L in enumerate(layers):
            xs = [values[j] for j in inputs[i]] if inputs[i] else [_nhwc(x)]
            k = jax.random.fold_in(key, i) if key is not None else None
            with jax.named_scope(keys[i]):  # XLA's dumps (op_name) then name the layer of each buffer
                values[i], s = L.fn(params.get(keys[i], {}), state.get(keys[i], {}), xs, train, k)
            if keys[i] in state:
                new_state[keys[i]] = s
        if not train:
            return _nchw(values[outputs[0]])
        out = _nchw(values[outputs[0]]) if len(outputs) == 1 else tuple(_nchw(values[i]) for i in outputs)
        return out, new_state

    variables = jax.eval_shape(init, jax.random.key(seed)) if abstract else jax.jit(init)(jax.random.key(seed))
    return Built(jax.jit(apply, static_argnames=("train",)), variables)


def _nhwc(x):
    return x.transpose(0, 2, 3, 1) if x.ndim == 4 else x


def _nchw(x):
    return x.transpose(0, 3, 1, 2) if x.ndim == 4 else x


def count_params(variables) -> int:
    return sum(math.prod(v.shape) for v in jax.tree.leaves(variables["params"]))


# ---------------------------------------------------------------- one step, compiled and measured


def _loss(apply, params, state, x, labels, key):
    """Softmax cross-entropy of the main output (over axis 1, averaged over the batch and any
    positions), as a training script computes it; with aux outputs their losses are added."""
    outs, new_state = apply({"params": params, "state": state}, x, train=True, key=key)
    outs = outs if isinstance(outs, tuple) else (outs,)
    total = 0.0
    for out in outs:
        logits = out.reshape(out.shape[0], out.shape[1], -1)
        logp = jax.nn.log_softmax(logits, axis=1)
        total = total - jnp.mean(jnp.take_along_axis(logp, labels[:, None, None], axis=1))
    return total, new_state


def init_optimizer(name: str, params):
    """The optimizer state: SGD none, momentum one buffer, Adam/AdamW two moments and a step count."""
    if name == "sgd":
        return ()
    if name == "momentum":
        return (jax.tree.map(jnp.zeros_like, params),)
    if name in ("adam", "adamw"):
        return (jax.tree.map(jnp.zeros_like, params), jax.tree.map(jnp.zeros_like, params), jnp.zeros((), jnp.int32))
    raise BuildError(f"unknown optimizer {name!r}; known: {', '.join(OPTIMIZER_NAMES)}")


def _update(name: str, params, grads, opt, lr=0.01, b1=0.9, b2=0.999, eps=1e-8, wd=0.01):
    """torch.optim's updates (SGD, SGD momentum 0.9, Adam, AdamW) written with jax.tree.map."""
    if name == "sgd":
        return jax.tree.map(lambda p, g: p - lr * g, params, grads), opt
    if name == "momentum":
        buf = jax.tree.map(lambda m, g: 0.9 * m + g, opt[0], grads)
        return jax.tree.map(lambda p, m: p - lr * m, params, buf), (buf,)
    m, v, step = opt
    step = step + 1
    m = jax.tree.map(lambda m, g: b1 * m + (1 - b1) * g, m, grads)
    v = jax.tree.map(lambda v, g: b2 * v + (1 - b2) * g * g, v, grads)
    c1, c2 = 1 - b1 ** step, 1 - b2 ** step

    def new(p, m, v):
        if name == "adamw":
            p = p * (1 - lr * wd)
        return p - lr * (m / c1) / (jnp.sqrt(v / c2) + eps)
    return jax.tree.map(new, params, m, v), (m, v, step)


def train_step(apply, optimizer: str):
    """One training step, jitted with the parameters, state and optimizer state donated (their
    buffers are reused for the updated ones, as a training loop does)."""

    def step(params, state, opt, x, labels, key):
        (loss, new_state), grads = jax.value_and_grad(lambda p: _loss(apply, p, state, x, labels, key),
                                                      has_aux=True)(params)
        params, opt = _update(optimizer, params, grads, opt)
        return params, new_state, opt, loss
    return jax.jit(step, donate_argnums=(0, 1, 2))


def _costs(compiled) -> dict:
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    mem = compiled.memory_analysis()
    return {"flops": int(cost.get("flops", 0)), "bytes_accessed": int(cost.get("bytes accessed", 0)),
            "argument_bytes": mem.argument_size_in_bytes, "output_bytes": mem.output_size_in_bytes,
            "alias_bytes": mem.alias_size_in_bytes, "temp_bytes": mem.temp_size_in_bytes}


def measure_graph(graph: Graph, *, batch: int, optimizer: str = "sgd", train: bool = True) -> dict:
    """XLA's own figures for one step of the built model, compiled for abstract inputs on the
    default backend (nothing is allocated, nothing runs): ``cost_analysis()`` flops and
    ``memory_analysis()`` argument, output, alias and temp bytes, and their peak
    ``argument + output - alias + temp`` (docs/xla.md says why that is the peak)."""
    apply, variables = build_graph(graph, abstract=True)
    x = jax.ShapeDtypeStruct((batch, *graph.input), jnp.float32)
    result = {"name": graph.name, "batch": batch, "params": count_params(variables),
              "mode": "train" if train else "inference", "optimizer": optimizer if train else "none",
              "backend": jax.default_backend(), "ynn_fusion_off": YNN_FUSION_OFF}
    if train:
        opt = jax.eval_shape(lambda p: init_optimizer(optimizer, p), variables["params"])
        labels = jax.ShapeDtypeStruct((batch,), jnp.int32)
        key = jax.eval_shape(lambda: jax.random.key(0))
        compiled = train_step(apply, optimizer).lower(variables["params"], variables["state"], opt, x, labels,
                                                      key).compile()
    else:
        compiled = apply.lower(variables, x).compile()
    result.update(_costs(compiled))
    result["peak_bytes"] = result["argument_bytes"] + result["output_bytes"] - result["alias_bytes"] + result["temp_bytes"]
    return result
