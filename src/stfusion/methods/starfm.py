"""STARFM: the Spatial and Temporal Adaptive Reflectance Fusion Model.

Gao, F., Masek, J., Schwaller, M., Hall, F. (2006). On the blending of the Landsat and MODIS
surface reflectance: predicting daily Landsat surface reflectance. IEEE TGRS 44(8), 2207-2218.

For each fine pixel (the centre of a ``window`` x ``window`` neighbourhood) and band:

1. Spectrally similar neighbours (section II-B.1): n is similar to c in pair k when
   ``|F_k(n, s) - F_k(c, s)| <= 2 sigma_k(s) / classes`` in every similarity band s, with
   ``sigma_k(s)`` the standard deviation of band s of pair k's fine image over the whole scene
   (as in the USDA reference program) or over the window (``threshold="window"``, as some
   ports). ``similarity_bands``: the paper "used surface reflectance of red and NIR to
   determine the spectrally similar pixels", one neighbour set for every band (``red,nir``,
   the default ``auto`` when the band roles are known); the USDA program tests each band on
   itself ("I just use a single band slice test here", StarFM_compute.c lines 258-259;
   ``each``, the ``auto`` choice when red and NIR are unknown). The paper gives no formula
   for the threshold ("based on the standard deviation ... and the number of classes"); 2
   sigma / classes is the program's (line 70).
2. Candidate filtering (section II-B.3, eqs. 13-16): ``S_k(n) < reduce_k S_k(c) + sigma_lm``
   and ``T_k(n) < reduce_k T_k(c) + sigma_mm``, with spectral difference ``S = |F_k - C_k|``
   (eq. 6), temporal difference ``T = |C_k - C_0|`` (eq. 7), ``sigma_lm = sqrt(sigma_l^2 +
   sigma_m^2)`` and ``sigma_mm = sqrt(2) sigma_m``. ``filter="paper"`` uses the paper's max
   over pairs and requires both conditions (eqs. 15-16); ``filter="reference"`` uses the min
   over pairs and either condition with ``<=``, as the USDA program does (StarFM_compute.c
   lines 303-306 reject a candidate only when both differences exceed their bound).
3. Weights (eqs. 8-10, 12): ``C = (S + q)(T + q) D``, ``D = 1 + d / A`` with ``d`` the
   distance in pixels and ``A = window // 2``; ``W = (1/C) / sum(1/C)`` over the candidates of
   *all* pairs together.
4. Prediction (eq. 5): ``sum W (F_k(n) + C_0(n) - C_k(n))``, per band.

The centre's S_k(c) enters the filter bound when F_k(c) and C_k(c) are valid, T_k(c) when
C_k(c) and C_0(c) are; a bound with no valid pair is infinite (no filtering on it).

Units: ``uncertainty`` (sigma_l = sigma_m) and the weight quantum ``q = uncertainty / 50`` are
in the data's units. ``uncertainty="auto"`` follows ``variable`` (``stfusion.methods.variables``,
inferred when ``auto``): reflectance 0.005 x scale (the USDA program's 50 DN; scale 10000 for
integers x 10000), NDVI 0.01 x scale, LST/other 0.5 % of the fine images' robust value range.
No output is clipped.

Weights: ``weight="log"`` (default since 2026-12-06) is the paper's logarithmic form (eq. 11,
"less sensitive to the spectral differences"), ``1 / (ln(S/q + 2) ln(T/q + 2) D)``:
``ln(S B + 1)`` with ``B = 1/q`` (10000 for reflectance, as the paper's B) and S + q for S,
as in eq. 10, so that a zero difference stays finite. ``weight="reference"`` is the USDA
program v1.2 (StarFM_compute.c lines
327-339) and ImageFusion, in units of the quantum q (the program's DN): ``t_dis = S/q + 1``
with one pair (T dropped, lines 327-330), ``(T/q + 1)(S/q + 1)`` with several (line 332); the
weight is ``1 / (t_dis D)``, or 1 without the distance factor when ``t_dis`` is below the
combined uncertainty (lines 334-336): the program computes it in integers from its 50 DN
uncertainties as 98 DN (lines 175-178), and q = uncertainty / 50 here, so the bound is the
same 98 quanta for every variable (``t_dis < 98`` on integers, applied as ``< 97.5``).
``weight="paper"`` always uses eq. 10, ``1 / ((S + q)(T + q) D)``.
``distance_scale`` is eq. 9's A in fine pixels (``auto``: ``window // 2``, as the paper's
first test, A = 750 m with a 1500 m window).

Invalid data: a NaN neighbour (fine, its coarse, or the coarse target) is never a candidate,
nor one whose fine value is NaN in a similarity band; a centre that is NaN in a similarity
band of pair k has no similar pixel in that pair. A pixel with no candidate takes the coarse
target value at that pixel (the older USDA rule, kept as a comment at StarFM_compute.c line
349; v1.2 writes the fill value, line 351); if that is NaN too the output is NaN.

Departures from the USDA reference program (and from ImageFusion's C++ port):

=====================  ======================================  ==============================
item                   stfusion (default)                      reference program
=====================  ======================================  ==============================
similar pixels         paper: similar in red and NIR, one set  each band on its own
                       for all bands, when the roles are       (lines 258-259)
                       known (``similarity_bands=each`` to
                       match)
candidate filter       paper: max over pairs, S and T both     min over pairs, S or T
                       (``filter="reference"`` to match)
weight                 the paper's eq. 11 (logarithmic);       its own form (327-339): one
                       ``weight="reference"``: the program's;  pair no T; weight 1 below the
                       ``weight="paper"``: eq. 10              combined uncertainty
similarity threshold   ``|dF| <= 2 std / classes`` (float)    ``|dF| < (int)(2 std / classes
                                                               + 0.5)`` in DN (lines 70, 259)
several pairs          candidates of all pairs in one sum      same (lines 223-290, 316-345)
zero S or T at centre  no special case                         none in v1.2 StarFM_compute.c
distance constant A    ``window // 2`` pixels                  max. search distance
                       (``distance_scale``)
out-of-range output    kept (no clipping)                      fill value outside the Landsat
                                                               data range (lines 366-370)
=====================  ======================================  ==============================
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from rasterio.windows import Window

from stfusion.bands import ROLES, band_indices, red_nir
from stfusion.errors import InvalidParameterError
from stfusion.io import Source
from stfusion.kernels.starfm import (
    BIG,
    starfm_accumulate,
    starfm_accumulate_bands,
    starfm_bounds,
    starfm_prepare,
)
from stfusion.methods.base import FusionMethod, Param
from stfusion.methods.params import (
    AUTO,
    BAND_ROLES,
    POSITIVE,
    MethodTags,
    StrOptions,
    Text,
    window_param,
    window_size,
)
from stfusion.methods.variables import CHOICES, resolve_variable
from stfusion.scene import Scene

#: Reference program defaults on its x10000 reflectance scale: uncertainty 50, quantum 1
#: (StarFM_main.c / the input file's LANDSAT_UNCERTAINTY, MODIS_UNCERTAINTY; the ``+ 1`` of
#: StarFM_compute.c lines 330 and 332), as reflectance.
REFLECTANCE_UNCERTAINTY = 0.005
#: NDVI = (N - R) / (N + R): an uncertainty of 0.005 in each reflectance gives about 0.01 in
#: NDVI for typical vegetation (N + R ~ 0.5), so twice the reflectance value.
NDVI_UNCERTAINTY = 0.01
QUANTUM_PER_UNCERTAINTY = 1.0 / 50.0
#: For lst and other: this fraction of the fine images' robust value range.
RANGE_UNCERTAINTY = 0.005


def _unity_below() -> float:
    """The USDA program's combined uncertainty in quanta (DN), below which a candidate's
    ``t_dis`` gives it weight 1 (StarFM_compute.c lines 175-178 and 334-336).

    With the program's uncertainty U = 50 DN (the quantum is U / 50 here, so U is always 50
    quanta) it computes in integers: ``r_msr_uncertain = r_lsr_uncertain = (int) sqrt(2) U
    = 70`` and ``combined_uncertain = (int) sqrt(70^2 + 70^2) = 98``, and compares the
    integer ``t_dis < 98``, i.e. ``t_dis <= 97``. Returned as 97.5 so that data stored as
    integer DN get the program's decisions exactly and float rounding cannot flip a tie.
    """
    u = 1.0 / QUANTUM_PER_UNCERTAINTY
    r = int(np.sqrt(u * u + u * u))
    return int(np.sqrt(r * r + r * r)) - 0.5


UNITY_BELOW = _unity_below()

log = logging.getLogger("stfusion.methods")


# The similarity threshold 2 std / classes is ESTARFM's too: its two parameters, declared once.


def classes_param(default: float) -> Param:
    """``classes`` of the similarity threshold (STARFM's and ESTARFM's defaults differ)."""
    return Param(
        "classes",
        default,
        POSITIVE,
        "",
        "assumed number of land-cover classes: similarity threshold = 2 std / classes",
    )


#: Where the std of the similarity threshold is taken.
THRESHOLD_PARAM = Param(
    "threshold",
    "scene",
    StrOptions(("scene", "window")),
    "",
    "std for the similarity threshold: over the scene (reference) or the window",
)


class STARFM(FusionMethod):
    """STARFM (Gao et al. 2006), one or more pairs, all bands. See the module docstring."""

    name = "starfm"
    title = "STARFM"
    paper = "Gao et al. 2006, IEEE TGRS 44(8) 2207-2218"
    tags = MethodTags(
        min_pairs=1,
        max_pairs=None,
        exact=("unchanged", "uniform_change"),
        quality=("fallback", "uncertainty"),
        variables=CHOICES,
    )
    params = (
        window_param(51, 1, "moving window size (odd); 51 = the reference's 750 m at 30 m"),
        classes_param(40),
        Param(
            "uncertainty",
            "auto",
            (AUTO, POSITIVE),
            "data units",
            "uncertainty of fine and coarse values (sigma_l = sigma_m); auto: 0.005 for "
            "reflectance, else 0.5% of the fine value range",
        ),
        THRESHOLD_PARAM,
        Param(
            "filter",
            "paper",
            StrOptions(("paper", "reference")),
            "",
            "candidate filter: paper (max over pairs, S and T) or reference (min, S or T)",
        ),
        Param(
            "weight",
            "log",
            StrOptions(("reference", "paper", "log")),
            "",
            "combined distance: reference (one pair: (S+q) D, no T, as the USDA program; "
            "several pairs: (S+q)(T+q) D), paper (always (S+q)(T+q) D, eq. 10) or log "
            "(ln(S/q+2) ln(T/q+2) D, eq. 11)",
        ),
        Param(
            "distance_scale",
            "auto",
            (AUTO, POSITIVE),
            "fine pixels",
            "A of the relative distance D = 1 + d/A (eq. 9): smaller favours near "
            "neighbours more; auto: window // 2",
        ),
        Param(
            "variable",
            "auto",
            StrOptions(CHOICES),
            "",
            "what the data measure (sets the uncertainty): auto (inferred, logged), "
            "reflectance, ndvi, lst or other",
        ),
        Param(
            "similarity_bands",
            "auto",
            Text("'auto', 'each' or a comma list such as 'red,nir' or '3,4'"),
            "",
            "bands a neighbour must be similar in: each (every band on its own, the USDA "
            "program), a comma list of roles or 1-based band numbers, similar in all of them "
            "(red,nir: the paper, section II-B.1), or auto (red,nir when the band roles are "
            "known, else each; logged)",
        ),
        BAND_ROLES,
    )

    # The parameters, stored by FusionMethod.__init__ (declared for the type checker).
    window: int | str
    classes: float
    uncertainty: float | str
    threshold: str
    filter: str
    weight: str
    distance_scale: float | str
    variable: str
    similarity_bands: str
    bands: str

    def __init__(
        self,
        *,
        window: int | str = "auto",
        classes: float = 40,
        uncertainty: float | str = "auto",
        threshold: str = "scene",
        filter: str = "paper",
        weight: str = "log",
        distance_scale: float | str = "auto",
        variable: str = "auto",
        similarity_bands: str = "auto",
        bands: str = "auto",
    ) -> None:
        super().__init__(
            window=window,
            classes=classes,
            uncertainty=uncertainty,
            threshold=threshold,
            filter=filter,
            weight=weight,
            distance_scale=distance_scale,
            variable=variable,
            similarity_bands=similarity_bands,
            bands=bands,
        )

    def _validate_params(self) -> None:
        spec = self.similarity_bands.strip().lower()
        if spec in ("auto", "each"):
            return
        for item in (t.strip() for t in spec.split(",")):
            if not (item.isdigit() or item in ROLES):
                raise InvalidParameterError(
                    f"starfm: similarity_bands={self.similarity_bands}: {item!r} is not a band "
                    f"role ({', '.join(ROLES)}) or a 1-based band number; give auto, each or a "
                    "comma list such as red,nir."
                )

    def halo(self) -> int:
        return window_size(self) // 2

    def bytes_per_pixel(self, bands: int, pairs: int) -> float:
        # inputs (2 images per pair + target) and output for all bands; then, per band, 5
        # padded arrays and 3 centre arrays per pair, 4 centre arrays and ~7 temporaries.
        # Measured with tracemalloc: 166 B/px for 6 bands and 1 pair (this gives 172).
        inputs = 4.0 * bands * (2 * pairs + 2)
        sim = getattr(self, "similarity_idx_", None)
        if sim is None:
            return inputs + 4.0 * 8 * pairs + 4.0 * 11
        # Shared similarity bands: every band's 4 padded arrays per pair and 2 bounds at once
        # (one kernel call for all bands), the similarity values and thresholds, a scratch
        # array, S and T at the centres. Measured with tracemalloc, 6 bands, red and NIR:
        # 255 B/px (275 with the quality layer) for 1 pair, this gives 284; 422 (442) for 2
        # pairs, this gives 456.
        prepared = 4.0 * bands * (4 * pairs + 2)
        return inputs + prepared + 4.0 * (2 * len(sim) + 3) * pairs + 4.0 * 4

    def _fit(self, scene: Scene) -> None:
        fines = [f for f, _ in scene.pairs]
        self.fine_std_ = np.stack([f.band_stats()["std"] for f in fines]).astype(np.float32)
        sample = np.concatenate([f.sample(1 << 18).ravel() for f in fines])
        sample = sample[np.isfinite(sample)]
        var = resolve_variable(str(self.variable), sample, scene.count, "starfm", scene.band_names)
        self.variable_ = var
        if self.uncertainty != "auto":
            unc = float(self.uncertainty)
        elif var.name == "reflectance":
            unc = REFLECTANCE_UNCERTAINTY * var.scale
        elif var.name == "ndvi":
            unc = NDVI_UNCERTAINTY * var.scale
        else:
            lo, hi = np.percentile(sample, [0.5, 99.5]) if sample.size else (0.0, 0.0)
            unc = RANGE_UNCERTAINTY * float(hi - lo) if hi > lo else REFLECTANCE_UNCERTAINTY
        self.uncertainty_ = unc
        self.quantum_ = unc * QUANTUM_PER_UNCERTAINTY
        self.similarity_idx_ = self._similarity_indices(scene)

    def _similarity_indices(self, scene: Scene) -> np.ndarray | None:
        """0-based indices of the similarity bands, or None for ``each``."""
        spec = self.similarity_bands.strip().lower()
        if spec == "each":
            return None
        if spec == "auto":
            idx = red_nir(scene.band_names, self.bands)
            if idx is not None:
                log.info(
                    "starfm: similar pixels must be similar in red and NIR (bands %d and %d), "
                    "as in the paper (similarity_bands=auto; each: every band on its own)",
                    idx[0] + 1,
                    idx[1] + 1,
                )
                return np.asarray(idx, dtype=np.int64)
            log.info(
                "starfm: similar pixels per band, each band on its own (the USDA program): the "
                "band roles do not name red and NIR (similarity_bands=auto; name them with "
                "bands=..., e.g. bands=green,red,nir, for the paper's red and NIR test)"
            )
            return None
        idx = band_indices(self.similarity_bands, scene.band_names, self.bands, method="starfm")
        return np.asarray(idx, dtype=np.int64)

    def _prepare(self, target: Source) -> None:
        pass

    def predict_window(self, window: Window) -> np.ndarray:
        return self._predict(window, False)[0]

    def predict_window_quality(self, window: Window) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        return self._predict(window, True)

    def _predict(self, window: Window, quality: bool) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        half = self.halo()
        fines, coarses, target = self.read_inputs(window, half)
        return starfm_window(
            fines,
            coarses,
            target,
            half=half,
            sim_threshold=self.fine_std_ * np.float32(2.0 / self.classes),
            uncertainty=self.uncertainty_,
            quantum=self.quantum_,
            threshold=self.threshold,
            filter=self.filter,
            classes=float(self.classes),
            use_t=self.weight != "reference" or len(fines) > 1,
            log_weight=self.weight == "log",
            distance_scale=half if self.distance_scale == "auto" else float(self.distance_scale),
            unity_below=UNITY_BELOW if self.weight == "reference" else 0.0,
            quality=quality,
            similarity=self.similarity_idx_,
        )


def _window_std(f: np.ndarray, half: int) -> np.ndarray:
    """Std of the valid pixels in each (2 half + 1)^2 window, centres only."""
    from scipy.ndimage import uniform_filter

    ok = np.isfinite(f)
    v = np.where(ok, f, 0.0).astype(np.float64)
    size = 2 * half + 1
    n = uniform_filter(ok.astype(np.float64), size, mode="constant")
    s1 = uniform_filter(v, size, mode="constant")
    s2 = uniform_filter(v * v, size, mode="constant")
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = s1 / n
        var = np.maximum(s2 / n - mean * mean, 0.0)
    std = np.sqrt(var)
    return std[half : f.shape[0] - half, half : f.shape[1] - half].astype(np.float32)


def _similarity_thresholds(
    fines: list[np.ndarray],
    bands: np.ndarray,
    half: int,
    sim_threshold: np.ndarray,
    threshold: str,
    classes: float,
) -> np.ndarray:
    """Centre thresholds ``(pairs, len(bands), H, W)`` of the similarity bands ``bands`` for
    :func:`starfm_accumulate`; -1 where the centre's value is invalid (nothing is similar)."""
    _, hp, wp = fines[0].shape
    h, w = hp - 2 * half, wp - 2 * half
    thr = np.empty((len(fines), len(bands), h, w), np.float32)
    for k, fine in enumerate(fines):
        for i, b in enumerate(bands):
            f = fine[b]
            if threshold == "window":
                t = _window_std(f, half) * np.float32(2.0 / classes)
            else:
                t = np.full((h, w), sim_threshold[k, b], np.float32)
            centre = f[half : half + h, half : half + w]
            thr[k, i] = np.where(np.isfinite(centre), t, np.float32(-1.0))
    return thr


def starfm_window(
    fines: list[np.ndarray],
    coarses: list[np.ndarray],
    target: np.ndarray,
    *,
    half: int,
    sim_threshold: np.ndarray,
    uncertainty: float,
    quantum: float,
    threshold: str = "scene",
    filter: str = "paper",
    classes: float = 40.0,
    use_t: bool = True,
    log_weight: bool = False,
    distance_scale: float | None = None,
    unity_below: float = 0.0,
    quality: bool = False,
    similarity: np.ndarray | None = None,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """STARFM on padded arrays (halo ``half`` on every side); returns the unpadded centre and
    its quality fields (``{}`` unless ``quality``).

    ``fines``/``coarses``: one ``(band, H + 2 half, W + 2 half)`` array per pair, NaN invalid.
    ``sim_threshold``: ``(pairs, band)`` scene-wide similarity thresholds. With ``quality``, the
    fields are ``fallback`` (1 where some band had no candidate and took the coarse target) and
    ``uncertainty`` (per band, the weighted standard deviation of the candidates' predictions).
    ``use_t``: the combined distance has the temporal factor ``(T + q)``; False drops it
    (``weight="reference"`` with one pair); ``log_weight``: eq. 11's logarithms instead.
    ``distance_scale``: A of ``D = 1 + d / A`` in pixels (None: ``half``).
    ``unity_below``: a candidate whose combined difference ``t_dis`` (in quanta, see
    :func:`stfusion.kernels.starfm.starfm_prepare`) is below it gets weight 1 without the
    distance factor (the USDA program); 0: never.
    ``similarity``: 0-based indices of the bands a neighbour must be similar in, the same for
    every predicted band (the paper: red and NIR); None: each band its own (the program).
    """
    npairs = len(fines)
    nb, hp, wp = target.shape
    h, w = hp - 2 * half, wp - 2 * half
    out = np.empty((nb, h, w), dtype=np.float32)
    a = float(half if distance_scale is None else distance_scale)
    band = _BandInputs(
        fines,
        coarses,
        half,
        np.float32(quantum),
        use_t,
        log_weight,
        np.float32(unity_below),
        np.float32(np.sqrt(2.0) * uncertainty),  # sigma_lm = sqrt(sigma_l^2 + sigma_m^2)
        np.float32(np.sqrt(2.0) * uncertainty),  # sigma_mm = sqrt(2) sigma_m
        filter == "paper",
    )
    spread = np.empty((nb, h, w) if quality else (nb, 0, 0), np.float32)
    sim_args = (half, sim_threshold, threshold, classes)
    if similarity is None:
        for b in range(nb):
            # Each band on its own: starfm_prepare writes the band's values into fsim.
            fsim = np.empty((npairs, 1, hp, wp), np.float32)
            thr = _similarity_thresholds(fines, np.array([b]), *sim_args)
            sd, td, invst, pred = np.empty((4, npairs, hp, wp), np.float32)
            smax, tmax = np.empty((h, w), np.float32), np.empty((h, w), np.float32)
            band.prepare(b, target[b], fsim[:, 0], sd, td, invst, pred, smax, tmax)
            starfm_accumulate(
                fsim, sd, td, invst, pred, thr, smax, tmax, half, a, band.paper, out[b], spread[b]
            )
    else:
        # One neighbour set for all bands: the similarity bands' values and thresholds are
        # built once per window, every band is prepared, and one kernel call tests similarity
        # once for all of them (starfm_prepare's copy of each band goes to a scratch array).
        fsim = np.stack([f[similarity] for f in fines]).astype(np.float32, copy=False)
        fsim[~np.isfinite(fsim)] = BIG
        thr = _similarity_thresholds(fines, similarity, *sim_args)
        scratch = np.empty((npairs, hp, wp), np.float32)
        sd, td, invst, pred = np.empty((4, nb, npairs, hp, wp), np.float32)
        smax, tmax = np.empty((nb, h, w), np.float32), np.empty((nb, h, w), np.float32)
        for b in range(nb):
            band.prepare(b, target[b], scratch, sd[b], td[b], invst[b], pred[b], smax[b], tmax[b])
        starfm_accumulate_bands(
            fsim, sd, td, invst, pred, thr, smax, tmax, half, a, band.paper, out, spread
        )
    # No candidate: the coarse target value.
    none = np.isnan(out)
    fallback = np.zeros((h, w), np.float32)
    fallback[none.any(axis=0)] = 1.0
    np.copyto(out, target[:, half : half + h, half : half + w], where=none)
    return out, ({"fallback": fallback, "uncertainty": spread} if quality else {})


@dataclass(frozen=True)
class _BandInputs:
    """Fills one band's inputs of the accumulation kernels (all pairs)."""

    fines: list[np.ndarray]
    coarses: list[np.ndarray]
    half: int
    q: np.float32
    use_t: bool
    log_weight: bool
    unity_below: np.float32
    sig_lm: np.float32
    sig_mm: np.float32
    paper: bool

    def prepare(
        self,
        b: int,
        c0: np.ndarray,
        fsim: np.ndarray,
        sd: np.ndarray,
        td: np.ndarray,
        invst: np.ndarray,
        pred: np.ndarray,
        smax: np.ndarray,
        tmax: np.ndarray,
    ) -> None:
        """``fsim``, ``sd``, ``td``, ``invst``, ``pred`` ``(pairs, H + 2 half, W + 2 half)``
        and the centre ``(H, W)`` filter bounds ``smax``, ``tmax`` of band ``b``."""
        h, w = smax.shape
        # Centre values of S (needs F_k, C_k) and T (needs C_k, C_0), NaN where undefined.
        sc = np.empty((len(self.fines), h, w), np.float32)
        tc = np.empty_like(sc)
        for k, (fine, coarse) in enumerate(zip(self.fines, self.coarses, strict=True)):
            starfm_prepare(
                fine[b],
                coarse[b],
                c0,
                self.q,
                self.half,
                self.use_t,
                self.log_weight,
                self.unity_below,
                fsim[k],
                sd[k],
                td[k],
                invst[k],
                pred[k],
                sc[k],
                tc[k],
            )
        # Centre bounds of the candidate filter, over pairs valid at the centre.
        starfm_bounds(sc, tc, self.sig_lm, self.sig_mm, self.paper, smax, tmax)
