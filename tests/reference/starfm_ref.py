"""A slow, literal STARFM for checking the fast one. Not used by the package.

Gao, F., Masek, J., Schwaller, M., Hall, F. (2006). On the blending of the Landsat and MODIS
surface reflectance: predicting daily Landsat surface reflectance. IEEE TGRS 44(8), 2207-2218.

Written from the paper and from the conventions in the module docstring of
``stfusion.methods.starfm``, without importing anything from ``stfusion``: one output pixel
and one band at a time, explicit loops over the window and the pairs, plain Python floats
(float64). Paper notation: L = fine (Landsat), M = coarse (MODIS), t_k = pair date,
t_0 = target date; here F_k = L(t_k), C_k = M(t_k), C_0 = M(t_0), c = the centre pixel,
n = a neighbour in the window.

Equations as cited below: (5) the weighted prediction, (6) spectral difference S,
(7) temporal difference T, (8) distance d, (9) relative distance D, (10) combined distance
C = S T D, (12) normalised weight W = (1/C) / sum(1/C); section II-B.1 for the spectrally
similar neighbours ("we used surface reflectance of red and NIR to determine the spectrally
similar pixels", a threshold from the fine image's standard deviation and the number of
classes: 2 sigma / m as in the USDA program) and section II-B.3 for the candidate filter,
eqs. (13)-(14), with the uncertainty margins sigma_lm = sqrt(sigma_l^2 + sigma_m^2) and
sigma_mm = sqrt(2) sigma_m, eqs. (15)-(16).

Conventions of stfusion (see ``stfusion.methods.starfm``):

* sigma_l = sigma_m = ``uncertainty``, so sigma_lm = sigma_mm = sqrt(2) * uncertainty.
* C = (S + q)(T + q) D with the weight quantum q (keeps 1/C finite when S or T is 0)
  (``weight="paper"``, eq. 10). ``weight="reference"`` is the USDA program v1.2
  (StarFM_compute.c lines 327-339), in units of q (the program's DN): ``t_dis = S/q + 1``
  with one pair, ``(T/q + 1)(S/q + 1)`` with several; the unnormalised weight is
  ``1 / (t_dis D)``, or 1 (no distance factor) when ``t_dis`` is below the combined
  uncertainty, which the program computes in integers as 98 DN for its 50 DN uncertainty
  (lines 175-178; q = uncertainty / 50 here): ``t_dis < 98`` on integers, taken here as
  ``t_dis < 97.5``.
* ``weight="log"``: the paper's logarithmic form (eq. 11), C = ln(S B + 1) ln(T B + 1) D,
  with B = 1 / q (the paper's 10000 for reflectance) and S + q, T + q for S and T as in
  eq. 10 (so C > 0): C = ln(S/q + 2) ln(T/q + 2) D.
* D = 1 + d / A, d the Euclidean distance in fine pixels, A = ``distance_scale`` (default
  window // 2).
* Similarity threshold of pair k, band b: 2 * std / classes, the population std (ddof=0) of
  the valid fine pixels of pair k over the whole scene (``threshold="scene"``) or over the
  window around the centre (``threshold="window"``). Similarity bands: the predicted band
  alone (``similarity_bands=None``: the USDA program's per-band test) or the same listed
  bands for every predicted band (e.g. red and NIR, the paper). A neighbour is similar in
  pair k when |F_k,s(n) - F_k,s(c)| <= threshold_k,s in every similarity band s; pair k
  needs a finite F_k,s(c) in every similarity band for this test, and the neighbour a finite
  F_k,s(n).
* Candidate filter: S_k(n) < S_bound and T_k(n) < T_bound (``filter="paper"``) or
  S_k(n) <= S_bound or T_k(n) <= T_bound (``filter="reference"``: the program rejects a
  candidate when both exceed their bound, StarFM_compute.c lines 303-306), with
  S_bound = reduce_k S_k(c) + sigma_lm, T_bound = reduce_k T_k(c) + sigma_mm, reduce = max
  ("paper") or min ("reference") over the pairs whose centre S_k(c) (resp. T_k(c)) is finite;
  a bound with no such pair is +inf.
* A neighbour with a NaN in F_k, C_k or C_0 is not a candidate of pair k; pixels outside the
  scene are invalid. Candidates of all pairs enter one weighted sum.
* No candidate: the output is C_0(c) (NaN if that is NaN).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

Grid2D = list[list[float]]

#: The USDA program's combined uncertainty for its 50 DN uncertainties: (int) sqrt(70^2 +
#: 70^2) = 98 with 70 = (int) sqrt(50^2 + 50^2); its integer test t_dis < 98 as a float bound.
REFERENCE_UNITY_BELOW = 97.5


def _finite(*values: float) -> bool:
    return all(math.isfinite(v) for v in values)


def _population_std(values: list[float]) -> float:
    """sqrt(mean((v - mean)^2)), ddof = 0; NaN for no values."""
    if not values:
        return math.nan
    mean = math.fsum(values) / len(values)
    return math.sqrt(math.fsum((v - mean) ** 2 for v in values) / len(values))


def scene_std(fine_band: np.ndarray) -> float:
    """Population std of the valid pixels of one fine band over the whole scene."""
    return _population_std(
        [v for v in fine_band.astype(np.float64).ravel().tolist() if math.isfinite(v)]
    )


def window_std(fine: Grid2D, y: int, x: int, half: int) -> float:
    """Population std of the valid fine pixels in the window (clipped to the scene)."""
    h, w = len(fine), len(fine[0])
    values = []
    for yy in range(y - half, y + half + 1):
        for xx in range(x - half, x + half + 1):
            if 0 <= yy < h and 0 <= xx < w and math.isfinite(fine[yy][xx]):
                values.append(fine[yy][xx])
    return _population_std(values)


def predict_pixel(
    F: list[Grid2D],
    C: list[Grid2D],
    C0: Grid2D,
    y: int,
    x: int,
    *,
    half: int,
    sim: list[list[Grid2D]],
    thresholds: list[list[float]],
    sigma_lm: float,
    sigma_mm: float,
    quantum: float,
    filter: str,
    weight: str = "paper",
    distance_scale: float | None = None,
) -> float:
    """STARFM prediction of one band at the centre pixel (y, x).

    ``sim[k]``: the fine grids of pair k's similarity bands, ``thresholds[k]`` their
    thresholds at this centre."""
    h, w = len(C0), len(C0[0])
    pairs = range(len(F))

    # Candidate-filter bounds from the centre pixel (eqs. 15-16), over the pairs whose
    # centre spectral (6) / temporal (7) difference is defined.
    s_centre = [abs(F[k][y][x] - C[k][y][x]) for k in pairs if _finite(F[k][y][x], C[k][y][x])]
    t_centre = [abs(C[k][y][x] - C0[y][x]) for k in pairs if _finite(C[k][y][x], C0[y][x])]
    reduce = max if filter == "paper" else min
    s_bound = reduce(s_centre) + sigma_lm if s_centre else math.inf
    t_bound = reduce(t_centre) + sigma_mm if t_centre else math.inf

    A = half if distance_scale is None else distance_scale  # (9): scales the distance
    sum_w = 0.0  # denominator of (12)
    sum_wp = 0.0  # numerator of (5) with the unnormalised weights 1/C
    for k in pairs:
        centres = [band[y][x] for band in sim[k]]
        if not _finite(*centres):
            continue  # no similarity test possible for this pair
        for yy in range(y - half, y + half + 1):
            for xx in range(x - half, x + half + 1):
                if not (0 <= yy < h and 0 <= xx < w):
                    continue  # outside the scene = invalid
                f, c, c0 = F[k][yy][xx], C[k][yy][xx], C0[yy][xx]
                if not _finite(f, c, c0):
                    continue
                # spectrally similar neighbour (section II-B.1), in every similarity band
                if not all(
                    abs(band[yy][xx] - centre) <= thr  # False for a NaN neighbour
                    for band, centre, thr in zip(sim[k], centres, thresholds[k], strict=True)
                ):
                    continue
                S = abs(f - c)  # (6)
                T = abs(c - c0)  # (7)
                # candidate filter (section II-B.3, eqs. 15-16)
                if filter == "paper":
                    accept = S < s_bound and T < t_bound
                else:  # USDA program: rejected only when both exceed their bound
                    accept = S <= s_bound or T <= t_bound
                if not accept:
                    continue
                d = math.sqrt((yy - y) ** 2 + (xx - x) ** 2)  # (8)
                D = 1.0 + d / A if A > 0 else 1.0  # (9); window 1 has only d = 0
                if weight == "reference":
                    # USDA v1.2, in quanta (DN): one pair has no T
                    t_dis = S / quantum + 1.0
                    if len(F) > 1:
                        t_dis *= T / quantum + 1.0
                    w_n = 1.0 if t_dis < REFERENCE_UNITY_BELOW else 1.0 / (t_dis * D)
                elif weight == "log":  # (11) with S + q, T + q and B = 1 / q
                    w_n = 1.0 / (
                        math.log((S + quantum) / quantum + 1.0)
                        * math.log((T + quantum) / quantum + 1.0)
                        * D
                    )
                else:
                    w_n = 1.0 / ((S + quantum) * (T + quantum) * D)  # (10), (12) unnormalised
                sum_w += w_n
                sum_wp += w_n * (c0 + f - c)  # (5): M(t0) + L(tk) - M(tk)
    if sum_w > 0.0:
        return sum_wp / sum_w  # (5) with W = (1/C) / sum(1/C), (12)
    return C0[y][x]  # no candidate: the coarse target value (NaN if NaN)


def starfm_reference(
    fines: Sequence[np.ndarray],
    coarses: Sequence[np.ndarray],
    target: np.ndarray,
    *,
    window: int,
    classes: float = 40.0,
    uncertainty: float,
    quantum: float,
    threshold: str = "scene",
    filter: str = "paper",
    weight: str = "paper",
    similarity_bands: Sequence[int] | None = None,
    distance_scale: float | None = None,
) -> np.ndarray:
    """STARFM over a whole scene; arrays ``(band, y, x)``, NaN = invalid; returns float64.

    ``similarity_bands``: 0-based indices of the bands a neighbour must be similar in, for
    every predicted band (the paper's red and NIR); None: each band on its own (the USDA
    program)."""
    if window < 1 or window % 2 == 0:
        raise ValueError(f"window must be a positive odd number, got {window}")
    if threshold not in ("scene", "window") or filter not in ("paper", "reference"):
        raise ValueError(f"bad threshold={threshold!r} or filter={filter!r}")
    half = window // 2
    sigma_lm = math.sqrt(uncertainty**2 + uncertainty**2)  # sigma_l = sigma_m = uncertainty
    sigma_mm = math.sqrt(2.0) * uncertainty
    nb, h, w = target.shape
    out = np.full((nb, h, w), np.nan)
    grids = [[np.asarray(f[b], np.float64).tolist() for b in range(nb)] for f in fines]
    scene_thr = [[2.0 * scene_std(np.asarray(f[b])) / classes for b in range(nb)] for f in fines]
    for b in range(nb):
        F = [g[b] for g in grids]
        C = [np.asarray(c[b], np.float64).tolist() for c in coarses]
        C0 = np.asarray(target[b], np.float64).tolist()
        bands = [b] if similarity_bands is None else list(similarity_bands)
        sim = [[g[s] for s in bands] for g in grids]
        for y in range(h):
            for x in range(w):
                if threshold == "window":
                    thr = [[2.0 * window_std(G, y, x, half) / classes for G in Gk] for Gk in sim]
                else:
                    thr = [[scene_thr[k][s] for s in bands] for k in range(len(fines))]
                out[b, y, x] = predict_pixel(
                    F,
                    C,
                    C0,
                    y,
                    x,
                    half=half,
                    sim=sim,
                    thresholds=thr,
                    sigma_lm=sigma_lm,
                    sigma_mm=sigma_mm,
                    quantum=quantum,
                    filter=filter,
                    weight=weight,
                    distance_scale=distance_scale,
                )
    return out
