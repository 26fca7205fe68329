"""Spec -> Graph: expand a spec's layer list into resolved nodes.

Expansion is where a spec's structure is understood and validated: sequences, branches merged by a
merge rule, side scopes (aux, group), repetition (times/first), conditions (when), parametrised
block calls (the spec's own blocks and the shared library's), `$expressions`, defaults, names and
`from:` references. Shapes are propagated here too, since `$in` and conditions may depend on them;
the rules are asked what each layer is at its input. What a framework keeps or allocates is not
decided here (see profiles/).

Every error names the file, the line and the layer path. Expansion is linear in the number of nodes.

This module is the walk over a spec's items (`expand`, `_Expander`); the rest of the expansion is
in modules of its own: expand_items.py (how an item is written), expand_scope.py (`Flow`, `Scope`,
`Layers`, `$expression` substitution), expand_nodes.py (the graph under construction: nodes, costs,
bounds, `from:` references), expand_structures.py (block calls, merges and branches, aux and group)
and expand_blocks.py (the blocks a spec can call, and a call's arguments).
"""
from __future__ import annotations

from dataclasses import replace

from . import rules
from .expand_blocks import _Blocks, _canonical, _did_you_mean
from .expand_items import ITEM_KEYS, SCOPES, _item_keys, _split, _uses_index
from .expand_nodes import _candidates, _Unresolved
from .expand_scope import Flow, Layers, Scope, _input_vars, bind, subst
from .expand_structures import _Structures
from .gcpause import gc_paused
from .graph import Graph
from .limits import LIMITS
from .shape import Shape
from .spec import Map, Spec, SpecError, line_of

# What other modules import from the expansion is imported from here, wherever it is defined.
__all__ = ["ITEM_KEYS", "SCOPES", "Flow", "Layers", "Scope", "bind", "expand", "subst"]

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


class _Expander(_Structures):
    """The walk over a spec's layer items: each item read, decided (`when:`, `times:`), repeated
    with its names and `$i`, and expanded as a layer, a block call, a merge or a scope."""

    def __init__(self, spec: Spec, strict: bool, library: dict | None, lenient: bool = False, budget: list | None = None):
        super().__init__(spec, strict, lenient, budget)
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
