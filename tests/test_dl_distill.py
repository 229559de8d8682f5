"""Knowledge distillation: loss pieces, the 10x parameter rule, a tiny run, the student model."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from click.testing import CliRunner  # noqa: E402

from dl_helpers import pair_args, quick_args  # noqa: E402
from stfusion.dl.checkpoint import load_checkpoint  # noqa: E402
from stfusion.dl.distill import (  # noqa: E402
    DistillConfig,
    DistillLoss,
    Teacher,
    auto_feature_layer,
    check_student_size,
    distill,
    feature_layers,
    feature_loss,
    load_student,
    masked_mse,
    parameter_count,
    random_student_checkpoint,
)
from stfusion.dl.infer import predict_arrays  # noqa: E402
from stfusion.dl.networks import make_network  # noqa: E402
from stfusion.dl.networks.student import STUDENT_SIZES, StudentNet, make_student  # noqa: E402
from stfusion.dl.train import TrainConfig, log_paths, random_checkpoint, train  # noqa: E402
from stfusion.errors import (  # noqa: E402
    InvalidParameterError,
    OutputExistsError,
)
from stfusion.io import FileSource, file_sha256  # noqa: E402
from stfusion.methods.deep import DEMO_DATES  # noqa: E402
from stfusion.methods.deep_student import Student  # noqa: E402
from test_dl_data import DATES, write_cia_crop  # noqa: E402

#: A few steps of a nano student: enough to see the loss fall, seconds on 2 cores.
TINY = DistillConfig(
    student="nano",
    epochs=6,
    patch=16,
    batch=4,
    steps_per_epoch=6,
    lr=3e-3,
    threads=1,
    augment=False,
    patience=100,
    speed_tile=32,
    speed_repeat=1,
    val_patches=8,
)

#: A small EDCSTFN trained for a few steps (band-agnostic: the default form).
TEACHER = TrainConfig(
    model="edcstfn",
    size="small",
    epochs=1,
    patch=16,
    batch=4,
    steps_per_epoch=4,
    ae_steps=2,
    threads=1,
    val_fraction=0.3,
    val_patches=8,
)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    return write_cia_crop(tmp_path_factory.mktemp("cia"), size=40, bands=(2, 3))


@pytest.fixture(scope="module")
def teacher(files: dict, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An EDCSTFN (small) trained for a few steps on the 10-08 and 10-17 crops (red, nir)."""
    # Band-tied (format 1); test_distill_band_agnostic_teacher distils the shipped form.
    cfg = dataclasses.replace(TEACHER, agnostic=False)
    out = tmp_path_factory.mktemp("teacher") / "teacher.ckpt"
    return train([files[d] for d in DATES[:2]], out, cfg).checkpoint


@pytest.fixture(scope="module")
def student(files: dict, teacher: Path, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("student") / "student.ckpt"
    return distill([files[d] for d in DATES[:2]], teacher, out, TINY, meta={"notes": "x"})


class _Stacking(torch.nn.Module):
    """A toy teacher whose penultimate layer runs on both inputs stacked along the batch."""

    def __init__(self) -> None:
        super().__init__()
        self.body = torch.nn.Conv2d(2, 3, 1)
        self.pairs = torch.nn.Conv2d(2, 4, 3, padding=1)
        self.out = torch.nn.Conv2d(4, 2, 1)

    def forward(self, f: torch.Tensor, c: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        n = f.shape[0]
        h = self.body(f)
        z = self.pairs(torch.cat([f, t], 0))
        return self.out(z[:n] + z[n:] + h.mean(1, keepdim=True))


def arrays(files: dict, date: str) -> tuple[np.ndarray, np.ndarray]:
    f, c = files[date]
    return FileSource(str(f)).read(), FileSource(str(c)).read()


# ----------------------------------------------------------------------------- loss pieces


def test_loss_pieces() -> None:
    g = torch.Generator().manual_seed(0)
    pred, truth, tpred = (torch.randn(2, 3, 8, 8, generator=g) for _ in range(3))
    mask = torch.ones(2, 1, 8, 8, dtype=torch.bool)
    mask[:, :, :2] = False
    # Ground truth only: the MSE over valid pixels; invalid pixels do not count.
    gt = ((pred - truth) ** 2)[:, :, 2:].mean()
    loss, parts = DistillLoss(alpha=0.0, beta=0.0)(pred, truth, mask, tpred)
    assert torch.allclose(loss, gt) and set(parts) == {"gt"}
    wild = truth.clone()
    wild[:, :, :2] = 1e6
    assert torch.allclose(masked_mse(pred, wild, mask), gt)
    # + alpha x the MSE to the teacher's prediction.
    out = ((pred - tpred) ** 2)[:, :, 2:].mean()
    loss, parts = DistillLoss(alpha=0.5, beta=0.0)(pred, truth, mask, tpred)
    assert torch.allclose(loss, gt + 0.5 * out) and set(parts) == {"gt", "teacher"}
    # + beta x the feature MSE relative to the teacher features' mean square.
    sf, tf = torch.randn(2, 5, 8, 8, generator=g), 3.0 * torch.randn(2, 5, 8, 8, generator=g)
    feat = ((sf - tf) ** 2).mean() / (tf**2).mean()
    loss, parts = DistillLoss(alpha=0.5, beta=0.2)(pred, truth, mask, tpred, sf, tf)
    assert torch.allclose(loss, gt + 0.5 * out + 0.2 * feat)
    assert parts == pytest.approx({"gt": float(gt), "teacher": float(out), "feature": float(feat)})
    # Scale-free: features x10 on both sides give the same feature loss.
    assert torch.allclose(feature_loss(10 * sf, 10 * tf), feature_loss(sf, tf))
    # A coarser teacher map: student features are 2x2 averaged to its size.
    coarse = torch.randn(2, 5, 4, 4, generator=g)
    want = ((torch.nn.functional.avg_pool2d(sf, 2) - coarse) ** 2).mean() / (coarse**2).mean()
    assert torch.allclose(feature_loss(sf, coarse), want)
    # Gradients reach the student's prediction and features only.
    pred.requires_grad_(True)
    sf.requires_grad_(True)
    DistillLoss(1.0, 1.0)(pred, truth, mask, tpred, sf, tf)[0].backward()
    assert pred.grad is not None and sf.grad is not None and tpred.grad is None


def test_teacher_hook_and_normalisation(teacher: Path) -> None:
    ck = load_checkpoint(teacher)
    net = ck.network()
    # auto = the penultimate feature map: EDCSTFN's last ReLU before the 1x1 output conv.
    assert auto_feature_layer(net, 2) == "decoder.3"
    shapes = dict(feature_layers(net, 2, size=16))
    assert shapes["decoder.3"] == (2, net.channels[0], 16, 16)  # probed with a batch of 2
    assert shapes["decoder.1"] == (2, net.channels[1], 16, 16)
    # A layer that stacks inputs along the batch (one pass per pair) is never picked.
    assert auto_feature_layer(_Stacking(), 2) == "body"
    dcstfn = make_network("dcstfn", 2, "tiny")
    name = auto_feature_layer(dcstfn, 2)
    assert name.startswith("reconstruct.") and dict(feature_layers(dcstfn, 2))[name][1] != 2
    # The teacher in another normalisation gives the prediction of its own.
    mean, std = ck.mean * 1.1 + 0.01, ck.std * 0.8
    tm = Teacher(ck, mean, std, "decoder.1")
    x_phys = [torch.rand(1, 2, 12, 12) * 0.3 for _ in range(3)]
    m, s = (torch.tensor(v, dtype=torch.float32).view(1, -1, 1, 1) for v in (mean, std))
    tm_, ts_ = (torch.tensor(v, dtype=torch.float32).view(1, -1, 1, 1) for v in (ck.mean, ck.std))
    pred, feat = tm.predict(*[(x - m) / s for x in x_phys])
    with torch.no_grad():
        own = net(*[(x - tm_) / ts_ for x in x_phys])
    torch.testing.assert_close(pred * s + m, own * ts_ + tm_, atol=1e-5, rtol=1e-5)
    assert feat is not None and feat.shape == (1, net.channels[1], 12, 12)
    assert not any(p.requires_grad for p in tm.parameters())
    tm.train()
    assert not tm.training and not tm.net.training  # frozen: stays in eval mode
    with pytest.raises(InvalidParameterError, match=r"not a module of the teacher.*decoder\.3"):
        Teacher(ck, ck.mean, ck.std, "decoder.99")


# ----------------------------------------------------------------------------- the 10x rule


def test_parameter_rule(files: dict, teacher: Path, tmp_path: Path) -> None:
    check_student_size(100, 1000)  # exactly a tenth is allowed
    with pytest.raises(InvalidParameterError, match="at least 10x smaller") as err:
        check_student_size(101, 1000, "micro", "teacher (edcstfn tiny)")
    assert "101 parameters" in str(err.value) and "1,000" in str(err.value)
    # Sizes grow, and each is far below a paper-size EDCSTFN (6 bands).
    counts = [parameter_count(make_student(6, s)) for s in STUDENT_SIZES]
    assert counts == sorted(counts)
    paper = parameter_count(make_network("edcstfn", 6, "paper"))
    assert all(10 * c <= paper for c in counts)
    # Through distill: micro (2 bands: 3,234) is more than a tenth of EDCSTFN tiny (18,010).
    tiny = random_checkpoint(
        tmp_path / "tiny.ckpt",
        "edcstfn",
        2,
        size="tiny",
        band_names=["red", "nir"],
        mean=0.15,
        std=0.08,
    )
    pairs = [files[d] for d in DATES[:2]]
    with pytest.raises(
        InvalidParameterError, match=r"a tenth of the teacher \(edcstfn tiny\)"
    ) as err:
        distill(pairs, tiny, tmp_path / "s.ckpt", dataclasses.replace(TINY, student="micro"))
    assert "3,234 parameters" in str(err.value) and "choose --student nano." in str(err.value)
    assert not (tmp_path / "s.ckpt").exists()
    with pytest.raises(InvalidParameterError, match="student size"):
        DistillConfig(student="huge").validate()


# ----------------------------------------------------------------------------- distillation


def test_distill_end_to_end(student, teacher: Path, files: dict) -> None:
    r = student
    losses = [h["train_loss"] for h in r.history]
    assert len(losses) == 6 and losses[-1] < losses[0]
    assert {"gt", "teacher", "feature", "val_rmse_teacher", "val_rmse_vs_teacher"} <= set(
        r.history[0]
    )
    assert r.feature_layer == "decoder.3"
    assert 10 * r.student_parameters <= r.teacher_parameters
    assert r.teacher_s_per_mp > 0 and r.student_s_per_mp > 0 and r.threads == 1
    assert np.isfinite([r.teacher_val_rmse, r.student_val_rmse, r.additive_val_rmse]).all()
    ck = load_checkpoint(r.checkpoint)
    assert ck.model == "student" and ck.data["network"]["size"] == "nano"
    assert ck.training_dates == DATES[:2] and ck.band_names == ("red", "nir")
    t = ck.data["teacher"]
    assert t["model"] == "edcstfn" and t["parameters"] == r.teacher_parameters
    assert t["feature_layer"] == "decoder.3" and len(t["sha256"]) == 64
    assert t["training_dates"] == list(DATES[:2])
    # Same validation block as the teacher's (its val_fraction), so the teacher never saw it.
    assert ck.data["validation_block"] == load_checkpoint(teacher).data["validation_block"]
    # The teacher's validation RMSE is the one its own training measured.
    assert r.teacher_val_rmse == pytest.approx(t["train_val_rmse"], rel=1e-4)
    summary = ck.data["distillation"]
    assert summary["speed"]["speedup"] == pytest.approx(r.speedup)
    assert ck.meta["notes"] == "x" and ck.data["adapter"]["feature_layer"] == "decoder.3"
    csv_path, png_path = log_paths(r.checkpoint)
    assert csv_path.exists() and png_path.exists()
    assert "val_rmse_vs_teacher" in csv_path.read_text().splitlines()[0]
    hidden = [p.name for p in r.checkpoint.parent.iterdir() if p.name.startswith(".")]
    assert hidden == []  # atomic writes leave no temporary files


def test_same_seed_same_student(student, teacher: Path, files: dict, tmp_path: Path) -> None:
    pairs = [files[d] for d in DATES[:2]]
    cfg = dataclasses.replace(TINY, epochs=1, steps_per_epoch=3)
    a = distill(pairs, teacher, tmp_path / "a.ckpt", cfg)
    b = distill(pairs, teacher, tmp_path / "b.ckpt", cfg)
    sa, sb = (load_checkpoint(x.checkpoint).data["state_dict"] for x in (a, b))
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    with pytest.raises(OutputExistsError, match="--overwrite"):
        distill(pairs, teacher, tmp_path / "a.ckpt", cfg)
    # alpha = beta = 0: the same student trained on the ground truth only (no adapter).
    c = distill(pairs, teacher, tmp_path / "c.ckpt", dataclasses.replace(cfg, alpha=0, beta=0))
    assert set(c.history[0]) >= {"gt"} and "teacher" not in c.history[0]
    assert "adapter" not in load_checkpoint(c.checkpoint).data
    with pytest.raises(InvalidParameterError, match="is a student"):
        distill(pairs, a.checkpoint, tmp_path / "d.ckpt", cfg)


def test_resume_equals_uninterrupted(teacher: Path, files: dict, tmp_path: Path) -> None:
    """``--resume`` continues a distillation from its Lightning state: three epochs in one
    run and two then one more give the same student; another teacher is refused."""
    pairs = [files[d] for d in DATES[:2]]
    cfg = dataclasses.replace(TINY, epochs=3, steps_per_epoch=3)
    straight = distill(pairs, teacher, tmp_path / "a.ckpt", cfg)
    distill(pairs, teacher, tmp_path / "b.ckpt", dataclasses.replace(cfg, epochs=2))
    assert load_checkpoint(tmp_path / "b.ckpt").data["epoch"] == 2
    # A changed option other than those resuming may change (epochs, devices...) is ignored.
    more = dataclasses.replace(cfg, lr=1.0, student="micro")
    resumed = distill(pairs, teacher, tmp_path / "b.ckpt", more, resume=True)
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3]
    assert resumed.student_size == "nano" and resumed.best_epoch == straight.best_epoch
    a, b = (load_checkpoint(r.checkpoint).data for r in (straight, resumed))
    for key in a["resume"]["state_dict"]:
        assert torch.equal(a["resume"]["state_dict"][key], b["resume"]["state_dict"][key]), key
    assert a["adapter"]["state_dict"].keys() == b["adapter"]["state_dict"].keys()
    # nothing left to train: the checkpoint (and its speed measurement) stays as it was
    was = (tmp_path / "b.ckpt").read_bytes()
    again = distill(pairs, teacher, tmp_path / "b.ckpt", cfg, resume=True)
    assert (tmp_path / "b.ckpt").read_bytes() == was
    assert again.student_val_rmse == resumed.student_val_rmse
    assert again.teacher_val_rmse == resumed.teacher_val_rmse
    other = random_checkpoint(
        tmp_path / "other.ckpt", "edcstfn", 2, size="paper", band_names=["red", "nir"]
    )
    with pytest.raises(InvalidParameterError, match=r"was distilled from .*give that --teacher"):
        distill(pairs, other, tmp_path / "b.ckpt", cfg, resume=True)
    with pytest.raises(InvalidParameterError, match="does not exist"):
        distill(pairs, teacher, tmp_path / "c.ckpt", cfg, resume=True)


# ----------------------------------------------------------------------------- the student


def test_student_round_trip_and_prediction(student, files: dict) -> None:
    path = student.checkpoint
    ck = load_student(path)
    net = ck.network()
    assert isinstance(net, StudentNet) and net.radius == 2 and not net.training
    assert parameter_count(net) == student.student_parameters
    f1, c1 = arrays(files, DATES[1])
    _, c2 = arrays(files, DATES[2])
    whole = predict_arrays(ck, [(f1, c1)], c2, tile=64, device="cpu")
    tiled = predict_arrays(ck, [(f1, c1)], c2, tile=16, device="cpu")
    assert whole.shape == f1.shape and np.isfinite(whole).all()
    np.testing.assert_allclose(tiled, whole, atol=1e-5)
    # The Student method on files: the same prediction through the runner.
    est = Student(weights=str(path), tile=16, device="cpu").fit([files[DATES[1]]])
    assert est.training_dates_ == DATES[:2] and est.overlap_ == 8
    pred = est.predict(files[DATES[2]][1])
    np.testing.assert_allclose(pred.values, whole, atol=1e-5)
    assert pred.dtype == np.float32 and tuple(pred.band.values) == ("red", "nir")
    # A network with a zero head is exactly the additive prediction.
    zero = make_student(2, "nano")
    x = [torch.rand(1, 2, 8, 8) for _ in range(3)]
    with torch.no_grad():
        torch.testing.assert_close(zero(*x), x[0] + x[2] - x[1])
    with pytest.raises(InvalidParameterError, match="not of a distilled student"):
        Student(weights=str(load_checkpoint(path).data["teacher"]["path"])).fit([files[DATES[1]]])


def test_random_student_checkpoint(tmp_path: Path) -> None:
    path = random_student_checkpoint(tmp_path / "r.ckpt", 3, size="micro")
    ck = load_student(path)
    assert ck.model == "student" and ck.bands == 3
    rng = np.random.default_rng(0)
    f, c, t = (rng.uniform(0.1, 0.3, (3, 20, 20)).astype(np.float32) for _ in range(3))
    out = predict_arrays(ck, [(f, c)], t, tile=8, device="cpu")
    assert out.shape == (3, 20, 20) and not np.allclose(out, f + t - c, atol=1e-4)


def test_demo_student(tmp_path: Path) -> None:
    """The shipped student (test_dl_agnostic.check_shipped). Since 2026-12-04 it is distilled
    (``stfusion distill``) from the shipped EDCSTFN on the same multi-site catalog: a
    band-agnostic student that corrects the teacher's regression baseline, a tenth or less of
    its parameters, with the distillation's closing comparison recorded."""
    from stfusion.methods.deep import demo_weights
    from test_dl_agnostic import check_shipped

    assert Student.training_dates == DEMO_DATES
    check_shipped("student", tmp_path)
    ck = load_checkpoint(demo_weights("student"))
    teacher = load_checkpoint(demo_weights("edcstfn"))
    t = ck.data["teacher"]
    assert ck.meta["command"].startswith("stfusion distill --teacher ")
    assert t["model"] == "edcstfn" and t["file"] == "edcstfn_multisite.ckpt"
    assert t["sha256"] == file_sha256(demo_weights("edcstfn"))  # the teacher shipped beside it
    assert ck.training_dates == teacher.training_dates
    assert 10 * ck.data["parameters"] <= t["parameters"]
    speed = ck.data["distillation"]["speed"]
    assert speed["speedup"] > 5 and speed["threads"] == 1


# ----------------------------------------------------------------------------- the CLI


def test_distill_command(files: dict, teacher: Path, tmp_path: Path) -> None:
    from stfusion.cli.distill import distill as distill_cmd

    out = tmp_path / "cli.ckpt"
    args = [
        "--teacher",
        str(teacher),
        "--student",
        "nano",
        *quick_args(out, "--seed", "3"),
        "--alpha",
        "0.5",
        "--beta",
        "0.2",
        "--feature-layer",
        "decoder.1",
        "--note",
        "demo only",
        *pair_args(files[d] for d in DATES[:2]),
    ]
    res = CliRunner().invoke(distill_cmd, args)
    assert res.exit_code == 0, res.output
    for text in ("wrote", "validation RMSE", "teacher", "faster", "decoder.1", "loss log"):
        assert text in res.output
    ck = load_checkpoint(out)
    assert ck.meta["notes"] == "demo only"
    cmd = ck.meta["command"]
    assert cmd.startswith("stfusion distill --teacher ") and "--student nano" in cmd
    assert "--alpha 0.5" in cmd and "--beta 0.2" in cmd and "--seed 3" in cmd
    assert ck.data["config"]["alpha"] == 0.5 and ck.data["adapter"]["feature_layer"] == "decoder.1"
    again = CliRunner().invoke(distill_cmd, args)
    assert again.exit_code != 0 and isinstance(again.exception, OutputExistsError)
    res = CliRunner().invoke(distill_cmd, [*args, "--overwrite", "-q", "--epochs", "1"])
    assert res.exit_code == 0 and res.output == ""
    res = CliRunner().invoke(distill_cmd, [*args, "--overwrite", "--student", "mega"])
    assert res.exit_code == 2 and "mega" in res.output
    res = CliRunner().invoke(distill_cmd, [*args, "--resume", "--epochs", "2"])
    assert res.exit_code == 0, res.output
    assert "(student nano," in res.output and load_checkpoint(out).data["epoch"] == 2
    assert "--resume" not in load_checkpoint(out).meta["command"]


def test_teacher_path_shipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--teacher shipped`` is the shipped student's teacher, ``shipped:MODEL`` another
    shipped model; a file of that name wins; unknown models and the student are refused."""
    from stfusion.dl.distill import teacher_path
    from stfusion.methods.deep import demo_weights

    assert teacher_path("shipped") == demo_weights("edcstfn")
    assert load_student(demo_weights("student")).data["teacher"]["file"] == (
        teacher_path("shipped").name
    )
    assert teacher_path("shipped:vitgan") == demo_weights("vitgan")
    for bad in ("shipped:student", "shipped:starfm"):
        with pytest.raises(InvalidParameterError, match=r"no such model.*shipped:edcstfn"):
            teacher_path(bad)
    # a shipped network no student can distil is not offered (it was, then refused)
    with pytest.raises(InvalidParameterError, match=r"smaller than 10x any student") as info:
        teacher_path("shipped:stfdcnn")
    assert "shipped:stfdcnn" not in str(info.value).partition("choose")[2]
    from stfusion.dl.checkpoint import load_checkpoint
    from stfusion.dl.distill import TOO_SMALL_TO_TEACH, make_student, parameter_count

    smallest = parameter_count(make_student(1, "nano"))
    for m in ("dcstfn", "edcstfn", "ganstfm", "vitgan", "stfdcnn"):
        weights = load_checkpoint(demo_weights(m)).data["state_dict"].values()
        n = sum(v.numel() for v in weights if v.is_floating_point())
        assert (n < 10 * smallest) == (m in TOO_SMALL_TO_TEACH), (m, n, smallest)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "shipped").write_bytes(b"")
    assert teacher_path("shipped") == Path("shipped")
    assert teacher_path(tmp_path / "t.ckpt") == tmp_path / "t.ckpt"


def test_train_then_distill_both_forms(files: dict, tmp_path: Path) -> None:
    """The README's chain through the commands: `stfusion train` (band-agnostic, the
    default) and `stfusion train --band-tied` (fresh weights, no --init warning) each write
    a teacher that `stfusion distill` takes; the student has the teacher's form."""
    from stfusion.cli.distill import distill as distill_cmd
    from stfusion.cli.train import train as train_cmd

    pairs = pair_args(files[d] for d in DATES[:2])
    tied, agnostic = tmp_path / "tied.ckpt", tmp_path / "agnostic.ckpt"

    def train_cli(out: Path, *extra: str) -> None:
        args = ["--model", "edcstfn", "--size", "tiny", "--ae-steps", "2", *quick_args(out)]
        res = CliRunner().invoke(train_cmd, [*args, *extra, *pairs])
        assert res.exit_code == 0, res.output

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        train_cli(tied, "--band-tied")
    assert not [w for w in seen if "--init shipped" in str(w.message)]  # fresh, silently
    train_cli(agnostic)
    assert not load_checkpoint(tied).agnostic and load_checkpoint(agnostic).agnostic
    for teacher in (tied, agnostic):
        student = tmp_path / f"student_{teacher.stem}.ckpt"
        args = ["--teacher", str(teacher), "--student", "nano", *quick_args(student), *pairs]
        res = CliRunner().invoke(distill_cmd, args)
        assert res.exit_code == 0, res.output
        ck = load_student(student)
        assert ck.model == "student" and ck.agnostic == (teacher == agnostic)


def test_distill_band_agnostic_teacher(files: dict, tmp_path: Path) -> None:
    """A band-agnostic teacher (the shipped form) distils into a band-agnostic student that
    corrects the same baseline, matches the teacher's features of every band, and then
    predicts any band count."""
    pairs = [files[d] for d in DATES[:2]]
    t_path = train(pairs, tmp_path / "teacher.ckpt", TEACHER).checkpoint
    t_ck = load_checkpoint(t_path)
    assert t_ck.agnostic
    # The hook sees every band of the batch (the CPU's band-by-band inference is off), and
    # the teacher's prediction is its own (shared per-sample normalisation: no conversion).
    tm = Teacher(t_ck, np.zeros(1), np.ones(1), "inner.decoder.3")
    x = [torch.randn(2, 3, 16, 16) for _ in range(3)]
    pred, feat = tm.predict(*x)
    assert feat is not None and feat.shape[:2] == (6, t_ck.network().channels[0])
    with torch.no_grad():
        torch.testing.assert_close(pred, t_ck.network()(*x), atol=1e-5, rtol=1e-5)

    r = distill(pairs, t_path, tmp_path / "student.ckpt", TINY)
    assert r.feature_layer == "inner.decoder.3"
    # The single-band network's own module names work too (the wrapper's prefix added).
    named = dataclasses.replace(TINY, epochs=1, steps_per_epoch=1, feature_layer="decoder.1")
    assert distill(pairs, t_path, tmp_path / "s1.ckpt", named).feature_layer == "inner.decoder.1"
    assert {"teacher", "feature", "val_rmse_vs_teacher"} <= set(r.history[0])
    losses = [h["train_loss"] for h in r.history]
    assert losses[-1] < losses[0]
    # Validation in physical units, on the teacher's own validation sample.
    assert r.teacher_val_rmse == pytest.approx(t_ck.data["history"][-1]["val_rmse"], rel=1e-4)
    assert 0.005 < r.student_val_rmse < 0.1
    ck = load_student(r.checkpoint)
    net = ck.network()
    assert ck.agnostic and ck.bands == 1 and ck.data["teacher"]["model"] == "edcstfn"
    assert ck.data["network"]["agnostic"] == t_ck.data["network"]["agnostic"] == "regression"
    assert net.smooth == t_ck.network().smooth and 10 * parameter_count(net) <= r.teacher_parameters
    # Any band count: one band alone predicts as it does among the others.
    f1, c1 = arrays(files, DATES[1])
    _, c2 = arrays(files, DATES[2])
    both = predict_arrays(ck, [(f1, c1)], c2, tile=64, device="cpu")
    one = predict_arrays(ck, [(f1[1:], c1[1:])], c2[1:], tile=64, device="cpu")
    assert both.shape == f1.shape and np.isfinite(both).all()
    np.testing.assert_allclose(one[0], both[1], atol=1e-5)


def test_without_torch() -> None:
    """The command's help and the method's construction need no torch; fit says to install."""
    script = textwrap.dedent(
        """
        import sys
        sys.modules["torch"] = None
        import numpy as np
        from click.testing import CliRunner
        from stfusion.cli.distill import distill
        from stfusion.errors import MissingDependencyError
        from stfusion.methods.deep_student import Student

        res = CliRunner().invoke(distill, ["--help"])
        assert res.exit_code == 0 and "--teacher" in res.output, res.output
        res = CliRunner().invoke(distill, ["--teacher", "t", "--pair", "a", "b", "--out", "o"])
        assert isinstance(res.exception, MissingDependencyError), res.exception
        est = Student(tile=32)
        assert est.get_params()["weights"] == "demo"
        a = np.full((2, 8, 8), 0.2, np.float32)
        try:
            est.fit([(a, a)])
        except MissingDependencyError as exc:
            print("FIT:", exc)
        print("OK")
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("OK") and "install stfusion[dl]" in proc.stdout


def test_stopped_during_the_comparison_keeps_the_student_and_says_resume(
    teacher: Path, files: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A user trial: SIGTERM during the closing comparison said "partial outputs removed",
    but the trained student stays (rightly) and --resume finishes the comparison."""
    from stfusion.dl import distill as distill_module
    from stfusion.errors import RunInterrupted

    def stopped(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(distill_module, "measure", stopped)
    pairs = [files[d] for d in DATES[:2]]
    cfg = dataclasses.replace(TINY, epochs=1, steps_per_epoch=2)
    out = tmp_path / "s.ckpt"
    with pytest.raises(RunInterrupted, match="without the comparison: run the same") as got:
        distill(pairs, teacher, out, cfg)
    assert got.value.code == 130 and out.exists()
    monkeypatch.undo()
    done = distill(pairs, teacher, out, cfg, resume=True)
    assert done.student_val_rmse > 0 and "distillation" in load_checkpoint(out).data


def test_a_student_counts_its_teachers_dates_as_seen(student) -> None:
    """A training trial: a teacher trained on 2001-11-02, a student distilled on 10-08 and
    10-17: the bench scored the student on 11-02 (the teacher was skipped), as if the date
    were new to it. The teacher's dates are the student's too; the teacher's held-out dates
    count as held out."""
    from stfusion.methods.deep import trained_on_target

    ck = load_checkpoint(student.checkpoint)
    ck.data["teacher"]["training_dates"] = [*DATES[:2], "2001-11-02", "2001-12-04"]
    ck.data["teacher"]["validation_dates"] = ["2001-12-04"]
    assert ck.training_dates == (*DATES[:2], "2001-11-02", "2001-12-04")
    assert "2001-12-04" in ck.validation_dates and "2001-11-02" not in ck.validation_dates
    assert trained_on_target(ck.training_dates, "2001-11-02") == (
        "trained on the target date 2001-11-02"
    )


def test_distill_holds_out_the_teacher_s_validation_dates(files: dict, tmp_path: Path) -> None:
    """A trial: a teacher trained with --val-fraction 0 --val-dates D3 could not be distilled
    on its own pairs ("no validation examples"), and with --val-fraction 0.2, as advised, its
    held-out date became a student training target and its training block the "held-out"
    comparison. The teacher's held-out dates are now held out again."""
    pairs = [files[d] for d in DATES[:3]]
    cfg = dataclasses.replace(TEACHER, val_fraction=0.0, val_dates=[DATES[2]])
    t_path = train(pairs, tmp_path / "teacher.ckpt", cfg).checkpoint
    short = dataclasses.replace(TINY, epochs=1, steps_per_epoch=2)
    r = distill(pairs, t_path, tmp_path / "student.ckpt", short)
    ck = load_student(r.checkpoint)
    assert DATES[2] in ck.data["config"]["val_dates"]
    assert DATES[2] in ck.data["validation_dates"], ck.data["validation_dates"]
