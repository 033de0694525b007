"""Deployment: check-deploy on the real Serverless loader, `make deploy`'s refusals, the layer working.

* ``check-deploy`` resolves the repository with the CLI's own loader and the toolkit's
  ``formatInputs`` (node, from dev/deploy-check; skipped with the reason when absent) and finds
  it deployable: a Function URL, Python3.10, every setting declared; broken copies name each
  mistake;
* ``make deploy`` refuses, in one line and before any ``scf`` call, a deploy whose token (or a
  setting set before) would resolve to nothing;
* ``layers/build.py`` builds the cp310 layer from PyPI (slow); the zips are unpacked into fresh
  directories and a fresh, isolated CPython 3.10 whose sys.path is *only* [layer, code, stdlib]
  runs ``index.main_handler`` on every sample Function URL event.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

yaml = pytest.importorskip("yaml")  # only to write broken copies; the check itself never reads YAML

from ci_callback.settings import ENV_VARS  # noqa: E402
from ci_callback_dev import deploycheck  # noqa: E402 - conftest puts handler/ and dev/ on sys.path

ROOT = Path(__file__).resolve().parents[1]
EVENTS = ROOT / "events"
# What a deploy needs: a token (the reconcile timer is created closed, its cron is in serverless.yml).
TOKEN_ENV = {"CI_CALLBACK_TOKENS": "tok-for-tests"}

NODE_MISSING = deploycheck.tool_missing(ROOT)
needs_node = pytest.mark.skipif(NODE_MISSING is not None, reason=f"check-deploy needs node: {NODE_MISSING}")


def _load_build_module():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("layer_build", ROOT / "layers" / "build.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


build = _load_build_module()


def _clean_env(**extra: str) -> dict[str, str]:
    """A shell with no CI_CALLBACK_* / TENCENT_* set (the developer's own must not leak in)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CI_CALLBACK_", "TENCENT", "STAGE"))}
    env.update(extra)
    return env


def _copy_project(dest: Path) -> Path:
    """What the loader and make read: both YAML files, the code root, the Makefile, dev/."""
    (dest / "layers").mkdir(parents=True)
    for name in ("serverless.yml", "Makefile", "requirements.txt", "requirements-dev.txt", "pyproject.toml"):
        shutil.copy2(ROOT / name, dest / name)
    shutil.copy2(ROOT / "layers" / "serverless.yml", dest / "layers" / "serverless.yml")
    shutil.copy2(ROOT / "layers" / "build.py", dest / "layers" / "build.py")
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "node_modules")
    shutil.copytree(ROOT / "handler", dest / "handler", ignore=ignore)
    # No node_modules in the copy: resolve.js runs from this checkout (deploycheck.project_root).
    shutil.copytree(ROOT / "dev", dest / "dev", ignore=ignore)
    return dest


def _problems(root: Path, stage: str = "dev", **env: str) -> list[str]:
    return deploycheck.check(deploycheck.resolve(root, stage, _clean_env(**{**TOKEN_ENV, **env})), root)


# --------------------------------------------------------------------------- (a) the real repo


@needs_node
def test_repository_resolves_and_is_deployable() -> None:
    resolved = deploycheck.resolve(ROOT, "dev", _clean_env(**TOKEN_ENV))
    assert deploycheck.check(resolved, ROOT) == []
    summary = deploycheck.summary(resolved)
    fn = summary["function"]
    assert fn["Runtime"] == "Python3.10" and fn["FunctionName"] == "ci-callback-dev"
    assert fn["Environment"] == {"CI_CALLBACK_TOKENS": "<redacted: 1 value>"}
    assert "tok-for-tests" not in json.dumps(summary)
    trigger, timer = summary["triggers"]
    assert trigger["Type"] == "http"
    # The sweep's timer: created closed unless CI_CALLBACK_RECONCILE_ENABLE is set.
    assert (timer["Type"], timer["TriggerDesc"], timer["Enable"]) == ("timer", "0 */30 * * * * *", "CLOSE")
    assert json.loads(trigger["TriggerDesc"]) == {"AuthType": "NONE",
                                                  "NetConfig": {"EnableIntranet": False, "EnableExtranet": True}}
    assert fn["Layers"][0]["LayerName"] == "ci-callback-deps"


@needs_node
def test_every_setting_is_declared() -> None:
    function, _ = deploycheck._instances(deploycheck.resolve(ROOT, "dev", _clean_env()))
    assert set(ENV_VARS) - deploycheck.PLATFORM_VARS == set(function["declared"])


@needs_node
def test_main_prints_redacted_config_and_ok(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI_CALLBACK_TOKENS", "secret-a,secret-b")
    assert deploycheck.main(["check", "--root", str(ROOT), "--stage", "dev"]) == 0
    out = capsys.readouterr().out
    assert "secret-a" not in out and "<redacted: 2 values>" in out
    assert out.strip().splitlines()[-1].startswith("check-deploy: OK")


@needs_node
def test_stage_comes_from_the_flag(tmp_path: Path) -> None:
    root = _copy_project(tmp_path / "repo")
    resolved = deploycheck.resolve(root, "prod", _clean_env(**TOKEN_ENV))
    assert deploycheck.summary(resolved)["function"]["FunctionName"] == "ci-callback-prod"
    assert deploycheck.check(resolved, root) == []


# --------------------------------------------------------------------------- (b) broken copies


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return _copy_project(tmp_path / "repo")


def _edit(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


def _fn(change: Callable[[dict[str, Any]], None]) -> Callable[[Path], None]:
    return lambda root: _edit(root / "serverless.yml", change)


def _layer(change: Callable[[dict[str, Any]], None]) -> Callable[[Path], None]:
    return lambda root: _edit(root / "layers" / "serverless.yml", change)


def _inputs(key: str, value: Any) -> Callable[[Path], None]:
    return _fn(lambda d: d["inputs"].__setitem__(key, value))


def _variables(change: Callable[[dict[str, Any]], None]) -> Callable[[Path], None]:
    return _fn(lambda d: change(d["inputs"]["environment"]["variables"]))


def _http(change: Callable[[dict[str, Any]], None]) -> Callable[[Path], None]:
    return _fn(lambda d: change(d["inputs"]["events"][0]["http"]["parameters"]))


def _write_module(text: str) -> Callable[[Path], None]:
    return lambda root: (root / "handler" / "ci_callback" / "extra_env.py").write_text(textwrap.dedent(text))


APIGW = {"apigw": {"parameters": {"serviceName": "ci_callback", "protocols": ["https"], "environment": "release",
                                  "endpoints": [{"path": "/ci-callback", "method": "POST"}]}}}

BROKEN: dict[str, Any] = {
    "memory-100": (_inputs("memorySize", 100), "MemorySize 100"),
    "memory-not-step": (_inputs("memorySize", 200), "MemorySize 200"),
    "memory-too-big": (_inputs("memorySize", 3200), "MemorySize 3200"),
    "timeout-901": (_inputs("timeout", 901), "Timeout 901"),
    "init-timeout-1": (_inputs("initTimeout", 1), "InitTimeout 1"),
    "runtime-py39": (_inputs("runtime", "Python3.9"), "Runtime 'Python3.9' is documented by SCF, but not supported"),
    "runtime-py311": (_inputs("runtime", "Python3.11"), "Runtime 'Python3.11' is not in SCF's documented"),
    "runtime-missing": (_fn(lambda d: d["inputs"].pop("runtime")), "Runtime None"),
    "component": (_fn(lambda d: d.__setitem__("component", "express")), "component is 'express'"),
    "handler-name": (_inputs("handler", "app.handler"), "Handler is 'app.handler'"),
    "handler-not-defined": (lambda root: (root / "handler" / "index.py").write_text("def other(e, c):\n    pass\n"),
                            "defines no main_handler"),
    "token-literal": (_variables(lambda v: v.__setitem__("CI_CALLBACK_TOKENS", "hunter2")),
                      "CI_CALLBACK_TOKENS must be a ${env:…} reference"),
    "secret-literal": (_variables(lambda v: v.__setitem__("UPSTREAM_SECRET", "hunter2")),
                       "UPSTREAM_SECRET must be a ${env:…} reference"),
    "env-var-not-declared": (_variables(lambda v: v.pop("CI_CALLBACK_FANOUT")),
                             "CI_CALLBACK_FANOUT is read by the code (settings.ENV_VARS) but not declared"),
    "env-var-unknown": (_variables(lambda v: v.__setitem__("CI_CALLBACK_BOGUS", "${env:CI_CALLBACK_BOGUS}")),
                        "CI_CALLBACK_BOGUS is declared but the code does not know it"),
    "env-read-unlisted": (_write_module("""
        import os
        def f():
            return os.environ.get("CI_CALLBACK_SECRET_SAUCE"), os.getenv("OTHER_KNOB")
        """), "reads environment variable CI_CALLBACK_SECRET_SAUCE"),
    "env-bad-name": (_variables(lambda v: v.__setitem__("1BAD", "x")), "'1BAD' is not a valid name"),
    "env-reserved": (_variables(lambda v: v.__setitem__("SCF_DEBUG", "1")), "SCF_DEBUG uses a reserved prefix"),
    "layer-wrong-instance": (_fn(lambda d: d["inputs"]["layers"][0].__setitem__(
        "name", "${output:${stage}:${app}:other-layer.name}")), "names instance 'other-layer'"),
    "layer-literal": (_fn(lambda d: d["inputs"]["layers"][0].update(name="ci-callback-deps", version=3)),
                      "so each deploy binds the layer version just deployed"),
    "layer-missing": (_fn(lambda d: d["inputs"].pop("layers")), "no layer bound"),
    "layer-runtime": (_layer(lambda d: d["inputs"].__setitem__("runtimes", ["Python3.9"])),
                      "do not include the function's Python3.10"),
    "layer-region": (_layer(lambda d: d["inputs"].__setitem__("region", "ap-shanghai")), "layers are regional"),
    "apigw-trigger": (_fn(lambda d: d["inputs"].__setitem__("events", [APIGW])), "no API Gateway triggers"),
    "no-trigger": (_fn(lambda d: d["inputs"].pop("events")), "0 http triggers"),
    "http-auth": (_http(lambda p: p.__setitem__("authType", "CAM")), "http authType 'CAM'"),
    "http-intranet-only": (_http(lambda p: p.__setitem__("netConfig", {"enableIntranet": True})),
                           "enableExtranet is not true"),
    "http-disabled": (_http(lambda p: p.__setitem__("enable", False)), "http trigger is disabled"),
}


@needs_node
@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_copy_is_reported(repo: Path, name: str) -> None:
    breaker, expected = BROKEN[name]
    breaker(repo)
    problems = _problems(repo)
    assert any(expected in p for p in problems), f"{expected!r} not in {problems}"


@needs_node
def test_unset_stage_variable_without_the_flag_is_refused(repo: Path) -> None:
    # `stage: ${env:STAGE}` with STAGE unset: the key is dropped, the platform needs stageName.
    _fn(lambda d: d.__setitem__("stage", "${env:STAGE}"))(repo)
    assert any("stage missing after resolution" in p for p in _problems(repo, stage=""))
    assert _problems(repo, stage="dev") == []  # --stage fixes it


@needs_node
def test_layer_inherits_app_and_stage_from_the_parent(repo: Path) -> None:
    # The loader copies app/stage/org from ../serverless.yml (utils.js loadParentConfigFile), so
    # the ${output:${stage}:${app}:…} reference always finds the layer instance.
    _layer(lambda d: d.update(app="another-app", stage="other"))(repo)
    _, layer = deploycheck._instances(deploycheck.resolve(repo, "prod", _clean_env(**TOKEN_ENV)))
    assert (layer["config"]["app"], layer["config"]["stage"]) == ("ci-callback", "prod")


@needs_node
def test_environment_limit_counts_resolved_bytes(repo: Path) -> None:
    # 1,400 three-byte characters: 4,200 bytes resolved, from a 32-character ${env:} reference.
    _variables(lambda v: v.__setitem__("PADDING", "${env:PADDING}"))(repo)
    problems = _problems(repo, PADDING="鹿" * 1400)
    assert any("bytes once resolved, over SCF's 4096-byte limit" in p for p in problems), problems
    assert not [p for p in _problems(repo, PADDING="x" * 1400) if "4096-byte" in p]


@needs_node
def test_env_file_is_loaded_like_the_cli(repo: Path) -> None:
    (repo / ".env").write_text("CI_CALLBACK_TOKENS=from-dotenv\nCI_CALLBACK_FANOUT=12\n")
    resolved = deploycheck.resolve(repo, "dev", _clean_env())
    assert deploycheck.resolved_settings(resolved) == {"CI_CALLBACK_TOKENS": "from-dotenv", "CI_CALLBACK_FANOUT": "12"}
    function, layer = deploycheck._instances(resolved)
    assert function["envFile"] == str(repo / ".env") == layer["envFile"]  # layers/ finds ../.env
    # dotenv does not run shell syntax: the literal text would be deployed as the token.
    (repo / ".env").write_text("CI_CALLBACK_TOKENS=$(python3 -c 'print(1)')\n")
    assert deploycheck.resolved_settings(deploycheck.resolve(repo, "dev", _clean_env()))["CI_CALLBACK_TOKENS"] \
        .startswith("$(")


# --------------------------------------------------------------------------- (c) make deploy


def _fake_scf(tmp_path: Path) -> Path:
    """An `scf` on PATH that only records that it was called."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    script = bindir / "scf"
    script.write_text(f"#!/bin/sh\necho \"$@\" >> {tmp_path / 'scf-called'}\nexit 1\n")
    script.chmod(0o755)
    return bindir


def _make_deploy(root: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    venv = ROOT / ".venv"
    if not (venv / ".installed").is_file():
        pytest.skip("make deploy is tested with the project's .venv (run the suite through `make test`)")
    # The copy must never reinstall the shared venv (that would point its editable install at the
    # copy): its install inputs are dated before the venv's stamp, so make sees nothing to do.
    stamp = (venv / ".installed").stat().st_mtime
    for name in ("requirements.txt", "requirements-dev.txt", "pyproject.toml"):
        if (root / name).exists():
            os.utime(root / name, (stamp - 1, stamp - 1))
    # NODE_DEPS= : the copy must not npm-install; the checkout's tree (project_root) is used.
    return subprocess.run(["make", "-s", "deploy", f"VENV={venv}", "NODE_DEPS="], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)


@needs_node
@pytest.mark.parametrize("setup,expected", [
    ({}, "refusing: CI_CALLBACK_TOKENS would deploy empty"),
    ({"env_file": "CI_CALLBACK_FANOUT=12\n", "CI_CALLBACK_TOKENS": "t", "CI_CALLBACK_FANOUT": ""},
     "refusing: CI_CALLBACK_FANOUT would deploy empty"),
    ({"state": ["CI_CALLBACK_TOKENS", "CI_CALLBACK_ALLOWED_BUCKETS"], "CI_CALLBACK_TOKENS": "t"},
     "refusing: CI_CALLBACK_ALLOWED_BUCKETS would deploy empty"),
], ids=["no-token", "env-file-key-blanked", "previously-deployed"])
def test_make_deploy_refuses_in_one_line_and_deploys_nothing(tmp_path: Path, setup: dict[str, Any],
                                                             expected: str) -> None:
    root = _copy_project(tmp_path / "repo")
    if "env_file" in setup:
        (root / ".env").write_text(setup["env_file"])
    if "state" in setup:
        (root / ".deploy").mkdir()
        (root / ".deploy" / "dev.json").write_text(json.dumps({"stage": "dev", "settings": setup["state"]}))
    env = _clean_env(**{k: v for k, v in setup.items() if k.startswith("CI_CALLBACK_")})
    env["PATH"] = f"{_fake_scf(tmp_path)}{os.pathsep}{env.get('PATH', '')}"
    proc = _make_deploy(root, env)
    assert proc.returncode != 0
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], proc.stdout + proc.stderr
    assert not (tmp_path / "scf-called").exists()
    assert not (root / "layers" / "build").exists()


@needs_node
def test_make_deploy_without_the_cli_says_how_to_install_it(tmp_path: Path) -> None:
    root = _copy_project(tmp_path / "repo")
    env = _clean_env(**{**TOKEN_ENV, "CI_CALLBACK_TOKENS": "t"})
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                  if p and not (Path(p) / "scf").exists())
    proc = _make_deploy(root, env)
    assert proc.returncode != 0
    assert proc.stdout.strip().splitlines() == [
        "make deploy: refusing: no scf command; npm i -g serverless-cloud-framework (>= 1.2.0)"]


def test_make_token_prints_a_fresh_token() -> None:
    """22 characters (128 bits): the Function URL with ?token= must fit CI's 100-character Url."""
    tokens = [subprocess.run(["make", "-s", "token"], cwd=ROOT, capture_output=True, text=True, check=True)
              .stdout.strip() for _ in range(2)]
    assert tokens[0] != tokens[1] and all(re.fullmatch(r"[A-Za-z0-9_-]{22}", t) for t in tokens)


# --------------------------------------------------------------------------- (d) .env and its template


def test_env_example_lists_every_setting_with_a_comment() -> None:
    lines = (ROOT / ".env.example").read_text(encoding="utf-8").splitlines()
    names = {}
    for i, line in enumerate(lines):
        match = re.match(r"^(?:# )?([A-Z][A-Z0-9_]*)=(.*)$", line)
        if match:
            names[match.group(1)] = match.group(2)
            assert lines[i - 1].startswith("# ") and "=" not in lines[i - 1].split()[1], f"no comment above {line}"
            # JSON needs its double quotes: the CLI's dotenv (8.6) keeps an unquoted {…} value verbatim.
            quotes = r"[$`']" if match.group(1) == "CI_CALLBACK_RECONCILE_SPEC" else r"[$`\"']"
            assert not re.search(quotes, match.group(2)), f"shell syntax or quotes in {line}"
    assert set(ENV_VARS) - deploycheck.PLATFORM_VARS <= set(names)
    assert names["CI_CALLBACK_TOKENS"] == ""  # a placeholder would deploy as a real token


def test_env_is_git_ignored() -> None:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    for path in (".env", ".env.prod", ".deploy/dev.json", "dev/deploy-check/node_modules/x"):
        assert subprocess.run(["git", "check-ignore", "-q", path], cwd=ROOT).returncode == 0, path
    assert subprocess.run(["git", "check-ignore", "-q", ".env.example"], cwd=ROOT).returncode == 1


# --------------------------------------------------------------------------- (e) offline helpers


def test_documented_runtimes_say_where() -> None:
    assert set(deploycheck.SUPPORTED_RUNTIMES) <= set(deploycheck.DOCUMENTED_RUNTIMES)
    assert all("583/" in source for source in deploycheck.DOCUMENTED_RUNTIMES.values())
    assert not {"Python3.11", "Python3.12", "Python3.13"} & set(deploycheck.DOCUMENTED_RUNTIMES)  # no API evidence


def test_env_scan_ignores_wsgi_environ() -> None:
    tree = ast.parse(textwrap.dedent("""
        import os
        def app(environ, start_response):
            return environ.get("CONTENT_LENGTH"), environ["REQUEST_METHOD"]
        def settings(environ=None):
            env = os.environ if environ is None else environ
            return env.get("CI_CALLBACK_X"), os.environ["HOME"]
        os.environ["WRITTEN_ONLY"] = "1"
        """))
    assert deploycheck.env_reads(tree) == {"CI_CALLBACK_X", "HOME"}


@pytest.mark.parametrize("memory,ok", [(64, True), (128, True), (3072, True), (96, False), (0, False), (3200, False)])
def test_memory_sizes(memory: int, ok: bool) -> None:
    assert deploycheck.allowed_memory(memory) is ok


# --------------------------------------------------------------------------- build.py, offline parts


def test_wheel_tag_check():
    assert build.is_pure_py3_wheel("crcmod-1.7-py3-none-any.whl")
    assert build.is_pure_py3_wheel("six-1.17.0-py2.py3-none-any.whl")
    assert not build.is_pure_py3_wheel("crcmod-1.7-cp311-cp311-linux_x86_64.whl")
    assert not build.is_pure_py3_wheel("foo-1.0-py2-none-any.whl")


def test_validate_tree_flags_wrong_binaries_and_the_monolith(tmp_path: Path):
    tree = tmp_path / "python"
    (tree / "crcmod").mkdir(parents=True)
    (tree / "crcmod" / "_crcfunext.cpython-311-x86_64-linux-gnu.so").write_bytes(b"")
    for product in ("common", "scf", "cvm"):
        (tree / "tencentcloud" / product).mkdir(parents=True)
    dist = tree / "foo-1.0.dist-info"
    dist.mkdir()
    (dist / "WHEEL").write_text("Wheel-Version: 1.0\nTag: cp311-cp311-manylinux2014_x86_64\n")
    (tree / "tencentcloud_sdk_python-3.1.0.dist-info").mkdir()
    problems = "\n".join(build.validate_tree(tree, [(3, 9)]))
    assert "cpython-311" in problems and "pure-Python fallback" in problems
    assert "'cvm'" in problems and "monolith" in problems
    assert "foo-1.0.dist-info" in problems


@pytest.mark.parametrize("tag,runtimes,ok", [
    ("py3-none-any", [(3, 9)], True),
    ("py2.py3-none-any", [(3, 9), (3, 10)], True),
    ("cp39-cp39-manylinux_2_17_x86_64", [(3, 9)], True),
    ("cp39-cp39-manylinux_2_17_x86_64", [(3, 9), (3, 10)], False),
    ("cp37-abi3-manylinux2014_x86_64", [(3, 9), (3, 12)], True),
    ("cp311-abi3-manylinux2014_x86_64", [(3, 9)], False),
    ("cp39-cp39-linux_x86_64", [(3, 9)], False),
    ("cp39-cp39-manylinux2014_aarch64", [(3, 9)], False),
    ("cp39-cp39-macosx_11_0_x86_64", [(3, 9)], False),
])
def test_tag_fits(tag: str, runtimes, ok: bool):
    assert build._tag_fits(tag, runtimes) is ok


def test_code_zip(tmp_path: Path):
    dest = build.build_code_zip(tmp_path)
    names = zipfile.ZipFile(dest).namelist()
    assert "index.py" in names and "ci_callback/app.py" in names and "ci_callback/settings.py" in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc") or ".egg-info" in n]
    assert build.build_code_zip(tmp_path).read_bytes() == dest.read_bytes()  # reproducible


# --------------------------------------------------------------------------- (c) the real layer


def _index_unreachable() -> str | None:
    """Why PyPI (or the configured index) cannot be reached, or None when it can."""
    url = os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple/").rstrip("/") + "/pip/"
    try:
        with urllib.request.urlopen(url, timeout=15) as response:  # fixed https URL
            response.read(1)
        return None
    except Exception as exc:  # any failure means "unreachable"
        return f"{url}: {exc}"


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("layer-build")
    proc = subprocess.run([sys.executable, str(ROOT / "layers" / "build.py"), "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        unreachable = _index_unreachable()
        if unreachable:
            pytest.skip(f"the layer build needs PyPI (or a warm pip cache) and PyPI is unreachable: {unreachable}")
        pytest.fail(f"layers/build.py failed:\n{proc.stdout}\n{proc.stderr}")
    unpacked = tmp_path_factory.mktemp("unpacked")
    layer_dir, code_dir = unpacked / "opt", unpacked / "var-user"
    with zipfile.ZipFile(out / build.LAYER_ZIP) as zf:
        zf.extractall(layer_dir)
    with zipfile.ZipFile(out / build.CODE_ZIP) as zf:
        zf.extractall(code_dir)
    return {"out": out, "stdout": proc.stdout, "layer": layer_dir, "code": code_dir}


@pytest.mark.slow
def test_layer_zip_size_and_layout(built):
    layer_zip = built["out"] / build.LAYER_ZIP
    size_mb = layer_zip.stat().st_size / (1024 * 1024)
    assert size_mb < 15, f"layer zip is {size_mb:.2f} MB"
    assert "layer zip:" in built["stdout"] and "code zip:" in built["stdout"]
    names = zipfile.ZipFile(layer_zip).namelist()
    # Packages at the zip root (SCF puts /opt on sys.path), never under python/.
    assert "qcloud_cos/__init__.py" in names and "xmltodict.py" in names and "crcmod/crcmod.py" in names
    assert "tencentcloud/scf/v20180416/scf_client.py" in names
    assert not [n for n in names if n.startswith("python/") or "__pycache__" in n or n.endswith(".pyc")]
    assert not [n for n in names if "/tests/" in n or "/SelfTest/" in n or n.startswith("bin/")]
    products = {n.split("/")[1] for n in names if n.startswith("tencentcloud/") and n.count("/") >= 2}
    assert products == {"common", "scf"}
    compiled = [n for n in names if n.endswith(".so")]
    assert not [n for n in compiled if "cpython-" in n and "cpython-310-" not in n]
    assert not [n for n in compiled if "_crcfunext" in n]
    # The deployable tree (layers/serverless.yml src) is the same as the zip.
    tree = sorted(p.relative_to(built["out"] / "python").as_posix()
                  for p in (built["out"] / "python").rglob("*") if p.is_file())
    assert tree == sorted(names)


# Runs in a fresh interpreter: python -I -S (no site-packages, no PYTHON* variables) and a
# sys.path of exactly [layer, code] + the standard library, like /opt and /var/user on SCF.
PROBE = r"""
import json, os, sys
layer, code = sys.argv[1:3]
sys.path[:0] = [layer, code]
leaks = [p for p in sys.path if "site-packages" in p or "dist-packages" in p]
assert not leaks, leaks

import qcloud_cos, xmltodict, requests, crcmod, crcmod.crcmod
import tencentcloud.scf.v20180416.scf_client
from tencentcloud.common import credential
from Crypto.Cipher import AES
import charset_normalizer.md
for module in (qcloud_cos, xmltodict, requests, crcmod, tencentcloud.scf.v20180416.scf_client, AES):
    assert module.__file__.startswith(layer), (module.__name__, module.__file__)

# crcmod: the pure-Python fallback, computing COS's CRC-64 (CRC-64/XZ check value).
assert sys.modules["crcmod.crcmod"]._usingExtension is False  # (the package rebinds its .crcmod name)
crc64 = crcmod.mkCrcFun(0x142F0E1EBA9EA3693, initCrc=0, xorOut=0xffffffffffffffff, rev=True)
assert crc64(b"123456789") == 0x995DC9BBDF1939FA
# pycryptodome: its compiled (abi3) modules load and work.
assert AES.new(b"k" * 16, AES.MODE_ECB).encrypt(b"\0" * 16) != b"\0" * 16

import index
context = {"request_id": "layer-probe", "time_limit_in_ms": 20000, "function_name": "ci-callback-test"}
results = {}
for event_path in sys.argv[3:]:
    event = json.load(open(event_path))
    results[os.path.basename(event_path)] = {
        "ok": index.main_handler(dict(event, queryString={"token": "s3cret-token"}), context),
        "wrong": index.main_handler(dict(event, queryString={"token": "not-the-token"}), context),
    }
print("PROBE-RESULT " + json.dumps({
    "python": "%d.%d" % sys.version_info[:2],
    "results": results,
    "charset_normalizer_md": os.path.basename(charset_normalizer.md.__file__),
}))
"""


def _python310() -> str | None:
    """A real CPython 3.10 (the SCF runtime): on PATH or under pyenv."""
    candidates = [shutil.which("python3.10")]
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates += sorted(str(p) for p in pyenv.glob("3.10*/bin/python3.10")) if pyenv.is_dir() else []
    for candidate in candidates:
        if not candidate:
            continue
        probe = subprocess.run([candidate, "-I", "-S", "-c", "import sys; print(sys.version_info[:2] == (3, 10))"],
                               capture_output=True, text=True)
        if probe.returncode == 0 and probe.stdout.strip() == "True":
            return candidate
    return None


PY310 = _python310()
FUNCTION_URL_EVENTS = sorted(EVENTS.glob("function-url-*.json"))


@pytest.mark.slow
@pytest.mark.parametrize("python", [
    pytest.param(PY310 or "python3.10", id="py3.10", marks=pytest.mark.skipif(
        PY310 is None, reason="no CPython 3.10 on PATH or under pyenv: the SCF runtime cannot be reproduced")),
    pytest.param(sys.executable, id="local"),
])
def test_handler_serves_function_url_events_from_the_unpacked_zips(built: dict[str, Any], python: str) -> None:
    # The layer targets cp310; it also imports on the local interpreter because every dependency
    # is pure Python except pycryptodome (cp37-abi3: the stable ABI loads on any CPython >= 3.7)
    # and charset_normalizer (a cp310 mypyc build that also ships its .py sources).
    # Actions off: no COS here; the token check, parsing and routing still run for every event.
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "x",
           "CI_CALLBACK_TOKENS": "s3cret-token", "CI_CALLBACK_ACTIONS": "none", "TENCENTCLOUD_REGION": "ap-guangzhou"}
    assert FUNCTION_URL_EVENTS
    proc = subprocess.run([python, "-I", "-S", "-B", "-c", PROBE, str(built["layer"]), str(built["code"]),
                           *map(str, FUNCTION_URL_EVENTS)], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    line = next(line for line in proc.stdout.splitlines() if line.startswith("PROBE-RESULT "))
    result = json.loads(line[len("PROBE-RESULT "):])
    for name, outcome in result["results"].items():
        assert outcome["ok"]["statusCode"] == 200, (name, outcome["ok"])
        assert outcome["wrong"]["statusCode"] == 403, (name, outcome["wrong"])
    assert json.loads(result["results"]["function-url-console-test-json.json"]["ok"]["body"])["status"] == "test"
    if result["python"] == "3.10":  # the real runtime loads the compiled cp310 build
        assert result["charset_normalizer_md"].startswith("md.cpython-310")
    else:
        assert result["charset_normalizer_md"] == "md.py"


def test_serve_local_wraps_requests_as_function_url_events() -> None:
    from ci_callback.edge.http import FUNCTION_URL, request_from_event
    from ci_callback_dev.localdemo import event_from_http, load_events

    event = event_from_http("POST", "/?token=t", {"Content-Type": "application/json"}, b'{"a": 1}')
    assert set(event) == {"httpMethod", "path", "headers", "queryString", "body"}
    assert request_from_event(event, 1024).source == FUNCTION_URL
    assert load_events(EVENTS)[0][0].startswith("function-url-")  # the demo leads with the default trigger


def test_without_node_check_deploy_says_why(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(deploycheck.shutil, "which", lambda name: None)
    assert "node is not installed" in (deploycheck.tool_missing(ROOT) or "")
    assert deploycheck.main(["check", "--root", str(ROOT)]) == 2
    assert capsys.readouterr().out.startswith("check-deploy: cannot run: node is not installed")
    code, lines = deploycheck.preflight(ROOT, "dev", _clean_env(**TOKEN_ENV))
    assert code == 1 and len(lines) == 1 and "node is not installed" in lines[0]


@needs_node
def test_record_keeps_names_never_values(repo: Path) -> None:
    path = deploycheck.record(repo, "dev", _clean_env(CI_CALLBACK_TOKENS="very-secret", CI_CALLBACK_FANOUT="8"))
    assert path == repo / ".deploy" / "dev.json"
    assert "very-secret" not in path.read_text()
    assert deploycheck.previously_deployed(repo, "dev") == {"CI_CALLBACK_TOKENS", "CI_CALLBACK_FANOUT"}
    code, lines = deploycheck.preflight(repo, "dev", _clean_env(CI_CALLBACK_TOKENS="t"))
    assert code == 1 and "CI_CALLBACK_FANOUT would deploy empty" in lines[0]


@needs_node
def test_values_the_runtime_refuses_are_reported(repo: Path) -> None:
    from ci_callback import settings

    if not callable(getattr(settings, "problems", None)):
        pytest.skip("ci_callback.settings.problems (the runtime's validation, branch arch) is not merged here yet")
    problems = _problems(repo, CI_CALLBACK_FANOUT="abc")
    assert any("CI_CALLBACK_FANOUT" in p for p in problems), problems


@needs_node
def test_the_execution_role_permissions_are_noted() -> None:
    """Continuations invoke the function itself; notify invokes its target (README, permissions)."""
    env = {**_clean_env(), "CI_CALLBACK_NOTIFY_FUNCTION": "downstream"}
    notes = deploycheck.role_permissions(deploycheck.resolve(ROOT, "dev", env))
    assert len(notes) == 2 and all("scf:InvokeFunction" in note for note in notes)
    assert "continuations" in notes[0] and notes[1].endswith("default/downstream (notify)")
    assert "default/ci-callback-dev " in notes[0]  # the name the platform gives it, ${stage} resolved


@needs_node
def test_a_fresh_clone_is_deployable_with_only_a_token() -> None:
    # No .env, nothing but the token: the sweep's cron lives in serverless.yml, so nothing else is needed.
    assert deploycheck.check(deploycheck.resolve(ROOT, "dev", _clean_env(CI_CALLBACK_TOKENS="t")), ROOT) == []


@needs_node
@pytest.mark.parametrize("value", ["false", "0", "off", "yes"])
def test_a_trigger_switch_that_would_mean_on_is_refused(value: str) -> None:
    # The toolkit opens a trigger for any value of enable, "false" included.
    problems = _problems(ROOT, CI_CALLBACK_RECONCILE_ENABLE=value, CI_CALLBACK_RECONCILE_SPEC='{"reconcile":{}}')
    assert any("timer: enable is" in p and "reads as on" in p for p in problems)


@needs_node
def test_an_open_timer_needs_a_sweep_spec() -> None:
    problems = _problems(ROOT, CI_CALLBACK_RECONCILE_ENABLE="true")
    assert any("no sweep spec" in p for p in problems)
    assert not [p for p in _problems(ROOT, CI_CALLBACK_RECONCILE_ENABLE="true",
                                     CI_CALLBACK_RECONCILE_SPEC='{"reconcile":{}}') if "sweep spec" in p]


@needs_node
@pytest.mark.parametrize(("timeout", "refused"), [(3, True), (6, True), (7, False), (20, False)])
def test_an_open_timer_whose_timeout_cannot_fit_the_sweep_reserve_is_refused(repo: Path, timeout: int,
                                                                            refused: bool) -> None:
    # Under it the sweep lists nothing and, as it makes no progress, does not chain: every tick a no-op.
    _inputs("timeout", timeout)(repo)
    problems = _problems(repo, CI_CALLBACK_RECONCILE_ENABLE="true", CI_CALLBACK_RECONCILE_SPEC='{"reconcile":{}}')
    found = [p for p in problems if "leaves the sweep no time after its 6 s reserve" in p]
    assert len(found) == int(refused), problems
    assert not [p for p in _problems(repo) if "reserve" in p]  # a closed timer never runs


def test_the_sweep_reserve_check_needs_no_node() -> None:
    # The resolved shape the toolkit hands over: requests.function.Timeout and the timer's request.
    def problems(timeout: int, enable: str) -> list[str]:
        timer = {"type": "timer", "request": {"TriggerName": "ci-callback-reconcile", "Enable": enable,
                                              "CustomArgument": '{"reconcile":{}}'}}
        instance = {"requests": {"function": {"Timeout": timeout}, "triggers": [timer]}}
        found: list[str] = []
        deploycheck._check_trigger_switches(instance, [timer], found)
        return found

    assert problems(3, "OPEN") == ["serverless.yml: events: timer ci-callback-reconcile: on, but the function "
                                   "timeout of 3 s leaves the sweep no time after its 6 s reserve; "
                                   "set timeout above 6.5 s"]
    assert problems(7, "OPEN") == problems(3, "CLOSE") == []
    assert deploycheck.sweep_time_problem("20") is None  # the Timeout range check reports that


@needs_node
def test_a_cmq_topic_without_its_trigger_is_not_silently_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI_CALLBACK_CMQ_TOPIC", "ci-callback-jobs")
    assert any("no cmq trigger" in p for p in _problems(ROOT))
