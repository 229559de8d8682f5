"""The fusion networks, one module each, and how to build them from a checkpoint's config.

Every network works on tensors normalised per band (``(x - mean_b) / std_b``, the same
statistics for fine and coarse images so that fine/coarse differences keep their meaning),
shaped ``(batch, bands, H, W)``, all on the fine grid. ``forward(fine_ref, coarse_ref,
coarse_target)`` predicts the fine image at the target date from one pair.

Two properties make tiled inference exact (see :mod:`stfusion.dl.infer`):

- ``radius``: the receptive-field radius in fine pixels: an output pixel depends only on the
  inputs within ``radius`` pixels of it;
- ``multiple``: inputs must start on, and span, multiples of this many pixels (2 for DCSTFN,
  whose pooling / stride-2 layers make the output depend on the pixel parity).

Generators of GANs set ``adversarial = True``: :func:`stfusion.dl.train.train` then trains
them with the adversarial loop against the discriminator named by their ``discriminator``
class attribute (or ``TrainConfig.discriminator``), looked up in
:mod:`stfusion.dl.networks.discriminators`. A network whose widths are not the three-width
:data:`SIZES` defines its own ``sizes`` (tiny, small, paper).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import nn

#: Channel widths of each named size. ``paper`` is the configuration of both papers
#: (32, 64, 128 feature maps); the smaller ones keep the topology and cut the cost ~4x / ~16x.
SIZES: dict[str, tuple[int, int, int]] = {
    "tiny": (8, 16, 32),
    "small": (16, 32, 64),
    "paper": (32, 64, 128),
}


def channels_for(size: str) -> tuple[int, int, int]:
    from stfusion.errors import InvalidParameterError

    if size not in SIZES:
        raise InvalidParameterError(
            f"size {size!r}: choose one of {', '.join(SIZES)} ('paper' = the published widths)."
        )
    return SIZES[size]


class FusionNet(nn.Module):
    """Common interface of the fusion networks."""

    # Class defaults, not ClassVars: a network whose reach depends on its size sets radius
    # and multiple per instance, and AgnosticNet takes all of these from its inner network.
    name: str = ""
    radius: int = 0
    multiple: int = 1
    max_pairs: int = 1
    #: True for the generator of a GAN (trained by the adversarial loop).
    adversarial: bool = False
    #: Default discriminator of an adversarial network (a name in ``discriminators``).
    discriminator: str = ""
    #: Widths of the named sizes, if not :data:`SIZES`.
    sizes: ClassVar[Mapping[str, tuple[int, ...]] | None] = None
    #: True when ``forward`` already adds the additive prediction ``F_r + C_t - C_r`` to a
    #: correction that starts at zero (the band-agnostic wrapper then adds no baseline).
    residual_base: bool = False

    def __init__(self, bands: int, channels: tuple[int, ...]) -> None:
        super().__init__()
        self.bands = int(bands)
        self.channels = tuple(int(c) for c in channels)

    def config(self) -> dict[str, Any]:
        return {"network": self.name, "bands": self.bands, "channels": list(self.channels)}

    def forward(
        self, fine_ref: torch.Tensor, coarse_ref: torch.Tensor, coarse_target: torch.Tensor
    ) -> torch.Tensor:
        raise NotImplementedError

    def predict_pairs(
        self,
        fines: list[torch.Tensor],
        coarses: list[torch.Tensor],
        coarse_target: torch.Tensor,
        valid: list[torch.Tensor],
    ) -> torch.Tensor:
        """Prediction from one or more pairs; ``valid``: per pair ``(N, 1, H, W)`` masks.

        The default (one pair) ignores the masks: invalid pixels are masked by the caller.
        """
        return self(fines[0], coarses[0], coarse_target)

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    @classmethod
    def channels_for(cls, size: str) -> tuple[int, ...]:
        """The widths of a named ``size`` for this network."""
        if cls.sizes is None:
            return channels_for(size)
        if size not in cls.sizes:
            from stfusion.errors import InvalidParameterError

            raise InvalidParameterError(
                f"size {size!r}: choose one of {', '.join(cls.sizes)} ('paper' = the published "
                "widths)."
            )
        return cls.sizes[size]


#: Modules that may define more networks, imported only if present (a FusionNet subclass
#: with a ``name`` in them is registered under that name).
OPTIONAL_MODULES = (
    "stfusion.dl.networks.vitgan",
    "stfusion.dl.networks.stfdcnn",
    "stfusion.dl.networks.student",
)


def _registry() -> dict[str, type[FusionNet]]:
    from importlib import import_module

    from stfusion.dl.networks.dcstfn import DCSTFNNet
    from stfusion.dl.networks.edcstfn import EDCSTFNNet
    from stfusion.dl.networks.ganstfm import GANSTFMNet

    kinds: dict[str, type[FusionNet]] = {
        "dcstfn": DCSTFNNet,
        "edcstfn": EDCSTFNNet,
        "ganstfm": GANSTFMNet,
    }
    for module in OPTIONAL_MODULES:
        try:
            mod = import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:  # the module exists but fails inside: show that
                raise
            continue
        for obj in vars(mod).values():
            if isinstance(obj, type) and issubclass(obj, FusionNet) and obj.name:
                kinds.setdefault(obj.name, obj)
    return kinds


def network_names() -> list[str]:
    """Names of the registered networks."""
    return list(_registry())


def network_class(name: str) -> type[FusionNet]:
    """The network class registered as ``name`` (dcstfn, edcstfn, ganstfm, ...)."""
    from stfusion.errors import InvalidParameterError

    kinds = _registry()
    if name not in kinds:
        raise InvalidParameterError(f"unknown network {name!r}; known: {', '.join(kinds)}.")
    return kinds[name]


def build_network(config: dict[str, Any]) -> FusionNet:
    """A network from its ``config()`` (as stored in checkpoints); a config with an
    ``agnostic`` baseline is a single-band network in
    :class:`~stfusion.dl.networks.agnostic.AgnosticNet` (any band count, residual)."""
    cls = network_class(str(config.get("network")))
    if config.get("agnostic"):
        from stfusion.dl.networks.agnostic import AgnosticNet

        one = {**config, "bands": 1}
        inner = (
            cls.from_config(one)
            if hasattr(cls, "from_config")  # STFDCNN: factor, window
            else cls(1, tuple(config["channels"]))
        )
        return AgnosticNet(inner, str(config["agnostic"]), int(config.get("smooth", 8)))
    if hasattr(cls, "from_config"):  # STFDCNN: factor, window, residual
        return cls.from_config(config)
    return cls(int(config["bands"]), tuple(config["channels"]))


def make_network(
    name: str,
    bands: int,
    size: str = "small",
    agnostic: bool = False,
    baseline: str | None = None,
    radius: int | None = None,
) -> FusionNet:
    """A freshly initialised network of a named ``size`` (tiny, small, paper); with
    ``agnostic``, the band-agnostic residual form (``bands`` is then ignored: 1) correcting
    ``baseline`` (default: the method's) with boxes of ``radius`` px (default: the
    baseline's)."""
    widths = network_class(name).channels_for(size)
    if agnostic:
        from stfusion.dl.networks.agnostic import wrap

        # "residual": STFDCNN's CNNs start as identities (its output is a full prediction).
        return wrap(
            build_network(
                {"network": name, "bands": 1, "channels": list(widths), "residual": True}
            ),
            baseline,
            radius,
        )
    return build_network({"network": name, "bands": bands, "channels": list(widths)})


__all__ = [
    "SIZES",
    "FusionNet",
    "build_network",
    "channels_for",
    "make_network",
    "network_class",
    "network_names",
]
