"""5. Size: the code zip and the dependency layer zip, built by layers/build.py into a
temporary directory (so a bench run never replaces layers/build/).

The layer build downloads wheels from PyPI (pip's cache makes re-runs fast and offline-able);
when it cannot, the layer is reported as "n/a" with the reason and the run goes on.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

BUILD = common.ROOT / "layers" / "build.py"
LAYER_TARGET_MB = 15.0  # layers/build.py's own budget (LAYER_BUDGET_MB)
TIMEOUT = 300


def _build(flag: str, out: Path) -> tuple[str | None, float]:
    """Run one build; return (error or None, seconds)."""
    start = time.perf_counter()
    try:
        done = subprocess.run([common.PYTHON, str(BUILD), flag, "--out", str(out)], cwd=str(common.ROOT),
                              capture_output=True, text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        return f"layers/build.py {flag} did not finish in {TIMEOUT} s (network?)", time.perf_counter() - start
    if done.returncode != 0:
        lines = [l for l in (done.stderr + done.stdout).splitlines() if l.strip()]
        reason = next((l for l in lines if "build failed" in l or "error" in l.lower()), lines[-1] if lines else "")
        return f"layers/build.py {flag} exited {done.returncode}: {reason.strip()[:200]}", time.perf_counter() - start
    return None, time.perf_counter() - start


def _describe(path: Path) -> dict[str, Any]:
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
    return {"zip_mb": path.stat().st_size / 2**20, "unpacked_mb": sum(i.file_size for i in infos) / 2**20,
            "files": len(infos)}


def run() -> dict[str, Any]:
    results: dict[str, Any] = {}
    if not BUILD.exists():
        results = {"code": {"error": "layers/build.py not found"}, "layer": {"error": "layers/build.py not found"}}
    else:
        with tempfile.TemporaryDirectory(prefix="ci-callback-bench-") as tmp:
            out = Path(tmp)
            for what, flag, name in (("code", "--code-only", "ci-callback-code.zip"),
                                     ("layer", "--layer-only", "ci-callback-layer.zip")):
                error, seconds = _build(flag, out)
                if error is None and (out / name).exists():
                    results[what] = {**_describe(out / name), "build_s": seconds}
                else:
                    results[what] = {"error": error or f"{name} was not produced", "build_s": seconds}
    rows = []
    for what in ("code", "layer"):
        r = results[what]
        if "error" in r:
            rows.append([f"{what} zip", "n/a", "n/a", "n/a", r["error"]])
        else:
            rows.append([f"{what} zip", f"{r['zip_mb']:.2f}", f"{r['unpacked_mb']:.2f}", r["files"],
                         f"built in {r['build_s']:.1f} s"])
    text = common.table(["artifact", "zip MB", "unpacked MB", "files", "note"], rows, "lrrrl")
    text += ("\n\nBuilt with `layers/build.py --code-only|--layer-only --out <tmp>` (the layer for the runtime "
             f"layers/serverless.yml names, Linux x86_64 wheels). Layer target: build.py's own budget, "
             f"{LAYER_TARGET_MB:g} MB.")
    layer, code = results["layer"], results["code"]
    return {
        "title": "5. Size of the deployables",
        "text": text,
        "data": results,
        "summary": [
            {"figure": "Layer zip", "value": layer.get("zip_mb"),
             "shown": f"{layer['zip_mb']:.2f} MB" if "zip_mb" in layer else f"n/a ({layer.get('error')})",
             "target": LAYER_TARGET_MB, "target_shown": f"≤ {LAYER_TARGET_MB:g} MB"},
            {"figure": "Code zip", "value": None,
             "shown": f"{code['zip_mb']:.3f} MB" if "zip_mb" in code else f"n/a ({code.get('error')})",
             "target": None, "target_shown": "info"},
        ],
    }


if __name__ == "__main__":
    common.emit(run())
