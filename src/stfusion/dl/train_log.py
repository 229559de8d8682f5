"""The loss log (CSV) and curve (PNG) written beside a training checkpoint.

Moved out of :mod:`stfusion.dl.train`, which still exports both names.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

from stfusion.errors import warn
from stfusion.io import atomic_path

__all__ = ["log_paths", "write_log"]


def log_paths(out: str | os.PathLike[str]) -> tuple[Path, Path]:
    """The loss log (CSV) and curve (PNG) written beside a checkpoint."""
    p = Path(out)
    stem = p.name[: -len(p.suffix)] if p.suffix else p.name
    return p.with_name(f"{stem}.log.csv"), p.with_name(f"{stem}.loss.png")


def write_log(
    history: list[dict[str, float]], out: str | os.PathLike[str], plot: bool = True
) -> tuple[Path, Path]:
    """Write the loss log CSV (and, with ``plot``, the PNG curve) beside the checkpoint."""
    csv_path, png_path = log_paths(out)
    keys = list(history[0]) if history else ["epoch"]
    with atomic_path(csv_path, overwrite=True) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=keys)
        writer.writeheader()
        for row in history:
            writer.writerow({k: f"{v:.6g}" if isinstance(v, float) else v for k, v in row.items()})
    if history and plot:
        from matplotlib.figure import Figure  # no pyplot: leaves the caller's backend alone
        from matplotlib.ticker import MaxNLocator

        ep = [r["epoch"] for r in history]
        gan = "d_loss" in history[-1]
        fig = Figure(figsize=(6, 7.2 if gan else 4.4), dpi=100)
        ax = fig.add_subplot(2, 1, 1) if gan else fig.add_subplot()
        # markers: a run of one epoch drew single points without them, so empty axes
        mk: dict[str, Any] = {"marker": "o", "ms": 3} if len(ep) < 30 else {}
        ax.plot(ep, [r["train_loss"] for r in history], label="train loss", **mk)
        ax.plot(ep, [r["val_loss"] for r in history], label="validation loss (held-out data)", **mk)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # no epoch 1.5
        ax.set_ylabel("loss")
        ax.set_yscale("log")
        ax2 = ax.twinx()
        ax2.plot(
            ep,
            [r["val_rmse"] for r in history],
            color="tab:green",
            ls="--",
            label="validation RMSE",
            **mk,
        )
        if "val_rmse_additive" in history[-1]:
            ax2.axhline(
                history[-1]["val_rmse_additive"],
                color="grey",
                ls=":",
                label="validation RMSE of the additive baseline",
            )
        ax2.set_ylabel("validation RMSE (data units)")
        lines = ax.get_lines() + ax2.get_lines()
        # below the axes: inside, it covered the baseline's line (the one to beat)
        ax.legend(
            lines,
            [str(line.get_label()) for line in lines],
            fontsize=8,
            loc="upper center",
            bbox_to_anchor=(0.5, -0.2),
            ncol=2,
            frameon=False,
        )
        if gan:
            ax.set_title("generator (reconstruction + adversarial)", fontsize=9)
            ax3 = fig.add_subplot(2, 1, 2)
            ax3.plot(ep, [r["d_loss"] for r in history], label="discriminator loss", **mk)
            ax3.plot(ep, [r["g_adv"] for r in history], label="generator adversarial loss", **mk)
            ax3.plot(ep, [r["d_real"] for r in history], ls="--", label="mean D(real)", **mk)
            ax3.plot(ep, [r["d_fake"] for r in history], ls="--", label="mean D(generated)", **mk)
            ax3.set_xlabel("epoch")
            ax3.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax3.set_ylabel("adversarial terms (unweighted)")
            ax3.legend(fontsize=8)
        if len(ep) <= 10:  # a tick per epoch: one epoch had ticks 0.95 ... 1.05
            for a in fig.axes:
                a.set_xticks(ep)
                a.set_xlim(ep[0] - 0.5, ep[-1] + 0.5)
        fig.tight_layout()
        try:
            with atomic_path(png_path, overwrite=True) as tmp_png:
                fig.savefig(tmp_png, format="png", bbox_inches="tight")
        except OSError as exc:  # the run's results are complete: said, not a failed run
            warn(
                f"{png_path}: the loss curve could not be written ({exc.strerror or exc}); "
                f"the checkpoint and {csv_path.name} are complete. To draw it, make room and "
                "run the same command again with --resume."
            )
    return csv_path, png_path
