"""The scopes an item opens, in the expansion: a block call (its arguments bound, its own defaults
and rounding, a call of itself refused), a merge (`concat`, `add`, `mul`) of named branches, with
`when:` keeping the first branch alone, and the `aux` and `group` scopes. Each records its kind and
its output node in the graph, and the path a `from:` can name it by."""
from __future__ import annotations

from . import rules
from .expand_blocks import _bind_args, _block_defaults
from .expand_nodes import _Nodes
from .expand_scope import Flow, Scope, _input_vars
from .limits import LIMITS


class _Structures(_Nodes):
    """Block calls, merges and their branches, aux and group scopes: mixed into the walk
    (expand._Expander), whose `walk` expands their bodies and whose `blocks` they call."""

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
        bound = _bind_args(block_name, block, args, scope.defaults, lambda msg: self.fail(msg, line, path, scope.file))
        defaults = _block_defaults(block, scope.defaults)
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
        return self.merged(r, name, path, outs, line, scope)

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
