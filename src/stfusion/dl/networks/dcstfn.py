"""DCSTFN: the Deep Convolutional SpatioTemporal Fusion Network.

Tan, Z., Yue, P., Di, L., Tang, J. (2018). Deriving high spatiotemporal remote sensing images
using deep convolutional network. Remote Sensing 10(7), 1066.

Two branches extract features from the coarse images (HTLS: high temporal, low spatial) and
the fine image (LTHS), both ending on a grid at half the fine resolution with ``c2`` feature
maps; they are combined by the temporal-change equation of the paper applied to features,
``L(F_1) + H(C_2) - H(C_1)`` (one coarse branch ``H``, shared by both coarse dates), and a
reconstruction part returns to the fine grid. Layers (widths ``c0, c1, c2`` = 32, 64, 128 in
the paper; 3x3 kernels; ReLU unless noted; "same" zero padding as in the authors' Keras code):

=================  =====================================  =====================================
part               paper (coarse input at its own grid)   stfusion (coarse input on fine grid)
=================  =====================================  =====================================
coarse branch H    conv c0, conv c1, 3 x deconv c1        conv c0, conv c1, **2x2 max pool**,
                   (stride 2, linear: x8 upsampling of    3 x deconv c1 (**stride 1**, linear),
                   the 16x coarser input), conv c2        conv c2
fine branch L      conv c0, conv c1, 2x2 max pool,        same
                   conv c1, conv c2
fusion             ``L(F1) - H(C1) + H(C2)``              same
reconstruction     deconv c1 (stride 2), dense c0,        deconv c1 (stride 2), 1x1 conv c0,
                   dense ``bands`` (linear)               1x1 conv ``bands`` (= dense per pixel)
loss               MSE                                    MSE (on per-band normalised values)
=================  =====================================  =====================================

Why the coarse branch changes: the paper feeds MODIS at its own 480 m grid and the three
stride-2 deconvolutions bring it to 60 m, the grid of the fine branch after pooling. In
stfusion every coarse image is already resampled onto the fine grid (any ratio, not only 16),
so the same half-resolution feature grid is reached by the fine branch's own 2x2 pooling, and
the three deconvolutions keep their kernels, widths and parameter count with stride 1. The
network therefore has exactly the paper's number of parameters for a given band count.

The paper trains one single-band network per band; here all bands are channels of one network
(any number of bands). The receptive field reaches 12 fine pixels on each side (``radius``,
measured by perturbing single pixels at all four pixel parities; tested);
the 2x2 pooling makes outputs depend on the pixel parity, so inputs start on even pixels
(``multiple = 2``).
"""

from __future__ import annotations

import torch
from torch import nn

from stfusion.dl.networks import FusionNet


def _conv(cin: int, cout: int, k: int = 3) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, padding=k // 2)


class DCSTFNNet(FusionNet):
    """DCSTFN (Tan et al. 2018) for ``bands`` bands; see the module docstring."""

    name = "dcstfn"
    radius = 12
    multiple = 2
    max_pairs = 1

    def __init__(self, bands: int, channels: tuple[int, int, int] = (32, 64, 128)) -> None:
        super().__init__(bands, channels)
        c0, c1, c2 = self.channels
        relu = nn.ReLU
        self.coarse_branch = nn.Sequential(
            _conv(bands, c0),
            relu(),
            _conv(c0, c1),
            relu(),
            nn.MaxPool2d(2),
            nn.ConvTranspose2d(c1, c1, 3, stride=1, padding=1),
            nn.ConvTranspose2d(c1, c1, 3, stride=1, padding=1),
            nn.ConvTranspose2d(c1, c1, 3, stride=1, padding=1),
            _conv(c1, c2),
            relu(),
        )
        self.fine_branch = nn.Sequential(
            _conv(bands, c0),
            relu(),
            _conv(c0, c1),
            relu(),
            nn.MaxPool2d(2),
            _conv(c1, c1),
            relu(),
            _conv(c1, c2),
            relu(),
        )
        self.reconstruct = nn.Sequential(
            nn.ConvTranspose2d(c2, c1, 3, stride=2, padding=1, output_padding=1),
            relu(),
            nn.Conv2d(c1, c0, 1),
            relu(),
            nn.Conv2d(c0, bands, 1),
        )
        # He-normal weights and zero biases, as the authors' Keras code.
        for m in self.modules():
            if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                assert m.bias is not None  # every layer here is built with a bias
                nn.init.zeros_(m.bias)

    def forward(
        self, fine_ref: torch.Tensor, coarse_ref: torch.Tensor, coarse_target: torch.Tensor
    ) -> torch.Tensor:
        h, w = fine_ref.shape[-2:]
        if h % 2 or w % 2:
            raise ValueError(f"DCSTFN needs even input sizes, got {h} x {w}")
        both = self.coarse_branch(torch.cat((coarse_ref, coarse_target), 0))
        h_ref, h_tgt = both.chunk(2, 0)
        return self.reconstruct(self.fine_branch(fine_ref) - h_ref + h_tgt)
