"""The derivation of a target's figures with the numbers plugged in, as a lecture writes it.

A layer's own arithmetic comes from its rule (``Cost.steps``: "H, W: (227 - 11)/4 + 1 = 55",
"weights: 96 x 3 x 11x11 = 34,848 ..."); this module sorts those steps into sections and adds the
formula lines the steps do not state: the general formula, the lecture's one-line substitutions
(``(227 - 11 + 2*0)/4 + 1 = 55``, ``params = 11*11*3*96 + 96 = 34,944``,
``MACs = 55*55*96 * 11*11*3 = 105,415,200``), memory at the report's dtype and batch, what
backward keeps and why (the profile's saved tensors, each attributed to the operation that keeps
it), and the receptive field. Every number printed is a figure of the report; a substitution line
is printed only when its factors reproduce that figure. Blocks, ranges and the whole network get
the sums, term by term.
"""
from __future__ import annotations

from ..profiles import get_profile
from ..report import Report, Row
from ..shape import elems as _elems, fmt_shape
from ..units import fmt_bytes, si
from .target import Target, target_dict

# Sections in print order; an answer about a quantity prints the sections it needs.
SECTIONS = ("shape", "params", "macs", "other", "memory", "saved", "rf", "depth")
FOR_QUANTITY = {
    "out": ("shape",), "params": ("params",), "weight_params": ("params",), "bias_params": ("params",),
    "buffer_elems": ("params",), "param_bytes": ("params",), "buffer_bytes": ("params",),
    "macs": ("macs",), "flops": ("macs",), "other_ops": ("other", "macs"), "connections": ("macs",),
    "out_elems": ("memory",), "out_bytes": ("memory",), "peak_elems": ("memory",), "peak_bytes": ("memory",),
    "saved_elems": ("saved",), "saved_bytes": ("saved",), "rf": ("rf",), "jump": ("rf",), "depth": ("depth",),
}
MAX_TERMS = 10  # a sum with more terms is shown as its total and the number of rows


def explain(report: Report, target: Target) -> str:
    """The whole derivation, as text."""
    out = header(report, target)
    for name, lines in sections(report, target).items():
        if lines:
            out.append("")
            out += lines
    return "\n".join(out) + "\n"


def explain_dict(report: Report, target: Target) -> dict:
    """The derivation as data (``archcalc explain --format json``): the target (``target_dict``),
    the header lines and each non-empty section's lines, in print order."""
    return {**target_dict(report, target), "header": header(report, target),
            "sections": {name: lines for name, lines in sections(report, target).items() if lines}}


def derivation(report: Report, target: Target, key: str) -> list[str]:
    """The lines that derive one quantity (a JSON key) of the target."""
    secs = sections(report, target)
    out: list[str] = []
    for name in FOR_QUANTITY.get(key, ("shape",)):
        out += secs.get(name, [])
    if key == "out" and target.kind == "layer" and not _size_steps(target.row):
        out += secs.get("other", [])  # a merge's or view's shape is said in its steps
    return out


def header(report: Report, target: Target) -> list[str]:
    where = f"{report.name}, {report.dtype}, batch {report.batch}"
    if target.kind == "layer":
        r = target.row
        x = _input_shape(r)
        first = f"{r.path} ({r.type}) in {where}"
        io = f"input {fmt_shape(x)} -> output {shape_words(r.out)}" if x is not None else f"output {shape_words(r.out)}"
        return [first, io]
    names = [r.path for r in target.rows]
    shown = ", ".join(names if len(names) <= 12 else names[:6] + ["..."] + names[-3:])
    what = "the whole network" if target.kind == "total" else target.label
    return [f"{what} in {where}: {len(names)} rows ({shown})"]


def shape_words(shape) -> str:
    """96x55x55 (CxHxW; 55x55x96 as HxWxC)."""
    if len(shape) == 3:
        c, h, w = shape
        return f"{fmt_shape(shape)} (CxHxW; {h}x{w}x{c} as HxWxC)"
    return fmt_shape(shape)


def sections(report: Report, target: Target) -> dict[str, list[str]]:
    if target.kind == "layer":
        return _row_sections(report, target.row)
    return _sum_sections(report, target)


# ---------------------------------------------------------------- one layer


def _input_shape(r: Row):
    parts = r.cost.parts
    if not parts:
        return None
    x = parts[0].x
    return x if isinstance(x, tuple) and all(isinstance(d, int) for d in x) else None


def _size_steps(r: Row) -> list[str]:
    return [s for s in r.steps if s.startswith(("H, W:", "H:", "W:"))]


def _kind_of_step(step: str) -> str:
    if step.startswith(("H, W:", "H:", "W:")):
        return "shape"
    if step.startswith("MACs"):
        return "macs"
    if any(w in step for w in ("weights", "biases", "buffers", "coefficients", "prototypes", "connection table",
                               "no trainable parameters")):
        return "params"
    return "other"


def _conv_factors(r: Row):
    """(kh, kw, c_in per group, c_out, h, w) when the row is a plain conv (maybe + BN + act)."""
    parts = r.cost.parts
    x = _input_shape(r)
    if not parts or parts[0].type != "conv" or r.cost.window is None or x is None or len(x) != 3:
        return None
    wh, ww = r.cost.window
    c_out, h, w = parts[0].out
    g = r.args.get("g", 1) if r.type == "conv" else x[0]  # dwconv: one group per input channel
    if not isinstance(g, int) or g < 1 or x[0] % g:
        return None
    return wh.k, ww.k, x[0] // g, c_out, h, w


def _lecture_size_lines(r: Row) -> list[str] | None:
    """'H, W: (227 - 11 + 2*0)/4 + 1 = 55' when every axis divides evenly with symmetric padding."""
    x = _input_shape(r)
    if r.cost.window is None or x is None or len(x) != 3 or len(r.out) != 3:
        return None
    lines = []
    for axis, n, win, size in (("H", x[1], r.cost.window[0], r.out[1]), ("W", x[2], r.cost.window[1], r.out[2])):
        if win.d != 1 or win.pad_lo != win.pad_hi:
            return None
        span = n - win.k + 2 * win.pad_lo
        if span < 0 or span % win.s or span // win.s + 1 != size:
            return None
        lines.append((axis, f"({n} - {win.k} + 2*{win.pad_lo})/{win.s} + 1 = {size}"))
    if lines[0][1] == lines[1][1]:
        return [f"  H, W: {lines[0][1]}"]
    return [f"  {axis}: {text}" for axis, text in lines]


def _row_sections(report: Report, r: Row) -> dict[str, list[str]]:
    by_kind: dict[str, list[str]] = {k: [] for k in SECTIONS}
    for step in r.steps:
        by_kind[_kind_of_step(step)].append(f"  {step}")
    secs = {k: [] for k in SECTIONS}
    x = _input_shape(r)
    conv = _conv_factors(r)

    # output shape
    if r.cost.window is not None and x is not None and len(x) == 3 and len(r.out) == 3 and r.type != "fc":
        d = any(win.d != 1 for win in r.cost.window)
        secs["shape"].append("output size, per spatial axis: (N + 2P - D*(K - 1) - 1)/S + 1" if d
                             else "output size, per spatial axis: (N - K + 2P)/S + 1")
        lecture = _lecture_size_lines(r)
        secs["shape"] += lecture if lecture is not None else by_kind["shape"]
        if conv is not None:
            secs["shape"].append(f"  channels: {r.out[0]} filters -> {r.out[0]}")
        elif r.out[0] == x[0]:
            secs["shape"].append(f"  channels: kept, {r.out[0]}")
        secs["shape"].append(f"  output: {shape_words(r.out)}")
    elif r.type == "fc" and x is not None:
        secs["shape"].append(f"fully connected: {fmt_shape(x)} = {_elems(x):,} inputs -> "
                             f"{r.out[0]:,} outputs")
    elif x is not None and tuple(x) == tuple(r.out):
        secs["shape"].append(f"output: the input's shape, {shape_words(r.out)}")
    else:  # a merge, a view, a flatten: its steps say how the shape comes about
        secs["shape"].append(f"output: {shape_words(r.out)}")
        secs["shape"] += by_kind["shape"] + by_kind["other"]
        by_kind["other"] = []

    # parameters
    p = secs["params"]
    if r.params == 0 and r.buffer_elems == 0:
        p.append(f"params = 0: {r.type} has no weights")
    else:
        if conv is not None:
            p.append("params = K*K*C_in*C_out weights (C_in/g with groups) + C_out biases")
        elif r.type == "fc":
            p.append("params = N_in*N_out weights + N_out biases")
        else:
            p.append("params = weights + biases")
        p += by_kind["params"]
        line = _params_line(r, conv, x)
        p.append(line or f"  params = {r.weight_params:,} + {r.bias_params:,} = {r.params:,}")
        if r.buffer_elems:
            p.append(f"  buffers (not trainable, not in params): {r.buffer_elems:,}")

    # MACs
    m = secs["macs"]
    if r.macs == 0:
        m.append(f"MACs = 0: {r.type} has no weighted products (FLOPs = 2 x MACs = 0)")
    else:
        if conv is not None:
            m.append("MACs = (output elements) x (K*K*C_in/g multiply-adds each)")
        elif r.type == "fc":
            m.append("MACs = inputs x outputs (one multiply-add per weight)")
        else:
            m.append("MACs (multiply-accumulates)")
        m += by_kind["macs"]
        line = _macs_line(r, conv, x)
        if line:
            m.append(line)
        m.append(f"  FLOPs = 2 x MACs = {r.flops:,}")

    # other work
    if by_kind["other"] or r.other_ops:
        secs["other"].append(f"other ops (not MACs): {r.other_ops:,}")
        secs["other"] += by_kind["other"]

    secs["memory"] = _memory_lines(report, r)
    secs["saved"] = _saved_lines(report, r)
    secs["rf"] = _rf_lines(report, r)
    return secs


def _params_line(r: Row, conv, x) -> str | None:
    """params = 11*11*3*96 + 96 = 34,944, when these factors give the row's count."""
    if conv is not None:
        kh, kw, cin, cout, _, _ = conv
        terms = [(f"{kh}*{kw}*{cin}*{cout}", kh * kw * cin * cout)]
        types = [part.type for part in r.cost.parts]
        extra = r.params - terms[0][1]
        if "batchnorm" in types and extra >= 2 * cout:
            bias = extra - 2 * cout
            if bias:
                terms.append((f"{cout}", bias))
            terms += [(f"{cout} (BN gamma)", cout), (f"{cout} (BN beta)", cout)]
        elif extra:
            terms.append((f"{extra}", extra))
    elif r.type == "fc" and x is not None:
        n_in = 1
        for d in x:
            n_in *= d
        out = r.out[0]
        terms = [(f"{n_in}*{out}", n_in * out)]
        if r.bias_params:
            terms.append((f"{r.bias_params}", r.bias_params))
    else:
        return None
    if sum(v for _, v in terms) != r.params:
        return None
    return f"  params = {' + '.join(t for t, _ in terms)} = {r.params:,}"


def _macs_line(r: Row, conv, x) -> str | None:
    if conv is not None:
        kh, kw, cin, cout, h, w = conv
        if h * w * cout * kh * kw * cin == r.macs:
            return f"  MACs = {h}*{w}*{cout} * {kh}*{kw}*{cin} = {r.macs:,}"
    elif r.type == "fc" and x is not None:
        n_in = 1
        for d in x:
            n_in *= d
        if n_in * r.out[0] == r.macs:
            return f"  MACs = {n_in}*{r.out[0]} = {r.macs:,}"
    return None


def bytes_words(n: int) -> str:
    """1,161,600 B = 1.16 MB = 1.11 MiB (KB and KiB below 100 KB)."""
    if n < 1000:
        return f"{n:,} B"
    big = n >= 100_000
    return f"{n:,} B = {fmt_bytes(n, 'MB' if big else 'KB', 2)} = {fmt_bytes(n, 'MiB' if big else 'KiB', 2)}"


def _per(report: Report) -> str:
    batch = f" x batch {report.batch}" if report.batch > 1 else ""
    return f" x {report.itemsize} B ({report.dtype}){batch}"


def _memory_lines(report: Report, r: Row) -> list[str]:
    n = r.out_elems
    dims = "*".join(str(d) for d in r.out)
    lines = [f"memory at {report.dtype} ({report.itemsize} B per element), batch {report.batch}",
             f"  output: {dims} = {n:,} elements{_per(report)} = {bytes_words(report.row_out_bytes(r))}"]
    if r.mem.alias:
        how = "in place" if r.mem.inplace else "a view or the identity"
        lines.append(f"  {how}: it writes into its input's storage, so the totals count no new tensor for it"
                     + (" (in training, a new tensor)" if r.mem.train_copy else ""))
    if r.mem.temp_elems:
        lines.append(f"  and {r.mem.temp_elems:,} elements of intermediates while it runs")
    return lines


# Why backward keeps a tensor: (operation, what the profile calls it) -> the reason.
_WEIGHT_GRAD = "the weight gradient (dL/dW = input x dL/dout) needs the input"
REASONS = {
    ("conv", "input"): _WEIGHT_GRAD, ("dwconv", "input"): _WEIGHT_GRAD, ("fc", "input"): _WEIGHT_GRAD,
    ("subsample", "input"): "the coefficient's gradient needs the input sums",
    ("rbf", "input"): "the distance's gradient needs the input",
    ("layer_scale", "input"): "the scale's gradient needs the input",
    ("maxpool", "input"): "PyTorch's max-pool backward reads the input's size and layout",
    ("maxpool", "argmax indices (int64)"): "which input of each window was the maximum: the gradient goes only there",
    ("avgpool", "input"): "PyTorch keeps it, though the gradient needs only its size",
    ("adaptive_avgpool", "input"): "PyTorch keeps it, though the gradient needs only its size",
    ("batchnorm", "input"): "to normalise again, (x - mean)/std, in backward",
    ("batchnorm", "batch mean, inv std (fp32)"): "the statistics the forward pass normalised with, once per batch",
    ("relu", "output"): "ReLU's gradient is 1 where its output is positive, 0 elsewhere: the output says where",
    ("sigmoid", "output"): "sigmoid's derivative is y(1 - y), read off its output y",
    ("tanh", "output"): "tanh's derivative is 1 - y^2, read off its output y",
    ("elu", "output"): "in place, the input is gone; the derivative can be read off the output",
    ("leaky_relu", "output"): "in place, the input is gone; the sign of the output says which slope applies",
    ("softmax", "output"): "softmax's Jacobian is built from its output",
    ("dropout", "mask (bool)"): "which units were kept: the gradient passes only through them",
    ("layernorm", "input"): "to normalise again in backward",
    ("layernorm", "mean"): "the statistics of each position", ("layernorm", "inv std"): "the statistics of each position",
    ("drop_path", "noise"): "which samples kept their branch",
    ("lrn", "input"): "the normalisation's derivative needs the input",
    ("lrn", "padded squares"): "LocalResponseNorm runs as several ops; the channel average keeps its input",
    ("lrn", "pow base"): "the power's derivative needs its base", ("lrn", "divisor"): "the division's derivative needs the divisor",
}


def _reason(part_type: str, what: str) -> str:
    if (part_type, what) in REASONS:
        return REASONS[(part_type, what)]
    if what == "input":
        return f"{part_type}'s derivative is a function of its input"
    if what.startswith("copy of the input"):
        return "it runs in place, overwriting the input its derivative needs, so a copy is taken first"
    if what.startswith("operand"):
        return "d(a*b)/da = b: each operand's gradient needs the other"
    return f"kept by {part_type} for its backward"


def _saved_lines(report: Report, r: Row) -> list[str]:
    saved = r.mem.saved
    if not saved:
        return [f"backward keeps nothing for {r.path}" + (" (its gradient needs only shapes)" if r.type != "input"
                                                          else " (the first layer that reads the input keeps it)")]
    lines = [f"backward keeps {r.saved_elems:,} elements at {report.dtype}"
             + (" plus fixed-size tensors" if any(s.itemsize for s in saved) else "")
             + f": {bytes_words(report.row_saved_bytes(r))} for batch {report.batch}"]
    try:
        profile = get_profile(report.profile)
        owners = [(part, s) for part in r.cost.parts for s in profile.part(part).saved]
    except Exception:  # a profile that cannot attribute: say what is kept, without the why
        owners = []
    if len(owners) != len(saved):
        owners = [(None, s) for s in saved]
    for (part, own), s in zip(owners, saved):
        size = f"{s.elems:,}"
        if part is not None and own.of == "input" and isinstance(part.x, tuple) and all(isinstance(d, int) for d in part.x):
            size = f"{fmt_shape(part.x)} = {s.elems:,}"
        elif part is not None and own.of == "output":
            size = f"{fmt_shape(part.out)} = {s.elems:,}"
        unit = f" x {s.itemsize} B" if s.itemsize else ""
        when = ", once per batch" if s.per_batch else ""
        who = f"{part.type}: " if part is not None and len(r.cost.parts) > 1 else ""
        why = f": {_reason(part.type, own.what)}" if part is not None else ""
        lines.append(f"  {who}{s.what} ({size}{unit}{when}){why}")
    if any(s.of.startswith(("input", "output")) for s in saved):
        lines.append("  a tensor two layers keep (a ReLU's output is the next layer's input) counts once in the totals")
    return lines


def _rf_lines(report: Report, r: Row) -> list[str]:
    rf, jump = r.rf, r.jump
    size = f"{rf[0]}x{rf[1]}" if rf[0] != rf[1] else f"{rf[0]}"
    lines = ["receptive field: RF = RF_in + (K - 1) x J_in, jump J = J_in x S (per axis; dilated: K = D*(K - 1) + 1)"]
    ins = [report.find(p) for p in r.inputs]
    ins = [i for i in ins if i is not None]
    window = r.cost.window
    if not ins:
        lines.append(f"  the input: RF = {size}, jump {jump[0]}")
        return lines
    if len(ins) > 1:
        lines.append("  a merge: the largest over its inputs, "
                     + ", ".join(f"{i.path} {i.rf[0]}" for i in ins) + f" -> {max(i.rf[0] for i in ins)}")
    src = ins[0]
    if window is None:
        if len(ins) == 1:
            how = "pointwise" if len(r.out) == 3 else "no window on a vector"
            lines.append(f"  {how}: the same as its input {src.path}, RF {size}, jump {jump[0]}")
        return lines
    rin = (max(i.rf[0] for i in ins), max(i.rf[1] for i in ins))
    jin = (max(i.jump[0] for i in ins), max(i.jump[1] for i in ins))
    axes = [("", 0)] if (window[0] == window[1] and rin[0] == rin[1] and jin[0] == jin[1]) else [("H: ", 0), ("W: ", 1)]
    for label, i in axes:
        win = window[i]
        k = win.k if win.d == 1 else f"({win.d}*({win.k} - 1) + 1)"
        lines.append(f"  {label}RF = {rin[i]} + ({k} - 1)*{jin[i]} = {rf[i]}; J = {jin[i]}*{win.s} = {jump[i]}")
    lines.append(f"  one output of {r.path} sees {rf[0]}x{rf[1]} pixels of the network input")
    return lines


# ---------------------------------------------------------------- several rows


def _sum_line(what: str, rows, attr, total: int) -> str:
    terms = [(r.path, getattr(r, attr)) for r in rows if getattr(r, attr)]
    if not terms:
        return f"{what} = 0"
    if len(terms) == 1:
        return f"{what} = {total:,} ({terms[0][0]})"
    if len(terms) > MAX_TERMS:
        return f"{what} = {total:,}, the sum over {len(terms)} rows (archcalc table lists them)"
    return f"{what} = " + " + ".join(f"{v:,} ({p})" for p, v in terms) + f" = {total:,}"


def _sum_sections(report: Report, target: Target) -> dict[str, list[str]]:
    v = target.values
    rows = target.rows
    secs: dict[str, list[str]] = {k: [] for k in SECTIONS}
    secs["shape"] = [f"output: {shape_words(tuple(v['out']))}, the output of {rows[-1].path}"]
    secs["params"] = [_sum_line("params", rows, "params", v["params"]),
                      f"  = weights {v['weight_params']:,} + biases {v['bias_params']:,}"
                      + (f"; weights only: {v['weight_params']:,}" if v["bias_params"] else "")]
    if v["buffer_elems"]:
        secs["params"].append(f"  buffers (not trainable): {v['buffer_elems']:,}")
    secs["macs"] = [_sum_line("MACs", rows, "macs", v["macs"])]
    weighted = [r for r in rows if r.macs or r.params]
    if len(weighted) <= MAX_TERMS:  # each row's own substitution, as the lecture writes a branch's terms
        for r in weighted:
            conv, x = _conv_factors(r), _input_shape(r)
            line = _params_line(r, conv, x)
            if line:
                secs["params"].append(f"  {r.path}: {line.strip()}")
            line = _macs_line(r, conv, x)
            if line:
                secs["macs"].append(f"  {r.path}: {line.strip()}")
    secs["macs"].append(f"  FLOPs = 2 x MACs = {v['flops']:,}")
    if v["other_ops"]:
        secs["other"] = [f"other ops (not MACs): {v['other_ops']:,} ({si(v['other_ops'])})"]
    alloc = [r for r in rows if not r.mem.alias]
    mem = [f"memory at {report.dtype} ({report.itemsize} B per element), batch {report.batch}"]
    if len(alloc) <= MAX_TERMS:
        mem.append("  forward allocations: " + " + ".join(f"{r.out_elems + r.mem.temp_elems:,} ({r.path})" for r in alloc)
                   + f" = {v['out_elems']:,} elements")
    else:
        mem.append(f"  forward allocations: {v['out_elems']:,} elements over {len(alloc)} rows")
    mem.append(f"  {v['out_elems']:,} elements{_per(report)} = {bytes_words(v['out_bytes'])}")
    if len(alloc) < len(rows):
        mem.append(f"  ({len(rows) - len(alloc)} rows run in place or are views: they allocate nothing)")
    if target.kind == "total":
        mem.append(f"  peak of an inference pass: {v['peak_elems']:,} elements = {bytes_words(v['peak_bytes'])}")
        mem.append(f"  parameters: {v['params']:,} x {report.itemsize} B = {bytes_words(v['param_bytes'])}")
    secs["memory"] = mem
    secs["saved"] = [f"backward keeps {v['saved_elems']:,} elements at {report.dtype} (each tensor once), "
                     f"{bytes_words(v['saved_bytes'])} for batch {report.batch} with indices, masks and statistics"]
    rf, jump = v["rf"], v["jump"]
    last = rows[-1]
    if target.kind == "total":
        secs["rf"] = [f"receptive field of the output ({last.path}): {rf[0]}x{rf[1]} pixels of the input, jump {jump[0]}"]
    else:
        start = rows[0].path
        chain = [r for r in rows if r.cost.window is not None]
        secs["rf"] = [f"receptive field of {last.path} on the input of {start}: {rf[0]}x{rf[1]}, jump {jump[0]}"]
        if chain and len(chain) <= MAX_TERMS and all(r.inputs == (p.path,) for p, r in zip(rows, rows[1:])):
            r_, j_ = 1, 1
            terms = []
            for r in chain:
                win = r.cost.window[0]
                terms.append(f"({win.k_eff} - 1)*{j_}")
                r_ += (win.k_eff - 1) * j_
                j_ *= win.s
            if r_ == rf[0]:
                secs["rf"].append("  RF = 1 + " + " + ".join(terms) + f" = {rf[0]}  (each layer adds (K - 1) x jump)")
        secs["rf"].append(f"  on the network input: {last.rf[0]}x{last.rf[1]} (the rf column of {last.path})")
    if v.get("depth") is not None:
        secs["depth"] = [f"depth: {v['depth']} weight layers (conv, fc: rows with weights and MACs) on the longest "
                         "path through the graph; pools, norms, merges and a branch beside the path do not count"]
    return secs
