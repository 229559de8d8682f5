"""The synthetic cloudy series table of docs/commands/series.md ("Measured").

Builds the series of ``tests/synthetic_clouds.py`` (seed 0) in a temporary folder, runs
``stfusion series`` with each method (QA_PIXEL and state_1km masks) and prints the RMSE
(pinned: per band, then the mean over bands) of each column:

- 10-17 predicted, under the 10-08 clouds: pixels flagged on 10-08 and not on 11-02, against
  the held-back 10-17 Landsat image;
- 10-08 gap-filled, under its clouds: the same pixels, against the clean 10-08 image;
- 11-02 gap-filled, under its clouds: pixels flagged on 11-02 and not on 10-08, against the
  clean 11-02 image;
- 10-17, all pixels.

Baseline: ``F1 + C2 - C1`` from the nearest pair clear at the pixel. Run from the repository
root: ``python tools/cloudy_series_table.py`` (needs ``../shared/data``).
"""

from __future__ import annotations

import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from stfusion.io import FileSource  # noqa: E402
from stfusion.metrics import evaluate  # noqa: E402
from stfusion.series import run_series  # noqa: E402
from synthetic_clouds import DATES, make_cloudy_series  # noqa: E402

METHODS = (
    ("`fitfc` (ratio=10)", "fitfc", ["ratio=10"]),
    ("`fsdaf` (ratio=10)", "fsdaf", ["ratio=10"]),
    ("`starfm`", "starfm", []),
    ("`estarfm` (+ STARFM fallback)", "estarfm", []),
)


def _rmse(pred: np.ndarray, truth: np.ndarray, where: np.ndarray | None = None) -> float:
    if where is not None:
        pred, truth = (np.where(where[None], a, np.nan) for a in (pred, truth))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(evaluate(pred, truth).mean["rmse"])


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        info = make_cloudy_series(Path(tmp) / "data", seed=0)
        d08, d17, d11 = DATES
        rows_, cols_ = info["crop"]
        truth = FileSource(str(info["truth"])).read()[:, rows_, cols_]
        coarse = {
            d: FileSource(str(info["coarse_dir"] / f"CIA_MOD09GA_{d}.tif")).read() for d in DATES
        }
        m08, m11 = info["masks"][d08]["qa_invalid"], info["masks"][d11]["qa_invalid"]
        clean08, clean11 = info["clean"][d08], info["clean"][d11]
        under08, under11 = m08 & ~m11, m11 & ~m08

        def additive(fine: np.ndarray, mask: np.ndarray, cp: np.ndarray, ct: np.ndarray) -> object:
            return np.where(mask[None], np.nan, fine) + ct - cp

        a08 = additive(clean08, m08, coarse[d08], coarse[d17])
        a11 = additive(clean11, m11, coarse[d11], coarse[d17])
        base17 = np.where(np.isfinite(a08), a08, a11)
        base08 = additive(clean11, m11, coarse[d11], coarse[d08])
        base11 = additive(clean08, m08, coarse[d08], coarse[d11])
        print(
            "| method | 10-17 predicted, under the 10-08 clouds | 10-08 gap-filled, under its "
            "clouds | 11-02 gap-filled, under its clouds | 10-17, all pixels | seconds (4 dates) |"
        )
        print("|---|---|---|---|---|---|")
        print(
            f"| additive baseline | {_rmse(base17, truth, under08):.5f} | "
            f"{_rmse(base08, clean08, under08):.5f} | {_rmse(base11, clean11, under11):.5f} | "
            f"{_rmse(base17, truth):.5f} | |"
        )
        for label, method, params in METHODS:
            out = Path(tmp) / method
            t0 = time.perf_counter()
            run_series(
                out,
                fine=[str(info["fine_dir"])],
                coarse=[str(info["coarse_dir"])],
                fine_mask=[str(info["qa_dir"])],
                fine_mask_kind="landsat_qa_pixel",
                coarse_mask=[str(info["state_dir"])],
                coarse_mask_kind="mod09_state_1km",
                fine_scale=2.75e-5,
                fine_offset=-0.2,
                method=method,
                params=params,
            )
            seconds = time.perf_counter() - t0
            p08, p17, p11 = (FileSource(str(out / f"fused_{d}.tif")).read() for d in DATES)
            print(
                f"| {label} | {_rmse(p17, truth, under08):.5f} | {_rmse(p08, clean08, under08):.5f}"
                f" | {_rmse(p11, clean11, under11):.5f} | {_rmse(p17, truth):.5f} | "
                f"{seconds:.1f} |"
            )


if __name__ == "__main__":
    main()
