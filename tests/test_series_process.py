"""``stfusion series`` as a real process: resume keys, the out-dir lock, exit codes, signals.

Every test runs ``python -m stfusion.cli series`` in a subprocess (PYTHONPATH = this
repository's ``src``), because exit codes, SIGTERM and kill -9 only show up in a process.
Kranj (44 x 45 px) with the additive method keeps each run to a few seconds.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import rasterio

from conftest import KRANJ, need, write_mask_like
from stfusion.series import read_summary

SRC = Path(__file__).resolve().parents[1] / "src"
LOCK = ".stfusion-series.lock"
EXIT_SOME_FAILED = 3
EXIT_LOCKED = 4
SHORT = "2020-03-08:2020-03-11"  # 4 targets: 03-08 gap-filled, 09..11 predicted


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(SRC) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("STFUSION_DEBUG", None)
    return env


def _args(out: Path, fine: str = "filled", method: str = "additive", *extra: str) -> list[str]:
    k = need(KRANJ)
    return [
        sys.executable,
        "-m",
        "stfusion.cli",
        "series",
        "--fine",
        str(k / "landsat" / fine),
        "--coarse",
        str(k / "modis" / "filled"),
        "--fine-scale",
        "0.0001",
        "--out-dir",
        str(out),
        "--method",
        method,
        "--quiet",
        *extra,
    ]


def _run(args: Sequence[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(args), env=_env(), capture_output=True, text=True, timeout=timeout, check=False
    )


def _pixels(folder: Path) -> dict[str, np.ndarray]:
    out = {}
    for p in sorted(folder.glob("fused_*.tif")):
        with rasterio.open(p) as ds:
            out[p.name] = ds.read()
    return out


def _same_outputs(a: Path, b: Path) -> None:
    pa, pb = _pixels(a), _pixels(b)
    assert sorted(pa) == sorted(pb) and pa
    for name in pa:
        np.testing.assert_array_equal(pa[name], pb[name], err_msg=name)


def _hidden(folder: Path) -> list[str]:
    """Everything a run must not leave behind: temporary files and folders, the lock."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # reaped: the PID belongs to no process now
    return child.pid


def _start(args: Sequence[str], out: Path) -> subprocess.Popen[str]:
    """Start a series run and return once it has written its first output."""
    proc = subprocess.Popen(
        list(args), env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 60
    while not (out.is_dir() and list(out.glob("fused_*.tif"))):
        if proc.poll() is not None:
            o, e = proc.communicate()
            pytest.fail(f"series ended (rc {proc.returncode}) before writing: {o}{e}")
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            pytest.fail("series wrote nothing within 60 s")
        time.sleep(0.02)
    return proc


# ------------------------------------------------------------------------- resume keys


def test_changed_inputs_are_recomputed_not_kept(tmp_path: Path) -> None:
    """Issue 11 item 3: filled, then unfilled Landsat into one folder must equal a fresh run."""
    out, fresh = tmp_path / "out", tmp_path / "fresh"
    r = _run(_args(out, "filled", "additive", "--dates", SHORT))
    assert r.returncode == 0, r.stderr
    r = _run(_args(out, "unfilled", "additive", "--dates", SHORT))
    assert r.returncode == 0, r.stderr
    r = _run(_args(fresh, "unfilled", "additive", "--dates", SHORT))
    assert r.returncode == 0, r.stderr
    _same_outputs(out, fresh)
    rows = {x["date"]: x for x in read_summary(out / "summary.csv")}
    for day in ("2020-03-08", "2020-03-09", "2020-03-10", "2020-03-11"):
        assert "recomputed: inputs changed" in rows[day]["reason"], rows[day]
    # once more with the same inputs: everything kept, and said so
    r = _run(_args(out, "unfilled", "additive", "--dates", SHORT))
    assert r.returncode == 0, r.stderr
    rows = {x["date"]: x for x in read_summary(out / "summary.csv")}
    kept = [x["reason"] for x in rows.values() if x["output"]]
    assert len(kept) == 4 and all("kept" in x and "inputs unchanged" in x for x in kept), kept
    _same_outputs(out, fresh)
    assert _hidden(out) == []


def test_another_method_never_mixes_into_the_folder(tmp_path: Path) -> None:
    """Sequentially: refused before any work, or replaced with --overwrite; never a mix."""
    out, fresh = tmp_path / "out", tmp_path / "fresh"
    assert _run(_args(out, "filled", "additive", "--dates", SHORT)).returncode == 0
    before = _pixels(out)
    r = _run(_args(out, "filled", "starfm", "--dates", SHORT, "-p", "window=11"))
    assert r.returncode == 1 and "other settings" in r.stderr, r.stderr
    after = _pixels(out)
    assert all(np.array_equal(before[n], after[n], equal_nan=True) for n in before)
    r = _run(_args(out, "filled", "starfm", "--dates", SHORT, "-p", "window=11", "--overwrite"))
    assert r.returncode == 0, r.stderr
    r = _run(_args(fresh, "filled", "starfm", "--dates", SHORT, "-p", "window=11"))
    assert r.returncode == 0, r.stderr
    _same_outputs(out, fresh)
    for p in out.glob("fused_*.tif"):
        with rasterio.open(p) as ds:
            assert ds.tags()["STFUSION_METHOD"] == "starfm"
    assert {x["method"] for x in read_summary(out / "summary.csv")} == {"starfm"}


def test_concurrent_run_with_another_method_is_refused(tmp_path: Path) -> None:
    """Issue 11 item 3: two runs into one folder used to both exit 0 with a mix of methods."""
    out = tmp_path / "out"
    first = _start(_args(out, "filled", "additive"), out)
    try:
        assert (out / LOCK).exists()
        second = _run(_args(out, "filled", "starfm", "-p", "window=11"))
        assert second.returncode == EXIT_LOCKED, second.stderr
        assert LOCK in second.stderr and str(first.pid) in second.stderr
    finally:
        _, e = first.communicate(timeout=120)
    assert first.returncode == 0, e
    methods = set()
    for p in out.glob("fused_*.tif"):
        with rasterio.open(p) as ds:
            methods.add(ds.tags()["STFUSION_METHOD"])
    assert methods == {"additive"}
    assert {x["method"] for x in read_summary(out / "summary.csv")} == {"additive"}
    assert _hidden(out) == []


# ----------------------------------------------------------------------------- the lock


def test_live_lock_refuses_and_stale_lock_is_taken_over(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    lock = out / LOCK
    held = {"pid": os.getpid(), "host": socket.gethostname(), "started": "2026-01-01T00:00:00"}
    lock.write_text(json.dumps(held))
    r = _run(_args(out, "filled", "additive", "--dates", SHORT))
    assert r.returncode == EXIT_LOCKED, (r.returncode, r.stderr)
    assert str(lock) in r.stderr and f"process {os.getpid()}" in r.stderr
    assert not list(out.glob("fused_*.tif")) and lock.exists()  # nothing written, lock kept

    dead = _dead_pid()
    lock.write_text(json.dumps({**held, "pid": dead}))
    r = _run(_args(out, "filled", "additive", "--dates", SHORT))
    assert r.returncode == 0, r.stderr
    assert "stale lock" in r.stderr and str(dead) in r.stderr
    assert len(list(out.glob("fused_*.tif"))) == 4
    assert _hidden(out) == []


# ------------------------------------------------------------------------ exit codes


def test_exit_code_3_when_a_date_failed(tmp_path: Path) -> None:
    """Issue 11 item 4 (fixed in ec4e5de: main() passes the command's code to sys.exit)."""
    k = need(KRANJ)
    cat = tmp_path / "cat.csv"
    lines = ["path,date,sensor"]
    lines += [f"{p},,landsat" for p in sorted((k / "landsat" / "filled").glob("*.tif"))]
    for doy in (68, 69, 70, 93):
        lines.append(f"{k / 'modis' / 'filled' / f'2020{doy:03d}_18-04_kranj.tif'},,modis")
    lines.append(f"{tmp_path / 'gone_2020-03-11.tif'},,modis")  # missing: that date fails
    cat.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    base = [sys.executable, "-m", "stfusion.cli", "series", "--catalog", str(cat)]
    r = _run([*base, "--out-dir", str(out), "--fine-scale", "0.0001", "-m", "additive"])
    assert r.returncode == EXIT_SOME_FAILED, (r.returncode, r.stdout, r.stderr)
    assert "1 failed" in r.stdout
    assert _hidden(out) == []


def test_exit_code_3_when_every_pair_is_unreadable(tmp_path: Path) -> None:
    """Broken masks on every pair: the date fails (exit 3) naming the file, it is not
    "skipped: no clear pair" with exit 0 as if the sky had been cloudy."""
    data = SRC / "stfusion" / "data"
    masks = tmp_path / "masks"
    masks.mkdir()
    for day in ("2001-10-08", "2001-10-17"):
        (masks / f"mask_{day}.tif").write_text("not a raster")
    out = tmp_path / "out"
    r = _run(
        [
            *(sys.executable, "-m", "stfusion.cli", "series", "-q", "-m", "starfm"),
            *("--fine", str(data / "CIA_Landsat7_2001-10-*.tif")),
            *("--coarse", str(data / "CIA_MOD09GA_*.tif"), "--fine-mask", str(masks)),
            *("--date-range", "2001-11-02:2001-11-02", "--out-dir", str(out)),
        ]
    )
    assert r.returncode == EXIT_SOME_FAILED, (r.returncode, r.stdout, r.stderr)
    (rec,) = read_summary(out / "summary.csv")
    assert rec["status"] == "failed"
    assert "2 pair(s) unreadable" in rec["reason"] and "mask_2001-10-08.tif" in rec["reason"]
    # with -q the reason reaches stderr too (a user trial: only "1 failed" and exit 3)
    assert f"failed: 2001-11-02: {rec['reason']}" in r.stderr, r.stderr


def test_an_image_used_unmasked_is_said_also_with_quiet(tmp_path: Path) -> None:
    """Masks for some fine dates only: the one without a mask is used unmasked. With ``-q``
    nothing said so (the note was printed only without it) and its row read "fine image
    fully valid"."""
    data = SRC / "stfusion" / "data"
    masks = tmp_path / "masks"
    masks.mkdir()
    write_mask_like(data / "CIA_Landsat7_2001-10-08.tif", masks / "mask_2001-10-08.tif", 0)
    out = tmp_path / "out"
    r = _run(
        [
            *(sys.executable, "-m", "stfusion.cli", "series", "-q", "-m", "additive"),
            *("--fine", str(data / "CIA_Landsat7_2001-10-*.tif")),
            *("--coarse", str(data / "CIA_MOD09GA_*.tif"), "--fine-mask", str(masks)),
            *("--date-range", "2001-10-17:2001-10-17", "--out-dir", str(out)),
        ]
    )
    assert r.returncode == 0, r.stderr
    assert "fine images without a mask (used unmasked): 2001-10-17" in r.stderr
    (rec,) = read_summary(out / "summary.csv")
    assert "no fine mask for this date: its image used unmasked" in rec["reason"], rec


# --------------------------------------------------------------------------- signals


def test_sigterm_leaves_no_partial_no_temp_no_lock(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = _start(_args(out, "filled", "additive"), out)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "Terminated" in err
    assert _hidden(out) == []
    # the outputs that are there are complete, and a re-run finishes the rest
    r = _run(_args(out, "filled", "additive"))
    assert r.returncode == 0, r.stderr
    assert _hidden(out) == []


def test_kill_9_then_rerun_cleans_up(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = _start(_args(out, "filled", "additive"), out)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)  # reaped, so its PID is gone
    assert proc.returncode == -signal.SIGKILL
    left = _hidden(out)
    assert left  # the killed run could clean nothing (lock, temporary folder)
    r = _run(_args(out, "filled", "additive"))
    assert r.returncode == 0, r.stderr
    assert _hidden(out) == [], f"left before the re-run: {left}"
    rows = read_summary(out / "summary.csv")
    assert sum(x["status"] in ("predicted", "gap-filled") for x in rows) == 26
    # A third run with the same settings keeps every output and says so.
    r = _run(_args(out, "filled", "additive"))
    assert r.returncode == 0, r.stderr
    assert "(of these 26: 26 kept from an earlier run)" in r.stdout, r.stdout


#: Runs ``stfusion ARGS`` with zarr's chunk writes slowed down: the first chunk of ``fused``
#: (or the key SLOW_ZARR_KEY) sends the signal, then takes 0.5 s to reach the disk, so the
#: write is still running in another thread when the signal stops the main thread
#: (deterministically what a Ctrl-C during a real cube write met now and then).
_SLOW_ZARR = """
import asyncio, os, signal, sys, time
import zarr.storage
from stfusion.cli.main import main

original = zarr.storage.LocalStore.set
sent = []

async def slow_set(self, key, value, *args, **kwargs):
    if key == os.environ["SLOW_ZARR_KEY"] and not sent:
        sent.append(key)
        os.kill(os.getpid(), getattr(signal, os.environ["SLOW_ZARR_SIGNAL"]))
        await asyncio.sleep(0.5)
    return await original(self, key, value, *args, **kwargs)

zarr.storage.LocalStore.set = slow_set
sys.argv[0] = "stfusion"
try:
    main()
finally:
    time.sleep(1)  # a slow exit: a write still running gets to the disk
"""


@pytest.mark.parametrize(
    ("name", "code", "key"),
    [
        ("SIGINT", 130, "fused/0.0.0.0"),  # a chunk: written by dask's threads
        ("SIGTERM", 143, "fused/0.0.0.0"),
        ("SIGINT", 130, ".zmetadata"),  # metadata: by zarr's own thread, for the main one
    ],
)
def test_a_signal_while_the_zarr_cube_is_written_leaves_no_partial_store(
    tmp_path: Path, name: str, code: int, key: str
) -> None:
    pytest.importorskip("zarr")
    out = tmp_path / "out"
    args = _args(out, "filled", "additive", "--date-range", SHORT)
    r = _run(args)
    assert r.returncode == 0, r.stderr
    env = {**_env(), "SLOW_ZARR_SIGNAL": name, "SLOW_ZARR_KEY": key}
    r = subprocess.run(
        [sys.executable, "-c", _SLOW_ZARR, *args[3:], "--cube", "zarr"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert r.returncode == code, (r.stdout, r.stderr)
    assert "partial outputs removed" in r.stderr
    assert _hidden(out) == []
    assert not (out / "fused_cube.zarr").exists()
