"""Out-of-core and parallel scaling: STARFM on a scene far larger than the memory limit.

    python benchmarks/bench_outofcore.py [--size 10000] [--window 15] [--mem-limit 1000]

Builds (once, cached in --workdir) a SIZE x SIZE x 6 scene on disk from the real CIA subset by
mirroring and perturbing: every 250 x 250 tile is a mirrored copy of the real images, scaled
by a small tile-dependent factor so tiles differ; int16 x 1e-4, tiled, deflate. Then runs the
real command line, `stfusion predict ... --mem-limit MB`, with 1 worker and with 2 workers
(one kernel thread each), and reports wall seconds, the 2-vs-1 speed-up and the peak resident
memory of the process and its children (psutil, sampled every 0.05 s). Targets (issue 6):
peak RSS under 1.5 GB with --mem-limit 1000, 2 workers at least 1.8x faster than 1.

The window is a parameter: the memory and scaling behaviour do not depend on it, and a
window-51 run of a 10000 x 10000 x 6 scene takes about an hour on 2 cores.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import psutil
import rasterio
from rasterio.transform import Affine
from rasterio.windows import Window

ROOT = Path(__file__).resolve().parents[1]
CIA = ROOT.parent / "shared" / "data" / "cia_e2starfm" / "geotiff_50m"
FILES = {
    "fine": "CIA_Landsat7_2001-10-17.tif",
    "coarse": "CIA_MOD09GA_2001-10-17.tif",
    "target": "CIA_MOD09GA_2001-11-02.tif",
}


def _mirror_index(n: int, src: int) -> np.ndarray:
    i = np.arange(n) % (2 * src)
    return np.where(i < src, i, 2 * src - 1 - i)


def _mirrored_blocks(src: np.ndarray, size: int, block: int) -> Iterator[tuple[int, np.ndarray]]:
    """``(first row, values)`` of ``src`` mirrored to ``size x size``, ``block`` rows at a
    time, each 250 x 250 copy scaled by 0.98..1.02 so the mirrored copies are not identical."""
    sh, sw = src.shape[1:]
    rows, cols = _mirror_index(size, sh), _mirror_index(size, sw)
    tile_r, tile_c = np.arange(size) // sh, np.arange(size) // sw
    for r0 in range(0, size, block):
        r = slice(r0, min(size, r0 + block))
        factor = 1 + 0.01 * (((tile_r[r][:, None] * 7 + tile_c[None, :] * 3) % 5) - 2)
        yield r0, src[:, rows[r]][:, :, cols] * factor[None]


def make_scene(workdir: Path, size: int, block: int = 1000) -> dict[str, Path]:
    """Write the three inputs, block by block (never the whole scene in memory)."""
    workdir.mkdir(parents=True, exist_ok=True)
    out = {}
    for role, name in FILES.items():
        path = workdir / f"{role}_{size}.tif"
        out[role] = path
        if path.exists():
            continue
        with rasterio.open(CIA / name) as ds:
            src = ds.read()
            crs, t = ds.crs, ds.transform
            names = ds.descriptions
        nb = src.shape[0]
        profile = {
            "driver": "GTiff",
            "width": size,
            "height": size,
            "count": nb,
            "dtype": "int16",
            "crs": crs,
            "transform": Affine(t.a, 0, t.c, 0, t.e, t.f),
            "nodata": -9999,
            "tiled": True,
            "blockxsize": 512,
            "blockysize": 512,
            "compress": "deflate",
            "BIGTIFF": "YES",
        }
        tmp = path.with_suffix(".partial.tif")
        with rasterio.open(tmp, "w", **profile) as dst:
            dst.scales = [1e-4] * nb
            for i, n in enumerate(names, start=1):
                dst.set_band_description(i, n)
            for r0, vals in _mirrored_blocks(src, size, block):
                dn = np.round(vals * 10000).astype(np.int16)
                dst.write(dn, window=Window(0, r0, size, dn.shape[1]))
        os.replace(tmp, path)
    return out


def run_cli(args: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB, with children) of one `stfusion` command; the one
    poller is :func:`run_cli_tree`."""
    r = run_cli_tree(args, timeout=math.inf)
    if r["status"] != "ok":
        raise SystemExit(f"command failed ({r['status']}): {' '.join(args)}")
    return r["seconds"], r["peak_rss_mb"]


# --------------------------------------------------------------------- memory matrix (11.5)

MATRIX_FILES = {
    "fine": "CIA_Landsat7_2001-10-17.tif",
    "coarse": "CIA_MOD09GA_2001-10-17.tif",
    "target": "CIA_MOD09GA_2001-11-02.tif",
    # the second pair of the methods that need two (ESTARFM, ROBOT, VIPSTF)
    "fine2": "CIA_Landsat7_2001-10-08.tif",
    "coarse2": "CIA_MOD09GA_2001-10-08.tif",
}
RATIO = 10  # CIA: 50 m Landsat grid, 500 m MODIS


def make_matrix_scene(
    workdir: Path, size: int, dtype: str, layout: str, coarse_grid: str, block: int = 0
) -> dict[str, Path]:
    """SIZE x SIZE x 6 inputs from the real CIA images, mirrored and perturbed per 250 px tile.

    Every role of :data:`MATRIX_FILES` (the second pair's too).
    ``dtype``: float32 (reflectance 0-1) or int16 (x 10000, scale 1e-4 and nodata -9999 in the
    file). ``layout``: ``tiled`` (256 px tiles) or ``striped`` (GDAL's default strips).
    ``coarse_grid``: ``fine`` (MODIS on the 50 m grid, as the CIA files) or ``native`` (its
    10 x 10 block means on a 500 m grid, same CRS: stfusion reprojects it per window).
    Deflate everywhere. Written block by block, never the whole scene in memory.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    block = block or (1000 if size <= 6000 else 250)  # rows per write, multiple of RATIO
    out: dict[str, Path] = {}
    for role, name in MATRIX_FILES.items():
        native = not role.startswith("fine") and coarse_grid == "native"
        tag = f"{role}_{size}_{dtype}_{layout}" + ("_native" if native else "")
        path = workdir / f"{tag}.tif"
        out[role] = path
        if path.exists():
            continue
        with rasterio.open(CIA / name) as ds:
            src = ds.read()
            crs, t = ds.crs, ds.transform
            names = ds.descriptions
        nb = src.shape[0]
        n = size // RATIO if native else size
        res = t.a * (RATIO if native else 1)
        profile: dict = {
            "driver": "GTiff",
            "width": n,
            "height": n,
            "count": nb,
            "dtype": dtype,
            "crs": crs,
            "transform": Affine(res, 0, t.c, 0, -res, t.f),
            "compress": "deflate",
            "BIGTIFF": "IF_SAFER",
        }
        if dtype == "int16":
            profile["nodata"] = -9999
        if layout == "tiled":
            profile.update(tiled=True, blockxsize=256, blockysize=256)
        tmp = path.with_suffix(".partial.tif")
        with rasterio.open(tmp, "w", **profile) as dst:
            if dtype == "int16":
                dst.scales = [1e-4] * nb
            for i, nm in enumerate(names, start=1):
                dst.set_band_description(i, nm)
            for r0, vals in _mirrored_blocks(src, size, block):
                if native:
                    h = vals.shape[1]
                    vals = vals.reshape(nb, h // RATIO, RATIO, size // RATIO, RATIO).mean(
                        axis=(2, 4)
                    )
                if dtype == "int16":
                    vals = np.round(vals * 10000).astype(np.int16)
                else:
                    vals = vals.astype(np.float32)
                rr = r0 // RATIO if native else r0
                dst.write(vals, window=Window(0, rr, n, vals.shape[1]))
        os.replace(tmp, path)
    return out


#: `python -c` program: the stfusion command line, appending "seconds done total" to the file
#: argv[1] after every window (so a run stopped by the timeout says how far it got).
_LOGGED_CLI = """
import sys, time
from stfusion.cli import progress
log, t0, windows = sys.argv[1], time.time(), progress.Progress.windows
def logged(self, done, total):
    with open(log, "a") as f:
        f.write(f"{time.time() - t0:.1f} {done} {total}\\n")
    return windows(self, done, total)
progress.Progress.windows = logged
from stfusion.cli.main import main
main(sys.argv[2:])
"""


def window_progress(log: Path) -> str:
    """``window k of n`` from a :data:`_LOGGED_CLI` log (none: still in fit/prepare)."""
    lines = log.read_text().split() if log.exists() else []
    if not lines:
        return "no window done (in fit or prepare)"
    t, done, total = lines[-3:]
    return f"window {done} of {total} done at {float(t):.0f} s"


def run_cli_tree(args: list[str], timeout: float, progress_log: Path | None = None) -> dict:
    """Run one `stfusion` command; wall seconds and peak RSS (MB) of it and its children
    (psutil, polled every 0.05 s). ``progress_log``: record the windows done there."""
    t0 = time.perf_counter()
    errf = tempfile.TemporaryFile()
    cmd = [sys.executable, "-m", "stfusion.cli", *args]
    if progress_log is not None:
        progress_log.unlink(missing_ok=True)
        cmd = [sys.executable, "-c", _LOGGED_CLI, str(progress_log), *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=errf)
    ps = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        try:
            rss = ps.memory_info().rss
            for c in ps.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    rss += c.memory_info().rss
            peak = max(peak, rss)
        except psutil.NoSuchProcess:
            break
        if time.perf_counter() - t0 > timeout:
            proc.kill()
            proc.wait()
            return {
                "seconds": round(time.perf_counter() - t0, 1),
                "peak_rss_mb": round(peak / 2**20),
                "status": f"killed after {timeout:.0f} s",
            }
        time.sleep(0.05)
    errf.seek(0)
    err = errf.read().decode(errors="replace")
    status = "ok" if proc.returncode == 0 else f"rc {proc.returncode}: {err[-300:]}"
    return {
        "seconds": round(time.perf_counter() - t0, 1),
        "peak_rss_mb": round(peak / 2**20),
        "status": status,
    }


METHOD_PARAMS = {
    "starfm": ["window=15"],
    "fsdaf": ["window=15"],
    "student": [],
    "ensemble": ["starfm.window=15", "fsdaf.window=15"],
    # the ensemble on two pairs (its default members there: STARFM, ESTARFM, ROBOT)
    "ensemble2": ["starfm.window=15", "estarfm.window=15"],
    "fitfc": ["window=15"],
    "fsdaf2": ["window=15"],
    "estarfm": ["window=15"],
    "robot": [],
    "vipstf": ["base.window=15"],  # over FSDAF, its default base
}
#: Methods run on two pairs (10-08 and 10-17, predicting 11-02); the others on 10-17 alone.
TWO_PAIRS = {"estarfm", "robot", "vipstf", "ensemble2"}
#: Matrix names that are another method's run on two pairs.
CLI_METHOD = {"ensemble2": "ensemble"}


def matrix(a: argparse.Namespace) -> int:
    """Peak RSS of `stfusion predict --mem-limit` over scene size, dtype, layout, coarse grid
    and method; appends to --out (json) and rewrites the markdown table beside it."""
    results = json.loads(a.out.read_text()) if a.out.exists() else []

    def key_of(r: dict) -> tuple:
        return (
            r["size"],
            r["dtype"],
            r["layout"],
            r["coarse_grid"],
            r["method"],
            r["mem_limit_mb"],
            r["window"],
        )

    done = {key_of(r) for r in results}
    for spec in a.runs:
        size, dtype, layout, grid, method = spec.split(":")
        size = int(size)
        params = list(METHOD_PARAMS[method])
        window = next((p.split("=")[1] for p in params if p.startswith("window=")), "")
        if a.window and window:
            params = [f"window={a.window}"]
            window = str(a.window)
        key = (size, dtype, layout, grid, method, a.mem_limit, window)
        if key in done and not a.rerun:
            continue
        paths = make_matrix_scene(a.workdir, size, dtype, layout, grid)
        out = a.workdir / f"pred_{method}_{size}_{dtype}_{layout}_{grid}.tif"
        second = ["--pair", str(paths["fine2"]), str(paths["coarse2"])]
        args = [
            "predict",
            "--method",
            CLI_METHOD.get(method, method),
            *(second if method in TWO_PAIRS else []),
            "--pair",
            str(paths["fine"]),
            str(paths["coarse"]),
            "--coarse",
            str(paths["target"]),
            "--out",
            str(out),
            "--overwrite",
            "-q",
            "--mem-limit",
            f"{a.mem_limit:g}",
            "--workers",
            "1",
        ]
        for p in params:
            args += ["--param", p]
        if grid == "fine":
            args += ["--param", f"ratio={RATIO}"] if method != "starfm" else []
        log = a.workdir / f"progress_{method}_{size}_{dtype}_{layout}_{grid}.log"
        r = run_cli_tree(args, a.timeout, log)
        rec = {
            "size": size,
            "bands": 6,
            "dtype": dtype,
            "layout": layout,
            "coarse_grid": grid,
            "method": method,
            "window": window,
            "mem_limit_mb": a.mem_limit,
            **r,
            "target_mb": a.mem_limit + 250,
            "holds": r["status"] == "ok" and r["peak_rss_mb"] <= a.mem_limit + 250,
            "date": time.strftime("%Y-%m-%d"),
            "cores": os.cpu_count(),
            "progress": window_progress(log),
        }
        note = a.note or ""
        if r["status"].startswith("killed"):
            note += (
                f"{'; ' if note else ''}stopped by the {a.timeout:.0f} s timeout at "
                f"{r['peak_rss_mb']} MB peak, {rec['progress']}"
            )
        if note:
            rec["note"] = note
        print(json.dumps(rec), flush=True)
        results = [x for x in results if key_of(x) != key]  # --rerun: the new row replaces
        results.append(rec)
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(results, indent=1) + "\n")
        out.unlink(missing_ok=True)
        write_table(results, a.out.with_suffix(".md"))
    return 0


def write_table(results: list[dict], path: Path) -> None:
    lines = [
        "| size | dtype | layout | coarse grid | method | window | --mem-limit MB | peak RSS MB "
        "| limit + 250 | holds | seconds | note |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in sorted(
        results, key=lambda r: (r["size"], r["method"], r["dtype"], r["layout"], r["coarse_grid"])
    ):
        status = "yes" if r["holds"] else ("NO" if r["status"] == "ok" else f"NO ({r['status']})")
        lines.append(
            f"| {r['size']} x {r['size']} x 6 | {r['dtype']} | {r['layout']} | {r['coarse_grid']} "
            f"| {r['method']} | {r['window'] or '-'} | {r['mem_limit_mb']:g} | {r['peak_rss_mb']} "
            f"| {r['target_mb']:g} | {status} | {r['seconds']} | {r.get('note', '')} |"
        )
    path.write_text("\n".join(lines) + "\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=10000)
    ap.add_argument(
        "--window",
        type=int,
        default=None,
        help="moving window (default 15; in --matrix mode the per-method default)",
    )
    ap.add_argument("--mem-limit", type=float, default=1000)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/stfusion-outofcore"))
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "outofcore.json")
    ap.add_argument(
        "--matrix",
        nargs="+",
        dest="runs",
        metavar="SIZE:DTYPE:LAYOUT:GRID:METHOD",
        help="memory matrix runs (issue 11.5), e.g. 2000:int16:tiled:native:starfm; "
        "results appended to --out (default benchmarks/results/memory.json)",
    )
    ap.add_argument("--timeout", type=float, default=3600)
    ap.add_argument(
        "--rerun", action="store_true", help="--matrix: rerun cells already in --out (replaced)"
    )
    ap.add_argument("--note", default="", help="--matrix: the note column of the new rows")
    a = ap.parse_args()
    a.workdir.mkdir(parents=True, exist_ok=True)
    if a.runs:
        if a.out == ROOT / "benchmarks" / "results" / "outofcore.json":
            a.out = ROOT / "benchmarks" / "results" / "memory.json"
        return matrix(a)
    t0 = time.perf_counter()
    a.window = a.window or 15
    paths = make_scene(a.workdir, a.size)
    gen = time.perf_counter() - t0
    disk = sum(p.stat().st_size for p in paths.values()) / 2**20
    raw = a.size * a.size * 6 * 4 * 3 / 2**20
    print(
        f"scene {a.size} x {a.size} x 6 on disk: {disk:.0f} MB compressed, {raw:.0f} MB as "
        f"float32 in memory; built in {gen:.0f} s"
    )
    results = {}
    for workers in (1, 2):
        out = a.workdir / f"pred_w{workers}.tif"
        args = [
            "predict",
            "--pair",
            str(paths["fine"]),
            str(paths["coarse"]),
            "--coarse",
            str(paths["target"]),
            "--out",
            str(out),
            "--overwrite",
            "-q",
            "--param",
            f"window={a.window}",
            "--mem-limit",
            f"{a.mem_limit:g}",
            "--workers",
            str(workers),
            "--threads",
            "1",
        ]
        secs, peak = run_cli(args)
        results[workers] = {"seconds": round(secs, 1), "peak_rss_mb": round(peak)}
        print(f"workers={workers}: {secs:.1f} s, peak RSS {peak:.0f} MB")
    with (
        rasterio.open(a.workdir / "pred_w1.tif") as d1,
        rasterio.open(a.workdir / "pred_w2.tif") as d2,
    ):
        same = all(
            np.array_equal(d1.read(window=w), d2.read(window=w), equal_nan=True)
            for _, w in d1.block_windows(1)
        )
    speedup = results[1]["seconds"] / results[2]["seconds"]
    record = {
        "date": time.strftime("%Y-%m-%d"),
        "size": a.size,
        "bands": 6,
        "window": a.window,
        "mem_limit_mb": a.mem_limit,
        "scene_float32_mb": round(raw),
        "disk_mb": round(disk),
        "cores": os.cpu_count(),
        "runs": results,
        "speedup_2_vs_1": round(speedup, 2),
        "identical_outputs": same,
        "targets": {
            "peak_rss_under_1500mb": max(r["peak_rss_mb"] for r in results.values()) < 1500,
            "speedup_at_least_1.8": speedup >= 1.8,
        },
        "scene": "mirrored and perturbed real CIA subset (benchmarks/bench_outofcore.py)",
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
