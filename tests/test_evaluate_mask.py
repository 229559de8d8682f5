"""``stfusion evaluate --mask`` and what ``--json`` records: the warnings as notes, how each
file was read."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from affine import Affine

from conftest import run_cli, write_tif
from stfusion.errors import STFusionWarning
from stfusion.io import FileSource


def _scores(capsys: pytest.CaptureFixture[str], *args: str, code: int = 0) -> dict:
    got, out, err = run_cli(["evaluate", *args, "--json"], capsys)
    assert got == code, err
    return json.loads(out)


def test_a_mask_scores_as_truth_nodata_would(
    small_tifs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Scores with ``--mask`` equal scores against a truth copy with NaN where the mask says
    invalid, for a mask on the truth's grid and one on a 4x coarser grid (as a cloud mask of
    the coarse sensor)."""
    pred, truth = str(small_tifs["f1"]), small_tifs["f2"]
    src = FileSource(str(truth))
    data, t = src.read(), src.grid.transform
    cloudy = np.zeros((10, 10), np.uint8)
    cloudy[2:5, 3:8] = 1
    cloudy[7, 0] = 1
    coarse_t = t * Affine.scale(4)
    coarse_mask = write_tif(tmp_path / "m_coarse.tif", cloudy, transform=coarse_t, dtype="uint8")
    fine = np.kron(cloudy, np.ones((4, 4), np.uint8))
    fine_mask = write_tif(tmp_path / "m_fine.tif", fine, transform=t, dtype="uint8")
    holed = data.copy()
    holed[:, fine.astype(bool)] = np.nan
    nan_truth = write_tif(tmp_path / "holed.tif", holed, transform=t, names=["red", "nir"])

    want = _scores(capsys, pred, str(nan_truth))
    for mask in (fine_mask, coarse_mask):
        got = _scores(capsys, pred, str(truth), "--mask", str(mask))
        for name in ("rmse", "ssim", "cc", "coverage"):
            assert got[name]["mean"] == pytest.approx(want[name]["mean"], rel=1e-12, abs=1e-15)
        assert got["valid_fraction"]["mean"] == pytest.approx(want["valid_fraction"]["mean"])
        assert got["inputs"]["mask"] == {"path": str(mask.resolve()), "kind": "binary"}
    unmasked = _scores(capsys, pred, str(truth))
    assert unmasked["rmse"]["mean"] != pytest.approx(want["rmse"]["mean"], rel=1e-6)

    # a binary mask takes no flags: a usage error naming the option
    code, _, err = run_cli(
        ["evaluate", pred, str(truth), "--mask", str(fine_mask), "--mask-flags", "cloud"], capsys
    )
    assert code == 2 and "--mask-kind" in err


def test_json_keeps_the_warnings_and_how_each_file_was_read(
    small_tifs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A band-order warning went to stderr only; ``--json`` now has it in ``notes``, and
    ``inputs`` gives each file's path, scale, offset and where they came from."""
    src = FileSource(str(small_tifs["f2"]))
    data, t = src.read(), src.grid.transform
    truth_dn = write_tif(
        tmp_path / "t.tif", np.round(data * 1e4).astype(np.int16), transform=t, dtype="int16"
    )
    pred = write_tif(tmp_path / "p.tif", data[::-1], transform=t, names=["nir", "red"])
    truth = write_tif(tmp_path / "named.tif", data, transform=t, names=["red", "nir"])
    with pytest.warns(STFusionWarning, match="scored by position"):
        got = _scores(capsys, str(pred), str(truth))
    assert any("scored by position" in n for n in got["notes"])

    got = _scores(capsys, str(small_tifs["f1"]), str(truth_dn), "--truth-scale", "1e-4")
    read = got["inputs"]
    assert read["truth"]["path"] == str(truth_dn.resolve())
    assert read["truth"]["scale"] == pytest.approx(1e-4) and read["truth"]["offset"] == 0
    assert "given" in read["truth"]["from"] or "option" in read["truth"]["from"]
    assert read["prediction"]["scale"] == 1.0 and "mask" not in read


def test_an_ndvi_lake_of_one_exact_value_is_not_called_a_fill(
    small_tifs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """NDVI whose water holds one exact value (-0.3, as products that flag water do) looked
    like Landsat C2's reflectance fill (-0.2) to the reflectance rule; a file that names its
    band NDVI, or carries stfusion's variable tag, is not reflectance."""
    t = FileSource(str(small_tifs["f2"])).grid.transform
    rng = np.random.default_rng(1)
    ndvi = rng.uniform(0.2, 0.8, (1, 40, 40)).astype(np.float32)
    ndvi[:, :6, :10] = -0.3  # a lake, 3.75 % of the scene
    pred = write_tif(tmp_path / "p.tif", ndvi + 0.01, transform=t, names=["NDVI"])
    unnamed = write_tif(tmp_path / "u.tif", ndvi, transform=t)
    named = write_tif(tmp_path / "n.tif", ndvi, transform=t, names=["NDVI"])
    with pytest.warns(STFusionWarning, match="undeclared fill"):  # nothing says it is NDVI
        _scores(capsys, str(pred), str(unnamed))
    with warnings.catch_warnings():
        warnings.simplefilter("error", STFusionWarning)
        got = _scores(capsys, str(pred), str(named))
    assert got["rmse"]["mean"] == pytest.approx(0.01, rel=1e-4)
    assert not any("fill" in n for n in got["notes"])


def test_metrics_nan_or_inf_in_every_band_say_why() -> None:
    """A constant prediction has no correlation: cc and uiqi NaN in every band came without a
    note (a partly-NaN band had one); ERGAS inf for a zero-mean truth band likewise."""
    from stfusion.metrics import evaluate

    rng = np.random.default_rng(0)
    truth = rng.uniform(0.1, 0.4, (2, 20, 20))
    report = evaluate(np.full_like(truth, 0.2), truth, ratio=16)
    assert any(n.startswith("cc is NaN in every band") for n in report.notes)
    assert not any("ergas is inf" in n for n in report.notes)
    zero_mean = np.where(np.indices((2, 20, 20)).sum(axis=0) % 2 == 0, 0.25, -0.25)  # mean 0
    report = evaluate(zero_mean + 0.01, zero_mean, ratio=16)
    assert report.mean["ergas"] == np.inf and any("ergas is inf" in n for n in report.notes)


def test_mask_warnings_are_notes_and_an_all_invalid_mask_says_so(
    small_tifs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A QA band read as binary warned on stderr only (naming predict's options); a mask that
    leaves nothing gave null scores with a note that never named the mask."""
    pred, truth = str(small_tifs["f1"]), str(small_tifs["f2"])
    t = FileSource(truth).grid.transform
    qa = np.full((40, 40), 21824, np.uint16)  # Landsat QA_PIXEL "clear" read as binary
    qa_path = write_tif(tmp_path / "qa.tif", qa, transform=t, dtype="uint16")
    with pytest.warns(STFusionWarning, match="--mask-kind in evaluate"):
        got = _scores(capsys, pred, truth, "--mask", str(qa_path), code=1)  # nothing scored
    assert any("binary mask" in n for n in got["notes"])
    assert any("leaves no pixel of the truth" in n for n in got["notes"])
    got = _scores(capsys, pred, truth, "--mask", str(qa_path), "--mask-kind", "landsat_qa_pixel")
    assert got["inputs"]["mask"]["flags"] and got["rmse"]["mean"] is not None
    for bad in (["--mask", ""], ["--mask", str(qa_path), "--mask-flags", ",,"]):
        code, _, err = run_cli(["evaluate", pred, truth, *bad], capsys)
        assert code == 2, err


def test_a_cloud_the_mask_removes_is_not_called_a_fill(
    small_tifs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A cloud painted at one bright value in the truth, removed by ``--mask``, was still
    reported as "an undeclared fill value" (in ``--json``'s notes too); the check now looks
    at the pixels that are scored."""
    pred, truth = str(small_tifs["f1"]), small_tifs["f2"]
    src = FileSource(str(truth))
    data, t = src.read(), src.grid.transform
    cloud = np.zeros(data.shape[1:], bool)
    cloud[5:15, 5:30] = True  # 250 of 1600 px
    data[:, cloud] = 0.95
    cloudy = write_tif(tmp_path / "cloudy.tif", data, transform=t, names=["red", "nir"])
    mask = write_tif(tmp_path / "cloud.tif", cloud.astype(np.uint8), transform=t, dtype="uint8")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", STFusionWarning)
        unmasked = _scores(capsys, pred, str(cloudy))
        masked = _scores(capsys, pred, str(cloudy), "--mask", str(mask))
    assert any("0.95" in n for n in unmasked["notes"]), unmasked["notes"]
    assert not any("0.95" in n for n in masked["notes"]), masked["notes"]


def test_a_binary_mask_tagged_nodata_0_is_explained(
    small_tifs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A user trial: a GDAL-made binary mask declaring nodata 0 masked every pixel (its
    clear ones are nodata, and nodata is invalid); the only word was "check the nodata
    values, the mask". A warning now names the tag and how to remove it."""
    pred, truth = str(small_tifs["f1"]), small_tifs["f2"]
    t = FileSource(str(truth)).grid.transform
    cloudy = np.zeros((40, 40), np.uint8)
    cloudy[:10] = 1
    tagged = write_tif(tmp_path / "m0.tif", cloudy, transform=t, dtype="uint8", nodata=0)
    with pytest.warns(
        STFusionWarning,
        match=r"m0\.tif: a binary mask that declares nodata 0.*"
        r"75% of it.*-unsetnodata",
    ):
        code, _, err = run_cli(["evaluate", pred, str(truth), "--mask", str(tagged)], capsys)
    assert code == 1 and "no pixel is valid" in err
    plain = write_tif(tmp_path / "m.tif", cloudy, transform=t, dtype="uint8")
    with warnings.catch_warnings():
        warnings.simplefilter("error", STFusionWarning)
        _scores(capsys, pred, str(truth), "--mask", str(plain))


def test_other_bands_or_size_say_what_to_do(
    small_tifs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A user trial: a one-band prediction, or one cropped from the fine grid, against the
    whole truth was refused with "bands and size must match" and nothing more."""
    truth = str(small_tifs["f2"])
    src = FileSource(str(small_tifs["f1"]))
    data, t = src.read(), src.grid.transform
    nir = write_tif(tmp_path / "nir.tif", data[1:], transform=t, names=["nir"])
    code, _, err = run_cli(["evaluate", str(nir), truth], capsys)
    assert code == 1 and f"{truth}:nir " in err, err
    code, _, err = run_cli(["evaluate", str(nir), f"{truth}:nir"], capsys)
    assert code == 0, err
    crop = write_tif(tmp_path / "crop.tif", data[:, :30, :30], transform=t, names=["red", "nir"])
    code, _, err = run_cli(["evaluate", str(crop), truth], capsys)
    assert code == 1 and "gdal_translate -projwin" in err, err
    # a prediction with more bands than the truth: the advice picks the prediction's bands
    # (it suggested TRUTH:1,2, bands the one-band truth cannot give)
    code, _, err = run_cli(["evaluate", truth, str(nir)], capsys)
    assert code == 1 and f"{truth}:nir " in err and f"{nir}:" not in err, err
    code, _, err = run_cli(["evaluate", f"{truth}:nir", str(nir)], capsys)
    assert code == 0, err
