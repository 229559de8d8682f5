"""``stfusion methods``: the registered fusion methods and their parameters."""

from __future__ import annotations

from typing import Any

import click


@click.command()
@click.argument("name", required=False)
def methods(name: str | None) -> None:
    """List the fusion methods and their parameters; with NAME, one method's parameters in
    full (default, unit, accepted values, meaning)."""
    import importlib.util

    from stfusion.methods import loadable

    found, broken = loadable()
    for problem in broken:  # the other methods are still listed
        click.echo(f"Warning: {problem}", err=True)
    if name is not None:
        failed = next((b for b in broken if b.startswith(f"method {name.strip()!r} ")), None)
        if failed is not None:  # registered but broken: its own error, not "no such method"
            raise click.ClickException(failed)
        _one(name, found)
        return
    try:
        no_torch = importlib.util.find_spec("torch") is None
    except (ImportError, ValueError):  # broken, or blocked (sys.modules["torch"] = None)
        no_torch = True
    for key, cls in found.items():
        pairs = cls.tags.pairs_text()
        ps = " ".join(f"{p.name}={p.default}" for p in cls.params) or "-"
        needs = " [needs stfusion[dl], not installed]" if no_torch and cls.tags.needs_torch else ""
        click.echo(f"{key:<10} pairs {pairs:<4} {cls.title} ({cls.paper}){needs}; params: {ps}")
    if no_torch and any(cls.tags.needs_torch for cls in found.values()):
        click.echo("The deep methods need PyTorch: pip install 'stfusion[dl]'.")


def _one(name: str, found: dict[str, Any]) -> None:
    """One method's header and a line per parameter (a user trial: units and meanings were
    only on the docs pages, and ``stfusion methods fsdaf`` was a usage error)."""
    import difflib

    key = name.strip()
    cls = found.get(key, found.get(key.lower()))  # a plugin may register capitals
    if cls is None:
        owner = next((m for m, c in found.items() if key in _own_bases(c)), None)
        if owner is not None:
            raise click.BadParameter(
                f"{name!r} is not a method but a base of {owner} (--method {owner} --param "
                f"base={key}): its parameters are listed by `stfusion methods {owner}`.",
                param_hint="NAME",
            )
        close = difflib.get_close_matches(name, found, n=1)
        raise click.BadParameter(
            f"{name!r}: no such method"
            + (f" (did you mean {close[0]}?)" if close else "")
            + f"; the methods: {', '.join(found)}.",
            param_hint="NAME",
        )
    click.echo(f"{cls.name}: {cls.title} ({cls.paper}); pairs {cls.tags.pairs_text()}")
    from stfusion.methods import BUILTIN

    page = (  # a plugin's documentation is its package's, not stfusion's pages
        f"docs/methods/{cls.name}.md"
        if BUILTIN.get(cls.name) == f"{cls.__module__}:{cls.__qualname__}"
        else f"a plugin from {cls.__module__.partition('.')[0]}"
    )
    click.echo(f"{page}; give a parameter with --param NAME=VALUE")
    _params(cls.params)
    for base, own in _own_bases(cls).items():
        click.echo(
            f"with base={base}, {own.title}; its parameters, given as --param "
            f"{cls.base_prefix}NAME=VALUE:"
        )
        _params(own.params)


def _own_bases(cls: Any) -> dict[str, Any]:
    """A method's bases that are not registered methods (VIPSTF's sw), by name."""
    own = getattr(cls, "own_bases", None)
    return dict(own()) if callable(own) else {}


def _params(params: Any) -> None:
    for p in params:
        unit = f" [{p.unit}]" if p.unit else ""
        click.echo(f"  {p.name} = {p.default}{unit}: {p.allowed()}")
        click.echo(f"      {p.help}")
