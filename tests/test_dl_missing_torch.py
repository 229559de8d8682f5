"""Without torch: stfusion imports, classical methods run, deep methods say how to install.

torch is hidden with ``sys.modules["torch"] = None`` in a fresh interpreter, so this runs
whether or not torch is installed.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent(
    """
    import sys
    sys.modules["torch"] = None  # import torch now raises ImportError

    import numpy as np
    import stfusion
    import stfusion.cli
    import stfusion.cli.train
    from stfusion.errors import MissingDependencyError
    from stfusion.methods import get_method
    from stfusion.methods.deep import DCSTFN, EDCSTFN

    fine = np.full((2, 16, 16), 0.2, np.float32)
    coarse = fine + 0.01
    pred = get_method("additive")().fit([(fine, coarse)]).predict(coarse + 0.02)
    assert np.allclose(pred.values, 0.22)

    for cls in (DCSTFN, EDCSTFN):
        est = cls(weights="model.ckpt", tile=64)  # building and parameters need no torch
        assert est.get_params()["tile"] == 64
        try:
            est.fit([(fine, coarse)])
        except MissingDependencyError as exc:
            assert isinstance(exc, ImportError)
            print("FIT:", exc)
        else:
            raise AssertionError("fit worked without torch")

    try:
        import stfusion.dl.train  # noqa: F401
    except MissingDependencyError as exc:
        print("IMPORT:", exc)

    from click.testing import CliRunner
    import stfusion.methods as registry
    registry.BUILTIN.update({"dcstfn": "stfusion.methods.deep:DCSTFN",
                             "edcstfn": "stfusion.methods.deep:EDCSTFN"})
    res = CliRunner().invoke(stfusion.cli.cli, ["methods"])
    assert res.exit_code == 0 and "edcstfn" in res.output and "weights=demo" in res.output
    line = next(ln for ln in res.output.splitlines() if ln.startswith("edcstfn"))
    assert "[needs stfusion[dl], not installed]" in line, res.output
    assert "pip install 'stfusion[dl]'" in res.output
    res = CliRunner().invoke(stfusion.cli.train.train, ["--help"])
    assert res.exit_code == 0 and "--pair" in res.output
    res = CliRunner().invoke(stfusion.cli.train.train, ["--pair", "a.tif", "b.tif", "--out", "m"])
    assert isinstance(res.exception, MissingDependencyError), res.exception
    print("CLI:", res.exception)
    print("OK")
    """
)


def test_without_torch() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.strip().endswith("OK")
    hint = "whl/cpu, since PyPI's Linux torch brings CUDA"
    for stage in ("FIT:", "IMPORT:", "CLI:"):
        line = next(line for line in out.splitlines() if line.startswith(stage))
        assert hint in line


def test_torch_without_lightning_says_what_to_install(tmp_path: Path) -> None:
    """A packaging trial: torch installed alone (the first step of the install hint, or
    conda's pytorch) made `stfusion train` and `distill` end in a 13-frame traceback, "No
    module named 'lightning'". One line naming the extra, exit 1, nothing written."""
    from conftest import run_python, sample_pair_args

    pairs = sample_pair_args()
    code = (
        "import sys; sys.modules['lightning'] = None\n"
        "from stfusion.cli import main\n"
        "main(sys.argv[1:])"
    )
    out = tmp_path / "m.ckpt"
    proc = run_python(code, "train", "--model", "student", *pairs, "--out", str(out))
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "needs Lightning" in proc.stderr, proc.stderr
    assert "pip install 'stfusion[dl]'" in proc.stderr and not out.exists()


def test_a_runs_checks_come_before_lightning_is_imported(tmp_path: Path) -> None:
    """Importing Lightning takes 4-5 s (10 s on a busy machine): `stfusion train` and
    `distill` said a bad --out only after it. Now their modules import it where the run
    starts, after the checks of its options, output and resume state."""
    from conftest import run_python, sample_pair_args

    code = (
        "import sys\n"
        "from stfusion.cli import main\n"
        "try:\n"
        "    main(sys.argv[1:])\n"
        "except SystemExit as exc:\n"
        "    print('exit', exc.code, 'lightning' in sys.modules)\n"
    )
    raster = tmp_path / "m.tif"
    raster.write_bytes(b"")
    for command in (["train", "--model", "dcstfn"], ["distill", "--teacher", "shipped"]):
        proc = run_python(code, *command, *sample_pair_args(), "--out", str(raster))
        assert proc.stdout.split()[-3:] == ["exit", "2", "False"], proc.stdout + proc.stderr
        assert "a checkpoint is a torch file" in proc.stderr, proc.stderr
