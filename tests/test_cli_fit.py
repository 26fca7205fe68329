"""`archcalc fit`, `archcalc gpus` and `archcalc measure --framework torch` through click's CliRunner:
the issue's commands, the JSON keys it requires, md/csv, bad input (one line, exit 2).

The numbers the CLI prints are archcalc/fit.py's (tests/test_fit.py and tests/test_build_torch.py
hold them against hand arithmetic and PyTorch); here: that the CLI passes them through unchanged,
and that the largest batch it prints is the boundary of the exact replay (fits at max_batch, does
not at max_batch + 1).
"""
from __future__ import annotations

import csv
import io
import json

import pytest
from click.testing import CliRunner

import archcalc
from archcalc.cli import main
from archcalc.fit import CUDA, fit


def cli(*args):
    result = CliRunner().invoke(main, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result


def fit_json(*args) -> dict:
    r = cli("fit", *args, "--format", "json")
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


# ---------------------------------------------------------------- the issue's commands


def test_resnet50_v100_example():
    r = cli("fit", "resnet50", "--gpu", "v100-16gb", "--batch", "128", "--optimizer", "momentum", "--dtype", "fp32")
    assert r.exit_code == 0, r.output
    out = r.stdout
    assert "fits in 16.00 GiB" in out and "largest batch that fits:" in out
    assert "saved activations" in out and "cuda context" in out and "roofline lower bound" in out
    d = fit_json("resnet50", "--gpu", "v100-16gb", "--batch", "128", "--optimizer", "momentum")
    report = archcalc.analyze(archcalc.load("resnet50"), batch=128)
    f = fit(report, batch=128, capacity=16 * 2**30, optimizer="momentum")
    assert (d["peak_bytes"], d["max_batch"], d["fits"]) == (f.peak_bytes, f.max_batch, True)
    assert f"largest batch that fits: {f.max_batch}" in out


def test_alexnet_gtx580_example():
    r = cli("fit", "alexnet", "--gpu", "gtx580-3gb", "--batch", "128")
    assert r.exit_code == 0, r.output
    assert "GTX 580 3GB" in r.stdout and "fits in 3.00 GiB" in r.stdout
    d = fit_json("alexnet", "--gpu", "gtx580-3gb", "--batch", "128")
    # a GTX 580 has no fp16 arithmetic and an fp32 peak: the roofline is there for fp32 only
    assert d["step_time_s"] > 0 and d["roofline"]["gpu"] == "gtx580-3gb"
    d16 = fit_json("alexnet", "--gpu", "gtx580-3gb", "--batch", "128", "--dtype", "fp16")
    assert d16["step_time_s"] is None and "fp16" in d16["roofline"]["missing"]


def test_gpus_catalogue_formats():
    r = cli("gpus")
    assert r.exit_code == 0
    names = ["gtx580-3gb", "k40", "p100-16gb", "v100-16gb", "v100-32gb", "t4", "rtx3090", "rtx4090", "a100-40gb",
             "a100-80gb", "l4", "h100-80gb", "h200-141gb"]
    for n in names:
        assert n in r.stdout
    data = json.loads(cli("gpus", "--format", "json").stdout)
    assert [g["name"] for g in data] == names
    assert all(g["source"] and g["bandwidth_gbs"] > 0 and g["tflops"]["fp32"] > 0 for g in data)
    rows = list(csv.reader(io.StringIO(cli("gpus", "--format", "csv").stdout)))
    assert rows[0][0] == "name" and len(rows) == len(names) + 1
    assert cli("gpus", "--format", "md").stdout.startswith("| name |")


# ---------------------------------------------------------------- JSON, md, csv


def test_json_has_the_keys_the_issue_requires():
    d = fit_json("vgg16", "--memory", "24GiB", "--max-batch")
    for key in ("fits", "max_batch", "peak_bytes", "capacity_bytes", "items"):
        assert key in d
    assert d["capacity_bytes"] == 24 * 2**30 and d["batch"] == 1
    assert isinstance(d["items"], list) and all({"name", "bytes"} <= set(i) for i in d["items"])
    # the items add up to the peak (the CUDA constants included)
    assert sum(i["bytes"] for i in d["items"]) == d["peak_bytes"]


@pytest.mark.parametrize("name,optimizer", [("alexnet", "momentum"), ("resnet18", "adam")])
def test_max_batch_is_the_boundary_of_the_exact_replay(name, optimizer):
    d = fit_json(name, "--gpu", "t4", "--optimizer", optimizer, "--max-batch")
    m = d["max_batch"]
    report = archcalc.analyze(archcalc.load(name))
    cap = d["capacity_bytes"]
    assert fit(report, batch=m, optimizer=optimizer, constants=CUDA).peak_bytes <= cap
    assert fit(report, batch=m + 1, optimizer=optimizer, constants=CUDA).peak_bytes > cap


def test_md_and_csv():
    md = cli("fit", "alexnet", "--memory", "3GiB", "--batch", "64", "--format", "md").stdout
    assert "| item | bytes | share |" in md and "| weights |" in md
    rows = list(csv.reader(io.StringIO(cli("fit", "alexnet", "--memory", "3GiB", "--batch", "64",
                                           "--format", "csv").stdout)))
    assert rows[0] == ["item", "bytes", "share"]
    by = {r[0]: r[1] for r in rows[1:]}
    d = fit_json("alexnet", "--memory", "3GiB", "--batch", "64")
    assert int(by["peak"]) == d["peak_bytes"] and int(by["max_batch"]) == d["max_batch"]


def test_checkpoint_and_parallel_through_the_cli():
    d = fit_json("resnet50_tv", "--gpu", "a100-40gb", "--batch", "64", "--checkpoint", "sqrt")
    assert d["checkpoint"] == "sqrt" and d["checkpoint_segments"] > 1 and d["recompute_macs"] > 0
    plain = fit_json("resnet50_tv", "--gpu", "a100-40gb", "--batch", "64")
    assert d["peak_bytes"] < plain["peak_bytes"] and d["max_batch"] > plain["max_batch"]
    assert d["roofline"]["recompute_s"] > 0 and plain["roofline"]["recompute_s"] == 0
    text = cli("fit", "resnet50_tv", "--gpu", "a100-40gb", "--batch", "64", "--checkpoint", "blocks").stdout
    assert "checkpointing (blocks): 16 segments; recomputation" in text

    dp = fit_json("resnet50_tv", "--gpu", "v100-16gb", "--batch", "256", "--gpus", "8", "--optimizer", "adam")
    assert dp["parallel"] == "data" and dp["batch_per_device"] == 32 and dp["max_batch"] == 8 * dp["devices"][0]["max_batch"]
    assert "gradient buckets" in [i["name"] for i in dp["items"]]
    z = fit_json("resnet50_tv", "--gpu", "v100-16gb", "--batch", "256", "--gpus", "8", "--zero", "3", "--optimizer", "adam")
    assert z["zero"] == 3 and z["peak_bytes"] < dp["peak_bytes"]
    mp = fit_json("alexnet", "--gpu", "gtx580-3gb", "--batch", "128", "--gpus", "2", "--parallel", "model",
                  "--optimizer", "momentum")
    assert [d["rows"] for d in mp["devices"]] == [{"first": "conv1", "last": "conv3"}, {"first": "conv4", "last": "fc8"}]
    text = cli("fit", "alexnet", "--gpu", "gtx580-3gb", "--batch", "128", "--gpus", "2", "--parallel", "model",
               "--optimizer", "momentum").stdout
    assert "device 0: conv1 .. conv3" in text and "device 1: conv4 .. fc8" in text
    rows = list(csv.reader(io.StringIO(cli("fit", "alexnet", "--memory", "3GiB", "--gpus", "2", "--parallel", "model",
                                           "--format", "csv").stdout)))
    assert rows[0] == ["device", "item", "bytes", "share"] and {r[0] for r in rows[1:-1]} == {"0", "1"}


def test_roofline_per_layer():
    r = cli("fit", "vgg16", "--gpu", "t4", "--batch", "8", "--roofline")
    assert r.exit_code == 0
    assert "conv1_2" in r.stdout and "compute" in r.stdout and "roofline lower bound on step time" in r.stdout


# ---------------------------------------------------------------- bad input: one line, exit 2


@pytest.mark.parametrize("args,message", [
    (["alexnet", "--gpu", "gtx9000"], "unknown GPU 'gtx9000'"),
    (["alexnet", "--memory", "12XB"], "cannot read '12XB'"),
    (["alexnet", "--gpu", "t4", "--memory", "8GiB"], "not both"),
    (["alexnet", "--roofline"], "--roofline needs --gpu"),
    (["alexnet", "--gpus", "2", "--parallel", "model", "--zero", "1"], "--zero shards over data-parallel"),
    (["alexnet", "--zero", "2"], "--zero splits work over several devices: give --gpus N"),
    (["alexnet", "--parallel", "data"], "--parallel splits work over several devices"),
    (["alexnet", "--checkpoint", "nosuchblock"], "no block or row 'nosuchblock'"),
    (["alexnet", "--checkpoint", "blocks"], "no blocks to checkpoint"),
    (["nosuchspec"], "nosuchspec"),
])
def test_bad_input_one_line_exit_2(args, message):
    r = cli("fit", *args)
    assert r.exit_code == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], r.stderr


# ---------------------------------------------------------------- measure (the torch extra)


@pytest.mark.torch
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_measure_torch_json():
    r = cli("measure", "alexnet", "--framework", "torch", "--batch", "2", "--optimizer", "momentum", "--format", "json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["params"]["measured"] == d["params"]["predicted"] == 62_378_344
    assert d["saved_bytes"]["measured"] == d["saved_bytes"]["predicted"]
    total = d["peak"]["total"]
    assert abs(total["predicted"] / total["measured"] - 1) < 0.05
    text = cli("measure", "alexnet", "--framework", "torch", "--batch", "2").stdout
    assert "MemTracker" in text and "params" in text
