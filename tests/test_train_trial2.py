"""What a second user trial of `stfusion train` and `stfusion distill` found: cloudy scenes
refused by a fixed 1 % limit on invalid pixels, a traceback for a band-tied --init of other
bands, the progress bar on stdout, held-out dates reported as trained on, catalog date
messages, an --out ending in a separator. Tiny crops, one thread, a few steps."""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio

torch = pytest.importorskip("torch")

from conftest import run_process  # noqa: E402
from dl_helpers import pair_args  # noqa: E402
from stfusion.dl.checkpoint import load_checkpoint  # noqa: E402
from stfusion.dl.train import train  # noqa: E402
from stfusion.errors import InvalidParameterError, STFusionWarning  # noqa: E402
from test_dl_data import DATES  # noqa: E402
from test_train_trial import QUICK, TINY, clean, cmd, crop  # noqa: E402


def cloudy(files: list, share: float = 0.16, seed: int = 0) -> None:
    """Scattered invalid pixels (NaN, declared nodata) over ``share`` of each fine image."""
    rng = np.random.default_rng(seed)
    for fine, _ in files:
        with rasterio.open(fine) as src:
            profile, data = src.profile, src.read().astype("float32")
        data[:, rng.random(data.shape[1:]) < share] = np.nan
        profile.update(dtype="float32", nodata=float("nan"))
        with rasterio.open(fine, "w", **profile) as dst:
            dst.write(data)


@pytest.fixture
def two(tmp_path: Path) -> list[tuple[Path, Path]]:
    """The (fine, coarse) files of the first two dates of a 40 px crop."""
    files = crop(tmp_path / "data")
    return [files[d] for d in DATES[:2]]


@pytest.fixture
def cloudy_pairs(two: list) -> list[tuple[Path, Path]]:
    cloudy(two)
    return two


# ----------------------------------------------------------------------------- item 1


def test_max_invalid_lets_cloudy_scenes_train(cloudy_pairs: list, tmp_path: Path) -> None:
    """A fixed 1 % limit refused a scene with 16 % scattered clouds, and the message said
    "with valid pixels"; --max-invalid is an option, stored and kept by --resume."""
    out = tmp_path / "m.ckpt"
    proc = run_process(*cmd(cloudy_pairs, out))
    err = clean(proc)
    assert proc.returncode == 1 and "at most 1 % invalid" in err, err
    assert "--max-invalid 0.2" in err and "smaller --patch" in err, err
    proc = run_process(*cmd(cloudy_pairs, out, "--max-invalid", "0.3", "--epochs", "1", "-q"))
    assert proc.returncode == 0, proc.stderr
    assert load_checkpoint(out).data["config"]["max_invalid"] == 0.3
    # resumed without the option: the run's 0.3 (the default 0.01 would find no patch)
    proc = run_process(*cmd(cloudy_pairs, out, "--resume", "--epochs", "2", "-q"))
    assert proc.returncode == 0, proc.stderr
    # its bad values: test_train_trial.test_bad_values_are_usage_errors


def test_max_invalid_reaches_stfdcnn_and_distill(cloudy_pairs: list, tmp_path: Path) -> None:
    from stfusion.dl.train_stfdcnn import STFDCNNConfig, train_stfdcnn

    cfg = STFDCNNConfig(
        size="tiny", epochs=1, patch=16, batch=2, steps_per_epoch=2, threads=1, val_patches=2
    )
    cfg.device = "cpu"
    with pytest.raises(InvalidParameterError, match="at most 1 % invalid"):
        train_stfdcnn(cloudy_pairs, tmp_path / "s.ckpt", cfg)
    r = train_stfdcnn(cloudy_pairs, tmp_path / "s2.ckpt", dataclasses.replace(cfg, max_invalid=0.3))
    assert r.epochs == 1
    args = ["distill", "--teacher", "shipped", *pair_args(cloudy_pairs), "--threads", "1"]
    args += ["--patch", "16", "--batch", "2", "--steps-per-epoch", "2", "--val-patches", "2"]
    proc = run_process(*args, "--out", str(tmp_path / "d.ckpt"), "--epochs", "1")
    err = clean(proc)
    assert proc.returncode == 1 and "--max-invalid" in err, err
    proc = run_process(*args, "--out", str(tmp_path / "d.ckpt"), "--max-invalid", "1")
    assert proc.returncode == 2 and "--max-invalid 1" in clean(proc), proc.stderr
    with pytest.raises(InvalidParameterError, match="at most 1 % invalid"):
        train(cloudy_pairs, tmp_path / "t.ckpt", TINY)


# ----------------------------------------------------------------------------- item 2


def test_band_tied_init_of_other_bands_is_one_line(tmp_path: Path) -> None:
    """A band-tied --init checkpoint of 3 bands on 6-band pairs ended in load_state_dict's
    size-mismatch traceback."""
    files = crop(tmp_path / "data", bands=(0, 1, 2, 3, 4, 5))
    six = [files[d] for d in DATES[:2]]
    three = [(Path(f"{f}:2,3,4"), Path(f"{c}:2,3,4")) for f, c in six]
    first = tmp_path / "three.ckpt"
    proc = run_process(*cmd(three, first, "--band-tied", "--epochs", "1", "-q"))
    assert proc.returncode == 0, proc.stderr
    assert load_checkpoint(first).data["network"]["bands"] == 3
    out = tmp_path / "six.ckpt"
    proc = run_process(*cmd(six, out, "--band-tied", "--epochs", "1", "--init", str(first)))
    err = clean(proc)
    assert proc.returncode == 1 and "band-tied dcstfn of 3 band(s)" in err, err
    assert "have 6" in err and "--init none" in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()


# ----------------------------------------------------------------------------- item 3


def test_progress_bar_goes_to_stderr_counting_from_one(two: list, tmp_path: Path) -> None:
    """Lightning's bar wrote to stdout (`train ... > out.txt` filled the file with bars)
    while it was shown when stderr was a terminal, and counted epochs from 0."""
    import fcntl
    import os
    import pty
    import struct
    import subprocess
    import termios
    import threading

    from conftest import process_env, stfusion_cmd

    master, slave = pty.openpty()
    # a terminal of 0 columns (a new pty's) would get empty bars
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    got: list[bytes] = []

    def read() -> None:
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # the process ended: the pty is closed
                return
            if not chunk:
                return
            got.append(chunk)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    args = cmd(two, tmp_path / "m.ckpt", "--epochs", "2", "--patience", "5")
    proc = subprocess.run(
        stfusion_cmd(*args), env=process_env(), stdout=subprocess.PIPE, stderr=slave, timeout=300
    )
    os.close(slave)
    reader.join(timeout=10)
    os.close(master)
    err = b"".join(got).decode(errors="replace")
    out = proc.stdout.decode(errors="replace")
    assert proc.returncode == 0, err
    assert "Epoch" not in out and "\r" not in out and "it/s" not in out, out
    assert "Epoch 1" in err and "Epoch 2" in err and "Epoch 0" not in err, err


# ----------------------------------------------------------------------------- item 4


def test_held_out_dates_are_recorded_apart(tmp_path: Path) -> None:
    """A --val-dates date was recorded only among the training dates, so predict said the
    weights were "trained on" it; older checkpoints give their validation.dates."""
    from stfusion.dl.checkpoint import Checkpoint

    files = crop(tmp_path / "data", dates=DATES)
    out = tmp_path / "m.ckpt"
    train([files[d] for d in DATES], out, dataclasses.replace(TINY, val_dates=[DATES[2]]))
    ck = load_checkpoint(out)
    assert ck.training_dates == DATES  # the bench still keeps the model off all three
    assert ck.validation_dates == (DATES[2],) == tuple(ck.data["validation_dates"])
    old = {k: v for k, v in ck.data.items() if k != "validation_dates"}
    assert Checkpoint(ck.path, old).validation_dates == (DATES[2],)
    taught = {**old, "teacher": {"training_dates": [DATES[2]]}}
    assert Checkpoint(ck.path, taught).validation_dates == ()


def test_distilled_held_out_dates_leave_out_the_teachers(tmp_path: Path) -> None:
    """A student's held-out date that its teacher trained on is no validation date: the
    teacher's outputs on it were the student's targets' source."""
    from stfusion.dl.distill import DistillConfig, distill

    files = crop(tmp_path / "data", dates=DATES)
    cfg = DistillConfig(epochs=1, patch=16, batch=2, steps_per_epoch=2, threads=1, val_patches=2)
    cfg = dataclasses.replace(cfg, speed_tile=32, speed_repeat=1, val_dates=[DATES[0]])
    out = tmp_path / "s.ckpt"
    distill([files[d] for d in DATES], "shipped", out, cfg)
    ck = load_checkpoint(out)
    assert DATES[0] in ck.data["teacher"]["training_dates"]  # the shipped EDCSTFN's CIA dates
    assert ck.data["validation"]["dates"] == [DATES[0]] and ck.validation_dates == ()


# ----------------------------------------------------------------------------- item 5


def test_catalog_dates_name_the_row_and_take_the_file_name_forms(tmp_path: Path) -> None:
    """A catalog date that contradicts the file name was reported as "--dates ...
    contradicts" with no --dates given; day-of-year dates (as file names use) were refused."""
    from stfusion.dl.datasets import open_sites, read_catalog
    from stfusion.errors import STFusionWarning

    files = crop(tmp_path / "data")
    (f1, c1), (f2, c2) = (files[d] for d in DATES[:2])
    csv = tmp_path / "cat.csv"
    # 2001281 is 2001-10-08 (day 281), 20011017 2001-10-17: the file names' dates
    csv.write_text(f"site,date,fine,coarse\ns,2001281,{f1},{c1}\ns,20011017,{f2},{c2}\n")
    assert [p.date for p in read_catalog(csv)["s"]] == list(DATES[:2])
    csv.write_text(f"site,date,fine,coarse\ns,2001-10-08,{f1},{c1}\ns,2001-10-09,{f2},{c2}\n")
    with pytest.warns(STFusionWarning) as caught:
        open_sites(read_catalog(csv))
    said = " ".join(str(w.message) for w in caught)
    assert f"{csv}, line 3: date 2001-10-09 contradicts the file name" in said, said
    assert "--dates" not in said, said
    # another row's date left empty (read from its file name): the given one still counts
    # (a user trial: every row then took its file name's date, silently)
    csv.write_text(f"site,date,fine,coarse\ns,,{f1},{c1}\ns,2001-10-09,{f2},{c2}\n")
    with pytest.warns(STFusionWarning, match=r"line 3: date 2001-10-09 contradicts"):
        (site,) = open_sites(read_catalog(csv))
    assert list(site.dates) == ["2001-10-08", "2001-10-09"]
    csv.write_text(f"site,date,fine,coarse\ns,8.10.2001,{f1},{c1}\ns,20011017,{f2},{c2}\n")
    with pytest.raises(InvalidParameterError, match=r"line 2: .*YYYY-MM-DD, YYYYMMDD or YYYYDDD"):
        read_catalog(csv)


# ----------------------------------------------------------------------------- item 6


@pytest.mark.parametrize("command", ["train", "distill"])
def test_out_ending_in_a_slash_is_refused(command: str, two: list, tmp_path: Path) -> None:
    """--out newdir/ wrote a file named newdir and newdir.lightning/ beside it."""
    out = f"{tmp_path / 'newdir'}/"
    if command == "train":
        args = ["train", "--model", "dcstfn", *pair_args(two), *QUICK, "--out", out]
    else:
        args = ["distill", "--teacher", "shipped", *pair_args(two), "--patch", "16"]
        args += ["--epochs", "1", "--steps-per-epoch", "2", "--threads", "1", "--out", out]
    proc = run_process(*args)
    err = clean(proc)
    assert proc.returncode == 2 and f"--out {out}: ends with a slash" in err, err
    assert "newdir/model.ckpt" in err, err
    assert not (tmp_path / "newdir").exists() and not (tmp_path / "newdir.lightning").exists()


def test_predict_says_a_held_out_date_was_not_trained_on(tmp_path: Path) -> None:
    """predict called a --val-dates date "trained on": it chose the epoch, no example of it
    was trained on."""
    from conftest import run_cli
    from stfusion.errors import STFusionWarning

    files = crop(tmp_path / "data", dates=DATES)
    out = tmp_path / "m.ckpt"
    train([files[d] for d in DATES], out, dataclasses.replace(TINY, val_dates=[DATES[2]]))
    for target, said in (
        (DATES[2], "held out for validation"),
        (DATES[1], "trained on the target"),
    ):
        args = ["predict", "--method", "dcstfn", "--param", f"weights={out}"]
        args += ["--pair", str(files[DATES[0]][0]), str(files[DATES[0]][1])]
        args += ["--coarse", str(files[target][1]), "--out", str(tmp_path / f"{target}.tif"), "-q"]
        with pytest.warns(STFusionWarning, match=said):
            assert run_cli(args)[0] == 0


def test_one_file_as_both_images_of_a_training_pair_is_refused(two: list, tmp_path: Path) -> None:
    """`--pair L.tif L.tif` (or a catalog row with the fine file twice) trained the network
    on a date fused with itself, exit 0."""
    (f1, c1), (f2, c2) = two
    out = tmp_path / "m.ckpt"
    proc = run_process(
        "train", "--model", "dcstfn", *pair_args([(f1, c1), (f2, f2)]), *QUICK, "--out", str(out)
    )
    err = clean(proc)
    assert proc.returncode == 1 and f"--pair 2: {f2} is both the fine and the coarse" in err, err
    csv = tmp_path / "cat.csv"
    csv.write_text(f"site,date,fine,coarse\ns,2001-10-08,{f1},{f1}\ns,2001-10-17,{f2},{c2}\n")
    with pytest.raises(InvalidParameterError, match=r"cat\.csv, site s: .* is both"):
        train(None, out, catalog=csv)
    assert not out.exists() and not out.with_name("m.lightning").exists()


def test_a_catalog_with_semicolons_says_so(tmp_path: Path) -> None:
    """A user trial: a catalog a spreadsheet wrote with ';' between columns was refused
    without saying why its columns were not found."""
    from stfusion.dl.catalog import read_catalog

    csv = tmp_path / "cat.csv"
    csv.write_text("site;date;fine;coarse\ncia;2001-10-08;a.tif;b.tif\n")
    with pytest.raises(InvalidParameterError, match=r"separated by ';': write them with commas"):
        read_catalog(csv)


def test_a_training_catalogs_band_file_list_is_relative_to_it(tmp_path: Path) -> None:
    """The training catalog reads its paths as the series' does (one function): every file
    of a quoted comma list relative to the catalog, not only the first."""
    from stfusion.dl.catalog import read_catalog

    csv = tmp_path / "cat.csv"
    csv.write_text('site,date,fine,coarse\ns,2001-10-08,"L/B2.tif,L/B3.tif",M.tif\n')
    (tmp_path / "M.tif").write_bytes(b"")
    (spec,) = read_catalog(csv)["s"]
    assert spec.fine == f"{tmp_path}/L/B2.tif,{tmp_path}/L/B3.tif"


def test_a_catalogs_unknown_columns_are_said_and_blank_rows_skipped(tmp_path: Path) -> None:
    """A training trial: misspelt scale columns (fine_scal) were ignored without a word, so
    the model trained on raw numbers (validation RMSE 98); a spreadsheet's blank line, a row
    of commas, was an error ("the fine column is empty")."""
    from stfusion.dl.catalog import read_catalog
    from stfusion.errors import STFusionWarning

    for name in ("F.tif", "C.tif"):
        (tmp_path / name).write_bytes(b"")
    csv = tmp_path / "cat.csv"
    csv.write_text(
        "site,date,fine,coarse,fine_scal,notes\n"
        "s,2001-10-08,F.tif,C.tif,0.0001,clear\n"
        ",,,,,\n"
        "s,2001-10-17,F.tif,C.tif,0.0001,\n"
    )
    with pytest.warns(STFusionWarning, match=r"fine_scal \(did you mean fine_scale\?\), notes are"):
        specs = read_catalog(csv)["s"]
    assert [s.date for s in specs] == ["2001-10-08", "2001-10-17"]
    assert specs[0].fine_scale is None  # not read: said above


def test_dates_without_pairs_are_refused(tmp_path: Path) -> None:
    """A training trial: --dates with --catalog alone was ignored without a word."""
    csv = tmp_path / "cat.csv"
    csv.write_text("site,date,fine,coarse\n")
    with pytest.raises(InvalidParameterError, match=r"--dates gives the dates of the --pair"):
        train(None, tmp_path / "m.ckpt", catalog=csv, dates=["1999-01-01", "1999-02-01"])


def test_a_kept_network_worse_than_additive_is_warned_about() -> None:
    """A trial: a fine-tune kept epoch 4, the only one worse than additive on validation
    (0.02993 against 0.02976; epoch 3 had 0.02853), and said nothing."""
    from stfusion.cli.train import _warn_kept_epoch

    history = [
        {"epoch": e, "val_rmse": v, "val_rmse_additive": 0.02976}
        for e, v in enumerate((0.02893, 0.02869, 0.02853, 0.02993, 0.02854), start=1)
    ]
    with pytest.warns(
        STFusionWarning, match=r"epoch 4.*0\.02993, worse than the additive.*epoch 3"
    ):
        _warn_kept_epoch(history[3], history)
    # no advice to start from the shipped weights to a run that did, or to a band-tied one
    with pytest.warns(STFusionWarning) as said:
        _warn_kept_epoch(history[3], history, init_advice=False)
    assert "--init shipped" not in str(said[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error", STFusionWarning)
        _warn_kept_epoch(history[2], history)
        _warn_kept_epoch({"epoch": 1, "val_rmse": float("nan")}, history)


def test_val_dates_take_year_and_day_of_the_year() -> None:
    """A trial: --val-dates 2020077 was a usage error while --dates and catalogs take
    YYYYDDD (Kranj's and MODIS's file names)."""
    from stfusion.errors import OptionError
    from stfusion.run_config import check_iso_date

    assert check_iso_date("2020077", "--val-dates") == "2020-03-17"
    assert check_iso_date("2001-11-02", "--val-dates") == "2001-11-02"
    for bad in ("2001367", "2001000", "20011102", "2001-13-01"):
        with pytest.raises(OptionError, match="YYYYDDD"):
            check_iso_date(bad, "--val-dates")
