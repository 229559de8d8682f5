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
(block grids as at prediction); validation uses the engine's fixed validation sample
(:class:`stfusion.dl.datasets.ValidationDataset`) on the block grid. Early stopping and the best
weights follow the summed validation loss. Each epoch also logs ``val_rmse``: the RMSE
(physical units, mean over bands) on the validation block of the single-pair STFDCNN
prediction (both levels and HPM, no weighting) between the training dates, beside the
additive baseline ``F_r + C_t - C_r`` on the same pixels (``val_rmse_additive``).

The training loop, reproducibility, checkpoints, resume and the log are those of the engine
(:class:`stfusion.dl.engine.STFDCNNModule`, :func:`stfusion.dl.engine.fit`).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any, Unpack

from stfusion.dl import require_lightning
from stfusion.dl.engine_settings import deterministic
from stfusion.dl.networks.stfdcnn import STFDCNNNet, choose_factor, choose_window, sizes_for
from stfusion.dl.run_inputs import checkpoint_path
from stfusion.dl.train import (
    TrainConfig,
    TrainResult,
    fit_run,
    run_data,
    settings_of,
    start_training,
    training_record,
    training_sites,
    validate_run_options,
)
from stfusion.dl.train_config import ResumableInputs, check_inputs
from stfusion.errors import InvalidParameterError
from stfusion.run_config import LoopSettings
from stfusion.scene import ImageLike, Scene

if TYPE_CHECKING:  # imported where the run starts (Lightning: 4-5 s), after its checks
    from stfusion.dl import engine


@dataclass
class STFDCNNConfig(LoopSettings):
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
    content: str = "mse"
    # Band-agnostic residual form (networks/agnostic.py): one single-band network for every
    # band, normalised per sample, CNNs that start as identities (the fusion model's HPM on
    # the inputs); False: the band-tied network of checkpoint format 1.
    agnostic: bool = True

    @classmethod
    def from_train_config(cls, cfg: TrainConfig, **overrides: Any) -> STFDCNNConfig:
        """The shared options of a :class:`TrainConfig` (EDCSTFN's loss weights and
        autoencoder steps do not apply), plus ``overrides`` (e.g. ``factor=2``)."""
        if cfg.time_mix:
            raise InvalidParameterError(
                "--time-mix does not apply to stfdcnn: it trains its two CNNs on single dates, "
                "not on ordered date pairs; leave it out."
            )
        if cfg.baseline != "auto":
            raise InvalidParameterError(
                f"--baseline {cfg.baseline} does not apply to stfdcnn: it keeps its paper's "
                "fusion (high-pass modulation of the two pairs); leave --baseline out."
            )
        if cfg.init not in ("none", "shipped"):
            raise InvalidParameterError(
                f"--init {cfg.init}: stfdcnn trains its two CNNs from fresh weights and does not "
                "start from a checkpoint; leave --init out (continue a run with --resume)."
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
        validate_run_options(self)
        for name in ("factor", "window"):
            if int(getattr(self, name)) < 0:
                raise InvalidParameterError(f"{name} must be >= 0, got {getattr(self, name)}.")
        if self.content not in ("mse", "l1"):
            raise InvalidParameterError(f"content loss {self.content!r}: choose mse or l1.")


def _as_config(config: STFDCNNConfig | TrainConfig | None) -> STFDCNNConfig:
    if config is None:
        return STFDCNNConfig()
    if isinstance(config, TrainConfig):
        return STFDCNNConfig.from_train_config(config)
    return copy.deepcopy(config)


def train_stfdcnn(
    pairs: Sequence[tuple[ImageLike, ImageLike]] | Scene | None,
    out: str | os.PathLike[str],
    config: STFDCNNConfig | TrainConfig | None = None,
    **inputs: Unpack[ResumableInputs],
) -> TrainResult:
    """Train STFDCNN on ``pairs`` (two or more dates) and write the checkpoint ``out``.

    ``config``: an :class:`STFDCNNConfig`, or the :class:`TrainConfig` of ``stfusion train``
    (its shared options are used; ``factor`` and ``window`` are then chosen from the
    resolution ratio). With ``resume=True`` the stored configuration is used, except the
    engine options of :data:`stfusion.dl.train.RESUME_KEEP`. The keyword ``inputs`` as
    :func:`stfusion.dl.train.train`'s (:class:`~stfusion.dl.train_config.ResumableInputs`).
    """
    require_lightning()
    check_inputs("train_stfdcnn", inputs, ResumableInputs.__optional_keys__)
    out = checkpoint_path(out)
    previous, cfg = start_training(out, _as_config(config), inputs, model="stfdcnn", pairs=pairs)
    cfg.validate()
    sites = training_sites(pairs, inputs, previous, cfg.agnostic)
    # Resolved once and stored, so a resumed run and the prediction use the same grid.
    ratio = sites[0].scene.ratio
    cfg.factor = cfg.factor or choose_factor(ratio)
    cfg.window = cfg.window or choose_window(ratio, cfg.factor)
    if cfg.patch % cfg.factor or cfg.patch < 4 * cfg.factor:
        raise InvalidParameterError(
            f"patch ({cfg.patch} px) must be a multiple of the transitional factor "
            f"({cfg.factor}) and at least 4 blocks wide."
        )
    data = run_data(sites, cfg, cfg.factor, single=True)
    for site in data.sites:
        b = site.block
        if b is not None and min(b.height, b.width) < cfg.factor:
            raise InvalidParameterError(
                f"the validation block ({b.height} x {b.width} px) is smaller than the "
                f"transitional factor {cfg.factor}; use a larger val_fraction or scene."
            )
    settings = settings_of(cfg, inputs)
    with deterministic(cfg.device, cfg.threads):
        import lightning as L

        from stfusion.dl import engine

        L.seed_everything(cfg.seed, workers=True, verbose=False)
        net: Any
        if cfg.agnostic:
            from stfusion.dl.networks.agnostic import AgnosticNet

            net = AgnosticNet(
                STFDCNNNet(1, sizes_for(cfg.size), cfg.factor, cfg.window, residual=True)
            )
        else:
            net = STFDCNNNet(
                sites[0].scene.count,
                sizes_for(cfg.size),
                cfg.factor,
                cfg.window,
                data.norm.mean,
                data.norm.std,
            )
        module = engine.STFDCNNModule(net, cfg.content, cfg.lr, data.norm.std)

        def payload(rec: engine.RunRecorder, mod: engine.FusionModule) -> dict[str, Any]:
            return training_record("stfdcnn", net, data, cfg, rec, inputs, out)

        return fit_run(module, data, cfg, out, settings, payload, previous is not None, inputs)


__all__ = ["STFDCNNConfig", "train_stfdcnn"]
