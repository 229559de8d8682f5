"""Outputs that cannot be written whole (a full disk) never appear under the output's name,
and what may be replaced with --overwrite: through real subprocesses where it matters."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import KRANJ, need, write_tif
from stfusion.errors import InvalidParameterError, OutputExistsError, OutputWriteError
from stfusion.io import check_output
from stfusion.io.writing import check_written

L068 = "landsat/filled/2020068_191-28.tif_filled_kranj.tif"
M068 = "modis/filled/2020068_18-04_kranj.tif"
M077 = "modis/filled/2020077_18-04_kranj.tif"


def _stfusion(*args: str, file_limit: int | None = None) -> subprocess.CompletedProcess:
    """``stfusion ARGS`` in a child process whose files may not grow past ``file_limit``
    bytes (RLIMIT_FSIZE: a write past it fails as on a full disk)."""

    def limit() -> None:
        if file_limit is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_limit, file_limit))
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failing write, not a kill

    return subprocess.run(
        [sys.executable, "-m", "stfusion", *args],
        preexec_fn=limit,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _predict(out: Path, *extra: str, file_limit: int | None = None) -> subprocess.CompletedProcess:
    """``stfusion predict`` (STARFM on Kranj), its files limited to ``file_limit`` bytes."""
    k = need(KRANJ)
    args = ["--pair", str(k / L068), str(k / M068), "--coarse", str(k / M077)]
    args += ["--fine-scale", "1e-4", "--out", str(out), *extra]
    return _stfusion("predict", *args, file_limit=file_limit)


@pytest.mark.parametrize("file_limit", [20_000, 40_000])
def test_a_full_disk_fails_the_run_and_leaves_nothing(tmp_path: Path, file_limit: int) -> None:
    """The output (47 KB) cut at 20 or 40 KB: GDAL only printed the error, the truncated file
    was renamed into place and predict said "wrote" with exit status 0."""
    out = tmp_path / "p.tif"
    r = _predict(out, file_limit=file_limit)
    assert r.returncode == 1, r.stderr
    assert f"{out}: could not be written completely" in r.stderr
    assert "Nothing was written under that name" in r.stderr and "Traceback" not in r.stderr
    assert sorted(os.listdir(tmp_path)) == []  # no output, no partial, no scratch file
    r = _predict(out)  # with room, the same command works
    assert r.returncode == 0, r.stderr
    check_written(out)


def test_check_written_finds_a_truncated_raster(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    path = write_tif(tmp_path / "a.tif", rng.random((3, 300, 300)).astype(np.float32))
    check_written(path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(OutputWriteError, match=r"out\.tif: could not be written completely"):
        check_written(path, tmp_path / "out.tif")


def test_overwrite_replaces_only_regular_files(tmp_path: Path) -> None:
    """``--overwrite`` on /dev/full or a FIFO turned them into GeoTIFFs; a path ending in a
    slash wrote a file named like the folder; a name the file system takes but its partial's
    longer name does not failed after all the work."""
    fifo = tmp_path / "pipe.tif"
    os.mkfifo(fifo)
    link = tmp_path / "null.tif"
    link.symlink_to("/dev/null")
    for special in (fifo, link, Path("/dev/null")):
        with pytest.raises(OutputExistsError, match="not a regular file"):
            check_output(special, overwrite=True)
    regular = tmp_path / "old.tif"
    regular.write_bytes(b"x")
    to_regular = tmp_path / "link.tif"
    to_regular.symlink_to(regular)
    assert check_output(regular, overwrite=True) == regular
    assert check_output(to_regular, overwrite=True) == to_regular
    with pytest.raises(InvalidParameterError, match="ends with a slash"):
        check_output(f"{tmp_path}/newdir/", overwrite=False)
    with pytest.raises(InvalidParameterError, match="file name is too long"):
        check_output(tmp_path / ("c" * 216 + ".tif"), overwrite=False)
    assert check_output(tmp_path / ("c" * 200 + ".tif"), overwrite=False)
    r = _predict(fifo, "--overwrite")
    assert r.returncode == 1 and "not a regular file" in r.stderr
    assert fifo.is_fifo()


def test_a_full_disk_fails_series_dates_and_keeps_no_broken_output(tmp_path: Path) -> None:
    """A series output cut short was kept and recorded as "predicted"; now the date fails
    with the output named and nothing under its name."""
    k = need(KRANJ)

    out = tmp_path / "out"
    args = ["--fine", str(k / L068), "--fine", str(k / "landsat/filled/2020093_190-28.tif")]
    args[-1] += "_filled_kranj.tif"
    args += ["--coarse", str(k / "modis/filled"), "--fine-scale", "1e-4"]
    args += ["--date-range", "2020-03-10:2020-03-11", "--out-dir", str(out)]
    r = _stfusion("series", *args, file_limit=20_000)
    assert r.returncode == 3, r.stderr
    assert not list(out.glob("fused_*.tif")) and not list(out.glob(".*partial*"))
    summary = (out / "summary.csv").read_text()
    assert summary.count(",failed,") == 2 and "could not be written completely" in summary


def test_bench_on_a_full_disk_says_the_disk_is_full(tmp_path: Path) -> None:
    """``bench`` on a full disk printed a bare "[Errno 28] No space left on device"."""

    args = ["--cases", "sample-cia-1pair", "--methods", "additive", "--no-figures"]
    r = _stfusion("bench", *args, "--out", str(tmp_path / "b"), file_limit=3_000)
    assert r.returncode == 1, r.stderr
    assert "free some space or write the outputs elsewhere" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "b").exists()


def test_a_cube_that_does_not_fit_fails_without_a_traceback(tmp_path: Path) -> None:
    """``--cube netcdf`` on a full disk ended in netCDF4's "RuntimeError: NetCDF: HDF error"
    with a traceback."""
    k = need(KRANJ)

    out = tmp_path / "out"
    args = ["--fine", str(k / L068), "--coarse", str(k / "modis/filled"), "--fine-scale", "1e-4"]
    args += ["--date-range", "2020-03-10:2020-03-12", "--cube", "netcdf", "--out-dir", str(out)]
    r = _stfusion("series", *args, file_limit=60_000)  # a date (47 KB) fits, the cube not
    assert r.returncode == 1, r.stderr
    assert "fused_cube.nc: could not be written completely" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and not list(out.glob(".*partial*"))
    assert len(list(out.glob("fused_2020-*.tif"))) == 3  # the dates are kept


def test_quality_layer_name_is_checked_before_the_work(tmp_path: Path) -> None:
    """OUT's quality layer (OUT_quality.tif) was checked after the fit, and a name too long
    for it gave the quality file's limit, not OUT's."""
    r = _predict(tmp_path / ("a" * 206 + ".tif"), "--quality")
    assert r.returncode == 1 and "with --quality the quality layer" in r.stderr, r.stderr
    assert "give --out a shorter name" in r.stderr and not list(tmp_path.iterdir())
    (tmp_path / "p_quality.tif").write_bytes(b"an earlier quality layer")
    r = _predict(tmp_path / "p.tif", "--quality")
    assert r.returncode == 1 and "p_quality.tif: already exists" in r.stderr
    assert not (tmp_path / "p.tif").exists()


def test_a_failed_run_takes_back_only_the_files_it_placed(tmp_path: Path) -> None:
    """Two `predict --quality` to one new --out: the one that lost removed the quality layer
    the other had just written (and reported), since it took back any file that changed
    while it ran. Now a failed run removes only what it placed itself."""
    from stfusion.io import atomic_path, removed_if_written

    theirs, mine = tmp_path / "theirs.tif", tmp_path / "mine.tif"
    with pytest.raises(RuntimeError), removed_if_written([theirs, mine]):
        theirs.write_bytes(b"another process's file")  # not placed by this process
        with atomic_path(mine) as tmp:
            tmp.write_bytes(b"this run's file")
        raise RuntimeError("the run fails after both appeared")
    assert theirs.read_bytes() == b"another process's file"
    assert not mine.exists()


def test_a_new_output_is_never_placed_over_one_that_appeared_meanwhile(tmp_path: Path) -> None:
    """Without overwrite, the check for an existing output and the rename were two steps:
    two runs writing one new output at once could both pass the check, and the second
    replaced the first's file. The file is now linked into place, which fails if one is
    there."""
    from stfusion.io import atomic_path

    final = tmp_path / "out.tif"
    real_exists = Path.exists
    calls = {"n": 0}

    def exists_late(self: Path) -> bool:  # the other run's file lands just after the check
        if self == final and calls["n"] == 0:
            calls["n"] += 1
            final.write_bytes(b"the other run's output")
            return False
        return real_exists(self)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Path, "exists", exists_late)
        with pytest.raises(OutputExistsError, match="appeared while writing"):
            with atomic_path(final) as tmp:
                tmp.write_bytes(b"mine")
    assert final.read_bytes() == b"the other run's output"
    assert [p.name for p in tmp_path.iterdir()] == ["out.tif"]  # no partial left


def test_two_predictions_into_one_output_do_not_interleave(
    small_tifs: dict[str, Path], tmp_path: Path
) -> None:
    """Two `predict --overwrite --quality` into one --out at once both exited 0, leaving the
    prediction of one beside the quality layer of the other. The run writing holds a lock
    beside the output; a second run is refused while it does."""
    from stfusion.api import run_prediction
    from stfusion.io import OutputLock

    out = tmp_path / "same.tif"
    kw = {
        "method": "additive",
        "pairs": [(str(small_tifs["f1"]), str(small_tifs["c1"]))],
        "target": str(small_tifs["c2"]),
        "out": str(out),
        "overwrite": True,
        "quality": True,
    }
    with OutputLock(out, "predict", "the other run"):  # as another process's run holds it
        with pytest.raises(OutputExistsError, match="another stfusion predict into it"):
            run_prediction(**kw)
    assert not out.exists()
    run_prediction(**kw)  # released: runs, and leaves no lock file
    assert out.exists() and (tmp_path / "same_quality.tif").exists()
    assert not list(tmp_path.glob(".*lock"))


def test_a_pid_no_process_can_have_is_not_alive() -> None:
    """A damaged series lock naming PID 99999999999999999999 was an OverflowError
    traceback from os.kill."""
    from stfusion.io import pid_alive

    assert not pid_alive(99999999999999999999)
    assert not pid_alive(-5) and not pid_alive(0)
    assert pid_alive(os.getpid())


def test_an_output_lock_is_never_held_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run ending removes its lock file: a second run that had opened that file just
    before locked the removed file, and a third then created and locked a new one, so two
    runs wrote at once. A lock on a file no longer at the path is taken again."""
    import fcntl

    from stfusion.io import OutputLock

    out = tmp_path / "p.tif"
    first = OutputLock(out, "predict", "first")
    real_flock = fcntl.flock
    calls = {"n": 0}

    def first_ends_meanwhile(fd: int, op: int) -> None:
        calls["n"] += 1
        if calls["n"] == 1:  # the second run opened the file; the first ends now
            first.release()
        real_flock(fd, op)

    monkeypatch.setattr(fcntl, "flock", first_ends_meanwhile)
    second = OutputLock(out, "predict", "second")
    monkeypatch.setattr(fcntl, "flock", real_flock)
    with pytest.raises(OutputExistsError, match="third"):
        OutputLock(out, "predict", "third")
    second.release()
    assert not list(tmp_path.iterdir())


def test_a_write_past_the_file_size_limit_names_the_limit(tmp_path: Path) -> None:
    """Under `ulimit -f` a write failed "... 74039 MB free", as if the disk were full."""
    out = tmp_path / "p.tif"
    script = (
        "import resource, sys; resource.setrlimit(resource.RLIMIT_FSIZE, (200 * 1024, "
        "resource.RLIM_INFINITY)); from stfusion.cli.main import main; sys.argv = ['stfusion', "
        + ", ".join(repr(a) for a in ["predict", *_sample_predict_args(), "--out", str(out)])
        + "]; main()"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")},
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "at most 0.2 MB (ulimit -f)" in done.stderr and not out.exists()


def _sample_predict_args() -> list[str]:
    from stfusion.demo import sample_dir

    d = sample_dir()
    return [
        "-m", "additive", "-q",
        "--pair", str(d / "CIA_Landsat7_2001-10-17.tif"), str(d / "CIA_MOD09GA_2001-10-17.tif"),
        "--coarse", str(d / "CIA_MOD09GA_2001-11-02.tif"),
    ]  # fmt: skip


def test_a_full_disk_is_named_even_with_space_free_again(tmp_path: Path) -> None:
    """A storage trial: a 2000 x 2000 output on a 140 MB tmpfs failed with "68.6 MB free on
    the output's file system" and no hint, the partials' space being free again by then."""
    import errno

    from stfusion.io.writing import write_failed

    full = OSError(errno.ENOSPC, "No space left on device")
    msg = str(write_failed(tmp_path / "p.tif", full))
    assert "MB free on the output's file system (it filled up while writing?" in msg, msg
    assert "about twice its size" in msg
    gdal = RuntimeError("TIFFAppendToStrip:Write error at scanline 1536")
    assert "filled up while writing" in str(write_failed(tmp_path / "p.tif", gdal))
    other = str(write_failed(tmp_path / "p.tif", RuntimeError("IReadBlock failed")))
    assert "filled up" not in other
    # rasterio's own words point at an exception the user never sees: its text is said
    try:
        try:
            raise RuntimeError("TIFFAppendToStrip:Write error at scanline 0")
        except RuntimeError:
            raise OSError("Write failed. See previous exception for details.")  # noqa: B904
    except OSError as chained:
        msg = str(write_failed(tmp_path / "p.tif", chained))
    assert "(Write failed: TIFFAppendToStrip:Write error at scanline 0)" in msg, msg
    assert "previous exception" not in msg and "filled up while writing" in msg, msg


@pytest.mark.parametrize("when", ["while it is taken", "before its with"])
def test_a_run_stopped_by_a_signal_beside_its_lock_leaves_no_lock_file(
    tmp_path: Path, when: str
) -> None:
    """CI once found ``.starfm_2001-11-02.tif.stfusion-predict.lock`` left by a demo run
    stopped with SIGTERM: the signal's exception came between the lock and the ``with`` that
    lets it go. A signal while the lock is taken waits until it is held; a lock never let go
    goes at exit. The same CI then found a signal masked in the main thread given to another
    thread, which ran the handler at once: handlers defer it now, not the mask."""
    out = tmp_path / "p.tif"
    script = f"""
import os, signal, sys, threading, time
from pathlib import Path
from stfusion.io import OutputLock

# another thread, as BLAS and numba start: a signal masked in the main thread went to it
threading.Thread(target=time.sleep, args=(60,), daemon=True).start()

def stop(signum, frame):
    raise SystemExit(143)

signal.signal(signal.SIGTERM, stop)
if {when!r} == "while it is taken":
    real = os.path.samestat
    def signalled(a, b):
        os.kill(os.getpid(), signal.SIGTERM)
        return real(a, b)
    os.path.samestat = signalled
lock = OutputLock(Path({str(out)!r}), "predict", "x")
os.path.samestat = real if {when!r} == "while it is taken" else os.path.samestat
print("held", flush=True)
os.kill(os.getpid(), signal.SIGTERM)
with lock:
    print("not reached")
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")},
    )  # fmt: skip
    assert done.returncode == 143, done.stderr
    assert "not reached" not in done.stdout
    assert not list(tmp_path.iterdir())


def test_a_series_stops_computing_once_the_disk_is_full(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 3 MB file system filled at the 7th of 26 dates: each later date was computed in full
    and failed at its write the same way (2-3 min; on a large scene hours). Now the dates
    after it are said "not run" without being computed, and a run with room makes them."""
    import errno

    import stfusion.series.runner as series_mod
    from stfusion.io.write_failures import write_failed
    from stfusion.series import read_summary, run_series

    k = need(KRANJ)
    tried: list[str] = []

    def full(est: object, target: object, path: Path, *a: object) -> Path:
        tried.append(path.name)
        raise write_failed(path, OSError(errno.ENOSPC, "No space left on device"))

    monkeypatch.setattr(series_mod, "_predict_component", full)
    out = tmp_path / "out"
    kw = {"fine_scale": 1e-4, "date_range": "2020-03-10:2020-03-13", "method": "additive"}
    fine, coarse = [str(k / "landsat/filled")], [str(k / "modis/filled")]
    result = run_series(out, fine=fine, coarse=coarse, **kw)
    assert len(tried) == 1 and tried[0].startswith("2020-03-10_")  # one component, one date
    rows = {r["date"]: r for r in read_summary(out / "summary.csv")}
    assert "filled up while writing" in rows["2020-03-10"]["reason"]
    for day in ("2020-03-11", "2020-03-12", "2020-03-13"):
        assert rows[day]["status"] == "failed"
        assert rows[day]["reason"].startswith("not run: the output's file system was full when")
    assert len(result.failed) == 4
    monkeypatch.undo()
    again = run_series(out, fine=fine, coarse=coarse, **kw)
    assert not again.failed and len(list(out.glob("fused_*.tif"))) == 4


def test_a_short_write_to_standard_output_is_an_error_not_a_cut_report(tmp_path: Path) -> None:
    """A trial: `evaluate --csv > scores.csv` on a disk with 4 kB left kept 4096 of 6757
    bytes, exit 0, no word (Python's byte buffer drops what a short write leaves)."""
    report = tmp_path / "help.txt"

    def limit() -> None:  # the report's file may not grow past 4 kB, as on a full disk
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    with report.open("w") as out:
        done = subprocess.run(
            [sys.executable, "-m", "stfusion", "series", "--help"],
            preexec_fn=limit, stdout=out, stderr=subprocess.PIPE, text=True, timeout=300,
        )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "standard output could not be written" in done.stderr, done.stderr
    assert report.stat().st_size == 4096
    whole = _stfusion("series", "--help")
    assert whole.returncode == 0 and len(whole.stdout) > 4096  # else nothing was tested


def test_an_error_writing_an_output_names_the_output_not_its_temporary_name(
    tmp_path: Path,
) -> None:
    """A trial: a full disk under matplotlib's savefig said "[Errno 28] No space left on
    device" and named no file; a bench's said its temporary folder's name."""
    import errno

    from stfusion.io import atomic_path

    out = tmp_path / "curve.png"
    with pytest.raises(OSError) as caught, atomic_path(out):
        raise OSError(errno.ENOSPC, "No space left on device")
    assert caught.value.filename == str(out) and str(out) in str(caught.value)
    folder = tmp_path / "bench"
    with pytest.raises(OSError) as caught, atomic_path(folder, suffix="") as tmp:
        tmp.mkdir()
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp / "figures" / "a.png"))
    assert caught.value.filename == str(folder / "figures" / "a.png")
    assert os.listdir(tmp_path) == []  # nothing left behind


def test_a_loss_curve_that_cannot_be_written_is_said_and_the_run_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A trial: every epoch trained and saved, only m.loss.png failed on a full disk, and the
    run exited 1 without saying the checkpoint was complete."""
    import errno

    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    from stfusion.dl.train_log import write_log

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Figure, "savefig", full)
    row = {"epoch": 1, "train_loss": 0.1, "val_loss": 0.2, "val_rmse": 0.03}
    with pytest.warns(UserWarning, match=r"m\.loss\.png: the loss curve could not be written"):
        csv_path, png = write_log([row], tmp_path / "m.ckpt")
    assert csv_path.exists() and not png.exists()
    assert sorted(os.listdir(tmp_path)) == [csv_path.name]


def test_a_full_disk_is_refused_before_any_window_and_a_short_one_warned_about(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A trial: predict into a full disk computed every window, then failed at the write
    (a large scene's whole run lost)."""
    import shutil

    from stfusion.demo import sample_dir
    from stfusion.io import write_failures
    from stfusion.methods.baselines import Additive

    d = sample_dir()
    pair = (d / "CIA_Landsat7_2001-10-17.tif", d / "CIA_MOD09GA_2001-10-17.tif")
    est = Additive().fit([pair])
    free = {"bytes": 20_000}
    real = shutil.disk_usage
    monkeypatch.setattr(
        shutil, "disk_usage", lambda p: real(p)._replace(free=free["bytes"])
    )  # fmt: skip
    windows: list[object] = []
    monkeypatch.setattr(Additive, "predict_window", lambda self, w: windows.append(w))
    out = tmp_path / "p.tif"
    with pytest.raises(OutputWriteError, match=r"file system is full.*Nothing was computed"):
        est.predict(d / "CIA_MOD09GA_2001-11-02.tif", out=out)
    assert not windows and os.listdir(tmp_path) == []
    free["bytes"] = 2 * 2**20  # room for less than the output and its copy: said, then run
    write_failures._WARNED_ROOM.clear()
    monkeypatch.undo()
    monkeypatch.setattr(
        shutil, "disk_usage", lambda p: real(p)._replace(free=free["bytes"])
    )  # fmt: skip
    with pytest.warns(UserWarning, match=r"2\.0 MB free.*may not fit"):
        Additive().fit([pair]).predict(d / "CIA_MOD09GA_2001-11-02.tif", out=out)
    assert out.exists()


def test_standard_output_refuses_bytes_as_a_text_stream_does() -> None:
    """click probes a stream with ``write(b"")``: a text stream's TypeError, not another."""
    import io

    from stfusion.cli.main import PipeSafeStdout

    out = PipeSafeStdout(io.TextIOWrapper(io.BytesIO(), encoding="utf-8"))
    with pytest.raises(TypeError):
        out.write(b"")  # type: ignore[arg-type]
    assert out.write("é\n") == 2
