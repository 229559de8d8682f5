"""Regenerate the bundled sample (src/stfusion/data/) from ../shared/data/cia_e2starfm.

The CIA subset's values are already multiples of 1e-4 reflectance (Landsat 8-bit steps, MODIS
4 decimals), so int16 x 1e-4 stores them without loss; the scale is written into each file's
metadata, which stfusion applies on read.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import rasterio

SRC = (
    Path(__file__).resolve().parents[1].parent / "shared" / "data" / "cia_e2starfm" / "geotiff_50m"
)
DST = Path(__file__).resolve().parents[1] / "src" / "stfusion" / "data"
NODATA = -9999


def main() -> int:
    DST.mkdir(parents=True, exist_ok=True)
    files = []
    for path in sorted(SRC.glob("CIA_*.tif")):
        with rasterio.open(path) as ds:
            data = ds.read()
            profile = ds.profile
            names = ds.descriptions
        ints = np.where(np.isfinite(data), np.round(data * 10000), NODATA).astype(np.int16)
        assert np.nanmax(np.abs(ints * 1e-4 - data)) < 1e-6, path
        profile.update(
            dtype="int16",
            nodata=NODATA,
            compress="deflate",
            predictor=2,
            zlevel=9,
            tiled=False,
            blockysize=16,
        )
        out = DST / path.name
        with rasterio.open(out, "w", **profile) as dst:
            dst.write(ints)
            dst.scales = [1e-4] * ds.count
            dst.offsets = [0.0] * ds.count
            for i, n in enumerate(names, start=1):
                dst.set_band_description(i, n)
            dst.update_tags(
                UNITS="surface reflectance x 10000 (scale 1e-4 in metadata)",
                SOURCE="CIA subset (Emelyanova et al. 2013, CSIRO), via E2STARFM",
            )
        files.append(path.name)
        print(out, out.stat().st_size)
    (DST / "sample.json").write_text(
        json.dumps(
            {
                "name": "cia",
                "description": "CIA subset (Coleambally Irrigation Area), Landsat-7 ETM+ and "
                "MOD09GA "
                "resampled to the Landsat grid; 250 x 250 px at 50 m, 6 bands",
                "bands": ["blue", "green", "red", "nir", "swir1", "swir2"],
                "ratio": 10,
                "fine": {
                    "2001-10-08": "CIA_Landsat7_2001-10-08.tif",
                    "2001-10-17": "CIA_Landsat7_2001-10-17.tif",
                    "2001-11-02": "CIA_Landsat7_2001-11-02.tif",
                },
                "coarse": {
                    "2001-10-08": "CIA_MOD09GA_2001-10-08.tif",
                    "2001-10-17": "CIA_MOD09GA_2001-10-17.tif",
                    "2001-11-02": "CIA_MOD09GA_2001-11-02.tif",
                },
            },
            indent=2,
        )
        + "\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
