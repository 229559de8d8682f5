"""``stfusion train``: train a deep fusion network (DCSTFN, EDCSTFN, GAN-STFM, ...) on your own
pairs. Defaults are :class:`stfusion.run_config.TrainSettings`'; torch is imported only when the
command runs."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import fields
from typing import Any, TypeVar

import click

from stfusion.cli import options as opt
from stfusion.errors import warn
from stfusion.run_config import STUDENT_SIZE_FOR, TrainSettings, check_run_values

C = TypeVar("C")

#: Student sizes for the --size names of the other networks (``--model student``).


def model_choices() -> list[str]:
    """The networks ``--model`` accepts: the deep methods of the registry (their modules are
    ``stfusion.methods.deep*``; listed without importing them, so without torch). The student
    trains directly here (``stfusion distill`` trains it from a teacher)."""
    from stfusion.methods import available

    return [name for name, spec in available().items() if spec.startswith("stfusion.methods.deep")]


def _weight(flag: str, setting: str, help: str, note: str = "") -> Any:
    """An optional float (None: the setting's default, which the help shows)."""
    return click.option(
        flag, type=float, default=None, help=f"{help} {opt.shown(TrainSettings, setting, note)}."
    )


@click.command("train")
@click.option(
    "--model",
    "-m",
    type=click.Choice(model_choices()),
    default=TrainSettings.model,
    show_default=True,
    help="Network to train.",
)
@opt.pairs_option(
    "A fine image and the coarse image of the same date; two or more dates (or give "
    "--catalog). Every ordered pair of dates becomes a training example."
)
@opt.out_option(
    "Checkpoint to write (a loss log .log.csv and curve .loss.png are written beside it)."
)
@click.option(
    "--size",
    type=click.Choice(["tiny", "small", "paper", "nano", "micro", "mini"]),
    default=None,
    help="Network width: paper = the published 32/64/128 "
    "feature maps; small and tiny are 2x and 4x narrower. The student (--model "
    "student) has nano, micro, mini; tiny, small, paper mean those for it. [default: "
    f"with --init shipped the shipped weights' size (vitgan: tiny), else {TrainSettings.size}]",
)
@opt.run_size_options(TrainSettings)
@opt.run_control_options(
    TrainSettings,
    val_fraction_help="Area of the held-out validation block (bottom-right corner).",
    device_help="auto: cuda if available, else cpu; also cuda:1 (the same as --devices).",
    threads_help="torch CPU threads (0 = torch's default). 1 is often fastest on a busy "
    "machine; results are reproducible for a given thread count.",
)
@click.option(
    "--content",
    type=click.Choice(["mse", "l1"]),
    default=None,
    help="Content loss. Default: l1 for GANs, else mse (EDCSTFN's compound loss and "
    "the GANs add feature and MS-SSIM terms).",
)
@opt.setting(
    TrainSettings, "ae_steps", int, "EDCSTFN, GANs: training steps of the feature-loss autoencoder."
)
@_weight("--vision-weight", "alpha", "EDCSTFN, GANs: weight of the 1 - MS-SSIM loss")
@_weight(
    "--feature-weight",
    "beta",
    "EDCSTFN, GANs: weight of the autoencoder feature loss; 0 = no autoencoder",
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
    help=f"GANs: adversarial loss, least squares or hinge {opt.shown(TrainSettings, 'gan_loss')}.",
)
@_weight("--adv-weight", "adv_weight", "GANs: weight of the adversarial loss", ", GAN-STFM's")
@_weight("--fm-weight", "fm_weight", "GANs: weight of discriminator feature matching")
@_weight("--sam-weight", "sam_weight", "GANs: weight of the spectral-angle loss (1 - cos)")
@click.option(
    "--d-lr",
    type=float,
    default=None,
    help="GANs: discriminator learning rate [default: the same as --lr].",
)
@_weight(
    "--label-smoothing",
    "label_smoothing",
    "GANs: one-sided label smoothing, the real target becomes 1 - this",
)
@_weight("--clip", "clip", "GANs: clip each network's gradient norm to this; 0 = no clipping")
@click.option(
    "--time-mix",
    type=click.FloatRange(0.0, 1.0),
    default=None,
    help="Share of training patches whose target is moved to a random point between the "
    "two dates (coarse and fine alike: changes of every size up to the observed one; "
    f"docs/deep.md) {opt.shown(TrainSettings, 'time_mix')}.",
)
@opt.run_data_options(TrainSettings)
@click.option(
    "--init",
    default="shipped",
    show_default=True,
    metavar="shipped|none|CKPT",
    help="Initial weights: shipped = fine-tune the model's shipped weights (same "
    "--size; other sizes start fresh with a warning), none = fresh (the correction "
    "to the physical baseline starts at zero), or a checkpoint of the same model and "
    "size.",
)
@click.option(
    "--baseline",
    type=click.Choice(["auto", "regression", "additive", "smooth"]),
    default="auto",
    show_default=True,
    help="The physical prediction the network corrects (docs/deep.md): regression = "
    "C2 + s (F1 - C1), s the local slope of C2 on C1; additive = F1 + C2 - C1; smooth = "
    "F1 + box(C2) - box(F1). auto: the --init checkpoint's when fine-tuning, else the "
    "model's (regression; GAN-STFM smooth; STFDCNN its own fusion).",
)
@click.option(
    "--band-tied",
    is_flag=True,
    help="A network of the pairs' band count (checkpoint format 1, the papers' form) "
    "instead of the band-agnostic residual one: it predicts only scenes of these bands (and "
    "`stfusion distill` makes a band-tied student of it). The shipped weights are "
    "band-agnostic, so --init shipped then starts fresh.",
)
@opt.resume_option()
@opt.overwrite_option()
@opt.quiet_option()
@click.pass_context
def train(
    ctx: click.Context,
    model: str,
    pairs: Sequence[tuple[str, str]],
    out: str,
    size: str | None,
    catalog: str | None,
    resume: bool,
    quiet: bool,
    **settings: Any,  # the run settings (_train_settings); --dates, the scales, --resampling,
    # --note, --overwrite (opt.run_job)
) -> None:
    """Train a deep fusion network (DCSTFN, EDCSTFN, GAN-STFM, ViTGAN, STFDCNN, student) on
    your own pairs.

    GANs (ganstfm, vitgan) train with the adversarial loop: generator and discriminator losses are
    logged per epoch; the best epoch and early stopping follow the validation RMSE. STFDCNN
    needs two or more dates and trains its mapping and super-resolution CNNs in turn.

    \b
    Example:
      stfusion train --model edcstfn --pair L_2001-10-08.tif M_2001-10-08.tif \\
          --pair L_2001-10-17.tif M_2001-10-17.tif --out model.ckpt
      stfusion predict --method edcstfn --param weights=model.ckpt ...
    """
    if not pairs and not catalog:
        raise click.UsageError("give the training pairs: --pair FINE COARSE (2+) or --catalog.")
    check_run_flags(ctx)
    settings["ae_steps"] = settings["ae_steps"] if given(ctx, "ae_steps") else None
    if settings["ae_steps"] is None or model not in ONLY_FOR["ae_steps"][0]:
        ctx.params["ae_steps"] = None  # recorded only where given and read (a re-run warned)
    settings_only = _train_settings(model, size or TrainSettings.size, settings)
    with usage_errors():
        check_run_values(settings_only)  # a bad value is said before torch is imported (5 s)
    size = settings_only.size = _size(model, size, settings, resume)
    if not resume:  # the recorded command line names the size run (a resumed run has its own)
        ctx.params["size"] = size
    if resume and given(ctx, "init"):
        warn(
            f"--init {settings['init']}: a resumed run goes on from its own last weights; ignored."
        )
    from stfusion.dl.train import TrainConfig
    from stfusion.dl.train import train as run_training

    if model == "stfdcnn":  # its own two-network loop (mapping + super-resolution)
        from stfusion.dl.train_stfdcnn import train_stfdcnn as run_training

    cfg = as_config(TrainConfig, settings_only)
    with usage_errors():
        if model == "stfdcnn":
            from stfusion.dl.train import validate_run_options

            validate_run_options(cfg)
        else:
            cfg.validate()
        t0 = time.monotonic()
        before = checkpoint_stamp(out) if resume else None
        result = opt.run_job(ctx, model, quiet, run_training, list(pairs), out, cfg, resume=resume)
    if quiet or not opt.main_process():
        return
    if nothing_trained(out, before, result.epochs):
        return
    # the shipped weights are band-agnostic: no advice to start from them when they were
    # the start already, or for a band-tied network
    _summary(result, out, model, size, t0, cfg.init != "shipped" and cfg.agnostic)


def as_config(config_cls: type[C], settings: Any) -> C:
    """``settings`` (a :mod:`stfusion.run_config` dataclass, its values checked without
    torch) as ``config_cls``, its subclass in ``stfusion.dl`` that adds the checks needing the
    networks and no fields."""
    return config_cls(**{f.name: getattr(settings, f.name) for f in fields(settings)})


def checkpoint_stamp(out: str) -> tuple[int, int] | None:
    """(modification time, size) of checkpoint ``out``, None when there is none."""
    try:
        st = os.stat(out)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


def nothing_trained(out: str, before: tuple[int, int] | None, epochs: int) -> bool:
    """Whether a resumed run left ``out`` as it was (``--epochs`` no more than it had done),
    said so instead of "wrote"."""
    if before is None or checkpoint_stamp(out) != before:
        return False
    click.echo(
        f"{out} has done {epochs} epoch(s) already: nothing to train, left as it was; give "
        f"--epochs {epochs + 1} or more to train further (the total, not the epochs to add)."
    )
    return True


def given(ctx: click.Context, name: str) -> bool:
    """Whether option ``name`` was given (on the command line or from the environment)."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP")


def check_run_flags(ctx: click.Context) -> None:
    """Usage errors of the options train and distill share: --resume with --overwrite, and
    --device and --devices naming different devices."""
    p = ctx.params
    if p.get("resume") and p.get("overwrite"):
        raise click.UsageError(
            "--resume continues the run in --out and --overwrite replaces it: give one."
        )
    if p.get("devices") and given(ctx, "device") and p["devices"] != p["device"]:
        raise click.UsageError(
            f"--device {p['device']} and --devices {p['devices']} differ (they are the same "
            "option): give one."
        )
    if p.get("devices"):  # the recorded command names one (with both, its re-run was refused)
        p["device"] = None


@contextlib.contextmanager
def usage_errors() -> Iterator[None]:
    """A run option's bad value (:class:`stfusion.errors.OptionError`, raised by the checks
    before or during the run) as a usage error: exit status 2."""
    from stfusion.errors import OptionError

    try:
        yield
    except OptionError as exc:
        raise click.UsageError(str(exc)) from None


def _size(model: str, size: str | None, settings: dict[str, Any], resume: bool) -> str:
    """The ``--size`` of a run: as given; else, fine-tuning the shipped weights (``--init
    shipped``, band-agnostic), their size, so the default starts from them (the shipped
    vitgan is tiny); else the default. A resumed run keeps its own (the default is not
    compared with it)."""
    if size is None:
        size = TrainSettings.size
        if settings["init"] == "shipped" and not settings["band_tied"] and not resume:
            from stfusion.dl.train_init import shipped_size

            size = shipped_size(model) or size
    return STUDENT_SIZE_FOR.get(size, size) if model == "student" else size


def _train_settings(model: str, size: str, settings: dict[str, Any]) -> TrainSettings:
    """The :class:`~stfusion.run_config.TrainSettings` (checked before torch is imported) of
    ``model`` at ``size`` and the command's other ``settings``; the optional (GAN, loss)
    settings only when given."""
    p = settings
    optional: dict[str, Any] = {
        "content": p["content"],
        "alpha": p["vision_weight"],
        "beta": p["feature_weight"],
        "discriminator": p["discriminator"],
        "gan_loss": p["gan_loss"],
        "adv_weight": p["adv_weight"],
        "fm_weight": p["fm_weight"],
        "sam_weight": p["sam_weight"],
        "d_lr": p["d_lr"],
        "label_smoothing": p["label_smoothing"],
        "clip": p["clip"],
        "time_mix": p["time_mix"],
        "ae_steps": p["ae_steps"],  # None unless given (the CLI's caller)
    }
    optional = _applicable(model, optional)
    if optional.get("sam_weight") is not None and not p["band_tied"] and not p.get("resume"):
        warn(
            "--sam-weight: the spectral-angle loss needs two bands or more in a sample, and a "
            "band-agnostic network (the default) trains on one band at a time, so the term "
            "is zero; ignored (the checkpoint keeps the default). --band-tied trains a "
            "network of your bands, where it applies."
        )
        optional["sam_weight"] = None
    return TrainSettings(
        model=model,
        size=size,
        epochs=p["epochs"],
        patch=p["patch"],
        batch=p["batch"],
        lr=p["lr"],
        steps_per_epoch=p["steps_per_epoch"],
        val_fraction=p["val_fraction"],
        patience=p["patience"],
        seed=p["seed"],
        device=p["devices"] or p["device"],
        augment=p["augment"],
        threads=p["threads"],
        precision=p["precision"],
        strategy=p["strategy"],
        workers=p["workers"],
        max_gap=p["max_gap"],
        max_invalid=p["max_invalid"],
        val_dates=opt.iso_dates(p["val_dates"], "--val-dates"),
        val_patches=p["val_patches"],
        init=p["init"],
        baseline=p["baseline"],
        agnostic=not p["band_tied"],
        **{k: v for k, v in optional.items() if v is not None},
    )


#: The adversarial models, and the options that only some models read: setting -> (the
#: models that read it, its option).
ADVERSARIAL = ("ganstfm", "vitgan")
ONLY_FOR: dict[str, tuple[tuple[str, ...], str]] = {
    "alpha": (("edcstfn", *ADVERSARIAL), "--vision-weight"),
    "beta": (("edcstfn", *ADVERSARIAL), "--feature-weight"),
    "discriminator": (ADVERSARIAL, "--discriminator"),
    "gan_loss": (ADVERSARIAL, "--gan-loss"),
    "adv_weight": (ADVERSARIAL, "--adv-weight"),
    "fm_weight": (ADVERSARIAL, "--fm-weight"),
    "sam_weight": (ADVERSARIAL, "--sam-weight"),
    "d_lr": (ADVERSARIAL, "--d-lr"),
    "label_smoothing": (ADVERSARIAL, "--label-smoothing"),
    "clip": (ADVERSARIAL, "--clip"),
    "ae_steps": (("edcstfn", *ADVERSARIAL), "--ae-steps"),
}


def _applicable(model: str, given: dict[str, Any]) -> dict[str, Any]:
    """``given`` (the optional settings, None where not given) without those ``model`` does
    not read, which are warned about rather than silently recorded in the checkpoint."""

    unused: dict[tuple[str, ...], list[str]] = {}
    for key, (models, option) in ONLY_FOR.items():
        if given.get(key) is not None and model not in models:
            unused.setdefault(models, []).append(option)
    for models, options in unused.items():
        warn(
            f"{', '.join(options)}: read only by {', '.join(models)}, not by {model}; ignored "
            "(not recorded in the checkpoint)."
        )
    return {k: v for k, v in given.items() if k not in ONLY_FOR or model in ONLY_FOR[k][0]}


def _warn_kept_epoch(
    best: dict[str, Any], history: Sequence[dict[str, Any]], init_advice: bool = True
) -> None:
    """Warn when the network kept (the best epoch by the model's validation loss) scores worse
    than the additive baseline on the validation pixels: a fine-tune kept its only epoch
    worse than additive, with the two numbers side by side and no word (a trial)."""
    mine, base = best.get("val_rmse", float("nan")), best.get("val_rmse_additive", float("nan"))
    if not mine > base:  # also NaN: nothing to compare
        return
    scored = [r for r in history if r.get("val_rmse") == r.get("val_rmse")]
    low = min(scored, key=lambda r: r["val_rmse"]) if scored else best
    other = (
        f"; epoch {low['epoch']} had the lowest validation RMSE, {low['val_rmse']:.4g}"
        if low["epoch"] != best["epoch"]
        else ""
    )
    warn(
        f"the network kept (epoch {best['epoch']}, the best by its validation loss) scores "
        f"validation RMSE {mine:.4g}, worse than the additive baseline F1 + C2 - C1 on the same "
        f"pixels ({base:.4g}){other}. Predictions with it may lose to additive: train longer or "
        "on more dates"
        + (", start from the shipped weights (--init shipped)" if init_advice else "")
        + ", or keep to a classical method."
    )


def _summary(
    result: Any, out: str, model: str, size: str, t0: float, init_advice: bool = True
) -> None:
    """The closing line: the checkpoint, epochs, best validation RMSE, time and log files."""
    from stfusion.dl.checkpoint import load_checkpoint
    from stfusion.dl.train import log_paths

    csv_path, png_path = log_paths(out)
    size = str((load_checkpoint(out).data.get("config") or {}).get("size", size))  # as run
    best = next((r for r in result.history if r["epoch"] == result.best_epoch), None)
    rmse = f", validation RMSE {best['val_rmse']:.4g}" if best else ""
    if best:
        _warn_kept_epoch(best, result.history, init_advice)
    stop = " (early stop)" if result.stopped_early else ""
    click.echo(
        f"wrote {out} ({model} {size}, {result.epochs} epoch(s){stop}, best epoch "
        f"{result.best_epoch}{rmse}; {time.monotonic() - t0:.0f} s)\n"
        f"loss log {csv_path}, curve {png_path}"
    )
