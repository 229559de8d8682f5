"""``stfusion methods``: the registered fusion methods and their parameters."""

from __future__ import annotations

import click


@click.command()
def methods() -> None:
    """List the fusion methods and their parameters."""
    import importlib.util

    from stfusion.methods import loadable

    found, broken = loadable()
    for problem in broken:  # the other methods are still listed
        click.echo(f"Warning: {problem}", err=True)
    try:
        no_torch = importlib.util.find_spec("torch") is None
    except (ImportError, ValueError):  # broken, or blocked (sys.modules["torch"] = None)
        no_torch = True
    for name, cls in found.items():
        pairs = cls.tags.pairs_text()
        ps = " ".join(f"{p.name}={p.default}" for p in cls.params) or "-"
        needs = " [needs stfusion[dl], not installed]" if no_torch and cls.tags.needs_torch else ""
        click.echo(f"{name:<10} pairs {pairs:<4} {cls.title} ({cls.paper}){needs}; params: {ps}")
    if no_torch and any(cls.tags.needs_torch for cls in found.values()):
        click.echo("The deep methods need PyTorch: pip install 'stfusion[dl]'.")
