"""Scene-wide state that stays bounded: arrays kept in memory up to a budget, else on disk.

A method's scene-wide state (FSDAF: class counts, coarse means, residuals per coarse pixel)
grows with the scene. :class:`SpillArray` keeps it in memory while the run's state budget
(:func:`state_limit`, set from ``--mem-limit`` by :func:`stfusion.tiling.memory_limits`)
allows, and otherwise in a temporary file that is unlinked as soon as it is opened (so it
goes away when the process ends, however it ends), read back a block of rows at a time with
explicit ``pread`` calls. Not ``np.memmap``: the pages of a mapping a process touched count
in its resident memory until the kernel drops them, which is what the limit is about.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import tempfile
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

#: Bytes of scene-wide state kept in memory unless :func:`state_limit` says otherwise (the
#: Python API's default memory limit, 1024 MB, times about the share ``memory_limits`` gives).
DEFAULT_STATE_BYTES = 200 << 20
_STATE_BYTES: contextvars.ContextVar[int] = contextvars.ContextVar(
    "stfusion_state_bytes", default=DEFAULT_STATE_BYTES
)


def state_bytes() -> int:
    """The current budget (bytes) of scene-wide state a method keeps in memory."""
    return _STATE_BYTES.get()


@contextlib.contextmanager
def state_limit(nbytes: int) -> Iterator[None]:
    """Keep at most ``nbytes`` of scene-wide state in memory inside the block (0: spill all)."""
    token = _STATE_BYTES.set(max(0, int(nbytes)))
    try:
        yield
    finally:
        _STATE_BYTES.reset(token)


class SpillArray:
    """An array read and written by blocks of rows along ``axis`` (0 or 1), in memory or in
    an unlinked temporary file (``spill``). The file holds the row axis first, so a block of
    rows is one contiguous read. Reads of an in-memory array are views; of a spilled one,
    fresh arrays. Pickling (a Dask worker, a copy) carries the values, in memory."""

    def __init__(
        self,
        shape: tuple[int, ...],
        dtype: Any,
        *,
        axis: int = 0,
        spill: bool = False,
        fill: Any = 0,
    ) -> None:
        self.shape = tuple(int(s) for s in shape)
        self.dtype = np.dtype(dtype)
        self.axis = int(axis)
        self._data: np.ndarray | None = None
        self._file: Any = None
        if not spill:
            self._data = np.full(self.shape, fill, dtype=self.dtype)
            return
        # Unlinked at once (tempfile.TemporaryFile): nothing is left behind, even on kill -9.
        self._file = tempfile.TemporaryFile(prefix="stfusion-state-")
        stored = self._stored_shape()
        row = self._row_bytes()
        try:
            self._file.truncate(stored[0] * row)
        except OSError as exc:
            raise _named(exc) from None
        if fill != 0:
            block = np.full((max(1, (8 << 20) // max(row, 1)), *stored[1:]), fill, self.dtype)
            for i in range(0, stored[0], len(block)):
                n = min(len(block), stored[0] - i)
                _pwrite(self._file.fileno(), block[:n].tobytes(), i * row)

    @classmethod
    def of(cls, array: np.ndarray, *, axis: int = 0, spill: bool = False) -> SpillArray:
        """A SpillArray holding ``array`` (kept as is when not spilled)."""
        out = cls(array.shape, array.dtype, axis=axis, spill=True) if spill else None
        if out is None:
            out = cls.__new__(cls)
            out.shape, out.dtype, out.axis = array.shape, array.dtype, int(axis)
            out._data, out._file = array, None
            return out
        out.write(0, array)
        return out

    @property
    def spilled(self) -> bool:
        return self._file is not None

    @property
    def rows(self) -> int:
        return self.shape[self.axis]

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape)) * self.dtype.itemsize

    def _stored_shape(self) -> tuple[int, ...]:
        s = list(self.shape)
        return (s.pop(self.axis), *s)

    def _row_bytes(self) -> int:
        return int(np.prod(self._stored_shape()[1:])) * self.dtype.itemsize

    def read(self, i0: int, i1: int) -> np.ndarray:
        """Rows ``[i0, i1)`` (clipped), in the array's own axis order."""
        i0, i1 = max(0, int(i0)), min(self.rows, int(i1))
        i1 = max(i0, i1)
        if self._data is not None:
            return self._data[i0:i1] if self.axis == 0 else self._data[:, i0:i1]
        stored = self._stored_shape()
        out = np.empty((i1 - i0, *stored[1:]), dtype=self.dtype)
        self._pread(out, i0 * self._row_bytes(), i0)
        return out if self.axis == 0 else np.moveaxis(out, 0, self.axis)

    def read_block(self, i0: int, i1: int, j0: int, j1: int) -> np.ndarray:
        """Rows ``[i0, i1)`` and, along the next axis, ``[j0, j1)`` of an ``axis=0`` array:
        one contiguous read per row when spilled (a window of an ``(H, W, ...)`` image)."""
        if self.axis != 0 or len(self.shape) < 2:
            raise ValueError("read_block needs an axis=0 array of two or more dimensions")
        i0, i1 = max(0, int(i0)), min(self.rows, int(i1))
        j0, j1 = max(0, int(j0)), min(self.shape[1], int(j1))
        i1, j1 = max(i0, i1), max(j0, j1)
        if self._data is not None:
            return self._data[i0:i1, j0:j1]
        out = np.empty((i1 - i0, j1 - j0, *self.shape[2:]), dtype=self.dtype)
        inner = int(np.prod(self.shape[2:], dtype=np.int64)) * self.dtype.itemsize
        row = self._row_bytes()
        for k in range(i1 - i0):
            self._pread(out[k], (i0 + k) * row + j0 * inner, i0 + k)
        return out

    def _pread(self, out: np.ndarray, offset: int, row: int) -> None:
        """Fill the contiguous array ``out`` from the file at byte ``offset``."""
        buf = memoryview(out.reshape(-1).view(np.uint8))  # type: ignore[arg-type]
        done = 0
        while done < len(buf):  # pread may return fewer bytes than asked
            n = os.preadv(self._file.fileno(), [buf[done:]], offset + done)
            if n <= 0:
                raise OSError(f"short read of scene-wide state at row {row}")
            done += n

    def write(self, i0: int, block: np.ndarray) -> None:
        """Store ``block`` (the array's axis order) as rows ``i0, i0 + 1, ...``."""
        n = block.shape[self.axis]
        if self._data is not None:
            dst = self._data[i0 : i0 + n] if self.axis == 0 else self._data[:, i0 : i0 + n]
            if not np.shares_memory(dst, block):
                dst[...] = block
            return
        raw = np.ascontiguousarray(np.moveaxis(np.asarray(block, self.dtype), self.axis, 0))
        _pwrite(self._file.fileno(), raw.tobytes(), i0 * self._row_bytes())

    def write_block(self, i0: int, j0: int, block: np.ndarray) -> None:
        """Store ``block`` at rows ``i0, ...`` and, along the next axis, ``j0, ...`` of an
        ``axis=0`` array (a window of an ``(H, W, ...)`` image): nothing wider than the
        window is held, where a strip of whole rows was (a full-width pass over the limit)."""
        if self.axis != 0 or len(self.shape) < 2:
            raise ValueError("write_block needs an axis=0 array of two or more dimensions")
        n, m = block.shape[:2]
        if self._data is not None:
            self._data[i0 : i0 + n, j0 : j0 + m] = block
            return
        raw = np.ascontiguousarray(block, self.dtype)
        inner = int(np.prod(self.shape[2:], dtype=np.int64)) * self.dtype.itemsize
        for k in range(n):
            _pwrite(
                self._file.fileno(), raw[k].tobytes(), (i0 + k) * self._row_bytes() + j0 * inner
            )

    def array(self) -> np.ndarray:
        """All of it (in memory: the array itself)."""
        return self._data if self._data is not None else self.read(0, self.rows)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        a = self.array()
        return a if dtype is None else a.astype(dtype)

    def __getitem__(self, key: Any) -> Any:
        return self.array()[key]

    def __getstate__(self) -> dict[str, Any]:
        return {"shape": self.shape, "dtype": self.dtype, "axis": self.axis, "_data": self.array()}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._file = None


def state_arrays(roots: Iterable[Any], depth: int = 4) -> Iterator[np.ndarray | SpillArray]:
    """The arrays that ``roots`` hold, through attributes, list and tuple items and dict
    values down to ``depth`` levels (a plugin's ``{"blue": [[array]]}`` is 3 deep), each
    once: numpy arrays (also those a :class:`SpillArray` keeps in memory) and spilled
    ``SpillArray`` s. What a method's state is made of."""
    seen: set[int] = set()

    def walk(obj: Any, level: int) -> Iterator[np.ndarray | SpillArray]:
        if id(obj) in seen or level > depth:
            return
        seen.add(id(obj))
        if isinstance(obj, np.ndarray) or (isinstance(obj, SpillArray) and obj.spilled):
            yield obj
            return
        if isinstance(obj, dict):
            items: Iterable[Any] = obj.values()
        elif isinstance(obj, list | tuple):
            items = obj
        elif hasattr(obj, "__dict__") and not isinstance(obj, type):
            items = vars(obj).values()
        else:
            return
        for item in items:
            yield from walk(item, level + 1)

    for root in roots:
        yield from walk(root, 0)


def row_blocks(
    rows: int, row_bytes: int, budget: int, min_rows: int = 1
) -> Iterator[tuple[int, int]]:
    """``[i0, i1)`` blocks of rows of ``row_bytes`` each, about ``budget`` bytes at a time
    (at least ``min_rows``); a short last block is merged into the one before it."""
    step = max(int(min_rows), budget // max(int(row_bytes), 1), 1)
    starts = list(range(0, rows, step))
    if len(starts) > 1 and rows - starts[-1] < step // 2:
        starts.pop()
    for k, i0 in enumerate(starts):
        yield i0, starts[k + 1] if k + 1 < len(starts) else rows


def _named(exc: OSError) -> OSError:
    """``exc`` naming the temporary folder: the spill file is unlinked, so the error named
    no file and a full temporary folder was taken for the output's disk."""
    return OSError(exc.errno, exc.strerror, tempfile.gettempdir())


def _pwrite(fd: int, data: bytes, offset: int) -> None:
    try:
        os.pwrite(fd, data, offset)
    except OSError as exc:
        raise _named(exc) from None
