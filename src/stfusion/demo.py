"""``stfusion demo``: the cia-1pair case on the bundled sample, end to end."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path
from typing import Any

from stfusion.errors import InvalidParameterError, OutputExistsError

CASE = "cia-1pair"
PAIR_DATE = "2001-10-17"
TARGET_DATE = "2001-11-02"


def sample_dir() -> Path:
    """Folder of the bundled CIA sample (see its sample.json)."""
    return Path(str(files("stfusion") / "data"))


def sample_info() -> dict[str, Any]:
    return json.loads((sample_dir() / "sample.json").read_text())


def _atomic_text(path: Path, text: str, overwrite: bool = True) -> None:
    """Write ``text`` to ``path`` atomically, with the mode the umask gives (io.atomic_path)."""
    from stfusion.io import atomic_path

    with atomic_path(path, overwrite=overwrite) as tmp:
        tmp.write_text(text, encoding="utf-8")


@contextlib.contextmanager
def _removed_if_empty(
    folder: Path | None, files: tuple[Path, ...] = (), before: list[Any] | None = None
) -> Iterator[None]:
    """If the run fails: take back those of ``files`` this run wrote (changed since
    ``before``, their stamps when the run began; the earlier ones put back:
    :func:`stfusion.io.removed_if_written`), then remove ``folder`` (made by this run) if
    that leaves it empty."""
    from stfusion.io import removed_if_written

    try:
        with removed_if_written(files, before):
            yield
    except BaseException:
        if folder is not None and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
        raise


def _check_one_pair(est: Any) -> None:
    """A method that cannot run the demo's one pair is refused, pointing to the bundled
    two-pair sample (the bench runs it)."""
    tags = est.tags
    if tags.min_pairs > 1:
        more = "" if tags.max_pairs == tags.min_pairs else " or more"
        raise InvalidParameterError(
            f"{est.name} needs {tags.min_pairs}{more} pairs; the demo case {CASE} has one. "
            f"The bundled two-pair sample runs it: stfusion bench --cases sample-cia-2pair "
            f"--methods {est.name} --out DIR."
        )


def run_demo(
    outdir: Path,
    *,
    overwrite: bool = False,
    method: str = "starfm",
    console: Any = None,
    command: Any = None,
) -> dict[str, Any]:
    """Predict cia-1pair, score it beside the baselines, write GeoTIFF, PNG and JSON.

    ``command``: the command line, recorded in the prediction's ``STFUSION_COMMAND`` tag.
    """
    from rich.console import Console

    from stfusion.api import run_prediction
    from stfusion.io import FileSource, atomic_path, file_stamp
    from stfusion.methods import make_estimator
    from stfusion.methods.baselines import Additive, NoChange
    from stfusion.metrics import evaluate
    from stfusion.plot import quicklook_figure
    from stfusion.report import comparison_table, metrics_table

    con = console or Console()
    info = sample_info()
    d = sample_dir()
    f1 = str(d / info["fine"][PAIR_DATE])
    c1 = str(d / info["coarse"][PAIR_DATE])
    c2 = str(d / info["coarse"][TARGET_DATE])
    truth_path = str(d / info["fine"][TARGET_DATE])
    ratio = float(info["ratio"])

    _check_one_pair(make_estimator(method, [], pairs=1))  # before any folder is made
    made = not outdir.exists()
    if outdir.exists() and not outdir.is_dir():  # was "[Errno 17] File exists" (a trial)
        raise OutputExistsError(
            f"{outdir}: is a file, and the demo writes a folder of three files; give a "
            "folder's name (a new one, or one of your own: only its three files are added)."
        )
    outdir.mkdir(parents=True, exist_ok=True)
    pred_path = outdir / f"{method}_{TARGET_DATE}.tif"
    fig_path = outdir / "demo.png"
    json_path = outdir / "metrics.json"
    if not overwrite:
        for p in (pred_path, fig_path, json_path):
            if p.exists():
                raise OutputExistsError(
                    f"{p}: already exists. Pass --overwrite (overwrite=True in Python) to "
                    "replace it."
                )

    con.print(
        f"[bold]stfusion demo[/bold]: case {CASE} (bundled CIA sample, 250 x 250 px at "
        f"50 m, 6 bands, R = {ratio:g})"
    )
    con.print(f"  pair {PAIR_DATE}: {Path(f1).name} + {Path(c1).name}")
    con.print(f"  predict {TARGET_DATE} from {Path(c2).name}; truth {Path(truth_path).name}")
    t0 = time.monotonic()
    files = (pred_path, fig_path, json_path)
    began = [file_stamp(p) for p in files]
    # One block, the removal outermost (a signal may arrive as the spinner stops): a run
    # stopped before its figure and scores takes its prediction back too (a rerun was refused
    # for the half-made folder), and with --overwrite the earlier files are put back.
    with _removed_if_empty(outdir if made else None, files, began):
        with con.status(f"running {method} (the first run compiles its kernel, ~10 s)..."):
            run_prediction(
                method=method,
                pairs=[(f1, c1)],
                target=c2,
                out=str(pred_path),
                params=[f"ratio={ratio:g}"],
                overwrite=overwrite,
                command=command,
            )
        seconds = time.monotonic() - t0

        truth_src = FileSource(truth_path)
        truth = truth_src.read()
        names = list(truth_src.band_names)
        pred = FileSource(str(pred_path)).read()
        preds = {method: pred}
        for cls in (NoChange, Additive):
            est = cls().fit([(f1, c1)])
            preds[cls.name] = est.predict(c2).values
        reports = {k: evaluate(v, truth, ratio=ratio, band_names=names) for k, v in preds.items()}

        con.print(
            comparison_table(
                reports,
                title=f"{CASE}: mean over bands; nochange and additive are the baselines "
                "(best in bold)",
            )
        )
        con.print(metrics_table(reports[method], title=f"{method} per band"))

        fine1 = FileSource(f1).read()
        coarse2 = FileSource(c2).read()
        with atomic_path(fig_path, overwrite=overwrite) as tmp_fig:
            quicklook_figure(
                [
                    (f"Landsat {PAIR_DATE} (fine, t1)", fine1),
                    (f"MODIS {TARGET_DATE} (coarse, t2)", coarse2),
                    (f"{method} prediction {TARGET_DATE}", pred),
                    (f"Landsat {TARGET_DATE} (truth)", truth),
                ],
                truth,
                pred,
                names,
                tmp_fig,
                title=f"{CASE}: {method}",
            )
        result = {
            "case": CASE,
            "method": method,
            "seconds": round(seconds, 2),
            "metrics": {k: r.to_dict() for k, r in reports.items()},
        }
        _atomic_text(json_path, json.dumps(result, indent=2) + "\n", overwrite=overwrite)
    con.print(f"wrote {pred_path}, {fig_path}, {json_path} ({seconds:.1f} s for {method})")
    return result
