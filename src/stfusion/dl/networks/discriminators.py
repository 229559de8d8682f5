"""Discriminators of the GAN fusion models, and their registry.

Interface (every discriminator, whatever its architecture):

- constructor ``Cls(bands_in: int, size: str)``: ``bands_in`` is the number of channels the
  discriminator sees, condition and image together (the adversarial loop passes the coarse
  target image as the condition, so ``bands_in = 2 x bands``); ``size`` is ``tiny``,
  ``small`` or ``paper``;
- ``forward(condition, image) -> list[Tensor]``: one map of logits ``(N, 1, h_s, w_s)`` per
  scale (a single scale is a list of one; a global discriminator returns ``(N, 1, 1, 1)``).
  ``condition`` is ``(N, bands_in - bands, H, W)``, ``image`` ``(N, bands, H, W)``, both
  normalised like the generator's inputs; H and W are the training patch size (16 px or
  more) or the validation block;
- optional, for discriminator feature matching (``TrainConfig.fm_weight > 0``):
  ``features(condition, image) -> (logits, feats)``, ``feats`` one list of intermediate
  feature maps per scale. Subclasses of :class:`Discriminator` implement ``features`` and get
  ``forward`` from it;
- ``config() -> dict`` (stored in checkpoints) and no state outside ``state_dict()`` (resume
  restores it).

The loss (least squares or hinge), label smoothing and the update order belong to the loop
(:mod:`stfusion.dl.train`), not to the discriminator. Register a new one in
:func:`_registry` (a dict from name to class; optional modules are imported lazily).

PatchGAN (``patchgan``): a multi-scale PatchGAN (Isola et al. 2017; three scales as in
pix2pixHD, Wang et al. 2018, and in GAN-STFM's multi-scale discriminator): the input
``cat(condition, image)`` at full, 1/2 and 1/4 resolution (2x2 average pooling between
scales), each scale judged by its own network: 4x4 convolution stride 2 (width ``w``),
4x4 stride 2 (2 w), 3x3 stride 1 (4 w), 3x3 stride 1 to one logit per position, LeakyReLU 0.2
between them, spectral normalisation (Miyato et al. 2018) on every convolution and no batch
normalisation. ``w`` = 8, 16, 32 for tiny, small, paper (GAN-STFM's first width is 32).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

#: First width of the PatchGAN of each named size.
PATCHGAN_WIDTHS = {"tiny": 8, "small": 16, "paper": 32}
#: Scales of the multi-scale PatchGAN (full, 1/2, 1/4 resolution).
PATCHGAN_SCALES = 3


class Discriminator(nn.Module):
    """Base class: implement :meth:`features`; ``forward`` returns its logits."""

    name: ClassVar[str] = ""

    def __init__(self, bands_in: int, size: str) -> None:
        super().__init__()
        self.bands_in = int(bands_in)
        self.size = str(size)

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "bands_in": self.bands_in, "size": self.size}

    def features(
        self, condition: torch.Tensor, image: torch.Tensor
    ) -> tuple[list[torch.Tensor], list[list[torch.Tensor]]]:
        raise NotImplementedError

    def forward(self, condition: torch.Tensor, image: torch.Tensor) -> list[torch.Tensor]:
        return self.features(condition, image)[0]

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def has_features(disc: nn.Module) -> bool:
    """Whether ``disc`` exposes intermediate features (for feature matching)."""
    method = getattr(type(disc), "features", None)
    return method is not None and method is not Discriminator.features


def _sn_conv(cin: int, cout: int, k: int, stride: int) -> nn.Module:
    return spectral_norm(nn.Conv2d(cin, cout, k, stride=stride, padding=1))


class _PatchNet(nn.Sequential):
    def __init__(self, cin: int, w: int) -> None:
        act = nn.LeakyReLU(0.2)
        super().__init__(
            _sn_conv(cin, w, 4, 2),
            act,
            _sn_conv(w, 2 * w, 4, 2),
            act,
            _sn_conv(2 * w, 4 * w, 3, 1),
            act,
            _sn_conv(4 * w, 1, 3, 1),
        )

    def run(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        feats = []
        for layer in self:
            x = layer(x)
            if isinstance(layer, nn.LeakyReLU):
                feats.append(x)
        return x, feats


class PatchGAN(Discriminator):
    """Multi-scale PatchGAN with spectral normalisation; see the module docstring."""

    name = "patchgan"

    def __init__(self, bands_in: int, size: str = "small") -> None:
        super().__init__(bands_in, size)
        if size not in PATCHGAN_WIDTHS:
            from stfusion.errors import InvalidParameterError

            raise InvalidParameterError(
                f"discriminator size {size!r}: choose one of {', '.join(PATCHGAN_WIDTHS)}."
            )
        w = PATCHGAN_WIDTHS[size]
        self.nets = nn.ModuleList(_PatchNet(self.bands_in, w) for _ in range(PATCHGAN_SCALES))

    def features(
        self, condition: torch.Tensor, image: torch.Tensor
    ) -> tuple[list[torch.Tensor], list[list[torch.Tensor]]]:
        x = torch.cat((condition, image), 1)
        logits, feats = [], []
        for s, net in enumerate(self.nets):
            assert isinstance(net, _PatchNet)  # a ModuleList yields plain Modules to mypy
            if s:
                x = F.avg_pool2d(x, 2, ceil_mode=True)
            out, f = net.run(x)
            logits.append(out)
            feats.append(f)
        return logits, feats


def _registry() -> dict[str, type[Discriminator]]:
    """Name -> discriminator class. Extend the dict here."""
    kinds: dict[str, type[Discriminator]] = {"patchgan": PatchGAN}
    # --- optional discriminators, imported lazily (their module may not exist) -----------
    try:
        from stfusion.dl.networks.vitgan import ViTDiscriminator
    except ModuleNotFoundError as exc:
        if exc.name != "stfusion.dl.networks.vitgan":
            raise  # vitgan.py exists but needs a missing package: show which
    else:
        kinds["vit"] = ViTDiscriminator
    # --- end of optional discriminators ---------------------------------------------------
    return kinds


def discriminator_class(name: str) -> type[Discriminator]:
    """The discriminator class registered as ``name`` (patchgan, ...)."""
    kinds = _registry()
    if name not in kinds:
        from stfusion.errors import InvalidParameterError

        raise InvalidParameterError(
            f"unknown discriminator {name!r}; known: {', '.join(sorted(kinds))}."
        )
    return kinds[name]


def make_discriminator(name: str, bands_in: int, size: str = "small") -> Discriminator:
    """A freshly initialised discriminator."""
    return discriminator_class(name)(bands_in, size)


__all__ = [
    "Discriminator",
    "PatchGAN",
    "discriminator_class",
    "has_features",
    "make_discriminator",
]
