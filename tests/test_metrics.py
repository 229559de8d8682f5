"""Tests for stfusion.metrics: every metric against a computation by hand, plus properties.

The hand computations use the small literal arrays T and P below (2 bands x 3 x 4) so a reader
can check every number with pencil and paper.
"""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from stfusion import metrics as m
from stfusion.errors import STFusionWarning
from stfusion.metrics_blocks import evaluate_blocks

nan = np.nan

# Band 1: truth is missing at (0, 3), the prediction at (2, 3) -> 10 pixels valid in both.
# Band 2: everything valid; pred = 2 * truth - 4.
T = np.array(
    [
        [[1, 2, 3, nan], [5, 6, 7, 8], [9, 10, 11, 12]],
        [[2, 2, 2, 2], [4, 4, 4, 4], [6, 6, 6, 6]],
    ]
)
P = np.array(
    [
        [[2, 1, 3, 4], [7, 6, 7, 8], [9, 10, 13, nan]],
        [[0, 0, 0, 0], [4, 4, 4, 4], [8, 8, 8, 8]],
    ]
)
# Band 1, the 10 jointly valid pixels in row-major order:
T1 = [1, 2, 3, 5, 6, 7, 8, 9, 10, 11]
P1 = [2, 1, 3, 7, 6, 7, 8, 9, 10, 13]
# differences P1 - T1 = [+1, -1, 0, +2, 0, 0, 0, 0, 0, +2]
# Band 2: 4 pixels each of (truth, pred) = (2, 0), (4, 4), (6, 8); differences -2, 0, +2.

SETTINGS = settings(max_examples=40, deadline=None)


# --------------------------------------------------------------------------------------------
# hand computations on T, P
# --------------------------------------------------------------------------------------------


def test_rmse_mae_bias_by_hand() -> None:
    # band 1: sum d = 4, sum |d| = 6, sum d^2 = 1 + 1 + 4 + 4 = 10, n = 10
    # band 2: sum d = 4 * (-2 + 0 + 2) = 0, sum |d| = 4 * 4 = 16, sum d^2 = 4 * 8 = 32, n = 12
    np.testing.assert_allclose(m.bias(P, T), [4 / 10, 0 / 12], atol=1e-15)
    np.testing.assert_allclose(m.mae(P, T), [6 / 10, 16 / 12], rtol=1e-15)
    np.testing.assert_allclose(m.rmse(P, T), [math.sqrt(10 / 10), math.sqrt(32 / 12)], rtol=1e-15)


def test_cc_by_hand() -> None:
    # band 1: sum t = 62, sum p = 66, sum t^2 = 490, sum p^2 = 562, sum tp = 521
    assert (sum(T1), sum(P1)) == (62, 66)
    assert sum(t * t for t in T1) == 490
    assert sum(p * p for p in P1) == 562
    assert sum(t * p for t, p in zip(T1, P1)) == 521
    s_tt = 490 - 62 * 62 / 10  # 105.6
    s_pp = 562 - 66 * 66 / 10  # 126.4
    s_tp = 521 - 62 * 66 / 10  # 111.8
    r1 = s_tp / math.sqrt(s_tt * s_pp)  # 0.96769...
    # band 2: pred is an increasing linear function of truth -> r = 1
    np.testing.assert_allclose(m.cc(P, T), [r1, 1.0], rtol=1e-12)
    assert r1 == pytest.approx(0.9676901211, abs=1e-9)


def test_uiqi_by_hand() -> None:
    # Q = 4 s_tp m_t m_p / ((s_tt + s_pp)(m_t^2 + m_p^2)), sums of squares as in test_cc_by_hand
    q1 = 4 * 111.8 * 6.2 * 6.6 / ((105.6 + 126.4) * (6.2**2 + 6.6**2))
    # band 2: means 4 and 4; deviations t: -2, 0, 2 and p: -4, 0, 4 (4 pixels each)
    # s_tp = 4 * (8 + 8) = 64, s_tt = 4 * 8 = 32, s_pp = 4 * 32 = 128
    q2 = 4 * 64 * 4 * 4 / ((32 + 128) * (16 + 16))  # = 0.8
    assert q2 == pytest.approx(0.8)
    np.testing.assert_allclose(m.uiqi(P, T), [q1, q2], rtol=1e-12)


def test_psnr_by_hand_numeric_range() -> None:
    # MSE = [1, 32/12 = 8/3]; L = 10 -> 10 log10(100 / 1) = 20, 10 log10(100 * 3 / 8)
    np.testing.assert_allclose(
        m.psnr(P, T, data_range=10.0), [20.0, 10 * math.log10(37.5)], rtol=1e-14
    )


def test_psnr_by_hand_truth_range() -> None:
    # "truth": max - min over the truth's finite pixels, including (2, 3) = 12 where the
    # prediction is missing -> L = [12 - 1, 6 - 2] = [11, 4]
    np.testing.assert_allclose(m.resolve_data_range(T, "truth"), [11.0, 4.0])
    expected = [10 * math.log10(11**2 / 1), 10 * math.log10(4**2 / (8 / 3))]
    np.testing.assert_allclose(m.psnr(P, T, data_range="truth"), expected, rtol=1e-14)


def test_psnr_mean_is_mean_of_band_psnr() -> None:
    rep = m.evaluate(P, T, data_range=10.0)
    assert rep.mean["psnr"] == pytest.approx((20.0 + 10 * math.log10(37.5)) / 2)


def test_coverage_and_valid_fraction_by_hand() -> None:
    # band 1: truth valid at 11 pixels, the prediction covers 10 of them; 10 of 12 valid in both
    np.testing.assert_allclose(m.coverage(P, T), [10 / 11, 1.0])
    np.testing.assert_allclose(m.valid_fraction(P, T), [10 / 12, 1.0])


def test_sam_by_hand() -> None:
    # Pixels valid in all bands of both: all but (0, 3) and (2, 3). Spectra (band 1, band 2):
    truth_spectra = [
        (1, 2),
        (2, 2),
        (3, 2),
        (5, 4),
        (6, 4),
        (7, 4),
        (8, 4),
        (9, 6),
        (10, 6),
        (11, 6),
    ]
    pred_spectra = [
        (2, 0),
        (1, 0),
        (3, 0),
        (7, 4),
        (6, 4),
        (7, 4),
        (8, 4),
        (9, 8),
        (10, 8),
        (13, 8),
    ]
    # In 2-D (both spectra in the first quadrant) the angle is the difference of polar angles.
    angles = [
        abs(math.atan2(t[1], t[0]) - math.atan2(p[1], p[0]))
        for t, p in zip(truth_spectra, pred_spectra)
    ]
    # e.g. first pixel: atan(2 / 1) - 0 = 63.43 deg; second: 45 deg
    assert math.degrees(angles[1]) == pytest.approx(45.0)
    expected = sum(angles) / 10
    assert m.sam(P, T) == pytest.approx(expected, rel=1e-12)
    assert m.sam(P, T, degrees=True) == pytest.approx(math.degrees(expected), rel=1e-12)
    rep = m.evaluate(P, T)
    assert rep.mean["sam_rad"] == pytest.approx(expected, rel=1e-12)
    assert rep.mean["sam_deg"] == pytest.approx(math.degrees(expected), rel=1e-12)


def test_sam_skips_zero_norm_and_partially_missing_pixels() -> None:
    t = np.array([[[1.0, 0.0, 1.0]], [[0.0, 0.0, 1.0]]])  # spectra (1,0), (0,0), (1,1)
    p = np.array([[[1.0, 5.0, nan]], [[1.0, 5.0, 1.0]]])  # spectra (1,1), (5,5), (nan,1)
    # pixel 2: zero truth norm -> skipped; pixel 3: missing in band 1 -> skipped
    assert m.sam(p, t, degrees=True) == pytest.approx(45.0)
    assert math.isnan(m.sam(p[:, :, 1:], t[:, :, 1:]))


def test_ergas_pinned_convention() -> None:
    # Both bands have RMSE_b / mean_b = 0.1, so ERGAS = (100 / R) * sqrt(0.1^2) = 10 / R.
    t = np.stack([np.full((3, 4), 10.0), np.full((3, 4), 20.0)])
    p = np.stack([np.full((3, 4), 11.0), np.full((3, 4), 18.0)])  # RMSE 1 and 2
    assert m.ergas(p, t, ratio=16) == pytest.approx(0.625)  # 100 / 16 * 0.1
    assert m.ergas(p, t, ratio=10) == pytest.approx(1.0)
    # not the inverted h/l convention (100 * R * 0.1 = 160), R^2 = 256 times too large
    assert m.ergas(p, t, ratio=16) != pytest.approx(160.0)


def test_ergas_by_hand() -> None:
    # band 1: RMSE 1, truth mean over the 10 jointly valid pixels = 62 / 10 = 6.2
    # band 2: RMSE sqrt(8/3), truth mean 4
    terms = [(1 / 6.2) ** 2, (8 / 3) / 4**2]
    expected = 100 / 16 * math.sqrt(sum(terms) / 2)  # 1.9399...
    assert m.ergas(P, T, 16) == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(1.93992406, abs=1e-8)


def test_ergas_without_ratio_is_nan_with_note() -> None:
    assert math.isnan(m.ergas(P, T, None))
    rep = m.evaluate(P, T)
    assert math.isnan(rep.mean["ergas"])
    assert rep.to_dict()["ergas"]["mean"] is None
    assert any("ergas" in n for n in rep.notes)


def test_scores_that_depend_on_the_zero_are_noted_below_zero() -> None:
    """An LST trial: ERGAS 0.019 in kelvin, 36.8 in degrees Celsius, with no word."""
    rng = np.random.default_rng(0)
    kelvin = 273.15 + rng.normal(1.0, 3.0, (1, 30, 30))
    pred = kelvin + rng.normal(0, 0.5, kelvin.shape)
    in_k = m.evaluate(pred, kelvin, ratio=16, data_range="truth")
    in_c = m.evaluate(pred - 273.15, kelvin - 273.15, ratio=16, data_range="truth")
    assert in_c.mean["rmse"] == pytest.approx(in_k.mean["rmse"], rel=1e-9)
    assert in_c.mean["ergas"] > 100 * in_k.mean["ergas"]
    assert not any("below 0" in n for n in in_k.notes)
    assert any("below 0: ergas" in n and "kelvin" in n for n in in_c.notes)
    # reflectance with a few negative pixels (CIA's SWIR) is not told about the zero
    refl = np.clip(rng.normal(0.2, 0.1, (2, 30, 30)), -0.05, 1)
    assert not any("below 0" in n for n in m.evaluate(refl + 0.01, refl).notes)


def test_ssim_constant_images_by_hand() -> None:
    # Constant images: all local variances are 0, so SSIM = (2ab + C1) / (a^2 + b^2 + C1)
    a, b, L = 0.4, 0.5, 1.0
    c1 = (0.01 * L) ** 2
    expected = (2 * a * b + c1) / (a * a + b * b + c1)  # 0.4001 / 0.4101
    p = np.full((2, 3, 4), a)
    t = np.full((2, 3, 4), b)
    t[1, 0, 0] = nan
    np.testing.assert_allclose(m.ssim(p, t), [expected, expected], rtol=1e-12)


# --------------------------------------------------------------------------------------------
# SSIM against direct loops
# --------------------------------------------------------------------------------------------


def _weight(di: int, dj: int) -> float:
    return math.exp(-(di * di + dj * dj) / (2 * 1.5**2))


def _ssim_pixel(p: np.ndarray, t: np.ndarray, i: int, j: int, L: float) -> float:
    """SSIM at (i, j) by the definition: weighted stats over valid in-bounds 11 x 11 neighbours."""
    ws, xs, ys = [], [], []
    for di in range(-5, 6):
        for dj in range(-5, 6):
            ii, jj = i + di, j + dj
            if 0 <= ii < p.shape[0] and 0 <= jj < p.shape[1]:
                x, y = p[ii, jj], t[ii, jj]
                if np.isfinite(x) and np.isfinite(y):
                    ws.append(_weight(di, dj))
                    xs.append(x)
                    ys.append(y)
    w = np.array(ws) / sum(ws)
    x, y = np.array(xs), np.array(ys)
    mx, my = w @ x, w @ y
    vx, vy = w @ (x - mx) ** 2, w @ (y - my) ** 2
    cxy = w @ ((x - mx) * (y - my))
    c1, c2 = (0.01 * L) ** 2, (0.03 * L) ** 2
    return ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))


def test_gaussian_window_is_11_wide_sigma_1_5() -> None:
    g = m.gaussian_window()
    assert g.shape == (11,)
    assert g.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(g / g[5], [_weight(k, 0) for k in range(-5, 6)], rtol=1e-14)


def test_ssim_interior_pixel_equals_wang_2004() -> None:
    rng = np.random.default_rng(0)
    t = rng.uniform(0, 1, (2, 17, 17))
    p = np.clip(t + rng.normal(0, 0.1, t.shape), 0, 1)
    smap = m.ssim_map(p, t)
    for b in range(2):
        for i, j in [(5, 5), (8, 8), (11, 11), (5, 11)]:  # window fully inside the image
            # Wang et al. 2004 with the 11 x 11 Gaussian window, no masks involved:
            w = np.outer(m.gaussian_window(), m.gaussian_window())
            x, y = p[b, i - 5 : i + 6, j - 5 : j + 6], t[b, i - 5 : i + 6, j - 5 : j + 6]
            mx, my = (w * x).sum(), (w * y).sum()
            vx, vy = (w * (x - mx) ** 2).sum(), (w * (y - my) ** 2).sum()
            cxy = (w * (x - mx) * (y - my)).sum()
            c1, c2 = 0.01**2, 0.03**2
            wang = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
            assert smap[b, i, j] == pytest.approx(wang, rel=1e-12)


def test_ssim_map_with_gaps_and_edges_matches_loop() -> None:
    rng = np.random.default_rng(1)
    t = rng.uniform(0, 1, (2, 7, 9))
    p = t + rng.normal(0, 0.05, t.shape)
    t[0, 1, 2] = t[0, 3, 3] = p[0, 6, 0] = p[1, 2, 2:6] = nan
    smap = m.ssim_map(p, t)
    expected = np.full(t.shape, nan)
    for b in range(2):
        for i in range(7):
            for j in range(9):
                if np.isfinite(p[b, i, j]) and np.isfinite(t[b, i, j]):
                    expected[b, i, j] = _ssim_pixel(p[b], t[b], i, j, 1.0)
    np.testing.assert_allclose(smap, expected, rtol=1e-10, equal_nan=True)
    # ssim is the mean of the map over the jointly valid pixels
    np.testing.assert_allclose(m.ssim(p, t), np.nanmean(expected, axis=(1, 2)), rtol=1e-10)


def test_ssim_window_radius_is_5() -> None:
    rng = np.random.default_rng(2)
    t = rng.uniform(0, 1, (1, 15, 15))
    p = t + rng.normal(0, 0.05, t.shape)
    base = m.ssim_map(p, t)[0, 7, 7]
    far, near = p.copy(), p.copy()
    far[0, 7, 13] += 0.5  # 6 pixels away: outside the 11 x 11 window
    near[0, 7, 12] += 0.5  # 5 pixels away: inside
    assert m.ssim_map(far, t)[0, 7, 7] == base
    assert m.ssim_map(near, t)[0, 7, 7] != pytest.approx(base, rel=1e-9)


def test_ssim_large_offset_is_accurate() -> None:
    # LST-like values (~300 K): the sample-free form must not lose the small local variances.
    rng = np.random.default_rng(3)
    t = 300 + rng.normal(0, 0.5, (1, 8, 8))
    p = t + rng.normal(0, 0.2, t.shape)
    p[0, 0, 0] = nan
    L = float(np.nanmax(t) - np.nanmin(t))
    smap = m.ssim_map(p, t, data_range="truth")
    assert smap[0, 4, 4] == pytest.approx(_ssim_pixel(p[0], t[0], 4, 4, L), rel=1e-9)
    assert smap[0, 0, 7] == pytest.approx(_ssim_pixel(p[0], t[0], 0, 7, L), rel=1e-9)


def test_ssim_truth_range_is_per_band() -> None:
    rng = np.random.default_rng(4)
    t = rng.uniform(0, 1, (2, 6, 6)) * np.array([1.0, 50.0])[:, None, None]
    p = t + rng.normal(0, 0.1, t.shape)
    got = m.ssim(p, t, data_range="truth")
    for b in range(2):
        L = float(t[b].max() - t[b].min())
        assert got[b] == pytest.approx(m.ssim(p[b : b + 1], t[b : b + 1], data_range=L)[0])


# --------------------------------------------------------------------------------------------
# evaluate, report, errors
# --------------------------------------------------------------------------------------------


def test_evaluate_matches_functions() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing to warn about here
        rep = m.evaluate(P, T, ratio=16, data_range="truth", band_names=["red", "nir"])
    assert set(rep.mean) == set(m.METRIC_NAMES)
    assert set(rep.per_band) == set(m.METRIC_NAMES) - {"sam_deg", "sam_rad", "ergas"}
    assert rep.band_names == ["red", "nir"]
    assert rep.data_range == "truth"
    assert rep.ratio == 16.0
    assert rep.band_data_range == [11.0, 4.0]
    for name, fn in [
        ("rmse", m.rmse),
        ("mae", m.mae),
        ("bias", m.bias),
        ("cc", m.cc),
        ("uiqi", m.uiqi),
        ("coverage", m.coverage),
    ]:
        np.testing.assert_allclose(rep.per_band[name], fn(P, T))
        assert rep.mean[name] == pytest.approx(float(np.mean(fn(P, T))))
    np.testing.assert_allclose(rep.per_band["ssim"], m.ssim(P, T, "truth"))
    np.testing.assert_allclose(rep.per_band["psnr"], m.psnr(P, T, "truth"))
    assert rep.mean["ergas"] == pytest.approx(m.ergas(P, T, 16))
    assert rep.mean["valid_fraction"] == pytest.approx(22 / 24)  # all values valid in both


def test_to_dict_is_json_ready() -> None:
    t = np.stack([np.arange(12.0).reshape(3, 4), np.full((3, 4), nan)])
    with pytest.warns(UserWarning, match="band_2"):
        rep = m.evaluate(t, t, ratio=10, data_range=11.0)
    d = rep.to_dict()
    json.dumps(d, allow_nan=False)  # no NaN / inf left
    assert d["psnr"]["bands"] == {"band_1": "inf", "band_2": None}
    assert d["psnr"]["mean"] == "inf"
    assert d["rmse"] == {"bands": {"band_1": 0.0, "band_2": None}, "mean": 0.0}
    assert d["sam_deg"]["bands"] == {}
    assert d["data_range"] == 11.0
    assert d["ratio"] == 10.0


def test_empty_band_is_nan_and_warns() -> None:
    p = P.copy()
    p[1] = nan
    for fn in (m.rmse, m.mae, m.bias, m.cc, m.ssim, m.psnr, m.uiqi):
        out = fn(p, T)
        assert np.isfinite(out[0]) and np.isnan(out[1])
    assert m.coverage(p, T)[1] == 0.0
    with pytest.warns(STFusionWarning, match="band_2"):
        rep = m.evaluate(p, T)
    assert rep.mean["rmse"] == pytest.approx(1.0)  # NaN band left out of the mean
    assert rep.mean["coverage"] == pytest.approx((10 / 11 + 0) / 2)
    assert any("band_2" in n for n in rep.notes)
    assert rep.to_dict()["rmse"]["bands"]["band_2"] is None


def test_functions_do_not_emit_numpy_warnings() -> None:
    t = np.full((2, 3, 3), nan)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for fn in (m.rmse, m.mae, m.bias, m.cc, m.ssim, m.psnr, m.uiqi, m.coverage):
            assert np.isnan(fn(t, t)).all()
        assert math.isnan(m.sam(t, t))
        assert math.isnan(m.ergas(t, t, 16))


def test_two_d_input_is_one_band_and_ints_are_accepted() -> None:
    t = np.arange(12).reshape(3, 4)
    p = t + 1
    np.testing.assert_allclose(m.rmse(p, t), [1.0])
    np.testing.assert_allclose(m.bias(p, t), [1.0])


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: m.rmse(np.zeros((2, 3, 4)), np.zeros((2, 3, 5))), "same shape"),
        (lambda: m.evaluate(np.zeros((1, 3, 4)), np.zeros((2, 3, 4))), "same shape"),
        (lambda: m.rmse(np.zeros((1, 1, 3, 4)), np.zeros((1, 1, 3, 4))), "3-D"),
        (lambda: m.ssim(P, T, data_range="max"), "data_range"),
        (lambda: m.psnr(P, T, data_range=0.0), "data_range"),
        (lambda: m.ergas(P, T, ratio=-16), "ratio"),
        (lambda: m.evaluate(P, T, band_names=["red"]), "band_names"),
    ],
)
def test_bad_input_raises_value_error(call, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()


def test_constant_truth_range_gives_nan_ssim_psnr() -> None:
    t = np.full((1, 4, 4), 0.3)
    p = t + 0.1
    assert np.isnan(m.psnr(p, t, "truth")).all()
    assert np.isnan(m.ssim(p, t, "truth")).all()


# --------------------------------------------------------------------------------------------
# properties
# --------------------------------------------------------------------------------------------


@st.composite
def image_pairs(draw: st.DrawFn, with_nan: bool = True) -> tuple[np.ndarray, np.ndarray]:
    shape = (draw(st.integers(1, 3)), draw(st.integers(1, 12)), draw(st.integers(1, 12)))
    values = hnp.arrays(np.int64, shape, elements=st.integers(0, 100))
    t = draw(values) / 100.0
    p = draw(values) / 100.0
    if with_nan:
        t[draw(hnp.arrays(np.bool_, shape))] = nan
        p[draw(hnp.arrays(np.bool_, shape))] = nan
    return p, t


@SETTINGS
@given(image_pairs())
def test_identical_images_are_perfect(pair: tuple[np.ndarray, np.ndarray]) -> None:
    _, t = pair
    has = np.isfinite(t).any(axis=(1, 2))
    np.testing.assert_array_equal(m.rmse(t, t)[has], 0.0)
    np.testing.assert_array_equal(m.mae(t, t)[has], 0.0)
    np.testing.assert_array_equal(m.bias(t, t)[has], 0.0)
    assert np.all(m.psnr(t, t)[has] == np.inf)
    np.testing.assert_allclose(m.ssim(t, t)[has], 1.0, rtol=1e-12)
    np.testing.assert_array_equal(m.coverage(t, t)[has], 1.0)
    r = m.cc(t, t)
    np.testing.assert_allclose(r[~np.isnan(r)], 1.0, rtol=1e-14)
    q = m.uiqi(t, t)
    np.testing.assert_allclose(q[~np.isnan(q)], 1.0, rtol=1e-12)
    angle = m.sam(t, t)
    assert math.isnan(angle) or angle == 0.0


@SETTINGS
@given(image_pairs())
def test_error_ordering_and_ranges(pair: tuple[np.ndarray, np.ndarray]) -> None:
    p, t = pair
    e, a, b = m.rmse(p, t), m.mae(p, t), m.bias(p, t)
    ok = ~np.isnan(e)
    assert np.all(e[ok] >= a[ok] - 1e-12)
    assert np.all(a[ok] >= np.abs(b[ok]) - 1e-12)
    s = m.ssim(p, t)
    assert np.all(np.abs(s[~np.isnan(s)]) <= 1 + 1e-9)
    r = m.cc(p, t)
    assert np.all(np.abs(r[~np.isnan(r)]) <= 1 + 1e-12)
    cov, vf = m.coverage(p, t), m.valid_fraction(p, t)
    ok = ~np.isnan(cov)
    assert np.all((cov[ok] >= 0) & (cov[ok] <= 1))
    assert np.all(vf[ok] <= cov[ok] + 1e-15)
    angle = m.sam(p, t)
    assert math.isnan(angle) or 0 <= angle <= math.pi / 2 + 1e-12  # non-negative spectra


@SETTINGS
@given(image_pairs())
def test_ssim_is_symmetric(pair: tuple[np.ndarray, np.ndarray]) -> None:
    p, t = pair
    np.testing.assert_allclose(m.ssim(p, t), m.ssim(t, p), rtol=1e-10, atol=1e-12)


@SETTINGS
@given(image_pairs(), st.sampled_from([0.5, 3.0, 100.0]))
def test_joint_scaling(pair: tuple[np.ndarray, np.ndarray], k: float) -> None:
    p, t = pair
    np.testing.assert_allclose(m.rmse(k * p, k * t), k * m.rmse(p, t), rtol=1e-12)
    np.testing.assert_allclose(m.cc(k * p, k * t), m.cc(p, t), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(m.uiqi(k * p, k * t), m.uiqi(p, t), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(m.psnr(k * p, k * t, k), m.psnr(p, t, 1.0), rtol=1e-12)
    np.testing.assert_allclose(m.ssim(k * p, k * t, k), m.ssim(p, t, 1.0), rtol=1e-9, atol=1e-12)
    # the truth's range can be tiny (0.01 over two pixels): rounding then reaches 1e-9
    np.testing.assert_allclose(
        m.ssim(k * p, k * t, "truth"), m.ssim(p, t, "truth"), rtol=1e-7, atol=1e-12
    )
    np.testing.assert_allclose(m.ergas(k * p, k * t, 16), m.ergas(p, t, 16), rtol=1e-9)
    np.testing.assert_allclose(m.sam(k * p, k * t), m.sam(p, t), atol=1e-7)


@SETTINGS
@given(image_pairs(), st.floats(0.1, 10), st.floats(-5, 5))
def test_cc_affine_invariance_and_psnr_truth_range_shift(
    pair: tuple[np.ndarray, np.ndarray], a: float, c: float
) -> None:
    p, t = pair
    np.testing.assert_allclose(m.cc(a * p + c, t), m.cc(p, t), rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(m.cc(-a * p + c, t), -m.cc(p, t), rtol=1e-8, atol=1e-8)
    # with the truth's range, PSNR does not depend on an offset shared by both images
    np.testing.assert_allclose(
        m.psnr(p + c, t + c, "truth"), m.psnr(p, t, "truth"), rtol=1e-8, atol=1e-8
    )


@SETTINGS
@given(image_pairs(), st.integers(0, 2**32 - 1))
def test_sam_ignores_per_pixel_brightness(pair: tuple[np.ndarray, np.ndarray], seed: int) -> None:
    p, t = pair
    scale = np.random.default_rng(seed).uniform(0.1, 10, p.shape[1:])
    np.testing.assert_allclose(m.sam(p * scale, t), m.sam(p, t), atol=1e-7)


def test_data_range_far_below_the_truths_spread_is_noted_and_warned() -> None:
    """Digital numbers (or kelvin) scored with the reflectance data range of 1: SSIM and PSNR
    are not comparable, and the report says what to give instead."""
    rng = np.random.default_rng(0)
    truth = rng.uniform(100, 4000, (2, 16, 16))
    pred = truth + rng.normal(0, 50, truth.shape)
    with pytest.warns(STFusionWarning, match="--truth-scale"):
        report = m.evaluate(pred, truth)
    assert any("data range 1" in n for n in report.notes)
    # The right units, or a range from the truth: no note, no warning.
    with warnings.catch_warnings():
        warnings.simplefilter("error", STFusionWarning)
        for p, t, dr in ((pred * 1e-4, truth * 1e-4, 1.0), (pred, truth, "truth")):
            assert not any("data range" in n for n in m.evaluate(p, t, data_range=dr).notes)
        ndvi = rng.uniform(-1, 1, (1, 16, 16))  # spans 2: within twice the range of 1
        m.evaluate(ndvi, ndvi)


def _block_reader(pred: np.ndarray, truth: np.ndarray):
    """Blocks of in-memory arrays with a halo, NaN outside (as a file read would give)."""
    nb, h, w = truth.shape

    def read(r0: int, c0: int, bh: int, bw: int, halo: int) -> tuple[np.ndarray, np.ndarray]:
        out = []
        for a in (pred, truth):
            block = np.full((nb, bh + 2 * halo, bw + 2 * halo), np.nan)
            y0, y1 = max(0, r0 - halo), min(h, r0 + bh + halo)
            x0, x1 = max(0, c0 - halo), min(w, c0 + bw + halo)
            block[:, y0 - r0 + halo : y1 - r0 + halo, x0 - c0 + halo : x1 - c0 + halo] = a[
                :, y0:y1, x0:x1
            ]
            out.append(block)
        return out[0], out[1]

    return read


def _blocks(h: int, w: int, size: int) -> list[tuple[int, int, int, int]]:
    return [
        (r, c, min(size, h - r), min(size, w - c))
        for r in range(0, h, size)
        for c in range(0, w, size)
    ]


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    size=st.integers(3, 40),
    gaps=st.booleans(),
    data_range=st.sampled_from([1.0, "truth"]),
)
def test_evaluate_blocks_equals_evaluate(
    seed: int, size: int, gaps: bool, data_range: float | str
) -> None:
    """Block by block (images larger than memory) gives the whole-image report: every metric,
    per band and mean, the data ranges and the notes, for any block size, with gaps, an empty
    band and a constant band."""
    rng = np.random.default_rng(seed)
    truth = rng.uniform(0.0, 0.6, (4, 29, 37))
    pred = truth + rng.normal(0, 0.05, truth.shape)
    truth[2] = 0.3  # constant: cc NaN, data range "truth" NaN
    if gaps:
        pred[0, 3:11, 5:20] = np.nan
        truth[1, 10:25, 20:30] = np.nan
        pred[3] = np.nan  # no valid pixel in this band
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", STFusionWarning)
        whole = m.evaluate(pred, truth, ratio=16, data_range=data_range)
        parts = evaluate_blocks(
            _block_reader(pred, truth),
            truth.shape,
            _blocks(29, 37, size),
            ratio=16,
            data_range=data_range,
        )
    for name in m.METRIC_NAMES:
        np.testing.assert_allclose(parts.mean[name], whole.mean[name], rtol=1e-9, atol=1e-12)
        if name not in m.BANDLESS_METRICS:
            np.testing.assert_allclose(
                parts.per_band[name], whole.per_band[name], rtol=1e-9, atol=1e-12, err_msg=name
            )
    np.testing.assert_allclose(parts.band_data_range, whole.band_data_range)
    assert parts.notes == whole.notes


def test_sam_of_one_band_is_nan_with_a_note() -> None:
    """One band has no spectrum: its 'angle' is 0 or 180 degrees by sign alone. evaluate's
    table showed '-', yet the report (and so bench's tables) gave a number."""
    rng = np.random.default_rng(0)
    truth = rng.uniform(-0.5, 0.8, (1, 20, 20))
    report = m.evaluate(truth + 0.1, truth)
    assert np.isnan(report.mean["sam_deg"]) and np.isnan(report.mean["sam_rad"])
    assert any("one band has no spectrum" in n for n in report.notes)
    assert np.isfinite(
        m.evaluate(np.stack([truth[0]] * 2) + 0.1, np.stack([truth[0]] * 2)).mean["sam_deg"]
    )


def test_evaluate_checks_how_dataarrays_label_their_pixels() -> None:
    """A user trial: evaluate(pred, truth) of DataArrays scored a truth shifted 1 km, flipped
    in y or with its bands reordered as if aligned, silently; predict()'s DataArray now
    carries the ratio, and named bands are the report's."""
    import xarray as xr

    from stfusion.errors import GridMismatchError

    rng = np.random.default_rng(0)
    values = rng.random((3, 8, 10))
    coords = {
        "band": ["green", "red", "nir"],
        "y": 1000.0 - 30 * np.arange(8),
        "x": 30.0 * np.arange(10),
    }
    truth = xr.DataArray(values, dims=("band", "y", "x"), coords=coords)
    pred = (truth + 0.01).assign_attrs(ratio=16)
    report = m.evaluate(pred, truth)
    assert report.band_names == ["green", "red", "nir"] and np.isfinite(report.mean["ergas"])
    assert report.mean["rmse"] == pytest.approx(m.evaluate(pred.values, truth.values).mean["rmse"])
    for bad, what in (
        (truth.assign_coords(x=truth.x + 1000), "other x coordinates"),
        (truth.sortby("y"), "other y coordinates"),
        (truth.sel(band=["nir", "red", "green"]), "the same in another order"),
        (truth.transpose("band", "x", "y"), "dimensions"),
    ):
        with pytest.raises(GridMismatchError, match=what):
            m.evaluate(pred, bad)
    # rioxarray's band numbers say nothing about the bands: not compared
    m.evaluate(pred, truth.assign_coords(band=[1, 2, 3]))
    # other names are scored by position, said (a trial: red, nir, lst against red, nir,
    # swir1 scored silently)
    with pytest.warns(STFusionWarning, match=r"green, red, nir and truth green, red, lst"):
        m.evaluate(pred, truth.assign_coords(band=["green", "red", "lst"]))


def test_a_ratio_that_is_no_number_is_a_parameter_error() -> None:
    from stfusion.errors import InvalidParameterError

    with pytest.raises(InvalidParameterError, match="ratio='x': give a number"):
        m.evaluate(np.ones((1, 4, 4)), np.ones((1, 4, 4)), ratio="x")  # type: ignore[arg-type]


def test_one_band_scores_with_the_band_axis_on_one_side_only() -> None:
    """A trial: an NDVI prediction (band, y, x) against rioxarray's truth .squeeze()d to
    (y, x) was refused, with a hint (transpose) that could not work."""
    import xarray as xr

    coords = {"y": 1000.0 - 30 * np.arange(6), "x": 30.0 * np.arange(5)}
    truth = xr.DataArray(np.linspace(-0.2, 0.8, 30).reshape(6, 5), dims=("y", "x"), coords=coords)
    pred = (truth + 0.05).expand_dims(band=["ndvi"])
    assert m.evaluate(pred, truth).mean["rmse"] == pytest.approx(0.05)
    assert m.evaluate(pred.values, truth.values).mean["rmse"] == pytest.approx(0.05)


def test_a_data_range_far_wider_than_the_truth_is_warned_about() -> None:
    """A user trial: --data-range 10000 (the digital numbers' range) on images scored as
    reflectance gave SSIM 0.9999998 and PSNR 109 dB without a word."""
    rng = np.random.default_rng(0)
    truth = rng.uniform(0.02, 0.5, (2, 24, 24))
    pred = truth + rng.normal(0, 0.03, truth.shape)
    with pytest.warns(STFusionWarning, match=r"data range 10000 is \d+ times the truth"):
        report = m.evaluate(pred, truth, data_range=10000)
    assert report.mean["ssim"] > 0.999 and any(
        "times the truth's spread" in n for n in report.notes
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", STFusionWarning)
        m.evaluate(pred, truth, data_range=1.0)
        m.evaluate(pred, truth, data_range="truth")
        water = 0.03 + 0.008 * rng.random((2, 24, 24))  # 1, the reflectance convention
        m.evaluate(water + 0.001, water, data_range=1.0)
