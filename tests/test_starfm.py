"""STARFM: the fast estimator against a slow literal reference, exact properties, units,
multiple pairs, tiling, missing data and parameter checks.

The reference (``tests/reference/starfm_ref.py``) is written from Gao et al. 2006 and the
conventions in ``stfusion.methods.starfm``'s docstring, independently of the numba kernel.
Tolerance fast vs reference: the kernel sums in float32, the reference in float64, so
``rtol=1e-4, atol=1e-6`` (reflectance units) and NaN in the same places. Real data: small
crops of the named cases ``cia-1pair``, ``cia-2pair``, ``boreas-1pair``, ``boreas-2pair``
(see ../shared/data/README.md, found through conftest).
"""

from __future__ import annotations

import math
import warnings
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from rasterio.windows import Window

from conftest import BOREAS, CIA, KRANJ, LGC
from reference.starfm_ref import starfm_reference
from stfusion.errors import EmptyInputError, InvalidParameterError, STFusionWarning
from stfusion.io import FileSource, Scaling
from stfusion.methods.starfm import STARFM
from stfusion.scene import open_scene

RTOL, ATOL = 1e-4, 1e-6
UNC = 0.005  # explicit uncertainty; the estimator then uses quantum = UNC / 50
QUANTUM = UNC / 50

needs_data = pytest.mark.realdata(CIA, BOREAS)

Pairs = list[tuple[np.ndarray, np.ndarray]]
Case = tuple[Pairs, np.ndarray, np.ndarray]  # pairs, coarse target, fine truth


def _cia(name: str) -> Path:
    return CIA / f"{name}.tif"


# (pairs as (fine, coarse) paths, coarse target, fine truth, scaling)
CASES: dict[str, tuple[list[tuple[Path, Path]], Path, Path, Scaling]] = {
    "cia-1pair": (
        [(_cia("CIA_Landsat7_2001-10-17"), _cia("CIA_MOD09GA_2001-10-17"))],
        _cia("CIA_MOD09GA_2001-11-02"),
        _cia("CIA_Landsat7_2001-11-02"),
        Scaling(),
    ),
    "cia-2pair": (
        [
            (_cia("CIA_Landsat7_2001-10-08"), _cia("CIA_MOD09GA_2001-10-08")),
            (_cia("CIA_Landsat7_2001-11-02"), _cia("CIA_MOD09GA_2001-11-02")),
        ],
        _cia("CIA_MOD09GA_2001-10-17"),
        _cia("CIA_Landsat7_2001-10-17"),
        Scaling(),
    ),
    "boreas-1pair": (
        [(BOREAS / "tm0524", BOREAS / "modis0524")],
        BOREAS / "modis0711",
        BOREAS / "tm0711",
        Scaling(1e-4),
    ),
    "boreas-2pair": (
        [(BOREAS / "tm0524", BOREAS / "modis0524"), (BOREAS / "tm0812", BOREAS / "modis0812")],
        BOREAS / "modis0711",
        BOREAS / "tm0711",
        Scaling(1e-4),
    ),
}

# Crop origins (row, col) and bands per data set: a mixed area, three bands.
ORIGIN = {"cia": (100, 60), "boreas": (200, 150)}
BANDS = {"cia": [2, 3, 4], "boreas": [0, 1, 2]}


@cache
def _read(
    path: Path, scale: float | None, row: int, col: int, size: int, bands: tuple
) -> np.ndarray:
    arr = FileSource(path, Scaling(scale)).read(Window(col, row, size, size))
    return arr[list(bands)]


def load_case(name: str, size: int = 24) -> Case:
    """A ``size`` x ``size`` crop of a named case: (pairs, coarse target, fine truth)."""
    pair_paths, target, truth, scaling = CASES[name]
    kind = name.split("-")[0]
    row, col = ORIGIN[kind]
    bands = tuple(BANDS[kind])

    def rd(p: Path) -> np.ndarray:
        return _read(p, scaling.scale, row, col, size, bands).copy()

    return [(rd(f), rd(c)) for f, c in pair_paths], rd(target), rd(truth)


def fast(pairs: Pairs, target: np.ndarray, **params: object) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", STFusionWarning)  # mostly-empty inputs in NaN tests
        return STARFM(**params).fit(pairs).predict(target).values


def reference(pairs: Pairs, target: np.ndarray, **params: object) -> np.ndarray:
    params.setdefault("weight", "log")  # the estimator's default
    fines, coarses = [f for f, _ in pairs], [c for _, c in pairs]
    return starfm_reference(fines, coarses, target, **params)  # type: ignore[arg-type]


def fast_matching_reference(pairs: Pairs, target: np.ndarray, **params: object) -> np.ndarray:
    """The fast prediction with ``params`` (uncertainty UNC), checked against the slow
    reference with the same ``params``; returned for the test's own comparisons."""
    got = fast(pairs, target, uncertainty=UNC, **params)
    assert_matches(got, reference(pairs, target, uncertainty=UNC, quantum=QUANTUM, **params))
    return got


def assert_matches(got: np.ndarray, want: np.ndarray, mask: np.ndarray | None = None) -> None:
    assert got.dtype == np.float32 and got.shape == want.shape
    if mask is not None:
        got, want = got[mask], want[mask]
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


# --------------------------------------------------------------------------------------------
# 1. fast == reference on real data
# --------------------------------------------------------------------------------------------

# (window, classes): classes 8 at window 7 makes many more neighbours similar.
WINDOWS = [(5, 40.0), (7, 8.0), (11, 20.0)]


@needs_data
@pytest.mark.parametrize("filt", ["paper", "reference"])
@pytest.mark.parametrize("threshold", ["scene", "window"])
@pytest.mark.parametrize(("window", "classes"), WINDOWS)
@pytest.mark.parametrize("case", list(CASES))
def test_matches_reference(
    case: str, window: int, classes: float, threshold: str, filt: str
) -> None:
    pairs, target, _ = load_case(case)
    params = dict(window=window, classes=classes, threshold=threshold, filter=filt)
    got = fast(pairs, target, uncertainty=UNC, **params)
    want = reference(pairs, target, uncertainty=UNC, quantum=QUANTUM, **params)
    assert np.isfinite(want).all()
    assert_matches(got, want)


@needs_data
@pytest.mark.parametrize("weight", ["reference", "paper", "log"])
@pytest.mark.parametrize("filt", ["paper", "reference"])
@pytest.mark.parametrize("case", list(CASES))
def test_weight_matches_reference(case: str, filt: str, weight: str) -> None:
    """Every weight, fast == reference. They differ: the USDA program v1.2 drops T with one
    pair (StarFM_compute.c lines 327-332) and gives weight 1 below the combined uncertainty
    (lines 334-336) with any number of pairs; eq. 11 takes logarithms."""
    pairs, target, _ = load_case(case, size=20)
    params = dict(window=7, classes=20.0, filter=filt, weight=weight)
    got = fast_matching_reference(pairs, target, **params)
    other = fast(pairs, target, uncertainty=UNC, **{**params, "weight": "paper"})
    if weight == "paper":
        np.testing.assert_array_equal(got, other)
    else:
        assert np.nanmax(np.abs(got - other)) > 1e-4


@needs_data
@pytest.mark.parametrize("distance_scale", [1.0, 2.5, 40.0])
@pytest.mark.parametrize("weight", ["log", "reference"])
@pytest.mark.parametrize("case", list(CASES))
def test_distance_scale_matches_reference(case: str, weight: str, distance_scale: float) -> None:
    """A of eq. 9 other than window // 2 (the paper's complex site: A = 250 m, a 6000 m
    window), fast == reference; it changes the prediction."""
    pairs, target, _ = load_case(case, size=20)
    params = dict(window=7, classes=20.0, weight=weight, distance_scale=distance_scale)
    got = fast_matching_reference(pairs, target, **params)
    default = fast(pairs, target, uncertainty=UNC, **{**params, "distance_scale": "auto"})
    assert np.nanmax(np.abs(got - default)) > 1e-5


def sprinkle_nans(pairs: Pairs, target: np.ndarray, seed: int) -> tuple[Pairs, np.ndarray]:
    """Fine holes, coarse holes, coarse-target holes and one fully NaN fine centre."""
    rng = np.random.default_rng(seed)
    pairs = [(f.copy(), c.copy()) for f, c in pairs]
    target = target.copy()
    for k, (f, c) in enumerate(pairs):
        f[rng.random(f.shape) < 0.05] = np.nan  # scattered, per band
        f[:, 3 + 5 * k : 6 + 5 * k, 14:17] = np.nan  # a 3 x 3 cloud, all bands
        c[rng.random(c.shape) < 0.02] = np.nan
    target[rng.random(target.shape) < 0.03] = np.nan
    target[:, 18:20, 4:6] = np.nan
    for f, _ in pairs:
        f[:, 12, 12] = np.nan  # no pair has a fine value here
    return pairs, target


@needs_data
@pytest.mark.parametrize("filt", ["paper", "reference"])
@pytest.mark.parametrize("threshold", ["scene", "window"])
@pytest.mark.parametrize("case", list(CASES))
def test_matches_reference_with_nans(case: str, threshold: str, filt: str) -> None:
    pairs, target, _ = load_case(case)
    pairs, target = sprinkle_nans(pairs, target, seed=len(case))
    params = dict(window=7, classes=10.0, threshold=threshold, filter=filt)
    got = fast(pairs, target, uncertainty=UNC, **params)
    want = reference(pairs, target, uncertainty=UNC, quantum=QUANTUM, **params)
    assert_matches(got, want)
    # the fully NaN fine centre has no candidate: coarse target value, in every band
    np.testing.assert_array_equal(got[:, 12, 12], target[:, 12, 12])


# The centre bounds: S_bound over the pairs with a valid centre S = |F_k - C_k|, T_bound over
# those with a valid centre T = |C_k - C_0| (a bug once used one joint mask for both).


def test_centre_bounds_coarse_target_nan_at_centre() -> None:
    # Centre: S = 0 (bound sqrt(2) 0.005), C_0 missing. Both neighbours have S = 0.1, so the
    # S test rejects them and nothing is left: the output is C_0(c) = NaN (not 0.15, which an
    # S bound of +inf from dropping the centre's S would give).
    f = np.array([[[0.1, 0.1, 0.1]]], np.float32)
    c = np.array([[[0.2, 0.1, 0.2]]], np.float32)
    t = np.array([[[0.25, np.nan, 0.25]]], np.float32)
    want = reference([(f, c)], t, window=3, uncertainty=UNC, quantum=QUANTUM)
    assert np.isnan(want[0, 0, 1])
    assert_matches(fast([(f, c)], t, window=3, uncertainty=UNC), want)


def test_centre_bounds_fine_nan_at_centre_of_one_pair() -> None:
    # Pair 2 has no fine value at the centre but a valid T_2(c) = 0, so with filter="reference"
    # T_bound = min(0.1, 0) + sigma_mm; pair 1's neighbours (S = T = 0.05) fail both tests and
    # only pair 1's centre is a candidate: 0.1 + 0.2 - 0.1 = 0.2 (ignoring T_2(c) would give
    # T_bound = 0.1 + sigma_mm, accept the neighbours and predict 0.19980).
    nan = np.nan
    f1 = np.array([[[0.1, 0.1, 0.1]]], np.float32)
    c1 = np.array([[[0.15, 0.1, 0.15]]], np.float32)
    f2 = np.array([[[0.3, nan, 0.3]]], np.float32)
    c2 = np.array([[[0.3, 0.2, 0.3]]], np.float32)
    t = np.full((1, 1, 3), 0.2, np.float32)
    pairs = [(f1, c1), (f2, c2)]
    want = reference(pairs, t, window=3, uncertainty=UNC, quantum=QUANTUM, filter="reference")
    np.testing.assert_allclose(want[0, 0, 1], 0.2, rtol=1e-6)
    assert_matches(fast(pairs, t, window=3, uncertainty=UNC, filter="reference"), want)


# --------------------------------------------------------------------------------------------
# uncertainty and quantum: explicit and "auto"
# --------------------------------------------------------------------------------------------


@needs_data
def test_uncertainty_explicit_and_auto_for_reflectance() -> None:
    pairs, _, _ = load_case("cia-2pair")
    m = STARFM(uncertainty=UNC).fit(pairs)
    assert m.uncertainty_ == UNC and m.quantum_ == pytest.approx(1e-4, rel=1e-12)
    m = STARFM(uncertainty=0.02).fit(pairs)
    assert m.quantum_ == pytest.approx(0.02 / 50, rel=1e-12)
    m = STARFM().fit(pairs)  # auto, reflectance-like: the reference program's 50 and 1 / 1e4
    assert m.uncertainty_ == pytest.approx(0.005) and m.quantum_ == pytest.approx(1e-4)


def to_kelvin(a: np.ndarray) -> np.ndarray:
    return (270.0 + 100.0 * a.astype(np.float64)).astype(np.float32)


def kelvin_case(size: int = 40) -> Case:
    """LST-like scene made from the CIA NIR band (cia-1pair): 270 + 100 * reflectance."""
    pairs, target, truth = load_case("cia-1pair", size)
    nir = 1  # BANDS["cia"][1] = 3, NIR
    sel = slice(nir, nir + 1)
    pairs = [(to_kelvin(f[sel]), to_kelvin(c[sel])) for f, c in pairs]
    return pairs, to_kelvin(target[sel]), to_kelvin(truth[sel])


@needs_data
def test_uncertainty_auto_for_kelvin_and_reference() -> None:
    pairs, target, _ = kelvin_case()
    m = STARFM(window=7).fit(pairs)
    values = np.concatenate([f.ravel() for f, _ in pairs]).astype(np.float64)
    lo, hi = np.percentile(values[np.isfinite(values)], [0.5, 99.5])
    assert 250 < lo < hi < 400
    unc = 0.005 * (hi - lo)  # 0.5 % of the fine image's robust range
    assert m.uncertainty_ == pytest.approx(unc, rel=1e-5)
    assert m.quantum_ == pytest.approx(unc / 50, rel=1e-5)
    got = m.predict(target).values
    want = reference(pairs, target, window=7, uncertainty=unc, quantum=unc / 50)
    np.testing.assert_allclose(got, want, rtol=RTOL)


# --------------------------------------------------------------------------------------------
# 2. exact properties on a piecewise-constant scene
# --------------------------------------------------------------------------------------------


def patch_scene() -> tuple[np.ndarray, np.ndarray]:
    """Fine: 4 x 4 patches of distinct values 0.025 apart (2 bands, 24 x 24); coarse: exact
    means over 8 x 8 blocks, so each coarse pixel mixes four patches.

    The similarity threshold (2 std / 40 <= 0.02 over the scene or any window) is below the
    patch spacing, so a pixel's similar neighbours are exactly those of its own patch.
    """
    rng = np.random.default_rng(7)
    bands = []
    for _ in range(2):
        values = 0.02 + 0.025 * rng.permutation(36).reshape(6, 6)
        bands.append(np.kron(values, np.ones((4, 4))))
    fine = np.stack(bands)
    coarse = np.kron(fine.reshape(2, 3, 8, 3, 8).mean(axis=(2, 4)), np.ones((8, 8)))
    return fine.astype(np.float32), coarse.astype(np.float32)


@pytest.mark.parametrize("filt", ["paper", "reference"])
@pytest.mark.parametrize("threshold", ["scene", "window"])
def test_patch_scene_no_change_and_uniform_change(threshold: str, filt: str) -> None:
    fine, coarse = patch_scene()
    params = dict(window=7, threshold=threshold, filter=filt, uncertainty=UNC)
    # target == pair's coarse image: the prediction is the fine image
    np.testing.assert_allclose(fast([(fine, coarse)], coarse, **params), fine, atol=1e-6)
    # uniform coarse change d: the prediction is fine + d
    d = np.float32(0.0375)
    np.testing.assert_allclose(fast([(fine, coarse)], coarse + d, **params), fine + d, atol=1e-6)
    # two different pairs that agree on the change: still fine + d
    e = np.float32(0.01)
    got = fast([(fine, coarse), (fine + e, coarse + e)], coarse + d, **params)
    np.testing.assert_allclose(got, fine + d, atol=1e-6)


# --------------------------------------------------------------------------------------------
# 3. units: kelvin, affine maps, the additive baseline
# --------------------------------------------------------------------------------------------


@needs_data
def test_affine_equivariance_kelvin_to_fahrenheit() -> None:
    pairs, target, _ = kelvin_case()
    a, b = np.float32(1.8), np.float32(-459.67)  # both scenes are far from reflectance

    def affine(x: np.ndarray) -> np.ndarray:
        return (a * x.astype(np.float64) + b).astype(np.float32)

    kelvin = fast(pairs, target, window=7)
    fahrenheit = fast([(affine(f), affine(c)) for f, c in pairs], affine(target), window=7)
    # float32 near 300 K has a spacing of 3e-5 K: allow a few of them after the map
    np.testing.assert_allclose(fahrenheit, a * kelvin.astype(np.float64) + b, atol=2e-3)


def rmse(pred: np.ndarray, truth: np.ndarray) -> float:
    ok = np.isfinite(pred) & np.isfinite(truth)
    return float(np.sqrt(np.mean((pred[ok].astype(np.float64) - truth[ok]) ** 2)))


@needs_data
def test_kelvin_not_worse_than_additive_baseline() -> None:
    pairs, target, truth = kelvin_case()
    ((f1, c1),) = pairs
    baseline = f1.astype(np.float64) + target - c1
    pred = fast(pairs, target, window=11)
    assert np.isfinite(pred).all()
    assert rmse(pred, truth) <= 1.1 * rmse(baseline, truth)


# --------------------------------------------------------------------------------------------
# 4. several pairs: one weighted sum
# --------------------------------------------------------------------------------------------


@needs_data
def test_two_pairs_pool_candidates_in_one_sum() -> None:
    pairs, target, _ = load_case("cia-2pair")
    params = dict(window=7, classes=8.0, uncertainty=UNC)
    both = fast(pairs, target, **params)
    assert_matches(both, reference(pairs, target, quantum=QUANTUM, **params))
    # one pooled sum is not the mean of the two one-pair predictions
    mean = (fast(pairs[:1], target, **params) + fast(pairs[1:], target, **params)) / 2
    assert np.abs(both - mean).max() > 1e-3


@needs_data
@pytest.mark.parametrize("filt", ["paper", "reference"])
def test_two_identical_pairs_equal_one_pair(filt: str) -> None:
    """With the paper's weights only: ``weight="reference"`` drops T for one pair and not for
    two, as the USDA program does (StarFM_compute.c lines 327-332)."""
    pairs, target, _ = load_case("boreas-1pair")
    params = dict(window=7, classes=8.0, uncertainty=UNC, filter=filt, weight="paper")
    one = fast(pairs, target, **params)
    two = fast(pairs * 2, target, **params)
    np.testing.assert_allclose(two, one, rtol=1e-6, atol=1e-7)


# --------------------------------------------------------------------------------------------
# 5. tiling
# --------------------------------------------------------------------------------------------


@needs_data
@pytest.mark.parametrize("similarity", ["each", "1,2"])
@pytest.mark.parametrize("window_size", [8, 10])
@pytest.mark.parametrize("threshold", ["scene", "window"])
def test_tiled_equals_whole_scene(threshold: str, window_size: int, similarity: str) -> None:
    pairs, target, _ = load_case("cia-2pair", size=40)
    pairs, target = sprinkle_nans(pairs, target, seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", STFusionWarning)
        m = STARFM(window=7, classes=8.0, threshold=threshold, similarity_bands=similarity)
        m.fit(pairs)
        whole = m.predict(target).values
        tiled = m.predict(target, window_size=window_size).values
    assert len(m.plan(window_size=window_size)) == math.ceil(40 / window_size) ** 2
    np.testing.assert_array_equal(tiled, whole)


# --------------------------------------------------------------------------------------------
# 6. missing data
# --------------------------------------------------------------------------------------------


@needs_data
def test_no_candidate_takes_coarse_target() -> None:
    pairs, target, _ = load_case("cia-2pair")
    for f, _ in pairs:
        f[:, 5, 7] = np.nan  # no fine value in any pair: no similarity test, no candidate
        f[:, 9, 9] = np.nan
    target[:, 9, 9] = np.nan  # ... and no coarse target either
    got = fast(pairs, target, window=5, uncertainty=UNC)
    np.testing.assert_array_equal(got[:, 5, 7], target[:, 5, 7])
    assert np.isnan(got[:, 9, 9]).all()
    assert np.isfinite(np.delete(got.reshape(3, -1), [5 * 24 + 7, 9 * 24 + 9], axis=1)).all()


@needs_data
def test_coarse_target_hole_still_predicted() -> None:
    # single-pixel holes in a lenient similarity test (classes 10), so every hole has
    # similar, fully valid neighbours; the fallback would be NaN, so finite = predicted
    pairs, target, _ = load_case("boreas-1pair")
    holes = (slice(None), slice(4, None, 5), slice(4, None, 5))
    target[holes] = np.nan
    got = fast(pairs, target, window=7, classes=10.0, uncertainty=UNC)
    assert np.isfinite(got).all()


def test_all_nan_fine_raises() -> None:
    fine = np.full((2, 16, 16), np.nan, np.float32)
    coarse = np.full((2, 16, 16), 0.2, np.float32)
    with pytest.raises(EmptyInputError, match="fine image"):
        STARFM().fit([(fine, coarse)])
    with pytest.raises(EmptyInputError):
        open_scene([(fine, coarse)])


# --------------------------------------------------------------------------------------------
# 7. parameter validation
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"window": 4}, "window"),
        ({"window": 0}, "window"),
        ({"window": -3}, "window"),
        ({"window": 7.0}, "window"),
        ({"classes": 0}, "classes"),
        ({"classes": -2.0}, "classes"),
        ({"uncertainty": -0.1}, "uncertainty"),
        ({"uncertainty": "fast"}, "uncertainty"),
        ({"windows": 7}, "windows"),
        ({"filter": "bogus"}, "filter"),
        ({"threshold": "bogus"}, "threshold"),
    ],
)
def test_invalid_parameters(kwargs: dict[str, object], name: str) -> None:
    with pytest.raises(InvalidParameterError, match=name):
        STARFM(**kwargs)


def test_invalid_choice_from_cli_strings() -> None:
    with pytest.raises(InvalidParameterError, match="filter"):
        STARFM.parse_params(["filter=bogus"])
    assert STARFM.parse_params(["window=7", "filter=reference"]) == {
        "window": 7,
        "filter": "reference",
    }


@pytest.mark.parametrize("seed", range(6))
def test_prepare_kernel_equals_numpy(seed: int) -> None:
    """The fused set-up kernel gives the numpy expressions bit for bit, NaN and inf included
    (eq. 11 to 4 ulp: numba's and numpy's float32 log may each round 1 ulp apart)."""
    from stfusion.kernels.starfm import BIG, starfm_prepare

    rng = np.random.default_rng(seed)
    half, hp, wp = 3, 40, 50
    f, c, c0 = (rng.random((hp, wp), dtype=np.float32) for _ in range(3))
    for a in (f, c, c0):
        a[rng.random((hp, wp)) < 0.1] = np.nan
    f[0, 0], c[5, 7] = np.inf, -np.inf
    q = np.float32(0.005 + rng.random() * 0.005)  # large: the weight-1 rule applies
    one = np.float32(1.0)
    inv_q = one / q
    use_t = seed % 2 == 0
    log_weight = seed == 5
    unity_below = np.float32(97.5 if seed < 3 else 0.0)
    centre = (slice(half, hp - half), slice(half, wp - half))
    fok, cok, c0ok = np.isfinite(f), np.isfinite(c), np.isfinite(c0)
    ok = fok & cok & c0ok
    s, t = np.abs(f - c), np.abs(c - c0)
    with np.errstate(invalid="ignore", over="ignore"):
        tdis = (s * inv_q + one) * (t * inv_q + one) if use_t else s * inv_q + one
        if log_weight:
            two = np.float32(2.0)
            tdis = np.log(s * inv_q + two) * np.log(t * inv_q + two)
        iv = np.where(tdis < unity_below, -one, one / tdis)
        expected = [
            np.where(fok, f, BIG),
            np.where(ok, s, 0.0),  # an unusable candidate: weight 0 through invst
            np.where(ok, t, 0.0),
            np.where(ok, iv, 0.0),
            np.where(ok, f + c0 - c, 0.0),
            np.where(fok & cok, s, np.nan)[centre],
            np.where(cok & c0ok, t, np.nan)[centre],
        ]
    if unity_below > 0:
        assert (expected[3] == -1).any() and (expected[3] > 0).any()
    got = [np.empty((hp, wp), np.float32) for _ in range(5)]
    got += [np.empty((hp - 2 * half, wp - 2 * half), np.float32) for _ in range(2)]
    starfm_prepare(f, c, c0, q, half, use_t, log_weight, unity_below, *got)
    for e, g in zip(expected, got, strict=True):
        if log_weight:
            np.testing.assert_array_max_ulp(e.astype(np.float32), g, maxulp=4)
        else:
            assert e.astype(np.float32).tobytes() == g.tobytes()


@pytest.mark.parametrize("paper", [True, False])
@pytest.mark.parametrize("npairs", [1, 2, 3])
def test_bounds_kernel_equals_numpy(paper: bool, npairs: int) -> None:
    """The candidate-filter bounds equal nanmax/nanmin + sigma with NaN -> BIG, bit for bit."""
    from stfusion.kernels.starfm import BIG, starfm_bounds

    rng = np.random.default_rng(npairs)
    sc, tc = (rng.random((npairs, 30, 40), dtype=np.float32) for _ in range(2))
    sc[rng.random(sc.shape) < 0.3] = np.nan
    tc[rng.random(tc.shape) < 0.3] = np.nan
    sc[:, 0, :] = np.nan  # no valid pair at all
    sig_lm, sig_mm = np.float32(0.007), np.float32(0.003)
    reduce = np.nanmax if paper else np.nanmin
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        es, et = reduce(sc, axis=0) + sig_lm, reduce(tc, axis=0) + sig_mm
    es, et = (np.where(np.isfinite(e), e, BIG).astype(np.float32) for e in (es, et))
    smax, tmax = np.empty((30, 40), np.float32), np.empty((30, 40), np.float32)
    starfm_bounds(sc, tc, sig_lm, sig_mm, paper, smax, tmax)
    assert es.tobytes() == smax.tobytes() and et.tobytes() == tmax.tobytes()


# --------------------------------------------------------------------------------------------
# 8. the USDA program's weights: weight 1 below the combined uncertainty
# --------------------------------------------------------------------------------------------


def test_unity_weight_below_combined_uncertainty_hand_case() -> None:
    """StarFM_compute.c lines 334-336: a candidate whose t_dis (here S/q + 1 in DN, one pair)
    is below the combined uncertainty (98 DN) gets weight 1 and no distance factor.

    Three similar pixels (classes=1: threshold 2 std), the same coarse change 0.01, so every
    candidate passes the reference filter; S = 50, 0 and 200 DN. Reference weights: 1, 1 and
    1 / (201 (1 + 1)); the paper-like 1 / ((S + q) D) would give the first pixel 1 / (51 * 2)."""
    f = np.array([[[0.10, 0.12, 0.14]]], np.float32)
    c = f + np.array([[[0.005, 0.0, 0.02]]], np.float32)
    t = c + np.float32(0.01)
    params = dict(window=3, classes=1.0, uncertainty=UNC, filter="reference", weight="reference")
    got = fast([(f, c)], t, **params)
    w = np.array([1.0, 1.0, 1.0 / (201 * 2)])
    p = np.array([0.11, 0.13, 0.15])
    np.testing.assert_allclose(got[0, 0, 1], (w * p).sum() / w.sum(), rtol=1e-5)
    old = np.array([1.0 / (51 * 2), 1.0, 1.0 / (201 * 2)])  # before: no weight-1 rule
    assert abs(got[0, 0, 1] - (old * p).sum() / old.sum()) > 1e-3
    want = reference([(f, c)], t, quantum=QUANTUM, **params)
    assert_matches(got, want)
    # weight="paper" keeps eq. 10: 1 / ((S + q)(T + q) D) for every candidate
    paper = fast([(f, c)], t, **{**params, "weight": "paper"})
    wp = 1.0 / ((np.array([50, 0, 200]) * 1e-4 + 1e-4) * np.array([2.0, 1.0, 2.0]))
    np.testing.assert_allclose(paper[0, 0, 1], (wp * p).sum() / wp.sum(), rtol=1e-5)
    # weight="log" (the default), eq. 11: 1 / (ln(S/q + 2) ln(T/q + 2) D), T = 100 DN
    log = fast([(f, c)], t, **{**params, "weight": "log"})
    wl = 1.0 / (np.log(np.array([52.0, 2.0, 202.0])) * np.log(102.0) * np.array([2.0, 1.0, 2.0]))
    np.testing.assert_allclose(log[0, 0, 1], (wl * p).sum() / wl.sum(), rtol=1e-5)


def quantized_scene(seed: int, npairs: int) -> tuple[Pairs, np.ndarray]:
    """Random reflectance on the USDA program's integer DN grid (1e-4), NaN holes; coarse =
    fine + small noise so that many candidates fall below the combined uncertainty."""
    rng = np.random.default_rng(seed)
    shape = (2, 18, 18)

    def dn(a: np.ndarray) -> np.ndarray:
        return (np.round(a * 1e4) * 1e-4).astype(np.float32)

    base = rng.uniform(0.05, 0.4, shape)
    pairs = []
    for _ in range(npairs):
        f = dn(base + rng.normal(0, 0.01, shape))
        c = dn(f + rng.normal(0, 0.006, shape))
        f[rng.random(shape) < 0.05] = np.nan
        c[rng.random(shape) < 0.03] = np.nan
        pairs.append((f, c))
    target = dn(base + 0.02 + rng.normal(0, 0.006, shape))
    target[rng.random(shape) < 0.03] = np.nan
    return pairs, target


@pytest.mark.parametrize("filt", ["paper", "reference"])
@pytest.mark.parametrize("npairs", [1, 2])
@pytest.mark.parametrize("seed", [0, 1])
def test_reference_weights_match_reference_on_quantized_data(
    seed: int, npairs: int, filt: str
) -> None:
    """fast == slow reference with the program's weights (both rules) on DN-valued data with
    NaN, where the weight-1 rule applies to many candidates."""
    pairs, target = quantized_scene(seed, npairs)
    params = dict(window=5, classes=4.0, filter=filt, weight="reference")
    got = fast(pairs, target, uncertainty=UNC, **params)
    want = reference(pairs, target, uncertainty=UNC, quantum=QUANTUM, **params)
    assert_matches(got, want)
    # the rule changes the prediction, so this test exercises it
    other = fast(pairs, target, uncertainty=UNC, **{**params, "weight": "paper"})
    assert np.nanmax(np.abs(got - other)) > 1e-3


# --------------------------------------------------------------------------------------------
# 9. similarity bands: the paper's red and NIR test (section II-B.1) or each band on its own
# --------------------------------------------------------------------------------------------

#: Roles of the crops' bands (``BANDS``): CIA 3, 4, 5 = red, nir, swir1; BOREAS green, red, nir.
CROP_ROLES = {"cia": "red,nir,swir1", "boreas": "green,red,nir"}
#: 0-based red and NIR in the crops, for the reference.
CROP_RED_NIR = {"cia": [0, 1], "boreas": [1, 2]}


@needs_data
@pytest.mark.parametrize("nans", [False, True])
@pytest.mark.parametrize("filt", ["paper", "reference"])
@pytest.mark.parametrize("threshold", ["scene", "window"])
@pytest.mark.parametrize("case", list(CASES))
def test_red_nir_similarity_matches_reference(
    case: str, threshold: str, filt: str, nans: bool
) -> None:
    """similarity_bands=red,nir: a neighbour is similar only where it passes its pair's
    threshold in red and in NIR, for every predicted band; fast == reference, and the rule
    changes the prediction (it is not the per-band test)."""
    pairs, target, _ = load_case(case)
    if nans:
        pairs, target = sprinkle_nans(pairs, target, seed=len(case) + 1)
    kind = case.split("-")[0]
    params = dict(window=7, classes=8.0, threshold=threshold, filter=filt)
    got = fast(
        pairs, target, uncertainty=UNC, similarity_bands="red,nir", bands=CROP_ROLES[kind], **params
    )
    want = reference(
        pairs,
        target,
        uncertainty=UNC,
        quantum=QUANTUM,
        similarity_bands=CROP_RED_NIR[kind],
        **params,
    )
    assert_matches(got, want)
    each = fast(pairs, target, uncertainty=UNC, similarity_bands="each", **params)
    assert_matches(each, reference(pairs, target, uncertainty=UNC, quantum=QUANTUM, **params))
    assert np.nanmax(np.abs(got - each)) > 1e-3


@pytest.mark.parametrize("npairs", [1, 2])
@pytest.mark.parametrize("seed", [0, 1])
def test_joint_similarity_matches_reference_on_quantized_data(seed: int, npairs: int) -> None:
    """Two similarity bands given by number, with NaN holes in either (a neighbour or a
    centre missing one similarity band is not similar): fast == reference."""
    pairs, target = quantized_scene(seed, npairs)
    params = dict(window=5, classes=4.0, filter="reference", uncertainty=UNC)
    got = fast(pairs, target, similarity_bands="2,1", **params)
    want = reference(pairs, target, quantum=QUANTUM, similarity_bands=[1, 0], **params)
    assert_matches(got, want)
    assert np.nanmax(np.abs(got - fast(pairs, target, similarity_bands="each", **params))) > 1e-3


def test_joint_similarity_hand_case() -> None:
    """Band 1 is flat (every neighbour similar in it), band 2 is not (no neighbour similar):
    with the per-band test band 1 averages all three candidates, with both bands it keeps only
    the centre. Filter "reference" (S or T) and S = 0 let every candidate through with the
    program's weight 1."""
    f = np.array([[[0.10, 0.10, 0.10]], [[0.10, 0.30, 0.50]]], np.float32)
    c = f.copy()
    t = c + np.array([[[0.02, 0.01, 0.05]], [[0.01, 0.01, 0.01]]], np.float32)
    params = dict(window=3, uncertainty=UNC, filter="reference", weight="reference")
    each = fast([(f, c)], t, similarity_bands="each", **params)
    both = fast([(f, c)], t, similarity_bands="1,2", **params)
    np.testing.assert_allclose(each[0, 0, 1], (0.12 + 0.11 + 0.15) / 3, rtol=1e-5)
    np.testing.assert_allclose(both[0, 0, 1], 0.11, rtol=1e-5)
    np.testing.assert_allclose(both[1, 0, 1], each[1, 0, 1], rtol=1e-6)  # band 2: centre only
    want = reference([(f, c)], t, quantum=QUANTUM, similarity_bands=[0, 1], **params)
    assert_matches(both, want)


def test_similarity_auto_red_nir_from_band_names(caplog: pytest.LogCaptureFixture) -> None:
    """auto: red and NIR where the band names say which they are (the bundled CIA sample:
    blue, green, red, nir, swir1, swir2), logged; the same as naming them."""
    from stfusion.demo import sample_dir

    d = sample_dir()
    pair = (str(d / "CIA_Landsat7_2001-10-17.tif"), str(d / "CIA_MOD09GA_2001-10-17.tif"))
    target = str(d / "CIA_MOD09GA_2001-11-02.tif")

    def run(**params: object) -> tuple[STARFM, np.ndarray]:
        m = STARFM(window=7, **params).fit([pair])
        return m, m.predict(target).values

    with caplog.at_level("INFO", logger="stfusion.methods"):
        auto, got = run()
    assert auto.similarity_idx_ is not None and auto.similarity_idx_.tolist() == [2, 3]
    assert "red and NIR (bands 3 and 4)" in caplog.text
    np.testing.assert_array_equal(got, run(similarity_bands="red,nir")[1])
    np.testing.assert_array_equal(got, run(similarity_bands="3,4")[1])
    each, per_band = run(similarity_bands="each")
    assert each.similarity_idx_ is None
    assert np.abs(got - per_band).max() > 1e-3


def test_similarity_auto_each_without_roles(caplog: pytest.LogCaptureFixture) -> None:
    """auto: each band on its own where the roles are unknown (arrays, band1..band3) or there
    is no red and NIR (one NDVI band); with bands=... the roles give red and NIR."""
    fine, coarse = patch_scene()
    three = (np.concatenate([fine, fine[:1]]), np.concatenate([coarse, coarse[:1]]))
    with caplog.at_level("INFO", logger="stfusion.methods"):
        assert STARFM(window=3).fit([three]).similarity_idx_ is None
    assert "each band on its own" in caplog.text
    assert STARFM(window=3).fit([(fine[:1], coarse[:1])]).similarity_idx_ is None
    m = STARFM(window=3, bands="green,red,nir").fit([three])
    assert m.similarity_idx_ is not None and m.similarity_idx_.tolist() == [1, 2]
    m = STARFM(window=3, bands="green,red,other").fit([three])
    assert m.similarity_idx_ is None


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("red,nir", "which band is red"),
        ("4", "band 4 does not exist"),
        ("2,2", "named twice"),
        ("0", "band 0 does not exist"),
    ],
)
def test_similarity_bands_errors_at_fit(spec: str, match: str) -> None:
    fine, coarse = patch_scene()
    with pytest.raises(InvalidParameterError, match=match):
        STARFM(window=3, similarity_bands=spec).fit([(fine, coarse)])


@pytest.mark.parametrize("spec", ["bogus", "red,", "", "red;nir"])
def test_similarity_bands_refused(spec: str) -> None:
    with pytest.raises(InvalidParameterError, match="similarity_bands"):
        STARFM(similarity_bands=spec)


@pytest.mark.realdata(CIA, BOREAS, LGC, KRANJ)
@pytest.mark.parametrize(
    "case", ["cia-1pair", "cia-2pair", "boreas-1pair", "boreas-2pair", "lgc-flood", "kranj-2pair"]
)
def test_defaults_against_additive_on_every_named_case(case: str) -> None:
    """Issue 14's target, as the bench runs the cases (their band names, so red and NIR
    similarity): STARFM's defaults beat additive on cia-1pair, boreas-1pair and boreas-2pair
    and lose to it by at most 3 % anywhere. Measured with eq. 11 (the default): -3.1, +0.1,
    -5.7, -11.2, +1.0, +2.8 %; the program's weights lost by 10.1 % (cia-2pair), 3.7 %
    (lgc-flood) and 10.9 % (kranj-2pair)."""
    from stfusion.bench import _truth, _with_case_bands
    from stfusion.cases import named_cases
    from stfusion.methods import make_estimator
    from stfusion.methods.baselines import Additive
    from stfusion.metrics import rmse

    c = named_cases()[case]
    truth, _ = _truth(c)
    scores = {}
    for cls in (STARFM, Additive):
        est = make_estimator(cls.name, _with_case_bands(cls, c, []), pairs=len(c.pairs))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            scores[cls.name] = float(np.mean(rmse(c.predict_with(est), truth)))
    ratio = scores["starfm"] / scores["additive"]
    if case in ("cia-1pair", "boreas-1pair", "boreas-2pair"):
        assert ratio < 1.0, scores
    assert ratio <= 1.03, scores
