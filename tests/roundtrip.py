"""The import round trip, shared by tests/test_import.py and benchmarks: a bundled spec built in
torch (archcalc.build), exported to ONNX by torch's own exporter, imported back by
``archcalc import``, and both specs analysed. The numbers compared are independent of how the two
specs are written: totals, and each weighted row's (output shape, params, MACs) as a multiset,
since the imported spec's paths are its own.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import archcalc
from archcalc.rules import ACTIVATIONS

# Rows that vanish or move on the way through a framework without changing a number: a
# pass-through, an identity shortcut (an empty skip branch in the imported spec).
PASS_TYPES = {"input", "identity", "flatten", "drop_path"}  # drop_path at p = 0 is not even in the export
FUSABLE = ACTIVATIONS | {"batchnorm"}


class _LRN:
    """nn.LocalResponseNorm exported as ONNX's LRN op (torch exports it as a dozen primitive ops)."""

    @staticmethod
    def patch(model):
        import torch
        from torch import nn

        class Fn(torch.autograd.Function):
            @staticmethod
            def forward(ctx, x, size, alpha, beta, k):
                return nn.functional.local_response_norm(x, size, alpha, beta, k)

            @staticmethod
            def symbolic(g, x, size, alpha, beta, k):
                return g.op("LRN", x, size_i=size, alpha_f=alpha, beta_f=beta, bias_f=k)

        class LRN(nn.Module):
            def __init__(self, m):
                super().__init__()
                self.m = m

            def forward(self, x):
                return Fn.apply(x, self.m.size, self.m.alpha, self.m.beta, self.m.k)

        for name, child in list(model.named_modules()):
            for key, sub in list(child.named_children()):
                if isinstance(sub, nn.LocalResponseNorm):
                    setattr(child, key, LRN(sub))
        return model


def export_onnx(name: str, path: Path) -> None:
    """The bundled spec ``name`` built in torch and exported in training mode, so that batch norm
    stays a layer (eval-mode export folds it into the conv) and dropout stays in the graph."""
    import warnings

    import torch

    spec = archcalc.load(name)
    graph = archcalc.expand(spec)
    model = _LRN.patch(archcalc.build(graph, framework="torch", dropout="module")).train()
    x = torch.randn(2, *graph.input)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), str(path), dynamo=False, training=torch.onnx.TrainingMode.TRAINING,
                          do_constant_folding=True, export_params=False)  # the weights are not needed, only their shapes


def numbers(report) -> dict:
    d = archcalc.to_dict(report)
    t = d["totals"]
    readers: dict[str, list[str]] = {}
    for r in d["layers"]:
        for i in r["inputs"]:
            readers.setdefault(i, []).append(r["type"])
    rows = [r for r in d["layers"] if not r["aux"] and r["type"] not in PASS_TYPES
            and not (r["type"] == "shortcut" and r["params"] == 0)
            # torch's exporter flattens cat(cat(a, b), c) into one Concat (Inception-v3's E modules)
            and not (r["type"] == "concat" and readers.get(r["path"]) == ["concat"])]
    rows = _fold_bn(rows, readers)
    return {
        "params": t["params"], "macs": t["macs"], "buffer_elems": t["buffer_elems"],
        "saved_bytes": t["saved_bytes"], "out_bytes": t["out_bytes"],
        "weighted_rows": Counter((tuple(r["out"]), r["params"], r["macs"]) for r in rows if r["params"] or r["macs"]),
        # a BN or activation row of the spec may be fused into the conv row before it on import
        "row_shapes": Counter(tuple(r["out"]) for r in rows if r["type"] not in FUSABLE),
        "output": tuple(d["layers"][-1]["out"]),
    }


def _fold_bn(rows: list[dict], readers: dict) -> list[dict]:
    """A batch norm row that reads a conv/fc row nothing else reads is counted in that row, as the
    importer fuses it (a pre-activation ResNet's spec writes the first block's BN as its own row)."""
    by_path = {r["path"]: dict(r) for r in rows}
    out = []
    for r in rows:
        src = by_path.get(r["inputs"][0]) if len(r["inputs"]) == 1 else None
        if (r["type"] == "batchnorm" and src is not None and src["type"] in ("conv", "dwconv", "fc")
                and len(readers.get(src["path"], ())) == 1):
            src["params"] += r["params"]
            src["out"] = r["out"]
            continue
        out.append(by_path[r["path"]])
    return out


def round_trip(name: str, tmp: Path) -> tuple[dict, dict, str]:
    """(the bundled spec's numbers, the imported spec's, the imported text)."""
    from archcalc.importers import import_model

    path = tmp / f"{name}.onnx"
    export_onnx(name, path)
    text = import_model(str(path), name=name + "_imported")
    imported = archcalc.analyze(archcalc.parse(text, f"{name}_imported.yaml"))
    return numbers(archcalc.analyze(archcalc.load(name))), numbers(imported), text


# What the round trip must keep. out_bytes is left out: ONNX has no in-place operations, so an
# `add: {inplace: true}` of the spec comes back as an add writing a new tensor (docs/import.md).
COMPARED = ("params", "macs", "buffer_elems", "saved_bytes", "weighted_rows", "row_shapes", "output")


def differences(a: dict, b: dict, keys=COMPARED) -> list[str]:
    out = []
    for k in keys:
        if a[k] != b[k]:
            if isinstance(a[k], Counter):
                out.append(f"{k}: only in the spec {dict(a[k] - b[k])}, only imported {dict(b[k] - a[k])}")
            else:
                out.append(f"{k}: spec {a[k]}, imported {b[k]}")
    return out
