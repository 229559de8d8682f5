"""``stfusion demo``: the cia-1pair case on the bundled sample."""

from __future__ import annotations

from pathlib import Path

import click

from stfusion.cli.options import PATH, command_line, method_option, overwrite_option
from stfusion.cli.progress import console


@click.command()
@click.argument("outdir", required=False, default="stfusion-demo", type=PATH)
@overwrite_option("Replace existing demo outputs.")
@method_option("Method to run.")
@click.pass_context
def demo(ctx: click.Context, outdir: str, overwrite: bool, method: str) -> None:
    """Run the cia-1pair case on the bundled sample and show how well it does."""
    from stfusion.demo import run_demo

    run_demo(
        Path(outdir),
        overwrite=overwrite,
        method=method,
        console=console(),
        command=command_line(ctx),
    )
