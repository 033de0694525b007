"""Shared helpers for the benchmarks: paths, events, a no-op storage, a LocalCOS in its
own process, statistics, tables and the machine description.

Benchmarks are scripts, not tests: they print figures and never assert on timing.
Only the stdlib is imported here at module level.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
HANDLER = ROOT / "handler"
EVENTS = ROOT / "events"
OUT = ROOT / "bench" / "out"
PYTHON = sys.executable
TOKEN = "bench-token-7c1d"
BUCKET = "examplebucket-1250000000"
REGION = "ap-guangzhou"

DEV = ROOT / "dev"
for _path in (DEV, HANDLER):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from ci_callback_dev import events  # noqa: E402 - the one SCF event builder, from dev/ (path set above)
from ci_callback_dev.events import body_of as event_body  # noqa: E402, F401 - used by the benchmarks
from ci_callback_dev.events import with_body  # noqa: E402, F401

# Role credentials as SCF injects them (fake; the local COS accepts any signature).
BENCH_ENV = {
    "TENCENTCLOUD_SECRETID": "AKIDbenchlocal",
    "TENCENTCLOUD_SECRETKEY": "benchlocalkey",
    "TENCENTCLOUD_SESSIONTOKEN": "benchlocaltoken",
    "TENCENTCLOUD_REGION": REGION,
}


def use_bench_env() -> None:
    os.environ.update(BENCH_ENV)


# ---------------------------------------------------------------- events


def load_events() -> list[tuple[str, dict[str, Any]]]:
    """Every sample HTTP event in events/ (callbacks; not the timer or queue samples, not
    context.json), sorted by name."""
    from ci_callback.edge import triggers

    found = []
    for path in sorted(EVENTS.glob("*.json")):
        if path.name != "context.json":
            event = json.loads(path.read_text(encoding="utf-8"))
            if triggers.classify(event) == triggers.HTTP:
                found.append((path.stem, event))
    return found


def with_token(event: dict[str, Any], token: str = TOKEN) -> dict[str, Any]:
    return events.with_token(event, token)


def callback_id(event: dict[str, Any]) -> str | None:
    """The job / run / trace id the event's callback carries (None when it has none)."""
    from ci_callback.model.parse import parse_callback

    return parse_callback(event_body(event)).id


def with_id(event: dict[str, Any], new_id: str) -> dict[str, Any]:
    """The same event with its callback id replaced everywhere in the body (distinct ids)."""
    old = callback_id(event)
    if not old:
        return event
    return with_body(event, event_body(event).replace(old.encode(), new_id.encode()))


def context(request_id: str = "bench") -> dict[str, Any]:
    return {"request_id": request_id, "time_limit_in_ms": 10000}


# ---------------------------------------------------------------- no-op storage


class NoopStorage:
    """A storage target that does nothing but encode what it is given, as the real adapter
    does (CPU and memory benchmarks): every write succeeds, no object has tags, no marker
    exists, there is no deadline."""

    deadline = None

    def __init__(self) -> None:
        self.calls = 0

    def until(self, deadline):  # the real adapter's earlier-deadline view
        return self

    def learn_regions(self, named):  # the real adapter's region rule
        for _ in named:
            pass

    def region_of(self, bucket):
        return "ap-guangzhou"

    def put_json(self, bucket, key, document, compact=False):
        self.calls += 1
        if compact:
            json.dumps(document, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")
        else:
            json.dumps(document, ensure_ascii=False, sort_keys=True, indent=1).encode("utf-8")

    def put_bytes(self, bucket, key, body, content_type="application/octet-stream"):
        self.calls += 1

    def get_json(self, bucket, key):
        self.calls += 1
        return None

    def head(self, bucket, key):
        self.calls += 1
        return None

    def create_once(self, bucket, key, document):
        self.calls += 1
        return True

    def get_tags(self, bucket, key):
        self.calls += 1
        return {}

    def put_tags(self, bucket, key, tags):
        self.calls += 1

    def delete(self, bucket, key):
        self.calls += 1

    def list_keys(self, bucket, prefix):
        self.calls += 1
        return iter(())

    def query_ci(self, method, **kwargs):
        self.calls += 1
        return {}


class NoopServices:
    """What ``handle(services=…)`` needs: .storage (no-op), .pool (the real bounded pool)."""

    def __init__(self, fanout: int = 10) -> None:
        from ci_callback.adapters import services

        self.storage = NoopStorage()
        self.pool = services.pool(fanout)
        self.notifier = self.scf = None  # notify is not configured in the benchmarks


# ---------------------------------------------------------------- LocalCOS in its own process

_SERVER_CODE = r"""
import json, os, sys
sys.path[:0] = [{handler!r}, {dev!r}]
from ci_callback_dev.localcos import LocalCOS, Fault
from ci_callback_dev.localdemo import load_events, seed_objects
from pathlib import Path
cos = LocalCOS().start()
out = sys.stdout
sys.stdout = sys.stderr  # keep the control channel clean
def reply(value):
    out.write(json.dumps(value) + "\n"); out.flush()
reply({{"endpoint": cos.endpoint, "pid": os.getpid()}})
for line in sys.stdin:
    cmd = json.loads(line)
    op = cmd["op"]
    if op == "seed":
        made, buckets = seed_objects(cos, load_events(Path(cmd["events"])))
        reply({{"objects": made, "buckets": buckets}})
    elif op == "seed_keys":  # a large job's outputs (growth bench)
        reply({{"objects": cos.seed(cmd["bucket"], cmd["keys"])}})
    elif op == "verify_job":  # after a chain: how many outputs carry our tags, is the done marker there
        client = cos.client()
        tagged = 0
        for key in cmd["keys"]:
            tags = (client.get_object_tagging(Bucket=cmd["bucket"], Key=key).get("TagSet") or {{}}).get("Tag") or []
            tags = [tags] if isinstance(tags, dict) else tags
            tagged += any(t.get("Key") == "ci-source" for t in tags)
        try:
            client.head_object(Bucket=cmd["bucket"], Key=cmd["done_key"])
            done = True
        except Exception:
            done = False
        reply({{"tagged": tagged, "done": done}})
    elif op == "delay":
        cos.clear_faults()
        if cmd["seconds"]:
            cos.inject(Fault(delay=cmd["seconds"]), times=None)
        reply({{"ok": True}})
    elif op == "reset":
        cos.reset_requests(); reply({{"ok": True}})
    elif op == "log":
        reply([[r.method, r.path, r.query, r.status] for r in cos.requests])
    elif op == "count":
        reply(cos.request_count)
    elif op == "stop":
        cos.stop(); reply({{"ok": True}}); break
"""


class CosServer:
    """LocalCOS (moto S3 behind werkzeug) running in a child process, so neither its CPU
    (it holds the GIL while serving) nor its memory count against the process measured.
    Controlled with one JSON line per command on stdin/stdout."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None
        self.endpoint = ""
        self._lock = threading.Lock()

    def start(self, seed: bool = True) -> CosServer:
        code = _SERVER_CODE.format(handler=str(HANDLER), dev=str(DEV))
        self.proc = subprocess.Popen([PYTHON, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True, cwd=str(ROOT))
        hello = self._read()
        self.endpoint = hello["endpoint"]
        if seed:
            self.call(op="seed", events=str(EVENTS))
        return self

    def _read(self) -> Any:
        assert self.proc is not None and self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the LocalCOS child process exited")
        return json.loads(line)

    def call(self, **cmd: Any) -> Any:
        assert self.proc is not None and self.proc.stdin is not None
        with self._lock:
            self.proc.stdin.write(json.dumps(cmd) + "\n")
            self.proc.stdin.flush()
            return self._read()

    def delay(self, seconds: float) -> None:
        self.call(op="delay", seconds=seconds)

    def reset(self) -> None:
        self.call(op="reset")

    def log(self) -> list[list[Any]]:
        return self.call(op="log")

    def stop(self) -> None:
        if self.proc is None:
            return
        try:
            self.call(op="stop")
        except (RuntimeError, BrokenPipeError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def __enter__(self) -> CosServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def local_settings(endpoint: str, **overrides: Any):  # type: ignore[no-untyped-def]
    from ci_callback.settings import Settings

    values = {"tokens": (TOKEN,), "cos_endpoint": endpoint, "region": REGION}
    values.update(overrides)
    return Settings(**values)


def quiet_logs() -> None:
    """Log lines still get built (that is part of our cost) but go nowhere."""
    from ci_callback import log

    log.set_stream(open(os.devnull, "w"))  # lives as long as the process


# ---------------------------------------------------------------- statistics and tables


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))
    return ordered[rank - 1]


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], align: str | None = None) -> str:
    """A Markdown table (also readable as plain text). align: one 'l'/'r' per column."""
    rows = [[str(c) for c in r] for r in rows]
    align = align or "l" + "r" * (len(headers) - 1)
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]

    def fmt(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) if a == "l" else c.rjust(w) for c, w, a in zip(cells, widths, align)) + " |"

    rule = "|" + "|".join(("-" * (w + 1) + ":" if a == "r" else ":" + "-" * (w + 1)) for w, a in zip(widths, align)) + "|"
    return "\n".join([fmt(headers), rule] + [fmt(r) for r in rows])


def verdict(value: float | None, target: float | None) -> str:
    if value is None or target is None:
        return "n/a"
    return "PASS" if value <= target else "MISS"


# ---------------------------------------------------------------- the machine


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        load = os.getloadavg()
    except OSError:
        load = (float("nan"),) * 3
    return {
        "date": _dt.datetime.now(_dt.timezone.utc).astimezone().isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "loadavg_at_start": [round(x, 2) for x in load],
    }


def emit(result: dict[str, Any]) -> None:
    """Print a section's tables (when run on its own)."""
    print(f"## {result['title']}\n")
    print(result["text"])
    print()
