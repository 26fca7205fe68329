"""archcalc: a static CNN-architecture analyzer.

    >>> import archcalc
    >>> report = archcalc.analyze(archcalc.load("vgg16"))
    >>> report.totals.params
    138357544
"""
from .analysis import analyze, cost
from .build import BuildError, build
from .expand import expand
from .graph import Graph, Node
from .report import Report, Row, collapse, to_dict
from .spec import Spec, SpecError, bundled_names, load, parse
from .units import DTYPE_BYTES
# The documented API (docs/api.md) last: its functions take the place of the names above.
import sys as _sys  # noqa: E402

from . import api as _api  # noqa: E402
from .api import Checked, analyze, answer, build, check, fit, load  # noqa: E402, F811


class _Package(type(_api)):
    """archcalc.check and archcalc.fit are the API's functions, and check.py and fit.py modules of
    the package, imported only when used; the import system then sets the module as the package's
    attribute, which these properties ignore: the names stay the functions."""

    check = property(lambda self: _api.check, lambda self, module: None)
    fit = property(lambda self: _api.fit, lambda self, module: None)


_sys.modules[__name__].__class__ = _Package

__all__ = ["analyze", "build", "BuildError", "expand", "cost", "load", "parse", "bundled_names", "collapse", "to_dict",
           "Graph", "Node", "Report", "Row", "Spec", "SpecError", "DTYPE_BYTES", "check", "answer", "fit", "Checked"]
__version__ = "0.1.0"
