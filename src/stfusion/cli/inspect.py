"""``stfusion inspect``: how each file would be read and aligned."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click

from stfusion.cli.options import PATH, band_options, scale_options


@click.command()
@click.argument("files", nargs=-1, required=True, type=PATH)
@scale_options
@band_options
def inspect(files: Sequence[str], resampling: str, **options: Any) -> None:
    """Show how each file would be read, and how predict would align it.

    The first file is taken as the fine image (its grid is the output grid); the others as
    coarse images. Exit status 1 when a PROBLEM line is shown (what predict would refuse).
    """
    from stfusion.inputs import role_options_of
    from stfusion.inspection import inspect_files

    roles = role_options_of(options)
    report = inspect_files(files, resampling=resampling, **roles)
    click.echo(report)
    if "\n  PROBLEM " in f"\n{report}":
        raise SystemExit(1)  # scripts can tell: predict would refuse these inputs
