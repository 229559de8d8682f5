"""Training STFDCNN (Song et al. 2018) on the user's own pairs.

``train_stfdcnn(pairs, out, config)`` has the signature of :func:`stfusion.dl.train.train`
(so ``stfusion train --model stfdcnn`` can dispatch to it) and writes the same checkpoint
format, loss log and curve. What differs is what is learned: STFDCNN's two CNNs are trained
on each pair date on its own (no ordered date pairs), as in the paper:

- the non-linear mapping CNN on ``coarse -> LSR fine`` (the fine image averaged over
  ``factor x factor`` blocks, the "transitional" level);
- the super-resolution CNN on ``LSR fine -> fine``.

Both losses are MSE (or L1) over valid pixels of normalised values, summed and minimised with
one Adam optimiser (the two networks share no weights, so this is the same as two separate
runs on the same patches). Patches are drawn at positions that are multiples of ``factor``
(block grids as at prediction); validation uses the held-out block of
:class:`stfusion.dl.data.TrainingData`, cut to the block grid. Early stopping and the best
weights follow the summed validation loss. Each epoch also logs ``val_rmse``: the RMSE
(physical units, mean over bands) on the validation block of the single-pair STFDCNN
prediction (both levels and HPM, no weighting) between the training dates, beside the
additive baseline ``F_r + C_t - C_r`` on the same pixels (``val_rmse_additive``).

Reproducibility, checkpoints, resume and the log are those of :mod:`stfusion.dl.train`
(same helpers).
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from stfusion.dl.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from stfusion.dl.data import TrainingData, resolve_dates
from stfusion.dl.infer import resolve_device
from stfusion.dl.networks.stfdcnn import STFDCNNNet, choose_factor, choose_window, sizes_for
from stfusion.dl.train import (
    ProgressFn,
    TrainConfig,
    TrainResult,
    _check_resume,
    _deterministic,
    _rng_state,
    _set_rng_state,
    checkpoint_record,
    cpu_state,
    write_log,
)
from stfusion.errors import InvalidParameterError, OutputExistsError
from stfusion.io import Scaling
from stfusion.scene import ImageLike, Scene, open_scene


@dataclass
class STFDCNNConfig:
    """Hyper-parameters of an STFDCNN training run (stored in the checkpoint).

    ``factor``: LSR block size in fine pixels (0: from the resolution ratio, see
    :func:`stfusion.dl.networks.stfdcnn.choose_factor`); ``window``: radius in LSR pixels of
    the box of the pair weights (0: about one coarse pixel). Adam with learning rate 1e-3
    replaces SRCNN's SGD (1e-4, 1e-5 in the last layer), as for the other deep methods.
    """

    model: str = "stfdcnn"
    size: str = "small"
    factor: int = 0
    window: int = 0
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
    threads: int = 0

    @classmethod
    def from_train_config(cls, cfg: TrainConfig, **overrides: Any) -> STFDCNNConfig:
        """The shared options of a :class:`TrainConfig` (EDCSTFN's loss weights and
        autoencoder steps do not apply), plus ``overrides`` (e.g. ``factor=2``)."""
        if cfg.time_mix:
            raise InvalidParameterError(
                "--time-mix does not apply to stfdcnn: it trains its two CNNs on single dates, "
                "not on ordered date pairs; leave it out."
            )
        names = {f.name for f in fields(cls)}
        kw = {k: v for k, v in asdict(cfg).items() if k in names}
        kw["model"] = "stfdcnn"
        if kw.get("content") not in ("mse", "l1"):  # e.g. TrainConfig's "auto": SRCNN's MSE
            kw["content"] = "mse"
        kw.update(overrides)
        return cls(**kw)

    def validate(self) -> None:
        if self.model != "stfdcnn":
            raise InvalidParameterError(f"model {self.model!r}: this trainer trains stfdcnn.")
        sizes_for(self.size)
        for name in ("epochs", "patch", "batch", "patience"):
            if int(getattr(self, name)) < 1:
                raise InvalidParameterError(f"{name} must be >= 1, got {getattr(self, name)}.")
        for name in ("factor", "window", "steps_per_epoch"):
            if int(getattr(self, name)) < 0:
                raise InvalidParameterError(f"{name} must be >= 0, got {getattr(self, name)}.")
        if self.patch < 16:
            raise InvalidParameterError(f"patch must be at least 16 px, got {self.patch}.")
        if not self.lr > 0:
            raise InvalidParameterError(f"lr must be > 0, got {self.lr}.")
        if self.content not in ("mse", "l1"):
            raise InvalidParameterError(f"content loss {self.content!r}: choose mse or l1.")


def _as_config(config: STFDCNNConfig | TrainConfig | None) -> STFDCNNConfig:
    if config is None:
        return STFDCNNConfig()
    if isinstance(config, TrainConfig):
        return STFDCNNConfig.from_train_config(config)
    return copy.deepcopy(config)


def _dihedral(a: np.ndarray, k: int, flip: bool) -> np.ndarray:
    a = np.rot90(a, k, axes=(-2, -1))
    return np.ascontiguousarray(a[..., ::-1] if flip else a)


class _Data:
    """Single-date training samples on the block grid, and the aligned validation block."""

    def __init__(self, data: TrainingData, factor: int, patch: int) -> None:
        self.data, self.s, self.patch = data, factor, patch
        h, w = data.shape
        v = data.val
        r0, c0 = -(-v.row // factor) * factor, -(-v.col // factor) * factor
        self.val_rows = (r0, r0 + (h - r0) // factor * factor)
        self.val_cols = (c0, c0 + (w - c0) // factor * factor)
        if min(self.val_rows[1] - r0, self.val_cols[1] - c0) < factor:
            raise InvalidParameterError(
                f"the validation block ({v.height} x {v.width} px) is smaller than the "
                f"transitional factor {factor}; use a larger val_fraction or scene."
            )
        if not data.train_positions_exist(patch):
            raise InvalidParameterError(
                f"patch {patch} px does not fit beside the validation block ({v.height} x "
                f"{v.width} px of a {h} x {w} scene); use a smaller --patch or val_fraction."
            )

    def sample(
        self, rng: np.random.Generator, n: int, augment: bool
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``n`` patches ``(fine, coarse, mask)`` of random dates, never touching the
        validation block, at positions on the block grid."""
        d, s, p = self.data, self.s, self.patch
        h, w = d.shape
        out: list[tuple[np.ndarray, ...]] = []
        tries = 0
        while len(out) < n:
            tries += 1
            if tries > 1000 * n:
                raise InvalidParameterError(
                    "could not find training patches with valid pixels outside the validation "
                    "block; check the nodata of the inputs or use a smaller --patch."
                )
            t = int(rng.integers(d.fine.shape[0]))
            r = int(rng.integers((h - p) // s + 1)) * s
            c = int(rng.integers((w - p) // s + 1)) * s
            if d.val.intersects(r, c, p, p):
                continue
            mask = d.valid[t, r : r + p, c : c + p]
            if 1.0 - mask.mean() > d.max_invalid:
                continue
            parts = (d.fine[t, :, r : r + p, c : c + p], d.coarse[t, :, r : r + p, c : c + p],
                     mask[None])  # fmt: skip
            if augment:
                k, flip = int(rng.integers(4)), bool(rng.integers(2))
                parts = tuple(_dihedral(a, k, flip) for a in parts)
            out.append(parts)
        fine, coarse, mask = (np.stack([o[i] for o in out]) for i in range(3))
        return np.nan_to_num(fine), np.nan_to_num(coarse), mask.astype(np.float32)

    def validation(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """All dates on the aligned validation block: fine, coarse (D, B, h, w), mask."""
        d = self.data
        rs, cs = slice(*self.val_rows), slice(*self.val_cols)
        fine = np.nan_to_num(d.fine[:, :, rs, cs])
        coarse = np.nan_to_num(d.coarse[:, :, rs, cs])
        return fine, coarse, d.valid[:, None, rs, cs].astype(np.float32)


def _evaluate(
    net: STFDCNNNet, vdata: _Data, content: str, device: torch.device
) -> dict[str, float]:
    """Validation losses of both CNNs, and RMSEs (physical units, mean over bands) of the
    single-pair prediction and of the additive baseline between every ordered date pair."""
    fine_np, coarse_np, mask_np = vdata.validation()
    fine = torch.from_numpy(fine_np).to(device)
    coarse = torch.from_numpy(coarse_np).to(device)
    mask = torch.from_numpy(mask_np).to(device)
    std = vdata.data.std
    n_dates = fine.shape[0]
    net.eval()
    with torch.no_grad():
        nlm, sr = net.losses(fine, coarse, mask, content)
        sq = np.zeros((2, len(std)))
        count = 0.0
        for r in range(n_dates):
            for t in range(n_dates):
                if r == t:
                    continue
                pred = net(fine[r : r + 1], coarse[r : r + 1], coarse[t : t + 1])[0]
                add = fine[r] + coarse[t] - coarse[r]
                m = (mask[r, 0] * mask[t, 0]).bool()
                for i, p in enumerate((pred, add)):
                    err = (p - fine[t])[:, m].cpu().numpy().astype(np.float64)
                    sq[i] += (err**2).sum(axis=1) * std**2
                count += float(m.sum())
    net.train()
    rmse = np.sqrt(sq / max(count, 1.0)).mean(axis=1)
    return {"val_nlm": float(nlm), "val_sr": float(sr), "val_loss": float(nlm + sr),
            "val_rmse": float(rmse[0]), "val_rmse_additive": float(rmse[1])}  # fmt: skip


class _Run:
    """One STFDCNN training run (fresh or resumed) and its epoch loop."""

    def __init__(
        self,
        cfg: STFDCNNConfig,
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
        self.samples = _Data(data, cfg.factor, cfg.patch)
        self.rng = np.random.default_rng(cfg.seed)
        torch.manual_seed(cfg.seed)
        self.net = STFDCNNNet(
            scene.count, sizes_for(cfg.size), cfg.factor, cfg.window, data.mean, data.std
        ).to(device)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=cfg.lr)
        self.history: list[dict[str, float]] = []
        self.best_state = copy.deepcopy(self.net.state_dict())
        self.best_loss, self.best_epoch, self.bad, self.epoch = float("inf"), 0, 0, 0
        self.elapsed_before = 0.0
        self.t_start = time.perf_counter()
        h, w = data.shape
        v = data.val
        area = (h * w - v.height * v.width) * data.fine.shape[0]
        self.steps = cfg.steps_per_epoch or max(10, -(-area // (cfg.patch**2 * cfg.batch)))

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
        cfg, net, dev = self.cfg, self.net, self.device
        self.epoch += 1
        t0 = time.perf_counter()
        net.train()
        sums = {"train_loss": 0.0, "train_nlm": 0.0, "train_sr": 0.0}
        for step in range(self.steps):
            batch = self.samples.sample(self.rng, cfg.batch, cfg.augment)
            fine, coarse, mask = (torch.from_numpy(a).to(dev) for a in batch)
            self.optimizer.zero_grad()
            nlm, sr = net.losses(fine, coarse, mask, cfg.content)
            loss = nlm + sr
            loss.backward()
            self.optimizer.step()
            sums["train_loss"] += float(loss.detach())
            sums["train_nlm"] += float(nlm.detach())
            sums["train_sr"] += float(sr.detach())
            if self.progress is not None:
                self.progress({"stage": "train", "epoch": self.epoch, "epochs": cfg.epochs,
                               "step": step + 1, "steps": self.steps,
                               "loss": sums["train_loss"] / (step + 1)})  # fmt: skip
        row: dict[str, float] = {"epoch": self.epoch}
        row.update({k: v / self.steps for k, v in sums.items()})
        row.update(_evaluate(net, self.samples, cfg.content, dev))
        row.update(lr=cfg.lr, seconds=time.perf_counter() - t0)
        self.history.append(row)
        if row["val_loss"] < self.best_loss:
            self.best_loss, self.best_epoch, self.bad = row["val_loss"], self.epoch, 0
            self.best_state = copy.deepcopy(net.state_dict())
        else:
            self.bad += 1
        if self.progress is not None:
            self.progress({"stage": "epoch", **row, "best_epoch": self.best_epoch})
        save_checkpoint(self.out, self.payload())
        write_log(self.history, self.out, plot=False)

    def payload(self) -> dict[str, Any]:
        out = checkpoint_record(
            self, "stfdcnn", {**self.net.config(), "size": self.cfg.size}, self.meta or {}
        )
        out["resume"] = {
            "state_dict": cpu_state(self.net.state_dict()),
            "optimizer": self.optimizer.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "numpy_rng": _rng_state(self.rng),
        }
        return out


def train_stfdcnn(
    pairs: Sequence[tuple[ImageLike, ImageLike]] | Scene,
    out: str | os.PathLike[str],
    config: STFDCNNConfig | TrainConfig | None = None,
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
    """Train STFDCNN on ``pairs`` (two or more dates) and write the checkpoint ``out``.

    ``config``: an :class:`STFDCNNConfig`, or the :class:`TrainConfig` of ``stfusion train``
    (its shared options are used; ``factor`` and ``window`` are then chosen from the
    resolution ratio). With ``resume=True`` the stored configuration is used, except
    ``epochs``, ``patience``, ``device`` and ``threads``. Other arguments as
    :func:`stfusion.dl.train.train`.
    """
    cfg = _as_config(config)
    out = Path(out)
    previous: Checkpoint | None = None
    if resume:
        if not out.exists():
            raise InvalidParameterError(f"--resume: {out} does not exist; train without it first.")
        previous = load_checkpoint(out)
        if previous.model != "stfdcnn" or "resume" not in previous.data:
            raise InvalidParameterError(
                f"{out}: not a resumable stfdcnn checkpoint (model {previous.model})."
            )
        stored = previous.data["config"]
        keep = {"epochs": cfg.epochs, "patience": cfg.patience, "device": cfg.device,
                "threads": cfg.threads}  # fmt: skip
        cfg = STFDCNNConfig(**{f.name: stored.get(f.name, getattr(cfg, f.name))
                               for f in fields(STFDCNNConfig)})  # fmt: skip
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
    # Resolved once and stored, so a resumed run and the prediction use the same grid.
    cfg.factor = cfg.factor or choose_factor(scene.ratio)
    cfg.window = cfg.window or choose_window(scene.ratio, cfg.factor)
    if cfg.patch % cfg.factor or cfg.patch < 4 * cfg.factor:
        raise InvalidParameterError(
            f"patch ({cfg.patch} px) must be a multiple of the transitional factor "
            f"({cfg.factor}) and at least 4 blocks wide."
        )
    data = TrainingData(scene, val_fraction=cfg.val_fraction, multiple=cfg.factor)
    with _deterministic(device, cfg.threads):
        run = _Run(cfg, scene, data, device, out, iso_dates, meta, progress)
        if previous is not None:
            run.restore(previous)
        try:
            while not run.stopped and run.epoch < cfg.epochs:
                run.run_epoch()
        finally:
            if run.history:
                write_log(run.history, out)
    return TrainResult(
        out, run.epoch, run.best_epoch, run.best_loss, run.seconds, run.stopped, run.history
    )


__all__ = ["STFDCNNConfig", "train_stfdcnn"]
