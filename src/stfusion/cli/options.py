"""Click types of the options several commands share, declared once.

Each refuses a value that cannot work with a usage error (exit status 2) that names the option,
the value and what to give instead, before any file is read: ``--mem-limit 0`` or ``nan``,
``--workers 0``, ``--fine-scale 0`` or ``inf`` never reach the library.
"""

from __future__ import annotations

import math
from typing import Any

import click


class FiniteFloat(click.ParamType):
    """A finite float, optionally bounded: ``nan`` and ``inf`` are refused (click's
    ``FloatRange`` lets them through)."""

    name = "float"

    def __init__(
        self, *, positive: bool = False, minimum: float | None = None, what: str = ""
    ) -> None:
        self.positive = positive
        self.minimum = minimum
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


#: ``--mem-limit MB``: megabytes for the working windows.
MEM_LIMIT = FiniteFloat(
    positive=True, what="megabytes for the working windows, e.g. --mem-limit 500"
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

#: ``--variable`` for every command that runs the classical methods (predict, series).
variable_option = click.option(
    "--variable",
    type=click.Choice(["auto", "reflectance", "ndvi", "lst", "other"]),
    default=None,
    help="What the images measure; sets the classical methods' unit-bearing constants "
    "(default: inferred from the data and logged; docs/methods/*.md).",
)
