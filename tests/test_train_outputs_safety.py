"""A user trial: a new `stfusion train` or `distill` run (no --resume, no --overwrite) into a
--out that did not exist replaced the loss log and curve beside it and deleted the user's
files in `<name>.lightning/`, exit 0. A new run now needs --overwrite for the files it writes
beside --out, and never deletes what stfusion did not write. Real processes where the exit
status is the point; tiny crops, one thread, two steps."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from conftest import run_clean, run_process  # noqa: E402
from dl_helpers import pair_args  # noqa: E402
from test_dl_data import DATES, write_cia_crop  # noqa: E402

#: One epoch of two steps on 16 px patches: seconds.
QUICK = [
    "--epochs",
    "1",
    "--patch",
    "16",
    "--batch",
    "2",
    "--steps-per-epoch",
    "2",
    "--val-patches",
    "2",
    "--threads",
    "1",
]


@pytest.fixture
def pairs(tmp_path: Path) -> list[tuple[Path, Path]]:
    folder = tmp_path / "data"
    folder.mkdir()
    files = write_cia_crop(folder, size=40, dates=DATES[:2], bands=(2, 3))
    return [files[d] for d in DATES[:2]]


def train_cmd(
    pairs: list, out: Path, *extra: str, init: tuple[str, ...] = ("--init", "none")
) -> list[str]:
    model = ["--model", "dcstfn", "--size", "tiny", *init, "--devices", "cpu"]
    return ["train", *model, *pair_args(pairs), *QUICK, "--out", str(out), *extra]


def tree(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (hidden ones too) and its digest."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in folder.rglob("*")
        if p.is_file()
    }


def refused(proc: subprocess.CompletedProcess[str], *words: str) -> str:
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    for word in words:
        assert word in proc.stderr, proc.stderr
    return proc.stderr


def test_train_keeps_the_files_beside_out(
    pairs: list, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, state = tmp_path / "new.ckpt", tmp_path / "new.lightning"
    (tmp_path / "new.log.csv").write_text("my log\n")
    (tmp_path / "new.loss.png").write_text("x\n")
    state.mkdir()
    (state / "mine.txt").write_text("mine\n")
    was = tree(tmp_path)
    proc = run_process(*train_cmd(pairs, out))
    names = ("new.log.csv", "new.loss.png", "new.lightning", "--overwrite", "another --out")
    refused(proc, *names, f"{state / 'mine.txt'}")
    assert tree(tmp_path) == was and not out.exists()
    # --overwrite replaces stfusion's files only: the user's in new.lightning stop it
    code, err = run_clean(train_cmd(pairs, out, "--overwrite"), capsys)
    assert code == 1 and "did not write" in err and f"{state / 'mine.txt'}" in err, err
    assert tree(tmp_path) == was and not out.exists()
    # moved out of it: the run replaces the log, the curve and the folder as it writes them
    (state / "mine.txt").rename(tmp_path / "mine.txt")
    code, err = run_clean(train_cmd(pairs, out, "--overwrite", "-q"), capsys)
    assert code == 0, err
    assert (tmp_path / "new.log.csv").read_text().startswith("epoch,")
    assert (tmp_path / "new.loss.png").read_bytes().startswith(b"\x89PNG")
    assert (state / "resume.ckpt").exists() and (tmp_path / "mine.txt").read_text() == "mine\n"
    # --resume goes on in its own files, and leaves a user's file in the folder alone
    (state / "notes.txt").write_text("notes\n")
    resume = train_cmd(pairs, out, "--resume", "--epochs", "2", "-q", init=())
    code, err = run_clean(resume, capsys)
    assert code == 0 and (state / "notes.txt").read_text() == "notes\n", err


def test_distill_keeps_the_files_beside_out(
    pairs: list, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, state = tmp_path / "d.ckpt", tmp_path / "d.lightning"
    (tmp_path / "d.log.csv").write_text("my log\n")
    (state / "csv" / "version_0").mkdir(parents=True)  # what Lightning writes there
    (state / "csv" / "version_0" / "metrics.csv").write_text("epoch\n")
    was = tree(tmp_path)
    args = ["distill", "--teacher", "shipped", *pair_args(pairs), *QUICK, "--out", str(out)]
    code, err = run_clean(args, capsys)  # in this process: the train test pays for one start
    assert code == 1 and "--overwrite" in err and "another --out" in err, err
    assert "d.log.csv" in err and "d.lightning" in err, err
    assert tree(tmp_path) == was and not out.exists()
    (state / "csv" / "mine.txt").write_text("mine\n")
    was = tree(tmp_path)
    code, err = run_clean([*args, "--overwrite"], capsys)
    assert code == 1 and f"{state / 'csv' / 'mine.txt'}" in err and "did not write" in err, err
    assert tree(tmp_path) == was and not out.exists()


def test_what_a_new_run_cannot_replace(tmp_path: Path) -> None:
    """Even with --overwrite: a file or link where the training state goes, a folder where
    the log goes, links and foreign folders inside the state; another run under way."""
    from stfusion.dl.engine_files import check_new_run, foreign_files
    from stfusion.errors import OutputExistsError

    out, state = tmp_path / "m.ckpt", tmp_path / "m.lightning"
    state.write_text("a file\n")
    with pytest.raises(OutputExistsError, match=r"m\.lightning is a file"):
        check_new_run(out, overwrite=True)
    state.unlink()
    (tmp_path / "elsewhere").mkdir()
    state.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(OutputExistsError, match=r"m\.lightning is a link"):
        check_new_run(out, overwrite=True)
    state.unlink()
    (state / "csv" / "version_3").mkdir(parents=True)
    for own in ("resume.ckpt", "hpc_ckpt_1.ckpt", "csv/version_3/metrics.csv"):
        (state / own).write_text("")
    check_new_run(out, overwrite=True)  # stfusion's and Lightning's own
    with pytest.raises(OutputExistsError, match=r"exists? already"):
        check_new_run(out, overwrite=False)
    (state / "csv" / "version_3" / "link.csv").symlink_to(tmp_path / "elsewhere")
    (state / "mine" / "deep").mkdir(parents=True)
    foreign = {state / "mine", state / "csv" / "version_3" / "link.csv"}
    assert set(foreign_files(state)) == foreign
    (tmp_path / "m.log.csv").mkdir()
    with pytest.raises(OutputExistsError, match=r"m\.log\.csv is a folder") as info:
        check_new_run(out, overwrite=True)
    assert "did not write" in str(info.value)
    aside = tmp_path / f".m.lightning.{os.getpid()}.previous"  # a live process's
    aside.mkdir()
    with pytest.raises(OutputExistsError, match="another training run into it is under way"):
        check_new_run(out, overwrite=True)


def test_a_stale_state_set_aside_keeps_a_users_files(tmp_path: Path) -> None:
    """The state a killed run set aside, stale (its checkpoint is gone), was deleted with
    whatever was in it."""
    from stfusion.dl.engine_files import recover_killed_run
    from stfusion.errors import OutputExistsError, STFusionWarning

    out = tmp_path / "m.ckpt"
    aside = tmp_path / ".m.lightning.999999999.previous"  # above any process number
    aside.mkdir()
    (aside / "mine.txt").write_text("mine\n")
    with pytest.raises(OutputExistsError, match="did not write"):
        recover_killed_run(out)
    assert (aside / "mine.txt").read_text() == "mine\n"
    (aside / "mine.txt").unlink()
    with pytest.warns(STFusionWarning, match="deleted"):
        recover_killed_run(out)
    assert not aside.exists()


def test_an_out_that_is_an_input_by_another_path_is_refused(tmp_path: Path) -> None:
    """A checkpoint over a hard link (or a bind mount) of an input would replace the input;
    the check compared resolved paths only."""
    from stfusion.dl.run_inputs import check_out
    from stfusion.errors import OutputExistsError

    fine = tmp_path / "f.tif"
    fine.write_bytes(b"not read here")
    os.link(fine, tmp_path / "run.ckpt")
    with pytest.raises(OutputExistsError, match=r"run\.ckpt would replace the input .*f\.tif"):
        check_out(tmp_path / "run.ckpt", [(str(fine), str(fine))], None)


def test_the_loss_curve_of_one_epoch_shows_its_points(tmp_path: Path) -> None:
    """A trial: after one epoch (a short fine-tune, an early stop) the curve's axes were
    empty (single points drawn without markers) with ticks 0.95 ... 1.05."""
    from PIL import Image

    from stfusion.dl.train_log import write_log

    row = {"epoch": 1, "train_loss": 0.4, "val_loss": 0.5, "val_rmse": 0.03, "lr": 1e-3}
    _, png = write_log([{**row, "val_rmse_additive": 0.035, "seconds": 1.0}], tmp_path / "m.ckpt")
    img = np.asarray(Image.open(png).convert("RGB")).astype(int)
    plot = img[: int(img.shape[0] * 0.6)]  # above the legend, which has the colours too
    orange = np.abs(plot - np.array([255, 127, 14])).sum(axis=2) < 60
    assert orange.sum() > 5
