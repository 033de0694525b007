"""An embedded, real-HTTP local COS for tests and local runs.

``LocalCOS`` serves moto's S3 backend with werkzeug on ``127.0.0.1:<free port>`` and
hands out ``qcloud_cos.CosS3Client``s pointed at it, so code under test talks to a
real S3-compatible server over real sockets with the real COS SDK.

Why not ``moto.server.ThreadedMotoServer``: its host dispatcher parses the
``Authorization`` header as AWS SigV4 and answers 500 to COS's ``q-sign-…`` header.
Serving the S3 backend app directly skips that dispatcher.

Plain moto misreads several COS-only headers. With ``cos_compat=True`` (the default)
a thin WSGI layer translates them, so the product can use the real COS recipes:

* ``x-cos-forbid-overwrite: true`` (COS write-once) on a plain PUT -> 409
  ``FileAlreadyExists`` when the key exists (moto alone ignores it and overwrites).
  Not emulated on ``copy_object``: a copy still overwrites.
* ``x-cos-copy-source`` -> ``x-amz-copy-source`` (moto alone treats ``copy_object`` as a
  plain PUT and creates an *empty* destination object).
* ``x-cos-meta-*`` / ``x-cos-tagging`` / ``x-cos-metadata-directive`` -> x-amz-*
  (moto alone drops them); response ``x-amz-meta-*`` -> ``x-cos-meta-*``.
* Error bodies are rewritten to COS's Code/Message/Resource/RequestId/TraceId shape so
  ``CosServiceError.get_error_code()`` works (moto's shape makes it say "Unknown").

``cos_compat=False`` serves moto untouched (tests use it to pin down those gaps).
All requests into moto are serialised by one lock: moto is not thread-safe and its
``If-None-Match: *`` check is check-then-write, whereas COS is atomic.

Test hooks (all thread-safe):

* ``requests`` / ``request_count`` / ``reset_requests()``: a log of every request
  (``RequestRecord``: number, method, path, query, headers, status).
* ``inject(fault, when=…, times=…)`` / ``inject_at(n, fault)`` / ``clear_faults()``:
  make matching requests answer an error status, drop the connection or sleep.

Moto keeps state per process. Each instance therefore uses its own moto account
(``x-moto-account-id``), and ``stop()`` drops that account's buckets so a bucket name
can be reused by the next instance. Bucket names are still global while an instance
runs (as in real COS). This module imports only the stdlib at import time.
"""

from __future__ import annotations

import itertools
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from qcloud_cos import CosS3Client

__all__ = ["LocalCOS", "Fault", "RequestRecord"]

# One moto Flask app per process is enough: moto's backends are global anyway,
# and building the app costs ~0.5 s.
_APP_LOCK = threading.Lock()
_MOTO_APP: Any = None
# Serialises every request into moto: its backend is not thread-safe and its
# ``If-None-Match: *`` check is check-then-write, unlike real COS which is atomic.
_MOTO_CALL_LOCK = threading.Lock()
# Distinct 12-digit moto account ids, one per LocalCOS instance.
_ACCOUNTS = itertools.count(100000000001)

_ERROR_CODES = {
    400: "InvalidArgument",
    403: "AccessDenied",
    404: "NoSuchKey",
    409: "FileAlreadyExists",
    412: "PreconditionFailed",
    429: "SlowDown",
    500: "InternalError",
    503: "ServiceUnavailable",
}


@dataclass(frozen=True)
class Fault:
    """What to do to a matching request. Applied in order: delay, then reset or status.

    ``status=None`` and ``reset=False`` means "just delay, then serve normally".
    """

    status: int | None = None  # answer this status with a COS-style XML error body
    code: str | None = None  # error Code in the body; default derived from status
    reset: bool = False  # drop the connection without any HTTP response
    delay: float = 0.0  # seconds to sleep before anything else (client timeouts)


@dataclass
class RequestRecord:
    """One request seen by the server. ``headers`` has lower-cased names."""

    n: int  # 1-based, counted since start() / reset_requests()
    method: str
    path: str  # percent-decoded, UTF-8 (the object key is path[1:] for object calls)
    raw_path: str  # as sent on the wire, still percent-encoded
    query: str  # raw query string, e.g. "tagging=" or "prefix=a%2F"
    headers: dict[str, str]
    status: int | None = None  # set once answered; None for a reset connection
    fault: Fault | None = None

    @property
    def host(self) -> str:
        return self.headers.get("host", "")


@dataclass
class _Rule:
    fault: Fault
    when: Callable[[RequestRecord], bool]
    times: int | None  # remaining uses; None = forever


@dataclass
class _State:
    lock: threading.Lock = field(default_factory=threading.Lock)
    log: list[RequestRecord] = field(default_factory=list)
    counter: int = 0
    rules: list[_Rule] = field(default_factory=list)


def _get_moto_app() -> Any:
    global _MOTO_APP
    with _APP_LOCK:
        if _MOTO_APP is None:
            from moto.moto_server.werkzeug_app import create_backend_app

            _MOTO_APP = create_backend_app("s3")
        return _MOTO_APP


def _drop_connection(environ: dict[str, Any]) -> None:
    """Close the TCP connection without sending any HTTP response.

    The client sees ``RemoteDisconnected``/``ConnectionResetError`` (requests:
    ``ConnectionError``; COS SDK: ``CosClientError``, which it retries).
    """
    # Drain the body first, or werkzeug would parse its leftovers as a next request.
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if length:
        environ["wsgi.input"].read(length)  # raw socket file: read() alone would block
    elif environ.get("wsgi.input_terminated"):
        environ["wsgi.input"].read()  # chunked body, already de-chunked by werkzeug
    sock: socket.socket = environ["werkzeug.socket"]
    # Linger 0: the final close() sends RST instead of lingering in FIN_WAIT.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    try:
        # shutdown() acts now, although werkzeug's rfile/wfile still hold the fd.
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


# COS request headers that moto knows under an x-amz-* name (WSGI environ keys).
_COS_HEADER_RENAMES = {
    "HTTP_X_COS_TAGGING": "HTTP_X_AMZ_TAGGING",
    "HTTP_X_COS_METADATA_DIRECTIVE": "HTTP_X_AMZ_METADATA_DIRECTIVE",
}


def _to_cos_request(environ: dict[str, Any]) -> bool:
    """Rewrite COS-only request headers into what moto understands, in place.

    Returns True when the request asked for ``x-cos-forbid-overwrite: true``, which is
    emulated with moto's ``If-None-Match: *`` (atomic here: moto calls are serialised).
    """
    for key in [k for k in environ if k.startswith("HTTP_X_COS_META_")]:
        environ["HTTP_X_AMZ_META_" + key[len("HTTP_X_COS_META_"):]] = environ.pop(key)
    for cos_key, amz_key in _COS_HEADER_RENAMES.items():
        if cos_key in environ:
            environ[amz_key] = environ.pop(cos_key)
    source = environ.pop("HTTP_X_COS_COPY_SOURCE", None)
    if source:
        # COS: "{bucket}.cos.{region}.myqcloud.com/{quoted key}" -> S3: "/{bucket}/{quoted key}"
        host, _, quoted_key = source.partition("/")
        environ["HTTP_X_AMZ_COPY_SOURCE"] = f"/{host.split('.', 1)[0]}/{quoted_key}"
    forbid = environ.get("HTTP_X_COS_FORBID_OVERWRITE", "").lower() == "true"
    if forbid and environ["REQUEST_METHOD"] == "PUT":
        environ["HTTP_IF_NONE_MATCH"] = "*"
        return True
    return False


def _to_cos_response(
    status: str, headers: list[tuple[str, str]], body: bytes, rec: RequestRecord, forbid: bool
) -> tuple[str, list[tuple[str, str]], bytes]:
    """Make moto's answer look like COS's: x-cos-meta-*, 409 for forbid-overwrite, and
    error bodies with the Code/Message/Resource/RequestId/TraceId the SDK parses
    (without them ``CosServiceError.get_error_code()`` says "Unknown")."""
    code = int(status.split(" ", 1)[0])
    headers = [
        ("x-cos-meta-" + k[len("x-amz-meta-"):] if k.lower().startswith("x-amz-meta-") else k, v)
        for k, v in headers
    ]
    if code < 400:
        return status, headers, body
    err_code, message = _ERROR_CODES.get(code, "Unknown"), ""
    if body.lstrip().startswith(b"<"):
        import xml.etree.ElementTree as ET  # lazy: only error paths pay for it

        try:
            root = ET.fromstring(body)
            err_code = root.findtext("Code") or err_code
            message = root.findtext("Message") or ""
        except ET.ParseError:
            pass
    if forbid and code == 412:
        # COS answers 409 FileAlreadyExists for x-cos-forbid-overwrite.
        code, err_code, message = 409, "FileAlreadyExists", "The object already exists."
    if rec.method == "HEAD":  # HEAD has no body; the SDK builds its own NoSuchResource
        return f"{code} {err_code}", headers, b""
    body = _error_body(err_code, message, rec)
    headers = [(k, v) for k, v in headers if k.lower() not in ("content-type", "content-length")]
    headers += [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))]
    return f"{code} {err_code}", headers, body


def _error_body(code: str, message: str, rec: RequestRecord) -> bytes:
    from xml.sax.saxutils import escape

    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{escape(code)}</Code>'
        f"<Message>{escape(message or code)}</Message><Resource>{escape(rec.host)}{escape(rec.path)}</Resource>"
        f"<RequestId>local-{rec.n:d}</RequestId><TraceId>local</TraceId></Error>"
    ).encode()


class LocalCOS:
    """A moto-backed S3 server on 127.0.0.1 that the COS SDK can talk to.

    >>> with LocalCOS() as cos:
    ...     cos.create_bucket("examplebucket-1250000000")
    ...     cos.client().put_object(Bucket="examplebucket-1250000000", Key="k", Body=b"v")
    """

    def __init__(self, cos_compat: bool = True) -> None:
        # cos_compat=False serves plain moto (to show its COS gaps); see _to_cos_request.
        self._cos_compat = cos_compat
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._account = str(next(_ACCOUNTS))
        self._state = _State()

    # -- lifecycle ---------------------------------------------------------
    def start(self) -> LocalCOS:
        if self._server is not None:
            return self
        from werkzeug.serving import WSGIRequestHandler, make_server

        class _QuietHandler(WSGIRequestHandler):
            def log_request(self, *args: Any, **kwargs: Any) -> None:  # no access log noise
                pass

        self._server = make_server("127.0.0.1", 0, self._wsgi, threaded=True, request_handler=_QuietHandler)
        # A short poll interval keeps stop() fast: shutdown() waits up to one poll.
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"LocalCOS:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None
        self._drop_account()

    def __enter__(self) -> LocalCOS:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("LocalCOS is not started")
        return int(self._server.server_port)

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    # -- SDK helpers -------------------------------------------------------
    def client(self, region: str = "ap-guangzhou", **config: Any) -> CosS3Client:
        """A real ``CosS3Client`` aimed at this server (``retry=0``: fail fast in tests).

        IP/Port make the SDK connect here while still sending
        ``Host: {bucket}.cos.{region}.myqcloud.com``; moto reads the bucket from that
        Host (virtual-host style). Extra ``config`` kwargs go to ``CosConfig``.
        """
        from qcloud_cos import CosConfig, CosS3Client

        cfg = CosConfig(
            Region=region,
            SecretId="local",
            SecretKey="local",
            Scheme="http",
            IP=self.host,
            Port=self.port,
            **config,
        )
        return CosS3Client(cfg, retry=0)

    def create_bucket(self, name: str, region: str = "ap-guangzhou") -> None:
        self.client(region).create_bucket(Bucket=name)

    def seed(self, bucket: str, keys: Iterable[str], body: bytes = b"x") -> int:
        """Create many small objects at once, straight in moto (no HTTP): large jobs' outputs."""
        from moto.s3.models import s3_backends

        count = 0
        with _MOTO_CALL_LOCK:
            backend = s3_backends[self._account]["global"]
            for key in keys:
                backend.put_object(bucket, key, body)
                count += 1
        return count

    # -- request log -------------------------------------------------------
    @property
    def requests(self) -> list[RequestRecord]:
        with self._state.lock:
            return list(self._state.log)

    @property
    def request_count(self) -> int:
        with self._state.lock:
            return self._state.counter

    def reset_requests(self) -> None:
        """Clear the log and restart numbering at 1 (faults stay armed)."""
        with self._state.lock:
            self._state.log.clear()
            self._state.counter = 0

    # -- fault injection ---------------------------------------------------
    def inject(
        self,
        fault: Fault,
        when: Callable[[RequestRecord], bool] | None = None,
        times: int | None = 1,
    ) -> None:
        """Apply ``fault`` to the next ``times`` requests matching ``when``.

        ``when=None`` matches any request; ``times=None`` means every match forever.
        The first armed rule that matches wins.
        """
        with self._state.lock:
            self._state.rules.append(_Rule(fault, when or (lambda r: True), times))

    def inject_at(self, n: int, fault: Fault) -> None:
        """Apply ``fault`` to request number ``n`` (as counted in ``requests``)."""
        self.inject(fault, when=lambda r: r.n == n)

    def clear_faults(self) -> None:
        with self._state.lock:
            self._state.rules.clear()

    # -- internals ---------------------------------------------------------
    def _record(self, environ: dict[str, Any]) -> RequestRecord:
        headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
        for k in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            if environ.get(k):
                headers[k.replace("_", "-").lower()] = environ[k]
        path = environ.get("PATH_INFO", "").encode("latin-1").decode("utf-8", "replace")
        st = self._state
        with st.lock:
            st.counter += 1
            rec = RequestRecord(
                n=st.counter,
                method=environ["REQUEST_METHOD"],
                path=path,
                raw_path=environ.get("RAW_URI", environ.get("REQUEST_URI", "")).split("?", 1)[0],
                query=environ.get("QUERY_STRING", ""),
                headers=headers,
            )
            st.log.append(rec)
            for rule in st.rules:
                if rule.when(rec):
                    rec.fault = rule.fault
                    if rule.times is not None:
                        rule.times -= 1
                        if rule.times <= 0:
                            st.rules.remove(rule)
                    break
        return rec

    def _wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        rec = self._record(environ)
        fault = rec.fault
        if fault is not None:
            if fault.delay:
                time.sleep(fault.delay)
            if fault.reset:
                _drop_connection(environ)
                # werkzeug treats ConnectionError as "client went away": no traceback.
                raise ConnectionResetError("LocalCOS injected connection reset")
            if fault.status is not None:
                rec.status = fault.status
                code = fault.code or _ERROR_CODES.get(fault.status, "InjectedFault")
                body = _error_body(code, "LocalCOS injected fault", rec)
                start_response(
                    f"{fault.status} {code}",
                    [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))],
                )
                return [body]

        # Isolate this instance's buckets in its own moto account (see module doc).
        environ["HTTP_X_MOTO_ACCOUNT_ID"] = self._account
        forbid = self._cos_compat and _to_cos_request(environ)

        captured: dict[str, Any] = {}

        def _capture(status: str, headers: Any, exc_info: Any = None) -> Any:
            captured["status"], captured["headers"] = status, list(headers)
            return lambda data: None  # moto never uses write()

        app = _get_moto_app()
        with _MOTO_CALL_LOCK:
            result = app(environ, _capture)
            try:
                body = b"".join(result)  # fully consumed while the lock is held
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()

        status: str = captured["status"]
        headers: list[tuple[str, str]] = captured["headers"]
        if self._cos_compat:
            status, headers, body = _to_cos_response(status, headers, body, rec, forbid)
        rec.status = int(status.split(" ", 1)[0])
        start_response(status, headers)
        return [body]

    def _drop_account(self) -> None:
        """Forget this instance's buckets so their names are free again."""
        if _MOTO_APP is None:
            return
        from moto.s3.models import s3_backends

        with _MOTO_CALL_LOCK:
            if self._account not in s3_backends:
                return
            for backend in s3_backends[self._account].values():
                for bucket in list(backend.buckets.values()):
                    for key in bucket.keys.values():
                        dispose = getattr(key, "dispose", None)
                        if dispose is not None:
                            dispose()
                    s3_backends.bucket_accounts.pop(bucket.name, None)
                backend.buckets.clear()
