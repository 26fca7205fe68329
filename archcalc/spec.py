"""YAML -> Spec: safe loading that remembers line numbers, top-level validation, bundled specs.

The structure of ``layers:`` is interpreted by the engine as it walks it (the engine is where a
layer's input shape is known); this module only guarantees the file is well-formed at the top
level and gives every mapping and list its line so errors can point at ``file:line``.
"""
from __future__ import annotations

import importlib
import os
import re
from dataclasses import dataclass, field

import yaml

from .gcpause import gc_paused
from .limits import LIMITS


class SpecError(Exception):
    """Bad input, reported as one line: ``file:line: layer path: what is wrong``."""

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None, path: str | None = None):
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line
        self.path = path

    def __str__(self) -> str:
        where = self.file or "<spec>"
        if self.line:
            where += f":{self.line}"
        return f"{where}: {self.path + ': ' if self.path else ''}{self.message}"


class Map(dict):
    """A YAML mapping that knows its line and the line of each key."""

    line: int = 0
    key_lines: dict
    nodes: int = 1  # YAML nodes under it, every alias expanded (bounded by yaml_nodes)
    depth: int = 1  # lists and mappings nested in it, aliases followed (bounded by yaml_depth)


class Seq(list):
    """A YAML sequence that knows its line and the line of each item."""

    line: int = 0
    item_lines: list
    nodes: int = 1
    depth: int = 1


class _LineLoader(yaml.SafeLoader):
    _nesting = 0
    _composed = 0

    def compose_node(self, parent, index):
        # The pure-Python composer recurses once per nesting level: refuse deep input before
        # it runs out of stack (libyaml's parser stops at 1000 levels by itself).
        self._nesting += 1
        self._composed += 1
        try:
            if self._nesting > LIMITS["yaml_depth"]:
                raise _too_deep(self.peek_event().start_mark.line + 1)
            if self._composed > LIMITS["yaml_nodes"]:
                raise _too_many(self.peek_event().start_mark.line + 1)
            return super().compose_node(parent, index)
        finally:
            self._nesting -= 1


_SCALAR_TAGS: dict = {}  # (value, implicit) -> resolved tag; a pure function without path resolvers

if getattr(yaml, "__with_libyaml__", False):
    class _FastLineLoader(yaml.CSafeLoader):
        """libyaml's parser reads a spec many times faster than the pure-Python one and keeps the
        same marks, so lines are the same; the constructors are shared."""

        def resolve(self, kind, value, implicit):
            # The parser asks for every scalar's tag; specs repeat a few hundred words and numbers.
            if kind is not yaml.ScalarNode or self.yaml_path_resolvers:
                return super().resolve(kind, value, implicit)
            tag = _SCALAR_TAGS.get((value, implicit))
            if tag is None:
                tag = super().resolve(kind, value, implicit)
                if len(_SCALAR_TAGS) < 4096:
                    _SCALAR_TAGS[(value, implicit)] = tag
            return tag
else:
    _FastLineLoader = None


def _short_tag(tag: str) -> str:
    return "!!" + tag[len("tag:yaml.org,2002:"):] if tag.startswith("tag:yaml.org,2002:") else tag


def _too_many(line: int) -> SpecError:
    return SpecError(f"the YAML has more than {LIMITS['yaml_nodes']:,} lists, mappings and scalars (limit yaml_nodes)",
                     line=line)


def _too_deep(line: int) -> SpecError:
    return SpecError(f"lists and mappings nested deeper than {LIMITS['yaml_depth']} levels (limit yaml_depth)", line=line)


def _construct(loader: _LineLoader, node: yaml.Node):
    """loader.construct_object(node, deep=True), with a scalar sent straight to its constructor:
    scalars are immutable and cannot recurse, so the alias and recursion bookkeeping it skips
    would not change the value (it was a fifth of the loading time)."""
    if node.__class__ is yaml.ScalarNode:
        constructor = loader.yaml_constructors.get(node.tag)
        if constructor is not None:
            try:
                return constructor(loader, node)
            except (ValueError, TypeError, LookupError, AttributeError, ArithmeticError):
                # An explicit tag with a value it cannot read (`!!int abc`, `!!timestamp 64`):
                # PyYAML's constructors fail with whatever Python raised.
                raise SpecError(f"{_short_tag(node.tag)} {node.value[:40]!r} is not a valid "
                                f"{_short_tag(node.tag)[2:]}", line=node.start_mark.line + 1) from None
    return loader.construct_object(node, deep=True)


def _measure(c, line: int, nodes: int, depth: int, children) -> None:
    """Set c.nodes and c.depth from its children, which are built already (an alias is the same
    object each time it is used, so a file of ten lines can expand to 10**9 nodes: the billion
    laughs). Refuse what exceeds yaml_nodes or yaml_depth before anything walks it."""
    for v in children:
        if v.__class__ is Map or v.__class__ is Seq:
            nodes += v.nodes
            if v.depth >= depth:
                depth = v.depth + 1
        else:
            nodes += 1
    c.nodes, c.depth = nodes, depth
    if depth > LIMITS["yaml_depth"]:
        raise _too_deep(line)
    if nodes > LIMITS["yaml_nodes"]:
        raise SpecError(f"the YAML expands to more than {LIMITS['yaml_nodes']:,} nodes when its aliases are "
                        "repeated (limit yaml_nodes)", line=line)


def _enter(loader, node, kind) -> int:
    """The nesting of the node being built; refused before the constructors recurse any deeper."""
    if node.__class__ is not kind:  # `!!map 3`, `!!seq {a: 1}`: a collection tag on another kind of node
        raise SpecError(f"{_short_tag(node.tag)} needs a {'mapping' if kind is yaml.MappingNode else 'list'}",
                        line=node.start_mark.line + 1)
    loader._nesting = getattr(loader, "_nesting", 0) + 1
    if loader._nesting > LIMITS["yaml_depth"]:
        raise _too_deep(node.start_mark.line + 1)
    return node.start_mark.line + 1


def _construct_map(loader: _LineLoader, node: yaml.MappingNode) -> Map:
    line = _enter(loader, node, yaml.MappingNode)
    loader.flatten_mapping(node)
    m = Map()
    m.line = line
    m.key_lines = {}
    for key_node, value_node in node.value:
        key = _construct(loader, key_node)
        if not isinstance(key, (str, int, float, bool)) and key is not None:
            raise SpecError("mapping keys must be plain words", line=key_node.start_mark.line + 1)
        key = str(key) if not isinstance(key, str) else key
        if key in m:
            raise SpecError(f"duplicate key {key!r}", line=key_node.start_mark.line + 1)
        m[key] = _construct(loader, value_node)
        m.key_lines[key] = key_node.start_mark.line + 1
    loader._nesting -= 1
    _measure(m, line, 1 + len(m), 1, m.values())
    return m


def _construct_seq(loader: _LineLoader, node: yaml.SequenceNode) -> Seq:
    line = _enter(loader, node, yaml.SequenceNode)
    s = Seq([_construct(loader, child) for child in node.value])
    loader._nesting -= 1
    s.line = line
    s.item_lines = [child.start_mark.line + 1 for child in node.value]
    _measure(s, line, 1, 1, s)
    return s


def _construct_int(loader: _LineLoader, node: yaml.ScalarNode) -> int:
    # Checked on the text first: int() of a literal over 4,300 digits raises, and a long one is slow.
    line = node.start_mark.line + 1
    if len(node.value) > 40:
        raise SpecError(f"integer literal of {len(node.value):,} characters is too large (limit int_max = "
                        f"{LIMITS['int_max']:,})", line=line)
    n = yaml.constructor.SafeConstructor.construct_yaml_int(loader, node)
    if abs(n) > LIMITS["int_max"]:
        raise SpecError(f"integer {n:,} is too large (limit int_max = {LIMITS['int_max']:,})", line=line)
    return n


_SURROGATE = re.compile("[\ud800-\udfff]")


def _construct_str(loader: _LineLoader, node: yaml.ScalarNode) -> str:
    value = yaml.constructor.SafeConstructor.construct_yaml_str(loader, node)
    # Only a double-quoted "\ud800" escape makes a lone surrogate, which no writer can print.
    if node.style == '"' and _SURROGATE.search(value):
        raise SpecError(f"text {value!r} holds a lone surrogate, which is not a character", line=node.start_mark.line + 1)
    return value


def _refuse_tag(loader: _LineLoader, node: yaml.Node):
    # These build sets, generators, tuples or bytes, which the spec language has no use for.
    raise SpecError(f"the YAML tag {_short_tag(node.tag)} is not used in specs; write a list or a mapping",
                    line=node.start_mark.line + 1)


for _loader in (_LineLoader, _FastLineLoader):
    if _loader is not None:
        _loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_map)
        _loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_seq)
        _loader.add_constructor("tag:yaml.org,2002:int", _construct_int)
        _loader.add_constructor("tag:yaml.org,2002:str", _construct_str)
        for _tag in ("pairs", "omap", "set", "binary"):
            _loader.add_constructor(f"tag:yaml.org,2002:{_tag}", _refuse_tag)


def _load_yaml(text: str):
    """Parse with libyaml when it is there; on any YAML error parse again with the pure-Python
    loader, so error messages stay its own."""
    bad = yaml.reader.Reader.NON_PRINTABLE.search(text)
    if bad:  # the pure-Python reader would name a character position, not a line
        raise SpecError(f"non-printable character U+{ord(bad.group()):04X}; YAML allows only printable text",
                        line=text.count("\n", 0, bad.start()) + 1)
    with gc_paused():
        if _FastLineLoader is not None:
            if len(text) > max(_COUNT_FROM, LIMITS["yaml_nodes"]):
                _count_nodes(text)
            try:
                return _single(_FastLineLoader, text)
            except yaml.YAMLError:
                if len(text) > _PURE_ERRORS_UP_TO:
                    raise  # libyaml's own message: the pure-Python parser would take seconds to get there
        return _single(_LineLoader, text)


# A text shorter than this holds fewer than ~65,000 nodes (a node takes at least one character:
# `{a,b,c}` is six), cheap to compose whole before the constructors count them; a longer one is
# counted event by event before libyaml builds any node (~1 µs a node, no memory), so a 10 MB list
# of numbers is refused after yaml_nodes of them, not after composing millions. A text of at most
# yaml_nodes characters cannot hold more nodes than that, so it is not counted either (raising the
# limit for real huge work then also spares the counting pass).
_COUNT_FROM = 65_536
# A YAML error is reported with the pure-Python parser's message (parsed again from the start)
# only in a text up to this size: it takes up to ~30 µs a node (a truncated 10 MB file took 20 s,
# 68 KB of `1,` 1 s); a longer text gets libyaml's message, with its line.
_PURE_ERRORS_UP_TO = 20_000


def _count_nodes(text: str) -> None:
    """Refuse a text with more than yaml_nodes lists, mappings and scalars before composing it."""
    parser = yaml.cyaml.CParser(text)
    kinds = (yaml.ScalarEvent, yaml.SequenceStartEvent, yaml.MappingStartEvent)
    limit = LIMITS["yaml_nodes"]
    n = 0
    try:
        while True:
            event = parser.get_event()
            if event is None:
                return
            if event.__class__ in kinds:
                n += 1
                if n > limit:
                    raise _too_many(event.start_mark.line + 1)
    except yaml.YAMLError:
        return  # malformed: the parse proper reports it (fewer nodes than the limit came before it)
    finally:
        parser.dispose()


def _single(loader_class, text: str):
    loader = loader_class(text)
    try:
        try:
            node = loader.get_single_node()
        except ValueError as e:  # the pure-Python scanner's int() of a `%YAML 999...9` directive of 5,000 digits
            raise SpecError(f"malformed YAML: {str(e).split(';')[0]}", line=loader.get_mark().line + 1) from None
        if node is None:
            return None
        try:
            return loader.construct_document(node)
        except (ValueError, TypeError, LookupError, AttributeError, ArithmeticError):
            # The whole document one tagged scalar that cannot be read (`!!float` alone): _construct,
            # which reports these for the scalars inside, never sees the root.
            tag = _short_tag(node.tag)
            raise SpecError(f"{tag} {str(node.value)[:40]!r} is not a valid {tag[2:]}",
                            line=node.start_mark.line + 1) from None
    finally:
        loader.dispose()


def line_of(value, default: int = 0) -> int:
    return getattr(value, "line", default) or default


@dataclass
class Spec:
    name: str
    input: tuple
    layers: Seq
    file: str
    source: str = ""
    notes: str = ""
    defaults: dict = field(default_factory=dict)
    blocks: dict = field(default_factory=dict)
    expect: object = None
    lines: dict = field(default_factory=dict)  # top-level key -> line
    args: dict = field(default_factory=dict)  # the spec's own parameters, $name in its layers
    rounding: str = "warn"  # "floor": floored output sizes are intended and do not warn
    variants: dict = field(default_factory=dict)  # member name -> its overrides (a family in one file)
    family: str = ""  # the name of the file's first member, for a variant
    accuracy: dict | None = None  # published ImageNet accuracy: {top1, top5, source}; a variant's own, never inherited
    # the input is an activation inside a larger network (a lecture's module), not the caller's data
    input_requires_grad: bool = False


TOP_KEYS = ("name", "source", "notes", "accuracy", "input", "input_requires_grad", "args", "defaults", "rounding", "blocks", "layers", "expect",
            "variants")
VARIANT_KEYS = ("source", "notes", "accuracy", "input", "input_requires_grad", "args", "defaults", "rounding", "expect")
ROUNDINGS = ("warn", "floor")
BLOCK_KEYS = ("args", "body", "defaults", "notes", "rounding")
INPUT_VARS = ("in", "in_h", "in_w")  # what a block body knows of its input ($in, $in_h, $in_w)


def _fail(message: str, file: str, line: int | None) -> SpecError:
    return SpecError(message, file=file, line=line or None)


def _check_input(shape, file: str, line: int) -> tuple:
    if (not isinstance(shape, list) or len(shape) not in (1, 3)
            or any(isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in shape)):
        raise _fail("input must be [C, H, W] (or [N]) with positive integers", file, line)
    return tuple(shape)


def _check_mapping(data: dict, key: str, file: str, line: int) -> dict:
    value = data.get(key)
    if value is None:
        return Map()
    if not isinstance(value, dict):
        raise _fail(f"{key} must be a mapping", file, line)
    return value


def _check_text(data: dict, key: str, file: str, line: int) -> str:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise _fail(f"{key} must be text", file, line)
    return (value or "").strip()


def _check_flag(data: dict, key: str, file: str, line: int) -> bool:
    value = data.get(key, False)
    if not isinstance(value, bool):
        raise _fail(f"{key} must be true or false, got {value!r}", file, line)
    return value


ACCURACY_KEYS = ("top1", "top5", "source")


def _check_accuracy(data: dict, file: str, line: int) -> dict | None:
    """A trained model's published accuracy (percent), with where it was published: metadata for
    `archcalc plot --compare`, never computed."""
    value = data.get("accuracy")
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _fail("accuracy must be a mapping: {top1: PERCENT, top5: PERCENT, source: TEXT}", file, line)
    keys = getattr(value, "key_lines", {})
    bad = [k for k in value if k not in ACCURACY_KEYS]
    if bad:
        raise _fail(f"accuracy: unknown key {bad[0]!r}; known: {', '.join(ACCURACY_KEYS)}", file, keys.get(bad[0], line))
    for key in ("top1", "source"):
        if key not in value:
            raise _fail(f"accuracy: missing {key!r} (a published accuracy says where it was published)", file, line)
    for key in ("top1", "top5"):
        v = value.get(key)
        if key in value and (isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 100):
            raise _fail(f"accuracy: {key} must be a percentage between 0 and 100, got {v!r}", file, keys.get(key, line))
    if not isinstance(value["source"], str) or not value["source"].strip():
        raise _fail("accuracy: source must be non-empty text", file, keys.get("source", line))
    return {k: value[k] for k in ACCURACY_KEYS if k in value}


def _check_rounding(data: dict, file: str, line: int) -> str:
    value = data.get("rounding", "warn")
    if value not in ROUNDINGS:
        raise _fail(f"rounding must be one of {', '.join(ROUNDINGS)} (floor: floored output sizes are intended), "
                    f"got {value!r}", file, line)
    return value


def _load_mapping(text: str, file: str) -> Map:
    try:
        data = _load_yaml(text)
    except SpecError as e:
        e.file = file
        raise
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        message = e.problem or e.context
        at_end = e.problem_mark is not None and e.problem_mark.index >= len(text.rstrip())
        if at_end and e.context_mark is not None:
            mark = e.context_mark
            message = f"{e.problem} ({e.context} that starts on this line)"
        line = mark.line + 1 if mark else None
        if line and at_end:  # libyaml marks the end of the stream, after the last line
            line = min(line, text.rstrip().count("\n") + 1)
        raise SpecError(f"malformed YAML: {message}", file=file, line=line) from None
    except yaml.reader.ReaderError as e:  # libyaml's reader names a character position
        line = text.count("\n", 0, max(0, e.position)) + 1
        raise SpecError(f"malformed YAML: {e.reason}", file=file, line=line) from None
    except yaml.YAMLError as e:
        raise SpecError(f"malformed YAML: {e}", file=file) from None
    return data


_PARSED: dict = {}  # (file, text) -> loaded YAML: a family file is read once for all its members


def parse(text: str, file: str = "<spec>", variant: str | None = None) -> Spec:
    """A spec from YAML text; ``variant`` picks a member of a family declared under ``variants:``."""
    key = (file, text)
    data = _PARSED.get(key)
    if data is None:
        if len(text) > LIMITS["file_bytes"]:
            raise SpecError(f"the spec is {len(text):,} characters, more than {LIMITS['file_bytes']:,} (limit file_bytes)",
                            file=file, line=text.count("\n", 0, LIMITS["file_bytes"]) + 1)
        data = _load_mapping(text, file)
        if len(_PARSED) >= 64:
            _PARSED.clear()
        _PARSED[key] = data  # never mutated: expansion builds new objects
    if not isinstance(data, Map):
        raise SpecError("a spec is a mapping with name, input and layers", file=file, line=1)
    unknown = [k for k in data if k not in TOP_KEYS]
    if unknown:
        raise SpecError(f"unknown top-level key {unknown[0]!r}{_close(unknown[0], TOP_KEYS)}; known: {', '.join(TOP_KEYS)}",
                        file=file, line=data.key_lines[unknown[0]])
    for key in ("name", "input", "layers"):
        if key not in data:
            raise SpecError(f"missing top-level key {key!r}", file=file, line=1)
    lines = dict(data.key_lines)
    name = data["name"]
    if not isinstance(name, str) or not name:
        raise SpecError("name must be a non-empty string", file=file, line=lines["name"])
    layers = data["layers"]
    if not isinstance(layers, Seq) or not layers:
        raise SpecError("layers must be a non-empty list", file=file, line=lines["layers"])
    variants = _check_mapping(data, "variants", file, lines.get("variants", 0))
    if len(variants) > LIMITS["variants"]:  # `archcalc check FILE` analyses every member
        extra = list(variants)[LIMITS["variants"]]
        raise SpecError(f"more than {LIMITS['variants']:,} variants (limit variants)", file=file,
                        line=getattr(variants, "key_lines", {}).get(extra) or lines["variants"])
    spec = Spec(
        name=name, input=_check_input(data["input"], file, lines["input"]), layers=layers, file=file,
        source=_check_text(data, "source", file, lines.get("source", 0)),
        notes=_check_text(data, "notes", file, lines.get("notes", 0)),
        defaults=_check_mapping(data, "defaults", file, lines.get("defaults", 0)),
        blocks=_check_mapping(data, "blocks", file, lines.get("blocks", 0)),
        args=_check_mapping(data, "args", file, lines.get("args", 0)),
        rounding=_check_rounding(data, file, lines.get("rounding", 0)),
        expect=data.get("expect"), lines=lines, variants=variants, family=name,
        accuracy=_check_accuracy(data, file, lines.get("accuracy", 0)),
        input_requires_grad=_check_flag(data, "input_requires_grad", file, lines.get("input_requires_grad", 0)),
    )
    for member, overrides in variants.items():
        line = variants.key_lines.get(member, lines["variants"])
        if not isinstance(overrides, dict):
            raise _fail(f"variant {member!r} must be a mapping of {', '.join(VARIANT_KEYS)}", file, line)
        if member == name:
            raise _fail(f"variant {member!r} is the family's first member (name:); give the variant another name",
                        file, line)
        bad = [k for k in overrides if k not in VARIANT_KEYS]
        if bad:
            raise _fail(f"variant {member!r}: unknown key {bad[0]!r}; a variant may set {', '.join(VARIANT_KEYS)}", file,
                        overrides.key_lines.get(bad[0], line))
    if variant is None or variant == name:
        return spec
    if variant not in variants:
        raise SpecError(f"{name} has no variant {variant!r}; its members: {', '.join([name, *variants])}", file=file)
    return _variant(spec, variant, variants[variant])


def _variant(base: Spec, name: str, overrides: Map) -> Spec:
    """The family's first member with a variant's overrides: args and defaults laid over the base's,
    the rest replaced."""
    file = base.file
    lines = dict(base.lines)
    lines.update(getattr(overrides, "key_lines", {}))
    for t, a in base.defaults.items():  # expand checks them too, but a variant merges them first
        if not isinstance(a, dict):
            raise _fail(f"defaults for {t!r} must be a mapping of arguments", file,
                        getattr(base.defaults, "key_lines", {}).get(t) or base.lines.get("defaults"))
    defaults = {t: dict(a) for t, a in base.defaults.items()}
    for t, a in _check_mapping(overrides, "defaults", file, lines.get("defaults", 0)).items():
        if not isinstance(a, dict):
            raise _fail(f"variant {name}: defaults for {t!r} must be a mapping of arguments", file, lines.get("defaults", 0))
        defaults[t] = {**defaults.get(t, {}), **a}
    defaults = Map(defaults)
    defaults.line = line_of(base.defaults)
    defaults.key_lines = getattr(base.defaults, "key_lines", {})
    args = {**base.args, **_check_mapping(overrides, "args", file, lines.get("args", 0))}
    unknown = [a for a in args if a not in base.args]
    if unknown:
        raise _fail(f"variant {name}: unknown argument {unknown[0]!r}; the family's arguments: "
                    f"{', '.join(base.args) or '(none)'}", file, lines.get("args", 0))
    return Spec(
        name=name, input=_check_input(overrides["input"], file, lines["input"]) if "input" in overrides else base.input,
        layers=base.layers, file=file,
        source=_check_text(overrides, "source", file, lines.get("source", 0)) or base.source,
        notes=_check_text(overrides, "notes", file, lines.get("notes", 0)) if "notes" in overrides else base.notes,
        defaults=defaults, blocks=base.blocks, expect=overrides.get("expect"), lines=lines, args=args,
        rounding=_check_rounding(overrides, file, lines.get("rounding", 0)) if "rounding" in overrides else base.rounding,
        variants=base.variants, family=base.name,
        accuracy=_check_accuracy(overrides, file, lines.get("accuracy", 0)),
        input_requires_grad=(_check_flag(overrides, "input_requires_grad", file, lines.get("input_requires_grad", 0))
                             if "input_requires_grad" in overrides else base.input_requires_grad),
    )


def _close(word: str, known) -> str:
    import difflib

    close = difflib.get_close_matches(word, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


# ---------------------------------------------------------------- bundled specs and loading


# The bundled specs are read with os.path when they are a plain folder (any normal or editable
# install): pathlib and importlib.resources are imported only for a path or a zipped install,
# which spares `archcalc table NAME` about 10 ms of imports on a clean interpreter.


def _bundled_folder() -> str | None:
    try:
        package = importlib.import_module(f"{__package__}.specs")
    except ModuleNotFoundError:
        # Imported from a source checkout (`python -m pytest` in a clone puts the clone first on
        # sys.path): the specs are the top-level folder that the wheel ships as archcalc.specs.
        folder = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "specs")
        if os.path.isdir(folder):
            return folder
        raise
    folder = next(iter(package.__path__), None)
    return folder if folder and os.path.isdir(folder) else None


def _bundled_dir():
    import importlib.resources

    return importlib.resources.files(f"{__package__}.specs")


def _read_bundled(filename: str) -> str | None:
    folder = _bundled_folder()
    if folder is None:
        resource = _bundled_dir().joinpath(*filename.split("/"))
        return resource.read_text(encoding="utf-8") if resource.is_file() else None
    file = os.path.join(folder, *filename.split("/"))
    if not os.path.isfile(file):
        return None
    with open(file, encoding="utf-8") as f:
        return f.read()


def _bundled_files() -> list[str]:
    folder = _bundled_folder()
    files = os.listdir(folder) if folder is not None else [p.name for p in _bundled_dir().iterdir()]
    return sorted(n[:-5] for n in files if n.endswith(".yaml"))


_VARIANTS = re.compile(r"^variants:[ \t]*(?:#.*)?\n((?:(?:[ \t].*|[ \t]*|#.*)\n?)*)", re.MULTILINE)
_MEMBER = re.compile(r"^  ([A-Za-z0-9_][\w.-]*)[ \t]*:", re.MULTILINE)


def variant_names(text: str) -> list[str]:
    """The members a family file declares under `variants:`, read from its text without parsing it
    (listing the library must not parse every file); tests/test_specs_families.py checks it against
    the parsed spec for every bundled file."""
    match = _VARIANTS.search(text)
    return _MEMBER.findall(match.group(1)) if match else []


_INDEX: dict = {}


def _bundled_index() -> dict[str, str]:
    """Every bundled spec name -> the file (stem) that defines it: one per file, plus its variants."""
    if not _INDEX:
        index = {}
        for stem in _bundled_files():
            index.setdefault(stem, stem)
            for member in variant_names(_read_bundled(f"{stem}.yaml") or ""):
                index.setdefault(member, stem)
        _INDEX.update(index)
    return _INDEX


def bundled_text(name: str) -> str | None:
    """The YAML text of the bundled file that defines ``name`` (a spec or a family member), or None."""
    text = _read_bundled(f"{name}.yaml")
    if text is not None:
        return text
    stem = _bundled_index().get(name)
    return _read_bundled(f"{stem}.yaml") if stem else None


def bundled_names() -> list[str]:
    """Every bundled network, family members included."""
    return sorted(_bundled_index())


LIBRARY_FOLDER = "blocks"  # specs/blocks/*.yaml: the shared blocks every spec may use
_LIBRARY: dict = {}


def library_blocks() -> dict:
    """The shared block library: block name -> (definition, file). Read once per process."""
    if "" not in _LIBRARY:  # "" marks the library as read (it may hold no blocks)
        found: dict = {}
        folder = _bundled_folder()
        if folder is not None:
            lib = os.path.join(folder, LIBRARY_FOLDER)
            names = sorted(n for n in os.listdir(lib) if n.endswith(".yaml")) if os.path.isdir(lib) else []
        else:
            lib_dir = _bundled_dir() / LIBRARY_FOLDER
            names = sorted(p.name for p in lib_dir.iterdir() if p.name.endswith(".yaml")) if lib_dir.is_dir() else []
        for filename in names:
            file = f"specs/{LIBRARY_FOLDER}/{filename}"
            data = _load_mapping(_read_bundled(f"{LIBRARY_FOLDER}/{filename}"), file)
            if not isinstance(data, Map) or not isinstance(data.get("blocks"), dict) or set(data) - {"blocks", "notes"}:
                raise SpecError("a block library file is a mapping with blocks: (and notes:)", file=file, line=1)
            blocks = data["blocks"]
            for name, block in blocks.items():
                line = blocks.key_lines.get(name, 0)
                if name in found:
                    raise SpecError(f"block {name!r} is defined twice in the library (also in {found[name][1]})",
                                    file=file, line=line)
                check_block(name, block, file, line)
                found[name] = (block, file)
        _LIBRARY.update(found)
        _LIBRARY[""] = None
    return {k: v for k, v in _LIBRARY.items() if k}


def check_block(name: str, block, file: str, line: int) -> None:
    """A block definition's structure (the spec's own or the shared library's)."""
    from .rules import lookup  # imported here: loading a spec needs no rules until it has blocks

    def fail(message: str, at: int) -> SpecError:
        return SpecError(message, file=file, line=at or None)

    if lookup(name) or name in ("aux", "group", "from"):
        raise fail(f"block name {name!r} is already a layer type", line)
    if not isinstance(block, dict) or "body" not in block:
        raise fail(f"block {name!r} needs a body: list of layers", line)
    unknown = [k for k in block if k not in BLOCK_KEYS]
    if unknown:
        raise fail(f"block {name!r}: unknown key {unknown[0]!r}; known: {', '.join(BLOCK_KEYS)}", line)
    key_lines = getattr(block, "key_lines", {})  # point at the offending key of the block
    if not isinstance(block["body"], list) or not block["body"]:
        raise fail(f"block {name!r}: body must be a non-empty list of layers", key_lines.get("body", line))
    args = block.get("args") or {}
    if not isinstance(args, dict):
        raise fail(f"block {name!r}: args must be a mapping of name: default (~ = required)", key_lines.get("args", line))
    taken = [a for a in args if a in INPUT_VARS]
    if taken:
        raise fail(f"block {name!r}: ${taken[0]} is the block's input ({', '.join('$' + v for v in INPUT_VARS)} are set "
                   "from it); name the argument otherwise", key_lines.get("args", line))
    if block.get("rounding", "warn") not in ROUNDINGS:
        raise fail(f"block {name!r}: rounding must be one of {', '.join(ROUNDINGS)}", key_lines.get("rounding", line))


def _may_be_path(name_or_path: str) -> bool:
    """False only when Path(name_or_path) has no suffix and does not exist, without pathlib."""
    return (not name_or_path or "." in name_or_path or os.sep in name_or_path
            or (os.altsep is not None and os.altsep in name_or_path) or os.path.exists(name_or_path))


def load(name_or_path: str, variant: str | None = None) -> Spec:
    """Load a bundled spec by name (``vgg16``, ``resnet101``) or a YAML file by path (``variant``
    picks a member of the family the file declares)."""
    if not str(name_or_path).strip():
        raise SpecError("no spec given: a bundled name (archcalc list) or a path to a YAML file")
    if _may_be_path(name_or_path):
        from pathlib import Path

        path = Path(name_or_path)
        if path.suffix in (".yaml", ".yml") or path.exists():
            try:
                size = path.stat().st_size
                if size > LIMITS["file_bytes"]:  # refused before reading it whole
                    with open(path, "rb") as f:
                        line = f.read(LIMITS["file_bytes"]).count(b"\n") + 1
                    raise SpecError(f"the spec is {size:,} bytes, more than {LIMITS['file_bytes']:,} (limit file_bytes)",
                                    file=str(path), line=line)
                text = path.read_text(encoding="utf-8")
            except OSError as e:
                raise SpecError(f"cannot read spec: {e.strerror}", file=str(path)) from None
            except UnicodeDecodeError as e:
                line = path.read_bytes()[: e.start].count(b"\n") + 1
                raise SpecError(f"not UTF-8 text: byte 0x{e.object[e.start]:02x}", file=str(path), line=line) from None
            return parse(text, file=str(path), variant=variant)
    stem = name_or_path if _read_bundled(f"{name_or_path}.yaml") is not None else _bundled_index().get(name_or_path)
    if stem is None:
        known = ", ".join(bundled_names())
        raise SpecError(f"no bundled spec named {name_or_path!r} and no such file{_close(name_or_path, bundled_names())}; "
                        f"bundled: {known}", file=name_or_path)
    text = _read_bundled(f"{stem}.yaml")
    return parse(text, file=f"specs/{stem}.yaml", variant=variant or (name_or_path if stem != name_or_path else None))
