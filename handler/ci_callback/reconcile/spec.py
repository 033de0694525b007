"""The reconcile sweep's spec: the timer trigger's ``Message``, parsed and checked.

The Message is the trigger's ``argument``, at most 4 KB (tencent-component-toolkit
``triggers/timer.js``), and arrives as a string. Its shape::

    {"reconcile": {"lookback_minutes": 180, "sources": [
      {"bucket": "examplebucket-1250000000", "region": "ap-guangzhou", "queue": "p…", "tags": ["Transcode"]},
      {"bucket": "examplebucket-1250000000", "region": "ap-guangzhou", "pic_queue": "p…"},
      {"bucket": "examplebucket-1250000000", "region": "ap-guangzhou", "workflow": "w…"}]}}

Optional keys of ``reconcile``: ``pad_minutes`` (how much earlier than the lookback a
listed job may have been *created*: CI filters on creation time only, doc 436/54011),
``settle_minutes`` (jobs that ended more recently are left to their callback, and the
next sweep), ``page_size`` (1..100: CI's documented maximum) and ``inbox`` (re-drive
archived callbacks with no done marker; default true), ``inbox_age_minutes`` (how old
such an archive must be). A ``pic_queue`` source lists ``tags`` too, default
``["PicProcess"]``.

The spec is checked strictly (unknown keys are refused: a typo must not silently
sweep nothing) and every error is one short line naming the offending field, never
echoing more than a few characters of the value. Pure: no I/O, stdlib only.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidSweepSpec

MAX_MESSAGE_BYTES = 4096  # the timer argument's limit (toolkit triggers/timer.js)
MAX_SOURCES = 32
MAX_TAGS = 20
MAX_PAGE_SIZE = 100  # ci_list_media_jobs: Size <= 100 (doc 436/54011)
DEFAULT_LOOKBACK = 180
DEFAULT_PAD = 60
DEFAULT_SETTLE = 2
DEFAULT_INBOX_AGE = 5
MAX_MINUTES = 7 * 24 * 60

# COS bucket names: lower-case letters, digits and '-', then '-<APPID>'.
_BUCKET = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,48}[a-z0-9])?-[0-9]{1,12}$")
_REGION = re.compile(r"^[a-z]{2,8}(?:-[a-z0-9]{2,20}){1,3}$")  # ap-guangzhou, ap-shanghai-fsi
# Queue, workflow and Tag names travel in a signed query string: keep them plain.
_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_TAG = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")

_TOP_KEYS = frozenset({"reconcile"})
_SPEC_KEYS = frozenset({"lookback_minutes", "pad_minutes", "settle_minutes", "page_size", "inbox",
                        "inbox_age_minutes", "sources"})
_COMMON_KEYS = frozenset({"bucket", "region"})
_KIND_KEYS = ("queue", "pic_queue", "workflow")


@dataclass(frozen=True)
class JobSource:
    """Media jobs (``ci_list_media_jobs``) or image jobs (``ci_list_media_pic_jobs``) of one queue."""

    bucket: str
    region: str
    queue: str
    tags: tuple[str, ...]
    pic: bool = False

    @property
    def kind(self) -> str:
        return "pic_queue" if self.pic else "queue"

    def to_dict(self) -> dict[str, Any]:
        return {"bucket": self.bucket, "region": self.region, self.kind: self.queue, "tags": list(self.tags)}


@dataclass(frozen=True)
class WorkflowSource:
    """Runs of one workflow (``ci_list_workflowexecution``)."""

    bucket: str
    region: str
    workflow: str

    @property
    def kind(self) -> str:
        return "workflow"

    def to_dict(self) -> dict[str, Any]:
        return {"bucket": self.bucket, "region": self.region, "workflow": self.workflow}


Source = JobSource | WorkflowSource


@dataclass(frozen=True)
class Stream:
    """One paged listing: a source, and for jobs one Tag (the list API takes one Tag per call)."""

    source: Source
    tag: str | None = None

    @property
    def label(self) -> str:
        ident = self.source.workflow if isinstance(self.source, WorkflowSource) else self.source.queue
        return f"{self.source.kind}:{self.source.bucket}:{ident}" + (f":{self.tag}" if self.tag else "")


@dataclass(frozen=True)
class SweepSpec:
    lookback_minutes: int
    sources: tuple[Source, ...]
    pad_minutes: int = DEFAULT_PAD
    settle_minutes: int = DEFAULT_SETTLE
    page_size: int = MAX_PAGE_SIZE
    inbox: bool = True
    inbox_age_minutes: int = DEFAULT_INBOX_AGE

    @property
    def streams(self) -> tuple[Stream, ...]:
        """Every listing the sweep pages through, in spec order."""
        found: list[Stream] = []
        for source in self.sources:
            if isinstance(source, JobSource):
                found.extend(Stream(source, tag) for tag in source.tags)
            else:
                found.append(Stream(source))
        return tuple(found)

    @property
    def buckets(self) -> tuple[tuple[str, str], ...]:
        """(bucket, region) pairs, once each: where the inbox is re-driven."""
        seen: dict[tuple[str, str], None] = {}
        for source in self.sources:
            seen[(source.bucket, source.region)] = None
        return tuple(seen)

    def to_dict(self) -> dict[str, Any]:
        return {"reconcile": {
            "lookback_minutes": self.lookback_minutes,
            "pad_minutes": self.pad_minutes,
            "settle_minutes": self.settle_minutes,
            "page_size": self.page_size,
            "inbox": self.inbox,
            "inbox_age_minutes": self.inbox_age_minutes,
            "sources": [s.to_dict() for s in self.sources],
        }}

    @property
    def digest(self) -> str:
        """16 hex digits naming this spec (the sweep's cursor is kept per spec)."""
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


# ---------------------------------------------------------------- reading


def _shown(value: object) -> str:
    """A few characters of an untrusted value, on one line; or just its type."""
    if isinstance(value, str):
        return repr(value[:24] + ("…" if len(value) > 24 else ""))
    return type(value).__name__


def _object(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise InvalidSweepSpec(f"{where} must be an object, not {_shown(value)}")
    return value


def _keys(value: Mapping[str, Any], allowed: frozenset[str], where: str) -> None:
    unknown = sorted(str(k) for k in value if k not in allowed)
    if unknown:
        raise InvalidSweepSpec(f"{where}: unknown key {_shown(unknown[0])}; expected {', '.join(sorted(allowed))}")


def _minutes(value: Mapping[str, Any], name: str, default: int, low: int, where: str) -> int:
    if name not in value:
        return default
    number = value[name]
    if isinstance(number, bool) or not isinstance(number, int):
        raise InvalidSweepSpec(f"{where}.{name} must be a whole number of minutes")
    if not low <= number <= MAX_MINUTES:
        raise InvalidSweepSpec(f"{where}.{name} must be between {low} and {MAX_MINUTES}")
    return number


def _name(value: Mapping[str, Any], name: str, pattern: re.Pattern[str], what: str, where: str) -> str:
    text = value.get(name)
    if not isinstance(text, str) or not pattern.match(text):
        raise InvalidSweepSpec(f"{where}.{name} must be {what}, got {_shown(text)}")
    return text


def _tags(value: Mapping[str, Any], default: Sequence[str] | None, where: str) -> tuple[str, ...]:
    if "tags" not in value:
        if default is None:
            raise InvalidSweepSpec(f"{where}.tags is required for a queue (CI lists one Tag at a time)")
        return tuple(default)
    tags = value["tags"]
    if not isinstance(tags, list) or not tags:
        raise InvalidSweepSpec(f"{where}.tags must be a non-empty list of job Tags")
    if len(tags) > MAX_TAGS:
        raise InvalidSweepSpec(f"{where}.tags lists more than {MAX_TAGS} Tags")
    for tag in tags:
        if not isinstance(tag, str) or not _TAG.match(tag):
            raise InvalidSweepSpec(f"{where}.tags: {_shown(tag)} is not a job Tag (like Transcode)")
    if len(set(tags)) != len(tags):
        raise InvalidSweepSpec(f"{where}.tags lists a Tag twice")
    return tuple(tags)


def _source(value: object, where: str) -> Source:
    item = _object(value, where)
    kinds = [k for k in _KIND_KEYS if k in item]
    if len(kinds) != 1:
        raise InvalidSweepSpec(f"{where} needs exactly one of queue, pic_queue, workflow")
    kind = kinds[0]
    allowed = _COMMON_KEYS | {kind} | ({"tags"} if kind != "workflow" else set())
    _keys(item, frozenset(allowed), where)
    bucket = _name(item, "bucket", _BUCKET, "a COS bucket name like examplebucket-1250000000", where)
    region = _name(item, "region", _REGION, "a region like ap-guangzhou", where)
    ident = _name(item, kind, _ID, "a CI id (letters, digits, - and _)", where)
    if kind == "workflow":
        return WorkflowSource(bucket, region, ident)
    tags = _tags(item, ("PicProcess",) if kind == "pic_queue" else None, where)
    return JobSource(bucket, region, ident, tags, pic=kind == "pic_queue")


def _document(message: str | bytes | Mapping[str, Any]) -> object:
    if isinstance(message, Mapping):
        return dict(message)
    if isinstance(message, str):
        data = message.encode("utf-8", "surrogatepass")
    elif isinstance(message, (bytes, bytearray)):
        data = bytes(message)
    else:
        raise InvalidSweepSpec(f"the sweep spec must be JSON text, not {type(message).__name__}")
    if len(data) > MAX_MESSAGE_BYTES:
        raise InvalidSweepSpec(f"the sweep spec is {len(data)} bytes; a timer argument holds at most {MAX_MESSAGE_BYTES}")
    if not data.strip():
        raise InvalidSweepSpec("the sweep spec is empty")
    try:
        return json.loads(data)
    except RecursionError:
        raise InvalidSweepSpec("the sweep spec is nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise InvalidSweepSpec(f"the sweep spec is not JSON: {str(exc)[:80]}") from None


def parse_spec(message: str | bytes | Mapping[str, Any]) -> SweepSpec:
    """Read a timer Message (or an already decoded object) into a SweepSpec.

    Raises InvalidSweepSpec, with one line naming the field, for anything else.
    """
    top = _object(_document(message), "the sweep spec")
    _keys(top, _TOP_KEYS, "the sweep spec")
    if "reconcile" not in top:
        raise InvalidSweepSpec('the sweep spec must be {"reconcile": {...}}')
    body = _object(top["reconcile"], "reconcile")
    _keys(body, _SPEC_KEYS, "reconcile")
    sources = body.get("sources")
    if not isinstance(sources, list) or not sources:
        raise InvalidSweepSpec("reconcile.sources must be a non-empty list")
    if len(sources) > MAX_SOURCES:
        raise InvalidSweepSpec(f"reconcile.sources lists more than {MAX_SOURCES} sources")
    parsed = tuple(_source(s, f"reconcile.sources[{i}]") for i, s in enumerate(sources))
    labels = [stream.label for source in parsed for stream in SweepSpec(1, (source,)).streams]
    if len(set(labels)) != len(labels):
        raise InvalidSweepSpec("reconcile.sources lists the same queue, Tag or workflow twice")
    page_size = body.get("page_size", MAX_PAGE_SIZE)
    if isinstance(page_size, bool) or not isinstance(page_size, int) or not 1 <= page_size <= MAX_PAGE_SIZE:
        raise InvalidSweepSpec(f"reconcile.page_size must be a whole number from 1 to {MAX_PAGE_SIZE}")
    inbox = body.get("inbox", True)
    if not isinstance(inbox, bool):
        raise InvalidSweepSpec("reconcile.inbox must be true or false")
    lookback = _minutes(body, "lookback_minutes", DEFAULT_LOOKBACK, 1, "reconcile")
    settle = _minutes(body, "settle_minutes", DEFAULT_SETTLE, 0, "reconcile")
    if settle >= lookback:
        raise InvalidSweepSpec("reconcile.settle_minutes must be shorter than lookback_minutes")
    return SweepSpec(
        lookback_minutes=lookback,
        sources=parsed,
        pad_minutes=_minutes(body, "pad_minutes", DEFAULT_PAD, 0, "reconcile"),
        settle_minutes=settle,
        page_size=page_size,
        inbox=inbox,
        inbox_age_minutes=_minutes(body, "inbox_age_minutes", DEFAULT_INBOX_AGE, 0, "reconcile"),
    )
