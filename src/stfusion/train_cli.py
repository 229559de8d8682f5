"""``stfusion train``: train a deep fusion network (DCSTFN, EDCSTFN, GAN-STFM, ...) on your own
pairs (register with ``cli.add_command(train)``). torch is imported only when the command runs."""

from __future__ import annotations

import shlex
import sys
import time
from collections.abc import Sequence
from typing import Any

import click

from stfusion.cli_options import OFFSET, SCALE

#: Networks ``--model`` accepts (a network registered in stfusion.dl.networks; GANs train
#: with the adversarial loop).
MODEL_CHOICES = ["dcstfn", "edcstfn", "ganstfm", "vitgan", "stfdcnn", "student"]


#: Engine options left out of the stored command line at their defaults.
_DEFAULTS: dict[str, Any] = {"precision": "32", "strategy": "auto", "workers": 0, "max_gap": 0.0,
                             "val_patches": 64, "init": "shipped"}  # fmt: skip


def _command_line(**kw: Any) -> str:
    """The canonical command that reproduces a run (stored in the checkpoint)."""
    args = ["stfusion", "train", "--model", kw["model"]]
    for f, c in kw["pairs"]:
        args += ["--pair", f, c]
    args += ["--out", kw["out"]]
    for opt in ("size", "epochs", "patch", "batch", "lr", "patience", "val_fraction",
                "steps_per_epoch", "seed", "device", "threads", "content", "ae_steps",
                "vision_weight", "feature_weight", "discriminator", "gan_loss", "adv_weight",
                "fm_weight", "sam_weight", "d_lr", "label_smoothing", "clip", "time_mix",
                "fine_scale", "fine_offset", "coarse_scale", "coarse_offset", "resampling",
                "dates", "precision", "strategy", "workers", "max_gap", "val_dates",
                "val_patches", "catalog", "init"):  # fmt: skip
        value = kw.get(opt)
        if value is not None and value != "" and _DEFAULTS.get(opt, object()) != value:
            args += [f"--{opt.replace('_', '-')}", str(value)]
    if not kw.get("augment", True):
        args.append("--no-augment")
    return " ".join(shlex.quote(a) for a in args)


class _TrainProgress:
    """One line per epoch (and one for the feature-loss autoencoder) on stderr; the step bar
    with ETA is Lightning's (shown when stderr is a terminal)."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet

    def __call__(self, ev: dict[str, Any]) -> None:
        if self.quiet:
            return
        stage = ev["stage"]
        if stage == "autoencoder_done":
            click.echo(
                f"autoencoder (feature loss): {ev['steps']} steps, loss {ev['loss']:.4g} "
                f"({ev['seconds']:.1f} s)",
                err=True,
            )
        elif stage == "epoch":
            gan = f"  D {ev['d_loss']:.3g}  G adv {ev['g_adv']:.3g}" if "d_loss" in ev else ""
            click.echo(
                f"epoch {int(ev['epoch']):>3}  train {ev['train_loss']:.4g}  "
                f"val {ev['val_loss']:.4g}  val RMSE {ev['val_rmse']:.4g} "
                f"(additive {ev['val_rmse_additive']:.4g}){gan}  "
                f"({ev['seconds']:.1f} s, best epoch {ev['best_epoch']})",
                err=True,
            )

    def close(self) -> None:
        pass


def engine_options(f: Any) -> Any:
    """The engine and data options shared by ``stfusion train`` and ``stfusion distill``."""
    options = [
        click.option(
            "--devices",
            default=None,
            metavar="DEV",
            help="Where to train: auto (a GPU when there is one), cpu, cuda, cuda:1, "
            "cuda:0,1, or a device count [default: --device, auto].",
        ),
        click.option(
            "--precision",
            type=click.Choice(["32", "16-mixed", "bf16-mixed"]),
            default="32",
            show_default=True,
            help="Floating-point precision of training (mixed precision on GPUs).",
        ),
        click.option(
            "--strategy",
            default="auto",
            show_default=True,
            help="Lightning strategy, e.g. ddp for data parallel over --devices (and nodes).",
        ),
        click.option(
            "--workers",
            type=click.IntRange(0),
            default=0,
            show_default=True,
            help="DataLoader worker processes reading patches; 0 = read in the main process.",
        ),
        click.option(
            "--max-gap",
            type=click.FloatRange(0.0),
            default=0.0,
            show_default=True,
            help="Pair only dates at most this many days apart; 0 = any two dates of a site.",
        ),
        click.option(
            "--val-dates",
            default=None,
            metavar="D1,D2",
            help="Hold out these dates (YYYY-MM-DD) for validation: they are targets of "
            "validation examples only, never in training. Combinable with --val-fraction.",
        ),
        click.option(
            "--val-patches",
            type=click.IntRange(1),
            default=64,
            show_default=True,
            help="Size of the fixed validation sample (patches of --patch px).",
        ),
        click.option(
            "--catalog",
            type=click.Path(dir_okay=False),
            default=None,
            help="CSV with columns site,date,fine,coarse[,mask] (paths relative to the CSV; "
            "a mask raster, nonzero = invalid, masks the fine image). Dates are paired only "
            "within a site. Beside or instead of --pair.",
        ),
    ]
    for opt in reversed(options):
        f = opt(f)
    return f


def split_dates(text: str | None) -> list[str]:
    return [d.strip() for d in text.split(",") if d.strip()] if text else []


@click.command("train")
@click.option(
    "--model",
    "-m",
    type=click.Choice(MODEL_CHOICES),
    default="edcstfn",
    show_default=True,
    help="Network to train.",
)
@click.option(
    "--pair",
    "pairs",
    nargs=2,
    multiple=True,
    type=click.Path(),
    metavar="FINE COARSE",
    help="A fine image and the coarse image of the same date; two or more dates (or give "
    "--catalog). Every ordered pair of dates becomes a training example.",
)
@click.option(
    "--out",
    "-o",
    required=True,
    type=click.Path(),
    help="Checkpoint to write (a loss log .log.csv and curve .loss.png are written beside it).",
)
@click.option(
    "--size",
    type=click.Choice(["tiny", "small", "paper", "nano", "micro", "mini"]),
    default="small",
    show_default=True,
    help="Network width: paper = the published 32/64/128 "
    "feature maps; small and tiny are 2x and 4x narrower. The student (trained directly with "
    "--model student) has nano, micro, mini; small means micro for it.",
)
@click.option("--epochs", type=int, default=50, show_default=True, help="Maximum epochs.")
@click.option("--patch", type=int, default=64, show_default=True, help="Patch side (fine px).")
@click.option("--batch", type=int, default=8, show_default=True, help="Patches per step.")
@click.option("--lr", type=float, default=1e-3, show_default=True, help="Adam learning rate.")
@click.option(
    "--patience",
    type=int,
    default=10,
    show_default=True,
    help="Stop after this many epochs without a better validation loss.",
)
@click.option(
    "--val-fraction",
    type=float,
    default=0.2,
    show_default=True,
    help="Area of the held-out validation block (bottom-right corner).",
)
@click.option(
    "--steps-per-epoch",
    type=int,
    default=0,
    show_default=True,
    help="Batches per epoch; 0 = about one pass over the training area (>= 10).",
)
@click.option(
    "--device",
    default="auto",
    show_default=True,
    help="auto: cuda if available, else cpu; also cuda:1 (the same as --devices).",
)
@click.option(
    "--threads",
    type=int,
    default=0,
    show_default=True,
    help="torch CPU threads (0 = torch's default). 1 is often fastest on a busy "
    "machine; results are reproducible for a given thread count.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@click.option(
    "--content",
    type=click.Choice(["mse", "l1"]),
    default=None,
    help="Content loss. Default: l1 for GANs, else mse (EDCSTFN's compound loss and the "
    "GANs add feature and MS-SSIM terms).",
)
@click.option(
    "--ae-steps",
    type=int,
    default=300,
    show_default=True,
    help="EDCSTFN, GANs: training steps of the feature-loss autoencoder.",
)
@click.option(
    "--vision-weight",
    type=float,
    default=None,
    help="EDCSTFN, GANs: weight of the 1 - MS-SSIM loss [default: 0.8].",
)
@click.option(
    "--feature-weight",
    type=float,
    default=None,
    help="EDCSTFN, GANs: weight of the autoencoder feature loss; 0 = no autoencoder [default: 1].",
)
@click.option(
    "--discriminator",
    default=None,
    help="GANs: discriminator name (patchgan, ...) [default: the model's own; ganstfm: patchgan].",
)
@click.option(
    "--gan-loss",
    type=click.Choice(["lsgan", "hinge"]),
    default=None,
    help="GANs: adversarial loss, least squares or hinge [default: lsgan].",
)
@click.option(
    "--adv-weight",
    type=float,
    default=None,
    help="GANs: weight of the adversarial loss [default: 0.001, GAN-STFM's].",
)
@click.option(
    "--fm-weight",
    type=float,
    default=None,
    help="GANs: weight of discriminator feature matching [default: 0].",
)
@click.option(
    "--sam-weight",
    type=float,
    default=None,
    help="GANs: weight of the spectral-angle loss (1 - cos) [default: 1].",
)
@click.option(
    "--d-lr",
    type=float,
    default=None,
    help="GANs: discriminator learning rate [default: the same as --lr].",
)
@click.option(
    "--label-smoothing",
    type=float,
    default=None,
    help="GANs: one-sided label smoothing, the real target becomes 1 - this [default: 0].",
)
@click.option(
    "--clip",
    type=float,
    default=None,
    help="GANs: clip each network's gradient norm to this; 0 = no clipping [default: 0].",
)
@click.option(
    "--time-mix",
    type=click.FloatRange(0.0, 1.0),
    default=None,
    help="Share of training patches whose target is moved to a random point between the "
    "two dates (coarse and fine alike: changes of every size up to the observed one; "
    "docs/deep.md) [default: 0].",
)
@click.option(
    "--no-augment",
    "augment",
    is_flag=True,
    default=True,
    flag_value=False,
    help="No random rotations/flips of the patches.",
)
@click.option(
    "--dates",
    default=None,
    metavar="D1,D2,...",
    help="Dates of the pairs (YYYY-MM-DD, comma-separated, in --pair order). "
    "Default: parsed from the file names (YYYY-MM-DD, YYYYMMDD or YYYYDDD).",
)
@click.option(
    "--fine-scale",
    type=SCALE,
    default=None,
    help="Multiply fine values by this (e.g. 0.0001). Default: file metadata, else 1.",
)
@click.option("--fine-offset", type=OFFSET, default=None, help="Add this to fine values.")
@click.option(
    "--coarse-scale",
    type=SCALE,
    default=None,
    help="Multiply coarse values by this. Default: file metadata, else 1.",
)
@click.option("--coarse-offset", type=OFFSET, default=None, help="Add this to coarse values.")
@click.option(
    "--resampling",
    type=click.Choice(["nearest", "bilinear", "cubic", "average"]),
    default="nearest",
    show_default=True,
    help="How a coarse image on its own grid is reprojected onto the fine grid.",
)
@click.option(
    "--init",
    default="shipped",
    show_default=True,
    metavar="shipped|none|CKPT",
    help="Initial weights: shipped = fine-tune the model's shipped weights (same --size; "
    "other sizes start fresh with a warning), none = fresh (the correction to the physical "
    "baseline starts at zero), or a checkpoint of the same model and size.",
)
@engine_options
@click.option("--note", default="", help="Free text stored in the checkpoint's metadata.")
@click.option("--resume", is_flag=True, help="Continue the run saved in --out.")
@click.option("--overwrite", is_flag=True, help="Replace an existing --out.")
@click.option("--quiet", "-q", is_flag=True, help="No progress display or summary.")
def train(
    model: str, pairs: Sequence[tuple[str, str]], out: str, size: str, epochs: int, patch: int,
    batch: int, lr: float, patience: int, val_fraction: float, steps_per_epoch: int,
    device: str, threads: int, seed: int, content: str | None, ae_steps: int,
    vision_weight: float | None, feature_weight: float | None, discriminator: str | None,
    gan_loss: str | None, adv_weight: float | None, fm_weight: float | None,
    sam_weight: float | None, d_lr: float | None, label_smoothing: float | None,
    clip: float | None, time_mix: float | None, augment: bool, dates: str | None,
    fine_scale: float | None, fine_offset: float | None, coarse_scale: float | None,
    coarse_offset: float | None, resampling: str, devices: str | None, precision: str,
    strategy: str, workers: int, max_gap: float, val_dates: str | None, val_patches: int,
    catalog: str | None, note: str, resume: bool, overwrite: bool, quiet: bool,
    init: str = "shipped",
) -> None:  # fmt: skip
    """Train a deep fusion network (DCSTFN, EDCSTFN, GAN-STFM, ViTGAN, STFDCNN) on your own pairs.

    GANs (ganstfm, vitgan) train with the adversarial loop: generator and discriminator losses are
    logged per epoch; the best epoch and early stopping follow the validation RMSE. STFDCNN
    needs two or more dates and trains its mapping and super-resolution CNNs in turn.

    \b
    Example:
      stfusion train --model edcstfn --pair L_2001-10-08.tif M_2001-10-08.tif \\
          --pair L_2001-10-17.tif M_2001-10-17.tif --out model.ckpt
      stfusion predict --method edcstfn --param weights=model.ckpt ...
    """
    from stfusion.dl.train import TrainConfig
    from stfusion.dl.train import train as run_training

    if model == "stfdcnn":  # its own two-network loop (mapping + super-resolution)
        from stfusion.dl.train_stfdcnn import train_stfdcnn as run_training
    from stfusion.io import Scaling

    optional = {
        "content": content, "alpha": vision_weight, "beta": feature_weight,
        "discriminator": discriminator, "gan_loss": gan_loss, "adv_weight": adv_weight,
        "fm_weight": fm_weight, "sam_weight": sam_weight, "d_lr": d_lr,
        "label_smoothing": label_smoothing, "clip": clip, "time_mix": time_mix,
    }  # fmt: skip
    if not pairs and not catalog:
        raise click.UsageError("give the training pairs: --pair FINE COARSE (2+) or --catalog.")
    device = devices or device
    if model == "student" and size in ("tiny", "small", "paper"):
        size = {"tiny": "nano", "small": "micro", "paper": "mini"}[size]
    cfg = TrainConfig(
        model=model, size=size, epochs=epochs, patch=patch, batch=batch, lr=lr,
        steps_per_epoch=steps_per_epoch, val_fraction=val_fraction, patience=patience,
        seed=seed, device=device, augment=augment, ae_steps=ae_steps, threads=threads,
        precision=precision, strategy=strategy, workers=workers, max_gap=max_gap,
        val_dates=split_dates(val_dates), val_patches=val_patches, init=init,
        **{k: v for k, v in optional.items() if v is not None},
    )  # fmt: skip
    date_list = [d.strip() for d in dates.split(",") if d.strip()] if dates else None
    command = _command_line(
        model=model, pairs=pairs, out=out, size=size, epochs=epochs, patch=patch, batch=batch,
        lr=lr, patience=patience, val_fraction=val_fraction, steps_per_epoch=steps_per_epoch,
        seed=seed, device=device, threads=threads, content=content, ae_steps=ae_steps,
        vision_weight=vision_weight, feature_weight=feature_weight, discriminator=discriminator,
        gan_loss=gan_loss, adv_weight=adv_weight, fm_weight=fm_weight, sam_weight=sam_weight,
        d_lr=d_lr, label_smoothing=label_smoothing, clip=clip, time_mix=time_mix,
        fine_scale=fine_scale,
        fine_offset=fine_offset, coarse_scale=coarse_scale, coarse_offset=coarse_offset,
        resampling=resampling, dates=dates, augment=augment, precision=precision,
        strategy=strategy, workers=workers, max_gap=max_gap, val_dates=val_dates,
        val_patches=val_patches, catalog=catalog, init=init,
    )  # fmt: skip
    meta: dict[str, Any] = {"command": command, "argv": " ".join(sys.argv[1:])}
    if note:
        meta["notes"] = note
    progress = _TrainProgress(quiet)
    t0 = time.monotonic()
    try:
        result = run_training(
            [tuple(p) for p in pairs], out, cfg, dates=date_list,
            fine_scaling=Scaling(fine_scale, fine_offset),
            coarse_scaling=Scaling(coarse_scale, coarse_offset), resampling=resampling,
            resume=resume, overwrite=overwrite, progress=progress, progress_bar=not quiet,
            meta=meta, catalog=catalog,
        )  # fmt: skip
    finally:
        progress.close()
    if quiet:
        return
    from stfusion.dl.train import log_paths

    csv_path, png_path = log_paths(out)
    best = next((r for r in result.history if r["epoch"] == result.best_epoch), None)
    rmse = f", validation RMSE {best['val_rmse']:.4g}" if best else ""
    stop = " (early stop)" if result.stopped_early else ""
    click.echo(
        f"wrote {out} ({model} {size}, {result.epochs} epoch(s){stop}, best epoch "
        f"{result.best_epoch}{rmse}; {time.monotonic() - t0:.0f} s)\n"
        f"loss log {csv_path}, curve {png_path}"
    )
