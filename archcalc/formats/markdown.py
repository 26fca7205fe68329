"""GitHub-flavoured Markdown table with the totals as a list underneath."""
from __future__ import annotations

from .columns import note_lines, summary_lines, warning_lines


def render(report, rows, columns, **_) -> str:
    lines = [f"### {report.name}", ""]
    if report.source:
        lines += [f"Source: {report.source}", ""]
    lines.append("| " + " | ".join(c.title for c in columns) + " |")
    lines.append("|" + "|".join("---:" if c.numeric else ":---" for c in columns) + "|")
    for r in rows:
        lines.append("| " + " | ".join(c.show(c.value(r, report)).replace("|", "\\|") for c in columns) + " |")
    lines.append("")
    lines += [f"- {s}" for s in summary_lines(report) + note_lines(report) + warning_lines(report)]
    return "\n".join(lines) + "\n"
