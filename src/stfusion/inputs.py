"""Inputs as users have them: MODIS HDF4, one file per band, a choice of bands, presets.

An input is named by a *spec* string, accepted wherever a file path is (``--pair``,
``--coarse``, ``--fine``, ``inspect``, the Python API):

* ``scene.tif``: a raster file GDAL reads (unchanged);
* ``MOD09GA.A2020068.h29v12.061.hdf``: a MODIS HDF4-EOS file (see :mod:`stfusion.hdf`);
* ``'LC09_*_SR_B[2-7].TIF'`` (a glob) or ``B2.TIF,B3.TIF,B4.TIF`` (a comma list): single-band
  files stacked in band order (natural sort of the names: B2 < B3 < ... < B10), read window by
  window from each file: a virtual stack, nothing is copied;
* any of these followed by ``:BANDS``: the bands to read, in this order, by name or 1-based
  number: ``MOD09GA.hdf:sur_refl_b03_1,sur_refl_b04_1``, ``MOD.tif:3,4,1,2,6,7``,
  ``'LC09_*.TIF:SR_B2,SR_B3,SR_B4'``.

``Scaling.bands`` (``--fine-bands`` / ``--coarse-bands``) chooses bands the same way for every
file of a role; a ``:BANDS`` suffix on one file wins over it. Presets (:data:`PRESETS`) give
the band choice, scale/offset and QA band of common products in one word.

The stacks themselves (spec parsing, band matching, :class:`~stfusion.io.stacks.BandStack`)
live in :mod:`stfusion.io.stacks`, below this module, so that ``io.FileSource`` can open them;
this module holds the presets and the command line's role options.

Band names match exactly (case-insensitive), or as a word of a longer name: ``SR_B4`` matches
``LC09_L2SP_..._SR_B4`` and ``B8A`` matches ``T33TWM_..._B8A_20m``; a name that matches
several bands is an error that lists them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stfusion import hdf
from stfusion.errors import InvalidParameterError, STFusionError, warn
from stfusion.io import Scaling
from stfusion.io.files import is_gdal_name
from stfusion.io.stacks import natural_key, parse_bands, split_spec, word_match

# ----------------------------------------------------------------------------- presets


@dataclass(frozen=True)
class Preset:
    """A product's bands (in the order fusion pairs them), scaling and QA band."""

    name: str
    product: str
    bands: tuple[str, ...]
    scale: float | None
    offset: float | None
    qa_band: str | None
    mask_kind: str | None  # a kind of stfusion.qa, or None when qa.py does not decode it
    note: str = ""
    #: The product's fill value as stored (read as nodata unless the user gives one): a
    #: Sentinel-2 band file without a nodata tag read its fill 0 as reflectance -0.1.
    fill: float | None = None


#: Band order everywhere: blue, green, red, NIR, SWIR1 (1.6 um), SWIR2 (2.2 um), so a fine
#: preset and a coarse preset pair band by band.
PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "landsat89-c2l2",
            "Landsat 8/9 OLI Collection 2 Level-2 surface reflectance",
            ("SR_B2", "SR_B3", "SR_B4", "SR_B5", "SR_B6", "SR_B7"),
            2.75e-5,
            -0.2,
            "QA_PIXEL",
            "landsat_qa_pixel",
            fill=0,
        ),
        Preset(
            "landsat457-c2l2",
            "Landsat 4/5 TM and 7 ETM+ Collection 2 Level-2 surface reflectance",
            ("SR_B1", "SR_B2", "SR_B3", "SR_B4", "SR_B5", "SR_B7"),
            2.75e-5,
            -0.2,
            "QA_PIXEL",
            "landsat_qa_pixel",
            fill=0,
        ),
        Preset(
            "mod09ga",
            "MODIS Terra/Aqua MOD09GA/MYD09GA daily surface reflectance, 500 m",
            (
                "sur_refl_b03_1",
                "sur_refl_b04_1",
                "sur_refl_b01_1",
                "sur_refl_b02_1",
                "sur_refl_b06_1",
                "sur_refl_b07_1",
            ),
            0.0001,
            0.0,
            "state_1km_1",
            "mod09_state_1km",
            "QA on the 1 km grid",
            fill=-28672,
        ),
        Preset(
            "mcd43a4",
            "MODIS MCD43A4 NBAR (nadir BRDF-adjusted reflectance), 500 m",
            (
                "Nadir_Reflectance_Band3",
                "Nadir_Reflectance_Band4",
                "Nadir_Reflectance_Band1",
                "Nadir_Reflectance_Band2",
                "Nadir_Reflectance_Band6",
                "Nadir_Reflectance_Band7",
            ),
            0.0001,
            0.0,
            "BRDF_Albedo_Band_Mandatory_Quality_Band1",
            None,
            "quality bands not decoded by stfusion.qa; fill values are already NaN",
            fill=32767,
        ),
        Preset(
            "sentinel2-l2a",
            "Sentinel-2 MSI Level-2A, the 20 m bands (processing baseline 04.00 and later)",
            ("B02", "B03", "B04", "B8A", "B11", "B12"),
            0.0001,
            -0.1,
            "SCL",
            "sentinel2_scl",
            "products before processing baseline 04.00 have no offset: give --fine-offset 0 "
            "(refused when a path names the baseline, _N0300_)",
            fill=0,
        ),
    )
}
PRESET_ALIASES = {
    "landsat8-c2l2": "landsat89-c2l2",
    "landsat9-c2l2": "landsat89-c2l2",
    "landsat5-c2l2": "landsat457-c2l2",
    "landsat7-c2l2": "landsat457-c2l2",
    "landsat57-c2l2": "landsat457-c2l2",
    "myd09ga": "mod09ga",
    "s2-l2a": "sentinel2-l2a",
}


def get_preset(name: str) -> Preset:
    key = name.strip().lower()
    key = PRESET_ALIASES.get(key, key)
    if key not in PRESETS:
        raise InvalidParameterError(
            f"preset {name!r} unknown; choose from {', '.join(PRESETS)} (docs/inputs.md)."
        )
    return PRESETS[key]


#: Landsat missions in product IDs (``LC08_L2SP_...``, ``LE07_...``) and the presets whose
#: bands they have (SR_B1 is blue on Landsat 4-7, coastal aerosol on Landsat 8-9).
_LANDSAT_ID = re.compile(r"(?<![A-Za-z0-9])L[COTEM]0?([4-9])_")
_LANDSAT_PRESET = {"4": "landsat457-c2l2", "5": "landsat457-c2l2", "7": "landsat457-c2l2"}


#: A Sentinel-2 product's processing baseline in its name (``..._N0400_...``, the SAFE).
_S2_BASELINE = re.compile(r"_N(\d{2})(\d{2})(?=[_./]|$)")


def _s2_baseline(path: str) -> tuple[int, int] | None:
    """The processing baseline (major, minor) a Sentinel-2 path names, or None."""
    found = _S2_BASELINE.findall(path)
    return (int(found[-1][0]), int(found[-1][1])) if found else None


def check_s2_offset(
    preset: Preset | None, offset: float | None, paths: Sequence[str], option: str
) -> None:
    """Refuse the ``sentinel2-l2a`` preset's offset where a file's path names a processing
    baseline it does not fit: products before baseline 04.00 have no BOA offset (DN / 10000),
    later ones -1000 DN (-0.1), and one offset per role read an old product 0.1 too low. A
    path without a baseline (``_N0400_`` in the SAFE name) is not checked."""
    if preset is None or preset.name != "sentinel2-l2a" or offset is None:
        return
    dated = [(str(path), b) for path in paths if (b := _s2_baseline(str(path))) is not None]
    kinds: dict[bool, str] = {}
    for path, (major, _) in dated:
        kinds.setdefault(major >= 4, path)
    if len(kinds) == 2:  # each offset refused the other kind: the advice went in a circle
        raise InvalidParameterError(
            f"the {option.split('-')[2]} images mix Sentinel-2 processing baselines before "
            f"04.00 (no offset: {kinds[False]}) and from 04.00 (-0.1: {kinds[True]}); one "
            f"{option} reads one kind. Bring one kind to the other first (e.g. subtract 1000 "
            "DN from the baseline 04.00+ ones), or run them apart."
        )
    for path, (major, minor) in dated:
        new = major >= 4
        if new and offset == 0.0:
            want = f"leave {option} out (the preset's -0.1)"
        elif not new and offset != 0.0:
            want = f"give {option} 0"
        else:
            continue
        rule = "- 0.1 (BOA_ADD_OFFSET -1000)" if new else "with no offset"
        raise InvalidParameterError(
            f"{path}: Sentinel-2 processing baseline {major:02d}.{minor:02d}, whose L2A "
            f"reflectance is DN / 10000 {rule}, but the offset in use is {offset:g}: {want}. "
            "Images of both kinds in one run need one of them brought to the other's first "
            "(e.g. subtract 1000 DN from the baseline 04.00+ ones)."
        )


#: A Sentinel-2 L2A band file or product in a path (the SAFE's MSIL2A, a tile's band name).
_S2_L2A = re.compile(r"MSIL2A|_B(?:0[1-9]|1[0-2]|8A)_[1-6]0m(?![0-9])", re.IGNORECASE)


def s2_offset_missing(preset: Preset | None, scaling: Scaling, spec: str, role: str) -> str | None:
    """What to say when ``spec`` is Sentinel-2 L2A or L1C of processing baseline 04.00 or
    later (its path says so) read without an offset: its DN hold +1000 (L2A BOA_ADD_OFFSET,
    L1C RADIO_ADD_OFFSET -1000), so every value comes out 0.1 too high (Sentinel-2 trials:
    bias +0.10, no word; L1C until 2026-12-07). None when a preset or an offset (given, or in
    the file's metadata) reads it, or the path says nothing."""
    if preset is not None or scaling.offset is not None:
        return None
    baseline = _s2_baseline(spec)
    level = "L2A" if _S2_L2A.search(spec) else "L1C" if "MSIL1C" in spec.upper() else None
    if baseline is None or baseline[0] < 4 or level is None:
        return None
    from stfusion.io import FileSource

    try:
        if FileSource(spec, scaling).offset != 0.0:
            return None
    except STFusionError:  # reported where it is read
        return None
    plain = f"--{role}-scale 0.0001 --{role}-offset -0.1"
    fix = f"--{role}-preset sentinel2-l2a (or {plain})" if level == "L2A" else plain
    offset = "BOA_ADD_OFFSET" if level == "L2A" else "RADIO_ADD_OFFSET"
    return (
        f"{spec}: Sentinel-2 {level} of processing baseline {baseline[0]:02d}.{baseline[1]:02d}, "
        f"whose reflectance is DN / 10000 - 0.1 ({offset} -1000), read with no offset: every "
        f"value comes out 0.1 too high. Give {fix}."
    )


def check_preset_fits(preset: Preset | None, spec: str, option: str) -> None:
    """Refuse a Landsat preset of other missions than the files' product IDs name: the
    Landsat 4-7 preset on Landsat 8/9 files takes coastal aerosol for blue, NIR for SWIR1,
    and every band still matches a file, so nothing else would say so. The Sentinel-2 L2A
    preset on a Level-1C product (``MSIL1C`` in its path) likewise: top-of-atmosphere values
    read as surface reflectance, with its offset and a QA layer L1C does not have."""
    if preset is not None and preset.name == "sentinel2-l2a" and "MSIL1C" in spec.upper():
        raise InvalidParameterError(
            f"{spec}: a Sentinel-2 Level-1C product (MSIL1C: top-of-atmosphere reflectance, "
            f"no SCL layer), but {option} sentinel2-l2a is for Level-2A (surface reflectance). "
            "Use the L2A product, or read this one without the preset: --fine-bands or "
            "--coarse-bands B02,B03,B04,B8A,B11,B12 with --fine-scale / --coarse-scale 0.0001 "
            "(and -offset -0.1 for processing baseline 04.00+)."
        )
    if preset is None or preset.name not in ("landsat89-c2l2", "landsat457-c2l2"):
        return
    from stfusion.io.stacks import split_spec

    try:
        files, _ = split_spec(spec)
    except STFusionError:  # a spec that names no file is reported where it is opened
        return
    for f in files:
        m = _LANDSAT_ID.search(Path(f).name)
        if m is None:
            continue
        fits = _LANDSAT_PRESET.get(m.group(1), "landsat89-c2l2")
        if fits != preset.name:
            raise InvalidParameterError(
                f"{f}: a Landsat {m.group(1)} file, but {option} {preset.name} is for Landsat "
                f"{'8 and 9' if preset.name.startswith('landsat89') else '4, 5 and 7'}, whose "
                f"bands are numbered otherwise; give {option} {fits}."
            )


def resolve_role(
    scale: float | None,
    offset: float | None,
    bands: str | Sequence[str] | None,
    preset: str | None,
    nodata: float | None = None,
) -> tuple[Scaling, Preset | None]:
    """How the fine (or coarse) images are read: the user's options over the preset's."""
    p = get_preset(preset) if preset else None
    chosen = parse_bands(bands)
    if p is not None:
        scale = p.scale if scale is None else scale
        offset = p.offset if offset is None else offset
        chosen = chosen or p.bands
        nodata = p.fill if nodata is None else nodata
    return Scaling(scale, offset, chosen, nodata), p


# ------------------------------------------------------------------------- spec parsing


def role_options(
    fine_scale: float | None,
    fine_offset: float | None,
    coarse_scale: float | None,
    coarse_offset: float | None,
    fine_bands: str | None,
    coarse_bands: str | None,
    both_bands: str | None,
    fine_preset: str | None,
    coarse_preset: str | None,
    fine_nodata: float | None = None,
    coarse_nodata: float | None = None,
) -> dict[str, Any]:
    """The command line's scale, nodata, band and preset options as keyword arguments of
    ``run_prediction``/``run_series``/``inspect_files`` (plus the presets chosen)."""
    fine, fp = resolve_role(fine_scale, fine_offset, fine_bands or both_bands, fine_preset)
    coarse, cp = resolve_role(
        coarse_scale, coarse_offset, coarse_bands or both_bands, coarse_preset
    )
    return {
        "fine_scale": fine.scale,
        "fine_offset": fine.offset,
        "fine_bands": fine.bands,
        "fine_nodata": fine_nodata,
        "coarse_scale": coarse.scale,
        "coarse_offset": coarse.offset,
        "coarse_bands": coarse.bands,
        "coarse_nodata": coarse_nodata,
        "fine_preset": fp,
        "coarse_preset": cp,
    }


def role_options_of(params: dict[str, Any]) -> dict[str, Any]:
    """:func:`role_options` of a command's parsed options (``ctx.params``)."""
    return role_options(
        params["fine_scale"],
        params["fine_offset"],
        params["coarse_scale"],
        params["coarse_offset"],
        params["fine_bands"],
        params["coarse_bands"],
        params["both_bands"],
        params["fine_preset"],
        params["coarse_preset"],
        fine_nodata=params.get("fine_nodata"),
        coarse_nodata=params.get("coarse_nodata"),
    )


# ------------------------------------------------------------------------------- series


def qa_name(qa: str, name: str) -> bool:
    """Whether a file name names the QA band ``qa``; an HDF field's ``_1`` may be left out
    (``state_1km`` for MOD09GA's ``state_1km_1``: read as binary, it masked every pixel)."""
    if word_match(qa, name) or not qa.endswith("_1"):
        return word_match(qa, name)
    bare = re.escape(qa[:-2].lower())  # not another field: state_1km_2
    return re.search(rf"(?:^|[^a-z0-9]){bare}(?!_\d)(?:$|[^a-z0-9])", name.lower()) is not None


def mask_kind_for(preset: Preset | None, kind: str | None, mask: str) -> str:
    """The kind of one mask of ``predict``: the one given; else the preset's QA kind when the
    mask is its QA band (a file named for it, or that field of an HDF file), else binary."""
    if kind is not None:
        return kind
    if preset is not None and preset.mask_kind and preset.qa_band:
        name = Path(mask.rpartition(":")[2] if hdf.is_hdf(mask.rpartition(":")[0]) else mask)
        if qa_name(preset.qa_band, name.stem if name.suffix else name.name):
            return preset.mask_kind
    return "binary"


def preset_mask_kind(
    preset: Preset | None, masks: Sequence[str], kind: str, images: dict[Any, Any] | None = None
) -> str:
    """The mask kind of a series role: the preset's QA kind when no mask was given, or when
    every mask attached to ``images`` (acquisitions by date) is named for its QA band
    (``..._QA_PIXEL.TIF``); else ``kind``."""
    if preset is None or not preset.mask_kind or kind != "binary":
        return kind
    if not masks:
        return preset.mask_kind
    attached = [a.mask for a in (images or {}).values() if getattr(a, "mask", None)]
    if attached and all(mask_kind_for(preset, None, m) == preset.mask_kind for m in attached):
        return preset.mask_kind
    return kind


def stack_band_files(
    items: Sequence[Any],
    role: str,
    bands: Sequence[str] | None,
    preset: Preset | None,
    auto_mask: bool,
) -> list[Any]:
    """Series inputs of ``role`` with the band files of each date joined into one stack.

    Only when a band choice is given (``bands``, or a preset's): without one, two files on a
    date stay an error. With a preset whose QA band is a file of that date (Landsat
    ``QA_PIXEL``, Sentinel-2 ``SCL``) or a field of the HDF file (MOD09GA ``state_1km_1``) and
    ``auto_mask``, it becomes that date's mask; dates without it are warned about (used
    unmasked). Acquisitions are ``stfusion.dates.Acquisition``.
    """
    from stfusion.dates import Acquisition

    if not bands:
        return list(items)
    qa = preset.qa_band if preset is not None and preset.mask_kind and auto_mask else None
    groups: dict[Any, list[Any]] = {}
    out: list[Any] = []
    for a in items:
        if a.sensor == role:
            groups.setdefault(a.date, []).append(a)
        else:
            out.append(a)
    ids = [_LANDSAT_ID.search(Path(a.path).name) for g in groups.values() for a in g]
    named = {m.group(1) for m in ids if m}
    fits = {_LANDSAT_PRESET.get(x, "landsat89-c2l2") for x in named}
    if preset is not None and preset.name in fits and len(fits) > 1:  # each preset refused
        raise InvalidParameterError(  # the other's dates, so the advice went round in a circle
            f"the {role} files mix Landsat {', '.join(sorted(named))}, whose bands are numbered "
            f"otherwise ({' and '.join(sorted(fits))}): one --{role}-preset reads one "
            "numbering. Give each date's bands in a --catalog row (FILE:SR_B2,SR_B3,... for "
            "Landsat 8/9, FILE:SR_B1,SR_B2,... for 4-7, its QA_PIXEL in the mask column) with "
            f"--{role}-scale 2.75e-5 --{role}-offset -0.2 --{role}-mask-kind landsat_qa_pixel "
            "in place of the preset, or run one series per mission."
        )
    bare = []
    for day, group in groups.items():
        paths = sorted({a.path for a in group}, key=lambda p: natural_key(Path(p).name))
        scenes = sorted({m.group(0) for p in paths if (m := _SCENE.search(Path(p).name))})
        if len(scenes) > 1:  # stacked as one image, the date then failed, a 2500-char reason
            raise InvalidParameterError(
                f"the {role} files of {day} belong to {len(scenes)} scenes ({', '.join(scenes)}"
                "): one image per date. Keep one scene's files, choose them with a glob "
                f"(e.g. '*{scenes[0]}*'), or list them per date in a --catalog."
            )
        whole = [p for p in paths if hdf.is_hdf(p)]
        if whole and len(paths) > 1:  # stacked, its bands found twice: the date was dropped
            other = next(p for p in paths if p != whole[0])
            raise InvalidParameterError(
                f"two {role} images on {day}: {whole[0]} and {other}"
                + (f" ({len(paths)} files)" if len(paths) > 2 else "")
                + ". An HDF file holds a whole image, so it is not stacked with other files: "
                "keep one (e.g. the latest collection), or list the one to use in a --catalog."
            )
        check_preset_fits(preset, ",".join(paths), f"--{role}-preset")
        mask = next((a.mask for a in group if a.mask), None)
        if qa is not None and mask is None:
            mask, paths = _split_qa(paths, qa)
            if mask is None:
                bare.append(day.isoformat())
        out.append(Acquisition(",".join(paths), day, role, mask))
    if bare and preset is not None:
        _warn_no_qa(role, preset, f"the {role} images of {', '.join(sorted(bare))}")
    return out


#: What tells two scenes of one date apart in band-file names: a Landsat path/row (the
#: product ID's ``_191028_``) or a MODIS/VIIRS tile (``.h18v04.``).
_SCENE = re.compile(r"(?<=_)\d{6}(?=_\d{8}_)|(?<=\.)h\d\dv\d\d(?=\.)")


def _split_qa(paths: Sequence[str], qa: str) -> tuple[str | None, list[str]]:
    """The QA raster among the files of one image (the one file named for ``qa``, or that
    field of an HDF file), and the other files."""
    rest = list(paths)
    qa_files = [p for p in rest if qa_name(qa, Path(p).stem)]
    if len(qa_files) == 1 and len(rest) > 1:
        rest.remove(qa_files[0])
        return qa_files[0], rest
    if len(rest) == 1 and hdf.is_hdf(rest[0]):
        return f"{rest[0]}:{qa}", rest
    return None, rest


def _warn_no_qa(role: str, preset: Preset, what: str) -> None:
    warn(
        f"--{role}-preset {preset.name}: no {preset.qa_band} file among {what}, so their clouds "
        f"are not masked. Include the {preset.qa_band} file in the glob or give --{role}-mask."
    )


# --------------------------------------------------------------------------- predict


def mask_count_problem(role: str, masks: Sequence[Any], images: int) -> str | None:
    """What is wrong with ``masks`` for the ``images`` images of ``role`` of a prediction
    (one each, in order), or None."""
    if not masks or len(masks) == images:
        return None
    order = "--pair" if role == "fine" else "--pair, then one for --coarse"
    return (
        f"{len(masks)} --{role}-mask for {images} {role} image(s): give one per {role} "
        f"image, in the order of {order} ('-' for none)."
    )


def prediction_masks(
    specs: Sequence[str],
    masks: Sequence[str | None],
    role: str,
    preset: Preset | None,
) -> list[str | None]:
    """The mask of each input of ``role`` of a prediction (None: unmasked).

    ``masks`` are the user's, one per input in order (None or ``"-"`` for none); without
    them, a preset with a QA band masks each input with its QA file (among the files of a
    glob or comma list) or its HDF QA field, and warns for the inputs that have none.
    """
    if masks:
        problem = mask_count_problem(role, masks, len(specs))
        if problem:
            raise InvalidParameterError(problem)
        return [None if m in (None, "", "-") else str(m) for m in masks]
    if preset is None or not preset.mask_kind or not preset.qa_band:
        return [None] * len(specs)
    found: list[str | None] = []
    for spec in specs:
        files, _chosen = ([str(spec)], None) if is_gdal_name(spec) else split_spec(str(spec))
        found.append(_split_qa(files, preset.qa_band)[0])
    bare = [str(s) for s, m in zip(specs, found) if m is None]
    if bare:
        _warn_no_qa(role, preset, ", ".join(bare))
    return found
