"""A local fake of CI's query API: the calls ``ci_callback.durable.verify`` and the reconcile sweep make.

Used by the tests (``tests/fake_ci.py``) and by ``ci-callback demo`` (a lost callback recovered).

``FakeCI`` serves, with werkzeug on ``127.0.0.1:<free port>`` in a thread:

* ``GET /jobs/<JobId>``              (``CosS3Client.ci_get_media_jobs``)
* ``GET /pic_jobs/<JobId>``          (``CosS3Client.ci_get_media_pic_jobs``)
* ``GET /workflowexecution/<RunId>`` (``CosS3Client.ci_get_workflowexecution``)
* ``GET /jobs?tag=&queueId=&…``       (``CosS3Client.ci_list_media_jobs``)
* ``GET /pic_jobs?tag=&queueId=&…``   (``CosS3Client.ci_list_media_pic_jobs``)
* ``GET /workflowexecution?workflowId=&…`` (``CosS3Client.ci_list_workflowexecution``)
* ``GET /queue?queueIds=`` and ``PUT /queue/<QueueId>`` (``ci_get_media_queue`` /
  ``ci_update_media_queue``; DescribeMediaQueues doc 436/54045, UpdateMediaQueue doc 436/54046)
* ``GET /picqueue?queueIds=`` and ``PUT /picqueue/<QueueId>`` (``ci_get_media_pic_queue`` /
  ``ci_update_media_pic_queue``)
* ``GET /workflow?ids=`` and ``PUT /workflow/<WorkflowId>`` (``ci_get_workflow`` doc 460/76857 /
  ``ci_update_workflow`` doc 436/53994: the body is ``<Request><MediaWorkflow>…``)

answering XML shaped like the responses CI's API documents (DescribeMediaJob,
DescribePicJob, DescribeMediaJobs, DescribeWorkflowExecution(s); CI API docs, product 460;
``tests/test_fake_ci.py`` compares them with the documented samples), built from what a
test registered with ``add_job`` / ``add_run``. Unknown job ids get CI's "no such job" shape::

    <Response><JobsDetail/><NonExistJobIds>id</NonExistJobIds></Response>

and an unknown run a ``<Response>`` without ``<WorkflowExecution>``.

The list routes take the SDK's query parameters (cos_client.py ``ci_list_media_jobs`` /
``ci_list_workflowexecution``): ``tag`` (and ``queueId``) or ``workflowId``, ``states``
(``All`` or a comma list), ``orderByTime`` (``Desc``/``Asc``), ``size``, ``nextToken`` and
the creation-time window ``startCreationTime``/``endCreationTime``
(``2001-01-01T00:00:00+0800``). They filter on creation time only, as CI documents (doc
436/54011). Pages end with ``<NextToken>…</NextToken>``; how the last page says "no more"
is not documented, so ``end_token`` chooses: ``"empty"`` (``<NextToken></NextToken>``, as
in DescribeWorkflowExecutions-xml-2), ``"absent"``, or ``"dangling"`` (a token whose
page is empty). **Assumptions, not documented behaviour:** ``size`` outside 1..100, a
missing ``tag``/``queueId``/``workflowId``, an unreadable time or an unknown
``nextToken`` answer ``400 InvalidArgument``; a request whose Host names the bucket in
another region than the one registered with ``bucket_region`` answers ``404
NoSuchBucket``.

Like CI, it refuses unsigned requests: ``Authorization`` must be a COS signature
(``q-sign-algorithm=sha1&q-ak=…``). When ``secret_key`` is given the HMAC-SHA1 signature
itself is recomputed (query parameters included) and checked (and ``q-ak`` compared with
``secret_id``); anything else is answered ``403 AccessDenied`` with a COS-style XML error.

Point the product at it with::

    settings.replace(verify_jobs=True, ci_endpoint=fake.url)

(``storage._client`` builds the CI client with IP/Port taken from ``ci_endpoint``).
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qsl, quote
from xml.etree import ElementTree
from xml.sax.saxutils import escape

from .wsgiserver import LocalWSGIServer

__all__ = ["FakeCI", "CiRequest", "Job", "Run", "BEIJING", "FINAL_STATES", "QUEUE", "PIC_QUEUE", "WORKFLOW",
           "job_stamp", "run_stamp"]

BEIJING = timezone(timedelta(hours=8))
QUEUE = "p2242ab62c7c94486915508540933a2c6"
PIC_QUEUE = "p2911917386e148639319e13c285cc774"
WORKFLOW = "web6ac56c1ef54dbfa44d7f4103203be9"
FINAL_STATES = ("Success", "Failed", "Cancel")
MAX_SIZE = 100  # documented maximum page size (doc 436/54011: size 最大100)


def job_stamp(moment: datetime | None) -> str:
    """Jobs: ``2022-06-27T15:23:12+0800`` (no colon), ``-`` when not set (DescribeMediaJob)."""
    return moment.astimezone(BEIJING).strftime("%Y-%m-%dT%H:%M:%S%z") if moment else "-"


def run_stamp(moment: datetime | None) -> str:
    """Workflow runs: ``2022-08-09T14:54:17+08:00`` (DescribeWorkflowExecutions-xml-1)."""
    return moment.astimezone(BEIJING).isoformat(timespec="seconds") if moment else ""


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


@dataclass
class Job:
    job_id: str
    tag: str
    state: str
    bucket: str
    object: str
    region: str = "ap-guangzhou"
    outputs: list = field(default_factory=list)  # [(bucket, region, object)]
    queue_id: str | None = None  # default: QUEUE, or PIC_QUEUE for PicProcess
    created: datetime | None = None  # default: when it was added
    ended: datetime | None = None  # default: created + 80 s for a final state

    @property
    def pic(self) -> bool:
        return self.tag == "PicProcess"


@dataclass
class Run:
    run_id: str
    state: str
    object: str
    workflow_id: str = "w00000000000000000000000000000000"
    name: str = "workflow-1"
    tasks: list = field(default_factory=list)  # [(type, job_id, state)]
    bucket: str | None = None  # None: listed for any bucket
    created: datetime | None = None


@dataclass
class CiRequest:
    """One request the fake saw."""

    method: str
    path: str
    host: str
    authorization: str
    status: int
    query: dict = field(default_factory=dict)


def _el(name: str, value: Any) -> str:
    return f"<{name}>{escape(str(value))}</{name}>"


def _xml(name: str, value: Any) -> str:
    """Nested dicts as XML elements, as CI writes its settings."""
    if isinstance(value, dict):
        return f"<{name}>" + "".join(_xml(k, v) for k, v in value.items()) + f"</{name}>"
    return _el(name, "" if value is None else value)


def _from_xml(element: ElementTree.Element) -> Any:
    """An element as nested dicts of strings (what a PUT body says)."""
    children = list(element)
    if not children:
        return element.text or ""
    return {child.tag: _from_xml(child) for child in children}


def _read_time(value: str) -> datetime:
    # CI's documented form is %Y-%m-%dT%H:%M:%S%z; strptime's %z also takes +08:00.
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S%z")


class _BadRequest(Exception):
    pass


class FakeCI(LocalWSGIServer):
    def __init__(self, secret_id: str | None = None, secret_key: str | None = None,
                 end_token: str = "empty") -> None:
        assert end_token in ("empty", "absent", "dangling")
        self.secret_id = secret_id
        self.secret_key = secret_key
        self.end_token = end_token
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {}
        self._runs: dict[str, Run] = {}
        self._regions: dict[str, str] = {}
        self._requests: list[CiRequest] = []
        self._fail: list[int] = []  # statuses for the next requests (see fail_next)
        self._queues: dict[tuple[str, str], dict] = {}  # ("queue"|"picqueue", id) -> QueueList fields
        self._workflows: dict[str, dict] = {}  # id -> MediaWorkflowList fields
        super().__init__()

    # -- registry ----------------------------------------------------------
    def add_job(self, job_id: str, tag: str, state: str, bucket: str, object: str,  # CI's word
                region: str = "ap-guangzhou", outputs: list | None = None, *, queue_id: str | None = None,
                created: datetime | None = None, ended: datetime | None = None) -> Job:
        created = created or _now()
        if ended is None and state in FINAL_STATES:
            ended = created + timedelta(seconds=80)
        job = Job(job_id, tag, state, bucket, object, region, list(outputs or []),
                  queue_id or (PIC_QUEUE if tag == "PicProcess" else QUEUE), created, ended)
        with self._lock:
            self._jobs[job_id] = job
        return job

    def add_run(self, run_id: str, state: str, object: str, **extra: Any) -> Run:
        extra.setdefault("created", _now())
        run = Run(run_id, state, object, **extra)
        with self._lock:
            self._runs[run_id] = run
        return run

    def add_queue(self, queue_id: str, *, pic: bool = False, name: str = "queue-1", state: str = "Active",
                  notify: dict | None = None) -> None:
        """A media (or image) queue with this NotifyConfig (default: callbacks Off)."""
        with self._lock:
            self._queues[("picqueue" if pic else "queue", queue_id)] = {
                "QueueId": queue_id, "Name": name, "State": state,
                "NotifyConfig": dict(notify or {"State": "Off", "Type": "Url", "Url": "", "Event": "TaskFinish",
                                                 "ResultFormat": "XML"}),
                "MaxSize": "10000", "MaxConcurrent": "10", "Category": "CateAll"}

    def add_workflow(self, workflow_id: str, *, name: str = "workflow-1", state: str = "Active",
                     notify: dict | None = None, queue_id: str = QUEUE) -> None:
        """A workflow whose Start node carries NOTIFY (shape of doc 436/53994's request body)."""
        start: dict = {"Type": "Start", "Input": {"QueueId": queue_id, "ObjectPrefix": "input/"}}
        if notify is not None:
            start["Input"]["NotifyConfig"] = dict(notify)
        with self._lock:
            self._workflows[workflow_id] = {
                "Name": name, "WorkflowId": workflow_id, "State": state,
                "Topology": {"Dependencies": {"Start": "Transcode_1581665960538",
                                              "Transcode_1581665960538": "End"},
                             "Nodes": {"Start": start,
                                       "Transcode_1581665960538": {"Type": "Transcode", "Operation": {
                                           "TemplateId": "t1460606b9752148c4ab182f55163ba7cd"}}}}}

    def queue(self, queue_id: str, pic: bool = False) -> dict:
        with self._lock:
            return copy.deepcopy(self._queues[("picqueue" if pic else "queue", queue_id)])

    def workflow(self, workflow_id: str) -> dict:
        with self._lock:
            return copy.deepcopy(self._workflows[workflow_id])

    @property
    def writes(self) -> list[CiRequest]:
        """The PUTs the fake answered 200: what a dry run must never send."""
        return [r for r in self.requests if r.method == "PUT" and r.status == 200]

    def set_state(self, ident: str, state: str, ended: datetime | None = None) -> None:
        """A job or run moves on (Running -> Success …), as CI's record would."""
        with self._lock:
            job = self._jobs.get(ident)
            if job is not None:
                job.state = state
                job.ended = ended or (_now() if state in FINAL_STATES else None)
            run = self._runs.get(ident)
            if run is not None:
                run.state = state

    def bucket_region(self, bucket: str, region: str) -> None:
        """Requests for BUCKET through another region's host answer 404 NoSuchBucket."""
        with self._lock:
            self._regions[bucket] = region

    def fail_next(self, status: int = 500, times: int = 1) -> None:
        """Answer the next ``times`` signed requests with this HTTP status."""
        with self._lock:
            self._fail.extend([status] * times)

    @property
    def requests(self) -> list[CiRequest]:
        with self._lock:
            return list(self._requests)

    def reset_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    # -- lifecycle ---------------------------------------------------------

    @property
    def url(self) -> str:
        """What ``CI_CALLBACK_CI_ENDPOINT`` takes."""
        return f"http://127.0.0.1:{self.port}"

    # -- responses ---------------------------------------------------------
    def job_element(self, job: Job) -> str:
        """One ``<JobsDetail>``: the same element in a get and in a list response."""
        outputs = job.outputs or [(job.bucket, job.region, "output/out")]
        out_bucket, out_region, out_object = outputs[0]
        result = ""
        if not job.pic and job.state == "Success":
            names = "".join(_el("ObjectName", o) for _, _, o in outputs)
            result = (f"<MediaResult><OutputFile>{_el('Bucket', out_bucket)}{_el('Region', out_region)}"
                      f"{names}</OutputFile></MediaResult>")
        progress = 100 if job.state in FINAL_STATES else 30
        code = "Success" if job.state != "Failed" else "InternalError"
        started = job.created + timedelta(seconds=1) if job.created and job.state != "Submitted" else None
        return (
            "<JobsDetail>"
            f"{_el('Code', code)}<Message/>{_el('JobId', job.job_id)}{_el('State', job.state)}"
            f"{_el('Progress', progress)}"
            f"{_el('CreationTime', job_stamp(job.created))}"
            f"{_el('StartTime', job_stamp(started))}{_el('EndTime', job_stamp(job.ended))}"
            f"{_el('QueueId', job.queue_id)}{_el('Tag', job.tag)}"
            f"<Input>{_el('BucketId', job.bucket)}{_el('Object', job.object)}{_el('Region', job.region)}</Input>"
            "<Operation><TemplateId>t1460606b9752148c4ab182f55163ba7cd</TemplateId>"
            f"<Output>{_el('Region', out_region)}{_el('Bucket', out_bucket)}{_el('Object', out_object)}</Output>"
            f"<UserData>fake-ci</UserData><JobLevel>0</JobLevel>{result}</Operation>"
            "</JobsDetail>"
        )

    def job_xml(self, job: Job, pic: bool = False) -> str:
        return f"<Response>{self.job_element(job)}</Response>"

    @staticmethod
    def run_xml(run: Run, request_id: str) -> str:
        tasks = "".join(
            f"<Tasks>{_el('Type', t)}{_el('JobId', j)}<CreateTime>2022-08-09T14:54:40+08:00</CreateTime>"
            f"{_el('Name', t + '_1581665960536')}{_el('State', s)}<Code>Success</Code><Message/></Tasks>"
            for t, j, s in run.tasks
        )
        return (
            f"<Response>{_el('RequestId', request_id)}<WorkflowExecution>"
            f"{_el('WorkflowId', run.workflow_id)}{_el('Name', run.name)}{_el('RunId', run.run_id)}"
            f"{_el('CreateTime', run_stamp(run.created) or '2022-08-09T14:54:17+08:00')}{_el('Object', run.object)}"
            f"{_el('State', run.state)}{tasks}</WorkflowExecution></Response>"
        )

    @staticmethod
    def run_summary(run: Run) -> str:
        """One ``<WorkflowExecutionList>`` item (DescribeWorkflowExecutions-xml-1)."""
        return (
            f"<WorkflowExecutionList>{_el('RunId', run.run_id)}{_el('WorkflowId', run.workflow_id)}"
            f"{_el('Object', run.object)}{_el('CreateTime', run_stamp(run.created))}{_el('State', run.state)}"
            "</WorkflowExecutionList>"
        )

    # -- listing -------------------------------------------------------------
    def _page(self, items: list, query: dict[str, str], created: Callable[[Any], datetime | None],
              state: Callable[[Any], str]) -> tuple[list, str]:
        """Filter, order and page ITEMS as the list APIs do; return (page, NextToken element)."""
        try:
            size = int(query.get("size", "10"))
        except ValueError:
            raise _BadRequest("size is not a number") from None
        if not 1 <= size <= MAX_SIZE:
            raise _BadRequest(f"size must be between 1 and {MAX_SIZE}")
        try:
            start = _read_time(query["startCreationTime"]) if query.get("startCreationTime") else None
            end = _read_time(query["endCreationTime"]) if query.get("endCreationTime") else None
        except ValueError:
            raise _BadRequest("creation time is not %Y-%m-%dT%H:%M:%S%z") from None
        states = [s for s in query.get("states", "All").split(",") if s]
        if start is not None:
            items = [i for i in items if created(i) and created(i) >= start]
        if end is not None:
            items = [i for i in items if created(i) and created(i) <= end]
        if states and "All" not in states:
            items = [i for i in items if state(i) in states]
        far = datetime.min.replace(tzinfo=timezone.utc)
        items.sort(key=lambda i: created(i) or far, reverse=query.get("orderByTime", "Desc") != "Asc")
        token = query.get("nextToken", "")
        if token:
            if not token.startswith("ft") or not token[2:].isdigit():
                raise _BadRequest("nextToken is not one this endpoint issued")
            offset = int(token[2:])
        else:
            offset = 0
        page = items[offset:offset + size]
        more = offset + size < len(items)
        if more or (self.end_token == "dangling" and page):
            return page, _el("NextToken", f"ft{offset + size}")
        return page, ("<NextToken></NextToken>" if self.end_token == "empty" else "")

    def _list_jobs(self, pic: bool, query: dict[str, str], bucket: str | None) -> str:
        if not query.get("tag"):
            raise _BadRequest("tag is required")
        if not query.get("queueId"):
            raise _BadRequest("queueId is required")
        with self._lock:
            jobs = [j for j in self._jobs.values() if j.pic == pic and j.tag == query["tag"]
                    and j.queue_id == query["queueId"] and (bucket is None or j.bucket == bucket)]
        page, token = self._page(jobs, query, lambda j: j.created, lambda j: j.state)
        return "<Response>" + "".join(self.job_element(j) for j in page) + token + "</Response>"

    def _list_runs(self, query: dict[str, str], bucket: str | None, request_id: str) -> str:
        if not query.get("workflowId"):
            raise _BadRequest("workflowId is required")
        with self._lock:
            runs = [r for r in self._runs.values() if r.workflow_id == query["workflowId"]
                    and (bucket is None or r.bucket in (None, bucket))
                    and (not query.get("name") or r.object == query["name"])]
        page, token = self._page(runs, query, lambda r: r.created, lambda r: r.state)
        return f"<Response>{_el('RequestId', request_id)}" + "".join(self.run_summary(r) for r in page) + token + \
            "</Response>"

    # -- HTTP --------------------------------------------------------------
    def _signature_ok(self, environ: dict[str, Any], authorization: str) -> bool:
        if not authorization.startswith("q-sign-algorithm=sha1&"):
            return False
        fields = dict(parse_qsl(authorization, keep_blank_values=True))
        needed = ("q-ak", "q-sign-time", "q-key-time", "q-header-list", "q-url-param-list", "q-signature")
        if any(not fields.get(k) and k not in ("q-header-list", "q-url-param-list") for k in needed):
            return False
        if self.secret_key is None:
            return True
        if self.secret_id is not None and fields["q-ak"] != self.secret_id:
            return False
        try:
            start, end = (int(x) for x in fields["q-sign-time"].split(";"))
        except ValueError:
            return False
        if not start - 300 <= time.time() <= end + 300:
            return False
        headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
        for name in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            if environ.get(name):
                headers[name.replace("_", "-").lower()] = environ[name]
        params = dict(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))
        params = {k.lower(): v for k, v in params.items()}
        header_list = [h for h in fields["q-header-list"].split(";") if h]
        param_list = [p for p in fields["q-url-param-list"].split(";") if p]
        path = environ.get("PATH_INFO", "/").encode("latin-1").decode("utf-8", "replace")
        format_str = "{}\n{}\n{}\n{}\n".format(
            environ["REQUEST_METHOD"].lower(),
            path,
            "&".join(f"{p}={quote(params.get(p, ''), '-_.~')}" for p in sorted(param_list)),
            "&".join(f"{h}={quote(headers.get(h, ''), '-_.~')}" for h in sorted(header_list)),
        )
        string_to_sign = "sha1\n{}\n{}\n".format(
            fields["q-sign-time"], hashlib.sha1(format_str.encode("utf-8")).hexdigest())
        sign_key = hmac.new(self.secret_key.encode("utf-8"), fields["q-key-time"].encode("utf-8"),
                            hashlib.sha1).hexdigest()
        expected = hmac.new(sign_key.encode("utf-8"), string_to_sign.encode("utf-8"), hashlib.sha1).hexdigest()
        return hmac.compare_digest(expected, fields["q-signature"])

    def _wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        path = environ.get("PATH_INFO", "/")
        authorization = environ.get("HTTP_AUTHORIZATION", "")
        query = dict(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))
        request_id = uuid.uuid4().hex
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        sent = environ["wsgi.input"].read(length) if length > 0 else b""
        status, body = self._answer(environ, method, path, query, authorization, request_id, sent)
        with self._lock:
            self._requests.append(CiRequest(method, path, environ.get("HTTP_HOST", ""), authorization, status, query))
        data = body.encode("utf-8")
        reason = {200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found",
                  405: "Method Not Allowed"}.get(status, "Error")
        start_response(f"{status} {reason}", [("Content-Type", "application/xml"), ("Content-Length", str(len(data))),
                                              ("x-ci-request-id", request_id)])
        return [data]

    # -- queue and workflow settings ------------------------------------------
    def _settings(self, method: str, parts: list[str], query: dict[str, str], body: bytes,
                  request_id: str) -> tuple[int, str]:
        route = parts[0]
        if method == "GET" and len(parts) == 1:
            wanted = [i for i in query.get("ids" if route == "workflow" else "queueIds", "").split(",") if i]
            with self._lock:
                if route == "workflow":
                    found = [w for i, w in self._workflows.items() if not wanted or i in wanted]
                    missing = [i for i in wanted if i not in self._workflows]
                else:
                    found = [q for (r, i), q in self._queues.items() if r == route and (not wanted or i in wanted)]
                    missing = [i for i in wanted if (route, i) not in self._queues]
            item, gone = ("MediaWorkflowList", "NonExistIDs") if route == "workflow" else ("QueueList", "NonExistPIDs")
            listed = "".join(_xml(item, entry) for entry in found)
            return 200, (f"<Response>{_el('RequestId', request_id)}{_el('TotalCount', len(found))}"
                         f"<PageNumber>1</PageNumber><PageSize>10</PageSize>{listed}"
                         + "".join(_el(gone, i) for i in missing) + "</Response>")
        if method == "PUT" and len(parts) == 2:
            try:
                request = _from_xml(ElementTree.fromstring(body))
            except ElementTree.ParseError:
                return self._error(400, "InvalidArgument", "the body is not XML", request_id)
            if not isinstance(request, dict):
                return self._error(400, "InvalidArgument", "the body is not a <Request>", request_id)
            return self._update(route, parts[1], request, request_id)
        return self._error(405, "MethodNotAllowed", f"{method} {'/'.join(parts)} not served by FakeCI", request_id)

    def _update(self, route: str, ident: str, request: dict, request_id: str) -> tuple[int, str]:
        if route == "workflow":
            flow = request.get("MediaWorkflow")
            if not isinstance(flow, dict) or not flow.get("Name") or not isinstance(flow.get("Topology"), dict):
                return self._error(400, "InvalidArgument", "MediaWorkflow.Name and Topology are required", request_id)
            with self._lock:
                if ident not in self._workflows:
                    return self._error(404, "NoSuchResource", "no such workflow", request_id)
                current = self._workflows[ident]
                current.update({k: v for k, v in flow.items() if k in ("Name", "State", "Topology")})
                answer = _xml("MediaWorkflow", current)
            return 200, f"<Response>{_el('RequestId', request_id)}{answer}</Response>"
        # UpdateMediaQueue: Name and State are required (doc 436/54046).
        if not request.get("Name") or request.get("State") not in ("Active", "Paused"):
            return self._error(400, "InvalidArgument", "Name and State (Active|Paused) are required", request_id)
        notify = request.get("NotifyConfig")
        if isinstance(notify, dict) and notify.get("State") == "On" and notify.get("Type", "Url") == "Url" \
                and not notify.get("Url"):
            return self._error(400, "InvalidArgument", "NotifyConfig.Url is required for Type Url", request_id)
        with self._lock:
            current = self._queues.get((route, ident))
            if current is None:
                return self._error(404, "NoSuchResource", "no such queue", request_id)
            current.update({"Name": request["Name"], "State": request["State"]})
            if isinstance(notify, dict):
                current["NotifyConfig"] = notify
            answer = _xml("Queue", current)
        return 200, f"<Response>{_el('RequestId', request_id)}{answer}</Response>"

    def _error(self, status: int, code: str, message: str, request_id: str) -> tuple[int, str]:
        return status, (f"<?xml version='1.0' encoding='utf-8' ?><Error>{_el('Code', code)}{_el('Message', message)}"
                        f"<Resource>fake-ci</Resource>{_el('RequestId', request_id)}<TraceId>fake-ci</TraceId></Error>")

    def _host_bucket(self, environ: dict[str, Any]) -> tuple[str | None, str | None]:
        """(bucket, region) from ``Host: <bucket>.{ci,cos}.<region>.myqcloud.com``, as the SDK sends it."""
        labels = environ.get("HTTP_HOST", "").split(":")[0].split(".")
        if len(labels) >= 3 and labels[1] in ("ci", "cos"):  # with IP/Port the SDK sends the cos form
            return labels[0], labels[2]
        return None, None

    def _answer(self, environ: dict[str, Any], method: str, path: str, query: dict[str, str], authorization: str,
                request_id: str, body: bytes = b"") -> tuple[int, str]:
        if not self._signature_ok(environ, authorization):
            return self._error(403, "AccessDenied", "missing or invalid COS signature", request_id)
        with self._lock:
            fail = self._fail.pop(0) if self._fail else None
        if fail is not None:
            return self._error(fail, "InternalError", "injected by FakeCI", request_id)
        bucket, region = self._host_bucket(environ)
        parts = [p for p in path.split("/") if p]
        if parts and parts[0] in ("queue", "picqueue", "workflow"):
            return self._settings(method, parts, query, body, request_id)
        if method != "GET":
            return self._error(405, "MethodNotAllowed", f"{method} not served by FakeCI", request_id)
        with self._lock:
            home = self._regions.get(bucket or "")
        if home is not None and region != home:
            return self._error(404, "NoSuchBucket", "the bucket does not exist in this region", request_id)
        try:
            if len(parts) == 1 and parts[0] in ("jobs", "pic_jobs"):
                return 200, self._list_jobs(parts[0] == "pic_jobs", query, bucket)
            if len(parts) == 1 and parts[0] == "workflowexecution":
                return 200, self._list_runs(query, bucket, request_id)
        except _BadRequest as exc:
            return self._error(400, "InvalidArgument", str(exc), request_id)
        if len(parts) != 2:
            return self._error(404, "NoSuchResource", f"no route for {path}", request_id)
        route, ident = parts
        with self._lock:
            job = self._jobs.get(ident)
            run = self._runs.get(ident)
        if route in ("jobs", "pic_jobs"):
            if job is None:
                return 200, f"<Response><JobsDetail/>{_el('NonExistJobIds', ident)}</Response>"
            return 200, self.job_xml(job, pic=route == "pic_jobs")
        if route == "workflowexecution":
            if run is None:
                return 200, f"<Response>{_el('RequestId', request_id)}</Response>"
            return 200, self.run_xml(run, request_id)
        return self._error(404, "NoSuchResource", f"no route for {path}", request_id)
