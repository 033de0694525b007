"""``ci-callback check-deploy``: offline validation of serverless.yml and layers/serverless.yml.

The Tencent CLI validates ``inputs`` server-side, at deploy time, against rule files we cannot
fetch, and it cannot be installed from npmjs here; so this re-checks, from a bare checkout and
without importing the package, what would fail (or silently misbehave) after a deploy:

* ``component: scf``, instance ``name``; ``inputs.runtime`` in ``ALLOWED_RUNTIMES``;
  ``memorySize`` 64 or 128–3072 in steps of 128; ``timeout`` 1–900; ``initTimeout`` 3–300;
* ``handler: index.main_handler`` and ``<inputs.src>/index.py`` defining ``main_handler``
  (read with ``ast``, never imported);
* ``environment.variables``: ≤ 4 KB in total, valid names, no reserved prefixes, no literal
  secrets, every variable the code reads declared (``ENV_VARS`` in settings.py, read with ``ast``)
  and every declared ``CI_CALLBACK_*`` known to the code; the code itself is scanned with ``ast``
  for environment reads that ``ENV_VARS`` does not list;
* ``inputs.layers`` resolves to the ``layers/serverless.yml`` instance (same app and stage, same
  region, a runtime list that includes the function's runtime, a valid layer name);
* an ``apigw`` trigger with a ``POST`` endpoint and ``function.isIntegratedResponse: true``, whose
  gateway timeout does not outlast the function (else a timed-out callback is answered ``200``).

Limits come from SCF's quota page (cloud.tencent.com/document/product/583/11637) and the
component docs (serverless-components/tencent-scf, tencent-layer ``docs/configure.md``).
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Set, Tuple

# SCF's Python runtimes we accept for this project. The online list differs by region and
# changes over time (the runtime page lists 3.10/3.9/3.7/3.6/2.7; the official console templates
# also ship Python3.11–3.13): this is "what we support", not "what Tencent offers".
ALLOWED_RUNTIMES: Tuple[str, ...] = ("Python3.9", "Python3.10", "Python3.11", "Python3.12", "Python3.13")
HANDLER = "index.main_handler"
ENV_LIMIT_BYTES = 4 * 1024  # all variables together, key + value
ENV_KEY_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
RESERVED_PREFIXES: Tuple[str, ...] = ("SCF_", "QCLOUD_", "TENCENTCLOUD_")
LAYER_NAME_RE = re.compile(r"^[A-Za-z][\w-]{0,58}[A-Za-z0-9]$")
ENV_REF_RE = re.compile(r"^\$\{env:[A-Za-z_][A-Za-z0-9_]*\}$")
OUTPUT_REF_RE = re.compile(r"^\$\{output:\$\{stage\}:\$\{app\}:(?P<instance>[^.}]+)\.(?P<key>\w+)\}$")
SECRET_NAME_RE = re.compile(r"(TOKEN|SECRET|PASSWORD|PASSWD|PRIVATE_KEY)", re.I)
PROJECT_PREFIX = "CI_CALLBACK_"
# Set by SCF itself: the code may read them without declaring them.
PLATFORM_VARS: Set[str] = {"TENCENTCLOUD_SECRETID", "TENCENTCLOUD_SECRETKEY", "TENCENTCLOUD_SESSIONTOKEN",
                           "TENCENTCLOUD_REGION"}
DEFAULT_SERVICE_TIMEOUT = 15  # apigw endpoint default (s)


def allowed_memory(value: int) -> bool:
    return value == 64 or (128 <= value <= 3072 and value % 128 == 0)


# --------------------------------------------------------------------------- reading


def _load_yaml(path: Path, problems: List[str]) -> Optional[Dict[str, Any]]:
    try:
        import yaml  # noqa: PLC0415 - dev dependency; the function itself never needs it
    except ImportError:  # pragma: no cover - PyYAML is in requirements-dev.txt
        problems.append("PyYAML is not installed: pip install PyYAML (it is in requirements-dev.txt)")
        return None
    if not path.is_file():
        problems.append(f"{path.name}: not found at {path}")
        return None
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        problems.append(f"{path}: not valid YAML: {exc}")
        return None
    if not isinstance(data, dict):
        problems.append(f"{path}: expected a mapping at the top level")
        return None
    return data


def _parse(path: Path) -> Optional[ast.Module]:
    try:
        return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (OSError, SyntaxError, ValueError):
        return None


def read_env_vars(settings_py: Path) -> Optional[Dict[str, str]]:
    """``ENV_VARS`` from settings.py, as a literal, without importing the package."""
    tree = _parse(settings_py)
    if tree is None:
        return None
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        if any(isinstance(t, ast.Name) and t.id == "ENV_VARS" for t in targets):
            try:
                data = ast.literal_eval(value)
            except ValueError:
                return _declared_settings(tree)  # ENV_VARS is derived from the Settings fields
            return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else None
    return None


def _declared_settings(tree: ast.Module) -> Optional[Dict[str, str]]:
    """``setting("NAME", "description", …)`` declarations, the source ENV_VARS is derived from."""
    found: Dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "setting":
            name, doc = (_str(node.args[0]), _str(node.args[1])) if len(node.args) >= 2 else (None, None)
            if name and doc is not None:
                found[name] = doc
    return found or None


def _is_os_environ(node: ast.AST, environ_names: Set[str]) -> bool:
    """``os.environ`` (or ``environ`` imported from os)."""
    if isinstance(node, ast.Attribute):
        return node.attr == "environ" and isinstance(node.value, ast.Name) and node.value.id == "os"
    return isinstance(node, ast.Name) and node.id in environ_names


def _mentions_os_environ(node: ast.AST, environ_names: Set[str]) -> bool:
    return any(_is_os_environ(sub, environ_names) for sub in ast.walk(node))


def _str(node: Optional[ast.AST]) -> Optional[str]:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def env_reads(tree: ast.Module) -> Set[str]:
    """Environment variable names a module reads, found syntactically.

    Counted: ``os.getenv("X")``, ``os.environ.get/setdefault/pop("X")``, ``os.environ["X"]``;
    the same on a name bound to ``os.environ`` in the same function (``env = os.environ if …``);
    ``.get("X")``/``["X"]`` on a name called ``env``; and any such lookup of a ``CI_CALLBACK_*``
    literal. Other mappings called ``environ`` (WSGI environs) are not environment reads.
    """
    environ_names: Set[str] = set()
    getenv_names: Set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "os":
            for alias in node.names:
                if alias.name == "environ":
                    environ_names.add(alias.asname or alias.name)
                elif alias.name == "getenv":
                    getenv_names.add(alias.asname or alias.name)

    # Names bound to os.environ anywhere in the module (``env = os.environ if environ is None else environ``).
    # Module-wide rather than per function: a slight over-approximation, on the safe side.
    aliases = set(environ_names)
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and _mentions_os_environ(node.value, environ_names):
            aliases.update(t.id for t in node.targets if isinstance(t, ast.Name))

    found: Set[str] = set()
    for node in ast.walk(tree):
        key: Optional[str] = None
        holder: Optional[ast.AST] = None
        if isinstance(node, ast.Call):
            func = node.func
            if (isinstance(func, ast.Attribute) and func.attr == "getenv" and isinstance(func.value, ast.Name)
                    and func.value.id == "os") or (isinstance(func, ast.Name) and func.id in getenv_names):
                key = _str(node.args[0]) if node.args else None
                if key:
                    found.add(key)
                continue
            if isinstance(func, ast.Attribute) and func.attr in ("get", "setdefault", "pop") and node.args:
                key, holder = _str(node.args[0]), func.value
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load):
            key, holder = _str(node.slice), node.value  # Python ≥ 3.9: the slice is the key expression
        if key is None or holder is None:
            continue
        if (_is_os_environ(holder, environ_names)
                or (isinstance(holder, ast.Name) and (holder.id in aliases or holder.id == "env"))
                or key.startswith(PROJECT_PREFIX)):
            found.add(key)
    return {name for name in found if ENV_KEY_RE.match(name)}


def _defines(tree: ast.Module, name: str) -> Optional[ast.AST]:
    """The top-level statement that binds ``name`` in a module, if any."""
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name:
            return node
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return node
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                if (alias.asname or alias.name) == name:
                    return node
    return None


# --------------------------------------------------------------------------- checks


def _src_dir(root: Path, inputs: Mapping[str, Any]) -> Tuple[Optional[Path], List[str]]:
    src = inputs.get("src")
    excludes: List[str] = []
    if isinstance(src, dict):
        excludes = [str(e) for e in src.get("exclude") or []]
        src = src.get("src")
    if not isinstance(src, str) or not src:
        return None, excludes
    return (root / src).resolve(), excludes


def _check_function(root: Path, config: Mapping[str, Any], problems: List[str]) -> Tuple[Optional[str], Optional[Path]]:
    where = "serverless.yml"
    if config.get("component") != "scf":
        problems.append(f"{where}: component is {config.get('component')!r}, expected 'scf'")
    if not config.get("name"):
        problems.append(f"{where}: the instance 'name' is missing (the CLI refuses to deploy)")
    inputs = config.get("inputs")
    if not isinstance(inputs, dict):
        problems.append(f"{where}: 'inputs' is missing")
        return None, None

    runtime = inputs.get("runtime")
    if runtime not in ALLOWED_RUNTIMES:
        problems.append(f"{where}: inputs.runtime {runtime!r} is not one of {', '.join(ALLOWED_RUNTIMES)} "
                        "(without it the component defaults to Nodejs10.15)")

    memory = inputs.get("memorySize", 128)
    if not isinstance(memory, int) or isinstance(memory, bool) or not allowed_memory(memory):
        problems.append(f"{where}: inputs.memorySize {memory!r} MB is invalid: 64, or 128–3072 in steps of 128")
    timeout = inputs.get("timeout", 3)
    if not isinstance(timeout, int) or isinstance(timeout, bool) or not 1 <= timeout <= 900:
        problems.append(f"{where}: inputs.timeout {timeout!r} s is out of range 1–900")
        timeout = None
    if "initTimeout" in inputs:
        init = inputs["initTimeout"]
        if not isinstance(init, int) or isinstance(init, bool) or not 3 <= init <= 300:
            problems.append(f"{where}: inputs.initTimeout {init!r} s is out of range 3–300")

    handler = inputs.get("handler", HANDLER)
    if handler != HANDLER:
        problems.append(f"{where}: inputs.handler is {handler!r}, expected {HANDLER!r}")
    src, excludes = _src_dir(root, inputs)
    if src is None:
        problems.append(f"{where}: inputs.src names no local directory (expected ./handler)")
    else:
        _check_entry(src, excludes, problems)

    _check_environment(root, src, inputs.get("environment"), problems)
    _check_triggers(inputs.get("events"), timeout, problems)
    return runtime if isinstance(runtime, str) else None, src


def _check_entry(src: Path, excludes: Iterable[str], problems: List[str]) -> None:
    module, _, func = HANDLER.partition(".")
    entry = src / f"{module}.py"
    if not entry.is_file():
        problems.append(f"serverless.yml: handler {HANDLER} needs {entry}, which does not exist")
        return
    if any(e.strip("/*") in (entry.name, "") for e in excludes):
        problems.append(f"serverless.yml: inputs.src.exclude drops {entry.name}")
    tree = _parse(entry)
    if tree is None:
        problems.append(f"{entry}: does not parse")
        return
    node = _defines(tree, func)
    if node is None:
        problems.append(f"{entry}: defines no {func} (the function SCF calls)")
        return
    if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        # `from ci_callback.app import main_handler`: follow it once, inside the code package.
        target = src.joinpath(*node.module.split("."))
        path = target.with_suffix(".py") if target.with_suffix(".py").is_file() else target / "__init__.py"
        if not path.is_file():
            problems.append(f"{entry}: imports {func} from {node.module}, which is not under {src}")
            return
        imported = _parse(path)
        original = next(a.name for a in node.names if (a.asname or a.name) == func)
        if imported is None or _defines(imported, original) is None:
            problems.append(f"{path}: defines no {original} (imported by {entry.name})")


def _check_environment(root: Path, src: Optional[Path], environment: Any, problems: List[str]) -> None:
    where = "serverless.yml: inputs.environment.variables"
    variables = environment.get("variables") if isinstance(environment, dict) else None
    if variables is None:
        variables = {}
    if not isinstance(variables, dict):
        problems.append(f"{where} is not a mapping")
        return

    total = 0
    for key, value in variables.items():
        key = str(key)
        text = "" if value is None else str(value)
        total += len(key) + len(text)
        if not ENV_KEY_RE.match(key):
            problems.append(f"{where}: {key!r} is not a valid name (a letter, then letters, digits, _)")
        if key.upper().startswith(RESERVED_PREFIXES):
            problems.append(f"{where}: {key} uses a reserved prefix ({', '.join(RESERVED_PREFIXES)})")
        if (key == "CI_CALLBACK_TOKENS" or SECRET_NAME_RE.search(key)) and not ENV_REF_RE.match(text):
            problems.append(f"{where}: {key} must be a ${{env:…}} reference, not a literal (secrets stay out of git)")
    if total > ENV_LIMIT_BYTES:
        problems.append(f"{where}: {total} bytes of names and values, over SCF's {ENV_LIMIT_BYTES}-byte limit")

    package = (src or root / "handler") / "ci_callback"
    known = read_env_vars(package / "settings.py")
    if known is None:
        problems.append(f"{package / 'settings.py'}: no literal ENV_VARS dict to check the variables against")
        return
    for name in sorted(set(known) - PLATFORM_VARS - set(variables)):
        problems.append(f"{where}: {name} is read by the code (settings.ENV_VARS) but not declared")
    for name in sorted(k for k in map(str, variables) if k.startswith(PROJECT_PREFIX) and k not in known):
        problems.append(f"{where}: {name} is declared but the code does not know it (not in settings.ENV_VARS)")
    for path in sorted(package.rglob("*.py")) + [p for p in [(src or root / "handler") / "index.py"] if p.is_file()]:
        tree = _parse(path)
        if tree is None:
            problems.append(f"{path}: does not parse")
            continue
        for name in sorted(env_reads(tree) - set(known) - PLATFORM_VARS):
            problems.append(f"{path.relative_to(root) if root in path.parents else path}: reads environment "
                            f"variable {name}, which settings.ENV_VARS does not list")


def _check_triggers(events: Any, timeout: Optional[int], problems: List[str]) -> None:
    where = "serverless.yml: inputs.events"
    apigw = [e["apigw"] for e in events or [] if isinstance(e, dict) and isinstance(e.get("apigw"), dict)]
    if not apigw:
        problems.append(f"{where}: no apigw trigger (CI needs an HTTPS URL to call back)")
        return
    good = False
    for trigger in apigw:
        params = trigger.get("parameters") or {}
        for endpoint in params.get("endpoints") or []:
            if not isinstance(endpoint, dict):
                continue
            method = str(endpoint.get("method", "")).upper()
            if method not in ("POST", "ANY"):
                continue
            function = endpoint.get("function") or {}
            if function.get("isIntegratedResponse") is not True:
                problems.append(f"{where}: apigw {method} {endpoint.get('path')} lacks function.isIntegratedResponse: true "
                                "(the gateway would send the handler's dict as a JSON body with status 200)")
                continue
            if method == "POST":
                good = True
            service_timeout = endpoint.get("serviceTimeout", DEFAULT_SERVICE_TIMEOUT)
            if timeout is not None and isinstance(service_timeout, int) and service_timeout >= timeout:
                problems.append(f"{where}: apigw serviceTimeout {service_timeout} s ≥ function timeout {timeout} s: "
                                "a timed-out invocation reaches CI as HTTP 200 and is never retried; "
                                "keep the gateway timeout below the function's")
    if not good:
        problems.append(f"{where}: no apigw POST endpoint with function.isIntegratedResponse: true")


def _check_layers(root: Path, function: Mapping[str, Any], runtime: Optional[str], problems: List[str]) -> None:
    where = "serverless.yml: inputs.layers"
    inputs = function.get("inputs") if isinstance(function.get("inputs"), dict) else {}
    refs = inputs.get("layers") or []
    layer = _load_yaml(root / "layers" / "serverless.yml", problems)
    if layer is None:
        return
    lwhere = "layers/serverless.yml"
    if layer.get("component") != "layer":
        problems.append(f"{lwhere}: component is {layer.get('component')!r}, expected 'layer'")
    linputs = layer.get("inputs") if isinstance(layer.get("inputs"), dict) else {}
    layer_name = linputs.get("name")
    if not isinstance(layer_name, str) or not LAYER_NAME_RE.match(layer_name):
        problems.append(f"{lwhere}: inputs.name {layer_name!r} does not match {LAYER_NAME_RE.pattern}")
    runtimes = linputs.get("runtimes") or []
    if runtime and runtime not in runtimes:
        problems.append(f"{lwhere}: inputs.runtimes {runtimes} does not include the function's {runtime}")
    if not linputs.get("src"):
        problems.append(f"{lwhere}: inputs.src is missing")
    if linputs.get("region") != inputs.get("region", "ap-guangzhou"):
        problems.append(f"{lwhere}: region {linputs.get('region')!r} differs from the function's "
                        f"{inputs.get('region', 'ap-guangzhou')!r} (layers are regional)")

    if not isinstance(refs, list) or not refs:
        problems.append(f"{where}: no layer bound; Python ≥ 3.7 runtimes ship no third-party packages")
        return
    if len(refs) > 5:
        problems.append(f"{where}: {len(refs)} layers, SCF binds at most 5")
    instance = layer.get("name")
    app = function.get("app") or function.get("name")
    layer_app = layer.get("app") or layer.get("name")
    matched = False
    before = len(problems)
    for ref in refs:
        if not isinstance(ref, dict) or "name" not in ref or "version" not in ref:
            problems.append(f"{where}: {ref!r} needs both name and version")
            continue
        name, version = str(ref["name"]), ref["version"]
        output = OUTPUT_REF_RE.match(name)
        if output:
            if output["instance"] != instance or output["key"] != "name":
                problems.append(f"{where}: {name} names instance {output['instance']!r}.{output['key']}, "
                                f"but layers/serverless.yml is instance {instance!r} (…:{instance}.name)")
                continue
            if app != layer_app:
                problems.append(f"{where}: ${{app}} is {app!r} here but {layer_app!r} in {lwhere}: the output "
                                "reference cannot resolve across apps")
                continue
            if function.get("stage") != layer.get("stage"):
                problems.append(f"{where}: stage {function.get('stage')!r} here but {layer.get('stage')!r} in {lwhere}")
            vout = OUTPUT_REF_RE.match(str(version))
            if not (vout and vout["instance"] == instance and vout["key"] == "version") and not (
                    isinstance(version, int) and not isinstance(version, bool) and version >= 1):
                problems.append(f"{where}: version {version!r} should be ${{output:${{stage}}:${{app}}:{instance}.version}}")
                continue
            matched = True
        elif name == layer_name:
            if not (isinstance(version, int) and not isinstance(version, bool) and version >= 1):
                problems.append(f"{where}: layer {name} version {version!r} is not a positive integer")
                continue
            matched = True
        else:
            problems.append(f"{where}: layer {name!r} is neither {lwhere}'s inputs.name {layer_name!r} nor "
                            f"${{output:${{stage}}:${{app}}:{instance}.name}}")
    if not matched and len(problems) == before:
        problems.append(f"{where}: none of the bound layers is the one layers/serverless.yml builds")


def check(root: Path) -> List[str]:
    """Every problem found in ROOT's serverless.yml and layers/serverless.yml (empty: deployable)."""
    root = Path(root).resolve()
    problems: List[str] = []
    function = _load_yaml(root / "serverless.yml", problems)
    if function is None:
        return problems
    runtime, _src = _check_function(root, function, problems)
    _check_layers(root, function, runtime, problems)
    return problems


def find_root(start: Optional[Path] = None) -> Path:
    """The nearest directory at or above START (default: cwd) holding serverless.yml, else the checkout."""
    here = Path(start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / "serverless.yml").is_file() and (candidate / "layers" / "serverless.yml").is_file():
            return candidate
    return Path(__file__).resolve().parents[2]


def main(root: Optional[Path] = None) -> int:
    """Print one line per problem; 0 when deployable, 1 otherwise."""
    root = Path(root).resolve() if root is not None else find_root()
    problems = check(root)
    for problem in problems:
        print(f"check-deploy: {problem}")
    if problems:
        print(f"check-deploy: {len(problems)} problem(s) in {root}")
        return 1
    print(f"check-deploy: OK: {root / 'serverless.yml'} and layers/serverless.yml are deployable")
    return 0


if __name__ == "__main__":  # pragma: no cover - `python -m ci_callback_dev.deploycheck [ROOT]`
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else None))
