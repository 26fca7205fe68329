"""Framework builders: a runnable model built from the graph IR (archcalc/graph.py).

``archcalc.build(spec_or_graph, framework="torch")`` returns a ``torch.nn.Module`` whose layers are
the graph's nodes, in execution order. The builder reads only the graph (types, resolved
arguments, the rule's shapes and windows), never the YAML, so it re-implements nothing of the spec
language. The framework is imported only when its builder runs: archcalc's core does not need it.

A layer type a framework cannot build is named in a ``BuildError``, never skipped silently.
"""
from __future__ import annotations

from importlib import import_module

from ..spec import SpecError

FRAMEWORKS = {"torch": "torch", "pytorch": "torch", "jax": "jax"}  # name -> module of this package


class BuildError(SpecError):
    """The graph has a layer the framework's builder cannot build."""


def build(spec_or_graph, framework: str = "torch", **options):
    """A framework model of ``spec_or_graph`` (a Spec, a Graph, or a bundled name or path).

    Options are the builder's (torch: ``input_shape``, ``aux``, ``dropout``; jax: ``input_shape``, ``aux``,
    ``seed``, ``abstract``); see its module."""
    if framework not in FRAMEWORKS:
        raise BuildError(f"unknown framework {framework!r}; known: {', '.join(sorted(FRAMEWORKS))}")
    from ..expand import expand
    from ..graph import Graph
    from ..spec import Spec, load

    graph = spec_or_graph
    if isinstance(graph, str):
        graph = load(graph)
    if isinstance(graph, Spec):
        graph = expand(graph, input_shape=options.pop("input_shape", None))
    elif options.pop("input_shape", None) is not None:
        raise BuildError("input_shape applies to a spec, not to an expanded graph")
    if not isinstance(graph, Graph):
        raise TypeError(f"build() takes a Spec, a Graph or a spec name, not {type(spec_or_graph).__name__}")
    return import_module(f".{FRAMEWORKS[framework]}", __name__).build_graph(graph, **options)


__all__ = ["build", "BuildError", "FRAMEWORKS"]
