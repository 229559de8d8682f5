"""One contract suite that every registered method joins automatically.

New methods need no change here unless their defaults are slow on tiny scenes (then add small
parameters to FAST_PARAMS) or they have exact properties (declare them as the class attribute
``exact_properties``).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import rasterio

from conftest import piecewise_scene, run_cli_ok, write_tif
from stfusion.methods import FusionMethod, available, get_method
from stfusion.scene import open_scene

#: Small windows keep the suite fast; defaults are tested elsewhere.
FAST_PARAMS: dict[str, dict[str, object]] = {
    "starfm": {"window": 7},
    "estarfm": {"window": 7},
    "fsdaf": {},
    "fitfc": {"regression_window": 3, "window": 9, "similar": 8},
    "vipstf": {"base": "fsdaf"},  # two pairs (min_pairs), FSDAF on the virtual pair
    "ensemble": {"members": "additive,starfm"},  # two fast members
}

#: Which exact properties each method's equations give on the piecewise-constant scene.
EXACT: dict[str, set[str]] = {
    "nochange": {"unchanged"},
    "additive": {"unchanged", "uniform_change"},
    "starfm": {"unchanged", "uniform_change"},
    "fitfc": {"unchanged", "uniform_change"},
    "ensemble": {"unchanged", "uniform_change"},  # a convex combination of exact members
    "vipstf": {"unchanged", "uniform_change"},  # those of its base (fsdaf) on the virtual pair
}

HAS_TORCH = importlib.util.find_spec("torch") is not None
DEEP = {"dcstfn", "edcstfn", "ganstfm", "vitgan", "stfdcnn", "student"}
METHODS = sorted(m for m in available() if HAS_TORCH or m not in DEEP)
RATIO = 8


@pytest.fixture(scope="session", autouse=True)
def _deep_weights(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Untrained 3-band checkpoints for the deep methods (the demo weights have 6 bands)."""
    if not HAS_TORCH:
        return
    from stfusion.dl.distill import random_student_checkpoint
    from stfusion.dl.train import random_checkpoint

    folder = tmp_path_factory.mktemp("deep")
    for name in sorted(DEEP & set(METHODS)):
        if name == "student":
            path = random_student_checkpoint(folder / f"{name}.ckpt", 3)
        else:
            path = random_checkpoint(folder / f"{name}.ckpt", name, 3, size="tiny")
        FAST_PARAMS[name] = {"weights": str(path), "tile": 16}


def _estimator(name: str) -> FusionMethod:
    cls = get_method(name)
    return cls(**{k: v for k, v in FAST_PARAMS.get(name, {}).items()
                  if k in {p.name for p in cls.params}})  # fmt: skip


def _pairs(name: str, fine: np.ndarray, coarse: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    cls = get_method(name)
    n = max(cls.min_pairs, 1)
    return [(fine, coarse)] * n


@pytest.fixture(scope="module")
def scene() -> dict[str, np.ndarray]:
    return piecewise_scene(48, 48, bands=3, patch=4, ratio=RATIO)


@pytest.mark.parametrize("name", METHODS)
def test_float32_on_fine_grid_and_tiled_equals_whole(name: str, scene: dict) -> None:
    fine, coarse = scene["fine"], scene["coarse"]
    rng = np.random.default_rng(3)
    target = (coarse + 0.02 * rng.standard_normal(coarse.shape)).astype(np.float32)
    target = np.clip(target, 0.01, None)
    est = _estimator(name).fit(_pairs(name, fine, coarse), ratio=RATIO)
    whole = est.predict(target)
    assert whole.dtype == np.float32 and whole.shape == fine.shape
    assert np.isfinite(whole.values).all()
    tiled = est.predict(target, window_size=RATIO * 2)
    np.testing.assert_array_equal(tiled.values, whole.values)
    threaded = est.predict(target, window_size=RATIO * 2, workers=2)
    np.testing.assert_array_equal(threaded.values, whole.values)


@pytest.mark.parametrize("name", METHODS)
def test_exact_properties(name: str, scene: dict) -> None:
    props = EXACT.get(name, set()) | set(getattr(get_method(name), "exact_properties", ()))
    if not props:
        pytest.skip(f"{name} declares no exact property")
    fine, coarse = scene["fine"], scene["coarse"]
    est = _estimator(name).fit(_pairs(name, fine, coarse), ratio=RATIO)
    if "unchanged" in props:
        np.testing.assert_allclose(est.predict(coarse).values, fine, rtol=1e-5, atol=1e-6)
    if "uniform_change" in props:
        d = np.float32(0.03)
        np.testing.assert_allclose(est.predict(coarse + d).values, fine + d, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", METHODS)
def test_nan_holes_do_not_spread_or_crash(name: str, scene: dict) -> None:
    fine, coarse = scene["fine"].copy(), scene["coarse"].copy()
    fine[:, 10:13, 10:13] = np.nan
    target = coarse.copy()
    target[:, 30:33, 30:33] = np.nan
    est = _estimator(name).fit(_pairs(name, fine, coarse), ratio=RATIO)
    pred = est.predict(target).values
    assert pred.shape == fine.shape
    far = np.ones(fine.shape[1:], bool)
    far[5:18, 5:18] = False
    far[25:38, 25:38] = False
    assert np.isfinite(pred[:, far]).all()


@pytest.mark.parametrize("name", METHODS)
def test_cli_equals_library_and_keeps_grid(name: str, scene: dict, tmp_path: Path) -> None:
    from affine import Affine

    fine, coarse = scene["fine"], scene["coarse"]
    target = (coarse * 1.1).astype(np.float32)
    tr = Affine(30.0, 0, 500000.0, 0, -30.0, 6100000.0)
    f = write_tif(tmp_path / "f.tif", fine, transform=tr)
    c = write_tif(tmp_path / "c.tif", coarse, transform=tr)
    t = write_tif(tmp_path / "t.tif", target, transform=tr)
    out = tmp_path / "out.tif"
    pairs = _pairs(name, fine, coarse)
    args = ["predict", "--method", name, "--coarse", str(t), "--out", str(out), "-q",
            "--param", f"ratio={RATIO}"]  # fmt: skip
    for _ in pairs:
        args += ["--pair", str(f), str(c)]
    for k, v in FAST_PARAMS.get(name, {}).items():
        args += ["--param", f"{k}={v}"]
    run_cli_ok(args)
    with rasterio.open(out) as ds:
        assert ds.transform == tr and ds.crs.to_epsg() == 32755 and ds.dtypes[0] == "float32"
        cli = ds.read()
    scene_obj = open_scene([(f, c)] * len(pairs), t, ratio=RATIO)
    lib = _estimator(name).fit(scene_obj).predict(scene_obj.target).values
    np.testing.assert_array_equal(cli, lib)


@pytest.mark.parametrize("name", METHODS)
def test_estimator_contract(name: str) -> None:
    cls = get_method(name)
    assert cls.name == name and cls.title and cls.paper
    est = cls()
    assert est.get_params() == {p.name: p.default for p in cls.params}
    assert all(not k.endswith("_") for k in vars(est))  # no learned state before fit
    for p in cls.params:
        assert p.help and p.unit is not None
