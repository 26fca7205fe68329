"""The Python API: what the commands do, as functions returning objects.

    >>> import archcalc
    >>> report = archcalc.analyze("vgg16")
    >>> report.totals.params, report.totals.macs
    (138357544, 15470264320)
    >>> archcalc.check("vgg16").ok
    True
    >>> archcalc.answer(report, "conv1_1", "params", "1.8K").ok
    True

Every function takes a spec as a bundled name (``"resnet50"``, family members included), a path to
a YAML file, or a `Spec` from `load`. Bad input raises `SpecError` (its ``str`` is the one line the
command line prints: file, line, layer path, what is wrong). The objects returned have
``.to_dict()`` (the JSON the command prints with ``--format json``, under the same keys) and
``.to_dataframe()`` (one row per layer, expected number or memory item; needs pandas:
``pip install 'archcalc[pandas]'``). The names of quantities are the JSON keys everywhere
([json.md](json.md#one-name-per-quantity)).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

from .analysis import analyze as _analyze
from .build import build as _build
from .report import Report
from .spec import Spec, SpecError, load as _load

# check.py, fit.py and teach/ are imported when their function runs, not by `import archcalc`
# (archcalc/__init__.py keeps archcalc.check and archcalc.fit the functions when they are).
if TYPE_CHECKING:
    from .fit import Fit
    from .graph import Graph
    from .teach.answer import Verdict


def load(spec: str | os.PathLike[str], variant: str | None = None) -> Spec:
    """The spec named ``spec``: a bundled network (``"vgg16"``, ``"resnet101"``: see
    `bundled_names()`) or a YAML file. ``variant`` picks a member of the family a file declares
    under ``variants:`` (the first member without it). Raises `SpecError`."""
    return _load(os.fspath(spec), variant=variant)


def _spec(spec) -> Spec:
    if isinstance(spec, Spec):
        return spec
    if isinstance(spec, (str, os.PathLike)):
        return load(spec)
    raise TypeError(f"a spec is a Spec, a bundled name or a path, not {type(spec).__name__}")


def analyze(spec: Spec | str | os.PathLike[str], *, input_shape: Sequence[int] | None = None, batch: int = 1,
            dtype: str = "fp32", strict: bool = False, profile: str = "pytorch") -> Report:
    """The analysis of ``spec``, what `archcalc table` prints: a `Report` with one `Row` per
    layer (``report.rows``; ``report.find(path)``) and the `Totals` (``report.totals``, and
    ``report.aux_totals`` for training-only aux branches).

    ``input_shape`` analyses the spec at another input (``(3, 227, 227)``); ``batch`` and ``dtype``
    (``fp32``, ``fp16``, ``bf16``, ``int8``) scale only the byte figures; ``strict`` makes a
    non-integer output size an error; ``profile`` names the framework whose memory model applies
    (``pytorch``, the default; ``archcalc.profiles.PROFILES`` lists them). Raises `SpecError`."""
    s = _spec(spec)
    return _analyze(s, input_shape=_input_shape(input_shape, s), batch=batch, dtype=dtype, strict=strict,
                    profile=profile)


def _input_shape(shape, spec: Spec) -> tuple | None:
    # Checked here as spec.py checks a spec's `input:`: a string, floats or bools would otherwise fail
    # (or pass) deep inside the analysis.
    if shape is None:
        return None
    from .shape import ShapeError, parse_shape

    try:
        dims = parse_shape(shape) if isinstance(shape, str) else tuple(shape)
    except (ShapeError, TypeError):
        dims = ()
    if len(dims) not in (1, 3) or any(isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in dims):
        raise SpecError(f"input_shape must be (C, H, W) or (N,) with positive integers, got {shape!r}", file=spec.file)
    return dims


@dataclass(frozen=True)
class Checked:
    """What `check` found: every expected number of the spec's ``expect:`` block with the number
    archcalc computes (`archcalc check SPEC -v`)."""

    name: str
    file: str
    outcomes: tuple  # of check.Outcome: case, where, key, expected, actual, line; .ok

    @property
    def ok(self) -> bool:
        """True when every expected number is reproduced (also when the spec expects none)."""
        return all(o.ok for o in self.outcomes)

    @property
    def failures(self) -> list:
        """The outcomes whose number is not reproduced."""
        return [o for o in self.outcomes if not o.ok]

    def to_dict(self) -> dict:
        """``{"name", "file", "ok", "outcomes": [{"case", "where", "key", "expected", "actual", "ok", "line"}]}``."""
        return {"name": self.name, "file": self.file, "ok": self.ok,
                "outcomes": [{"case": o.case, "where": o.where, "key": o.key, "expected": o.expected,
                              "actual": o.actual, "ok": o.ok, "line": o.line} for o in self.outcomes]}

    def to_dataframe(self):
        """One row per expected number, the columns of `to_dict`'s outcomes (needs pandas)."""
        from .frame import dataframe

        return dataframe(self.to_dict()["outcomes"], ["case", "where", "key", "expected", "actual", "ok", "line"])


def check(spec: Spec | str | os.PathLike[str]) -> Checked:
    """Compare every number of ``spec``'s ``expect:`` block with archcalc's, as `archcalc check`
    does (each case at its own ``input:`` and ``defaults:``). A family file's other members are
    checked by loading each: ``check(load(path, variant=name))``. Raises `SpecError` for bad
    input, including an ``expect:`` key that names no layer or quantity."""
    from .check import check as check_spec

    s = _spec(spec)
    return Checked(s.name, s.file, tuple(check_spec(s)))


def answer(spec: Spec | Report | str | os.PathLike[str], layer: str, quantity: str, value: str, *,
           input_shape: Sequence[int] | None = None, batch: int = 1, dtype: str = "fp32") -> Verdict:
    """Judge a student's ``value`` for the ``quantity`` of ``layer``, as `archcalc answer` does:
    a `Verdict` with ``ok``, the ``reply`` and the ``arithmetic``.

    ``layer``: a path or name, a block or branch, a range ``conv1..pool2`` or ``total``;
    ``quantity``: a JSON key (``out``, ``params``, ``macs``, ``flops``, ``out_bytes``, ``rf`` ...) or
    ``memory``, ``saved``, ``shape``; ``value`` as written by hand (``55x55x96``, ``35K``,
    ``0.7 GFLOP``, ``784 KB``). A `Report` is judged as it is; a spec is analysed first with
    ``input_shape``, ``batch`` and ``dtype``. Raises `SpecError` for a bad spec and
    ``TeachError`` (a ``ValueError``) for an unknown layer or quantity or an unreadable value."""
    from .teach import TeachError
    from .teach.answer import check_answer

    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    for name, text in (("layer", layer), ("quantity", quantity), ("value", value)):
        if not isinstance(text, str):
            raise TeachError(f"{name} must be a string, got {text!r}")
    report = spec if isinstance(spec, Report) else analyze(spec, input_shape=input_shape, batch=batch, dtype=dtype)
    return check_answer(report, layer, quantity, value)


def fit(spec: Spec | str | os.PathLike[str], *, batch: int = 32, gpu: str | None = None, memory: int | str | None = None,
        optimizer: str = "sgd", dtype: str = "fp32", train: bool = True, cuda: bool = True,
        input_shape: Sequence[int] | None = None) -> Fit:
    """The GPU memory of one training step (or, ``train=False``, an inference pass) of ``spec`` at
    ``batch``, as `archcalc fit` computes it (docs/fit.md): a `Fit` with ``peak_bytes``, the
    itemised ``items``, and with a device ``fits`` and ``max_batch``.

    The device: ``gpu`` (a card of `archcalc gpus`) or ``memory`` (bytes, or ``"24GiB"``);
    neither gives the peak alone. ``optimizer``: ``sgd``, ``momentum``, ``adam``, ``adamw``;
    ``dtype``: ``fp32``, ``fp16``, ``bf16`` or ``mixed`` (fp16 activations, fp32 master weights);
    ``cuda=False`` counts tensor bytes only (no CUDA context, cuDNN workspace or allocator
    rounding). Raises `SpecError` for a bad spec, ``ValueError`` for an unknown card, size,
    optimizer or dtype."""
    # `from . import fit` would be the function: archcalc.fit is one
    from .fit import ACTIVATION_DTYPE, CUDA, EXACT, fit as fit_report
    from .gpus import find
    from .units import parse_bytes

    if gpu is not None and memory is not None:
        raise ValueError("give gpu or memory, not both")
    capacity = find(gpu).memory if gpu is not None else parse_bytes(memory) if isinstance(memory, str) else memory
    if capacity is not None and (isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1):
        raise ValueError(f"memory must be a positive number of bytes or a size such as '24GiB', got {memory!r}")
    if dtype not in ACTIVATION_DTYPE:
        raise ValueError(f"unknown dtype {dtype!r}; known: {', '.join(ACTIVATION_DTYPE)}")
    report = analyze(spec, input_shape=input_shape, batch=batch, dtype=ACTIVATION_DTYPE[dtype])
    return fit_report(report, batch=batch, capacity=capacity, optimizer=optimizer, dtype=dtype, train=train,
                      constants=CUDA if cuda else EXACT)


def build(spec: Spec | Graph | str | os.PathLike[str], framework: str = "torch", **options: Any) -> Any:
    """A runnable model of ``spec`` in a framework, its layers the spec's rows in order, with the
    parameters archcalc counts: for ``torch`` (``pip install 'archcalc[torch]'``) a
    ``torch.nn.Module``; for ``jax`` ``Built(apply, variables)``, a jitted function and its
    parameters (docs of ``archcalc/build/jax.py``). Options (both): ``input_shape``, ``aux=True``
    (build the training-only aux branches too); torch: ``dropout="module"`` (``nn.Dropout`` instead
    of ``torch.native_dropout``, the fused kernel CUDA runs); jax: ``seed``, ``abstract=True``
    (shapes only, nothing allocated). Raises `BuildError` (a `SpecError`) for an unknown framework
    or a layer type it cannot build."""
    return _build(os.fspath(spec) if isinstance(spec, os.PathLike) else spec, framework, **options)


__all__ = ["load", "analyze", "check", "answer", "fit", "build", "Checked"]
