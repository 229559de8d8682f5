"""FSDAF 2.0: the fast steps against the slow reference (``tests/reference/fsdaf2_ref.py``),
change detection on a scene with a known land-cover change, FSDAF's result where nothing
changed, tiling, and lgc-flood (crops as in ``test_fsdaf``: scale 1e-4, R = 16)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window

from conftest import KRANJ, LGC, need
from reference.fsdaf2_ref import fsdaf2_change_ref, otsu_ref
from reference.fsdaf_ref import homogeneity_ref
from stfusion.methods.fsdaf import FSDAF
from stfusion.methods.fsdaf2 import FSDAF2, fsdaf2_change, otsu_threshold
from stfusion.metrics import rmse
from test_fsdaf import coarse_of, lgc, synthetic

needs_lgc = pytest.mark.realdata(LGC)


@pytest.fixture(autouse=True)
def _quiet() -> None:
    warnings.filterwarnings("ignore", ".*georeferenc")


def changed_scene(r: int = 8) -> dict[str, np.ndarray]:
    """Synthetic 64 x 64 scene: every class changes by its own amount, and a 16 x 16 square
    (2 x 2 coarse pixels) becomes a new cover the class changes do not explain."""
    s = synthetic(64, 64, r)
    f1, lab = s["fine"], s["labels"]
    per_class = np.array(
        [[0.02, 0.01, -0.01], [-0.01, 0.03, 0.0], [0.0, -0.02, 0.02], [0.01, 0.0, 0.01]]
    )
    f2 = f1 + per_class[lab].transpose(2, 0, 1).astype(np.float32)
    f2[:, 24:40, 16:32] = np.array([0.6, 0.05, 0.5], dtype=np.float32)[:, None, None]
    return {"f1": f1, "f2": f2, "c1": coarse_of(f1, r), "c2": coarse_of(f2, r)}


# ------------------------------------------------------------------ fast steps vs reference


def test_otsu_matches_reference() -> None:
    rng = np.random.default_rng(3)
    for v in (
        np.concatenate([rng.normal(0.1, 0.05, 60), rng.normal(1.5, 0.3, 15)]),
        rng.exponential(1.0, 90),
        np.array([0.0, 0.0, 1.0, 1.0, 1.0, 5.0, np.nan]),
    ):
        assert otsu_threshold(v) == pytest.approx(otsu_ref(v), rel=1e-12)
    assert otsu_threshold(np.full(5, 0.3)) == np.inf == otsu_ref(np.full(5, 0.3))


def test_change_step_matches_reference() -> None:
    """Random F1 and spline, unlabelled pixels, a NaN spline value, an unknown residual in a
    changed coarse pixel, blocks partial at the edge."""
    rng = np.random.default_rng(5)
    r, h, w = 6, 20, 17
    f1 = rng.uniform(0.05, 0.4, (3, h, w)).astype(np.float32)
    labels = rng.integers(-1, 3, (h, w)).astype(np.int32)
    hi = homogeneity_ref(labels, r // 2)
    spline = f1 + rng.normal(0, 0.05, f1.shape)
    spline[1, 4, 4] = np.nan
    class_change = rng.normal(0, 0.02, (3, 3))
    residual = rng.normal(0, 0.03, (4, 3, 3))
    residual[2, 1, 0] = np.nan
    changed = rng.random((4, 3)) < 0.6
    changed[0, 0] = changed[2, 1] = True
    scale = np.array([0.1, 0.0, 0.08])  # a flat band counts 0 in the change index
    lo, hi_allow = np.zeros(3), np.full(3, 0.45)
    args = (f1, labels, hi, spline, class_change, residual, changed, r, scale, 0.3, lo, hi_allow)
    fast = fsdaf2_change(*args)
    ref = fsdaf2_change_ref(*args)
    np.testing.assert_allclose(fast, ref, rtol=1e-5, atol=2e-6, equal_nan=True)
    # No changed coarse pixel: FSDAF's residual distribution exactly.
    from stfusion.methods.fsdaf import residual_change

    none = fsdaf2_change(*args[:6], np.zeros_like(changed), *args[7:])
    np.testing.assert_array_equal(
        none, residual_change(f1, labels, hi, spline, class_change, residual, r, lo, hi_allow)
    )


# ----------------------------------------------------------------------- the whole method


def test_detects_the_changed_coarse_pixels_and_unmixes_without_them(tmp_path: Path) -> None:
    d = changed_scene()
    m = FSDAF2(classes=4, window=9).fit([(d["f1"], d["c1"])], ratio=8)
    m.prepare(d["c2"])
    assert m.changed_[3:5, 2:4].all()  # the new cover
    assert m.changed_.sum() <= 8  # and few others
    # what it found goes with the prediction (the output's STFUSION_FSDAF2 tag)
    m.predict(d["c2"], out=tmp_path / "p.tif")
    with rasterio.open(tmp_path / "p.tif") as ds:
        found = json.loads(ds.tags()["STFUSION_FSDAF2"])
    assert found == {
        "change_threshold": round(m.change_threshold_, 4),
        "changed_coarse_pixels": int(m.changed_.sum()),
        "coarse_pixels": m.changed_.size,
    }
    f = FSDAF(classes=4, window=9).fit([(d["f1"], d["c1"])], ratio=8)
    f.prepare(d["c2"])
    truth = np.array(
        [[0.02, 0.01, -0.01], [-0.01, 0.03, 0.0], [0.0, -0.02, 0.02], [0.01, 0.0, 0.01]]
    )
    order = np.argsort(m.centres_[:, 0])  # classes by their first band, as the levels
    assert np.abs(m.class_change_[order] - truth).max() < 1e-6
    p2, p1 = m.predict(d["c2"]).values, f.predict(d["c2"]).values
    assert rmse(p2, d["f2"]).mean() < rmse(p1, d["f2"]).mean()


def test_without_change_it_is_fsdaf_bit_for_bit() -> None:
    d = changed_scene()
    kw = {"classes": 4, "window": 9}
    a = FSDAF2(change_threshold=1e6, **kw).fit([(d["f1"], d["c1"])], ratio=8).predict(d["c2"])
    b = FSDAF(**kw).fit([(d["f1"], d["c1"])], ratio=8).predict(d["c2"])
    np.testing.assert_array_equal(a.values, b.values)


def test_tiled_equals_whole_scene_with_changes() -> None:
    d = changed_scene()
    m = FSDAF2(classes=4, window=9).fit([(d["f1"], d["c1"])], ratio=8)
    m.prepare(d["c2"])
    assert m.changed_.any()
    whole = m.predict(window_size=64).values
    for size, workers in ((7, 1), (23, 2)):
        np.testing.assert_array_equal(m.predict(window_size=size, workers=workers).values, whole)
    part, _ = m.predict_window_quality(Window(13, 29, 5, 3))
    np.testing.assert_array_equal(part, whole[:, 29:32, 13:18])


@needs_lgc
def test_lgc_crop_tiles_and_beats_additive() -> None:
    d = lgc(150, 200, 96)
    m = FSDAF2(window=15).fit([(d["f1"], d["c1"])], ratio=16)
    m.prepare(d["c2"])
    whole = m.predict(window_size=96).values
    np.testing.assert_array_equal(m.predict(window_size=29, workers=2).values, whole)
    additive = d["f1"] + d["c2"] - d["c1"]
    assert rmse(whole, d["f2"]).mean() < rmse(additive, d["f2"]).mean()


def test_errors_name_fsdaf2() -> None:
    """Messages name the method the user ran (they said "fsdaf")."""
    from stfusion.errors import InvalidParameterError

    rng = np.random.default_rng(0)
    f = rng.uniform(0.1, 0.3, (2, 32, 32)).astype(np.float32)
    with pytest.raises(InvalidParameterError, match=r"^fsdaf2 needs the resolution ratio"):
        FSDAF2(window=9).fit([(f, f + 0.01)])


@pytest.mark.realdata(KRANJ)
def test_series_records_each_pairs_change_detection(tmp_path: Path) -> None:
    """A date between two pairs blends one FSDAF 2.0 prediction from each: the output's
    STFUSION_FSDAF2 tag lists both detections (pair order); the variable stays one text,
    which evaluate reads (each pair infers its own percentiles)."""
    from stfusion.series import run_series

    k = need(KRANJ)
    out = tmp_path / "out"
    run_series(
        out,
        fine=[str(k / "landsat" / "filled" / f"2020{d}_*.tif") for d in ("068", "093")],
        coarse=[str(k / "modis" / "filled")],
        fine_scale=1e-4,
        method="fsdaf2",
        params={"ratio": 16},
        date_range="2020-03-17",
    )
    with rasterio.open(out / "fused_2020-03-17.tif") as ds:
        tags = ds.tags()
    pairs = json.loads(tags["STFUSION_SERIES_PAIRS"])
    found = json.loads(tags["STFUSION_FSDAF2"])
    assert pairs == ["2020-03-08", "2020-04-02"] and len(found) == 2
    assert all(f["coarse_pixels"] == 9 for f in found)  # 44 x 45 px at R = 16
    assert found[0] != found[1]  # two pairs, two detections
    assert tags["STFUSION_VARIABLE"].startswith("reflectance, inferred (0.5-99.5 percentile")


def test_fsdaf_parameters_keep_fsdaf_defaults() -> None:
    """FSDAF2 restates FSDAF's parameters in its signature (for help and type checks): their
    defaults must not drift from FSDAF's."""
    import inspect

    from stfusion.methods.fsdaf import FSDAF

    ours = inspect.signature(FSDAF2).parameters
    theirs = inspect.signature(FSDAF).parameters
    assert set(theirs) <= set(ours)
    assert {k: ours[k].default for k in theirs} == {k: v.default for k, v in theirs.items()}
