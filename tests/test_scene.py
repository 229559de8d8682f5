"""Putting inputs on one grid, and the errors for inputs that do not belong together."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from hypothesis import given
from hypothesis import strategies as st
from rasterio.crs import CRS

from conftest import coarse_like, run_process, write_tif
from stfusion.errors import (
    EmptyInputError,
    GridMismatchError,
    InvalidParameterError,
    ScaleMismatchError,
    STFusionWarning,
    UndeclaredFillError,
)
from stfusion.io import AlignedSource, FileSource, Scaling
from stfusion.scene import open_scene
from stfusion.scene_checks import check_scales

T30 = Affine(30.0, 0, 500000.0, 0, -30.0, 6100000.0)


def _img(seed: int = 0, shape: tuple[int, int, int] = (2, 32, 32)) -> np.ndarray:
    return (0.1 + 0.3 * np.random.default_rng(seed).random(shape)).astype(np.float32)


def test_native_coarse_is_aligned_and_ratio_recorded(tmp_path: Path) -> None:
    f = write_tif(tmp_path / "f.tif", _img(0, (2, 64, 64)), transform=T30)
    c = write_tif(
        tmp_path / "c.tif",
        _img(1, (2, 4, 4)),
        transform=Affine(480.0, 0, 500000.0, 0, -480.0, 6100000.0),
    )
    scene = open_scene([(f, c)], c)
    assert isinstance(scene.pairs[0][1], AlignedSource)
    assert scene.ratio == pytest.approx(16.0)
    assert any("aligned" in n and "ratio 16" in n for n in scene.notes)


def test_no_overlap_in_two_crss_names_them(tmp_path: Path) -> None:
    """A coarse image whose CRS tag is wrong (UTM 33N on UTM 55S coordinates) did not overlap,
    and the message said only "check that they show the same area"."""
    f = write_tif(tmp_path / "f.tif", _img(0, (2, 64, 64)), transform=T30)
    c480 = Affine(480.0, 0, 500000.0, 0, -480.0, 6100000.0)
    c = write_tif(tmp_path / "c.tif", _img(1, (2, 4, 4)), transform=c480, crs=CRS.from_epsg(32633))
    with pytest.raises(GridMismatchError, match=r"declares EPSG:32633.*CRS tag is likely wrong"):
        open_scene([(f, c)], c)
    far = write_tif(
        tmp_path / "far.tif",
        _img(1, (2, 4, 4)),
        transform=Affine(0.01, 0, 10.0, 0, -0.01, 50.0),
        crs=CRS.from_epsg(4326),
    )
    with pytest.raises(GridMismatchError, match=r"declares EPSG:4326.*declares the right CRS"):
        open_scene([(f, far)], far)


def test_coarse_in_other_crs_is_reprojected(tmp_path: Path) -> None:
    from rasterio.warp import calculate_default_transform, reproject

    fine = _img(0, (1, 64, 64))
    f = write_tif(tmp_path / "f.tif", fine, transform=T30)
    # The same area in geographic coordinates at ~8x coarser resolution.
    src_crs = CRS.from_epsg(32755)
    bounds = (500000.0 - 960, 6100000.0 - 2880, 500000.0 + 2880, 6100000.0 + 960)
    tr, w, h = calculate_default_transform(src_crs, "EPSG:4326", 16, 16, *bounds)
    dst = np.zeros((1, h, w), np.float32)
    big = np.full((1, 16, 16), 0.2, np.float32)
    reproject(
        big,
        dst,
        src_transform=Affine(240, 0, bounds[0], 0, -240, bounds[3]),
        src_crs=src_crs,
        dst_transform=tr,
        dst_crs="EPSG:4326",
    )
    c = write_tif(tmp_path / "c.tif", dst, transform=tr, crs=CRS.from_epsg(4326))
    scene = open_scene([(f, c)], c, check=False)
    assert scene.ratio == pytest.approx(8.0, rel=0.05)
    arr = scene.target.read()
    assert arr.shape == (1, 64, 64) and np.isfinite(arr).mean() > 0.9


def test_band_count_mismatch_names_both(tmp_path: Path) -> None:
    f = write_tif(tmp_path / "f.tif", _img(0, (2, 8, 8)))
    c = write_tif(tmp_path / "c.tif", _img(0, (3, 8, 8)))
    with pytest.raises(GridMismatchError, match=r"c\.tif has 3 bands.*f\.tif has 2"):
        open_scene([(f, c)], c)


def test_no_overlap(tmp_path: Path) -> None:
    f = write_tif(tmp_path / "f.tif", _img())
    c = write_tif(
        tmp_path / "c.tif", _img(), transform=Affine(30.0, 0, 900000.0, 0, -30.0, 6100000.0)
    )
    with pytest.raises(GridMismatchError, match="do not overlap"):
        open_scene([(f, c)], c)


def test_unreferenced_inputs(tmp_path: Path) -> None:
    f = write_tif(tmp_path / "f.tif", _img(), crs=None, transform=Affine.identity())
    c = write_tif(tmp_path / "c.tif", _img(1), crs=None, transform=Affine.identity())
    with pytest.warns(STFusionWarning, match=r"2 input\(s\) without georeferencing"):
        open_scene([(f, c)], c)
    # a georeferenced fine image with two bare coarse images: those two are counted and named
    g = write_tif(tmp_path / "g.tif", _img())
    c3 = write_tif(tmp_path / "c3.tif", _img(2), crs=None, transform=Affine.identity())
    with pytest.warns(STFusionWarning, match=r"2 input\(s\) .*\(e\.g\. \S*c\.tif\)"):
        open_scene([(g, c)], c3)
    c2 = write_tif(tmp_path / "c2.tif", _img(1, (2, 16, 16)), crs=None, transform=Affine.identity())
    with pytest.raises(GridMismatchError, match="different shapes"):
        open_scene([(f, c2)], c2)


def test_empty_and_mostly_empty_coarse(tmp_path: Path) -> None:
    f = write_tif(tmp_path / "f.tif", _img())
    c = write_tif(tmp_path / "c.tif", _img(1))
    empty = write_tif(tmp_path / "e.tif", np.full((2, 32, 32), np.nan, np.float32))
    with pytest.raises(EmptyInputError, match=r"e\.tif.*no valid pixels"):
        open_scene([(f, c)], empty)
    half = _img(1)
    half[:, :20] = np.nan
    h = write_tif(tmp_path / "h.tif", half)
    with pytest.warns(STFusionWarning, match="only"):
        open_scene([(f, c)], h)


def test_coarse_arrays_of_other_sizes_are_refused() -> None:
    """A user trial: pairs' coarse arrays 10x smaller than the fine array and a target 20x
    smaller (another sensor, or a crop of the right one) were accepted silently: the target
    was stretched over the scene, and the output still said ratio 10."""
    from stfusion.methods.baselines import Additive

    fine = _img(0, (2, 40, 40))
    c1, c2 = _img(1, (2, 4, 4)), _img(2, (2, 4, 4))
    est = Additive().fit([(fine, c1)])
    assert est.ratio_ == 10
    for bad in (_img(2, (2, 2, 2)), c2[:, :2, :2]):
        with pytest.raises(GridMismatchError, match=r"10 times smaller, coarse target 20 times"):
            est.predict(bad)
    with pytest.raises(GridMismatchError, match="not all one size"):
        open_scene([(fine, c1)], _img(2, (2, 2, 2)))
    assert est.predict(c2).shape == (2, 40, 40)


@pytest.mark.parametrize("role", ["fine", "target"])
def test_one_empty_band_is_named(tmp_path: Path, role: str) -> None:
    """A user trial: the coarse target's NIR all NaN made FSDAF write F1's NIR (exit 0,
    coverage 1) and Fit-FC a NaN band; an empty fine band passed STARFM and Fit-FC silently.
    Now an error names the band and how to leave it out."""
    f, c = write_tif(tmp_path / "f.tif", _img()), write_tif(tmp_path / "c.tif", _img(1))
    bad = _img() if role == "fine" else _img(1)
    bad[1] = np.nan
    b = write_tif(tmp_path / "b.tif", bad, names=["red", "nir"])
    pair, target = ((b, c), c) if role == "fine" else ((f, c), b)
    with pytest.raises(EmptyInputError, match=r"b\.tif: band\(s\) 2 \(nir\) .*--bands"):
        open_scene([pair], target)


def test_scale_mismatch(tmp_path: Path) -> None:
    f = write_tif(tmp_path / "f.tif", _img() * 10000)
    c = write_tif(tmp_path / "c.tif", _img(1))
    with pytest.raises(ScaleMismatchError, match=r"f\.tif holds the larger.*--fine-scale 0\.0001"):
        open_scene([(f, c)], c)
    # the larger values on the coarse side: the advice names --coarse-scale
    f1 = write_tif(tmp_path / "f1.tif", _img())
    c4 = write_tif(tmp_path / "c4.tif", _img(1) * 10000)
    with pytest.raises(ScaleMismatchError, match=r"c4\.tif holds the larger.*--coarse-scale"):
        open_scene([(f1, c4)], c4)
    # a coarse target x10000 among 0-1 pairs (the same --coarse-scale for both): refused,
    # through open_scene and through prepare (a target given after fit)
    with pytest.raises(ScaleMismatchError, match=r"gdal_edit\.py -scale 0\.0001"):
        open_scene([(f1, c)], c4)
    from stfusion.methods.starfm import STARFM

    est = STARFM().fit([(f1, c)])
    with pytest.raises(ScaleMismatchError, match=r"c4\.tif"):
        est.prepare(str(c4))
    f100 = write_tif(tmp_path / "f100.tif", _img() * 100)
    with pytest.warns(STFusionWarning, match="medians differ"):
        open_scene([(f100, c)], c)
    # 10x (x1000 against x10000 files, one scale given for both) warns too
    f10 = write_tif(tmp_path / "f10.tif", _img() * 10)
    with pytest.warns(STFusionWarning, match="medians differ 10x"):
        open_scene([(f10, c)], c)


def test_scale_advice_for_landsat_collection_2(tmp_path: Path) -> None:
    """A user trial: uint16 Collection 2 digital numbers against 0-1 MODIS got only "give
    --fine-scale 1e-05", and with 2.75e-5 but no offset only "check --fine-scale"; each run
    then exited 0 with RMSE 0.057 against 0.035. Both messages name scale and offset now."""
    refl = _img() * 0.1  # dark, as CIA's: the forgotten offset then makes 5x and more
    dn = np.round((refl + 0.2) / 2.75e-5).astype(np.uint16)
    f = write_tif(tmp_path / "f.tif", dn, dtype="uint16")
    c = write_tif(tmp_path / "c.tif", coarse_like(refl))
    with pytest.raises(ScaleMismatchError, match=r"--fine-scale 2\.75e-5 --fine-offset -0\.2"):
        open_scene([(f, c)], c)
    with pytest.warns(STFusionWarning, match=r"needs --fine-offset -0\.2"):
        open_scene([(f, c)], c, fine_scaling=Scaling(2.75e-5))
    with warnings.catch_warnings():
        warnings.simplefilter("error", STFusionWarning)
        open_scene([(f, c)], c, fine_scaling=Scaling(2.75e-5, -0.2))
    # digital numbers against MOD09GA's int16 x 10000 (14x: a warning, not an error) name
    # the Collection 2 scale and offset too (a trial: "check --fine-scale/--coarse-scale")
    ci = write_tif(tmp_path / "ci.tif", np.round(coarse_like(refl) * 1e4), dtype="int16")
    with pytest.warns(STFusionWarning, match=r"medians differ .*--fine-offset -0\.2"):
        open_scene([(f, ci)], ci)


def test_scale_advice_for_values_scaled_twice(tmp_path: Path) -> None:
    """0-1 reflectance read with --fine-scale 0.0001 (median ~4e-6) against 0-1 coarse: the
    advice was --coarse-scale 0.0001, which puts both in units of 1e-4 reflectance."""
    from stfusion.io import FileSource, Scaling

    f = FileSource(str(write_tif(tmp_path / "f.tif", _img())), Scaling(1e-4))
    c = write_tif(tmp_path / "c.tif", _img(1))
    with pytest.raises(
        ScaleMismatchError,
        match=r"f\.tif holds values too small for reflectance: leave --fine-scale out",
    ):
        check_scales(f, FileSource(str(c)))


def test_scale_check_spares_real_differences(tmp_path: Path) -> None:
    """A 3x brighter coarse image (snow, another season) and NDVI whose medians lie near 0
    on one side only are not scale errors: no warning."""
    rng = np.random.default_rng(0)
    f = write_tif(tmp_path / "f.tif", _img())
    c3 = write_tif(tmp_path / "c3.tif", _img(1) * 3)
    ndvi_f = rng.uniform(-0.6, 0.6, (1, 40, 40)).astype(np.float32)
    ndvi_f -= np.median(ndvi_f) - 0.001  # median 0.001
    ndvi_c = rng.uniform(-0.6, 0.6, (1, 40, 40)).astype(np.float32)
    ndvi_c -= np.median(ndvi_c) - 0.1  # median 0.1: 100x, same spread
    nf, nc = write_tif(tmp_path / "nf.tif", ndvi_f), write_tif(tmp_path / "nc.tif", ndvi_c)
    with warnings.catch_warnings():
        warnings.simplefilter("error", STFusionWarning)
        check_scales(FileSource(str(f)), FileSource(str(c3)))
        check_scales(FileSource(str(nf)), FileSource(str(nc)))
        # a coarse target under snow or cloud against a clear pair's coarse image: 15x in
        # a band is weather, not scale (the same --coarse-scale reads both)
        c15 = write_tif(tmp_path / "c15.tif", _img(1) * 15)
        check_scales(FileSource(str(c3)), FileSource(str(c15)), "--coarse-scale", "--coarse-scale")


def test_an_offset_that_turns_one_side_of_a_pair_negative_is_refused(tmp_path: Path) -> None:
    """A Sentinel-2 trial: 0-1 reflectance read with the sentinel2-l2a preset (x 0.0001 -
    0.1) came out -0.1 everywhere against coarse +0.1; equal magnitudes passed every check
    (exit 0, RMSE 0.20). Now refused, naming the file, the reading and the options; dark
    water (a band just below 0) and NDVI are not judged."""
    refl = _img() * 0.2  # 0-1 floats, as Sentinel Hub exports them
    f, c = write_tif(tmp_path / "f.tif", refl), write_tif(tmp_path / "c.tif", coarse_like(refl))
    with pytest.raises(
        ScaleMismatchError,
        match=r"f\.tif is negative at 100% of its pixels in band 1 \(median -0\.09999, read as "
        r"value x 0\.0001 - 0\.1\) where .*c\.tif is positive.*--fine-scale 1 --fine-offset 0",
    ):
        open_scene([(f, c)], c, fine_scaling=Scaling(1e-4, -0.1))
    # the coarse side read with an offset it does not have: its option named
    with pytest.raises(ScaleMismatchError, match=r"c\.tif is negative.*--coarse-scale 1"):
        open_scene([(f, c)], c, coarse_scaling=Scaling(1e-4, -0.1))
    water = write_tif(tmp_path / "w.tif", np.full_like(refl, -0.005) + refl * 0.01)
    ndvi_f = write_tif(tmp_path / "nf.tif", -refl[:1] - 0.05)  # water NDVI on both sides
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", STFusionWarning)  # water against land: 11x, said
        check_scales(FileSource(str(water)), FileSource(str(c)))  # not refused
    with warnings.catch_warnings():
        warnings.simplefilter("error", STFusionWarning)
        check_scales(FileSource(str(ndvi_f)), FileSource(str(ndvi_f)))


def test_fine_grids_must_match_and_ratio_positive(tmp_path: Path) -> None:
    f = write_tif(tmp_path / "f.tif", _img())
    f2 = write_tif(
        tmp_path / "f2.tif", _img(), transform=Affine(30.0, 0, 500030.0, 0, -30.0, 6100000.0)
    )
    with pytest.raises(GridMismatchError, match="share one grid"):
        open_scene([(f, f), (f2, f2)], f)
    with pytest.raises(InvalidParameterError, match="positive"):
        open_scene([(f, f)], f, ratio=-2)


def test_swapped_fine_and_coarse_refused(tmp_path: Path) -> None:
    f = write_tif(tmp_path / "f.tif", _img(0, (2, 64, 64)), transform=T30)
    c = write_tif(
        tmp_path / "c.tif",
        _img(1, (2, 4, 4)),
        transform=Affine(480.0, 0, 500000.0, 0, -480.0, 6100000.0),
    )
    with pytest.raises(GridMismatchError, match="swapped"):
        open_scene([(c, f)], f)


def test_band_names_in_another_order_warn(tmp_path: Path) -> None:
    """The same band names in another order are fused by position: said, with the order."""
    names = ["red", "nir"]
    f = write_tif(tmp_path / "f.tif", _img(), names=names)
    c = write_tif(tmp_path / "c.tif", coarse_like(_img(1)), names=names[::-1])
    with pytest.warns(
        STFusionWarning, match=r"c\.tif: band 1 is nir by its name nir.*--coarse-bands red,nir"
    ):
        open_scene([(f, c)], c)
    same = write_tif(tmp_path / "s.tif", coarse_like(_img(1)), names=names)
    generic = write_tif(tmp_path / "g.tif", coarse_like(_img(1)))
    with warnings.catch_warnings():
        warnings.simplefilter("error", STFusionWarning)
        open_scene([(f, same)], generic)


def test_band_roles_in_another_order_warn(tmp_path: Path) -> None:
    """Landsat band files in red, green, blue order against MODIS in blue, green, red order
    (another naming): fused red with blue without a word, as the names differ."""
    from stfusion.io import FileSource

    def stack(names: list[str], pattern: str, coarse: bool = True) -> FileSource:
        files = [
            write_tif(
                tmp_path / pattern.format(n),
                coarse_like(_img(i, (1, 32, 32))) if coarse else _img(i, (1, 32, 32)),
            )
            for i, n in enumerate(names)
        ]
        return FileSource(",".join(str(f) for f in files))

    fine = stack(
        ["B4", "B3", "B2", "B5", "B6", "B7"], "LC08_L2SP_091084_20011017_02_T1_SR_{}.TIF", False
    )
    assert fine.band_names == ("SR_B4", "SR_B3", "SR_B2", "SR_B5", "SR_B6", "SR_B7")
    modis = "MOD09GA.A2001290.h29v12.sur_refl_b0{}_1.tif"
    swapped = stack(["3", "4", "1", "2", "6", "7"], modis)
    assert swapped.band_names[0] == "sur_refl_b03"  # was refl_b03: no role
    with pytest.warns(STFusionWarning, match=r"band 1 is blue by its name sur_refl_b03.*is red"):
        open_scene([(fine, swapped)], swapped)
    # the same roles in the same order, in two namings: no warning
    ordered = stack(["1", "4", "3", "2", "6", "7"], "x_" + modis)
    with warnings.catch_warnings():
        warnings.simplefilter("error", STFusionWarning)
        open_scene([(fine, ordered)], ordered)


def test_bands_that_match_in_another_order_warn(tmp_path: Path) -> None:
    """A MOD09GA file in MODIS's own band order (red, NIR, blue, green, SWIR1, SWIR2) beside
    Landsat's blue..SWIR2, neither naming its bands, was fused band by band without a word
    (blue with red). The values match far better in the other order: said, with the
    --coarse-bands that fixes it; the same files in one order, or at another scale, are not."""
    from stfusion.demo import sample_dir

    d = sample_dir()
    fine = FileSource(str(d / "CIA_Landsat7_2001-10-17.tif")).read()
    coarse = FileSource(str(d / "CIA_MOD09GA_2001-10-17.tif")).read()
    f = write_tif(tmp_path / "L.tif", fine)
    own = write_tif(tmp_path / "M.tif", coarse[[2, 3, 0, 1, 4, 5]])
    with pytest.warns(
        STFusionWarning,
        match=r"M\.tif: its bands match those of .*L\.tif far better in another order.*"
        r"fine band 1 \(band1\) with coarse band 3.*--coarse-bands 3,4,1,2,5,6",
    ):
        open_scene([(f, own)], own)
    # A 7-band file (MODIS's band 5 among them) read with bands chosen: the advice names the
    # file's band numbers, not positions among those read (an HDF trial: 5 re-read band 5)
    seven = np.concatenate([coarse[[2, 3, 0, 1]], coarse[:1] * 0.5, coarse[4:]])
    m7 = str(write_tif(tmp_path / "M7.tif", seven))
    with pytest.warns(STFusionWarning, match=r"--coarse-bands 3,4,1,2,6,7 \(the file's bands"):
        open_scene([(f, m7)], m7, coarse_scaling=Scaling(bands=(1, 2, 3, 4, 6, 7)))
    with warnings.catch_warnings():
        warnings.simplefilter("error", STFusionWarning)
        fixed = open_scene([(f, own)], own, coarse_scaling=Scaling(bands=(3, 4, 1, 2, 5, 6)))
        assert fixed.pairs[0][1].read().tobytes() == coarse.tobytes()
        fixed = open_scene([(f, m7)], m7, coarse_scaling=Scaling(bands=(3, 4, 1, 2, 6, 7)))
        assert fixed.pairs[0][1].read().tobytes() == coarse.tobytes()
        for values in (coarse, coarse * 1.8, coarse[:2]):  # in order, a scale slip, 2 bands
            c = write_tif(tmp_path / "c.tif", values)
            open_scene([(write_tif(tmp_path / "f.tif", fine[: len(values)]), c)], c)


def test_a_fine_image_given_as_the_coarse_one_warns(tmp_path: Path) -> None:
    """`--coarse L_1102.tif` (a Landsat file where the MODIS one goes) passed every check:
    same grid, same scale, same bands. Its pixel-to-pixel detail gives it away; a coarse
    image of 2 x 2 block means does not, nor does one file as both images (GAN-STFM's fine
    reference as (F, F))."""
    from stfusion.demo import sample_dir

    d = sample_dir()
    f = FileSource(str(d / "CIA_Landsat7_2001-10-17.tif")).read()[:, :96, :96]
    other = FileSource(str(d / "CIA_Landsat7_2001-11-02.tif")).read()[:, :96, :96]
    fine = write_tif(tmp_path / "L_1017.tif", f)
    coarse = write_tif(tmp_path / "M_1017.tif", coarse_like(f, 8))
    landsat = write_tif(tmp_path / "L_1102.tif", other)
    with pytest.warns(
        STFusionWarning, match=r"L_1102\.tif: the coarse target image changes from pixel to"
    ):
        open_scene([(fine, coarse)], landsat)
    with pytest.warns(STFusionWarning, match=r"L_1102\.tif: the coarse image changes"):
        open_scene([(fine, landsat)], coarse)
    with warnings.catch_warnings():
        warnings.simplefilter("error", STFusionWarning)
        two = write_tif(tmp_path / "M2_1017.tif", coarse_like(f, 2))
        open_scene([(fine, coarse)], two)
        open_scene([(f, f)], coarse_like(f, 8))  # one array as both images


def test_predict_process_names_the_coarse_bands_that_fix_the_order(tmp_path: Path) -> None:
    """Through the command (a real process): the warning reaches the user with the option
    that fixes it, the run still completes, and with that option it is silent and the
    prediction is the one from files in one order."""
    from stfusion.demo import sample_dir

    d = sample_dir()
    read = {n: FileSource(str(d / f"CIA_{n}.tif")).read()[:, :100, :100] for n in _CIA}
    f1 = write_tif(tmp_path / "L_1017.tif", read["Landsat7_2001-10-17"])
    order = [2, 3, 0, 1, 4, 5]
    c1 = write_tif(tmp_path / "M_1017.tif", read["MOD09GA_2001-10-17"][order])
    c2 = write_tif(tmp_path / "M_1102.tif", read["MOD09GA_2001-11-02"][order])
    args = ["predict", "-m", "additive", "--pair", str(f1), str(c1), "--coarse", str(c2)]
    run = run_process(*args, "--out", str(tmp_path / "as_is.tif"))
    assert run.returncode == 0 and (tmp_path / "as_is.tif").exists(), run.stderr
    said = " ".join(run.stderr.split())
    assert "far better in another order" in said and "--coarse-bands 3,4,1,2,5,6" in said
    fixed = tmp_path / "fixed.tif"
    run = run_process(*args, "--out", str(fixed), "--coarse-bands", "3,4,1,2,5,6")
    assert run.returncode == 0 and "another order" not in run.stderr, run.stderr
    want = read["Landsat7_2001-10-17"] + read["MOD09GA_2001-11-02"] - read["MOD09GA_2001-10-17"]
    np.testing.assert_allclose(FileSource(str(fixed)).read(), want, atol=1e-6)


_CIA = ("Landsat7_2001-10-17", "MOD09GA_2001-10-17", "MOD09GA_2001-11-02")


@pytest.mark.realdata
def test_real_pairs_match_in_file_order(shared_data: Path) -> None:
    """Every pair of the named cases (and their truth with its coarse target, a pair of one
    date too) matches best in file order, and its coarse image is not taken for a fine one:
    the checks are silent on real fine + coarse pairs of three sensors and two sites' MODIS."""
    from stfusion.cases import named_cases
    from stfusion.scene_checks import warn_bands_matching_another_order, warn_fine_looking_coarse

    for case in named_cases(shared_data).values():
        for fine, coarse in [*case.pairs, (case.truth, case.target)]:
            scene = open_scene(
                [(fine, coarse)],
                fine_scaling=case.fine_scaling,
                coarse_scaling=case.coarse_scaling,
                ratio=case.ratio,
                check=False,
            )
            with warnings.catch_warnings():
                warnings.simplefilter("error", STFusionWarning)
                assert not warn_bands_matching_another_order(*scene.pairs[0]), (case.name, fine)
                assert not warn_fine_looking_coarse(*scene.pairs[0]), (case.name, fine)


def test_undeclared_fill_value_is_refused(tmp_path: Path) -> None:
    """MODIS int16 with -28672 but no nodata tag: read as "reflectance" -2.87 and fused as
    data after a warning (a trial: 28 % of a Fit-FC output below -1, exit 0). A conventional
    fill is refused, with how to declare it; another value so far out (here -2.8672 stored
    as such: a pond's one value may be data) is warned about; clean images say nothing."""
    f = write_tif(tmp_path / "f.tif", _img())
    c = coarse_like(_img(1))
    dn = np.round(c * 1e4).astype(np.int16)
    dn[:, :4, :4] = -28672
    modis = write_tif(tmp_path / "m.tif", dn, dtype="int16", scales=[1e-4] * len(dn))
    with pytest.raises(
        UndeclaredFillError, match=r"m\.tif: .*holds -2\.8672.*undeclared nodata.*-nodata -28672"
    ):
        open_scene([(f, modis)], modis)
    c[:, :4, :4] = -2.8672
    filled = write_tif(tmp_path / "c.tif", c)
    with pytest.warns(
        STFusionWarning, match=r"c\.tif: .*holds -2\.8672.*undeclared nodata.*--coarse-nodata"
    ):
        open_scene([(f, filled)], filled)
    with warnings.catch_warnings():
        warnings.simplefilter("error", STFusionWarning)
        ok = write_tif(tmp_path / "ok.tif", coarse_like(_img(1)))
        open_scene([(f, ok)], ok)
        # declared: read as NaN, no warning (files and arrays alike)
        declared = Scaling(nodata=-2.8672)
        scene = open_scene([(f, filled)], filled, coarse_scaling=declared)
        assert np.isnan(scene.target.read()[:, :4, :4]).all()
        scene = open_scene([(_img(1), c)], c, coarse_scaling=declared)
        assert np.isnan(scene.pairs[0][1].read()[:, :4, :4]).all()
        assert np.isfinite(scene.pairs[0][1].read()[:, 4:, 4:]).all()


def test_nodata_options_declare_a_fill_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--coarse-nodata -9999`` on int16 files without a nodata tag equals the same files
    tagged; ``inspect`` and ``series`` take it too."""
    from conftest import run_cli

    dn = np.round(_img(3, (3, 24, 24)) * 1e4).astype(np.int16)
    dn[:, :5, :5] = -9999
    files = {}
    for tag, nodata in (("bare", None), ("tagged", -9999)):
        for d in ("2020-01-01", "2020-01-09"):
            files[tag, d] = write_tif(tmp_path / f"{tag}_{d}.tif", dn, dtype="int16", nodata=nodata)
    fine = write_tif(tmp_path / "F_2020-01-01.tif", _img(3, (3, 24, 24)))
    outs = {}
    for tag, extra in (("tagged", []), ("bare", ["--coarse-nodata", "-9999"])):
        out = tmp_path / f"{tag}.tif"
        args = ["predict", "-q", "-m", "starfm", "-p", "window=5", "--coarse-scale", "1e-4"]
        args += ["--pair", str(fine), str(files[tag, "2020-01-01"])]
        args += ["--coarse", str(files[tag, "2020-01-09"]), "--out", str(out), *extra]
        code, _, err = run_cli(args, capsys)
        assert code == 0, err
        outs[tag] = FileSource(str(out)).read()
    np.testing.assert_array_equal(outs["bare"], outs["tagged"])
    assert np.isnan(outs["bare"][:, :5, :5]).mean() > 0.5  # the fill is not fused as data
    code, out, err = run_cli(
        [
            *("inspect", str(fine), str(files["bare", "2020-01-01"])),
            *("--coarse-nodata", "-9999", "--coarse-scale", "1e-4"),
        ],
        capsys,
    )
    assert code == 0, err
    assert "-9999 given (as stored)" in out and "valid     95.7% of pixels" in out


def test_dataarrays_and_arrays_read_as_files_are(tmp_path: Path) -> None:
    """A DataArray takes the Scaling given (or its scale_factor), its rio nodata, any
    dimension order and a single selected band; a masked array's mask and infinities are
    NaN. They were used raw (x10000 "reflectance"), transposed or refused."""
    import rioxarray

    from stfusion.io import Scaling
    from stfusion.scene import as_source

    img = _img(3, (2, 16, 16))
    path = write_tif(tmp_path / "i16.tif", np.round(img * 1e4).astype(np.int16), nodata=-9999)
    with rasterio.open(path, "r+") as ds:
        data = ds.read()
        data[:, :2, :2] = -9999
        ds.write(data)
    want = FileSource(str(path), Scaling(1e-4)).read()
    da = rioxarray.open_rasterio(path)
    np.testing.assert_array_equal(as_source(da, Scaling(1e-4)).read(), want)
    assert np.isnan(want[:, :2, :2]).all()
    yxb = da.transpose("y", "x", "band")
    np.testing.assert_array_equal(as_source(yxb, Scaling(1e-4)).read(), want)
    one = as_source(da.sel(band=2), Scaling(1e-4))
    np.testing.assert_array_equal(one.read(), want[1:2])
    scaled = da.copy()
    scaled.attrs["scale_factor"] = 1e-4
    np.testing.assert_array_equal(as_source(scaled).read(), want)
    masked = np.ma.masked_array(img, mask=img > 0.35)
    arr = as_source(masked).read()
    assert np.isnan(arr[img > 0.35]).all() and np.isfinite(arr[img <= 0.35]).all()
    inf = img.copy()
    inf[0, 0, 0] = np.inf
    assert np.isnan(as_source(inf).read()[0, 0, 0])
    with pytest.raises(InvalidParameterError, match="1 dimension"):
        as_source(np.zeros(5))


def test_python_call_mistakes_get_messages(tmp_path: Path) -> None:
    """fit((F, C)) without the list, a ratio given as text: said plainly (they were
    "too many values to unpack" and "'>' not supported between 'str' and 'int'")."""
    f, c = _img(), _img(1)
    with pytest.raises(InvalidParameterError, match=r"give \[\(fine, coarse\)\] for one pair"):
        open_scene((f, c))  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="ratio='16': give a number"):
        open_scene([(f, c)], ratio="16")  # type: ignore[arg-type]
    assert open_scene([(f, c)], ratio=np.int64(16)).ratio == 16


def test_fill_error_gives_the_stored_value_through_an_aligned_image(tmp_path: Path) -> None:
    """A coarse target on its own grid (read through its alignment) named the scaled value
    (-0.9999), which --coarse-nodata does not match; the file stores -9999."""
    f = write_tif(tmp_path / "f.tif", _img(0, (2, 64, 64)), transform=T30)
    dn = np.round(_img(1, (2, 8, 8)) * 10000).astype(np.int16)
    t240 = Affine(240.0, 0, 500000.0, 0, -240.0, 6100000.0)

    def coarse(name: str) -> Path:
        return write_tif(tmp_path / name, dn, transform=t240, dtype="int16", scales=[1e-4] * 2)

    c = coarse("c.tif")
    dn[:, :2, :2] = -9999
    t = coarse("t.tif")
    with pytest.raises(UndeclaredFillError, match=r"--coarse-nodata -9999 "):
        open_scene([(f, c)], t)


def test_fill_error_gives_the_stored_value_of_an_array() -> None:
    """int16 arrays with Scaling(1e-4): the message named -1 (the scaled -0.9999 undone by
    nothing), which matches no stored value; it is -9999."""
    rng = np.random.default_rng(0)
    fine = np.round(rng.uniform(100, 4000, (2, 40, 40))).astype(np.int16)
    target = fine + np.int16(50)
    target[:, :6, :6] = -9999
    with pytest.raises(UndeclaredFillError, match=r"Scaling\(nodata=-9999\)"):
        open_scene([(fine, fine)], target, fine_scaling=Scaling(1e-4), coarse_scaling=Scaling(1e-4))


def test_a_fill_inside_the_values_range_written_to_every_band_warns(tmp_path: Path) -> None:
    """A user trial: an int16 fine image with 0 in a third of its pixels and no nodata tag
    was fused as dark pixels without a word, an all-zero coarse target likewise, and a target
    of -9999 throughout was refused as a scale mismatch ("median 9999", rescale). A value in
    every band at once is a fill's signature (no surface measures one exact value in every
    band); the check names it and the option that declares it."""
    f = write_tif(tmp_path / "f.tif", _img())
    dn = np.round(_img(0) * 1e4).astype(np.int16)
    dn[:, :, :10] = 0
    zeros = write_tif(tmp_path / "f0.tif", dn, dtype="int16")
    c = write_tif(tmp_path / "c.tif", coarse_like(_img(1)))
    with pytest.warns(STFusionWarning, match=r"f0\.tif: .*% of the pixels hold 0 in every band"):
        open_scene([(FileSource(str(zeros), Scaling(1e-4)), c)], c)
    # a few slightly negative pixels, as surface reflectance has (0.2 % of a Landsat SWIR
    # band): the fill 0 was no longer the bottom of that band, and went unflagged
    dn[1, 20:22, 20:24] = -30
    neg = write_tif(tmp_path / "f0n.tif", dn, dtype="int16")
    with pytest.warns(STFusionWarning, match=r"f0n\.tif: .*% of the pixels hold 0 in every band"):
        open_scene([(FileSource(str(neg), Scaling(1e-4)), c)], c)
    flat = write_tif(tmp_path / "t.tif", np.full_like(_img(2), -9999.0))
    with pytest.warns(
        STFusionWarning, match=r"t\.tif: 100\.0% of the pixels hold -9999 .*--coarse-nodata -9999"
    ):
        open_scene([(f, c)], flat)  # no ScaleMismatchError: one value says nothing of a scale
    with warnings.catch_warnings():  # one band (an NDVI lake of one value): no such rule
        warnings.simplefilter("error", STFusionWarning)
        one = _img(3)[:1]
        one[:, :, :10] = 0.0
        c1 = write_tif(tmp_path / "c1.tif", coarse_like(_img(1)[:1]))
        open_scene([(write_tif(tmp_path / "f1.tif", one), c1)], c1)


def test_saturation_and_chance_equalities_are_not_taken_for_a_fill(tmp_path: Path) -> None:
    """A trial of the rule above: images clipped at 0.3 (bright cloud saturating every band)
    were told to declare 0.3 as nodata, and 2-band 8-bit images where green happens to equal
    red in 2 % of the pixels were warned about too. A fill is the bottom of every band."""
    rng = np.random.default_rng(3)
    clipped = np.minimum(rng.uniform(0.05, 0.6, (4, 32, 32)), 0.3).astype(np.float32)
    u8 = rng.integers(10, 30, (2, 32, 32)).astype(np.float32) / 255  # equal by chance ~5 %
    for name, img in (("clipped", clipped), ("u8", u8)):
        f = write_tif(tmp_path / f"{name}_f.tif", img)
        c = write_tif(tmp_path / f"{name}_c.tif", coarse_like(img) + 0.01)
        with warnings.catch_warnings():
            warnings.simplefilter("error", STFusionWarning)
            open_scene([(f, c)], c)


def test_a_fine_reference_s_scale_advice_names_the_fine_option(tmp_path: Path) -> None:
    """--fine-ref reads the reference with the fine options: a reference x10000 against a
    reflectance target is fixed by --fine-scale, not by rescaling files."""
    from stfusion.errors import ScaleMismatchError

    ref = write_tif(tmp_path / "ref.tif", np.round(_img(4) * 1e4), dtype="int16")
    target = write_tif(tmp_path / "t.tif", _img(5))
    src = FileSource(str(ref))
    with pytest.raises(ScaleMismatchError, match=r"--fine-scale 0\.0001"):
        open_scene([(src, FileSource(str(ref)))], target)


def _texture(seed: int, shape: tuple[int, int, int] = (3, 64, 64)) -> np.ndarray:
    """int16 x 10000 reflectance with a surface's spread of values (many pixels per value)."""
    rng = np.random.default_rng(seed)
    return np.round(1e4 * (0.02 + 0.04 * rng.random(shape))).astype(np.int16)


def test_a_declared_nodata_that_is_also_a_data_value_warns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A user trial: int16 files declaring nodata 293, a value the red band holds in
    scattered pixels, lost those pixels as gaps without a word (GDAL's rule). Gaps one by one
    among valid neighbours, at a value inside the band's range, are said, by predict and by
    inspect; a real fill (-9999 over a corner) and cloud-like patches are not."""
    from conftest import run_cli

    dn = _texture(0)
    value = int(np.median(dn[1]))
    f = write_tif(tmp_path / "f.tif", dn, dtype="int16", nodata=value)
    c = write_tif(tmp_path / "c.tif", coarse_like(dn.astype(np.float32) * 1e-4))
    scaling = Scaling(1e-4)
    said = rf"f\.tif: its declared nodata {value} is also a value of the data: .* of band \d"
    with pytest.warns(STFusionWarning, match=said + r".*gdal_edit\.py -unsetnodata"):
        open_scene([(FileSource(str(f), scaling), c)], c)
    code, out, _ = run_cli(["inspect", str(f), "--fine-scale", "1e-4"], capsys)
    assert code == 0 and re.search(r"CHECK +\S*" + said, out)
    # a fill over a corner and patches of 2 x 2 missing pixels (clouds, a mask): silent
    dn = _texture(1)
    dn[:, :20, :20] = -9999
    for r, col in np.random.default_rng(2).integers(22, 60, (40, 2)):
        dn[:, r : r + 2, col : col + 2] = -9999
    fill = write_tif(tmp_path / "fill.tif", dn, dtype="int16", nodata=-9999)
    with warnings.catch_warnings():
        warnings.simplefilter("error", STFusionWarning)
        open_scene([(FileSource(str(fill), scaling), c)], c)


@given(
    st.lists(st.tuples(st.integers(0, 30), st.integers(0, 30)), max_size=30),
    st.floats(0.02, 0.06),
)
def test_gaps_in_patches_are_never_taken_for_a_colliding_nodata(
    corners: list[tuple[int, int]], fill: float
) -> None:
    """Missing pixels that come in patches of at least 2 x 2 (clouds, masks, edges) are not
    scattered gaps, whatever the fill value."""
    from stfusion.scene_checks import scattered_gaps

    sample = (0.02 + 0.04 * np.random.default_rng(0).random((2, 32, 32))).astype(np.float32)
    for r, c in corners:
        sample[:, r : r + 2, c : c + 2] = np.nan
    assert scattered_gaps(sample, fill) is None


def test_degenerate_arrays_and_a_ratio_beyond_the_scene_are_said() -> None:
    """A notebook trial: complex arrays (imaginary part dropped), booleans (read as 0/1
    reflectance) and dates were fused without a word, and so was a ratio larger than the
    scene (less than one coarse pixel across). Refused by dtype; the ratio warned about."""
    import xarray as xr

    from stfusion.methods import get_method

    fine = _img(0)
    coarse = coarse_like(fine) + 0.01
    starfm = get_method("starfm")
    for bad in (fine.astype(np.complex64), fine > 0.2, (fine * 100).astype("datetime64[D]")):
        for image in (bad, xr.DataArray(bad, dims=("band", "y", "x"))):
            with pytest.raises(
                InvalidParameterError, match=r"dtype .*\((complex|bool|date).*float"
            ):
                starfm().fit([(image, coarse)], ratio=4)
    starfm().fit([(fine.astype(np.int16), coarse)], ratio=4)  # integers are numbers
    with pytest.warns(STFusionWarning, match=r"ratio=40 is more than the scene's 32 x 32"):
        starfm().fit([(fine, coarse)], ratio=40)
