"""What a user trial of writing a plugin method found: windows of the wrong shape written
into the file (rasterio resampled them) or copied into every band (numpy broadcast), with
exit 0; a halo() that is not an integer ending in a traceback; a contract suite whose
float32-on-the-fine-grid check could not fail."""

from __future__ import annotations

import dataclasses
import re
from numbers import Integral
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rasterio.windows import Window

from stfusion.errors import MethodOutputError
from stfusion.methods import FusionMethod, Param
from stfusion.methods.baselines import Additive
from stfusion.methods.params import Interval
from stfusion.testing import check_windows, piecewise_scene


class WithHalo(Additive):
    """Forgets to crop its halo."""

    name = "withhalo"

    def halo(self) -> int:
        return 3

    def predict_window(self, window: Window) -> np.ndarray:
        fines, coarses, target = self.read_inputs(window, 3)
        return (fines[0] + target - coarses[0]).astype(np.float32)


class OneBand(Additive):
    name = "oneband"

    def predict_window(self, window: Window) -> np.ndarray:
        return super().predict_window(window)[:1]


class WidthForHeight(Additive):
    """Uses window.width for both sides: right for square windows only."""

    name = "widthbug"

    def predict_window(self, window: Window) -> np.ndarray:
        square = Window(window.col_off, window.row_off, window.width, window.width)
        return super().predict_window(square)


class Float64(Additive):
    name = "float64"

    def predict_window(self, window: Window) -> np.ndarray:
        return super().predict_window(window).astype(np.float64)


class Integers(Additive):
    name = "integers"

    def predict_window(self, window: Window) -> np.ndarray:
        return np.round(super().predict_window(window) * 10000).astype(np.int16)


class FloatHalo(Additive):
    name = "floathalo"

    def halo(self) -> int:
        return 2.5  # type: ignore[return-value]


def _fitted(cls: type[Additive]) -> tuple[Additive, np.ndarray]:
    scene = piecewise_scene(h=40, w=56)
    est = cls().fit([(scene["fine"], scene["coarse"])])
    return est, scene["coarse"] + np.float32(0.01)


@pytest.mark.parametrize("cls", [WithHalo, OneBand, WidthForHeight, Integers])
def test_a_window_of_the_wrong_shape_or_kind_stops_the_run(
    cls: type[Additive], tmp_path: Path
) -> None:
    est, target = _fitted(cls)
    with pytest.raises(MethodOutputError, match=f"{cls.name}: predict_window returned"):
        est.predict(target, window_size=16)
    with pytest.raises(MethodOutputError, match=f"{cls.name}: predict_window returned"):
        est.predict(target, out=tmp_path / "x.tif", window_size=16)
    assert not (tmp_path / "x.tif").exists()
    with pytest.raises(MethodOutputError):
        est.predict(target, out=tmp_path / "y.tif", quality_out=tmp_path / "q.tif")


def test_float64_windows_are_taken_as_float32() -> None:
    est, target = _fitted(Float64)
    base, _ = _fitted(Additive)
    np.testing.assert_array_equal(
        est.predict(target, window_size=16).values, base.predict(target).values
    )


def test_a_halo_that_is_not_a_whole_number_is_named() -> None:
    est, target = _fitted(FloatHalo)
    with pytest.raises(MethodOutputError, match=r"floathalo: halo\(\) returned 2\.5"):
        est.predict(target)


@pytest.mark.parametrize("cls", [WithHalo, OneBand, WidthForHeight, Float64, Integers, FloatHalo])
def test_the_contract_suite_catches_bad_windows(cls: type[Additive]) -> None:
    with pytest.raises(AssertionError, match=cls.name):
        check_windows(cls)


def test_the_contract_suite_passes_a_good_method() -> None:
    check_windows(Additive)


class ZeroFilled(Additive):
    """Writes 0 where it cannot predict (nan_to_num), a plugin author's trial: the contract
    suite passed it."""

    name = "zerofilled"

    def predict_window(self, window: Window) -> np.ndarray:
        return np.nan_to_num(super().predict_window(window), nan=0.0)


def test_the_contract_suite_catches_a_method_that_fills_gaps_with_zero() -> None:
    from stfusion.testing import check_nan_holes

    with pytest.raises(AssertionError, match=r"zerofilled.*predicts exactly 0"):
        check_nan_holes(ZeroFilled)
    check_nan_holes(Additive)


class NeedsRatio(Additive):
    """Declares tags.needs_ratio and, as docs/plugins.md says, leaves the rest to stfusion."""

    name = "needsratio"
    tags = dataclasses.replace(Additive.tags, needs_ratio=True)


def test_a_method_needing_the_ratio_is_refused_it_from_its_tag() -> None:
    """A plugin trial: needs_ratio=True was not enforced by fit, so a method written from the
    docs failed check_method ("predicted without a ratio, but tags.needs_ratio is true")."""
    from stfusion.errors import InvalidParameterError
    from stfusion.testing import check_method

    check_method(NeedsRatio)
    scene = piecewise_scene(h=40, w=56)
    with pytest.raises(InvalidParameterError, match="needsratio needs the resolution ratio R"):
        NeedsRatio().fit([(scene["fine"], scene["coarse"])])
    NeedsRatio().fit([(scene["fine"], scene["coarse"])], ratio=8)


def test_state_in_dicts_and_nested_lists_counts() -> None:
    """A plugin trial: state kept as {"blue": array} or [[[array]]] counted 0 bytes, so
    --mem-limit did not take it off the windows' share."""
    scene = piecewise_scene(h=40, w=56)
    est = Additive().fit([(scene["fine"], scene["coarse"])])
    base = est.state_nbytes()
    table = np.zeros((1000, 100))  # 800 000 bytes
    est.tables_ = {"blue": table}
    assert est.state_nbytes() == base + table.nbytes
    est.tables_ = [[[table]]]
    assert est.state_nbytes() == base + table.nbytes


class NondetFit(Additive):
    """An unseeded random step in fit."""

    name = "nondetfit"

    def _fit(self, scene: Any) -> None:
        self.shift_ = np.float32(np.random.default_rng().normal(0, 0.01))

    def predict_window(self, window: Window) -> np.ndarray:
        return super().predict_window(window) + self.shift_


class StackPerPair(Additive):
    """With two pairs, one prediction per pair stacked: (2, bands, h, w)."""

    name = "stackperpair"

    def predict_window(self, window: Window) -> np.ndarray:
        fines, coarses, target = self.read_inputs(window, 0)
        preds = [(f + target - c).astype(np.float32) for f, c in zip(fines, coarses)]
        return preds[0] if len(preds) == 1 else np.stack(preds)


class RatioParam(Additive):
    name = "ratioparam"
    params = (Param("ratio", 2, Interval(Integral, 1, None, closed="left"), "", "a block size"),)

    def __init__(self, *, ratio: int = 2) -> None:
        FusionMethod.__init__(self, ratio=ratio)


@pytest.mark.parametrize(
    ("cls", "said"),
    [
        (NondetFit, "a second fit on the same inputs predicts otherwise"),
        (StackPerPair, "with 2 pairs"),
        (RatioParam, "parameter name(s) ratio belong to the scene"),
    ],
)
def test_the_contract_suite_catches_what_a_plugin_trial_slipped_past_it(
    cls: type[Additive], said: str
) -> None:
    """A plugin trial: an unseeded fit, a two-pair path returning a stack and a parameter
    named ratio all passed check_method (the stack then failed `stfusion predict` with two
    pairs; the ratio parameter could never be set)."""
    from stfusion.testing import check_method

    with pytest.raises((AssertionError, MethodOutputError), match=re.escape(said)):
        check_method(cls)
