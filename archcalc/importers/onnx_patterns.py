"""Patterns an exporter writes as several ONNX nodes, read back as one archcalc layer (for onnx.py).

Each method is called by ``onnx._Reader.node`` on one node; a pattern in progress is kept in
``self.note`` (tensor name -> what it is so far) until its last node adds the layer.
"""
from __future__ import annotations

RANDOM = "random"  # a tensor derived from RandomUniformLike: (keep probability or None)


class Patterns:
    """Mixed into the ONNX reader: Pad before a window op, SiLU, drop_path and layer scale,
    FractalNet's stack-and-mean, a channels-last layer norm, channel slices and shuffles."""

    def pad(self, node, a, ins, out) -> None:
        p = [int(v) for v in (self.const[ins[1]] if len(ins) > 1 else a.get("pads", []))]
        sub = self.note.get(ins[0], ("",))
        if sub[0] == "subsample" and len(p) == 8 and not any(p[i] for i in (0, 2, 3, 4, 6, 7)):
            # ResNet's option A shortcut: x[:, :, ::s, ::s], then zero channels padded on
            c = self.shapes[sub[1]][1] + p[1] + p[5]
            self.add("shortcut", {"out": c, "s": sub[2], "option": "A"}, [sub[1]], out, node)
            return
        if a.get("mode", "constant") != "constant" or len(p) != 8 or any(p[i] for i in (0, 1, 4, 5)):
            self.fail(node, " (only zero padding of the two spatial axes, before a conv or pool)")
        self.note[out] = ("pad", ins[0], (p[2], p[6], p[3], p[7]))

    def merge(self, node, op, a, ins, out) -> None:
        if op == "Concat" and a.get("axis") != 1:
            self.fail(node, f" (concat on axis {a.get('axis')}; archcalc concatenates channels)")
        if op == "Mul" and len(ins) == 2:  # x * sigmoid(x): SiLU, as torch exports nn.SiLU
            for x, s in (ins, ins[::-1]):
                lid = self.of[s]
                if self.layers[lid].type == "sigmoid" and self.layers[lid].inputs == [self.of[x]] and self.readers.get(s) == 1:
                    self.layers[lid].type = "silu"
                    self.of[out] = lid
                    return
        kind = {"Concat": "concat", "Add": "add", "Sum": "add", "Mul": "mul", "Mean": "mean"}[op]
        self.add(kind, {}, ins, out, node)

    def scaled(self, node, ins, out) -> None:
        x = next(i for i in ins if i in self.of)
        other = next(i for i in ins if i not in self.of)
        if other in self.note and self.note[other][0] == RANDOM and self.note[other][1] is not None:
            self.add("drop_path", {"p": round(1.0 - self.note[other][1], 6)}, [x], out, node)
        elif other not in self.note and len(self.wshape(node, other)) == 3 and self.wshape(node, other)[1:] == (1, 1):
            self.add("layer_scale", {}, [x], out, node)
        else:
            self.fail(node, " (a product with a constant)")

    def stacked(self, node, op, a, ins, out) -> bool:
        """torch.stack(xs).mean(0) (FractalNet's join): Unsqueeze(0) each, Concat(axis 0), ReduceMean(0)."""
        notes = [self.note.get(i, ("",)) for i in ins]
        axes = a.get("axes") if "axes" in a else (self.const[ins[1]].tolist() if len(ins) > 1 and ins[1] in self.const else None)
        if op == "Unsqueeze" and ins[0] in self.of and axes == [0]:
            self.note[out] = ("stack", [ins[0]])
        elif op == "Concat" and a.get("axis") == 0 and all(n[0] == "stack" for n in notes):
            self.note[out] = ("stack", [x for n in notes for x in n[1]])
        elif op == "ReduceMean" and notes[0][0] == "stack" and axes == [0] and not a.get("keepdims", 1):
            self.add("mean", {}, notes[0][1], out, node)
        else:
            return False
        return True

    def channels_last(self, node, op, a, ins, out) -> None:
        """ConvNeXt's LayerNorm2d: permute to channels-last, layer norm over C, permute back."""
        src = self.note.get(ins[0], ("",))
        if op == "Transpose" and ins[0] in self.of and a.get("perm") == [0, 2, 3, 1]:
            self.note[out] = ("nhwc", ins[0])
        elif op == "LayerNormalization" and src[0] == "nhwc" and a.get("axis", -1) in (-1, 3):
            self.note[out] = ("nhwc_ln", src[1], len(ins) > 1)
        elif op == "Transpose" and src[0] == "nhwc_ln" and a.get("perm") == [0, 3, 1, 2]:
            self.add("layernorm", {} if src[2] else {"affine": False}, [src[1]], out, node)
        elif op == "LayerNormalization" and ins[0] in self.of and len(self.shapes[ins[0]]) == 2:
            self.add("layernorm", {} if len(ins) > 1 else {"affine": False}, ins[:1], out, node)
        else:
            self.fail(node, " (only a channels-first layer norm, permuted around LayerNormalization)")

    def slice(self, node, ins, out) -> None:
        starts, ends = (self.const[i].tolist() for i in ins[1:3])
        axes = self.const[ins[3]].tolist() if len(ins) > 3 else list(range(len(starts)))
        steps = self.const[ins[4]].tolist() if len(ins) > 4 else [1] * len(starts)
        whole = all(b == 0 for b in starts) and all(e >= 2**31 - 1 for e in ends)
        prev = self.note.get(ins[0], ("",))
        if whole and axes == [2] and steps[0] > 1 and ins[0] in self.of:  # x[:, :, ::s] (then ::s on W)
            self.note[out] = ("subsample_h", ins[0], steps[0])
            return
        if whole and axes == [3] and prev[0] == "subsample_h":
            self.note[out] = ("subsample", prev[1], prev[2] if prev[2] == steps[0] else [prev[2], steps[0]])
            return
        c = self.shapes[ins[0]][1]
        if axes != [1] or steps != [1]:
            self.fail(node, " (only a channel slice x[:, a:b] is a layer)")
        start, end = max(0, starts[0]), min(c, ends[0])
        self.add("slice", {"start": start, "end": end} if end < c else {"start": start}, ins[:1], out, node)

    def shuffle(self, node, op, a, ins, out) -> None:
        shape = self.shapes.get(out, ())
        if op == "Reshape" and len(shape) == 5 and ins[0] in self.of:
            self.note[out] = ("shuffle1", ins[0], shape[1])
            return
        if op == "Transpose" and ins[0] in self.note and self.note[ins[0]][0] == "shuffle1" and a.get("perm") == [0, 2, 1, 3, 4]:
            self.note[out] = ("shuffle2",) + self.note[ins[0]][1:]
            return
        if op == "Reshape" and ins[0] in self.note and self.note[ins[0]][0] == "shuffle2" and len(shape) == 4:
            _, src, g = self.note[ins[0]]
            self.add("channel_shuffle", {"g": int(g)}, [src], out, node)
            return
        self.fail(node, " (only a channel shuffle's reshape/transpose or a flatten)")
