"""Every option that more than one command takes, declared once, and the types that check them.

The types refuse a value that cannot work with a usage error (exit status 2) that names the
option, the value and what to give instead, before any file is read: ``--mem-limit 0`` or
``nan``, ``--workers 0``, ``--fine-scale 0`` or ``inf`` never reach the library. The training
options take their defaults from the run settings (:mod:`stfusion.run_config`), so a default
is written once, in the dataclass. :func:`command_line` writes a command's parameters back as
the canonical command line that provenance records.
"""

from __future__ import annotations

import math
import os
import shlex
import sys
from collections.abc import Callable
from dataclasses import MISSING, fields
from typing import Any

import click

from stfusion.io import RESAMPLING_CHOICES
from stfusion.qa import MASK_KINDS
from stfusion.run_config import PRECISIONS
from stfusion.tiling import MAX_MEM_LIMIT_MB, MIN_MEM_LIMIT_MB


class FiniteFloat(click.ParamType):
    """A finite float, optionally bounded: ``nan`` and ``inf`` are refused (click's
    ``FloatRange`` lets them through)."""

    name = "float"

    def __init__(
        self,
        *,
        positive: bool = False,
        minimum: float | None = None,
        maximum: float | None = None,
        what: str = "",
    ) -> None:
        self.positive = positive
        self.minimum = minimum
        self.maximum = maximum
        self.what = what

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, float) and math.isfinite(value):
            number = value
        else:
            try:
                number = float(value)
            except (TypeError, ValueError):
                self.fail(f"{value!r} is not a number{self._hint()}", param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number{self._hint()}", param, ctx)
        if self.positive and not number > 0:
            self.fail(f"{value!r} must be greater than 0{self._hint()}", param, ctx)
        if self.minimum is not None and number < self.minimum:
            self.fail(f"{value!r} must be at least {self.minimum:g}{self._hint()}", param, ctx)
        if self.maximum is not None and number > self.maximum:
            self.fail(f"{value!r} must be at most {self.maximum:g}{self._hint()}", param, ctx)
        return number

    def _hint(self) -> str:
        return f" ({self.what})" if self.what else "."


class PositiveInt(click.ParamType):
    """An integer >= 1, with a hint of what the option counts."""

    name = "integer"

    def __init__(self, what: str) -> None:
        self.what = what

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            number = int(value)
        except (TypeError, ValueError, OverflowError):
            self.fail(f"{value!r} is not an integer ({self.what}).", param, ctx)
        if number < 1:
            self.fail(f"{value!r} must be at least 1 ({self.what}).", param, ctx)
        return number


class UserPath(click.Path):
    """``click.Path`` with a leading ``~`` expanded: quoted, or as ``--out-dir=~/x``, it
    reaches stfusion as typed, and a folder named ``~`` was made in the working folder."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and value.startswith("~"):
            value = os.path.expanduser(value)
        return super().convert(value, param, ctx)


#: A file path option or argument. stfusion opens the file itself: click's own check
#: (``readable``) answered a file it cannot read with a usage error, exit 2, where input
#: problems exit 1 with the file and what to do.
PATH = UserPath(readable=False)
#: ``--mem-limit MB``: megabytes for the working windows.
MEM_LIMIT = FiniteFloat(
    minimum=MIN_MEM_LIMIT_MB,
    maximum=MAX_MEM_LIMIT_MB,
    what="megabytes for the working windows, e.g. --mem-limit 500",
)
#: ``--workers N``: windows processed at the same time.
WORKERS = PositiveInt("windows processed at the same time, e.g. --workers 2")
#: ``--threads N``: threads inside each kernel.
THREADS = PositiveInt("threads inside each kernel; leave it out to use all cores")
#: ``--fine-scale``/``--coarse-scale``: a multiplier of the file values.
SCALE = FiniteFloat(
    positive=True, what="a multiplier of the file values, e.g. 0.0001 for reflectance x10000"
)
#: ``--fine-offset``/``--coarse-offset``: added after scaling.
OFFSET = FiniteFloat(what="added after scaling, e.g. -0.2 for Landsat C2")


# ------------------------------------------------------------------------ declaring options

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


def stack(*decorators: Decorator) -> Decorator:
    """One decorator of several options, in the order given (as they read in ``--help``)."""

    def apply(f: Callable[..., Any]) -> Callable[..., Any]:
        for decorator in reversed(decorators):
            f = decorator(f)
        return f

    return apply


def method_option(help: str = "Fusion method (see `stfusion methods`).") -> Decorator:
    return click.option("--method", "-m", default="starfm", show_default=True, help=help)


def params_option(
    metavar: str = "NAME=VALUE",
    help: str = "Method parameter, e.g. window=31. `ratio=R` gives the resolution ratio "
    "when all inputs are on one grid.",
) -> Decorator:
    return click.option("--param", "-p", "params", multiple=True, metavar=metavar, help=help)


def pairs_option(help: str, required: bool = False) -> Decorator:
    return click.option(
        "--pair",
        "pairs",
        nargs=2,
        multiple=True,
        required=required,
        type=PATH,
        metavar="FINE COARSE",
        help=help,
    )


def out_option(help: str) -> Decorator:
    return click.option("--out", "-o", required=True, type=PATH, help=help)


def overwrite_option(help: str = "Replace an existing --out.") -> Decorator:
    return click.option("--overwrite", is_flag=True, help=help)


def resume_option() -> Decorator:
    """``--resume`` of the training runs (``train``, ``distill``)."""
    return click.option("--resume", is_flag=True, help="Continue the run saved in --out.")


def quiet_option(help: str = "No progress display or summary.") -> Decorator:
    return click.option("--quiet", "-q", is_flag=True, help=help)


#: ``--fine-scale``, ``--fine-offset``, ``--coarse-scale``, ``--coarse-offset``,
#: ``--resampling``: how the values and grids of the inputs are read.
scale_options = stack(
    click.option(
        "--fine-scale",
        type=SCALE,
        default=None,
        help="Multiply fine values by this (e.g. 0.0001 for reflectance x10000; "
        "Landsat C2: 2.75e-5). Default: the file's own scale metadata, else 1.",
    ),
    click.option(
        "--fine-offset",
        type=OFFSET,
        default=None,
        help="Add this after scaling (Landsat C2: -0.2). Default: file metadata, else 0.",
    ),
    click.option(
        "--coarse-scale",
        type=SCALE,
        default=None,
        help="Multiply coarse values by this. Default: file metadata, else 1.",
    ),
    click.option(
        "--coarse-offset",
        type=OFFSET,
        default=None,
        help="Add this to coarse values after scaling. Default: file metadata, else 0.",
    ),
    click.option(
        "--fine-nodata",
        type=FiniteFloat(what="a fill value in the fine files, as stored, e.g. -9999"),
        default=None,
        metavar="VALUE",
        help="A fill value the fine files hold but do not declare (as stored, before "
        "scaling): read as nodata.",
    ),
    click.option(
        "--coarse-nodata",
        type=FiniteFloat(what="a fill value in the coarse files, as stored, e.g. -28672"),
        default=None,
        metavar="VALUE",
        help="As --fine-nodata, for the coarse files.",
    ),
    click.option(
        "--resampling",
        type=click.Choice(RESAMPLING_CHOICES),
        default="nearest",
        show_default=True,
        help="How a coarse image on its own grid is reprojected onto the fine grid.",
    ),
)


def _band_presets() -> str:
    from stfusion.inputs import PRESETS

    return ", ".join(PRESETS)


#: ``--fine-bands``, ``--coarse-bands``, ``--bands``, ``--fine-preset``, ``--coarse-preset``.
band_options = stack(
    click.option(
        "--fine-bands",
        default=None,
        metavar="LIST",
        help="Bands of the fine images to use, in this order: names or 1-based "
        "numbers, e.g. SR_B2,SR_B3,SR_B4 or 1,2,3 (docs/inputs.md).",
    ),
    click.option(
        "--coarse-bands",
        default=None,
        metavar="LIST",
        help="Bands of the coarse images, in the fine images' order, e.g. "
        "3,4,1,2,6,7 (MODIS bands for Landsat blue, green, red, NIR, SWIR1, SWIR2) "
        "or HDF field names.",
    ),
    click.option(
        "--bands",
        "both_bands",
        default=None,
        metavar="LIST",
        help="The same band choice for fine and coarse images.",
    ),
    click.option(
        "--fine-preset",
        default=None,
        metavar="NAME",
        help=f"Band choice, scale/offset and QA band of a product ({_band_presets()}).",
    ),
    click.option(
        "--coarse-preset",
        default=None,
        metavar="NAME",
        help="As --fine-preset, for the coarse images (any of them: mod09ga, mcd43a4, ...).",
    ),
)


def _mask_options(role: str, masks_help: str, per_file: bool = False) -> Decorator:
    """``--ROLE-mask``, ``--ROLE-mask-kind``, ``--ROLE-mask-flags``. ``per_file``: the kind
    is chosen per mask when not given (predict: the preset's QA kind for its QA files)."""
    kind_help = (
        "binary: nonzero = invalid; the others decode a product's QA band (docs/masks.md). "
        + (
            "Default: binary; with a preset, its QA kind for masks named for its QA band "
            "(QA_PIXEL, SCL, state_1km)."
            if per_file
            else "With a preset, the default is its QA kind when no mask is given, or "
            "when every mask given is named for its QA band (QA_PIXEL, SCL, state_1km)."
        )
    )
    return stack(
        click.option(f"--{role}-mask", multiple=True, metavar="MASK", help=masks_help),
        click.option(
            f"--{role}-mask-kind",
            type=click.Choice(MASK_KINDS),
            default=None if per_file else "binary",
            show_default=not per_file,
            help=kind_help,
        ),
        click.option(
            f"--{role}-mask-flags",
            default=None,
            metavar="FLAGS",
            help="QA flags (classes for sentinel2_scl) that make a pixel invalid, "
            "comma-separated; 'default' stands for the kind's defaults (e.g. default,snow).",
        ),
    )


#: ``--fine-mask[-kind|-flags]``, ``--coarse-mask[-kind|-flags]``: cloud masks of a series.
mask_options = stack(
    _mask_options(
        "fine", "Masks of the fine images (DIR_OR_GLOB), matched by the date in their names."
    ),
    _mask_options("coarse", "Masks of the coarse images (DIR_OR_GLOB, any grid), matched by date."),
)

#: The same options for ``predict``: one mask per image, in order.
predict_mask_options = stack(
    _mask_options(
        "fine",
        "The mask of each --pair's fine image, in --pair order ('-' for "
        "none). Repeat once per pair.",
        per_file=True,
    ),
    _mask_options(
        "coarse",
        "The mask of each --pair's coarse image, then one for --coarse ('-' for none; any grid).",
        per_file=True,
    ),
)


def window_options(workers_help: str, mem_help: str) -> Decorator:
    """``--workers`` (windows at once) and ``--mem-limit`` of the commands that predict."""
    return stack(
        click.option("--workers", type=WORKERS, default=1, show_default=True, help=workers_help),
        click.option("--mem-limit", type=MEM_LIMIT, default=None, metavar="MB", help=mem_help),
    )


#: ``--variable`` for every command that runs the classical methods (predict, series).
variable_option = click.option(
    "--variable",
    type=click.Choice(["auto", "reflectance", "ndvi", "lst", "other"]),
    default=None,
    help="What the images measure; sets the classical methods' unit-bearing constants "
    "(default: inferred from the data and logged; docs/methods/*.md).",
)


def multi_pair_option(default: str | None, help: str) -> Decorator:
    """``--multi-pair none|vip``: how a one-pair method (FSDAF, Fit-FC, the one-pair deep
    methods) uses several pairs (:data:`stfusion.methods.vipstf.MULTI_PAIR_CHOICES`)."""
    from stfusion.methods.vipstf import MULTI_PAIR_CHOICES

    return click.option(
        "--multi-pair",
        "multi_pair",
        type=click.Choice(MULTI_PAIR_CHOICES),
        default=default,
        show_default=default is not None,
        help=help,
    )


# ------------------------------------------------------------------------- training options


def _field_default(settings: type, name: str) -> Any:
    value = {f.name: f.default for f in fields(settings)}[name]
    if value is MISSING:
        raise TypeError(f"{settings.__name__}.{name} has no plain default")
    return value


def shown(settings: type, name: str, note: str = "") -> str:
    """``[default: X]`` of a setting whose option defaults to None (left to the settings)."""
    value = _field_default(settings, name)
    text = f"{value:g}" if isinstance(value, float) else str(value)
    return f"[default: {text}{note}]"


def setting(settings: type, name: str, type_: Any, help: str) -> Decorator:
    """An option whose default is the settings dataclass field of the same name."""
    flag = "--" + name.replace("_", "-")
    return click.option(
        flag, type=type_, default=_field_default(settings, name), show_default=True, help=help
    )


def run_size_options(settings: type) -> Decorator:
    """``--epochs``, ``--patch``, ``--batch``, ``--lr`` of a training or distillation run."""
    return stack(
        setting(settings, "epochs", int, "Maximum epochs."),
        setting(settings, "patch", int, "Patch side (fine px)."),
        setting(settings, "batch", int, "Patches per step."),
        setting(settings, "lr", float, "Adam learning rate."),
    )


def run_control_options(
    settings: type, val_fraction_help: str, device_help: str, threads_help: str
) -> Decorator:
    """``--patience`` ... ``--seed``: stopping, validation block, device, threads, seed."""
    return stack(
        setting(
            settings,
            "patience",
            int,
            "Stop after this many epochs without a better validation loss.",
        ),
        setting(settings, "val_fraction", float, val_fraction_help),
        setting(
            settings,
            "steps_per_epoch",
            int,
            "Batches per epoch; 0 = about one pass over the training area (>= 10).",
        ),
        setting(settings, "device", None, device_help),
        setting(settings, "threads", int, threads_help),
        setting(settings, "seed", int, "Random seed."),
    )


def run_data_options(settings: type) -> Decorator:
    """``--no-augment``, ``--dates``, the scale options and the engine options, then
    ``--note``: what train and distill share after their own options."""
    return stack(
        click.option(
            "--no-augment",
            "augment",
            is_flag=True,
            default=_field_default(settings, "augment"),
            flag_value=False,
            help="No random rotations/flips of the patches.",
        ),
        click.option(
            "--dates",
            default=None,
            metavar="D1,D2,...",
            help="Dates of the pairs (YYYY-MM-DD, YYYYMMDD or YYYYDDD day of year; "
            "comma-separated, in --pair order). Default: parsed from the file names "
            "(the same forms).",
        ),
        scale_options,
        engine_options(settings),
        click.option("--note", default="", help="Free text stored in the checkpoint's metadata."),
    )


def engine_options(settings: type) -> Decorator:
    """The engine and data options shared by ``stfusion train`` and ``stfusion distill``."""
    return stack(
        click.option(
            "--devices",
            default=None,
            metavar="DEV",
            help="Where to train: auto (a GPU when there is one), cpu, cuda, cuda:1, "
            "cuda:0,1, or a device count [default: --device, auto].",
        ),
        setting(
            settings,
            "precision",
            click.Choice(PRECISIONS),
            "Floating-point precision of training (mixed precision on GPUs).",
        ),
        setting(
            settings,
            "strategy",
            None,
            "Lightning strategy, e.g. ddp for data parallel over --devices (and nodes).",
        ),
        setting(
            settings,
            "workers",
            click.IntRange(0),
            "DataLoader worker processes reading patches; 0 = read in the main process.",
        ),
        setting(
            settings,
            "max_gap",
            click.FloatRange(0.0),
            "Pair only dates at most this many days apart; 0 = any two dates of a site.",
        ),
        setting(
            settings,
            "max_invalid",
            float,
            "Largest share (0 to below 1) of invalid pixels (nodata or masked) a training "
            "patch may have; one with more is redrawn. Raise it (e.g. 0.2) for cloudy scenes.",
        ),
        click.option(
            "--val-dates",
            default=None,
            metavar="D1,D2",
            help="Hold out these dates (YYYY-MM-DD) for validation: they are targets of "
            "validation examples only, never in training. Combinable with "
            "--val-fraction.",
        ),
        setting(
            settings,
            "val_patches",
            click.IntRange(1),
            "Size of the fixed validation sample (patches of --patch px).",
        ),
        click.option(
            "--catalog",
            type=click.Path(dir_okay=False, readable=False),
            default=None,
            help="CSV with columns site,date,fine,coarse[,mask] (paths relative to the "
            "CSV; a mask raster, nonzero = invalid, masks the fine image; optional "
            "fine_scale, fine_offset, coarse_scale, coarse_offset per row). Dates are "
            "paired only within a site. Beside or instead of --pair.",
        ),
    )


def split_dates(text: str | None) -> list[str]:
    """``"D1, D2"`` -> ``["D1", "D2"]``; None or empty -> ``[]``."""
    return [d.strip() for d in text.split(",") if d.strip()] if text else []


def iso_dates(text: str | None, option: str) -> list[str]:
    """:func:`split_dates` in ISO form: ``--val-dates 20011017`` as ``--dates`` reads it (a
    trial: it was "not a date of the pairs" beside the same date spelt 2001-10-17)."""
    from stfusion.dates import DateNotFoundError, parse_date

    try:
        return [parse_date(d).isoformat() for d in split_dates(text)]
    except DateNotFoundError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None


# -------------------------------------------------------------------------- the command line

#: Options that change nothing of a result, left out of the recorded command line.
NOT_RECORDED = frozenset({"quiet", "overwrite", "resume", "note"})


def command_line(ctx: click.Context) -> list[str]:
    """The canonical command line of this run, from ``ctx.params`` (provenance: a prediction's
    ``STFUSION_COMMAND`` tag, a checkpoint's ``command``).

    Every argument and every option with a value, in the order ``--help`` lists them, under its
    long name; flags only when set away from their default; the options of
    :data:`NOT_RECORDED` left out.
    """
    args = ["stfusion", ctx.info_name or ""]
    options: list[str] = []
    for param in ctx.command.params:
        value = ctx.params.get(param.name or "")
        if param.name in NOT_RECORDED or value is None or value == "" or value == ():
            continue
        if isinstance(param, click.Argument):
            args += [str(v) for v in value] if isinstance(value, tuple) else [str(value)]
            continue
        assert isinstance(param, click.Option)
        name = max(param.opts, key=len)
        if param.is_flag:
            # get_default, not .default: click >= 8.3 keeps an UNSET sentinel there, which
            # differs from every value (every flag was recorded as set)
            if value != param.get_default(ctx):
                options.append(name)
            continue
        values = value if param.multiple else [value]
        for v in values:
            options += [name, *(map(str, v) if isinstance(v, tuple) else [str(v)])]
    return args + options


def run_meta(ctx: click.Context, note: str) -> dict[str, Any]:
    """The ``meta`` a training or distillation run stores in its checkpoint: the canonical
    command line, the arguments as given, and the ``--note``."""
    meta: dict[str, Any] = {
        "command": shlex.join(command_line(ctx)),
        "argv": " ".join(sys.argv[1:]),
    }
    if note:
        meta["notes"] = note
    return meta


def main_process() -> bool:
    """False in the processes Lightning starts beside the first for data-parallel training
    (``--strategy ddp``: they run the same command): they train, only the first reports."""
    return all(int(os.environ.get(k) or 0) == 0 for k in ("LOCAL_RANK", "NODE_RANK"))


def run_job(
    ctx: click.Context, label: str, quiet: bool, run: Callable[..., Any], *args: Any, **kw: Any
) -> Any:
    """``run(*args, **kw)`` (``dl.train.train``, ``train_stfdcnn`` or ``dl.distill.distill``)
    given the inputs that :func:`run_data_options`, ``--catalog`` and ``--overwrite`` declare
    (read from ``ctx.params``), an epoch progress display named ``label`` and the checkpoint
    metadata of :func:`run_meta`: the part of ``stfusion train`` and ``stfusion distill``
    that is the same."""
    from stfusion.cli.progress import Progress  # progress imports cli.main: not at the top
    from stfusion.io import Scaling

    p = ctx.params
    with Progress(label, quiet) as progress:
        return run(
            *args,
            dates=split_dates(p["dates"]) or None,
            fine_scaling=Scaling(p["fine_scale"], p["fine_offset"], nodata=p["fine_nodata"]),
            coarse_scaling=Scaling(
                p["coarse_scale"], p["coarse_offset"], nodata=p["coarse_nodata"]
            ),
            resampling=p["resampling"],
            overwrite=p["overwrite"],
            progress=progress.epochs,
            progress_bar=not quiet,
            meta=run_meta(ctx, p["note"]),
            catalog=p["catalog"],
            **kw,
        )
