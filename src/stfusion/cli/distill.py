"""``stfusion distill``: distil a trained deep model into a small, fast student (register with
``cli.add_command(distill)``). torch is imported only when the command runs."""

from __future__ import annotations

import shlex
import sys
import time
from collections.abc import Sequence
from typing import Any

import click

from stfusion.cli.options import OFFSET, SCALE
from stfusion.cli.train import _DEFAULTS, engine_options, split_dates

#: Student sizes (kept here so ``--help`` needs no torch; checked against the network module).
STUDENT_SIZES = ("nano", "micro", "mini")


def _command_line(**kw: Any) -> str:
    """The canonical command that reproduces a run (stored in the checkpoint)."""
    args = ["stfusion", "distill", "--teacher", kw["teacher"], "--student", kw["student"]]
    for f, c in kw["pairs"]:
        args += ["--pair", f, c]
    args += ["--out", kw["out"]]
    for opt in ("epochs", "patch", "batch", "lr", "alpha", "beta", "feature_layer", "patience",
                "val_fraction", "steps_per_epoch", "seed", "device", "threads", "fine_scale",
                "fine_offset", "coarse_scale", "coarse_offset", "resampling",
                "dates", "precision", "strategy", "workers", "max_gap", "val_dates",
                "val_patches", "catalog"):  # fmt: skip
        value = kw.get(opt)
        if value is not None and value != "" and _DEFAULTS.get(opt, object()) != value:
            args += [f"--{opt.replace('_', '-')}", str(value)]
    if not kw.get("augment", True):
        args.append("--no-augment")
    return " ".join(shlex.quote(a) for a in args)


@click.command("distill")
@click.option(
    "--teacher",
    "-t",
    required=True,
    type=click.Path(),
    help="Checkpoint of the trained teacher (stfusion train: edcstfn, ganstfm, vitgan, ...).",
)
@click.option(
    "--student",
    "-s",
    type=click.Choice(STUDENT_SIZES),
    default="micro",
    show_default=True,
    help="Student size (3x3 conv widths): nano 8/8, micro 16/16, mini 24/24/24. It must have "
    "at most a tenth of the teacher's parameters.",
)
@click.option(
    "--pair",
    "pairs",
    nargs=2,
    multiple=True,
    type=click.Path(),
    metavar="FINE COARSE",
    help="A fine image and the coarse image of the same date; two or more dates "
    "(as for stfusion train), or give --catalog.",
)
@click.option("--out", "-o", required=True, type=click.Path(), help="Student checkpoint to write.")
@click.option("--epochs", type=int, default=60, show_default=True, help="Maximum epochs.")
@click.option("--patch", type=int, default=64, show_default=True, help="Patch side (fine px).")
@click.option("--batch", type=int, default=8, show_default=True, help="Patches per step.")
@click.option("--lr", type=float, default=1e-3, show_default=True, help="Adam learning rate.")
@click.option(
    "--alpha",
    type=float,
    default=1.0,
    show_default=True,
    help="Weight of the teacher-output loss (MSE between student and teacher predictions).",
)
@click.option(
    "--beta",
    type=float,
    default=0.1,
    show_default=True,
    help="Weight of the feature loss (adapted student features vs the teacher's, relative "
    "MSE). 0: no feature distillation.",
)
@click.option(
    "--feature-layer",
    default="auto",
    show_default=True,
    help="Teacher module whose output is the feature target (a name of "
    "net.named_modules(), e.g. decoder.1); auto = the teacher's penultimate feature map.",
)
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
    default=0.0,
    show_default=True,
    help="Area of the held-out validation block; 0 = the teacher's (so the block is one the "
    "teacher did not train on).",
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
    help="Where to train: auto, cpu, cuda, cuda:1 (the closing speed comparison always runs "
    "on the CPU).",
)
@click.option(
    "--threads",
    type=int,
    default=0,
    show_default=True,
    help="torch CPU threads (0 = torch's default), also for the speed comparison.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
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
    "Default: parsed from the file names.",
)
@click.option("--fine-scale", type=SCALE, default=None, help="Multiply fine values by this.")
@click.option("--fine-offset", type=OFFSET, default=None, help="Add this to fine values.")
@click.option("--coarse-scale", type=SCALE, default=None, help="Multiply coarse values by this.")
@click.option("--coarse-offset", type=OFFSET, default=None, help="Add this to coarse values.")
@click.option(
    "--resampling",
    type=click.Choice(["nearest", "bilinear", "cubic", "average"]),
    default="nearest",
    show_default=True,
    help="How a coarse image on its own grid is reprojected onto the fine grid.",
)
@engine_options
@click.option("--note", default="", help="Free text stored in the checkpoint's metadata.")
@click.option("--overwrite", is_flag=True, help="Replace an existing --out.")
@click.option("--quiet", "-q", is_flag=True, help="No progress display or summary.")
def distill(
    teacher: str, student: str, pairs: Sequence[tuple[str, str]], out: str, epochs: int,
    patch: int, batch: int, lr: float, alpha: float, beta: float, feature_layer: str,
    patience: int, val_fraction: float, steps_per_epoch: int, device: str, threads: int,
    seed: int, augment: bool, dates: str | None, fine_scale: float | None,
    fine_offset: float | None, coarse_scale: float | None, coarse_offset: float | None,
    resampling: str, devices: str | None, precision: str, strategy: str, workers: int,
    max_gap: float, val_dates: str | None, val_patches: int, catalog: str | None, note: str,
    overwrite: bool, quiet: bool,
) -> None:  # fmt: skip
    """Distil a trained deep model (the teacher) into a small, fast student CNN.

    The student learns from the teacher's predictions (--alpha), its intermediate features
    (--beta) and the true fine images, on the same pairs, patches and validation block as
    stfusion train. At the end the teacher's and the student's validation RMSE and CPU speed
    are compared. Predict with --method student --param weights=OUT.

    \b
    Example:
      stfusion train --model edcstfn --size paper --pair L1.tif M1.tif --pair L2.tif M2.tif \\
          --out teacher.ckpt
      stfusion distill --teacher teacher.ckpt --student micro \\
          --pair L1.tif M1.tif --pair L2.tif M2.tif --out student.ckpt
    """
    from stfusion.cli.train import _TrainProgress
    from stfusion.dl.distill import DistillConfig
    from stfusion.dl.distill import distill as run_distill
    from stfusion.dl.train import log_paths
    from stfusion.io import Scaling

    if not pairs and not catalog:
        raise click.UsageError("give the pairs: --pair FINE COARSE (2+) or --catalog.")
    device = devices or device
    cfg = DistillConfig(
        student=student, epochs=epochs, patch=patch, batch=batch, lr=lr,
        steps_per_epoch=steps_per_epoch, val_fraction=val_fraction, patience=patience,
        seed=seed, device=device, augment=augment, alpha=alpha, beta=beta,
        feature_layer=feature_layer, threads=threads, precision=precision, strategy=strategy,
        workers=workers, max_gap=max_gap, val_dates=split_dates(val_dates),
        val_patches=val_patches,
    )  # fmt: skip
    date_list = [d.strip() for d in dates.split(",") if d.strip()] if dates else None
    command = _command_line(
        teacher=teacher, student=student, pairs=pairs, out=out, epochs=epochs, patch=patch,
        batch=batch, lr=lr, alpha=alpha, beta=beta, feature_layer=feature_layer,
        patience=patience, val_fraction=val_fraction or None, steps_per_epoch=steps_per_epoch,
        seed=seed, device=device, threads=threads, fine_scale=fine_scale,
        fine_offset=fine_offset, coarse_scale=coarse_scale, coarse_offset=coarse_offset,
        resampling=resampling, dates=dates, augment=augment, precision=precision,
        strategy=strategy, workers=workers, max_gap=max_gap, val_dates=val_dates,
        val_patches=val_patches, catalog=catalog,
    )  # fmt: skip
    meta: dict[str, Any] = {"command": command, "argv": " ".join(sys.argv[1:])}
    if note:
        meta["notes"] = note
    progress = _TrainProgress(quiet)
    t0 = time.monotonic()
    try:
        r = run_distill(
            [tuple(p) for p in pairs], teacher, out, cfg, dates=date_list,
            fine_scaling=Scaling(fine_scale, fine_offset),
            coarse_scaling=Scaling(coarse_scale, coarse_offset), resampling=resampling,
            overwrite=overwrite, progress=progress, progress_bar=not quiet, meta=meta,
            catalog=catalog,
        )  # fmt: skip
    finally:
        progress.close()
    if quiet:
        return
    csv_path, png_path = log_paths(out)
    stop = " (early stop)" if r.stopped_early else ""
    rel = (r.student_val_rmse / r.teacher_val_rmse - 1.0) * 100.0
    click.echo(
        f"wrote {out} (student {student}, {r.student_parameters:,} parameters = 1/"
        f"{r.teacher_parameters / r.student_parameters:.0f} of the teacher's "
        f"{r.teacher_parameters:,}; {r.epochs} epoch(s){stop}, best epoch {r.best_epoch}; "
        f"{time.monotonic() - t0:.0f} s)\n"
        f"validation RMSE (held-out block): teacher {r.teacher_val_rmse:.4g}, student "
        f"{r.student_val_rmse:.4g} ({rel:+.1f} %), additive {r.additive_val_rmse:.4g}\n"
        f"CPU forward time per megapixel ({r.threads} thread(s), same tiles): teacher "
        f"{r.teacher_s_per_mp:.3g} s, student {r.student_s_per_mp:.3g} s "
        f"({r.speedup:.1f}x faster)\n"
        f"feature layer {r.feature_layer or '(none: --beta 0)'}; loss log {csv_path}, curve "
        f"{png_path}"
    )
