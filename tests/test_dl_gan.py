"""GAN-STFM and the generic adversarial loop: generator, discriminator registry, GAN losses,
an overfit run that must beat the additive baseline with a healthy D/G balance, resume,
tiled prediction without seams, the CLI."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from click.testing import CliRunner  # noqa: E402

from dl_helpers import overfit_gan, pair_args, quick_args  # noqa: E402
from stfusion.dl.checkpoint import load_checkpoint  # noqa: E402
from stfusion.dl.losses import (  # noqa: E402
    SpectralLoss,
    discriminator_loss,
    feature_matching,
    generator_loss,
    ms_ssim,
    n_scales,
    spectral_angle,
)
from stfusion.dl.networks import make_network, network_class  # noqa: E402
from stfusion.dl.networks.discriminators import (  # noqa: E402
    PatchGAN,
    discriminator_class,
    has_features,
)
from stfusion.dl.train import TrainConfig, log_paths, train  # noqa: E402
from stfusion.errors import InvalidParameterError, STFusionWarning  # noqa: E402
from stfusion.methods.deep import GANSTFM  # noqa: E402
from stfusion.run_config import TrainSettings  # noqa: E402
from test_dl_data import DATES, write_cia_crop  # noqa: E402

#: Tiled vs whole-scene tolerance (same arithmetic up to summation order), as test_dl_predict.
SEAM_TOL = 1e-5
#: Side of the fixed patches of the overfit test.
P = 24

TINY = TrainConfig(
    model="ganstfm",
    size="tiny",
    epochs=2,
    patch=16,
    batch=4,
    steps_per_epoch=3,
    ae_steps=3,
    val_fraction=0.3,
    threads=1,
    seed=0,
    val_patches=8,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    return write_cia_crop(tmp_path_factory.mktemp("cia"), size=48, bands=(2, 3))


@pytest.fixture(scope="module")
def trained(files: dict, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ckpt") / "gan.ckpt"
    train([files[d] for d in DATES[:2]], out, TINY)
    return out


# --- networks -------------------------------------------------------------------------------


def test_generator_shapes_sizes_and_registry() -> None:
    cls = network_class("ganstfm")
    assert cls.adversarial and cls.discriminator == "patchgan" and cls.max_pairs == 1
    for bands in (1, 6):
        net = make_network("ganstfm", bands, "tiny")
        x = [torch.randn(2, bands, 24, 40) for _ in range(3)]
        assert net(*x).shape == (2, bands, 24, 40)
    # The paper size is the width of the authors' code (16, 32, 64, 128); its parameter
    # count for 6 bands, from the layer list in docs/methods/ganstfm.md.
    assert make_network("ganstfm", 6, "paper").channels == (16, 32, 64, 128)
    counts = [make_network("ganstfm", 6, s).n_parameters() for s in ("tiny", "small", "paper")]
    assert counts == [36_942, 145_578, 578_082]
    with pytest.raises(InvalidParameterError, match="size 'huge'"):
        make_network("ganstfm", 6, "huge")
    with pytest.raises(InvalidParameterError, match=r"unknown network 'nope'.*ganstfm"):
        network_class("nope")


def test_generator_receptive_field_and_reference_inputs() -> None:
    """An output pixel depends on inputs exactly within ``radius`` (8) of it; the coarse
    image of the reference date is not an input."""
    torch.manual_seed(0)
    net = make_network("ganstfm", 3, "tiny").double().eval()
    h = 48
    x = [torch.randn(1, 3, h, h, dtype=torch.float64) for _ in range(3)]
    base = net(*x)
    reach = 0
    for k in (0, 2):
        y = [t.clone() for t in x]
        y[k][0, :, 24, 24] += 1.0
        changed = torch.nonzero((net(*y) - base).abs().sum(1)[0] > 0)
        reach = max(reach, int((changed - torch.tensor([24, 24])).abs().max()))
    assert reach == net.radius == 8
    y = [x[0], torch.randn_like(x[1]), x[2]]
    assert torch.equal(net(*y), base)


def test_discriminator_registry_and_interface() -> None:
    assert discriminator_class("patchgan") is PatchGAN
    with pytest.raises(InvalidParameterError, match=r"unknown discriminator 'nope'.*patchgan"):
        discriminator_class("nope")
    with pytest.raises(InvalidParameterError, match=r"unknown discriminator 'nope'"):
        dataclasses.replace(TINY, discriminator="nope").validate()
    with pytest.raises(InvalidParameterError, match="not a GAN"):
        dataclasses.replace(TINY, model="edcstfn", discriminator="patchgan").validate()
    assert TINY.resolved().discriminator == "patchgan" and TINY.resolved().content == "l1"
    cond, img = torch.randn(2, 3, 32, 32), torch.randn(2, 3, 32, 32)
    d = PatchGAN(6, "tiny")
    logits = d(cond, img)
    assert [tuple(t.shape) for t in logits] == [(2, 1, 8, 8), (2, 1, 4, 4), (2, 1, 2, 2)]
    _, feats = d.features(cond, img)
    assert has_features(d) and len(feats) == 3 and all(len(f) == 3 for f in feats)
    assert d.config() == {"name": "patchgan", "bands_in": 6, "size": "tiny"}
    # Every registered discriminator follows the interface (the constructor and forward).
    from stfusion.dl.networks.discriminators import _registry

    for name, cls in _registry().items():
        out = cls(6, "tiny")(cond[..., :16, :16], img[..., :16, :16])
        assert isinstance(out, list) and out, name
        assert all(t.shape[:2] == (2, 1) and torch.isfinite(t).all() for t in out), name


# --- losses ---------------------------------------------------------------------------------


def test_spectral_losses_sane() -> None:
    torch.manual_seed(0)
    x = torch.rand(2, 4, 8, 8) + 0.1
    assert float(spectral_angle(x, x)) == pytest.approx(0.0, abs=1e-3)
    assert float(spectral_angle(x, 3.0 * x)) == pytest.approx(0.0, abs=1e-3)  # brightness
    a = torch.tensor([1.0, 0.0]).view(1, 2, 1, 1)
    b = torch.tensor([1.0, 1.0]).view(1, 2, 1, 1)
    c = torch.tensor([0.0, 2.0]).view(1, 2, 1, 1)
    assert float(spectral_angle(a, b)) == pytest.approx(math.pi / 4, rel=1e-5)
    assert float(spectral_angle(a, c)) == pytest.approx(math.pi / 2, rel=1e-5)
    # The loss works on physical values: normalised inputs are mapped back first.
    mean, std = torch.tensor([0.1, 0.2, 0.3, 0.4]), torch.tensor([0.05, 0.1, 0.1, 0.2])
    loss = SpectralLoss(mean, std)
    xn = (x - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)
    yn = (2.0 * x - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)
    assert float(loss(xn, xn)) == pytest.approx(0.0, abs=1e-6)
    assert float(loss(yn, xn)) == pytest.approx(0.0, abs=1e-6)  # same angle, other brightness
    noisy = xn + torch.randn_like(xn)
    theta = spectral_angle(noisy * std.view(1, -1, 1, 1) + mean.view(1, -1, 1, 1), x)
    assert float(loss(noisy, xn)) == pytest.approx(1 - math.cos(float(theta)), rel=0.5)
    mask = torch.zeros(2, 1, 8, 8, dtype=torch.bool)
    mask[..., :4] = True
    far = noisy.clone()
    far[..., 4:] = -far[..., 4:]
    assert float(loss(noisy, xn, mask)) == pytest.approx(float(loss(far, xn, mask)), rel=1e-6)


def test_ms_ssim_scales_for_gan_patches() -> None:
    """The vision loss uses as many MS-SSIM scales as the patch allows."""
    assert [n_scales(p) for p in (16, 32, 64, 128)] == [1, 2, 3, 4]
    x = torch.rand(2, 3, 32, 32)
    assert float(ms_ssim(x, x, normalize=True)) == pytest.approx(1.0, abs=1e-6)
    y = (x + 0.3 * torch.randn_like(x)).clamp(0, 1)
    assert 0.0 < float(ms_ssim(x, y, normalize=True)) < 1.0


def test_gan_losses_values() -> None:
    one, zero = [torch.ones(2, 1, 4, 4)], [torch.zeros(2, 1, 4, 4)]
    assert float(discriminator_loss(one, zero, "lsgan")) == 0.0  # perfect discriminator
    assert float(generator_loss(zero, "lsgan")) == pytest.approx(0.5)
    assert float(discriminator_loss(zero, zero, "lsgan")) == pytest.approx(0.5)
    assert float(discriminator_loss(one, zero, "lsgan", smooth=0.1)) == pytest.approx(0.005)
    assert float(discriminator_loss(one, [-o for o in one], "hinge")) == 0.0
    assert float(generator_loss(one, "hinge")) == -1.0
    with pytest.raises(ValueError, match="GAN loss"):
        generator_loss(one, "wgan")
    f = [[torch.randn(1, 2, 3, 3)]]
    assert float(feature_matching(f, f)) == 0.0


# --- training -------------------------------------------------------------------------------


def test_gan_overfits_fixed_patches_and_stays_balanced() -> None:
    """60 adversarial steps on 8 fixed patches (small networks, batch = the 8 patches): the
    generator beats the additive baseline F1 + C2 - C1 on them (RMSE, reflectance; about
    0.023 vs 0.036), nothing is NaN, and the D/G loss ratio stays within
    dl_helpers.RATIO_BOUNDS at every step (about 0.2 to 4 here). 24 px patches keep it fast
    (2 MS-SSIM scales)."""
    cfg = TrainConfig(model="ganstfm", size="small", lr=3e-3, beta=0.0).resolved()
    _, rmse, additive = overfit_gan(cfg, P)  # with its checks (NaN, ratio, content falls)
    assert rmse < additive, (rmse, additive)


def test_train_logs_and_checkpoint(trained: Path) -> None:
    ck = load_checkpoint(trained)
    assert ck.model == "ganstfm" and ck.data["network"]["size"] == "tiny"
    assert ck.data["config"]["discriminator"] == "patchgan"
    assert ck.data["config"]["content"] == "l1" and ck.data["monitor"] == "val_rmse"
    assert ck.data["discriminator"]["name"] == "patchgan"
    assert {"discriminator", "state_dict", "lightning"} <= set(ck.data["resume"])
    assert "autoencoder" in ck.data  # the feature loss (beta = 1 by default)
    best = min(ck.data["history"], key=lambda r: r["val_rmse"])
    assert ck.data["best_epoch"] == best["epoch"] and ck.data["best_val_loss"] == best["val_rmse"]
    csv_path, png_path = log_paths(trained)
    header = csv_path.read_text().splitlines()[0].split(",")
    for col in (
        "train_loss",
        "content",
        "vision",
        "spectral",
        "g_adv",
        "d_loss",
        "d_real",
        "d_fake",
        "ratio_min",
        "ratio_max",
        "val_rmse",
        "val_rmse_additive",
    ):
        assert col in header, col
    assert png_path.stat().st_size > 0
    rows = ck.data["history"]
    assert all(np.isfinite([r["d_loss"], r["g_adv"], r["val_rmse"]]).all() for r in rows)


def test_resume_continues_both_networks(files: dict, tmp_path: Path) -> None:
    pairs = [files[d] for d in DATES[:2]]
    cfg = dataclasses.replace(TINY, beta=0.0, fm_weight=1.0, clip=5.0, label_smoothing=0.1)
    straight, resumed = tmp_path / "a.ckpt", tmp_path / "b.ckpt"
    train(pairs, straight, dataclasses.replace(cfg, epochs=3))
    train(pairs, resumed, cfg)
    r = train(pairs, resumed, dataclasses.replace(cfg, epochs=3), resume=True)
    assert [h["epoch"] for h in r.history] == [1, 2, 3]
    a, b = load_checkpoint(straight).data, load_checkpoint(resumed).data
    for part in ("state_dict", "discriminator"):
        for key, value in a["resume"][part].items():
            assert torch.equal(value, b["resume"][part][key]), (part, key)
    assert a["history"][-1]["d_loss"] == b["history"][-1]["d_loss"]
    assert a["best_epoch"] == b["best_epoch"]


def test_predict_tiled_equals_whole_any_reference_date(trained: Path, files: dict) -> None:
    est = GANSTFM(weights=str(trained), tile=16).fit([files[DATES[1]]])
    # Receptive field: the generator's 8 px plus the 8 px box of its baseline (band-agnostic).
    assert est.halo() == est.overlap_ >= est.predictor_.radius == 16
    tiled = est.predict(files[DATES[2]][1]).values
    whole = GANSTFM(weights=str(trained), tile=256).fit([files[DATES[1]]])
    np.testing.assert_allclose(tiled, whole.predict(files[DATES[2]][1]).values, atol=SEAM_TOL)
    assert np.isfinite(tiled).all() and 0.0 < float(tiled.mean()) < 0.6
    with pytest.warns(STFusionWarning, match="seams"):
        GANSTFM(weights=str(trained), tile=16, overlap=2).fit([files[DATES[1]]])
    # The reference may be any date, also after the target.
    later = GANSTFM(weights=str(trained)).fit([files[DATES[2]]]).predict(files[DATES[1]][1])
    assert np.isfinite(later.values).all()
    with pytest.raises(InvalidParameterError, match="exactly 1"):
        GANSTFM(weights=str(trained)).fit([files[DATES[0]], files[DATES[2]]])


def test_train_command_gan_options(files: dict, tmp_path: Path) -> None:
    from stfusion.cli.train import train as train_cmd

    out = tmp_path / "cli.ckpt"
    args = [
        "--model",
        "ganstfm",
        *quick_args(out, "--size", "tiny"),
        "--feature-weight",
        "0",
        "--gan-loss",
        "hinge",
        "--adv-weight",
        "0.01",
        "--d-lr",
        "0.0004",
        "--sam-weight",
        "0.5",
    ]
    args += pair_args(files[d] for d in DATES[:2])
    # the spectral-angle term is zero on a band-agnostic network's one-band samples: said,
    # and not recorded as used (a trial: two runs with 5 and 0 gave the same weights)
    with pytest.warns(STFusionWarning, match="--sam-weight: the spectral-angle loss needs two"):
        res = CliRunner().invoke(train_cmd, args)
    assert res.exit_code == 0, res.output
    assert "G adv" in res.output
    ck = load_checkpoint(out)
    cfg = ck.data["config"]
    got = (cfg["gan_loss"], cfg["adv_weight"], cfg["d_lr"], cfg["beta"])
    assert got == ("hinge", 0.01, 4e-4, 0.0)
    assert cfg["sam_weight"] == TrainSettings.sam_weight
    assert "autoencoder" not in ck.data
    assert "--gan-loss hinge" in ck.meta["command"] and "--d-lr 0.0004" in ck.meta["command"]
    bad = CliRunner().invoke(train_cmd, [*args, "--discriminator", "nope", "--overwrite"])
    assert bad.exit_code != 0 and "unknown discriminator" in str(bad.exception)


def test_demo_weights(tmp_path: Path) -> None:
    """The shipped weights (test_dl_agnostic.check_shipped; since 2026-12-03 band-agnostic
    and multi-site, so other band counts are predicted, not refused)."""
    from test_dl_agnostic import check_shipped

    check_shipped("ganstfm", tmp_path)


def test_coarse_ref_use_cancels_the_sensor_offset(tmp_path: Path) -> None:
    """``coarse_ref=use`` (default): the baseline subtracts box(C1) instead of box(F1), so the
    prediction moves by exactly box(F1) - box(C1) (17 px box; away from the scene edge, where
    the tile padding changes the box); with --fine-ref's pair (F1, F1) nothing changes."""
    from scipy.ndimage import uniform_filter

    from stfusion.io import FileSource
    from stfusion.methods.deep import GANSTFM
    from test_dl_data import DATES, write_cia_crop

    crop = write_cia_crop(tmp_path, 64, DATES[1:])
    f1, c1 = crop[DATES[1]]
    c2 = crop[DATES[2]][1]

    def run(pair: tuple[Path, Path], coarse_ref: str) -> np.ndarray:
        est = GANSTFM(coarse_ref=coarse_ref, device="cpu").fit([pair])
        return est.predict(c2).values.astype(np.float64)

    use, ignore = run((f1, c1), "use"), run((f1, c1), "ignore")
    box = [
        uniform_filter(a, (1, 17, 17), mode="nearest")
        for a in (FileSource(str(f1)).read(), FileSource(str(c1)).read())
    ]
    inner = (slice(None), slice(16, -16), slice(16, -16))
    np.testing.assert_allclose((use - ignore)[inner], (box[0] - box[1])[inner], atol=2e-5)
    assert np.abs(box[0] - box[1])[inner].max() > 1e-3  # the offset is not trivially zero
    np.testing.assert_array_equal(run((f1, f1), "use"), run((f1, f1), "ignore"))
