"""VIPSTF: the virtual pair against the slow reference, the base methods on it, parameters,
missing data and the closeness property of the paper."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import rasterio

from conftest import CIA, piecewise_scene, run_cli_ok, write_tif
from reference.fitfc_ref import fitfc as fitfc_ref
from reference.vipstf_ref import authors_vipstf_sw, regress_subset, vipstf_sw, virtual_pair
from stfusion.errors import InvalidParameterError
from stfusion.io import read_raster
from stfusion.methods import available, get_method, vipstf
from stfusion.methods.fitfc import FitFC
from stfusion.methods.vipstf import VIPSTF
from stfusion.methods.vipstf_sw import SpatialWeighting

DATES = ("2001-10-08", "2001-11-02", "2001-10-17")  # pair 1, pair 2, target
needs_cia = pytest.mark.realdata(CIA)
SMALL_FITFC = {"regression_window": 3, "window": 9, "similar": 6}


@pytest.fixture(scope="module")
def cia() -> dict[str, list[np.ndarray]]:
    """A 40 x 40 crop (R = 10) of the cia-2pair case: fines, coarses, target."""

    def rd(kind: str, d: str) -> np.ndarray:
        return read_raster(CIA / f"CIA_{kind}_{d}.tif").values[:, 100:140, 60:100].copy()

    return {
        "fines": [rd("Landsat7", d) for d in DATES[:2]],
        "coarses": [rd("MOD09GA", d) for d in DATES[:2]],
        "target": [rd("MOD09GA", DATES[2])],
    }


def _fit(inputs: dict[str, list[np.ndarray]], **params: object) -> VIPSTF:
    est = VIPSTF(**params)
    est.fit(list(zip(inputs["fines"], inputs["coarses"])), ratio=10)
    return est


# ----------------------------------------------------------------------- vs reference


@needs_cia
def test_integer_dn_keep_the_pairs_variable_for_the_base(cia: dict) -> None:
    """Reflectance x 10000 in int16 without a declared scale: the virtual fine image is no
    longer integers, so FSDAF as the base took it for "other" (another range, other ISODATA
    thresholds; BOREAS differed by up to 0.017 from the reflectance run). The base now gets
    the pairs' variable and the prediction is the reflectance run's, in DN."""

    def dn(a: np.ndarray) -> np.ndarray:
        return np.round(a * 1e4).astype(np.int16)

    ints = {k: [dn(a) for a in v] for k, v in cia.items()}
    got = _fit(ints).predict(ints["target"][0]).values / 1e4
    want = _fit(cia).predict(cia["target"][0]).values
    est = _fit(ints)
    est.predict(ints["target"][0])
    assert (est.base_.variable_.name, est.base_.variable_.scale) == ("reflectance", 1e4)
    np.testing.assert_allclose(got, want, rtol=0, atol=2e-3)


@needs_cia
def test_additive_base_matches_reference(cia: dict) -> None:
    """base=additive is F_v + C_0 - C_v: the virtual pair itself, against the reference."""
    target = cia["target"][0]
    vf, vc = virtual_pair(cia["fines"], cia["coarses"], target)
    got = _fit(cia, base="additive").predict(target).values
    np.testing.assert_allclose(got, vf + target - vc, rtol=0, atol=2e-6)


@needs_cia
def test_fitfc_base_matches_reference_on_virtual_pair(cia: dict) -> None:
    target = cia["target"][0]
    vf, vc = virtual_pair(cia["fines"], cia["coarses"], target)
    want = fitfc_ref(vf.astype(np.float32), vc.astype(np.float32), target, 10, **SMALL_FITFC)
    got = _fit(cia, base="fitfc", base_params=SMALL_FITFC).predict(target).values
    np.testing.assert_allclose(got, want, rtol=0, atol=2e-5)


@needs_cia
def test_missing_data_uses_the_usable_pairs(cia: dict) -> None:
    """A cloud in one pair's fine image, a hole in the other's coarse image and in the target:
    each pixel uses the pairs usable there (reference), and nothing else is lost."""
    fines = [f.copy() for f in cia["fines"]]
    coarses = [c.copy() for c in cia["coarses"]]
    target = cia["target"][0].copy()
    fines[0][:, 5:15, 5:15] = np.nan
    coarses[1][:, 10:20, 20:30] = np.nan
    fines[1][1, 30:33, 2:6] = np.nan  # one band only
    target[:, 35:, 35:] = np.nan
    vf, vc = virtual_pair(fines, coarses, target)
    assert np.isfinite(vf[:, 5:15, 5:15]).all()  # pair 2 alone there
    got = VIPSTF(base="additive").fit(list(zip(fines, coarses)), ratio=10).predict(target)
    np.testing.assert_allclose(got.values, vf + target - vc, rtol=0, atol=2e-6)
    both_bad = fines[0].copy()
    both_bad[:, 10:20, 20:30] = np.nan  # pair 1 fine invalid where pair 2 coarse is
    vf2, vc2 = virtual_pair([both_bad, fines[1]], coarses, target)
    got2 = VIPSTF(base="additive").fit(list(zip([both_bad, fines[1]], coarses)), ratio=10)
    out = got2.predict(target).values
    # no pair usable: the virtual fine image from pair 2's fine (its one-pair model), the
    # virtual coarse image NaN, so additive has nothing there
    assert np.isfinite(vf2[:, 10:20, 20:30]).all() and np.isnan(vc2[:, 10:20, 20:30]).all()
    assert np.isnan(out[:, 10:20, 20:30]).all()
    np.testing.assert_allclose(got2.base_.scene_.pairs[0][0].read(), vf2, rtol=0, atol=2e-6)


@needs_cia
def test_a_coarse_gap_in_every_pair_is_filled_as_in_one_pair(cia: dict) -> None:
    """A user trial: both pairs' coarse images nodata over a block (in one band only in
    part of it), the target valid: VIPSTF over FSDAF left those pixels NaN in every band,
    where FSDAF on one such pair fills them."""
    coarses = [c.copy() for c in cia["coarses"]]
    for c in coarses:
        c[:, 10:20, 20:30] = np.nan
        c[2, 20:30, 20:30] = np.nan  # one band only
    target = cia["target"][0]
    pairs = list(zip(cia["fines"], coarses))
    alone = get_method("fsdaf")().fit(pairs[:1], ratio=10).predict(target).values
    assert np.isfinite(alone).all()
    got = VIPSTF(base="fsdaf").fit(pairs, ratio=10).predict(target).values
    assert np.isfinite(got).all()


# ------------------------------------------------------------------ VIPSTF-SW (base=sw)

CIA_ROLES = "blue,green,red,nir,swir1,swir2"


def _coef(est: VIPSTF) -> np.ndarray:
    return np.concatenate([est.weights_, est.offset_[:, None]], axis=1)


@needs_cia
def test_sw_matches_the_port_of_the_authors_code() -> None:
    """base=sw against a loop port of the authors' MATLAB code on a 48 x 48 crop: the 65 x 65
    window reaches past the crop from every pixel, so the edge copies, the column-major tie
    order and the red/NIR similarity are all exercised. The regression is checked against
    the reference's own; the filter gets the same coefficients, so that exact ties of the
    spectral distance are settled by the same last bits. On this crop, ranking on F_v
    (b added, rounded) instead of the authors' sum a_i F_i changes one pixel's choice."""
    crop = (slice(None), slice(0, 48), slice(147, 195))

    def rd(kind: str, d: str) -> np.ndarray:
        return read_raster(CIA / f"CIA_{kind}_{d}.tif").values[crop].copy()

    fines = [rd("Landsat7", d) for d in DATES[:2]]
    coarses = [rd("MOD09GA", d) for d in DATES[:2]]
    target = rd("MOD09GA", DATES[2])
    est = VIPSTF(base="sw", base_params={"bands": CIA_ROLES}).fit(
        list(zip(fines, coarses)), ratio=10
    )
    got = est.predict(target).values
    for b in range(target.shape[0]):
        model = regress_subset(coarses, target, b, (0, 1))
        assert model is not None
        np.testing.assert_allclose(_coef(est)[b], [model[0][0], model[0][1], model[1]], rtol=1e-9)
    want = authors_vipstf_sw(fines, coarses, target, red=2, nir=3, coef=_coef(est))
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=0)
    np.testing.assert_array_equal(est.predict(target, window_size=16).values, got)


@needs_cia
@pytest.mark.parametrize(("window", "similar"), [(65, 30), (9, 6)])
def test_sw_missing_data_and_edges_match_the_reference(
    cia: dict, window: int, similar: int
) -> None:
    """Holes in each input, a corner with no usable pair, a target band missing: the
    reference with stfusion's missing-data rules, whole and tiled, and the fallback flag."""
    fines = [f.copy() for f in cia["fines"]]
    coarses = [c.copy() for c in cia["coarses"]]
    target = cia["target"][0].copy()
    fines[0][:, 5:15, 5:15] = np.nan  # pair 2 alone there
    coarses[1][:, 10:20, 20:30] = np.nan  # pair 1 alone there
    for f in fines:
        f[:, :3, 36:] = np.nan  # no usable pair at the top-right corner: the target value
        f[:, 37:, :2] = np.nan  # nor a target at the bottom-left corner: NaN
    target[:, 37:, :2] = np.nan
    target[3, 22:26, 30:34] = np.nan  # r from the neighbours there, in band 4 only
    for c in coarses:  # no pair's coarse value: F_v from the fine images, r from neighbours
        c[:, 30:33, 10:13] = np.nan
    params = {"window": window, "similar": similar, "bands": CIA_ROLES}
    est = VIPSTF(base="sw", base_params=params).fit(list(zip(fines, coarses)), ratio=10)
    got = est.predict(target).values
    want = vipstf_sw(fines, coarses, target, [2, 3], window // 2, similar, coef=est.coef_)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-9)
    assert np.isnan(got[:, 37:, :2]).all() and np.isfinite(got).sum() == got.size - 6 * 6
    np.testing.assert_array_equal(got[:, :3, 36:], target[:, :3, 36:])
    np.testing.assert_array_equal(est.predict(target, window_size=16, workers=2).values, got)
    _, quality = est.base_.predict_window_quality(rasterio.windows.Window(0, 0, 40, 40))
    assert quality["fallback"][:3, 36:].all() and not quality["fallback"][5:30].any()


def test_sw_follows_the_method_contract() -> None:
    """The published contract checks (tiling, threads, quality, the exact properties VIPSTF
    declares) with base=sw, at the authors' window and a small one."""
    from stfusion.testing import check_method

    check_method(VIPSTF, {"base": "sw"})
    check_method(VIPSTF, {"base": "sw", "base_params": {"window": 7, "similar": 5}})


def test_sw_similarity_bands_and_parameters() -> None:
    """Without band roles, auto ranks on all bands; red,nir needs roles; the CLI spelling."""
    rng = np.random.default_rng(3)
    fines = [rng.uniform(0.05, 0.5, (3, 20, 20)).astype(np.float32) for _ in range(2)]
    coarses = [f + rng.normal(0, 0.02, f.shape).astype(np.float32) for f in fines]
    target = (0.4 * coarses[0] + 0.5 * coarses[1] + 0.01).astype(np.float32)
    pairs = list(zip(fines, coarses))

    def run(**p: object) -> np.ndarray:
        return (
            VIPSTF(base="sw", base_params={"window": 7, **p})
            .fit(pairs, ratio=4)
            .predict(target)
            .values
        )

    np.testing.assert_array_equal(run(), run(similarity_bands="all"))
    assert not np.array_equal(run(), run(similarity_bands="2,3"))
    np.testing.assert_array_equal(
        run(similarity_bands="red,nir", bands="green,red,nir"), run(similarity_bands="2,3")
    )
    with pytest.raises(InvalidParameterError, match="which band is red"):
        run(similarity_bands="red,nir")
    got = VIPSTF.parse_params(["base=sw", "base.window=31", "base.similar=20"])
    assert got == {"base": "sw", "base_params": {"window": 31, "similar": 20}}
    assert SpatialWeighting().get_params()["window"] == 65
    with pytest.raises(InvalidParameterError, match="similar must be"):
        VIPSTF(base="sw", base_params={"window": 3, "similar": 10})


# ---------------------------------------------------------------------------- equations


@needs_cia
def test_virtual_pair_is_closer_than_every_pair(cia: dict) -> None:
    """(V2): sum (C_0 - C_v)^2 <= sum (C_0 - C_k)^2 for every pair k, per band."""
    target = cia["target"][0]
    est = _fit(cia, base="additive").prepare(target)
    vc = est.base_.scene_.pairs[0][1].read()
    for b in range(target.shape[0]):
        virtual = np.sum((target[b] - vc[b]).astype(np.float64) ** 2)
        for c in cia["coarses"]:
            assert virtual <= np.sum((target[b] - c[b]).astype(np.float64) ** 2) + 1e-9


def test_target_equal_to_a_combination_is_reproduced() -> None:
    """A target that is exactly 0.3 C_1 + 0.7 C_2 + 0.01: the coefficients are recovered and,
    with base=additive, the prediction is 0.3 F_1 + 0.7 F_2 + 0.01 exactly."""
    rng = np.random.default_rng(0)
    fines = [rng.uniform(0.05, 0.5, (2, 24, 24)).astype(np.float32) for _ in range(2)]
    coarses = [f + rng.normal(0, 0.02, f.shape).astype(np.float32) for f in fines]
    target = (0.3 * coarses[0] + 0.7 * coarses[1] + 0.01).astype(np.float32)
    est = VIPSTF(base="additive").fit(list(zip(fines, coarses)), ratio=4)
    pred = est.predict(target).values
    np.testing.assert_allclose(est.weights_, [[0.3, 0.7]] * 2, atol=1e-5)
    np.testing.assert_allclose(est.offset_, [0.01, 0.01], atol=1e-5)
    np.testing.assert_allclose(pred, 0.3 * fines[0] + 0.7 * fines[1] + 0.01, atol=1e-5)


def test_without_intercept_b_is_zero() -> None:
    rng = np.random.default_rng(1)
    fines = [rng.uniform(0.05, 0.5, (1, 16, 16)).astype(np.float32) for _ in range(2)]
    target = (0.5 * fines[0] + 0.4 * fines[1] + 0.05).astype(np.float32)
    est = VIPSTF(base="additive", intercept=False).fit(list(zip(fines, fines)), ratio=4)
    est.prepare(target)
    assert est.offset_[0] == 0.0 and est.weights_.sum() > 0.9


# ---------------------------------------------------------------------------- parameters


def test_one_pair_is_refused_with_the_way_out() -> None:
    f = np.ones((1, 8, 8), np.float32)
    with pytest.raises(InvalidParameterError, match=r"at least 2 pairs.*--method fsdaf"):
        VIPSTF().fit([(f, f)], ratio=4)


@pytest.mark.parametrize(
    ("params", "match"),
    [
        (
            {"base": "nosuch"},
            r"one-pair method; choose one of additive, dcstfn, edcstfn, ensemble, fitfc",
        ),
        ({"base": "vipstf"}, "not a registered one-pair method"),
        ({"base": "estarfm"}, "needs at least 2 pairs"),
        ({"base": "fitfc", "base_params": {"nosuch": 1}}, "unknown parameter"),
        ({"base": "fitfc", "base_params": {"window": 0}}, "window"),
        ({"base_params": "window=3"}, "must be a dict"),
    ],
)
def test_bad_parameters_are_refused_at_construction(params: dict, match: str) -> None:
    with pytest.raises(InvalidParameterError, match=match):
        VIPSTF(**params)


def test_cli_spelling_of_base_parameters() -> None:
    got = VIPSTF.parse_params(["base=fitfc", "base.window=11", "base.similar=5", "intercept=0"])
    assert got == {"base": "fitfc", "base_params": {"window": 11, "similar": 5}, "intercept": False}
    # before or after base=: the same
    assert VIPSTF.parse_params(["base.window=11", "base=fitfc"])["base_params"] == {"window": 11}
    with pytest.raises(InvalidParameterError, match="fitfc has no such parameter"):
        VIPSTF.parse_params(["base=fitfc", "base.classes=3"])
    assert get_method("vipstf") is VIPSTF


def test_cli_predict_equals_library(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    fines = [rng.uniform(0.05, 0.5, (2, 32, 32)).astype(np.float32) for _ in range(2)]
    coarses = [
        np.repeat(np.repeat(f.reshape(2, 4, 8, 4, 8).mean(axis=(2, 4)), 8, 1), 8, 2) for f in fines
    ]
    target = (0.6 * coarses[0] + 0.5 * coarses[1]).astype(np.float32)
    paths = []
    for k, (f, c) in enumerate(zip(fines, coarses)):
        paths += [write_tif(tmp_path / f"f{k}.tif", f), write_tif(tmp_path / f"c{k}.tif", c)]
    t = write_tif(tmp_path / "t.tif", target)
    out = tmp_path / "out.tif"
    args = [
        "predict",
        "--method",
        "vipstf",
        "--coarse",
        str(t),
        "--out",
        str(out),
        "-q",
        "--pair",
        str(paths[0]),
        str(paths[1]),
        "--pair",
        str(paths[2]),
        str(paths[3]),
        "--param",
        "ratio=8",
        "--param",
        "base=fitfc",
        "--param",
        "base.window=9",
        "--param",
        "base.similar=6",
        "--param",
        "base.regression_window=3",
    ]
    run_cli_ok(args)
    with rasterio.open(out) as ds:
        cli = ds.read()
    lib = (
        VIPSTF(base="fitfc", base_params=SMALL_FITFC)
        .fit(list(zip(fines, coarses)), ratio=8)
        .predict(target)
        .values
    )
    np.testing.assert_array_equal(cli, lib)


@pytest.mark.parametrize("in_memory", [True, False])
def test_fitfc_on_virtual_pair_equals_vipstf_and_tiles(
    in_memory: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The wrapper adds nothing but the virtual pair: Fit-FC fitted on the virtual images
    gives the same prediction, whole and tiled, with the virtual images in memory or read
    window by window (with a hole, so both ways of combining the pairs run)."""
    if not in_memory:
        monkeypatch.setattr(vipstf, "MATERIALIZE_MB", 0)
    rng = np.random.default_rng(4)
    fines = [rng.uniform(0.05, 0.5, (3, 40, 40)).astype(np.float32) for _ in range(3)]
    coarses = [f + rng.normal(0, 0.03, f.shape).astype(np.float32) for f in fines]
    target = (
        0.2 * coarses[0] + 0.5 * coarses[1] + 0.1 * coarses[2] + rng.normal(0, 0.02, fines[0].shape)
    ).astype(np.float32)
    fines[1][:, 3:9, 20:26] = np.nan
    est = VIPSTF(base="fitfc", base_params=SMALL_FITFC).fit(list(zip(fines, coarses)), ratio=8)
    whole = est.predict(target).values
    np.testing.assert_array_equal(est.predict(target, window_size=16, workers=2).values, whole)
    assert isinstance(est.base_.scene_.pairs[0][0], vipstf.VirtualImage) != in_memory
    vf, vc = virtual_pair(fines, coarses, target)
    plain = FitFC(**SMALL_FITFC).fit([(vf.astype(np.float32), vc.astype(np.float32))], ratio=8)
    np.testing.assert_allclose(whole, plain.predict(target).values, rtol=0, atol=2e-5)


# ------------------------------------------------------------------ every one-pair base

HAS_TORCH = importlib.util.find_spec("torch") is not None
DEEP_ONE_PAIR = ("dcstfn", "edcstfn", "ganstfm", "vitgan", "student")
CLASSICAL_FAST = {
    "fsdaf": {"window": 9},
    "fsdaf2": {"window": 9},
    "fitfc": SMALL_FITFC,
    "starfm": {"window": 7},
    "additive": {},
    "nochange": {},
    "ensemble": {"members": "additive,starfm", "member_params": {"starfm": {"window": 7}}},
}


def _deep_params(name: str, folder: Path) -> dict[str, object]:
    from stfusion.dl.distill import random_student_checkpoint
    from stfusion.dl.train import random_checkpoint

    if name == "student":
        path = random_student_checkpoint(folder / f"{name}.ckpt", 3)
    else:
        path = random_checkpoint(folder / f"{name}.ckpt", name, 3, size="tiny")
    return {"weights": str(path), "tile": 16}


def test_every_one_pair_method_is_a_base() -> None:
    """The parametrised test below covers every registered method that accepts one pair."""
    one_pair = {m for m in available() if m != "vipstf" and get_method(m).tags.accepts_pairs(1)}
    assert one_pair == set(CLASSICAL_FAST) | set(DEEP_ONE_PAIR)


@pytest.mark.parametrize("base", [*CLASSICAL_FAST, *DEEP_ONE_PAIR])
def test_two_pairs_through_each_base(base: str, tmp_path: Path) -> None:
    """A two-pair scene through VIPSTF over each one-pair method: finite, tiled = whole."""
    if base in DEEP_ONE_PAIR:
        if not HAS_TORCH:
            pytest.skip("torch not installed")
        params = _deep_params(base, tmp_path)
    else:
        params = CLASSICAL_FAST[base]
    scene = piecewise_scene(32, 32, bands=3, patch=4, ratio=8)
    fine, coarse = scene["fine"], scene["coarse"]
    rng = np.random.default_rng(5)
    fine2 = (fine * 1.2 + 0.01).astype(np.float32)
    coarse2 = (coarse * 1.2 + 0.01).astype(np.float32)
    target = 0.5 * coarse + 0.4 * coarse2 + 0.01 * rng.standard_normal(coarse.shape)
    est = VIPSTF(base=base, base_params=params)
    est.fit([(fine, coarse), (fine2, coarse2)], ratio=8)
    whole = est.predict(target.astype(np.float32)).values
    assert whole.shape == fine.shape and np.isfinite(whole).all()
    tiled = est.predict(window_size=16).values
    np.testing.assert_array_equal(tiled, whole)


def test_scene_passes_follow_the_scan_and_state_budgets() -> None:
    """Under a small --mem-limit the regression pass reads strips of a few rows and the
    virtual images are read window by window instead of kept: the same prediction."""
    from affine import Affine

    from stfusion.io import Grid, scan_limit
    from stfusion.io.spill import state_limit

    rng = np.random.default_rng(7)
    fines = [rng.uniform(0.05, 0.5, (3, 40, 40)).astype(np.float32) for _ in range(2)]
    coarses = [f + rng.normal(0, 0.03, f.shape).astype(np.float32) for f in fines]
    target = (0.4 * coarses[0] + 0.6 * coarses[1]).astype(np.float32)
    pairs = list(zip(fines, coarses))
    whole = VIPSTF(base="starfm").fit(pairs).predict(target).values
    grid = Grid(crs=None, transform=Affine.identity(), width=40, height=40)
    assert vipstf.strip_rows(grid, 9) >= 40  # the whole scene at once
    with scan_limit(3 * 40 * 9), state_limit(0):
        assert vipstf.strip_rows(grid, 9) == 3
        est = VIPSTF(base="starfm").fit(pairs)
        small = est.predict(target).values
        assert isinstance(est.base_.scene_.pairs[0][0], vipstf.VirtualImage)
    np.testing.assert_allclose(small, whole, rtol=0, atol=1e-6)


def test_native_coarse_grid_with_a_fractional_ratio(tmp_path: Path) -> None:
    """MODIS 463.3 m over Landsat 30 m (R = 15.44): the virtual coarse image is built on the
    coarse images' own grid, so FSDAF and Fit-FC work on its native pixels, as with one real
    pair (they refused: "the ratio must be a positive integer"). With a target that is an
    exact combination of the pairs' coarse images, VIPSTF over Fit-FC equals Fit-FC on the
    virtual pair written to files."""
    from affine import Affine
    from rasterio.warp import Resampling, reproject

    fine_t = Affine(30.0, 0, 500000.0, 0, -30.0, 6100000.0)
    coarse_t = Affine(463.3127, 0, 499700.0, 0, -463.3127, 6100250.0)
    rng = np.random.default_rng(7)
    fines, natives = [], []
    for i in range(2):
        f = rng.uniform(0.05, 0.4, (3, 150, 150)).astype(np.float32)
        f += np.linspace(0, 0.1 * (i + 1), 150, dtype=np.float32)[None, None, :]
        c = np.full((3, 11, 11), np.nan, np.float32)
        reproject(
            f,
            c,
            src_transform=fine_t,
            dst_transform=coarse_t,
            src_crs="EPSG:32755",
            dst_crs="EPSG:32755",
            resampling=Resampling.average,
            dst_nodata=np.nan,
        )
        fines.append(write_tif(tmp_path / f"f{i}.tif", f, transform=fine_t))
        natives.append(c)
    paths = [
        write_tif(tmp_path / f"c{i}.tif", c, transform=coarse_t) for i, c in enumerate(natives)
    ]
    target_native = 0.3 * natives[0] + 0.6 * natives[1] + 0.02
    target = write_tif(tmp_path / "t.tif", target_native, transform=coarse_t)
    pairs = list(zip(fines, paths))
    for base in ("fsdaf", "fitfc"):
        params = {"window": 9} if base == "fsdaf" else SMALL_FITFC
        est = VIPSTF(base=base, base_params=params).fit(pairs)
        assert est.scene_.ratio == pytest.approx(15.44, abs=0.01)
        got = est.predict(target).values
        assert np.isfinite(got).mean() > 0.9
        assert est.base_.native_ is not None  # the base worked on native pixels
    np.testing.assert_allclose(est.weights_, [[0.3, 0.6]] * 3, atol=1e-4)
    vf = 0.3 * read_raster(fines[0]).values + 0.6 * read_raster(fines[1]).values + 0.02
    vpair = (write_tif(tmp_path / "vf.tif", vf, transform=fine_t), target)
    plain = FitFC(**SMALL_FITFC).fit([vpair]).predict(target).values
    np.testing.assert_allclose(got, plain, rtol=0, atol=1e-4)


@pytest.mark.parametrize("layout", ["target_elsewhere", "pairs_apart"])
def test_native_coarse_images_on_different_grids(tmp_path: Path, layout: str) -> None:
    """A user trial: the pairs' MODIS on one native grid and the target on another (or the
    two pairs on two grids) stopped with "the ratio must be a positive integer; got 9.75",
    advice that did not apply. The virtual coarse image is now built on the target's native
    grid (the pairs' coarse images averaged over its footprints), so the base works on
    native pixels as with one real pair."""
    from affine import Affine
    from rasterio.warp import Resampling, reproject

    fine_t = Affine(30.0, 0, 500000.0, 0, -30.0, 6100000.0)
    grid_a = Affine(463.3127, 0, 499700.0, 0, -463.3127, 6100250.0)
    grid_b = Affine(500.0, 0, 499820.0, 0, -500.0, 6100130.0)

    def native(f: np.ndarray, t: Affine) -> np.ndarray:
        c = np.full((3, 11, 11), np.nan, np.float32)
        reproject(
            f, c, src_transform=fine_t, dst_transform=t, src_crs="EPSG:32755",
            dst_crs="EPSG:32755", resampling=Resampling.average, dst_nodata=np.nan,
        )  # fmt: skip
        return c

    rng = np.random.default_rng(3)
    y, x = np.mgrid[0:150, 0:150] / 150.0
    fields = [np.sin(3 * x + k) * np.cos(2 * y - k) for k in range(3)]  # coarse-scale pattern
    base = (0.2 + 0.1 * np.stack(fields) + rng.normal(0, 0.02, (3, 150, 150))).astype(np.float32)
    ramp = np.linspace(0, 0.1, 150, dtype=np.float32)[None, None, :]
    f = [base + ramp, 1.3 * base + rng.normal(0, 0.01, base.shape).astype(np.float32)]
    truth = 0.3 * f[0] + 0.6 * f[1] + 0.02
    grids = [grid_a, grid_b] if layout == "pairs_apart" else [grid_a, grid_a]
    pairs = [
        (
            write_tif(tmp_path / f"f{i}.tif", f[i], transform=fine_t),
            write_tif(tmp_path / f"c{i}.tif", native(f[i], t), transform=t),
        )
        for i, t in enumerate(grids)
    ]
    target = write_tif(tmp_path / "t.tif", native(truth, grid_b), transform=grid_b)
    est = VIPSTF(base="fsdaf", base_params={"window": 9}).fit(pairs)
    got = est.predict(target).values
    assert est.base_.native_ is not None  # the base worked on native pixels
    assert est.base_.native_.native.transform == grid_b  # the target's grid
    ok = np.isfinite(got)
    assert ok.mean() > 0.9
    additive = read_raster(pairs[1][0]).values  # the nearer pair's fine image, as a scale
    rmse = float(np.sqrt(np.mean((got[ok] - truth[ok]) ** 2)))
    assert rmse < 0.5 * float(np.sqrt(np.mean((additive - truth) ** 2)))
