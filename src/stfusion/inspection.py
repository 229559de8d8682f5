"""``stfusion inspect``: how each file would be read, and how ``predict`` would align them
(:func:`inspect_files`), without fusing anything."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from stfusion.api import _bands
from stfusion.errors import STFusionError, STFusionWarning, keywords_checked
from stfusion.io import FileSource, Scaling, Source, inspect_raster
from stfusion.io.files import same_file
from stfusion.scene import align_coarse
from stfusion.scene_checks import (
    PAIR_IS,
    check_pair,
    warn_band_order,
    warn_nodata_among_data,
    warn_undeclared_fill,
)


def _fill_checks(src: Source, sample: np.ndarray, role: str) -> list[str]:
    """``inspect``'s CHECK lines for an undeclared fill value and a declared one that is also
    a data value, as predict warns of them."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("ignore")
        warnings.simplefilter("always", STFusionWarning)
        warn_undeclared_fill(
            src,
            sample,
            f"an undeclared nodata (fill) value? Declare it with --{role}-nodata {{stored}}, "
            "or in the file (gdal_edit.py -a_nodata VALUE FILE, on a copy).",
        )
        warn_nodata_among_data(src, sample)
    return [f"  CHECK     {w.message}" for w in caught]


def _preset_lines(preset: Any, path: str, role: str) -> tuple[list[str], str | None]:
    """``inspect``'s account of a preset's QA band: the file that would mask the image, or
    that none is there, and that file. A preset of other Landsat missions than the files' is
    an error."""
    if preset is None or not preset.qa_band or not preset.mask_kind:
        return [], None
    from stfusion.inputs import check_preset_fits, prediction_masks

    check_preset_fits(preset, path, f"--{role}-preset")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", STFusionWarning)  # said here instead
        qa = prediction_masks([path], [], role, preset)[0]
    if qa:
        line = f"  qa        {qa} masks it ({preset.mask_kind}, --{role}-preset {preset.name})"
        return [line], qa
    return [
        f"  qa        no {preset.qa_band} among its files: its clouds are not masked (include "
        f"the {preset.qa_band} file, or give --{role}-mask)"
    ], None


def _scale_source(info: Any, preset: Any, fine: bool) -> str:
    """Where a scaling came from, naming the preset that gave it (not "given")."""
    same = preset is not None and (info.scale, info.offset) == (preset.scale, preset.offset)
    if same and info.scale_source == "given":
        return f"--{'fine' if fine else 'coarse'}-preset {preset.name}"
    return str(info.scale_source)


def _variable_lines(sample: np.ndarray, bands: int, names: Sequence[str]) -> list[str]:
    """What the methods' constants will take the fine image for (as predict infers it),
    and, for reflectance stored x 10000, how to read it in 0-1 units."""
    from stfusion.methods.variables import DN_SCALE, infer_variable

    var = infer_variable(sample, bands, tuple(names))
    lines = [f"  variable  {var.describe()}; predict's --variable overrides"]
    if var.scale == DN_SCALE:
        lines.append(
            "  CHECK     stored x 10000: predict handles it, but scores (SSIM, PSNR) expect 0-1 "
            "units; --fine-scale 0.0001 (and --coarse-scale 0.0001 for a coarse image "
            "stored so) reads it as reflectance"
        )
    return lines


def _coarse_lines(src: Source, fine: FileSource, resampling: str, sample: np.ndarray) -> list[str]:
    """``inspect``'s lines on a coarse image ``src`` (as predict reads it, masked), once put
    on ``fine``'s grid: the alignment and ratio, its valid share and values over the fine
    scene (a MODIS tile is mostly elsewhere: its own share said nothing of the scene, whose
    fill or clouds predict refuses), and CHECK / PROBLEM lines for what predict warns of or
    refuses. ``sample``: the whole file's, for the fill checks when the alignment fails."""
    lines: list[str] = []
    notes: list[str] = []
    # what predict warns about (partial coverage, band order, scales): CHECK lines
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("ignore")
        warnings.simplefilter("always", STFusionWarning)
        try:
            aligned, ratio = align_coarse(src, fine, resampling, notes)
            if aligned is src and not notes:
                lines.append("  alignment already on the fine grid (read as is)")
            elif notes:
                lines.append(f"  alignment {notes[-1]}")
            if ratio is None:  # on one grid, or pixel by pixel: R cannot be measured
                lines.append(
                    "  ratio     none from the grids: FSDAF, Fit-FC, the ensemble and "
                    "ERGAS need it, --param ratio=R (coarse pixel size / fine)"
                )
            if aligned is not src:
                sample = aligned.sample(1 << 18)
                ok = np.isfinite(sample)
                lo, hi = np.percentile(sample[ok], [1, 99]) if ok.any() else (np.nan, np.nan)
                lines.append(
                    f"  scene     {ok.mean():.1%} valid over the fine scene; values p1..p99 "
                    f"{lo:.4g} .. {hi:.4g}"
                )
                if not ok.any():
                    lines.append(
                        "  PROBLEM   no valid pixels over the fine scene (nodata, fill or "
                        "clouds there): predict refuses it. Check the date and its QA mask."
                    )
            if src.count != fine.count:
                lines.append(
                    f"  PROBLEM   {src.count} bands vs {fine.count} in the fine image: choose "
                    "and order the coarse bands that match the fine ones with --coarse-bands "
                    "(names or numbers, e.g. --coarse-bands 3,4,1,2,6,7 for MOD09GA against "
                    "Landsat's blue .. swir2), or FILE:BANDS"
                )
            else:
                warn_band_order(fine, [src])  # first: it also explains a scale warning
                check_pair(fine, aligned)  # what predict refuses (or warns about)
        except STFusionError as exc:
            lines.append(f"  PROBLEM   {exc}")
    fills = _fill_checks(src, sample, "coarse")
    return fills + lines + [f"  CHECK     {w.message}" for w in caught]


@keywords_checked
def inspect_files(
    files: Sequence[str],
    *,
    fine_scale: float | None = None,
    fine_offset: float | None = None,
    coarse_scale: float | None = None,
    coarse_offset: float | None = None,
    resampling: str = "nearest",
    fine_bands: Sequence[str] | None = None,
    coarse_bands: Sequence[str] | None = None,
    fine_nodata: float | None = None,
    coarse_nodata: float | None = None,
    fine_preset: Any = None,
    coarse_preset: Any = None,
) -> str:
    """A human-readable account of how ``predict`` would read and align ``files``; a line
    starting ``  PROBLEM`` for each thing ``predict`` would refuse (an unreadable file is
    one, and the others are still described). ``fine_preset``/``coarse_preset``
    (:class:`stfusion.inputs.Preset`): also which QA file would mask each image."""
    from stfusion.inputs import check_s2_offset, s2_offset_missing
    from stfusion.qa import MaskedSource

    lines: list[str] = []
    fine: FileSource | None = None
    for i, path in enumerate(files):
        preset = fine_preset if i == 0 else coarse_preset
        nodata = fine_nodata if i == 0 else coarse_nodata
        fill_from = "given"
        if nodata is None and preset is not None:  # read as predict reads it
            nodata = preset.fill
            fill_from = f"from --{'fine' if i == 0 else 'coarse'}-preset {preset.name}"
        scaling = (
            Scaling(fine_scale, fine_offset, _bands(fine_bands), nodata)
            if i == 0
            else Scaling(coarse_scale, coarse_offset, _bands(coarse_bands), nodata)
        )
        role = "fine (output grid)" if i == 0 else "coarse"
        try:
            side = "fine" if i == 0 else "coarse"
            qa_lines, qa = _preset_lines(preset, path, side)
            check_s2_offset(preset, scaling.offset, [path], f"--{side}-offset")  # as predict
            s2_said = s2_offset_missing(preset, scaling, path, side)
            if s2_said:
                qa_lines.append(f"  CHECK     {s2_said}")
            info = inspect_raster(path, scaling)
            src = FileSource(path, scaling)
            unmasked = src.sample(1 << 18)
            # as predict reads it: under the preset's QA mask (its clouds are no "fill")
            read_as = MaskedSource(src, qa, preset.mask_kind) if qa else src
            sample = read_as.sample(1 << 18) if qa else unmasked
        except STFusionError as exc:  # reported, and the other files still are
            lines += [f"{path}  [{role}]", f"  PROBLEM   {exc}"]
            continue
        before = f" after its QA mask ({np.isfinite(unmasked).mean():.1%} before)" if qa else ""
        ok = np.isfinite(sample)
        vals = sample[ok]
        lo, hi = np.percentile(vals, [1, 99]) if vals.size else (np.nan, np.nan)
        g = info.grid
        lines += [
            f"{path}  [{role}]",
            f"  format    {info.driver}, {info.count} band(s) {', '.join(info.band_names)}, "
            f"{info.dtype}",
            f"  grid      {g.describe()}",
            f"  origin    {g.transform.c:g}, {g.transform.f:g}"
            + ("" if g.georeferenced else "  (not georeferenced)"),
            f"  nodata    {info.nodata}"
            + ("" if scaling.nodata is None else f"; {scaling.nodata:g} {fill_from} (as stored)"),
            f"  scaling   value * {info.scale:g} {'-' if info.offset < 0 else '+'} "
            f"{abs(info.offset):g} ({_scale_source(info, preset, i == 0)})",
            f"  valid     {ok.mean():.1%} of pixels{before}; values p1..p99 {lo:.4g} .. {hi:.4g}",
            *qa_lines,
        ]
        if not vals.size:
            lines.append(
                "  PROBLEM   no valid pixels (all nodata/NaN): predict refuses it. Check its "
                "nodata value and that it covers the area."
            )
        if i == 0:
            fine = src
            lines += _fill_checks(src, sample, "fine")
            lines += _variable_lines(sample, info.count, info.band_names)
            continue
        if _bands(fine_bands) == _bands(coarse_bands) and same_file(files[0], path):
            lines.append(  # predict refuses it as a pair (nothing else was said)
                f"  PROBLEM   the same file as the fine image {files[0]}: predict refuses "
                f"it as the pair's coarse image. {PAIR_IS}."
            )
        if fine is None:
            lines += _fill_checks(src, sample, "coarse")
            lines.append("  alignment not checked: the fine image could not be read")
            continue
        lines += _coarse_lines(read_as, fine, resampling, sample)
    return "\n".join(lines)
