"""Raster input and output.

Everything that touches files lives here. Values are scaled on read (``value * scale +
offset``), nodata becomes NaN, and arrays are float32 ``(band, y, x)``. Sources are small,
picklable descriptions (path + scaling) that open the file per read, so a window can be read in
any thread or process and no open handle is ever shared.

- ``grid``: Grid, Scaling, RasterInfo, the ground resolution ratio
- ``files``: opening files, errors that name the file, scaling from tags
- ``scan``: bounded windows for scene-wide passes (validation, statistics, sampling)
- ``sources``: ArraySource, FileSource, AlignedSource (coarse reprojected on read)
- ``writing``: output checks, PID-named partials, ``atomic_path``, ``RasterWriter``, COGs
- ``locks``: ``OutputLock``, held beside an output while a run writes it (``check_not_locked``)
- ``dataarray``: the xarray edge
"""

from stfusion.io.dataarray import (
    grid_of_dataarray,
    read_raster,
    to_dataarray,
)
from stfusion.io.files import (
    check_name,
    file_sha256,
    shown,
)
from stfusion.io.grid import (
    Grid,
    RasterInfo,
    Scaling,
    resolution_ratio,
)
from stfusion.io.locks import OutputLock, check_not_locked
from stfusion.io.partials import (
    OLD_SUFFIX,
    PARTIAL_MARK,
    glob_escape,
    partial_name,
    pid_alive,
    remove_stale_partials,
    umask_mode,
)
from stfusion.io.scan import (
    DEFAULT_SCAN_VALUES,
    gdal_sample_index,
    scan_limit,
    scan_values,
    scan_windows,
)
from stfusion.io.sources import (
    RESAMPLING_CHOICES,
    AlignedSource,
    ArraySource,
    FileSource,
    FineSizedSource,
    NorthUpSource,
    Source,
    inspect_raster,
    north_up,
)
from stfusion.io.writing import (
    RasterWriter,
    atomic_path,
    cannot_create_in,
    check_output,
    cog_blocksize,
    copy_as_cog,
    file_stamp,
    remove_changed,
    removed_if_written,
    write_errors,
    write_raster,
)

__all__ = [
    "DEFAULT_SCAN_VALUES",
    "OLD_SUFFIX",
    "PARTIAL_MARK",
    "RESAMPLING_CHOICES",
    "AlignedSource",
    "ArraySource",
    "FileSource",
    "FineSizedSource",
    "Grid",
    "NorthUpSource",
    "OutputLock",
    "RasterInfo",
    "RasterWriter",
    "Scaling",
    "Source",
    "atomic_path",
    "cannot_create_in",
    "check_name",
    "check_not_locked",
    "check_output",
    "cog_blocksize",
    "copy_as_cog",
    "file_sha256",
    "file_stamp",
    "gdal_sample_index",
    "glob_escape",
    "grid_of_dataarray",
    "inspect_raster",
    "north_up",
    "partial_name",
    "pid_alive",
    "read_raster",
    "remove_changed",
    "remove_stale_partials",
    "removed_if_written",
    "resolution_ratio",
    "scan_limit",
    "scan_values",
    "scan_windows",
    "shown",
    "to_dataarray",
    "umask_mode",
    "write_errors",
    "write_raster",
]
