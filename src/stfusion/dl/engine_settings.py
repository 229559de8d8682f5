"""The engine's settings and its one Lightning Trainer set-up: devices, precision, the
deterministic CPU mode, the quiet logging and the ``<stem>.lightning`` folder.

Moved out of :mod:`stfusion.dl.engine`, which still exports these names. Lightning (4-5 s
to import) is imported where a Trainer is made: the checks of a run (its options, its
output, a resume state) need only this module, and say a bad value before that.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from stfusion.dl import missing_lightning
from stfusion.errors import InvalidParameterError, OptionError, warn
from stfusion.io.writing import atomic_path
from stfusion.run_config import check_precision

if TYPE_CHECKING:
    import lightning as L

__all__ = [
    "RESUME_FILE",
    "EngineSettings",
    "OptionError",
    "ProgressFn",
    "check_precision",
    "check_strategy",
    "deterministic",
    "lightning_dir",
    "make_trainer",
    "parse_devices",
    "quiet_lightning",
    "resume_path",
    "warn_settings",
]

RESUME_FILE = "resume.ckpt"

#: The trainers' callback: one event dict per autoencoder step and per epoch.
ProgressFn = Callable[[dict[str, Any]], None]


def import_lightning() -> None:
    """Import Lightning, or raise the error saying how to install it (torch without
    Lightning: predicting works, training does not)."""
    try:
        import lightning  # noqa: F401
    except ImportError as exc:
        raise missing_lightning() from exc


@dataclass
class EngineSettings:
    """How a run is executed (not what is learned)."""

    epochs: int
    patience: int
    seed: int = 0
    device: str = "auto"
    precision: str = "32"
    strategy: str = "auto"
    threads: int = 0
    workers: int = 0
    progress_bar: bool = False


def parse_devices(spec: str) -> tuple[str, Any]:
    """Lightning ``(accelerator, devices)`` of ``--devices``: ``auto`` (a GPU when there is
    one, else the CPU), ``cpu``, ``cuda`` (one GPU), ``cuda:1`` / ``cuda:0,1`` (those GPUs),
    ``N`` (N devices of the default accelerator)."""
    s = str(spec).strip().lower()
    cuda = torch.cuda.is_available()
    if s in ("", "auto"):
        return ("gpu", 1) if cuda else ("cpu", 1)
    if s == "cpu":
        return "cpu", 1
    if s in ("cuda", "gpu") or s.startswith(("cuda:", "gpu:")):
        if not cuda:
            raise InvalidParameterError(
                f"--devices {spec}: no CUDA GPU is available; use cpu or auto."
            )
        if ":" not in s:
            return "gpu", 1
        try:
            ids = [int(x) for x in s.split(":", 1)[1].split(",") if x.strip()]
        except ValueError:
            raise OptionError(f"--devices {spec}: write cuda:0 or cuda:0,1.") from None
        return "gpu", ids
    if s.isdigit() and int(s) > 0:
        return ("gpu" if cuda else "cpu"), int(s)
    raise OptionError(  # a malformed value: a usage error (exit 2), as other options' are
        f"--devices {spec!r}: choose auto, cpu, cuda, cuda:N (e.g. cuda:1) or a count."
    )


def check_strategy(strategy: str) -> str:
    """``strategy`` if Lightning knows it by name (``auto`` or its registry), else an error
    listing those names (checked before any data is read: Lightning would fail only later)."""
    if strategy == "auto":  # the default: no import of Lightning for it
        return strategy
    import_lightning()
    from lightning.pytorch.strategies import StrategyRegistry

    names = ["auto", *StrategyRegistry.available_strategies()]
    if str(strategy) not in names:
        raise OptionError(f"--strategy {strategy}: unknown; choose one of {', '.join(names)}.")
    return str(strategy)


def warn_settings(settings: EngineSettings) -> None:
    """Say, once per run (the autoencoder's Trainer and the main one share the settings),
    what Lightning changes silently: float16 on the CPU runs as bfloat16."""
    if parse_devices(settings.device)[0] == "cpu" and settings.precision == "16-mixed":
        warn(
            "--precision 16-mixed on the CPU runs as bf16-mixed (Lightning trains with "
            "float16 mixed precision on GPUs only); give bf16-mixed, or 32."
        )


def lightning_dir(out: str | os.PathLike[str]) -> Path:
    """The folder of Lightning's resume state and CSV logs beside checkpoint ``out``."""
    p = Path(out)
    stem = p.name[: -len(p.suffix)] if p.suffix else p.name
    return p.with_name(f"{stem}.lightning")


def resume_path(out: str | os.PathLike[str]) -> Path:
    return lightning_dir(out) / RESUME_FILE


@contextlib.contextmanager
def quiet_lightning() -> Iterator[None]:
    """Lightning's informational logs and data-loader hints off (the CLI reports itself)."""
    loggers = [logging.getLogger(n) for n in ("lightning.pytorch", "lightning.fabric", "lightning")]
    levels = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.WARNING)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", ".*does not have many workers.*")
            warnings.filterwarnings("ignore", ".*number of training batches.*")
            warnings.filterwarnings("ignore", ".*LeafSpec.*")
            warnings.filterwarnings("ignore", ".*`isinstance\\(treespec, LeafSpec\\)`.*")
            warnings.filterwarnings("ignore", ".*Checkpoint directory .* exists.*")
            warnings.filterwarnings("ignore", ".*Experiment logs directory .* exists.*")
            warnings.filterwarnings("ignore", ".*GPU available but not used.*")
            warnings.filterwarnings("ignore", ".*module\\(s\\) in eval mode.*")
            warnings.filterwarnings("ignore", ".*was configured so 100%.*")
            yield
    finally:
        for lg, lv in zip(loggers, levels):
            lg.setLevel(lv)


#: Set by Lightning's ``seed_everything``; ``PL_SEED_WORKERS`` makes later data loaders of
#: the process seed their workers.
_SEED_VARIABLES = ("PL_GLOBAL_SEED", "PL_SEED_WORKERS")


@contextlib.contextmanager
def deterministic(device: str, threads: int) -> Iterator[None]:
    """Deterministic algorithms on the CPU and ``threads`` torch threads; these, the global
    random generators (python, numpy, torch) and Lightning's seed variables restored after,
    so a run seeds itself without moving its caller's random streams."""
    import random

    import numpy as np

    old_det = torch.are_deterministic_algorithms_enabled()
    old_threads = torch.get_num_threads()
    old_env = {k: os.environ.get(k) for k in _SEED_VARIABLES}
    # Lightning's isolate_rng restores only when the run ends well: these also after an error
    states = random.getstate(), np.random.get_state(), torch.get_rng_state()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
    try:
        if parse_devices(device)[0] == "cpu":
            torch.use_deterministic_algorithms(True)
        if threads > 0:
            torch.set_num_threads(threads)
        yield
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.set_rng_state(states[2])
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)
        torch.use_deterministic_algorithms(old_det)
        torch.set_num_threads(old_threads)
        for key, value in old_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@cache
def stderr_progress_bar() -> type:
    """``StderrProgressBar``, made when a Trainer first is (its base is Lightning's)."""
    from lightning.pytorch.callbacks import TQDMProgressBar

    class StderrProgressBar(TQDMProgressBar):
        """Lightning's bar on stderr (its own writes to stdout, where a user redirects
        results), epochs counted from 1 like stfusion's epoch lines and checkpoint."""

        def _on_stderr(self, init: Any) -> Any:
            with contextlib.redirect_stdout(sys.stderr):  # the bars take file=sys.stdout
                bar = init()
            if isinstance(getattr(bar, "nrows", None), int) and bar.nrows < 1:
                # a terminal that gives no size (a pseudo-terminal never sized): tqdm read
                # -1 rows and drew nothing, so a trial's training showed no bar at all
                bar.nrows, bar.ncols, bar.dynamic_ncols = 20, 80, None
            return bar

        def init_sanity_tqdm(self) -> Any:
            return self._on_stderr(super().init_sanity_tqdm)

        def init_train_tqdm(self) -> Any:
            return self._on_stderr(super().init_train_tqdm)

        def init_validation_tqdm(self) -> Any:
            return self._on_stderr(super().init_validation_tqdm)

        def init_predict_tqdm(self) -> Any:
            return self._on_stderr(super().init_predict_tqdm)

        def init_test_tqdm(self) -> Any:
            return self._on_stderr(super().init_test_tqdm)

        def on_train_epoch_start(self, trainer: L.Trainer, *_: Any) -> None:
            # Lightning's own, but for the description (it would show "Epoch 0" first)
            if self._leave:
                self.train_progress_bar = self.init_train_tqdm()
            bar, total = self.train_progress_bar, self.total_train_batches
            bar.reset()
            bar.total = None if total == float("inf") else total
            bar.initial = 0
            bar.set_description(f"Epoch {trainer.current_epoch + 1}")

    return StderrProgressBar


@cache
def atomic_checkpoint_io() -> type:
    """``AtomicCheckpointIO``, made when a Trainer first is (its base is Lightning's)."""
    from lightning.pytorch.plugins.io import TorchCheckpointIO

    class AtomicCheckpointIO(TorchCheckpointIO):
        """Lightning's checkpoint writer, but the file is written beside its final name and
        renamed into place whole. Lightning's own writes it in the temporary folder and, when
        that is on another file system (the usual case), copies it over the last epoch's
        file: a disk filling then left ``resume.ckpt`` cut short and the last good state
        gone (a user trial)."""

        def save_checkpoint(
            self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None
        ) -> None:
            if storage_options is not None:  # Lightning's own error for it
                super().save_checkpoint(checkpoint, path, storage_options)
                return
            final = Path(path)
            final.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(final, overwrite=True) as tmp:
                torch.save(checkpoint, tmp)

    return AtomicCheckpointIO


def make_trainer(
    settings: EngineSettings,
    root: Path,
    *,
    max_epochs: int = -1,
    max_steps: int = -1,
    callbacks: Sequence[L.Callback] = (),
    logger: Any = False,
    validate: bool = True,
    unused_parameters: bool = False,
) -> L.Trainer:
    """The one Trainer set-up of ``stfusion train`` and ``stfusion distill``.

    ``unused_parameters``: the module steps some parameters without the others (a GAN's
    generator and discriminator steps): DDP must then look for parameters without gradients.
    """
    import_lightning()  # or the error saying how to install it
    import lightning as L
    from lightning.pytorch.callbacks import ModelCheckpoint

    accelerator, devices = parse_devices(settings.device)
    strategy = settings.strategy
    if unused_parameters and strategy == "ddp":
        strategy = "ddp_find_unused_parameters_true"
    bar = settings.progress_bar and sys.stderr.isatty()
    cbs = list(callbacks)
    if bar:
        cbs.append(stderr_progress_bar()(leave=False))
    return L.Trainer(
        accelerator=accelerator,
        devices=devices,
        strategy=strategy,
        precision=check_precision(settings.precision),  # type: ignore[arg-type]  # a checked literal
        max_epochs=max_epochs,
        max_steps=max_steps,
        callbacks=cbs,
        logger=logger,
        enable_checkpointing=any(isinstance(c, ModelCheckpoint) for c in cbs),
        enable_progress_bar=bar,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=1.0 if validate else 0,
        use_distributed_sampler=False,
        default_root_dir=str(root),
        log_every_n_steps=1,
        deterministic=False,
        plugins=[atomic_checkpoint_io()()],
    )
