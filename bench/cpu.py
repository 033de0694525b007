"""1. Per-callback CPU: the whole pipeline against a no-op storage, and the parser's share of it.

Ours: ``ci_callback.app.handle(event, context, settings=…, services=…)`` with a token that
matches and ``services`` whose ``.storage`` is a no-op (``common.NoopStorage``) and whose
``.pool`` is the real bounded fan-out pool, so everything but the network is measured:
HTTP edge, token check, safe decode, typed model, archive document and key (sha256), the
marker claim, routing, index document, tag merging on the pool, the log line and the
integrated response.

Parser: ``parse_callback(body)`` (safe decode and the typed model) of the same body, and
within it the bare ``xmltodict.parse(body)`` or ``json.loads(body)``. Reported as
information: the old target (CPU ≤ 1.5× the bare parse) is retired, since a callback's
CPU is dominated by the work it must do beside parsing (hashing and encoding documents,
signing COS requests), not by overhead around the parse.

Timing is timeit-style (warm, a loop count per repeat picked so one repeat takes about
``REPEAT_SECONDS``, the median over the repeats), on CPU time (``time.process_time``, all
threads: the pool's work counts) and on wall time (``time.perf_counter``). GC stays on
for both sides, as in production.

    python bench/cpu.py                 # the table
    python bench/cpu.py --profile NAME  # cProfile of ours on one event (name without .json)
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

REPEATS = 15
REPEAT_SECONDS = 0.04
WARMUP = 50
SORT = "tottime"


def _loops(fn: Callable[[], Any]) -> int:
    """timeit.autorange's idea: grow the loop count until one repeat lasts long enough."""
    loops = 1
    while True:
        start = time.perf_counter()
        for _ in range(loops):
            fn()
        if time.perf_counter() - start >= REPEAT_SECONDS or loops >= 1 << 16:
            return loops
        loops *= 2


def measure(fn: Callable[[], Any]) -> dict[str, float]:
    for _ in range(WARMUP):
        fn()
    loops = _loops(fn)
    cpu: list[float] = []
    wall: list[float] = []
    for _ in range(REPEATS):
        c0, w0 = time.process_time(), time.perf_counter()
        for _ in range(loops):
            fn()
        cpu.append((time.process_time() - c0) / loops * 1e6)
        wall.append((time.perf_counter() - w0) / loops * 1e6)
    return {"cpu_us": common.median(cpu), "wall_us": common.median(wall), "loops": loops, "repeats": REPEATS,
            "cpu_us_min": min(cpu), "wall_us_min": min(wall)}


def _cases() -> list[tuple[str, Callable[[], Any], Callable[[], Any], Callable[[], Any], dict[str, Any]]]:
    import xmltodict

    from ci_callback.app import handle
    from ci_callback.model.decode import sniff
    from ci_callback.model.parse import parse_callback

    settings = common.local_settings("http://127.0.0.1:9", fanout=10)  # never contacted: storage is a no-op
    services = common.NoopServices(settings.fanout)
    ctx = common.context()
    cases = []
    for name, raw in common.load_events():
        event = common.with_token(raw)
        body = common.event_body(raw)
        fmt = sniff(body)
        response = handle(event, ctx, settings=settings, services=services)
        payload = json.loads(response["body"])
        if response["statusCode"] != 200:
            raise SystemExit(f"{name}: expected 200, got {response['statusCode']} {payload}")

        def ours(event: dict[str, Any] = event) -> Any:
            return handle(event, ctx, settings=settings, services=services)

        if fmt == "xml":
            def floor(body: bytes = body) -> Any:
                return xmltodict.parse(body)
        else:
            def floor(body: bytes = body) -> Any:
                return json.loads(body)
        def parser(body: bytes = body) -> Any:
            return parse_callback(body)

        tagged = [a.get("objects", 0) for a in payload.get("actions", []) if a.get("action") == "tag"]
        info = {"format": fmt, "bytes": len(body), "status": payload.get("status"), "outputs": sum(tagged)}
        cases.append((name, ours, floor, parser, info))
    return cases


def run() -> dict[str, Any]:
    common.use_bench_env()
    common.quiet_logs()
    rows = []
    results = []
    for name, ours, floor, parser, info in _cases():
        gc.collect()
        o = measure(ours)
        p = measure(parser)
        f = measure(floor)
        share = p["cpu_us"] / o["cpu_us"]
        results.append({"event": name, **info, "ours": o, "parser": p, "floor": f, "parser_share": share,
                        "ratio_cpu": o["cpu_us"] / f["cpu_us"]})
        rows.append([name, info["format"], info["bytes"], info["status"], info["outputs"],
                     f"{o['cpu_us']:.1f}", f"{o['wall_us']:.1f}", f"{p['cpu_us']:.1f}", f"{f['cpu_us']:.1f}",
                     f"{share * 100:.0f} %"])
    mean = sum(r["ours"]["cpu_us"] for r in results) / len(results)
    shares = [r["parser_share"] for r in results]
    text = common.table(
        ["event", "fmt", "bytes", "outcome", "outputs", "ours CPU µs", "ours wall µs", "parse_callback µs",
         "bare parse µs", "parser share"],
        rows, "llrlrrrrrr")
    text += (f"\n\nMedian of {REPEATS} warm repeats per cell (timeit-style loops; GC on); CPU = process time of all "
             f"threads. The parser (safe decode + typed model) is {min(shares) * 100:.0f}–{max(shares) * 100:.0f} % of "
             f"a callback's CPU; the rest is the archive document and its SHA-256, the markers, the index document, "
             f"tag merging on the pool, the log line and the response. Information only: no target.")
    return {
        "title": "1. Per-callback CPU (no-op storage) and the parser's share",
        "text": text,
        "data": {"events": results, "mean_cpu_us": mean},
        "summary": [
            {"figure": "CPU per callback (no-op storage), mean of the samples", "value": mean,
             "shown": f"{mean:.0f} µs; parser share {min(shares) * 100:.0f}–{max(shares) * 100:.0f} %",
             "target": None, "target_shown": "info"},
        ],
    }


def profile(name: str) -> None:
    import cProfile
    import pstats

    common.use_bench_env()
    common.quiet_logs()
    for case, ours, _, _, _ in _cases():
        if case == name:
            for _ in range(WARMUP):
                ours()
            prof = cProfile.Profile()
            prof.enable()
            for _ in range(2000):
                ours()
            prof.disable()
            pstats.Stats(prof).sort_stats(SORT).print_stats(30)
            return
    raise SystemExit(f"no event named {name}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", metavar="EVENT")
    args = parser.parse_args()
    if args.profile:
        profile(args.profile)
    else:
        common.emit(run())
