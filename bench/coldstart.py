"""2. Cold start: every variant in a fresh interpreter, repeated, interleaved.

Variants (each one ``python -c CODE``; the same interpreter, flags and site-packages):

a. bare        ``pass``: interpreter start-up alone.
b. floor       ``import qcloud_cos, xmltodict``: the libraries any implementation needs.
b+. floor+COS  (b), then ``xmltodict.parse`` of the SmartCover body, one ``CosS3Client`` and
               exactly the COS requests our first invoke makes (archive PUT, lease PUT with
               If-None-Match, GET+PUT tagging of the 5 covers on an 8-thread pool beside the
               index PUT, done PUT) with hand-written bodies: what a minimal hand-rolled
               handler must do to leave the same objects. This is the floor for (c).
c. ours        ``import index`` (the SCF entry module), then ``main_handler`` on the SmartCover
               event with a matching token, against LocalCOS (running in another process,
               started before any timing; each repeat uses a new JobId so it really works).
d. refused     ``import index`` + ``main_handler`` with a wrong token (403), then checks that
               the COS SDK was never imported.

Timed two ways: the wall time of the whole child process seen by this parent (spawn to exit,
so interpreter start-up included), and inside the child (``time.perf_counter`` around the
imports and the first call; the child prints them). Targets:

* (c) import + first invoke ≤ 1.2 × (b+) import + parse + the same requests (in-child);
* (d) whole process vs (a) whole process: reported, no target (the guard is "no SDK").
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

REPEATS = 15
TARGET_FIRST_CALL = 1.2
# The refused request's figure is reported, not targeted: keeping it under 2× bare Python
# cost unreadable tricks (no typing, no dataclasses); the guard that matters is "no SDK".
SMARTCOVER = "apigw-smartcover-xml"

# Each child prints one line: "BENCH <import s> <first call s> <status> <qcloud_cos loaded> <modules>".
BARE = "pass"

FLOOR_IMPORT = r"""
import time
t0 = time.perf_counter()
import qcloud_cos, xmltodict
t1 = time.perf_counter()
import sys
print("BENCH", t1 - t0, 0.0, 0, "qcloud_cos" in sys.modules, len(sys.modules))
"""

FLOOR_FULL = r"""
import time
t0 = time.perf_counter()
import qcloud_cos, xmltodict
t1 = time.perf_counter()
from qcloud_cos import CosConfig, CosS3Client
from concurrent.futures import ThreadPoolExecutor
doc = xmltodict.parse(BODY)
job = doc["Response"]["JobsDetail"]["JobId"]
client = CosS3Client(CosConfig(Region=REGION, SecretId="AKIDbenchlocal", SecretKey="benchlocalkey",
                               Token="benchlocaltoken", Scheme="http", IP=HOST, Port=PORT, Timeout=5), retry=0)
client.put_object(Bucket=BUCKET, Key="ci-inbox/job/%s/Success.json" % job, Body=BODY)
client.put_object(Bucket=BUCKET, Key="ci-markers/job/%s/Success/lease-1.json" % job, Body=b"{}", IfNoneMatch="*")
def tag(key):
    client.get_object_tagging(Bucket=BUCKET, Key=key)
    client.put_object_tagging(Bucket=BUCKET, Key=key, Tagging={"TagSet": {"Tag": [
        {"Key": "ci-job-id", "Value": job}, {"Key": "ci-tag", "Value": "SmartCover"},
        {"Key": "ci-source", "Value": "ci-callback"}]}})
pool = ThreadPoolExecutor(8)
futures = [pool.submit(tag, key) for key in OUTPUTS]
futures.append(pool.submit(client.put_object, Bucket=BUCKET, Key="ci-index/%s.json" % job, Body=BODY))
for f in futures:
    f.result()
client.put_object(Bucket=BUCKET, Key="ci-markers/job/%s/Success/done.json" % job, Body=b"{}")
t2 = time.perf_counter()
import sys
print("BENCH", t1 - t0, t2 - t1, 200, "qcloud_cos" in sys.modules, len(sys.modules))
"""

OURS = r"""
import time
t0 = time.perf_counter()
import sys
sys.path.insert(0, HANDLER)
import index
t1 = time.perf_counter()
response = index.main_handler(EVENT, CONTEXT)
t2 = time.perf_counter()
print("BENCH", t1 - t0, t2 - t1, response["statusCode"], "qcloud_cos" in sys.modules, len(sys.modules))
"""

REFUSED = OURS + r"""
assert response["statusCode"] == 403, response
assert "qcloud_cos" not in sys.modules, "a refused request imported the COS SDK"
"""


def _literal(code: str, **values: Any) -> str:
    """Bind constants as literals in front of the code: the child imports nothing to read them."""
    return "".join(f"{name} = {value!r}\n" for name, value in values.items()) + code


def _spawn(code: str, env: dict[str, str]) -> dict[str, Any]:
    start = time.perf_counter()
    proc = subprocess.Popen([common.PYTHON, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env, cwd=str(common.ROOT))
    out, err = proc.communicate()
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"child failed ({proc.returncode}):\n{err.decode(errors='replace')[-2000:]}")
    line = next((l for l in out.decode().splitlines() if l.startswith("BENCH ")), None)
    result: dict[str, Any] = {"wall": wall}
    if line:
        _, imp, call, status, heavy, modules = line.split()
        result.update(import_s=float(imp), call_s=float(call), status=int(status), sdk_loaded=heavy == "True",
                      modules=int(modules))
    return result


def _summary(samples: list[dict[str, Any]], key: str) -> dict[str, float]:
    values = [s[key] * 1000 for s in samples if key in s]
    return {"median_ms": common.median(values), "p90_ms": common.percentile(values, 90), "min_ms": min(values),
            "n": len(values)}


def run(repeats: int = REPEATS) -> dict[str, Any]:
    common.use_bench_env()
    from ci_callback.model.parse import parse_callback

    events = dict(common.load_events())
    smart = events[SMARTCOVER]
    outputs = [o.key for o in parse_callback(common.event_body(smart)).outputs]
    env = dict(os.environ)
    env.update(common.BENCH_ENV)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    with common.CosServer() as cos:
        env.update(CI_CALLBACK_TOKENS=common.TOKEN, CI_CALLBACK_COS_ENDPOINT=cos.endpoint)
        host, port = cos.endpoint.rsplit("//", 1)[1].split(":")
        ctx = common.context("cold")
        serial = iter(range(10**6))

        def ours_code(refused: bool = False) -> str:
            event = common.with_id(smart, f"jcold{next(serial):06d}{os.getpid()}")
            event = common.with_token(event, "wrong-token" if refused else common.TOKEN)
            return _literal(REFUSED if refused else OURS, HANDLER=str(common.HANDLER), EVENT=event, CONTEXT=ctx)

        def floor_code() -> str:
            body = common.event_body(common.with_id(smart, f"jfloor{next(serial):06d}{os.getpid()}"))
            return _literal(FLOOR_FULL, BODY=body, OUTPUTS=outputs, BUCKET=common.BUCKET, REGION=common.REGION,
                            HOST=host, PORT=int(port))

        variants = {
            "a": lambda: BARE,
            "b": lambda: FLOOR_IMPORT,
            "b+": floor_code,
            "c": ours_code,
            "d": lambda: ours_code(refused=True),
        }
        samples: dict[str, list[dict[str, Any]]] = {k: [] for k in variants}
        for name, make in variants.items():  # warm the OS caches and .pyc files; not counted
            _spawn(make(), env)
        cos.reset()
        for i in range(repeats):
            for name, make in variants.items():  # interleaved: load drift hits every variant alike
                samples[name].append(_spawn(make(), env))
        statuses_ok = all(s.get("status") == 200 for s in samples["c"]) and all(
            s.get("status") == 403 and not s.get("sdk_loaded") for s in samples["d"])

    wall = {k: _summary(v, "wall") for k, v in samples.items()}
    imp = {k: _summary(v, "import_s") for k, v in samples.items() if k != "a"}
    call = {k: _summary(v, "call_s") for k, v in samples.items() if k != "a"}
    inchild = {k: {"median_ms": common.median([(s["import_s"] + s["call_s"]) * 1000 for s in v]),
                   "p90_ms": common.percentile([(s["import_s"] + s["call_s"]) * 1000 for s in v], 90)}
               for k, v in samples.items() if k != "a"}
    modules = {k: samples[k][0].get("modules") for k in samples if k != "a"}
    ratio_first = inchild["c"]["median_ms"] / inchild["b+"]["median_ms"]
    ratio_first_import_only = inchild["c"]["median_ms"] / inchild["b"]["median_ms"]
    ratio_refused = wall["d"]["median_ms"] / wall["a"]["median_ms"]
    labels = {
        "a": "a. bare `python -c pass`",
        "b": "b. floor: import qcloud_cos, xmltodict",
        "b+": f"b+. floor + parse + the same {4 + 2 * len(outputs)} COS requests",
        "c": "c. ours: import index + first SmartCover invoke",
        "d": "d. ours: import index + wrong-token invoke (403)",
    }
    rows = []
    for k, label in labels.items():
        rows.append([
            label,
            f"{wall[k]['median_ms']:.1f}", f"{wall[k]['p90_ms']:.1f}",
            f"{imp[k]['median_ms']:.1f}" if k in imp else "-",
            f"{call[k]['median_ms']:.1f}" if k in call and k not in ("b",) else "-",
            f"{inchild[k]['median_ms']:.1f}" if k in inchild else "-",
            f"{inchild[k]['p90_ms']:.1f}" if k in inchild else "-",
            modules.get(k, "-") if k != "a" else "-",
        ])
    text = common.table(
        ["variant", "process ms (median)", "process ms (p90)", "import ms", "first call ms",
         "import+call ms (median)", "import+call ms (p90)", "modules"], rows, "lrrrrrrr")
    text += (
        f"\n\n{repeats} fresh processes per variant, interleaved, after one uncounted warm-up each; LocalCOS in a "
        "separate process.\n"
        f"* First call: ours (c) import+call {inchild['c']['median_ms']:.1f} ms vs floor (b+) "
        f"{inchild['b+']['median_ms']:.1f} ms → **{ratio_first:.2f}×** (target ≤ {TARGET_FIRST_CALL}×). "
        f"Against the import-only floor (b) it is {ratio_first_import_only:.2f}×: that comparison charges us "
        f"for the {4 + 2 * len(outputs)} COS round trips the floor does not make, so (b+) is the fair floor.\n"
        f"* Refused: (d) whole process {wall['d']['median_ms']:.1f} ms vs bare start (a) "
        f"{wall['a']['median_ms']:.1f} ms → **{ratio_refused:.2f}×** (reported, no target); "
        f"qcloud_cos imported by a refused request: {'no' if statuses_ok else 'YES or a wrong status'}."
    )
    return {
        "title": "2. Cold start (fresh process per run)",
        "text": text,
        "data": {"repeats": repeats, "wall": wall, "import": imp, "call": call, "in_child": inchild,
                 "modules": modules, "ratio_first_call": ratio_first,
                 "ratio_first_call_vs_import_floor": ratio_first_import_only,
                 "ratio_refused": ratio_refused, "statuses_ok": statuses_ok},
        "summary": [
            {"figure": "Cold import + first SmartCover call vs floor (b+)", "value": ratio_first,
             "shown": f"{ratio_first:.2f}× ({inchild['c']['median_ms']:.0f} vs {inchild['b+']['median_ms']:.0f} ms)",
             "target": TARGET_FIRST_CALL, "target_shown": f"≤ {TARGET_FIRST_CALL}×"},
            {"figure": "Cold refused request vs bare Python start", "value": ratio_refused if statuses_ok else None,
             "shown": f"{ratio_refused:.2f}× ({wall['d']['median_ms']:.0f} vs {wall['a']['median_ms']:.0f} ms)"
             + ("" if statuses_ok else "; SDK imported!"),
             "target": None, "target_shown": "info (no qcloud_cos)"},
        ],
    }


if __name__ == "__main__":
    common.emit(run(int(sys.argv[1]) if len(sys.argv) > 1 else REPEATS))
