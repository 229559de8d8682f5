"""The network a training run starts from: its physical baseline (:func:`network_baseline`)
and its initial weights (:func:`init_weights`: fresh, the shipped ones or a checkpoint)."""

from __future__ import annotations

from pathlib import Path

from stfusion.dl.checkpoint import Checkpoint, load_checkpoint
from stfusion.dl.networks import FusionNet
from stfusion.dl.train_config import TrainConfig
from stfusion.errors import InvalidParameterError, STFusionError
from stfusion.run_config import shipped_weights

__all__ = ["init_weights", "network_baseline"]


def network_baseline(
    cfg: TrainConfig, previous: Checkpoint | None
) -> tuple[str | None, int | None]:
    """The baseline (and its box radius) of a run's network: a resumed run's, the one asked
    for (``cfg.baseline``), else, fine-tuning (``cfg.init``), the initial checkpoint's, else
    the model's default (``None, None``)."""
    if previous is not None:
        have = previous.data.get("network") or {}
        if isinstance(have.get("agnostic"), str):
            return str(have["agnostic"]), int(have.get("smooth", 0)) or None
        return None, None
    if cfg.baseline != "auto":
        return cfg.baseline, None
    init = str(cfg.init)
    path = shipped_weights(cfg.model) if init == "shipped" else Path(init)
    if init == "none" or not path.exists():
        return None, None
    try:
        have = load_checkpoint(path).data.get("network") or {}
    except STFusionError:
        return None, None  # init_weights reports it
    if isinstance(have.get("agnostic"), str):
        return str(have["agnostic"]), int(have.get("smooth", 0)) or None
    return None, None


def init_weights(net: FusionNet, cfg: TrainConfig) -> None:
    """Start ``net`` from ``cfg.init``: none, shipped (the model's shipped weights) or a
    checkpoint of the same model, form and size (fine-tuning)."""
    init = str(cfg.init)
    if init == "none":
        return
    if init == "shipped":
        path = shipped_weights(cfg.model)
        if not path.exists():
            raise InvalidParameterError(
                f"--init shipped: stfusion ships no {cfg.model} weights ({path}); use --init none."
            )
    else:
        path = Path(init)
    ck = load_checkpoint(path)
    want = {k: v for k, v in net.config().items() if k != "bands"}
    have = {k: v for k, v in ck.data["network"].items() if k not in ("bands", "size")}
    if ck.model != cfg.model or want != have:
        why = (
            f"{path} holds {ck.model} {ck.data['network']}, this run builds {cfg.model} "
            f"{net.config()} (size {cfg.size})"
        )
        if init == "shipped":
            import warnings

            from stfusion.errors import STFusionWarning

            # The default: other sizes or forms than the shipped ones train from scratch.
            warnings.warn(
                f"--init shipped: {why}; starting from fresh weights (the "
                "correction starts at zero).",
                STFusionWarning,
                stacklevel=3,
            )
            return
        raise InvalidParameterError(
            f"--init {init}: {why}; give the same model and --size, or --init none."
        )
    net.load_state_dict(ck.data["state_dict"])
