"""The reliability-weighted ensemble: weights, where its reliability comes from, quality bands.

Tiled == whole, threads, NaN holes, CLI == library and the exact properties are in
tests/test_contract.py (members additive,starfm).
"""

from __future__ import annotations

import inspect
import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import rasterio

from conftest import BOREAS, CIA, KRANJ, LGC, piecewise_scene
from stfusion.coarse import block_mean
from stfusion.errors import InvalidParameterError
from stfusion.io import ArraySource, Grid, Source
from stfusion.methods import get_method
from stfusion.methods.cells import cells_to_fine, consistency_gain
from stfusion.methods.ensemble import Ensemble, reliability_weights

R = 8


@pytest.fixture(scope="module")
def scene() -> dict[str, np.ndarray]:
    return piecewise_scene(48, 48, bands=2, patch=4, ratio=R)


def test_registered() -> None:
    assert get_method("ensemble") is Ensemble


def test_weights_sum_to_one_where_any_member_is_valid(scene: dict) -> None:
    fine, coarse = scene["fine"].copy(), scene["coarse"]
    fine[:, 5:9, 5:9] = np.nan  # every member NaN here (both use the fine image)
    target = (coarse * 1.07).astype(np.float32)
    est = Ensemble(members="additive,nochange").fit([(fine, coarse)], ratio=R).prepare(target)
    w = est.weights_
    assert w.shape == (2, 48, 48)
    anyvalid = np.isfinite(est.preds_).all(axis=1).any(axis=0)
    np.testing.assert_allclose(w.sum(axis=0)[anyvalid], 1.0, rtol=1e-6)
    assert np.isnan(w[:, ~anyvalid]).all() and (~anyvalid).sum() == 16
    assert np.isnan(est.predict().values[:, 5:9, 5:9]).all()


def test_nan_member_drops_out_at_that_pixel() -> None:
    preds = np.ones((2, 1, 2, 2), np.float32)
    preds[1, 0, 0, 0] = np.nan
    errors = np.full((2, 2, 2), 0.01)
    w = reliability_weights(preds, errors, 0.05)
    assert w[0, 0, 0] == 1.0 and w[1, 0, 0] == 0.0
    np.testing.assert_allclose(w[:, 1, 1], [0.5, 0.5])


def test_exact_member_takes_the_weight_cross_scale(scene: dict) -> None:
    """One pair: additive is exact for a uniform change (coarse = block means), no-change is
    off by the change; cross-scale consistency sees that without any fine truth."""
    fine, coarse = scene["fine"], scene["coarse"]
    d = np.float32(0.05)
    est = Ensemble(members="additive,nochange").fit([(fine, coarse)], ratio=R)
    pred = est.predict(coarse + d).values
    assert est.mode_ == "cross_scale"
    assert est.weights_[0].min() > 0.95
    np.testing.assert_allclose(pred, fine + d, atol=0.05 * 0.05)


def test_exact_member_takes_the_weight_leave_one_pair_out(scene: dict) -> None:
    """Two pairs with a uniform change between them: in leave-one-pair-out, additive predicts
    each pair exactly from the other, no-change misses by the change."""
    fine, coarse = scene["fine"], scene["coarse"]
    d = np.float32(0.04)
    pairs = [(fine, coarse), (fine + d, coarse + d)]
    est = Ensemble(members="additive,nochange").fit(pairs, ratio=R)
    assert est.mode_ == "loo"
    np.testing.assert_allclose(est.cell_errors_[0], 0.0, atol=1e-10)
    np.testing.assert_allclose(est.cell_errors_[1], d**2, rtol=1e-3)
    est.prepare(coarse + 2 * d)
    assert est.weights_[0].min() > 0.95


def test_consensus_is_each_member_s_distance_to_the_others(scene: dict) -> None:
    """One pair, three members: each member's cell error is the squared distance to the mean
    of the other two (NaN-aware), over bands and cell pixels, read in blocks of rows that
    split the scene; the member far from the others (no-change under a change) weighs least.
    """
    from stfusion.io import scan_limit

    fine, coarse = scene["fine"].copy(), scene["coarse"]
    fine[0, 10:14, 20:30] = np.nan  # holes in every member (each uses the fine image)
    target = (coarse + 0.06).astype(np.float32)
    with scan_limit(2 * 48 * 3 * R):  # a block of R rows of the three members at a time
        est = Ensemble(members="additive,nochange,starfm").fit([(fine, coarse)], ratio=R)
        est.prepare(target)
    assert est.mode_ == "consensus"
    p = est.preds_.astype(np.float64)
    for k in range(3):
        others = np.nanmean(np.delete(p, k, axis=0), axis=0)
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pixels: NaN
            want = block_mean(np.nanmean((p[k] - others) ** 2, axis=0), R, np.float64)
        np.testing.assert_allclose(est.cell_errors_used_[k], want, rtol=1e-9, atol=1e-15)
    w = est.weights_.mean(axis=(1, 2))
    assert w[1] < 0.2 and w[1] < w[0] and w[1] < w[2]


def test_consensus_needs_three_members(scene: dict, caplog: pytest.LogCaptureFixture) -> None:
    """Two members are equally far from each other: consensus would weigh them equally,
    so cross-scale consistency is used, and said. auto uses consensus wherever
    leave-one-pair-out cannot run and three or more members do (one pair, or two pairs with
    ESTARFM or ROBOT among them); with two members, cross-scale consistency."""
    fine, coarse = scene["fine"], scene["coarse"]
    with caplog.at_level(logging.INFO, logger="stfusion.methods.ensemble"):
        two = Ensemble(members="additive,nochange", reliability="consensus")
        two.fit([(fine, coarse)], ratio=R)
    assert two.mode_ == "cross_scale" and "consensus needs >= 3 members" in caplog.text
    pairs = [(fine, coarse), (fine * 1.02, coarse * 1.02)]
    # ESTARFM cannot leave one of two out
    assert Ensemble(members="additive,nochange,estarfm").fit(pairs, ratio=R).mode_ == "consensus"
    assert Ensemble(members="additive,estarfm").fit(pairs, ratio=R).mode_ == "cross_scale"
    with caplog.at_level(logging.INFO, logger="stfusion.methods.ensemble"):
        Ensemble(members="additive,nochange,robot").fit(pairs, ratio=R)
    assert "consensus reliability: not every member (additive,nochange,robot)" in caplog.text


def test_members_that_cannot_run_are_skipped(scene: dict, caplog: pytest.LogCaptureFixture) -> None:
    fine, coarse = scene["fine"], scene["coarse"]
    with caplog.at_level(logging.INFO, logger="stfusion.methods.ensemble"):
        est = Ensemble(members="fitfc,additive,estarfm").fit([(fine, coarse)], ratio=R)
    assert est.members_ == ["fitfc", "additive"]
    assert "member estarfm skipped" in caplog.text
    with caplog.at_level(logging.INFO, logger="stfusion.methods.ensemble"):
        two = Ensemble(members="fitfc,additive").fit([(fine, coarse)] * 2, ratio=R)
    assert two.members_ == ["additive"]
    assert "member fitfc skipped" in caplog.text and "multi_pair=vip" in caplog.text
    with pytest.raises(InvalidParameterError, match="none of the members"):
        Ensemble(members="estarfm").fit([(fine, coarse)], ratio=R)


def test_auto_falls_back_to_cross_scale_when_a_member_cannot_leave_one_out(scene: dict) -> None:
    fine, coarse = scene["fine"], scene["coarse"]
    est = Ensemble(members="additive,estarfm").fit([(fine, coarse)] * 2, ratio=R)
    assert est.mode_ == "cross_scale"
    with pytest.raises(InvalidParameterError, match="reliability=loo"):
        Ensemble(members="additive,estarfm", reliability="loo").fit([(fine, coarse)] * 2, ratio=R)


def test_needs_the_ratio_even_when_no_member_does(scene: dict) -> None:
    """STARFM and ESTARFM run without a ratio; the ensemble's reliability cells do not (they
    were single fine pixels, silently)."""
    fine, coarse = scene["fine"], scene["coarse"]
    est = Ensemble(members="starfm,estarfm")
    with pytest.raises(InvalidParameterError, match="ensemble needs the resolution ratio"):
        est.fit([(fine, coarse)] * 2)
    assert est.fit([(fine, coarse)] * 2, ratio=R).cell_ == R


def test_one_pair_members_run_through_vipstf_on_several_pairs(scene: dict) -> None:
    """multi_pair=vip: Fit-FC joins on two pairs as VIPSTF over Fit-FC, the same prediction as
    make_estimator("fitfc", pairs=2, multi_pair="vip"); with three pairs leave-one-pair-out
    runs it as VIPSTF on the two others, and the left-out pair's fine image is never read for
    its own prediction (poisoning it changes nothing of that prediction)."""
    from stfusion.methods import make_estimator
    from stfusion.methods.vipstf import VIPSTF

    fine, coarse = scene["fine"], scene["coarse"]
    d = np.float32(0.03)
    pairs = [(fine, coarse), (fine + d, coarse + d)]
    target = (coarse + 1.5 * d).astype(np.float32)
    est = Ensemble(members="fitfc,additive", multi_pair="vip").fit(pairs, ratio=R)
    assert est.members_ == ["fitfc", "additive"] and est.mode_ == "loo"
    assert isinstance(est._new("fitfc", 2), VIPSTF)
    est.prepare(target)
    alone = make_estimator("fitfc", pairs=2, multi_pair="vip").fit(pairs, ratio=R)
    np.testing.assert_array_equal(est.preds_[0], alone.predict(target).values)
    # A uniform change between pairs: additive predicts each left-out pair exactly.
    np.testing.assert_allclose(est.cell_errors_[1], 0.0, atol=1e-9)
    assert np.isfinite(est.cell_errors_[0]).all()
    # Three pairs: leave-one-pair-out runs VIPSTF over Fit-FC on the two others; the left-out
    # pair's fine image is read once, as the truth, after the prediction.
    grid = Grid(crs=None, transform=rasterio.Affine.identity(), width=48, height=48)
    reads: list[str] = []

    def src(a: np.ndarray, label: str) -> Recording:
        return Recording(ArraySource(a, grid, ("b1", "b2"), label), reads)

    three = [(src(fine + i * d, f"F{i}"), src(coarse + i * d, f"C{i}")) for i in range(3)]
    est3 = Ensemble(members="fitfc,additive", multi_pair="vip").fit(three, ratio=R)
    assert est3.mode_ == "loo"
    for k in range(3):
        reads.clear()
        est3._loo_error("fitfc", est3.scene_, k)
        assert reads[-1] == f"F{k}" and f"F{k}" not in reads[:-1]
        assert {f"F{i}" for i in range(3) if i != k} <= set(reads)


def test_params_refused_and_forwarded() -> None:
    with pytest.raises(InvalidParameterError, match="not a registered method"):
        Ensemble(members="additive,nosuch")
    with pytest.raises(InvalidParameterError, match="repeats"):
        Ensemble(members="additive,additive")
    with pytest.raises(InvalidParameterError):
        Ensemble(members="starfm", member_params={"starfm": {"nosuch": 1}})
    kw = Ensemble.parse_params(["members=starfm,additive", "starfm.window=7"])
    assert kw == {"members": "starfm,additive", "member_params": {"starfm": {"window": 7}}}
    assert Ensemble(**kw)._new("starfm").window == 7
    kw = Ensemble.parse_params(["multi_pair=vip", "fitfc.window=21"])
    vip = Ensemble(members="fitfc,starfm", **kw)._new("fitfc", 2)
    assert vip.base_params == {"window": 21}
    with pytest.raises(InvalidParameterError):
        Ensemble(multi_pair="nosuch")


def test_band_roles_go_to_the_members_that_take_them() -> None:
    """``-p bands=landsat7`` was refused (no such parameter): roles reached STARFM's and
    Fit-FC's similarity bands only as ``starfm.bands=...`` and ``fitfc.bands=...``."""
    kw = Ensemble.parse_params(["bands=landsat7", "members=starfm,fitfc,fsdaf"])
    ens = Ensemble(**kw)
    assert ens._new("starfm").bands == "landsat7" and ens._new("fitfc").bands == "landsat7"
    assert "bands" not in ens._new("fsdaf").get_params()
    own = Ensemble(bands="landsat7", member_params={"starfm": {"bands": "green,red,nir"}})
    assert own._new("starfm").bands == "green,red,nir"
    assert Ensemble(multi_pair="vip", bands="landsat7")._new("fitfc", 2).base_params == {
        "bands": "landsat7"
    }
    assert Ensemble()._new("starfm").bands == "auto"


@dataclass
class Recording(Source):
    """A Source that records that it was read."""

    inner: ArraySource
    log: list[str]
    grid: Grid = field(init=False)
    count: int = field(init=False)
    band_names: tuple[str, ...] = field(init=False)
    label: str = field(init=False)

    def __post_init__(self) -> None:
        self.grid, self.count = self.inner.grid, self.inner.count
        self.band_names, self.label = self.inner.band_names, self.inner.label

    def read(self, window=None, halo: int = 0):  # type: ignore[no-untyped-def]
        self.log.append(self.label)
        return self.inner.read(window, halo)


def test_never_gets_or_reads_the_target_fine_image(scene: dict) -> None:
    """The API has no place for the target's fine image, and only the pairs and the coarse
    target are read (in both reliability modes)."""
    assert list(inspect.signature(Ensemble.fit).parameters) == ["self", "pairs", "scene_kw"]
    assert list(inspect.signature(Ensemble.prepare).parameters) == [
        "self",
        "coarse_target",
        "scaling",
        "target_date",  # its date, which a series gives; no image
    ]
    fine, coarse = scene["fine"], scene["coarse"]
    grid = Grid(crs=None, transform=rasterio.Affine.identity(), width=48, height=48)
    for npairs in (1, 2):
        reads: list[str] = []

        def src(a: np.ndarray, label: str, reads: list[str] = reads) -> Recording:
            return Recording(ArraySource(a, grid, ("b1", "b2"), label), reads)

        pairs = [
            (src(fine + 0.01 * i, f"F{i}"), src(coarse + 0.01 * i, f"C{i}")) for i in range(npairs)
        ]
        est = Ensemble(members="additive,nochange").fit(pairs, ratio=R)
        est.predict(src(coarse + 0.03, "C0"))
        allowed = {f"F{i}" for i in range(npairs)} | {f"C{i}" for i in range(npairs)} | {"C0"}
        assert set(reads) <= allowed and "C0" in reads


def test_quality_layer_has_named_weight_bands(scene: dict, tmp_path: Path) -> None:
    fine, coarse = scene["fine"], scene["coarse"]
    est = Ensemble(members="additive,nochange").fit([(fine, coarse)], ratio=R)
    out, q = tmp_path / "p.tif", tmp_path / "q.tif"
    est.predict((coarse * 1.05).astype(np.float32), out=out, quality_out=q)
    with rasterio.open(q) as ds:
        names = list(ds.descriptions)
        data = ds.read()
    assert names[-2:] == ["weight_additive", "weight_nochange"]
    assert names[3:5] == [f"uncertainty_{b}" for b in est.scene_.band_names]
    np.testing.assert_allclose(data[-2:].sum(axis=0), 1.0, rtol=1e-6)
    with rasterio.open(out) as ds:
        np.testing.assert_array_equal(ds.read(), est.predict().values)
    # Through VIPSTF (base=ensemble) the weight bands come along (a user trial: the layer
    # was sized for VIPSTF's own bands, and writing it failed with a traceback)
    from stfusion.methods.vipstf import VIPSTF

    two = [(fine, coarse), ((fine * 1.02).astype(np.float32), (coarse * 1.02).astype(np.float32))]
    vip = VIPSTF(base="ensemble", base_params={"members": "additive,nochange"}).fit(two, ratio=R)
    vq = tmp_path / "vq.tif"
    vip.predict((coarse * 1.05).astype(np.float32), out=tmp_path / "v.tif", quality_out=vq)
    with rasterio.open(vq) as ds:
        assert list(ds.descriptions)[-2:] == ["weight_additive", "weight_nochange"]


def test_block_means_and_interpolation() -> None:
    x = np.arange(20, dtype=np.float64).reshape(4, 5)
    b = block_mean(x, 2, np.float64)
    assert b.shape == (2, 3)
    assert b[0, 0] == np.mean([0, 1, 5, 6]) and b[0, 2] == np.mean([4, 9])
    flat = cells_to_fine(np.full((2, 3), 7.0), 2, (4, 5))
    np.testing.assert_allclose(flat, 7.0)


def test_consistency_gain_is_the_wiener_share_of_the_residual() -> None:
    """lambda = 1 - (1 + 1/K) noise / residual, clipped to [0, 1]; 0 where undefined."""
    g = consistency_gain(
        np.array([0.0, 1.0, 1.0, 5.0, np.nan, 1.0]), np.array([2.0, 4.0, 2.0, 1.0, 1.0, 0.0]), 1
    )
    np.testing.assert_allclose(g, [1.0, 0.5, 0.0, 0.0, 0.0, 0.0])
    np.testing.assert_allclose(consistency_gain(np.array([1.0]), np.array([4.0]), 3), [2 / 3])


def _changed_scene(scene: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The scene's fine image, a truth with a change that varies from cell to cell (smooth
    over the scene) and the coarse target: the truth's exact block means."""
    from stfusion.coarse import upsample_blocks

    fine = scene["fine"]
    y, x = np.mgrid[0 : fine.shape[1], 0 : fine.shape[2]] / fine.shape[1]
    truth = (fine + 0.08 * np.sin(3 * y + 2 * x)[None]).astype(np.float32)
    coarse = upsample_blocks(block_mean(truth, R), R, fine.shape[1:]).astype(np.float32)
    return fine, truth, coarse


def test_coarse_consistency_adds_the_residual_back_where_coarse_is_block_means(
    scene: dict,
) -> None:
    """Coarse images that are the fine ones' block means (no sensor departure at the pair
    date): the gain is 1, and no-change alone, blind to the change, gets it back from the
    coarse target; consistency=off leaves the weighted mean (here no-change's F1)."""
    fine, truth, target = _changed_scene(scene)
    pairs = [(fine, scene["coarse"])]

    def run(consistency: str) -> tuple[Ensemble, np.ndarray]:
        est = Ensemble(members="nochange", consistency=consistency).fit(pairs, ratio=R)
        return est, est.predict(target).values

    off_est, off = run("off")
    est, on = run("auto")
    assert off_est.consistency_gain_ is None
    np.testing.assert_array_equal(off, fine)
    np.testing.assert_allclose(est.consistency_gain_, 1.0)
    before, after = np.sqrt(np.mean((off - truth) ** 2)), np.sqrt(np.mean((on - truth) ** 2))
    assert after < 0.25 * before
    # tiled runs equal whole ones (the residual is interpolated from the scene's cells)
    np.testing.assert_array_equal(est.predict(target, window_size=20).values, on)


def test_coarse_consistency_stays_off_for_a_coarse_sensor_that_departs(scene: dict) -> None:
    """A coarse sensor whose cells depart from the fine block means at the pair date (noise
    as large as the change to find): the gain is 0 and the prediction is the weighted mean's,
    bit for bit."""
    fine, _, target = _changed_scene(scene)
    rng = np.random.default_rng(5)
    cells = block_mean(fine, R, np.float64)
    noisy = cells + rng.normal(0.0, 0.2, cells.shape)
    from stfusion.coarse import upsample_blocks

    coarse = upsample_blocks(noisy, R, fine.shape[1:]).astype(np.float32)
    on = Ensemble(members="nochange").fit([(fine, coarse)], ratio=R)
    pred = on.predict(target).values
    np.testing.assert_array_equal(on.consistency_gain_, 0.0)
    off = Ensemble(members="nochange", consistency="off").fit([(fine, coarse)], ratio=R)
    np.testing.assert_array_equal(pred, off.predict(target).values)


@pytest.mark.parametrize(
    ("pairs_given", "reliability"),
    [(2, "cross_scale"), (1, "auto")],  # auto: consensus
)
def test_spilled_state_equals_in_memory_and_any_window_plan(
    scene: dict, pairs_given: int, reliability: str
) -> None:
    """Past the run's state budget (``--mem-limit``) the members' predictions and the weights
    go to temporary files; the prediction is the same bit for bit, for any window plan."""
    from stfusion.io.spill import state_limit

    fine, coarse = scene["fine"], scene["coarse"]
    pairs = [(fine, coarse), (fine * 1.02, coarse * 1.02)][:pairs_given]

    def run(budget: int | None, window: int | None) -> tuple[Ensemble, np.ndarray]:
        est = Ensemble(members="starfm,estarfm,additive,nochange", reliability=reliability)
        if budget is None:
            est.fit(pairs, ratio=R)
            return est, est.predict(coarse * 1.01, window_size=window).values
        with state_limit(budget):
            est.fit(pairs, ratio=R)
            return est, est.predict(coarse * 1.01, window_size=window).values

    mem, whole = run(None, None)
    assert mem.mode_ == ("consensus" if pairs_given == 1 else "cross_scale")
    assert not mem.member_preds_[0].spilled
    disk, spilled = run(0, None)
    assert all(p.spilled for p in disk.member_preds_) and disk.weight_map_.spilled
    np.testing.assert_array_equal(spilled, whole)
    np.testing.assert_array_equal(run(0, 20)[1], whole)  # windows that split the cells
    np.testing.assert_array_equal(disk.weights_, mem.weights_)
    np.testing.assert_array_equal(disk.preds_, mem.preds_)


@pytest.mark.realdata(CIA, BOREAS, LGC, KRANJ)
@pytest.mark.parametrize(
    "case", ["cia-1pair", "cia-2pair", "boreas-1pair", "boreas-2pair", "lgc-flood", "kranj-2pair"]
)
def test_default_ensemble_is_never_1_percent_behind_its_best_member(case: str) -> None:
    """Issue 15's target, on every named case, as the bench runs them (the cases' band names
    go to the members that take them): the default ensemble's mean RMSE is never more than
    1 % above its best member's (each member's own prediction, kept by the ensemble). Two-pair
    cases used to combine STARFM and ESTARFM by cross-scale consistency: kranj-2pair was
    7.5 % behind ESTARFM; ROBOT as a third member and consensus weights put it ahead."""
    from stfusion.bench import _truth, _with_case_bands
    from stfusion.cases import named_cases
    from stfusion.methods import make_estimator
    from stfusion.metrics import rmse

    c = named_cases()[case]
    truth, _ = _truth(c)
    est = make_estimator("ensemble", _with_case_bands(Ensemble, c, []), pairs=len(c.pairs))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pred = c.predict_with(est)
    assert est.members_ == (
        ["fitfc", "fsdaf", "starfm"] if len(c.pairs) == 1 else ["starfm", "estarfm", "robot"]
    )
    best = min(float(np.mean(rmse(p, truth))) for p in est.preds_)
    assert float(np.mean(rmse(pred, truth))) <= 1.01 * best
    # The coarse-consistency step: on for LGC's simulated coarse images (exact 16 x 16 block
    # means: 11.6 -> 17.6 % ahead of additive), off for every real MODIS pair.
    gain = est.consistency_gain_
    assert gain is not None
    if case == "lgc-flood":  # 1 but for the int16 files' rounding
        np.testing.assert_allclose(gain, 1.0, atol=1e-3)
    else:
        np.testing.assert_array_equal(gain, 0.0)
