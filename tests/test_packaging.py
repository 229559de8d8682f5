"""The package as `pip install stfusion` gives it: a wheel built from this checkout, used
from outside the repository. The editable install of `make test` reads everything from
src/, so a file left out of the wheel's package data would pass every other test."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import REPO


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel built (no build isolation: no package index needed) from a copy of the
    checkout's tracked package files, so no build/ or egg-info lands in the repository."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(REPO / name, src / name)
    tracked = subprocess.run(
        ["git", "ls-files", "src"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    for rel in tracked:
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, src / rel)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp / "dist"),
            str(src),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (built,) = (tmp / "dist").glob("stfusion-*.whl")
    return built


def test_the_wheel_holds_the_sample_the_weights_and_the_methods(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    tracked = subprocess.run(
        ["git", "ls-files", "src/stfusion"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    # every tracked file of the package, but the training logs and curves beside the weights
    wanted = {p.removeprefix("src/") for p in tracked if not p.endswith((".log.csv", ".loss.png"))}
    assert wanted <= names, sorted(wanted - names)
    assert not any(n.startswith(("tests/", "benchmarks/", "tools/")) for n in names)
    (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "stfusion = stfusion.cli.main:main" in text and "fsdaf = " in text
    # BSD-3 asks that the notice travel with the code (a packaging trial found none)
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names), sorted(names)[-8:]


def test_the_source_distribution_carries_the_tests_docs_and_licence(tmp_path: Path) -> None:
    """A packaging trial: the sdist held tests/test_*.py without conftest.py, their helpers
    and the slow references (42 of 68 modules failed to import), and no docs or licence."""
    import tarfile

    from setuptools import build_meta

    tree = tmp_path / "tree"
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    for rel in tracked:
        if (REPO / rel).is_file():
            (tree / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, tree / rel)
    here = Path.cwd()
    try:
        os.chdir(tree)
        name = build_meta.build_sdist(str(tmp_path / "dist"))
    finally:
        os.chdir(here)
    with tarfile.open(tmp_path / "dist" / name) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    wanted = {p for p in tracked if p.startswith(("tests/", "docs/", "tools/"))}
    wanted |= {"LICENSE", "DESIGN.md", "Makefile", "benchmarks/native_cases.py"}
    assert wanted <= names, sorted(wanted - names)
    assert not any("benchmarks/results" in n or "__pycache__" in n for n in names)


def test_the_installed_package_runs_the_demo_outside_the_repository(
    wheel: Path, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "STFUSION_DATA")}
    env["PYTHONPATH"] = str(site)  # ahead of the editable install of this checkout
    code = (
        "import stfusion, sys; from stfusion.cli import main; "
        "print(stfusion.__file__); main(['demo', '-m', 'nochange', 'out'])"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines()[0].startswith(str(site)), proc.stdout
    assert (work / "out" / "nochange_2001-11-02.tif").exists()
    assert "wrote out/nochange_2001-11-02.tif" in proc.stdout + proc.stderr


def test_the_installed_package_ignores_a_shared_data_folder_beside_it(
    wheel: Path, tmp_path: Path
) -> None:
    """A packaging trial: installed, the package looked up to five folders above itself for
    shared/data, so an unrelated shared/data/README.md beside a virtual environment made
    `bench --cases all` fail on its missing files. Only a source checkout looks beside it."""
    site = tmp_path / "venv" / "lib" / "python3.11" / "site-packages"
    zipfile.ZipFile(wheel).extractall(site)
    (tmp_path / "shared" / "data").mkdir(parents=True)
    (tmp_path / "shared" / "data" / "README.md").write_text("someone else's\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "STFUSION_DATA")}
    env["PYTHONPATH"] = str(site)
    code = "from stfusion.cases import default_data_dir as d, named_cases as n; print(d(), *n())"
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["None", "sample-cia-1pair", "sample-cia-2pair"], proc.stdout
