"""The PyTorch builder: a graph (archcalc/graph.py) as a ``torch.nn.Module``.

Each node becomes one module (a conv + BN + ReLU row an ``nn.Sequential`` of the three), built
from the node's resolved arguments and the shapes and windows its rule worked out, so padding
forms (``[t, b, l, r]``, TensorFlow's ``same``), ``ceil`` and ``global`` pooling mean exactly what
they mean in archcalc's table. ``GraphModule.forward`` runs the nodes in execution order and drops
each tensor after its last reader, as a hand-written ``forward`` would: a measurement of the
built model (``archcalc measure``) sees the liveness archcalc models, not a list of every output.

Choices that follow what archcalc's pytorch profile models (profiles/pytorch.py):

- ``dropout="native"`` (the default): ``torch.native_dropout``, the fused kernel CUDA runs, which
  keeps a bool mask; ``dropout="module"`` builds ``nn.Dropout``, which on CPU keeps a float noise
  tensor (4 bytes per element instead of 1).
- ``layernorm`` on a C x H x W map is channels-first (ConvNeXt's LayerNorm2d: permute, layer norm
  over C, permute back); on a vector it is ``nn.LayerNorm``.
- ``drop_path`` multiplies by per-sample noise in training, and returns its input when p is 0,
  as torchvision's StochasticDepth does (and archcalc's pytorch profile counts).
- ``aux=False`` (the default) leaves training-only side branches (GoogLeNet's auxiliary
  classifiers) out, as archcalc's ``totals`` do; ``aux=True`` builds them, and in training the
  model returns ``(main, *aux_outputs)``.

- LeNet-5's layers, which ``torch.nn`` lacks, are small modules that keep for backward what the
  profile says: ``Subsample`` is a depthwise conv whose kernel is the per-map coefficient expanded
  (a view of the parameter), ``RBF`` computes |x|^2 - 2 x.w^T + |w|^2 with the prototypes a buffer,
  and ``TableConv2d`` (a conv with a connection ``table``) has only the connected kernels as
  parameters and stacks the full kernel from them, zeros elsewhere, at every forward (autograd
  keeps that kernel once per batch; the profile counts it).

``CANNOT_BUILD`` is empty; a rule type without a mapping below raises ``BuildError`` naming it,
never a silent stand-in.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..graph import Graph, Node
from ..rules import ACTIVATIONS, uneven_padding
from . import BuildError

CANNOT_BUILD: dict[str, str] = {}  # every rule type builds (see the module docstring)


# ---------------------------------------------------------------- small modules


class NativeDropout(nn.Module):
    """Dropout as CUDA runs it: the fused ``native_dropout``, which keeps a bool mask for backward
    (``nn.Dropout`` on CPU keeps a float noise tensor)."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x):
        if not self.training or self.p == 0:
            return x
        return torch.native_dropout(x, self.p, True)[0]

    def extra_repr(self):
        return f"p={self.p}"


class Pad(nn.Module):
    """Asymmetric padding (TensorFlow's ``same``, or ``[t, b, l, r]``) before a window op."""

    def __init__(self, lrtb, value: float = 0.0):
        super().__init__()
        self.lrtb = tuple(lrtb)
        self.value = value

    def forward(self, x):
        return F.pad(x, self.lrtb, value=self.value)

    def extra_repr(self):
        return f"{self.lrtb}, value={self.value}"


class LayerNorm2d(nn.LayerNorm):
    """Layer norm over the channels at each position of an N x C x H x W map (ConvNeXt's)."""

    def forward(self, x):
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class LayerScale(nn.Module):
    """A learnable per-channel scale, ``gamma * x``."""

    def __init__(self, shape):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(shape))

    def forward(self, x):
        return self.gamma * x


class DropPath(nn.Module):
    """Stochastic depth per sample (torchvision's StochasticDepth, mode "row")."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x):
        if not self.training or self.p == 0:  # as torchvision's StochasticDepth: no noise at p = 0
            return x
        keep = 1.0 - self.p
        noise = torch.empty((x.shape[0],) + (1,) * (x.dim() - 1), dtype=x.dtype, device=x.device).bernoulli_(keep)
        noise.div_(keep)
        return x * noise


class ChannelSlice(nn.Module):
    """Channels start..stop-1 (chunk, split, slice): a view of the input."""

    def __init__(self, start: int, stop: int):
        super().__init__()
        self.start, self.stop = start, stop

    def forward(self, x):
        return x.narrow(1, self.start, self.stop - self.start)

    def extra_repr(self):
        return f"[{self.start}:{self.stop}]"


class ChannelShuffle(nn.Module):
    def __init__(self, g: int):
        super().__init__()
        self.g = g

    def forward(self, x):
        n, c, h, w = x.shape
        return x.view(n, self.g, c // self.g, h, w).transpose(1, 2).contiguous().view(n, c, h, w)


class OptionA(nn.Module):
    """ResNet's option-A shortcut: subsample by the stride, zero-pad the new channels."""

    def __init__(self, s, extra: int):
        super().__init__()
        self.s, self.extra = tuple(s), extra

    def forward(self, x):
        x = x[:, :, :: self.s[0], :: self.s[1]]
        return F.pad(x, (0, 0, 0, 0, self.extra // 2, self.extra - self.extra // 2))


class Subsample(nn.Module):
    """LeNet-5's trainable subsampling: each map's k x k window sums times one coefficient, plus one
    bias. A depthwise conv whose kernel is the coefficient expanded over the window: the kernel is a
    view of the parameter, so autograd keeps only the input (a pool times the coefficient would keep
    the pooled map too)."""

    def __init__(self, c: int, k, s):
        super().__init__()
        self.k, self.s = tuple(k), tuple(s)
        self.weight = nn.Parameter(torch.ones(c))
        self.bias = nn.Parameter(torch.zeros(c))

    def forward(self, x):
        w = self.weight.view(-1, 1, 1, 1).expand(-1, 1, *self.k)
        return F.conv2d(x, w, self.bias, self.s, groups=self.weight.shape[0])

    def extra_repr(self):
        return f"{self.weight.shape[0]}, k={self.k}, s={self.s}"


class RBF(nn.Module):
    """LeNet-5's Euclidean RBF output: squared distances to fixed prototypes (a buffer, not trained),
    as |x|^2 - 2 x.w^T + |w|^2, which keeps only the input (x - w broadcast would keep an
    N x out x n difference)."""

    def __init__(self, n_in: int, out: int):
        super().__init__()
        self.register_buffer("prototypes", torch.ones(out, n_in))

    def forward(self, x):
        x = x.flatten(1)
        w = self.prototypes
        return (x * x).sum(1, keepdim=True) - 2 * (x @ w.t()) + (w * w).sum(1)


class TableConv2d(nn.Module):
    """A conv in which each output map sees only the input maps its ``table`` row lists (LeNet-5's
    C3). Only the connected kernels are parameters (links x kh x kw); each forward stacks the full
    out x in x kh x kw kernel from them and zeros. The stack keeps nothing for backward, the conv keeps
    its input and that kernel (once per batch, counted by archcalc's pytorch profile); no index
    buffers (their storage would be model memory archcalc does not count)."""

    def __init__(self, c_in: int, table, k, s, padding, d, bias: bool):
        super().__init__()
        links = [(o, i) for o, row in enumerate(table) for i in row]
        self.shape = (len(table), c_in, *k)
        self.s, self.padding, self.d = tuple(s), tuple(padding), tuple(d)
        bound = 1.0 / (c_in * k[0] * k[1]) ** 0.5
        self.weight = nn.Parameter(torch.empty(len(links), *k).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.zeros(len(table))) if bias else None
        slot = {link: n for n, link in enumerate(links)}
        self._slots = [slot.get((o, i)) for o in range(len(table)) for i in range(c_in)]

    def kernel(self):
        zero = self.weight.new_zeros(self.weight.shape[1:])
        return torch.stack([zero if n is None else self.weight[n] for n in self._slots]).view(self.shape)

    def forward(self, x):
        return F.conv2d(x, self.kernel(), self.bias, self.s, self.padding, self.d)

    def extra_repr(self):
        return f"{self.shape[1]}, {self.shape[0]}, links={self.weight.shape[0]}, k={self.shape[2:]}, s={self.s}"


class Concat(nn.Module):
    def forward(self, *xs):
        return torch.cat(xs, 1)


class Add(nn.Module):
    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = inplace

    def forward(self, *xs):
        out = xs[0]
        if self.inplace:
            for x in xs[1:]:
                out += x
            return out
        for x in xs[1:]:
            out = out + x
        return out


class Mul(nn.Module):
    def forward(self, *xs):
        out = xs[0]
        for x in xs[1:]:
            out = out * x
        return out


class Mean(nn.Module):
    """FractalNet's join: the elementwise mean of its columns (stack + mean)."""

    def forward(self, *xs):
        return torch.stack(xs).mean(0)


# ---------------------------------------------------------------- the graph as a module


class GraphModule(nn.Module):
    """The nodes of a graph as modules, run in execution order."""

    def __init__(self, graph: Graph, nodes: list[Node], layers: list[nn.Module], outputs: list[int]):
        super().__init__()
        self.name = graph.name
        self.input_shape = tuple(graph.input)
        self.paths = [n.path for n in nodes]
        self.layers = nn.ModuleDict({_key(n.path): m for n, m in zip(nodes, layers)})
        self._keys = [_key(n.path) for n in nodes]
        position = {n.id: i for i, n in enumerate(nodes)}
        self._inputs = [tuple(position[j] for j in n.inputs) for n in nodes]
        self._outputs = [position[i] for i in outputs]
        last: dict[int, int] = {}
        for i, ins in enumerate(self._inputs):
            for j in ins:
                last[j] = i
        keep = set(self._outputs)
        self._free = [[] for _ in nodes]
        for j, i in last.items():
            if j not in keep:
                self._free[i].append(j)

    def forward(self, x):
        values: list = [None] * len(self._keys)
        layers = self.layers
        for i, key in enumerate(self._keys):
            ins = self._inputs[i]
            if not ins:
                values[i] = x
                continue
            layer = layers[key]
            values[i] = layer(values[ins[0]]) if len(ins) == 1 else layer(*[values[j] for j in ins])
            for j in self._free[i]:
                values[j] = None
        x = None
        if len(self._outputs) == 1 or not self.training:
            return values[self._outputs[0]]
        return tuple(values[i] for i in self._outputs)


def _key(path: str) -> str:
    return path.replace(".", "_")  # module names may not contain dots


def build_graph(graph: Graph, *, aux: bool = False, dropout: str = "native") -> GraphModule:
    """The graph as a ``GraphModule``; ``aux`` builds training-only side branches too."""
    if dropout not in ("native", "module"):
        raise BuildError(f"dropout must be 'native' or 'module', got {dropout!r}", file=graph.file)
    nodes = [n for n in graph.nodes if aux or not n.aux]
    layers = []
    for n in nodes:
        try:
            layers.append(_layer(n, graph, dropout))
        except BuildError as e:
            if e.path is None:
                raise BuildError(e.message, file=n.file, line=n.line or None, path=n.path) from None
            raise
    main = [n for n in nodes if not n.aux]
    read = {j for n in nodes for j in n.inputs}
    outputs = [main[-1].id] + [n.id for n in nodes if n.aux and n.id not in read]
    return GraphModule(graph, nodes, layers, outputs)


# ---------------------------------------------------------------- one node


def _layer(node: Node, graph: Graph, dropout: str) -> nn.Module:
    t = node.type
    a = node.args
    cost = node.cost
    parts = cost.parts
    if t in CANNOT_BUILD:
        raise BuildError(f"the torch builder cannot build {t!r} layers: {CANNOT_BUILD[t]}")
    if t == "input":
        return nn.Identity()
    if parts and parts[0].type in ("conv", "fc", "subsample"):
        return _weighted(node)
    x = parts[0].x
    if t == "rbf":
        return RBF(cost.buffer_elems // cost.out[0], cost.out[0])
    if t == "shortcut":  # identity (option A/B, shape kept) or option A
        if parts[0].type == "identity":
            return nn.Identity()
        s = a.get("s", 1)
        s = tuple(s) if isinstance(s, (list, tuple)) else (s, s)
        return OptionA(s, cost.out[0] - x[0])
    if t in ("maxpool", "avgpool"):
        return _pool(t, node)
    if t == "adaptive_avgpool":
        return nn.AdaptiveAvgPool2d(tuple(cost.out[1:]))
    if t == "lrn":
        return nn.LocalResponseNorm(a.get("size", 5), a.get("alpha", 1e-4), a.get("beta", 0.75), a.get("k", 1.0))
    if t == "batchnorm":
        return _bn(x, a.get("affine", True))
    if t in ACTIVATIONS:
        return _act(t, parts[0].arg("inplace"), a.get("slope", 0.01))
    if t == "softmax":
        return nn.Softmax(dim=1)
    if t == "dropout":
        p = a.get("p", 0.5)
        return NativeDropout(p) if dropout == "native" else nn.Dropout(p)
    if t == "flatten":
        return nn.Flatten()
    if t == "identity":
        return nn.Identity()
    if t in ("chunk", "split", "slice"):
        c = x[0]
        if t == "chunk":
            size = c // a["n"]
            start = a["i"] * size
            stop = start + size
        elif t == "split":
            start = sum(a["sizes"][: a["i"]])
            stop = start + a["sizes"][a["i"]]
        else:
            start = a.get("start", 0)
            stop = a.get("end") if a.get("end") is not None else c
        return ChannelSlice(start, stop)
    if t == "channel_shuffle":
        return ChannelShuffle(a["g"])
    if t == "layernorm":
        affine = a.get("affine", True)
        return LayerNorm2d(x[0], elementwise_affine=affine) if len(x) == 3 else nn.LayerNorm(x[0], elementwise_affine=affine)
    if t == "layer_scale":
        return LayerScale((x[0], 1, 1) if len(x) == 3 else (x[0],))
    if t == "drop_path":
        return DropPath(a.get("p", 0.0))
    if t == "concat":
        return Concat()
    if t == "add":
        return Add(bool(a.get("inplace", False)))
    if t == "mul":
        return Mul()
    if t == "mean":
        return Mean()
    raise BuildError(f"the torch builder cannot build {t!r} layers (no mapping for this type)")


def _bn(x, affine: bool = True) -> nn.Module:
    return nn.BatchNorm2d(x[0], affine=affine) if len(x) == 3 else nn.BatchNorm1d(x[0], affine=affine)


def _act(kind: str, inplace, slope: float = 0.01) -> nn.Module:
    inplace = bool(inplace)
    if kind == "relu":
        return nn.ReLU(inplace=inplace)
    if kind == "relu6":
        return nn.ReLU6(inplace=inplace)
    if kind == "leaky_relu":
        return nn.LeakyReLU(slope, inplace=inplace)
    if kind == "elu":
        return nn.ELU(inplace=inplace)
    if kind == "silu":
        return nn.SiLU(inplace=inplace)
    if kind == "hardswish":
        return nn.Hardswish(inplace=inplace)
    if kind == "hardsigmoid":
        return nn.Hardsigmoid(inplace=inplace)
    if kind == "sigmoid":  # torch.nn has no in-place form: archcalc counts these as not in place
        return nn.Sigmoid()
    if kind == "tanh":
        return nn.Tanh()
    if kind == "gelu":
        return nn.GELU()
    raise BuildError(f"the torch builder cannot build {kind!r} activations")


def _padding(window) -> tuple[tuple[int, int] | None, tuple[int, int, int, int] | None]:
    """(symmetric padding, None) or (None, F.pad's (left, right, top, bottom))."""
    uneven = uneven_padding(window)
    if not uneven:
        return (window[0].pad_lo, window[1].pad_lo), None
    top, bottom, left, right = uneven[0][1]
    return None, (left, right, top, bottom)


def _weighted(node: Node) -> nn.Module:
    """conv, dwconv, a projection shortcut, fc or LeNet's subsample, with the BN and activation fused
    into its row."""
    a = node.args
    cost = node.cost
    first, rest = cost.parts[0], cost.parts[1:]
    mods: list[nn.Module] = []
    if first.type == "conv":
        c_in = first.x[0]
        c_out = first.out[0]
        if node.type == "dwconv":
            g = c_in
        elif node.type == "shortcut":
            g = 1
        else:
            g = a.get("g", 1)
        bias = (not a.get("bn", True)) if node.type == "shortcut" else a.get("bias", True)
        wh, ww = cost.window
        sym, pad = _padding(cost.window)
        if pad is not None:
            mods.append(Pad(pad))
        if a.get("table") is not None:
            mods.append(TableConv2d(c_in, a["table"], (wh.k, ww.k), (wh.s, ww.s), sym or (0, 0), (wh.d, ww.d), bias))
        else:
            mods.append(nn.Conv2d(c_in, c_out, (wh.k, ww.k), (wh.s, ww.s), sym or 0, (wh.d, ww.d), groups=g, bias=bias))
    elif first.type == "subsample":
        wh, ww = cost.window
        mods.append(Subsample(first.x[0], (wh.k, ww.k), (wh.s, ww.s)))
    else:  # fc: a C x H x W input is flattened first (a view)
        if len(first.x) != 1:
            mods.append(nn.Flatten())
        n_in = 1
        for v in first.x:
            n_in *= v
        mods.append(nn.Linear(n_in, first.out[0], bias=a.get("bias", True)))
    for part in rest:
        if part.type == "batchnorm":
            mods.append(_bn(part.x))
        else:
            mods.append(_act(part.type, part.arg("inplace")))
    return mods[0] if len(mods) == 1 else nn.Sequential(*mods)


def _pool(kind: str, node: Node) -> nn.Module:
    a = node.args
    wh, ww = node.cost.window
    ceil = bool(a.get("ceil", False))
    sym, pad = _padding(node.cost.window)
    k, s = (wh.k, ww.k), (wh.s, ww.s)
    if kind == "maxpool":
        pool = nn.MaxPool2d(k, s, sym or 0, (wh.d, ww.d), ceil_mode=ceil)
        return pool if pad is None else nn.Sequential(Pad(pad, float("-inf")), pool)
    pool = nn.AvgPool2d(k, s, sym or 0, ceil_mode=ceil)
    return pool if pad is None else nn.Sequential(Pad(pad), pool)


# ---------------------------------------------------------------- measuring one step


OPTIMIZER_NAMES = ("sgd", "momentum", "adam", "adamw")


def _optimizer(name: str, params, foreach: bool):
    if name == "sgd":
        return torch.optim.SGD(params, lr=0.01, foreach=foreach)
    if name == "momentum":
        return torch.optim.SGD(params, lr=0.01, momentum=0.9, foreach=foreach)
    if name == "adam":
        return torch.optim.Adam(params, foreach=foreach)
    if name == "adamw":
        return torch.optim.AdamW(params, foreach=foreach)
    raise BuildError(f"unknown optimizer {name!r}; known: {', '.join(OPTIMIZER_NAMES)}")


def _saved_bytes(model: nn.Module, x) -> tuple[int, int]:
    """(activation bytes, other bytes) autograd keeps in one training forward pass: every packed
    tensor's storage once, parameters and buffers left out (float storages with the batch first, in
    the tensor or the base it views, are activations; int64 indices, bool masks, per-channel
    statistics and a table conv's stacked kernel the rest)."""
    model_storages = {id(t.untyped_storage()) for t in (*model.parameters(), *model.buffers())}
    kept: dict[int, tuple] = {}
    refs = []  # storages held while counting, so that an id is not reused
    batch = x.shape[0]

    def pack(t):
        st = t.untyped_storage()
        if id(st) not in model_storages:
            refs.append(st)
            act = t.dtype.is_floating_point and any(
                v is not None and v.dim() >= 2 and v.shape[0] == batch for v in (t, t._base))
            kept[id(st)] = (st.nbytes(), act or kept.get(id(st), (0, False))[1])
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(x)
    act = sum(n for n, is_act in kept.values() if is_act)
    return act, sum(n for n, _ in kept.values()) - act


_KINDS = {"Parameter": "params", "Buffer": "buffers", "Gradient": "grads", "Activation": "activations",
          "Temp": "temps", "Optstate": "optimizer", "Other": "input"}


def _snapshot(tracker) -> dict:
    snap = tracker.get_tracker_snapshot("peak")
    out = {v: 0 for v in _KINDS.values()}
    total = 0
    for dev_snap in snap.values():
        for k, v in dev_snap.items():
            name = getattr(k, "value", k)
            if name == "Total":
                total += v
            else:
                out[_KINDS[name]] += v
    out["total"] = total
    return out


class _RealGradient(torch.autograd.Function):
    """The identity, whose backward hands on a real (contiguous) gradient. ``out.sum()``'s gradient
    is one scalar expanded to the output's shape, which allocates nothing; a loss (cross-entropy's
    softmax minus targets) or the next layer of a network hands the output a tensor of its own, the
    gradient archcalc's step has at the start of backward (it matters for a module spec, whose output
    is a whole feature map)."""

    @staticmethod
    def forward(ctx, x):
        return x.view_as(x)

    @staticmethod
    def backward(ctx, g):
        return g.contiguous()


def _loss(out):
    return _RealGradient.apply(out).sum()


def measure_graph(graph: Graph, *, batch: int, optimizer: str = "sgd", train: bool = True, foreach: bool = True,
                  dropout: str = "native") -> dict:
    """One step of the built model under ``FakeTensorMode`` (nothing is allocated, nothing is
    computed), tracked by PyTorch's own ``MemTracker``: its itemised peak and where it happened.

    Training is measured in the steady state: one step runs first (untracked) so the optimizer's
    state exists, as in every step after the first; then forward, ``loss = out.sum()``, backward,
    ``step()`` and ``zero_grad()`` are tracked. The caller's input is tracked as "input" (MemTracker's
    "Other"): it is alive for the whole step. ``foreach=True`` is CUDA's optimizer default."""
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.distributed._tools.mem_tracker import MemTracker

    with FakeTensorMode():
        model = build_graph(graph, dropout=dropout)
        # a module spec's input is an activation of the network around it (spec input_requires_grad)
        x = torch.randn((batch, *graph.input), requires_grad=graph.input_requires_grad)
        params = sum(p.numel() for p in model.parameters())
        result = {"name": graph.name, "batch": batch, "params": params,
                  "mode": "train" if train else "inference", "optimizer": optimizer if train else "none"}
        if not train:
            model.eval()
            tracker = MemTracker()
            tracker.track_external(model, x)
            with tracker, torch.no_grad():
                out = model(x)
                del out
            result["peak"] = _snapshot(tracker)
            result["phase"] = "forward"
            return result
        model.train()
        act, fixed = _saved_bytes(model, x)
        result["saved_bytes"] = act + fixed
        result["saved_activation_bytes"], result["saved_other_bytes"] = act, fixed
        opt = _optimizer(optimizer, model.parameters(), foreach)
        _loss(model(x)).backward()  # the warm-up step: the optimizer's state now exists
        opt.step()
        opt.zero_grad(set_to_none=True)
        x.grad = None  # as the network around a module would: its gradient is made anew each step
        tracker = MemTracker()
        tracker.track_external(model, opt, x)
        phases = []
        with tracker:
            loss = _loss(model(x))
            phases.append(("forward", _snapshot(tracker)["total"]))
            loss.backward()
            phases.append(("backward", _snapshot(tracker)["total"]))
            opt.step()
            phases.append(("optimizer step", _snapshot(tracker)["total"]))
            opt.zero_grad(set_to_none=True)
            del loss
        result["peak"] = _snapshot(tracker)
        best = 0
        for phase, total in phases:
            if total > best:
                best, result["phase"] = total, phase
        return result
