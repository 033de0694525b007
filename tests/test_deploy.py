"""Deployment: the offline serverless.yml check, and the layer + code zips actually working.

* ``check()`` passes on the repository and names each mistake in broken copies of it;
* ``layers/build.py`` builds the Python 3.9 layer from PyPI (slow: ~10–20 s, runs by default;
  ``-m "not slow"`` skips it); the zips are unpacked into fresh directories and a fresh,
  isolated interpreter whose sys.path is *only* [layer, code, stdlib] imports the SDKs and runs
  ``index.main_handler`` on the console-test event (200) and with a wrong token (403).
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import textwrap
import urllib.request
import zipfile
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import pytest

yaml = pytest.importorskip("yaml")

from ci_callback_dev import deploycheck  # noqa: E402 - conftest puts handler/ and dev/ on sys.path

ROOT = Path(__file__).resolve().parents[1]
EVENTS = ROOT / "events"


def _load_build_module():
    spec = importlib.util.spec_from_file_location("layer_build", ROOT / "layers" / "build.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


build = _load_build_module()


# --------------------------------------------------------------------------- (a) the real repo


def test_repository_is_deployable():
    assert deploycheck.check(ROOT) == []


def test_main_prints_ok_and_returns_zero(capsys):
    assert deploycheck.main(ROOT) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "OK" in out[0]


def test_settings_env_vars_read_without_import():
    names = deploycheck.read_env_vars(ROOT / "handler" / "ci_callback" / "settings.py")
    from ci_callback.settings import ENV_VARS

    assert names == ENV_VARS


# --------------------------------------------------------------------------- (b) broken copies


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A copy of what the check reads: both YAML files and the code root."""
    dest = tmp_path / "repo"
    (dest / "layers").mkdir(parents=True)
    shutil.copy2(ROOT / "serverless.yml", dest / "serverless.yml")
    shutil.copy2(ROOT / "layers" / "serverless.yml", dest / "layers" / "serverless.yml")
    shutil.copytree(ROOT / "handler", dest / "handler", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    assert deploycheck.check(dest) == []
    return dest


def _edit(path: Path, change: Callable[[Dict[str, Any]], None]) -> None:
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def _fn(change: Callable[[Dict[str, Any]], None]) -> Callable[[Path], None]:
    return lambda root: _edit(root / "serverless.yml", change)


def _layer(change: Callable[[Dict[str, Any]], None]) -> Callable[[Path], None]:
    return lambda root: _edit(root / "layers" / "serverless.yml", change)


def _inputs(key: str, value: Any) -> Callable[[Path], None]:
    return _fn(lambda d: d["inputs"].__setitem__(key, value))


def _variables(change: Callable[[Dict[str, Any]], None]) -> Callable[[Path], None]:
    return _fn(lambda d: change(d["inputs"]["environment"]["variables"]))


def _endpoint(change: Callable[[Dict[str, Any]], None]) -> Callable[[Path], None]:
    return _fn(lambda d: change(d["inputs"]["events"][0]["apigw"]["parameters"]["endpoints"][0]))


def _write_module(text: str) -> Callable[[Path], None]:
    return lambda root: (root / "handler" / "ci_callback" / "extra_env.py").write_text(textwrap.dedent(text))


BROKEN = {
    "memory-100": (_inputs("memorySize", 100), "inputs.memorySize 100"),
    "memory-not-step": (_inputs("memorySize", 200), "inputs.memorySize 200"),
    "memory-too-big": (_inputs("memorySize", 3200), "inputs.memorySize 3200"),
    "timeout-0": (_inputs("timeout", 0), "inputs.timeout 0"),
    "timeout-901": (_inputs("timeout", 901), "inputs.timeout 901"),
    "init-timeout-1": (_inputs("initTimeout", 1), "inputs.initTimeout 1"),
    "runtime-py27": (_inputs("runtime", "Python2.7"), "inputs.runtime 'Python2.7'"),
    "runtime-missing": (_fn(lambda d: d["inputs"].pop("runtime")), "inputs.runtime None"),
    "component": (_fn(lambda d: d.__setitem__("component", "express")), "component is 'express'"),
    "no-name": (_fn(lambda d: d.pop("name")), "instance 'name' is missing"),
    "handler-name": (_inputs("handler", "app.handler"), "inputs.handler is 'app.handler'"),
    "handler-file-missing": (lambda root: (root / "handler" / "index.py").unlink(), "which does not exist"),
    "handler-not-defined": (lambda root: (root / "handler" / "index.py").write_text("def other(e, c):\n    pass\n"),
                            "defines no main_handler"),
    "handler-import-broken": (lambda root: (root / "handler" / "index.py").write_text(
        "from ci_callback.app import nothing_here as main_handler\n"), "defines no nothing_here"),
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
    "env-read-unlisted-getenv": (_write_module("""
        from os import environ as E
        X = E["SOME_KNOB"]
        """), "reads environment variable SOME_KNOB"),
    "env-too-big": (_variables(lambda v: v.__setitem__("PADDING", "x" * 4096)), "over SCF's 4096-byte limit"),
    "env-bad-name": (_variables(lambda v: v.__setitem__("1BAD", "x")), "'1BAD' is not a valid name"),
    "env-reserved": (_variables(lambda v: v.__setitem__("SCF_DEBUG", "1")), "SCF_DEBUG uses a reserved prefix"),
    "layer-wrong-instance": (_fn(lambda d: d["inputs"]["layers"][0].__setitem__(
        "name", "${output:${stage}:${app}:other-layer.name}")), "names instance 'other-layer'"),
    "layer-wrong-literal": (_fn(lambda d: d["inputs"]["layers"][0].update(name="ci-callback-libs", version=3)),
                            "layer 'ci-callback-libs' is neither"),
    "layer-literal-bad-version": (_fn(lambda d: d["inputs"]["layers"][0].update(name="ci-callback-deps", version="x")),
                                  "version 'x' is not a positive integer"),
    "layer-missing": (_fn(lambda d: d["inputs"].pop("layers")), "no layer bound"),
    "layer-no-version": (_fn(lambda d: d["inputs"]["layers"][0].pop("version")), "needs both name and version"),
    "layer-other-app": (_layer(lambda d: d.__setitem__("app", "another-app")), "cannot resolve across apps"),
    "layer-runtime": (_inputs("runtime", "Python3.10"), "does not include the function's Python3.10"),
    "layer-region": (_layer(lambda d: d["inputs"].__setitem__("region", "ap-shanghai")), "layers are regional"),
    "layer-name-regex": (_layer(lambda d: d["inputs"].__setitem__("name", "ci_callback_deps_")),
                         "inputs.name 'ci_callback_deps_' does not match"),
    "no-integrated-response": (_endpoint(lambda e: e["function"].pop("isIntegratedResponse")),
                               "lacks function.isIntegratedResponse: true"),
    "integrated-response-false": (_endpoint(lambda e: e["function"].__setitem__("isIntegratedResponse", False)),
                                  "no apigw POST endpoint with function.isIntegratedResponse: true"),
    "no-post": (_endpoint(lambda e: e.__setitem__("method", "GET")), "no apigw POST endpoint"),
    "no-apigw": (_fn(lambda d: d["inputs"].pop("events")), "no apigw trigger"),
    "gateway-outlasts-function": (_inputs("timeout", 15), "serviceTimeout 15 s ≥ function timeout 15 s"),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_copy_is_reported(repo: Path, name: str):
    breaker, expected = BROKEN[name]
    breaker(repo)
    problems = deploycheck.check(repo)
    assert any(expected in p for p in problems), f"{expected!r} not in {problems}"


def test_main_prints_each_problem_and_returns_one(repo: Path, capsys):
    _inputs("memorySize", 100)(repo)
    _inputs("timeout", 0)(repo)
    assert deploycheck.main(repo) == 1
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3  # two problems and the summary
    assert all(line.startswith("check-deploy: ") for line in lines)


def test_missing_serverless_yml(tmp_path: Path):
    assert any("not found" in p for p in deploycheck.check(tmp_path))


def test_env_scan_ignores_wsgi_environ():
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
def test_memory_sizes(memory: int, ok: bool):
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


def _index_unreachable() -> Optional[str]:
    """Why PyPI (or the configured index) cannot be reached, or None when it can."""
    url = os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple/").rstrip("/") + "/pip/"
    try:
        with urllib.request.urlopen(url, timeout=15) as response:  # noqa: S310 - fixed https URL
            response.read(1)
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means "unreachable"
        return f"{url}: {exc}"


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Dict[str, Any]:
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
    assert not [n for n in compiled if "cpython-" in n and "cpython-39-" not in n]
    assert not [n for n in compiled if "_crcfunext" in n]
    # The deployable tree (layers/serverless.yml src) is the same as the zip.
    tree = sorted(p.relative_to(built["out"] / "python").as_posix()
                  for p in (built["out"] / "python").rglob("*") if p.is_file())
    assert tree == sorted(names)


# Runs in a fresh interpreter: python -I -S (no site-packages, no PYTHON* variables) and a
# sys.path of exactly [layer, code] + the standard library, like /opt and /var/user on SCF.
PROBE = r"""
import json, os, sys
layer, code, event_path = sys.argv[1:4]
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
event = json.load(open(event_path))
context = {"request_id": "layer-probe", "time_limit_in_ms": 20000, "function_name": "ci-callback-test"}
ok = index.main_handler(dict(event, queryString={"token": "s3cret-token"}), context)
wrong = index.main_handler(dict(event, queryString={"token": "not-the-token"}), context)
print("PROBE-RESULT " + json.dumps({
    "python": "%d.%d" % sys.version_info[:2],
    "ok": ok, "wrong": wrong,
    "charset_normalizer_md": os.path.basename(charset_normalizer.md.__file__),
}))
"""


def _interpreters() -> List[str]:
    """This interpreter (3.11 here) and, when installed, a real CPython 3.9 (the SCF runtime)."""
    found = [sys.executable]
    candidates = [shutil.which("python3.9")]
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates += sorted(str(p) for p in pyenv.glob("3.9*/bin/python3.9")) if pyenv.is_dir() else []
    for candidate in candidates:
        if not candidate:
            continue
        probe = subprocess.run([candidate, "-I", "-S", "-c", "import sys; print(sys.version_info[:2] == (3, 9))"],
                               capture_output=True, text=True)
        if probe.returncode == 0 and probe.stdout.strip() == "True":
            found.append(candidate)
            break
    return found


@pytest.mark.slow
@pytest.mark.parametrize("python", _interpreters(), ids=lambda p: "py" + Path(p).name.replace("python", ""))
def test_handler_runs_from_the_unpacked_zips(built, python: str):
    # The layer targets cp39; it still imports on the local 3.11 because every dependency is pure
    # Python except pycryptodome (cp37-abi3 wheels: the stable ABI loads on any CPython ≥ 3.7) and
    # charset_normalizer (cp39 mypyc build that also ships its .py sources, used on other versions).
    # So no second, local-interpreter layer is needed for this test.
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "x",
           "CI_CALLBACK_TOKENS": "s3cret-token", "TENCENTCLOUD_REGION": "ap-guangzhou"}
    event = EVENTS / "function-url-console-test-json.json"
    proc = subprocess.run([python, "-I", "-S", "-B", "-c", PROBE, str(built["layer"]), str(built["code"]), str(event)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    line = next(line for line in proc.stdout.splitlines() if line.startswith("PROBE-RESULT "))
    result = json.loads(line[len("PROBE-RESULT "):])
    assert result["ok"]["statusCode"] == 200, result["ok"]
    assert json.loads(result["ok"]["body"])["status"] == "test"
    assert result["wrong"]["statusCode"] == 403, result["wrong"]
    if result["python"] == "3.9":  # the real runtime loads the compiled cp39 build
        assert result["charset_normalizer_md"].startswith("md.cpython-39")
    else:
        assert result["charset_normalizer_md"] == "md.py"
