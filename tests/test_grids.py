"""Coarse images on grids as users deliver them: an equivalent CRS written another way, a
sub-pixel shift, fine-sized pixels on a shifted grid, south-up rasters, geographic grids.

Each variant carries the same data as the bundled CIA MODIS images, so the prediction must
equal the one from the originals (or from the north-up twin).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.warp import Resampling, calculate_default_transform, reproject

from conftest import run_cli
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
