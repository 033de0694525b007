"""6. Cost growth: what one job callback costs as its job grows, and the worst accepted body.

* Growth table: a Segment job with N outputs, N ∈ GROWTH_N, at +10 ms per COS request
  (LocalCOS fault injection, LocalCOS in its own process), under a 20 s time limit. Each N
  runs in a fresh worker process that imports ``index`` and both SDKs as SCF does and calls
  ``main_handler`` with a Function URL event and an SCF context. A 202 "continuing" answer's
  continuation event is run next in the same worker, as SCF would run it (one invocation at
  a time, each with its own time limit). Reported: invocations, the slowest invocation's
  wall time against its deadline, total wall, COS requests, peak RSS (ru_maxrss), and the
  billed GB-seconds at 128 MB (the sum of invocation durations × 0.125 GB).
* Worst accepted body: the 1 MiB XML and JSON bodies (``bigjob.largest_body``), storage a
  no-op, SDKs imported: peak RSS.
* Critical path: the round trips on each callback kind's critical path, measured as
  ``fanout.py`` does (wall growth from +20 ms to +100 ms per request ÷ 80 ms).
* Fan-out width: a 300-output job at +10 ms per request for several pool widths.

``python bench/growth.py [N,N,…]`` runs it alone (``--quick``: N ≤ 1,000, fewer repeats).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
from ci_callback_dev import bigjob  # noqa: E402

GROWTH_N = (1, 10, 100, 1000, 5000)
DELAY = 0.01
LIMIT_MS = 20000
MEMORY_MB = 128
TARGET_WORST_MB = 96.0
TARGET_RTT = 4.0
WIDTHS = (1, 2, 4, 8, 10, 16, 24, 32)
CHAIN_N, CHAIN_LIMIT_MS = 2000, 4000  # the "done when": a 2,000-output job under a 4 s limit
WIDTH_N = 300
RTT_DELAYS = (0.02, 0.1)
RTT_KINDS = ("apigw-smartcover-xml", "apigw-segment-xml-base64", "apigw-transcode-failed-xml",
             "apigw-workflow-xml", "function-url-review-detail-json")
LAUNCHER = [common.PYTHON, "-S", "-c", "import subprocess, sys; sys.exit(subprocess.call(sys.argv[1:]))"]
SDK_MODULES = ("qcloud_cos", "tencentcloud.scf.v20180416.scf_client", "tencentcloud.scf.v20180416.models")


def _peak_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---------------------------------------------------------------- the measured process


def _local_invoker(pending: list[dict[str, Any]]) -> bool:
    """Capture continuation invokes so the worker can run them next, as SCF would."""
    try:
        from ci_callback_dev.localscf import capture_invokes
    except ImportError:  # before continuations existed
        return False
    capture_invokes(pending.append)
    return True


def worker(spec_path: str, out_path: str) -> None:
    """One job's whole chain in a fresh process: SDKs imported as in SCF, then main_handler."""
    spec = json.loads(Path(spec_path).read_text())
    import importlib

    for name in SDK_MODULES:
        importlib.import_module(name)
    import index  # the SCF entry module
    from ci_callback import log

    log.set_stream(open(os.devnull, "w"))  # lines are built, not printed
    if spec.get("noop"):
        from ci_callback import app

        services = common.NoopServices()
        original = app.handle

        def handle_noop(event: Any, context: Any = None) -> Any:
            return original(event, context, services=services)

        index.main_handler = handle_noop  # type: ignore[assignment]
    event = json.loads(Path(spec["event"]).read_text())  # the SCF runtime hands us a parsed dict too
    pending: list[dict[str, Any]] = []
    chained = _local_invoker(pending)
    invocations = []
    started_all = time.perf_counter()
    step = 0
    while event is not None and step < spec.get("max_invocations", 200):
        step += 1
        context = {"request_id": f"growth-{step}", "time_limit_in_ms": spec["limit_ms"],
                   "function_name": "ci-callback", "namespace": "default", "memory_limit_in_mb": MEMORY_MB}
        cpu0, t0 = time.process_time(), time.perf_counter()
        response = index.main_handler(event, context)
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        body = json.loads(response.get("body") or "{}")
        invocations.append({"status": response["statusCode"], "outcome": body.get("status"), "wall_s": wall,
                            "cpu_s": cpu, "peak_mb": _peak_mb()})
        event = pending.pop(0) if pending else None
        del response, body
    Path(out_path).write_text(json.dumps({
        "invocations": invocations, "total_s": time.perf_counter() - started_all, "peak_mb": _peak_mb(),
        "chained": chained, "left": len(pending) + (event is not None)}))


def _event_file(tmp: Path, body: bytes, fmt: str, name: str) -> Path:
    event = {"headers": {"content-type": f"application/{fmt}", "content-length": str(len(body))},
             "httpMethod": "POST", "path": "/", "queryString": {"token": common.TOKEN},
             "body": body.decode("utf-8")}
    path = tmp / f"{name}.json"
    path.write_text(json.dumps(event, ensure_ascii=False))
    return path


def run_worker(spec: dict[str, Any], env: dict[str, str], tmp: Path) -> dict[str, Any]:
    spec_path, out = tmp / "spec.json", tmp / "out.json"
    spec_path.write_text(json.dumps(spec))
    # A tiny launcher in between gives the worker a clean ru_maxrss (it survives exec).
    done = subprocess.run(LAUNCHER + [common.PYTHON, __file__, "--worker", str(spec_path), str(out)], env=env,
                          cwd=str(common.ROOT), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"growth worker failed:\n{done.stderr[-3000:]}")
    return json.loads(out.read_text())


def _env(endpoint: str | None, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(common.BENCH_ENV)
    env.update(CI_CALLBACK_TOKENS=common.TOKEN, **extra)
    if endpoint:
        env["CI_CALLBACK_COS_ENDPOINT"] = endpoint
    env["PYTHONPATH"] = os.pathsep.join([str(common.ROOT / "dev"), str(common.HANDLER)])
    return env


# ---------------------------------------------------------------- sections


def growth(cos: common.CosServer, sizes: list[int], tmp: Path, delay: float = DELAY,
           limit_ms: int = LIMIT_MS) -> list[dict[str, Any]]:
    rows = []
    for n in sizes:
        job_id = f"jgrowth{n:07d}{int(time.time() * 1000) % 10**9:09d}"
        cos.call(op="seed_keys", bucket=bigjob.BUCKET, keys=bigjob.output_keys(n))
        event = _event_file(tmp, bigjob.segment_body(n, "xml", job_id), "xml", f"growth-{n}")
        cos.delay(delay)
        cos.reset()
        result = run_worker({"event": str(event), "limit_ms": limit_ms}, _env(cos.endpoint), tmp)
        requests = cos.call(op="count")
        cos.delay(0)
        check = {"tagged": None, "done": None}
        if len(result["invocations"]) > 1:  # a chain: did it finish everything?
            done_key = f"ci-markers/job/{job_id}/Success/done.json"
            check = cos.call(op="verify_job", bucket=bigjob.BUCKET, keys=bigjob.output_keys(n), done_key=done_key)
        walls = [i["wall_s"] for i in result["invocations"]]
        deadline_s = max(limit_ms / 1000 - 0.5, limit_ms / 2000)  # budget.deadline_of
        rows.append({
            "n": n, "invocations": len(walls), "wall_max_s": max(walls), "wall_median_s": common.median(walls),
            "total_s": sum(walls), "requests": requests, "peak_mb": result["peak_mb"],
            "gb_s": sum(walls) * MEMORY_MB / 1024, "statuses": [i["status"] for i in result["invocations"]],
            "over_limit": sum(1 for w in walls if w > deadline_s), "left": result["left"], "limit_ms": limit_ms,
            "cpu_s": sum(i["cpu_s"] for i in result["invocations"]), **check,
        })
        print(f"  growth N={n}: {rows[-1]}", flush=True)
    return rows


def worst_body(tmp: Path) -> list[dict[str, Any]]:
    rows = []
    for fmt in ("xml", "json"):
        count, body = bigjob.largest_body(fmt)
        event = _event_file(tmp, body, fmt, f"worst-{fmt}")
        body_bytes = len(body)
        del body
        result = run_worker({"event": str(event), "limit_ms": LIMIT_MS, "noop": True, "max_invocations": 1},
                            _env(None), tmp)
        first = result["invocations"][0]
        rows.append({"fmt": fmt, "outputs": count, "bytes": body_bytes, "peak_mb": result["peak_mb"],
                     "status": first["status"], "outcome": first["outcome"], "wall_s": first["wall_s"]})
        print(f"  worst body {fmt}: {rows[-1]}", flush=True)
    return rows


def critical_path(cos: common.CosServer, repeats: int) -> list[dict[str, Any]]:
    from ci_callback.app import handle

    events = dict(common.load_events())
    settings = common.local_settings(cos.endpoint)
    rows = []
    serial = 0
    for name in RTT_KINDS:
        event = events[name]
        handle(common.with_token(common.with_id(event, f"rttwarm{name[-6:]}")), common.context(), settings=settings)
        walls: dict[float, float] = {}
        requests = 0
        for delay in RTT_DELAYS:
            cos.delay(delay)
            samples = []
            for _ in range(repeats):
                serial += 1
                one = common.with_token(common.with_id(event, f"rtt{serial:05d}x"))
                cos.reset()
                t0 = time.perf_counter()
                response = handle(one, common.context(), settings=settings)
                samples.append(time.perf_counter() - t0)
                requests = cos.call(op="count")
                if response["statusCode"] >= 300:
                    raise RuntimeError(f"{name} answered {response['statusCode']}: {response['body']}")
            walls[delay] = common.median(samples)
        cos.delay(0)
        span = RTT_DELAYS[1] - RTT_DELAYS[0]
        rows.append({"event": name, "requests": requests, "ms_low": walls[RTT_DELAYS[0]] * 1000,
                     "ms_high": walls[RTT_DELAYS[1]] * 1000, "rtt": (walls[RTT_DELAYS[1]] - walls[RTT_DELAYS[0]]) / span})
        print(f"  critical path {name}: {rows[-1]['rtt']:.2f} RTT", flush=True)
    return rows


def widths(cos: common.CosServer, tmp: Path, n: int = WIDTH_N) -> list[dict[str, Any]]:
    rows = []
    cos.call(op="seed_keys", bucket=bigjob.BUCKET, keys=bigjob.output_keys(n))
    for width in WIDTHS:
        job_id = f"jwidth{width:03d}{int(time.time() * 1000) % 10**9:09d}"
        event = _event_file(tmp, bigjob.segment_body(n, "xml", job_id), "xml", f"width-{width}")
        cos.delay(DELAY)
        cos.reset()
        result = run_worker({"event": str(event), "limit_ms": LIMIT_MS}, _env(cos.endpoint, CI_CALLBACK_FANOUT=str(width)),
                            tmp)
        cos.delay(0)
        total = sum(i["wall_s"] for i in result["invocations"])
        requests = cos.call(op="count")
        rows.append({"width": width, "total_s": total, "requests": requests, "per_s": requests / total,
                     "peak_mb": result["peak_mb"], "invocations": len(result["invocations"])})
        print(f"  width {width}: {rows[-1]}", flush=True)
    return rows


def run(sizes: list[int] | None = None, quick: bool = False) -> dict[str, Any]:
    import png

    common.use_bench_env()
    common.quiet_logs()
    sizes = list(sizes or ([n for n in GROWTH_N if n <= 1000] if quick else GROWTH_N))
    with common.CosServer() as cos, tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        grow = growth(cos, sizes, tmp)
        grow += growth(cos, [CHAIN_N], tmp, limit_ms=CHAIN_LIMIT_MS)
        worst = worst_body(tmp)
        rtt = critical_path(cos, 3 if quick else 5)
        width = widths(cos, tmp) if not quick else []
    text = ("Growth: Segment job, N outputs, +10 ms per COS request, 20 s time limit (the last row: 4 s), every "
            "continuation run next in the same worker as SCF would run it:\n\n")
    text += common.table(
        ["N outputs", "limit s", "invocations", "slowest invocation s", "total wall s", "COS requests",
         "peak RSS MB", "GB-s at 128 MB", "past the deadline", "statuses", "chain finished"],
        [[f"{r['n']:,}", f"{r['limit_ms'] / 1000:g}", r["invocations"], f"{r['wall_max_s']:.2f}", f"{r['total_s']:.2f}",
          f"{r['requests']:,}",
          f"{r['peak_mb']:.1f}", f"{r['gb_s']:.3f}", r["over_limit"],
          " ".join(str(s) for s in r["statuses"][:6]) + (" …" if len(r["statuses"]) > 6 else ""),
          "-" if r["tagged"] is None else f"{r['tagged']:,}/{r['n']:,} tagged, done {'yes' if r['done'] else 'NO'}"]
         for r in grow])
    text += "\n\nWorst accepted body (1 MiB), storage a no-op, qcloud_cos and tencentcloud.scf imported:\n\n"
    text += common.table(["format", "outputs", "body bytes", "peak RSS MB", "target", "answer", "wall s"],
                         [[w["fmt"], f"{w['outputs']:,}", f"{w['bytes']:,}", f"{w['peak_mb']:.1f}",
                           f"≤ {TARGET_WORST_MB:g}", f"{w['status']} {w['outcome']}", f"{w['wall_s']:.2f}"]
                          for w in worst])
    text += ("\n\nRound trips on the critical path (wall growth from +20 ms to +100 ms per request ÷ 80 ms; a job: "
             "archive ∥ lease, tag reads ∥ index, tag writes, done; a failed job or a review: archive ∥ lease, "
             "record, done; a workflow: archive ∥ lease, manifest ∥ latest-run read, [latest-run write when it "
             "changes; not here: the warm-up run id sorts later], done):\n\n")
    text += common.table(["event", "COS requests", "ms at +20", "ms at +100", "RTT"],
                         [[r["event"], r["requests"], f"{r['ms_low']:.0f}", f"{r['ms_high']:.0f}", f"{r['rtt']:.2f}"]
                          for r in rtt])
    if width:
        text += f"\n\nFan-out width: {WIDTH_N}-output Segment job at +10 ms per request:\n\n"
        text += common.table(["width", "wall s", "COS requests", "requests/s", "peak RSS MB"],
                             [[w["width"], f"{w['total_s']:.2f}", w["requests"], f"{w['per_s']:.0f}",
                               f"{w['peak_mb']:.1f}"] for w in width])
    out = common.OUT
    out.mkdir(parents=True, exist_ok=True)
    grow, chained = [r for r in grow if r["limit_ms"] == LIMIT_MS], grow
    labels = [f"N={r['n']}" for r in grow]
    png.bar_chart(out / "growth.png", "Segment job with N outputs at +10 ms per request, 20 s limit", labels,
                  {"total wall s": [r["total_s"] for r in grow], "slowest invocation s": [r["wall_max_s"] for r in grow]},
                  unit="", marks={i: LIMIT_MS / 1000 for i in range(len(grow))})
    charts = ["growth.png"]
    if width:
        png.line_chart(out / "fanout-width.png", f"{WIDTH_N} outputs at +10 ms: wall s by pool width",
                       [w["width"] for w in width], {"wall s": [w["total_s"] for w in width]},
                       xlabel="width", ylabel="s")
        charts.append("fanout-width.png")
    worst_peak = max(w["peak_mb"] for w in worst)
    ordinary = [r for r in rtt if "smartcover" in r["event"] or "segment" in r["event"]]
    summary = [
        {"figure": "Worst accepted body (1 MiB) peak RSS, SDKs loaded", "value": worst_peak,
         "shown": f"{worst_peak:.1f} MB (" + ", ".join(f"{w['fmt']} {w['peak_mb']:.1f}" for w in worst) + ")",
         "target": TARGET_WORST_MB, "target_shown": f"≤ {TARGET_WORST_MB:g} MB"},
        # Verdict on whole rounds: every kind's slope carries a small excess over its count of
        # sequential requests (one-request kinds included), which is measurement, not a round trip.
        {"figure": "Ordinary job callback: round trips on the critical path",
         "value": float(round(max(r["rtt"] for r in ordinary))),
         "shown": f"{round(max(r['rtt'] for r in ordinary))} rounds (slopes: "
                  + ", ".join(f"{r['event'].split('-')[1]} {r['rtt']:.2f}" for r in ordinary) + ")",
         "target": TARGET_RTT, "target_shown": f"≤ {TARGET_RTT:g} RTT"},
    ]
    for r in chained:
        summary.append({"figure": f"N={r['n']:,} outputs, {r['limit_ms'] / 1000:g} s limit: invocations past "
                                  "their deadline", "value": float(r["over_limit"]),
                        "shown": f"{r['over_limit']} of {r['invocations']} (slowest {r['wall_max_s']:.1f} s, "
                                 f"{r['gb_s']:.3f} GB-s)", "target": 0.0, "target_shown": "0"})
    return {"title": "6. Cost growth, worst body, critical path, fan-out width", "text": text,
            "data": {"growth": chained, "worst": worst, "rtt": rtt, "widths": width, "delay_s": DELAY,
                     "limit_ms": LIMIT_MS},
            "summary": summary, "charts": charts}


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2], sys.argv[3])
    else:
        args = [a for a in sys.argv[1:] if not a.startswith("--")]
        common.emit(run([int(x) for x in args[0].split(",")] if args else None, quick="--quick" in sys.argv))
