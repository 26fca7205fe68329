"""The lecture's questions for a network, generated from its rows by templates.

The lecture questions (CS231n lecture 9 on AlexNet and VGG, EECS 498 lecture 8), each asked of the
network at hand when it has such a layer:

- the output volume after the first conv, and its parameters, its memory (elements) and its MACs;
- the output volume after the first pool, and its parameters (0);
- the receptive field of three stacked 3x3 convs at stride 1 (VGG's argument; 7), when the
  network has such a stack;
- the MACs of one branch of the first Inception-style module (a concat of branches).

Beyond those, any conv or fc's output, parameters and MACs, a pool's output, a layer's receptive
field, and the network's total parameters and MACs. A quiz of N questions takes N lecture
questions (a random choice when there are more) and fills up with the others, asked in network
order. ``seed`` makes the choice reproducible; every question is a (LAYER, QUANTITY) pair, so
``archcalc answer`` checks the same thing.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable

from ..report import Report, Row
from ..shape import fmt_shape
from . import TeachError
from .answer import correct_text, judge
from .explain import derivation
from .target import exact_value, resolve

DEFAULT_COUNT = 5


@dataclass(frozen=True)
class Question:
    layer: str  # LAYER as `archcalc answer` takes it: a path, a block's path or FIRST..LAST
    quantity: str  # a JSON key
    text: str  # the question as asked
    topic: str  # a short title: "conv1: output volume"
    lecture: bool  # one of the lecture's own questions
    position: int  # the first row's index: questions are asked in network order
    order: int  # at one position, the order of the templates (output before parameters)


# ---------------------------------------------------------------- describing layers


def _input_of(r: Row):
    parts = r.cost.parts
    if not parts:
        return None
    x = parts[0].x
    return x if isinstance(x, tuple) and all(isinstance(d, int) for d in x) else None


def _on(r: Row) -> str:
    x = _input_of(r)
    return f", on its {fmt_shape(x)} input" + (" (CxHxW)" if x is not None and len(x) == 3 else "") if x else ""


def _window_words(r: Row) -> str:
    wh, ww = r.cost.window
    k = f"{wh.k}x{ww.k}"
    s = f"{wh.s}" if wh.s == ww.s else f"{wh.s}x{ww.s}"
    pads = {wh.pad_lo, wh.pad_hi, ww.pad_lo, ww.pad_hi}
    p = f"pad {pads.pop()}" if len(pads) == 1 else f"pad {wh.pad_lo}/{wh.pad_hi} x {ww.pad_lo}/{ww.pad_hi}"
    d = f", dilation {wh.d}" if wh.d != 1 else ""
    return f"{k}, stride {s}, {p}{d}"


def describe(r: Row) -> str:
    """'conv1: 96 filters 11x11, stride 4, pad 0, on its 3x227x227 input (CxHxW)'."""
    if r.type in ("conv", "dwconv") and r.cost.window is not None:
        g = r.args.get("g", 1) if r.type == "conv" else None
        groups = f", {g} groups" if isinstance(g, int) and g > 1 else (", depthwise" if r.type == "dwconv" else "")
        return f"{r.path}: {r.out[0]} filters {_window_words(r)}{groups}{_on(r)}"
    if r.type in ("maxpool", "avgpool") and r.cost.window is not None:
        ceil = ", ceil mode (a partial window at the edge counts)" if r.args.get("ceil") else ""
        return f"{r.path}: {r.type} {_window_words(r)}{ceil}{_on(r)}"
    if r.type == "fc":
        return f"{r.path}: fully connected, {r.out[0]:,} outputs{_on(r)}"
    return f"{r.path} ({r.type}){_on(r)}"


# ---------------------------------------------------------------- finding the lecture's layers


def _is_conv3(r: Row) -> bool:
    w = r.cost.window
    return (r.type == "conv" and w is not None and all(a.k == 3 and a.s == 1 and a.d == 1 for a in w)
            and not r.aux)


def stacked_3x3(report: Report) -> list[Row] | None:
    """The first three 3x3 stride-1 convs in a chain (pointwise rows between them allowed)."""
    run: list[Row] = []
    last = None  # the path the next conv of the run must read
    for r in report.rows:
        if _is_conv3(r) and (not run or r.inputs == (last,)):
            run.append(r)
            last = r.path
            if len(run) == 3:
                return run
        elif run and r.cost.window is None and r.inputs == (last,) and r.out == run[-1].out:
            last = r.path  # a separate ReLU or BN row between the convs
        else:
            run = [r] if _is_conv3(r) else []
            last = r.path if run else None
    return None


def concat_branches(report: Report) -> list[str]:
    """The branch paths of the first module whose branches a concat merges: those with the most
    rows doing MACs."""
    types = report.scope_types
    branches = [p for p, kind in types.items() if kind == "branch"]
    groups: dict[str, list[str]] = {}
    for p in branches:
        parent = p.rsplit("/", 1)[0] if "/" in p else ""
        groups.setdefault(parent, []).append(p)
    index = {r.path: i for i, r in enumerate(report.rows)}
    for parent, paths in sorted(groups.items(), key=lambda kv: min(index.get(_first(report, p), 10**9) for p in kv[1])):
        rows = {p: [r for r in report.rows if r.path.startswith(p + "/")] for p in paths}
        if any(not rs or rs[0].aux for rs in rows.values()):
            continue
        lasts = {rs[-1].path for rs in rows.values()}
        merge = next((r for r in report.rows if r.type == "concat" and lasts <= set(r.inputs)), None)
        with_macs = [p for p in paths if sum(r.macs for r in rows[p])]
        if merge is not None and len(with_macs) >= 2:
            # a branch of several convs (reduce, then 3x3) asks more than a lone 1x1
            most = max(sum(1 for r in rows[p] if r.macs) for p in with_macs)
            return [p for p in with_macs if sum(1 for r in rows[p] if r.macs) == most]
    return []


def _first(report: Report, path: str) -> str:
    for r in report.rows:
        if r.path.startswith(path + "/"):
            return r.path
    return ""


# ---------------------------------------------------------------- the questions

_ASK = {
    "out": "What is the output volume size?",
    "params": "How many parameters does it have?",
    "out_elems": "How many numbers does its output hold (the slides' \"memory\", in elements)?",
    "macs": "How many multiply-adds (MACs) does it take for one image?",
    "rf": "How large is the receptive field of one of its outputs on the network input (pixels per side)?",
}
_TOPIC = {"out": "output volume", "params": "parameters", "out_elems": "memory", "macs": "MACs",
          "rf": "receptive field"}
_ORDER = {"out": 0, "params": 1, "out_elems": 2, "macs": 3, "rf": 4}


def _layer_question(report: Report, r: Row, key: str, lecture: bool) -> Question:
    return Question(r.path, key, f"{describe(r)}.\n{_ASK[key]}", f"{r.path}: {_TOPIC[key]}", lecture,
                    report.rows.index(r), _ORDER[key])


def all_questions(report: Report, rng: random.Random) -> tuple[list[Question], list[Question]]:
    """(the lecture's questions, the others) for this network."""
    rows = [r for r in report.rows if not r.aux]
    lecture: list[Question] = []
    convs = [r for r in rows if r.type in ("conv", "dwconv") and r.cost.window is not None]
    pools = [r for r in rows if r.type in ("maxpool", "avgpool") and r.cost.window is not None and len(r.out) == 3]
    if convs:
        first = convs[0]
        lecture += [_layer_question(report, first, key, True) for key in ("out", "params", "out_elems", "macs")]
    if pools:
        pool = pools[0]
        lecture += [_layer_question(report, pool, "out", True), _layer_question(report, pool, "params", True)]
    stack = stacked_3x3(report)
    if stack:
        a, b, c = (r.path for r in stack)
        lecture.append(Question(
            f"{a}..{c}", "rf",
            f"{a}, {b} and {c} are three stacked 3x3 convolutions at stride 1"
            f"{_on(stack[0]).replace(' on its ', ' on a ')}.\n"
            f"How large is the receptive field of one {c} output on the input of {a} (pixels per side)?",
            f"{a}..{c}: receptive field of three stacked 3x3 convs", True, report.rows.index(stack[0]), 5))
    branches = concat_branches(report)
    if branches:
        path = rng.choice(branches)
        members = [r for r in report.rows if r.path.startswith(path + "/")]
        parts = "; ".join(f"{r.name}: " + describe(r).split(": ", 1)[1].split(", on its")[0]
                          for r in members if r.macs or r.params)
        name = path.rsplit("/", 1)[-1]
        module = path.rsplit("/", 1)[0] if "/" in path else report.name
        lecture.append(Question(
            path, "macs",
            f"The {name} branch of {module} ({parts}){_on(members[0])}.\n"
            "How many multiply-adds (MACs) does the whole branch take?",
            f"{path}: MACs of a branch", True, report.rows.index(members[0]), 6))

    asked = {(q.layer, q.quantity) for q in lecture}
    others: list[Question] = []
    for r in rows:
        if r.type in ("conv", "dwconv", "fc"):
            keys = ("out", "params", "macs") if r.type != "fc" else ("params", "macs")
            others += [_layer_question(report, r, k, False) for k in keys]
            if r.type != "fc":
                others.append(_layer_question(report, r, "rf", False))
        elif r in pools:
            others += [_layer_question(report, r, "out", False), _layer_question(report, r, "rf", False)]
    others = [q for q in others if (q.layer, q.quantity) not in asked]
    end = len(report.rows)
    others += [
        Question("total", "params", f"How many parameters does {report.name} have in total"
                 + (" (its aux heads left out)?" if report.aux_totals else "?"), "total parameters", False, end, 0),
        Question("total", "macs", f"How many multiply-adds (MACs) does one forward pass of {report.name} take on one "
                 f"{fmt_shape(report.input)} image?", "total MACs", False, end, 1),
    ]
    return lecture, others


def make_quiz(report: Report, *, seed: int, count: int = DEFAULT_COUNT) -> list[Question]:
    """``count`` questions, the lecture's first, in network order; the same for the same seed."""
    if count < 1:
        raise TeachError("a quiz has at least one question")
    rng = random.Random(seed)
    lecture, others = all_questions(report, rng)
    if count <= len(lecture):
        chosen = rng.sample(lecture, count)
    else:
        chosen = lecture + rng.sample(others, min(count - len(lecture), len(others)))
    return sorted(chosen, key=lambda q: (q.position, q.order))


# ---------------------------------------------------------------- asking and the key


def run(report: Report, questions: list[Question], ask: Callable[[str], str | None],
        say: Callable[[str], None]) -> tuple[int, int]:
    """Ask each question with ``ask(prompt)`` (None: the student stopped), judge each answer with
    the ``answer`` logic and ``say`` the judgement and the arithmetic. Returns (right, asked)."""
    right = asked = 0
    for i, q in enumerate(questions, start=1):
        target = resolve(report, q.layer)
        say(f"\nQuestion {i} of {len(questions)}\n{q.text}")
        while True:
            reply = ask("> ")
            if reply is None or reply.strip().lower() in ("q", "quit", "exit"):
                return right, asked
            if not reply.strip():
                verdict = None
                break
            try:
                verdict = judge(report, target, q.quantity, reply)
                break
            except TeachError as e:
                say(f"cannot judge that: {e}. Try again (q to stop).")
        asked += 1
        if verdict is None:
            say(f"skipped: {correct_text(report, target, q.quantity)}\n")
            say("\n".join(derivation(report, target, q.quantity)))
            continue
        right += verdict.ok
        say(verdict.text().rstrip("\n"))
    return right, asked


def score_line(right: int, asked: int, total: int) -> str:
    stopped = f" (stopped after {asked} of {total})" if asked < total else ""
    return f"Score: {right}/{asked}{stopped}"


def answers_key_dict(report: Report, questions: list[Question], *, spec: str, seed: int, count: int) -> dict:
    """The questions with their answers and arithmetic, as data (``--answers-key --format json``):
    per question its LAYER and QUANTITY (what ``archcalc answer`` takes), the question, the answer
    in words, the exact figure and the derivation."""
    items = []
    for i, q in enumerate(questions, start=1):
        target = resolve(report, q.layer)
        items.append({"number": i, "layer": q.layer, "quantity": q.quantity, "topic": q.topic, "lecture": q.lecture,
                      "question": q.text.replace("\n", " "), "answer": correct_text(report, target, q.quantity),
                      "exact": exact_value(target, q.quantity), "arithmetic": derivation(report, target, q.quantity),
                      "check": f"archcalc answer {spec} {q.layer} {q.quantity} ANSWER"})
    return {"spec": spec, "name": report.name, "source": report.source, "seed": seed, "count": count,
            "command": f"archcalc quiz {spec} --seed {seed} --count {count}", "questions": items}


def answers_key(report: Report, questions: list[Question], *, spec: str, seed: int, count: int) -> str:
    """The questions with their answers and arithmetic, as Markdown for a teacher."""
    key = answers_key_dict(report, questions, spec=spec, seed=seed, count=count)
    lines = [f"# archcalc quiz: {report.name}", "",
             f"{report.source}" if report.source else "",
             "",
             f"{len(questions)} questions, seed {seed}: the same as `{key['command']}`.",
             "HxWxC and CxHxW are both right for a shape; a rounded number is right when the exact figure rounds to "
             "it (35K for 34,944); parameters are right with or without the biases.", ""]
    for item in key["questions"]:
        lines += [f"## {item['number']}. {item['topic']}", "", item["question"], "",
                  f"**Answer:** {item['answer']}", "", "```text",
                  *item["arithmetic"], "```", "",
                  f"Check a student's answer: `{item['check']}`", ""]
    return "\n".join(lines).replace("\n\n\n", "\n\n")
