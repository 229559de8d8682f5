"""``stfusion bench``: every method on every case, one protocol, tables and figures.

Each run is fit + predict in memory on the case's inputs, timed (wall seconds; warm or cold:
whether the method had run before in the process) with the rise of the resident memory
sampled alongside, and scored with the pinned metrics against the truth. The baselines (no
change, additive) are always included. Outputs, in ``--out DIR``:

- ``metrics.csv``: tidy rows ``case, method, band, metric, value`` (a ``mean`` band row too);
  ``runs.csv``: a row per run: status (ok / skipped / failed), why, seconds, warm, memory, coverage,
- ``summary.md`` and ``summary.tex``: per case, the mean over bands of each metric, best per
  column (among the rows with the highest coverage) in bold, notes below,
- ``figures/``: quicklooks, error maps, densities per band; ``index.html``: all on one page,
- ``run.json``: what is needed to reproduce the table (versions, git commit, parameters,
  weights, cases, machine),
- ``.stfusion-bench.json``: the manifest: every file and folder written, its size and SHA-256.

The outputs are written in a temporary folder beside ``DIR`` and moved into place at the end.
``overwrite`` replaces only an earlier bench output, exactly as the bench wrote it (the manifest
says what that is); a folder holding anything else, the current folder, the home folder, ``/``
and a folder holding the inputs are never replaced (:func:`check_bench_out`).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import gc
import json
import os
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

import stfusion
from stfusion.bands import OTHER, roles_from_names
from stfusion.bench_report import (  # SUMMARY_COLUMNS re-exported: its old home
    BASELINES,
    SUMMARY_COLUMNS,  # noqa: F401
    FigureStyle,
    case_figures,
    dropped_runs,
    html_page,
    run_record,
    summary_latex,
    summary_markdown,
    write_csvs,
    write_predictions,
)
from stfusion.cases import Case, check_case_name
from stfusion.errors import (
    InputFileError,
    InvalidParameterError,
    OutputExistsError,
    STFusionError,
    warn,
)
from stfusion.io import OLD_SUFFIX, FileSource, atomic_path, check_name, file_sha256, partial_name
from stfusion.methods import FusionMethod, get_method, make_estimator, members_note
from stfusion.methods.deep import (
    fitted_training_dates,
    fitted_training_sites,
    shipped_on_target,
    trained_on_target,
)
from stfusion.methods.vipstf import base_class, check_multi_pair, one_pair_method, uses_vip
from stfusion.metrics import MetricReport, evaluate


@dataclass
class Run:
    """One method on one case."""

    case: str
    method: str
    status: str = "ok"
    reason: str = ""
    seconds: float = float("nan")
    #: peak resident memory during fit + prepare + predict minus that just before (MB)
    peak_rss_increase_mb: float = float("nan")
    #: whether the method had already run in this process (warm-up or an earlier case)
    warm: bool = False
    params: dict[str, Any] = field(default_factory=dict)
    #: the checkpoints a deep method (or VIPSTF's deep base) ran with: method, path, sha256
    weights: list[dict[str, str]] = field(default_factory=list)
    #: the case's pair dates among the weights' training dates (at a site that could be
    #: the case's scene): the weights saw the pair images, not the target
    saw_pairs: str = ""
    report: MetricReport | None = None
    prediction: np.ndarray | None = None


def _with_grid_ratio(case: Case) -> Case:
    """``case`` with the resolution ratio its grids give when it states none (coarse images
    on their own grid): ERGAS and the report then use it, as ``evaluate`` does with the
    prediction's ``STFUSION_RATIO`` (bench left ERGAS empty). Unchanged when it cannot be
    measured; a stated ratio the grids contradict is warned about (used as stated)."""
    from stfusion.scene import open_scene

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            scene = open_scene(
                list(case.pairs),
                case.target,
                fine_scaling=case.fine_scaling,
                coarse_scaling=case.coarse_scaling,
                check=False,
            )
    except STFusionError:
        return case  # each run says why
    if scene.ratio is None:
        return case
    if case.ratio is None:
        return replace(case, ratio=float(scene.ratio))
    if abs(case.ratio - scene.ratio) > 0.05 * scene.ratio:
        warn(
            f"case {case.name}: ratio = {case.ratio:g} is given, but its coarse grid's ground "
            f"ratio is {scene.ratio:.4g}; ERGAS uses {case.ratio:g} as given (the methods "
            "that use native coarse pixels use the grid). Leave ratio out to use the grid's."
        )
    return case


class _PeakRSS:
    """Samples this process's resident memory in a thread; after the ``with`` block,
    ``increase_mb``: the peak over the resident memory at the start (what the process's
    peak alone cannot say: it holds every earlier run's and import's memory)."""

    def __init__(self, interval: float = 0.02) -> None:
        import psutil

        gc.collect()  # garbage of earlier runs is not part of the start
        self._proc = psutil.Process()
        self._interval = interval
        self._stop = threading.Event()
        self.start = self.peak = self._proc.memory_info().rss
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._proc.memory_info().rss)
            time.sleep(self._interval)

    def __enter__(self) -> _PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)

    @property
    def increase_mb(self) -> float:
        return max(0, self.peak - self.start) / 2**20


def parse_bench_params(items: Sequence[str]) -> dict[str, list[str]]:
    """``method.name=value`` -> {method: ["name=value"]}."""
    out: dict[str, list[str]] = {}
    for item in items:
        key, eq, value = item.partition("=")
        method, dot, name = key.partition(".")
        if not eq or not dot:
            raise InvalidParameterError(
                f"--param {item}: expected METHOD.NAME=VALUE, e.g. starfm.window=31."
            )
        out.setdefault(method.strip(), []).append(f"{name.strip()}={value.strip()}")
    return out


def applicable(
    cls: type[FusionMethod], case: Case, params: Sequence[str] = (), vip: bool = False
) -> str:
    """Why ``cls`` cannot run on ``case`` ("" when it can); ``vip``: as VIPSTF's base, on one
    (virtual) pair.

    A class-level ``training_dates`` describes the method's default (shipped) weights; with
    other weights the fitted estimator's ``training_dates_`` is checked after ``fit``.
    """
    problem = cls.tags.pairs_problem(1 if vip else len(case.pairs))
    if problem:
        hint = " (--multi-pair vip runs it through VIPSTF)" if one_pair_method(cls) else ""
        return problem.replace(", got ", ", the case has ") + hint
    own_weights = any(p.split("=", 1)[0].strip() == "weights" for p in params)
    dates = None if own_weights else getattr(cls, "training_dates", None)
    if not dates:
        return ""
    return trained_on_target(
        dates, case.target_date, getattr(cls, "training_sites", ()), _grid(case)
    )


def _grid(case: Case) -> Any:
    """The case's fine grid (its first fine image's), or None when it cannot be read."""
    try:
        return FileSource(case.pairs[0][0]).grid
    except STFusionError:
        return None


def run_one(case: Case, method: str, params: Sequence[str] = (), multi_pair: str = "none") -> Run:
    """Fit and predict ``method`` on ``case``; never raises for a method's own failure.

    ``multi_pair="vip"``: a one-pair method on a case with several pairs runs as VIPSTF over
    it (``params`` are its own), recorded as ``METHOD+vip``.
    """
    cls = get_method(method)
    vip = uses_vip(cls, len(case.pairs), multi_pair)
    run = Run(case.name, f"{method}+vip" if vip else method)
    reason = applicable(cls, case, params, vip)
    if reason:
        run.status, run.reason = "skipped", reason
        return run
    try:
        est = make_estimator(
            method,
            _with_case_bands(cls, case, params),
            pairs=len(case.pairs),
            multi_pair=multi_pair,
        )
        run.params = effective_params(est)
        reason = shipped_on_target(est, len(case.pairs), case.target_date, _grid(case))
        if reason:  # before any work (an ensemble's members ran ~6 s on the sample before)
            run.status, run.reason = "skipped", reason
            return run
        with warnings.catch_warnings(), _PeakRSS() as mem:
            warnings.simplefilter("ignore")
            t0 = time.perf_counter()
            pred = case.predict_with(est)
            run.seconds = time.perf_counter() - t0
        run.peak_rss_increase_mb = mem.increase_mb
        run.weights, run.reason = weights_used(est), members_note(est, len(case.pairs))
        dates, sites = fitted_training_dates(est), fitted_training_sites(est)
        reason = trained_on_target(dates, case.target_date, sites, est.scene_.grid)
        if reason:
            run.status, run.reason = "skipped", reason
            return run
        run.saw_pairs = pairs_seen(case, dates, sites, est.scene_.grid)
        run.prediction = pred
    except STFusionError as exc:
        run.status, run.reason = "skipped", str(exc)
    except Exception as exc:  # a method's bug must not lose the other runs
        run.status, run.reason = "failed", f"{type(exc).__name__}: {exc}"
        run.params["traceback"] = traceback.format_exc(limit=5)
    return run


def _with_case_bands(cls: type[FusionMethod], case: Case, params: Sequence[str]) -> list[str]:
    """``params``, plus ``bands=`` from the case's band names for a method that takes band
    roles (STARFM's and Fit-FC's similarity bands) when the user gave none: the named cases'
    ENVI files name no bands, so STARFM would fall back to its per-band rule there."""
    given = {p.split("=", 1)[0].strip(): p.split("=", 1)[-1].strip() for p in params}
    roles = roles_from_names(case.bands)  # a user case's ["NDVI"] names no role: none passed
    if all(r == OTHER for r in roles):
        return list(params)
    if "bands" not in given and any(p.name == "bands" for p in cls.params):
        return [*params, f"bands={','.join(roles)}"]
    # VIPSTF: its base's band roles (VIPSTF-SW's red and NIR similarity, STARFM's, Fit-FC's)
    base = given.get("base", next((p.default for p in cls.params if p.name == "base"), None))
    if base is not None and "base.bands" not in given:
        try:
            takes = any(p.name == "bands" for p in base_class(base).params)
        except STFusionError:  # a bad base: make_estimator says so, with the names
            takes = False
        if takes:
            return [*params, f"base.bands={','.join(roles)}"]
    return list(params)


def effective_params(est: FusionMethod) -> dict[str, Any]:
    """``est``'s parameters, with a wrapped base method's (VIPSTF's ``base_params``) in full:
    the defaults it runs with too, not only those given."""
    params = est.get_params()
    if isinstance(params.get("base"), str) and "base_params" in params:
        base = base_class(params["base"])(**dict(params["base_params"] or {}))
        params["base_params"] = base.get_params()
    return params


def weights_used(est: FusionMethod) -> list[dict[str, str]]:
    """The checkpoint files a fitted estimator (or the base it wraps) loaded, with SHA-256."""
    out = []
    for obj in (est, getattr(est, "base_", None)):
        path = getattr(obj, "checkpoint_", None)
        if path:
            name = str(getattr(obj, "name", ""))
            out.append({"method": name, "path": str(path), "sha256": file_sha256(path)})
    return out


def pairs_seen(case: Case, dates: Sequence[str] | None, sites: Sequence[Any], grid: Any) -> str:
    """The case's pair dates that are training dates of the weights, at a site that could be
    the case's scene (as for the target: :func:`trained_on_target`), with the sites; or ""."""
    seen = [d for d in case.pair_dates if trained_on_target(dates, d, sites, grid)]
    if not seen:
        return ""
    at = sorted(
        {
            s.name
            for s in sites
            if s.name and s.could_be(grid) and any(trained_on_target(s.dates, d) for d in seen)
        }
    )
    return ", ".join(seen) + (f" (site {', '.join(at)})" if at else "")


def _truth(case: Case) -> tuple[np.ndarray, list[str]]:
    src = FileSource(case.truth, case.fine_scaling)
    names = list(case.bands) if len(case.bands) == src.count else list(src.band_names)
    return src.read(), names


def run_bench(
    cases: Sequence[Case],
    methods: Sequence[str],
    out: str | os.PathLike[str],
    *,
    params: dict[str, list[str]] | None = None,
    overwrite: bool = False,
    figures: bool = True,
    progress: Callable[[str], None] | None = None,
    multi_pair: str = "none",
    warmup: bool = False,
    predictions: bool = False,
    figure_style: FigureStyle | None = None,
) -> dict[str, Any]:
    """Run everything, write the outputs into ``out``, return a summary.

    ``multi_pair="vip"``: one-pair methods on cases with several pairs run as VIPSTF over
    them (rows ``METHOD+vip``); ``"none"``: they are skipped there. ``warmup``: every method
    runs once first, untimed, on the smallest case with one pair and the smallest with
    several (:func:`warm_up`), so the seconds are warm. ``predictions``: also write every
    prediction, ``predictions/CASE/METHOD.tif``. ``figure_style``: dpi and formats.

    ``out`` is written as a whole: built in a temporary folder beside it and moved into place
    at the end. An existing ``out`` must be empty, or (with ``overwrite``) an earlier bench
    output exactly as the bench wrote it; see :func:`check_bench_out` for what is refused.
    """
    if not cases:
        raise InvalidParameterError("no case to run: give at least one case (--cases).")
    for case in cases:
        check_case_name(case.name)  # names become file names: checked before any work
    cases = list({case.name: case for case in cases}.values())  # a name given twice runs once
    methods = list(dict.fromkeys([m for m in BASELINES if m not in methods] + list(methods)))
    for m in methods:
        get_method(m)  # unknown names fail before any work
    check_multi_pair(multi_pair)
    params = params or {}
    for m in params:
        if m not in methods:
            raise InvalidParameterError(f"--param {m}.*: method {m} is not in --methods.")
        est = make_estimator(m, params[m])  # a misspelt name or a bad value: an error, now
        getattr(est, "check_weights", lambda: None)()  # and a weights file that cannot serve
    final = check_bench_out(out, cases, overwrite)
    for case in cases:
        case.check_files()
    final.parent.mkdir(parents=True, exist_ok=True)
    aside: Path | None = None
    keep = final.stat() if final.is_dir() else None  # its mode and group go to the new one
    try:
        with atomic_path(final, suffix="", keep=keep) as tmp:
            tmp.mkdir()
            started = warm_up(cases, methods, params, multi_pair, progress) if warmup else set()
            how = (multi_pair, warmup, started)
            style = (figure_style or FigureStyle()) if figures else None
            outputs = (style, predictions)
            results = _run_all(cases, methods, params, tmp, outputs, progress, how)
            _write_manifest(tmp)
            # The earlier output (checked again, now that it can no longer change under its
            # own name) moves aside; atomic_path then renames the new one into place.
            aside = _move_aside(final, str(out), cases, overwrite)
    except BaseException:
        if aside is not None and not final.exists():
            os.replace(aside, final)  # the new output did not land: the old one goes back
        raise
    if aside is not None:
        results["dropped"] = dropped_runs(aside, final, cases, methods)
        _remove_own(aside, final)
    results["outdir"] = str(final)
    return results


# ------------------------------------------------------ the output folder: what may be replaced

#: The bench's manifest, in its output folder: every file (size, SHA-256) and folder it wrote.
MANIFEST = ".stfusion-bench.json"
MANIFEST_FORMAT = "stfusion-bench-manifest/1"


def _write_manifest(folder: Path) -> None:
    """Record every file and folder under ``folder`` (written by this bench) in its manifest."""
    files: dict[str, dict[str, Any]] = {}
    dirs: list[str] = []
    for root, dnames, fnames in os.walk(folder):
        rel = Path(root).relative_to(folder)
        dirs += [(rel / d).as_posix() for d in sorted(dnames)]
        for f in sorted(fnames):
            path = Path(root) / f
            files[(rel / f).as_posix()] = {
                "bytes": path.stat().st_size,
                "sha256": file_sha256(path),
            }
    record = {
        "format": MANIFEST_FORMAT,
        "stfusion_version": stfusion.__version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "about": "Everything stfusion bench wrote in this folder. 'stfusion bench --overwrite' "
        "replaces this folder only while it holds exactly these files, unchanged, and folders.",
        "dirs": sorted(dirs),
        "files": files,
    }
    (folder / MANIFEST).write_text(json.dumps(record, indent=1) + "\n")


def _read_manifest(folder: Path) -> dict[str, Any] | None:
    path = folder / MANIFEST
    if path.is_symlink() or not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if (
        not isinstance(record, dict)
        or record.get("format") != MANIFEST_FORMAT
        or not isinstance(record.get("files"), dict)
        or not isinstance(record.get("dirs"), list)
        or not all(_inside(rel) for rel in [*record["files"], *record["dirs"]])
    ):
        return None
    return record


def _inside(rel: object) -> bool:
    """Whether a manifest entry names a path inside its folder (a hand-edited or foreign
    manifest could list ``../x`` or ``/x``; such a manifest is not the bench's)."""
    if not isinstance(rel, str) or not rel or "\\" in rel or "\0" in rel:
        return False
    parts = rel.split("/")
    return not rel.startswith("/") and all(p not in ("", ".", "..") for p in parts)


def foreign_entries(folder: Path, limit: int = 4) -> tuple[list[str], bool]:
    """Entries of ``folder`` that its bench manifest does not list as the bench wrote them.

    Returns (up to ``limit`` relative paths, folders ending in "/"; whether a manifest was
    found). A file counts as the bench's own only if the manifest lists it with the same size
    and SHA-256; symbolic links never count. Empty list: the folder holds only the bench's own.
    """
    record = _read_manifest(folder)
    files: dict[str, Any] = record["files"] if record else {}
    dirs = set(record["dirs"]) if record else set()
    found: list[str] = []

    def own_file(entry: os.DirEntry[str], rel: str) -> bool:
        want = files.get(rel)
        if not isinstance(want, dict) or not entry.is_file(follow_symlinks=False):
            return False
        try:
            return entry.stat(follow_symlinks=False).st_size == want.get("bytes") and (
                file_sha256(entry.path) == want.get("sha256")
            )
        except OSError:
            return False

    def walk(path: str, prefix: str) -> None:
        with os.scandir(path) as it:
            entries = sorted(it, key=lambda e: e.name)
        for entry in entries:
            if len(found) >= limit:
                return
            rel = prefix + entry.name
            if rel == MANIFEST and record is not None:
                continue
            if entry.is_dir(follow_symlinks=False):
                if rel in dirs:
                    walk(entry.path, rel + "/")
                else:
                    found.append(rel + "/")
            elif not own_file(entry, rel):
                found.append(rel)

    walk(str(folder), "")
    return found, record is not None


def _refuse(shown: str, why: str, example: str = "bench-results") -> OutputExistsError:
    return OutputExistsError(
        f"{shown}: {why}; bench replaces its output folder as a whole and never deletes what "
        f"it did not write. Give a new or empty folder, e.g. --out {example}."
    )


def _foreign_error(
    shown: str, found: list[str], has_manifest: bool, limit: int
) -> OutputExistsError:
    more = ", ..." if len(found) >= limit else ""
    listed = ", ".join(found[: limit - 1] if more else found) + more
    what = "files stfusion bench did not write" + (
        " (or changed since)" if has_manifest else f" (it has no bench manifest {MANIFEST})"
    )
    return OutputExistsError(
        f"{shown}: holds {what}: {listed}. --overwrite only replaces an earlier bench output as "
        "the bench wrote it; move those away or give a new or empty folder for --out."
    )


def check_bench_out(
    out: str | os.PathLike[str], cases: Sequence[Case] = (), overwrite: bool = False
) -> Path:
    """The absolute output folder, if the bench may write it; else an ``OutputExistsError``.

    Refused, with or without ``overwrite``: the root folder, the home folder and any folder
    above it, the current folder and any folder above it, a folder that holds an input file of
    ``cases``, a symbolic link, a file, and a folder holding anything the bench did not write
    (or changed since; :func:`foreign_entries`). An empty folder and one that does not exist
    are fine; an earlier bench output only with ``overwrite`` (one a killed run left aside is
    put back first)."""
    check_name(out, "output")  # else found by the tables' write, after every method ran
    shown, final = str(out), Path(os.path.abspath(out))
    stfusion.io.remove_stale_partials(final)
    if final.is_symlink():
        raise _refuse(shown, "is a symbolic link")
    real = final.resolve()

    def at_or_above(folder: Path) -> bool:
        return real == folder or real in folder.parents

    if real == Path(real.anchor):
        raise _refuse(shown, "is the root folder")
    try:
        home: Path | None = Path.home().resolve()
    except (RuntimeError, KeyError):
        home = None
    if home is not None and at_or_above(home):
        raise _refuse(shown, "is the home folder" if real == home else "is above the home folder")
    cwd = Path.cwd().resolve()
    if at_or_above(cwd):
        raise _refuse(
            shown, "is the current folder" if real == cwd else "is above the current folder"
        )
    for case in cases:
        for path in case.files():
            if real in Path(path).resolve().parents:
                raise _refuse(shown, f"holds the input {path} of case {case.name}")
    if final.exists() and not final.is_dir():
        raise _refuse(shown, "is a file")
    if final.is_dir() and os.path.ismount(final):  # a volume: found at the end, by the rename
        raise _refuse(shown, "is a mount point, which cannot be renamed", f"{final / 'bench'}")
    if final.is_dir():
        found, has_manifest = foreign_entries(final)
        if found:
            raise _foreign_error(shown, found, has_manifest, 4)
        if has_manifest and not overwrite:
            raise OutputExistsError(
                f"{shown}: holds an earlier bench output. Pass --overwrite to replace it."
            )
    # the folder is built beside its final place: the nearest existing parent must take it
    parent = next(p for p in final.parents if p.exists())
    why = stfusion.io.cannot_create_in(parent)
    if why:
        raise InputFileError(
            f"{shown}: cannot write in {parent} (read-only or no permission: {why}); "
            "choose another --out."
        )
    return final


def _move_aside(final: Path, shown: str, cases: Sequence[Case], overwrite: bool) -> Path | None:
    """Move an existing ``final`` to a hidden name beside it, checked again there; or None."""
    if not final.exists() and not final.is_symlink():
        return None
    check_bench_out(final, cases, overwrite)  # it may have changed while the bench ran
    aside = partial_name(final, OLD_SUFFIX)
    os.replace(final, aside)
    found, has_manifest = foreign_entries(aside)
    if found or aside.is_symlink():
        os.replace(aside, final)
        raise _foreign_error(shown, found or ["(a symbolic link)"], has_manifest, 4)
    return aside


def _remove_own(aside: Path, final: Path) -> None:
    """Delete the earlier output moved aside: only the files and folders its manifest lists."""
    record = _read_manifest(aside) or {"files": {}, "dirs": []}
    for rel in sorted(record["files"], key=lambda r: -r.count("/")):
        with contextlib.suppress(OSError, ValueError):
            (aside / rel).unlink()
    with contextlib.suppress(OSError):
        (aside / MANIFEST).unlink()
    for rel in sorted(record["dirs"], key=lambda r: -r.count("/")):
        with contextlib.suppress(OSError, ValueError):
            (aside / rel).rmdir()
    try:
        aside.rmdir()
    except OSError:  # something appeared in it after the check: keep it, visibly
        kept = final.with_name(f"{final.name}.stfusion-kept-{os.urandom(3).hex()}")
        with contextlib.suppress(OSError):
            os.replace(aside, kept)
            warn(
                f"{final}: files that appeared in the earlier output while it was "
                f"replaced were kept in {kept}",
                UserWarning,
            )


def _run_all(
    cases: Sequence[Case],
    methods: Sequence[str],
    params: dict[str, list[str]],
    outdir: Path,
    outputs: tuple[FigureStyle | None, bool],
    progress: Callable[[str], None] | None,
    how: tuple[str, bool, set[str]] = ("none", False, set()),
) -> dict[str, Any]:
    """Every method on every case, timed and scored; the outputs written into ``outdir``
    (``outputs``: how the figures are saved, None for none; whether predictions too).
    ``how``: ``(multi_pair, warmup)`` as given to :func:`run_bench` (recorded), and the rows
    (``METHOD`` or ``METHOD+vip``) the warm-up ran."""
    multi_pair, warmup, started = how
    figures, predictions = outputs
    started = set(started)
    runs: list[Run] = []
    figs: dict[str, list[str]] = {}
    t_start = time.perf_counter()
    cases = [_with_grid_ratio(case) for case in cases]
    for case in cases:
        truth, names = _truth(case)
        case_runs = []
        for m in methods:
            if progress:
                progress(f"{case.name}: {m}")
            run = run_one(case, m, params.get(m, ()), multi_pair)
            run.warm = run.method in started
            if run.status == "ok":
                started.add(run.method)
            if run.prediction is not None:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    run.report = evaluate(
                        run.prediction,
                        truth,
                        ratio=case.ratio,
                        band_names=names,
                        data_range=case.data_range,
                    )
            case_runs.append(run)
        if figures is not None:
            figdir = outdir / "figures"
            figs[case.name] = case_figures(case, case_runs, truth, names, figdir, figures)
        if predictions:
            write_predictions(case, case_runs, names, _grid(case), outdir / "predictions")
        for r in case_runs:
            r.prediction = None  # free memory; figures are written
        runs.extend(case_runs)
    total = time.perf_counter() - t_start
    write_csvs(runs, outdir)
    summary = summary_markdown(runs, cases)
    (outdir / "summary.md").write_text(summary)
    (outdir / "summary.tex").write_text(summary_latex(runs, cases))
    record = run_record(runs, cases, methods, params, (multi_pair, warmup), total)
    (outdir / "run.json").write_text(json.dumps(record, indent=2, default=str) + "\n")
    (outdir / "index.html").write_text(html_page(runs, cases, figs, record))
    return {"runs": runs, "summary": summary, "total_seconds": total, "outdir": str(outdir)}


def warm_up(
    cases: Sequence[Case],
    methods: Sequence[str],
    params: dict[str, list[str]],
    multi_pair: str = "none",
    progress: Callable[[str], None] | None = None,
) -> set[str]:
    """Run every method once, untimed and unscored, on the smallest of ``cases`` with one pair
    and the smallest with several: the timed runs then find numba's kernels compiled and
    loaded, the modules imported and the deep methods' weights read (a warm process, as a
    user's second prediction). Returns the rows (``METHOD``, ``METHOD+vip``) that ran."""
    smallest: dict[bool, tuple[int, Case]] = {}
    for case in cases:
        grid = FileSource(case.target, case.coarse_scaling).grid
        size, several = grid.height * grid.width, len(case.pairs) > 1
        if several not in smallest or size < smallest[several][0]:
            smallest[several] = (size, case)
    ran: set[str] = set()
    for _, case in smallest.values():
        for m in methods:
            if progress:
                progress(f"warm-up on {case.name}: {m}")
            run = run_one(case, m, params.get(m, ()), multi_pair)
            if run.status == "ok":
                ran.add(run.method)
    return ran
