"""FSDAF's per-coarse-pixel tables (paper steps 2-3), bounded by the memory limit.

The class counts, the coarse values of C1 and C2, the coarse changes and the residuals have
one row per coarse pixel: 0.2 kB per coarse pixel with 6 bands and 6 classes, 0.8 GB for a
20000 x 20000 scene at R = 10. They are :class:`~stfusion.io.spill.SpillArray` s: in memory
while the whole state fits the run's state budget (:func:`stfusion.io.spill.state_bytes`,
a share of ``--mem-limit``), else in a temporary file read back a block of coarse rows at a
time. Every quantity is computed per coarse pixel (or per class from one column of
fractions at a time), so blocks give the same values as the whole scene at once; in memory
there is one block, the computation of the version before the tables.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from stfusion.io import Source
from stfusion.io.scan import scan_values
from stfusion.io.spill import SpillArray, row_blocks, state_bytes

#: Coarse pixels whose class fractions sum to less than this are left out of the unmixing.
COMPLETE_FRACTION = 0.999
#: Fewest coarse pixels in one block of a spilled table: the residual's ``share @ change``
#: goes through BLAS, whose small-matrix kernels round differently (measured: blocks of 7
#: rows differ by 1e-16, 64 rows and more match the whole-scene product bit for bit).
MIN_BLOCK_PIXELS = 1024


def count_dtype(max_pixels: int) -> np.dtype:
    """The smallest unsigned type for per-coarse-pixel class counts (at most ``max_pixels``
    fine pixels per coarse pixel): exact, and converted to float64 where used."""
    for dt in (np.uint16, np.uint32):
        if max_pixels <= np.iinfo(dt).max:
            return np.dtype(dt)
    return np.dtype(np.uint64)


def needs_spill(n: int, classes: int, bands: int, counts: np.dtype) -> bool:
    """Whether FSDAF's tables for ``n`` coarse pixels (counts, C1, C2 and residuals, and
    the pixel counts) exceed the run's state budget."""
    return n * (classes * counts.itemsize + 24 * bands + 8) > state_bytes()


def blocks(shape: tuple[int, ...], row_bytes: int, spill: bool) -> Iterator[tuple[int, int]]:
    """Blocks of coarse rows of a ``(rows, cols)`` table: one block in memory; spilled,
    blocks of about one scene-wide read (:func:`scan_values` x 8 bytes)."""
    rows, cols = shape[0], shape[1]
    if not spill:
        yield 0, rows
        return
    min_rows = -(-MIN_BLOCK_PIXELS // max(cols, 1))
    yield from row_blocks(rows, row_bytes, 8 * scan_values(), min_rows)


def add_counts(counts: SpillArray, flat: np.ndarray, lab: np.ndarray, ok: np.ndarray) -> None:
    """Add the labelled pixels (coarse pixel ``flat``, class ``lab``, where ``ok``) of one
    read to ``counts`` ``(bh, bw, classes)``: only the coarse rows the read covers."""
    bw, nc = counts.shape[1], counts.shape[2]
    f = flat[ok]
    if f.size == 0:
        return
    i0, i1 = int(f.min()) // bw, int(f.max()) // bw + 1
    add = np.bincount((f - i0 * bw) * nc + lab[ok], minlength=(i1 - i0) * bw * nc)
    blk = counts.read(i0, i1)
    blk += add.reshape(i1 - i0, bw, nc).astype(blk.dtype)
    counts.write(i0, blk)


def put_block_means(store: SpillArray, means: np.ndarray, i0: int, j0: int) -> None:
    """Write ``means`` ``(band, h, w)`` into ``store`` ``(band, bh, bw)`` at coarse ``(i0, j0)``."""
    blk = store.read(i0, i0 + means.shape[1])
    blk[:, :, j0 : j0 + means.shape[2]] = means
    store.write(i0, blk)


def native_values(native: Any, source: Source, spill: bool) -> SpillArray:
    """:meth:`stfusion.coarse.NativeGrid.values` of ``source`` as a table ``(band, *shape)``;
    spilled, read a block of native rows at a time (a coarse image on that native grid)."""
    if not spill or not native.on_native_grid(source):
        return SpillArray.of(native.values(source), axis=1, spill=spill)
    nb = source.count
    out = SpillArray((nb, *native.shape), np.float64, axis=1, spill=True)
    for i0, i1 in blocks(native.shape, 8 * nb * native.shape[1], True):
        out.write(i0, native.values(source, rows=(i0, i1)))
    return out


class Fractions:
    """The class fractions ``counts / pixels`` ``(n, classes)`` of the coarse pixels, one
    column or a few rows at a time (what :func:`~stfusion.methods.fsdaf_classes.
    unmix_class_changes` indexes: ``[:, c]``, ``[rows, c]``, ``[rows]``)."""

    def __init__(self, counts: SpillArray, block_pixels: np.ndarray, spill: bool) -> None:
        self.counts = counts
        self.pixels = block_pixels.reshape(-1)  # integers: float64 per block, exactly
        self.spill = spill
        self.shape = (int(self.pixels.size), int(counts.shape[2]))
        self._col: tuple[int, np.ndarray] | None = None

    def npix(self, idx: Any) -> np.ndarray:
        """Fine pixels of coarse pixels ``idx`` (at least 1: a native pixel may hold none)."""
        return np.maximum(self.pixels[idx], 1).astype(np.float64)

    def column(self, c: int) -> np.ndarray:
        if self._col is not None and self._col[0] == c:
            return self._col[1]
        self._col = None  # one column in memory at a time
        bw = self.counts.shape[1]
        col = np.empty(self.shape[0])
        for i0, i1 in blocks(self.counts.shape, bw * self.shape[1] * 8, self.spill):
            cnt = self.counts.read(i0, i1)[:, :, c].reshape(-1).astype(np.float64)
            col[i0 * bw : i1 * bw] = cnt / self.npix(slice(i0 * bw, i1 * bw))
        self._col = (c, col)
        return col

    def rows(self, idx: np.ndarray) -> np.ndarray:
        bw = self.counts.shape[1]
        out = np.empty((len(idx), self.shape[1]))
        for i0, i1 in blocks(self.counts.shape, bw * self.shape[1] * 8, self.spill):
            k = np.flatnonzero((idx >= i0 * bw) & (idx < i1 * bw))
            if k.size:
                cnt = self.counts.read(i0, i1).reshape(-1, self.shape[1])
                out[k] = cnt[idx[k] - i0 * bw].astype(np.float64)
        return out / self.npix(idx)[:, None]

    def __getitem__(self, key: Any) -> np.ndarray:
        if isinstance(key, tuple):
            rows, c = key
            col = self.column(int(c))
            return col if isinstance(rows, slice) and rows == slice(None) else col[rows]
        return self.rows(np.asarray(key))


class Bands:
    """``Delta C = C2 - C1`` per band ``(band, n)``: ``dc[b]`` is one band, whole."""

    def __init__(self, bands: list[SpillArray]) -> None:
        self._bands = bands
        self.shape = (len(bands), bands[0].shape[0])

    def __getitem__(self, b: int) -> np.ndarray:
        return self._bands[b].array()

    def block(self, p0: int, p1: int) -> np.ndarray:
        return np.stack([s.read(p0, p1) for s in self._bands])


class CoarseTables:
    """Step 2-3 inputs per coarse pixel: fractions, the coarse change ``dc``, ``complete``
    (fractions sum to 1, and for native pixels the footprint lies in the scene) and the
    labelled pixels ``nvalid``; :meth:`residuals` is step 3."""

    def __init__(
        self,
        counts: SpillArray,
        block_pixels: np.ndarray,
        c1: SpillArray,
        c2: SpillArray,
        whole: np.ndarray | None,
        spill: bool,
    ) -> None:
        bh, bw, nc = counts.shape
        nb = c1.shape[0]
        n = bh * bw
        self.counts, self.spill, self.bw, self.nb = counts, spill, bw, nb
        self.fractions = Fractions(counts, block_pixels, spill)
        self.complete = np.empty(n, dtype=bool)
        self.nvalid = np.empty(n, dtype=counts.dtype)  # integers: float64 per block
        dc = [SpillArray((n,), np.float64, spill=spill) for _ in range(nb)]
        for i0, i1 in self.blocks():
            p0, p1 = i0 * bw, i1 * bw
            d = c2.read(i0, i1) - c1.read(i0, i1)
            for b in range(nb):
                dc[b].write(p0, d[b].reshape(-1))
            cnt = counts.read(i0, i1).reshape(-1, nc).astype(np.float64)
            npix = self.fractions.npix(slice(p0, p1))
            self.complete[p0:p1] = (cnt / npix[:, None]).sum(axis=1) > COMPLETE_FRACTION
            self.nvalid[p0:p1] = cnt.sum(axis=1)
        if whole is not None:
            # A native pixel cut by the scene edge has a value from ground the fine image
            # does not show: not a pure pixel for the unmixing.
            self.complete &= whole.reshape(-1)
        self.dc = Bands(dc)

    def blocks(self) -> Iterator[tuple[int, int]]:
        nc = self.counts.shape[2]
        return blocks(self.counts.shape, self.bw * 8 * (4 * self.nb + 3 * nc), self.spill)

    def residual_blocks(self, change: np.ndarray) -> Iterator[tuple[int, int, np.ndarray]]:
        """``(i0, i1, R)``: step 3's residual ``Delta C - (mean F2_TP - mean F1)`` ``(n_block,
        band)`` of coarse rows ``[i0, i1)`` (NaN where no fine pixel is labelled)."""
        bw, nc = self.bw, self.counts.shape[2]
        for i0, i1 in self.blocks():
            p0, p1 = i0 * bw, i1 * bw
            cnt = self.counts.read(i0, i1).reshape(-1, nc).astype(np.float64)
            nvalid = self.nvalid[p0:p1].astype(np.float64)
            with np.errstate(invalid="ignore", divide="ignore"):
                share = cnt / nvalid[:, None]
            resid = self.dc.block(p0, p1).T - share @ change  # share @ change: mean shift
            resid[nvalid == 0] = np.nan
            yield i0, i1, resid

    def residuals(self, change: np.ndarray) -> SpillArray:
        """Step 3's residuals ``(bh, bw, band)`` of every coarse pixel."""
        bh, bw = self.counts.shape[:2]
        nb = self.nb
        out: SpillArray | None = None
        for i0, i1, resid in self.residual_blocks(change):
            block = resid.reshape(i1 - i0, bw, nb)
            if out is None and not self.spill:
                return SpillArray.of(block)  # one block: the whole scene
            if out is None:
                out = SpillArray((bh, bw, nb), np.float64, spill=True)
            out.write(i0, block)
        assert out is not None
        return out
