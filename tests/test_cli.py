"""The command line, as a user meets it: outputs, exit codes, error messages."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from affine import Affine

import stfusion
from conftest import PredictCase, predict_args, run_clean, run_cli, write_tif
from stfusion.cli import main
from stfusion.errors import InvalidParameterError, STFusionWarning
from stfusion.io import FileSource
from stfusion.methods.starfm import STARFM
from stfusion.metrics import METRIC_NAMES, evaluate


def test_version_help_methods(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["--version"], capsys)
    assert code == 0 and stfusion.__version__ in out
    code, out, _ = run_cli(["--help"], capsys)
    assert code == 0 and "predict" in out and "evaluate" in out
    code, out, _ = run_cli(["--show-versions"], capsys)
    assert code == 0 and "rasterio" in out and "GDAL" in out
    code, out, _ = run_cli(["methods"], capsys)
    assert code == 0
    assert {line.split()[0] for line in out.splitlines()} >= {"starfm", "additive", "nochange"}
    assert "window=auto" in out
    # one method in full: unit, accepted values, meaning (a trial: a usage error)
    code, out, _ = run_cli(["methods", "starfm"], capsys)
    assert code == 0 and "window = auto [fine pixels]: 'auto' or an odd integer" in out, out
    code, _, err = run_cli(["methods", "starfn"], capsys)
    assert code == 2 and "did you mean starfm?" in err, err
    # VIPSTF's own base sw: its parameters were on the docs page only (a docs trial)
    code, out, _ = run_cli(["methods", "vipstf"], capsys)
    assert code == 0 and "with base=sw, SW" in out and "given as --param base.NAME" in out
    assert "window = 65 [fine pixels]" in out.split("with base=sw")[1], out
    code, _, err = run_cli(["methods", "sw"], capsys)
    assert code == 2 and "a base of vipstf" in err, err


def test_methods_page_shows_what_the_command_prints(capsys: pytest.CaptureFixture[str]) -> None:
    """docs/commands/methods.md's listing had drifted (ROBOT's solver missing: a docs trial)."""
    page = (Path(__file__).parents[1] / "docs" / "commands" / "methods.md").read_text()
    listing = page.split("$ stfusion methods\n", 1)[1].split("```", 1)[0]
    code, out, _ = run_cli(["methods"], capsys)
    assert code == 0
    printed = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    for line in listing.splitlines():
        assert printed.get(line.split()[0]) == line, (line, printed.get(line.split()[0]))


def test_command_pages_name_every_option_and_no_other() -> None:
    """Each docs/commands page's option table names only the command's options, and the page
    mentions every option the command has (checked by hand in a docs trial; now kept)."""
    import click

    from stfusion.cli.main import cli

    ctx = click.Context(cli)
    for page in sorted((Path(__file__).parents[1] / "docs" / "commands").glob("*.md")):
        cmd = cli.get_command(ctx, page.stem)
        assert cmd is not None, page
        opts = {o for p in cmd.params for o in [*p.opts, *p.secondary_opts] if o[:2] == "--"}
        text = page.read_text()
        cells = " ".join(line.split("|")[1] for line in text.splitlines() if line[:3] == "| `")
        assert set(re.findall(r"--[a-z][a-z0-9-]*", cells)) <= opts, page.name
        missing = opts - set(re.findall(r"--[a-z][a-z0-9-]*", text)) - {"--help"}
        assert not missing, (page.name, missing)


def test_predict_writes_georeferenced_float32_equal_to_library(
    small_tifs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "pred.tif"
    code, stdout, err = run_cli(predict_args(small_tifs, out, "--mem-limit", "1"), capsys)
    assert code == 0, err
    assert "wrote" in stdout
    with rasterio.open(out) as ds, rasterio.open(small_tifs["f1"]) as ref:
        assert ds.crs == ref.crs and ds.transform == ref.transform
        assert ds.dtypes == ("float32", "float32")
        assert ds.descriptions == ("red", "nir")
        tags = ds.tags()
        assert tags["STFUSION_METHOD"] == "starfm"
        assert json.loads(tags["STFUSION_PARAMS"])["window"] == 7
        assert tags["STFUSION_VERSION"] == stfusion.__version__
        cli_pred = ds.read()
    lib = STARFM(window=7).fit([(small_tifs["f1"], small_tifs["c1"])]).predict(small_tifs["c2"])
    np.testing.assert_array_equal(cli_pred, lib.values)
    # No overwrite without --overwrite, and the file is untouched.
    before = out.stat().st_mtime_ns
    code, _, err = run_cli(predict_args(small_tifs, out), capsys)
    assert code == 1 and "--overwrite" in err and "Traceback" not in err
    assert out.stat().st_mtime_ns == before
    code, _, err = run_cli(predict_args(small_tifs, out, "--overwrite"), capsys)
    assert code == 0, err


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing", "file not found"),
        ("folder", "is a folder, not a raster file. Give one of its files"),
        ("not_raster", "not a raster"),
        ("bands", "bands"),
        ("no_overlap", "do not overlap"),
        ("all_nan", "no valid pixels"),
        ("scale", "--fine-scale"),
        ("param", "no such parameter"),
        ("even_window", "odd"),
    ],
)
def test_bad_inputs_fail_cleanly(case: str, message: str, predict_case: PredictCase) -> None:
    from affine import Affine

    s, tmp_path = predict_case.tifs, predict_case.dir
    extra: list[str] = []
    f1 = FileSource(str(s["f1"])).read()
    here = Affine(50.0, 0, 406012.5, 0, -50.0, 6147787.5)
    if case == "missing":
        s["c1"] = tmp_path / "missing.tif"
    elif case == "folder":
        s["c1"] = tmp_path / "modis"
        s["c1"].mkdir()
    elif case == "not_raster":
        s["c1"] = tmp_path / "notes.txt"
        s["c1"].write_text("hello")
    elif case == "bands":
        s["c1"] = write_tif(tmp_path / "b3.tif", np.concatenate([f1, f1[:1]]), transform=here)
    elif case == "no_overlap":
        s["c1"] = write_tif(
            tmp_path / "far.tif", f1, transform=Affine(50.0, 0, 900000.0, 0, -50.0, 6147787.5)
        )
    elif case == "all_nan":
        s["c2"] = write_tif(tmp_path / "nan.tif", np.full_like(f1, np.nan), transform=here)
    elif case == "scale":
        s["f1"] = write_tif(tmp_path / "x10000.tif", f1 * 10000, transform=here)
    elif case == "param":
        extra = ["--param", "bogus=1"]
    swap = {"window=7": "window=8"} if case == "even_window" else {}
    code, err = predict_case.run(*extra, swap=swap)  # no traceback
    assert code == 1
    assert message in err
    assert not predict_case.out.exists()
    assert not [p for p in tmp_path.iterdir() if "partial" in p.name]
    if case in ("missing", "not_raster", "bands", "all_nan", "scale"):
        bad = {"missing": "c1", "not_raster": "c1", "bands": "c1", "all_nan": "c2", "scale": "f1"}
        assert Path(s[bad[case]]).name in err


def test_debug_shows_traceback(small_tifs: dict[str, Path], tmp_path: Path) -> None:
    from stfusion.errors import InputFileError

    s = dict(small_tifs, c1=tmp_path / "missing.tif")
    with pytest.raises(InputFileError):
        main(["--debug", *predict_args(s, tmp_path / "o.tif")])


def test_evaluate_table_and_json(
    small_tifs: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    code, out, err = run_cli(
        ["evaluate", str(small_tifs["f1"]), str(small_tifs["f2"]), "--ratio", "10"], capsys
    )
    assert code == 0, err
    assert "rmse" in out and "mean" in out and "ERGAS" in out and "data range 1.0" in out
    args = ["evaluate", str(small_tifs["f1"]), str(small_tifs["f2"]), "--json"]
    code, out, _ = run_cli(args, capsys)
    data = json.loads(out)
    assert set(METRIC_NAMES) <= set(data)
    assert set(data["rmse"]["bands"]) == {"red", "nir"}
    f1 = FileSource(str(small_tifs["f1"])).read()
    f2 = FileSource(str(small_tifs["f2"])).read()
    expect = np.sqrt(np.mean((f1.astype(np.float64) - f2) ** 2, axis=(1, 2)))
    assert data["rmse"]["bands"]["red"] == pytest.approx(expect[0], rel=1e-6)
    # Read in many small blocks (a tiny scan budget): the same scores (to float rounding).
    from stfusion import tiling
    from stfusion.io import scan_limit

    with scan_limit(300):
        assert len(FileSource(str(small_tifs["f2"])).scan_windows()) > 4
    monkeypatch.setattr(tiling, "scan_values_for", lambda mb: 300)
    code, out, _ = run_cli([*args, "--mem-limit", "1"], capsys)
    small = json.loads(out)
    assert code == 0
    for name in METRIC_NAMES:
        if data[name]["mean"] is None:  # ergas without --ratio
            assert small[name]["mean"] is None
            continue
        assert small[name]["mean"] == pytest.approx(data[name]["mean"], rel=1e-12, abs=1e-15)
    code, _, err = run_cli(
        ["evaluate", str(small_tifs["f1"]), str(small_tifs["f2"]), "--data-range", "x"], capsys
    )
    assert code == 2 and "--data-range" in err  # a usage error


def test_inspect_shows_alignment(
    small_tifs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from affine import Affine

    from stfusion.coarse import block_mean

    f1 = FileSource(str(small_tifs["f1"])).read()
    native_transform = Affine(500.0, 0, 406012.5, 0, -500.0, 6147787.5)
    native = write_tif(tmp_path / "native.tif", block_mean(f1, 10), transform=native_transform)
    code, out, _ = run_cli(
        ["inspect", str(small_tifs["f1"]), str(small_tifs["c1"]), str(native)], capsys
    )
    assert code == 0
    assert "fine (output grid)" in out
    assert "already on the fine grid" in out
    assert "ratio 10.000" in out
    assert "valid" in out and "scaling" in out
    assert "PROBLEM" not in out and "CHECK" not in out
    # The fine image as reflectance x 10000: the scale mismatch predict refuses, shown here.
    with rasterio.open(small_tifs["f1"]) as ds:
        grid = ds.transform
    dn = write_tif(
        tmp_path / "dn.tif", np.round(f1 * 1e4).astype("int16"), dtype="int16", transform=grid
    )
    code, out, _ = run_cli(["inspect", str(dn), str(native)], capsys)
    assert code == 1  # what predict would refuse: scripts can tell
    assert "PROBLEM" in out and "--fine-scale" in out and "differ" in out
    # An unreadable file is a PROBLEM of its own; the files after it are still described.
    # An empty (all-NaN) image is one too.
    junk = tmp_path / "junk.tif"
    junk.write_text("not a raster")
    empty = write_tif(tmp_path / "empty.tif", np.full(f1.shape, np.nan, np.float32))
    code, out, _ = run_cli(
        ["inspect", str(small_tifs["f1"]), str(junk), str(empty), str(native)], capsys
    )
    assert code == 1
    blocks = out.split(str(tmp_path))
    assert "PROBLEM" in out.split("junk.tif")[1].split("empty.tif")[0]
    assert "no valid pixels" in out.split("empty.tif")[1].split("native.tif")[0]
    assert "ratio 10.000" in "".join(out.split("native.tif")[1:]) and len(blocks) > 3
    code, out, _ = run_cli(["inspect", "--fine-scale", "1e-4", str(dn), str(native)], capsys)
    assert code == 0 and "PROBLEM" not in out
    # Percent (100x): predict warns, so inspect shows a CHECK line.
    code, out, _ = run_cli(["inspect", "--fine-scale", "1e-2", str(dn), str(native)], capsys)
    assert code == 0 and "PROBLEM" not in out and "CHECK" in out and "medians differ" in out
    # Another band count: the option that fixes it, as predict names it (a user trial)
    one = write_tif(tmp_path / "one.tif", block_mean(f1, 10)[:1], transform=native_transform)
    code, out, _ = run_cli(["inspect", str(small_tifs["f1"]), str(one)], capsys)
    assert code == 1 and "--coarse-bands" in " ".join(out.split()), out


def test_inspect_shows_what_predict_warns_about(
    small_tifs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """inspect blamed the scales for a coarse image with its bands in another order (and
    exited 0 without naming the order), and said nothing of a coarse image covering a
    quarter of the fine scene: both are warnings of predict."""
    c1 = FileSource(str(small_tifs["c1"])).read()
    swapped = write_tif(
        tmp_path / "swapped.tif",
        c1[::-1],
        transform=Affine(50.0, 0, 406012.5, 0, -50.0, 6147787.5),
        names=["nir", "red"],
    )
    code, out, _ = run_cli(["inspect", str(small_tifs["f1"]), str(swapped)], capsys)
    said = "band 1 is nir by its name nir"
    assert code == 0 and "CHECK" in out and said in " ".join(out.split()), out
    checks = [line for line in out.splitlines() if line.lstrip().startswith("CHECK")]
    assert "band 1 is nir" in checks[0]  # first: the order explains the scale warning
    quarter = write_tif(
        tmp_path / "quarter.tif",
        c1[:, :20, :20],
        transform=Affine(50.0, 0, 406012.5, 0, -50.0, 6147787.5),
        names=["red", "nir"],
    )
    code, out, _ = run_cli(["inspect", str(small_tifs["f1"]), str(quarter)], capsys)
    assert code == 0 and "CHECK" in out and "covers only about 25%" in out, out
    # an undeclared fill, as predict warns of it (a trial: inspect said nothing)
    dn = np.round(FileSource(str(small_tifs["f1"])).read() * 1e4)
    dn[:, :, :8] = 0
    zeros = write_tif(tmp_path / "zeros.tif", dn, dtype="int16")
    code, out, _ = run_cli(["inspect", str(zeros)], capsys)
    assert code == 0 and "hold 0 in every band" in out and "--fine-nodata 0" in out, out
    # what predict will take it for (int16 x 10000 read as is showed "value * 1 + 0
    # (default)" and no hint), and a ratio that the grids cannot give (a docs trial)
    assert "variable  reflectance stored x 10000, inferred" in out, out
    assert "--fine-scale 0.0001" in " ".join(out.split()), out
    code, out, _ = run_cli(["inspect", str(small_tifs["f1"]), str(small_tifs["c1"])], capsys)
    flat = " ".join(out.split())
    assert "variable reflectance, inferred" in flat and "stored x" not in flat, out
    assert "ratio none from the grids" in flat and "--param ratio=R" in flat, out


def test_inspect_calls_south_up_only_a_georeferenced_grid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A raster without georeferencing (GDAL's identity transform, y pixel size +1; BOREAS's
    ENVI files) was described as "south-up"."""
    data = np.ones((1, 8, 8), dtype="float32")
    plain = write_tif(tmp_path / "plain.tif", data, transform=Affine.identity(), crs=None)
    flipped = write_tif(tmp_path / "up.tif", data, transform=Affine(30, 0, 0, 0, 30, 0))
    code, out, _ = run_cli(["inspect", str(plain)], capsys)
    assert code == 0 and "8 x 8 px (rows x columns), 1 x 1, no CRS" in out, out
    assert "south-up" not in out, out
    code, out, _ = run_cli(["inspect", str(flipped)], capsys)
    assert code == 0 and "30 x 30, south-up" in out, out
    # a rotated grid said nothing of its rotation (a messy-inputs trial)
    turned = write_tif(tmp_path / "turned.tif", data, transform=Affine(26, 15, 0, 15, -26, 0))
    code, out, _ = run_cli(["inspect", str(turned)], capsys)
    assert code == 0 and "rotated or sheared (geotransform 26, 15, 15, -26)" in out, out


def test_demo_runs_on_bundled_sample(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _out, err = run_cli(["demo", str(tmp_path / "d")], capsys)
    assert code == 0, err
    for name in ("starfm_2001-11-02.tif", "demo.png", "metrics.json"):
        assert (tmp_path / "d" / name).stat().st_size > 0
    result = json.loads((tmp_path / "d" / "metrics.json").read_text())
    rm = {k: v["rmse"]["mean"] for k, v in result["metrics"].items()}
    assert set(rm) == {"starfm", "nochange", "additive"}
    assert rm["starfm"] < rm["nochange"]
    assert rm["starfm"] <= 1.03 * rm["additive"]
    code, _, err = run_cli(["demo", str(tmp_path / "d")], capsys)
    assert code == 1 and "--overwrite" in err
    # a method that cannot run the one-pair case leaves no empty folder behind
    code, _, err = run_cli(["demo", str(tmp_path / "e"), "--method", "estarfm"], capsys)
    assert code == 1 and "2 pairs" in err and not (tmp_path / "e").exists()
    # and says where it can run: the bundled two-pair sample (a packaging trial)
    assert "the demo case cia-1pair has one" in err and "--cases sample-cia-2pair" in err
    # a file given for the folder: said so (was "[Errno 17] File exists")
    (tmp_path / "f").write_text("mine\n")
    code, _, err = run_cli(["demo", str(tmp_path / "f")], capsys)
    assert code == 1 and "is a file" in err and (tmp_path / "f").read_text() == "mine\n"


def test_help_imports_no_torch() -> None:
    """``stfusion --help`` (and train's and distill's) loads the commands lazily and builds
    every option from torch-free declarations: torch is never imported."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from stfusion.cli.main import cli\n"
        "for args in (['--help'], ['train', '--help'], ['distill', '--help']):\n"
        "    res = CliRunner().invoke(cli, args)\n"
        "    assert res.exit_code == 0 and 'Usage' in res.output, res.output\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
        "print('OK')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "OK", proc.stderr


def test_recorded_command_line_from_params() -> None:
    """The provenance command line is written from the parsed parameters: long names, in the
    order --help lists them, pairs as two values, flags only when set, quiet/overwrite left
    out."""
    import click
    from click.testing import CliRunner

    from stfusion.cli.options import command_line, overwrite_option, pairs_option, quiet_option

    seen: list[list[str]] = []

    @click.command("job")
    @click.argument("name")
    @click.option("--size", default=3, show_default=True)
    @pairs_option("pairs")
    @click.option("--no-augment", "augment", is_flag=True, default=True, flag_value=False)
    @click.option("--quality", is_flag=True)
    @click.option("--note", default="")
    @overwrite_option()
    @quiet_option()
    @click.pass_context
    def job(ctx: click.Context, **_: object) -> None:
        seen.append(command_line(ctx))

    args = ["-q", "--pair", "f 1.tif", "c1.tif", "x", "--no-augment", "--overwrite"]
    assert CliRunner().invoke(job, args).exit_code == 0
    assert seen[-1] == [
        "stfusion",
        "job",
        "x",
        "--size",
        "3",
        "--pair",
        "f 1.tif",
        "c1.tif",
        "--no-augment",
    ]
    # flags left at their defaults are not recorded
    assert CliRunner().invoke(job, ["x"]).exit_code == 0
    assert seen[-1] == ["stfusion", "job", "x", "--size", "3"]


def test_evaluate_refuses_other_grids_and_bad_scales(
    small_tifs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A truth of the same size on another place or CRS is not scored pixel by pixel; scales,
    offsets and the ratio are checked like predict's."""
    from rasterio.crs import CRS

    f2 = FileSource(str(small_tifs["f2"]))
    data = f2.read()
    t = f2.grid.transform
    shifted = write_tif(tmp_path / "shifted.tif", data, transform=t * Affine.translation(20, 0))
    other_crs = write_tif(tmp_path / "crs.tif", data, transform=t, crs=CRS.from_epsg(32633))
    plain = write_tif(tmp_path / "plain.tif", data, transform=t, crs=None)
    pred = str(small_tifs["f1"])
    for truth in (shifted, other_crs):
        code, out, err = run_cli(["evaluate", pred, str(truth)], capsys)
        assert code == 1 and "different grids" in err and str(truth) in err and not out
    code, out, err = run_cli(["evaluate", pred, str(plain)], capsys)  # not georeferenced
    assert code == 0 and "rmse" in out, err
    # a shift of 0.04 px: the origins printed with %g read the same for both grids
    near = write_tif(tmp_path / "near.tif", data, transform=t * Affine.translation(0, 0.04))
    code, out, err = run_cli(["evaluate", pred, str(near)], capsys)
    origins = re.findall(r"origin ([-\d.]+, [-\d.]+)", " ".join(err.split()))
    assert code == 1 and len(origins) == 2 and origins[0] != origins[1], err
    for bad in (
        ["--truth-scale", "0"],
        ["--truth-scale", "-1"],
        ["--pred-scale", "nan"],
        ["--truth-offset", "inf"],
        ["--ratio", "0.1"],
    ):
        code, out, err = run_cli(["evaluate", pred, str(small_tifs["f2"]), *bad], capsys)
        assert code == 2 and bad[0] in err, (bad, err)
    with pytest.raises(InvalidParameterError, match="give 10"):
        evaluate(data, data, ratio=0.1)


def test_evaluate_undeclared_fill_value(
    small_tifs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--truth-nodata: a fill value the truth file does not declare is left out, exactly as
    if it were declared."""
    f2 = FileSource(str(small_tifs["f2"]))
    dn = np.round(f2.read() * 1e4).astype(np.int16)
    dn[:, :5] = -9999
    t = f2.grid.transform
    bare = write_tif(tmp_path / "bare.tif", dn, dtype="int16", transform=t)
    tagged = write_tif(tmp_path / "tagged.tif", dn, dtype="int16", transform=t, nodata=-9999)
    pred = str(small_tifs["f1"])

    def rmse(truth: Path, *extra: str) -> float:
        code, out, err = run_cli(
            ["evaluate", pred, str(truth), "--truth-scale", "1e-4", "--json", *extra], capsys
        )
        assert code == 0, err
        return float(json.loads(out)["rmse"]["mean"])

    want = rmse(tagged)
    # the fill scored as data, with a warning that gives the option and the stored value
    with pytest.warns(STFusionWarning, match=r"Leave it out with --truth-nodata -9999 "):
        assert rmse(bare) > 5 * want
    assert rmse(bare, "--truth-nodata", "-9999") == pytest.approx(want, rel=1e-12)


def test_evaluate_names_collection_2_for_a_prediction_in_digital_numbers() -> None:
    """A user trial: a prediction made from unscaled Landsat C2 digital numbers got only
    "--pred-scale 1e-05", which leaves the -0.2 offset out."""
    from stfusion.scale_check import scale_mismatch

    truth = np.full((1, 8, 8), 0.045)
    pred = (truth + 0.2) / 2.75e-5
    found = scale_mismatch(pred, truth)
    assert found is not None
    text = found.message()
    assert "--pred-scale 2.75e-5 --pred-offset -0.2" in text and "--pred-scale 1e-05" in text


def test_evaluate_a_fill_over_half_the_prediction_is_not_called_a_scale(
    small_tifs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A user trial: -9999 in 55 % of an undeclared-fill prediction made its median 9999, and
    the error said the prediction was stored scaled (--pred-scale 1e-05, which scored RMSE
    0.174 against 0.0170). The error names the fill and --pred-nodata now."""
    f1 = FileSource(str(small_tifs["f1"]))
    data = f1.read()
    data[:, 15:] = -9999
    pred = write_tif(tmp_path / "p.tif", data, transform=f1.grid.transform)
    code, _, err = run_cli(["evaluate", str(pred), str(small_tifs["f2"])], capsys)
    assert code == 1 and "--pred-nodata -9999" in err and "--pred-scale" not in err, err
    args = ["evaluate", str(pred), str(small_tifs["f2"]), "--pred-nodata", "-9999"]
    code, _, err = run_cli(args, capsys)
    assert code == 0, err


def test_evaluate_warns_on_landsat_c2_zero_fill(
    small_tifs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Landsat Collection 2 stores fill as 0, which its offset makes -0.2: close to the
    reflectance values, so the far-away rule missed it (RMSE 0.1255 for 0.0402, silently)."""
    f2 = FileSource(str(small_tifs["f2"]))
    dn = np.round((f2.read() + 0.2) / 2.75e-5).astype(np.uint16)
    dn[:, :4] = 0
    truth = write_tif(tmp_path / "c2.tif", dn, dtype="uint16", transform=f2.grid.transform)
    args = ["evaluate", str(small_tifs["f1"]), str(truth), "--truth-scale", "2.75e-5"]
    with pytest.warns(STFusionWarning, match=r"holds -0\.2, .*--truth-nodata 0 "):
        code, _, err = run_cli([*args, "--truth-offset", "-0.2"], capsys)
    assert code == 0, err


def test_evaluate_warns_on_band_order_and_says_the_inverse_ratio(
    small_tifs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f2 = FileSource(str(small_tifs["f2"]))
    data, t = f2.read(), f2.grid.transform
    names = ["blue", "green", "red"][: data.shape[0]]
    truth = write_tif(tmp_path / "t.tif", data, transform=t, names=names)
    pred = write_tif(tmp_path / "p.tif", data[::-1], transform=t, names=names[::-1])
    with pytest.warns(STFusionWarning, match="scored by position"):
        code, _, err = run_cli(["evaluate", str(pred), str(truth)], capsys)
    assert code == 0, err
    code, _, err = run_cli(["evaluate", str(pred), str(truth), "--ratio", "0.0625"], capsys)
    assert code == 2 and "--ratio 16" in err
    code, _, err = run_cli(["evaluate", str(pred), str(truth), "--data-range", "foo"], capsys)
    assert code == 2 and "'truth'" in err


def test_evaluate_warns_on_digital_numbers_scored_as_reflectance(tmp_path: Path) -> None:
    """Through a real process: the warning reaches stderr, the scores stdout, exit status 0."""
    import subprocess
    import sys

    rng = np.random.default_rng(1)
    truth = rng.uniform(100, 4000, (2, 12, 12)).astype("int16")
    pred = (truth + rng.normal(0, 30, truth.shape)).astype("float32")
    t = write_tif(tmp_path / "truth.tif", truth, dtype="int16")
    p = write_tif(tmp_path / "pred.tif", pred)

    def run(*extra: str) -> subprocess.CompletedProcess[str]:
        args = [sys.executable, "-m", "stfusion", "evaluate", str(p), str(t), *extra]
        return subprocess.run(args, capture_output=True, text=True, timeout=120)

    proc = run()
    assert proc.returncode == 0 and "rmse" in proc.stdout, proc.stderr
    assert "Warning:" in proc.stderr and "--truth-scale" in proc.stderr
    assert "--data-range truth" in proc.stderr
    proc = run("--data-range", "truth")
    assert proc.returncode == 0 and "Warning" not in proc.stderr, proc.stderr


def test_train_options_a_model_does_not_read_are_warned_about() -> None:
    """--adv-weight on edcstfn was ignored but recorded in the checkpoint as if used."""
    from stfusion.cli.train import _applicable

    given = {"adv_weight": 0.1, "clip": 1.0, "alpha": 0.5, "content": None}
    with pytest.warns(STFusionWarning, match=r"--adv-weight, --clip: read only by ganstfm, vitgan"):
        assert _applicable("edcstfn", given) == {"alpha": 0.5, "content": None}
    with pytest.warns(STFusionWarning, match=r"--vision-weight: read only by edcstfn"):
        assert "alpha" not in _applicable("dcstfn", {"alpha": 0.5})
    assert _applicable("ganstfm", given) == given  # a GAN reads them all


def test_evaluate_says_when_one_side_is_not_georeferenced(
    small_tifs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A user trial: a prediction without a CRS (and shifted 10 px) scored against a
    georeferenced truth, with no word that nothing checks that they cover one area. One
    with a geotransform other than the truth's is refused (they show different places)."""
    from affine import Affine

    truth = FileSource(str(small_tifs["f2"]))
    shifted = np.roll(truth.read(), 10, axis=2)
    bare = write_tif(tmp_path / "bare.tif", shifted, crs=None, transform=Affine.identity())
    with pytest.warns(STFusionWarning, match=r"bare\.tif: not georeferenced.*assumed to line up"):
        code, out, err = run_cli(["evaluate", str(bare), str(small_tifs["f2"]), "--json"], capsys)
    assert code == 0, err
    assert any("not georeferenced" in n for n in json.loads(out)["notes"])
    elsewhere = write_tif(tmp_path / "elsewhere.tif", shifted, crs=None)  # another transform
    code, out, err = run_cli(["evaluate", str(elsewhere), str(small_tifs["f2"])], capsys)
    assert code == 1 and "geotransforms differ" in err, err


def test_evaluate_exits_1_when_nothing_is_scored(
    small_tifs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A user trial: an all-NaN prediction printed empty metrics and exited 0."""
    truth = FileSource(str(small_tifs["f2"]))
    empty = write_tif(
        tmp_path / "nan.tif",
        np.full(truth.read().shape, np.nan, np.float32),
        transform=truth.grid.transform,
    )
    code, out, err = run_cli(["evaluate", str(empty), str(small_tifs["f2"]), "--json"], capsys)
    assert code == 1 and "no pixel is valid in both" in err, err
    assert json.loads(out)["rmse"]["mean"] is None  # the report is still printed


def test_one_file_as_both_images_of_a_pair_is_refused(
    small_tifs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """`--pair L.tif L.tif` (a glob or a copied argument gone wrong) fused the fine image
    with itself as its coarse image and wrote a prediction, exit 0."""
    f1, c1 = small_tifs["f1"], small_tifs["c1"]
    link = f1.with_name("same.tif")
    link.symlink_to(f1)  # the same file by another path
    out = f1.with_name("out.tif")
    for second in (f1, link):
        args = predict_args(small_tifs, out)
        args[args.index(str(c1))] = str(second)
        code, err = run_clean(args, capsys)
        assert code == 1 and "given as both the fine and the coarse image of pair 1" in err, err
        assert "--fine-ref" in err and not out.exists()
    # one file holding different bands for each role stays allowed
    args = predict_args(small_tifs, out, "--fine-bands", "1", "--coarse-bands", "2")
    args[args.index(str(c1))] = str(f1)
    with pytest.warns(STFusionWarning):  # nir fused against red: a warning, not an error
        code, err = run_clean(args, capsys)
    assert code == 0 and out.exists(), err


def test_predicting_a_pair_s_own_date_is_warned_about(
    small_tifs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """`--coarse` naming the pair's own coarse image predicted that date, which (nearly)
    returns the pair's fine image, with no word."""
    out = small_tifs["f1"].with_name("out.tif")
    args = predict_args(small_tifs, out)
    args[args.index("--coarse") + 1] = str(small_tifs["c1"])
    with pytest.warns(STFusionWarning, match="the coarse target is the coarse image of pair 1"):
        code, err = run_clean(args, capsys)
    assert code == 0 and out.exists(), err


def test_pair_and_target_dates_from_names_are_checked(
    small_tifs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """A pair of two dates weeks apart by their names (a mix-up of files), or a target on a
    pair's own date (another file of that date), ran with no word."""
    d = small_tifs["f1"].parent
    named = {}
    for key, name in (("f1", "L_2001-10-08"), ("c1", "M_2001-11-02"), ("c2", "M_2001-10-08")):
        named[key] = d / f"{name}.tif"
        named[key].symlink_to(small_tifs[key])
    out = d / "out.tif"
    with pytest.warns(STFusionWarning) as caught:
        code, err = run_clean(predict_args(named, out), capsys)
    said = [" ".join(str(w.message).split()) for w in caught]
    assert code == 0 and out.exists(), err
    assert any("pair 1: the fine image" in m and "25 days apart" in m for m in said), said
    assert any("dated 2001-10-08 by its name, the date of pair 1" in m for m in said), said
    # 16 days apart (a 16-day composite) and a target of another date: nothing said
    named["c1"] = d / "M_2001-10-24.tif"
    named["c1"].symlink_to(small_tifs["c1"])
    named["c2"] = d / "M_2001-11-02.tif"
    with warnings.catch_warnings():
        warnings.simplefilter("error", STFusionWarning)
        code, err = run_clean(predict_args(named, out, "--overwrite"), capsys)
    assert code == 0, err


def test_a_repeated_pair_is_refused(
    small_tifs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """The same --pair twice ran ESTARFM on a pair regressed on itself, exit 0."""
    out = small_tifs["f1"].with_name("out.tif")
    args = predict_args(small_tifs, out, "--pair", str(small_tifs["f1"]), str(small_tifs["c1"]))
    args[args.index("starfm")] = "estarfm"
    code, err = run_clean(args, capsys)
    assert code == 1 and "pair 2 (" in err and "repeats pair 1" in err, err
    assert not out.exists()


def test_main_called_from_python_leaves_the_process_as_it_found_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`stfusion.cli.main([...])` in a notebook replaced the SIGINT/SIGTERM/SIGHUP handlers
    and sys.stdout for good, silenced every warning, logged at INFO from then on, and a signal
    seen by one call made the next end as "Interrupted"; now all is put back."""
    import importlib
    import signal
    import sys

    cli_main = importlib.import_module("stfusion.cli.main")  # the module, not main()

    import logging

    def state() -> tuple[object, ...]:
        return (
            *(signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)),
            sys.stdout,
            sys.unraisablehook,
            list(warnings.filters),  # the command silenced every warning for the session
            warnings.formatwarning,
            list(logging.getLogger().handlers),  # and left its log handler and levels
            logging.getLogger().level,
            logging.getLogger("stfusion").level,
        )

    before = state()
    assert run_cli(["-v", "methods", "starfm"], capsys)[0] == 0
    assert run_cli(["methods", "nosuch"], capsys)[0] != 0
    assert state() == before
    cli_main._SIGNALLED.append(signal.SIGTERM)  # a signal an earlier call saw
    assert run_cli(["methods", "starfm"], capsys)[0] == 0


def test_threads_setting_is_put_back_after_a_run(predict_case: PredictCase) -> None:
    """`run_prediction(threads=1)` (`--threads 1`) left numba on one thread for the rest of
    a notebook session."""
    import numba

    from stfusion.api import run_prediction

    before = numba.get_num_threads()
    run_prediction(
        method="additive",
        pairs=[(predict_case.tifs["f1"], predict_case.tifs["c1"])],
        target=predict_case.tifs["c2"],
        out=predict_case.out,
        threads=1,
    )
    assert numba.get_num_threads() == before


def test_evaluate_on_one_extent_at_other_pixel_sizes_says_resample(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A Sentinel-2 trial: a 20 m prediction against a 10 m truth of the same extent was
    told to crop "the larger onto the smaller's extent", and to pick bands by position
    though both files named theirs."""
    t10 = Affine(10.0, 0, 500000.0, 0, -10.0, 6100000.0)
    t20 = Affine(20.0, 0, 500000.0, 0, -20.0, 6100000.0)
    rng = np.random.default_rng(0)
    pred = write_tif(
        tmp_path / "p.tif", rng.random((3, 8, 8)), transform=t20, names=["B02", "B04", "B8A"]
    )
    truth = write_tif(
        tmp_path / "t.tif", rng.random((2, 16, 16)), transform=t10, names=["B02", "B04"]
    )
    code, _, err = run_cli(["evaluate", str(pred), str(truth)], capsys)
    assert code == 1 and f"here {pred}:B02,B04" in err, err
    assert "one extent with pixels of other sizes (20 against 10): resample" in err


def test_an_output_of_inputs_without_georeferencing_has_none(
    small_tifs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A GIS trial: ENVI inputs without a geotransform gave outputs with origin (0, 0) and
    pixel size (1, +1) written out, so GDAL and QGIS took them for south-up georeferenced
    rasters (upside down beside their inputs in QGIS)."""
    from rasterio.errors import NotGeoreferencedWarning

    bare = {}
    for key in ("f1", "c1", "c2"):
        data = FileSource(str(small_tifs[key])).read()
        bare[key] = tmp_path / f"bare_{key}.tif"
        profile = {"driver": "GTiff", "width": data.shape[2], "height": data.shape[1]}
        with rasterio.open(bare[key], "w", count=data.shape[0], dtype="float32", **profile) as ds:
            ds.write(data.astype("float32"))
    out = tmp_path / "p.tif"
    args = ["predict", "-m", "additive", "--pair", str(bare["f1"]), str(bare["c1"])]
    code, _, err = run_cli([*args, "--coarse", str(bare["c2"]), "--out", str(out)], capsys)
    assert code == 0, err
    with pytest.warns(NotGeoreferencedWarning), rasterio.open(out) as ds:
        assert ds.crs is None and ds.transform.is_identity


def test_predict_never_overwrites_a_file_given_in_a_param(
    small_tifs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A user trial: --out w.ckpt --overwrite with -p weights=w.ckpt replaced the trained
    network with the prediction. Files named by --param values are inputs too."""
    mapped = tmp_path / "classes.tif"
    with rasterio.open(small_tifs["f1"]) as ds:
        profile = dict(ds.profile, count=1, dtype="uint8", nodata=None)
        with rasterio.open(mapped, "w", **profile) as m:
            m.write(np.ones((1, ds.height, ds.width), np.uint8))
    before = mapped.read_bytes()
    args = [
        "predict", "--method", "fsdaf", "--pair", str(small_tifs["f1"]), str(small_tifs["c1"]),
        "--coarse", str(small_tifs["c2"]), "--out", str(mapped), "--overwrite",
        "-p", f"classes={mapped}", "-p", "ratio=4",
    ]  # fmt: skip
    code, _, err = run_cli(args, capsys)
    assert code == 1 and "the output is one of the inputs" in " ".join(err.split()), err
    assert mapped.read_bytes() == before


def test_a_cramped_mem_limit_is_said_once_with_the_limit_given(tmp_path: Path) -> None:
    """A user trial: with --quality the warning came twice, the second with the quality
    layer's reduced share ("--mem-limit 1.65116 MB"), a number the user never gave."""
    from conftest import run_process, sample_pair_args
    from stfusion.demo import sample_dir

    args = ["predict", "-m", "starfm", *sample_pair_args(("2001-10-08",)), "--coarse"]
    args += [str(sample_dir() / "CIA_MOD09GA_2001-11-02.tif"), "--out", str(tmp_path / "q.tif")]
    p = run_process(*args, "--quality", "--mem-limit", "2", "-q")
    err = p.stderr
    said = " ".join(err.split())
    assert p.returncode == 0 and said.count("leaves room for windows") == 1, err
    assert "--mem-limit 2 MB" in said, err


def test_a_file_named_like_an_option_is_named_in_the_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A user trial: `inspect -F1.tif` said only "No such option '-F'"."""
    import subprocess
    import sys

    from conftest import process_env
    from stfusion.demo import sample_dir

    monkeypatch.chdir(tmp_path)
    (tmp_path / "-F1.tif").write_bytes((sample_dir() / "CIA_Landsat7_2001-10-08.tif").read_bytes())
    p = subprocess.run(
        [sys.executable, "-m", "stfusion", "inspect", "-F1.tif"],
        capture_output=True, text=True, cwd=tmp_path, env=process_env(), timeout=120,
    )  # fmt: skip
    assert p.returncode == 2 and "give it as ./-F1.tif, or after --" in p.stderr, p.stderr


def test_a_long_evaluate_says_it_is_scoring(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 3000 x 3000 scoring ran 455 s without a line (a big-scene trial); --json with
    --csv was refused only after it."""
    import time

    import stfusion.api
    from stfusion.cli import evaluate as evaluate_cli
    from stfusion.demo import sample_dir

    real = stfusion.api.evaluate_files
    calls = []

    def slow(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        time.sleep(0.6)
        return real(*args, **kwargs)

    monkeypatch.setattr(stfusion.api, "evaluate_files", slow)
    monkeypatch.setattr(evaluate_cli, "SAY_AFTER_S", 0.1)
    d = sample_dir()
    files = [str(d / "CIA_Landsat7_2001-10-17.tif"), str(d / "CIA_Landsat7_2001-11-02.tif")]
    code, out, err = run_cli(["evaluate", *files, "--json"], capsys)
    assert code == 0 and "scoring, block by block" in err and '"rmse"' in out, err
    code, _, err = run_cli(["evaluate", *files, "--json", "--csv"], capsys)
    assert code == 2 and "give one" in err and len(calls) == 1, err
