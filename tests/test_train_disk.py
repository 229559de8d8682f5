"""Training on a disk that fills: the last epoch's resume state survives a failed save."""

from __future__ import annotations

import dataclasses
import errno
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from stfusion.dl.engine_files import resume_path  # noqa: E402
from stfusion.dl.train import train  # noqa: E402
from test_train_trial import TINY, two_pairs  # noqa: E402


def test_a_failed_save_of_the_resume_state_keeps_the_last_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A user trial: with the temporary folder on another file system, Lightning copied each
    epoch's state over the last one; a disk filling during epoch 2's copy left resume.ckpt
    empty, and --resume refused the run."""
    pairs = two_pairs(tmp_path)
    out = tmp_path / "run" / "m.ckpt"
    real_save = torch.save
    saves: list[str] = []

    def save(obj: object, f: object, *args: object, **kwargs: object) -> None:
        name = Path(str(f)).name
        if "resume" in name:
            saves.append(name)
            if len(saves) == 2:  # epoch 2's state: half written, then the disk is full
                Path(str(f)).write_bytes(b"PK\x03\x04 cut short")
                raise OSError(errno.ENOSPC, "No space left on device")
        real_save(obj, f, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(torch, "save", save)
    with pytest.raises(OSError, match="No space left"):
        train(pairs, out, dataclasses.replace(TINY, epochs=3, patience=10))
    state = resume_path(out)
    assert torch.load(state, weights_only=False)["epoch"] == 0  # epoch 1's, whole
    assert sorted(p.name for p in state.parent.iterdir() if p.is_file()) == ["resume.ckpt"]
    monkeypatch.setattr(torch, "save", real_save)
    train(pairs, out, dataclasses.replace(TINY, epochs=3, patience=10), resume=True)
    assert torch.load(state, weights_only=False)["epoch"] == 2
