"""The start of a run (train, STFDCNN's, distill): ``--out`` checked for a fresh or a resumed
run, and a resumed run's configuration (the stored one, with the options that may change)
and inputs (the same training: :func:`stfusion.dl.run_inputs.input_changes`).

Moved out of :mod:`stfusion.dl.train`, which still exports these names.
"""

from __future__ import annotations

from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any, TypeVar

from stfusion.dl import datasets as ds
from stfusion.dl.checkpoint import Checkpoint, load_checkpoint
from stfusion.dl.engine_files import check_new_run, check_resumable
from stfusion.dl.run_inputs import check_out, check_pairs_differ, input_changes
from stfusion.dl.train_config import RESUME_KEEP, ResumableInputs, SiteInputs
from stfusion.errors import InvalidParameterError, OptionError, OutputExistsError, warn

__all__ = ["check_resume", "resumed_config", "start_run", "start_training", "training_inputs"]

C = TypeVar("C")  # a run's configuration (TrainConfig, STFDCNNConfig, DistillConfig)


def _default(f: Any) -> Any:
    """A dataclass field's default (``MISSING`` when it has none)."""
    if f.default is not MISSING:
        return f.default
    if f.default_factory is not MISSING:
        return f.default_factory()
    return MISSING


def _effective(previous: Checkpoint, name: str, value: Any) -> Any:
    """The value a resumed run uses for setting ``name`` (stored as ``value``): ``auto``
    resolved where the checkpoint's network says (the baseline it corrects)."""
    if name == "baseline" and value == "auto":
        kind = (previous.data.get("network") or {}).get("agnostic")
        return kind if isinstance(kind, str) else value
    return value


def resumed_config(cls: Any, previous: Checkpoint, cfg: Any) -> Any:
    """The stored configuration of ``previous``, with the options of :data:`RESUME_KEEP`
    taken from ``cfg``."""
    stored = previous.data.get("config") or {}
    new = cls(**{f.name: stored.get(f.name, getattr(cfg, f.name)) for f in fields(cls)})
    for k in RESUME_KEEP:
        if hasattr(cfg, k):
            setattr(new, k, getattr(cfg, k))
    # Options set away from their defaults that the resumed run does not use: said, not
    # silently dropped (a resumed run continues the stored one).
    ignored = []
    for f in fields(cls):
        given, default = getattr(cfg, f.name), _default(f)
        used = _effective(previous, f.name, getattr(new, f.name))
        if (
            f.name not in RESUME_KEEP
            and f.name != "init"  # where a fresh run starts (the command line says it)
            and default is not MISSING
            and given != default
            and given != used
        ):
            ignored.append(f"{f.name} {given!r} (the run's: {used!r})")
    if ignored:
        warn(
            f"--resume continues {previous.path} with its stored settings; ignored: "
            f"{'; '.join(ignored)}. Only {', '.join(RESUME_KEEP)} may change; train afresh "
            "(--overwrite) to change the others."
        )
    return new


def start_run(out: Path, resume: bool, overwrite: bool) -> Checkpoint | None:
    """Check ``out`` for a fresh or resumed run; the previous checkpoint when resuming. A
    fresh run also needs ``overwrite`` for the files it writes beside ``out``, and never
    deletes what stfusion did not write (:func:`stfusion.dl.engine_files.check_new_run`). An
    earlier run's files stay as they are until the new run saves its first epoch
    (:func:`stfusion.dl.engine_files.claim_output`)."""
    if out.is_dir():  # before any training (it was found only when writing, at the end)
        raise OutputExistsError(
            f"{out}: is a folder; --out names the checkpoint file to write, e.g. "
            f"{out / 'model.ckpt'}."
        )
    if resume and overwrite:
        raise OptionError(
            "--resume continues the run in --out and --overwrite replaces it: give one."
        )
    if resume:
        check_resumable(out)
        return load_checkpoint(out)
    if out.exists() and not overwrite:
        raise OutputExistsError(f"{out}: exists. Give --overwrite to replace it, or --resume.")
    check_new_run(out, overwrite)
    return None


def _a(word: str) -> str:
    return f"an {word}" if word[:1].lower() in "aeiou" else f"a {word}"


def start_training(
    out: Path, cfg: C, inputs: ResumableInputs, model: str | None = None, pairs: Any = None
) -> tuple[Checkpoint | None, C]:
    """The start of a training run (:func:`stfusion.dl.train.train`, STFDCNN's, distill's):
    ``out`` checked against the inputs (``pairs`` and the catalog) and for a fresh or
    resumed run (:func:`start_run`), and the configuration to validate: ``cfg``, or when
    resuming the previous run's (a checkpoint of ``model`` if given) with the options of
    :data:`RESUME_KEEP` from ``cfg``. A resumed run keeps the earlier ``--note`` unless it
    gives one."""
    if inputs.get("dates") and not pairs:  # a trial's --dates beside --catalog went unread
        raise InvalidParameterError(
            "--dates gives the dates of the --pair images, and no --pair is given: a "
            "catalog's dates are its date column."
        )
    check_out(out, pairs, inputs.get("catalog"))
    check_pairs_differ(pairs, inputs.get("catalog"))
    previous = start_run(out, bool(inputs.get("resume")), bool(inputs.get("overwrite")))
    if previous is None:
        return None, cfg
    if model is not None and previous.model != model:
        raise InvalidParameterError(
            f"{out}: holds {_a(previous.model)} run, not {_a(model)} one; --resume continues "
            f"it as it was (--model {previous.model}), or train {model} into another --out."
        )
    done = int(previous.data.get("epoch") or 0)
    epochs = int(getattr(cfg, "epochs", done))
    if epochs < done:
        raise OptionError(
            f"--epochs {epochs}: the run in {out} has done {done} epochs already; give "
            f"--epochs {done + 1} or more to train further (the total, not the epochs to add)."
        )
    meta = dict(inputs.get("meta") or {})
    if "notes" in previous.meta and "notes" not in meta:
        inputs["meta"] = {**meta, "notes": previous.meta["notes"]}
    return previous, resumed_config(type(cfg), previous, cfg)


def check_resume(previous: Checkpoint, sites: list[ds.Site], inputs: ResumableInputs) -> None:
    """Refuse to resume ``previous`` on other inputs: other files (or files changed since),
    masks, scaling, bands, dates, sites, catalog or resampling than the run read."""
    changes = input_changes(previous, sites, training_inputs(inputs))
    if changes:
        raise InvalidParameterError(
            f"--resume continues the same training, but {previous.path} was trained on other "
            f"inputs: {'; '.join(changes)}. Give the run's inputs, or start a new run with "
            "--out elsewhere or --overwrite."
        )


def _catalog(inputs: SiteInputs) -> str | None:
    catalog = inputs.get("catalog")
    return None if catalog is None else str(Path(catalog).resolve())


def training_inputs(inputs: SiteInputs) -> dict[str, Any]:
    """How the run read its sites (the checkpoint's ``training_inputs``, compared on
    ``--resume``): the catalog and the resampling of coarse images on their own grid."""
    return {"catalog": _catalog(inputs), "resampling": inputs.get("resampling", "nearest")}
