"""What several deep-learning test modules share: the options of a training command line that
ends in seconds, and the adversarial overfit check of test_dl_gan and test_dl_vitgan.

Import it after ``pytest.importorskip("torch")``: it needs torch.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from test_dl_data import DATES

#: Bounds of the per-step ratio d_loss / g_adv (least squares losses). At the start both are
#: 0.5 (ratio 1); a discriminator that gave up outputs one value c for everything, so
#: d_loss >= 0.25 and the ratio stays near 1-2; the ratio leaves [0.01, 100] only in the two
#: failure modes: below 0.01 the discriminator separates real from generated perfectly
#: (d_loss ~ 0 while g_adv ~ 0.5: it has won), above 100 the generator fools a discriminator
#: that has collapsed.
RATIO_BOUNDS = (0.01, 100.0)


def quick_args(out: Path, *extra: str) -> list[str]:
    """Options of a ``train`` or ``distill`` command line that ends in seconds (one epoch of
    two steps, batches of two 16 px patches, one thread), writing ``out``; then ``extra``."""
    return [
        "--out",
        str(out),
        "--epochs",
        "1",
        "--patch",
        "16",
        "--batch",
        "2",
        "--steps-per-epoch",
        "2",
        "--threads",
        "1",
        *extra,
    ]


def pair_args(pairs: Iterable[tuple[Path, Path]]) -> list[str]:
    """``--pair FINE COARSE`` for each (fine, coarse)."""
    return [arg for fine, coarse in pairs for arg in ("--pair", str(fine), str(coarse))]


def fixed_patches(side: int) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """8 patches of side x side px, CIA 2001-10-08 (reference) -> 2001-10-17 (target):
    [fine ref, coarse ref, coarse target, fine target], and the per-band mean and std of all."""
    from stfusion.demo import sample_dir
    from stfusion.io import FileSource

    d = sample_dir()
    images = [
        FileSource(str(d / f"CIA_{kind}_{date}.tif")).read()
        for kind, date in (
            ("Landsat7", DATES[0]),
            ("MOD09GA", DATES[0]),
            ("MOD09GA", DATES[1]),
            ("Landsat7", DATES[1]),
        )
    ]
    pos = [(r, c) for r in (20, 90, 160, 210) for c in (30, 150)]
    s = side
    fr, cr, ct, ft = (np.stack([a[:, r : r + s, c : c + s] for r, c in pos]) for a in images)
    both = np.concatenate([fr, cr, ct, ft]).transpose(1, 0, 2, 3).reshape(6, -1)
    return [fr, cr, ct, ft], both.mean(1), both.std(1)


def overfit_gan(cfg: Any, side: int, steps: int = 60) -> tuple[Any, float, float]:
    """``steps`` adversarial steps of the resolved TrainConfig ``cfg`` (seed 0) on the 8
    :func:`fixed_patches` of ``side`` px, one batch. Checks: nothing is NaN (losses, both
    networks' weights, the prediction), the D/G loss ratio is within RATIO_BOUNDS at every
    step, the content loss ends below 0.7 of its start. Returns the trainer and the RMSE
    (reflectance, mean over bands) of the generator and of the additive baseline
    F1 + C2 - C1 on the patches."""
    from stfusion.dl.train import gan_trainer

    (fr, cr, ct, ft), mean, std = fixed_patches(side)
    m, s = mean[None, :, None, None], std[None, :, None, None]
    x = [torch.from_numpy(((a - m) / s).astype(np.float32)) for a in (fr, cr, ct, ft)]
    mask = torch.ones(8, 1, side, side, dtype=torch.bool)
    torch.manual_seed(0)
    trainer = gan_trainer(cfg, 6, mean, std, 1.0 / std)
    losses = [trainer.step(*x, mask) for _ in range(steps)]
    for i, st in enumerate(losses):
        assert all(np.isfinite(v) for v in st.values()), (i, st)
        assert RATIO_BOUNDS[0] <= st["ratio"] <= RATIO_BOUNDS[1], (i, st)
    assert all(torch.isfinite(p).all() for p in trainer.g.parameters())
    assert all(torch.isfinite(p).all() for p in trainer.d.parameters())
    assert losses[-1]["content"] < 0.7 * losses[0]["content"]
    trainer.g.eval()
    with torch.no_grad():
        pred = trainer.g(*x[:3]).numpy() * s + m
    assert np.isfinite(pred).all()
    rmse = float(np.sqrt(((pred - ft) ** 2).mean(axis=(0, 2, 3))).mean())
    additive = float(np.sqrt(((fr + ct - cr - ft) ** 2).mean(axis=(0, 2, 3))).mean())
    return trainer, rmse, additive
