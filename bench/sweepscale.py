"""7. The reconcile sweep at scale: requests per job per day at 10k, 100k and 1M jobs a day.

Counts requests, not wall time. The REAL sweep (``ci_callback.app.handle`` with a timer
event, so the cursor GET and summary PUT are in) runs against an in-memory storage that
keeps every object (markers, sweep states) and counts each call, and whose ``query_ci``
answers CI's list pages (JobsDetail, oldest first, NextToken an offset) from a synthetic
job set. The sweep's clock is the simulated one (``reconcile.run.datetime`` is replaced
for the run).

The world: one stream (one queue, one Tag), jobs created uniformly, each Success 80 s
after its creation, every callback already processed (done markers present). A sweep every
30 minutes (48 a day) over a 180-minute lookback, the spec's default pad (60 min), settle
and page size (100). BEFORE: the sweep state disabled (``_Run.load_state`` returns None and
``_Run.save_state`` writes nothing: the sweep as it was before issue 19). AFTER: the sweep as
built. Duration of one sweep = its requests (COS + CI) × 20 ms, the service time left out.

Scaling: each rate runs the first sweep (cold: no state yet, not counted) and then
``MEASURED[N]`` sweeps in steady state. Per job per day = (requests of the measured sweeps
÷ their number × 48) ÷ N: the measured sweeps are extrapolated linearly to the day's 48.
Not simulated: the inbox's archive listing (the fake lists no archives; it costs
48 · R / 1000 LIST requests a job a day either way, docs/reconcile-cost.md).

``python bench/sweepscale.py [--quick]`` runs it alone (--quick: 1k and 5k a day, 2 sweeps).
"""

from __future__ import annotations

import bisect
import json
import math
import sys
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

RATES = (10_000, 100_000, 1_000_000)
MEASURED = {10_000: 48, 100_000: 4, 1_000_000: 1}  # steady-state sweeps run (after the cold one)
QUICK_RATES = (1_000, 5_000)
INTERVAL_S = 30 * 60
SWEEPS_A_DAY = 24 * 3600 // INTERVAL_S
LOOKBACK_MIN = 180
DELAY = 0.02
INVOCATION_S = 900.0
TARGET_COS = 1.1
TARGET_LISTS = 0.011
QUEUE = "p0123456789abcdef0123456789abcdef"
TAG = "Transcode"
BEIJING = timezone(timedelta(hours=8))
T0 = datetime(2026, 1, 5, 0, 0, tzinfo=timezone.utc)  # the first sweep
SPEC = {"reconcile": {"lookback_minutes": LOOKBACK_MIN, "sources": [
    {"bucket": common.BUCKET, "region": common.REGION, "queue": QUEUE, "tags": [TAG]}]}}


def _stamp(moment: datetime) -> str:
    return moment.astimezone(BEIJING).strftime("%Y-%m-%dT%H:%M:%S%z")


class Jobs:
    """A synthetic job set: N a day, created uniformly, ended 80 s later, all Success."""

    def __init__(self, per_day: int, first: datetime, last: datetime) -> None:
        gap = 86400.0 / per_day
        start = first.timestamp()
        count = int((last.timestamp() - start) / gap) + 1
        self.created = [start + i * gap for i in range(count)]
        self.ids = [f"j{i:031x}b" for i in range(count)]

    def record(self, i: int) -> dict[str, Any]:
        created = datetime.fromtimestamp(self.created[i], timezone.utc)
        return {"Code": "Success", "Message": "", "JobId": self.ids[i], "State": "Success", "Progress": "100",
                "CreationTime": _stamp(created), "StartTime": _stamp(created + timedelta(seconds=1)),
                "EndTime": _stamp(created + timedelta(seconds=80)), "QueueId": QUEUE, "Tag": TAG,
                "Input": {"BucketId": common.BUCKET, "Object": f"in/{self.ids[i]}.mp4", "Region": common.REGION},
                "Operation": {"TemplateId": "t1460606b9752148c4ab182f55163ba7cd", "UserData": "bench",
                              "Output": {"Region": common.REGION, "Bucket": common.BUCKET, "Object": "out/o.mp4"}}}


class CountingStorage:
    """In memory, every call counted: what ``handle(services=…)`` needs of a storage. Objects are
    kept (JSON round-tripped), so markers and sweep states persist between sweeps; query_ci
    answers ci_list_media_jobs from JOBS, filtered on creation time as CI does (doc 436/54011)."""

    deadline = None

    def __init__(self, jobs: Jobs) -> None:
        self.jobs = jobs
        self.objects: dict[tuple[str, str], bytes] = {}
        self.present: set[str] = set()  # done markers, seeded (keys only: one bucket)
        self.counts: Counter[str] = Counter()

    def until(self, deadline: float | None) -> CountingStorage:
        return self

    def learn_regions(self, named: Any) -> None:
        for _ in named:
            pass

    def region_of(self, bucket: str) -> str:
        return common.REGION

    def put_json(self, bucket: str, key: str, document: Any, compact: bool = False) -> None:
        self.counts["PUT"] += 1
        self.objects[(bucket, key)] = json.dumps(document).encode()

    def put_bytes(self, bucket: str, key: str, body: bytes, content_type: str = "") -> None:
        self.counts["PUT"] += 1
        self.objects[(bucket, key)] = bytes(body)

    def get_json(self, bucket: str, key: str) -> Any:
        self.counts["GET"] += 1
        body = self.objects.get((bucket, key))
        return None if body is None else json.loads(body)

    def head(self, bucket: str, key: str) -> dict[str, Any] | None:
        self.counts["HEAD"] += 1
        return {} if key in self.present or (bucket, key) in self.objects else None

    def create_once(self, bucket: str, key: str, document: Any) -> bool:
        self.counts["PUT"] += 1
        if (bucket, key) in self.objects:
            return False
        self.objects[(bucket, key)] = json.dumps(document).encode()
        return True

    def get_tags(self, bucket: str, key: str) -> dict[str, str]:
        self.counts["GET tagging"] += 1
        return {}

    def put_tags(self, bucket: str, key: str, tags: Mapping[str, str]) -> None:
        self.counts["PUT tagging"] += 1

    def delete(self, bucket: str, key: str) -> None:
        self.counts["DELETE"] += 1
        self.objects.pop((bucket, key), None)

    def list_keys(self, bucket: str, prefix: str, marker: str = "") -> Iterator[tuple[str, str]]:
        self.counts["LIST"] += 1  # one page: the fake inbox holds no archives
        return iter(())

    def query_ci(self, method: str, **query: Any) -> dict[str, Any]:
        self.counts["CI " + method] += 1
        if method != "ci_list_media_jobs":
            return {}
        start = datetime.strptime(query["StartCreationTime"], "%Y-%m-%dT%H:%M:%S%z").timestamp()
        end = datetime.strptime(query["EndCreationTime"], "%Y-%m-%dT%H:%M:%S%z").timestamp()
        first = int(query.get("NextToken") or 0) or bisect.bisect_left(self.jobs.created, start)
        stop = min(first + int(query["Size"]), bisect.bisect_right(self.jobs.created, end))
        page = {"JobsDetail": [self.jobs.record(i) for i in range(first, stop)]}
        if stop < bisect.bisect_right(self.jobs.created, end):
            page["NextToken"] = str(stop)
        return page

    def cos_requests(self) -> int:
        return sum(v for k, v in self.counts.items() if not k.startswith("CI "))

    def list_calls(self) -> int:
        return sum(v for k, v in self.counts.items() if k.startswith("CI "))


class Services:
    def __init__(self, storage: CountingStorage) -> None:
        from ci_callback.adapters import services

        self.storage = storage
        self.pool = services.pool(10)
        self.notifier = self.scf = None


def _clock(moment: list[datetime]) -> type[datetime]:
    class SimulatedNow(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Any:  # the sweep's "now": the simulated sweep time
            return moment[0] if tz is None else moment[0].astimezone(tz)

    return SimulatedNow


def simulate(per_day: int, measured: int, before: bool) -> dict[str, Any]:
    """The cold sweep, then MEASURED steady ones; the measured sweeps' requests."""
    from ci_callback import keys
    from ci_callback.app import handle
    from ci_callback.model.parse import parse_callback
    from ci_callback.reconcile import plan
    from ci_callback.reconcile import run as reconcile

    settings = common.local_settings("http://127.0.0.1:1")
    sweeps = 1 + measured
    # Every job a sweep could list: from the cold sweep's padded window to the last sweep.
    first = T0 - timedelta(minutes=LOOKBACK_MIN + 60) - plan.CLOCK_SKEW
    last = T0 + timedelta(seconds=INTERVAL_S * (sweeps - 1))
    jobs = Jobs(per_day, first, last)
    storage = CountingStorage(jobs)
    kind = parse_callback(plan.job_body(jobs.record(0)), "application/json").kind
    storage.present = {keys.done_key(keys.marker_base(settings.marker_prefix, kind, job_id, "Success"))
                       for job_id in jobs.ids}
    services = Services(storage)
    moment = [T0]
    saved = (reconcile.datetime, reconcile._Run.load_state, reconcile._Run.save_state)
    reconcile.datetime = _clock(moment)  # type: ignore[misc]
    if before:
        reconcile._Run.load_state = lambda self, listing: None  # type: ignore[method-assign]
        reconcile._Run.save_state = lambda self, *args: None  # type: ignore[method-assign]
    per_sweep: list[dict[str, int]] = []
    cpu = time.process_time()
    try:
        for k in range(sweeps):
            moment[0] = T0 + timedelta(seconds=INTERVAL_S * k)
            storage.counts.clear()
            event = {"Type": "Timer", "TriggerName": "ci-callback-reconcile",
                     "Time": moment[0].strftime("%Y-%m-%dT%H:%M:%SZ"), "Message": json.dumps(SPEC)}
            result = handle(event, {"request_id": f"sweep-{k}", "time_limit_in_ms": 10**9},
                            settings=settings, services=services)  # type: ignore[arg-type]
            if result.get("processed") or result.get("failed") or result.get("status") != "complete":
                raise RuntimeError(f"the simulated world was not steady: {result}")
            per_sweep.append({"cos": storage.cos_requests(), "lists": storage.list_calls(),
                              "heads": storage.counts["HEAD"], "done": int(result["already_done"])})
    finally:
        reconcile.datetime, reconcile._Run.load_state, reconcile._Run.save_state = saved  # type: ignore[misc]
    steady = per_sweep[1:]
    cos = sum(s["cos"] for s in steady) / len(steady)
    lists = sum(s["lists"] for s in steady) / len(steady)
    worst = max(s["cos"] + s["lists"] for s in steady)
    cold = per_sweep[0]["cos"] + per_sweep[0]["lists"]
    return {"per_day": per_day, "before": before, "jobs_simulated": len(jobs.ids), "sweeps": sweeps,
            "measured": measured, "cos_per_sweep": cos, "lists_per_sweep": lists,
            "heads_per_sweep": sum(s["heads"] for s in steady) / len(steady),
            "cos_per_job_day": cos * SWEEPS_A_DAY / per_day, "lists_per_job_day": lists * SWEEPS_A_DAY / per_day,
            "sweep_s": worst * DELAY, "cold_sweep_s": cold * DELAY,
            "cpu_s": round(time.process_time() - cpu, 1), "per_sweep": per_sweep}


def _invocations(seconds: float) -> int:
    from ci_callback.reconcile.run import RESERVE_SECONDS

    return max(1, math.ceil(seconds / (INVOCATION_S - RESERVE_SECONDS)))


def run(rates: tuple[int, ...] = RATES, measured: Mapping[int, int] | None = None) -> dict[str, Any]:
    common.quiet_logs()
    measured = measured or MEASURED
    data = []
    for per_day in rates:
        for before in (True, False):
            data.append(simulate(per_day, measured.get(per_day, 2), before))
    rows = []
    for r in data:
        rows.append([f"{r['per_day']:,}", "before" if r["before"] else "after",
                     f"1 + {r['measured']} (×{SWEEPS_A_DAY / r['measured']:g})",
                     f"{r['cos_per_sweep']:,.0f}", f"{r['lists_per_sweep']:,.1f}",
                     f"{r['cos_per_job_day']:.4f}", f"{r['lists_per_job_day']:.4f}",
                     f"{r['sweep_s']:,.1f} s ({_invocations(r['sweep_s'])})",
                     f"{r['cold_sweep_s']:,.0f} s ({_invocations(r['cold_sweep_s'])})"])
    text = common.table(["jobs a day", "sweep", "sweeps run (to a day)", "COS a sweep", "CI lists a sweep",
                         "COS a job a day", "CI lists a job a day", "steady sweep at +20 ms (invocations)",
                         "cold sweep (invocations)"], rows, "llrrrrrrr")
    text += (f"\n\nOne stream, a sweep every {INTERVAL_S // 60} min ({SWEEPS_A_DAY} a day) over a {LOOKBACK_MIN}-min "
             "lookback, every job's callback already processed. Each rate runs one cold sweep (not counted) and "
             "then the steady sweeps shown; a job a day = the steady sweeps' mean × "
             f"{SWEEPS_A_DAY} ÷ jobs a day (extrapolated linearly to the day). Duration = (COS + CI requests) × "
             f"{DELAY * 1000:g} ms; invocations = ⌈duration ÷ ({INVOCATION_S:g} s − the sweep's reserve)⌉, "
             "the chain. Before = sweep state disabled. The inbox archive listing is not simulated.")
    after = {r["per_day"]: r for r in data if not r["before"]}
    summary = []
    for per_day, r in after.items():
        summary += [
            {"figure": f"Sweep at {per_day:,}/day: COS a job a day", "value": r["cos_per_job_day"],
             "shown": f"{r['cos_per_job_day']:.4f}", "target": TARGET_COS, "target_shown": f"≤ {TARGET_COS:g}"},
            {"figure": f"Sweep at {per_day:,}/day: CI lists a job a day", "value": r["lists_per_job_day"],
             "shown": f"{r['lists_per_job_day']:.4f}", "target": TARGET_LISTS,
             "target_shown": f"≤ {TARGET_LISTS:g}"}]
    if 1_000_000 in after:
        r = after[1_000_000]
        summary.append({"figure": "Sweep at 1M/day: steady sweep at +20 ms", "value": r["sweep_s"],
                        "shown": f"{r['sweep_s']:.0f} s", "target": INVOCATION_S,
                        "target_shown": f"≤ {INVOCATION_S:g} s (one invocation)"})
    return {"title": "7. Reconcile sweep at scale (requests, not wall time)", "text": text,
            "data": [{k: v for k, v in r.items() if k != "per_sweep"} for r in data], "summary": summary}


if __name__ == "__main__":
    if "--quick" in sys.argv[1:]:
        common.emit(run(QUICK_RATES, {n: 2 for n in QUICK_RATES}))
    else:
        common.emit(run())
