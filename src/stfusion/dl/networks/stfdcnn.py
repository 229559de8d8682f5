"""STFDCNN: spatiotemporal fusion with two deep convolutional networks.

Song, H., Liu, Q., Wang, G., Hang, R., Huang, B. (2018). Spatiotemporal satellite image fusion
using deep convolutional neural networks. IEEE J. Sel. Top. Appl. Earth Obs. Remote Sens.
11(3), 821-829.

Two SRCNN-style CNNs (input, three convolutional layers, output: the paper's "five-layer
CNNs"; Dong et al. 2016's 9x9 / 1x1 / 5x5 kernels with ``n1, n2`` = 64, 32 feature maps):

- the **non-linear mapping (NLM) CNN** maps a coarse image to the *transitional* image, the
  fine image averaged to an intermediate, low spatial resolution (LSR) grid;
- the **super-resolution (SR) CNN** maps an LSR image, interpolated (bicubic, as SRCNN) back
  to the fine grid, to the fine image.

Both are trained on the pair dates (``coarse -> LSR fine`` and ``LSR fine -> fine``, MSE) and
used at prediction by the paper's fusion model, applied at both levels:

1. LSR level: ``T_0 = NLM(C_0)``, ``T_k = NLM(C_k)``; high-pass modulation (HPM) of each pair's
   LSR fine image ``L_k``: ``L_0^k = T_0 + (T_0 / T_k) (L_k - T_k)`` (the detail ``L_k - T_k``
   that the CNN misses at date k, scaled by the temporal gain of the transitional images);
   the two pair predictions are blended with the weights below: ``L_0``.
2. fine level: ``U_0 = SR(L_0)``, ``U_k = SR(L_k)``; HPM of each pair's fine image:
   ``F_0^k = U_0 + (U_0 / U_k) (F_k - U_k)``, blended with the same weights: the prediction.

Weights: the pair whose coarse image changed less towards the target gets more weight,
``w_1 = (1 / v_1) / (1 / v_1 + 1 / v_2)``, ``v_k`` the mean absolute coarse change
``|C_0 - C_k|`` per band in a ``(2 window + 1)`` box of LSR pixels (``window`` ~ one coarse
pixel); a pixel invalid in one pair takes the other pair's prediction alone.

Adaptations (docs/methods/stfdcnn.md):

- stfusion's coarse images are already on the fine grid, so the LSR grid is made by averaging
  ``factor x factor`` blocks anchored at the scene origin (``factor``: the divisor of the
  resolution ratio closest to its square root, 2 for a ratio of 10, 4 for 16; 2 when the ratio
  is unknown), for coarse and fine images alike;
- all bands are channels of one network per level (any number of bands), on inputs
  normalised per band; HPM is computed in physical units (the normalisation statistics are
  buffers of the network), with the denominator floored at ``FLOOR x`` the band's training
  mean and the gain clipped to ``[1 / GAIN_LIMIT, GAIN_LIMIT]`` (a transitional value near
  zero would otherwise blow the ratio up); bands whose training mean is not positive
  (temperatures in Celsius, indices) use gain 1, the additive form;
- replication padding keeps the output size ("same" convolutions, SRCNN trains "valid").

``factor`` and ``window`` are stored as buffers, so ``state_dict`` alone restores the network
shape-independent settings; the LSR blocks make outputs depend on the position modulo
``factor`` (``multiple``), and the receptive field (``radius``) follows from the kernels,
``factor`` and ``window`` (tested by perturbing single pixels).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from stfusion.dl.networks import FusionNet

#: Widths ``(n1, n2)`` of the two hidden layers of each CNN; ``paper``: SRCNN's 64 / 32.
SIZES: dict[str, tuple[int, int]] = {"tiny": (16, 8), "small": (32, 16), "paper": (64, 32)}
#: Kernel sizes of the three convolutions (SRCNN 9-1-5).
KERNELS: tuple[int, int, int] = (9, 1, 5)
#: HPM gains ``T_0 / T_k`` are clipped to ``[1 / GAIN_LIMIT, GAIN_LIMIT]``.
GAIN_LIMIT = 4.0
#: HPM denominators are floored at this fraction of the band's (positive) training mean.
FLOOR = 0.05
#: Keeps the inverse-change weights finite where a coarse image did not change.
EPSILON = 1e-6


def sizes_for(size: str) -> tuple[int, int]:
    from stfusion.errors import InvalidParameterError

    if size not in SIZES:
        raise InvalidParameterError(
            f"size {size!r}: choose one of {', '.join(SIZES)} ('paper' = SRCNN's 64/32 maps)."
        )
    return SIZES[size]


def choose_factor(ratio: float | None) -> int:
    """The LSR block size for a resolution ratio: the divisor of ``round(ratio)`` (other than
    1 and the ratio) closest to ``sqrt(ratio)``, ties to the smaller; else ``round(sqrt)``;
    2 when the ratio is unknown."""
    if ratio is None:
        return 2
    r = round(float(ratio))
    root = math.sqrt(max(float(ratio), 1.0))
    divisors = [d for d in range(2, r) if r % d == 0]
    if not divisors:
        return max(1, round(root))
    return min(divisors, key=lambda d: (abs(d - root), d))


def choose_window(ratio: float | None, factor: int) -> int:
    """Radius (LSR pixels) of the box of the pair weights: about one coarse pixel."""
    if ratio is None:
        return 5
    return max(1, math.ceil(float(ratio) / factor))


def high_pass_modulation(
    target: torch.Tensor, ref: torch.Tensor, detail: torch.Tensor, floor: torch.Tensor
) -> torch.Tensor:
    """``target + (target / ref) * (detail - ref)`` in physical units (paper's HPM).

    ``floor`` (per band, broadcastable): the smallest denominator; a band with floor <= 0
    uses gain 1 (additive detail injection). Gains are clipped to ``[1/GAIN_LIMIT,
    GAIN_LIMIT]``.
    """
    positive = floor > 0
    denom = torch.maximum(ref, torch.where(positive, floor, torch.ones_like(floor)))
    gain = (target / denom).clamp(1.0 / GAIN_LIMIT, GAIN_LIMIT)
    gain = torch.where(positive, gain, torch.ones_like(gain))
    return target + gain * (detail - ref)


def pair_weights(change_1: torch.Tensor, change_2: torch.Tensor) -> torch.Tensor:
    """Weight of pair 1, ``(1/v_1) / (1/v_1 + 1/v_2)``, from the change magnitudes ``v_k``."""
    return (change_2 + EPSILON) / (change_1 + change_2 + 2 * EPSILON)


def box_mean(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Mean over a ``(2 radius + 1)`` square box, edge-replicated (same size as ``x``)."""
    if radius <= 0:
        return x
    pad = F.pad(x, (radius, radius, radius, radius), mode="replicate")
    return F.avg_pool2d(pad, 2 * radius + 1, stride=1)


def _conv(cin: int, cout: int, k: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, padding=k // 2, padding_mode="replicate")


class SRCNN(nn.Sequential):
    """Three convolutions (9x9 n1, ReLU, 1x1 n2, ReLU, 5x5 bands): patch extraction,
    non-linear mapping, reconstruction (Dong et al. 2016)."""

    def __init__(self, bands: int, n1: int, n2: int, kernels: tuple[int, int, int] = KERNELS):
        k1, k2, k3 = kernels
        super().__init__(
            _conv(bands, n1, k1), nn.ReLU(), _conv(n1, n2, k2), nn.ReLU(), _conv(n2, bands, k3)
        )


class STFDCNNNet(FusionNet):
    """STFDCNN (Song et al. 2018) for ``bands`` bands; see the module docstring."""

    name = "stfdcnn"
    max_pairs = 2
    sizes = SIZES

    # Buffers (register_buffer), declared for the type checker.
    norm_mean: torch.Tensor
    norm_std: torch.Tensor
    lsr_factor: torch.Tensor
    weight_window: torch.Tensor

    def __init__(
        self,
        bands: int,
        channels: tuple[int, ...] = SIZES["paper"],
        factor: int = 2,
        window: int = 5,
        mean: np.ndarray | list[float] | None = None,
        std: np.ndarray | list[float] | None = None,
        residual: bool = False,
    ) -> None:
        super().__init__(bands, channels)
        #: Residual CNNs (band-agnostic form): ``T = lsr(C) + NLM(lsr(C))``,
        #: ``U = up(L) + SR(up(L))``, last layers at zero, so an untrained network is the
        #: paper's fusion model on the inputs themselves; its output is a full prediction.
        self.residual = bool(residual)
        self.residual_base = self.residual
        if len(self.channels) != 2:
            raise ValueError(f"STFDCNN takes two widths (n1, n2), got {self.channels}")
        if int(factor) < 1 or int(window) < 0:
            raise ValueError(f"STFDCNN: factor >= 1 and window >= 0, got {factor}, {window}")
        n1, n2 = self.channels
        self.nlm = SRCNN(bands, n1, n2)
        self.sr = SRCNN(bands, n1, n2)
        m = torch.zeros(bands) if mean is None else torch.as_tensor(mean, dtype=torch.float32)
        s = torch.ones(bands) if std is None else torch.as_tensor(std, dtype=torch.float32)
        self.register_buffer("norm_mean", m.clone().reshape(bands))
        self.register_buffer("norm_std", s.clone().reshape(bands))
        self.register_buffer("lsr_factor", torch.tensor(int(factor)))
        self.register_buffer("weight_window", torch.tensor(int(window)))
        if self.residual:
            from stfusion.dl.networks.agnostic import zero_last_layer

            zero_last_layer(self.nlm)
            zero_last_layer(self.sr)

    # ---------------------------------------------------------------------- settings

    @property
    def factor(self) -> int:
        return int(self.lsr_factor)

    @property
    def window(self) -> int:
        return int(self.weight_window)

    @property
    def multiple(self) -> int:  # type: ignore[override]  # read-only: from the factor buffer
        return self.factor

    @property
    def radius(self) -> int:  # type: ignore[override]  # read-only: from the window buffer
        """Receptive-field radius in fine pixels: the SR CNN's, plus, through the bicubic
        interpolation (2 LSR pixels) and the block grid, the LSR level's (NLM CNN or weight
        box, in LSR pixels)."""
        r_cnn = sum(k // 2 for k in KERNELS)
        q = max(r_cnn, self.window)
        s = self.factor
        return r_cnn + q if s == 1 else r_cnn + s * (q + 3) - 1

    def config(self) -> dict[str, Any]:
        cfg = {**super().config(), "factor": self.factor, "window": self.window}
        return {**cfg, "residual": True} if self.residual else cfg

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> STFDCNNNet:
        return cls(
            int(config["bands"]),
            tuple(int(c) for c in config["channels"]),
            factor=int(config.get("factor", 2)),
            window=int(config.get("window", 5)),
            residual=bool(config.get("residual", False)),
        )

    # ---------------------------------------------------------------------- building blocks

    def _check(self, x: torch.Tensor) -> None:
        h, w = x.shape[-2:]
        s = self.factor
        if h % s or w % s:
            raise ValueError(f"STFDCNN needs input sizes that are multiples of {s}, got {h} x {w}")

    def lsr(self, x: torch.Tensor) -> torch.Tensor:
        """Mean over the ``factor x factor`` blocks (the LSR grid)."""
        s = self.factor
        return F.avg_pool2d(x, s) if s > 1 else x

    def lsr_valid(self, valid: torch.Tensor) -> torch.Tensor:
        """An LSR pixel is valid when its whole block is."""
        return (self.lsr(valid) > 1.0 - 1e-6).to(valid.dtype)

    def upsample(self, x: torch.Tensor) -> torch.Tensor:
        """LSR grid -> fine grid, bicubic (SRCNN's interpolation before the CNN)."""
        s = self.factor
        if s == 1:
            return x
        return F.interpolate(x, scale_factor=s, mode="bicubic", align_corners=False)

    def transitional(self, coarse: torch.Tensor) -> torch.Tensor:
        """NLM CNN: coarse image (fine grid) -> transitional image (LSR grid)."""
        x = self.lsr(coarse)
        return x + self.nlm(x) if self.residual else self.nlm(x)

    def super_resolve(self, lsr: torch.Tensor) -> torch.Tensor:
        """SR CNN: LSR image -> fine grid."""
        x = self.upsample(lsr)
        return x + self.sr(x) if self.residual else self.sr(x)

    def hpm(self, target: torch.Tensor, ref: torch.Tensor, detail: torch.Tensor) -> torch.Tensor:
        """HPM on normalised tensors, computed in physical units."""
        m = self.norm_mean.view(1, -1, 1, 1)
        s = self.norm_std.view(1, -1, 1, 1)
        floor = FLOOR * m
        out = high_pass_modulation(target * s + m, ref * s + m, detail * s + m, floor)
        return (out - m) / s

    def pair_weight(self, coarses: list[torch.Tensor], coarse_target: torch.Tensor) -> torch.Tensor:
        """Weight of pair 1 on the LSR grid, per band (before the validity masks)."""
        c0 = self.lsr(coarse_target)
        v = [box_mean((c0 - self.lsr(c)).abs(), self.window) for c in coarses]
        return pair_weights(v[0], v[1])

    def losses(
        self, fine: torch.Tensor, coarse: torch.Tensor, mask: torch.Tensor, content: str = "mse"
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Training losses of the NLM CNN (coarse -> LSR fine) and of the SR CNN
        (LSR fine -> fine), over valid pixels, on one date's images."""
        self._check(fine)
        target_lsr = self.lsr(fine)
        m_lsr = self.lsr_valid(mask)
        return (
            _masked(self.transitional(coarse), target_lsr, m_lsr, content),
            _masked(self.super_resolve(target_lsr), fine, mask, content),
        )

    # ---------------------------------------------------------------------- prediction

    def forward(
        self, fine_ref: torch.Tensor, coarse_ref: torch.Tensor, coarse_target: torch.Tensor
    ) -> torch.Tensor:
        """Prediction from one pair (the fusion model without the weighting)."""
        self._check(fine_ref)
        n = fine_ref.shape[0]
        t0, tk = self.transitional(torch.cat((coarse_target, coarse_ref), 0)).split(n)
        l_ref = self.lsr(fine_ref)
        l0 = self.hpm(t0, tk, l_ref)
        u0, uk = self.super_resolve(torch.cat((l0, l_ref), 0)).split(n)
        return self.hpm(u0, uk, fine_ref)

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
            raise ValueError(f"STFDCNN takes two pairs, got {len(fines)}")
        self._check(coarse_target)
        n = coarse_target.shape[0]
        t0, t1, t2 = self.transitional(torch.cat((coarse_target, *coarses), 0)).split(n)
        l1, l2 = self.lsr(fines[0]), self.lsr(fines[1])
        w = self.pair_weight(coarses, coarse_target)
        v1, v2 = (self.lsr_valid(v) for v in valid)
        w_lsr = w * v1 * v2 + v1 * (1.0 - v2)
        l0 = w_lsr * self.hpm(t0, t1, l1) + (1.0 - w_lsr) * self.hpm(t0, t2, l2)
        u0, u1, u2 = self.super_resolve(torch.cat((l0, l1, l2), 0)).split(n)
        s = self.factor
        w_up = w.repeat_interleave(s, -2).repeat_interleave(s, -1) if s > 1 else w
        f1, f2 = valid[0].to(w.dtype), valid[1].to(w.dtype)
        w_fine = w_up * f1 * f2 + f1 * (1.0 - f2)
        return w_fine * self.hpm(u0, u1, fines[0]) + (1.0 - w_fine) * self.hpm(u0, u2, fines[1])


def _masked(
    pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, content: str
) -> torch.Tensor:
    err = (pred - target) * mask
    per = err.abs() if content == "l1" else err**2
    n = mask.sum() * pred.shape[1]
    return per.sum() / n.clamp_min(1.0)


__all__ = [
    "GAIN_LIMIT",
    "KERNELS",
    "SIZES",
    "SRCNN",
    "STFDCNNNet",
    "box_mean",
    "choose_factor",
    "choose_window",
    "high_pass_modulation",
    "pair_weights",
    "sizes_for",
]
