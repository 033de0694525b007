"""All configuration, read once per container into one typed object.

Every variable the code reads is named here (``ENV_VARS``), so the deploy check can
prove that serverless.yml declares each of them. Role credentials are the exception:
they rotate, so ``Credentials.from_env`` reads them on every invocation.
"""

from __future__ import annotations

import os
TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs a cold start ~3 ms
    from typing import Any, Dict, FrozenSet, Mapping, Optional, Tuple

DEFAULT_MAX_BODY = 1024 * 1024  # 1 MiB: far above any real callback, far below SCF's 6 MB

# name -> one-line description (the README and the offline deploy check read this).
ENV_VARS: Dict[str, str] = {
    "CI_CALLBACK_TOKENS": "comma-separated tokens accepted in the callback URL (?token=…)",
    "CI_CALLBACK_ALLOWED_BUCKETS": "comma-separated buckets a callback may name; empty = any",
    "CI_CALLBACK_MAX_BODY_BYTES": "largest accepted body in bytes (default 1048576)",
    "CI_CALLBACK_INDEX_PREFIX": "key prefix for index objects (default ci-index/)",
    "CI_CALLBACK_INDEX_BUCKET": "bucket for index objects; default: the input's bucket",
    "CI_CALLBACK_ARCHIVE_PREFIX": "key prefix for the raw-callback inbox (default ci-inbox/)",
    "CI_CALLBACK_MARKER_PREFIX": "key prefix for processed markers (default ci-markers/)",
    "CI_CALLBACK_ACTIONS": "built-in actions to run: archive,dedupe,index,tag,failure,notify, or none (default all)",
    "CI_CALLBACK_TAG_PREFIX": "prefix of the tag keys we write (default ci-)",
    "CI_CALLBACK_COS_ENDPOINT": "http://127.0.0.1:PORT to send every COS call to a local S3-compatible server",
    "CI_CALLBACK_CI_ENDPOINT": "http://127.0.0.1:PORT to send CI query calls to a local endpoint",
    "CI_CALLBACK_VERIFY_JOBS": "true to confirm each callback with CI's query API before acting",
    "CI_CALLBACK_NOTIFY_FUNCTION": "SCF function to invoke asynchronously after processing",
    "CI_CALLBACK_NOTIFY_NAMESPACE": "namespace of the notify function (default default)",
    "CI_CALLBACK_NOTIFY_ENDPOINT": "host[:port] of the SCF API, for a local endpoint in tests",
    "CI_CALLBACK_MARKER_TTL_SECONDS": "age after which an in-progress marker is stale (default 900)",
    "CI_CALLBACK_FANOUT": "concurrent COS requests per callback (default 10)",
    "CI_CALLBACK_LOG_LEVEL": "DEBUG, INFO, WARN or ERROR (default INFO)",
    "TENCENTCLOUD_REGION": "region of the function (SCF sets it)",
}

ALL_ACTIONS: Tuple[str, ...] = ("archive", "dedupe", "index", "tag", "failure", "notify")


def _csv(value: Optional[str]) -> Tuple[str, ...]:
    return tuple(item.strip() for item in (value or "").split(",") if item.strip())


def _flag(value: Optional[str], default: bool = False) -> bool:
    if value is None or not value.strip():
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


def _int(value: Optional[str], default: int, low: int, high: int) -> int:
    try:
        number = int(str(value).strip()) if value not in (None, "") else default
    except ValueError:
        number = default
    return max(low, min(high, number))


# (name, default). Settings is a plain immutable class rather than a dataclass: importing
# dataclasses (and inspect with it) costs a cold start ~6 ms before any token is checked.
_FIELDS = (
    ("tokens", ()),
    ("allowed_buckets", frozenset()),
    ("max_body_bytes", DEFAULT_MAX_BODY),
    ("index_prefix", "ci-index/"),
    ("index_bucket", None),
    ("archive_prefix", "ci-inbox/"),
    ("marker_prefix", "ci-markers/"),
    ("actions", frozenset(ALL_ACTIONS)),
    ("tag_prefix", "ci-"),
    ("cos_endpoint", None),
    ("ci_endpoint", None),
    ("verify_jobs", False),
    ("notify_function", None),
    ("notify_namespace", "default"),
    ("notify_endpoint", None),
    ("marker_ttl_seconds", 900),
    ("fanout", 10),  # a Segment job: 9 outputs + the index, all in flight at once
    ("log_level", "INFO"),
    ("region", None),
)


class Settings:
    """Every setting, typed and immutable. ``replace(**changes)`` returns a modified copy."""

    __slots__ = tuple(name for name, _ in _FIELDS)

    tokens: Tuple[str, ...]
    allowed_buckets: FrozenSet[str]
    max_body_bytes: int
    index_prefix: str
    index_bucket: Optional[str]
    archive_prefix: str
    marker_prefix: str
    actions: FrozenSet[str]
    tag_prefix: str
    cos_endpoint: Optional[str]
    ci_endpoint: Optional[str]
    verify_jobs: bool
    notify_function: Optional[str]
    notify_namespace: str
    notify_endpoint: Optional[str]
    marker_ttl_seconds: int
    fanout: int
    log_level: str
    region: Optional[str]

    def __init__(self, **values: Any) -> None:
        unknown = set(values) - set(self.__slots__)
        if unknown:
            raise TypeError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        for name, default in _FIELDS:
            object.__setattr__(self, name, values.get(name, default))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Settings is immutable; use settings.replace(...)")

    def as_dict(self) -> Dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}

    def replace(self, **changes: Any) -> "Settings":
        return Settings(**{**self.as_dict(), **changes})

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Settings) and self.as_dict() == other.as_dict()

    def __hash__(self) -> int:
        return hash(tuple(self.as_dict().items()))

    def __repr__(self) -> str:  # never print tokens
        shown = {k: ("***" if k == "tokens" and v else v) for k, v in self.as_dict().items()}
        return "Settings(" + ", ".join(f"{k}={v!r}" for k, v in shown.items()) + ")"

    @classmethod
    def from_env(cls, environ: Optional[Mapping[str, str]] = None) -> "Settings":
        env = os.environ if environ is None else environ
        actions = _csv(env.get("CI_CALLBACK_ACTIONS"))
        prefix = env.get("CI_CALLBACK_INDEX_PREFIX")
        return cls(
            tokens=_csv(env.get("CI_CALLBACK_TOKENS")),
            allowed_buckets=frozenset(_csv(env.get("CI_CALLBACK_ALLOWED_BUCKETS"))),
            max_body_bytes=_int(env.get("CI_CALLBACK_MAX_BODY_BYTES"), DEFAULT_MAX_BODY, 1, 6 * 1024 * 1024),
            index_prefix=_prefix(prefix, "ci-index/"),
            index_bucket=(env.get("CI_CALLBACK_INDEX_BUCKET") or "").strip() or None,
            archive_prefix=_prefix(env.get("CI_CALLBACK_ARCHIVE_PREFIX"), "ci-inbox/"),
            marker_prefix=_prefix(env.get("CI_CALLBACK_MARKER_PREFIX"), "ci-markers/"),
            actions=frozenset(a for a in actions if a in ALL_ACTIONS) if actions else frozenset(ALL_ACTIONS),
            tag_prefix=(env.get("CI_CALLBACK_TAG_PREFIX") or "ci-").strip() or "ci-",
            cos_endpoint=(env.get("CI_CALLBACK_COS_ENDPOINT") or "").strip() or None,
            ci_endpoint=(env.get("CI_CALLBACK_CI_ENDPOINT") or "").strip() or None,
            verify_jobs=_flag(env.get("CI_CALLBACK_VERIFY_JOBS")),
            notify_function=(env.get("CI_CALLBACK_NOTIFY_FUNCTION") or "").strip() or None,
            notify_namespace=(env.get("CI_CALLBACK_NOTIFY_NAMESPACE") or "default").strip() or "default",
            notify_endpoint=(env.get("CI_CALLBACK_NOTIFY_ENDPOINT") or "").strip() or None,
            marker_ttl_seconds=_int(env.get("CI_CALLBACK_MARKER_TTL_SECONDS"), 900, 1, 86400),
            fanout=_int(env.get("CI_CALLBACK_FANOUT"), 10, 1, 32),
            log_level=(env.get("CI_CALLBACK_LOG_LEVEL") or "INFO").strip().upper(),
            region=(env.get("TENCENTCLOUD_REGION") or "").strip() or None,
        )

    def enabled(self, action: str) -> bool:
        return action in self.actions


def _prefix(value: Optional[str], default: str) -> str:
    text = (value if value is not None else default).strip().lstrip("/")
    if text and not text.endswith("/"):
        text += "/"
    return text


class Credentials:
    """The function role's temporary keys. Read per invocation: they rotate."""

    __slots__ = ("secret_id", "secret_key", "token")

    def __init__(self, secret_id: str, secret_key: str, token: Optional[str] = None) -> None:
        object.__setattr__(self, "secret_id", secret_id)
        object.__setattr__(self, "secret_key", secret_key)
        object.__setattr__(self, "token", token)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Credentials are immutable")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Credentials) and (self.secret_id, self.secret_key, self.token) == (
            other.secret_id, other.secret_key, other.token)

    def __hash__(self) -> int:
        return hash((self.secret_id, self.secret_key, self.token))

    @classmethod
    def from_env(cls, environ: Optional[Mapping[str, str]] = None) -> Optional["Credentials"]:
        env = os.environ if environ is None else environ
        secret_id = env.get("TENCENTCLOUD_SECRETID")
        secret_key = env.get("TENCENTCLOUD_SECRETKEY")
        if not secret_id or not secret_key:
            return None
        return cls(secret_id, secret_key, env.get("TENCENTCLOUD_SESSIONTOKEN") or None)

    def __repr__(self) -> str:  # never print keys
        return f"Credentials(secret_id={self.secret_id[:4]}…)"


_cached: Optional[Settings] = None


def get_settings() -> Settings:
    """The container's settings, read from the environment on first use."""
    global _cached
    if _cached is None:
        _cached = Settings.from_env()
    return _cached


def reset_settings() -> None:
    """Forget the cached settings (tests and the local server change the environment)."""
    global _cached
    _cached = None
