"""``stfusion bench``: methods on named cases with one protocol (docs/commands/bench.md)."""

from __future__ import annotations

from collections.abc import Sequence

import click

from stfusion.cli.options import multi_pair_option, overwrite_option, params_option
from stfusion.cli.progress import console
from stfusion.errors import InvalidParameterError


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
    type=click.Path(),
    default=None,
    help="Output folder (tables, figures, index.html).",
)
@click.option(
    "--cases-file",
    type=click.Path(),
    default=None,
    help="TOML file with your own cases ([cases.NAME] tables; docs/commands/bench.md).",
)
@click.option(
    "--data-dir",
    type=click.Path(),
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
    list_cases: bool,
    overwrite: bool,
) -> None:
    """Run methods on named cases with one protocol; write tables, figures and a report."""
    from stfusion.bench import parse_bench_params, run_bench
    from stfusion.cases import load_cases_file, named_cases

    known = named_cases(data_dir)
    if cases_file:
        known.update(load_cases_file(cases_file))
    if list_cases:
        for c in known.values():
            click.echo(f"{c.name:<18} {len(c.pairs)} pair(s) -> {c.target_date}  {c.description}")
        return
    if out is None:
        raise click.UsageError("give --out DIR (or --list).")
    if cases == "all":
        chosen = [c for n, c in known.items() if not n.startswith("sample-")] or list(
            known.values()
        )
    else:
        names = [n.strip() for n in cases.split(",") if n.strip()]
        missing = [n for n in names if n not in known]
        if missing:
            raise InvalidParameterError(
                f"unknown case(s) {', '.join(missing)}; available: {', '.join(known)} "
                "(--data-dir or --cases-file for more)."
            )
        chosen = [known[n] for n in names]
    method_list = (
        _loadable_methods()
        if methods == "all"
        else [m.strip() for m in methods.split(",") if m.strip()]
    )
    con = console(stderr=True)
    with con.status("starting") as status:
        result = run_bench(
            chosen,
            method_list,
            out,
            params=parse_bench_params(params),
            overwrite=overwrite,
            figures=not no_figures,
            progress=lambda msg: status.update(msg),
            multi_pair=multi_pair,
            warmup=warmup,
        )
    click.echo(result["summary"])
    listed = "metrics.csv, runs.csv, summary.md, index.html" + ("" if no_figures else ", figures/")
    click.echo(
        f"wrote {str(out).rstrip('/') or '/'}/ ({listed}) in {result['total_seconds']:.0f} s"
    )


def _loadable_methods() -> list[str]:
    """``--methods all``: every method that loads; a broken plugin is named and left out."""
    from stfusion.methods import loadable

    found, broken = loadable()
    for problem in broken:
        click.echo(f"Warning: {problem} Left out of --methods all.", err=True)
    return list(found)
