"""The one progress display of the command line (windows of a prediction, dates of a series,
epochs of a training run) and the rich consoles it and the commands print to."""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

import click

from stfusion.cli.main import reraise_signal


def console(stderr: bool = False) -> Any:
    """A rich console on stdout (or stderr); 120 columns when not a terminal."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    # Tables need ~110 columns; pipes and CI logs get that width rather than 80.
    width = None if stream.isatty() else 120
    return Console(stderr=stderr, highlight=False, width=width)


#: Seconds without a line after which a log says the step still runs, and again as often.
HEARTBEAT_S = 30.0
#: A log says a run's stages (:meth:`Progress.stage`) once it has run this long, a line at
#: most this often: a quick run stays one line, a long one says where it is.
STAGE_EVERY_S = 10.0


class Progress:
    """A rich progress bar on stderr (started at the first report, gone when closed), or one
    line per epoch for training; silent when ``quiet``.

    Hand the library the callback of what it reports: :meth:`windows` (``done, total``),
    :meth:`dates` (``done, total, record``) or :meth:`epochs` (an event dict). Use it as a
    context manager, or call :meth:`close`.
    """

    def __init__(self, label: str, quiet: bool, *, unit: str = "windows") -> None:
        self.label = label
        self.quiet = quiet
        self.unit = unit
        self._bar: Any = None
        self._task: Any = None
        self._logged = 0  # tenths logged (stderr not a terminal)
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()
        self._gen = 0  # bumped by _cancel: a timer of an older generation stays silent
        self._t0 = time.monotonic()
        self._first: tuple[float, int] | None = None  # (time, done) of the first count
        self._stage: str | None = None  # the stage within it (a log's lines say it)
        self._last_line = self._t0
        self._beat = ""  # what the heartbeat says (a stage goes after it)

    def phase(self, text: str, delay: float = 0.0) -> None:
        """Say what runs before or after the counted steps (reading and fitting, writing the
        file): the bar's description on a terminal, a line in a log; there ``delay`` s later,
        and only if nothing was reported meanwhile (an error in the first seconds stays the
        only line)."""
        if self.quiet:
            return
        self._stage = None
        if not sys.stderr.isatty():
            self._cancel()
            if delay <= 0:
                self._say(text)
                self._every(HEARTBEAT_S, f"still {text}")
            else:
                self._every(delay, text, then=f"still {text}")
            return
        self._start(None)
        self._bar.update(self._task, description=f"{self.label}: {text}")

    def stage(self, text: str) -> None:
        """Where a phase is (``member fsdaf (2 of 3), window 4 of 9``: the library's
        :func:`stfusion.tiling.reporting_stages` callback): the bar's description on a
        terminal; in a log, a line once the run has gone :data:`STAGE_EVERY_S` s without one,
        and the next ``still ...`` line says it."""
        if self.quiet:
            return
        if sys.stderr.isatty():
            self._start(None)
            self._bar.update(self._task, description=f"{self.label}: {text}")
            return
        with self._lock:
            self._stage = text
            if time.monotonic() - self._last_line < STAGE_EVERY_S:
                return
        self._cancel()
        self._say(text)
        if self._beat:
            self._every(HEARTBEAT_S, self._beat)

    def _start(self, total: int | None) -> None:
        if self._bar is not None:
            return
        from rich import progress as rp

        self._bar = rp.Progress(
            rp.TextColumn("{task.description}"),
            rp.BarColumn(),
            rp.MofNCompleteColumn(),  # "0/?" before the count is known (a phase)
            rp.TextColumn(self.unit),
            rp.TimeElapsedColumn(),
            rp.TimeRemainingColumn(),
            console=console(stderr=True),
            transient=True,
        )
        self._bar.start()
        self._task = self._bar.add_task(self.label, total=total)

    def _say(self, text: str) -> None:
        self._last_line = now = time.monotonic()
        click.echo(f"{self.label}: {text} ({now - self._t0:.0f} s)", err=True)

    def _every(self, delay: float, text: str, then: str | None = None) -> None:
        """In a log: ``text`` in ``delay`` s, then ``then`` (default ``text``) every
        :data:`HEARTBEAT_S` s, until the next report (a long step, such as a whole scene
        fitted as one window, otherwise left minutes without a line)."""
        with self._lock:
            self._beat = then or text
            self._schedule(delay, self._gen, text, self._beat)

    def _schedule(self, delay: float, gen: int, text: str, then: str) -> None:
        """A timer saying ``text`` in ``delay`` s, then ``then`` again; silent once
        :meth:`_cancel` moved past generation ``gen``. Called holding ``_lock``."""

        def say() -> None:
            with self._lock:
                if gen == self._gen:
                    self._say(self._with_stage(text))
                    self._schedule(HEARTBEAT_S, gen, then, then)

        self._timer = threading.Timer(delay, say)
        self._timer.daemon = True
        self._timer.start()

    def _with_stage(self, text: str) -> str:
        """A log's line ``text`` with the stage the run is at: after a count (``3/26 dates,
        working: 2020-03-17, window 4 of 9``); in place of a phase's ``still ...`` (which
        said "still reading the inputs" of a date long begun)."""
        if self._stage is None:
            return text
        return f"{self._stage}, working" if text.startswith("still ") else f"{text}: {self._stage}"

    def _cancel(self) -> None:
        with self._lock:
            self._gen += 1
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

    def update(self, done: int, total: int, description: str | None = None) -> None:
        """Show ``done`` of ``total`` (and a new description): a bar on a terminal; in a log
        (stderr not a terminal, where a bar shows nothing until it ends) a line at each tenth."""
        if self.quiet:
            return
        self._cancel()
        self._stage = None  # the counted steps began
        if not sys.stderr.isatty():
            tenth = done * 10 // max(total, 1)
            if self._first is None and done > 0:  # the rate after the first window, whose
                self._first = (time.monotonic(), done)  # reads warm the caches (22 min for 6)
            if total > 1 and tenth > self._logged:
                self._logged = tenth
                self._say(f"{done}/{total} {self.unit}{self._left(done, total)}")
            if done < total:
                # due HEARTBEAT_S after the last line, not after this window: windows of 15 s
                # each re-armed it before it fired, 6 silent minutes to the first tenth
                since = time.monotonic() - self._last_line
                self._every(max(0.0, HEARTBEAT_S - since), f"{done}/{total} {self.unit}, working")
            return
        self._start(total)
        fields = {} if description is None else {"description": description}
        self._bar.update(self._task, completed=done, total=total, **fields)

    def _left(self, done: int, total: int) -> str:
        """ ", about N min left" at the rate since the first count (a log has no bar's ETA)."""
        if self._first is None:
            return ""
        t, d = self._first
        if done >= total or done <= d:
            return ""
        left = (time.monotonic() - t) / (done - d) * (total - done)
        if left < 1:  # "about 0 s left" says nothing
            return ""
        return f", about {left:.0f} s left" if left < 120 else f", about {left / 60:.0f} min left"

    def windows(self, done: int, total: int) -> None:
        """``run_prediction``'s callback; a signal received meanwhile is raised here (the
        exception its handler raised may have been swallowed: see ``main._on_signal``)."""
        reraise_signal()
        self.update(done, total, self.label)  # after a phase's description
        if done == total:
            self.phase("writing the output file")

    def dates(self, done: int, total: int, record: Any) -> None:
        """``run_series``' callback: after every date, with its status."""
        self.update(done, total, f"{record.date} {record.status}")

    def epochs(self, ev: dict[str, Any]) -> None:
        """The trainers' callback: a line per epoch (and one for the feature-loss
        autoencoder) on stderr; the step bar with ETA is Lightning's (on a terminal)."""
        if self.quiet:
            return
        stage = ev["stage"]
        if stage == "autoencoder_done":
            click.echo(
                f"autoencoder (feature loss): {ev['steps']} steps, loss {ev['loss']:.4g} "
                f"({ev['seconds']:.1f} s)",
                err=True,
            )
        elif stage == "epoch":
            gan = f"  D {ev['d_loss']:.3g}  G adv {ev['g_adv']:.3g}" if "d_loss" in ev else ""
            click.echo(
                f"epoch {int(ev['epoch']):>3}  train {ev['train_loss']:.4g}  "
                f"val {ev['val_loss']:.4g}  val RMSE {ev['val_rmse']:.4g} "
                f"(additive {ev['val_rmse_additive']:.4g}){gan}  "
                f"({ev['seconds']:.1f} s, best epoch {ev['best_epoch']})",
                err=True,
            )

    def close(self) -> None:
        self._cancel()
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
