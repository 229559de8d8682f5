"""SHA-256 of each method's prediction (default parameters) on named cases, to check that a
change leaves predictions bit-identical. Run it on two source trees and compare the files:

    PYTHONPATH=OLD/src python tools/prediction_hashes.py old.json
    PYTHONPATH=NEW/src python tools/prediction_hashes.py new.json
    diff old.json new.json

Options: ``--cases a,b`` and ``--methods x,y`` (default: every named case whose data are
present, the classical methods). Cases need ``$STFUSION_DATA`` or ../shared/data.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import warnings

import numpy as np

from stfusion.cases import named_cases
from stfusion.methods import get_method

CLASSICAL = "nochange,additive,starfm,estarfm,fitfc,fsdaf,vipstf,ensemble"


def _pairs_range(cls: type) -> tuple[int, int | None]:
    tags = getattr(cls, "tags", None)  # trees before MethodTags set min_pairs/max_pairs
    return (tags.min_pairs, tags.max_pairs) if tags else (cls.min_pairs, cls.max_pairs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--cases", default="")
    ap.add_argument("--methods", default=CLASSICAL)
    args = ap.parse_args()
    cases = named_cases()
    names = args.cases.split(",") if args.cases else list(cases)
    out: dict[str, str] = {}
    for cn in names:
        case = cases[cn]
        for m in args.methods.split(","):
            cls = get_method(m)
            lo, hi = _pairs_range(cls)
            if len(case.pairs) < lo or (hi is not None and len(case.pairs) > hi):
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                pred = np.ascontiguousarray(case.predict_with(cls()))
            out[f"{cn}/{m}"] = hashlib.sha256(pred.tobytes()).hexdigest()
            print(cn, m, out[f"{cn}/{m}"][:16], flush=True)
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
