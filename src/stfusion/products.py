"""Named products whose digital numbers need a scale and an offset that their GeoTIFFs often
do not carry (USGS puts Landsat's in the MTL file; MODIS LST exported from HDF loses its
``scale_factor``), recognised by file or band name, and kelvin against degrees Celsius.

Read unscaled, Landsat Collection 2 surface temperature (median ~44000) and MOD11A1 LST
(~15000) differ only 2.7x, less than any scale check notices, and fuse in mixed units (a
trial: 301.8 K predicted for 309.3 K, the coarse change shrunk 6.8x); the scale checks'
power-of-ten and reflectance advice would make them "reflectance" of 0.8.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["RAW_PRODUCTS", "RawProduct", "kelvin_and_celsius", "raw_product"]


@dataclass(frozen=True)
class RawProduct:
    """A product stored as digital numbers: value = DN x ``scale`` + ``offset``."""

    title: str
    scale: float
    offset: float
    unit: str
    #: Matched against the file name and the band names.
    pattern: re.Pattern[str]
    #: Medians of |DN| the product's values give (kelvin 200..350 and more).
    medians: tuple[float, float]

    def advice(self, role: str) -> str:
        """The options that read it in its unit, e.g. ``--fine-scale 0.00341802 --fine-offset
        149``; ``role``: fine, coarse, pred, truth."""
        offset = f" --{role}-offset {self.offset:g}" if self.offset else ""
        return f"--{role}-scale {self.scale:g}{offset}"


RAW_PRODUCTS = (
    RawProduct(
        "Landsat Collection 2 Level-2 surface temperature (kelvin = DN x 0.00341802 + 149)",
        0.00341802,
        149.0,
        "kelvin",
        re.compile(r"(^|[^a-z0-9])st_b(10|6)([^0-9]|$)", re.I),
        (14000.0, 65535.0),
    ),
    RawProduct(
        "MODIS land surface temperature, MOD11/MYD11/MOD21 (kelvin = DN x 0.02)",
        0.02,
        0.0,
        "kelvin",
        re.compile(
            r"(^|[^a-z0-9])(m[oy]d(11|21)[a-z0-9]*|lst_(day|night)(_1km)?)([^a-z0-9]|$)", re.I
        ),
        (7500.0, 20000.0),
    ),
)


def raw_product(
    path: str, band_names: Sequence[object], median: float, scale: float
) -> RawProduct | None:
    """The product whose name ``path`` or every band name carries, read unscaled (``scale``
    1: no metadata or option) with a median of |value| among its digital numbers'."""
    if scale != 1.0:
        return None
    name = re.split(r"[/\\]", str(path))[-1]
    for product in RAW_PRODUCTS:
        named = bool(product.pattern.search(name)) or (
            bool(band_names) and all(product.pattern.search(str(n)) for n in band_names)
        )
        if named and product.medians[0] <= median <= product.medians[1]:
            return product
    return None


def kelvin_and_celsius(first: np.ndarray, second: np.ndarray) -> int | None:
    """Which of two samples of values is kelvin when the other is degrees Celsius of the same
    surface (0 or 1), else None: medians about 273.15 apart (within 10), one of them
    200..360, and the Celsius side's interquartile range at least a fifth of the kelvin
    side's (a coarse image is smoother than a fine one, by 8x in a trial; NDVI, or
    reflectance x 1000 against x 10000, also sit about 273 below, with a 10-30x smaller
    spread)."""
    a, b = (np.asarray(x, np.float64) for x in (first, second))
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if a.size == 0 or b.size == 0:
        return None
    med = float(np.median(a)), float(np.median(b))
    iqr = [float(np.subtract(*np.percentile(x, [75, 25]))) for x in (a, b)]
    for kelvin, other in ((0, 1), (1, 0)):
        close = abs(med[kelvin] - med[other] - 273.15) <= 10.0
        if 200.0 <= med[kelvin] <= 360.0 and close and iqr[other] >= 0.2 * iqr[kelvin] > 0:
            return kelvin
    return None
