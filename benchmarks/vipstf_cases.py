"""Write a bench cases file splitting each named two-pair case into its single pairs.

`stfusion bench` skips one-pair methods (FSDAF, Fit-FC, the deep ones) on two-pair cases. To
compare VIPSTF (which uses both pairs) with its base method on the same target, this writes
``NAME-p1`` and ``NAME-p2`` (the first / second pair alone, same target and truth) for
cia-2pair, boreas-2pair and kranj-2pair::

    python benchmarks/vipstf_cases.py /tmp/single.toml
    stfusion bench --cases-file /tmp/single.toml \\
        --cases cia-2pair-p1,cia-2pair-p2,... --methods fsdaf,fitfc --out /tmp/single
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from stfusion.cases import named_cases

CASES = ("cia-2pair", "boreas-2pair", "kranj-2pair")


def _value(v: object) -> str:
    return json.dumps(v)  # TOML accepts JSON strings, numbers and arrays of them


def main(out: str) -> None:
    cases = named_cases()
    lines: list[str] = []
    for name in CASES:
        case = cases[name]
        for k, (pair, date) in enumerate(zip(case.pairs, case.pair_dates), 1):
            lines.append(f"[cases.{name}-p{k}]")
            fields = {
                "pairs": [list(pair)],
                "pair_dates": [date],
                "target": case.target,
                "truth": case.truth,
                "target_date": case.target_date,
                "fine_scale": case.fine_scale,
                "coarse_scale": case.coarse_scale,
                "ratio": case.ratio,
                "bands": list(case.bands),
            }
            lines += [f"{k2} = {_value(v)}" for k2, v in fields.items() if v is not None]
            lines.append("")
    Path(out).write_text("\n".join(lines))
    print(f"wrote {out}: {', '.join(f'{n}-p1, {n}-p2' for n in CASES)}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", nargs="?", default="vipstf_single_pair_cases.toml", help="TOML to write")
    main(ap.parse_args().out)
