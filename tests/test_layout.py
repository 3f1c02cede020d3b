"""The server's package holds what a server needs: the benchmarks and client tools live in
their own package (bench/ruang_bench) and no server module imports them."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import ruang

SERVER = Path(ruang.__file__).parent


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at any depth (lazy imports included)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_the_server_package_does_not_carry_the_benchmarks() -> None:
    assert not (SERVER / "bench").exists()
    assert not (SERVER / "tools").exists()
    offenders = {
        str(path.relative_to(SERVER)): sorted(m for m in mods if m.split(".")[0] == "ruang_bench")
        for path in SERVER.rglob("*.py")
        if (mods := imported_modules(path))
    }
    offenders = {k: v for k, v in offenders.items() if v}
    # only the `ruang bench` subcommand reaches for them, and says how to install them if absent
    assert offenders == {"cli.py": ["ruang_bench"]}, offenders


def test_ruang_bench_without_the_package_says_how_to_install_it() -> None:
    hide = "import sys; sys.modules['ruang_bench'] = None; from ruang.cli import main; main()"
    r = subprocess.run(
        [sys.executable, "-c", hide, "bench", "listeners"], capture_output=True, text=True
    )
    assert r.returncode == 1, r
    assert "pip install -e ./bench" in r.stderr, r.stderr
