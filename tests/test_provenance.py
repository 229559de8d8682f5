"""What a prediction file records and how it is written (issue 11, item 8).

Provenance tags the same from the CLI and the Python API; each STFusionWarning shown once; a
deep model warned when it predicts one of its training dates; Cloud-Optimized GeoTIFF
outputs; ``stfusion demo`` files that respect the umask.
"""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

from conftest import write_tif
from stfusion.demo import sample_dir
from stfusion.errors import STFusionWarning
from stfusion.io import FileSource, Grid, Scaling, write_raster

REPO = Path(__file__).resolve().parents[1]
SAMPLE = sample_dir()
F08, C08 = SAMPLE / "CIA_Landsat7_2001-10-08.tif", SAMPLE / "CIA_MOD09GA_2001-10-08.tif"
F17, C17 = SAMPLE / "CIA_Landsat7_2001-10-17.tif", SAMPLE / "CIA_MOD09GA_2001-10-17.tif"
C1102 = SAMPLE / "CIA_MOD09GA_2001-11-02.tif"

PROVENANCE_KEYS = {
    "STFUSION_METHOD",
    "STFUSION_PARAMS",
    "STFUSION_INPUTS",
    "STFUSION_SCALING",
    "STFUSION_RESAMPLING",
    "STFUSION_RATIO",
    "STFUSION_ALIGNMENT",
    "STFUSION_VERSION",
    "STFUSION_CREATED",
}


def _cli(*args: str, umask: int | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """``stfusion ARGS`` in a fresh process (warnings and exit codes as a user meets them)."""
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    env.pop("PYTHONWARNINGS", None)
    pre = "" if umask is None else f"import os; os.umask({umask:#o}); "
    code = f"{pre}import sys; from stfusion.cli import main; main(sys.argv[1:])"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


def _stf_tags(path: Path) -> dict[str, str]:
    with rasterio.open(path) as ds:
        return {k: v for k, v in ds.tags().items() if k.startswith("STFUSION_")}


# ------------------------------------------------------------------------------ provenance


def test_api_and_cli_write_the_same_provenance_tags(tmp_path: Path) -> None:
    from stfusion.api import run_prediction
    from stfusion.methods.baselines import Additive

    cli_out, api_out, est_out = tmp_path / "cli.tif", tmp_path / "api.tif", tmp_path / "est.tif"
    res = _cli(
        "predict",
        "-q",
        "-m",
        "additive",
        "--pair",
        str(F17),
        str(C17),
        "--coarse",
        str(C1102),
        "-o",
        str(cli_out),
    )
    assert res.returncode == 0, res.stderr
    run_prediction(
        method="additive", pairs=[(str(F17), str(C17))], target=str(C1102), out=str(api_out)
    )
    Additive().fit([(str(F17), str(C17))]).predict(str(C1102), out=est_out)

    cli, api, est = _stf_tags(cli_out), _stf_tags(api_out), _stf_tags(est_out)
    assert set(cli) - {"STFUSION_COMMAND"} == set(api) == set(est)
    assert PROVENANCE_KEYS <= set(est)
    assert "predict" in cli["STFUSION_COMMAND"] and str(cli_out) in cli["STFUSION_COMMAND"]
    for tags in (cli, api, est):
        assert json.loads(tags["STFUSION_INPUTS"]) == {
            "pairs": [[str(F17), str(C17)]],
            "coarse_target": str(C1102),
        }
        scaling = json.loads(tags["STFUSION_SCALING"])
        assert scaling["fine"]["scale"] == pytest.approx(1e-4)
        assert scaling["coarse"]["scale"] == pytest.approx(1e-4)
        assert tags["STFUSION_METHOD"] == "additive"
        assert tags["STFUSION_CREATED"].endswith("+00:00")
    # Everything but the time and the command line is the same for the same job.
    drop = {"STFUSION_CREATED", "STFUSION_COMMAND"}
    assert {k: v for k, v in cli.items() if k not in drop} == {
        k: v for k, v in est.items() if k not in drop
    }


# -------------------------------------------------------------------------------- warnings


def _generic_names(tmp_path: Path, *paths: Path) -> list[Path]:
    """Copies without CRS and band names (warnings: georeferencing, band names)."""
    out = []
    for p in paths:
        src = FileSource(str(p))
        out.append(
            write_tif(
                tmp_path / p.name,
                src.read(),
                crs=None,
                transform=Affine.identity(),
                nodata=float("nan"),
            )
        )
    return out


def _counts(messages: list[str]) -> collections.Counter[str]:
    return collections.Counter(messages)


def test_what_a_wrapper_chose_is_recorded(tmp_path: Path) -> None:
    """The ensemble's members that ran (ESTARFM asked for, not run on one pair) and VIPSTF's
    virtual-pair weights are in the output's tags, beside the parameters asked for."""
    from stfusion.methods.ensemble import Ensemble
    from stfusion.methods.vipstf import VIPSTF

    s = Scaling(1e-4)
    ens = Ensemble(members="additive,nochange,estarfm").fit(
        [(F17, C17)], ratio=10, fine_scaling=s, coarse_scaling=s
    )
    ens.predict(FileSource(str(C1102), s), out=tmp_path / "e.tif")
    tags = _stf_tags(tmp_path / "e.tif")
    assert "estarfm" in tags["STFUSION_PARAMS"]
    assert json.loads(tags["STFUSION_ENSEMBLE"]) == {
        "members_run": ["additive", "nochange"],
        "reliability": "cross_scale",
        "consistency_gain": [0.0] * 6,  # real MODIS: the coarse residual is not added back
    }
    vip = VIPSTF(base="additive").fit([(F08, C08), (F17, C17)], fine_scaling=s, coarse_scaling=s)
    vip.predict(FileSource(str(C1102), s), out=tmp_path / "v.tif")
    recipe = json.loads(_stf_tags(tmp_path / "v.tif")["STFUSION_VIPSTF"])
    np.testing.assert_allclose(recipe["weights"], vip.weights_, atol=1e-6)
    assert len(recipe["offset"]) == 6


def test_each_warning_once_through_the_api(tmp_path: Path) -> None:
    from stfusion.methods.baselines import Additive

    f, c, t = _generic_names(tmp_path, F17, C17, C1102)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Additive().fit([(f, c)]).predict(t, out=tmp_path / "o.tif")
    msgs = [str(w.message) for w in caught if issubclass(w.category, STFusionWarning)]
    assert any("georeferencing" in m for m in msgs)
    assert sum("georeferencing" in m for m in msgs) == 1, msgs
    # And as a user sees them: default filters, on stderr, once each.
    code = (
        "from stfusion.methods.baselines import Additive\n"
        f"Additive().fit([({str(f)!r}, {str(c)!r})]).predict({str(t)!r}, out={str(tmp_path)!r}"
        " + '/p.tif')\n"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert res.returncode == 0, res.stderr
    lines = [ln for ln in res.stderr.splitlines() if "STFusionWarning" in ln]
    assert sum("georeferencing" in ln for ln in lines) == 1, res.stderr


@pytest.fixture(scope="module")
def torch_available() -> None:
    pytest.importorskip("torch")


def test_deep_method_warns_once_on_its_training_date(torch_available: None, tmp_path: Path) -> None:
    """The shipped weights were trained on (among others) 2001-10-08 and 2001-10-17:
    predicting 2001-10-17 is no honest test, and the user is told so, once; 2001-11-02 is
    not a training date."""
    from stfusion.api import run_prediction
    from stfusion.methods.deep import DCSTFN

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        DCSTFN().fit([(str(F08), str(C08))]).prepare(str(C17))  # date from the file name
    msgs = [str(w.message) for w in caught if issubclass(w.category, STFusionWarning)]
    hits = [m for m in msgs if "2001-10-17" in m and "dcstfn_multisite.ckpt" in m]
    assert len(hits) == 1, msgs
    assert "not an honest test" in hits[0]

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        DCSTFN().fit([(str(F08), str(C08))]).prepare(str(C1102))
    assert not [w for w in caught if "training" in str(w.message)]

    # A date given as an argument counts as well as one in a file name (arrays have none).
    arr = [FileSource(str(p)).read() for p in (F08, C08, C17)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        DCSTFN().fit([(arr[0], arr[1])], target_date="2001-10-17").prepare(arr[2])
    assert sum("2001-10-17" in str(w.message) for w in caught) == 1

    # stfusion.api (the CLI's path): once as well.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run_prediction(
            method="dcstfn",
            pairs=[(str(F08), str(C08))],
            target=str(C17),
            out=str(tmp_path / "d.tif"),
        )
    assert sum("2001-10-17" in str(w.message) for w in caught) == 1


def test_cli_shows_each_deep_warning_once(torch_available: None, tmp_path: Path) -> None:
    f, c, t = _generic_names(tmp_path, F08, C08, C17)
    res = _cli(
        "predict",
        "-q",
        "-m",
        "dcstfn",
        "--pair",
        str(f),
        str(c),
        "--coarse",
        str(t),
        "-o",
        str(tmp_path / "o.tif"),
    )
    assert res.returncode == 0, res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("Warning:")]
    # The shipped weights are band-agnostic (since 2026-12-03): generic band names are no
    # longer compared with training names, so the training-date warning is the deep one left.
    assert not any("trained on bands" in ln for ln in lines), res.stderr
    assert any("2001-10-17" in ln and "not an honest test" in ln for ln in lines), res.stderr
    assert max(_counts(lines).values()) == 1, res.stderr


# ----------------------------------------------------------------------------------- COG


def _is_cog(path: Path) -> dict:
    with rasterio.open(path) as ds:
        assert ds.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG", ds.tags(ns="IMAGE_STRUCTURE")
        assert ds.profile["tiled"]
        return {
            "block": ds.block_shapes[0],
            "overviews": ds.overviews(1),
            "profile": ds.profile,
            "descriptions": ds.descriptions,
            "nodata": ds.nodata,
            "tags": ds.tags(),
        }


def test_predict_writes_a_cog_with_the_computed_values(tmp_path: Path) -> None:
    from stfusion.api import run_prediction
    from stfusion.methods import get_method

    for method in ("additive", "starfm"):
        out = tmp_path / f"{method}.tif"
        run_prediction(
            method=method,
            pairs=[(str(F17), str(C17))],
            target=str(C1102),
            out=str(out),
            params=["ratio=10"],
            quality=True,
        )
        for p in (out, tmp_path / f"{method}_quality.tif"):
            info = _is_cog(p)
            assert info["block"] == (256, 256)  # 250 x 250: tiled, one block
            assert info["overviews"] == []
            assert info["profile"]["compress"] == "deflate"
            assert np.isnan(info["nodata"])
            assert info["tags"]["STFUSION_METHOD"] == method
        assert _is_cog(out)["descriptions"] == ("blue", "green", "red", "nir", "swir1", "swir2")
        with rasterio.open(out) as ds:
            got = ds.read()
        want = get_method(method)().fit([(str(F17), str(C17))], ratio=10).predict(str(C1102))
        np.testing.assert_array_equal(got, want.values)  # bit for bit, NaN where NaN


def test_write_raster_cog_overviews_nan_and_names(tmp_path: Path) -> None:
    from rasterio.crs import CRS

    grid = Grid(CRS.from_epsg(32755), Affine(30, 0, 1000, 0, -30, 50000), 1100, 700)
    arr = np.random.default_rng(1).random((2, 700, 1100)).astype(np.float32)
    arr[:, 10:20, 30:40] = np.nan
    arr[1, 600:, :] = np.nan
    out = write_raster(
        tmp_path / "big.tif",
        arr,
        grid,
        band_names=["red", "nir"],
        tags={"STFUSION_METHOD": "x", "STFUSION_PARAMS": {"a": 1}},
    )
    info = _is_cog(out)
    assert info["block"] == (512, 512)
    assert info["overviews"], "an image larger than a block has overviews"
    assert info["descriptions"] == ("red", "nir")
    assert info["tags"]["STFUSION_PARAMS"] == '{"a": 1}'
    assert np.isnan(info["nodata"])
    with rasterio.open(out) as ds:
        back = ds.read()
    np.testing.assert_array_equal(back, arr)  # NaN where NaN, every other value exact
    assert sorted(os.listdir(tmp_path)) == ["big.tif"]  # no temporary left


# ---------------------------------------------------------------------------------- umask


def test_demo_outputs_respect_the_umask(tmp_path: Path) -> None:
    out = tmp_path / "demo-output"
    res = _cli("demo", str(out), "--method", "additive", umask=0o022)
    assert res.returncode == 0, res.stderr
    for name in ("metrics.json", "demo.png", "additive_2001-11-02.tif"):
        assert (out / name).stat().st_mode & 0o777 == 0o644, name
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_scaling_tag_lists_each_image_when_they_differ(tmp_path: Path) -> None:
    """A second pair stored as float reflectance beside an int16 x 1e-4 one: the tag used to
    show the first fine image's scaling only."""
    from stfusion.api import run_prediction

    src = FileSource(str(F17))
    with rasterio.open(F17) as ds:
        t, crs = ds.transform, ds.crs
    f08 = write_tif(tmp_path / "F_2001-10-08.tif", src.read(), transform=t, crs=crs)
    out = tmp_path / "p.tif"
    run_prediction(
        method="starfm",
        pairs=[(str(f08), str(C17)), (str(F17), str(C17))],
        target=str(C1102),
        out=str(out),
        params=["window=5"],
    )
    with rasterio.open(out) as ds:
        scaling = json.loads(ds.tags()["STFUSION_SCALING"])
    assert [s["from"] for s in scaling["fine"]] == ["default", "file metadata"]
    assert scaling["coarse"]["scale"] == pytest.approx(1e-4)  # shared: one entry


def test_code_digest_covers_plugin_packages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plugin author's trial: `stfusion series` kept outputs of an older version of the
    plugin's code, even with --overwrite, because the code digest covered stfusion only."""
    from stfusion.provenance import code_digest, plugin_packages

    (tmp_path / "digestplug").mkdir()
    module = tmp_path / "digestplug" / "__init__.py"
    module.write_text("from stfusion.methods.baselines import Additive as Plug\n")
    dist = tmp_path / "digestplug-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: digestplug\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[stfusion.methods]\nplug = digestplug:Plug\n")
    code_digest.cache_clear()
    before = code_digest()
    monkeypatch.setattr(sys, "path", [str(tmp_path), *sys.path])
    try:
        code_digest.cache_clear()
        assert ("digestplug", "0.1", tmp_path / "digestplug") in plugin_packages()
        with_plugin = code_digest()
        module.write_text(module.read_text() + "# auto means gain 2 now\n")
        code_digest.cache_clear()
        changed = code_digest()
    finally:
        code_digest.cache_clear()
    assert len({before, with_plugin, changed}) == 3
