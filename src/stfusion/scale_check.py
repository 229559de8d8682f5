"""Whether a prediction and its truth are on one scale (reflectance against reflectance x
10000 is the commonest silent error in scoring), and what to give to fix it. Used by
``stfusion evaluate`` before any score."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from stfusion.products import kelvin_and_celsius, raw_product

__all__ = ["SCALE_CHECK_FACTOR", "ScaleMismatch", "looks_like_reflectance", "scale_mismatch"]


def looks_like_reflectance(median: float) -> bool:
    """Whether a median of absolute values is one reflectance can have: the side of a scale
    mismatch that is right (the other gets the advice)."""
    return 1e-3 <= median <= 2.0


_ROLE = {"pred": "prediction", "truth": "truth"}

#: Prediction and truth whose typical values differ by more than this factor are on different
#: scales (reflectance against reflectance x 10000): scores would be meaningless.
SCALE_CHECK_FACTOR = 20.0


@dataclass(frozen=True)
class ScaleMismatch:
    """The worst band of a scale mismatch, and the --truth-scale that would fix it."""

    band: int
    factor: float  # truth median / prediction median
    pred_median: float
    truth_median: float
    truth_given: float = 1.0  # the scale the truth was read with, which the advice replaces
    #: The signed medians, when one looks like kelvin and the other like degrees Celsius.
    kelvin_celsius: tuple[float, float] | None = None

    @property
    def truth_scale(self) -> float:
        """The whole --truth-scale (a power of ten) that gives the prediction's units."""
        return float(10.0 ** round(math.log10(abs(self.truth_given) / self.factor)))

    def message(self, pred: str = "the prediction", truth: str = "the truth") -> str:
        if self.kelvin_celsius is not None:
            p_med, t_med = self.kelvin_celsius
            side, other = ("truth", "pred") if p_med > t_med else ("pred", "truth")
            return (
                f"{pred} (median {p_med:.4g}) and {truth} (median {t_med:.4g}) differ by about "
                f"273 in band {self.band + 1}: the {_ROLE[other]} looks like kelvin, the "
                f"{_ROLE[side]} like "
                "degrees Celsius, so the scores would be meaningless. Give "
                f"--{side}-offset 273.15 (Python: evaluate_files(..., {side}_offset=273.15)) so "
                "both are in kelvin."
            )
        times = self.factor if self.factor >= 1 else 1 / self.factor
        for path, role, median, given in (
            (pred, "pred", self.pred_median, 1.0),
            (truth, "truth", self.truth_median, self.truth_given),
        ):
            product = raw_product(path, (), median, given)
            if product is not None:
                return (
                    f"{pred} (median {self.pred_median:.4g}) and {truth} (median "
                    f"{self.truth_median:.4g}) differ {times:.0f}x in band {self.band + 1}: "
                    f"{path} looks like {product.title} read unscaled. Give "
                    f"{product.advice(role)} so it is in {product.unit}."
                )
        s = f"{self.truth_scale:g}"
        if self.pred_median > 2 and looks_like_reflectance(self.truth_median):
            # the truth looks like reflectance: scale the prediction down to it, not the
            # truth up (whose SSIM and PSNR would then use the wrong data range)
            p = f"{10.0 ** round(math.log10(self.factor)):g}"
            c2 = (  # a prediction made from unscaled Collection 2 digital numbers
                " (Landsat Collection 2 Level-2 digital numbers: --pred-scale 2.75e-5 "
                "--pred-offset -0.2)"
                if 5000 <= self.pred_median <= 65535
                else ""
            )
            return (
                f"{pred} (median {self.pred_median:.4g}) and {truth} (median "
                f"{self.truth_median:.4g}) differ {times:.0f}x in band {self.band + 1}: the "
                f"prediction is stored scaled. Give --pred-scale {p}{c2} (Python: "
                f"evaluate_files(..., pred_scale={p}))."
            )
        hint = (
            f"Give --truth-scale {s} (Python: evaluate_files(..., truth_scale={s}), or multiply "
            f"the truth array by {s})"
            + (
                " or, for Landsat Collection 2 Level-2, --truth-scale 2.75e-5 --truth-offset -0.2"
                if self.factor > 1
                else ""
            )
        )
        return (
            f"{pred} (median {self.pred_median:.4g}) and {truth} (median "
            f"{self.truth_median:.4g}) differ {times:.0f}x in band {self.band + 1}: they are on "
            f"different scales, so the scores would be meaningless. {hint}; if the "
            "prediction is the one stored scaled, give --pred-scale instead."
        )


def scale_mismatch(
    pred: ArrayLike,
    truth: ArrayLike,
    factor: float = SCALE_CHECK_FACTOR,
    truth_given: float = 1.0,
) -> ScaleMismatch | None:
    """The band whose median absolute values differ most, if by more than ``factor``.

    Medians over the pixels valid in both images; bands where either median is 0 are skipped.
    ``truth_given``: the scale the truth was read with."""
    p, t = (np.asarray(a, dtype=np.float64) for a in (pred, truth))
    if p.ndim == 2:
        p, t = p[np.newaxis], t[np.newaxis]
    worst: ScaleMismatch | None = None
    for b in range(p.shape[0]):
        ok = np.isfinite(p[b]) & np.isfinite(t[b])
        if not ok.any():
            continue
        pm = float(np.median(np.abs(p[b][ok])))
        tm = float(np.median(np.abs(t[b][ok])))
        signed = float(np.median(p[b][ok])), float(np.median(t[b][ok]))
        if kelvin_and_celsius(p[b][ok], t[b][ok]) is not None:  # 290 K against 17 C: 17x
            return ScaleMismatch(
                b, tm / pm if pm > 0 else math.inf, pm, tm, truth_given or 1.0, signed
            )
        if pm <= 0 or tm <= 0:
            continue
        f = tm / pm
        if max(f, 1 / f) > factor and (
            worst is None or max(f, 1 / f) > max(worst.factor, 1 / worst.factor)
        ):
            worst = ScaleMismatch(b, f, pm, tm, truth_given or 1.0)
    return worst
