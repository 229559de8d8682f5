"""Dates from file names and catalogs: the three formats, their precedence, and the errors."""

from __future__ import annotations

import datetime as dt
import warnings
from pathlib import Path

import pytest

from stfusion.dates import (
    DateNotFoundError,
    acquisitions_from,
    by_date,
    date_from_name,
    list_images,
    parse_date,
    parse_date_range,
    read_catalog,
)
from stfusion.errors import InputFileError, InvalidParameterError, STFusionWarning

D = dt.date


@pytest.mark.parametrize(
    "name, expected",
    [
        ("CIA_Landsat7_2001-10-08.tif", D(2001, 10, 8)),
        ("scene_20200308.tif", D(2020, 3, 8)),
        ("2020068_191-28_kranj.tif", D(2020, 3, 8)),  # YYYYDDD, Kranj's names
        ("2020077_190-28.tif_filled_kranj.tif", D(2020, 3, 17)),
        ("2020093_18-04_kranj.tif", D(2020, 4, 2)),
        ("MOD09GA.A2020068.h18v04.061.2020070031530.hdf", D(2020, 3, 8)),  # 13 digits ignored
        # Landsat product id: acquisition date before processing date, first wins
        ("LC08_L2SP_191028_20200308_20200822_02_T1_SR_B4.TIF", D(2020, 3, 8)),
        ("S2A_MSIL2A_20200308T100021_N0214_R122_T33TVM_20200308T130202.tif", D(2020, 3, 8)),
        # YYYY-MM-DD first; else the leftmost digit run, 7 or 8 digits (8 over 7 read an
        # appended processing date: MOD09GA_A2020068_processed_20200310 as 2020-03-10)
        ("x_20190101_2020-03-08.tif", D(2020, 3, 8)),
        ("site2001150_2020-03-08.tif", D(2020, 3, 8)),
        ("2019001_20200308.tif", D(2019, 1, 1)),
        ("MOD09GA_A2020068_processed_20200310.tif", D(2020, 3, 8)),
        ("2020068_18-04_kranj_20200101.tif", D(2020, 3, 8)),
        # an invalid 8-digit run is not a date; the 7-digit rule still applies
        ("20201340_2020068.tif", D(2020, 3, 8)),
        ("2020366.tif", D(2020, 12, 31)),  # leap year
        ("a2020-02-29b.tif", D(2020, 2, 29)),
    ],
)
def test_date_from_name(name: str, expected: dt.date) -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # names with two kinds of dates: the next test
        assert date_from_name(name) == expected
        assert date_from_name(Path("/some/2001-01-01/folder") / name) == expected


def test_a_name_with_dates_of_two_kinds_is_warned_about() -> None:
    """The first date is taken; another of another kind that differs is said, since a
    renamed file may put the acquisition date second. A Landsat product ID's processing
    date (the same kind) is not."""
    import warnings

    from stfusion.errors import STFusionWarning

    with pytest.warns(STFusionWarning, match=r"two kinds \(2020-03-08, taken .*, and 2020-03-10\)"):
        date_from_name("MOD09GA_A2020068_processed_20200310.tif")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        date_from_name("LC08_L2SP_191028_20200308_20200822_02_T1_SR_B4.TIF")
        date_from_name("S2A_MSIL2A_20200308T100021_N0214_R122_T33TVM_20200308T130202.tif")
        date_from_name("2020-03-08_LC08_L2SP_191028_20200308_20200822_02_T1.tif")


def test_names_with_two_kinds_of_dates_are_warned_about_once_per_folder(tmp_path: Path) -> None:
    """One warning per file: a year of MODIS files named ..._processed_... printed 365."""
    for doy in ("068", "069", "070"):
        (tmp_path / f"MOD09GA_A2020{doy}_processed_20200401.tif").write_bytes(b"")
    with pytest.warns(STFusionWarning) as said:
        found = acquisitions_from([str(tmp_path)], "coarse")
    assert [a.date.isoformat() for a in found] == ["2020-03-08", "2020-03-09", "2020-03-10"]
    assert len(said) == 1 and "(2 more file(s) alike)" in str(said[0].message)


@pytest.mark.parametrize(
    "name",
    [
        "scene.tif",
        "2019366.tif",  # day 366 of a common year
        "2020000.tif",  # day 0
        "2019-02-29.tif",  # not a date
        "12345678.tif",  # year 1234: outside 1950-2100
        "tile_20200308123.tif",  # 11 digits: no rule
        "2020_068.tif",  # separated year and day: not a rule
    ],
)
def test_no_date_is_an_error_naming_the_file(name: str) -> None:
    with pytest.raises(DateNotFoundError, match=name.replace(".", r"\.")) as exc:
        date_from_name(f"/data/2020-01-01/{name}")  # the folder's date is never used
    assert "--catalog" in str(exc.value)
    assert isinstance(exc.value, ValueError)


@pytest.mark.parametrize(
    "name",
    ["modis_2020-13-45.tif", "L_2019-02-29.tif", "MOD_2019366.tif", "MOD_20190229.tif"],
)
def test_a_date_that_does_not_exist_is_named(name: str) -> None:
    """It was reported as a missing date ("Names need YYYY-MM-DD ...")."""
    bad = name.split("_")[1].removesuffix(".tif")
    with pytest.raises(DateNotFoundError, match=f"{bad} in the file name is not a date"):
        date_from_name(name)


def test_a_list_of_dates_is_not_taken_for_a_range() -> None:
    """`--date-range 2020-03-09,2020-03-20` said "not a date", as if the dates were wrong."""
    with pytest.raises(InvalidParameterError, match=r"one range START:END .* not a list"):
        parse_date_range("2020-03-09,2020-03-20", option="--date-range")


def test_parse_date_and_ranges() -> None:
    assert parse_date("2020-03-08") == parse_date("20200308") == parse_date("2020068")
    assert parse_date("2020-068") == D(2020, 3, 8)  # day of year, as --date-range 2020-077
    for bad in ("2020-3-8", "March 8", "2020-03-08x", "", "2021-366", "2020-000"):
        with pytest.raises(DateNotFoundError):
            parse_date(bad)
    assert parse_date_range("2020-03-01:2020-04-30") == (D(2020, 3, 1), D(2020, 4, 30))
    assert parse_date_range(":2020-04-30") == (None, D(2020, 4, 30))
    assert parse_date_range("2020-03-01:") == (D(2020, 3, 1), None)
    assert parse_date_range("2020-03-08") == (D(2020, 3, 8), D(2020, 3, 8))
    assert parse_date_range(None) == (None, None)
    with pytest.raises(InvalidParameterError, match="before the start"):
        parse_date_range("2020-04-30:2020-03-01")


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def test_list_images_folder_glob_and_errors(tmp_path: Path) -> None:
    _touch(tmp_path / "a_2020-01-01.tif")
    _touch(tmp_path / "b_2020-01-02.TIF")
    _touch(tmp_path / "c_2020-01-03.hdr")  # ENVI header: GDAL opens the data file
    _touch(tmp_path / ".fused_2020-01-04.tif.partial.tif")  # hidden: never listed
    names = [Path(p).name for p in list_images(tmp_path)]
    assert names == ["a_2020-01-01.tif", "b_2020-01-02.TIF"]
    assert [Path(p).name for p in list_images(str(tmp_path / "a_*.tif"))] == ["a_2020-01-01.tif"]
    with pytest.raises(InputFileError, match="no file matches"):
        list_images(str(tmp_path / "zzz_*.tif"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputFileError, match="no raster files"):
        list_images(empty)
    acq = acquisitions_from([tmp_path], "fine")
    assert [a.date for a in acq] == [D(2020, 1, 1), D(2020, 1, 2)]


def test_two_images_on_one_date_is_an_error(tmp_path: Path) -> None:
    _touch(tmp_path / "LC08_20200308_SR_B4.tif")
    _touch(tmp_path / "LC08_20200308_SR_B5.tif")
    with pytest.raises(InvalidParameterError, match="two fine images on 2020-03-08") as exc:
        by_date(acquisitions_from([tmp_path], "fine"), "fine")
    assert "SR_B4" in str(exc.value) and "SR_B5" in str(exc.value)


def test_catalog(tmp_path: Path) -> None:
    _touch(tmp_path / "imgs" / "L_a.tif")
    _touch(tmp_path / "imgs" / "M_2020-03-09.tif")
    cat = tmp_path / "cat.csv"
    cat.write_text(
        "path,date,sensor,mask\n"
        "imgs/L_a.tif,2020-03-08,Landsat,masks/qa_a.tif\n"
        "imgs/M_2020-03-09.tif,,modis,\n"  # date from the name
        f"{tmp_path / 'x.tif'},2020068,sentinel2,\n"
    )
    rows = read_catalog(cat)
    assert [(Path(r.path).name, r.date, r.sensor) for r in rows] == [
        ("L_a.tif", D(2020, 3, 8), "fine"),
        ("M_2020-03-09.tif", D(2020, 3, 9), "coarse"),
        ("x.tif", D(2020, 3, 8), "fine"),
    ]
    assert rows[0].mask == str(tmp_path / "masks" / "qa_a.tif")
    assert rows[0].path == str(tmp_path / "imgs" / "L_a.tif")
    assert rows[1].mask is None
    # a quoted list of band files: every file relative to the catalog (a user trial: only
    # the first was), a :BANDS suffix kept as it is
    cat.write_text(
        "path,date,sensor\n"
        '"imgs/B2.tif,imgs/B3.tif",2020-03-08,fine\n'
        '"imgs/L_*.tif:SR_B1,SR_B2",2020-03-09,fine\n'
    )
    a, b = read_catalog(cat)
    assert a.path == f"{tmp_path}/imgs/B2.tif,{tmp_path}/imgs/B3.tif"
    assert b.path == f"{tmp_path}/imgs/L_*.tif:SR_B1,SR_B2"


@pytest.mark.parametrize(
    "text, message",
    [
        ("path,sensor\na.tif,fine\n", "lacks column"),
        ("path,date,sensor\na.tif,2020-03-08,aster\n", "line 2: sensor 'aster' unknown"),
        ("path,date,sensor\na.tif,08/03/2020,fine\n", "line 2: date '08/03/2020'"),
        ("path,date,sensor\na.tif,,fine\n", "line 2: a.tif not found"),
        ("path,date,sensor\n", "no rows"),
        # an unquoted list: more fields than the header (a traceback before)
        ("path,date,sensor\na.tif,b.tif,2020-03-08,fine\n", "line 2: more fields than"),
    ],
)
def test_catalog_errors(tmp_path: Path, text: str, message: str) -> None:
    cat = tmp_path / "cat.csv"
    cat.write_text(text)
    with pytest.raises((InvalidParameterError, InputFileError), match=message):
        read_catalog(cat)
    with pytest.raises(InputFileError, match="catalog file not found"):
        read_catalog(tmp_path / "missing.csv")
    # a file that is there but whose name has no date: that is the problem said
    _touch(tmp_path / "undated.tif")
    cat.write_text("path,date,sensor\nundated.tif,,fine\n")
    with pytest.raises(InvalidParameterError, match=r"line 2: .*no acquisition date"):
        read_catalog(cat)
    # ... and the way out is the row's date column, not "list it in a --catalog" (a trial)
    with pytest.raises(InvalidParameterError, match=r"rename the file or fill this row's date"):
        read_catalog(cat)
    # a folder named in a row: said so, not "file not found"
    (tmp_path / "scene").mkdir()
    cat.write_text("path,date,sensor\nscene,,fine\n")
    with pytest.raises(InputFileError, match=r"line 2: scene is a folder; a row names one"):
        read_catalog(cat)


def test_a_folder_of_scene_folders_says_to_give_a_glob(tmp_path: Path) -> None:
    """A user trial: --fine landsat/ holding one folder per scene (as USGS unpacks them)
    said "folder has no raster files" and nothing more."""
    from stfusion.dates import list_images

    _touch(tmp_path / "landsat" / "LC08_L2SP_191028_20200308_20200314_02_T1" / "x_SR_B2.TIF")
    with pytest.raises(InputFileError, match=r"folders below it: give a quoted glob, e\.g\. '"):
        list_images(tmp_path / "landsat")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputFileError, match=r"no raster files \(.*\)\.$"):
        list_images(tmp_path / "empty")
    # a SAFE, five levels down in lower case: the glob has that depth and case (a trial's
    # suggestion '*/*.TIF' matched nothing); a glob of its band folders names them as folders
    safe = tmp_path / "safe" / "S2A_MSIL2A_X.SAFE" / "GRANULE" / "L2A_T" / "IMG_DATA" / "R20m"
    _touch(safe / "T33TVM_20220513T100031_B04_20m.tif")
    with pytest.raises(InputFileError, match=r"e\.g\. '.*/safe/\*/\*/\*/\*/\*/\*\.tif'"):
        list_images(tmp_path / "safe")
    assert list_images(str(tmp_path / "safe/*/*/*/*/*/*.tif")) == [str(next(safe.iterdir()))]
    with pytest.raises(InputFileError, match=r"matches 1 folder\(s\) but no file; .*R20m/\*\.jp2"):
        list_images(str(tmp_path / "safe/*/GRANULE/*/IMG_DATA/R20m"))


def test_catalog_comments_and_line_numbers_after_blank_lines(tmp_path: Path) -> None:
    """A user trial: a '# comment' line was read as a row, and a blank line shifted every
    later line number the errors gave."""
    _touch(tmp_path / "L_2020-03-08.tif")
    cat = tmp_path / "cat.csv"
    cat.write_text("path,date,sensor\n# Landsat first\nL_2020-03-08.tif,,fine\n\nnone.tif,,fine\n")
    with pytest.raises(InputFileError, match=r"line 5: none\.tif not found"):
        read_catalog(cat)
    cat.write_text("path,date,sensor\n# Landsat first\nL_2020-03-08.tif,,fine\n")
    assert [r.date for r in read_catalog(cat)] == [D(2020, 3, 8)]
    # a spreadsheet's trailing commas: empty fields beyond the header are nothing
    cat.write_text("path,date,sensor\nL_2020-03-08.tif,,fine,,\n")
    assert [r.date for r in read_catalog(cat)] == [D(2020, 3, 8)]


def test_series_says_composite_coarse_images_pair_only_on_their_first_day() -> None:
    """An HDF trial: MOD09A1 8-day composites (dated by the period's first day) beside
    Landsat dates inside their periods: those dates were skipped as "without a coarse
    image", and the weeks extrapolated from another pair, without a word."""
    from stfusion.dates import Acquisition
    from stfusion.errors import STFusionWarning
    from stfusion.series.planning import _warn_composites

    def acq(name: str, day: dt.date, sensor: str) -> tuple[dt.date, Acquisition]:
        return day, Acquisition(name, day, sensor)

    fine = dict([acq("L_20011017.tif", dt.date(2001, 10, 17), "fine")])
    a1 = dict([acq("m/MOD09A1.A2001289.h29v12.061.hdf", dt.date(2001, 10, 16), "coarse")])
    with pytest.warns(STFusionWarning, match=r"composites \(MOD09A1\).*so 2001-10-17 pair with"):
        _warn_composites(a1, fine)
    ga = dict([acq("m/MOD09GA.A2001290.h29v12.061.hdf", dt.date(2001, 10, 17), "coarse")])
    with warnings.catch_warnings():
        warnings.simplefilter("error", STFusionWarning)
        _warn_composites(ga, fine)
