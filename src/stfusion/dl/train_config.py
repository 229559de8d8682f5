"""The training configuration (:class:`TrainConfig`, with the checks that need the networks),
the result of a run and the options and inputs every run shares.

Moved out of :mod:`stfusion.dl.train`, which still exports these names.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypedDict, cast

import numpy as np

from stfusion.dl.engine_settings import ProgressFn, check_strategy, parse_devices
from stfusion.dl.losses import GAN_LOSSES
from stfusion.dl.networks import network_class, network_names
from stfusion.dl.networks.discriminators import discriminator_class
from stfusion.errors import InvalidParameterError, OptionError
from stfusion.io import Scaling
from stfusion.run_config import (
    STUDENT_SIZE_FOR,
    TrainSettings,
    check_iso_date,
    check_run_values,
)

__all__ = [
    "RESUME_KEEP",
    "OptionError",
    "ResumableInputs",
    "RunInputs",
    "RunResult",
    "SiteInputs",
    "TrainConfig",
    "TrainResult",
    "check_engine_options",
    "check_inputs",
    "check_iso_date",
    "reads_setting",
    "site_inputs",
    "stored_config",
    "validate_run_options",
]


@dataclass
class TrainConfig(TrainSettings):
    """:class:`stfusion.run_config.TrainSettings` (the fields and defaults, without torch) with
    the checks and ``auto`` values that need the networks."""

    def __post_init__(self) -> None:
        if self.model == "student":  # the command's words tiny/small/paper for its sizes
            self.size = STUDENT_SIZE_FOR.get(self.size, self.size)

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
        from stfusion.dl.networks.agnostic import BASELINES

        if self.baseline != "auto" and self.baseline not in BASELINES:
            raise InvalidParameterError(
                f"baseline {self.baseline!r}: choose auto, {', '.join(BASELINES)}."
            )
        if self.baseline != "auto" and (not self.agnostic or self.model == "stfdcnn"):
            raise InvalidParameterError(
                f"baseline {self.baseline!r}: only band-agnostic networks other than STFDCNN "
                "(whose output is a full prediction) correct a chosen baseline; use auto."
            )
        if not 0.0 <= float(self.time_mix) <= 1.0:
            raise InvalidParameterError(f"time_mix must be in [0, 1], got {self.time_mix}.")
        if self.content not in ("auto", "mse", "l1"):
            raise InvalidParameterError(f"content loss {self.content!r}: choose mse or l1.")
        if self.model == "dcstfn" and self.patch % 2:
            raise OptionError(f"--patch {self.patch}: dcstfn needs an even patch size.")
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
class RunResult:
    """What every run (training, distillation) produced; the run's own results follow."""

    checkpoint: Path
    epochs: int
    best_epoch: int
    best_val_loss: float
    seconds: float
    stopped_early: bool


@dataclass
class TrainResult(RunResult):
    """What a training run produced."""

    history: list[dict[str, float]] = field(default_factory=list)


#: Options of a stored configuration that a resumed run may change.
RESUME_KEEP = ("epochs", "patience", "device", "threads", "workers", "precision", "strategy")


def validate_run_options(cfg: Any) -> None:
    """The options every run shares (``TrainConfig``, ``STFDCNNConfig``, ``DistillConfig``):
    a bad value raises :class:`OptionError` naming the option (before any file is read).
    The checks without torch (:func:`stfusion.run_config.check_run_values`), which the
    commands also run before importing it, then :func:`check_engine_options`."""
    check_run_values(cfg)
    check_engine_options(cfg)


def check_engine_options(cfg: Any) -> None:
    """The run options Lightning and torch judge: ``--strategy`` and ``--devices``."""
    check_strategy(cfg.strategy)
    parse_devices(cfg.device)


#: Settings of the adversarial loop, and of the compound loss (EDCSTFN and the GANs).
GAN_SETTINGS = frozenset(
    {"discriminator", "gan_loss", "adv_weight", "fm_weight", "sam_weight", "d_lr"}
    | {"label_smoothing", "clip"}
)
COMPOUND_SETTINGS = frozenset({"alpha", "beta", "ae_steps"})


def reads_setting(model: str, name: str) -> bool:
    """Whether training ``model`` reads setting ``name`` (the others are left out of its
    checkpoint's configuration, where they would read as if they had been used)."""
    if name not in GAN_SETTINGS | COMPOUND_SETTINGS:
        return True
    try:
        adversarial = bool(network_class(model).adversarial)
    except InvalidParameterError:
        return True
    return adversarial or (name in COMPOUND_SETTINGS and model == "edcstfn")


def stored_config(cfg: Any) -> dict[str, Any]:
    """The configuration a checkpoint records: ``cfg``'s fields without the settings its
    model does not read (:func:`reads_setting`)."""
    model = str(getattr(cfg, "model", ""))
    return {k: v for k, v in asdict(cfg).items() if reads_setting(model, k)}


# ----------------------------------------------------------------------------- run inputs
# The keyword arguments of train, train_stfdcnn and distill, declared once (PEP 692: each
# entry point takes ``**inputs: Unpack[...]``); every key is optional, its default in [].


class SiteInputs(TypedDict, total=False):
    """Where a run's pairs come from and how they are read (the keywords of
    :func:`stfusion.dl.train.open_training_sites`): ``dates`` [None: from the catalog or the
    file names], ``catalog`` (a CSV of sites) [None], ``fine_scaling`` and ``coarse_scaling``
    [None: from the files], ``resampling`` of a coarse image on its own grid ["nearest"]."""

    dates: Sequence[str] | None
    catalog: str | os.PathLike[str] | None
    fine_scaling: Scaling | None
    coarse_scaling: Scaling | None
    resampling: str


class RunInputs(SiteInputs, total=False):
    """What every run takes besides its pairs, output and configuration: the
    :class:`SiteInputs`, ``overwrite`` an existing output [False], ``progress`` (receives one
    dict per step and per epoch) [None], ``progress_bar`` (Lightning's bar with ETA when stderr
    is a terminal) [False], ``meta`` (e.g. the command line, notes; stored with the
    checkpoint's metadata) [None]."""

    overwrite: bool
    progress: ProgressFn | None
    progress_bar: bool
    meta: dict[str, Any] | None


class ResumableInputs(RunInputs, total=False):
    """:class:`RunInputs` and ``resume`` (continue from the Lightning state beside the
    checkpoint) [False]: training runs."""

    resume: bool


def check_inputs(caller: str, inputs: Mapping[str, Any], known: frozenset[str]) -> None:
    """Refuse a keyword that is not ``known`` (``RunInputs.__optional_keys__`` or another of the
    TypedDicts above), as Python does for a function with an explicit signature."""
    for key in inputs:
        if key not in known:
            raise TypeError(f"{caller}() got an unexpected keyword argument {key!r}")


def site_inputs(inputs: SiteInputs) -> SiteInputs:
    """The :class:`SiteInputs` of ``inputs`` (a run's other inputs left out)."""
    # A subset of a TypedDict's keys is that TypedDict, which mypy cannot see in a comprehension.
    return cast(SiteInputs, {k: v for k, v in inputs.items() if k in SiteInputs.__optional_keys__})
