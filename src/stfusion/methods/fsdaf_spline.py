"""FSDAF's thin-plate splines through the coarse values (paper step 4).

``spline_radius = 0``: one spline through every valid coarse centre, solved once (small scenes
only). ``spline_radius > 0``: every coarse pixel has its own spline through the valid centres
within ``spline_radius`` coarse pixels of it. Those local splines are solved where they are
used: :class:`Spline` keeps only the coarse values (8 bytes per coarse pixel and band) and
each prediction window solves the splines of the coarse pixels it covers, so memory follows
the window, not the scene (keeping every coefficient took (81 x 4 + 24) bytes per coarse pixel
and band with radius 4: 0.8 GB for a 6000 x 6000 x 6 scene at R = 10).

A coarse pixel's coefficients must not depend on which other pixels were solved with it (any
tiling gives the same prediction): pixels with the same neighbourhood pattern share one
system, and its right-hand sides are solved in LAPACK calls of a fixed even number of columns
small enough for OpenBLAS to run them on one thread. A wide call is split between threads,
and a thread's odd last column goes through another kernel (1e-15 differences), which made a
coefficient depend on how many pixels were solved together.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from stfusion.errors import InvalidParameterError
from stfusion.io.spill import SpillArray
from stfusion.kernels.coarse import tps_eval_points_global, tps_eval_points_local
from stfusion.kernels.fsdaf import tps_eval_global, tps_eval_local

#: At most this many coarse pixels for one global spline (a dense (n + 3)^2 system).
GLOBAL_SPLINE_MAX = 3000
#: Coarse pixels whose local splines are solved together (bounds the temporaries: about
#: 5 x 8 (2 radius + 1)^2 x bands bytes each, 10 MB at radius 4 and 6 bands).
SPLINE_CHUNK = 512
#: OpenBLAS runs a solve on one thread when rows x right-hand sides is below this.
_ONE_THREAD_SIZE = 10000


@dataclass
class Spline:
    """Thin-plate splines on the coarse grid (see :func:`fit_spline`).

    Coordinates: block ``(i, j)`` is centred on fine pixel ``(cy[i], cx[j])``, distances in
    coarse pixels (``r`` fine pixels); for a native coarse grid ``r = 1`` and ``cy``, ``cx``
    are the coarse pixel indices.
    """

    r: int
    cy: np.ndarray
    cx: np.ndarray
    radius: int
    #: local: the coarse values ``(band, bh, bw)`` the splines pass through (read a block of
    #: coarse rows at a time: they may be on disk, see :mod:`stfusion.io.spill`)
    values: SpillArray | None = None
    #: local: coarse pixels whose bands are all finite ``(bh, bw)``
    valid: np.ndarray | None = None
    #: global: ``(n, band)`` weights on the centres ``(py, px)`` and ``(3, band)`` affine
    weights: np.ndarray | None = None
    affine: np.ndarray | None = None
    py: np.ndarray | None = None
    px: np.ndarray | None = None
    yref: float = 0.0
    xref: float = 0.0
    _rel: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)

    @property
    def bands(self) -> int:
        if self.values is not None:
            return int(self.values.shape[0])
        assert self.affine is not None
        return int(self.affine.shape[-1])

    # ----------------------------------------------------------------------------- solve

    def coefficients(self, i0: int, i1: int, j0: int, j1: int) -> tuple[np.ndarray, np.ndarray]:
        """Local-spline coefficients of the coarse pixels ``[i0, i1) x [j0, j1)``: weights
        ``(h, w, (2 radius + 1)^2, band)`` float32 on the centres ``(i + di, j + dj)``
        (``k = (di + radius) (2 radius + 1) + dj + radius``, zero where a centre is missing)
        and affine ``(h, w, 3, band)`` float64 (NaN: no valid centre near)."""
        assert self.values is not None and self.valid is not None and self.radius > 0
        rad = self.radius
        side = 2 * rad + 1
        nb, bh, bw = self.values.shape
        h, w = i1 - i0, j1 - j0
        # float32 keeps them at 4 (2 radius + 1)^2 bytes per coarse pixel and band; the spline
        # then differs from float64 coefficients by ~1e-5 of the data's spread.
        weights = np.zeros((h, w, side * side, nb), dtype=np.float32)
        affine = np.full((h, w, 3, nb), np.nan)
        if h <= 0 or w <= 0:
            return weights, affine
        pad = np.zeros((h + 2 * rad, w + 2 * rad), dtype=bool)
        a0, a1 = max(0, i0 - rad), min(bh, i1 + rad)
        b0, b1 = max(0, j0 - rad), min(bw, j1 + rad)
        pad[a0 - (i0 - rad) : a1 - (i0 - rad), b0 - (j0 - rad) : b1 - (j0 - rad)] = self.valid[
            a0:a1, b0:b1
        ]
        windows = np.lib.stride_tricks.sliding_window_view(pad, (side, side))
        rows = self.values.read(a0, a1)  # (band, a1 - a0, bw): every centre used is in it
        rel_y, rel_x = self._offsets()
        ry, rx = rel_y[i0:i1], rel_x[j0:j1]
        # Blocks with the same valid-neighbour pattern and offsets share one system.
        ky = [np.nan_to_num(ry[i], nan=1e9).tobytes() for i in range(h)]
        kx = [np.nan_to_num(rx[j], nan=1e9).tobytes() for j in range(w)]
        groups: dict[bytes, list[tuple[int, int]]] = {}
        for i in range(h):
            for j in range(w):
                groups.setdefault(windows[i, j].tobytes() + ky[i] + kx[j], []).append((i, j))
        offs = np.arange(-rad, rad + 1)
        for members in groups.values():
            for k0 in range(0, len(members), SPLINE_CHUNK):
                self._solve_group(
                    members[k0 : k0 + SPLINE_CHUNK],
                    windows,
                    ry,
                    rx,
                    offs,
                    (i0, j0),
                    (rows, a0),
                    weights,
                    affine,
                )
        return weights, affine

    def _offsets(self) -> tuple[np.ndarray, np.ndarray]:
        """Relative centre offsets ``(bh, side)``, ``(bw, side)`` in coarse pixels (differ
        from the integers only at partial edge blocks; NaN beyond the scene)."""
        if self._rel is None:
            offs = np.arange(-self.radius, self.radius + 1)
            self._rel = (_rel(self.cy, offs, self.r), _rel(self.cx, offs, self.r))
        return self._rel

    def _solve_group(
        self,
        members: list[tuple[int, int]],
        windows: np.ndarray,
        rel_y: np.ndarray,
        rel_x: np.ndarray,
        offs: np.ndarray,
        origin: tuple[int, int],
        values: tuple[np.ndarray, int],
        weights: np.ndarray,
        affine: np.ndarray,
    ) -> None:
        i0, j0 = origin
        rows, a0 = values  # coarse rows a0, a0 + 1, ... of the values
        nb = rows.shape[0]
        side = 2 * self.radius + 1
        m0, n0 = members[0]
        kidx = np.flatnonzero(windows[m0, n0].ravel())
        if kidx.size == 0:
            return  # no valid centre near (native pixels beyond the coarse file): NaN
        ka, kb = kidx // side, kidx % side
        u = rel_y[m0, ka]
        v = rel_x[n0, kb]
        bi = np.array([m[0] for m in members])
        bj = np.array([m[1] for m in members])
        ii = i0 + bi[:, None] + offs[ka][None, :]
        jj = j0 + bj[:, None] + offs[kb][None, :]
        vals = rows[:, ii - a0, jj]  # (band, G, n)
        rhs = vals.transpose(2, 1, 0).reshape(len(kidx), -1)
        wts, aff = _tps_solve(u, v, rhs)
        g = len(members)
        weights[bi[:, None], bj[:, None], kidx[None, :], :] = wts.reshape(
            len(kidx), g, nb
        ).transpose(1, 0, 2)
        affine[bi, bj] = aff.reshape(3, g, nb).transpose(1, 0, 2)

    # -------------------------------------------------------------------------- evaluate

    def evaluate(self, y0: int, x0: int, h: int, w: int) -> np.ndarray:
        """Spline values ``(band, h, w)`` (float64) at fine pixels ``y0 + [0, h)``, ...."""
        out = np.empty((self.bands, h, w))
        if h == 0 or w == 0:
            return out
        if self.radius == 0:
            assert self.py is not None and self.px is not None
            assert self.weights is not None and self.affine is not None  # a global spline
            tps_eval_global(
                y0,
                x0,
                self.r,
                self.py,
                self.px,
                self.weights,
                self.affine,
                self.yref,
                self.xref,
                out,
            )
            return out
        i0, i1 = y0 // self.r, -(-(y0 + h) // self.r)
        j0, j1 = x0 // self.r, -(-(x0 + w) // self.r)
        wts, aff = self.coefficients(i0, i1, j0, j1)
        tps_eval_local(y0, x0, self.r, self.cy, self.cx, self.radius, wts, aff, i0, j0, out)
        return out

    def evaluate_points(
        self, py: np.ndarray, px: np.ndarray, ci: np.ndarray, cj: np.ndarray
    ) -> np.ndarray:
        """Spline values ``(band, H, W)`` at points ``(py, px)`` in coarse-pixel coordinates,
        each with the spline of its coarse pixel ``(ci, cj)`` (native coarse grids)."""
        out = np.empty((self.bands, *py.shape))
        if py.size == 0:
            return out
        if self.radius == 0:
            assert self.py is not None and self.px is not None
            assert self.weights is not None and self.affine is not None  # a global spline
            tps_eval_points_global(
                py, px, self.py, self.px, self.weights, self.affine, self.yref, self.xref, out
            )
            return out
        i0, i1 = int(ci.min()), int(ci.max()) + 1
        j0, j1 = int(cj.min()), int(cj.max()) + 1
        wts, aff = self.coefficients(i0, i1, j0, j1)
        bh, bw = len(self.cy), len(self.cx)
        tps_eval_points_local(py, px, ci, cj, self.radius, wts, aff, i0, j0, bh, bw, out)
        return out


def _rel(centres: np.ndarray, offs: np.ndarray, r: int) -> np.ndarray:
    n = len(centres)
    out = np.full((n, len(offs)), np.nan)
    for i in range(n):
        ii = i + offs
        inside = (ii >= 0) & (ii < n)
        out[i, inside] = (centres[ii[inside]] - centres[i]) / r
    return out


def block_centres(n: int, r: int) -> np.ndarray:
    """Centre (mean fine coordinate) of each block along an axis of ``n`` fine pixels."""
    start = np.arange(0, n, r, dtype=np.float64)
    end = np.minimum(start + r, n)
    return (start + end - 1.0) / 2.0


def _solve(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``solve(a, b)`` column by column as one-thread OpenBLAS calls of a fixed even width
    (see the module docstring): each column's result is the same whatever ``b`` holds."""
    m = a.shape[0]
    cols = (_ONE_THREAD_SIZE - 1) // m
    step = cols // 16 * 16 if cols >= 16 else max(2, cols // 2 * 2)
    out = np.empty(b.shape)
    for s in range(0, b.shape[1], step):
        blk = b[:, s : s + step]
        n = blk.shape[1]
        if n % 2:  # an odd last column would take the one-column kernel
            blk = np.concatenate([blk, np.zeros((m, 1))], axis=1)
        out[:, s : s + n] = np.linalg.solve(a, blk)[:, :n]
    return out


def _tps_solve(
    u: np.ndarray, v: np.ndarray, rhs: np.ndarray, by_column: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Weights ``(n, m)`` and affine ``(3, m)`` of the TPS through points ``(u, v)``.

    Falls back to a constant (the mean) when the points do not span a plane. ``by_column``:
    solve with :func:`_solve` (local splines); else one LAPACK call (the global spline).
    """
    n = len(u)
    p = np.column_stack([np.ones(n), u, v])
    if n < 3 or np.linalg.matrix_rank(p) < 3:
        aff = np.zeros((3, rhs.shape[1]))
        aff[0] = rhs.mean(axis=0) if n else np.nan
        return np.zeros((n, rhs.shape[1])), aff
    d2 = (u[:, None] - u[None, :]) ** 2 + (v[:, None] - v[None, :]) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        k = np.where(d2 > 0, 0.5 * d2 * np.log(d2), 0.0)
    a = np.zeros((n + 3, n + 3))
    a[:n, :n] = k
    a[:n, n:] = p
    a[n:, :n] = p.T
    b = np.zeros((n + 3, rhs.shape[1]))
    b[:n] = rhs
    sol = _solve(a, b) if by_column else np.linalg.solve(a, b)
    return sol[:n], sol[n:]


def fit_spline(
    values: np.ndarray | SpillArray, r: int, shape: tuple[int, int], radius: int
) -> Spline:
    """The TPS of the coarse block means ``values`` ``(band, bh, bw)`` (paper step 4).

    ``radius == 0``: one spline through all valid coarse centres (exact paper form), solved
    here. ``radius > 0``: each coarse pixel gets the spline through the valid centres within
    ``radius`` coarse pixels of it, used for the fine pixels inside it, solved when evaluated;
    coordinates in coarse-pixel units. A centre is valid when all its bands are finite.
    ``values`` may be a :class:`SpillArray` (rows: axis 1), kept as it is for local splines.
    """
    cy = block_centres(shape[0], r)
    cx = block_centres(shape[1], r)
    store = values if isinstance(values, SpillArray) else SpillArray.of(values, axis=1)
    nb, bh, bw = store.shape
    valid = np.empty((bh, bw), dtype=bool)
    step = max(1, (64 << 20) // max(1, 8 * nb * bw))  # a bounded read at a time
    for i0 in range(0, bh, step):
        valid[i0 : i0 + step] = np.isfinite(store.read(i0, i0 + step)).all(axis=0)
    if radius > 0:
        return Spline(r, cy, cx, radius, values=store, valid=valid)
    values = store.array()
    iy, ix = np.nonzero(valid)
    if iy.size > GLOBAL_SPLINE_MAX:
        raise InvalidParameterError(
            f"fsdaf: spline_radius=0 fits one spline through all {iy.size} coarse pixels "
            f"(at most {GLOBAL_SPLINE_MAX}); give spline_radius=6 (or another radius in "
            "coarse pixels) for a scene this large."
        )
    py, px = cy[iy], cx[ix]
    yref = float(py.mean()) if py.size else 0.0
    xref = float(px.mean()) if px.size else 0.0
    wts, aff = _tps_solve((py - yref) / r, (px - xref) / r, values[:, iy, ix].T, False)
    return Spline(r, cy, cx, 0, weights=wts, affine=aff, py=py, px=px, yref=yref, xref=xref)
