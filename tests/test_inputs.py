"""Inputs as users have them: MODIS HDF4-EOS, Landsat band files, band choice, presets."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.warp import Resampling, reproject, transform_bounds

from conftest import run_cli, write_tif
from stfusion.errors import InvalidParameterError

DATA = Path(__file__).resolve().parents[1] / "src" / "stfusion" / "data"
L1017 = DATA / "CIA_Landsat7_2001-10-17.tif"
M1017 = DATA / "CIA_MOD09GA_2001-10-17.tif"
M1102 = DATA / "CIA_MOD09GA_2001-11-02.tif"

SINU = CRS.from_proj4("+proj=sinu +lon_0=0 +x_0=0 +y_0=0 +R=6371007.181 +units=m +no_defs")
MODIS_PIXEL = 1111950.5197665 / 2400  # 500 m MODIS grid (463.3 m)
MODIS_X0, MODIS_Y0 = -20015109.354, 10007554.677  # upper left of the MODIS tile grid
FILL = -28672
#: CIA MODIS band i (blue, green, red, nir, swir1, swir2) is MODIS band MODIS_NUMBER[i].
MODIS_NUMBER = (3, 4, 1, 2, 6, 7)


def _sinusoidal_dn(src: Path) -> tuple[np.ndarray, Affine]:
    """The CIA MODIS image on a 500 m MODIS sinusoidal grid (block-averaged), as int16 DN."""
    with rasterio.open(src) as ds:
        data = ds.read(masked=True).astype(np.float32).filled(np.nan) * np.float32(1e-4)
        left, bottom, right, top = transform_bounds(ds.crs, SINU, *ds.bounds)
        c0 = int(np.floor((left - MODIS_X0) / MODIS_PIXEL)) - 1
        c1 = int(np.ceil((right - MODIS_X0) / MODIS_PIXEL)) + 1
        r0 = int(np.floor((MODIS_Y0 - top) / MODIS_PIXEL)) - 1
        r1 = int(np.ceil((MODIS_Y0 - bottom) / MODIS_PIXEL)) + 1
        w, h = c1 - c0 + (c1 - c0) % 2, r1 - r0 + (r1 - r0) % 2  # even: the 1 km grid halves it
        transform = Affine(
            MODIS_PIXEL,
            0,
            MODIS_X0 + c0 * MODIS_PIXEL,
            0,
            -MODIS_PIXEL,
            MODIS_Y0 - r0 * MODIS_PIXEL,
        )
        out = np.full((data.shape[0], h, w), np.nan, np.float32)
        reproject(
            data,
            out,
            src_transform=ds.transform,
            src_crs=ds.crs,
            dst_transform=transform,
            dst_crs=SINU,
            resampling=Resampling.average,
            src_nodata=np.nan,
            dst_nodata=np.nan,
        )
    dn = np.where(np.isfinite(out), np.round(out * 1e4), FILL).astype(np.int16)
    return dn, transform


def _struct_metadata(grids: list[tuple[str, int, int, Affine, list[str]]]) -> str:
    """StructMetadata.0 as MODIS writes it (GridStructure with one GROUP per grid)."""
    lines = ["GROUP=SwathStructure", "END_GROUP=SwathStructure", "GROUP=GridStructure"]
    for k, (name, w, h, t, fields) in enumerate(grids, start=1):
        lrx, lry = t.c + w * t.a, t.f + h * t.e
        lines += [
            f"\tGROUP=GRID_{k}",
            f'\t\tGridName="{name}"',
            f"\t\tXDim={w}",
            f"\t\tYDim={h}",
            f"\t\tUpperLeftPointMtrs=({t.c:.6f},{t.f:.6f})",
            f"\t\tLowerRightMtrs=({lrx:.6f},{lry:.6f})",
            "\t\tProjection=GCTP_SNSOID",
            "\t\tProjParams=(6371007.181000,0,0,0,0,0,0,0,0,0,0,0,0)",
            "\t\tSphereCode=-1",
            "\t\tGridOrigin=HDFE_GD_UL",
            "\t\tGROUP=Dimension",
            "\t\tEND_GROUP=Dimension",
            "\t\tGROUP=DataField",
        ]
        for j, f in enumerate(fields, start=1):
            lines += [
                f"\t\t\tOBJECT=DataField_{j}",
                f'\t\t\t\tDataFieldName="{f}"',
                "\t\t\t\tDataType=DFNT_INT16",
                '\t\t\t\tDimList=("YDim","XDim")',
                f"\t\t\tEND_OBJECT=DataField_{j}",
            ]
        lines += [
            "\t\tEND_GROUP=DataField",
            "\t\tGROUP=MergedFields",
            "\t\tEND_GROUP=MergedFields",
            f"\tEND_GROUP=GRID_{k}",
        ]
    lines += [
        "END_GROUP=GridStructure",
        "GROUP=PointStructure",
        "END_GROUP=PointStructure",
        "END",
        "",
    ]
    return "\n".join(lines)


def write_mod09ga_hdf(
    path: Path, dn: np.ndarray, transform: Affine, state_1km: np.ndarray | None = None
) -> Path:
    """A small MOD09GA-like HDF4-EOS file: 500 m sur_refl_b01_1..b07_1 and a 1 km state
    (``state_1km``, default all clear)."""
    from pyhdf.SD import SD, SDC

    h, w = dn.shape[1:]
    fields = [f"sur_refl_b0{b}_1" for b in range(1, 8)]
    t1km = Affine(transform.a * 2, 0, transform.c, 0, transform.e * 2, transform.f)
    sd = SD(str(path), SDC.WRITE | SDC.CREATE)
    for b, name in enumerate(fields, start=1):
        band = dn[MODIS_NUMBER.index(b)] if b in MODIS_NUMBER else np.full((h, w), FILL, np.int16)
        sds = sd.create(name, SDC.INT16, (h, w))
        sds.setfillvalue(FILL)
        sds.scale_factor = 0.0001
        sds.add_offset = 0.0
        sds.units = "reflectance"
        sds.attr("valid_range").set(SDC.INT16, [-100, 16000])
        sds[:] = band
        sds.endaccess()
    state = sd.create("state_1km_1", SDC.UINT16, (h // 2, w // 2))
    state[:] = np.zeros((h // 2, w // 2), np.uint16) if state_1km is None else state_1km
    state.endaccess()
    meta = _struct_metadata(
        [
            ("MODIS_Grid_1km_2D", w // 2, h // 2, t1km, ["state_1km_1"]),
            ("MODIS_Grid_500m_2D", w, h, transform, fields),
        ]
    )
    sd.attr("StructMetadata.0").set(SDC.CHAR, meta)
    sd.end()
    return path


@pytest.fixture(scope="module")
def modis_native(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """CIA MODIS (10-17, 11-02) on the 500 m sinusoidal grid: HDF4-EOS and GeoTIFF twins."""
    pytest.importorskip("pyhdf")
    d = tmp_path_factory.mktemp("hdf")
    out: dict[str, Path] = {}
    for key, src, day in (("c1", M1017, "2001290"), ("c2", M1102, "2001306")):
        dn, t = _sinusoidal_dn(src)
        out[key] = write_mod09ga_hdf(d / f"MOD09GA.A{day}.h29v12.061.hdf", dn, t)
        out[key + "_tif"] = write_tif(
            d / f"MOD09GA_sinu_A{day}.tif", dn, transform=t, crs=SINU, nodata=FILL, dtype="int16"
        )
    return out


def _read(path: Path) -> np.ndarray:
    with rasterio.open(path) as ds:
        return ds.read()


#: STARFM with a 15 px window, quiet: the runs that compare two ways of giving the inputs.
STARFM15 = ("-m", "starfm", "-p", "window=15", "-q")


def _predict(
    capsys: pytest.CaptureFixture[str],
    pair: tuple[object, object],
    coarse: object,
    out: Path,
    *extra: str,
) -> tuple[int, str]:
    """``stfusion predict --pair FINE COARSE --coarse C --out OUT EXTRA``: (exit status, stderr)."""
    args = ["predict", "--pair", str(pair[0]), str(pair[1]), "--coarse", str(coarse)]
    code, _, err = run_cli([*args, "--out", str(out), *extra], capsys)
    return code, err


# ------------------------------------------------------------------------------- HDF4


def test_hdf_fields_scale_fill_and_sinusoidal_grid(modis_native: dict[str, Path]) -> None:
    from stfusion.io import FileSource, Scaling

    hdf_path, tif = modis_native["c1"], modis_native["c1_tif"]
    src = FileSource(f"{hdf_path}:sur_refl_b03_1,sur_refl_b04_1,sur_refl_b01_1")
    assert src.band_names == ("sur_refl_b03_1", "sur_refl_b04_1", "sur_refl_b01_1")
    assert (src.scale, src.offset, src.scale_source) == (0.0001, 0.0, "file metadata")
    twin = FileSource(str(tif), Scaling(0.0001, 0.0))
    assert src.grid.same_as(twin.grid)
    assert src.grid.crs.to_dict()["proj"] == "sinu"
    np.testing.assert_array_equal(src.read(), twin.read()[:3])
    assert np.isnan(src.read()).any()  # the fill value is NaN
    # numbers are 1-based in file order (b01..b07, then state_1km_1): MODIS band numbers
    by_number = FileSource(str(hdf_path), Scaling(bands=("3", "4", "1")))
    np.testing.assert_array_equal(by_number.read(), src.read())
    # halo outside the scene is NaN, a window reads what the whole image has
    win = rasterio.windows.Window(2, 3, 5, 4)
    np.testing.assert_array_equal(src.read(win, halo=1)[:, 1:-1, 1:-1], src.read()[:, 3:7, 2:7])


def test_hdf_without_band_choice_lists_the_grids(modis_native: dict[str, Path]) -> None:
    from stfusion.errors import InvalidParameterError
    from stfusion.io import FileSource

    with pytest.raises(InvalidParameterError, match=r"MODIS_Grid_1km_2D: state_1km_1.*preset"):
        FileSource(str(modis_native["c1"]))
    with pytest.raises(InvalidParameterError, match=r"'sur_refl_b09_1' matches no band"):
        FileSource(f"{modis_native['c1']}:sur_refl_b09_1")


def test_predict_through_hdf_equals_geotiff_twin(
    modis_native: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = tmp_path / "tif.tif"
    tifs = (L1017, modis_native["c1_tif"]), modis_native["c2_tif"]
    code, err = _predict(capsys, *tifs, ref, *STARFM15, "--coarse-scale", "0.0001")
    assert code == 0, err
    out = tmp_path / "hdf.tif"
    hdfs = (L1017, modis_native["c1"]), modis_native["c2"]
    code, err = _predict(capsys, *hdfs, out, *STARFM15, "--coarse-bands", "3,4,1,2,6,7")
    assert code == 0, err
    expected = _read(ref)
    assert np.isfinite(expected).mean() > 0.9
    np.testing.assert_allclose(_read(out), expected, rtol=1e-6, atol=1e-7, equal_nan=True)
    # the preset chooses the same fields in the same order
    out2 = tmp_path / "preset.tif"
    code, err = _predict(capsys, *hdfs, out2, *STARFM15, "--coarse-preset", "mod09ga")
    assert code == 0, err
    np.testing.assert_allclose(_read(out2), expected, rtol=1e-6, atol=1e-7, equal_nan=True)


def test_preset_masks_hdf_with_its_state_on_the_native_grid(
    modis_native: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the target's state_1km flags one 1 km pixel block cloudy: the prediction equals the one
    # from its GeoTIFF twin with fill in the 500 m pixels that block covers
    dn, t = _sinusoidal_dn(M1102)
    state = np.zeros((dn.shape[1] // 2, dn.shape[2] // 2), np.uint16)
    state[1:3, 1:3] = 1  # cloudy
    cloudy = write_mod09ga_hdf(tmp_path / "MOD09GA.A2001306.h29v12.061.hdf", dn, t, state)
    dn[:, 2:6, 2:6] = FILL
    twin = write_tif(tmp_path / "twin.tif", dn, transform=t, crs=SINU, nodata=FILL, dtype="int16")
    ref, out = tmp_path / "ref.tif", tmp_path / "hdf.tif"
    pair = (L1017, modis_native["c1_tif"])
    code, err = _predict(capsys, pair, twin, ref, *STARFM15, "--coarse-scale", "0.0001")
    assert code == 0, err
    pair = (L1017, modis_native["c1"])
    code, err = _predict(capsys, pair, cloudy, out, *STARFM15, "--coarse-preset", "mod09ga")
    assert code == 0, err
    assert np.isnan(_read(ref)).any()  # the cloud left pixels no clear neighbour predicts
    np.testing.assert_allclose(_read(out), _read(ref), rtol=1e-6, atol=1e-7, equal_nan=True)


def test_inspect_shows_hdf_fields(
    modis_native: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(
        ["inspect", str(L1017), str(modis_native["c1"]), "--coarse-preset", "mod09ga"], capsys
    )
    assert code == 0, err
    assert "HDF4-EOS" in out and "sur_refl_b03_1" in out and "+proj=sinu" in out
    assert "value * 0.0001 + 0 (given)" in out or "file metadata" in out
    assert "aligned" in out


def test_hdf_without_pyhdf_says_install(
    modis_native: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from stfusion import hdf
    from stfusion.errors import MissingDependencyError
    from stfusion.io import FileSource

    monkeypatch.setattr(hdf, "_pyhdf", lambda: None)
    monkeypatch.setattr(hdf, "gdal_has_hdf4", lambda: False)
    with pytest.raises(MissingDependencyError, match=r"install stfusion\[hdf\]"):
        FileSource(f"{modis_native['c1']}:1,2")


# --------------------------------------------------------------------------- band files


@pytest.fixture
def landsat_band_files(tmp_path: Path) -> dict[str, Path]:
    """The CIA Landsat sample split into one GeoTIFF per band, named as Landsat C2 does."""
    out: dict[str, Path] = {}
    with rasterio.open(L1017) as ds:
        data = ds.read()
        names = ("SR_B1", "SR_B2", "SR_B3", "SR_B4", "SR_B5", "SR_B7")
        for b, name in enumerate(names):
            p = tmp_path / f"LE07_L2SP_093084_20011017_20200917_02_T1_{name}.TIF"
            write_tif(
                p,
                data[b],
                transform=ds.transform,
                crs=ds.crs,
                nodata=ds.nodata,
                dtype="int16",
                scales=[ds.scales[b]],
            )
            out[name] = p
        qa = tmp_path / "LE07_L2SP_093084_20011017_20200917_02_T1_QA_PIXEL.TIF"
        write_tif(
            qa,
            np.full(data.shape[1:], 21824, np.uint16),
            transform=ds.transform,
            crs=ds.crs,
            dtype="uint16",
        )
        out["QA_PIXEL"] = qa
    return out


def test_band_files_stack_in_band_order(landsat_band_files: dict[str, Path]) -> None:
    from stfusion.io import FileSource

    d = landsat_band_files["SR_B1"].parent
    stack = FileSource(str(d / "LE07_*_SR_B[1-7].TIF"))
    assert stack.band_names == ("SR_B1", "SR_B2", "SR_B3", "SR_B4", "SR_B5", "SR_B7")
    assert (stack.scale, stack.scale_source) == (0.0001, "file metadata")
    whole = FileSource(str(L1017))
    np.testing.assert_array_equal(stack.read(), whole.read())
    np.testing.assert_array_equal(stack.sample(1000), whole.sample(1000))
    # a comma list in another order is read in that order
    listed = ",".join(str(landsat_band_files[n]) for n in ("SR_B4", "SR_B3"))
    np.testing.assert_array_equal(FileSource(listed).read(), whole.read()[[3, 2]])


def test_evaluate_against_band_files(
    landsat_band_files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """A truth given as Landsat band files (a glob, as USGS delivers it) crashed evaluate
    ('BandStack' object has no attribute 'fill_')."""
    d = landsat_band_files["SR_B1"].parent
    glob_spec = str(d / "LE07_*_SR_B[1-7].TIF")
    code, out, err = run_cli(["evaluate", str(L1017), glob_spec, "--json"], capsys)
    assert code == 0, err
    scored = json.loads(out)
    assert scored["rmse"]["mean"] == 0.0 and scored["inputs"]["truth"]["fill"] == []


def test_predict_from_band_files_is_bit_identical(
    landsat_band_files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = landsat_band_files["SR_B1"].parent
    ref, out = tmp_path / "ref.tif", tmp_path / "bands.tif"
    code, err = _predict(capsys, (L1017, M1017), M1102, ref, *STARFM15)
    assert code == 0, err
    # all files of the scene, QA_PIXEL too: the preset chooses SR_B1..SR_B7 (and scales them)
    preset = ("--fine-preset", "landsat457-c2l2", "--fine-scale", "0.0001", "--fine-offset", "0")
    code, err = _predict(capsys, (d / "LE07_*.TIF", M1017), M1102, out, *STARFM15, *preset)
    assert code == 0, err
    np.testing.assert_array_equal(_read(out), _read(ref))
    # the Landsat 8/9 preset on Landsat 7 files: refused, naming the one to give
    other = ("--fine-preset", "landsat89-c2l2", "--fine-scale", "0.0001", "--fine-offset", "0")
    code, err = _predict(capsys, (d / "LE07_*.TIF", M1017), M1102, out, *STARFM15, *other)
    assert code == 1 and "a Landsat 7 file" in err and "--fine-preset landsat457-c2l2" in err


def test_landsat_4_7_preset_on_landsat_8_files_is_refused(
    landsat_band_files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Landsat 8 delivers SR_B1 (coastal aerosol) to SR_B7: the Landsat 4-7 preset matched
    every band and fused coastal as blue, NIR as SWIR1, with no word."""
    for path in landsat_band_files.values():
        path.rename(path.with_name(path.name.replace("LE07_", "LC08_")))
    d = landsat_band_files["SR_B1"].parent
    preset = ("--fine-preset", "landsat457-c2l2", "--fine-scale", "0.0001", "--fine-offset", "0")
    out = tmp_path / "out.tif"
    code, err = _predict(capsys, (d / "LC08_*.TIF", M1017), M1102, out, *STARFM15, *preset)
    assert code == 1 and "a Landsat 8 file" in err and "--fine-preset landsat89-c2l2" in err
    assert not out.exists()


def test_numbers_in_a_glob_are_the_band_numbers_of_the_names(
    landsat_band_files: dict[str, Path],
) -> None:
    from stfusion.io import FileSource

    d = landsat_band_files["SR_B1"].parent
    # QA_PIXEL sorts first: by position, band 2 would be SR_B1 (and 1 QA_PIXEL)
    stack = FileSource(f"{d / 'LE07_*.TIF'}:2,3,4")
    assert stack.band_names == ("SR_B2", "SR_B3", "SR_B4")
    np.testing.assert_array_equal(stack.read(), FileSource(str(L1017)).read()[1:4])
    with pytest.raises(InvalidParameterError, match=r"no band's name carries the number 6.*SR_B7"):
        FileSource(f"{d / 'LE07_*.TIF'}:6")
    with pytest.raises(InvalidParameterError, match=r"band 1: .*Give band names"):
        FileSource(f"{d / 'LE07_*_SR_B[2-7].TIF'}:1")
    # one raster's bands are counted by position, whatever their names
    assert FileSource(f"{L1017}:2").read().shape[0] == 1


def test_band_count_error_suggests_the_option(
    landsat_band_files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    four = (landsat_band_files["SR_B1"].parent / "LE07_*_SR_B[1-4].TIF", M1017)
    code, err = _predict(capsys, four, M1102, tmp_path / "x.tif")
    assert code == 1
    assert "--coarse-bands" in err and "--fine-bands" in err
    code, err = _predict(capsys, four, M1102, tmp_path / "x.tif", "--coarse-bands", "1,2,3,4", "-q")
    assert code == 0, err


def test_bands_choose_and_order(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from stfusion.errors import InvalidParameterError
    from stfusion.io import FileSource, Scaling

    whole = FileSource(str(L1017)).read()
    by_name = FileSource(str(L1017), Scaling(bands=("nir", "red")))
    assert by_name.band_names == ("nir", "red")
    np.testing.assert_array_equal(by_name.read(), whole[[3, 2]])
    np.testing.assert_array_equal(FileSource(f"{L1017}:4,3").read(), whole[[3, 2]])
    with pytest.raises(InvalidParameterError, match=r"band 9 asked for.*6 band"):
        FileSource(f"{L1017}:9")
    from stfusion.errors import STFusionWarning

    with pytest.warns(STFusionWarning, match=r"6 given more than once"):
        FileSource(f"{L1017}:3,4,1,2,6,6")
    out = tmp_path / "p.tif"
    code, err = _predict(
        capsys, (L1017, M1017), M1102, out, "-m", "additive", "--bands", "red,nir", "-q"
    )
    assert code == 0, err
    with rasterio.open(out) as ds:
        assert ds.descriptions == ("red", "nir")


def test_presets_table() -> None:
    from stfusion.inputs import PRESETS, get_preset, resolve_role

    assert {"landsat89-c2l2", "landsat457-c2l2", "mod09ga", "mcd43a4", "sentinel2-l2a"} <= set(
        PRESETS
    )
    assert all(len(p.bands) == 6 for p in PRESETS.values())
    scaling, p = resolve_role(None, None, None, "landsat9-c2l2")
    assert (scaling.scale, scaling.offset, scaling.bands[0], p.mask_kind) == (
        2.75e-5,
        -0.2,
        "SR_B2",
        "landsat_qa_pixel",
    )
    scaling, _ = resolve_role(None, 0.0, "B02,B03", "sentinel2-l2a")
    assert (scaling.scale, scaling.offset, scaling.bands) == (0.0001, 0.0, ("B02", "B03"))
    assert get_preset("mod09ga").mask_kind == "mod09_state_1km"


# ------------------------------------------------------------------- evaluate scale check


def test_evaluate_refuses_int16_truth_against_reflectance(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from stfusion.metrics import evaluate

    with rasterio.open(L1017) as ds:
        dn, t, crs = ds.read(), ds.transform, ds.crs
    refl = write_tif(
        tmp_path / "pred.tif", dn * np.float32(1e-4), transform=t, crs=crs, dtype="float32"
    )
    truth = write_tif(tmp_path / "truth.tif", dn, transform=t, crs=crs, dtype="int16")
    code, out, err = run_cli(["evaluate", str(refl), str(truth)], capsys)
    assert code == 1 and "rmse" not in out
    assert "--truth-scale 0.0001" in err and "10000x" in err
    code, out, err = run_cli(
        ["evaluate", str(refl), str(truth), "--truth-scale", "0.0001", "--json"], capsys
    )
    assert code == 0, err
    assert json.loads(out)["rmse"]["mean"] == pytest.approx(0.0, abs=1e-6)
    from stfusion.errors import STFusionWarning

    with pytest.warns(STFusionWarning, match=r"--truth-scale 0\.0001"):
        code, out, err = run_cli(["evaluate", str(refl), str(truth), "--no-scale-check"], capsys)
    assert code == 0 and "rmse" in out
    with pytest.warns(STFusionWarning, match=r"truth_scale=0\.0001"):
        evaluate(dn * 1e-4, dn.astype(np.float64))
    # the prediction x 10000 against reflectance: scale the prediction down, not the truth up
    # (the advice was --truth-scale 10000, whose SSIM and PSNR then used data range 1)
    with pytest.warns(
        STFusionWarning, match=r"prediction is stored scaled\. Give --pred-scale 0\.0001"
    ):
        evaluate(dn.astype(np.float64), dn * 1e-4)
    code, _, err = run_cli(["evaluate", str(truth), str(refl)], capsys)
    assert code == 1 and "--pred-scale 0.0001" in err


def test_scale_advice_replaces_the_scale_already_given(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With a wrong scale already given, the advice named the factor's own correction:
    ``--truth-scale 0.01`` on x10000 values was told "give --truth-scale 0.01" (a loop), and
    ``--fine-scale 10`` was told 1e-05, which passed with a warning and fused 10x off."""
    with rasterio.open(L1017) as ds:
        dn, t, crs = ds.read(), ds.transform, ds.crs
    refl = write_tif(
        tmp_path / "pred.tif", dn * np.float32(1e-4), transform=t, crs=crs, dtype="float32"
    )
    truth = write_tif(tmp_path / "truth.tif", dn, transform=t, crs=crs, dtype="int16")
    for given in ("0.01", "0.003", "1"):
        code, _, err = run_cli(["evaluate", str(refl), str(truth), "--truth-scale", given], capsys)
        assert code == 1 and "--truth-scale 0.0001 " in err, (given, err)
    coarse = write_tif(tmp_path / "c.tif", dn * np.float32(1e-4), transform=t, crs=crs)
    target = write_tif(tmp_path / "t.tif", dn * np.float32(1.1e-4), transform=t, crs=crs)
    args = ["predict", "--pair", str(truth), str(coarse), "--coarse", str(target)]
    code, _, err = run_cli([*args, "--out", str(tmp_path / "o.tif"), "--fine-scale", "10"], capsys)
    said = " ".join(err.split())
    assert code == 1 and "give --fine-scale 0.0001 (Python: fine_scaling=0.0001 in fit()" in said
    assert "fine_scale=0.0001 in run_prediction() and SeriesConfig)" in said, err


def _split_landsat(src: Path, d: Path, day: str, qa_value: int = 21824) -> None:
    with rasterio.open(src) as ds:
        data = ds.read()
        for b, name in enumerate(("SR_B1", "SR_B2", "SR_B3", "SR_B4", "SR_B5", "SR_B7")):
            write_tif(
                d / f"LE07_L2SP_093084_{day}_20200917_02_T1_{name}.TIF",
                data[b],
                transform=ds.transform,
                crs=ds.crs,
                nodata=ds.nodata,
                dtype="int16",
            )
        write_tif(
            d / f"LE07_L2SP_093084_{day}_20200917_02_T1_QA_PIXEL.TIF",
            np.full(data.shape[1:], qa_value, np.uint16),
            transform=ds.transform,
            crs=ds.crs,
            dtype="uint16",
        )


def test_series_stacks_band_files_of_each_date(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bands = tmp_path / "landsat"
    bands.mkdir()
    for day in ("20011008", "20011017"):
        _split_landsat(DATA / f"CIA_Landsat7_{day[:4]}-{day[4:6]}-{day[6:]}.tif", bands, day)
    common = [
        "series",
        "-m",
        "starfm",
        "-p",
        "window=15",
        "-q",
        "--dates",
        "2001-11-02",
        "--coarse",
        str(DATA / "CIA_MOD09GA_*.tif"),
    ]
    code, _, err = run_cli(
        [
            *common,
            "--fine",
            str(DATA / "CIA_Landsat7_2001-10-08.tif"),
            "--fine",
            str(L1017),
            "--out-dir",
            str(tmp_path / "ref"),
        ],
        capsys,
    )
    assert code == 0, err
    # every file of each scene; the preset chooses SR_B1..SR_B7 and masks with QA_PIXEL (clear)
    code, _, err = run_cli(
        [
            *common,
            "--fine",
            str(bands),
            "--fine-preset",
            "landsat457-c2l2",
            "--fine-scale",
            "0.0001",
            "--fine-offset",
            "0",
            "--out-dir",
            str(tmp_path / "bands"),
        ],
        capsys,
    )
    assert code == 0, err
    name = "fused_2001-11-02.tif"
    np.testing.assert_array_equal(_read(tmp_path / "bands" / name), _read(tmp_path / "ref" / name))
    # without a band choice two files on one date stay an error, which names the options
    args = [*common, "--fine", str(bands), "--out-dir", str(tmp_path / "x")]
    code, _, err = run_cli(args, capsys)
    assert code != 0 and "--fine-bands" in err


def test_a_qa_file_named_without_the_hdf_suffix_is_the_presets_qa() -> None:
    """A MOD09GA state band saved as ``..._state_1km.tif`` (the HDF field is state_1km_1) was
    read as a binary mask: every coarse pixel masked, a series of nothing but observations."""
    from stfusion.inputs import get_preset, mask_kind_for, qa_name

    mod = get_preset("mod09ga")
    assert mask_kind_for(mod, None, "MOD09GA.A2001290.h29v12.061.state_1km.tif") == (
        "mod09_state_1km"
    )
    assert mask_kind_for(mod, None, "x.state_1km_1.tif") == "mod09_state_1km"
    assert mask_kind_for(mod, None, "clouds.tif") == "binary"
    assert not qa_name("state_1km_1", "state_1km_2") and qa_name("QA_PIXEL", "LC08_x_QA_PIXEL")


def test_a_missing_band_file_is_named(landsat_band_files: dict[str, Path]) -> None:
    """A user trial: a date whose SR_B5 file was not downloaded said "band 'SR_B5' matches no
    band" after the whole comma list of its files, and advised --fine-bands."""
    from stfusion.errors import InvalidParameterError
    from stfusion.io import FileSource, Scaling

    landsat_band_files["SR_B5"].unlink()
    d = landsat_band_files["SR_B1"].parent
    with pytest.raises(InvalidParameterError, match=r"no file of band 'SR_B5' among the 5 band"):
        FileSource(str(d / "LE07_*_SR_B*.TIF"), Scaling(bands=("SR_B3", "SR_B4", "SR_B5")))


def test_globs_get_the_date_and_own_target_warnings(
    landsat_band_files: dict[str, Path], tmp_path: Path
) -> None:
    """A user trial: a glob pair of two dates 25 days apart, and a target glob naming the
    pair's own coarse files, were not warned about (single files were)."""
    import shutil
    import warnings

    from stfusion.errors import STFusionWarning
    from stfusion.scene_checks import check_pair_files

    d = landsat_band_files["SR_B1"].parent
    glob = str(d / "LE07_*_SR_B*.TIF")
    late = tmp_path / "MOD09GA.A2001315.h30v12.061.tif"  # 2001-11-11, 25 days after 10-17
    shutil.copy(M1102, late)
    with pytest.warns(STFusionWarning, match=r"pair 1: .* 2001-10-17 .* 2001-11-11, 25 days"):
        check_pair_files([(glob, str(late))], str(M1102))
    own = str(tmp_path / "MOD09GA.A2001315.*")
    with pytest.warns(STFusionWarning, match=r"is the coarse image of pair 1"):
        check_pair_files([(glob, str(late))], own)
    with warnings.catch_warnings():
        warnings.simplefilter("error", STFusionWarning)
        check_pair_files([(glob, str(M1017))], str(M1102))


def test_inspect_says_which_qa_file_a_preset_masks_with(
    landsat_band_files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """inspect said nothing of the QA band predict would mask with, and called the preset's
    scale and fill 'given'."""
    d = landsat_band_files["SR_B1"].parent
    for name, path in landsat_band_files.items():  # as Collection 2 stores them: DN
        if name.startswith("SR_"):
            with rasterio.open(path) as ds:
                refl, profile = ds.read(1) * ds.scales[0], ds.profile
            dn = np.round((refl + 0.2) / 2.75e-5).astype(np.uint16)
            write_tif(path, dn, transform=profile["transform"], crs=profile["crs"], dtype="uint16")
    args = ["inspect", str(d / "LE07_*.TIF"), str(M1017), "--fine-preset", "landsat457-c2l2"]
    code, out, err = run_cli(args, capsys)
    assert code == 0, err
    flat = " ".join(out.split())
    assert "QA_PIXEL.TIF masks it (landsat_qa_pixel, --fine-preset landsat457-c2l2)" in flat
    assert "(--fine-preset landsat457-c2l2)" in flat.split("scaling")[1].split("valid")[0]
    # and its fill value (it said "0 given", though no --fine-nodata was given)
    assert "0 from --fine-preset landsat457-c2l2 (as stored)" in flat.split("nodata")[1]
    # the valid share as predict reads it, under the QA mask (a user trial: 100 %, and the
    # masked clouds' value called an undeclared fill)
    valid = flat.split("valid ")[1].split(";")[0]
    assert "% of pixels after its QA mask (100.0% before)" in valid, valid
    code, out, _ = run_cli([*args[:3], "--fine-preset", "landsat89-c2l2"], capsys)
    assert code == 1 and "PROBLEM" in out and "a Landsat 7 file" in " ".join(out.split())


def test_a_quality_bit_field_is_not_bounded_by_its_valid_range(tmp_path: Path) -> None:
    """MOD09GA's state_1km declares valid_range 0-57335, a bound on no bit field: state
    57352 (clear land, internal snow, salt pan, a cloud nearby) was read as NaN, so masked
    whatever the flags. Reflectance fields keep their valid range."""
    pytest.importorskip("pyhdf")
    from pyhdf.SD import SD, SDC

    from stfusion import hdf

    path = tmp_path / "MOD09GA.A2020068.h29v12.061.hdf"
    sd = SD(str(path), SDC.WRITE | SDC.CREATE)
    for name, dtype, values, bounds in (
        ("state_1km_1", SDC.UINT16, np.array([[57352, 8]], np.uint16), [0, 57335]),
        ("sur_refl_b01_1", SDC.INT16, np.array([[20000, 500]], np.int16), [-100, 16000]),
    ):
        sds = sd.create(name, dtype, (1, 2))
        sds.attr("valid_range").set(dtype, bounds)
        sds[:] = values
        sds.endaccess()
    sd.end()
    assert hdf.is_bit_field("sur_refl_state_500m") and hdf.is_bit_field("QC_500m_1")
    assert not hdf.is_bit_field("sur_refl_b01_1")
    fields = {f.name: f for f in hdf.read_info(str(path)).fields}
    state = hdf.read_field(str(path), fields["state_1km_1"], slice(0, 1), slice(0, 2))
    refl = hdf.read_field(str(path), fields["sur_refl_b01_1"], slice(0, 1), slice(0, 2))
    assert state.tolist() == [[57352.0, 8.0]]
    assert np.isnan(refl[0, 0]) and refl[0, 1] == 500


def test_a_presets_fill_value_is_nodata_unless_one_is_given(tmp_path: Path) -> None:
    """A Sentinel-2 band file without a nodata tag read its fill, DN 0, as reflectance -0.1
    under the preset (the product guides give each product's fill value)."""
    from stfusion.inputs import resolve_role
    from stfusion.io import FileSource

    assert resolve_role(None, None, None, "sentinel2-l2a")[0].nodata == 0
    assert resolve_role(None, None, None, "landsat89-c2l2")[0].nodata == 0
    assert resolve_role(None, None, None, "mod09ga")[0].nodata == -28672
    assert resolve_role(None, None, None, "mcd43a4")[0].nodata == 32767
    assert resolve_role(None, None, None, "sentinel2-l2a", -9999)[0].nodata == -9999
    dn = np.array([[[0, 2000]]], np.uint16)
    for b in ("B02", "B03", "B04", "B8A", "B11", "B12"):
        write_tif(tmp_path / f"T33TVM_20220131_{b}.tif", dn)  # no nodata tag
    scaling, _ = resolve_role(None, None, None, "sentinel2-l2a")
    got = FileSource(str(tmp_path / "T33TVM_20220131_*.tif"), scaling).read()
    assert np.isnan(got[:, 0, 0]).all() and np.allclose(got[:, 0, 1], 0.1)


def test_band_order_advice_for_hdf_fields_names_the_fields(
    modis_native: dict[str, Path], tmp_path: Path
) -> None:
    """An HDF trial: MOD09GA fields read as 1,2,3,4,6,7 (MODIS's own order) beside Landsat
    were told "--coarse-bands 3,4,1,2,5,6", positions among the fields read, which re-read as
    field numbers took b05 (1240 nm) for SWIR1. The advice names the fields, from their
    names' roles (sur_refl_b01_1 was no role) or, beside a fine image without band names,
    from the values; one warning, not both."""
    from stfusion.errors import STFusionWarning
    from stfusion.io import FileSource, Scaling
    from stfusion.scene import open_scene

    given = Scaling(bands=("1", "2", "3", "4", "6", "7"))
    c1 = FileSource(str(modis_native["c1"]), given)
    fields = ",".join(f"sur_refl_b0{b}_1" for b in MODIS_NUMBER)
    with rasterio.open(L1017) as ds:
        kept = {"transform": ds.transform, "crs": ds.crs, "scales": list(ds.scales)}
        unnamed = write_tif(tmp_path / "L.tif", ds.read(), dtype=ds.dtypes[0], **kept)
    for fine, said in ((L1017, "band 1 is red by its name"), (unnamed, "another order")):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", STFusionWarning)
            open_scene([(str(fine), c1)], c1)
        told = [str(w.message) for w in caught if "fused by position" in str(w.message)]
        assert len(told) == 1 and said in told[0], told
        assert f"--coarse-bands {fields} " in told[0]
    fixed = FileSource(str(modis_native["c1"]), Scaling(bands=tuple(fields.split(","))))
    assert fixed.band_names == tuple(fields.split(","))


def test_series_reads_a_folder_of_hdf_files_and_refuses_two_on_a_date(
    modis_native: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An HDF trial: `series --coarse FOLDER` listed no .hdf ("folder has no raster files",
    every HDF of a mixed folder ignored), and with a preset two HDF files of one date (a
    re-download of another collection) were stacked into one image whose bands came twice:
    the date was dropped as unreadable, the run exit 0. A folder of HDF files is read as its
    glob is; two whole images on one date are refused, naming both."""
    import shutil

    modis = tmp_path / "modis"
    modis.mkdir()
    for key in ("c1", "c2"):
        shutil.copy(modis_native[key], modis / modis_native[key].name)
    fine = tmp_path / "L_2001-10-17.tif"
    shutil.copy(L1017, fine)
    common = ["series", "-m", "additive", "-q", "--fine", str(fine), "--coarse-preset", "mod09ga"]
    for coarse, out in ((str(modis), "folder"), (str(modis / "*.hdf"), "glob")):
        code, _, err = run_cli(
            [*common, "--coarse", coarse, "--out-dir", str(tmp_path / out)], capsys
        )
        assert code == 0, err
    name = "fused_2001-11-02.tif"
    assert np.isfinite(_read(tmp_path / "folder" / name)).mean() > 0.9
    np.testing.assert_array_equal(
        _read(tmp_path / "folder" / name), _read(tmp_path / "glob" / name)
    )
    again = modis / modis_native["c1"].name.replace(".061.", ".006.")
    shutil.copy(modis_native["c1"], again)
    code, _, err = run_cli(
        [*common, "--coarse", str(modis), "--out-dir", str(tmp_path / "x")], capsys
    )
    assert code != 0 and "two coarse images on 2001-10-17" in err and again.name in err, err
    assert not (tmp_path / "x").exists()


def test_a_gdal_hdf4_name_without_the_driver_says_how_stfusion_reads_it(
    modis_native: dict[str, Path],
) -> None:
    """An HDF trial: GDAL's HDF4_EOS:EOS_GRID:"FILE":GRID:FIELD name, which this GDAL (no HDF4
    driver) cannot open, was told "No such file or directory ... check the archive or URL"
    of a file that exists. Said as it is, with the FILE:FIELD form stfusion reads."""
    from stfusion.errors import InputFileError
    from stfusion.io import FileSource
    from stfusion.io.files import _has_driver

    if _has_driver("HDF4"):
        pytest.skip("this GDAL reads HDF4 itself")  # not rasterio's wheels (CI)
    path = modis_native["c1"]
    name = f'HDF4_EOS:EOS_GRID:"{path}":MODIS_Grid_500m_2D:sur_refl_b01_1'
    with pytest.raises(InputFileError, match=rf"no HDF4 driver.*give {path}:sur_refl_b01_1 "):
        FileSource(name)
    assert FileSource(f"{path}:sur_refl_b01_1").band_names == ("sur_refl_b01_1",)


def test_inspect_measures_a_large_coarse_image_over_the_fine_scene(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An HDF trial: a MODIS tile whose pixels over the site were all fill (or cloud) was
    "valid 100.0%" in inspect, exit 0, where predict refused it; a tile bright elsewhere got
    fill advice that would blank valid data. Over the fine scene, as predict reads it."""
    dn, t = _sinusoidal_dn(M1102)
    _, h, w = dn.shape
    tile = np.full((dn.shape[0], 4 * h, 4 * w), 9000, np.int16)  # bright away from the site
    tile[:, :h, :w] = FILL  # the site: fill
    gap = write_tif(tmp_path / "gap.tif", tile, transform=t, crs=SINU, nodata=FILL, dtype="int16")
    args = ["inspect", str(L1017), str(gap), "--coarse-scale", "0.0001"]
    code, out, _ = run_cli(args, capsys)
    assert code == 1 and "0.0% valid over the fine scene" in out and "PROBLEM   no valid" in out
    tile[:, :h, :w] = dn
    ok = write_tif(tmp_path / "ok.tif", tile, transform=t, crs=SINU, nodata=FILL, dtype="int16")
    code, out, _ = run_cli(["inspect", str(L1017), str(ok), "--coarse-scale", "0.0001"], capsys)
    assert code == 0 and "% valid over the fine scene; values p1..p99 0.0" in out, out
    assert "PROBLEM" not in out and "undeclared nodata" not in out, out


def test_coarse_files_of_one_product_cut_to_other_extents_give_one_prediction(
    modis_native: dict[str, Path], tmp_path: Path
) -> None:
    """An HDF trial: the pair's MODIS as the whole HDF tile and the target as a GeoTIFF
    export of a window of it (the same pixels) made Fit-FC and FSDAF differ at 92 % / 55 %
    of the values (up to 0.08): a file of another extent was taken for another grid, its
    values averaged from the fine grid. Same pixels, same prediction."""
    from stfusion.methods.fitfc import FitFC
    from stfusion.methods.fsdaf import FSDAF

    dn, t = _sinusoidal_dn(M1017)
    wider = np.full((dn.shape[0], dn.shape[1] + 3, dn.shape[2] + 5), FILL, np.int16)
    wider[:, 3:, 5:] = dn  # the origin 3 rows and 5 columns further out
    shifted = t * Affine.translation(-5, -3)
    big = write_tif(
        tmp_path / "c1_big.tif", wider, transform=shifted, crs=SINU, nodata=FILL, dtype="int16"
    )
    c2 = str(modis_native["c2_tif"])
    scaling = 0.0001
    for cls in (FitFC, FSDAF):
        same = cls().fit([(str(L1017), str(modis_native["c1_tif"]))], coarse_scaling=scaling)
        other = cls().fit([(str(L1017), str(big))], coarse_scaling=scaling)
        a, b = same.predict(c2).values, other.predict(c2).values
        np.testing.assert_allclose(b, a, atol=1e-6, equal_nan=True, err_msg=cls.name)


def test_band_files_of_different_scales_name_each_scale(tmp_path: Path) -> None:
    """An HDF trial: the refusal printed two bare lists, offsets as -0.0."""
    from stfusion.errors import InputFileError
    from stfusion.io import FileSource

    one = np.ones((1, 8, 8), np.int16)
    write_tif(tmp_path / "X_B1.tif", one, dtype="int16", scales=[0.0001])
    write_tif(tmp_path / "X_B2.tif", one, dtype="int16", scales=[0.001])
    with pytest.raises(InputFileError, match=r"\(X_B1 x 0\.0001 \+ 0, X_B2 x 0\.001 \+ 0\)"):
        FileSource(str(tmp_path / "X_B*.tif"))


def test_sentinel2_l2a_read_without_its_offset_is_said(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A Sentinel-2 trial: baseline 04.00 L2A band files (DN = reflectance x 10000 + 1000)
    read with --fine-scale 0.0001 and no preset came out 0.1 too high everywhere, exit 0,
    and inspect advised the scale alone. Said by predict and inspect, naming the preset."""
    from stfusion.inputs import get_preset, s2_offset_missing
    from stfusion.io import Scaling

    safe = tmp_path / "S2A_MSIL2A_20220513T100031_N0400_R122_T33TVM_20220513T131511.SAFE"
    safe.mkdir()
    dn = (np.full((1, 20, 20), 1500)).astype(np.uint16)
    band = write_tif(safe / "T33TVM_20220513T100031_B04_20m.tif", dn, dtype="uint16")
    given = Scaling(0.0001)
    said = s2_offset_missing(None, given, str(band), "fine")
    assert said and "baseline 04.00" in said and "--fine-preset sentinel2-l2a" in said
    assert s2_offset_missing(get_preset("sentinel2-l2a"), given, str(band), "fine") is None
    assert s2_offset_missing(None, Scaling(0.0001, -0.1), str(band), "fine") is None
    old = Path(str(safe).replace("N0400", "N0301"))
    safe.rename(old)
    assert s2_offset_missing(None, given, str(old / band.name), "fine") is None
    old.rename(safe)
    code, out, _ = run_cli(["inspect", str(band), "--fine-scale", "0.0001"], capsys)
    assert code == 0 and "CHECK     " in out and "every value comes out 0.1 too high" in out
    # Level-1C has the same offset since baseline 04.00 (RADIO_ADD_OFFSET): said too, with
    # the scale and offset (the L2A preset refuses L1C)
    l1c = tmp_path / "S2A_MSIL1C_20220513T100031_N0400_R122_T33TVM_20220513T131511.tif"
    write_tif(l1c, dn, dtype="uint16")
    said = s2_offset_missing(None, given, str(l1c), "fine")
    assert said and "L1C of processing baseline 04.00" in said and "RADIO_ADD_OFFSET" in said
    assert "--fine-scale 0.0001 --fine-offset -0.1." in said and "preset" not in said
    assert s2_offset_missing(None, given, str(l1c).replace("N0400", "N0301"), "fine") is None


def test_the_l2a_preset_on_a_level_1c_product_is_refused() -> None:
    """A Sentinel-2 trial: the L2A preset on an MSIL1C product said only that no SCL file
    was found, then fused top-of-atmosphere values as surface reflectance."""
    from stfusion.errors import InvalidParameterError
    from stfusion.inputs import check_preset_fits, get_preset

    spec = "S2A_MSIL1C_20220513T100031_N0400_R122_T33TVM.SAFE/IMG_DATA/T33TVM_B04.jp2"
    with pytest.raises(InvalidParameterError, match=r"Level-1C product .*--fine-preset sentinel2"):
        check_preset_fits(get_preset("sentinel2-l2a"), spec, "--fine-preset")
    check_preset_fits(get_preset("sentinel2-l2a"), spec.replace("MSIL1C", "MSIL2A"), "--x")


def test_a_jpeg2000_file_under_a_gdal_without_the_driver_says_so(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A Sentinel-2 trial: .jp2 band files under a GDAL without OpenJPEG were "not a raster
    GDAL can read": the user took them for damaged. The missing driver is named."""
    from stfusion.errors import InputFileError
    from stfusion.io import FileSource
    from stfusion.io import files as files_module

    monkeypatch.setattr(files_module, "_has_driver", lambda name: False)
    band = tmp_path / "T33TVM_20220513T100031_B04_20m.jp2"
    band.write_bytes(b"\x00\x00\x00\x0cjP  \r\n\x87\n" + bytes(64))
    monkeypatch.setenv("GDAL_SKIP", "JP2OpenJPEG")
    with pytest.raises(InputFileError, match=r"no JPEG 2000 driver.*gdal_translate"):
        FileSource(str(band))
    with pytest.raises(InputFileError, match=r"no JPEG 2000 driver"):
        FileSource(str(tmp_path / "T33TVM_*_B04_20m.jp2"))  # a glob: read by io.stacks


def test_a_series_whose_fine_images_all_fail_alike_says_it_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A Sentinel-2 trial: a flat folder of 10, 20 and 60 m band files with the preset gave a
    10 kB line, every date's file list twice; the reason ('B02' matches B02_10m and B02_20m)
    is said once, with how to choose, and the other dates fail alike."""
    fine = tmp_path / "flat"
    fine.mkdir()
    one = np.full((1, 8, 8), 1500, np.uint16)
    for day in ("20220503", "20220513", "20220523"):
        for band in ("B02_10m", "B02_20m", "B03_20m", "B04_20m", "B8A_20m", "B11_20m", "B12_20m"):
            write_tif(fine / f"T33TVM_{day}T100031_{band}.tif", one, dtype="uint16")
    coarse = tmp_path / "c"
    coarse.mkdir()
    for day in ("2022-05-03", "2022-05-13", "2022-05-23"):
        write_tif(coarse / f"M_{day}.tif", np.full((6, 8, 8), 0.05, np.float32))
    args = [
        "series",
        "--fine",
        str(fine),
        "--coarse",
        str(coarse),
        "--out-dir",
        str(tmp_path / "o"),
    ]
    code, _, err = run_cli([*args, "--fine-preset", "sentinel2-l2a"], capsys)
    assert code == 1 and "matches several bands" in err and "'*_20m.jp2'" in err, err
    assert "(2022-05-13, 2022-05-23) fail alike" in err and len(err) < 3000, len(err)


def test_mixed_sentinel2_baselines_are_said_at_once() -> None:
    """A Sentinel-2 trial: a series of both baselines was told "give --fine-offset 0", and
    then, with it, to leave it out: the two kinds are named together."""
    from stfusion.errors import InvalidParameterError
    from stfusion.inputs import check_s2_offset, get_preset

    old = "S2A_MSIL2A_20220523T100031_N0301_R122_T33TVM.SAFE/B02_20m.tif"
    new = "S2A_MSIL2A_20220513T100031_N0400_R122_T33TVM.SAFE/B02_20m.tif"
    for offset in (-0.1, 0.0):
        with pytest.raises(InvalidParameterError, match=r"fine images mix .*N0301.*N0400"):
            check_s2_offset(get_preset("sentinel2-l2a"), offset, [new, old], "--fine-offset")
