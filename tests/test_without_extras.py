"""What a user who installed stfusion without its extras sees when asking for one: a line
naming the pip command, exit status 1, before any work, through a real process."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from conftest import predict_args, run_python

#: Run the CLI with dask.distributed unimportable, as in an install without stfusion[dask].
WITHOUT_DISTRIBUTED = (
    "import sys; sys.modules['distributed'] = None; "
    "from stfusion.cli.main import main; sys.argv[0] = 'stfusion'; main()"
)


def test_scheduler_without_dask_is_one_line_before_any_work(
    small_tifs: dict[str, Path], tmp_path: Path
) -> None:
    """``--scheduler`` without dask.distributed ended in a ModuleNotFoundError traceback,
    after the fit; in Python too (``predict(..., scheduler=)``)."""
    out = tmp_path / "x.tif"
    args = predict_args(small_tifs, out, "--scheduler", "tcp://127.0.0.1:8786")
    done = run_python(WITHOUT_DISTRIBUTED, *args)
    assert done.returncode == 1, done.stderr
    assert "pip install 'stfusion[dask]'" in done.stderr
    assert "Traceback" not in done.stderr and not out.exists()


def test_python_scheduler_without_dask_fails_before_predicting(
    small_tifs: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from stfusion.errors import MissingDependencyError
    from stfusion.methods.baselines import Additive

    est = Additive().fit([(str(small_tifs["f1"]), str(small_tifs["c1"]))])
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(MissingDependencyError, match=r"stfusion\[dask\]"):
        est.predict(str(small_tifs["c2"]), scheduler="tcp://127.0.0.1:8786")
