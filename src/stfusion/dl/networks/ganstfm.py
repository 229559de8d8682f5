"""GAN-STFM's generator: a conditional GAN for reference-insensitive spatiotemporal fusion.

Tan, Z., Gao, M., Li, X., Jiang, L. (2022). A flexible reference-insensitive spatiotemporal
fusion model for remote sensing images using conditional generative adversarial network.
IEEE Transactions on Geoscience and Remote Sensing 60, 5601413.

The generator sees only the **coarse image at the target date** ``C_t`` and a **fine image of
any date** ``F_r`` (the reference): no coarse image at the reference date, and no assumption
that the reference is close in time. Training therefore uses every ordered pair of dates
(:mod:`stfusion.dl.data`), in both directions. The coarse image of the pair is accepted by
:meth:`GANSTFMNet.forward` (the common :class:`~stfusion.dl.networks.FusionNet` signature)
and ignored.

Layers (3x3 convolutions with replication padding, LeakyReLU with slope 0.01, as the
authors' code ``theonegis/ganstfm``; widths ``c1..c4`` = 16, 32, 64, 128 there):

- encoder, four blocks ``k = 1..4`` on two paths: the *lateral* (coarse) path
  ``l_k = LReLU(conv1x1(conv3x3(l_{k-1})))`` starting from ``l_0 = C_t``, and the *trunk*
  (fine) path ``x_k = l_k + conv1x1(LReLU(N(conv3x3(LReLU(N(x_{k-1}))))))`` starting from
  ``x_0 = F_r``: fine features are learned as a residual on top of the coarse ones;
- decoder: ``cat(l_4, x_4)`` (2 c4 channels) through four residual blocks
  ``conv1x1(x) + conv1x1(LReLU(conv3x3(x)))`` of widths c4, c3, c2, c1 and a 1x1
  convolution to the bands.

The 3x3 convolutions map ``in`` to ``min(in, out)`` channels and the 1x1 ones widen to ``out``
(as the authors' blocks). The discriminator lives in
:mod:`stfusion.dl.networks.discriminators` and the losses and the adversarial loop in
:mod:`stfusion.dl.train` / :mod:`stfusion.dl.losses`.

Departure: the authors normalise the trunk with Switchable Normalization (Luo et al. 2019),
a learned mix of instance, layer and batch statistics. Instance and layer statistics are
taken over the whole input image, so every output pixel would depend on the whole tile:
tiled prediction would differ from whole-scene prediction and change with the tile size.
stfusion keeps the batch part only (``BatchNorm2d``): it normalises with batch statistics
while training and is a fixed per-channel affine map at prediction, so the network stays
local. Receptive field: one 3x3 convolution per block on every path, 4 + 4 blocks, so
``radius = 8`` fine pixels (tested by perturbing single pixels).
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from stfusion.dl.networks import FusionNet


def _conv3(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.ReplicationPad2d(1), nn.Conv2d(cin, cout, 3))


class _EncoderBlock(nn.Module):
    """One two-path encoder block: ``(lateral, trunk) -> (l_k, trunk_k + l_k)``."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        mid = min(cin, cout)
        self.lateral = nn.Sequential(_conv3(cin, mid), nn.Conv2d(mid, cout, 1), nn.LeakyReLU())
        self.trunk = nn.Sequential(
            nn.BatchNorm2d(cin),
            nn.LeakyReLU(),
            _conv3(cin, mid),
            nn.BatchNorm2d(mid),
            nn.LeakyReLU(),
            nn.Conv2d(mid, cout, 1),
        )

    def forward(self, lateral: torch.Tensor, trunk: torch.Tensor) -> tuple[torch.Tensor, ...]:
        lat = self.lateral(lateral)
        return lat, self.trunk(trunk) + lat


class _DecoderBlock(nn.Module):
    """Residual block ``conv1x1(x) + conv1x1(LReLU(conv3x3(x)))``."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        mid = min(cin, cout)
        self.residual = nn.Sequential(_conv3(cin, mid), nn.LeakyReLU(), nn.Conv2d(mid, cout, 1))
        self.transform = nn.Conv2d(cin, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.transform(x) + self.residual(x)


class GANSTFMNet(FusionNet):
    """GAN-STFM's generator (Tan et al. 2022) for ``bands`` bands; see the module docstring."""

    name = "ganstfm"
    radius = 8
    multiple = 1
    max_pairs = 1
    adversarial = True
    discriminator = "patchgan"
    #: ``paper``: the widths of the authors' code; small and tiny halve them once and twice.
    sizes: ClassVar[dict[str, tuple[int, ...]]] = {
        "tiny": (4, 8, 16, 32),
        "small": (8, 16, 32, 64),
        "paper": (16, 32, 64, 128),
    }

    def __init__(self, bands: int, channels: tuple[int, ...] = (16, 32, 64, 128)) -> None:
        super().__init__(bands, channels)
        if len(self.channels) != 4:
            raise ValueError(f"ganstfm needs 4 channel widths, got {self.channels}")
        widths = (self.bands, *self.channels)
        self.encoder = nn.ModuleList(_EncoderBlock(widths[i], widths[i + 1]) for i in range(4))
        c1, c2, c3, c4 = self.channels
        self.decoder = nn.Sequential(
            _DecoderBlock(2 * c4, c4),
            _DecoderBlock(c4, c3),
            _DecoderBlock(c3, c2),
            _DecoderBlock(c2, c1),
            nn.Conv2d(c1, self.bands, 1),
        )

    def forward(
        self, fine_ref: torch.Tensor, coarse_ref: torch.Tensor, coarse_target: torch.Tensor
    ) -> torch.Tensor:
        lateral, trunk = coarse_target, fine_ref  # coarse_ref is not an input of GAN-STFM
        for block in self.encoder:
            lateral, trunk = block(lateral, trunk)
        return self.decoder(torch.cat((lateral, trunk), 1))
