"""The architecture, enforced: dependency direction is the subpackage, no cycles, what ships.

The package is cut by feature: ``model/`` (decode, parse, models, the Tag registry),
``edge/``, ``trust/``, ``adapters/``, ``actions/``, ``routing/``, ``durable/``,
``continuation/``, ``queue/``, ``reconcile/``, with a few modules at the top. A module's unit
is its subpackage (or, at the top, the module itself; the shared foundation is one unit).
A module may import its own unit and the units before it in ``ORDER``, never one after:
that is the one-way pipeline. A new module inside a subpackage needs no entry here; a new
top-level module does. Imports under ``if TYPE_CHECKING:`` are annotations and do not count;
function-level (lazy) imports do. Only the adapters import the cloud SDKs, and nothing in
the runtime imports the dev package.
"""

from __future__ import annotations

import ast
import importlib.util
import shutil
import zipfile
from pathlib import Path

import pytest

from conftest import ROOT

PACKAGE = ROOT / "handler" / "ci_callback"

# Shared by everything, importing only each other: errors, settings, log, times, keys …
FOUNDATION = {"errors", "times", "jsonsafe", "log", "settings", "keys", "budget"}
# The one-way order of units: trigger event → edge → trust → … → the entry (app).
ORDER = ("foundation", "model", "edge", "trust", "adapters", "context", "checkpoint", "runner", "actions", "routing",
         "durable", "continuation", "pipeline", "queue", "reconcile", "app")
SDKS = ("qcloud_cos", "tencentcloud")
DEV_ONLY = ("ci_callback_dev", "moto", "werkzeug", "yaml", "pytest", "hypothesis", "boto3", "flask", "rich")


def runtime_modules() -> dict[str, Path]:
    """Every module of the package, by dotted name below ``ci_callback`` (``model.parse``)."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1] or ["__init__"]
        found[".".join(parts)] = path
    return found


def unit_of(module: str) -> str:
    top = module.split(".")[0]
    if top in FOUNDATION:
        return "foundation"
    if top == "__init__":
        return "app"
    if top not in ORDER:
        raise AssertionError(f"ci_callback.{module}: top-level {top!r} is in no unit; add it to ORDER (and the README map)")
    return top


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node that can execute: ``if TYPE_CHECKING:`` bodies are skipped."""
    found: list[ast.AST] = []
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        found.append(node)
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))
    return found


def imports(path: Path, module: str = "") -> tuple[set[str], set[str]]:
    """(package-internal modules, external top-level packages) that PATH (ci_callback.MODULE)
    imports at run time; internal ones by dotted name below ``ci_callback``."""
    internal: set[str] = set()
    external: set[str] = set()
    is_package = path.name == "__init__.py"
    here = module.split(".") if module and module != "__init__" else []
    package = here if is_package else here[:-1]
    known = runtime_modules()
    for node in _runtime_nodes(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("ci_callback."):
                    internal.add(alias.name.split(".", 1)[1])
                elif alias.name != "ci_callback":
                    external.add(alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                name = node.module or ""
                if name == "ci_callback_dev" or name.startswith("ci_callback_dev."):
                    external.add("ci_callback_dev")
                    continue
                if not (name == "ci_callback" or name.startswith("ci_callback.")):
                    external.add(name.split(".")[0])
                    continue
                base = name.split(".")[1:]
            else:
                base = package[:len(package) - (node.level - 1)] if node.level > 1 else list(package)
                base = base + (node.module.split(".") if node.module else [])
            for alias in node.names:
                candidate = ".".join([*base, alias.name])
                internal.add(candidate if candidate in known else ".".join(base) or "__init__")
    return internal, external


def graph() -> dict[str, set[str]]:
    return {module: imports(path, module)[0] for module, path in runtime_modules().items()}


def allowed(importer: str, imported: str) -> bool:
    return ORDER.index(unit_of(imported)) <= ORDER.index(unit_of(importer))


def test_every_top_level_module_has_a_unit() -> None:
    for module in runtime_modules():
        unit_of(module)


def test_imports_follow_the_subpackage_order() -> None:
    wrong = [f"{a} ({unit_of(a)}) imports {b} ({unit_of(b)})"
             for a, targets in graph().items() for b in sorted(targets) if a != b and not allowed(a, b)]
    assert wrong == []


def test_the_import_graph_has_no_cycles() -> None:
    edges = graph()
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for target in sorted(edges.get(node, ())):
            if target == node or target == node.rsplit(".", 1)[0]:  # a module and its own package
                continue
            if state.get(target) == 1:
                cycles.append(path[path.index(target):] + [target] if target in path else [node, target])
            elif target not in state:
                visit(target, [*path, target])
        state[node] = 2

    for start in sorted(edges):
        if start not in state:
            visit(start, [start])
    assert cycles == []


def test_only_the_adapters_import_the_sdks_and_nothing_imports_dev_tooling() -> None:
    for module, path in runtime_modules().items():
        external = imports(path, module)[1]
        assert not external & set(DEV_ONLY), f"{module} imports dev tooling {external & set(DEV_ONLY)}"
        if unit_of(module) != "adapters":
            assert not external & set(SDKS), f"{module} imports an SDK; only the adapters may"


def test_the_rule_catches_an_arrow_back_up() -> None:
    assert not allowed("model.models", "edge.http")  # the pure core → the edge
    assert not allowed("edge.http", "trust.auth")  # edge → trust
    assert not allowed("adapters.cos", "app")  # adapter → entry
    assert not allowed("model.parse", "adapters.cos")  # the core does no I/O
    assert allowed("trust.auth", "edge.http") and allowed("actions.builtin", "trust.policy")
    assert allowed("app", "adapters.cos") and allowed("reconcile.run", "pipeline")


# ---------------------------------------------------------------- the code zip, as serverless.yml uploads it


def _build_module():
    spec = importlib.util.spec_from_file_location("layer_build", ROOT / "layers" / "build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _zip_sources(src: Path, excludes: list[str], tmp_path: Path) -> dict[str, Path]:
    """The code zip built from SRC as serverless.yml uploads it, its .py files unzipped under tmp_path."""
    build = _build_module()
    dest = tmp_path / "code.zip"
    build.write_zip(src, dest, excludes)
    unzipped: dict[str, Path] = {}
    with zipfile.ZipFile(dest) as zf:
        names = zf.namelist()
        assert set(n for n in names if not n.endswith(".py")) <= {"ci_callback/py.typed"}
        for name in names:
            if name.endswith(".py"):
                path = tmp_path / "unzipped" / name
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(zf.read(name))
                unzipped[name] = path
    return unzipped


def _check_code_zip(sources: dict[str, Path]) -> None:
    """The package ships whole and alone under ci_callback/; beside it, index.py and the user's own
    modules (any layout), none of which may import dev tooling (it is not in the layer)."""
    runtime = {f"ci_callback/{path.relative_to(PACKAGE).as_posix()}" for path in PACKAGE.rglob("*.py")}
    assert {name for name in sources if name.startswith("ci_callback/")} == runtime
    assert "index.py" in sources
    for name, path in sources.items():
        external = imports(path)[1]
        assert not external & set(DEV_ONLY), f"{name} in the code zip imports {external & set(DEV_ONLY)}"


def test_the_code_zip_holds_the_package_and_index(tmp_path: Path) -> None:
    pytest.importorskip("yaml")
    src, excludes = _build_module().code_source(ROOT)  # serverless.yml's inputs.src and its excludes
    _check_code_zip(_zip_sources(src, excludes, tmp_path))


def test_a_user_module_beside_index_ships_and_passes(tmp_path: Path) -> None:
    pytest.importorskip("yaml")
    src, excludes = _build_module().code_source(ROOT)
    tree = tmp_path / "handler"
    shutil.copytree(src, tree, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    (tree / "my_rules.py").write_text(
        "from ci_callback.app import router\n\n\n@router.on_job('SmartCover', state='Success')\n"
        "def mine(callback, inv):\n    inv.record('mine')\n", encoding="utf-8")
    index = tree / "index.py"
    index.write_text(index.read_text(encoding="utf-8") + "\nimport my_rules  # noqa: E402,F401\n", encoding="utf-8")
    sources = _zip_sources(tree, excludes, tmp_path / "zip")
    assert {"index.py", "my_rules.py"} <= set(sources)
    _check_code_zip(sources)


def test_a_user_module_importing_dev_tooling_is_caught(tmp_path: Path) -> None:
    pytest.importorskip("yaml")
    src, excludes = _build_module().code_source(ROOT)
    tree = tmp_path / "handler"
    shutil.copytree(src, tree, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    (tree / "my_rules.py").write_text("from ci_callback_dev import localcos\n", encoding="utf-8")
    with pytest.raises(AssertionError, match="my_rules.py in the code zip imports"):
        _check_code_zip(_zip_sources(tree, excludes, tmp_path / "zip"))
