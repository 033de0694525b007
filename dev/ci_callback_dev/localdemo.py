"""``ci-callback demo`` and ``ci-callback serve --local``: the product on an embedded COS.

The demo starts a local S3-compatible server, seeds the objects the sample events
name, replays ``events/`` through ``main_handler`` exactly as SCF would call it, and
prints the index objects and tags that appeared.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import threading
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ci_callback import keys
from ci_callback.settings import Settings

from .events import function_url_event, with_token

DEMO_BUCKET = "examplebucket-1250000000"


def find_events_dir(explicit: str | None = None) -> Path:
    candidates = [Path(explicit)] if explicit else []
    candidates += [Path.cwd() / "events", Path(__file__).resolve().parents[2] / "events"]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    raise SystemExit("ci-callback: no events/ directory found (run from the project root or pass --events)")


def load_events(directory: Path, kind: str = "http") -> list[tuple[str, dict[str, Any]]]:
    """The sample events of one trigger kind (``ci_callback.edge.triggers``): HTTP by default."""
    from ci_callback.edge import triggers

    events = []
    # Function URL events first: it is the trigger serverless.yml deploys.
    for path in sorted(directory.glob("*.json"), key=lambda p: (not p.name.startswith("function-url"), p.name)):
        if path.name == "context.json":
            continue
        event = json.loads(path.read_text(encoding="utf-8"))
        if triggers.classify(event) == kind:
            events.append((path.name, event))
    return events


def local_settings(endpoint: str, token: str, **overrides: Any) -> Settings:
    """Settings for local runs: env as usual, plus the local COS and a generated token."""
    base = Settings.from_env()
    values = {**base.as_dict(), "tokens": (token,), "cos_endpoint": endpoint, **overrides}
    return Settings(**values)


def _bodies(events: list[tuple[str, dict[str, Any]]]) -> list[bytes]:
    """The callback bodies the events carry: an HTTP event's body, each CMQ record's msgBody."""
    from ci_callback.edge import triggers
    from ci_callback.edge.http import request_from_event
    from ci_callback.queue import records as cmq

    bodies = []
    for _, event in events:
        if triggers.classify(event) == triggers.QUEUE:
            bodies.extend(r.body for r in cmq.records(event, 6 * 1024 * 1024) if r.problem is None)
            continue
        try:
            bodies.append(request_from_event(event, 6 * 1024 * 1024).body)
        except Exception:  # a demo event that is not a callback seeds nothing
            continue
    return bodies


def seed_objects(cos: Any, events: list[tuple[str, dict[str, Any]]]) -> tuple[int, list[str]]:
    """Create every bucket, input and output object the events name (outputs as tiny files)."""
    from ci_callback.errors import InvalidCallback
    from ci_callback.model.models import JobCallback
    from ci_callback.model.parse import parse_callback

    client = cos.client()
    made = 0
    buckets = set()
    for body in _bodies(events):
        try:
            callback = parse_callback(body)
        except InvalidCallback:
            continue
        refs = [callback.input] + (list(callback.outputs) if isinstance(callback, JobCallback) else [])
        for ref in refs:
            if not ref.bucket or not ref.key:
                continue
            if ref.bucket not in buckets:
                cos.create_bucket(ref.bucket)
                buckets.add(ref.bucket)
            client.put_object(Bucket=ref.bucket, Key=ref.key, Body=b"demo object")
            made += 1
    if DEMO_BUCKET not in buckets:
        cos.create_bucket(DEMO_BUCKET)
        buckets.add(DEMO_BUCKET)
    return made, sorted(buckets)


def _table(rows: list[list[str]], headers: list[str]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    return "\n".join(out)


DEMO_FUNCTION = "ci-callback"
LARGE_JOB = 600  # outputs of the demo's large Segment job, run under LARGE_LIMIT_MS: it continues
LARGE_LIMIT_MS = 1500


def local_context(time_limit_ms: int = 10000) -> dict[str, Any]:
    """An SCF context as the platform passes it (names let an invocation continue itself)."""
    return {"request_id": secrets.token_hex(8), "time_limit_in_ms": time_limit_ms, "function_name": DEMO_FUNCTION,
            "namespace": "default", "memory_limit_in_mb": 128}


def run_demo(events_dir: str | None = None, out=None) -> int:  # type: ignore[no-untyped-def]
    from functools import partial

    from ci_callback import log
    from ci_callback.app import handle

    from . import bigjob
    from .localcos import LocalCOS
    from .localscf import InProcessScf

    out = out or sys.stdout
    log.set_stream(open(os.devnull, "w"))  # the demo prints its own summary
    directory = find_events_dir(events_dir)
    events = load_events(directory)
    others = load_events(directory, "timer") + load_events(directory, "queue")
    token = secrets.token_urlsafe(18)
    os.environ.setdefault("TENCENTCLOUD_SECRETID", "local-demo")
    os.environ.setdefault("TENCENTCLOUD_SECRETKEY", "local-demo")
    with LocalCOS() as cos:
        settings = local_settings(cos.endpoint, token)
        seeded, buckets = seed_objects(cos, events + others)
        client = cos.client()
        # One cover already carries a user's tag: ours are merged, theirs kept.
        client.put_object_tagging(Bucket=DEMO_BUCKET, Key="covers/launch-0.jpg",
                                  Tagging={"TagSet": {"Tag": [{"Key": "team", "Value": "marketing"}]}})
        out.write(f"Embedded COS at {cos.endpoint}; seeded {seeded} objects; token generated for this run.\n\n")

        rows = []
        context = {"request_id": "demo", "time_limit_in_ms": 10000}
        again = [e for e in events if "smartcover" in e[0]][:1] or events[:1]
        for name, event in events + again:  # one event twice: a re-delivery
            response = handle(with_token(event, token), context, settings=settings)
            payload = json.loads(response["body"])
            actions = ", ".join(a["action"] for a in payload.get("actions", [])) or "-"
            rows.append([name, str(response["statusCode"]), payload.get("status", ""), str(payload.get("tag") or payload.get("kind") or ""), actions])
        wrong = handle(with_token(events[0][1], "wrong-token"), context, settings=settings)
        rows.append(["(wrong token)", str(wrong["statusCode"]), json.loads(wrong["body"])["status"], "-", "-"])
        out.write("Callbacks replayed through main_handler\n")
        out.write(_table(rows, ["event", "http", "status", "tag/kind", "actions"]) + "\n\n")

        # A job too big for one invocation: it checkpoints and continues, as on SCF.
        cos.seed(DEMO_BUCKET, bigjob.output_keys(LARGE_JOB))
        scf = InProcessScf(partial(handle, settings=settings), DEMO_FUNCTION, time_limit_ms=LARGE_LIMIT_MS).start()
        try:
            body = bigjob.segment_body(LARGE_JOB, "xml", "jdemolarge00000000000000000000001")
            first = handle(function_url_event(body.decode(), token=token, headers={"content-type": "application/xml"}),
                           local_context(LARGE_LIMIT_MS), settings=settings)
            scf.drain()
        finally:
            scf.stop()
        steps = [str(first["statusCode"])] + [str(r["status"]) for r in scf.runs]
        out.write(f"A Segment job with {LARGE_JOB} outputs under a {LARGE_LIMIT_MS} ms time limit: "
                  f"{1 + len(scf.runs)} invocations, answers {' → '.join(steps)} (202 = continuing)\n\n")

        index_rows, tag_rows = [], []
        large_tagged = 0
        for bucket in buckets:
            for item in _list(client, bucket):
                key = item["Key"]
                if key.startswith(settings.index_prefix):
                    index_rows.append([bucket, key, str(item.get("Size"))])
                elif key.startswith(bigjob.PREFIX):
                    large_tagged += bool(client.get_object_tagging(Bucket=bucket, Key=key).get("TagSet"))
                elif not key.startswith((settings.archive_prefix, settings.marker_prefix)):
                    tags = (client.get_object_tagging(Bucket=bucket, Key=key).get("TagSet") or {}).get("Tag") or []
                    tags = [tags] if isinstance(tags, dict) else tags
                    if tags:
                        text = ", ".join(f"{t['Key']}={t['Value']}" for t in tags)
                        tag_rows.append([key, text])
        out.write("Index objects written\n" + _table(index_rows, ["bucket", "key", "bytes"]) + "\n\n")
        out.write("Tags on output objects\n" + _table(tag_rows, ["object", "tags"]) + "\n")
        out.write(f"…and {large_tagged} of the large job's {LARGE_JOB} outputs under {bigjob.PREFIX}.\n")
        inbox = [i["Key"] for b in buckets for i in _list(client, b) if i["Key"].startswith(settings.archive_prefix)]
        deliveries = sum(1 for k in inbox if keys.is_delivery_key(settings.archive_prefix, k))
        out.write(f"\n{len(inbox) - deliveries} raw callbacks archived under {settings.archive_prefix} for replay,"
                  f" and {deliveries} deliveries recorded beside them.\n")
        for name, event in others:
            out.write("\n")
            if "Records" in event:
                _queue_demo(out, name, event, settings)
            else:
                _sweep_demo(out, name, event, cos, settings)
    return 0


def _queue_demo(out: Any, name: str, event: dict[str, Any], settings: Settings) -> None:
    """A CMQ batch (queue delivery): every record on its own, the malformed one kept aside."""
    from ci_callback.app import handle

    queued = settings.replace(index_bucket=DEMO_BUCKET)  # where rejected records are kept
    result = handle(event, {"request_id": "demo-cmq", "time_limit_in_ms": 10000}, settings=queued)
    rows = [[r["msg_id"], str(r["status"]), str(r["outcome"])] for r in result["records"]]
    out.write(f"Queue delivery: {name} through main_handler (no token: the topic's policy is the trust)\n")
    out.write(_table(rows, ["msgId", "http", "status"]) + "\n")


def _sweep_demo(out: Any, name: str, event: dict[str, Any], cos: Any, settings: Settings) -> None:
    """A callback that never arrived: CI still lists the job, and the timer's sweep processes it."""
    from datetime import datetime, timedelta, timezone

    from ci_callback.app import handle
    from ci_callback.reconcile.spec import JobSource, parse_spec

    from .localci import FakeCI

    spec = parse_spec(event["Message"])
    source = next(s for s in spec.sources if isinstance(s, JobSource) and not s.pic)
    created = datetime.now(timezone.utc) - timedelta(minutes=20)
    lost, output = "j1a2b3c4d5e6f11ee9f0a525400000041", "out/lost-720p.mp4"
    cos.client().put_object(Bucket=source.bucket, Key=output, Body=b"demo object")
    with FakeCI(os.environ["TENCENTCLOUD_SECRETID"], os.environ["TENCENTCLOUD_SECRETKEY"]) as ci:
        ci.add_job(lost, source.tags[-1], "Success", source.bucket, "videos/lost.mp4", source.region,
                   [(source.bucket, source.region, output)], queue_id=source.queue, created=created)
        ci.add_job("j1a2b3c4d5e6f11ee9f0a525400000042", source.tags[-1], "Running", source.bucket,
                   "videos/still-running.mp4", source.region, queue_id=source.queue, created=created)
        swept = settings.replace(ci_endpoint=ci.url)
        rows = []
        for run in ("first", "second"):
            result = handle(event, {"request_id": f"demo-sweep-{run}", "time_limit_in_ms": 60000}, settings=swept)
            rows.append([f"{run} sweep", *(str(result[k]) for k in
                                           ("listed", "already_done", "processed", "failed", "skipped"))])
        calls = len(ci.requests)
        out.write(f"A lost callback: CI finished {lost} but its callback never came.\n"
                  f"{name} (the timer's spec) lists {len(spec.streams)} streams; {calls} signed CI calls in all.\n")
        out.write(_table(rows, ["run", "listed", "already done", "processed", "failed", "skipped"]) + "\n")
        tags = (cos.client().get_object_tagging(Bucket=source.bucket, Key=output).get("TagSet") or {}).get("Tag") or []
        tags = [tags] if isinstance(tags, dict) else tags
        out.write(f"{output} now carries " + ", ".join(f"{t['Key']}={t['Value']}" for t in tags) +
                  "; the second sweep changed nothing.\n")
        _connect_demo(out, spec, ci, swept, str(event["Message"]))


def _connect_demo(out: Any, spec: Any, ci: Any, settings: Settings, spec_text: str) -> None:
    """Wiring CI to the function: connect's dry run, its apply, then doctor (issue 18)."""
    from . import connect, doctor

    for target in connect.targets(spec):
        if target.kind == "workflow":
            ci.add_workflow(target.ident)
        else:
            ci.add_queue(target.ident, pic=target.kind == "pic_queue",
                         notify={"State": "On", "Type": "Url", "Url": "https://old.example.com/cb",
                                 "Event": "TaskFinish", "ResultFormat": "XML"})
    server = make_http_server(settings)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        wiring = connect.Wiring(connect.callback_url(f"http://{host}:{port}/", settings.tokens))
        for title, apply in (("connect (dry run)", False), ("connect --apply", True)):
            out.write(f"\n{title}: the sweep spec's queues and workflows on the local CI\n")
            # The local function listens on loopback, which CI itself would refuse.
            connect.render(connect.connect(settings, connect.targets(spec), wiring, apply, allow_intranet=True), out)
        out.write("\ndoctor\n")
        doctor.render(doctor.doctor(settings, wiring.url, spec_text), out)
    finally:
        server.shutdown()


def _list(client: Any, bucket: str) -> list[dict[str, Any]]:
    contents = client.list_objects(Bucket=bucket, MaxKeys=1000).get("Contents", []) or []
    return [contents] if isinstance(contents, dict) else list(contents)


# ---------------------------------------------------------------- serve --local


def event_from_http(method: str, target: str, headers: dict[str, str], body: bytes) -> dict[str, Any]:
    """Wrap a plain HTTP request in a Function URL event, as the default trigger would (doc 583/96099)."""
    parts = urlsplit(target)
    query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    return function_url_event(body, headers=headers, method=method, path=parts.path or "/", query=query,
                              remote_addr="127.0.0.1")


def make_http_server(settings: Settings, host: str = "127.0.0.1", port: int = 0):  # type: ignore[no-untyped-def]
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from ci_callback.app import handle

    class CallbackHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length > 0 else b""
            event = event_from_http(self.command, self.path, dict(self.headers.items()), body)
            response = handle(event, local_context(), settings=settings)
            data = response["body"].encode("utf-8")
            self.send_response(response["statusCode"])
            for name, value in response["headers"].items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_POST = do_GET = do_PUT = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:  # keep the console quiet
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        # socketserver's default listen backlog is 5: a burst of concurrent callbacks would
        # overflow it and see dropped SYNs (1 s stalls) and connection resets.
        request_queue_size = 128

    return Server((host, port), CallbackHandler)


def run_serve(port: int = 8080, token: str | None = None, bucket: str = DEMO_BUCKET) -> int:
    from functools import partial

    from ci_callback.app import handle

    from .localcos import LocalCOS
    from .localscf import InProcessScf

    token = token or secrets.token_urlsafe(18)
    os.environ.setdefault("TENCENTCLOUD_SECRETID", "local-serve")
    os.environ.setdefault("TENCENTCLOUD_SECRETKEY", "local-serve")
    with LocalCOS() as cos:
        cos.create_bucket(bucket)
        settings = local_settings(cos.endpoint, token)
        server = make_http_server(settings, port=port)
        # Continuations run in this process, one after another, as SCF runs async invocations.
        scf = InProcessScf(partial(handle, settings=settings), DEMO_FUNCTION).start()
        host, bound = server.server_address[:2]
        sys.stderr.write(
            f"ci-callback serving on http://{host}:{bound}/?token={token}\n"
            f"embedded COS at {cos.endpoint} (bucket {bucket})\n"
            f"try: curl -s -X POST 'http://{host}:{bound}/?token={token}' -H 'Content-Type: application/xml' --data-binary @body.xml\n"
        )
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            thread.join()
        except KeyboardInterrupt:
            pass
        finally:
            server.shutdown()
            scf.stop()
    return 0
