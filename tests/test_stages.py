"""The steps a run says before its windows (an ensemble's members, VIPSTF's base run,
FSDAF's classes): a 3000 x 3000 ensemble said only `still reading the inputs and fitting`
for 510 s, then 25 windows in 8 s."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from conftest import piecewise_scene, predict_args, run_clean
from stfusion.methods.ensemble import Ensemble
from stfusion.methods.vipstf import VIPSTF
from stfusion.tiling import reporting_stages, say_stage, stage

R = 8


@pytest.fixture(scope="module")
def scene() -> dict[str, np.ndarray]:
    return piecewise_scene(64, 64, bands=2, patch=4, ratio=R)


def test_stages_nest_and_say_nothing_without_a_reporter() -> None:
    said: list[str] = []
    with stage("outside"):  # no reporter: nothing to say, no error
        say_stage("nobody hears this")
    with reporting_stages(said.append):
        with stage("member fsdaf (2 of 3)"):
            say_stage("classes")
            with stage("window 1 of 2"):
                say_stage("spline")
        with stage("2020-03-17", said=False):
            say_stage("member starfm (1 of 3)")
        say_stage("done")
    assert said == [
        "member fsdaf (2 of 3)",
        "member fsdaf (2 of 3), classes",
        "member fsdaf (2 of 3), window 1 of 2",
        "member fsdaf (2 of 3), window 1 of 2, spline",
        "2020-03-17, member starfm (1 of 3)",
        "done",
    ]


def test_an_ensemble_says_each_member_its_windows_and_their_steps(scene: dict) -> None:
    fine, coarse = scene["fine"], scene["coarse"]
    target = (coarse * 1.05).astype(np.float32)
    est = Ensemble(members="fsdaf,additive,nochange").fit([(fine, coarse)], ratio=R)
    said: list[str] = []
    with reporting_stages(said.append):
        est.predict(target, mem_limit_mb=0.3)  # members' windows planned under the limit
    members = [s for s in said if re.fullmatch(r"member \w+ \(\d of 3\)", s)]
    assert members == [
        "member fsdaf (1 of 3)",
        "member additive (2 of 3)",
        "member nochange (3 of 3)",
    ]
    assert "member fsdaf (1 of 3), classes of the fine image" in said
    assert "member fsdaf (1 of 3), spline of the coarse target" in said
    windows = [s for s in said if s.startswith("member nochange (3 of 3), window ")]
    n = int(windows[-1].rsplit(" ", 1)[1])
    assert n > 1 and windows == [
        f"member nochange (3 of 3), window {i} of {n}" for i in range(1, n + 1)
    ]


def test_leave_one_pair_out_and_vipstf_say_their_runs(scene: dict) -> None:
    fine, coarse = scene["fine"], scene["coarse"]
    pairs = [(fine, coarse), (fine * 1.02, coarse * 1.02)]
    said: list[str] = []
    with reporting_stages(said.append):
        Ensemble(members="fsdaf,additive,nochange", multi_pair="vip").fit(pairs, ratio=R)
    for k in (1, 2):
        run = f"reliability: fsdaf predicting pair {k} of 2 from the others"
        assert run in said and f"{run}, classes of the fine image" in said
    said.clear()
    est = VIPSTF(base="fsdaf").fit(pairs, ratio=R)
    with reporting_stages(said.append):
        est.prepare((coarse * 1.05).astype(np.float32))
    assert said[0].startswith("virtual pair: regression")
    assert "fsdaf on the virtual pair, classes of the fine image" in said


def test_a_log_says_a_long_runs_stages_at_most_every_few_seconds(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from stfusion.cli import progress as progress_module

    now = [0.0]
    monkeypatch.setattr(progress_module.time, "monotonic", lambda: now[0])
    monkeypatch.setattr(progress_module, "HEARTBEAT_S", 3600.0)  # no timer fires here
    with progress_module.Progress("ensemble", False) as progress:
        progress.phase("reading the inputs and fitting", 3600.0)
        now[0] = 2.0
        progress.stage("member fitfc (1 of 3)")  # a quick run: no line
        now[0] = 12.0
        progress.stage("member fsdaf (2 of 3)")
        now[0] = 15.0
        progress.stage("member fsdaf (2 of 3), window 1 of 9")  # 3 s after a line: none
        now[0] = 30.0
        progress.stage("member starfm (3 of 3)")
        progress.update(1, 2)
    lines = capsys.readouterr().err.splitlines()
    assert lines[:2] == [
        "ensemble: member fsdaf (2 of 3) (12 s)",
        "ensemble: member starfm (3 of 3) (30 s)",
    ]
    assert progress._stage is None  # the windows began: the heartbeat says their count


def test_predict_in_a_log_says_the_members(
    small_tifs: dict,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from stfusion.cli import progress as progress_module

    monkeypatch.setattr(progress_module, "STAGE_EVERY_S", 0.0)
    args = [*predict_args(small_tifs, tmp_path / "e.tif")[:-2], "--param", "ratio=4"]
    args[args.index("starfm")] = "ensemble"
    code, said = run_clean(args, capsys)
    assert code == 0, said
    assert "ensemble: member fitfc (1 of " in said and "member fsdaf (2 of " in said, said


def test_a_logs_time_left_leaves_out_the_first_window(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """FSDAF on 3000 x 3000 said "about 22 min left" after the first of 9 windows and took
    6: the first window's time (its reads fill the caches) set the rate."""
    from stfusion.cli import progress as progress_module

    now = [0.0]
    monkeypatch.setattr(progress_module.time, "monotonic", lambda: now[0])
    with progress_module.Progress("fsdaf", False) as progress:
        progress.windows(0, 9)
        now[0] = 100.0
        progress.windows(1, 9)  # slow: no rate yet
        now[0] = 110.0
        progress.windows(2, 9)  # 10 s a window from here: 70 s for the 7 left
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("fsdaf: 1/9 windows (") and "left" not in lines[0], lines
    assert lines[1].startswith("fsdaf: 2/9 windows, about 70 s left ("), lines


def test_a_logs_heartbeat_says_the_stage_not_the_phase(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A series trial: `still reading the inputs, then the first date` for the whole first
    date (4 min of STARFM on 2000 x 2000); now the heartbeat says the step the run is at."""
    import time

    from stfusion.cli import progress as progress_module

    monkeypatch.setattr(progress_module, "HEARTBEAT_S", 0.1)
    monkeypatch.setattr(progress_module, "STAGE_EVERY_S", 3600.0)  # only the heartbeat says it
    with progress_module.Progress("series", False, unit="dates") as progress:
        progress.phase("reading the inputs, then the first date", 0.05)
        progress.stage("2001-10-10, window 3 of 9")
        time.sleep(0.5)
        progress.update(1, 4)
        progress.stage("2001-10-11, window 1 of 9")
        time.sleep(0.5)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith(
        "series: reading the inputs, then the first date: 2001-10-10, window 3 of 9 ("
    ), lines
    assert any(x.startswith("series: 2001-10-10, window 3 of 9, working (") for x in lines)
    assert not any("still reading" in x for x in lines), lines
    assert any(
        x.startswith("series: 1/4 dates, working: 2001-10-11, window 1 of 9 (") for x in lines
    )


def test_a_series_says_each_dates_windows(tmp_path: Path) -> None:
    import warnings

    from conftest import KRANJ, need
    from stfusion.series import run_series

    k = need(KRANJ)
    said: list[str] = []
    with reporting_stages(said.append), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the cramped windows' warning
        run_series(
            tmp_path / "out",
            fine=[str(k / "landsat/filled")],
            coarse=[str(k / "modis/filled")],
            fine_scale=1e-4,
            date_range="2020-03-10:2020-03-10",
            method="starfm",
            mem_limit_mb=0.5,
        )
    windows = [s for s in said if s.startswith("2020-03-10, window ")]
    n = int(windows[-1].rsplit(" ", 1)[1])
    assert n > 1 and windows[0] == f"2020-03-10, window 1 of {n}", said
