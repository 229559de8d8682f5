"""STFDCNN: network shapes and parameters, HPM, pair weights, training, checkpoints, tiling."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from stfusion.dl.checkpoint import load_checkpoint  # noqa: E402
from stfusion.dl.infer_stfdcnn import load_network  # noqa: E402
from stfusion.dl.networks.stfdcnn import (  # noqa: E402
    GAIN_LIMIT,
    STFDCNNNet,
    box_mean,
    choose_factor,
    high_pass_modulation,
    pair_weights,
)
from stfusion.dl.train import TrainConfig, log_paths  # noqa: E402
from stfusion.dl.train_stfdcnn import STFDCNNConfig, train_stfdcnn  # noqa: E402
from stfusion.errors import InvalidParameterError, STFusionWarning  # noqa: E402
from stfusion.methods.deep_stfdcnn import STFDCNN, STFDCNN_DEMO_DATES  # noqa: E402
from test_dl_data import DATES, write_cia_crop  # noqa: E402

#: Band-tied (checkpoint format 1): these tests cover the paper's network and HPM in physical
#: units with the training statistics; the band-agnostic residual form is tested in
#: test_dl_agnostic.py (1/3/6 bands, its untrained fusion model).
TINY = STFDCNNConfig(
    size="tiny",
    epochs=2,
    patch=16,
    batch=4,
    steps_per_epoch=3,
    val_fraction=0.3,
    threads=1,
    seed=0,
    val_patches=8,
    agnostic=False,
)
#: Tiled vs whole-scene tolerance with the overlap covering the receptive field.
SEAM_TOL = 1e-5
PAIRS = (DATES[0], DATES[2])  # cia-2pair: 10-08 and 11-02 bracket the target 10-17

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    return write_cia_crop(tmp_path_factory.mktemp("cia"), size=64, bands=(2, 3))


@pytest.fixture(scope="module")
def trained(files: dict, tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    """Tiny STFDCNNs (LSR factor 2 and 4) trained for a few steps on the two pair dates."""
    d = tmp_path_factory.mktemp("ckpt")
    out = {}
    for factor in (2, 4):
        cfg = dataclasses.replace(TINY, epochs=1, factor=factor, window=2)
        out[factor] = train_stfdcnn(
            [files[x] for x in PAIRS],
            d / f"f{factor}.ckpt",
            cfg,
            meta={"command": "stfusion train ...", "notes": "x"},
        ).checkpoint
    return out


def fit(weights: Path, files: dict, pairs: tuple[str, ...] = PAIRS, **kw) -> STFDCNN:
    return STFDCNN(weights=str(weights), **kw).fit([files[d] for d in pairs])


def inputs(n: int, bands: int = 3, size: int = 32, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(1, bands, size, size, generator=g) for _ in range(n)]


# ------------------------------------------------------------------------------ network


def test_shapes_and_parameter_counts() -> None:
    # One SRCNN 9-1-5 with 64/32 maps on one band has 8,129 parameters (Dong et al. 2016).
    one = STFDCNNNet(1, (64, 32))
    assert one.n_parameters() == 2 * 8129
    assert STFDCNNNet(6, (64, 32)).n_parameters() == 76108
    assert STFDCNNNet(6, (32, 16)).n_parameters() == 2 * (
        9 * 9 * 6 * 32 + 32 + 32 * 16 + 16 + 5 * 5 * 16 * 6 + 6
    )
    net = STFDCNNNet(3, (8, 4), factor=4, window=2).eval()
    f1, c1, f2, c2, c0 = inputs(5)
    ones = torch.ones(1, 1, 32, 32)
    with torch.no_grad():
        assert net.transitional(c0).shape == (1, 3, 8, 8)  # the LSR grid
        assert net.super_resolve(net.lsr(f1)).shape == (1, 3, 32, 32)
        assert net(f1, c1, c0).shape == (1, 3, 32, 32)
        assert net.predict_pairs([f1, f2], [c1, c2], c0, [ones, ones]).shape == (1, 3, 32, 32)
    assert net.multiple == 4 and net.config()["factor"] == 4
    with pytest.raises(ValueError, match="multiples of 4"):
        net(*inputs(3, size=30))
    # factor and window live in the state dict: a default-built net takes them on load.
    other = STFDCNNNet(3, (8, 4))
    other.load_state_dict(net.state_dict())
    assert (other.factor, other.window, other.radius) == (4, 2, net.radius)


def test_choose_factor() -> None:
    # The divisor of the ratio closest to its square root: 100 m transitional grid for
    # 500 m / 50 m, 120 m for 480 m / 30 m.
    assert [choose_factor(r) for r in (10, 16, 20, 30, 7, None)] == [2, 4, 4, 5, 3, 2]


def test_receptive_field_radius() -> None:
    """Perturbing one input pixel changes outputs only within ``radius`` (all parities)."""
    torch.manual_seed(0)
    for factor, window in ((2, 3), (3, 7)):
        net = STFDCNNNet(2, (8, 4), factor, window, mean=[0.2, 0.3], std=[0.05, 0.05]).eval()
        size = (net.radius // factor + 2) * 2 * factor
        base_in = inputs(5, 2, size, seed=1)
        ones = [torch.ones(1, 1, size, size)] * 2
        with torch.no_grad():
            base = net.predict_pairs(base_in[:2], base_in[2:4], base_in[4], ones)
            reach = 0
            for i in (0, 2, 4):  # a fine and a coarse reference, the coarse target
                for p in range(size // 2 - factor, size // 2):
                    x = [t.clone() for t in base_in]
                    x[i][0, :, p, p] += 3.0
                    d = (net.predict_pairs(x[:2], x[2:4], x[4], ones) - base).abs().amax(1)[0]
                    hit = torch.nonzero(d > 0)
                    if len(hit):
                        reach = max(reach, int((hit - p).abs().max()))
        assert 0 < reach <= net.radius
        assert reach >= net.radius - 3 * factor  # the declared radius is not far too large


# ------------------------------------------------------------------------- fusion model


def test_hpm_hand_example() -> None:
    # T_0 = 0.3, T_k = 0.2, L_k = 0.25: 0.3 + (0.3 / 0.2) * (0.25 - 0.2) = 0.375 = L_k T_0/T_k
    t0, tk, lk = (torch.tensor([[[[v]]]]) for v in (0.3, 0.2, 0.25))
    floor = torch.tensor([[[[0.01]]]])
    assert float(high_pass_modulation(t0, tk, lk, floor)) == pytest.approx(0.375)
    # Guards: denominator floored, gain clipped, additive where the band mean is not positive.
    tiny = torch.tensor([[[[1e-4]]]])
    out = high_pass_modulation(t0, tiny, lk, floor)  # gain 0.3 / 0.01 = 30 -> GAIN_LIMIT
    assert float(out) == pytest.approx(0.3 + GAIN_LIMIT * (0.25 - 1e-4))
    out = high_pass_modulation(t0, tk, lk, torch.zeros_like(floor))
    assert float(out) == pytest.approx(0.3 + 0.25 - 0.2)
    # The network's HPM works in physical units on normalised tensors.
    net = STFDCNNNet(1, (4, 2), mean=[0.2], std=[0.1])
    norm = [(v - 0.2) / 0.1 for v in (t0, tk, lk)]
    assert float(net.hpm(*norm) * 0.1 + 0.2) == pytest.approx(0.375, abs=1e-6)


def test_pair_weights() -> None:
    # w_1 = (1/v_1) / (1/v_1 + 1/v_2): the pair that changed less weighs more.
    w = pair_weights(torch.tensor([0.01, 0.03, 0.0]), torch.tensor([0.03, 0.01, 0.0]))
    np.testing.assert_allclose(w.numpy(), [0.75, 0.25, 0.5], atol=1e-4)
    x = torch.arange(25.0).reshape(1, 1, 5, 5)
    assert float(box_mean(x, 1)[0, 0, 2, 2]) == pytest.approx(12.0)
    # In the network: a pair whose coarse image equals the target's takes (almost) all weight;
    # a pair invalid at a pixel gives its weight to the other.
    net = STFDCNNNet(2, (8, 4), factor=2, window=1, mean=[0.2, 0.3], std=[0.05, 0.05]).eval()
    f1, c1, f2, c2 = inputs(4, 2)
    ones = torch.ones(1, 1, 32, 32)
    with torch.no_grad():
        assert float(net.pair_weight([c1, c2], c1).min()) > 0.999
        both = net.predict_pairs([f1, f2], [c1, c2], c1, [ones, ones])
        np.testing.assert_allclose(both.numpy(), net(f1, c1, c1).numpy(), atol=1e-3)
        only1 = ones.clone()
        only1[..., :16, :] = 0
        mixed = net.predict_pairs([f1, f2], [c1, c2], c2, [ones, only1])
        alone = net(f1, c1, c2)
        # Fine rows 0-4 see only LSR rows 0-7 (pair 2 invalid there) through the SR CNN.
        np.testing.assert_allclose(mixed[..., :5, :].numpy(), alone[..., :5, :].numpy(), atol=1e-5)
        assert np.abs(mixed[..., 20:, :].numpy() - alone[..., 20:, :].numpy()).max() > 1e-3


# ------------------------------------------------------------------------------ training


def test_training_reduces_loss(files: dict, tmp_path: Path) -> None:
    cfg = dataclasses.replace(
        TINY, epochs=5, steps_per_epoch=6, lr=3e-3, patience=100, augment=False
    )
    r = train_stfdcnn([files[d] for d in PAIRS], tmp_path / "m.ckpt", cfg)
    losses = [h["train_loss"] for h in r.history]
    assert len(losses) == 5 and losses[-1] < 0.7 * losses[0]
    assert r.history[-1]["val_loss"] < r.history[0]["val_loss"]
    for key in ("train_nlm", "train_sr", "val_nlm", "val_sr", "val_rmse", "val_rmse_additive"):
        assert np.isfinite(r.history[-1][key])


def test_checkpoint_round_trip(trained: dict, files: dict) -> None:
    ck = load_checkpoint(trained[2])
    assert ck.model == "stfdcnn" and ck.bands == 2 and ck.band_names == ("red", "nir")
    assert ck.training_dates == PAIRS
    assert ck.data["network"] == {
        "network": "stfdcnn",
        "bands": 2,
        "channels": [16, 8],
        "factor": 2,
        "window": 2,
        "size": "tiny",
    }
    assert ck.data["config"]["factor"] == 2 and ck.meta["command"] == "stfusion train ..."
    assert ck.meta["seconds"] > 0 and ck.data["epoch"] == 1 and "resume" in ck.data
    net = load_network(ck)
    np.testing.assert_allclose(net.norm_mean.numpy(), ck.mean)
    assert load_network(load_checkpoint(trained[4])).factor == 4
    x = inputs(3, 2)
    with torch.no_grad():
        assert net(*x).shape == (1, 2, 32, 32)
    csv_path, png_path = log_paths(trained[2])
    assert csv_path.exists() and png_path.exists()
    assert "val_rmse_additive" in csv_path.read_text().splitlines()[0]


def test_train_config_and_resume(files: dict, tmp_path: Path) -> None:
    # The CLI's TrainConfig is accepted (its shared options); the factor comes from the ratio.
    cfg = STFDCNNConfig.from_train_config(
        TrainConfig(
            model="edcstfn",
            size="tiny",
            epochs=3,
            patch=16,
            batch=4,
            steps_per_epoch=2,
            val_fraction=0.3,
            threads=1,
        ),
        window=2,
    )
    assert (cfg.model, cfg.size, cfg.epochs, cfg.factor, cfg.window) == ("stfdcnn", "tiny", 3, 0, 2)
    pairs = [files[d] for d in PAIRS]
    one = train_stfdcnn(pairs, tmp_path / "a.ckpt", cfg)
    train_stfdcnn(pairs, tmp_path / "b.ckpt", dataclasses.replace(cfg, epochs=2))
    two = train_stfdcnn(pairs, tmp_path / "b.ckpt", dataclasses.replace(cfg, epochs=3), resume=True)
    assert one.epochs == two.epochs == 3
    a, b = load_checkpoint(one.checkpoint), load_checkpoint(two.checkpoint)
    for k, v in a.data["resume"]["state_dict"].items():
        torch.testing.assert_close(v, b.data["resume"]["state_dict"][k], rtol=0, atol=0)
    with pytest.raises(InvalidParameterError, match="multiple of the transitional factor"):
        train_stfdcnn(pairs, tmp_path / "c.ckpt", dataclasses.replace(TINY, factor=3))
    # Options it cannot use are refused, not silently dropped.
    base = TrainConfig(model="stfdcnn", size="tiny")
    with pytest.raises(InvalidParameterError, match="--baseline additive does not apply"):
        STFDCNNConfig.from_train_config(dataclasses.replace(base, baseline="additive"))
    with pytest.raises(InvalidParameterError, match=r"--init other\.ckpt: stfdcnn"):
        STFDCNNConfig.from_train_config(dataclasses.replace(base, init="other.ckpt"))


# ---------------------------------------------------------------------------- prediction


def test_needs_exactly_two_pairs(trained: dict, files: dict) -> None:
    with pytest.raises(InvalidParameterError, match="exactly 2 pairs, got 1"):
        fit(trained[2], files, pairs=(DATES[0],))
    with pytest.raises(InvalidParameterError, match="exactly 2 pairs, got 3"):
        fit(trained[2], files, pairs=DATES)


@pytest.mark.parametrize("factor", [2, 4])
def test_tiled_equals_whole(factor: int, trained: dict, files: dict) -> None:
    """16 px tiles with the default overlap (>= receptive field) equal one whole-scene tile;
    an overlap below the receptive field shows seams (and warns)."""
    target = files[DATES[1]][1]
    est = fit(trained[factor], files)
    assert est.training_dates_ == PAIRS
    assert est.halo() == est.overlap_ >= est.predictor_.radius
    assert est.overlap_ % factor == 0
    whole = est.predict(target).values
    assert whole.shape == (2, 64, 64) and np.isfinite(whole).all()
    assert 0.0 < float(whole.mean()) < 0.6
    tiled = fit(trained[factor], files, tile=16).predict(target).values
    np.testing.assert_allclose(tiled, whole, rtol=0, atol=SEAM_TOL)
    with pytest.warns(STFusionWarning, match="seams"):
        seamed = fit(trained[factor], files, tile=16, overlap=factor).predict(target).values
    assert np.abs(seamed - whole).max() > 10 * SEAM_TOL
    with pytest.raises(InvalidParameterError, match=f"multiples of {factor}"):
        fit(trained[factor], files, tile=18 if factor == 4 else 15)


def test_demo_weights(tmp_path: Path) -> None:
    """The shipped weights (test_dl_agnostic.check_shipped; since 2026-12-03 band-agnostic
    and multi-site, so other band counts are predicted, not refused)."""
    from test_dl_agnostic import check_shipped

    assert STFDCNN.training_dates == STFDCNN_DEMO_DATES
    check_shipped("stfdcnn", tmp_path)


def test_pairs_that_do_not_bracket_the_target_are_said(trained: dict, files: dict) -> None:
    """A trial: pairs 10-08 and 10-17 for the target 11-02 (dates from the file names) ran
    without a word, though STFDCNN weights one pair before and one after the target."""
    import warnings

    est = STFDCNN(weights=str(trained[2])).fit(
        [files[d] for d in DATES[:2]], pair_dates=list(DATES[:2]), target_date=DATES[2]
    )
    with pytest.warns(STFusionWarning, match=r"target date 2001-11-02 is not between the pair"):
        est.predict(files[DATES[2]][1])
    est = STFDCNN(weights=str(trained[2])).fit(
        [files[d] for d in PAIRS], pair_dates=list(PAIRS), target_date=DATES[1]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", STFusionWarning)
        est.predict(files[DATES[1]][1])  # bracketed: nothing said
