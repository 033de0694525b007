"""The architecture, enforced: layers, import directions, no cycles, and what ships.

The request flows edge → trust → durability → actions → adapters; the entry wires them.
A module may import its own layer, any layer *before* it in that flow, and the core;
the core imports only the core; nothing imports the entry. Imports under
``if TYPE_CHECKING:`` are annotations, never executed, and do not count. Function-level
(lazy) imports do count. Only the adapters import the cloud SDKs; nothing in the runtime
imports the dev package. A new module must be given a layer here (and in the README). These rules
guard the package only: the user's modules beside ``index.py`` ship too, checked only for dev imports.
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

CORE = "core"
FLOW = ("edge", "trust", "durability", "actions", "adapters")
ENTRY = "entry"
LAYERS: dict[str, set[str]] = {
    CORE: {"errors", "kinds", "times", "jsonsafe", "log", "settings", "context",
           "decode", "parse", "models", "readers", "results", "router", "keys", "sweepspec", "sweep", "sweepstate", "budget",
           "checkpoint", "fanout"},
    "edge": {"http", "triggers", "cmq"},
    "trust": {"auth", "policy"},
    "durability": {"inbox", "idempotency", "replay", "verify"},
    "actions": {"actions", "handlers"},
    "adapters": {"storage", "notify", "services"},
    ENTRY: {"app", "runner", "pipeline", "reconcile", "batch", "chain", "__init__"},
}
SDKS = ("qcloud_cos", "tencentcloud")
DEV_ONLY = ("ci_callback_dev", "moto", "werkzeug", "yaml", "pytest", "hypothesis", "boto3", "flask", "rich")


def layer_of(module: str) -> str:
    for layer, modules in LAYERS.items():
        if module in modules:
            return layer
    raise AssertionError(f"ci_callback.{module} has no layer: add it to LAYERS (and the README's map)")


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


def imports(path: Path) -> tuple[set[str], set[str]]:
    """(package-internal modules, external top-level packages) that PATH imports at run time."""
    internal: set[str] = set()
    external: set[str] = set()
    for node in _runtime_nodes(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("ci_callback."):
                    internal.add(alias.name.split(".")[1])
                else:
                    external.add(alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module and not node.module.startswith("ci_callback"):
                external.add(node.module.split(".")[0])
            elif node.level == 0 and node.module and node.module.startswith("ci_callback_dev"):
                external.add("ci_callback_dev")
            elif node.level == 1 and node.module:
                internal.add(node.module.split(".")[0])
            elif node.level == 1:  # from . import a, b
                internal.update(alias.name for alias in node.names)
            elif node.module and node.module.startswith("ci_callback"):
                parts = node.module.split(".")
                internal.update([parts[1]] if len(parts) > 1 else [a.name for a in node.names])
    return internal, external


def graph() -> dict[str, set[str]]:
    return {path.stem: imports(path)[0] - {"register"} for path in sorted(PACKAGE.glob("*.py"))}


def allowed(importer: str, imported: str) -> bool:
    if (importer, imported) == ("context", "services"):  # the one lazy home where services are built
        return True
    source, target = layer_of(importer), layer_of(imported)
    if target == ENTRY:
        return source == ENTRY
    if source == ENTRY or target == CORE:
        return True
    if source == CORE:
        return False
    return FLOW.index(target) <= FLOW.index(source)


def test_every_module_has_a_layer() -> None:
    modules = {path.stem for path in PACKAGE.glob("*.py")} | {"results"}
    assert modules == set().union(*LAYERS.values())


def test_imports_follow_the_allowed_directions() -> None:
    wrong = [f"{a} ({layer_of(a)}) imports {b} ({layer_of(b)})"
             for a, targets in graph().items() for b in sorted(targets) if a != b and not allowed(a, b)]
    assert wrong == []


def test_the_import_graph_has_no_cycles() -> None:
    edges = graph()
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for target in sorted(edges.get(node, ())):
            if target == node:
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
    for path in sorted(PACKAGE.glob("*.py")):
        external = imports(path)[1]
        assert not external & set(DEV_ONLY), f"{path.name} imports dev tooling {external & set(DEV_ONLY)}"
        if layer_of(path.stem) != "adapters":
            assert not external & set(SDKS), f"{path.name} imports an SDK; only the adapters may"


def test_the_rule_catches_an_arrow_back_up() -> None:
    assert not allowed("pipeline", "app") or layer_of("pipeline") == ENTRY
    assert not allowed("models", "http")  # core → edge
    assert not allowed("http", "auth")  # edge → trust
    assert not allowed("storage", "app")  # adapter → entry
    assert allowed("auth", "http") and allowed("actions", "policy") and allowed("app", "storage")


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
