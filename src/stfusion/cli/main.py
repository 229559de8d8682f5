"""The ``stfusion`` command line: a thin layer over the library.

The group loads each command's module only when that command runs or its help is shown
(:data:`COMMANDS`), and no command imports torch or a method before it runs, so
``stfusion --help`` stays quick and works without torch. Errors the user can fix
(``STFusionError``) end with one short message and exit code 1 (2 for usage errors);
``--debug`` shows the traceback.
"""

from __future__ import annotations

import errno
import importlib
import logging
import os
import signal
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import click

import stfusion
from stfusion.errors import RunInterrupted, STFusionError, STFusionWarning

log = logging.getLogger("stfusion")

#: Command name -> ``module:attribute`` of its click command, imported when first needed.
COMMANDS: dict[str, str] = {
    name: f"stfusion.cli.{name}:{name}"
    for name in (
        "bench",
        "demo",
        "distill",
        "evaluate",
        "inspect",
        "methods",
        "predict",
        "series",
        "train",
    )
}


class LazyGroup(click.Group):
    """A group whose commands are imported from :data:`COMMANDS` on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMANDS, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            module, _, attr = COMMANDS[cmd_name].partition(":")
            self.add_command(getattr(importlib.import_module(module), attr), cmd_name)
        return self.commands.get(cmd_name)


def _show_versions() -> str:
    import importlib.metadata as md
    import platform

    lines = [
        f"stfusion {stfusion.__version__}",
        f"python {platform.python_version()}",
        f"platform {platform.platform()}",
        f"cpus {os.cpu_count()}",
    ]
    for pkg in [
        "numpy",
        "scipy",
        "numba",
        "rasterio",
        "xarray",
        "rioxarray",
        "click",
        "rich",
        "matplotlib",
        "dask",
        "distributed",
        "torch",
        "lightning",
        "zarr",
        "netCDF4",
        "pyhdf",
        "psutil",
    ]:
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


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
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
    # other libraries' DEBUG (rasterio logs every GDAL environment: 678 of 680 lines) would
    # drown stfusion's own; they log from INFO up
    logging.basicConfig(
        level=max(level, logging.INFO), format="%(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("stfusion").setLevel(level)
    if not debug:
        warnings.simplefilter("ignore", category=Warning)
    # each message once, wherever it is raised (a check made twice warned twice)
    warnings.simplefilter("once", category=STFusionWarning)
    warnings.formatwarning = _once_per_command()


def _once_per_command() -> Callable[..., str]:
    """``warnings.formatwarning`` that prints a message once per command: Python's "once"
    forgets what it showed whenever a ``catch_warnings`` block ends (an ensemble's skipped
    members were warned about once per date of a series)."""
    shown: set[str] = set()

    def formatted(message: Warning | str, *args: object, **kwargs: object) -> str:
        text = f"Warning: {message}\n"
        if text in shown:
            return ""
        shown.add(text)
        return text

    return formatted


# ----------------------------------------------------------------------------- entry point


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point: user-fixable errors become one line on stderr, not a traceback.

    Called from Python (a notebook), it leaves the process as it found it: the signal
    handlers, ``sys.stdout``, the unraisable hook, the warnings filters and format and the
    logging set-up are put back when it returns or raises ``SystemExit``, and a signal of an
    earlier call does not count in the next."""
    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    stdout, stderr, hook, fmt = sys.stdout, sys.stderr, sys.unraisablehook, warnings.formatwarning
    root, ours = logging.getLogger(), logging.getLogger("stfusion")
    logged = (list(root.handlers), root.level, ours.level)
    _SIGNALLED.clear()
    try:
        with warnings.catch_warnings():
            _main(argv)
    finally:
        warnings.formatwarning = fmt
        root.handlers[:] = logged[0]
        root.setLevel(logged[1])
        ours.setLevel(logged[2])
        for signum, handler in handlers.items():
            if handler is not None:
                signal.signal(signum, handler)
        if isinstance(sys.stdout, PipeSafeStdout) and stdout is not None:
            sys.stdout.flush()  # through the wrapper: a reader gone is no error at exit
            sys.stdout = stdout
        if isinstance(sys.stderr, SafeStderr) and stderr is not None:
            sys.stderr.flush()
            sys.stderr = stderr
        sys.unraisablehook = hook


def _main(argv: Sequence[str] | None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or os.environ.get("STFUSION_DEBUG") == "1"
    global _DEBUG
    _DEBUG = debug
    sys.unraisablehook = _unraisable
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGHUP, _on_signal)  # a closed terminal or ssh session
    for name in ("stdout", "stderr"):
        if getattr(sys, name) is None:  # started with it closed (>&-): write nowhere
            setattr(sys, name, open(os.devnull, "w"))
    if not isinstance(sys.stdout, PipeSafeStdout):
        sys.stdout = PipeSafeStdout(sys.stdout)
    if not isinstance(sys.stderr, SafeStderr):
        sys.stderr = SafeStderr(sys.stderr)
    try:
        code = cli.main(args=args, prog_name="stfusion", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo(f"Interrupted (Ctrl-C); partial outputs removed.{_kept(args)}", err=True)
        sys.exit(130)
    except Terminated:
        signum = _SIGNALLED[-1] if _SIGNALLED else signal.SIGTERM
        name = "Hangup (SIGHUP)" if signum == signal.SIGHUP else "Terminated (SIGTERM)"
        click.echo(f"{name}; partial outputs removed.{_kept(args)}", err=True)
        sys.exit(128 + signum)
    except RunInterrupted as exc:  # a training run: what it kept, and how to go on
        click.echo(exc.message, err=True)
        sys.exit(exc.code)
    except click.ClickException as exc:
        if isinstance(exc, click.NoSuchOption):
            # a file whose name starts with "-" (inspect -F1.tif) was read as options
            name = next(
                (a for a in args if a.startswith(exc.option_name) and os.path.isfile(a)), ""
            )
            if name:
                hint = f" ({name} is a file: give it as ./{name}, or after --.)"
                exc = click.UsageError(exc.format_message() + hint, exc.ctx)
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
        click.echo(f"Error: {exc}{_os_advice(exc)}", err=True)
        sys.exit(1)
    except Exception as exc:
        _plugin_fault(exc, debug)
        raise
    # With standalone_mode=False click returns the command's return value: a command that
    # returns an int (series: 3 when dates failed) sets the exit status.
    if _SIGNALLED:  # the signal's exception was swallowed and the command still finished
        click.echo("Interrupted; the command had finished its outputs.", err=True)
        sys.exit(128 + _SIGNALLED[-1])
    if isinstance(code, int) and code:
        sys.exit(code)


def _kept(args: Sequence[str]) -> str:
    """What a training command keeps when a signal stops it outside its epochs (a second
    Ctrl-C, one after the last epoch): its checkpoint is no partial output."""
    command = next((a for a in args if not a.startswith("-")), "")
    if command not in ("train", "distill"):
        return ""
    return (
        " A checkpoint saved by a finished epoch is kept, with its training state: run the "
        "same command with --resume to go on."
    )


def _plugin_fault(exc: Exception, debug: bool) -> None:
    """A method plugin's own exception (innermost in the traceback), wherever stfusion
    called the plugin: one line naming it and exit 1, as for a fault in its
    ``predict_window`` (a fit, or a plugin as VIPSTF's base or an ensemble member, printed
    a traceback that did not say whose fault it was). Anything else: the traceback."""
    from stfusion.provenance import plugin_at_fault

    where = None if debug else plugin_at_fault(exc)
    if where is not None:
        click.echo(
            f"Error: the method plugin {where} failed: {type(exc).__name__}: {exc}. A fault "
            "in the plugin: report it to its authors (--debug shows the traceback).",
            err=True,
        )
        sys.exit(1)


class PipeSafeStdout:
    """``sys.stdout`` that drops what it can no longer write once its reader has gone
    (``stfusion methods | head -1``): the rest goes to the null device and the exit status
    stays the command's own (click turned the BrokenPipeError into a silent exit 1, which
    means bad input here, and a series' failed dates lost their status 3)."""

    #: the write errors that mean the stream is gone, not that the command failed
    lost: tuple[type[OSError], ...] = (BrokenPipeError,)

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._write(text)
        except self.lost:
            self._gone()
            return len(text)
        except OSError as exc:
            raise _report_lost(exc) from None

    def _write(self, text: str) -> int:
        """Write all of ``text``: a file's byte buffer takes a write larger than itself
        straight to the file and drops what a short write left (a disk filling: `evaluate
        --csv > scores.csv` kept 4096 of 6757 bytes, exit 0), so the bytes go through it
        until every one is taken and a full disk raises."""
        buffer = getattr(self._stream, "buffer", None)
        if buffer is None or os.linesep != "\n" or not isinstance(text, str):  # no bytes
            # below, newlines translated, or bytes (click's probe: a text stream's TypeError)
            return int(self._stream.write(text))
        self._stream.flush()
        data = memoryview(text.encode(self._stream.encoding, self._stream.errors or "strict"))
        while data:
            taken = buffer.write(data)
            if not taken:  # a non-blocking stream that took nothing
                raise BlockingIOError(errno.EAGAIN, "standard output took nothing")
            data = data[taken:]
        if self._stream.line_buffering:
            buffer.flush()
        return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except self.lost:
            self._gone()
        except OSError as exc:
            raise _report_lost(exc) from None

    def _gone(self) -> None:
        try:  # the descriptor now leads nowhere: pending and later writes succeed, unread
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())
            os.close(devnull)
        except (OSError, ValueError):
            pass

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _report_lost(exc: OSError) -> STFusionError:
    """stdout that cannot be written (``>/dev/full``): said as such, not as a full disk for
    the outputs, which are whole or not there (renamed into place only when complete)."""
    return STFusionError(
        f"standard output could not be written ({exc.strerror or exc}): the command's report "
        "was lost. Files it wrote are complete (outputs are renamed into place only when "
        "whole); send the report elsewhere."
    )


class SafeStderr(PipeSafeStdout):
    """``sys.stderr`` whose write errors are dropped: it carries only progress, warnings and
    messages, so a full log disk (``2>/dev/full``) or a closed log no longer aborts the work
    (a prediction stopped with nothing written, a series after its first date)."""

    lost = (OSError,)


def _os_advice(exc: BaseException) -> str:
    """What to do about a system error that names no stfusion option (a full disk, a
    read-only file system met while writing)."""
    code = getattr(exc, "errno", None)
    if code in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        import tempfile

        scratch = tempfile.gettempdir()
        where = getattr(exc, "filename", None)  # the folder itself: a spill (io.spill)
        if where is not None and os.path.abspath(str(where)) == os.path.abspath(scratch):
            return (
                f". The temporary folder {scratch} is full (large runs spill there): point "
                "TMPDIR at a disk with room, or free some space there."
            )
        return (
            ". The disk (or your quota) is full: free some space or write the outputs "
            f"elsewhere (or, if the temporary folder {scratch} is the full one, point TMPDIR "
            "at a disk with room); outputs are renamed into place only when complete."
        )
    if code == errno.EROFS:
        return ". The file system is read-only: choose an output folder you can write in."
    if code in (errno.EACCES, errno.EPERM):  # also root in an immutable folder (chattr +i)
        return (
            ". Not allowed here (permissions, or a folder marked immutable: lsattr): choose "
            "a folder you can write in, or have its owner let you."
        )
    if code == errno.ENAMETOOLONG:
        return (
            ". A name in the path is over the file system's limit (255 bytes on most), or the "
            "whole path over 4096 bytes: shorten it (or give it relative to a folder below)."
        )
    return ""


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so that every ``with`` block cleans up.

    A BaseException (like KeyboardInterrupt) so ``except Exception`` does not swallow it; not a
    KeyboardInterrupt, which click would turn into "Aborted." and exit status 130.
    """

    signum: int = signal.SIGTERM


#: ``--debug`` (or STFUSION_DEBUG=1) given: exceptions Python ignores are shown.
_DEBUG = False

#: Signals received (SIGINT, SIGTERM). The exception a handler raises can be swallowed when
#: it lands inside code that ignores exceptions (a weakref callback during an import), so the
#: progress callback raises it again at the next window.
_SIGNALLED: list[int] = []


def _on_signal(signum: int, frame: object) -> None:
    _SIGNALLED.append(signum)
    reraise_signal()


def reraise_signal() -> None:
    if _SIGNALLED:
        if _SIGNALLED[-1] in (signal.SIGTERM, signal.SIGHUP):
            exc = Terminated()
            exc.signum = int(_SIGNALLED[-1])  # read by the training loop (dl), which cannot
            raise exc  # import the command line
        raise KeyboardInterrupt()


def _unraisable(unraisable: Any) -> None:
    """Keep quiet, once a signal has come, about exceptions where Python ignores them: the
    signal's own (a ctypes callback of numba's compiler, a weakref callback; it is raised
    again at the next window) and what it broke in finalizers (llvmlite's ``ObjectRef.__del__``
    of a compilation cut short: "AttributeError: ... _as_parameter_"). A traceback would tell
    the user something broke; the run is ending as asked. ``--debug`` shows them."""
    if _SIGNALLED and not _DEBUG:
        return
    sys.__unraisablehook__(unraisable)
