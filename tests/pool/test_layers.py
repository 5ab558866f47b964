"""The pool package's floors: every module imports only from floors below it (no circle),
and the default pool is built from the package's public names only."""

from __future__ import annotations

import ast
from pathlib import Path

import tritondiv
import tritondiv.pool
import tritondiv.sharegpt

PACKAGE = Path(tritondiv.pool.__file__).parent

# lowest floor first; a module may import only modules listed before it
FLOORS = [
    "tritondiv.pool.model",
    "tritondiv.pool.formats",
    "tritondiv.pool.readers.base",
    "tritondiv.pool.readers.json",
    "tritondiv.pool.readers.jsonl",
    "tritondiv.pool.readers.parquet",
    "tritondiv.pool.readers.hf",
    "tritondiv.pool.readers.table",
    "tritondiv.pool.readers",
    "tritondiv.pool.extract",
    "tritondiv.pool.stream",
    "tritondiv.pool.sharegpt",
    "tritondiv.pool",
]


def _module_name(path: Path) -> str:
    parts = ["tritondiv", "pool", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            out.extend((a.name, []) for a in node.names)
    return out


def test_every_module_imports_only_lower_floors() -> None:
    files = sorted(PACKAGE.rglob("*.py"))
    assert sorted(_module_name(f) for f in files) == sorted(FLOORS)
    for f in files:
        me = FLOORS.index(_module_name(f))
        for module, _ in _imports(f):
            if module == "tritondiv.pool" or module.startswith("tritondiv.pool."):
                assert FLOORS.index(module) < me, f"{_module_name(f)} imports {module}"


def test_default_pool_uses_public_names_only() -> None:
    for module, names in _imports(PACKAGE / "sharegpt.py"):
        if module.startswith("tritondiv."):
            assert all(not n.startswith("_") for n in names), (module, names)


def test_public_names() -> None:
    for name in tritondiv.pool.__all__:
        assert getattr(tritondiv.pool, name) is not None
    assert not hasattr(tritondiv.pool, "add_pool_arguments")  # the CLI builds its own options
    assert tritondiv.sharegpt.default_pool is tritondiv.pool.default_pool
    assert tritondiv.default_pool is tritondiv.pool.default_pool
    assert tritondiv.load_pool is tritondiv.pool.load_pool
