"""The COS adapter: one thin layer over cos-python-sdk-v5, and the only module that imports it.

- Credentials are the function role's temporary keys, read per invocation.
- ``CI_CALLBACK_COS_ENDPOINT=http://127.0.0.1:PORT`` sends every call to a local
  S3-compatible server through the SDK's IP/Port/Scheme settings, so the bucket still
  travels in the Host header exactly as in production.
- One client per container and credential set; explicit timeouts; bounded retries on
  5xx and network errors only, never past the invocation's deadline: no request starts
  when it could not end by then (``OutOfTime``), and each one's timeout ends there.
- One region rule, here and nowhere else: callers name buckets, never regions. A bucket's
  region is what a callback or sweep spec said of it (``learn_regions``), else
  ``CI_CALLBACK_BUCKET_REGIONS``, else the function's own region (``region_of``).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, TypeVar
from urllib.parse import urlsplit

from .. import budget
from ..errors import REFUSED_BY_SDK, AlreadyExists, NotFound, OutOfTime, StorageError
from ..settings import Credentials, Settings

T = TypeVar("T")
TIMEOUT_SECONDS = 5
MIN_START_SECONDS = 0.05  # a request needs at least this much time left to be worth sending
RETRIES = 2
BACKOFF_SECONDS = (0.1, 0.3)


_clients: dict[tuple[Any, ...], Any] = {}
_clients_lock = threading.Lock()


def _client(settings: Settings, credentials: Credentials | None, region: str, ci: bool = False,
            timeout: float | None = None) -> Any:
    """One CosS3Client per (region, endpoint, keys, timeout): rotated keys get a fresh client.

    ``timeout`` is only given near the invocation's deadline (see ``CosStorage._timeout``).
    """
    endpoint = settings.ci_endpoint if ci else settings.cos_endpoint
    timeout = TIMEOUT_SECONDS if timeout is None else timeout
    key = (region, endpoint, credentials, timeout)
    client = _clients.get(key)
    if client is not None:
        return client
    from qcloud_cos import CosConfig, CosS3Client  # heavy, only when acting

    options: dict[str, Any] = {"Region": region, "Timeout": timeout, "PoolMaxSize": 32, "PoolConnections": 4}
    if credentials is not None:
        options.update(SecretId=credentials.secret_id, SecretKey=credentials.secret_key, Token=credentials.token)
    else:
        options["Anonymous"] = True
    if endpoint:
        parts = urlsplit(endpoint)
        options.update(Scheme=parts.scheme or "http", IP=parts.hostname, Port=parts.port or 80)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = CosS3Client(CosConfig(**options), retry=0)  # we retry ourselves, within the deadline
            _clients[key] = client
    return client


# 409s that mean "two writes to one key raced" (COS 错误码 list): retried like a 5xx.
RACE_CODES = frozenset({"PathConflict", "UploadConflict"})
# What forbid-overwrite answers when the key exists (409; OpenDAL's live COS test, PR #7526).
EXISTS_CODE = "FileAlreadyExists"


def _error_code(exc: Any) -> str:
    """The COS error code, from an XML or a JSON error body.

    ``CosServiceError.get_error_code()`` raises KeyError when the body was JSON
    (cos_exception.py: ``digest_xml_or_json`` falls back to ``json.loads``, whose dict
    has no ``code`` key), so the digest is read here instead.
    """
    digest = exc.get_digest_msg()
    if isinstance(digest, Mapping):
        for source in (digest, digest.get("Error"), digest.get("Response")):
            if isinstance(source, Mapping):
                for name in ("code", "Code"):
                    if isinstance(source.get(name), str) and source[name]:
                        return str(source[name])[:64]
    return "Unknown"


def _network_error(exc: BaseException) -> bool:
    """Did the SDK wrap a network failure? ``send_request`` raises ``CosClientError(str(e))``
    inside its ``except`` for a requests exception (cos_client.py), so the cause is the
    exception's context. Its other CosClientErrors (bucket format, empty key, Region
    required…) are raised before any I/O: nothing a retry can change."""
    import requests  # the SDK's own dependency, loaded with it

    cause = exc.__context__
    return isinstance(cause, (requests.exceptions.RequestException, OSError))


def _translate(exc: Exception, what: str) -> StorageError:
    from qcloud_cos.cos_exception import CosClientError, CosServiceError

    if isinstance(exc, CosServiceError):
        status = exc.get_status_code()
        code = _error_code(exc)
        message = f"{what}: COS answered {status} {code}"
        if status == 404:
            return NotFound(message)
        if status == 409 and code == EXISTS_CODE:
            return AlreadyExists(message)
        transient = status >= 500 or status == 429 or (status == 409 and code in RACE_CODES)
        return StorageError(message, status=status, code=code, transient=transient)
    if isinstance(exc, CosClientError):
        if _network_error(exc):
            return StorageError(f"{what}: {str(exc)[:160]}", transient=True)
        return StorageError(f"{what}: {str(exc)[:160]}", code=REFUSED_BY_SDK, transient=False)
    return StorageError(f"{what}: {type(exc).__name__}: {str(exc)[:160]}", transient=True)


class _Counter:
    def __init__(self) -> None:
        self.value = 0
        self._lock = threading.Lock()

    def add(self) -> None:
        with self._lock:
            self.value += 1


class CosStorage:
    """Object storage as the actions see it: JSON documents, tags, write-once markers."""

    def __init__(self, settings: Settings, credentials: Credentials | None = None,
                 region: str | None = None, deadline: float | None = None) -> None:
        self.settings = settings
        self.credentials = credentials
        self.region = region or settings.region or "ap-guangzhou"  # the function's own region
        self.deadline = deadline
        self._counter = _Counter()
        self._regions: dict[str, str] = {}  # bucket -> region, as callbacks and specs named it

    def learn_regions(self, named: Iterable[tuple[str | None, str | None]]) -> None:
        """What a callback, a sweep spec or a checkpoint says of buckets' regions, as (bucket,
        region) pairs. The first word wins: a bucket has one region, and a later, different
        claim is not allowed to move our writes."""
        for bucket, region in named:
            if bucket and region:
                self._regions.setdefault(bucket, region)

    def region_of(self, bucket: str) -> str:
        """BUCKET's region: what was learned, else ``CI_CALLBACK_BUCKET_REGIONS``, else the
        function's. A workflow callback names no region at all (WorkflowFinish, doc 460/80039),
        which is why the setting exists."""
        learned = self._regions.get(bucket)
        if learned:
            return learned
        mapped = next((region for name, region in self.settings.bucket_regions if name == bucket), None)
        return mapped or self.region

    @property
    def requests(self) -> int:
        """COS requests issued through this adapter and its ``until`` views (benchmarks read it)."""
        return self._counter.value

    def until(self, deadline: float | None) -> CosStorage:
        """The same adapter with an earlier deadline (fan-out work stops before the closing writes)."""
        if deadline is None or (self.deadline is not None and deadline >= self.deadline):
            return self
        view = CosStorage(self.settings, self.credentials, self.region, deadline)
        view._counter, view._regions = self._counter, self._regions
        return view

    # -------------------------------------------------------------- plumbing

    def _timeout(self) -> float | None:
        """The client timeout: TIMEOUT_SECONDS, or what is left before the deadline when less,
        rounded down (to 0.25 s steps, then 0.05 s, so the clients stay few); raises
        OutOfTime when a request started now could not end by the deadline."""
        if self.deadline is None:
            return None
        remaining = self.deadline - time.monotonic()
        if remaining >= TIMEOUT_SECONDS:
            return None
        if remaining < max(MIN_START_SECONDS, budget.METER.estimate()):
            raise OutOfTime("no time left for another COS request before the deadline")
        steps = int(remaining * 4) / 4 or int(remaining * 20) / 20
        return max(steps, MIN_START_SECONDS)

    def _call(self, what: str, bucket: str, operation: Callable[[Any], T], ci: bool = False) -> T:
        region = self.region_of(bucket)
        for attempt in range(RETRIES + 1):
            timeout = self._timeout()
            client = _client(self.settings, self.credentials, region, ci, timeout)
            self._counter.add()
            started = time.monotonic()
            try:
                result = operation(client)
            except Exception as exc:  # translated right here
                budget.METER.observe(time.monotonic() - started)  # slow failures count too
                error = _translate(exc, what)
                pause = BACKOFF_SECONDS[min(attempt, len(BACKOFF_SECONDS) - 1)]
                out_of_time = self.deadline is not None and time.monotonic() + pause + MIN_START_SECONDS > self.deadline
                if out_of_time and timeout is not None and error.transient and error.status is None:
                    # The timeout cut to the deadline fired: the deadline, not a failure (the
                    # work stays to do, and a write that did land is idempotent).
                    raise OutOfTime(f"{what}: no answer before the deadline") from None
                if not error.transient or attempt == RETRIES or out_of_time:
                    raise error from None
                time.sleep(pause)
                continue
            budget.METER.observe(time.monotonic() - started)
            return result
        raise AssertionError("unreachable")  # pragma: no cover

    # -------------------------------------------------------------- objects

    def put_bytes(self, bucket: str, key: str, body: bytes, content_type: str = "application/octet-stream") -> None:
        self._call(f"put {bucket}/{key}", bucket,
                   lambda c: c.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type))

    def put_json(self, bucket: str, key: str, document: Mapping[str, Any],
                 compact: bool = False) -> None:
        """COMPACT: no indentation, so the C encoder runs (large documents: a fraction of the memory)."""
        if compact:
            text = json.dumps(document, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        else:
            text = json.dumps(document, ensure_ascii=False, sort_keys=True, indent=1)
        body = text.encode("utf-8")
        del text  # one encoded copy at a time
        self.put_bytes(bucket, key, body, "application/json; charset=utf-8")

    def get_bytes(self, bucket: str, key: str) -> bytes:
        def read(client: Any) -> bytes:
            return bytes(client.get_object(Bucket=bucket, Key=key, KeySimplifyCheck=False)["Body"].get_raw_stream().read())

        return self._call(f"get {bucket}/{key}", bucket, read)

    def get_json(self, bucket: str, key: str) -> dict[str, Any] | None:
        """The JSON document at key, or None when there is none (or it is not JSON)."""
        try:
            data = json.loads(self.get_bytes(bucket, key))
        except NotFound:
            return None
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    def head(self, bucket: str, key: str) -> dict[str, str] | None:
        try:
            headers: dict[str, str] = self._call(f"head {bucket}/{key}", bucket,
                                                 lambda c: c.head_object(Bucket=bucket, Key=key))
            return headers
        except NotFound:
            return None

    def delete(self, bucket: str, key: str) -> None:
        self._call(f"delete {bucket}/{key}", bucket, lambda c: c.delete_object(Bucket=bucket, Key=key))

    def create_once(self, bucket: str, key: str, document: Mapping[str, Any]) -> bool:
        """Write ``key`` only if it does not exist yet. True if we wrote it.

        The one conditional write in the project: ``x-cos-forbid-overwrite: true``, COS's
        write-once header (409 when the key exists; any 409 is checked with a HEAD). Nothing else is sent:
        COS documents ``If-None-Match`` for GET and HEAD only, and other clouds answer it on
        a PUT with 501, which would fail every claim. COS ignores the header on buckets that
        ever had versioning and it is not atomic under tight races (docs/tencent-facts.md), which
        is why notify is at-least-once (docs/durability.md). The local COS translates it for moto.
        """
        body = json.dumps(document, ensure_ascii=False, sort_keys=True).encode("utf-8")

        def put(client: Any) -> Any:
            return client.put_object(
                Bucket=bucket, Key=key, Body=body, ContentType="application/json",
                # The SDK has no kwarg for this header; Metadata entries are sent verbatim.
                Metadata={"x-cos-forbid-overwrite": "true"},
            )

        try:
            self._call(f"create {bucket}/{key}", bucket, put)
        except AlreadyExists:
            return False
        except StorageError as exc:
            # No Tencent document names the code forbid-overwrite answers: on any other 409
            # the key itself says whether it exists; if not, the 409 stands as COS gave it.
            if exc.status != 409:
                raise
            if self.head(bucket, key) is not None:
                return False
            raise
        return True

    def list_keys(self, bucket: str, prefix: str,
                  start_after: str = "") -> Iterator[tuple[str, str | None]]:
        """Yield ``(key, last_modified)`` under prefix, following pagination (after START_AFTER)."""
        marker = start_after
        while True:
            def page_of(client: Any, marker: str = marker) -> dict[str, Any]:
                return dict(client.list_objects(Bucket=bucket, Prefix=prefix, Marker=marker, MaxKeys=1000))

            page = self._call(f"list {bucket}/{prefix}", bucket, page_of)
            contents = page.get("Contents") or []
            if isinstance(contents, dict):
                contents = [contents]
            for item in contents:
                yield item.get("Key"), item.get("LastModified")
            if str(page.get("IsTruncated", "false")).lower() != "true" or not contents:
                return
            marker = page.get("NextMarker") or contents[-1].get("Key")

    def query_ci(self, method: str, **kwargs: Any) -> dict[str, Any]:
        """A CI API call (``ci_get_media_jobs`` …) on the CI endpoint, in its ``Bucket``'s region."""
        bucket = str(kwargs.get("Bucket") or "")
        return self._call(f"CI {method}", bucket, lambda c: getattr(c, method)(**kwargs), ci=True) or {}

    # -------------------------------------------------------------- tags

    def get_tags(self, bucket: str, key: str) -> dict[str, str]:
        response = self._call(f"get tags {bucket}/{key}", bucket,
                              lambda c: c.get_object_tagging(Bucket=bucket, Key=key))
        tags: dict[str, str] = {}
        tag_set = (response or {}).get("TagSet") or {}
        items: Any = tag_set.get("Tag") or [] if isinstance(tag_set, dict) else []
        if isinstance(items, dict):
            items = [items]
        for item in items:
            if isinstance(item, dict) and item.get("Key") is not None:
                tags[str(item["Key"])] = "" if item.get("Value") is None else str(item["Value"])
        return tags

    def put_tags(self, bucket: str, key: str, tags: Mapping[str, str]) -> None:
        tagging = {"TagSet": {"Tag": [{"Key": k, "Value": v} for k, v in tags.items()]}}
        self._call(f"put tags {bucket}/{key}", bucket,
                   lambda c: c.put_object_tagging(Bucket=bucket, Key=key, Tagging=tagging))
