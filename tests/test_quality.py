"""The quality layer beside a prediction: days to the nearest pair, pairs used, fallback,
uncertainty."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio

from stfusion.cli import main
from stfusion.io import FileSource


def _copy(src: Path, dst: Path, hole: bool = False) -> Path:
    with rasterio.open(src) as ds:
        data = ds.read()
        profile = ds.profile
        names = ds.descriptions
    if hole:
        data[:, 5:10, 5:10] = np.nan
    with rasterio.open(dst, "w", **profile) as out:
        out.write(data)
        out.descriptions = names
    return dst


def test_quality_layer_from_dated_names(
    small_tifs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    s = small_tifs
    f_a = _copy(s["f1"], tmp_path / "L_2001-10-17.tif", hole=True)
    c_a = _copy(s["c1"], tmp_path / "M_2001-10-17.tif")
    f_b = _copy(s["f2"], tmp_path / "L_2001-11-10.tif")
    c_b = _copy(s["c2"], tmp_path / "M_2001-11-10.tif")
    target = _copy(s["c2"], tmp_path / "M_2001-11-02.tif")
    out = tmp_path / "pred.tif"
    try:
        main(["predict", "--pair", str(f_a), str(c_a), "--pair", str(f_b), str(c_b),
              "--coarse", str(target), "--out", str(out), "--param", "window=5",
              "--quality"])  # fmt: skip
    except SystemExit as exc:
        assert exc.code in (0, None)
    qpath = tmp_path / "pred_quality.tif"
    assert "quality layer" in capsys.readouterr().out
    with rasterio.open(qpath) as ds:
        names = ds.descriptions
        q = ds.read()
        assert ds.transform == rasterio.open(out).transform
    assert names[:3] == ("days_to_pair", "pairs_used", "fallback")
    assert names[3:] == ("uncertainty_red", "uncertainty_nir")
    days, used = q[0], q[1]
    # 2001-11-02 is 16 days after 10-17 and 8 days before 11-10: nearest is 8 everywhere.
    assert np.all(days == 8)
    assert np.all(used[5:10, 5:10] == 1) and used[0, 0] == 2
    pred = FileSource(str(out)).read()
    assert pred.shape[0] == 2 and np.isfinite(pred).all()
