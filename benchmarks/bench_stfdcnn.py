"""CPU inference speed of STFDCNN (two pairs) on the full-size CIA scene (mirrored real data).

STFDCNN needs two pairs, so it is timed on ``cia-2pair`` (pairs 2001-10-08 and 2001-11-02,
target MODIS 2001-10-17) enlarged to 2040 x 1720 x 6 by ``scenes.make_cia_scene``, apart
from ``bench_deep.py`` (one pair). The shipped demo weights (trained on the two pairs' dates,
never on 2001-10-17) predict through the method class, in memory, with the default tiles
(240 px, overlap auto) and ``--threads`` torch threads; the fastest of ``--repeat`` runs is
kept. The additive baseline is timed in the same process for scale. The RMSE against the
mirrored truth is a sanity check, not a score.

    .venv/bin/python benchmarks/bench_stfdcnn.py            # about 3 minutes
    .venv/bin/python benchmarks/bench_stfdcnn.py --quick    # 430 x 510 smoke run
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scenes import CIA_RATIO, FULL_HEIGHT, FULL_WIDTH, make_cia_scene

import stfusion
from stfusion.io import FileSource
from stfusion.methods.baselines import Additive
from stfusion.methods.deep_stfdcnn import STFDCNN

RESULTS = Path(__file__).resolve().parent / "results"


def _rmse(pred: np.ndarray, truth: np.ndarray) -> float:
    err = (pred - truth).reshape(pred.shape[0], -1)
    return float(np.mean(np.sqrt(np.nanmean(err**2, axis=1))))


def run(args: argparse.Namespace) -> dict[str, Any]:
    torch.set_num_threads(args.threads)
    height, width = (430, 510) if args.quick else (FULL_HEIGHT, FULL_WIDTH)
    scene_dir = Path(args.scene_dir or Path(tempfile.gettempdir()) / "stfusion-bench")
    paths = make_cia_scene(scene_dir, height, width, case="cia-2pair")
    arr = {role: FileSource(str(p)).read() for role, p in paths.items()}
    pairs = [(arr["fine1"], arr["coarse1"]), (arr["fine2"], arr["coarse2"])]
    rows = []
    for label, est in (
        ("stfdcnn (demo weights)", STFDCNN(device="cpu")),
        ("additive", Additive()),
    ):
        est.fit(pairs, ratio=CIA_RATIO)
        runs = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            out = np.asarray(est.predict(arr["target"]))
            runs.append(round(time.perf_counter() - t0, 3))
        best = min(runs)
        rows.append(
            {
                "label": label,
                "seconds": best,
                "runs": runs,
                "mp_per_s": height * width / 1e6 / best,
                "rmse": _rmse(out, arr["truth"]),
            }
        )
        print(f"{label:24s} {best:8.2f} s  runs {runs}  RMSE {rows[-1]['rmse']:.5f}", flush=True)
    return {
        "date": _dt.date.today().isoformat(),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "stfusion": stfusion.__version__,
        "torch": str(torch.__version__),
        "threads": args.threads,
        "scene": {
            "height": height,
            "width": width,
            "bands": 6,
            "source": "mirrored real data: CIA 250 x 250 subset, cia-2pair",
        },
        "rows": rows,
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="430 x 510 smoke run")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--scene-dir", default=None)
    ap.add_argument("--out", default=None, help="JSON result (default results/stfdcnn.json)")
    args = ap.parse_args(argv)
    res = run(args)
    out = Path(args.out) if args.out else RESULTS / "stfdcnn.json"
    if args.quick and not args.out:  # never overwrite the committed results
        out = Path(tempfile.gettempdir()) / "stfdcnn-quick.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
