"""The lecture companion: checking a student's answer (``answer``), the derivation with the numbers
plugged in (``explain``) and an interactive quiz (``quiz``), all read off a report.

- ``target.py``: what a question is about (a layer, a block, a range ``conv1..pool2`` or the whole
  network) and the exact figures of it, under the JSON keys; quantity names and their aliases.
- ``explain.py``: the derivation of each figure, from the rule's steps and the row's memory.
- ``answer.py``: reading what a student writes and judging it against the exact figure.
- ``quiz.py``: the lecture's questions for a network, generated from its rows, and the answer key.

The command-line modules (``archcalc/cli/answer.py``, ``explain.py``, ``quiz.py``) only parse
options, call these and print; see docs/teaching.md.
"""


class TeachError(ValueError):
    """Bad input to a teaching command: an unknown layer or quantity, an answer that cannot be read."""
