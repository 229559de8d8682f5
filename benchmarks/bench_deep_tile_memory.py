"""Each deep network's working memory per pixel of a grown tile on the CPU, the number its
``tile_bytes_per_pixel`` keeps (docs/parallel.md, "The other deep networks").

For every deep method and two tile sizes (96 and 240 px), a fresh process fits the shipped
weights on in-memory float32 480 x 480 x 6 images (two pairs for STFDCNN), then predicts;
the rise of peak RSS over the fit is the prediction's. The slope between the two tiles,
divided by the grown tile's pixels ((tile + 2 x overlap)^2), is the per-pixel memory.

    python benchmarks/bench_deep_tile_memory.py        # about 3 minutes on 2 cores
"""

from __future__ import annotations

import json
import subprocess
import sys

METHODS = ("stfdcnn", "ganstfm", "edcstfn", "dcstfn", "vitgan", "student")
TILES = (96, 240)

_ONE = """
import json, resource, sys
import numpy as np
from stfusion.methods import get_method
name, tile = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(0)
n = 2 if name == "stfdcnn" else 1
fines = [rng.uniform(0.02, 0.4, (6, 480, 480)).astype("f4") for _ in range(n)]
est = get_method(name)(tile=tile).fit([(f, f + 0.01) for f in fines], ratio=16)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
est.predict(fines[0] + 0.02)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"overlap": est.halo(), "rise_mb": after - before, "peak_mb": after}))
"""


def measure(name: str, tile: int) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", _ONE, name, str(tile)], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    from stfusion.methods import get_method

    print("method    kB/px  (measured)  kept  peak MB at tile 96 / 240")
    for name in METHODS:
        runs = [measure(name, t) for t in TILES]
        grown = [(t + 2 * r["overlap"]) ** 2 for t, r in zip(TILES, runs, strict=True)]
        slope = (runs[1]["rise_mb"] - runs[0]["rise_mb"]) * 2**20 / (grown[1] - grown[0])
        kept = get_method(name).tile_bytes_per_pixel
        print(
            f"{name:9s} {slope / 1000:5.2f}  {kept / 1000:13.1f}  "
            f"{runs[0]['peak_mb']:.0f} / {runs[1]['peak_mb']:.0f}"
        )


if __name__ == "__main__":
    main()
