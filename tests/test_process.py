"""The CLI as a real process: signals, kill -9, exit codes and what is left on disk.

These run ``python -m stfusion.cli`` in a subprocess, because the bugs they guard against live
in the process (signal handlers, exit statuses, temporary files of a killed run), where
``CliRunner`` or calling ``main()`` in-process cannot see them.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import rasterio

from conftest import REPO, process_env, run_process, run_python, stfusion_cmd, write_tif
from stfusion.demo import sample_dir

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


def _cia() -> list[str]:
    d = sample_dir()
    return [
        "--pair",
        str(d / "CIA_Landsat7_2001-10-08.tif"),
        str(d / "CIA_MOD09GA_2001-10-08.tif"),
        "--coarse",
        str(d / "CIA_MOD09GA_2001-10-17.tif"),
    ]


#: A STARFM run on the full 250 x 250 sample that takes tens of seconds: a wide window, and a
#: tiny memory limit so that it runs as many short windows (a signal is handled between two).
SLOW = ["--method", "starfm", "--param", "window=151", "--mem-limit", "5", "--threads", "1"]


def _partials(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if ".partial" in p.name]


def _start_slow(out: Path) -> tuple[subprocess.Popen[str], list[Path]]:
    """Start a slow predict into ``out``; return once its partial file exists."""
    proc = subprocess.Popen(
        stfusion_cmd("predict", *_cia(), *SLOW, "--out", str(out)),
        env=process_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        found = _partials(out.parent)
        if found:
            return proc, found
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    _, err = proc.communicate()
    pytest.fail(f"no partial file appeared (rc {proc.returncode}): {err}")


@pytest.mark.parametrize(
    "sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130), (signal.SIGHUP, 129)]
)
def test_signal_during_predict_leaves_nothing(tmp_path: Path, sig: int, code: int) -> None:
    out = tmp_path / "pred.tif"
    proc, partials = _start_slow(out)
    assert partials[0].name.startswith(".pred.tif.") and f".{proc.pid}-" in partials[0].name
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert "Traceback" not in err, err
    assert "partial outputs removed" in err, err  # Ctrl-C says so as SIGTERM does
    assert not out.exists()
    assert _partials(tmp_path) == [], "a signal left a partial file behind"


def test_kill9_partial_is_removed_by_the_next_run(tmp_path: Path) -> None:
    out = tmp_path / "pred.tif"
    proc, partials = _start_slow(out)
    proc.kill()  # SIGKILL: no handler runs, the partial stays
    proc.communicate(timeout=60)
    assert partials[0].exists()
    assert not out.exists()
    done = run_process("predict", *_cia(), "--method", "additive", "--out", str(out), "-q")
    assert done.returncode == 0, done.stderr
    assert out.exists()
    assert _partials(tmp_path) == [], "the stale partial of the killed run was not removed"


def test_partial_of_a_live_process_is_kept(tmp_path: Path) -> None:
    out = tmp_path / "pred.tif"
    live = tmp_path / f".pred.tif.{os.getpid()}-abcd1234.partial.tif"
    live.write_bytes(b"another run is writing this")
    done = run_process("predict", *_cia(), "--method", "additive", "--out", str(out), "-q")
    assert done.returncode == 0, done.stderr
    assert live.exists() and out.exists()
    # The live partial of another output whose name extends this one's ("pred.tif.2020"):
    # its "2020" is not a PID (pid 2020 is most likely not running, which read it as stale).
    other = tmp_path / f".pred.tif.2020.{os.getpid()}-abcd1234.partial.tif"
    other.write_bytes(b"a run for pred.tif.2020 is writing this")
    done = run_process(
        "predict", *_cia(), "--method", "additive", "--out", str(out), "-q", "--overwrite"
    )
    assert done.returncode == 0, done.stderr
    assert other.exists() and live.exists()


def test_output_folder_refused_before_computing(tmp_path: Path) -> None:
    out = tmp_path / "existing"
    (out / "keep").mkdir(parents=True)
    (out / "keep" / "f").write_text("x")
    proc = subprocess.Popen(
        stfusion_cmd("predict", *_cia(), *SLOW, "--out", str(out), "--overwrite"),
        env=process_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen: set[str] = set()
    while proc.poll() is None:  # watch for any partial while it runs
        seen.update(p.name for p in _partials(tmp_path))
        time.sleep(0.02)
    _, err = proc.communicate()
    assert proc.returncode == 1, err
    assert not seen and _partials(tmp_path) == [], "computed before refusing the output"
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error:") and "folder" in lines[0], err
    assert (out / "keep" / "f").read_text() == "x"


# --------------------------------------------------------------- errors, not tracebacks


@pytest.mark.parametrize(
    "extra, code, words",
    [
        (["--mem-limit", "nan"], 2, "--mem-limit"),
        (["--mem-limit", "-5"], 2, "--mem-limit"),
        (["--workers", "0"], 2, "--workers"),
        (["--fine-scale", "0"], 2, "--fine-scale"),
        (["--scheduler", "not a url"], 2, "tcp://"),
        (["--param", "ratio=inf"], 1, "ratio"),
    ],
)
def test_bad_options_exit_cleanly(tmp_path: Path, extra: list[str], code: int, words: str) -> None:
    done = run_process(
        "predict", *_cia(), "--method", "additive", "--out", str(tmp_path / "o.tif"), *extra
    )
    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr
    assert words in done.stderr
    assert not (tmp_path / "o.tif").exists()


def test_non_utf8_names_exit_cleanly(tmp_path: Path) -> None:
    d = sample_dir()
    folder = os.fsencode(tmp_path)
    bad_in = folder + b"/fine\xff.tif"
    with open(bad_in, "wb") as f:
        f.write((d / "CIA_Landsat7_2001-10-08.tif").read_bytes())
    rest = [
        str(d / "CIA_MOD09GA_2001-10-08.tif"),
        "--coarse",
        str(d / "CIA_MOD09GA_2001-10-17.tif"),
    ]
    good_in = str(d / "CIA_Landsat7_2001-10-08.tif")
    for pair_fine, out in [(bad_in, folder + b"/ok.tif"), (good_in, folder + b"/out\xff.tif")]:
        done = subprocess.run(
            stfusion_cmd(
                "predict", "--pair", pair_fine, *rest, "--method", "additive", "--out", out
            ),
            env=process_env(),
            capture_output=True,
        )
        err = done.stderr.decode("utf-8", "replace")
        assert done.returncode == 1, err
        assert "Traceback" not in err and "UTF-8" in err and "\\xff" in err, err
    assert sorted(os.listdir(folder)) == [b"fine\xff.tif"]


def test_truncated_geotiff_names_the_file(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    f = write_tif(tmp_path / "f.tif", rng.random((2, 64, 64), dtype=np.float32))
    c = write_tif(tmp_path / "c.tif", rng.random((2, 64, 64), dtype=np.float32))
    t = write_tif(tmp_path / "cut.tif", rng.random((2, 64, 64), dtype=np.float32))
    os.truncate(t, t.stat().st_size // 2)  # header intact, data cut
    done = run_process(
        "predict",
        "--pair",
        str(f),
        str(c),
        "--coarse",
        str(t),
        "--method",
        "additive",
        "--out",
        str(tmp_path / "o.tif"),
    )
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert "cut.tif" in done.stderr and "damaged or incomplete" in done.stderr
    assert not (tmp_path / "o.tif").exists()


def test_swallowed_signal_exception_prints_no_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    """A signal's exception that lands in a ctypes/weakref callback (numba compiling, an
    import) is ignored by Python and printed as a traceback; the CLI keeps quiet about it and
    raises it again at the next window (seen on a cold numba cache in CI)."""
    import importlib
    import types

    cli = importlib.import_module("stfusion.cli.main")  # the module (stfusion.cli.main is main())

    seen: list[object] = []
    monkeypatch.setattr(sys, "__unraisablehook__", seen.append)
    event = types.SimpleNamespace(exc_value=cli.Terminated())
    monkeypatch.setattr(cli, "_SIGNALLED", [])
    monkeypatch.setattr(cli, "_DEBUG", False)
    cli._unraisable(event)  # no signal received: not ours, shown as usual
    assert seen == [event]
    monkeypatch.setattr(cli, "_SIGNALLED", [signal.SIGTERM])
    cli._unraisable(event)
    assert seen == [event]
    # what the signal broke in a finalizer (llvmlite's ObjectRef.__del__ of a compilation
    # cut short, seen in CI: "AttributeError: 'PassBuilder' object has no attribute
    # '_as_parameter_'") is quiet too
    broken = types.SimpleNamespace(exc_value=AttributeError("_as_parameter_"))
    cli._unraisable(broken)
    assert seen == [event]
    with pytest.raises(cli.Terminated):
        cli.reraise_signal()


def test_python_m_stfusion_is_the_command_line() -> None:
    """``python -m stfusion`` runs the command line with its exit codes (2: usage error)."""
    ok = subprocess.run(
        [sys.executable, "-m", "stfusion", "--version"],
        env=process_env(),
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0 and "stfusion, version" in ok.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "stfusion", "predict", "--bogus"],
        env=process_env(),
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "--bogus" in bad.stderr


def test_verbose_logs_the_windows_once(tmp_path: Path) -> None:
    """``-v`` says how the scene is cut into windows (as its help promises), once."""
    out = tmp_path / "p.tif"
    done = run_process(
        "-v",
        "predict",
        *_cia(),
        "--method",
        "additive",
        "--out",
        str(out),
        "-q",
        "--mem-limit",
        "20",
    )
    assert done.returncode == 0, done.stderr
    lines = [ln for ln in done.stderr.splitlines() if "window(s) of up to" in ln]
    assert len(lines) == 1 and "--mem-limit 20 MB" in lines[0], done.stderr


def _with_plugin(
    folder: Path, package: str, entry_points: str
) -> Callable[..., subprocess.CompletedProcess[str]]:
    """A plugin distribution ``package`` installed in ``folder`` (its dist-info with the
    ``stfusion.methods`` entry points given), and the CLI run with it importable."""
    dist = folder / f"{package}-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package}\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[stfusion.methods]\n" + entry_points)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(folder), str(REPO / "src")]))

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "stfusion.cli", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )

    return cli


def test_a_broken_plugin_does_not_take_the_cli_down(tmp_path: Path) -> None:
    """An installed plugin whose module fails to import: `stfusion methods` still lists every
    other method (and names the broken one), `--method broken` is a one-line error, and a
    plugin shadowing a built-in name is said to be ignored. It was a traceback, exit 1."""
    (tmp_path / "exitingplug.py").write_text("import sys\nsys.exit('bye from the plugin')\n")
    _with_plugin(tmp_path, "otherplug", "twin = this_module_does_not_exist_xyz:Twin2\n")
    cli = _with_plugin(
        tmp_path,
        "brokenplug",
        "broken = this_module_does_not_exist_xyz:Nope\n"
        "starfm = this_module_does_not_exist_xyz:Other\n"
        "misnamed = stfusion.methods.baselines:Additive\n"
        "llr.v2 = this_module_does_not_exist_xyz:Dotted\n"
        "exits = exitingplug:Exits\n"
        "twin = this_module_does_not_exist_xyz:Twin1\n",
    )
    listed = cli("methods")
    assert listed.returncode == 0, listed.stderr
    # sys.exit at a plugin's import took `stfusion methods` down with its text alone (exit 1)
    assert "method 'exits'" in listed.stderr and "SystemExit: bye" in listed.stderr
    assert "plugin package 'brokenplug'" in listed.stderr  # the package to uninstall
    # two packages, one name: one was taken silently
    twin = next(x for x in listed.stderr.splitlines() if "registers that name first" in x)
    assert "package otherplug" in twin and "package brokenplug" in twin, twin
    assert "Traceback" not in listed.stderr
    assert "starfm" in listed.stdout and "fsdaf" in listed.stdout
    assert "'broken'" in listed.stderr and "could not be loaded" in listed.stderr
    assert "'starfm'" in listed.stderr and "ignored" in listed.stderr
    assert listed.stderr.count("plugin method 'starfm'") == 1  # once, not once per lookup
    # a class whose name is not its entry point's: its outputs would be labelled additive
    assert "method 'misnamed'" in listed.stderr and "calls itself 'additive'" in listed.stderr
    # a dotted name would split --param METHOD.NAME=VALUE (a plugin author's trial)
    assert "plugin method 'llr.v2'" in listed.stderr and "letters, digits" in listed.stderr
    assert "llr.v2" not in listed.stdout
    shown = cli("methods", "broken")  # was "no such method" after the load error
    assert shown.returncode == 1 and "no such method" not in shown.stderr, shown.stderr
    assert "Error: method 'broken'" in shown.stderr and "could not be loaded" in shown.stderr
    out = tmp_path / "p.tif"
    run = cli("predict", *_cia(), "--method", "broken", "--out", str(out))
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert "could not be loaded" in run.stderr and not out.exists()


def test_plugins_with_capitals_or_faults(tmp_path: Path) -> None:
    """A plugin author's trial: `stfusion methods MyLLR` said "no such method (did you mean
    MyLLR?)" and pointed at docs/methods/myllr.md, which stfusion does not have; an exception
    in a plugin's predict_window was a traceback that did not say whose fault it was."""
    (tmp_path / "capsplug.py").write_text(
        "from stfusion.methods.baselines import Additive\n"
        "class Caps(Additive):\n    name = 'CapsAdd'\n"
        "class Failing(Additive):\n    name = 'failing'\n"
        "    def predict_window(self, window):\n        raise ValueError('boom')\n"
        "class FailingFit(Additive):\n    name = 'failfit'\n"
        "    def fit(self, *args, **kwargs):\n        raise KeyError('fitboom')\n"
    )
    cli = _with_plugin(
        tmp_path,
        "capsplug",
        "CapsAdd = capsplug:Caps\nfailing = capsplug:Failing\nfailfit = capsplug:FailingFit\n",
    )
    shown = cli("methods", "CapsAdd")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[1].startswith("a plugin from capsplug;")
    assert cli("methods", "additive").stdout.splitlines()[1].startswith("docs/methods/additive.md")
    made = tmp_path / "caps.tif"
    run = cli("predict", *_cia(), "--method", "CapsAdd", "--out", str(made))
    assert run.returncode == 0, run.stderr
    with rasterio.open(made) as ds:  # the plugin's package and version, with the outputs
        assert ds.tags()["STFUSION_METHOD_PACKAGE"] == "capsplug 0.1"
    for extra in ([], ["--quality"]):
        out = tmp_path / "p.tif"
        run = cli("predict", *_cia(), "--method", "failing", "--out", str(out), *extra)
        assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
        assert "failing (a plugin from capsplug) failed on the window of rows 0-" in run.stderr
        assert "ValueError: boom. A fault in the plugin" in run.stderr and not out.exists()
    # its fit, or the plugin run by stfusion's own VIPSTF: a traceback, now the same line
    out = tmp_path / "p.tif"
    run = cli("predict", *_cia(), "--method", "failfit", "--out", str(out))
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
    assert "plugin capsplug (capsplug.py, line 11, in fit) failed: KeyError" in run.stderr
    d = sample_dir()
    two = ["--pair", str(d / "CIA_Landsat7_2001-11-02.tif"), str(d / "CIA_MOD09GA_2001-11-02.tif")]
    run = cli("predict", *_cia(), *two, "-m", "vipstf", "-p", "base=failing", "--out", str(out))
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
    assert "plugin capsplug (capsplug.py, line 7, in predict_window)" in run.stderr
    assert not out.exists()


def test_debug_logs_are_stfusion_s_not_gdal_environment_noise(tmp_path: Path) -> None:
    """``--debug`` printed 680 lines, 678 of them rasterio's DEBUG lines; now stfusion's log
    (from DEBUG) and other libraries' from INFO. Without a terminal, progress is a line per
    tenth of the windows, and nothing else (a stray empty line was printed)."""
    out = tmp_path / "p.tif"
    done = run_process("--debug", "predict", *_cia(), "--method", "additive", "--out", str(out))
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert any(line.startswith("INFO stfusion") for line in lines), done.stderr[-2000:]
    assert not any(line.startswith("DEBUG rasterio") for line in lines)
    out.unlink()
    done = run_process("predict", *_cia(), "--out", str(out), "--mem-limit", "20")
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    # the first phase is said only when the windows have not begun within 5 s
    counted = [line for line in lines if "reading the inputs and fitting" not in line]
    assert len(counted) == len(lines) or lines[0].startswith("starfm: reading the inputs")
    each = r"starfm: \d/4 windows(, about \d+ s left)? \(\d+ s\)"  # the time left once known
    assert counted and all(re.fullmatch(each, x) for x in counted[:-1])
    assert counted[-2].startswith("starfm: 4/4 windows")
    # then the file is written (its overviews: ~25 s of silence on a 4000 px scene)
    assert re.fullmatch(r"starfm: writing the output file \(\d+ s\)", counted[-1])


def test_a_slow_start_is_said_in_a_log_and_an_early_error_stays_alone(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Without a terminal, the phase before the windows (reading, fit, an ensemble's members)
    gets a line once it has lasted its delay; a report before then cancels it."""
    import time

    from stfusion.cli.progress import Progress

    with Progress("fsdaf", False) as progress:
        progress.phase("fitting", 0.05)
        deadline = time.monotonic() + 10
        while "fitting" not in capsys.readouterr().err and time.monotonic() < deadline:
            time.sleep(0.05)
        assert time.monotonic() < deadline, "the phase line never came"
        progress.phase("fitting", 2.0)
        progress.windows(1, 4)
        time.sleep(2.5)  # past the phase's delay: its line was cancelled by the report
    assert "fitting" not in capsys.readouterr().err


def test_a_long_step_in_a_log_gets_a_line_every_heartbeat(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A whole scene fitted as one window (ESTARFM: 5 s -> 37 s) left a log without a line
    between the phase's and the end; now the phase, then each window count, is said again
    every HEARTBEAT_S seconds until the next report, and nothing after close."""
    import time

    from stfusion.cli import progress as progress_module

    monkeypatch.setattr(progress_module, "HEARTBEAT_S", 0.1)
    with progress_module.Progress("estarfm", False) as progress:
        progress.phase("reading the inputs and fitting", 0.05)
        time.sleep(0.5)
        progress.windows(1, 2)
        time.sleep(0.5)
    said = capsys.readouterr().err
    time.sleep(0.3)
    assert capsys.readouterr().err == ""  # closed: silent
    lines = said.splitlines()
    assert lines[0].startswith("estarfm: reading the inputs and fitting (")
    assert sum(x.startswith("estarfm: still reading the inputs and fitting") for x in lines) >= 2
    assert [re.fullmatch(r"estarfm: 1/2 windows \(\d+ s\)", x) is not None for x in lines].index(
        True
    ) > 0
    assert sum(x.startswith("estarfm: 1/2 windows, working") for x in lines) >= 2


def test_a_log_speaks_every_heartbeat_while_windows_come_faster(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A trial: GAN-STFM's windows of 15 s on a 4000 x 4000 scene each re-armed the 30 s
    heartbeat before it fired, so a log said nothing for the minutes before the first tenth
    of 256 windows. The line is due a heartbeat after the last line, whatever the windows."""
    import time

    from stfusion.cli import progress as progress_module

    monkeypatch.setattr(progress_module, "HEARTBEAT_S", 0.2)
    with progress_module.Progress("ganstfm", False) as progress:
        for done in range(1, 16):  # 15 windows of 0.08 s (1.2 s) of 256: no tenth
            progress.windows(done, 256)
            time.sleep(0.08)
    lines = capsys.readouterr().err.splitlines()
    working = [x for x in lines if re.match(r"ganstfm: \d+/256 windows, working", x)]
    assert len(working) >= 3, lines


def test_a_log_says_how_long_is_left(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a log a series said `12/119 dates (15 s)` with no ETA (a season trial); now each
    tenth says the time left at the rate since the first count, none before a rate exists."""
    from stfusion.cli import progress as progress_module

    now = [0.0]
    monkeypatch.setattr(progress_module.time, "monotonic", lambda: now[0])
    with progress_module.Progress("series", False, unit="dates") as progress:
        now[0] = 5.0
        progress.update(1, 10)  # the first count: no rate yet
        now[0] = 15.0
        progress.update(2, 10)  # 10 s for one date: 80 s for the 8 left
        now[0] = 95.0
        progress.update(10, 10)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("series: 1/10 dates (") and "left" not in lines[0], lines
    assert lines[1].startswith("series: 2/10 dates, about 80 s left ("), lines
    assert "left" not in lines[2], lines


def test_stdout_closed_or_left_early_keeps_the_commands_exit_status() -> None:
    """`stfusion methods | head -1`: click turned the BrokenPipeError into a silent exit 1
    (which means bad input here); a closed stdout (`>&-`) was an AttributeError traceback.
    Now the rest of the output goes nowhere and the status is the command's own."""
    proc = subprocess.Popen(
        stfusion_cmd("methods", "starfm"),
        env=process_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    proc.stdout.close()  # the reader leaves before the first line: every write meets EPIPE
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert err == ""
    closed = subprocess.run(
        stfusion_cmd("methods", "starfm"),
        env=process_env(),
        stderr=subprocess.PIPE,
        text=True,
        timeout=120,
        preexec_fn=lambda: os.close(1),
    )
    assert closed.returncode == 0 and "Traceback" not in closed.stderr, closed.stderr


def test_demo_stopped_after_its_prediction_leaves_no_half_made_folder(tmp_path: Path) -> None:
    """SIGTERM once the demo's prediction has its name (the figure and the scores still to
    come) left the prediction alone, and the rerun was refused for it. Now a stopped demo
    leaves none of its three outputs, and the rerun works."""
    code, err = _demo_terminated_when(tmp_path, (tmp_path / "d" / DEMO_OUTS[0]).exists)
    left = [n for n in DEMO_OUTS if (tmp_path / "d" / n).exists()]
    assert (code, left) in ((143, []), (0, list(DEMO_OUTS))), (code, left, err)
    if code == 143:  # the same command again, into the same folder
        again = run_process("demo", str(tmp_path / "d"))
        assert again.returncode == 0, again.stderr


def test_demo_overwrite_stopped_after_its_prediction_puts_the_earlier_files_back(
    tmp_path: Path,
) -> None:
    """`demo --overwrite` stopped once its new prediction had its name removed it, and the
    earlier prediction was lost beside the earlier figure and scores. The earlier three are
    put back."""
    first = run_process("demo", str(tmp_path / "d"))
    assert first.returncode == 0, first.stderr
    before = {n: (tmp_path / "d" / n).read_bytes() for n in DEMO_OUTS}
    pred = tmp_path / "d" / DEMO_OUTS[0]
    ino = pred.stat().st_ino

    def replaced() -> bool:
        with contextlib.suppress(FileNotFoundError):
            return pred.stat().st_ino != ino
        return False

    code, err = _demo_terminated_when(tmp_path, replaced, "--overwrite")
    if code == 0 or "had finished its outputs" in err:  # done before the signal: no check
        return
    assert code == 143, err
    now = {n: (tmp_path / "d" / n).read_bytes() for n in DEMO_OUTS}
    assert [n for n in DEMO_OUTS if now[n] != before[n]] == [], err
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == sorted(DEMO_OUTS)


#: the demo's outputs, its prediction first
DEMO_OUTS = ("starfm_2001-11-02.tif", "demo.png", "metrics.json")


def _demo_terminated_when(
    tmp_path: Path, ready: Callable[[], bool], *extra: str
) -> tuple[int, str]:
    """``stfusion demo d EXTRA`` in ``tmp_path``, sent SIGTERM as soon as ``ready()``: its
    exit status and stderr."""
    proc = subprocess.Popen(
        stfusion_cmd("demo", "d", *extra),
        cwd=tmp_path,
        env=process_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        if ready():
            proc.send_signal(signal.SIGTERM)
            break
        time.sleep(0.001)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err


def test_a_full_log_disk_does_not_stop_the_work(tmp_path: Path) -> None:
    """`predict 2>/dev/full` (stderr on a full disk): the first progress line's ENOSPC
    aborted the prediction, nothing written, exit 1. stderr carries only messages."""
    out = tmp_path / "p.tif"
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            stfusion_cmd("predict", *_cia(), "--out", str(out)),
            env=process_env(),
            stdout=subprocess.PIPE,
            stderr=full,
            text=True,
            timeout=300,
        )
    assert done.returncode == 0 and out.exists(), done.stdout
    assert "wrote" in done.stdout


def test_a_full_stdout_is_said_as_such(tmp_path: Path) -> None:
    """`predict >/dev/full` wrote its output, then reported "the disk is full: write the
    outputs elsewhere", as if the output were incomplete."""
    out = tmp_path / "p.tif"
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            stfusion_cmd("predict", *_cia(), "--out", str(out)),
            env=process_env(),
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=300,
        )
    assert done.returncode == 1 and out.exists(), done.stderr
    assert "standard output could not be written" in done.stderr
    assert "write the outputs elsewhere" not in done.stderr


def test_one_window_in_a_log_says_it_is_predicting_not_fitting(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plugin author's trial: a whole scene as one window said "still reading the inputs
    and fitting" all the while its predict_window ran. The windows' start is reported
    (progress(0, total)), so the heartbeat says "0/1 windows, working"."""
    import time

    from stfusion.cli import progress as progress_module
    from stfusion.methods.baselines import Additive

    class Slow(Additive):
        def predict_window(self, window: object) -> np.ndarray:
            time.sleep(0.6)
            return super().predict_window(window)  # type: ignore[arg-type]

    monkeypatch.setattr(progress_module, "HEARTBEAT_S", 0.1)
    rng = np.random.default_rng(0)
    f1, c1, c2 = (rng.uniform(0.1, 0.3, (2, 16, 16)).astype(np.float32) for _ in range(3))
    calls: list[tuple[int, int]] = []
    with progress_module.Progress("slow", False) as progress:
        progress.phase("reading the inputs and fitting", 0.05)

        def report(done: int, total: int) -> None:
            calls.append((done, total))
            progress.windows(done, total)

        Slow().fit([(f1, c1)]).predict(c2, progress=report)
    assert calls == [(0, 1), (1, 1)]
    lines = capsys.readouterr().err.splitlines()
    working = [i for i, x in enumerate(lines) if x.startswith("slow: 0/1 windows, working")]
    assert len(working) >= 2, lines
    assert not any("still reading" in x for x in lines[working[0] :])


def test_an_interrupted_overwrite_keeps_the_earlier_quality_layer(tmp_path: Path) -> None:
    """A storage trial: Ctrl-C (or a full disk) after the new quality layer took its name
    but before the new prediction did removed the new layer and left the earlier run's
    prediction without its layer (`--overwrite --quality`). The earlier layer is put back."""
    out, layer = tmp_path / "p.tif", tmp_path / "p_quality.tif"
    first = run_process("predict", *_cia(), "-m", "additive", "--out", str(out), "--quality")
    assert first.returncode == 0, first.stderr
    before = {p.name: p.read_bytes() for p in (out, layer)}
    # SIGINT to itself as the prediction is checked, after its quality layer was placed
    code = (
        "import os, signal, sys\n"
        "import stfusion.io.writing as w\n"
        "real = w.check_written\n"
        "def checked(path, final=None):\n"
        "    if final is not None and final.name == 'p.tif':\n"
        f"        assert os.stat({str(layer)!r}).st_ino != {layer.stat().st_ino}\n"
        "        os.kill(os.getpid(), signal.SIGINT)\n"
        "    return real(path, final)\n"
        "w.check_written = checked\n"
        "from stfusion.cli import main\n"
        "main(sys.argv[1:])\n"
    )
    args = ["predict", *_cia(), "-m", "starfm", "--out", str(out), "--quality", "--overwrite"]
    run = run_python(code, *args)
    assert run.returncode == 130, run.stderr
    assert {p.name: p.read_bytes() for p in (out, layer)} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.tif", "p_quality.tif"]
