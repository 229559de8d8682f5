"""Coarse images on grids as users deliver them: an equivalent CRS written another way, a
sub-pixel shift, fine-sized pixels on a shifted grid, south-up rasters, geographic grids.

Each variant carries the same data as the bundled CIA MODIS images, so the prediction must
equal the one from the originals (or from the north-up twin).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.warp import Resampling, calculate_default_transform, reproject

from conftest import run_cli, write_tif
from stfusion.errors import STFusionWarning

DATA = Path(__file__).resolve().parents[1] / "src" / "stfusion" / "data"
L1017 = DATA / "CIA_Landsat7_2001-10-17.tif"
DAYS = ("2001-10-17", "2001-11-02")
FITFC = ("-m", "fitfc", "-q")
UTM55S_PROJ = "+proj=utm +zone=55 +south +ellps=WGS84 +towgs84=0,0,0 +units=m +no_defs"


def _read(path: Path) -> np.ndarray:
    with rasterio.open(path) as ds:
        return ds.read()


def _write(path: Path, data: np.ndarray, profile: dict, **changes: object) -> Path:
    p = dict(profile, dtype=str(data.dtype), count=data.shape[0], **changes)
    p["height"], p["width"] = data.shape[1:]
    with rasterio.open(path, "w", **p) as ds:
        ds.write(data)
    return path


def _flip(t: Affine, height: int) -> Affine:
    """The south-up transform of a north-up grid of ``height`` rows (rows reversed)."""
    return Affine(t.a, 0, t.c, 0, -t.e, t.f + t.e * height)


@pytest.fixture(scope="module")
def variants(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    """Each variant's (pair coarse, target coarse)."""
    d = tmp_path_factory.mktemp("grids")
    out: dict[str, list[Path]] = {}
    for day in DAYS:
        with rasterio.open(DATA / f"CIA_MOD09GA_{day}.tif") as ds:
            prof = dict(ds.profile, nodata=None)
            data = (ds.read() * np.float32(ds.scales[0])).astype(np.float32)
            t, h = ds.transform, ds.height
        native = (500.0, 500.0)
        h5, w5 = int(h * -t.e / native[0]), int(ds.width * t.a / native[1])
        t5 = Affine(native[1], 0, t.c, 0, -native[0], t.f)
        d5 = np.zeros((data.shape[0], h5, w5), np.float32)
        reproject(
            data,
            d5,
            src_transform=t,
            src_crs=prof["crs"],
            dst_transform=t5,
            dst_crs=prof["crs"],
            resampling=Resampling.average,
        )
        geo = CRS.from_epsg(4326)
        bounds = rasterio.transform.array_bounds(h5, w5, t5)
        tg, gw, gh = calculate_default_transform(prof["crs"], geo, w5, h5, *bounds)
        dg = np.zeros((data.shape[0], gh, gw), np.float32)
        reproject(
            d5,
            dg,
            src_transform=t5,
            src_crs=prof["crs"],
            dst_transform=tg,
            dst_crs=geo,
            resampling=Resampling.nearest,
        )
        made = {
            "same": _write(d / f"same_{day}.tif", data, prof),
            "proj": _write(d / f"proj_{day}.tif", data, prof, crs=CRS.from_proj4(UTM55S_PROJ)),
            "mm": _write(
                d / f"mm_{day}.tif", data, prof, transform=t * Affine.translation(2e-5, 0)
            ),
            "half": _write(
                d / f"half_{day}.tif", data, prof, transform=t * Affine.translation(0.5, 0.5)
            ),
            "flip": _write(d / f"flip_{day}.tif", data[:, ::-1], prof, transform=_flip(t, h)),
            "500": _write(d / f"500_{day}.tif", d5, prof, transform=t5),
            "500su": _write(d / f"500su_{day}.tif", d5[:, ::-1], prof, transform=_flip(t5, h5)),
            "geo": _write(d / f"geo_{day}.tif", dg, prof, crs=geo, transform=tg),
            "geosu": _write(
                d / f"geosu_{day}.tif", dg[:, ::-1], prof, crs=geo, transform=_flip(tg, gh)
            ),
        }
        for k, v in made.items():
            out.setdefault(k, []).append(v)
    return {k: (v[0], v[1]) for k, v in out.items()}


def _fitfc(
    capsys: pytest.CaptureFixture[str], coarse: tuple[Path, Path], out: Path, *extra: str
) -> tuple[int, str]:
    args = ["predict", "--pair", str(L1017), str(coarse[0]), "--coarse", str(coarse[1])]
    code, _, err = run_cli([*args, "--out", str(out), *FITFC, *extra], capsys)
    return code, err


@pytest.mark.parametrize("variant", ["proj", "mm", "flip"])
def test_the_same_pixels_written_another_way_give_the_same_prediction(
    variants: dict[str, tuple[Path, Path]],
    variant: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # before: an equivalent PROJ string or a 2e-5 px shift made the 50 m copy a "native"
    # grid at ratio 1, and Fit-FC's RMSE went from 0.0351 to 0.0458
    ref, out = tmp_path / "ref.tif", tmp_path / "out.tif"
    assert _fitfc(capsys, variants["same"], ref, "-p", "ratio=10")[0] == 0
    code, err = _fitfc(capsys, variants[variant], out, "-p", "ratio=10")
    assert code == 0, err
    np.testing.assert_array_equal(_read(out), _read(ref))
    with rasterio.open(out) as ds:
        assert ds.tags()["STFUSION_RATIO"] == "10"


def test_fine_sized_pixels_on_a_shifted_grid_are_not_native_pixels(
    variants: dict[str, tuple[Path, Path]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "half.tif"
    code, err = _fitfc(capsys, variants["half"], out)
    assert code == 1 and "ratio=R" in err  # as for a coarse image on the fine grid
    code, err = _fitfc(capsys, variants["half"], out, "-p", "ratio=10")
    assert code == 0, err
    with rasterio.open(out) as ds:
        tags = ds.tags()
    assert tags["STFUSION_RATIO"] == "10"
    assert "already resampled" in " ".join(json.loads(tags["STFUSION_ALIGNMENT"]))


@pytest.mark.parametrize(("north", "south"), [("500", "500su"), ("geo", "geosu")])
def test_south_up_coarse_equals_its_north_up_twin(
    variants: dict[str, tuple[Path, Path]],
    north: str,
    south: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # before: "do not overlap" (bounds not normalised), or a raw traceback for EPSG:4326
    ref, out = tmp_path / "north.tif", tmp_path / "south.tif"
    code, err = _fitfc(capsys, variants[north], ref)
    assert code == 0, err
    code, err = _fitfc(capsys, variants[south], out)
    assert code == 0, err
    np.testing.assert_allclose(_read(out), _read(ref), atol=1e-6)


def test_gdal_virtual_paths_are_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A /vsizip/ path (a folder with a space inside the zip) is GDAL's to open; it was
    refused as "file not found" by a local existence check."""
    import zipfile

    archive = tmp_path / "scene.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(L1017, "inner dir/f1.tif")
    m1017, m1102 = DATA / "CIA_MOD09GA_2001-10-17.tif", DATA / "CIA_MOD09GA_2001-11-02.tif"
    ref, out = tmp_path / "ref.tif", tmp_path / "zip.tif"
    args = ["predict", "-q", "--coarse", str(m1102), "--pair"]
    assert run_cli([*args, str(L1017), str(m1017), "--out", str(ref)], capsys)[0] == 0
    vsi = f"/vsizip/{archive}/inner dir/f1.tif"
    code, _, err = run_cli([*args, vsi, str(m1017), "--out", str(out)], capsys)
    assert code == 0, err
    np.testing.assert_array_equal(_read(out), _read(ref))
    code, _, err = run_cli(
        [*args, f"/vsizip/{archive}/gone.tif", str(m1017), "--out", str(tmp_path / "x.tif")], capsys
    )
    assert code == 1 and "GDAL cannot open it" in err and "gone.tif" in err


def test_coarse_covering_part_of_the_scene_is_warned_about(
    variants: dict[str, tuple[Path, Path]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from rasterio.windows import Window

    parts = []
    for path in variants["500"]:
        with rasterio.open(path) as ds:
            w = Window(0, 0, 15, ds.height)  # 15 of 25 columns
            parts.append(
                _write(
                    tmp_path / f"part_{path.name}",
                    ds.read(window=w),
                    ds.profile,
                    transform=ds.window_transform(w),
                )
            )
    with pytest.warns(STFusionWarning, match=r"covers only about 60% of the fine image"):
        code, err = _fitfc(capsys, (parts[0], parts[1]), tmp_path / "p.tif")
    assert code == 0, err


@pytest.mark.parametrize("resampling", ["nearest", "bilinear", "average"])
def test_a_coarse_image_in_another_crs_reads_the_same_in_any_window(
    variants: dict[str, tuple[Path, Path]], resampling: str
) -> None:
    """Warping each window on its own chose other nearest neighbours along the window's
    edges for a coarse image in EPSG:4326 (105 pixels of CIA): a tiled run differed from a
    whole one by up to 0.079."""
    from rasterio.windows import Window

    from stfusion.io import AlignedSource, FileSource

    fine = FileSource(str(L1017))
    aligned = AlignedSource(FileSource(str(variants["geo"][1])), fine.grid, resampling)
    whole = aligned.read()
    tiles = np.full_like(whole, np.nan)
    for r0 in range(0, 250, 60):
        for c0 in range(0, 250, 70):
            w = Window(c0, r0, min(70, 250 - c0), min(60, 250 - r0))
            block = aligned.read(w, halo=7)[:, 7:-7, 7:-7]
            tiles[:, r0 : r0 + int(w.height), c0 : c0 + int(w.width)] = block
    np.testing.assert_array_equal(tiles, whole)


@pytest.mark.parametrize("resampling", ["nearest", "bilinear", "average"])
def test_a_large_scene_in_another_crs_reads_the_same_in_any_window(
    tmp_path: Path, resampling: str
) -> None:
    """A 2000 x 2000 px scene under a coarse image in EPSG:4326: windows spanning several
    blocks of the warp were warped in one go and differed from the whole read (up to 0.18
    between --mem-limit values on a 3000 px scene)."""
    from rasterio.warp import transform_bounds
    from rasterio.windows import Window

    from stfusion.io import AlignedSource, FileSource, Grid

    ref = FileSource(str(L1017)).grid
    fine = Grid(ref.crs, ref.transform, 2000, 2000)
    b = transform_bounds(fine.crs, "EPSG:4326", *fine.bounds)
    res = 0.0045
    w, h = int((b[2] - b[0]) / res) + 2, int((b[3] - b[1]) / res) + 2
    t = Affine(res, 0, b[0] - res / 2, 0, -res, b[3] + res / 2)
    data = np.random.default_rng(0).random((2, h, w)).astype(np.float32)
    profile = {"driver": "GTiff", "crs": CRS.from_epsg(4326), "transform": t}
    coarse = _write(tmp_path / "c.tif", data, profile)
    aligned = AlignedSource(FileSource(str(coarse)), fine, resampling)
    whole = aligned.read()
    assert np.isfinite(whole).all()
    for tile in (700, 333):
        tiles = np.full_like(whole, np.nan)
        for r0 in range(0, 2000, tile):
            for c0 in range(0, 2000, tile):
                win = Window(c0, r0, min(tile, 2000 - c0), min(tile, 2000 - r0))
                tiles[:, r0 : r0 + int(win.height), c0 : c0 + int(win.width)] = aligned.read(
                    win, halo=5
                )[:, 5:-5, 5:-5]
        np.testing.assert_array_equal(tiles, whole)


def _antimeridian_inputs(tmp_path: Path, fine_geographic: bool) -> dict[str, Path]:
    """A 40 x 40 px fine scene straddling 180 E at 65 N and coarse images covering it, one
    of the two in EPSG:4326 with longitudes past 180 (as GDAL stores a grid across 180):
    values a smooth function of the position, so the coarse ones are readable anywhere."""
    utm = CRS.from_epsg(32660)  # zone 60N: its eastern edge is 180 E
    geo = CRS.from_epsg(4326)
    rng = np.random.default_rng(1)
    out = {}
    if fine_geographic:
        fine_crs, ft = geo, Affine(0.0025, 0, 179.95, 0, -0.001, 65.02)
        coarse_crs, ct = utm, Affine(500.0, 0, 636000.0, 0, -500.0, 7218000.0)
        cw, ch = 24, 24
    else:  # 640000..642000 m: 179.97 E .. 179.99 W
        fine_crs, ft = utm, Affine(50.0, 0, 640000.0, 0, -50.0, 7212000.0)
        coarse_crs, ct = geo, Affine(0.05, 0, 179.9, 0, -0.02, 65.1)
        cw, ch = 4, 10
    yy, xx = np.mgrid[0:ch, 0:cw].astype(np.float32)
    for name, level in (("c1", 0.1), ("c2", 0.15)):
        grid = level + 0.002 * (yy + xx)
        out[name] = _write(
            tmp_path / f"{name}.tif",
            np.stack([grid, 2 * grid]),
            {"driver": "GTiff", "crs": coarse_crs, "transform": ct},
        )
    fine = (0.1 + 0.02 * rng.random((2, 40, 40))).astype(np.float32)
    out["f1"] = _write(
        tmp_path / "f1.tif", fine, {"driver": "GTiff", "crs": fine_crs, "transform": ft}
    )
    return out


@pytest.mark.parametrize("fine_geographic", [False, True])
def test_grids_across_the_antimeridian_are_aligned_whole(
    tmp_path: Path, fine_geographic: bool
) -> None:
    """A coarse image in EPSG:4326 past 180 E left half the prediction empty without a
    word (GDAL's warper took the fine grid's longitudes as -180..); a fine image in
    EPSG:4326 past 180 E was refused as not overlapping its coarse images."""
    from stfusion.methods.baselines import Additive

    s = _antimeridian_inputs(tmp_path, fine_geographic)
    with warnings.catch_warnings():
        warnings.simplefilter("error", STFusionWarning)  # no part of the scene uncovered
        warnings.filterwarnings("ignore", "ratio=.* is more than the scene")  # 40 px, R 46
        pred = Additive().fit([(str(s["f1"]), str(s["c1"]))]).predict(str(s["c2"]))
    assert np.isfinite(np.asarray(pred.values)).all()
    # the change is the coarse images' (0.05 in band 1 plus the slope inside a cell)
    change = np.asarray(pred.values)[0] - _read(s["f1"])[0]
    assert 0.04 < float(np.median(change)) < 0.06


def test_rasters_without_crs_whose_transforms_differ_are_refused(tmp_path: Path) -> None:
    """Files with a geotransform but no CRS were "assumed to line up" pixel by pixel even
    when their transforms put them 10 km apart (the prediction and the score came out as if
    they matched); same-shape rasters without any georeferencing still line up."""
    from stfusion.api import evaluate_files
    from stfusion.errors import GridMismatchError
    from stfusion.methods.baselines import Additive

    f = _read(L1017)[:, :40, :40]
    t = Affine(50.0, 0, 401012.5, 0, -50.0, 6152787.5)
    prof = {"driver": "GTiff", "crs": None}
    f1 = _write(tmp_path / "f1.tif", f, prof, transform=t)
    c1 = _write(tmp_path / "c1.tif", f, prof, transform=t)
    c2 = _write(tmp_path / "c2.tif", f, prof, transform=t * Affine.translation(200, 0))
    with pytest.raises(GridMismatchError, match=r"neither has a CRS.*geotransforms differ"):
        Additive().fit([(str(f1), str(c1))]).predict(str(c2))
    # the advice names the other file's CRS (a fixed EPSG:32655 sent 55S users to 55N)
    with pytest.raises(GridMismatchError, match=r"has no CRS.*gdal_edit.py -a_srs EPSG:32755"):
        evaluate_files(
            str(
                _write(
                    tmp_path / "p.tif",
                    f,
                    {"driver": "GTiff"},
                    crs=CRS.from_epsg(32755),
                    transform=t,
                )
            ),
            str(c2),
        )
    # the same transform, no CRS: lines up, as before
    with pytest.warns(STFusionWarning, match="without georeferencing"):
        Additive().fit([(str(f1), str(c1))]).predict(str(c1))


def test_rasters_georeferenced_only_by_gcps_are_refused_with_the_warp_to_run(
    tmp_path: Path,
) -> None:
    """A GCP-only raster was read as ungeoreferenced: its prediction lost the
    georeferencing, and the messages said the (georeferenced) coarse images had none."""
    from rasterio.control import GroundControlPoint

    from stfusion.errors import InputFileError
    from stfusion.io import FileSource

    gcps = [
        GroundControlPoint(row=r, col=c, x=401012.5 + 50 * c, y=6152787.5 - 50 * r)
        for r, c in ((0, 0), (0, 40), (40, 0), (40, 40))
    ]
    path = tmp_path / "gcps.tif"
    with rasterio.open(
        path, "w", driver="GTiff", width=40, height=40, count=1, dtype="float32"
    ) as ds:
        ds.write(np.full((1, 40, 40), 0.1, np.float32))
        ds.gcps = (gcps, CRS.from_epsg(32755))
    with pytest.raises(
        InputFileError, match=r"only by 4 ground control points.*gdalwarp -t_srs EPSG:32755"
    ):
        FileSource(str(path))


def test_evaluate_scores_a_truth_stored_south_up_on_the_same_grid(tmp_path: Path) -> None:
    """predict reads south-up rasters; evaluate refused a south-up truth of the
    prediction's own grid as "different grids"."""
    from stfusion.api import evaluate_files
    from stfusion.io import FileSource

    with rasterio.open(L1017) as ds:
        t = ds.transform
        prof = {"driver": "GTiff", "crs": ds.crs, "transform": t}
    data = FileSource(str(L1017)).read()
    south_up = Affine(t.a, 0, t.c, 0, -t.e, t.f + t.e * data.shape[1])
    pred = tmp_path / "pred.tif"
    _write(pred, data + np.float32(0.01), prof)
    north = evaluate_files(str(pred), str(_write(tmp_path / "n.tif", data, prof)))
    flipped = evaluate_files(
        str(pred), str(_write(tmp_path / "t.tif", data[:, ::-1].copy(), prof, transform=south_up))
    )
    assert flipped.mean["rmse"] == pytest.approx(north.mean["rmse"], rel=1e-6)
    assert flipped.mean["ssim"] == pytest.approx(north.mean["ssim"], rel=1e-6)


def test_a_rotated_grid_reports_its_pixel_size() -> None:
    from stfusion.io.grid import Grid

    t = Affine.rotation(30) * Affine.scale(50, -50)
    g = Grid(CRS.from_epsg(32755), Affine.translation(400000, 6150000) * t, 10, 10)
    assert g.res == pytest.approx((50.0, 50.0))
    assert "50 x 50" in g.describe()


def test_a_coarse_image_covering_part_of_the_scene_is_warned_about_once(tmp_path: Path) -> None:
    """Each partly covering coarse image gave two warnings saying the same ("covers only
    about 48 %" and "valid values over only 48.0 %")."""
    from stfusion.io import FileSource
    from stfusion.methods.baselines import Additive

    with rasterio.open(L1017) as ds:
        t, crs = ds.transform, ds.crs
    fine = FileSource(str(L1017)).read()[:, :100, :100]
    f1 = _write(tmp_path / "f1.tif", fine, {"driver": "GTiff", "crs": crs, "transform": t})
    coarse = fine.reshape(6, 10, 10, 10, 10).mean(axis=(2, 4))[:, :, :4]  # the left 40 %
    prof = {"driver": "GTiff", "crs": crs, "transform": t * Affine.scale(10)}
    c1 = _write(tmp_path / "c1.tif", np.ascontiguousarray(coarse), prof)
    c2 = _write(tmp_path / "c2.tif", np.ascontiguousarray(coarse + np.float32(0.01)), prof)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Additive().fit([(str(f1), str(c1))]).predict(str(c2))
    said = [str(w.message) for w in caught if issubclass(w.category, STFusionWarning)]
    assert sum("covers only about 40%" in m for m in said) == 2, said  # c1 and c2
    assert not any("valid values over only" in m for m in said), said


def test_only_grids_at_the_antimeridian_get_their_longitudes_wrapped() -> None:
    """The wrap was applied to every geographic grid beyond 90 degrees of longitude, through
    a PROJ string that drops datum shifts: a GDA2020 coarse image at 146 E (EPSG:7844) on
    GDA94 / MGA55 Landsat moved 1.55 m, and STARFM changed in 1636 pixels."""
    from stfusion.io.grid import Grid

    gda2020 = CRS.from_epsg(7844)
    near_cia = Grid(gda2020, Affine(0.005, 0, 145.9, 0, -0.005, -34.7), 50, 50)
    assert near_cia.continuous_crs() == gda2020
    across = Grid(CRS.from_epsg(4326), Affine(0.05, 0, 179.9, 0, -0.02, 65.1), 4, 10)
    wrapped = across.continuous_crs()
    assert wrapped is not None and "+lon_wrap=180" in wrapped.to_proj4()
    assert "+datum=WGS84" in wrapped.to_proj4()


def test_metres_tagged_as_degrees_is_one_clear_error(
    small_tifs: dict[str, Path], tmp_path: Path
) -> None:
    """A notebook user's trial: a coarse image in UTM metres tagged EPSG:4326 stopped with
    PROJ's "utm: Invalid latitude" (not an stfusion error; a traceback from the CLI)."""
    from stfusion.errors import GridMismatchError
    from stfusion.methods.baselines import Additive

    with rasterio.open(small_tifs["c2"]) as ds:
        data, transform = ds.read(), ds.transform
    wrong = write_tif(tmp_path / "c2.tif", data, transform=transform, crs=CRS.from_epsg(4326))
    est = Additive().fit([(str(small_tifs["f1"]), str(small_tifs["c1"]))])
    with pytest.raises(GridMismatchError, match=r"c2\.tif: its CRS \(EPSG:4326\) is in degrees"):
        est.predict(str(wrong))
    with pytest.raises(GridMismatchError, match="the CRS tag is wrong"):
        Additive().fit([(str(small_tifs["f1"]), str(wrong))])


def test_a_local_crs_beside_an_epsg_one_is_one_clear_error(
    small_tifs: dict[str, Path], tmp_path: Path
) -> None:
    """A messy-inputs trial: a fine image in a local (engineering) CRS and coarse images in
    EPSG:32755 stopped predict with PROJ's "Cannot find coordinate operations" traceback,
    and inspect with it too (no PROBLEM line)."""
    from stfusion.errors import GridMismatchError
    from stfusion.methods.baselines import Additive

    local = CRS.from_wkt(
        'LOCAL_CS["site grid",LOCAL_DATUM["local",0],UNIT["metre",1],'
        'AXIS["Easting",EAST],AXIS["Northing",NORTH]]'
    )
    with rasterio.open(small_tifs["f1"]) as ds:
        data, transform = ds.read(), ds.transform
    fine = write_tif(tmp_path / "local.tif", data, transform=transform, crs=local)
    with pytest.raises(GridMismatchError, match="no coordinate operation between their CRSs"):
        Additive().fit([(str(fine), str(small_tifs["c1"]))])
    code, out = run_cli(["inspect", str(fine), str(small_tifs["c1"])])[:2]
    assert code == 1, out


def test_an_alpha_band_is_said_to_be_read_as_data(tmp_path: Path) -> None:
    """A messy-inputs trial: a 7th band tagged alpha was fused as a spectral band, its
    transparent pixels as data, without a word. It is warned about, with the band choice
    that leaves it out (which then reads silently)."""
    from rasterio.enums import ColorInterp

    from stfusion.io import FileSource

    path = write_tif(tmp_path / "rgba.tif", np.ones((3, 8, 8), np.float32))
    with rasterio.open(path, "r+") as ds:
        ds.colorinterp = [ColorInterp.gray, ColorInterp.undefined, ColorInterp.alpha]
    with pytest.warns(STFusionWarning, match=r"band 3 is an alpha band .*rgba\.tif:1,2"):
        FileSource(str(path))
    with warnings.catch_warnings():
        warnings.simplefilter("error", STFusionWarning)
        assert FileSource(f"{path}:1,2").count == 2


def test_the_fine_grid_in_the_other_row_order_is_called_so(
    small_tifs: dict[str, Path], tmp_path: Path
) -> None:
    """A messy-inputs trial: a south-up fine image beside north-up coarse images on the same
    pixels was noted as a coarse image "already resampled" to fine-sized pixels."""
    from stfusion.methods.baselines import Additive

    with rasterio.open(small_tifs["f1"]) as ds:
        data, t = ds.read(), ds.transform
    up = Affine(t.a, 0, t.c, 0, -t.e, t.f + t.e * data.shape[1])
    fine = write_tif(tmp_path / "up.tif", data[:, ::-1], transform=up)
    est = Additive().fit([(str(fine), str(small_tifs["c1"]))])
    notes = " ".join(est.scene_.notes)
    assert "the fine grid stored in the other row order" in notes, notes
    assert "already resampled" not in notes
