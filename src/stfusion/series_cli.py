"""``stfusion series``: fuse every coarse date of a season (see docs/commands/series.md).

Registered on the ``stfusion`` group with ``cli.add_command(series)``; kept in its own module
(importing nothing from ``stfusion.cli``) so either can be imported first.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

from stfusion.cli_options import MEM_LIMIT, OFFSET, SCALE, WORKERS, variable_option
from stfusion.inputs import band_options

if TYPE_CHECKING:
    from stfusion.series import SeriesConfig

#: Exit code when the run finished but some dates failed (inputs unreadable, method errors).
EXIT_SOME_FAILED = 3
#: Exit code when another run holds the output folder's lock (nothing was done).
EXIT_LOCKED = 4


class _DateProgress:
    """One rich progress bar over the dates; silent when ``quiet``."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self._bar: Any = None
        self._task: Any = None

    def __call__(self, done: int, total: int, record: Any) -> None:
        if self.quiet:
            return
        if self._bar is None:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            console = Console(
                stderr=True, highlight=False, width=None if sys.stderr.isatty() else 120
            )
            self._bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=console,
                transient=True,
            )
            self._bar.start()
            self._task = self._bar.add_task("series", total=total)
        self._bar.update(self._task, completed=done, description=f"{record.date} {record.status}")

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()


def _print_summary(result: Any, quiet: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    counts = result.counts()
    click.echo(
        f"{result.out_dir}: {counts['predicted']} predicted, {counts['gap-filled']} gap-filled, "
        f"{counts['skipped']} skipped, {counts['failed']} failed in {result.seconds:.1f} s "
        f"(summary: {result.summary_path.name}"
        + (f", cube: {result.cube_path.name}" if result.cube_path else "")
        + ")"
    )
    if quiet:
        return
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
    odd = [r for r in result.records if r.status in ("skipped", "failed")]
    if not odd:
        return
    table = Table(title="dates not predicted", show_lines=False)
    for col in ("date", "status", "reason"):
        table.add_column(col, overflow="fold")
    for r in sorted(odd, key=lambda r: r.date):
        table.add_row(r.date.isoformat(), r.status, r.reason)
    Console(highlight=False, width=None if sys.stdout.isatty() else 120).print(table)


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
    "predicted.",
)
@click.option(
    "--catalog",
    type=click.Path(),
    default=None,
    metavar="CSV",
    help="CSV with columns path,date,sensor[,mask] (sensor fine|coarse, or landsat, "
    "sentinel2, modis, ...); in addition to --fine/--coarse.",
)
@click.option(
    "--out-dir", "-o", required=True, type=click.Path(), help="Output folder (created if missing)."
)
@click.option(
    "--method",
    "-m",
    default="starfm",
    show_default=True,
    help="Fusion method (see `stfusion methods`).",
)
@click.option(
    "--param",
    "-p",
    "params",
    multiple=True,
    metavar="NAME=VALUE",
    help="Method parameter, e.g. window=31; ratio=R gives the resolution ratio when "
    "all images share one grid.",
)
@click.option(
    "--date-range",
    default=None,
    metavar="START:END",
    help="Predict only coarse dates in this range (inclusive; either end may be "
    "empty), e.g. 2020-03-01:2020-04-30. Pairs outside it are still used.",
)
@click.option(
    "--dates",
    "old_dates",
    default=None,
    metavar="START:END",
    help="Deprecated: the old name of --date-range (in `stfusion train`, --dates lists pair "
    "dates).",
)
@click.option(
    "--fine-scale",
    type=SCALE,
    default=None,
    help="Multiply fine values by this (0.0001 for reflectance x10000; Landsat C2: "
    "2.75e-5). Default: the file's scale metadata, else 1.",
)
@click.option(
    "--fine-offset",
    type=OFFSET,
    default=None,
    help="Add this after scaling (Landsat C2: -0.2). Default: file metadata, else 0.",
)
@click.option(
    "--coarse-scale",
    type=SCALE,
    default=None,
    help="Multiply coarse values by this. Default: file metadata, else 1.",
)
@click.option(
    "--coarse-offset",
    type=OFFSET,
    default=None,
    help="Add this to coarse values after scaling. Default: file metadata, else 0.",
)
@click.option(
    "--resampling",
    type=click.Choice(["nearest", "bilinear", "cubic", "average"]),
    default="nearest",
    show_default=True,
    help="How coarse images on their own grid are reprojected onto the fine grid.",
)
@click.option(
    "--fine-mask",
    multiple=True,
    metavar="DIR_OR_GLOB",
    help="Masks of the fine images, matched by the date in their names.",
)
@click.option(
    "--fine-mask-kind",
    type=click.Choice(["binary", "landsat_qa_pixel"]),
    default="binary",
    show_default=True,
    help="binary: nonzero = invalid; landsat_qa_pixel: Landsat C2 QA_PIXEL bits.",
)
@click.option(
    "--fine-mask-flags",
    default=None,
    metavar="FLAGS",
    help="QA flags that make a pixel invalid, comma-separated; 'default' stands for "
    "fill,dilated_cloud,cirrus,cloud,cloud_shadow (e.g. default,snow).",
)
@click.option(
    "--coarse-mask",
    multiple=True,
    metavar="DIR_OR_GLOB",
    help="Masks of the coarse images (any grid), matched by date.",
)
@click.option(
    "--coarse-mask-kind",
    type=click.Choice(["binary", "mod09_state_1km"]),
    default="binary",
    show_default=True,
    help="binary: nonzero = invalid; mod09_state_1km: MOD09GA state_1km bits.",
)
@click.option(
    "--coarse-mask-flags",
    default=None,
    metavar="FLAGS",
    help="state_1km flags that make a pixel invalid; 'default' stands for "
    "cloudy,mixed,cloud_shadow,cirrus_high,internal_cloud.",
)
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
    type=float,
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
@click.option(
    "--workers",
    type=WORKERS,
    default=1,
    show_default=True,
    help="Windows processed at the same time within a date (threads).",
)
@click.option(
    "--mem-limit",
    type=MEM_LIMIT,
    default=None,
    metavar="MB",
    help="Memory for the working windows of each prediction (default 1024 MB).",
)
@click.option(
    "--overwrite",
    is_flag=True,
    help="Recompute and replace existing outputs (without it, verified outputs are "
    "kept and only missing or damaged dates are computed).",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress display or table.")
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
    old_dates: str | None,
    fine_scale: float | None,
    fine_offset: float | None,
    coarse_scale: float | None,
    coarse_offset: float | None,
    resampling: str,
    fine_mask: Sequence[str],
    fine_mask_kind: str,
    fine_mask_flags: str | None,
    coarse_mask: Sequence[str],
    coarse_mask_kind: str,
    coarse_mask_flags: str | None,
    min_valid: float,
    pairs_per_side: int,
    fallback: str,
    dtype: str,
    int16_scale: float,
    cube: str | None,
    prefix: str,
    workers: int,
    mem_limit: float | None,
    overwrite: bool,
    quiet: bool,
    variable: str | None,
    **band_opts: Any,
) -> None:
    """Fuse a time series: predict the fine image at every coarse date, through clouds.

    Pairs (fine + coarse on one date) are matched by the dates in the file names; each coarse
    date is predicted from the nearest clear pairs before and after it, fine dates are
    gap-filled. Re-running keeps the dates already done from the same inputs and settings.
    Exit status 3: some dates failed; 4: another run is writing into --out-dir.
    """
    from stfusion.methods.variables import params_with_variable
    from stfusion.series import OutDirLockedError, run_series

    params = params_with_variable(params, method, variable)

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
    config = _config({**ctx.params, "params": params, "date_range": date_range})
    progress = _DateProgress(quiet)
    t0 = time.monotonic()
    try:
        result = run_series(config, progress=progress)
    except OutDirLockedError as exc:
        click.echo(f"Error: {exc}", err=True)
        ctx.exit(EXIT_LOCKED)
    finally:
        progress.close()
    _print_summary(result, quiet)
    if result.failed:
        if not quiet:
            click.echo(
                f"{len(result.failed)} date(s) failed ({time.monotonic() - t0:.0f} s); see "
                f"{result.summary_path}. Fix the inputs and run again: finished dates are kept.",
                err=True,
            )
        ctx.exit(EXIT_SOME_FAILED)
