"""stfusion: spatiotemporal fusion of satellite images.

Predict a fine-resolution image (e.g. Landsat, 30 m) at a date where only a coarse one
(e.g. MODIS, 500 m) exists, from one or more fine + coarse pairs at other dates.

Where to start (docs/api.md has the whole list):

- ``stfusion.methods.make_estimator("fsdaf", pairs=1)`` or a method class
  (``stfusion.methods.fsdaf.FSDAF``): ``.fit(pairs, ratio=16).predict(coarse)``;
- ``stfusion.metrics.evaluate(pred, truth)``, ``stfusion.api.evaluate_files(pred, truth)``;
- ``stfusion.api.run_prediction(...)``: what ``stfusion predict`` does;
- ``stfusion.series.run_series(SeriesConfig(...))``: a whole season;
- ``stfusion.dl.train.train(...)``: deep models on your own data.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("stfusion")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

from stfusion.errors import (
    EmptyInputError,
    GridMismatchError,
    InputFileError,
    InvalidParameterError,
    MethodOutputError,
    MissingDependencyError,
    OutputExistsError,
    OutputWriteError,
    ScaleMismatchError,
    STFusionError,
    STFusionWarning,
    UndeclaredFillError,
)

__all__ = [
    "EmptyInputError",
    "GridMismatchError",
    "InputFileError",
    "InvalidParameterError",
    "MethodOutputError",
    "MissingDependencyError",
    "OutputExistsError",
    "OutputWriteError",
    "STFusionError",
    "STFusionWarning",
    "ScaleMismatchError",
    "UndeclaredFillError",
    "__version__",
]
