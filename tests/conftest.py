"""Shared fixtures: tiny GeoTIFFs written to tmp_path, and the real data beside the repo."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
CIA = SHARED_DATA / "cia_e2starfm" / "geotiff_50m"
BOREAS = SHARED_DATA / "boreas_estarfm"
LGC = SHARED_DATA / "lgc_fsdaf"
KRANJ = SHARED_DATA / "kranj_l8_modis"

UTM55S = CRS.from_epsg(32755)


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"real data not available: {path}")
    return path


def write_tif(
    path: Path,
    data: np.ndarray,
    *,
    transform: Affine | None = None,
    crs: CRS | None = UTM55S,
    nodata: float | None = None,
    dtype: str | None = None,
    scales: list[float] | None = None,
    names: list[str] | None = None,
) -> Path:
    data = np.asarray(data)
    if data.ndim == 2:
        data = data[None]
    profile = {
        "driver": "GTiff",
        "width": data.shape[2],
        "height": data.shape[1],
        "count": data.shape[0],
        "dtype": dtype or str(data.dtype),
        "crs": crs,
        "transform": transform or Affine(30.0, 0, 500000.0, 0, -30.0, 6100000.0),
        "nodata": nodata,
    }
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(data.astype(profile["dtype"]))
        if scales:
            ds.scales = scales
        if names:
            for i, n in enumerate(names, start=1):
                ds.set_band_description(i, n)
    return path


def piecewise_scene(
    h: int = 48, w: int = 48, bands: int = 3, patch: int = 4, ratio: int = 8, seed: int = 0
) -> dict[str, np.ndarray]:
    """Fine image constant on patch x patch blocks with well-separated values; coarse images
    equal to exact ratio x ratio block means (upsampled to the fine grid)."""
    from stfusion.coarse import block_mean, upsample_blocks

    rng = np.random.default_rng(seed)
    levels = np.linspace(0.05, 0.45, 5)
    labels = rng.integers(0, len(levels), size=(h // patch + 1, w // patch + 1))
    lab = np.repeat(np.repeat(labels, patch, 0), patch, 1)[:h, :w]
    fine = np.stack([levels[lab] * (1 + 0.2 * b) for b in range(bands)]).astype(np.float32)
    coarse = upsample_blocks(block_mean(fine, ratio), ratio, (h, w)).astype(np.float32)
    return {"fine": fine, "coarse": coarse, "ratio": np.array(ratio)}


@pytest.fixture
def cia_paths() -> dict[str, Path]:
    need(CIA)
    return {
        "f1": CIA / "CIA_Landsat7_2001-10-17.tif",
        "c1": CIA / "CIA_MOD09GA_2001-10-17.tif",
        "c2": CIA / "CIA_MOD09GA_2001-11-02.tif",
        "f2": CIA / "CIA_Landsat7_2001-11-02.tif",
    }


@pytest.fixture
def small_tifs(tmp_path: Path) -> dict[str, Path]:
    """A 40 x 40 x 2 georeferenced pair + target, from a crop of the bundled sample."""
    from stfusion.demo import sample_dir
    from stfusion.io import FileSource

    d = sample_dir()
    out = {}
    for key, name in [
        ("f1", "CIA_Landsat7_2001-10-17.tif"),
        ("c1", "CIA_MOD09GA_2001-10-17.tif"),
        ("c2", "CIA_MOD09GA_2001-11-02.tif"),
        ("f2", "CIA_Landsat7_2001-11-02.tif"),
    ]:
        arr = FileSource(str(d / name)).read()[[2, 3], 100:140, 100:140]
        out[key] = write_tif(
            tmp_path / f"{key}.tif",
            arr,
            transform=Affine(50.0, 0, 406012.5, 0, -50.0, 6147787.5),
            names=["red", "nir"],
        )
    return out
