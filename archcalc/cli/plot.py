"""`archcalc plot SPEC --out F.png|svg` (per-layer bars) and `archcalc plot --compare SPEC ... --out F`
(accuracy vs MACs). Loads and analyzes; the drawing is plot.py's. No arithmetic."""
from __future__ import annotations

import click

from . import fail, shape_option
from ..units import DTYPE_BYTES


@click.command("plot")
@click.argument("specs", nargs=-1, required=True)
@click.option("--out", required=True, metavar="FILE.png|FILE.svg", help="Where to write the picture (PNG or SVG).")
@click.option("--compare", is_flag=True,
              help="One chart of several networks: top-1 accuracy (each spec's published accuracy:) against MACs, "
                   "bubble area = parameters.")
@click.option("--input", "input_shape", callback=shape_option, metavar="CxHxW", help="Override the spec's input shape.")
@click.option("--batch", default=1, show_default=True, type=click.IntRange(min=1), help="Batch size (scales the MB panel).")
@click.option("--dtype", default="fp32", show_default=True, type=click.Choice(list(DTYPE_BYTES)))
@click.option("--depth", type=click.IntRange(min=1), help="Collapse blocks deeper than this into their totals (one bar each).")
@click.option("--variant", metavar="NAME", help="A member of the family a spec file declares under variants:.")
@click.option("--panels", default="out_bytes,params,macs", show_default=True, metavar="KEY,...",
              help="The per-layer panels, named as the table's columns (out_bytes, saved_bytes, out_elems, params, "
                   "macs, flops, ...).")
@click.option("--log", is_flag=True, help="Log scale on the per-layer panels (small layers visible; shares less so).")
def command(specs, out, compare, input_shape, batch, dtype, depth, variant, panels, log):
    """Draw SPEC's per-layer activation memory, parameters and MACs, or (--compare) several networks.

    Needs matplotlib: pip install 'archcalc[plot]'.
    """
    from .. import analyze, load
    from ..plot import PlotError, compare_chart, image_format, layer_chart, save
    from ..report import collapse
    from ..spec import SpecError

    try:
        image_format(out)
        if compare:
            if variant or depth:
                raise click.UsageError("--variant and --depth are for one network; --compare takes member names")
            items = []
            for name in specs:
                spec = load(name)
                # analysed first: a broken spec's own error (file:line: layer) beats "no accuracy:"
                report = analyze(spec, input_shape=input_shape, batch=batch, dtype=dtype)
                if not spec.accuracy:
                    raise SpecError(f"{spec.name}: no accuracy: key (published top-1 with its source), "
                                    "so it cannot be placed on the accuracy chart", file=spec.file,
                                    line=spec.lines.get("name"))
                items.append((report, spec.accuracy))
            fig = compare_chart(items)
        else:
            if len(specs) != 1:
                raise click.UsageError("one SPEC per picture; several networks go on one chart with --compare")
            report = analyze(load(specs[0], variant=variant), input_shape=input_shape, batch=batch, dtype=dtype)
            keys = _panels(panels)
            fig = layer_chart(report, collapse(report, depth) if depth else list(report.rows), keys, log=log)
        save(fig, out)
    except (SpecError, PlotError) as e:
        fail(e)
    except OSError as e:
        fail(f"{out}: {e.strerror or e}")
    click.echo(f"wrote {out}")
    if compare:
        for report, acc in items:
            top5 = f", top-5 {acc['top5']}" if "top5" in acc else ""
            click.echo(f"  {report.name}: top-1 {acc['top1']}{top5} ({acc['source']})")


def _panels(text: str) -> tuple[str, ...]:
    from ..formats.columns import COLUMNS

    keys = tuple(k.strip() for k in text.split(",") if k.strip())
    bad = [k for k in keys if k not in COLUMNS or not COLUMNS[k].numeric or k in ("rf", "jump")]
    if bad or not keys:
        numeric = [k for k, c in COLUMNS.items() if c.numeric and k not in ("rf", "jump")]
        raise click.BadParameter(f"{bad[0] if bad else text!r} is not a per-layer quantity; "
                                 f"known: {', '.join(numeric)}", param_hint="--panels")
    return keys
