"""Fuzz campaign for archcalc (issue 10, "Robustness"): every user error must be one line
`archcalc: FILE:LINE: PATH: what is wrong`, no traceback, deterministic, and hostile input must be
refused in < 1 s of CPU and < 200 MB. docs/limits.md ("Fuzz campaign") records the figures.

    python benchmarks/fuzz.py                         # 2,000 cases, seed 1, 2 workers
    python benchmarks/fuzz.py --cases 100000 --seed 7 # the long campaign (~15 min on 2 cores)
    python benchmarks/fuzz.py --replay 1234 --seed 7  # write case 1234 to fuzz-case-1234.yaml, run it, print
    python benchmarks/fuzz.py --atheris -- -runs=20000 # coverage-guided target for the loader (needs atheris)

Each case is a spec file made by one of three generators:

- mutant: a bundled spec, a library block file wrapped into a spec, a docs example or a
  tests/bad_specs file, mutated 1-4 times (bytes and characters inserted, deleted, replaced;
  lines duplicated, deleted, swapped, re-indented, truncated; numbers swapped for huge, negative,
  zero, float, bool and odd YAML values; YAML tags, python/* tags, anchors and aliases, merge keys,
  deep nesting, non-printable characters, surrogates, expression edits);
- grammar: a generated spec from a small grammar of valid-looking layers (conv, pools, fc, concat,
  add, mul, chunk, split, blocks with $args, from:, when:, times:, first:, aux, group, defaults,
  variants, expect:);
- bomb: the known resource bombs (alias bombs through nested groups, a conv `table:` and
  `expect:`; times: 10**9 and just under the node limit; nested times:; adaptive pools of 10**12 and
  just under arg_max; 10**30 channels; deep YAML, deep groups, deep blocks; long expressions; a
  50 MB file and files just under file_bytes; many expect cases and variants over a large graph).

Each case runs in-process through the code the command line runs: `archcalc table FILE` (load,
analyze with random --dtype/--batch/--strict/--input/--depth, render table (plain and rich), md,
csv and json) and `archcalc check FILE` (cli._members, load, check). Outcomes, per invocation:

- ok: analysed, or a SpecError with a line (or one of UNLOCATED_OK: errors about the file as a
  whole or about a command-line option, which have no line to name);
- unlocated: a SpecError without a line that is not in UNLOCATED_OK;
- multiline: an error message holding a line break (\\n or \\r);
- traceback: any other exception, grouped by type and the innermost archcalc frame;
- slow: an invocation over --time-limit seconds of CPU (time.process_time);
- memory: an invocation whose peak RSS rose more than --mem-limit MB over the RSS it started with
  (VmHWM reset per case through /proc/self/clear_refs, else tracemalloc on a sample);
- hang: over --hard-limit CPU seconds (stopped by a CPU timer);
- nondeterministic: a sample run twice in-process, and again in another process with another
  PYTHONHASHSEED, gives different output or error text;
- executed: a !!python/object/apply tag ran (a marker file appeared).

The bombs are also run through the real CLI in subprocesses under RLIMIT_AS = 1 GB (exit 2, one
line on stderr, no traceback, within the limits).
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import hashlib
import multiprocessing as mp
import os
import platform
import random
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # fuzz this checkout

import archcalc  # noqa: E402,F401 - the checkout under test (REPO is first on sys.path)
from archcalc import analyze, bundled_names, load  # noqa: E402
from archcalc.check import check as run_check  # noqa: E402
from archcalc.formats import render  # noqa: E402
from archcalc.formats.columns import COLUMNS, parse_columns  # noqa: E402
from archcalc.limits import LIMITS  # noqa: E402
from archcalc.report import collapse  # noqa: E402
from archcalc.shape import ShapeError, parse_shape  # noqa: E402
from archcalc.spec import SpecError, bundled_text  # noqa: E402
from archcalc.units import DTYPE_BYTES  # noqa: E402

FILE = "fuzz.yaml"  # every case is this file in the worker's own folder: messages are comparable
MB = 2**20
# SpecErrors that legitimately name no line: the file as a whole (cannot be read) or a command-line
# option (a variant or dtype that does not exist). Nothing a spec's text says may be among them.
UNLOCATED_OK = (
    re.compile(r"cannot read spec: "),
    re.compile(r"no bundled spec named "),
    re.compile(r"has no variant "),
    re.compile(r"unknown dtype "),
    re.compile(r"batch must be "),
)
MARKER = Path(tempfile.gettempdir()) / "archcalc-fuzz-executed"  # a python/* tag that ran would create it


class _Hang(BaseException):
    """Raised by the CPU timer: a BaseException so that no `except Exception` in archcalc eats it."""


# ================================================================ corpus


def _docs_examples() -> list[str]:
    out = []
    for md in sorted((REPO / "docs").glob("*.md")):
        out += re.findall(r"```yaml\n(.*?)```", md.read_text(encoding="utf-8"), re.S)
    return [t for t in out if "layers:" in t]


def _library_specs() -> list[str]:
    """Each shared block file wrapped into a spec that calls each of its blocks once (required
    arguments get 16), so mutating it reaches the block definitions as a spec's own blocks."""
    import yaml

    out = []
    for path in sorted((REPO / "specs" / "blocks").glob("*.yaml")):
        text = path.read_text(encoding="utf-8")
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError:
            continue
        calls = []
        for name, block in (data.get("blocks") or {}).items():
            args = {a: 16 for a, d in ((block or {}).get("args") or {}).items() if d is None}
            calls.append(f"  - {name}: {{{', '.join(f'{a}: {v}' for a, v in args.items())}}}")
        if not calls:
            continue
        body = re.sub(r"^notes:", "source: lib\nnotes:", text, count=1, flags=re.M)
        out.append(f"name: lib_{path.stem}\ninput: [16, 32, 32]\n{body}\nlayers:\n" + "\n".join(calls) + "\n")
    return out


def corpus() -> list[tuple[str, str]]:
    """(label, text) of every seed the mutator starts from."""
    seen, out = set(), []
    for name in bundled_names():
        text = bundled_text(name)
        if text and text not in seen:
            seen.add(text)
            out.append((f"spec:{name}", text))
    for i, text in enumerate(_library_specs()):
        out.append((f"library:{i}", text))
    for i, text in enumerate(_docs_examples()):
        out.append((f"docs:{i}", text))
    for path in sorted((REPO / "tests" / "bad_specs").glob("*.yaml")):
        out.append((f"bad:{path.stem}", path.read_text(encoding="utf-8", errors="replace")))
    return out


# ================================================================ mutations

NUMBERS = ["0", "-1", "-7", "1", "2", "3", "1000000", "1000001", "999999", "1000000000", "10**9", "1e12",
           "1000000000000", "1000000000000000", "1000000000000001", "1" + "0" * 30, "9" * 41, "9" * 5000,
           "1.5", "0.5", "-0.0", "1e308", "1e309", ".inf", "-.inf", ".nan", "true", "false", "yes", "no", "on",
           "null", "~", "''", '"3"', "0x10", "0o17", "0b101", "017", "1_000", "1:30", "190:20:30",
           "2001-12-14", "2001-12-14t21:59:43.10-05:00", "[1, 2]", "[]", "{}", "{a: 1}", "$in", "$in * 1000000",
           "$in ** 64", "$in // 0", "$in % 0", "$x", "'$in'", "$in_h", "max()", "min($in)", "make_divisible($in, 0)",
           "$in / 3", "$in * 1e308", "2 ** 64", "-$in", "((((($in)))))", "__import__('os')", "$in[0]", "$in.real",
           "\"\\ud800\"", "\"\\x00\"", "\"\\r\"", "\"a\\nb\"", "!!binary AAAA", "&n 4", "*n", "|\n  3", ">-\n  3"]
TAGS = ["!!int ", "!!float ", "!!bool ", "!!null ", "!!str ", "!!timestamp ", "!!binary ", "!!set ", "!!omap ",
        "!!pairs ", "!!map ", "!!seq ", "!!merge ", "!!value ", "!!yaml ", "!foo ", "!<tag:yaml.org,2002:int> ",
        "!<!> ", "! ", "!!python/none ", "!!python/tuple ", "!!python/name:os.system ",
        "!!python/object:os.system ", "!!python/module:os ",
        f'!!python/object/apply:os.system ["touch {MARKER}"] ',
        f'!!python/object/apply:builtins.open ["{MARKER}", "w"] ',
        f'!!python/object/new:builtins.open ["{MARKER}", "w"] ']
CHARS = list("[]{}:,-&*!|>'\"#%@`?\n\t $0123456789.+=~\\") + [
    "\x00", "\x01", "\x07", "\x08", "\x0b", "\x0c", "\x1b", "\x7f", "\x85", "\xa0", "\ufeff", "\ufffe", "\uffff",
    "\u2028", "\u2029", "\r", "\r\n", "\U0001F600", "\U0010FFFF", "é", "ı", "İ", "ﬁ", "١", "\u0301", "\u200b",
    "\\ud800", "\\udfff", "\\U0010FFFF", "\\x00", "\\u2028"]
BAD_BYTES = [b"\xff", b"\xfe", b"\xc0\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x80", b"\xe2\x82",
             b"\xef\xbb\xbf", b"\x00\x00\xfe\xff", b"\xff\xfe"]
WORDS = ["conv", "fc", "relu", "maxpool", "avgpool", "adaptive_avgpool", "concat", "add", "mul", "mean", "chunk",
         "split", "slice", "group", "aux", "from", "when", "times", "first", "table", "global", "layers", "blocks",
         "body", "args", "defaults", "variants", "expect", "input", "name", "rounding", "floor", "out", "k", "s",
         "p", "d", "g", "bn", "act", "inplace", "option", "sizes", "i", "n", "notes", "source", "total", "macs",
         "params", "rf", "jump", "bottleneck", "basic", "se", "mbv2_block", "identity", "flatten", "softmax"]
EXPR_EDITS = [("$in", "$in ** 100"), ("$in", "$nope"), ("*", "**"), ("*", "//0*"), ("$", "$$"), ("$", ""),
              ("(", "(((((((((("), (")", "))"), ("//", "/"), ("==", "="), (" and ", " and not ")]


MUTANT_MAX = 3_000_000  # characters after which a mutant is not mutated further (the bombs go to file_bytes)


def _mutate_text(rng: random.Random, text: str) -> str:
    n = len(text)
    i = rng.randrange(n + 1) if n else 0
    kind = rng.choice(["insert", "delete", "replace", "lines", "lines", "number", "number", "number", "tag", "anchor",
                       "nest", "word", "expr", "truncate", "chars", "doc", "indent", "value"])
    if kind == "insert":
        return text[:i] + rng.choice(CHARS) + text[i:]
    if kind == "delete":
        return text[:i] + text[i + rng.randint(1, 40):]
    if kind == "replace":
        return text[:i] + rng.choice(CHARS) + text[i + 1:]
    if kind == "chars":  # a run of one odd character
        return text[:i] + rng.choice(CHARS) * rng.choice([2, 10, 1000]) + text[i:]
    if kind == "truncate":
        return text[:i]
    if kind == "doc":
        return rng.choice(["---\n", "%YAML 1.1\n---\n", "%YAML 2.0\n---\n", "%TAG ! tag:x,2000:\n---\n", ""]) + text + \
            rng.choice(["\n---\nname: x\n", "\n...\n", "\n... junk\n", "", "\n---\n"])
    lines = text.split("\n")
    j = rng.randrange(len(lines))
    if kind == "lines":
        op = rng.choice(["dup", "del", "swap", "dupmany"])
        if op == "dup":
            lines.insert(j, lines[j])
        elif op == "dupmany":  # at most ~1 MB more: a long line copied 2,000 times would be the generator's bomb
            lines[j:j + 1] = [lines[j]] * min(rng.choice([3, 50, 2000]), max(2, 1_000_000 // (len(lines[j]) + 1)))
        elif op == "del":
            del lines[j]
        else:
            k = rng.randrange(len(lines))
            lines[j], lines[k] = lines[k], lines[j]
        return "\n".join(lines)
    if kind == "indent":
        lines[j] = rng.choice([" ", "  ", "\t", "    "]) + lines[j] if rng.random() < 0.7 else lines[j].lstrip()
        return "\n".join(lines)
    if kind == "number":
        spots = [m.span() for m in re.finditer(r"(?<![\w.$])-?\d+(?:\.\d+)?(?![\w.])", text)]
        if not spots:
            return text + rng.choice(NUMBERS)
        a, b = rng.choice(spots)
        return text[:a] + rng.choice(NUMBERS) + text[b:]
    if kind == "tag":
        spots = [m.end() for m in re.finditer(r"(?:: |- |\[|, )", text)] or [i]
        k = rng.choice(spots)
        return text[:k] + rng.choice(TAGS) + text[k:]
    if kind == "anchor":
        spots = [m.end() for m in re.finditer(r"(?:: |- )", text)]
        if len(spots) < 2:
            return text
        a, b = sorted(rng.sample(spots, 2))
        name = rng.choice(["a", "x", "long" * 50])
        form = rng.choice(["plain", "plain", "reverse", "merge", "self", "undefined"])
        if form == "reverse":
            a, b = b, a
        if form == "undefined":
            return text[:b] + f"*{name} " + text[b:]
        if form == "self":  # an alias inside its own anchor's value
            return text[:a] + f"&{name} [*{name}, " + text[a:].replace("\n", "]\n", 1)
        use = f"{{<<: *{name}}} " if form == "merge" else f"*{name} "
        first, second = (f"&{name} ", use) if a <= b else (use, f"&{name} ")
        lo, hi = min(a, b), max(a, b)
        end = text.find("\n", hi)
        end = len(text) if end < 0 else end
        return text[:lo] + first + text[lo:hi] + second + text[end:]
    if kind == "nest":
        depth = rng.choice([5, 50, 99, 100, 101, 500, 5000])
        if rng.random() < 0.5:
            frag = "[" * depth + "1" + "]" * depth
        else:
            frag = "{a: " * depth + "1" + "}" * depth
        return text[:i] + frag + text[i:] if rng.random() < 0.3 else re.sub(
            r"(?<=: )[^\n{\[]+", lambda m: frag, text, count=1) if rng.random() < 0.5 else _at_value(rng, text, frag)
    if kind == "word":
        words = list(re.finditer(r"[A-Za-z_][A-Za-z_0-9]*", text))
        if not words:
            return text
        m = rng.choice(words)
        new = rng.choice(WORDS + [m.group()[:-1], m.group() + "x", m.group().upper(), m.group() * 3, "$" + m.group()])
        return text[:m.start()] + new + text[m.end():]
    if kind == "expr":
        old, new = rng.choice(EXPR_EDITS)
        spots = [m.start() for m in re.finditer(re.escape(old), text)]
        if not spots:
            return text
        k = rng.choice(spots)
        return text[:k] + new + text[k + len(old):]
    if kind == "value":
        return _at_value(rng, text, rng.choice(NUMBERS + ["[" + ", ".join(["relu"] * rng.choice([1, 3, 100])) + "]",
                                                          "{times: 1000}", "{out: 1000000, k: 1}", "{when: false}",
                                                          "[{relu: {times: 100}}]" * 1, "'" + "a" * 5000 + "'"]))
    return text


def _at_value(rng: random.Random, text: str, value: str) -> str:
    spots = [m.span(1) for m in re.finditer(r": ([^\n#]+)", text)]
    if not spots:
        return text
    a, b = rng.choice(spots)
    return text[:a] + value + text[b:]


def mutate(rng: random.Random, text: str) -> bytes:
    for _ in range(rng.choice([1, 1, 1, 2, 2, 3, 4])):
        if len(text) > MUTANT_MAX:
            break
        text = _mutate_text(rng, text)
    data = text.encode("utf-8", "surrogatepass")
    if rng.random() < 0.04:  # bytes that are not UTF-8 (or a BOM, or UTF-16/32 marks)
        k = rng.randrange(len(data) + 1)
        data = data[:k] + rng.choice(BAD_BYTES) + data[k:]
    return data


# ================================================================ grammar

class _Gen:
    """A random spec from a small grammar of valid-looking layers. Half of the specs use only
    good values (most of them analyse); the others take a bad value at a few percent of choices."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.labels: list[str] = []
        self.n = 0
        self.bad = 0.0 if rng.random() < 0.5 else rng.choice([0.02, 0.05, 0.15])
        self.in_block = False  # writing blk's body: no block calls (blk would call itself)
        self.spatial = True  # fc and flatten end the spatial part: no conv or pool after them

    def pick(self, good, bad=()):
        r = self.rng
        if bad and r.random() < self.bad:
            return r.choice(bad)
        return r.choice(good)

    def width(self):
        return self.pick([4, 8, 16, 32, 64, "$in", "$in * 2", "$in // 2", "$w", "'max(1, $in // 4)'",
                          "'make_divisible($in * 1.5)'"],
                         [0, -1, 10**6, 10**6 + 1, 2**40, 1.5, "true", "x", "[3, 3]", "~", "$nope", "$in * 0"])

    def label(self, kind):
        self.n += 1
        if self.rng.random() < 0.5:
            name = f"{kind}{self.n}"
            self.labels.append(name)
            return f"{kind} {name}"
        return kind

    def extras(self):
        r, out = self.rng, []
        if r.random() < 0.12:
            out.append(f"times: {self.pick([0, 1, 2, 3, '$n'], [-1, 100, 10**4, 'x', 1.5])}")
        if r.random() < 0.08:
            out.append(f"when: {self.pick(['true', 'false', '$in > 8', '$in == 16', '$flag'], ['1', 'maybe', '$nope'])}")
        if r.random() < 0.05 and self.labels:
            out.append(f"from: {self.pick(self.labels, ['nope', 'a/b', '[x]'])}")
        return out

    def layer(self, ind: str, depth: int) -> list[str]:
        r = self.rng
        kinds = ["conv", "dwconv", "pool", "act", "bn", "merge", "chunk", "split", "adaptive", "scope", "block", "misc",
                 "fc"]
        weights = [8, 2, 1, 3, 2, 3, 1, 1, 1, 1, 2, 1, 1 if depth == 0 else 0]
        choice = r.choices(kinds, weights)[0]
        if not self.spatial and choice in ("conv", "dwconv", "pool", "adaptive", "chunk", "split", "misc", "block",
                                           "merge"):
            choice = self.pick(["act", "fc"], ["conv"])
        if self.in_block and choice == "block":
            choice = self.pick(["act"], ["block"])
        if depth > 3 and choice in ("merge", "scope"):
            choice = "act"
        if choice == "conv":
            k = self.pick([1, 3, 5, "[1, 3]"], [0, 99, "[3]", -3])
            args = [f"out: {self.width()}", f"k: {k}", f"p: {self.pick(['same'] if k != 1 else [0], [-1, 'valid', '[1, 0, 1]'])}"]
            if r.random() < 0.2:
                args.append(f"g: {self.pick([1], [2, 4, '$in', 0])}")
            if r.random() < 0.2:
                args.append(f"act: {self.pick(['relu', 'none', 'sigmoid', 'silu', 'relu6', 'hardswish'], ['bogus', 3, '[relu]', 'input'])}")
            if r.random() < 0.15:
                args.append(f"bn: {self.pick(['true', 'false'], [1, 'yes please'])}")
            if r.random() < 0.15:
                args.append(f"bias: {self.pick(['true', 'false'], ['[]'])}")
            if r.random() < 0.02:
                args.append(f"table: {self.pick(['[[0], [0], [0]]'], ['[[0], [1], [0, 1]]', '[[99]]', '[]', '3'])}")
            if r.random() < 0.04:
                args.append(f"first: {{s: {self.pick([1], [2, 0])}}}")
            head = self.label("conv")
        elif choice == "dwconv":
            args = ["k: 3", "p: 1", f"s: {self.pick([1], [2, 0])}", f"mult: {self.pick([1, 2], [0, -1])}"]
            head = self.label("dwconv")
        elif choice == "pool":
            kind = r.choice(["maxpool", "avgpool"])
            args = self.pick([["k: 3", "s: 1", "p: 1"], ["k: 1"], ["k: 2", "s: 1", "ceil: true"]],
                             [["k: 2", "s: 2"], ["global: true"], ["k: 0"], ["k: 99"], ["p: 5", "k: 3"]])
            head = self.label(kind)
        elif choice == "act":
            return [f"{ind}- " + self.pick(["relu", "sigmoid", "tanh", "silu", "gelu", "hardswish", "relu6", "identity",
                                            "dropout", "layer_scale", "drop_path", "elu", "hardsigmoid",
                                            "leaky_relu: {slope: 0.2}", "relu: {inplace: true}", "dropout: {p: 0.1}"],
                                           ["softmax", "relu: {inplace: maybe}", "dropout: {p: 2}", "reluu", "$nope"])]
        elif choice == "bn":
            return [f"{ind}- " + self.pick(["batchnorm", "bn", "lrn", "layernorm", "batchnorm: {affine: false}"],
                                           ["lrn: {size: 0}", "batchnorm: {affine: 3}"])]
        elif choice == "fc":
            self.spatial = False
            args = [f"out: {self.pick([10, 100, '$w'], [0, 10**7])}"]
            head = self.label("fc")
        elif choice == "adaptive":
            args = [f"out: {self.pick([1, 2, 7, '[7, 7]', '[1, 3]'], [0, 999999, 10**7, '[2]', '[[1]]'])}"]
            head = self.label("adaptive_avgpool")
        elif choice == "chunk":
            n = self.pick([1, 2], [3, 0])
            args = [f"n: {n}", f"i: {self.pick([0, n - 1 if n else 0], [n, -1, 'x'])}"]
            head = self.label("chunk")
        elif choice == "split":
            args = [f"sizes: {self.pick(['[$in // 2, $in - $in // 2]', '[$in]'], ['[1, 2, 3]', '[]', '8', '[-1, 1]'])}",
                    f"i: {self.pick([0], [1, 5])}"]
            head = self.label("split")
        elif choice == "misc":
            k = r.choice(["slice", "channel_shuffle", "shortcut", "subsample", "flatten"])
            if k == "flatten":
                self.spatial = False
                return [f"{ind}- flatten"]
            args = {"slice": ["start: 0", f"end: {self.pick(['$in', '$in // 2 + 1'], [0, 100, -1])}"],
                    "channel_shuffle": [f"g: {self.pick([1], [2, 3, 0])}"],
                    "shortcut": [f"out: {self.width()}", f"option: {self.pick(['B', 'C'], ['A', 'Z'])}"],
                    "subsample": [f"k: {self.pick([1], [2, 0])}"]}[k]
            head = self.label(k)
        elif choice == "merge":
            kind = self.pick(["concat", "concat", "add", "mul", "mean"])
            head = self.label(kind)
            out = [f"{ind}- {head}:"]
            for b in range(self.pick([2, 2, 3], [1, 0])):
                body = self.body(ind + "      ", depth + 1, r.randint(0, 3), keep_width=kind != "concat")
                out.append(f"{ind}    b{b}:" + ("" if body else " []"))
                out += body
            if r.random() < 0.1:
                out.append(f"{ind}    when: {self.pick(['false', '$in > 4'], ['3'])}")
            return out
        elif choice == "scope":
            kind = r.choice(["group", "aux"])
            self.n += 1
            out = [f"{ind}- {kind} {kind}{self.n}:"]
            return out + (self.body(ind + "    ", depth + 1, r.randint(1, 3)) or [f"{ind}    - relu"])
        else:  # block call
            args = [f"w: {self.width()}"] + ([f"act: {self.pick(['relu', 'silu'], ['bogus'])}"] if r.random() < 0.3 else [])
            head = self.label(self.pick(["blk", "blk", "pair"], ["nope", "blk blk"]))
        args += self.extras()
        return [f"{ind}- {head}: {{{', '.join(map(str, args))}}}"]

    def body(self, ind, depth, n, keep_width=False):
        saved = self.spatial
        out = []
        for _ in range(n):
            if keep_width:  # an add/mul/mean branch keeps its input's shape
                out.append(f"{ind}- " + self.pick(["conv: {out: $in, k: 3, p: 1}", "relu", "batchnorm", "sigmoid",
                                                  "dwconv: {k: 3, p: 1}", "blk: {w: 8}"],
                                                 ["conv: {out: 3, k: 1}", "maxpool: {k: 2, s: 2}"]))
            else:
                out += self.layer(ind, depth)
        if depth:
            self.spatial = saved
        return out

    def spec(self) -> str:
        r = self.rng
        shape = self.pick(["[3, 32, 32]", "[3, 224, 224]", "[16, 8, 8]", "[3, 7, 5]"], ["[64]", "[1, 1, 1]", "[0, 8, 8]"])
        if shape == "[64]":
            self.spatial = False
        lines = [f"name: gen{r.randint(0, 999)}", f"input: {shape}",
                 f"args: {{n: {self.pick([1, 2, 3, 0])}, flag: {self.pick(['true', 'false'])}, w: {self.pick([8, 16])}}}"]
        if r.random() < 0.3:
            lines.append("defaults:\n  conv: {k: 3, p: 1, act: relu}\n  maxpool: {k: 2, s: 2}"
                         + self.pick([""], ["\n  nope: {k: 1}", "\n  conv: {zz: 1}"]))
        if r.random() < 0.2:
            lines.append(f"rounding: {self.pick(['floor', 'warn'], ['up'])}")
        lines.append("blocks:")
        lines.append("  blk:\n    args: {w: ~, act: relu}\n    body:")
        saved = self.spatial
        self.spatial, self.in_block = True, True
        lines += self.body("      ", 2, r.randint(1, 3), keep_width=r.random() < 0.5) or ["      - relu"]
        self.spatial, self.in_block = saved, False
        lines.append("  pair:\n    args: {w: 8}\n    body:\n      - add:\n          x: []\n          y:\n"
                     "            - conv: {out: $in, k: 3, p: 1}\n            - blk: {w: $w}")
        lines.append("layers:")
        lines += self.body("  ", 0, r.randint(1, 12)) or ["  - relu"]
        if r.random() < 0.3:
            lines.append("expect:\n  total: {params: %d, macs: %d}" % (r.randint(0, 10**6), r.randint(0, 10**8)))
            if self.labels and r.random() < 0.5:
                lines.append(f"  layers:\n    {r.choice(self.labels)}: {{out: [8, 8, 8], rf: 3}}")
        if r.random() < 0.15:
            lines.append(f"variants:\n  v1: {{args: {{n: {self.pick([1, 3])}}}}}\n  v2: {{input: {self.pick(['[3, 64, 64]'], ['[3]', 'x'])}}}")
        return "\n".join(lines) + "\n"


# ================================================================ bombs


def _laughs(levels: int, fanout: int, leaf: str, anchor_prefix: str = "l") -> list[str]:
    lines = [f"    - &{anchor_prefix}0 {leaf}"]
    for lv in range(1, levels):
        lines.append(f"    - &{anchor_prefix}{lv} [" + ", ".join([f"*{anchor_prefix}{lv - 1}"] * fanout) + "]")
    return lines


HEAD = "name: bomb\ninput: [3, 8, 8]\n"
BIG_BYTES = 50 * 10**6


def _bomb_texts() -> dict:
    """name -> text (or a callable giving bytes, for the big files). Each must be refused or
    analysed within the limits; the refusal names a line."""
    fb = LIMITS["file_bytes"]
    b = {}
    # Alias bombs: 10 levels of 10 aliases, in layers (nested groups), a conv table:, expect:, args.
    groups = [HEAD + "layers:\n  - group g0: &g0 [relu]"]
    for lv in range(1, 10):
        groups.append(f"  - group g{lv}: &g{lv} [" + ", ".join([f"{{group g: *g{lv - 1}}}"] * 10) + "]")
    b["laughs_groups"] = "\n".join(groups) + "\n"
    # The same, small enough for yaml_nodes: every alias is a real layer of the graph.
    b["laughs_groups_sub"] = HEAD + "layers:\n  - group g: &a [relu, relu, relu, relu, relu, relu, relu, relu, relu, relu]\n" + \
        "".join(f"  - group h{k}: &{chr(98 + k)} [" + ", ".join([f"{{group x: *{chr(97 + k)}}}"] * 10) + "]\n" for k in range(4))
    b["laughs_table"] = HEAD + "args:\n  t:\n" + "\n".join(_laughs(10, 10, "[0]")) + \
        "\nlayers:\n  - conv: {out: 1, k: 1, table: $t}\n"
    b["laughs_table_sub"] = HEAD + "args:\n  t:\n" + "\n".join(_laughs(5, 10, "[0]")) + \
        "\nlayers:\n  - conv: {out: 1, k: 1, table: $t, times: 10000}\n"
    b["laughs_expect"] = HEAD + "layers:\n  - relu\nexpect:\n  total:\n    params:\n" + \
        "\n".join(_laughs(10, 10, "1")).replace("    -", "      -") + "\n"
    under = LIMITS["graph_nodes"] - 10
    b["laughs_expect_cases"] = HEAD + f"layers:\n  - relu: {{times: {under}}}\nexpect:\n" + \
        "  - &c {total: {params: 0}}\n" + "  - *c\n" * 3000
    b["expect_cases_small"] = HEAD + "layers:\n  - relu\nexpect:\n" + "  - &c {total: {params: 0}}\n" + "  - *c\n" * 5000
    b["laughs_args_layers"] = "name: bomb\ninput: [3, 8, 8]\nargs:\n  l0: &l0 [relu, relu, relu, relu, relu, relu, relu, relu, relu, relu]\n" + \
        "".join(f"  l{k}: &l{k} [" + ", ".join([f"{{group: *l{k - 1}}}"] * 10) + "]\n" for k in range(1, 6)) + \
        "layers:\n  - group: $l5\n"
    b["variants_x_graph"] = HEAD + f"args: {{n: 1}}\nlayers:\n  - relu: {{times: {under}}}\nvariants:\n" + \
        "".join(f"  v{k}: {{args: {{n: {k}}}}}\n" for k in range(LIMITS.get("variants", 100)))
    b["variants_many"] = HEAD + "args: {n: 1}\nlayers:\n  - relu\nvariants:\n" + \
        "".join(f"  v{k}: {{args: {{n: {k}}}}}\n" for k in range(5000))
    # times:
    b["times_1e9"] = HEAD + "layers:\n  - relu: {times: 1000000000}\n"
    b["times_under_graph_nodes"] = HEAD + f"layers:\n  - relu: {{times: {LIMITS['graph_nodes'] - 2}}}\n"
    b["times_nested"] = HEAD + "blocks:\n  r:\n    body:\n      - relu: {times: 1000}\nlayers:\n  - r: {times: 1000}\n"
    b["times_nested3"] = HEAD + "blocks:\n  a:\n    body: [{relu: {times: 100}}]\n  b:\n    body: [{a: {times: 100}}]\n" \
                                "layers:\n  - b: {times: 100}\n"
    b["times_expr"] = HEAD + "args: {n: 1000}\nlayers:\n  - relu: {times: $n * $n * $n}\n"
    b["times_conv_distinct"] = HEAD + "blocks:\n  c:\n    args: {w: ~}\n    body: [{conv: {out: $w, k: 1}}]\n" \
        "layers:\n" + "".join(f"  - c: {{w: {k}}}\n" for k in range(1, 3000))
    # arguments and shapes
    b["adaptive_1e12"] = HEAD + "layers:\n  - adaptive_avgpool: {out: 1000000000000}\n"
    b["adaptive_under_arg_max"] = HEAD + f"layers:\n  - adaptive_avgpool: {{out: [{LIMITS['arg_max']}, 1]}}\n"
    b["adaptive_many"] = HEAD + "layers:\n" + "".join(
        f"  - adaptive_avgpool: {{out: [{LIMITS['arg_max'] - k}, 1]}}\n  - adaptive_avgpool: {{out: 1}}\n" for k in range(20))
    b["channels_1e30"] = "name: bomb\ninput: [" + "1" + "0" * 30 + ", 8, 8]\nlayers:\n  - relu\n"
    b["channels_fc_1e15"] = HEAD + "layers:\n  - fc: {out: 1000000000000000}\n"
    b["channels_expr"] = HEAD + "layers:\n  - conv: {out: $in * 1000000000000, k: 1}\n"
    b["elements_1e12"] = "name: bomb\ninput: [1000000, 1000000, 1000000]\nlayers:\n  - relu\n"
    b["int_5000_digits"] = HEAD + "layers:\n  - conv: {out: " + "9" * 5000 + ", k: 1}\n"
    b["float_huge"] = HEAD + "layers:\n  - conv: {out: 1e308, k: 1e308}\n"
    b["kernel_huge"] = "name: bomb\ninput: [3, 1000000, 1000000]\nlayers:\n  - conv: {out: 1, k: 999999, d: 999999}\n"
    # depth
    b["deep_flow_list"] = HEAD + "layers:\n  - " + "[" * 100000 + "]" * 100000 + "\n"
    b["deep_flow_map"] = HEAD + "layers:\n  - " + "{a: " * 20000 + "1" + "}" * 20000 + "\n"
    b["deep_block_indent"] = HEAD + "args:\n" + "".join("  " * (k + 1) + f"a{k}:\n" for k in range(2000)) + "layers: [relu]\n"
    b["deep_groups"] = HEAD + "layers:\n" + "".join("  " * k + "  - group:\n" for k in range(300)) + "  " * 300 + "  - relu\n"
    b["deep_blocks"] = HEAD + "blocks:\n" + "".join(f"  b{k}:\n    body: [b{k + 1}]\n" for k in range(200)) + \
        "  b200:\n    body: [relu]\nlayers: [b0]\n"
    b["deep_expr"] = HEAD + "layers:\n  - conv: {out: " + "(" * 5000 + "1" + ")" * 5000 + ", k: 1}\n"
    b["long_expr"] = HEAD + "layers:\n  - conv: {out: \"" + "+".join(["$in"] * 100000) + "\", k: 1}\n"
    b["pow_tower"] = HEAD + "layers:\n  - conv: {out: 9**9**9**9, k: 1}\n"
    b["long_name"] = HEAD + "layers:\n  - conv " + "n" * 1_000_000 + ": {out: 4, k: 1}\n"
    b["long_type"] = HEAD + "layers:\n  - " + "convv" * 200_000 + "\n"
    b["many_keys"] = HEAD + "layers:\n  - conv: {" + ", ".join(f"k{k}: {k}" for k in range(50000)) + "}\n"
    b["block_many_args"] = HEAD + "blocks:\n  b:\n    args: {" + ", ".join(f"a{k}: {k}" for k in range(20000)) + \
        "}\n    body: [relu]\nlayers:\n  - b: {" + ", ".join(f"z{k}: 1" for k in range(20000)) + "}\n"
    b["many_anchors"] = HEAD + "layers:\n" + "".join(f"  - &a{k} relu\n" for k in range(50000)) + \
        "".join(f"  - *a{k}\n" for k in range(50000))
    b["python_apply"] = HEAD + f'layers:\n  - !!python/object/apply:os.system ["touch {MARKER}"]\n'
    b["python_new"] = HEAD + f'layers:\n  - relu: !!python/object/new:builtins.open ["{MARKER}", "w"]\n'
    b["recursive_alias"] = HEAD + "layers: &l\n  - group: *l\n"
    # size: a 50 MB file (refused before it is read) and files just under file_bytes
    b["file_50MB"] = lambda: (HEAD + "layers:\n").encode() + b"  - conv: {out: 4, k: 1}\n" * (BIG_BYTES // 25)
    b["near_limit_layers"] = lambda: (HEAD + "layers:\n").encode() + b"  - relu\n" * ((fb - 100) // 9)
    b["near_limit_flow_ints"] = lambda: (HEAD + "layers: [relu]\nexpect: [").encode() + b"1," * ((fb - 100) // 2) + b"]\n"
    b["near_limit_error_at_end"] = lambda: (HEAD + "layers:\n").encode() + b"  - relu\n" * ((fb - 100) // 9) + b"  - [\n"
    b["near_limit_one_scalar"] = lambda: (HEAD + "layers: [relu]\nnotes: '").encode() + b"x" * (fb - 100) + b"'\n"
    b["near_limit_comment"] = lambda: (HEAD + "layers: [relu]\n# ").encode() + b"x" * (fb - 100) + b"\n"
    return b


_BOMBS: dict = {}
_BOMB_BYTES: dict = {}


def bombs() -> dict:
    if not _BOMBS:
        _BOMBS.update(_bomb_texts())
    return _BOMBS


def bomb_bytes(name: str) -> bytes:
    if name not in _BOMB_BYTES:  # the big ones are built once per process
        v = bombs()[name]
        _BOMB_BYTES[name] = v() if callable(v) else v.encode("utf-8")
    return _BOMB_BYTES[name]


# ================================================================ cases

_CORPUS: list = []
KINDS = (("mutant", 0.74), ("grammar", 0.25), ("bomb", 0.01))


def make_case(seed: int, i: int) -> tuple[str, str, bytes]:
    """(kind, label, data) of case i: a pure function of (seed, i), whichever worker runs it."""
    rng = random.Random(f"{seed}/{i}")
    x = rng.random()
    if x < KINDS[0][1]:
        if not _CORPUS:
            _CORPUS.extend(corpus())
        label, text = rng.choice(_CORPUS)
        return "mutant", label, mutate(rng, text)
    if x < KINDS[0][1] + KINDS[1][1]:
        text = _Gen(rng).spec()
        if rng.random() < 0.3:
            return "grammar", "grammar+mutant", mutate(rng, text)
        return "grammar", "grammar", text.encode("utf-8")
    names = sorted(bombs())
    name = names[i % len(names)] if rng.random() < 0.5 else rng.choice(names)
    return "bomb", f"bomb:{name}", bomb_bytes(name)


def _options(rng: random.Random) -> dict:
    opts = {"dtype": rng.choice(list(DTYPE_BYTES)), "batch": rng.choice([1, 1, 2, 32, 10**9]),
            "strict": rng.random() < 0.2, "depth": rng.choice([None, None, 1, 2, 3]),
            "input": rng.choice([None] * 8 + ["3x32x32", "1x1x1", "100", "3x100000x100000", "0x1x1", "3x-1x5", "3x",
                                              "1000000x1000000x1000000", "3x7x7"]),
            "rich": rng.random() < 0.1, "columns": rng.random() < 0.3}
    return opts


# ================================================================ running one case


def _members(names):
    """`archcalc check FILE`'s list of (file, variant): every member of the file's family."""
    try:
        from archcalc.cli.check import _members as members
    except ImportError:  # the command line as one module
        from archcalc.cli import _members as members
    return members(names)


def _rss_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1])
    return 0


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class Outcome:
    __slots__ = ("status", "detail", "message", "cpu", "mem_mb", "digest", "phase", "analysed", "types")

    def __init__(self):
        self.status = "ok"  # worst over the invocations
        self.detail = ""
        self.message = ""
        self.cpu = 0.0  # worst invocation
        self.mem_mb = 0.0  # peak RSS over the start of the case
        self.digest = hashlib.sha256()
        self.phase = ""
        self.analysed = False
        self.types: set = set()


SEVERITY = {"ok": 0, "located": 0, "slow": 2, "memory": 3, "multiline": 4, "unlocated": 5, "traceback": 6, "hang": 7}


def _frame(exc: BaseException) -> str:
    """The innermost archcalc frame of a traceback: 'archcalc/expand.py:123 item'."""
    best = None
    for fr in traceback.extract_tb(exc.__traceback__):
        norm = fr.filename.replace(os.sep, "/")
        if "/archcalc/" in norm and "/benchmarks/" not in norm:
            best = f"archcalc/{norm.rsplit('/archcalc/', 1)[1]}:{fr.lineno} {fr.name}"
    return best or "(no archcalc frame)"


def _spec_error(out: Outcome, e: SpecError, invocation: str) -> None:
    text = f"archcalc: {e}"
    out.digest.update(text.encode("utf-8", "surrogatepass"))
    if "\n" in text or "\r" in text:
        _mark(out, "multiline", invocation, text)
    elif not e.line and not any(p.match(e.message) for p in UNLOCATED_OK):
        _mark(out, "unlocated", invocation, text)
    elif out.status == "ok":
        out.status = "located"
        out.message = text[:300]


def _mark(out: Outcome, status: str, detail: str, message: str) -> None:
    if SEVERITY[status] > SEVERITY[out.status]:
        out.status, out.detail, out.message = status, detail, message[:500]


def _invoke(out: Outcome, name: str, fn, limit: float) -> None:
    t0 = time.process_time()
    try:
        fn()
    except SpecError as e:
        _spec_error(out, e, name)
    except (ShapeError, ValueError) as e:
        if name.startswith("table") and isinstance(e, ShapeError):  # --input: click's usage error, exit 2
            out.digest.update(str(e).encode("utf-8", "surrogatepass"))
        else:
            _mark(out, "traceback", f"{type(e).__name__} @ {_frame(e)}", f"{name}: {type(e).__name__}: {e}")
    except RecursionError as e:
        _mark(out, "traceback", f"RecursionError @ {_frame(e)}", f"{name}: RecursionError")
    except MemoryError as e:
        _mark(out, "memory", f"MemoryError @ {_frame(e)}", f"{name}: MemoryError")
    except _Hang:
        raise
    except Exception as e:  # noqa: BLE001 - every other exception is a traceback the user would see
        _mark(out, "traceback", f"{type(e).__name__} @ {_frame(e)}", f"{name}: {type(e).__name__}: {str(e)[:300]}")
    dt = time.process_time() - t0
    if dt > out.cpu:
        out.cpu, out.phase = dt, name
    if dt > limit:
        _mark(out, "slow", name, f"{name} took {dt:.2f} s CPU")


def run_case(data: bytes, rng: random.Random, limit: float, mem_limit: float, path: Path) -> Outcome:
    """The case as `archcalc table` (each format) and `archcalc check` would run it."""
    from archcalc import spec as spec_module

    out = Outcome()
    spec_module._PARSED.clear()  # each case is read cold, as a fresh process would
    path.write_bytes(data)
    name = path.name
    opts = _options(rng)
    reset = _reset_peak()
    rss0 = _rss_kb("VmRSS")
    state: dict = {}

    def table_analyse():
        shape = parse_shape(opts["input"]) if opts["input"] else None
        spec = load(name)
        state["report"] = analyze(spec, input_shape=shape, batch=opts["batch"], dtype=opts["dtype"],
                                  strict=opts["strict"])

    t0 = time.process_time()
    _invoke(out, "table:analyse", table_analyse, limit)
    analysis_cpu = time.process_time() - t0
    report = state.get("report")
    if report is not None:
        out.analysed = True
        out.types = {r.type for r in report.rows}
        rows = collapse(report, opts["depth"]) if opts["depth"] else list(report.rows)
        cols = parse_columns(",".join(COLUMNS) if opts["columns"] else None)
        for fmt in ("table", "md", "csv", "json"):
            def one(fmt=fmt):
                text = render(fmt, report, rows, cols, width=120, **({"color": opts["rich"]} if fmt == "table" else {}))
                out.digest.update(text.encode("utf-8", "surrogatepass"))
            t1 = time.process_time()
            _invoke(out, f"table --format {fmt}", one, limit)
            whole = analysis_cpu + time.process_time() - t1  # one CLI run: analysis + this format
            if whole > out.cpu:
                out.cpu, out.phase = whole, f"table --format {fmt}"
            if whole > limit:
                _mark(out, "slow", f"table --format {fmt}", f"table --format {fmt} took {whole:.2f} s CPU")
        state.clear()
        del report, rows

    def check_all():
        budget = [LIMITS["check_nodes"]]  # as the CLI: one budget for the file's members
        for member, variant in _members([name]):
            try:
                spec = load(member, variant=variant)
                outcomes = run_check(spec, budget=budget)
            except SpecError as e:
                _spec_error(out, e, "check")
                continue
            out.digest.update(repr([(o.where, o.key, o.expected, o.actual, o.line) for o in outcomes]).encode())

    _invoke(out, "check", check_all, limit)
    if reset:
        out.mem_mb = max(0, _rss_kb("VmHWM") - rss0) / 1024
        if out.mem_mb > mem_limit:
            _mark(out, "memory", out.phase, f"peak RSS {out.mem_mb:.0f} MB over the start of the case")
    return out


# ================================================================ workers


def _worker_init(rlimit_as: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if rlimit_as:
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        resource.setrlimit(resource.RLIMIT_AS, (rlimit_as, hard))
    folder = tempfile.mkdtemp(prefix="archcalc-fuzz-")
    os.chdir(folder)  # every case is ./fuzz.yaml: its messages name the same file in every worker


def _on_timer(signum, frame):
    raise _Hang()


def run_chunk(seed: int, ids: list, limit: float, mem_limit: float, hard_limit: float, det_every: int,
              only_digests: bool = False) -> dict:
    signal.signal(signal.SIGPROF, _on_timer)
    path = Path(FILE).resolve()
    res = {"n": 0, "status": Counter(), "kinds": Counter(), "analysed": Counter(), "groups": {}, "worst_cpu": [],
           "worst_mem": [], "digests": {}, "nondet": [], "types": Counter(), "cpu": 0.0, "located_words": Counter(),
           "generator": []}
    t_start = time.process_time()
    for i in ids:
        try:
            kind, label, data = make_case(seed, i)
        except (MemoryError, RecursionError) as e:  # the generator's own failure, not archcalc's
            res["generator"].append((i, type(e).__name__))
            continue
        rng = random.Random(f"{seed}/{i}/options")
        signal.setitimer(signal.ITIMER_PROF, hard_limit)
        try:
            out = run_case(data, rng, limit, mem_limit, path)
            det = det_every and i % det_every == 0
            if det and not only_digests:  # the same case again, cold: the same text and numbers
                again = run_case(data, random.Random(f"{seed}/{i}/options"), limit, mem_limit, path)
                if again.digest.hexdigest() != out.digest.hexdigest():
                    res["nondet"].append((i, label))
                    _mark(out, "traceback", "nondeterministic (in-process)", "two runs differ")
        except _Hang:
            out = Outcome()
            out.status, out.detail, out.message, out.cpu = "hang", "hang", f"over {hard_limit} s CPU", hard_limit
        finally:
            signal.setitimer(signal.ITIMER_PROF, 0)
        if det_every and i % det_every == 0:
            res["digests"][i] = out.digest.hexdigest()
        if only_digests:
            continue
        res["n"] += 1
        res["kinds"][kind] += 1
        status = out.status
        res["status"][status] += 1
        if out.analysed:
            res["analysed"][kind] += 1
            res["types"].update(out.types)
        if status == "located":
            res["located_words"][_gist(out.message)] += 1
        if SEVERITY[status] > 0:
            key = (status, out.detail)
            g = res["groups"].setdefault(key, [0, []])
            g[0] += 1
            if len(g[1]) < 3:
                g[1].append((i, label, out.message))
        res["worst_cpu"] = sorted(res["worst_cpu"] + [(out.cpu, i, label, out.phase)], reverse=True)[:5]
        res["worst_mem"] = sorted(res["worst_mem"] + [(out.mem_mb, i, label, out.phase)], reverse=True)[:5]
    res["cpu"] = time.process_time() - t_start
    return res


def _gist(message: str) -> str:
    """The kind of an error message, for the coverage table: its words without names and numbers."""
    m = message.split(": ", 2)
    text = m[-1] if len(m) == 3 else message
    text = re.sub(r"'[^']*'|\"[^\"]*\"|\d[\d,._]*|\(input [^)]*\)", "_", text)
    return " ".join(text.split()[:6])


def merge(total: dict, part: dict) -> None:
    for key in ("n", "cpu"):
        total[key] = total.get(key, 0) + part[key]
    for key in ("status", "kinds", "analysed", "types", "located_words"):
        total.setdefault(key, Counter()).update(part[key])
    groups = total.setdefault("groups", {})
    for key, (count, examples) in part["groups"].items():
        g = groups.setdefault(key, [0, []])
        g[0] += count
        g[1] = (g[1] + examples)[:3]
    for key in ("worst_cpu", "worst_mem"):
        total[key] = sorted(total.get(key, []) + part[key], reverse=True)[:5]
    total.setdefault("digests", {}).update(part["digests"])
    total.setdefault("nondet", []).extend(part["nondet"])
    total.setdefault("generator", []).extend(part["generator"])


# ================================================================ the bombs through the real CLI


def _judge_cli(name, command, code, stdout, stderr, path, timer) -> dict:
    err = stderr.decode("utf-8", "replace")
    lines = [ln for ln in err.splitlines() if ln]
    problem = ""
    if timer:
        problem = "timeout"
    elif "Traceback" in err:
        problem = "traceback: " + (lines[-1] if lines else "")
    elif code not in (0, 1, 2):
        problem = f"exit {code}"
    elif command == "table" and code == 2:
        if len(lines) != 1 or not re.match(rf"archcalc: {re.escape(str(path))}:\d+: ", lines[0]):
            problem = "not one located line: " + err[:200]
    elif command == "check" and code == 2:
        bad = [ln for ln in lines if not re.match(rf"archcalc: {re.escape(str(path))}:\d+: ", ln)]
        if bad:
            problem = "not located: " + bad[0][:200]
    return {"bomb": name, "command": command, "exit": code, "problem": problem,
            "stderr": (lines[0] if lines else "")[:160]}


# The child sets its own RLIMIT_AS and, at exit, writes its VmHWM to a pipe: a child's ru_maxrss
# would include the RSS of this process at fork, which holds the 50 MB bomb.
_SHIM = """import atexit, os, resource, runpy, sys
fd, limit = int(sys.argv[1]), int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))
def _peak():
    with open("/proc/self/status") as f:
        os.write(fd, next(l for l in f if l.startswith("VmHWM")).split()[1].encode())
atexit.register(_peak)
sys.argv = ["archcalc"] + sys.argv[3:]
runpy.run_module("archcalc", run_name="__main__", alter_sys=True)
"""


def _cli_usage(cmd: list, path: Path, env: dict, rlimit_as: int) -> tuple[float, float, int, str]:
    """(CPU seconds, peak RSS MB, exit code, stderr) of `archcalc CMD PATH` in a subprocess under
    RLIMIT_AS: the CPU from wait4's rusage, the RSS the child's own VmHWM."""
    r, w = os.pipe()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen([sys.executable, "-c", _SHIM, str(w), str(rlimit_as), *cmd, str(path)],
                                stdout=subprocess.DEVNULL, stderr=err, env=env, cwd=path.parent, pass_fds=(w,))
        os.close(w)
        deadline = time.monotonic() + 60
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.005)
        proc.returncode = os.waitstatus_to_exitcode(status)
        peak = os.read(r, 64)
        os.close(r)
        err.seek(0)
        text = err.read().decode("utf-8", "replace")
    return usage.ru_utime + usage.ru_stime, int(peak or 0) / 1024, proc.returncode, text


def run_cli_bombs(limit: float, mem_limit: float, rlimit_as: int = 2**30) -> list[dict]:
    """Every bomb through the real command line, in a subprocess under RLIMIT_AS: its exit code,
    its one line on stderr, its CPU time and peak RSS (from wait4). The interpreter's start-up
    (imports) is measured once and subtracted from the time; the RSS is the process's whole."""
    folder = Path(tempfile.mkdtemp(prefix="archcalc-fuzz-cli-"))
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""), NO_COLOR="1")
    env.pop("ARCHCALC_LIMITS", None)
    base = folder / "base.yaml"
    base.write_text(HEAD + "layers: [relu]\n")
    startup = min(_cli_usage(["table"], base, env, rlimit_as)[0] for _ in range(3))
    results = []
    for name in sorted(bombs()):
        path = folder / f"{name}.yaml"
        path.write_bytes(bomb_bytes(name))
        for command in (["table", "--format", "json"], ["check"]):
            cpu, rss, code, err = _cli_usage(command, path, env, rlimit_as)
            r = _judge_cli(name, command[0], code, b"", err.encode(), path, None)
            r["cpu"] = max(0.0, cpu - startup)
            r["rss_mb"] = rss
            if not r["problem"] and r["cpu"] > limit:
                r["problem"] = f"slow: {r['cpu']:.2f} s CPU"
            if not r["problem"] and rss > mem_limit:
                r["problem"] = f"memory: peak RSS {rss:.0f} MB"
            results.append(r)
        path.unlink()
    return results


# ================================================================ reporting


def machine() -> str:
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "")
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    import yaml

    return (f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores ({cpu}), {mem:.0f} GiB, "
            f"Python {platform.python_version()}, PyYAML {yaml.__version__} (libyaml {'yes' if getattr(yaml, '__with_libyaml__', False) else 'no'})")


FAIL_CLASSES = ("traceback", "unlocated", "multiline", "slow", "memory", "hang")


def summarize(total: dict, wall: float, args, cli: list | None, nondet_x: list, died: list) -> dict:
    st = total.get("status", Counter())
    fails = {c: st.get(c, 0) for c in FAIL_CLASSES}
    fails["nondeterministic"] = len(total.get("nondet", [])) + len(nondet_x)
    fails["executed"] = int(MARKER.exists())
    fails["worker died"] = len(died)
    fails["cli bombs"] = sum(1 for r in (cli or []) if r["problem"])
    fails["generator"] = len(total.get("generator", []))  # cases the generator failed to make (not run)
    n = total.get("n", 0)
    print()
    print(f"archcalc fuzz campaign: seed {args.seed}, {n:,} cases, {args.workers} worker(s), "
          f"{wall:.0f} s wall, {n / max(wall, 1e-9):,.0f} cases/s ({total.get('cpu', 0):.0f} s CPU in the workers)")
    print(f"machine: {machine()}")
    print(f"limits per invocation: {args.time_limit} s CPU, {args.mem_limit} MB peak RSS over the start of the case; "
          f"hang: {args.hard_limit} s CPU")
    print()
    print(f"{'generator':<10} {'cases':>8} {'analysed':>9}")
    for kind, _ in KINDS:
        print(f"{kind:<10} {total['kinds'].get(kind, 0):>8,} {total['analysed'].get(kind, 0):>9,}")
    print()
    print(f"{'outcome':<34} {'cases':>8}")
    print(f"{'ok: analysed, every format, check':<34} {n - sum(st.values()) + st.get('ok', 0):>8,}")
    print(f"{'ok: SpecError with file:line':<34} {st.get('located', 0):>8,}")
    for c in FAIL_CLASSES:
        print(f"{'FAIL ' + c:<34} {st.get(c, 0):>8,}")
    for c in ("nondeterministic", "executed", "worker died", "cli bombs", "generator"):
        print(f"{'FAIL ' + c:<34} {fails[c]:>8,}")
    print()
    worst_cpu = total.get("worst_cpu") or [(0, -1, "", "")]
    worst_mem = total.get("worst_mem") or [(0, -1, "", "")]
    print("worst CPU time:  " + "; ".join(f"{c:.3f} s case {i} {lab} [{ph}]" for c, i, lab, ph in worst_cpu[:3]))
    print("worst memory:    " + "; ".join(f"{m:.1f} MB case {i} {lab} [{ph}]" for m, i, lab, ph in worst_mem[:3]))
    types = total.get("types", Counter())
    print(f"layer types analysed: {len(types)} ({', '.join(sorted(types))})")
    print(f"distinct error kinds (SpecError messages without names and numbers): {len(total.get('located_words', {}))}")
    groups = total.get("groups", {})
    if groups:
        print()
        print("failures by class (type @ innermost archcalc frame), with up to 3 cases (rerun: --replay ID):")
        for (status, detail), (count, examples) in sorted(groups.items(), key=lambda kv: -kv[1][0]):
            print(f"  {status:<10} {count:>6,}  {detail}")
            for i, label, message in examples:
                print(f"      case {i} ({label}): {message[:240]!r}")
    for i, label in total.get("nondet", []) + nondet_x:
        print(f"  nondeterministic: case {i} ({label})")
    for ids in died:
        print(f"  worker died in cases {ids[0]}..{ids[-1]}")
    if cli is not None:
        print()
        worst = max(cli, key=lambda r: r.get("cpu", 0)) if cli else None
        heavy = max(cli, key=lambda r: r.get("rss_mb", 0)) if cli else None
        print(f"bombs through the CLI (subprocess, RLIMIT_AS 1 GiB): {len(cli)} runs, "
              f"{sum(1 for r in cli if r['exit'] == 2)} exit 2, {fails['cli bombs']} problems; "
              + (f"worst CPU {worst['cpu']:.2f} s ({worst['bomb']} {worst['command']}), "
                 f"worst peak RSS {heavy['rss_mb']:.0f} MB ({heavy['bomb']} {heavy['command']})" if cli else ""))
        for r in cli:
            if r["problem"] or args.verbose:
                print(f"  {'FAIL' if r['problem'] else 'ok  '} {r['bomb']:<26} {r['command']:<6} exit {r['exit']} "
                      f"{r.get('cpu', 0):.2f} s {r.get('rss_mb', 0):.0f} MB  {r['problem'] or r['stderr']}")
    if args.verbose:
        print()
        print("most frequent error kinds:")
        for gist, count in total.get("located_words", Counter()).most_common(25):
            print(f"  {count:>7,}  {gist}")
    print()
    bad = sum(fails.values())
    print(f"RESULT: {'PASS' if not bad else 'FAIL'}: " + ", ".join(f"{v} {k}" for k, v in fails.items()))
    return {"cases": n, "failures": fails, "wall": wall}


# ================================================================ main


def _chunks(n: int, size: int) -> list:
    return [list(range(a, min(n, a + size))) for a in range(0, n, size)]


def campaign(args) -> dict:
    if MARKER.exists():
        MARKER.unlink()
    rlimit = args.rlimit_as * MB if args.rlimit_as else 0
    ctx = mp.get_context("spawn")
    chunks = _chunks(args.cases, args.chunk)
    total: dict = {}
    died: list = []
    t0 = time.time()
    last = t0
    env_seed = os.environ.get("PYTHONHASHSEED")
    os.environ["PYTHONHASHSEED"] = "1"  # the determinism pass below runs under another hash seed
    try:
        pending = list(chunks)
        while pending:
            with cf.ProcessPoolExecutor(args.workers, mp_context=ctx, initializer=_worker_init,
                                        initargs=(rlimit,)) as pool:
                futures = {pool.submit(run_chunk, args.seed, ids, args.time_limit, args.mem_limit, args.hard_limit,
                                       args.det_every): ids for ids in pending}
                pending = []
                broken = False
                for fut in cf.as_completed(futures):
                    ids = futures[fut]
                    try:
                        part = fut.result()
                        merge(total, part)
                        for (status, detail), (count, examples) in part["groups"].items():
                            for i, label, message in examples[:1]:  # as they come: a long run can be stopped
                                print(f"  FAIL {status} {detail}: case {i} ({label}): {message[:200]!r}", flush=True)
                    except cf.process.BrokenProcessPool:
                        if not broken:
                            broken = True
                        pending.append(ids)
                        continue
                    now = time.time()
                    if args.progress and now - last > args.progress:
                        last = now
                        n = total.get("n", 0)
                        bad = sum(total["status"].get(c, 0) for c in FAIL_CLASSES)
                        print(f"  {n:>8,} cases  {n / (now - t0):,.0f}/s  {bad} failures", flush=True)
            if broken:  # a worker died (a crash below Python): find the chunk by running each alone
                retry = []
                for ids in pending:
                    with cf.ProcessPoolExecutor(1, mp_context=ctx, initializer=_worker_init, initargs=(rlimit,)) as p:
                        try:
                            merge(total, p.submit(run_chunk, args.seed, ids, args.time_limit, args.mem_limit,
                                                  args.hard_limit, args.det_every).result())
                        except cf.process.BrokenProcessPool:
                            died.append(ids)
                pending = retry
        wall = time.time() - t0
        # Cross-process determinism: the sampled cases again in a process with another hash seed.
        nondet_x = []
        digests = total.get("digests", {})
        if digests and args.det_cross:
            os.environ["PYTHONHASHSEED"] = "2"
            ids = sorted(digests)[: args.det_cross]
            with cf.ProcessPoolExecutor(args.workers, mp_context=ctx, initializer=_worker_init,
                                        initargs=(rlimit,)) as pool:
                parts = pool.map(run_chunk, *zip(*[(args.seed, c, args.time_limit, args.mem_limit, args.hard_limit,
                                                     args.det_every, True) for c in _chunks_of(ids, args.workers)]))
                other = {}
                for p in parts:
                    other.update(p["digests"])
            for i in ids:
                if other.get(i) != digests[i]:
                    nondet_x.append((i, make_case(args.seed, i)[1] + " (across processes)"))
    finally:
        if env_seed is None:
            os.environ.pop("PYTHONHASHSEED", None)
        else:
            os.environ["PYTHONHASHSEED"] = env_seed
    cli = run_cli_bombs(args.time_limit, args.mem_limit) if args.cli_bombs else None
    total.setdefault("kinds", Counter())
    total.setdefault("analysed", Counter())
    return summarize(total, wall, args, cli, nondet_x, died)


def _chunks_of(ids: list, k: int) -> list:
    return [ids[j::k] for j in range(k) if ids[j::k]]


def replay(args) -> None:
    kind, label, data = make_case(args.seed, args.replay)
    path = Path(f"fuzz-case-{args.replay}.yaml")
    path.write_bytes(data)
    print(f"case {args.replay} ({kind}, {label}): {len(data):,} bytes written to {path}")
    rng = random.Random(f"{args.seed}/{args.replay}/options")
    print("options:", _options(random.Random(f"{args.seed}/{args.replay}/options")))
    out = run_case(data, rng, args.time_limit, args.mem_limit, path.resolve())
    print(f"outcome: {out.status} {out.detail} ({out.cpu:.3f} s CPU in {out.phase}, {out.mem_mb:.1f} MB)")
    print(out.message)


def atheris_target(argv: list) -> None:
    """libFuzzer-style coverage-guided fuzzing of the loader (spec.parse) and the analysis: any
    exception other than a located SpecError is a crash."""
    try:
        import atheris
    except ImportError:
        raise SystemExit("atheris is not installed (pip install atheris)") from None
    from archcalc.spec import SpecError as Err, parse

    atheris.instrument_all()  # archcalc is imported already: instrument every loaded function

    def one(data: bytes) -> None:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return
        try:
            analyze(parse(text, file="atheris.yaml"))
        except Err as e:
            if not e.line or "\n" in str(e):
                raise RuntimeError(f"unlocated or multi-line error: {e}") from None

    seeds = Path(tempfile.mkdtemp(prefix="archcalc-atheris-"))
    for k, (_, text) in enumerate(corpus()):
        (seeds / f"seed{k}.yaml").write_text(text, encoding="utf-8")
    atheris.Setup([sys.argv[0], *argv, str(seeds)], one)
    atheris.Fuzz()


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cases", type=int, default=2000, help="cases to run (default 2,000; the campaign: 100000)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    p.add_argument("--chunk", type=int, default=250, help="cases per task sent to a worker")
    p.add_argument("--time-limit", type=float, default=1.0, help="CPU seconds per CLI invocation (default 1)")
    p.add_argument("--mem-limit", type=float, default=200.0, help="MB of peak RSS per case (default 200)")
    p.add_argument("--hard-limit", type=float, default=20.0, help="CPU seconds after which a case is stopped as a hang")
    p.add_argument("--rlimit-as", type=int, default=4096, help="address-space limit of a worker, MB (0: none)")
    p.add_argument("--det-every", type=int, default=50, help="run every Nth case twice and compare (0: never)")
    p.add_argument("--det-cross", type=int, default=400, help="sampled cases re-run under another PYTHONHASHSEED")
    p.add_argument("--no-cli-bombs", dest="cli_bombs", action="store_false", help="skip the bombs through the CLI")
    p.add_argument("--progress", type=float, default=30.0, help="seconds between progress lines (0: none)")
    p.add_argument("--replay", type=int, help="write case ID to fuzz-case-ID.yaml, run it and print the outcome")
    p.add_argument("--list-bombs", action="store_true")
    p.add_argument("-v", "--verbose", action="store_true")
    p.add_argument("--atheris", action="store_true", help="run the atheris target; what follows goes to libFuzzer")
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--atheris" in argv:
        atheris_target([a for a in argv[argv.index("--atheris") + 1:] if a != "--"])
        return {}
    args = p.parse_args(argv)
    if args.list_bombs:
        for name in sorted(bombs()):
            print(name)
        return {}
    if args.replay is not None:
        replay(args)
        return {}
    return campaign(args)


if __name__ == "__main__":
    result = main()
    sys.exit(1 if result and sum(result["failures"].values()) else 0)
