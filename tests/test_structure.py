"""Size limits of the source tree (issue 12): no module over 700 lines and no function over
120 lines, numba kernels excepted (their loops are kept whole for the compiler and for
reading against the papers). Every ``.py`` file under ``src/`` is checked."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
MAX_MODULE_LINES = 700
MAX_FUNCTION_LINES = 120
NUMBA = ("njit", "jit", "numba.njit", "numba.jit", "vectorize", "guvectorize", "stencil")


def _modules() -> list[Path]:
    files = sorted(SRC.rglob("*.py"))
    assert len(files) > 100, f"found only {len(files)} modules under {SRC}"
    return files


def _is_kernel(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    for dec in node.decorator_list:
        target = dec.func if isinstance(dec, ast.Call) else dec
        if ast.unparse(target) in NUMBA:
            return True
    return False


def test_no_module_over_700_lines() -> None:
    sizes = {p: len(p.read_text(encoding="utf-8").splitlines()) for p in _modules()}
    long = {str(p.relative_to(SRC)): n for p, n in sizes.items() if n > MAX_MODULE_LINES}
    assert not long, f"modules over {MAX_MODULE_LINES} lines: {long}"


def test_no_function_over_120_lines_outside_numba_kernels() -> None:
    long = {}
    for path in _modules():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):  # methods and nested functions too
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) or _is_kernel(node):
                continue
            assert node.end_lineno is not None
            n = node.end_lineno - node.lineno + 1  # from the def line, decorators not counted
            if n > MAX_FUNCTION_LINES:
                long[f"{path.relative_to(SRC)}:{node.lineno} {node.name}"] = n
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines: {long}"


def test_the_kernel_exception_is_only_numba() -> None:
    """The exception is narrow: a numba-compiled function is a kernel, another decorated one
    is not."""
    src = "@njit(parallel=True)\ndef k(x):\n    pass\n\n@property\ndef p(self):\n    pass\n"
    found = {n.name: _is_kernel(n) for n in ast.parse(src).body if isinstance(n, ast.FunctionDef)}
    assert found == {"k": True, "p": False}


def test_every_top_level_module_is_in_the_layers_contract() -> None:
    """DESIGN.md's layers cover every top-level module and package "with no exception":
    one left out (stfusion.quality was) has its imports checked by nothing."""
    import sys

    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib

    config = tomllib.loads((SRC.parent / "pyproject.toml").read_text())
    layers = config["tool"]["importlinter"]["contracts"][0]["layers"]
    named = {name.strip() for layer in layers for name in layer.split("|")}
    root = SRC / "stfusion"
    found = {f"stfusion.{p.stem}" for p in root.glob("*.py") if not p.stem.startswith("__")}
    found |= {f"stfusion.{p.name}" for p in root.iterdir() if (p / "__init__.py").exists()}
    assert found - named == set()
