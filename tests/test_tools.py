"""The repository's tools that `make test` itself depends on."""

from __future__ import annotations

import subprocess
import sys

from conftest import REPO, process_env


def test_warm_kernels_reaches_every_kernel() -> None:
    """`make test` compiles the kernels once with tools/warm_kernels.py before the tests; a
    method or option renamed since would leave kernels to compile in each test process
    again, silently (make goes on): the script names them and exits 1."""
    proc = subprocess.run(
        [sys.executable, str(REPO / "tools" / "warm_kernels.py")],
        env=process_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "not reached" not in proc.stdout and "exited" not in proc.stderr, proc.stderr
    assert "kernel(s) compiled or loaded" in proc.stdout
