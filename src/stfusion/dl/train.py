"""Training the fusion networks (DCSTFN, EDCSTFN, GAN-STFM, ...) on the user's own pairs.

``train(pairs, out, TrainConfig(...))`` (and ``stfusion train``) does, in order:

1. open the pairs with :func:`stfusion.scene.open_scene` (the scaling and alignment that
   ``stfusion predict`` uses), take their dates from ``dates`` or the file names;
2. build the examples (every ordered pair of dates), the per-band normalisation and the
   spatial validation block (:mod:`stfusion.dl.data`);
3. EDCSTFN, and GANs with a feature loss (``beta > 0``): train the feature-loss autoencoder
   on fine patches (``ae_steps`` steps), then freeze it;
4. train the network with Adam on random patches, ``steps_per_epoch`` batches per epoch; after
   each epoch compute the validation loss on the held-out block, keep the best weights, write
   the checkpoint atomically and append to the loss log (``<out>.log.csv`` and a curve
   ``<out>.loss.png`` beside the checkpoint); stop after ``patience`` epochs without
   improvement.

Adversarial networks (a :class:`~stfusion.dl.networks.FusionNet` with ``adversarial = True``,
e.g. GAN-STFM) train with the adversarial loop (:class:`GANTrainer`, one discriminator update
then one generator update per batch) against the discriminator named by
``TrainConfig.discriminator`` (``auto``: the generator's own, ``patchgan`` for GAN-STFM) from
:mod:`stfusion.dl.networks.discriminators`. The generator's loss is the reconstruction loss
(content + ``beta`` feature + ``alpha`` vision) + ``sam_weight`` spectral +
``adv_weight`` adversarial + ``fm_weight`` discriminator feature matching; the epoch log adds
the discriminator's loss, its mean outputs on real and generated images and the range of the
per-step ratio ``d_loss / g_adv``. The best epoch, early stopping and the stored weights
follow the validation RMSE (never the adversarial losses, which do not measure accuracy); the
checkpoint holds the best generator for prediction and, in its resume state, both networks
and both optimizers.

Reproducibility: one seed drives ``torch.manual_seed`` (weights) and a numpy ``Generator``
(patches, augmentation); on the CPU ``torch.use_deterministic_algorithms(True)`` is set while
training, so the same seed, data, configuration and thread count give the same weights.
``resume=True`` continues from the checkpoint's last epoch with its optimizer and generator
states: training 2 epochs and resuming for a 3rd gives the weights of 3 epochs in one go.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import datetime as _dt
import json
import os
import platform
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

import stfusion
from stfusion.dl.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from stfusion.dl.data import Batch, TrainingData, resolve_dates
from stfusion.dl.infer import resolve_device
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
from stfusion.io import AlignedSource, FileSource, Scaling, Source
from stfusion.scene import ImageLike, Scene, open_scene

MODELS = ("dcstfn", "edcstfn", "ganstfm")  # built in; network_class() knows any registered one


@dataclass
class TrainConfig:
    """Hyper-parameters of a training run (all stored in the checkpoint).

    Defaults follow the papers where they say (Adam, learning rate 1e-3, MSE content loss,
    EDCSTFN's vision weight 0.8 and feature weight 1) and are otherwise sized for a laptop.
    """

    model: str = "edcstfn"
    size: str = "small"
    epochs: int = 50
    patch: int = 64
    batch: int = 8
    lr: float = 1e-3
    steps_per_epoch: int = 0  # 0: about one pass over the training area per epoch, >= 10
    val_fraction: float = 0.2
    patience: int = 10
    seed: int = 0
    device: str = "auto"
    augment: bool = True
    time_mix: float = 0.0  # share of patches with the target moved between the dates (data.py)
    content: str = "auto"  # mse, l1; auto: l1 for adversarial networks, else mse
    alpha: float = 0.8  # EDCSTFN, GANs: weight of the vision (1 - MS-SSIM) loss
    beta: float = 1.0  # EDCSTFN, GANs: weight of the feature loss (0: no autoencoder)
    ae_steps: int = 300  # EDCSTFN, GANs: autoencoder training steps
    threads: int = 0  # torch CPU threads; 0: torch's default
    # Adversarial networks only (see GANTrainer):
    discriminator: str = "auto"  # a name in networks.discriminators; auto: the network's own
    gan_loss: str = "lsgan"  # lsgan (GAN-STFM) or hinge
    adv_weight: float = 1e-3  # weight of the adversarial term (GAN-STFM's code: 1e-3)
    fm_weight: float = 0.0  # weight of discriminator feature matching
    sam_weight: float = 1.0  # weight of the spectral (1 - cos of the spectral angle) loss
    d_lr: float = 0.0  # discriminator learning rate; 0: the same as lr
    label_smoothing: float = 0.0  # one-sided: the discriminator's real target is 1 - this
    clip: float = 0.0  # max gradient norm of both networks; 0: no clipping

    def validate(self) -> None:
        try:
            net = network_class(self.model)
        except InvalidParameterError:
            raise InvalidParameterError(
                f"model {self.model!r}: choose one of {', '.join(network_names())}."
            ) from None
        net.channels_for(self.size)
        for name in ("epochs", "patch", "batch", "patience"):
            if int(getattr(self, name)) < 1:
                raise InvalidParameterError(f"{name} must be >= 1, got {getattr(self, name)}.")
        if self.patch < 16:
            raise InvalidParameterError(f"patch must be at least 16 px, got {self.patch}.")
        if not self.lr > 0:
            raise InvalidParameterError(f"lr must be > 0, got {self.lr}.")
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


ProgressFn = Callable[[dict[str, Any]], None]


def log_paths(out: str | os.PathLike[str]) -> tuple[Path, Path]:
    """The loss log (CSV) and curve (PNG) written beside a checkpoint."""
    p = Path(out)
    stem = p.name[: -len(p.suffix)] if p.suffix else p.name
    return p.with_name(f"{stem}.log.csv"), p.with_name(f"{stem}.loss.png")


def _scaling_of(src: Source) -> dict[str, float] | None:
    if isinstance(src, AlignedSource):
        src = src.native
    if isinstance(src, FileSource):
        return {"scale": float(src.scale), "offset": float(src.offset)}
    return None


def cpu_state(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A state dict on the CPU, detached (what checkpoints store)."""
    return {k: v.detach().cpu() for k, v in sd.items()}


def checkpoint_record(
    trainer: Any, model: str, network: dict[str, Any], meta: dict[str, Any]
) -> dict[str, Any]:
    """The checkpoint fields every training loop writes (train, STFDCNN, distill).

    ``trainer`` has ``cfg``, ``scene``, ``data``, ``seconds``, ``best_state``, ``dates``,
    ``history``, ``epoch``, ``best_epoch``, ``best_loss`` and ``bad``. The prediction-time
    checks (bands, names, scaling, ratio, value range, training dates) read these fields.
    """
    scene, data = trainer.scene, trainer.data
    f0, c0 = scene.pairs[0]
    info = {
        "stfusion_version": stfusion.__version__,
        "torch_version": str(torch.__version__),
        "numpy_version": np.__version__,
        "python": platform.python_version(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "seconds": trainer.seconds,
        "inputs": [[f.label, c.label] for f, c in scene.pairs],
    }
    info.update(meta)
    return {
        "model": model,
        "network": network,
        "state_dict": cpu_state(trainer.best_state),
        "bands": scene.count,
        "band_names": list(scene.band_names),
        "scaling": {"fine": _scaling_of(f0), "coarse": _scaling_of(c0)},
        "ratio": scene.ratio,
        "norm": {"mean": list(data.mean), "std": list(data.std)},
        "data_range": list(data.data_range),
        "physical_range": data.physical_range,
        "training_dates": list(trainer.dates or []),
        "validation_block": asdict(data.val),
        "config": asdict(trainer.cfg),
        "history": trainer.history,
        "epoch": trainer.epoch,
        "best_epoch": trainer.best_epoch,
        "best_val_loss": trainer.best_loss,
        "bad_epochs": trainer.bad,
        "meta": info,
    }


@contextlib.contextmanager
def _deterministic(device: torch.device, threads: int) -> Iterator[None]:
    old_det = torch.are_deterministic_algorithms_enabled()
    old_threads = torch.get_num_threads()
    try:
        if device.type == "cpu":
            torch.use_deterministic_algorithms(True)
        if threads > 0:
            torch.set_num_threads(threads)
        yield
    finally:
        torch.use_deterministic_algorithms(old_det)
        torch.set_num_threads(old_threads)


def _tensors(b: Batch, device: torch.device) -> list[torch.Tensor]:
    return [
        torch.from_numpy(a).to(device)
        for a in (b.fine_ref, b.coarse_ref, b.coarse_target, b.fine_target, b.mask)
    ]


def _rng_state(rng: np.random.Generator) -> str:
    return json.dumps(rng.bit_generator.state)


def _set_rng_state(rng: np.random.Generator, state: str) -> None:
    rng.bit_generator.state = json.loads(state)


def _train_autoencoder(
    data: TrainingData,
    cfg: TrainConfig,
    rng: np.random.Generator,
    device: torch.device,
    progress: ProgressFn | None,
) -> tuple[Autoencoder, list[float]]:
    ae = Autoencoder(data.count, channels_for(cfg.size)).to(device)
    opt = torch.optim.Adam(ae.parameters(), lr=cfg.lr, weight_decay=1e-6)
    losses: list[float] = []
    for step in range(cfg.ae_steps):
        x = torch.from_numpy(data.fine_patches(rng, cfg.batch, cfg.patch)).to(device)
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(ae(x), x)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        if progress is not None:
            progress({"stage": "autoencoder", "step": step + 1, "steps": cfg.ae_steps,
                      "loss": losses[-1]})  # fmt: skip
    ae.eval()
    return ae, losses


def _evaluate(
    net: FusionNet, criterion: CompoundLoss, data: TrainingData, device: torch.device
) -> tuple[float, float]:
    """Validation loss and RMSE (physical units, mean over bands) on the held-out block."""
    net.eval()
    losses, sq, n = [], np.zeros(data.count), np.zeros(data.count)
    std = data.std
    with torch.no_grad():
        for b in data.validation():
            fr, cr, ct, ft, mask = _tensors(b, device)
            pred = net(fr, cr, ct)
            loss, _ = criterion(pred, ft, mask)
            losses.append(float(loss))
            err = ((pred - ft) * mask).cpu().numpy()[0]
            m = b.mask[0, 0]
            sq += (err[:, m] ** 2).sum(axis=1) * std**2
            n += m.sum()
    net.train()
    rmse = float(np.mean(np.sqrt(sq / np.maximum(n, 1))))
    return float(np.mean(losses)), rmse


def write_log(
    history: list[dict[str, float]], out: str | os.PathLike[str], plot: bool = True
) -> tuple[Path, Path]:
    """Write the loss log CSV (and, with ``plot``, the PNG curve) beside the checkpoint."""
    csv_path, png_path = log_paths(out)
    keys = list(history[0]) if history else ["epoch"]
    tmp = csv_path.with_name(f".{csv_path.name}.partial")
    with open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=keys)
        writer.writeheader()
        for row in history:
            writer.writerow({k: f"{v:.6g}" if isinstance(v, float) else v for k, v in row.items()})
    os.replace(tmp, csv_path)
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
        ax2.plot(ep, [r["val_rmse"] for r in history], color="tab:green", ls="--",
                 label="validation RMSE")  # fmt: skip
        if "val_rmse_additive" in history[-1]:
            ax2.axhline(history[-1]["val_rmse_additive"], color="grey", ls=":",
                        label="validation RMSE of the additive baseline")  # fmt: skip
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
        tmp_png = png_path.with_name(f".{png_path.name}.partial.png")
        fig.savefig(tmp_png)
        os.replace(tmp_png, png_path)
    return csv_path, png_path


class _Run:
    """The state of one training run (fresh or resumed) and its epoch loop."""

    def __init__(
        self,
        cfg: TrainConfig,
        scene: Scene,
        data: TrainingData,
        device: torch.device,
        out: Path,
        dates: list[str] | None,
        meta: dict[str, Any] | None,
        progress: ProgressFn | None,
    ) -> None:
        self.cfg, self.scene, self.data, self.device = cfg, scene, data, device
        self.out, self.dates, self.meta, self.progress = out, dates, meta, progress
        self.rng = np.random.default_rng(cfg.seed)
        torch.manual_seed(cfg.seed)
        self.net = make_network(cfg.model, scene.count, cfg.size).to(device)
        self.ae: Autoencoder | None = None
        self.ae_losses: list[float] = []
        self.history: list[dict[str, float]] = []
        self.best_state = copy.deepcopy(self.net.state_dict())
        self.best_loss, self.best_epoch, self.bad, self.epoch = float("inf"), 0, 0, 0
        self.elapsed_before = 0.0
        self.t_start = time.perf_counter()
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=cfg.lr)
        h, w = data.shape
        v = data.val
        area = (h * w - v.height * v.width) * len(data.examples)
        self.steps = cfg.steps_per_epoch or max(10, -(-area // (cfg.patch**2 * cfg.batch)))
        self.additive_rmse = data.additive_rmse()

    #: The validation value that picks the best epoch and drives early stopping.
    monitor = "val_loss"

    def needs_autoencoder(self) -> bool:
        return self.cfg.model == "edcstfn"

    def setup_loss(self, previous: Checkpoint | None) -> None:
        cfg, device = self.cfg, self.device
        if not self.needs_autoencoder():
            self.criterion = content_loss(cfg.content).to(device)
            return
        if previous is not None:
            stored = previous.data["autoencoder"]
            ae = Autoencoder(stored["bands"], tuple(stored["channels"]))
            ae.load_state_dict(stored["state_dict"])
            self.ae = ae.to(device).eval()
            self.ae_losses = list(stored.get("losses", []))
        else:
            self.ae, self.ae_losses = _train_autoencoder(
                self.data, cfg, self.rng, device, self.progress
            )
        data_range = torch.from_numpy(self.data.data_range)
        self.criterion = CompoundLoss(
            self.ae.encoder, data_range, cfg.content, cfg.alpha, cfg.beta
        ).to(device)

    def restore(self, previous: Checkpoint) -> None:
        res = previous.data["resume"]
        self.net.load_state_dict(res["state_dict"])
        self.optimizer.load_state_dict(res["optimizer"])
        torch.set_rng_state(res["torch_rng"])
        _set_rng_state(self.rng, res["numpy_rng"])
        self.best_state = previous.data["state_dict"]
        self.history = [dict(r) for r in previous.data.get("history", [])]
        self.epoch = int(previous.data["epoch"])
        self.best_epoch = int(previous.data["best_epoch"])
        self.best_loss = float(previous.data["best_val_loss"])
        self.bad = int(previous.data.get("bad_epochs", 0))
        self.elapsed_before = float(previous.meta.get("seconds", 0.0))

    @property
    def stopped(self) -> bool:
        return self.bad >= self.cfg.patience

    @property
    def seconds(self) -> float:
        return self.elapsed_before + time.perf_counter() - self.t_start

    def train_step(self, batch: Batch) -> dict[str, float]:
        """One optimisation step; returns ``train_loss`` and the loss parts."""
        fr, cr, ct, ft, mask = _tensors(batch, self.device)
        self.optimizer.zero_grad()
        loss, parts = self.criterion(self.net(fr, cr, ct), ft, mask)
        loss.backward()
        self.optimizer.step()
        return {"train_loss": float(loss.detach()), **parts}

    def epoch_stats(self, steps: list[dict[str, float]]) -> dict[str, float]:
        """The per-epoch log columns from the per-step values (means)."""
        keys = list(steps[0])
        return {k: float(np.mean([st[k] for st in steps])) for k in keys}

    def run_epoch(self) -> None:
        """One epoch: training steps, validation, bookkeeping, checkpoint and CSV log."""
        cfg, net = self.cfg, self.net
        self.epoch += 1
        t0 = time.perf_counter()
        net.train()
        steps: list[dict[str, float]] = []
        for step in range(self.steps):
            batch = self.data.sample(self.rng, cfg.batch, cfg.patch, cfg.augment, cfg.time_mix)
            steps.append(self.train_step(batch))
            if self.progress is not None:
                loss = float(np.mean([st["train_loss"] for st in steps]))
                self.progress({"stage": "train", "epoch": self.epoch, "epochs": cfg.epochs,
                               "step": step + 1, "steps": self.steps, "loss": loss,
                               "parts": steps[-1]})  # fmt: skip
        val_loss, val_rmse = _evaluate(net, self.criterion, self.data, self.device)
        row: dict[str, float] = {"epoch": self.epoch}
        row.update(self.epoch_stats(steps))
        row.update(val_loss=val_loss, val_rmse=val_rmse, val_rmse_additive=self.additive_rmse,
                   lr=cfg.lr, seconds=time.perf_counter() - t0)  # fmt: skip
        self.history.append(row)
        value = row[self.monitor]
        if value < self.best_loss:
            self.best_loss, self.best_epoch, self.bad = value, self.epoch, 0
            self.best_state = copy.deepcopy(net.state_dict())
        else:
            self.bad += 1
        if self.progress is not None:
            self.progress({"stage": "epoch", **row, "best_epoch": self.best_epoch})
        save_checkpoint(self.out, self.payload())
        write_log(self.history, self.out, plot=False)

    def payload(self) -> dict[str, Any]:
        cpu = cpu_state
        out = checkpoint_record(
            self, self.cfg.model, {**self.net.config(), "size": self.cfg.size}, self.meta or {}
        )
        out["resume"] = {
            "state_dict": cpu(self.net.state_dict()),
            "optimizer": self.optimizer.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "numpy_rng": _rng_state(self.rng),
        }
        if self.ae is not None:
            out["autoencoder"] = {
                **self.ae.config(),
                "state_dict": cpu(self.ae.state_dict()),
                "losses": self.ae_losses[-20:],
            }
        return out


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
            generator, discriminator, recon, spectral, cfg
        )  # fmt: skip
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
    ) -> dict[str, float]:
        cfg = self.cfg
        self.g.train()
        self.d.train()
        pred = self.g(fine_ref, coarse_ref, coarse_target)
        fake = torch.where(mask, pred, fine_target)
        use_fm = cfg.fm_weight > 0
        # (1) discriminator
        for p in self.d.parameters():
            p.requires_grad_(True)
        self.d_opt.zero_grad()
        real_logits, real_feats = self._judge(coarse_target, fine_target, use_fm)
        fake_logits, _ = self._judge(coarse_target, fake.detach(), False)
        d_loss = discriminator_loss(real_logits, fake_logits, cfg.gan_loss, cfg.label_smoothing)
        d_loss.backward()
        self._clip(self.d)
        self.d_opt.step()
        # (2) generator, the discriminator frozen
        for p in self.d.parameters():
            p.requires_grad_(False)
        self.g_opt.zero_grad()
        recon, parts = self.recon(pred, fine_target, mask)
        spectral = self.spectral(pred, fine_target, mask)
        g_logits, g_feats = self._judge(coarse_target, fake, use_fm)
        g_adv = generator_loss(g_logits, cfg.gan_loss)
        total = recon + cfg.sam_weight * spectral + cfg.adv_weight * g_adv
        fm = torch.zeros(())
        if use_fm:
            fm = feature_matching(real_feats, g_feats)
            total = total + cfg.fm_weight * fm
        total.backward()
        self._clip(self.g)
        self.g_opt.step()
        for p in self.d.parameters():
            p.requires_grad_(True)
        d, g = float(d_loss.detach()), float(g_adv.detach())
        return {
            "train_loss": float(total.detach()), **parts, "spectral": float(spectral.detach()),
            "g_adv": g, "fm": float(fm.detach()), "d_loss": d,
            "d_real": float(torch.stack([x.detach().mean() for x in real_logits]).mean()),
            "d_fake": float(torch.stack([x.detach().mean() for x in fake_logits]).mean()),
            "ratio": d / g if g > 0 else float("inf"),
        }  # fmt: skip


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
        encoder, torch.as_tensor(data_range, dtype=torch.float32), cfg.content, cfg.alpha,
        cfg.beta if encoder is not None else 0.0,
    ).to(device)  # fmt: skip
    spectral = SpectralLoss(list(mean), list(std)).to(device)
    return GANTrainer(net, disc, recon, spectral, cfg)


class _GANRun(_Run):
    """A training run of an adversarial generator (see :class:`GANTrainer`)."""

    monitor = "val_rmse"

    def __init__(self, cfg: TrainConfig, scene: Scene, data: TrainingData, *args: Any) -> None:
        super().__init__(cfg, scene, data, *args)
        # Initialised after the generator, from the same seeded generator.
        self.disc = discriminator_class(cfg.discriminator)(2 * scene.count, cfg.size)
        self.disc.to(self.device)

    def needs_autoencoder(self) -> bool:
        return self.cfg.beta > 0

    def setup_loss(self, previous: Checkpoint | None) -> None:
        super().setup_loss(previous)
        cfg, data = self.cfg, self.data
        if self.ae is None:  # no feature loss: content + vision only
            data_range = torch.from_numpy(data.data_range)
            self.criterion = CompoundLoss(None, data_range, cfg.content, cfg.alpha, 0.0)
            self.criterion.to(self.device)
        spectral = SpectralLoss(list(data.mean), list(data.std)).to(self.device)
        self.trainer = GANTrainer(self.net, self.disc, self.criterion, spectral, cfg)
        self.optimizer = self.trainer.g_opt

    def restore(self, previous: Checkpoint) -> None:
        super().restore(previous)
        res = previous.data["resume"]
        self.disc.load_state_dict(res["discriminator"])
        self.trainer.d_opt.load_state_dict(res["d_optimizer"])

    def train_step(self, batch: Batch) -> dict[str, float]:
        return self.trainer.step(*_tensors(batch, self.device))

    def epoch_stats(self, steps: list[dict[str, float]]) -> dict[str, float]:
        row = super().epoch_stats(steps)
        ratios = [st["ratio"] for st in steps]
        del row["ratio"]
        row.update(ratio_min=float(np.min(ratios)), ratio_max=float(np.max(ratios)))
        return row

    def payload(self) -> dict[str, Any]:
        out = super().payload()
        out["discriminator"] = {**self.disc.config(), "n_parameters": _n_params(self.disc)}
        out["monitor"] = self.monitor
        out["resume"]["discriminator"] = {
            k: v.detach().cpu() for k, v in self.disc.state_dict().items()
        }
        out["resume"]["d_optimizer"] = self.trainer.d_opt.state_dict()
        return out


def _n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def train(
    pairs: Sequence[tuple[ImageLike, ImageLike]] | Scene,
    out: str | os.PathLike[str],
    config: TrainConfig | None = None,
    *,
    dates: Sequence[str] | None = None,
    fine_scaling: Scaling | None = None,
    coarse_scaling: Scaling | None = None,
    resampling: str = "nearest",
    resume: bool = False,
    overwrite: bool = False,
    progress: ProgressFn | None = None,
    meta: dict[str, Any] | None = None,
) -> TrainResult:
    """Train a fusion network on ``pairs`` (two or more dates) and write the checkpoint ``out``.

    ``config`` (a :class:`TrainConfig`) holds the hyper-parameters; with ``resume=True`` the
    stored configuration is used, except ``epochs``, ``patience``, ``device`` and ``threads``,
    which may be changed to continue a run. ``meta`` (e.g. the command line, notes) is stored
    with the checkpoint's metadata. ``progress`` receives one dict per step and per epoch.
    """
    cfg = copy.deepcopy(config) if config is not None else TrainConfig()
    out = Path(out)
    previous: Checkpoint | None = None
    if resume:
        if not out.exists():
            raise InvalidParameterError(f"--resume: {out} does not exist; train without it first.")
        previous = load_checkpoint(out)
        if "resume" not in previous.data:
            raise InvalidParameterError(f"{out}: has no resume state (stripped); cannot resume.")
        stored = previous.data["config"]
        keep = {"epochs": cfg.epochs, "patience": cfg.patience, "device": cfg.device,
                "threads": cfg.threads}  # fmt: skip
        cfg = TrainConfig(**{f.name: stored.get(f.name, getattr(cfg, f.name))
                             for f in fields(TrainConfig)})  # fmt: skip
        for k, v in keep.items():
            setattr(cfg, k, v)
    elif out.exists() and not overwrite:
        raise OutputExistsError(f"{out}: exists. Give --overwrite to replace it, or --resume.")
    cfg.validate()
    cfg = cfg.resolved()
    device = resolve_device(cfg.device)

    if isinstance(pairs, Scene):
        scene, iso_dates = pairs, (list(dates) if dates else None)
    else:
        scene = open_scene(
            list(pairs), fine_scaling=fine_scaling, coarse_scaling=coarse_scaling,
            resampling=resampling,
        )  # fmt: skip
        iso_dates = resolve_dates(list(pairs), dates)
    if iso_dates is not None and len(set(iso_dates)) != len(iso_dates):
        raise InvalidParameterError(f"the pairs' dates repeat ({', '.join(iso_dates)}).")
    if previous is not None:
        _check_resume(previous, scene, iso_dates)
    data = TrainingData(
        scene, val_fraction=cfg.val_fraction, multiple=network_class(cfg.model).multiple
    )
    run_class = _GANRun if network_class(cfg.model).adversarial else _Run
    with _deterministic(device, cfg.threads):
        run = run_class(cfg, scene, data, device, out, iso_dates, meta, progress)
        run.setup_loss(previous)
        if previous is not None:
            run.restore(previous)
        try:
            while not run.stopped and run.epoch < cfg.epochs:
                run.run_epoch()
        finally:
            if run.history:
                write_log(run.history, out)  # the curve, once per run (also when interrupted)
    return TrainResult(
        out, run.epoch, run.best_epoch, run.best_loss, run.seconds, run.stopped, run.history
    )


def _check_resume(previous: Checkpoint, scene: Scene, dates: list[str] | None) -> None:
    if previous.bands != scene.count or previous.band_names != tuple(scene.band_names):
        raise InvalidParameterError(
            f"--resume: {previous.path} was trained on {previous.bands} bands "
            f"({', '.join(previous.band_names)}), these pairs have {scene.count} "
            f"({', '.join(scene.band_names)})."
        )
    if dates is not None and previous.training_dates and tuple(dates) != previous.training_dates:
        raise InvalidParameterError(
            f"--resume: {previous.path} was trained on {', '.join(previous.training_dates)}, "
            f"these pairs are {', '.join(dates)}; give the same pairs."
        )


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
) -> Path:
    """A checkpoint with freshly initialised (untrained) weights, for tests and smoke runs.

    It predicts nonsense but exercises the whole inference path (tiling, checks, writing).
    """
    cfg = TrainConfig(model=model, size=size, seed=seed)
    cfg.validate()
    cfg = cfg.resolved()
    torch.manual_seed(seed)
    net = make_network(model, bands, size)
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
        "norm": {"mean": [float(x) for x in m], "std": [float(x) for x in s]},
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
