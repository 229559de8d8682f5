"""Larger benchmark scenes built from the real data by mirroring.

``make_cia_scene`` enlarges the real 250 x 250 x 6 CIA subset (Landsat-7 ETM+ and MOD09GA on
the Landsat grid, 50 m, reflectance 0-1; ``shared/data/cia_e2starfm/geotiff_50m/`` beside the
repository) to any size by mirroring: the image is repeated as alternately flipped copies
(``np.pad`` with ``mode="symmetric"``), so every pixel is a real value and there are no seams
in the texture. The result is MIRRORED REAL DATA, not new ground: a 2040 x 1720 scene holds
about 56 copies of the same 12.5 km x 12.5 km. Say so wherever its numbers are shown.

The grid is the CIA grid extended to the right and down: same CRS (EPSG:32755, UTM 55S), same
upper-left corner, 50 m pixels. The output is deterministic (same bytes for the same size).
Usable by any benchmark: ``python benchmarks/scenes.py OUTDIR [--height H --width W]``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import Affine

CIA_DIR = (
    Path(__file__).resolve().parents[1].parent / "shared" / "data" / "cia_e2starfm" / "geotiff_50m"
)
#: The CIA grid is 250 x 250 at 50 m; its coarse pixels (500 m MODIS) span 10 x 10 fine pixels.
CIA_RATIO = 10
#: The full CIA scene size (rows, cols) at 25 m is 3440 x 4080; at 50 m it is 1720 x 2040.
FULL_HEIGHT, FULL_WIDTH = 1720, 2040

#: Named cases of ../shared/data/README.md: roles -> (sensor, date).
CASES: dict[str, dict[str, tuple[str, str]]] = {
    "cia-1pair": {
        "fine1": ("Landsat7", "2001-10-17"),
        "coarse1": ("MOD09GA", "2001-10-17"),
        "target": ("MOD09GA", "2001-11-02"),
        "truth": ("Landsat7", "2001-11-02"),
    },
    "cia-2pair": {
        "fine1": ("Landsat7", "2001-10-08"),
        "coarse1": ("MOD09GA", "2001-10-08"),
        "fine2": ("Landsat7", "2001-11-02"),
        "coarse2": ("MOD09GA", "2001-11-02"),
        "target": ("MOD09GA", "2001-10-17"),
        "truth": ("Landsat7", "2001-10-17"),
    },
}


def mirror_to(array: np.ndarray, height: int, width: int) -> np.ndarray:
    """``(band, h, w)`` -> ``(band, height, width)`` by symmetric mirroring from the top left.

    Rows ``0..h-1`` are the original, ``h..2h-1`` the original flipped upside down, and so on;
    likewise for columns. A size smaller than the input crops it.
    """
    _, h, w = array.shape
    pad = ((0, 0), (0, max(0, height - h)), (0, max(0, width - w)))
    return np.pad(array, pad, mode="symmetric")[:, :height, :width]


def mirror_raster(
    src: str | os.PathLike[str], dst: str | os.PathLike[str], height: int, width: int
) -> Path:
    """Write ``src`` mirrored to ``height`` x ``width`` as a tiled GeoTIFF at ``dst``."""
    with rasterio.open(src) as ds:
        data = ds.read()
        profile = ds.profile.copy()
        descriptions = ds.descriptions
        tags = ds.tags()
        transform: Affine = ds.transform
    # Same upper-left corner and pixel size, more rows and columns: the grid extended
    # right and down.
    out = mirror_to(data, height, width)
    profile.update(
        height=height,
        width=width,
        transform=transform,
        tiled=True,
        blockxsize=256,
        blockysize=256,
        compress="deflate",
        predictor=3,
        interleave="pixel",
    )
    tags = {
        **tags,
        "STFUSION_SYNTHETIC": (
            f"mirrored real data: {Path(src).name} ({data.shape[1]} x {data.shape[2]}) mirrored "
            f"(numpy pad mode=symmetric, from the top left) to {height} x {width}"
        ),
    }
    dst = Path(dst)
    with rasterio.open(dst, "w", **profile) as ds:
        ds.write(out)
        ds.update_tags(**tags)
        for i, name in enumerate(descriptions, start=1):
            if name:
                ds.set_band_description(i, name)
    return dst


def make_cia_scene(
    outdir: str | os.PathLike[str],
    height: int = FULL_HEIGHT,
    width: int = FULL_WIDTH,
    case: str = "cia-1pair",
    source_dir: str | os.PathLike[str] = CIA_DIR,
) -> dict[str, Path]:
    """Build a ``height`` x ``width`` CIA scene of mirrored real data; returns role -> path.

    Roles for ``cia-1pair``: ``fine1``/``coarse1`` (the 2001-10-17 pair), ``target`` (MODIS
    2001-11-02) and ``truth`` (Landsat 2001-11-02); ``cia-2pair`` adds ``fine2``/``coarse2``.
    Files are named ``CIA_<sensor>_<date>_<H>x<W>.tif``; existing files are rewritten.
    """
    if case not in CASES:
        raise ValueError(f"unknown case {case!r}; choose one of {', '.join(CASES)}")
    if height < 1 or width < 1:
        raise ValueError(f"height and width must be positive, got {height} x {width}")
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for role, (sensor, date) in CASES[case].items():
        src = Path(source_dir) / f"CIA_{sensor}_{date}.tif"
        dst = out / f"CIA_{sensor}_{date}_{height}x{width}.tif"
        if role not in paths:
            paths[role] = mirror_raster(src, dst, height, width)
    return paths


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("outdir")
    ap.add_argument("--height", type=int, default=FULL_HEIGHT)
    ap.add_argument("--width", type=int, default=FULL_WIDTH)
    ap.add_argument("--case", default="cia-1pair", choices=sorted(CASES))
    args = ap.parse_args(argv)
    for role, path in make_cia_scene(args.outdir, args.height, args.width, args.case).items():
        print(f"{role:8s} {path}")


if __name__ == "__main__":
    main()
