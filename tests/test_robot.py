"""ROBOT: the fast blocks against the slow reference, the sum constraint, missing data, the
reference image, the series planner and the command line."""

from __future__ import annotations

import datetime as dt
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
from hypothesis import example, given, settings
from hypothesis import strategies as st

from conftest import CIA, KRANJ, need, run_cli_ok, write_tif
from reference.robot_ref import robot as robot_ref
from stfusion.errors import InvalidParameterError
from stfusion.io import FileSource, Scaling, read_raster
from stfusion.methods import available, get_method
from stfusion.methods.robot import ROBOT, block_starts, predict_block, solve_coefficients
from stfusion.metrics import evaluate
from stfusion.series import read_summary, run_series
from stfusion.series.planning import choose_pairs

DATES = ("2001-10-08", "2001-11-02", "2001-10-17")  # pair 1, pair 2, target
needs_cia = pytest.mark.realdata(CIA)
SMALL = {"block": 16, "step": 10}


@pytest.fixture(scope="module")
def cia() -> dict[str, list[np.ndarray]]:
    """A 40 x 40 crop of the cia-2pair case plus a third pair, a mix of the two (so the
    combination has three images to choose from)."""

    def rd(kind: str, d: str) -> np.ndarray:
        return read_raster(CIA / f"CIA_{kind}_{d}.tif").values[:, 100:140, 60:100].copy()

    fines = [rd("Landsat7", d) for d in DATES[:2]]
    coarses = [rd("MOD09GA", d) for d in DATES[:2]]
    rng = np.random.default_rng(0)
    fines.append(
        (0.3 * fines[0] + 0.7 * fines[1] + rng.normal(0, 0.002, fines[0].shape)).astype(np.float32)
    )
    # noise on the coarse mix too: not collinear, so the minimiser is unique
    mix = 0.3 * coarses[0] + 0.7 * coarses[1] + rng.normal(0, 0.002, fines[0].shape)
    coarses.append(mix.astype(np.float32))
    return {"fines": fines, "coarses": coarses, "target": [rd("MOD09GA", DATES[2])]}


def _fit(inputs: dict[str, list[np.ndarray]], **params: object) -> ROBOT:
    est = ROBOT(**{**SMALL, "reference": "mean", **params})  # type: ignore[arg-type]
    est.fit(list(zip(inputs["fines"], inputs["coarses"])))
    return est


# ----------------------------------------------------------------------- vs reference


@needs_cia
@pytest.mark.parametrize(
    "params",
    [{}, {"budget": 0.5}, {"beta": 0.0}, {"tolerance": 0.0}, {"solver": "spams"}],
)
def test_matches_reference(cia: dict, params: dict) -> None:
    """``budget=0.5`` makes the sum constraint active (SLSQP); ``tolerance=0`` compensates
    the residual in every block."""
    pred = np.asarray(_fit(cia, **params).predict(cia["target"][0]))
    reference = np.mean(cia["fines"], axis=0)
    ref, alphas = robot_ref(
        cia["fines"], cia["coarses"], cia["target"][0], reference, **{**SMALL, **params}
    )  # type: ignore[arg-type]
    if "budget" in params:
        assert max(a.sum() for a in alphas) == pytest.approx(0.5, abs=1e-6)
    np.testing.assert_allclose(pred, ref, atol=2e-5)


@needs_cia
def test_matches_reference_with_flat_coarse_blocks(cia: dict) -> None:
    """One band, coarse images of 20 x 20 px block means: every 10 px block lies inside one
    coarse pixel, so the coarse term is flat and takes the fine term's span."""

    def flat(a: np.ndarray) -> np.ndarray:
        blocks = a[3:4].reshape(1, 2, 20, 2, 20).mean(axis=(2, 4))
        return np.repeat(np.repeat(blocks, 20, axis=1), 20, axis=2).astype(np.float32)

    one = {
        "fines": [f[3:4] for f in cia["fines"]],
        "coarses": [flat(f) for f in cia["fines"]],
        "target": [flat(cia["target"][0])],
    }
    pred = np.asarray(_fit(one).predict(one["target"][0]))
    ref, _ = robot_ref(
        one["fines"], one["coarses"], one["target"][0], np.mean(one["fines"], axis=0), **SMALL
    )  # type: ignore[arg-type]
    np.testing.assert_allclose(pred, ref, atol=2e-5)


def test_solver_matches_a_brute_force_on_the_simplex() -> None:
    """The constrained least squares: NNLS when the bound is slack, the bound met exactly
    when it binds (checked against a fine grid on the face sum = budget)."""
    rng = np.random.default_rng(3)
    design = rng.normal(size=(50, 2))
    truth = np.array([2.0, 1.5])
    y = design @ truth
    np.testing.assert_allclose(solve_coefficients(design, y, 10.0), truth, atol=1e-9)
    coef = solve_coefficients(design, y, 1.0)
    assert coef.sum() == pytest.approx(1.0, abs=1e-7) and (coef >= 0).all()
    t = np.linspace(0, 1, 100001)
    cand = np.stack([t, 1 - t], axis=1)
    best = cand[np.argmin(((y[None] - cand @ design.T) ** 2).sum(axis=1))]
    np.testing.assert_allclose(coef, best, atol=1e-4)


def test_block_starts_cover_the_scene() -> None:
    assert block_starts(44, 30, 20) == [0, 20]
    assert block_starts(10, 30, 20) == [0]
    assert block_starts(60, 30, 30) == [0, 30]


# ----------------------------------------------------------------------- properties


def test_target_that_is_a_pair_with_its_own_reference_is_that_pair() -> None:
    """C_0 = C_k and f_r = F_k: alpha = e_k zeroes both terms, so the prediction is F_k."""
    rng = np.random.default_rng(1)
    fines = rng.uniform(0.05, 0.4, (3, 2, 12, 12))
    coarses = fines + rng.normal(0, 0.01, fines.shape)
    pred, alpha = predict_block(fines, coarses, coarses[1], fines[1], 1.0, 2.0, 0.02)  # type: ignore[misc]
    np.testing.assert_allclose(alpha, [0, 1, 0], atol=1e-7)
    np.testing.assert_allclose(pred, fines[1], atol=1e-6)


def test_missing_fine_value_uses_the_other_pairs(cia: dict) -> None:
    inputs = {k: [a.copy() for a in v] for k, v in cia.items()}
    inputs["fines"][0][:, 5:9, 5:9] = np.nan
    pred = np.asarray(_fit(inputs).predict(inputs["target"][0]))
    assert np.isfinite(pred).all()
    full = np.asarray(_fit(cia).predict(cia["target"][0]))
    # far from the hole (outside every block that touches it) nothing changes
    np.testing.assert_array_equal(pred[:, 30:, 30:], full[:, 30:, 30:])


@needs_cia
@pytest.mark.parametrize("params", [{}, {"tolerance": 0.0}])
def test_matches_reference_with_missing_data(cia: dict, params: dict) -> None:
    """The missing-data rule against the reference: a cloud in one pair (fine and coarse), a
    gap in one fine image only, one band of the target missing, a hole in every image, and
    the target missing over a whole block (which then predicts nothing). ``tolerance=0``
    compensates the residual in every block, so the coarse combination is rescaled too."""
    inputs = {k: [a.copy() for a in v] for k, v in cia.items()}
    fines, coarses, target = inputs["fines"], inputs["coarses"], inputs["target"][0]
    fines[1][:, 4:12, 3:9] = np.nan  # a cloud in pair 2 ...
    coarses[1][:, 6:14, 2:8] = np.nan  # ... offset at the coarse resolution
    fines[2][:, 22:26, 14:19] = np.nan  # one fine image only
    target[1, 18:24, 30:36] = np.nan  # one band of the target
    for a in (*fines, *coarses, target):
        a[:, 33:35, 5:8] = np.nan  # a hole in every image: NaN out
    target[:, :16, 30:] = np.nan  # the block at (0, 30) has no valid target pixel
    pred = np.asarray(_fit(inputs, **params).predict(target))
    with warnings.catch_warnings():  # the hole: a mean of nothing is NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        reference = np.nanmean(fines, axis=0)  # reference="mean": the valid pairs' mean
    ref, _ = robot_ref(fines, coarses, target, reference, **{**SMALL, **params})  # type: ignore[arg-type]
    assert np.array_equal(np.isnan(pred), np.isnan(ref))
    assert np.isnan(pred[:, 33:35, 5:8]).all() and np.isfinite(pred[:, 4:12, 3:9]).all()
    assert np.isnan(pred[:, :10, 36:]).all()  # only the block at (0, 30) covers these
    np.testing.assert_allclose(pred, ref, atol=2e-5)


def test_reference_choice() -> None:
    rng = np.random.default_rng(2)
    f = [rng.uniform(0, 1, (1, 8, 8)).astype(np.float32) for _ in range(3)]
    c = [a + 0.1 * i for i, a in enumerate(f)]
    target = c[2] + 0.01
    est = ROBOT(block=8, step=8).fit(list(zip(f, c)))
    est.predict(target)
    assert est.reference_pairs_ == [2]  # the pair with the closest coarse image
    est = ROBOT(block=8, step=8, reference="nearest").fit(list(zip(f, c)))
    est.predict(target)
    assert est.reference_pairs_ == [2]  # nearest without dates: the same
    dated = ROBOT(block=8, step=8).fit(
        list(zip(f, c)),
        pair_dates=["2020-01-01", "2020-01-10", "2020-02-01"],
        target_date="2020-01-05",
    )
    dated.predict(target)
    assert dated.reference_pairs_ == [2]  # the default needs no dates
    est = ROBOT(block=8, step=8, reference="nearest").fit(
        list(zip(f, c)),
        pair_dates=["2020-01-01", "2020-01-10", "2020-02-01"],
        target_date="2020-01-05",
    )
    est.predict(target)
    assert est.reference_pairs_ == [0, 1]  # dates: the nearest before and after
    est = ROBOT(block=8, step=8, reference="mean").fit(list(zip(f, c)))
    est.predict(target)
    assert est.reference_pairs_ == [0, 1, 2]


@needs_cia
def test_weighted_reference_matches_reference(cia: dict) -> None:
    """``reference="weighted"``: every pair's fine image, weighted by the inverse squared
    mean squared coarse difference to the target (normalised); with a gap in one fine image
    the valid images' weights are rescaled to 1 there."""
    inputs = {k: [a.copy() for a in v] for k, v in cia.items()}
    fines, coarses, target = inputs["fines"], inputs["coarses"], inputs["target"][0]
    fines[0][:, 4:12, 3:9] = np.nan
    est = _fit(inputs, reference="weighted")
    pred = np.asarray(est.predict(target))
    err = np.array([np.mean((c.astype(np.float64) - target) ** 2) for c in coarses])
    w = err**-2 / (err**-2).sum()
    np.testing.assert_allclose(est.reference_weights_, w, rtol=1e-9)
    assert est.reference_pairs_ == [0, 1, 2]
    stack = np.stack(fines).astype(np.float64)
    ok = np.isfinite(stack)
    weights = w[:, None, None, None] * ok
    reference = (weights * np.where(ok, stack, 0)).sum(0) / weights.sum(0)
    ref, _ = robot_ref(fines, coarses, target, reference, **SMALL)  # type: ignore[arg-type]
    np.testing.assert_allclose(pred, ref, atol=2e-5)
    # a pair whose coarse image equals the target's takes all the weight
    est = ROBOT(block=8, step=8, reference="weighted").fit(list(zip(fines, coarses)))
    est.predict(coarses[1])
    np.testing.assert_array_equal(est.reference_weights_, [0, 1, 0])


@settings(max_examples=20, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    scale=st.sampled_from([1e-4, 0.5, 1.0, 1e4]),
    reference=st.sampled_from(["closest", "weighted", "mean"]),
    order=st.permutations([0, 1, 2]),
    px=st.sampled_from([5, 20]),
)
@example(seed=62, scale=1e-4, reference="weighted", order=[0, 1, 2], px=20)  # 2.5e-6 off
def test_equivariant_to_units_and_pair_order(
    seed: int, scale: float, reference: str, order: list[int], px: int
) -> None:
    """Reflectance in 0-1 or x 10000 gives the same prediction in the same units (the block
    normalisation and the reference weights are scale-free), and the order in which the
    pairs are given does not matter. ``px`` 20, one band: each 10 px block lies inside one
    coarse pixel, so every coarse image is flat over the block (LST at 1 km over 30 m)."""
    rng = np.random.default_rng(seed)
    nb = 1 if px == 20 else 2
    base = rng.uniform(0.05, 0.4, (nb, 20, 20))
    fines = [base + rng.normal(0, 0.03, base.shape) for _ in range(3)]

    def coarse(f: np.ndarray) -> np.ndarray:  # px x px block means on the fine grid
        k = 20 // px
        blocks = f.reshape(nb, k, px, k, px).mean(axis=(2, 4))
        return np.repeat(np.repeat(blocks, px, axis=1), px, axis=2)

    coarses = [coarse(f) for f in fines]
    target = coarse(0.5 * fines[0] + 0.5 * fines[2] + rng.normal(0, 0.01, base.shape))

    def run(fs: list, cs: list, t: np.ndarray) -> np.ndarray:
        est = ROBOT(block=10, step=5, reference=reference).fit(list(zip(fs, cs)))
        return np.asarray(est.predict(t), np.float64)

    ref = run(fines, coarses, target)
    scaled = run([scale * f for f in fines], [scale * c for c in coarses], scale * target)
    # flat blocks: SLSQP (the sum bound binding) converges to its tolerance, 2.5e-6 seen
    np.testing.assert_allclose(scaled / scale, ref, rtol=1e-4, atol=1e-6 if px == 5 else 1e-5)
    permuted = run([fines[i] for i in order], [coarses[i] for i in order], target)
    np.testing.assert_allclose(permuted, ref, rtol=1e-4, atol=1e-6)


# ----------------------------------------------------------------------- interfaces


def test_registered_and_pairs() -> None:
    assert available()["robot"] == "stfusion.methods.robot:ROBOT"
    cls = get_method("robot")
    assert cls.tags.series_all_pairs and cls.tags.max_pairs is None
    with pytest.raises(InvalidParameterError, match=r"'robt' \(did you mean robot\?\)"):
        get_method("robt")
    with pytest.raises(InvalidParameterError, match="at least 2 pairs"):
        ROBOT().fit([(np.zeros((1, 4, 4)), np.zeros((1, 4, 4)))])
    with pytest.raises(InvalidParameterError, match="step"):
        ROBOT(block=10, step=11)


def test_weighted_reference_keeps_the_contract() -> None:
    """The contract suite runs the defaults; the weighted reference is scene-wide too, so
    tiled, threaded and masked runs keep every promise (stfusion.testing.check_method)."""
    from stfusion.testing import check_method

    check_method(ROBOT, {"reference": "weighted"})


def test_series_gives_a_time_series_method_every_pair() -> None:
    d = dt.date
    clear = [d(2020, 1, 1), d(2020, 2, 1), d(2020, 3, 1), d(2020, 5, 1), d(2020, 6, 1)]
    sets, _ = choose_pairs(d(2020, 4, 1), clear, 2, None, 1, all_pairs=True)
    assert sets == [clear]
    sets, _ = choose_pairs(d(2020, 4, 1), clear, 2, None, 1)  # unchanged without the tag
    assert sets == [[d(2020, 3, 1), d(2020, 5, 1)]]


def test_cli_predict_with_several_pairs(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    paths = []
    for i in range(3):
        f = rng.uniform(0.05, 0.4, (2, 24, 24)).astype(np.float32)
        paths += [write_tif(tmp_path / f"f{i}.tif", f), write_tif(tmp_path / f"c{i}.tif", f + 0.01)]
    target = write_tif(tmp_path / "c.tif", rng.uniform(0.05, 0.4, (2, 24, 24)).astype(np.float32))
    out = tmp_path / "out.tif"
    args = ["predict", "--method", "robot", "--param", "block=12", "--param", "step=8"]
    for i in range(3):
        args += ["--pair", str(paths[2 * i]), str(paths[2 * i + 1])]
    run_cli_ok([*args, "--coarse", str(target), "--out", str(out)])
    assert np.isfinite(read_raster(out).values).all()


def _kranj_robot_series(
    out: Path, fine_days: tuple[str, ...], date_range: str, params: tuple[str, ...] = ()
) -> Path:
    """``stfusion series --method robot`` over Kranj's filled Landsat of ``fine_days`` and
    every MODIS day; the Kranj folder."""
    k = need(KRANJ)
    run_series(
        out,
        fine=[str(k / "landsat" / "filled" / f"2020{d}_*.tif") for d in fine_days],
        coarse=[str(k / "modis" / "filled")],
        fine_scale=1e-4,
        method="robot",
        params=list(params),
        date_range=date_range,
    )
    return k


@pytest.mark.realdata(KRANJ)
def test_kranj_series_day_077(tmp_path: Path) -> None:
    """`stfusion series --method robot` over Kranj with 077 held back: every clear pair (068,
    093; 100 has no MODIS) and better than STARFM through the same command (0.01523)."""
    out = tmp_path / "out"
    k = _kranj_robot_series(out, ("068", "093", "100"), "2020-03-17")
    row = {r["date"]: r for r in read_summary(out / "summary.csv")}["2020-03-17"]
    assert row["pairs"] == "2020-03-08 2020-04-02" and row["method"] == "robot"
    truth = FileSource(str(next((k / "landsat" / "filled").glob("2020077_*"))), Scaling(1e-4))
    pred = FileSource(str(out / "fused_2020-03-17.tif")).read()
    rmse = float(evaluate(pred, truth.read()).mean["rmse"])
    assert rmse < 0.0135  # measured 0.01278 (starfm 0.01523, estarfm 0.01250)


@pytest.mark.realdata(KRANJ)
def test_series_records_each_dates_reference(tmp_path: Path) -> None:
    """The default reference switches from pair 068 to pair 093 between Kranj's days 075 and
    076 (docs/methods/robot.md); each output's STFUSION_ROBOT tag says which it used."""
    out = tmp_path / "out"
    _kranj_robot_series(out, ("068", "093"), "2020-03-15:2020-03-16")
    weights = {}
    for day in ("2020-03-15", "2020-03-16"):
        with rasterio.open(out / f"fused_{day}.tif") as ds:
            weights[day] = json.loads(ds.tags()["STFUSION_ROBOT"])["reference_weights"]
    assert weights == {"2020-03-15": [1.0, 0.0], "2020-03-16": [0.0, 1.0]}


@pytest.mark.realdata(KRANJ)
def test_series_gives_the_dates_for_the_nearest_reference(tmp_path: Path) -> None:
    """A trial against the authors' code: `series -p reference=nearest` (the authors' demo
    rule) fell back to `closest` without a word, since the series gave the method no dates;
    `predict` with the same files took the mean of 068 and 093."""
    out = tmp_path / "out"
    _kranj_robot_series(out, ("068", "093"), "2020-03-10:2020-03-17", ("reference=nearest",))
    for day in ("2020-03-10", "2020-03-17"):
        with rasterio.open(out / f"fused_{day}.tif") as ds:
            tags = ds.tags()
        assert json.loads(tags["STFUSION_ROBOT"])["reference_weights"] == [0.5, 0.5], day


def test_the_bench_gives_the_dates_for_the_nearest_reference() -> None:
    """As the series: `bench -p robot.reference=nearest` fell back to `closest` without a
    word (cia-2pair 0.03218 instead of 0.02858), since Case.predict_with gave no dates."""
    from stfusion.cases import named_cases

    case = named_cases()["sample-cia-2pair"]  # bundled: 10-08 and 11-02 around 10-17
    est = ROBOT(block=12, step=8, reference="nearest")
    case.predict_with(est)
    np.testing.assert_array_equal(est.reference_weights_, [0.5, 0.5])
