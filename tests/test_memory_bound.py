"""Memory bounded by design: the largest accepted body, with both SDKs imported as in SCF,
peaks at ≤ 96 MB RSS (the 128 MB tier's headroom), in a fresh process (ru_maxrss)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ci_callback_dev import bigjob
from conftest import ROOT

LIMIT_MB = 96.0
LAUNCHER = [sys.executable, "-S", "-c", "import subprocess, sys; sys.exit(subprocess.call(sys.argv[1:]))"]


@pytest.mark.parametrize("fmt", ["xml", "json"])
def test_the_largest_accepted_body_stays_bounded(tmp_path, fmt):
    count, body = bigjob.largest_body(fmt)
    event = {"headers": {"content-type": f"application/{fmt}"}, "httpMethod": "POST", "path": "/",
             "queryString": {"token": "bench-token-7c1d"}, "body": body.decode("utf-8")}
    (tmp_path / "event.json").write_text(json.dumps(event))
    spec = {"event": str(tmp_path / "event.json"), "limit_ms": 20000, "noop": True, "max_invocations": 1}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    env = {"PATH": "/usr/bin:/bin", "CI_CALLBACK_TOKENS": "bench-token-7c1d",
           "PYTHONPATH": f"{ROOT / 'dev'}:{ROOT / 'handler'}"}
    done = subprocess.run(LAUNCHER + [sys.executable, str(ROOT / "bench" / "growth.py"), "--worker",
                                      str(tmp_path / "spec.json"), str(tmp_path / "out.json")],
                          env=env, cwd=str(ROOT), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads((tmp_path / "out.json").read_text())
    first = result["invocations"][0]
    assert (first["status"], first["outcome"]) == (200, "processed"), (count, first)
    assert result["peak_mb"] <= LIMIT_MB, f"{count} outputs ({fmt}): peak RSS {result['peak_mb']:.1f} MB"
