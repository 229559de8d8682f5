"""Training the fusion networks (DCSTFN, EDCSTFN, GAN-STFM, ...) on the user's own pairs.

``train(pairs, out, TrainConfig(...))`` (and ``stfusion train``) does, in order:

1. open the pairs (``--pair``, or the sites of a ``--catalog``) with
   :func:`stfusion.scene.open_scene` (the scaling and alignment that ``stfusion predict``
   uses), take their dates from ``dates``, the catalog or the file names;
2. build the examples (ordered date pairs within a site, at most ``max_gap`` days apart), the
   per-band normalisation, the validation (a spatial block per site and/or held-out dates,
   a fixed sample of ``val_patches`` patches) and the streaming datasets
   (:mod:`stfusion.dl.datasets`);
3. EDCSTFN, and GANs with a feature loss (``beta > 0``): train the feature-loss autoencoder
   on fine patches (``ae_steps`` steps, its own progress line), then freeze it;
4. train the network with the engine (:mod:`stfusion.dl.engine`, PyTorch Lightning): Adam on
   random patches, ``steps_per_epoch`` batches per epoch, validation after each epoch, the
   best weights kept, the checkpoint written atomically and the loss log appended
   (``<out>.log.csv`` and a curve ``<out>.loss.png`` beside the checkpoint), early stopping
   after ``patience`` epochs without improvement.

Adversarial networks (a :class:`~stfusion.dl.networks.FusionNet` with ``adversarial = True``,
e.g. GAN-STFM) train with :class:`GANTrainer` (one discriminator update then one generator
update per batch, :class:`stfusion.dl.engine.AdversarialModule`) against the discriminator
named by ``TrainConfig.discriminator`` (``auto``: the generator's own, ``patchgan`` for
GAN-STFM) from :mod:`stfusion.dl.networks.discriminators`. The generator's loss is the
reconstruction loss (content + ``beta`` feature + ``alpha`` vision) + ``sam_weight`` spectral
+ ``adv_weight`` adversarial + ``fm_weight`` discriminator feature matching; the epoch log
adds the discriminator's loss, its mean outputs on real and generated images and the range of
the per-step ratio ``d_loss / g_adv``. The best epoch, early stopping and the stored weights
follow the validation RMSE (never the adversarial losses, which do not measure accuracy).

Reproducibility: ``seed`` drives Lightning's ``seed_everything`` (weights) and the patch
generator of each item (:class:`stfusion.dl.datasets.PatchDataset`); on the CPU
``torch.use_deterministic_algorithms(True)`` is set while training, so the same seed, data,
configuration and thread count give the same weights. ``resume=True`` continues from the
Lightning state beside the checkpoint (``<stem>.lightning/resume.ckpt``): training 2 epochs
and resuming for a 3rd gives the weights of 3 epochs in one go.
"""

from __future__ import annotations

import copy
import csv
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

import stfusion
from stfusion.dl import datasets as ds
from stfusion.dl import engine
from stfusion.dl.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from stfusion.dl.data import resolve_dates
from stfusion.dl.engine import ProgressFn, cpu_state
from stfusion.dl.losses import (
    GAN_LOSSES,
    CompoundLoss,
    SpectralLoss,
    content_loss,
    discriminator_loss,
    feature_matching,
    generator_loss,
)
from stfusion.dl.networks import (
    FusionNet,
    channels_for,
    make_network,
    network_class,
    network_names,
)
from stfusion.dl.networks.autoencoder import Autoencoder
from stfusion.dl.networks.discriminators import (
    Discriminator,
    discriminator_class,
    has_features,
)
from stfusion.errors import InvalidParameterError, OutputExistsError
from stfusion.io import AlignedSource, FileSource, Scaling, Source, atomic_path
from stfusion.run_config import TrainSettings
from stfusion.scene import ImageLike, Scene

__all__ = [
    "GANTrainer",
    "ProgressFn",
    "TrainConfig",
    "TrainResult",
    "cpu_state",
    "gan_trainer",
    "log_paths",
    "random_checkpoint",
    "train",
    "write_log",
]


@dataclass
class TrainConfig(TrainSettings):
    """:class:`stfusion.run_config.TrainSettings` (the fields and defaults, without torch) with
    the checks and ``auto`` values that need the networks."""

    def validate(self) -> None:
        try:
            net = network_class(self.model)
        except InvalidParameterError:
            raise InvalidParameterError(
                f"model {self.model!r}: choose one of {', '.join(network_names())}."
            ) from None
        net.channels_for(self.size)
        validate_run_options(self)
        if not str(self.init):
            raise InvalidParameterError("init: give none, shipped or a checkpoint path.")
        if not 0.0 <= float(self.time_mix) <= 1.0:
            raise InvalidParameterError(f"time_mix must be in [0, 1], got {self.time_mix}.")
        if self.content not in ("auto", "mse", "l1"):
            raise InvalidParameterError(f"content loss {self.content!r}: choose mse or l1.")
        if self.model == "dcstfn" and self.patch % 2:
            raise InvalidParameterError(f"dcstfn needs an even patch size, got {self.patch}.")
        if not net.adversarial:
            if self.discriminator != "auto":
                raise InvalidParameterError(
                    f"{self.model} is not a GAN; --discriminator applies to adversarial models."
                )
            return
        if self.discriminator != "auto":
            discriminator_class(self.discriminator)
        if self.gan_loss not in GAN_LOSSES:
            raise InvalidParameterError(
                f"GAN loss {self.gan_loss!r}: choose one of {', '.join(GAN_LOSSES)}."
            )
        for name in ("adv_weight", "fm_weight", "sam_weight", "alpha", "beta", "d_lr", "clip"):
            value = float(getattr(self, name))
            if not (value >= 0.0 and np.isfinite(value)):
                raise InvalidParameterError(f"{name} must be >= 0, got {value}.")
        if not 0.0 <= self.label_smoothing < 0.5:
            raise InvalidParameterError(
                f"label_smoothing must be in [0, 0.5), got {self.label_smoothing}."
            )

    def resolved(self) -> TrainConfig:
        """A copy with ``auto`` values replaced by the model's defaults (what is stored)."""
        net = network_class(self.model)
        cfg = copy.deepcopy(self)
        if cfg.content == "auto":
            cfg.content = "l1" if net.adversarial else "mse"
        if net.adversarial and cfg.discriminator == "auto":
            if not net.discriminator:
                raise InvalidParameterError(
                    f"{self.model} names no default discriminator; give --discriminator."
                )
            cfg.discriminator = net.discriminator
        return cfg


@dataclass
class TrainResult:
    """What a training run produced."""

    checkpoint: Path
    epochs: int
    best_epoch: int
    best_val_loss: float
    seconds: float
    stopped_early: bool
    history: list[dict[str, float]] = field(default_factory=list)


def log_paths(out: str | os.PathLike[str]) -> tuple[Path, Path]:
    """The loss log (CSV) and curve (PNG) written beside a checkpoint."""
    p = Path(out)
    stem = p.name[: -len(p.suffix)] if p.suffix else p.name
    return p.with_name(f"{stem}.log.csv"), p.with_name(f"{stem}.loss.png")


def write_log(
    history: list[dict[str, float]], out: str | os.PathLike[str], plot: bool = True
) -> tuple[Path, Path]:
    """Write the loss log CSV (and, with ``plot``, the PNG curve) beside the checkpoint."""
    csv_path, png_path = log_paths(out)
    keys = list(history[0]) if history else ["epoch"]
    with atomic_path(csv_path, overwrite=True) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=keys)
        writer.writeheader()
        for row in history:
            writer.writerow({k: f"{v:.6g}" if isinstance(v, float) else v for k, v in row.items()})
    if history and plot:
        from matplotlib.figure import Figure  # no pyplot: leaves the caller's backend alone

        ep = [r["epoch"] for r in history]
        gan = "d_loss" in history[-1]
        fig = Figure(figsize=(6, 6.4 if gan else 3.6), dpi=100)
        ax = fig.add_subplot(2, 1, 1) if gan else fig.add_subplot()
        ax.plot(ep, [r["train_loss"] for r in history], label="train loss")
        ax.plot(ep, [r["val_loss"] for r in history], label="validation loss (held-out block)")
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        ax.set_yscale("log")
        ax2 = ax.twinx()
        ax2.plot(
            ep,
            [r["val_rmse"] for r in history],
            color="tab:green",
            ls="--",
            label="validation RMSE",
        )
        if "val_rmse_additive" in history[-1]:
            ax2.axhline(
                history[-1]["val_rmse_additive"],
                color="grey",
                ls=":",
                label="validation RMSE of the additive baseline",
            )
        ax2.set_ylabel("validation RMSE (data units)")
        lines = ax.get_lines() + ax2.get_lines()
        ax.legend(lines, [str(line.get_label()) for line in lines], fontsize=8)
        if gan:
            ax.set_title("generator (reconstruction + adversarial)", fontsize=9)
            ax3 = fig.add_subplot(2, 1, 2)
            ax3.plot(ep, [r["d_loss"] for r in history], label="discriminator loss")
            ax3.plot(ep, [r["g_adv"] for r in history], label="generator adversarial loss")
            ax3.plot(ep, [r["d_real"] for r in history], ls="--", label="mean D(real)")
            ax3.plot(ep, [r["d_fake"] for r in history], ls="--", label="mean D(generated)")
            ax3.set_xlabel("epoch")
            ax3.set_ylabel("adversarial terms (unweighted)")
            ax3.legend(fontsize=8)
        fig.tight_layout()
        with atomic_path(png_path, overwrite=True) as tmp_png:
            fig.savefig(tmp_png, format="png")
    return csv_path, png_path


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


# ----------------------------------------------------------------------------- shared set-up
#: Options of a stored configuration that a resumed run may change.
RESUME_KEEP = ("epochs", "patience", "device", "threads", "workers", "precision", "strategy")


def validate_run_options(cfg: Any) -> None:
    """The options every run shares (``TrainConfig``, ``STFDCNNConfig``, ``DistillConfig``)."""
    for name in ("epochs", "patch", "batch", "patience", "val_patches"):
        if int(getattr(cfg, name)) < 1:
            raise InvalidParameterError(f"{name} must be >= 1, got {getattr(cfg, name)}.")
    if cfg.patch < 16:
        raise InvalidParameterError(f"patch must be at least 16 px, got {cfg.patch}.")
    if not cfg.lr > 0:
        raise InvalidParameterError(f"lr must be > 0, got {cfg.lr}.")
    if int(cfg.workers) < 0 or int(cfg.steps_per_epoch) < 0:
        raise InvalidParameterError("workers and steps_per_epoch must be >= 0.")
    if not float(cfg.max_gap) >= 0:
        raise InvalidParameterError(f"max_gap must be >= 0 days, got {cfg.max_gap}.")
    if not 0.0 <= float(cfg.val_fraction) < 1.0:
        raise InvalidParameterError(f"val_fraction must be in [0, 1), got {cfg.val_fraction}.")
    if not cfg.val_fraction and not cfg.val_dates:
        raise InvalidParameterError(
            "no validation: give --val-fraction > 0 (a spatial block) or --val-dates."
        )
    engine.check_precision(cfg.precision)
    engine.parse_devices(cfg.device)


def resumed_config(cls: Any, previous: Checkpoint, cfg: Any) -> Any:
    """The stored configuration of ``previous``, with the options of :data:`RESUME_KEEP`
    taken from ``cfg``."""
    stored = previous.data.get("config") or {}
    new = cls(**{f.name: stored.get(f.name, getattr(cfg, f.name)) for f in fields(cls)})
    for k in RESUME_KEEP:
        if hasattr(cfg, k):
            setattr(new, k, getattr(cfg, k))
    return new


def start_run(out: Path, resume: bool, overwrite: bool) -> Checkpoint | None:
    """Check ``out`` for a fresh or resumed run; the previous checkpoint when resuming."""
    if resume:
        engine.check_resumable(out)
        return load_checkpoint(out)
    if out.exists() and not overwrite:
        raise OutputExistsError(f"{out}: exists. Give --overwrite to replace it, or --resume.")
    engine.fresh_run(out)
    return None


def open_training_sites(
    pairs: Sequence[tuple[ImageLike, ImageLike]] | Scene | None,
    *,
    dates: Sequence[str] | None = None,
    catalog: str | os.PathLike[str] | None = None,
    fine_scaling: Scaling | None = None,
    coarse_scaling: Scaling | None = None,
    resampling: str = "nearest",
    any_bands: bool = False,
) -> list[ds.Site]:
    """The sites of a run: the ``pairs`` (one site, ``main``) and those of ``catalog``;
    ``any_bands``: sites may have different bands (band-agnostic networks)."""
    sites: list[ds.Site] = []
    if isinstance(pairs, Scene):
        iso = list(dates) if dates else None
        if iso is not None and len(set(iso)) != len(iso):
            raise InvalidParameterError(f"the pairs' dates repeat ({', '.join(iso)}).")
        sites.append(ds.Site("main", pairs, iso))
    elif pairs:
        iso = resolve_dates(list(pairs), dates)
        pair_dates: list[str | None] = [*iso] if iso else [None] * len(pairs)
        specs = [ds.PairSpec(f, c, d) for (f, c), d in zip(pairs, pair_dates)]
        sites += ds.open_sites(
            {"main": specs},
            fine_scaling=fine_scaling,
            coarse_scaling=coarse_scaling,
            resampling=resampling,
            any_bands=any_bands,
        )
    if catalog is not None:
        groups = ds.read_catalog(catalog)
        if sites and "main" in groups:
            raise InvalidParameterError(
                f"{catalog}: site name 'main' is taken by the --pair images; rename it."
            )
        sites += ds.open_sites(
            groups,
            fine_scaling=fine_scaling,
            coarse_scaling=coarse_scaling,
            resampling=resampling,
            any_bands=any_bands,
        )
    if not sites:
        raise InvalidParameterError("no pairs given: give --pair FINE COARSE or --catalog.")
    counts = {s.scene.count for s in sites}
    if len(counts) > 1 and not any_bands:
        raise InvalidParameterError("the --pair images and the catalog have different bands.")
    if sum(len(s.scene.pairs) for s in sites) < 2 or max(len(s.scene.pairs) for s in sites) < 2:
        n = max(len(s.scene.pairs) for s in sites)
        raise InvalidParameterError(
            f"training needs pairs at two or more dates (an example maps one date to "
            f"another); got {n}."
        )
    return sites


@dataclass
class RunData:
    """The data of one run: sites, held-out dates, normalisation, datasets."""

    sites: list[ds.Site]
    held_out: list[str]
    norm: ds.Normalisation
    train: torch.utils.data.Dataset
    val: ds.ValidationDataset
    steps: int

    def loaders(self, batch: int, workers: int) -> tuple[Any, Any]:
        return (
            ds.loader(self.train, batch, workers, fixed=False, drop_last=True),
            ds.loader(self.val, batch, workers, fixed=True, drop_last=False),
        )

    def fine_patches(self, cfg: Any, steps: int) -> Any:
        """Pair patches for ``steps`` autoencoder batches (their label is the fine image)."""
        data = ds.PatchDataset(
            self.sites,
            self.norm,
            ds.pair_examples(self.sites, self.held_out, cfg.max_gap),
            cfg.patch,
            steps * cfg.batch,
            cfg.seed,
            augment=True,
            stream=1,
        )
        return ds.loader(data, cfg.batch, cfg.workers, fixed=False, drop_last=True)

    @property
    def dates(self) -> list[str] | None:
        """Every date the run reads (training and held-out), in order, once."""
        if any(s.dates is None for s in self.sites):
            return None
        return list(dict.fromkeys(d for s in self.sites for d in s.dates or []))


def run_data(
    sites: list[ds.Site],
    cfg: Any,
    multiple: int = 1,
    single: bool = False,
    norm: ds.Normalisation | None = None,
) -> RunData:
    """Blocks, held-out dates, normalisation and datasets for a validated ``cfg``;
    ``single``: single-date training patches on the ``multiple`` grid (STFDCNN)."""
    held = [str(d) for d in cfg.val_dates]
    known = {d for s in sites for d in s.dates or []}
    if held and any(s.dates is None for s in sites):
        raise InvalidParameterError("--val-dates needs the pairs' dates (--dates or file names).")
    missing = [d for d in held if d not in known]
    if missing:
        raise InvalidParameterError(
            f"--val-dates {','.join(missing)}: not a date of the pairs "
            f"({', '.join(sorted(known))})."
        )
    if cfg.max_gap and any(s.dates is None for s in sites):
        raise InvalidParameterError("--max-gap needs the pairs' dates (--dates or file names).")
    ds.set_blocks(sites, cfg.val_fraction, multiple)
    used = ds.training_dates(sites, held)
    if norm is None and getattr(cfg, "agnostic", False):
        norm = ds.Normalisation.identity()
    if norm is None:
        with ds.streaming():
            norm = ds.Normalisation.from_sources(
                [sites[s].scene.pairs[i][0] for s, i in used],
                [sites[s].scene.pairs[i][1] for s, i in used],
            )
    examples = ds.pair_examples(sites, held, cfg.max_gap)
    steps = cfg.steps_per_epoch or ds.steps_per_epoch(sites, len(used), cfg.patch, cfg.batch)
    train_ds = ds.PatchDataset(
        sites,
        norm,
        examples,
        cfg.patch,
        steps * cfg.batch,
        cfg.seed,
        augment=cfg.augment,
        time_mix=getattr(cfg, "time_mix", 0.0),
        single=used if single else None,
        multiple=multiple if single else 1,
    )
    val_ds = ds.ValidationDataset(
        sites, norm, held, cfg.patch, cfg.val_patches, cfg.seed, cfg.max_gap, multiple
    )
    return RunData(sites, held, norm, train_ds, val_ds, steps)


def settings_of(cfg: Any, progress_bar: bool) -> engine.EngineSettings:
    return engine.EngineSettings(
        epochs=cfg.epochs,
        patience=cfg.patience,
        seed=cfg.seed,
        device=cfg.device,
        precision=cfg.precision,
        strategy=cfg.strategy,
        threads=cfg.threads,
        workers=cfg.workers,
        progress_bar=progress_bar,
    )


def _scaling_of(src: Source) -> dict[str, float] | None:
    src = getattr(src, "source", src)  # qa.MaskedSource
    if isinstance(src, AlignedSource):
        src = src.native
    if isinstance(src, FileSource):
        return {"scale": float(src.scale), "offset": float(src.offset)}
    return None


def checkpoint_record(
    model: str,
    network: dict[str, Any],
    data: RunData,
    cfg: Any,
    rec: engine.RunRecorder,
    meta: dict[str, Any] | None,
) -> dict[str, Any]:
    """The checkpoint fields every family writes (train, STFDCNN, distill).

    The prediction-time checks (bands, names, scaling, ratio, value range, training dates)
    read these fields; ``training_dates`` lists every date the run read (training and
    held-out), so the bench never scores a model on a date it has seen.
    """
    site = data.sites[0]
    scene = site.scene
    f0, c0 = scene.pairs[0]
    inputs = [[f.label, c.label] for s in data.sites for f, c in s.scene.pairs]
    per_sample = data.norm.per_sample
    ratios = {s.scene.ratio for s in data.sites}
    return {
        "model": model,
        "network": network,
        "state_dict": rec.best_state,
        # A band-agnostic network has one (any) band; its checks skip bands and scale.
        "bands": 1 if per_sample else scene.count,
        "band_names": ["any"] if per_sample else list(scene.band_names),
        "scaling": {"fine": _scaling_of(f0), "coarse": _scaling_of(c0)},
        "ratio": scene.ratio if len(ratios) == 1 else None,
        "norm": {
            "mean": list(data.norm.mean),
            "std": list(data.norm.std),
            "per_sample": per_sample,
        },
        "data_range": list(data.norm.data_range),
        "physical_range": data.norm.physical_range,
        "training_dates": data.dates or [],
        "training_sites": ds.describe(data.sites),
        "training_site_info": ds.describe_sites(data.sites),
        "validation_block": asdict(site.block) if site.block else None,
        "validation": {
            "dates": data.held_out,
            "patches": len(data.val),
            "fraction": cfg.val_fraction,
        },
        "config": asdict(cfg),
        "history": rec.history,
        "epoch": rec.epoch,
        "best_epoch": rec.best_epoch,
        "best_val_loss": rec.best_loss,
        "bad_epochs": rec.bad,
        "meta": engine.run_info(rec.seconds, inputs, dict(meta or {})),
    }


def check_resume(previous: Checkpoint, data_sites: list[ds.Site]) -> None:
    scene = data_sites[0].scene
    tied = not previous.agnostic
    if tied and (previous.bands != scene.count or previous.band_names != tuple(scene.band_names)):
        raise InvalidParameterError(
            f"--resume: {previous.path} was trained on {previous.bands} bands "
            f"({', '.join(previous.band_names)}), these pairs have {scene.count} "
            f"({', '.join(scene.band_names)})."
        )
    dates = list(dict.fromkeys(d for s in data_sites for d in s.dates or []))
    if dates and previous.training_dates and tuple(dates) != previous.training_dates:
        raise InvalidParameterError(
            f"--resume: {previous.path} was trained on {', '.join(previous.training_dates)}, "
            f"these pairs are {', '.join(dates)}; give the same pairs."
        )


def result_of(out: Path, rec: engine.RunRecorder, patience: int) -> TrainResult:
    return TrainResult(
        out, rec.epoch, rec.best_epoch, rec.best_loss, rec.seconds, rec.bad >= patience, rec.history
    )


# ----------------------------------------------------------------------------- train


def init_weights(net: FusionNet, cfg: TrainConfig) -> None:
    """Start ``net`` from ``cfg.init``: none, shipped (the model's shipped weights) or a
    checkpoint of the same model, form and size (fine-tuning)."""
    init = str(cfg.init)
    if init == "none":
        return
    if init == "shipped":
        from stfusion.methods.deep import shipped_weights

        path = shipped_weights(cfg.model)
        if not path.exists():
            raise InvalidParameterError(
                f"--init shipped: stfusion ships no {cfg.model} weights ({path}); use --init none."
            )
    else:
        path = Path(init)
    ck = load_checkpoint(path)
    want = {k: v for k, v in net.config().items() if k != "bands"}
    have = {k: v for k, v in ck.data["network"].items() if k not in ("bands", "size")}
    if ck.model != cfg.model or want != have:
        why = (
            f"{path} holds {ck.model} {ck.data['network']}, this run builds {cfg.model} "
            f"{net.config()} (size {cfg.size})"
        )
        if init == "shipped":
            import warnings

            from stfusion.errors import STFusionWarning

            # The default: other sizes or forms than the shipped ones train from scratch.
            warnings.warn(
                f"--init shipped: {why}; starting from fresh weights (the "
                "correction starts at zero).",
                STFusionWarning,
                stacklevel=3,
            )
            return
        raise InvalidParameterError(
            f"--init {init}: {why}; give the same model and --size, or --init none."
        )
    net.load_state_dict(ck.data["state_dict"])


def train(
    pairs: Sequence[tuple[ImageLike, ImageLike]] | Scene | None,
    out: str | os.PathLike[str],
    config: TrainConfig | None = None,
    *,
    dates: Sequence[str] | None = None,
    catalog: str | os.PathLike[str] | None = None,
    fine_scaling: Scaling | None = None,
    coarse_scaling: Scaling | None = None,
    resampling: str = "nearest",
    resume: bool = False,
    overwrite: bool = False,
    progress: ProgressFn | None = None,
    progress_bar: bool = False,
    meta: dict[str, Any] | None = None,
) -> TrainResult:
    """Train a fusion network on ``pairs`` (two or more dates) and/or the sites of a
    ``catalog`` CSV, and write the checkpoint ``out``.

    ``config`` (a :class:`TrainConfig`) holds the hyper-parameters; with ``resume=True`` the
    stored configuration is used, except the options of :data:`RESUME_KEEP`, which may be
    changed to continue a run. ``meta`` (e.g. the command line, notes) is stored with the
    checkpoint's metadata. ``progress`` receives one dict per autoencoder step and per epoch;
    ``progress_bar``: Lightning's bar with ETA when stderr is a terminal.
    """
    cfg = copy.deepcopy(config) if config is not None else TrainConfig()
    out = Path(out)
    previous = start_run(out, resume, overwrite)
    if previous is not None:
        cfg = resumed_config(TrainConfig, previous, cfg)
    cfg.validate()
    cfg = cfg.resolved()
    sites = open_training_sites(
        pairs,
        dates=dates,
        catalog=catalog,
        fine_scaling=fine_scaling,
        coarse_scaling=coarse_scaling,
        resampling=resampling,
        any_bands=cfg.agnostic,
    )
    if previous is not None:
        check_resume(previous, sites)
    net_cls = network_class(cfg.model)
    data = run_data(sites, cfg, net_cls.multiple)
    settings = settings_of(cfg, progress_bar)
    bands = 1 if cfg.agnostic else sites[0].scene.count
    with engine.deterministic(cfg.device, cfg.threads):
        import lightning as L

        L.seed_everything(cfg.seed, workers=True, verbose=False)
        net = make_network(cfg.model, bands, cfg.size, agnostic=cfg.agnostic)
        if previous is None:
            init_weights(net, cfg)
        disc = (
            discriminator_class(cfg.discriminator)(2 * bands, cfg.size)
            if net_cls.adversarial
            else None
        )
        ae: Autoencoder | None = None
        ae_losses: list[float] = []
        if (cfg.model == "edcstfn") or (disc is not None and cfg.beta > 0):
            ae = Autoencoder(bands, channels_for(cfg.size))
            if previous is not None:
                ae_losses = list((previous.data.get("autoencoder") or {}).get("losses", []))
            else:
                ae_losses = engine.pretrain_autoencoder(
                    ae,
                    data.fine_patches(cfg, cfg.ae_steps),
                    cfg.ae_steps,
                    cfg.lr,
                    settings,
                    engine.lightning_dir(out),
                    progress,
                )
        # MS-SSIM on physical values (reflectance: data range 1), not standardised ones:
        # band-tied runs denormalise with the training statistics, band-agnostic ones with
        # each sample's (the batch carries them).
        data_range = torch.full((bands,), float(data.norm.physical_range))
        phys = {"mean": data.norm.mean, "std": data.norm.std}
        module: engine.FusionModule
        if disc is not None:
            recon = CompoundLoss(
                ae.encoder if ae else None,
                data_range,
                cfg.content,
                cfg.alpha,
                cfg.beta if ae else 0.0,
                **phys,
            )
            spectral = SpectralLoss(list(data.norm.mean), list(data.norm.std))
            gan = GANTrainer(net, disc, recon, spectral, cfg)
            module = engine.AdversarialModule(gan, cfg.lr, data.norm.std)
        elif ae is not None:
            crit = CompoundLoss(ae.encoder, data_range, cfg.content, cfg.alpha, cfg.beta, **phys)
            module = engine.FusionModule(net, crit, cfg.lr, data.norm.std)
        else:
            module = engine.FusionModule(net, content_loss(cfg.content), cfg.lr, data.norm.std)

        def payload(rec: engine.RunRecorder, mod: engine.FusionModule) -> dict[str, Any]:
            rec_out = checkpoint_record(
                cfg.model, {**net.config(), "size": cfg.size}, data, cfg, rec, meta
            )
            rec_out["resume"] = {
                "state_dict": cpu_state(net.state_dict()),
                "lightning": str(engine.resume_path(out).name),
            }
            if ae is not None:
                rec_out["autoencoder"] = {
                    **ae.config(),
                    "state_dict": cpu_state(ae.state_dict()),
                    "losses": ae_losses[-20:],
                }
            if disc is not None:
                n_par = sum(p.numel() for p in disc.parameters())
                rec_out["discriminator"] = {**disc.config(), "n_parameters": n_par}
                rec_out["monitor"] = module.monitor
                rec_out["resume"]["discriminator"] = cpu_state(disc.state_dict())
            return rec_out

        train_dl, val_dl = data.loaders(cfg.batch, cfg.workers)
        rec = engine.fit(
            module,
            train_dl,
            val_dl,
            out,
            settings,
            payload,
            resume=previous is not None,
            progress=progress,
        )
    return result_of(out, rec, cfg.patience)


def random_checkpoint(
    out: str | os.PathLike[str],
    model: str,
    bands: int,
    *,
    band_names: Sequence[str] | None = None,
    size: str = "tiny",
    mean: float | Sequence[float] = 0.2,
    std: float | Sequence[float] = 0.1,
    training_dates: Sequence[str] = (),
    seed: int = 0,
    agnostic: bool = False,
) -> Path:
    """A checkpoint with freshly initialised (untrained) weights, for tests and smoke runs.

    Band-tied (``agnostic=False``, format 1 networks): it predicts nonsense but exercises the
    whole inference path (tiling, checks, writing). ``agnostic=True``: the band-agnostic
    residual form, which predicts its physical baseline exactly (``bands``, ``mean``, ``std``
    and ``band_names`` are then those of any band: 1, 0, 1, ``any``).
    """
    cfg = TrainConfig(model=model, size=size, seed=seed, agnostic=agnostic)
    cfg.validate()
    cfg = cfg.resolved()
    torch.manual_seed(seed)
    if agnostic:
        bands, band_names, mean, std = 1, ["any"], 0.0, 1.0
    net = make_network(model, bands, size, agnostic=agnostic)
    names = list(band_names) if band_names else [f"band{i + 1}" for i in range(bands)]
    m = np.broadcast_to(np.asarray(mean, dtype=np.float64), (bands,))
    s = np.broadcast_to(np.asarray(std, dtype=np.float64), (bands,))
    data: dict[str, Any] = {
        "model": model,
        "network": {**net.config(), "size": size},
        "state_dict": net.state_dict(),
        "bands": bands,
        "band_names": names,
        "scaling": {"fine": None, "coarse": None},
        "ratio": None,
        "norm": {
            "mean": [float(x) for x in m],
            "std": [float(x) for x in s],
            "per_sample": agnostic,
        },
        "data_range": [float(1.0 / x) for x in s],
        "physical_range": 1.0,
        "training_dates": list(training_dates),
        "config": asdict(cfg),
        "history": [],
        "epoch": 0,
        "best_epoch": 0,
        "best_val_loss": float("inf"),
        "bad_epochs": 0,
        "meta": {"notes": "random weights (untrained)", "stfusion_version": stfusion.__version__},
    }
    if model == "edcstfn":
        ae = Autoencoder(bands, channels_for(size))
        data["autoencoder"] = {**ae.config(), "state_dict": ae.state_dict(), "losses": []}
    return save_checkpoint(out, data)
