"""Knowledge distillation: a small, fast student CNN trained from a teacher's outputs and features.

Hinton, G., Vinyals, O., Dean, J. (2015). Distilling the knowledge in a neural network.
arXiv:1503.02531. Feature ("hint") distillation through a 1x1 adapter: Romero, A. et al.
(2015). FitNets: hints for thin deep nets. ICLR.

``distill(pairs, teacher, out, DistillConfig(...))`` (and ``stfusion distill``) trains a
:class:`~stfusion.dl.networks.student.StudentNet` with the data and engine of
:mod:`stfusion.dl.train` (:class:`stfusion.dl.engine.DistillModule`): the same scene opening,
streamed examples (ordered pairs of dates), per-band normalisation, validation sample, Adam,
early stopping, atomic checkpoint after every epoch and loss log (``<out>.log.csv`` +
``<out>.loss.png``).
Each training batch also goes through the frozen teacher, and the loss is

    L = L_gt + alpha * L_teacher + beta * L_feature

- ``L_gt``: MSE between the student's prediction and the true fine image (valid pixels);
- ``L_teacher``: MSE between the student's and the teacher's predictions (valid pixels). For
  regression the teacher's prediction is the "soft target" of Hinton et al.; there are no
  class probabilities, so no temperature;
- ``L_feature``: MSE between the student's last feature map mapped by a learned 1x1 adapter to
  the teacher's width, and the teacher's feature map at ``feature_layer`` (captured by a
  forward hook), divided by the mean square of the teacher's features so that ``beta`` does
  not depend on the teacher's feature scale. When the teacher's features are coarser (pooling
  teachers), the adapted student features are average-pooled to their size.

``feature_layer="auto"`` picks the teacher's penultimate feature map: the output of the last
module, in execution order, before the output layer that has other than ``bands`` channels
and is not larger than the input, computed per image (a layer that stacks the inputs of
several pairs along the batch cannot be matched; padding modules are skipped). For EDCSTFN
that is
``decoder.3`` (the ReLU before the 1x1 output convolution: 32 channels at paper size), for
DCSTFN ``reconstruct.3``. Any module name of the teacher (``dict(net.named_modules())``) can
be given instead; :func:`feature_layers` lists them with their output shapes.

Everything is computed in the student's normalisation (that of the distillation pairs); the
teacher's inputs and outputs are converted from and to its own stored normalisation, so a
teacher trained on other pairs still sees inputs in its units. The teacher is checked against
the pairs like any deep method (band count and names, value scale).

A band-agnostic teacher (checkpoint format 2, what ``stfusion train`` writes and stfusion
ships) gets a band-agnostic student with the teacher's baseline and box radius: both are
normalised per sample (nothing to convert), every band is a sample of the batch, and the
teacher's hooked features are matched band by band (its band-by-band CPU inference is off
while it runs, :func:`~stfusion.dl.networks.agnostic.whole_batch`).

Rules and reports:

- the student must have at most a tenth of the teacher's parameters (the adapter, used only in
  training, is not counted), else :class:`~stfusion.errors.InvalidParameterError`;
- early stopping and the best weights use the validation ground-truth MSE (the student's real
  task); the log also records the student's RMSE against the teacher on the block;
- at the end, the teacher's and the student's validation RMSE (with the additive baseline's)
  and their CPU forward time per megapixel on the same tiles (``speed_tile`` px anchored at
  the origin, grown by the larger default overlap, the first :data:`SPEED_TILES` of the first
  example) and thread count are measured, stored in the checkpoint (``distillation``) and
  returned.

The validation block defaults to the teacher's (its ``val_fraction``), so that on the
teacher's own training pairs the block is one the teacher never trained on; so do the held-out
dates (its ``val_dates`` found among the pairs' dates) unless ``val_dates`` is given.
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Unpack

import numpy as np
import torch
from rasterio.windows import Window
from torch import nn

from stfusion.dl import datasets as ds
from stfusion.dl import require_lightning
from stfusion.dl.checkpoint import (
    Checkpoint,
    StudentCheckpoint,
    cpu_state,
    load_checkpoint,
    load_student,
    save_checkpoint,
)
from stfusion.dl.distill_teacher import (
    PROBE_BATCH,
    DistillLoss,
    Teacher,
    auto_feature_layer,
    feature_layers,
    feature_loss,
    masked_mse,
)
from stfusion.dl.engine_settings import deterministic, resume_path
from stfusion.dl.infer import default_overlap
from stfusion.dl.losses import content_loss
from stfusion.dl.networks import FusionNet, make_network, network_names
from stfusion.dl.networks.agnostic import AgnosticNet
from stfusion.dl.networks.student import (
    STUDENT_SIZES,
    StudentNet,
    make_student,
    student_channels,
)
from stfusion.dl.run_inputs import checkpoint_path
from stfusion.dl.train import (
    RunData,
    check_resume,
    checkpoint_record,
    open_training_sites,
    run_data,
    settings_of,
    start_training,
    untrained_record,
)
from stfusion.dl.train_config import (
    ResumableInputs,
    RunResult,
    check_engine_options,
    check_inputs,
    site_inputs,
)
from stfusion.errors import InvalidParameterError, RunInterrupted, interrupted_how
from stfusion.io import file_sha256
from stfusion.run_config import DistillSettings, check_iso_date, shipped_weights
from stfusion.scene import ImageLike, Scene

if TYPE_CHECKING:  # imported where the run starts (Lightning: 4-5 s), after its checks
    from stfusion.dl import engine

#: A student may have at most this fraction of the teacher's parameters.
MAX_PARAMETER_FRACTION = 0.1
#: The closing speed comparison times at most this many tiles (a few megapixels at most).
SPEED_TILES = 4


@dataclass
class DistillConfig(DistillSettings):
    """:class:`stfusion.run_config.DistillSettings` (the fields and defaults, without torch)
    with the checks that need the student network."""

    def validate(self) -> None:
        student_channels(self.student)
        for name in ("speed_tile", "speed_repeat"):
            if int(getattr(self, name)) < 1:
                raise InvalidParameterError(f"{name} must be >= 1, got {getattr(self, name)}.")
        self.check_values()  # the shared run values, val_fraction 0 being the teacher's
        check_engine_options(self)
        for name in ("alpha", "beta"):
            v = float(getattr(self, name))
            if not (v >= 0 and math.isfinite(v)):
                raise InvalidParameterError(f"{name} must be a number >= 0, got {v}.")


@dataclass
class DistillResult(RunResult):
    """What a distillation run produced, with the closing comparison to the teacher."""

    teacher_parameters: int
    student_parameters: int
    feature_layer: str
    teacher_val_rmse: float
    student_val_rmse: float
    additive_val_rmse: float
    teacher_s_per_mp: float
    student_s_per_mp: float
    threads: int
    history: list[dict[str, float]] = field(default_factory=list)
    #: The student's size (the stored one when the run was resumed).
    student_size: str = ""

    @property
    def speedup(self) -> float:
        """Teacher time / student time (same tiles, same threads)."""
        return self.teacher_s_per_mp / max(self.student_s_per_mp, 1e-12)


# ----------------------------------------------------------------------------- checkpoints


def parameter_count(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def check_student_size(
    student_params: int,
    teacher_params: int,
    student: str = "",
    teacher: str = "teacher",
    fitting: Sequence[str] = (),
) -> None:
    """Refuse a student with more than a tenth of the teacher's parameters; ``fitting``: the
    sizes that would do (named in the message)."""
    if student_params > MAX_PARAMETER_FRACTION * teacher_params:
        choose = (
            f"choose --student {' or '.join(fitting)}"
            if fitting
            else "no student size is small enough for it; distil a larger teacher"
        )
        raise InvalidParameterError(
            f"student {student} has {student_params:,} parameters, more than a tenth of the "
            f"{teacher}'s {teacher_params:,} (at most {int(teacher_params * 0.1):,}): a "
            f"distilled student must be at least 10x smaller; {choose}."
        )


# ----------------------------------------------------------------------------- speed


def _speed_tiles(
    data: RunData, tile: int, overlap: int, multiple: int, max_tiles: int = SPEED_TILES
) -> tuple[list[list[torch.Tensor]], float]:
    """The first example cut into ``tile`` px tiles anchored at the origin (the first
    ``max_tiles`` in row order), each grown by ``overlap`` px (edge-replicated outside the
    scene) and padded to ``multiple``; and the megapixels they predict. Read window by
    window from the files."""
    ex = ds.pair_examples(data.sites, data.held_out, 0.0)[0]
    site = data.sites[ex.site]
    (f_r, c_r), (_f, c_t) = site.scene.pairs[ex.ref], site.scene.pairs[ex.tgt]
    m = data.norm.mean.astype(np.float32)[:, None, None]
    sd = data.norm.std.astype(np.float32)[:, None, None]
    h, w = site.shape
    tiles = []
    pixels = 0
    for r, c in [(r, c) for r in range(0, h, tile) for c in range(0, w, tile)][:max_tiles]:
        r0, c0 = r - overlap, c - overlap
        r1 = r0 + -(-(min(tile, h - r) + 2 * overlap) // multiple) * multiple
        c1 = c0 + -(-(min(tile, w - c) + 2 * overlap) // multiple) * multiple
        rr0, cc0, rr1, cc1 = max(r0, 0), max(c0, 0), min(r1, h), min(c1, w)
        pad = ((0, 0), (rr0 - r0, r1 - rr1), (cc0 - c0, c1 - cc1))
        win = Window(cc0, rr0, cc1 - cc0, rr1 - rr0)
        arrays = [np.pad((src.read(win) - m) / sd, pad, mode="edge") for src in (f_r, c_r, c_t)]
        tiles.append([torch.from_numpy(np.nan_to_num(a))[None] for a in arrays])
        pixels += min(tile, h - r) * min(tile, w - c)
    return tiles, pixels / 1e6


def forward_seconds_per_mp(
    net: nn.Module, tiles: list[list[torch.Tensor]], megapixels: float, repeat: int = 3
) -> float:
    """Fastest of ``repeat`` timings of ``net`` over ``tiles`` (CPU), per output megapixel."""
    net = net.eval()
    best = float("inf")
    with torch.inference_mode():
        net(*tiles[0])  # warm-up (allocations, kernel selection)
        for _ in range(repeat):
            t0 = time.perf_counter()
            for t in tiles:
                net(*t)
            best = min(best, time.perf_counter() - t0)
    return best / megapixels


# ----------------------------------------------------------------------------- the run


def measure(
    module: Any,
    teacher: Teacher,
    data: RunData,
    val_loader: Any,
    cfg: DistillConfig,
    best_state: dict[str, torch.Tensor],
    history: list[dict[str, float]],
) -> dict[str, Any]:
    """Validation RMSE of the best student (and of the teacher and the additive baseline on
    the same sample), and CPU speed of teacher and student on the same tiles."""
    from stfusion.dl import engine

    module.net.load_state_dict(best_state)
    scores = engine.evaluate(module, val_loader)
    student = copy.deepcopy(module.net).cpu().eval()
    t_net = copy.deepcopy(teacher.net).cpu().eval()
    multiple = math.lcm(int(t_net.multiple), int(student.multiple))
    overlap = max(
        default_overlap(int(t_net.radius), int(t_net.multiple)),
        default_overlap(int(student.radius), int(student.multiple)),
    )
    tiles, mp = _speed_tiles(data, cfg.speed_tile, overlap, multiple)
    t_speed = forward_seconds_per_mp(t_net, tiles, mp, cfg.speed_repeat)
    s_speed = forward_seconds_per_mp(student, tiles, mp, cfg.speed_repeat)
    return {
        "teacher_val_rmse": scores["val_rmse_teacher"],
        "student_val_rmse": scores["val_rmse"],
        "additive_val_rmse": scores["val_rmse_additive"],
        "speed": {
            "device": "cpu",
            "threads": torch.get_num_threads(),
            "tile": cfg.speed_tile,
            "overlap": overlap,
            "tiles": len(tiles),
            "megapixels": mp,
            "teacher_s_per_mp": t_speed,
            "student_s_per_mp": s_speed,
            "speedup": t_speed / max(s_speed, 1e-12),
        },
    }


def _teacher_info(
    ck: Checkpoint, path: Path, net: FusionNet, layer: str | None, width: int | None
) -> dict[str, Any]:
    hist = ck.data.get("history") or []
    best = next((r for r in hist if r.get("epoch") == ck.data.get("best_epoch")), None)
    return {
        "path": str(path),
        "file": path.name,
        "sha256": file_sha256(path),
        "model": ck.model,
        "size": ck.data["network"].get("size"),
        "network": {k: v for k, v in ck.data["network"].items()},
        "parameters": parameter_count(net),
        "training_dates": list(ck.training_dates),
        "validation_dates": list(ck.validation_dates),
        "best_epoch": ck.data.get("best_epoch"),
        "train_val_rmse": None if best is None else best.get("val_rmse"),
        "command": ck.meta.get("command"),
        "feature_layer": layer,
        "feature_channels": width,
    }


#: The shipped teacher of ``--teacher shipped`` (the shipped student's).
SHIPPED_TEACHER = "edcstfn"
#: Shipped networks with fewer than 10x the smallest student's parameters (STFDCNN small:
#: 7,106), which no student may distil; not offered as ``shipped:MODEL``.
TOO_SMALL_TO_TEACH = ("stfdcnn",)


def teacher_path(spec: str | os.PathLike[str]) -> Path:
    """The checkpoint named by ``spec``: a file; or ``shipped`` (the shipped EDCSTFN, the
    shipped student's teacher) or ``shipped:MODEL`` (another deep method's shipped weights)
    when no file has that name."""
    path = Path(spec)
    text = str(spec)
    if path.exists() or not (text == "shipped" or text.startswith("shipped:")):
        return path
    model = text.partition(":")[2] or SHIPPED_TEACHER
    choices = [m for m in network_names() if m not in (StudentNet.name, *TOO_SMALL_TO_TEACH)]
    if model in TOO_SMALL_TO_TEACH:
        raise InvalidParameterError(
            f"--teacher {text}: the shipped {model} network is smaller than 10x any student "
            f"size; choose shipped:{' or shipped:'.join(choices)}, or give a larger "
            "checkpoint file."
        )
    if model not in choices:
        raise InvalidParameterError(
            f"--teacher {text}: no such model; choose shipped:{' or shipped:'.join(choices)}, "
            "or give a checkpoint file."
        )
    found = shipped_weights(model)
    if not found.exists():
        raise InvalidParameterError(
            f"--teacher {text}: this installation has no shipped weights of {model} ({found})."
        )
    return found


def _open_teacher(
    teacher: str | os.PathLike[str] | Checkpoint, out: Path
) -> tuple[Checkpoint, Path]:
    """The teacher checkpoint and its path, checked to be a non-student elsewhere than
    ``out``."""
    t_ck = teacher if isinstance(teacher, Checkpoint) else load_checkpoint(teacher_path(teacher))
    t_path = Path(t_ck.path)
    if out.resolve() == t_path.resolve():
        raise InvalidParameterError(f"{out}: is the teacher; write the student elsewhere.")
    if t_ck.model == StudentNet.name:
        raise InvalidParameterError(f"{t_path}: is a student; distil from a larger teacher.")
    return t_ck, t_path


def _check_same_teacher(previous: Checkpoint, t_path: Path) -> None:
    """``--resume`` continues a distillation from the teacher it started with."""
    was = previous.data.get("teacher") or {}
    if was.get("sha256") != file_sha256(t_path):
        raise InvalidParameterError(
            f"--resume: {previous.path} was distilled from {was.get('path', 'another teacher')} "
            f"(SHA-256 {str(was.get('sha256', '?'))[:12]}...), not {t_path}; give that "
            "--teacher, or start a new run (--overwrite, or another --out)."
        )


def _check_sites(
    sites: list[ds.Site], t_ck: Checkpoint, t_net: FusionNet, cfg: DistillConfig, bands: int
) -> tuple[int, int]:
    """Check every site's inputs against the teacher and the size of a student of ``bands``
    bands against the teacher's; the student's and the teacher's parameter counts."""
    for site in sites:
        sc = site.scene
        samples = [(s.label, s.sample(1 << 16)) for pair in sc.pairs for s in pair]
        t_ck.check_inputs(sc.count, tuple(sc.band_names), samples, sc.ratio)

    counts = {k: parameter_count(make_student(bands, k)) for k in STUDENT_SIZES}
    student_params, teacher_params = counts[cfg.student], parameter_count(t_net)
    fitting = [k for k, n in counts.items() if n <= MAX_PARAMETER_FRACTION * teacher_params]
    t_desc = f"teacher ({t_ck.model} {t_ck.data['network'].get('size', '')})".replace(" )", ")")
    check_student_size(student_params, teacher_params, cfg.student, t_desc, fitting)
    return student_params, teacher_params


def _feature_layer(
    layer: str | None, t_ck: Checkpoint, t_net: FusionNet, bands: int
) -> tuple[str | None, int | None]:
    """The teacher's feature layer to match (``auto`` resolved; for a band-agnostic teacher
    a name of its single-band network, e.g. ``decoder.3``, also without the wrapper's
    ``inner.``) and its channel count (None when it gives no 4-D map); refused when the
    layer stacks its inputs."""
    modules = dict(t_net.named_modules())
    if isinstance(t_net, AgnosticNet) and layer not in modules and f"inner.{layer}" in modules:
        layer = f"inner.{layer}"
    layers = feature_layers(t_net, bands, 32, also=layer)
    if layer == "auto":
        layer = auto_feature_layer(t_net, bands, layers)
    shape = next((sh for n, sh in layers if n == layer), None)
    if shape is not None and shape[0] != PROBE_BATCH:
        raise InvalidParameterError(
            f"feature layer {layer!r} of the teacher ({t_ck.model}) stacks its inputs "
            f"(batch {PROBE_BATCH} in, {shape[0]} out: e.g. one pass per pair), so its "
            "features do not match the student's; choose another --feature-layer, or "
            "--beta 0 to distil outputs only."
        )
    return layer, None if shape is None else int(shape[1])


def _make_student(teacher: FusionNet, bands: int, size: str) -> StudentNet | AgnosticNet:
    """A fresh student of ``size`` and ``bands`` bands: for a band-agnostic teacher,
    band-agnostic too and correcting the teacher's baseline (so both learn the same
    correction)."""
    if not isinstance(teacher, AgnosticNet):
        return make_student(bands, size)
    net = make_network(
        StudentNet.name,
        1,
        size,
        agnostic=True,
        baseline=teacher.baseline_kind,
        radius=teacher.smooth,
    )
    assert isinstance(net, AgnosticNet)
    return net


def _result(
    out: Path,
    rec: engine.RunRecorder,
    patience: int,
    summary: dict[str, Any],
    teacher_params: int,
    student_params: int,
    layer: str | None,
    size: str,
) -> DistillResult:
    """The :class:`DistillResult` of a finished run (``summary``: :func:`measure`'s)."""
    speed = summary["speed"]
    return DistillResult(
        checkpoint=out,
        epochs=rec.epoch,
        best_epoch=rec.best_epoch,
        best_val_loss=rec.best_loss,
        seconds=rec.seconds,
        stopped_early=rec.bad >= patience,
        teacher_parameters=teacher_params,
        student_parameters=student_params,
        feature_layer=layer or "",
        teacher_val_rmse=summary["teacher_val_rmse"],
        student_val_rmse=summary["student_val_rmse"],
        additive_val_rmse=summary["additive_val_rmse"],
        teacher_s_per_mp=speed["teacher_s_per_mp"],
        student_s_per_mp=speed["student_s_per_mp"],
        threads=int(speed["threads"]),
        history=rec.history,
        student_size=size,
    )


@contextlib.contextmanager
def _comparing(out: Path) -> Iterator[None]:
    """The closing comparison: Ctrl-C or a signal there says that the student is saved
    already, without the comparison, and how to finish it."""
    try:
        yield
    except Exception:
        raise
    except BaseException as exc:
        how, code = interrupted_how(exc)
        raise RunInterrupted(
            f"{how} while comparing the student with its teacher; {out} holds the trained "
            "student without the comparison: run the same command with --resume (in place of "
            "--overwrite, if given) to finish it.",
            code,
        ) from None


def _teachers_validation(cfg: DistillConfig, t_ck: Any, sites: Sequence[Any]) -> None:
    """The teacher's validation block (``val_fraction`` 0) and held-out dates (none given:
    those among these pairs' dates), held out again: a student trained on them, and a
    teacher scored on its training block, was the "held-out" comparison before."""
    taught = t_ck.data.get("config") or {}
    if not cfg.val_fraction:
        cfg.val_fraction = float(taught.get("val_fraction", 0.2))
    if not cfg.val_dates:
        known = {d for site in sites for d in site.dates or []}
        held = [check_iso_date(str(d), "--val-dates") for d in taught.get("val_dates") or []]
        cfg.val_dates = [d for d in held if d in known]


def distill(
    pairs: Sequence[tuple[ImageLike, ImageLike]] | Scene,
    teacher: str | os.PathLike[str] | Checkpoint,
    out: str | os.PathLike[str],
    config: DistillConfig | None = None,
    **inputs: Unpack[ResumableInputs],
) -> DistillResult:
    """Distil the ``teacher`` checkpoint into a student on ``pairs`` (two or more dates) and
    write the student checkpoint ``out`` (an ordinary ``student`` model afterwards).

    ``config`` (a :class:`DistillConfig`) holds the hyper-parameters; the keyword ``inputs``
    are :func:`stfusion.dl.train.train`'s
    (:class:`~stfusion.dl.train_config.ResumableInputs`): ``meta`` (command line, notes) is
    stored with the checkpoint's metadata, ``progress`` receives one dict per step and per
    epoch (the events of :func:`stfusion.dl.train.train`), ``resume=True`` continues the run
    saved in ``out`` (its stored configuration, but for the options of
    :data:`~stfusion.dl.train_config.RESUME_KEEP`; the same teacher and pairs).
    """
    require_lightning()
    check_inputs("distill", inputs, ResumableInputs.__optional_keys__)
    cfg = copy.deepcopy(config) if config is not None else DistillConfig()
    out = checkpoint_path(out)
    t_ck, t_path = _open_teacher(teacher, out)
    previous, cfg = start_training(out, cfg, inputs, model=StudentNet.name, pairs=pairs)
    cfg.validate()
    if previous is not None:
        _check_same_teacher(previous, t_path)
    t_net = t_ck.network()
    agnostic = t_ck.agnostic  # then so is the student, with the teacher's baseline
    sites = open_training_sites(pairs, any_bands=agnostic, **site_inputs(inputs))
    bands = 1 if agnostic else sites[0].scene.count
    if previous is not None:
        check_resume(previous, sites, inputs)
    student_params, teacher_params = _check_sites(sites, t_ck, t_net, cfg, bands)
    _teachers_validation(cfg, t_ck, sites)
    multiple = math.lcm(int(t_net.multiple), int(StudentNet.multiple))
    data = run_data(sites, cfg, multiple, norm=ds.Normalisation.identity() if agnostic else None)
    info = dict(inputs.get("meta") or {})
    settings = settings_of(cfg, inputs)
    with deterministic(cfg.device, cfg.threads):  # also the probe: 2 threads crawl when busy
        layer, width = (
            _feature_layer(cfg.feature_layer, t_ck, t_net, bands) if cfg.beta else (None, None)
        )
        tm = Teacher(t_ck, data.norm.mean, data.norm.std, layer, t_net)
        if layer is not None and width is None:
            raise InvalidParameterError(
                f"feature layer {layer!r} of the teacher gives no 4-D feature map; choose "
                "another (--feature-layer)."
            )
        info["teacher"] = _teacher_info(t_ck, t_path, tm.net, layer, width)
        import lightning as L

        from stfusion.dl import engine

        L.seed_everything(cfg.seed, workers=True, verbose=False)
        student = _make_student(t_net, bands, cfg.student)
        adapter = (
            nn.Conv2d(student.channels[-1], width, 1)
            if (cfg.beta and layer is not None and width)
            else None
        )
        module = engine.DistillModule(
            student,
            adapter,
            tm,
            DistillLoss(cfg.alpha, cfg.beta),
            content_loss("mse"),
            cfg.lr,
            data.norm.std,
            cfg.alpha,
        )
        summary: dict[str, Any] = {}

        def payload(rec: engine.RunRecorder, mod: engine.FusionModule) -> dict[str, Any]:
            run_meta = {k: v for k, v in info.items() if k != "teacher"}
            network = {**student.config(), "size": cfg.student}
            rec_out = checkpoint_record(StudentNet.name, network, data, cfg, rec, run_meta, inputs)
            rec_out["teacher"] = info["teacher"]
            # a held-out date the teacher trained on reached the student through it
            taught = set(info["teacher"]["training_dates"])
            taught -= set(info["teacher"]["validation_dates"])
            rec_out["validation_dates"] = [d for d in data.held_out if d not in taught]
            rec_out["parameters"] = parameter_count(student)
            rec_out["resume"] = {
                "state_dict": cpu_state(student.state_dict()),
                "lightning": resume_path(out).name,
            }
            if adapter is not None:
                rec_out["adapter"] = {
                    "feature_layer": tm.feature_layer,
                    "state_dict": cpu_state(adapter.state_dict()),
                }
            if summary:
                rec_out["distillation"] = summary
            return rec_out

        train_dl, val_dl = data.loaders(cfg.batch, cfg.workers)
        progress = inputs.get("progress")
        rec = engine.fit(
            module,
            train_dl,
            val_dl,
            out,
            settings,
            payload,
            resume=previous is not None,
            progress=progress,
        )
        # a resumed run with nothing left to train keeps its checkpoint and its measurement
        kept = previous.data.get("distillation") if previous is not None else None
        done = int(previous.data.get("epoch") or 0) if previous is not None else 0
        if rec.epoch and (rec.epoch > done or not kept):
            with _comparing(out):
                summary.update(measure(module, tm, data, val_dl, cfg, rec.best_state, rec.history))
            save_checkpoint(out, {**payload(rec, module), "run_id": rec.run_id})
        elif kept:
            summary.update(kept)
    return _result(
        out, rec, cfg.patience, summary, teacher_params, student_params, layer, cfg.student
    )


def random_student_checkpoint(
    out: str | os.PathLike[str],
    bands: int,
    *,
    band_names: Sequence[str] | None = None,
    size: str = "nano",
    mean: float | Sequence[float] = 0.2,
    std: float | Sequence[float] = 0.1,
    training_dates: Sequence[str] = (),
    seed: int = 0,
) -> Path:
    """A student checkpoint with random (untrained) weights, for tests and smoke runs.

    The head is random too (not the zero start of training), so it does not merely return
    the additive prediction.
    """
    torch.manual_seed(seed)
    net = make_student(bands, size)
    nn.init.normal_(net.head.weight, std=0.1)
    data = untrained_record(
        StudentNet.name,
        net,
        size,
        DistillConfig(student=size, seed=seed),
        band_names=band_names,
        mean=mean,
        std=std,
        training_dates=training_dates,
    )
    data["parameters"] = parameter_count(net)
    return save_checkpoint(out, data)


__all__ = [
    "MAX_PARAMETER_FRACTION",
    "DistillConfig",
    "DistillLoss",
    "DistillResult",
    "StudentCheckpoint",
    "Teacher",
    "auto_feature_layer",
    "check_student_size",
    "distill",
    "feature_layers",
    "feature_loss",
    "forward_seconds_per_mp",
    "load_student",
    "masked_mse",
    "parameter_count",
    "random_student_checkpoint",
    "teacher_path",
]
