"""Training the fusion networks (DCSTFN, EDCSTFN, GAN-STFM, ...) on the user's own pairs.

``train(pairs, out, TrainConfig(...))`` (and ``stfusion train``) does, in order:

1. open the pairs (``--pair``, or the sites of a ``--catalog``) with
   :func:`stfusion.scene.open_scene` (the scaling and alignment that ``stfusion predict``
   uses), take their dates from ``dates``, the catalog or the file names;
2. build the examples (ordered date pairs within a site, at most ``max_gap`` days apart), the
   per-band normalisation, the validation (a spatial block per site and/or held-out dates,
   a fixed sample of ``val_patches`` patches) and the streaming datasets
   (:mod:`stfusion.dl.datasets`);
3. EDCSTFN, and GANs with a feature loss (``beta > 0``): train the feature-loss autoencoder
   on fine patches (``ae_steps`` steps, its own progress line), then freeze it;
4. train the network with the engine (:mod:`stfusion.dl.engine`, PyTorch Lightning): Adam on
   random patches, ``steps_per_epoch`` batches per epoch, validation after each epoch, the
   best weights kept, the checkpoint written atomically and the loss log appended
   (``<out>.log.csv`` and a curve ``<out>.loss.png`` beside the checkpoint), early stopping
   after ``patience`` epochs without improvement.

Adversarial networks (a :class:`~stfusion.dl.networks.FusionNet` with ``adversarial = True``,
e.g. GAN-STFM) train with :class:`GANTrainer` (one discriminator update then one generator
update per batch, :class:`stfusion.dl.engine.AdversarialModule`) against the discriminator
named by ``TrainConfig.discriminator`` (``auto``: the generator's own, ``patchgan`` for
GAN-STFM) from :mod:`stfusion.dl.networks.discriminators`. The generator's loss is the
reconstruction loss (content + ``beta`` feature + ``alpha`` vision) + ``sam_weight`` spectral
+ ``adv_weight`` adversarial + ``fm_weight`` discriminator feature matching; the epoch log
adds the discriminator's loss, its mean outputs on real and generated images and the range of
the per-step ratio ``d_loss / g_adv``. The best epoch, early stopping and the stored weights
follow the validation RMSE (never the adversarial losses, which do not measure accuracy).

Reproducibility: ``seed`` drives Lightning's ``seed_everything`` (weights) and the patch
generator of each item (:class:`stfusion.dl.datasets.PatchDataset`); on the CPU
``torch.use_deterministic_algorithms(True)`` is set while training, so the same seed, data,
configuration and thread count give the same weights. ``resume=True`` continues from the
Lightning state beside the checkpoint (``<stem>.lightning/resume.ckpt``): training 2 epochs
and resuming for a 3rd gives the weights of 3 epochs in one go.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Unpack

import numpy as np
import torch

import stfusion
from stfusion.dl import datasets as ds
from stfusion.dl import require_lightning
from stfusion.dl.checkpoint import Checkpoint, cpu_state, save_checkpoint
from stfusion.dl.data import warn_idle_dates, warn_idle_sites, warn_masked_out, warn_site_scales
from stfusion.dl.engine_settings import (
    EngineSettings,
    ProgressFn,
    deterministic,
    lightning_dir,
    resume_path,
    warn_settings,
)
from stfusion.dl.gan import GANTrainer, gan_trainer
from stfusion.dl.losses import CompoundLoss, SpectralLoss, content_loss
from stfusion.dl.networks import FusionNet, channels_for, make_network, network_class
from stfusion.dl.networks.autoencoder import Autoencoder
from stfusion.dl.networks.discriminators import Discriminator, discriminator_class
from stfusion.dl.run_inputs import check_patch, checkpoint_path, site_records, warn_undated
from stfusion.dl.train_config import (
    ResumableInputs,
    RunInputs,
    SiteInputs,
    TrainConfig,
    TrainResult,
    check_inputs,
    check_iso_date,
    site_inputs,
    stored_config,
    validate_run_options,
)
from stfusion.dl.train_init import init_weights, initial_checkpoint, network_baseline
from stfusion.dl.train_log import log_paths, write_log
from stfusion.dl.train_resume import (  # re-exported: train.<name> was their home
    check_resume,
    resumed_config,
    start_run,
    start_training,
    training_inputs,
)
from stfusion.errors import InvalidParameterError
from stfusion.io import AlignedSource, FileSource, Source
from stfusion.scene import ImageLike, Scene

if TYPE_CHECKING:  # Lightning (4-5 s to import) is imported where a run starts: a bad option,
    # output or resume state is said before it
    from stfusion.dl import engine

__all__ = [
    "GANTrainer",
    "ProgressFn",
    "TrainConfig",
    "TrainResult",
    "check_resume",
    "cpu_state",
    "gan_trainer",
    "log_paths",
    "random_checkpoint",
    "resumed_config",
    "start_run",
    "start_training",
    "train",
    "validate_run_options",
    "write_log",
]


# ----------------------------------------------------------------------------- shared set-up


def open_training_sites(
    pairs: Sequence[tuple[ImageLike, ImageLike]] | Scene | None,
    *,
    any_bands: bool = False,
    **inputs: Unpack[SiteInputs],
) -> list[ds.Site]:
    """The sites of a run: the ``pairs`` (one site, ``main``) and those of ``catalog``
    (``inputs``: :class:`~stfusion.dl.train_config.SiteInputs`); ``any_bands``: sites may have
    different bands (band-agnostic networks)."""
    check_inputs("open_training_sites", inputs, SiteInputs.__optional_keys__)
    # GDAL's block cache bounded from here on, not only while the loop runs: the checks and
    # the validation sample read every block of a coarse image warped from its own grid, and
    # GDAL's default (5 % of the RAM) kept them all (+216 MB per 3000 x 3000 x 6 date)
    ds.bound_gdal_cache()
    dates, catalog = inputs.get("dates"), inputs.get("catalog")
    open_sites = partial(
        ds.open_sites,
        fine_scaling=inputs.get("fine_scaling"),
        coarse_scaling=inputs.get("coarse_scaling"),
        resampling=inputs.get("resampling", "nearest"),
        any_bands=any_bands,
    )
    sites: list[ds.Site] = []
    if isinstance(pairs, Scene):
        iso = list(dates) if dates else None
        if iso is not None and len(set(iso)) != len(iso):
            raise InvalidParameterError(f"the pairs' dates repeat ({', '.join(iso)}).")
        sites.append(ds.Site("main", pairs, iso))
    elif pairs:
        if dates and len(dates) != len(pairs):
            raise InvalidParameterError(
                f"--dates gives {len(dates)} date(s) for {len(pairs)} pair(s); give one per pair."
            )
        # the dates are read (and checked against the file names) once, by open_sites
        pair_dates: list[str | None] = [*dates] if dates else [None] * len(pairs)
        specs = [ds.PairSpec(f, c, d) for (f, c), d in zip(pairs, pair_dates)]
        sites += open_sites({"main": specs})
    if catalog is not None:
        groups = ds.read_catalog(catalog)
        if sites and "main" in groups:
            raise InvalidParameterError(
                f"{catalog}: site name 'main' is taken by the --pair images; rename it."
            )
        sites += open_sites(groups)
    if not sites:
        raise InvalidParameterError("no pairs given: give --pair FINE COARSE or --catalog.")
    counts = {s.scene.count for s in sites}
    if len(counts) > 1 and not any_bands:
        raise InvalidParameterError("the --pair images and the catalog have different bands.")
    warn_site_scales(sites)
    warn_undated(sites)
    if sum(len(s.scene.pairs) for s in sites) < 2 or max(len(s.scene.pairs) for s in sites) < 2:
        n = max(len(s.scene.pairs) for s in sites)
        per_site = f" in any of the {len(sites)} sites (dates pair within a site only)"
        raise InvalidParameterError(
            f"training needs pairs at two or more dates (an example maps one date to "
            f"another); got {n}{per_site if len(sites) > 1 else ''}."
        )
    return sites


@dataclass
class RunData:
    """The data of one run: sites, held-out dates, normalisation, datasets."""

    sites: list[ds.Site]
    held_out: list[str]
    norm: ds.Normalisation
    train: torch.utils.data.Dataset
    val: ds.ValidationDataset
    steps: int

    def loaders(self, batch: int, workers: int) -> tuple[Any, Any]:
        return (
            ds.loader(self.train, batch, workers, fixed=False, drop_last=True),
            ds.loader(self.val, batch, workers, fixed=True, drop_last=False),
        )

    def fine_patches(self, cfg: Any, steps: int) -> Any:
        """Pair patches for ``steps`` autoencoder batches (their label is the fine image)."""
        data = ds.PatchDataset(
            self.sites,
            self.norm,
            ds.pair_examples(self.sites, self.held_out, cfg.max_gap),
            cfg.patch,
            steps * cfg.batch,
            cfg.seed,
            augment=True,
            stream=1,
            max_invalid=cfg.max_invalid,
        )
        return ds.loader(data, cfg.batch, cfg.workers, fixed=False, drop_last=True)

    @property
    def dates(self) -> list[str] | None:
        """Every date the run reads (training and held-out), in order, once."""
        if any(s.dates is None for s in self.sites):
            return None
        return list(dict.fromkeys(d for s in self.sites for d in s.dates or []))


def run_data(
    sites: list[ds.Site],
    cfg: Any,
    multiple: int = 1,
    single: bool = False,
    norm: ds.Normalisation | None = None,
) -> RunData:
    """Blocks, held-out dates, normalisation and datasets for a validated ``cfg``;
    ``single``: single-date training patches on the ``multiple`` grid (STFDCNN)."""
    held = [check_iso_date(str(d), "--val-dates") for d in cfg.val_dates]
    known = {d for s in sites for d in s.dates or []}
    if held and any(s.dates is None for s in sites):
        raise InvalidParameterError("--val-dates needs the pairs' dates (--dates or file names).")
    missing = [d for d in held if d not in known]
    if missing:
        raise InvalidParameterError(
            f"--val-dates {','.join(missing)}: not a date of the pairs "
            f"({', '.join(sorted(known))})."
        )
    if cfg.max_gap and any(s.dates is None for s in sites):
        raise InvalidParameterError("--max-gap needs the pairs' dates (--dates or file names).")
    check_patch(sites, cfg.patch)
    ds.set_blocks(sites, cfg.val_fraction, multiple, cfg.patch)
    used = ds.training_dates(sites, held)
    if norm is None and getattr(cfg, "agnostic", False):
        norm = ds.Normalisation.identity()
    if norm is None:
        with ds.streaming():
            norm = ds.Normalisation.from_sources(
                [sites[s].scene.pairs[i][0] for s, i in used],
                [sites[s].scene.pairs[i][1] for s, i in used],
            )
    examples = ds.pair_examples(sites, held, cfg.max_gap)
    warn_masked_out(sites)
    if not single:
        warn_idle_sites(sites, {e.site for e in examples}, cfg.max_gap)
        if cfg.max_gap:
            warn_idle_dates(sites, examples, held)
    steps = cfg.steps_per_epoch or ds.steps_per_epoch(sites, len(used), cfg.patch, cfg.batch)
    train_ds = ds.PatchDataset(
        sites,
        norm,
        examples,
        cfg.patch,
        steps * cfg.batch,
        cfg.seed,
        augment=cfg.augment,
        time_mix=getattr(cfg, "time_mix", 0.0),
        single=used if single else None,
        multiple=multiple if single else 1,
        max_invalid=cfg.max_invalid,
    )
    val_ds = ds.ValidationDataset(
        sites, norm, held, cfg.patch, cfg.val_patches, cfg.seed, cfg.max_gap, multiple
    )
    return RunData(sites, held, norm, train_ds, val_ds, steps)


def settings_of(cfg: Any, inputs: RunInputs) -> EngineSettings:
    """The engine settings of a run: ``cfg``'s, and Lightning's bar if ``inputs`` ask for it;
    what Lightning would change silently is said here, once per run."""
    settings = EngineSettings(
        epochs=cfg.epochs,
        patience=cfg.patience,
        seed=cfg.seed,
        device=cfg.device,
        precision=cfg.precision,
        strategy=cfg.strategy,
        threads=cfg.threads,
        workers=cfg.workers,
        progress_bar=bool(inputs.get("progress_bar")),
    )
    warn_settings(settings)
    return settings


def _scaling_of(src: Source) -> dict[str, float] | None:
    src = getattr(src, "source", src)  # qa.MaskedSource
    if isinstance(src, AlignedSource):
        src = src.native
    if isinstance(src, FileSource):
        return {"scale": float(src.scale), "offset": float(src.offset)}
    return None


def checkpoint_record(
    model: str,
    network: dict[str, Any],
    data: RunData,
    cfg: Any,
    rec: engine.RunRecorder,
    meta: dict[str, Any] | None,
    run_inputs: RunInputs | None = None,
) -> dict[str, Any]:
    """The checkpoint fields every family writes (train, STFDCNN, distill).

    The prediction-time checks (bands, names, scaling, ratio, value range, training dates)
    read these fields; ``training_dates`` lists every date the run read (training and
    held-out), so the bench never scores a model on a date it has seen; ``validation_dates``
    the held-out ones (``--val-dates``), never trained on. Each site's files,
    scaling and validation block are in ``training_site_info`` (the top-level ``scaling``
    and ``validation_block`` are the first site's, as before); ``training_inputs`` (the
    catalog, the resampling) from ``run_inputs``. ``--resume`` compares them.
    """
    from stfusion.dl import engine

    site = data.sites[0]
    scene = site.scene
    f0, c0 = scene.pairs[0]
    inputs = [[f.label, c.label] for s in data.sites for f, c in s.scene.pairs]
    per_sample = data.norm.per_sample
    ratios = {s.scene.ratio for s in data.sites}
    return {
        "model": model,
        "network": network,
        "state_dict": rec.best_state,
        # A band-agnostic network has one (any) band; its checks skip bands and scale.
        "bands": 1 if per_sample else scene.count,
        "band_names": ["any"] if per_sample else list(scene.band_names),
        "scaling": {"fine": _scaling_of(f0), "coarse": _scaling_of(c0)},
        "ratio": scene.ratio if len(ratios) == 1 else None,
        "norm": {
            "mean": list(data.norm.mean),
            "std": list(data.norm.std),
            "per_sample": per_sample,
        },
        "data_range": list(data.norm.data_range),
        "physical_range": data.norm.physical_range,
        "training_dates": data.dates or [],
        # held out whole: they chose the epoch but were never trained on (predict says so)
        "validation_dates": list(data.held_out),
        "training_sites": ds.describe(data.sites),
        "training_site_info": site_records(data.sites),
        "training_inputs": training_inputs(run_inputs or {}),
        "validation_block": asdict(site.block) if site.block else None,
        "validation": {
            "dates": data.held_out,
            "patches": len(data.val),
            "fraction": cfg.val_fraction,
        },
        "config": stored_config(cfg),
        "history": rec.history,
        "epoch": rec.epoch,
        "best_epoch": rec.best_epoch,
        "best_val_loss": rec.best_loss,
        "bad_epochs": rec.bad,
        "meta": engine.run_info(rec.seconds, inputs, dict(meta or {})),
    }


def training_sites(
    pairs: Sequence[tuple[ImageLike, ImageLike]] | Scene | None,
    inputs: ResumableInputs,
    previous: Checkpoint | None,
    any_bands: bool,
) -> list[ds.Site]:
    """The sites of a training run (:func:`open_training_sites`), checked against the
    ``previous`` run when resuming (:func:`check_resume`)."""
    sites = open_training_sites(pairs, any_bands=any_bands, **site_inputs(inputs))
    if previous is not None:
        check_resume(previous, sites, inputs)
    return sites


def training_record(
    model: str,
    net: FusionNet,
    data: RunData,
    cfg: Any,
    rec: engine.RunRecorder,
    inputs: RunInputs,
    out: Path,
) -> dict[str, Any]:
    """What a training run writes after every epoch: :func:`checkpoint_record` for ``net``
    and what a resumed run reloads; a family adds its own parts."""
    net_config = {**net.config(), "size": cfg.size}
    record = checkpoint_record(model, net_config, data, cfg, rec, inputs.get("meta"), inputs)
    record["resume"] = {
        "state_dict": cpu_state(net.state_dict()),
        "lightning": resume_path(out).name,
    }
    return record


def fit_run(
    module: engine.FusionModule,
    data: RunData,
    cfg: Any,
    out: Path,
    settings: EngineSettings,
    payload: Callable[[engine.RunRecorder, engine.FusionModule], dict[str, Any]],
    resumed: bool,
    inputs: RunInputs,
) -> TrainResult:
    """Train ``module`` on the run's loaders (:func:`stfusion.dl.engine.fit`, which writes
    ``out`` from ``payload`` after every epoch, reporting to ``inputs``' progress) and return
    what the run produced: the end of :func:`train` and
    :func:`stfusion.dl.train_stfdcnn.train_stfdcnn`."""
    from stfusion.dl import engine

    train_dl, val_dl = data.loaders(cfg.batch, cfg.workers)
    progress = inputs.get("progress")
    rec = engine.fit(
        module, train_dl, val_dl, out, settings, payload, resume=resumed, progress=progress
    )
    stopped = rec.bad >= cfg.patience
    return TrainResult(
        out, rec.epoch, rec.best_epoch, rec.best_loss, rec.seconds, stopped, rec.history
    )


# ----------------------------------------------------------------------------- train


def _autoencoder(
    cfg: TrainConfig,
    bands: int,
    adversarial: bool,
    previous: Checkpoint | None,
    data: RunData,
    settings: EngineSettings,
    out: Path,
    progress: ProgressFn | None,
) -> tuple[Autoencoder | None, list[float]]:
    """The feature-loss autoencoder (EDCSTFN, GANs with ``beta > 0``) and its losses:
    pretrained on fine patches, or its stored losses when resuming; else ``(None, [])``."""
    if not ((cfg.model == "edcstfn") or (adversarial and cfg.beta > 0)):
        return None, []
    ae = Autoencoder(bands, channels_for(cfg.size))
    if previous is not None:
        return ae, list((previous.data.get("autoencoder") or {}).get("losses", []))
    from stfusion.dl import engine

    ae_losses = engine.pretrain_autoencoder(
        ae,
        data.fine_patches(cfg, cfg.ae_steps),
        cfg.ae_steps,
        cfg.lr,
        settings,
        lightning_dir(out),
        progress,
    )
    return ae, ae_losses


def _fusion_module(
    cfg: TrainConfig,
    net: FusionNet,
    disc: Discriminator | None,
    ae: Autoencoder | None,
    data: RunData,
    bands: int,
) -> engine.FusionModule:
    """The Lightning module for ``net``: adversarial with ``disc``, else plain with the
    compound (``ae``) or content loss."""
    from stfusion.dl import engine

    # MS-SSIM on physical values (reflectance: data range 1), not standardised ones:
    # band-tied runs denormalise with the training statistics, band-agnostic ones with
    # each sample's (the batch carries them).
    data_range = torch.full((bands,), float(data.norm.physical_range))
    phys = {"mean": data.norm.mean, "std": data.norm.std}
    if disc is not None:
        recon = CompoundLoss(
            ae.encoder if ae else None,
            data_range,
            cfg.content,
            cfg.alpha,
            cfg.beta if ae else 0.0,
            **phys,
        )
        spectral = SpectralLoss(list(data.norm.mean), list(data.norm.std))
        gan = GANTrainer(net, disc, recon, spectral, cfg)
        return engine.AdversarialModule(gan, cfg.lr, data.norm.std)
    if ae is not None:
        crit = CompoundLoss(ae.encoder, data_range, cfg.content, cfg.alpha, cfg.beta, **phys)
        return engine.FusionModule(net, crit, cfg.lr, data.norm.std)
    return engine.FusionModule(net, content_loss(cfg.content), cfg.lr, data.norm.std)


def train(
    pairs: Sequence[tuple[ImageLike, ImageLike]] | Scene | None,
    out: str | os.PathLike[str],
    config: TrainConfig | None = None,
    **inputs: Unpack[ResumableInputs],
) -> TrainResult:
    """Train a fusion network on ``pairs`` (two or more dates) and/or the sites of a
    ``catalog`` CSV, and write the checkpoint ``out``.

    ``config`` (a :class:`TrainConfig`) holds the hyper-parameters; with ``resume=True`` the
    stored configuration is used, except the options of :data:`RESUME_KEEP`, which may be
    changed to continue a run. The keyword ``inputs`` (``dates``, ``catalog``, scalings,
    ``resampling``, ``resume``, ``overwrite``, ``progress``, ``progress_bar``, ``meta``) are
    :class:`~stfusion.dl.train_config.ResumableInputs`: ``meta`` (e.g. the command line,
    notes) is stored with the checkpoint's metadata, ``progress`` receives one dict per
    autoencoder step and per epoch.
    """
    require_lightning()
    check_inputs("train", inputs, ResumableInputs.__optional_keys__)
    cfg = copy.deepcopy(config) if config is not None else TrainConfig()
    out = checkpoint_path(out)
    previous, cfg = start_training(out, cfg, inputs, model=cfg.model, pairs=pairs)
    cfg.validate()
    cfg = cfg.resolved()
    sites = training_sites(pairs, inputs, previous, cfg.agnostic)
    net_cls = network_class(cfg.model)
    data = run_data(sites, cfg, net_cls.multiple)
    settings = settings_of(cfg, inputs)
    bands = 1 if cfg.agnostic else sites[0].scene.count
    with deterministic(cfg.device, cfg.threads):
        import lightning as L

        L.seed_everything(cfg.seed, workers=True, verbose=False)
        initial = None if previous is not None else initial_checkpoint(cfg)
        baseline, radius = network_baseline(cfg, previous, initial)
        net = make_network(cfg.model, bands, cfg.size, cfg.agnostic, baseline, radius)
        if previous is None:
            init_weights(net, cfg, initial)
        disc = (
            discriminator_class(cfg.discriminator)(2 * bands, cfg.size)
            if net_cls.adversarial
            else None
        )
        ae, ae_losses = _autoencoder(
            cfg, bands, disc is not None, previous, data, settings, out, inputs.get("progress")
        )
        module = _fusion_module(cfg, net, disc, ae, data, bands)

        def payload(rec: engine.RunRecorder, mod: engine.FusionModule) -> dict[str, Any]:
            rec_out = training_record(cfg.model, net, data, cfg, rec, inputs, out)
            if ae is not None:
                rec_out["autoencoder"] = {
                    **ae.config(),
                    "state_dict": cpu_state(ae.state_dict()),
                    "losses": ae_losses[-20:],
                }
            if disc is not None:
                n_par = sum(p.numel() for p in disc.parameters())
                rec_out["discriminator"] = {**disc.config(), "n_parameters": n_par}
                rec_out["monitor"] = module.monitor
                rec_out["resume"]["discriminator"] = cpu_state(disc.state_dict())
            return rec_out

        return fit_run(module, data, cfg, out, settings, payload, previous is not None, inputs)


def untrained_record(
    model: str,
    net: FusionNet,
    size: str,
    config: Any,
    *,
    band_names: Sequence[str] | None,
    mean: float | Sequence[float],
    std: float | Sequence[float],
    training_dates: Sequence[str],
    per_sample: bool = False,
) -> dict[str, Any]:
    """The checkpoint fields of ``net``'s untrained weights (:func:`random_checkpoint`, the
    distillation's random student) of ``size``, with the run configuration ``config`` (a
    dataclass): ``band_names`` default ``band1``, ...; ``mean`` and ``std`` one for every band
    or one for all; no scaling, ratio or history."""
    n = int(net.bands)
    m = np.broadcast_to(np.asarray(mean, dtype=np.float64), (n,))
    s = np.broadcast_to(np.asarray(std, dtype=np.float64), (n,))
    return {
        "model": model,
        "network": {**net.config(), "size": size},
        "state_dict": net.state_dict(),
        "bands": n,
        "band_names": list(band_names) if band_names else [f"band{i + 1}" for i in range(n)],
        "scaling": {"fine": None, "coarse": None},
        "ratio": None,
        "norm": {
            "mean": [float(x) for x in m],
            "std": [float(x) for x in s],
            "per_sample": per_sample,
        },
        "data_range": [float(1.0 / x) for x in s],
        "physical_range": 1.0,
        "training_dates": list(training_dates),
        "config": asdict(config),
        "history": [],
        "epoch": 0,
        "best_epoch": 0,
        "best_val_loss": float("inf"),
        "bad_epochs": 0,
        "meta": {"notes": "random weights (untrained)", "stfusion_version": stfusion.__version__},
    }


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
    agnostic: bool = False,
) -> Path:
    """A checkpoint with freshly initialised (untrained) weights, for tests and smoke runs.

    Band-tied (``agnostic=False``, format 1 networks): it predicts nonsense but exercises the
    whole inference path (tiling, checks, writing). ``agnostic=True``: the band-agnostic
    residual form, which predicts its physical baseline exactly (``bands``, ``mean``, ``std``
    and ``band_names`` are then those of any band: 1, 0, 1, ``any``).
    """
    cfg = TrainConfig(model=model, size=size, seed=seed, agnostic=agnostic)
    cfg.validate()
    cfg = cfg.resolved()
    torch.manual_seed(seed)
    if agnostic:
        bands, band_names, mean, std = 1, ["any"], 0.0, 1.0
    net = make_network(model, bands, size, agnostic=agnostic)
    data = untrained_record(
        model,
        net,
        size,
        cfg,
        band_names=band_names,
        mean=mean,
        std=std,
        training_dates=training_dates,
        per_sample=agnostic,
    )
    if model == "edcstfn":
        ae = Autoencoder(bands, channels_for(size))
        data["autoencoder"] = {**ae.config(), "state_dict": ae.state_dict(), "losses": []}
    return save_checkpoint(out, data)
