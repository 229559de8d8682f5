"""Band-agnostic networks that predict a correction to a physical baseline.

Every deep method of stfusion (since checkpoint format 2) runs its network through
:class:`AgnosticNet`:

- **band-agnostic**: each band of a ``(N, B, H, W)`` input is an independent single-band
  sample (``(N B, 1, H, W)``) of one shared network built for one band, as the DCSTFN paper
  trains one network per band. A checkpoint therefore fits any band count (1, 3, 6, 13, ...)
  and any sensor whose fine and coarse images share units;
- **normalised per sample**: inputs are ``(x - center_b) / scale_b`` with ``center_b`` the
  median and ``scale_b`` a robust spread (interquartile range / 1.349, floored) of band ``b``
  of the *fine reference image* (the whole scene at prediction, the whole training image at
  training; never the tile, so tiled output stays equal to whole-scene output). The same
  transform applies to the fine and coarse inputs and is undone on the output; it holds for
  reflectance, NDVI (-1..1) or temperatures in kelvin alike (:func:`sample_stats`);
- **residual on physics**: the output is ``baseline + correction``. The network's last layer
  starts at zero, so an untrained network predicts the baseline exactly and training can only
  learn what the data supports. Baselines:

  - ``regression`` (the default of new EDCSTFN, DCSTFN, transformer GAN and student networks
    since 2026-12-04): ``C_t + s (F_r - C_r)``, the fine detail of the reference scaled by
    ``s``, the local least-squares slope of ``C_t`` on ``C_r`` in ``2 radius + 1`` boxes
    (``radius`` 24 px), shrunk towards 1 by a prior variance of ``SLOPE_PRIOR`` (normalised
    units) and clipped to ``[0, SLOPE_MAX]``. A uniform change gives ``s = 1``, the additive
    prediction; a proportional change (greening NIR: detail grows with the signal) gives its
    factor, which per-sample normalisation hides from the network itself (the centre is
    subtracted). Fit-FC's regression step without its filtering and residual compensation;
    unit-free, so it holds for NDVI and kelvin too;
  - ``additive``: ``F_r + C_t - C_r`` (checkpoints written before the regression baseline,
    and STFDCNN's wrapper, whose network adds no baseline);
  - ``smooth`` (GAN-STFM, which needs no coarse image at the reference date):
    ``F_r + box(C_t) - box(F_r)`` (a box of ``2 smooth + 1`` px: the target's coarse signal
    plus the reference's fine detail).

  Networks that already add the additive prediction themselves (the student, the transformer
  GAN: ``residual_base = True``) get the difference between the baseline and the additive
  one.

With two pairs (EDCSTFN), the prediction is the mean of the two single-pair predictions (a
pair invalid at a pixel taking no part): the path the network is trained on, and at the
start the mean of the two pairs' baselines. EDCSTFN's paper blends the two pairs'
*features* with inverse-change weights instead; a network trained on one-pair examples
never sees that blend, and in a first run it lost to the additive mean on boreas-2pair and
kranj-2pair. STFDCNN keeps its own weighted fusion (its output is a full prediction).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from stfusion.dl.networks import FusionNet

BASELINES = ("additive", "smooth", "regression")
#: Relative floor of the per-sample spread (a constant band must not blow up).
SPREAD_FLOOR = 1e-3


def sample_stats(fine: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-band ``center``, ``scale`` and vision data range of a ``(band, ...)`` sample of a
    fine image (NaN ignored).

    ``center``: the median; ``scale``: the interquartile range / 1.349 (the standard deviation
    of a normal distribution), floored at ``1e-6 + SPREAD_FLOOR |center|``; range: 1 when the
    values look like reflectance or an index (0.5th and 99.5th percentiles within [-1.5, 1.5]),
    else the spread between those percentiles (temperatures, radiances, DN).
    """
    a = np.asarray(fine, dtype=np.float64).reshape(fine.shape[0], -1)
    n = a.shape[0]
    center, scale, rng = np.zeros(n), np.ones(n), np.ones(n)
    for b in range(n):
        v = a[b][np.isfinite(a[b])]
        if v.size == 0:
            continue
        q25, med, q75, lo, hi = np.percentile(v, [25, 50, 75, 0.5, 99.5])
        center[b] = med
        scale[b] = max((q75 - q25) / 1.349, 1e-6 + SPREAD_FLOOR * abs(med))
        rng[b] = 1.0 if (lo >= -1.5 and hi <= 1.5) else max(hi - lo, 1e-6)
    return center.astype(np.float32), scale.astype(np.float32), rng.astype(np.float32)


def box(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Mean over a ``(2 radius + 1)`` square box, edge-replicated (same size): differences of
    running sums along rows, then columns (a few operations per pixel whatever the radius;
    two average pools of the box's side took 60 % of the student's prediction time), in
    float64 so the running sums lose nothing."""
    if radius <= 0:
        return x
    k = 2 * radius + 1
    return (box_sum(x, radius) / (k * k)).to(x.dtype)


def box_sum(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Sum over a ``(2 radius + 1)`` square box, edge-replicated (same size), float64
    (:func:`box` without the division)."""
    k = 2 * radius + 1
    pad = F.pad(x, (radius, radius, radius, radius), mode="replicate").double()
    run = torch.cumsum(F.pad(pad, (1, 0)), dim=-1)
    rows = run[..., k:] - run[..., :-k]
    run = torch.cumsum(F.pad(rows, (0, 0, 1, 0)), dim=-2)
    return run[..., k:, :] - run[..., :-k, :]


def zero_last_layer(net: nn.Module) -> None:
    """Zero the weights and bias of the last convolution of ``net`` (its output layer)."""
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)]
    if not convs:
        raise ValueError(f"{type(net).__name__} has no convolution to start at zero")
    nn.init.zeros_(convs[-1].weight)
    if convs[-1].bias is not None:
        nn.init.zeros_(convs[-1].bias)


#: Prior variance of the regression baseline's slope (normalised units: (0.1 spread)^2 x 10),
#: which pulls the slope towards 1 (the additive baseline) where the coarse images vary little.
SLOPE_PRIOR = 0.1
SLOPE_MAX = 3.0


def regression_slope(c1: torch.Tensor, c2: torch.Tensor, radius: int) -> torch.Tensor:
    """Local least-squares slope of ``c2`` on ``c1`` in ``(2 radius + 1)`` boxes, shrunk
    towards 1 and clipped to ``[0, SLOPE_MAX]``."""
    dtype = c1.dtype
    c1, c2 = c1.float(), c2.float()  # moments in float32 also under autocast (cancellation)
    m1, m2 = box(c1, radius), box(c2, radius)
    var = box(c1 * c1, radius) - m1 * m1
    cov = box(c1 * c2, radius) - m1 * m2
    slope = (cov + SLOPE_PRIOR) / (var.clamp_min(0.0) + SLOPE_PRIOR)
    return slope.clamp(0.0, SLOPE_MAX).to(dtype)


class AgnosticNet(FusionNet):
    """A single-band network applied to every band, predicting a correction to a baseline."""

    #: Inference on the CPU one band image at a time (see :meth:`forward`). A distillation
    #: teacher turns it off (:func:`whole_batch`): its forward hooks must see every band.
    band_loop = True

    def __init__(self, inner: FusionNet, baseline: str = "additive", smooth: int = 8) -> None:
        if baseline not in BASELINES:
            raise ValueError(f"baseline {baseline!r}: choose one of {', '.join(BASELINES)}")
        if inner.bands != 1:
            raise ValueError(f"the inner network must be single-band, got {inner.bands}")
        super().__init__(1, inner.channels)
        self.inner = inner
        self.baseline_kind = baseline
        self.smooth = int(smooth) if baseline in ("smooth", "regression") else 0
        #: ``smooth`` baseline: subtract ``box(C1)`` instead of ``box(F1)`` (GAN-STFM's
        #: ``coarse_ref=use`` at prediction; training keeps the paper's ``box(F1)``).
        self.smooth_coarse_ref = False
        self.name = inner.name
        self.radius = int(inner.radius) + self.smooth
        self.multiple = int(inner.multiple)
        self.max_pairs = inner.max_pairs
        self.adversarial = inner.adversarial
        self.discriminator = inner.discriminator
        if not getattr(inner, "residual_base", False):
            zero_last_layer(inner)

    def config(self) -> dict[str, Any]:
        return {**self.inner.config(), "agnostic": self.baseline_kind, "smooth": self.smooth}

    @staticmethod
    def _flat(x: torch.Tensor) -> torch.Tensor:
        n, b, h, w = x.shape
        return x.reshape(n * b, 1, h, w)

    def baseline(
        self, fine_ref: torch.Tensor, coarse_ref: torch.Tensor, coarse_target: torch.Tensor
    ) -> torch.Tensor:
        """The physical prediction the network corrects (any band count)."""
        if self.baseline_kind == "smooth":
            ref = coarse_ref if self.smooth_coarse_ref else fine_ref
            return fine_ref + box(coarse_target, self.smooth) - box(ref, self.smooth)
        if self.baseline_kind == "regression":
            return coarse_target + regression_slope(coarse_ref, coarse_target, self.smooth) * (
                fine_ref - coarse_ref
            )
        return fine_ref + coarse_target - coarse_ref

    def _residual(self) -> bool:
        return not getattr(self.inner, "residual_base", False)

    def _added(self, f: torch.Tensor, c1: torch.Tensor, c2: torch.Tensor) -> torch.Tensor | None:
        """What the wrapper adds to the inner network's output: the baseline; for networks
        that add the additive prediction themselves, the baseline's difference from it."""
        if self._residual():
            return self.baseline(f, c1, c2)
        if self.baseline_kind == "additive":
            return None
        return self.baseline(f, c1, c2) - (f + c2 - c1)

    def forward(
        self, fine_ref: torch.Tensor, coarse_ref: torch.Tensor, coarse_target: torch.Tensor
    ) -> torch.Tensor:
        n, b, h, w = fine_ref.shape
        f, c1, c2 = (self._flat(t) for t in (fine_ref, coarse_ref, coarse_target))
        if self.band_loop and f.device.type == "cpu" and not torch.is_grad_enabled() and len(f) > 1:
            # Inference on the CPU: one band image at a time is 1.7-2.7x faster than the bands
            # stacked as a batch (the activations of one image stay in the CPU's caches).
            out = torch.cat(
                [self.inner(f[i : i + 1], c1[i : i + 1], c2[i : i + 1]) for i in range(len(f))]
            )
        else:
            out = self.inner(f, c1, c2)
        added = self._added(f, c1, c2)
        if added is not None:
            out = out + added
        return out.reshape(n, b, h, w)

    def predict_pairs(
        self,
        fines: list[torch.Tensor],
        coarses: list[torch.Tensor],
        coarse_target: torch.Tensor,
        valid: list[torch.Tensor],
    ) -> torch.Tensor:
        if len(fines) == 1:
            return self(fines[0], coarses[0], coarse_target)
        if self._residual():
            # The mean of the single-pair predictions (each pair's baseline + correction,
            # the path the network was trained on); a pair invalid at a pixel takes no part.
            # At the start this is the two-pair additive baseline (the mean of the additive
            # predictions).
            preds = [self(f, c, coarse_target) for f, c in zip(fines, coarses)]
            ws = [v.to(coarse_target.dtype) for v in valid]
            total = sum(ws, torch.zeros_like(ws[0]))  # a tensor start: as sum(ws), typed
            out = sum(wk * pk for wk, pk in zip(ws, preds)) / total.clamp_min(1.0)
            return torch.where(total > 0, out, preds[0])
        n, b, h, w = coarse_target.shape
        fs = [self._flat(t) for t in fines]
        cs = [self._flat(t) for t in coarses]
        ct = self._flat(coarse_target)
        vs = [v.repeat_interleave(b, 0) for v in valid]
        # Networks that fuse pairs themselves (STFDCNN's weighted HPM).
        return self.inner.predict_pairs(fs, cs, ct, vs).reshape(n, b, h, w)

    def losses(
        self, fine: torch.Tensor, coarse: torch.Tensor, mask: torch.Tensor, content: str = "mse"
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """STFDCNN's single-date training losses (single-band batches)."""
        return self.inner.losses(
            self._flat(fine),
            self._flat(coarse),  # type: ignore[operator]  # an STFDCNNNet
            mask.repeat_interleave(fine.shape[1], 0),
            content,
        )

    # The student's distillation hooks (single-band batches: the flattening is a reshape).
    def features(
        self, fine_ref: torch.Tensor, coarse_ref: torch.Tensor, coarse_target: torch.Tensor
    ) -> torch.Tensor:
        return self.inner.features(
            *(
                self._flat(t)
                for t in (
                    fine_ref,
                    coarse_ref,  # type: ignore[operator]  # a StudentNet
                    coarse_target,
                )
            )
        )

    def head_output(
        self,
        feats: torch.Tensor,
        fine_ref: torch.Tensor,
        coarse_ref: torch.Tensor,
        coarse_target: torch.Tensor,
    ) -> torch.Tensor:
        n, b, h, w = fine_ref.shape
        f, c1, c2 = (self._flat(t) for t in (fine_ref, coarse_ref, coarse_target))
        out = self.inner.head_output(feats, f, c1, c2)  # type: ignore[operator]  # a StudentNet
        added = self._added(f, c1, c2)
        if added is not None:
            out = out + added
        return out.reshape(n, b, h, w)


@contextmanager
def whole_batch(net: nn.Module) -> Iterator[None]:
    """Within: ``net``, if an :class:`AgnosticNet`, runs every band of a batch in one pass
    (a forward hook then captures the features of all of them)."""
    if not isinstance(net, AgnosticNet):
        yield
        return
    before = net.band_loop
    net.band_loop = False
    try:
        yield
    finally:
        net.band_loop = before


#: The baseline a new network of each method gets (others: ``regression``). GAN-STFM needs
#: no coarse image at the reference date; STFDCNN's output is a full prediction.
DEFAULT_BASELINES = {"ganstfm": "smooth", "stfdcnn": "additive"}
#: Radius (fine px) of the regression baseline's boxes: 49 x 49 px, about 3 x 3 MODIS
#: pixels over Landsat.
REGRESSION_RADIUS = 24


def wrap(inner: FusionNet, baseline: str | None = None, radius: int | None = None) -> AgnosticNet:
    """``inner`` (single-band) wrapped with ``baseline`` (default: its method's,
    ``DEFAULT_BASELINES``) and the box radius of that baseline (default: 8 px for ``smooth``,
    ``REGRESSION_RADIUS`` for ``regression``)."""
    if baseline is None:
        baseline = DEFAULT_BASELINES.get(inner.name, "regression")
    if radius is None:
        radius = REGRESSION_RADIUS if baseline == "regression" else 8
    return AgnosticNet(inner, baseline, radius)


__all__ = [
    "BASELINES",
    "DEFAULT_BASELINES",
    "AgnosticNet",
    "box",
    "regression_slope",
    "sample_stats",
    "whole_batch",
    "wrap",
    "zero_last_layer",
]
