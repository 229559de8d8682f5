"""The settings of deep-model runs (training, distillation) as plain dataclasses, without torch.

The command line declares the ``train`` and ``distill`` options from these fields and their
defaults (``stfusion --help`` must not import torch); :class:`stfusion.dl.train.TrainConfig`
and :class:`stfusion.dl.distill.DistillConfig` add the checks that need the networks. Every
setting is stored in the checkpoint. Also where the shipped weights are (``--init shipped``,
``weights=demo``), for ``dl`` and the deep methods alike.
"""

from __future__ import annotations

import datetime as _dt
import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from stfusion.errors import InvalidParameterError, OptionError

#: The checkpoints stfusion ships (package data).
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"

#: Floating-point precisions of a run (Lightning's names).
PRECISIONS = ("32", "16-mixed", "bf16-mixed")


def is_inference_device(name: object) -> bool:
    """A device a prediction runs on: ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (training's
    ``--devices`` also takes lists and counts: ``stfusion.dl.engine.parse_devices``)."""
    return isinstance(name, str) and (
        name in ("auto", "cpu", "cuda") or re.fullmatch(r"cuda:\d+", name) is not None
    )


#: Widths of the student body's 3x3 convolutions for each named size
#: (:mod:`stfusion.dl.networks.student` builds them; ``stfusion distill --student``).
STUDENT_SIZES: dict[str, tuple[int, ...]] = {
    "nano": (8, 8),
    "micro": (16, 16),
    "mini": (24, 24, 24),
}
#: The other networks' size words, as the student's sizes (``--size small`` = micro).
STUDENT_SIZE_FOR = {"tiny": "nano", "small": "micro", "paper": "mini"}


@dataclass
class RunOptions:
    """Engine and data options of every run configuration (``TrainConfig``,
    ``STFDCNNConfig``, ``DistillConfig`` inherit them; stored in the checkpoint)."""

    precision: str = "32"  # 32, 16-mixed, bf16-mixed
    strategy: str = "auto"  # a Lightning strategy: auto, ddp, ...
    workers: int = 0  # DataLoader worker processes; 0: read in the main process
    max_gap: float = 0.0  # days between the dates of an example; 0: any
    val_dates: list[str] = field(default_factory=list)  # dates held out for validation
    val_patches: int = 64  # size of the fixed validation sample (patches)


@dataclass
class LoopSettings(RunOptions):
    """The settings of every training loop (train, STFDCNN's, distill)."""

    epochs: int = 50
    patch: int = 64
    batch: int = 8
    lr: float = 1e-3
    steps_per_epoch: int = 0  # 0: about one pass over the training area per epoch, >= 10
    val_fraction: float = 0.2
    # Largest share of invalid (nodata, masked) pixels in a training patch's windows; a patch
    # with more is redrawn. Higher lets cloudy scenes train, on fewer labelled pixels.
    max_invalid: float = 0.01
    patience: int = 10
    seed: int = 0
    device: str = "auto"  # auto, cpu, cuda, cuda:1 (stfusion.dl.engine.parse_devices)
    augment: bool = True
    threads: int = 0  # torch CPU threads; 0: torch's default


@dataclass
class TrainSettings(LoopSettings):
    """Hyper-parameters of a training run (all stored in the checkpoint).

    Defaults follow the papers where they say (Adam, learning rate 1e-3, MSE content loss,
    EDCSTFN's vision weight 0.8 and feature weight 1) and are otherwise sized for a laptop.
    """

    model: str = "edcstfn"
    size: str = "small"
    time_mix: float = 0.0  # share of patches with the target moved between the dates (data.py)
    content: str = "auto"  # mse, l1; auto: l1 for adversarial networks, else mse
    alpha: float = 0.8  # EDCSTFN, GANs: weight of the vision (1 - MS-SSIM) loss
    beta: float = 1.0  # EDCSTFN, GANs: weight of the feature loss (0: no autoencoder)
    ae_steps: int = 300  # EDCSTFN, GANs: autoencoder training steps
    # Adversarial networks only (see GANTrainer):
    discriminator: str = "auto"  # a name in networks.discriminators; auto: the network's own
    gan_loss: str = "lsgan"  # lsgan (GAN-STFM) or hinge
    adv_weight: float = 1e-3  # weight of the adversarial term (GAN-STFM's code: 1e-3)
    fm_weight: float = 0.0  # weight of discriminator feature matching
    sam_weight: float = 1.0  # weight of the spectral (1 - cos of the spectral angle) loss
    d_lr: float = 0.0  # discriminator learning rate; 0: the same as lr
    label_smoothing: float = 0.0  # one-sided: the discriminator's real target is 1 - this
    clip: float = 0.0  # max gradient norm of both networks; 0: no clipping
    # Band-agnostic residual network (checkpoint format 2, networks/agnostic.py); False: the
    # band-tied network of format 1 (normalised with the training statistics).
    agnostic: bool = True
    # Initial weights: none (fresh, the correction starts at zero), shipped (fine-tune the
    # shipped weights of the model) or a checkpoint path of the same model and size.
    init: str = "none"
    # The physical baseline the network corrects (networks/agnostic.py): auto = that of the
    # --init checkpoint when fine-tuning, else the model's default (regression; GAN-STFM
    # smooth; STFDCNN additive); regression, additive or smooth.
    baseline: str = "auto"


@dataclass
class DistillSettings(LoopSettings):
    """Hyper-parameters of a distillation run (all stored in the checkpoint)."""

    epochs: int = 60
    val_fraction: float = 0.0  # 0: the teacher's (0.2 if it does not say)
    student: str = "micro"
    alpha: float = 1.0  # weight of the teacher-output loss
    beta: float = 0.1  # weight of the feature loss
    feature_layer: str = "auto"
    speed_tile: int = 256  # tile side of the closing speed measurement
    speed_repeat: int = 3  # fastest of this many timings is reported

    def check_values(self) -> None:
        """:func:`check_run_values` (without torch), ``val_fraction`` 0 being the teacher's."""
        if self.val_fraction and not 0.0 < self.val_fraction < 1.0:
            raise OptionError(
                f"--val-fraction {self.val_fraction}: the share of the scene held out, above 0 "
                "and below 1 (0: the teacher's)."
            )
        check_run_values(replace(self, val_fraction=self.val_fraction or 0.2))


def shipped_weights(name: str) -> Path:
    """Path of the shipped checkpoint of method ``name`` (may not exist):
    ``<name>_multisite.ckpt`` (band-agnostic, trained on several sites of ../shared/data;
    docs/deep.md), else the older ``<name>_cia_demo.ckpt``."""
    multi = WEIGHTS_DIR / f"{name}_multisite.ckpt"
    return multi if multi.exists() else WEIGHTS_DIR / f"{name}_cia_demo.ckpt"


__all__ = [
    "PRECISIONS",
    "STUDENT_SIZES",
    "STUDENT_SIZE_FOR",
    "WEIGHTS_DIR",
    "DistillSettings",
    "LoopSettings",
    "RunOptions",
    "TrainSettings",
    "check_iso_date",
    "check_precision",
    "check_run_values",
    "is_inference_device",
    "shipped_weights",
]


#: The options counted from 1, and their flags.
_AT_LEAST_ONE = {
    "epochs": "--epochs",
    "batch": "--batch",
    "patience": "--patience",
    "val_patches": "--val-patches",
}


def check_run_values(cfg: Any) -> None:
    """The values of the options every run shares (``TrainSettings`` and the run
    configurations; any object with their fields), checked without torch, so a bad one is a
    usage error at once rather than after the networks' import: :class:`OptionError` naming
    the option."""
    for name, flag in _AT_LEAST_ONE.items():
        if int(getattr(cfg, name)) < 1:
            raise OptionError(f"{flag} {getattr(cfg, name)}: give 1 or more.")
    if cfg.patch < 16:
        raise OptionError(
            f"--patch {cfg.patch}: a patch is at least 16 px; give --patch 16 or more."
        )
    if not (cfg.lr > 0 and math.isfinite(cfg.lr)):
        raise OptionError(f"--lr {cfg.lr}: the learning rate must be above 0, e.g. --lr 0.001.")
    if int(cfg.workers) < 0:
        raise OptionError(f"--workers {cfg.workers}: give 0 (read in the main process) or more.")
    if int(cfg.steps_per_epoch) < 0:
        raise OptionError(
            f"--steps-per-epoch {cfg.steps_per_epoch}: give 0 (about one pass over the training "
            "area) or more."
        )
    if not float(cfg.max_gap) >= 0:
        raise OptionError(f"--max-gap {cfg.max_gap}: days; give 0 (any two dates) or more.")
    if not 0.0 <= float(cfg.val_fraction) < 1.0:
        raise OptionError(
            f"--val-fraction {cfg.val_fraction}: the share of each scene's area held out, from "
            "0 (no block) to below 1, e.g. 0.2."
        )
    if not 0.0 <= float(cfg.max_invalid) < 1.0:
        raise OptionError(
            f"--max-invalid {cfg.max_invalid}: the largest share of invalid pixels in a "
            "training patch, from 0 to below 1, e.g. 0.2."
        )
    for day in cfg.val_dates:
        check_iso_date(str(day), "--val-dates")
    if not cfg.val_fraction and not cfg.val_dates:
        raise OptionError(
            "no validation: give --val-fraction > 0 (a spatial block) or --val-dates."
        )
    check_precision(cfg.precision)


def check_precision(precision: str) -> str:
    if str(precision) not in PRECISIONS:
        raise InvalidParameterError(
            f"--precision {precision!r}: choose one of {', '.join(PRECISIONS)}."
        )
    return str(precision)


def check_iso_date(text: str, option: str) -> str:
    """``text`` as YYYY-MM-DD if it is a date written so or as YYYYDDD (year and day of the
    year, as --dates and catalogs take it: Landsat's and MODIS's file names), else
    :class:`OptionError` naming ``option``."""
    t = text.strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", t):
            return _dt.date.fromisoformat(t).isoformat()
        if re.fullmatch(r"\d{7}", t) and 1 <= int(t[4:]) <= 366:
            day = _dt.date(int(t[:4]), 1, 1) + _dt.timedelta(days=int(t[4:]) - 1)
            if day.year == int(t[:4]):
                return day.isoformat()
    except ValueError:
        pass
    raise OptionError(
        f"{option} {text}: not a date; write YYYY-MM-DD (e.g. 2001-11-02) or YYYYDDD (2001306)."
    )
