"""Training DCSTFN and EDCSTFN on the user's own pairs.

``train(pairs, out, TrainConfig(...))`` (and ``stfusion train``) does, in order:

1. open the pairs with :func:`stfusion.scene.open_scene` (the scaling and alignment that
   ``stfusion predict`` uses), take their dates from ``dates`` or the file names;
2. build the examples (every ordered pair of dates), the per-band normalisation and the
   spatial validation block (:mod:`stfusion.dl.data`);
3. EDCSTFN only: train the feature-loss autoencoder on fine patches (``ae_steps`` steps), then
   freeze it;
4. train the network with Adam on random patches, ``steps_per_epoch`` batches per epoch; after
   each epoch compute the validation loss on the held-out block, keep the best weights, write
   the checkpoint atomically and append to the loss log (``<out>.log.csv`` and a curve
   ``<out>.loss.png`` beside the checkpoint); stop after ``patience`` epochs without
   improvement.

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
from stfusion.dl.losses import CompoundLoss, content_loss
from stfusion.dl.networks import FusionNet, channels_for, make_network, network_class
from stfusion.dl.networks.autoencoder import Autoencoder
from stfusion.errors import InvalidParameterError, OutputExistsError
from stfusion.io import AlignedSource, FileSource, Scaling, Source
from stfusion.scene import ImageLike, Scene, open_scene

MODELS = ("dcstfn", "edcstfn")


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
    content: str = "mse"
    alpha: float = 0.8  # EDCSTFN: weight of the vision (1 - MS-SSIM) loss
    beta: float = 1.0  # EDCSTFN: weight of the feature loss
    ae_steps: int = 300  # EDCSTFN: autoencoder training steps
    threads: int = 0  # torch CPU threads; 0: torch's default

    def validate(self) -> None:
        if self.model not in MODELS:
            raise InvalidParameterError(f"model {self.model!r}: choose one of {', '.join(MODELS)}.")
        channels_for(self.size)
        for name in ("epochs", "patch", "batch", "patience"):
            if int(getattr(self, name)) < 1:
                raise InvalidParameterError(f"{name} must be >= 1, got {getattr(self, name)}.")
        if self.patch < 16:
            raise InvalidParameterError(f"patch must be at least 16 px, got {self.patch}.")
        if not self.lr > 0:
            raise InvalidParameterError(f"lr must be > 0, got {self.lr}.")
        if self.content not in ("mse", "l1"):
            raise InvalidParameterError(f"content loss {self.content!r}: choose mse or l1.")
        if self.model == "dcstfn" and self.patch % 2:
            raise InvalidParameterError(f"dcstfn needs an even patch size, got {self.patch}.")


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
        fig = Figure(figsize=(6, 3.6), dpi=100)
        ax = fig.add_subplot()
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

    def setup_loss(self, previous: Checkpoint | None) -> None:
        cfg, device = self.cfg, self.device
        if cfg.model != "edcstfn":
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

    def run_epoch(self) -> None:
        """One epoch: training steps, validation, bookkeeping, checkpoint and CSV log."""
        cfg, net = self.cfg, self.net
        self.epoch += 1
        t0 = time.perf_counter()
        net.train()
        sums: dict[str, float] = {}
        for step in range(self.steps):
            batch = self.data.sample(self.rng, cfg.batch, cfg.patch, cfg.augment)
            fr, cr, ct, ft, mask = _tensors(batch, self.device)
            self.optimizer.zero_grad()
            loss, parts = self.criterion(net(fr, cr, ct), ft, mask)
            loss.backward()
            self.optimizer.step()
            sums["train_loss"] = sums.get("train_loss", 0.0) + float(loss.detach())
            for k, val in parts.items():
                sums[k] = sums.get(k, 0.0) + val
            if self.progress is not None:
                self.progress({"stage": "train", "epoch": self.epoch, "epochs": cfg.epochs,
                               "step": step + 1, "steps": self.steps,
                               "loss": sums["train_loss"] / (step + 1)})  # fmt: skip
        val_loss, val_rmse = _evaluate(net, self.criterion, self.data, self.device)
        row: dict[str, float] = {"epoch": self.epoch}
        row.update({k: v / self.steps for k, v in sums.items()})
        row.update(val_loss=val_loss, val_rmse=val_rmse, val_rmse_additive=self.additive_rmse,
                   lr=cfg.lr, seconds=time.perf_counter() - t0)  # fmt: skip
        self.history.append(row)
        if val_loss < self.best_loss:
            self.best_loss, self.best_epoch, self.bad = val_loss, self.epoch, 0
            self.best_state = copy.deepcopy(net.state_dict())
        else:
            self.bad += 1
        if self.progress is not None:
            self.progress({"stage": "epoch", **row, "best_epoch": self.best_epoch})
        save_checkpoint(self.out, self.payload())
        write_log(self.history, self.out, plot=False)

    def payload(self) -> dict[str, Any]:
        cfg, scene, data = self.cfg, self.scene, self.data
        f0, c0 = scene.pairs[0]
        info = {
            "stfusion_version": stfusion.__version__,
            "torch_version": str(torch.__version__),
            "numpy_version": np.__version__,
            "python": platform.python_version(),
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "seconds": self.seconds,
            "inputs": [[f.label, c.label] for f, c in scene.pairs],
        }
        info.update(self.meta or {})

        def cpu(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
            return {k: v.detach().cpu() for k, v in sd.items()}

        out: dict[str, Any] = {
            "model": cfg.model,
            "network": {**self.net.config(), "size": cfg.size},
            "state_dict": cpu(self.best_state),
            "bands": scene.count,
            "band_names": list(scene.band_names),
            "scaling": {"fine": _scaling_of(f0), "coarse": _scaling_of(c0)},
            "ratio": scene.ratio,
            "norm": {"mean": list(data.mean), "std": list(data.std)},
            "data_range": list(data.data_range),
            "physical_range": data.physical_range,
            "training_dates": list(self.dates or []),
            "validation_block": asdict(data.val),
            "config": asdict(cfg),
            "history": self.history,
            "epoch": self.epoch,
            "best_epoch": self.best_epoch,
            "best_val_loss": self.best_loss,
            "bad_epochs": self.bad,
            "resume": {
                "state_dict": cpu(self.net.state_dict()),
                "optimizer": self.optimizer.state_dict(),
                "torch_rng": torch.get_rng_state(),
                "numpy_rng": _rng_state(self.rng),
            },
            "meta": info,
        }
        if self.ae is not None:
            out["autoencoder"] = {
                **self.ae.config(),
                "state_dict": cpu(self.ae.state_dict()),
                "losses": self.ae_losses[-20:],
            }
        return out


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
    with _deterministic(device, cfg.threads):
        run = _Run(cfg, scene, data, device, out, iso_dates, meta, progress)
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
