"""Write the training catalog of the shipped deep weights from ../shared/data.

    python tools/make_training_catalog.py OUT_DIR [--data ../shared/data]

Writes ``OUT_DIR/catalog.csv`` (``site,date,fine,coarse``, for ``stfusion train --catalog``)
and float32 GeoTIFFs in reflectance (0-1) for the sites whose files need a scale or a format
change (BOREAS and Kranj x10000 Landsat, the Sentinel-2 numpy array). Left out: the target
dates of the one-pair named cases (CIA 2001-11-02, BOREAS 2001-07-11, LGC 2004-12-28, Kranj
day 077; Kranj day 100 has no MODIS image), so ``stfusion bench`` can score the shipped
weights on them; LGC then has one date (no example) and is not used. The Sentinel-2 scenes
(``eolearn_s2_l1c``, dates not recorded) get placeholder dates 2016-01-01 + 30 k days and
coarse images simulated by 10 x 10 block means on the fine grid (100 m from 10 m), like the
LGC case's coarse images.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin


def _write(path: Path, arr: np.ndarray) -> str:
    arr = np.asarray(arr, np.float32)
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=arr.shape[2],
        height=arr.shape[1],
        count=arr.shape[0],
        dtype="float32",
        transform=from_origin(0, arr.shape[1], 1, 1),
    ) as dst:
        dst.write(arr)
    return str(path)


def _read(path: Path, scale: float) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read().astype(np.float32) * np.float32(scale)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument(
        "--without-kranj",
        action="store_true",
        help="leave the Kranj site out (the catalog of the weights shipped before 2026-12-04)",
    )
    ap.add_argument(
        "--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data"
    )
    a = ap.parse_args()
    out: Path = a.out
    out.mkdir(parents=True, exist_ok=True)
    d: Path = a.data
    rows: list[tuple[str, str, str, str]] = []
    kranj_rows: list[tuple[str, str, str, str]] = []
    cia = d / "cia_e2starfm" / "geotiff_50m"
    for day in ("2001-10-08", "2001-10-17"):
        rows.append(
            ("cia", day, str(cia / f"CIA_Landsat7_{day}.tif"), str(cia / f"CIA_MOD09GA_{day}.tif"))
        )
    bo = d / "boreas_estarfm"
    for tag, day in (("0524", "2001-05-24"), ("0812", "2001-08-12")):
        f = _write(out / f"boreas_fine_{tag}.tif", _read(bo / f"tm{tag}", 1e-4))
        c = _write(out / f"boreas_coarse_{tag}.tif", _read(bo / f"modis{tag}", 1e-4))
        rows.append(("boreas", day, f, c))
    kr = d / "kranj_l8_modis"
    # Kranj (44 x 45 px): no 48 px training patch fits beside its validation block, so its
    # patches are cut to the strips beside it and padded (stfusion.dl.datasets._strips).
    for doy, path in (("068", "191"), ("093", "190")):  # no MODIS on day 100
        day = (dt.date(2020, 1, 1) + dt.timedelta(int(doy) - 1)).isoformat()
        fine = _read(kr / "landsat" / "filled" / f"2020{doy}_{path}-28.tif_filled_kranj.tif", 1e-4)
        coarse = _read(kr / "modis" / "filled" / f"2020{doy}_18-04_kranj.tif", 1.0)
        kranj_rows.append(
            (
                "kranj",
                day,
                _write(out / f"kranj_fine_{doy}.tif", fine),
                _write(out / f"kranj_coarse_{doy}.tif", coarse),
            )
        )
    s2 = np.load(d / "eolearn_s2_l1c" / "REFERENCE_SCENES.npy")[:, :100, :100, :]
    for k, scene in enumerate(s2):
        fine = np.moveaxis(scene, -1, 0)
        blocks = fine.reshape(fine.shape[0], 10, 10, 10, 10).mean(axis=(2, 4))
        coarse = np.repeat(np.repeat(blocks, 10, axis=1), 10, axis=2)
        day = (dt.date(2016, 1, 1) + dt.timedelta(30 * k)).isoformat()
        rows.append(
            (
                "s2",
                day,
                _write(out / f"s2_fine_{k}.tif", fine),
                _write(out / f"s2_coarse_{k}.tif", coarse),
            )
        )
    if not a.without_kranj:
        rows += kranj_rows
    with open(out / "catalog.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["site", "date", "fine", "coarse"])
        w.writerows(rows)
    print(f"wrote {out / 'catalog.csv'} ({len(rows)} pairs)")


if __name__ == "__main__":
    main()
