"""All configuration, read once per container into one typed, frozen object.

Each field of ``Settings`` is declared once, with its environment variable, a one-line
description and a parser; ``ENV_VARS`` (the table the README and the deploy check read)
is derived from those declarations. A value that does not parse raises
``Misconfigured`` naming the variable: the entry answers 503 rather than running with a
guess. Empty means the default. Role credentials are the exception to "read once": they
rotate, so ``Credentials.from_env`` reads them on every invocation.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from .errors import Misconfigured

T = TypeVar("T")

DEFAULT_MAX_BODY = 1024 * 1024  # 1 MiB: far above any real callback, far below SCF's 6 MB
ALL_ACTIONS: tuple[str, ...] = ("archive", "dedupe", "index", "tag", "failure", "notify")
NO_ACTIONS = "none"
LOG_LEVELS: tuple[str, ...] = ("DEBUG", "INFO", "WARN", "WARNING", "ERROR")
_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")


# ---------------------------------------------------------------- parsers (raise ValueError)


def _csv(value: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in value.split(",") if item.strip())


def _buckets(value: str) -> frozenset[str]:
    return frozenset(_csv(value))


def _actions(value: str) -> frozenset[str]:
    names = _csv(value)
    if names == (NO_ACTIONS,):
        return frozenset()
    unknown = [name for name in names if name not in ALL_ACTIONS]
    if unknown:
        raise ValueError(f"unknown action {unknown[0][:32]!r}; expected {','.join(ALL_ACTIONS)} or {NO_ACTIONS}")
    return frozenset(names)


def _flag(value: str) -> bool:
    text = value.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError("not a boolean (true/false, 1/0, yes/no, on/off)")


def _integer(low: int, high: int) -> Callable[[str], int]:
    def parse(value: str) -> int:
        try:
            number = int(value.strip())
        except ValueError:
            raise ValueError("not an integer") from None
        if not low <= number <= high:
            raise ValueError(f"out of range ({low}..{high})")
        return number

    return parse


def _text(value: str) -> str:
    return value.strip()


def _optional(value: str) -> str | None:
    return value.strip() or None


def _prefix(value: str) -> str:
    text = value.strip().lstrip("/")
    if text and not text.endswith("/"):
        text += "/"
    return text


def _log_level(value: str) -> str:
    level = value.strip().upper()
    if level not in LOG_LEVELS:
        raise ValueError(f"expected one of {', '.join(LOG_LEVELS)}")
    return level


def _bucket_regions(value: str) -> tuple[tuple[str, str], ...]:
    pairs = []
    for item in _csv(value):
        bucket, equals, region = item.partition("=")
        if not equals or not bucket.strip() or not region.strip():
            raise ValueError("expected bucket=region pairs, comma-separated")
        pairs.append((bucket.strip(), region.strip()))
    return tuple(pairs)


def setting(env: str, doc: str, parse: Callable[[str], T], default: T, *, empty_is_default: bool = True,
            aliases: tuple[str, ...] = ()) -> T:
    """Declare one field: its variable, description, parser and default.

    ``empty_is_default=False`` hands an empty (but set) value to the parser: an empty
    prefix means "no prefix", not the default one. ``aliases`` are older names still
    read when the variable itself is unset.
    """
    metadata = {"env": env, "doc": doc, "parse": parse, "empty_is_default": empty_is_default, "aliases": aliases}
    return dataclasses.field(default=default, metadata=metadata)


@dataclass(frozen=True)
class Settings:
    """Every setting, typed and immutable. ``replace(**changes)`` returns a modified copy."""

    tokens: tuple[str, ...] = setting(
        "CI_CALLBACK_TOKENS", "comma-separated tokens accepted in the callback URL (?token=…)", _csv, ())
    allowed_buckets: frozenset[str] = setting(
        "CI_CALLBACK_ALLOWED_BUCKETS", "comma-separated buckets a callback may name; empty = any", _buckets,
        frozenset())
    max_body_bytes: int = setting(
        "CI_CALLBACK_MAX_BODY_BYTES", "largest accepted body in bytes (default 1048576)",
        _integer(1, 6 * 1024 * 1024), DEFAULT_MAX_BODY)
    index_prefix: str = setting(
        "CI_CALLBACK_INDEX_PREFIX", "key prefix for index objects (default ci-index/)", _prefix, "ci-index/",
        empty_is_default=False)
    index_bucket: str | None = setting(
        "CI_CALLBACK_INDEX_BUCKET", "bucket for index objects; default: the input's bucket", _optional, None)
    archive_prefix: str = setting(
        "CI_CALLBACK_ARCHIVE_PREFIX", "key prefix for the raw-callback inbox (default ci-inbox/)", _prefix,
        "ci-inbox/", empty_is_default=False)
    marker_prefix: str = setting(
        "CI_CALLBACK_MARKER_PREFIX", "key prefix for processed markers (default ci-markers/)", _prefix,
        "ci-markers/", empty_is_default=False)
    actions: frozenset[str] = setting(
        "CI_CALLBACK_ACTIONS",
        "built-in actions to run: archive,dedupe,index,tag,failure,notify, or none (default all)", _actions,
        frozenset(ALL_ACTIONS))
    tag_prefix: str = setting("CI_CALLBACK_TAG_PREFIX", "prefix of the tag keys we write (default ci-)", _text, "ci-")
    cos_endpoint: str | None = setting(
        "CI_CALLBACK_COS_ENDPOINT", "http://127.0.0.1:PORT to send every COS call to a local S3-compatible server",
        _optional, None)
    ci_endpoint: str | None = setting(
        "CI_CALLBACK_CI_ENDPOINT", "http://127.0.0.1:PORT to send CI query calls to a local endpoint", _optional, None)
    verify_jobs: bool = setting(
        "CI_CALLBACK_VERIFY_JOBS", "true to confirm each callback with CI's query API before acting", _flag, False)
    notify_function: str | None = setting(
        "CI_CALLBACK_NOTIFY_FUNCTION", "SCF function to invoke asynchronously after processing", _optional, None)
    notify_namespace: str = setting(
        "CI_CALLBACK_NOTIFY_NAMESPACE", "namespace of the notify function (default default)", _text, "default")
    scf_endpoint: str | None = setting(
        "CI_CALLBACK_SCF_ENDPOINT", "host[:port] of the SCF API for every SCF call (a local endpoint in tests)",
        _optional, None, aliases=("CI_CALLBACK_NOTIFY_ENDPOINT",))
    marker_ttl_seconds: int = setting(
        "CI_CALLBACK_MARKER_TTL_SECONDS", "age after which an in-progress marker is stale (default 900)",
        _integer(1, 86400), 900)
    fanout: int = setting(  # a Segment job: 9 outputs + the index, all in flight at once
        "CI_CALLBACK_FANOUT", "concurrent COS requests per callback (default 10)", _integer(1, 32), 10)
    log_level: str = setting("CI_CALLBACK_LOG_LEVEL", "DEBUG, INFO, WARN or ERROR (default INFO)", _log_level, "INFO")
    bucket_regions: tuple[tuple[str, str], ...] = setting(
        "CI_CALLBACK_BUCKET_REGIONS", "bucket=region pairs for buckets outside the function's region (workflow "
        "callbacks name no region)", _bucket_regions, ())
    reconcile_spec: str | None = setting(
        "CI_CALLBACK_RECONCILE_SPEC", "the reconcile sweep's JSON spec (the timer's argument; used when a timer "
        "event carries none)", _optional, None)
    region: str | None = setting("TENCENTCLOUD_REGION", "region of the function (SCF sets it)", _optional, None)

    def __repr__(self) -> str:  # never print tokens
        shown = {k: ("***" if k == "tokens" and v else v) for k, v in self.as_dict().items()}
        return "Settings(" + ", ".join(f"{k}={v!r}" for k, v in shown.items()) + ")"

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    def enabled(self, action: str) -> bool:
        return action in self.actions

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read every setting; raises ``Misconfigured`` for the first value that does not parse."""
        values, problems = _read(os.environ if environ is None else environ)
        if problems:
            raise problems[0]
        return cls(**values)


def _read(env: Mapping[str, str]) -> tuple[dict[str, Any], list[Misconfigured]]:
    values: dict[str, Any] = {}
    problems: list[Misconfigured] = []
    for spec in dataclasses.fields(Settings):
        meta = spec.metadata
        name = next((n for n in (meta["env"], *meta["aliases"]) if env.get(n) is not None), meta["env"])
        raw = env.get(name)
        if raw is None or (meta["empty_is_default"] and not raw.strip()):
            continue  # the field's default
        try:
            values[spec.name] = meta["parse"](raw)
        except ValueError as exc:
            problems.append(Misconfigured(name, str(exc)))
    return values, problems


def problems(environ: Mapping[str, str]) -> list[str]:
    """Every setting in ENVIRON that does not parse, one line each (empty: all good).

    For the deploy check: unlike ``Settings.from_env`` it does not stop at the first.
    """
    return [str(problem) for problem in _read(environ)[1]]


# name -> one-line description (the README and the offline deploy check read this).
ENV_VARS: dict[str, str] = {f.metadata["env"]: f.metadata["doc"] for f in dataclasses.fields(Settings)}


@dataclass(frozen=True)
class Credentials:
    """The function role's temporary keys. Read per invocation: they rotate."""

    secret_id: str
    secret_key: str
    token: str | None = None

    def __repr__(self) -> str:  # never print keys
        return f"Credentials(secret_id={self.secret_id[:4]}…)"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Credentials | None:
        env = os.environ if environ is None else environ
        secret_id = env.get("TENCENTCLOUD_SECRETID")
        secret_key = env.get("TENCENTCLOUD_SECRETKEY")
        if not secret_id or not secret_key:
            return None
        return cls(secret_id, secret_key, env.get("TENCENTCLOUD_SESSIONTOKEN") or None)


_cached: Settings | None = None


def get_settings() -> Settings:
    """The container's settings, read from the environment on first use.

    A misconfiguration is not cached: each invocation raises it again until it is fixed.
    """
    global _cached
    if _cached is None:
        _cached = Settings.from_env()
    return _cached


def reset_settings() -> None:
    """Forget the cached settings (tests and the local server change the environment)."""
    global _cached
    _cached = None
