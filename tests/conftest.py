"""Shared fixtures: tiny GeoTIFFs written to tmp_path, and the real data beside the repo.

Real data: every test finds it here, under ``SHARED_DATA`` = ``$STFUSION_DATA`` if set, else
``../shared/data`` beside the repository (the ``shared_data`` fixture, and the ``CIA``,
``BOREAS``, ``LGC``, ``KRANJ`` folders below it). A test that reads it is marked
``@pytest.mark.realdata`` (optionally with the folders it needs: ``realdata(LGC)``) or calls
``need(path)``. When the data is missing such a test FAILS if the environment variable ``CI``
is set (CI always has the data), and otherwise skips with a loud reason and a line in the
summary.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

# Two test processes share two cores: OpenMP threads (numba's threading layer, torch) that
# spin after each parallel loop take the other process's core (the two files measured
# 25-30 % slower side by side). Set before either library loads its OpenMP runtime; the
# processes the tests start inherit it. Scheduling only: results do not change.
os.environ.setdefault("OMP_WAIT_POLICY", "passive")

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS

from stfusion.testing import piecewise_scene  # noqa: F401  (tests import it from here)

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = (
    Path(os.environ["STFUSION_DATA"])
    if os.environ.get("STFUSION_DATA")
    else REPO.parent / "shared" / "data"
)
CIA = SHARED_DATA / "cia_e2starfm" / "geotiff_50m"
BOREAS = SHARED_DATA / "boreas_estarfm"
LGC = SHARED_DATA / "lgc_fsdaf"
KRANJ = SHARED_DATA / "kranj_l8_modis"

UTM55S = CRS.from_epsg(32755)


_MISSING: list[str] = []  # real-data tests skipped for missing data (reported at the end)


def need(path: Path) -> Path:
    """``path`` if it exists; else fail under CI, skip loudly elsewhere."""
    path = Path(path)
    if not path.is_absolute():
        path = SHARED_DATA / path
    if not path.exists():
        msg = (
            f"REAL DATA MISSING: {path} (put the data in ../shared/data beside the repository "
            "or point $STFUSION_DATA at it)"
        )
        if os.environ.get("CI"):
            pytest.fail(f"{msg}; CI is set and CI must have the data", pytrace=False)
        _MISSING.append(str(path))
        pytest.skip(msg)
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real data folder (``need``-checked)."""
    return need(SHARED_DATA)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    # before any fixture (a module-scoped one may read the data)
    for mark in item.iter_markers("realdata"):
        for path in mark.args or (SHARED_DATA,):
            need(path)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _MISSING:
        tr = terminalreporter
        tr.section("REAL DATA MISSING", sep="!", red=True, bold=True)
        tr.line(
            f"{len(_MISSING)} realdata test(s) SKIPPED, not run: {sorted(set(_MISSING))}. "
            "Under CI (CI set) they fail instead."
        )


def process_env() -> dict[str, str]:
    """The environment of ``stfusion`` run as a real process: this checkout's ``src`` first
    on ``PYTHONPATH``, no debug tracebacks."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO / "src") + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("STFUSION_DEBUG", None)
    return env


def stfusion_cmd(*args: str | bytes) -> list[str | bytes]:
    """``python -m stfusion.cli ARGS``."""
    return [sys.executable, "-m", "stfusion.cli", *args]


def kranj_series_args(out: Path, *extra: str) -> list[str]:
    """``stfusion series`` over the Kranj filled series with the additive method into
    ``out``, then ``extra``."""
    k = need(KRANJ)
    fine, coarse = str(k / "landsat" / "filled"), str(k / "modis" / "filled")
    inputs = ["--fine", fine, "--coarse", coarse, "--fine-scale", "0.0001"]
    return ["series", *inputs, "-m", "additive", "--out-dir", str(out), *extra]


def run_process(*args: str | bytes, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``stfusion ARGS`` as a real process (exit status, signals and files as a user sees
    them), its output captured as text."""
    return subprocess.run(
        stfusion_cmd(*args),
        env=process_env(),
        capture_output=True,
        text=True,
        errors="replace",
        timeout=timeout,
    )


def run_python(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -c CODE ARGS`` as a real process, with :func:`run_process`'s environment:
    for a command run with something patched or blocked first."""
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        env=process_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def run_cli(
    args: list[str], capsys: pytest.CaptureFixture[str] | None = None
) -> tuple[int, str, str]:
    """``stfusion ARGS`` in this process: (exit status, stdout, stderr); the streams are empty
    without ``capsys``."""
    from stfusion.cli import main

    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    if capsys is None:
        return code, "", ""
    out = capsys.readouterr()
    return code, out.out, out.err


def run_clean(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """``stfusion ARGS`` in this process: (exit status, stderr), never with a traceback."""
    code, _, err = run_cli(args, capsys)
    assert "Traceback" not in err
    return code, err


def run_cli_ok(args: list[str]) -> None:
    """``stfusion ARGS`` in this process; it must succeed."""
    code, _, _ = run_cli(args)
    assert code == 0


def write_tif(
    path: Path,
    data: np.ndarray,
    *,
    transform: Affine | None = None,
    crs: CRS | None = UTM55S,
    nodata: float | None = None,
    dtype: str | None = None,
    scales: list[float] | None = None,
    names: list[str] | None = None,
) -> Path:
    data = np.asarray(data)
    if data.ndim == 2:
        data = data[None]
    profile = {
        "driver": "GTiff",
        "width": data.shape[2],
        "height": data.shape[1],
        "count": data.shape[0],
        "dtype": dtype or str(data.dtype),
        "crs": crs,
        "transform": transform or Affine(30.0, 0, 500000.0, 0, -30.0, 6100000.0),
        "nodata": nodata,
    }
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(data.astype(profile["dtype"]))
        if scales:
            ds.scales = scales
        if names:
            for i, n in enumerate(names, start=1):
                ds.set_band_description(i, n)
    return path


def coarse_like(a: np.ndarray, r: int = 4) -> np.ndarray:
    """``a`` (band, y, x; sides a multiple of ``r``) as a coarse image on its grid: its
    ``r x r`` block means repeated over the blocks. Coarse images that change from pixel to
    pixel as much as a fine one are warned about (a fine image given as the coarse one)."""
    b, h, w = a.shape
    means = a.reshape(b, h // r, r, w // r, r).mean(axis=(2, 4))
    return np.repeat(np.repeat(means, r, axis=1), r, axis=2).astype(a.dtype)


def write_mask_like(image: Path, path: Path, value: int) -> Path:
    """A binary uint8 mask on ``image``'s grid, ``value`` everywhere (1 = invalid)."""
    with rasterio.open(image) as ds:
        profile = dict(ds.profile, count=1, dtype="uint8", nodata=None)
        with rasterio.open(path, "w", **profile) as m:
            m.write(np.full((1, ds.height, ds.width), value, np.uint8))
    return path


@pytest.fixture
def cia_paths() -> dict[str, Path]:
    need(CIA)
    return {
        "f1": CIA / "CIA_Landsat7_2001-10-17.tif",
        "c1": CIA / "CIA_MOD09GA_2001-10-17.tif",
        "c2": CIA / "CIA_MOD09GA_2001-11-02.tif",
        "f2": CIA / "CIA_Landsat7_2001-11-02.tif",
    }


@pytest.fixture
def small_tifs(tmp_path: Path) -> dict[str, Path]:
    """A 40 x 40 x 2 georeferenced pair + target, from a crop of the bundled sample."""
    from stfusion.demo import sample_dir
    from stfusion.io import FileSource

    d = sample_dir()
    out = {}
    for key, name in [
        ("f1", "CIA_Landsat7_2001-10-17.tif"),
        ("c1", "CIA_MOD09GA_2001-10-17.tif"),
        ("c2", "CIA_MOD09GA_2001-11-02.tif"),
        ("f2", "CIA_Landsat7_2001-11-02.tif"),
    ]:
        arr = FileSource(str(d / name)).read()[[2, 3], 100:140, 100:140]
        out[key] = write_tif(
            tmp_path / f"{key}.tif",
            arr,
            transform=Affine(50.0, 0, 406012.5, 0, -50.0, 6147787.5),
            names=["red", "nir"],
        )
    return out


def predict_args(s: dict[str, Path], out: Path, *extra: str) -> list[str]:
    """``stfusion predict`` with STARFM (window 7) on the pair and target of ``s``."""
    return [
        "predict",
        "--method",
        "starfm",
        "--pair",
        str(s["f1"]),
        str(s["c1"]),
        "--coarse",
        str(s["c2"]),
        "--out",
        str(out),
        "--param",
        "window=7",
        *extra,
    ]


@dataclass
class PredictCase:
    """``stfusion predict`` (:func:`predict_args`) on ``tifs`` (a copy of ``small_tifs``, which
    a test may change) into ``out`` in the test's ``dir``, run in this process."""

    tifs: dict[str, Path]
    dir: Path
    capsys: pytest.CaptureFixture[str]

    @property
    def out(self) -> Path:
        return self.dir / "o.tif"

    def run(self, *extra: str, swap: dict[str, str] | None = None) -> tuple[int, str]:
        """(exit status, stderr), never with a traceback; ``swap`` replaces words of the
        command line (``{"starfm": "fsdaf"}``)."""
        args = predict_args(self.tifs, self.out, *extra)
        for old, new in (swap or {}).items():
            args[args.index(old)] = new
        return run_clean(args, self.capsys)


@pytest.fixture
def predict_case(
    small_tifs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> PredictCase:
    return PredictCase(dict(small_tifs), tmp_path, capsys)


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """One torch thread for a module (``pytestmark = pytest.mark.usefixtures(...)``): small
    convolutions on a shared 2-core machine run several times faster so."""
    import torch  # here: torch is optional, and only the deep-learning tests use this

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture
def user_case(small_tifs: dict[str, Path], tmp_path: Path) -> Path:
    toml = tmp_path / "cases.toml"
    toml.write_text(
        "[cases.tiny]\n"
        f'pairs = [["{small_tifs["f1"].name}", "{small_tifs["c1"].name}"]]\n'
        'pair_dates = ["2001-10-17"]\n'
        f'target = "{small_tifs["c2"].name}"\n'
        f'truth = "{small_tifs["f2"].name}"\n'
        'target_date = "2001-11-02"\n'
        "ratio = 10\n"
        'bands = ["red", "nir"]\n'
    )
    return toml


def bench_args(cases: str, out: Path | str, *extra: str, methods: str = "nochange") -> list[str]:
    """``bench --cases CASES --methods METHODS --out OUT EXTRA`` (``main``'s or ``_cli``'s)."""
    return ["bench", "--cases", cases, "--methods", methods, "--out", str(out), *extra]


def sample_pair_args(days: Sequence[str] = ("2001-10-08", "2001-10-17")) -> list[str]:
    """``--pair FINE COARSE`` of the bundled CIA sample for each of ``days``."""
    from stfusion.demo import sample_dir

    d = sample_dir()
    pairs = [(d / f"CIA_Landsat7_{day}.tif", d / f"CIA_MOD09GA_{day}.tif") for day in days]
    return [arg for fine, coarse in pairs for arg in ("--pair", str(fine), str(coarse))]


def copies_named(
    pairs: Sequence[tuple[Path, Path]], folder: Path, fine: str, coarse: str
) -> list[tuple[Path, Path]]:
    """``pairs`` copied into ``folder`` as FINE0.tif, COARSE0.tif, ...: names without dates."""
    import shutil

    out = []
    for i, (f, c) in enumerate(pairs):
        named = (folder / f"{fine}{i}.tif", folder / f"{coarse}{i}.tif")
        shutil.copy(f, named[0])
        shutil.copy(c, named[1])
        out.append(named)
    return out
