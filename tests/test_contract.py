"""One contract suite that every registered method joins automatically.

The checks are :func:`stfusion.testing.check_method`'s (published, so that a third-party method
can run them on itself); each runs here as its own test for every registered method. New
methods need no change here unless their defaults are slow on tiny scenes (then add small
parameters to FAST_PARAMS). What a method promises (exact properties, quality fields, pairs)
is declared in its ``tags``.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio

from conftest import piecewise_scene, run_cli_ok, write_tif
from stfusion.methods import FusionMethod, available, get_method
from stfusion.scene import open_scene
from stfusion.testing import CHECKS, RATIO, check_method

#: Small windows keep the suite fast; defaults are tested elsewhere.
FAST_PARAMS: dict[str, dict[str, object]] = {
    "starfm": {"window": 7},
    "estarfm": {"window": 7},
    "fsdaf": {},
    "fsdaf2": {},
    "fitfc": {"regression_window": 3, "window": 9, "similar": 8},
    "vipstf": {"base": "fsdaf"},  # two pairs (min_pairs), FSDAF on the virtual pair
    "ensemble": {"members": "additive,starfm"},  # two fast members
}

HAS_TORCH = importlib.util.find_spec("torch") is not None
METHODS = sorted(m for m in available() if HAS_TORCH or not get_method(m).tags.needs_torch)
DEEP = sorted(m for m in METHODS if get_method(m).tags.needs_torch)


@pytest.fixture(scope="session", autouse=True)
def _deep_weights(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Untrained 3-band checkpoints for the deep methods (the demo weights have 6 bands)."""
    if not HAS_TORCH:
        return
    from stfusion.dl.distill import random_student_checkpoint
    from stfusion.dl.train import random_checkpoint

    folder = tmp_path_factory.mktemp("deep")
    for name in DEEP:
        if name == "student":
            path = random_student_checkpoint(folder / f"{name}.ckpt", 3)
        else:
            path = random_checkpoint(folder / f"{name}.ckpt", name, 3, size="tiny")
        FAST_PARAMS[name] = {"weights": str(path), "tile": 16}


def _estimator(name: str) -> FusionMethod:
    return get_method(name)(**FAST_PARAMS.get(name, {}))


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__.removeprefix("check_"))
@pytest.mark.parametrize("name", METHODS)
def test_contract(name: str, check: object) -> None:
    check(get_method(name), FAST_PARAMS.get(name))  # type: ignore[operator]


def test_check_method_runs_every_check() -> None:
    check_method(get_method("additive"))


def test_check_method_catches_a_broken_method() -> None:
    """A method that breaks its declared promises fails with a message naming it."""
    from stfusion.methods.baselines import Additive
    from stfusion.methods.params import MethodTags

    class Liar(Additive):
        name = "liar"
        tags = MethodTags(exact=("unchanged", "uniform_change"), quality=("fallback",))

        def predict_window(self, window: object) -> np.ndarray:
            return super().predict_window(window) + np.float32(1.0)  # type: ignore[arg-type]

    with pytest.raises(AssertionError, match=r"liar.*unchanged"):
        check_method(Liar)

    class NoSignature(FusionMethod):
        name, title, paper = "nosig", "t", "p"
        params, tags = get_method("fitfc").params, get_method("fitfc").tags

    with pytest.raises(AssertionError, match=r"nosig.*__init__"):
        check_method(NoSignature)


@pytest.mark.parametrize("name", METHODS)
def test_cli_equals_library_and_keeps_grid(name: str, tmp_path: Path) -> None:
    from affine import Affine

    scene = piecewise_scene(48, 48, bands=3, patch=4, ratio=RATIO)
    fine, coarse = scene["fine"], scene["coarse"]
    target = (coarse * 1.1).astype(np.float32)
    tr = Affine(30.0, 0, 500000.0, 0, -30.0, 6100000.0)
    f = write_tif(tmp_path / "f.tif", fine, transform=tr)
    c = write_tif(tmp_path / "c.tif", coarse, transform=tr)
    t = write_tif(tmp_path / "t.tif", target, transform=tr)
    out = tmp_path / "out.tif"
    n = get_method(name).tags.min_pairs
    args = [
        "predict",
        "--method",
        name,
        "--coarse",
        str(t),
        "--out",
        str(out),
        "-q",
        "--param",
        f"ratio={RATIO}",
    ]
    # one copy of the pair per --pair (the same files twice are refused as a repeated pair)
    copies = [(f, c)] + [
        (shutil.copy(f, tmp_path / f"f{k}.tif"), shutil.copy(c, tmp_path / f"c{k}.tif"))
        for k in range(1, n)
    ]
    for fk, ck in copies:
        args += ["--pair", str(fk), str(ck)]
    for k, v in FAST_PARAMS.get(name, {}).items():
        args += ["--param", f"{k}={v}"]
    run_cli_ok(args)
    with rasterio.open(out) as ds:
        assert ds.transform == tr and ds.crs.to_epsg() == 32755 and ds.dtypes[0] == "float32"
        cli = ds.read()
    scene_obj = open_scene(copies, t, ratio=RATIO)
    lib = _estimator(name).fit(scene_obj).predict(scene_obj.target).values
    np.testing.assert_array_equal(cli, lib)
