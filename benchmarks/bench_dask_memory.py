"""Peak memory of `stfusion predict --scheduler` on a Dask cluster: the client and each worker.

    python benchmarks/bench_dask_memory.py [--size 2000] [--mem-limit 500] [--workers 2]
        [--methods starfm,fsdaf] [--dtype int16] [--layout tiled] [--grid native]

Builds the scene of `bench_outofcore.py --matrix` (real CIA texture, mirrored), starts a
local Dask cluster in its own process (`--workers` worker processes, one thread each), runs
the real command line against it and samples the resident memory (psutil, every 0.05 s) of
the client (the `stfusion` process, which writes the output) and of every worker process
separately, and each worker's memory 3 s after the run (what it keeps while idle).
`--mem-limit` is meant to bound each process: the client's and each worker's peak should
stay under the limit + 250 MB, as for a run without a scheduler. Results are appended to
benchmarks/results/dask_memory.json and tabulated in dask_memory.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_outofcore import METHOD_PARAMS, RATIO, make_matrix_scene

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "dask_memory.json"
IDLE_AFTER = 3.0  # seconds after a run when the workers' idle memory is read

_CLUSTER = """
import os, sys
from distributed import Client, LocalCluster
cluster = LocalCluster(n_workers=int(sys.argv[1]), threads_per_worker=1, processes=True,
                       dashboard_address=None, memory_limit=0)
client = Client(cluster)
pids = client.run(os.getpid)
print(cluster.scheduler_address, *pids.values(), flush=True)
sys.stdin.read()  # until the benchmark closes it
client.close()
cluster.close()
"""


def _rss(p: psutil.Process, tree: bool) -> int:
    rss = p.memory_info().rss
    if tree:
        for c in p.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                rss += c.memory_info().rss
    return rss


def run(args: list[str], worker_pids: list[int], timeout: float) -> dict:
    """One `stfusion` command; its wall seconds and the peak RSS (MB) of the client (with
    its children) and of each worker."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "stfusion.cli", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    client = psutil.Process(proc.pid)
    workers = [psutil.Process(p) for p in worker_pids]
    peak_client, peak_workers = 0, [0] * len(workers)
    while proc.poll() is None and time.perf_counter() - t0 < timeout:
        with contextlib.suppress(psutil.Error):
            peak_client = max(peak_client, _rss(client, tree=True))
        for i, w in enumerate(workers):
            with contextlib.suppress(psutil.Error):
                peak_workers[i] = max(peak_workers[i], _rss(w, tree=False))
        time.sleep(0.05)
    if proc.poll() is None:
        proc.kill()
    _, err = proc.communicate()
    ok = proc.returncode == 0
    seconds = round(time.perf_counter() - t0, 1)
    time.sleep(IDLE_AFTER)  # what a worker keeps between runs (allocator, caches, imports)
    idle = []
    for w in workers:
        with contextlib.suppress(psutil.Error):
            idle.append(round(_rss(w, tree=False) / 2**20))
    return {
        "seconds": seconds,
        "client_peak_mb": round(peak_client / 2**20),
        "worker_peak_mb": [round(w / 2**20) for w in peak_workers],
        "worker_idle_after_mb": idle,
        "status": "ok" if ok else f"rc {proc.returncode}: {err.decode(errors='replace')[-300:]}",
    }


def write_table(results: list[dict], path: Path) -> None:
    head = (
        "| size | dtype | layout | coarse grid | method | workers | --mem-limit MB | client peak "
        "MB | worker peaks MB | limit + 250 | holds | workers idle after MB | seconds | date |\n"
        + "|"
        + "---|" * 14
        + "\n"
    )
    rows = [
        f"| {r['size']} x {r['size']} x 6 | {r['dtype']} | {r['layout']} | {r['coarse_grid']} | "
        f"{r['method']} | {r['workers']} | {r['mem_limit_mb']:g} | {r['client_peak_mb']} | "
        f"{', '.join(map(str, r['worker_peak_mb']))} | {r['target_mb']:g} | "
        f"{'yes' if r['holds'] else 'NO'} | "
        f"{', '.join(map(str, r.get('worker_idle_after_mb') or ['-']))} | "
        f"{r['seconds']} | {r['date']} |"
        for r in results
    ]
    path.write_text(head + "\n".join(rows) + "\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=2000)
    ap.add_argument("--dtype", default="int16", choices=["int16", "float32"])
    ap.add_argument("--layout", default="tiled", choices=["tiled", "striped"])
    ap.add_argument("--grid", default="native", choices=["native", "fine"])
    ap.add_argument("--methods", default="starfm,fsdaf")
    ap.add_argument("--mem-limit", type=float, default=500)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/stfusion-outofcore"))
    ap.add_argument("--timeout", type=float, default=1800)
    ap.add_argument("--out", type=Path, default=OUT)
    a = ap.parse_args()
    paths = make_matrix_scene(a.workdir, a.size, a.dtype, a.layout, a.grid)
    cluster = subprocess.Popen(
        [sys.executable, "-c", _CLUSTER, str(a.workers)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert cluster.stdout is not None and cluster.stdin is not None
    address, *pids = cluster.stdout.readline().split()
    results = json.loads(a.out.read_text()) if a.out.exists() else []
    try:
        for method in a.methods.split(","):
            out = a.workdir / f"dask_{method}.tif"
            args = ["predict", "--method", method, "--pair", str(paths["fine"])]
            args += [str(paths["coarse"]), "--coarse", str(paths["target"]), "--out", str(out)]
            args += ["--overwrite", "-q", "--mem-limit", f"{a.mem_limit:g}"]
            args += ["--scheduler", address]
            for p in METHOD_PARAMS[method]:
                args += ["--param", p]
            if a.grid == "fine" and method != "starfm":
                args += ["--param", f"ratio={RATIO}"]
            r = run(args, [int(p) for p in pids], a.timeout)
            peak = max([r["client_peak_mb"], *r["worker_peak_mb"]])
            rec = {
                "size": a.size,
                "dtype": a.dtype,
                "layout": a.layout,
                "coarse_grid": a.grid,
                "method": method,
                "workers": a.workers,
                "mem_limit_mb": a.mem_limit,
                **r,
                "target_mb": a.mem_limit + 250,
                "holds": r["status"] == "ok" and peak <= a.mem_limit + 250,
                "date": time.strftime("%Y-%m-%d"),
                "cores": os.cpu_count(),
            }
            print(json.dumps(rec), flush=True)
            results.append(rec)
            out.unlink(missing_ok=True)
    finally:
        cluster.stdin.close()
        try:
            cluster.wait(30)
        except subprocess.TimeoutExpired:
            cluster.kill()
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(results, indent=1) + "\n")
    write_table(results, a.out.with_suffix(".md"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
