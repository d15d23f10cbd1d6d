"""No module of ``sweep``, ``analysis`` or ``ui`` reaches into MLflow's private names (issue 19):
MLflow is pinned below 4, and what it keeps private may change within that range without
notice. Found by reading the source (AST), without importing it:

- ``import mlflow._x`` / ``from mlflow.a._b import y`` (a private module on the path);
- ``from mlflow... import _x`` (a private name);
- ``x._y`` (or ``getattr(x, "_y")``) where ``x`` is bound by an MLflow import (``handlers._f``,
  ``SqlAlchemyStore._engine_map``), or where ``_y`` is a name MLflow's own source defines
  (a ``def``, ``class``, module global or ``self._y =``) and the project does not
  (``client._tracking_client``, whatever ``client`` is).
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("sweep", "analysis", "ui")  # the project's packages that may import mlflow
OWN = ("sweep", "analysis", "ui", "solvers", "bench", "cluster", "tests")  # defines names too

_DEFINES = re.compile(
    r"^\s*(?:async\s+)?def\s+(_\w+)|^\s*class\s+(_\w+)"
    r"|\b(?:self|cls)\.(_\w+)\s*(?::[^=\n]*)?=(?!=)|^(_\w+)\s*(?::[^=\n]*)?=(?!=)",
    re.MULTILINE,
)


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _files(packages: tuple[str, ...]) -> list[Path]:
    return sorted(f for p in packages if (ROOT / p).is_dir() for f in (ROOT / p).rglob("*.py"))


@functools.cache
def mlflow_private_names() -> frozenset[str]:
    """Every private name the installed MLflow's source defines."""
    root = Path(importlib.util.find_spec("mlflow").origin).parent
    out: set[str] = set()
    for f in root.rglob("*.py"):
        for m in _DEFINES.finditer(f.read_text(errors="replace")):
            out.add(next(g for g in m.groups() if g))
    return frozenset(out)


@functools.cache
def own_private_names() -> frozenset[str]:
    """Every private name the project's own modules define (or take as an argument)."""
    out: set[str] = set()
    for f in _files(OWN):
        for node in ast.walk(ast.parse(f.read_text(), str(f))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                out.add(node.name)
            elif isinstance(node, ast.Attribute | ast.Name) and isinstance(node.ctx, ast.Store):
                out.add(node.attr if isinstance(node, ast.Attribute) else node.id)
            elif isinstance(node, ast.arg):
                out.add(node.arg)
    return frozenset(n for n in out if _private(n))


def _root(node: ast.AST) -> ast.AST:
    while isinstance(node, ast.Attribute | ast.Call | ast.Subscript):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node


def private_mlflow_uses(path: Path, own: frozenset[str] | None = None) -> list[str]:
    """``path:line: what`` for every use of a private MLflow name in the module ``path``."""
    own = own_private_names() if own is None else own
    tree = ast.parse(path.read_text(), str(path))
    found: list[str] = []
    bound: set[str] = set()  # names an MLflow import binds in this module
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "mlflow":
                    bound.add(a.asname or "mlflow")
                    if any(_private(p) for p in a.name.split(".")):
                        found.append(f"{path}:{node.lineno}: import {a.name}")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "mlflow":
            if any(_private(p) for p in node.module.split(".")):
                found.append(f"{path}:{node.lineno}: from {node.module} import ...")
            for a in node.names:
                bound.add(a.asname or a.name)
                if _private(a.name):
                    found.append(f"{path}:{node.lineno}: from {node.module} import {a.name}")
    theirs = mlflow_private_names()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            base, name = node.value, node.attr
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "setattr", "hasattr")
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
        ):
            base, name = node.args[0], node.args[1].value
        else:
            continue
        if not _private(name):
            continue
        root = _root(base)
        if (isinstance(root, ast.Name) and root.id in bound) or (
            name in theirs and name not in own
        ):
            found.append(f"{path}:{node.lineno}: .{name}")
    return sorted(found, key=lambda hit: int(hit.split(":")[1]))


def test_no_module_uses_a_private_mlflow_name() -> None:
    files = _files(SCANNED)
    assert len(files) > 20  # the packages were found
    found = [hit for f in files for hit in private_mlflow_uses(f)]
    assert found == [], "\n".join(found)


def test_the_scan_finds_each_kind_of_private_use(tmp_path: Path) -> None:
    """The four private uses issue 19 found (as they were written), and two more shapes, in a
    module of their own: each is reported, on its line; the public spellings are not."""
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import mlflow.tracking._tracking_service.utils as u\n"  # 1
        "from mlflow.store.db.utils import _get_latest_schema_revision\n"  # 2
        "from mlflow.server import handlers\n"
        "from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore\n"
        "def f(client, store):\n"
        "    a = client._tracking_client.store\n"  # 6
        "    b = handlers._get_tracking_store()\n"  # 7
        "    c = getattr(SqlAlchemyStore, '_engine_map', {})\n"  # 8
        "    d = store.engine._run_ddl_visitor\n"  # 9: SQLAlchemy's, not MLflow's: not reported
        "    e = client.tracking_uri, SqlAlchemyStore.__name__\n"
        "    return a, b, c, d, e\n"
    )
    found = private_mlflow_uses(bad, frozenset())
    assert [line.split(":")[1] for line in found] == ["1", "2", "6", "7", "8"], found
    assert "._tracking_client" in found[2] and "._get_tracking_store" in found[3]
    good = tmp_path / "good.py"
    good.write_text(
        "from mlflow.server import BACKEND_STORE_URI_ENV_VAR\n"
        "from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore\n"
        "def f(uri, root):\n"
        "    return SqlAlchemyStore(uri, root).engine, BACKEND_STORE_URI_ENV_VAR\n"
    )
    assert private_mlflow_uses(good, frozenset()) == []
    # a private attribute the project defines itself is its own business, unless it is reached
    # through a name MLflow's import bound
    own = tmp_path / "own.py"
    own.write_text(
        "from mlflow.server import handlers\n"
        "def f(writer):\n    return writer._lock, handlers._lock\n"
    )
    assert [h.split(": ")[1] for h in private_mlflow_uses(own, frozenset({"_lock"}))] == ["._lock"]
