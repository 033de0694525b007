"""A local fake of the SCF ``Invoke`` API (TencentCloud API 3.0) for tests.

``FakeSCF`` serves ``POST /`` (and ``GET /?…``) on ``127.0.0.1:<free port>`` with
werkzeug in a thread. Like the real ``scf.tencentcloudapi.com`` it:

* verifies the TC3-HMAC-SHA256 signature against the configured SecretId/SecretKey
  (canonical request over method, path, query, ``content-type``/``host`` headers and
  the SHA-256 of the raw body), the credential scope date/service and the
  ``X-TC-Timestamp`` skew (5 minutes);
* checks ``X-TC-Action: Invoke`` and ``X-TC-Version: 2018-04-16``;
* answers HTTP 200 with ``{"Response": {"Error": {"Code", "Message"}, "RequestId"}}`` on
  any failure (the SDK raises ``TencentCloudSDKException(code, message, reqid)``), and
  ``{"Response": {"Result": {…}, "RequestId"}}`` on success.

Accepted calls are recorded as ``Invocation``s (``ClientContext`` parsed as JSON,
``X-TC-Token`` kept) so tests can assert what the product sent.

Pointing the real SDK at it (see ``FakeSCF.client``)::

    HttpProfile(endpoint="127.0.0.1:PORT", protocol="http")

``endpoint`` must be host:port *without* a scheme: the SDK prefixes ``http://``
(because ``protocol="http"``) and also sends it verbatim as the signed ``Host`` header.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qsl

from local_server import LocalWSGIServer

SECRET_ID = "AKIDLOCALTESTSECRETID000000000000000"
SECRET_KEY = "localtestsecretkey00000000000000"
ACTION = "Invoke"
VERSION = "2018-04-16"
SERVICE = "scf"
MAX_SKEW = 300  # seconds; the real API answers AuthFailure.SignatureExpire beyond this


@dataclass(frozen=True)
class Invocation:
    """One accepted ``Invoke`` call, as the product sent it."""

    function_name: str
    invocation_type: str | None  # None = not sent (SCF defaults to RequestResponse)
    client_context: Any  # parsed JSON; None when ClientContext was not sent
    client_context_raw: str | None
    namespace: str | None  # None = not sent (SCF defaults to "default")
    qualifier: str | None  # None = not sent (SCF defaults to "$LATEST")
    token: str | None  # X-TC-Token (temporary credentials), None if absent
    region: str | None  # X-TC-Region
    host: str  # the signed Host header
    params: dict[str, Any]  # every parameter of the request
    request_id: str  # the API call's RequestId
    function_request_id: str = ""  # Result.FunctionRequestId: the invoked function's own request


class ApiError(Exception):
    """Raised inside the fake to answer with an API 3.0 error JSON."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message = code, message


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


def tc3_signature(
    secret_key: str,
    *,
    method: str,
    path: str,
    query: str,
    headers: dict[str, str],
    signed_headers: list[str],
    body: bytes,
    timestamp: int,
    service: str = SERVICE,
) -> str:
    """Compute a TC3-HMAC-SHA256 signature (Tencent Cloud API 3.0, "signature v3").

    ``headers`` must have lower-cased names. Per the spec, canonical header values are
    lower-cased and stripped; the payload is hashed raw (GET: empty; ``X-TC-Content-SHA256:
    UNSIGNED-PAYLOAD``: the literal string).
    """
    if headers.get("x-tc-content-sha256") == "UNSIGNED-PAYLOAD":
        body = b"UNSIGNED-PAYLOAD"
    canonical_headers = "".join(f"{h}:{headers.get(h, '').strip().lower()}\n" for h in signed_headers)
    canonical_request = "\n".join(
        [method, path, query, canonical_headers, ";".join(signed_headers), hashlib.sha256(body).hexdigest()]
    )
    date = datetime.fromtimestamp(timestamp, tz=timezone.utc).strftime("%Y-%m-%d")
    scope = f"{date}/{service}/tc3_request"
    string_to_sign = "\n".join(
        ["TC3-HMAC-SHA256", str(timestamp), scope, hashlib.sha256(canonical_request.encode()).hexdigest()]
    )
    key = _hmac(_hmac(_hmac(("TC3" + secret_key).encode("utf-8"), date), service), "tc3_request")
    return hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


class FakeSCF(LocalWSGIServer):
    """Local SCF ``Invoke`` endpoint that verifies TC3 signatures and records calls.

    ``ret_msg`` decides ``Result.RetMsg`` for synchronous calls (what the invoked
    function "returned"); async (``Event``) calls get an empty RetMsg, as in SCF.
    """

    def __init__(
        self,
        secret_id: str = SECRET_ID,
        secret_key: str = SECRET_KEY,
        *,
        token: str | None = None,
        ret_msg: Callable[[Invocation], str] = lambda inv: "null",
    ) -> None:
        self.secret_id, self.secret_key = secret_id, secret_key
        self.expected_token = token  # when set, X-TC-Token must equal it
        self.ret_msg = ret_msg
        self._lock = threading.Lock()
        self._invocations: list[Invocation] = []
        self._rejections: list[tuple[str, str]] = []
        self._error_queue: list[tuple[str, str]] = []  # see fail_next()
        super().__init__()

    # -- lifecycle ---------------------------------------------------------

    @property
    def endpoint(self) -> str:
        """What ``HttpProfile(endpoint=…)`` needs: host:port, no scheme."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.endpoint}/"

    # -- recorded state ----------------------------------------------------
    @property
    def invocations(self) -> list[Invocation]:
        with self._lock:
            return list(self._invocations)

    @property
    def rejections(self) -> list[tuple[str, str]]:
        """(Code, Message) of every request answered with an error."""
        with self._lock:
            return list(self._rejections)

    def clear(self) -> None:
        with self._lock:
            self._invocations.clear()
            self._rejections.clear()
            self._error_queue.clear()

    def fail_next(self, code: str = "InternalError", message: str = "injected", times: int = 1) -> None:
        """Answer the next ``times`` correctly signed calls with this API error."""
        with self._lock:
            self._error_queue.extend([(code, message)] * times)

    # -- SDK helper --------------------------------------------------------
    def client(
        self,
        region: str = "ap-guangzhou",
        secret_id: str | None = None,
        secret_key: str | None = None,
        token: str | None = None,
    ) -> Any:
        """A real ``scf_client.ScfClient`` aimed at this fake."""
        from tencentcloud.common import credential
        from tencentcloud.common.profile.client_profile import ClientProfile
        from tencentcloud.common.profile.http_profile import HttpProfile
        from tencentcloud.scf.v20180416 import scf_client

        cred = credential.Credential(secret_id or self.secret_id, secret_key or self.secret_key, token)
        # protocol="http" must be given to the constructor: the client reads it once.
        profile = ClientProfile(httpProfile=HttpProfile(endpoint=self.endpoint, protocol="http", reqTimeout=10))
        return scf_client.ScfClient(cred, region, profile)

    # -- HTTP --------------------------------------------------------------
    def _wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request_id = str(uuid.uuid4())
        try:
            response = {"Result": self._handle(environ, request_id), "RequestId": request_id}
        except ApiError as e:
            with self._lock:
                self._rejections.append((e.code, e.message))
            response = {"Error": {"Code": e.code, "Message": e.message}, "RequestId": request_id}
        body = json.dumps({"Response": response}).encode("utf-8")
        # Always 200, and exactly "application/json": the SDK only parses errors from
        # that content type, and turns any non-200 into ServerNetworkError.
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    def _handle(self, environ: dict[str, Any], request_id: str) -> dict[str, Any]:
        method = environ["REQUEST_METHOD"]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        query = environ.get("QUERY_STRING", "")
        headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
        if environ.get("CONTENT_TYPE"):
            headers["content-type"] = environ["CONTENT_TYPE"]

        self._verify(method, environ.get("PATH_INFO") or "/", query, headers, body)
        if headers.get("x-tc-action") != ACTION:
            raise ApiError("InvalidAction", f"action {headers.get('x-tc-action')!r} not found (fake serves Invoke)")
        if headers.get("x-tc-version") != VERSION:
            raise ApiError("NoSuchVersion", f"version {headers.get('x-tc-version')!r} not supported")

        params: dict[str, Any]
        if method == "GET":
            params = dict(parse_qsl(query, keep_blank_values=True))
        else:
            try:
                params = json.loads(body or b"{}")
            except ValueError:
                raise ApiError("InvalidParameter", "request body is not JSON") from None
        inv = self._invocation(params, headers, request_id)

        with self._lock:
            if self._error_queue:
                code, message = self._error_queue.pop(0)
                raise ApiError(code, message)
            self._invocations.append(inv)
        is_async = inv.invocation_type == "Event"
        return {
            "Log": "",
            "RetMsg": "" if is_async else self.ret_msg(inv),
            "ErrMsg": "",
            "MemUsage": 0,
            "Duration": 0 if is_async else 1.0,
            "BillDuration": 0 if is_async else 1,
            "FunctionRequestId": inv.function_request_id,
            "InvokeResult": 0,
        }

    def _verify(self, method: str, path: str, query: str, headers: dict[str, str], body: bytes) -> None:
        auth = headers.get("authorization", "")
        algorithm, _, rest = auth.partition(" ")
        fields = dict(part.strip().split("=", 1) for part in rest.split(",") if "=" in part)
        try:
            secret_id, date, service, terminator = fields["Credential"].split("/")
            signed_headers = fields["SignedHeaders"].split(";")
            signature = fields["Signature"]
            timestamp = int(headers["x-tc-timestamp"])
        except (KeyError, ValueError):
            raise ApiError("AuthFailure.InvalidAuthorization", "malformed Authorization or X-TC-Timestamp") from None
        if algorithm != "TC3-HMAC-SHA256" or terminator != "tc3_request" or "host" not in signed_headers:
            raise ApiError("AuthFailure.InvalidAuthorization", "expected TC3-HMAC-SHA256 signing host")
        if secret_id != self.secret_id:
            raise ApiError("AuthFailure.SecretIdNotFound", "The SecretId is not found")
        if abs(time.time() - timestamp) > MAX_SKEW:
            raise ApiError("AuthFailure.SignatureExpire", "The signature has expired (X-TC-Timestamp skew > 300 s)")
        expected_date = datetime.fromtimestamp(timestamp, tz=timezone.utc).strftime("%Y-%m-%d")
        if date != expected_date or service != SERVICE:
            raise ApiError("AuthFailure.SignatureFailure", f"credential scope must be {expected_date}/{SERVICE}")
        expected = tc3_signature(
            self.secret_key,
            method=method,
            path=path,
            query=query if method == "GET" else "",
            headers=headers,
            signed_headers=signed_headers,
            body=b"" if method == "GET" else body,
            timestamp=timestamp,
        )
        if not hmac.compare_digest(expected, signature):
            raise ApiError("AuthFailure.SignatureFailure", "The provided credentials could not be validated")
        if self.expected_token is not None and headers.get("x-tc-token") != self.expected_token:
            raise ApiError("AuthFailure.TokenFailure", "token verification failed")

    @staticmethod
    def _invocation(params: dict[str, Any], headers: dict[str, str], request_id: str) -> Invocation:
        name = params.get("FunctionName")
        if not name:
            raise ApiError("MissingParameter", "The request is missing a required parameter `FunctionName`.")
        kind = params.get("InvocationType")
        if kind not in (None, "RequestResponse", "Event"):
            raise ApiError("InvalidParameterValue.InvocationType", f"InvocationType {kind!r} is invalid")
        raw = params.get("ClientContext")
        try:
            context = json.loads(raw) if raw is not None else None
        except (TypeError, ValueError):
            raise ApiError("InvalidParameterValue.ClientContext", "ClientContext is not valid JSON") from None
        return Invocation(
            function_name=name,
            invocation_type=kind,
            client_context=context,
            client_context_raw=raw,
            namespace=params.get("Namespace"),
            qualifier=params.get("Qualifier"),
            token=headers.get("x-tc-token"),
            region=headers.get("x-tc-region"),
            host=headers.get("host", ""),
            params=params,
            request_id=request_id,
            function_request_id=str(uuid.uuid4()),
        )
