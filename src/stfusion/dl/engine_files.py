"""The files a run keeps beside its checkpoint (``<stem>.lightning/``: Lightning's resume
state and CSV logs) and what protects them: a new run starts only where it replaces nothing
it was not told to, and no file stfusion did not write (:func:`check_new_run`); it leaves an
earlier run's state as it was until it has saved its own first epoch (:func:`claim_output`),
and ``--resume`` checks the state before Lightning reads it (:func:`check_resumable`,
:func:`check_resume_state`).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from stfusion.dl.engine_settings import lightning_dir, resume_path
from stfusion.dl.train_log import log_paths
from stfusion.errors import (
    InvalidParameterError,
    OutputExistsError,
    RunInterrupted,
    interrupted_how,
    warn,
)
from stfusion.io import (
    OutputLock,
    check_not_locked,
    file_stamp,
    glob_escape,
    remove_changed,
    remove_stale_partials,
)

__all__ = [
    "check_new_run",
    "check_resumable",
    "check_resume_state",
    "claim_output",
    "foreign_files",
    "recover_killed_run",
]

#: The name of the earlier run's state, set aside while a new run has saved nothing.
_ASIDE = ".{name}.{pid}.previous"

#: What stfusion and Lightning write in ``<stem>.lightning`` (paths inside it): the resume
#: state, SLURM's requeue state and the CSV logger's versions. A new run deletes the folder
#: of the one it replaces, so anything else there is not theirs to delete.
_OWN_FILE = re.compile(
    r"resume\.ckpt|hpc_ckpt_\d+\.ckpt|csv/version_\d+/(metrics\.csv|hparams\.yaml)"
)
_OWN_FOLDER = re.compile(r"csv(/version_\d+)?")


def _spawned() -> bool:
    """A process Lightning started for data-parallel training: the first one owns ``out``."""
    return any(int(os.environ.get(k) or 0) for k in ("LOCAL_RANK", "NODE_RANK"))


def _asides(out: Path) -> list[Path]:
    """The earlier training states of ``out`` set aside by runs into it (:data:`_ASIDE`)."""
    name = glob_escape(lightning_dir(out).name)
    return sorted(out.parent.glob(_ASIDE.format(name=name, pid="*")))


def _aside_pid(aside: Path) -> str:
    """The process number in a set-aside state's name (:data:`_ASIDE`)."""
    return aside.name.split(".")[-2]


def foreign_files(folder: Path) -> list[Path]:
    """What in ``folder`` (a ``<stem>.lightning`` folder) stfusion and Lightning did not
    write: other names, links, a file where they write a folder or the other way round."""
    found: list[Path] = []
    for top, folders, files in os.walk(folder):
        inside = Path(top).relative_to(folder)
        for name in folders + files:
            path, rel = Path(top) / name, (inside / name).as_posix()
            own = _OWN_FOLDER if name in folders else _OWN_FILE
            if path.is_symlink() or not own.fullmatch(rel):
                found.append(path)
        # only into stfusion's own folders: a foreign one is named as a whole
        folders[:] = [f for f in folders if Path(top, f) not in found]
    return found


def _listed(paths: list[Path], most: int = 3) -> str:
    """``a, b and c`` (``a, b, c and 2 more`` past ``most``)."""
    names = [str(p) for p in paths[:most]]
    if len(paths) > most:
        names.append(f"{len(paths) - most} more")
    return " and ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)


def _first_missing(folder: Path) -> Path | None:
    """The outermost folder of ``folder``'s path that does not exist yet (None: it exists)."""
    missing = None
    for p in [folder, *folder.parents]:
        if p.exists():
            break
        missing = p
    return missing


def _remove_made(folder: Path, made: Path | None) -> None:
    """Remove the empty folders from ``folder`` up to ``made``, which the run created."""
    if made is None:
        return
    for p in [folder, *folder.parents]:
        try:
            p.rmdir()
        except OSError:
            return
        if p == made:
            return


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # someone else's process: leave its state alone
    return True


def _run_id(path: Path, recorded: bool) -> str | None:
    """The run id in checkpoint ``path`` (``recorded``: in a resume state's RunRecorder)."""
    try:
        data: Any = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # missing, truncated: no id to match
        return None
    if not isinstance(data, dict):
        return None
    if recorded:
        data = (data.get("callbacks") or {}).get("RunRecorder") or {}
    value = data.get("run_id") if isinstance(data, dict) else None
    return str(value) if value else None


def _unreplaceable(out: Path) -> list[str]:
    """What beside ``out`` a new run cannot replace, said as a reason each: a file or link
    where it keeps its training-state folder, files in that folder stfusion did not write,
    a folder (or a device) where it writes its loss log or curve."""
    root = lightning_dir(out)
    reasons = []
    if root.is_symlink() or (os.path.lexists(root) and not root.is_dir()):
        reasons.append(f"{root} is a {'link' if root.is_symlink() else 'file'}, not a folder")
    elif root.is_dir():
        foreign = foreign_files(root)
        if foreign:
            reasons.append(f"{root} holds files stfusion did not write ({_listed(foreign)})")
    for path in log_paths(out):
        if path.exists() and not path.is_file():
            kind = "a folder" if path.is_dir() else "not a regular file"
            reasons.append(f"{path} is {kind}")
    return reasons


def check_new_run(out: Path, overwrite: bool) -> None:
    """Refuse a new run (not ``--resume``) into ``out`` before any work when it would replace
    a file beside it without ``overwrite`` (the loss log, the curve, the training state,
    a state set aside), or, even with it, delete what stfusion did not write
    (:func:`_unreplaceable`); and while another run into ``out`` is under way."""
    if _spawned():
        return  # the first process checked, and has begun writing since
    check_not_locked(out, "train", f"--out {out}: another training run into it")
    remove_stale_partials(resume_path(out))  # a run killed while saving its state left one
    for aside in _asides(out):
        pid = _aside_pid(aside)
        if pid.isdigit() and _alive(int(pid)):
            raise OutputExistsError(
                f"--out {out}: another training run into it is under way (process {pid}, "
                f"which set the earlier state aside as {aside}): wait for it to end, or stop "
                "it, or give another --out (if none is, that process number is another "
                f"program's now: move {aside} away)."
            )
    unreplaceable = "; ".join(_unreplaceable(out))
    mine = "stfusion deletes only what it wrote"
    beside = (*log_paths(out), lightning_dir(out), *_asides(out))
    present = [p for p in beside if os.path.lexists(p)]
    if present and not overwrite:
        then = f" Before --overwrite: {unreplaceable}, and {mine}: move those away."
        raise OutputExistsError(
            f"--out {out}: a new run writes its loss log, curve and training state beside it, "
            f"and {_listed(present, 4)} exist{'s' * (len(present) == 1)} already. Give "
            f"--overwrite to replace {'them' if len(present) > 1 else 'it'}, or another --out."
            f"{then if unreplaceable else ''}"
        )
    if unreplaceable:
        raise OutputExistsError(
            f"--out {out}: a new run replaces the loss log, curve and training state beside "
            f"it, but {unreplaceable}, and {mine}. Move those away, or give another --out."
        )


def recover_killed_run(out: Path) -> None:
    """Settle the earlier training state a killed run (SIGKILL, out of memory) left set aside
    beside ``out``: put it back when it is still ``out``'s state (the run was killed before
    saving its first epoch), delete it when ``out`` was written after it was set aside (it
    belongs to a checkpoint that no longer exists). Says what it did in a warning.
    """
    root = lightning_dir(out)
    for aside in _asides(out):
        pid = _aside_pid(aside)
        if not pid.isdigit() or _alive(int(pid)) or not aside.is_dir():
            continue
        mine = _run_id(out, recorded=False)
        theirs = _run_id(aside / Path(resume_path(out)).name, recorded=True)
        if mine and theirs:
            current = mine == theirs
        else:  # written before run ids: was out written after the state was set aside?
            current = out.exists() and out.stat().st_mtime_ns <= aside.stat().st_ctime_ns
        doomed = root if current else aside  # the killed run's new state, or a stale one
        foreign = foreign_files(doomed) if doomed.is_dir() and not doomed.is_symlink() else []
        if foreign:
            why = f"replaced by {aside}, the state" if current else "deleted: it is the stale state"
            raise OutputExistsError(
                f"{doomed} is to be {why} a killed training run (process {pid}) left, but it "
                f"holds files stfusion did not write ({_listed(foreign)}): move them out of "
                "it, then run again."
            )
        if current:
            shutil.rmtree(root, ignore_errors=True)  # what the killed run began
            os.replace(aside, root)
            what = f"put back as {root.name}: it is still the training state of {out.name}"
        else:
            shutil.rmtree(aside, ignore_errors=True)
            what = f"deleted: {out.name} was written after it was set aside"
        warn(f"{aside}, set aside by a training run that was killed (process {pid}), {what}.")


@contextlib.contextmanager
def claim_output(out: Path, resume: bool) -> Iterator[None]:
    """Run the body as the run that writes ``out``; until the body has saved ``out`` (its
    first epoch), an earlier run there stays exactly as it was.

    A fresh run (``--overwrite``, or a state left without a checkpoint) moves the earlier
    ``<stem>.lightning`` aside to a hidden name; when the body ends, by success or failure,
    that state is deleted if ``out`` was written, else put back in place of whatever the new
    run began. Folders the run created for ``out`` are removed again when nothing was saved.
    """
    if _spawned():
        yield
        return
    made = _first_missing(out.parent)
    # before anything is moved: a second run into out stops here (two started together both
    # passed the checks and wrote over each other)
    lock = OutputLock(out, "train", f"--out {out}: another training run into it")
    recover_killed_run(out)
    root = lightning_dir(out)
    before = file_stamp(out)
    logs = {path: file_stamp(path) for path in log_paths(out)}
    aside = None
    if not resume and root.exists():
        aside = root.with_name(_ASIDE.format(name=root.name, pid=os.getpid()))
        shutil.rmtree(aside, ignore_errors=True)
        os.replace(root, aside)
    try:
        yield
    except BaseException as exc:
        saved = file_stamp(out) != before
        if not saved:
            _put_back(root, aside, resume)
            # this run's log without a checkpoint would only make the rerun ask --overwrite;
            # a resumed run's is the earlier run's (rewritten from its history: kept)
            if not resume:
                remove_changed(list(logs), list(logs.values()))
            lock.release()  # its file first: the folders made for out go again
            _remove_made(out.parent, made)
        if aside is not None and saved:
            shutil.rmtree(aside, ignore_errors=True)
        lock.release()
        if not saved and before is not None:
            if isinstance(exc, RunInterrupted):
                raise RunInterrupted(
                    f"{exc} {out} and its training state are as they were before this run.",
                    exc.code,
                ) from None
            if isinstance(exc, KeyboardInterrupt) or hasattr(exc, "signum"):  # before training
                how, code = interrupted_how(exc)
                raise RunInterrupted(
                    f"{how} before the first epoch; nothing was saved. {out} and its training "
                    "state are as they were before this run.",
                    code,
                ) from None
        raise
    if file_stamp(out) != before:
        if aside is not None:
            shutil.rmtree(aside, ignore_errors=True)
    else:
        _put_back(root, aside, resume)
    lock.release()


def _put_back(root: Path, aside: Path | None, resume: bool) -> None:
    """Remove what a run that saved nothing began in ``root`` (not a resumed run's state)
    and put the earlier state back."""
    if not resume:
        shutil.rmtree(root, ignore_errors=True)
    if aside is not None and aside.exists():
        os.replace(aside, root)


def check_resumable(out: Path) -> None:
    """Refuse ``--resume`` without the Lightning state, saying why and what to do."""
    if not out.exists():
        left = [p for p in (*log_paths(out), lightning_dir(out)) if p.exists()]
        if left:  # "train without it first" was then refused for them (a training trial)
            raise InvalidParameterError(
                f"--resume: {out} does not exist, but {', '.join(map(str, left))} of a run "
                "into it do (the checkpoint was moved or deleted?): put the checkpoint back "
                "to go on, or train afresh without --resume and with --overwrite, which "
                "replaces them."
            )
        raise InvalidParameterError(f"--resume: {out} does not exist; train without it first.")
    recover_killed_run(out)
    if resume_path(out).exists():
        return
    left = _asides(out)
    hint = (
        f" Another training run into {out} is under way ({left[-1]} holds the earlier state "
        "until it saves an epoch): wait for it to end, or stop it."
        if left
        else ""
    )
    raise InvalidParameterError(
        f"--resume: {out} has no training state beside it ({resume_path(out)} is missing: "
        "the checkpoint was written by an earlier stfusion, stripped, moved without its "
        f"{lightning_dir(out).name} folder, or its run was killed between saving its first "
        f"epoch and its training state).{hint} It still predicts; to train further start a "
        "new run: the same command with --overwrite instead of --resume, or another --out."
    )


def check_resume_state(out: Path, module: torch.nn.Module, run_id: str | None) -> None:
    """Refuse a resume state (``<stem>.lightning/resume.ckpt``) that cannot be read, that
    holds another network than ``module``, or that was saved by another run than the one in
    ``out`` (``run_id``, the checkpoint's): Lightning would fail with a traceback, or go on
    from another run's weights."""
    path = resume_path(out)
    new_run = "start a new run to train further (--overwrite, or another --out)"
    start_new = f"{out} still predicts; {new_run}."
    try:
        state: Any = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated, not a torch file, unsafe contents
        text = str(exc).strip()
        reason = text.splitlines()[0].split(". ")[0][:160] if text else type(exc).__name__
        raise InvalidParameterError(
            f"--resume: {path}, the training state of {out}, is damaged and cannot be read "
            f"({reason}). {start_new}"
        ) from None
    weights = state.get("state_dict") if isinstance(state, dict) else None
    if not isinstance(weights, dict):
        raise InvalidParameterError(
            f"--resume: {path}, the training state of {out}, is damaged (no weights). {start_new}"
        )
    mine = set(module.state_dict())
    if set(weights) != mine:
        foreign = len(set(weights) - mine)
        raise InvalidParameterError(
            f"--resume: {path} belongs to another model or network than the run in {out} "
            f"({foreign} of its {len(weights)} weights are not this network's): the "
            f"{lightning_dir(out).name} folder was copied from another run. Put back the one "
            f"written with {out.name}, or {new_run}."
        )
    recorder = (state.get("callbacks") or {}).get("RunRecorder") or {}
    theirs = recorder.get("run_id") if isinstance(recorder, dict) else None
    if run_id and theirs and theirs != run_id:
        raise InvalidParameterError(
            f"--resume: {path} belongs to another run of this model than the one in {out} "
            f"(run {str(theirs)[:8]}, the checkpoint's {run_id[:8]}): the "
            f"{lightning_dir(out).name} folder was copied or swapped. Put back the one written "
            f"with {out.name}, or {new_run}."
        )
