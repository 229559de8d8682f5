"""The distilled student (Hinton et al. 2015): a small, fast CNN trained from a deep teacher.

Hinton, G., Vinyals, O., Dean, J. (2015). Distilling the knowledge in a neural network.
arXiv:1503.02531.

A student checkpoint is written by ``stfusion distill`` (:mod:`stfusion.dl.distill`) from a
trained teacher (EDCSTFN, GAN-STFM, the transformer GAN); afterwards it is an ordinary deep
model: ``--method student --param weights=student.ckpt``. The network
(:mod:`stfusion.dl.networks.student`) predicts the additive change ``F_k + C_0 - C_k`` plus a
correction from two or three narrow 3x3 convolutions, one pair, with at most a tenth of the
teacher's parameters and an order of magnitude less CPU time.

Everything else is :class:`~stfusion.methods.deep.DeepMethod`: the checkpoint's checks on
band count, names and value scale, tiles anchored at the scene origin with ``overlap`` px of
context (``auto``: 8 px for a receptive field of 2-3 px, so tiled output equals whole-scene
output), learned state ``predictor_``, ``training_dates_``, ``overlap_``.

``weights="demo"`` (the default) is ``src/stfusion/weights/student_multisite.ckpt``: a
band-agnostic ``micro`` student distilled (``stfusion distill``) from the shipped EDCSTFN on
the multi-site catalog of the other deep methods (docs/deep.md, docs/methods/student.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stfusion.errors import InvalidParameterError
from stfusion.methods.base import Param
from stfusion.methods.deep import DeepMethod
from stfusion.methods.params import MethodTags


class Student(DeepMethod):
    """Distilled student CNN (Hinton et al. 2015): one pair; see the module docstring."""

    name = "student"
    title = "Distilled student CNN (fast)"
    paper = "Hinton et al. 2015, arXiv:1503.02531 (knowledge distillation)"
    tile_bytes_per_pixel = 800.0
    tags = MethodTags(min_pairs=1, max_pairs=1, needs_torch=True, quality=("fallback",))
    params = (
        Param(
            "weights",
            "demo",
            DeepMethod.params[0].constraints,
            "path",
            "checkpoint from `stfusion train --model student` or `stfusion distill`; demo "
            "(or shipped) = the shipped student (band-agnostic, multi-site, distilled from the "
            "shipped EDCSTFN; docs/methods/student.md)",
        ),
        *DeepMethod.params[1:],
    )

    def _load(self, path: Path) -> Any:
        # load_student builds the student network whether or not it is registered in
        # stfusion.dl.networks.network_class.
        from stfusion.dl.checkpoint import load_student

        ck = load_student(path)
        if ck.model != self.name:
            raise InvalidParameterError(
                f"{path}: weights of {ck.model}, not of a distilled student; use --method "
                f"{ck.model}, or distil one: stfusion distill --teacher {path.name} ..."
            )
        return ck
