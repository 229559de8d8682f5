"""The adversarial training step (GAN-STFM and the other adversarial networks).

:class:`GANTrainer` does one discriminator update then one generator update per batch; the
engine's :class:`stfusion.dl.engine.AdversarialModule` drives it. Moved out of
:mod:`stfusion.dl.train`, which still exports both names.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch

from stfusion.dl.losses import (
    CompoundLoss,
    SpectralLoss,
    discriminator_loss,
    feature_matching,
    generator_loss,
)
from stfusion.dl.networks import FusionNet, make_network
from stfusion.dl.networks.discriminators import (
    Discriminator,
    discriminator_class,
    has_features,
)
from stfusion.errors import InvalidParameterError

if TYPE_CHECKING:  # the config lives in train, which imports this module
    from stfusion.dl.train import TrainConfig

__all__ = ["GANTrainer", "gan_trainer"]


class GANTrainer:
    """One adversarial training step of a generator against a discriminator.

    Per batch (inputs ``F_r, C_r, C_t``, label ``F_t``, valid ``mask``; all normalised):

    1. the generator predicts ``P = G(F_r, C_r, C_t)``;
    2. discriminator update: ``D`` judges ``(C_t, F_t)`` as real and ``(C_t, P)`` (detached)
       as generated, conditioned on the coarse target as in GAN-STFM; loss
       :func:`~stfusion.dl.losses.discriminator_loss` (``gan_loss``, ``label_smoothing``);
       Adam with ``d_lr`` and betas (0.5, 0.999), the usual GAN setting;
    3. generator update with ``D`` frozen: reconstruction (``recon``: content + feature +
       vision) + ``sam_weight`` x spectral + ``adv_weight`` x
       :func:`~stfusion.dl.losses.generator_loss` + ``fm_weight`` x feature matching; Adam
       with ``lr`` (the authors' default betas).

    Invalid pixels (outside ``mask``) of ``P`` are replaced by the truth before ``D`` sees it,
    so the discriminator cannot tell the two apart by them. ``clip`` > 0 clips each network's
    gradient norm. Returned values (floats, unweighted): ``train_loss`` (the generator's
    total), the reconstruction parts, ``spectral``, ``g_adv``, ``fm``, ``d_loss``, ``d_real``
    and ``d_fake`` (mean logits) and ``ratio`` = ``d_loss / g_adv`` (meaningful for the least
    squares losses; the hinge generator loss can be negative).
    """

    def __init__(
        self,
        generator: FusionNet,
        discriminator: Discriminator,
        recon: CompoundLoss,
        spectral: SpectralLoss,
        cfg: TrainConfig,
    ) -> None:
        if cfg.fm_weight > 0 and not has_features(discriminator):
            raise InvalidParameterError(
                f"discriminator {cfg.discriminator!r} exposes no features(); "
                "feature matching (fm_weight > 0) needs them."
            )
        self.g, self.d, self.recon, self.spectral, self.cfg = (
            generator,
            discriminator,
            recon,
            spectral,
            cfg,
        )
        self.g_opt = torch.optim.Adam(generator.parameters(), lr=cfg.lr)
        self.d_opt = torch.optim.Adam(
            discriminator.parameters(), lr=cfg.d_lr or cfg.lr, betas=(0.5, 0.999)
        )

    def _judge(
        self, cond: torch.Tensor, img: torch.Tensor, feats: bool
    ) -> tuple[list[torch.Tensor], list[list[torch.Tensor]]]:
        if feats:
            return self.d.features(cond, img)
        return self.d(cond, img), []

    def _clip(self, module: torch.nn.Module) -> None:
        if self.cfg.clip > 0:
            torch.nn.utils.clip_grad_norm_(module.parameters(), self.cfg.clip)

    def step(
        self,
        fine_ref: torch.Tensor,
        coarse_ref: torch.Tensor,
        coarse_target: torch.Tensor,
        fine_target: torch.Tensor,
        mask: torch.Tensor,
        *,
        stats: torch.Tensor | None = None,
        g_opt: Any = None,
        d_opt: Any = None,
        backward: Any = None,
    ) -> dict[str, float]:
        """One step; ``g_opt``, ``d_opt``, ``backward``: the engine's optimizers and backward
        (mixed precision, strategies), else this trainer's own and ``Tensor.backward``."""
        cfg = self.cfg
        g_opt = g_opt or self.g_opt
        d_opt = d_opt or self.d_opt
        backward = backward or (lambda loss: loss.backward())
        self.g.train()
        self.d.train()
        pred = self.g(fine_ref, coarse_ref, coarse_target)
        fake = torch.where(mask, pred, fine_target)
        use_fm = cfg.fm_weight > 0
        # (1) discriminator
        for p in self.d.parameters():
            p.requires_grad_(True)
        d_opt.zero_grad()
        real_logits, real_feats = self._judge(coarse_target, fine_target, use_fm)
        fake_logits, _ = self._judge(coarse_target, fake.detach(), False)
        d_loss = discriminator_loss(real_logits, fake_logits, cfg.gan_loss, cfg.label_smoothing)
        backward(d_loss)
        self._clip(self.d)
        d_opt.step()
        # (2) generator, the discriminator frozen
        for p in self.d.parameters():
            p.requires_grad_(False)
        g_opt.zero_grad()
        recon, parts = self.recon(pred, fine_target, mask, stats)
        spectral = self.spectral(pred, fine_target, mask)
        g_logits, g_feats = self._judge(coarse_target, fake, use_fm)
        g_adv = generator_loss(g_logits, cfg.gan_loss)
        total = recon + cfg.sam_weight * spectral + cfg.adv_weight * g_adv
        fm = torch.zeros((), device=pred.device)
        if use_fm:
            fm = feature_matching(real_feats, g_feats)
            total = total + cfg.fm_weight * fm
        backward(total)
        self._clip(self.g)
        g_opt.step()
        for p in self.d.parameters():
            p.requires_grad_(True)
        d, g = float(d_loss.detach()), float(g_adv.detach())
        return {
            "train_loss": float(total.detach()),
            **parts,
            "spectral": float(spectral.detach()),
            "g_adv": g,
            "fm": float(fm.detach()),
            "d_loss": d,
            "d_real": float(torch.stack([x.detach().mean() for x in real_logits]).mean()),
            "d_fake": float(torch.stack([x.detach().mean() for x in fake_logits]).mean()),
            "ratio": d / g if g > 0 else float("inf"),
        }


def gan_trainer(
    cfg: TrainConfig,
    bands: int,
    mean: Sequence[float],
    std: Sequence[float],
    data_range: Sequence[float] | float,
    encoder: torch.nn.Module | None = None,
    device: torch.device | str = "cpu",
) -> GANTrainer:
    """A :class:`GANTrainer` with fresh networks for a resolved, validated ``cfg`` (the
    generator ``cfg.model`` at ``cfg.size``, its discriminator, the losses)."""
    net = make_network(cfg.model, bands, cfg.size).to(device)
    disc = discriminator_class(cfg.discriminator)(2 * bands, cfg.size).to(device)
    recon = CompoundLoss(
        encoder,
        torch.as_tensor(data_range, dtype=torch.float32),
        cfg.content,
        cfg.alpha,
        cfg.beta if encoder is not None else 0.0,
    ).to(device)
    spectral = SpectralLoss(list(mean), list(std)).to(device)
    return GANTrainer(net, disc, recon, spectral, cfg)
