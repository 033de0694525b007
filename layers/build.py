#!/usr/bin/env python3
"""Build the SCF dependency layer and the code package, offline-checkable and deterministic.

    python layers/build.py                 # both: layers/build/{python/,ci-callback-layer.zip,ci-callback-code.zip}
    python layers/build.py --out DIR       # same, under DIR (the tests use a temporary directory)
    python layers/build.py --code-only     # only the code zip

The layer
---------
* targets the runtime named in layers/serverless.yml (``runtimes: [Python3.10]`` → CPython 3.10,
  Linux x86_64): ``pip install --target … --platform manylinux2014_x86_64 --implementation cp
  --python-version 3.10 --only-binary=:all: -r requirements.txt``, so a compiled dependency can only
  arrive as a wheel built for that interpreter (or an abi3 wheel), never as a build for the local one;
* a dependency published only as an sdist (crcmod) is turned into a wheel first with
  ``pip wheel --no-deps`` and must come out pure Python (``py3-none-any``). crcmod's C extension is
  optional: it is built with ``CC=false`` so its setup.py falls back to the pure-Python package
  (``crcmod._crcfunpy``) instead of baking a ``cpython-311`` ``.so`` into a Python 3.10 layer;
* is stripped (``__pycache__``, ``*.pyc``, test suites, console scripts) and zipped with the packages
  at the **zip root**: SCF unpacks a layer into /opt and puts /opt (not /opt/python) on sys.path;
* fails (exit 1) when the zip is over the size budget, when a compiled file does not match the
  runtime, or when the tencentcloud monolith (``tencentcloud-sdk-python``, every product) sneaks in
  instead of the ``common`` + ``scf`` packages.

``layers/build/python/`` (the unpacked tree) is what ``layers/serverless.yml`` deploys
(``src: ./build/python``); the zip is the same tree for a console upload and for the size report.

The code package is ``handler/`` with its contents at the zip root, minus caches and egg-info —
what ``serverless.yml`` (``src: ./handler`` + ``exclude``) uploads.

Wheels are downloaded from PyPI (or whatever pip is configured with) into ``OUT/wheelhouse`` and
installed from there with ``--no-index``; when the index cannot be reached, a wheelhouse left by an
earlier run is used as is (offline build). pip's HTTP cache keeps re-runs fast. Every run rebuilds
the tree from scratch into a staging directory and then swaps it in, so running it twice gives the
same result (the zips are byte-for-byte reproducible).
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "layers" / "build"
LAYER_ZIP = "ci-callback-layer.zip"
CODE_ZIP = "ci-callback-code.zip"
LAYER_BUDGET_MB = 15.0
PLATFORM = "manylinux2014_x86_64"  # SCF's Python images are x86_64 glibc ≥ 2.17
# tencentcloud-sdk-python-<product> wheels share the `tencentcloud` namespace; only these may be present.
TENCENTCLOUD_PRODUCTS = {"common", "scf"}
STRIP_DIRS = {"__pycache__", "tests", "test", "testing", "SelfTest"}  # SelfTest: pycryptodome's suite
STRIP_SUFFIXES = (".pyc", ".pyo")
CODE_EXCLUDES = ("**/__pycache__/**", "**/*.pyc", "**/*.egg-info/**")
ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed timestamps: reproducible zips


class BuildError(Exception):
    """A build that must not be deployed."""


class FetchError(BuildError):
    """The package index could not provide something (offline, or it does not exist)."""


def mb(size: int) -> float:
    return size / (1024 * 1024)


# --------------------------------------------------------------------------- configuration


def _load_yaml(path: Path) -> dict:
    text = path.read_text(encoding="utf-8")
    try:
        import yaml  # dev dependency, only needed here
    except ImportError:  # a bare interpreter: the few keys we need are simple enough for a regex
        runtimes = re.findall(r"^\s*-\s*(Python\d+\.\d+)\s*$", text, re.M)
        src = re.search(r"^\s+src:\s*(\S+)\s*$", text, re.M)
        return {"inputs": {"runtimes": runtimes, "src": src.group(1) if src else None}}
    return yaml.safe_load(text) or {}


def layer_runtimes(root: Path) -> list[tuple[int, int]]:
    """The (major, minor) versions layers/serverless.yml declares, lowest first."""
    config = _load_yaml(root / "layers" / "serverless.yml")
    runtimes = (config.get("inputs") or {}).get("runtimes") or []
    versions = []
    for runtime in runtimes:
        match = re.fullmatch(r"Python(\d+)\.(\d+)", str(runtime))
        if not match:
            raise BuildError(f"layers/serverless.yml: runtime {runtime!r} is not a PythonX.Y runtime")
        versions.append((int(match.group(1)), int(match.group(2))))
    if not versions:
        raise BuildError("layers/serverless.yml: inputs.runtimes names no Python runtime")
    return sorted(set(versions))


def code_source(root: Path) -> tuple[Path, list[str]]:
    """serverless.yml's inputs.src directory and its exclude globs."""
    path = root / "serverless.yml"
    src: object = "./handler"
    excludes: list[str] = []
    if path.exists():
        inputs = (_load_yaml(path).get("inputs") or {})
        src = inputs.get("src", src)
        if isinstance(src, dict):
            excludes = [str(p) for p in src.get("exclude") or []]
            src = src.get("src", "./handler")
    return (root / str(src)).resolve(), excludes


# --------------------------------------------------------------------------- pip


def _pip(args: Sequence[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", *args]
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


def _tail(output: str, lines: int = 25) -> str:
    kept = [line for line in output.splitlines() if "is ignored: it is neither a file nor a directory" not in line]
    return "\n".join(kept[-lines:])


_WHEEL_RE = re.compile(r"^(?P<name>[^-]+)-(?P<version>[^-]+)(-\d[^-]*)?-(?P<py>[^-]+)-(?P<abi>[^-]+)-(?P<plat>[^-]+)\.whl$")


def is_pure_py3_wheel(filename: str) -> bool:
    match = _WHEEL_RE.match(filename)
    return bool(match) and match["abi"] == "none" and match["plat"] == "any" and "py3" in match["py"].split(".")


def _can_build_in_place() -> bool:
    """True when this interpreter's setuptools can build wheels itself (setuptools ≥ 70.1 or `wheel`)."""
    import importlib.util

    try:
        return bool(importlib.util.find_spec("setuptools.command.bdist_wheel") or importlib.util.find_spec("wheel"))
    except (ImportError, ValueError):
        return False


def build_pure_wheel(requirement: str, wheelhouse: Path, python_version: str) -> Path:
    """Turn an sdist-only dependency into a pure-Python wheel in ``wheelhouse``.

    The compiler is disabled (``CC=false``), so a package with an *optional* C extension
    (crcmod) falls back to its pure-Python build and one with a mandatory extension fails
    here instead of shipping a ``.so`` compiled for the local interpreter.
    """
    with tempfile.TemporaryDirectory(prefix="ci-callback-sdist-") as tmp:
        sdists, wheels = Path(tmp) / "sdists", Path(tmp) / "wheels"
        proc = _pip(["download", "--no-deps", "--no-binary", ":all:", "--python-version", python_version,
                     "-d", str(sdists), requirement])
        if proc.returncode != 0:
            raise FetchError(f"cannot download the sdist of {requirement}:\n{_tail(proc.stdout)}")
        (sdist,) = list(sdists.iterdir())
        env = dict(os.environ)
        false = shutil.which("false") or "false"
        env.update(CC=false, CXX=false, LDSHARED=false)
        # The sdist sits in a fresh temporary directory, so pip's wheel cache (keyed by the
        # archive's location) can never hand back a wheel built earlier with a compiler.
        args = ["wheel", "--no-deps", "-w", str(wheels)]
        if _can_build_in_place():
            args.append("--no-build-isolation")  # no download of setuptools: works offline
        proc = _pip([*args, str(sdist)], env=env)
        built = list(wheels.glob("*.whl")) if wheels.is_dir() else []
        if proc.returncode != 0 or len(built) != 1:
            raise BuildError(f"cannot build a pure-Python wheel of {requirement} (C extension required?):\n"
                             f"{_tail(proc.stdout)}")
        wheel = built[0]
        if not is_pure_py3_wheel(wheel.name):
            raise BuildError(f"{requirement} built {wheel.name}: not py3-none-any, so it carries compiled code for "
                             f"this machine's Python, not the SCF runtime; find a {PLATFORM} wheel instead")
        with zipfile.ZipFile(wheel) as zf:
            compiled = [n for n in zf.namelist() if n.endswith((".so", ".pyd"))]
        if compiled:
            raise BuildError(f"{wheel.name} contains compiled files: {compiled}")
        wheelhouse.mkdir(parents=True, exist_ok=True)
        target = wheelhouse / wheel.name
        shutil.copy2(wheel, target)
        return target


_MISSING_RE = re.compile(r"No matching distribution found for ([A-Za-z0-9][A-Za-z0-9._-]*)(\S*)")


def _target(python_version: str) -> list[str]:
    return ["--platform", PLATFORM, "--implementation", "cp", "--python-version", python_version,
            "--only-binary=:all:"]


def fetch_wheels(requirements: Path, wheelhouse: Path, python_version: str) -> str | None:
    """Download every wheel the layer needs into ``wheelhouse`` (building sdist-only ones).

    Returns None on success, or why the index could not be used (the caller then tries to build
    offline from the wheelhouse a previous run left behind).
    """
    wheelhouse.mkdir(parents=True, exist_ok=True)
    built: list[str] = []
    for _ in range(8):
        proc = _pip(["download", *_target(python_version), "--find-links", str(wheelhouse),
                     "-d", str(wheelhouse), "-r", str(requirements)])
        if proc.returncode == 0:
            return None
        missing = _MISSING_RE.search(proc.stdout)
        if not missing or missing.group(1).lower() in built:
            return _tail(proc.stdout)
        name = missing.group(1).lower()
        built.append(name)
        try:
            wheel = build_pure_wheel(name + missing.group(2), wheelhouse, python_version)
        except FetchError as exc:  # no sdist either: most likely no index at all
            return str(exc)
        print(f"  {name}: no {PLATFORM} wheel on the index; built the pure-Python {wheel.name}")
    return "pip download kept failing after building sdist-only dependencies"


def pip_install_layer(requirements: Path, staging: Path, wheelhouse: Path, python_version: str) -> str:
    """Fetch into the wheelhouse, then ``pip install --target`` from it alone (``--no-index``)."""
    problem = fetch_wheels(requirements, wheelhouse, python_version)
    if problem and any(wheelhouse.glob("*.whl")):
        print(f"  warning: the package index failed; trying offline from {wheelhouse}:\n    "
              + problem.strip().replace("\n", "\n    ")[-1500:])
    elif problem:
        raise BuildError(f"cannot download the layer's wheels:\n{problem}")
    if staging.exists():
        shutil.rmtree(staging)
    proc = _pip(["install", "--no-compile", "--no-index", "--find-links", str(wheelhouse), "--target", str(staging),
                 *_target(python_version), "-r", str(requirements)])
    if proc.returncode != 0:
        raise BuildError(f"pip install failed:\n{_tail(proc.stdout)}" + (f"\n(download: {problem})" if problem else ""))
    return proc.stdout


# --------------------------------------------------------------------------- layer tree


def strip_tree(tree: Path) -> None:
    """Drop what the runtime never imports: caches, test suites, console scripts."""
    scripts = tree / "bin"
    if scripts.is_dir():
        shutil.rmtree(scripts)
    for path in sorted(tree.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if path.is_dir() and path.name in STRIP_DIRS and not path.name.endswith(".dist-info"):
            shutil.rmtree(path, ignore_errors=True)
        elif path.is_file() and path.suffix in STRIP_SUFFIXES:
            path.unlink()


def _wheel_tags(dist_info: Path) -> list[str]:
    wheel = dist_info / "WHEEL"
    if not wheel.exists():
        return []
    return [line.split(":", 1)[1].strip() for line in wheel.read_text().splitlines() if line.startswith("Tag:")]


def _tag_fits(tag: str, runtimes: list[tuple[int, int]]) -> bool:
    py, abi, plat = tag.split("-")
    if abi == "none" and plat == "any":
        return any(p.startswith("py3") or p == "py2.py3" for p in py.split("."))
    if not plat.endswith("x86_64") or not (plat.startswith("manylinux") or plat == "linux_x86_64"):
        return False
    if plat == "linux_x86_64":  # a local build, not a portable one
        return False
    match = re.fullmatch(r"cp(\d)(\d+)", py)
    if not match:
        return False
    built_for = (int(match.group(1)), int(match.group(2)))
    if abi == "abi3":  # stable ABI: loads on its version and every later one
        return all(rt >= built_for for rt in runtimes)
    return all(rt == built_for for rt in runtimes)


def validate_tree(tree: Path, runtimes: list[tuple[int, int]]) -> list[str]:
    """Everything that would break or bloat the layer on SCF."""
    problems = []
    for dist in sorted(tree.glob("*.dist-info")):
        tags = _wheel_tags(dist)
        if tags and not any(_tag_fits(tag, runtimes) for tag in tags):
            problems.append(f"{dist.name}: wheel tags {tags} do not fit runtimes {runtimes} on {PLATFORM}")
        if dist.name.lower().startswith(("tencentcloud_sdk_python-", "tencentcloud-sdk-python-")):
            problems.append(f"{dist.name}: the tencentcloud-sdk-python monolith (every product); "
                            "depend on tencentcloud-sdk-python-common + -scf instead")
    tencent = tree / "tencentcloud"
    if tencent.is_dir():
        extra = sorted(p.name for p in tencent.iterdir() if p.is_dir() and p.name not in TENCENTCLOUD_PRODUCTS)
        if extra:
            problems.append(f"tencentcloud/ holds more than {sorted(TENCENTCLOUD_PRODUCTS)}: {extra[:8]}"
                            f"{' …' if len(extra) > 8 else ''} (monolith pulled in?)")
    wanted = {f"cpython-{major}{minor}-x86_64-linux-gnu" for major, minor in runtimes}
    for so in sorted(tree.rglob("*.so")):
        rel = so.relative_to(tree).as_posix()
        match = re.search(r"\.(cpython-\d+-[^.]+)\.so$", so.name)
        if match and match.group(1) not in wanted:
            problems.append(f"{rel}: compiled for {match.group(1)}, the layer runs on {sorted(wanted)}")
        if so.name.startswith("_crcfunext"):
            problems.append(f"{rel}: crcmod's C extension; the layer must carry only its pure-Python fallback")
    return problems


def top_level(tree: Path) -> list[str]:
    """Importable top-level names in the tree (packages and modules)."""
    names = []
    for path in sorted(tree.iterdir()):
        if path.name.endswith(".dist-info"):
            continue
        if path.is_dir() or path.suffix == ".py":
            names.append(path.stem if path.is_file() else path.name)
        elif path.suffix == ".so":
            names.append(path.name.split(".", 1)[0])
    return names


# --------------------------------------------------------------------------- zips


def _files(base: Path, excludes: Iterable[str] = ()) -> Iterator[tuple[Path, str]]:
    patterns = list(excludes)
    for path in sorted(base.rglob("*")):
        if not path.is_file():
            continue
        rel = path.relative_to(base).as_posix()
        candidates = (rel, "/" + rel)
        if any(fnmatch.fnmatch(c, p) or fnmatch.fnmatch(c, p.lstrip("*/")) for p in patterns for c in candidates):
            continue
        yield path, rel


def write_zip(base: Path, dest: Path, excludes: Iterable[str] = ()) -> tuple[int, int, int]:
    """Zip ``base``'s contents (at the zip root), reproducibly. Returns (zip bytes, raw bytes, files)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".tmp")
    raw = count = 0
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for path, rel in _files(base, excludes):
            info = zipfile.ZipInfo(rel, ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (0o100000 | (0o755 if os.access(path, os.X_OK) else 0o644)) << 16
            data = path.read_bytes()
            zf.writestr(info, data, compresslevel=9)
            raw += len(data)
            count += 1
    tmp.replace(dest)
    return dest.stat().st_size, raw, count


def build_code_zip(out: Path = DEFAULT_OUT, root: Path = ROOT) -> Path:
    """handler/ (serverless.yml's inputs.src) at the zip root → OUT/ci-callback-code.zip."""
    src, excludes = code_source(root)
    if not (src / "index.py").is_file():
        raise BuildError(f"{src}/index.py not found: nothing to deploy")
    dest = out / CODE_ZIP
    size, raw, count = write_zip(src, dest, [*CODE_EXCLUDES, *excludes])
    print(f"code zip:  {dest} {mb(size):.2f} MB ({count} files, {mb(raw):.2f} MB unpacked)")
    return dest


def build_layer(out: Path = DEFAULT_OUT, root: Path = ROOT, budget_mb: float = LAYER_BUDGET_MB) -> Path:
    """requirements.txt for the layer's runtime → OUT/python/ and OUT/ci-callback-layer.zip."""
    runtimes = layer_runtimes(root)
    major, minor = runtimes[0]
    python_version = f"{major}.{minor}"
    out.mkdir(parents=True, exist_ok=True)
    staging = out / ".python-staging"
    print(f"layer: requirements.txt for CPython {python_version} ({PLATFORM}), runtimes "
          f"{', '.join(f'Python{a}.{b}' for a, b in runtimes)}")
    pip_install_layer(root / "requirements.txt", staging, out / "wheelhouse", python_version)
    strip_tree(staging)
    problems = validate_tree(staging, runtimes)
    if problems:
        raise BuildError("the layer is not deployable:\n  " + "\n  ".join(problems))
    tree = out / "python"
    if tree.exists():
        shutil.rmtree(tree)
    staging.rename(tree)
    dest = out / LAYER_ZIP
    size, raw, count = write_zip(tree, dest)
    print(f"layer contents: {', '.join(top_level(tree))}")
    print(f"layer zip: {dest} {mb(size):.2f} MB ({count} files, {mb(raw):.2f} MB unpacked; budget {budget_mb:g} MB)")
    if mb(size) > budget_mb:
        raise BuildError(f"the layer zip is {mb(size):.2f} MB, over the {budget_mb:g} MB budget")
    return dest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory (default layers/build)")
    parser.add_argument("--budget-mb", type=float, default=LAYER_BUDGET_MB, help="largest allowed layer zip")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--layer-only", action="store_true", help="build only the layer")
    group.add_argument("--code-only", action="store_true", help="build only the code zip")
    args = parser.parse_args(argv)
    out = args.out.resolve()
    try:
        if not args.code_only:
            build_layer(out, budget_mb=args.budget_mb)
        if not args.layer_only:
            build_code_zip(out)
    except BuildError as exc:
        print(f"build failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
