"""``stfusion predict``: the fine image at the date of a coarse image."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import click

from stfusion.cli.options import (
    PATH,
    THREADS,
    band_options,
    command_line,
    method_option,
    multi_pair_option,
    out_option,
    overwrite_option,
    pairs_option,
    params_option,
    predict_mask_options,
    quiet_option,
    scale_options,
    variable_option,
    window_options,
)
from stfusion.cli.progress import Progress
from stfusion.errors import InvalidParameterError
from stfusion.tiling import reporting_stages


def _check_scheduler(value: str | None) -> str | None:
    """``--scheduler``: refused at once (usage error) unless an address or scheduler file."""
    if value is None:
        return None
    from stfusion.parallel import check_scheduler

    try:
        return check_scheduler(value)
    except InvalidParameterError as exc:
        raise click.BadParameter(str(exc).removeprefix("--scheduler ")) from None


@click.command()
@method_option()
@pairs_option(
    "A fine image and the coarse image of the same date. Repeat for more pairs. Each "
    "may be a MODIS .hdf, a quoted glob or comma list of band files, and end in :BANDS "
    "(docs/inputs.md).",
)
@click.option(
    "--fine-ref",
    "fine_ref",
    multiple=True,
    type=PATH,
    metavar="FINE",
    help="A fine image of any date without its coarse image, in place of --pair, for "
    "methods that need no coarse image at the reference date (ganstfm). Once only.",
)
@click.option(
    "--coarse",
    "target",
    required=True,
    type=PATH,
    help="The coarse image at the date to predict.",
)
@out_option("Output GeoTIFF.")
@params_option()
@multi_pair_option(
    "none",
    "With several --pair and a one-pair method (fsdaf, fitfc, fsdaf2, the one-pair deep "
    "methods): vip runs VIPSTF over it (a virtual pair from all pairs; the --param values "
    "go to the method); none refuses several pairs. Other methods combine pairs their own way.",
)
@scale_options
@band_options
@predict_mask_options
@window_options(
    mem_help="Memory for the working windows (default 1024 MB); larger scenes are "
    "processed window by window from disk.",
    workers_help="Windows processed at the same time (threads).",
)
@click.option(
    "--threads", type=THREADS, default=None, help="Threads inside each kernel (default: all cores)."
)
@click.option(
    "--scheduler",
    default=None,
    metavar="ADDRESS",
    callback=lambda ctx, param, value: _check_scheduler(value),
    help="Run the windows on a Dask distributed cluster: its address (e.g. tcp://host:8786) "
    "or its scheduler file.",
)
@click.option(
    "--quality",
    is_flag=True,
    help="Also write OUT_quality.tif: days to the nearest pair used (dates from the file "
    "names), pairs used, fallback bits (1 the method's fallback rule, 2 no valid coarse "
    "target value), per-band uncertainty (STARFM and the ensemble).",
)
@overwrite_option("Replace an existing output file.")
@quiet_option()
@variable_option
@click.pass_context
def predict(
    ctx: click.Context,
    method: str,
    pairs: Sequence[tuple[str, str]],
    fine_ref: Sequence[str],
    target: str,
    out: str,
    params: Sequence[str],
    multi_pair: str,
    fine_scale: float | None,
    fine_offset: float | None,
    coarse_scale: float | None,
    coarse_offset: float | None,
    fine_nodata: float | None,
    coarse_nodata: float | None,
    resampling: str,
    mem_limit: float | None,
    workers: int,
    threads: int | None,
    scheduler: str | None,
    quality: bool,
    overwrite: bool,
    quiet: bool,
    variable: str | None,
    fine_mask: Sequence[str],
    fine_mask_kind: str | None,
    fine_mask_flags: str | None,
    coarse_mask: Sequence[str],
    coarse_mask_kind: str | None,
    coarse_mask_flags: str | None,
    **band_opts: Any,
) -> None:
    """Predict the fine image at the date of the --coarse image."""
    from stfusion.api import run_prediction
    from stfusion.inputs import mask_count_problem, role_options_of
    from stfusion.methods.variables import params_with_variable

    params = params_with_variable(tuple(params), method, variable)
    pairs = _pairs_or_fine_ref(method, pairs, fine_ref)
    for role, masks, wanted in (
        ("fine", fine_mask, len(pairs)),
        ("coarse", coarse_mask, 1 if fine_ref else len(pairs) + 1),
    ):
        flags = fine_mask_flags if role == "fine" else coarse_mask_flags
        if flags and not masks and not band_opts[f"{role}_preset"]:
            raise click.UsageError(
                f"--{role}-mask-flags given without --{role}-mask (or a --{role}-preset whose "
                "QA band masks the images): there is no mask to apply them to."
            )
        problem = mask_count_problem(role, masks, wanted)
        if problem and fine_ref and role == "coarse":
            problem = (
                f"{len(masks)} --coarse-mask with --fine-ref: give one, the --coarse image's "
                "(the reference is read with --fine-mask)."
            )
        if problem:
            raise click.UsageError(problem)

    roles = role_options_of(ctx.params)
    t0 = time.monotonic()
    with Progress(method, quiet) as progress:
        progress.phase("reading the inputs and fitting", 5)
        with reporting_stages(progress.stage):
            info = run_prediction(
                method=method,
                pairs=pairs,
                target=target,
                out=out,
                params=params,
                multi_pair=multi_pair,
                fine_scale=roles["fine_scale"],
                fine_offset=roles["fine_offset"],
                coarse_scale=roles["coarse_scale"],
                coarse_offset=roles["coarse_offset"],
                resampling=resampling,
                mem_limit_mb=mem_limit,
                workers=workers,
                threads=threads,
                overwrite=overwrite,
                progress=progress.windows,
                scheduler=scheduler,
                quality=quality,
                command=command_line(ctx),
                fine_bands=roles["fine_bands"],
                coarse_bands=roles["coarse_bands"],
                fine_nodata=fine_nodata,
                coarse_nodata=coarse_nodata,
                fine_preset=band_opts["fine_preset"],
                coarse_preset=band_opts["coarse_preset"],
                fine_mask=fine_mask,
                fine_mask_kind=fine_mask_kind,
                fine_mask_flags=fine_mask_flags,
                coarse_mask=coarse_mask,
                coarse_mask_kind=coarse_mask_kind,
                coarse_mask_flags=coarse_mask_flags,
                fine_ref=bool(fine_ref),
            )
    if not quiet:
        for note in [*_multi_pair_notes(method, len(pairs), multi_pair), *info["notes"]]:
            click.echo(f"note: {note}", err=True)
        where = "" if scheduler is None else f" on {len(info['workers'])} cluster worker(s)"
        click.echo(
            f"wrote {out} ({info['method']}, {len(pairs)} pair(s), {info['windows']} window(s)"
            f"{where}, {time.monotonic() - t0:.1f} s)"
        )
        if info["lost_workers"]:
            click.echo(
                f"note: {len(info['lost_workers'])} cluster worker(s) left during the run "
                f"({', '.join(info['lost_workers'])}); their windows were computed again on "
                "the others, so the output is complete.",
                err=True,
            )
        if info["quality"]:
            click.echo(f"wrote {info['quality']} (quality layer)")


def _multi_pair_notes(method: str, pairs: int, multi_pair: str) -> list[str]:
    """A note when ``--multi-pair vip`` changes nothing: the method takes the pairs itself."""
    from stfusion.methods import get_method
    from stfusion.methods.vipstf import one_pair_method

    if multi_pair != "vip" or pairs < 2 or one_pair_method(get_method(method)):
        return []
    return [
        f"--multi-pair vip not used: {method} takes {pairs} pairs itself (VIPSTF runs over "
        "one-pair methods only)."
    ]


def _pairs_or_fine_ref(
    method: str, pairs: Sequence[tuple[str, str]], fine_refs: Sequence[str]
) -> Sequence[tuple[str, str]]:
    """The pairs of ``predict``: ``--pair``, or ``--fine-ref F`` as the pair ``(F, F)`` for a
    method that reads no coarse image at the reference date (its coarse slot is never used).
    One ``--fine-ref`` only: several fine references without their coarse images have no
    method to combine them (VIPSTF needs each pair's coarse image)."""
    from stfusion.methods import get_method

    if len(fine_refs) > 1:
        raise click.UsageError(
            f"--fine-ref given {len(fine_refs)} times: give one --fine-ref only (the method "
            "uses one fine reference), or several --pair FINE COARSE with --multi-pair vip."
        )
    fine_ref = fine_refs[0] if fine_refs else None
    if fine_ref is None:
        if not pairs:
            raise click.UsageError("give --pair FINE COARSE (or --fine-ref FINE for ganstfm).")
        return pairs
    if pairs:
        raise click.UsageError("give either --pair or --fine-ref, not both.")
    if getattr(get_method(method), "uses_coarse_ref", True):
        raise click.UsageError(
            f"--fine-ref: {method} needs the coarse image of the reference date; give "
            "--pair FINE COARSE (methods without it: ganstfm)."
        )
    return [(fine_ref, fine_ref)]
