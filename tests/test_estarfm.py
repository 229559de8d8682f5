"""Tests for ESTARFM: the fast kernel against a slow per-pixel reference on real crops, exact
properties on synthetic scenes, tiling, NaN handling, parameters, and accuracy on the named
case ``boreas-2pair`` (the ESTARFM paper's own test data)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from conftest import BOREAS, need, piecewise_scene
from reference import estarfm_ref as ref
from stfusion.errors import InvalidParameterError
from stfusion.io import FileSource, Scaling
from stfusion.methods.estarfm import ESTARFM, spectral_correlation

NAMES = ("tm0524", "modis0524", "tm0812", "modis0812", "modis0711", "tm0711")


@pytest.fixture(scope="module")
def boreas() -> dict[str, np.ndarray]:
    """boreas-2pair in reflectance: F1, C1 (05-24), F2, C2 (08-12), C0 (07-11), truth."""
    need(BOREAS)
    imgs = [FileSource(str(BOREAS / n), Scaling(1e-4)).read() for n in NAMES]
    return dict(zip(("F1", "C1", "F2", "C2", "C0", "truth"), imgs))


def crop(d: dict[str, np.ndarray], r: int, c: int, n: int) -> list[np.ndarray]:
    return [d[k][:, r : r + n, c : c + n].copy() for k in ("F1", "C1", "F2", "C2", "C0")]


def fast(
    imgs: list[np.ndarray], ratio: float | None = None, **kw: object
) -> tuple[np.ndarray, ESTARFM]:
    f1, c1, f2, c2, c0 = imgs
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = ESTARFM(**kw).fit([(f1, c1), (f2, c2)], ratio=ratio)
        return m.predict(c0).values, m


def slow(imgs: list[np.ndarray], m: ESTARFM, paths: dict[str, int] | None = None) -> np.ndarray:
    """The reference, given the estimator's parameters as the user gave them ("auto" or a
    number): it computes its own automatic settings, which must equal the estimator's."""
    given = {
        "variable": m.variable,
        "data_min": m.data_min,
        "data_max": m.data_max,
        "min_change": m.min_change,
    }
    own = ref.auto_settings(imgs[0], imgs[2], **given)
    assert own == pytest.approx((m.data_min_, m.data_max_, m.min_change_), rel=1e-6)
    return ref.predict(
        *imgs,
        half=m.halo(),
        classes=m.classes,
        threshold=m.threshold,
        min_similar=m.min_similar,
        alpha=m.alpha,
        v_max=m.v_max,
        paths=paths,
        regression=m.regression,
        ratio=getattr(m, "r_", None),
        **given,
    )


# --------------------------------------------------------------------- against the reference


@pytest.mark.parametrize(
    ("r", "c", "kw"),
    [
        # every branch: V from the regression, V = 1, too few similar pixels, out of range
        (300, 60, {"window": 7, "classes": 2.0, "min_similar": 4, "data_min": 0.02}),
        (50, 300, {"window": 9, "threshold": "window"}),
        (100, 100, {"window": 7}),
    ],
)
def test_matches_reference_on_boreas_crops(boreas, r, c, kw):
    imgs = crop(boreas, r, c, 20)
    pred, m = fast(imgs, **kw)
    paths: dict[str, int] = {}
    want = slow(imgs, m, paths)
    np.testing.assert_allclose(pred, want, rtol=0, atol=2e-6)
    if r == 300:
        assert set(paths) == {"v", "v1", "few", "revised"}, paths


def test_matches_reference_default_window(boreas):
    imgs = crop(boreas, 180, 180, 24)
    pred, m = fast(imgs, window=51)
    np.testing.assert_allclose(pred, slow(imgs, m), rtol=0, atol=2e-6)


def test_matches_reference_one_band(boreas):
    """One band (e.g. NDVI): the reference's relative-difference form replaces the correlation."""
    imgs = [a[2:3] for a in crop(boreas, 300, 60, 20)]
    pred, m = fast(imgs, window=7, classes=2.0)
    paths: dict[str, int] = {}
    np.testing.assert_allclose(pred, slow(imgs, m, paths), rtol=0, atol=2e-6)
    assert paths.get("v", 0) > 0


def test_inferred_range_is_widened_to_the_inputs(boreas):
    """One unnamed band (NDVI-like) with a small pond at -0.3: by its percentiles it passes
    for reflectance, and its values lie more than 5 % of 0..1 below 0, so the automatic
    data_min is widened to the inputs' minimum (the reference derives it from the rule in
    docs/methods/estarfm.md); a given variable keeps the physical range."""
    imgs = [a[2:3] for a in crop(boreas, 300, 60, 20)]
    for a in imgs:
        a[0, 9, 9:11] = -0.3  # 4 of 800 fine values: the 0.5th percentile stays positive
    pred, m = fast(imgs, window=7, classes=2.0)
    np.testing.assert_allclose(pred, slow(imgs, m), rtol=0, atol=2e-6)
    assert m.variable_.name == "reflectance" and m.variable_.inferred
    assert (m.data_min_, m.data_max_) == (pytest.approx(-0.3), 1.0)
    assert pred[0, 9, 9:11].max() < 0  # the pond keeps negative values
    given = fast(imgs, window=7, classes=2.0, variable="reflectance")[1]
    assert ref.auto_settings(imgs[0], imgs[2], variable="reflectance")[:2] == (0.0, 1.0)
    assert (given.data_min_, given.data_max_) == (0.0, 1.0)


def test_matches_reference_with_nan(boreas):
    imgs = crop(boreas, 300, 60, 20)
    f1, _, f2, _, c0 = imgs
    f1[:, 4:8, 5:9] = np.nan  # a cloud in pair 1
    c0[1, 12, 3] = np.nan  # one band of the target
    f2[:, :, 17:] = np.nan  # a swath edge in pair 2
    pred, m = fast(imgs, window=7, classes=2.0, min_similar=4)
    want = slow(imgs, m)
    np.testing.assert_allclose(pred, want, rtol=0, atol=2e-6)
    invalid = ~np.isfinite(np.stack(imgs)).all(axis=(0, 1))
    assert np.isnan(pred[:, invalid]).all()
    assert np.isfinite(pred[:, ~invalid]).all()


@pytest.mark.parametrize(
    ("r", "c", "ratio", "kw"),
    [
        (300, 60, 4, {"window": 7, "classes": 2.0, "min_similar": 4, "data_min": 0.02}),
        (300, 60, 8, {"window": 9, "classes": 2.0, "min_similar": 4}),
        # partial blocks at the edge
        (50, 300, 5, {"window": 7, "threshold": "window", "classes": 2.0, "min_similar": 4}),
    ],
)
def test_coarse_pixel_regression_matches_reference(boreas, r, c, ratio, kw):
    """regression=coarse-pixel (still one V per window, not the paper's per-coarse-pixel V;
    docs/methods/estarfm.md, "Regression scope"): the regression's coarse values are the
    similar pixels' coarse-pixel (block-mean) values; equal to the literal reference, and
    different from the window regression."""
    imgs = crop(boreas, r, c, 22)
    imgs[1][:, 2, 3] = np.nan  # a NaN inside a coarse pixel: the block mean skips it
    pred, m = fast(imgs, ratio=ratio, regression="coarse-pixel", **kw)
    paths: dict[str, int] = {}
    np.testing.assert_allclose(pred, slow(imgs, m, paths), rtol=0, atol=2e-6)
    assert paths.get("v", 0) > 0
    window, _ = fast(imgs, **kw)
    assert np.nanmax(np.abs(pred - window)) > 1e-4


def test_coarse_pixel_regression_tiles_and_needs_the_ratio(boreas):
    imgs = crop(boreas, 120, 40, 40)
    with pytest.raises(InvalidParameterError, match="ratio"):
        fast(imgs, regression="coarse-pixel", window=7)
    f1, c1, f2, c2, c0 = imgs
    m = ESTARFM(window=7, regression="coarse-pixel").fit([(f1, c1), (f2, c2)], ratio=16)
    whole = m.predict(c0, window_size=40).values
    np.testing.assert_array_equal(m.predict(c0, window_size=9, workers=2).values, whole)


def test_coarse_pixel_regression_on_a_native_grid_at_a_fractional_ratio_says_what_to_do(
    tmp_path,
):
    """A trial: coarse images on their own 45 m grid over 10 m fine ones (ratio 4.5) were
    told to "give the coarse image on its own grid", which they were."""
    from affine import Affine

    from conftest import write_tif

    rng = np.random.default_rng(0)
    fine = [rng.uniform(0.05, 0.3, (2, 36, 36)).astype(np.float32) for _ in range(2)]
    coarse = [rng.uniform(0.05, 0.3, (2, 8, 8)).astype(np.float32) for _ in range(3)]
    at = Affine(45.0, 0, 500000.0, 0, -45.0, 6100000.0)
    f = [write_tif(tmp_path / f"f{i}.tif", a, transform=Affine(10.0, 0, 500000.0, 0, -10.0,
         6100000.0)) for i, a in enumerate(fine)]  # fmt: skip
    c = [write_tif(tmp_path / f"c{i}.tif", a, transform=at) for i, a in enumerate(coarse)]
    with pytest.raises(InvalidParameterError, match=r"on their own grid at 4\.5 fine pixels.*"
                       r"Leave the option out"):  # fmt: skip
        ESTARFM(window=7, regression="coarse-pixel").fit([(f[0], c[0]), (f[1], c[1])])


def test_spectral_correlation_matches_reference(boreas):
    f1, c1, f2, c2, _ = crop(boreas, 0, 0, 6)
    r = spectral_correlation(f1, c1, f2, c2)
    for y, x in [(0, 0), (3, 4), (5, 5)]:
        args = [a[:, y, x].astype(float).tolist() for a in (f1, c1, f2, c2)]
        assert r[y, x] == pytest.approx(ref.spectral_r(*args), abs=1e-12)
    flat = np.ones((3, 2, 2), np.float32)
    assert (spectral_correlation(flat, flat * 2, flat, flat * 2) == 0.5).all()


# ------------------------------------------------------------ exact properties, synthetic


def _synthetic(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    s = piecewise_scene(h=40, w=40, bands=3, patch=4, ratio=8, seed=seed)
    return s["fine"], s["coarse"]


def test_unchanged_coarse_returns_that_pairs_fine_image():
    """C_0 == C_1 everywhere: T_1 = 1 and sum W (C_0 - C_1) = 0, so the output is F_1
    exactly (in every branch: regression, V = 1, too few similar pixels)."""
    f1, c1 = _synthetic(0)
    f2, _ = _synthetic(1)
    c2 = c1 * 1.3 + 0.01
    pred, _ = fast([f1, c1, f2, c2, c1.copy()], window=9)
    np.testing.assert_array_equal(pred, f1)


def test_uniform_coarse_change_is_added_to_the_fine_image():
    """F_1 == F_2, C_1 == C_2 and C_0 = C_1 + d: no change between the pairs, so V = 1,
    T_1 = T_2 = 1/2 and the output is F + d (up to float32 rounding)."""
    f, c = _synthetic(2)
    d = np.float32(0.03)
    pred, _ = fast([f, c, f.copy(), c.copy(), c + d], window=9)
    np.testing.assert_allclose(pred, f + d, rtol=0, atol=1e-6)


def test_linear_sensor_relation_is_recovered_by_v():
    """F_k = a C_k + b at both dates, uniform coarse changes: the similar pixels lie on one
    line, so V = a (significant, r = 1) and each pair predicts a C_0 + b exactly, and so does
    their T-weighted mean. The target lies outside the pairs' dates: between them, the T
    weights alone would give the exact answer even with V = 1. 8 x 8 blocks and a 9 x 9
    window leave at least 25 similar pixels everywhere."""
    _, c1 = _synthetic(3)
    a, b = np.float32(1.2), np.float32(0.01)
    c2, c0 = c1 + np.float32(0.05), c1 - np.float32(0.02)
    f1, f2 = a * c1 + b, a * c2 + b
    pred, m = fast([f1, c1, f2, c2, c0], window=9)
    assert m.min_change_ == 0.02  # the 0.05 change between the pairs is enough for V
    np.testing.assert_allclose(pred, a * c0 + b, rtol=0, atol=2e-6)
    with_v1, _ = fast([f1, c1, f2, c2, c0], window=9, v_max=1.1)  # V = 1.2 rejected
    assert np.abs(with_v1 - (a * c0 + b)).min() > 1e-3


def test_affine_change_of_units(boreas):
    """pred(a X + b) = a pred(X) + b (kelvin-like units) when the unit-dependent parameters
    scale with the data: similarity, R, V and T are invariant under one affine map."""
    imgs = crop(boreas, 300, 60, 20)
    kw = {
        "window": 7,
        "classes": 2.0,
        "min_similar": 4,
        "data_min": -math.inf,
        "data_max": math.inf,
    }
    a, b = 100.0, 250.0
    pred, _ = fast(imgs, min_change=0.02, **kw)
    scaled, _ = fast([(a * x + b).astype(np.float32) for x in imgs], min_change=2.0, **kw)
    np.testing.assert_allclose(scaled, a * pred + b, rtol=0, atol=2e-3)


def test_auto_parameters_follow_the_data(boreas):
    imgs = crop(boreas, 0, 0, 40)
    _, m = fast(imgs, window=7)
    assert (m.min_change_, m.data_min_, m.data_max_) == (0.02, 0.0, 1.0)
    kelvin = [(100.0 * x + 250.0).astype(np.float32) for x in imgs]
    _, mk = fast(kelvin, window=7)
    sample = np.concatenate([kelvin[0].ravel(), kelvin[2].ravel()])
    lo, hi = np.percentile(sample, [0.5, 99.5])
    assert mk.min_change_ == pytest.approx(0.02 * (hi - lo), rel=1e-6)
    assert (mk.data_min_, mk.data_max_) == (-math.inf, math.inf)
    # the reference's own automatic settings (computed from the data, not handed over)
    assert ref.auto_settings(imgs[0], imgs[2]) == (0.0, 1.0, 0.02)
    own = ref.auto_settings(kelvin[0], kelvin[2])
    assert own == pytest.approx((mk.data_min_, mk.data_max_, mk.min_change_), rel=1e-6)
    dn = [np.round(x * 10000.0).astype(np.float32) for x in imgs]
    _, md = fast(dn, window=7)
    assert ref.auto_settings(dn[0], dn[2]) == (md.data_min_, md.data_max_, md.min_change_)
    assert ref.auto_settings(dn[0], dn[2]) == (0.0, 10000.0, 200.0)


# ----------------------------------------------------------------------- tiling, contract


def test_tiled_equals_whole_scene(boreas):
    f1, c1, f2, c2, c0 = crop(boreas, 120, 200, 50)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = ESTARFM(window=11).fit([(f1, c1), (f2, c2)])
        whole = m.predict(c0).values
        for size in (7, 16):
            tiled = m.predict(c0, window_size=size).values
            np.testing.assert_array_equal(tiled, whole)
        m.set_params(threshold="window").fit([(f1, c1), (f2, c2)])  # a new fit for new values
        whole = m.predict(c0).values
        np.testing.assert_array_equal(m.predict(c0, window_size=9).values, whole)


def test_one_pair_is_a_clear_error(boreas):
    f1, c1, _, _, _ = crop(boreas, 0, 0, 10)
    with pytest.raises(InvalidParameterError, match=r"exactly 2 pairs.*starfm or fitfc"):
        ESTARFM().fit([(f1, c1)])
    with pytest.raises(InvalidParameterError, match=r"exactly 2 pairs.*robot or vipstf"):
        ESTARFM().fit([(f1, c1)] * 3)


def test_degenerate_pairs_warn(tmp_path):
    """The same pair twice, or a target outside the pair dates: ESTARFM runs, but says it is
    not doing what the method is for."""
    from conftest import coarse_like, write_tif
    from stfusion.errors import STFusionWarning

    rng = np.random.default_rng(3)
    raw = {n: rng.uniform(0.1, 0.3, (2, 12, 12)) for n in "fct"}
    raw["c"] = coarse_like(raw["c"])
    img = [write_tif(tmp_path / f"{n}.tif", raw[n]) for n in "fct"]
    with pytest.warns(STFusionWarning, match="both pairs are"):
        ESTARFM(window=3).fit([(img[0], img[1])] * 2)
    pairs = [(img[0], img[1]), (img[2], img[1])]
    with pytest.warns(STFusionWarning, match="not between the pair dates"):
        ESTARFM(window=3).fit(
            pairs, pair_dates=["2020-03-08", "2020-03-17"], target_date="2020-04-02"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("error", STFusionWarning)
        ESTARFM(window=3).fit(
            pairs, pair_dates=["2020-03-08", "2020-04-02"], target_date="2020-03-17"
        )


@pytest.mark.parametrize(
    "kw",
    [
        {"window": 4},
        {"window": 1},
        {"classes": 0},
        {"min_similar": 0},
        {"alpha": 0.0},
        {"v_max": -1.0},
        {"min_change": -0.1},
        {"data_min": 1.0, "data_max": 0.0},
        {"data_min": math.nan},
        {"bogus": 1},
        {"regression": "pixel"},
    ],
)
def test_bad_parameters(kw):
    with pytest.raises(InvalidParameterError):
        ESTARFM(**kw)


def test_params_parse_from_cli_strings():
    got = ESTARFM.parse_params(["window=31", "data_max=auto", "data_min=-inf", "threshold=window"])
    assert got == {"window": 31, "data_max": "auto", "data_min": -math.inf, "threshold": "window"}
    assert ESTARFM(**got).halo() == 15


# ------------------------------------------------------------------------------- accuracy


def test_boreas_2pair_beats_additive_and_starfm(boreas):
    """The named case boreas-2pair, full 400 x 400 scene (about 2 s here)."""
    from stfusion.methods.starfm import STARFM
    from stfusion.metrics import rmse

    pairs = [(boreas["F1"], boreas["C1"]), (boreas["F2"], boreas["C2"])]
    c0, truth = boreas["C0"], boreas["truth"]
    additive = 0.5 * ((boreas["F1"] + c0 - boreas["C1"]) + (boreas["F2"] + c0 - boreas["C2"]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = ESTARFM().fit(pairs).predict(c0).values
        star = STARFM().fit(pairs).predict(c0).values
    assert np.isfinite(est).all()
    e, a, s = (float(rmse(p, truth).mean()) for p in (est, additive, star))
    assert e < a and e < s, (e, a, s)
    assert e < 0.0080  # measured 0.00757 (additive 0.00849, STARFM 0.00815)
