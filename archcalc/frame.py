"""Records as a pandas DataFrame, for the ``.to_dataframe()`` of the API's objects. pandas is an
optional dependency (``pip install 'archcalc[pandas]'``): imported only here, only when asked."""
from __future__ import annotations


def dataframe(records: list[dict], columns: list[str] | None = None):
    """A ``pandas.DataFrame`` of ``records`` (dicts keyed by the JSON names), columns in order."""
    try:
        import pandas
    except ImportError:
        raise ImportError("to_dataframe() needs pandas, which is not installed: "
                          "pip install 'archcalc[pandas]' (or pip install pandas)") from None
    return pandas.DataFrame.from_records(records, columns=columns)
