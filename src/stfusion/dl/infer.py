"""Running a trained network over a scene or arrays, in tiles, without seams.

The scene is cut into ``tile`` x ``tile`` tiles anchored at the scene origin (never at a
processing window). Each tile is predicted from its inputs grown by ``overlap`` pixels on
every side and cropped back to the tile, so every output pixel is computed with at least
``overlap`` pixels of real context (or, at the scene border, of edge-replicated context).
When ``overlap`` covers the network's receptive field (``network.radius``), a tiled
prediction equals a whole-scene prediction up to floating-point summation order, and because
the tiles are anchored at the scene origin, *any* plan of processing windows gives bit-for-bit
the same output.

``blend="weighted"`` (arrays only, for direct use) instead averages the overlapping grown
tiles with weights that fall linearly towards each tile's outer edge: smooth also when
``overlap`` is below the receptive field, but no longer exactly equal to a whole-scene run.

Invalid inputs (NaN, masked): validity is per band for band-agnostic (format 2) checkpoints,
whose network runs band by band, and per pixel (every band) for band-tied ones. Invalid values
are filled with the band's centre (0 after normalising) before the network; an output band is
NaN where no pair has valid fine, coarse and target values in that band. The baseline's box
statistics (the regression slope's moments, the smooth baseline's box means) are taken over
the valid pixels only (:func:`masked_box`), so the fill reaches an output pixel only through
the network's own receptive field (``inner radius``): :meth:`Predictor.predict_window` can
report those pixels (``reach``; the deep methods' ``fallback`` quality bit). On fully valid
inputs the output is bit-for-bit that of the plain network.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from affine import Affine
from rasterio.windows import Window

from stfusion.dl.checkpoint import Checkpoint, load_checkpoint
from stfusion.dl.networks.agnostic import SLOPE_MAX, SLOPE_PRIOR, AgnosticNet, box_sum
from stfusion.errors import InvalidParameterError, warn
from stfusion.io import ArraySource, Grid, Source
from stfusion.run_config import PRECISIONS, is_inference_device
from stfusion.tiling import windows_covering


def resolve_device(device: str = "auto") -> torch.device:
    """``auto``: CUDA when available, else the CPU; ``cuda:N`` the GPU numbered N."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not is_inference_device(device):
        raise InvalidParameterError(f"device {device!r}: choose auto, cpu, cuda or cuda:N.")
    if device.startswith("cuda"):
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        index = int(device.split(":")[1]) if ":" in device else 0
        if index >= count:
            raise InvalidParameterError(
                f"device={device}: "
                + (
                    f"this machine has {count} CUDA GPU(s) (cuda:0..cuda:{count - 1})"
                    if count
                    else "no CUDA GPU is available"
                )
                + "; use cpu or auto."
            )
    return torch.device(device)


def check_precision(precision: str) -> str:
    """The arithmetic of the forward pass (Lightning's names, ``run_config.PRECISIONS``):
    float32, or autocast to float16 or bfloat16."""
    if precision not in PRECISIONS:
        raise InvalidParameterError(
            f"precision {precision!r}: choose {', '.join(PRECISIONS)} (32 = float32, the "
            "default; the mixed ones run most layers in half precision on a GPU)."
        )
    return precision


@dataclass
class Extent:
    """One grown tile's network inputs (normalised, edge-padded to the network's multiple)."""

    fines: list[np.ndarray]
    coarses: list[np.ndarray]
    target: np.ndarray
    masks: list[np.ndarray]  # per pair (B, H, W) (band-agnostic) or (1, H, W), padded
    valid: list[np.ndarray]  # per pair (B, h, w) or (1, h, w), inside the scene
    pad: tuple[tuple[int, int], ...]
    inside: Window


def masked_box(x: torch.Tensor, valid: torch.Tensor, radius: int) -> torch.Tensor:
    """:func:`stfusion.dl.networks.agnostic.box` over the pixels where ``valid`` (0/1, the
    shape of ``x``) is 1: the sum of the valid values over their count, 0 where a box holds
    none. Same operations as ``box``, so with every pixel valid the result is bit-for-bit
    ``box(x, radius)``."""
    if radius <= 0:
        return x
    v = valid.to(x.dtype)
    total, count = box_sum(x * v, radius), box_sum(v, radius)
    mean = torch.where(count > 0, total / count.clamp_min(1.0), torch.zeros_like(total))
    return mean.to(x.dtype)


def _masked_baseline(
    net: AgnosticNet, f: torch.Tensor, c1: torch.Tensor, c2: torch.Tensor, v: torch.Tensor
) -> torch.Tensor:
    """``net.baseline`` with its box statistics over the valid pixels ``v`` only."""
    r = net.smooth
    if net.baseline_kind == "smooth":
        ref = c1 if net.smooth_coarse_ref else f
        return f + masked_box(c2, v, r) - masked_box(ref, v, r)
    if net.baseline_kind == "regression":
        dtype = c1.dtype
        a, b = c1.float(), c2.float()
        m1, m2 = masked_box(a, v, r), masked_box(b, v, r)
        var = masked_box(a * a, v, r) - m1 * m1
        cov = masked_box(a * b, v, r) - m1 * m2
        slope = (cov + SLOPE_PRIOR) / (var.clamp_min(0.0) + SLOPE_PRIOR)
        return c2 + slope.clamp(0.0, SLOPE_MAX).to(dtype) * (f - c1)
    return f + c2 - c1


def _masked_single(
    net: AgnosticNet, f: torch.Tensor, c1: torch.Tensor, c2: torch.Tensor, v: torch.Tensor
) -> torch.Tensor:
    """``AgnosticNet.forward`` on flattened ``(N B, 1, H, W)`` inputs, the baseline's box
    statistics over the valid pixels ``v`` (same operations otherwise)."""
    if net.band_loop and f.device.type == "cpu" and not torch.is_grad_enabled() and len(f) > 1:
        out = torch.cat(
            [net.inner(f[i : i + 1], c1[i : i + 1], c2[i : i + 1]) for i in range(len(f))]
        )
    else:
        out = net.inner(f, c1, c2)
    if not getattr(net.inner, "residual_base", False):
        return out + _masked_baseline(net, f, c1, c2, v)
    if net.baseline_kind == "additive":
        return out
    return out + (_masked_baseline(net, f, c1, c2, v) - (f + c2 - c1))


def masked_predict_pairs(
    net: AgnosticNet,
    fines: list[torch.Tensor],
    coarses: list[torch.Tensor],
    coarse_target: torch.Tensor,
    valid: list[torch.Tensor],
) -> torch.Tensor:
    """``net.predict_pairs`` with per-band validity ``valid`` (per pair ``(N, B, H, W)``): a
    pair invalid in one band takes no part there only, and the baseline's box statistics
    cover valid pixels only. Bit-for-bit ``net.predict_pairs`` when everything is valid."""
    n, b, h, w = coarse_target.shape
    flat = net._flat
    ct = flat(coarse_target)
    vs = [flat(v.to(coarse_target.dtype)) for v in valid]
    if len(fines) > 1 and getattr(net.inner, "residual_base", False):
        # Networks that fuse pairs themselves (STFDCNN's weighted HPM; additive baseline).
        fs, cs = [flat(t) for t in fines], [flat(t) for t in coarses]
        return net.inner.predict_pairs(fs, cs, ct, vs).reshape(n, b, h, w)
    preds = [_masked_single(net, flat(f), flat(c), ct, v) for f, c, v in zip(fines, coarses, vs)]
    if len(preds) == 1:
        return preds[0].reshape(n, b, h, w)
    total = sum(vs, torch.zeros_like(vs[0]))
    out = sum(wk * pk for wk, pk in zip(vs, preds)) / total.clamp_min(1.0)
    return torch.where(total > 0, out, preds[0]).reshape(n, b, h, w)


def default_overlap(radius: int, multiple: int = 1) -> int:
    """The receptive-field radius rounded up to a multiple of 8 (and of ``multiple``)."""
    step = math.lcm(8, multiple)
    return max(step, -(-radius // step) * step)


class Predictor:
    """A checkpoint's network ready to predict, with its normalisation."""

    def __init__(
        self, checkpoint: Checkpoint | str, device: str = "auto", precision: str = "32"
    ) -> None:
        ck = checkpoint if isinstance(checkpoint, Checkpoint) else load_checkpoint(checkpoint)
        self.checkpoint = ck
        self.device = resolve_device(device)
        self.precision = check_precision(precision)
        if self.precision == "16-mixed" and self.device.type == "cpu":
            warn(
                "precision 16-mixed on the CPU: float16 arithmetic is emulated there, about 6x "
                "slower than 32 (measured on EDCSTFN); use 32 or bf16-mixed on the CPU."
            )
        self.net = self._network(ck).to(self.device)
        self.mean = ck.mean.astype(np.float32)[:, None, None]
        self.std = ck.std.astype(np.float32)[:, None, None]
        self.radius = int(self.net.radius)
        self.multiple = int(self.net.multiple)
        self.per_sample = ck.agnostic
        #: A network that runs band by band (format 2): validity is per band.
        self.band_agnostic = isinstance(self.net, AgnosticNet)
        #: Reach of the network itself (without the baseline's boxes, which skip invalid
        #: pixels): how far a filled input pixel can change the output.
        self.inner_radius = (
            int(self.net.inner.radius) if self.band_agnostic else int(self.net.radius)
        )

    def _network(self, ck: Checkpoint) -> Any:
        """The checkpoint's network (STFDCNN's predictor builds its own)."""
        return ck.network()

    def set_stats(self, fines: Sequence[np.ndarray]) -> None:
        """Band-agnostic checkpoints: normalise with the statistics of the fine reference
        image(s) of this scene (``(band, ...)`` samples, pooled), the same for every tile
        (:func:`stfusion.dl.networks.agnostic.sample_stats`). The band count follows."""
        from stfusion.dl.networks.agnostic import sample_stats

        if not self.per_sample:
            return
        count = fines[0].shape[0]
        pooled = np.concatenate([np.asarray(f).reshape(count, -1) for f in fines], axis=1)
        center, scale, _ = sample_stats(pooled)
        self.mean = center[:, None, None]
        self.std = scale[:, None, None]

    def check_tiling(self, tile: int, overlap: int) -> None:
        m = self.multiple
        if tile < m or tile % m or overlap < 0 or overlap % m:
            raise InvalidParameterError(
                f"{self.net.name}: tile ({tile}) and overlap ({overlap}) must be multiples of "
                f"{m} px (its pooling layers work on {m} x {m} blocks)."
            )

    def _normalise(self, a: np.ndarray) -> np.ndarray:
        return (a - self.mean) / self.std

    def extent_inputs(
        self,
        fines: Sequence[Source],
        coarses: Sequence[Source],
        target: Source,
        shape: tuple[int, int],
        rows: tuple[int, int],
        cols: tuple[int, int],
    ) -> Extent:
        """The network inputs of rows ``rows[0]..rows[1]`` x cols of a scene of ``shape``
        (may reach outside it: edge-replicated there), normalised and padded to the
        network's multiple; :meth:`forward` predicts them."""
        h, w = shape
        r0, r1 = rows
        c0, c1 = cols
        m = self.multiple
        r1 = r0 + -(-(r1 - r0) // m) * m
        c1 = c0 + -(-(c1 - c0) // m) * m
        ir0, ir1, ic0, ic1 = max(r0, 0), min(r1, h), max(c0, 0), min(c1, w)
        inside = Window(ic0, ir0, ic1 - ic0, ir1 - ir0)
        pad = ((0, 0), (ir0 - r0, r1 - ir1), (ic0 - c0, c1 - ic1))
        tgt = self._normalise(target.read(inside))
        ok_t = np.isfinite(tgt)
        f_in, c_in, valid = [], [], []
        for f_src, c_src in zip(fines, coarses):
            f = self._normalise(f_src.read(inside))
            c = self._normalise(c_src.read(inside))
            ok = np.isfinite(f) & np.isfinite(c) & ok_t
            # Band-agnostic networks run band by band: a band invalid here spoils only
            # itself; band-tied ones see every band at once.
            valid.append(ok if self.band_agnostic else ok.all(0, keepdims=True))
            f_in.append(np.pad(np.nan_to_num(f), pad, mode="edge"))
            c_in.append(np.pad(np.nan_to_num(c), pad, mode="edge"))
        t_in = np.pad(np.nan_to_num(tgt), pad, mode="edge")
        masks = [np.pad(v, pad, mode="edge") for v in valid]
        return Extent(f_in, c_in, t_in, masks, valid, pad, inside)

    def forward(self, batch: Sequence[Extent]) -> list[np.ndarray]:
        """One forward pass over extents of one padded shape, stacked on the batch axis;
        each prediction cropped to its part inside the scene (physical units, NaN where no
        pair is valid)."""
        dev = self.device

        def stacked(arrays: Sequence[np.ndarray]) -> torch.Tensor:
            a = np.stack([np.asarray(x, dtype=np.float32) for x in arrays])
            return torch.from_numpy(a).to(dev)

        n_pairs = len(batch[0].fines)
        fines = [stacked([e.fines[k] for e in batch]) for k in range(n_pairs)]
        coarses = [stacked([e.coarses[k] for e in batch]) for k in range(n_pairs)]
        masks = [stacked([e.masks[k] for e in batch]) for k in range(n_pairs)]
        target = stacked([e.target for e in batch])
        with torch.inference_mode(), self._autocast():
            if self.band_agnostic and not all(bool(m.all()) for m in masks):
                out = masked_predict_pairs(self.net, fines, coarses, target, masks)
            else:  # everything valid (or a band-tied network): the network as trained
                out = self.net.predict_pairs(fines, coarses, target, [m[:, :1] for m in masks])
        preds = out.float().cpu().numpy()
        result = []
        for pred, e in zip(preds, batch):
            top, left = e.pad[1][0], e.pad[2][0]
            pred = pred[:, top : top + e.inside.height, left : left + e.inside.width]
            pred = pred * self.std + self.mean
            none = ~np.any(e.valid, axis=0)  # (B, h, w) or (1, h, w): no pair valid
            pred[np.broadcast_to(none, pred.shape)] = np.nan
            result.append(pred.astype(np.float32))
        return result

    def reach(self, e: Extent, pred: np.ndarray) -> np.ndarray:
        """``(h, w)`` of the extent's part inside the scene: True where an output band has a
        value made with filled inputs, an input pixel of that band invalid (in some pair)
        within the network's own receptive field (the baseline's box statistics skip
        invalid pixels)."""
        from scipy.ndimage import maximum_filter

        bad = ~np.all(e.masks, axis=0)  # (B or 1, H, W), padded like the inputs
        h, w = int(e.inside.height), int(e.inside.width)
        if not bad.any():
            return np.zeros((h, w), bool)
        r = self.inner_radius
        near = maximum_filter(bad, size=(1, 2 * r + 1, 2 * r + 1), mode="nearest")
        top, left = e.pad[1][0], e.pad[2][0]
        near = near[:, top : top + h, left : left + w]
        return np.any(near & np.isfinite(pred), axis=0)

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.precision == "32":
            return contextlib.nullcontext()
        dtype = torch.float16 if self.precision == "16-mixed" else torch.bfloat16
        return torch.autocast(device_type=self.device.type, dtype=dtype)

    def predict_window(
        self,
        fines: Sequence[Source],
        coarses: Sequence[Source],
        target: Source,
        shape: tuple[int, int],
        window: Window,
        tile: int,
        overlap: int,
        batch: int = 1,
        reach: bool = False,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Any window of the scene, assembled from the scene-anchored tiles it touches,
        ``batch`` tiles of one size per forward pass; with ``reach``, also its ``(h, w)``
        :meth:`reach` of invalid inputs (all False without)."""
        r0, c0 = int(window.row_off), int(window.col_off)
        h, w = int(window.height), int(window.width)
        out = np.full((len(self.mean), h, w), np.nan, dtype=np.float32)
        near = np.zeros((h, w), bool)
        tiles = [
            Window(tc, tr, min(tile, shape[1] - tc), min(tile, shape[0] - tr))
            for tr in range(r0 // tile * tile, r0 + h, tile)
            for tc in range(c0 // tile * tile, c0 + w, tile)
        ]
        # Tiles grouped by size (the last row and column of the scene may be smaller), so
        # every forward pass stacks inputs of one shape.
        by_size: dict[tuple[int, int], list[Window]] = {}
        for t in tiles:
            by_size.setdefault((int(t.height), int(t.width)), []).append(t)
        step = max(1, batch)
        for group in by_size.values():
            for i in range(0, len(group), step):
                part = group[i : i + step]
                exts = [
                    self.extent_inputs(fines, coarses, target, shape, *_grown(t, overlap))
                    for t in part
                ]
                for t, e, pred in zip(part, exts, self.forward(exts)):
                    tr, tc = int(t.row_off), int(t.col_off)
                    dr, dc = tr - int(e.inside.row_off), tc - int(e.inside.col_off)
                    a0, a1 = max(tr, r0), min(tr + int(t.height), r0 + h)
                    b0, b1 = max(tc, c0), min(tc + int(t.width), c0 + w)
                    rows = slice(dr + a0 - tr, dr + a1 - tr)
                    cols = slice(dc + b0 - tc, dc + b1 - tc)
                    out[:, a0 - r0 : a1 - r0, b0 - c0 : b1 - c0] = pred[:, rows, cols]
                    if reach:
                        near[a0 - r0 : a1 - r0, b0 - c0 : b1 - c0] = self.reach(e, pred)[rows, cols]
        return out, near


def _ramp(n: int, lead: int, trail: int, overlap: int) -> np.ndarray:
    """1 inside, falling linearly over ``overlap`` px towards a grown edge (lead/trail px
    of the extent are growth beyond the tile); never 0."""
    x = np.ones(n, dtype=np.float64)
    if overlap > 0:
        d = np.minimum(np.arange(n) + (overlap - lead), (n - 1 - np.arange(n)) + (overlap - trail))
        x = np.clip((d + 1) / (overlap + 1), 1.0 / (overlap + 1), 1.0)
    return x


def _grown(tile: Window, overlap: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """The rows and columns (start, stop) of ``tile`` grown by ``overlap`` px on every side
    (may reach outside the scene): what :meth:`Predictor.extent_inputs` takes."""
    r, c = int(tile.row_off), int(tile.col_off)
    rows = (r - overlap, r + int(tile.height) + overlap)
    cols = (c - overlap, c + int(tile.width) + overlap)
    return rows, cols


def _image(a: Any, what: str) -> np.ndarray:
    """An in-memory image as float32 ``(band, y, x)``: a 2-D ``(y, x)`` array is one band."""
    arr = np.asarray(a, dtype=np.float32)
    if arr.ndim == 2:
        return arr[None]
    if arr.ndim != 3:
        raise InvalidParameterError(
            f"{what}: expected a (band, y, x) or (y, x) array, got shape {arr.shape}."
        )
    return arr


def _arrays_model(model: Predictor | Checkpoint | str, method: str, device: str) -> Predictor:
    """``predict_arrays``'s model: a predictor, a checkpoint or its path, or ``demo`` /
    ``shipped`` (the shipped weights of ``method``, as the estimators' ``weights``)."""
    if isinstance(model, Predictor):
        return model
    if isinstance(model, str) and model in ("demo", "shipped"):
        from stfusion.run_config import shipped_weights

        path = shipped_weights(method)
        if not path.exists():
            raise InvalidParameterError(
                f"weights {model!r}: no shipped weights of {method!r} ({path} is missing); "
                "give method= one of dcstfn, edcstfn, ganstfm, vitgan, student, stfdcnn, or "
                "a checkpoint path."
            )
        model = str(path)
    if method == "stfdcnn" or (
        not isinstance(model, Checkpoint) and str(model).endswith("stfdcnn_multisite.ckpt")
    ):
        from stfusion.dl.infer_stfdcnn import STFDCNNPredictor

        return STFDCNNPredictor(model, device)
    return Predictor(model, device)


def predict_arrays(
    model: Predictor | Checkpoint | str,
    pairs: Sequence[tuple[np.ndarray, np.ndarray]],
    coarse_target: np.ndarray,
    *,
    tile: int = 256,
    overlap: int | None = None,
    blend: str = "crop",
    device: str = "auto",
    batch: int = 1,
    method: str = "edcstfn",
) -> np.ndarray:
    """Predict from in-memory ``(band, y, x)`` arrays in physical units (no checks on
    bands or scale: :class:`stfusion.methods.deep` does those for scenes); a 2-D ``(y, x)``
    array is one band, and the result is then ``(1, y, x)`` (as the estimators return).

    ``model``: a :class:`Predictor`, a :class:`Checkpoint` or its path, or ``"demo"`` /
    ``"shipped"``: the shipped weights of ``method`` (default ``edcstfn``).

    ``blend="crop"``: halo-cropped tiles (exact when ``overlap >= radius``), ``batch`` tiles
    per forward pass; ``"weighted"``: linearly weighted averaging of the grown tiles.
    ``overlap`` (default: the receptive field rounded up to the network's multiple and 8)
    below the receptive field warns (:class:`stfusion.errors.STFusionWarning`) with
    ``blend="crop"``: tile borders may show seams.
    """
    pred = _arrays_model(model, method, device)
    arrays = [(_image(fi, "fine image"), _image(co, "coarse image")) for fi, co in pairs]
    tgt = _image(coarse_target, "coarse target")
    for fi, co in arrays:
        if fi.shape != tgt.shape or co.shape != tgt.shape:
            raise InvalidParameterError(
                f"pair shapes {fi.shape} and {co.shape} differ from the coarse target's "
                f"{tgt.shape}: give every image on the fine grid with the same bands."
            )
    pred.set_stats([fi for fi, _ in arrays])
    if overlap is None:
        overlap = default_overlap(pred.radius, pred.multiple)
    pred.check_tiling(tile, overlap)
    if blend == "crop" and overlap < pred.radius:
        warn(
            f"{pred.net.name}: overlap {overlap} px is below the receptive field "
            f"({pred.radius} px); tile borders may show seams (blend='weighted' smooths them)."
        )
    h, w = tgt.shape[-2:]
    grid = Grid(crs=None, transform=Affine.identity(), width=w, height=h)
    fines = [ArraySource(fi, grid) for fi, _ in arrays]
    coarses = [ArraySource(co, grid) for _, co in arrays]
    target = ArraySource(tgt, grid)
    shape = (h, w)
    if blend == "crop":
        whole = Window(0, 0, w, h)
        return pred.predict_window(fines, coarses, target, shape, whole, tile, overlap, batch)[0]
    if blend != "weighted":
        raise InvalidParameterError(f"blend {blend!r}: choose crop or weighted.")
    acc = np.zeros((target.count, h, w))
    wsum = np.zeros((target.count, h, w))
    for t in windows_covering(shape, tile):
        r, c, th, tw = int(t.row_off), int(t.col_off), int(t.height), int(t.width)
        ext = pred.extent_inputs(fines, coarses, target, shape, *_grown(t, overlap))
        p, inside = pred.forward([ext])[0], ext.inside
        ir, ic = int(inside.row_off), int(inside.col_off)
        ih, iw = int(inside.height), int(inside.width)
        wr = _ramp(ih, r - ir, ir + ih - (r + th), overlap)
        wc = _ramp(iw, c - ic, ic + iw - (c + tw), overlap)
        ok = np.isfinite(p)  # per band: a band may be NaN where the others are not
        wgt = np.where(ok, (wr[:, None] * wc[None, :])[None], 0.0)
        acc[:, ir : ir + ih, ic : ic + iw] += np.where(ok, p, 0.0) * wgt
        wsum[:, ir : ir + ih, ic : ic + iw] += wgt
    with np.errstate(invalid="ignore", divide="ignore"):
        out = acc / wsum
    out[wsum == 0] = np.nan
    return out.astype(np.float32)
