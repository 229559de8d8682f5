"""FSDAF: kernels against a slow literal reference, unmixing and exact properties on synthetic
scenes, the class-map parameter, tiling, missing data, and accuracy on ``lgc-flood``.

The reference (``tests/reference/fsdaf_ref.py``) is written from Zhu et al. 2016 and the
conventions in ``docs/methods/fsdaf.md``, independently of the numba kernels. The kernel tests
feed both the same class map, class changes and spline values; the end-to-end test composes
the reference's own unmixing, residual, allowed range and spline instead. Real data: crops of the
named case ``lgc-flood`` (``../shared/data/README.md``, found through ``conftest``): pair
2004-11-26, target 2004-12-28, scale 1e-4, R = 16.
"""

from __future__ import annotations

import warnings
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from rasterio.windows import Window

from conftest import LGC, need
from reference.fsdaf_ref import (
    block_mean_ref,
    class_fractions_ref,
    fsdaf_ref,
    homogeneity_ref,
    residual_change_ref,
    smooth_ref,
    unmix_ref,
)
from stfusion.coarse import block_mean, upsample_blocks
from stfusion.errors import InvalidParameterError
from stfusion.io import FileSource, Scaling
from stfusion.methods.fsdaf import (
    FSDAF,
    fit_spline,
    homogeneity,
    isodata,
    kmeans,
    residual_change,
    smooth,
    unmix_class_changes,
)
from stfusion.metrics import rmse

R = 16
needs_lgc = pytest.mark.realdata(LGC)


@pytest.fixture(autouse=True)
def _quiet() -> None:
    # In-memory arrays carry no georeferencing; open_scene says so every time.
    warnings.filterwarnings("ignore", ".*georeferenc")


@cache
def _lgc(name: str) -> np.ndarray:
    scale = None if name.endswith("classification") else 1e-4
    return FileSource(LGC / name, Scaling(scale)).read()


def lgc(row: int = 0, col: int = 0, size: int = 480) -> dict[str, np.ndarray]:
    """Crop of lgc-flood: f1, c1, c2 (target), f2 (truth), cls (SVM classes 0-3)."""
    sl = (slice(None), slice(row, row + size), slice(col, col + size))
    return {
        "f1": _lgc("Landsat20041126")[sl],
        "c1": _lgc("MODIS20041126")[sl],
        "c2": _lgc("MODIS20041228")[sl],
        "f2": _lgc("Landsat20041228")[sl],
        "cls": _lgc("Landsat20041126_SVM_classification")[0][sl[1:]].astype(np.int32) - 1,
    }


def write_map(path: Path, labels: np.ndarray, nodata: float | None = None) -> Path:
    from conftest import write_tif

    return write_tif(path, labels.astype(np.int16), crs=None, nodata=nodata)


def synthetic(
    h: int = 64, w: int = 64, r: int = 8, patch: int = 6, seed: int = 1
) -> dict[str, np.ndarray]:
    """Piecewise-constant scene: 4 classes on patch x patch squares, well separated in all 3
    bands; coarse images are exact r x r block means (upsampled to the fine grid)."""
    rng = np.random.default_rng(seed)
    cells = rng.integers(0, 4, size=(h // patch + 1, w // patch + 1))
    lab = np.repeat(np.repeat(cells, patch, 0), patch, 1)[:h, :w]
    levels = np.array(
        [[0.05, 0.08, 0.30], [0.15, 0.12, 0.20], [0.25, 0.30, 0.10], [0.40, 0.35, 0.45]]
    )
    fine = levels[lab].transpose(2, 0, 1).astype(np.float32)
    return {"fine": fine, "labels": lab, "r": np.array(r)}


def coarse_of(fine: np.ndarray, r: int) -> np.ndarray:
    return upsample_blocks(block_mean(fine, r), r, fine.shape[1:]).astype(np.float32)


def run(method: FSDAF, f1: np.ndarray, c1: np.ndarray, c2: np.ndarray, r: int, **kw) -> np.ndarray:
    method.fit([(f1, c1)], ratio=r)
    return method.predict(c2, **kw).values


# ------------------------------------------------------------------ kernels vs the reference


@needs_lgc
def test_homogeneity_matches_reference() -> None:
    labels = lgc(200, 180, 40)["cls"].copy()
    labels[5:9, 30:33] = -1  # unclassified pixels count in neither numerator nor denominator
    fast = homogeneity(labels, R // 2)
    np.testing.assert_allclose(fast, homogeneity_ref(labels, R // 2), rtol=1e-6, equal_nan=True)


@pytest.fixture(scope="module")
def fitted_crop(tmp_path_factory: pytest.TempPathFactory) -> tuple[FSDAF, dict[str, np.ndarray]]:
    """FSDAF fitted on a 96 x 96 lgc crop with the SVM class map (for its class changes,
    residuals and spline)."""
    need(LGC)
    d = lgc(0, 96, 96)  # all four SVM classes present
    path = write_map(tmp_path_factory.mktemp("crop") / "svm.tif", d["cls"] + 1)
    m = FSDAF(classes=str(path))
    m.fit([(d["f1"], d["c1"])], ratio=R)
    m.prepare(d["c2"])
    assert list(m.class_values_) == [1, 2, 3, 4]  # class index = SVM class - 1
    return m, d


def test_residual_distribution_matches_reference(fitted_crop: tuple[FSDAF, dict]) -> None:
    m, d = fitted_crop
    f1 = d["f1"][:, :48, :48]
    labels = d["cls"][:48, :48].copy()
    labels[20:23, 3:9] = -1
    hi = homogeneity_ref(labels, R // 2)
    spline = m.spline_.evaluate(0, 0, 48, 48)
    residual = m.residual_[:3, :3].copy()
    residual[1, 2, 0] = np.nan  # unknown residual: class change only
    lo, hi_allow = m.allowed_
    fast = residual_change(f1, labels, hi, spline, m.class_change_, residual, R, lo, hi_allow)
    ref = residual_change_ref(f1, labels, hi, spline, m.class_change_, residual, R, lo, hi_allow)
    np.testing.assert_allclose(fast, ref, rtol=1e-5, atol=1e-7, equal_nan=True)
    # Each coarse pixel receives exactly its residual: sum r = m R, where unclipped.
    tp = f1 + m.class_change_[np.maximum(labels, 0)].transpose(2, 0, 1)
    got = (f1 + fast - tp)[0, :16, :16][labels[:16, :16] >= 0].mean()
    assert got == pytest.approx(residual[0, 0, 0], abs=1e-6)


@pytest.mark.parametrize("final", ["paper", "idl"])
def test_smoothing_matches_reference(fitted_crop: tuple[FSDAF, dict], final: str) -> None:
    """Real lgc crop (SVM classes): the fast final step equals the literal reference."""
    m, d = fitted_crop
    f1 = d["f1"][:, 8:40, 8:40].copy()
    labels = d["cls"][8:40, 8:40].copy()
    f1[:, 3, 4] = np.nan  # invalid centre and neighbour
    labels[10, 10:13] = -1
    change = np.random.default_rng(0).normal(0, 0.02, f1.shape).astype(np.float32)
    change[1, 20, 20] = np.nan
    thr = m.fine_std_ * 2.0 / m.n_classes_
    fast = smooth(f1, change, labels, 4, 6, thr, final)
    ref = smooth_ref(f1, change, labels, 4, 6, thr, final)
    np.testing.assert_allclose(fast, ref, rtol=1e-12, atol=1e-12, equal_nan=True)
    assert np.isnan(fast[:, 3, 4]).all() and np.isfinite(fast[:, 3, 5]).all()
    # an unlabelled centre: no same-class pixel (paper), any class within the threshold (idl)
    assert np.isnan(fast[:, 10, 11]).all() == (final == "paper")


@pytest.mark.parametrize("final", ["paper", "idl"])
def test_smoothing_matches_reference_on_random_data(final: str) -> None:
    """Random spectra (some exactly repeated, so ranking ties occur), NaNs in F1 and in the
    change, unlabelled pixels, windows clipped at the edges."""
    rng = np.random.default_rng(11)
    f1 = rng.uniform(0.02, 0.5, (3, 23, 19)).astype(np.float32)
    f1[:, 5:8, 5:8] = f1[:, 5:6, 5:6]  # identical spectra: ties broken by distance, order
    f1[:, rng.random((23, 19)) < 0.05] = np.nan
    f1[2, 12, 3] = np.nan  # one band only
    labels = rng.integers(-1, 3, (23, 19)).astype(np.int32)
    change = rng.normal(0, 0.03, f1.shape).astype(np.float32)
    change[0, rng.random((23, 19)) < 0.05] = np.nan
    thr = np.array([0.12, 0.1, 0.15])
    for half, n in ((3, 5), (5, 20), (0, 1)):
        fast = smooth(f1, change, labels, half, n, thr, final)
        ref = smooth_ref(f1, change, labels, half, n, thr, final)
        np.testing.assert_allclose(fast, ref, rtol=1e-12, atol=1e-12, equal_nan=True)
    fast = smooth(f1, change, labels, 3, 5, thr, final, region=(4, 2, 9, 11))
    np.testing.assert_array_equal(fast, smooth(f1, change, labels, 3, 5, thr, final)[:, 4:13, 2:13])


def test_final_rules_differ_from_each_other() -> None:
    """The paper's and the program's rules choose different neighbours (not a renamed copy)."""
    rng = np.random.default_rng(2)
    f1 = rng.uniform(0.05, 0.4, (2, 15, 15)).astype(np.float32)
    labels = rng.integers(0, 3, (15, 15)).astype(np.int32)
    change = rng.normal(0, 0.03, f1.shape).astype(np.float32)
    thr = np.array([0.1, 0.1])
    a = smooth(f1, change, labels, 4, 8, thr, "paper")
    b = smooth(f1, change, labels, 4, 8, thr, "idl")
    assert np.nanmax(np.abs(a - b)) > 1e-3


def test_class_fractions_match_reference(fitted_crop: tuple[FSDAF, dict]) -> None:
    m, d = fitted_crop
    ref = class_fractions_ref(d["cls"], R, 4)
    np.testing.assert_allclose(m.counts_ / m.block_pixels_[..., None], ref)


@needs_lgc
def test_end_to_end_matches_composed_reference(tmp_path: Path) -> None:
    """The whole method against the reference composed from the paper's steps
    (``fsdaf_ref``: unmixing eqs. 2-4 with the purest-pixel, 10-90 % and bound rules solved
    by enumeration, residual eq. 9, allowed range, global TPS eqs. 10-13 solved directly,
    then the reference residual distribution and final step), on a 64 x 64 lgc crop with
    the SVM map (4 classes, 4 x 4 coarse pixels), nothing taken from the fast model.
    ``pure=12`` so that the purest-pixel cut and the trimming act on 16 coarse pixels."""
    d = lgc(0, 128, 64)
    path = write_map(tmp_path / "svm.tif", d["cls"] + 1)
    m = FSDAF(classes=str(path), window=9, similar=6, pure=12, spline_radius=0)
    m.fit([(d["f1"], d["c1"])], ratio=R)
    pred = m.predict(d["c2"]).values
    assert list(m.class_values_) == [1, 2, 3, 4] and m.range_ == (0.0, 1.0)  # reflectance
    ref = fsdaf_ref(d["f1"], d["c1"], d["c2"], d["cls"], 4, R, 4, 6, 12, (0.0, 1.0))
    np.testing.assert_allclose(m.class_change_, ref["class_change_"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(m.residual_[:, :, :], ref["residual_"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(np.array(m.allowed_), ref["allowed_"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(m.spline_.evaluate(0, 0, 64, 64), ref["spline"], atol=1e-9)
    np.testing.assert_allclose(pred, ref["prediction"], rtol=0, atol=2e-7)  # float32 output
    # The crop exercises each unmixing rule: more candidates than ``pure`` (class 1), the
    # 10-90 % trimming, and a bound that binds, where the IDL's n - 1 std would differ.
    frac = class_fractions_ref(d["cls"], R, 4).reshape(-1, 4)
    dc = (block_mean_ref(d["c2"], R) - block_mean_ref(d["c1"], R))[0].ravel()
    complete = np.ones(16, bool)
    change, kept, bounds = unmix_ref(frac, dc, complete, 12, ddof=0)
    assert (frac[:, 1] > 0.01).sum() > 12 and len(kept[1]) < 12
    assert np.isclose(change, bounds[0]).any() or np.isclose(change, bounds[1]).any()
    idl = unmix_ref(frac, dc, complete, 12, ddof=1)[0]
    assert np.abs(idl - m.class_change_[:, 0]).max() > 1e-4


# --------------------------------------------------------------------------------- unmixing


def test_unmixing_recovers_known_class_changes() -> None:
    s = synthetic()
    fractions = class_fractions_ref(s["labels"], 8, 4).reshape(-1, 4)
    truth = np.array([-0.03, 0.01, 0.05, 0.02])
    dc = fractions @ truth
    got = unmix_class_changes(fractions, dc, np.ones(len(dc), bool), 100, (-0.2, 0.2))
    np.testing.assert_allclose(got, truth, atol=1e-12)


def test_method_recovers_class_changes_exactly(tmp_path: Path) -> None:
    """Coarse = exact block means of F2 = F1 + dF(class): the unmixing recovers dF, no
    residual is left, and the prediction is F2 (k-means classes and a class-map path)."""
    s = synthetic()
    f1, lab = s["fine"], s["labels"]
    delta = np.array(
        [[-0.03, 0.02, 0.04], [0.01, -0.02, 0.03], [0.05, 0.01, -0.04], [0.02, 0.03, 0.01]]
    )
    f2 = (f1 + delta[lab].transpose(2, 0, 1)).astype(np.float32)
    c1, c2 = coarse_of(f1, 8), coarse_of(f2, 8)
    for classes in (4, str(write_map(tmp_path / "lab.tif", lab * 10 + 7))):
        m = FSDAF(classes=classes, window=9)
        pred = run(m, f1, c1, c2, 8)
        order = np.argsort(m.class_values_) if classes != 4 else np.argsort(m.centres_[:, 0])
        np.testing.assert_allclose(m.class_change_[order], delta, atol=1e-6)
        np.testing.assert_allclose(m.residual_, 0.0, atol=1e-6)
        np.testing.assert_allclose(pred, f2, atol=1e-6)


# ------------------------------------------------------------------------- exact properties


def test_unchanged_coarse_returns_fine() -> None:
    s = synthetic()
    f1 = s["fine"]
    c1 = coarse_of(f1, 8)
    pred = run(FSDAF(window=11), f1, c1, c1, 8)
    np.testing.assert_array_equal(pred, f1)


def test_uniform_change_adds_it() -> None:
    s = synthetic()
    f1 = s["fine"]
    c1 = coarse_of(f1, 8)
    pred = run(FSDAF(window=11), f1, c1, c1 + np.float32(0.03), 8)
    np.testing.assert_allclose(pred, f1 + np.float32(0.03), atol=1e-6)


def test_spline_is_a_thin_plate_spline() -> None:
    """The global spline equals scipy's TPS through the coarse centres; a local spline whose
    radius covers the grid is the same function."""
    from scipy.interpolate import RBFInterpolator

    rng = np.random.default_rng(3)
    r, shape = 8, (44, 37)  # partial edge blocks: centres at the mean fine coordinate
    vals = rng.normal(0.2, 0.05, (2, 6, 5))
    g = fit_spline(vals, r, shape, 0)
    cy = np.array([3.5, 11.5, 19.5, 27.5, 35.5, 41.5])
    cx = np.array([3.5, 11.5, 19.5, 27.5, 34.0])
    pts = np.stack(np.meshgrid(cy, cx, indexing="ij"), -1).reshape(-1, 2)
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    q = np.column_stack([yy.ravel(), xx.ravel()]).astype(float)
    want = RBFInterpolator(pts, vals.reshape(2, -1).T, kernel="thin_plate_spline")(q)
    got = g.evaluate(0, 0, *shape)
    np.testing.assert_allclose(got.reshape(2, -1).T, want, atol=1e-9)
    local = fit_spline(vals, r, shape, 6).evaluate(0, 0, *shape)
    np.testing.assert_allclose(local, got, atol=1e-5)  # local weights are float32


def test_kmeans_is_deterministic_and_finds_separated_clusters() -> None:
    rng = np.random.default_rng(0)
    centres = np.array([[0.1, 0.2], [0.5, 0.1], [0.3, 0.6]])
    x = np.concatenate([c + rng.normal(0, 0.01, (300, 2)) for c in centres])
    a, b = kmeans(x, 3, seed=5), kmeans(x, 3, seed=5)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(np.sort(a, axis=0), np.sort(centres, axis=0), atol=0.01)
    assert len(kmeans(np.repeat(centres[:2], 10, axis=0), 3)) == 2  # fewer distinct points


def test_isodata_merges_close_classes_deterministically() -> None:
    """Three tight clusters, started from 6 k-means classes: the split halves of a cluster
    lie closer than the merge distance and are merged; the result is seeded and ends
    within [min, max]."""
    rng = np.random.default_rng(0)
    centres = np.array([[0.1, 0.2, 0.3], [0.4, 0.1, 0.2], [0.3, 0.5, 0.1]])
    x = np.concatenate([c + rng.normal(0, 0.01, (400, 3)) for c in centres])
    a = isodata(x, 2, 6, merge_distance=0.05, split_std=0.05, min_members=5, seed=3)
    np.testing.assert_array_equal(a, isodata(x, 2, 6, 0.05, 0.05, 5, seed=3))
    assert len(a) == 3
    np.testing.assert_allclose(np.sort(a, axis=0), np.sort(centres, axis=0), atol=0.005)
    # never fewer than min_k, never more than max_k
    assert len(isodata(x, 4, 6, 0.05, 0.05, 5, seed=3)) == 4
    assert len(isodata(x, 2, 6, 0.0, 0.05, 5, seed=3)) == 6  # nothing is close enough


def test_isodata_splits_spread_classes_and_drops_small_ones() -> None:
    """A class spread far beyond split_std is split while there is room below max_k; a class
    with fewer than min_members members is dropped while more than min_k remain."""
    rng = np.random.default_rng(1)
    wide = np.column_stack([rng.uniform(0.0, 1.0, 2000), np.full(2000, 0.5)])
    few = np.array([[5.0, 5.0]] * 3)
    x = np.concatenate([wide, few])
    got = isodata(x, 2, 5, merge_distance=0.01, split_std=0.1, min_members=10, seed=0)
    assert 2 <= len(got) <= 5
    assert not np.any(np.all(np.isclose(got, 5.0), axis=1))  # the 3-pixel class is gone
    for seed in range(4):
        k = len(isodata(x, 3, 4, 0.01, 0.1, 10, seed=seed))
        assert 3 <= k <= 4


@needs_lgc
def test_isodata_default_on_lgc() -> None:
    """The default classes='4-6' runs ISODATA (FSDAF.pro's 4 to 6 classes, merge/split at
    0.05 reflectance), seeded and repeatable; an integer keeps plain k-means."""
    d = lgc(0, 0, 240)
    a = FSDAF().fit([(d["f1"], d["c1"])], ratio=R)
    b = FSDAF().fit([(d["f1"], d["c1"])], ratio=R)
    np.testing.assert_array_equal(a.centres_, b.centres_)
    assert 4 <= a.n_classes_ <= 6
    assert a.iso_thresholds_[:2] == (0.05, 0.05)
    assert FSDAF(classes=5).fit([(d["f1"], d["c1"])], ratio=R).n_classes_ == 5


# ---------------------------------------------------------------------------------- class map


def test_class_map_of_wrong_shape_is_a_clear_error(tmp_path: Path) -> None:
    s = synthetic()
    path = write_map(tmp_path / "classes.tif", np.zeros((60, 64)))
    with pytest.raises(InvalidParameterError) as err:
        FSDAF(classes=str(path)).fit([(s["fine"], coarse_of(s["fine"], 8))], ratio=8)
    msg = str(err.value)
    assert str(path) in msg and "60 x 64" in msg and "64 x 64" in msg


def test_class_map_nodata_is_unclassified(tmp_path: Path) -> None:
    s = synthetic()
    lab = s["labels"].astype(float)
    lab[:8, :8] = -99  # one whole coarse pixel unclassified: left out of the unmixing
    path = write_map(tmp_path / "classes.tif", lab, nodata=-99)
    f1 = s["fine"]
    pred = run(FSDAF(classes=str(path), window=9), f1, coarse_of(f1, 8), coarse_of(f1, 8), 8)
    assert np.isfinite(pred).all()  # unclassified pixels borrow from classified neighbours
    np.testing.assert_allclose(pred, f1, atol=1e-7)


def test_no_similar_pixel_falls_back_to_additive(tmp_path: Path) -> None:
    """An unclassified pixel whose window holds no valid neighbour takes F1 + C2 - C1 and
    is flagged in the quality layer."""
    s = synthetic()
    f1 = s["fine"].copy()
    lab = s["labels"].astype(float)
    lab[20, 20] = -99
    f1[:, 19:22, 19:22] = np.nan
    f1[:, 20, 20] = s["fine"][:, 20, 20]
    path = write_map(tmp_path / "classes.tif", lab, nodata=-99)
    c1 = coarse_of(s["fine"], 8)
    c2 = c1 + np.float32(0.01)
    m = FSDAF(classes=str(path), window=3).fit([(f1, c1)], ratio=8)
    m.prepare(c2)
    pred, extra = m.predict_window_quality(Window(16, 16, 8, 8))
    np.testing.assert_allclose(pred[:, 4, 4], f1[:, 20, 20] + c2[:, 20, 20] - c1[:, 20, 20])
    assert extra["fallback"][4, 4] == 1 and extra["fallback"].sum() == 1
    assert np.isnan(pred[:, 3, 3]).all()


def test_parameters_are_checked() -> None:
    for bad in (
        {"window": 10},
        {"classes": 0},
        {"similar": 0},
        {"spline_radius": -1},
        {"valid_range": "1,0"},
        {"valid_range": "x"},
        {"classes": 2.5},
        {"classes": "5-4"},
        {"classes": "0-3"},
        {"merge_distance": -1.0},
        {"final": "both"},
    ):
        with pytest.raises(InvalidParameterError):
            FSDAF(**bad)
    s = synthetic()
    c = coarse_of(s["fine"], 8)
    with pytest.raises(InvalidParameterError, match="ratio"):
        FSDAF().fit([(s["fine"], c)])
    with pytest.raises(InvalidParameterError, match="exactly 1"):
        FSDAF().fit([(s["fine"], c), (s["fine"], c)], ratio=8)
    assert FSDAF.parse_params(["classes=7", "valid_range=none"]) == {
        "classes": "7",
        "valid_range": "none",
    }


# -------------------------------------------------------------------- tiling and missing data


@needs_lgc
def test_tiled_equals_whole_scene() -> None:
    d = lgc(150, 200, 80)
    m = FSDAF(window=15).fit([(d["f1"], d["c1"])], ratio=R)
    m.prepare(d["c2"])
    whole = m.predict(window_size=80).values
    for size, workers in ((7, 1), (23, 2)):
        tiled = m.predict(window_size=size, workers=workers).values
        np.testing.assert_array_equal(tiled, whole)
    # A window anywhere gives the same pixels as the whole-scene run.
    part, extra = m.predict_window_quality(Window(13, 29, 5, 3))
    np.testing.assert_array_equal(part, whole[:, 29:32, 13:18])
    assert extra["fallback"].shape == (3, 5)


def test_the_variable_sample_does_not_depend_on_the_memory_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A user trial: STFUSION_VARIABLE recorded other percentiles at --mem-limit 50 than at
    the default (the sample took a share of each read window); near a rule's threshold the
    inferred variable, and the constants, could have changed with the windows. (A sample of
    1000 pixels here, so that it is a sample of this small scene.)"""
    import stfusion.methods.fsdaf as fsdaf_mod
    from stfusion.tiling import memory_limits

    monkeypatch.setattr(fsdaf_mod, "VARIABLE_SAMPLE", 1000)
    d = lgc(150, 200, 80)
    said = []
    for mb in (None, 1):
        with memory_limits(mb):
            m = FSDAF(window=15).fit([(d["f1"], d["c1"])], ratio=R)
        said.append(m.variable_.describe())
    assert said[0] == said[1], said


@needs_lgc
def test_missing_data() -> None:
    """NaN F1 pixels stay NaN; a coarse pixel with a NaN target mean gets the class change
    only (no residual) and is left out of the unmixing and the spline."""
    d = lgc(100, 100, 64)
    f1, c2 = d["f1"].copy(), d["c2"].copy()
    f1[:, 10:13, 40:45] = np.nan
    c2[:, 16:32, 0:16] = np.nan  # one coarse pixel of the target
    m = FSDAF(window=15).fit([(f1, d["c1"])], ratio=R)
    pred = m.predict(c2).values
    assert np.isnan(pred[:, 10:13, 40:45]).all()
    valid = np.isfinite(f1).all(axis=0)
    assert np.isfinite(pred[:, valid]).all()
    assert np.isnan(m.residual_[1, 0]).all() and np.isfinite(m.residual_[0, 0]).all()
    assert np.isfinite(m.spline_.evaluate(24, 8, 1, 1)).all()  # interpolated across the gap


# ------------------------------------------------------------------------------- lgc-flood


@needs_lgc
def test_lgc_flood_beats_the_additive_baseline() -> None:
    d = lgc()
    m = FSDAF().fit(
        [(str(LGC / "Landsat20041126"), str(LGC / "MODIS20041126"))],
        ratio=R,
        fine_scaling=Scaling(1e-4),
        coarse_scaling=Scaling(1e-4),
    )
    pred = m.predict(FileSource(LGC / "MODIS20041228", Scaling(1e-4))).values
    additive = d["f1"] + d["c2"] - d["c1"]
    ours, base = rmse(pred, d["f2"]).mean(), rmse(additive, d["f2"]).mean()
    assert base == pytest.approx(0.0221, abs=5e-4)
    assert ours < base - 0.001
    assert np.isfinite(pred).all()


@needs_lgc
def test_idl_final_with_a_band_constant_over_the_scene() -> None:
    """A paper-author trial: with one band constant (std 0), the program's strict
    ``|F1_k - F1_c| < 2 std / k`` passed no pixel, not even the centre, and final=idl fell
    back to F1 + C2 - C1 everywhere, silently. A constant band bounds nothing now: the other
    bands are fused as with final=paper (mostly not the additive value)."""
    d = lgc(0, 0, 128)
    f1 = d["f1"].copy()
    f1[0] = 0.05
    m = FSDAF(final="idl", classes=4).fit([(f1, d["c1"])], ratio=R)
    m.prepare(d["c2"])
    pred, extra = m.predict_window_quality(Window(0, 0, 128, 128))
    additive = f1 + d["c2"] - d["c1"]
    assert extra["fallback"].mean() < 0.01
    assert np.mean(np.isclose(pred[1:], additive[1:], atol=1e-6)) < 0.2
