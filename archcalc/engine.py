"""Walk a spec's layer list: sequences, branches merged by concat/add, side (aux) branches,
repetition (times/first) and parametrised block calls. Produces one Row per layer and merge.

Every error names the file, the line and the layer path. The walk is linear in the number of
layers it expands to.
"""
from __future__ import annotations

import ast
import operator
import re
from dataclasses import dataclass, field

from . import rules
from .gcpause import gc_paused
from .report import Report, Row, build_report
from .rules import RuleError
from .shape import Shape, elems, fmt_shape
from .spec import Map, Seq, Spec, SpecError, line_of

DTYPE_BYTES = {"fp32": 4, "fp16": 2, "bf16": 2, "int8": 1}
MERGES = ("concat", "add")
SCOPES = ("aux", "group")
BLOCK_KEYS = ("args", "body", "defaults", "notes")


@dataclass(frozen=True)
class Flow:
    """The tensor flowing between layers: its id (for liveness), shape and receptive field."""

    tensor: int
    shape: Shape
    rf: tuple[int, int]
    jump: tuple[int, int]


@dataclass
class Scope:
    path: str
    defaults: dict
    env: dict
    aux: bool = False
    ancestors: tuple = ()  # ((path, type), ...) of enclosing blocks, branches, groups
    counters: dict = field(default_factory=dict)

    def child(self, name: str, kind: str, **changes) -> "Scope":
        path = f"{self.path}/{name}" if self.path else name
        base = dict(path=path, defaults=self.defaults, env=self.env, aux=self.aux,
                    ancestors=self.ancestors + ((path, kind),))
        base.update(changes)
        return Scope(**base)

    def auto_name(self, type_name: str, taken: set | None = None) -> str:
        """The next `typeN` of this scope; numbers a label already took are skipped."""
        n = self.counters.get(type_name, 0)
        while True:
            n += 1
            name = f"{type_name}{n}"
            if taken is None or (f"{self.path}/{name}" if self.path else name) not in taken:
                break
        self.counters[type_name] = n
        return name


def analyze(spec: Spec, *, input_shape: Shape | None = None, batch: int = 1, dtype: str = "fp32",
            strict: bool = False) -> Report:
    """Propagate shapes through the spec and count everything. Pure: the spec is not modified."""
    if dtype not in DTYPE_BYTES:
        raise SpecError(f"unknown dtype {dtype!r}; known: {', '.join(DTYPE_BYTES)}", file=spec.file)
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise SpecError(f"batch must be a positive integer, got {batch!r}", file=spec.file)
    with gc_paused():
        walker = _Walker(spec, strict)
        shape = tuple(input_shape) if input_shape is not None else spec.input
        flow = walker.start(shape)
        walker.walk(spec.layers, flow, walker.root)
        return build_report(spec, walker.rows, walker.tensor_elems, walker.scope_types,
                            input_shape=shape, batch=batch, dtype=dtype, itemsize=DTYPE_BYTES[dtype])


class _Walker:
    def __init__(self, spec: Spec, strict: bool):
        self.spec = spec
        self.strict = strict
        self.rows: list[Row] = []
        self.tensor_elems: list[int] = []
        self.paths: set[str] = set()
        self.scope_types: dict[str, str] = {}
        # Rules are pure functions of (input shape, arguments) returning immutable Costs, so a layer
        # repeated with the same input and arguments (a block called `times: 23`) is costed once.
        self.costs: dict = {}
        self._check_blocks()
        self._check_defaults(spec.defaults, line_of(spec.defaults, spec.lines.get("defaults", 0)))
        self.root = Scope(path="", defaults=_canonical(spec.defaults), env={})

    # ------------------------------------------------------------ errors and validation

    def fail(self, message: str, line: int, path: str | None = None) -> SpecError:
        return SpecError(message, file=self.spec.file, line=line or None, path=path or None)

    def _check_blocks(self) -> None:
        for name, block in self.spec.blocks.items():
            line = self.spec.blocks.key_lines.get(name, 0) if isinstance(self.spec.blocks, Map) else 0
            if rules.lookup(name) or name in MERGES + SCOPES:
                raise self.fail(f"block name {name!r} is already a layer type", line)
            if not isinstance(block, dict) or "body" not in block:
                raise self.fail(f"block {name!r} needs a body: list of layers", line)
            unknown = [k for k in block if k not in BLOCK_KEYS]
            if unknown:
                raise self.fail(f"block {name!r}: unknown key {unknown[0]!r}; known: {', '.join(BLOCK_KEYS)}", line)
            key_lines = getattr(block, "key_lines", {})  # point at the offending key of the block
            if not isinstance(block["body"], list) or not block["body"]:
                raise self.fail(f"block {name!r}: body must be a non-empty list of layers", key_lines.get("body", line))
            if not isinstance(block.get("args") or {}, dict):
                raise self.fail(f"block {name!r}: args must be a mapping of name: default (~ = required)",
                                key_lines.get("args", line))
            self._check_defaults(block.get("defaults") or {}, key_lines.get("defaults", line))

    def _check_defaults(self, defaults: dict, line: int) -> None:
        if not isinstance(defaults, dict):
            raise self.fail("defaults must be a mapping of layer type: {arguments}", line)
        for type_name, args in defaults.items():
            key_line = getattr(defaults, "key_lines", {}).get(type_name, line)
            if not isinstance(args, dict):
                raise self.fail(f"defaults for {type_name!r} must be a mapping of arguments", key_line)
            r = rules.lookup(type_name)
            if r is None:
                block = self.spec.blocks.get(type_name)
                if block is not None:
                    declared = (block.get("args") or {}) if isinstance(block, dict) else {}
                    unknown = sorted(set(args) - set(declared))
                    if unknown:
                        raise self.fail(f"defaults for block {type_name}: unknown argument {unknown[0]!r}; "
                                        f"its arguments: {', '.join(declared) or '(none)'}", key_line)
                    continue
                raise self.fail(f"defaults for unknown layer type {type_name!r}; known: {', '.join(rules.known_types())}", key_line)
            unknown = sorted(set(args) - set(r.known))
            if unknown:
                raise self.fail(f"defaults for {type_name}: unknown argument {unknown[0]!r}; known: {', '.join(r.known)}", key_line)

    # ------------------------------------------------------------ tensors and rows

    def new_tensor(self, n: int) -> int:
        self.tensor_elems.append(n)
        return len(self.tensor_elems) - 1

    def start(self, shape: Shape) -> Flow:
        try:
            cost = rules.apply(rules.RULES["input"], shape, {})
        except RuleError as e:
            raise self.fail(str(e), self.spec.lines.get("input", 0), "input") from None
        flow = Flow(self.new_tensor(elems(shape)), shape, (1, 1), (1, 1))
        self.add_row("input", "input", "input", self.spec.lines.get("input", 0), cost, (), flow, Scope("", {}, {}), {})
        return flow

    def add_row(self, name, path, type_name, line, cost, inputs, flow, scope, args) -> None:
        if path in self.paths:
            raise self.fail(f"duplicate layer path {path!r}; give the layer (or its concat/add) a distinct name", line, path)
        self.paths.add(path)
        if cost.warnings and self.strict:
            raise self.fail(f"{cost.warnings[0]} (--strict)", line, path)
        self.rows.append(Row(
            name=name, path=path, type=type_name, line=line, out=cost.out, cost=cost,
            rf=flow.rf, jump=flow.jump, aux=scope.aux, ancestors=scope.ancestors, args=args,
            tensor_in=tuple(inputs), tensor_out=flow.tensor,
        ))

    # ------------------------------------------------------------ the walk

    def walk(self, items, flow: Flow, scope: Scope) -> Flow:
        if not isinstance(items, list):
            raise self.fail("expected a list of layers", line_of(items), scope.path)
        lines = getattr(items, "item_lines", [line_of(items)] * len(items))
        for raw, line in zip(items, lines):
            flow = self.item(raw, line_of(raw, line), flow, scope)
        return flow

    def item(self, raw, line: int, flow: Flow, scope: Scope) -> Flow:
        type_name, label, value = self.split(raw, line, scope)
        if type_name in MERGES:
            if not isinstance(value, dict) or not all(isinstance(v, list) or v is None for v in value.values()):
                raise self.fail(f"{type_name} takes named branches, each a list of layers ([] = identity)",
                                line, self.join(scope, label or type_name))
            return self.merge(type_name, label, value, line, flow, scope)
        if type_name in SCOPES:
            return self.side(type_name, label, value, line, flow, scope)
        block = self.spec.blocks.get(type_name)
        r = rules.lookup(type_name)
        if r is not None and r.name == "input":
            raise self.fail("the input is set by `input: [C, H, W]` at the top, not as a layer", line,
                            self.join(scope, label or type_name))
        if block is None and r is None:
            known = [t for t in rules.known_types() if t != "input"] + sorted(self.spec.blocks) + list(MERGES + SCOPES)
            where = f"{scope.path}/{label or type_name}" if scope.path else (label or type_name)
            raise self.fail(f"unknown layer type {type_name!r}; known: {', '.join(sorted(set(known)))}", line, where)
        value = self.subst(value, scope, line)
        if block is not None:
            if isinstance(value, list):
                args, times, first = {"__positional__": value}, 1, {}
            else:
                args, times, first = self.repeat_args(value, type_name, line, scope, label)
        else:
            if isinstance(value, list):
                raise self.fail(f"arguments of {type_name} must be a mapping, e.g. {type_name}: {{k: 3}}", line,
                                self.join(scope, label or type_name))
            args, times, first = self.repeat_args(value, type_name, line, scope, label)
        names = self.instance_names(type_name, label, times, scope)
        for i, name in enumerate(names):
            inst_args = {**args, **first} if i == 0 else dict(args)
            if block is not None:
                flow = self.call(type_name, block, name, inst_args, line, flow, scope)
            else:
                flow = self.layer(r, type_name, name, inst_args, line, flow, scope)
        return flow

    def split(self, raw, line: int, scope: Scope):
        if isinstance(raw, str):
            key, value = raw, None
        elif isinstance(raw, dict) and len(raw) == 1:
            key, value = next(iter(raw.items()))
        else:
            raise self.fail("a layer is written `type`, `type: {args}` or `type name: {args}`", line, scope.path or None)
        parts = key.split()
        if not parts or len(parts) > 2:
            raise self.fail(f"cannot read layer {key!r}: write `type` or `type name`", line, scope.path or None)
        type_name = parts[0]
        label = parts[1] if len(parts) == 2 else None
        if label is not None:
            if "/" in label:
                raise self.fail(f"layer name {label!r} cannot contain '/'", line, scope.path or None)
            if label[0].isdigit():
                label = f"{type_name}_{label}"  # `inception 3a` -> inception_3a
        return type_name, label, value

    def repeat_args(self, value, type_name: str, line: int, scope: Scope, label: str | None = None):
        where = self.join(scope, label or type_name)
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise self.fail(f"arguments of {type_name} must be a mapping, got {value!r}", line, where)
        args = dict(value)
        times = args.pop("times", 1)
        first = args.pop("first", {}) or {}
        if isinstance(times, bool) or not isinstance(times, int) or times < 1:
            raise self.fail(f"times must be a positive integer, got {times!r}", line, where)
        if not isinstance(first, dict):
            raise self.fail("first must be a mapping of arguments for the first repetition", line, where)
        return args, times, first

    def instance_names(self, type_name: str, label: str | None, times: int, scope: Scope) -> list[str]:
        if label is None:
            return [scope.auto_name(type_name, self.paths) for _ in range(times)]
        if times == 1:
            return [label]
        return [f"{label}_{i}" for i in range(1, times + 1)]

    def join(self, scope: Scope, name: str) -> str:
        return f"{scope.path}/{name}" if scope.path else name

    def layer(self, r: rules.Rule, type_name: str, name: str, args: dict, line: int, flow: Flow, scope: Scope) -> Flow:
        path = self.join(scope, name)
        merged = {**scope.defaults.get(r.name, {}), **args}
        try:
            key = _cost_key(r.name, flow.shape, merged)
        except _Unfreezable:
            key = None
        cost = self.costs.get(key) if key is not None else None
        if cost is None:
            try:
                cost = rules.apply(r, flow.shape, merged)
            except RuleError as e:
                raise self.fail(f"{e} (input {fmt_shape(flow.shape)})" if "input" not in str(e) else str(e), line, path) from None
            if key is not None:
                self.costs[key] = cost
        rf, jump = flow.rf, flow.jump
        if cost.window is not None:
            rf = tuple(f + (w.k_eff - 1) * j for f, w, j in zip(rf, cost.window, jump))
            jump = tuple(j * w.s for j, w in zip(jump, cost.window))
        # A training copy (dropout) gets its own tensor: in training the next layer keeps that one.
        tensor = flow.tensor if cost.alias and not cost.train_copy else self.new_tensor(elems(cost.out))
        out_flow = Flow(tensor, cost.out, rf, jump)
        self.add_row(name, path, r.name, line, cost, (flow.tensor,), out_flow, scope, merged)
        return out_flow

    def call(self, block_name: str, block: dict, name: str, args: dict, line: int, flow: Flow, scope: Scope) -> Flow:
        path = self.join(scope, name)
        declared = block.get("args") or {}
        bound = dict(scope.defaults.get(block_name, {}))
        if "__positional__" in args:
            positional = args.pop("__positional__")
            if len(positional) > len(declared):
                raise self.fail(
                    f"block {block_name} takes {len(declared)} arguments ({', '.join(declared)}), got {len(positional)}",
                    line, path)
            bound.update(zip(declared, positional))
        unknown = [a for a in args if a not in declared]
        if unknown:
            raise self.fail(f"block {block_name}: unknown argument {unknown[0]!r}; its arguments: {', '.join(declared) or '(none)'}", line, path)
        bound.update(args)
        for arg, default in declared.items():
            if arg not in bound:
                if default is None:
                    missing = [a for a, d in declared.items() if d is None and a not in bound]
                    raise self.fail(f"block {block_name} needs {', '.join(missing)} (arguments: {', '.join(declared)})", line, path)
                bound[arg] = default
        defaults = dict(scope.defaults)
        for t, d in _canonical(block.get("defaults") or {}).items():
            defaults[t] = {**defaults.get(t, {}), **d}
        self.scope_types[path] = block_name
        inner = scope.child(name, block_name, env=bound, defaults=defaults)
        return self.walk(block["body"], flow, inner)

    def merge(self, kind: str, label: str | None, branches: dict, line: int, flow: Flow, scope: Scope) -> Flow:
        name = label or scope.auto_name(kind, self.paths)
        path = self.join(scope, name)
        if len(branches) < 2:
            raise self.fail(f"{kind} needs at least two named branches", line, path)
        # A named merge owns its branches (path/name/branch); an unnamed one puts them in its scope.
        owner = scope.child(name, kind) if label else scope
        if label:
            self.scope_types[owner.path] = kind
        outs: dict[str, Flow] = {}
        for branch, body in branches.items():
            branch_scope = owner.child(str(branch), "branch", counters={})
            self.scope_types[branch_scope.path] = "branch"
            if body is None or body == []:
                outs[str(branch)] = flow  # an empty branch is the identity
            else:
                outs[str(branch)] = self.walk(body, flow, branch_scope)
        try:
            cost = rules.apply(rules.RULES[kind], {b: f.shape for b, f in outs.items()}, scope.defaults.get(kind, {}))
        except RuleError as e:
            raise self.fail(str(e), line, path) from None
        rf = tuple(max(f.rf[i] for f in outs.values()) for i in range(2))
        jump = tuple(max(f.jump[i] for f in outs.values()) for i in range(2))
        first_branch, first = next(iter(outs.items()))
        if cost.alias and first.tensor == flow.tensor:
            raise self.fail(f"an in-place {kind} writes into its first branch, and {first_branch!r} is the identity: "
                            "it would overwrite the input the other branches read; list a branch with layers first",
                            line, path)
        tensor = first.tensor if cost.alias else self.new_tensor(elems(cost.out))
        out_flow = Flow(tensor, cost.out, rf, jump)
        self.add_row(name, path, kind, line, cost, tuple(f.tensor for f in outs.values()), out_flow, scope,
                     dict(scope.defaults.get(kind, {})))
        return out_flow

    def side(self, kind: str, label: str | None, body, line: int, flow: Flow, scope: Scope) -> Flow:
        name = label or scope.auto_name(kind, self.paths)
        if not isinstance(body, list) or not body:
            raise self.fail(f"{kind} takes a non-empty list of layers: `{kind} NAME: [...]`", line, self.join(scope, name))
        inner = scope.child(name, kind, counters={}, aux=scope.aux or kind == "aux")
        self.scope_types[inner.path] = kind
        out = self.walk(body, flow, inner)
        return flow if kind == "aux" else out  # an aux branch is a side exit: the main flow goes on

    # ------------------------------------------------------------ $argument substitution

    def subst(self, value, scope: Scope, line: int):
        # A value without any $ is returned itself: no copy, which would only equal it.
        if isinstance(value, str):
            if "$" in value:
                return _evaluate(value, scope.env, lambda msg: self.fail(msg, line, scope.path or None))
            return value
        if not _has_dollar(value):
            return value
        if isinstance(value, dict):
            out = Map((k, self.subst(v, scope, line)) for k, v in value.items())
            out.line = line_of(value, line)
            out.key_lines = getattr(value, "key_lines", {})
            return out
        if isinstance(value, list):
            out = Seq(self.subst(v, scope, line) for v in value)
            out.line = line_of(value, line)
            out.item_lines = getattr(value, "item_lines", [line] * len(value))
            return out
        return value


_ATOMS = frozenset((str, int, float, bool, type(None)))


class _Unfreezable(Exception):
    pass


def _frozen(value):
    """A hashable image of an argument value that keeps exact types (1, 1.0 and True are equal
    as dict keys but not as arguments, so they must not share a cached cost)."""
    t = type(value)
    if t is float:
        return t, repr(value)  # 0.0 == -0.0, but they print differently in a rule's arithmetic
    if t in _ATOMS:
        return t, value
    if isinstance(value, (list, tuple)):
        return t, tuple([_frozen(v) for v in value])
    if isinstance(value, dict):
        return t, tuple([(_frozen(k), _frozen(v)) for k, v in value.items()])
    raise _Unfreezable


def _cost_key(rule_name: str, shape, args: dict) -> tuple:
    """(rule, shape, then key, class, value for each argument): _frozen's image, flattened for
    the common case of a shape of ints and arguments that are words and numbers."""
    key = [rule_name, shape if all(d.__class__ is int for d in shape) else _frozen(shape)]
    for k, v in args.items():
        t = v.__class__
        key += (k, t, v if t in _ATOMS and t is not float else _frozen(v))
    return tuple(key)


def _has_dollar(value) -> bool:
    if isinstance(value, str):
        return "$" in value
    if isinstance(value, dict):
        return any(_has_dollar(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_dollar(v) for v in value)
    return False


def _canonical(defaults: dict) -> dict:
    """Defaults keyed by canonical rule name, so `bn:` defaults reach `batchnorm` layers."""
    out: dict = {}
    for t, d in defaults.items():
        r = rules.lookup(t)
        key = r.name if r else t
        out[key] = {**out.get(key, {}), **d}
    return out


_VAR = re.compile(r"\$([A-Za-z_]\w*)")
_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.FloorDiv: operator.floordiv,
        ast.Div: operator.truediv, ast.Mod: operator.mod, ast.Pow: operator.pow}


_WHOLE: dict = {}  # text -> the argument name when the text is just `$name`, else ""


def _evaluate(text: str, env: dict, fail):
    """'$c' -> the argument's value (any type); '$mid * 4' -> integer arithmetic on arguments."""
    whole = _WHOLE.get(text)
    if whole is None:
        match = _VAR.fullmatch(text.strip())
        whole = match.group(1) if match else ""
        if len(_WHOLE) < 4096:
            _WHOLE[text] = whole
    if whole and whole in env:  # the common `$c`: what the checks below would return
        return env[whole]
    names = _VAR.findall(text)
    for n in names:
        if n not in env:
            known = ", ".join(f"${a}" for a in env) or "none here (only block bodies take $arguments)"
            raise fail(f"unknown argument ${n}; arguments: {known}")
    whole = _VAR.fullmatch(text.strip())
    if whole:
        return env[whole.group(1)]
    # Arguments become `_arg_NAME`, so a bare word (a forgotten `$`) is not a name at all.
    expr = _VAR.sub(lambda m: "_arg_" + m.group(1), text)
    try:
        tree = ast.parse(expr, mode="eval")
    except SyntaxError:
        raise fail(f"cannot read expression {text!r}") from None

    def ev(node):
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
            return node.value
        if isinstance(node, ast.Name):
            if not node.id.startswith("_arg_"):
                raise fail(f"{node.id!r} in {text!r} is not an argument: write ${node.id}")
            name = node.id[len("_arg_"):]
            v = env[name]
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise fail(f"${name} is {v!r}, not a number, in {text!r}")
            return v
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            v = ev(node.operand)
            return -v if isinstance(node.op, ast.USub) else v
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            left, right = ev(node.left), ev(node.right)
            if isinstance(node.op, ast.Pow) and abs(right) > 64:
                raise fail(f"exponent {right} is too large in {text!r}")
            try:
                v = _OPS[type(node.op)](left, right)
            except ZeroDivisionError:
                raise fail(f"division by zero in {text!r}") from None
            return int(v) if isinstance(v, float) and v.is_integer() else v
        raise fail(f"only + - * / // % ** on numbers and $arguments are allowed, in {text!r}")

    return ev(tree)
