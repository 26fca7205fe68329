"""Will it fit? The PyTorch/CUDA memory of one training step (or an inference pass), from a Report.

Pure arithmetic over a report (archcalc/report.py): the rows say what each layer keeps for
backward (the pytorch profile), which storage each tensor lives in and who reads it, so one step
can be replayed as PyTorch runs it and the bytes alive counted at every moment:

- the model: weights and buffers (and, in mixed precision, the half-precision weight copies
  autocast makes and convolutions keep for backward), optimizer state (SGD 0, momentum 1x,
  Adam/AdamW 2x the parameters, fp32), the caller's input (alive for the whole step);
- forward: every tensor from the row that writes it to its last reader, or to the backward pass
  when a layer keeps it (``saved``), and a row's intermediates while it runs;
- backward, rows in reverse: the gradient of each activation from its first consumer's backward to
  its producer's, parameter gradients as they are produced, saved tensors freed after the last
  layer that keeps them has run its backward;
- the optimizer step: weights, gradients, state and the step's temporaries (``torch.optim.Adam``
  with ``foreach``, CUDA's default, holds one fp32 copy of the parameters: the sqrt of the second
  moments).

The peak is the largest moment, wherever it is (the end of forward, the start of backward, an
optimizer step): at a small batch it is the step (weights, gradients and state), at a large batch
the start of backward (saved activations). Every moment is affine in the batch (a + b x batch), so
the largest batch that fits is ``min over moments of floor((capacity - a) / b)``: a closed form.

On a CUDA device three more things take memory, each a named, overridable constant (sources in
docs/fit.md): the CUDA context (outside the caching allocator), the cuDNN workspace, and the
caching allocator's rounding (every block a multiple of 512 B; requests of at least 10 MiB rounded
to 2 MiB, smaller ones carved from 2 MiB and 20 MiB segments).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from .report import Report
from .shape import elems

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30


@dataclass(frozen=True)
class Constants:
    """Every constant of the CUDA side of the model, named and overridable (docs/fit.md)."""

    cuda_context: int = 500 * MiB  # CUDA context + kernels (CUDA_MODULE_LOADING=LAZY), outside the allocator
    cudnn_workspace: int = 256 * MiB  # an assumption: cuDNN's workspace depends on the algorithms chosen
    block: int = 512  # kMinBlockSize: every allocation a multiple of 512 B
    small_size: int = 1 * MiB  # kSmallSize: the largest "small" request
    small_segment: int = 2 * MiB  # kSmallBuffer: small requests share 2 MiB segments
    large_segment: int = 20 * MiB  # kLargeBuffer: requests of 1-10 MiB share 20 MiB segments
    min_large_alloc: int = 10 * MiB  # kMinLargeAlloc
    round_large: int = 2 * MiB  # kRoundLarge: requests of 10 MiB or more rounded up to 2 MiB


CUDA = Constants()
# What MemTracker counts under FakeTensorMode on a CPU: tensor bytes, nothing else.
EXACT = Constants(cuda_context=0, cudnn_workspace=0, block=1, small_size=0, small_segment=0, large_segment=0,
                  min_large_alloc=0, round_large=1)

OPTIMIZERS = {"none": 0, "sgd": 0, "momentum": 1, "adam": 2, "adamw": 2}  # state tensors per parameter
# dtype -> (activation bytes, parameter/gradient bytes); mixed: fp32 master weights, half activations
DTYPES = {"fp32": (4, 4), "fp16": (2, 2), "bf16": (2, 2), "mixed": (2, 4)}
ACTIVATION_DTYPE = {"fp32": "fp32", "fp16": "fp16", "bf16": "bf16", "mixed": "fp16"}

ITEMS = ("weights", "buffers", "half weight copies", "gradients", "gradient buckets", "optimizer state", "input",
         "saved activations", "recomputed activations", "activations", "activation gradients",
         "gathered parameters", "gradients being reduced", "optimizer temporaries",
         "allocator rounding", "allocator segments", "cudnn workspace", "cuda context")


def round_block(n: int, c: Constants) -> int:
    """Bytes the caching allocator hands out for a request of n bytes."""
    if n <= 0:
        return 0
    return -(-n // c.block) * c.block


def segment_slack(n: int, c: Constants) -> int:
    """Reserved beyond the 512 B-rounded block: a request of 10 MiB or more gets its own segment,
    rounded up to 2 MiB. Smaller requests share segments (their slack is not attributed)."""
    if c.round_large <= 1 or n < c.min_large_alloc:
        return 0
    b = round_block(n, c)
    return -(-b // c.round_large) * c.round_large - b


@dataclass(frozen=True)
class Item:
    name: str
    bytes: int


@dataclass(frozen=True)
class Fit:
    """The memory of one step (``archcalc.fit``): ``peak_bytes`` and where the peak is (``phase``),
    the ``items`` it is made of, and with a device ``fits``, ``headroom_bytes`` and ``max_batch``."""

    name: str
    mode: str  # "train" or "inference"
    optimizer: str
    dtype: str
    batch: int
    capacity_bytes: int | None
    peak_bytes: int
    phase: str  # where the peak happens
    items: tuple[Item, ...]
    max_batch: int | None  # the largest batch that fits (None without a capacity)
    constants: Constants = field(default_factory=Constants)
    checkpoint: str | None = None  # sqrt, blocks or the paths given (archcalc/checkpoint.py)
    segments: int = 0  # checkpointed segments
    recompute_macs: int = 0  # forward MACs rerun in backward by checkpointing, for the batch

    @property
    def fits(self) -> bool | None:
        return None if self.capacity_bytes is None else self.peak_bytes <= self.capacity_bytes

    @property
    def headroom_bytes(self) -> int | None:
        return None if self.capacity_bytes is None else self.capacity_bytes - self.peak_bytes

    def to_dict(self) -> dict:
        """The JSON model of `archcalc fit --format json` (docs/fit.md)."""
        return to_dict(self)

    def to_dataframe(self):
        """The itemised peak as a ``pandas.DataFrame``: ``name``, ``bytes``, ``share``. Needs pandas."""
        from .frame import dataframe

        return dataframe(to_dict(self)["items"], ["name", "bytes", "share"])


# ---------------------------------------------------------------- the ledger of live tensors


class _Ledger:
    """Tensors alive, each (category, bytes per sample, bytes per batch); running sums kept both
    exactly at one batch size (with the allocator's rounding) and as affine terms a + b x batch."""

    def __init__(self, batch: int, c: Constants):
        self.batch = batch
        self.c = c
        self.live: dict = {}  # key -> (category, per_sample, const, exact bytes)
        self.exact: dict[str, int] = {}
        self.rounding = 0
        self.segments = 0
        self.a = self.b = 0  # affine sums
        self.count = 0
        self.peak = -1
        self.peak_items: dict = {}
        self.peak_phase = ""
        self.moments: list[tuple[int, int, int, str]] = []  # (a, b, tensors, phase)

    def add(self, key, category: str, per_sample: int = 0, const: int = 0, tensors: int = 1) -> None:
        if key in self.live or (per_sample == 0 and const == 0):
            return
        raw = per_sample * self.batch + const
        # one tensor: rounded as the allocator does; a group (every weight) as one sum, its rounding
        # (at most 511 B per tensor) left out
        rounded = round_block(raw, self.c) if tensors == 1 else raw
        slack = segment_slack(raw, self.c) if tensors == 1 else 0
        self.live[key] = (category, per_sample, const, raw, rounded - raw, slack, tensors)
        self.exact[category] = self.exact.get(category, 0) + raw
        self.rounding += rounded - raw
        self.segments += slack
        self.a += const
        self.b += per_sample
        self.count += tensors

    def drop(self, key) -> None:
        entry = self.live.pop(key, None)
        if entry is None:
            return
        category, per_sample, const, raw, rnd, slack, tensors = entry
        self.exact[category] -= raw
        self.rounding -= rnd
        self.segments -= slack
        self.a -= const
        self.b -= per_sample
        self.count -= tensors

    def moment(self, phase: str, extra: tuple = ()) -> None:
        """A moment of the step: record it, and the peak so far. ``extra``: (category, per_sample,
        const) alive only at this moment (a row's intermediates)."""
        a, b, n = self.a, self.b, self.count
        exact = dict(self.exact)
        rounding, segments = self.rounding, self.segments
        for category, per_sample, const in extra:
            raw = per_sample * self.batch + const
            a += const
            b += per_sample
            n += 1
            exact[category] = exact.get(category, 0) + raw
            rounding += round_block(raw, self.c) - raw
            segments += segment_slack(raw, self.c)
        self.moments.append((a, b, n, phase))
        total = sum(exact.values()) + rounding + segments
        if total > self.peak:
            self.peak = total
            self.peak_phase = phase
            self.peak_items = {**exact, "allocator rounding": rounding, "allocator segments": segments}


# ---------------------------------------------------------------- the step, replayed


def _storage_sizes(rows) -> dict[int, int]:
    sizes: dict[int, int] = {}
    for r in rows:
        if r.tensor_out not in sizes:
            sizes[r.tensor_out] = elems(r.out)
    return sizes


def _saved_key(r, s):
    if s.of == "input":
        return r.tensor_in[0]
    if s.of.startswith("input"):
        return r.tensor_in[int(s.of[5:])]
    if s.of == "output":
        return r.tensor_out
    return None  # an intermediate of the row


def _param_tensors(r) -> int:
    n = (r.cost.weight_params > 0) + (r.cost.bias_params > 0)
    n += sum(1 for p in r.cost.parts if p.type == "batchnorm") if len(r.cost.parts) > 1 else 0
    return n


@dataclass(frozen=True)
class Plan:
    """What one device runs in one step: ``rows[0]`` is its input (the network's, or the tensor
    the previous device sends under ``--parallel model``), ``rows[1:]`` its layers."""

    rows: tuple
    optimizer: str = "sgd"
    dtype: str = "fp32"
    train: bool = True
    segments: tuple = ()  # (a, b): rows a+1..b under torch.utils.checkpoint (archcalc/checkpoint.py)
    shard: tuple = (1, 1, 1)  # ZeRO: devices sharing the optimizer state, the gradients, the parameters
    caller_input: bool = True  # rows[0] is the caller's x: alive all step, no gradient
    buckets: bool = False  # DDP's gradient buckets (gradient_as_bucket_view=False, the default)


def _div(n: int, k: int) -> int:
    return -(-n // k)


class _Step:
    """One step of a plan replayed into a ledger: forward, backward (with checkpointed segments
    recomputed), the optimizer step."""

    def __init__(self, p: Plan, led: _Ledger):
        self.p, self.led = p, led
        rows = self.rows = p.rows
        self.act, self.pbytes = DTYPES[p.dtype]
        self.sizes = _storage_sizes(rows)
        self.index = {r.node.id: i for i, r in enumerate(rows)}
        self.alias_of: dict[int, int] = {}
        if not p.train:  # at inference a training copy (dropout) is its input: map its storage back
            for r in rows:
                if r.mem.alias and r.tensor_in and r.tensor_out != r.tensor_in[0]:
                    self.alias_of[r.tensor_out] = self.alias_of.get(r.tensor_in[0], r.tensor_in[0])
        self.input = rows[0].tensor_out
        self.final = self.st(rows[-1].tensor_out)
        self.last_read = {self.st(t): i for i, r in enumerate(rows) for t in r.tensor_in}
        self.seg_end = {b: a for a, b in p.segments}
        inside = {j for a, b in p.segments for j in range(a + 1, b + 1)}
        self.released: dict[int, int] = {}  # kept storage -> the earliest row keeping it (freed after its backward)
        self.row_tmp: list[list] = [[] for _ in rows]
        if p.train:
            for i in range(len(rows)):
                if i not in inside:
                    self._keep(i, self.released)
            for a, b in p.segments:  # checkpoint holds its input until the segment's backward is done
                t = self.st(rows[a].tensor_out)
                self.released[t] = min(self.released.get(t, a + 1), a + 1)

    def st(self, t):
        return self.alias_of.get(t, t)

    def _keep(self, i, into):
        for s in self.rows[i].mem.saved:
            key = _saved_key(self.rows[i], s)
            if key is None:
                nbytes = s.elems * (s.itemsize or self.act)
                self.row_tmp[i].append((0, nbytes) if s.per_batch else (nbytes, 0))
            else:
                into[self.st(key)] = min(into.get(self.st(key), i), i)

    def gathered(self, r) -> tuple:
        """ZeRO-3: the layer's parameters gathered from every device while it runs."""
        n = self.p.shard[2]
        if n == 1 or not r.params:
            return ()
        full = r.params * self.pbytes
        return (("gathered parameters", 0, full - _div(full, n)),)

    def model(self) -> None:
        p, led, body = self.p, self.led, self.rows[1:]
        n_opt, _, n_par = p.shard
        params = sum(r.params for r in body)
        n_tensors = max(sum(_param_tensors(r) for r in body), 1)
        bn_parts = sum(1 for r in body for q in r.cost.parts if q.type == "batchnorm")
        led.add("weights", "weights", const=_div(params * self.pbytes, n_par), tensors=n_tensors)
        # BN's running mean and var at the parameter dtype, and its int64 num_batches_tracked
        led.add("buffers", "buffers", const=sum(r.buffer_elems for r in body) * self.pbytes + 8 * bn_parts,
                tensors=max(2 * bn_parts, 1))
        if p.train and OPTIMIZERS[p.optimizer]:
            state_bytes = 4 if p.dtype == "mixed" else self.pbytes
            led.add("state", "optimizer state", const=_div(OPTIMIZERS[p.optimizer] * params * state_bytes, n_opt),
                    tensors=OPTIMIZERS[p.optimizer] * n_tensors)
        if p.train and p.buckets:  # DDP: a flat copy of every gradient, allocated with the model
            led.add("buckets", "gradient buckets", const=params * self.pbytes,
                    tensors=max(1, _div(params * self.pbytes, 25 * MiB)))
        if p.dtype == "mixed" and p.train:
            led.add("half", "half weight copies", const=_div(params * 2, n_par), tensors=n_tensors)
        self.params = params

    def forward(self) -> None:
        led, rows, act = self.led, self.rows, self.act
        led.add(("act", self.input), "input" if self.p.caller_input else self._category(self.input),
                per_sample=self.sizes[self.input] * act)
        for i in range(1, len(rows)):
            r = rows[i]
            out = self.st(r.tensor_out)
            led.add(("act", out), self._category(out), per_sample=self.sizes[out] * act)
            # scratch (LRN's intermediates, max-pool indices) is an inference figure: training keeps
            # what backward needs (row_tmp) and the rest is smaller than what it keeps
            temp = r.mem.temp_elems * act
            if not self.p.train:
                temp += r.mem.scratch_elems * act + r.mem.scratch_fixed_bytes
            extra = (("activations", temp, 0),) if temp else ()
            led.moment(f"forward ({r.path})", extra + self.gathered(r))
            for j, (per, const) in enumerate(self.row_tmp[i]):
                led.add(("tmp", i, j), "saved activations", per_sample=per, const=const)
            for t in {self.st(t) for t in r.tensor_in}:
                if (self.last_read.get(t) == i and t not in (out, self.final) and t not in self.released
                        and not (t == self.input and self.p.caller_input)):
                    led.drop(("act", t))

    def _category(self, t):
        return "saved activations" if t in self.released else "activations"

    def recompute(self, a: int, b: int) -> None:
        """Checkpoint's recomputation before row b's backward: rows a+1.. forward again, their saved
        tensors kept this time, up to the last row keeping anything (early stop)."""
        led, rows, act = self.led, self.rows, self.act
        keeping = [j for j in range(a + 1, b + 1) if rows[j].mem.saved]
        if not keeping:
            return
        k = keeping[-1]
        saved: dict[int, int] = {}
        for j in range(a + 1, k + 1):
            self._keep(j, saved)
        last = {self.st(t): j for j in range(a + 1, k + 1) for t in rows[j].tensor_in}
        held = set(saved) | set(self.released)
        for j in range(a + 1, k + 1):
            r = rows[j]
            out = self.st(r.tensor_out)
            led.add(("act", out), "recomputed activations", per_sample=self.sizes[out] * act)
            extra = (("activations", r.mem.temp_elems * act, 0),) if r.mem.temp_elems else ()
            led.moment(f"recompute ({r.path})", extra + self.gathered(r))
            for m, (per, const) in enumerate(self.row_tmp[j]):
                led.add(("tmp", j, m), "recomputed activations", per_sample=per, const=const)
            for t in {self.st(t) for t in r.tensor_in} | {out}:
                if t not in held and last.get(t, -1) <= j:
                    led.drop(("act", t))
        for t, first in saved.items():
            self.released[t] = min(self.released.get(t, first), first)

    def backward(self) -> None:
        led, rows, act, p = self.led, self.rows, self.act, self.p
        if self.final not in self.released:
            led.drop(("act", self.final))  # the logits: the loss does not keep them (loss = out.sum())
        grads: dict[int, object] = {}  # row position -> ledger key of its gradient
        shared: dict[object, int] = {}  # ledger key -> how many gradients share it
        n = len(rows)
        key = ("grad", n - 1)
        led.add(key, "activation gradients", per_sample=elems(rows[-1].out) * act)
        grads[n - 1], shared[key] = key, 1
        led.moment("start of backward")
        for i in range(n - 1, 0, -1):
            r = rows[i]
            if i in self.seg_end:
                self.recompute(self.seg_end[i], i)
            extra = self.gathered(r)
            if r.params:
                full = r.params * self.pbytes
                led.add(("pgrad", i), "gradients", const=_div(full, p.shard[1]), tensors=max(_param_tensors(r), 1))
                if p.shard[1] > 1:  # ZeRO-2: the layer's whole gradient until it is reduce-scattered
                    extra += (("gradients being reduced", 0, full - _div(full, p.shard[1])),)
            mine = grads.get(i)
            passes = r.mem.alias and not r.mem.inplace and not r.mem.train_copy or r.type in ("add", "concat", "identity")
            for node_id in r.node.inputs:
                j = self.index.get(node_id)
                if j is None or (j == 0 and p.caller_input) or j in grads:
                    continue  # no gradient for the caller's input; a second contribution is summed in place
                if passes and mine is not None:
                    grads[j] = mine
                    shared[mine] += 1
                else:
                    k = ("grad", j)
                    led.add(k, "activation gradients", per_sample=elems(rows[j].out) * act)
                    grads[j], shared[k] = k, 1
            led.moment(f"backward ({r.path})", extra)
            if mine is not None:
                shared[mine] -= 1
                if shared[mine] == 0:
                    led.drop(mine)
                del grads[i]
            for j in range(len(self.row_tmp[i])):
                led.drop(("tmp", i, j))
            for t, first in list(self.released.items()):
                if first == i and not (t == self.input and p.caller_input):
                    led.drop(("act", t))
                    del self.released[t]
        for k in list(shared):
            led.drop(k)
        for key in list(led.live):
            if isinstance(key, tuple) and key[0] in ("act", "tmp") and key != ("act", self.input):
                led.drop(key)
        led.drop("half")

    def step(self) -> None:
        p = self.p
        self.led.moment("end of backward")
        if p.optimizer in ("adam", "adamw"):  # foreach Adam: sqrt of the second moments, one fp32 copy
            tmp = _div(self.params * (4 if p.dtype == "mixed" else self.pbytes), p.shard[0])
            self.led.moment("optimizer step", (("optimizer temporaries", 0, tmp),))
        elif p.optimizer != "none":
            self.led.moment("optimizer step")


def _replay(p: Plan, led: _Ledger) -> None:
    s = _Step(p, led)
    s.model()
    s.forward()
    if p.train:
        s.backward()
        s.step()


def plan(report: Report, *, optimizer: str = "sgd", dtype: str = "fp32", train: bool = True,
         checkpoint: str | None = None, **kw) -> Plan:
    """The step of ``report``'s main rows (aux heads left out) as one device runs it."""
    from .checkpoint import segments

    if optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}; known: {', '.join(OPTIMIZERS)}")
    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; known: {', '.join(DTYPES)}")
    rows = tuple(r for r in report.rows if not r.aux)
    segs = segments(rows, checkpoint) if checkpoint and train else ()
    return Plan(rows, optimizer, dtype, train, segs, **kw)


def fit(report: Report, *, batch: int, capacity: int | None = None, optimizer: str = "sgd", dtype: str = "fp32",
        train: bool = True, constants: Constants = CUDA, checkpoint: str | None = None, step: Plan | None = None) -> Fit:
    """The memory of one step of ``report``'s network at ``batch`` on a device of ``capacity`` bytes.

    ``report`` is archcalc's report at the activation dtype (fp16 for ``mixed``), any batch: only its
    per-sample figures are read. ``checkpoint``: ``sqrt``, ``blocks`` or block paths
    (archcalc/checkpoint.py). ``step``: a prepared plan (one device of archcalc/parallel.py)."""
    from .checkpoint import recompute_macs

    if batch < 1:
        raise ValueError(f"batch must be a positive integer, got {batch}")
    p = step or plan(report, optimizer=optimizer, dtype=dtype, train=train, checkpoint=checkpoint)
    ledger = _Ledger(batch, constants)
    _replay(p, ledger)
    fixed = {"cudnn workspace": constants.cudnn_workspace, "cuda context": constants.cuda_context}
    peak_items = {**ledger.peak_items, **fixed}
    peak = ledger.peak + sum(fixed.values())
    items = tuple(Item(name, peak_items.get(name, 0)) for name in ITEMS if peak_items.get(name, 0))
    max_batch = None
    if capacity is not None:
        max_batch = _max_batch(p, ledger.moments, capacity - sum(fixed.values()), constants)
    return Fit(name=report.name, mode="train" if p.train else "inference",
               optimizer=p.optimizer if p.train else "none", dtype=p.dtype, batch=batch, capacity_bytes=capacity,
               peak_bytes=peak, phase=ledger.peak_phase, items=items, max_batch=max_batch, constants=constants,
               checkpoint=(checkpoint or "custom") if p.segments else None, segments=len(p.segments),
               recompute_macs=recompute_macs(p.rows, p.segments) * batch)


def _max_batch(p: Plan, moments, budget: int, c: Constants) -> int:
    """The largest batch whose peak fits ``budget``. Memory at every moment of the step is
    a + b x batch, so the answer is min over moments of floor((budget - a) / b); the allocator's
    rounding (a few hundred bytes per tensor, 2 MiB per large one) is not affine, so the closed form
    is checked against the exact replay and lowered while it does not fit (a step or two)."""
    best = None
    for a, b, _, _ in moments:
        if b == 0:
            if a > budget:
                return 0
            continue
        m = (budget - a) // b
        best = m if best is None else min(best, m)
    if best is None:  # nothing scales with the batch
        return 0
    best = max(best, 0)

    def fits(batch):
        led = _Ledger(batch, c)
        _replay(p, led)
        return led.peak <= budget

    while best > 0 and not fits(best):
        best -= 1
    return best


def with_constants(base: Constants = CUDA, **overrides) -> Constants:
    return replace(base, **{k: v for k, v in overrides.items() if v is not None})


def relative_error(predicted: int, measured: int) -> float | None:
    """predicted / measured - 1, the error `archcalc measure` and benchmarks/fit_accuracy.py print
    (None when nothing was measured)."""
    return predicted / measured - 1 if measured else None


def to_dict(f: Fit) -> dict:
    """The JSON model of a fit (docs/fit.md): fits, max_batch, peak_bytes, capacity_bytes, items."""
    return {
        "name": f.name, "mode": f.mode, "optimizer": f.optimizer, "dtype": f.dtype, "batch": f.batch,
        "fits": f.fits, "max_batch": f.max_batch, "peak_bytes": f.peak_bytes, "capacity_bytes": f.capacity_bytes,
        "headroom_bytes": f.headroom_bytes, "peak_phase": f.phase,
        "items": [{"name": i.name, "bytes": i.bytes, "share": i.bytes / f.peak_bytes if f.peak_bytes else 0.0}
                  for i in f.items],
        "checkpoint": f.checkpoint, "checkpoint_segments": f.segments, "recompute_macs": f.recompute_macs,
        "constants": {k: getattr(f.constants, k) for k in f.constants.__dataclass_fields__},
        "input_counted": True,
    }
