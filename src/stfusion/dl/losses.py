"""Losses of the deep methods: SSIM / MS-SSIM, EDCSTFN's compound loss, and the GAN losses.

MS-SSIM (Wang, Simoncelli, Bovik 2003): SSIM's contrast-structure term at scales 1..M-1 and
the full SSIM at scale M, combined as ``prod cs_j ** w_j * ssim_M ** w_M`` with the published
weights (0.0448, 0.2856, 0.3001, 0.2363, 0.1333). Windows are Gaussian (11 px, sigma 1.5,
K1 0.01, K2 0.03, as the metrics of docs/metrics.md) and "valid" (no padding); between scales
the images are 2x2 averaged. The number of scales is the largest M <= 5 for which the coarsest
scale still holds a full window (``min(H, W) / 2**(M-1) >= 11``): 64 px patches get 3 scales,
176 px the full 5; the weights of the scales used are renormalised to sum to 1.

Negative contrast-structure values would make the fractional powers undefined; as in the
EDCSTFN authors' code (``normalize=True`` of their MS-SSIM) each term is mapped to
``(v + 1) / 2`` for the loss, while :func:`ms_ssim` by default clamps at 0 (the usual metric).

GAN losses (GAN-STFM and the other adversarial models, see :class:`stfusion.dl.train.GANTrainer`):
least squares (Mao et al. 2017, GAN-STFM's choice) or hinge adversarial losses averaged over the
discriminator's scales, discriminator feature matching (pix2pixHD), and the spectral loss
``1 - cos`` of the spectral angle between predicted and true spectra in physical units.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
WINDOW = 11
SIGMA = 1.5
K1, K2 = 0.01, 0.03


def _gaussian(size: int, sigma: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    x = torch.arange(size, dtype=dtype, device=device) - (size - 1) / 2.0
    g = torch.exp(-(x * x) / (2.0 * sigma * sigma))
    return g / g.sum()


def _blur(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Separable valid Gaussian filter of every channel."""
    c = x.shape[1]
    k = g.numel()
    x = F.conv2d(x, g.view(1, 1, 1, k).expand(c, 1, 1, k), groups=c)
    return F.conv2d(x, g.view(1, 1, k, 1).expand(c, 1, k, 1), groups=c)


def _as_range(data_range: float | torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    r = torch.as_tensor(data_range, dtype=x.dtype, device=x.device)
    return r.view(1, -1, 1, 1) if r.ndim == 1 else r


def _ssim_cs(
    x: torch.Tensor, y: torch.Tensor, data_range: torch.Tensor, window: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean SSIM and mean contrast-structure per image and channel ``(N, C)``."""
    g = _gaussian(window, SIGMA, x.dtype, x.device)
    c1 = (K1 * data_range) ** 2
    c2 = (K2 * data_range) ** 2
    mx, my = _blur(x, g), _blur(y, g)
    sxx = _blur(x * x, g) - mx * mx
    syy = _blur(y * y, g) - my * my
    sxy = _blur(x * y, g) - mx * my
    cs = (2 * sxy + c2) / (sxx + syy + c2)
    ssim = (2 * mx * my + c1) / (mx * mx + my * my + c1) * cs
    return ssim.mean(dim=(-2, -1)), cs.mean(dim=(-2, -1))


def n_scales(size: int, window: int = WINDOW) -> int:
    """Scales of MS-SSIM that an image whose shorter side is ``size`` allows (at least 1)."""
    m = 1
    while m < len(MS_SSIM_WEIGHTS) and size // 2**m >= window:
        m += 1
    return m


def ssim(x: torch.Tensor, y: torch.Tensor, data_range: float | torch.Tensor = 1.0) -> torch.Tensor:
    """Mean SSIM over the batch and channels (Gaussian window 11, sigma 1.5)."""
    window = min(WINDOW, min(x.shape[-2:]) // 2 * 2 - 1)
    s, _ = _ssim_cs(x, y, _as_range(data_range, x), window)
    return s.mean()


def ms_ssim(
    x: torch.Tensor,
    y: torch.Tensor,
    data_range: float | torch.Tensor = 1.0,
    scales: int | None = None,
    normalize: bool = False,
) -> torch.Tensor:
    """MS-SSIM of ``(N, C, H, W)`` images, averaged over the batch and channels.

    ``data_range``: a number or one value per channel. ``scales``: default as many as the
    image size allows (see the module docstring). ``normalize``: map each term to
    ``(v + 1) / 2`` (for training) instead of clamping it at 0.
    """
    side = min(x.shape[-2:])
    m = n_scales(side) if scales is None else int(scales)
    window = min(WINDOW, side // 2 * 2 - 1)
    if side // 2 ** (m - 1) < window:
        raise ValueError(f"{m} MS-SSIM scales need images of at least {window * 2 ** (m - 1)} px")
    w = torch.tensor(MS_SSIM_WEIGHTS[:m], dtype=x.dtype, device=x.device)
    w = w / w.sum()
    rng = _as_range(data_range, x)
    terms = []
    for j in range(m):
        s, cs = _ssim_cs(x, y, rng, window)
        terms.append(s if j == m - 1 else cs)
        if j < m - 1:
            x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
    t = torch.stack(terms, 0)  # (M, N, C)
    t = (t + 1) / 2 if normalize else torch.relu(t)
    return torch.prod(t ** w.view(-1, 1, 1), dim=0).mean()


class CompoundLoss(nn.Module):
    """EDCSTFN's loss: content + ``beta`` x feature + ``alpha`` x (1 - MS-SSIM).

    Content: MSE (the authors' choice) or L1 between prediction and truth, over valid pixels
    (``mask``). Feature: MSE between the frozen autoencoder-encoder features of the two.
    Vision: ``1 - MS-SSIM`` on *physical* values (reflectance, as the authors): the inputs are
    denormalised first, with ``mean``/``std`` (per band, band-tied networks) or with the
    per-sample ``stats`` given to :meth:`forward` (``(N, 3)``: center, scale, data range;
    band-agnostic networks); ``data_range`` is then in physical units (1 for reflectance).
    Without ``mean``/``std``/``stats`` the values are taken as they are. (Before 2026-12-03
    MS-SSIM saw standardised values, whose near-zero means made its luminance term ~500x more
    sensitive to a brightness offset than on reflectance.)
    ``alpha = 0.8`` and ``beta = 1`` are the values of the authors' code.
    """

    # Buffers (register_buffer), declared for the type checker.
    data_range: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor

    def __init__(
        self,
        encoder: nn.Module | None,
        data_range: torch.Tensor | float,
        content: str = "mse",
        alpha: float = 0.8,
        beta: float = 1.0,
        mean: Any = None,
        std: Any = None,
    ) -> None:
        super().__init__()
        if content not in ("mse", "l1"):
            raise ValueError(f"content loss {content!r}: choose mse or l1")
        self.encoder = encoder
        if encoder is not None:
            for p in encoder.parameters():
                p.requires_grad_(False)
        self.register_buffer("data_range", torch.as_tensor(data_range, dtype=torch.float32))
        self.physical = mean is not None and std is not None
        m = torch.as_tensor(np.asarray(0.0 if mean is None else mean), dtype=torch.float32)
        sd = torch.as_tensor(np.asarray(1.0 if std is None else std), dtype=torch.float32)
        self.register_buffer("mean", m.reshape(1, -1, 1, 1) if m.ndim else m)
        self.register_buffer("std", sd.reshape(1, -1, 1, 1) if sd.ndim else sd)
        self.content = content
        self.alpha = float(alpha)
        self.beta = float(beta)

    def forward(
        self,
        pred: torch.Tensor,
        target: torch.Tensor,
        mask: torch.Tensor | None = None,
        stats: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        err = pred - target
        content = masked_mean(err * err if self.content == "mse" else err.abs(), mask)
        total = content
        parts = {"content": float(content.detach())}
        if self.encoder is not None and self.beta:
            feature = F.mse_loss(self.encoder(pred), self.encoder(target))
            total = total + self.beta * feature
            parts["feature"] = float(feature.detach())
        if self.alpha:
            x, y, rng = pred, target, self.data_range
            if stats is not None:
                st = stats.to(pred.dtype)
                c, sc = st[:, 0].view(-1, 1, 1, 1), st[:, 1].view(-1, 1, 1, 1)
                x, y, rng = x * sc + c, y * sc + c, st[:, 2].view(-1, 1, 1, 1)
            elif self.physical:
                x, y = x * self.std + self.mean, y * self.std + self.mean
            vision = 1.0 - ms_ssim(x, y, rng, normalize=True)
            total = total + self.alpha * vision
            parts["vision"] = float(vision.detach())
        return total, parts


def masked_mean(err: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean of ``err`` over the pixels where ``mask`` ``(N, 1, H, W)`` is true (all pixels
    without a mask): the content losses' and the distillation's."""
    if mask is None:
        return err.mean()
    m = mask.to(err.dtype).expand_as(err)
    return (err * m).sum() / m.sum().clamp_min(1.0)


def content_loss(kind: str) -> CompoundLoss:
    """A plain content loss (DCSTFN: MSE), with the same interface as CompoundLoss."""
    return CompoundLoss(None, 1.0, content=kind, alpha=0.0, beta=0.0)


# --- GAN losses (GAN-STFM and the other adversarial models) --------------------------------


def spectral_angle(
    pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None, eps: float = 1e-8
) -> torch.Tensor:
    """Mean spectral angle (radians) between the band vectors of ``(N, C, H, W)`` images, over
    pixels in ``mask`` whose spectra are non-zero in both images (as docs/metrics.md's SAM)."""
    dot = (pred * target).sum(1)
    norms = pred.norm(dim=1) * target.norm(dim=1)
    ok = norms > eps
    if mask is not None:
        ok = ok & mask[:, 0].bool()
    cos = (dot / norms.clamp_min(eps)).clamp(-1.0, 1.0)
    return torch.acos(cos[ok]).mean() if bool(ok.any()) else pred.new_zeros(())


class SpectralLoss(nn.Module):
    """Spectral loss ``mean(1 - cos theta)`` over valid pixels, ``theta`` the spectral angle
    between predicted and true spectra in physical units (the network works on normalised
    values: ``x * std + mean`` undoes that, since angles of normalised vectors mean nothing).

    ``1 - cos`` rather than the angle itself: the same minimum and ordering as SAM, and a
    finite gradient where the angle is 0 (``acos`` has none there).
    """

    # Buffers (register_buffer), declared for the type checker.
    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, mean: torch.Tensor | list[float], std: torch.Tensor | list[float]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(
        self, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        if pred.shape[1] < 2:  # a spectral angle needs two bands (band-agnostic batches)
            return pred.new_zeros(())
        p = pred * self.std + self.mean
        t = target * self.std + self.mean
        norms = p.norm(dim=1, keepdim=True) * t.norm(dim=1, keepdim=True)
        cos = (p * t).sum(1, keepdim=True) / norms.clamp_min(1e-8)
        loss = 1.0 - cos
        if mask is None:
            return loss.mean()
        m = mask.to(loss.dtype)
        return (loss * m).sum() / m.sum().clamp_min(1.0)


GAN_LOSSES = ("lsgan", "hinge")


def discriminator_loss(
    real: list[torch.Tensor], fake: list[torch.Tensor], kind: str = "lsgan", smooth: float = 0.0
) -> torch.Tensor:
    """The discriminator's loss, averaged over scales.

    ``lsgan`` (Mao et al. 2017, GAN-STFM's choice): ``0.5 E[(D(real) - 1)^2] + 0.5 E[D(fake)^2]``.
    ``hinge`` (Lim & Ye 2017; SAGAN, ViTGAN): ``E[relu(1 - D(real))] + E[relu(1 + D(fake))]``.
    ``smooth``: one-sided label smoothing, the real target (or margin) becomes ``1 - smooth``.
    """
    target = 1.0 - float(smooth)
    terms = []
    for r, f in zip(real, fake):
        if kind == "lsgan":
            terms.append(0.5 * ((r - target) ** 2).mean() + 0.5 * (f**2).mean())
        elif kind == "hinge":
            terms.append(F.relu(target - r).mean() + F.relu(1.0 + f).mean())
        else:
            raise ValueError(f"GAN loss {kind!r}: choose one of {', '.join(GAN_LOSSES)}")
    return torch.stack(terms).mean()


def generator_loss(fake: list[torch.Tensor], kind: str = "lsgan") -> torch.Tensor:
    """The generator's adversarial loss, averaged over scales: ``0.5 E[(D(fake) - 1)^2]``
    (lsgan) or ``-E[D(fake)]`` (hinge)."""
    if kind == "lsgan":
        return torch.stack([0.5 * ((f - 1.0) ** 2).mean() for f in fake]).mean()
    if kind == "hinge":
        return torch.stack([-f.mean() for f in fake]).mean()
    raise ValueError(f"GAN loss {kind!r}: choose one of {', '.join(GAN_LOSSES)}")


def feature_matching(
    real: list[list[torch.Tensor]], fake: list[list[torch.Tensor]]
) -> torch.Tensor:
    """Discriminator feature matching (pix2pixHD, Wang et al. 2018): mean L1 distance between
    the discriminator's intermediate features of the prediction and of the truth (detached),
    over layers and scales."""
    terms = [F.l1_loss(f, r.detach()) for rs, fs in zip(real, fake) for r, f in zip(rs, fs)]
    return torch.stack(terms).mean()
