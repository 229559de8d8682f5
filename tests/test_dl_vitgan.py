"""The transformer GAN (vitgan): L2 attention, ISN, patches, SLN, windows, tiling, training."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import torch.nn.functional as F  # noqa: E402

from dl_helpers import overfit_gan  # noqa: E402
from stfusion.dl.checkpoint import save_checkpoint  # noqa: E402
from stfusion.dl.infer import Predictor, predict_arrays  # noqa: E402
from stfusion.dl.networks import make_network, network_class  # noqa: E402
from stfusion.dl.networks.discriminators import make_discriminator  # noqa: E402
from stfusion.dl.networks.vitgan import (  # noqa: E402
    GENERATOR_SIZES,
    ImprovedSpectralNorm,
    L2Attention,
    OverlappingPatchEmbed,
    SelfModulatedLayerNorm,
    ViTGANGenerator,
    WindowAttention,
    isn,
    partition,
    receptive_radius,
    region_mask,
    token_reach,
    unpartition,
    window_labels,
    window_mean,
)
from test_dl_data import DATES, write_cia_crop  # noqa: E402

#: Tiled vs whole-scene tolerance: same arithmetic up to the order of floating-point sums.
SEAM_TOL = 1e-5

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _scramble(net: torch.nn.Module, seed: int = 0, scale: float = 0.2) -> None:
    """Give every parameter random values (an untrained generator is the additive baseline,
    which would make receptive-field and tiling tests trivial)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * scale)


# --- discriminator pieces ---------------------------------------------------------------------


def test_l2_attention_tied_and_negative_squared_distance() -> None:
    torch.manual_seed(0)
    att = L2Attention(16, heads=2).double()
    names = {n.split(".")[0] for n, _ in att.named_parameters()}
    assert names == {"qk", "v", "proj"}  # one projection serves as query and key
    x = torch.randn(3, 10, 16, dtype=torch.float64)
    logits = att.logits(x)
    q = att.qk(x).reshape(3, 10, 2, 8).transpose(1, 2)
    expected = -(torch.cdist(q, q) ** 2) / math.sqrt(8)
    torch.testing.assert_close(logits, expected)
    assert (logits <= 1e-12).all()
    torch.testing.assert_close(logits, logits.transpose(-1, -2))  # symmetric: W_q = W_k
    # Each token's largest logit is itself (distance 0): attention is local in feature space.
    diag = logits.diagonal(dim1=-2, dim2=-1)
    torch.testing.assert_close(diag, torch.zeros_like(diag))
    assert att(x).shape == x.shape


def test_isn_rescales_to_initial_spectral_norm() -> None:
    torch.manual_seed(0)
    lin = torch.nn.Linear(12, 20)
    w0 = lin.weight.detach().clone()
    sigma0 = torch.linalg.matrix_norm(w0, ord=2)
    isn(lin)
    par = lin.parametrizations.weight[0]
    assert isinstance(par, ImprovedSpectralNorm)
    torch.testing.assert_close(par.sigma_init, sigma0)
    # At initialisation the normalised weight is the weight itself.
    torch.testing.assert_close(lin.weight, w0, rtol=1e-5, atol=1e-6)
    # Whatever the raw weight becomes, the effective spectral norm goes back to sigma(W_init):
    # plain spectral normalisation would give 1.
    with torch.no_grad():
        a, b = F.normalize(torch.randn(20), dim=0), F.normalize(torch.randn(12), dim=0)
        lin.parametrizations.weight.original.mul_(7.0).add_(20.0 * torch.outer(a, b))
    lin.train()
    for _ in range(50):  # power iterations, one per training forward pass
        lin(torch.randn(2, 12))
    sigma = torch.linalg.matrix_norm(lin.weight.detach(), ord=2)
    assert float(sigma) == pytest.approx(float(sigma0), rel=1e-3)
    assert abs(float(sigma0) - 1.0) > 0.1
    # Convolutions: the weight reshaped to (out, in k k), as torch's spectral_norm.
    conv = isn(torch.nn.Conv2d(3, 5, 4))
    w = conv.weight.detach().reshape(5, -1)
    sig = conv.parametrizations.weight[0].sigma_init
    torch.testing.assert_close(torch.linalg.matrix_norm(w, ord=2), sig, rtol=1e-4, atol=0)


def test_isn_under_mixed_precision() -> None:
    """Under autocast (training with --precision bf16-mixed) the power iteration stays in
    float32 against its float32 buffers (it failed with a dtype error) and the layer still
    gives the float32 result to bfloat16's accuracy."""
    torch.manual_seed(0)
    lin = isn(torch.nn.Linear(12, 20)).train()
    x = torch.randn(4, 12)
    full = lin(x).detach()
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        half = lin(x)
    assert half.dtype == torch.bfloat16
    assert lin.parametrizations.weight[0].u.dtype == torch.float32
    torch.testing.assert_close(half.float(), full, rtol=2e-2, atol=2e-2)


def test_overlapping_patch_embedding() -> None:
    torch.manual_seed(0)
    emb = OverlappingPatchEmbed(3, 8, patch=4, overlap=2).double()
    assert emb.proj.kernel_size == (8, 8) and emb.proj.stride == (4, 4)  # kernel > stride
    x = torch.randn(2, 3, 32, 24, dtype=torch.float64)
    tok = emb(x)
    assert tok.shape == (2, 8, 6, 8)  # (N, H/p, W/p, dim)
    # Token (3, 3) sees pixels [12 - 2, 16 + 2) on each axis: overlapping its neighbours.
    for px, inside in [(9, False), (10, True), (17, True), (18, False)]:
        y = x.clone()
        y[0, :, px, 14] += 1.0
        changed = bool((emb(y) - tok)[0, 3, 3].abs().max() > 0)
        assert changed == inside, px
    # Neighbouring tokens share pixels.
    y = x.clone()
    y[0, :, 11, 14] += 1.0
    d = (emb(y) - tok)[0].abs().amax(-1)
    assert d[2, 3] > 0 and d[3, 3] > 0


def test_discriminator_interface_and_lipschitz_recipe() -> None:
    torch.manual_seed(0)
    d = make_discriminator("vit", 4, "tiny")
    assert d.config() == {"name": "vit", "bands_in": 4, "size": "tiny"}
    cond, img = torch.randn(2, 2, 64, 64), torch.randn(2, 2, 64, 64)
    out = d(cond, img)
    assert [o.shape for o in out] == [(2, 1, 16, 16), (2, 1, 1, 1)]
    _, feats = d.features(cond, img)
    assert len(feats) == 2 and len(feats[0]) == d.arch.depth
    # Larger inputs (a validation block) are judged crop by crop; odd sizes are padded.
    out = d(torch.randn(1, 2, 150, 90), torch.randn(1, 2, 150, 90))
    assert [o.shape for o in out] == [(1, 1, 38, 23), (1, 1, 3, 2)]
    # Every weight matrix carries ISN; attention is the tied L2 form.
    n_isn = sum(isinstance(m, ImprovedSpectralNorm) for m in d.modules())
    n_weights = sum(isinstance(m, torch.nn.Linear | torch.nn.Conv2d) for m in d.modules())
    assert n_isn == n_weights > 0
    assert sum(isinstance(m, L2Attention) for m in d.modules()) == d.arch.depth
    # Conditioned: the condition changes the verdict on the same image.
    a = d(cond, img)[0]
    b = d(cond + 1.0, img)[0]
    assert (a - b).abs().max() > 1e-4


# --- generator pieces -------------------------------------------------------------------------


def test_sln_uses_the_condition() -> None:
    torch.manual_seed(0)
    sln = SelfModulatedLayerNorm(8, 4).double()
    h = torch.randn(2, 5, 8, dtype=torch.float64)
    w = torch.randn(2, 5, 4, dtype=torch.float64)
    ln = F.layer_norm(h, (8,))
    torch.testing.assert_close(sln(h, w), ln)  # starts as a plain LayerNorm
    _scramble(sln)
    out = sln(h, w)
    torch.testing.assert_close(out, ln * (1 + sln.gamma(w)) + sln.beta(w))
    assert (sln(h, w + 1.0) - out).abs().max() > 1e-3
    # The generator's condition is an embedding of the coarse change C2 - C1 alone.
    net = make_network("vitgan", 3, "tiny").double()
    c1 = torch.randn(1, 3, 32, 32, dtype=torch.float64)
    c2 = torch.randn(1, 3, 32, 32, dtype=torch.float64)
    w1 = net.condition(c1, c2)
    torch.testing.assert_close(net.condition(c1 + 0.5, c2 + 0.5), w1)
    assert (net.condition(c1, c2 + 0.5) - w1).abs().max() > 1e-6
    # ... and it modulates the prediction: same F1 and C2, another C1 changes more than the
    # additive part F1 + C2 - C1.
    _scramble(net, scale=0.05)
    f1 = torch.randn(1, 3, 32, 32, dtype=torch.float64)
    with torch.no_grad():
        base = net(f1, c1, c2) - (f1 + c2 - c1)
        for blk in net.blocks:  # switch the modulation off
            for sln_k in (blk.norm1, blk.norm2):
                sln_k.gamma.weight.zero_()
                sln_k.beta.weight.zero_()
        net.norm.gamma.weight.zero_()
        net.norm.beta.weight.zero_()
        off = net(f1, c1, c2) - (f1 + c2 - c1)
    assert (base - off).abs().max() > 1e-4


@pytest.mark.parametrize("shift", [0, 2])
def test_window_attention_equals_full_attention_restricted_to_windows(shift: int) -> None:
    torch.manual_seed(0)
    win, heads, dim, h, w = 4, 2, 8, 8, 12
    att = WindowAttention(dim, heads, win).double()
    x = torch.randn(2, h, w, dim, dtype=torch.float64)
    mask = region_mask(h, w, win, shift, x.device) if shift else None
    fast = unpartition(att(partition(x, win, shift), mask), h, w, win, shift)
    # Naive: every token attends to all tokens with the same window labels, with the bias of
    # their true relative position.
    ly, lx = window_labels(h, win, shift), window_labels(w, win, shift)
    q, k, v = att.qkv(x).reshape(2, h, w, 3, heads, dim // heads).unbind(3)
    table = att.bias_table
    naive = torch.zeros(2, h, w, heads, dim // heads, dtype=torch.float64)
    for y in range(h):
        for xx in range(w):
            js = [(a, b) for a in range(h) for b in range(w) if ly[a] == ly[y] and lx[b] == lx[xx]]
            assert len(js) <= win * win
            kk = torch.stack([k[:, a, b] for a, b in js], 2)  # (N, heads, J, d)
            vv = torch.stack([v[:, a, b] for a, b in js], 2)
            bias = torch.stack(
                [table[(y - a + win - 1) * (2 * win - 1) + (xx - b + win - 1)] for a, b in js], 1
            )  # (heads, J)
            logit = (q[:, y, xx, :, None, :] * kk).sum(-1) * att.scale + bias
            naive[:, y, xx] = (torch.softmax(logit, -1)[..., None] * vv).sum(2)
    naive = att.proj(naive.reshape(2, h, w, dim))
    torch.testing.assert_close(fast, naive)
    # Conditions are pooled over the same windows.
    c = torch.randn(2, h, w, 3, dtype=torch.float64)
    pooled = window_mean(partition(c, win, shift), mask)
    pooled = unpartition(pooled.expand(-1, -1, win * win, -1), h, w, win, shift)
    for y, xx in [(0, 0), (1, 5), (7, 11), (3, 2)]:
        sel = (ly[:, None] == ly[y]) & (lx[None, :] == lx[xx])
        torch.testing.assert_close(pooled[:, y, xx], c[:, sel].mean(1))


def test_token_reach_and_radius() -> None:
    assert token_reach(4, 1) == 3  # one unshifted window
    assert token_reach(4, 2) == 5  # 3 + 2: the shifted window adds half a window
    assert token_reach(8, 4) == 7 + 3 * 4
    a = GENERATOR_SIZES["tiny"]
    assert receptive_radius(a) == 2 + 4 * 5 + 3 + 2 == 27
    net = make_network("vitgan", 2, "tiny")
    assert (net.radius, net.multiple) == (27, 16)
    assert network_class("vitgan") is ViTGANGenerator and ViTGANGenerator.adversarial


def test_generator_shapes_and_additive_start() -> None:
    torch.manual_seed(0)
    net = make_network("vitgan", 4, "tiny")
    f1, c1, c2 = (torch.randn(2, 4, 40, 24) for _ in range(3))  # not multiples of 16: padded
    with torch.no_grad():
        out = net(f1, c1, c2)
    assert out.shape == (2, 4, 40, 24)
    torch.testing.assert_close(out, f1 + c2 - c1)  # untrained = additive prediction
    counts = [make_network("vitgan", 6, s).n_parameters() for s in ("tiny", "small", "paper")]
    assert counts == [79_434, 293_950, 10_968_750]


def test_receptive_field_within_radius() -> None:
    torch.manual_seed(0)
    net = make_network("vitgan", 2, "tiny").double().eval()
    _scramble(net, scale=0.1)
    h = 80
    x = [torch.randn(1, 2, h, h, dtype=torch.float64) for _ in range(3)]
    with torch.no_grad():
        base = net(*x)
        reach = 0
        for k in range(3):
            for p in [(32, 47), (47, 32)]:  # window starts / ends: the farthest reach
                y = [t.clone() for t in x]
                y[k][0, :, p[0], p[1]] += 1.0
                changed = torch.nonzero((net(*y) - base).abs().sum(1)[0] > 1e-12)
                reach = max(reach, int((changed - torch.tensor(p)).abs().max()))
    assert net.radius - net.arch.patch <= reach <= net.radius


# --- tiled inference ------------------------------------------------------------------------


def _checkpoint(path: Path, bands: int, size: str = "tiny", seed: int = 0) -> Path:
    """A checkpoint of a randomly initialised (scrambled) vitgan, normalised like CIA."""
    torch.manual_seed(seed)
    net = make_network("vitgan", bands, size)
    _scramble(net, seed, scale=0.05)
    names = ["red", "nir"][:bands] if bands <= 2 else [f"band{i + 1}" for i in range(bands)]
    return save_checkpoint(
        path,
        {
            "model": "vitgan",
            "network": {**net.config(), "size": size},
            "state_dict": net.state_dict(),
            "bands": bands,
            "band_names": names,
            "scaling": {"fine": None, "coarse": None},
            "ratio": None,
            "norm": {"mean": [0.07, 0.25][:bands], "std": [0.03, 0.08][:bands]},
            "data_range": [1.0] * bands,
            "physical_range": 1.0,
            "training_dates": list(DATES[:2]),
            "config": {"model": "vitgan", "size": size},
            "history": [],
            "epoch": 0,
            "best_epoch": 0,
            "best_val_loss": float("inf"),
            "bad_epochs": 0,
            "meta": {"notes": "random weights (test)"},
        },
    )


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    return write_cia_crop(tmp_path_factory.mktemp("cia"), size=72, bands=(2, 3))


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _checkpoint(tmp_path_factory.mktemp("ck") / "vitgan.ckpt", 2)


def test_tiled_equals_whole_scene(ckpt: Path, files: dict) -> None:
    from stfusion.scene import open_scene

    scene = open_scene([files[DATES[1]]], files[DATES[2]][1])
    (f, c), t = scene.pairs[0], scene.target
    arrays = [(f.read(), c.read())]
    pred = Predictor(ckpt, "cpu")
    assert pred.radius == 27 and pred.multiple == 16
    whole = predict_arrays(pred, arrays, t.read(), tile=256)  # one tile: the whole 72 x 72
    tiled = predict_arrays(pred, arrays, t.read(), tile=16, overlap=32)
    np.testing.assert_allclose(tiled, whole, rtol=0, atol=SEAM_TOL)
    assert np.isfinite(whole).all()
    additive = arrays[0][0] + t.read() - arrays[0][1]
    assert np.abs(whole - additive).max() > 1e-3  # the network does something
    # Without overlap, tiles show seams.
    seamed = predict_arrays(pred, arrays, t.read(), tile=16, overlap=0)
    assert np.abs(seamed - whole).max() > 10 * SEAM_TOL


def test_method_predicts_and_tiles(ckpt: Path, files: dict) -> None:
    from stfusion.methods.deep_vit import VITGAN

    est = VITGAN(weights=str(ckpt), tile=48).fit([files[DATES[1]]])
    assert est.overlap_ == 32 >= est.predictor_.radius and est.halo() == 32
    assert VITGAN.title == "transformer GAN (ViTGAN-style)" and VITGAN.name == "vitgan"
    pred = est.predict(files[DATES[2]][1])
    assert pred.shape == (2, 72, 72) and np.isfinite(pred.values).all()
    whole = VITGAN(weights=str(ckpt), tile=256).fit([files[DATES[1]]])
    np.testing.assert_allclose(
        pred.values, whole.predict(files[DATES[2]][1]).values, rtol=0, atol=SEAM_TOL
    )
    # Any window plan gives the same output, bit for bit.
    np.testing.assert_array_equal(est.predict(window_size=36).values, pred.values)
    from stfusion.errors import InvalidParameterError

    with pytest.raises(InvalidParameterError, match="multiples of 16"):
        VITGAN(weights=str(ckpt), tile=40).fit([files[DATES[1]]])


# --- adversarial training -------------------------------------------------------------------


def test_overfits_fixed_patches_stably() -> None:
    """60 adversarial steps of tiny vitgan against the ViT discriminator on 8 fixed patches:
    no NaN, the D/G loss ratio within dl_helpers.RATIO_BOUNDS at every step, and the
    generator beats the additive baseline F1 + C2 - C1 (where it starts) on them."""
    from stfusion.dl.train import TrainConfig

    cfg = TrainConfig(model="vitgan", size="tiny", lr=3e-3, beta=0.0).resolved()
    assert cfg.discriminator == "vit" and cfg.content == "l1"
    trainer, rmse, additive = overfit_gan(cfg, 32)  # with its checks (NaN, ratio, content)
    assert isinstance(trainer.g, ViTGANGenerator)
    assert rmse < 0.8 * additive, (rmse, additive)


def test_train_and_predict_end_to_end(files: dict, tmp_path: Path) -> None:
    """The generic trainer writes a vitgan checkpoint the method predicts with."""
    from stfusion.dl.checkpoint import load_checkpoint
    from stfusion.dl.train import TrainConfig, train
    from stfusion.methods.deep_vit import VITGAN

    cfg = TrainConfig(
        model="vitgan",
        size="tiny",
        epochs=2,
        patch=32,
        batch=2,
        steps_per_epoch=2,
        beta=0.0,
        val_fraction=0.3,
        threads=1,
        val_patches=4,
    )
    out = tmp_path / "v.ckpt"
    r = train([files[d] for d in DATES[:2]], out, cfg)
    assert r.epochs == 2 and np.isfinite([h["val_rmse"] for h in r.history]).all()
    ck = load_checkpoint(out)
    assert ck.model == "vitgan" and ck.data["discriminator"]["name"] == "vit"
    assert ck.data["network"]["channels"] == list(ViTGANGenerator.sizes["tiny"])
    pred = VITGAN(weights=str(out)).fit([files[DATES[1]]]).predict(files[DATES[2]][1])
    assert pred.shape == (2, 72, 72) and np.isfinite(pred.values).all()
