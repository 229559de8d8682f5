"""`stfusion train --overwrite` as a user trial found it: the earlier run is kept until the new
one completes an epoch, a killed or failing run puts it back and leaves nothing set aside.
Real processes (signals, exit status); tiny crops, one thread, a few steps."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from conftest import process_env, run_process, stfusion_cmd  # noqa: E402
from stfusion.dl.train import train  # noqa: E402
from test_train_trial import TINY, cmd, digest, tree, two_pairs  # noqa: E402


@pytest.fixture
def pairs(tmp_path: Path) -> list[tuple[Path, Path]]:
    return two_pairs(tmp_path)


def _start(args: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        stfusion_cmd(*args),
        env=process_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(proc: subprocess.Popen[str], ready: Callable[[], bool], timeout: float = 120) -> None:
    """Wait until ``ready()``; else stop ``proc`` (it would train for ever) and fail."""
    deadline = time.monotonic() + timeout
    while not ready() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    if not ready():
        proc.kill()
        pytest.fail(f"not ready; stderr: {proc.communicate()[1][-2000:]}")


def test_overwrite_keeps_the_earlier_run_until_its_first_epoch(pairs: list, tmp_path: Path) -> None:
    """--overwrite deleted the earlier run's resume state at the start: a new run stopped
    before its first epoch left m.ckpt without it. A folder the run created is removed when
    nothing was saved."""
    out = tmp_path / "m.ckpt"
    train(pairs, out, TINY)
    was = tree(tmp_path)
    slow = cmd(pairs, out, "--overwrite", "--steps-per-epoch", "100000")
    proc = _start(slow)
    # the earlier state set aside, the new run's begun: inside Lightning's fit
    _wait_for(
        proc,
        lambda: (
            any(tmp_path.glob(".m.lightning.*.previous")) and (tmp_path / "m.lightning").exists()
        ),
    )
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143 and "as they were before this run" in err, err
    assert tree(tmp_path) == was  # exactly as it was: no partial, nothing set aside
    resumed = run_process(*cmd(pairs, out, "--resume", "--epochs", "2", "-q"))
    assert resumed.returncode == 0, resumed.stderr
    # a folder made for --out, removed again when the run is stopped before saving anything
    new = tmp_path / "new" / "sub" / "m.ckpt"
    proc = _start(cmd(pairs, new, "--steps-per-epoch", "100000"))
    _wait_for(proc, lambda: (new.parent / "m.lightning").exists())
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "nothing was saved" in err, err
    assert not (tmp_path / "new").exists()


def test_a_killed_overwrite_run_leaves_nothing_set_aside(pairs: list, tmp_path: Path) -> None:
    """A run killed by SIGKILL (out of memory) cannot clean up: the earlier run's state stayed
    hidden as .m.lightning.<pid>.previous for ever, and --resume refused. The next run puts
    it back when it is still m.ckpt's, and deletes it when m.ckpt was written since."""
    out = tmp_path / "m.ckpt"
    train(pairs, out, TINY)
    was = digest(out)
    aside = ".m.lightning.*.previous"
    # killed before its first epoch: m.ckpt is the earlier run's, so is the state set aside
    proc = _start(cmd(pairs, out, "--overwrite", "--steps-per-epoch", "100000"))
    _wait_for(proc, lambda: any(tmp_path.glob(aside)) and (tmp_path / "m.lightning").exists())
    proc.kill()
    proc.communicate(timeout=120)
    assert any(tmp_path.glob(aside)) and digest(out) == was
    resumed = run_process(*cmd(pairs, out, "--resume", "--epochs", "2", "-q"))
    assert resumed.returncode == 0, resumed.stderr
    assert "put back as m.lightning" in resumed.stderr, resumed.stderr
    assert not any(tmp_path.glob(aside)) and digest(out) != was
    # killed after saving an epoch: m.ckpt is the new run's, the state set aside is stale
    was = digest(out)
    proc = _start(cmd(pairs, out, "--overwrite", "--epochs", "100000"))
    _wait_for(proc, lambda: any(tmp_path.glob(aside)) and digest(out) != was)
    proc.kill()
    proc.communicate(timeout=120)
    assert any(tmp_path.glob(aside))
    again = run_process(*cmd(pairs, out, "--overwrite", "-q"))
    assert again.returncode == 0, again.stderr
    assert "deleted: m.ckpt was written after it was set aside" in again.stderr, again.stderr
    assert not any(tmp_path.glob(aside))


def test_failing_overwrite_run_restores_the_earlier_state(
    pairs: list, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from stfusion.dl import engine

    out = tmp_path / "m.ckpt"
    train(pairs, out, TINY)
    was = tree(tmp_path)

    def fail(*args: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(engine.FusionModule, "training_step", fail)
    with pytest.raises(RuntimeError, match="boom"):
        train(pairs, out, TINY, overwrite=True)
    assert tree(tmp_path) == was


# ----------------------------------------------------------------------------- item 4


@pytest.mark.parametrize("signum, code", [(2, 130), (15, 143), (1, 129)])
def test_stopped_before_the_first_epoch_says_the_earlier_run_is_kept(
    tmp_path: Path, signum: int, code: int
) -> None:
    """A user trial: Ctrl-C or SIGTERM while an --overwrite run read its data said "partial
    outputs removed", which reads as if the earlier model had gone (it had not)."""
    from stfusion.dl.engine_files import claim_output
    from stfusion.errors import RunInterrupted

    class Signalled(BaseException):  # as the CLI's Terminated, which carries the signal
        pass

    out = tmp_path / "m.ckpt"
    out.write_bytes(b"earlier run")
    exc: BaseException = KeyboardInterrupt() if signum == 2 else Signalled()
    if signum != 2:
        exc.signum = signum  # type: ignore[attr-defined]
    with pytest.raises(RunInterrupted) as got, claim_output(out, resume=False):
        raise exc
    assert got.value.code == code
    assert "before the first epoch; nothing was saved" in got.value.message
    assert f"{out} and its training state are as they were" in got.value.message
    assert out.read_bytes() == b"earlier run"


def test_a_resumed_run_stopped_before_its_first_epoch_keeps_the_loss_log(tmp_path: Path) -> None:
    """A training trial: Ctrl-C in a --resume run before its first new epoch deleted the
    earlier run's .log.csv and .loss.png (rewritten from its history as the run stopped),
    while the message said everything was as it was."""
    from stfusion.dl.engine_files import claim_output
    from stfusion.dl.train import log_paths
    from stfusion.errors import RunInterrupted

    out = tmp_path / "m.ckpt"
    out.write_bytes(b"earlier run")
    logs = log_paths(out)
    for path in logs:
        path.write_text("earlier epochs\n")
    with pytest.raises(RunInterrupted), claim_output(out, resume=True):
        for path in logs:  # as fit's finally rewrites them from the resumed history
            path.write_text("earlier epochs, rewritten\n")
        raise KeyboardInterrupt
    assert out.read_bytes() == b"earlier run"
    assert all(path.exists() for path in logs)


def test_a_signal_outside_the_epochs_says_the_checkpoint_is_kept(tmp_path: Path) -> None:
    """A training trial: a second Ctrl-C (or one after the last epoch) said "partial outputs
    removed" while the checkpoint, its log and training state stayed (rightly) and --resume
    went on: said so."""
    from conftest import run_python, sample_pair_args

    pairs = sample_pair_args()
    code = (
        "import sys, stfusion.dl.train as t\n"
        "def stopped(*a, **k): raise KeyboardInterrupt\n"
        "t.train = stopped\n"
        "from stfusion.cli import main\n"
        "main(sys.argv[1:])"
    )
    proc = run_python(code, "train", *pairs, "--out", str(tmp_path / "m.ckpt"))
    assert proc.returncode == 130, proc.stderr
    assert "partial outputs removed. A checkpoint saved by a finished epoch is kept" in proc.stderr
    assert "--resume" in proc.stderr


def test_resume_without_the_checkpoint_names_what_is_left(tmp_path: Path) -> None:
    """A training trial: --resume with m.ckpt deleted said "train without it first", which
    was then refused for the log and training state left beside it."""
    from stfusion.dl.engine_files import check_resumable
    from stfusion.dl.engine_settings import lightning_dir
    from stfusion.errors import InvalidParameterError

    out = tmp_path / "m.ckpt"
    with pytest.raises(InvalidParameterError, match="does not exist; train without it first"):
        check_resumable(out)
    lightning_dir(out).mkdir()
    with pytest.raises(InvalidParameterError, match=r"m\.lightning of a run .*--overwrite"):
        check_resumable(out)


def test_a_truncated_checkpoint_is_called_damaged(tmp_path: Path) -> None:
    """A training trial: a checkpoint cut short was "not a stfusion checkpoint ... give a
    file written by stfusion train", though stfusion train had written it."""
    pytest.importorskip("torch")
    from stfusion.dl.checkpoint import load_checkpoint
    from stfusion.errors import InputFileError
    from stfusion.run_config import shipped_weights

    whole = shipped_weights("student").read_bytes()
    cut = tmp_path / "m.ckpt"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(InputFileError, match=r"m\.ckpt: a torch file that cannot be read.*damaged"):
        load_checkpoint(cut)
    other = tmp_path / "notes.ckpt"
    other.write_text("not torch\n")
    with pytest.raises(InputFileError, match=r"not a stfusion checkpoint"):
        load_checkpoint(other)


def test_stopped_while_the_autoencoder_trains_says_the_earlier_run_is_kept() -> None:
    """A training trial: Ctrl-C while an --overwrite run trained its feature-loss
    autoencoder said only "nothing was saved", not that the earlier checkpoint stayed."""
    pytest.importorskip("lightning")
    from types import SimpleNamespace

    from stfusion.dl.engine import _interruptible
    from stfusion.errors import RunInterrupted

    trainer = SimpleNamespace(interrupted=True)
    with pytest.raises(RunInterrupted, match=r"autoencoder; no epoch .* are as they were") as got:
        with _interruptible(trainer, None, "training the feature-loss autoencoder"):
            raise KeyboardInterrupt
    assert got.value.code == 130
