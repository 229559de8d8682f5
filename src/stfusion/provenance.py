"""The provenance tags of a prediction file: one function for the CLI and the Python API.

``provenance_tags(method)`` describes a fitted and prepared method's job (method, parameters,
inputs, their scaling, the resampling of coarse images, the resolution ratio, alignment notes,
stfusion version, UTC time); the CLI adds only its command line (``STFUSION_COMMAND``). So
``stfusion predict`` and ``est.predict(..., out=...)`` of the same job write the same tags.
"""

from __future__ import annotations

import datetime as _dt
import functools
import hashlib
import os
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import stfusion
from stfusion.io import AlignedSource, FileSource, Source
from stfusion.io.sources import underlying_source, wrapped


@functools.cache
def code_digest() -> str:
    """A digest (16 hex digits) of the code that computes: stfusion's own Python files and
    shipped weights, and the Python files and version of every installed method plugin's
    package. The version alone stays the same while the code changes (an editable install,
    a build from a branch, a plugin being written), so outputs made by other code are told
    apart by this."""
    root = Path(stfusion.__file__).parent
    files = [*root.rglob("*.py"), *(p for p in (root / "weights").rglob("*") if p.is_file())]
    h = hashlib.sha256()
    for path in sorted(files):
        if "__pycache__" in path.parts:
            continue
        h.update(path.relative_to(root).as_posix().encode() + b"\0")
        h.update(path.read_bytes())
    for name, version, base in plugin_packages():
        h.update(f"plugin {name} {version}".encode() + b"\0")
        for path in sorted(base.rglob("*.py") if base.is_dir() else [base]):
            if "__pycache__" not in path.parts:
                h.update(path.relative_to(base.parent).as_posix().encode() + b"\0")
                h.update(path.read_bytes())
    return h.hexdigest()[:16]


def plugin_packages() -> list[tuple[str, str, Path]]:
    """``(package, version, folder or module file)`` of the installed method plugins (entry
    points ``stfusion.methods`` outside stfusion), located without importing them."""
    import importlib.util
    from importlib.metadata import entry_points

    found: dict[str, tuple[str, str, Path]] = {}
    for ep in entry_points(group="stfusion.methods"):
        top = ep.value.partition(":")[0].split(".")[0]
        if top == "stfusion" or top in found:
            continue
        try:
            spec = importlib.util.find_spec(top)
        except (ImportError, ValueError):
            spec = None
        if spec is None or not spec.origin or not os.path.exists(spec.origin):
            continue  # not importable: the registry says so when it is used
        origin = Path(spec.origin)
        version = ep.dist.version if ep.dist is not None else "?"
        found[top] = (top, version, origin.parent if origin.name == "__init__.py" else origin)
    return sorted(found.values())


def plugin_at_fault(exc: BaseException) -> str | None:
    """``"package (file, line N, in function)"`` when the innermost of stfusion's and the
    plugins' frames in ``exc``'s traceback is a method plugin's (library frames such as
    numpy's are skipped): a fault in the plugin, wherever stfusion called it from (a fit, a
    VIPSTF base, an ensemble member). None when stfusion's own code is innermost."""
    tops = {name for name, _, _ in plugin_packages()}
    blamed = None
    tb = exc.__traceback__
    while tb is not None:
        module = str(tb.tb_frame.f_globals.get("__name__", "")).split(".")[0]
        if module == "stfusion":
            blamed = None
        elif module in tops:
            code = tb.tb_frame.f_code
            where = f"{Path(code.co_filename).name}, line {tb.tb_lineno}, in {code.co_name}"
            blamed = f"{module} ({where})"
        tb = tb.tb_next
    return blamed


def _input(src: Source) -> str:
    """The file a source reads, named as given (its label; for in-memory arrays too)."""
    return underlying_source(src).label


def _masks(sources: Sequence[Source]) -> list[dict[str, Any]]:
    """The mask of each masked input: image, mask file, kind and flags (``MaskedSource``
    anywhere in its chain of wrappers)."""
    out = []
    for src in sources:
        # a qa.MaskedSource (provenance and qa do not import each other: duck-typed)
        node: Any = next(
            (n for n in wrapped(src) if hasattr(n, "kind") and hasattr(n, "mask")), None
        )
        if node is not None:
            mask = node.mask
            out.append(
                {
                    "image": _input(src),
                    "mask": mask if isinstance(mask, str) else _input(mask),
                    "kind": node.kind,
                    "flags": list(node.flags or ()),
                }
            )
    return out


def _scaling(src: Source) -> dict[str, Any]:
    """How a source's values became physical values (``value * scale + offset``)."""
    src = underlying_source(src)
    if isinstance(src, FileSource):
        return {"scale": src.scale, "offset": src.offset, "from": src.scale_source}
    return {"scale": 1.0, "offset": 0.0, "from": "in-memory array (physical units)"}


def _one_or_each(items: list[dict[str, Any]]) -> dict[str, Any] | list[dict[str, Any]]:
    """The scaling shared by every image of a role, or each image's (in input order: the
    pairs', then the target's) when they differ."""
    return items[0] if all(i == items[0] for i in items) else items


def _notes(notes: Sequence[str], target: Source) -> list[str]:
    """The scene's alignment notes, plus the coarse target's when it was given to ``prepare``
    (``open_scene`` made the notes without it)."""
    out = list(notes)
    if isinstance(target, AlignedSource) and not any(target.label in n for n in out):
        out.append(
            f"aligned {target.label} ({target.native.grid.describe()}) onto the fine grid "
            f"({target.grid.describe()}) with {target.resampling} resampling"
        )
    return out


def provenance_tags(method: Any, *, command: Sequence[str] | str | None = None) -> dict[str, Any]:
    """``STFUSION_*`` tags describing ``method``'s prediction (fitted and prepared).

    ``command``: the command line (argv list or string) when there is one; the CLI's only
    addition. Values that are not strings are written as JSON by :class:`stfusion.io.RasterWriter`.
    """
    scene = method.scene_
    target = method.target_
    coarse = [c for _, c in scene.pairs] + [target]
    aligned = sorted({c.resampling for c in coarse if isinstance(c, AlignedSource)})
    tags: dict[str, Any] = {
        "STFUSION_METHOD": method.name,
        "STFUSION_PARAMS": method.get_params(),
        "STFUSION_INPUTS": {
            "pairs": [[_input(f), _input(c)] for f, c in scene.pairs],
            "coarse_target": _input(target),
        },
        "STFUSION_SCALING": {
            "fine": _one_or_each([_scaling(f) for f, _ in scene.pairs]),
            "coarse": _one_or_each([_scaling(c) for _, c in scene.pairs] + [_scaling(target)]),
        },
        "STFUSION_RESAMPLING": ", ".join(aligned) or "none (coarse images on the fine grid)",
        "STFUSION_RATIO": "none" if scene.ratio is None else f"{scene.ratio:g}",
        "STFUSION_ALIGNMENT": _notes(scene.notes, target),
        "STFUSION_VERSION": stfusion.__version__,
        "STFUSION_CODE": code_digest(),
        "STFUSION_CREATED": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    masks = _masks([*(s for pair in scene.pairs for s in pair), target])
    if masks:
        tags["STFUSION_INPUTS"]["masks"] = masks
    top = type(method).__module__.split(".")[0]
    if top != "stfusion":  # a plugin's method: its package and version, not stfusion's
        package = next((f"{n} {v}" for n, v, _ in plugin_packages() if n == top), None)
        if package is not None:
            tags["STFUSION_METHOD_PACKAGE"] = package
    tags.update(method.fitted_tags())
    if command:
        tags["STFUSION_COMMAND"] = command if isinstance(command, str) else shlex.join(command)
    return tags
