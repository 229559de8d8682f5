"""Coarse pixels for the methods that work on them (FSDAF, Fit-FC).

Two kinds, chosen by :func:`native_grid`:

- **Virtual blocks** (inputs already on one grid): coarse pixels rebuilt as ``R x R`` blocks
  anchored at the fine grid's origin; partial blocks at the right and bottom edges are allowed
  (their means use the pixels that exist). ``R`` must be an integer.
- **Native pixels** (:class:`NativeGrid`, a coarse image on its own grid: MODIS sinusoidal,
  another CRS or pixel size): every fine pixel belongs to the native coarse pixel that contains
  its centre (the centre transformed through the CRS transform into the coarse grid's pixel
  coordinates, floored), so a sheared or rotated MODIS pixel keeps its real footprint, and the
  coarse values are the native pixel values, not the values reprojected onto the fine grid.
  The ratio need not be an integer there.

Both are scene-wide and anchored on the scene (the origin, or the native grid), never on a
window, which keeps tiled runs identical to whole-scene runs.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from affine import Affine
from rasterio.windows import Window

from stfusion.errors import InvalidParameterError
from stfusion.io import AlignedSource, Grid, Source


def integer_ratio(ratio: float | None, method: str, own_grid: bool = False) -> int:
    """The ratio as an integer block size, or a clear error (``own_grid``: the coarse
    images are on their own grid, so the error cannot advise giving them so)."""
    if ratio is None:
        raise InvalidParameterError(
            f"{method} needs the resolution ratio R, the coarse sensor's pixel size over the "
            "fine one's. The inputs are on one grid (or the coarse pixels are less than 1.5 "
            "fine pixels across, so taken as already resampled), so it cannot be read from "
            "them: give it "
            "as an integer, --param ratio=R (Python: fit(pairs, ratio=R), or params={'ratio': R} "
            "in run_prediction() and run_series()); e.g. 16 for MODIS "
            "500 m over Landsat 30 m, 10 for MODIS 500 m over a 50 m grid."
        )
    if not (ratio >= 1 and math.isfinite(ratio)):
        raise InvalidParameterError(
            f"{method}: the resolution ratio must be at least 1, got {ratio}."
        )
    if abs(ratio - round(ratio)) > 1e-6 * max(1.0, ratio):
        near = round(ratio)
        if own_grid:  # a trial: the advice was to give what had been given
            raise InvalidParameterError(
                f"{method} rebuilds coarse pixels as R x R blocks of fine pixels, so it needs "
                f"an integer resolution ratio; the coarse images are on their own grid at "
                f"{ratio:g} fine pixels per coarse pixel. Leave the option out (its default "
                "uses the coarse images as they are), or resample them onto a grid whose "
                "pixels are a whole number of fine pixels."
            )
        raise InvalidParameterError(
            f"{method}: the inputs are on one grid, so coarse pixels are rebuilt as R x R "
            "blocks of fine pixels and the resolution ratio must be a positive integer; got "
            f"{ratio:g}. Give the nearest integer, --param ratio={near} (Python: "
            f"ratio={near}), to use {near} x {near} blocks, or give the coarse image on its own "
            "grid (the file as delivered, not resampled) so its real pixels are used."
        )
    return round(ratio)


def block_shape(shape: tuple[int, int], r: int) -> tuple[int, int]:
    return (-(-shape[0] // r), -(-shape[1] // r))


def block_mean(arr: np.ndarray, r: int, dtype: type = np.float32) -> np.ndarray:
    """Mean over ``r x r`` blocks anchored at (0, 0) of ``(..., y, x)``, NaN-aware, summed in
    float64 and returned as ``dtype``.

    A block with no valid pixel is NaN. Edge blocks may be partial.
    """
    a = np.asarray(arr, dtype=np.float64)
    *lead, h, w = a.shape
    bh, bw = block_shape((h, w), r)
    pad = np.full((*lead, bh * r, bw * r), np.nan)
    pad[..., :h, :w] = a
    blocks = pad.reshape(*lead, bh, r, bw, r)
    ok = np.isfinite(blocks)
    n = ok.sum(axis=(-3, -1))
    s = np.where(ok, blocks, 0.0).sum(axis=(-3, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        out = s / n
    out[n == 0] = np.nan
    return out.astype(dtype, copy=False)


def upsample_blocks(coarse: np.ndarray, r: int, shape: tuple[int, int]) -> np.ndarray:
    """Each coarse pixel repeated over its ``r x r`` block, cropped to the fine ``shape``."""
    up = np.repeat(np.repeat(coarse, r, axis=-2), r, axis=-1)
    return up[..., : shape[0], : shape[1]]


# ------------------------------------------------------------------------ native coarse pixels

#: Fine rows per strip when mapping the scene onto native coarse pixels.
NATIVE_STRIP = 256
#: Fine pixels (or native corners) mapped at once when the native grid is set up: its
#: temporaries (coordinates, indices) take about 60 bytes per pixel.
MAP_PIXELS = 1 << 18


def _apply(t: Any, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """An affine transform applied to coordinate arrays (float64)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    return t.a * x + t.b * y + t.c, t.d * x + t.e * y + t.f


def native_grid(coarse: Source, fine: Grid, ratio: float | None) -> NativeGrid | None:
    """The native coarse grid of ``coarse`` when it is on its own grid, else ``None`` (blocks)."""
    if not isinstance(coarse, AlignedSource) or not coarse.native_pixels or ratio is None:
        return None
    return NativeGrid(fine, coarse.native.grid, float(ratio))


class NativeGrid:
    """The native pixels of a coarse image on its own grid, seen from the fine grid.

    Native pixel ``(i, j)`` of the coarse file covers its pixel coordinates ``[j, j + 1) x [i,
    i + 1)``; only the native pixels holding a fine pixel centre are kept (``offset`` is the
    first one, ``shape`` their extent), so coarse arrays are ``(band, *shape)`` and coarse
    pixel ``(i, j)`` here is native pixel ``(i + offset[0], j + offset[1])``. Coordinates in
    coarse-pixel units put coarse pixel ``(i, j)``'s centre at ``(i, j)``.

    Scene-wide state (computed once, from the two grids only): ``pixels`` (fine pixels per
    coarse pixel), ``whole`` (the footprint lies inside the fine scene, so the fine pixels see
    all of it), each coarse pixel's bounding box in fine pixels and ``reach`` (the largest box
    side). ``r``: the ratio rounded, for windows sized in coarse pixels.
    """

    def __init__(self, fine: Grid, native: Grid, ratio: float) -> None:
        self.fine = fine
        self.native = native
        self.ratio = float(ratio)
        self.r = max(1, round(self.ratio))
        h, w = fine.shape
        # The native index is monotone along the scene's edges' normals (affine up to the
        # projection's curvature), so its extremes lie on the scene's border pixels.
        edge_r = np.concatenate([np.zeros(w), np.full(w, h - 1), np.arange(h), np.arange(h)])
        edge_c = np.concatenate([np.arange(w), np.arange(w), np.zeros(h), np.full(h, w - 1)])
        v, u = self._native_coords(edge_r, edge_c)
        i0, j0 = int(np.floor(v.min())), int(np.floor(u.min()))
        i1, j1 = int(np.floor(v.max())), int(np.floor(u.max()))
        self.offset = (i0, j0)
        self.shape = (i1 - i0 + 1, j1 - j0 + 1)
        n = self.shape[0] * self.shape[1]
        # int32: fine rows, columns and pixels per coarse pixel (half the memory of int64:
        # 40 MB less per million native pixels)
        pixels = np.zeros(n, dtype=np.int32)
        rmin = np.full(n, h, dtype=np.int32)
        rmax = np.full(n, -1, dtype=np.int32)
        cmin = np.full(n, w, dtype=np.int32)
        cmax = np.full(n, -1, dtype=np.int32)
        strip = max(1, min(NATIVE_STRIP, MAP_PIXELS // w))  # integer counts: any strip
        for row in range(0, h, strip):
            sh = min(strip, h - row)
            ids = self.flat_index(Window(0, row, w, sh)).ravel()
            rr = np.repeat(np.arange(row, row + sh, dtype=np.int32), w)
            cc = np.tile(np.arange(w, dtype=np.int32), sh)
            pixels += np.bincount(ids, minlength=n)
            np.minimum.at(rmin, ids, rr)
            np.maximum.at(rmax, ids, rr)
            np.minimum.at(cmin, ids, cc)
            np.maximum.at(cmax, ids, cc)
        self.pixels = pixels.reshape(self.shape)
        self.box = np.stack([rmin, rmax, cmin, cmax]).reshape(4, *self.shape)
        have = pixels > 0
        self.reach = int(max((rmax - rmin + 1)[have].max(), (cmax - cmin + 1)[have].max()))
        self.whole = self._whole()

    # ------------------------------------------------------------------------------ mapping

    def _native_coords(self, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Native pixel coordinates (row, col; continuous) of fine pixel centres."""
        xs, ys = _apply(self.fine.transform, np.asarray(cols) + 0.5, np.asarray(rows) + 0.5)
        if self.native.crs != self.fine.crs:
            from rasterio.warp import transform as warp_transform

            xs, ys = warp_transform(
                self.fine.continuous_crs(), self.native.continuous_crs(), np.ravel(xs), np.ravel(ys)
            )
            xs = np.asarray(xs).reshape(np.shape(rows))
            ys = np.asarray(ys).reshape(np.shape(rows))
        u, v = _apply(~self.native.transform, np.asarray(xs), np.asarray(ys))
        return np.asarray(v), np.asarray(u)

    def locate(self, window: Window) -> tuple[np.ndarray, np.ndarray]:
        """Coarse-pixel coordinates ``(y, x)`` ``(h, w)`` of the fine pixel centres of ``window``
        (it may reach outside the scene): coarse pixel ``(i, j)``'s centre is at ``(i, j)``."""
        r0, c0 = int(window.row_off), int(window.col_off)
        rows = np.arange(r0, r0 + int(window.height))
        cols = np.arange(c0, c0 + int(window.width))
        rr, cc = np.meshgrid(rows, cols, indexing="ij")
        v, u = self._native_coords(rr, cc)
        return v - 0.5 - self.offset[0], u - 0.5 - self.offset[1]

    def index(self, window: Window) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(ci, cj, y, x)``: the coarse pixel of each fine pixel of ``window`` (clipped to the
        kept native pixels; only pixels outside the scene can need the clip) and its
        coarse-pixel coordinates."""
        y, x = self.locate(window)
        ci = np.clip(np.floor(y + 0.5).astype(np.int64), 0, self.shape[0] - 1)
        cj = np.clip(np.floor(x + 0.5).astype(np.int64), 0, self.shape[1] - 1)
        return ci, cj, y, x

    def flat_index(self, window: Window) -> np.ndarray:
        """Flat coarse-pixel index ``i * shape[1] + j`` of each fine pixel of ``window``."""
        ci, cj, _, _ = self.index(window)
        return ci * self.shape[1] + cj

    def _whole(self) -> np.ndarray:
        """Coarse pixels whose four corners lie inside the fine scene."""
        from rasterio.warp import transform as warp_transform

        rows, cols = self.shape[0] + 1, self.shape[1] + 1
        inside = np.empty((rows, cols), dtype=bool)
        h, w = self.fine.shape
        eps = 1e-6
        step = max(1, MAP_PIXELS // cols)  # corner rows at a time: bounded temporaries
        for a in range(0, rows, step):
            ii, jj = np.meshgrid(
                np.arange(a, min(rows, a + step)) + self.offset[0],
                np.arange(cols) + self.offset[1],
                indexing="ij",
            )
            xs, ys = _apply(self.native.transform, jj, ii)
            if self.native.crs != self.fine.crs:
                xs, ys = warp_transform(
                    self.native.continuous_crs(), self.fine.continuous_crs(), xs.ravel(), ys.ravel()
                )
            fc, fr = _apply(~self.fine.transform, np.asarray(xs), np.asarray(ys))
            ok = (
                (np.asarray(fr) >= -eps)
                & (np.asarray(fr) <= h + eps)
                & (np.asarray(fc) >= -eps)
                & (np.asarray(fc) <= w + eps)
            )
            inside[a : a + step] = ok.reshape(ii.shape)
        return inside[:-1, :-1] & inside[1:, :-1] & inside[:-1, 1:] & inside[1:, 1:]

    # ------------------------------------------------------------------------------- values

    def lattice_shift(self, source: Source) -> tuple[int, int] | None:
        """``(rows, columns)`` to add to this native grid's pixel indices to find the same
        pixel in ``source``'s own file, when ``source`` is a coarse image whose pixels are
        this grid's (the same CRS, pixel size and orientation, its origin a whole number of
        pixels away: another window of the product, a GeoTIFF export beside its HDF tile);
        else None. Files of one product cut to other extents were taken for other grids, so
        their values were averaged from the fine grid (Fit-FC moved by up to 0.077)."""
        if not isinstance(source, AlignedSource):
            return None
        other = source.native.grid
        if other.same_as(self.native):
            return (0, 0)
        t = other.transform
        u, v = ~t * (self.native.transform.c, self.native.transform.f)
        du, dv = round(u), round(v)
        if abs(u - du) > 1e-3 or abs(v - dv) > 1e-3:
            return None
        shifted = Grid(
            other.crs, t * Affine.translation(du, dv), self.native.width, self.native.height
        )
        return (dv, du) if shifted.same_as(self.native) else None

    def on_native_grid(self, source: Source) -> bool:
        """Whether ``source`` is a coarse image on this native grid's pixels."""
        return self.lattice_shift(source) is not None

    def values(self, source: Source, rows: tuple[int, int] | None = None) -> np.ndarray:
        """Coarse pixel values ``(band, *shape)`` float64 of ``source`` (``rows``: only coarse
        rows ``[i0, i1)``, for an image on this native grid).

        A coarse image on this native grid's pixels (its file of any extent) gives its own
        pixel values (NaN beyond the file); anything else (a coarse image on another grid,
        one already on the fine grid) the mean of its fine-grid values over each native
        footprint.
        """
        shift = self.lattice_shift(source)
        if shift is not None:
            assert isinstance(source, AlignedSource)
            i0, i1 = rows if rows is not None else (0, self.shape[0])
            row, col = self.offset[0] + shift[0] + i0, self.offset[1] + shift[1]
            win = Window(col, row, self.shape[1], i1 - i0)
            return source.native.read(win).astype(np.float64)
        means = self.footprint_means(source)
        return means if rows is None else means[:, rows[0] : rows[1]]

    def footprint_means(self, source: Source) -> np.ndarray:
        """NaN-aware mean of a fine-grid image over each coarse pixel's fine pixels."""
        n = self.shape[0] * self.shape[1]
        h, w = self.fine.shape
        s = np.zeros((source.count, n))
        k = np.zeros((source.count, n))
        for row in range(0, h, NATIVE_STRIP):
            win = Window(0, row, w, min(NATIVE_STRIP, h - row))
            ids = self.flat_index(win).ravel()
            a = source.read(win).reshape(source.count, -1).astype(np.float64)
            for b in range(source.count):
                ok = np.isfinite(a[b])
                s[b] += np.bincount(ids[ok], a[b][ok], minlength=n)
                k[b] += np.bincount(ids[ok], minlength=n)
        with np.errstate(invalid="ignore", divide="ignore"):
            out = s / k
        out[k == 0] = np.nan
        return out.reshape(source.count, *self.shape)

    def describe(self) -> str:
        return (
            f"native coarse pixels: {self.shape[0]} x {self.shape[1]} of {self.native.describe()}"
            f", ground ratio {self.ratio:.4g}"
        )


def cubic_at(values: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Bicubic (Keys, a = -0.5) interpolation of ``values`` ``(band, H, W)`` (NaN-free) at
    coarse-pixel coordinates ``(y, x)`` (any shape; pixel ``(i, j)`` centred on ``(i, j)``),
    mirrored beyond the edges (half-sample symmetric, as ``cubic_taps``). float64
    ``(band, *y.shape)``."""
    from stfusion.kernels.fitfc import KEYS_A

    def taps(u: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        f = np.floor(u)
        t = u - f
        idx = f.astype(np.int64)[..., None] + np.arange(-1, 3)
        d = np.abs(t[..., None] - np.arange(-1, 3))
        a = KEYS_A
        near = ((a + 2) * d - (a + 3)) * d * d + 1
        far = ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
        wt = np.where(d <= 1, near, np.where(d < 2, far, 0.0))
        idx = np.mod(idx, 2 * n)
        idx = np.where(idx >= n, 2 * n - 1 - idx, idx)
        return idx, wt

    v = np.asarray(values, dtype=np.float64)
    ti, wi = taps(np.asarray(y, np.float64), v.shape[1])
    tj, wj = taps(np.asarray(x, np.float64), v.shape[2])
    out = np.zeros((v.shape[0], *np.shape(y)))
    for p in range(4):
        for q in range(4):
            out += v[:, ti[..., p], tj[..., q]] * (wi[..., p] * wj[..., q])
    return out


def window_region(grid: NativeGrid, window: Window, margin: int) -> tuple[int, int, int, int]:
    """Fine rows ``[y0, y1)`` and columns ``[x0, x1)`` holding every fine pixel of each coarse
    pixel that has a fine pixel within ``margin`` of ``window`` (clipped to the scene): the
    native counterpart of "whole blocks around the window"."""
    h, w = grid.fine.shape
    r0 = max(0, int(window.row_off) - margin)
    c0 = max(0, int(window.col_off) - margin)
    r1 = min(h, int(window.row_off) + int(window.height) + margin)
    c1 = min(w, int(window.col_off) + int(window.width) + margin)
    ci, cj, _, _ = grid.index(Window(c0, r0, c1 - c0, r1 - r0))
    box = grid.box[:, ci, cj]
    return (int(box[0].min()), int(box[1].max()) + 1, int(box[2].min()), int(box[3].max()) + 1)
