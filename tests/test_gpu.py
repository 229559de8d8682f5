"""The CUDA path: shipped weights on a GPU, batched tiles, mixed precision, training commands.

These tests need a CUDA GPU and skip without one (CI has none). They are run on a lent GPU
machine (the ``device`` tool, see docs/deep.md "GPU"): ``python -m pytest tests/test_gpu.py``.
Everything else about the deep methods is tested on the CPU by the other test_dl_* modules.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
if not torch.cuda.is_available():
    pytest.skip("no CUDA GPU on this machine (run on a GPU machine)", allow_module_level=True)

from conftest import run_process  # noqa: E402
from dl_helpers import pair_args  # noqa: E402
from stfusion.demo import sample_dir  # noqa: E402
from stfusion.dl.checkpoint import load_checkpoint  # noqa: E402
from stfusion.io import FileSource  # noqa: E402
from stfusion.methods import get_method  # noqa: E402

SHIPPED = ("dcstfn", "edcstfn", "ganstfm", "vitgan", "stfdcnn", "student")
REF, TARGET = "2001-10-17", "2001-11-02"


def _pair(date: str) -> tuple[str, str]:
    d = sample_dir()
    return str(d / f"CIA_Landsat7_{date}.tif"), str(d / f"CIA_MOD09GA_{date}.tif")


def _case(method: str) -> tuple[tuple[str, ...], str]:
    """Reference dates and target date: STFDCNN needs two pairs around the target."""
    if method == "stfdcnn":
        return ("2001-10-08", TARGET), REF
    return (REF,), TARGET


def _truth(method: str) -> np.ndarray:
    return FileSource(_pair(_case(method)[1])[0]).read()


def _rmse(a: np.ndarray, b: np.ndarray) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    return float(np.sqrt(np.mean((a[ok] - b[ok]) ** 2)))


def _predict(method: str, **params: object) -> np.ndarray:
    refs, target = _case(method)
    est = get_method(method)(**params).fit([_pair(d) for d in refs])
    return np.asarray(est.predict(_pair(target)[1]).values)


@pytest.fixture(scope="module")
def on_cpu() -> dict[str, np.ndarray]:
    return {m: _predict(m, device="cpu", batch=1) for m in SHIPPED}


@pytest.mark.parametrize("method", SHIPPED)
def test_gpu_prediction_equals_cpu(method: str, on_cpu: dict[str, np.ndarray]) -> None:
    """Float32 on the GPU, 8 tiles per forward pass, vs the CPU one tile at a time: the same
    numbers up to the GPU's arithmetic (TF32 convolutions), far below the model's error."""
    truth = _truth(method)
    gpu = _predict(method, device="cuda", batch=8)
    cpu = on_cpu[method]
    assert gpu.shape == cpu.shape and np.isfinite(gpu).all()
    diff, err = _rmse(gpu, cpu), _rmse(cpu, truth)
    print(
        f"{method}: RMSE(gpu - cpu) {diff:.2e}, max {np.nanmax(abs(gpu - cpu)):.2e}, "
        f"error vs truth {err:.5f} (cpu) {_rmse(gpu, truth):.5f} (gpu)"
    )
    assert diff < 0.01 * err
    assert abs(_rmse(gpu, truth) - err) < 0.002 * err


@pytest.mark.parametrize("method", SHIPPED)
def test_gpu_batch_sizes_agree(method: str) -> None:
    """Tiles stacked 1 or 8 per forward pass give the same image on the GPU."""
    one = _predict(method, device="cuda:0", batch=1)
    eight = _predict(method, device="cuda:0", batch=8)
    assert _rmse(one, eight) < 1e-5


@pytest.mark.parametrize("precision", ["16-mixed", "bf16-mixed"])
@pytest.mark.parametrize("method", SHIPPED)
def test_gpu_mixed_precision(method: str, precision: str, on_cpu: dict) -> None:
    """Half-precision inference stays within 2 % of float32's error against the truth."""
    truth = _truth(method)
    half = _predict(method, device="cuda", batch=8, precision=precision)
    assert np.isfinite(half).all()
    full = _rmse(on_cpu[method], truth)
    print(f"{method} {precision}: {_rmse(half, truth):.5f} vs float32 {full:.5f}")
    assert _rmse(half, truth) < 1.02 * full


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    proc = run_process(*args, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


QUICK = [
    "--epochs",
    "1",
    "--steps-per-epoch",
    "3",
    "--batch",
    "8",
    "--patch",
    "32",
    "--threads",
    "4",
    "--val-patches",
    "8",
]
AE = ["--ae-steps", "5"]  # the feature-loss autoencoder (default 300 steps)


@pytest.mark.parametrize(
    ("model", "extra"),
    [
        ("edcstfn", ["--devices", "cuda:0", "--precision", "bf16-mixed", *AE]),
        ("dcstfn", ["--devices", "cuda", "--precision", "16-mixed"]),
        ("ganstfm", ["--devices", "cuda", "--precision", "16-mixed", *AE]),
        ("vitgan", ["--devices", "auto", "--precision", "bf16-mixed", *AE]),
        ("stfdcnn", ["--devices", "cuda"]),
        ("edcstfn", ["--devices", "1", "--strategy", "ddp", *AE]),
    ],
)
def test_gpu_train_then_resume(model: str, extra: list[str], tmp_path: Path) -> None:
    """``stfusion train`` on the GPU with mixed precision, a resumed epoch, and the checkpoint
    predicting on the CPU."""
    out = tmp_path / f"{model}.ckpt"
    pairs = pair_args([_pair(d) for d in ("2001-10-08", REF)])
    args = ["train", "--model", model, "--size", "tiny", "--out", str(out), *QUICK, *extra]
    _cli(*args, *pairs)
    load_checkpoint(out)
    log = out.with_suffix(".log.csv").read_text().splitlines()
    assert len(log) == 2  # header + 1 epoch
    resumed = [*args, "--epochs", "2"]  # the last --epochs counts
    _cli(*resumed, "--resume", *pairs)
    assert len(out.with_suffix(".log.csv").read_text().splitlines()) == len(log) + 1
    pred = _predict(model, weights=str(out), device="cpu")
    assert np.isfinite(pred).all()


def test_gpu_distill_shipped_teacher(tmp_path: Path) -> None:
    """``stfusion distill --teacher shipped`` on the GPU: the band-agnostic shipped EDCSTFN,
    its features hooked for every band, into a band-agnostic student."""
    out = tmp_path / "student.ckpt"
    pairs = pair_args([_pair(d) for d in ("2001-10-08", REF)])
    _cli("distill", "--teacher", "shipped", "--out", str(out), *QUICK, "--devices", "cuda", *pairs)
    assert load_checkpoint(out).agnostic
    pred = _predict("student", weights=str(out), device="cuda")
    assert np.isfinite(pred).all()


def test_gpu_distill(tmp_path: Path) -> None:
    """``stfusion distill`` on the GPU from a band-tied teacher trained there."""
    from stfusion.dl.train import TrainConfig, train

    pairs = [_pair(d) for d in ("2001-10-08", REF)]
    cfg = TrainConfig(
        model="edcstfn",
        size="small",
        epochs=1,
        patch=32,
        batch=8,
        steps_per_epoch=3,
        ae_steps=3,
        agnostic=False,
        device="cuda",
        precision="bf16-mixed",
    )
    teacher = train(pairs, tmp_path / "teacher.ckpt", cfg).checkpoint
    out = tmp_path / "student.ckpt"
    _cli(
        "distill",
        "--teacher",
        str(teacher),
        "--out",
        str(out),
        *QUICK,
        "--devices",
        "cuda",
        "--precision",
        "bf16-mixed",
        *pair_args(pairs),
    )
    pred = _predict("student", weights=str(out), device="cuda")
    assert np.isfinite(pred).all()


def test_gpu_predict_cli(tmp_path: Path) -> None:
    """``stfusion predict`` on the GPU writes the same image as on the CPU."""
    outs = {}
    for device in ("cpu", "cuda"):
        outs[device] = tmp_path / f"{device}.tif"
        f, c = _pair(REF)
        _cli(
            "predict",
            "--method",
            "edcstfn",
            "--param",
            f"device={device}",
            "--pair",
            f,
            c,
            "--coarse",
            _pair(TARGET)[1],
            "--out",
            str(outs[device]),
        )
    a, b = (FileSource(str(p)).read() for p in outs.values())
    assert _rmse(a, b) < 1e-4
