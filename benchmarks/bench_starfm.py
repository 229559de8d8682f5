"""STARFM speed on the full-size CIA scene (mirrored real data), in one process.

Measures, for each window (default 31 and 51), on a 2040 x 1720 x 6 scene built by
``scenes.make_cia_scene`` from the real 250 x 250 CIA subset by mirroring (``cia-1pair``: the
2001-10-17 pair, MODIS 2001-11-02 as target, Landsat 2001-11-02 as truth):

1. numba compilation: a cold compile in a fresh process with an empty ``NUMBA_CACHE_DIR``, a
   load from that cache in a second process, and whether this process found the cache warm.
   The kernel is compiled once per argument types, not per window.
2. the estimator in memory: ``STARFM(window=w).fit([(F1, C1)])`` then ``.predict(C2)`` on
   in-memory arrays with ``numba.set_num_threads(n)`` for n = 1, 2; ``predict`` is reported
   whole and split into the numba kernel (``starfm_accumulate``) and the rest (numpy set-up).
3. the whole CLI, ``stfusion predict ... --param window=w --overwrite``, as a subprocess with
   GeoTIFF reading and writing: wall time and peak RSS (``wait4``), warm numba cache; for the
   first window also once with a cold cache (what a first run after installing costs).
4. a plain-numpy STARFM (below: same equations, vectorised over the image per window offset,
   no numba) on a crop, checked against the estimator on that crop, and its throughput
   extrapolated to the full scene.

Reported: seconds, megapixel-bands per second (H * W * bands / 1e6 / seconds), threads, CPU
seconds, peak RSS, and the CPU share other processes took during each measurement (this is a
shared 2-core machine: absolute seconds are only meaningful when that share is small; the
ratios against the numpy baseline and between thread counts are run in the same process).
Also the accuracy of each prediction and of the additive baseline against the mirrored truth,
as a sanity check. Writes JSON and a Markdown table.

    .venv/bin/python benchmarks/bench_starfm.py            # full run, about 5 minutes
    .venv/bin/python benchmarks/bench_starfm.py --quick    # smoke run on a small scene
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numba
import numpy as np
import psutil
import rasterio

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scenes import CIA_RATIO, FULL_HEIGHT, FULL_WIDTH, make_cia_scene

import stfusion
import stfusion.methods.starfm as starfm_module
from stfusion.io import ArraySource, FileSource
from stfusion.methods.starfm import STARFM
from stfusion.metrics import evaluate

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
#: The published Python STARFM (starfm4py): about 830 s per megapixel-band on this machine.
STARFM4PY_S_PER_MPB = 830.0
#: Targets of the issue, window 31.
TARGETS = {
    "kernel_2t_s": 12.0,
    "cli_s": 20.0,
    "speedup_2v1": 1.7,
    "peak_rss_mb": 1024.0,
}


# ----------------------------------------------------------------------------- measuring


def _busy_cpu_s() -> float:
    t = psutil.cpu_times()
    return float(
        t.user
        + t.nice
        + t.system
        + getattr(t, "irq", 0)
        + getattr(t, "softirq", 0)
        + getattr(t, "steal", 0)
    )


def _own_cpu_s(children: bool = False) -> float:
    t = os.times()
    own = t.user + t.system
    return own + (t.children_user + t.children_system if children else 0.0)


@dataclass
class Timing:
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    base_rss_mb: float
    others_cpu: float  # share of the machine's CPU other processes used meanwhile (0..1)
    extra: dict[str, Any] = field(default_factory=dict)


class _RSSPoller:
    """Peak RSS of this process, polled (tracemalloc misses numpy and numba allocations)."""

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.proc = psutil.Process()
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            self._stop.wait(self.interval)

    def __enter__(self) -> _RSSPoller:
        self.base = self.proc.memory_info().rss
        self.peak = self.base
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)


@contextlib.contextmanager
def measured(children: bool = False) -> Iterator[Timing]:
    """Wall and CPU time, peak RSS and other processes' CPU share over the block."""
    timing = Timing(0.0, 0.0, 0.0, 0.0, 0.0)
    ncpu = psutil.cpu_count() or 1
    busy0, own0 = _busy_cpu_s(), _own_cpu_s(children)
    with _RSSPoller() as rss:
        t0 = time.perf_counter()
        yield timing
        timing.wall_s = time.perf_counter() - t0
    timing.cpu_s = _own_cpu_s(children) - own0
    others = max(0.0, _busy_cpu_s() - busy0 - timing.cpu_s)
    timing.others_cpu = min(1.0, others / max(timing.wall_s * ncpu, 1e-9))
    timing.peak_rss_mb = rss.peak / 2**20
    timing.base_rss_mb = rss.base / 2**20


def wait_quiet(max_wait_s: float, threshold: float = 0.10) -> float:
    """Wait (up to ``max_wait_s``) for a second in which other processes use < threshold."""
    ncpu = psutil.cpu_count() or 1
    deadline = time.monotonic() + max_wait_s
    share = 1.0
    while True:
        b0, o0, t0 = _busy_cpu_s(), _own_cpu_s(), time.monotonic()
        time.sleep(1.0)
        share = max(0.0, _busy_cpu_s() - b0 - (_own_cpu_s() - o0)) / (
            (time.monotonic() - t0) * ncpu
        )
        if share < threshold or time.monotonic() >= deadline:
            return share


class KernelClock:
    """Times every ``starfm_accumulate`` call made by the STARFM method module."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.calls = 0
        self._orig: Callable[..., None] | None = getattr(starfm_module, "starfm_accumulate", None)

    def __call__(self, *args: Any) -> None:
        assert self._orig is not None
        t0 = time.perf_counter()
        self._orig(*args)
        self.seconds += time.perf_counter() - t0
        self.calls += 1

    def __enter__(self) -> KernelClock:
        if self._orig is not None:
            starfm_module.starfm_accumulate = self  # type: ignore[assignment]
        return self

    def __exit__(self, *exc: object) -> None:
        if self._orig is not None:
            starfm_module.starfm_accumulate = self._orig  # type: ignore[assignment]


# ------------------------------------------------------------------------ numpy baseline


def starfm_numpy(
    fines: list[np.ndarray],
    coarses: list[np.ndarray],
    target: np.ndarray,
    *,
    window: int,
    sim_threshold: np.ndarray,
    uncertainty: float,
    quantum: float,
    strict: bool = True,
) -> np.ndarray:
    """STARFM (Gao et al. 2006) in plain numpy: for each window offset, one pass over the image.

    The same equations as ``stfusion.methods.starfm`` (scene-wide similarity threshold
    ``sim_threshold[pair, band]``; paper filter: max over pairs, S and T both, when
    ``strict``); written independently (NaN-aware comparisons instead of sentinels) so that
    agreement with the numba path is a check, not a tautology. Outside the image is NaN.
    """
    half = window // 2
    nb, h, w = target.shape
    npairs = len(fines)
    sig = np.float32(np.sqrt(2.0) * uncertainty)  # sigma_lm = sigma_mm for sigma_l = sigma_m
    q = np.float32(quantum)
    inv_half = np.float32(1.0 / half) if half > 0 else np.float32(0.0)

    def pad(a: np.ndarray) -> np.ndarray:
        return np.pad(a, half, mode="constant", constant_values=np.nan)

    out = np.empty((nb, h, w), np.float32)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN centres
        for b in range(nb):
            c0 = pad(target[b])
            f = [pad(fines[k][b]) for k in range(npairs)]
            c = [pad(coarses[k][b]) for k in range(npairs)]
            # S (eq. 6) and T (eq. 7); NaN wherever one of their inputs is missing
            s = [np.abs(f[k] - c[k]) for k in range(npairs)]
            t = [np.abs(c[k] - c0) for k in range(npairs)]
            # each candidate's own prediction (eq. 5), NaN unless F, C and C0 are all valid
            p = [f[k] + c0 - c[k] for k in range(npairs)]
            inv_st = [np.float32(1.0) / ((s[k] + q) * (t[k] + q)) for k in range(npairs)]
            cen = (slice(half, half + h), slice(half, half + w))
            reduce = np.nanmax if strict else np.nanmin
            # filter bounds (section II-C) from the pairs whose S (or T) is defined at the
            # centre; +inf where none is
            smax = reduce(np.stack([s[k][cen] for k in range(npairs)]), axis=0) + sig
            tmax = reduce(np.stack([t[k][cen] for k in range(npairs)]), axis=0) + sig
            smax[np.isnan(smax)] = np.inf
            tmax[np.isnan(tmax)] = np.inf
            sw = np.zeros((h, w), np.float32)
            swp = np.zeros((h, w), np.float32)
            for dy in range(-half, half + 1):
                for dx in range(-half, half + 1):
                    inv_d = np.float32(1.0) / (  # D = 1 + d / A
                        np.float32(1.0) + np.float32(np.sqrt(dx * dx + dy * dy)) * inv_half
                    )
                    nb_ = (slice(half + dy, half + dy + h), slice(half + dx, half + dx + w))
                    for k in range(npairs):
                        sim = np.abs(f[k][nb_] - f[k][cen]) <= sim_threshold[k, b]
                        s_ok = s[k][nb_] < smax
                        t_ok = t[k][nb_] < tmax
                        ok = sim & (s_ok & t_ok if strict else s_ok | t_ok)
                        ok &= ~np.isnan(p[k][nb_])
                        wt = np.where(ok, inv_st[k][nb_] * inv_d, np.float32(0.0))  # 1 / C
                        sw += wt
                        swp += wt * np.where(ok, p[k][nb_], np.float32(0.0))
            with np.errstate(divide="ignore"):
                res = np.where(sw > 0, swp / sw, np.nan)
            # no candidate: the coarse target value (the reference program's rule)
            out[b] = np.where(np.isnan(res), target[b], res).astype(np.float32)
    return out


# ---------------------------------------------------------------------------------- runs


def _mpb(height: int, width: int, bands: int) -> float:
    return height * width * bands / 1e6


def machine_info() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    flags = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("flags"):
                have = set(line.split(":", 1)[1].split())
                flags = " ".join(f for f in ("avx2", "fma", "avx512f") if f in have)
                break
    commit = ""
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=HERE,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    return {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "cpu_flags": flags,
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "numba_threading_layer": None,
        "numba_max_threads": numba.config.NUMBA_NUM_THREADS,
        "stfusion": stfusion.__version__,
        "git_commit": commit,
    }


def compile_times() -> dict[str, Any]:
    """Cold compile and cache load, each in a fresh process with its own cache directory."""
    code = (
        "import json, time, warnings, numpy as np\n"
        "warnings.simplefilter('ignore')\n"
        "t0 = time.perf_counter()\n"
        "from stfusion.methods.starfm import STARFM\n"
        "from stfusion.kernels.starfm import starfm_accumulate as k\n"
        "t1 = time.perf_counter()\n"
        "a = np.random.default_rng(0).random((6, 48, 48), dtype=np.float32)\n"
        "m = STARFM(window=7).fit([(a, a * np.float32(0.9))])\n"
        "t2 = time.perf_counter(); m.predict(a); t3 = time.perf_counter()\n"
        "m.predict(a); t4 = time.perf_counter()\n"
        "print(json.dumps({'import_s': t1 - t0, 'first_s': t3 - t2, 'second_s': t4 - t3,\n"
        "  'hits': sum(k.stats.cache_hits.values()),\n"
        "  'misses': sum(k.stats.cache_misses.values())}))\n"
    )
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="numba-cache-") as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        for label in ("cold", "cached"):
            res = subprocess.run(
                [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
            )
            r = json.loads(res.stdout.strip().splitlines()[-1])
            # first call minus a repeat: what compiling (or loading) the kernel cost
            out[label] = {**r, "compile_or_load_s": r["first_s"] - r["second_s"]}
    return out


def first_call_here() -> dict[str, Any]:
    """The first kernel call in this process (tiny input): from the cache or compiled."""
    from stfusion.kernels.starfm import starfm_accumulate

    a = np.random.default_rng(0).random((6, 48, 48), dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = STARFM(window=7).fit([(a, a * np.float32(0.9))])
        t0 = time.perf_counter()
        m.predict(a)
        t1 = time.perf_counter()
        m.predict(a)
        t2 = time.perf_counter()
    stats = starfm_accumulate.stats
    return {
        "first_s": t1 - t0,
        "second_s": t2 - t1,
        "cache_hits": sum(stats.cache_hits.values()),
        "cache_misses": sum(stats.cache_misses.values()),
        "cache_path": str(stats.cache_path),
    }


def read_stack(path: Path) -> tuple[np.ndarray, FileSource]:
    src = FileSource(str(path))
    with rasterio.open(path) as ds:
        return ds.read().astype(np.float32), src


@numba.njit(parallel=True, fastmath=True, cache=True)
def _vector_rows(a: np.ndarray, b: np.ndarray, out: np.ndarray, reps: int) -> None:
    for j in numba.prange(out.shape[0]):
        for _ in range(reps):
            for i in range(a.size):
                out[j, i] += a[i] * b[i] + np.float32(0.5)


def thread_ceiling(threads: list[int], repeat: int) -> dict[str, Any]:
    """What this machine gives for perfectly parallel vector work, same process, same threads.

    Rows of an L1-resident multiply-add (the shape of STARFM's inner loop, with no memory
    traffic and no serial part) split over ``prange``: its 2-vs-1 speed-up is the most any
    kernel can get here. On a KVM guest whose two vCPUs share a physical core or a power
    budget it is well below 2; STARFM's speed-up is reported beside it.
    """
    a = np.linspace(0.1, 0.9, 2048, dtype=np.float32)
    out = np.zeros((64, a.size), np.float32)
    _vector_rows(a, a, out, 1)
    best: dict[int, float] = {}
    for _ in range(max(repeat, 3)):
        for n in threads:
            numba.set_num_threads(n)
            t0 = time.perf_counter()
            _vector_rows(a, a, out, 40000)
            best[n] = min(best.get(n, np.inf), time.perf_counter() - t0)
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    res: dict[str, Any] = {"seconds": best}
    if 1 in best and 2 in best:
        res["speedup_2v1"] = best[1] / best[2]
    return res


def run_estimator(
    window: int, f1: ArraySource, c1: ArraySource, c2: ArraySource, threads: int
) -> tuple[np.ndarray, Timing]:
    numba.set_num_threads(threads)
    with KernelClock() as clock, measured() as timing:
        t0 = time.perf_counter()
        model = STARFM(window=window).fit([(f1, c1)])
        t1 = time.perf_counter()
        pred = np.asarray(model.predict(c2).values)
        t2 = time.perf_counter()
    timing.extra = {
        "fit_s": t1 - t0,
        "predict_s": t2 - t1,
        "accumulate_s": clock.seconds if clock.calls else None,
        "setup_s": (t2 - t1 - clock.seconds) if clock.calls else None,
    }
    return pred, timing


def stfusion_command() -> list[str]:
    exe = Path(sys.executable).with_name("stfusion")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "stfusion.cli"]


# Runs the CLI and reports its wall time and peak RSS. The CLI must be forked from this small
# process, not from the benchmark: Linux's ru_maxrss of a child includes the RSS of the
# process it was forked from (about 2 GB here, with the scene in memory).
_LAUNCHER = """
import json, os, subprocess, sys, time
t0 = time.perf_counter()
proc = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(proc.pid, 0)
wall = time.perf_counter() - t0
code = os.waitstatus_to_exitcode(status)
with open(sys.argv[1], "w") as fh:
    json.dump({"wall_s": wall, "maxrss_kb": usage.ru_maxrss, "returncode": code}, fh)
sys.exit(code)
"""


def run_cli(paths: dict[str, Path], window: int, out: Path, cold: bool) -> dict[str, Any]:
    cmd = [
        *stfusion_command(),
        "predict",
        "--method",
        "starfm",
        "--pair",
        str(paths["fine1"]),
        str(paths["coarse1"]),
        "--coarse",
        str(paths["target"]),
        "--out",
        str(out),
        "--param",
        f"window={window}",
        "--overwrite",
    ]
    env = {**os.environ, "NUMBA_DEBUG_CACHE": "1"}
    with contextlib.ExitStack() as stack:
        if cold:
            env["NUMBA_CACHE_DIR"] = stack.enter_context(
                tempfile.TemporaryDirectory(prefix="numba-cache-")
            )
        log = stack.enter_context(tempfile.TemporaryFile("w+"))
        report = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "rusage.json"
        with measured(children=True) as timing:
            subprocess.run(
                [sys.executable, "-c", _LAUNCHER, str(report), *cmd],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                check=False,
            )
        log.seek(0)
        text = log.read()
        usage = json.loads(report.read_text()) if report.exists() else {}
    if usage.get("returncode") != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({usage}):\n{text[-2000:]}")
    loaded = "[cache] data loaded" in text
    saved = "[cache] data saved" in text
    return {
        "command": " ".join(["stfusion", *cmd[len(stfusion_command()) :]]),
        "wall_s": usage["wall_s"],
        "wall_with_launcher_s": timing.wall_s,
        "cpu_s": timing.cpu_s,
        "peak_rss_mb": usage["maxrss_kb"] / 1024,
        "others_cpu": timing.others_cpu,
        "numba_cache": "warm" if loaded and not saved else "cold (compiled)" if saved else "?",
        "summary": next((ln for ln in text.splitlines() if ln.startswith("wrote ")), ""),
    }


def run_numpy_baseline(
    window: int, arrays: dict[str, np.ndarray], crop: int, threads: int
) -> dict[str, Any]:
    """numpy vs the estimator on the same top-left crop (real, unmirrored pixels)."""
    sl = (slice(None), slice(0, crop), slice(0, crop))
    f1, c1, c2 = (np.ascontiguousarray(arrays[k][sl]) for k in ("fine1", "coarse1", "target"))
    numba.set_num_threads(threads)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # arrays without georeferencing
        model = STARFM(window=window).fit([(f1, c1)])
        with measured() as tn:
            ref = np.asarray(model.predict(c2).values)
        thr = model.fine_std_ * np.float32(2.0 / model.classes)
        with measured() as tp:
            got = starfm_numpy(
                [f1],
                [c1],
                c2,
                window=window,
                sim_threshold=thr,
                uncertainty=model.uncertainty_,
                quantum=model.quantum_,
                strict=model.filter == "paper",
            )
    both = np.isfinite(ref) & np.isfinite(got)
    diff = np.abs(ref - got)[both]
    return {
        "crop": [crop, crop],
        "numba_s": tn.wall_s,
        "numba_threads": threads,
        "numpy_s": tp.wall_s,
        "numpy_peak_rss_mb": tp.peak_rss_mb,
        "numpy_over_numba": tp.wall_s / tn.wall_s,
        "max_abs_diff": float(diff.max()) if diff.size else None,
        "mean_abs_diff": float(diff.mean()) if diff.size else None,
        "nan_mismatch": int((np.isnan(ref) != np.isnan(got)).sum()),
        "others_cpu": max(tn.others_cpu, tp.others_cpu),
    }


def accuracy(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rep = evaluate(pred, truth, ratio=CIA_RATIO, data_range=1.0)
    keys = ("rmse", "mae", "cc", "ssim", "psnr", "sam_deg", "ergas", "coverage")
    return {k: float(rep.mean[k]) for k in keys}


# ------------------------------------------------------------------------------ reporting


@dataclass
class Row:
    window: int
    what: str
    threads: int
    seconds: float
    mpb_per_s: float
    cpu_s: float | None
    peak_rss_mb: float | None
    others_cpu: float | None
    note: str = ""


def _fmt(v: Any, nd: int = 2) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def rows_table(rows: list[Row]) -> list[str]:
    head = (
        "window",
        "measurement",
        "threads",
        "seconds",
        "MPb/s",
        "CPU s",
        "peak RSS MB",
        "others' CPU",
        "note",
    )
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = (
            str(r.window),
            r.what,
            str(r.threads),
            _fmt(r.seconds),
            _fmt(r.mpb_per_s, 3),
            _fmt(r.cpu_s, 1),
            _fmt(r.peak_rss_mb, 0),
            "-" if r.others_cpu is None else f"{r.others_cpu:.0%}",
            r.note,
        )
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def markdown(result: dict[str, Any]) -> str:
    m, s = result["machine"], result["scene"]
    lines = [
        "# STARFM benchmark",
        "",
        f"- date: {m['date']}; git {m['git_commit']}; stfusion {m['stfusion']}",
        f"- machine: {m['nproc']} CPUs ({m['cpu_model']}; {m['cpu_flags']}), "
        f"{m['memory_gb']} GB; numba {m['numba']} (threading layer "
        f"{m['numba_threading_layer']}), numpy {m['numpy']}, Python {m['python']}",
        f"- scene: {s['height']} x {s['width']} x {s['bands']} bands, {s['pairs']} pair, "
        f"{s['mpb']:.2f} megapixel-bands; {s['kind']}",
        f"- command: `{result['command']}`",
        '- MPb/s = H * W * bands / 1e6 / seconds. "others\' CPU": the share of the machine '
        "other processes used during the measurement (shared machine; seconds measured "
        "while it is large are inflated).",
        "",
        "## Times",
        "",
        *rows_table([Row(**r) for r in result["rows"]]),
        "",
        "## Thread ceiling of this machine",
        "",
        "A perfectly parallel, L1-resident vector loop (no STARFM) at 1 and 2 threads, "
        "alternating, best of each: "
        + ", ".join(
            f"{n} thread(s) {v:.3f} s"
            for n, v in result.get("thread_ceiling", {}).get("seconds", {}).items()
        )
        + (
            f"; 2-vs-1 speed-up {result['thread_ceiling']['speedup_2v1']:.2f}x, the most any "
            "kernel can get here."
            if "speedup_2v1" in result.get("thread_ceiling", {})
            else ""
        ),
        "",
        "## Compilation (numba, once per argument types, not per window)",
        "",
    ]
    c = result["compile"]
    lines += [
        f"- cold compile in a fresh process: {c['cold']['compile_or_load_s']:.1f} s "
        f"(importing stfusion: {c['cold']['import_s']:.1f} s)",
        f"- loading the compiled kernel from the cache: {c['cached']['compile_or_load_s']:.2f} s",
        f"- this benchmark process: first call {c['here']['first_s']:.2f} s, "
        f"cache {'warm' if c['here']['cache_hits'] else 'cold (compiled here)'}; all timings "
        "below exclude compilation",
        "",
        "## numpy baseline (same equations, no numba, one thread) on a crop",
        "",
        "| window | crop | numba s (threads) | numpy s | numpy / numba | max abs diff | "
        "NaN mismatch |",
        "|---|---|---|---|---|---|---|",
    ]
    for w, b in result["numpy_baseline"].items():
        lines.append(
            f"| {w} | {b['crop'][0]} x {b['crop'][1]} | {b['numba_s']:.3f} "
            f"({b['numba_threads']}) | {b['numpy_s']:.2f} | {b['numpy_over_numba']:.0f}x | "
            f"{'-' if b['max_abs_diff'] is None else format(b['max_abs_diff'], '.1e')} | "
            f"{b['nan_mismatch']} |"
        )
    lines += ["", "## Targets (window 31)", "", "| target | measured | met |", "|---|---|---|"]
    for t in result["targets"]:
        lines.append(f"| {t['target']} | {t['measured']} | {'yes' if t['met'] else 'NO'} |")
    lines += [
        "",
        "## Accuracy against the mirrored truth (sanity check)",
        "",
        "| prediction | RMSE | CC | SSIM | SAM deg | ERGAS | coverage |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, a in result["accuracy"].items():
        lines.append(
            f"| {name} | {a['rmse']:.4f} | {a['cc']:.4f} | {a['ssim']:.4f} | "
            f"{a['sam_deg']:.2f} | {a['ergas']:.3f} | {a['coverage']:.3f} |"
        )
    lines += ["", "ERGAS with R = 10; SSIM and PSNR with data range 1.0 (reflectance)."]
    return "\n".join(lines) + "\n"


def check_targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    rows = [Row(**r) for r in result["rows"] if r["window"] == 31]
    out: list[dict[str, Any]] = []

    def pick(what: str, threads: int) -> Row | None:
        return next((r for r in rows if r.what == what and r.threads == threads), None)

    p2, p1 = pick("predict (in memory)", 2), pick("predict (in memory)", 1)
    k2 = pick("  of which kernel", 2)
    cli = next((r for r in rows if r.what == "stfusion predict (CLI, warm cache)"), None)
    if p2 is not None:
        out.append(
            {
                "target": f"kernel <= {TARGETS['kernel_2t_s']:g} s, 2 threads (estimator predict)",
                "measured": f"{p2.seconds:.2f} s (numba kernel alone "
                f"{_fmt(k2.seconds if k2 else None)} s)",
                "met": p2.seconds <= TARGETS["kernel_2t_s"],
            }
        )
    if cli is not None:
        out.append(
            {
                "target": f"whole `stfusion predict` incl. GeoTIFF I/O <= {TARGETS['cli_s']:g} s",
                "measured": f"{cli.seconds:.2f} s",
                "met": cli.seconds <= TARGETS["cli_s"],
            }
        )
    if p1 is not None and p2 is not None:
        sp = p1.seconds / p2.seconds
        kp1 = pick("  of which kernel", 1)
        ksp = f"; kernel alone {kp1.seconds / k2.seconds:.2f}x" if kp1 and k2 else ""
        ceil = result.get("thread_ceiling", {}).get("speedup_2v1")
        csp = (
            f"; this machine's ceiling {ceil:.2f}x, STARFM gets {sp / ceil:.0%} of it"
            if ceil
            else ""
        )
        out.append(
            {
                "target": f"2 threads >= {TARGETS['speedup_2v1']:g}x faster than 1",
                "measured": f"{sp:.2f}x (predict{ksp}{csp})",
                "met": sp >= TARGETS["speedup_2v1"],
            }
        )
    if cli is not None and cli.peak_rss_mb is not None:
        out.append(
            {
                "target": "peak memory < 1 GB (CLI process RSS)",
                "measured": f"{cli.peak_rss_mb:.0f} MB",
                "met": cli.peak_rss_mb < TARGETS["peak_rss_mb"],
            }
        )
    return out


# ---------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--window", type=int, nargs="+", default=[31, 51])
    ap.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: a 430 x 510 scene, one repeat, 128 x 128 numpy crop",
    )
    ap.add_argument(
        "--out",
        type=Path,
        default=None,
        help="JSON result (a .md beside it); default benchmarks/results/"
        "starfm.json, or starfm-quick.json in the scene folder with --quick",
    )
    ap.add_argument(
        "--scene-dir", type=Path, default=Path(tempfile.gettempdir()) / "stfusion-bench"
    )
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument(
        "--repeat",
        type=int,
        default=None,
        help="repeats of each in-memory run; the fastest is kept (default 2, quick 1)",
    )
    ap.add_argument("--crop", type=int, default=None, help="numpy baseline crop (default 256)")
    ap.add_argument(
        "--wait-quiet",
        type=float,
        default=60.0,
        metavar="S",
        help="before each measurement wait up to S seconds for other processes "
        "to use < 10%% of the CPUs",
    )
    ap.add_argument("--no-cli", action="store_true", help="skip the CLI runs")
    args = ap.parse_args(argv)

    height, width = (430, 510) if args.quick else (FULL_HEIGHT, FULL_WIDTH)
    repeat = args.repeat or (1 if args.quick else 2)
    crop = args.crop or (128 if args.quick else 256)
    out_json = args.out or (
        args.scene_dir / "starfm-quick.json" if args.quick else RESULTS / "starfm.json"
    )
    threads = [n for n in args.threads if n <= numba.config.NUMBA_NUM_THREADS]

    print(f"scene {height} x {width} (mirrored real CIA data) in {args.scene_dir} ...", flush=True)
    scene_dir = args.scene_dir / f"cia_{height}x{width}"
    if all(
        (scene_dir / f"CIA_{s}_{d}_{height}x{width}.tif").exists()
        for s, d in (
            ("Landsat7", "2001-10-17"),
            ("MOD09GA", "2001-10-17"),
            ("MOD09GA", "2001-11-02"),
            ("Landsat7", "2001-11-02"),
        )
    ):
        # deterministic generator: files from an earlier run are the same bytes
        paths = {
            "fine1": scene_dir / f"CIA_Landsat7_2001-10-17_{height}x{width}.tif",
            "coarse1": scene_dir / f"CIA_MOD09GA_2001-10-17_{height}x{width}.tif",
            "target": scene_dir / f"CIA_MOD09GA_2001-11-02_{height}x{width}.tif",
            "truth": scene_dir / f"CIA_Landsat7_2001-11-02_{height}x{width}.tif",
        }
    else:
        paths = make_cia_scene(scene_dir, height, width)
    arrays: dict[str, np.ndarray] = {}
    sources: dict[str, ArraySource] = {}
    for role, path in paths.items():
        arr, fsrc = read_stack(path)
        arrays[role] = arr
        sources[role] = ArraySource(arr, fsrc.grid, fsrc.band_names, label=role)
    bands = arrays["fine1"].shape[0]
    mpb = _mpb(height, width, bands)

    machine = machine_info()
    print("compilation (fresh processes, empty numba cache) ...", flush=True)
    comp = {**compile_times(), "here": first_call_here()}
    machine["numba_threading_layer"] = numba.threading_layer()

    rows: list[Row] = []
    preds: dict[str, np.ndarray] = {}
    baselines: dict[str, Any] = {}
    cli_runs: list[dict[str, Any]] = []
    print("machine's own 2-thread ceiling (a parallel vector loop, no STARFM) ...", flush=True)
    ceiling = thread_ceiling(threads, repeat)
    for n, s in ceiling["seconds"].items():
        print(f"  {n} thread(s): {s:.3f} s", flush=True)
    for w in args.window:
        # Thread counts alternate within each repeat, so a slow phase of this shared machine
        # hits both of them rather than one.
        bests: dict[int, Timing] = {}
        all_runs: dict[int, list[str]] = {n: [] for n in threads}
        for _ in range(repeat):
            for n in threads:
                share = wait_quiet(args.wait_quiet)
                pred, t = run_estimator(
                    w, sources["fine1"], sources["coarse1"], sources["target"], n
                )
                t.extra["others_before"] = share
                print(
                    f"  window {w}, {n} thread(s): predict {t.extra['predict_s']:.2f} s "
                    f"(kernel {_fmt(t.extra['accumulate_s'])} s), fit {t.extra['fit_s']:.2f} s"
                    f", others' CPU {t.others_cpu:.0%}",
                    flush=True,
                )
                all_runs[n].append(f"{t.extra['predict_s']:.1f}")
                if n not in bests or t.extra["predict_s"] < bests[n].extra["predict_s"]:
                    bests[n] = t
                preds[f"STARFM window {w}"] = pred
        for n in threads:
            best = bests[n]
            runs = all_runs[n]
            e = best.extra
            rows.append(
                Row(
                    w,
                    "predict (in memory)",
                    n,
                    e["predict_s"],
                    mpb / e["predict_s"],
                    best.cpu_s,
                    best.peak_rss_mb,
                    best.others_cpu,
                    f"best of {repeat} ({', '.join(runs)} s); fit {e['fit_s']:.2f} s; "
                    f"RSS before {best.base_rss_mb:.0f} MB",
                )
            )
            if e["accumulate_s"] is not None:
                rows.append(
                    Row(
                        w,
                        "  of which kernel",
                        n,
                        e["accumulate_s"],
                        mpb / e["accumulate_s"],
                        None,
                        None,
                        None,
                        "starfm_accumulate",
                    )
                )
                rows.append(
                    Row(
                        w,
                        "  of which numpy set-up",
                        n,
                        e["setup_s"],
                        mpb / e["setup_s"],
                        None,
                        None,
                        None,
                        "read, sentinels, weights, thresholds",
                    )
                )
        if not args.no_cli:
            for cold in (True, False) if w == args.window[0] else (False,):
                wait_quiet(args.wait_quiet)
                r = run_cli(paths, w, scene_dir / f"starfm_w{w}.tif", cold)
                print(
                    f"  window {w}, CLI ({r['numba_cache']} numba cache): {r['wall_s']:.2f} s, "
                    f"peak RSS {r['peak_rss_mb']:.0f} MB, others' CPU {r['others_cpu']:.0%}",
                    flush=True,
                )
                cli_runs.append({"window": w, **r})
                label = (
                    "stfusion predict (CLI, cold cache)"
                    if cold
                    else "stfusion predict (CLI, warm cache)"
                )
                rows.append(
                    Row(
                        w,
                        label,
                        numba.config.NUMBA_NUM_THREADS,
                        r["wall_s"],
                        mpb / r["wall_s"],
                        r["cpu_s"],
                        r["peak_rss_mb"],
                        r["others_cpu"],
                        f"numba cache {r['numba_cache']}; GeoTIFF in and out",
                    )
                )
        wait_quiet(args.wait_quiet)
        print(f"  window {w}: numpy baseline on a {crop} x {crop} crop ...", flush=True)
        b = run_numpy_baseline(w, arrays, crop, 1)
        baselines[str(w)] = b
        full_numpy = b["numpy_s"] * (height * width) / (crop * crop)
        rows.append(
            Row(
                w,
                "plain numpy (extrapolated)",
                1,
                full_numpy,
                mpb / full_numpy,
                None,
                None,
                b["others_cpu"],
                f"{b['numpy_over_numba']:.0f}x the estimator at 1 "
                f"thread on the {crop} x {crop} crop; max diff "
                f"{'-' if b['max_abs_diff'] is None else format(b['max_abs_diff'], '.1e')}",
            )
        )
        rows.append(
            Row(
                w,
                "starfm4py (published)",
                1,
                STARFM4PY_S_PER_MPB * mpb,
                1 / STARFM4PY_S_PER_MPB,
                None,
                None,
                None,
                "830 s per MPb on this machine (not run here)",
            )
        )

    print("accuracy against the mirrored truth ...", flush=True)
    f1, c1, c2, truth = (arrays[k] for k in ("fine1", "coarse1", "target", "truth"))
    acc = {"additive F1 + (C2 - C1)": accuracy(f1 + (c2 - c1), truth)}
    for name, pred in preds.items():
        acc[name] = accuracy(pred, truth)

    result: dict[str, Any] = {
        "command": "python benchmarks/bench_starfm.py " + " ".join(argv or sys.argv[1:]),
        "machine": machine,
        "scene": {
            "height": height,
            "width": width,
            "bands": bands,
            "pairs": 1,
            "mpb": mpb,
            "case": "cia-1pair",
            "ratio": CIA_RATIO,
            "kind": "mirrored real data (CIA 250 x 250 subset, np.pad symmetric)",
            "files": {k: str(v) for k, v in paths.items()},
        },
        "compile": comp,
        "rows": [asdict(r) for r in rows],
        "cli": cli_runs,
        "numpy_baseline": baselines,
        "accuracy": acc,
        "starfm4py_s_per_mpb": STARFM4PY_S_PER_MPB,
        "thread_ceiling": ceiling,
    }
    result["targets"] = check_targets(result) if 31 in args.window else []

    print()
    print("\n".join(rows_table(rows)))
    print()
    for t in result["targets"]:
        print(f"{'met    ' if t['met'] else 'NOT MET'}  {t['target']}: {t['measured']}")
    print()
    for name, a in acc.items():
        print(
            f"{name:28s} RMSE {a['rmse']:.4f}  CC {a['cc']:.4f}  SSIM {a['ssim']:.4f}  "
            f"SAM {a['sam_deg']:.2f} deg  ERGAS {a['ergas']:.3f}"
        )
    out_json.parent.mkdir(parents=True, exist_ok=True)
    out_json.write_text(json.dumps(result, indent=2, default=str) + "\n")
    out_json.with_suffix(".md").write_text(markdown(result))
    print(f"\nwrote {out_json} and {out_json.with_suffix('.md')}")
    return result


if __name__ == "__main__":
    main()
