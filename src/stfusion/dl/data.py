"""Training examples for the deep methods: ordered date pairs, patches, a spatial validation block.

From pairs (fine + coarse) at dates ``d_1 .. d_n`` every *ordered* pair of distinct dates
``(r, t)`` is one example: inputs ``F_r, C_r, C_t``, label ``F_t`` (so two dates give two
examples, ``d_1 -> d_2`` and ``d_2 -> d_1``). All images are read through
:func:`stfusion.scene.open_scene` (the scaling and alignment of ``stfusion predict``) and
normalised per band with one mean and standard deviation computed over all fine and coarse
images, so fine-coarse differences keep their meaning.

Validation cannot hold out a date (two dates are the common case), so it holds out space: a
block in the bottom-right corner with the scene's aspect ratio and ``val_fraction`` of its
area. Training patches never overlap it; validation runs the network on the whole block of
every example. Patches with more than ``max_invalid`` invalid pixels are redrawn; the few
remaining NaNs are set to the band mean (0 after normalisation) and left out of the content
loss through the mask.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stfusion.errors import InvalidParameterError
from stfusion.scene import Scene

_DATE_RES = (
    (re.compile(r"(?<!\d)((?:19|20)\d{2})-(\d{2})-(\d{2})(?!\d)"), "ymd"),
    (re.compile(r"(?<!\d)((?:19|20)\d{2})(\d{2})(\d{2})(?!\d)"), "ymd"),
    (re.compile(r"(?<!\d)((?:19|20)\d{2})[-_]?(\d{3})(?!\d)"), "yd"),
)


def parse_date(text: str) -> str | None:
    """The date in a file name as ``YYYY-MM-DD``: YYYY-MM-DD, YYYYMMDD or YYYYDDD (day of year).

    The last valid date in the name wins (folders may carry other numbers).
    """
    name = Path(text).name
    found: list[tuple[int, str]] = []
    for rx, kind in _DATE_RES:
        for m in rx.finditer(name):
            try:
                if kind == "ymd":
                    d = _dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
                else:
                    doy = int(m.group(2))
                    if not 1 <= doy <= 366:
                        continue
                    d = _dt.date(int(m.group(1)), 1, 1) + _dt.timedelta(days=doy - 1)
                    if d.year != int(m.group(1)):
                        continue
            except ValueError:
                continue
            found.append((m.start(), d.isoformat()))
    return max(found)[1] if found else None


def resolve_dates(
    pairs: Sequence[tuple[object, object]], dates: Sequence[str] | None
) -> list[str] | None:
    """ISO dates of the pairs: from ``dates`` (validated), else from the file names, else None."""
    if dates:
        if len(dates) != len(pairs):
            raise InvalidParameterError(
                f"--dates gives {len(dates)} date(s) for {len(pairs)} pair(s); give one per pair."
            )
        out = []
        for d in dates:
            try:
                out.append(_dt.date.fromisoformat(str(d).strip()).isoformat())
            except ValueError:
                raise InvalidParameterError(
                    f"--dates: {d!r} is not a date; write YYYY-MM-DD."
                ) from None
        return out
    found = []
    for fine, coarse in pairs:
        day = None
        for item in (fine, coarse):
            if isinstance(item, str | Path):
                day = parse_date(str(item))
                if day:
                    break
        if day is None:
            return None
        found.append(day)
    return found


def ordered_pairs(n: int) -> list[tuple[int, int]]:
    """Every (reference, target) pair of distinct dates, in a fixed order."""
    return [(r, t) for r in range(n) for t in range(n) if r != t]


@dataclass(frozen=True)
class Block:
    """A rectangle of pixels: rows ``row .. row + height``, columns ``col .. col + width``."""

    row: int
    col: int
    height: int
    width: int

    def intersects(self, row: int, col: int, height: int, width: int) -> bool:
        return (
            row < self.row + self.height
            and self.row < row + height
            and col < self.col + self.width
            and self.col < col + width
        )


def validation_block(shape: tuple[int, int], fraction: float, multiple: int = 1) -> Block:
    """The bottom-right block with the scene's aspect and ``fraction`` of its area."""
    if not 0.0 < fraction < 1.0:
        raise InvalidParameterError(f"val_fraction must be in (0, 1), got {fraction}.")
    h, w = shape
    s = float(np.sqrt(fraction))
    bh = max(multiple, round(h * s) // multiple * multiple)
    bw = max(multiple, round(w * s) // multiple * multiple)
    return Block(h - bh, w - bw, bh, bw)


@dataclass
class Batch:
    """Normalised network inputs and label, ``(N, bands, P, P)`` float32, and the valid mask."""

    fine_ref: np.ndarray
    coarse_ref: np.ndarray
    coarse_target: np.ndarray
    fine_target: np.ndarray
    mask: np.ndarray  # (N, 1, P, P) bool: all four images valid


class TrainingData:
    """The pairs of a scene in memory, normalised, with examples and a validation block."""

    def __init__(
        self,
        scene: Scene,
        *,
        val_fraction: float = 0.2,
        multiple: int = 1,
        max_invalid: float = 0.01,
        max_megabytes: float = 4096.0,
    ) -> None:
        n = len(scene.pairs)
        if n < 2:
            raise InvalidParameterError(
                f"training needs pairs at two or more dates (an example maps one date to "
                f"another); got {n}."
            )
        h, w = scene.grid.shape
        mb = 2 * n * scene.count * h * w * 4 / 2**20
        if mb > max_megabytes:
            raise InvalidParameterError(
                f"the training images need {mb:.0f} MB in memory (limit {max_megabytes:.0f}); "
                "crop the scene (e.g. gdal_translate -srcwin) to the area to learn from."
            )
        fine = np.stack([f.read() for f, _ in scene.pairs]).astype(np.float32)
        coarse = np.stack([c.read() for _, c in scene.pairs]).astype(np.float32)
        both = np.concatenate([fine, coarse], 0).transpose(1, 0, 2, 3).reshape(scene.count, -1)
        self.mean = np.zeros(scene.count)
        self.std = np.ones(scene.count)
        for b in range(scene.count):
            v = both[b][np.isfinite(both[b])].astype(np.float64)
            if v.size == 0:
                raise InvalidParameterError(f"band {b + 1} has no valid pixel in the pairs.")
            self.mean[b] = v.mean()
            self.std[b] = max(float(v.std()), 1e-6)
        m = self.mean.astype(np.float32)[None, :, None, None]
        s = self.std.astype(np.float32)[None, :, None, None]
        self.fine = (fine - m) / s
        self.coarse = (coarse - m) / s
        self.shape = (h, w)
        self.count = scene.count
        self.examples = ordered_pairs(n)
        self.val = validation_block((h, w), val_fraction, multiple)
        self.max_invalid = max_invalid
        self.valid = np.isfinite(self.fine).all(1) & np.isfinite(self.coarse).all(1)  # (D, H, W)
        fv = fine[np.isfinite(fine)]
        lo, hi = np.percentile(fv, [0.5, 99.5]) if fv.size else (0.0, 1.0)
        #: Data range of the vision loss in physical units: 1 for reflectance (as docs/metrics.md),
        #: else the robust range of the fine values.
        self.physical_range = 1.0 if (lo >= -0.5 and hi <= 1.5) else float(max(hi - lo, 1e-6))

    @property
    def data_range(self) -> np.ndarray:
        """Per-band data range in normalised units."""
        return (self.physical_range / self.std).astype(np.float32)

    def _patch(self, ex: int, r: int, c: int, p: int) -> tuple[np.ndarray, ...]:
        ref, tgt = self.examples[ex]
        sl = (slice(r, r + p), slice(c, c + p))
        mask = self.valid[ref][sl] & self.valid[tgt][sl]
        return (
            self.fine[ref][:, sl[0], sl[1]],
            self.coarse[ref][:, sl[0], sl[1]],
            self.coarse[tgt][:, sl[0], sl[1]],
            self.fine[tgt][:, sl[0], sl[1]],
            mask[None],
        )

    def train_positions_exist(self, patch: int) -> bool:
        h, w = self.shape
        v = self.val
        return (v.row >= patch or v.col >= patch) and h >= patch and w >= patch

    def sample(
        self,
        rng: np.random.Generator,
        n: int,
        patch: int,
        augment: bool = True,
        time_mix: float = 0.0,
    ) -> Batch:
        """``n`` random training patches (never touching the validation block).

        ``time_mix``: the share of patches whose target is moved to a random point between
        the two dates, ``a`` uniform in [0, 1): coarse ``C_r + a (C_t - C_r)``, label
        ``F_r + a (F_t - F_r)`` (inputs ``F_r, C_r`` unchanged). With two dates there are two
        examples of one change; the mixed ones are changes of every size between none and
        the observed one, the linear-change assumption every STF method makes, so a network
        cannot fit the size of the one change it saw.
        """
        h, w = self.shape
        if not self.train_positions_exist(patch):
            raise InvalidParameterError(
                f"patch {patch} px does not fit beside the validation block ({self.val.height} "
                f"x {self.val.width} px of a {h} x {w} scene); use a smaller --patch or "
                "val_fraction."
            )
        out: list[tuple[np.ndarray, ...]] = []
        tries = 0
        while len(out) < n:
            tries += 1
            if tries > 1000 * n:
                raise InvalidParameterError(
                    "could not find training patches with valid pixels outside the validation "
                    "block; check the nodata of the inputs or use a smaller --patch."
                )
            ex = int(rng.integers(len(self.examples)))
            r = int(rng.integers(h - patch + 1))
            c = int(rng.integers(w - patch + 1))
            if self.val.intersects(r, c, patch, patch):
                continue
            parts = self._patch(ex, r, c, patch)
            if 1.0 - parts[4].mean() > self.max_invalid:
                continue
            if time_mix > 0 and rng.random() < time_mix:
                mix = np.float32(rng.random())
                f_r, c_r, c_t, f_t, m = parts
                parts = (f_r, c_r, c_r + mix * (c_t - c_r), f_r + mix * (f_t - f_r), m)
            if augment:
                k = int(rng.integers(4))
                flip = bool(rng.integers(2))
                parts = tuple(_dihedral(a, k, flip) for a in parts)
            out.append(parts)
        arrays = [np.stack([o[i] for o in out]) for i in range(5)]
        for a in arrays[:4]:
            np.nan_to_num(a, copy=False, nan=0.0)
        f_r, c_r, c_t, f_t, m = arrays
        return Batch(f_r, c_r, c_t, f_t, mask=m.astype(bool))

    def validation(self) -> list[Batch]:
        """One batch per example: the whole validation block."""
        v = self.val
        out = []
        for ex in range(len(self.examples)):
            ref, tgt = self.examples[ex]
            sl = (slice(v.row, v.row + v.height), slice(v.col, v.col + v.width))
            parts = (
                self.fine[ref][:, sl[0], sl[1]],
                self.coarse[ref][:, sl[0], sl[1]],
                self.coarse[tgt][:, sl[0], sl[1]],
                self.fine[tgt][:, sl[0], sl[1]],
                (self.valid[ref][sl] & self.valid[tgt][sl])[None],
            )
            f_r, c_r, c_t, f_t = (np.nan_to_num(a[None]) for a in parts[:4])
            out.append(Batch(f_r, c_r, c_t, f_t, mask=parts[4][None].astype(bool)))
        return out

    def fine_patches(self, rng: np.random.Generator, n: int, patch: int) -> np.ndarray:
        """``n`` fine-image patches from the training region (for the autoencoder)."""
        b = self.sample(rng, n, patch, augment=True)
        return b.fine_target


def _dihedral(a: np.ndarray, k: int, flip: bool) -> np.ndarray:
    a = np.rot90(a, k, axes=(-2, -1))
    if flip:
        a = a[..., ::-1]
    return np.ascontiguousarray(a)
