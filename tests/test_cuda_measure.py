"""The CUDA measurement path (archcalc/build/cuda.py, `archcalc measure --device cuda`).

- ``bisect_largest`` and ``search_largest`` on pure predicates (the torch extra only to import the
  module): every boundary position, nothing
  fits, everything fits, each batch tried at most once;
- ``largest_batch``'s wiring (torch extra, runs on a CPU): ``measure_cuda`` replaced by a stand-in
  that raises ``torch.cuda.OutOfMemoryError`` above a known batch, ``torch.cuda.empty_cache``
  counted. This checks the OOM handling and the search, not any memory figure;
- the CLI: ``--device cuda`` refused in one line (exit 2) without a CUDA device or with
  ``--framework jax``; with a stand-in measurement, the predictions it prints are ``fit``'s with
  the CUDA constants minus the context (allocated: no segments; reserved: with them);
- on a CUDA device only (skipped here, "no CUDA device"; CI has none, and this skip is not tied to
  ARCHCALC_REQUIRE_TORCH): a real step, compared with ``fit``.
"""
from __future__ import annotations

import importlib
import importlib.util
import json

import pytest
from click.testing import CliRunner

import archcalc
from archcalc.cli import main
from archcalc.fit import CUDA, fit, relative_error, with_constants

HAS_TORCH = importlib.util.find_spec("torch") is not None


def _cuda_device() -> bool:
    if not HAS_TORCH:
        return False
    import torch

    return torch.cuda.is_available()


def cli(*args):
    result = CliRunner().invoke(main, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result


def _search():
    from archcalc.build.cuda import bisect_largest, search_largest  # the module imports torch

    return bisect_largest, search_largest


class Counting:
    """A monotone predicate (fits up to ``k``) that records every n it is asked about."""

    def __init__(self, k):
        self.k = k
        self.calls: list[int] = []

    def __call__(self, n):
        self.calls.append(n)
        return n <= self.k


# ---------------------------------------------------------------- pure search (torch only to import the module)


@pytest.mark.torch
@pytest.mark.parametrize("lo,hi", [(1, 1), (1, 2), (1, 7), (1, 64), (3, 10), (5, 100)])
def test_bisect_every_boundary(lo, hi):
    bisect_largest, _ = _search()
    for k in range(lo - 1, hi + 1):  # k = lo - 1: nothing fits; k = hi: everything fits
        pred = Counting(k)
        assert bisect_largest(pred, lo, hi) == k
        assert all(lo <= n <= hi for n in pred.calls)
        assert len(pred.calls) == len(set(pred.calls))  # no batch tried twice
        assert len(pred.calls) <= (hi - lo + 1).bit_length() + 1


@pytest.mark.torch
def test_bisect_edges():
    bisect_largest, _ = _search()
    assert bisect_largest(Counting(0), 1, 50) == 0  # nothing fits
    assert bisect_largest(Counting(10**9), 1, 50) == 50  # everything up to hi fits
    assert bisect_largest(Counting(10**9), 5, 4) == 4  # an empty range: nothing tried
    pred = Counting(3)
    assert bisect_largest(pred, 4, 4) == 3 and pred.calls == [4]


@pytest.mark.torch
@pytest.mark.parametrize("hi", [1, 2, 3, 16, 17, 100])
def test_search_every_boundary(hi):
    _, search_largest = _search()
    for k in range(0, hi + 1):
        pred = Counting(k)
        assert search_largest(pred, hi) == k
        assert all(1 <= n <= hi for n in pred.calls)
        assert len(pred.calls) == len(set(pred.calls))
    assert search_largest(Counting(10**9), hi) == hi  # capped at hi: "at least hi" for the caller
    assert search_largest(Counting(5), 0) == 0


@pytest.mark.torch
def test_search_doubles_then_bisects():
    _, search_largest = _search()
    pred = Counting(37)
    assert search_largest(pred, 1000) == 37
    assert pred.calls[:7] == [1, 2, 4, 8, 16, 32, 64]  # doubling to the first miss
    assert all(32 < n < 64 for n in pred.calls[7:])  # then only between the last two tries


# ---------------------------------------------------------------- largest_batch wiring (no GPU needed)


@pytest.mark.torch
def test_largest_batch_catches_oom_and_empties_cache(monkeypatch):
    import torch

    cuda = importlib.import_module("archcalc.build.cuda")  # archcalc.build is also the function

    sizes, cleared = [], []

    def stand_in(graph, *, batch, optimizer, train, device):
        sizes.append(batch)
        if batch > 13:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (stand-in)")
        return {}

    monkeypatch.setattr(cuda, "measure_cuda", stand_in)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: cleared.append(len(sizes)))
    graph = archcalc.expand(archcalc.load("alexnet"))
    r = cuda.largest_batch(graph, optimizer="momentum", hi=1000)
    assert r["max_batch"] == 13
    assert r["tried"] == {1: True, 2: True, 4: True, 8: True, 16: False, 12: True, 14: False, 13: True}
    assert sizes == list(r["tried"])
    assert cleared == [n for i in range(len(sizes)) for n in (i, i + 1)]  # before and after every try

    def other_error(graph, **kw):
        raise RuntimeError("not an OOM")

    monkeypatch.setattr(cuda, "measure_cuda", other_error)
    with pytest.raises(RuntimeError, match="not an OOM"):  # only OOM means "does not fit"
        cuda.largest_batch(graph, hi=8)
    with pytest.raises(ValueError, match="CUDA device"):
        cuda.largest_batch(graph, hi=8, device="cpu")


# ---------------------------------------------------------------- the CLI


def test_cli_cuda_refused_without_a_device(monkeypatch):
    if HAS_TORCH:
        import torch

        monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    r = cli("measure", "alexnet", "--framework", "torch", "--device", "cuda")
    assert r.exit_code == 2
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and ("CUDA device" in lines[0] or "needs PyTorch" in lines[0]), r.output


def test_cli_cuda_options_refused():
    r = cli("measure", "alexnet", "--framework", "jax", "--device", "cuda")
    assert r.exit_code == 2 and len(r.output.strip().splitlines()) == 1 and "--framework torch" in r.output
    r = cli("measure", "alexnet", "--workspace", "64MiB")
    assert r.exit_code == 2 and len(r.output.strip().splitlines()) == 1 and "--device cuda" in r.output


@pytest.mark.torch
def test_cli_cuda_compares_with_fit_without_context(monkeypatch):
    """The CLI's wiring with a stand-in measurement (fixed numbers, not a measurement): the figures
    it predicts are fit's with the CUDA constants minus the context, its errors relative_error's."""
    import torch

    cuda = importlib.import_module("archcalc.build.cuda")  # archcalc.build is also the function

    measured = {"name": "alexnet", "batch": 16, "params": 62_378_344, "mode": "train", "optimizer": "momentum",
                "device": "stand-in", "baseline_bytes": 3 << 28, "max_memory_allocated": 7 << 27,
                "max_memory_reserved": 1 << 30}
    monkeypatch.setattr(cuda, "available", lambda: True)
    monkeypatch.setattr(cuda, "measure_cuda", lambda graph, **kw: measured)
    report = archcalc.cost(archcalc.expand(archcalc.load("alexnet")), batch=16)
    for extra, workspace in (((), CUDA.cudnn_workspace), (("--workspace", "0"), 0)):
        r = cli("measure", "alexnet", "--device", "cuda", "--batch", "16", "--optimizer", "momentum",
                "--format", "json", *extra)
        assert r.exit_code == 0, r.output
        d = json.loads(r.stdout)
        reserved = with_constants(CUDA, cuda_context=0, cudnn_workspace=workspace)
        allocated = with_constants(reserved, round_large=1)
        fa = fit(report, batch=16, optimizer="momentum", constants=allocated)
        fr = fit(report, batch=16, optimizer="momentum", constants=reserved)
        assert d["peak"]["allocated"] == {"measured": 7 << 27, "predicted": fa.peak_bytes,
                                          "error": relative_error(fa.peak_bytes, 7 << 27)}
        assert d["peak"]["reserved"] == {"measured": 1 << 30, "predicted": fr.peak_bytes,
                                         "error": relative_error(fr.peak_bytes, 1 << 30)}
        assert d["constants"]["cuda_context"] == 0 and d["constants"]["cudnn_workspace"] == workspace
        assert d["memory"]["baseline_bytes"] == 3 << 28 and d["params"]["predicted"] == 62_378_344
        names = {i["name"] for i in d["items"]}
        assert "cuda context" not in names and "allocator segments" not in names
        assert (workspace > 0) == ("cudnn workspace" in names)
    # at batch 16 the peak holds activations of 10 MiB or more: their 2 MiB rounding is reserved, not allocated
    assert fr.peak_bytes - fa.peak_bytes == dict((i.name, i.bytes) for i in fr.items)["allocator segments"] > 0

    def oom(graph, **kw):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory (stand-in)")

    monkeypatch.setattr(cuda, "measure_cuda", oom)
    r = cli("measure", "alexnet", "--device", "cuda", "--batch", "4")
    assert r.exit_code == 2 and len(r.output.strip().splitlines()) == 1 and "out of memory" in r.output.lower()


# ---------------------------------------------------------------- a real GPU (skipped without one)


@pytest.mark.skipif(not _cuda_device(), reason="no CUDA device")
def test_real_step_against_fit():
    """Never run in this project (no CUDA machine): a first run on a GPU tells how close it is.
    Asserted: the allocator's own ordering, the parameters, and that archcalc's tensor bytes (with
    the 512 B rounding, no workspace) do not exceed what the allocator really had at the peak by
    more than 2% (the real step adds cuDNN/cuBLAS workspaces on top, never fewer tensors)."""
    from archcalc.build.cuda import largest_batch, measure_cuda

    graph = archcalc.expand(archcalc.load("resnet18"))
    report = archcalc.cost(graph, batch=8)
    m = measure_cuda(graph, batch=8, optimizer="momentum")
    assert 0 < m["baseline_bytes"] <= m["max_memory_allocated"] <= m["max_memory_reserved"]
    assert m["params"] == report.totals.params
    tensors = fit(report, batch=8, optimizer="momentum",
                  constants=with_constants(CUDA, cuda_context=0, cudnn_workspace=0, round_large=1))
    print(f"resnet18 batch 8 momentum on {m['device']}: allocated {m['max_memory_allocated']:,} B, "
          f"reserved {m['max_memory_reserved']:,} B, archcalc tensors {tensors.peak_bytes:,} B "
          f"({relative_error(tensors.peak_bytes, m['max_memory_allocated']):+.1%})")
    assert tensors.peak_bytes <= m["max_memory_allocated"] * 1.02
    small = largest_batch(archcalc.expand(archcalc.load("alexnet")), hi=4)
    assert small["max_batch"] == 4  # AlexNet at batch 4 needs under 1.5 GiB
