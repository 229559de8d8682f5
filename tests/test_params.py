"""Declared parameters (``methods/params.py``): constraints, command-line parsing, messages,
``set_params``/``clone`` and the tags' pair rule."""

from __future__ import annotations

import math
import pickle
from numbers import Integral, Real

import numpy as np
import pytest

from conftest import SHARED_DATA
from stfusion.coarse import block_mean
from stfusion.errors import InvalidParameterError
from stfusion.methods import get_method
from stfusion.methods.params import AUTO, Interval, MethodTags, Param, StrOptions, Text


def test_interval_bounds_kinds_and_words() -> None:
    odd = Interval(Integral, 3, None, closed="left", odd=True)
    assert odd.is_satisfied_by(3) and odd.is_satisfied_by(np.int64(51))
    for bad in (1, 4, 7.0, True, "7"):
        assert not odd.is_satisfied_by(bad)
    assert odd.describe() == "an odd integer >= 3"
    unit = Interval(Real, 0, 1, closed="right")
    assert unit.is_satisfied_by(1) and unit.is_satisfied_by(np.float32(0.5))
    assert not unit.is_satisfied_by(0.0) and not unit.is_satisfied_by(math.nan)
    assert unit.describe() == "a finite number > 0 and <= 1"
    assert Interval(Real, 1.0, 1000.0).describe() == "a finite number between 1 and 1000"
    off = Interval(Real, None, None, allow_inf=True)
    assert off.is_satisfied_by(-math.inf) and not off.is_satisfied_by(math.nan)
    assert "finite" in off.describe() and "inf" in off.describe()


def test_cli_strings_parse_by_the_first_constraint_that_reads_them() -> None:
    p = Param("overlap", "auto", (AUTO, Interval(Integral, 0, None, closed="left")), "px", "h")
    assert p.parse("auto") == "auto" and p.parse("16") == 16
    with pytest.raises(
        InvalidParameterError,
        match=r"m: --param overlap=-1: overlap must be "
        r"'auto' or an integer >= 0 \(h\)",
    ):
        p.parse("-1", "m")
    with pytest.raises(InvalidParameterError, match="overlap=x"):
        p.parse("x")
    flag = Param("intercept", True, bool, "", "h")
    assert [flag.parse(t) for t in ("yes", "0", "True", "off")] == [True, False, True, False]
    # FSDAF's classes: a string first, so "6" stays the string it always was on the CLI
    assert get_method("fsdaf").parse_params(["classes=6"]) == {"classes": "6"}
    assert get_method("starfm").parse_params(["classes=40"]) == {"classes": 40.0}
    text = Param("bands", "all", Text("a comma list"), "", "h")
    with pytest.raises(InvalidParameterError, match="a comma list"):
        text.parse("  ")


def test_messages_name_method_parameter_value_and_what_is_allowed() -> None:
    starfm = get_method("starfm")
    with pytest.raises(InvalidParameterError) as info:
        starfm(uncertainty=-1)
    msg = str(info.value)
    assert msg.startswith(
        "starfm: uncertainty=-1: uncertainty must be 'auto' or a finite number > 0 ("
    )
    with pytest.raises(InvalidParameterError, match=r"starfm: unknown parameter 'windows'"):
        starfm(windows=7)
    with pytest.raises(InvalidParameterError, match="by name"):
        starfm(7)
    with pytest.raises(InvalidParameterError, match=r"one of 'scene', 'window'"):
        starfm(threshold="pixel")
    with pytest.raises(InvalidParameterError, match=r"--param =5: no parameter name"):
        starfm.parse_params(["=5"])


def test_set_params_clone_and_pickle() -> None:
    est = get_method("fitfc")(window=9, similar=8)
    assert est.set_params(similar=5) is est and est.similar == 5
    with pytest.raises(InvalidParameterError, match="similar"):
        est.set_params(similar=100)  # > window^2: a cross-parameter rule
    assert est.similar == 5  # a refused change leaves the method as it was
    twin = est.clone()
    assert twin is not est and twin.get_params() == est.get_params()
    back = pickle.loads(pickle.dumps(est))  # the runners pickle fitted methods
    assert back.get_params() == est.get_params()


def test_tags_pair_rule() -> None:
    one, two, many = MethodTags(1, 1), MethodTags(2, 2), MethodTags(2, None)
    assert [one.pairs_text(), two.pairs_text(), many.pairs_text()] == ["1", "2", "2+"]
    assert one.pairs_problem(2) == "needs exactly 1 pair, got 2"
    assert many.pairs_problem(1) == "needs at least 2 pairs, got 1"
    assert MethodTags(1, 3).pairs_problem(4) == "takes at most 3 pairs, got 4"
    assert many.accepts_pairs(9) and not two.accepts_pairs(3)
    with pytest.raises(
        InvalidParameterError,
        match=r"estarfm needs exactly 2 pairs, got 1: "
        r"one before and one after",
    ):
        get_method("estarfm")().fit([(np.zeros((1, 8, 8)), np.zeros((1, 8, 8)))])


def test_str_options_keep_order_and_sort_sets() -> None:
    assert StrOptions(("b", "a")).options == ("b", "a")
    assert StrOptions({"b", "a"}).options == ("a", "b")


def test_old_pair_attributes_are_refused() -> None:
    from stfusion.methods import FusionMethod

    with pytest.raises(TypeError, match="MethodTags"):

        class Old(FusionMethod):
            min_pairs = 2


def test_predict_arguments_and_one_estimator_in_two_threads(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A fitted estimator predicting in one thread refuses a second predict, a prepare or a
    fit from another (each replaced the first one's target or state mid-run: one date's
    windows got the other's values);
    bad window sizes and quality_out without its out are refused with a message."""
    import copy
    import threading

    from stfusion.methods.baselines import Additive

    rng = np.random.default_rng(0)
    f1, c1, c2 = (rng.uniform(0.1, 0.3, (2, 32, 32)).astype(np.float32) for _ in range(3))
    est = Additive().fit([(f1, c1)])
    started, release = threading.Event(), threading.Event()
    results: list[object] = []

    def slow(done: int, total: int) -> None:
        started.set()
        release.wait(30)

    worker = threading.Thread(
        target=lambda: results.append(est.predict(c2, window_size=8, progress=slow).values)
    )
    worker.start()
    assert started.wait(30)
    with pytest.raises(InvalidParameterError, match="already predicting"):
        est.predict(c1)
    # prepare() replaced the running prediction's target, fit() its learned state
    with pytest.raises(InvalidParameterError, match=r"prepare\(\) while .* predicting"):
        est.prepare(c1)
    with pytest.raises(InvalidParameterError, match=r"fit\(\) while .* predicting"):
        est.fit([(c1, c1)])
    copy.deepcopy(est).predict(c1)  # a copy per thread is the way
    release.set()
    worker.join(30)
    np.testing.assert_allclose(results[0], f1 + c2 - c1, rtol=0, atol=1e-6)
    est.predict(c1)  # free again
    for bad in (-5, 0, 1.5, (8, 0)):
        with pytest.raises(InvalidParameterError, match="window_size"):
            est.predict(c2, window_size=bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="needs out="):
        est.predict(c2, quality_out=tmp_path / "q.tif")
    with pytest.raises(InvalidParameterError, match="same file"):
        est.predict(c2, out=tmp_path / "p.tif", quality_out=tmp_path / "p.tif")
    assert list(tmp_path.iterdir()) == []


def test_ratio_and_params_forms_from_python(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """ratio=16 given as a method parameter says where it goes; run_prediction takes params
    as NAME=VALUE strings, one string, or a dict (a dict was "expected name=value", a string
    was split into characters)."""
    from stfusion.api import split_ratio
    from stfusion.methods import make_estimator

    with pytest.raises(
        InvalidParameterError, match=r"belongs to the scene.*fit\(pairs, ratio=16\)"
    ):
        make_estimator("fsdaf", ["ratio=16"])
    assert split_ratio({"window": 31, "ratio": 16}) == (["window=31"], 16.0)
    assert split_ratio("window=31") == (["window=31"], None)
    assert split_ratio(["ratio=10", "window=5"]) == (["window=5"], 10.0)


def test_changed_parameters_need_a_new_fit() -> None:
    """A user trial: set_params(seed=1) after fit, then predict: the output was the seed-0
    fit's while its STFUSION_PARAMS said seed 1. A changed parameter now needs fit again; an
    unchanged one does not."""
    rng = np.random.default_rng(0)
    f1 = rng.random((2, 20, 20)).astype(np.float32)
    c1, c2 = f1 + 0.01, f1 + 0.02
    est = get_method("starfm")(window=5).fit([(f1, c1)], ratio=2)
    est.set_params(window=5)  # the same value: still fitted
    est.predict(c2)
    est.set_params(window=7)
    with pytest.raises(InvalidParameterError, match=r"set_params changed window after fit"):
        est.predict(c2)
    est.set_params(window=5).predict(c2)  # set back: the fit holds again
    est.set_params(window=7).fit([(f1, c1)], ratio=2).predict(c2)


def test_get_params_takes_sklearns_deep_keyword() -> None:
    """`sklearn.base.clone(est)` calls `get_params(deep=False)`; it failed with a TypeError
    although plugins.md says the parameters work as in scikit-learn."""
    from stfusion.methods import available, get_method

    for name in available():
        est = get_method(name)()
        assert est.get_params(deep=False) == est.get_params(deep=True) == est.get_params()


@pytest.mark.parametrize("method", ["starfm", "fitfc", "ensemble"])
def test_band_roles_are_checked_when_the_method_is_made(method: str) -> None:
    """bands='red,red,nir' (a role twice) or a misspelt role was accepted until fit."""
    from stfusion.methods import get_method

    cls = get_method(method)
    for bad in ("red,red,nir", "blue,grn,red", " "):
        with pytest.raises(InvalidParameterError, match="no role twice"):
            cls(bands=bad)
    for good in ("auto", "landsat7", "green,red,nir", "other,red,nir"):
        cls(bands=good)


@pytest.mark.parametrize(
    "method, usual", [("starfm", 51), ("estarfm", 51), ("fsdaf", 41), ("fsdaf2", 41), ("fitfc", 31)]
)
def test_an_auto_window_spans_the_coarse_pixel_and_its_neighbours_at_small_ratios(
    method: str, usual: int
) -> None:
    """The windows were set for MODIS over Landsat (ratios 10-30); at ratio 3 (Landsat over
    Sentinel-2) 51 fine pixels span 17 coarse pixels, 41-69 % worse than 2 R + 1
    (docs/inputs.md, "Small ratios"). ``auto``: the usual number from ratio 8 up or with the
    ratio unknown, 2 R + 1 (at least 7) below; a number given is kept."""
    from stfusion.methods.params import window_size

    est = get_method(method)()
    assert est.window == "auto"
    for ratio, want in [(None, usual), (16.0, usual), (10.0, usual), (8.0, usual), (3.0, 7),
                        (5.0, 11), (4.6, 11), (2.0, 7), (7.4, 15)]:  # fmt: skip
        est.ratio_ = ratio
        assert window_size(est) == want, (ratio, want)
    est.set_params(window=9)
    est.ratio_ = 3.0
    assert window_size(est) == 9


def test_an_auto_window_changes_the_prediction_only_at_small_ratios() -> None:
    """Through fit: the halo (and so the window) follows the ratio the scene gives."""
    rng = np.random.default_rng(0)
    f1 = rng.uniform(0.05, 0.4, (2, 48, 48)).astype(np.float32)
    c1 = f1.reshape(2, 16, 3, 16, 3).mean(axis=(2, 4)).repeat(3, 1).repeat(3, 2)
    c2 = (c1 * 1.1).astype(np.float32)
    starfm = get_method("starfm")
    small = starfm().fit([(f1, c1)], ratio=3)
    assert small.halo() == 3
    auto = small.predict(c2).values
    seven = starfm(window=7).fit([(f1, c1)], ratio=3).predict(c2).values
    np.testing.assert_array_equal(auto, seven)
    assert starfm().fit([(f1, c1)]).halo() == 25  # the ratio unknown: the usual 51


@pytest.mark.parametrize(("method", "usual"), [("fitfc", 30), ("fsdaf", 20), ("fsdaf2", 20)])
def test_auto_similar_shrinks_with_an_auto_window_only(method: str, usual: int) -> None:
    """``similar=auto``: the usual count, but in the window ``auto`` takes at a small ratio
    as many per window area (at least 4); an explicit window keeps the usual count (at most
    window^2); a number given is kept."""
    from stfusion.methods.params import similar_count, window_size

    est = get_method(method)()
    assert est.similar == "auto"
    full = window_size(est)
    at_15 = max(4, round(usual * (15 / full) ** 2))  # ratio 7.4: a 15-pixel window
    for ratio, want in [(None, usual), (10.0, usual), (3.0, 4), (7.4, at_15)]:
        est.ratio_ = ratio
        assert similar_count(est, window_size(est)) == want, (ratio, want)
    est.set_params(window=5)
    est.ratio_ = 3.0
    assert similar_count(est, 5) == min(usual, 25)
    est.set_params(similar=12)
    assert similar_count(est, 5) == 12


@pytest.mark.realdata(SHARED_DATA / "eolearn_s2_l1c")
@pytest.mark.parametrize("method", ["fitfc", "fsdaf"])
def test_defaults_beat_additive_at_ratio_2(method: str) -> None:
    """A trial on Sentinel-2 with 20 m block means (ratio 2): Fit-FC's 30 similar pixels in
    its 7 x 7 window lost to additive by 44 % on one pair, FSDAF's 20 on every one of 20
    ordered pairs (mean 0.00986 against 0.00833). With ``similar=auto`` (4 there) both beat
    additive on each ordered pair of three scenes (before: Fit-FC up to 1.16x additive's RMSE,
    FSDAF 1.26x)."""
    from stfusion.methods.one_call import fuse
    from stfusion.metrics import rmse

    cube = np.load(SHARED_DATA / "eolearn_s2_l1c" / "REFERENCE_SCENES.npy").astype(np.float32)
    fine = [np.transpose(s[:100, :100, [1, 2, 3, 7, 11, 12]], (2, 0, 1)) for s in cube[:3]]
    coarse = [np.repeat(np.repeat(block_mean(f, 2), 2, 1), 2, 2) for f in fine]
    ours, base = [], []
    for i in range(3):
        for j in range(3):
            if i != j:
                pred = fuse(get_method(method)(), [(fine[i], coarse[i])], coarse[j], ratio=2)
                ours.append(np.mean(rmse(np.asarray(pred.values), fine[j])))
                base.append(np.mean(rmse(fine[i] + coarse[j] - coarse[i], fine[j])))
    ratios = np.array(ours) / np.array(base)
    assert (ratios < 1).all(), ratios


def test_a_number_given_as_a_string_in_python_is_named() -> None:
    """A trial: ``ESTARFM(window='31')`` was refused as "must be 'auto' or an odd integer",
    though 31 is odd; the message now says a string was given and the value to give."""
    with pytest.raises(InvalidParameterError, match=r"A string was given: give 31, not '31'"):
        get_method("estarfm")(window="31")
    with pytest.raises(InvalidParameterError) as err:
        get_method("estarfm")(window="x")
    assert "string was given" not in str(err.value)
