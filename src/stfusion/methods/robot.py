"""ROBOT: robust optimisation-based spatiotemporal fusion over a time series of pairs.

Chen, S., Wang, J., Gong, P. (2023). ROBOT: A spatiotemporal fusion model toward seamless
data cube for global remote sensing applications. Remote Sensing of Environment 294, 113616.

n known pairs ``(F_i, C_i)`` (every fine image of the series that has a coarse image) and the
coarse target ``C_0``. The paper's text was not at hand: the steps follow its abstract and
the authors' demo code (github.com/shuangchencc/ROBOT, Python with SPAMS); the labels
(R1)-(R4) are ours, check them against the paper's section 2 before citing equation numbers.

(R1) Blocks. The scene is cut into square blocks of ``block`` fine pixels that start every
     ``step`` pixels from the scene's top-left corner (the last row/column of blocks is cut
     by the scene edge), so blocks overlap when ``step < block``.

(R2) Per block B, with every band and pixel of B stacked into one column per image, one set
     of coefficients ``alpha`` (n, one per pair, shared by all bands) solves::

         min  || c_0 - C alpha ||^2 + beta^2 || f_r - F alpha ||^2
         s.t. alpha >= 0,  sum_i alpha_i <= budget

     on images normalised per block: the coarse columns (the pairs' and the target's) by
     ``(x - m_C) / (M_C - m_C)`` with ``m_C``/``M_C`` the mean over the pairs' coarse images of
     each image's minimum/maximum over B (all bands), the fine columns likewise with the fine
     images' statistics. Where each coarse image is flat over B (one band, a coarse pixel
     larger than the block) ``M_C - m_C`` is 0; the coarse columns then take the fine span
     (and the reverse), a departure from the demo's ``+ 1e-6``. ``f_r`` is the *reference*
     fine image, the temporal-coherence term:
     by default the fine image of the pair whose coarse image is closest to the target (least
     mean squared difference over the scene); ``reference="weighted"`` weights every pair's
     fine image by the inverse square of that difference, so two pairs about as close
     share it; ``reference="nearest"`` takes the authors' demo's, the mean of the fine images
     of the nearest pair before and the nearest pair after the target in time. This is the
     L1-constrained non-negative lasso (SPAMS ``lasso`` mode 0, ``pos=True``) of the authors'
     code; here it is solved by ``scipy.optimize.nnls`` and, when the sum constraint is active, by
     ``scipy.optimize.minimize(method="SLSQP")`` on the same problem reduced by a QR
     factorisation. SPAMS adds 1e-10 to the Gram diagonal, which the authors' scaling of each
     block makes a ridge: ``solver="spams"`` adds it (:data:`SPAMS_RIDGE`).

(R3) The block's prediction applies ``alpha`` to the original (not normalised) images::

         P_B = F alpha

     and, when the coefficients do not sum to one (``|sum alpha - 1| >= tolerance``), the
     coarse residual of the combination is added (residual compensation)::

         P_B = F alpha + (c_0 - C alpha)

(R4) Overlapping block predictions are averaged per pixel.

Departures: the authors' demo clips the prediction to [0, 10000] (its reflectance scale);
stfusion does not clip (the scale of the inputs is the user's). Invalid data (the demo has
none): each term of the fit (R2) uses its own rows, the band-pixels of B where every image
of that term is finite (the coarse term: every pair's coarse image and the target; the
temporal term: every fine image and the reference); a block whose coarse term has no such
row predicts nothing, even where the temporal term has rows (the coarse term carries the
target), and the other blocks over those pixels decide, else NaN. In (R3),
a pixel where some pair's fine or coarse value is invalid uses the valid ones with their
weights rescaled to the same sum. Reference image: the demo's temporal neighbours need the
pair and target dates, which ``stfusion series`` does not give the method (and ``predict``
gives only when the file names hold them), so the default is a rule that needs no dates and
gives the same result through every command; ``nearest`` without dates falls back to it.

Blocks are anchored to the scene, and each block is computed from the block alone, so tiled
and threaded runs equal the whole-scene run bit for bit.
"""

from __future__ import annotations

import math
import warnings
from numbers import Integral, Real
from typing import Any

import numpy as np
from rasterio.windows import Window
from scipy.optimize import minimize, nnls

from stfusion.errors import InvalidParameterError
from stfusion.io import Source
from stfusion.methods.base import FusionMethod, Param
from stfusion.methods.params import Interval, MethodTags, StrOptions


def block_starts(size: int, block: int, step: int) -> list[int]:
    """Starts of the blocks along one axis of ``size`` pixels (R1)."""
    count = math.ceil(max(size - block, 0) / step) + 1
    return [i * step for i in range(count)]


def _stats(stack: np.ndarray) -> tuple[float, float]:
    """``(m, M - m)`` of (R2): mean over images of each image's min and max (NaN ignored);
    the span is 0 where every image is flat over the block (see ``_spans``)."""
    flat = stack.reshape(stack.shape[0], -1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        lo = float(np.nanmean(np.nanmin(flat, axis=1)))
        hi = float(np.nanmean(np.nanmax(flat, axis=1)))
    span = hi - lo
    return lo, span if span > 0 and math.isfinite(span) else 0.0


def _spans(s_c: float, s_f: float) -> tuple[float, float]:
    """Scales of the coarse and fine terms. A term whose images are each flat over the block
    (a coarse pixel larger than the block) takes the other term's span: the two measure one
    variable, and a fixed scale would weigh the terms by the data's units."""
    if s_c <= 0 and s_f <= 0:
        return 1.0, 1.0  # both in data units: their balance does not depend on the units
    return (s_c if s_c > 0 else s_f), (s_f if s_f > 0 else s_c)


#: SPAMS' lasso adds 1e-10 to the Gram matrix's diagonal; the authors' code first divides
#: the normalised block by 100 x (band-pixels of one image in the block), so on the
#: normalised problem that is a ridge of 1e-10 x (100 N)^2 = 1e-6 N^2 (``solver=spams``).
SPAMS_RIDGE = 1e-6


def solve_coefficients(
    design: np.ndarray, target: np.ndarray, budget: float, ridge: float = 0.0
) -> np.ndarray:
    """``argmin ||target - design a||^2 + ridge ||a||^2`` with ``a >= 0`` and
    ``sum a <= budget`` (R2; the ridge as rows ``sqrt(ridge) I`` against 0).

    ``design`` ``(rows, n)``, ``target`` ``(rows,)``, float64. The rows are first reduced by a
    QR factorisation (``||A a - y||^2 = ||R a - Q^T y||^2 + const``), then NNLS; when its
    solution breaks the sum constraint, SLSQP with the constraint, from the scaled NNLS
    solution.
    """
    n = design.shape[1]
    if ridge > 0:
        design = np.concatenate([design, math.sqrt(ridge) * np.eye(n)])
        target = np.concatenate([target, np.zeros(n)])
    if design.shape[0] > n:
        q, r = np.linalg.qr(design)
        a_mat, y = r, q.T @ target
    else:
        a_mat, y = design, target
    coef, _ = nnls(a_mat, y)
    if coef.sum() <= budget * (1 + 1e-12):
        return coef
    gram = a_mat.T @ a_mat
    lin = a_mat.T @ y
    res = minimize(
        lambda a: 0.5 * a @ gram @ a - lin @ a,
        coef * (budget / coef.sum()),
        jac=lambda a: gram @ a - lin,
        method="SLSQP",
        bounds=[(0.0, None)] * n,
        constraints=[
            {"type": "ineq", "fun": lambda a: budget - a.sum(), "jac": lambda a: -np.ones_like(a)}
        ],
        options={"ftol": 1e-15, "maxiter": 500},
    )
    return np.clip(res.x, 0.0, None)


def _combine(alpha: np.ndarray, stack: np.ndarray) -> np.ndarray:
    """``sum_i alpha_i x_i`` per pixel with invalid ``x_i`` left out and the valid weights
    rescaled to ``sum alpha`` (R3, and the reference ``f_r``); NaN where no image with
    weight is valid. One image at a time, so no copy of the whole stack."""
    acc = np.zeros(stack.shape[1:])
    w = np.zeros(stack.shape[1:])
    for a, x in zip(alpha, stack):
        if a != 0:
            ok = np.isfinite(x)
            acc += a * np.where(ok, x, 0.0)
            w += a * ok
    total = float(alpha.sum())
    if total == 0.0:
        return acc
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(w > 0, acc * (total / np.where(w > 0, w, 1.0)), np.nan)


def predict_block(
    fines: np.ndarray,
    coarses: np.ndarray,
    target: np.ndarray,
    reference: np.ndarray,
    beta: float,
    budget: float,
    tolerance: float,
    spams: bool = False,
) -> tuple[np.ndarray, np.ndarray] | None:
    """(R2)-(R3) for one block: ``(prediction (band, h, w) float64, alpha)``, or None when no
    band-pixel is valid in every coarse image and the target. ``fines``/``coarses``:
    ``(n, band, h, w)``."""
    n = fines.shape[0]
    m_c, s_c = _stats(coarses)
    m_f, s_f = _stats(fines)
    s_c, s_f = _spans(s_c, s_f)
    cc = ((coarses - m_c) / s_c).reshape(n, -1).T
    ff = ((fines - m_f) / s_f).reshape(n, -1).T * beta
    c0 = ((target - m_c) / s_c).reshape(-1)
    fr = ((reference - m_f) / s_f).reshape(-1) * beta
    ok_c = np.isfinite(cc).all(axis=1) & np.isfinite(c0)
    ok_f = np.isfinite(ff).all(axis=1) & np.isfinite(fr)
    design = np.concatenate([cc[ok_c], ff[ok_f]]) if beta > 0 else cc[ok_c]
    rhs = np.concatenate([c0[ok_c], fr[ok_f]]) if beta > 0 else c0[ok_c]
    if not ok_c.any():  # the coarse term carries the target: nothing to fit
        return None
    ridge = SPAMS_RIDGE * float(coarses[0].size) ** 2 if spams else 0.0
    alpha = solve_coefficients(design, rhs, budget, ridge)
    pred = _combine(alpha, fines)
    if abs(float(alpha.sum()) - 1.0) >= tolerance:
        pred = pred + (target - _combine(alpha, coarses))
    return pred, alpha


class ROBOT(FusionMethod):
    """ROBOT (Chen, Wang & Gong 2023): per block, the target as a sparse non-negative
    combination of every pair, with a temporal-coherence term; see the module docstring."""

    name = "robot"
    title = "ROBOT (robust optimisation over the time series)"
    paper = "Chen, Wang & Gong 2023, Remote Sensing of Environment 294, 113616"
    tags = MethodTags(
        min_pairs=2,
        max_pairs=None,
        series_all_pairs=True,
        pairs_note="ROBOT combines the images of a series of pairs; with one pair use fitfc, "
        "fsdaf or starfm.",
    )
    params = (
        Param(
            "block",
            30,
            Interval(Integral, 2, None),
            "fine px",
            "side of the square blocks fitted one by one (authors' demo: 30)",
        ),
        Param(
            "step",
            20,
            Interval(Integral, 1, None),
            "fine px",
            "distance between block starts; < block makes them overlap (demo: 20)",
        ),
        Param(
            "beta",
            1.0,
            Interval(Real, 0, None, closed="left"),
            "",
            "weight of the temporal-coherence term (fine images vs the reference; demo: 1)",
        ),
        Param(
            "budget",
            2.0,
            Interval(Real, 0, None, closed="neither"),
            "",
            "bound on the sum of the coefficients, the L1 constraint (demo lambda1: 2)",
        ),
        Param(
            "tolerance",
            0.02,
            Interval(Real, 0, None, closed="left"),
            "",
            "residual compensation when |sum of coefficients - 1| >= this (demo: 0.02)",
        ),
        Param(
            "reference",
            "closest",
            StrOptions(("closest", "weighted", "nearest", "mean")),
            "",
            "reference fine image of the temporal-coherence term: closest = the pair whose "
            "coarse image is closest to the target; weighted = every pair, weights inverse to "
            "the squared coarse distance; nearest = mean of the nearest pair "
            "before and after in time (authors' demo; closest without dates); mean = all",
        ),
        Param(
            "solver",
            "exact",
            StrOptions(("exact", "spams")),
            "",
            "exact = the constrained least-squares minimiser; spams = as the authors' code "
            "with SPAMS' lasso, whose fixed 1e-10 on the Gram diagonal is a ridge on their "
            "scaled blocks (their demo, with reference=nearest, to 3e-8 where it clips nothing)",
        ),
    )

    # The parameters, stored by FusionMethod.__init__ (declared for the type checker).
    block: int
    step: int
    beta: float
    budget: float
    tolerance: float
    reference: str
    solver: str

    def __init__(
        self,
        *,
        block: int = 30,
        step: int = 20,
        beta: float = 1.0,
        budget: float = 2.0,
        tolerance: float = 0.02,
        reference: str = "closest",
        solver: str = "exact",
    ) -> None:
        super().__init__(
            block=block,
            step=step,
            beta=beta,
            budget=budget,
            tolerance=tolerance,
            reference=reference,
            solver=solver,
        )

    def _validate_params(self) -> None:
        if self.step > self.block:
            raise InvalidParameterError(
                f"robot: step={self.step} > block={self.block} leaves pixels in no block; "
                "choose step <= block."
            )

    # ------------------------------------------------------------------------ contract

    def halo(self) -> int:
        # A window reads every block that touches it (at most ``block`` px beyond it).
        return int(self.block)

    def bytes_per_pixel(self, bands: int, pairs: int) -> float:
        return 8.0 * bands * (2 * pairs + 4) + 64.0

    def fitted_tags(self) -> dict[str, Any]:
        # which pairs made the reference image for this target (it may switch between the
        # dates of a series: docs/methods/robot.md)
        tags = super().fitted_tags()
        weights = getattr(self, "reference_weights_", None)
        if weights is not None:
            tags["STFUSION_ROBOT"] = {"reference_weights": np.round(weights, 4).tolist()}
        return tags

    def _prepare(self, target: Source) -> None:
        self.reference_weights_ = self._reference_weights(target)

    @property
    def reference_pairs_(self) -> list[int]:
        """The pairs whose fine images make the reference ``f_r`` (weight above zero)."""
        return [int(i) for i in np.flatnonzero(self.reference_weights_)]

    def _reference_weights(self, target: Source) -> np.ndarray:
        """Each pair's weight in the reference ``f_r`` (summing to 1)."""
        scene = self.scene_
        n = len(scene.pairs)
        pick = np.zeros(n)
        if self.reference == "mean":
            return np.full(n, 1.0 / n)
        dates, day = scene.pair_dates, scene.target_date
        if self.reference == "nearest" and dates is not None and day is not None:
            before = [i for i in range(n) if dates[i] <= day]
            after = [i for i in range(n) if dates[i] > day]
            if before:
                pick[max(before, key=lambda i: dates[i])] = 1.0
            if after:
                pick[min(after, key=lambda i: dates[i])] = 1.0
            return pick / pick.sum()
        # closest coarse image to the target, mean squared difference over the scene, read
        # in windows within the run's scan budget (--mem-limit)
        total, count = np.zeros(n), np.zeros(n, np.int64)
        for win in target.scan_windows():
            t = target.read(win).astype(np.float64)
            for i, (_, c) in enumerate(scene.pairs):
                d = (c.read(win).astype(np.float64) - t) ** 2
                ok = np.isfinite(d)
                total[i] += float(d[ok].sum())
                count[i] += int(ok.sum())
        err = np.array([total[i] / count[i] if count[i] else math.inf for i in range(n)])
        if self.reference == "weighted" and np.isfinite(err).any():
            if (err == 0).any():  # a pair identical to the target at the coarse scale
                return (err == 0) / float((err == 0).sum())
            w = 1.0 / err**2
            return w / w.sum()
        pick[int(np.argmin(err))] = 1.0
        return pick

    def predict_window(self, window: Window) -> np.ndarray:
        grid = self.grid_
        b, s = int(self.block), int(self.step)
        r0, c0 = int(window.row_off), int(window.col_off)
        r1, c1 = r0 + int(window.height), c0 + int(window.width)
        rows = [r for r in block_starts(grid.height, b, s) if r < r1 and r + b > r0]
        cols = [c for c in block_starts(grid.width, b, s) if c < c1 and c + b > c0]
        # the union of the blocks touching the window, read once
        ur0, uc0 = rows[0], cols[0]
        ur1, uc1 = min(rows[-1] + b, grid.height), min(cols[-1] + b, grid.width)
        region = Window(uc0, ur0, uc1 - uc0, ur1 - ur0)
        pairs = self.scene_.pairs
        fines = np.stack([f.read(region) for f, _ in pairs]).astype(np.float64)
        coarses = np.stack([c.read(region) for _, c in pairs]).astype(np.float64)
        target = self.target_.read(region).astype(np.float64)
        reference = _combine(self.reference_weights_, fines)
        nb = target.shape[0]
        acc = np.zeros((nb, r1 - r0, c1 - c0))
        cnt = np.zeros((nb, r1 - r0, c1 - c0))
        for r in rows:
            for c in cols:
                sl = (slice(r - ur0, min(r + b, ur1) - ur0), slice(c - uc0, min(c + b, uc1) - uc0))
                out = predict_block(
                    fines[(slice(None), slice(None), *sl)],
                    coarses[(slice(None), slice(None), *sl)],
                    target[(slice(None), *sl)],
                    reference[(slice(None), *sl)],
                    float(self.beta),
                    float(self.budget),
                    float(self.tolerance),
                    self.solver == "spams",
                )
                if out is None:
                    continue
                # the part of the block inside the window
                br0, br1 = max(r, r0), min(r + b, r1, grid.height)
                bc0, bc1 = max(c, c0), min(c + b, c1, grid.width)
                part = out[0][:, br0 - r : br1 - r, bc0 - c : bc1 - c]
                ok = np.isfinite(part)
                dst = (slice(None), slice(br0 - r0, br1 - r0), slice(bc0 - c0, bc1 - c0))
                acc[dst] += np.where(ok, part, 0.0)
                cnt[dst] += ok
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(cnt > 0, acc / cnt, np.nan).astype(np.float32)
