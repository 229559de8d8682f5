"""Several stfusion processes on one machine: OpenMP's spinning threads vs OMP_WAIT_POLICY.

    python benchmarks/bench_omp_policy.py [--processes 2] [--repeat 2]

numba runs the kernels' parallel loops through OpenMP, whose idle threads spin for a while
after each loop (`OMP_WAIT_POLICY=active`, GNU OpenMP's default spin) before sleeping. One
process alone gains from it; processes sharing the cores (Dask workers, commands run side by
side, the two test processes) lose the cores the spinning threads hold. This runs the same
`stfusion bench` (the real cia-1pair and cia-2pair cases, STARFM, FSDAF, Fit-FC, ESTARFM)
alone and `--processes` at once, under both policies, and reports the wall seconds (fastest
of `--repeat`). Needs ../shared/data beside the repository. Results:
results/omp_policy.json and .md (docs/parallel.md quotes them).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "omp_policy.json"
BENCH = ["bench", "--cases", "cia-1pair,cia-2pair", "--methods", "starfm,fsdaf,fitfc,estarfm"]


def wall(policy: str, processes: int, tmp: Path) -> float:
    """Seconds until all of ``processes`` concurrent `stfusion bench` runs have finished."""
    env = dict(os.environ, OMP_WAIT_POLICY=policy)
    t0 = time.perf_counter()
    args = [sys.executable, "-m", "stfusion.cli", *BENCH, "--no-figures", "--overwrite"]
    procs = [
        subprocess.Popen(
            [*args, "--out", str(tmp / f"{policy}_{i}")],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for i in range(processes)
    ]
    for p in procs:
        _, err = p.communicate()
        if p.returncode:
            raise SystemExit(f"stfusion bench failed: {err.decode(errors='replace')[-500:]}")
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=2)
    a = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        wall("active", 1, tmp)  # untimed: numba's cache and the files' pages warm
        for n in (1, a.processes):
            for policy in ("active", "passive"):
                best = min(wall(policy, n, tmp) for _ in range(a.repeat))
                rows.append({"processes": n, "policy": policy, "seconds": round(best, 2)})
                print(json.dumps(rows[-1]), flush=True)
    rec = {
        "command": "stfusion " + " ".join(BENCH),
        "rows": rows,
        "date": time.strftime("%Y-%m-%d"),
        "machine": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(rec, indent=1) + "\n")
    lines = [
        f"`{rec['command']}`, fastest of {a.repeat}, {rec['date']}, {rec['cores']} cores",
        "",
        "| processes at once | OMP_WAIT_POLICY | seconds (all finished) |",
        "|---|---|---|",
        *(f"| {r['processes']} | {r['policy']} | {r['seconds']} |" for r in rows),
    ]
    OUT.with_suffix(".md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
