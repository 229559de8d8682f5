"""Mean RMSE of the STARFM-like methods' windows at small resolution ratios.

    python tools/small_ratio_windows.py [--ratios 3,5] [--windows auto,default,15,9,7]

The five Sentinel-2 scenes of ../shared/data/eolearn_s2_l1c (10 m; blue, green, red, NIR,
SWIR1, SWIR2), coarse images made by R x R block means on the fine grid (``ratio=R``). One-
pair methods (STARFM, FSDAF, Fit-FC) run on the 20 ordered (pair, target) scene pairs,
ESTARFM on four (before, after, target) triples; each cell is the mean over them of the mean
RMSE over bands, beside the additive baseline's. ``default``: the window ``auto`` is at
ratios from 8 up (STARFM and ESTARFM 51, FSDAF 41, Fit-FC 31 fine pixels), the default
before 2026-12-07. A window too small for a method's ``similar`` pixels is left empty.
docs/inputs.md, "Small ratios", shows its output: why ``window=auto`` is 2 R + 1 below ratio
8. Block means favour small windows (no sensor difference or misregistration), so real
sensor pairs may want somewhat larger ones.
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np

SCENES = Path(__file__).resolve().parents[2] / "shared/data/eolearn_s2_l1c/REFERENCE_SCENES.npy"
BANDS = [1, 2, 3, 7, 11, 12]  # B02, B03, B04, B08, B11, B12
TRIPLES = [(0, 2, 1), (1, 3, 2), (2, 4, 3), (0, 4, 2)]


def scenes(ratio: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The fine scenes cropped to whole coarse pixels, and their block means on the fine grid."""
    cube = np.load(SCENES).astype(np.float32)
    h, w = (cube.shape[1] // ratio) * ratio, (cube.shape[2] // ratio) * ratio
    fine = [np.transpose(s[:h, :w, BANDS], (2, 0, 1)) for s in cube]

    def block(a: np.ndarray) -> np.ndarray:
        m = a.reshape(a.shape[0], h // ratio, ratio, w // ratio, ratio).mean(axis=(2, 4))
        return np.repeat(np.repeat(m, ratio, 1), ratio, 2)

    return fine, [block(a) for a in fine]


def score(method: str, window: str, ratio: int) -> float | None:
    from stfusion.errors import InvalidParameterError
    from stfusion.methods import get_method
    from stfusion.methods.one_call import fuse
    from stfusion.metrics import rmse

    fine, coarse = scenes(ratio)
    cls = get_method(method)
    if window == "default":  # the number auto is at the usual ratios (STARFM 51, FSDAF 41)
        window = str(next(p.usual for p in cls.params if p.name == "window"))
    kw = {} if window == "auto" else {"window": int(window)}
    runs = (
        [((i, k), j) for i, k, j in TRIPLES]
        if method == "estarfm"
        else [((i,), j) for i in range(5) for j in range(5) if i != j]
    )
    out = []
    for refs, j in runs:
        pairs = [(fine[i], coarse[i]) for i in refs]
        try:
            pred = fuse(cls(**kw), pairs, coarse[j], ratio=ratio)
        except InvalidParameterError:  # e.g. Fit-FC's 30 similar pixels in a 5 x 5 window
            return None
        out.append(float(np.mean(rmse(np.asarray(pred.values), fine[j]))))
    return float(np.mean(out))


def additive(ratio: int, two: bool) -> float:
    from stfusion.metrics import rmse

    fine, coarse = scenes(ratio)
    if two:
        preds = [
            ((fine[i] + coarse[j] - coarse[i] + fine[k] + coarse[j] - coarse[k]) / 2, j)
            for i, k, j in TRIPLES
        ]
    else:
        preds = [(fine[i] + coarse[j] - coarse[i], j) for i in range(5) for j in range(5) if i != j]
    return float(np.mean([np.mean(rmse(p, fine[j])) for p, j in preds]))


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--ratios", default="3,5")
    ap.add_argument("--methods", default="starfm,fsdaf,fitfc,estarfm")
    ap.add_argument("--windows", default="auto,default,15,9,7")
    a = ap.parse_args()
    warnings.simplefilter("ignore")
    windows = a.windows.split(",")
    print("| ratio | method | " + " | ".join(f"window={w}" for w in windows) + " | additive |")
    print("|---|---|" + "---|" * (len(windows) + 1))
    for ratio in (int(r) for r in a.ratios.split(",")):
        for m in a.methods.split(","):
            cells = [score(m, w, ratio) for w in windows]
            shown = " | ".join("" if c is None else f"{c:.5f}" for c in cells)
            print(f"| {ratio} | {m} | {shown} | {additive(ratio, m == 'estarfm'):.5f} |")


if __name__ == "__main__":
    main()
