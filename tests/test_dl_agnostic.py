"""Band-agnostic deep networks that correct a physical baseline (checkpoint format 2).

Checks: an untrained network predicts its baseline exactly (the regression baseline
``C2 + s (F1 - C1)``, additive for older checkpoints, or GAN-STFM's ``F1 + box(C2) - box(F1)``),
the regression baseline's properties, every deep method predicts 1, 3 and 6 bands from one
checkpoint, per-sample normalisation holds for NDVI and kelvin, GAN-STFM predicts without a
coarse reference image (``--fine-ref``), MS-SSIM is computed on physical values, checkpoints
record their training sites, and band-tied (format 1) checkpoints still load.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import rasterio

torch = pytest.importorskip("torch")

from conftest import run_cli, write_tif  # noqa: E402
from stfusion.dl.checkpoint import load_checkpoint  # noqa: E402
from stfusion.dl.infer import predict_arrays  # noqa: E402
from stfusion.dl.losses import CompoundLoss  # noqa: E402
from stfusion.dl.networks import make_network  # noqa: E402
from stfusion.dl.networks.agnostic import (  # noqa: E402
    REGRESSION_RADIUS,
    SLOPE_MAX,
    SLOPE_PRIOR,
    box,
    sample_stats,
)
from stfusion.dl.train import TrainConfig, random_checkpoint, train  # noqa: E402
from stfusion.errors import InvalidParameterError  # noqa: E402
from stfusion.methods import get_method  # noqa: E402

#: The band-agnostic methods and the size of their random checkpoints.
MODELS = {
    "dcstfn": "tiny",
    "edcstfn": "tiny",
    "ganstfm": "tiny",
    "vitgan": "tiny",
    "student": "micro",
}
#: Float32 arithmetic of ``(x - c) / s * s + c`` and of the box (co)variances around
#: reflectance values.
TOL = 1e-5


def _scene(bands: int, size: int = 48, seed: int = 0, offset: float = 0.0, scale: float = 1.0):
    rng = np.random.default_rng(seed)
    f1 = rng.uniform(0.05, 0.4, (bands, size, size)).astype(np.float32)
    c1 = (f1 + rng.normal(0, 0.02, f1.shape)).astype(np.float32)
    c2 = (c1 + 0.05 + rng.normal(0, 0.02, f1.shape)).astype(np.float32)
    return tuple((a * scale + offset).astype(np.float32) for a in (f1, c1, c2))


def regression_reference(
    f1: np.ndarray,
    c1: np.ndarray,
    c2: np.ndarray,
    radius: int = REGRESSION_RADIUS,
    stats_of: np.ndarray | None = None,
) -> np.ndarray:
    """The regression baseline from its definition (docs/deep.md), in float64:
    ``C2 + s (F1 - C1)``, ``s`` the least-squares slope of ``C2`` on ``C1`` over the
    ``(2 radius + 1)`` box around each pixel (edges replicated), with the prior ``P`` added to
    the covariance and the variance (in units of the per-band spread of the fine reference,
    ``stats_of``: default ``f1``), clipped to ``[0, SLOPE_MAX]``."""
    from scipy.ndimage import uniform_filter

    _, spread, _ = sample_stats(f1 if stats_of is None else stats_of)
    out = np.empty(f1.shape)
    for b in range(f1.shape[0]):
        x, y = c1[b] / spread[b], c2[b] / spread[b]  # the centre cancels in (co)variances

        def mean(a: np.ndarray) -> np.ndarray:
            return uniform_filter(a.astype(np.float64), 2 * radius + 1, mode="nearest")

        var = mean(x * x) - mean(x) ** 2
        cov = mean(x * y) - mean(x) * mean(y)
        slope = np.clip((cov + SLOPE_PRIOR) / (np.maximum(var, 0) + SLOPE_PRIOR), 0, SLOPE_MAX)
        out[b] = c2[b] + slope * (f1[b] - c1[b])
    return out


def _baseline(model: str, f1: np.ndarray, c1: np.ndarray, c2: np.ndarray) -> np.ndarray:
    if model == "ganstfm":
        t = [torch.from_numpy(a)[None] for a in (f1, c2)]
        return (t[0] + box(t[1], 8) - box(t[0], 8))[0].numpy()
    return regression_reference(f1, c1, c2)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("agnostic")
    return {
        m: random_checkpoint(d / f"{m}.ckpt", m, 6, size=s, agnostic=True)
        for m, s in {**MODELS, "stfdcnn": "tiny"}.items()
    }


@pytest.mark.parametrize("model", sorted(MODELS))
@pytest.mark.parametrize("bands", [1, 3, 6])
def test_untrained_equals_baseline_on_any_band_count(
    model: str, bands: int, checkpoints: dict[str, Path]
) -> None:
    f1, c1, c2 = _scene(bands)
    pred = predict_arrays(checkpoints[model], [(f1, c1)], c2, tile=32, device="cpu")
    assert pred.shape == f1.shape
    np.testing.assert_allclose(pred, _baseline(model, f1, c1, c2), atol=TOL, rtol=0)


@pytest.mark.parametrize("units", ["ndvi", "kelvin"])
def test_per_sample_normalisation_holds_for_ndvi_and_kelvin(
    units: str, checkpoints: dict[str, Path]
) -> None:
    # NDVI spans -1..1 around 0; land-surface temperature is ~300 K with a few K of spread.
    offset, scale = (-0.3, 2.0) if units == "ndvi" else (290.0, 20.0)
    f1, c1, c2 = _scene(1, offset=offset, scale=scale)
    pred = predict_arrays(checkpoints["edcstfn"], [(f1, c1)], c2, tile=32, device="cpu")
    tol = TOL * max(abs(offset), scale) * 4
    # The baseline commutes with a change of units (the slope's prior is in units of the
    # fine image's spread).
    np.testing.assert_allclose(pred, regression_reference(f1, c1, c2), atol=tol, rtol=0)
    center, spread, rng = sample_stats(f1)
    assert np.all(spread > 0) and np.isfinite(center).all()
    if units == "ndvi":
        assert rng[0] == 1.0  # an index: the data range of reflectance
    else:
        assert rng[0] > 1.5  # kelvin: the spread of the values, not reflectance's 1


def test_regression_baseline_properties() -> None:
    from stfusion.dl.networks.agnostic import AgnosticNet, regression_slope, wrap
    from stfusion.dl.networks.edcstfn import EDCSTFNNet

    rng = np.random.default_rng(5)
    c1 = torch.from_numpy(rng.normal(0, 1, (1, 1, 64, 64)).astype(np.float32))
    # A uniform change: slope 1, the additive baseline (float32 box moments: 1e-4).
    s = regression_slope(c1, c1 + 0.7, REGRESSION_RADIUS)
    np.testing.assert_allclose(s.numpy(), 1.0, atol=1e-4)
    # A proportional change of a varied scene: the slope tends to the factor (the prior
    # pulls it slightly towards 1); a flat scene: 1 (the change cannot be told apart).
    s = regression_slope(c1, 1.5 * c1, REGRESSION_RADIUS).numpy()
    assert np.all(s > 1.4) and np.all(s <= 1.5 + 1e-4)
    flat = torch.zeros_like(c1)
    np.testing.assert_allclose(regression_slope(flat, flat + 2.0, 4).numpy(), 1.0)
    # Clipped: an inverted scene gives 0, an extreme gain SLOPE_MAX.
    assert float(regression_slope(c1, -c1, 4).max()) == 0.0
    assert float(regression_slope(c1, 10 * c1, 4).min()) == SLOPE_MAX
    # New networks get it by default (GAN-STFM and STFDCNN keep theirs); its radius widens
    # the receptive field, so tiles get the context they need.
    net = wrap(EDCSTFNNet(1, (4, 8, 8)))
    assert isinstance(net, AgnosticNet) and net.baseline_kind == "regression"
    assert net.radius == EDCSTFNNet(1, (4, 8, 8)).radius + REGRESSION_RADIUS
    assert net.config()["smooth"] == REGRESSION_RADIUS


def test_two_pairs_average_the_single_pair_predictions(checkpoints: dict[str, Path]) -> None:
    f1, c1, c2 = _scene(3, seed=1)
    g1, d1, _ = _scene(3, seed=2)
    pred = predict_arrays(checkpoints["edcstfn"], [(f1, c1), (g1, d1)], c2, tile=32, device="cpu")
    # Untrained: the mean of the two pairs' baselines (normalised by both fine images).
    both = np.concatenate([f1, g1], axis=1)
    expected = 0.5 * (
        regression_reference(f1, c1, c2, stats_of=both)
        + regression_reference(g1, d1, c2, stats_of=both)
    )
    np.testing.assert_allclose(pred, expected, atol=TOL)


def test_untrained_stfdcnn_is_its_fusion_model(checkpoints: dict[str, Path]) -> None:
    # STFDCNN's CNNs start as identities: its HPM fusion model on the inputs, i.e.
    # F_k + up(lsr(C_0 - C_k)) per pair; for a spatially uniform change that is additive.
    f1, c1, _ = _scene(3, size=32)
    c2 = c1 + np.float32(0.05)
    pred = predict_arrays(checkpoints["stfdcnn"], [(f1, c1), (f1, c1)], c2, tile=32, device="cpu")
    np.testing.assert_allclose(pred, f1 + c2 - c1, atol=TOL)


@pytest.mark.parametrize("model", [*sorted(MODELS), "stfdcnn"])
def test_every_method_predicts_1_3_and_6_bands(model: str, checkpoints: dict[str, Path]) -> None:
    cls = get_method(model)
    for bands in (1, 3, 6):
        f1, c1, c2 = _scene(bands, size=32)
        est = cls(weights=str(checkpoints[model]), tile=32, device="cpu")
        est.fit([(f1, c1)] * cls.tags.min_pairs)
        out = est.predict(c2)
        assert out.shape == (bands, 32, 32)
        assert np.isfinite(np.asarray(out)).all()


def test_tiled_equals_whole_scene(checkpoints: dict[str, Path]) -> None:
    # Per-scene statistics (not per tile) keep tiling exact for band-agnostic checkpoints.
    f1, c1, c2 = _scene(3, size=64, seed=3)
    ck = load_checkpoint(checkpoints["edcstfn"])
    net = ck.network()
    torch.manual_seed(0)
    for p in net.parameters():  # a non-zero correction, so the network itself is tested
        p.data.add_(torch.randn_like(p) * 0.05)
    ck.data["state_dict"] = net.state_dict()
    whole = predict_arrays(ck, [(f1, c1)], c2, tile=64, device="cpu")
    tiled = predict_arrays(ck, [(f1, c1)], c2, tile=16, device="cpu")
    np.testing.assert_allclose(tiled, whole, atol=1e-5)
    assert np.abs(whole - (f1 + c2 - c1)).max() > 1e-4


@pytest.mark.parametrize("model", sorted(MODELS))
def test_cpu_inference_band_by_band_equals_the_batch(
    model: str, checkpoints: dict[str, Path]
) -> None:
    """Inference on the CPU runs the bands one at a time (faster: the activations stay in the
    caches); the same numbers as the bands stacked as a batch, as training computes them."""
    net = load_checkpoint(checkpoints[model]).network().eval()
    torch.manual_seed(1)
    for p in net.parameters():  # a non-zero correction, so the network itself is tested
        p.data.add_(torch.randn_like(p) * 0.05)
    x = [torch.randn(2, 3, 32, 32) for _ in range(3)]
    with torch.no_grad():
        one_by_one = net(*x)
    with torch.enable_grad():
        batched = net(*x).detach()
    torch.testing.assert_close(one_by_one, batched, rtol=1e-5, atol=1e-5)


def test_ganstfm_predicts_without_a_coarse_reference(
    tmp_path: Path, checkpoints: dict[str, Path]
) -> None:
    f1, _, c2 = _scene(3, size=32)
    fine = write_tif(tmp_path / "F1_2001-10-17.tif", f1)
    coarse = write_tif(tmp_path / "C2_2001-11-02.tif", c2)
    out = tmp_path / "pred.tif"
    code, _, _ = run_cli(
        [
            "predict",
            "--method",
            "ganstfm",
            "--fine-ref",
            str(fine),
            "--coarse",
            str(coarse),
            "--param",
            f"weights={checkpoints['ganstfm']}",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert code == 0
    with rasterio.open(out) as src:
        pred = src.read()
    np.testing.assert_allclose(pred, _baseline("ganstfm", f1, f1, c2), atol=TOL)
    # A method that needs the reference's coarse image refuses --fine-ref.
    code, _, _ = run_cli(
        [
            "predict",
            "--method",
            "edcstfn",
            "--fine-ref",
            str(fine),
            "--coarse",
            str(coarse),
            "--out",
            str(tmp_path / "x.tif"),
        ]
    )
    assert code != 0


def test_the_fine_reference_is_read_with_the_fine_options(
    tmp_path: Path, checkpoints: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """A user trial: --fine-ref F was run as the pair (F, F) with the second F read with the
    coarse options, so --coarse-bands 3,1,2 reordered the reference's bands (RMSE 0.099 for
    0.037 on CIA, no warning), a x10000 reference with --fine-scale was refused as a scale
    mismatch with itself, and one --coarse-mask was counted for two coarse images."""
    f1, _, c2 = _scene(3, size=32)
    dn = write_tif(tmp_path / "F1_2001-10-17.tif", np.round(f1 * 1e4), dtype="int16")
    shuffled = write_tif(tmp_path / "C2_2001-11-02.tif", c2[[1, 2, 0]])  # stored 2,3,1
    clear = write_tif(tmp_path / "mask.tif", np.zeros(c2.shape[1:], np.uint8), dtype="uint8")
    out = tmp_path / "pred.tif"
    args = ["predict", "-m", "ganstfm", "--fine-ref", str(dn), "--coarse", str(shuffled)]
    args += ["--fine-scale", "1e-4", "--coarse-bands", "3,1,2", "--coarse-mask", str(clear)]
    args += ["-p", f"weights={checkpoints['ganstfm']}", "--out", str(out), "--quiet"]
    code, _, err = run_cli(args, capsys)
    assert code == 0, err
    with rasterio.open(out) as src:
        pred = src.read()
    f1q = np.round(f1 * 1e4).astype(np.float32) * np.float32(1e-4)
    np.testing.assert_allclose(pred, _baseline("ganstfm", f1q, f1q, c2), atol=TOL)


def test_ms_ssim_on_physical_values() -> None:
    # A 0.01 reflectance offset costs the same whether the network sees standardised values
    # (mean 0.2, std 0.01 here) or reflectance: MS-SSIM is computed after denormalising.
    rng = np.random.default_rng(0)
    y = torch.from_numpy(rng.uniform(0.1, 0.3, (2, 1, 48, 48)).astype(np.float32))
    x = y + 0.01
    mean, std = 0.2, 0.01
    plain = CompoundLoss(None, 1.0, alpha=1.0, beta=0.0)
    phys = CompoundLoss(None, torch.tensor([1.0]), alpha=1.0, beta=0.0, mean=[mean], std=[std])
    _, on_reflectance = plain(x, y)
    _, on_standardised = phys((x - mean) / std, (y - mean) / std)
    assert on_standardised["vision"] == pytest.approx(on_reflectance["vision"], rel=1e-3)
    stats = torch.tensor([[mean, std, 1.0]] * 2)
    _, per_sample = plain((x - mean) / std, (y - mean) / std, None, stats)
    assert per_sample["vision"] == pytest.approx(on_reflectance["vision"], rel=1e-3)


def test_training_across_band_sets_records_sites(tmp_path: Path) -> None:
    # Two sites with 3 and 6 bands train one band-agnostic checkpoint.
    rows = ["site,date,fine,coarse"]
    for site, bands in (("a", 3), ("b", 6)):
        for k, day in enumerate(("2001-10-08", "2001-10-17")):
            f1, c1, _ = _scene(bands, size=48, seed=10 * bands + k)
            f = write_tif(tmp_path / f"{site}_f_{k}.tif", f1)
            c = write_tif(tmp_path / f"{site}_c_{k}.tif", c1)
            rows.append(f"{site},{day},{f},{c}")
    (tmp_path / "catalog.csv").write_text("\n".join(rows) + "\n")
    cfg = TrainConfig(
        model="edcstfn",
        size="tiny",
        epochs=1,
        patch=16,
        batch=4,
        steps_per_epoch=2,
        ae_steps=2,
        threads=1,
        val_patches=4,
        device="cpu",
    )
    res = train(None, tmp_path / "m.ckpt", cfg, catalog=tmp_path / "catalog.csv")
    ck = load_checkpoint(res.checkpoint)
    assert ck.agnostic and ck.bands == 1
    assert ck.data["training_sites"] == {
        "a": ["2001-10-08", "2001-10-17"],
        "b": ["2001-10-08", "2001-10-17"],
    }
    assert [s["bands"] for s in ck.data["training_site_info"]] == [3, 6]
    assert ck.training_dates == ("2001-10-08", "2001-10-17")
    # Fine-tuning from it (--init CKPT) starts from its weights.
    res2 = train(
        None,
        tmp_path / "m2.ckpt",
        dataclasses.replace(cfg, init=str(res.checkpoint), epochs=1),
        catalog=tmp_path / "catalog.csv",
    )
    assert load_checkpoint(res2.checkpoint).agnostic
    # The baseline: regression by default; --baseline additive; fine-tuning keeps the
    # initial checkpoint's (an additive checkpoint written before the regression baseline).
    assert ck.data["network"]["agnostic"] == "regression"
    res3 = train(
        None,
        tmp_path / "m3.ckpt",
        dataclasses.replace(cfg, baseline="additive"),
        catalog=tmp_path / "catalog.csv",
    )
    assert load_checkpoint(res3.checkpoint).data["network"]["agnostic"] == "additive"
    res4 = train(
        None,
        tmp_path / "m4.ckpt",
        dataclasses.replace(cfg, init=str(res3.checkpoint)),
        catalog=tmp_path / "catalog.csv",
    )
    assert load_checkpoint(res4.checkpoint).data["network"]["agnostic"] == "additive"
    with pytest.raises(InvalidParameterError, match="baseline 'linear'"):
        dataclasses.replace(cfg, baseline="linear").validate()
    # Another size: refused from a checkpoint; from the shipped weights, fresh with a warning.
    with pytest.raises(InvalidParameterError, match="to fine-tune it give its --size, or"):
        train(
            None,
            tmp_path / "m5.ckpt",
            dataclasses.replace(cfg, size="small", init=str(res3.checkpoint)),
            catalog=tmp_path / "catalog.csv",
        )
    # A band-tied run from a band-agnostic checkpoint: the difference is --band-tied (a
    # user trial: the message said "give the same model and --size")
    one_site = tmp_path / "one_site.csv"
    one_site.write_text("\n".join(r for r in rows if not r.startswith("b,")) + "\n")
    with pytest.raises(InvalidParameterError, match="to fine-tune it give no --band-tied, or"):
        train(
            None,
            tmp_path / "m5.ckpt",
            dataclasses.replace(cfg, agnostic=False, init=str(res3.checkpoint)),
            catalog=one_site,
        )
    from stfusion.errors import STFusionWarning

    with pytest.warns(STFusionWarning, match="starting from fresh weights"):
        train(
            None,
            tmp_path / "m6.ckpt",
            dataclasses.replace(cfg, init="shipped"),
            catalog=tmp_path / "catalog.csv",
        )


def test_band_tied_checkpoints_still_load(tmp_path: Path) -> None:
    # Format 1 (one network per band set, training normalisation) predicts as before.
    path = random_checkpoint(tmp_path / "tied.ckpt", "edcstfn", 3, size="tiny")
    ck = load_checkpoint(path)
    assert not ck.agnostic
    f1, c1, c2 = _scene(3, size=32)
    out = predict_arrays(ck, [(f1, c1)], c2, tile=32, device="cpu")
    assert out.shape == (3, 32, 32)
    net = make_network("edcstfn", 3, "tiny")
    assert net.bands == 3


#: Target dates of the one-pair named cases: never a training date of the shipped weights.
NAMED_TARGETS = ("2001-11-02", "2001-07-11", "2004-12-28", "2020-03-17")


def check_shipped(model: str, tmp_path: Path) -> None:
    """The shipped weights of ``model``: small, band-agnostic, trained on the multi-site
    catalog (never on a one-pair named case's target), predict the bundled 6-band sample
    and a 2-band crop (since 2026-12-03 any band count is accepted: the format-1 refusal of
    other band counts that the per-method tests checked no longer applies)."""
    import warnings

    from stfusion.demo import sample_dir
    from stfusion.errors import STFusionWarning
    from stfusion.methods.deep import demo_weights
    from test_dl_data import DATES, write_cia_crop

    cls = get_method(model)
    path = demo_weights(model)
    assert path.name == f"{model}_multisite.ckpt" and path.stat().st_size < 2**20
    ck = load_checkpoint(path)
    assert ck.model == model and ck.agnostic
    # Trained with the model's default baseline (regression since 2026-12-04).
    from stfusion.dl.networks.agnostic import DEFAULT_BASELINES

    assert ck.data["network"]["agnostic"] == DEFAULT_BASELINES.get(model, "regression")
    assert ck.training_dates == cls.training_dates
    assert not set(NAMED_TARGETS) & set(ck.training_dates)
    assert set(ck.data["training_sites"]) == {"cia", "boreas", "s2", "kranj"}
    assert "catalog" in ck.meta["command"]
    d = sample_dir()
    ref = ["2001-10-17"] * cls.tags.min_pairs
    pairs = [(d / f"CIA_Landsat7_{x}.tif", d / f"CIA_MOD09GA_{x}.tif") for x in ref]
    with warnings.catch_warnings():
        warnings.simplefilter("error", STFusionWarning)
        est = cls().fit(pairs)  # weights="demo"
    pred = est.predict(d / "CIA_MOD09GA_2001-11-02.tif").values
    assert pred.shape == (6, 250, 250) and np.isfinite(pred).all()
    two = write_cia_crop(tmp_path, 32, DATES[1:], (2, 3))
    est = cls().fit([two[DATES[1]]] * cls.tags.min_pairs)
    assert est.predict(two[DATES[2]][1]).values.shape == (2, 32, 32)


def test_shipped_vitgan(tmp_path: Path) -> None:
    # The other methods' shipped weights are checked in their own test files; the weights
    # are part of the package, so a missing file fails (check_shipped), never skips.
    check_shipped("vitgan", tmp_path)


def test_a_scene_narrower_than_the_regression_box_is_warned_about() -> None:
    """An inference trial: on a 3 x 3 px scene the shipped networks scored about 4x the
    additive RMSE (the regression baseline's slopes fitted on nine pixels), without a word."""
    import warnings

    from stfusion.demo import sample_dir
    from stfusion.errors import STFusionWarning
    from stfusion.io import FileSource

    d = sample_dir()
    f1 = FileSource(str(d / "CIA_Landsat7_2001-10-08.tif")).read()
    c1 = FileSource(str(d / "CIA_MOD09GA_2001-10-08.tif")).read()
    edcstfn = get_method("edcstfn")
    with pytest.warns(STFusionWarning, match=r"\(3 x 3 px\) is narrower than the 49 px box"):
        edcstfn().fit([(f1[:, :3, :3], c1[:, :3, :3])])
    with warnings.catch_warnings():
        warnings.simplefilter("error", STFusionWarning)
        edcstfn().fit([(f1[:, :64, :64], c1[:, :64, :64])])
