"""``stfusion series``: fuse every coarse date of a season (see docs/commands/series.md)."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

from stfusion.cli.options import (
    PATH,
    band_options,
    mask_options,
    method_option,
    multi_pair_option,
    overwrite_option,
    params_option,
    quiet_option,
    scale_options,
    variable_option,
    window_options,
)
from stfusion.cli.progress import Progress, console
from stfusion.tiling import reporting_stages

if TYPE_CHECKING:
    from stfusion.series import SeriesConfig

#: Exit code when the run finished but some dates failed (inputs unreadable, method errors).
EXIT_SOME_FAILED = 3
#: Exit code when another run holds the output folder's lock (nothing was done).
EXIT_LOCKED = 4
#: Exit code when the run wrote no output for any target date, none failing (every target
#: skipped: e.g. every pair fully masked); 1, as for a run that cannot start.
EXIT_NO_OUTPUT = 1


class _Logged(logging.Handler):
    """The stfusion warnings the log has shown during a run: a note that says the same
    is not printed a second time."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _print_summary(result: Any, quiet: bool, logged: Sequence[str] = ()) -> None:
    from rich.table import Table

    from stfusion.series.records import KEPT_REASON, OFF_STEP_REASON, OUTSIDE_REASON

    counts = result.counts()
    kept = sum(1 for r in result.records if r.reason.startswith(KEPT_REASON))
    outside = sum(1 for r in result.records if r.reason.startswith(OUTSIDE_REASON))
    off_step = sum(1 for r in result.records if r.reason.startswith(OFF_STEP_REASON))
    of_these = [f"{kept} kept from an earlier run"] if kept else []
    for n, where in ((outside, "outside --date-range"), (off_step, "off the --every step")):
        of_these += [f"{n} {where}, current, from an earlier run"] if n else []
    made = counts["predicted"] + counts["gap-filled"]  # what "of these" counts (a trial)
    click.echo(
        f"{result.out_dir}: {counts['predicted']} predicted, {counts['gap-filled']} gap-filled"
        + (f" (of these {made}: {'; '.join(of_these)})" if of_these else "")
        + f", {counts['skipped']} skipped, {counts['failed']} failed in {result.seconds:.1f} s "
        f"(summary: {result.summary_path.name}"
        + (f", cube: {result.cube_path.name}" if result.cube_path else "")
        + ")"
    )
    for note in result.notes:  # also with -q: an image used unmasked is worth a line
        if not any(m.endswith(note) for m in logged):
            click.echo(f"note: {note}", err=True)
    if quiet:
        return
    odd = [r for r in result.records if r.status in ("skipped", "failed")]
    if not odd:
        return
    table = Table(title="dates not predicted", show_lines=False)
    for col in ("date", "status", "reason"):
        table.add_column(col, overflow="fold")
    for r in sorted(odd, key=lambda r: r.date):
        table.add_row(r.date.isoformat(), r.status, r.reason)
    console().print(table)


def _check_date_range(text: str | None) -> None:
    """A date range that cannot be read, or that ends before it starts, is a usage error
    (exit status 2), found before anything is looked at."""
    from stfusion.dates import parse_date_range
    from stfusion.errors import STFusionError

    try:
        parse_date_range(text, option="--date-range")
    except STFusionError as exc:
        raise click.BadParameter(str(exc), param_hint="--date-range") from None


def _config(opts: dict[str, Any]) -> SeriesConfig:
    """The :class:`stfusion.series.SeriesConfig` of the command's options (``ctx.params``).

    The config's fields have the options' names; SeriesConfig parses the flag and band lists
    and ``--fallback none`` itself.
    """
    import dataclasses

    from stfusion.series import SeriesConfig

    names = {f.name for f in dataclasses.fields(SeriesConfig)}
    values = {k: v for k, v in opts.items() if k in names}
    values["mem_limit_mb"] = opts["mem_limit"]
    values["fine_bands"] = opts["fine_bands"] or opts["both_bands"]
    values["coarse_bands"] = opts["coarse_bands"] or opts["both_bands"]
    return SeriesConfig(**values)


@click.command("series")
@click.option(
    "--fine",
    "fine",
    multiple=True,
    metavar="DIR_OR_GLOB",
    help="Fine images (e.g. Landsat): a folder or a quoted glob; repeatable. Dates "
    "come from the file names (YYYY-MM-DD, YYYYMMDD or YYYYDDD).",
)
@click.option(
    "--coarse",
    "coarse",
    multiple=True,
    metavar="DIR_OR_GLOB",
    help="Coarse images (e.g. MODIS), as for --fine. Every coarse date in --date-range is "
    "predicted; a fine date without one, between the first and the last coarse date, is "
    "written as observed.",
)
@click.option(
    "--catalog",
    type=PATH,
    default=None,
    metavar="CSV",
    help="CSV with columns path,date,sensor[,mask] (sensor fine|coarse, or landsat, "
    "sentinel2, modis, ...); in addition to --fine/--coarse.",
)
@click.option(
    "--out-dir",
    "-o",
    required=True,
    type=PATH,
    help="Output folder (created if missing).",
)
@method_option()
@params_option()
@click.option(
    "--date-range",
    default=None,
    metavar="START:END",
    help="Predict only coarse dates in this range (inclusive; either end may be "
    "empty), e.g. 2020-03-01:2020-04-30. Pairs outside it are still used; summary.csv and "
    "the cube keep the current outputs of the other dates.",
)
@click.option(
    "--every",
    type=click.IntRange(1),
    default=1,
    show_default=True,
    metavar="DAYS",
    help="Predict only every DAYS-th day, counted from the start of --date-range (or the "
    "first coarse date): 7 for a weekly series from daily coarse images. A day on the step "
    "without a coarse image is not predicted (the notes name it; a fine image of that day "
    "is written as observed).",
)
@click.option(
    "--dates",
    "old_dates",
    default=None,
    metavar="START:END",
    help="Deprecated: the old name of --date-range (in `stfusion train`, --dates lists pair "
    "dates).",
)
@scale_options
@mask_options
@click.option(
    "--min-valid",
    type=click.FloatRange(0, 1),
    default=0.5,
    show_default=True,
    help="Valid fraction (after masking) a pair needs to be used and a coarse date "
    "needs to be predicted.",
)
@click.option(
    "--pairs-per-side",
    type=click.IntRange(1),
    default=1,
    show_default=True,
    help="Clear pairs taken before and after each date.",
)
@multi_pair_option(
    "none",
    "How a one-pair method (fitfc, fsdaf, fsdaf2, the one-pair deep methods) uses the "
    "pairs chosen for a date: vip makes one prediction from all of them with VIPSTF over "
    "the method; none predicts from each pair and blends with temporal weights 1/days.",
)
@click.option(
    "--fallback",
    default="starfm",
    show_default=True,
    metavar="METHOD|none",
    help="Method that fills pixels the main method leaves empty (e.g. ESTARFM under "
    "a cloud in one of its two pairs); 'none' to leave them empty.",
)
@click.option(
    "--dtype",
    type=click.Choice(["float32", "int16"]),
    default="float32",
    show_default=True,
    help="Output data type (int16: scaled, nodata -32768).",
)
@click.option(
    "--int16-scale",
    type=click.FloatRange(min=0, min_open=True),
    default=1e-4,
    show_default=True,
    help="Scale factor of int16 outputs (value = stored * scale).",
)
@click.option(
    "--cube",
    type=click.Choice(["zarr", "netcdf"]),
    default=None,
    help="Also write all dates as one cube with a time axis.",
)
@click.option(
    "--prefix", default="fused", show_default=True, help="Output names: PREFIX_YYYY-MM-DD.tif."
)
@window_options(
    workers_help="Windows processed at the same time within a date (threads).",
    mem_help="Memory budget of the whole run (default 1024 MB): the fits' scene-wide "
    "passes, GDAL's block cache and each prediction's working windows. Blending and "
    "gap-filling read row blocks of up to 64 MB outside it.",
)
@overwrite_option(
    "Replace existing outputs made with other settings, and files of others at output "
    "names (verified outputs of these settings and inputs are kept either way, so an "
    "interrupted run resumes)."
)
@click.option(
    "--quality",
    is_flag=True,
    default=False,
    help="Also write PREFIX_YYYY-MM-DD_quality.tif beside each date: observed (1) or "
    "predicted (0), days to the nearest pair used, pairs used, fallback flags, tier; "
    "with --cube, also in the cube (variable quality).",
)
@quiet_option("No progress display or table.")
@band_options
@variable_option
@click.pass_context
def series(
    ctx: click.Context,
    fine: Sequence[str],
    coarse: Sequence[str],
    catalog: str | None,
    out_dir: str,
    method: str,
    params: Sequence[str],
    date_range: str | None,
    every: int,
    old_dates: str | None,
    fine_scale: float | None,
    fine_offset: float | None,
    coarse_scale: float | None,
    coarse_offset: float | None,
    fine_nodata: float | None,
    coarse_nodata: float | None,
    resampling: str,
    fine_mask: Sequence[str],
    fine_mask_kind: str,
    fine_mask_flags: str | None,
    coarse_mask: Sequence[str],
    coarse_mask_kind: str,
    coarse_mask_flags: str | None,
    min_valid: float,
    pairs_per_side: int,
    multi_pair: str,
    fallback: str,
    dtype: str,
    int16_scale: float,
    cube: str | None,
    prefix: str,
    workers: int,
    mem_limit: float | None,
    overwrite: bool,
    quality: bool,
    quiet: bool,
    variable: str | None,
    **band_opts: Any,
) -> None:
    """Fuse a time series: predict the fine image at every coarse date, through clouds.

    Pairs (fine + coarse on one date) are matched by the dates in the file names; each coarse
    date is predicted from the nearest clear pairs before and after it, fine dates are
    gap-filled. Re-running keeps the dates already done from the same inputs and settings.
    Exit status 1: a problem found before any date, or no target date predicted (every one
    skipped); 3: some dates failed; 4: another run is writing into --out-dir.
    """
    from stfusion.methods.variables import params_with_variable
    from stfusion.series import OutDirLockedError, run_series

    params = params_with_variable(tuple(params), method, variable)

    if not fine and not coarse and catalog is None:
        raise click.UsageError("give --fine and --coarse (folders or globs), or --catalog.")
    if old_dates is not None:
        if date_range is not None:
            raise click.UsageError("give --date-range only (--dates is its old name).")
        click.echo(
            "note: --dates is deprecated in `stfusion series`; use --date-range START:END "
            "(in `stfusion train`, --dates lists pair dates).",
            err=True,
        )
        date_range = old_dates
    _check_date_range(date_range)
    config = _config({**ctx.params, "params": params, "date_range": date_range})
    progress = Progress("series", quiet, unit="dates")
    t0 = time.monotonic()
    progress.phase("reading the inputs, then the first date", 5)
    logged = _Logged()
    logging.getLogger("stfusion").addHandler(logged)
    try:
        with reporting_stages(progress.stage):
            result = run_series(config, progress=progress.dates)
    except OutDirLockedError as exc:
        click.echo(f"Error: {exc}", err=True)
        ctx.exit(EXIT_LOCKED)
    finally:
        logging.getLogger("stfusion").removeHandler(logged)
        progress.close()
    _print_summary(result, quiet, logged.messages)
    if result.failed:
        if quiet:  # no table: the reasons still go to stderr (a script sees why, not only 3)
            failed = sorted(result.failed, key=lambda r: r.date)
            for r in failed[:5]:
                click.echo(f"failed: {r.date.isoformat()}: {r.reason}", err=True)
            if len(failed) > 5:
                click.echo(f"failed: {len(failed) - 5} more in {result.summary_path}", err=True)
        else:
            click.echo(
                f"{len(result.failed)} date(s) failed ({time.monotonic() - t0:.0f} s); see "
                f"{result.summary_path}. Fix what its reasons name (an input, or the disk) "
                "and run again: finished dates are kept.",
                err=True,
            )
        ctx.exit(EXIT_SOME_FAILED)
    if result.no_output:
        # a run that made nothing is not a success, even if every date has a reason
        click.echo(f"Error: {result.no_output}", err=True)
        ctx.exit(EXIT_NO_OUTPUT)
