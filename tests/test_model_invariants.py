"""A stateful model of the world around the function (issue 17, item 6).

Given a few job callbacks (a handful of outputs each), a world that loses, repeats and
retries SCF events, kills invocations mid-way (the lease stays, nothing is released),
fails COS requests before or after they apply, steps the clock past the lease TTL and
has a user handler with a bug: when the world quiets down and every job is delivered
once more, then every job is processed once (one done marker), every output is tagged
with its job id, the index document exists, notify ran at least once with one event_id,
and no delivery was ever told "in progress" without a live lease.

The pipeline is the real one (``app.handle``); COS is an in-memory store with
forbid-overwrite, SCF a recorder. ``CI_CALLBACK_SOAK=1`` runs many more examples.
"""

from __future__ import annotations

import io
import json
import os
import threading
import time
import types
from collections.abc import Iterator, Mapping
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from ci_callback import keys, log
from ci_callback.adapters import services as services_module
from ci_callback.app import handle
from ci_callback.durable import idempotency
from ci_callback.errors import NotFound, StorageError
from ci_callback.routing import handlers
from ci_callback.routing.router import Router
from ci_callback.settings import Settings
from ci_callback_dev import bigjob
from ci_callback_dev.events import function_url_event

TOKEN = "model-token-17"
TTL = 60
OUTPUTS = 3
JOBS = [f"jmodel{i:026d}" for i in range(3)]
SOAK = os.environ.get("CI_CALLBACK_SOAK") == "1"
SETTINGS = Settings(tokens=(TOKEN,), notify_function="downstream", marker_ttl_seconds=TTL, fanout=2)
CONTEXT = {"request_id": "model", "time_limit_in_ms": 30000}


class Killed(BaseException):
    """SCF ended the container: nothing after this point runs, not even a release."""


class Clock:
    """Wall time with an offset the model steps (leases expire by ``time.time``)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def time(self) -> float:
        return time.time() + self.offset

    def monotonic(self) -> float:
        return time.monotonic()


class MemoryCOS:
    """The storage interface the code uses (bench/common.py NoopStorage), in memory, with
    forbid-overwrite and the faults the model injects."""

    deadline = None

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], bytes] = {}
        self.tags: dict[tuple[str, str], dict[str, str]] = {}
        self.writes: dict[tuple[str, str], int] = {}
        self.calls = 0
        self.lock = threading.RLock()
        # Faults of the current invocation: the request number they hit.
        self.fail_before: int | None = None
        self.fail_after: int | None = None
        self.kill_at: int | None = None
        self.dead = False

    @property
    def requests(self) -> int:
        return self.calls

    def arm(self, fail_before: int | None = None, fail_after: int | None = None, kill_at: int | None = None) -> None:
        with self.lock:
            self.calls, self.dead = 0, False
            self.fail_before, self.fail_after, self.kill_at = fail_before, fail_after, kill_at

    def _request(self) -> int:
        """Count a request; raise what a fault set for it before anything applies."""
        with self.lock:
            self.calls += 1
            number = self.calls
            if self.dead or number == self.kill_at:
                self.dead = True
                raise Killed()
            if number == self.fail_before:
                raise StorageError("model: 503 before the write applied", status=503, transient=True)
            return number

    def _after(self, number: int) -> None:
        if number == self.fail_after:
            raise StorageError("model: timeout after the write applied", transient=True)

    # the adapter's region rule and deadline view
    def until(self, deadline: float | None) -> MemoryCOS:
        return self

    def learn_regions(self, named: Any) -> None:
        for _ in named:
            pass

    def region_of(self, bucket: str) -> str:
        return bigjob.REGION

    # objects
    def _store(self, bucket: str, key: str, body: bytes) -> None:
        self.objects[(bucket, key)] = body
        self.writes[(bucket, key)] = self.writes.get((bucket, key), 0) + 1

    def put_bytes(self, bucket: str, key: str, body: bytes, content_type: str = "") -> None:
        number = self._request()
        with self.lock:
            self._store(bucket, key, bytes(body))
        self._after(number)

    def put_json(self, bucket: str, key: str, document: Mapping[str, Any], compact: bool = False) -> None:
        self.put_bytes(bucket, key, json.dumps(document, sort_keys=True, default=str).encode())

    def get_bytes(self, bucket: str, key: str) -> bytes:
        self._request()
        with self.lock:
            if (bucket, key) not in self.objects:
                raise NotFound(f"get {bucket}/{key}")
            return self.objects[(bucket, key)]

    def get_json(self, bucket: str, key: str) -> dict[str, Any] | None:
        try:
            data = json.loads(self.get_bytes(bucket, key))
        except NotFound:
            return None
        return data if isinstance(data, dict) else None

    def head(self, bucket: str, key: str) -> dict[str, str] | None:
        self._request()
        with self.lock:
            return {"Content-Length": str(len(self.objects[(bucket, key)]))} if (bucket, key) in self.objects else None

    def delete(self, bucket: str, key: str) -> None:
        number = self._request()
        with self.lock:
            self.objects.pop((bucket, key), None)
        self._after(number)

    def create_once(self, bucket: str, key: str, document: Mapping[str, Any]) -> bool:
        number = self._request()
        with self.lock:
            if (bucket, key) in self.objects:
                return False
            self._store(bucket, key, json.dumps(document, sort_keys=True).encode())
        self._after(number)
        return True

    def list_keys(self, bucket: str, prefix: str, start_after: str = "") -> Iterator[tuple[str, str | None]]:
        self._request()
        with self.lock:
            found = sorted(k for b, k in self.objects if b == bucket and k.startswith(prefix) and k > start_after)
        for key in found:
            yield key, None

    def query_ci(self, method: str, **kwargs: Any) -> dict[str, Any]:
        self._request()
        return {}

    def get_tags(self, bucket: str, key: str) -> dict[str, str]:
        self._request()
        with self.lock:
            if (bucket, key) not in self.objects:
                raise NotFound(f"tags {bucket}/{key}")
            return dict(self.tags.get((bucket, key), {}))

    def put_tags(self, bucket: str, key: str, tags: Mapping[str, str]) -> None:
        number = self._request()
        with self.lock:
            if (bucket, key) not in self.objects:
                raise NotFound(f"tags {bucket}/{key}")
            self.tags[(bucket, key)] = dict(tags)
        self._after(number)


class RecordingSCF:
    """SCF's Invoke API as the code calls it: records every asynchronous invoke."""

    def __init__(self) -> None:
        self.invokes: list[tuple[str, dict[str, Any]]] = []

    def invoke(self, function: str, payload: Mapping[str, Any], namespace: str | None = None,
               qualifier: str | None = None) -> str:
        self.invokes.append((function, dict(payload)))
        return f"fn-req-{len(self.invokes)}"


def body_of(job_id: str) -> bytes:
    # Each job its own outputs: hls/<job>-show-00000.ts …
    return bigjob.segment_body(OUTPUTS, "xml", job_id).replace(bigjob.PREFIX.encode(), prefix_of(job_id).encode())


def prefix_of(job_id: str) -> str:
    return f"hls/{job_id}-"


def outputs_of(job_id: str) -> list[str]:
    return [prefix_of(job_id) + name for name in bigjob.names(OUTPUTS)]


def answer(out: dict[str, Any]) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(out["body"])
    return document


class World(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.cos = MemoryCOS()
        self.scf = RecordingSCF()
        self.clock = Clock()
        self._real_time = idempotency.time
        self._real_log = log._stream
        self.log = io.StringIO()  # the log lines of the example, not the test output
        log.set_stream(self.log)
        idempotency.time = self.clock  # type: ignore[assignment]  # leases read the stepped clock
        self.services = types.SimpleNamespace(storage=self.cos, pool=services_module.pool(SETTINGS.fanout),
                                              scf=self.scf, notifier=self.scf)
        self.buggy = False
        self.router: Router = handlers.register(Router())
        self.router.on_job()(self._user_handler)
        for job in JOBS:
            for key in outputs_of(job):
                self.cos.objects[(bigjob.BUCKET, key)] = b"segment"
        self.answers: dict[str, list[dict[str, Any]]] = {job: [] for job in JOBS}

    def _user_handler(self, callback: Any, inv: Any) -> None:
        if self.buggy:
            raise RuntimeError("user handler bug")

    # -------------------------------------------------------------- one invocation

    def invoke(self, job: str, alone: bool = True) -> dict[str, Any] | None:
        """One SCF invocation of job's callback; None when it was killed or raised. ALONE: no
        other invocation runs meanwhile, so the leases seen after it are those its claim saw."""
        started = time.monotonic()
        try:
            out = handle(function_url_event(body_of(job), token=TOKEN), dict(CONTEXT), settings=SETTINGS,
                         router=self.router, services=self.services)  # type: ignore[arg-type]
        except Killed:
            return None
        except Exception:  # a raise: SCF retries the async event
            return None
        finally:
            self.cos.arm()
        document = answer(out)
        assert time.monotonic() - started < CONTEXT["time_limit_in_ms"] / 1000, "answered after the deadline"
        assert out["statusCode"] < 500 or document.get("reason"), out  # a failure says why
        if alone and document.get("status") == "duplicate" and "being processed" in str(document.get("reason")):
            assert self.live_lease(job), f"'in progress' without a live lease: {document}"
        self.answers[job].append({"status": out["statusCode"], **document})
        return out

    def live_lease(self, job: str) -> bool:
        now = self.clock.time()
        for (_bucket, key), body in list(self.cos.objects.items()):
            if idempotency.lease_number(key) and f"/{job}/" in key:
                held = json.loads(body)
                if held.get("status") == "in-progress" and float(held.get("expires_at") or 0) > now:
                    return True
        return False

    # -------------------------------------------------------------- rules

    @rule(job=st.sampled_from(JOBS),
          scf=st.sampled_from(["once", "lost", "twice"]),
          fault=st.sampled_from(["none", "before", "after", "kill"]),
          at=st.lists(st.integers(min_value=1, max_value=14), min_size=3, max_size=3),
          retry_after=st.sampled_from([0, TTL + 1]))
    def deliver(self, job: str, scf: str, fault: str, at: list[int], retry_after: int) -> None:
        """CI sends job's callback; SCF runs it (or loses it, or runs it twice), retrying
        up to twice after a raise, RETRY_AFTER seconds later; the fault hits request AT[attempt]."""
        if scf == "lost":
            return
        for _ in range(2 if scf == "twice" else 1):
            for attempt in range(3):
                if attempt:
                    self.clock.offset += retry_after
                where = at[attempt]
                self.cos.arm(**({"fail_before": where} if fault == "before" else
                                {"fail_after": where} if fault == "after" else
                                {"kill_at": where} if fault == "kill" else {}))
                if self.invoke(job) is not None:
                    break
                fault = "none" if fault != "kill" else fault  # a kill can hit the retry too

    @rule(job=st.sampled_from(JOBS))
    def deliver_concurrently(self, job: str) -> None:
        """SCF runs the same event in two containers at once (healthy COS)."""
        self.cos.arm()
        errors: list[BaseException] = []

        def run() -> None:
            try:
                self.invoke(job, alone=False)
            except BaseException as exc:  # an assertion in a thread: hand it to the example
                errors.append(exc)

        runs = [threading.Thread(target=run) for _ in range(2)]
        for thread in runs:
            thread.start()
        for thread in runs:
            thread.join()
        if errors:
            raise errors[0]

    @rule(seconds=st.sampled_from([1, TTL // 2, TTL + 1]))
    def step_clock(self, seconds: int) -> None:
        self.clock.offset += seconds

    @rule(on=st.booleans())
    def handler_bug(self, on: bool) -> None:
        self.buggy = on

    @invariant()
    def leases_are_leases(self) -> None:
        for (_bucket, key), body in list(self.cos.objects.items()):
            if idempotency.lease_number(key):
                assert "expires_at" in json.loads(body), key

    def teardown(self) -> None:
        try:
            self.quiet_then_check()
        finally:
            idempotency.time = self._real_time  # type: ignore[assignment]
            log.set_stream(self._real_log)

    def quiet_then_check(self) -> None:
        """Faults off, clock past every TTL, each job delivered once more: then everything holds."""
        self.buggy = False
        self.cos.arm()
        self.clock.offset += TTL + 1
        for job in JOBS:
            out = self.invoke(job)
            assert out is not None, f"{job}: a healthy delivery raised"
            status = answer(out).get("status")
            assert out["statusCode"] == 200 and status in ("processed", "duplicate"), (job, out)
        self.check_effects()

    def check_effects(self) -> None:
        base_prefix = SETTINGS.marker_prefix
        for job in JOBS:
            done = [k for (_b, k) in self.cos.objects if k.startswith(base_prefix) and f"/{job}/" in k
                    and k.endswith("/done.json")]
            assert len(done) == 1, (job, done)
            assert self.cos.writes[(bigjob.BUCKET, done[0])] == 1, f"{job}: done marker written more than once"
            index = keys.job_index_key(SETTINGS.index_prefix, bigjob.BUCKET, "videos/long-show.mp4", job)
            assert (bigjob.BUCKET, index) in self.cos.objects, f"{job}: no index document {index}"
            event_ids = {p["event_id"] for f, p in self.scf.invokes
                         if f == "downstream" and (p.get("callback") or {}).get("job_id") == job}
            assert len(event_ids) == 1, (job, event_ids)
            for key in outputs_of(job):
                tags = self.cos.tags.get((bigjob.BUCKET, key), {})
                assert tags.get(f"{SETTINGS.tag_prefix}job-id") == job, (job, key, tags)


World.TestCase.settings = settings(
    max_examples=2000 if SOAK else 200, stateful_step_count=40 if SOAK else 25, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestWorld = World.TestCase


def test_the_model_world_is_real() -> None:
    """Given a healthy world, when each job is delivered, then the checks hold (the model's
    own sanity: the effects it looks for are the ones the pipeline writes)."""
    world = World()
    world.teardown()  # the quiet-down and its checks
    assert len(world.scf.invokes) == len(JOBS)
