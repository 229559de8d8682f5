"""File and folder names as users have them (a names trial, 2026-12-07): commas in folder
names ("Smith, J"), GDAL names, sidecar files beside the images, ``~``, names that are not
UTF-8. Each test is one thing the trial found wrong."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio

from conftest import KRANJ, need, run_cli
from stfusion.dates import split_listed
from stfusion.demo import sample_dir
from stfusion.series import read_summary, run_series


def test_a_comma_inside_a_name_does_not_split_a_list(tmp_path: Path) -> None:
    folder = tmp_path / "Smith, J"
    folder.mkdir()
    a, b = folder / "a.tif", folder / "b.tif"
    a.touch()
    b.touch()
    assert split_listed(str(a)) == [str(a)]
    assert split_listed(f"{a},{b}") == [str(a), str(b)]
    assert split_listed("x.tif,y.tif") == ["x.tif", "y.tif"]  # nothing exists: at each comma
    assert split_listed("Smith, J/a.tif", base=tmp_path) == ["Smith, J/a.tif"]


def test_a_series_in_a_folder_with_a_comma_sees_a_changed_input(tmp_path: Path) -> None:
    """The recorded inputs were split at the folder's comma (two names that exist nowhere,
    no size, no time), so a rerun kept every output after a coarse image was replaced."""
    k = need(KRANJ)
    fine, coarse = tmp_path / "Smith, J" / "L", tmp_path / "Smith, J" / "M"
    fine.mkdir(parents=True)
    coarse.mkdir()
    for day in ("068", "093"):
        shutil.copy(next((k / "landsat" / "filled").glob(f"2020{day}_*")), fine)
    for day in ("068", "069", "070", "093"):
        shutil.copy(next((k / "modis" / "filled").glob(f"2020{day}_*")), coarse)
    out = tmp_path / "Smith, J" / "out"
    kw = {"fine": [str(fine)], "coarse": [str(coarse)], "fine_scale": 1e-4, "method": "additive"}
    run_series(out, **kw)
    with rasterio.open(out / "fused_2020-03-10.tif") as ds:
        before = ds.read()
        assert str(coarse / "2020070_18-04_kranj.tif") in ds.tags()["STFUSION_SERIES_COARSE"]
    shutil.copy(
        next((k / "modis" / "filled").glob("2020085_*")), coarse / "2020070_18-04_kranj.tif"
    )
    run_series(out, **kw)
    rows = {r["date"]: r for r in read_summary(out / "summary.csv")}
    assert "kept" not in rows["2020-03-10"]["reason"], rows["2020-03-10"]
    assert "kept" in rows["2020-03-09"]["reason"], rows["2020-03-09"]
    with rasterio.open(out / "fused_2020-03-10.tif") as ds:
        assert not np.array_equal(ds.read(), before)


def test_a_band_choice_in_a_folder_with_a_comma(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--bands 1,2,3`` (and ``FILE:1,2,3``) over files in ``com,ma/`` said "file not
    found" for files that exist."""
    folder = tmp_path / "com,ma"
    shutil.copytree(sample_dir(), folder)
    f = {n: str(folder / f"CIA_{n}.tif") for n in ("Landsat7_2001-10-17", "MOD09GA_2001-10-17")}
    out = tmp_path / "p.tif"
    args = ["predict", "-m", "additive", "-q", "--bands", "1,2,3"]
    args += ["--pair", f["Landsat7_2001-10-17"], f["MOD09GA_2001-10-17"]]
    args += ["--coarse", str(folder / "CIA_MOD09GA_2001-11-02.tif"), "--out", str(out)]
    code, _, err = run_cli(args, capsys)
    assert code == 0, err
    truth = f"{folder / 'CIA_Landsat7_2001-11-02.tif'}:1,2,3"
    code, said, err = run_cli(["evaluate", str(out), truth], capsys)
    assert code == 0 and "mean" in said, err


def _kranj_copies(
    tmp_path: Path, days_fine: tuple[str, ...], days_coarse: tuple[str, ...]
) -> tuple[Path, Path]:
    k = need(KRANJ)
    fine, coarse = tmp_path / "L", tmp_path / "M"
    fine.mkdir()
    coarse.mkdir()
    for day in days_fine:
        shutil.copy(next((k / "landsat" / "filled").glob(f"2020{day}_*")), fine)
    for day in days_coarse:
        shutil.copy(next((k / "modis" / "filled").glob(f"2020{day}_*")), coarse)
    return fine, coarse


def test_names_that_are_not_utf8_are_refused_before_any_work(tmp_path: Path) -> None:
    """A series over a file named ``caf\\xe9_20200308.tif`` (Latin-1) was a
    UnicodeEncodeError traceback; ``--out-dir`` so named failed every date, and ``bench
    --out`` so named ran every method first."""
    from stfusion.bench import run_bench
    from stfusion.cases import named_cases
    from stfusion.errors import InputFileError

    fine, coarse = _kranj_copies(tmp_path, ("068", "093"), ("068", "069", "093"))
    latin1 = os.fsdecode(b"caf\xe9_")
    first = next(fine.glob("2020068_*"))
    first.rename(fine / (latin1 + first.name))
    kw = {"fine": [str(fine)], "coarse": [str(coarse)], "fine_scale": 1e-4, "method": "additive"}
    with pytest.raises(InputFileError, match="fine file name is not valid UTF-8"):
        run_series(tmp_path / "out", **kw)
    assert not (tmp_path / "out").exists()
    (fine / (latin1 + first.name)).rename(first)
    bad_out = tmp_path / os.fsdecode(b"o\xe9")
    with pytest.raises(InputFileError, match="output file name is not valid UTF-8"):
        run_series(bad_out, **kw)
    with pytest.raises(InputFileError, match="output file name is not valid UTF-8"):
        run_bench([named_cases()["cia-1pair"]], ["additive"], bad_out, figures=False)
    assert not bad_out.exists()


def test_a_glob_leaves_out_the_metadata_beside_the_images(tmp_path: Path) -> None:
    """``--coarse 'M/MOD09GA*'`` beside LP DAAC's ``.hdf.xml`` files, and ``'M/*'`` beside
    GDAL's ``.aux.xml``, were "two coarse images on 2001-10-17"; ENVI images without an
    extension had "folder has no raster files" and no hint (now the folder lists them)."""
    from stfusion.dates import list_images
    from stfusion.errors import InputFileError

    m = tmp_path / "M"
    m.mkdir()
    for name in ("MOD09GA.A2001290.h09v05.061.hdf", "CIA_MOD09GA_2001-10-17.tif"):
        (m / name).touch()
    for name in ("MOD09GA.A2001290.h09v05.061.hdf.xml", "CIA_MOD09GA_2001-10-17.tif.aux.xml"):
        (m / name).touch()
    assert [Path(f).name for f in list_images(str(m / "*"))] == [
        "CIA_MOD09GA_2001-10-17.tif",
        "MOD09GA.A2001290.h09v05.061.hdf",
    ]
    with pytest.raises(InputFileError, match="matches only files that are not images"):
        list_images(str(m / "*.xml"))
    envi = tmp_path / "L"
    envi.mkdir()
    (envi / "Landsat20041126.hdr").touch()
    with pytest.raises(InputFileError, match=r"ENVI headers \(.hdr\): give its images as"):
        list_images(str(envi))  # a header alone
    (envi / "Landsat20041126").touch()
    (envi / "notes.txt").touch()
    (envi / "notes.txt.hdr").touch()  # no image, whatever a header says
    assert [Path(f).name for f in list_images(str(envi / "*"))] == ["Landsat20041126"]
    # a folder lists its ENVI images by the headers beside them (no raster extension)
    (envi / "tm0711.bsq").touch()
    (envi / "tm0711.hdr").touch()
    assert [Path(f).name for f in list_images(str(envi))] == ["Landsat20041126", "tm0711.bsq"]
    with pytest.raises(InputFileError, match=r"write \[\[\] for a \["):
        list_images(str(tmp_path / "data [v1]" / "*.tif"))


def test_files_a_folder_cannot_list_are_said(tmp_path: Path) -> None:
    """A link to nowhere and ``x_20200310.tif `` (a trailing space) were left out of a series
    without a word: no row in the summary, nothing on screen."""
    from stfusion.dates import list_images
    from stfusion.errors import STFusionWarning

    (tmp_path / "x_20200308.tif").touch()
    (tmp_path / "x_20200310.tif ").touch()
    (tmp_path / "x_20200311.tif").symlink_to(tmp_path / "nowhere.tif")
    (tmp_path / "notes.txt").touch()  # not meant: not said
    with pytest.warns(STFusionWarning, match="not read") as said:
        assert [Path(f).name for f in list_images(str(tmp_path))] == ["x_20200308.tif"]
    text = str(said[0].message)
    assert "'x_20200310.tif ' (its name ends in a space" in text
    assert "x_20200311.tif (a link to" in text and "notes.txt" not in text


def test_a_tilde_is_the_home_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--out-dir=~/fused`` and a quoted ``'~/data/L'`` reach stfusion as typed: a folder
    named ``~`` was made in the working folder, and inputs were "no such folder"."""
    from stfusion.dates import list_images

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    shutil.copytree(sample_dir(), tmp_path / "data")
    assert len(list_images("~/data/CIA_MOD*")) == 3
    d = "~/data/CIA_"
    args = ["predict", "-m", "additive", "-q", "--out", "~/p.tif"]
    args += ["--pair", f"{d}Landsat7_2001-10-17.tif", f"{d}MOD09GA_2001-10-17.tif"]
    code, _, err = run_cli([*args, "--coarse", f"{d}MOD09GA_2001-11-02.tif"], capsys)
    assert code == 0, err
    assert (tmp_path / "p.tif").exists() and not (tmp_path / "~").exists()


def test_a_gdal_name_is_an_input_of_a_series(tmp_path: Path) -> None:
    """``--fine '/vsizip/cia data.zip/L.tif'`` was "no such folder or file" (docs/inputs.md:
    any name GDAL opens is an input), and a series over an archive kept its outputs when the
    archive changed (the name was no file, so nothing was seen)."""
    import zipfile

    from stfusion.dates import list_images
    from stfusion.io.files import file_stat

    archive = tmp_path / "cia data.zip"
    src = sample_dir() / "CIA_Landsat7_2001-10-17.tif"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(src, "in dir/L_2001-10-17.tif")
    name = f"/vsizip/{archive}/in dir/L_2001-10-17.tif"
    assert list_images(name) == [name]
    stat = file_stat(name, inode=True)
    assert stat[0] == str(archive.resolve()) and stat[1] == archive.stat().st_size


def test_smaller_name_troubles(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A catalog row ``"#10_2020-03-10.tif"`` was dropped as a comment; predict advised a
    --catalog it has not; a .zip given as an image had no /vsizip/ hint; a name over 255
    bytes was a bare "[Errno 36] File name too long"."""
    from stfusion.api import _names_dated
    from stfusion.dates import read_catalog
    from stfusion.io.files import unreadable

    (tmp_path / "#10_2020-03-10.tif").touch()
    (tmp_path / "cat.csv").write_text(
        'path,date,sensor\n# a comment,,\n"#10_2020-03-10.tif",,coarse\n'
    )
    rows = read_catalog(tmp_path / "cat.csv")
    assert [Path(a.path).name for a in rows] == ["#10_2020-03-10.tif"]
    why = _names_dated([("L_2001-10-35.tif", "M_2001-10-17.tif")], "M_2001-11-02.tif")[2]
    assert "--catalog" not in why and "rename the file" in why, why
    said = str(unreadable("cia.zip", RuntimeError("not recognized")))
    assert "/vsizip/cia.zip/IMAGE.tif" in said, said
    d = sample_dir() / "CIA_"
    args = ["predict", "-m", "additive", "-q", "--out", str(tmp_path / ("p" * 300 + ".tif"))]
    args += ["--pair", f"{d}Landsat7_2001-10-17.tif", f"{d}MOD09GA_2001-10-17.tif"]
    code, _, err = run_cli([*args, "--coarse", f"{d}MOD09GA_2001-11-02.tif"], capsys)
    assert code == 1 and "over the file system's limit" in err, err


def test_an_out_dir_that_is_a_file_is_said_so(tmp_path: Path) -> None:
    from stfusion.errors import InputFileError

    fine, coarse = _kranj_copies(tmp_path, ("068", "093"), ("068", "093"))
    (tmp_path / "out").write_text("mine")
    kw = {"fine": [str(fine)], "coarse": [str(coarse)], "fine_scale": 1e-4, "method": "additive"}
    with pytest.raises(InputFileError, match="a file, not a folder"):
        run_series(tmp_path / "out", **kw)
    assert (tmp_path / "out").read_text() == "mine"


def test_gdal_names_in_a_catalog_are_relative_to_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A catalog row ``/vsizip/cia data.zip/L.tif`` opened the archive relative to the
    working folder, not the catalog's (a run from the parent folder failed), and
    ``/vsicurl/https://...`` became ``https:/`` (``Path`` folded the ``//``)."""
    import zipfile

    from stfusion.dates import catalog_path, read_catalog

    sub = tmp_path / "w9"
    sub.mkdir()
    with zipfile.ZipFile(sub / "cia data.zip", "w") as z:
        z.write(sample_dir() / "CIA_Landsat7_2001-10-17.tif", "in dir/L_2001-10-17.tif")
    (sub / "cat.csv").write_text(
        "path,date,sensor\n/vsizip/cia data.zip/in dir/L_2001-10-17.tif,,fine\n"
    )
    monkeypatch.chdir(tmp_path)
    (row,) = read_catalog(sub / "cat.csv")
    assert row.path == f"/vsizip/{sub}/cia data.zip/in dir/L_2001-10-17.tif"
    with rasterio.open(row.path) as ds:
        assert ds.count == 6
    base = Path("/data/cat")
    assert catalog_path(base, "/vsicurl/https://h/x.tif") == "/vsicurl/https://h/x.tif"
    assert catalog_path(base, 'NETCDF:"f.nc":refl') == 'NETCDF:"/data/cat/f.nc":refl'
    assert catalog_path(base, "/vsizip/a.zip/x.tif:1,2") == "/vsizip//data/cat/a.zip/x.tif:1,2"


@pytest.mark.parametrize("name", ["-", "p.tif ", " p.tif", "C:\\out\\p.tif", "C:/out/p.tif"])
def test_output_names_that_are_typos_are_refused(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    name: str,
) -> None:
    """``--out -``, ``'p.tif '`` and ``'C:\\out\\p.tif'`` were written as files of those
    literal names."""
    monkeypatch.chdir(tmp_path)
    d = sample_dir() / "CIA_"
    args = ["predict", "-m", "additive", "-q", "--out", name]
    args += ["--pair", f"{d}Landsat7_2001-10-17.tif", f"{d}MOD09GA_2001-10-17.tif"]
    code, _, err = run_cli([*args, "--coarse", f"{d}MOD09GA_2001-11-02.tif"], capsys)
    assert code != 0 and "not an output file name" in err, err
    assert not list(tmp_path.iterdir())


def test_inspect_says_a_fine_image_given_again_as_the_coarse_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`inspect F.tif F.tif` (or a link to F) showed no PROBLEM, where predict refuses the
    pair; other bands of one stack (--fine-bands / --coarse-bands) are no such mistake."""
    fine = sample_dir() / "CIA_Landsat7_2001-10-08.tif"
    link = tmp_path / "link.tif"
    link.symlink_to(fine)
    for second in (fine, link):
        code, out, _ = run_cli(["inspect", str(fine), str(second)], capsys)
        assert code == 1 and "PROBLEM   the same file as the fine image" in out, out
    args = ["inspect", str(fine), str(link), "--fine-bands", "1,2", "--coarse-bands", "3,4"]
    code, out, _ = run_cli(args, capsys)
    assert "the same file as the fine image" not in out, out


def test_a_stack_glob_that_matches_metadata_says_the_glob(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--pair 'LE07_*' ...` beside the scene's MTL.txt: the error named MTL.txt as not a
    raster, not the glob that took it in as a band."""
    shutil.copy(sample_dir() / "CIA_Landsat7_2001-10-08.tif", tmp_path / "LE07_x_SR_B1.tif")
    (tmp_path / "LE07_x_MTL.txt").write_text("GROUP = LANDSAT_METADATA_FILE\n")
    code, out, _ = run_cli(["inspect", str(tmp_path / "LE07_*")], capsys)
    assert code == 1 and "LE07_x_MTL.txt: not a raster" in out, out
    assert "LE07_* matched it among 2 files" in out and "only the band files" in out, out
