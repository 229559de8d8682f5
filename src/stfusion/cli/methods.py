"""``stfusion methods``: the registered fusion methods and their parameters."""

from __future__ import annotations

import click


@click.command()
def methods() -> None:
    """List the fusion methods and their parameters."""
    from stfusion.methods import loadable

    found, broken = loadable()
    for problem in broken:  # the other methods are still listed
        click.echo(f"Warning: {problem}", err=True)
    for name, cls in found.items():
        pairs = cls.tags.pairs_text()
        ps = " ".join(f"{p.name}={p.default}" for p in cls.params) or "-"
        click.echo(f"{name:<10} pairs {pairs:<4} {cls.title} ({cls.paper}); params: {ps}")
