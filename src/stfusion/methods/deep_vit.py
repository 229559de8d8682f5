"""The transformer GAN (ViTGAN-style, with Swin windows) as a fusion method.

Lee et al. 2022 (ICLR), "ViTGAN: Training GANs with Vision Transformers", and the windowed
attention of SwinSTFM (Chen et al. 2022, IEEE TGRS 60, 5410618). The network, its
discriminator and the sizes live in :mod:`stfusion.dl.networks.vitgan`; training is the generic
adversarial loop of :mod:`stfusion.dl.train` (``stfusion train --model vitgan``); docs in
docs/methods/vitgan.md.

Everything else is :class:`~stfusion.methods.deep.DeepMethod`: ``weights`` (a checkpoint, or
``demo`` for the shipped band-agnostic multi-site weights), scene-anchored tiles of ``tile`` px
with ``overlap`` px of context. The network's attention windows are anchored at its input
origin, so ``tile`` and ``overlap`` must be multiples of the window size in pixels (16 px for
tiny and small, 32 px for paper; 256 and ``auto`` are); ``auto`` overlap is the receptive
field (27, 43, 83 px) rounded up to that multiple (32, 48, 96 px), and then tiled output
equals whole-scene output (tested).
"""

from __future__ import annotations

from stfusion.methods.deep import DeepMethod
from stfusion.methods.params import MethodTags


class VITGAN(DeepMethod):
    """Transformer GAN: ViTGAN's self-modulated LayerNorm and Lipschitz ViT discriminator,
    Swin windowed attention; one pair. See stfusion.dl.networks.vitgan."""

    name = "vitgan"
    title = "transformer GAN (ViTGAN-style)"
    paper = "Lee et al. 2022, ICLR (ViTGAN); windows as SwinSTFM, Chen et al. 2022, IEEE TGRS 60"
    tile_bytes_per_pixel = 1200.0
    tags = MethodTags(min_pairs=1, max_pairs=1, needs_torch=True, quality=("fallback",))
