"""The checkpoint format of the deep methods: one file, written atomically, checked on load.

A checkpoint is a ``torch.save`` dictionary loaded with ``weights_only=True`` (plain types and
tensors only, so opening a file never runs code). Keys:

=====================  =========================================================================
``format``, ``version``  ``"stfusion-checkpoint"``, 2 (1: band-tied networks, still read)
``model``              method name (``dcstfn``, ``edcstfn``)
``network``            network config (``network``, ``bands``, ``channels``) and ``size``
``state_dict``         weights with the best validation loss (used for prediction)
``autoencoder``        EDCSTFN: config and weights of the feature-loss autoencoder
``bands``, ``band_names``  what the network was trained on; prediction refuses anything else
``scaling``            resolved fine/coarse scale and offset of the training files (None for
                       in-memory arrays; information: the scale check compares values)
``ratio``              resolution ratio of the training scene (None if unknown)
``norm``               per-band ``mean`` and ``std`` (physical units) used to normalise inputs;
                       band-agnostic (``network.agnostic``): ``[0]``, ``[1]`` and
                       ``per_sample: true`` (statistics of each scene, see
                       :mod:`stfusion.dl.networks.agnostic`)
``data_range``         per-band data range of the vision loss (normalised units)
``training_dates``     ISO dates of the pairs the run read, held-out ones included (the bench
                       refuses those targets)
``validation_dates``   those held out whole (``--val-dates``): validation and the choice of
                       the best epoch only, never a training example (older checkpoints:
                       ``validation.dates``)
``training_sites``     per site: its name, dates, shape and bands
``config``             every training hyper-parameter (``TrainConfig``)
``history``            one row per epoch (losses, seconds)
``epoch``, ``best_epoch``, ``best_val_loss``, ``bad_epochs``  training progress
``resume``             last weights, optimizer and random-generator states (for ``--resume``;
                       absent in stripped checkpoints)
``meta``               command line, versions, creation time, seconds, free-text notes
``state_dict_sha256``  digest of ``state_dict`` (:func:`state_digest`), checked on load: a
                       damaged file can still unpickle; absent in files written before
                       2026-12-06, which load unchecked
=====================  =========================================================================
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from stfusion.dl.networks import FusionNet, build_network
from stfusion.dl.networks.student import StudentNet
from stfusion.errors import (
    InputFileError,
    InvalidParameterError,
    ScaleMismatchError,
    warn,
)
from stfusion.io import atomic_path

FORMAT = "stfusion-checkpoint"
#: 2: band-agnostic residual networks (``network.agnostic``), normalised per sample; version 1
#: checkpoints (one network for a fixed band set, normalised with training statistics) still
#: load and predict as before.
VERSION = 2
#: Input medians this many times off the training mean mean a scale error, not a new scene.
SCALE_FACTOR = 20.0

TRAIN_HINT = (
    "train a model on your own data: stfusion train --model {model} --pair FINE1 COARSE1 "
    "--pair FINE2 COARSE2 --out model.ckpt (see docs/commands/train.md), then "
    "--param weights=model.ckpt"
)
#: A student is made by distilling a trained teacher, not by ``stfusion train``.
DISTILL_HINT = (
    "distil a student from a model trained on your own data: stfusion distill --teacher "
    "teacher.ckpt --pair FINE1 COARSE1 --pair FINE2 COARSE2 --out student.ckpt (see "
    "docs/commands/distill.md), then --param weights=student.ckpt"
)


def _plain(obj: Any) -> Any:
    """Only types that ``torch.load(weights_only=True)`` accepts (no numpy scalars, no str
    subclasses such as ``torch.__version__``)."""
    if isinstance(obj, torch.Tensor) or obj is None or type(obj) in (bool, int, float, str):
        return obj
    if isinstance(obj, dict):
        return {_plain(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    for base in (bool, int, float, str):  # subclasses, e.g. torch.__version__
        if isinstance(obj, base):
            return base(obj)
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"cannot store {type(obj).__name__} in a checkpoint")


def state_digest(state: Any) -> str:
    """SHA-256 of a state dict's names, dtypes, shapes and bytes (sorted by name)."""
    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name]
        h.update(f"{name}|".encode())
        if isinstance(t, torch.Tensor):
            t = t.detach().cpu().contiguous()
            h.update(f"{t.dtype}|{tuple(t.shape)}|".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
        else:
            h.update(repr(t).encode())
    return h.hexdigest()


def save_checkpoint(path: str | os.PathLike[str], data: dict[str, Any]) -> Path:
    """Write ``data`` to ``path`` atomically (temporary file + rename), with the digest of
    its ``state_dict`` (checked on load: torch's format does not check its data)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    out = _plain({"format": FORMAT, "version": VERSION, **data})
    if isinstance(out.get("state_dict"), dict):
        out["state_dict_sha256"] = state_digest(out["state_dict"])
    with atomic_path(p, overwrite=True) as tmp:
        torch.save(out, tmp)
    return p


def cpu_state(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A state dict on the CPU, detached (what checkpoints store)."""
    return {k: v.detach().cpu().clone() for k, v in sd.items()}


#: Bounds checked on load, before any network is built: a checkpoint beyond them is damaged
#: or forged (a layer 100000 channels wide asks for hundreds of GB). The shipped networks are
#: far inside (paper-size DCSTFN: 6 bands, widths up to 128, 0.4 M parameters).
MAX_BANDS = 1024
MAX_WIDTH = 8192
MAX_PARAMETERS = 200_000_000
#: Keys every checkpoint has, and their types after ``torch.load``.
REQUIRED: dict[str, type | tuple[type, ...]] = {
    "model": str,
    "network": dict,
    "state_dict": dict,
    "bands": int,
    "band_names": list,
    "norm": dict,
}


def _sizes(p: Path, key: str, config: Any, bands: int) -> int:
    """Check a network config's sizes; return a rough parameter count (3x3 convolutions
    between all its widths: ``9 (3 bands + sum of widths)^2``)."""
    if not isinstance(config, dict):
        raise _damaged(p, f"'{key}' is a {type(config).__name__}, not a network config")
    if key == "network" and not isinstance(config.get("network"), str):
        raise _damaged(p, "'network' names no network")
    widths = config.get("channels")
    if not isinstance(widths, list) or not widths:
        raise _damaged(p, f"'{key}' has no 'channels' list")
    if config.get("bands") != bands:
        raise _damaged(
            p, f"'{key}' is for {config.get('bands')!r} bands, the checkpoint for {bands}"
        )
    numbers = [
        v
        for k, v in config.items()
        if k not in ("channels", "state_dict", "losses")
        and isinstance(v, int)
        and not isinstance(v, bool)
    ] + widths
    for v in numbers:
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= MAX_WIDTH:
            raise _damaged(
                p,
                f"'{key}' asks for a size of {v!r} (sizes must be integers from 0 to {MAX_WIDTH})",
            )
    return 9 * (3 * bands + sum(widths)) ** 2


def _damaged(p: Path, what: str) -> InputFileError:
    return InputFileError(
        f"{p}: damaged or not written by stfusion: {what}. Nothing was built; give a "
        "checkpoint written by `stfusion train` (or train one)."
    )


def _nonfinite_tensor(state: Any) -> str | None:
    """The name of the first floating tensor of ``state`` holding NaN or infinity."""
    if not isinstance(state, dict):
        return None
    for name, t in state.items():
        if isinstance(t, torch.Tensor) and t.is_floating_point() and not bool(t.isfinite().all()):
            return str(name)
    return None


def load_weights(net: torch.nn.Module, state: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """``net.load_state_dict(state)``, its mismatches one :class:`InputFileError` naming the
    checkpoint ``path``, the tensors that differ and what to do."""
    want = net.state_dict()
    missing = [k for k in want if k not in state]
    extra = [k for k in state if k not in want]
    shapes = [
        f"{k} {tuple(state[k].shape)} (the network has {tuple(want[k].shape)})"
        for k in want
        if k in state and isinstance(state[k], torch.Tensor) and state[k].shape != want[k].shape
    ]
    problems = [
        f"{label}: {', '.join(items[:3])}{' ...' if len(items) > 3 else ''}"
        for label, items in (
            ("wrong shape", shapes),
            ("missing", missing),
            ("unexpected", extra),
        )
        if items
    ]
    if problems:
        raise InputFileError(
            f"{path}: its weights do not fit the network its config describes "
            f"({'; '.join(problems)}): damaged or edited. Give the checkpoint as `stfusion "
            "train` wrote it (or train one)."
        )
    net.load_state_dict(state)


def validate_checkpoint(p: Path, data: dict[str, Any]) -> None:
    """Keys, types and sizes of a loaded checkpoint, checked before any network is built."""
    missing = [k for k in REQUIRED if k not in data]
    if missing:
        raise _damaged(p, f"it has the stfusion marker but lacks {', '.join(map(repr, missing))}")
    for key, kind in REQUIRED.items():
        if not isinstance(data[key], kind) or isinstance(data[key], bool):
            raise _damaged(p, f"'{key}' is a {type(data[key]).__name__}")
    bands = data["bands"]
    if not 1 <= bands <= MAX_BANDS:
        raise _damaged(p, f"'bands' is {bands} (1 to {MAX_BANDS} expected)")
    if len(data["band_names"]) != bands:
        raise _damaged(p, f"{len(data['band_names'])} band names for {bands} bands")
    for key in ("mean", "std"):
        values = data["norm"].get(key)
        if (
            not isinstance(values, list)
            or len(values) != bands
            or not all(isinstance(v, int | float) and np.isfinite(v) for v in values)
        ):
            raise _damaged(p, f"'norm' has no {bands} finite '{key}' values")
    estimate = _sizes(p, "network", data["network"], bands)
    if isinstance(data.get("autoencoder"), dict):
        estimate += _sizes(p, "autoencoder", data["autoencoder"], bands)
    stored = 0
    for name, value in data["state_dict"].items():
        if not isinstance(value, torch.Tensor):
            raise _damaged(p, f"weight {name!r} is a {type(value).__name__}, not a tensor")
        stored += value.numel()
    for what, count in (("its network config", estimate), ("its stored weights", stored)):
        if count > MAX_PARAMETERS:
            raise _damaged(
                p,
                f"{what} mean about {count:.3g} parameters ({4 * count / 1e9:.3g}"
                f" GB), more than the {MAX_PARAMETERS:.0e} this stfusion accepts",
            )


def _generic(names: tuple[str, ...]) -> bool:
    return all(n == f"band{i + 1}" for i, n in enumerate(names))


@dataclass
class Checkpoint:
    """A loaded checkpoint (see the module docstring for its keys)."""

    path: str
    data: dict[str, Any]

    @property
    def model(self) -> str:
        return str(self.data["model"])

    @property
    def bands(self) -> int:
        return int(self.data["bands"])

    @property
    def band_names(self) -> tuple[str, ...]:
        return tuple(self.data["band_names"])

    @property
    def _own_dates(self) -> tuple[str, ...]:
        return tuple(str(d) for d in self.data.get("training_dates") or ())

    @property
    def training_dates(self) -> tuple[str, ...]:
        """Every date the run read, and for a distilled student its teacher's too: what the
        teacher learnt of a date reached the student through it (a training trial: the bench
        scored a student on a date only its teacher had trained on)."""
        own = self._own_dates
        teacher = (self.data.get("teacher") or {}).get("training_dates") or ()
        return own + tuple(str(d) for d in teacher if str(d) not in own)

    @property
    def validation_dates(self) -> tuple[str, ...]:
        """The ``training_dates`` held out for validation (used to choose the epoch, never
        trained on), a distilled student's teacher's among them; older checkpoints: their
        ``validation.dates``, but for those a distillation's teacher read."""
        teacher = self.data.get("teacher") or {}
        if "validation_dates" in self.data:
            own = tuple(str(d) for d in self.data["validation_dates"] or ())
        else:
            read = {str(d) for d in teacher.get("training_dates") or ()}
            held = (self.data.get("validation") or {}).get("dates") or ()
            own = tuple(str(d) for d in held if str(d) not in read)
        trained = set(self._own_dates) - set(own)
        extra = [str(d) for d in teacher.get("validation_dates") or () if str(d) not in trained]
        return own + tuple(d for d in extra if d not in own)

    @property
    def agnostic(self) -> bool:
        """True for a band-agnostic residual network (any band count, per-sample norm)."""
        return bool((self.data.get("network") or {}).get("agnostic"))

    @property
    def mean(self) -> np.ndarray:
        return np.asarray(self.data["norm"]["mean"], dtype=np.float32)

    @property
    def std(self) -> np.ndarray:
        return np.asarray(self.data["norm"]["std"], dtype=np.float32)

    @property
    def meta(self) -> dict[str, Any]:
        return dict(self.data.get("meta") or {})

    def network(self, state: str = "best") -> FusionNet:
        """The network with its best (or ``last``) weights, in eval mode on the CPU. Its
        random initial weights, at once replaced, are drawn from a forked generator: a
        prediction left the caller's torch random stream moved on (a notebook user's
        trial)."""
        with torch.random.fork_rng(devices=[]):
            net = build_network(self.data["network"])
        sd = self.data["state_dict"] if state == "best" else self.data["resume"]["state_dict"]
        load_weights(net, sd, self.path)
        return net.eval()

    def check_inputs(
        self,
        count: int,
        band_names: tuple[str, ...],
        samples: list[tuple[str, np.ndarray]],
        ratio: float | None = None,
    ) -> None:
        """Refuse inputs unlike the training data: band count, band names, value scale.

        ``samples``: (label, decimated ``(band, y, x)`` values in physical units) of the
        inputs. The scale check compares each band's median with the training mean: 20x or
        more apart means other units (reflectance x10000 vs 0-1, percent, DN), whatever the
        files' own scale factors are (an int16 file with scale 1e-4 and a float file with
        scale 1 hold the same reflectance).
        """
        hint = DISTILL_HINT if self.model == "student" else TRAIN_HINT.format(model=self.model)
        if self.agnostic:
            # Any band count, names and units: each band is normalised by its own scene
            # statistics. Only the resolution ratio is worth a warning.
            self._check_ratio(ratio)
            return
        if count != self.bands:
            raise InvalidParameterError(
                f"{self.path}: trained on {self.bands} bands ({', '.join(self.band_names)}), "
                f"the inputs have {count}. These weights only fit data like their training "
                f"data; {hint}."
            )
        names = tuple(band_names)
        if names != self.band_names:
            if not _generic(names) and not _generic(self.band_names):
                raise InvalidParameterError(
                    f"{self.path}: trained on bands {', '.join(self.band_names)}, the inputs "
                    f"have {', '.join(names)}. Give the bands in the training order, or {hint}."
                )
            warn(
                f"{self.path}: trained on bands {', '.join(self.band_names)}; the inputs have "
                f"{', '.join(names)}. Make sure they are the same bands in the same order."
            )
        mean = np.abs(self.mean.astype(np.float64))
        for label, arr in samples:
            for b in range(min(arr.shape[0], mean.size)):
                v = arr[b][np.isfinite(arr[b])]
                if v.size == 0 or mean[b] <= 0:
                    continue
                med = float(np.median(np.abs(v)))
                factor = max(med, mean[b]) / max(min(med, mean[b]), 1e-30)
                if factor >= SCALE_FACTOR:
                    raise ScaleMismatchError(
                        f"{label}: band {b + 1} ({self.band_names[b]}) has median {med:.4g}, "
                        f"the training data of {self.path} had mean {mean[b]:.4g} ({factor:.0f}x "
                        f"apart): the scales differ. Give --fine-scale/--coarse-scale so the "
                        f"inputs are in the training units, or {hint}."
                    )
        self._check_ratio(ratio)

    def _check_ratio(self, ratio: float | None) -> None:
        want_ratio = self.data.get("ratio")
        if ratio is not None and want_ratio and abs(ratio - want_ratio) > 0.05 * want_ratio:
            warn(
                f"{self.path}: trained at resolution ratio {want_ratio:g}, the inputs have "
                f"{ratio:g}; the network may not transfer."
            )


def load_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Load and validate a checkpoint (on the CPU); clear errors for anything else."""
    p = Path(path)
    if not p.exists():
        hint = (  # distill --teacher takes shipped:MODEL; a method's weights= names its own
            " A method's weights= takes shipped (or demo) for its own shipped weights; "
            "another model's are that model's (--method MODEL)."
            if str(path).startswith("shipped:")
            else " Check the path."
        )
        raise InputFileError(f"{p}: checkpoint not found.{hint}")
    if p.is_dir():
        raise InputFileError(f"{p}: is a directory, not a checkpoint file.")
    try:
        data = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:
        with open(p, "rb") as fh:
            torch_file = fh.read(4) == b"PK\x03\x04"  # torch saves a zip archive
        if torch_file:  # a training trial's truncated m.ckpt was called a foreign file
            raise InputFileError(
                f"{p}: a torch file that cannot be read ({type(exc).__name__}: {exc}): "
                "damaged or incomplete (a copy or download cut short?). Copy it again; a "
                "training run's own state, beside it in NAME.lightning/, is not touched."
            ) from None
        raise InputFileError(
            f"{p}: not a stfusion checkpoint (torch cannot load it: "
            f"{type(exc).__name__}). Give a file written by `stfusion train`."
        ) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise InputFileError(
            f"{p}: not a stfusion checkpoint (no '{FORMAT}' marker). Give a file written by "
            "`stfusion train`."
        )
    if int(data.get("version", 0)) > VERSION:
        raise InputFileError(
            f"{p}: checkpoint format version {data['version']} is newer than this stfusion "
            f"reads ({VERSION}); upgrade stfusion."
        )
    validate_checkpoint(p, data)
    stored = data.get("state_dict_sha256")
    if stored is not None and stored != state_digest(data["state_dict"]):
        raise InputFileError(
            f"{p}: damaged: its weights differ from those written (their SHA-256 does not "
            "match the one stored with them). Copy the file again, or retrain."
        )
    bad = _nonfinite_tensor(data.get("state_dict"))
    if bad is not None:
        raise InputFileError(
            f"{p}: weight tensor {bad!r} holds NaN or infinite values (a diverged training "
            "run, or a damaged file): its predictions would be NaN. Use an earlier checkpoint "
            "or retrain (e.g. with a lower learning rate)."
        )
    return Checkpoint(str(p), data)


def strip_checkpoint(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> Path:
    """Copy a checkpoint without its resume state (optimizer etc.): smaller, not resumable."""
    ck = load_checkpoint(src)
    data = {k: v for k, v in ck.data.items() if k not in ("resume", "format", "version")}
    return save_checkpoint(dst, data)


class StudentCheckpoint(Checkpoint):
    """A checkpoint that can build the student network before it is in ``network_class``.

    Here, not in :mod:`stfusion.dl.distill`: predicting with a student must not import the
    training stack (lightning, torchmetrics, matplotlib: +200 MB resident)."""

    def network(self, state: str = "best") -> FusionNet:
        cfg = self.data["network"]
        if cfg.get("network") != StudentNet.name or cfg.get("agnostic"):
            return super().network(state)
        with torch.random.fork_rng(devices=[]):  # as Checkpoint.network
            net = StudentNet(int(cfg["bands"]), tuple(int(c) for c in cfg["channels"]))
        load_weights(
            net,
            self.data["state_dict"] if state == "best" else self.data["resume"]["state_dict"],
            self.path,
        )
        return net.eval()


def load_student(path: str | os.PathLike[str]) -> StudentCheckpoint:
    """Load a checkpoint (checked as :func:`~stfusion.dl.checkpoint.load_checkpoint`) whose
    :meth:`~Checkpoint.network` also builds students; usable by ``Predictor`` and
    ``predict_arrays``."""
    ck = load_checkpoint(path)
    return StudentCheckpoint(ck.path, ck.data)
