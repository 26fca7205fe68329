"""Framework profiles: what a framework keeps for backward, runs in place and allocates.

A rule says what a layer is (shape, parameters, MACs) and lists its parts: the framework
operations it is made of (a conv + BN + ReLU row is three). A profile maps each part's type to its
memory behaviour and composes the parts of a row. Profiles are looked up by name; each module
registers one ``Profile``.
"""
from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module

from ..rules import Cost, Part, Saved
from ..shape import elems
from ..spec import SpecError


@dataclass(frozen=True, slots=True)
class Memory:
    """What one row keeps and allocates under a framework.

    ``saved``: tensors kept for backward, each naming its storage (``input``, ``inputN`` of a
    merge, ``output``, ``tmpN`` for an intermediate). ``alias``: the output is written into the
    input's storage (in-place op, view, identity); ``inplace``: it also overwrites what was there
    (an in-place op, not a view). ``train_copy``: an alias at inference that is a
    new tensor in training (dropout). ``temp_elems``: intermediates alive only while the row runs.
    ``scratch_elems`` and ``scratch_fixed_bytes`` (int64 and the like, bytes per sample): what an
    inference pass allocates and frees inside the operation beyond its output and ``temp_elems``, at
    its largest moment (LRN's squares and divisor, the stacked columns of a ``mean`` join, max-pool's
    indices). Not forward allocations of the table (``out_elems``); training keeps some of them for
    backward (``saved``), which is why the training replay does not add them.
    ``backward_temp_elems``: what the row's backward allocates and frees beside its incoming
    gradient and its input's, at its largest moment (LRN's decomposed division backward).
    """

    saved: tuple[Saved, ...] = ()
    alias: bool = False
    inplace: bool = False
    train_copy: bool = False
    temp_elems: int = 0
    scratch_elems: int = 0
    scratch_fixed_bytes: int = 0
    backward_temp_elems: int = 0


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    parts: dict  # part type -> (Part -> Memory)

    def memory(self, cost: Cost) -> Memory:
        """The row's memory: its parts' memories, composed in order."""
        parts = cost.parts
        mem = self.part_after(None, parts[0])
        for prev, part in zip(parts, parts[1:]):
            mem = _then(mem, prev.out, self.part_after(prev, part))
        return mem

    def part_after(self, prev: Part | None, part: Part) -> Memory:
        """A part's memory inside a row, after ``prev`` (None for the first); a profile where what
        an operation keeps depends on the one before it overrides this."""
        return self.part(part)

    def part(self, part: Part) -> Memory:
        fn = self.parts.get(part.type)
        if fn is None:  # a rule the profile does not model is an error, never a silent zero
            raise SpecError(f"the {self.name} profile does not model {part.type!r} layers")
        return fn(part)


def _then(a: Memory, a_out, b: Memory) -> Memory:
    """Part a followed by pointwise part b in one row (conv + BN + ReLU): storages renamed so the
    row's saved tensors stay distinct, and a's output an intermediate unless b overwrites it."""
    n_tmp = max((int(s.of[3:]) + 1 for s in a.saved if s.of.startswith("tmp")), default=0)
    mid = "output" if b.alias else f"tmp{n_tmp}"  # where a's output lives inside the row

    def moved(s: Saved, of: str) -> Saved:
        return Saved(s.what, s.elems, of, s.itemsize, s.per_batch)

    saved = tuple(moved(s, mid) if s.of == "output" else s for s in a.saved)
    for s in b.saved:
        if s.of == "input":
            s = moved(s, mid)
        elif s.of.startswith("tmp"):
            s = moved(s, f"tmp{n_tmp + 1 + int(s.of[3:])}")
        saved += (s,)
    alias = a.alias and b.alias
    return Memory(saved=saved, alias=alias, inplace=alias and (a.inplace or b.inplace),
                  # a's own temporaries (an F.pad copy) are gone by the time b runs beside a's output
                  temp_elems=max(a.temp_elems, b.temp_elems + (0 if b.alias else elems(a_out))),
                  scratch_elems=max(a.scratch_elems, b.scratch_elems),
                  scratch_fixed_bytes=max(a.scratch_fixed_bytes, b.scratch_fixed_bytes),
                  backward_temp_elems=max(a.backward_temp_elems, b.backward_temp_elems))


PROFILES = {"pytorch": "pytorch", "xla": "xla"}  # name -> module


def get_profile(name: str, file: str | None = None) -> Profile:
    if name not in PROFILES:
        raise SpecError(f"unknown profile {name!r}; known: {', '.join(PROFILES)}", file=file)
    return import_module(f".{PROFILES[name]}", __name__).PROFILE


__all__ = ["Memory", "Profile", "get_profile", "PROFILES"]
