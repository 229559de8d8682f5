"""STARFM moving-window kernel (Gao et al. 2006), numba, NaN-free inputs.

The caller (``stfusion.methods.starfm``) turns NaN into sentinels and precomputes every
per-pixel quantity, so the inner loop is branch-free and vectorises: offsets outside, output
pixels inside. Rows run in parallel (``prange``); ``nogil`` lets windows run in threads too.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

#: Stands for "invalid" in the kernel's inputs: far from any real value, finite for fastmath.
BIG = np.float32(1e30)


# No "nnan"/"ninf": the output is NaN where nothing survived. No "contract": FMA contraction
# differs between the loop bodies with and without the spread, and the prediction must not
# depend on whether the quality layer is asked for.
_FAST = {"nsz", "arcp", "afn", "reassoc"}


def starfm_accumulate(
    fsim: np.ndarray,
    sdiff: np.ndarray,
    tdiff: np.ndarray,
    invst: np.ndarray,
    pred: np.ndarray,
    thr: np.ndarray,
    smax: np.ndarray,
    tmax: np.ndarray,
    half: int,
    distance_scale: float,
    strict: bool,
    out: np.ndarray,
    spread: np.ndarray,
) -> None:
    """Weighted sum of candidate predictions for one band.

    ``fsim`` ``(pairs, nsim, H + 2 half, W + 2 half)``: the fine values of the similarity
    bands (BIG where invalid): the predicted band alone (``nsim = 1``, the USDA program's
    per-band test) or, e.g., red and NIR for every band (the paper's section II-B.1).
    ``thr`` ``(pairs, nsim, H, W)``: their thresholds at each centre, negative where the
    centre's value is invalid (nothing is similar to it). A neighbour is similar when
    ``|fsim(n) - fsim(c)| <= thr`` in every similarity band.
    Padded inputs, shape ``(pairs, H + 2 half, W + 2 half)``:
      ``sdiff`` |F - C| at the pair date (0 where the candidate is unusable: ``invst`` 0),
      ``tdiff`` |C_k - C_0| (0 where unusable),
      ``invst`` 1 / t_dis, t_dis = (S + q)(T + q) / q^2 (0 where the candidate is unusable,
                -1 where the candidate takes weight 1 without the distance factor: the
                USDA program's rule for t_dis below the combined uncertainty),
      ``pred``  F + C_0 - C_k, the candidate's own prediction (0 where unusable).
    Centre-indexed, shape ``(H, W)``: ``smax`` / ``tmax`` candidate-filter bounds.
    ``strict``: the paper's filter, ``S < smax and T < tmax``; otherwise the USDA program's,
    ``S <= smax or T <= tmax`` (StarFM_compute.c lines 303-306 reject a candidate when both
    exceed their bound).
    A candidate's weight is ``invst / D``, ``D = 1 + d / A`` with ``A = distance_scale`` in
    pixels (eq. 9; 0: D = 1), or 1 where ``invst`` is -1.
    ``out`` ``(H, W)`` receives the prediction, NaN where no candidate survived.
    ``spread`` ``(H, W)`` receives the weighted standard deviation of the candidates'
    predictions (the quality layer's uncertainty); pass a ``(0, 0)`` array to skip it.
    """
    starfm_accumulate_bands(
        fsim,
        sdiff[None],
        tdiff[None],
        invst[None],
        pred[None],
        thr,
        smax[None],
        tmax[None],
        half,
        distance_scale,
        strict,
        out[None],
        spread[None],
    )


@njit(inline="always")
def _similar_row(
    fsim: np.ndarray, thr: np.ndarray, k: int, yy: int, xo: int, y: int, half: int, sim: np.ndarray
) -> None:
    """``sim[x]``: the neighbour ``(yy, xo + x)`` of centre ``(y + half, half + x)`` is similar
    to it in pair ``k`` in every similarity band. The same decision as starfm_accumulate's
    BIG-masked copy, since ``thr`` is negative at an invalid centre."""
    w = sim.shape[0]
    yc = y + half
    for s in range(fsim.shape[1]):
        fs = fsim[k, s, yy, xo : xo + w]
        cs = fsim[k, s, yc, half : half + w]
        ts = thr[k, s, y]
        if s == 0:
            for x in range(w):
                sim[x] = abs(fs[x] - cs[x]) <= ts[x]
        else:
            for x in range(w):
                sim[x] = sim[x] & (abs(fs[x] - cs[x]) <= ts[x])


@njit(inline="always")
def _add_candidates(
    sim: np.ndarray,
    sn: np.ndarray,
    tn: np.ndarray,
    iv: np.ndarray,
    pn: np.ndarray,
    sm: np.ndarray,
    tm: np.ndarray,
    invd: np.float32,
    strict: bool,
    sw: np.ndarray,
    swp: np.ndarray,
    swpp: np.ndarray,
) -> None:
    """One offset, pair and band into the row sums: the loops of :func:`starfm_accumulate`
    with the similarity test done beforehand (``sim``). ``swpp`` empty: no spread."""
    zero = np.float32(0.0)
    w = sw.shape[0]
    # One loop per case, as in starfm_accumulate (LLVM does not unswitch them).
    if strict and swpp.shape[0] == 0:
        for x in range(w):
            ok = sim[x] & (sn[x] < sm[x]) & (tn[x] < tm[x])
            v = iv[x]
            wt = v * invd if v > zero else -v
            wt = wt if ok else zero
            sw[x] += wt
            swp[x] += wt * pn[x]
    elif strict:
        for x in range(w):
            ok = sim[x] & (sn[x] < sm[x]) & (tn[x] < tm[x])
            v = iv[x]
            wt = v * invd if v > zero else -v
            wt = wt if ok else zero
            p = pn[x]
            sw[x] += wt
            swp[x] += wt * p
            swpp[x] += wt * p * p
    elif swpp.shape[0] == 0:
        for x in range(w):
            ok = sim[x] & ((sn[x] <= sm[x]) | (tn[x] <= tm[x]))
            v = iv[x]
            wt = v * invd if v > zero else -v
            wt = wt if ok else zero
            sw[x] += wt
            swp[x] += wt * pn[x]
    else:
        for x in range(w):
            ok = sim[x] & ((sn[x] <= sm[x]) | (tn[x] <= tm[x]))
            v = iv[x]
            wt = v * invd if v > zero else -v
            wt = wt if ok else zero
            p = pn[x]
            sw[x] += wt
            swp[x] += wt * p
            swpp[x] += wt * p * p


@njit(parallel=True, nogil=True, fastmath=_FAST, cache=True)
def starfm_accumulate_bands(
    fsim: np.ndarray,
    sdiff: np.ndarray,
    tdiff: np.ndarray,
    invst: np.ndarray,
    pred: np.ndarray,
    thr: np.ndarray,
    smax: np.ndarray,
    tmax: np.ndarray,
    half: int,
    distance_scale: float,
    strict: bool,
    out: np.ndarray,
    spread: np.ndarray,
) -> None:
    """:func:`starfm_accumulate` for every band at once when all share the similarity bands
    (the paper's red and NIR): the similarity test runs once per row, offset and pair instead
    of once per band. Each band's sums are those of starfm_accumulate, in the same order.

    ``fsim``, ``thr``: as there. Per band, with a leading band axis: ``sdiff``, ``tdiff``,
    ``invst``, ``pred`` ``(bands, pairs, H + 2 half, W + 2 half)``; ``smax``, ``tmax``,
    ``out`` ``(bands, H, W)``; ``spread`` ``(bands, H, W)``, or ``(bands, 0, 0)`` to skip it.
    """
    want_spread = spread.shape[1] > 0
    nb = sdiff.shape[0]
    npairs = sdiff.shape[1]
    h = out.shape[1]
    w = out.shape[2]
    inv_a = np.float32(1.0 / distance_scale) if distance_scale > 0 else np.float32(0.0)
    n = 2 * half + 1
    for y in prange(h):
        sw = np.zeros((nb, w), dtype=np.float32)
        swp = np.zeros((nb, w), dtype=np.float32)
        swpp = np.zeros((nb, w if want_spread else 0), dtype=np.float32)
        sim = np.empty((n, npairs, w), dtype=np.bool_)
        for dy in range(-half, half + 1):
            yy = y + half + dy
            # The similarity of a whole window row first, then band by band: one band's rows
            # stay in L1 over the offsets (all bands per offset did not fit, and were slower).
            for i in range(n):
                for k in range(npairs):
                    _similar_row(fsim, thr, k, yy, i, y, half, sim[i, k])
            for b in range(nb):
                # Views taken once per band, not per offset: each costs reference counting,
                # which made the kernel 1.6x slower on 100-column windows.
                sm = smax[b, y]
                tm = tmax[b, y]
                swb = sw[b]
                swpb = swp[b]
                swppb = swpp[b]
                for dx in range(-half, half + 1):
                    invd = np.float32(1.0) / (
                        np.float32(1.0) + np.float32(np.sqrt(dx * dx + dy * dy)) * inv_a
                    )
                    xo = half + dx
                    for k in range(npairs):
                        _add_candidates(
                            sim[xo, k],
                            sdiff[b, k, yy, xo : xo + w],
                            tdiff[b, k, yy, xo : xo + w],
                            invst[b, k, yy, xo : xo + w],
                            pred[b, k, yy, xo : xo + w],
                            sm,
                            tm,
                            invd,
                            strict,
                            swb,
                            swpb,
                            swppb,
                        )
        for b in range(nb):
            for x in range(w):
                out[b, y, x] = swp[b, x] / sw[b, x] if sw[b, x] > 0 else np.nan
            if want_spread:
                for x in range(w):
                    if sw[b, x] > 0:
                        m = swp[b, x] / sw[b, x]
                        v = max(swpp[b, x] / sw[b, x] - m * m, np.float32(0.0))
                        spread[b, y, x] = np.sqrt(v)
                    else:
                        spread[b, y, x] = np.nan


# Plain IEEE arithmetic (no fastmath): the outputs must equal the numpy expressions of the
# paper-equation reference bit for bit.
@njit(parallel=True, nogil=True, cache=True)
def starfm_prepare(
    f: np.ndarray,
    c: np.ndarray,
    c0: np.ndarray,
    q: np.float32,
    half: int,
    use_t: bool,
    log_weight: bool,
    unity_below: np.float32,
    fsim: np.ndarray,
    sdiff: np.ndarray,
    tdiff: np.ndarray,
    invst: np.ndarray,
    pred: np.ndarray,
    sc: np.ndarray,
    tc: np.ndarray,
) -> None:
    """The per-pixel inputs of :func:`starfm_accumulate` for one pair and band, in one pass.

    ``f``, ``c``, ``c0``: padded ``(H + 2 half, W + 2 half)`` fine and coarse at the pair date
    and coarse at the target date, NaN invalid. Fills the padded ``fsim``, ``sdiff``,
    ``tdiff``, ``invst``, ``pred`` (as documented there) and the centre ``(H, W)`` arrays
    ``sc`` = |F - C| and ``tc`` = |C - C_0| (NaN where undefined) for the candidate filter.

    ``invst`` = 1 / t_dis with t_dis the combined spectral-temporal difference in units of the
    quantum ``q`` (the USDA program's DN): ``(S/q + 1)(T/q + 1)``, or ``S/q + 1`` when
    ``use_t`` is False (the program's one-pair weight, StarFM_compute.c lines 327-332);
    ``log_weight``: the paper's logarithmic form (eq. 11), ``ln(S/q + 2) ln(T/q + 2)``, i.e.
    ``ln(S' B + 1)`` with ``S' = S + q`` as in the other forms and ``B = 1/q``.
    Where ``t_dis < unity_below`` it is -1: weight 1 without the distance factor (lines
    334-336); ``unity_below = 0`` never does that.
    Rows run in parallel: this pass was a serial numpy step that capped the thread speed-up.
    """
    hp, wp = f.shape
    one = np.float32(1.0)
    two = np.float32(2.0)
    zero = np.float32(0.0)
    nan = np.float32(np.nan)
    inv_q = one / q
    for y in prange(hp):
        yc = y - half
        centre_row = 0 <= yc < hp - 2 * half
        for x in range(wp):
            fv = f[y, x]
            cv = c[y, x]
            c0v = c0[y, x]
            fok = np.isfinite(fv)
            cok = np.isfinite(cv)
            c0ok = np.isfinite(c0v)
            ok = fok and cok and c0ok
            s = abs(fv - cv)
            t = abs(cv - c0v)
            fsim[y, x] = fv if fok else BIG
            # 0, not BIG, for an unusable candidate: its weight is 0 through invst anyway, and
            # the candidate filter then passes it; rejected candidates cost up to 20x more in
            # the accumulation loop (measured: 52 s against 2.6 s for a 2000 x 2000 band whose
            # coarse images covered a quarter of the scene), though the result is the same.
            sdiff[y, x] = s if ok else zero
            tdiff[y, x] = t if ok else zero
            if log_weight:
                tdis = np.float32(np.log(s * inv_q + two)) * np.float32(np.log(t * inv_q + two))
            elif use_t:
                tdis = (s * inv_q + one) * (t * inv_q + one)
            else:
                tdis = s * inv_q + one
            iv = -one if tdis < unity_below else one / tdis
            invst[y, x] = iv if ok else zero
            pred[y, x] = fv + c0v - cv if ok else zero
            xc = x - half
            if centre_row and 0 <= xc < wp - 2 * half:
                sc[yc, xc] = s if fok and cok else nan
                tc[yc, xc] = t if cok and c0ok else nan


@njit(inline="always")
def _reduce_pairs(a: np.ndarray, y: int, x: int, paper: bool) -> np.float32:
    best = np.float32(np.nan)
    for k in range(a.shape[0]):
        v = a[k, y, x]
        if v == v and (best != best or (v > best if paper else v < best)):
            best = v
    return best


@njit(parallel=True, nogil=True, cache=True)
def starfm_bounds(
    sc: np.ndarray,
    tc: np.ndarray,
    sigma_lm: np.float32,
    sigma_mm: np.float32,
    paper: bool,
    smax: np.ndarray,
    tmax: np.ndarray,
) -> None:
    """The candidate-filter bounds: the max (``paper``) or min over the pairs valid at the
    centre of ``sc`` / ``tc`` (``(pairs, H, W)``, NaN invalid) plus ``sigma_lm`` /
    ``sigma_mm``; BIG where no pair is valid. Equals ``np.nanmax(sc, axis=0) + sigma_lm``
    (``nanmin`` for the reference filter) with NaN replaced by BIG, in parallel."""
    h, w = smax.shape
    for y in prange(h):
        for x in range(w):
            r = _reduce_pairs(sc, y, x, paper) + sigma_lm
            smax[y, x] = r if np.isfinite(r) else BIG
            r = _reduce_pairs(tc, y, x, paper) + sigma_mm
            tmax[y, x] = r if np.isfinite(r) else BIG
