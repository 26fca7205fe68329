"""The resolved graph: what a spec means once blocks, arguments, repetition, conditions, defaults,
names and references are expanded. Everything after loading reads this, never the YAML: the cost
pass under a framework profile, the report, `--depth` collapse, the builders and diff.

A node is one layer or merge with its output shape and the rule's framework-independent answer
(params, MACs, window ...). Nodes are in execution order and each output is one tensor, so a node's
id names its output; ``inputs`` are the ids it reads (several for a merge, any earlier node for a
``from:`` reference).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .rules import Cost
from .shape import Shape


# Not frozen: a frozen dataclass sets each field through object.__setattr__, which made building a
# 100,000-node graph measurably slower (docs/performance.md); nothing mutates a node after expansion.
@dataclass(slots=True, eq=False)
class Node:
    id: int
    name: str
    path: str
    type: str  # the rule's canonical name ("input" for the network input)
    args: dict  # resolved: defaults laid under the layer's own arguments, $expressions evaluated
    inputs: tuple[int, ...]
    file: str
    line: int
    aux: bool  # on a training-only side branch (GoogLeNet's auxiliary classifiers)
    ancestors: tuple  # ((path, kind), ...) of the enclosing blocks, branches and groups
    cost: Cost  # what the rule says the layer is at these input shapes

    @property
    def out(self) -> Shape:
        return self.cost.out


@dataclass(frozen=True)
class Graph:
    name: str
    source: str
    notes: str
    file: str
    input: Shape
    nodes: tuple[Node, ...]
    scope_types: dict = field(default_factory=dict)  # block instance, branch, group path -> kind
    outputs: dict = field(default_factory=dict)  # path of a block, branch or scope -> its output node id
    input_requires_grad: bool = False  # the spec's: its input is an activation inside a larger network

    def node(self, key: str) -> Node | None:
        """A node by path."""
        index = self.__dict__.get("_index")
        if index is None:
            index = {n.path: n for n in self.nodes}
            object.__setattr__(self, "_index", index)  # a cache, not a field
        return index.get(key)
