"""The tables, figures and HTML page of ``stfusion bench`` (:mod:`stfusion.bench`).

Moved out of :mod:`stfusion.bench`, which still exports ``summary_markdown`` and
``SUMMARY_COLUMNS``.
"""

from __future__ import annotations

import csv
import html
import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from stfusion.cases import Case, check_case_name
from stfusion.metrics import METRIC_NAMES
from stfusion.report import METRIC_COLUMNS

if TYPE_CHECKING:  # Run lives in bench, which imports this module
    from stfusion.bench import Run

__all__ = [
    "BASELINES",
    "SUMMARY_COLUMNS",
    "case_figures",
    "html_page",
    "summary_latex",
    "summary_markdown",
    "write_csvs",
]

BASELINES = ("nochange", "additive")

#: Summary columns: metric, format, which direction is better (None: no "best").
SUMMARY_COLUMNS: tuple[tuple[str, str, Callable[..., float] | None], ...] = (
    *METRIC_COLUMNS,
    ("seconds", "{:.1f}", None),
)


def write_csvs(runs: Sequence[Run], outdir: Path) -> None:
    """``metrics.csv`` (tidy rows) and ``runs.csv`` (one row per run) in ``outdir``."""
    with open(outdir / "metrics.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["case", "method", "band", "metric", "value"])
        for r in runs:
            if r.report is None:
                continue
            for metric in METRIC_NAMES:
                for band, value in zip(r.report.band_names, r.report.per_band.get(metric, [])):
                    w.writerow([r.case, r.method, band, metric, repr(float(value))])
                w.writerow([r.case, r.method, "mean", metric, repr(float(r.report.mean[metric]))])
    with open(outdir / "runs.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(
            [
                "case",
                "method",
                "status",
                "reason",
                "seconds",
                "peak_mem_mb",
                "coverage",
                "valid_fraction",
                "params",
            ]
        )
        for r in runs:
            cov = r.report.mean["coverage"] if r.report else float("nan")
            vf = r.report.mean["valid_fraction"] if r.report else float("nan")
            ps = {k: v for k, v in r.params.items() if k != "traceback"}
            w.writerow(
                [
                    r.case,
                    r.method,
                    r.status,
                    r.reason,
                    f"{r.seconds:.3f}",
                    f"{r.peak_mem_mb:.0f}",
                    f"{cov:.4f}",
                    f"{vf:.4f}",
                    json.dumps(ps, default=str),
                ]
            )


def _cell(run: Run, metric: str) -> float:
    if metric == "seconds":
        return run.seconds
    return run.report.mean[metric] if run.report else float("nan")


def _best(runs: Sequence[Run]) -> dict[str, float]:
    """The best value of each column that has a direction, over ``runs``."""
    best: dict[str, float] = {}
    for name, _, pick in SUMMARY_COLUMNS:
        vals = [_cell(r, name) for r in runs if _cell(r, name) == _cell(r, name)]
        if pick and vals:
            best[name] = pick(vals)
    return best


def _rows(runs: Sequence[Run], missing: str, bold: str) -> list[tuple[str, list[str]]]:
    """Per run, its label and the formatted summary cells: ``missing`` for NaN, the best
    value of each column put in ``bold`` (a format string with one ``{}``)."""
    best = _best(runs)
    out = []
    for r in runs:
        cells = []
        for name, fmt, _ in SUMMARY_COLUMNS:
            v = _cell(r, name)
            text = missing if v != v else fmt.format(v)
            cells.append(bold.format(text) if name in best and v == best[name] else text)
        out.append((f"{r.method} (baseline)" if r.method in BASELINES else r.method, cells))
    return out


def summary_markdown(runs: Sequence[Run], cases: Sequence[Case]) -> str:
    """Per case, the mean over bands of each metric; the best value per column in bold."""
    lines = []
    for case in cases:
        rs = [r for r in runs if r.case == case.name]
        ok = [r for r in rs if r.report is not None]
        lines.append(f"### {case.name}\n")
        dates = (
            f" Pairs {', '.join(case.pair_dates)} -> {case.target_date};"
            if case.pair_dates and case.target_date
            else ""
        )
        ratio = f" R = {case.ratio:g};" if case.ratio else ""
        lines.append(
            f"{case.description}.{dates}{ratio} data range {case.data_range}; mean over bands.\n"
        )
        header = ["method", *[c[0].replace("_deg", " (deg)") for c in SUMMARY_COLUMNS]]
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "---|" * len(header))
        for label, cells in _rows(ok, "-", "**{}**"):
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        not_run = [r for r in rs if r.report is None]
        if not_run:
            lines.append("")
        for r in not_run:
            lines.append(f"- {r.method}: {r.status}: {_short_reason(r.reason)}")
        lines.append("")
    return "\n".join(lines) + "\n"


def _tex(text: str) -> str:
    """``text`` with LaTeX's special characters escaped."""
    out = text.replace("\\", r"\textbackslash{}")
    for ch in "&%$#_{}":
        out = out.replace(ch, "\\" + ch)
    return out.replace("~", r"\textasciitilde{}").replace("^", r"\textasciicircum{}")


def summary_latex(runs: Sequence[Run], cases: Sequence[Case]) -> str:
    """``summary.tex``: per case a booktabs table (the columns of ``summary.md``, the best
    value per column in bold) in a ``table`` float with a caption and a label, ready to
    ``\\input`` into a paper (needs ``\\usepackage{booktabs}``)."""
    parts = [
        "% stfusion bench: mean over bands per case; best value per column in bold.",
        "% Needs \\usepackage{booktabs}.",
        "",
    ]
    names = [c[0] for c in SUMMARY_COLUMNS]
    heads = [_tex(n.replace("_deg", " (deg)").replace("_", " ")) for n in names]
    for case in cases:
        ok = [r for r in runs if r.case == case.name and r.report is not None]
        if not ok:
            continue
        rows = [
            " & ".join([_tex(label), *cells]) + r" \\"
            for label, cells in _rows(ok, "--", "\\textbf{{{}}}")
        ]
        dates = (
            f"; pairs {', '.join(case.pair_dates)}, target {case.target_date}"
            if case.pair_dates
            else ""
        )
        ratio = f"; $R = {case.ratio:g}$" if case.ratio else ""
        parts += [
            r"\begin{table}",
            r"\centering",
            f"\\caption{{{_tex(case.name)}: {_tex(case.description)}{_tex(dates)}{ratio}; "
            f"data range {_tex(str(case.data_range))}; mean over bands.}}",
            f"\\label{{tab:stfusion-{case.name}}}",  # a slug: letters, digits, . _ -
            r"\begin{tabular}{l" + "r" * len(names) + "}",
            r"\toprule",
            " & ".join(["method", *heads]) + r" \\",
            r"\midrule",
            *rows,
            r"\bottomrule",
            r"\end{tabular}",
            r"\end{table}",
            "",
        ]
    return "\n".join(parts)


def _short_reason(reason: str) -> str:
    """First sentence of a skip/fail reason, paths shortened to file names (runs.csv has all)."""
    first = re.split(r"(?<=[.;])\s", reason, maxsplit=1)[0].rstrip(".;")
    return re.sub(r"(?:/[^\s/:]+)+/([^\s/:]+)", r"\1", first)


# --------------------------------------------------------------------------------- figures


def case_figures(
    case: Case, runs: Sequence[Run], truth: np.ndarray, names: list[str], figdir: Path
) -> list[str]:
    """The quicklooks, error maps and scatter plots of one case; their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from stfusion.plot import composite, rgb_bands, stretch_limits

    name = check_case_name(case.name)  # the only part of a figure's path not fixed here
    figdir.mkdir(parents=True, exist_ok=True)
    ok = [r for r in runs if r.prediction is not None]
    if not ok:
        return []
    bands = rgb_bands(names)
    lo, hi = stretch_limits([truth], bands)
    n = len(ok) + 1
    files = []

    fig, axes = plt.subplots(2, n, figsize=(2.6 * n, 5.6), constrained_layout=True, squeeze=False)
    axes[0, 0].imshow(composite(truth, bands, lo, hi), interpolation="nearest")
    axes[0, 0].set_title("truth", fontsize=9)
    errs = [np.nanmean(np.abs(r.prediction - truth), axis=0) for r in ok]
    vmax = max(float(np.nanpercentile(e, 99)) for e in errs) or 1e-6
    axes[1, 0].set_axis_off()
    for i, (r, e) in enumerate(zip(ok, errs), start=1):
        assert r.prediction is not None  # ok holds only the runs with a prediction
        axes[0, i].imshow(composite(r.prediction, bands, lo, hi), interpolation="nearest")
        rm = r.report.mean["rmse"] if r.report else float("nan")
        axes[0, i].set_title(f"{r.method}\nRMSE {rm:.4f}", fontsize=9)
        im = axes[1, i].imshow(e, cmap="magma", vmin=0, vmax=vmax, interpolation="nearest")
        axes[1, i].set_title(f"|error| {r.method}", fontsize=9)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(im, ax=axes[1, :].tolist(), shrink=0.8, label="mean |error| over bands")
    combo = "/".join(names[b] for b in bands)
    fig.suptitle(
        f"{case.name}: composite {combo}, one 2-98% stretch (of the truth) for all", fontsize=10
    )
    path = figdir / f"{name}_quicklook.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    files.append(f"figures/{path.name}")

    nb = truth.shape[0]
    fig, axes = plt.subplots(
        len(ok), nb, figsize=(2.2 * nb, 2.2 * len(ok)), constrained_layout=True, squeeze=False
    )
    for i, r in enumerate(ok):
        assert r.prediction is not None
        for b in range(nb):
            t, p = truth[b].ravel(), r.prediction[b].ravel()
            m = np.isfinite(t) & np.isfinite(p)
            ax = axes[i, b]
            if m.any():
                lim = np.percentile(np.concatenate([t[m], p[m]]), [0.5, 99.5])
                ax.hist2d(t[m], p[m], bins=80, range=[lim, lim], cmap="viridis", norm="log")
                ax.plot(lim, lim, "w-", lw=0.6)
            ax.set_title(f"{r.method} {names[b]}", fontsize=7)
            ax.tick_params(labelsize=6)
            if b == 0:
                ax.set_ylabel("prediction", fontsize=7)
            if i == len(ok) - 1:
                ax.set_xlabel("truth", fontsize=7)
    fig.suptitle(f"{case.name}: truth vs prediction density (log counts)", fontsize=10)
    path = figdir / f"{name}_scatter.png"
    fig.savefig(path, dpi=80)
    plt.close(fig)
    files.append(f"figures/{path.name}")
    return files


def html_page(
    runs: Sequence[Run], cases: Sequence[Case], figs: dict[str, list[str]], record: dict[str, Any]
) -> str:
    """``index.html``: the tables, figures and run record on one page."""

    def esc(x: Any) -> str:
        return html.escape(str(x))

    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>stfusion bench</title>",
        "<style>body{font-family:sans-serif;margin:2em;max-width:1400px}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;"
        "padding:3px 8px;text-align:right}th{background:#eee}td:first-child{text-align:left}"
        ".best{font-weight:bold;background:#e6f4e6}img{max-width:100%;margin:0.5em 0}</style>",
        "</head><body><h1>stfusion bench</h1>",
        f"<p>stfusion {esc(record['stfusion_version'])}, {esc(record['created'])}; "
        f"{esc(record['machine']['cpu'])}, {esc(record['machine']['cores'])} cores; total "
        f"{record['total_seconds']:.0f} s. Metrics as pinned in docs/metrics.md (mean over "
        "bands; data range 1.0 unless a case sets its own).</p>",
    ]
    for case in cases:
        rs = [r for r in runs if r.case == case.name]
        ok = [r for r in rs if r.report is not None]
        parts.append(f"<h2>{esc(case.name)}</h2><p>{esc(case.description)}</p>")
        parts.append(
            "<table><tr><th>method</th>"
            + "".join(f"<th>{esc(c[0])}</th>" for c in SUMMARY_COLUMNS)
            + "</tr>"
        )
        best = _best(ok)
        for r in ok:
            cells = []
            for name, fmt, _ in SUMMARY_COLUMNS:
                v = _cell(r, name)
                cls = " class='best'" if name in best and v == best[name] else ""
                cells.append(f"<td{cls}>{'-' if v != v else fmt.format(v)}</td>")
            parts.append(f"<tr><td>{esc(r.method)}</td>{''.join(cells)}</tr>")
        parts.append("</table>")
        for r in rs:
            if r.report is None:
                parts.append(f"<p>{esc(r.method)}: {esc(r.status)}: {esc(r.reason)}</p>")
        for f in figs.get(case.name, []):
            parts.append(f"<img src='{esc(f)}' alt='{esc(f)}'>")
    parts.append("</body></html>")
    return "\n".join(parts)
