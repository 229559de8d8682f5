"""The trainer: loss goes down, checkpoints round-trip, resume, seeds, the CLI command."""

from __future__ import annotations

import dataclasses
import os
import random
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio

torch = pytest.importorskip("torch")

from click.testing import CliRunner  # noqa: E402

from dl_helpers import pair_args, quick_args  # noqa: E402
from stfusion.dl.checkpoint import load_checkpoint  # noqa: E402
from stfusion.dl.train import TrainConfig, log_paths, train  # noqa: E402
from stfusion.errors import InvalidParameterError, OutputExistsError, STFusionWarning  # noqa: E402
from test_dl_data import DATES, write_cia_crop  # noqa: E402

TINY = TrainConfig(
    size="tiny",
    epochs=2,
    patch=16,
    batch=4,
    steps_per_epoch=4,
    ae_steps=4,
    val_fraction=0.3,
    threads=1,
    seed=0,
    val_patches=8,
)


@pytest.fixture
def pairs(tmp_path: Path) -> list[tuple[Path, Path]]:
    files = write_cia_crop(tmp_path, size=40, dates=DATES[:2], bands=(2, 3))
    return [files[d] for d in DATES[:2]]


def cfg(model: str, **kw: object) -> TrainConfig:
    return dataclasses.replace(TINY, model=model, **kw)


@pytest.mark.parametrize("model", ["dcstfn", "edcstfn"])
def test_loss_goes_down_on_tiny_overfit_set(model: str, pairs: list, tmp_path: Path) -> None:
    # Band-tied: a band-agnostic network starts at the additive baseline (a low loss) and
    # draws one random band per patch, so a 40 % drop in 5 tiny epochs is not its test; its
    # training is checked in test_dl_agnostic.py (val RMSE against additive in the log).
    config = cfg(
        model, epochs=5, steps_per_epoch=6, lr=3e-3, patience=100, augment=False, agnostic=False
    )
    r = train(pairs, tmp_path / "m.ckpt", config)
    losses = [h["train_loss"] for h in r.history]
    assert len(losses) == 5
    assert losses[-1] < 0.6 * losses[0]
    assert np.isfinite([h["val_loss"] for h in r.history]).all()


@pytest.mark.parametrize("model", ["dcstfn", "edcstfn"])
def test_checkpoint_round_trip(model: str, pairs: list, tmp_path: Path) -> None:
    out = tmp_path / "m.ckpt"
    r = train(pairs, out, cfg(model), meta={"command": "stfusion train ...", "notes": "x"})
    ck = load_checkpoint(out)
    # Band-agnostic (format 2): the network takes one band, any band set; the training
    # bands are recorded per site.
    assert ck.model == model and ck.agnostic and ck.bands == 1 and ck.band_names == ("any",)
    assert ck.data["training_site_info"][0]["band_names"] == ["red", "nir"]
    assert ck.training_dates == DATES[:2]  # parsed from the file names
    assert ck.data["scaling"]["fine"] == {"scale": 1.0, "offset": 0.0}
    assert ck.data["ratio"] is None  # fine and coarse on one grid, no ratio given
    assert ck.data["config"]["seed"] == 0 and ck.data["config"]["size"] == "tiny"
    assert ck.meta["command"] == "stfusion train ..." and ck.meta["notes"] == "x"
    assert ck.meta["seconds"] > 0 and ck.data["epoch"] == 2 == r.epochs
    assert len(ck.data["history"]) == 2 and ck.data["best_epoch"] == r.best_epoch
    assert ("autoencoder" in ck.data) == (model == "edcstfn")
    assert ck.mean.shape == (1,) and (ck.std > 0).all() and ck.data["norm"]["per_sample"]
    # The stored best weights are the network's.
    net = ck.network()
    x = [torch.randn(1, 2, 16, 16) for _ in range(3)]
    with torch.no_grad():
        assert net(*x).shape == (1, 2, 16, 16)
    csv_path, png_path = log_paths(out)
    assert csv_path.exists() and png_path.exists()
    header = csv_path.read_text().splitlines()[0]
    assert header.startswith("epoch,train_loss") and "val_rmse_additive" in header
    assert len(csv_path.read_text().splitlines()) == 3
    # No temporary files left beside the checkpoint (atomic writes).
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


@pytest.mark.parametrize("model", ["dcstfn", "edcstfn"])
def test_resume_continues_from_saved_epoch(model: str, pairs: list, tmp_path: Path) -> None:
    straight = tmp_path / "a.ckpt"
    resumed = tmp_path / "b.ckpt"
    train(pairs, straight, cfg(model, epochs=3))
    train(pairs, resumed, cfg(model, epochs=2))
    assert load_checkpoint(resumed).data["epoch"] == 2
    r = train(pairs, resumed, cfg(model, epochs=3), resume=True)
    assert [h["epoch"] for h in r.history] == [1, 2, 3]
    a, b = load_checkpoint(straight).data, load_checkpoint(resumed).data
    assert b["epoch"] == 3
    for key in a["resume"]["state_dict"]:
        assert torch.equal(a["resume"]["state_dict"][key], b["resume"]["state_dict"][key]), key
    assert a["best_epoch"] == b["best_epoch"]
    # Resuming a finished run does nothing more; an option it cannot change is said to be
    # ignored (not silently dropped), and another model is refused.
    with pytest.warns(STFusionWarning, match=r"ignored: lr 0\.5 \(the run's: "):
        r2 = train(pairs, resumed, cfg(model, epochs=3, lr=0.5), resume=True)
    assert r2.epochs == 3 and len(r2.history) == 3
    other = "dcstfn" if model == "edcstfn" else "edcstfn"
    a_model = "an edcstfn" if model == "edcstfn" else "a dcstfn"
    an_other = "an edcstfn" if other == "edcstfn" else "a dcstfn"
    with pytest.raises(InvalidParameterError, match=f"holds {a_model} run, not {an_other} one"):
        train(pairs, resumed, cfg(other, epochs=4), resume=True)


def _draws() -> tuple:
    return random.random(), np.random.rand(), torch.rand(1).item()


def test_same_seed_same_weights(pairs: list, tmp_path: Path, monkeypatch) -> None:
    paths = [tmp_path / f"{i}.ckpt" for i in range(3)]
    for key in ("PL_GLOBAL_SEED", "PL_SEED_WORKERS"):
        monkeypatch.delenv(key, raising=False)
    random.seed(3), np.random.seed(3), torch.manual_seed(3)
    expected = _draws()
    random.seed(3), np.random.seed(3), torch.manual_seed(3)
    train(pairs, paths[0], cfg("edcstfn", seed=7))
    # the run seeds itself without moving its caller's streams or leaving Lightning's seed
    assert _draws() == expected
    assert "PL_GLOBAL_SEED" not in os.environ and "PL_SEED_WORKERS" not in os.environ
    train(pairs, paths[1], cfg("edcstfn", seed=7))
    train(pairs, paths[2], cfg("edcstfn", seed=8))
    sd = [load_checkpoint(p).data["resume"]["state_dict"] for p in paths]
    assert all(torch.equal(sd[0][k], sd[1][k]) for k in sd[0])
    assert not all(torch.equal(sd[0][k], sd[2][k]) for k in sd[0])


def test_a_run_that_fails_puts_the_random_streams_back_too() -> None:
    """The adversarial trial: Lightning's isolate_rng restores only when the run ends well; a
    training that raised (a callback, a NaN check, Ctrl-C) left its seeded streams."""
    from stfusion.dl.engine_settings import deterministic

    random.seed(3), np.random.seed(3), torch.manual_seed(3)
    expected = _draws()
    random.seed(3), np.random.seed(3), torch.manual_seed(3)
    with pytest.raises(KeyboardInterrupt), deterministic("cpu", 1):
        random.seed(7), np.random.seed(7), torch.manual_seed(7)
        raise KeyboardInterrupt
    assert _draws() == expected


def test_early_stopping_and_errors(pairs: list, tmp_path: Path) -> None:
    out = tmp_path / "m.ckpt"
    # A learning rate far too large makes the validation loss stop improving (NaN never
    # improves): Lightning's EarlyStopping ends the run after `patience` bad epochs.
    r = train(pairs, out, cfg("dcstfn", epochs=12, patience=2, lr=1e4, steps_per_epoch=2))
    assert r.stopped_early and r.epochs == r.best_epoch + 2 < 12
    assert len(r.history) == r.epochs == load_checkpoint(out).data["epoch"]
    # --patience given with --resume is this run's (a trial: the resumed early-stopping
    # state brought back the first run's 2, so patience 5 stopped after one more epoch)
    more = cfg("dcstfn", epochs=r.epochs + 3, patience=5, lr=1e4, steps_per_epoch=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", STFusionWarning)  # lr's and steps' "ignored" notes
        again = train(pairs, out, more, resume=True)
    assert again.epochs == r.epochs + 3 and again.best_epoch == r.best_epoch
    with pytest.raises(OutputExistsError, match="--overwrite"):
        train(pairs, out, cfg("dcstfn"))
    with pytest.raises(InvalidParameterError, match="does not exist"):
        train(pairs, tmp_path / "none.ckpt", cfg("dcstfn"), resume=True)
    folder = tmp_path / "afolder"
    folder.mkdir()
    with pytest.raises(OutputExistsError, match="is a folder"):  # before any training
        train(pairs, folder, cfg("dcstfn"), overwrite=True)
    assert list(tmp_path.glob("afolder.*")) == []
    with pytest.raises(InvalidParameterError, match="two or more dates"):
        train(pairs[:1], tmp_path / "one.ckpt", cfg("dcstfn"))
    # two sites of one date each: the dates do not pair across sites, and that is said
    two_sites = tmp_path / "two_sites.csv"
    two_sites.write_text(
        "site,date,fine,coarse\n"
        + "".join(f"{s},,{f},{c}\n" for s, (f, c) in zip("ab", pairs[:2], strict=True))
    )
    with pytest.raises(InvalidParameterError, match=r"got 1 in any of the 2 sites \(dates pair"):
        train(None, tmp_path / "one.ckpt", cfg("dcstfn"), catalog=two_sites)
    with pytest.raises(InvalidParameterError, match="even patch"):
        train(pairs, tmp_path / "odd.ckpt", cfg("dcstfn", patch=17))
    with pytest.raises(InvalidParameterError, match="size"):
        train(pairs, tmp_path / "s.ckpt", cfg("dcstfn", size="huge"))
    with pytest.raises(InvalidParameterError, match="dates repeat"):
        train(pairs, tmp_path / "d.ckpt", cfg("dcstfn"), dates=["2001-01-01", "2001-01-01"])


def test_train_command(pairs: list, tmp_path: Path) -> None:
    from stfusion.cli.train import train as train_cmd

    out = tmp_path / "cli.ckpt"
    args = [
        "--model",
        "dcstfn",
        *quick_args(out, "--size", "tiny", "--seed", "3"),
        "--dates",
        "2001-01-01,2001-01-09",
        "--note",
        "demo only",
        *pair_args(pairs),
    ]
    res = CliRunner().invoke(train_cmd, args)
    assert res.exit_code == 0, res.output
    assert "wrote" in res.output and "loss log" in res.output
    ck = load_checkpoint(out)
    assert ck.training_dates == ("2001-01-01", "2001-01-09")
    site = ck.data["training_site_info"][0]  # where: so a date elsewhere is not taken for it
    assert site["crs"] and len(site["bounds"]) == 4 and site["bounds"][2] > site["bounds"][0]
    assert ck.meta["notes"] == "demo only"
    assert ck.meta["command"].startswith("stfusion train --model dcstfn --pair ")
    assert "--seed 3" in ck.meta["command"] and "--size tiny" in ck.meta["command"]
    again = CliRunner().invoke(train_cmd, args)
    assert again.exit_code != 0 and isinstance(again.exception, OutputExistsError)
    res = CliRunner().invoke(train_cmd, [*args, "--resume", "--epochs", "2", "-q"])
    assert res.exit_code == 0, res.output
    assert load_checkpoint(out).data["epoch"] == 2
    # the recorded command runs again as it is (a user trial: it named --device auto beside
    # --devices cpu, refused as two values of one option, and --ae-steps, which DCSTFN ignores)
    import shlex

    res = CliRunner().invoke(train_cmd, [*args, "--devices", "cpu", "--overwrite", "-q"])
    assert res.exit_code == 0, res.output
    cmd = load_checkpoint(out).meta["command"]
    assert "--device " not in cmd and "--devices cpu" in cmd and "--ae-steps" not in cmd, cmd
    again = shlex.split(cmd)[2:]  # without "stfusion train"
    res = CliRunner().invoke(train_cmd, [*again, "--overwrite", "-q"])
    assert res.exit_code == 0, res.output


def test_a_validation_block_leaving_no_room_is_warned_about(pairs: list, tmp_path: Path) -> None:
    """A user trial: --val-fraction 0.99 left a 1-pixel strip for the training patches,
    padded, exit 0 and no word."""
    from stfusion.cli.train import train as train_cmd

    out = tmp_path / "v.ckpt"
    args = ["--model", "dcstfn", *quick_args(out, "--size", "tiny"), *pair_args(pairs)]
    with pytest.warns(STFusionWarning, match=r"fewer than --patch 16.*--val-dates"):
        res = CliRunner().invoke(train_cmd, [*args, "--val-fraction", "0.9"])
    assert res.exit_code == 0, res.output
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = CliRunner().invoke(train_cmd, [*args, "--overwrite"])  # 0.2: room for patches
    assert res.exit_code == 0, res.output
    assert not any("fewer than --patch" in str(w.message) for w in caught)
    # a block over the whole scene: refused, without first the warning above (a trial)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = CliRunner().invoke(train_cmd, [*args, "--overwrite", "--val-fraction", "0.999"])
    assert res.exit_code != 0 and "covers the whole" in str(res.exception or res.output)
    assert not any("fewer than --patch" in str(w.message) for w in caught)


def test_train_command_catalog_val_dates_and_engine_options(tmp_path: Path) -> None:
    from stfusion.cli.train import train as train_cmd
    from test_dl_data import write_series

    series = write_series(tmp_path, 4, size=40)
    rows = ["site,date,fine,coarse"] + [f"s1,{f.stem[2:]},{f.name},{c.name}" for f, c in series]
    (tmp_path / "cat.csv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "cat.ckpt"
    held = series[3][0].stem[2:]
    args = [
        "--model",
        "dcstfn",
        "--catalog",
        str(tmp_path / "cat.csv"),
        *quick_args(out, "--size", "tiny"),
        "--val-dates",
        held,
        "--val-fraction",
        "0",
        "--val-patches",
        "4",
        "--max-gap",
        "6",
        "--devices",
        "cpu",
        "--precision",
        "32",
        "--workers",
        "0",
    ]
    res = CliRunner().invoke(train_cmd, args)
    assert res.exit_code == 0, res.output
    assert "epoch   1" in res.output  # a line per epoch without a terminal
    ck = load_checkpoint(out)
    assert ck.data["validation"]["dates"] == [held] and ck.data["validation_block"] is None
    assert ck.data["training_sites"] == {"s1": [f.stem[2:] for f, _ in series]}
    assert "--catalog" in ck.meta["command"] and "--val-dates" in ck.meta["command"]
    assert (tmp_path / "cat.lightning" / "resume.ckpt").exists()
    bad = CliRunner().invoke(
        train_cmd, [*args[:4], "--out", str(tmp_path / "x.ckpt"), "--devices", "tpu:9"]
    )
    # a malformed value is a usage error (exit 2), as other options' (a trial: exit 1)
    assert bad.exit_code == 2 and "--devices 'tpu:9'" in bad.output, bad.output
    none = CliRunner().invoke(train_cmd, ["--model", "dcstfn", "--out", str(tmp_path / "n")])
    assert none.exit_code == 2 and "--catalog" in none.output


def test_resume_needs_the_lightning_state(pairs: list, tmp_path: Path) -> None:
    """A checkpoint without its Lightning state (older stfusion, stripped, moved) still
    predicts; --resume says what to do."""
    import shutil

    out = tmp_path / "m.ckpt"
    train(pairs, out, cfg("dcstfn", epochs=1))
    shutil.rmtree(tmp_path / "m.lightning")
    with pytest.raises(InvalidParameterError, match="no training state beside it"):
        train(pairs, out, cfg("dcstfn", epochs=2), resume=True)
    assert load_checkpoint(out).network() is not None


def test_train_models_are_the_registered_networks() -> None:
    """``train --model`` lists the registry's deep methods (without importing torch); they
    are the registered networks (the student trains directly too)."""
    from stfusion.cli.train import model_choices
    from stfusion.dl.networks import network_names

    assert sorted(model_choices()) == sorted(network_names())


@pytest.mark.parametrize("model", ["dcstfn", "ganstfm"])
def test_data_parallel_on_two_cpu_processes(model: str, pairs: list, tmp_path: Path) -> None:
    """``--devices 2 --strategy ddp`` through a real process: Lightning starts a second process
    running the same command; one checkpoint and one log are written, one report printed. A
    GAN (generator and discriminator stepped in turn) ran into DDP's unused-parameter error."""
    from conftest import run_process

    out = tmp_path / "ddp.ckpt"
    args = ["train", "--model", model, "--size", "tiny", *pair_args(pairs)]
    args += quick_args(out, "--devices", "2", "--strategy", "ddp", "--init", "none")
    if model == "ganstfm":
        args += ["--ae-steps", "3"]
    proc = run_process(*args, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count(f"wrote {out}") == 1, proc.stdout
    if model == "ganstfm":  # the autoencoder's line once, not once per process
        assert proc.stderr.count("autoencoder (feature loss)") == 1, proc.stderr[-3000:]
    ck = load_checkpoint(out)
    assert ck.data["history"] and len(out.with_suffix(".log.csv").read_text().splitlines()) == 2


def test_interrupting_training_keeps_the_last_epoch(pairs: list, tmp_path: Path) -> None:
    """Ctrl-C (and SIGTERM) in a real `stfusion train` process: status 130 (143) and a line
    saying what was kept and how to go on, not Lightning's silent status 1."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from conftest import REPO

    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))

    def start(out: Path) -> subprocess.Popen[str]:
        args = [
            "train",
            "--model",
            "dcstfn",
            "--size",
            "tiny",
            "--init",
            "none",
            *pair_args(pairs),
            "--out",
            str(out),
            "--epochs",
            "500",
            "--patience",  # early stopping would end the run before the signal
            "1000",
            "--steps-per-epoch",
            "2",
            "--batch",
            "2",
            "--patch",
            "16",
            "--threads",
            "1",
            "--val-patches",
            "2",
        ]
        return subprocess.Popen(
            [sys.executable, "-m", "stfusion.cli", *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    # SIGHUP (a closed ssh session) was reported as SIGTERM with status 143
    for sig, code in ((signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)):
        out = tmp_path / f"m{code}.ckpt"
        proc = start(out)
        deadline = time.monotonic() + 240
        while not out.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert out.exists(), proc.communicate()[1]
        time.sleep(0.5)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == code, err
        assert "--resume" in err and "Traceback" not in err, err
        assert sig != signal.SIGHUP or "Hangup (SIGHUP) while training" in err, err[-500:]
        assert load_checkpoint(out).data["epoch"] >= 1


def test_ddp_replicas_share_process_0s_autoencoder() -> None:
    """Each DDP process trains its own feature-loss autoencoder on its own patches; at the
    start of the fit all load process 0's, so they optimise one loss."""
    from types import SimpleNamespace

    from stfusion.dl.engine import FusionModule

    criterion = torch.nn.Linear(3, 3)
    module = FusionModule(torch.nn.Linear(3, 3), criterion, 1e-3, [1.0])
    rank0 = {k: torch.full_like(v, 7.0) for k, v in criterion.state_dict().items()}
    strategy = SimpleNamespace(broadcast=lambda obj, src: rank0)
    module._trainer = SimpleNamespace(world_size=2, strategy=strategy)  # type: ignore[assignment]
    module.on_fit_start()
    assert all(torch.equal(v, rank0[k]) for k, v in criterion.state_dict().items())


def test_float16_on_the_cpu_is_said(tmp_path: Path) -> None:
    """--precision 16-mixed on the CPU runs as bf16 (Lightning swaps it silently): said once
    per run (by the run's settings, not by each of its Trainers)."""
    import warnings

    from stfusion.dl.engine_settings import EngineSettings, make_trainer, warn_settings

    with pytest.warns(STFusionWarning, match="runs as bf16-mixed"):
        warn_settings(EngineSettings(1, 1, device="cpu", precision="16-mixed"))
    with warnings.catch_warnings():
        warnings.simplefilter("error", STFusionWarning)
        warn_settings(EngineSettings(1, 1, device="cpu", precision="bf16-mixed"))
        make_trainer(EngineSettings(1, 1, device="cpu", precision="16-mixed"), tmp_path)


def test_a_validation_sample_without_a_valid_pixel_is_refused(tmp_path: Path) -> None:
    """A training trial: a held-out date masked everywhere scored "val RMSE 0 (additive 0)"
    every epoch, a perfect score that fixed the best epoch at the first. Refused before
    training, naming the dates."""
    from conftest import write_tif

    files = write_cia_crop(tmp_path, size=40, dates=DATES, bands=(2, 3))
    with rasterio.open(files[DATES[1]][0]) as ds:
        kept = {"transform": ds.transform, "crs": ds.crs}
    mask = write_tif(tmp_path / "clouds.tif", np.ones((1, 40, 40), np.uint8), dtype="uint8", **kept)
    catalog = tmp_path / "cat.csv"
    catalog.write_text(
        "site,date,fine,coarse,mask\n"
        + "".join(f"s,{d},{f},{c},{mask if d == DATES[1] else ''}\n" for d, (f, c) in files.items())
    )
    config = cfg("dcstfn", val_dates=(DATES[1],), val_fraction=0.0)
    with pytest.raises(InvalidParameterError, match=rf"held-out dates {DATES[1]}\) has no valid"):
        train(None, tmp_path / "m.ckpt", config, catalog=catalog)
    assert not (tmp_path / "m.ckpt").exists()


def test_predicting_a_training_pairs_coarse_file_without_a_date_warns(tmp_path: Path) -> None:
    """A training trial: weights trained on BOREAS (dates from a catalog, names without one)
    predicted a training pair's coarse file (modis0711) without a word: the date check had no
    date. The checkpoint records each training file (path, size, time): that is enough."""
    from conftest import copies_named
    from stfusion.methods.deep import DCSTFN

    files = write_cia_crop(tmp_path, size=40, dates=DATES[:2], bands=(2, 3))
    pairs = copies_named([files[d] for d in DATES[:2]], tmp_path, "fine", "coarse")
    out = tmp_path / "m.ckpt"
    train(pairs, out, cfg("dcstfn", epochs=1), dates=list(DATES[:2]))
    est = DCSTFN(weights=str(out)).fit([(str(pairs[0][0]), str(pairs[0][1]))])
    with pytest.warns(STFusionWarning, match=rf"its coarse image of site main, {DATES[1]}"):
        est.predict(str(pairs[1][1]))
