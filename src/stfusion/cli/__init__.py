"""The ``stfusion`` command line (``main.py``: the group and the entry point; one module per
command; ``options.py``: the option types shared by the commands).

``stfusion.cli:main`` and ``stfusion.cli:cli`` stay importable for scripts and tests written
before the package existed.
"""

from stfusion.cli.main import cli, main

__all__ = ["cli", "main"]
