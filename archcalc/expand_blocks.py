"""Blocks in the expansion: the blocks a spec can call (its own, then the shared library's), the
checks of their definitions and of `defaults:` against them, and a call's arguments bound to what
the block declares."""
from __future__ import annotations

from . import rules
from .expand_items import SCOPES
from .spec import Map, Spec, SpecError, check_block, library_blocks, line_of


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


def _bind_args(block_name: str, block: dict, args: dict, defaults: dict, fail) -> dict:
    """A call's arguments bound to the block's declared ones: the caller's `defaults:` for the
    block, then the positional ones, then those given by name, then the declared defaults."""
    declared = block.get("args") or {}
    bound = dict(defaults.get(block_name, {}))
    if "__positional__" in args:
        positional = args.pop("__positional__")
        if len(positional) > len(declared):
            raise fail(f"block {block_name} takes {len(declared)} arguments ({', '.join(declared)}), "
                       f"got {len(positional)}")
        bound.update(zip(declared, positional))
    unknown = [a for a in args if a not in declared]
    if unknown:
        raise fail(f"block {block_name}: unknown argument {unknown[0]!r}; its arguments: "
                   f"{', '.join(declared) or '(none)'}")
    bound.update(args)
    for arg, default in declared.items():
        if arg not in bound:
            if default is None:
                missing = [a for a, d in declared.items() if d is None and a not in bound]
                raise fail(f"block {block_name} needs {', '.join(missing)} (arguments: {', '.join(declared)})")
            bound[arg] = default
    return bound


def _block_defaults(block: dict, defaults: dict) -> dict:
    """The defaults inside a block: the caller's, with the block's own `defaults:` laid over them."""
    out = dict(defaults)
    for t, d in _canonical(block.get("defaults") or {}).items():
        out[t] = {**out.get(t, {}), **d}
    return out


def _did_you_mean(word: str, known: list[str]) -> str:
    import difflib  # only for an error message

    close = difflib.get_close_matches(word, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ";"
    return f"{hint} known: {', '.join(known)}"


def _canonical(defaults: dict) -> dict:
    """Defaults keyed by canonical rule name, so `bn:` defaults reach `batchnorm` layers."""
    out: dict = {}
    for t, d in defaults.items():
        r = rules.lookup(t)
        key = r.name if r else t
        out[key] = {**out.get(key, {}), **d}
    return out
