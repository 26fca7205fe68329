"""The stable JSON interface (docs/json.md). Exact integers; columns do not apply."""
from __future__ import annotations

import json

from ..report import to_dict


def render(report, rows, columns, **_) -> str:
    return json.dumps(to_dict(report, list(rows)), indent=2) + "\n"
