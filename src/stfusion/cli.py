"""The ``stfusion`` command line: a thin layer over the library.

Errors the user can fix (``STFusionError``) end with one short message and exit code 1 (2 for
usage errors); ``--debug`` shows the traceback.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click

import stfusion
from stfusion.cli_options import MEM_LIMIT, OFFSET, SCALE, THREADS, WORKERS, variable_option
from stfusion.errors import InvalidParameterError, STFusionError, STFusionWarning
from stfusion.inputs import band_options, role_options

log = logging.getLogger("stfusion")

# --------------------------------------------------------------------------- shared options


def _scale_options(f: Callable[..., Any]) -> Callable[..., Any]:
    opts = [
        click.option("--fine-scale", type=SCALE, default=None,
                     help="Multiply fine values by this (e.g. 0.0001 for reflectance x10000; "
                          "Landsat C2: 2.75e-5). Default: the file's own scale metadata, else 1."),
        click.option("--fine-offset", type=OFFSET, default=None,
                     help="Add this after scaling (Landsat C2: -0.2). Default: file metadata, "
                     "else 0."),
        click.option("--coarse-scale", type=SCALE, default=None,
                     help="Multiply coarse values by this. Default: file metadata, else 1."),
        click.option("--coarse-offset", type=OFFSET, default=None,
                     help="Add this to coarse values after scaling. Default: file metadata, "
                     "else 0."),
        click.option("--resampling", type=click.Choice(["nearest", "bilinear", "cubic", "average"]),
                     default="nearest", show_default=True,
                     help="How a coarse image on its own grid is reprojected onto the fine grid."),
    ]  # fmt: skip
    for opt in reversed(opts):
        f = opt(f)
    return f


def _check_scheduler(value: str | None) -> str | None:
    """``--scheduler``: refused at once (usage error) unless an address or scheduler file."""
    if value is None:
        return None
    from stfusion.parallel import check_scheduler

    try:
        return check_scheduler(value)  # type: ignore[no-any-return]
    except InvalidParameterError as exc:
        raise click.BadParameter(str(exc).removeprefix("--scheduler ")) from None


def _console(stderr: bool = False) -> Any:
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    # Tables need ~110 columns; pipes and CI logs get that width rather than 80.
    width = None if stream.isatty() else 120
    return Console(stderr=stderr, highlight=False, width=width)


class _Progress:
    """A rich progress bar that appears only for runs longer than about a second."""

    def __init__(self, label: str, quiet: bool) -> None:
        self.label = label
        self.quiet = quiet
        self._bar: Any = None
        self._task: Any = None
        self._start = time.monotonic()

    def __call__(self, done: int, total: int) -> None:
        _reraise_signal()
        if self.quiet:
            return
        if self._bar is None:
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self._bar = Progress(
                TextColumn("{task.description}"), BarColumn(),
                TextColumn("{task.completed}/{task.total} windows"), TimeElapsedColumn(),
                console=_console(stderr=True), transient=True,
            )  # fmt: skip
            self._bar.start()
            self._task = self._bar.add_task(self.label, total=total)
        self._bar.update(self._task, completed=done)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()


def _show_versions() -> str:
    import importlib.metadata as md
    import platform

    lines = [f"stfusion {stfusion.__version__}", f"python {platform.python_version()}",
             f"platform {platform.platform()}", f"cpus {os.cpu_count()}"]  # fmt: skip
    for pkg in ["numpy", "scipy", "numba", "rasterio", "xarray", "rioxarray", "click", "rich",
                "matplotlib", "dask", "distributed", "torch"]:  # fmt: skip
        try:
            lines.append(f"{pkg} {md.version(pkg)}")
        except md.PackageNotFoundError:
            lines.append(f"{pkg} not installed")
    try:
        import rasterio

        lines.append(f"GDAL {rasterio.__gdal_version__}")
    except ImportError:
        pass
    return "\n".join(lines)


def _versions_callback(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo(_show_versions())
        ctx.exit()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(stfusion.__version__, prog_name="stfusion")
@click.option(
    "--show-versions",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_versions_callback,
    help="Show versions of stfusion and its dependencies.",
)
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logging.")
@click.option("-v", "--verbose", is_flag=True, help="Log what is done (alignment, windows).")
@click.pass_context
def cli(ctx: click.Context, debug: bool, verbose: bool) -> None:
    """Spatiotemporal fusion of satellite images: predict fine images from coarse ones."""
    ctx.obj = {"debug": debug}
    level = logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("stfusion").setLevel(level)
    if not debug:
        warnings.simplefilter("ignore", category=Warning)
        warnings.simplefilter("default", category=STFusionWarning)
    warnings.formatwarning = lambda msg, cat, *a, **k: f"Warning: {msg}\n"  # type: ignore[assignment]


# ------------------------------------------------------------------------------- predict


@cli.command()
@click.option(
    "--method",
    "-m",
    default="starfm",
    show_default=True,
    help="Fusion method (see `stfusion methods`).",
)
@click.option(
    "--pair",
    "pairs",
    nargs=2,
    multiple=True,
    type=click.Path(),
    metavar="FINE COARSE",
    help="A fine image and the coarse image of the same date. Repeat for more pairs. Each "
    "may be a MODIS .hdf, a quoted glob or comma list of band files, and end in :BANDS "
    "(docs/inputs.md).",
)
@click.option(
    "--fine-ref",
    "fine_ref",
    default=None,
    type=click.Path(),
    metavar="FINE",
    help="A fine image of any date without its coarse image, in place of --pair, for "
    "methods that need no coarse image at the reference date (ganstfm).",
)
@click.option(
    "--coarse",
    "target",
    required=True,
    type=click.Path(),
    help="The coarse image at the date to predict.",
)
@click.option("--out", "-o", required=True, type=click.Path(), help="Output GeoTIFF.")
@click.option(
    "--param",
    "-p",
    "params",
    multiple=True,
    metavar="NAME=VALUE",
    help="Method parameter, e.g. window=31. `ratio=R` gives the resolution ratio "
    "when all inputs are on one grid.",
)
@_scale_options
@band_options
@click.option(
    "--mem-limit",
    type=MEM_LIMIT,
    default=None,
    metavar="MB",
    help="Memory for the working windows (default 1024 MB); larger scenes are "
    "processed window by window from disk.",
)
@click.option(
    "--workers",
    type=WORKERS,
    default=1,
    show_default=True,
    help="Windows processed at the same time (threads).",
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
    "names), pairs used, fallback flag, per-band uncertainty.",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing output file.")
@click.option("--quiet", "-q", is_flag=True, help="No progress display or summary.")
@variable_option
def predict(
    method: str, pairs: Sequence[tuple[str, str]], fine_ref: str | None, target: str, out: str,
    params: Sequence[str], fine_scale: float | None, fine_offset: float | None,
    coarse_scale: float | None, coarse_offset: float | None, resampling: str,
    mem_limit: float | None, workers: int, threads: int | None, scheduler: str | None,
    quality: bool, overwrite: bool, quiet: bool, variable: str | None, **band_opts: Any,
) -> None:  # fmt: skip
    """Predict the fine image at the date of the --coarse image."""
    from stfusion.api import run_prediction
    from stfusion.methods.variables import params_with_variable

    params = params_with_variable(params, method, variable)
    pairs = _pairs_or_fine_ref(method, pairs, fine_ref)

    roles = role_options(fine_scale, fine_offset, coarse_scale, coarse_offset, **band_opts)
    fine_scale, fine_offset = roles["fine_scale"], roles["fine_offset"]
    coarse_scale, coarse_offset = roles["coarse_scale"], roles["coarse_offset"]
    t0 = time.monotonic()
    progress = _Progress(f"{method}", quiet)
    try:
        info = run_prediction(
            method=method, pairs=pairs, target=target, out=out, params=params,
            fine_scale=fine_scale, fine_offset=fine_offset, coarse_scale=coarse_scale,
            coarse_offset=coarse_offset, resampling=resampling, mem_limit_mb=mem_limit,
            workers=workers, threads=threads, overwrite=overwrite, progress=progress,
            scheduler=scheduler, quality=quality, command=_command_line(),
            fine_bands=roles["fine_bands"], coarse_bands=roles["coarse_bands"],
        )  # fmt: skip
    finally:
        progress.close()
    if not quiet:
        for note in info["notes"]:
            click.echo(f"note: {note}", err=True)
        where = "" if scheduler is None else f" on {len(info['workers'])} cluster worker(s)"
        click.echo(
            f"wrote {out} ({info['method']}, {len(pairs)} pair(s), {info['windows']} window(s)"
            f"{where}, {time.monotonic() - t0:.1f} s)"
        )
        if info["quality"]:
            click.echo(f"wrote {info['quality']} (quality layer)")


def _pairs_or_fine_ref(
    method: str, pairs: Sequence[tuple[str, str]], fine_ref: str | None
) -> Sequence[tuple[str, str]]:
    """The pairs of ``predict``: ``--pair``, or ``--fine-ref F`` as the pair ``(F, F)`` for a
    method that reads no coarse image at the reference date (its coarse slot is never used)."""
    from stfusion.methods import get_method

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


# ------------------------------------------------------------------------------ evaluate


@cli.command()
@click.argument("prediction", type=click.Path())
@click.argument("truth", type=click.Path())
@click.option("--pred-scale", type=float, default=None, help="Scale of the prediction's values.")
@click.option(
    "--truth-scale",
    type=float,
    default=None,
    help="Scale of the truth's values (e.g. 0.0001). Default: file metadata, else 1.",
)
@click.option("--truth-offset", type=float, default=None, help="Offset of the truth's values.")
@click.option(
    "--ratio",
    type=float,
    default=None,
    help="Resolution ratio coarse/fine pixel size, for ERGAS (e.g. 16).",
)
@click.option(
    "--data-range",
    default="1.0",
    show_default=True,
    help="Data range for SSIM and PSNR: a number, or 'truth' (the truth's valid "
    "max - min, for LST or NDVI).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option(
    "--no-scale-check",
    is_flag=True,
    help="Score even when prediction and truth differ in scale by more than 20x (refused "
    "by default: reflectance against x10000 integers; docs/inputs.md).",
)
def evaluate(
    prediction: str, truth: str, pred_scale: float | None, truth_scale: float | None,
    truth_offset: float | None, ratio: float | None, data_range: str, as_json: bool,
    no_scale_check: bool = False,
) -> None:  # fmt: skip
    """Score PREDICTION against TRUTH with the pinned metrics (docs/metrics.md)."""
    from stfusion.api import evaluate_files

    dr: float | str = data_range
    if data_range != "truth":
        try:
            dr = float(data_range)
        except ValueError:
            raise InvalidParameterError(
                f"--data-range {data_range}: give a number or 'truth'."
            ) from None
    report = evaluate_files(
        prediction, truth, pred_scale=pred_scale, truth_scale=truth_scale,
        truth_offset=truth_offset, ratio=ratio, data_range=dr, scale_check=not no_scale_check,
    )  # fmt: skip
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
        return
    from stfusion.report import metrics_table

    _console().print(metrics_table(report, title=f"{prediction} vs {truth}"))


# ------------------------------------------------------------------------------- inspect


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path())
@_scale_options
@band_options
def inspect(
    files: Sequence[str], fine_scale: float | None, fine_offset: float | None,
    coarse_scale: float | None, coarse_offset: float | None, resampling: str,
    **band_opts: Any,
) -> None:  # fmt: skip
    """Show how each file would be read, and how predict would align it.

    The first file is taken as the fine image (its grid is the output grid); the others as
    coarse images.
    """
    from stfusion.api import inspect_files

    roles = role_options(fine_scale, fine_offset, coarse_scale, coarse_offset, **band_opts)
    roles.pop("fine_preset"), roles.pop("coarse_preset")
    click.echo(inspect_files(files, resampling=resampling, **roles))


# ------------------------------------------------------------------------------- methods


@cli.command()
def methods() -> None:
    """List the fusion methods and their parameters."""
    from stfusion.methods import available, get_method

    for name in available():
        cls = get_method(name)
        pairs = (f"{cls.min_pairs}" if cls.min_pairs == cls.max_pairs
                 else f"{cls.min_pairs}+" if cls.max_pairs is None
                 else f"{cls.min_pairs}-{cls.max_pairs}")  # fmt: skip
        ps = " ".join(f"{p.name}={p.default}" for p in cls.params) or "-"
        click.echo(f"{name:<10} pairs {pairs:<4} {cls.title} ({cls.paper}); params: {ps}")


# --------------------------------------------------------------------------------- bench


@cli.command()
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
@click.option(
    "--param",
    "-p",
    "params",
    multiple=True,
    metavar="METHOD.NAME=VALUE",
    help="Method parameter, e.g. starfm.window=31.",
)
@click.option("--no-figures", is_flag=True, help="Tables only (faster).")
@click.option("--list", "list_cases", is_flag=True, help="List the available cases and exit.")
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace an earlier bench output in --out (only that: a folder holding anything "
    "else is refused; docs/commands/bench.md).",
)
def bench(
    cases: str, methods: str, out: str | None, cases_file: str | None, data_dir: str | None,
    params: Sequence[str], no_figures: bool, list_cases: bool, overwrite: bool,
) -> None:  # fmt: skip
    """Run methods on named cases with one protocol; write tables, figures and a report."""
    from stfusion.bench import parse_bench_params, run_bench
    from stfusion.cases import load_cases_file, named_cases
    from stfusion.methods import available

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
    method_list = list(available()) if methods == "all" else [
        m.strip() for m in methods.split(",") if m.strip()]  # fmt: skip
    con = _console(stderr=True)
    with con.status("starting") as status:
        result = run_bench(
            chosen, method_list, out, params=parse_bench_params(params), overwrite=overwrite,
            figures=not no_figures, progress=lambda msg: status.update(msg),
        )  # fmt: skip
    click.echo(result["summary"])
    click.echo(f"wrote {out}/ (metrics.csv, runs.csv, summary.md, index.html, figures/) in "
               f"{result['total_seconds']:.0f} s")  # fmt: skip


# ---------------------------------------------------------------------------------- demo


@cli.command()
@click.argument("outdir", required=False, default="stfusion-demo", type=click.Path())
@click.option("--overwrite", is_flag=True, help="Replace existing demo outputs.")
@click.option("--method", "-m", default="starfm", show_default=True, help="Method to run.")
def demo(outdir: str, overwrite: bool, method: str) -> None:
    """Run the cia-1pair case on the bundled sample and show how well it does."""
    from stfusion.demo import run_demo

    run_demo(Path(outdir), overwrite=overwrite, method=method, console=_console(),
             command=_command_line())  # fmt: skip


def _command_line() -> list[str]:
    """This command's line, for the output's ``STFUSION_COMMAND`` tag (provenance)."""
    ctx = click.get_current_context()
    argv = sys.argv[1:]
    # Run from Python (tests, CliRunner) sys.argv is not this command's line: say what ran.
    if ctx.info_name not in argv:
        return ["stfusion", ctx.info_name or "", *(f"--{k}={v}" for k, v in ctx.params.items())]
    return ["stfusion", *argv]


# --------------------------------------------------------------- commands in other modules

from stfusion.distill_cli import distill  # noqa: E402
from stfusion.series_cli import series  # noqa: E402
from stfusion.train_cli import train  # noqa: E402

cli.add_command(distill)
cli.add_command(series)
cli.add_command(train)


# ----------------------------------------------------------------------------- entry point


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point: user-fixable errors become one line on stderr, not a traceback."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or os.environ.get("STFUSION_DEBUG") == "1"
    sys.unraisablehook = _unraisable
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    try:
        code = cli.main(args=args, prog_name="stfusion", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except Terminated:
        click.echo("Terminated (SIGTERM); partial outputs removed.", err=True)
        sys.exit(128 + signal.SIGTERM)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except STFusionError as exc:
        if debug:
            raise
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)
    except (OSError, MemoryError) as exc:
        if debug:
            raise
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)
    # With standalone_mode=False click returns the command's return value: a command that
    # returns an int (series: 3 when dates failed) sets the exit status.
    if _SIGNALLED:  # the signal's exception was swallowed and the command still finished
        click.echo("Interrupted; the command had finished its outputs.", err=True)
        sys.exit(128 + _SIGNALLED[-1])
    if isinstance(code, int) and code:
        sys.exit(code)


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so that every ``with`` block cleans up.

    A BaseException (like KeyboardInterrupt) so ``except Exception`` does not swallow it; not a
    KeyboardInterrupt, which click would turn into "Aborted." and exit status 130.
    """


#: Signals received (SIGINT, SIGTERM). The exception a handler raises can be swallowed when
#: it lands inside code that ignores exceptions (a weakref callback during an import), so the
#: progress callback raises it again at the next window.
_SIGNALLED: list[int] = []


def _on_signal(signum: int, frame: object) -> None:
    _SIGNALLED.append(signum)
    _reraise_signal()


def _reraise_signal() -> None:
    if _SIGNALLED:
        raise Terminated() if _SIGNALLED[-1] == signal.SIGTERM else KeyboardInterrupt()


def _unraisable(unraisable: Any) -> None:
    """Keep quiet about a signal's exception that landed where Python ignores exceptions
    (a ctypes callback of numba's compiler, a weakref callback): it is raised again at the next
    window, and a traceback would tell the user something broke."""
    if _SIGNALLED and isinstance(unraisable.exc_value, Terminated | KeyboardInterrupt):
        return
    sys.__unraisablehook__(unraisable)


if __name__ == "__main__":
    main()
