"""Fusing a whole season: one fine image for every coarse date, through clouds.

:func:`run_series` is ``stfusion series``, driven by one :class:`SeriesConfig`. Images are
dated by their names (:mod:`stfusion.dates`) or a catalog; masks (:mod:`stfusion.qa`) turn
cloudy pixels into NaN, which every method treats as invalid.

Rules (docs/commands/series.md has the user's version):

- A *pair* is a fine date that also has a coarse image. A pair is *clear* when both its fine
  and its coarse image have a valid fraction (pixels valid in every band, after masking)
  of at least ``min_valid``.
- Every coarse date in the date range is a *target*; a target whose coarse image is below
  ``min_valid`` is skipped. A fine date without a coarse image between the first and the
  last coarse date is a target too, written as observed. The range limits the targets,
  never the pairs.
- Pairs for a target (never the target's own pair): the ``pairs_per_side`` nearest clear pairs
  before it and after it. Methods that take several pairs (``tags.max_pairs`` None or > 1, e.g.
  STARFM) are fitted on them together, up to ``max_pairs`` (nearest first, alternating sides);
  two-pair methods (ESTARFM) get the nearest before and the nearest after; time-series
  methods (``tags.series_all_pairs``: ROBOT) get every clear pair. Where one side has
  none, the nearest pairs on the other side are used (extrapolation, noted in the summary).
  Single-pair methods (``tags.max_pairs == 1``: Fit-FC, FSDAF) predict from each chosen pair
  separately and the predictions are blended with temporal weights ``w_i = (1/d_i) / sum_j
  (1/d_j)``, ``d`` the distance in days, renormalised per pixel over the predictions valid
  there; so the series moves smoothly from one base pair to the next instead of jumping.
  With ``multi_pair="vip"`` they predict once from all the chosen pairs, as VIPSTF over the
  method (not the default: measured worse on Kranj, docs/commands/series.md).
- The outputs are on the grid most pair fine images share; other pair fine images whose pixels
  are that grid's (whole pixels away) are placed on it unresampled, and one that would need
  resampling stops the run before any date (:mod:`.grids`).
- A target that is also a fine date is *gap-filled*: the fine image where it is valid, the
  prediction from the other pairs where it is masked or NaN.
- One estimator is fitted per set of pairs and reused for every target that uses that set.

Outputs: ``<prefix>_YYYY-MM-DD.tif`` (Cloud Optimized GeoTIFF, float32 with NaN nodata or int16
with a scale factor and nodata -32768; band names; provenance tags), ``summary.csv``
(rewritten after every date), and optionally a Zarr or NetCDF cube with a time axis. Every
file is written to a temporary name and renamed into place, so an interrupted run leaves only
complete files, and running again keeps an output only when it verifies and was made from the
same input files (path, size, mtime, inode), settings and stfusion version; otherwise it is computed
again (or, for other settings, the run refuses); an earlier output that a date could not make
again is removed when it no longer matches (:mod:`.stale`). A run that writes no output for
any target says why (``SeriesResult.no_output``, :mod:`.diagnose`; the command exits 1). A
file at an output's name that is not provably this command's (no tag naming its date:
another's GeoTIFF, a text file, one truncated past its tags) fails its date unless
``overwrite``; a summary.csv or cube of another's stops the run before any work, always. A
run holds a lock file in the output folder while it writes there; leftovers of killed runs
are removed by the next run.

Modules: :mod:`.config` (the options), :mod:`.planning` (which pairs for which date),
:mod:`.grids` (the output grid, fine images placed on it), :mod:`.images` (inputs opened on
the fine grid), :mod:`.blend` (weights, fallback, gap-filling), :mod:`.outputs` (GeoTIFF/COG,
summary.csv, cube), :mod:`.tags` (an output's tags, an ensemble's members), :mod:`.resume`
(input keys), :mod:`.stale` (outputs that could not be made again), :mod:`.diagnose` (a run
that wrote nothing, warnings about the inputs), :mod:`.lock` (the output folder's lock,
leftovers), :mod:`.prepare` (options resolved, inputs found), :mod:`.runner` (the run).
"""

from stfusion.series.config import CUBE_FORMATS, DTYPES, SeriesConfig
from stfusion.series.cube import check_cube_backend, write_cube
from stfusion.series.images import VALID_SAMPLE
from stfusion.series.lock import (
    LOCK_NAME,
    SCRATCH_NAME,
    OutDirLockedError,
    acquire_lock,
    release_lock,
    remove_leftovers,
)
from stfusion.series.outputs import (
    INT16_NODATA,
    output_path,
    read_summary,
    verify_output,
)
from stfusion.series.planning import choose_pairs, temporal_weights
from stfusion.series.records import (
    STATUSES,
    SUMMARY_COLUMNS,
    DateRecord,
    ProgressCallback,
    SeriesResult,
)
from stfusion.series.resume import file_identity
from stfusion.series.runner import ESTIMATOR_CACHE, run_series

__all__ = [
    "CUBE_FORMATS",
    "DTYPES",
    "ESTIMATOR_CACHE",
    "INT16_NODATA",
    "LOCK_NAME",
    "SCRATCH_NAME",
    "STATUSES",
    "SUMMARY_COLUMNS",
    "VALID_SAMPLE",
    "DateRecord",
    "OutDirLockedError",
    "ProgressCallback",
    "SeriesConfig",
    "SeriesResult",
    "acquire_lock",
    "check_cube_backend",
    "choose_pairs",
    "file_identity",
    "output_path",
    "read_summary",
    "release_lock",
    "remove_leftovers",
    "run_series",
    "temporal_weights",
    "verify_output",
    "write_cube",
]
