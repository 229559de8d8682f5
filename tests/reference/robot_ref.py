"""A slow, literal ROBOT for checking the fast one. Not used by the package.

Chen, S., Wang, J., Gong, P. (2023). ROBOT: A spatiotemporal fusion model toward seamless
data cube for global remote sensing applications. Remote Sensing of Environment 294, 113616.

Written from the equations as stated in the module docstring of ``stfusion.methods.robot``
(labels (R1)-(R4) there), without importing anything from ``stfusion``, for finite inputs
only: plain Python loops over blocks and pixels, the normalisation written out element by
element, and the constrained problem (R2) handed as it stands (the full stacked design
matrix, no QR reduction, no NNLS first) to ``scipy.optimize.minimize(method="SLSQP")``.
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
    """Mean over images of each image's min, and of its max, over the block (all bands)."""
    lo = sum(float(im.min()) for im in images) / len(images)
    hi = sum(float(im.max()) for im in images) / len(images)
    return lo, (hi - lo) if hi > lo else 1.0


def solve(design: np.ndarray, y: np.ndarray, budget: float) -> np.ndarray:
    """(R2): min ||y - D a||^2 s.t. a >= 0, sum a <= budget, by SLSQP on the full problem."""
    n = design.shape[1]
    scale = float(y @ y) or 1.0  # keeps SLSQP's tolerances relative

    def f(a: np.ndarray) -> float:
        r = y - design @ a
        return float(r @ r) / scale

    def g(a: np.ndarray) -> np.ndarray:
        return -2.0 * design.T @ (y - design @ a) / scale

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
) -> tuple[np.ndarray, list[np.ndarray]]:
    """(R1)-(R4) on finite ``(band, h, w)`` arrays; returns the prediction and the
    coefficients of every block (row-major order)."""
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
            rows: list[list[float]] = []
            ys: list[float] = []
            for b in range(nb):
                for y in range(tb.shape[1]):
                    for x in range(tb.shape[2]):
                        rows.append([(cb[i][b, y, x] - m_c) / s_c for i in range(n)])
                        ys.append((tb[b, y, x] - m_c) / s_c)
            for b in range(nb):
                for y in range(tb.shape[1]):
                    for x in range(tb.shape[2]):
                        rows.append([beta * (fb[i][b, y, x] - m_f) / s_f for i in range(n)])
                        ys.append(beta * (rb[b, y, x] - m_f) / s_f)
            alpha = solve(np.array(rows), np.array(ys), budget)
            alphas.append(alpha)
            pred = sum(alpha[i] * fb[i] for i in range(n))
            if math.fabs(float(alpha.sum()) - 1.0) >= tolerance:
                pred = pred + tb - sum(alpha[i] * cb[i] for i in range(n))
            acc[:, rs, cs] += pred
            cnt[:, rs, cs] += 1
    return acc / cnt, alphas
