"""A local fake of CI's query API (the three calls ``ci_callback.verify`` makes).

``FakeCI`` serves, with werkzeug on ``127.0.0.1:<free port>`` in a thread:

* ``GET /jobs/<JobId>``              (``CosS3Client.ci_get_media_jobs``)
* ``GET /pic_jobs/<JobId>``          (``CosS3Client.ci_get_media_pic_jobs``)
* ``GET /workflowexecution/<RunId>`` (``CosS3Client.ci_get_workflowexecution``)

answering XML shaped like the documented responses in ``../shared/corpus/query/``
(``DescribeMediaJob-http-2-success.txt``, ``DescribePicJob-http-1-submitted.txt``,
``DescribeWorkflowExecution-xml-1.xml``), built from what a test registered with
``add_job`` / ``add_run``. Unknown job ids get CI's "no such job" shape::

    <Response><JobsDetail/><NonExistJobIds>id</NonExistJobIds></Response>

and an unknown run a ``<Response>`` without ``<WorkflowExecution>``.

Like CI, it refuses unsigned requests: ``Authorization`` must be a COS signature
(``q-sign-algorithm=sha1&q-ak=…``). When ``secret_key`` is given the HMAC-SHA1 signature
itself is recomputed and checked (and ``q-ak`` compared with ``secret_id``); anything
else is answered ``403 AccessDenied`` with a COS-style XML error.

Point the product at it with::

    settings.replace(verify_jobs=True, ci_endpoint=fake.url)

(``storage._client`` builds the CI client with IP/Port taken from ``ci_endpoint``).
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Optional
from urllib.parse import parse_qsl, quote
from xml.sax.saxutils import escape

from local_server import LocalWSGIServer

__all__ = ["FakeCI", "CiRequest", "Job", "Run"]


@dataclass
class Job:
    job_id: str
    tag: str
    state: str
    bucket: str
    object: str
    region: str = "ap-guangzhou"
    outputs: list = field(default_factory=list)  # [(bucket, region, object)]


@dataclass
class Run:
    run_id: str
    state: str
    object: str
    workflow_id: str = "w00000000000000000000000000000000"
    name: str = "workflow-1"
    tasks: list = field(default_factory=list)  # [(type, job_id, state)]


@dataclass
class CiRequest:
    """One request the fake saw."""

    method: str
    path: str
    host: str
    authorization: str
    status: int


def _el(name: str, value: Any) -> str:
    return f"<{name}>{escape(str(value))}</{name}>"


class FakeCI(LocalWSGIServer):
    def __init__(self, secret_id: Optional[str] = None, secret_key: Optional[str] = None) -> None:
        self.secret_id = secret_id
        self.secret_key = secret_key
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {}
        self._runs: dict[str, Run] = {}
        self._requests: list[CiRequest] = []
        self._fail: list[int] = []  # statuses for the next requests (see fail_next)
        super().__init__()

    # -- registry ----------------------------------------------------------
    def add_job(self, job_id: str, tag: str, state: str, bucket: str, object: str,  # noqa: A002 - CI's word
                region: str = "ap-guangzhou", outputs: Optional[list] = None) -> Job:
        job = Job(job_id, tag, state, bucket, object, region, list(outputs or []))
        with self._lock:
            self._jobs[job_id] = job
        return job

    def add_run(self, run_id: str, state: str, object: str, **extra: Any) -> Run:  # noqa: A002
        run = Run(run_id, state, object, **extra)
        with self._lock:
            self._runs[run_id] = run
        return run

    def fail_next(self, status: int = 500, times: int = 1) -> None:
        """Answer the next ``times`` signed requests with this HTTP status."""
        with self._lock:
            self._fail.extend([status] * times)

    @property
    def requests(self) -> list[CiRequest]:
        with self._lock:
            return list(self._requests)

    # -- lifecycle ---------------------------------------------------------

    @property
    def url(self) -> str:
        """What ``CI_CALLBACK_CI_ENDPOINT`` takes."""
        return f"http://127.0.0.1:{self.port}"

    # -- responses ---------------------------------------------------------
    def job_xml(self, job: Job, pic: bool) -> str:
        outputs = job.outputs or [(job.bucket, job.region, "output/out")]
        out_bucket, out_region, out_object = outputs[0]
        result = ""
        if not pic and job.state == "Success":
            names = "".join(_el("ObjectName", o) for _, _, o in outputs)
            result = (f"<MediaResult><OutputFile>{_el('Bucket', out_bucket)}{_el('Region', out_region)}"
                      f"{names}</OutputFile></MediaResult>")
        return (
            "<Response><JobsDetail>"
            f"<Code>Success</Code><Message/>{_el('JobId', job.job_id)}{_el('State', job.state)}"
            "<Progress>100</Progress>"
            "<CreationTime>2022-06-27T15:23:12+0800</CreationTime>"
            "<StartTime>2022-06-27T15:23:13+0800</StartTime><EndTime>2022-06-27T15:24:33+0800</EndTime>"
            f"<QueueId>p2242ab62c7c94486915508540933a2c6</QueueId>{_el('Tag', job.tag)}"
            f"<Input>{_el('BucketId', job.bucket)}{_el('Object', job.object)}{_el('Region', job.region)}</Input>"
            "<Operation><TemplateId>t1460606b9752148c4ab182f55163ba7cd</TemplateId>"
            f"<Output>{_el('Region', out_region)}{_el('Bucket', out_bucket)}{_el('Object', out_object)}</Output>"
            f"<UserData>fake-ci</UserData><JobLevel>0</JobLevel>{result}</Operation>"
            "</JobsDetail></Response>"
        )

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
            f"<CreateTime>2022-08-09T14:54:17+08:00</CreateTime>{_el('Object', run.object)}"
            f"{_el('State', run.state)}{tasks}</WorkflowExecution></Response>"
        )

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
        request_id = uuid.uuid4().hex
        status, body = self._answer(environ, method, path, authorization, request_id)
        with self._lock:
            self._requests.append(CiRequest(method, path, environ.get("HTTP_HOST", ""), authorization, status))
        data = body.encode("utf-8")
        reason = {200: "OK", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed"}.get(status, "Error")
        start_response(f"{status} {reason}", [("Content-Type", "application/xml"), ("Content-Length", str(len(data))),
                                              ("x-ci-request-id", request_id)])
        return [data]

    def _error(self, status: int, code: str, message: str, request_id: str) -> tuple[int, str]:
        return status, (f"<?xml version='1.0' encoding='utf-8' ?><Error>{_el('Code', code)}{_el('Message', message)}"
                        f"{_el('RequestId', request_id)}<TraceId>fake-ci</TraceId></Error>")

    def _answer(self, environ: dict[str, Any], method: str, path: str, authorization: str,
                request_id: str) -> tuple[int, str]:
        if not self._signature_ok(environ, authorization):
            return self._error(403, "AccessDenied", "missing or invalid COS signature", request_id)
        with self._lock:
            fail = self._fail.pop(0) if self._fail else None
        if fail is not None:
            return self._error(fail, "InternalError", "injected by FakeCI", request_id)
        if method != "GET":
            return self._error(405, "MethodNotAllowed", f"{method} not served by FakeCI", request_id)
        parts = [p for p in path.split("/") if p]
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
