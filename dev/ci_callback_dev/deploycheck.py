"""``ci-callback check-deploy``: validate what ``scf deploy`` would send, computed by the real tools.

``dev/deploy-check/resolve.js`` runs, offline and pinned, the Serverless CLI's own config loader
(``@serverless/components`` ``src/cli/commands-cn/utils.js`` ``loadInstanceConfig``: the ``.env``
search, ``${env:…}``, ``--stage``) and ``tencent-component-toolkit``'s ``formatInputs`` for the
function and each trigger. This module checks the resulting SCF API parameters:

* org, stage, app and instance name present (the platform's ``validateAndFormat``);
* ``Runtime`` one of ``SUPPORTED_RUNTIMES``; ``MemorySize``, ``Timeout``, ``InitTimeout`` in range;
* the resolved ``Environment`` ≤ 4 KB in UTF-8 bytes; every setting the code reads declared;
  no secret written as a literal; values the settings parser refuses;
* one ``http`` trigger (Function URL) whose ``TriggerDesc`` has ``AuthType NONE`` and extranet on;
* the layer reference: the ``layers/`` instance of the same app, stage and region, whose runtimes
  include the function's.

``preflight`` (run by ``make deploy`` first) refuses, in one line, a deploy that would wipe a
setting; ``record`` remembers, after a deploy, which settings were deployed non-empty.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

# SCF's Python runtimes, each with where it is documented. The SCF API's CreateFunction.Runtime
# ("目前支持的运行环境") as shipped in tencentcloud-sdk-python-scf 3.1.100
# tencentcloud/scf/v20180416/models.py (CreateFunctionRequest, lines 1405-1411), and the runtime
# page doc 583/40323 (Python 3.10, 3.9, 3.7, 3.6, 2.7).
_SDK = "tencentcloud-sdk-python-scf 3.1.100 models.py CreateFunctionRequest.Runtime"
DOCUMENTED_RUNTIMES: dict[str, str] = {
    "Python3.10": f"{_SDK}; doc 583/40323",
    "Python3.9": f"{_SDK}; doc 583/40323",
    "Python3.7": f"{_SDK}; doc 583/40323",
    "Python3.6": f"{_SDK}; doc 583/40323",
    "Python2.7": f"{_SDK}; doc 583/40323",
}
# What this project deploys: the code needs Python >= 3.10 (pyproject requires-python); 3.9 is past
# end of life. Python3.11+ is not in DOCUMENTED_RUNTIMES: no SCF API evidence (CloudBase only).
SUPPORTED_RUNTIMES: tuple[str, ...] = ("Python3.10",)
HANDLER = "index.main_handler"
ENV_LIMIT_BYTES = 4 * 1024  # doc 583/11637: all variables, resolved, in bytes
ENV_KEY_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
RESERVED_PREFIXES: tuple[str, ...] = ("SCF_", "QCLOUD_", "TENCENTCLOUD_")
ENV_REF_RE = re.compile(r"^\$\{env:[A-Za-z_][A-Za-z0-9_]*\}$")
OUTPUT_REF_RE = re.compile(r"^\$\{output:\$\{stage\}:\$\{app\}:(?P<instance>[^.}]+)\.(?P<key>\w+)\}$")
SECRET_NAME_RE = re.compile(r"(TOKEN|SECRET|PASSWORD|PASSWD|PRIVATE_KEY)", re.I)
PROJECT_PREFIX = "CI_CALLBACK_"
REQUIRED_SETTINGS: tuple[str, ...] = ("CI_CALLBACK_TOKENS",)  # without it every callback is a 403
# Set by SCF itself: the code may read them without declaring them.
PLATFORM_VARS: set[str] = {"TENCENTCLOUD_SECRETID", "TENCENTCLOUD_SECRETKEY", "TENCENTCLOUD_SESSIONTOKEN",
                           "TENCENTCLOUD_REGION", "SCF_FUNCTIONNAME", "SCF_NAMESPACE"}
DEFAULT_STAGE = "dev"
STATE_DIR = ".deploy"  # git-ignored: names deployed non-empty, per stage


def allowed_memory(value: Any) -> bool:
    """64, or 128–3072 in steps of 128 (doc 583/11637)."""
    return isinstance(value, int) and not isinstance(value, bool) and (
        value == 64 or (128 <= value <= 3072 and value % 128 == 0))


def _int_in(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


# --------------------------------------------------------------------------- running the real tools


class ToolMissing(Exception):
    """node or the pinned npm packages are not installed."""


def project_root() -> Path:
    here = Path(__file__).resolve()
    for candidate in here.parents:
        if (candidate / "dev" / "deploy-check" / "resolve.js").is_file():
            return candidate
    return Path.cwd()


def tool_missing(root: Path) -> str | None:
    """Why resolve.js cannot run here, or None."""
    if shutil.which("node") is None:
        return "node is not installed (check-deploy runs the Serverless loader from dev/deploy-check)"
    if not (root / "dev" / "deploy-check" / "node_modules" / "@serverless" / "components").is_dir():
        return "dev/deploy-check/node_modules is missing: run `npm ci --prefix dev/deploy-check` (make does)"
    return None


def resolve(root: Path, stage: str, environ: Mapping[str, str] | None = None,
            tools: Path | None = None) -> dict[str, Any]:
    """resolve.js's JSON for ROOT (the function) and ROOT/layers, as ``scf deploy --stage STAGE`` sees them."""
    tools = tools or project_root()
    why = tool_missing(tools)
    if why:
        raise ToolMissing(why)
    env = dict(os.environ if environ is None else environ)
    proc = subprocess.run(["node", str(tools / "dev" / "deploy-check" / "resolve.js"), "--stage", stage,
                           str(root), str(root / "layers")],
                          cwd=root, env=env, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"resolve.js failed: {proc.stderr.strip()[-2000:]}")
    return json.loads(proc.stdout)


# --------------------------------------------------------------------------- the code side


def known_settings() -> dict[str, str]:
    from ci_callback.settings import ENV_VARS  # the package is installed (-e .)

    return dict(ENV_VARS)


def settings_problems(environ: Mapping[str, str]) -> list[str]:
    """What the runtime refuses in these values: its own validation when it has one."""
    from ci_callback import settings

    validate = getattr(settings, "problems", None)
    if callable(validate):
        return [str(p) for p in validate(dict(environ))]
    try:  # older runtime: from_env is all there is
        settings.Settings.from_env(dict(environ))
    except Exception as exc:  # any refusal is a problem to report
        return [f"settings: {exc}"]
    return []


def _is_os_environ(node: ast.AST, environ_names: set[str]) -> bool:
    if isinstance(node, ast.Attribute):
        return node.attr == "environ" and isinstance(node.value, ast.Name) and node.value.id == "os"
    return isinstance(node, ast.Name) and node.id in environ_names


def _str(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def env_reads(tree: ast.Module) -> set[str]:
    """Environment variable names a module reads, found syntactically.

    ``os.getenv("X")``, ``os.environ.get/setdefault/pop("X")``, ``os.environ["X"]``, the same on a
    name bound to ``os.environ`` or called ``env``, and any lookup of a ``CI_CALLBACK_*`` literal.
    Other mappings called ``environ`` (WSGI environs) are not environment reads.
    """
    environ_names: set[str] = set()
    getenv_names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "os":
            for alias in node.names:
                if alias.name == "environ":
                    environ_names.add(alias.asname or alias.name)
                elif alias.name == "getenv":
                    getenv_names.add(alias.asname or alias.name)
    aliases = set(environ_names)
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(_is_os_environ(s, environ_names) for s in ast.walk(node.value)):
            aliases.update(t.id for t in node.targets if isinstance(t, ast.Name))
    found: set[str] = set()
    for node in ast.walk(tree):
        key: str | None = None
        holder: ast.AST | None = None
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
            key, holder = _str(node.slice), node.value
        if key is None or holder is None:
            continue
        if (_is_os_environ(holder, environ_names)
                or (isinstance(holder, ast.Name) and (holder.id in aliases or holder.id == "env"))
                or key.startswith(PROJECT_PREFIX)):
            found.add(key)
    return {name for name in found if ENV_KEY_RE.match(name)}


def _defines(tree: ast.Module, name: str) -> bool:
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name:
            return True
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return True
        if isinstance(node, (ast.Import, ast.ImportFrom)) and any((a.asname or a.name) == name for a in node.names):
            return True
    return False


def _parse(path: Path) -> ast.Module | None:
    try:
        return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (OSError, SyntaxError, ValueError):
        return None


# --------------------------------------------------------------------------- checks


def _instances(resolved: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    items = list(resolved.get("instances") or [])
    function = items[0] if items else {}
    layer = items[1] if len(items) > 1 else {}
    return function, layer


def platform_name(text: str, config: Mapping[str, Any]) -> str:
    """``${stage}``/``${app}``/``${org}``/``${name}``, which the platform resolves at deploy time."""
    for key in ("stage", "app", "org", "name"):
        text = text.replace("${" + key + "}", str(config.get(key, "")))
    return text


def _check_instance(where: str, instance: Mapping[str, Any], component: str, problems: list[str]) -> bool:
    if instance.get("error"):
        problems.append(f"{where}: the Serverless loader refused it: {instance['error']}")
        return False
    config = instance.get("config") or {}
    if config.get("component") != component:
        problems.append(f"{where}: component is {config.get('component')!r}, expected {component!r}")
    # @serverless/platform-client-china src/instance.js validateAndFormat (not exported): all four required.
    missing = [k for k in ("org", "stage", "app", "name") if not config.get(k)]
    if missing:
        problems.append(f"{where}: {', '.join(missing)} missing after resolution; the platform refuses it "
                        "('orgName' 'stageName' 'appName' 和 'instanceName' 是必填项); pass --stage")
    return True


def _check_function(root: Path, instance: Mapping[str, Any], problems: list[str]) -> None:
    where = "serverless.yml"
    if instance.get("requestsError"):
        problems.append(f"{where}: the toolkit's formatInputs failed: {instance['requestsError']}")
        return
    request = (instance.get("requests") or {}).get("function") or {}
    runtime = request.get("Runtime")
    if runtime not in SUPPORTED_RUNTIMES:
        known = "documented by SCF, but not supported here" if runtime in DOCUMENTED_RUNTIMES else \
            "not in SCF's documented Runtime list"
        problems.append(f"{where}: Runtime {runtime!r} is {known}; use {', '.join(SUPPORTED_RUNTIMES)}")
    if not allowed_memory(request.get("MemorySize")):
        problems.append(f"{where}: MemorySize {request.get('MemorySize')!r} MB: 64, or 128–3072 in steps of 128")
    if not _int_in(request.get("Timeout"), 1, 900):
        problems.append(f"{where}: Timeout {request.get('Timeout')!r} s is out of range 1–900")
    # initTimeout 3–300: serverless-components/tencent-types scf@0.0.4.yml (the platform's rule file).
    if "InitTimeout" in request and not _int_in(request["InitTimeout"], 3, 300):
        problems.append(f"{where}: InitTimeout {request['InitTimeout']!r} s is out of range 3–300")
    if request.get("Handler") != HANDLER:
        problems.append(f"{where}: Handler is {request.get('Handler')!r}, expected {HANDLER!r}")
    inputs = (instance.get("config") or {}).get("inputs") or {}
    src = inputs.get("src")
    src_dir = Path(src.get("src") if isinstance(src, dict) else src or root / "handler")
    entry = src_dir / "index.py"
    tree = _parse(entry)
    if tree is None:
        problems.append(f"{where}: {entry} is missing or does not parse")
    elif not _defines(tree, HANDLER.split(".")[1]):
        problems.append(f"{where}: {entry} defines no {HANDLER.split('.')[1]}")
    _check_environment(instance, request, src_dir, problems)
    _check_triggers(instance, problems)


def _check_environment(instance: Mapping[str, Any], request: Mapping[str, Any], src_dir: Path,
                       problems: list[str]) -> None:
    where = "serverless.yml: environment.variables"
    declared = {str(k): v for k, v in (instance.get("declared") or {}).items()}
    variables = {str(v.get("Key")): str(v.get("Value", ""))
                 for v in ((request.get("Environment") or {}).get("Variables") or [])}
    size = sum(len(k.encode("utf-8")) + len(v.encode("utf-8")) for k, v in variables.items())
    if size > ENV_LIMIT_BYTES:
        problems.append(f"{where}: {size} bytes once resolved, over SCF's {ENV_LIMIT_BYTES}-byte limit")
    for key, value in declared.items():
        if not ENV_KEY_RE.match(key):
            problems.append(f"{where}: {key!r} is not a valid name (a letter, then letters, digits, _)")
        if key.upper().startswith(RESERVED_PREFIXES):
            problems.append(f"{where}: {key} uses a reserved prefix ({', '.join(RESERVED_PREFIXES)})")
        if (key in REQUIRED_SETTINGS or SECRET_NAME_RE.search(key)) and not (
                isinstance(value, str) and ENV_REF_RE.match(value)):
            problems.append(f"{where}: {key} must be a ${{env:…}} reference, not a literal (secrets stay out of git)")
    known = known_settings()
    for name in sorted(set(known) - PLATFORM_VARS - set(declared)):
        problems.append(f"{where}: {name} is read by the code (settings.ENV_VARS) but not declared")
    for name in sorted(k for k in declared if k.startswith(PROJECT_PREFIX) and k not in known):
        problems.append(f"{where}: {name} is declared but the code does not know it (not in settings.ENV_VARS)")
    for path in sorted(src_dir.rglob("*.py")):
        tree = _parse(path)
        for name in sorted((env_reads(tree) if tree else set()) - set(known) - PLATFORM_VARS):
            problems.append(f"{path.relative_to(src_dir)}: reads environment variable {name}, "
                            "which settings.ENV_VARS does not list")
    problems.extend(f"{where}: {p}" for p in settings_problems(variables))


def _check_triggers(instance: Mapping[str, Any], problems: list[str]) -> None:
    where = "serverless.yml: events"
    triggers = (instance.get("requests") or {}).get("triggers") or []
    for trigger in triggers:
        if trigger.get("type") == "apigw":
            problems.append(f"{where}: apigw: SCF creates no API Gateway triggers since 2024-07-01 and API "
                            "Gateway is shutting down (doc 583/107631); use the http trigger (Function URL)")
        elif trigger.get("error"):
            problems.append(f"{where}: {trigger.get('type')}: {trigger['error']}")
        elif trigger.get("type") == "timer" and not (trigger.get("request") or {}).get("TriggerDesc"):
            # CreateTrigger needs the cron; the toolkit passes an unset one through (triggers/timer.js).
            problems.append(f"{where}: timer {(trigger.get('request') or {}).get('TriggerName')}: no cronExpression; "
                            "write one in serverless.yml (7 fields, seconds first: 0 */30 * * * * *)")
        elif trigger.get("type") == "cmq" and not (trigger.get("request") or {}).get("TriggerName"):
            problems.append(f"{where}: cmq: no topic name; set CI_CALLBACK_CMQ_TOPIC")
    _check_trigger_switches(instance, triggers, problems)
    urls = [t["request"] for t in triggers if t.get("type") == "http" and t.get("request")]
    if len(urls) != 1:
        problems.append(f"{where}: {len(urls)} http triggers; CI needs exactly one Function URL to call back")
        return
    try:
        desc = json.loads(urls[0].get("TriggerDesc") or "")
    except ValueError:
        problems.append(f"{where}: http TriggerDesc is not JSON: {urls[0].get('TriggerDesc')!r}")
        return
    if desc.get("AuthType") != "NONE":
        problems.append(f"{where}: http authType {desc.get('AuthType')!r}: CI cannot sign requests; use NONE "
                        "(the ?token= in the URL authenticates)")
    if (desc.get("NetConfig") or {}).get("EnableExtranet") is not True:
        problems.append(f"{where}: http netConfig.enableExtranet is not true: CI calls from the internet "
                        "(it defaults to false, toolkit triggers/http.js)")
    if urls[0].get("Enable") != "OPEN":
        problems.append(f"{where}: http trigger is disabled (enable: false)")


def _check_trigger_switches(instance: Mapping[str, Any], triggers: list[Mapping[str, Any]],
                            problems: list[str]) -> None:
    """No trigger setting may be silently ignored or silently mean its opposite."""
    where = "serverless.yml: events"
    events = ((instance.get("config") or {}).get("inputs") or {}).get("events") or []
    kinds = set()
    for event in events:
        for kind, body in (event or {}).items():
            kinds.add(kind)
            enable = ((body or {}).get("parameters") or {}).get("enable")
            # The toolkit opens a trigger for any truthy value, "false" included (triggers/timer.js,
            # cmq.js: `parameters.enable ? 'OPEN' : 'CLOSE'`).
            if enable is not None and str(enable).strip().lower() != "true":
                problems.append(f"{where}: {kind}: enable is {enable!r}, which the toolkit reads as on; "
                                "set it to true, or leave the setting unset for off")
    request = (instance.get("requests") or {}).get("function") or {}
    env = {str(v["Key"]) for v in (request.get("Environment") or {}).get("Variables") or [] if v.get("Value")}
    for trigger in triggers:
        req = trigger.get("request") or {}
        if (trigger.get("type") == "timer" and req.get("Enable") == "OPEN" and not req.get("CustomArgument")
                and "CI_CALLBACK_RECONCILE_SPEC" not in env):
            problems.append(f"{where}: timer {req.get('TriggerName')}: on, but no sweep spec; "
                            "set CI_CALLBACK_RECONCILE_SPEC")
        if trigger.get("type") == "timer" and req.get("Enable") == "OPEN":
            problem = sweep_time_problem(request.get("Timeout"))
            if problem:
                problems.append(f"{where}: timer {req.get('TriggerName')}: {problem}")
    wanted_cmq = "CI_CALLBACK_CMQ_TOPIC" in set(instance.get("envFileKeys") or []) or bool(
        os.environ.get("CI_CALLBACK_CMQ_TOPIC", "").strip())
    if wanted_cmq and "cmq" not in kinds:
        problems.append(f"{where}: CI_CALLBACK_CMQ_TOPIC is set but serverless.yml has no cmq trigger; "
                        "uncomment its block")


def sweep_time_problem(timeout: Any) -> str | None:
    """Why a sweep under a function timeout of TIMEOUT seconds could list nothing, or None.

    Each invocation answers by its deadline (budget.deadline_of) and starts nothing within the
    sweep's reserve of it; with no time between, every tick is a no-op (it does not chain)."""
    from ci_callback.budget import MARGIN_S, deadline_of
    from ci_callback.reconcile.run import RESERVE_SECONDS

    if not isinstance(timeout, (int, float)) or isinstance(timeout, bool):
        return None  # the Timeout range check reports it
    usable = deadline_of({"time_limit_in_ms": timeout * 1000}, 0.0) or 0.0
    if usable > RESERVE_SECONDS:
        return None
    return (f"on, but the function timeout of {timeout} s leaves the sweep no time after its "
            f"{RESERVE_SECONDS:g} s reserve; set timeout above {RESERVE_SECONDS + MARGIN_S:g} s")


def _check_layer(function: Mapping[str, Any], layer: Mapping[str, Any], problems: list[str]) -> None:
    where = "serverless.yml: layers"
    fconfig, lconfig = function.get("config") or {}, layer.get("config") or {}
    finputs, linputs = fconfig.get("inputs") or {}, lconfig.get("inputs") or {}
    runtime = ((function.get("requests") or {}).get("function") or {}).get("Runtime")
    if runtime and runtime not in (linputs.get("runtimes") or []):
        problems.append(f"layers/serverless.yml: runtimes {linputs.get('runtimes')} do not include the "
                        f"function's {runtime}")
    if linputs.get("region") != finputs.get("region"):
        problems.append(f"layers/serverless.yml: region {linputs.get('region')!r} differs from the function's "
                        f"{finputs.get('region')!r} (layers are regional)")
    refs = finputs.get("layers") or []
    if not refs:
        problems.append(f"{where}: no layer bound; Python ≥ 3.7 runtimes ship no third-party packages")
        return
    for ref in refs:
        name = OUTPUT_REF_RE.match(str((ref or {}).get("name")))
        version = OUTPUT_REF_RE.match(str((ref or {}).get("version")))
        if not (name and version and name["key"] == "name" and version["key"] == "version"):
            problems.append(f"{where}: {ref!r} should be ${{output:${{stage}}:${{app}}:<layer instance>.name}} "
                            "and .version, so each deploy binds the layer version just deployed")
        elif name["instance"] != lconfig.get("name") or version["instance"] != lconfig.get("name"):
            problems.append(f"{where}: {ref!r} names instance {name['instance']!r}, but layers/serverless.yml "
                            f"is instance {lconfig.get('name')!r}")
        elif (fconfig.get("app"), fconfig.get("stage")) != (lconfig.get("app"), lconfig.get("stage")):
            problems.append(f"{where}: app/stage {fconfig.get('app')}/{fconfig.get('stage')} here but "
                            f"{lconfig.get('app')}/{lconfig.get('stage')} in layers/serverless.yml: "
                            "the ${output:…} reference cannot resolve")


def check(resolved: Mapping[str, Any], root: Path) -> list[str]:
    """Every problem in RESOLVED (resolve.js's output); empty: deployable."""
    problems: list[str] = []
    function, layer = _instances(resolved)
    fn_ok = _check_instance("serverless.yml", function, "scf", problems)
    layer_ok = _check_instance("layers/serverless.yml", layer, "layer", problems)
    if fn_ok:
        _check_function(root, function, problems)
    if fn_ok and layer_ok:
        _check_layer(function, layer, problems)
    return problems


# --------------------------------------------------------------------------- output


def _redact(key: str, value: str) -> str:
    if key in REQUIRED_SETTINGS or SECRET_NAME_RE.search(key):
        count = len([t for t in value.split(",") if t.strip()])
        return f"<redacted: {count} value{'s' if count != 1 else ''}>" if value else ""
    return value


def summary(resolved: Mapping[str, Any]) -> dict[str, Any]:
    """The function's CreateFunction/CreateTrigger parameters, secrets redacted, names as deployed."""
    function, layer = _instances(resolved)
    config = function.get("config") or {}
    requests = function.get("requests") or {}
    request = dict(requests.get("function") or {})
    request.pop("Code", None)  # placeholders: the CLI uploads the code zip
    request["FunctionName"] = platform_name(str(request.get("FunctionName", "")), config)
    variables = (request.get("Environment") or {}).get("Variables") or []
    request["Environment"] = {v["Key"]: _redact(v["Key"], v.get("Value", "")) for v in variables}
    request["Layers"] = [{"LayerName": ref.get("LayerName"), "LayerVersion": "<deployed by make deploy>"}
                         for ref in request.get("Layers") or []]
    triggers = []
    for trigger in requests.get("triggers") or []:
        req = dict(trigger.get("request") or {"Type": trigger.get("type"), "error": trigger.get("error")})
        if "FunctionName" in req:
            req["FunctionName"] = platform_name(str(req["FunctionName"]), config)
        triggers.append(req)
    size = sum(len(str(v.get("Key", "")).encode()) + len(str(v.get("Value", "")).encode()) for v in variables)
    unset = sorted(set(function.get("declared") or {}) - set(request["Environment"]))
    return {"stage": config.get("stage"), "app": config.get("app"), "envFile": function.get("envFile"),
            "environmentBytes": f"{size} of {ENV_LIMIT_BYTES}", "unsetSettings (dropped, defaults apply)": unset,
            "function": request, "triggers": triggers,
            "layer": {"name": ((layer.get("config") or {}).get("inputs") or {}).get("name"),
                      "runtimes": ((layer.get("config") or {}).get("inputs") or {}).get("runtimes")}}


# --------------------------------------------------------------------------- deploy guard


def state_path(root: Path, stage: str) -> Path:
    return root / STATE_DIR / f"{stage}.json"


def previously_deployed(root: Path, stage: str) -> set[str]:
    try:
        return set(json.loads(state_path(root, stage).read_text(encoding="utf-8")).get("settings") or [])
    except (OSError, ValueError, AttributeError):
        return set()


def resolved_settings(resolved: Mapping[str, Any]) -> dict[str, str]:
    function, _ = _instances(resolved)
    request = (function.get("requests") or {}).get("function") or {}
    return {str(v["Key"]): str(v.get("Value", "")) for v in (request.get("Environment") or {}).get("Variables") or []}


def wiped_settings(resolved: Mapping[str, Any], root: Path, stage: str) -> list[str]:
    """Settings that must not deploy empty: the token, what .env sets, what was deployed before."""
    function, _ = _instances(resolved)
    wanted = set(REQUIRED_SETTINGS) | set(function.get("envFileKeys") or []) | previously_deployed(root, stage)
    declared = set(function.get("declared") or {})
    values = resolved_settings(resolved)
    return sorted(name for name in wanted & declared if not values.get(name, "").strip())


def role_permissions(resolved: Mapping[str, Any]) -> list[str]:
    """What the execution role must be allowed beyond COS: continuations invoke the function
    itself (``scf:InvokeFunction`` on its own resource), and notify invokes its target."""
    function, _ = _instances(resolved)
    request = (function.get("requests") or {}).get("function") or {}
    name, namespace = request.get("FunctionName") or "<this function>", request.get("Namespace") or "default"
    # ${stage} and ${app} are resolved by the platform, not the loader; say the name it will have.
    config = function.get("config") or {}
    for var, value in (("stage", resolved.get("stage")), ("app", config.get("app")), ("name", config.get("name"))):
        if value:
            name = name.replace("${" + var + "}", str(value))
    role = request.get("Role") or "the execution role"
    targets = [f"{namespace}/{name} (continuations of large jobs)"]
    notify = resolved_settings(resolved).get("CI_CALLBACK_NOTIFY_FUNCTION", "").strip()
    if notify:
        namespace_of_notify = resolved_settings(resolved).get("CI_CALLBACK_NOTIFY_NAMESPACE", "").strip() or "default"
        targets.append(f"{namespace_of_notify}/{notify} (notify)")
    return [f"{role} needs scf:InvokeFunction on {target}" for target in targets]


def preflight(root: Path, stage: str, environ: Mapping[str, str] | None = None) -> tuple[int, list[str]]:
    """(exit code, lines): refuse a deploy that would wipe a setting, then run the full check."""
    try:
        resolved = resolve(root, stage, environ)
    except (ToolMissing, RuntimeError) as exc:
        return 1, [f"make deploy: refusing: {exc}"]
    wiped = wiped_settings(resolved, root, stage)
    if wiped:
        env_file = _instances(resolved)[0].get("envFile")
        where = env_file or ".env (none found)"
        hint = ", `make token` prints a token" if "CI_CALLBACK_TOKENS" in wiped else ""
        return 1, [f"make deploy: refusing: {', '.join(wiped)} would deploy empty; set it in {where}{hint} "
                   "(a deploy replaces the function's whole environment)"]
    problems = check(resolved, root)
    if problems:
        return 1, [f"check-deploy: {p}" for p in problems] + [f"make deploy: refusing: {len(problems)} problem(s)"]
    return 0, []


def record(root: Path, stage: str, environ: Mapping[str, str] | None = None) -> Path:
    """After a deploy: remember the settings deployed non-empty, so the next deploy cannot wipe them."""
    names = sorted(k for k, v in resolved_settings(resolve(root, stage, environ)).items() if v.strip())
    path = state_path(root, stage)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"stage": stage, "settings": names}, indent=2) + "\n", encoding="utf-8")
    return path


# --------------------------------------------------------------------------- command line


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ci-callback check-deploy", description=__doc__.split("\n\n")[0])
    parser.add_argument("action", nargs="?", default="check", choices=("check", "preflight", "record"))
    parser.add_argument("--root", type=Path, default=None, help="project root (default: this checkout)")
    parser.add_argument("--stage", default=os.environ.get("STAGE") or DEFAULT_STAGE)
    args = parser.parse_args(argv)
    root = (args.root or project_root()).resolve()
    if args.action == "preflight":
        code, lines = preflight(root, args.stage)
        for line in lines:
            print(line)
        return code
    if args.action == "record":
        print(f"check-deploy: recorded the deployed settings in {record(root, args.stage)}")
        return 0
    try:
        resolved = resolve(root, args.stage)
    except ToolMissing as exc:
        print(f"check-deploy: cannot run: {exc}")
        return 2
    print(json.dumps(summary(resolved), indent=2, ensure_ascii=False))
    problems = check(resolved, root)
    for problem in problems:
        print(f"check-deploy: {problem}")
    if problems:
        print(f"check-deploy: {len(problems)} problem(s) in {root}")
        return 1
    wiped = wiped_settings(resolved, root, args.stage)
    if wiped:
        print(f"check-deploy: note: `make deploy` would refuse here: empty {', '.join(wiped)}")
    for permission in role_permissions(resolved):
        print(f"check-deploy: note: {permission}")
    print(f"check-deploy: OK: stage {args.stage}, resolved by the Serverless loader and the toolkit's formatInputs")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
