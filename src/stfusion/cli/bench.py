"""``stfusion bench``: methods on named cases with one protocol (docs/commands/bench.md)."""

from __future__ import annotations

import difflib
import os
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import click

from stfusion.cli.options import PATH, multi_pair_option, overwrite_option, params_option
from stfusion.cli.progress import console
from stfusion.errors import InvalidParameterError

if TYPE_CHECKING:  # cases is imported when the command runs
    from stfusion.cases import Case


@click.command()
@click.option(
    "--cases",
    default="all",
    show_default=True,
    help="Comma-separated case names (see --list), or 'all'.",
)
@click.option(
    "--methods",
    default="all",
    show_default=True,
    help="Comma-separated methods, or 'all'. The baselines are always included.",
)
@click.option(
    "--out",
    "-o",
    type=PATH,
    default=None,
    help="Output folder (tables, figures, index.html).",
)
@click.option(
    "--cases-file",
    type=PATH,
    default=None,
    help="TOML file with your own cases ([cases.NAME] tables, not named like a named case; "
    "docs/commands/bench.md).",
)
@click.option(
    "--data-dir",
    type=click.Path(exists=True, file_okay=False, readable=False),
    default=None,
    help="Folder of the named cases' data (default: $STFUSION_DATA or shared/data "
    "beside the source tree).",
)
@params_option("METHOD.NAME=VALUE", "Method parameter, e.g. starfm.window=31.")
@multi_pair_option(
    "none",
    "One-pair methods (fsdaf, fitfc, fsdaf2, the one-pair deep methods) on cases with several "
    "pairs: vip runs VIPSTF over them (rows METHOD+vip; METHOD.NAME=VALUE parameters go to "
    "the method); none skips them there.",
)
@click.option(
    "--warmup",
    is_flag=True,
    help="Run every method once first, untimed, on the smallest case with one pair and the "
    "smallest with several, so the seconds column is warm (kernels compiled, weights read).",
)
@click.option("--no-figures", is_flag=True, help="Tables only (faster).")
@click.option(
    "--figure-format",
    "figure_formats",
    type=click.Choice(["png", "pdf", "svg"]),
    multiple=True,
    help="Also save the figures in this format (repeat for several): pdf or svg give vector "
    "axes and text for a paper. PNG is always written (index.html shows it).",
)
@click.option(
    "--dpi",
    type=click.IntRange(min=20, max=1200),
    default=None,
    help="Resolution of the figures (dots per inch); default screen size (90 quicklooks, 80 "
    "scatter plots); 300 for print.",
)
@click.option(
    "--save-predictions",
    is_flag=True,
    help="Also write every prediction as predictions/CASE/METHOD.tif (float32 in the case's "
    "scaled units, NaN nodata, the case's fine grid), to check with `stfusion evaluate` or "
    "reuse.",
)
@click.option("--list", "list_cases", is_flag=True, help="List the available cases and exit.")
@overwrite_option(
    "Replace an earlier bench output in --out (only that: a folder holding anything "
    "else is refused; docs/commands/bench.md)."
)
def bench(
    cases: str,
    methods: str,
    out: str | None,
    cases_file: str | None,
    data_dir: str | None,
    params: Sequence[str],
    multi_pair: str,
    warmup: bool,
    no_figures: bool,
    figure_formats: Sequence[str],
    dpi: int | None,
    save_predictions: bool,
    list_cases: bool,
    overwrite: bool,
) -> None:
    """Run methods on named cases with one protocol; write tables, figures and a report."""
    from stfusion.bench import parse_bench_params, run_bench
    from stfusion.bench_report import FigureStyle

    if no_figures and (figure_formats or dpi):
        raise click.UsageError("--figure-format and --dpi need figures: leave out --no-figures.")

    known = _known_cases(data_dir, cases_file)
    if list_cases:
        for c in known.values():
            missing = "  (data not found)" if c.missing_files() else ""
            click.echo(
                f"{c.name:<18} {len(c.pairs)} pair(s) -> {c.target_date}  {c.description}" + missing
            )
        return
    if out is None:
        raise click.UsageError("give --out DIR (or --list).")
    chosen = _chosen_cases(cases, known, data_dir)
    if methods == "all":
        method_list = _loadable_methods()
    else:
        method_list = [m.strip() for m in methods.split(",") if m.strip()]
        if not method_list:
            raise click.BadParameter(
                f"{methods!r} names no method; give method names (stfusion methods) or all.",
                param_hint="--methods",
            )
    con = console(stderr=True)
    t0 = time.monotonic()

    def _progress(msg: str) -> None:
        # a spinner on a terminal; in a log, where a spinner shows nothing, a line per run
        if sys.stderr.isatty():
            status.update(msg)
        else:
            click.echo(f"bench: {msg} ({time.monotonic() - t0:.0f} s)", err=True)

    with con.status("starting") as status:
        result = run_bench(
            chosen,
            method_list,
            out,
            params=parse_bench_params(params),
            overwrite=overwrite,
            figures=not no_figures,
            figure_style=FigureStyle(
                dpi, tuple(f for f in dict.fromkeys(figure_formats) if f != "png")
            ),
            progress=_progress,
            multi_pair=multi_pair,
            warmup=warmup,
            predictions=save_predictions,
        )
    click.echo(result["summary"])
    listed = "metrics.csv, runs.csv, summary.md, summary.tex, index.html, run.json" + (
        ("" if no_figures else ", figures/") + (", predictions/" if save_predictions else "")
    )
    click.echo(
        f"wrote {str(out).rstrip('/') or '/'}/ ({listed}) in {result['total_seconds']:.0f} s"
    )
    dropped = result.get("dropped") or {}
    gone = [
        f"{what} {', '.join(dropped[what])}" for what in ("cases", "methods") if dropped.get(what)
    ]
    if gone:
        click.echo(
            f"Note: the earlier output it replaced also held {'; '.join(gone)}, which this run "
            "did not repeat: give them again with --cases/--methods, or keep runs apart "
            "with another --out.",
            err=True,
        )
    if dropped.get("folders"):
        why = {"figures": "--no-figures", "predictions": "no --save-predictions"}
        said = [
            f"{sub}/ ({n} file{'s' * (n != 1)}, {why[sub]})"
            for sub, n in dropped["folders"].items()
        ]
        click.echo(
            f"Note: the earlier output it replaced also held {', '.join(said)}, which this "
            "run did not write again: they are gone; keep runs apart with another --out.",
            err=True,
        )


def _known_cases(data_dir: str | None, cases_file: str | None) -> dict[str, Case]:
    """The named cases and those of ``cases_file``; a user case may not take a named case's
    name (a usage error naming the file): the name would mean other data than documented."""
    from stfusion.cases import NAMED_CASE_NAMES, load_cases_file, named_cases

    known = named_cases(data_dir)
    if cases_file:
        user = load_cases_file(cases_file)
        clash = [n for n in user if n.lower() in NAMED_CASE_NAMES]  # file names may fold case
        if clash:
            raise click.UsageError(
                f"{cases_file}: case {', '.join(clash)} has the name of a named case "
                f"({', '.join(NAMED_CASE_NAMES)}); a user case cannot replace one. Rename it "
                f"in {cases_file}, e.g. [cases.{clash[0]}-mine]."
            )
        known.update(user)
    return known


def _chosen_cases(cases: str, known: dict[str, Case], data_dir: str | None) -> list[Case]:
    """The cases ``--cases`` selects (``all``: the named cases whose data is found, and the
    user's); an empty selection is a usage error."""
    from stfusion.cases import NAMED_CASE_NAMES

    if cases.strip() == "all":
        named = [
            c
            for n, c in known.items()
            if n in NAMED_CASE_NAMES and not n.startswith("sample-") and not c.missing_files()
        ]
        user = [c for n, c in known.items() if n not in NAMED_CASE_NAMES]
        folder = data_dir or os.environ.get("STFUSION_DATA")
        if not named and folder:
            # the data folder was given: benching without its cases would mislead
            raise click.BadParameter(
                f"{folder} holds none of the named cases' data (e.g. "
                "cia_e2starfm/geotiff_50m/); point it at the folder of shared/data/README.md, "
                "or give --cases sample-cia-1pair,sample-cia-2pair for the bundled sample.",
                param_hint="--data-dir" if data_dir else "$STFUSION_DATA",
            )
        return named + user or list(known.values())
    names = [n.strip() for n in cases.split(",") if n.strip()]
    if not names:
        raise click.BadParameter(
            f"{cases!r} names no case; give case names (see --list) or all.",
            param_hint="--cases",
        )
    missing = [n for n in names if n not in known]
    if missing:
        close = [m for n in missing for m in difflib.get_close_matches(n, known, n=1)]
        raise InvalidParameterError(
            f"unknown case(s) {', '.join(missing)}"
            + (f" (did you mean {', '.join(close)}?)" if close else "")
            + f"; available: {', '.join(known)} (--data-dir or --cases-file for more)."
        )
    return [known[n] for n in names]


def _loadable_methods() -> list[str]:
    """``--methods all``: every method that loads; a broken plugin is named and left out."""
    from stfusion.methods import loadable

    found, broken = loadable()
    for problem in broken:
        click.echo(f"Warning: {problem} Left out of --methods all.", err=True)
    return list(found)
