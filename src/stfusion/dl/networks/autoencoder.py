"""The autoencoder whose encoder defines EDCSTFN's feature loss.

Tan et al. (2019) pretrain an hourglass autoencoder on fine (Landsat) images and compare the
prediction and the truth through its frozen encoder (the "feature loss", a perceptual loss in
the sense of Johnson et al. 2016). No ImageNet network fits 4-7 band reflectance, so stfusion
trains this autoencoder on the user's own fine images before the fusion network, and stores
it inside the fusion checkpoint.

Encoder (as the authors' pretrained encoder): conv c0, ReLU, conv c1 stride 2, ReLU, conv c2
stride 2, ReLU (3x3, replication padding). Decoder (mirror): 2x nearest upsampling + conv c1,
ReLU, 2x upsampling + conv c0, ReLU, 1x1 conv ``bands``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from stfusion.dl.networks.edcstfn import conv3x3


class Autoencoder(nn.Module):
    """Hourglass autoencoder (1/4 resolution bottleneck) for ``bands`` bands."""

    def __init__(self, bands: int, channels: tuple[int, int, int] = (32, 64, 128)) -> None:
        super().__init__()
        self.bands = int(bands)
        self.channels = tuple(int(c) for c in channels)
        c0, c1, c2 = self.channels
        relu = nn.ReLU
        self.encoder = nn.Sequential(
            conv3x3(bands, c0), relu(), conv3x3(c0, c1, 2), relu(), conv3x3(c1, c2, 2), relu()
        )
        self.up1 = conv3x3(c2, c1)
        self.up2 = conv3x3(c1, c0)
        self.out = nn.Conv2d(c0, bands, 1)

    def config(self) -> dict[str, Any]:
        return {"bands": self.bands, "channels": list(self.channels)}

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        z = self.encoder(x)
        z = F.relu(self.up1(F.interpolate(z, scale_factor=2.0, mode="nearest")))
        z = F.relu(self.up2(F.interpolate(z, scale_factor=2.0, mode="nearest")))
        # Odd sizes lose a pixel in the stride-2 layers; restore the input size.
        z = F.interpolate(z, size=(h, w), mode="nearest") if z.shape[-2:] != (h, w) else z
        return self.out(z)
