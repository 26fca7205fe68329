"""YAML -> Spec: safe loading that remembers line numbers, top-level validation, bundled specs.

The structure of ``layers:`` is interpreted by the engine as it walks it (the engine is where a
layer's input shape is known); this module only guarantees the file is well-formed at the top
level and gives every mapping and list its line so errors can point at ``file:line``.
"""
from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field

import yaml

from .gcpause import gc_paused


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


class Seq(list):
    """A YAML sequence that knows its line and the line of each item."""

    line: int = 0
    item_lines: list


class _LineLoader(yaml.SafeLoader):
    pass


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


def _construct(loader: _LineLoader, node: yaml.Node):
    """loader.construct_object(node, deep=True), with a scalar sent straight to its constructor:
    scalars are immutable and cannot recurse, so the alias and recursion bookkeeping it skips
    would not change the value (it was a fifth of the loading time)."""
    if node.__class__ is yaml.ScalarNode:
        constructor = loader.yaml_constructors.get(node.tag)
        if constructor is not None:
            return constructor(loader, node)
    return loader.construct_object(node, deep=True)


def _construct_map(loader: _LineLoader, node: yaml.MappingNode) -> Map:
    loader.flatten_mapping(node)
    m = Map()
    m.line = node.start_mark.line + 1
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
    return m


def _construct_seq(loader: _LineLoader, node: yaml.SequenceNode) -> Seq:
    s = Seq([_construct(loader, child) for child in node.value])
    s.line = node.start_mark.line + 1
    s.item_lines = [child.start_mark.line + 1 for child in node.value]
    return s


for _loader in (_LineLoader, _FastLineLoader):
    if _loader is not None:
        _loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_map)
        _loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_seq)


def _load_yaml(text: str):
    """Parse with libyaml when it is there; on any YAML error (or a character the pure-Python
    reader rejects) parse again with the pure-Python loader, so error messages stay its own."""
    with gc_paused():
        if _FastLineLoader is not None and not yaml.reader.Reader.NON_PRINTABLE.search(text):
            try:
                return yaml.load(text, Loader=_FastLineLoader)
            except yaml.YAMLError:
                pass
        return yaml.load(text, Loader=_LineLoader)


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


TOP_KEYS = ("name", "source", "notes", "input", "defaults", "blocks", "layers", "expect")


def parse(text: str, file: str = "<spec>") -> Spec:
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
        raise SpecError(f"malformed YAML: {message}", file=file, line=line) from None
    except yaml.YAMLError as e:
        raise SpecError(f"malformed YAML: {e}", file=file) from None
    if not isinstance(data, Map):
        raise SpecError("a spec is a mapping with name, input and layers", file=file, line=1)
    unknown = [k for k in data if k not in TOP_KEYS]
    if unknown:
        raise SpecError(f"unknown top-level key {unknown[0]!r}; known: {', '.join(TOP_KEYS)}",
                        file=file, line=data.key_lines[unknown[0]])
    for key in ("name", "input", "layers"):
        if key not in data:
            raise SpecError(f"missing top-level key {key!r}", file=file, line=1)
    lines = dict(data.key_lines)
    name = data["name"]
    if not isinstance(name, str) or not name:
        raise SpecError("name must be a non-empty string", file=file, line=lines["name"])
    shape = data["input"]
    if (not isinstance(shape, list) or len(shape) not in (1, 3)
            or any(isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in shape)):
        raise SpecError("input must be [C, H, W] (or [N]) with positive integers", file=file, line=lines["input"])
    layers = data["layers"]
    if not isinstance(layers, Seq) or not layers:
        raise SpecError("layers must be a non-empty list", file=file, line=lines["layers"])
    defaults = data.get("defaults") or Map()
    blocks = data.get("blocks") or Map()
    for key, value in (("defaults", defaults), ("blocks", blocks)):
        if not isinstance(value, dict):
            raise SpecError(f"{key} must be a mapping", file=file, line=lines[key])
    for text_key in ("source", "notes"):
        if text_key in data and not isinstance(data[text_key], str):
            raise SpecError(f"{text_key} must be text", file=file, line=lines[text_key])
    return Spec(
        name=name, input=tuple(shape), layers=layers, file=file,
        source=(data.get("source") or "").strip(), notes=(data.get("notes") or "").strip(),
        defaults=defaults, blocks=blocks, expect=data.get("expect"), lines=lines,
    )


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


def bundled_text(name: str) -> str | None:
    """The YAML text of a bundled spec, or None when there is no such spec."""
    folder = _bundled_folder()
    if folder is None:
        resource = _bundled_dir() / f"{name}.yaml"
        return resource.read_text(encoding="utf-8") if resource.is_file() else None
    file = os.path.join(folder, f"{name}.yaml")
    if not os.path.isfile(file):
        return None
    with open(file, encoding="utf-8") as f:
        return f.read()


def bundled_names() -> list[str]:
    folder = _bundled_folder()
    files = os.listdir(folder) if folder is not None else [p.name for p in _bundled_dir().iterdir()]
    return sorted(n[:-5] for n in files if n.endswith(".yaml"))


def _may_be_path(name_or_path: str) -> bool:
    """False only when Path(name_or_path) has no suffix and does not exist, without pathlib."""
    return (not name_or_path or "." in name_or_path or os.sep in name_or_path
            or (os.altsep is not None and os.altsep in name_or_path) or os.path.exists(name_or_path))


def load(name_or_path: str) -> Spec:
    """Load a bundled spec by name (``vgg16``) or a YAML file by path."""
    if _may_be_path(name_or_path):
        from pathlib import Path

        path = Path(name_or_path)
        if path.suffix in (".yaml", ".yml") or path.exists():
            try:
                text = path.read_text(encoding="utf-8")
            except OSError as e:
                raise SpecError(f"cannot read spec: {e.strerror}", file=str(path)) from None
            except UnicodeDecodeError as e:
                line = path.read_bytes()[: e.start].count(b"\n") + 1
                raise SpecError(f"not UTF-8 text: byte 0x{e.object[e.start]:02x}", file=str(path), line=line) from None
            return parse(text, file=str(path))
    text = bundled_text(name_or_path)
    if text is None:
        known = ", ".join(bundled_names())
        raise SpecError(f"no bundled spec named {name_or_path!r} and no such file; bundled: {known}", file=name_or_path)
    return parse(text, file=f"specs/{name_or_path}.yaml")
