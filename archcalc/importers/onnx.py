"""Reading an ONNX graph (the ``onnx`` package only; nothing is run) into ``Layer`` records.

Shapes come from ONNX's own shape inference; weights are read for their dimensions only.
Arithmetic on constants (the shapes and scalars exporters compute inline) is evaluated with
numpy. Patterns one torch module exports as several ONNX nodes are read back as that module:
``x * sigmoid(x)`` is ``silu``; ``Reshape, Transpose(0, 2, 1, 3, 4), Reshape`` is
``channel_shuffle``; stochastic depth's ``RandomUniformLike < keep``, cast, divided, times ``x``
is ``drop_path``; ``Clip(0, 6)`` is ``relu6``.
"""
from __future__ import annotations

import numpy as np

from . import Layer, UnsupportedOp
from .onnx_ops import ACT_OPS, CONST_OPS, attrs, conv_args, pool_args
from .onnx_patterns import RANDOM, Patterns


class _Reader(Patterns):
    def __init__(self, model, file: str):
        import onnx

        self.file = file
        self.graph = model.graph
        inferred = onnx.shape_inference.infer_shapes(model)
        self.shapes = {}
        for vi in list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output):
            dims = vi.type.tensor_type.shape.dim
            self.shapes[vi.name] = tuple(d.dim_value for d in dims)
        self.const = {t.name: onnx.numpy_helper.to_array(t) for t in self.graph.initializer}
        self.layers: list[Layer] = []
        self.of: dict[str, int] = {}  # tensor name -> layer id
        self.note: dict[str, tuple] = {}  # tensor name -> a pending pattern
        self.exporter_made: set[str] = set()  # Constant node outputs: not parameters of the model
        self.readers: dict[str, int] = {}
        for n in self.graph.node:
            for i in n.input:
                self.readers[i] = self.readers.get(i, 0) + 1

    def add(self, type_: str, args: dict, inputs: list[str], out: str, node) -> None:
        shape = self.shapes.get(out)
        if not shape:
            raise UnsupportedOp(f"no shape inferred for the output of node {node.name!r} ({node.op_type})", file=self.file)
        lid = len(self.layers)
        self.layers.append(Layer(lid, type_, args, [self.of[i] for i in inputs], tuple(shape[1:]), node.name))
        self.of[out] = lid

    def wshape(self, node, name: str) -> tuple:
        """A weight's dimensions: an initializer's, or a graph input's (a model exported without
        its parameters, ``export_params=False``, has its weights as inputs)."""
        if name in self.const:
            return tuple(self.const[name].shape)
        if name in self.of or not self.shapes.get(name):
            self.fail(node, " (its weight is computed, not a parameter)")
        return self.shapes[name]

    def fail(self, node, why: str = "") -> None:
        raise UnsupportedOp(f"unsupported ONNX op {node.op_type!r} at node {node.name!r}{why}; "
                            "archcalc's spec language has no layer for it", file=self.file)

    def read(self) -> list[Layer]:
        inits = set(self.const)
        x = next((i for i in self.graph.input if i.name not in inits), None)  # the data first, then any weights
        if x is None:
            raise UnsupportedOp("the ONNX graph has no data input (an empty or truncated file?)", file=self.file)
        self.layers.append(Layer(0, "input", {}, [], self.shapes[x.name][1:], x.name))
        self.of[x.name] = 0
        for node in self.graph.node:
            self.node(node)
        out = self.graph.output[0].name
        if out not in self.of:
            raise UnsupportedOp(f"the graph output {out!r} is not computed by a supported layer", file=self.file)
        if self.of[out] != len(self.layers) - 1:
            self.layers.append(Layer(len(self.layers), "identity", {}, [self.of[out]], self.layers[self.of[out]].out, out))
        return self.layers

    def node(self, node) -> None:
        op, a = node.op_type, attrs(node)
        ins = [i for i in node.input if i]
        out = node.output[0]
        layer_ins = [i for i in ins if i in self.of]
        if op == "Constant":
            self.const[out] = a["value"]
            self.exporter_made.add(out)
        elif op in ("Conv", "MaxPool", "AveragePool"):
            self.window(node, op, a, ins, out)
        elif op in ("Reshape", "Transpose") and ins[0] in self.note and self.note[ins[0]][0].startswith("shuffle"):
            self.shuffle(node, op, a, ins, out)
        elif op in ("Unsqueeze", "Concat", "ReduceMean") and (layer_ins or ins[0] in self.note) and self.stacked(node, op, a, ins, out):
            pass
        elif op in ("Transpose", "LayerNormalization") and (layer_ins or ins[0] in self.note):
            self.channels_last(node, op, a, ins, out)
        elif op == "Slice" and self.note.get(ins[0], ("",))[0] == "subsample_h":
            self.slice(node, ins, out)
        elif op == "Pad" and (layer_ins or self.note.get(ins[0], ("",))[0] == "subsample"):
            self.pad(node, a, ins, out)
        elif not layer_ins and all(i in self.const or i in self.note for i in ins):
            self.constant(node, op, a, ins, out)
        elif op == "Identity":
            self.of[out] = self.of[ins[0]]
        elif op == "Shape":
            self.const[out] = np.array(self.shapes[ins[0]], dtype=np.int64)
        elif op in ACT_OPS:
            act = ACT_OPS[op](a, [self.const.get(i) for i in ins[1:]])
            if act is None:
                self.fail(node, " (with these attributes)")
            self.add(*act, [ins[0]], out, node)
        elif op in ("GlobalAveragePool", "GlobalMaxPool"):
            self.add("adaptive_avgpool" if op == "GlobalAveragePool" else "maxpool",
                     {"out": 1} if op == "GlobalAveragePool" else {"global": True}, ins, out, node)
        elif op == "BatchNormalization":
            # BatchNorm2d(affine=False) is exported with a Constant of ones and zeros as scale and
            # bias; a model's own parameters are initializers or (export_params=False) inputs
            self.add("batchnorm", {"affine": False} if ins[1] in self.exporter_made else {}, ins[:1], out, node)
        elif op == "LRN":
            self.add("lrn", {"size": a["size"], "alpha": a.get("alpha", 1e-4), "beta": a.get("beta", 0.75),
                             "k": a.get("bias", 1.0)}, ins, out, node)
        elif op == "Gemm":
            if a.get("transA", 0) or a.get("alpha", 1.0) != 1.0:
                self.fail(node, " (only x @ W.T + b, as nn.Linear exports)")
            w = self.wshape(node, ins[1])
            self.add("fc", {"out": int(w[0] if a.get("transB", 0) else w[1]), "bias": len(ins) > 2}, ins[:1], out, node)
        elif op == "Flatten" or (op == "Reshape" and len(self.shapes.get(out, ())) == 2):
            self.add("flatten", {}, ins[:1], out, node)
        elif op in ("Concat", "Add", "Mul", "Sum", "Mean") and len(layer_ins) == len(ins) and (len(ins) > 1 or op == "Concat"):
            self.merge(node, op, a, ins, out)
        elif op == "Mul" and len(layer_ins) == 1:
            self.scaled(node, ins, out)
        elif op == "Dropout":
            ratio = float(self.const[ins[1]]) if len(ins) > 1 else a.get("ratio", 0.5)
            self.add("dropout", {"p": round(ratio, 6)}, ins[:1], out, node)
        elif op == "Softmax":
            self.add("softmax", {}, ins, out, node)
        elif op == "Slice":
            self.slice(node, ins, out)
        elif op in ("Reshape", "Transpose"):
            self.shuffle(node, op, a, ins, out)
        elif op in ("Cast", "Div") and ins[0] in self.note:
            self.note[out] = self.note[ins[0]]
        else:
            self.fail(node)

    def constant(self, node, op, a, ins, out) -> None:
        if op == "RandomUniformLike":
            self.note[out] = (RANDOM, None)
        elif op == "Less" and ins[0] in self.note:
            self.note[out] = (RANDOM, float(self.const[ins[1]]))
        elif op in ("Cast", "Div", "Floor") and ins[0] in self.note:
            self.note[out] = self.note[ins[0]]
        elif op in CONST_OPS:
            self.const[out] = CONST_OPS[op](a, [self.const[i] for i in ins])
        else:
            self.fail(node, " (on constants)")

    def window(self, node, op, a, ins, out) -> None:
        src = ins[0]
        pads = None
        if src in self.note and self.note[src][0] == "pad":
            src, pads = self.note[src][1], self.note[src][2]
        if op == "Conv":
            w = self.wshape(node, ins[1])
            c_in = self.shapes[src][1]
            try:
                t, args = conv_args(a, w, c_in, len(ins) > 2, pads)
            except ValueError as e:
                self.fail(node, f" ({e})")
            self.add(t, args, [src], out, node)
        else:
            try:
                args = pool_args(a, pads)
            except ValueError as e:
                self.fail(node, f" ({e})")
            self.add("maxpool" if op == "MaxPool" else "avgpool", args, [src], out, node)

def read_onnx(path: str) -> tuple[list[Layer], str]:
    """The layers of the ONNX file at ``path``, and a name for the spec (the file's stem)."""
    import onnx

    try:
        model = onnx.load(path)
    except FileNotFoundError:
        raise UnsupportedOp("no such file", file=path) from None
    except Exception as e:  # noqa: BLE001 - any parse failure is a bad input file
        raise UnsupportedOp(f"not an ONNX model: {type(e).__name__}: {e}", file=path) from None
    stem = path.replace("\\", "/").rsplit("/", 1)[-1].rsplit(".", 1)[0]
    return _Reader(model, path).read(), stem
