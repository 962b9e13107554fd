"""Each rule of the code base has one home, checked by reading the source (``ast``).

* Only ``orchestrator/db/`` imports a database driver: every executor turns the drivers'
  exceptions into the hub's own errors there, so none reaches the worker, the
  dashboard or the CLI. ``providers/http.py``, ``providers/network.py`` and ``logs/http.py`` are HTTP clients of
  other systems (GPU providers, the caller's services), not of our database: they may
  import httpx, and nothing else may.
* Every :class:`~orchestrator.db.calls.Call` is built in an area's ``calls.py``.
* Helpers written once stay written once.
"""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "orchestrator"
DRIVERS = ("psycopg", "asyncpg", "httpx", "supabase", "postgrest")
HTTP_CLIENTS_OF_OTHER_SYSTEMS = {
    "providers/http.py": {"httpx"},
    "providers/network.py": {"httpx"},  # builds the providers' clients (proxy, TLS)
    "logs/http.py": {"httpx"},
}


def modules() -> list[tuple[str, ast.Module]]:
    """(path relative to the package, parsed module) for every module of the package."""
    return [
        (path.relative_to(PACKAGE).as_posix(), ast.parse(path.read_text(), str(path)))
        for path in sorted(PACKAGE.rglob("*.py"))
    ]


def imported_roots(tree: ast.Module) -> set[str]:
    """The top-level names of every module imported anywhere in ``tree``."""
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.partition(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.partition(".")[0])
    return roots


def test_only_the_db_package_imports_a_database_driver():
    """psycopg, asyncpg, supabase-py (and its httpx) are imported under orchestrator/db/
    only; the two HTTP clients of other systems may import httpx."""
    offenders = []
    for path, tree in modules():
        if path.startswith("db/"):
            continue
        allowed = HTTP_CLIENTS_OF_OTHER_SYSTEMS.get(path, set())
        used = (imported_roots(tree) & set(DRIVERS)) - allowed
        offenders.extend(f"{path} imports {name}" for name in sorted(used))
    assert offenders == []


def test_the_rule_sees_a_driver_import():
    """The scan is not blind: the psycopg executor's own import is found."""
    tree = ast.parse((PACKAGE / "db" / "psycopg.py").read_text())
    assert "psycopg" in imported_roots(tree)


def _builds_a_call(node: ast.AST) -> bool:
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    return (isinstance(func, ast.Name) and func.id == "Call") or (
        isinstance(func, ast.Attribute) and func.attr == "Call"
    )


def test_every_call_value_is_built_in_a_calls_module():
    """Operations are written once, in their area's calls.py (or a ``<topic>_calls.py``
    beside it when one file grew too long); everything else runs them."""
    builders = sorted(
        path for path, tree in modules() if any(_builds_a_call(n) for n in ast.walk(tree))
    )
    assert builders, "the scan found no Call at all"
    assert [path for path in builders if not path.endswith("calls.py")] == []


def _definitions(kind: type[ast.AST]) -> Counter[str]:
    names: Counter[str] = Counter()
    for _path, tree in modules():
        for node in ast.walk(tree):
            if isinstance(node, kind):
                names[getattr(node, "name", "")] += 1
    return names


def test_helpers_written_once_stay_once():
    """One first_line (errors.py), one level -> severity table (logs/levels.py), one
    JSON-safety function (db/jsonsafe.py), one LISTEN per driver (db/), no two classes of
    one name."""
    functions = _definitions(ast.FunctionDef)
    first_lines = {n: c for n, c in functions.items() if n.strip("_") in ("first_line", "one_line")}
    assert first_lines == {"first_line": 1}
    assert functions["json_safe"] == 1 and functions["_jsonable"] == 0
    assert functions["listen"] == 1  # psycopg's; asyncpg's is AsyncListener.start
    classes = _definitions(ast.ClassDef)
    assert [name for name, count in classes.items() if count > 1] == []
    assert classes["Outcome"] == 0
    severity_tables = [
        path
        for path, tree in modules()
        for node in ast.walk(tree)
        if isinstance(node, ast.Dict)
        and {"DEBUG", "CRITICAL"} <= {k.value for k in node.keys if isinstance(k, ast.Constant)}
        and any(isinstance(v, ast.Constant) and v.value == 21 for v in node.values)
    ]
    assert severity_tables == ["logs/levels.py"]
