"""Masks in ``stfusion predict``: ``--fine-mask``/``--coarse-mask`` and a preset's QA band.

Masking is NaN: a prediction with masks must equal the prediction from copies of the inputs
with NaN where the masks flag, whatever way the masks were given.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio

from conftest import run_cli, write_tif
from stfusion.errors import STFusionWarning

DATA = Path(__file__).resolve().parents[1] / "src" / "stfusion" / "data"
L1017 = DATA / "CIA_Landsat7_2001-10-17.tif"
M1017 = DATA / "CIA_MOD09GA_2001-10-17.tif"
M1102 = DATA / "CIA_MOD09GA_2001-11-02.tif"
STARFM15 = ("-m", "starfm", "-p", "window=15", "-q")
CLOUD = (slice(40, 90), slice(60, 140))  # rows, cols of the cloud in the masks


def _read(path: Path) -> np.ndarray:
    with rasterio.open(path) as ds:
        return ds.read()


def _physical(path: Path) -> tuple[np.ndarray, rasterio.Affine, rasterio.crs.CRS]:
    from stfusion.io import FileSource

    with rasterio.open(path) as ds:
        transform, crs = ds.transform, ds.crs
    return FileSource(str(path)).read(), transform, crs


def _masked_copy(path: Path, out: Path, where: tuple[slice, slice]) -> Path:
    """``path`` in physical units, float32, NaN inside ``where``, with its band names (they
    choose STARFM's similarity bands: red and NIR)."""
    data, transform, crs = _physical(path)
    data[:, where[0], where[1]] = np.nan
    with rasterio.open(path) as ds:
        names = [d or f"band{i + 1}" for i, d in enumerate(ds.descriptions)]
    return write_tif(
        out, data.astype(np.float32), transform=transform, crs=crs, nodata=np.nan, names=names
    )


def _mask(path: Path, like: Path, value: int, clear: int, dtype: str) -> Path:
    with rasterio.open(like) as ds:
        m = np.full((ds.height, ds.width), clear, dtype)
        m[CLOUD] = value
        return write_tif(path, m, transform=ds.transform, crs=ds.crs, dtype=dtype)


def _predict(
    capsys: pytest.CaptureFixture[str],
    fine: object,
    coarse: object,
    target: object,
    out: Path,
    *extra: str,
) -> tuple[int, str]:
    args = ["predict", "--pair", str(fine), str(coarse), "--coarse", str(target)]
    code, _, err = run_cli([*args, "--out", str(out), *STARFM15, *extra], capsys)
    return code, err


def test_masks_equal_nan_in_the_inputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fmask = _mask(tmp_path / "fmask.tif", L1017, 1, 0, "uint8")
    cmask = _mask(tmp_path / "cmask.tif", M1102, 255, 0, "uint8")
    ref = tmp_path / "ref.tif"
    fine_nan = _masked_copy(L1017, tmp_path / "f_nan.tif", CLOUD)
    target_nan = _masked_copy(M1102, tmp_path / "t_nan.tif", CLOUD)
    assert _predict(capsys, fine_nan, M1017, target_nan, ref)[0] == 0
    out = tmp_path / "masked.tif"
    code, err = _predict(
        capsys,
        L1017,
        M1017,
        M1102,
        out,
        "--fine-mask",
        str(fmask),
        "--coarse-mask",
        "-",
        "--coarse-mask",
        str(cmask),
    )
    assert code == 0, err
    np.testing.assert_array_equal(_read(out), _read(ref))
    with rasterio.open(out) as ds:
        masks = json.loads(ds.tags()["STFUSION_INPUTS"])["masks"]
    assert [(m["image"], m["mask"], m["kind"]) for m in masks] == [
        (str(L1017), str(fmask), "binary"),
        (str(M1102), str(cmask), "binary"),
    ]
    plain = tmp_path / "plain.tif"
    assert _predict(capsys, L1017, M1017, M1102, plain)[0] == 0
    assert not np.array_equal(_read(plain), _read(ref), equal_nan=True)


def test_mask_count_must_match_the_images(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cmask = _mask(tmp_path / "cmask.tif", M1102, 1, 0, "uint8")
    code, err = _predict(
        capsys, L1017, M1017, M1102, tmp_path / "x.tif", "--coarse-mask", str(cmask)
    )
    assert code == 2  # a usage error, before any file is opened
    assert "1 --coarse-mask for 2 coarse image(s)" in err and "'-' for none" in err
    assert not (tmp_path / "x.tif").exists()
    # flags with nothing to apply them to
    code, err = _predict(
        capsys, L1017, M1017, M1102, tmp_path / "x.tif", "--coarse-mask-flags", "cloudy"
    )
    assert code == 2 and "--coarse-mask-flags given without --coarse-mask" in err


def test_mask_is_an_input_never_overwritten(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fmask = _mask(tmp_path / "fmask.tif", L1017, 1, 0, "uint8")
    before = fmask.read_bytes()
    code, err = _predict(
        capsys, L1017, M1017, M1102, fmask, "--fine-mask", str(fmask), "--overwrite"
    )
    assert code != 0 and "fmask.tif" in err
    assert fmask.read_bytes() == before


def _product(d: Path, day: str, names: tuple[str, ...], qa: str, qa_value: int, clear: int) -> None:
    """The CIA Landsat image of ``day`` as one int16 file per band plus a QA file."""
    src = DATA / f"CIA_Landsat7_{day[:4]}-{day[4:6]}-{day[6:]}.tif"
    with rasterio.open(src) as ds:
        data = ds.read()
        for b, name in enumerate(names):
            write_tif(
                d / f"X_{day}_{name}.TIF",
                data[b],
                transform=ds.transform,
                crs=ds.crs,
                nodata=ds.nodata,
                dtype="int16",
            )
    _mask(d / f"X_{day}_{qa}.TIF", src, qa_value, clear, "uint16")


#: preset, its bands, QA file, a cloudy and a clear QA value
PRODUCTS = [
    (
        "landsat457-c2l2",
        ("SR_B1", "SR_B2", "SR_B3", "SR_B4", "SR_B5", "SR_B7"),
        "QA_PIXEL",
        22280,
        21824,
    ),
    ("sentinel2-l2a", ("B02", "B03", "B04", "B8A", "B11", "B12"), "SCL", 9, 4),
]


@pytest.mark.parametrize(("preset", "names", "qa", "cloudy", "clear"), PRODUCTS)
def test_preset_masks_with_its_qa_file(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    preset: str,
    names: tuple[str, ...],
    qa: str,
    cloudy: int,
    clear: int,
) -> None:
    _product(tmp_path, "20011017", names, qa, cloudy, clear)
    unit = ("--fine-preset", preset, "--fine-scale", "0.0001", "--fine-offset", "0")
    ref = tmp_path / "ref.tif"
    fine_nan = _masked_copy(L1017, tmp_path / "f_nan.tif", CLOUD)
    assert _predict(capsys, fine_nan, M1017, M1102, ref)[0] == 0
    out = tmp_path / "auto.tif"
    code, err = _predict(capsys, tmp_path / "X_20011017_*.TIF", M1017, M1102, out, *unit)
    assert code == 0, err
    assert "not masked" not in err
    np.testing.assert_array_equal(_read(out), _read(ref))
    # the bands alone, without the QA file: unmasked, and a warning says so
    plain = tmp_path / "plain.tif"
    assert _predict(capsys, L1017, M1017, M1102, plain)[0] == 0
    bands_only = tmp_path / f"X_20011017_{names[0][:1]}*.TIF"
    with pytest.warns(STFusionWarning, match=f"no {qa} file.*--fine-mask"):
        code, err = _predict(capsys, bands_only, M1017, M1102, tmp_path / "bare.tif", *unit)
    assert code == 0, err
    np.testing.assert_array_equal(_read(tmp_path / "bare.tif"), _read(plain))


def test_scl_classes() -> None:
    from stfusion.qa import SCL_CLASSES, invalid_from

    scl = np.arange(13, dtype=np.uint8)
    bad = invalid_from(scl, "sentinel2_scl")
    assert bad.tolist() == [
        True,
        True,
        False,
        True,
        False,
        False,
        False,
        False,
        True,
        True,
        True,
        False,
        True,
    ]
    with_snow = invalid_from(scl, "sentinel2_scl", ("default", "snow"))
    assert with_snow[SCL_CLASSES["snow"]] and not with_snow[SCL_CLASSES["water"]]
    assert invalid_from(np.array([np.nan, 4.0]), "sentinel2_scl").tolist() == [True, False]


def test_series_warns_for_dates_without_their_qa_file(tmp_path: Path) -> None:
    import datetime as dt

    from stfusion.dates import Acquisition
    from stfusion.inputs import get_preset, stack_band_files

    preset = get_preset("landsat89-c2l2")
    d1, d2 = dt.date(2020, 1, 1), dt.date(2020, 1, 17)
    items = [
        Acquisition(str(tmp_path / f"A_{n}.TIF"), d1, "fine", None) for n in ("SR_B2", "QA_PIXEL")
    ]
    items += [
        Acquisition(str(tmp_path / f"B_{n}.TIF"), d2, "fine", None) for n in ("SR_B2", "SR_B3")
    ]
    with pytest.warns(
        STFusionWarning, match=r"no QA_PIXEL file among the fine images of 2020-01-17,"
    ):
        stacked = stack_band_files(items, "fine", preset.bands, preset, auto_mask=True)
    masks = {a.date: a.mask for a in stacked}
    assert masks == {d1: str(tmp_path / "A_QA_PIXEL.TIF"), d2: None}


def test_two_scenes_on_one_date_are_named() -> None:
    """A user trial: the band files of two path/rows of one date in one folder were stacked
    as one 14-band image; the date failed with a 2500-character reason, a wrong "no
    QA_PIXEL" warning, and the run exited 0."""
    import datetime as dt

    from stfusion.dates import Acquisition
    from stfusion.errors import InvalidParameterError
    from stfusion.inputs import get_preset, stack_band_files

    preset = get_preset("landsat89-c2l2")
    day = dt.date(2020, 3, 8)
    items = [
        Acquisition(f"LC08_L2SP_{pr}_20200308_20200314_02_T1_{b}.TIF", day, "fine", None)
        for pr in ("191028", "191029")
        for b in ("SR_B2", "SR_B3", "QA_PIXEL")
    ]
    with pytest.raises(InvalidParameterError, match=r"2020-03-08 belong to 2 scenes \(191028"):
        stack_band_files(items, "fine", preset.bands, preset, auto_mask=True)
    (one,) = stack_band_files(items[:3], "fine", preset.bands, preset, auto_mask=True)
    assert one.mask is not None and one.mask.endswith("QA_PIXEL.TIF")
    # Landsat 7 and 8 dates in one series: each preset refused the other's dates, naming
    # the other preset (a circle); one error names both and the way out now
    l7 = [
        Acquisition(
            f"LE07_L2SP_191028_20200402_20200902_02_T1_{b}.TIF",
            day.replace(month=4, day=2),
            "fine",
            None,
        )
        for b in ("SR_B1", "SR_B2", "QA_PIXEL")
    ]
    for name in ("landsat89-c2l2", "landsat457-c2l2"):
        p = get_preset(name)
        with pytest.raises(InvalidParameterError, match=r"mix Landsat 7, 8.*--catalog row"):
            stack_band_files([*items[:3], *l7], "fine", p.bands, p, auto_mask=True)


@pytest.mark.parametrize("kind", ["binary", "landsat_qa_pixel"])
def test_a_finer_mask_flags_every_pixel_holding_an_invalid_mask_pixel(
    tmp_path: Path, kind: str
) -> None:
    """A 25 m mask on the 50 m image: one cloudy 25 m pixel in a 2 x 2 block makes the 50 m
    pixel invalid (nearest neighbour picked one of the four and missed three in four)."""
    from stfusion.io import FileSource
    from stfusion.qa import MaskedSource

    with rasterio.open(L1017) as ds:
        t, crs, h, w = ds.transform, ds.crs, ds.height, ds.width
    rng = np.random.default_rng(0)
    blocks = rng.random((h, w)) < 0.1  # the 50 m pixels with a cloudy sub-pixel
    corner = rng.integers(0, 2, (2, h, w))  # which of the four sub-pixels
    cloudy, clear = (1, 0) if kind == "binary" else (22280, 21824)
    fine_mask = np.full((2 * h, 2 * w), clear, np.uint16)
    r, c = np.nonzero(blocks)
    fine_mask[2 * r + corner[0, r, c], 2 * c + corner[1, r, c]] = cloudy
    half = rasterio.Affine(t.a / 2, 0, t.c, 0, t.e / 2, t.f)
    path = write_tif(tmp_path / "m25.tif", fine_mask, transform=half, crs=crs, dtype="uint16")
    masked = MaskedSource(FileSource(str(L1017)), str(path), kind)
    assert masked.aggregated_
    np.testing.assert_array_equal(masked.invalid()[0], blocks)
    assert np.isnan(masked.read()[:, blocks]).all()


def test_a_qa_file_given_as_a_mask_with_its_preset_is_decoded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--fine-preset with --fine-mask QA_PIXEL.TIF and no kind: the QA band is decoded with
    the preset's kind (it was read as binary: every pixel invalid, "no valid pixels")."""
    names = PRODUCTS[0][1]
    _product(tmp_path, "20011017", names, "QA_PIXEL", 22280, 21824)
    unit = ("--fine-preset", "landsat457-c2l2", "--fine-scale", "0.0001", "--fine-offset", "0")
    ref = tmp_path / "ref.tif"
    fine_nan = _masked_copy(L1017, tmp_path / "f_nan.tif", CLOUD)
    assert _predict(capsys, fine_nan, M1017, M1102, ref)[0] == 0
    out = tmp_path / "given.tif"
    qa = tmp_path / "X_20011017_QA_PIXEL.TIF"
    bands = tmp_path / "X_20011017_S*.TIF"
    code, err = _predict(capsys, bands, M1017, M1102, out, *unit, "--fine-mask", str(qa))
    assert code == 0, err
    np.testing.assert_array_equal(_read(out), _read(ref))


def test_a_mask_covering_part_of_the_image_is_warned_about(tmp_path: Path) -> None:
    """Outside a mask every pixel is invalid: a mask of rows 0-199 of 250 dropped a fifth
    of the image silently. And a mask elsewhere says "mask bounds", not "coarse bounds"."""
    from stfusion.errors import GridMismatchError
    from stfusion.io import FileSource
    from stfusion.qa import MaskedSource

    with rasterio.open(L1017) as ds:
        t, crs = ds.transform, ds.crs
    part = write_tif(tmp_path / "part.tif", np.zeros((200, 250), np.uint8), transform=t, crs=crs)
    with pytest.warns(STFusionWarning, match=r"the mask .*part\.tif covers only about 80%"):
        masked = MaskedSource(FileSource(str(L1017)), str(part))
    assert np.isnan(masked.read()[:, 200:]).all()
    far = rasterio.Affine(t.a, 0, t.c + 1e6, 0, t.e, t.f)
    away = write_tif(tmp_path / "far.tif", np.zeros((250, 250), np.uint8), transform=far, crs=crs)
    with pytest.raises(GridMismatchError, match=r"do not overlap \(mask bounds"):
        MaskedSource(FileSource(str(L1017)), str(away))


def test_series_masks_that_are_the_presets_qa_files_take_its_kind(tmp_path: Path) -> None:
    """--fine-preset with --fine-mask DIR of QA_PIXEL files: decoded as QA_PIXEL, as predict
    does (they were read as binary, 21824 "clear" invalid: every date skipped)."""
    import datetime as dt

    from stfusion.dates import Acquisition
    from stfusion.inputs import get_preset, preset_mask_kind

    preset = get_preset("landsat457-c2l2")
    day = dt.date(2001, 10, 17)
    qa = {day: Acquisition("L.tif", day, "fine", str(tmp_path / "LE07_20011017_QA_PIXEL.tif"))}
    own = {day: Acquisition("L.tif", day, "fine", str(tmp_path / "cloud_20011017.tif"))}
    assert preset_mask_kind(preset, ["m/"], "binary", qa) == "landsat_qa_pixel"
    assert preset_mask_kind(preset, ["m/"], "binary", own) == "binary"  # a mask of your own
    assert preset_mask_kind(preset, [], "binary", own) == "landsat_qa_pixel"  # no mask given
    assert preset_mask_kind(preset, ["m/"], "sentinel2_scl", qa) == "sentinel2_scl"  # given


def test_a_qa_band_read_as_binary_that_masks_everything_says_so(
    small_tifs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A QA band given without its kind is read as binary: every pixel holds some bits, so
    every pixel was masked, and the error said only to check the nodata."""
    with rasterio.open(small_tifs["c1"]) as ds:
        qa = write_tif(
            tmp_path / "state.tif",
            np.full((ds.height, ds.width), 8, np.uint16),
            transform=ds.transform,
            dtype="uint16",
        )
    s = small_tifs
    args = ["predict", "--pair", str(s["f1"]), str(s["c1"]), "--coarse", str(s["c2"])]
    args += ["--coarse-mask", str(qa), "--coarse-mask", "-", "--out", str(tmp_path / "o.tif")]
    with pytest.warns(STFusionWarning):
        code, _, err = run_cli(args, capsys)
    assert code == 1 and "read as binary" in err and "--coarse-mask-kind" in err


def test_the_sentinel2_offset_must_fit_the_processing_baseline_the_path_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The sentinel2-l2a preset's -0.1 (BOA_ADD_OFFSET -1000, baseline 04.00+) was applied
    to every product: an N0300 product read 0.1 too low, without a word."""
    from stfusion.errors import InvalidParameterError
    from stfusion.inputs import check_s2_offset, get_preset

    names = ("B02", "B03", "B04", "B8A", "B11", "B12")
    old = tmp_path / "S2A_MSIL2A_20011017T100021_N0300_R122_T33TVM_20011017T130202.SAFE"
    old.mkdir()
    _product(old, "20011017", names, "SCL", 9, 4)
    fine = old / "X_20011017_*.TIF"
    code, err = _predict(
        capsys, fine, M1017, M1102, tmp_path / "p.tif", "--fine-preset", "sentinel2-l2a"
    )
    assert code == 1 and "baseline 03.00" in err and "give --fine-offset 0" in err, err
    code, err = _predict(
        capsys,
        fine,
        M1017,
        M1102,
        tmp_path / "p.tif",
        "--fine-preset",
        "sentinel2-l2a",
        "--fine-offset",
        "0",
    )
    assert "baseline" not in err  # fits: on to the prediction (whatever its scale checks say)
    s2 = get_preset("sentinel2-l2a")
    with pytest.raises(InvalidParameterError, match="leave --fine-offset out"):
        check_s2_offset(
            s2,
            0.0,
            ["/d/S2B_MSIL2A_20220131T101231_N0400_R022_T33TUM.SAFE/B04.jp2"],
            "--fine-offset",
        )
    check_s2_offset(
        s2, -0.1, ["/d/S2B_MSIL2A_20220131T101231_N0510_R022_T33TUM.SAFE/B04.jp2"], "--fine-offset"
    )
    check_s2_offset(
        s2, -0.1, ["/cogs/S2B_33TUM_20220131_0_L2A/B04.tif"], "--fine-offset"
    )  # unknown


def test_a_series_checks_the_sentinel2_offset_too(tmp_path: Path) -> None:
    from stfusion.errors import InvalidParameterError
    from stfusion.series import run_series

    old = tmp_path / "S2A_MSIL2A_20011017T100021_N0300_R122_T33TVM_20011017T130202.SAFE"
    old.mkdir()
    _product(old, "20011017", ("B02", "B03", "B04", "B8A", "B11", "B12"), "SCL", 9, 4)
    with pytest.raises(InvalidParameterError, match=r"baseline 03\.00.*give --fine-offset 0"):
        run_series(
            tmp_path / "out", fine=[str(old)], coarse=[str(M1017), str(M1102)],
            fine_preset="sentinel2-l2a",
        )  # fmt: skip


def test_a_presets_fill_is_not_a_setting_of_the_series(tmp_path: Path) -> None:
    """The preset's fill read as nodata (2026-12-06) must not change the settings a series
    records, or every earlier output of a preset run is refused as "made with other
    settings" (exit 1 without --overwrite); a fill the user gives still is one."""
    from stfusion.series import SeriesConfig
    from stfusion.series.prepare import prepare, settings_of

    d = tmp_path / "L"
    d.mkdir()
    _product(
        d, "20011017", ("SR_B1", "SR_B2", "SR_B3", "SR_B4", "SR_B5", "SR_B7"), "QA_PIXEL", 1, 21824
    )
    common = {
        "fine": [str(d)],
        "coarse": [str(M1017), str(M1102)],
        "fine_preset": "landsat457-c2l2",
    }
    cfg = SeriesConfig(str(tmp_path / "out"), fine_scale=1e-4, fine_offset=0.0, **common)
    assert "nodata" not in settings_of(prepare(cfg))
    given = SeriesConfig(
        str(tmp_path / "out"), fine_scale=1e-4, fine_offset=0.0, fine_nodata=-1, **common
    )
    assert settings_of(prepare(given))["nodata"] == [-1, None]
