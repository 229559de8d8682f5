"""What a user of the Python API gives: DataArrays (names, coordinates, labels), arrays in
another axis order, scalings, masks as arrays, the common mistakes of a fit call, the
ensemble's members and the typing. Each test failed before its fix (a user trial)."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from affine import Affine
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import coarse_like
from stfusion.errors import (
    GridMismatchError,
    InputFileError,
    InvalidParameterError,
    OutputExistsError,
    STFusionWarning,
)
from stfusion.io import ArraySource, FileSource, Grid, Scaling
from stfusion.methods.baselines import Additive
from stfusion.methods.ensemble import Ensemble
from stfusion.methods.starfm import STARFM
from stfusion.qa import MaskedSource
from stfusion.scene import as_source, open_scene

CRS_UTM = "EPSG:32755"


def _images(n: int = 40, bands: int = 2, seed: int = 0) -> tuple[np.ndarray, ...]:
    """Fine, coarse and coarse target (band, y, x) float32 reflectances on one grid."""
    rng = np.random.default_rng(seed)
    f = rng.uniform(0.05, 0.4, (bands, n, n)).astype(np.float32)
    c = (f + 0.01).astype(np.float32)
    return f, c, (c + 0.02).astype(np.float32)


def _da(
    a: np.ndarray, dims: tuple[str, str, str] = ("band", "y", "x"), crs: bool = True
) -> xr.DataArray:
    import rioxarray  # noqa: F401

    b, h, w = a.shape
    da = xr.DataArray(
        a,
        dims=dims,
        coords={
            dims[0]: np.arange(1, b + 1),  # integer labels, as rioxarray.open_rasterio gives
            dims[1]: 6150000.0 - 50.0 * (np.arange(h) + 0.5),
            dims[2]: 400000.0 + 50.0 * (np.arange(w) + 0.5),
        },
    )
    if dims[1:] != ("y", "x"):
        da.rio.set_spatial_dims(x_dim=dims[2], y_dim=dims[1], inplace=True)
    da = da.rio.write_transform(Affine(50.0, 0, 400000.0, 0, -50.0, 6150000.0))
    return da.rio.write_crs(CRS_UTM) if crs else da


# ------------------------------------------------------------------- DataArrays (1, 2, 11)


def test_two_d_inputs_give_a_two_d_prediction() -> None:
    """A (y, x) array or DataArray came back (1, y, x): `.plot()` drew a histogram."""
    f, c, t = (a[0] for a in _images())
    pred = Additive().fit([(f, c)], ratio=10).predict(t)
    assert pred.dims == ("y", "x")
    np.testing.assert_allclose(pred.values, f + 0.02, atol=1e-6)
    g = _da(f[None], ("band", "y", "x")).isel(band=0, drop=True)
    pred = Additive().fit([(g, g.copy(data=c))], ratio=10).predict(g.copy(data=t))
    assert pred.dims == ("y", "x") and pred.rio.crs == g.rio.crs
    assert pred.rio.transform() == g.rio.transform()
    # a one-band cube stays a cube
    g3 = _da(f[None], ("band", "y", "x"))
    assert Additive().fit([(g3, g3.copy(data=c[None]))], ratio=10).predict(
        g3.copy(data=t[None])
    ).dims == ("band", "y", "x")


@pytest.mark.parametrize("dims", [("band", "lat", "lon"), ("band", "latitude", "longitude")])
def test_dataarray_spatial_dims_keep_crs_and_coords(dims: tuple[str, str, str]) -> None:
    """lat/lon dims lost the CRS and came back as pixel indices, silently."""
    f, c, t = _images()
    g = _da(f, dims)
    pred = Additive().fit([(g, g.copy(data=c))], ratio=10).predict(g.copy(data=t))
    assert pred.dims == dims
    assert pred.rio.crs == g.rio.crs
    np.testing.assert_array_equal(pred[dims[1]].values, g[dims[1]].values)
    np.testing.assert_array_equal(pred[dims[2]].values, g[dims[2]].values)
    assert pred.rio.transform() == g.rio.transform()
    np.testing.assert_allclose(pred.values, f + 0.02, atol=1e-6)


def test_dataarray_scaled_by_hand_is_not_scaled_again() -> None:
    """xarray keeps attrs through ``da * 1e-4``: the scale_factor was applied a second time,
    predictions 10^4 too small, no warning. Stored integers (masked=True gives them as
    floats) are still scaled by it."""
    f, c, t = _images()
    dn = [_da(np.round(a * 1e4).astype(np.float32)) for a in (f, c, t)]
    for d in dn:
        d.attrs["scale_factor"] = 1e-4
    pred = Additive().fit([(dn[0], dn[1])], ratio=10).predict(dn[2])
    np.testing.assert_allclose(pred.values, f + 0.02, atol=2e-4)
    by_hand = [d * 1e-4 for d in dn]
    assert by_hand[0].attrs["scale_factor"] == 1e-4  # what xarray does
    with pytest.raises(InputFileError, match=r"already look scaled.*attrs.pop\('scale_factor'\)"):
        Additive().fit([(by_hand[0], by_hand[1])], ratio=10)
    one = Scaling(1.0)
    est = Additive().fit([(by_hand[0], by_hand[1])], ratio=10, fine_scaling=one, coarse_scaling=one)
    np.testing.assert_allclose(est.predict(by_hand[2]).values, f + 0.02, atol=2e-4)
    # a trial of this check: a fill of 0 over most of the scene, kelvin products (Landsat
    # ST with an offset, MODIS LST at 0.02) scaled by hand, all slipped through
    from stfusion.io.dataarray import dataarray_source

    filled = by_hand[0].copy()
    filled.values[:, :25] = 0.0
    kelvin = _da((290 + 10 * f).astype(np.float32))
    st = kelvin.assign_attrs(scale_factor=0.00341802, add_offset=149.0)
    lst = kelvin.assign_attrs(scale_factor=0.02)
    for da in (filled, st, lst):
        with pytest.raises(InputFileError, match="already look scaled"):
            dataarray_source(da, None, "x")
    # stored values resampled bilinearly are not integers, and are not scaled yet: scaled
    resampled = _da((f * 1e4 + 0.37).astype(np.float32)).assign_attrs(scale_factor=1e-4)
    np.testing.assert_allclose(dataarray_source(resampled, None, "x").read(), f, atol=1e-4)


def test_predict_warns_of_a_fine_image_given_as_the_coarse_target() -> None:
    """A user trial: ``est.predict(L_0317)`` gave a plausible prediction without a word,
    while the CLI and fit() warn of a fine image where a coarse one goes."""
    rng = np.random.default_rng(5)
    f1, f2 = (rng.uniform(0.05, 0.4, (2, 32, 32)).astype(np.float32) for _ in range(2))
    est = Additive().fit([(f1, coarse_like(f1))], ratio=4)
    with pytest.warns(STFusionWarning, match="coarse target image changes from pixel to pixel"):
        est.predict(f2)
    with warnings.catch_warnings():
        warnings.simplefilter("error", STFusionWarning)
        est.predict(coarse_like(f2))


def test_run_prediction_given_arrays_says_to_use_an_estimator(tmp_path: Path) -> None:
    """A user trial: run_prediction with DataArrays was a bare TypeError from os.fspath."""
    from stfusion.api import run_prediction

    f, c, t = _images()
    with pytest.raises(InvalidParameterError, match=r"given a DataArray.*make_estimator"):
        run_prediction(
            method="additive", pairs=[(_da(f), _da(c))], target=_da(t), out=tmp_path / "o.tif"
        )


def test_dataarray_coords_and_integer_bands_come_back_as_given() -> None:
    """Integer band labels came back as strings (pred.sel(band=1) KeyError); coordinates are
    the input's own values, not recomputed ones."""
    f, c, t = _images()
    g = _da(f)
    pred = Additive().fit([(g, g.copy(data=c))], ratio=10).predict(g.copy(data=t))
    assert pred.band.dtype == g.band.dtype and list(pred.band.values) == [1, 2]
    np.testing.assert_allclose(pred.sel(band=1).values, f[0] + 0.02, atol=1e-6)
    assert np.array_equal(pred.x.values, g.x.values) and np.array_equal(pred.y.values, g.y.values)
    # a (y, x, band) DataArray: the output is (band, y, x), labels kept
    yxb = g.transpose("y", "x", "band")
    pred2 = (
        Additive()
        .fit([(yxb, yxb.copy(data=np.moveaxis(c, 0, -1)))], ratio=10)
        .predict(yxb.copy(data=np.moveaxis(t, 0, -1)))
    )
    assert pred2.dims == ("band", "y", "x") and list(pred2.band.values) == [1, 2]
    np.testing.assert_array_equal(pred2.values, pred.values)


@pytest.mark.parametrize("dim", ["x", "y"])
def test_irregular_coordinates_are_refused(dim: str) -> None:
    """A dropped column was silently made a regular grid (every pixel after it shifted)."""
    f, c, _ = _images()
    keep = [*range(20), *range(21, 40)]
    g = _da(f).isel({dim: keep})
    with pytest.raises(GridMismatchError, match=rf"the {dim} coordinates are not evenly spaced"):
        Additive().fit([(g, g.copy(data=c[:, :, keep] if dim == "x" else c[:, keep]))], ratio=10)
    # a rounding-level wobble is not refused (float32 coordinates)
    wobbly = _da(f)
    wobbly = wobbly.assign_coords(x=wobbly.x.values.astype(np.float32).astype(np.float64))
    assert as_source(wobbly).grid.res == pytest.approx((50.0, 50.0), rel=1e-3)


def test_dataarray_with_extra_dimensions_is_refused_plainly() -> None:
    f, *_ = _images()
    with pytest.raises(InvalidParameterError, match=r"Select one time \(e\.g\. \.isel\(time=0\)\)"):
        as_source(_da(f).expand_dims(time=2))


# ---------------------------------------------------------------- (y, x, band) arrays (3)


def test_band_last_numpy_array_warns() -> None:
    """(60, 60, 6) was read as 60 bands of 60 x 6 pixels, silently."""
    a = np.random.default_rng(0).uniform(0, 1, (60, 60, 6)).astype(np.float32)
    with pytest.warns(STFusionWarning, match=r"np\.moveaxis\(a, -1, 0\)"):
        src = as_source(a)
    assert src.count == 60  # read as given: warned, not refused
    with warnings.catch_warnings():
        warnings.simplefilter("error", STFusionWarning)
        as_source(np.moveaxis(a, -1, 0))  # (band, y, x): nothing to say
        as_source(np.zeros((120, 40, 40), np.float32))  # a hyperspectral cube, band first
    # band-last fine and coarse arrays: the band-count error says which order is read (a
    # user trial: "12 bands but fine has 120 ... --coarse-bands 3,4,1,2,6,7")
    from stfusion.methods.baselines import Additive

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", STFusionWarning)
        with pytest.raises(GridMismatchError, match=r"If yours are \(y, x, band\)"):
            Additive().fit([(a, a[::6, ::6])])


# ------------------------------------------------------------------------ Scaling (4, 5)


def test_a_number_is_a_scaling() -> None:
    """fine_scaling=1e-4 crashed with "'float' object has no attribute 'nodata'"."""
    f, c, t = _images()
    stored = np.round(f * 1e4).astype(np.int16)
    a = Additive().fit([(stored, c)], fine_scaling=1e-4, ratio=10).predict(t)
    b = Additive().fit([(stored, c)], fine_scaling=Scaling(1e-4), ratio=10).predict(t)
    np.testing.assert_array_equal(a.values, b.values)
    with pytest.raises(InvalidParameterError, match=r"fine_scaling='1e-4': give a Scaling"):
        open_scene([(f, c)], fine_scaling="1e-4")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"scale": 0}, "scale"),
        ({"scale": -1}, "scale"),
        ({"scale": "1e-4"}, "scale"),
        ({"scale": float("nan")}, "scale"),
        ({"scale": True}, "scale"),
        ({"offset": float("inf")}, "offset"),
        ({"offset": "0.1"}, "offset"),
        ({"nodata": float("nan")}, "nodata"),
        ({"nodata": "-9999"}, "nodata"),
        ({"bands": (0, 1)}, "bands"),
        ({"bands": (1.5,)}, "bands"),
        ({"bands": 3}, "bands"),
        ({"bands": ("red", None)}, "bands"),
    ],
)
def test_scaling_refuses_what_cannot_scale(kwargs: dict[str, object], field: str) -> None:
    """Scaling(0) behaved as 1 for arrays and zeroed files; Scaling("1e-4") failed in numpy."""
    with pytest.raises(InvalidParameterError, match=rf"Scaling\({field}="):
        Scaling(**kwargs)  # type: ignore[arg-type]


def test_scaling_bands_take_numbers_and_a_comma_list() -> None:
    """Scaling(bands=(3, 4)) failed deep in the band reader ('int' object has no attribute
    'isdigit'), and bands="3,4" was read letter by letter ('3', ',', '4')."""
    assert Scaling(bands=(3, np.int64(4), " nir")).bands == ("3", "4", "nir")
    assert Scaling(bands="3, 4,1").bands == ("3", "4", "1")
    assert Scaling(bands=()).bands is None


def test_scaling_offset_alone_keeps_scale_one() -> None:
    a = np.full((1, 4, 4), 0.5, np.float32)
    np.testing.assert_array_equal(as_source(a, Scaling(offset=0.1)).read(), a + np.float32(0.1))
    np.testing.assert_array_equal(as_source(a, Scaling(np.float32(2.0))).read(), a * 2)


def test_cli_scale_options_still_give_their_own_usage_errors(
    small_tifs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from conftest import predict_args, run_cli

    args = predict_args(small_tifs, tmp_path / "p.tif", "--fine-scale", "0")
    code, _, err = run_cli(args, capsys)
    assert code == 2 and "must be greater than 0" in err and "Traceback" not in err


# ------------------------------------------------------------------------ ensemble (6, 16)


def test_ensemble_warns_when_members_are_skipped() -> None:
    """members="fitfc,fsdaf,starfm" on two pairs became STARFM alone, said at INFO only."""
    f, c, _ = _images(32)
    f0, c0, _ = _images(32, seed=1)
    est = Ensemble(members="fitfc,fsdaf,starfm", member_params={"starfm": {"window": 5}})
    with pytest.warns(STFusionWarning) as rec:
        est.fit([(f0, c0), (f, c)], ratio=8)
    msg = " ".join(str(w.message) for w in rec)
    assert "fitfc, fsdaf skipped" in msg and "multi_pair='vip'" in msg
    assert "starfm's alone" in msg
    assert est.members_ == ["starfm"]


def test_default_ensemble_on_one_pair_does_not_warn_about_estarfm() -> None:
    """ESTARFM and ROBOT need two pairs: on one, nothing can change that, so no warning each
    run; nor for the default members given by name, or some of them (the earlier default)."""
    f, _, _ = _images(32)
    c = coarse_like(f) + np.float32(0.01)
    for members in (
        "fitfc,fsdaf,starfm,estarfm,robot",
        "robot, estarfm, starfm, fsdaf, fitfc",
        "fitfc,fsdaf,starfm,estarfm",
    ):
        est = Ensemble(members=members, member_params={"starfm": {"window": 5}})
        with warnings.catch_warnings():
            warnings.simplefilter("error", STFusionWarning)
            est.fit([(f, c)], ratio=8)
        assert "estarfm" not in est.members_ and len(est.members_) == 3


def test_clone_does_not_share_member_params() -> None:
    params = {"starfm": {"window": 31}}
    est = Ensemble(members="starfm,fitfc", member_params=params)
    twin = est.clone()
    assert twin.member_params == params and twin.member_params is not params
    assert twin.member_params is not None
    twin.member_params["starfm"]["window"] = 5
    assert params["starfm"]["window"] == 31 and est.member_params["starfm"]["window"] == 31  # type: ignore[index]


# ------------------------------------------------------------------------- mask arrays (7)


def test_mask_as_a_numpy_array() -> None:
    """A numpy mask was taken for a path: InputFileError printing the array as a glob."""
    f, *_ = _images(8, 2)
    img = ArraySource(f, Grid(None, Affine.identity(), 8, 8))
    mask = np.zeros((8, 8), bool)
    mask[:2] = True
    out = MaskedSource(img, mask).read()
    assert np.isnan(out[:, :2]).all() and np.isfinite(out[:, 2:]).all()
    with pytest.raises(GridMismatchError, match=r"an array of shape \(7, 8\)"):
        MaskedSource(img, np.zeros((7, 8)))
    with pytest.raises(InvalidParameterError, match="mask: a dict; give a path"):
        MaskedSource(img, {"a": 1})  # type: ignore[arg-type]


# -------------------------------------------------------------------- fit mistakes (8)


def test_fit_keyword_typo_names_fit_and_the_close_match() -> None:
    f, c, _ = _images()
    with pytest.raises(
        InvalidParameterError, match=r"unknown keyword 'ration'\. Did you mean 'ratio'\?"
    ):
        Additive().fit([(f, c)], ration=10)
    with pytest.raises(InvalidParameterError, match=r"window is a parameter of the method"):
        STARFM().fit([(f, c)], window=31)
    # a user trial: fit(target=...) was accepted, then predict() asked for the target
    with pytest.raises(InvalidParameterError, match=r"given to predict\(target\), not to fit"):
        Additive().fit([(f, c)], ratio=10, target=c)


def test_fit_takes_any_iterable_of_pairs() -> None:
    """zip(fines, coarses) or a generator: "object of type 'zip' has no len()"."""
    f, c, t = _images()
    f0, c0, _ = _images(seed=1)
    want = STARFM(window=5).fit([(f0, c0), (f, c)]).predict(t)
    got = STARFM(window=5).fit(zip([f0, f], [c0, c])).predict(t)
    np.testing.assert_array_equal(got.values, want.values)
    got = STARFM(window=5).fit(p for p in [(f0, c0), (f, c)]).predict(t)
    np.testing.assert_array_equal(got.values, want.values)
    with pytest.raises(InvalidParameterError, match="pairs must be a list"):
        STARFM().fit(5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        (
            {"pair_dates": ["yesterday"]},
            r"pair_dates\[0\]='yesterday': not a date; give 'YYYY-MM-DD'",
        ),
        ({"pair_dates": "2001-10-17"}, r"give a list of dates, one per pair"),
        ({"pair_dates": [20011017]}, r"pair_dates\[0\]=20011017: not a date"),
        ({"target_date": "tomorrow"}, r"target_date='tomorrow': not a date"),
        ({"resampling": "bogus"}, r"resampling='bogus': unknown; choose from nearest, bilinear"),
    ],
)
def test_fit_argument_mistakes_are_named(kw: dict[str, object], match: str) -> None:
    f, c, _ = _images()
    with pytest.raises(InvalidParameterError, match=match):
        Additive().fit([(f, c)], ratio=10, **kw)


def test_resampling_checked_for_files_too(small_tifs: dict[str, Path]) -> None:
    with pytest.raises(InvalidParameterError, match="resampling='bogus'"):
        Additive().fit([(small_tifs["f1"], small_tifs["c1"])], resampling="bogus")


# ------------------------------------------------------------------------ output exists (12)


def test_existing_output_names_the_python_keyword(tmp_path: Path) -> None:
    f, c, t = _images()
    out = tmp_path / "p.tif"
    est = Additive().fit([(f, c)], ratio=10)
    est.predict(t, out=out)
    with pytest.raises(OutputExistsError, match=r"overwrite=True.*--overwrite"):
        est.predict(t, out=out)
    assert est.predict(t, out=out, overwrite=True) == out


# ---------------------------------------------------------------------------- typing (9)


def test_package_is_typed_and_fit_returns_self_type() -> None:
    import importlib.resources
    import inspect

    from stfusion.methods.base import FusionMethod

    assert importlib.resources.files("stfusion").joinpath("py.typed").is_file()
    for name in ("fit", "prepare", "set_params", "clone"):
        assert inspect.signature(getattr(FusionMethod, name)).return_annotation == "Self"


@pytest.mark.slow
def test_strict_mypy_sees_precise_types(tmp_path: Path) -> None:
    """`mypy --strict` on user code: stfusion typed, fit -> the class, predict (and fuse)
    -> DataArray without out= and the path with it."""
    pytest.importorskip("mypy")
    user = tmp_path / "user.py"
    user.write_text(
        "import numpy as np\n"
        "import xarray as xr\n"
        "from stfusion.methods.ensemble import Ensemble\n"
        "from stfusion.methods.starfm import STARFM\n"
        "f = np.zeros((6, 10, 10), np.float32)\n"
        "est = Ensemble(members='fitfc,starfm').fit([(f, f)], ratio=10)\n"
        "members: list[str] = est.members_\n"
        "pred: xr.DataArray = STARFM().fit([(f, f)]).predict(f)\n"
        "path: str = str(STARFM().fit([(f, f)]).predict(f, out='p.tif'))\n"
        "reveal_type(STARFM().fit([(f, f)]).predict(f, out='p.tif'))\n"
        "reveal_type(STARFM().fit([(f, f)]).predict(f))\n"
        "from stfusion.methods import fuse\n"
        "reveal_type(fuse(STARFM(), [(f, f)], f, out='p.tif'))\n"
        "reveal_type(fuse(STARFM(), [(f, f)], f, mem_limit_mb=100))\n"
    )
    # In a process of its own: mypy in this one left its heap and GC thresholds behind, and
    # every later test of the worker ran up to 10x slower (test_ensemble.py: 27 s -> 300 s).
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--python-version",
         "3.11", str(user)],
        capture_output=True, text=True, cwd=tmp_path, timeout=600,
    )  # fmt: skip
    out, code = done.stdout, done.returncode
    assert code == 0, out + done.stderr
    revealed = [line for line in out.splitlines() if "Revealed type" in line]
    assert "str | os.PathLike[" in revealed[0] and "DataArray" in revealed[1], out
    assert "str | os.PathLike[" in revealed[2] and "DataArray" in revealed[3], out  # fuse


@pytest.mark.parametrize("bad", [None, np.full((2, 4, 4), "x")])
def test_an_image_that_is_no_array_of_numbers_is_named(bad: object) -> None:
    """None or text gave "could not convert string to float" or "0 dimension(s)"."""
    f, *_ = _images(4)
    said = r"coarse: (a NoneType.*give a path|an array of dtype <U1 \(text\); give the measured)"
    with pytest.raises(InvalidParameterError, match=said):
        open_scene([(f, bad)])


def test_mask_path_is_kept_as_a_string(tmp_path: Path) -> None:
    """A pathlib.Path mask is recorded as its string (provenance writes it)."""
    from conftest import write_tif

    f, *_ = _images(8, 1)
    img_path = write_tif(tmp_path / "i.tif", f)
    mask_path = write_tif(tmp_path / "m.tif", np.zeros((1, 8, 8), np.uint8))
    masked = MaskedSource(FileSource(str(img_path)), mask_path)
    assert masked.mask == str(mask_path)


def test_a_target_given_after_fit_is_resampled_as_fit_was_told(tmp_path: Path) -> None:
    """``fit(..., resampling="bilinear")`` then ``predict("target.tif")`` reprojected the
    target with nearest neighbour: the scene did not keep the resampling."""
    from conftest import write_tif

    rng = np.random.default_rng(3)
    fine_t = Affine(30.0, 0, 500000.0, 0, -30.0, 6000000.0)
    coarse_t = Affine(480.0, 0, 500000.0 - 100.0, 0, -480.0, 6000000.0 + 70.0)
    f = write_tif(tmp_path / "f.tif", rng.uniform(0.1, 0.4, (2, 64, 64)), transform=fine_t)
    c1 = write_tif(tmp_path / "c1.tif", rng.uniform(0.1, 0.4, (2, 6, 6)), transform=coarse_t)
    c2 = write_tif(tmp_path / "c2.tif", rng.uniform(0.1, 0.4, (2, 6, 6)), transform=coarse_t)
    est = Additive().fit([(str(f), str(c1))], resampling="bilinear")
    est.prepare(str(c2))
    want = open_scene([(str(f), str(c1))], str(c2), resampling="bilinear", check=False).target
    assert want is not None
    np.testing.assert_array_equal(est.target_.read(), want.read())
    nearest = open_scene([(str(f), str(c1))], str(c2), check=False).target
    assert nearest is not None and not np.array_equal(nearest.read(), want.read())


def test_masked_source_needs_a_source_and_says_masks(tmp_path: Path) -> None:
    """``MaskedSource("f.tif", mask)`` raised AttributeError; a DataArray mask on a coarser
    grid was refused with a message about coarse images."""
    f, _, _ = _images()
    src = as_source(f)
    with pytest.raises(InvalidParameterError, match=r"the image is a str; give a Source"):
        MaskedSource("f.tif", np.zeros((40, 40)))  # type: ignore[arg-type]
    assert MaskedSource(src, np.zeros((40, 40))).read().shape == f.shape


def test_a_dataarray_mask_on_a_coarser_grid_is_reprojected(tmp_path: Path) -> None:
    """A DataArray mask on a coarser grid was refused ("in-memory masks must already be on
    the image's grid"); it now masks as the same mask written to a file does."""
    from conftest import write_tif

    f, _, _ = _images()
    geo = as_source(_da(f))
    flags = np.zeros((1, 10, 10), np.float32)
    flags[0, 2:5, 6:9] = 1
    coarse = _da(flags).rio.write_transform(Affine(200.0, 0, 400000.0, 0, -200.0, 6150000.0))
    coarse = coarse.assign_coords(x=400000.0 + 200.0 * (np.arange(10) + 0.5))
    coarse = coarse.assign_coords(y=6150000.0 - 200.0 * (np.arange(10) + 0.5))
    path = write_tif(
        tmp_path / "m.tif", flags, transform=Affine(200.0, 0, 400000.0, 0, -200.0, 6150000.0)
    )
    got = MaskedSource(geo, coarse).read()
    want = MaskedSource(geo, str(path)).read()
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    assert np.isnan(got).sum() == f.shape[0] * 12 * 12  # 3 x 3 coarse pixels of 4 x 4


@pytest.mark.parametrize("crs", ["native", "EPSG:4326"])
def test_coarse_dataarrays_on_their_own_grid_fuse_as_files_do(tmp_path: Path, crs: str) -> None:
    """MODIS as stackstac/odc-stac load it: coarse DataArrays on their own grid (another CRS
    too) were refused ("in-memory coarse images must already be on the fine grid"). They are
    reprojected as the same files are, FSDAF uses their native pixels, and the prediction is
    the files' to the last bit."""
    import rioxarray

    from stfusion.methods.fsdaf import FSDAF

    rng = np.random.default_rng(5)
    fine_t = Affine(30.0, 0, 500000.0, 0, -30.0, 6000000.0)
    coarse_t = Affine(240.0, 0, 500000.0, 0, -240.0, 6000000.0)
    base = rng.uniform(0.05, 0.4, (2, 8, 8))
    f1 = np.kron(base, np.ones((8, 8))) + rng.normal(0, 0.02, (2, 64, 64))
    c1 = base + 0.01
    c2 = base * 1.2
    from conftest import write_tif

    paths = [
        write_tif(tmp_path / "f1.tif", f1.astype(np.float32), transform=fine_t),
        write_tif(tmp_path / "c1.tif", c1.astype(np.float32), transform=coarse_t),
        write_tif(tmp_path / "c2.tif", c2.astype(np.float32), transform=coarse_t),
    ]
    if crs != "native":
        for p in paths[1:]:
            rioxarray.open_rasterio(p).rio.reproject(crs).rio.to_raster(p)
    fp, c1p, c2p = (str(p) for p in paths)
    want = FSDAF(classes=3).fit([(fp, c1p)]).predict(c2p)
    da = [rioxarray.open_rasterio(p).load() for p in (fp, c1p, c2p)]
    est = FSDAF(classes=3).fit([(da[0], da[1])])
    got = est.predict(da[2])
    assert est.ratio_ == pytest.approx(8.0, rel=0.02)
    np.testing.assert_array_equal(got.values, want.values)
    assert got.rio.crs == want.rio.crs


def test_a_timezone_aware_date_is_its_local_day() -> None:
    """``pd.Timestamp("2020-03-08T23:30", tz="US/Pacific")`` became 2020-03-09 (UTC), with
    numpy's timezone warning."""
    import datetime as dt

    import pandas as pd

    from stfusion.scene import as_date

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert as_date(pd.Timestamp("2020-03-08T23:30", tz="US/Pacific"), "d") == np.datetime64(
            "2020-03-08"
        )
        late = dt.datetime(2020, 3, 8, 23, 30, tzinfo=dt.timezone(dt.timedelta(hours=-8)))
        assert as_date(late, "d") == np.datetime64("2020-03-08")


def test_rioxarray_band_descriptions_and_per_band_scales_read_as_a_path_does(
    tmp_path: Path,
) -> None:
    """A user trial: rioxarray keeps band descriptions in attrs['long_name'] (bands numbered
    1..N), so STARFM lost its red and NIR choice on DataArrays (CIA 0.03862 vs 0.03837 from
    the path); bands of different scales (attrs['scales']) were read unscaled."""
    import rasterio
    import rioxarray

    from conftest import write_tif

    rng = np.random.default_rng(1)
    names = ["blue", "green", "red", "nir"]
    path = write_tif(tmp_path / "f.tif", rng.random((4, 8, 8)).astype(np.float32), names=names)
    src = as_source(rioxarray.open_rasterio(path))
    assert src.band_names == tuple(names) == FileSource(str(path)).band_names
    # a selection renumbers nothing: its numbers are not the file's order any more
    picked = rioxarray.open_rasterio(path).isel(band=[2, 3])
    assert as_source(picked).band_names == ("3", "4")
    with rasterio.open(path, "r+") as ds:
        ds.scales = (1e-4, 1e-4, 1e-3, 1e-4)
    with pytest.raises(InputFileError, match=r"different scales \(0\.0001, 0\.001"):
        as_source(rioxarray.open_rasterio(path))


def test_a_prediction_declares_nan_as_nodata(tmp_path: Path) -> None:
    """A user trial: pred.rio.to_raster() wrote NaN holes without a declared nodata."""
    import rasterio

    f1 = np.full((1, 6, 6), 0.2, np.float32)
    f1[0, 0, 0] = np.nan
    pred = Additive().fit([(f1, f1)]).predict(f1 + 0.01)
    assert np.isnan(pred.rio.nodata)
    pred.rio.to_raster(tmp_path / "p.tif")
    with rasterio.open(tmp_path / "p.tif") as ds:
        assert np.isnan(ds.nodata)


def test_run_prediction_and_evaluate_files_take_path_objects(
    small_tifs: dict[str, Path], tmp_path: Path
) -> None:
    """A user trial: pathlib.Path arguments worked but were typed str only (mypy errors)."""
    from stfusion.api import evaluate_files, run_prediction

    out = tmp_path / "p.tif"
    run_prediction(
        method="additive",
        pairs=[(small_tifs["f1"], small_tifs["c1"])],
        target=small_tifs["c2"],
        out=out,
    )
    assert evaluate_files(out, small_tifs["f2"]).mean["rmse"] > 0


def test_fuse_passes_the_scene_keywords_to_fit() -> None:
    """A user trial: fuse(FitFC(), pairs, target, ratio=10) sent ratio to predict, whose
    error then said to give fit(pairs, ratio=R), which fuse could not."""
    from stfusion.methods import fuse

    rng = np.random.default_rng(2)
    f1 = rng.random((2, 20, 20)).astype(np.float32)
    pred = fuse(Additive(), [(f1, f1 + 0.1)], f1 + 0.2, ratio=4)
    assert pred.attrs["ratio"] == 4
    np.testing.assert_allclose(pred.values, f1 + 0.1, atol=1e-6)


def test_a_crs_on_one_side_only_is_warned_about() -> None:
    """A user trial: a coarse DataArray without CRS beside a fine one with a CRS (or a fine
    numpy array beside a georeferenced coarse DataArray, whose CRS the output then lacks) was
    taken as aligned without a word; plain arrays on both sides still say nothing."""
    import rioxarray  # noqa: F401

    grid = {"y": 1000.0 - 30 * np.arange(8), "x": 30.0 * np.arange(8)}
    f = xr.DataArray(np.full((1, 8, 8), 0.2), dims=("band", "y", "x"), coords=grid)
    f = f.rio.write_crs("EPSG:32633")
    bare = f.drop_vars("spatial_ref") + 0.01
    with pytest.warns(STFusionWarning, match="without georeferencing"):
        Additive().fit([(f, bare)])
    with pytest.warns(STFusionWarning, match="without georeferencing"):
        Additive().fit([(f.values, f + 0.01)])
    with warnings.catch_warnings():
        warnings.simplefilter("error", STFusionWarning)
        Additive().fit([(f.values, f.values + 0.01)])


def test_evaluate_reads_dataarrays_as_fit_does() -> None:
    """rioxarray's DataArray of a reflectance x 10000 file (scale_factor, _FillValue and band
    descriptions in its attrs) scores as the file does: ``evaluate(pred, truth)`` gave RMSE
    1349 (the raw integers) and band names band_1.. before."""
    import rioxarray

    from stfusion.metrics import evaluate

    data = Path(__file__).resolve().parents[1] / "src" / "stfusion" / "data"
    f1, c1, c2, truth = (
        rioxarray.open_rasterio(data / f"CIA_{n}.tif")
        for n in (
            "Landsat7_2001-10-17",
            "MOD09GA_2001-10-17",
            "MOD09GA_2001-11-02",
            "Landsat7_2001-11-02",
        )
    )
    assert truth.attrs["scale_factor"] == pytest.approx(1e-4)
    pred = STARFM().fit([(f1, c1)], ratio=10).predict(c2)
    with warnings.catch_warnings():
        warnings.simplefilter("error", STFusionWarning)  # no scale warning
        report = evaluate(pred, truth)
    assert report.band_names == ["blue", "green", "red", "nir", "swir1", "swir2"]
    assert report.ratio == 10
    want = evaluate(pred.values, truth.values.astype(np.float64) * 1e-4).mean["rmse"]
    assert report.mean["rmse"] == pytest.approx(want, rel=1e-9)
    assert 0.03 < report.mean["rmse"] < 0.05
    # the fill value is left out, as a file's nodata is
    holed = truth.copy(data=truth.values.copy())
    holed.values[:, :10, :] = -9999
    assert holed.attrs["_FillValue"] == -9999
    r = evaluate(pred, holed)
    assert r.mean["valid_fraction"] == pytest.approx(1 - 10 / truth.shape[1])
    # per-band scales (rioxarray writes them when the bands differ)
    per_band = truth.copy()
    per_band.attrs = {"scales": (1e-4,) * 6, "offsets": (0.0,) * 6}
    assert evaluate(pred, per_band).mean["rmse"] == pytest.approx(want, rel=1e-9)


def test_plain_coarse_arrays_r_times_smaller_are_their_blocks() -> None:
    """numpy arrays carry no grid: a coarse array 4 times smaller on both axes was refused
    ("different shapes ... Georeference both files"). It now covers 4 x 4 fine pixels per
    coarse pixel from the top-left corner, the same as repeating it, ratio 4 recorded."""
    from stfusion.methods.fsdaf import FSDAF

    rng = np.random.default_rng(3)
    fine1 = rng.uniform(0.05, 0.4, (2, 24, 32)).astype(np.float32)
    fine2 = fine1 + rng.normal(0.02, 0.01, fine1.shape).astype(np.float32)

    def blocks(f: np.ndarray) -> np.ndarray:
        return f.reshape(2, 6, 4, 8, 4).mean(axis=(2, 4))

    def up(c: np.ndarray) -> np.ndarray:
        return np.repeat(np.repeat(c, 4, axis=1), 4, axis=2)

    c1, c2 = blocks(fine1), blocks(fine2)
    with warnings.catch_warnings():
        warnings.simplefilter("error", STFusionWarning)
        native = FSDAF(classes=3).fit([(fine1, c1)])
        got = native.predict(c2)
    assert native.ratio_ == 4 and got.attrs["ratio"] == 4.0
    want = FSDAF(classes=3).fit([(fine1, up(c1))], ratio=4).predict(up(c2))
    np.testing.assert_array_equal(got.values, want.values)
    # a factor that differs between the axes, or no integer factor: refused, saying why
    for bad in (c1[:, :, :4], c1[:, :5]):
        with pytest.raises(GridMismatchError, match="integer R times the coarse one"):
            FSDAF(classes=3).fit([(fine1, bad)])
    # DataArrays without coordinates are in array order too (a user trial: refused with
    # "at least one has no CRS ... Georeference both files")
    import xarray as xr

    def da(a: np.ndarray) -> xr.DataArray:
        return xr.DataArray(a, dims=("band", "y", "x"))

    labelled = FSDAF(classes=3).fit([(da(fine1), da(c1))]).predict(da(c2))
    np.testing.assert_array_equal(labelled.values, got.values)
    assert labelled.dims == ("band", "y", "x")


def test_masked_plain_arrays_r_times_smaller_are_their_blocks() -> None:
    """A coarse (or fine) plain array wrapped in a MaskedSource with an array mask was
    refused as "no CRS ... Georeference both files"; it reads as the unmasked ones do, the
    masked coarse pixels NaN over their R x R fine pixels."""
    rng = np.random.default_rng(5)
    fine = rng.uniform(0.05, 0.4, (2, 12, 16)).astype(np.float32)
    coarse = fine.reshape(2, 3, 4, 4, 4).mean(axis=(2, 4))
    target = coarse + 0.03
    holes = np.zeros((3, 4), bool)
    holes[0, 1] = holes[2, 3] = True
    scene = open_scene(
        [(MaskedSource(as_source(fine), fine[0] > 0.38), MaskedSource(as_source(coarse), holes))],
        MaskedSource(as_source(target), holes),
    )
    assert scene.ratio == 4 and scene.target is not None
    up_holes = np.repeat(np.repeat(holes, 4, axis=0), 4, axis=1)
    for got, want in ((scene.pairs[0][1].read(), coarse), (scene.target.read(), target)):
        up = np.repeat(np.repeat(want, 4, axis=1), 4, axis=2)
        np.testing.assert_array_equal(np.isnan(got[0]), up_holes)
        np.testing.assert_array_equal(got[:, ~up_holes], up[:, ~up_holes])
    assert np.isnan(scene.pairs[0][0].read()[0][fine[0] > 0.38]).all()


@settings(max_examples=25, deadline=None)
@given(
    r=st.integers(2, 5),
    ch=st.integers(1, 6),
    cw=st.integers(1, 6),
    bands=st.integers(1, 3),
    seed=st.integers(0, 2**16),
)
def test_a_coarse_array_r_times_smaller_reads_as_its_blocks(
    r: int, ch: int, cw: int, bands: int, seed: int
) -> None:
    """Any integer R on both axes: the scene reads each coarse value over its R x R fine
    pixels, from the top-left corner, and records R as the ratio."""
    rng = np.random.default_rng(seed)
    fine = rng.uniform(0.0, 0.5, (bands, ch * r, cw * r)).astype(np.float32)
    coarse = rng.uniform(0.0, 0.5, (bands, ch, cw)).astype(np.float32)
    target = rng.uniform(0.0, 0.5, (bands, ch, cw)).astype(np.float32)
    scene = open_scene([(fine, coarse)], target)
    assert scene.ratio == r
    up = np.repeat(np.repeat(coarse, r, axis=1), r, axis=2)
    np.testing.assert_array_equal(scene.pairs[0][1].read(), up)
    assert scene.target is not None
    np.testing.assert_array_equal(scene.target.read()[:, ::r, ::r], target)


def test_fit_warns_about_one_file_as_both_images_of_a_pair(
    small_tifs: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`est.fit([("L.tif", "L.tif")])` fused the date with itself, with no word (the command
    line refuses the same --pair); a method that reads no coarse reference (GAN-STFM, whose
    fine reference alone is given as (F, F)) is not warned about."""
    f1 = str(small_tifs["f1"])
    with pytest.warns(STFusionWarning, match=r"additive\.fit\(\): .*f1\.tif is both the fine"):
        Additive().fit([(f1, f1)])
    monkeypatch.setattr(Additive, "uses_coarse_ref", False, raising=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", STFusionWarning)
        Additive().fit([(f1, f1)])


def test_a_mask_named_for_another_date_than_its_image_warns() -> None:
    """A Sentinel-2 trial: two pairs' SCL masks given in swapped order let a cloud into the
    prediction (RMSE 0.104 against 0.014) without a word, though every name held a date."""
    from stfusion.api import _warn_mask_of_another_date
    from stfusion.errors import STFusionWarning

    image = "T33TVM_20220513T100031_B0[2348]_10m.tif:B02,B03"
    with pytest.warns(STFusionWarning, match=r"names another date \(2022-06-02 against 2022-05"):
        _warn_mask_of_another_date(image, "T33TVM_20220602T100031_SCL_20m.tif", "fine")
    with warnings.catch_warnings():
        warnings.simplefilter("error", STFusionWarning)
        _warn_mask_of_another_date(image, "T33TVM_20220513T100031_SCL_20m.tif", "fine")
        _warn_mask_of_another_date(image, "clouds.tif", "fine")  # no date: nothing to say


def test_help_of_a_method_lists_its_parameters() -> None:
    """A user trial: help(STARFM) / STARFM? in Jupyter described none of its parameters."""
    from stfusion.methods import get_method

    for name in ("starfm", "fsdaf", "estarfm", "edcstfn", "ensemble"):
        cls = get_method(name)
        doc = cls.__doc__ or ""
        assert doc.count("Parameters\n----------") == 1, name
        for p in cls.params:
            assert f"\n{p.name} : default " in doc, (name, p.name)


def test_band_order_advice_names_the_python_fix() -> None:
    """A user trial: DataArrays labelled blue..nir and nir..blue were fused by position, and
    the warning gave only command-line options."""
    f, c, _ = _images(bands=3)
    fine = _da(f).assign_coords(band=["blue", "red", "nir"])
    coarse = _da(c[::-1].copy()).assign_coords(band=["nir", "red", "blue"])
    with pytest.warns(
        STFusionWarning, match=r"DataArray with \.sel\(band=\['blue', 'red', 'nir'\]\)"
    ):
        Additive().fit([(fine, coarse)], ratio=4)


def test_a_cloudy_coarse_target_is_not_taken_for_a_fine_image() -> None:
    """A trial: a real MODIS target with 8-12 of its 36 cells under bright cloud (0.5) was
    said to change "as much as the fine image" (1.12-1.18 of its summed differences); the
    typical (median) difference is 0.09-0.12 of the fine image's."""
    rng = np.random.default_rng(3)
    f = (0.2 + 0.01 * rng.standard_normal((2, 60, 60))).astype(np.float32)  # fine texture
    cloudy = coarse_like(f, 10)
    for _ in range(12):
        y, x = rng.integers(0, 6, 2) * 10
        cloudy[:, y : y + 10, x : x + 10] = 0.5 + rng.uniform(-0.03, 0.03)
    est = Additive().fit([(f, coarse_like(f, 10))], ratio=10)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        est.predict(cloudy)
    assert not [w for w in seen if "pixel to pixel" in str(w.message)]
    with pytest.warns(STFusionWarning, match="changes from pixel to pixel"):
        est.predict((0.2 + 0.01 * rng.standard_normal((2, 60, 60))).astype(np.float32))
