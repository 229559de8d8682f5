"""The training engine of every deep method, on PyTorch Lightning.

One ``LightningModule`` family (:class:`FusionModule` and its subclasses) and one Trainer
set-up (:func:`fit`) serve ``stfusion train`` (plain networks, GANs, STFDCNN) and
``stfusion distill``:

==========================  ===============================================================
:class:`FusionModule`       plain networks (DCSTFN, EDCSTFN, ...): Adam on the content (or
                            compound) loss
:class:`AdversarialModule`  GAN-STFM, vitgan: manual optimisation, one discriminator then one
                            generator update per batch (:class:`stfusion.dl.train.GANTrainer`)
:class:`STFDCNNModule`      STFDCNN: its mapping and super-resolution CNNs on single dates
:class:`DistillModule`      a student against a frozen teacher (:mod:`stfusion.dl.distill`)
:class:`AutoencoderModule`  the feature-loss autoencoder, trained before EDCSTFN / the GANs
==========================  ===============================================================

Every module validates the same way: on the fixed validation sample
(:class:`stfusion.dl.datasets.ValidationDataset`) it logs ``val_loss`` (its loss), ``val_rmse``
(RMSE in physical units, mean over bands, of the prediction from one pair) and
``val_rmse_additive`` (the additive baseline ``F_r + C_t - C_r`` on the same pixels).

From Lightning, not by hand: the loop, ``seed_everything``, devices (``cpu``, ``cuda``,
``cuda:1``, ``auto``), precision (``32``, ``16-mixed``, ``bf16-mixed``), strategies (``ddp``),
early stopping (``EarlyStopping`` on the module's ``monitor``), the resume state (a
``ModelCheckpoint`` of the last epoch, ``<stem>.lightning/resume.ckpt`` beside the output),
CSV logs of every step (``CSVLogger`` in ``<stem>.lightning/csv``) and the progress bar with
ETA (``TQDMProgressBar``, when stderr is a terminal). :class:`RunRecorder` adds what stfusion
needs after every validation: the epoch row of the loss log (``<stem>.log.csv``; the curve
``<stem>.loss.png`` at the end), the best weights and the stfusion checkpoint
(:mod:`stfusion.dl.checkpoint`, the file the methods load), written atomically.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import platform
import shutil
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from stfusion.dl import missing_lightning

try:
    import lightning as L
except ImportError as exc:  # torch without Lightning: predicting works, training does not
    raise missing_lightning() from exc
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger

import stfusion
from stfusion.dl import datasets
from stfusion.dl.checkpoint import (  # cpu_state re-exported: engine.<name> was its home
    cpu_state,
    load_checkpoint,
    save_checkpoint,
)
from stfusion.dl.engine_files import (  # check_resumable re-exported: engine.<name> was its home
    check_resumable,  # noqa: F401
    check_resume_state,
    claim_output,
)
from stfusion.dl.engine_settings import (  # all re-exported: engine.<name> is their old home
    RESUME_FILE,
    EngineSettings,
    OptionError,  # noqa: F401
    ProgressFn,
    check_precision,  # noqa: F401
    check_strategy,  # noqa: F401
    deterministic,  # noqa: F401
    lightning_dir,
    make_trainer,
    parse_devices,  # noqa: F401
    quiet_lightning,
    resume_path,
    warn_settings,  # noqa: F401
)
from stfusion.errors import RunInterrupted, interrupted_how

if TYPE_CHECKING:
    from stfusion.dl.distill_teacher import Teacher
    from stfusion.dl.networks.agnostic import AgnosticNet
    from stfusion.dl.networks.stfdcnn import STFDCNNNet
    from stfusion.dl.networks.student import StudentNet

# ----------------------------------------------------------------------------- modules


def _stats(batch: Sequence[torch.Tensor]) -> torch.Tensor | None:
    """The per-sample ``(center, scale, data range)`` of a band-agnostic batch, else None."""
    return batch[5] if len(batch) > 5 else None


def _mean_rows(steps: list[dict[str, float]]) -> dict[str, float]:
    if not steps:
        return {}
    return {k: float(np.mean([st[k] for st in steps if k in st])) for k in steps[0]}


class FusionModule(L.LightningModule):
    """A fusion network ``net(F_r, C_r, C_t)`` trained on a (compound) loss ``criterion``.

    ``std``: the per-band normalisation (validation RMSE in physical units). Subclasses
    override :meth:`training_step`, :meth:`val_losses` and :meth:`epoch_row`.
    """

    #: The validation value that picks the best epoch and drives early stopping.
    monitor = "val_loss"

    # A buffer (register_buffer), declared for the type checker.
    std_: torch.Tensor

    def __init__(
        self,
        net: torch.nn.Module,
        criterion: torch.nn.Module | None,
        lr: float,
        std: Sequence[float] | np.ndarray,
    ) -> None:
        super().__init__()
        self.net = net
        self.criterion = criterion
        self.lr = float(lr)
        self.register_buffer(
            "std_", torch.as_tensor(np.asarray(std), dtype=torch.float64), persistent=False
        )
        self.steps: list[dict[str, float]] = []
        self.val_metrics: dict[str, float] = {}
        self._sums: dict[str, torch.Tensor] = {}

    def forward(
        self, fine_ref: torch.Tensor, coarse_ref: torch.Tensor, coarse_target: torch.Tensor
    ) -> torch.Tensor:
        return self.net(fine_ref, coarse_ref, coarse_target)

    def configure_optimizers(self) -> Any:
        return torch.optim.Adam(self.net.parameters(), lr=self.lr)

    def on_fit_start(self) -> None:
        # Under DDP each process trained its own feature-loss autoencoder, on its own patches:
        # all take process 0's, so the replicas optimise one and the same loss.
        if self.trainer.world_size > 1 and self.criterion is not None:
            state = self.trainer.strategy.broadcast(cpu_state(self.criterion.state_dict()), 0)
            self.criterion.load_state_dict(state)

    def record(self, row: dict[str, float]) -> None:
        """Keep one step's values for the epoch row; show the loss on the progress bar."""
        self.steps.append(row)
        self.log(
            "train_loss",
            row["train_loss"],
            prog_bar=True,
            on_step=True,
            on_epoch=False,
            batch_size=1,
        )

    def training_step(self, batch: Sequence[torch.Tensor], batch_idx: int) -> torch.Tensor | None:
        fr, cr, ct, ft, mask = batch[:5]
        assert self.criterion is not None  # only STFDCNNModule has none; it has its own step
        loss, parts = self.criterion(self.net(fr, cr, ct), ft, mask, _stats(batch))
        self.record({"train_loss": float(loss.detach()), **parts})
        return loss

    def epoch_row(self) -> dict[str, float]:
        """The per-epoch training columns of the loss log (means over the steps)."""
        row = _mean_rows(self.steps)
        self.steps = []
        return row

    # -- validation ----------------------------------------------------------------------

    def val_losses(self, pred: torch.Tensor, batch: Sequence[torch.Tensor]) -> dict[str, Any]:
        """Validation losses of one batch (means over it)."""
        assert self.criterion is not None  # only STFDCNNModule has none; it has its own
        loss, _ = self.criterion(pred, batch[3], batch[4], _stats(batch))
        return {"val_loss": loss}

    def val_extra(self, pred: torch.Tensor, batch: Sequence[torch.Tensor]) -> None:
        """Hook: more sums per validation batch (distillation)."""

    def on_validation_epoch_start(self) -> None:
        self._sums = {}

    def add(self, key: str, value: torch.Tensor) -> None:
        v = value.detach().to(torch.float64)
        self._sums[key] = self._sums[key] + v if key in self._sums else v

    def add_rmse(
        self,
        key: str,
        pred: torch.Tensor,
        truth: torch.Tensor,
        mask: torch.Tensor,
        stats: torch.Tensor | None = None,
    ) -> None:
        """Accumulate per-band squared errors (normalised units; with per-sample ``stats``,
        physical units) over ``mask``."""
        m = mask.to(pred.dtype)
        diff = (pred - truth).float()
        if stats is not None:
            diff = diff * stats[:, 1].float().view(-1, 1, 1, 1)
        err = (diff**2 * m).sum(dim=(0, 2, 3))
        self.add(f"{key}:sq", err)
        self.add(f"{key}:n", m.sum())

    def validation_step(self, batch: Sequence[torch.Tensor], batch_idx: int) -> None:
        fr, cr, ct, ft, mask = batch[:5]
        stats = _stats(batch)
        pred = self.net(fr, cr, ct)
        n = torch.tensor(float(fr.shape[0]), device=fr.device)
        for k, v in self.val_losses(pred, batch).items():
            self.add(k, v.detach() * n)
        self.add("n", n)
        self.add_rmse("val_rmse", pred, ft, mask, stats)
        self.add_rmse("val_rmse_additive", fr + ct - cr, ft, mask, stats)
        self.val_extra(pred, batch)

    def on_validation_epoch_end(self) -> None:
        self.val_metrics = self.val_scores()
        self.log_dict(self.val_metrics, sync_dist=False, batch_size=1)

    def val_scores(self) -> dict[str, float]:
        """The validation values from the sums of the batches (of every process)."""
        trainer = self._trainer
        sums = dict(self._sums)
        if trainer is not None:
            sums = {k: trainer.strategy.reduce(v, reduce_op="sum") for k, v in sums.items()}
        out: dict[str, float] = {}
        std2 = self.std_.to(torch.float64) ** 2
        for k, v in sums.items():
            if k.endswith(":sq"):
                name = k[:-3]
                n = sums[f"{name}:n"].to(std2.device)
                mse = v.to(std2.device) * std2 / n.clamp_min(1.0)
                out[name] = float(torch.sqrt(mse).mean()) if n > 0 else float("nan")
            elif k not in ("n",) and not k.endswith(":n"):
                out[k] = float(v / sums["n"].clamp_min(1.0))
        return out


def evaluate(module: FusionModule, data: torch.utils.data.DataLoader) -> dict[str, float]:
    """The validation values of ``module`` on ``data`` (outside a Trainer, on the CPU)."""
    module = module.cpu()
    was_training = module.training
    module.eval()
    module.on_validation_epoch_start()
    with torch.no_grad():
        for i, batch in enumerate(data):
            module.validation_step(batch, i)
    trainer, module._trainer = module._trainer, None
    try:
        return module.val_scores()
    finally:
        module._trainer = trainer
        module.train(was_training)


class AdversarialModule(FusionModule):
    """A generator against a discriminator (manual optimisation, see
    :class:`stfusion.dl.train.GANTrainer`); the best epoch follows the validation RMSE."""

    monitor = "val_rmse"

    def __init__(self, gan: Any, lr: float, std: Sequence[float] | np.ndarray) -> None:
        super().__init__(gan.g, gan.recon, lr, std)
        self.disc = gan.d
        self.spectral = gan.spectral
        self.gan = gan
        self.automatic_optimization = False

    def configure_optimizers(self) -> Any:
        return [self.gan.g_opt, self.gan.d_opt]

    def training_step(self, batch: Sequence[torch.Tensor], batch_idx: int) -> None:
        opts = self.optimizers()
        assert isinstance(opts, list)  # two optimizers: Lightning gives the list
        g_opt, d_opt = opts
        row = self.gan.step(
            *batch[:5], stats=_stats(batch), g_opt=g_opt, d_opt=d_opt, backward=self.manual_backward
        )
        self.record(row)

    def epoch_row(self) -> dict[str, float]:
        ratios = [st["ratio"] for st in self.steps]
        row = super().epoch_row()
        row.pop("ratio", None)
        if ratios:
            row.update(ratio_min=float(np.min(ratios)), ratio_max=float(np.max(ratios)))
        return row


class STFDCNNModule(FusionModule):
    """STFDCNN's two CNNs (``net.losses``) on single-date patches ``(F, C, mask)``; validation
    on pair patches: both losses on the target date and the single-pair prediction's RMSE."""

    net: STFDCNNNet | AgnosticNet  # band-agnostic: an AgnosticNet around a 1-band STFDCNNNet

    def __init__(
        self,
        net: STFDCNNNet | AgnosticNet,
        content: str,
        lr: float,
        std: Sequence[float] | np.ndarray,
    ) -> None:
        super().__init__(net, None, lr, std)
        self.content = content

    def training_step(self, batch: Sequence[torch.Tensor], batch_idx: int) -> torch.Tensor:
        fine, coarse, mask = batch
        nlm, sr = self.net.losses(fine, coarse, mask.float(), self.content)
        loss = nlm + sr
        self.record(
            {
                "train_loss": float(loss.detach()),
                "train_nlm": float(nlm.detach()),
                "train_sr": float(sr.detach()),
            }
        )
        return loss

    def val_losses(self, pred: torch.Tensor, batch: Sequence[torch.Tensor]) -> dict[str, Any]:
        nlm, sr = self.net.losses(batch[3], batch[2], batch[4].float(), self.content)
        return {"val_nlm": nlm, "val_sr": sr, "val_loss": nlm + sr}


class DistillModule(FusionModule):
    """A student trained on ``L_gt + alpha L_teacher + beta L_feature`` against a frozen
    teacher (:class:`stfusion.dl.distill.Teacher`); validation adds the teacher's RMSE and
    the student's RMSE against the teacher (``val_rmse_teacher``, ``val_rmse_vs_teacher``)."""

    net: StudentNet | AgnosticNet  # band-agnostic: an AgnosticNet around a 1-band StudentNet
    criterion: torch.nn.Module

    def __init__(
        self,
        student: StudentNet | AgnosticNet,
        adapter: torch.nn.Module | None,
        teacher: Teacher,
        criterion: torch.nn.Module,
        val_criterion: Any,
        lr: float,
        std: Sequence[float] | np.ndarray,
        alpha: float,
    ) -> None:
        super().__init__(student, criterion, lr, std)
        self.adapter = adapter
        self.teacher = teacher
        self.val_criterion = val_criterion
        self.alpha = alpha

    def configure_optimizers(self) -> Any:
        params = list(self.net.parameters())
        if self.adapter is not None:
            params += list(self.adapter.parameters())
        return torch.optim.Adam(params, lr=self.lr)

    def training_step(self, batch: Sequence[torch.Tensor], batch_idx: int) -> torch.Tensor:
        fr, cr, ct, ft, mask = batch[:5]
        t_pred = t_feat = None
        if self.alpha or self.adapter is not None:  # alpha = beta = 0: no teacher
            t_pred, t_feat = self.teacher.predict(fr, cr, ct)
        feats = self.net.features(fr, cr, ct)
        pred = self.net.head_output(feats, fr, cr, ct)
        s_feat = self.adapter(feats) if self.adapter is not None else None
        loss, parts = self.criterion(pred, ft, mask, t_pred, s_feat, t_feat)
        self.record({"train_loss": float(loss.detach()), **parts})
        return loss

    def val_losses(self, pred: torch.Tensor, batch: Sequence[torch.Tensor]) -> dict[str, Any]:
        loss, _ = self.val_criterion(pred, batch[3], batch[4])
        return {"val_loss": loss}

    def val_extra(self, pred: torch.Tensor, batch: Sequence[torch.Tensor]) -> None:
        fr, cr, ct, ft, mask = batch[:5]
        t_pred = self.teacher(fr, cr, ct)
        self.add_rmse("val_rmse_teacher", t_pred, ft, mask, _stats(batch))
        self.add_rmse("val_rmse_vs_teacher", pred, t_pred, mask, _stats(batch))


class AutoencoderModule(L.LightningModule):
    """The feature-loss autoencoder on fine patches (the label ``F_t`` of pair patches)."""

    def __init__(self, ae: torch.nn.Module, lr: float) -> None:
        super().__init__()
        self.ae, self.lr = ae, float(lr)
        self.losses: list[float] = []

    def configure_optimizers(self) -> Any:
        return torch.optim.Adam(self.ae.parameters(), lr=self.lr, weight_decay=1e-6)

    def training_step(self, batch: Sequence[torch.Tensor], batch_idx: int) -> torch.Tensor:
        x = batch[3]
        loss = torch.nn.functional.mse_loss(self.ae(x), x)
        self.losses.append(float(loss.detach()))
        self.log("ae_loss", loss, prog_bar=True, on_step=True, on_epoch=False, batch_size=1)
        return loss


class _AEProgress(L.Callback):
    def __init__(self, progress: ProgressFn | None, steps: int) -> None:
        self.progress, self.steps = progress, steps

    def on_train_batch_end(self, trainer: L.Trainer, module: Any, *args: Any) -> None:
        if self.progress is not None and module.losses and trainer.is_global_zero:
            self.progress(
                {
                    "stage": "autoencoder",
                    "step": len(module.losses),
                    "steps": self.steps,
                    "loss": module.losses[-1],
                }
            )


def pretrain_autoencoder(
    ae: torch.nn.Module,
    data: torch.utils.data.DataLoader,
    steps: int,
    lr: float,
    settings: EngineSettings,
    root: Path,
    progress: ProgressFn | None,
) -> list[float]:
    """Train ``ae`` for ``steps`` batches of ``data`` (its own progress line), then freeze it."""
    module = AutoencoderModule(ae, lr)
    t0 = time.perf_counter()
    with quiet_lightning(), datasets.streaming():
        trainer = make_trainer(
            settings,
            root,
            max_steps=steps,
            callbacks=[_AEProgress(progress, steps)],
            validate=False,
        )
        with _interruptible(trainer, None, "training the feature-loss autoencoder"):
            trainer.fit(module, train_dataloaders=data)
    if progress is not None and trainer.is_global_zero:  # one line, not one per process
        progress(
            {
                "stage": "autoencoder_done",
                "steps": steps,
                "seconds": time.perf_counter() - t0,
                "loss": module.losses[-1] if module.losses else float("nan"),
            }
        )
    ae.cpu().eval()
    for p in ae.parameters():
        p.requires_grad_(False)
    return module.losses


# ----------------------------------------------------------------------------- the recorder


class RunRecorder(L.Callback):
    """After every validation: the epoch row, the best weights, the stfusion checkpoint (from
    ``payload(recorder, module)``) and the CSV loss log. Its state travels in Lightning's
    resume checkpoint."""

    def __init__(
        self,
        out: Path,
        monitor: str,
        payload: Callable[[RunRecorder, FusionModule], dict[str, Any]],
        progress: ProgressFn | None,
    ) -> None:
        self.out, self.monitor, self.payload, self.progress = out, monitor, payload, progress
        self.history: list[dict[str, float]] = []
        self.best_state: dict[str, torch.Tensor] = {}
        self.best_loss, self.best_epoch, self.bad, self.epoch = float("inf"), 0, 0, 0
        self.seconds_before = 0.0
        self.t_start = time.perf_counter()
        self.t_epoch = self.t_start
        #: Names the run in its checkpoint and its resume state, so --resume refuses a
        #: resume state swapped in from another run.
        self.run_id = uuid.uuid4().hex

    @property
    def seconds(self) -> float:
        return self.seconds_before + time.perf_counter() - self.t_start

    def on_train_epoch_start(self, trainer: L.Trainer, module: Any) -> None:
        self.t_epoch = time.perf_counter()

    def on_validation_end(self, trainer: L.Trainer, module: Any) -> None:
        if trainer.sanity_checking:
            return
        from stfusion.dl.train import write_log

        self.epoch = trainer.current_epoch + 1
        row: dict[str, float] = {"epoch": self.epoch}
        row.update(module.epoch_row())
        row.update(module.val_metrics)
        row.update(lr=module.lr, seconds=time.perf_counter() - self.t_epoch)
        self.history.append(row)
        value = row.get(self.monitor, float("nan"))
        if value < self.best_loss:
            self.best_loss, self.best_epoch, self.bad = value, self.epoch, 0
            self.best_state = cpu_state(module.net.state_dict())
        else:
            self.bad += 1
        if not self.best_state:
            self.best_state = cpu_state(module.net.state_dict())
        if trainer.is_global_zero:
            save_checkpoint(self.out, {**self.payload(self, module), "run_id": self.run_id})
            write_log(self.history, self.out, plot=False)
            if self.progress is not None:
                self.progress({"stage": "epoch", **row, "best_epoch": self.best_epoch})

    def state_dict(self) -> dict[str, Any]:
        return {
            "history": self.history,
            "best_state": self.best_state,
            "best_loss": self.best_loss,
            "best_epoch": self.best_epoch,
            "bad": self.bad,
            "epoch": self.epoch,
            "seconds": self.seconds,
            "run_id": self.run_id,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.history = [dict(r) for r in state["history"]]
        self.best_state = dict(state["best_state"])
        self.best_loss, self.best_epoch = float(state["best_loss"]), int(state["best_epoch"])
        self.bad, self.epoch = int(state["bad"]), int(state["epoch"])
        self.seconds_before = float(state["seconds"])
        self.t_start = time.perf_counter()
        self.run_id = str(state.get("run_id") or self.run_id)


def fit(
    module: FusionModule,
    train_data: torch.utils.data.DataLoader,
    val_data: torch.utils.data.DataLoader,
    out: Path,
    settings: EngineSettings,
    payload: Callable[[RunRecorder, FusionModule], dict[str, Any]],
    *,
    resume: bool = False,
    progress: ProgressFn | None = None,
) -> RunRecorder:
    """Train ``module`` with Lightning until ``settings.epochs`` or early stopping.

    ``resume``: continue from ``<stem>.lightning/resume.ckpt`` (weights, optimizers, epoch,
    early-stopping and recorder state); the stfusion checkpoint ``out`` and the loss log are
    rewritten after every epoch, the curve at the end.
    """
    from stfusion.dl.train import write_log

    root = lightning_dir(out)
    ckpt = resume_path(out)
    recorder = RunRecorder(out, module.monitor, payload, progress)
    stopper = _PatienceGiven(
        monitor=module.monitor,
        patience=settings.patience,
        mode="min",
        check_finite=False,
        verbose=False,
    )
    saver = ModelCheckpoint(
        dirpath=str(root),
        filename=Path(RESUME_FILE).stem,
        monitor=None,
        save_top_k=1,
        save_last=False,
        enable_version_counter=False,
        every_n_epochs=1,
    )
    if resume:
        stored = load_checkpoint(out).data.get("run_id")  # None: written before run ids
        check_resume_state(out, module, str(stored) if stored else None)
        recorder.run_id = str(stored or recorder.run_id)
    with claim_output(out, resume):
        logger = CSVLogger(str(root), name="csv")
        with quiet_lightning():
            trainer = make_trainer(
                settings,
                root,
                max_epochs=settings.epochs,
                callbacks=[recorder, stopper, saver],
                logger=logger,
                unused_parameters=not module.automatic_optimization,
            )
        try:
            with quiet_lightning(), datasets.streaming(), _interruptible(trainer, out, "training"):
                trainer.fit(
                    module,
                    train_dataloaders=train_data,
                    val_dataloaders=val_data,
                    ckpt_path=str(ckpt) if resume else None,
                )
        finally:
            if recorder.history and trainer.is_global_zero:
                write_log(recorder.history, out)  # the curve, once per run (also when interrupted)
            _remove_if_empty(logger.log_dir)  # a resumed run with nothing to train logs nothing
    return recorder


class _PatienceGiven(EarlyStopping):
    """Lightning's early stopping, whose resumed state brings back the first run's patience:
    the patience of this run wins (docs/commands/train.md: it may change on resume; a
    trial's --resume --patience 5 stopped after one epoch without improvement)."""

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        patience = self.patience
        super().load_state_dict(state_dict)
        self.patience = patience


def _remove_if_empty(folder: str) -> None:
    with contextlib.suppress(OSError):  # absent, or holds a log
        os.rmdir(folder)


@contextlib.contextmanager
def _interruptible(trainer: Any, out: Path | None, what: str) -> Iterator[None]:
    """Ctrl-C or SIGTERM during ``trainer.fit`` as :class:`RunInterrupted`, saying what was
    kept. Lightning turns Ctrl-C into ``sys.exit(1)`` (status 1, which means bad input here)
    and lets SIGTERM's exception through; errors (``Exception``) pass unchanged."""
    try:
        yield
    except Exception:
        raise
    except BaseException as exc:
        if not trainer.interrupted or isinstance(exc, RunInterrupted):
            raise
        how, code = interrupted_how(exc)
        if out is not None and resume_path(out).exists():
            kept = (
                f"{out} holds the last completed epoch, with the training state beside it: "
                "run the same command with --resume (in place of --overwrite, if given) to "
                "continue."
            )
        elif out is None:  # before the epochs (the autoencoder): --out not touched yet
            kept = (
                "no epoch was completed, so nothing was saved; a checkpoint already at --out "
                "(with --overwrite) and its training state are as they were."
            )
        else:
            kept = "no epoch was completed, so nothing was saved."
            if out is not None and not out.exists():
                shutil.rmtree(lightning_dir(out), ignore_errors=True)  # only a log begun
        raise RunInterrupted(f"{how} while {what}; {kept}", code) from None


def run_info(seconds: float, inputs: list[list[str]], meta: dict[str, Any]) -> dict[str, Any]:
    """The ``meta`` of a checkpoint: versions, time, inputs, plus the caller's ``meta``."""
    info = {
        "stfusion_version": stfusion.__version__,
        "torch_version": str(torch.__version__),
        "lightning_version": str(L.__version__),
        "numpy_version": np.__version__,
        "python": platform.python_version(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "seconds": seconds,
        "inputs": inputs,
    }
    info.update(meta)
    return info
