"""The series runner: :func:`run_series` (``stfusion series``), driven by a :class:`SeriesConfig`.

Order of a run: options resolved and checked, inputs found by date and their identities taken
(:mod:`.prepare`, before anything reads them), the output folder locked and cleaned of dead
runs' leftovers (:mod:`.lock`), then one date after another (:func:`_run_date`): keep a
verified output made from the same inputs (:mod:`.resume`), else choose pairs
(:mod:`.planning`), predict, blend (:mod:`.blend`) and write (:mod:`.outputs`). A problem with
one date's inputs fails only that date; summary.csv is rewritten after every date.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import shutil
import time
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stfusion.errors import InputFileError
from stfusion.io import (
    Grid,
    Source,
    check_name,
    copy_as_cog,
    partial_name,
    write_errors,
)
from stfusion.io.write_failures import disk_full, not_run_when_full
from stfusion.methods import FusionMethod, members_note
from stfusion.methods.vipstf import VIPSTF, one_pair_method
from stfusion.scene import open_scene
from stfusion.series.blend import Combination, Tier, holes, quality_path
from stfusion.series.config import SeriesConfig, replace_config
from stfusion.series.cube import (
    check_cube_backend,
    check_not_foreign,
    warn_stale_cubes,
    write_series_cube,
)
from stfusion.series.diagnose import input_warnings, no_output_reason
from stfusion.series.images import ImageSet, describe_error, fully_valid
from stfusion.series.lock import SCRATCH_NAME, acquire_lock, release_lock, remove_leftovers
from stfusion.series.outputs import (
    ORPHAN_REASON,
    WrittenImage,
    output_path,
    remove_orphans,
    write_date_image,
    write_summary,
)
from stfusion.series.placed import PlacedSource
from stfusion.series.planning import (
    choose_pairs,
    temporal_weights,
    vip_sets,
)
from stfusion.series.prepare import (
    Prepared,
    check_before_dates,
    prepare,
    refuse_other_settings,
    settings_of,
)
from stfusion.series.quality import QualityLayer
from stfusion.series.records import (
    KEPT_REASON,
    OFF_STEP_REASON,
    OUTSIDE_REASON,
    DateRecord,
    ProgressCallback,
    SeriesResult,
    record_tag,
)
from stfusion.series.resume import (
    file_identity,
    made_with,
    param_files,
    resume_record,
    settings_key,
)
from stfusion.series.stale import drop_earlier_output, listed_outside
from stfusion.series.tags import date_tags, merge_fitted
from stfusion.tiling import (
    current_mem_limit_mb,
    memory_limits,
    release_freed_memory,
    stage,
    state_bytes_for,
    windows_said,
)

log = logging.getLogger("stfusion")

#: Fitted estimators kept for reuse; targets run in date order, so a few suffice (fewer
#: under --mem-limit: together their state stays within one method's share of it).
ESTIMATOR_CACHE = 4


def run_series(
    config: SeriesConfig | str | os.PathLike[str] | None = None,
    *,
    progress: ProgressCallback | None = None,
    **options: Any,
) -> SeriesResult:
    """Predict the fine image at every coarse date of a series (rules in :mod:`stfusion.series`).

    ``config``: a :class:`SeriesConfig`, or the output folder, with the other fields of a
    :class:`SeriesConfig` as ``options`` (``run_series("out", fine=["landsat/"],
    coarse=["modis/"], fine_scale=1e-4)``; ``dates=`` is accepted as the old name of
    ``date_range``). With a config, ``options`` replace some of its fields.
    ``progress(done, total, record)`` is called after every target date.
    """
    if isinstance(config, SeriesConfig):
        cfg = replace_config(config, **options) if options else config
    else:
        out_dir = options.pop("out_dir", None) if config is None else config
        if out_dir is None:
            raise TypeError("run_series needs a SeriesConfig or the output folder")
        cfg = SeriesConfig.from_kwargs(out_dir, **options)
    t_start = time.monotonic()
    check_name(cfg.out_dir, "output")  # its outputs' names: every date failed
    check_cube_backend(cfg.cube)  # a missing zarr/netCDF package fails before any work
    prep = prepare(cfg)

    # ---- output folder, locked while this run writes into it
    out = Path(cfg.out_dir)
    made = [d for d in (out, *out.parents) if not d.exists()]  # removed again if left empty
    if out.exists() and not out.is_dir():  # "cannot write into the output folder (File exists)"
        raise InputFileError(f"{out}: a file, not a folder. Give --out-dir a folder's name.")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputFileError(
            f"{out}: cannot write into the output folder ({exc.strerror or exc}). Choose a "
            "writable --out-dir."
        ) from None
    lock = acquire_lock(out)
    try:
        remove_leftovers(out)
        # --mem-limit for the whole run, not only inside each date's predict: the fits
        # (classification, scene statistics), the gap-filling blend and GDAL's block cache
        with memory_limits(prep.config.mem_limit_mb):
            return _run_locked(prep, out, t_start, progress)
    finally:
        release_lock(lock)
        # a run stopped before writing anything (no ratio, other settings) leaves no folder
        for d in made:
            with contextlib.suppress(OSError):
                d.rmdir()  # only when empty


# ---------------------------------------------------------------------- the run's state


@dataclass
class _Series:
    """State of one run: the method, the images, the fitted estimators, the input identities."""

    cls: type[FusionMethod]
    kwargs: dict[str, Any]
    images: ImageSet
    pairs_per_side: int
    fallback: type[FusionMethod] | None = None
    #: ``vip``: a one-pair main method predicts once, as VIPSTF over all its chosen pairs.
    multi_pair: str = "none"
    identity: dict[str, list[Any] | None] = field(default_factory=dict)
    #: Fine dates whose image is valid everywhere (written as observed), once looked at.
    full: dict[dt.date, bool] = field(default_factory=dict)
    cache: OrderedDict[tuple[str, tuple[dt.date, ...]], FusionMethod] = field(
        default_factory=OrderedDict
    )
    #: The date whose output a full disk refused: the later dates are not computed.
    disk_full: dt.date | None = None

    @property
    def fine(self) -> dict[dt.date, Any]:
        return self.images.fine

    @property
    def coarse(self) -> dict[dt.date, Any]:
        return self.images.coarse

    @property
    def grid(self) -> Grid:
        return self.images.grid

    @property
    def count(self) -> int:
        return self.images.count

    def observed_in_full(self, day: dt.date) -> bool:
        """Whether ``day`` has a fine image that opens and is valid at every pixel (it is then
        written as observed, whatever the pairs)."""
        if day not in self.full:
            img = self.images.open_image(self.fine[day]) if day in self.fine else None
            ok = img is not None and img.source is not None and bool(img.valid)
            if ok:
                assert img is not None and img.source is not None
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    ok = fully_valid(img.source)
            self.full[day] = ok
        return self.full[day]

    def inputs(self, day: dt.date) -> list[list[Any]]:
        """Identities of every file that can change the output at ``day``.

        First the fine grid itself (size, transform, CRS, bands: whichever fine image gives
        it); then, for a date whose fine image is valid everywhere (written as observed),
        that image and its mask alone; else the fine and coarse image (and masks) of the pairs
        the main method and the fallback would choose for ``day`` among the clear pairs (a
        pair becoming clear or cloudy changes that choice, and so this list), the target's
        coarse image and the fine image at the target (gap-filling), with their masks. A pair
        added or changed that no method would choose for ``day`` leaves its output as it is.
        """
        g = self.grid
        where = f"{g.width} x {g.height} px, transform {tuple(g.transform)[:6]}, {g.crs}"
        grid = ["fine grid", where, list(self.images.band_names)]
        paths: list[str | None] = []
        if self.observed_in_full(day) or day not in self.coarse:  # written as observed
            paths += [self.fine[day].path, self.fine[day].mask]
        else:
            for d in self.relevant_pairs(day):
                for a in (self.fine[d], self.coarse[d]):
                    paths += [a.path, a.mask]
            for a in (self.coarse.get(day), self.fine.get(day)):
                if a is not None:
                    paths += [a.path, a.mask]
        paths += param_files(self.kwargs)  # weights=my.ckpt: identity taken in prepare
        seen: list[list[Any]] = [grid]
        for p in dict.fromkeys(x for x in paths if x):
            ident = self.identity.get(p) or file_identity(p)
            if ident is not None:
                seen.append(ident)
        return seen

    def choose(self, cls: type[FusionMethod], day: dt.date) -> tuple[list[list[dt.date]], str]:
        """The pair sets ``cls`` predicts ``day`` from, among the clear pairs other than
        ``day`` itself (:func:`choose_pairs`), and the note on that choice."""
        clear = [d for d in self.images.clear_pairs() if d != day]
        t = cls.tags
        return choose_pairs(
            day, clear, t.min_pairs, t.max_pairs, self.pairs_per_side, t.series_all_pairs
        )

    def relevant_pairs(self, day: dt.date) -> list[dt.date]:
        """The pair dates the main method and the fallback would choose for ``day``."""
        chosen: set[dt.date] = set()
        for cls in (self.cls, self.fallback):
            if cls is not None:
                chosen |= {d for group in self.choose(cls, day)[0] for d in group}
        return sorted(chosen)

    def estimator(self, cls: type[FusionMethod], dates: tuple[dt.date, ...]) -> FusionMethod:
        """``cls`` fitted on the pairs of ``dates`` (fitted once per set, then reused).

        The main method gets the user's parameters, the fallback its defaults.
        """
        key = (cls.name, dates)
        if key in self.cache:
            self.cache.move_to_end(key)
            return self.cache[key]
        pairs = []
        for d in dates:
            f = self.images.open_image(self.fine[d]).source
            c = self.images.open_image(self.coarse[d]).source
            assert f is not None and c is not None
            pairs.append((f, c))
        # the pairs' dates (the target's is given to prepare, date by date): ROBOT's
        # reference=nearest fell back to closest in a series without a word
        scene = open_scene(pairs, ratio=self.images.ratio, check=False, pair_dates=list(dates))
        if cls is self.cls and len(dates) > 1 and one_pair_method(cls):
            est: FusionMethod = VIPSTF(base=cls.name, base_params=dict(self.kwargs))  # vip_sets
        else:
            est = cls(**self.kwargs) if cls is self.cls else cls()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            est.fit(scene)
        self.cache[key] = est
        while len(self.cache) > 1 and (len(self.cache) > ESTIMATOR_CACHE or self._over_state()):
            self.cache.popitem(last=False)
        return est

    def _over_state(self) -> bool:
        """Under --mem-limit: the cached estimators' state (each keeps what it learned and
        prepared for its last date) is over the share of the limit one method's state has."""
        limit = current_mem_limit_mb()
        if limit is None:
            return False
        return sum(e.state_nbytes() for e in self.cache.values()) > state_bytes_for(limit)


# ----------------------------------------------------------------------- under the lock


def _run_locked(
    p: Prepared, out: Path, t_start: float, progress: ProgressCallback | None
) -> SeriesResult:
    """The part of :func:`run_series` that runs while this process holds the lock."""
    cfg, inputs, notes = p.config, p.inputs, p.inputs.notes
    images = ImageSet(
        fine=inputs.fine,
        coarse=inputs.coarse,
        ref=p.grid.ref,
        fine_scaling=p.fine_scaling,
        coarse_scaling=p.coarse_scaling,
        resampling=cfg.resampling,
        fine_mask=p.fine_mask,
        coarse_mask=p.coarse_mask,
        min_valid=cfg.min_valid,
        ratio=p.given_ratio,
    )
    s = _Series(p.cls, p.kwargs, images, cfg.pairs_per_side, p.fallback, cfg.multi_pair, p.identity)
    settings = settings_of(p)
    key = settings_key(settings)

    targets = inputs.targets(p.start, p.end, cfg.every)  # not empty (prepare)
    # a user's summary.csv or cube (never replaced), a cube of a rotated grid
    check_not_foreign(out, cfg.prefix, cfg.cube, s.grid)
    if not cfg.overwrite:  # existing outputs from other settings are never replaced silently
        refuse_other_settings(images, targets, out, cfg, settings, key)
    check_before_dates(images, p, inputs.pair_dates, inputs.observed_only(p.start, p.end))

    # orphans: a coarse image gone (a day off the --every step is not one)
    removed = remove_orphans(
        out, cfg.prefix, set(inputs.targets(p.start, p.end)), p.start, p.end, notes
    )
    records: list[DateRecord] = [
        DateRecord(
            d,
            "skipped",
            p.cls.name,
            reason=inputs.fine_only_reason(d) + (f"; {ORPHAN_REASON}" if d in removed else ""),
        )
        for d in inputs.fine_only(p.start, p.end, cfg.every)
    ]
    records += [
        DateRecord(
            d, "skipped", p.cls.name, reason=f"no image of this date any more; {ORPHAN_REASON}"
        )
        for d in sorted(removed - {r.date for r in records})
    ]
    records += listed_outside(s, p, out, key, set(targets), notes)
    summary_path = out / "summary.csv"
    scratch = partial_name(out / SCRATCH_NAME)  # hidden, PID-named: removed if left behind
    scratch.mkdir()
    total = len(targets)
    try:
        for i, day in enumerate(targets, start=1):
            rec = _run_date(s, day, out, scratch, key, settings, cfg)
            records.append(rec)
            write_summary(summary_path, records)
            if progress is not None:
                progress(i, total, rec)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    write_summary(summary_path, records)
    notes += input_warnings(images.warned)  # a mask kind gone wrong: not only in the log
    nothing = no_output_reason(records, targets, images)
    if nothing:
        log.info("series: %s", nothing)  # the CLI says it as its error
    if images.aligned:
        notes.append(
            f"{images.aligned} coarse image(s) reprojected onto the fine grid with "
            f"{cfg.resampling} resampling (ratio {images.ratio:.3f})"
        )
    cube_path = None
    if cfg.cube is not None:
        names, method = s.images.band_names, s.cls.name
        cube_path = write_series_cube(records, out, cfg, s.grid, names, method, settings, notes)
    changed = [
        r.date
        for r in records
        if "earlier output removed" in r.reason
        or (r.output and not r.reason.startswith((KEPT_REASON, OUTSIDE_REASON, OFF_STEP_REASON)))
    ]
    notes += warn_stale_cubes(out, cfg.prefix, changed, cube_path)
    records.sort(key=lambda r: r.date)  # as summary.csv
    return SeriesResult(
        records, out, summary_path, cube_path, time.monotonic() - t_start, notes, nothing
    )


# ------------------------------------------------------------------------------ one date


def _run_date(
    s: _Series,
    day: dt.date,
    out: Path,
    scratch: Path,
    key: str,
    settings: dict[str, Any],
    cfg: SeriesConfig,
) -> DateRecord:
    """Everything for one target date; never raises for a problem of this date's inputs."""
    t0 = time.monotonic()
    rec = DateRecord(day, method=s.cls.name)
    path = output_path(out, cfg.prefix, day)
    rec.output = path.name
    inputs = s.inputs(day)
    redo = ""
    try:
        if path.exists() and (
            not cfg.overwrite or made_with(path, s.grid, s.count, cfg.dtype, key)
        ):
            kept, redo = resume_record(rec, path, s.grid, s.count, cfg.dtype, inputs, cfg.quality)
            if kept:
                return rec
        if s.disk_full is not None:  # every later write would fail as that date's did
            raise not_run_when_full(s.disk_full)
        with stage(str(day), said=False):  # the long steps of a date's run say its date
            _predict_date(s, rec, day, path, scratch, key, settings, inputs, cfg)
        if current_mem_limit_mb() is not None:  # the dates' peaks must not add up
            release_freed_memory(collect=False)
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:  # this date fails, the series goes on
        log.debug("series: %s failed", day, exc_info=True)
        rec.status, rec.output = "failed", ""
        rec.reason = describe_error(exc)
        if s.disk_full is None and disk_full(exc):
            s.disk_full = day
    finally:
        rec.seconds = time.monotonic() - t0
    if redo and rec.status in ("predicted", "gap-filled"):
        rec.reason = "; ".join(x for x in (redo, rec.reason) if x)
    elif rec.status not in ("predicted", "gap-filled") and path.exists():
        # not made again (skipped, failed; also under --overwrite): an earlier output that no
        # longer matches must not pass for this run's result
        gone = drop_earlier_output(path, day, s.grid, s.count, cfg.dtype, key, inputs, rec.reason)
        rec.reason = "; ".join(x for x in (rec.reason, gone) if x)
    return rec


def _predict_date(
    s: _Series,
    rec: DateRecord,
    day: dt.date,
    path: Path,
    scratch: Path,
    key: str,
    settings: dict[str, Any],
    inputs: list[list[Any]],
    cfg: SeriesConfig,
) -> None:
    notes: list[str] = []
    unusable = ""
    # a date written as observed does not read its coarse image (not one of its inputs), so
    # its row says nothing of it: a kept row cannot go stale when that image changes
    if day not in s.coarse:  # a Landsat day MODIS missed (planning.observed_only)
        coarse, unusable = None, "no coarse image on this date"
    elif s.observed_in_full(day):
        coarse = None
    else:
        coarse = s.images.open_image(s.coarse[day])
    if coarse is not None:
        rec.coarse_valid = coarse.valid
        if coarse.source is None:
            unusable = f"coarse image unreadable: {coarse.error}"
        elif coarse.valid == 0:  # --min-valid 0 wrote an all-NaN "predicted" image
            unusable = "coarse image without a valid pixel (all nodata or masked)"
        elif coarse.valid is not None and coarse.valid < cfg.min_valid:
            unusable = f"coarse valid fraction {coarse.valid:.3f} < --min-valid {cfg.min_valid}"
        if s.coarse[day].mask is None and any(a.mask is not None for a in s.coarse.values()):
            notes.append("no coarse mask for this date: its image used unmasked")  # as the fine
    observed, full = _observation(s, rec, day, notes)
    if unusable and observed is None:
        rec.output, rec.reason = "", unusable
        if coarse is not None:
            rec.status = "failed" if coarse.source is None else "skipped"
            return
        # no coarse image: the fine image is the date's only input, and it fails the date
        # when it cannot be read, as a target's coarse image does
        fimg = s.images.open_image(s.fine[day])
        rec.status = "failed" if fimg.source is None else "skipped"
        rec.reason += ", and the fine image " + (
            f"cannot be read: {fimg.error}"
            if fimg.source is None
            else "has no valid pixel (all masked or nodata)"
        )
        return
    if unusable:
        # the fine observation of the date is still the best image of it: kept, not dropped
        gaps = "" if full else ", its gaps left empty"
        notes.append(f"{unusable}: the fine image written as observed{gaps}")
    tiers: list[Tier] = []
    used: list[dt.date] = []
    blend = "none"
    if not full and not unusable:
        assert coarse is not None and coarse.source is not None
        s.images.check_target_scale(coarse.source)  # as predict's: x10000 among 0-1 fails
        planned = _predict_tiers(s, rec, day, coarse.source, observed, scratch, cfg, notes)
        if planned is None:
            return
        tiers, used, blend = planned

    rec.status = "gap-filled" if observed is not None else "predicted"
    if full and not unusable:
        notes.append("fine image fully valid: written as observed")
    rec.pairs = sorted(set(used))
    if tiers:  # the method that made the pixels: the fallback when it alone predicted
        rec.method = tiers[0].method
    tags = date_tags(s, rec, day, observed, tiers, blend, settings, key, inputs)
    tmp = scratch / f"{day.isoformat()}_combined.tif"
    combined = Combination(tiers, observed, s.grid, s.count)

    def finish(done: WrittenImage) -> dict[str, str]:
        """The notes known once every pixel is written, and the record the output keeps."""
        if combined.filled and s.fallback is not None:
            frac = combined.filled / float(s.grid.width * s.grid.height)
            notes.append(
                f"{s.fallback.name} filled {frac:.1%} of the pixels that {s.cls.name} left empty"
            )
        for note in done.int16_notes(cfg.int16_scale):
            log.warning("series: %s: %s", day, note)
            notes.append(note)
        rec.valid_fraction = done.valid_fraction
        rec.reason = "; ".join(notes)
        return {**tags, "STFUSION_SERIES_RECORD": record_tag(rec)}

    try:
        # one pass over the predictions makes the output and, with --quality, its layer
        with QualityLayer(path, day, s.grid, scratch, cfg.quality) as layer:
            with write_errors(path):
                done = write_date_image(
                    tmp,
                    combined.blocks(layer.sink),
                    s.grid,
                    s.images.band_names,
                    cfg.dtype,
                    cfg.int16_scale,
                    finish,
                )
            layer.drop_stale(done.checksum)  # before the output it describes is replaced
            copy_as_cog(tmp, path, overwrite=True)
            layer.publish(done.checksum)
    finally:
        for p in [tmp, *(p for t in tiers for p in t.files())]:
            with contextlib.suppress(OSError):
                p.unlink()


def _observation(
    s: _Series, rec: DateRecord, day: dt.date, notes: list[str]
) -> tuple[Source | None, bool]:
    """The fine image observed on ``day`` (None: none or unreadable) and whether it is full."""
    if day not in s.fine:
        return None, False
    fimg = s.images.open_image(s.fine[day])
    rec.fine_valid = fimg.valid
    if fimg.source is None:
        notes.append(f"fine image unreadable, predicted instead: {fimg.error}")
        return None, False
    if isinstance(fimg.source, PlacedSource):
        own = fimg.source.source.grid
        notes.append(
            f"fine image on another grid ({own.height} x {own.width} px) placed on the output "
            "grid pixel for pixel"
        )
    if s.fine[day].mask is None and any(a.mask is not None for a in s.fine.values()):
        notes.append("no fine mask for this date: its image used unmasked")
    if not fimg.valid:
        # all masked or nodata: nothing observed (an all-NaN "observation" is not an output)
        notes.append("fine image has no valid pixel (all masked or nodata)")
        return None, False
    return fimg.source, s.observed_in_full(day)


def _predict_tiers(
    s: _Series,
    rec: DateRecord,
    day: dt.date,
    target: Source,
    observed: Source | None,
    scratch: Path,
    cfg: SeriesConfig,
    notes: list[str],
) -> tuple[list[Tier], list[dt.date], str] | None:
    """The main method's predictions, then the fallback's where they leave holes.

    Returns the tiers, the pair dates used and how the main tier blends; None when there is
    nothing to predict from and nothing observed (``rec`` then says skipped).
    """
    clear = [d for d in s.images.clear_pairs() if d != day]
    tiers: list[Tier] = []
    used: list[dt.date] = []
    blend = "none"
    sets, note = s.choose(s.cls, day)
    vip = s.multi_pair == "vip" and one_pair_method(s.cls) and len(sets) > 1
    if vip:
        sets = vip_sets(day, sets)
    if sets:
        tiers.append(_predict_tier(s, s.cls, sets, day, target, scratch, "main", cfg, notes))
        used += [d for group in sets for d in group]
        rec.weights = tiers[0].weights
        blend = (
            "temporal weights 1/days, normalised per pixel"
            if len(sets) > 1
            else f"one VIPSTF prediction over {s.cls.name} from all its pairs"
            if vip
            else "one prediction from all its pairs"
        )
        if note:
            notes.append(note)
    fb = s.fallback
    if (
        fb is not None
        and clear
        and (not tiers or holes(tiers[0], target, observed, s.grid, s.count) > 0)
    ):
        fsets, fnote = s.choose(fb, day)
        if fsets:
            alone = not tiers
            if alone:
                notes.append(f"{s.cls.name}: {note}; predicted with {fb.name} instead")
                notes += [fnote] if fnote else []
            tiers.append(_predict_tier(s, fb, fsets, day, target, scratch, "fallback", cfg, notes))
            used += [d for group in fsets for d in group]
            if alone:  # the fallback's pairs made every pixel: its weights are the date's
                rec.weights = tiers[0].weights
    broken = {d: e for d, e in s.images.unreadable_pairs().items() if d != day}
    if broken:
        notes.append("pairs not used, unreadable: " + ", ".join(d.isoformat() for d in broken))
    if not tiers and observed is None:
        rec.status, rec.output = "skipped", ""
        rec.reason = f"no pair to predict from ({note})"
        if broken:
            # not a choice of the data (clouds) but inputs that could not be read: a failure
            first = next(iter(broken.values()))
            more = f" (and {len(broken) - 1} more)" if len(broken) > 1 else ""
            rec.status = "failed"
            rec.reason += f"; {len(broken)} pair(s) unreadable, e.g. {first}{more}"
        return None
    if not tiers:
        why = "" if note == "no clear pair" else f" ({note})"  # not "... (no clear pair)"
        notes.append(f"no other clear pair to predict from{why}: gaps left empty")
    return tiers, used, blend


def _predict_tier(
    s: _Series,
    cls: type[FusionMethod],
    sets: list[list[dt.date]],
    day: dt.date,
    target: Source,
    scratch: Path,
    role: str,
    cfg: SeriesConfig,
    notes: list[str],
) -> Tier:
    """``cls``'s predictions of ``day`` from each pair set; ``notes`` gets what the date's
    reason says about them (an ensemble's members that ran)."""
    weights = [1.0] if len(sets) == 1 else temporal_weights(day, [g[0] for g in sets])
    paths = []
    fitted: list[dict[str, Any]] = []
    for group in sets:
        est = s.estimator(cls, tuple(group))
        name = "+".join(d.isoformat() for d in group)
        comp = scratch / f"{day.isoformat()}_{role}_{name}.tif"
        _predict_component(est, target, comp, cfg.mem_limit_mb, cfg.workers, day)
        paths.append(comp)
        fitted.append(est.fitted_tags())  # e.g. STFUSION_VARIABLE, as predict writes
        note = members_note(est, len(group))
        if note and note not in notes:
            notes.append(note)
    return Tier(paths, weights, cls.name, sets, merge_fitted(fitted), role)


def _predict_component(
    est: FusionMethod,
    target: Source,
    out: Path,
    mem_limit_mb: float | None,
    workers: int,
    day: dt.date,
) -> Path:
    """One fusion prediction of ``day`` into a float32 GeoTIFF (the unit the resume test
    counts); the quality layer's days_to_pair from the pairs' dates given to fit."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        est.prepare(target, target_date=day)
        # with its quality layer: the blend prefers values made from a pair's fine data
        est.predict(
            out=out,
            overwrite=True,
            mem_limit_mb=mem_limit_mb,
            workers=workers,
            cog=False,
            quality_out=quality_path(out),
            progress=windows_said,
        )
    return out
