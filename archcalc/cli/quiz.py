"""`archcalc quiz SPEC`: the lecture's questions for a network, asked and judged one by one, with a score."""
from __future__ import annotations

import json
import random

import click

from . import fail, shape_option


@click.command("quiz")
@click.argument("spec")
@click.option("--seed", type=int, help="Choose the questions reproducibly (default: a random seed, printed).")
@click.option("--count", default=5, show_default=True, type=click.IntRange(min=1), help="Number of questions.")
@click.option("--answers-key", "key", is_flag=True, help="Print the questions with answers as Markdown and exit.")
@click.option("--input", "input_shape", callback=shape_option, metavar="CxHxW", help="Override the spec's input shape.")
@click.option("--variant", metavar="NAME", help="A member of the family a spec file declares under variants:.")
@click.option("--format", "fmt", default="md", show_default=True, type=click.Choice(["md", "json"]),
              help="With --answers-key: Markdown, or JSON (the questions, answers, exact figures, arithmetic).")
def command(spec, seed, count, key, input_shape, variant, fmt):
    """Ask the lecture's questions about SPEC (output volumes, parameters, MACs, receptive fields),
    judge each answer as `archcalc answer` does, explain it, and give a score. q stops."""
    from .. import analyze, load
    from ..spec import SpecError
    from ..teach import TeachError
    from ..teach.quiz import answers_key, answers_key_dict, make_quiz, run, score_line

    if fmt == "json" and not key:
        fail("--format json is for --answers-key (the quiz itself is asked in the terminal)")
    try:
        report = analyze(load(spec, variant=variant), input_shape=input_shape)
    except SpecError as e:
        fail(e)
    if seed is None:
        seed = random.randrange(10_000)
    try:
        questions = make_quiz(report, seed=seed, count=count)
    except TeachError as e:
        fail(e)
    if key and fmt == "json":
        click.echo(json.dumps(answers_key_dict(report, questions, spec=spec, seed=seed, count=count), indent=2))
        return
    if key:
        click.echo(answers_key(report, questions, spec=spec, seed=seed, count=count), nl=False)
        return
    click.echo(f"archcalc quiz: {report.name}, {len(questions)} questions (seed {seed}; "
               f"--seed {seed} asks them again)")
    click.echo("Answer as on paper: 55x55x96 or 96x55x55, 34,944 or 35K, 1.1e8, 1.2 MB. Empty: skip; q: stop.")

    def ask(prompt: str):
        try:
            return click.prompt(prompt, default="", show_default=False, prompt_suffix="")
        except click.Abort:
            click.echo()
            return None

    right, asked = run(report, questions, ask, click.echo)
    click.echo(f"\n{score_line(right, asked, len(questions))}")
