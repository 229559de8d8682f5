"""Write the named cases again with every coarse image on its own grid, and a cases file.

The named cases deliver MODIS already resampled to the Landsat grid. Users mostly have it on
its own grid (MOD09GA, MCD43A4 as delivered), which the methods read through other code
(native coarse pixels: FSDAF's and Fit-FC's unmixing and regression, the ensemble's cells,
VIPSTF's native virtual image). This writes ``NAME-native`` for each named case: each coarse
image as the mean of R x R blocks of fine pixels from the scene's top-left corner (partial
blocks at the right and bottom edges: the mean of the pixels they have), a GeoTIFF with
pixels R times larger, in the coarse file's data type (integers rounded), nodata kept. Fine
images and truth are copied as they are. Files without georeferencing (BOREAS, LGC) get one
(a local UTM zone, 30 m fine pixels) on both, so the grids can be related.

    python benchmarks/native_cases.py /tmp/native          # writes /tmp/native/cases.toml
    stfusion bench --cases-file /tmp/native/cases.toml \\
        --cases cia-1pair-native,... --methods all --out /tmp/native/bench

``--grid sinusoidal`` writes ``NAME-sinu`` instead: the block means warped onto MODIS's
sinusoidal 463.3 m grid (pixel averages), as MOD09GA is delivered, so the coarse pixels are
sheared and the ground ratio is not R (CIA: 9.26 instead of 10).

With ``--run`` it also runs ``stfusion bench --methods all`` on the named cases and on their
native variants (about 6 minutes on 2 cores) and writes the mean RMSE of each method on each
case, coarse on the fine grid against coarse on its own grid, to
``results/native_grid.json`` and ``.md`` (``native_grid_sinusoidal`` with ``--grid
sinusoidal``; ``--results DIR`` to write elsewhere);
`docs/benchmarks.md` summarises it.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import rasterio
import rasterio.errors
from affine import Affine
from rasterio.crs import CRS
from rasterio.transform import array_bounds
from rasterio.warp import Resampling, reproject, transform_bounds

from stfusion.cases import named_cases
from stfusion.coarse import block_mean

CASES = ("cia-1pair", "cia-2pair", "boreas-1pair", "boreas-2pair", "lgc-flood", "kranj-2pair")
#: For files with no georeferencing: UTM zone 33N, 30 m pixels (any projected CRS would do).
LOCAL_CRS = CRS.from_epsg(32633)
LOCAL_TRANSFORM = Affine(30.0, 0.0, 500000.0, 0.0, -30.0, 5000000.0)
#: MODIS's land grid (MOD09GA, MCD43A4 at 500 m): sinusoidal, 463.3 m pixels, global origin.
MODIS_CRS = CRS.from_proj4("+proj=sinu +lon_0=0 +x_0=0 +y_0=0 +R=6371007.181 +units=m +no_defs")
MODIS_PIXEL = 463.312716528
MODIS_ORIGIN = (-20015109.354, 10007554.677)
#: --grid: the case-name suffix and the results' file stem, and what the variant is
GRID_TEXT = {
    "blocks": "each coarse image as R x R block means on a grid of R-times larger pixels",
    "sinusoidal": "those block means warped onto MODIS's sinusoidal 463.3 m grid, pixel averages",
}
GRIDS = {"blocks": ("native", "native_grid"), "sinusoidal": ("sinu", "native_grid_sinusoidal")}


def _profile(src: rasterio.DatasetReader) -> tuple[dict, Affine, CRS]:
    georef = src.crs is not None and not src.transform.is_identity
    transform = src.transform if georef else LOCAL_TRANSFORM
    crs = src.crs if georef else LOCAL_CRS
    prof = {
        "driver": "GTiff",
        "count": src.count,
        "dtype": src.dtypes[0],
        "nodata": src.nodata,
        "crs": crs,
        "transform": transform,
        "compress": "deflate",
    }
    return prof, transform, crs


def copy_fine(path: str, out: Path) -> Path:
    """The fine image as it is, with a georeference when it has none."""
    with rasterio.open(path) as src:
        prof, _, _ = _profile(src)
        data = src.read()
        names = src.descriptions
    with rasterio.open(out, "w", height=data.shape[1], width=data.shape[2], **prof) as dst:
        dst.write(data)
        for i, name in enumerate(names, 1):
            if name:
                dst.set_band_description(i, name)
    return out


def to_modis_grid(means: np.ndarray, transform: Affine, crs: CRS) -> tuple[np.ndarray, Affine, CRS]:
    """Block means warped onto MODIS's sinusoidal grid (pixel averages), as MOD09GA is
    delivered: the pixels that cover the image, snapped to the global grid."""
    bands, h, w = means.shape
    left, bottom, right, top = transform_bounds(
        crs, MODIS_CRS, *array_bounds(h, w, transform), densify_pts=21
    )
    x0, y0 = MODIS_ORIGIN
    c0, c1 = int(np.floor((left - x0) / MODIS_PIXEL)), int(np.ceil((right - x0) / MODIS_PIXEL))
    r0, r1 = int(np.floor((y0 - top) / MODIS_PIXEL)), int(np.ceil((y0 - bottom) / MODIS_PIXEL))
    dst_transform = Affine(
        MODIS_PIXEL, 0.0, x0 + c0 * MODIS_PIXEL, 0.0, -MODIS_PIXEL, y0 - r0 * MODIS_PIXEL
    )
    out = np.full((bands, r1 - r0, c1 - c0), np.nan, np.float32)
    reproject(
        means.astype(np.float32),
        out,
        src_transform=transform,
        src_crs=crs,
        src_nodata=np.nan,
        dst_transform=dst_transform,
        dst_crs=MODIS_CRS,
        dst_nodata=np.nan,
        resampling=Resampling.average,
    )
    return out.astype(np.float64), dst_transform, MODIS_CRS


def write_native(path: str, out: Path, r: int, sinusoidal: bool = False) -> Path:
    """The coarse image as R x R block means on a grid of R-times larger pixels (with
    ``sinusoidal``, then warped onto MODIS's grid)."""
    with rasterio.open(path) as src:
        prof, transform, _ = _profile(src)
        data = src.read().astype(np.float64)
        names = src.descriptions
        valid = np.ones(data.shape, bool) if src.nodata is None else data != src.nodata
    means = block_mean(np.where(valid, data, np.nan), r, np.float64)  # NaN: no valid pixel
    prof["transform"] = transform * Affine.scale(r)
    if sinusoidal:
        means, prof["transform"], prof["crs"] = to_modis_grid(means, prof["transform"], prof["crs"])
    dtype = np.dtype(prof["dtype"])
    if np.issubdtype(dtype, np.integer):
        fill = prof["nodata"] if prof["nodata"] is not None else np.iinfo(dtype).min
        prof["nodata"] = fill
        means = np.where(np.isnan(means), fill, np.round(means))
    elif prof["nodata"] is not None:
        means = np.where(np.isnan(means), prof["nodata"], means)
    elif sinusoidal:
        prof["nodata"] = np.nan  # pixels of the MODIS grid outside the scene
    with rasterio.open(out, "w", height=means.shape[1], width=means.shape[2], **prof) as dst:
        dst.write(means.astype(dtype))
        for i, name in enumerate(names, 1):
            if name:
                dst.set_band_description(i, name)
    return out


def main(outdir: str, grid: str = "blocks") -> Path:
    warnings.filterwarnings("ignore", category=rasterio.errors.NotGeoreferencedWarning)
    root = Path(outdir)
    suffix = GRIDS[grid][0]
    cases = named_cases()
    lines: list[str] = []
    for name in CASES:
        if name not in cases:
            raise SystemExit(f"{name}: its data is not found (../shared/data or $STFUSION_DATA)")
        case = cases[name]
        r = int(case.ratio or 0)
        if r < 2 or r != case.ratio:
            raise SystemExit(f"{name}: needs an integer ratio, has {case.ratio}")
        d = root / f"{name}-{suffix}"
        d.mkdir(parents=True, exist_ok=True)
        pairs = []
        for k, (fine, coarse) in enumerate(case.pairs, 1):
            f = copy_fine(fine, d / f"fine{k}.tif")
            c = write_native(coarse, d / f"coarse{k}.tif", r, grid == "sinusoidal")
            pairs.append([str(f), str(c)])
        fields = {
            "pairs": pairs,
            "pair_dates": list(case.pair_dates),
            "target": str(
                write_native(case.target, d / "coarse_target.tif", r, grid == "sinusoidal")
            ),
            "truth": str(copy_fine(case.truth, d / "truth.tif")),
            "target_date": case.target_date,
            "fine_scale": case.fine_scale,
            "coarse_scale": case.coarse_scale,
            "bands": list(case.bands),
            "description": f"{name}, each coarse image as {r} x {r} block means on its own grid",
        }
        lines.append(f"[cases.{name}-{suffix}]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in fields.items() if v is not None]
        lines.append("")
    toml = root / "cases.toml"
    toml.write_text("\n".join(lines))
    print(f"wrote {toml}: {', '.join(f'{n}-{suffix}' for n in CASES)}")
    return toml


def _bench(args: list[str]) -> None:
    cmd = [sys.executable, "-m", "stfusion.cli", "bench", "--methods", "all", "--no-figures"]
    print(" ".join(["stfusion", *cmd[3:], *args]), flush=True)
    subprocess.run([*cmd, *args], check=True)


def _mean_rmse(metrics_csv: Path, suffix: str = "") -> dict[tuple[str, str], float]:
    """Mean RMSE per (named case, method); ``suffix``: the variant's, taken off its names."""
    out = {}
    with metrics_csv.open() as f:
        for r in csv.DictReader(f):
            if r["band"] == "mean" and r["metric"] == "rmse":
                case = r["case"].removesuffix(f"-{suffix}") if suffix else r["case"]
                out[case, r["method"]] = float(r["value"])
    return out


def run_and_compare(root: Path, toml: Path, results: Path, grid: str = "blocks") -> None:
    """Both benches, then one row per method: fine grid / own grid (change)."""
    suffix, stem = GRIDS[grid]
    fine_out, native_out = root / "bench_fine", root / f"bench_{suffix}"
    _bench(["--cases", ",".join(CASES), "--out", str(fine_out), "--overwrite"])
    natives = ",".join(f"{n}-{suffix}" for n in CASES)
    _bench(["--cases-file", str(toml), "--cases", natives, "--out", str(native_out), "--overwrite"])
    fine = _mean_rmse(fine_out / "metrics.csv")
    native = _mean_rmse(native_out / "metrics.csv", suffix)
    methods = sorted({m for _, m in fine} | {m for _, m in native})
    rows = []
    for m in methods:
        cells = {}
        for c in CASES:
            a, b = fine.get((c, m)), native.get((c, m))
            cells[c] = {"fine_grid": a, "own_grid": b}
        rows.append({"method": m, "cases": cells})
    stamp = {
        "date": dt.date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}",
        "command": f"python benchmarks/native_cases.py {root} --run --grid {grid}",
    }
    results.mkdir(parents=True, exist_ok=True)
    (results / f"{stem}.json").write_text(json.dumps({**stamp, "rows": rows}, indent=1))
    lines = [
        "# Coarse images on the fine grid and on their own grid",
        "",
        f"{stamp['date']}, `{stamp['command']}` ({stamp['machine']}). Mean RMSE over bands, "
        "`stfusion bench --methods all`: the named case (coarse on the fine grid) / its "
        f"`-{suffix}` variant ({GRID_TEXT[grid]}), and the change. `-`: not run on that case "
        "(pairs, or shipped weights trained on its target).",
        "",
        "| method | " + " | ".join(CASES) + " |",
        "|---|" + "---|" * len(CASES),
    ]
    for row in rows:
        out = []
        for c in CASES:
            a, b = row["cases"][c]["fine_grid"], row["cases"][c]["own_grid"]
            if a is None or b is None:
                out.append("-" if a is None and b is None else f"{a} / {b}")
            else:
                out.append(f"{a:.5f} / {b:.5f} ({100 * (b / a - 1):+.1f} %)")
        lines.append(f"| {row['method']} | " + " | ".join(out) + " |")
    (results / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {results / f'{stem}.md'}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("outdir", help="folder for the images, cases.toml and the bench outputs")
    ap.add_argument("--run", action="store_true", help="run both benches and compare them")
    ap.add_argument(
        "--grid",
        choices=sorted(GRIDS),
        default="blocks",
        help="blocks: R x R block means (NAME-native); sinusoidal: then warped onto MODIS's "
        "grid as MOD09GA is delivered (NAME-sinu)",
    )
    ap.add_argument(
        "--results", default=str(Path(__file__).parent / "results"), help="folder for the results"
    )
    a = ap.parse_args()
    toml = main(a.outdir, a.grid)
    if a.run:
        run_and_compare(Path(a.outdir), toml, Path(a.results), a.grid)
