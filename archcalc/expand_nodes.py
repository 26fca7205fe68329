"""The graph under construction: its nodes in execution order, each costed by its rule (a layer
with the same rule, input and arguments costed once), the bounds every node is checked against, the
names and paths taken, and the tensors a `from:` reference can name, resolved from the nearest
scope outward. Every error names the file, the line and the layer path."""
from __future__ import annotations

from dataclasses import replace

from . import rules
from .expand_scope import _ATOMS, Flow, Scope, bind, subst
from .graph import Node
from .limits import LIMITS, check_nodes_message
from .rules import RuleError
from .shape import Shape, fmt_shape
from .spec import Spec, SpecError


class _Unresolved(Exception):
    """A `from:` reference names nothing before it (raised to find out whether it names something later)."""

    def __init__(self, ref: str, scope_path: str, line: int, path: str):
        super().__init__(ref)
        self.ref, self.scope_path, self.line, self.path = ref, scope_path, line, path


class _Nodes:
    """The nodes, paths, scope outputs and references of one expansion, and the cost cache."""

    def __init__(self, spec: Spec, strict: bool, lenient: bool, budget: list | None):
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

    def merged(self, r: rules.Rule, name: str, path: str, outs: dict, line: int, scope: Scope) -> Flow:
        """The node of a merge of the branches ``outs`` (branch name -> Flow)."""
        kind = r.name
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


def _candidates(ref: str, scope_path: str):
    """Where a reference may point, nearest scope first: `a/b` + `x` tries a/b/x, a/x, x."""
    parts = scope_path.split("/") if scope_path else []
    for n in range(len(parts), -1, -1):
        yield "/".join(parts[:n] + [ref])


def _without_floor_warnings(cost):
    kept = tuple(w for w in cost.warnings if "floored" not in w)
    return replace(cost, warnings=kept) if kept != cost.warnings else cost


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
