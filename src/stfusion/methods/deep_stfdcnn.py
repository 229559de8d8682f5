"""STFDCNN (Song et al. 2018, IEEE JSTARS 11(3) 821-829) as a fusion method.

Two pairs bracketing the target. A non-linear mapping CNN turns each coarse image into a
"transitional" image on a low-spatial-resolution (LSR) grid, a super-resolution CNN turns LSR
images into fine ones, and the paper's fusion model (high-pass modulation of each pair's fine
details, weighted by how little each pair's coarse image changed towards the target) is applied
at both levels; see :mod:`stfusion.dl.networks.stfdcnn` for the equations and
docs/methods/stfdcnn.md for the adaptations. Train it with ``stfusion train --model stfdcnn``
(:func:`stfusion.dl.train_stfdcnn.train_stfdcnn`).

Everything else is :class:`stfusion.methods.deep.DeepMethod`: checkpoint checks (bands, names,
scale), tiles anchored at the scene origin with ``overlap`` >= the receptive field (tiled
output equals whole-scene output), torch imported only when fitted. Tiles and overlaps must be
multiples of the checkpoint's LSR ``factor`` (the default tile, 240, fits factors 1-6, 8, 10,
12, 15 and 16).

``weights="demo"`` uses ``stfusion/weights/stfdcnn_multisite.ckpt``: band-agnostic, its CNNs
residual (an untrained STFDCNN is its HPM fusion model on the inputs), trained on the
multi-site catalog of the other deep methods (docs/deep.md).
"""

from __future__ import annotations

import os
from typing import Any

from stfusion.errors import warn
from stfusion.io import Source
from stfusion.methods.base import Param
from stfusion.methods.deep import DEMO_DATES, DeepMethod
from stfusion.methods.params import MethodTags

#: Training dates of the shipped checkpoint (checked against the file by the tests): the
#: multi-site dates of the other deep methods.
STFDCNN_DEMO_DATES = DEMO_DATES

_TILE = Param(
    "tile",
    240,
    DeepMethod.params[1].constraints,
    "fine pixels",
    "side of the tiles the network runs on (anchored at the scene origin; a multiple of the "
    "checkpoint's LSR factor)",
)


class STFDCNN(DeepMethod):
    """STFDCNN (Song et al. 2018): NLM + SR CNNs, high-pass modulation, two pairs weighted."""

    name = "stfdcnn"
    title = "STFDCNN (deep CNN)"
    paper = "Song et al. 2018, IEEE JSTARS 11(3) 821-829"
    tile_bytes_per_pixel = 10000.0
    tags = MethodTags(
        min_pairs=2,
        max_pairs=2,
        needs_torch=True,
        quality=("fallback",),
        pairs_note="one before and one after the target date (with one pair use edcstfn or "
        "another one-pair deep method).",
    )
    training_dates = STFDCNN_DEMO_DATES
    params = tuple(_TILE if p.name == "tile" else p for p in DeepMethod.params)

    def __init__(
        self,
        *,
        weights: str | os.PathLike[str] = "demo",
        tile: int = 240,
        overlap: int | str = "auto",
        device: str = "auto",
        batch: int | str = "auto",
        precision: str = "32",
    ) -> None:
        super().__init__(
            weights=weights,
            tile=tile,
            overlap=overlap,
            device=device,
            batch=batch,
            precision=precision,
        )

    def _prepare(self, target: Source) -> None:
        super()._prepare(target)
        # the paper's pairs bracket the target; a trial's two earlier pairs ran without a word
        scene = self.scene_
        if scene.target_outside_pairs:
            dates = ", ".join(str(d) for d in scene.pair_dates or ())
            warn(
                f"stfdcnn: the target date {scene.target_date} is not between the pair dates "
                f"{dates}; STFDCNN weights one pair before and one after the target, so this "
                "extrapolates. Give one pair on each side, or use a one-pair method (edcstfn) "
                "with the nearest pair."
            )

    def _predictor(self, ck: Any) -> Any:
        # The STFDCNN predictor builds the network from the checkpoint's config (LSR factor,
        # weight window) without the network registry.
        from stfusion.dl.infer_stfdcnn import STFDCNNPredictor

        return STFDCNNPredictor(ck, str(self.device), self.precision)
