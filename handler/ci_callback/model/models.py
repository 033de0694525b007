"""Typed, immutable models of the three callback kinds.

Models are plain frozen dataclasses: no validation framework at import time, so a cold
start stays cheap. ``to_dict()`` is the public, JSON-able contract.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from ..times import iso
from .kinds import JOB, MODERATION, WORKFLOW  # noqa: F401 - re-exported: models.JOB …

Number = int | float


@dataclass(frozen=True)
class ObjectRef:
    """One COS object: where an input came from or an output went."""

    bucket: str | None
    region: str | None
    key: str | None

    def to_dict(self) -> dict[str, str | None]:
        return {"bucket": self.bucket, "region": self.region, "object": self.key}


@dataclass(frozen=True)
class WorkflowRef:
    """The workflow run that triggered a job, when one did."""

    name: str | None
    run_id: str | None
    workflow_id: str | None
    workflow_name: str | None

    def to_dict(self) -> dict[str, str | None]:
        return {
            "name": self.name,
            "run_id": self.run_id,
            "workflow_id": self.workflow_id,
            "workflow_name": self.workflow_name,
        }


@dataclass(frozen=True)
class ImageInfo:
    """Image facts CI reports for PicProcess originals and results."""

    format: str | None = None
    width: int | None = None
    height: int | None = None
    quality: int | None = None
    size: int | None = None
    etag: str | None = None
    orientation: int | None = None
    ave: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "width": self.width,
            "height": self.height,
            "quality": self.quality,
            "size": self.size,
            "etag": self.etag,
            "orientation": self.orientation,
            "ave": self.ave,
        }


class JobDetails:
    """A job Tag's typed result, ``JobCallback.details``: one subclass per Tag, each in its own
    module of ``ci_callback.model.results`` (the Tag registry), with its parser, its index fields and
    how it shrinks for index part documents. Pure data: no I/O."""

    rank: ClassVar[int] = 0  # registry order: a Tag's own view (0), then the fallbacks
    tags: ClassVar[tuple[str, ...]] = ()  # the Tags this view is for
    output_fields: ClassVar[tuple[str, ...]] = ()  # to_dict() keys that list outputs (not kept in index parts)

    @classmethod
    def matches(cls, tag: str | None, operation: Mapping[str, Any]) -> bool:
        return tag in cls.tags

    @classmethod
    def from_operation(cls, operation: Mapping[str, Any], files: tuple[ObjectRef, ...],
                       md5: Mapping[str, str]) -> JobDetails:
        """Read the job's ``Operation`` section; FILES are its outputs, MD5 their digests."""
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    def index_fields(self) -> dict[str, Any]:
        """Top-level fields this Tag adds to the job's index document."""
        return {}

    def without_outputs(self) -> JobDetails:
        """The same view without its per-output lists (a large job keeps those in index parts)."""
        return self

    def output_md5(self) -> Mapping[str, str]:
        """Output key → MD5, where CI reports them."""
        return {}



@dataclass(frozen=True)
class JobCallback:
    """A ``TaskFinish`` callback for one media, image, document or AI job."""

    kind: ClassVar[str] = JOB
    event: str
    job_id: str
    tag: str | None
    state: str | None
    code: str | None
    message: str | None
    input: ObjectRef
    outputs: tuple[ObjectRef, ...]
    details: JobDetails
    workflow: WorkflowRef | None = None
    cos_headers: Mapping[str, str] = field(default_factory=dict)
    queue_id: str | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    user_data: str | None = None
    legacy: bool = False
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def id(self) -> str:
        return self.job_id

    @property
    def succeeded(self) -> bool:
        return self.state == "Success"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "event": self.event,
            "state": self.state,
            "created_at": iso(self.created_at),
            "job_id": self.job_id,
            "tag": self.tag,
            "code": self.code,
            "message": self.message,
            "input": self.input.to_dict(),
            "outputs": [o.to_dict() for o in self.outputs],
            "workflow": self.workflow.to_dict() if self.workflow else None,
            "cos_headers": dict(self.cos_headers),
            "queue_id": self.queue_id,
            "started_at": iso(self.started_at),
            "ended_at": iso(self.ended_at),
            "user_data": self.user_data,
            "legacy": self.legacy,
            "details": self.details.to_dict(),
        }


@dataclass(frozen=True)
class WorkflowTask:
    """One node of a workflow run."""

    type: str | None
    state: str | None
    job_id: str | None
    name: str | None
    template_id: str | None
    template_name: str | None
    created_at: datetime | None
    ended_at: datetime | None
    code: str | None = None
    message: str | None = None
    outputs: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "state": self.state,
            "job_id": self.job_id,
            "name": self.name,
            "template_id": self.template_id,
            "template_name": self.template_name,
            "created_at": iso(self.created_at),
            "ended_at": iso(self.ended_at),
            "code": self.code,
            "message": self.message,
            "outputs": list(self.outputs),
        }


@dataclass(frozen=True)
class WorkflowCallback:
    """A ``WorkflowFinish`` callback: one run of a workflow over one input object."""

    kind: ClassVar[str] = WORKFLOW
    event: str
    run_id: str
    workflow_id: str | None
    workflow_name: str | None
    state: str | None
    input: ObjectRef
    tasks: tuple[WorkflowTask, ...]
    cos_headers: Mapping[str, str] = field(default_factory=dict)
    created_at: datetime | None = None
    legacy: bool = False
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def id(self) -> str:
        return self.run_id

    @property
    def tag(self) -> None:
        return None

    @property
    def succeeded(self) -> bool:
        return self.state == "Success"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "event": self.event,
            "state": self.state,
            "created_at": iso(self.created_at),
            "run_id": self.run_id,
            "workflow_id": self.workflow_id,
            "workflow_name": self.workflow_name,
            "input": {"bucket": self.input.bucket, "object": self.input.key},
            "tasks": [t.to_dict() for t in self.tasks],
            "cos_headers": dict(self.cos_headers),
            "legacy": self.legacy,
        }


@dataclass(frozen=True)
class ModerationCallback:
    """A content-moderation callback, Simple or Detail form, or the console's test request."""

    kind: ClassVar[str] = MODERATION
    event: str | None
    form: str  # "simple" or "detail"
    job_id: str | None
    state: str | None
    result: int | None
    label: str | None
    score: Number | None
    input: ObjectRef
    url: str | None = None
    code: int | None = None
    message: str | None = None
    is_test: bool = False
    categories: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    cos_headers: Mapping[str, str] = field(default_factory=dict)
    created_at: datetime | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def id(self) -> str | None:
        return self.job_id

    @property
    def tag(self) -> str | None:
        return self.event

    @property
    def succeeded(self) -> bool:
        return self.state == "Success"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "event": self.event,
            "state": self.state,
            "created_at": iso(self.created_at),
            "job_id": self.job_id,
            "result": self.result,
            "label": self.label,
            "score": self.score,
            "input": self.input.to_dict(),
            "url": self.url,
            "form": self.form,
            "is_test": self.is_test,
            "code": self.code,
            "message": self.message,
            "categories": {k: dict(v) for k, v in self.categories.items()},
            "cos_headers": dict(self.cos_headers),
        }


Callback = JobCallback | WorkflowCallback | ModerationCallback
