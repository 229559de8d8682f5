"""Fusion methods and their registry.

Methods are registered as entry points in the ``stfusion.methods`` group (see
``pyproject.toml``), so third-party packages can add their own; the built-in ones are also
listed here so a source checkout works without installation.
"""

from __future__ import annotations

import re
from importlib import import_module
from importlib.metadata import entry_points

from stfusion.errors import InvalidParameterError, warn
from stfusion.methods.base import FusionMethod, Param
from stfusion.methods.one_call import fuse
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


def _load(name: str, spec: str) -> type[FusionMethod]:
    """The class ``spec`` names; a plugin that fails to import (or is not a method) is a
    clear error naming it, not a traceback from inside its package."""
    module, _, attr = spec.partition(":")
    package = f" {_DISTRIBUTIONS[spec]!r}" if spec in _DISTRIBUTIONS else ""
    try:
        cls = getattr(import_module(module), attr)
    except (Exception, SystemExit) as exc:  # a third-party import error, whatever it is
        if module.startswith("stfusion."):  # a built-in: the cause is not a plugin's
            raise
        raise InvalidParameterError(
            f"method {name!r} ({spec}) could not be loaded: {type(exc).__name__}: {exc}. It "
            f"comes from the installed plugin package{package}: reinstall or uninstall it."
        ) from None
    if not (isinstance(cls, type) and issubclass(cls, FusionMethod)):
        raise InvalidParameterError(
            f"method {name!r} ({spec}) is not a stfusion method (a FusionMethod subclass); "
            "check the plugin package's stfusion.methods entry point."
        )
    if getattr(cls, "name", None) != name:
        # outputs, errors and the bench name a method by its class's name: another name
        # (a built-in's, or none) mislabelled what made a prediction
        raise InvalidParameterError(
            f"method {name!r} ({spec}) calls itself {getattr(cls, 'name', None)!r}: a "
            "method's class attribute name must be the name of its stfusion.methods entry "
            "point. Fix the plugin package."
        )
    return cls


_SHADOWED: set[str] = set()
#: ``module:Class`` -> the distribution (pip package) whose entry point registers it.
_DISTRIBUTIONS: dict[str, str] = {}


def available() -> dict[str, str]:
    """Method name -> ``module:Class`` for every registered method. A plugin registered
    under a built-in method's name is ignored, with a warning."""
    found = dict(BUILTIN)
    for ep in entry_points(group="stfusion.methods"):
        if not re.fullmatch(r"[A-Za-z0-9_-]+", ep.name):
            if ep.value not in _SHADOWED:
                _SHADOWED.add(ep.value)
                warn(
                    f"plugin method {ep.name!r} ({ep.value}) ignored: a method name holds "
                    "letters, digits, '_' and '-' only (a '.' would split --param "
                    "METHOD.NAME=VALUE, a ',' a list of methods). Register it under another "
                    "name."
                )
            continue
        dist = getattr(getattr(ep, "dist", None), "name", None)
        if dist:
            _DISTRIBUTIONS[ep.value] = str(dist)
        if ep.name in BUILTIN and ep.value != BUILTIN[ep.name] and ep.value not in _SHADOWED:
            _SHADOWED.add(ep.value)  # said once per process, however often this runs
            warn(
                f"plugin method {ep.name!r} ({ep.value}) ignored: a built-in method has that "
                "name. Register the plugin under another name."
            )
        elif ep.name in found and found[ep.name] != ep.value and ep.name not in BUILTIN:
            if ep.value not in _SHADOWED:  # two plugins, one name: the first one wins, said
                _SHADOWED.add(ep.value)
                warn(
                    f"plugin method {ep.name!r} ({ep.value}{_from(ep.value)}) ignored: "
                    f"{found[ep.name]}{_from(found[ep.name])} registers that name first. "
                    "Uninstall one of the two packages, or register one under another name."
                )
            continue
        found.setdefault(ep.name, ep.value)
    return dict(sorted(found.items()))


def _from(spec: str) -> str:
    return f", package {_DISTRIBUTIONS[spec]}" if spec in _DISTRIBUTIONS else ""


def get_method(name: str) -> type[FusionMethod]:
    """The method class registered as ``name``."""
    methods = available()
    if name not in methods:
        import difflib

        close = difflib.get_close_matches(str(name), methods, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise InvalidParameterError(
            f"unknown method {name!r}{hint}; available: {', '.join(methods)} (see `stfusion "
            "methods`)."
        )
    return _load(name, methods[name])


def loadable() -> tuple[dict[str, type[FusionMethod]], list[str]]:
    """Every registered method that loads, by name, and a message for each that does not
    (a broken plugin must not take the other methods down with it)."""
    ok: dict[str, type[FusionMethod]] = {}
    broken: list[str] = []
    for name in available():
        try:
            ok[name] = get_method(name)
        except InvalidParameterError as exc:
            broken.append(str(exc))
    return ok, broken


def members_note(est: FusionMethod, pairs: int) -> str:
    """For an ensemble (``STFUSION_ENSEMBLE`` in its fitted tags): the members that ran on
    ``pairs`` pairs, the reliability measure and the members asked for that did not run;
    "" for any other method. A one-pair date runs other members than a two-pair date, and
    STFUSION_PARAMS lists the members asked for, so a series' summary says it per date and
    the bench per run."""
    info = est.fitted_tags().get("STFUSION_ENSEMBLE")
    if not isinstance(info, dict):
        return ""
    ran = [str(m) for m in info.get("members_run", [])]
    asked = [m.strip() for m in str(est.get_params().get("members", "")).split(",")]
    left = [m for m in asked if m and m not in ran]
    note = f"{est.name} members run: {', '.join(ran)} ({info.get('reliability')} reliability"
    if left:
        note += f"; {', '.join(left)} cannot run on {pairs} pair{'s' if pairs != 1 else ''}"
    return note + ")"


__all__ = [
    "FusionMethod",
    "Param",
    "available",
    "fuse",
    "get_method",
    "loadable",
    "make_estimator",
    "members_note",
]
