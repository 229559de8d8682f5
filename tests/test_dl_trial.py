"""Deep prediction path: invalid inputs, damaged checkpoints, in-memory API, CLI options
(problems found in a user trial)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from stfusion.errors import InputFileError, STFusionWarning  # noqa: E402
from stfusion.run_config import shipped_weights  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / "src" / "stfusion" / "data"
SIDE = 64


def _read(name: str) -> np.ndarray:
    import rasterio

    with rasterio.open(DATA / name) as src:
        return src.read(window=((0, SIDE), (0, SIDE))).astype(np.float32)


@pytest.fixture(scope="module")
def cia() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (
        _read("CIA_Landsat7_2001-10-17.tif"),
        _read("CIA_MOD09GA_2001-10-17.tif"),
        _read("CIA_MOD09GA_2001-11-02.tif"),
    )


def _predict(
    method: str, pairs: list[tuple[np.ndarray, np.ndarray]], target: np.ndarray
) -> np.ndarray:
    from stfusion.dl.infer import predict_arrays

    return predict_arrays(str(shipped_weights(method)), pairs, target, tile=SIDE, device="cpu")


def _inner_radius(method: str) -> int:
    from stfusion.dl.infer import Predictor

    return int(Predictor(str(shipped_weights(method)), "cpu").net.inner.radius)


def _near(mask: np.ndarray, radius: int) -> np.ndarray:
    from scipy.ndimage import maximum_filter

    return maximum_filter(mask, size=2 * radius + 1, mode="nearest")


def test_hole_reaches_only_the_network_receptive_field(cia):
    # The baseline's 49 x 49 box statistics skip invalid pixels: beyond the network's own
    # receptive field, a hole in the coarse target gives what the same hole in the coarse
    # reference gives (the same pixels are invalid for the pair); the fill values are not
    # averaged in.
    f, c1, c2 = cia
    hole = np.zeros((SIDE, SIDE), bool)
    hole[10:22, 30:44] = True
    t_hole, r_hole = c2.copy(), c1.copy()
    t_hole[:, hole] = np.nan
    r_hole[:, hole] = np.nan
    a = _predict("edcstfn", [(f, c1)], t_hole)
    b = _predict("edcstfn", [(f, r_hole)], c2)
    far = ~_near(hole, _inner_radius("edcstfn"))
    assert np.isnan(a[:, hole]).all() and np.isnan(b[:, hole]).all()
    np.testing.assert_allclose(a[:, far], b[:, far], atol=1e-6)


def test_quality_flags_values_made_with_filled_inputs(cia):
    from rasterio.windows import Window

    from stfusion.methods import make_estimator

    f, c1, c2 = cia
    hole = np.zeros((SIDE, SIDE), bool)
    hole[20:30, 20:30] = True
    t = c2.copy()
    t[:, hole] = np.nan
    est = make_estimator("student", ["device=cpu", f"tile={SIDE}"])
    est.fit([(f, c1)]).prepare(t)
    pred, extra = est.predict_window_quality(Window(0, 0, SIDE, SIDE))
    want = _near(hole, _inner_radius("student")) & ~hole
    assert np.array_equal(extra["fallback"] > 0, want)
    assert np.isfinite(pred[:, ~hole]).all()


def test_one_bad_band_spoils_only_itself(cia):
    f, c1, c2 = cia
    t = c2.copy()
    t[4, ::5] = np.nan  # SWIR1 missing every 5th row
    clean = _predict("edcstfn", [(f, c1)], c2)
    out = _predict("edcstfn", [(f, c1)], t)
    others = [b for b in range(6) if b != 4]
    assert np.array_equal(out[others], clean[others])
    assert np.array_equal(np.isnan(out[4]), np.isnan(t[4]))


def test_valid_inputs_keep_the_plain_network_output(cia):
    from stfusion.dl.infer import Predictor, masked_box, masked_predict_pairs
    from stfusion.dl.networks.agnostic import box

    x = torch.randn(2, 1, 20, 24)
    assert torch.equal(masked_box(x, torch.ones_like(x), 5), box(x, 5))
    f, c1, c2 = (torch.from_numpy(a[None] / 0.1) for a in cia)
    net = Predictor(str(shipped_weights("edcstfn")), "cpu").net
    ones = [torch.ones_like(c2), torch.ones_like(c2)]
    with torch.inference_mode():
        plain = net.predict_pairs([f, f], [c1, c2], c2, [o[:, :1] for o in ones])
        masked = masked_predict_pairs(net, [f, f], [c1, c2], c2, ones)
    assert torch.equal(plain, masked)


def _damaged(tmp_path: Path, change: str) -> Path:
    data = torch.load(shipped_weights("student"), map_location="cpu", weights_only=True)
    sd = data["state_dict"]
    name = next(k for k, v in sd.items() if v.is_floating_point() and v.ndim == 4)
    if change == "nan":
        sd[name] = sd[name].clone()
        sd[name].view(-1)[0] = float("nan")
    else:
        sd[name] = sd[name][0, 0]
    path = tmp_path / f"{change}.ckpt"
    torch.save(data, path)
    return path


def test_checkpoint_with_nan_weights_is_refused(tmp_path):
    from stfusion.dl.checkpoint import load_checkpoint

    path = _damaged(tmp_path, "nan")
    with pytest.raises(InputFileError, match=r"nan\.ckpt.*weight tensor '.*' holds NaN"):
        load_checkpoint(path)


def test_checkpoint_with_wrong_shape_is_one_input_error(tmp_path):
    from stfusion.dl.checkpoint import load_student

    path = _damaged(tmp_path, "shape")
    with pytest.raises(InputFileError, match=r"shape\.ckpt: its weights do not fit.*wrong shape"):
        load_student(path).network()


def test_fine_ref_twice_is_a_usage_error():
    from click.testing import CliRunner

    from stfusion.cli import cli

    args = ["predict", "--method", "ganstfm", "--fine-ref", "a.tif", "--fine-ref", "b.tif"]
    res = CliRunner().invoke(cli, [*args, "--coarse", "c.tif", "--out", "o.tif"])
    assert res.exit_code == 2
    assert "one --fine-ref only" in res.output


def test_predict_threads_limit_torch(tmp_path, monkeypatch):
    from stfusion.api import run_prediction
    from stfusion.dl.infer import Predictor

    seen: list[int] = []
    plain = Predictor.forward

    def spy(self, batch):
        seen.append(torch.get_num_threads())
        return plain(self, batch)

    monkeypatch.setattr(Predictor, "forward", spy)
    torch.set_num_threads(2)
    run_prediction(
        method="student",
        pairs=[
            (str(DATA / "CIA_Landsat7_2001-10-17.tif"), str(DATA / "CIA_MOD09GA_2001-10-17.tif"))
        ],
        target=str(DATA / "CIA_MOD09GA_2001-11-02.tif"),
        out=str(tmp_path / "o.tif"),
        params=["device=cpu"],
        threads=1,
    )
    assert seen and set(seen) == {1}
    assert torch.get_num_threads() == 2


def test_predict_arrays_two_d_demo_and_overlap_warning(cia):
    from stfusion.dl.infer import predict_arrays

    f, c1, c2 = cia
    one = predict_arrays("demo", [(f[3], c1[3])], c2[3], method="student", device="cpu")
    assert one.shape == (1, SIDE, SIDE)
    full = predict_arrays("shipped", [(f, c1)], c2, method="student", device="cpu")
    np.testing.assert_array_equal(one[0], full[3])
    with pytest.warns(STFusionWarning, match="below the receptive field"):
        predict_arrays("demo", [(f, c1)], c2, tile=32, overlap=8, device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        predict_arrays("demo", [(f, c1)], c2, tile=32, device="cpu")


def test_multi_pair_vip_notes_a_method_taking_the_pairs_itself():
    from stfusion.cli.predict import _multi_pair_notes

    assert "edcstfn takes 2 pairs itself" in _multi_pair_notes("edcstfn", 2, "vip")[0]
    assert _multi_pair_notes("dcstfn", 2, "vip") == []  # VIPSTF runs over it
    assert _multi_pair_notes("edcstfn", 2, "none") == []
