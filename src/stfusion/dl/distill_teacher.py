"""Distillation's teacher side and loss: the teacher's feature maps (listing, the automatic
choice), the frozen :class:`Teacher` (predictions and features on the student's
normalisation) and :class:`DistillLoss`.

Moved out of :mod:`stfusion.dl.distill`, which still exports these names.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from stfusion.dl.checkpoint import Checkpoint
from stfusion.dl.losses import masked_mean
from stfusion.dl.networks import FusionNet
from stfusion.dl.networks.agnostic import whole_batch
from stfusion.errors import InvalidParameterError

__all__ = [
    "PROBE_BATCH",
    "DistillLoss",
    "Teacher",
    "auto_feature_layer",
    "feature_layers",
    "feature_loss",
    "masked_mse",
]

#: Batch of the probe pass that lists a teacher's feature maps (2 reveals layers that stack
#: their inputs along the batch, which cannot be matched to the student's features).
PROBE_BATCH = 2
_PAD_TYPES = (nn.ReflectionPad2d, nn.ReplicationPad2d, nn.ZeroPad2d, nn.ConstantPad2d)
_SKIP_TYPES = (nn.Identity, nn.Dropout, nn.Dropout2d)


def feature_layers(
    net: nn.Module, bands: int, size: int = 32, also: str | None = None
) -> list[tuple[str, tuple[int, ...]]]:
    """``(name, output shape)`` of every leaf module of ``net`` (and of the module named
    ``also``, leaf or not) in execution order, from one forward pass on a ``size`` x ``size``
    zero input; padding and identity modules are skipped."""
    found: list[tuple[str, tuple[int, ...]]] = []
    handles = []
    for name, mod in net.named_modules():
        leaf = next(mod.children(), None) is None and not isinstance(mod, _PAD_TYPES + _SKIP_TYPES)
        if not leaf and (name != also or not name):
            continue

        def hook(_m: nn.Module, _i: Any, out: Any, name: str = name) -> None:
            if isinstance(out, torch.Tensor) and out.ndim == 4:
                found.append((name, tuple(out.shape)))

        handles.append(mod.register_forward_hook(hook))
    dev = next(net.parameters()).device
    x = torch.zeros(PROBE_BATCH, bands, size, size, device=dev)
    try:
        with torch.no_grad(), whole_batch(net):
            net(x, x, x)
    finally:
        for h in handles:
            h.remove()
    return found


def auto_feature_layer(
    net: nn.Module, bands: int, layers: list[tuple[str, tuple[int, ...]]] | None = None
) -> str:
    """The teacher's penultimate feature map (see the module docstring); ``layers``: the
    result of :func:`feature_layers` (probed at 32 px) if already known."""
    size = 32
    layers = feature_layers(net, bands, size) if layers is None else layers
    for name, shape in reversed(layers[:-1]):
        if shape[0] == PROBE_BATCH and shape[1] != bands and max(shape[2:]) <= size:
            return name
    raise InvalidParameterError(
        "could not find a feature layer in the teacher (none before its output layer is "
        "per-image and wider than the bands); give one with --feature-layer (its modules: "
        f"{', '.join(n for n, _ in layers)}), or --beta 0 to distil outputs only."
    )


class Teacher(nn.Module):
    """A frozen teacher network in the student's normalisation, with a forward hook on
    ``feature_layer`` (``None``: no features)."""

    # Buffers (register_buffer), declared for the type checker.
    scale: torch.Tensor
    shift: torch.Tensor

    def __init__(
        self,
        checkpoint: Checkpoint,
        mean: np.ndarray,
        std: np.ndarray,
        feature_layer: str | None,
        net: FusionNet | None = None,
    ) -> None:
        super().__init__()
        self.checkpoint = checkpoint
        self.net = checkpoint.network() if net is None else net.eval()
        for p in self.net.parameters():
            p.requires_grad_(False)
        # x_teacher = x_student * scale + shift (both from physical units). A band-agnostic
        # teacher and its student share the per-sample normalisation: nothing to convert.
        scale, shift = np.ones(1), np.zeros(1)
        if not checkpoint.agnostic:
            t_mean, t_std = checkpoint.mean.astype(np.float64), checkpoint.std.astype(np.float64)
            scale = np.asarray(std, np.float64) / t_std
            shift = (np.asarray(mean, np.float64) - t_mean) / t_std
        self.register_buffer("scale", torch.tensor(scale, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("shift", torch.tensor(shift, dtype=torch.float32).view(1, -1, 1, 1))
        self.feature_layer = feature_layer
        self._feature: torch.Tensor | None = None
        if feature_layer is not None:
            modules = dict(self.net.named_modules())
            if feature_layer not in modules or feature_layer == "":
                names = [n for n, _ in feature_layers(self.net, checkpoint.bands)]
                raise InvalidParameterError(
                    f"feature layer {feature_layer!r} is not a module of the teacher "
                    f"({checkpoint.model}); choose one of: {', '.join(names)} (or auto)."
                )
            modules[feature_layer].register_forward_hook(self._capture)
        self.train(False)

    def _capture(self, _m: nn.Module, _i: Any, out: Any) -> None:
        self._feature = out

    def train(self, mode: bool = True) -> Teacher:
        # Frozen: always in eval mode, also when a shared helper calls .train().
        return super().train(False)

    def forward(
        self, fine_ref: torch.Tensor, coarse_ref: torch.Tensor, coarse_target: torch.Tensor
    ) -> torch.Tensor:
        return self.predict(fine_ref, coarse_ref, coarse_target)[0]

    def predict(
        self, fine_ref: torch.Tensor, coarse_ref: torch.Tensor, coarse_target: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The teacher's prediction (student normalisation) and its hooked features."""
        a, b = self.scale, self.shift
        self._feature = None
        with torch.no_grad(), whole_batch(self.net):
            out = self.net(fine_ref * a + b, coarse_ref * a + b, coarse_target * a + b)
        feat = self._feature
        self._feature = None
        return (out - b) / a, feat


# ----------------------------------------------------------------------------- the loss


def masked_mse(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean squared difference over the pixels where ``mask`` ``(N, 1, H, W)`` is true."""
    return masked_mean((a - b) ** 2, mask)


def feature_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """MSE of adapted student features against the teacher's, relative to the mean square of
    the teacher's; student features are average-pooled to a coarser teacher map."""
    if student.shape[-2:] != teacher.shape[-2:]:
        student = F.adaptive_avg_pool2d(student, (teacher.shape[-2], teacher.shape[-1]))
    energy = teacher.detach().pow(2).mean().clamp_min(1e-8)
    return F.mse_loss(student, teacher) / energy


class DistillLoss(nn.Module):
    """``L_gt + alpha * L_teacher + beta * L_feature`` (see the module docstring)."""

    def __init__(self, alpha: float = 1.0, beta: float = 0.1) -> None:
        super().__init__()
        self.alpha = float(alpha)
        self.beta = float(beta)

    def forward(
        self,
        pred: torch.Tensor,
        target: torch.Tensor,
        mask: torch.Tensor | None = None,
        teacher_pred: torch.Tensor | None = None,
        student_feat: torch.Tensor | None = None,
        teacher_feat: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        gt = masked_mse(pred, target, mask)
        total = gt
        parts = {"gt": float(gt.detach())}
        if self.alpha and teacher_pred is not None:
            out = masked_mse(pred, teacher_pred, mask)
            total = total + self.alpha * out
            parts["teacher"] = float(out.detach())
        if self.beta and student_feat is not None and teacher_feat is not None:
            feat = feature_loss(student_feat, teacher_feat)
            total = total + self.beta * feat
            parts["feature"] = float(feat.detach())
        return total, parts
