"""``stfusion methods``: the registered fusion methods and their parameters."""

from __future__ import annotations

import click


@click.command()
def methods() -> None:
    """List the fusion methods and their parameters."""
    from stfusion.methods import available, get_method

    for name in available():
        cls = get_method(name)
        pairs = (f"{cls.min_pairs}" if cls.min_pairs == cls.max_pairs
                 else f"{cls.min_pairs}+" if cls.max_pairs is None
                 else f"{cls.min_pairs}-{cls.max_pairs}")  # fmt: skip
        ps = " ".join(f"{p.name}={p.default}" for p in cls.params) or "-"
        click.echo(f"{name:<10} pairs {pairs:<4} {cls.title} ({cls.paper}); params: {ps}")
