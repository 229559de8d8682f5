"""Memory that obeys --mem-limit: every scene-wide pass reads in bounded windows (issue 11.5).

Each read that reaches GDAL is recorded (rasterio's DatasetReader.read is wrapped), so a
full-row strip, a whole-image read or a decimated whole-image read of a scene wider than the
bound is caught, whichever code path makes it. The memory benchmark itself (peak RSS of real
`stfusion predict` runs) is benchmarks/bench_outofcore.py.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
import rasterio.io
from rasterio._env import get_gdal_config
from rasterio.transform import Affine
from rasterio.windows import Window

from conftest import CIA, need
from stfusion import io
from stfusion.io import FileSource, Scaling, gdal_sample_index, scan_limit, scan_windows
from stfusion.methods import get_method
from stfusion.scene import open_scene
from stfusion.tiling import gdal_cache_mb, memory_limits, scan_values_for

BANDS = 3
#: The bound the tests set: 1500 pixels per read (x 3 bands), far below one full row strip
#: of the 90 x 420 test scene (the old code read 512 full rows, or the whole image decimated).
MAX_PIXELS = 1500


def _cia(name: str) -> np.ndarray:
    with rasterio.open(need(CIA / name)) as ds:
        return ds.read(indexes=[1, 2, 3])


def _write(
    path: Path,
    arr: np.ndarray,
    *,
    tiled: bool,
    res: float = 50.0,
    dtype: str = "float32",
    nodata: float | None = None,
) -> str:
    nb, h, w = arr.shape
    profile = {
        "driver": "GTiff",
        "width": w,
        "height": h,
        "count": nb,
        "dtype": dtype,
        "crs": "EPSG:32755",
        "transform": Affine(res, 0, 500000, 0, -res, 7000000),
        "nodata": nodata,
        "compress": "deflate",
    }
    if tiled:
        profile.update(tiled=True, blockxsize=32, blockysize=32)
    else:
        profile.update(blockysize=4)
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(arr.astype(dtype))
    return str(path)


def _scene(tmp_path: Path, *, tiled: bool, h: int = 90, w: int = 420) -> dict[str, str]:
    """A 90 x 420 x 3 scene from the real CIA images (cropped and tiled side by side)."""
    out = {}
    for role, name in [
        ("fine", "CIA_Landsat7_2001-10-17.tif"),
        ("coarse", "CIA_MOD09GA_2001-10-17.tif"),
        ("target", "CIA_MOD09GA_2001-11-02.tif"),
        ("fine2", "CIA_Landsat7_2001-11-02.tif"),
        ("coarse2", "CIA_MOD09GA_2001-11-02.tif"),
    ]:
        a = _cia(name)
        big = np.pad(a, ((0, 0), (0, 0), (0, w)), mode="symmetric")[:, :h, :w]
        out[role] = _write(tmp_path / f"{role}.tif", big, tiled=tiled)
    return out


class _Reads:
    """Records every GDAL read: file, pixels covered, GDAL cache setting, scan bound."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.log: list[tuple[str, int, str | None, int]] = []
        orig = rasterio.io.DatasetReader.read
        reads = self

        def read(ds, indexes=None, out=None, window=None, *args, **kwargs):  # type: ignore[no-untyped-def]
            if window is None:
                px = ds.width * ds.height
            else:
                win = window if isinstance(window, Window) else Window.from_slices(*window)
                px = int(win.width) * int(win.height)
            reads.log.append(
                (Path(ds.name).name, px, get_gdal_config("GDAL_CACHEMAX"), io.scan_values())
            )
            return orig(ds, indexes, out, window, *args, **kwargs)

        monkeypatch.setattr(rasterio.io.DatasetReader, "read", read)

    def largest(self) -> int:
        return max(px for _, px, _, _ in self.log)


def test_scan_windows_bounded_and_aligned() -> None:
    grid = io.Grid(None, Affine.identity(), width=1000, height=37)
    for full_rows in (False, True):
        for align in (1, 7, 16):
            wins = scan_windows(grid, 2000, align, full_rows)
            covered = np.zeros(grid.shape, int)
            for w in wins:
                r, c, hh, ww = int(w.row_off), int(w.col_off), int(w.height), int(w.width)
                covered[r : r + hh, c : c + ww] += 1
                assert r % align == 0 and c % align == 0
                assert hh * ww <= max(2000, align * align)
            assert (covered == 1).all()
    # striped files: windows as wide as the image when a row fits
    assert {int(w.width) for w in scan_windows(grid, 2000, 1, True)} == {1000}


@pytest.mark.realdata(CIA)
@pytest.mark.parametrize("tiled", [False, True])
@pytest.mark.parametrize("method", ["starfm", "fsdaf", "fsdaf2", "fitfc", "estarfm"])
def test_scene_wide_passes_read_bounded_windows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiled: bool, method: str
) -> None:
    """Validation, statistics, sampling, class maps and coarse aggregation (open_scene, fit,
    prepare) never read more than the bound from any file. The old code read 512 full rows
    (band_stats, FSDAF) or the whole image decimated (sample)."""
    p = _scene(tmp_path, tiled=tiled)
    pairs = [(p["fine"], p["coarse"])]
    if method == "estarfm":
        pairs.append((p["fine2"], p["coarse2"]))
    reads = _Reads(monkeypatch)
    with warnings.catch_warnings(), scan_limit(BANDS * MAX_PIXELS):
        warnings.simplefilter("ignore")
        scene = open_scene(pairs, p["target"], ratio=10)
        est = get_method(method)()
        est.fit(scene).prepare(scene.target)
    assert reads.log, "nothing was read"
    assert reads.largest() <= MAX_PIXELS, sorted(set(reads.log), key=lambda x: -x[1])[:3]


@pytest.mark.realdata(CIA)
def test_coarse_on_its_own_grid_read_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A coarse image on its native (10x coarser) grid is read in bounded windows too."""
    p = _scene(tmp_path, tiled=True)
    native = {}
    for role in ("coarse", "target"):
        with rasterio.open(p[role]) as ds:
            a = ds.read()
        nb, h, w = a.shape
        m = a.reshape(nb, h // 10, 10, w // 10, 10).mean(axis=(2, 4))
        native[role] = _write(tmp_path / f"{role}_native.tif", m, tiled=False, res=500.0)
    reads = _Reads(monkeypatch)
    with warnings.catch_warnings(), scan_limit(BANDS * 30):
        warnings.simplefilter("ignore")
        scene = open_scene([(p["fine"], native["coarse"])], native["target"])
        est = get_method("fsdaf")().fit(scene).prepare(scene.target)
    assert est.r_ == 10
    # FSDAF on native coarse pixels (coarse.NativeGrid) reads the native image whole: it is
    # R^2 = 100 times smaller than the fine scene (docs/parallel.md says so).
    assert max(px for f, px, _, _ in reads.log if "native" in f) <= (h // 10) * (w // 10)
    assert max(px for f, px, _, _ in reads.log if "native" not in f) <= 100  # r x r minimum


@pytest.mark.realdata(CIA)
def test_whole_command_under_gdal_cache_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`stfusion predict --mem-limit` sets GDAL's block cache and the scan bound before the
    first read (validation) and keeps them to the last (writing); before, only the prediction
    loop ran under the cache limit and validation/statistics used GDAL's default (5 % of RAM)."""
    from stfusion.api import run_prediction

    p = _scene(tmp_path, tiled=True)
    reads = _Reads(monkeypatch)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_prediction(
            method="starfm",
            pairs=[(p["fine"], p["coarse"])],
            target=p["target"],
            out=str(tmp_path / "pred.tif"),
            params=["window=5"],
            mem_limit_mb=100,
        )
    want = gdal_cache_mb(100) * 2**20
    assert reads.log
    assert {cache for _, _, cache, _ in reads.log} == {want}
    assert {scan for _, _, _, scan in reads.log} == {scan_values_for(100)}


@pytest.mark.realdata(CIA)
@pytest.mark.parametrize("tiled", [False, True])
@pytest.mark.parametrize("shape", [(90, 420), (301, 257), (250, 250)])
def test_sample_is_the_decimated_read(tmp_path: Path, tiled: bool, shape: tuple[int, int]) -> None:
    """FileSource.sample, now read window by window, gives exactly the pixels (and values) of
    the old decimated whole-image read, so everything fitted on it (k-means centres, STARFM's
    uncertainty, validation) is unchanged. int16 x 1e-4 with nodata, as Landsat files."""
    rng = np.random.default_rng(1)
    arr = rng.integers(-100, 10000, size=(2, *shape)).astype(np.int16)
    arr[:, 5:9, 7:30] = -9999
    path = _write(tmp_path / "x.tif", arr, tiled=tiled, dtype="int16", nodata=-9999)
    src = FileSource(path, Scaling(1e-4))
    for max_pixels in (1 << 10, 4321, 1 << 16):
        step = max(1, int(np.ceil(np.sqrt(shape[0] * shape[1] / max_pixels))))
        with rasterio.open(path) as ds:
            if step == 1:
                old = ds.read(masked=True)
            else:
                old = ds.read(
                    out_shape=(2, -(-shape[0] // step), -(-shape[1] // step)), masked=True
                )
        ref = old.astype(np.float32).filled(np.nan) * np.float32(1e-4)
        ref[np.abs(ref) > 1e30] = np.nan
        with scan_limit(2 * 200):
            got = src.sample(max_pixels)
        np.testing.assert_array_equal(got, ref)
    assert gdal_sample_index(10, 3).tolist() == [1, 3, 6, 8]  # floor((i + .5) * 10 / 4)


@pytest.mark.realdata(CIA)
def test_band_stats_streamed_equal_whole_scene() -> None:
    """band_stats over bounded windows equals the whole-scene statistics (float64 to 1e-12
    relative; the float32 threshold STARFM uses is identical) on the CIA image."""
    path = CIA / "CIA_Landsat7_2001-10-17.tif"
    src = FileSource(str(path))
    whole = src.read().astype(np.float64)
    with scan_limit(6 * 1000):
        st = src.band_stats()
    np.testing.assert_array_equal(st["count"], np.isfinite(whole).sum(axis=(1, 2)))
    np.testing.assert_allclose(st["mean"], np.nanmean(whole, axis=(1, 2)), rtol=1e-12)
    np.testing.assert_allclose(st["std"], np.nanstd(whole, axis=(1, 2)), rtol=1e-12)
    np.testing.assert_array_equal(
        st["std"].astype(np.float32), np.nanstd(whole, axis=(1, 2)).astype(np.float32)
    )


def test_memory_limits_context() -> None:
    with memory_limits(300):
        assert get_gdal_config("GDAL_CACHEMAX") == gdal_cache_mb(300) * 2**20
        assert io.scan_values() == scan_values_for(300)
    assert io.scan_values() == io.DEFAULT_SCAN_VALUES
    # The scan bound scales with the limit.
    assert scan_values_for(100) < scan_values_for(1000)


@pytest.mark.realdata(CIA)
def test_fsdaf_keeps_no_spline_coefficients_for_the_scene(tmp_path: Path) -> None:
    """FSDAF's local splines are solved per window: the state it keeps between windows is a
    few float64 values per coarse pixel and band, not (2 radius + 1)^2 float32 weights each
    (the old code kept 81 x 4 + 24 bytes per coarse pixel and band: 0.8 GB at 6000 x 6000)."""
    p = _scene(tmp_path, tiled=True, h=200, w=400)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = get_method("fsdaf")(window=11).fit([(p["fine"], p["coarse"])], ratio=10)
        est.prepare(p["target"])
        blocks = est.block_pixels_.size
        assert est.state_nbytes() < blocks * BANDS * 100  # old: > blocks * BANDS * 348
        whole = np.asarray(est.predict().values)
        tiled = np.asarray(est.predict(window_size=30).values)
    np.testing.assert_array_equal(tiled, whole)


def test_native_coarse_read_does_not_copy_the_image(tmp_path: Path) -> None:
    """A window of a coarse image on its own grid is warped from the in-memory image without
    a copy of all of it (rasterio copied the whole array for every window: +96 MB per read of
    a 2000 x 2000 x 6 image), with the same values."""
    import threading
    import time

    import psutil

    from stfusion.io import AlignedSource

    rng = np.random.default_rng(0)
    n = 1500  # 6 x 1500 x 1500 float32 = 54 MB
    coarse = _write(
        tmp_path / "c.tif", rng.random((6, n, n), dtype=np.float32), tiled=True, res=500.0
    )
    fine = _write(tmp_path / "f.tif", np.zeros((1, 64, 64), np.float32), tiled=False)
    src = AlignedSource(FileSource(coarse), FileSource(fine).grid, "nearest")
    win = Window(0, 0, 64, 64)
    first = src.read(win, 8)  # loads the native image
    proc = psutil.Process()
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(0.001)

    base = proc.memory_info().rss
    t = threading.Thread(target=sample)
    t.start()
    try:
        for _ in range(5):
            np.testing.assert_array_equal(src.read(win, 8), first)
    finally:
        done.set()
        t.join()
    assert peak[0] - base < 25 * 2**20, (peak[0] - base) / 2**20
    whole = src._native_data()
    src._warp_source = lambda: whole  # type: ignore[method-assign]  # the copying path
    np.testing.assert_array_equal(src.read(win, 8), first)


@pytest.mark.realdata(CIA)
@pytest.mark.parametrize("method", ["fsdaf", "fsdaf2"])
@pytest.mark.parametrize("grid", ["fine", "native"])
def test_fsdaf_state_spilled_past_the_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, method: str, grid: str
) -> None:
    """FSDAF's per-coarse-pixel tables (class counts, C1 and C2 values, residuals: 0.8 GB at
    20000 x 20000 x 6, R = 10) go to an unlinked temporary file when they exceed the state
    budget (a share of --mem-limit), and are computed and read back a block of coarse rows at
    a time: the same predictions, a few bytes per coarse pixel kept in memory, no file left.
    The old code kept every table in memory whatever the limit (no ``state_limit``)."""
    import tempfile

    from stfusion.io.spill import state_limit
    from stfusion.methods import fsdaf_tables

    p = _scene(tmp_path, tiled=True, h=200, w=400)
    coarse, target = p["coarse"], p["target"]
    kw: dict = {"ratio": 10}
    if grid == "native":  # MODIS-like: 10 x 10 block means on a 500 m grid
        for role in ("coarse", "target"):
            with rasterio.open(p[role]) as ds:
                a = ds.read().reshape(BANDS, 20, 10, 40, 10).mean(axis=(2, 4))
            p[role] = _write(tmp_path / f"{role}_native.tif", a, tiled=False, res=500.0)
        coarse, target, kw = p["coarse"], p["target"], {}
    spill_dir = tmp_path / "spill"
    spill_dir.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spill_dir))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mem = get_method(method)(window=11).fit([(p["fine"], coarse)], **kw)
        mem.prepare(target)
        whole = np.asarray(mem.predict().values)
        # Blocks of 2 coarse rows (80 coarse pixels): many blocks on this 20 x 40 table.
        monkeypatch.setattr(fsdaf_tables, "MIN_BLOCK_PIXELS", 64)
        with state_limit(0), scan_limit(3 * 400):
            est = get_method(method)(window=11).fit([(p["fine"], coarse)], **kw)
            est.prepare(target)
            for name in ("counts_", "coarse1_", "residual_"):
                assert getattr(est, name).spilled, name
            assert est.spline_.values is not None and est.spline_.values.spilled
            np.testing.assert_array_equal(np.asarray(est.counts_), np.asarray(mem.counts_))
            blocks = est.block_pixels_.size
            # In memory: counts, C1, C2, residuals (> 24 x bands bytes per coarse pixel).
            assert mem.state_nbytes() > blocks * 24 * BANDS
            assert est.state_nbytes() < blocks * 16 + 2**16
            # what a Dask run ships whole to every process is found, to be warned of
            from stfusion.parallel import spilled_bytes

            assert spilled_bytes(est) > blocks * 24 * BANDS and spilled_bytes(mem) == 0
            spilled = np.asarray(est.predict().values)
            tiled = np.asarray(est.predict(window_size=30, workers=2).values)
        np.testing.assert_array_equal(spilled, whole)
        np.testing.assert_array_equal(tiled, whole)
        del est
    assert not list(spill_dir.iterdir())  # unlinked when opened: nothing to leave behind


@pytest.mark.realdata(CIA)
def test_native_images_released_before_the_cog_copy(tmp_path: Path) -> None:
    """The native coarse images the windows warp from (2 x 96 MB at 20000 x 20000 x 6) are
    dropped once the windows are done, before the output's COG copy (which adds 120-150 MB),
    and read again by a later prediction, which gives the same output."""
    from stfusion.io import AlignedSource

    p = _scene(tmp_path, tiled=True, h=200, w=400)
    for role in ("coarse", "target"):
        with rasterio.open(p[role]) as ds:
            a = ds.read().reshape(BANDS, 20, 10, 40, 10).mean(axis=(2, 4))
        p[role] = _write(tmp_path / f"{role}_native.tif", a, tiled=False, res=500.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = get_method("starfm")(window=5).fit([(p["fine"], p["coarse"])])
        est.predict(p["target"], out=tmp_path / "a.tif")
        native = [s for s in [*est.scene_.sources(), est.target_] if isinstance(s, AlignedSource)]
        assert len(native) == 2 and all(s._data is None for s in native)
        est.predict(p["target"], out=tmp_path / "b.tif")
    with rasterio.open(tmp_path / "a.tif") as a, rasterio.open(tmp_path / "b.tif") as b:
        np.testing.assert_array_equal(a.read(), b.read())


def test_memory_limits_tell_methods_that_run_others_the_limit() -> None:
    """The ensemble plans its members with the run's --mem-limit (current_mem_limit_mb)."""
    from stfusion.tiling import current_mem_limit_mb, memory_limits

    assert current_mem_limit_mb() is None
    with memory_limits(300):
        assert current_mem_limit_mb() == 300
        with memory_limits(None):
            assert current_mem_limit_mb() is None
        assert current_mem_limit_mb() == 300
    assert current_mem_limit_mb() is None


@pytest.mark.realdata(CIA)
@pytest.mark.parametrize(
    ("name", "pairs"), [("additive", 1), ("additive", 2), ("nochange", 2), ("starfm", 1)]
)
def test_a_window_needs_no_more_than_its_method_plans_for(
    tmp_path: Path, name: str, pairs: int
) -> None:
    """Windows are sized from ``bytes_per_pixel``; the baselines took 204-408 B per pixel
    where they planned for 160-256, so `--mem-limit 1000` peaked at 1411 MB (a trial on a
    12000 x 12000 x 6 scene). numpy's allocations of one window, traced, stay within it."""
    import tracemalloc

    p = _scene(tmp_path, tiled=True)
    fit = [(p["fine"], p["coarse"]), (p["fine2"], p["coarse2"])][:pairs]
    kw = {"window": 15} if name == "starfm" else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = get_method(name)(**kw).fit(fit, ratio=10).prepare(FileSource(p["target"]))
    window = Window(0, 0, 420, 90)
    est.predict_window(window)  # caches and compiled kernels first
    tracemalloc.start()
    try:
        est.predict_window(window)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    padded = (420 + 2 * est.halo()) * (90 + 2 * est.halo())
    assert peak <= est.bytes_per_pixel(BANDS, pairs) * padded, (peak / padded, name)


@pytest.mark.realdata(CIA)
def test_a_coarse_image_on_its_own_grid_is_sampled_warping_each_block_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The input checks sample every image; a coarse image on its own grid was sampled row
    by row, each row warping the whole blocks it touched (66x the scene at 2000 x 2000: 5
    passes took 70 % of a 12000 x 12000 run's set-up, a trial). Now by rows of warp blocks,
    each block once at most, and the same pixels as the row-by-row read."""
    import stfusion.io.sources as sources

    p = _scene(tmp_path, tiled=True)
    with rasterio.open(p["coarse"]) as ds:
        a = ds.read()
    nb, h, w = a.shape
    m = a.reshape(nb, h // 10, 10, w // 10, 10).mean(axis=(2, 4))
    native = _write(tmp_path / "native.tif", m, tiled=False, res=500.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        coarse = open_scene([(p["fine"], native)], native).pairs[0][1]
    assert isinstance(coarse, sources.AlignedSource)
    blocks: list[tuple[int, int]] = []
    real = sources._read_by_blocks

    def counting(vrt, window, out=None):  # type: ignore[no-untyped-def]
        bh, bw = vrt.block_shapes[0]
        r0, c0 = int(window.row_off), int(window.col_off)
        r1, c1 = r0 + int(window.height) - 1, c0 + int(window.width) - 1
        blocks.extend(
            (r, c) for r in range(r0 // bh, r1 // bh + 1) for c in range(c0 // bw, c1 // bw + 1)
        )
        return real(vrt, window, out)

    def row_by_row(max_pixels: int) -> np.ndarray:
        """The pixels as the sample picks them, each sampled row read on its own."""
        step = int(np.ceil(np.sqrt(h * w / max_pixels)))
        rows, cols = gdal_sample_index(h, step), gdal_sample_index(w, step)
        return np.stack([coarse.read(Window(0, int(r), w, 1))[:, 0, cols] for r in rows], 1)

    monkeypatch.setattr(sources, "_read_by_blocks", counting)
    for max_pixels in (1000, 4321):
        blocks.clear()
        got = coarse.sample(max_pixels)
        assert len(blocks) == len(set(blocks)), blocks
        np.testing.assert_array_equal(got, row_by_row(max_pixels))
    with scan_limit(BANDS * 40):  # pieces narrower than a block row: one block at a time
        np.testing.assert_array_equal(coarse.sample(4321), row_by_row(4321))


@pytest.mark.realdata(CIA)
def test_an_ensemble_member_holds_no_strip_of_whole_rows(tmp_path: Path) -> None:
    """Each member's prediction was gathered a strip of whole rows at a time before it was
    stored: on a wide scene the strip alone passed --mem-limit (a 3000 x 3000 trial, 593 MB
    at 300; more the wider). Traced on a 16000 px wide scene at a 20 MB limit: 73 MB before,
    16 MB now (the spill file's fill block, 8 MB, and its bytes)."""
    import tracemalloc

    from stfusion.tiling import memory_limits

    p = _scene(tmp_path, tiled=True, h=200, w=16000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = get_method("ensemble")(members="additive,nochange")
        est.fit([(p["fine"], p["coarse"])], ratio=10)
    target = FileSource(p["target"])
    with memory_limits(20):
        est._member_predict("additive", est.scene_, target, True)  # compiled, cached
        tracemalloc.start()
        try:
            pred = est._member_predict("additive", est.scene_, target, True)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert peak <= 20 * 2**20, peak / 2**20
    whole = get_method("additive")().fit([(p["fine"], p["coarse"])], ratio=10).predict(target)
    np.testing.assert_array_equal(np.moveaxis(pred.array(), -1, 0), whole)
