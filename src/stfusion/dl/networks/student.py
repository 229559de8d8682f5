"""The distilled student: a small, fast CNN trained from a teacher (Hinton et al. 2015).

Hinton, G., Vinyals, O., Dean, J. (2015). Distilling the knowledge in a neural network.
arXiv:1503.02531 (NIPS 2014 Deep Learning Workshop).

The student is deliberately shallow and narrow so that it runs an order of magnitude faster
than its teacher on a CPU:

- input: the stacked ``C_k, F_k, C_0`` (3 x bands channels, as EDCSTFN's residual encoder);
- body: ``len(channels)`` 3x3 convolutions (replication padding) with ReLU, widths
  ``channels`` (e.g. ``micro``: 16, 16);
- head: a 1x1 convolution to ``bands`` channels, added to the additive prediction
  ``F_k + C_0 - C_k`` (valid in normalised units because fine and coarse share one
  normalisation per band).

The additive skip is a departure from the teachers (EDCSTFN decodes the whole image): a
network this small spends its capacity on the *correction* to the additive change instead of
on reconstructing the fine image, which is what lets it stay close to a teacher 50x its size.
The head starts at zero, so an untrained student predicts the additive baseline.

:meth:`StudentNet.features` returns the body's last feature map (``channels[-1]`` wide, the
input of the head): the layer whose 1x1 adapter is matched to the teacher's features in
feature distillation (:mod:`stfusion.dl.distill`). Receptive field: ``len(channels)`` pixels
on each side.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from stfusion.dl.networks import FusionNet
from stfusion.run_config import STUDENT_SIZES  # the sizes' one home (no torch there)


def student_channels(size: str) -> tuple[int, ...]:
    """Body widths of a named student ``size`` (nano, micro, mini)."""
    from stfusion.errors import InvalidParameterError

    if size not in STUDENT_SIZES:
        raise InvalidParameterError(
            f"student size {size!r}: choose one of "
            + ", ".join(f"{k} ({'/'.join(map(str, v))})" for k, v in STUDENT_SIZES.items())
            + "."
        )
    return STUDENT_SIZES[size]


class StudentNet(FusionNet):
    """Additive prediction + a shallow CNN correction; see the module docstring."""

    name = "student"
    #: The largest named size's; each instance sets its own (``len(channels)``).
    radius = max(len(c) for c in STUDENT_SIZES.values())
    multiple = 1
    max_pairs = 1
    #: Named sizes (``FusionNet.channels_for`` / ``make_network`` look here).
    sizes: ClassVar[dict[str, tuple[int, ...]] | None] = STUDENT_SIZES

    def __init__(self, bands: int, channels: tuple[int, ...] = (16, 16)) -> None:
        if not channels or any(int(c) < 1 for c in channels):
            raise ValueError(f"student channels must be positive widths, got {channels!r}")
        super().__init__(bands, channels)  # type: ignore[arg-type]
        self.radius = len(self.channels)  # type: ignore[misc]
        layers: list[nn.Module] = []
        cin = 3 * self.bands
        for c in self.channels:
            layers += [nn.Conv2d(cin, c, 3, padding=1, padding_mode="replicate"), nn.ReLU()]
            cin = c
        self.body = nn.Sequential(*layers)
        self.head = nn.Conv2d(cin, self.bands, 1)
        # Zero head: training starts from the additive baseline, not from noise.
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def config(self) -> dict[str, Any]:
        return {"network": self.name, "bands": self.bands, "channels": list(self.channels)}

    def features(
        self, fine_ref: torch.Tensor, coarse_ref: torch.Tensor, coarse_target: torch.Tensor
    ) -> torch.Tensor:
        """The body's last feature map ``(N, channels[-1], H, W)``."""
        return self.body(torch.cat((coarse_ref, fine_ref, coarse_target), 1))

    def head_output(
        self,
        feats: torch.Tensor,
        fine_ref: torch.Tensor,
        coarse_ref: torch.Tensor,
        coarse_target: torch.Tensor,
    ) -> torch.Tensor:
        """The prediction from :meth:`features` (lets training reuse the features)."""
        return fine_ref + coarse_target - coarse_ref + self.head(feats)

    def forward(  # type: ignore[override]
        self, fine_ref: torch.Tensor, coarse_ref: torch.Tensor, coarse_target: torch.Tensor
    ) -> torch.Tensor:
        feats = self.features(fine_ref, coarse_ref, coarse_target)
        return self.head_output(feats, fine_ref, coarse_ref, coarse_target)


def make_student(bands: int, size: str = "micro") -> StudentNet:
    """A freshly initialised student of a named ``size``."""
    return StudentNet(bands, student_channels(size))


__all__ = ["STUDENT_SIZES", "StudentNet", "make_student", "student_channels"]
