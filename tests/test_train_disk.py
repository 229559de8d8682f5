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


def test_the_bar_draws_on_a_terminal_that_gives_no_size(monkeypatch: pytest.MonkeyPatch) -> None:
    """A trial: on a pseudo-terminal never sized (0 x 0) tqdm read -1 rows and drew no bar,
    so `stfusion train` showed none while `predict` drew its own."""
    import os
    import pty
    import select
    import sys

    from lightning.pytorch.callbacks.progress.tqdm_progress import Tqdm

    from stfusion.dl.engine_settings import stderr_progress_bar

    main, side = pty.openpty()  # no TIOCSWINSZ: the size is 0 x 0
    try:
        with os.fdopen(side, "w") as term:
            monkeypatch.setattr(sys, "stderr", term)
            bar = stderr_progress_bar()(leave=False)._on_stderr(
                lambda: Tqdm(total=5, file=sys.stdout, dynamic_ncols=True)
            )
            bar.update(1)
            bar.refresh()
            term.flush()
            ready = select.select([main], [], [], 5)[0]  # nothing drawn: no read to wait on
            drawn = os.read(main, 4096).decode() if ready else ""
            bar.close()
    finally:
        os.close(main)
    assert "1/5" in drawn, drawn


def test_a_state_save_cut_by_a_kill_leaves_nothing_that_blocks_the_next_run(
    tmp_path: Path,
) -> None:
    """A run killed (SIGKILL) while writing its resume state left its partial file in
    m.lightning, and the next --overwrite run refused the folder as holding files stfusion
    did not write (a CI run)."""
    import subprocess
    import sys

    from stfusion.dl.engine_files import check_new_run

    pairs = two_pairs(tmp_path)
    out = tmp_path / "m.ckpt"
    train(pairs, out, TINY)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a process number no run holds now
    state = resume_path(out)
    partial = state.with_name(f".{state.name}.{dead.pid}-0123abcd.partial.ckpt")
    partial.write_bytes(b"PK\x03\x04 cut short")
    check_new_run(out, overwrite=True)
    assert not partial.exists()
