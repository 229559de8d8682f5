"""The deep networks and losses: shapes, paper parameter counts, receptive fields, MS-SSIM."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from stfusion.dl.losses import CompoundLoss, ms_ssim, n_scales, ssim  # noqa: E402
from stfusion.dl.networks import SIZES, make_network  # noqa: E402
from stfusion.dl.networks.autoencoder import Autoencoder  # noqa: E402

#: Parameter counts at the papers' widths (32, 64, 128) for 6 bands, from the layer tables
#: in docs/methods/dcstfn.md and docs/methods/edcstfn.md.
PAPER_PARAMS = {"dcstfn": 412_006, "edcstfn": 284_134}


@pytest.mark.parametrize("name", ["dcstfn", "edcstfn"])
@pytest.mark.parametrize("bands", [1, 4, 6])
def test_shapes_any_band_count(name: str, bands: int) -> None:
    net = make_network(name, bands, "tiny")
    x = [torch.randn(2, bands, 32, 40) for _ in range(3)]
    assert net(*x).shape == (2, bands, 32, 40)


@pytest.mark.parametrize("name", ["dcstfn", "edcstfn"])
def test_paper_parameter_count(name: str) -> None:
    assert SIZES["paper"] == (32, 64, 128)
    assert make_network(name, 6, "paper").n_parameters() == PAPER_PARAMS[name]
    counts = [make_network(name, 6, s).n_parameters() for s in ("tiny", "small", "paper")]
    assert counts == sorted(counts)


@pytest.mark.parametrize("name", ["dcstfn", "edcstfn"])
def test_receptive_field_within_radius(name: str) -> None:
    """Perturbing one input pixel changes outputs only within ``radius`` of it."""
    torch.manual_seed(0)
    net = make_network(name, 3, "tiny").double().eval()
    h = 64
    x = [torch.randn(1, 3, h, h, dtype=torch.float64) for _ in range(3)]
    base = net(*x)
    reach = 0
    for k in range(3):
        for p in [(32, 32), (33, 33), (32, 33), (33, 32)]:
            y = [t.clone() for t in x]
            y[k][0, :, p[0], p[1]] += 1.0
            changed = torch.nonzero((net(*y) - base).abs().sum(1)[0] > 0)
            reach = max(reach, int((changed - torch.tensor(p)).abs().max()))
    assert 0 < reach <= net.radius


def test_edcstfn_two_pairs_weights_and_masks() -> None:
    torch.manual_seed(0)
    net = make_network("edcstfn", 3, "tiny").eval()
    f1, c1, f2, c2, t = (torch.randn(1, 3, 24, 24) for _ in range(5))
    ones = torch.ones(1, 1, 24, 24)
    zeros = torch.zeros(1, 1, 24, 24)
    with torch.no_grad():
        one = net(f1, c1, t)
        both = net.predict_pairs([f1, f2], [c1, c2], t, [ones, ones])
        only_first = net.predict_pairs([f1, f2], [c1, c2], t, [ones, zeros])
        same = net.predict_pairs([f1, f1], [c1, c1], t, [ones, ones])
    assert both.shape == one.shape
    torch.testing.assert_close(only_first, one)  # an invalid pair gets weight 0
    torch.testing.assert_close(same, one, rtol=1e-5, atol=1e-5)  # blending equals is a no-op


def test_ms_ssim_sanity() -> None:
    torch.manual_seed(0)
    x = torch.rand(2, 3, 64, 64)
    assert float(ms_ssim(x, x)) == pytest.approx(1.0, abs=1e-6)
    assert float(ms_ssim(x, x, normalize=True)) == pytest.approx(1.0, abs=1e-6)
    assert float(ssim(x, x)) == pytest.approx(1.0, abs=1e-6)
    noisy = (x + 0.2 * torch.randn_like(x)).clamp(0, 1)
    worse = (x + 0.5 * torch.randn_like(x)).clamp(0, 1)
    assert 0.0 < float(ms_ssim(x, worse)) < float(ms_ssim(x, noisy)) < 1.0
    # Per-channel data ranges: a scaled copy with a scaled range gives the same value.
    rng = torch.tensor([1.0, 2.0, 4.0])
    scaled = x * rng.view(1, 3, 1, 1)
    noisy_s = noisy * rng.view(1, 3, 1, 1)
    assert float(ms_ssim(scaled, noisy_s, rng)) == pytest.approx(float(ms_ssim(x, noisy)), 1e-5)


def test_ms_ssim_scales_follow_patch_size() -> None:
    assert n_scales(11) == 1
    assert n_scales(32) == 2
    assert n_scales(64) == 3
    assert n_scales(176) == 5 and n_scales(1000) == 5
    x = torch.rand(1, 1, 64, 64)
    with pytest.raises(ValueError, match="at least"):
        ms_ssim(x, x, scales=5)


def test_compound_loss_parts_and_zero_at_identity() -> None:
    torch.manual_seed(0)
    ae = Autoencoder(4, SIZES["tiny"])
    loss = CompoundLoss(ae.encoder, torch.ones(4), "mse", alpha=0.8, beta=1.0)
    x = torch.randn(2, 4, 32, 32)
    total, parts = loss(x, x)
    assert float(total) == pytest.approx(0.0, abs=1e-6)
    assert set(parts) == {"content", "feature", "vision"}
    y = x + 0.3 * torch.randn_like(x)
    total, parts = loss(y, x)
    assert float(total) == pytest.approx(
        parts["content"] + parts["feature"] + 0.8 * parts["vision"], rel=1e-5
    )
    assert not any(p.requires_grad for p in ae.encoder.parameters())  # frozen
    # The mask leaves pixels out of the content term.
    mask = torch.zeros(2, 1, 32, 32, dtype=torch.bool)
    mask[..., :16, :] = True
    y2 = y.clone()
    y2[..., 16:, :] += 100.0
    l1_loss = CompoundLoss(None, 1.0, "l1", alpha=0.0, beta=0.0)
    assert float(l1_loss(y, x, mask)[0]) == pytest.approx(float(l1_loss(y2, x, mask)[0]))


def test_autoencoder_reconstructs_shape() -> None:
    ae = Autoencoder(6, SIZES["tiny"])
    for size in (32, 33):
        x = torch.randn(1, 6, size, size)
        assert ae(x).shape == x.shape
    assert ae.encode(torch.randn(1, 6, 32, 32)).shape == (1, 32, 8, 8)
