"""Deep fusion models: everything in stfusion that needs torch.

torch is an optional extra (``pip install 'stfusion[dl]'``). Importing this package without it
raises :class:`stfusion.errors.MissingDependencyError` with the install command; the rest of
stfusion (classical methods, the CLI, the bench) never imports it at module level.

Layout (one concern per module, as in torchgeo):

- :mod:`stfusion.dl.networks`: DCSTFN, EDCSTFN and the autoencoder of the feature loss;
- :mod:`stfusion.dl.losses`: SSIM / MS-SSIM and EDCSTFN's compound loss;
- :mod:`stfusion.dl.data`: dates, ordered date pairs, the spatial validation block;
- :mod:`stfusion.dl.datasets`: training and validation patches streamed from the files;
- :mod:`stfusion.dl.checkpoint`: the checkpoint format (atomic save, checked load);
- :mod:`stfusion.dl.train`: the trainer (seeds, early stopping, resume, loss log);
- :mod:`stfusion.dl.infer`: running a trained network over arrays or scenes in tiles.
"""

from __future__ import annotations

from stfusion.errors import MissingDependencyError

INSTALL_HINT = (
    "install stfusion[dl] (pip install 'stfusion[dl]'; on a machine without a GPU first "
    "pip install torch --index-url https://download.pytorch.org/whl/cpu, since PyPI's Linux "
    "torch brings CUDA, several GB)"
)

try:
    import torch  # noqa: F401
except ImportError as exc:  # also when sys.modules["torch"] is None
    raise MissingDependencyError(
        f"the deep fusion methods need PyTorch, which is not installed: {INSTALL_HINT}."
    ) from exc


def missing_lightning() -> MissingDependencyError:
    """The error for torch without Lightning (conda's pytorch, or torch installed alone from
    its CPU index as :data:`INSTALL_HINT` says first): prediction works, training does not."""
    return MissingDependencyError(
        "training (stfusion train, distill) needs Lightning, which is not installed: "
        "pip install 'stfusion[dl]' (or pip install lightning)."
    )


def require_lightning() -> None:
    """:func:`missing_lightning` unless Lightning is installed: looked up, not imported (4-5 s,
    where a run is first checked)."""
    import importlib.util

    if importlib.util.find_spec("lightning") is None:
        raise missing_lightning()


__all__ = ["INSTALL_HINT", "missing_lightning", "require_lightning"]
