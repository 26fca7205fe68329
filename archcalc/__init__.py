"""archcalc: a static CNN-architecture analyzer.

    >>> import archcalc
    >>> report = archcalc.analyze(archcalc.load("vgg16"))
    >>> report.totals.params
    138357544
"""
from .engine import DTYPE_BYTES, analyze
from .report import Report, Row, collapse, to_dict
from .spec import Spec, SpecError, bundled_names, load, parse

__all__ = ["analyze", "load", "parse", "bundled_names", "collapse", "to_dict", "Report", "Row", "Spec",
           "SpecError", "DTYPE_BYTES"]
__version__ = "0.1.0"
