"""Compile (and cache) the numba kernels of every classical method once, on a small crop of
the bundled sample: `make test` runs it beside the linters, so the test processes load the
kernels from numba's cache instead of each compiling them (about a minute of CPU on a fresh
clone). Prints how many kernels it reached and exits 1 naming any it did not (then this
script needs the method or option that calls them); `make test` goes on either way, and
tests/test_tools.py fails."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import Affine

from stfusion.cli import main

SAMPLE = Path(__file__).resolve().parents[1] / "src" / "stfusion" / "data"
SIZE, RATIO = 96, 16
DATES = ("2001-10-08", "2001-10-17", "2001-11-02")


def crop(src_path: Path, dst_path: Path, block: int = 1) -> None:
    """The top-left SIZE x SIZE px of ``src_path``; averaged over ``block`` x ``block``
    pixels (a coarse image on its own, coarser grid) when ``block`` > 1."""
    with rasterio.open(src_path) as src:
        data = src.read(window=((0, SIZE), (0, SIZE))).astype("float32") * 1e-4
        profile = src.profile
        transform = src.transform
    if block > 1:
        b, h, w = data.shape
        data = data.reshape(b, h // block, block, w // block, block).mean(axis=(2, 4))
        transform = transform * Affine.scale(block)
    profile.update(
        dtype="float32",
        height=data.shape[1],
        width=data.shape[2],
        transform=transform,
        nodata=None,
        tiled=False,
        blockxsize=None,
        blockysize=None,
        compress=None,
    )
    with rasterio.open(dst_path, "w", **profile) as dst:
        dst.write(data)


def run(*args: str) -> None:
    try:
        main(list(args))
    except SystemExit as exc:
        if exc.code:
            print(f"warm_kernels: {' '.join(args[:3])} ... exited {exc.code}", file=sys.stderr)


def warm() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        for day in DATES:
            crop(SAMPLE / f"CIA_Landsat7_{day}.tif", d / f"L_{day}.tif")
            crop(SAMPLE / f"CIA_MOD09GA_{day}.tif", d / f"M_{day}.tif")
            crop(SAMPLE / f"CIA_MOD09GA_{day}.tif", d / f"N_{day}.tif", block=RATIO)
        one = ["--pair", str(d / f"L_{DATES[0]}.tif"), str(d / f"M_{DATES[0]}.tif")]
        two = [*one, "--pair", str(d / f"L_{DATES[2]}.tif"), str(d / f"M_{DATES[2]}.tif")]
        target = ["--coarse", str(d / f"M_{DATES[1]}.tif"), "-q", "--overwrite"]
        native = ["--pair", str(d / f"L_{DATES[0]}.tif"), str(d / f"N_{DATES[0]}.tif")]
        native += ["--coarse", str(d / f"N_{DATES[1]}.tif"), "-q", "--overwrite"]
        ratio = ["--param", f"ratio={RATIO}"]
        for method in ("starfm", "fsdaf", "fsdaf2", "fitfc"):
            out = str(d / f"{method}.tif")
            run("predict", "--method", method, *one, *target, "--out", out,
                *([] if method == "starfm" else ratio))  # fmt: skip
            run("predict", "--method", method, *native, "--out", out)
        run("predict", "--method", "estarfm", *two, *target, "--out", str(d / "e.tif"))
        run("predict", "--method", "estarfm", *two, *target, "--out", str(d / "e.tif"),
            "--param", "threshold=window")  # fmt: skip
        run("predict", "--method", "fsdaf", *one, *target, "--out", str(d / "f.tif"), *ratio,
            "--param", "spline_radius=0")  # fmt: skip
        run("predict", "--method", "fsdaf", *native, "--out", str(d / "f.tif"),
            "--param", "spline_radius=0")  # fmt: skip
        for base in ("fsdaf", "sw"):
            run("predict", "--method", "vipstf", *two, *target, "--out", str(d / "v.tif"),
                *ratio, "--param", f"base={base}")  # fmt: skip
    compiled, missing = kernels()
    print(f"warm_kernels: {compiled} kernel(s) compiled or loaded from numba's cache", end="")
    print(f"; not reached: {', '.join(missing)}" if missing else "")
    if missing:  # a method or option renamed: this script no longer covers every kernel
        sys.exit(1)


def kernels() -> tuple[int, list[str]]:
    """How many of the kernels (the public numba functions of ``stfusion.kernels``; the
    ``_helpers`` are compiled into them) this process has compiled or loaded, and the names
    of the others."""
    import importlib
    import pkgutil

    import numba

    import stfusion.kernels as package

    done, missing = 0, []
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        for name, obj in vars(module).items():
            if not isinstance(obj, numba.core.registry.CPUDispatcher):
                continue
            if name.startswith("_") or obj.__module__ != module.__name__:
                continue
            if obj.signatures:
                done += 1
            else:
                missing.append(f"{info.name}.{name}")
    return done, missing


if __name__ == "__main__":
    np.seterr(all="ignore")
    warm()
