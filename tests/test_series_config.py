"""``SeriesConfig``: one frozen set of series options; ``--date-range`` and the old ``--dates``."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from conftest import kranj_series_args, run_cli
from stfusion.errors import InvalidParameterError, STFusionError
from stfusion.series import SeriesConfig, read_summary, run_series

D = dt.date


def test_config_normalises_and_is_frozen(tmp_path: Path) -> None:
    cfg = SeriesConfig(
        tmp_path,
        fine="landsat/",
        coarse=["modis/"],
        params=["window=11"],
        fine_mask_flags="default,snow",
        fine_bands="3,2,1",
        fallback="None",
    )
    assert cfg.out_dir == tmp_path and cfg.fine == ("landsat/",) and cfg.coarse == ("modis/",)
    assert cfg.params == ("window=11",) and cfg.fine_mask_flags == ("default", "snow")
    assert cfg.fine_bands == ("3", "2", "1") and cfg.fallback is None
    assert cfg.targets_range() == (None, None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.method = "fitfc"  # type: ignore[misc]
    assert SeriesConfig(tmp_path, date_range="2020-03-01:").targets_range() == (D(2020, 3, 1), None)
    assert SeriesConfig(tmp_path, date_range=(None, D(2020, 4, 1))).targets_range() == (
        None,
        D(2020, 4, 1),
    )
    with pytest.raises(InvalidParameterError, match="--date-range"):
        SeriesConfig(tmp_path, date_range="2020-04-30:2020-03-01").targets_range()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("dtype", "uint8", "--dtype"),
        ("int16_scale", 0.0, "--int16-scale"),
        ("min_valid", 1.5, "--min-valid"),
        ("pairs_per_side", 0, "--pairs-per-side"),
        ("prefix", "a/b", "--prefix"),
        # these failed every date one by one (or as a plain ValueError) when the run came
        ("mem_limit_mb", -5, "--mem-limit"),
        ("mem_limit_mb", float("nan"), "--mem-limit"),
        ("workers", 0, "--workers"),
        ("fine_scale", 0, "--fine-scale"),
        ("coarse_offset", float("inf"), "--coarse-offset"),
        ("date_range", "2020-02-30:2020-03-01", "2020-02-30"),
    ],
)
def test_config_rejects_bad_values_before_any_work(
    tmp_path: Path, field: str, value: object, message: str
) -> None:
    with pytest.raises(STFusionError, match=message):
        SeriesConfig(tmp_path, **{field: value})  # type: ignore[arg-type]


def test_run_series_keyword_form_and_old_names(tmp_path: Path) -> None:
    with pytest.raises(InvalidParameterError, match="not both"):
        run_series(tmp_path, dates="2020-03-08", date_range="2020-03-08")
    with pytest.raises(TypeError, match="unknown series option"):
        run_series(tmp_path, fine_scaling=1e-4)


def _kranj(out: Path, *extra: str) -> list[str]:
    return kranj_series_args(out, "-q", *extra)


def test_cli_date_range_and_deprecated_dates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(
        _kranj(tmp_path / "new", "--date-range", "2020-03-09:2020-03-10"), capsys
    )
    assert code == 0, err
    assert "deprecated" not in err
    new = [r["date"] for r in read_summary(tmp_path / "new" / "summary.csv")]
    assert new == ["2020-03-09", "2020-03-10"]
    # the old name still works, with a note
    code, _, err = run_cli(_kranj(tmp_path / "old", "--dates", "2020-03-09:2020-03-10"), capsys)
    assert code == 0, err
    assert "--dates is deprecated" in err and "--date-range" in err
    assert [r["date"] for r in read_summary(tmp_path / "old" / "summary.csv")] == new
    # both at once: a usage error
    both = _kranj(tmp_path / "both", "--dates", "2020-03-09", "--date-range", "2020-03-09")
    code, _, err = run_cli(both, capsys)
    assert code == 2 and "--date-range" in err


def test_cli_and_python_give_one_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI builds the SeriesConfig that the keyword form of run_series builds."""
    import stfusion.series as series_pkg

    seen: list[SeriesConfig] = []

    def capture(config: SeriesConfig, **kw: object) -> None:
        seen.append(config)
        raise InvalidParameterError("captured")

    monkeypatch.setattr(series_pkg, "run_series", capture)
    code, _, _ = run_cli(
        [
            "series",
            "--fine",
            "f/",
            "--coarse",
            "c/",
            "-o",
            str(tmp_path),
            "--date-range",
            "2020-03-01:",
            "--fine-scale",
            "0.0001",
            "--fine-mask-flags",
            "default,snow",
            "--fallback",
            "none",
        ]
    )
    assert code == 1 and len(seen) == 1
    expected = SeriesConfig.from_kwargs(
        tmp_path,
        fine=["f/"],
        coarse=["c/"],
        dates="2020-03-01:",
        fine_scale=1e-4,
        fine_mask_flags="default,snow",
        fallback="none",
    )
    assert seen[0] == expected


def test_arrays_given_for_files_are_named() -> None:
    """A user trial: SeriesConfig(fine=[a DataArray]) was a bare TypeError from os.fspath."""
    import numpy as np

    with pytest.raises(InvalidParameterError, match="give paths, folders or globs, not ndarray"):
        SeriesConfig("out", fine=[np.zeros((1, 2, 2))], coarse=["c"])


def test_vipstf_needs_the_ratio_only_when_its_base_does(tmp_path: Path) -> None:
    """A trial: series -m vipstf -p base=sw asked for the ratio that VIPSTF-SW never uses
    (predict ran without it); over FSDAF it is still asked for."""
    from conftest import KRANJ, need

    k = need(KRANJ)
    kw = {
        "fine": [str(k / "landsat" / "filled")],
        "coarse": [str(k / "modis" / "filled")],
        "fine_scale": 1e-4,
        "method": "vipstf",
        "date_range": "2020-03-17",
    }
    res = run_series(tmp_path / "sw", params=["base=sw"], **kw)
    assert res.counts()["failed"] == 0
    with pytest.raises(InvalidParameterError, match="vipstf needs the resolution ratio"):
        run_series(tmp_path / "su", params=["base=fsdaf"], **kw)


def test_one_folder_for_both_fine_and_coarse_is_refused(tmp_path: Path) -> None:
    """--fine and --coarse naming the same files "gap-filled" every date with its own fine
    image and ended with exit 0."""
    from conftest import run_process, write_tif

    rng = np.random.default_rng(0)
    for day in ("2020-03-01", "2020-03-09"):
        write_tif(tmp_path / f"L_{day}.tif", rng.uniform(0.1, 0.3, (2, 16, 16)).astype("f4"))
    out = tmp_path / "out"
    glob = str(tmp_path / "L_*.tif")
    proc = run_process("series", "--fine", glob, "--coarse", str(tmp_path), "--out-dir", str(out))
    assert proc.returncode == 1, proc.stderr
    assert "L_2020-03-01.tif and 1 more: matched by both --fine and --coarse" in proc.stderr
    assert not out.exists()
