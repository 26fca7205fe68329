"""Spec -> Graph: expand a spec's layer list into resolved nodes.

Expansion is where a spec's structure is understood and validated: sequences, branches merged by a
merge rule, side scopes (aux, group), repetition (times/first), conditions (when), parametrised
block calls (the spec's own blocks and the shared library's), `$expressions`, defaults, names and
`from:` references. Shapes are propagated here too, since `$in` and conditions may depend on them;
the rules are asked what each layer is at its input. What a framework keeps or allocates is not
decided here (see profiles/).

Every error names the file, the line and the layer path. Expansion is linear in the number of nodes.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from . import rules
from .expr import evaluate, has_dollar
from .gcpause import gc_paused
from .graph import Graph, Node
from .limits import LIMITS, check_nodes_message
from .rules import RuleError
from .shape import Shape, fmt_shape
from .spec import Map, Seq, Spec, SpecError, check_block, library_blocks, line_of

SCOPES = ("aux", "group")
ITEM_KEYS = ("times", "first", "when", "from")  # keys of a layer item that are not rule arguments
_ITEM_KEYS = frozenset(ITEM_KEYS)


@dataclass(frozen=True, slots=True)
class Flow:
    """The tensor flowing between layers: the node that produced it and its shape."""

    node: int
    shape: Shape


@dataclass
class Scope:
    path: str
    defaults: dict
    env: dict
    file: str
    floor_ok: bool = False  # `rounding: floor`: floored sizes are intended, so they do not warn
    aux: bool = False
    ancestors: tuple = ()  # ((path, kind), ...) of enclosing blocks, branches, groups
    counters: dict = field(default_factory=dict)
    depth: int = 0  # block calls deep

    def child(self, name: str, kind: str, **changes) -> "Scope":
        path = f"{self.path}/{name}" if self.path else name
        base = dict(path=path, defaults=self.defaults, env=self.env, file=self.file, floor_ok=self.floor_ok,
                    aux=self.aux, ancestors=self.ancestors + ((path, kind),), depth=self.depth)
        base.update(changes)
        return Scope(**base)

    def join(self, name: str) -> str:
        return f"{self.path}/{name}" if self.path else name

    def auto_name(self, type_name: str, taken: set, floors: dict | None = None) -> str:
        """The next `typeN` of this scope; numbers a label already took are skipped. ``floors``
        keeps, per scope path and type, a number up to which every name is taken, so a scope
        entered again (a block label used twice) starts there, not at 1: 2,000 calls of
        `widen w` scanned 2 million names."""
        n = self.counters.get(type_name, 0)
        fresh = n == 0 and floors is not None
        if fresh:
            n = floors.get((self.path, type_name), 0)
        while True:
            n += 1
            name = f"{type_name}{n}"
            if self.join(name) not in taken:
                break
        self.counters[type_name] = n
        if fresh:
            floors[(self.path, type_name)] = n - 1
        return name


class Layers(Seq):
    """A layer list passed as a block argument, with the arguments of the scope that wrote it."""

    def __init__(self, items, env: dict):
        super().__init__(items)
        self.env = env
        self.line = line_of(items)
        self.item_lines = getattr(items, "item_lines", [self.line] * len(items))


class _Unresolved(Exception):
    """A `from:` reference names nothing before it (raised to find out whether it names something later)."""

    def __init__(self, ref: str, scope_path: str, line: int, path: str):
        super().__init__(ref)
        self.ref, self.scope_path, self.line, self.path = ref, scope_path, line, path


# Bounds on the work a spec can ask for are archcalc.limits.LIMITS (docs/limits.md): block_depth,
# graph_nodes, arg_max, tensor_elements and yaml_depth (for scopes nested in one another).


def expand(spec: Spec, *, input_shape: Shape | None = None, strict: bool = False, library: dict | None = None,
           budget: list | None = None) -> Graph:
    """The spec's resolved graph at its input (or ``input_shape``). Pure: the spec is not modified.
    ``budget`` is ``[nodes left]`` of a longer job (`archcalc check FILE`: limit check_nodes),
    spent node by node, an expansion that fails included."""
    shape = tuple(input_shape) if input_shape is not None else spec.input
    with gc_paused():
        try:
            return _Expander(spec, strict, library, budget=budget).run(shape)
        except _Unresolved as e:
            lenient = _Expander(spec, strict, library, lenient=True)
            later = lenient.find_later(shape, e)
            if later:
                message = (f"from: {e.ref!r} is defined later, on line {later}: a reference names a tensor computed "
                           "before it")
            else:
                import difflib  # only for an error message: not imported on the common path

                close = difflib.get_close_matches(e.ref, sorted(lenient.later), n=1)
                message = (f"from: {e.ref!r} names no layer, block or branch"
                           + (f"; did you mean {close[0]!r}?" if close else ""))
            raise SpecError(message, file=spec.file, line=e.line or None, path=e.path or None) from None


class _Blocks:
    """The blocks a spec can call, its own and the shared library's, and the checks of their
    definitions and of `defaults:` against them."""

    def __init__(self, spec: Spec, library: dict | None):
        self.file = spec.file
        self.own = {k: (v, spec.file) for k, v in spec.blocks.items()}
        self._library = library
        self.check(spec)
        self.check_defaults(spec.defaults, line_of(spec.defaults, spec.lines.get("defaults", 0)))

    def _fail(self, message: str, line: int) -> SpecError:
        return SpecError(message, file=self.file, line=line or None)

    def check(self, spec: Spec) -> None:
        for name, block in spec.blocks.items():
            line = spec.blocks.key_lines.get(name, 0) if isinstance(spec.blocks, Map) else 0
            check_block(name, block, spec.file, line)
            key_lines = getattr(block, "key_lines", {})
            self.check_defaults(block.get("defaults") or {}, key_lines.get("defaults", line))

    def check_defaults(self, defaults: dict, line: int) -> None:
        if not isinstance(defaults, dict):
            raise self._fail("defaults must be a mapping of layer type: {arguments}", line)
        for type_name, args in defaults.items():
            key_line = getattr(defaults, "key_lines", {}).get(type_name, line)
            if not isinstance(args, dict):
                raise self._fail(f"defaults for {type_name!r} must be a mapping of arguments", key_line)
            r = rules.lookup(type_name)
            if r is None:
                entry = self.get(type_name)
                if entry is not None:
                    declared = (entry[0].get("args") or {}) if isinstance(entry[0], dict) else {}
                    unknown = sorted(set(args) - set(declared))
                    if unknown:
                        raise self._fail(f"defaults for block {type_name}: unknown argument {unknown[0]!r}; "
                                        f"its arguments: {', '.join(declared) or '(none)'}", key_line)
                    continue
                raise self._fail(f"defaults for unknown layer type {type_name!r}{_did_you_mean(type_name, self.known())}",
                                key_line)
            unknown = sorted(set(args) - set(r.known))
            if unknown:
                raise self._fail(f"defaults for {type_name}: unknown argument {unknown[0]!r}; known: {', '.join(r.known)}", key_line)

    def get(self, name: str):
        """(definition, file) of a block: the spec's own first, then the shared library's."""
        entry = self.own.get(name)
        return entry if entry is not None else self.library().get(name)

    def library(self) -> dict:
        if self._library is None:  # read only when a spec uses a type that is not its own
            self._library = library_blocks()
        return self._library

    def known(self) -> list[str]:
        types = [t for t in rules.known_types() if t != "input"]
        return sorted(set(types) | set(self.own) | set(self.library()) | set(SCOPES) | {"from"})

    def calls(self, ancestors: tuple) -> list[str]:
        """The blocks being called, outermost first."""
        return [kind for _, kind in ancestors if kind in self.own or kind in (self._library or {})]


class _Expander:
    def __init__(self, spec: Spec, strict: bool, library: dict | None, lenient: bool = False, budget: list | None = None):
        self.spec = spec
        self.strict = strict
        self.lenient = lenient
        self.budget = budget
        self.nodes: list[Node] = []
        self.paths: set[str] = set()
        self.floors: dict = {}  # (scope path, type) -> every auto name up to this number is taken
        self.scope_types: dict[str, str] = {}
        self.outputs: dict[str, int] = {}  # block, branch, scope path -> output node
        self.refs: dict[str, Flow] = {}  # every path a `from:` can name -> its tensor
        self.later: dict[str, int] = {}  # lenient mode: paths seen, with their lines
        # Rules are pure functions of (input shape, arguments) returning immutable Costs, so a layer
        # repeated with the same input and arguments (a block called `times: 23`) is costed once.
        self.costs: dict = {}
        self.blocks = _Blocks(spec, library)
        self.root = Scope(path="", defaults=_canonical(spec.defaults), env=dict(spec.args), file=spec.file,
                          floor_ok=spec.rounding == "floor")

    def run(self, shape: Shape) -> Graph:
        flow = self.start(shape)
        self.root.env.update(_input_vars(shape))
        self.walk(self.spec.layers, flow, self.root)
        spec = self.spec
        return Graph(name=spec.name, source=spec.source, notes=spec.notes, file=spec.file, input=shape,
                     nodes=tuple(self.nodes), scope_types=self.scope_types, outputs=self.outputs,
                     input_requires_grad=spec.input_requires_grad)

    def find_later(self, shape: Shape, missing: _Unresolved) -> int | None:
        """The line of what ``missing`` names, when it names something after the reference."""
        try:
            self.run(shape)
        except (SpecError, _Unresolved):
            pass
        for candidate in _candidates(missing.ref, missing.scope_path):
            if candidate in self.later:
                return self.later[candidate]
        return None

    # ------------------------------------------------------------ errors and validation

    def fail(self, message: str, line: int, path: str | None = None, file: str | None = None) -> SpecError:
        return SpecError(message, file=file or self.spec.file, line=line or None, path=path or None)

    def subst(self, value, scope: Scope, line: int):
        return subst(value, scope.env, lambda msg: self.fail(msg, line, scope.path or None, scope.file))

    def bind(self, value, scope: Scope, line: int):
        return bind(value, scope.env, lambda msg: self.fail(msg, line, scope.path or None, scope.file))

    # ------------------------------------------------------------ nodes

    def start(self, shape: Shape) -> Flow:
        line = self.spec.lines.get("input", 0)
        try:
            cost = rules.apply(rules.RULES["input"], shape, {})
        except RuleError as e:
            raise self.fail(str(e), line, "input") from None
        self.check_elements(cost, line, "input", self.spec.file)
        return self.add_node("input", "input", "input", {}, (), cost, line, Scope("", {}, {}, self.spec.file))

    def check_elements(self, cost, line: int, path: str, file: str) -> None:
        # Checked once per distinct cost (costs are cached): every later sum over the graph is then bounded.
        n = 1
        for d in cost.out:
            n *= d
        if n > LIMITS["tensor_elements"]:
            raise self.fail(f"output {fmt_shape(cost.out)} has {n:,} elements, more than {LIMITS['tensor_elements']:,} "
                            "(limit tensor_elements)", line, path, file)

    def check_args(self, r: rules.Rule, args: dict, line: int, path: str, file: str) -> None:
        """Arguments a rule cannot be trusted with: a list where it hashes a word (`act: [relu]`), an
        integer so large that the rule's own loops or arithmetic would run away (adaptive bins)."""
        for k, v in args.items():
            if isinstance(v, (list, dict)) and isinstance(r.defaults.get(k), str):
                raise self.fail(f"{k} must be a word, got {v!r}", line, path, file)
            for n in (v if isinstance(v, list) else (v,)):
                if n.__class__ is int and abs(n) > LIMITS["arg_max"]:
                    raise self.fail(f"{k}: {n:,} is too large (limit arg_max = {LIMITS['arg_max']:,})", line, path, file)

    def add_node(self, name: str, path: str, type_name: str, args: dict, inputs: tuple, cost, line: int,
                 scope: Scope) -> Flow:
        if len(self.nodes) >= LIMITS["graph_nodes"]:
            raise self.fail(f"the graph has more than {LIMITS['graph_nodes']:,} nodes (limit graph_nodes)", line, path,
                            scope.file)
        if self.budget is not None:
            self.budget[0] -= 1
            if self.budget[0] < 0:
                raise self.fail(check_nodes_message(), line, path, scope.file)
        if path in self.paths:
            raise self.fail(f"duplicate layer path {path!r}; give the layer (or its merge) a distinct name", line, path,
                            scope.file)
        self.paths.add(path)
        if cost.warnings and scope.floor_ok:
            cost = _without_floor_warnings(cost)
        if cost.warnings and self.strict:
            raise self.fail(f"{cost.warnings[0]} (--strict)", line, path, scope.file)
        node = Node(id=len(self.nodes), name=name, path=path, type=type_name, args=args, inputs=inputs,
                    file=scope.file, line=line, aux=scope.aux, ancestors=scope.ancestors, cost=cost)
        self.nodes.append(node)
        flow = Flow(node.id, cost.out)
        self.name_output(path, flow, line)
        return flow

    def name_output(self, path: str, flow: Flow, line: int) -> None:
        self.refs[path] = flow
        if self.lenient:
            self.later.setdefault(path, line)

    def resolve(self, ref, scope: Scope, line: int, path: str) -> Flow:
        if not isinstance(ref, str) or not ref:
            raise self.fail(f"from: must name an earlier layer, block or branch by its path, got {ref!r}", line, path,
                            scope.file)
        for candidate in _candidates(ref, scope.path):
            flow = self.refs.get(candidate)
            if flow is not None:
                return flow
        if self.lenient:
            return None
        raise _Unresolved(ref, scope.path, line, path)

    # ------------------------------------------------------------ the walk

    def walk(self, items, flow: Flow, scope: Scope) -> Flow:
        if not isinstance(items, list):
            raise self.fail("expected a list of layers", line_of(items), scope.path, scope.file)
        if len(scope.ancestors) > LIMITS["yaml_depth"]:  # the walk recurses once per scope: bound the stack
            raise self.fail(f"groups, branches and block calls nested deeper than {LIMITS['yaml_depth']} levels "
                            "(limit yaml_depth)", line_of(items), scope.path, scope.file)
        lines = getattr(items, "item_lines", [line_of(items)] * len(items))
        for raw, line in zip(items, lines):
            flow = self.item(raw, line_of(raw, line), flow, scope)
        return flow

    def item(self, raw, line: int, flow: Flow, scope: Scope) -> Flow:
        if raw.__class__ is str and raw.startswith("$"):
            # A block argument that is a layer list (or one layer type) used as an item.
            value = self.subst(raw, scope, line)
            if isinstance(value, Layers):  # evaluated where it was written, with $in of where it runs
                return self.walk(value, flow, replace(scope, env={**value.env, **_input_vars(flow.shape)}))
            if isinstance(value, list):
                return self.walk(value, flow, scope)
            raw = value
        type_name, label, value = _split(raw, lambda msg: self.fail(msg, line, scope.path or None, scope.file),
                                         lambda v: self.subst(v, scope, line))
        where = scope.join(label or type_name)
        if type_name == "from":
            target = self.resolve(self.subst(value, scope, line), scope, line, scope.path)
            return flow if target is None else target
        if type_name in SCOPES:
            return self.side(type_name, label, value, line, flow, scope)
        r = rules.lookup(type_name)
        if isinstance(value, dict) and not (r is not None and r.merge):
            value = self._decide(value, scope, line, where)
            if value is None:
                return flow  # `when:` false or `times: 0`, decided before the type must exist (`- $act: {when: ...}`)
        entry = self.blocks.get(type_name) if r is None else None  # a block cannot be named like a rule
        if r is not None and r.name == "input":
            raise self.fail("the input is set by `input: [C, H, W]` at the top, not as a layer", line, where, scope.file)
        if entry is None and r is None:
            raise self.fail(f"unknown layer type {type_name!r}{_did_you_mean(type_name, self.blocks.known())}", line, where,
                            scope.file)
        if r is not None and r.merge:
            return self.merge(r, label, value, line, flow, scope)
        raw = value
        # `$i`, the repetition's index (0 for the first), is known only per repetition: such an item's
        # arguments are evaluated again for each one.
        indexed = isinstance(raw, dict) and _uses_index(raw)
        if indexed:
            scope = replace(scope, env={**scope.env, "i": 0})
        value = self.subst(value, scope, line) if entry is None else self.bind(value, scope, line)
        if entry is not None and isinstance(value, list):
            args, times, first, when, source = {"__positional__": value}, 1, {}, True, None
        else:
            if r is not None and isinstance(value, list):
                raise self.fail(f"arguments of {type_name} must be a mapping, e.g. {type_name}: {{k: 3}}", line, where,
                                scope.file)
            args, times, first, when, source = _item_keys(value, type_name, lambda msg: self.fail(msg, line, where, scope.file))
        if not when or times == 0:
            return flow
        if times > LIMITS["graph_nodes"] - len(self.nodes):  # refused before the loop, not after a million nodes
            raise self.fail(f"times: {times:,} would make more than {LIMITS['graph_nodes']:,} nodes (limit graph_nodes)",
                            line, where, scope.file)
        if source is not None:
            target = self.resolve(source, scope, line, where)
            flow = flow if target is None else target
        names = self.instance_names(type_name, label, times, scope)
        for i, name in enumerate(names):
            if indexed and i:
                again = dict(raw)
                for key in ("times", "first", "when", "from"):
                    again.pop(key, None)
                at = replace(scope, env={**scope.env, "i": i})
                args = self.subst(again, at, line) if entry is None else self.bind(again, at, line)
            inst_args = {**args, **first} if i == 0 else dict(args)
            if entry is not None:
                flow = self.call(type_name, entry, name, inst_args, line, flow, scope)
            else:
                flow = self.layer(r, name, inst_args, line, flow, scope)
        return flow

    def _decide(self, value: dict, scope: Scope, line: int, where: str) -> dict | None:
        """None if the item is left out (`when:` false or `times: 0`), else the item with its `when:`
        and `times:` evaluated, so that evaluating its arguments does not evaluate them again."""
        if "when" not in value and "times" not in value:  # most items: nothing to decide
            return value
        when = self.subst(value.get("when", True), scope, line)
        times = self.subst(value.get("times", 1), scope, line)
        if not isinstance(when, bool):
            raise self.fail(f"when must be a condition that is true or false, got {when!r}", line, where, scope.file)
        if not when or times == 0:
            return None
        decided = Map(value)
        decided.line, decided.key_lines = line_of(value), getattr(value, "key_lines", {})
        for key, result in (("when", when), ("times", times)):
            if key in value:
                decided[key] = result
        return decided

    def instance_names(self, type_name: str, label: str | None, times: int, scope: Scope) -> list[str]:
        if label is None:
            return [scope.auto_name(type_name, self.paths, self.floors) for _ in range(times)]
        if times == 1:
            return [label]
        return [f"{label}_{i}" for i in range(1, times + 1)]

    def layer(self, r: rules.Rule, name: str, args: dict, line: int, flow: Flow, scope: Scope) -> Flow:
        path = scope.join(name)
        merged = {**scope.defaults.get(r.name, {}), **args}
        try:
            key = _cost_key(r.name, flow.shape, merged)
        except _Unfreezable:
            key = None
        cost = self.costs.get(key) if key is not None else None
        if cost is None:
            self.check_args(r, merged, line, path, scope.file)
            try:
                cost = rules.apply(r, flow.shape, merged)
            except RuleError as e:
                raise self.fail(f"{e} (input {fmt_shape(flow.shape)})" if "input" not in str(e) else str(e), line, path,
                                scope.file) from None
            self.check_elements(cost, line, path, scope.file)
            if key is not None:
                self.costs[key] = cost
        return self.add_node(name, path, r.name, merged, (flow.node,), cost, line, scope)

    def call(self, block_name: str, entry: tuple, name: str, args: dict, line: int, flow: Flow, scope: Scope) -> Flow:
        block, file = entry
        path = scope.join(name)
        calls = self.blocks.calls(scope.ancestors)
        if block_name in calls:
            chain = " -> ".join(calls[calls.index(block_name):] + [block_name])
            raise self.fail(f"block {block_name} calls itself ({chain})", line, path, scope.file)
        if scope.depth >= LIMITS["block_depth"]:
            raise self.fail(f"blocks nested more than {LIMITS['block_depth']} calls deep (limit block_depth)", line, path,
                            scope.file)
        declared = block.get("args") or {}
        bound = dict(scope.defaults.get(block_name, {}))
        if "__positional__" in args:
            positional = args.pop("__positional__")
            if len(positional) > len(declared):
                raise self.fail(
                    f"block {block_name} takes {len(declared)} arguments ({', '.join(declared)}), got {len(positional)}",
                    line, path, scope.file)
            bound.update(zip(declared, positional))
        unknown = [a for a in args if a not in declared]
        if unknown:
            raise self.fail(f"block {block_name}: unknown argument {unknown[0]!r}; its arguments: "
                            f"{', '.join(declared) or '(none)'}", line, path, scope.file)
        bound.update(args)
        for arg, default in declared.items():
            if arg not in bound:
                if default is None:
                    missing = [a for a, d in declared.items() if d is None and a not in bound]
                    raise self.fail(f"block {block_name} needs {', '.join(missing)} (arguments: {', '.join(declared)})",
                                    line, path, scope.file)
                bound[arg] = default
        defaults = dict(scope.defaults)
        for t, d in _canonical(block.get("defaults") or {}).items():
            defaults[t] = {**defaults.get(t, {}), **d}
        self.scope_types[path] = block_name
        env = {**bound, **_input_vars(flow.shape)}
        rounding = block.get("rounding")
        inner = scope.child(name, block_name, env=env, defaults=defaults, file=file, depth=scope.depth + 1,
                            floor_ok=scope.floor_ok if rounding is None else rounding == "floor", counters={})
        out = self.walk(block["body"], flow, inner)
        self.outputs[path] = out.node
        self.name_output(path, out, line)
        return out

    def merge(self, r: rules.Rule, label: str | None, branches, line: int, flow: Flow, scope: Scope) -> Flow:
        kind = r.name
        where = scope.join(label or kind)
        if not isinstance(branches, dict):
            raise self.fail(f"{kind} takes named branches, each a list of layers ([] = identity)", line, where, scope.file)
        branches = dict(branches)
        when = self.subst(branches.pop("when", True), scope, line)
        for branch, body in branches.items():
            if isinstance(body, str) and body.startswith("$"):  # a block argument that is a layer list
                branches[branch] = self.subst(body, scope, line)
        if not isinstance(when, bool):
            raise self.fail(f"when must be a condition that is true or false, got {when!r}", line, where, scope.file)
        if not all(isinstance(v, list) or v is None for v in branches.values()):
            raise self.fail(f"{kind} takes named branches, each a list of layers ([] = identity)", line, where, scope.file)
        if not when and branches:  # left out: its first branch runs alone, under the same path, taking no number
            owner = scope.child(label, kind) if label else scope
            branch, body = next(iter(branches.items()))
            return self.branch(owner, str(branch), body, flow, line)
        name = label or scope.auto_name(kind, self.paths, self.floors)
        path = scope.join(name)
        if len(branches) < 2:
            raise self.fail(f"{kind} needs at least two named branches", line, path, scope.file)
        # A named merge owns its branches (path/name/branch); an unnamed one puts them in its scope.
        owner = scope.child(name, kind) if label else scope
        if label:
            self.scope_types[owner.path] = kind
        outs = {str(branch): self.branch(owner, str(branch), body, flow, line) for branch, body in branches.items()}
        args = dict(scope.defaults.get(kind, {}))
        try:
            key = _cost_key(kind, tuple(f.shape for f in outs.values()), args)
        except _Unfreezable:
            key = None
        cost = self.costs.get(key) if key is not None else None
        if cost is None:  # the cost never names the branches, so branches of equal shapes share it
            try:
                cost = rules.apply(r, {b: f.shape for b, f in outs.items()}, args)
            except RuleError as e:
                raise self.fail(str(e), line, path, scope.file) from None
            self.check_elements(cost, line, path, scope.file)
            if key is not None:
                self.costs[key] = cost
        return self.add_node(name, path, kind, args, tuple(f.node for f in outs.values()), cost, line, scope)

    def branch(self, owner: Scope, name: str, body, flow: Flow, line: int) -> Flow:
        scope = owner.child(name, "branch", counters={})
        self.scope_types[scope.path] = "branch"
        out = self.walk(body, flow, scope) if body else flow  # [] is the identity
        self.outputs[scope.path] = out.node
        self.name_output(scope.path, out, line)
        return out

    def side(self, kind: str, label: str | None, body, line: int, flow: Flow, scope: Scope) -> Flow:
        name = label or scope.auto_name(kind, self.paths, self.floors)
        if not isinstance(body, list) or not body:
            raise self.fail(f"{kind} takes a non-empty list of layers: `{kind} NAME: [...]`", line, scope.join(name),
                            scope.file)
        inner = scope.child(name, kind, counters={}, aux=scope.aux or kind == "aux")
        self.scope_types[inner.path] = kind
        out = self.walk(body, flow, inner)
        self.outputs[inner.path] = out.node
        self.name_output(inner.path, out, line)
        return flow if kind == "aux" else out  # an aux branch is a side exit: the main flow goes on

def subst(value, env: dict, fail):
    """``value`` with every `$expression` evaluated in ``env``; a value without any `$` is returned
    itself (no copy, which would only equal it)."""
    if isinstance(value, str):
        return evaluate(value, env, fail) if "$" in value else value
    if value.__class__ in _ATOMS:  # a number, true/false or ~: most values of a mapping substituted below
        return value
    if value.__class__ is Map:
        for v in value.values():
            if v.__class__ in _NESTED or (v.__class__ is str and "$" in v):
                break
        else:
            return value  # the common case, a mapping of plain words and numbers
    if not has_dollar(value):
        return value
    if isinstance(value, dict):
        out = Map((k, subst(v, env, fail)) for k, v in value.items())
        out.line, out.key_lines = line_of(value), getattr(value, "key_lines", {})
        return out
    if isinstance(value, list):
        out = Seq(subst(v, env, fail) for v in value)
        out.line, out.item_lines = line_of(value), getattr(value, "item_lines", [0] * len(value))
        return out
    return value


def bind(value, env: dict, fail):
    """A block call's arguments, evaluated in the caller's ``env``; a layer list is kept as written,
    with the caller's arguments, and evaluated where the block splices it in (so its `$in` is the
    input at that point, not the caller's)."""
    def one(v):
        if isinstance(v, list) and not isinstance(v, Layers) and any(isinstance(x, dict) for x in v):
            return Layers(v, env)
        return subst(v, env, fail)

    if isinstance(value, dict):
        out = Map((k, bind(v, env, fail) if k == "first" else one(v)) for k, v in value.items())
        out.line, out.key_lines = line_of(value), getattr(value, "key_lines", {})
        return out
    if isinstance(value, list):
        out = Seq(one(v) for v in value)
        out.line, out.item_lines = line_of(value), getattr(value, "item_lines", [0] * len(value))
        return out
    return subst(value, env, fail)


def _split(raw, fail, subst):
    """(type, label, value) of a layer item: `type`, `type: {args}` or `type name: {args}`."""
    if isinstance(raw, str):
        key, value = raw, None
    elif isinstance(raw, dict) and len(raw) == 1:
        key, value = next(iter(raw.items()))
    else:
        raise fail("a layer is written `type`, `type: {args}` or `type name: {args}`")
    if not isinstance(key, str):
        raise fail(f"a layer type is a word, got {key!r}")
    parts = key.split()
    if not parts or len(parts) > 2:
        raise fail(f"cannot read layer {key!r}: write `type` or `type name`")
    type_name = parts[0]
    if type_name.startswith("$"):  # a block argument naming a layer type or block
        type_name = subst(type_name)
        if not isinstance(type_name, str) or not type_name:
            raise fail(f"{parts[0]} must name a layer type or block, got {type_name!r}")
    label = parts[1] if len(parts) == 2 else None
    if label is not None:
        if "/" in label:
            raise fail(f"layer name {label!r} cannot contain '/'")
        if label[0].isdigit():
            label = f"{type_name}_{label}"  # `inception 3a` -> inception_3a
    return type_name, label, value


def _item_keys(value, type_name: str, fail):
    """(arguments, times, first, when, from) of a layer or block call."""
    if value is None:
        return {}, 1, {}, True, None
    if not isinstance(value, dict):
        raise fail(f"arguments of {type_name} must be a mapping, got {value!r}")
    if _ITEM_KEYS.isdisjoint(value):  # the common case: rule arguments only, nothing to take out
        return value, 1, {}, True, None
    args = dict(value)
    times = args.pop("times", 1)
    first = args.pop("first", {}) or {}
    when = args.pop("when", True)
    source = args.pop("from", None)
    if isinstance(times, bool) or not isinstance(times, int) or times < 0:
        raise fail(f"times must be a whole number (0 leaves the layer out), got {times!r}")
    if not isinstance(first, dict):
        raise fail("first must be a mapping of arguments for the first repetition")
    if not isinstance(when, bool):
        raise fail(f"when must be a condition that is true or false, got {when!r}")
    return args, times, first, when, source


_INDEX = re.compile(r"\$i\b")


def _uses_index(value: dict) -> bool:
    """Whether an item's arguments (besides times/first/when/from) mention `$i`."""
    text = repr(value if _ITEM_KEYS.isdisjoint(value) else {k: v for k, v in value.items() if k not in _ITEM_KEYS})
    return "$i" in text and _INDEX.search(text) is not None


def _input_vars(shape: Shape) -> dict:
    """$in (channels, or the length of a vector), $in_h and $in_w of a block's input."""
    if len(shape) == 3:
        return {"in": shape[0], "in_h": shape[1], "in_w": shape[2]}
    return {"in": shape[0]}


def _candidates(ref: str, scope_path: str):
    """Where a reference may point, nearest scope first: `a/b` + `x` tries a/b/x, a/x, x."""
    parts = scope_path.split("/") if scope_path else []
    for n in range(len(parts), -1, -1):
        yield "/".join(parts[:n] + [ref])


def _did_you_mean(word: str, known: list[str]) -> str:
    import difflib  # only for an error message

    close = difflib.get_close_matches(word, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ";"
    return f"{hint} known: {', '.join(known)}"


def _without_floor_warnings(cost):
    kept = tuple(w for w in cost.warnings if "floored" not in w)
    return replace(cost, warnings=kept) if kept != cost.warnings else cost


_ATOMS = frozenset((str, int, float, bool, type(None)))
_NESTED = frozenset((Map, Seq, dict, list))


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


def _canonical(defaults: dict) -> dict:
    """Defaults keyed by canonical rule name, so `bn:` defaults reach `batchnorm` layers."""
    out: dict = {}
    for t, d in defaults.items():
        r = rules.lookup(t)
        key = r.name if r else t
        out[key] = {**out.get(key, {}), **d}
    return out
