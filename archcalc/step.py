"""One training step (or inference pass) replayed over a report's rows: the bytes alive at every
moment, as PyTorch runs the step (archcalc/fit.py describes the model; docs/fit.md the sources).

``Plan`` is what one device runs (its rows, optimizer, dtype, checkpointed segments, ZeRO shards);
``_Ledger`` keeps the tensors alive, exactly at one batch size (with the caching allocator's
rounding) and as affine terms a + b x batch for the closed-form largest batch; ``_replay`` walks
forward, backward (checkpointed segments recomputed first) and the optimizer step.
"""
from __future__ import annotations

from dataclasses import dataclass

from .checkpoint import last_kept
from .shape import elems

MiB = 1 << 20
OPTIMIZERS = {"none": 0, "sgd": 0, "momentum": 1, "adam": 2, "adamw": 2}  # state tensors per parameter
# dtype -> (activation bytes, parameter/gradient bytes); mixed: fp32 master weights, half activations
DTYPES = {"fp32": (4, 4), "fp16": (2, 2), "bf16": (2, 2), "mixed": (2, 4)}


def round_block(n: int, c) -> int:
    """Bytes the caching allocator hands out for a request of n bytes."""
    if n <= 0:
        return 0
    return -(-n // c.block) * c.block


def segment_slack(n: int, c) -> int:
    """Reserved beyond the 512 B-rounded block: a request of 10 MiB or more gets its own segment,
    rounded up to 2 MiB. Smaller requests share segments (their slack is not attributed)."""
    if c.round_large <= 1 or n < c.min_large_alloc:
        return 0
    b = round_block(n, c)
    return -(-b // c.round_large) * c.round_large - b


# ---------------------------------------------------------------- the ledger of live tensors


class _Ledger:
    """Tensors alive, each (category, bytes per sample, bytes per batch); running sums kept both
    exactly at one batch size (with the allocator's rounding) and as affine terms a + b x batch."""

    def __init__(self, batch: int, c):  # c: fit.Constants
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
    caller_input: bool = True  # rows[0] is the caller's x: alive all step (a gradient only if it requires one)
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

    def forward(self) -> None:
        led, rows, act = self.led, self.rows, self.act
        led.add(("act", self.input), "input" if self.p.caller_input else self._category(self.input),
                per_sample=self.sizes[self.input] * act)
        for i in range(1, len(rows)):
            r = rows[i]
            out = self.st(r.tensor_out)
            led.add(("act", out), self._category(out), per_sample=self.sizes[out] * act)
            # scratch (LRN's intermediates, max-pool indices) is an inference figure: training keeps
            # what backward needs (row_tmp) and the rest is smaller than what it keeps; a row that
            # needs no gradient runs as at inference
            temp = r.mem.temp_elems * act
            if not self.p.train or not r.requires_grad:
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
                _recompute(self, self.seg_end[i], i)
            extra = self.gathered(r)
            mine = grads.get(i)
            fused = len(r.cost.parts) > 1
            if fused and mine is not None:
                # a fused row's activation (or BN) backward writes the gradient of its input, an
                # intermediate the size of the row's output, while the incoming gradient is alive
                led.moment(f"backward ({r.path})", extra + (("activation gradients", elems(r.out) * act, 0),))
                # that gradient is what the row's first op reads; the incoming one lives on only while
                # another reader of the same gradient (a concat's other branches, a residual) needs it
                led.add(("pre", i), "activation gradients", per_sample=elems(r.out) * act)
                shared[mine] -= 1
                if shared[mine] == 0:
                    led.drop(mine)
                del grads[i]
                mine = None
            if self.row_tmp[i] and fused:
                # the row's own ops (BN, the activation) run their backward, freeing what they keep,
                # before its first op allocates the gradient of the row's input; a one-op row (LRN,
                # max pooling) needs what it keeps while it writes that gradient
                led.moment(f"backward ({r.path})", extra)
                for j in range(len(self.row_tmp[i])):
                    led.drop(("tmp", i, j))
            out = self.st(r.tensor_out)
            if fused and self.released.get(out) == i and not (out == self.input and p.caller_input):
                # the row's activation kept its output, and no earlier row does: gone with its backward
                led.drop(("act", out))
                del self.released[out]
            if r.params:  # the first op's backward writes the weight gradient beside its input's
                full = r.params * self.pbytes
                led.add(("pgrad", i), "gradients", const=_div(full, p.shard[1]), tensors=max(_param_tensors(r), 1))
                if p.shard[1] > 1:  # ZeRO-2: the layer's whole gradient until it is reduce-scattered
                    extra += (("gradients being reduced", 0, full - _div(full, p.shard[1])),)
            sums = _input_gradients(self, r, mine, grads, shared)
            extra += tuple(("activation gradients", n, 0) for n in sums)
            if r.mem.backward_temp_elems and r.requires_grad:
                extra += (("activation gradients", r.mem.backward_temp_elems * act, 0),)
            led.moment(f"backward ({r.path})", extra)
            led.drop(("pre", i))
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
            for n in sums:  # the engine sums two contributions into a new tensor, then frees both
                led.moment(f"backward ({r.path})", (("activation gradients", 2 * n, 0),))
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


def _input_gradients(self: _Step, r, mine, grads: dict, shared: dict) -> list:
    """Row r's backward writes the gradient of each of its inputs that needs one (a view, add,
    concat or identity hands on its own); returns the bytes per sample of each second contribution,
    written anew beside the first (MemTracker: summed out of place once the row is done)."""
    rows, led, act = self.rows, self.led, self.act
    passes = r.mem.alias and not r.mem.inplace and not r.mem.train_copy or r.type in ("add", "concat", "identity")
    extra = []
    for node_id in r.node.inputs:
        j = self.index.get(node_id)
        if j is None or not rows[j].requires_grad:
            continue  # no gradient for what needs none
        if j in grads:
            if not passes:  # a second contribution
                extra.append(elems(rows[j].out) * act)
            continue
        if j == 0 and self.p.caller_input:  # the caller's x.grad, a leaf's: it outlives the step
            led.add(("grad", 0), "activation gradients", per_sample=elems(rows[0].out) * act)
            grads[j] = ("grad", 0)
        elif passes and mine is not None:
            grads[j] = mine
            shared[mine] += 1
        else:
            k = ("grad", j)
            led.add(k, "activation gradients", per_sample=elems(rows[j].out) * act)
            grads[j], shared[k] = k, 1
    return extra


def _model(self: _Step) -> None:
    """Weights, buffers, optimizer state and DDP buckets: alive the whole step."""
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


def _recompute(self: _Step, a: int, b: int) -> None:
    """Checkpoint's recomputation before row b's backward: rows a+1.. forward again, their saved
    tensors kept this time, up to the last row keeping anything (early stop)."""
    led, rows, act = self.led, self.rows, self.act
    last_row = last_kept(rows, a, b)
    if last_row is None:
        return
    k, runs = last_row
    saved: dict[int, int] = {}
    for j in range(a + 1, k + 1):
        self._keep(j, saved)
    last = {self.st(t): j for j in range(a + 1, k + 1) for t in rows[j].tensor_in}
    held = set(saved) | set(self.released)
    for j in range(a + 1, k + 1 if runs else k):  # a last row keeping only its inputs does not run
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


def _replay(p: Plan, led: _Ledger) -> None:
    s = _Step(p, led)
    _model(s)
    s.forward()
    if p.train:
        s.backward()
        s.step()
