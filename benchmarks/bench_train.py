"""Training memory and throughput: a short ``stfusion train`` over long, large series.

Issue 13 asks that training memory not grow with the number of dates or the scene size. This
script builds a synthetic series from REAL CIA TEXTURE (the bundled 250 x 250 x 6 CIA sample,
enlarged to 2000 x 2000 x 6 by mirroring, ``benchmarks/scenes.py``; the three real dates
cycle, each date brightened by 0.5 % per step so no two dates are equal; coarse images are
the fine image averaged over 10 x 10 blocks, on the fine grid, as the 500 m MODIS of CIA),
written under /tmp as tiled int16 GeoTIFFs (reflectance x 10000, scale 1e-4), and runs

    stfusion train --model dcstfn --size small --epochs 1 --steps-per-epoch 20 --batch 8 \\
        --patch 64 --threads 2 --val-patches 16 --pair ... (10 dates, then 30 dates)

as a subprocess, polling its resident memory (RSS of the process and its children) every
0.05 s with psutil. It reports the peak RSS, the wall time, and the training samples per
second (``steps * batch`` / the epoch's seconds in the loss log, validation included). On a
machine with a GPU the same command runs there (``--devices auto``) and the device is
recorded.

    python benchmarks/bench_train.py [--dates 10 30] [--size 2000] [--out benchmarks/results]

Targets (issue 13): peak RSS under 2 GB for both series, within 15 % of each other.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import rasterio
from rasterio.transform import Affine

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from scenes import mirror_to  # noqa: E402

SAMPLE = ROOT / "src" / "stfusion" / "data"
BASE_DATES = ("2001-10-08", "2001-10-17", "2001-11-02")
RATIO = 10


def _write(path: Path, refl: np.ndarray, transform: Affine, crs: object) -> None:
    data = np.clip(np.round(np.nan_to_num(refl, nan=-0.9999) * 10000), -9999, 32767)
    profile = {
        "driver": "GTiff",
        "width": refl.shape[2],
        "height": refl.shape[1],
        "count": refl.shape[0],
        "dtype": "int16",
        "crs": crs,
        "transform": transform,
        "nodata": -9999,
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
    }
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(data.astype(np.int16))
        ds.scales = [1e-4] * refl.shape[0]


def build_series(folder: Path, n: int, size: int) -> list[tuple[Path, Path]]:
    """``n`` dates (8 days apart) of mirrored CIA texture, written once and reused."""
    import datetime as dt

    folder.mkdir(parents=True, exist_ok=True)
    bases = []
    for d in BASE_DATES:
        with rasterio.open(SAMPLE / f"CIA_Landsat7_{d}.tif") as ds:
            arr = ds.read(masked=True).astype(np.float32).filled(np.nan) * 1e-4
            crs, tr = ds.crs, ds.transform
        bases.append(mirror_to(arr, size, size))
    pairs = []
    for i in range(n):
        date = (dt.date(2001, 1, 1) + dt.timedelta(days=8 * i)).isoformat()
        f, c = folder / f"F_{date}.tif", folder / f"C_{date}.tif"
        if not (f.exists() and c.exists()):
            fine = bases[i % 3] * np.float32(1.0 + 0.005 * i)
            b, h, w = fine.shape
            blocks = fine[:, : h // RATIO * RATIO, : w // RATIO * RATIO]
            blocks = blocks.reshape(b, h // RATIO, RATIO, w // RATIO, RATIO)
            with np.errstate(invalid="ignore"):
                mean = np.nanmean(blocks, axis=(2, 4))
            coarse = np.repeat(np.repeat(mean, RATIO, 1), RATIO, 2)
            _write(f, fine, tr, crs)
            _write(c, coarse, tr, crs)
        pairs.append((f, c))
    return pairs


def run(pairs: list[tuple[Path, Path]], work: Path, threads: int) -> dict[str, object]:
    out = work / f"bench_{len(pairs)}.ckpt"
    steps, batch = 20, 8
    cmd = [
        sys.executable,
        "-m",
        "stfusion.cli",
        "train",
        "--model",
        "dcstfn",
        "--size",
        "small",
        "--epochs",
        "1",
        "--steps-per-epoch",
        str(steps),
        "--batch",
        str(batch),
        "--patch",
        "64",
        "--threads",
        str(threads),
        "--val-patches",
        "16",
        "--devices",
        "auto",
        "--out",
        str(out),
        "--overwrite",
        "-q",
    ]
    for f, c in pairs:
        cmd += ["--pair", str(f), str(c)]
    path = os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))
    env = dict(os.environ, PYTHONPATH=path, OMP_NUM_THREADS=str(threads))
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    ps = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        try:
            rss = ps.memory_info().rss + sum(
                ch.memory_info().rss for ch in ps.children(recursive=True)
            )
            peak = max(peak, rss)
        except psutil.Error:
            pass
        time.sleep(0.05)
    wall = time.perf_counter() - t0
    _, err = proc.communicate()
    if proc.returncode:
        raise SystemExit(f"stfusion train failed ({proc.returncode}):\n{err.decode()[-3000:]}")
    log = (work / f"bench_{len(pairs)}.log.csv").read_text().splitlines()
    header, row = log[0].split(","), log[1].split(",")
    epoch_s = float(row[header.index("seconds")])
    return {
        "dates": len(pairs),
        "peak_rss_mb": peak / 2**20,
        "wall_s": wall,
        "epoch_s": epoch_s,
        "samples_per_s": steps * batch / epoch_s,
        "steps": steps,
        "batch": batch,
        "threads": threads,
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dates", type=int, nargs="+", default=[10, 30])
    ap.add_argument("--size", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--work", type=Path, default=Path("/tmp/stfusion_bench_train"))
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = ap.parse_args(argv)
    import torch

    series = build_series(args.work / f"series_{args.size}", max(args.dates), args.size)
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    rows = []
    for n in args.dates:
        r = run(series[:n], args.work, args.threads)
        rows.append(r)
        print(
            f"{n:>3} dates: peak RSS {r['peak_rss_mb']:.0f} MB, wall {r['wall_s']:.1f} s, "
            f"{r['samples_per_s']:.1f} samples/s ({device})",
            flush=True,
        )
    peaks = [r["peak_rss_mb"] for r in rows]
    result = {
        "scene": f"{args.size} x {args.size} x 6, int16 tiled GeoTIFF (mirrored real CIA "
        "texture, synthetic dates)",
        "command": "stfusion train --model dcstfn --size small --epochs 1 --steps-per-epoch 20 "
        f"--batch 8 --patch 64 --threads {args.threads} --val-patches 16",
        "device": device,
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "load_average_at_start": list(os.getloadavg()),
        },
        "runs": rows,
        "peak_rss_spread": (max(peaks) - min(peaks)) / min(peaks),
        "targets": {
            "peak_rss_under_2gb": all(p < 2048 for p in peaks),
            "within_15_percent": (max(peaks) - min(peaks)) / min(peaks) <= 0.15,
        },
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "train.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["targets"]))


if __name__ == "__main__":
    main()
