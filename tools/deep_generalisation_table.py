"""Tables of the leave-one-site-out runs and the seed spread of the shipped deep weights.

    python tools/deep_generalisation_table.py /tmp/deep [--out OUT]

(OUT default: benchmarks/results/deep_generalisation).

Reads what ``tools/deep_generalisation.sh`` leaves in its folder (``loso_cia``,
``loso_boreas``, ``loso_kranj``, ``seed1``, ``seed2``: checkpoints, ``*.time`` and a
``bench/metrics.csv`` each) and the bench of the shipped weights (seed 0,
``benchmarks/results/bench/metrics.csv``). Writes ``OUT.json`` and ``OUT.md``: mean RMSE
over bands per case, for

* leave-one-site-out: each site of ``../shared/data`` scored by weights that never saw it.
  CIA, BOREAS and Kranj by the ``loso_*`` runs (trained on the other sites), LGC by the
  shipped weights (LGC is not in their training catalog: one date once its target is out);
* seeds: the shipped configuration with seeds 0 (the shipped weights), 1 and 2: mean and
  spread (max - min).
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path
from statistics import mean

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("edcstfn", "ganstfm", "vitgan", "student", "dcstfn", "stfdcnn")
BASELINES = ("additive", "nochange")
CASES = ("cia-1pair", "cia-2pair", "boreas-1pair", "boreas-2pair", "lgc-flood", "kranj-2pair")
#: Which weights score a site's cases without having seen the site.
HELD_OUT = {
    "CIA": ("loso_cia", ("cia-1pair", "cia-2pair")),
    "BOREAS": ("loso_boreas", ("boreas-1pair", "boreas-2pair")),
    "LGC": ("shipped", ("lgc-flood",)),
    "Kranj": ("loso_kranj", ("kranj-2pair",)),
}
LOSO = ("loso_cia", "loso_boreas", "loso_kranj")


def mean_rmse(path: Path) -> dict[tuple[str, str], float]:
    """``(case, method) -> mean RMSE over bands`` of a bench's metrics.csv."""
    out = {}
    with path.open() as f:
        for r in csv.DictReader(f):
            if r["band"] == "mean" and r["metric"] == "rmse":
                out[r["case"], r["method"]] = float(r["value"])
    return out


def seconds(folder: Path) -> dict[str, float]:
    out = {}
    for m in MODELS:
        t = folder / f"{m}.time"
        if t.exists() and t.read_text().strip():
            out[m] = float(t.read_text().split()[0])
    return out


def fmt(x: float | None, base: float | None = None) -> str:
    if x is None:
        return "-"
    return f"{x:.5f}" if base is None else f"{x:.5f} ({100 * (x / base - 1):+.1f} %)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", type=Path)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/deep_generalisation")
    a = ap.parse_args()
    shipped = mean_rmse(ROOT / "benchmarks/results/bench/metrics.csv")
    runs = {"shipped": shipped}
    for tag in (*LOSO, "seed1", "seed2"):
        p = a.runs / tag / "bench" / "metrics.csv"
        if p.exists():
            runs[tag] = mean_rmse(p)
    best = {}
    for case in CASES:
        # Every classical row of the bench (VIPSTF over a classical method included).
        cands = [
            (v, m)
            for (c, m), v in shipped.items()
            if c == case and m not in BASELINES and m.removesuffix("+vip") not in MODELS
        ]
        best[case] = min(cands) if cands else None
    lines = [
        "## Leave-one-site-out",
        "",
        "Mean RMSE over bands; in brackets the change against the additive baseline. Each "
        "site scored by weights that never saw it: CIA, BOREAS and Kranj by weights trained on "
        "the other sites (same protocol and seed as the shipped ones), LGC by the shipped "
        "weights (not in their training catalog). `-` = not run (one-pair models on two-pair "
        "cases and the reverse).",
        "",
        "| held-out site | case | weights | additive | best classical | "
        + " | ".join(MODELS)
        + " |",
        "|---|---|---|---|---|" + "---|" * len(MODELS),
    ]
    record: dict = {"leave_one_site_out": {}, "seeds": {}, "training_seconds": {}}
    for site, (tag, cases) in HELD_OUT.items():
        res = runs.get(tag)
        if res is None:
            continue
        for case in cases:
            add = shipped.get((case, "additive"))
            b = best[case]
            row = {m: res.get((case, m)) for m in MODELS}
            record["leave_one_site_out"][case] = {
                "site": site,
                "weights": tag,
                "additive": add,
                "best_classical": b,
                **row,
            }
            cells = [fmt(row[m], add) for m in MODELS]
            bc = f"{b[0]:.5f} ({b[1]})" if b else "-"
            lines.append(
                f"| {site} | `{case}` | {tag} | {fmt(add)} | {bc} | " + " | ".join(cells) + " |"
            )
    seed_tags = [t for t in ("shipped", "seed1", "seed2") if t in runs]
    lines += [
        "",
        f"## Seeds (0 = the shipped weights{''.join(', ' + t[4:] for t in seed_tags[1:])})",
        "",
        "Mean RMSE over bands: mean over the seeds [min, max]; in brackets the mean's change "
        "against additive. Same catalog, protocol and options, only `--seed` differs.",
        "",
        "| model | " + " | ".join(f"`{c}`" for c in CASES) + " |",
        "|---|" + "---|" * len(CASES),
    ]
    for m in MODELS:
        cells = []
        for case in CASES:
            vals = [runs[t][case, m] for t in seed_tags if (case, m) in runs[t]]
            if len(vals) < len(seed_tags) or not vals:
                cells.append("-" if not vals else f"{fmt(vals[0])} (1 seed)")
                continue
            add = shipped[case, "additive"]
            mu = mean(vals)
            record["seeds"].setdefault(m, {})[case] = vals
            cells.append(
                f"{mu:.5f} [{min(vals):.5f}, {max(vals):.5f}] ({100 * (mu / add - 1):+.1f} %)"
            )
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    for tag in (*LOSO, "seed1", "seed2"):
        if (a.runs / tag).exists():
            record["training_seconds"][tag] = seconds(a.runs / tag)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.with_suffix(".json").write_text(json.dumps(record, indent=1) + "\n")
    a.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
