"""MODIS HDF4-EOS files (MOD09GA, MCD43A4, MOD11A1, ...): fields, scaling and georeference.

The GDAL inside the rasterio wheels has no HDF4 driver, so the files are read with ``pyhdf``
(the optional extra ``stfusion[hdf]``); where rasterio's GDAL has the HDF4 driver and pyhdf is
missing, the fields are read through GDAL's ``HDF4_EOS:EOS_GRID`` subdatasets instead.

What is taken from the file:

* the fields (scientific data sets, SDS) of every grid, by name, in file order;
* per field: ``scale_factor`` and ``add_offset`` (HDF4 convention, as MODIS land products use
  it: ``value = scale_factor * (stored - add_offset)``), ``_FillValue`` and ``valid_range``
  (stored values equal to the fill value or outside the valid range are invalid: NaN);
* the georeference of each field's grid from the ``StructMetadata.0`` file attribute
  (``XDim``, ``YDim``, ``UpperLeftPointMtrs``, ``LowerRightMtrs``, ``Projection``,
  ``ProjParams``): ``GCTP_SNSOID`` (the MODIS sinusoidal grid, sphere of radius 6371007.181 m)
  and ``GCTP_GEO`` (climate-modelling grids in degrees, corners in packed DMS).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from affine import Affine
from rasterio.crs import CRS

from stfusion.errors import InputFileError, MissingDependencyError

HDF_EXTENSIONS = (".hdf", ".hdf4", ".h4", ".he4", ".hdfeos")

#: The MODIS sinusoidal sphere when ProjParams does not give one.
MODIS_SPHERE_RADIUS = 6371007.181

# The HDF4 library is not thread-safe: one read at a time in this process.
_LOCK = threading.Lock()


def is_hdf(path: str) -> bool:
    return Path(path).suffix.lower() in HDF_EXTENSIONS


@dataclass(frozen=True)
class HDFGrid:
    """One HDF-EOS grid: its name, size, CRS and transform, and the fields on it."""

    name: str
    width: int
    height: int
    crs: CRS
    transform: Affine
    fields: tuple[str, ...]


@dataclass(frozen=True)
class HDFField:
    """One 2-D field (SDS) and how its stored values become physical values."""

    name: str
    index: int
    shape: tuple[int, int]
    dtype: str
    scale: float
    offset: float
    has_scale: bool
    fill: float | None
    valid_range: tuple[float, float] | None
    grid: str | None


@dataclass
class HDFInfo:
    path: str
    fields: list[HDFField]
    grids: dict[str, HDFGrid] = field(default_factory=dict)

    def field(self, name: str) -> HDFField:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)


def _pyhdf() -> Any:
    try:
        from pyhdf import SD
    except ImportError:
        return None
    return SD


def gdal_has_hdf4() -> bool:
    import rasterio

    with rasterio.Env() as env:
        return "HDF4" in env.drivers()


def require_reader(path: str) -> str:
    """``'pyhdf'`` or ``'gdal'``: how this machine reads HDF4; an error saying what to install."""
    if _pyhdf() is not None:
        return "pyhdf"
    if gdal_has_hdf4():
        return "gdal"
    raise MissingDependencyError(
        f"{path}: reading MODIS HDF4 files needs pyhdf: install stfusion[hdf] "
        "(pip install 'stfusion[hdf]' or pip install pyhdf); the GDAL inside the rasterio "
        "wheels has no HDF4 driver. Or convert the file to GeoTIFF first."
    )


# ------------------------------------------------------------------------ StructMetadata


def _value(text: str) -> str:
    return text.strip().strip('"')


def _numbers(text: str) -> list[float]:
    return [float(v) for v in re.findall(r"[-+]?\d*\.?\d+(?:[eE][-+]?\d+)?", text)]


def _dms_to_degrees(v: float) -> float:
    """GCTP packed DMS (DDDMMMSSS.SS) to decimal degrees."""
    sign = -1.0 if v < 0 else 1.0
    v = abs(v)
    deg = int(v // 1_000_000)
    minutes = int((v - deg * 1_000_000) // 1_000)
    seconds = v - deg * 1_000_000 - minutes * 1_000
    return sign * (deg + minutes / 60.0 + seconds / 3600.0)


def parse_struct_metadata(text: str, path: str = "") -> dict[str, HDFGrid]:
    """The grids described by an HDF-EOS ``StructMetadata.0`` attribute."""
    grids: dict[str, HDFGrid] = {}
    for block in re.findall(r"GROUP=(GRID_\d+)(.*?)END_GROUP=\1", text, flags=re.DOTALL):
        body = block[1]
        attrs: dict[str, str] = {}
        for line in body.splitlines():
            key, sep, val = line.strip().partition("=")
            if (
                sep
                and key not in attrs
                and key not in ("GROUP", "END_GROUP", "OBJECT", "END_OBJECT")
            ):
                attrs[key] = val
        name = _value(attrs.get("GridName", block[0]))
        fields = tuple(_value(v) for v in re.findall(r"DataFieldName=(\"[^\"]*\"|\S+)", body))
        try:
            width, height = int(attrs["XDim"]), int(attrs["YDim"])
            ulx, uly = _numbers(attrs["UpperLeftPointMtrs"])[:2]
            lrx, lry = _numbers(attrs["LowerRightMtrs"])[:2]
        except (KeyError, ValueError):
            raise InputFileError(
                f"{path}: grid {name} in StructMetadata.0 lacks XDim, YDim, UpperLeftPointMtrs or "
                "LowerRightMtrs; cannot georeference it."
            ) from None
        proj = _value(attrs.get("Projection", ""))
        params = _numbers(attrs.get("ProjParams", "")) or [0.0] * 13
        if proj == "GCTP_SNSOID":
            radius = params[0] if params and params[0] > 0 else MODIS_SPHERE_RADIUS
            lon0 = _dms_to_degrees(params[4]) if len(params) > 4 else 0.0
            fe = params[6] if len(params) > 6 else 0.0
            fn = params[7] if len(params) > 7 else 0.0
            crs = CRS.from_proj4(
                f"+proj=sinu +lon_0={lon0:g} +x_0={fe:g} +y_0={fn:g} +R={radius:.3f} "
                "+units=m +no_defs"
            )
        elif proj == "GCTP_GEO":
            crs = CRS.from_epsg(4326)
            ulx, uly, lrx, lry = (_dms_to_degrees(v) for v in (ulx, uly, lrx, lry))
        else:
            raise InputFileError(
                f"{path}: grid {name} uses projection {proj or '(none)'}; stfusion reads "
                "HDF-EOS grids in GCTP_SNSOID (MODIS sinusoidal) and GCTP_GEO. Convert the "
                "file to GeoTIFF first (e.g. with gdal_translate where GDAL has HDF4)."
            )
        transform = Affine((lrx - ulx) / width, 0.0, ulx, 0.0, (lry - uly) / height, uly)
        grids[name] = HDFGrid(name, width, height, crs, transform, fields)
    return grids


# -------------------------------------------------------------------------------- pyhdf


def _attr_float(attrs: dict[str, Any], key: str) -> float | None:
    v = attrs.get(key)
    if v is None:
        return None
    if isinstance(v, list | tuple):
        v = v[0] if v else None
    try:
        return None if v is None else float(v)
    except (TypeError, ValueError):
        return None


def read_info(path: str) -> HDFInfo:
    """Fields, scaling and grids of an HDF4-EOS file (via pyhdf)."""
    SD = _pyhdf()
    if SD is None:
        require_reader(path)  # raises, or tells us GDAL is there
        raise MissingDependencyError(f"{path}: install stfusion[hdf] (pyhdf).")
    p = Path(path)
    if not p.exists():
        raise InputFileError(f"{p}: file not found. Check the path.")
    with _LOCK:
        try:
            sd = SD.SD(str(p), SD.SDC.READ)
        except Exception as exc:  # pyhdf raises HDF4Error
            raise InputFileError(f"{p}: not an HDF4 file pyhdf can read ({exc}).") from None
        try:
            gattrs = sd.attributes()
            fields: list[HDFField] = []
            for name, (_dims, _shape, _type, index) in sorted(
                sd.datasets().items(), key=lambda kv: kv[1][3]
            ):
                sds = sd.select(index)
                try:
                    _n, rank, dims, dtype_code, _na = sds.info()
                    attrs = sds.attributes()
                    array_dtype = _SD_DTYPES.get(dtype_code, "float64")
                finally:
                    sds.endaccess()
                if rank != 2:
                    continue
                sf = _attr_float(attrs, "scale_factor")
                ao = _attr_float(attrs, "add_offset") or 0.0
                vr = attrs.get("valid_range")
                valid = (
                    (float(vr[0]), float(vr[1]))
                    if isinstance(vr, list | tuple) and len(vr) == 2
                    else None
                )
                scale = 1.0 if sf is None else sf
                fields.append(
                    HDFField(
                        name=name,
                        index=index,
                        shape=(int(dims[0]), int(dims[1])),
                        dtype=array_dtype,
                        scale=scale,
                        offset=-scale * ao,
                        has_scale=sf is not None or ao != 0.0,
                        fill=_attr_float(attrs, "_FillValue"),
                        valid_range=valid,
                        grid=None,
                    )
                )
        finally:
            sd.end()
    meta = "".join(str(v) for k, v in sorted(gattrs.items()) if k.startswith("StructMetadata."))
    grids = parse_struct_metadata(meta, str(p)) if meta else {}
    by_field = {f: g.name for g in grids.values() for f in g.fields}
    out = []
    for f in fields:
        g = by_field.get(f.name)
        if g is None:  # fields not listed: the grid of that size, if there is exactly one
            same = [x.name for x in grids.values() if (x.height, x.width) == f.shape]
            g = same[0] if len(same) == 1 else None
        out.append(HDFField(**{**f.__dict__, "grid": g}))
    return HDFInfo(str(p), out, grids)


def _sd_dtypes() -> dict[int, str]:
    SD = _pyhdf()
    if SD is None:
        return {}
    c = SD.SDC
    return {
        c.INT8: "int8",
        c.UINT8: "uint8",
        c.INT16: "int16",
        c.UINT16: "uint16",
        c.INT32: "int32",
        c.UINT32: "uint32",
        c.FLOAT32: "float32",
        c.FLOAT64: "float64",
        c.CHAR8: "uint8",
        c.UCHAR8: "uint8",
    }


_SD_DTYPES = _sd_dtypes()


def read_field(path: str, f: HDFField, rows: slice, cols: slice) -> np.ndarray:
    """Stored values of field ``f`` in a window, as float64 with NaN where invalid."""
    SD = _pyhdf()
    with _LOCK:
        sd = SD.SD(str(path), SD.SDC.READ)
        try:
            sds = sd.select(f.index)
            try:
                data = np.asarray(sds[rows, cols])
            finally:
                sds.endaccess()
        finally:
            sd.end()
    arr = data.astype(np.float64)
    bad = np.zeros(arr.shape, dtype=bool)
    if f.fill is not None:
        bad |= data == f.fill
    if f.valid_range is not None and not is_bit_field(f.name):
        bad |= (arr < f.valid_range[0]) | (arr > f.valid_range[1])
    arr[bad] = np.nan
    return arr


def is_bit_field(name: str) -> bool:
    """Whether a field holds quality bits (``state_1km_1``, MOD09A1's
    ``sur_refl_state_500m``, ``QC_500m_1``), whose ``valid_range`` is no bound on them:
    MOD09GA's state_1km declares 0-57335, and clear land with snow, salt pan and a cloud
    nearby (57352) was read as invalid, so masked."""
    low = name.lower()
    return "state" in low or "qc" in low or "quality" in low


def gdal_fields(path: str) -> list[tuple[str, str]]:
    """(field name, GDAL subdataset name) of every field, through GDAL's HDF4 driver."""
    import rasterio

    with rasterio.open(path) as ds:
        subs = list(ds.subdatasets)
    out = []
    for s in subs:
        name = s.rsplit(":", 1)[-1]
        out.append((name, s))
    return out
