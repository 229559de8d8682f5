"""STARFM's all-bands kernel against its per-band kernel, bit for bit.

With shared similarity bands (the paper's red and NIR) ``starfm_window`` makes one
``starfm_accumulate_bands`` call for all bands; ``starfm_accumulate`` (the per-band path) is
the oracle. The estimator against the slow reference: ``test_starfm.py``.
"""

from __future__ import annotations

import numpy as np
import pytest

from stfusion.kernels.starfm import (
    BIG,
    starfm_accumulate,
    starfm_accumulate_bands,
    starfm_bounds,
    starfm_prepare,
)


@pytest.mark.parametrize("spread", [False, True])
@pytest.mark.parametrize("strict", [True, False])
@pytest.mark.parametrize("npairs", [1, 3])
def test_all_bands_kernel_equals_per_band_kernel(npairs: int, strict: bool, spread: bool) -> None:
    """Shared similarity bands: the all-bands kernel (one similarity test per row, offset and
    pair) gives the per-band kernel's prediction and spread bit for bit, on set-up kernel
    inputs with NaN holes (invalid neighbours and centres) and the weight-1 rule."""
    rng = np.random.default_rng(npairs)
    nb, half, h, w = 3, 3, 20, 24
    hp, wp = h + 2 * half, w + 2 * half
    sim_bands = [2, 0]

    def image() -> np.ndarray:
        a = np.round(rng.uniform(0.05, 0.4, (nb, hp, wp)) * 1e3) * np.float32(1e-3)
        a[rng.random(a.shape) < 0.05] = np.nan
        return a.astype(np.float32)

    fines, coarses, c0 = [image() for _ in range(npairs)], [image() for _ in range(npairs)], image()
    fsim = np.stack([f[sim_bands] for f in fines])
    fsim[np.isnan(fsim)] = BIG
    centre = fsim[:, :, half : half + h, half : half + w]
    thr = np.where(centre < BIG, np.float32(0.03), np.float32(-1.0)).astype(np.float32)
    sd, td, invst, pred = np.empty((4, nb, npairs, hp, wp), np.float32)
    smax, tmax = np.empty((2, nb, h, w), np.float32)
    scratch = np.empty((hp, wp), np.float32)
    sc, tc = np.empty((2, npairs, h, w), np.float32)
    q, unity, sig = np.float32(1e-3), np.float32(97.5), np.float32(0.02)
    for b in range(nb):
        for k in range(npairs):
            f, c = fines[k][b], coarses[k][b]
            out = (sd[b, k], td[b, k], invst[b, k], pred[b, k], sc[k], tc[k])
            starfm_prepare(f, c, c0[b], q, half, True, False, unity, scratch, *out)
        starfm_bounds(sc, tc, sig, sig, strict, smax[b], tmax[b])
    assert (invst == -1).any() and (invst > 0).any() and (invst == 0).any()
    got = np.empty((nb, h, w), np.float32)
    got_spread = np.empty((nb, h, w) if spread else (nb, 0, 0), np.float32)
    starfm_accumulate_bands(
        fsim, sd, td, invst, pred, thr, smax, tmax, half, float(half), strict, got, got_spread
    )
    assert np.isnan(got).any() and np.isfinite(got).mean() > 0.5
    for b in range(nb):
        want = np.empty((h, w), np.float32)
        want_spread = np.empty((h, w) if spread else (0, 0), np.float32)
        starfm_accumulate(
            fsim,
            sd[b],
            td[b],
            invst[b],
            pred[b],
            thr,
            smax[b],
            tmax[b],
            half,
            float(half),
            strict,
            want,
            want_spread,
        )
        assert want.tobytes() == got[b].tobytes()
        assert want_spread.tobytes() == got_spread[b].tobytes()
