"""The network a training run starts from: the checkpoint it fine-tunes
(:func:`initial_checkpoint`, read once), its physical baseline (:func:`network_baseline`) and
its initial weights (:func:`init_weights`: fresh, the shipped ones or a checkpoint)."""

from __future__ import annotations

from pathlib import Path

from stfusion.dl.checkpoint import Checkpoint, load_checkpoint
from stfusion.dl.networks import FusionNet
from stfusion.dl.train_config import TrainConfig
from stfusion.errors import InvalidParameterError, warn
from stfusion.run_config import shipped_weights

__all__ = ["init_weights", "initial_checkpoint", "network_baseline", "shipped_size"]


def shipped_size(model: str) -> str | None:
    """The ``--size`` of ``model``'s shipped weights (None when it has none): the default
    size of a run that fine-tunes them (``--init shipped``)."""
    path = shipped_weights(model)
    if not path.exists():
        return None
    size = (load_checkpoint(path).data.get("network") or {}).get("size")
    return str(size) if size else None


def initial_checkpoint(cfg: TrainConfig) -> Checkpoint | None:
    """The checkpoint ``cfg.init`` names (None for ``none``): the model's shipped weights
    (``shipped``) or a checkpoint path."""
    init = str(cfg.init)
    if init == "none":
        return None
    if init == "shipped":
        if not cfg.agnostic:
            return None  # the shipped weights are band-agnostic: a band-tied run starts fresh
        path = shipped_weights(cfg.model)
        if not path.exists():
            raise InvalidParameterError(
                f"--init shipped: stfusion ships no {cfg.model} weights ({path}); use --init none."
            )
        return load_checkpoint(path)
    return load_checkpoint(Path(init))


def _baseline_of(ck: Checkpoint) -> tuple[str | None, int | None]:
    """The baseline and box radius a band-agnostic checkpoint's network corrects."""
    have = ck.data.get("network") or {}
    if isinstance(have.get("agnostic"), str):
        return str(have["agnostic"]), int(have.get("smooth", 0)) or None
    return None, None


def network_baseline(
    cfg: TrainConfig, previous: Checkpoint | None, initial: Checkpoint | None
) -> tuple[str | None, int | None]:
    """The baseline (and its box radius) of a run's network: a resumed run's (``previous``),
    the one asked for (``cfg.baseline``), else, fine-tuning, the ``initial`` checkpoint's,
    else the model's default (``None, None``)."""
    if previous is not None:
        return _baseline_of(previous)
    if cfg.baseline != "auto":
        return cfg.baseline, None
    if initial is not None:
        return _baseline_of(initial)
    return None, None


def init_weights(net: FusionNet, cfg: TrainConfig, initial: Checkpoint | None) -> None:
    """Start ``net`` from the ``initial`` checkpoint of ``cfg.init`` (None: fresh weights),
    which must hold the same model, form and size (fine-tuning); ``--init shipped`` with
    another size or form starts fresh with a warning."""
    if initial is None:
        return
    init = str(cfg.init)
    want = {k: v for k, v in net.config().items() if k != "bands"}
    have = {k: v for k, v in initial.data["network"].items() if k not in ("bands", "size")}
    if initial.model != cfg.model or want != have:
        why = (
            f"{initial.path} holds {initial.model} {initial.data['network']}, this run builds "
            f"{cfg.model} {net.config()} (size {cfg.size})"
        )
        if init == "shipped":
            # The default: other sizes or forms than the shipped ones train from scratch.
            warn(
                f"--init shipped: {why}; starting from fresh weights (the "
                "correction starts at zero)."
            )
            return
        tied_have, tied_want = "agnostic" not in have, "agnostic" not in want
        fix = [f"--model {initial.model}"] if initial.model != cfg.model else []
        if tied_have != tied_want:
            fix.append("--band-tied" if tied_have else "no --band-tied")
        elif have.get("agnostic") != want.get("agnostic"):  # the baseline, not the size
            fix.append(f"--baseline {have.get('agnostic')} (or --baseline auto)")
        else:
            fix.append("its --size")
        raise InvalidParameterError(
            f"--init {init}: {why}; to fine-tune it give {' and '.join(fix)}, or start "
            "afresh with --init none."
        )
    bands = initial.data["network"].get("bands")
    if "agnostic" not in want and bands is not None and bands != net.bands:
        # A band-tied network has one input and output channel per band: it cannot take others.
        raise InvalidParameterError(
            f"--init {init}: {initial.path} holds a band-tied {initial.model} of {bands} band(s) "
            f"but this run's pairs have {net.bands}; train on pairs of its {bands} bands "
            "(FILE:BANDS), or start fresh with --init none."
        )
    try:
        net.load_state_dict(initial.data["state_dict"])
    except RuntimeError as exc:  # a layout the checks above do not know (e.g. an older format)
        first = str(exc).strip().splitlines()[-1].strip()
        raise InvalidParameterError(
            f"--init {init}: the weights of {initial.path} do not fit this run's {cfg.model} "
            f"network ({first}); give a checkpoint of the same model, size and bands, or "
            "--init none."
        ) from None
