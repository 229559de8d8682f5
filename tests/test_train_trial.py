"""What a user trial of `stfusion train` and `stfusion distill` found: resumed runs on other
inputs, outputs that replace inputs or an earlier run, tracebacks, missing warnings, option
errors that were not usage errors. Real processes where the exit status or a signal is the
point; tiny crops, one thread, a few steps."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from conftest import copies_named, run_clean, run_cli, run_process  # noqa: E402
from dl_helpers import pair_args  # noqa: E402
from stfusion.dl.checkpoint import load_checkpoint  # noqa: E402
from stfusion.dl.train import TrainConfig, train  # noqa: E402
from stfusion.errors import InvalidParameterError, STFusionWarning  # noqa: E402
from stfusion.io import Scaling  # noqa: E402
from test_dl_data import DATES, write_cia_crop  # noqa: E402

TINY = TrainConfig(
    model="dcstfn",
    size="tiny",
    epochs=1,
    patch=16,
    batch=2,
    steps_per_epoch=2,
    ae_steps=2,
    threads=1,
    val_patches=2,
    device="cpu",
)

#: A command line that trains in a few seconds (dcstfn unless --model is given).
QUICK = [
    "--size",
    "tiny",
    "--init",
    "none",
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
    "--devices",
    "cpu",
]


def crop(folder: Path, **kw: object) -> dict[str, tuple[Path, Path]]:
    """:func:`write_cia_crop` (40 px, red and nir, the first two dates) into a new folder."""
    folder.mkdir(parents=True)
    return write_cia_crop(folder, **{"size": 40, "dates": DATES[:2], "bands": (2, 3), **kw})  # type: ignore[arg-type]


def two_pairs(tmp_path: Path) -> list[tuple[Path, Path]]:
    """The crop's first two dates as ``(fine, coarse)`` pairs, under ``tmp_path/data``."""
    files = crop(tmp_path / "data")
    return [files[d] for d in DATES[:2]]


@pytest.fixture
def pairs(tmp_path: Path) -> list[tuple[Path, Path]]:
    return two_pairs(tmp_path)


def cmd(pairs: list, out: Path, *extra: str, model: str = "dcstfn") -> list[str]:
    return ["train", "--model", model, *pair_args(pairs), *QUICK, "--out", str(out), *extra]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (hidden ones too) and its digest."""
    return {str(p.relative_to(folder)): digest(p) for p in folder.rglob("*") if p.is_file()}


def clean(proc: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.stderr


# ----------------------------------------------------------------------------- item 1


def test_resume_refuses_other_inputs(pairs: list, tmp_path: Path) -> None:
    """--resume compared only the dates: other scales, other files (same dates) and files
    changed since trained on, and replaced the checkpoint's record of its inputs."""
    out = tmp_path / "m.ckpt"
    train(pairs, out, TINY)
    before = digest(out)
    proc = run_process(*cmd(pairs, out, "--resume", "--epochs", "2", "--fine-scale", "2"))
    err = clean(proc)
    assert proc.returncode == 1, err
    assert "--resume continues the same training" in err, err
    assert f"{DATES[0]}, {DATES[1]} values fine scale 2 offset 0" in err, err
    assert "--overwrite" in err and digest(out) == before
    # other files of the same dates (another crop), and the same files changed since
    other = crop(tmp_path / "other")
    with pytest.raises(InvalidParameterError, match=r"other inputs: .*\(the run's: .*data"):
        train([other[d] for d in DATES[:2]], out, dataclasses.replace(TINY, epochs=2), resume=True)
    st = pairs[1][0].stat()
    os.utime(pairs[1][0], ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    with pytest.raises(InvalidParameterError, match="changed since"):
        train(pairs, out, dataclasses.replace(TINY, epochs=2), resume=True)
    assert digest(out) == before


def test_resume_same_inputs_records_them(pairs: list, tmp_path: Path) -> None:
    """Each pair's files (path, size, mtime) and scaling are recorded; resuming on the very
    same inputs goes on."""
    out = tmp_path / "m.ckpt"
    train(pairs, out, TINY, fine_scaling=Scaling(1.0))
    site = load_checkpoint(out).data["training_site_info"][0]
    path, size, _mtime = site["pairs"][0]["fine"]["files"][0]
    assert path == str(pairs[0][0].resolve()) and size == pairs[0][0].stat().st_size
    assert site["scaling"]["fine"] == {"scale": 1.0, "offset": 0.0}
    r = train(pairs, out, dataclasses.replace(TINY, epochs=2), resume=True)
    assert r.epochs == 2


# ----------------------------------------------------------------------------- item 2


def test_out_that_is_an_input_or_a_raster_name_is_refused(pairs: list, tmp_path: Path) -> None:
    fine = pairs[0][0]
    before = digest(fine)
    proc = run_process(*cmd(pairs, fine, "--overwrite"))
    assert proc.returncode == 2 and "a checkpoint is a torch file" in clean(proc), proc.stderr
    as_ckpt = tmp_path / "data" / "fine.ckpt"
    shutil.copy(fine, as_ckpt)
    named = [(as_ckpt, pairs[0][1]), pairs[1]]
    proc = run_process(*cmd(named, as_ckpt, "--overwrite", "--dates", ",".join(DATES[:2])))
    assert proc.returncode == 1 and "would replace the input" in clean(proc), proc.stderr
    proc = run_process(
        "distill", "--teacher", "shipped", *pair_args(named), "--out", str(as_ckpt), "--overwrite"
    )
    assert proc.returncode == 1 and "would replace the input" in clean(proc), proc.stderr
    assert digest(fine) == before == digest(as_ckpt)


# ----------------------------------------------------------------------------- item 3


def test_resume_errors_are_one_line(
    pairs: list, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Tracebacks: fewer --epochs than done, a truncated resume state, another model's or
    another run's resume state; --strategy foo checked before any file is read."""
    out, other, dc2 = tmp_path / "m.ckpt", tmp_path / "e.ckpt", tmp_path / "d2.ckpt"
    train(pairs, out, dataclasses.replace(TINY, epochs=2))
    train(pairs, other, dataclasses.replace(TINY, model="edcstfn"))
    train(pairs, dc2, TINY)
    proc = run_process(*cmd(pairs, out, "--resume", "--epochs", "1"))
    assert proc.returncode == 2 and "has done 2 epochs" in clean(proc), proc.stderr
    # as many as done: nothing to train, said so (it printed "wrote" and wrote nothing)
    was = digest(out)
    code, said, err = run_cli(cmd(pairs, out, "--resume", "--epochs", "2"), capsys)
    assert code == 0 and "nothing to train, left as it was" in said, said + err
    assert "wrote" not in said and "--epochs 3" in said and digest(out) == was
    assert not [p for p in tmp_path.rglob("*") if p.is_dir() and not any(p.iterdir())]
    state = tmp_path / "m.lightning" / "resume.ckpt"
    good = state.read_bytes()
    state.write_bytes(good[: len(good) // 2])
    proc = run_process(*cmd(pairs, out, "--resume", "--epochs", "3"))
    assert proc.returncode == 1 and "is damaged" in clean(proc), proc.stderr
    shutil.copy(tmp_path / "e.lightning" / "resume.ckpt", state)
    with pytest.raises(InvalidParameterError, match="another model or network"):
        train(pairs, out, dataclasses.replace(TINY, epochs=3), resume=True)
    shutil.copy(tmp_path / "d2.lightning" / "resume.ckpt", state)
    with pytest.raises(InvalidParameterError, match="another run of this model"):
        train(pairs, out, dataclasses.replace(TINY, epochs=3), resume=True)
    missing = [("nowhere_F.tif", "nowhere_C.tif"), ("nowhere_F2.tif", "nowhere_C2.tif")]
    proc = run_process(*cmd(missing, tmp_path / "s.ckpt", "--strategy", "foo"))
    err = clean(proc)
    assert proc.returncode == 2 and "--strategy foo" in err and "ddp" in err, err


def test_distill_resume_with_fewer_epochs(pairs: list, tmp_path: Path) -> None:
    from stfusion.dl.distill import DistillConfig, distill

    out = tmp_path / "s.ckpt"
    cfg = DistillConfig(epochs=2, patch=16, batch=2, steps_per_epoch=2, threads=1, val_patches=2)
    distill(pairs, "shipped", out, dataclasses.replace(cfg, speed_tile=32, speed_repeat=1))
    args = ["distill", "--teacher", "shipped", *pair_args(pairs), "--out", str(out)]
    proc = run_process(*args, "--resume", "--epochs", "1", "--threads", "1")
    assert proc.returncode == 2 and "has done 2 epochs" in clean(proc), proc.stderr


# ----------------------------------------------------------------------------- items 5-8


def test_pairs_without_dates_are_said(tmp_path: Path) -> None:
    files = write_cia_crop(tmp_path, size=40, dates=DATES[:2], bands=(2, 3))
    named = copies_named([files[d] for d in DATES[:2]], tmp_path, "tm", "modis")
    with pytest.warns(STFusionWarning, match=r"could not be read from the file names \(tm0"):
        train(named, tmp_path / "m.ckpt", TINY)
    assert load_checkpoint(tmp_path / "m.ckpt").training_dates == ()
    rows = ["site,date,fine,coarse", *(f"s,,{f.name},{c.name}" for f, c in named)]
    (tmp_path / "cat.csv").write_text("\n".join(rows) + "\n")
    with pytest.warns(STFusionWarning, match=r"of site\(s\) s .*catalog's date column"):
        train(None, tmp_path / "c.ckpt", TINY, catalog=tmp_path / "cat.csv")


def test_catalog_sites_record_their_scaling_and_block(tmp_path: Path) -> None:
    """Only the first site's scaling and validation block were recorded."""
    a = crop(tmp_path / "a")
    b = crop(tmp_path / "b", size=48, origin=(60, 60))
    rows = ["site,date,fine,coarse,fine_scale,coarse_scale"]
    rows += [f"a,{d},{a[d][0]},{a[d][1]},," for d in DATES[:2]]
    rows += [f"b,{d},{b[d][0]},{b[d][1]},2,2" for d in DATES[:2]]
    (tmp_path / "cat.csv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "m.ckpt"
    train(None, out, TINY, catalog=tmp_path / "cat.csv")
    ck = load_checkpoint(out).data
    a_info, b_info = ck["training_site_info"]
    assert a_info["scaling"]["fine"]["scale"] == 1.0 and b_info["scaling"]["fine"]["scale"] == 2.0
    assert a_info["validation_block"]["height"] < b_info["validation_block"]["height"]
    assert (
        ck["scaling"] == a_info["scaling"] and ck["validation_block"] == a_info["validation_block"]
    )


def test_band_count_error_names_what_train_accepts(tmp_path: Path) -> None:
    six = crop(tmp_path / "six", bands=(0, 1, 2, 3, 4, 5))
    three = crop(tmp_path / "three", bands=(2, 3, 4))
    rows = ["site,date,fine,coarse", f"s,{DATES[0]},{six[DATES[0]][0]},{three[DATES[0]][1]}"]
    rows.append(f"s,{DATES[1]},{six[DATES[1]][0]},{six[DATES[1]][1]}")
    (tmp_path / "cat.csv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "x.ckpt"
    proc = run_process("train", "--catalog", str(tmp_path / "cat.csv"), *QUICK, "-o", str(out))
    err = clean(proc)
    assert proc.returncode == 1 and "FILE:BANDS" in err and ".tif:1,2,3" in err, err
    assert "--fine-bands" not in err and "preset" not in err


def test_patch_larger_than_the_scene_is_a_usage_error(pairs: list, tmp_path: Path) -> None:
    proc = run_process(*cmd(pairs, tmp_path / "m.ckpt", "--patch", "64"))
    err = clean(proc)
    assert proc.returncode == 2 and "--patch 64" in err and "40 x 40 px" in err, err
    assert not (tmp_path / "m.ckpt").exists()


# ----------------------------------------------------------------------------- items 9-11, 13


def test_resume_warnings_and_flag_conflicts(pairs: list, tmp_path: Path) -> None:
    out = tmp_path / "m.ckpt"
    train(pairs, out, TINY, meta={"notes": "first run"})
    later = dataclasses.replace(
        TINY, epochs=2, val_dates=[DATES[1]], baseline="additive", init="other.ckpt"
    )
    with pytest.warns(
        STFusionWarning, match=r"val_dates .*baseline 'additive' \(the run's: 'regression'\)"
    ):
        train(pairs, out, later, resume=True)
    assert load_checkpoint(out).meta["notes"] == "first run"  # kept when --note is not given
    proc = run_process(*cmd(pairs, out, "--resume", "--epochs", "3", "--init", "none", "-q"))
    assert proc.returncode == 0 and "--init none: a resumed run" in clean(proc), proc.stderr
    for extra in (["--resume", "--overwrite"], ["--device", "cpu", "--devices", "cuda"]):
        proc = run_process(*cmd(pairs, out, *extra))
        assert proc.returncode == 2 and "give one" in clean(proc), proc.stderr


def test_options_a_model_does_not_read_stay_out_of_its_config(pairs: list, tmp_path: Path) -> None:
    out = tmp_path / "m.ckpt"
    extra = ["--adv-weight", "0.5", "--clip", "1", "--vision-weight", "0.3", "--ae-steps", "50"]
    proc = run_process(*cmd(pairs, out, *extra, "-q"))
    err = clean(proc)
    assert proc.returncode == 0 and "--ae-steps" in err, err
    config = load_checkpoint(out).data["config"]
    assert not {"adv_weight", "clip", "alpha", "beta", "ae_steps"} & set(config), config
    assert config["lr"] == 0.001


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--patch", "8"], "--patch 8"),
        (["--batch", "0"], "--batch 0"),
        (["--lr", "-1"], "--lr -1"),
        (["--epochs", "0"], "--epochs 0"),
        (["--val-fraction", "1"], "--val-fraction 1"),
        (["--val-dates", "2001-11-2"], "YYYY-MM-DD"),
        (["--val-dates", "11/02/2001"], "YYYY-MM-DD"),
        (["--max-invalid", "1"], "--max-invalid 1"),
        (["--max-invalid", "-0.1"], "--max-invalid -0.1"),
        (["--max-invalid", "nan"], "--max-invalid nan"),
    ],
)
def test_bad_values_are_usage_errors(
    args: list[str], said: str, pairs: list, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = run_clean(cmd(pairs, tmp_path / "m.ckpt", *args), capsys)
    assert code == 2 and said in err and "_" not in err.split("Error:")[-1], err


def test_warnings_once_and_vitgan_default_size(pairs: list, tmp_path: Path) -> None:
    """The float16 and the --dates warnings were printed twice; --model vitgan started fresh
    (shipped weights tiny, default size small)."""
    dates = ",".join(reversed(DATES[:2]))
    args = ["train", "--model", "vitgan", *pair_args(pairs), *QUICK[4:], "--patch", "32"]
    args += ["--out", str(tmp_path / "m.ckpt"), "--precision", "16-mixed", "--dates", dates]
    proc = run_process(*args, "--ae-steps", "2", "-q")
    err = clean(proc)
    assert proc.returncode == 0, err
    assert err.count("runs as bf16-mixed") == 1 and err.count("contradicts") == 1, err
    assert "starting from fresh weights" not in err
    assert load_checkpoint(tmp_path / "m.ckpt").data["config"]["size"] == "tiny"


@pytest.mark.parametrize("command", ["train", "distill"])
def test_a_bad_value_is_said_before_torch_is_imported(command: str, tmp_path: Path) -> None:
    """A bad option value waited for torch and Lightning (5 s) before its usage error."""
    import subprocess
    import sys

    from conftest import process_env

    args = [command, "--pair", "a.tif", "b.tif", "--pair", "c.tif", "d.tif"]
    args += ["--out", str(tmp_path / "m.ckpt"), "--max-invalid", "1"]
    if command == "distill":
        args += ["--teacher", "shipped"]
    code = (
        "import sys\nfrom stfusion.cli import main\ntry:\n    main(sys.argv[1:])\n"
        "finally:\n    print('torch' in sys.modules, 'lightning' in sys.modules)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, *args], env=process_env(), capture_output=True, text=True
    )
    assert proc.returncode == 2 and "--max-invalid 1" in proc.stderr, proc.stderr
    assert proc.stdout.split() == ["False", "False"], proc.stdout


def test_python_student_takes_the_commands_size_words() -> None:
    """`TrainConfig(model="student")` failed with its own default size "small", which the
    command maps to micro; Python takes the same words now."""
    assert TrainConfig(model="student").size == "micro"
    assert TrainConfig(model="student", size="paper").size == "mini"
    assert TrainConfig(model="student", size="nano").size == "nano"
    assert TrainConfig(model="edcstfn", size="small").size == "small"
    TrainConfig(model="student").validate()


def test_a_second_run_into_one_out_is_refused_while_the_first_writes(
    pairs: list, tmp_path: Path
) -> None:
    """Two runs into one --out started together both passed the checks (nothing was there
    yet) and wrote over each other, each saying "wrote"; the run writing holds a lock now and
    the other stops, naming it. A process holding that lock stands in for the first run."""
    import fcntl

    out = tmp_path / "runs" / "m.ckpt"
    out.parent.mkdir()
    lock = out.parent / ".m.ckpt.stfusion-train.lock"
    with open(lock, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        proc = run_process(*cmd(pairs, out, "--epochs", "1"))
    assert proc.returncode == 1
    assert "another training run into it is under way" in clean(proc)
    assert sorted(p.name for p in out.parent.iterdir()) == [lock.name]  # nothing written
    proc = run_process(*cmd(pairs, out, "--epochs", "1"))  # the lock's holder has gone
    assert proc.returncode == 0, proc.stderr
    assert out.exists() and not lock.exists()


def test_a_run_that_saved_no_checkpoint_leaves_no_log(
    pairs: list, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk (EFBIG) when the first checkpoint was written: the run failed, but its
    loss log stayed at its final name and the rerun asked for --overwrite because of it."""
    import errno

    import stfusion.dl.engine as engine

    def full(*a: object, **k: object) -> None:
        raise OSError(errno.EFBIG, "File too large")

    monkeypatch.setattr(engine, "save_checkpoint", full)
    out = tmp_path / "runs" / "m.ckpt"
    with pytest.raises(OSError, match="too large"):
        train(pairs, out, TINY)
    assert not out.parent.exists() or list(out.parent.iterdir()) == []
    monkeypatch.undo()
    train(pairs, out, TINY)  # the same run again, no --overwrite needed
    assert out.exists()


def test_gdal_cache_is_bounded_before_the_checks_read_the_scenes(pairs: list) -> None:
    """Coarse images on their own grid: opening the sites (their checks) and the validation
    sample read every block of each warped coarse image, and GDAL's default cache (5 % of
    the RAM) kept them: peak memory grew by one fine-sized image per date (1417 MB for three
    3000 x 3000 x 6 dates, 669 MB now). The cache is bounded from the opening on."""
    from rasterio.env import get_gdal_config, set_gdal_config

    from stfusion.dl import datasets as ds
    from stfusion.dl.train import open_training_sites

    old = get_gdal_config("GDAL_CACHEMAX")
    set_gdal_config("GDAL_CACHEMAX", 2**30)
    try:
        open_training_sites(pairs)
        assert get_gdal_config("GDAL_CACHEMAX") == ds.GDAL_CACHE_BYTES
    finally:
        set_gdal_config("GDAL_CACHEMAX", old if old is not None else 2**30)


def test_val_dates_read_every_spelling_dates_do(
    pairs: list, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A trial: --dates took 20011008 but --val-dates 20011017 was "not a date of the
    pairs" (the pairs' dates are ISO)."""
    from conftest import run_cli

    code, _, err = run_cli(cmd(pairs, tmp_path / "m.ckpt", "--val-dates", "20011017"), capsys)
    assert code == 1 and "no training examples" in err and "not a date" not in err, err
    code, _, err = run_cli(cmd(pairs, tmp_path / "m.ckpt", "--val-dates", "2001-13-45"), capsys)
    assert code == 2 and "--val-dates" in err and "not a date" in err, err


def test_a_run_into_a_busy_out_is_refused_before_any_work(
    pairs: list, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A trial: the second run into a fresh --out trained its autoencoder (52 s) before the
    lock refused it; the checks before any work now look at the lock too."""
    import fcntl

    import stfusion.dl.train as training
    from stfusion.errors import OutputExistsError

    def reached(*a: object, **k: object) -> None:
        raise AssertionError("the run read its data")

    monkeypatch.setattr(training, "run_data", reached)
    out = tmp_path / "runs" / "m.ckpt"
    out.parent.mkdir()
    with open(out.parent / ".m.ckpt.stfusion-train.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(OutputExistsError, match="another training run into it is under way"):
            train(pairs, out, TINY)


def test_an_init_of_another_baseline_names_the_baseline_not_the_size(
    pairs: list, tmp_path: Path
) -> None:
    """A trial: `--init own.ckpt --baseline additive` on a regression-baseline checkpoint of
    the same size said "to fine-tune it give its --size"."""
    import dataclasses

    from stfusion.errors import InvalidParameterError

    own = tmp_path / "own.ckpt"
    train(pairs, own, TINY)
    again = dataclasses.replace(TINY, init=str(own), baseline="additive")
    with pytest.raises(InvalidParameterError, match=r"give --baseline regression") as caught:
        train(pairs, tmp_path / "m.ckpt", again)
    assert "--size" not in str(caught.value)
