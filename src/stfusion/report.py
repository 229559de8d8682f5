"""Human-readable reports of metric results (terminal tables, Markdown)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from stfusion.metrics import BANDLESS_METRICS, MetricReport

#: Table columns of the mean metrics: name, format, which direction is better (None: no
#: "best"). Shared by the terminal table and the bench summary.
METRIC_COLUMNS: tuple[tuple[str, str, Callable[..., float] | None], ...] = (
    ("rmse", "{:.5f}", min),
    ("mae", "{:.5f}", min),
    ("bias", "{:+.5f}", None),
    ("cc", "{:.4f}", max),
    ("ssim", "{:.4f}", max),
    ("psnr", "{:.2f}", max),
    ("sam_deg", "{:.3f}", min),
    ("ergas", "{:.4f}", min),
    ("coverage", "{:.3f}", None),
)

#: Columns of the per-band table, with how to print them.
TABLE_METRICS: tuple[tuple[str, str], ...] = (
    ("rmse", "{:.5f}"),
    ("mae", "{:.5f}"),
    ("bias", "{:+.5f}"),
    ("cc", "{:.4f}"),
    ("ssim", "{:.4f}"),
    ("psnr", "{:.2f}"),
    ("uiqi", "{:.4f}"),
    ("coverage", "{:.3f}"),
)


def _fmt(fmt: str, value: float | None) -> str:
    if value is None or value != value:  # NaN
        return "-"
    return fmt.format(value)


def tidy_rows(report: MetricReport) -> list[tuple[str, str, str]]:
    """``(band, metric, value)`` for every metric, band by band then ``mean``; values at full
    precision (``repr``), as ``stfusion bench``'s metrics.csv holds them."""
    from stfusion.metrics import METRIC_NAMES

    rows = []
    for metric in METRIC_NAMES:
        for band, value in zip(report.band_names, report.per_band.get(metric, [])):
            rows.append((band, metric, repr(float(value))))
        rows.append(("mean", metric, repr(float(report.mean[metric]))))
    return rows


def report_csv(report: MetricReport, prediction: str = "", truth: str = "") -> str:
    """``stfusion evaluate --csv``: a header ``band,metric,value,prediction,truth,
    data_range,ratio,mask`` and :func:`tidy_rows`, each row naming the two files and the
    settings that change the scores (runs appended to one CSV, with and without a mask or
    with another data range, were rows alike); new columns come last, so the first ones
    stay where they were."""
    import csv
    import io

    mask = (report.inputs.get("mask") or {}).get("path", "")
    ratio = "" if report.ratio is None else f"{report.ratio:g}"
    data_range = report.data_range
    if not isinstance(data_range, str):
        data_range = f"{float(data_range):g}"
    text = io.StringIO()
    w = csv.writer(text, lineterminator="\n")
    w.writerow(["band", "metric", "value", "prediction", "truth", "data_range", "ratio", "mask"])
    w.writerows((*row, prediction, truth, data_range, ratio, mask) for row in tidy_rows(report))
    return text.getvalue()


def metrics_table(report: MetricReport, title: str = "") -> Any:
    """A rich Table: one row per band and a mean row, then the band-less metrics."""
    from rich.table import Table

    table = Table(title=title or None, title_justify="left")
    table.add_column("band")
    for name, _ in TABLE_METRICS:
        table.add_column(name, justify="right")
    for i, band in enumerate(report.band_names):
        table.add_row(band, *(_fmt(f, report.per_band[m][i]) for m, f in TABLE_METRICS))
    table.add_row("mean", *(_fmt(f, report.mean[m]) for m, f in TABLE_METRICS), style="bold")
    ergas = report.mean["ergas"]
    dr = report.data_range
    if dr == "truth" and report.band_data_range:  # the L each band used
        lo, hi = min(report.band_data_range), max(report.band_data_range)
        dr = f"truth (L = {lo:.4g})" if lo == hi else f"truth (L = {lo:.4g} to {hi:.4g})"
    sam = (
        "SAM - (one band: no spectrum)"
        if len(report.band_names) < 2
        else f"SAM {_fmt('{:.3f}', report.mean['sam_deg'])} deg "
        f"({_fmt('{:.5f}', report.mean['sam_rad'])} rad)"
    )
    table.caption = (
        f"{sam}; ERGAS "
        f"{_fmt('{:.4f}', ergas) if report.ratio else '- (give --ratio)'}"
        f"{f' (R = {report.ratio:g})' if report.ratio else ''}; "
        f"valid {report.mean['valid_fraction']:.1%}; data range {dr}"
    )
    table.caption_justify = "left"
    return table


def comparison_table(reports: Mapping[str, MetricReport], title: str = "") -> Any:
    """Methods side by side: mean over bands of each metric; best per column in bold."""
    from rich.table import Table

    cols = METRIC_COLUMNS
    table = Table(title=title or None, title_justify="left")
    table.add_column("method")
    for name, _, _ in cols:
        table.add_column(
            name if name not in BANDLESS_METRICS else name.replace("_", " "), justify="right"
        )
    best = {}
    for name, _, pick in cols:
        vals = [r.mean[name] for r in reports.values() if r.mean[name] == r.mean[name]]
        best[name] = pick(vals) if pick and vals else None
    for method, r in reports.items():
        cells = []
        for name, fmt, _ in cols:
            text = _fmt(fmt, r.mean[name])
            cells.append(f"[bold]{text}[/bold]" if best[name] == r.mean[name] else text)
        table.add_row(method, *cells)
    return table
