"""Will it fit under JAX/XLA? One jitted training step (or inference pass), from a Report costed
under the ``xla`` profile (archcalc/profiles/xla.py).

XLA compiles the whole step into one program and plans its memory ahead (buffer assignment), and
``compiled.memory_analysis()`` reports it in four figures: ``argument`` (parameters, batch-norm
statistics, optimizer state, the batch and its labels), ``output``, ``alias`` (outputs written into
donated arguments: the updated parameters and state) and ``temp`` (one buffer for every
intermediate, reused as values die). The device holds ``argument + output - alias + temp`` at
once, and that is the peak archcalc predicts:

- the arguments, exactly: weights, buffers (running mean and variance; no int64 counter in JAX),
  optimizer state (momentum 1x, Adam/AdamW 2x the parameters and a 4-byte step count), the
  input, 4-byte labels and, with dropout, the 8-byte random key;
- ``temp``, replayed: forward liveness as XLA schedules it (every tensor from its producer to its
  last reader, or to backward when a layer keeps it, as the profile says: pre-activations,
  transposed convolution inputs), then backward in reverse (each activation gradient from its
  first consumer's backward to its producer's, the kept tensors freed after their last keeper's
  backward). Beside them, the weight copies (``_weight_copies``: each parameter copied at the
  start, each convolution's kernel transposed, until the layer's backward, unless a free
  parameter buffer takes it) and, during a grouped convolution's backward, its weight gradient
  computed dense. No parameter gradient is in ``temp``: XLA writes it into the donated parameter's
  own buffer, where the update then runs (so ``temp`` is the same for SGD, momentum and Adam);
- the ``output - alias`` remainder is the scalar loss.

Every moment is affine in the batch (a + b x batch), so the largest batch is closed form, as in
fit.py. The capacity XLA may use is ``mem_fraction x memory``: JAX preallocates 75% of the GPU
when the first operation runs (``XLA_PYTHON_CLIENT_MEM_FRACTION`` changes the fraction); with
``XLA_PYTHON_CLIENT_PREALLOCATE=false`` it allocates on demand but the BFC allocator keeps the same
limit; ``XLA_PYTHON_CLIENT_ALLOCATOR=platform`` allocates exactly what is asked, up to the whole
card (sources in docs/xla.md).
"""
from __future__ import annotations

from dataclasses import dataclass

from .fit import EXACT, OPTIMIZERS, Fit, Item
from .profiles.xla import PREACTIVATION, TRANSPOSED_INPUT, keeps_preactivation
from .report import Report
from .shape import elems

DTYPES = {"fp32": (4, 4), "fp16": (2, 2), "bf16": (2, 2)}  # activation, parameter bytes
ITEMS = ("weights", "buffers", "optimizer state", "input", "labels and key", "weight copies", "saved activations",
         "activations", "activation gradients", "grouped-conv weight gradient")


@dataclass(frozen=True)
class XlaConstants:
    """How much of the device XLA may use (docs/xla.md): ``mem_fraction`` of it (JAX's default 0.75,
    ``XLA_PYTHON_CLIENT_MEM_FRACTION``), whether it is taken at start-up (``preallocate``,
    ``XLA_PYTHON_CLIENT_PREALLOCATE``), or the whole device with ``allocator="platform"``."""

    mem_fraction: float = 0.75
    preallocate: bool = True
    allocator: str = "bfc"  # XLA_PYTHON_CLIENT_ALLOCATOR: "bfc" (default) or "platform"

    def capacity(self, memory: int) -> int:
        if self.allocator == "platform":
            return memory
        return int(memory * self.mem_fraction)

    def preallocated(self, memory: int) -> int:
        """Bytes JAX takes from the device when its first operation runs."""
        return self.capacity(memory) if self.preallocate and self.allocator == "bfc" else 0


XLA = XlaConstants()


class _Moments:
    """Tensors alive, each (category, per-sample bytes, bytes); every moment recorded as affine
    sums per category, so the peak at any batch and the largest batch are read off the same list."""

    def __init__(self):
        self.live: dict = {}
        self.moments: list[tuple[str, dict]] = []

    def add(self, key, category: str, per_sample: int = 0, const: int = 0) -> None:
        if key not in self.live and (per_sample or const):
            self.live[key] = (category, per_sample, const)

    def drop(self, key) -> None:
        self.live.pop(key, None)

    def moment(self, phase: str, extra: tuple = ()) -> None:
        sums: dict[str, list] = {}
        for category, per_sample, const in (*self.live.values(), *extra):
            s = sums.setdefault(category, [0, 0])
            s[0] += const
            s[1] += per_sample
        self.moments.append((phase, sums))


def _weight_copies(rows: list, pbytes: int) -> dict[int, int]:
    """Row index -> bytes of weight copies XLA holds in ``temp`` from the start of the step until
    the row's backward (docs/xla.md, "What XLA keeps and allocates", rule 1; read in XLA:CPU's
    buffer assignments).

    - Parameters are donated and the updated ones aliased to them, so copy insertion copies
      every parameter tensor at the start; its own argument buffer then takes the gradient and
      the update (no parameter gradient is in ``temp``), and the copy is read last by the update,
      right after the layer's backward.
    - A convolution whose input needs a gradient also gets its kernel transposed (in and out
      channels swapped) for that gradient, made when the parameters are and kept to its backward.

    A copy goes into ``temp`` unless a parameter's argument buffer is free for all its life and
    large enough: the buffer of a tensor of an earlier layer (free from its own copy until that
    layer's backward, which runs later) or, for a transposed kernel, of its own layer (its input
    gradient is computed before its weight gradient is written). One copy per buffer; the
    largest first, parameter copies before transposed kernels, in layer order, each into the
    first such buffer, largest first (the placement XLA's buffer assignment gave ResNet-18's and
    AlexNet's large tensors, tensor by tensor). A row's tensors: its main weight (kernel) and the
    rest (bias, batch-norm scale and shift) as one."""
    tensors = []  # (bytes, 0 for a parameter's copy / 1 for a transposed kernel, row index)
    for i, r in enumerate(rows):
        if not r.params:
            continue
        parts = r.cost.parts or ()
        bn = sum(p.x[0] for p in parts if p.type == "batchnorm")
        main = r.weight_params - bn if r.weight_params > bn else r.params
        tensors += [(main * pbytes, 0, i)] + ([((r.params - main) * pbytes, 0, i)] if r.params > main else [])
        if parts and parts[0].type == "conv" and r.tensor_in and r.tensor_in[0] != rows[0].tensor_out:
            tensors.append((main * pbytes, 1, i))
    tensors.sort(key=lambda t: (-t[0], t[1], t[2]))
    hosts = [(nbytes, i) for nbytes, kind, i in tensors if kind == 0]
    free = [True] * len(hosts)
    copies: dict[int, int] = {}
    for nbytes, kind, i in tensors:
        for h, (host_bytes, j) in enumerate(hosts):
            if host_bytes < nbytes:
                break
            if free[h] and (j < i or kind == 1 and j == i):
                free[h] = False
                break
        else:
            host_bytes = 0
        if host_bytes < nbytes:
            copies[i] = copies.get(i, 0) + nbytes
    return copies


def _dense_kernel_bytes(row, pbytes: int) -> int:
    """A grouped (or depthwise) convolution's kernel as if dense: XLA:CPU computes its weight
    gradient as a dense convolution (k x k x in x out) and then selects the groups' blocks, and
    both tensors are alive at once (EfficientNet-B0's 5 x 5 depthwise conv of 1152 channels: two
    126.6 MiB tensors, its peak at batch 2)."""
    parts = row.cost.parts or ()
    if not parts or parts[0].type != "conv" or not parts[0].arg("g"):
        return 0
    wh, ww = row.cost.window
    return wh.k * ww.k * parts[0].x[0] * parts[0].out[0] * pbytes


def _recomputed(row) -> bool:
    """A batch norm's output (from its kept input and statistics) or a residual sum (from its
    operands): elementwise, so XLA recomputes it for the activation's backward, as it does in a row."""
    parts = row.cost.parts or ()
    return row.type == "add" or bool(parts) and parts[-1].type == "batchnorm"


def _replay(report: Report, m: _Moments, *, optimizer: str, dtype: str, train: bool) -> None:
    rows = [r for r in report.rows if not r.aux]
    act, pbytes = DTYPES[dtype]
    params = sum(r.params for r in rows)
    m.add("weights", "weights", const=params * pbytes)
    m.add("buffers", "buffers", const=sum(r.buffer_elems for r in rows) * pbytes)
    if train:
        n_state = OPTIMIZERS[optimizer]
        m.add("state", "optimizer state", const=n_state * params * pbytes + (4 if n_state == 2 else 0))
        # int32 labels; the random key (2 x uint32) is an argument only if something draws from it
        noise = any(r.type == "dropout" or r.type == "drop_path" and r.node.args.get("p") for r in rows)
        m.add("labels", "labels and key", per_sample=4, const=8 if noise else 0)
    sizes: dict[int, int] = {}
    for r in rows:
        sizes.setdefault(r.tensor_out, elems(r.out))
    index = {r.node.id: i for i, r in enumerate(rows)}
    x_storage, final = rows[0].tensor_out, rows[-1].tensor_out
    alias_of: dict[int, int] = {}
    if not train:  # at inference a training copy (dropout) is its input
        for r in rows:
            if r.mem.alias and r.tensor_in and r.tensor_out != r.tensor_in[0]:
                alias_of[r.tensor_out] = alias_of.get(r.tensor_in[0], r.tensor_in[0])
        final = alias_of.get(final, final)

    def st(t):
        return alias_of.get(t, t)

    last_read = {st(t): i for i, r in enumerate(rows) for t in r.tensor_in}
    kept: dict[int, int] = {}  # storage -> the earliest row keeping it (freed after its backward)
    row_tmp: list[list] = [[] for _ in rows]
    producer = {r.tensor_out: r for r in rows}
    transposed: dict[int, int] = {}  # input storage -> the earliest convolution keeping its C x H x W x N copy
    if train:
        for i, r in enumerate(rows):
            for s in r.mem.saved:
                key = {"input": r.tensor_in[0] if r.tensor_in else None, "output": r.tensor_out}.get(s.of)
                if s.of.startswith("input") and s.of != "input":
                    key = r.tensor_in[int(s.of[5:])]
                if r.type == "maxpool" and s.of == "input" and keeps_preactivation(producer[key].cost):
                    continue  # XLA recomputes the activation from its kept input instead
                if s.what == PREACTIVATION and s.of == "input" and _recomputed(producer[key]):
                    continue  # XLA recomputes the activation's input from what it keeps anyway
                if s.what == TRANSPOSED_INPUT:  # one copy per input, however many convolutions read it
                    t = st(r.tensor_in[0])
                    transposed[t] = min(transposed.get(t, i), i)
                    continue
                if key is None:
                    nbytes = s.elems * (s.itemsize or act)
                    row_tmp[i].append((0, nbytes) if s.per_batch else (nbytes, 0))
                else:
                    kept[key] = min(kept.get(key, i), i)
    copies = _weight_copies(rows, pbytes) if train else {}
    for i, nbytes in copies.items():
        m.add(("copy", i), "weight copies", const=nbytes)
    m.add(("act", x_storage), "input", per_sample=sizes[x_storage] * act)
    for i, r in enumerate(rows[1:], 1):
        out = st(r.tensor_out)
        m.add(("act", out), "saved activations" if out in kept else "activations", per_sample=sizes[out] * act)
        m.moment(f"forward ({r.path})", (("activations", r.mem.temp_elems * act, 0),) if r.mem.temp_elems else ())
        for j, (per, const) in enumerate(row_tmp[i]):
            m.add(("tmp", i, j), "saved activations", per_sample=per, const=const)
        for t in r.tensor_in:
            if transposed.get(st(t)) == i:
                m.add(("chwn", st(t)), "saved activations", per_sample=sizes[st(t)] * act)
        for t in {st(t) for t in r.tensor_in}:
            if last_read.get(t) == i and t not in (out, final, x_storage) and t not in kept:
                m.drop(("act", t))
    if not train:
        return
    if final not in kept:
        m.drop(("act", final))  # the loss reads the logits; its own gradient is the next tensor
    grads: dict[int, object] = {}
    shared: dict[object, int] = {}
    n = len(rows)
    m.add(("grad", n - 1), "activation gradients", per_sample=elems(rows[-1].out) * act)
    grads[n - 1], shared[("grad", n - 1)] = ("grad", n - 1), 1
    m.moment("start of backward")
    for i in range(n - 1, 0, -1):
        r = rows[i]
        mine = grads.get(i)
        passes = r.mem.alias and not r.mem.inplace and not r.mem.train_copy or r.type in ("add", "concat", "identity")
        for node_id in r.node.inputs:
            j = index.get(node_id)
            if j is None or j == 0 or j in grads:
                continue
            if passes and mine is not None:
                grads[j] = mine
                shared[mine] += 1
            else:
                grads[j] = ("grad", j)
                shared[grads[j]] = 1
                m.add(grads[j], "activation gradients", per_sample=elems(rows[j].out) * act)
        # its parameter gradient goes into the parameter's own buffer; a grouped convolution's is
        # first computed dense (all in x out channels) and then masked to its groups
        dense = _dense_kernel_bytes(r, pbytes)
        m.moment(f"backward ({r.path})", (("grouped-conv weight gradient", 0, 2 * dense),) if dense else ())
        m.drop(("copy", i))  # the update, right after, reads the copy last
        if mine is not None:
            shared[mine] -= 1
            if shared[mine] == 0:
                m.drop(mine)
            del grads[i]
        for j in range(len(row_tmp[i])):
            m.drop(("tmp", i, j))
        for t in r.tensor_in:
            if transposed.get(st(t)) == i:
                m.drop(("chwn", st(t)))
        for t, first in list(kept.items()):
            if first == i and t != x_storage:
                m.drop(("act", t))
                del kept[t]
    m.moment("end of backward")


def _at(sums: dict, batch: int) -> dict[str, int]:
    return {k: a + b * batch for k, (a, b) in sums.items()}


def fit(report: Report, *, batch: int, capacity: int | None = None, optimizer: str = "sgd", dtype: str = "fp32",
        train: bool = True, constants: XlaConstants = XLA) -> Fit:
    """The memory XLA plans for one step of ``report``'s network (costed with ``profile="xla"``) at
    ``batch``; ``capacity`` is the device's memory, of which XLA may use ``constants.capacity``."""
    if report.profile != "xla":
        raise ValueError(f"the xla memory model needs a report costed with profile='xla', not {report.profile!r}")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}; known: {', '.join(OPTIMIZERS)}")
    if dtype not in DTYPES:
        raise ValueError(f"the xla model covers {', '.join(DTYPES)}, not {dtype!r}")
    if batch < 1:
        raise ValueError(f"batch must be a positive integer, got {batch}")
    m = _Moments()
    _replay(report, m, optimizer=optimizer, dtype=dtype, train=train)
    phase, sums = max(m.moments, key=lambda ps: sum(_at(ps[1], batch).values()))
    at = _at(sums, batch)
    items = tuple(Item(name, at[name]) for name in ITEMS if at.get(name))
    usable = None if capacity is None else constants.capacity(capacity)
    max_batch = None
    if usable is not None:
        max_batch = _max_batch([s for _, s in m.moments], usable)
    return Fit(name=report.name, mode="train" if train else "inference", optimizer=optimizer if train else "none",
               dtype=dtype, batch=batch, capacity_bytes=usable, peak_bytes=sum(at.values()), phase=phase,
               items=items, max_batch=max_batch, constants=EXACT)


def _max_batch(moments: list[dict], budget: int) -> int:
    """min over moments of floor((budget - a) / b): memory is exactly affine in the batch here."""
    best = None
    for sums in moments:
        a = sum(v[0] for v in sums.values())
        b = sum(v[1] for v in sums.values())
        if b == 0:
            if a > budget:
                return 0
            continue
        best = (budget - a) // b if best is None else min(best, (budget - a) // b)
    return max(best or 0, 0)


def to_dict(f: Fit, constants: XlaConstants = XLA, memory: int | None = None) -> dict:
    """fit.to_dict's JSON with the XLA side: the fraction, preallocation and what JAX preallocates."""
    from .fit import to_dict as base

    d = base(f)
    d["framework"] = "jax"
    d.pop("constants", None)
    d["xla"] = {"mem_fraction": constants.mem_fraction, "preallocate": constants.preallocate,
                "allocator": constants.allocator, "device_bytes": memory,
                "preallocated_bytes": None if memory is None else constants.preallocated(memory),
                # the plan the model follows and was measured against (docs/xla.md); a GPU build plans its own
                "buffer_plan": "XLA:CPU"}
    return d


def constants_from_env(env) -> XlaConstants:
    """The XlaConstants JAX would use under these environment variables (XLA_PYTHON_CLIENT_MEM_FRACTION,
    its newer name XLA_CLIENT_MEM_FRACTION, XLA_PYTHON_CLIENT_PREALLOCATE, XLA_PYTHON_CLIENT_ALLOCATOR)."""
    text = env.get("XLA_CLIENT_MEM_FRACTION") or env.get("XLA_PYTHON_CLIENT_MEM_FRACTION")
    fraction = XLA.mem_fraction
    if text:
        try:
            fraction = float(text)
        except ValueError:
            raise ValueError(f"XLA_PYTHON_CLIENT_MEM_FRACTION must be a number such as .9, got {text!r}") from None
        if not 0 < fraction <= 1:
            raise ValueError(f"XLA_PYTHON_CLIENT_MEM_FRACTION must be in (0, 1], got {text!r}")
    pre = env.get("XLA_PYTHON_CLIENT_PREALLOCATE", "true").strip().lower()
    if pre not in ("true", "false", "1", "0"):
        raise ValueError(f"XLA_PYTHON_CLIENT_PREALLOCATE must be true or false, got {pre!r}")
    allocator = env.get("XLA_PYTHON_CLIENT_ALLOCATOR", "default").strip().lower()
    if allocator not in ("default", "bfc", "platform"):
        raise ValueError(f"XLA_PYTHON_CLIENT_ALLOCATOR must be default, bfc or platform, got {allocator!r}")
    return XlaConstants(mem_fraction=fraction, preallocate=pre in ("true", "1"),
                        allocator="platform" if allocator == "platform" else "bfc")
