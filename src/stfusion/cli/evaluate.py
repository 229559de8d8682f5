"""``stfusion evaluate``: score a prediction against the truth."""

from __future__ import annotations

import json
import math
from typing import Any

import click

from stfusion.cli.options import MEM_LIMIT, OFFSET, PATH, SCALE, FiniteFloat
from stfusion.cli.progress import Progress, console
from stfusion.qa import MASK_KINDS, parse_flags

#: Seconds of scoring after which a log says it runs (a terminal shows it at once).
SAY_AFTER_S = 5.0


def _check_ratio(value: float | None) -> float | None:
    """``--ratio``: at least 1; below 1 it is the inverse (fine / coarse), so say the value."""
    if value is not None and value < 1:
        raise click.BadParameter(
            f"{value:g} must be at least 1: it is coarse / fine pixel size (the inverse of "
            f"{value:g} is --ratio {1 / value:g})."
        )
    return value


def _check_data_range(value: str) -> float | str:
    """``--data-range``: a positive number, 'truth' or 'auto' (a usage error otherwise)."""
    if value in ("truth", "auto"):
        return value
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not (math.isfinite(number) and number > 0):
        raise click.BadParameter(f"{value!r}: give a positive number, 'truth' or 'auto'.")
    return number


@click.command()
@click.argument("prediction", type=PATH)
@click.argument("truth", type=PATH)
@click.option("--pred-scale", type=SCALE, default=None, help="Scale of the prediction's values.")
@click.option(
    "--truth-scale",
    type=SCALE,
    default=None,
    help="Scale of the truth's values (e.g. 0.0001). Default: file metadata, else 1.",
)
@click.option(
    "--truth-nodata",
    type=FiniteFloat(what="the truth file's fill value, before scaling, e.g. -9999"),
    default=None,
    help="A fill value in the truth file that its metadata does not declare (e.g. -9999).",
)
@click.option(
    "--pred-nodata",
    type=FiniteFloat(what="the prediction file's fill value, before scaling"),
    default=None,
    help="A fill value in the prediction file that its metadata does not declare.",
)
@click.option("--truth-offset", type=OFFSET, default=None, help="Offset of the truth's values.")
@click.option("--pred-offset", type=OFFSET, default=None, help="Offset of the prediction's values.")
@click.option(
    "--ratio",
    type=FiniteFloat(positive=True, what="coarse / fine pixel size, e.g. 16 for 480 m / 30 m"),
    default=None,
    callback=lambda ctx, param, value: _check_ratio(value),
    help="Resolution ratio coarse/fine pixel size, for ERGAS (e.g. 16).",
)
@click.option(
    "--data-range",
    default="auto",
    show_default=True,
    callback=lambda ctx, param, value: _check_data_range(value),
    help="Data range for SSIM and PSNR: a number (1 for reflectance), 'truth' (each band's "
    "valid max - min in the truth, for LST or NDVI), or 'auto' (truth when a file's band "
    "names or tags say index or temperature, else 1).",
)
@click.option(
    "--mem-limit",
    type=MEM_LIMIT,
    default=None,
    metavar="MB",
    help="Memory for reading the images block by block (default 1024): scenes larger than "
    "memory are scored.",
)
@click.option(
    "--mask",
    default=None,
    metavar="MASK",
    help="Score only where this raster says valid (any grid; e.g. a cloud mask of the "
    "target date): its invalid pixels are left out of every metric, as truth nodata.",
)
@click.option(
    "--mask-kind",
    type=click.Choice(MASK_KINDS),
    default="binary",
    show_default=True,
    help="binary: nonzero = invalid; the others decode a product's QA band (docs/masks.md).",
)
@click.option(
    "--mask-flags",
    default=None,
    metavar="FLAGS",
    help="QA flags (classes for sentinel2_scl) that make a pixel invalid, comma-separated; "
    "'default' stands for the kind's defaults.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option(
    "--csv",
    "as_csv",
    is_flag=True,
    help="Print CSV instead of a table: band,metric,value,prediction,truth,data_range,ratio,"
    "mask, one row per band and metric (band 'mean' for the mean over bands and for SAM, "
    "ERGAS); PREDICTION and TRUTH as given, then the settings that change the scores.",
)
@click.option(
    "--no-scale-check",
    is_flag=True,
    help="Score even when prediction and truth differ in scale by more than 20x "
    "(refused by default: reflectance against x10000 integers; docs/inputs.md).",
)
def evaluate(
    prediction: str,
    truth: str,
    pred_scale: float | None,
    truth_scale: float | None,
    truth_offset: float | None,
    ratio: float | None,
    data_range: float | str,
    as_json: bool,
    as_csv: bool = False,
    pred_offset: float | None = None,
    no_scale_check: bool = False,
    mem_limit: float | None = None,
    truth_nodata: float | None = None,
    pred_nodata: float | None = None,
    mask: str | None = None,
    mask_kind: str = "binary",
    mask_flags: str | None = None,
) -> int:
    """Score PREDICTION against TRUTH with the pinned metrics (docs/metrics.md)."""
    if mask is not None and not mask.strip():
        raise click.UsageError("--mask is empty: give the path of a mask raster.")
    if mask_flags is not None and parse_flags(mask_flags) is None:
        raise click.UsageError(
            f"--mask-flags {mask_flags!r} names no flag; leave it out for the kind's defaults."
        )
    if (mask_flags or mask_kind != "binary") and mask is None:
        raise click.UsageError("--mask-kind/--mask-flags given without --mask.")
    if mask_flags and mask_kind == "binary":
        raise click.UsageError(
            f"--mask-flags: {mask} is read as a binary mask (nonzero = invalid), which takes "
            "no flags; give its kind with --mask-kind."
        )
    if as_json and as_csv:  # before the scoring, which may take minutes
        raise click.UsageError("--json and --csv: give one.")
    from stfusion.api import evaluate_files

    # a scene larger than memory takes minutes, which said nothing (a big-scene trial)
    with Progress("evaluate", False) as progress:
        progress.phase("scoring, block by block", SAY_AFTER_S)
        report = evaluate_files(
            prediction,
            truth,
            pred_scale=pred_scale,
            pred_offset=pred_offset,
            truth_scale=truth_scale,
            truth_offset=truth_offset,
            ratio=ratio,
            data_range=data_range,
            scale_check=not no_scale_check,
            mem_limit_mb=mem_limit,
            truth_nodata=truth_nodata,
            pred_nodata=pred_nodata,
            mask=mask,
            mask_kind=mask_kind,
            mask_flags=parse_flags(mask_flags),
        )
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    elif as_csv:
        from stfusion.report import report_csv

        click.echo(report_csv(report, prediction, truth), nl=False)
    else:
        from stfusion.report import metrics_table

        console().print(metrics_table(report, title=f"{prediction} vs {truth}"))
    return _nothing_scored(report, prediction, truth)


def _nothing_scored(report: Any, prediction: str, truth: str) -> int:
    """Exit status 1 (after the report) when no pixel was valid in both: a script scoring
    many predictions must not take an empty row for a score."""
    valid = report.per_band.get("valid_fraction", [])
    if any(v > 0 for v in valid):
        return 0
    click.echo(
        f"Error: no pixel is valid in both {prediction} and {truth} (every metric is empty); "
        "check the nodata values, the mask and that both cover the same area.",
        err=True,
    )
    return 1
