"""``python -m stfusion``: the command line, as ``stfusion``."""

from stfusion.cli.main import main

if __name__ == "__main__":
    main()
