"""What a training run reads, as its checkpoint records it, and the checks made on it.

Per site (``training_site_info``): beside its name, dates, shape and bands, each pair's
files (resolved path, size and modification time of every file an image or mask names),
masks and value scaling, the site's scaling and its validation block. ``--resume`` compares
them with the pairs given (:func:`input_changes`), so a resumed run continues the training it
names and never another one on other files or values.

Before a run: an ``--out`` that is one of the inputs or a raster name is refused
(:func:`check_out`), a ``--patch`` that fits no scene is refused (:func:`check_patch`), and
pairs without dates are said (:func:`warn_undated`): the checkpoint then records no training
dates, which the checks of ``stfusion predict`` and ``stfusion bench`` need.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from stfusion.dl import datasets as ds
from stfusion.dl.catalog import read_catalog
from stfusion.dl.engine_settings import OptionError, lightning_dir
from stfusion.dl.train_log import log_paths
from stfusion.errors import InvalidParameterError, OutputExistsError, warn
from stfusion.io import FileSource, Source
from stfusion.io.files import same_file
from stfusion.io.sources import wrapped
from stfusion.io.stacks import spec_file_stats
from stfusion.io.writing import OTHER_FORMATS
from stfusion.scene_checks import PAIR_IS

__all__ = [
    "check_out",
    "check_pairs_differ",
    "check_patch",
    "checkpoint_path",
    "input_changes",
    "site_records",
    "warn_undated",
]

#: Names of rasters: a checkpoint given one of them would hide a torch file behind it.
RASTER_SUFFIXES = frozenset({".tif", ".tiff", ".gtif", ".cog", *OTHER_FORMATS})


# ----------------------------------------------------------------------------- identities


def _unwrap(src: Source) -> tuple[Source, Any]:
    """The file source under a mask and an alignment, and the mask (or None)."""
    chain = list(wrapped(src))
    # a qa.MaskedSource (dl does not import qa's class for this: duck-typed, as provenance)
    mask = next((n.mask for n in chain if hasattr(n, "kind") and hasattr(n, "mask")), None)
    return chain[-1], mask


def _image(src: Any) -> dict[str, Any] | None:
    """The spec and files of an image (a Source or a path), None without a file."""
    spec = getattr(src, "path", None) if isinstance(src, Source) else src
    if not isinstance(spec, str | Path) or not str(spec):
        return None
    return {"spec": str(spec), "files": spec_file_stats(str(spec))}


def _scaling(src: Source) -> dict[str, Any] | None:
    """Scale, offset and declared nodata of a file's values (None for arrays)."""
    if not isinstance(src, FileSource):
        return None
    nodata = getattr(getattr(src, "scaling", None), "nodata", None)
    out: dict[str, Any] = {"scale": float(src.scale), "offset": float(src.offset)}
    if nodata is not None:
        out["nodata"] = str(float(nodata))  # a string: NaN equals itself
    return out


def _pair(fine: Source, coarse: Source) -> dict[str, Any]:
    f, mask = _unwrap(fine)
    c, _ = _unwrap(coarse)
    return {
        "fine": _image(f),
        "coarse": _image(c),
        "mask": None if mask is None else _image(mask),
        "scaling": {"fine": _scaling(f), "coarse": _scaling(c)},
    }


def site_records(sites: Sequence[ds.Site]) -> list[dict[str, Any]]:
    """``training_site_info``: :func:`stfusion.dl.datasets.describe_sites` and, per site, its
    pairs (files, mask, scaling), its scaling (the first pair's: a catalog's rows may differ,
    each pair records its own) and its validation block."""
    infos = ds.describe_sites(sites)
    for info, site in zip(infos, sites):
        pairs = [_pair(f, c) for f, c in site.scene.pairs]
        info["scaling"] = pairs[0]["scaling"] if pairs else None
        info["validation_block"] = asdict(site.block) if site.block else None
        info["pairs"] = pairs
    return infos


# ----------------------------------------------------------------------------- resume


def _scaling_text(s: dict[str, Any] | None) -> str:
    if not s:
        return "none"
    parts = [f"{role} scale {v['scale']:g} offset {v['offset']:g}" for role, v in s.items() if v]
    return ", ".join(parts) or "none"


def _image_change(role: str, was: dict[str, Any] | None, now: dict[str, Any] | None) -> str:
    if was and now and [f[0] for f in was["files"]] == [f[0] for f in now["files"]]:
        return f"{role} {now['spec']} changed since (size or modification time)"
    name = now["spec"] if now else "none"
    return f"{role} {name} (the run's: {was['spec'] if was else 'none'})"


def _pair_changes(was: dict[str, Any], now: dict[str, Any]) -> list[str]:
    out = []
    for role in ("fine", "coarse", "mask"):
        a, b = was.get(role), now.get(role)
        if (a or {}).get("files") != (b or {}).get("files"):
            out.append(_image_change(role, a, b))
    if was.get("scaling") != now.get("scaling"):
        out.append(
            f"values {_scaling_text(now.get('scaling'))} (the run's: "
            f"{_scaling_text(was.get('scaling'))})"
        )
    return out


def _site_changes(was: dict[str, Any], now: dict[str, Any], several: bool) -> list[str]:
    tag = f"site {now['site']}: " if several else ""
    out = []
    if list(was.get("dates") or []) != now["dates"]:
        out.append(
            f"{tag}dates {', '.join(now['dates']) or 'none'} (the run's: "
            f"{', '.join(was.get('dates') or []) or 'none'})"
        )
    if [was.get("bands"), was.get("band_names")] != [now["bands"], now["band_names"]]:
        out.append(
            f"{tag}{now['bands']} bands ({', '.join(now['band_names'])}) (the run's: "
            f"{was.get('bands')}: {', '.join(was.get('band_names') or [])})"
        )
    pairs = was.get("pairs")
    if pairs is None:
        return out
    if len(pairs) != len(now["pairs"]):
        return [*out, f"{tag}{len(now['pairs'])} pairs (the run's: {len(pairs)})"]
    # one line per change, naming the pairs it concerns (a new scale changes every pair)
    found: dict[str, list[str]] = {}
    for i, (a, b) in enumerate(zip(pairs, now["pairs"])):
        label = now["dates"][i] if now["dates"] else f"pair {i + 1}"
        for change in _pair_changes(a, b):
            found.setdefault(change, []).append(label)
    return out + [f"{tag}{', '.join(labels)} {change}" for change, labels in found.items()]


def input_changes(previous: Any, sites: Sequence[ds.Site], reading: dict[str, Any]) -> list[str]:
    """What the ``sites`` of a resumed run, read as ``reading`` (catalog, resampling), change
    against the run in checkpoint ``previous``: an empty list when it is the same training."""
    was = list(previous.data.get("training_site_info") or [])
    now = site_records(sites)
    if not was:  # a checkpoint older than site records: its dates alone
        dates = [d for s in now for d in s["dates"]]
        old = list(previous.training_dates)
        same = not dates or not old or dates == old
        return [] if same else [f"dates {', '.join(dates)} (the run's: {', '.join(old)})"]
    out = []
    names = [s["site"] for s in now]
    if [s.get("site") for s in was] != names:
        out.append(
            f"sites {', '.join(names)} (the run's: {', '.join(str(s.get('site')) for s in was)})"
        )
        return out
    for a, b in zip(was, now):
        out += _site_changes(a, b, len(now) > 1)
    if all("pairs" not in s for s in was):  # an older checkpoint: its input names and scaling
        out += _older_changes(previous, sites)
    stored = previous.data.get("training_inputs") or {}
    for key, value in reading.items():
        if key in stored and stored[key] != value:
            out.append(f"--{key} {value or 'none'} (the run's: {stored[key] or 'none'})")
    return out


def _older_changes(previous: Any, sites: Sequence[ds.Site]) -> list[str]:
    """What a checkpoint without pair records shows: its inputs' names and first scaling."""
    out = []
    labels = [[f.label, c.label] for s in sites for f, c in s.scene.pairs]
    if previous.meta.get("inputs") not in (None, labels):
        out.append(f"files {labels} (the run's: {previous.meta.get('inputs')})")
    f, _ = _unwrap(sites[0].scene.pairs[0][0])
    c, _ = _unwrap(sites[0].scene.pairs[0][1])
    now = {
        role: v and {"scale": v["scale"], "offset": v["offset"]}
        for role, v in (("fine", _scaling(f)), ("coarse", _scaling(c)))
    }
    old = previous.data.get("scaling")
    if old and now != old:
        out.append(f"values {_scaling_text(now)} (the run's: {_scaling_text(old)})")
    return out


# ----------------------------------------------------------------------------- checks


def _input_paths(pairs: Any, catalog: Any) -> list[str]:
    """The files a run reads: those of ``pairs`` (paths only), the catalog and its rows."""
    specs: list[str] = []
    if isinstance(pairs, list | tuple):
        for pair in pairs:
            specs += [str(x) for x in pair if isinstance(x, str | Path)]
    if catalog is not None:
        specs.append(str(catalog))
        for rows in read_catalog(catalog).values():
            for r in rows:
                specs += [str(x) for x in (r.fine, r.coarse, r.mask) if isinstance(x, str | Path)]
    return specs


def checkpoint_path(out: str | os.PathLike[str]) -> Path:
    """``out`` as a Path, refused when it ends with a separator: ``Path`` drops it, and the
    run would write a file of the folder's name (and ``<name>.lightning/`` beside it)."""
    text = os.fspath(out)
    if text.endswith(("/", os.sep)):
        raise OptionError(
            f"--out {text}: ends with a slash, so it names a folder; --out names the checkpoint "
            f"file to write, e.g. --out {text}model.ckpt."
        )
    return Path(out)


def check_out(out: Path, pairs: Any, catalog: Any) -> None:
    """Refuse an ``--out`` named like a raster, or that is (or whose log or curve is) one of
    the files the run reads: ``--overwrite`` would replace an input with a checkpoint."""
    if out.suffix.lower() in RASTER_SUFFIXES:
        raise OptionError(
            f"--out {out}: a {out.suffix} name is a raster's; a checkpoint is a torch file, "
            f"named .ckpt (e.g. --out {out.with_suffix('.ckpt')})."
        )
    mine = {p.resolve(): p for p in (out, *log_paths(out), lightning_dir(out))}
    for spec in _input_paths(pairs, catalog):
        for path, *_ in spec_file_stats(spec):
            # the same path, or the same file by another (a bind mount, a hard link)
            hit = mine.get(Path(path)) or next(
                (p for p in mine.values() if same_file(p, path)), None
            )
            if hit is not None:
                raise OutputExistsError(
                    f"--out {out}: {hit} would replace the input {spec}; choose "
                    "another --out (inputs are never modified)."
                )


def check_pairs_differ(pairs: Any, catalog: Any) -> None:
    """Refuse a pair whose fine and coarse images are one file (``--pair L.tif L.tif``, a
    catalog row with the fine file twice): the network learnt the identity, silently."""
    listed: list[tuple[Any, Any, str]] = []
    if isinstance(pairs, list | tuple):
        listed += [(p[0], p[1], f"--pair {k}") for k, p in enumerate(pairs, 1) if len(p) == 2]
    if catalog is not None:
        for site, rows in read_catalog(catalog).items():
            listed += [(r.fine, r.coarse, f"{catalog}, site {site}") for r in rows]
    for fine, coarse, where in listed:
        paths = isinstance(fine, str | Path) and isinstance(coarse, str | Path)
        if paths and same_file(fine, coarse):
            raise InvalidParameterError(
                f"{where}: {fine} is both the fine and the coarse image of a pair. {PAIR_IS}."
            )


def check_patch(sites: Sequence[ds.Site], patch: int) -> None:
    """Refuse a ``patch`` larger than every site's scene (most of each patch would be
    padding, at the cost of whole-scene reads); a site smaller than it is said (its patches
    are padded by reflection, the padding masked out of the loss)."""
    small = [s for s in sites if min(s.shape) < patch]
    sizes = ", ".join(f"{s.name} {s.shape[0]} x {s.shape[1]} px" for s in small)
    if small and len(small) == len(sites) and patch > 16:
        fits = max(16, max(min(s.shape) for s in sites))
        raise OptionError(
            f"--patch {patch}: larger than the scene{'s' if len(sites) > 1 else ''} ({sizes}); "
            f"give --patch {fits} or less."
        )
    if small:
        warn(
            f"--patch {patch}: larger than site(s) {sizes}; their patches are padded by "
            "reflection (the padding is masked out of the loss)."
        )


def warn_undated(sites: Sequence[ds.Site]) -> None:
    """Say which sites' dates could not be read: the checkpoint then records no training
    dates, so the checks that keep a model off its training dates cannot work."""
    undated = [s for s in sites if s.dates is None]
    if not undated:
        return
    names = [
        Path((_image(_unwrap(f)[0]) or {"spec": f.label})["spec"]).name
        for s in undated
        for f, _ in s.scene.pairs
    ]
    shown = ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")
    where = ", ".join(s.name for s in undated)
    where = "" if where == "main" else f" of site(s) {where}"
    warn(
        f"the dates of the pairs{where} could not be read from the file names ({shown}): the "
        "checkpoint records no training dates, so `stfusion predict` cannot warn when it "
        "predicts a date the model was trained on, nor `stfusion bench` keep the model off "
        "those dates. Give the dates: --dates D1,D2,... (YYYY-MM-DD, in --pair order) or the "
        "catalog's date column."
    )
