"""``python -m stfusion.cli``: the same as the ``stfusion`` command."""

from stfusion.cli.main import main

main()
