"""Generator of the synthetic cloudy series used by tests/test_series.py.

Made from the CIA subset (``shared/data/cia_e2starfm/geotiff_50m``: Landsat-7 and MOD09GA on
one 50 m grid, 2001-10-08, 10-17 and 11-02), deterministically from a seed:

- ``fine/CIA_Landsat7_2001-10-08.tif`` and ``..._2001-11-02.tif``: the real Landsat images
  with clouds painted on (bright, smooth blobs: ``F (1 - a) + a * CLOUD``, ``a`` a smooth
  opacity in 0..1) and cloud shadows (the same blobs shifted, ``F * (1 - 0.6 a)``), in
  different places on the two dates (partly overlapping); on 11-02 the last rows are fill
  (DN 0). Stored like Landsat Collection 2 surface reflectance: uint16 DN with reflectance
  ``DN * 2.75e-5 - 0.2`` (pass ``--fine-scale 2.75e-5 --fine-offset -0.2``).
- ``fine_qa/CIA_Landsat7_<date>_QA_PIXEL.tif``: uint16 QA_PIXEL marking them (cloud with high
  cloud confidence where ``a > 0.15``, dilated cloud on the thin edge, cloud shadow, fill,
  clear elsewhere), with the bit layout of the USGS product guide.
- ``coarse/CIA_MOD09GA_<date>.tif``: the three real MODIS images, plus a cloudy MODIS date
  2001-10-25 (the mean of 10-17 and 11-02 with large bright clouds).
- ``coarse_state/CIA_MOD09GA_<date>_state_1km.tif``: uint16 state_1km on a 1 km grid (its own
  grid, reprojected by the series with nearest neighbour): clear land everywhere on the real
  dates, cloudy (cloud state 01 + internal cloud flag) under the 10-25 clouds.

The 10-17 Landsat image is held back: it is the truth at the 10-17 target. ``make_cloudy_series``
returns the paths and the painted masks. Run ``python tests/synthetic_clouds.py OUT`` to
write the files and print what was made.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from scipy.ndimage import shift

from conftest import CIA

DATES = ("2001-10-08", "2001-10-17", "2001-11-02")
CLOUDY_COARSE_DATE = "2001-10-25"
#: Bright cloud-top reflectance per band (blue, green, red, NIR, SWIR1, SWIR2).
CLOUD = np.array([0.55, 0.56, 0.58, 0.62, 0.45, 0.35], dtype=np.float32)
SHADOW_DARKENING = 0.6
SHADOW_SHIFT = (7, 9)  # rows, cols: the sun is to the north-west
CLOUD_CORE = 0.15  # opacity above which a pixel is flagged cloud (else dilated cloud)
FILL_ROWS = 5
LANDSAT_SCALE, LANDSAT_OFFSET = 2.75e-5, -0.2

# QA_PIXEL values, built from the bits: 6 clear, 8-9/10-11/12-13/14-15 confidences (01 low).
_LOW_CONF = (1 << 8) | (1 << 10) | (1 << 12) | (1 << 14)
QA_CLEAR = (1 << 6) | _LOW_CONF
QA_CLOUD = (1 << 3) | (3 << 8) | (1 << 10) | (1 << 12) | (1 << 14)
QA_DILATED = (1 << 1) | (2 << 8) | (1 << 10) | (1 << 12) | (1 << 14)
QA_SHADOW = (1 << 4) | (1 << 6) | (1 << 8) | (3 << 10) | (1 << 12) | (1 << 14)
QA_FILL = 1
# state_1km: bits 3-5 = 001 (land); cloudy = cloud state 01 + internal cloud flag (bit 10).
STATE_CLEAR_LAND = 1 << 3
STATE_CLOUDY = STATE_CLEAR_LAND | 1 | (1 << 10)


def blobs(shape: tuple[int, int], n: int, radius: tuple[float, float], rng: Any) -> np.ndarray:
    """Smooth opacity in 0..1: a sum of Gaussian bumps, cut at a level so edges fall to 0."""
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float64)
    field = np.zeros(shape)
    for _ in range(n):
        cy, cx = rng.uniform(0, shape[0]), rng.uniform(0, shape[1])
        r = rng.uniform(*radius)
        field += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
    return np.clip((field - 0.35) / 0.45, 0.0, 1.0).astype(np.float32)


def _read(path: Path, rows: slice, cols: slice) -> tuple[np.ndarray, Affine, Any, list[str]]:
    with rasterio.open(path) as ds:
        win = rasterio.windows.Window(
            cols.start, rows.start, cols.stop - cols.start, rows.stop - rows.start
        )
        arr = ds.read(window=win).astype(np.float32)
        return arr, ds.window_transform(win), ds.crs, list(ds.descriptions)


def _write(
    path: Path,
    data: np.ndarray,
    transform: Affine,
    crs: Any,
    dtype: str,
    names: list[str] | None = None,
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = data[None] if data.ndim == 2 else data
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=data.shape[2],
        height=data.shape[1],
        count=data.shape[0],
        dtype=dtype,
        crs=crs,
        transform=transform,
        compress="deflate",
    ) as ds:
        ds.write(data.astype(dtype))
        for i, name in enumerate(names or [], start=1):
            ds.set_band_description(i, name)
    return path


def paint(fine: np.ndarray, alpha: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Clouds and their shadows painted onto ``fine``; the masks of what was painted."""
    dy, dx = SHADOW_SHIFT
    shade = np.clip(shift(alpha, (dy, dx), order=1, mode="constant", cval=0.0), 0.0, 1.0)
    cloudy = alpha > 0
    shadow = (shade > 0) & ~cloudy
    out = fine * (1.0 - SHADOW_DARKENING * np.where(shadow, shade, 0.0))[None]
    out = out * (1.0 - alpha)[None] + alpha[None] * CLOUD[: fine.shape[0], None, None]
    core = alpha > CLOUD_CORE
    return out.astype(np.float32), {
        "cloud": core,
        "dilated": cloudy & ~core,
        "shadow": shadow,
        "painted": cloudy | shadow,
    }


def qa_pixel(masks: dict[str, np.ndarray], fill: np.ndarray) -> np.ndarray:
    qa = np.full(fill.shape, QA_CLEAR, dtype=np.uint16)
    qa[masks["shadow"]] = QA_SHADOW
    qa[masks["dilated"]] = QA_DILATED
    qa[masks["cloud"]] = QA_CLOUD
    qa[fill] = QA_FILL
    return qa


def make_cloudy_series(
    out: str | Path,
    *,
    seed: int = 0,
    rows: slice = slice(50, 170),
    cols: slice = slice(60, 180),
) -> dict[str, Any]:
    """Write the cloudy series under ``out`` (a crop ``rows`` x ``cols`` of the CIA subset).

    Returns the folders, the truth path, the per-date masks of what was painted (``painted``,
    ``cloud``, ``dilated``, ``shadow``; ``fill`` on 11-02), the invalid mask each date's
    QA_PIXEL gives, and the clean (unpainted) fine images.
    """
    out = Path(out)
    rng = np.random.default_rng(seed)
    fine: dict[str, np.ndarray] = {}
    coarse: dict[str, np.ndarray] = {}
    transform: Affine | None = None
    crs: Any = None
    names: list[str] = []
    for d in DATES:
        fine[d], transform, crs, names = _read(CIA / f"CIA_Landsat7_{d}.tif", rows, cols)
        coarse[d], _, _, _ = _read(CIA / f"CIA_MOD09GA_{d}.tif", rows, cols)
    assert transform is not None
    h, w = fine[DATES[0]].shape[1:]
    info: dict[str, Any] = {
        "fine_dir": out / "fine",
        "qa_dir": out / "fine_qa",
        "coarse_dir": out / "coarse",
        "state_dir": out / "coarse_state",
        "truth": CIA / f"CIA_Landsat7_{DATES[1]}.tif",
        "masks": {},
        "clean": {},
        "crop": (rows, cols),
        "shape": (h, w),
    }
    # Clouds on the two fine dates that stay in the series; 10-17 is the held-back truth.
    for d, n in ((DATES[0], 5), (DATES[2], 5)):
        alpha = blobs((h, w), n, (5.0, 11.0), rng)
        painted, masks = paint(fine[d], alpha)
        fill = np.zeros((h, w), dtype=bool)
        if d == DATES[2]:
            fill[-FILL_ROWS:] = True
            painted[:, fill] = LANDSAT_OFFSET  # DN 0
        masks["fill"] = fill
        qa = qa_pixel(masks, fill)
        masks["qa_invalid"] = masks["cloud"] | masks["dilated"] | masks["shadow"] | fill
        dn = np.clip(np.rint((painted - LANDSAT_OFFSET) / LANDSAT_SCALE), 0, 65535)
        _write(out / "fine" / f"CIA_Landsat7_{d}.tif", dn, transform, crs, "uint16", names)
        _write(out / "fine_qa" / f"CIA_Landsat7_{d}_QA_PIXEL.tif", qa, transform, crs, "uint16")
        info["masks"][d] = masks
        info["clean"][d] = fine[d]
    # Coarse: the three real dates, and one cloudy date between them.
    extra = 0.5 * (coarse[DATES[1]] + coarse[DATES[2]])
    big = blobs((h, w), 8, (14.0, 24.0), rng)
    extra = extra * (1.0 - big)[None] + big[None] * CLOUD[:, None, None]
    all_coarse = {**coarse, CLOUDY_COARSE_DATE: extra}
    # state_1km on its own 1 km grid over the crop (20 x 20 fine pixels per state pixel).
    k = 20
    sh, sw = -(-h // k), -(-w // k)
    state_t = transform * Affine.scale(k)
    for d, img in sorted(all_coarse.items()):
        _write(out / "coarse" / f"CIA_MOD09GA_{d}.tif", img, transform, crs, "float32", names)
        state = np.full((sh, sw), STATE_CLEAR_LAND, dtype=np.uint16)
        if d == CLOUDY_COARSE_DATE:
            pad = np.zeros((sh * k, sw * k), dtype=np.float32)
            pad[:h, :w] = big
            frac = pad.reshape(sh, k, sw, k).mean(axis=(1, 3))
            state[frac > 0.05] = STATE_CLOUDY
        _write(
            out / "coarse_state" / f"CIA_MOD09GA_{d}_state_1km.tif", state, state_t, crs, "uint16"
        )
    info["coarse_dates"] = sorted(all_coarse)
    return info


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "cloudy-series")
    made = make_cloudy_series(target)
    for d, m in made["masks"].items():
        print(
            f"{d}: painted {m['painted'].mean():.1%} (cloud {m['cloud'].mean():.1%}, shadow "
            f"{m['shadow'].mean():.1%}), QA-invalid {m['qa_invalid'].mean():.1%}"
        )
    print(f"wrote {target}/ (fine, fine_qa, coarse, coarse_state); truth {made['truth']}")
