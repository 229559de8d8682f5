"""Coarse images on their own grid: native coarse pixels, the ground ratio, the ratio override.

A native-grid MODIS is made from the bundled CIA sample as MOD09GA is delivered: the CIA MODIS
block-averaged 10 x 10 to 500 m in UTM 55S, then reprojected (nearest) to MODIS sinusoidal at
463.3127 m; at 146 E that grid is sheared on the ground. The same 500 m data upsampled back
onto the fine grid (nearest, ratio 10) is the "fine-grid" delivery of the same data.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.warp import Resampling, calculate_default_transform, reproject

from stfusion.api import evaluate_files, run_prediction, split_ratio
from stfusion.errors import InvalidParameterError, STFusionWarning
from stfusion.io import FileSource
from stfusion.methods import get_method
from stfusion.metrics import evaluate
from stfusion.scene import open_scene

DATA = Path(__file__).resolve().parents[1] / "src" / "stfusion" / "data"
F1 = DATA / "CIA_Landsat7_2001-10-17.tif"
F2 = DATA / "CIA_Landsat7_2001-11-02.tif"
DATES = ("2001-10-17", "2001-11-02")
SINU = "+proj=sinu +R=6371007.181 +nadgrids=@null +wktext"
MODIS_500 = 463.3127  # the MODIS "500 m" pixel, metres on the sinusoidal grid
R = 10  # 500 m / 50 m


def _block_500(date: str) -> tuple[np.ndarray, Affine, rasterio.crs.CRS, Affine]:
    with rasterio.open(DATA / f"CIA_MOD09GA_{date}.tif") as ds:
        a = ds.read().astype(np.float64)
        scale = ds.scales[0] if ds.scales[0] != 1.0 else 1e-4
        a = np.where(a == ds.nodata, np.nan, a * scale)
        transform, crs = ds.transform, ds.crs
    n, h, w = a.shape
    b = a.reshape(n, h // R, R, w // R, R).mean(axis=(2, 4)).astype(np.float32)
    return b, transform * Affine.scale(R), crs, transform


def _write(path: Path, arr: np.ndarray, crs: object, transform: Affine) -> Path:
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=arr.shape[2],
        height=arr.shape[1],
        count=arr.shape[0],
        dtype="float32",
        crs=crs,
        transform=transform,
        nodata=np.nan,
    ) as out:
        out.write(arr)
    return path


def _reproject(
    arr: np.ndarray, src_t: Affine, src_crs: object, dst_crs: object, res: float | None
) -> tuple[np.ndarray, Affine]:
    h, w = arr.shape[1:]
    bounds = rasterio.transform.array_bounds(h, w, src_t)
    t, dw, dh = calculate_default_transform(src_crs, dst_crs, w, h, *bounds)
    if res is None:
        res = abs(t.a)
    x0 = np.floor(t.c / res) * res  # snapped, as a tiled product grid is
    y0 = np.ceil(t.f / res) * res
    width = int(np.ceil((t.c + t.a * dw - x0) / res)) + 1
    height = int(np.ceil((y0 - (t.f + t.e * dh)) / res)) + 1
    dst_t = Affine(res, 0, x0, 0, -res, y0)
    out = np.full((arr.shape[0], height, width), np.nan, dtype=np.float32)
    reproject(
        arr,
        out,
        src_transform=src_t,
        src_crs=src_crs,
        dst_transform=dst_t,
        dst_crs=dst_crs,
        resampling=Resampling.nearest,
        src_nodata=np.nan,
        dst_nodata=np.nan,
    )
    return out, dst_t


@pytest.fixture(scope="module")
def native(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """MOD_sinu_<date>.tif (native, sinusoidal 463 m) and MOD_fine_<date>.tif (fine grid)."""
    d = tmp_path_factory.mktemp("native")
    out: dict[str, Path] = {}
    for date in DATES:
        b, t500, crs, t50 = _block_500(date)
        sinu, st = _reproject(b, t500, crs, SINU, MODIS_500)
        out[f"sinu_{date}"] = _write(d / f"MOD_sinu_{date}.tif", sinu, SINU, st)
        s500, st5 = _reproject(b, t500, crs, SINU, 500.0)
        out[f"sinu500_{date}"] = _write(d / f"MOD_sinu500_{date}.tif", s500, SINU, st5)
        geo, gt = _reproject(b, t500, crs, "EPSG:4326", None)
        out[f"wgs84_{date}"] = _write(d / f"MOD_wgs84_{date}.tif", geo, "EPSG:4326", gt)
        fine = np.repeat(np.repeat(b, R, axis=1), R, axis=2)
        out[f"fine_{date}"] = _write(d / f"MOD_fine_{date}.tif", fine, crs, t50)
    return out


def _score(pred: np.ndarray) -> float:
    truth = FileSource(str(F2)).read()
    return float(evaluate(np.asarray(pred), truth, ratio=R).mean["rmse"])


def _predict(method: str, c1: Path, c2: Path, **kw: object) -> tuple[np.ndarray, object]:
    est = get_method(method)()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", STFusionWarning)
        est.fit([(str(F1), str(c1))], **kw)
        pred = est.predict(str(c2))
    return np.asarray(pred.values), est


# ------------------------------------------------------------------------------ the ratio


@pytest.mark.parametrize(
    ("kind", "expected"),
    [("sinu500", 10.0), ("wgs84", 10.0), ("sinu", MODIS_500 / 50.0)],
)
def test_recorded_ratio_is_the_ground_ratio(
    native: dict[str, Path], kind: str, expected: float
) -> None:
    # The sinusoidal grid at 146 E is sheared: its pixel size in projected units (and the
    # default-transform size the old code used: 14.29) is not the ground size.
    scene = open_scene([(str(F1), str(native[f"{kind}_2001-10-17"]))], check=False)
    assert scene.ratio == pytest.approx(expected, rel=0.02)


def test_ratio_override_warns_and_is_used(native: dict[str, Path]) -> None:
    c1 = str(native["sinu_2001-10-17"])
    with pytest.warns(STFusionWarning, match="ratio=10 was given"):
        scene = open_scene([(str(F1), c1)], ratio=10, check=False)
    assert scene.ratio == 10
    est = get_method("fitfc")()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", STFusionWarning)
        est.fit(scene)
    assert est.native_ is not None  # the override changes the ratio, not the native pixels
    rest, ratio = split_ratio(["ratio=10", "window=21"])
    assert ratio == 10 and rest == ["window=21"]


def test_non_integer_ratio_on_one_grid_suggests_nearest_and_override(
    native: dict[str, Path],
) -> None:
    est = get_method("fsdaf")()
    with pytest.raises(InvalidParameterError) as exc:
        est.fit([(str(F1), str(native["fine_2001-10-17"]))], ratio=9.6, check=False)
    msg = str(exc.value)
    assert "nearest integer" in msg and "--param ratio=10" in msg


# ------------------------------------------------------------------ native coarse pixels


def test_fitfc_native_within_5_percent_of_fine_grid(native: dict[str, Path]) -> None:
    nat, est = _predict("fitfc", native["sinu_2001-10-17"], native["sinu_2001-11-02"])
    assert est.native_ is not None
    fine, est_f = _predict("fitfc", native["fine_2001-10-17"], native["fine_2001-11-02"], ratio=R)
    assert est_f.native_ is None
    s_nat, s_fine = _score(nat), _score(fine)
    assert s_nat <= 1.05 * s_fine, (s_nat, s_fine)
    # tiled = whole on native pixels
    tiled = np.asarray(est.predict(window_size=37).values)
    np.testing.assert_array_equal(tiled, nat)


def test_fsdaf_native_cli_within_5_percent_of_fine_grid(
    native: dict[str, Path], tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from stfusion.cli import cli

    out = tmp_path / "x.tif"
    # The issue's command, which stopped with "the resolution ratio must be a positive
    # integer ..., got 14.2856".
    res = CliRunner().invoke(
        cli,
        [
            "predict",
            "-m",
            "fsdaf",
            "--pair",
            str(F1),
            str(native["sinu_2001-10-17"]),
            "--coarse",
            str(native["sinu_2001-11-02"]),
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    with rasterio.open(out) as ds:
        tag = float(ds.tags()["STFUSION_RATIO"])
    assert tag == pytest.approx(MODIS_500 / 50.0, rel=0.02)
    s_nat = float(evaluate_files(str(out), str(F2), ratio=R).mean["rmse"])
    fine, _ = _predict("fsdaf", native["fine_2001-10-17"], native["fine_2001-11-02"], ratio=R)
    s_fine = _score(fine)
    assert s_nat <= 1.05 * s_fine, (s_nat, s_fine)


@pytest.mark.parametrize("method", ["fsdaf", "fsdaf2"])
def test_fsdaf_native_tiled_equals_whole(native: dict[str, Path], method: str) -> None:
    c1, c2 = native["sinu_2001-10-17"], native["sinu_2001-11-02"]
    est = get_method(method)(window=11, similar=8, spline_radius=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", STFusionWarning)
        est.fit([(str(F1), str(c1))])
        whole = np.asarray(est.predict(str(c2)).values)
    tiled = np.asarray(est.predict(window_size=23).values)
    np.testing.assert_array_equal(tiled, whole)
    assert np.isfinite(whole).mean() > 0.99
    if method == "fsdaf2":
        assert est.changed_.any()  # the native path of the changed-pixel model ran


def test_cli_ratio_override_runs(native: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "y.tif"
    with pytest.warns(STFusionWarning, match="ratio=10 was given"):
        run_prediction(
            method="fitfc",
            pairs=[(str(F1), str(native["sinu_2001-10-17"]))],
            target=str(native["sinu_2001-11-02"]),
            out=str(out),
            params=["ratio=10"],
        )
    with rasterio.open(out) as ds:
        assert float(ds.tags()["STFUSION_RATIO"]) == 10


@pytest.mark.parametrize("flip", ["south-up", "west-left"])
@pytest.mark.parametrize("method", ["fsdaf", "fitfc", "starfm"])
def test_a_coarse_file_stored_south_up_predicts_as_north_up(
    native: dict[str, Path], tmp_path: Path, flip: str, method: str
) -> None:
    """The same native pixels stored south-up (positive y pixel size) gave another FSDAF
    prediction at 99.9 % of the pixels (up to 0.004: its local splines follow the native
    pixel order); they are now read north-up, so every method predicts the same."""
    paths = []
    for date in DATES:
        with rasterio.open(native[f"sinu500_{date}"]) as ds:
            a, t, crs = ds.read(), ds.transform, ds.crs
        h, w = a.shape[1:]
        if flip == "south-up":
            a, t = a[:, ::-1, :], Affine(t.a, 0, t.c, 0, -t.e, t.f + t.e * h)
        else:
            a, t = a[:, :, ::-1], Affine(-t.a, 0, t.c + t.a * w, 0, t.e, t.f)
        paths.append(_write(tmp_path / f"{date}.tif", np.ascontiguousarray(a), crs, t))
    want, _ = _predict(method, native["sinu500_2001-10-17"], native["sinu500_2001-11-02"])
    got, est = _predict(method, paths[0], paths[1])
    np.testing.assert_array_equal(got, want)
    assert np.isfinite(got).mean() > 0.99
    tiled = np.asarray(est.predict(window_size=37).values)
    np.testing.assert_array_equal(tiled, got)


# ------------------------------------------------------------- coarse images of two sizes


@pytest.fixture(scope="module")
def km(native: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 2001-11-02 MODIS at 1000 m (2 x 2 means of the 500 m pixels), UTM 55S."""
    b, t500, crs, _ = _block_500("2001-11-02")
    n, h, w = b.shape
    km = b[:, : h // 2 * 2, : w // 2 * 2].reshape(n, h // 2, 2, w // 2, 2).mean(axis=(2, 4))
    d = tmp_path_factory.mktemp("km")
    return _write(
        d / "MOD_1000m_2001-11-02.tif", km.astype(np.float32), crs, t500 * Affine.scale(2)
    )


@pytest.fixture(scope="module")
def utm500(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 2001-10-17 MODIS at 500 m, UTM 55S (its own grid, not reprojected)."""
    b, t500, crs, _ = _block_500("2001-10-17")
    return _write(tmp_path_factory.mktemp("utm") / "MOD_500m_2001-10-17.tif", b, crs, t500)


def test_coarse_images_of_two_pixel_sizes_are_refused(utm500: Path, km: Path) -> None:
    """A pair's 500 m coarse image and a 1000 m target were fused at their mean ratio (15)
    with no word: now an error naming both files and their ratios, in open_scene (predict's
    command) and when a fitted estimator is given the target."""
    from stfusion.errors import GridMismatchError

    warnings.simplefilter("ignore", STFusionWarning)  # the 1000 m image covers 92 % of it
    with pytest.raises(GridMismatchError, match=r"MOD_1000m.*20 times.*MOD_500m.*10 times"):
        open_scene([(str(F1), str(utm500))], str(km), check=False)
    est = get_method("additive")().fit([(str(F1), str(utm500))])
    with pytest.raises(GridMismatchError, match="one pixel size"):
        est.predict(str(km))
    # one size: as before
    assert open_scene([(str(F1), str(utm500))], str(utm500), check=False).ratio == R


def test_series_fails_the_date_of_a_coarse_image_of_another_size(
    utm500: Path, km: Path, tmp_path: Path
) -> None:
    """In a series the odd image is reported as unusable (its date fails), not fused."""
    from stfusion.series import SeriesConfig, run_series

    fine, coarse = tmp_path / "fine", tmp_path / "coarse"
    fine.mkdir()
    coarse.mkdir()
    (fine / F1.name).symlink_to(F1)
    (coarse / "MOD_2001-10-17.tif").symlink_to(utm500)
    (coarse / "MOD_2001-11-02.tif").symlink_to(km)
    cfg = SeriesConfig(tmp_path / "out", fine=[str(fine)], coarse=[str(coarse)], method="additive")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", STFusionWarning)
        result = run_series(cfg)
    (rec,) = [r for r in result.records if str(r.date) == "2001-11-02"]
    assert rec.status == "failed" and not (tmp_path / "out" / rec.output).is_file()
    assert "one pixel size" in rec.reason and "MOD_2001-11-02" in rec.reason, rec.reason
