"""Fit-FC: against the slow reference, exact properties, tiling, NaN handling, accuracy."""

from __future__ import annotations

import numpy as np
import pytest
from rasterio.windows import Window

from conftest import CIA
from reference.fitfc_ref import fitfc as fitfc_ref
from stfusion.coarse import block_mean, upsample_blocks
from stfusion.errors import InvalidParameterError
from stfusion.io import FileSource, read_raster
from stfusion.kernels.fitfc import cubic_taps, cubic_upsample
from stfusion.methods.fitfc import FitFC
from stfusion.methods.params import similar_count
from stfusion.methods.starfm import STARFM
from stfusion.metrics import rmse

F1 = CIA / "CIA_Landsat7_2001-10-17.tif"
C1 = CIA / "CIA_MOD09GA_2001-10-17.tif"
C2 = CIA / "CIA_MOD09GA_2001-11-02.tif"
TRUTH = CIA / "CIA_Landsat7_2001-11-02.tif"

needs_cia = pytest.mark.realdata(CIA)

SMALL = {"regression_window": 3, "window": 9, "similar": 6}


@pytest.fixture(scope="module")
def cia() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return tuple(read_raster(p).values for p in (F1, C1, C2))  # type: ignore[return-value]


def crop(arrays: tuple[np.ndarray, ...], rows: slice, cols: slice) -> list[np.ndarray]:
    return [a[:, rows, cols].copy() for a in arrays]


def run(f1: np.ndarray, c1: np.ndarray, c2: np.ndarray, r: int = 10, **kw: object) -> np.ndarray:
    return FitFC(**kw).fit([(f1, c1)], ratio=r).predict(c2).values


# ------------------------------------------------------------------------- vs reference


@needs_cia
def test_matches_reference_on_real_crop(cia: tuple[np.ndarray, ...]) -> None:
    # 43 x 37: partial coarse blocks at the right and bottom edges.
    f1, c1, c2 = crop(cia, slice(100, 143), slice(60, 97))
    got = run(f1, c1, c2, **SMALL)
    want = fitfc_ref(f1, c1, c2, 10, **SMALL)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)


@needs_cia
def test_matches_reference_with_nan(cia: tuple[np.ndarray, ...]) -> None:
    f1, c1, c2 = crop(cia, slice(100, 143), slice(60, 97))
    f1[:, 5:8, 5:9] = np.nan  # a cloud in F1
    f1[3, 20, 20] = np.nan  # one band missing at one pixel
    c1[:, 10:20, 0:10] = np.nan  # a whole coarse pixel missing at the pair date
    c2[:, 30:40, 20:30] = np.nan  # and one at the target date
    got = run(f1, c1, c2, **SMALL)
    want = fitfc_ref(f1, c1, c2, 10, **SMALL)
    assert np.array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
    # Where F1 is missing, the coarse target fills in.
    np.testing.assert_array_equal(got[:, 6, 6], c2[:, 6, 6])


@needs_cia
def test_matches_reference_where_few_coarse_pixels_are_valid(cia: tuple[np.ndarray, ...]) -> None:
    """A regression window with valid coarse pixels in fewer than a quarter of its places
    takes the additive model, in the kernel as in the reference."""
    f1, c1, c2 = crop(cia, slice(100, 143), slice(60, 97))
    c2[:, 30:, :] = np.nan  # coarse rows 3-4 missing at the target date
    c2[:, :, 30:] = np.nan  # and coarse column 3: a 3 x 3 corner is left
    m = FitFC(**SMALL).fit([(f1, c1)], ratio=10)
    got = m.predict(c2).values
    want = fitfc_ref(f1, c1, c2, 10, **SMALL)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
    # Valid coarse pixels in the window (9 places, 6 inside the grid at column 3): (3, 3) 1
    # and (2, 3) 2 -> additive (the old rule fitted a line through 2: a = 23 in the green band);
    # (2, 2) 4 -> fitted.
    assert np.all(m.a_[:, 3, 3] == 1.0) and np.all(m.a_[:, 2, 3] == 1.0)
    assert np.all(m.a_[:, 2, 2] != 1.0)


@needs_cia
def test_missing_coarse_corner_does_not_extrapolate(cia: tuple[np.ndarray, ...]) -> None:
    """The coarse target covers only the top-left 60 % x 60 % of the scene (a user trial:
    native MODIS clipped to part of the Landsat scene, or an L-shaped cloud). Windows at the
    edge of the valid part once fitted a slope through 2-3 coarse pixels (a = -56) and wrote
    reflectances from -1.8 to 5.6 where the coarse image is missing; they fall back to the
    additive model now."""
    f1, c1, c2 = (a.copy() for a in cia)
    c2[:, 150:, :] = np.nan
    c2[:, :, 150:] = np.nan
    got = run(f1, c1, c2)
    assert np.nanmin(got) > -0.1 and np.nanmax(got) < 1.0
    truth = read_raster(TRUTH).values
    # Outside the coarse coverage, about as good as no change (RMSE 0.050 there).
    out = np.ones(got.shape[1:], bool)
    out[:150, :150] = False
    assert rmse(got[:, out], truth[:, out]) < 0.06


@needs_cia
def test_matches_reference_with_red_nir_similarity(cia: tuple[np.ndarray, ...]) -> None:
    f1, c1, c2 = crop(cia, slice(50, 90), slice(150, 190))
    kw = {**SMALL, "similarity_bands": "red,nir", "bands": "landsat7"}
    got = run(f1, c1, c2, **kw)
    want = fitfc_ref(f1, c1, c2, 10, **SMALL, similarity_bands=[2, 3])
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
    # Band numbers select the same bands.
    np.testing.assert_array_equal(run(f1, c1, c2, **SMALL, similarity_bands="3,4"), got)


@needs_cia
def test_matches_reference_at_default_parameters() -> None:
    """The defaults (regression window 11 coarse pixels, window 31 (auto's at ratios from
    8 up), 30 similar pixels;
    docs/methods/fitfc.md) on a crop where they all act: the coarse images are exact 3 x 3
    block means of the CIA Landsat pair (R = 3), so a 33 x 33 crop holds 11 x 11 coarse pixels
    (the centre one with a whole 11 x 11 regression window, the others clipped differently
    than with any smaller window) and a whole 31 x 31 filter window (at the real R = 10 that
    would take a 110-pixel crop, minutes for the reference). Two bands (red, NIR) keep the
    reference near a second."""
    f1, f2 = (FileSource(p).read(Window(60, 100, 33, 33))[2:4] for p in (F1, TRUTH))
    c1, c2 = (upsample_blocks(block_mean(a, 3), 3, a.shape[1:]) for a in (f1, f2))
    assert FitFC().fit([(f1, c1)], ratio=3).halo() == 3  # auto at ratio 3: 7, not 31
    m = FitFC(window=31).fit([(f1, c1)], ratio=3)  # the default at ratios from 8 up
    assert (m.regression_window, similar_count(m, 31)) == (11, 30)
    got = m.predict(c2).values
    want = fitfc_ref(f1, c1, c2, 3, regression_window=11, window=31, similar=30)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)


# ---------------------------------------------------------------------- exact properties


def piecewise_scene(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """60 x 60, 4 bands, 15 x 15 patches of random spectra; C1 = exact 6 x 6 block means."""
    rng = np.random.default_rng(seed)
    spectra = rng.uniform(0.02, 0.5, size=(4, 4, 4)).astype(np.float32)
    f1 = np.repeat(np.repeat(spectra, 15, axis=1), 15, axis=2)
    c1 = f1.reshape(4, 10, 6, 10, 6).mean(axis=(2, 4))
    c1 = np.repeat(np.repeat(c1, 6, axis=1), 6, axis=2).astype(np.float32)
    return f1, c1


PIECEWISE = {"regression_window": 3, "window": 9, "similar": 10}


def test_unchanged_coarse_returns_fine() -> None:
    # C2 = C1: a = 1, b = 0, R = 0 exactly; every window has >= 10 pixels of the centre's
    # patch, all with its spectrum, so the weighted mean is F1 (up to float32 rounding).
    f1, c1 = piecewise_scene()
    out = run(f1, c1, c1.copy(), r=6, **PIECEWISE)
    np.testing.assert_allclose(out, f1, rtol=1e-6, atol=0)


@pytest.mark.parametrize("seed", [0, 1])
def test_uniform_change_adds_it(seed: int) -> None:
    f1, c1 = piecewise_scene(seed)
    d = np.array([0.01, -0.02, 0.05, 0.1], dtype=np.float32)[:, None, None]
    out = run(f1, c1, c1 + d, r=6, **PIECEWISE)
    np.testing.assert_allclose(out, f1 + d, rtol=0, atol=1e-6)


def test_linear_change_is_reproduced() -> None:
    # C2 = g C1 + h exactly: the regression recovers g and h, the residual is 0.
    f1, c1 = piecewise_scene(2)
    g = np.array([1.2, 0.8, 1.0, 1.5], dtype=np.float32)[:, None, None]
    h = np.array([0.01, 0.02, -0.03, 0.0], dtype=np.float32)[:, None, None]
    out = run(f1, c1, g * c1 + h, r=6, **PIECEWISE)
    np.testing.assert_allclose(out, g * f1 + h, rtol=0, atol=2e-6)


def test_cubic_interpolation_is_exact_for_a_ramp_inside() -> None:
    # Keys' kernel reproduces linear functions; the weights of each tap row sum to 1.
    r, n = 5, 12
    coarse = (0.3 + 0.02 * np.arange(n))[None, :, None] * np.ones((1, 1, 4))
    rows = np.arange(2 * r, (n - 2) * r)
    out = cubic_upsample(coarse, r, rows, np.arange(20))
    np.testing.assert_allclose(out[0, :, 0], 0.3 + 0.02 * ((rows + 0.5) / r - 0.5), atol=1e-12)
    _, w = cubic_taps(np.arange(-10, 80), r, n)
    np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-12)


# ------------------------------------------------------------------------------ tiling


@needs_cia
@pytest.mark.parametrize("size", [7, 13])
def test_tiled_equals_whole_scene(cia: tuple[np.ndarray, ...], size: int) -> None:
    f1, c1, c2 = crop(cia, slice(20, 75), slice(30, 82))
    f1[:, 10:14, 40:44] = np.nan
    m = FitFC(**SMALL).fit([(f1, c1)], ratio=10)
    whole = m.predict(c2).values
    tiled = m.predict(c2, window_size=size).values
    threaded = m.predict(c2, window_size=size, workers=2).values
    np.testing.assert_array_equal(tiled, whole)
    np.testing.assert_array_equal(threaded, whole)


# ---------------------------------------------------------------------------- errors


def test_ratio_errors() -> None:
    f1, c1 = piecewise_scene()
    with pytest.raises(InvalidParameterError, match="resolution ratio"):
        FitFC().fit([(f1, c1)])
    with pytest.raises(InvalidParameterError, match="positive integer"):
        FitFC().fit([(f1, c1)], ratio=6.5)


def test_one_pair_only() -> None:
    f1, c1 = piecewise_scene()
    with pytest.raises(InvalidParameterError, match="exactly 1"):
        FitFC().fit([(f1, c1), (f1, c1)], ratio=6)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"regression_window": 4}, "regression_window"),
        ({"regression_window": 1}, "regression_window"),
        ({"window": 10}, "window"),
        ({"window": 5, "similar": 26}, "similar"),
        ({"similar": 0}, "similar"),
        ({"similarity_bands": " "}, "similarity_bands"),
    ],
)
def test_bad_parameters(kw: dict[str, object], match: str) -> None:
    with pytest.raises(InvalidParameterError, match=match):
        FitFC(**kw)


def test_similarity_band_errors() -> None:
    f1, c1 = piecewise_scene()
    # Arrays have no band names: a role needs the bands parameter, and the error says so.
    with pytest.raises(InvalidParameterError, match=r"red and.*|--param bands="):
        FitFC(similarity_bands="red,nir").fit([(f1, c1)], ratio=6)
    with pytest.raises(InvalidParameterError, match="band 5 does not exist"):
        FitFC(similarity_bands="5").fit([(f1, c1)], ratio=6)
    with pytest.raises(InvalidParameterError, match="named twice"):
        FitFC(similarity_bands="1,1").fit([(f1, c1)], ratio=6)
    with pytest.raises(InvalidParameterError, match="4 bands"):
        FitFC(similarity_bands="red", bands="landsat7").fit([(f1, c1)], ratio=6)


def test_parse_params_from_cli_strings() -> None:
    kw = FitFC.parse_params(["window=21", "similarity_bands=red,nir", "bands=landsat8"])
    assert kw == {"window": 21, "similarity_bands": "red,nir", "bands": "landsat8"}
    # given twice: refused (a user trial: -p weights=A -p weights=B kept B, silently)
    with pytest.raises(InvalidParameterError, match="--param window: given twice"):
        FitFC.parse_params(["window=21", " window = 31"])


@needs_cia
def test_band_names_from_file_give_roles() -> None:
    # The CIA files name their bands (blue, ..., swir2): red,nir needs no bands parameter.
    m = FitFC(similarity_bands="red,nir").fit([(F1, C1)], ratio=10)
    assert m.similarity_idx_.tolist() == [2, 3]


# ---------------------------------------------------------------------------- accuracy


@needs_cia
def test_cia_1pair_beats_additive_and_starfm(cia: tuple[np.ndarray, ...]) -> None:
    f1, c1, c2 = cia
    truth = read_raster(TRUTH).values
    fitfc = FitFC().fit([(F1, C1)], ratio=10).predict(C2).values
    starfm = STARFM().fit([(F1, C1)]).predict(C2).values
    score = float(rmse(fitfc, truth).mean())
    assert np.isfinite(fitfc).all()
    assert score < float(rmse(f1 + c2 - c1, truth).mean())  # 0.03919
    assert score < float(rmse(starfm, truth).mean())  # 0.03943
