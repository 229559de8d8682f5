"""EDCSTFN: the Enhanced Deep Convolutional SpatioTemporal Fusion Network.

Tan, Z., Di, L., Zhang, M., Guo, L., Gao, M. (2019). An enhanced deep convolutional model for
spatiotemporal image fusion. Remote Sensing 11(24), 2898.

Three parts, all 3x3 convolutions with replication padding (widths ``c0, c1, c2`` = 32, 64,
128 in the paper):

- a fine-feature encoder ``E``: conv c0, ReLU, conv c1, ReLU, conv c2, ReLU on the reference
  fine image ``F_k``;
- a residual encoder ``R``: conv c0, ReLU, conv c1, ReLU, conv c2 (no ReLU: changes can be
  negative) on the stacked ``C_k, F_k, C_0`` (3 x bands channels), learning the change from
  the reference date ``k`` to the target date 0 in feature space;
- a decoder ``D``: conv c1, ReLU, conv c0, ReLU, 1x1 conv ``bands``.

One pair: ``D(E(F_k) + R(C_k, F_k, C_0))``. Two pairs (before/after the target): the two
feature sums are blended with weights inversely proportional to the magnitude of each pair's
residual features (the smaller the change, the larger the weight), then decoded once; during
training each pair is its own example (the authors train the two predictions separately).

The paper's network interpolates the 16x coarser MODIS input bilinearly to the fine grid as its
first step; in stfusion the coarse images are already on the fine grid, so that step is not
needed. The loss (content + feature + vision) lives in :mod:`stfusion.dl.losses`; the
autoencoder of the feature loss in :mod:`stfusion.dl.networks.autoencoder`.
Receptive field: 5 fine pixels on each side (five 3x3 convolutions on every path).
"""

from __future__ import annotations

import torch
from torch import nn

from stfusion.dl.networks import FusionNet

#: Keeps 1 / |residual| finite where a residual feature is exactly zero.
EPSILON = 1e-8


def conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    """3x3 convolution with replication padding (as in the authors' code)."""
    return nn.Sequential(nn.ReplicationPad2d(1), nn.Conv2d(cin, cout, 3, stride=stride))


class EDCSTFNNet(FusionNet):
    """EDCSTFN (Tan et al. 2019) for ``bands`` bands; see the module docstring."""

    name = "edcstfn"
    radius = 5
    multiple = 1
    max_pairs = 2

    def __init__(self, bands: int, channels: tuple[int, int, int] = (32, 64, 128)) -> None:
        super().__init__(bands, channels)
        c0, c1, c2 = self.channels
        relu = nn.ReLU
        self.encoder = nn.Sequential(
            conv3x3(bands, c0), relu(), conv3x3(c0, c1), relu(), conv3x3(c1, c2), relu()
        )
        self.residual = nn.Sequential(
            conv3x3(3 * bands, c0), relu(), conv3x3(c0, c1), relu(), conv3x3(c1, c2)
        )
        self.decoder = nn.Sequential(
            conv3x3(c2, c1), relu(), conv3x3(c1, c0), relu(), nn.Conv2d(c0, bands, 1)
        )

    def features(
        self, fine_ref: torch.Tensor, coarse_ref: torch.Tensor, coarse_target: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``E(F_k)`` and the residual ``R(C_k, F_k, C_0)``."""
        diff = self.residual(torch.cat((coarse_ref, fine_ref, coarse_target), 1))
        return self.encoder(fine_ref), diff

    def forward(
        self, fine_ref: torch.Tensor, coarse_ref: torch.Tensor, coarse_target: torch.Tensor
    ) -> torch.Tensor:
        enc, diff = self.features(fine_ref, coarse_ref, coarse_target)
        return self.decoder(enc + diff)

    def predict_pairs(
        self,
        fines: list[torch.Tensor],
        coarses: list[torch.Tensor],
        coarse_target: torch.Tensor,
        valid: list[torch.Tensor],
    ) -> torch.Tensor:
        if len(fines) == 1:
            return self(fines[0], coarses[0], coarse_target)
        if len(fines) != 2:
            raise ValueError(f"EDCSTFN takes one or two pairs, got {len(fines)}")
        enc1, d1 = self.features(fines[0], coarses[0], coarse_target)
        enc2, d2 = self.features(fines[1], coarses[1], coarse_target)
        inv1 = 1.0 / (d1.abs() + EPSILON)
        inv2 = 1.0 / (d2.abs() + EPSILON)
        w1 = (inv1 / (inv1 + inv2)).clamp(0.0, 1.0)
        # A pixel invalid in one pair takes the other pair's features alone.
        v1, v2 = valid[0].to(w1.dtype), valid[1].to(w1.dtype)
        w1 = w1 * v1 * v2 + v1 * (1.0 - v2)
        return self.decoder(w1 * (enc1 + d1) + (1.0 - w1) * (enc2 + d2))
