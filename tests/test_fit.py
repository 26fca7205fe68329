"""Activation checkpointing, several GPUs and the roofline of archcalc/fit.py, checkpoint.py,
parallel.py and roofline.py, each against an independent computation:

- checkpointing against PyTorch: the built model (archcalc.build) run under
  ``torch.utils.checkpoint.checkpoint(..., use_reentrant=False)`` over the same segments, one
  steady-state training step under FakeTensorMode tracked by MemTracker (its peak), and
  FlopCounterMode (the recomputed forward FLOPs); hand arithmetic on a small chain;
- ZeRO and data parallelism: hand arithmetic from the parameter count (Rajbhandari et al. 2020's
  sharding of optimizer state, gradients and parameters), and DDP's buckets inspected in PyTorch
  (gloo, one process: they hold every gradient, apart from .grad unless gradient_as_bucket_view);
- model parallelism: the chosen split against every split (brute force), and each device's peak
  against MemTracker measuring that device's rows alone;
- the roofline: hand arithmetic on a small chain;
- the catalogue: every card has its figures and a source.
"""
from __future__ import annotations

import math

import pytest

import archcalc
from archcalc.checkpoint import CheckpointError, cuts, recompute_macs, segments
from archcalc.fit import EXACT, fit, plan
from archcalc.gpus import GPU, catalogue, find
from archcalc.parallel import fit_parallel
from archcalc.roofline import roofline

CHAIN = """name: chain
input: [16]
layers:
  - fc f1: {out: 16, act: none}
  - fc f2: {out: 16, act: none}
  - fc f3: {out: 16, act: none}
  - fc f4: {out: 16, act: none}
"""


def _rows(report):
    return [r for r in report.rows if not r.aux]


# ---------------------------------------------------------------- checkpointing: hand arithmetic


def test_chain_segments_and_recompute_macs_by_hand():
    rep = archcalc.analyze(archcalc.parse(CHAIN), batch=8)
    rows = _rows(rep)
    assert cuts(rows) == [0, 1, 2, 3]  # a chain can be cut anywhere
    # n = 4 rows: round(sqrt(4)) = 2 segments, split at row 2; the last one runs as usual
    assert segments(rows, "sqrt") == ((0, 2),)
    assert segments(rows, "f2,f3") == ((1, 2), (2, 3))
    # f1 reruns in backward (16 x 16 MACs per sample); f2 keeps only its input (f1's output), which
    # autograd saves before running f2, so recomputation stops there without running f2
    assert recompute_macs(rows, ((0, 2),)) == 16 * 16
    # a segment whose last row keeps its output (a ReLU) runs every row again
    relu = archcalc.analyze(archcalc.parse(CHAIN.replace("act: none", "act: relu")))
    assert recompute_macs(_rows(relu), ((0, 2),)) == 2 * 16 * 16
    f = fit(rep, batch=8, constants=EXACT, checkpoint="sqrt")
    assert (f.segments, f.recompute_macs, f.forward_macs) == (1, 256 * 8, 4 * 256 * 8)
    plain = fit(rep, batch=8, constants=EXACT)
    # without checkpointing f2 keeps f1's output (16 x 4 B x 8) from forward to its backward; with it,
    # only the boundary (the caller's input, already alive) is kept: the peak is lower by at most that
    assert 0 <= plain.peak_bytes - f.peak_bytes <= 16 * 4 * 8


def test_checkpoint_errors_name_the_problem():
    rep = archcalc.analyze(archcalc.load("resnet18"))
    rows = _rows(rep)
    with pytest.raises(CheckpointError, match="more than one tensor crosses"):
        segments(rows, "conv2_x_1/main")  # the skip branch reads the block input too
    with pytest.raises(CheckpointError, match="no block or row 'nope'"):
        segments(rows, "nope")
    assert len(segments(rows, "blocks")) == 8  # 2 + 2 + 2 + 2 basic blocks
    assert segments(rows, "conv2_x_1,conv2_x_2") == segments(rows, "blocks")[:2]


# ---------------------------------------------------------------- checkpointing: PyTorch


def _run_rows(gm, values, lo, hi):
    """Rows lo..hi of ``gm`` (archcalc.build's GraphModule) as its forward runs them, each tensor
    dropped after its last reader; ``values`` holds what the rows read from before ``lo``."""
    for i in range(lo, hi + 1):
        ins = gm._inputs[i]
        layer = gm.layers[gm._keys[i]]
        values[i] = layer(values[ins[0]]) if len(ins) == 1 else layer(*[values[j] for j in ins])
        for j in gm._free[i]:
            values[j] = None
    return values[hi]


def _checkpointed(gm, segs):
    """``gm`` (archcalc.build's GraphModule) with rows a+1..b of each segment run under
    torch.utils.checkpoint (non-reentrant), the rest as GraphModule runs them."""
    import torch
    from torch.utils.checkpoint import checkpoint

    starts = dict(segs)

    def run(values, lo, hi):
        return _run_rows(gm, values, lo, hi)

    class Checkpointed(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.gm = gm

        def forward(self, x):
            n = len(gm._keys)
            values = [None] * n
            values[0] = x
            i = 1
            while i < n:
                if i - 1 in starts:
                    a, b = i - 1, starts[i - 1]

                    def segment(t, a=a, b=b):
                        vals = [None] * n
                        vals[a] = t
                        return run(vals, a + 1, b)

                    values[b] = checkpoint(segment, values[a], use_reentrant=False, preserve_rng_state=False)
                    values[a] = None
                    i = b + 1
                else:
                    run(values, i, i)
                    i += 1
            return values[n - 1]

    return Checkpointed()


def _measure(name, batch, segs):
    """(MemTracker's peak of one steady-state SGD-momentum step, forward+backward FLOPs of that step)."""
    import torch
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.distributed._tools.mem_tracker import MemTracker
    from torch.utils.flop_counter import FlopCounterMode

    graph = archcalc.expand(archcalc.load(name))
    with FakeTensorMode():
        model = _checkpointed(archcalc.build(graph), segs)
        x = torch.randn((batch, *graph.input))
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, foreach=True)
        model(x).sum().backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        tracker = MemTracker()
        tracker.track_external(model, opt, x)
        with tracker:
            loss = model(x).sum()
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            del loss
        peak = sum(v for snap in tracker.get_tracker_snapshot("peak").values() for k, v in snap.items()
                   if getattr(k, "value", k) == "Total")
        counter = FlopCounterMode(display=False)
        with counter:
            model(x).sum().backward()
        opt.zero_grad(set_to_none=True)
    return peak, counter.get_total_flops()


CHECKPOINT_CASES = [("resnet18", 4, "sqrt"), ("resnet18", 4, "blocks"), ("alexnet", 8, "sqrt"),
                    ("mobilenet_v2", 4, "blocks")]


@pytest.mark.torch
@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("name,batch,how", CHECKPOINT_CASES)
def test_checkpoint_peak_and_recompute_against_pytorch(name, batch, how):
    rep = archcalc.analyze(archcalc.load(name), batch=batch)
    segs = segments(_rows(rep), how)
    measured, flops = _measure(name, batch, segs)
    _, flops_plain = _measure(name, batch, ())
    f = fit(rep, batch=batch, optimizer="momentum", constants=EXACT, checkpoint=how)
    assert abs(f.peak_bytes / measured - 1) < 0.005, (f.peak_bytes, measured)
    # what checkpointing adds is one more forward of the recomputed rows: FLOPs = 2 x MACs
    assert flops - flops_plain == 2 * f.recompute_macs


@pytest.mark.slow
@pytest.mark.torch
@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("name,batch,how", [("resnet50_tv", 4, "sqrt"), ("resnet50_tv", 4, "blocks"),
                                            ("vgg16", 2, "sqrt"), ("mobilenet_v2", 4, "sqrt"),
                                            ("densenet121", 2, "sqrt"), ("densenet121", 2, "blocks"),
                                            ("googlenet_tv", 2, "sqrt"), ("googlenet_tv", 2, "blocks")])
def test_checkpoint_peak_against_pytorch_more(name, batch, how):
    test_checkpoint_peak_and_recompute_against_pytorch(name, batch, how)


# ---------------------------------------------------------------- data parallelism and ZeRO


PSI = 62_378_344  # AlexNet's parameters (the paper's network; torchvision-style count in specs/alexnet.yaml)


@pytest.mark.parametrize("stage", [0, 1, 2, 3])
def test_zero_shards_by_hand(stage):
    n = 4
    rep = archcalc.analyze(archcalc.load("alexnet"))
    assert rep.totals.params == PSI
    pf = fit_parallel(rep, gpus=n, zero=stage, batch=8, optimizer="momentum", constants=EXACT)
    items = {i.name: i.bytes for i in pf.devices[0].items}
    assert pf.devices[0].batch == 2
    assert items["weights"] == (math.ceil(4 * PSI / n) if stage >= 3 else 4 * PSI)
    assert items["optimizer state"] == (math.ceil(4 * PSI / n) if stage >= 1 else 4 * PSI)
    if stage >= 2:  # each layer's gradient shard, rounded up per layer
        assert items["gradients"] <= 4 * PSI / n + 16 * n
    assert ("gradient buckets" in items) == (stage == 0)  # DDP's copy; ZeRO reduce-scatters instead
    if stage == 0:
        assert items["gradient buckets"] == 4 * PSI


def test_data_parallel_is_one_device_at_the_split_batch_plus_buckets():
    rep = archcalc.analyze(archcalc.load("resnet18"))
    pf = fit_parallel(rep, gpus=3, batch=100, optimizer="adam", constants=EXACT, capacity=8 * 2**30)
    one = fit(rep, batch=34, optimizer="adam", constants=EXACT)  # ceil(100 / 3)
    assert pf.devices[0].peak_bytes - one.peak_bytes == 4 * rep.totals.params
    assert pf.max_batch == 3 * pf.devices[0].max_batch


@pytest.mark.torch
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_ddp_buckets_are_a_second_copy_of_the_gradients(monkeypatch):
    """DDP (gloo, one process) on the built ResNet-20: the buckets its reducer hands to the comm
    hook hold every gradient element (what parallel.py counts as `gradient buckets`), and with the
    default gradient_as_bucket_view=False no parameter's .grad lives in them (a second copy); with
    True every .grad is a view into a bucket (no copy)."""
    import socket

    import torch
    import torch.distributed as dist

    if not dist.is_available() or not dist.is_gloo_available():
        pytest.fail("torch.distributed with gloo is needed for the DDP check")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", str(port))
    dist.init_process_group("gloo", rank=0, world_size=1)
    try:
        model = archcalc.build(archcalc.load("resnet20"))
        params = list(model.parameters())
        assert sum(p.numel() for p in params) == archcalc.analyze(archcalc.load("resnet20")).totals.params
        for view in (False, True):
            ddp = torch.nn.parallel.DistributedDataParallel(model, gradient_as_bucket_view=view)
            buckets = []

            def hook(state, bucket, buckets=buckets):
                buckets.append(bucket.buffer())
                fut = torch.futures.Future()
                fut.set_result(bucket.buffer())
                return fut

            ddp.register_comm_hook(None, hook)
            ddp(torch.randn(2, 3, 32, 32)).sum().backward()
            assert sum(b.numel() for b in buckets) == sum(p.numel() for p in params)
            storages = {b.untyped_storage().data_ptr() for b in buckets}
            in_buckets = sum(p.grad.untyped_storage().data_ptr() in storages for p in params)
            assert in_buckets == (len(params) if view else 0)
            model.zero_grad(set_to_none=True)
    finally:
        dist.destroy_process_group()


def test_model_parallel_split_is_the_best_of_all_splits():
    from dataclasses import replace

    rep = archcalc.analyze(archcalc.load("alexnet"))
    pf = fit_parallel(rep, gpus=2, parallel="model", batch=128, optimizer="momentum", constants=EXACT)
    base = plan(rep, optimizer="momentum")
    rows = base.rows
    best = None
    for c in cuts(rows):
        if c == 0:
            continue
        peaks = [fit(rep, batch=128, constants=EXACT, step=replace(base, rows=rows[:c + 1])).peak_bytes,
                 fit(rep, batch=128, constants=EXACT,
                     step=replace(base, rows=rows[c:], caller_input=False)).peak_bytes]
        best = max(peaks) if best is None else min(best, max(peaks))
    assert pf.peak_bytes == best
    weights = sum(next(i.bytes for i in d.items if i.name == "weights") for d in pf.devices)
    assert weights == 4 * PSI  # every layer on exactly one device
    single = fit(rep, batch=128, optimizer="momentum", constants=EXACT)
    assert pf.peak_bytes < single.peak_bytes


def _measure_part(graph, batch, lo, hi, last):
    """MemTracker's peak of one steady-state SGD-momentum step of rows lo..hi alone, as one device of
    --parallel model runs them: its input the caller's x (lo == 1) or a tensor received from the
    previous device (it computes that tensor's gradient); its output the loss (last) or sent on
    (nothing kept; its gradient arrives at the start of backward)."""
    import torch
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.distributed._tools.mem_tracker import MemTracker

    class Send(torch.autograd.Function):
        @staticmethod
        def forward(ctx, t):
            ctx.shape, ctx.dtype = t.shape, t.dtype
            return t.new_zeros(())

        @staticmethod
        def backward(ctx, g):
            return torch.ones(ctx.shape, dtype=ctx.dtype)

    with FakeTensorMode():
        gm = archcalc.build(graph)

        class Part(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.layers = torch.nn.ModuleList([gm.layers[gm._keys[i]] for i in range(lo, hi + 1)])

            def forward(self, x):
                values = [None] * len(gm._keys)
                values[lo - 1] = x
                return _run_rows(gm, values, lo, hi)

        part = Part()
        x = torch.randn((batch, *graph.nodes[lo - 1].cost.out), requires_grad=lo > 1)
        opt = torch.optim.SGD(part.parameters(), lr=0.1, momentum=0.9, foreach=True)

        def step():
            loss = part(x).sum() if last else Send.apply(part(x))
            loss.backward()
            del loss
            x.grad = None  # sent to the previous device
            opt.step()
            opt.zero_grad(set_to_none=True)

        step()
        tracker = MemTracker()
        tracker.track_external(part, opt, x)
        with tracker:
            step()
        return sum(v for snap in tracker.get_tracker_snapshot("peak").values() for k, v in snap.items()
                   if getattr(k, "value", k) == "Total")


def _model_parallel_errors(name, n, batch):
    graph = archcalc.expand(archcalc.load(name))
    rep = archcalc.cost(graph, batch=batch)
    pf = fit_parallel(rep, gpus=n, parallel="model", batch=batch, optimizer="momentum", constants=EXACT)
    pos = {r.path: i for i, r in enumerate(plan(rep).rows)}
    end = len(pos) - 1
    errors = []
    for device, (first, last) in zip(pf.devices, pf.ranges):
        measured = _measure_part(graph, batch, pos[first], pos[last], pos[last] == end)
        errors.append(device.peak_bytes / measured - 1)
    return errors


@pytest.mark.torch
@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("name,n,batch", [("alexnet", 2, 32), ("resnet18", 2, 8)])
def test_model_parallel_devices_against_pytorch(name, n, batch):
    """Each device's part measured on its own (PyTorch 2.14.1: every device within 0.005 %;
    benchmarks/fit_checkpoint_parallel.py prints them)."""
    assert all(abs(e) < 0.005 for e in _model_parallel_errors(name, n, batch))


@pytest.mark.slow
@pytest.mark.torch
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_model_parallel_vgg16_three_devices_against_pytorch():
    assert all(abs(e) < 0.005 for e in _model_parallel_errors("vgg16", 3, 4))


# ---------------------------------------------------------------- the roofline


def test_roofline_by_hand():
    rep = archcalc.analyze(archcalc.parse(CHAIN))
    gpu = GPU("toy", "toy", 2**30, bandwidth=1.0, tflops={"fp32": 0.001}, source="test")  # 1 GB/s, 1 GFLOP/s
    b = 8
    r = roofline(plan(rep, optimizer="momentum"), gpu, batch=b)
    flops = 2 * 256 * b  # per layer
    nbytes = (16 + 16) * 4 * b + 272 * 4  # input + output + weights and bias
    assert [(t.flops, t.bytes) for t in r.layers] == [(flops, nbytes)] * 4
    t = max(flops / 1e9, nbytes / 1e9)
    assert r.forward_s == pytest.approx(4 * t)
    assert r.backward_s == pytest.approx(8 * t)
    # momentum SGD: read weights and gradients, write weights; read and write the momentum
    assert r.optimizer_s == pytest.approx(4 * 272 * (3 * 4 + 2 * 4) / 1e9)
    assert r.step_time_s == pytest.approx(12 * t + r.optimizer_s)
    inf = roofline(plan(rep, train=False), gpu, batch=b)
    assert inf.step_time_s == pytest.approx(4 * t)


def test_roofline_uses_tf32_for_fp32_convolutions():
    rep = archcalc.analyze(archcalc.load("vgg16"))
    r = roofline(plan(rep), find("a100-40gb"), batch=64)
    conv = next(t for t in r.layers if t.path == "conv1_2")
    macs = 224 * 224 * 64 * 64 * 9
    assert conv.flops == 2 * macs * 64
    assert conv.time_s == pytest.approx(max(conv.flops / 156e12, conv.bytes / 1555e9))
    fc = next(t for t in r.layers if t.path == "fc7")
    assert fc.time_s == pytest.approx(max(fc.flops / 19.5e12, fc.bytes / 1555e9))


# ---------------------------------------------------------------- the catalogue


def test_catalogue_entries():
    cards = catalogue()
    assert len(cards) == 13
    for g in cards.values():
        assert g.memory > 0 and g.bandwidth > 0 and g.tflops["fp32"] > 0 and len(g.source) > 40
    assert find("h200-141gb").memory == 141 * 2**30  # nvidia-smi: 143,771 MiB
    assert find("V100_16GB") is cards["v100-16gb"]
