"""Whether a pair's fine and coarse images (and a target's coarse image) are on one scale:
reflectance against reflectance x 10000, raw digital numbers of a named product (Landsat
surface temperature, MODIS LST) read unscaled, kelvin against degrees Celsius. Each a
warning or a ``ScaleMismatchError`` naming the files and the options to give."""

from __future__ import annotations

import math

import numpy as np

from stfusion.errors import ScaleMismatchError, warn
from stfusion.io import Source
from stfusion.io.sources import underlying_source
from stfusion.products import kelvin_and_celsius, raw_product
from stfusion.scale_check import looks_like_reflectance

__all__ = [
    "SAMPLE_PIXELS",
    "SCALE_ERROR_FACTOR",
    "SCALE_WARN_FACTOR",
    "SCALE_WARN_PAIR",
    "check_scales",
    "check_target_scale",
    "warn_raw_products",
]

#: Fine and coarse images of one date whose |value| medians and 98th percentiles both differ
#: this much are almost surely on other scales (both: a median near 0, as NDVI's, alone says
#: nothing). The real pairs in ../shared/data differ at most 1.5x.
SCALE_ERROR_FACTOR = 1000.0
SCALE_WARN_PAIR = 5.0
#: Between dates (a coarse target against a pair's coarse image: snow, cloud or flood can
#: change a band 15-25x) and between sites (a training catalog): warn from 20x.
SCALE_WARN_FACTOR = 20.0


def _scale_in_effect(src: Source) -> float:
    """The scale that made ``src``'s values physical (its file's or array's, under any
    wrappers: an aligned coarse image, a mask); 1 when none is known."""
    scale = float(getattr(underlying_source(src), "scale", 1.0) or 1.0)
    return abs(scale) if math.isfinite(scale) else 1.0


def python_scale(option: str, scale: float) -> str:
    """The Python spelling of ``--fine-scale S`` (or --coarse-scale): fit() takes a Scaling
    (``fine_scaling=``), run_prediction() and SeriesConfig the number (``fine_scale=``);
    the advice named fit's keyword to run_series users, whose call then failed."""
    role = option.lstrip("-").split("-")[0]
    return (
        f"Python: {role}_scaling={scale:g} in fit(), {role}_scale={scale:g} in "
        "run_prediction() and SeriesConfig"
    )


def _small_side_advice(small: Source, option: str, factor: float) -> str:
    """What to give when ``small``'s values are too small to be reflectance: its scale in
    effect times ``factor`` (a power of ten), 1 meaning "leave the option out"."""
    given = _scale_in_effect(small)
    scale = 10.0 ** round(np.log10(given * factor))
    fix = (
        f"leave {option} out (its {given:g} makes them so)"
        if scale == 1 and given != 1
        else f"give {option} {scale:g} ({python_scale(option, scale)})"
    )
    return f"{small.label} holds values too small for reflectance: {fix}."


#: Pixels of the decimated sample of each image that the value checks compare.
SAMPLE_PIXELS = 1 << 16


#: Landsat Collection 2 Level-2 surface reflectance: value = DN x 2.75e-5 - 0.2.
C2_SCALE = 2.75e-5


def _dn_hint(big: Source, option: str, median: float, seen: str = "") -> str:
    """What the larger-valued image's digital numbers are, when known: a named product read
    unscaled, or Landsat Collection 2 Level-2 surface reflectance (a fine image whose stored
    values look like its digital numbers, reflectance 0..0.6 being 7273..29091: a power of ten
    alone leaves its -0.2 offset out, RMSE 0.057 against 0.035 on CIA). ``seen``: put after
    "read unscaled" (what showed it)."""
    role = option.removeprefix("--").removesuffix("-scale")
    under = underlying_source(big)
    product = raw_product(
        str(getattr(under, "path", "") or ""), big.band_names, median, _scale_in_effect(big)
    )
    if product is not None:
        return (
            f" {big.label} looks like {product.title} read unscaled{seen}: give "
            f"{product.advice(role)} instead, so it is in {product.unit}."
        )
    if option != "--fine-scale" or _scale_in_effect(big) != 1.0 or not 5000 <= median <= 65535:
        return ""
    return (
        " If it is Landsat Collection 2 Level-2 (uint16, reflectance = DN x 2.75e-5 - 0.2), "
        "give --fine-scale 2.75e-5 --fine-offset -0.2 instead (or --fine-preset "
        "landsat89-c2l2 / landsat457-c2l2)."
    )


def warn_raw_products(fine: Source, coarse: Source, samples: tuple[np.ndarray, ...]) -> bool:
    """Warn of an image named as a product stored as digital numbers (Landsat surface
    temperature ``ST_B10``, MODIS ``LST_Day_1km``) and read without its scale and offset,
    whatever the other image: unscaled, Landsat's and MODIS's differ only 2.7x and would be
    fused in mixed units. Whether it warned."""
    told = False
    for src, sample, role in ((fine, samples[0], "fine"), (coarse, samples[1], "coarse")):
        values = np.abs(sample[np.isfinite(sample)])
        if values.size == 0:
            continue
        median = float(np.median(values))
        hint = _dn_hint(src, f"--{role}-scale", median, f" (median {median:.4g})")
        if "read unscaled" in hint:
            warn(hint.strip())
            told = True
    return told


def check_scales(
    fine: Source,
    coarse: Source,
    fine_option: str = "--fine-scale",
    coarse_option: str = "--coarse-scale",
    samples: tuple[np.ndarray, np.ndarray] | None = None,
) -> bool:
    """Catch reflectance x10000 against 0-1 (the commonest silent error in STF), and kelvin
    against degrees Celsius; whether it warned.

    ``fine_option``/``coarse_option``: the options that scale each image, named in the
    advice (the larger-valued side's); the same option for both (the coarse target against
    a pair's coarse image) means the files themselves must agree. ``samples``: the images'
    samples of :data:`SAMPLE_PIXELS`, when already read.
    """
    f, c = samples or (fine.sample(SAMPLE_PIXELS), coarse.sample(SAMPLE_PIXELS))
    for b in range(min(f.shape[0], c.shape[0])):
        fv = f[b][np.isfinite(f[b])]
        cv = c[b][np.isfinite(c[b])]
        if fv.size == 0 or cv.size == 0 or np.ptp(fv) == 0 or np.ptp(cv) == 0:
            continue  # one value throughout (a fill, warned about by check_valid): no scale
        fm, cm = float(np.median(np.abs(fv))), float(np.median(np.abs(cv)))
        kelvin = kelvin_and_celsius(fv, cv)
        if kelvin is not None:
            k_src, c_src, c_opt = (
                (fine, coarse, coarse_option) if kelvin == 0 else (coarse, fine, fine_option)
            )
            fix = (  # the target and the pairs' coarse images share --coarse-offset
                f"convert {c_src.label} to kelvin (e.g. gdal_calc.py --calc 'A+273.15')"
                if fine_option == coarse_option
                else f"give {c_opt.replace('-scale', '-offset')} 273.15"
            )
            raise ScaleMismatchError(
                f"{fine.label} (median {np.median(fv):.4g}) and {coarse.label} (median "
                f"{np.median(cv):.4g}) differ by about 273 in band {b + 1}: {k_src.label} "
                f"looks like kelvin, {c_src.label} like degrees Celsius. To put both in "
                f"kelvin, {fix}."
            )
        fp, cp = float(np.percentile(np.abs(fv), 98)), float(np.percentile(np.abs(cv), 98))
        # one date: reflectance cannot change sign (temperatures and digital numbers, over
        # 1.6 in |value|, are not judged)
        if fine_option != coarse_option and max(fp, cp) <= 1.6:
            _refuse_opposite_signs((fine, fv, fine_option), (coarse, cv, coarse_option), b)
        if min(fm, cm, fp, cp) <= 0:
            continue
        factor = min(max(fm, cm) / min(fm, cm), max(fp, cp) / min(fp, cp))
        if factor >= SCALE_ERROR_FACTOR:
            big, option = (fine, fine_option) if fm > cm else (coarse, coarse_option)
            # the power of ten nearest the scale in effect over the factor: with --fine-scale
            # 10 given for x10000 values, 1e-4 (not 1e-5, the factor's own correction)
            given = _scale_in_effect(big)
            scale = 10.0 ** round(np.log10(given / factor))
            small, small_option = (coarse, coarse_option) if fm > cm else (fine, fine_option)
            # the larger side looks like reflectance, the smaller does not (0-1 values scaled
            # by 0.0001 again): fix the smaller side, not scale the other down
            plausible = [looks_like_reflectance(m) for m in (min(fm, cm), max(fm, cm))]
            if plausible == [False, True] and fine_option != coarse_option:
                advice = _small_side_advice(small, small_option, factor)
            elif fine_option == coarse_option:
                advice = (
                    f"{option} applies to both, so the files must be in the same units: "
                    f"rescale {big.label}, or record its scale in it (gdal_edit.py -scale "
                    f"{scale:g} FILE, on a copy)."
                )
            elif hint := _dn_hint(big, option, max(fm, cm)):
                advice = hint.strip()
            else:
                advice = (
                    f"{big.label} holds the larger values: give {option} {scale:g} "
                    f"({python_scale(option, scale)}), or set both scales, so both are in the "
                    "same units."
                )
            measure = (
                f"{fine.label} (median {fm:.4g}) and {coarse.label} (median {cm:.4g}) differ "
                f"{factor:.0f}x in band {b + 1}: their scales do not match."
            )
            raise ScaleMismatchError(f"{measure} {advice}", measure=measure)
        if factor >= (SCALE_WARN_FACTOR if fine_option == coarse_option else SCALE_WARN_PAIR):
            options = (
                fine_option if fine_option == coarse_option else f"{fine_option}/{coarse_option}"
            )
            src = underlying_source(fine)
            c2 = math.isclose(float(getattr(src, "scale", 1.0)), C2_SCALE, rel_tol=1e-6)
            offset = (
                " and the offsets: Landsat Collection 2 Level-2 needs --fine-offset -0.2 with "
                "its scale 2.75e-5"
                if c2 and float(getattr(src, "offset", 0.0)) == 0.0
                else ""
            )
            big, option = (fine, fine_option) if fm > cm else (coarse, coarse_option)
            dn = _dn_hint(big, option, max(fm, cm))  # e.g. Landsat DN vs MODIS int16
            warn(
                f"{fine.label} and {coarse.label}: band {b + 1} medians differ "
                f"{max(fm, cm) / min(fm, cm):.0f}x ({fm:.4g} vs {cm:.4g}; 98th percentiles of "
                f"|value| {fp:.4g} vs {cp:.4g}); check {options}{offset}.{dn}"
            )
            return True
    return False


#: The share of a band's values below 0 (and at or above 0 on the other image of the pair)
#: that makes one side of a reflectance pair negative throughout.
SIGN_SHARE = 0.99


def _refuse_opposite_signs(
    fine: tuple[Source, np.ndarray, str], coarse: tuple[Source, np.ndarray, str], band: int
) -> None:
    """Refuse a pair whose fine and coarse band have equal magnitudes but opposite signs
    throughout: an offset read wrongly. A Sentinel-2 trial: 0-1 reflectance read with the
    sentinel2-l2a preset (x 0.0001 - 0.1) came out -0.1 everywhere against coarse +0.1, and
    the magnitude checks passed it (exit 0, RMSE 0.20). For reflectance-sized values (the
    caller's test)."""
    sides = (fine, coarse)
    negative = [float(np.mean(v < 0)) for _, v, _ in sides]
    if max(negative) < SIGN_SHARE or min(negative) > 1 - SIGN_SHARE:
        return
    (src, values, option), (other, other_values, _) = sides if negative[0] > 0.5 else sides[::-1]
    if float(np.median(values)) > -0.02:  # near 0 (dark water): no sign to judge
        return
    under = underlying_source(src)
    scale, offset = float(getattr(under, "scale", 1.0)), float(getattr(under, "offset", 0.0))
    sign = "-" if offset < 0 else "+"
    read = f"read as value x {scale:g} {sign} {abs(offset):g}" if (scale, offset) != (1, 0) else ""
    offset_option = option.replace("-scale", "-offset")
    raise ScaleMismatchError(
        f"{src.label} is negative at {max(negative):.0%} of its pixels in band {band + 1} "
        f"(median {np.median(values):.4g}{', ' + read if read else ''}) where {other.label} "
        f"is positive (median {np.median(other_values):.4g}): one of them is read with a "
        f"wrong offset. Files that hold reflectance already (0-1 floats, as Sentinel Hub, "
        f"eo-learn and Google Earth Engine export them) need no preset and no offset: give "
        f"{option} 1 {offset_option} 0 (or leave out the preset); digital numbers need the "
        "product's own scale and offset."
    )


def check_target_scale(pair: tuple[Source, Source], target: Source) -> None:
    """The coarse target against a pair's coarse image (the same sensor: a target x10000
    among 0-1 pairs would give "reflectance" in the thousands, silently). A fine reference
    standing in for its own coarse image (``--fine-ref``: the pair's two images are one
    file) is read with the fine options, so the advice names ``--fine-scale`` for it."""
    fine, coarse = pair
    stand_in = fine.label == coarse.label
    check_scales(coarse, target, "--fine-scale" if stand_in else "--coarse-scale", "--coarse-scale")
