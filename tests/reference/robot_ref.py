"""A slow, literal ROBOT for checking the fast one. Not used by the package.

Chen, S., Wang, J., Gong, P. (2023). ROBOT: A spatiotemporal fusion model toward seamless
data cube for global remote sensing applications. Remote Sensing of Environment 294, 113616.

Written from the equations as stated in the module docstring of ``stfusion.methods.robot``
(labels (R1)-(R4) there) and ``docs/methods/robot.md``, without importing anything from
``stfusion``: plain Python loops over blocks and pixels, the normalisation written out element
by element, and the constrained problem (R2) handed as it stands (the full stacked design
matrix, no QR reduction, no NNLS first) to ``scipy.optimize.minimize(method="SLSQP")``.

Missing data (NaN; the docstring's "Invalid data" rule, read as follows):

* (R2) statistics: each image's minimum and maximum over its finite values in the block; the
  mean over the images that have one.
* (R2) rows: each band-pixel of the coarse term enters when the target and every pair's
  coarse image are finite there; each band-pixel of the fine term when the reference and
  every pair's fine image are (every image involved in that row). A block without any coarse
  row (the target unknown over the whole block) predicts nothing.
* (R3) per band-pixel, ``sum_i a_i x_i`` over the images x_i that are finite there, times
  ``sum a / sum_(valid i) a_i`` (the weights rescaled to the same sum), for the fine and the
  coarse combination alike; NaN where no image with a weight is finite (0 if every a_i is 0).
* (R4) the mean over the blocks whose prediction at the pixel is finite; NaN if none.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import minimize


def starts(size: int, block: int, step: int) -> list[int]:
    """(R1) block starts along one axis; the last block is cut by the edge."""
    out = [0]
    while out[-1] + block < size:
        out.append(out[-1] + step)
    return out


def stats(images: list[np.ndarray]) -> tuple[float, float]:
    """Mean over images of each image's min, and of its max, over the finite values of the
    block (all bands); images without any are left out."""
    mins, maxs = [], []
    for im in images:
        vals = [float(v) for v in im.ravel() if math.isfinite(v)]
        if vals:
            mins.append(min(vals))
            maxs.append(max(vals))
    if not mins:
        return 0.0, 0.0
    lo, hi = sum(mins) / len(mins), sum(maxs) / len(maxs)
    return lo, (hi - lo) if hi > lo else 0.0


def combine(alpha: np.ndarray, images: list[np.ndarray], b: int, y: int, x: int) -> float:
    """(R3) ``sum_i a_i x_i`` at one band-pixel over the finite x_i, rescaled to ``sum a``."""
    total = float(alpha.sum())
    acc = weight = 0.0
    for a, im in zip(alpha, images):
        v = float(im[b, y, x])
        if math.isfinite(v):
            acc += float(a) * v
            weight += float(a)
    if total == 0.0:
        return acc
    return acc * total / weight if weight > 0 else math.nan


def solve(design: np.ndarray, y: np.ndarray, budget: float, ridge: float = 0.0) -> np.ndarray:
    """(R2): min ||y - D a||^2 + ridge ||a||^2 s.t. a >= 0, sum a <= budget, by SLSQP on the
    full problem."""
    n = design.shape[1]
    scale = float(y @ y) or 1.0  # keeps SLSQP's tolerances relative

    def f(a: np.ndarray) -> float:
        r = y - design @ a
        return (float(r @ r) + ridge * float(a @ a)) / scale

    def g(a: np.ndarray) -> np.ndarray:
        return (-2.0 * design.T @ (y - design @ a) + 2.0 * ridge * a) / scale

    res = minimize(
        f,
        np.full(n, 1.0 / n),
        jac=g,
        method="SLSQP",
        bounds=[(0.0, None)] * n,
        constraints=[{"type": "ineq", "fun": lambda a: budget - a.sum()}],
        options={"ftol": 1e-16, "maxiter": 2000},
    )
    return np.clip(res.x, 0.0, None)


def robot(
    fines: list[np.ndarray],
    coarses: list[np.ndarray],
    target: np.ndarray,
    reference: np.ndarray,
    block: int = 30,
    step: int = 20,
    beta: float = 1.0,
    budget: float = 2.0,
    tolerance: float = 0.02,
    solver: str = "exact",
) -> tuple[np.ndarray, list[np.ndarray]]:
    """(R1)-(R4) on ``(band, h, w)`` arrays (NaN: missing, see the module docstring);
    returns the prediction and the coefficients of every block that predicts (row-major
    order)."""
    n = len(fines)
    nb, h, w = target.shape
    acc = np.zeros((nb, h, w))
    cnt = np.zeros((nb, h, w))
    alphas = []
    for r in starts(h, block, step):
        for c in starts(w, block, step):
            rs, cs = slice(r, min(r + block, h)), slice(c, min(c + block, w))
            fb = [f[:, rs, cs].astype(np.float64) for f in fines]
            cb = [x[:, rs, cs].astype(np.float64) for x in coarses]
            tb = target[:, rs, cs].astype(np.float64)
            rb = reference[:, rs, cs].astype(np.float64)
            m_c, s_c = stats(cb)
            m_f, s_f = stats(fb)
            # a flat term (span 0) takes the other's span; both flat: data units
            if s_c == 0.0 and s_f == 0.0:
                s_c = s_f = 1.0
            elif s_c == 0.0:
                s_c = s_f
            elif s_f == 0.0:
                s_f = s_c
            rows: list[list[float]] = []
            ys: list[float] = []
            bh, bw = tb.shape[1], tb.shape[2]
            for b in range(nb):
                for y in range(bh):
                    for x in range(bw):
                        vals = [float(cb[i][b, y, x]) for i in range(n)] + [float(tb[b, y, x])]
                        if all(math.isfinite(v) for v in vals):
                            rows.append([(v - m_c) / s_c for v in vals[:n]])
                            ys.append((vals[n] - m_c) / s_c)
            if not rows:
                continue  # the target is unknown over the whole block: nothing to fit
            for b in range(nb):
                for y in range(bh):
                    for x in range(bw):
                        vals = [float(fb[i][b, y, x]) for i in range(n)] + [float(rb[b, y, x])]
                        if beta > 0 and all(math.isfinite(v) for v in vals):
                            rows.append([beta * (v - m_f) / s_f for v in vals[:n]])
                            ys.append(beta * (vals[n] - m_f) / s_f)
            # SPAMS' 1e-10 on the Gram diagonal of the authors' blocks, which they divide by
            # 100 x (band-pixels of one image in the block) before solving
            ridge = 1e-10 * (100.0 * nb * bh * bw) ** 2 if solver == "spams" else 0.0
            alpha = solve(np.array(rows), np.array(ys), budget, ridge)
            alphas.append(alpha)
            compensate = math.fabs(float(alpha.sum()) - 1.0) >= tolerance
            for b in range(nb):
                for y in range(bh):
                    for x in range(bw):
                        v = combine(alpha, fb, b, y, x)
                        if compensate:
                            v += float(tb[b, y, x]) - combine(alpha, cb, b, y, x)
                        if math.isfinite(v):
                            acc[b, r + y, c + x] += v
                            cnt[b, r + y, c + x] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(cnt > 0, acc / np.where(cnt > 0, cnt, 1), np.nan), alphas
