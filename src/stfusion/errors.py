"""Error and warning classes.

Every error says what was wrong and what to do. Each subclass also inherits the builtin a
caller would naturally catch (``ValueError``, ``FileNotFoundError``, ``ImportError``).
"""

from __future__ import annotations


class STFusionError(Exception):
    """Base class of every error stfusion raises on purpose."""


class InputFileError(STFusionError, OSError):
    """An input file is missing, unreadable, or not a raster."""


class GridMismatchError(STFusionError, ValueError):
    """Fine and coarse images cannot be put on one grid (no overlap, band counts, shapes)."""


class ScaleMismatchError(STFusionError, ValueError):
    """Fine and coarse values are on wildly different scales (e.g. x10000 vs 0-1)."""


class InvalidParameterError(STFusionError, ValueError):
    """A method or command parameter has a value that cannot be used."""


class OptionError(InvalidParameterError):
    """A value of a run option that cannot work, named as on the command line: ``stfusion
    train`` and ``distill`` report it as a usage error (exit status 2)."""


class EmptyInputError(STFusionError, ValueError):
    """An input has no valid (non-nodata) pixels where they are needed."""


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
