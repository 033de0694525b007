"""4. Memory: RSS over 1,000 mixed callbacks in one warm process.

A worker process (``python bench/memory.py --worker``) imports ``index`` as SCF does and
calls ``main_handler`` 1,000 times, cycling through every events/ sample, each with a
fresh callback id (so every one is processed for real, not answered as a duplicate),
against LocalCOS running in *another* process (so moto's memory does not count), with the
real COS adapter. Every 50 callbacks it samples peak RSS (``resource.getrusage``
``ru_maxrss``) and current RSS (``/proc/self/statm``). Targets: peak ≤ 64 MB, and no growth
after warm-up (current RSS at the end within 1 MB of its value after the first 200).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

CALLBACKS = 1000
EVERY = 50
WARMUP = 200
TARGET_PEAK_MB = 64.0
TARGET_GROWTH_MB = 1.0


def _rss() -> dict[str, float]:
    import resource

    page = os.sysconf("SC_PAGE_SIZE")
    with open("/proc/self/statm") as f:
        current = int(f.read().split()[1]) * page
    hwm = 0.0
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                hwm = int(line.split()[1]) / 1024
    return {"current_mb": current / 2**20, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "hwm_mb": hwm}


def worker(out_path: str, callbacks: int) -> None:
    """Runs in the measured process: nothing but index, the events and the sampler."""
    samples: list[dict[str, Any]] = [{"callbacks": -1, **_rss()}]  # before import index
    import index  # the SCF entry module, from handler/ (common put it on sys.path)
    from ci_callback import log

    log.set_stream(open(os.devnull, "w"))  # the lines are still built, just not printed
    templates = []
    for name, event in common.load_events():
        old = common.callback_id(event)
        templates.append((name, event, old))
    ctx = common.context("mem")
    statuses: dict[str, int] = {}
    samples.append({"callbacks": 0, **_rss()})
    for i in range(callbacks):
        name, event, old = templates[i % len(templates)]
        if old:
            event = common.with_body(event, common.event_body(event).replace(old.encode(), f"m{i:05d}{old}".encode()))
        response = index.main_handler(common.with_token(event), ctx)
        key = str(response["statusCode"])
        statuses[key] = statuses.get(key, 0) + 1
        if (i + 1) % EVERY == 0:
            samples.append({"callbacks": i + 1, **_rss()})
    Path(out_path).write_text(json.dumps({"samples": samples, "statuses": statuses, "modules": len(sys.modules)}))


def run(callbacks: int = CALLBACKS) -> dict[str, Any]:
    env = dict(os.environ)
    env.update(common.BENCH_ENV)
    with common.CosServer() as cos, tempfile.TemporaryDirectory() as tmp:
        env.update(CI_CALLBACK_TOKENS=common.TOKEN, CI_CALLBACK_COS_ENDPOINT=cos.endpoint)
        out = Path(tmp) / "memory.json"
        # ru_maxrss survives exec: a child spawned straight from this (large) process would
        # start with our peak. A tiny launcher in between gives the worker a clean one.
        launcher = [common.PYTHON, "-S", "-c", "import subprocess, sys; sys.exit(subprocess.call(sys.argv[1:]))"]
        done = subprocess.run(launcher + [common.PYTHON, __file__, "--worker", str(out), str(callbacks)], env=env,
                              cwd=str(common.ROOT), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"memory worker failed:\n{done.stderr[-3000:]}")
        data = json.loads(out.read_text())
    samples = data["samples"]
    loop = [s for s in samples if s["callbacks"] >= 0]
    peak = max(s["peak_mb"] for s in samples)
    after_warmup = next(s for s in loop if s["callbacks"] >= WARMUP)
    final = loop[-1]
    growth = final["current_mb"] - after_warmup["current_mb"]
    per_callback_kb = growth * 1024 / max(1, final["callbacks"] - after_warmup["callbacks"])
    rows = [[s["callbacks"] if s["callbacks"] >= 0 else "before import index", f"{s['current_mb']:.1f}",
             f"{s['peak_mb']:.1f}", f"{s['hwm_mb']:.1f}"]
            for s in samples if s["callbacks"] in (-1, 0, 50, 100, 200, 500, 1000) or s is final]
    text = common.table(["callbacks", "current RSS MB (statm)", "peak RSS MB (ru_maxrss)", "peak MB (VmHWM)"],
                        rows, "rrrr")
    text += (f"\n\n{callbacks} callbacks (every events/ sample in turn, fresh ids; statuses {data['statuses']}) through "
             "`index.main_handler` with the real COS adapter, against LocalCOS in a separate process. "
             f"Peak RSS {peak:.1f} MB (target ≤ {TARGET_PEAK_MB:g}); current RSS after {WARMUP} callbacks "
             f"{after_warmup['current_mb']:.1f} MB, after {final['callbacks']} {final['current_mb']:.1f} MB: growth "
             f"{growth:+.2f} MB (target ≤ {TARGET_GROWTH_MB:g}), {per_callback_kb:+.2f} KB per callback. Curve: "
             "`memory.png`. (\"before import index\" already holds the bench helpers and json/subprocess.)")
    return {
        "title": "4. Memory over 1,000 mixed callbacks",
        "text": text,
        "data": {"samples": samples, "statuses": data["statuses"], "peak_mb": peak, "growth_mb": growth,
                 "growth_kb_per_callback": per_callback_kb,
                 "warmup": WARMUP, "modules": data["modules"]},
        "summary": [
            {"figure": "Peak RSS after 1,000 mixed callbacks", "value": peak, "shown": f"{peak:.1f} MB",
             "target": TARGET_PEAK_MB, "target_shown": f"≤ {TARGET_PEAK_MB:g} MB"},
            {"figure": f"RSS growth after warm-up ({WARMUP} → {final['callbacks']} callbacks)", "value": growth,
             "shown": f"{growth:+.2f} MB", "target": TARGET_GROWTH_MB, "target_shown": f"≤ {TARGET_GROWTH_MB:g} MB"},
        ],
        "chart": {"x": [s["callbacks"] for s in loop], "current": [s["current_mb"] for s in loop],
                  "peak": [s["peak_mb"] for s in loop]},
    }


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2], int(sys.argv[3]))
    else:
        result = run(int(sys.argv[1]) if len(sys.argv) > 1 else CALLBACKS)
        common.emit(result)
