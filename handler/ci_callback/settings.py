"""All configuration, read once per container into one typed object.

Every variable the code reads is named here (``ENV_VARS``), so the deploy check can
prove that serverless.yml declares each of them. Role credentials are the exception:
they rotate, so ``Credentials.from_env`` reads them on every invocation.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Dict, FrozenSet, Mapping, Optional, Tuple

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
    "CI_CALLBACK_FANOUT": "concurrent COS requests per callback (default 8)",
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


@dataclass(frozen=True)
class Settings:
    tokens: Tuple[str, ...] = ()
    allowed_buckets: FrozenSet[str] = frozenset()
    max_body_bytes: int = DEFAULT_MAX_BODY
    index_prefix: str = "ci-index/"
    index_bucket: Optional[str] = None
    archive_prefix: str = "ci-inbox/"
    marker_prefix: str = "ci-markers/"
    actions: FrozenSet[str] = frozenset(ALL_ACTIONS)
    tag_prefix: str = "ci-"
    cos_endpoint: Optional[str] = None
    ci_endpoint: Optional[str] = None
    verify_jobs: bool = False
    notify_function: Optional[str] = None
    notify_namespace: str = "default"
    notify_endpoint: Optional[str] = None
    marker_ttl_seconds: int = 900
    fanout: int = 8
    log_level: str = "INFO"
    region: Optional[str] = None
    extra: Mapping[str, str] = field(default_factory=dict, compare=False)

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
            fanout=_int(env.get("CI_CALLBACK_FANOUT"), 8, 1, 32),
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


@dataclass(frozen=True)
class Credentials:
    """The function role's temporary keys. Read per invocation: they rotate."""

    secret_id: str
    secret_key: str
    token: Optional[str] = None

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
