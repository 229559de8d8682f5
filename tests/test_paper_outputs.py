"""What a user trial of ``evaluate`` and ``bench`` for a paper found: NDVI scored with the
reflectance data range, a half-pixel-shifted mask taken silently, striped density plots of
quantised data. (Kept predictions and the summaries' units: ``test_bench.test_bench_cli``.)"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from affine import Affine
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import run_cli, write_tif
from stfusion.errors import STFusionWarning
from stfusion.plot import bin_edges

T = Affine(30.0, 0, 500000.0, 0, -30.0, 6100000.0)


def _ndvi_pair(folder: Path, names: list[str] | None) -> tuple[Path, Path, float]:
    """A prediction and a truth of NDVI-like values (-1..1); the truth's span."""
    folder.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    truth = np.clip(rng.normal(0.2, 0.3, (1, 40, 40)), -1, 1).astype("float32")
    pred = (truth + rng.normal(0, 0.1, truth.shape)).astype("float32")
    return (
        write_tif(folder / "pred.tif", pred, names=names),
        write_tif(folder / "truth.tif", truth, names=names),
        float(np.ptp(truth.astype("float64"))),
    )


def _json(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    code, out, err = run_cli(["evaluate", *args, "--json"], capsys)
    assert code == 0, err
    return json.loads(out)


def test_ndvi_is_scored_with_the_truths_range(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """GUIDE section 4: an index or a temperature is scored with the truth's valid range; the
    default was 1.0 whatever the file said, so NDVI's PSNR came out ~3 dB low."""
    pred, truth, span = _ndvi_pair(tmp_path / "named", ["NDVI"])
    auto = _json(capsys, str(pred), str(truth))
    assert auto["data_range"] == "truth"
    assert auto["band_data_range"]["NDVI"] == pytest.approx(span)
    assert any("holds an index or a temperature" in n for n in auto["notes"])
    explicit = _json(capsys, str(pred), str(truth), "--data-range", "truth")
    assert auto["psnr"]["mean"] == explicit["psnr"]["mean"]
    one = _json(capsys, str(pred), str(truth), "--data-range", "1")
    assert one["data_range"] == 1.0 and one["psnr"]["mean"] < auto["psnr"]["mean"]
    code, out, _ = run_cli(["evaluate", str(pred), str(truth)], capsys)
    assert code == 0 and f"data range truth (L = {span:.4g})" in " ".join(out.split())
    # the same values in files that do not say NDVI: seen in the truth's values (a trial's
    # methods were scored on two ranges, by whether their outputs carried the variable tag)
    pred, truth, _ = _ndvi_pair(tmp_path / "unnamed", None)
    unnamed = _json(capsys, str(pred), str(truth))
    assert unnamed["data_range"] == "truth" and unnamed["psnr"]["mean"] == auto["psnr"]["mean"]
    assert any("values are not reflectance (ndvi" in n for n in unnamed["notes"])
    # kelvin too; reflectance keeps 1, also one band with dark pixels (the adversarial
    # trial: PSNR 69.7 -> 47.7 when taken for NDVI), x 10000 (its scale is asked for) and
    # values that may be percent reflectance or degrees Celsius (the range warning tells)
    rng = np.random.default_rng(1)
    dark = rng.uniform(0.01, 0.3, (1, 40, 40))
    dark[0, :4] = -0.05
    for name, values, expected in (
        ("kelvin", rng.normal(290, 6, (1, 40, 40)), "truth"),
        ("refl", rng.uniform(0.02, 0.4, (2, 40, 40)), 1.0),
        ("dark", dark, 1.0),
        ("dn", rng.uniform(200, 4000, (2, 40, 40)), 1.0),
        ("celsius", rng.normal(-3, 6, (1, 40, 40)), 1.0),
    ):
        paths = [write_tif(tmp_path / f"{name}{i}.tif", values.astype("float32")) for i in (0, 1)]
        args = [str(p) for p in paths] + ["--no-scale-check"] * (name in ("dn", "celsius"))
        assert _json(capsys, *args)["data_range"] == expected, name


def test_a_mask_half_a_pixel_off_the_grid_is_warned_about(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A mask with the image's pixel size whose origin is half a pixel off was resampled
    with nearest neighbour, moving the masked area by a pixel, with no word."""
    pred, truth, _ = _ndvi_pair(tmp_path, None)
    mask = np.zeros((40, 40), np.uint8)
    mask[10:20, 10:20] = 1
    half = Affine.translation(0.5, 0)

    def notes(transform: Affine, data: np.ndarray = mask) -> list[str]:
        path = write_tif(tmp_path / "mask.tif", data, transform=transform, dtype="uint8")
        return _json(capsys, str(pred), str(truth), "--mask", str(path))["notes"]

    assert not any("shifted" in n for n in notes(T))
    assert not any("shifted" in n for n in notes(T * Affine.translation(3, 0)))
    # a coarse mask's edges need not fall on the image's: not this mistake
    assert not any("shifted" in n for n in notes(T * half * Affine.scale(4), mask[:10, :10]))
    with pytest.warns(STFusionWarning, match=r"shifted by 0\.50 px in x and 0\.00 px in y"):
        found = notes(T * half)
    assert any("gdalwarp -tap" in n for n in found)
    # a trial: a mask nowhere near the image was first "shifted", then refused as apart
    from stfusion.io import FileSource
    from stfusion.qa import _off_grid

    far = T * half * Affine.translation(1000, 0)
    apart = write_tif(tmp_path / "far.tif", mask, transform=far, dtype="uint8")
    assert _off_grid(FileSource(str(apart)), FileSource(str(pred))) is None


@settings(max_examples=60, deadline=None)
@given(
    levels=st.integers(3, 900),
    step=st.floats(1e-4, 10.0),
    jitter=st.floats(0.0, 0.2),
    bins=st.integers(5, 100),
)
def test_density_bins_of_quantised_values_hold_whole_levels(
    levels: int, step: float, jitter: float, bins: int
) -> None:
    """Quantised values (uneven steps, as reflectance from 8-bit DN) fell into bins that
    alternately held one level and none (empty stripes in the bench's density plots): every
    bin now holds the same number of levels (the last may hold fewer), and every value is
    in a bin."""
    rng = np.random.default_rng(levels)
    grid = np.cumsum(step * (1 + jitter * rng.random(levels)))
    values = rng.choice(grid, 5000)
    lo, hi = float(values.min()), float(values.max())
    edges = bin_edges(values, lo, hi, bins)
    assert np.all(np.diff(edges) > 0)
    assert edges[0] <= lo and edges[-1] >= hi
    found = np.unique(values)
    per_bin = np.histogram(found, edges)[0]
    if found.size <= 4 * bins or values.size >= 8 * found.size:
        assert np.all(per_bin[:-1] == per_bin[0]) and 0 < per_bin[-1] <= per_bin[0]
    else:
        assert edges.size == bins + 1


def test_density_bins_of_many_levels_and_of_continuous_values() -> None:
    """int16 x 1e-4 with more levels than 4 per bin (LGC's truth: 390 levels) still gets bins
    of whole levels (it drew stripes); distinct floats get even bins."""
    rng = np.random.default_rng(0)
    values = rng.integers(100, 490, 200_000) * np.float32(1e-4)
    edges = bin_edges(values, float(values.min()), float(values.max()), 80)
    per_bin = np.histogram(np.unique(values), edges)[0]
    assert np.all(per_bin[:-1] == per_bin[0])
    floats = rng.random(200_000)
    assert bin_edges(floats, 0.0, 1.0, 80) == pytest.approx(np.linspace(0, 1, 81))


def test_scoring_a_series_observation_is_warned_about(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A series output of a date with a fine image is that image: scored against it, RMSE 0
    and PSNR inf, with no word."""
    import rasterio

    pred, truth, _ = _ndvi_pair(tmp_path, None)
    with rasterio.open(pred, "r+") as ds:
        ds.update_tags(STFUSION_SERIES_STATUS="gap-filled")
    with pytest.warns(STFusionWarning, match="written as observed"):
        notes = _json(capsys, str(pred), str(truth))["notes"]
    assert any("scores itself" in n for n in notes)


def test_scoring_a_file_against_itself_is_warned_about(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`stfusion evaluate p.tif p.tif` (the truth argument copied from the prediction)
    printed RMSE 0 and PSNR inf, with no word."""
    pred, _, _ = _ndvi_pair(tmp_path, None)
    with pytest.warns(STFusionWarning, match="both the prediction and the truth"):
        report = _json(capsys, str(pred), str(pred))
    assert report["rmse"]["mean"] == 0 and any("scores itself" in n for n in report["notes"])


def test_evaluate_csv_and_pred_offset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Per-band numbers for a paper needed a JSON-to-CSV step; a prediction stored with an
    offset could not be read back (--pred-offset was missing)."""
    import csv
    import io

    import rasterio

    pred, truth, _ = _ndvi_pair(tmp_path, ["NDVI"])
    scored = _json(capsys, str(pred), str(truth))
    code, out, err = run_cli(["evaluate", str(pred), str(truth), "--csv"], capsys)
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    got = {(r["band"], r["metric"]): float(r["value"]) for r in rows}
    assert got[("NDVI", "rmse")] == scored["rmse"]["bands"]["NDVI"]
    assert got[("mean", "ssim")] == scored["ssim"]["mean"]
    # runs appended to one CSV stay apart: each row names its files, after the first three
    assert list(rows[0])[:3] == ["band", "metric", "value"]
    assert {(r["prediction"], r["truth"]) for r in rows} == {(str(pred), str(truth))}
    # and the settings that change the scores (a trial: runs with and without a mask, or
    # with another data range, were rows alike)
    settings = {(r["data_range"], r["mask"]) for r in rows}
    assert settings == {(str(scored["data_range"]), "")}, settings
    code, out, _ = run_cli(
        ["evaluate", str(pred), str(truth), "--csv", "--data-range", "2"], capsys
    )
    assert code == 0 and {r["data_range"] for r in csv.DictReader(io.StringIO(out))} == {"2"}
    shifted = tmp_path / "shifted.tif"
    with rasterio.open(pred) as src:
        data, profile = src.read(), src.profile
    with rasterio.open(shifted, "w", **profile) as dst:
        dst.write(data - np.float32(0.25))
    back = _json(capsys, str(shifted), str(truth), "--pred-offset", "0.25")
    assert back["rmse"]["mean"] == pytest.approx(scored["rmse"]["mean"], rel=1e-5)
    code, _, err = run_cli(["evaluate", str(pred), str(truth), "--csv", "--json"], capsys)
    assert code == 2 and "give one" in err


def test_figures_show_gaps_as_gaps_and_a_clipped_error_scale() -> None:
    """A gap in a colour composite is transparent (it was black, like dark land), and the
    error maps' colour bar, capped at the 99th percentile, says so with an arrow and the share
    of pixels above it."""
    from stfusion.plot import composite, quicklook_grid

    truth = np.random.default_rng(1).random((3, 20, 20)).astype(np.float32)
    truth[:, :4, :4] = np.nan
    rgba = composite(truth, [0, 1, 2], np.zeros(3), np.ones(3))
    assert rgba.shape == (20, 20, 4)
    assert np.all(rgba[:4, :4, 3] == 0) and np.all(rgba[4:, 4:, 3] == 1)
    pred = truth + 0.01
    pred[:, 10, 10] += 5.0  # one outlier above the cap
    fig = quicklook_grid(truth, [("m", "m", pred)], ["red", "green", "blue"])
    (bar,) = [a for a in fig.axes if a.get_label() == "<colorbar>"]
    assert "above the scale" in bar.get_ylabel()
    clean = quicklook_grid(truth, [("m", "m", truth.copy())], ["red", "green", "blue"])
    (bar,) = [a for a in clean.axes if a.get_label() == "<colorbar>"]
    assert "above the scale" not in bar.get_ylabel()


def test_figures_leave_the_matplotlib_backend_alone(tmp_path: Path) -> None:
    """The figures called matplotlib.use("Agg"): a notebook's inline backend was switched for
    the rest of the session by run_bench or the demo. They use pyplot-free figures now."""
    import matplotlib

    from stfusion.plot import quicklook_figure, quicklook_grid, scatter_grid

    before = matplotlib.get_backend()
    img = np.random.default_rng(2).random((3, 20, 20)).astype(np.float32)
    names = ["red", "green", "blue"]
    quicklook_figure([("a", img)], img, img + 0.01, names, tmp_path / "q.png")
    quicklook_grid(img, [("m", "m", img + 0.01)], names).savefig(tmp_path / "g.png")
    scatter_grid(img, [("m", img + 0.01)], names).savefig(tmp_path / "s.png")
    assert matplotlib.get_backend() == before
    assert all((tmp_path / n).stat().st_size > 1000 for n in ("q.png", "g.png", "s.png"))
