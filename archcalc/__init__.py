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

__all__ = ["analyze", "build", "BuildError", "expand", "cost", "load", "parse", "bundled_names", "collapse", "to_dict",
           "Graph", "Node", "Report", "Row", "Spec", "SpecError", "DTYPE_BYTES"]
__version__ = "0.1.0"
