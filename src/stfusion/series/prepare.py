"""Before the lock: a run's options resolved and checked, its inputs found by date.

Nothing here reads a pixel: presets and scaling resolved, mask kinds and flags, the method
and its parameters and the date range checked, the images found
(:func:`.planning.find_inputs`), their identities taken before anything reads them (the
resume key, :mod:`.resume`) and the output grid chosen from the fine images' headers
(:func:`.grids.choose_grid`).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from stfusion.coarse import integer_ratio
from stfusion.dates import split_listed
from stfusion.errors import (
    InvalidParameterError,
    OutputExistsError,
    ScaleMismatchError,
    warn,
)
from stfusion.io import Scaling
from stfusion.methods import FusionMethod, get_method
from stfusion.methods.vipstf import one_pair_method
from stfusion.pair_scales import SAMPLE_PIXELS, check_scales
from stfusion.qa import MASK_KINDS, check_flags
from stfusion.scene import open_scene
from stfusion.scene_checks import check_pair
from stfusion.series.config import SeriesConfig
from stfusion.series.grids import GridChoice, choose_grid
from stfusion.series.images import ImageSet
from stfusion.series.outputs import output_path, verify_output
from stfusion.series.planning import SeriesInputs, find_inputs, span
from stfusion.series.resume import file_identity, param_files


@dataclass
class Prepared:
    """A run's options resolved and checked and its inputs found: all before the lock."""

    config: SeriesConfig
    fine_scaling: Scaling
    coarse_scaling: Scaling
    fine_mask: tuple[str, tuple[str, ...]]  # (kind, flags)
    coarse_mask: tuple[str, tuple[str, ...]]
    cls: type[FusionMethod]
    kwargs: dict[str, Any]
    given_ratio: float | None
    fallback: type[FusionMethod] | None
    start: dt.date | None
    end: dt.date | None
    inputs: SeriesInputs
    #: ``file_identity`` of every input path, taken before any was read: the resume key
    identity: dict[str, list[Any] | None]
    #: The output grid and the fine images placed on it (:mod:`.grids`).
    grid: GridChoice


def prepare(cfg: SeriesConfig) -> Prepared:
    """Resolve presets and scaling, check every option, find the inputs (no pixel is read)."""
    from stfusion.api import split_ratio
    from stfusion.inputs import (
        check_s2_offset,
        preset_mask_kind,
        resolve_role,
        s2_offset_missing,
    )

    fine_scaling, fpreset = resolve_role(
        cfg.fine_scale, cfg.fine_offset, cfg.fine_bands, cfg.fine_preset, cfg.fine_nodata
    )
    coarse_scaling, cpreset = resolve_role(
        cfg.coarse_scale, cfg.coarse_offset, cfg.coarse_bands, cfg.coarse_preset, cfg.coarse_nodata
    )
    cls = get_method(cfg.method)
    rest, given_ratio = split_ratio(cfg.params)
    kwargs = cls.parse_params(rest)
    cls(**kwargs)  # invalid values fail here, not at the first date
    fallback = cfg.fallback
    fb_cls = None if fallback in (None, "none", cls.name) else get_method(str(fallback))
    start, end = cfg.targets_range()

    inputs = find_inputs(cfg, fine_scaling.bands, coarse_scaling.bands, fpreset, cpreset)
    for role, scaling, preset, images in (
        ("fine", fine_scaling, fpreset, inputs.fine),
        ("coarse", coarse_scaling, cpreset, inputs.coarse),
    ):
        paths = [p for a in images.values() for p in split_listed(a.path)]
        check_s2_offset(preset, scaling.offset, paths, f"--{role}-offset")
        first = next(iter(images.values()), None)  # one date tells the product
        said = first and s2_offset_missing(preset, scaling, first.path, role)
        if said:
            warn(said)
    if fine_scaling.bands == coarse_scaling.bands:
        _refuse_shared_files(inputs.fine.values(), inputs.coarse.values())
    targets = inputs.targets(start, end, cfg.every)
    if not targets:  # before the output folder is created
        step = f" on a step of {cfg.every} days" if inputs.targets(start, end) else ""
        raise InvalidParameterError(
            f"no coarse date in the range {cfg.date_range!r}{step}; the coarse images span "
            f"{span(inputs.coarse)}."
        )
    missed = inputs.daily_gaps(start, end) if cfg.every == 1 else []
    if missed:
        more = f" and {len(missed) - 3} more" if len(missed) > 3 else ""
        inputs.notes.append(
            f"{len(missed)} day(s) of the daily coarse series have no coarse image and are not "
            f"predicted ({', '.join(d.isoformat() for d in missed[:3])}{more})"
        )
    gaps = inputs.step_gaps(start, end, cfg.every)
    if gaps:
        more = f" and {len(gaps) - 3} more" if len(gaps) > 3 else ""
        inputs.notes.append(
            f"--every {cfg.every}: {len(gaps)} day(s) on the step have no coarse image and are "
            f"not predicted ({', '.join(d.isoformat() for d in gaps[:3])}{more})"
        )
    cfg.check_outputs_are_not_inputs(
        [output_path(Path(cfg.out_dir), cfg.prefix, d).name for d in targets]
    )
    # the masks' kind: the preset's QA kind too for masks given that are its QA files
    fine_kind = preset_mask_kind(fpreset, cfg.fine_mask, cfg.fine_mask_kind, inputs.fine)
    coarse_kind = preset_mask_kind(cpreset, cfg.coarse_mask, cfg.coarse_mask_kind, inputs.coarse)
    for kind in (fine_kind, coarse_kind):
        if kind not in MASK_KINDS:
            raise InvalidParameterError(f"mask kind {kind!r}: choose from {MASK_KINDS}.")
    fflags = check_flags(fine_kind, cfg.fine_mask_flags)
    cflags = check_flags(coarse_kind, cfg.coarse_mask_flags)
    # input files as they are now, before anything reads them: the resume key
    identity: dict[str, list[Any] | None] = {}
    for table in (inputs.fine, inputs.coarse):
        for acq in table.values():
            for path in (acq.path, acq.mask):
                if path and path not in identity:
                    identity[path] = file_identity(path)
    for path in param_files(kwargs):  # weights=my.ckpt retrained in place changes outputs
        identity.setdefault(path, file_identity(path))
    # headers only: fine images that cannot be put on one grid stop the run before any folder
    grid = choose_grid(inputs, fine_scaling, inputs.notes)
    return Prepared(
        config=cfg,
        fine_scaling=fine_scaling,
        coarse_scaling=coarse_scaling,
        fine_mask=(fine_kind, fflags),
        coarse_mask=(coarse_kind, cflags),
        cls=cls,
        kwargs=kwargs,
        given_ratio=given_ratio,
        fallback=fb_cls,
        start=start,
        end=end,
        inputs=inputs,
        identity=identity,
        grid=grid,
    )


def _refuse_shared_files(fine: Iterable[Any], coarse: Iterable[Any]) -> None:
    """``--fine`` and ``--coarse`` matching the same files (one folder or glob for both)
    "gap-filled" every date with its own fine image, exit 0."""

    def key(path: str) -> tuple[int, int] | None:
        try:
            st = os.stat(path)
        except OSError:  # a band stack or HDF field: not one file
            return None
        return st.st_dev, st.st_ino

    fines = {k: a.path for a in fine if (k := key(a.path)) is not None}
    both = [a.path for a in coarse if key(a.path) in fines]
    if both:
        more = f" and {len(both) - 1} more" if len(both) > 1 else ""
        raise InvalidParameterError(
            f"{both[0]}{more}: matched by both --fine and --coarse. Give the fine images "
            "(Landsat, Sentinel-2) and the coarse images (MODIS) as separate folders or globs "
            "(e.g. --fine 'L*.tif' --coarse 'MOD*.tif')."
        )


def _normalised(cls: type[FusionMethod], params: dict[str, Any]) -> dict[str, Any]:
    """The parameters with each number in the type of its default (``classes=40`` given on
    the command line is parsed as 40.0; the default is 40), so equal values give one key and
    a run with the defaults keeps its key."""
    defaults = {p.name: p.default for p in cls.params}
    out = dict(params)
    for name, value in params.items():
        d = defaults.get(name)
        if isinstance(value, bool) or isinstance(d, bool):
            continue
        if isinstance(d, int) and isinstance(value, float) and value.is_integer():
            out[name] = int(value)
        elif isinstance(d, float) and isinstance(value, int):
            out[name] = float(value)
    return out


def _uses_pairs_per_side(p: Prepared) -> bool:
    """Whether the method or the fallback chooses pairs by ``--pairs-per-side`` (a
    time-series method such as ROBOT takes every clear pair)."""
    return any(
        not (m.tags.series_all_pairs and m.tags.max_pairs != 1)
        for m in (p.cls, p.fallback)
        if m is not None
    )


def settings_of(p: Prepared) -> dict[str, Any]:
    """Everything that changes an output (its hash is ``STFUSION_SERIES_KEY``)."""
    cfg = p.config
    settings: dict[str, Any] = {
        "method": p.cls.name,
        "params": _normalised(p.cls, p.cls(**p.kwargs).get_params()),
        "ratio": p.given_ratio,
        "dtype": cfg.dtype,
        "int16_scale": cfg.int16_scale if cfg.dtype == "int16" else None,
        "min_valid": cfg.min_valid,
        # 1 (the default) where no method of the run uses it: earlier runs still match
        "pairs_per_side": cfg.pairs_per_side if _uses_pairs_per_side(p) else 1,
        "fine_scaling": [p.fine_scaling.scale, p.fine_scaling.offset],
        "coarse_scaling": [p.coarse_scaling.scale, p.coarse_scaling.offset],
        "resampling": cfg.resampling,
        "fine_mask": [p.fine_mask[0], list(p.fine_mask[1])],
        "coarse_mask": [p.coarse_mask[0], list(p.coarse_mask[1])],
        "fallback": p.fallback.name if p.fallback is not None else None,
    }
    if cfg.multi_pair != "none" and one_pair_method(p.cls):  # key unchanged where it is moot
        settings["multi_pair"] = cfg.multi_pair
    # the fills given: a preset's own (read as nodata since 2026-12-06) is stfusion's
    # reading, which the version in the key covers; in the settings it refused every
    # earlier output of a preset run as "made with other settings"
    nodata = [cfg.fine_nodata, cfg.coarse_nodata]
    if nodata != [None, None]:  # key unchanged for runs without a declared fill
        settings["nodata"] = nodata
    if p.fine_scaling.bands or p.coarse_scaling.bands:  # key unchanged for runs without a choice
        settings["bands"] = [
            list(p.fine_scaling.bands or ()),
            list(p.coarse_scaling.bands or ()),
        ]
    return settings


# ------------------------------------------------- under the lock, before the first date


def refuse_other_settings(
    images: ImageSet,
    targets: list[dt.date],
    out: Path,
    cfg: SeriesConfig,
    settings: dict[str, Any],
    key: str,
) -> None:
    """Stop before any work when an output of ``targets`` was made with other settings,
    naming the settings that differ (from the output's ``STFUSION_SERIES_SETTINGS``)."""
    clash: list[tuple[str, dict[str, str]]] = []
    for d in targets:
        path = output_path(out, cfg.prefix, d)
        if path.exists():
            state, tags = verify_output(path, images.grid, images.count, cfg.dtype, read_data=False)
            # another size with the same settings: the inputs moved the fine grid (a new
            # pair on a cropped grid), recomputed as any input change, not refused
            if state in ("other", "ok") and tags.get("STFUSION_SERIES_KEY") != key:
                clash.append((path.name, tags))
    if clash:
        name, tags = clash[0]
        changed = settings_changed(tags.get("STFUSION_SERIES_SETTINGS"), settings)
        what = (
            f"({name}: {changed})"
            if changed
            else f"(e.g. {name}: method, parameters, masks, bands, dtype or scaling)"
        )
        raise OutputExistsError(
            f"{out}: {len(clash)} output(s) were made with other settings {what}. Pass "
            "--overwrite (Python: overwrite=True) to replace them, or choose another --out-dir."
        )


def settings_changed(recorded: str | None, settings: dict[str, Any]) -> str:
    """The settings an output recorded that differ from ``settings``, as
    ``name: then -> now`` (at most four), or "" when the record is missing or unreadable."""
    try:
        then = json.loads(recorded) if recorded else None
    except ValueError:
        return ""
    if not isinstance(then, dict):
        return ""
    now = json.loads(json.dumps(settings, default=str))  # as recorded: tuples as lists
    diffs = []

    def show(v: Any) -> Any:
        return "none" if v is None else v  # JSON's null, as the options spell it

    # the method first: a fallback that changes with it reads as a consequence
    for k in sorted(set(then) | set(now), key=lambda k: (k != "method", k)):
        a, b = then.get(k), now.get(k)
        if a == b or (k == "params" and then.get("method") != now.get("method")):
            continue
        if isinstance(a, dict) and isinstance(b, dict):  # parameters: only those that differ
            diffs += [
                f"{k}.{n}: {show(a.get(n))} -> {show(b.get(n))}"
                for n in sorted(set(a) | set(b))
                if a.get(n) != b.get(n)
            ]
        else:
            diffs.append(f"{k}: {show(a)} -> {show(b)}")
    more = f"; and {len(diffs) - 4} more" if len(diffs) > 4 else ""
    return "; ".join(diffs[:4]) + more


def check_before_dates(
    images: ImageSet, p: Prepared, pair_dates: list[dt.date], observed: Iterable[dt.date] = ()
) -> None:
    """The checks made before any date: each pair's scales (x10000 against 0-1 ruins
    everything silently; one pair stored otherwise than the first passed unchecked, and its
    date was "written as observed" at 1e-5) as predict checks its pairs, the first pair's
    coarse image kept to check each target's against (:meth:`ImageSet.check_target_scale`),
    and the fine images written as observed (``observed``: no coarse image on their date)
    against the first pair's, and the resolution ratio a method or the fallback needs, on
    inputs all on one grid without ``ratio=R``."""
    cls, fallback, params = p.cls, p.fallback, p.kwargs
    pair = None
    told = False  # the band order is warned about once
    for d in pair_dates:
        f, c = images.open_image(images.fine[d]), images.open_image(images.coarse[d])
        if f.source is not None and c.source is not None:
            try:
                told = check_pair(f.source, c.source, band_order=not told) or told
            except ScaleMismatchError as exc:
                if pair is None or not exc.measure:  # kelvin, sign: predict's words
                    raise
                raise ScaleMismatchError(  # the measure, not one pair's fix
                    f"{exc.measure} In a series --fine-scale and "
                    "--coarse-scale apply to every image, "
                    f"and the pair {pair[0].label}, {pair[1].label} passed with them: rescale "
                    "these files, or record their scale in them (gdal_edit.py -scale S FILE, "
                    "on a copy)."
                ) from None
            pair = pair or (f.source, c.source)
    if pair is None:
        return
    images.scale_ref = pair[1]
    ref: np.ndarray | None = None  # the first pair's fine sample, read once
    for d in observed:  # written as they are: one stored otherwise was written 10000x off
        f = images.open_image(images.fine[d])
        if f.source is not None:
            ref = pair[0].sample(SAMPLE_PIXELS) if ref is None else ref
            samples = ref, f.source.sample(SAMPLE_PIXELS)
            check_scales(pair[0], f.source, "--fine-scale", "--fine-scale", samples)
    needs = [
        m
        for m, kw in ((cls, params or {}), (fallback, {}))
        if m is not None and m.needs_ratio_for(kw)
    ]
    # coarse images reprojected from their own grid: FSDAF and Fit-FC use the native pixels
    if not needs or images.aligned or open_scene([pair], check=False).ratio is not None:
        return
    name = needs[0].name if needs[0] is cls else f"{needs[0].name} (--fallback)"
    if images.ratio is not None:  # one grid: R x R blocks, so an integer (16.5 failed each date)
        integer_ratio(images.ratio, name)
    else:
        raise InvalidParameterError(
            f"{name} needs the resolution ratio R, the coarse sensor's pixel size over the fine "
            "one's. The inputs are on one grid (or the coarse pixels are less than 1.5 fine "
            "pixels across, so taken as already resampled), so it cannot be read from them: "
            "give it as an "
            "integer, --param ratio=R (Python: run_series(..., params={'ratio': R})); e.g. 16 "
            "for MODIS 500 m over Landsat 30 m, 10 for MODIS 500 m over a 50 m grid."
        )
