"""Named benchmark cases, and user-defined ones from a TOML file.

A case is everything needed to score a method reproducibly: the pairs, the coarse target, the
truth, the scales that turn file values into physical units, the resolution ratio, the band
names and the dates. The named cases are those of ``shared/data/README.md`` (found through
``--data-dir``, ``$STFUSION_DATA`` or a ``shared/data`` folder beside the source tree); the two
CIA cases also exist on the sample bundled with the package (``sample-cia-1pair``,
``sample-cia-2pair``), so they run anywhere.
"""

from __future__ import annotations

import math
import os
import re
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from stfusion.errors import (
    GridMismatchError,
    InputFileError,
    InvalidParameterError,
    ScaleMismatchError,
    STFusionError,
    warn,
)
from stfusion.io import FileSource, Scaling
from stfusion.io.files import same_file
from stfusion.metrics import DATA_RANGE_FACTOR
from stfusion.scene_checks import SAMPLE_PIXELS, check_scales

if TYPE_CHECKING:
    from stfusion.methods.base import FusionMethod


@dataclass(frozen=True)
class Case:
    """One prediction with its truth."""

    name: str
    pairs: tuple[tuple[str, str], ...]
    target: str
    truth: str
    pair_dates: tuple[str, ...]
    target_date: str
    fine_scale: float | None = None
    coarse_scale: float | None = None
    fine_offset: float | None = None
    coarse_offset: float | None = None
    ratio: float | None = None
    bands: tuple[str, ...] = ()
    description: str = ""
    #: SSIM's and PSNR's data range: a number (1.0: reflectance) or "truth" (the truth's
    #: valid max - min, for NDVI, temperature).
    data_range: float | str = 1.0
    notes: tuple[str, ...] = field(default_factory=tuple)
    #: the cases file (TOML) that defines it; "" for a named case
    source: str = ""

    @property
    def fine_scaling(self) -> Scaling:
        return Scaling(self.fine_scale, self.fine_offset)

    @property
    def coarse_scaling(self) -> Scaling:
        return Scaling(self.coarse_scale, self.coarse_offset)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def predict_with(self, est: FusionMethod) -> np.ndarray:
        """``est`` fitted on the case's pairs and run on its coarse target, as the bench runs
        every method: the prediction ``(band, y, x)``. With the case's dates where it has them
        (ROBOT's reference=nearest fell back to closest in the bench without a word)."""
        dated = len(self.pair_dates) == len(self.pairs) and bool(self.target_date)
        est.fit(
            list(self.pairs),
            fine_scaling=self.fine_scaling,
            coarse_scaling=self.coarse_scaling,
            ratio=self.ratio,
            pair_dates=list(self.pair_dates) if dated else None,
            target_date=self.target_date if dated else None,
        )
        est.prepare(self.target, self.coarse_scaling)
        return np.asarray(est.predict().values)

    def files(self) -> list[str]:
        """Every input file of the case: the pairs', the target and the truth."""
        return [p for pair in self.pairs for p in pair] + [self.target, self.truth]

    def missing_files(self) -> list[str]:
        return [path for path in self.files() if not Path(path).exists()]

    def check_files(self) -> None:
        missing = self.missing_files()
        if missing and self.source:  # --data-dir plays no part in a user's case
            keys = {self.target: "target", self.truth: "truth"}
            for i, pair in enumerate(self.pairs):
                keys[pair[0]] = f"pairs[{i}] (its fine image)"
                keys[pair[1]] = f"pairs[{i}] (its coarse image)"
            raise InputFileError(
                f"{self.source}: case {self.name!r}: the file of {keys[missing[0]]}, "
                f"{missing[0]}, not found. Relative paths in a cases file are relative to the "
                "file's own folder."
            )
        if missing:
            raise InputFileError(
                f"case {self.name}: {missing[0]} not found. Point --data-dir (or "
                "$STFUSION_DATA) at the folder with the benchmark data."
            )
        for path in dict.fromkeys([*(p for pair in self.pairs for p in pair), self.target]):
            try:  # opened now, as the truth: an unreadable input fails before any run
                FileSource(path)
            except STFusionError as exc:
                raise InputFileError(f"case {self.name}: {exc}") from None
        fine, truth = FileSource(self.pairs[0][0]), FileSource(self.truth)
        own = [f for f, _ in self.pairs if same_file(f, self.truth)]
        if own:  # as evaluate warns when the truth is the prediction itself
            warn(
                f"case {self.name}: the truth {self.truth} is the fine image of one of its "
                "pairs, so the no-change baseline scores perfectly (RMSE 0, PSNR infinite). "
                "Give the fine image of the target date as the truth."
            )
        if (truth.count, truth.grid.shape) != (fine.count, fine.grid.shape):
            raise GridMismatchError(
                f"case {self.name}: the truth {self.truth} ({truth.count} x "
                f"{truth.grid.height} x {truth.grid.width}) must have the bands and size of the "
                f"fine image {self.pairs[0][0]} ({fine.count} x {fine.grid.height} x "
                f"{fine.grid.width}): predictions are made on the fine grid."
            )
        if (
            fine.grid.georeferenced
            and truth.grid.georeferenced
            and not fine.grid.same_as(truth.grid)
        ):
            raise GridMismatchError(
                f"case {self.name}: the truth {self.truth} lies on another grid than the fine "
                f"image {self.pairs[0][0]} ({truth.grid.describe()}, {truth.grid.origin()} vs "
                f"{fine.grid.describe()}, {fine.grid.origin()}); crop or resample it onto the "
                "fine grid."
            )
        if self.bands and len(self.bands) != fine.count:
            raise InvalidParameterError(
                f"case {self.name}: {len(self.bands)} band names for {fine.count} bands of "
                f"{self.pairs[0][0]}; give one name per band (or leave bands out)."
            )
        self._check_values()

    def _check_values(self) -> None:
        """The case's scales, before any run: the first pair's fine and coarse images in one
        unit (every method would fail on it, so the table came out empty), and a truth within
        the data range that SSIM and PSNR assume (int16 x 10000 read without fine_scale was
        scored in digital numbers: RMSE 116, PSNR -40 dB, in bold)."""
        keys = f"fine_scale and coarse_scale in [cases.{self.name}]"
        fine = FileSource(self.pairs[0][0], self.fine_scaling)
        coarse = FileSource(self.pairs[0][1], self.coarse_scaling)
        try:
            check_scales(fine, coarse)
        except ScaleMismatchError as exc:
            raise ScaleMismatchError(
                f"case {self.name}: {exc} In a cases file these are {keys}."
            ) from None
        if isinstance(self.data_range, str):
            return
        truth = FileSource(self.truth, self.fine_scaling).sample(SAMPLE_PIXELS)
        values = truth[np.isfinite(truth)]
        if values.size and np.ptp(values) > DATA_RANGE_FACTOR * float(self.data_range):
            raise ScaleMismatchError(
                f"case {self.name}: the truth {self.truth} spans {values.min():.4g} to "
                f"{values.max():.4g} (read with fine_scale {self.fine_scale or 1:g}), far beyond "
                f"the data range {float(self.data_range):g} that SSIM and PSNR assume. Set "
                f"{keys} to bring the images to reflectance (e.g. fine_scale = 0.0001 for "
                'x10000), or data_range = "truth" for other units (temperatures).'
            )


#: A case name becomes part of file names (``figures/NAME_quicklook.png``), so it must be a
#: plain, portable file-name slug: no folders, no "..", nothing hidden, at most 64 characters.
CASE_NAME_RULE = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
_CASE_NAME = re.compile(CASE_NAME_RULE)


def check_case_name(name: object, where: str = "") -> str:
    """``name`` if it is a safe case name (:data:`CASE_NAME_RULE`, no ".."), else an error."""
    if isinstance(name, str) and _CASE_NAME.fullmatch(name) and ".." not in name:
        return name
    prefix = f"{where}: " if where else ""
    raise InvalidParameterError(
        f"{prefix}case name {name!r} is not allowed: case names become file names, so they "
        f"must match {CASE_NAME_RULE} (a letter or digit, then up to 63 letters, digits, '.', "
        "'_' or '-') and must not contain '..'. Rename the case."
    )


CIA_BANDS = ("blue", "green", "red", "nir", "swir1", "swir2")
GRN_RED_NIR = ("green", "red", "nir")


#: The names of the named cases (whether their data is found or not): a user case may not
#: take one, so a name always means the same data.
NAMED_CASE_NAMES = (
    "sample-cia-1pair",
    "sample-cia-2pair",
    "cia-1pair",
    "cia-2pair",
    "boreas-1pair",
    "boreas-2pair",
    "lgc-flood",
    "kranj-2pair",
)


def default_data_dir() -> Path | None:
    """``$STFUSION_DATA`` (an error when it names no folder), else ``shared/data`` beside the
    source tree, if it exists. An installed package looks nowhere else: a ``shared/data``
    beside a virtual environment or ``/usr`` is nobody's benchmark data."""
    env = os.environ.get("STFUSION_DATA")
    if env:
        if not Path(env).is_dir():
            raise InputFileError(
                f"$STFUSION_DATA={env}: no such folder. Point it at the folder of the benchmark "
                "data (shared/data/README.md) or unset it."
            )
        return Path(env)
    repo = Path(__file__).resolve().parents[2]  # src/stfusion/cases.py in a checkout
    cand = repo.parent / "shared" / "data"
    if (repo / "pyproject.toml").is_file() and (cand / "README.md").exists():
        return cand
    return None


def _cia(root: Path, name: str, two: bool, sample: bool) -> Case:
    fine = "CIA_Landsat7_{}.tif"
    coarse = "CIA_MOD09GA_{}.tif"
    dates = ("2001-10-08", "2001-11-02") if two else ("2001-10-17",)
    target = "2001-10-17" if two else "2001-11-02"
    return Case(
        name=name,
        pairs=tuple((str(root / fine.format(d)), str(root / coarse.format(d))) for d in dates),
        target=str(root / coarse.format(target)),
        truth=str(root / fine.format(target)),
        pair_dates=dates,
        target_date=target,
        ratio=10.0,
        bands=CIA_BANDS,
        description="CIA subset (Emelyanova et al. 2013), Landsat-7 + MOD09GA on the Landsat "
        f"grid, 250 x 250 px at 50 m{' (bundled sample, int16 x 1e-4)' if sample else ''}",
    )


def named_cases(data_dir: str | os.PathLike[str] | None = None) -> dict[str, Case]:
    """The named cases: bundled ones always, the others when the data folder exists.

    ``data_dir`` (or ``$STFUSION_DATA``) given but not a folder is an error: falling back to
    the bundled sample would silently bench other data."""
    from stfusion.demo import sample_dir

    if data_dir and not Path(data_dir).is_dir():
        raise InputFileError(
            f"--data-dir {data_dir}: no such folder. Give the folder of the benchmark data "
            "(shared/data/README.md), or leave --data-dir out."
        )
    cases: dict[str, Case] = {}
    sd = sample_dir()
    cases["sample-cia-1pair"] = _cia(sd, "sample-cia-1pair", False, True)
    cases["sample-cia-2pair"] = _cia(sd, "sample-cia-2pair", True, True)
    root = Path(data_dir) if data_dir else default_data_dir()
    if root is None or not root.exists():
        return cases
    cia = root / "cia_e2starfm" / "geotiff_50m"
    cases["cia-1pair"] = _cia(cia, "cia-1pair", False, False)
    cases["cia-2pair"] = _cia(cia, "cia-2pair", True, False)
    b = root / "boreas_estarfm"
    common: dict[str, Any] = {
        "fine_scale": 1e-4,
        "coarse_scale": 1e-4,
        "ratio": 16.0,
        "bands": GRN_RED_NIR,
    }
    boreas = "BOREAS (ESTARFM paper), Landsat ETM+ + MODIS on the Landsat grid, 400 x 400 px"
    cases["boreas-1pair"] = Case(
        name="boreas-1pair",
        pairs=((str(b / "tm0524"), str(b / "modis0524")),),
        target=str(b / "modis0711"),
        truth=str(b / "tm0711"),
        pair_dates=("2001-05-24",),
        target_date="2001-07-11",
        description=boreas,
        **common,
    )
    cases["boreas-2pair"] = Case(
        name="boreas-2pair",
        pairs=(
            (str(b / "tm0524"), str(b / "modis0524")),
            (str(b / "tm0812"), str(b / "modis0812")),
        ),
        target=str(b / "modis0711"),
        truth=str(b / "tm0711"),
        pair_dates=("2001-05-24", "2001-08-12"),
        target_date="2001-07-11",
        description=boreas,
        **common,
    )
    lg = root / "lgc_fsdaf"
    cases["lgc-flood"] = Case(
        name="lgc-flood",
        pairs=((str(lg / "Landsat20041126"), str(lg / "MODIS20041126")),),
        target=str(lg / "MODIS20041228"),
        truth=str(lg / "Landsat20041228"),
        pair_dates=("2004-11-26",),
        target_date="2004-12-28",
        description="LGC flood subset (FSDAF paper), Landsat TM + 16 x 16 block means, "
        "480 x 480 px",
        **common,
    )
    k = root / "kranj_l8_modis"
    lf = k / "landsat" / "filled"
    mf = k / "modis" / "filled"
    cases["kranj-2pair"] = Case(
        name="kranj-2pair",
        pairs=(
            (str(lf / "2020068_191-28.tif_filled_kranj.tif"), str(mf / "2020068_18-04_kranj.tif")),
            (str(lf / "2020093_190-28.tif_filled_kranj.tif"), str(mf / "2020093_18-04_kranj.tif")),
        ),
        target=str(mf / "2020077_18-04_kranj.tif"),
        truth=str(lf / "2020077_190-28.tif_filled_kranj.tif"),
        pair_dates=("2020-03-08", "2020-04-02"),
        target_date="2020-03-17",
        fine_scale=1e-4,
        coarse_scale=1.0,
        ratio=16.0,
        bands=CIA_BANDS,
        description="Kranj (ImageFusion R package), Landsat-8 + MODIS on a 30 m grid, 44 x 45 px; "
        "gap-filled Landsat",
        notes=("band order inferred",),
    )
    return cases


#: The keys of a ``[cases.NAME]`` table.
CASE_KEYS = (
    "pairs",
    "pair_dates",
    "target",
    "truth",
    "target_date",
    "fine_scale",
    "coarse_scale",
    "fine_offset",
    "coarse_offset",
    "ratio",
    "bands",
    "description",
    "data_range",
)


def _number(spec: dict[str, Any], key: str, where: str, least: float, example: str) -> float | None:
    """``spec[key]`` as a finite number above ``least`` (at least 1 for the ratio), or None."""
    value = spec.get(key)
    if value is None:
        return None
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or (value < least if least >= 1 else value <= least):
        bound = f"at least {least:g}" if least >= 1 else f"greater than {least:g}"
        raise InvalidParameterError(
            f"{where}: {key} = {value!r} must be a number {bound} ({example})."
        )
    return float(value)


def _offset(spec: dict[str, Any], key: str, where: str) -> float | None:
    """``spec[key]`` as a finite number (an offset: any sign), or None."""
    value = spec.get(key)
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if value is not None and not ok:
        raise InvalidParameterError(f"{where}: {key} = {value!r} must be a number (e.g. -0.2).")
    return None if value is None else float(value)


def _data_range(spec: dict[str, Any], where: str, truth: str) -> float | str:
    """The case's ``data_range``; left out, ``"truth"`` where the case's band names (or the
    truth file's names or STFUSION_VARIABLE tag) say index or temperature, as ``stfusion
    evaluate``'s ``auto`` (one prediction, one score in both), else 1 (reflectance)."""
    if spec.get("data_range") == "truth":
        return "truth"
    value = _number(spec, "data_range", where, 0.0, 'e.g. 1 for reflectance, or "truth"')
    if value is not None:
        return value
    from stfusion.api import holds_index_or_temperature

    try:
        auto = holds_index_or_temperature(truth, _strings(spec, "bands", where))
    except STFusionError:  # an unreadable truth: the case's own check names it
        auto = False
    return "truth" if auto else 1.0


def _strings(spec: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = spec.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise InvalidParameterError(f'{where}: {key} must be a list of names, e.g. ["red", "nir"].')
    return tuple(value)


def _pair_dates(
    spec: dict[str, Any], pairs: tuple[tuple[str, str], ...], where: str
) -> tuple[str, ...]:
    """The pair dates given (one valid date per pair), else those in the fine files' names,
    else none."""
    from stfusion.dates import parse_date_text

    given = _strings(spec, "pair_dates", where)
    if not given:
        found = [parse_date_text(Path(f).name) for f, _ in pairs]
        return tuple(d.isoformat() for d in found) if all(found) else ()  # type: ignore[union-attr]
    if len(given) != len(pairs):
        raise InvalidParameterError(
            f"{where}: {len(given)} pair_dates for {len(pairs)} pair(s); give one date per pair."
        )
    return tuple(_date(d, "pair_dates", where) for d in given)


def _target_date(spec: dict[str, Any], target: str, where: str) -> str:
    """The target date given, else the one in the target's file name (as ``predict`` reads
    it), else "" with a warning: the bench then cannot check deep methods' training dates."""
    from stfusion.dates import parse_date_text

    if "target_date" in spec:
        return _date(spec["target_date"], "target_date", where)
    day = parse_date_text(Path(target).name)
    if day is not None:
        return day.isoformat()
    warn(
        f"{where}: no target_date and none in the target's file name: a deep model trained on "
        'that date cannot be recognised (add target_date = "YYYY-MM-DD").'
    )
    return ""


def _date(value: object, key: str, where: str) -> str:
    from stfusion.dates import parse_date

    try:
        return parse_date(str(value)).isoformat()
    except STFusionError:
        raise InvalidParameterError(
            f'{where}: {key} {value!r} is not a date; write "YYYY-MM-DD".'
        ) from None


def load_cases_file(path: str | os.PathLike[str]) -> dict[str, Case]:
    """User-defined cases from TOML: one ``[cases.NAME]`` table per case.

    ```toml
    [cases.my-farm]
    pairs = [["L_0524.tif", "M_0524.tif"], ["L_0812.tif", "M_0812.tif"]]
    pair_dates = ["2021-05-24", "2021-08-12"]
    target = "M_0711.tif"
    truth = "L_0711.tif"
    target_date = "2021-07-11"
    fine_scale = 0.0001      # optional (default: file metadata, else 1)
    coarse_scale = 0.0001    # optional
    fine_offset = -0.2       # optional (default: file metadata, else 0), e.g. Landsat C2 L2
    coarse_offset = 0.0      # optional
    ratio = 16               # optional: needed by FSDAF and Fit-FC on one grid, and by ERGAS
    bands = ["green", "red", "nir"]   # optional
    data_range = "truth"     # optional: SSIM/PSNR range (default 1, or "truth" for NDVI/LST bands)
    ```
    Relative paths are relative to the TOML file. Case names become file names: they must
    match :data:`CASE_NAME_RULE` and must not contain ".." (checked here, before any work).
    ``stfusion bench`` refuses a name of :data:`NAMED_CASE_NAMES` (a named case's name must
    always mean its documented data).
    """
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # Python 3.10
        import tomli as tomllib

    p = Path(path)
    if not p.exists():
        raise InputFileError(f"{p}: cases file not found.")
    try:
        data = tomllib.loads(p.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise InvalidParameterError(f"{p}: not valid TOML ({exc}).") from None
    base = p.resolve().parent  # absolute: run.json and the tags record these paths

    def rel(x: str) -> str:
        return str(Path(x) if Path(x).is_absolute() else base / x)

    out: dict[str, Case] = {}
    tables = data.get("cases", {})
    if not isinstance(tables, dict):
        raise InvalidParameterError(f"{p}: 'cases' must hold [cases.NAME] tables.")
    for name in tables:  # every name, before anything else is looked at
        check_case_name(name, str(p))
    for name, spec in tables.items():
        if not isinstance(spec, dict):
            raise InvalidParameterError(f"{p}: case {name!r} must be a [cases.{name}] table.")
        missing = [k for k in ("pairs", "target", "truth") if k not in spec]
        if missing:
            raise InvalidParameterError(f"{p}: case {name!r} lacks {', '.join(missing)}.")
        pairs_spec, files = spec["pairs"], (spec["target"], spec["truth"])
        if not (
            isinstance(pairs_spec, list)
            and pairs_spec
            and all(isinstance(pr, list) and len(pr) == 2 for pr in pairs_spec)
        ) or not all(isinstance(f, str) for f in [*files, *(f for pr in pairs_spec for f in pr)]):
            raise InvalidParameterError(
                f"{p}: case {name!r}: pairs must be a list of [fine, coarse] file names, and "
                'target and truth file names, e.g. pairs = [["L_0524.tif", "M_0524.tif"]].'
            )
        where = f"{p}: case {name!r}"
        unknown = sorted(set(spec) - set(CASE_KEYS))
        if unknown:
            raise InvalidParameterError(
                f"{where}: unknown key(s) {', '.join(unknown)}; a case has {', '.join(CASE_KEYS)}."
            )
        pairs = tuple((rel(f), rel(c)) for f, c in pairs_spec)
        out[name] = Case(
            name=name,
            pairs=pairs,
            target=rel(spec["target"]),
            truth=rel(spec["truth"]),
            pair_dates=_pair_dates(spec, pairs, where),
            target_date=_target_date(spec, rel(spec["target"]), where),
            fine_scale=_number(spec, "fine_scale", where, 0.0, "e.g. 0.0001"),
            coarse_scale=_number(spec, "coarse_scale", where, 0.0, "e.g. 0.0001"),
            fine_offset=_offset(spec, "fine_offset", where),
            coarse_offset=_offset(spec, "coarse_offset", where),
            ratio=_number(spec, "ratio", where, 1.0, "coarse / fine pixel size, e.g. 16"),
            bands=_strings(spec, "bands", where),
            description=str(spec.get("description", f"user case from {p.name}")),
            data_range=_data_range(spec, where, rel(spec["truth"])),
            source=str(p),
        )
    if not out:
        raise InvalidParameterError(f"{p}: no [cases.NAME] tables found.")
    return out
