"""CPU inference throughput of the deep networks on the full-size CIA scene (mirrored real data).

Every network predicts the same 2040 x 1720 x 6 scene, built by ``scenes.make_cia_scene`` from
the real 250 x 250 CIA subset by mirroring (``cia-1pair``: the 2001-10-17 pair, MODIS
2001-11-02 as target, Landsat 2001-11-02 as truth), read into memory once. Each prediction is
``stfusion.dl.infer.predict_arrays`` (normalisation, edge padding, tiles, network, crop) with
the SAME tiles for all networks: ``--tile`` px (256) anchored at the origin, each grown by
``--overlap`` px: ``auto`` (default) = each network's own default, as ``stfusion predict``
uses it (its receptive field rounded up to 8 and to its block size: 8 px for EDCSTFN and the
student, which therefore run on identical tiles, 16 for DCSTFN, more for the transformer GAN);
``common`` = the largest of those for all; and the same torch thread count. The fastest of
``--repeat`` runs is kept, the repeats interleaved over the networks (a shared 2-core machine:
others' jobs only ever slow a run down, and a busy spell then hits every network alike).

Networks: DCSTFN small, EDCSTFN small and paper, the distilled student (its demo size,
``micro``; ``nano`` too), and GAN-STFM / the transformer GAN (tiny, its shipped size, small
and paper) when their networks are registered (else skipped with a note). Weights: the
shipped checkpoint where there is one of that size, ``--teacher`` for EDCSTFN paper,
otherwise freshly initialised weights; the speed of a convolutional network does not depend
on its weight values. The accuracy column (mean RMSE against the mirrored truth) is only
shown for trained weights and is a sanity check, not a score.

Reported per network: parameters, seconds, megapixels per second (H * W / 1e6 / seconds),
the CPU share this process got (CPU seconds / wall seconds / threads; below 1 means other
jobs took the cores), and the speed ratio of each network to the student measured in the same
run; the student-vs-teacher (EDCSTFN paper) ratio is the headline number.

    .venv/bin/python benchmarks/bench_deep.py --teacher teacher.ckpt       # about 10 minutes
    .venv/bin/python benchmarks/bench_deep.py --quick                      # 430 x 510 smoke run
    python benchmarks/bench_deep.py --device cuda --batch 8 --precision 16-mixed --out gpu.json
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import platform
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scenes import FULL_HEIGHT, FULL_WIDTH, make_cia_scene

import stfusion
from stfusion.dl.checkpoint import Checkpoint
from stfusion.dl.distill import StudentCheckpoint, load_student, parameter_count
from stfusion.dl.infer import Predictor, default_overlap, predict_arrays
from stfusion.dl.networks import FusionNet, make_network
from stfusion.dl.networks.student import make_student
from stfusion.io import FileSource
from stfusion.methods.deep import demo_weights

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
#: (label, network, size): what is timed, in this order.
NETWORKS: list[tuple[str, str, str]] = [
    ("dcstfn small", "dcstfn", "small"),
    ("edcstfn small", "edcstfn", "small"),
    ("edcstfn paper", "edcstfn", "paper"),
    ("ganstfm small", "ganstfm", "small"),
    ("ganstfm paper", "ganstfm", "paper"),
    ("vitgan tiny", "vitgan", "tiny"),  # the shipped size
    ("vitgan small", "vitgan", "small"),
    ("vitgan paper", "vitgan", "paper"),
    ("student micro", "student", "micro"),
    ("student nano", "student", "nano"),
]
TEACHER = "edcstfn paper"
STUDENT = "student micro"
TARGET_SPEEDUP = 10.0


@dataclass
class Row:
    label: str
    network: str
    size: str
    parameters: int = 0
    weights: str = ""
    overlap: int = 0
    seconds: float = float("nan")
    runs: list[float] = field(default_factory=list)
    mp_per_s: float = float("nan")
    cpu_share: float = float("nan")
    rmse: float | None = None
    skipped: str = ""


def _checkpoint(
    net: FusionNet, mean: np.ndarray, std: np.ndarray, label: str
) -> Checkpoint | StudentCheckpoint:
    """An in-memory checkpoint around ``net`` (random weights) with the scene's normalisation."""
    data = {
        "model": net.name,
        "network": net.config(),
        "state_dict": net.state_dict(),
        "bands": net.bands,
        "band_names": [f"band{i + 1}" for i in range(net.bands)],
        "norm": {"mean": [float(x) for x in mean], "std": [float(x) for x in std]},
    }
    return StudentCheckpoint(f"<random {label}>", data)


def _model(
    label: str, name: str, size: str, teacher: Path | None, mean: np.ndarray, std: np.ndarray
) -> tuple[Checkpoint, str]:
    """The checkpoint to time and where its weights come from; raises if unavailable."""
    if label == TEACHER and teacher is not None:
        return load_student(teacher), f"--teacher ({teacher.name})"
    if demo_weights(name).exists():
        ck = load_student(demo_weights(name))
        if ck.data["network"].get("size") == size:
            return ck, f"demo ({demo_weights(name).name})"
    torch.manual_seed(0)
    net = make_student(6, size) if name == "student" else make_network(name, 6, size)
    return _checkpoint(net, mean, std, label), "random (untrained)"


def _time(
    pred: Predictor,
    pair: tuple[np.ndarray, np.ndarray],
    target: np.ndarray,
    tile: int,
    overlap: int,
    batch: int = 1,
) -> tuple[float, float, np.ndarray]:
    """Wall seconds, CPU share (CPU s / wall s / threads) and output of one prediction."""
    c0, t0 = time.process_time(), time.perf_counter()
    out = predict_arrays(pred, [pair], target, tile=tile, overlap=overlap, batch=batch)
    if pred.device.type == "cuda":
        torch.cuda.synchronize()
    wall = time.perf_counter() - t0
    return wall, (time.process_time() - c0) / wall / torch.get_num_threads(), out


def _why(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:200]


def run(args: argparse.Namespace) -> dict[str, Any]:
    torch.set_num_threads(args.threads)
    height, width = (430, 510) if args.quick else (FULL_HEIGHT, FULL_WIDTH)
    scene_dir = Path(args.scene_dir or Path(tempfile.gettempdir()) / "stfusion-bench")
    paths = make_cia_scene(scene_dir, height, width)
    f1, c1, tgt, truth = (
        FileSource(str(paths[r])).read() for r in ("fine1", "coarse1", "target", "truth")
    )
    both = np.concatenate([f1, c1]).reshape(2, 6, -1).transpose(1, 0, 2).reshape(6, -1)
    mean, std = both.mean(1), both.std(1)
    mp = height * width / 1e6
    rows: list[Row] = []
    models: dict[str, Predictor] = {}
    for label, name, size in NETWORKS:
        if args.only and label not in args.only:
            continue
        row = Row(label, name, size)
        rows.append(row)
        try:
            ck, row.weights = _model(label, name, size, args.teacher, mean, std)
            models[label] = Predictor(ck, args.device, args.precision)
            row.parameters = parameter_count(models[label].net)
        except Exception as exc:  # a network missing or still being written: note, go on
            row.skipped = _why(exc)
            print(f"{label:15s} skipped ({row.skipped})", flush=True)
    # The same tile grid for all. Overlap "auto": each network's own default (what
    # `stfusion predict` uses: its receptive field rounded up to 8 and to its block size;
    # 8 px for both EDCSTFN and the student, so those two run on identical tiles); "common":
    # the largest of those for every network; a number: that for every network.
    common = None
    if args.overlap == "common":
        step = math.lcm(*(p.multiple for p in models.values()), 1)
        need = max((default_overlap(p.radius, p.multiple) for p in models.values()), default=8)
        common = -(-need // step) * step
    elif args.overlap != "auto":
        common = int(args.overlap)
    for row in rows:
        if not row.skipped:
            p = models[row.label]
            row.overlap = default_overlap(p.radius, p.multiple) if common is None else common
    # Repeats interleaved over the networks, so a busy spell of the machine hits them alike.
    shares: dict[str, list[float]] = {}
    for rep in range(args.repeat):
        for row in rows:
            if row.skipped:
                continue
            try:
                wall, share, out = _time(
                    models[row.label], (f1, c1), tgt, args.tile, row.overlap, args.batch
                )
            except Exception as exc:
                row.skipped = _why(exc)
                print(f"{row.label:15s} skipped ({row.skipped})", flush=True)
                continue
            row.runs.append(round(wall, 3))
            shares.setdefault(row.label, []).append(share)
            if rep == 0 and not row.weights.startswith("random"):
                err = (out - truth).reshape(6, -1)
                row.rmse = float(np.mean(np.sqrt(np.nanmean(err**2, axis=1))))
            print(
                f"[{rep + 1}/{args.repeat}] {row.label:15s} {wall:8.2f} s  cpu share {share:.2f}",
                flush=True,
            )
    for row in rows:
        if row.skipped:
            continue
        best = int(np.argmin(row.runs))
        row.seconds = row.runs[best]
        row.mp_per_s = mp / row.seconds
        row.cpu_share = shares[row.label][best]
    timed = {r.label: r for r in rows if not r.skipped}
    ratios: dict[str, float] = {}
    if STUDENT in timed:
        for r in timed.values():
            ratios[r.label] = r.seconds / timed[STUDENT].seconds
    speedup = ratios.get(TEACHER)
    return {
        "date": _dt.date.today().isoformat(),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": {
            "cores": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "torch": str(torch.__version__),
            "device": args.device,
            "gpu": torch.cuda.get_device_name() if "cuda" in args.device else None,
            "stfusion": stfusion.__version__,
            "load_average_after": list(os.getloadavg()),
            "note": "shared machine: other jobs ran meanwhile; fastest of the repeats kept",
        },
        "scene": {
            "height": height,
            "width": width,
            "bands": 6,
            "megapixels": mp,
            "source": "mirrored real data: CIA 250 x 250 subset (benchmarks/scenes.py), "
            "cia-1pair (pair 2001-10-17, target MODIS 2001-11-02)",
        },
        "tile": args.tile,
        "overlap": args.overlap,
        "threads": args.threads,
        "batch": args.batch,
        "precision": args.precision,
        "repeat": args.repeat,
        "rows": [asdict(r) for r in rows],
        "seconds_relative_to_student": ratios,
        "student_vs_teacher_speedup": speedup,
        "target_speedup": TARGET_SPEEDUP,
        "target_met": None if speedup is None else bool(speedup >= TARGET_SPEEDUP),
    }


def markdown(res: dict[str, Any]) -> str:
    lines = [
        f"{res['scene']['width']} x {res['scene']['height']} x 6 (mirrored CIA), tiles "
        f"{res['tile']} px anchored at the origin, overlap {res['overlap']}, "
        f"{res['threads']} thread(s), fastest of {res['repeat']}; {res['date']}, shared "
        f"{res['machine']['cores']}-core machine.",
        "",
        "| network | parameters | weights | overlap px | seconds | MP/s | x student time | "
        "CPU share | RMSE vs mirrored truth |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    ratios = res["seconds_relative_to_student"]
    for r in res["rows"]:
        if r["skipped"]:
            lines.append(f"| {r['label']} | | | | skipped: {r['skipped']} | | | | |")
            continue
        rmse = "" if r["rmse"] is None else f"{r['rmse']:.5f}"
        ratio = f"{ratios[r['label']]:.1f}" if r["label"] in ratios else ""
        lines.append(
            f"| {r['label']} | {r['parameters']:,} | {r['weights']} | {r['overlap']} | "
            f"{r['seconds']:.2f} | "
            f"{r['mp_per_s']:.3f} | {ratio} | {r['cpu_share']:.2f} | {rmse} |"
        )
    if res["student_vs_teacher_speedup"] is not None:
        lines += [
            "",
            f"Student ({STUDENT}) vs teacher ({TEACHER}): "
            f"{res['student_vs_teacher_speedup']:.1f}x faster (target >= "
            f"{res['target_speedup']:.0f}x).",
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--teacher",
        type=Path,
        default=None,
        help="EDCSTFN paper checkpoint (else random weights of that size)",
    )
    ap.add_argument("--tile", type=int, default=256)
    ap.add_argument(
        "--overlap",
        default="auto",
        help="context px around each tile: auto = each network's default (as stfusion "
        "predict); common = the largest default for all; or a number for all",
    )
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    ap.add_argument("--batch", type=int, default=1, help="tiles per forward pass")
    ap.add_argument("--precision", default="32", help="32, 16-mixed or bf16-mixed")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", nargs="*", default=None, help="labels to time (default: all)")
    ap.add_argument("--scene-dir", default=None)
    ap.add_argument("--quick", action="store_true", help="430 x 510 scene, results not saved")
    ap.add_argument("--out", type=Path, default=RESULTS / "deep.json")
    args = ap.parse_args(argv)
    res = run(args)
    md = markdown(res)
    print(md)
    if args.quick:
        return
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(md)
    print(f"wrote {args.out} and {args.out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
