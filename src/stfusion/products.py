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


def kelvin_and_celsius(first_median: float, second_median: float) -> int | None:
    """Which of two signed medians is kelvin when the other is degrees Celsius of the same
    surface (0 or 1; they differ by about 273.15, not by a factor), else None."""
    for kelvin, other in ((0, 1), (1, 0)):
        k, c = (first_median, second_median)[kelvin], (first_median, second_median)[other]
        if 200.0 <= k <= 360.0 and abs(k - c - 273.15) <= 10.0:
            return kelvin
    return None
