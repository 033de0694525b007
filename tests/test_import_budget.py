"""Cold start: ``import index`` (what SCF does at instance start) stays small and fast.

The COS/SCF SDKs, requests, xmltodict and moto are imported only when a request needs
them (an XML body, an action on COS), never by the import of the entry point.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys

import pytest

from conftest import ROOT

HEAVY = ("qcloud_cos", "tencentcloud", "requests", "xmltodict", "moto", "urllib3", "boto3", "botocore")
RUNS = 5
BUDGET_SECONDS = 0.5  # generous so CI noise cannot flake; the printed figure is what matters

# Runs in a fresh interpreter: -I ignores PYTHON* variables and the user site, -S skips
# site-packages' .pth hooks (they may import anything), so only index's own imports count.
# time and sys are imported before the clock starts, everything else after it stops.
PROBE = r"""
import sys, time
sys.path.insert(0, HANDLER)
before = set(sys.modules)
start = time.perf_counter()
import index
elapsed = time.perf_counter() - start
after = set(sys.modules)
import json
print(json.dumps({
    "seconds": elapsed,
    "new": sorted(after - before),
    "main_handler": callable(getattr(index, "main_handler", None)),
}))
"""


def probe(*flags: str) -> dict:
    code = PROBE.replace("HANDLER", repr(str(ROOT / "handler")))
    done = subprocess.run([sys.executable, *flags, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def runs():
    return [probe("-I", "-S") for _ in range(RUNS)]


def test_index_exposes_main_handler(runs):
    assert all(run["main_handler"] for run in runs)


def test_index_imports_no_heavy_module(runs):
    new = runs[0]["new"]
    heavy = sorted(m for m in new if m.split(".")[0] in HEAVY)
    assert heavy == [], f"import index pulled in {heavy}"
    assert "index" in new and "ci_callback.app" in new


def test_index_imports_no_heavy_module_with_site_packages():
    # The same with site-packages active, as on SCF (layers and the code root on the path).
    new = probe("-I")["new"]
    assert sorted(m for m in new if m.split(".")[0] in HEAVY) == []


def test_index_import_time(runs):
    times = sorted(run["seconds"] for run in runs)
    best, median = times[0], statistics.median(times)
    modules = len(runs[0]["new"])
    print(f"\nimport index: best {best * 1000:.1f} ms, median {median * 1000:.1f} ms over {RUNS} fresh "
          f"interpreters; {modules} modules newly imported")
    assert median < BUDGET_SECONDS


# A refused request (wrong token) with a user's handler module beside index.py, as it ships: the
# user's decorators load the router and the models' annotations, never the parser or COS machinery.
USER_MODULE = '''from ci_callback.app import router


@router.on_job("SmartCover", state="Success")
def mine(callback, inv):
    inv.services.storage.put_json(callback.input.bucket, "mine.json", {}, callback.input.region)
'''
REFUSED = r"""
import sys, time, json
sys.path.insert(0, HANDLER)
start = time.perf_counter()
import index
imported = time.perf_counter() - start
response = index.main_handler(json.loads(EVENT), {"request_id": "budget"})
answered = time.perf_counter() - start
machinery = ("ci_callback.adapters.cos", "ci_callback.adapters.services", "ci_callback.adapters.scf", "ci_callback.pipeline",
             "ci_callback.model.parse", "ci_callback.model.decode")
print(json.dumps({
    "status": response["statusCode"], "import": imported, "answered": answered, "user": "my_rules" in sys.modules,
    "heavy": sorted(m for m in sys.modules if m.split(".")[0] in HEAVY or m in machinery),
}))
"""


def test_a_refused_request_with_a_user_handler_module_loaded(tmp_path):
    import os
    import shutil

    from ci_callback_dev import events

    tree = tmp_path / "handler"
    shutil.copytree(ROOT / "handler", tree, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    (tree / "my_rules.py").write_text(USER_MODULE, encoding="utf-8")
    index = tree / "index.py"
    index.write_text(index.read_text(encoding="utf-8") + "\nimport my_rules  # noqa: E402,F401\n", encoding="utf-8")
    event = events.function_url_event("<Response/>", token="wrong-token", headers={"content-type": "application/xml"})
    code = (REFUSED.replace("HANDLER", repr(str(tree))).replace("EVENT", repr(json.dumps(event)))
            .replace("HEAVY", repr(HEAVY)))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CI_CALLBACK_")}
    env["CI_CALLBACK_TOKENS"] = "the-real-token"
    done = subprocess.run([sys.executable, "-I", "-c", code], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    run = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"\nrefused with a user module: import {run['import'] * 1000:.1f} ms, answered "
          f"{run['answered'] * 1000:.1f} ms after import started")
    assert (run["status"], run["user"], run["heavy"]) == (403, True, [])
    assert run["answered"] < BUDGET_SECONDS
