"""File-level operations behind the CLI, usable from Python too.

``run_prediction`` is ``stfusion predict``; ``evaluate_files`` is ``stfusion evaluate``
(``stfusion inspect`` is :mod:`stfusion.inspection`).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
from rasterio.windows import Window

from stfusion.errors import (
    GridMismatchError,
    InvalidParameterError,
    STFusionError,
    STFusionWarning,
    keywords_checked,
    warn,
)
from stfusion.inputs import prediction_masks, resolve_role
from stfusion.io import FileSource, OutputLock, Scaling, Source, check_output, north_up
from stfusion.methods import make_estimator
from stfusion.parallel import connected
from stfusion.provenance import provenance_tags
from stfusion.scene import open_scene, refuse_transforms_without_crs
from stfusion.scene_checks import (
    check_pair_files,
    warn_band_order,
    warn_self_scoring,
    warn_undeclared_fill,
)
from stfusion.threads import numba_threads, torch_threads
from stfusion.tiling import ProgressFn, memory_limits

#: A path as a string or a path object (``pathlib.Path``).
PathLike = str | os.PathLike[str]


def split_ratio(
    params: Sequence[str] | Mapping[str, Any] | str,
) -> tuple[list[str], float | None]:
    """Take the scene-level ``ratio=R`` out of ``--param`` items (``NAME=VALUE`` strings,
    one such string, or a dict of values)."""
    if isinstance(params, str):
        params = [params]
    elif isinstance(params, Mapping):
        params = [f"{k}={v}" for k, v in params.items()]
    rest, ratio = [], None
    for item in params:
        key, _, value = item.partition("=")
        if key.strip() == "ratio":
            from stfusion.methods.base import RATIO

            ratio = RATIO.parse(value.strip())
        else:
            rest.append(item)
    return rest, ratio


@keywords_checked
def run_prediction(
    *,
    method: str,
    pairs: Sequence[tuple[PathLike, PathLike]],
    target: PathLike,
    out: PathLike,
    params: Sequence[str] | Mapping[str, Any] | str = (),
    multi_pair: str = "none",
    fine_scale: float | None = None,
    fine_offset: float | None = None,
    coarse_scale: float | None = None,
    coarse_offset: float | None = None,
    resampling: str = "nearest",
    mem_limit_mb: float | None = None,
    workers: int = 1,
    threads: int | None = None,
    overwrite: bool = False,
    progress: ProgressFn | None = None,
    scheduler: Any = None,
    quality: bool = False,
    command: Sequence[str] | str | None = None,
    fine_bands: Sequence[str] | None = None,
    coarse_bands: Sequence[str] | None = None,
    fine_preset: str | None = None,
    coarse_preset: str | None = None,
    fine_nodata: float | None = None,
    coarse_nodata: float | None = None,
    fine_mask: Sequence[str | None] = (),
    fine_mask_kind: str | None = None,
    fine_mask_flags: str | Sequence[str] | None = None,
    coarse_mask: Sequence[str | None] = (),
    coarse_mask_kind: str | None = None,
    coarse_mask_flags: str | Sequence[str] | None = None,
    fine_ref: bool = False,
) -> dict[str, Any]:
    """Predict the fine image at ``target``'s date into the GeoTIFF ``out``.

    ``fine_ref``: ``pairs`` is ``[(F, F)]``, a fine reference standing in for its own coarse
    image, read with the fine options (``--fine-ref``); ``coarse_mask`` is the target's only.
    ``fine_mask``: one mask per pair's fine image, in order (None for none); ``coarse_mask``:
    one per pair's coarse image, then one for ``target``. Kinds and flags as in
    :mod:`stfusion.qa` (flags: names, or one comma-separated string); kind None: binary, or
    with a preset its QA kind for masks named for its QA band. Without masks, a preset
    (``fine_preset``/``coarse_preset``, :data:`stfusion.inputs.PRESETS`; it also sets the
    bands and scaling not given) masks each image with its QA band when the spec holds it.

    ``out`` gets the provenance tags of :func:`stfusion.provenance.provenance_tags`, plus
    ``STFUSION_COMMAND`` when ``command`` (the command line) is given.
    ``fine_bands``/``coarse_bands``: the bands to read, in order (names or 1-based numbers);
    paths may be HDF4 files, globs or comma lists of band files (docs/inputs.md).
    ``multi_pair="vip"``: a one-pair method given several pairs runs as VIPSTF over it
    (:func:`stfusion.methods.make_estimator`); ``"none"``: it refuses them.
    """
    _check_paths(pairs, target, out)
    paths = [(os.fspath(f), os.fspath(c)) for f, c in pairs]
    target_path, out_path = os.fspath(target), os.fspath(out)
    # GDAL's block cache and the scene-wide passes obey the limit from the first read
    # (validation, statistics, fit, prepare), not only in the prediction loop.
    with (
        memory_limits(mem_limit_mb),
        connected(scheduler) as client,
        numba_threads(threads),
        ExitStack() as held,
    ):
        rest, ratio = split_ratio(params)
        estimator = make_estimator(method, rest, pairs=len(paths), multi_pair=multi_pair)
        inputs = [p for pair in paths for p in pair] + [target_path]
        fine_scaling, fpreset = resolve_role(
            fine_scale, fine_offset, fine_bands, fine_preset, fine_nodata
        )
        coarse_scaling, cpreset = resolve_role(
            coarse_scale, coarse_offset, coarse_bands, coarse_preset, coarse_nodata
        )
        pair_images, target_image, masks = _prediction_images(
            paths,
            target_path,
            (fine_scaling, fpreset, (fine_mask, fine_mask_kind, fine_mask_flags)),
            (coarse_scaling, cpreset, (coarse_mask, coarse_mask_kind, coarse_mask_flags)),
            fine_ref,
        )
        # a method's files (weights=w.ckpt, a class map) are inputs too: --out w.ckpt
        # --overwrite replaced a trained network with the prediction
        inputs += [v for v in (i.partition("=")[2].strip() for i in rest) if os.path.isfile(v)]
        check_output(out_path, overwrite, inputs + masks)
        # two runs into one output would interleave their prediction and quality layer
        busy = f"{out_path}: another stfusion predict into it"
        held.enter_context(OutputLock(Path(out_path), "predict", busy))
        quality_out = _checked_quality_out(out_path, overwrite, inputs + masks) if quality else None
        pair_dates, target_date, undated = _names_dated(paths, target_path)
        scene = open_scene(
            pair_images,
            target_image,
            fine_scaling=fine_scaling,
            coarse_scaling=coarse_scaling,
            resampling=resampling,
            ratio=ratio,
            pair_dates=pair_dates,
            target_date=target_date,
        )
        estimator.fit(scene)
        assert scene.target is not None
        estimator.prepare(scene.target)
        if quality and undated:  # said once the inputs passed their checks
            _warn_undated(undated)
        windows = estimator.plan(mem_limit_mb, None, workers)
        # The tags est.predict(out=...) writes too; the command line is the CLI's only addition.
        tags = provenance_tags(estimator, command=command)
        with torch_threads(threads):
            estimator.predict(
                out=out_path,
                overwrite=overwrite,
                tags=tags,
                mem_limit_mb=mem_limit_mb,
                workers=workers,
                progress=progress,
                scheduler=client,
                quality_out=quality_out,
            )
        return _run_summary(estimator, method, len(windows), scene, quality_out)


def _check_paths(pairs: Any, target: Any, out: Any) -> None:
    """run_prediction reads and writes files: arrays and DataArrays were a bare TypeError
    from os.fspath."""
    given = [x for pair in pairs for x in pair] + [target, out]
    wrong = next((x for x in given if not isinstance(x, str | os.PathLike)), None)
    if wrong is not None:
        raise InvalidParameterError(
            f"run_prediction reads and writes files, and was given a {type(wrong).__name__}: "
            "give paths, or for arrays and DataArrays use an estimator, "
            "make_estimator(method, params).fit(pairs).predict(target)."
        )


def _run_summary(
    estimator: Any, method: str, windows: int, scene: Any, quality_out: str | None
) -> dict[str, Any]:
    """What :func:`run_prediction` returns about the run it made."""
    name = estimator.name
    return {
        "method": name if name == method else f"{name} over {method}",
        "windows": windows,
        "notes": scene.notes,
        "ratio": scene.ratio,
        "workers": estimator.last_run_["workers"],
        "lost_workers": estimator.last_run_.get("lost", []),
        "quality": quality_out,
    }


def _bands(bands: Sequence[str] | None) -> tuple[str, ...] | None:
    return tuple(str(b) for b in bands) if bands else None


def _prediction_images(
    pairs: Sequence[tuple[str, str]],
    target: str,
    fine: tuple[Scaling, Any, tuple[Any, str | None, Any]],
    coarse: tuple[Scaling, Any, tuple[Any, str | None, Any]],
    fine_ref: bool,
) -> tuple[list[tuple[Any, Any]], Any, list[str]]:
    """The pairs and the target of a prediction, each image masked as :func:`_role_images`
    says, and the mask files. ``fine``/``coarse``: each role's scaling, preset and masking.
    ``fine_ref``: the one pair is ``(F, F)``, and its second F is the fine image itself (its
    fine scale, bands and mask), not a coarse image read with the coarse options."""
    from stfusion.scene import as_source

    fine_images, fmasks = _role_images([f for f, _ in pairs], "fine", *fine)
    if fine_ref:
        if len(pairs) != 1 or pairs[0][0] != pairs[0][1]:
            raise InvalidParameterError("fine_ref: give the reference as pairs=[(F, F)].")
        ref = fine_images[0]
        stand_in = as_source(ref, fine[0]) if isinstance(ref, str) else ref
        coarse_images, cmasks = _role_images([target], "coarse", *coarse)
        return [(ref, stand_in)], coarse_images[0], fmasks + cmasks
    check_pair_files(pairs, target, fine[0].bands == coarse[0].bands)
    coarse_images, cmasks = _role_images([c for _, c in pairs] + [target], "coarse", *coarse)
    return list(zip(fine_images, coarse_images[:-1])), coarse_images[-1], fmasks + cmasks


def _role_images(
    specs: Sequence[str],
    role: str,
    scaling: Scaling,
    preset: Any,
    masking: tuple[Any, str | None, Any],
) -> tuple[list[Any], list[str]]:
    """The images of one role of a prediction, each masked (on its own grid) where it has a
    mask (the user's, else its preset's QA band); and the mask files. ``masking``: the
    masks, their kind (None: binary, or the preset's QA kind for a mask named for its QA
    band, e.g. ``..._QA_PIXEL.TIF``, ``...hdf:state_1km_1``) and flags."""
    masks, kind, flags = masking
    from stfusion.inputs import (
        check_preset_fits,
        check_s2_offset,
        mask_kind_for,
        s2_offset_missing,
    )
    from stfusion.qa import MaskedSource, check_flags, parse_flags
    from stfusion.scene import as_source

    for spec in specs:
        check_preset_fits(preset, str(spec), f"--{role}-preset")
    check_s2_offset(preset, scaling.offset, [str(x) for x in specs], f"--{role}-offset")
    said = next(
        filter(None, (s2_offset_missing(preset, scaling, str(x), role) for x in specs)), None
    )
    if said:
        warn(said)
    chosen = prediction_masks(specs, masks, role, preset)
    flags = parse_flags(flags) if isinstance(flags, str) else flags
    if flags and not any(chosen):
        raise InvalidParameterError(
            f"--{role}-mask-flags given, but no {role} image has a mask: give --{role}-mask, "
            "or a preset whose QA band is among the input's files."
        )
    images: list[Any] = []
    for spec, mask in zip(specs, chosen):
        if mask is None:
            images.append(spec)
            continue
        _warn_mask_of_another_date(str(spec), str(mask), role)
        k = mask_kind_for(preset, kind, mask)
        decoded = check_flags(k, flags) if k != "binary" else None
        if k == "binary" and flags:
            raise InvalidParameterError(
                f"--{role}-mask-flags: {mask} is read as a binary mask (nonzero = invalid), "
                f"which takes no flags; give its kind with --{role}-mask-kind."
            )
        images.append(MaskedSource(as_source(spec, scaling, role), mask, k, decoded or None))
    return images, [m for m in chosen if m]


def _warn_mask_of_another_date(image: str, mask: str, role: str) -> None:
    """A mask whose name dates it otherwise than its image's (masks go in the order of the
    images: a Sentinel-2 trial's swapped SCL files let a cloud through, RMSE 0.104 against
    0.014, without a word)."""
    from stfusion.dates import date_from_name, split_listed

    first = split_listed(image)[0]  # a band file list: its first file; FILE:BANDS: the file
    days = []
    for name in (first.rpartition(":")[0] or first, mask):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                days.append(date_from_name(name))
        except STFusionError:
            return  # a name without a date says nothing
    if days[0] != days[1]:
        warn(
            f"{mask}: the mask of {image} names another date ({days[1]} against "
            f"{days[0]}); --{role}-mask files go in the order of the {role} images."
        )


def _checked_quality_out(out: str | os.PathLike[str], overwrite: bool, inputs: list[Any]) -> str:
    """The quality layer's path, checked as the output is, before any work."""
    quality_out = quality_path(out)
    try:
        check_output(quality_out, overwrite, inputs)
    except InvalidParameterError as exc:
        if "too long" not in str(exc):
            raise
        raise InvalidParameterError(
            f"{out}: with --quality the quality layer {Path(quality_out).name} is 8 bytes "
            f"longer, too long for this file system ({exc}); give --out a shorter name."
        ) from None
    return quality_out


def quality_path(out: str | os.PathLike[str]) -> str:
    """``pred.tif`` -> ``pred_quality.tif`` (the quality layer beside a prediction)."""
    p = Path(out)
    return str(p.with_name(f"{p.stem}_quality{p.suffix or '.tif'}"))


def _names_dated(
    pairs: Sequence[tuple[str, str]], target: str
) -> tuple[list[Any] | None, Any, str]:
    """Pair and target dates from the file names, or (None, None, why not). What the names
    say advises renaming only: predict has no --catalog."""
    from stfusion.dates import date_from_name

    try:
        return (
            [date_from_name(f, None) for f, _ in pairs],
            date_from_name(target, None),
            "",
        )
    except STFusionError as exc:
        return None, None, str(exc)


def _warn_undated(why: str) -> None:
    """``--quality`` with file names that give no dates (``why``): days_to_pair is NaN."""
    warn(
        f"--quality: days_to_pair is NaN everywhere: {why}".split(" Names need")[0]
        + " The other bands of the quality layer are written."
    )


@keywords_checked
def evaluate_files(
    prediction: PathLike,
    truth: PathLike,
    *,
    pred_scale: float | None = None,
    pred_offset: float | None = None,
    truth_scale: float | None = None,
    truth_offset: float | None = None,
    ratio: float | None = None,
    data_range: float | str = "auto",
    scale_check: bool = True,
    mem_limit_mb: float | None = None,
    pred_nodata: float | None = None,
    truth_nodata: float | None = None,
    mask: str | None = None,
    mask_kind: str = "binary",
    mask_flags: Sequence[str] | None = None,
) -> Any:
    """Score a prediction file against a truth file; returns a ``MetricReport``.

    ``pred_nodata``/``truth_nodata``: a fill value in the file (before scaling) that its
    metadata does not declare, e.g. -9999; those pixels are left out like declared nodata.
    ``mask``: a raster (any grid that aligns onto the truth's) whose invalid pixels are left
    out of every score, as truth nodata (``mask_kind``: ``binary``, nonzero = invalid, or a
    QA kind of :mod:`stfusion.qa` decoded with ``mask_flags``). The warnings of the checks
    are also the report's first ``notes``; ``report.inputs`` says how each file was read.
    ``data_range`` ``"auto"``: ``"truth"`` (each band's valid max - min, as GUIDE pins for
    variables that are not reflectance) when either file says it holds an index or a
    temperature (band names such as NDVI or LST, or the ``STFUSION_VARIABLE`` tag), else 1.0
    (reflectance); a note says which.

    Reads both block by block (:func:`stfusion.metrics_blocks.evaluate_blocks`, blocks sized by
    ``mem_limit_mb``, default 1024), so scenes larger than memory can be scored. Refuses
    (``ScaleMismatchError``) when the two differ in scale by more than 20x (medians of a
    decimated sample), naming the ``truth_scale`` to give; ``scale_check=False`` scores anyway
    and warns.
    """
    from stfusion.metrics_blocks import evaluate_blocks

    prediction, truth = os.fspath(prediction), os.fspath(truth)
    with memory_limits(mem_limit_mb):
        # a fill value given is read as NaN by the reader, as a declared nodata is
        pred_src = FileSource(prediction, Scaling(pred_scale, pred_offset, nodata=pred_nodata))
        truth_file = FileSource(truth, Scaling(truth_scale, truth_offset, nodata=truth_nodata))
        truth_src: Source = truth_file
        inputs: dict[str, Any] = {"prediction": _read_as(pred_src), "truth": _read_as(truth_file)}
        if pred_src.grid.shape != truth_src.grid.shape or pred_src.count != truth_src.count:
            raise GridMismatchError(
                f"{prediction} ({pred_src.count} x {pred_src.grid.height} x "
                f"{pred_src.grid.width}) and {truth} ({truth_src.count} x "
                f"{truth_src.grid.height} x {truth_src.grid.width}): bands and size must match "
                "to compare them pixel by pixel. " + _shape_advice(pred_src, truth_file)
            )
        pg, tg = pred_src.grid, truth_src.grid
        refuse_transforms_without_crs(pred_src, truth_file, "resample one onto the other's grid")
        differ = pg.georeferenced and tg.georeferenced and not pg.same_as(tg)
        # one grid stored in two row (or column) orders: compared on the north-up grid
        flipped = differ and north_up(pred_src).grid.same_as(north_up(truth_file).grid)
        if differ and not flipped:
            raise GridMismatchError(
                f"{prediction} ({pg.describe()}, {pg.origin()}) and {truth} ({tg.describe()}, "
                f"{tg.origin()}) lie on different grids: scored pixel by pixel they would "
                "compare different places. Crop or resample one onto the other's grid (e.g. "
                "gdalwarp with the other's -te/-tr/-t_srs) and score again."
            )
        pred_tags = _file_tags(prediction)  # read once: the ratio, the variable
        truth_tags = _file_tags(truth)  # the variable (fill rule, data range)
        if ratio is None:
            ratio = _ratio_of(pred_tags)
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                if mask is not None:  # its warnings (a QA band read as binary) are notes too
                    truth_src = _masked_truth(truth_file, mask, mask_kind, mask_flags, inputs)
                sample = _check_evaluation(
                    pred_src, truth_file, (pred_tags, truth_tags), scale_check, truth_src
                )
        finally:  # shown as usual (also before an error), and kept in the report's notes
            for w in caught:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        found = [str(w.message) for w in caught if issubclass(w.category, STFusionWarning)]
        if data_range == "auto":
            data_range, why = _auto_data_range(pred_src, pred_tags, truth_file, truth_tags, sample)
            found += [why] if why else []

        scored_pred, scored_truth = (
            (north_up(pred_src), north_up(truth_src)) if flipped else (pred_src, truth_src)
        )

        def read(r0: int, c0: int, h: int, w: int, halo: int) -> tuple[Any, Any]:
            win = Window(c0, r0, w, h)
            return scored_pred.read(win, halo), scored_truth.read(win, halo)

        blocks = [
            (int(b.row_off), int(b.col_off), int(b.height), int(b.width))
            for b in scored_truth.scan_windows()
        ]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            report = evaluate_blocks(
                read,
                (truth_src.count, *truth_src.grid.shape),
                blocks,
                ratio=ratio,
                data_range=data_range,
                band_names=list(truth_src.band_names),
            )
    report.notes[:0] = found
    if mask is not None and not any(v > 0 for v in report.per_band.get("valid_fraction", [])):
        report.notes.insert(0, f"the mask {mask} leaves no pixel of the truth to score")
    report.inputs = inputs
    return report


def _shape_advice(pred: FileSource, truth: FileSource) -> str:
    """What to do about prediction and truth of other band counts or sizes."""
    advice = []
    if pred.count < truth.count:
        names = [str(n) for n in pred.band_names]
        known = names and set(names) <= {str(n) for n in truth.band_names}
        pick = ",".join(names) if known else ",".join(str(b + 1) for b in range(pred.count))
        advice.append(
            "Choose the truth's bands the prediction holds, in its order: TRUTH:BANDS, "
            f"{'here' if known else 'e.g.'} {truth.path}:{pick} (docs/inputs.md)."
        )
    elif pred.count > truth.count:  # the truth cannot give bands it lacks: pick the pred's
        names = [str(n) for n in truth.band_names]
        known = names and set(names) <= {str(n) for n in pred.band_names}
        pick = ",".join(names) if known else ",".join(str(b + 1) for b in range(truth.count))
        advice.append(
            "The prediction has more bands: choose those the truth holds, in its order: "
            f"PREDICTION:BANDS, {'here' if known else 'e.g.'} {pred.path}:{pick} "
            "(docs/inputs.md)."
        )
    if pred.grid.shape != truth.grid.shape:
        same_place = pred.grid.crs == truth.grid.crs and all(
            abs(a - b) <= 0.5 * min(*pred.grid.res, *truth.grid.res)
            for a, b in zip(pred.grid.bounds, truth.grid.bounds)
        )
        advice.append(
            # one extent, other pixels (a Sentinel-2 trial's 20 m prediction, 10 m truth)
            "They cover one extent with pixels of other sizes "
            f"({pred.grid.res[0]:g} against {truth.grid.res[0]:g}): resample one onto the "
            "other's grid (gdalwarp -tr with -r average to go coarser) and score again."
            if same_place
            else "Crop the larger onto the smaller's extent (gdal_translate -projwin, or "
            "gdalwarp with the other's -te/-tr) and score again."
        )
    return " ".join(advice)


def _masked_truth(
    truth: FileSource,
    mask: str,
    kind: str,
    flags: Sequence[str] | None,
    inputs: dict[str, Any],
) -> Source:
    """The truth with NaN where ``mask`` says invalid; ``inputs["mask"]`` records it."""
    from stfusion.qa import MaskedSource, check_flags

    given = tuple(flags) if flags else None
    if kind == "binary" and given:
        raise InvalidParameterError(
            f"--mask-flags: {mask} is read as a binary mask (nonzero = invalid), which takes no "
            "flags; give its kind with --mask-kind (mask_kind= in Python)."
        )
    inputs["mask"] = {"path": os.path.abspath(mask), "kind": kind}
    if kind != "binary":
        inputs["mask"]["flags"] = list(check_flags(kind, given))  # the defaults spelled out
    return MaskedSource(truth, mask, kind, given)


def _read_as(src: FileSource) -> dict[str, Any]:
    """How ``evaluate`` read a file: its path, ``value * scale + offset`` and where the two
    came from, and the fill values read as NaN besides the file's nodata tag."""
    return {
        "path": os.path.abspath(src.path),
        "scale": src.scale,
        "offset": src.offset,
        "from": src.scale_source,
        "fill": [float(v) for v in src.fill_],
    }


def _check_evaluation(
    pred_src: FileSource,
    truth_src: FileSource,
    tags: tuple[dict[str, str], dict[str, str]],
    scale_check: bool,
    truth_scored: Source,
) -> np.ndarray:
    """Undeclared fills, band order and scales: warnings, or ``ScaleMismatchError``.
    ``tags``: the prediction's and the truth's file tags; ``truth_scored``: the truth as
    scored (with ``--mask``: NaN where masked, so a cloud's uniform value is no "fill").
    Returns the truth's sample it read."""
    pred_tags, truth_tags = tags
    from stfusion.errors import ScaleMismatchError
    from stfusion.methods.variables import said_not_reflectance
    from stfusion.scale_check import scale_mismatch

    prediction, truth = pred_src.path, truth_src.path
    warn_self_scoring(prediction, truth, pred_tags)
    pg, tg = pred_src.grid, truth_src.grid
    if pg.georeferenced != tg.georeferenced:
        bare = prediction if not pg.georeferenced else truth
        warn(
            f"{bare}: not georeferenced, so nothing shows whether it covers the other's area; "
            f"both are {tg.height} x {tg.width} px, so their pixels are assumed to line up."
        )
    pred_sample, truth_sample = pred_src.sample(), truth_scored.sample()
    fills = [
        warn_undeclared_fill(
            src,
            sample,
            "an undeclared fill value scored as data? Leave it out with "
            f"--{role}-nodata {{stored}} ({role}_nodata= in Python).",
            reflectance=not said_not_reflectance(src.band_names, file_tags),
        )
        for src, sample, role, file_tags in (
            (pred_src, pred_sample, "pred", pred_tags),
            (truth_src, truth_sample, "truth", truth_tags),
        )
    ]
    warn_band_order(
        truth_src,
        [pred_src],
        "Bands are scored by position: write the prediction in the truth's band order "
        "(stfusion predict --fine-bands, or gdal_translate -b).",
    )
    mismatch = scale_mismatch(pred_sample, truth_sample, truth_given=truth_src.scale)
    if mismatch is not None and not scale_check:
        warn(mismatch.message(prediction, truth))
    elif mismatch is not None and any(fills):
        # a fill of -9999 makes a median of 9999: the scale advice would score the fill
        raise ScaleMismatchError(
            " ".join(f for f in fills if f)
            + " It makes the images' values differ as if on different scales; nothing was "
            "scored. (--no-scale-check scores anyway.)"
        )
    elif mismatch is not None:
        raise ScaleMismatchError(
            mismatch.message(prediction, truth).replace(
                "meaningless.", "meaningless; nothing was scored."
            )
            + " (--no-scale-check scores anyway.)"
        )
    return truth_sample


def _auto_data_range(
    pred: FileSource,
    pred_tags: dict[str, str],
    truth: FileSource,
    truth_tags: dict[str, str],
    sample: np.ndarray | None = None,
    band_names: Sequence[str] = (),
) -> tuple[float | str, str]:
    """``data_range="auto"``: ``"truth"`` for an index or a temperature, and why; else 1.0.
    Said by either file (:func:`said_not_reflectance`; ``band_names``: the truth's, when
    given) or, when neither says, seen in the truth's values (``values_not_reflectance``,
    on ``sample`` when already read: kelvin or NDVI with water score alike whichever method
    or program wrote the prediction)."""
    from stfusion.methods.variables import said_not_reflectance, values_not_reflectance

    why = "data range for SSIM and PSNR: each band's valid max - min in the truth, since"
    for src, tags in ((truth, truth_tags), (pred, pred_tags)):
        if said_not_reflectance(
            band_names if src is truth and band_names else src.band_names, tags
        ):
            return "truth", (
                f"{why} {src.path} holds an index or a temperature (its band names or "
                "STFUSION_VARIABLE tag); --data-range 1 scores it as reflectance"
            )
    sample = truth.sample() if sample is None else sample
    var = values_not_reflectance(sample, truth.count, band_names or truth.band_names)
    if var is not None:
        return "truth", (
            f"{why} {truth.path}'s values are not reflectance ({var.name}: {var.reason}); "
            "--data-range 1 scores it as reflectance"
        )
    return 1.0, ""


def holds_index_or_temperature(path: str, band_names: Sequence[str] = ()) -> bool:
    """Whether :func:`evaluate_files`' ``data_range="auto"`` takes the truth's range for the
    truth file at ``path`` (``band_names``: its bands' names, when the file has none)."""
    src, tags = FileSource(path), _file_tags(path)
    return _auto_data_range(src, tags, src, tags, band_names=band_names)[0] == "truth"


def _file_tags(path: str) -> dict[str, str]:
    """The dataset tags of ``path``; none for what is not one file (a glob or list of band
    files, an HDF field)."""
    import rasterio
    from rasterio.errors import RasterioIOError

    try:
        with rasterio.open(path) as ds:
            return dict(ds.tags())
    except RasterioIOError:
        return {}


def _ratio_of(tags: dict[str, str]) -> float | None:
    value = tags.get("STFUSION_RATIO", "")
    try:
        return float(value) if value else None
    except ValueError:
        return None
