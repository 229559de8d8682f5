"""Error and warning classes.

Every error says what was wrong and what to do. Each subclass also inherits the builtin a
caller would naturally catch (``ValueError``, ``FileNotFoundError``, ``ImportError``).
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import inspect
import os
import sys
import warnings
from collections.abc import Callable
from types import FrameType
from typing import ParamSpec, TypeVar

_P = ParamSpec("_P")
_R = TypeVar("_R")


class STFusionError(Exception):
    """Base class of every error stfusion raises on purpose."""


class InputFileError(STFusionError, OSError):
    """An input file is missing, unreadable, or not a raster."""


class UnreadableInputError(InputFileError):
    """An input file exists but this process may not read it (permissions): a series stops
    rather than go on without it, which replaced the outputs it had made."""


class GridMismatchError(STFusionError, ValueError):
    """Fine and coarse images cannot be put on one grid (no overlap, band counts, shapes)."""


class ScaleMismatchError(STFusionError, ValueError):
    """Fine and coarse values are on wildly different scales (e.g. x10000 vs 0-1).

    ``measure``: for a magnitude mismatch, what was measured (the two files' medians and
    the factor), without the advice, so a caller whose options differ (a series) can give
    its own; empty for the other checks (kelvin against Celsius, opposite signs)."""

    def __init__(self, message: str, measure: str = "") -> None:
        super().__init__(message)
        self.measure = measure


class InvalidParameterError(STFusionError, ValueError):
    """A method or command parameter has a value that cannot be used."""


class OptionError(InvalidParameterError):
    """A value of a run option that cannot work, named as on the command line: ``stfusion
    train`` and ``distill`` report it as a usage error (exit status 2)."""


class UnknownKeywordError(InvalidParameterError, TypeError):
    """A Python call with a keyword the function does not take (``predict(worker=2)``):
    Python's ``TypeError`` with the closest keyword it does take."""


def keywords_checked(func: Callable[_P, _R]) -> Callable[_P, _R]:
    """``func``, refusing an unknown keyword with :class:`UnknownKeywordError` that names the
    closest accepted one (Python's own message names none)."""
    params = inspect.signature(func).parameters.values()
    names = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return func

    @functools.wraps(func)
    def checked(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        for key in kwargs:
            if key not in names:
                close = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
                hint = f"did you mean {close[0]!r}?" if close else f"it takes {', '.join(names)}."
                raise UnknownKeywordError(
                    f"{func.__qualname__}() got an unexpected keyword argument {key!r}; {hint}"
                )
        return func(*args, **kwargs)

    return checked


class EmptyInputError(STFusionError, ValueError):
    """An input has no valid (non-nodata) pixels where they are needed."""


class UndeclaredFillError(STFusionError, ValueError):
    """An input holds a fill value far outside its data that its nodata does not declare."""


class OutputExistsError(STFusionError, FileExistsError):
    """The output file exists and --overwrite was not given."""


class OutputWriteError(STFusionError, OSError):
    """An output could not be written completely (a full disk, a failing device)."""


class MissingDependencyError(STFusionError, ImportError):
    """An optional dependency (e.g. torch for the deep methods) is not installed."""


class MethodOutputError(STFusionError, RuntimeError):
    """A fusion method (a plugin's, most likely) returned a window of the wrong shape or kind."""


class STFusionWarning(UserWarning):
    """Suspicious input that may still be intended (mostly-NaN coarse image, scale hints)."""


class RunInterrupted(BaseException):
    """A training run stopped by Ctrl-C or SIGTERM, with what was kept and the exit status
    (130, 143). A BaseException like KeyboardInterrupt, so ``except Exception`` lets it pass;
    the CLI prints ``message`` and exits with ``code``."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def interrupted_how(exc: BaseException) -> tuple[str, int]:
    """``(what stopped the run, exit status)`` for Ctrl-C (Lightning's ``SystemExit`` of it
    too) or the CLI's signal exception, which carries ``signum``."""
    ctrl_c = isinstance(exc, SystemExit | KeyboardInterrupt)
    signum = 2 if ctrl_c else int(getattr(exc, "signum", 15))
    how = {1: "Hangup (SIGHUP)", 2: "Interrupted (Ctrl-C)"}.get(signum, "Terminated (SIGTERM)")
    return how, 128 + signum


#: stfusion's folder, and the standard library's wrappers that run between its frames: a
#: warning is attributed to the first frame in neither
_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep
_WRAPPERS = frozenset({contextlib.__file__, functools.__file__})


def warn(message: str, category: type[Warning] | None = None) -> None:
    """``warnings.warn(message, category)`` (default :class:`STFusionWarning`) attributed to
    the first frame outside stfusion: the user's cell or script line, whatever depth of
    stfusion lies between (a fixed ``stacklevel`` named stfusion's own lines, such as the
    keyword-checking wrapper for every warning of ``evaluate``, so Python's once-per-place
    rule merged different calls and ``filterwarnings(module=...)`` could not select them).
    With no such frame (a worker thread's stack), the line that called this."""
    frame: FrameType | None = sys._getframe(1)
    level = 2  # the caller of this function
    while frame is not None and (
        frame.f_code.co_filename.startswith(_PACKAGE) or frame.f_code.co_filename in _WRAPPERS
    ):
        frame = frame.f_back
        level += 1
    warnings.warn(message, category or STFusionWarning, stacklevel=level if frame else 2)
