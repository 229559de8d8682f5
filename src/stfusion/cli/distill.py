"""``stfusion distill``: distil a trained deep model into a small, fast student. Defaults are
:class:`stfusion.run_config.DistillSettings`'; torch is imported only when the command runs."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import click

from stfusion.cli import options as opt
from stfusion.cli.train import (
    as_config,
    check_run_flags,
    checkpoint_stamp,
    nothing_trained,
    usage_errors,
)
from stfusion.run_config import STUDENT_SIZES, DistillSettings


@click.command("distill")
@click.option(
    "--teacher",
    "-t",
    required=True,
    type=opt.PATH,
    help="Checkpoint of the trained teacher (stfusion train: edcstfn, ganstfm, vitgan, ...), "
    "or shipped (the shipped EDCSTFN), shipped:MODEL (another shipped model). A band-agnostic "
    "teacher, the default, gives a band-agnostic student; a band-tied one (--band-tied) a "
    "student of its bands.",
)
@click.option(
    "--student",
    "-s",
    type=click.Choice(list(STUDENT_SIZES)),
    default=DistillSettings.student,
    show_default=True,
    help="Student size (3x3 conv widths): "
    + ", ".join(f"{k} {'/'.join(map(str, v))}" for k, v in STUDENT_SIZES.items())
    + ". It must have at most a tenth of the teacher's parameters.",
)
@opt.pairs_option(
    "A fine image and the coarse image of the same date; two or more dates "
    "(as for stfusion train), or give --catalog."
)
@opt.out_option("Student checkpoint to write.")
@opt.run_size_options(DistillSettings)
@opt.setting(
    DistillSettings,
    "alpha",
    float,
    "Weight of the teacher-output loss (MSE between student and teacher predictions).",
)
@opt.setting(
    DistillSettings,
    "beta",
    float,
    "Weight of the feature loss (adapted student features vs the teacher's, relative "
    "MSE). 0: no feature distillation.",
)
@opt.setting(
    DistillSettings,
    "feature_layer",
    None,
    "Teacher module whose output is the feature target (a name of "
    "net.named_modules(), e.g. decoder.1); auto = the teacher's penultimate feature "
    "map.",
)
@opt.run_control_options(
    DistillSettings,
    val_fraction_help="Area of the held-out validation block; 0 = the teacher's (so the block "
    "is one the teacher did not train on).",
    device_help="Where to train: auto, cpu, cuda, cuda:1 (the closing speed comparison always "
    "runs on the CPU).",
    threads_help="torch CPU threads (0 = torch's default), also for the speed comparison.",
)
@opt.run_data_options(DistillSettings)
@opt.resume_option()
@opt.overwrite_option()
@opt.quiet_option()
@click.pass_context
def distill(
    ctx: click.Context,
    teacher: str,
    student: str,
    pairs: Sequence[tuple[str, str]],
    out: str,
    epochs: int,
    patch: int,
    batch: int,
    lr: float,
    alpha: float,
    beta: float,
    feature_layer: str,
    patience: int,
    val_fraction: float,
    steps_per_epoch: int,
    device: str,
    threads: int,
    seed: int,
    augment: bool,
    devices: str | None,
    precision: str,
    strategy: str,
    workers: int,
    max_gap: float,
    max_invalid: float,
    val_dates: str | None,
    val_patches: int,
    catalog: str | None,
    resume: bool,
    quiet: bool,
    **inputs: Any,  # --dates, the scales, --resampling, --note, --overwrite: opt.run_job
) -> None:
    """Distil a trained deep model (the teacher) into a small, fast student CNN.

    The student learns from the teacher's predictions (--alpha), its intermediate features
    (--beta) and the true fine images, on the same pairs, patches and validation block as
    stfusion train. At the end the teacher's and the student's validation RMSE and CPU speed
    are compared. Predict with --method student --param weights=OUT.

    \b
    Example:
      stfusion train --model edcstfn --size paper --pair L1.tif M1.tif \\
          --pair L2.tif M2.tif --out teacher.ckpt
      stfusion distill --teacher teacher.ckpt --student micro \\
          --pair L1.tif M1.tif --pair L2.tif M2.tif --out student.ckpt
      # the shipped EDCSTFN as the teacher, distilled on your own pairs
      stfusion distill --teacher shipped --pair L1.tif M1.tif --pair L2.tif M2.tif \\
          --out student.ckpt
    """
    if not pairs and not catalog:
        raise click.UsageError("give the pairs: --pair FINE COARSE (2+) or --catalog.")
    check_run_flags(ctx)
    loop: dict[str, Any] = dict(
        epochs=epochs,
        patch=patch,
        batch=batch,
        lr=lr,
        steps_per_epoch=steps_per_epoch,
        val_fraction=val_fraction,
        patience=patience,
        seed=seed,
        device=devices or device,
        augment=augment,
        threads=threads,
        precision=precision,
        strategy=strategy,
        workers=workers,
        max_gap=max_gap,
        max_invalid=max_invalid,
        val_dates=opt.iso_dates(val_dates, "--val-dates"),
        val_patches=val_patches,
    )
    settings = DistillSettings(
        student=student, alpha=alpha, beta=beta, feature_layer=feature_layer, **loop
    )
    with usage_errors():  # a bad value is said before torch is imported (5 s)
        settings.check_values()
    from stfusion.dl.distill import DistillConfig
    from stfusion.dl.distill import distill as run_distill
    from stfusion.dl.train import log_paths

    cfg = as_config(DistillConfig, settings)
    t0 = time.monotonic()
    before = checkpoint_stamp(out) if resume else None
    with usage_errors():
        cfg.validate()
        r = opt.run_job(
            ctx, student, quiet, run_distill, list(pairs), teacher, out, cfg, resume=resume
        )
    if quiet or not opt.main_process() or nothing_trained(out, before, r.epochs):
        return
    csv_path, png_path = log_paths(out)
    stop = " (early stop)" if r.stopped_early else ""
    rel = (r.student_val_rmse / r.teacher_val_rmse - 1.0) * 100.0
    click.echo(
        f"wrote {out} (student {r.student_size}, {r.student_parameters:,} parameters = 1/"
        f"{r.teacher_parameters / r.student_parameters:.0f} of the teacher's "
        f"{r.teacher_parameters:,}; {r.epochs} epoch(s){stop}, best epoch {r.best_epoch}; "
        f"{time.monotonic() - t0:.0f} s)\n"
        f"validation RMSE (held-out data): teacher {r.teacher_val_rmse:.4g}, student "
        f"{r.student_val_rmse:.4g} ({rel:+.1f} %), additive {r.additive_val_rmse:.4g}\n"
        f"CPU forward time per megapixel ({r.threads} thread(s), same tiles): teacher "
        f"{r.teacher_s_per_mp:.3g} s, student {r.student_s_per_mp:.3g} s "
        f"({r.speedup:.1f}x faster)\n"
        f"feature layer {r.feature_layer or '(none: --beta 0)'}; loss log {csv_path}, curve "
        f"{png_path}"
    )
