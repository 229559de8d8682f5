"""Fusion methods and their registry.

Methods are registered as entry points in the ``stfusion.methods`` group (see
``pyproject.toml``), so third-party packages can add their own; the built-in ones are also
listed here so a source checkout works without installation.
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import entry_points

from stfusion.errors import InvalidParameterError
from stfusion.methods.base import FusionMethod, Param, fuse
from stfusion.methods.vipstf import make_estimator

BUILTIN: dict[str, str] = {
    "additive": "stfusion.methods.baselines:Additive",
    "dcstfn": "stfusion.methods.deep:DCSTFN",
    "edcstfn": "stfusion.methods.deep:EDCSTFN",
    "ensemble": "stfusion.methods.ensemble:Ensemble",
    "estarfm": "stfusion.methods.estarfm:ESTARFM",
    "fitfc": "stfusion.methods.fitfc:FitFC",
    "fsdaf": "stfusion.methods.fsdaf:FSDAF",
    "fsdaf2": "stfusion.methods.fsdaf2:FSDAF2",
    "ganstfm": "stfusion.methods.deep:GANSTFM",
    "nochange": "stfusion.methods.baselines:NoChange",
    "robot": "stfusion.methods.robot:ROBOT",
    "starfm": "stfusion.methods.starfm:STARFM",
    "stfdcnn": "stfusion.methods.deep_stfdcnn:STFDCNN",
    "student": "stfusion.methods.deep_student:Student",
    "vipstf": "stfusion.methods.vipstf:VIPSTF",
    "vitgan": "stfusion.methods.deep_vit:VITGAN",
}


def _load(spec: str) -> type[FusionMethod]:
    module, _, attr = spec.partition(":")
    return getattr(import_module(module), attr)


def available() -> dict[str, str]:
    """Method name -> ``module:Class`` for every registered method."""
    found = dict(BUILTIN)
    for ep in entry_points(group="stfusion.methods"):
        found.setdefault(ep.name, ep.value)
    return dict(sorted(found.items()))


def get_method(name: str) -> type[FusionMethod]:
    """The method class registered as ``name``."""
    methods = available()
    if name not in methods:
        raise InvalidParameterError(
            f"unknown method {name!r}; available: {', '.join(methods)} (see `stfusion methods`)."
        )
    return _load(methods[name])


__all__ = ["FusionMethod", "Param", "available", "fuse", "get_method", "make_estimator"]
