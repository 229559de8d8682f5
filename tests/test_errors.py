"""Bad values end in one line naming the problem and the fix, never a traceback.

In-process (``main()``, the library): options, method parameters, scheduler addresses,
checkpoints, damaged files. Exit statuses of the real process are in ``test_process.py``.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import numpy as np
import pytest

from conftest import PredictCase, write_tif
from conftest import run_clean as run
from stfusion.errors import InputFileError, InvalidParameterError, STFusionWarning
from stfusion.io import FileSource

# ---------------------------------------------------------------------------- options


@pytest.mark.parametrize(
    "option, value",
    [
        ("--mem-limit", "-5"),
        ("--mem-limit", "nan"),
        ("--mem-limit", "0"),
        ("--mem-limit", "inf"),
        ("--mem-limit", "1e14"),  # GDAL's cache setting overflowed: a traceback
        ("--mem-limit", "5e-324"),  # came out as no limit at all
        ("--workers", "0"),
        ("--workers", "-3"),
        ("--threads", "0"),
        ("--fine-scale", "0"),
        ("--coarse-scale", "0"),
        ("--fine-scale", "nan"),
        ("--coarse-scale", "inf"),
        ("--fine-offset", "nan"),
        ("--scheduler", "not a url"),
        ("--scheduler", "tcp://host:99999"),
    ],
)
def test_predict_refuses_bad_option_values(
    option: str, value: str, predict_case: PredictCase
) -> None:
    code, err = predict_case.run(option, value, "-q")
    assert code == 2, err
    assert option in err and repr(value) in err
    assert not predict_case.out.exists()


def test_scheduler_message_names_the_accepted_forms(predict_case: PredictCase) -> None:
    _, err = predict_case.run("--scheduler", "not a url", "-q")
    assert "'not a url'" in err and "tcp://HOST:PORT" in err and "scheduler file" in err


@pytest.mark.parametrize("command", ["series", "train", "distill"])
def test_other_commands_share_the_checks(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run([command, "--fine-scale", "0"], capsys)
    assert code == 2 and "--fine-scale" in err and "greater than 0" in err


def test_series_mem_limit_and_workers(capsys: pytest.CaptureFixture[str]) -> None:
    for option, value in [("--mem-limit", "nan"), ("--mem-limit", "1e14"), ("--workers", "0")]:
        code, err = run(["series", option, value], capsys)
        assert code == 2 and option in err


def test_check_scheduler_forms(tmp_path: Path) -> None:
    from stfusion.parallel import check_scheduler

    for ok in [
        "tcp://127.0.0.1:8786",
        "localhost:8786",
        "tls://host.example:8786",
        "tcp://[::1]:8786",
    ]:
        assert check_scheduler(ok) == ok
    sched = tmp_path / "scheduler.json"
    sched.write_text("{}")
    assert check_scheduler(str(sched)) == str(sched)
    for bad in ["not a url", "tcp://host", "http//x:1", "host:0", "", 42, None]:
        with pytest.raises(InvalidParameterError, match="tcp://HOST:PORT"):
            check_scheduler(bad)


# ---------------------------------------------------------------- method parameters


@pytest.mark.parametrize(
    "method, param, words",
    [
        ("additive", "ratio=inf", "finite"),
        ("additive", "ratio=nan", "finite"),
        ("fsdaf", "ratio=1e-9", "between 1 and 1000"),
        ("fsdaf", "ratio=0", "between 1 and 1000"),
        ("fsdaf", "ratio=1e9", "between 1 and 1000"),
        ("starfm", "classes=inf", "finite"),
        ("starfm", "uncertainty=nan", "finite"),
        ("starfm", "window=99999999999999999999999", "larger than the scene"),
    ],
)
def test_bad_params_fail_cleanly(
    method: str, param: str, words: str, predict_case: PredictCase
) -> None:
    code, err = predict_case.run("-q", swap={"starfm": method, "window=7": param})
    assert code == 1, err
    assert words in err and err.startswith("Error:") and len(err.strip().splitlines()) == 1


def test_param_bounds_in_python() -> None:
    from stfusion.methods.estarfm import ESTARFM
    from stfusion.methods.starfm import STARFM

    with pytest.raises(InvalidParameterError, match="finite"):
        STARFM(classes=math.inf)
    with pytest.raises(InvalidParameterError, match="finite"):
        ESTARFM(data_min=math.nan)
    ESTARFM(data_min=-math.inf, data_max=math.inf)  # inf still means "off"


def test_fsdaf_tiny_ratio_in_python(small_tifs: dict[str, Path]) -> None:
    from stfusion.methods.fsdaf import FSDAF

    with pytest.raises(InvalidParameterError, match="ratio"):
        FSDAF().fit([(small_tifs["f1"], small_tifs["c1"])], ratio=1e-9)
    with pytest.raises(InvalidParameterError, match="ratio"):
        FSDAF().fit([(small_tifs["f1"], small_tifs["c1"])], ratio=math.inf)


def test_window_bound_by_the_scene(small_tifs: dict[str, Path]) -> None:
    from stfusion.methods.fitfc import FitFC
    from stfusion.methods.starfm import STARFM

    pair = [(small_tifs["f1"], small_tifs["c1"])]  # 40 x 40
    with pytest.raises(InvalidParameterError, match=r"window=81 or less"):
        STARFM(window=9999).fit(pair)
    STARFM(window=81).fit(pair)  # the largest useful window is accepted
    STARFM().fit(pair)  # the default (51) is never refused, even beyond 2 x a tiny scene
    with pytest.raises(InvalidParameterError, match=r"regression_window=11 or less"):
        FitFC(regression_window=13, window=7, similar=5).fit(pair, ratio=10)


def test_mem_limit_and_workers_in_python(small_tifs: dict[str, Path]) -> None:
    from stfusion.methods.baselines import Additive

    est = Additive().fit([(small_tifs["f1"], small_tifs["c1"])])
    est.prepare(small_tifs["c2"])
    for bad in (-5, 0, math.nan, math.inf):
        with pytest.raises(InvalidParameterError, match="mem_limit_mb"):
            est.predict(mem_limit_mb=bad)
    with pytest.raises(InvalidParameterError, match="workers"):
        est.predict(workers=0)


def test_a_limit_that_leaves_only_tiny_windows_is_warned_about() -> None:
    """``--mem-limit 1`` ran 15625 windows of 16 px on a 2000 px scene (minutes instead of
    seconds) without a word, while the process needs ~150 MB besides the limit anyway."""
    import warnings

    from stfusion.demo import sample_dir
    from stfusion.methods.starfm import STARFM

    d = sample_dir()
    est = STARFM(window=31).fit(
        [(d / "CIA_Landsat7_2001-10-17.tif", d / "CIA_MOD09GA_2001-10-17.tif")]
    )
    est.prepare(d / "CIA_MOD09GA_2001-11-02.tif")
    with pytest.warns(STFusionWarning, match=r"--mem-limit 1 MB .* windows of 20 px only"):
        assert len(est.plan(1)) == 169  # 20 px: the sample's resolution ratio
    with warnings.catch_warnings():
        warnings.simplefilter("error", STFusionWarning)
        est.plan(100)
        est.plan(window_size=16)  # asked for: no warning


# ---------------------------------------------------------------------- input files


def test_truncated_file_names_file_and_window(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    path = write_tif(tmp_path / "cut.tif", rng.random((2, 64, 64), dtype=np.float32))
    os.truncate(path, path.stat().st_size // 2)
    src = FileSource(str(path))  # the header is intact: it opens
    with pytest.raises(InputFileError, match=r"cut\.tif: reading rows 0-63, columns 0-63") as e:
        src.read()
    assert "damaged or incomplete" in str(e.value)
    with pytest.raises(InputFileError, match="damaged or incomplete"):
        src.sample(64)


def test_non_utf8_name(tmp_path: Path, small_tifs: dict[str, Path]) -> None:
    from stfusion.io import check_output

    bad = os.fsdecode(os.fsencode(tmp_path) + b"/x\xff.tif")
    with open(os.fsencode(bad), "wb") as f:
        f.write(small_tifs["f1"].read_bytes())
    with pytest.raises(InputFileError, match=r"x\\xff\.tif: the input file name is not valid"):
        FileSource(bad)
    with pytest.raises(InputFileError, match="output file name is not valid UTF-8"):
        check_output(os.fsdecode(os.fsencode(tmp_path) + b"/o\xff.tif"), overwrite=False)


# ----------------------------------------------------------------------- checkpoints


def _checkpoint(tmp_path: Path, change: dict, drop: tuple[str, ...] = ()) -> Path:
    torch = pytest.importorskip("torch")
    from stfusion.methods.deep import demo_weights

    data = torch.load(demo_weights("dcstfn"), map_location="cpu", weights_only=True)
    for key in drop:
        del data[key]
    data.update(change)
    path = tmp_path / "forged.ckpt"
    torch.save(data, path)
    return path


@pytest.mark.parametrize(
    "change, drop, words",
    [
        ({}, ("network",), "lacks 'network'"),
        ({}, ("state_dict", "norm"), "lacks 'state_dict', 'norm'"),
        ({"bands": "six"}, (), "'bands' is a str"),
        (
            # the shipped weights are band-agnostic: one band, a correction to additive
            {
                "network": {
                    "network": "dcstfn",
                    "bands": 1,
                    "channels": [100000] * 3,
                    "agnostic": "additive",
                }
            },
            (),
            "size of 100000",
        ),
        (
            {
                "network": {
                    "network": "dcstfn",
                    "bands": 1,
                    "channels": [8000] * 3,
                    "agnostic": "additive",
                }
            },
            (),
            "parameters",
        ),
        (
            {"network": {"network": "dcstfn", "bands": 3, "channels": [32, 64, 128]}},
            (),
            "for 3 bands",
        ),
        ({"bands": 10**9}, (), "'bands' is 1000000000"),
    ],
)
def test_forged_checkpoint_refused_before_building(
    change: dict, drop: tuple[str, ...], words: str, predict_case: PredictCase
) -> None:
    path = _checkpoint(predict_case.dir, change, drop)
    code, err = predict_case.run("-q", swap={"starfm": "dcstfn", "window=7": f"weights={path}"})
    assert code == 1, err
    assert words in err and str(path) in err and "damaged" in err


def test_a_url_is_named_as_one_with_the_gdal_prefix_to_use() -> None:
    """``https://...`` was "file not found", with advice about globs."""
    from stfusion.io.stacks import split_spec

    with pytest.raises(InputFileError, match=r"a URL, not a file.*/vsicurl/https://x\.org/a\.tif"):
        split_spec("https://x.org/a.tif")


def test_a_comma_list_names_the_item_that_found_nothing(tmp_path: Path) -> None:
    """A user trial: one misspelt band file in a comma list named the whole list, "file not
    found", not the file."""
    from stfusion.io.stacks import split_spec

    (tmp_path / "B1.tif").write_bytes(b"")
    (tmp_path / "B2.tif").write_bytes(b"")
    b1, b2, b9 = (str(tmp_path / f"B{i}.tif") for i in (1, 2, 9))
    for spec in (f"{b1},{b9},{b2}", f"{b1},{b9},{b2}:1,2", f"{tmp_path}/B[12].tif,{b9}"):
        with pytest.raises(InputFileError, match=rf"{re.escape(b9)} found nothing \(1 of"):
            split_spec(spec)
    with pytest.raises(InputFileError, match="file not found"):
        split_spec(b9)


def test_a_shipped_model_name_as_weights_says_what_weights_takes() -> None:
    """A user trial: -p weights=shipped:vitgan (the form distill --teacher takes) said only
    "checkpoint not found"."""
    pytest.importorskip("torch")
    from stfusion.dl.checkpoint import load_checkpoint

    with pytest.raises(InputFileError, match=r"shipped:vitgan: checkpoint not found\. A method"):
        load_checkpoint("shipped:vitgan")
    with pytest.raises(InputFileError, match=r"nope\.ckpt: checkpoint not found\. Check the path"):
        load_checkpoint("nope.ckpt")


def test_a_tiff_cut_short_is_called_damaged_not_another_format(tmp_path: Path) -> None:
    """A GeoTIFF whose directory (written at the end) was cut off by a copy or download was
    "not a raster GDAL can read ... Give a GeoTIFF, ENVI or another GDAL format": the fix
    named was the wrong one."""
    whole = write_tif(tmp_path / "whole.tif", np.ones((2, 64, 64), np.float32))
    data = whole.read_bytes()
    directory = int.from_bytes(data[4:8], "little" if data[:2] == b"II" else "big")
    cut = tmp_path / "cut.tif"
    cut.write_bytes(data[: max(directory, 8)])  # cut where the directory begins
    text = tmp_path / "text.tif"
    text.write_text("not an image")
    with pytest.raises(InputFileError, match=r"cut\.tif: a TIFF .*damaged or incomplete"):
        FileSource(str(cut))
    with pytest.raises(InputFileError, match=r"text\.tif: not a raster GDAL can read"):
        FileSource(str(text))


def test_a_refit_forgets_the_last_target_and_a_failed_fit_leaves_no_half_state(
    small_tifs: dict[str, Path],
) -> None:
    """`fit(A); predict(T); fit(B); predict()` used T and the state prepared for A (FSDAF
    mixed the two, STARFM gave NaN on another grid); a fit that raised left the new scene
    with the old state, and predict ran on it."""
    from stfusion.methods.ensemble import Ensemble
    from stfusion.methods.starfm import STARFM

    pair = [(str(small_tifs["f1"]), str(small_tifs["c1"]))]
    est = STARFM().fit(pair)
    first = est.predict(str(small_tifs["c2"])).values
    est.fit(pair)
    with pytest.raises(InvalidParameterError, match="give the coarse target"):
        est.predict()
    np.testing.assert_array_equal(est.predict(str(small_tifs["c2"])).values, first)
    ens = Ensemble(members="starfm,nochange").fit(pair, ratio=10)
    with pytest.raises(InvalidParameterError):
        ens.fit(pair)  # the one-grid images give no ratio
    with pytest.raises(InvalidParameterError, match="call fit"):
        ens.predict(str(small_tifs["c2"]))


def test_a_misspelt_keyword_names_the_closest_one_the_function_takes() -> None:
    """predict(worker=2) and fuse(memlimit=...) were Python's bare TypeError, naming no
    keyword that would do; still a TypeError (and an STFusionError) for callers."""
    import numpy as np

    from stfusion.api import evaluate_files, run_prediction
    from stfusion.errors import UnknownKeywordError
    from stfusion.methods import fuse, make_estimator
    from stfusion.methods.baselines import Additive

    a = np.ones((1, 8, 8), np.float32)
    est = Additive().fit([(a, a)])
    cases = [
        (lambda: est.predict(a, worker=2), "'workers'"),
        (lambda: fuse(Additive(), [(a, a)], a, memlimit=64), "'mem_limit_mb'"),
        (lambda: make_estimator("fsdaf", pair=1), "'pairs'"),
        (lambda: run_prediction(method="starfm", pair=[]), "'pairs'"),
        (lambda: evaluate_files("p.tif", "t.tif", truthscale=1e-4), "'truth_scale'"),
    ]
    for call, closest in cases:
        with pytest.raises(UnknownKeywordError, match=f"did you mean {closest}") as info:
            call()
        assert isinstance(info.value, TypeError)


def test_kernels_are_cached_under_the_temp_dir_when_numba_can_write_nowhere(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A read-only shared install with HOME read-only or unset: numba refused every
    cache=True kernel at import ("cannot cache function"), and the message blamed a plugin
    package for the built-in STARFM. Checked by hand with a read-only copy of src/ and
    HOME (setpriv without CAP_DAC_OVERRIDE); here the decision itself."""
    import os
    import tempfile

    from numba.core import caching, config

    import stfusion.kernels as kernels

    class Nowhere:
        @classmethod
        def from_function(cls, py_func: object, py_file: str) -> None:
            return None

    monkeypatch.setattr(caching.CacheImpl, "_locator_classes", [Nowhere])
    monkeypatch.setattr(config, "CACHE_DIR", "")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    kernels._cache_where_writable()
    mine = tmp_path / f"stfusion-numba-cache-{os.getuid()}"
    assert config.CACHE_DIR == str(mine) and (mine.stat().st_mode & 0o777) == 0o700
    # a folder of that name others may write (planted by another user): not used, as numba
    # loads pickles from it
    os.chmod(mine, 0o777)
    kernels._cache_where_writable()
    assert config.CACHE_DIR != str(mine) and "stfusion-numba-cache-" in config.CACHE_DIR


def test_a_full_temporary_folder_is_named_as_such(monkeypatch: pytest.MonkeyPatch) -> None:
    """A spill to a full TMPDIR said "write the outputs elsewhere", which would not help:
    the spill file is unlinked, so its error named no file."""
    import errno
    import os
    import tempfile

    import numpy as np

    from stfusion.cli.main import _os_advice
    from stfusion.io import spill

    def full(fd: int, data: bytes, offset: int) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    arr = spill.SpillArray((4, 3), np.float32, spill=True)
    monkeypatch.setattr(spill.os, "pwrite", full)
    with pytest.raises(OSError) as info:
        arr.write(0, np.ones((4, 3), np.float32))
    assert info.value.filename == tempfile.gettempdir() and "TMPDIR" in _os_advice(info.value)

    spill = OSError(errno.ENOSPC, "No space left", tempfile.gettempdir())  # io.spill's
    assert "temporary folder" in _os_advice(spill) and "TMPDIR" in _os_advice(spill)
    out = OSError(errno.ENOSPC, "No space left", os.path.join(tempfile.gettempdir(), "p.tif"))
    assert "write the outputs elsewhere" in _os_advice(out)
    # a trial: root in an immutable folder met EPERM creating train's lock, and no advice
    locked = OSError(errno.EPERM, "Operation not permitted", "/data/.m.ckpt.stfusion-train.lock")
    assert "immutable" in _os_advice(locked) and "folder you can write in" in _os_advice(locked)


def test_warnings_name_the_caller_s_line() -> None:
    """A notebook user's trial: stfusion's warnings named its own lines (errors.py, the
    keyword-checking wrapper, for evaluate's), whatever the depth; they name the caller's."""
    import warnings

    import numpy as np

    from stfusion.metrics import evaluate

    truth = np.random.default_rng(0).uniform(0.1, 0.3, (2, 20, 20)).astype(np.float32)
    pred = truth.copy()
    pred[1] = np.nan
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        evaluate(pred, truth)
    here = [w for w in caught if "no pixel valid" in str(w.message)]
    assert here and all(w.filename == __file__ for w in here), [w.filename for w in caught]
    assert issubclass(here[0].category, STFusionWarning)


def test_malformed_pairs_are_named_not_unpacked() -> None:
    """A notebook user's trial: fit([(a, a, a)]), fit([a]) and fit((a, a)) with image arrays
    raised "too many values to unpack" (the refusal existed, after the first unpacking)."""
    import numpy as np

    from stfusion.methods.baselines import Additive

    a = np.random.default_rng(0).random((3, 40, 40)).astype(np.float32)
    for pairs in ([(a, a, a)], [a]):
        with pytest.raises(InvalidParameterError, match=r"list of \(fine, coarse\) pairs, e\.g"):
            Additive().fit(pairs)
    with pytest.raises(InvalidParameterError, match=r"give \[\(fine, coarse\)\] for one pair"):
        Additive().fit((a, a))


def test_an_empty_array_is_called_empty() -> None:
    """A notebook user's trial: zero rows or zero bands were "no valid pixels (all
    nodata/NaN)", which sent the user looking for a nodata value."""
    import numpy as np

    from stfusion.errors import EmptyInputError
    from stfusion.methods.baselines import Additive

    for shape in ((3, 0, 10), (0, 10, 10)):
        a = np.zeros(shape, np.float32)
        with pytest.raises(EmptyInputError, match=r"the fine image is empty"):
            Additive().fit([(a, a)])
